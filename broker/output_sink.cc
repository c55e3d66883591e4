#include "broker/output_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "ipc/posix.h"

namespace sbx {

namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

// O_NONBLOCK is a flag of the open file description, which a shell shares with every process it
// starts on the same terminal or pipe: set on our fd 1, it would make the shell's own reads and
// writes fail with EAGAIN after we exit, and a reader of the same pipe could clear it under us.
// Opening /proc/self/fd/N again makes a new description of the same pipe, FIFO or terminal that
// only we hold, so the flag changes nothing for anyone else. A socket cannot be opened again,
// but send() takes MSG_DONTWAIT per call. A regular file never waits for a reader.
Result<std::unique_ptr<OutputSink>> OutputSink::Create(EventLoop& loop, int fd, std::string program,
                                                       int report_fd, size_t capacity) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return SysError("fstat " + std::to_string(fd));
  Mode mode = Mode::kDirect;
  UniqueFd own;
  if (S_ISSOCK(st.st_mode)) {
    mode = Mode::kSocket;
  } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    own.reset(HandleEintr(
        [&] { return ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY); }));
    if (own.valid()) {
      mode = Mode::kNonBlocking;
    } else {
      mode = Mode::kBlocking;
      // ENXIO: a pipe nobody reads any more, where a write fails at once (EPIPE) and the first
      // one says so; anything else is worth a warning.
      if (errno != ENXIO) {
        std::string why = std::strerror(errno);
        std::string note = program + ": cannot make stdout non-blocking (open " + path + ": " +
                           why + "); a reader that stops reading will stall " + program + "\n";
        (void)WriteAll(report_fd, Bytes(note));
      }
    }
  }
  return std::make_unique<OutputSink>(loop, fd, std::move(own), mode, std::move(program), report_fd,
                                      capacity);
}

OutputSink::OutputSink(EventLoop& loop, int fd, UniqueFd own, Mode mode, std::string program,
                       int report_fd, size_t capacity)
    : loop_(loop),
      fd_(own.valid() ? own.get() : fd),
      own_(std::move(own)),
      mode_(mode),
      program_(std::move(program)),
      report_fd_(report_fd),
      capacity_(capacity) {}

OutputSink::~OutputSink() {
  loop_.Unwatch(watch_);
  if (!broken_) Flush();
  if (!buffer_.empty()) {
    auto lines = static_cast<uint64_t>(std::count(buffer_.begin(), buffer_.end(), '\n'));
    dropped_episode_ += lines;
    dropped_total_ += lines;
  }
  if (dropped_episode_ > 0 && !broken_) {
    Report(std::to_string(dropped_episode_) + " events were dropped: its reader did not keep up");
  }
}

void OutputSink::Report(const std::string& what) const {
  std::string line = program_ + ": stdout: " + what + "\n";
  // Best effort: stderr is a person's terminal or a log file, written rarely.
  (void)WriteAll(report_fd_, Bytes(line));
}

void OutputSink::Broken(const Error& e) {
  broken_ = true;
  dropped_total_ += static_cast<uint64_t>(std::count(buffer_.begin(), buffer_.end(), '\n'));
  buffer_.clear();
  loop_.Unwatch(watch_);
  watch_ = 0;
  Report("cannot write (" + e.ToString() + "); nothing more is printed there");
}

bool OutputSink::WriteLine(std::string_view line) {
  if (broken_ || buffer_.size() + line.size() + 1 > capacity_) {
    if (!broken_ && dropped_episode_ == 0) {
      Report("its reader is not keeping up; dropping events until it does");
    }
    ++dropped_episode_;
    ++dropped_total_;
    return false;
  }
  buffer_.append(line);
  buffer_ += '\n';
  // Waiting for the reader already: the line goes out in order, once it drains.
  if (watch_ == 0) Flush();
  return !broken_;
}

void OutputSink::Flush() {
  while (!buffer_.empty()) {
    ssize_t n;
    if (mode_ == Mode::kSocket) {
      n = HandleEintr(
          [&] { return ::send(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT | MSG_NOSIGNAL); });
    } else if (mode_ == Mode::kNonBlocking) {
      n = HandleEintr([&] { return ::write(fd_, buffer_.data(), buffer_.size()); });
    } else {
      auto r = WriteAll(fd_, Bytes(buffer_));
      if (!r) return Broken(r.error());
      n = static_cast<ssize_t>(buffer_.size());
    }
    if (n < 0) {
      if (errno == EAGAIN) break;
      auto e = SysError("write");
      return Broken(e.error());
    }
    buffer_.erase(0, static_cast<size_t>(n));
  }
  UpdateWatch();
  if (buffer_.empty() && dropped_episode_ > 0) {
    Report("its reader caught up; " + std::to_string(dropped_episode_) +
           " events were dropped meanwhile");
    dropped_episode_ = 0;
  }
}

void OutputSink::UpdateWatch() {
  bool want = !buffer_.empty();
  if (want == (watch_ != 0)) return;
  if (!want) {
    loop_.Unwatch(watch_);
    watch_ = 0;
    return;
  }
  auto w = loop_.Watch(fd_, EPOLLOUT, [this](uint32_t) { Flush(); });
  if (!w) return Broken(w.error());
  watch_ = *w;
}

void OutputSink::Drain(int timeout_ms) {
  const int64_t deadline = MonotonicNs() + int64_t{timeout_ms} * 1'000'000;
  while (!broken_ && !buffer_.empty()) {
    int64_t left_ms = (deadline - MonotonicNs()) / 1'000'000;
    if (left_ms <= 0) return;
    pollfd p{fd_, POLLOUT, 0};
    if (HandleEintr([&] { return ::poll(&p, 1, static_cast<int>(left_ms)); }) < 0) return;
    Flush();
  }
}

}  // namespace sbx
