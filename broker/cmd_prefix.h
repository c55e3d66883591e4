// The start-up check of a --renderer-cmd-prefix (a wrapper such as `strace -f -o FILE`), made
// once before any renderer is launched: a wrapper that cannot work is refused with the reason and
// what to do instead, never left to fail every launch and restart into a crash loop.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "ipc/error.h"

namespace sbx {

// Returns the prefix with its program resolved to an absolute path on this process's PATH, or
// an error that says why the wrapper cannot run renderers. The launch itself happens inside the
// sandbox, where an execvp would search PATH as another uid and could report a directory it may
// not read ("Permission denied") instead of the program that is not there. `sandboxed` is false
// for --no-sandbox, where every wrapper works.
Result<std::vector<std::string>> CheckCmdPrefix(std::vector<std::string> prefix, bool sandboxed);

// The account that started a root broker through sudo, from SUDO_UID and SUDO_GID: a real,
// non-root account named by digits only (SUDO_GID, when it does not name a group other than
// root's, gives way to the account's own group). Anything else is nullopt: an environment is
// whatever the caller made it, and a wrong value must never make renderers run as root.
struct InvokingUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};
std::optional<InvokingUser> ParseSudoUser(const char* sudo_uid, const char* sudo_gid);

// The one line a root broker prints at start about whose files a wrapper writes: the invoking
// user's (`user`), or the renderers' own uid (`own_uid`) and how to have them written as you.
std::string WrapperOwnerNote(const std::optional<InvokingUser>& user, uid_t own_uid);

// The event detail for an exit seen through a wrapper: the status is the wrapper's (gdb exits 0
// after its program crashed), which stands in for the renderer's.
std::string WrapperExitNote(const std::vector<std::string>& prefix);

}  // namespace sbx
