// The renderer's command line, kept true: `ps` and /proc/PID/cmdline show what the process is
// (`--type=renderer`) and the page it shows now, not only the one it started with, as Chrome
// rewrites its renderers' titles. The kernel reads the command line from the memory argv came
// in, so the title is rewritten there, in place: no syscall, which the sandbox would refuse.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::renderer {

class ProcTitle {
 public:
  // Takes over the memory of argv's strings and of the environment strings right after them
  // (the kernel lays both out in one block): environ is copied elsewhere first, so getenv keeps
  // working. Call once, from main, before any other thread starts.
  static ProcTitle Take(int argc, char** argv);

  ProcTitle(ProcTitle&&) = default;
  ProcTitle& operator=(ProcTitle&&) = default;

  // Makes the command line argv[0] followed by `args`. While it fits where the original
  // arguments were, it stays separate arguments; longer, it becomes one line with spaces that
  // runs on into the environment's old place (how the kernel reads a rewritten title), cut off
  // where that ends.
  void Set(std::span<const std::string> args);

  // Room for the whole title, argv[0] and the terminator included.
  size_t capacity() const { return size_; }

 private:
  ProcTitle() = default;
  char* begin_ = nullptr;
  size_t argv_size_ = 0;  // bytes of the original argument strings, terminators included
  size_t size_ = 0;       // argv_size_ plus the environment strings taken over
  std::string argv0_;
  std::string buffer_;  // reused by Set
  std::vector<std::string> env_copy_;
  std::vector<char*> env_ptrs_;
};

}  // namespace sbx::renderer
