// sbx: the Qt window over the broker core. Same options and control socket as sbx-broker, plus
// a few a window needs (--spawn, --stats, --screenshot, --measure-latency); see --help.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QPixmap>
#include <QSocketNotifier>
#include <QTimer>
#include <cstdio>
#include <memory>
#include <optional>
#include <string_view>

#include "broker/broker.h"
#include "broker/control_server.h"
#include "broker/event_json.h"
#include "broker/tcp_listener.h"
#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/latency_probe.h"
#include "ui/main_window.h"
#include "ui/renderer_grid.h"
#include "ui/window_options.h"

namespace {

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

// Whether every renderer has drawn at least one frame: --measure-latency starts then.
bool AllDrawing(sbx::Broker& broker) {
  auto list = broker.List();
  if (list.empty()) return false;
  for (const auto& s : list) {
    if (s.frames == 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::printf(
        "usage: sbx [options]\nThe sbx window: live renderers, a task manager, fault "
        "drills and recovery.\n%s",
        sbx::ui::WindowHelp().c_str());
    return 0;
  }
  if (!sbx::ui::HasDisplay(argc, argv)) {
    std::fputs(sbx::ui::NoDisplayMessage().c_str(), stderr);
    return 1;
  }
  // Blocked before Qt starts any thread, so every thread inherits the mask and the signals
  // arrive only as readable data on the signalfd: no handler ever runs. SIGUSR1 takes the
  // --screenshot now (ui/screenshot.sh sends it once the scene is set).
  auto blocked = sbx::BlockSignalsToFd({SIGINT, SIGTERM, SIGUSR1});
  if (!blocked) {
    std::fprintf(stderr, "sbx: %s\n", blocked.error().ToString().c_str());
    return 1;
  }
  sbx::UniqueFd sigfd = std::move(*blocked);

  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("sbx"));
  std::vector<std::string> args;
  for (const QString& a : QApplication::arguments()) args.push_back(a.toStdString());
  auto options = sbx::ui::ParseWindowCommandLine(args);
  if (!options) {
    std::fprintf(stderr, "sbx: %s\n%s", options.error().ToString().c_str(),
                 sbx::ui::WindowHelp().c_str());
    return 2;
  }

  auto broker = sbx::Broker::Create(options->cl.broker);
  if (!broker) {
    std::fprintf(stderr, "sbx: %s\n", broker.error().ToString().c_str());
    return 1;
  }
  std::string path = options->cl.control_path;
  if (path.empty()) {
    auto p = sbx::DefaultControlPath();
    if (!p) {
      std::fprintf(stderr, "sbx: %s\n", p.error().ToString().c_str());
      return 1;
    }
    path = *p;
  }
  auto control = sbx::ControlServer::Create(**broker, path);
  if (!control) {
    std::fprintf(stderr,
                 "sbx: control socket: %s\n(another sbx or sbx-broker may be running; pass "
                 "--control PATH)\n",
                 control.error().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "sbx: control socket at %s\n", path.c_str());
  std::unique_ptr<sbx::TcpListener> tcp;
  if (!options->cl.listen.empty()) {
    auto l = sbx::StartTcpListener(**broker, **control, options->cl.listen);
    if (!l) {
      std::fprintf(stderr, "sbx: %s\n", l.error().ToString().c_str());
      return 1;
    }
    tcp = std::move(*l);
    std::fprintf(stderr, "sbx: telnet %s\n", sbx::TelnetTarget(*tcp).c_str());
  }

  // --json: events on stdout through the same never-blocking sink as sbx-broker's.
  std::unique_ptr<sbx::OutputSink> out;
  std::optional<sbx::EventPrinter> printer;
  if (options->cl.json) {
    auto sink = sbx::OutputSink::Create((*broker)->loop(), STDOUT_FILENO, "sbx");
    if (!sink) {
      std::fprintf(stderr, "sbx: stdout: %s\n", sink.error().ToString().c_str());
      return 1;
    }
    out = std::move(*sink);
    printer.emplace(*out, sbx::EventPrinter::Format::kJson);
    (*broker)->AddObserver(&*printer);
  }
  sbx::ui::BrokerBridge bridge(**broker);
  sbx::ui::MainWindow window(&bridge, {.stats = options->stats, .control_path = path});
  if (options->width > 0) window.resize(options->width, options->height);
  window.show();

  QObject::connect(&bridge, &sbx::ui::BrokerBridge::loopFailed, &window, [](const QString& what) {
    std::fprintf(stderr, "sbx: event loop: %s\n", what.toUtf8().constData());
  });

  if (auto r = (*broker)->Start(); !r) {
    std::fprintf(stderr, "sbx: %s\n", r.error().ToString().c_str());
    return 1;
  }
  for (const auto& url : options->spawn) {
    if (auto id = (*broker)->Spawn(url); !id) {
      std::fprintf(stderr, "sbx: spawn %s: %s\n", url.c_str(), id.error().ToString().c_str());
      return 1;
    }
  }

  int exit_code = 0;
  bool shot_taken = false;
  auto take_screenshot = [&] {
    if (options->screenshot.empty() || shot_taken) return;
    shot_taken = true;
    QString file = QString::fromStdString(options->screenshot);
    QPixmap shot = window.grab();
    if (!shot.save(file, "PNG")) {
      std::fprintf(stderr, "sbx: cannot save %s\n", file.toUtf8().constData());
      exit_code = 1;
    } else {
      std::fprintf(stderr, "sbx: saved %s (%dx%d)\n",
                   QFileInfo(file).absoluteFilePath().toUtf8().constData(), shot.width(),
                   shot.height());
    }
    window.close();
  };
  if (!options->screenshot.empty()) {
    QTimer::singleShot(options->screenshot_after_ms, &window, take_screenshot);
  }

  QSocketNotifier signal_notifier(sigfd.get(), QSocketNotifier::Read);
  QObject::connect(&signal_notifier, &QSocketNotifier::activated, &window, [&] {
    signalfd_siginfo si;
    while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGUSR1) {
        take_screenshot();
        continue;
      }
      std::fprintf(stderr, "sbx: %s, closing every renderer\n",
                   sbx::SignalName(static_cast<int>(si.ssi_signo)));
      window.close();
    }
  });

  // --measure-latency: wait (up to 30 s) until every renderer draws, then sample the GUI
  // thread's timer lateness every 5 ms for the requested time.
  sbx::ui::LatencyProbe probe(5, /*keep_all=*/true);
  QElapsedTimer measuring;
  QElapsedTimer waited;
  QTimer measure_poll;
  uint64_t repaints_at_start = 0;
  uint64_t paints_at_start = 0;
  uint64_t torn_at_start = 0;
  uint64_t dispatches_at_start = 0;
  if (options->measure_latency_s > 0) {
    waited.start();
    QObject::connect(&measure_poll, &QTimer::timeout, &window, [&] {
      if (!measuring.isValid()) {
        if (!AllDrawing(**broker) && waited.elapsed() < 30'000) return;
        // Let the first frames settle (font caches, first layout) before measuring.
        if (waited.elapsed() < 2000) return;
        measuring.start();
        repaints_at_start = window.grid()->repaints();
        paints_at_start = window.grid()->paints();
        torn_at_start = window.grid()->torn_reads();
        dispatches_at_start = bridge.dispatches();
        probe.Start();
        return;
      }
      if (measuring.elapsed() < static_cast<qint64>(options->measure_latency_s * 1000)) return;
      probe.Stop();
      measure_poll.stop();
      double secs = static_cast<double>(measuring.elapsed()) / 1000.0;
      sbx::ui::LatencySummary s = probe.Total();
      auto stats = (*broker)->Stats();
      std::printf(
          "sbx: event-loop latency over %.1f s, %d renderers (%d running) at %u fps, "
          "platform %s:\n"
          "  timer lateness p50 %.2f ms, p99 %.2f ms, max %.2f ms (%zu samples, 5 ms timer)\n"
          "  %d of %d tiles visible; tile paints %.0f/s (%.0f/s asked), torn reads %llu, "
          "broker dispatches %.0f/s\n",
          secs, stats.renderers, stats.running, options->cl.broker.fps,
          QApplication::platformName().toUtf8().constData(), s.p50_ms, s.p99_ms, s.max_ms,
          s.samples, window.grid()->visible_tiles(), stats.renderers,
          static_cast<double>(window.grid()->paints() - paints_at_start) / secs,
          static_cast<double>(window.grid()->repaints() - repaints_at_start) / secs,
          static_cast<unsigned long long>(window.grid()->torn_reads() - torn_at_start),
          static_cast<double>(bridge.dispatches() - dispatches_at_start) / secs);
      std::fflush(stdout);
      window.close();
    });
    measure_poll.start(100);
  }

  int rc = QApplication::exec();
  if (printer) (*broker)->RemoveObserver(&*printer);
  return rc != 0 ? rc : exit_code;
}
