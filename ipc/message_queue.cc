#include "ipc/message_queue.h"

#include <fcntl.h>

#include <array>
#include <cstdio>
#include <string>

#include "ipc/posix.h"

namespace sbx {

Result<QueuePair> CreateQueuePair(long max_msg, long msg_size) {
  std::array<uint8_t, 8> rnd;
  if (auto r = RandomBytes(rnd); !r) return std::unexpected(r.error());
  char name[64];
  std::snprintf(name, sizeof name, "/sbx-%d-%02x%02x%02x%02x%02x%02x%02x%02x", ::getpid(), rnd[0],
                rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
  mq_attr attr{};
  attr.mq_maxmsg = max_msg;
  attr.mq_msgsize = msg_size;
  // The kernel makes every mq descriptor close-on-exec; O_CLOEXEC documents the intent.
  mqd_t rd = ::mq_open(name, O_RDONLY | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  if (rd == static_cast<mqd_t>(-1)) return SysError("mq_open");
  UniqueFd reader(rd);
  mqd_t wr = ::mq_open(name, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  int saved = errno;
  UniqueFd writer(wr);  // owned before anything below can return
  if (::mq_unlink(name) != 0) return SysError("mq_unlink");
  if (!writer) {
    errno = saved;
    return SysError("mq_open(writer)");
  }
  return QueuePair{std::move(reader), std::move(writer)};
}

Result<std::optional<size_t>> QueueReceive(int mqd, std::span<uint8_t> buf) {
  ssize_t n = HandleEintr(
      [&] { return ::mq_receive(mqd, reinterpret_cast<char*>(buf.data()), buf.size(), nullptr); });
  if (n < 0) {
    if (errno == EAGAIN) return std::optional<size_t>();
    return SysError("mq_receive");
  }
  return std::optional<size_t>(static_cast<size_t>(n));
}

Result<void> QueueSend(int mqd, std::span<const uint8_t> data) {
  int r = HandleEintr(
      [&] { return ::mq_send(mqd, reinterpret_cast<const char*>(data.data()), data.size(), 0); });
  if (r != 0) {
    if (errno == EAGAIN) return MakeError(Errc::kOverflow, "queue full");
    return SysError("mq_send");
  }
  return {};
}

}  // namespace sbx
