#include "broker/broker.h"

#include <elf.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include "broker/cmd_prefix.h"
#include "broker/event_json.h"
#include "broker/hang_watchdog.h"
#include "broker/renderer_host.h"
#include "broker/renderer_process.h"
#include "ipc/codec.h"
#include "ipc/posix.h"
#include "sandbox/policy.h"

namespace sbx {

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kSpawned:
      return "spawned";
    case EventType::kReady:
      return "ready";
    case EventType::kUnresponsive:
      return "unresponsive";
    case EventType::kResponsive:
      return "responsive";
    case EventType::kExited:
      return "exited";
    case EventType::kRestarting:
      return "restarting";
    case EventType::kFailed:
      return "failed";
    case EventType::kClosed:
      return "closed";
    case EventType::kDrillReport:
      return "drill-report";
    case EventType::kLog:
      return "log";
    case EventType::kVisibility:
      return "visibility";
  }
  return "unknown";
}

namespace {

constexpr int64_t kStraySweepPeriodNs = 1'000'000'000;
// How long one loop turn may spend starting queued renderers. Through the zygote a launch costs
// the loop its preparation and one message; forked by the broker it takes a few milliseconds,
// waited for. In between, every ready fd and due timer is served.
constexpr int64_t kLaunchSliceNs = 2'000'000;
// Launches waiting on the zygote at once. It makes one at a time; one or two more queued on its
// socket keep it busy while the loop reads each answer, and the bound keeps the fds in flight
// (about ten a request) and the processes a failed zygote takes down with it few.
constexpr size_t kMaxLaunchesInFlight = 4;
// What a renderer costs in memory beside its frame buffers: its processes' own pages (PSS about
// 2 MiB), their page tables and kernel stacks, and its share of the broker.
constexpr uint64_t kRendererOverheadBytes = uint64_t{4} << 20;
// The launch queue's entry for the spare: no slot has id 0.
constexpr int kSpareMarker = 0;
// A spare lost before it was taken is replaced at once the first time, then after a wait that
// doubles up to this: a renderer that cannot start must not keep the broker launching.
constexpr int64_t kSpareRetryFirstMs = 100;
constexpr int64_t kSpareRetryMaxMs = 5000;

// The memory limit of the cgroup the broker runs in, if it has one (0: none, or unknown). The
// per-broker directories are made inside it, so it is their parent.
uint64_t OwnCgroupMemoryLimit(const CgroupSupport& cgroups) {
  if (cgroups.mode == CgroupMode::kNone || cgroups.broker_dirs.empty()) return 0;
  std::string own = std::filesystem::path(cgroups.broker_dirs[0]).parent_path();
  auto text = ReadSmallFile(
      own + (cgroups.mode == CgroupMode::kV2 ? "/memory.max" : "/memory.limit_in_bytes"));
  if (!text) return 0;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  return ec == std::errc() && p != text->data() ? v : 0;  // "max" has no digits: no limit
}

bool SeccompAvailable() {
  // The kernel lists a Seccomp field in /proc/self/status only when it was built with seccomp.
  auto status = ReadSmallFile("/proc/self/status");
  return status && status->find("\nSeccomp:") != std::string::npos;
}

// Whether the ELF executable behind `fd` needs no program interpreter (a static or static-PIE
// binary): only such a program can start inside the empty root.
bool IsStaticExecutable(int fd) {
  Elf64_Ehdr eh;
  if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) return false;
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64) {
    return false;
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    off_t at = static_cast<off_t>(eh.e_phoff + i * sizeof ph);
    if (::pread(fd, &ph, sizeof ph, at) != static_cast<ssize_t>(sizeof ph)) return false;
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

// The ids a root broker maps its renderers to: below systemd's dynamic users (61184-65519) and
// above the range useradd hands out (UID_MAX 60000), as docs/SANDBOX.md says.
constexpr uid_t kRendererIdFirst = 60900;
constexpr uid_t kRendererIdLast = 60999;

// Whether some process on the host runs with `uid` as any of its uids or `uid` as any gid.
bool IdInUse(uid_t id) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto status = ReadSmallFile(entry.path() / "status");
    if (!status) continue;  // gone meanwhile
    for (const char* key : {"\nUid:", "\nGid:"}) {
      auto at = status->find(key);
      if (at == std::string::npos) continue;
      std::istringstream row(status->substr(at + 5, status->find('\n', at + 1) - at - 5));
      for (unsigned long v; row >> v;) {
        if (v == id) return true;
      }
    }
  }
  return false;
}

// Claims `id` for this broker while the returned socket is open, or returns an invalid fd when
// another broker holds it. An abstract Unix socket name is unique in its network namespace and
// goes with its process, so two root brokers starting at once never pick the same id (before
// either has a process running as it) and one killed with SIGKILL leaves nothing behind.
Result<UniqueFd> ClaimRendererId(uid_t id) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return SysError("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = RendererIdClaimName(id);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) return s;
  if (errno == EADDRINUSE) return UniqueFd();
  return SysError("bind " + name);
}

// The first id of the range with no account, no group, no process and no other broker's claim.
Result<uid_t> PickRendererId(UniqueFd& claim) {
  for (uid_t id = kRendererIdFirst; id <= kRendererIdLast; ++id) {
    if (::getpwuid(id) != nullptr || ::getgrgid(id) != nullptr) continue;
    auto mine = ClaimRendererId(id);
    if (!mine) return std::unexpected(mine.error());
    if (!mine->valid() || IdInUse(id)) continue;
    claim = std::move(*mine);
    return id;
  }
  return MakeError(Errc::kNotFound, "no free renderer uid in 60900-60999");
}

// The uid and gid a root broker runs its renderers as. Under a wrapper, started through sudo:
// the account that ran sudo, so the wrapper's files (strace -o FILE) are that person's; that
// account's processes may then signal and trace the renderers, which is what debugging wants.
// Otherwise a free id of its own (PickRendererId); never root, whose files a wrapper would get
// before the renderer confines itself.
Result<std::pair<uid_t, gid_t>> PickRendererIds(const std::vector<std::string>& cmd_prefix,
                                                UniqueFd& claim) {
  std::optional<InvokingUser> user;
  if (!cmd_prefix.empty()) user = ParseSudoUser(std::getenv("SUDO_UID"), std::getenv("SUDO_GID"));
  std::pair<uid_t, gid_t> ids;
  if (user) {
    ids = {user->uid, user->gid};
  } else {
    auto id = PickRendererId(claim);
    if (!id) return std::unexpected(id.error());
    ids = {*id, *id};
  }
  if (!cmd_prefix.empty()) std::fputs(WrapperOwnerNote(user, ids.first).c_str(), stderr);
  return ids;
}

std::string DefaultRendererPath() {
  auto self = SelfExePath();
  if (!self) return "sbx-renderer";
  return self->substr(0, self->rfind('/') + 1) + "sbx-renderer";
}

}  // namespace

// The spare's delegate: it has no slot, so what it reports goes to the broker alone. It says
// nothing the protocol allows before its assignment (RendererProcess makes anything a violation),
// so only its stdout/stderr and its exit arrive here.
class Broker::SpareKeeper final : public RendererProcess::Delegate {
 public:
  explicit SpareKeeper(Broker& broker) : broker_(broker) {}
  std::unique_ptr<RendererProcess> process;
  std::unique_ptr<RendererProcess> launching;  // its launch is in flight
  bool ready = false;                          // process answered the ping sent at its launch

 private:
  void OnLaunched(Result<void> result) override {
    std::unique_ptr<RendererProcess> launched = std::move(launching);
    if (!result) return broker_.SpareFailed(result.error());
    broker_.SpareStarted(std::move(launched));
  }
  void OnFirstFrame(int64_t) override {}
  void OnFrame(uint64_t) override {}
  void OnHeartbeat(const protocol::Heartbeat&, int64_t) override {}
  void OnDrillReport(const std::string&) override {}
  void OnLog(BrokerEvent e) override {
    std::fprintf(stderr, "sbx: spare renderer (pid %d): %s\n", static_cast<int>(e.pid),
                 e.detail.c_str());
  }
  void OnExit(ExitInfo info) override {
    // Destroyed after the call: the namespace's init is killed and the frame buffer unmapped.
    std::unique_ptr<RendererProcess> gone = std::move(process);
    broker_.SpareLost(info);
  }

  Broker& broker_;
};

Result<std::unique_ptr<Broker>> Broker::Create(BrokerOptions options) {
  if (!options.geometry.valid()) return MakeError(Errc::kInvalidArgument, "bad frame size");
  if (options.fps < protocol::kMinFps || options.fps > protocol::kMaxFps) {
    return MakeError(Errc::kInvalidArgument, "fps out of range");
  }
  if (options.hang_timeout_ms < 1) return MakeError(Errc::kInvalidArgument, "bad hang timeout");
  if (!IsValidUrl(options.page)) return MakeError(Errc::kInvalidArgument, "invalid page url");
  auto prefix = CheckCmdPrefix(std::move(options.cmd_prefix), options.sandbox);
  if (!prefix) return std::unexpected(prefix.error());
  options.cmd_prefix = std::move(*prefix);
  // A renderer that dies while we write to it must be an EPIPE error, never a fatal signal.
  if (auto r = IgnoreSignal(SIGPIPE); !r) return std::unexpected(r.error());
  // Every renderer's fd 0, so that none reads the broker's (the user's terminal, or data piped
  // into the broker). Opened once, before any renderer exists: a launch never opens a path.
  UniqueFd dev_null(HandleEintr([] { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }));
  if (!dev_null) return SysError("open /dev/null");
  auto loop = EventLoop::Create();
  if (!loop) return std::unexpected(loop.error());
  std::string path = options.renderer_path.empty() ? DefaultRendererPath() : options.renderer_path;
  auto b = std::make_unique<Broker>(Key{}, std::move(*loop), std::move(options), std::move(path));
  b->dev_null_ = std::move(dev_null);
  b->spare_ = std::make_unique<SpareKeeper>(*b);
  // A wrapper's argv is its own: whether it would hand --spare to a renderer that knows it
  // cannot be told from here.
  b->spare_enabled_ = b->options_.spare && b->options_.cmd_prefix.empty();
  if (!b->options_.sandbox) {
    b->sandbox_level_ = sandbox::Level::kOff;
    b->sandbox_note_ = "--no-sandbox";
    std::fprintf(stderr,
                 "sbx: WARNING: --no-sandbox: renderers run with no sandbox layer at all\n");
  } else if (auto holder = b->EnsureNamespaceHolder(); !holder) {
    b->sandbox_level_ = sandbox::Level::kNoNamespaces;
    b->sandbox_note_ = "user namespaces unavailable: " + holder.error().ToString();
    std::fprintf(stderr,
                 "sbx: WARNING: %s\n"
                 "sbx: WARNING: renderers get every other layer (seccomp-bpf, rlimits, no\n"
                 "sbx: WARNING: capabilities, no_new_privs) but share the broker's namespaces\n",
                 b->sandbox_note_.c_str());
    if (!SeccompAvailable()) {
      return MakeError(Errc::kState,
                       "no sandbox layer is available (no user namespaces, no seccomp); "
                       "pass --no-sandbox to run renderers unconfined");
    }
  }
  b->SetUpCgroups();
  b->SetMaxRenderers(RaiseFdLimit());
  if (auto r = b->PrepareConfinement(); !r) return std::unexpected(r.error());
  b->Tick();
  return b;
}

void Broker::SetUpCgroups() {
  if (!options_.cgroups) {
    cgroups_ = {CgroupMode::kNone, "no cgroup (--no-cgroup): memory bounded per process only", {}};
    std::fprintf(stderr, "sbx: %s\n", cgroups_.reason.c_str());
    return;
  }
  cgroups_ = DetectCgroups();
  int swept = SweepStaleCgroups(cgroups_);
  if (swept > 0)
    std::fprintf(stderr, "sbx: removed %d cgroup(s) left by a broker that died\n", swept);
  if (cgroups_.mode == CgroupMode::kNone) {
    std::fprintf(stderr, "sbx: %s\n", cgroups_.reason.c_str());
  }
  // Half of RAM by default: the other half stays for the broker, the window and the rest of the
  // desktop however many renderers are asked for.
  memory_budget_ = options_.memory_budget;
  if (memory_budget_ == 0) {
    long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    memory_budget_ = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * page / 2 : 0;
  }
}

uint64_t RaiseFdLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  // An unbounded hard limit cannot be the soft one (the kernel caps it at fs.nr_open).
  rlim_t want = lim.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : lim.rlim_max;
  if (lim.rlim_cur < want) {
    rlimit raised{want, lim.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim.rlim_cur = want;
  }
  return lim.rlim_cur;
}

RendererBound DefaultMaxRenderers(uint64_t memory_bytes, uint64_t frame_bytes, uint64_t nproc,
                                  uint64_t nofile) {
  RendererBound b{kMaxRenderersCap, "at most " + std::to_string(kMaxRenderersCap) + " by default"};
  if (memory_bytes > 0) {
    uint64_t each = frame_bytes + kRendererOverheadBytes;
    uint64_t n = memory_bytes / each;
    if (n < static_cast<uint64_t>(b.max)) {
      b.max = static_cast<int>(n);
      b.why = std::to_string(memory_bytes >> 20) + " MiB of memory for renderers at " +
              std::to_string((each + (1 << 20) - 1) >> 20) + " MiB each";
    }
  }
  if (nproc != RLIM_INFINITY) {
    uint64_t n = nproc / 2 / kTasksPerRenderer;
    if (n < static_cast<uint64_t>(b.max)) {
      b.max = static_cast<int>(n);
      b.why = "half of RLIMIT_NPROC (" + std::to_string(nproc) + " tasks) at " +
              std::to_string(kTasksPerRenderer) + " tasks per renderer";
    }
  }
  if (nofile != RLIM_INFINITY) {
    uint64_t n = nofile > kFdsReserved ? (nofile - kFdsReserved) / kFdsPerRenderer : 0;
    if (n < static_cast<uint64_t>(b.max)) {
      b.max = static_cast<int>(n);
      b.why = "RLIMIT_NOFILE (" + std::to_string(nofile) + " descriptors) at " +
              std::to_string(kFdsPerRenderer) + " per renderer";
    }
  }
  b.max = std::max(b.max, 1);
  return b;
}

void Broker::SetMaxRenderers(uint64_t nofile) {
  if (options_.max_renderers > 0) {
    max_renderers_ = {options_.max_renderers, "--max-renderers"};
    return;
  }
  uint64_t memory = memory_budget_;
  if (uint64_t own = OwnCgroupMemoryLimit(cgroups_); own > 0 && (memory == 0 || own < memory)) {
    memory = own;
  }
  rlimit nproc{RLIM_INFINITY, RLIM_INFINITY};
  (void)::getrlimit(RLIMIT_NPROC, &nproc);
  uint64_t frames = 2 * options_.geometry.buffer_span() + 4096;  // both buffers and the header
  max_renderers_ = DefaultMaxRenderers(memory, frames, nproc.rlim_cur, nofile);
}

int Broker::LiveSlots() const {
  int n = 0;
  for (const auto& [id, host] : hosts_) n += host->state() != RendererState::kClosed;
  return n;
}

Result<void> Broker::CheckMemoryBudget() const {
  if (cgroups_.mode == CgroupMode::kNone || memory_budget_ == 0) return {};
  auto slots = static_cast<uint64_t>(LiveSlots());
  uint64_t each = options_.cgroup.memory_bytes;
  if ((slots + 1) * each <= memory_budget_) return {};
  return MakeError(Errc::kState, "spawn refused: the memory budget of " +
                                     std::to_string(memory_budget_ >> 20) + " MiB holds " +
                                     std::to_string(memory_budget_ / each) + " renderers of " +
                                     std::to_string(each >> 20) + " MiB (--memory-budget)");
}

Result<void> Broker::PrepareConfinement() {
  if (sandbox_level_ != sandbox::Level::kFull) return {};
  if (!options_.cmd_prefix.empty()) {
    std::fprintf(stderr,
                 "sbx: note: under --renderer-cmd-prefix the wrapper must exec the renderer, so\n"
                 "sbx: note: the launcher applies only the namespaces and stdio; the empty root,\n"
                 "sbx: note: capabilities, rlimits and seccomp are the renderer's own\n");
    return {};
  }
  // A renderer missing now is a launch failure at each spawn, as before; only a dynamic one is
  // worth a word at start.
  UniqueFd exe(OpenRenderer());
  if (exe && !IsStaticExecutable(exe.get())) {
    std::fprintf(stderr,
                 "sbx: note: %s is dynamically linked, so it cannot start inside the empty\n"
                 "sbx: note: root: it is launched by path and confines itself\n",
                 renderer_path_.c_str());
    return {};
  }
  auto filter = sandbox::LauncherFilterProgram();
  if (!filter) return std::unexpected(filter.error());
  launcher_filter_ = std::move(*filter);
  return {};
}

int Broker::OpenRenderer() const {
  return HandleEintr([&] { return ::open(renderer_path_.c_str(), O_RDONLY | O_CLOEXEC); });
}

Broker::Broker(Key, EventLoop loop, BrokerOptions options, std::string renderer_path)
    : loop_(std::move(loop)),
      options_(std::move(options)),
      renderer_path_(std::move(renderer_path)),
      start_ns_(MonotonicNs()) {}

Broker::~Broker() {
  loop_.CancelTimer(tick_timer_);
  loop_.CancelTimer(launch_timer_);
  loop_.CancelTimer(spare_timer_);
  hosts_.clear();
  spare_.reset();  // kills and reaps it, then its init
  // Launches still in flight (cancelled by their owners above) go with the zygote, each killed
  // and reaped here in order, the program before its init: reaping_ would take them in any order.
  if (zygote_) zygote_->SetReapLater({});
  DropZygote();
  for (auto& [token, child] : reaping_) loop_.Unwatch(token);
  reaping_.clear();  // each ChildProcess kills and reaps, sweeping strays as it waits
  loop_.Unwatch(holder_watch_);
  holder_.reset();
  RemoveBrokerCgroups(cgroups_);
}

Result<LaunchSite> Broker::PrepareLaunch() {
  LaunchSite site{renderer_path_, sandbox_level_, std::nullopt, "", dev_null_.get(), &cgroups_};
  if (sandbox_level_ == sandbox::Level::kFull) {
    if (auto h = EnsureNamespaceHolder(); !h) return std::unexpected(h.error());
    site.namespaces = NamespaceSpec{holder_->pidfd()};
    site.sandbox_root = sandbox_root();
  }
  // Opened at each spawn, in our own mount namespace, where no renderer can change what the
  // path names; a binary that is gone (or turned dynamic) launches by path and fails or
  // confines itself, as it would have.
  if (site.namespaces && !launcher_filter_.empty()) site.exe = UniqueFd(OpenRenderer());
  if (site.exe && IsStaticExecutable(site.exe.get())) {
    Confinement c{site.exe.get(), site.sandbox_root, {}, launcher_filter_};
    for (const auto& l : sandbox::Limits()) {
      if (l.before_exec) c.limits.emplace_back(l.resource, l.value);
    }
    site.confine = std::move(c);
    site.sandbox_root.clear();
  }
  return site;
}

namespace {

// sbx-zygote beside this program, and only there: it runs unsandboxed, with our uid, so it must
// be ours (or root's) and writable by nobody else. Empty if there is no such file.
std::string ZygotePath() {
  auto self = SelfExePath();
  if (!self) return "";
  std::string path = self->substr(0, self->rfind('/') + 1) + "sbx-zygote";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  if ((st.st_uid != 0 && st.st_uid != ::geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    std::fprintf(stderr, "sbx: %s is not the broker's own (owner or mode): not run\n",
                 path.c_str());
    return "";
  }
  return ::access(path.c_str(), X_OK) == 0 ? path : "";
}

}  // namespace

Result<void> Broker::EnsureZygote() {
  if (zygote_ && zygote_->ok()) return {};
  DropZygote();
  // A zygote that cannot start keeps failing; launching by ourselves is what we did before it.
  constexpr int kMaxFailures = 3;
  if (zygote_failures_ >= kMaxFailures) return MakeError(Errc::kState, zygote_note_);
  if (!holder_) return MakeError(Errc::kState, "no namespace holder");
  std::string path = ZygotePath();
  if (path.empty()) {
    zygote_failures_ = kMaxFailures;
    zygote_note_ = "no usable sbx-zygote beside the broker: the broker forks each launch";
    std::fprintf(stderr, "sbx: %s\n", zygote_note_.c_str());
    return MakeError(Errc::kNotFound, zygote_note_);
  }
  auto z = Zygote::Start(path, *holder_, dev_null_.get());
  if (!z) {
    ++zygote_failures_;
    zygote_note_ = "the zygote could not start (" + z.error().ToString() + ")";
    std::fprintf(stderr, "sbx: WARNING: %s; the broker forks this launch itself\n",
                 zygote_note_.c_str());
    return std::unexpected(z.error());
  }
  zygote_.emplace(std::move(*z));
  zygote_note_.clear();
  auto w = loop_.Watch(zygote_->pidfd(), EPOLLIN, [this](uint32_t) {
    // Killed from outside (or it failed): the next launch starts another.
    std::fprintf(stderr,
                 "sbx: WARNING: the zygote (pid %d) exited; a new one starts at the next "
                 "launch\n",
                 static_cast<int>(zygote_ ? zygote_->pid() : 0));
    ++zygote_failures_;
    DropZygote();
  });
  if (w) zygote_watch_ = *w;
  return {};
}

void Broker::DropZygote() {
  for (auto* w : {&zygote_watch_, &zygote_socket_watch_}) {
    if (*w != 0) loop_.Unwatch(*w);
    *w = 0;
  }
  loop_.CancelTimer(zygote_timer_);
  zygote_timer_ = 0;
  if (!zygote_) return;
  zygote_launches_ += zygote_->launches();
  // Launches in flight fail with it (their processes killed and reaped); each slot's restart
  // makes a new launch, with fresh pipes and cgroup, which starts a new zygote.
  zygote_->Fail(Error{Errc::kPeerClosed, 0, "the zygote is gone"});
  zygote_.reset();  // closing its socket ends it; the ChildProcess reaps it, bounded
  ResumeLaunches();
}

void Broker::ZygoteFailed(const Error& why) {
  ++zygote_failures_;
  zygote_note_ = "the zygote failed (" + why.ToString() + ")";
  std::fprintf(stderr, "sbx: WARNING: %s; the next launch starts another\n", zygote_note_.c_str());
  DropZygote();
}

uint64_t Broker::StartLaunch(const LaunchSpec& spec, LaunchDone done) {
  if (!options_.zygote || !Zygote::CanLaunch(spec) || !EnsureZygote()) {
    done(sbx::Launch(spec));
    return 0;
  }
  if (zygote_socket_watch_ == 0) {
    zygote_->SetReapLater([this](ChildProcess c) { ReapLater(std::move(c)); });
    auto w = loop_.Watch(zygote_->socket(), EPOLLIN, [this](uint32_t) { OnZygoteReadable(); });
    if (!w) {
      done(std::unexpected(w.error()));
      return 0;
    }
    zygote_socket_watch_ = *w;
  }
  auto ticket =
      zygote_->Submit(spec, [this, done = std::move(done)](Result<LaunchedChild> child) mutable {
        if (child) zygote_failures_ = 0;
        done(std::move(child));
      });
  if (!ticket) {
    // The zygote failed on the send; it failed this launch (`done` has been called) and every
    // other one in flight with it.
    ZygoteFailed(ticket.error());
    return 0;
  }
  ArmZygoteTimer();
  return *ticket;
}

void Broker::CancelLaunch(uint64_t ticket) {
  if (zygote_) zygote_->Cancel(ticket);
}

void Broker::OnZygoteReadable() {
  // One launch completes per call (its slot may then do anything); the watch is level-triggered,
  // so what else waits brings the loop back.
  zygote_->Receive();
  if (zygote_ && !zygote_->ok()) return ZygoteFailed(Error{Errc::kPeerClosed, 0, "its socket"});
  ArmZygoteTimer();
  ResumeLaunches();
}

void Broker::ArmZygoteTimer() {
  if (zygote_timer_ != 0 || !zygote_ || zygote_->in_flight() == 0) return;
  zygote_timer_ = loop_.AddTimer(zygote_->deadline_ns(), [this] {
    zygote_timer_ = 0;
    if (!zygote_) return;
    zygote_->Expire(MonotonicNs());
    if (!zygote_->ok()) return ZygoteFailed(Error{Errc::kTimeout, 0, "no answer in time"});
    ArmZygoteTimer();  // the launch in progress moved on: its own deadline
  });
}

void Broker::ResumeLaunches() {
  if (!launch_queue_.empty() && launch_timer_ == 0 && !draining_) {
    launch_timer_ = loop_.AddTimer(0, [this] { DrainLaunchQueue(); });
  }
}

Result<void> Broker::EnsureNamespaceHolder() {
  if (holder_) return {};
  // Inside, a renderer is uid 0 of the sandbox's user namespace (with every capability dropped
  // before it runs). Outside, that uid is ours, or, when we are root, one no other process or
  // account on the host uses: files owned by root must not be the renderer's, and no other
  // process (nobody's among them) may signal or ptrace it. A wrapper started through sudo runs
  // as the account that started it instead (PickRendererIds).
  bool root = ::geteuid() == 0;
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (root && renderer_id_ == 0) {
    auto ids = PickRendererIds(options_.cmd_prefix, renderer_id_claim_);
    if (!ids) return std::unexpected(ids.error());
    std::tie(renderer_id_, renderer_gid_) = *ids;
  }
  if (root) {
    // A holder made again keeps the ids: renderers of the old one may still run as them.
    uid = renderer_id_;
    gid = renderer_gid_;
  }
  // The empty root covers a directory in the sandbox's mount namespace only. It must not be on
  // the way to the renderer binary, which is exec'd in that namespace.
  std::string exe = renderer_path_;
  char real[PATH_MAX];
  if (::realpath(renderer_path_.c_str(), real) != nullptr) exe = real;
  std::string dir;
  for (const char* candidate : {"/mnt", "/srv", "/media", "/opt", "/var/empty", "/tmp"}) {
    struct stat st;
    std::string prefix = std::string(candidate) + "/";
    if (::stat(candidate, &st) == 0 && S_ISDIR(st.st_mode) && !exe.starts_with(prefix)) {
      dir = candidate;
      break;
    }
  }
  if (dir.empty()) return MakeError(Errc::kNotFound, "no directory for the empty root");
  auto h = NamespaceHolder::Create(uid, gid, dir);
  if (!h) return std::unexpected(h.error());
  holder_.emplace(std::move(*h));
  auto w = loop_.Watch(holder_->pidfd(), EPOLLIN, [this](uint32_t) {
    // Killed from outside: forget it (its destructor reaps) and make a new one at next spawn.
    std::fprintf(stderr, "sbx: WARNING: the sandbox namespace holder died; recreating it\n");
    loop_.Unwatch(holder_watch_);
    holder_watch_ = 0;
    DropZygote();  // it lives in the holder's namespaces, which the next holder replaces
    holder_.reset();
  });
  if (w) holder_watch_ = *w;
  return {};
}

Result<SandboxReport> Broker::Sandbox(int id) const {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  auto snap = (*h)->Snapshot(MonotonicNs());
  return sandbox_inspector_.Inspect(snap.pid, sandbox_level_, sandbox_note_,
                                    !launcher_filter_.empty());
}

Result<ProcessInfo> Broker::Inspect(std::optional<int> id, const InspectStepHook& hook) const {
  auto ends = [this](const RendererHost& h) { return h.process()->ends(dev_null_.get()); };
  if (id) {
    auto h = Find(*id);
    if (!h) return std::unexpected(h.error());
    if ((*h)->process() == nullptr || !(*h)->process()->alive()) {
      return MakeError(Errc::kState, "renderer " + std::to_string(*id) + " has no live process");
    }
    return InspectRenderer(ends(**h), hook);
  }
  return ReadPlan(PlanInspect(), hook);
}

Worker* Broker::EnsureWorker() {
  if (!worker_ && !worker_failed_) {
    auto w = Worker::Start(loop_);
    if (!w) {
      std::fprintf(stderr, "sbx: no worker thread (%s): inspect and list read on the event loop\n",
                   w.error().ToString().c_str());
      worker_failed_ = true;
      return nullptr;
    }
    worker_ = std::move(*w);
  }
  return worker_.get();
}

void Broker::InspectAll(std::function<void(std::string)> done, InspectStepHook hook) {
  // Built whole and serialised there: at 500 renderers the tree is megabytes, which neither an
  // initializer list's copy nor a dump on the loop should cost.
  auto reply = [](const InspectPlan& plan, const InspectStepHook& h) {
    nlohmann::json r = nlohmann::json::object();
    r["process"] = ProcessInfoToJson(ReadPlan(plan, h));
    return DumpJson(r);
  };
  Worker* worker = EnsureWorker();
  if (worker == nullptr) return done(reply(PlanInspect(), hook));
  // One read at a time, shared by every `inspect` asked for while it runs: however many a
  // client sends, the broker holds one plan (a pidfd copy per process) and the worker one read.
  inspect_waiters_.push_back(std::move(done));
  if (inspect_waiters_.size() > 1) return;
  // Shared between the two halves: the plan is read on the worker, the reply handed over here.
  auto plan = std::make_shared<InspectPlan>(PlanInspect());
  auto out = std::make_shared<std::string>();
  worker->Post([plan, out, reply, hook = std::move(hook)] { *out = reply(*plan, hook); },
               [this, out] {
                 std::vector<std::function<void(std::string)>> waiting;
                 waiting.swap(inspect_waiters_);
                 for (size_t i = 0; i + 1 < waiting.size(); ++i) waiting[i](*out);
                 waiting.back()(std::move(*out));
               });
}

namespace {

// The slot's snapshot with what only the live process knows: its channels and its cgroup.
RendererSnapshot LiveSnapshot(const RendererHost& host, int64_t now, bool read_usage = true) {
  RendererSnapshot s = host.Snapshot(now);
  const RendererProcess* p = host.process();
  if (p != nullptr) s.ipc = p->Ipc(now);
  if (p != nullptr && p->cgroup().valid()) {
    s.cgroup_path = p->cgroup().path();
    s.memory_limit = p->cgroup().limits().memory_bytes;
    s.cgroup_files = p->cgroup().UsageFiles();
    if (read_usage) s.cgroup_usage = s.cgroup_files.Read();
  }
  return s;
}

}  // namespace

struct Broker::ListJob {
  // One row as taken on the loop: what the worker reads for it is guarded by a copy of the
  // renderer's pidfd, so that a renderer that exits meanwhile (a zombie, or a pid the kernel
  // gave again after the reap) is never reported from its pid.
  struct Row {
    RendererSnapshot snapshot;
    UniqueFd pidfd;
  };
  std::vector<Row> rows;
  SandboxInspector* inspector = nullptr;
  sandbox::Level level = sandbox::Level::kFull;
  std::string note;
  bool launcher_filter = false;
};

std::shared_ptr<Broker::ListJob> Broker::TakeListRows() const {
  auto job = std::make_shared<ListJob>();
  job->inspector = &sandbox_inspector_;
  job->level = sandbox_level_;
  job->note = sandbox_note_;
  job->launcher_filter = !launcher_filter_.empty();
  const int64_t now = MonotonicNs();
  for (const auto& [id, host] : hosts_) {
    if (host->state() == RendererState::kClosed) continue;
    ListJob::Row row{LiveSnapshot(*host, now, false), UniqueFd()};
    if (row.snapshot.pid > 0) {
      row.pidfd = UniqueFd(::fcntl(host->process()->pidfd(), F_DUPFD_CLOEXEC, 0));
    }
    job->rows.push_back(std::move(row));
  }
  return job;
}

void Broker::ListAll(std::function<void(std::string)> done, InspectStepHook hook) {
  if (EnsureWorker() == nullptr) {
    if (hook) hook("rows");
    std::string text = BuildList(*TakeListRows());
    if (hook) hook("done");
    return done(std::move(text));
  }
  list_waiters_.push_back({std::move(done), std::move(hook)});
  if (!list_running_) StartList();
}

void Broker::StartList() {
  // So at most one job's rows (a pidfd copy per renderer) exist at a time, however many ask.
  std::vector<ListWaiter> waiting;
  waiting.swap(list_waiters_);
  list_running_ = true;
  InspectStepHook hook;
  for (const ListWaiter& w : waiting) {
    if (w.hook) hook = w.hook;
  }
  auto job = TakeListRows();
  auto out = std::make_shared<std::string>();
  worker_->Post(
      [job, out, hook] {
        if (hook) hook("rows");
        *out = BuildList(*job);
        job->rows.clear();  // the pidfd copies are closed before anyone reads the reply
        if (hook) hook("done");
      },
      [this, out, waiting = std::move(waiting)] {
        list_running_ = false;
        for (size_t i = 0; i + 1 < waiting.size(); ++i) waiting[i].done(*out);
        waiting.back().done(std::move(*out));
        if (!list_waiters_.empty() && !list_running_) StartList();
      });
}

std::string Broker::BuildList(ListJob& job) {
  nlohmann::json rs = nlohmann::json::array();
  for (ListJob::Row& r : job.rows) {
    RendererSnapshot& s = r.snapshot;
    s.cgroup_usage = s.cgroup_files.Read();
    nlohmann::json row = SnapshotToJson(s);
    if (s.ipc) row["ipc"] = IpcSnapshotToJson(*s.ipc);
    // Asked before the reads too, so that one that is gone already costs none.
    bool live = s.pid > 0 && r.pidfd.valid() && !ExitedSince(r.pidfd);
    Result<SandboxReport> report =
        live ? job.inspector->Inspect(s.pid, job.level, job.note, job.launcher_filter)
             : MakeError(Errc::kState, "no live process");
    if (report && ExitedSince(r.pidfd)) report = MakeError(Errc::kState, "exited");
    row["sandbox"] = report ? SandboxReportToJson(*report)
                            : nlohmann::json{{"level", std::string(sandbox::LevelName(job.level))},
                                             {"verdict", "no live process"}};
    rs.push_back(std::move(row));
  }
  nlohmann::json reply = nlohmann::json::object();
  reply["renderers"] = std::move(rs);
  return DumpJson(reply);
}

InspectPlan Broker::PlanInspect() const {
  InspectPlan root = PlanProcess(
      {ProcessRole::kBroker, ::getpid(), 0, {{dev_null_.get(), "/dev/null"}}, false}, -1);
  if (holder_) {
    root.children.push_back(
        PlanProcess({ProcessRole::kHolder, holder_->pid(), 0, {}, true}, holder_->pidfd()));
  }
  if (zygote_ && zygote_->ok()) {
    root.children.push_back(
        PlanProcess({ProcessRole::kZygote, zygote_->pid(), 0, {}, true}, zygote_->pidfd()));
  }
  for (const auto& [hid, h] : hosts_) {
    if (h->process() != nullptr && h->process()->alive()) {
      root.children.push_back(PlanRenderer(h->process()->ends(dev_null_.get())));
    }
  }
  // Last, as Chrome's task manager lists its spare renderer: confined and waiting, no id yet.
  if (const auto& spare = spare_->process; spare && spare->alive()) {
    InspectPlan s = PlanRenderer(spare->ends(dev_null_.get()));
    for (InspectPlan* p = &s; p != nullptr; p = p->children.empty() ? nullptr : &p->children[0]) {
      p->spare = true;
    }
    root.children.push_back(std::move(s));
  }
  return root;
}

int64_t Broker::NowMs() const { return (MonotonicNs() - start_ns_) / 1'000'000; }

void Broker::AddObserver(BrokerObserver* o) { observers_.push_back(o); }

void Broker::RemoveObserver(BrokerObserver* o) { std::erase(observers_, o); }

void Broker::AddIpcObserver(BrokerObserver* o) { ipc_observers_.push_back(o); }

void Broker::RemoveIpcObserver(BrokerObserver* o) { std::erase(ipc_observers_, o); }

void Broker::CountControl(bool inbound, size_t bytes) {
  ++(inbound ? stats_.control_lines_in : stats_.control_lines_out);
  (inbound ? stats_.control_bytes_in : stats_.control_bytes_out) += bytes;
}

void Broker::NotifyIpc(int id, const IpcRecord& record) {
  // By index, no copy: this runs for every message, and an observer may remove itself.
  for (size_t i = 0; i < ipc_observers_.size(); ++i) ipc_observers_[i]->OnIpc(id, record);
}

void Broker::Emit(const BrokerEvent& e) {
  BrokerEvent copy = e;
  copy.t_ms = NowMs();
  for (auto* o : std::vector(observers_)) o->OnBrokerEvent(copy);
  if (e.type == EventType::kClosed) ScheduleRemoval(e.id);
  // A launch is done with once its renderer drew or is gone: the spare it took (or, for the
  // first launches of a broker never Start()ed, did not find) is replaced now, off its path.
  if (e.type == EventType::kReady || e.type == EventType::kExited) QueueSpare();
}

void Broker::NotifyFrame(int id, uint64_t frame) {
  for (auto* o : observers_) o->OnFrame(id, frame);
}

void Broker::NotifyHeartbeat(int id, const protocol::Heartbeat& hb, int64_t latency_ns) {
  for (auto* o : observers_) o->OnHeartbeat(id, hb, latency_ns);
}

void Broker::ScheduleRemoval(int id) {
  // Deferred: this runs inside one of the host's own handlers.
  loop_.AddTimer(0, [this, id] {
    auto it = hosts_.find(id);
    if (it != hosts_.end() && it->second->state() == RendererState::kClosed) hosts_.erase(it);
    QueueSpare();  // there may be room for one again
  });
}

void Broker::ReapLater(ChildProcess child) {
  if (!child.valid()) return;
  int fd = child.pidfd();
  auto w = loop_.Watch(fd, EPOLLIN, [this, fd](uint32_t) {
    auto it = std::find_if(reaping_.begin(), reaping_.end(),
                           [fd](const auto& entry) { return entry.second.pidfd() == fd; });
    if (it == reaping_.end() || !it->second.TryReap()) return;  // not yet
    loop_.Unwatch(it->first);
    reaping_.erase(it);
  });
  // Cannot wait for it in the loop: it is about to exit anyway, so the destructor waits here.
  if (!w) return;
  reaping_.emplace(*w, std::move(child));
}

void Broker::Tick() {
  int64_t now = MonotonicNs();
  for (auto& [id, host] : hosts_) host->CheckWatchdog(now);
  // A stray made with CLONE_PARENT is ours to reap. Each tick while something may wait on one (a
  // renderer's namespace init finishes exiting once every process of its namespace is reaped),
  // otherwise once a second: a stray's zombie costs a pid, not a broker that hangs.
  if (!reaping_.empty() || strays_seen_ || now >= next_stray_sweep_ns_) {
    strays_seen_ = ReapStrayChildren() > 0;
    next_stray_sweep_ns_ = now + kStraySweepPeriodNs;
  }
  tick_timer_ = loop_.AddTimer(now + WatchdogPeriodMs(options_.hang_timeout_ms) * 1'000'000,
                               [this] { Tick(); });
}

Result<void> Broker::Start() {
  if (options_.renderers > max_renderers_.max) {
    return MakeError(Errc::kInvalidArgument,
                     "--renderers " + std::to_string(options_.renderers) + " is more than the " +
                         std::to_string(max_renderers_.max) + " this broker may run (" +
                         max_renderers_.why + "); pass --max-renderers N to allow more");
  }
  for (int i = 0; i < options_.renderers; ++i) {
    if (auto r = Spawn(); !r) return std::unexpected(r.error());
  }
  // Behind them: the spare never delays the renderers asked for.
  QueueSpare();
  return {};
}

bool Broker::SpareWanted() const {
  return spare_enabled_ && !shutting_down_ && !spare_->process && !spare_->launching &&
         !spare_queued_ && spare_timer_ == 0 && LiveSlots() < max_renderers_.max &&
         CheckMemoryBudget().has_value();
}

void Broker::QueueSpare(int64_t delay_ms) {
  if (!SpareWanted()) return;
  if (delay_ms > 0) {
    spare_timer_ = loop_.AddTimer(MonotonicNs() + delay_ms * 1'000'000, [this] {
      spare_timer_ = 0;
      QueueSpare();
    });
    return;
  }
  spare_queued_ = true;
  Enqueue(kSpareMarker);
}

void Broker::LaunchSpare() {
  spare_queued_ = false;
  if (!SpareWanted()) return;  // the slots filled up meanwhile, or the broker is shutting down
  auto p = RendererProcess::LaunchSpare(*this, *spare_);
  if (!p) return SpareFailed(p.error());
  if ((*p)->launching()) {
    spare_->launching = std::move(*p);
    return;
  }
  SpareStarted(std::move(*p));
}

void Broker::SpareFailed(const Error& e) {
  std::fprintf(stderr, "sbx: cannot start a spare renderer: %s\n", e.ToString().c_str());
  ++stats_.spares_lost;
  spare_retry_ms_ = std::clamp(spare_retry_ms_ * 2, kSpareRetryFirstMs, kSpareRetryMaxMs);
  QueueSpare(spare_retry_ms_);
}

void Broker::SpareStarted(std::unique_ptr<RendererProcess> p) {
  spare_->process = std::move(p);
  spare_->ready = false;
  ++stats_.spares_started;
  // Its pong says it is exec'd, confined and waiting: `stats` shows it `ready` from then on.
  const RendererProcess* launched = spare_->process.get();
  (void)spare_->process->Ping([this, launched](Result<int64_t> rtt) {
    if (rtt && spare_->process.get() == launched) spare_->ready = true;
  });
}

std::unique_ptr<RendererProcess> Broker::TakeSpare() {
  auto& p = spare_->process;
  std::unique_ptr<RendererProcess> taken;
  if (p && p->alive() && !p->being_killed()) {
    taken = std::move(p);
    ++stats_.spares_taken;
    spare_retry_ms_ = 0;
  }
  // The next one is queued once this launch's renderer has drawn (Emit): started now, it would
  // run in this same drain and hold the loop before the first frame the spare was taken for.
  return taken;
}

void Broker::SpareLost(const ExitInfo& info) {
  ++stats_.spares_lost;
  std::fprintf(stderr, "sbx: the spare renderer exited before it was used (%s%s%s)\n",
               ExitStatusName(info.status).data(), info.detail.empty() ? "" : ": ",
               info.detail.c_str());
  int64_t delay = spare_retry_ms_;
  spare_retry_ms_ = std::clamp(spare_retry_ms_ * 2, kSpareRetryFirstMs, kSpareRetryMaxMs);
  QueueSpare(delay);
}

void Broker::QueueLaunch(RendererHost& host) { Enqueue(host.id()); }

void Broker::Enqueue(int id) {
  launch_queue_.push_back(id);
  // Deadline 0: at once, even from inside a timer handler. A launch queued by a launch (a
  // failure restarting at once) waits for the drain's own re-arm, for the next turn.
  if (launch_timer_ == 0 && !draining_) {
    launch_timer_ = loop_.AddTimer(0, [this] { DrainLaunchQueue(); });
  }
}

void Broker::DrainLaunchQueue() {
  launch_timer_ = 0;
  draining_ = true;
  const int64_t start = MonotonicNs();
  while (!launch_queue_.empty()) {
    int id = launch_queue_.front();
    launch_queue_.pop_front();
    // The zygote makes one launch at a time; a few more waiting on its socket keep it busy while
    // the loop handles each answer. The next answer resumes the queue (ResumeLaunches).
    if (zygote_ && zygote_->in_flight() >= kMaxLaunchesInFlight) {
      launch_queue_.push_front(id);
      draining_ = false;
      return;
    }
    if (id == kSpareMarker) {
      LaunchSpare();
      if (MonotonicNs() - start >= kLaunchSliceNs) break;
      continue;
    }
    auto it = hosts_.find(id);
    if (it == hosts_.end() || !it->second->launch_queued()) continue;  // closed meanwhile
    it->second->LaunchNow();
    if (MonotonicNs() - start >= kLaunchSliceNs) break;
  }
  draining_ = false;
  if (launch_queue_.empty()) return;
  // After the timers due now: the loop first waits for (and serves) every fd that is ready.
  launch_timer_ = loop_.AddTimer(MonotonicNs() + 1, [this] { DrainLaunchQueue(); });
}

Result<int> Broker::Spawn(std::string_view url) {
  if (shutting_down_) return MakeError(Errc::kState, "broker is shutting down");
  std::string page(url.empty() ? std::string_view(options_.page) : url);
  if (!IsValidUrl(page)) return MakeError(Errc::kInvalidArgument, "invalid url");
  if (LiveSlots() >= max_renderers_.max) {
    return MakeError(Errc::kState, "spawn refused: " + std::to_string(max_renderers_.max) +
                                       " renderers is the most this broker runs (" +
                                       max_renderers_.why + "; --max-renderers)");
  }
  if (auto b = CheckMemoryBudget(); !b) return std::unexpected(b.error());
  int id = next_id_++;
  RendererHostEnv& env = *this;
  auto& host = hosts_[id] = std::make_unique<RendererHost>(env, id, std::move(page));
  host->Start();
  return id;
}

Result<RendererHost*> Broker::Find(int id) const {
  auto it = hosts_.find(id);
  if (it == hosts_.end() || it->second->state() == RendererState::kClosed) {
    return MakeError(Errc::kNotFound, "no renderer " + std::to_string(id));
  }
  return it->second.get();
}

Result<void> Broker::Close(int id) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  (*h)->RequestClose(RendererHost::CloseHow::kAsk);
  return {};
}

Result<void> Broker::Kill(int id, int sig) {
  if (sig < 1 || sig >= NSIG) return MakeError(Errc::kInvalidArgument, "bad signal");
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Signal(sig, KillReason::kNone);
}

Result<void> Broker::KillHung(int id) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Signal(SIGKILL, KillReason::kHung);
}

Result<void> Broker::Crash(int id, protocol::CrashKind kind) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  PayloadWriter w;
  w.U32(static_cast<uint32_t>(kind));
  return (*h)->Send(protocol::MsgType::kCrash, w.data());
}

Result<void> Broker::Hang(int id) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Send(protocol::MsgType::kHang);
}

Result<void> Broker::Oom(int id) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Send(protocol::MsgType::kOom);
}

Result<void> Broker::BadIpc(int id) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Send(protocol::MsgType::kBadIpc);
}

Result<void> Broker::Navigate(int id, std::string_view url) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Navigate(url);
}

Result<void> Broker::SetFps(int id, uint32_t fps) {
  if (fps < protocol::kMinFps || fps > protocol::kMaxFps) {
    return MakeError(Errc::kInvalidArgument, "fps out of range");
  }
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  PayloadWriter w;
  w.U32(fps);
  return (*h)->Send(protocol::MsgType::kSetFps, w.data());
}

Result<void> Broker::SetVisibility(int id, protocol::Visibility visibility) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  (*h)->SetVisibility(visibility);
  return {};
}

Result<void> Broker::Reload(int id) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Reload();
}

Result<void> Broker::Ping(int id, PingCallback callback) {
  auto h = Find(id);
  if (!h) return std::unexpected(h.error());
  return (*h)->Ping(std::move(callback));
}

void Broker::Shutdown() {
  shutting_down_ = true;
  // Launches not made yet are dropped: their slots close at once, with no process to end.
  launch_queue_.clear();
  loop_.CancelTimer(launch_timer_);
  launch_timer_ = 0;
  // The spare has no slot to close: killed and reaped here.
  spare_queued_ = false;
  loop_.CancelTimer(spare_timer_);
  spare_timer_ = 0;
  spare_->process.reset();
  spare_->launching.reset();
  for (auto& [id, host] : hosts_) host->RequestClose(RendererHost::CloseHow::kTerminate);
}

std::vector<RendererSnapshot> Broker::List(bool read_cgroup_usage) const {
  std::vector<RendererSnapshot> out;
  int64_t now = MonotonicNs();
  for (const auto& [id, host] : hosts_) {
    if (host->state() != RendererState::kClosed) {
      out.push_back(LiveSnapshot(*host, now, read_cgroup_usage));
    }
  }
  return out;
}

std::optional<RendererSnapshot> Broker::Get(int id, bool read_cgroup_usage) const {
  auto h = Find(id);
  if (!h) return std::nullopt;
  return LiveSnapshot(**h, MonotonicNs(), read_cgroup_usage);
}

std::vector<IpcRecord> Broker::IpcRecent(int id, size_t max) const {
  auto h = Find(id);
  if (!h || (*h)->process() == nullptr) return {};
  return (*h)->process()->inspector().Recent(max);
}

const FrameReader* Broker::Frames(int id) const {
  auto h = Find(id);
  return h ? (*h)->frames() : nullptr;
}

BrokerStats Broker::Stats() const {
  BrokerStats s = stats_;
  s.renderers = 0;
  s.running = 0;
  for (const auto& [id, host] : hosts_) {
    if (host->state() == RendererState::kClosed) continue;
    ++s.renderers;
    if (host->state() == RendererState::kRunning) ++s.running;
  }
  s.uptime_ms = NowMs();
  s.spare_enabled = spare_enabled_;
  const auto& spare = spare_->process;
  s.spare_pid = spare && spare->alive() ? spare->figures().pid : 0;
  s.zygote_pid = zygote_ && zygote_->ok() ? zygote_->pid() : 0;
  s.zygote_launches = zygote_launches_ + (zygote_ ? zygote_->launches() : 0);
  s.zygote_note = !options_.zygote ? "--no-zygote" : zygote_note_;
  s.spare_ready = s.spare_pid != 0 && spare_->ready;
  s.spare_launching = spare_->launching != nullptr;
  s.zygote_in_flight = zygote_ ? zygote_->in_flight() : 0;
  if (s.spare_pid != 0 && spare->cgroup().valid()) s.spare_cgroup = spare->cgroup().path();
  return s;
}

}  // namespace sbx
