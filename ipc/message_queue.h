// A POSIX message queue created for exactly one renderer: O_EXCL with a random name, small
// attributes (so hundreds fit under the default RLIMIT_MSGQUEUE), unlinked before Create returns
// so no /dev/mqueue entry can outlive a crash. On Linux a mqd_t is a file descriptor, which is
// what lets the renderer inherit it and the broker watch it with epoll.
#pragma once

#include <mqueue.h>

#include <optional>
#include <span>

#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

struct QueuePair {
  UniqueFd reader;  // O_RDONLY|O_NONBLOCK, close-on-exec: the broker's end
  UniqueFd writer;  // O_WRONLY|O_NONBLOCK, close-on-exec until remapped into the renderer
};

Result<QueuePair> CreateQueuePair(long max_msg, long msg_size);

// Receives one message's size into buf (which must hold the queue's msg_size); nullopt when the
// queue is empty.
Result<std::optional<size_t>> QueueReceive(int mqd, std::span<uint8_t> buf);
// Sends without blocking; kOverflow when the queue is full.
Result<void> QueueSend(int mqd, std::span<const uint8_t> data);

}  // namespace sbx
