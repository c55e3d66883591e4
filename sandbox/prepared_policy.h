// The renderer's seccomp policy for a renderer that is pid sandbox::kRendererPidInside (as every
// renderer in its own pid namespace is), compiled by libseccomp when sbx was built: sbx-policy-gen
// writes PolicyProgram(kRendererPidInside) out as the array behind this function. A renderer
// that loads it skips compiling the same program at every start (~0.6 ms, most of what its own
// filter costs a launch). A test compares it with a fresh compile.
#pragma once

#include <linux/filter.h>

#include <span>

namespace sbx::sandbox {

std::span<const sock_filter> PreparedPolicyProgram();

}  // namespace sbx::sandbox
