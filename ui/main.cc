// sbx: the Qt window over the broker core. Same options and control socket as sbx-broker, plus
// a few a window needs (--spawn, --stats, --screenshot, --measure-latency); see --help.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <QApplication>
#include <QDir>
#include <QDockWidget>
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
#include "broker/control_fronts.h"
#include "broker/delegated_scope.h"
#include "broker/event_json.h"
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
  auto list = broker.List(/*read_cgroup_usage=*/false);
  if (list.empty()) return false;
  for (const auto& s : list) {
    if (s.frames == 0) return false;
  }
  return true;
}

// --screenshot: the window saved once (after a delay, or on SIGUSR1), then closed.
class Screenshot {
 public:
  // `pane`, if not empty, is the object name of the widget to save instead of the whole window.
  Screenshot(QWidget& window, std::string file, std::string pane)
      : window_(window), file_(std::move(file)), pane_(std::move(pane)) {}
  // A pane in a tabbed dock is shown only while its tab is in front.
  void RaisePane() {
    if (QWidget* w = Pane(); w != nullptr && w != &window_) {
      for (QWidget* p = w; p != nullptr; p = p->parentWidget()) {
        if (auto* dock = qobject_cast<QDockWidget*>(p)) {
          dock->show();
          dock->raise();
        }
      }
    }
  }
  void Take() {
    if (file_.empty() || taken_) return;
    taken_ = true;
    QString file = QString::fromStdString(file_);
    QWidget* pane = Pane();
    if (pane == nullptr) pane = &window_;
    QPixmap shot = pane->grab();
    if (!shot.save(file, "PNG")) {
      std::fprintf(stderr, "sbx: cannot save %s\n", file.toUtf8().constData());
      exit_code_ = 1;
    } else {
      std::fprintf(stderr, "sbx: saved %s (%dx%d)\n",
                   QFileInfo(file).absoluteFilePath().toUtf8().constData(), shot.width(),
                   shot.height());
    }
    window_.close();
  }
  int exit_code() const { return exit_code_; }

 private:
  QWidget* Pane() const {
    if (pane_.empty()) return &window_;
    return window_.findChild<QWidget*>(QString::fromStdString(pane_ == "ipc" ? "ipc-view" : pane_));
  }

  QWidget& window_;
  std::string file_;
  std::string pane_;
  bool taken_ = false;
  int exit_code_ = 0;
};

// SIGUSR1 takes the screenshot; SIGINT and SIGTERM close the window, which closes the broker.
void OnSignals(int sigfd, QWidget& window, Screenshot& screenshot) {
  signalfd_siginfo si;
  while (::read(sigfd, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGUSR1) {
      screenshot.Take();
      continue;
    }
    std::fprintf(stderr, "sbx: %s, closing every renderer\n",
                 sbx::SignalName(static_cast<int>(si.ssi_signo)));
    window.close();
  }
}

// --measure-latency: waits (up to 30 s) until every renderer draws, then samples the GUI
// thread's timer lateness every 5 ms for the requested time, prints it and closes the window.
class LatencyRun {
 public:
  LatencyRun(sbx::Broker& broker, sbx::ui::BrokerBridge& bridge, sbx::ui::MainWindow& window,
             const sbx::ui::WindowOptions& options)
      : broker_(broker), bridge_(bridge), window_(window), options_(options) {
    if (options.measure_latency_s <= 0) return;
    waited_.start();
    QObject::connect(&poll_, &QTimer::timeout, &window, [this] { Poll(); });
    poll_.start(100);
  }

 private:
  struct Counts {
    uint64_t repaints = 0, paints = 0, torn = 0, dispatches = 0;
  };
  Counts Now() const {
    const auto* grid = window_.grid();
    return {grid->repaints(), grid->paints(), grid->torn_reads(), bridge_.dispatches()};
  }

  void Poll() {
    if (!measuring_.isValid()) {
      if (!AllDrawing(broker_) && waited_.elapsed() < 30'000) return;
      // Let the first frames settle (font caches, first layout) before measuring.
      if (waited_.elapsed() < 2000) return;
      measuring_.start();
      start_ = Now();
      probe_.Start();
      return;
    }
    if (measuring_.elapsed() < static_cast<qint64>(options_.measure_latency_s * 1000)) return;
    probe_.Stop();
    poll_.stop();
    Report();
    window_.close();
  }

  void Report() const {
    double secs = static_cast<double>(measuring_.elapsed()) / 1000.0;
    sbx::ui::LatencySummary s = probe_.Total();
    auto stats = broker_.Stats();
    Counts end = Now();
    auto per_s = [secs](uint64_t a, uint64_t b) { return static_cast<double>(b - a) / secs; };
    std::printf(
        "sbx: event-loop latency over %.1f s, %d renderers (%d running) at %u fps, "
        "platform %s:\n"
        "  timer lateness p50 %.2f ms, p99 %.2f ms, max %.2f ms (%zu samples, 5 ms timer)\n"
        "  %d of %d tiles visible; tile paints %.0f/s (%.0f/s asked), torn reads %llu, "
        "broker dispatches %.0f/s\n",
        secs, stats.renderers, stats.running, options_.cl.broker.fps,
        QApplication::platformName().toUtf8().constData(), s.p50_ms, s.p99_ms, s.max_ms, s.samples,
        window_.grid()->visible_tiles(), stats.renderers, per_s(start_.paints, end.paints),
        per_s(start_.repaints, end.repaints),
        static_cast<unsigned long long>(end.torn - start_.torn),
        per_s(start_.dispatches, end.dispatches));
    std::fflush(stdout);
  }

  sbx::Broker& broker_;
  sbx::ui::BrokerBridge& bridge_;
  sbx::ui::MainWindow& window_;
  const sbx::ui::WindowOptions& options_;
  sbx::ui::LatencyProbe probe_{5, /*keep_all=*/true};
  QElapsedTimer waited_;
  QElapsedTimer measuring_;
  QTimer poll_;
  Counts start_;
};

}  // namespace

// The window's start-up in the order it happens: signals blocked before Qt starts a thread,
// options, the broker and its control fronts, the window, then the optional timed runs.
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
  // Before Qt opens anything: on success this process becomes the same program again, in a
  // cgroup scope of its own (broker/delegated_scope.h). Qt's own options (-platform ...) are
  // not known to the parser yet; with them the window stays where it started.
  if (auto early = sbx::ui::ParseWindowCommandLine({argv, argv + argc}); early) {
    auto note = sbx::MaybeReenterDelegatedScope(argc, argv, early->cl.broker.cgroups);
    if (!note.empty()) std::fprintf(stderr, "sbx: %s\n", note.c_str());
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
  auto fronts = sbx::OpenControlFronts(**broker, options->cl);
  if (!fronts) {
    std::fprintf(stderr, "sbx: %s\n", fronts.error().ToString().c_str());
    return 1;
  }
  std::fputs(sbx::DescribeControlFronts(*fronts, "sbx: ").c_str(), stderr);
  const std::string& path = fronts->path;

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

  Screenshot screenshot(window, options->screenshot, options->screenshot_of);
  if (!options->screenshot.empty()) {
    screenshot.RaisePane();
    QTimer::singleShot(options->screenshot_after_ms, &window, [&] { screenshot.Take(); });
  }
  QSocketNotifier signal_notifier(sigfd.get(), QSocketNotifier::Read);
  QObject::connect(&signal_notifier, &QSocketNotifier::activated, &window,
                   [&] { OnSignals(sigfd.get(), window, screenshot); });

  LatencyRun latency(**broker, bridge, window, *options);

  int rc = QApplication::exec();
  if (printer) (*broker)->RemoveObserver(&*printer);
  return rc != 0 ? rc : screenshot.exit_code();
}
