// sbx-broker: the broker core with no window, for scripts and CI. Events go to stdout (one JSON
// object per line with --json), the control socket takes commands, and SIGINT/SIGTERM close
// every renderer (SIGTERM, then SIGKILL after 1 s), reap them and exit 0.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>

#include "broker/broker.h"
#include "broker/cli.h"
#include "broker/control_fronts.h"
#include "broker/delegated_scope.h"
#include "broker/event_json.h"
#include "broker/output_sink.h"
#include "ipc/posix.h"

namespace {
constexpr int kFinalDrainMs = 1000;
}  // namespace

int main(int argc, char** argv) {
  auto cl = sbx::ParseCommandLine(argc, argv);
  if (!cl) {
    std::fprintf(stderr, "sbx-broker: %s\n%s", cl.error().ToString().c_str(),
                 sbx::CommandLineHelp());
    return 2;
  }
  if (cl->help) {
    std::printf("usage: sbx-broker [options]\n%s", sbx::CommandLineHelp());
    return 0;
  }
  // First of all: on success this process becomes the same program again, in a cgroup scope of
  // its own (delegated_scope.h).
  if (auto note = sbx::MaybeReenterDelegatedScope(argc, argv, cl->broker.cgroups); !note.empty()) {
    std::fprintf(stderr, "sbx-broker: %s\n", note.c_str());
  }
  // Signals arrive as readable data on a signalfd in the event loop; no handler runs.
  auto blocked = sbx::BlockSignalsToFd({SIGINT, SIGTERM});
  if (!blocked) {
    std::fprintf(stderr, "sbx-broker: %s\n", blocked.error().ToString().c_str());
    return 1;
  }
  sbx::UniqueFd sigfd = std::move(*blocked);

  auto broker = sbx::Broker::Create(cl->broker);
  if (!broker) {
    std::fprintf(stderr, "sbx-broker: %s\n", broker.error().ToString().c_str());
    return 1;
  }
  auto fronts = sbx::OpenControlFronts(**broker, *cl);
  if (!fronts) {
    std::fprintf(stderr, "sbx-broker: %s\n", fronts.error().ToString().c_str());
    return 1;
  }
  std::fputs(sbx::DescribeControlFronts(*fronts, "sbx-broker: ").c_str(), stderr);

  // Events go out through a bounded buffer that never blocks the loop: a slow reader of stdout
  // loses events (counted, and told on stderr), never the broker's attention.
  auto out = sbx::OutputSink::Create((*broker)->loop(), STDOUT_FILENO, "sbx-broker");
  if (!out) {
    std::fprintf(stderr, "sbx-broker: stdout: %s\n", out.error().ToString().c_str());
    return 1;
  }
  sbx::EventPrinter printer(
      **out, cl->json ? sbx::EventPrinter::Format::kJson : sbx::EventPrinter::Format::kText);
  (*broker)->AddObserver(&printer);
  auto watch = (*broker)->loop().Watch(sigfd.get(), EPOLLIN, [&](uint32_t) {
    signalfd_siginfo si;
    while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
      std::fprintf(stderr, "sbx-broker: %s, closing every renderer\n",
                   sbx::SignalName(static_cast<int>(si.ssi_signo)));
      (*broker)->Shutdown();
    }
  });
  if (!watch) {
    std::fprintf(stderr, "sbx-broker: %s\n", watch.error().ToString().c_str());
    return 1;
  }
  if (auto r = (*broker)->Start(); !r) {
    std::fprintf(stderr, "sbx-broker: %s\n", r.error().ToString().c_str());
    return 1;
  }
  while (!(*broker)->finished()) {
    if (auto r = (*broker)->loop().Dispatch(-1); !r) {
      std::fprintf(stderr, "sbx-broker: %s\n", r.error().ToString().c_str());
      return 1;
    }
  }
  (*broker)->RemoveObserver(&printer);
  // The last events (every renderer's `closed`) get a moment to reach a reader that is there.
  (*out)->Drain(kFinalDrainMs);
  return 0;
}
