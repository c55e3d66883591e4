// The one error type below ui/: a category, the errno that caused it (0 if none) and a short
// human-readable context. Every fallible call returns Result<T>; nothing below ui/ throws.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

namespace sbx {

enum class Errc {
  kSystem,           // a syscall failed; sys_errno says why
  kPeerClosed,       // the other end of a channel went away
  kProtocol,         // a peer sent something the protocol forbids
  kOverflow,         // a bounded buffer or queue is full
  kInvalidArgument,  // a caller (possibly a control client) asked for something malformed
  kNotFound,         // no such renderer, page or file
  kState,            // the request does not fit the current state
  kTimeout,          // a deadline passed
};

struct Error {
  Errc code = Errc::kSystem;
  int sys_errno = 0;
  std::string what;

  std::string ToString() const;
};

// std::expected itself may be dropped silently; a Result may not: ignoring one is a compile
// error (-Werror), and a deliberate discard says so with (void) and a comment. It is the
// expected in every other respect, and converts from one (what and_then/transform return).
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using Base = std::expected<T, Error>;
  using Base::Base;
  constexpr Result(const Base& b) : Base(b) {}        // NOLINT: implicit by design
  constexpr Result(Base&& b) : Base(std::move(b)) {}  // NOLINT: implicit by design
};

// Captures errno at the call site; use right after the failing syscall.
inline std::unexpected<Error> SysError(std::string what) {
  return std::unexpected(Error{Errc::kSystem, errno, std::move(what)});
}

inline std::unexpected<Error> MakeError(Errc code, std::string what) {
  return std::unexpected(Error{code, 0, std::move(what)});
}

const char* ErrcName(Errc code);

}  // namespace sbx
