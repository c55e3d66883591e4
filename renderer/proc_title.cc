#include "renderer/proc_title.h"

#include <algorithm>
#include <cstring>

extern char** environ;

namespace sbx::renderer {

ProcTitle ProcTitle::Take(int argc, char** argv) {
  ProcTitle t;
  if (argc < 1 || argv[0] == nullptr) return t;
  t.begin_ = argv[0];
  char* end = argv[0];
  // Only the strings that follow each other without a gap are the kernel's block.
  for (int i = 0; i < argc && argv[i] == end; ++i) end = argv[i] + std::strlen(argv[i]) + 1;
  t.argv_size_ = static_cast<size_t>(end - t.begin_);
  if (environ != nullptr) {
    for (char** e = environ; *e != nullptr; ++e) t.env_copy_.emplace_back(*e);
    for (char** e = environ; *e != nullptr && *e == end; ++e) end = *e + std::strlen(*e) + 1;
    for (auto& s : t.env_copy_) t.env_ptrs_.push_back(s.data());
    t.env_ptrs_.push_back(nullptr);
    environ = t.env_ptrs_.data();
  }
  t.size_ = static_cast<size_t>(end - t.begin_);
  t.argv0_ = argv[0];
  t.buffer_.reserve(t.size_);
  return t;
}

void ProcTitle::Set(std::span<const std::string> args) {
  if (begin_ == nullptr) return;
  std::string& line = buffer_;
  line.assign(argv0_);
  for (const auto& a : args) {
    line.push_back('\0');
    line.append(a);
  }
  line.push_back('\0');
  if (line.size() > argv_size_) {
    // One line: the kernel stops at its first NUL once the last byte of the old arguments is
    // not a NUL.
    std::replace(line.begin(), line.end() - 1, '\0', ' ');
    if (line.size() > size_) {
      line.resize(size_);
      line.back() = '\0';
    }
  }
  std::memcpy(begin_, line.data(), line.size());
  std::memset(begin_ + line.size(), 0, size_ - line.size());
}

}  // namespace sbx::renderer
