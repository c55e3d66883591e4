// Messages on the zygote's socket, as a broken or compromised zygote may send them to the broker,
// and requests as the zygote reads them: the input is one message's bytes, its first byte the
// number of descriptors said to come with it. Properties: decoding never crashes or recurses
// without bound (a message is at most zygote::kMaxMessage bytes), an answer is a child or a reply,
// a child's pid is positive, and a decoded request names only the descriptors it came with.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include "broker/zygote.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > sbx::zygote::kMaxMessage + 1) return 0;
  const size_t nfds = data[0] % (sbx::zygote::kMaxFds + 1);
  std::span<const uint8_t> bytes(data + 1, size - 1);

  auto answer = sbx::zygote::DecodeAnswer(bytes, nfds);
  if (answer && answer->child) SBX_FUZZ_CHECK(answer->child->pid > 0);
  if (answer && !answer->child) SBX_FUZZ_CHECK(!answer->reply.has_queue || nfds == 1);

  // Descriptor numbers no real fd has, so a decoded spec shows where each one came from.
  std::array<int, sbx::zygote::kMaxFds> fds{};
  for (size_t i = 0; i < fds.size(); ++i) fds[i] = 1000 + static_cast<int>(i);
  auto given = std::span<const int>(fds).first(nfds);
  auto spec = sbx::zygote::DecodeRequest(bytes, given);
  if (spec) {
    auto named = [&](int fd) { return std::ranges::find(given, fd) != given.end(); };
    SBX_FUZZ_CHECK(!spec->argv.empty());
    for (auto [from, to] : spec->fds) SBX_FUZZ_CHECK(named(from) && to >= 0);
    for (int fd : spec->stdio) SBX_FUZZ_CHECK(fd == -1 || named(fd));
    for (int fd : spec->cgroup_procs) SBX_FUZZ_CHECK(named(fd));
    if (spec->confine) SBX_FUZZ_CHECK(named(spec->confine->exec_fd));
  }
  return 0;
}
