// Writes the seed corpora of tests/fuzz/corpus from docs/PROTOCOL.md's examples: every message of
// both directions with the values the document uses, whole sessions in the documented order, each
// violation its last section lists, the frame header page, and the commands and options the
// README shows; and the zygote's messages as its encoders write them (the zygote's wire is
// internal, so it has no document). Run `sbx-fuzz-seeds tests/fuzz/corpus` after a change to
// the protocol.
#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "broker/zygote.h"
#include "ipc/codec.h"
#include "ipc/frame_buffer.h"
#include "ipc/protocol.h"

namespace sbx {
namespace {

using protocol::MsgType;
using Bytes = std::vector<uint8_t>;

std::string g_root;
bool g_ok = true;

void Write(const std::string& target, const std::string& name, const Bytes& bytes) {
  std::string dir = g_root + "/" + target;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::perror(dir.c_str());
    g_ok = false;
    return;
  }
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wbe");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::perror(path.c_str());
    g_ok = false;
  }
  if (f != nullptr && std::fclose(f) != 0) {
    std::perror(path.c_str());
    g_ok = false;
  }
}

template <typename T>
void Append(Bytes& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A stream of messages with consecutive sequence numbers from 1.
class Stream {
 public:
  Stream& Add(MsgType type, const PayloadWriter& payload) {
    EncodeMessage(type, next_seq_++, payload.data(), bytes_);
    return *this;
  }
  Stream& Add(MsgType type) { return Add(type, PayloadWriter()); }
  // A header with any fields at all, as a hostile peer writes it.
  Stream& Raw(uint16_t type, uint16_t flags, uint32_t length, uint64_t seq, const Bytes& payload) {
    Append(bytes_, protocol::MessageHeader{type, flags, length, seq});
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    return *this;
  }
  uint64_t next_seq() const { return next_seq_; }
  const Bytes& bytes() const { return bytes_; }

 private:
  Bytes bytes_;
  uint64_t next_seq_ = 1;
};

protocol::Heartbeat DocHeartbeat() {
  return protocol::Heartbeat{protocol::kHeartbeatMagic, 0, 42, 1'000'000'000, 250'000'000, 900, 30};
}

Bytes HeartbeatBytes(const protocol::Heartbeat& hb) {
  Bytes out;
  Append(out, hb);
  return out;
}

// The decoder's input: direction (0 to the renderer, 1 to the broker), a read-cutting seed, the
// stream. Each stream is written with three cuttings: one byte, small reads, large reads.
void Decoder(const std::string& name, int direction, const Stream& s) {
  for (uint8_t cut : {0x00, 0x37, 0xff}) {
    Bytes in{static_cast<uint8_t>(direction), cut};
    in.insert(in.end(), s.bytes().begin(), s.bytes().end());
    Write("fuzz_decoder", name + "-cut" + std::to_string(cut), in);
  }
}

void DecoderToRenderer() {
  const std::string kPages[] = {"sbx://plasma", "sbx://clock", "sbx://text/Hello%20from%20sbx",
                                "about:blank"};
  Stream session;
  session.Add(MsgType::kHello, PayloadWriter().U32(4242).U32(30).U32(4000));
  for (const auto& page : kPages) session.Add(MsgType::kNavigate, PayloadWriter().Str(page));
  session.Add(MsgType::kSetFps, PayloadWriter().U32(60))
      .Add(MsgType::kSetVisibility, PayloadWriter().U32(1))
      .Add(MsgType::kPing, PayloadWriter().U64(7));
  Decoder("renderer-session", 0, session);

  Decoder("hello", 0, Stream().Add(MsgType::kHello, PayloadWriter().U32(2).U32(30).U32(1)));
  {
    PayloadWriter assign;
    EncodeAssign({7, 60, protocol::Visibility::kHidden, "sbx://clock"}, assign);
    Decoder("spare-assign", 0,
            Stream()
                .Add(MsgType::kHello, PayloadWriter().U32(2).U32(30).U32(1))
                .Add(MsgType::kAssign, assign));
  }
  for (uint32_t kind = 1; kind <= 4; ++kind) {
    Stream s;
    s.Add(MsgType::kHello, PayloadWriter().U32(2).U32(30).U32(1));
    s.Add(MsgType::kCrash, PayloadWriter().U32(kind));
    Decoder("crash-" + std::to_string(kind), 0, s);
  }
  for (MsgType t : {MsgType::kShutdown, MsgType::kHang, MsgType::kOom, MsgType::kBadIpc}) {
    Stream s;
    s.Add(MsgType::kHello, PayloadWriter().U32(2).U32(30).U32(1)).Add(t);
    Decoder(std::string(protocol::MsgTypeName(t)), 0, s);
  }
  Decoder(
      "navigate-longest", 0,
      Stream().Add(MsgType::kNavigate, PayloadWriter().Str(std::string(protocol::kMaxUrl, 'u'))));
  Decoder("set-fps-241", 0, Stream().Add(MsgType::kSetFps, PayloadWriter().U32(241)));
  Decoder("hello-fps-0", 0, Stream().Add(MsgType::kHello, PayloadWriter().U32(2).U32(0).U32(1)));
  Decoder("navigate-space", 0,
          Stream().Add(MsgType::kNavigate, PayloadWriter().Str("sbx://text/a b")));
}

void DecoderToBroker() {
  Stream session;
  session.Add(MsgType::kFrameReady, PayloadWriter().U32(0).U64(0));
  session.Add(MsgType::kFrameReady, PayloadWriter().U32(1).U64(1));
  session.Add(MsgType::kPong, PayloadWriter().U64(7));
  auto hb = HeartbeatBytes(DocHeartbeat());
  session.Add(MsgType::kHeartbeat, PayloadWriter().Bytes(hb));
  session.Add(MsgType::kDrillReport, PayloadWriter().Str("execve: killed by seccomp (SIGSYS)"));
  Decoder("broker-session", 1, session);

  // The violations of docs/PROTOCOL.md, one per seed, after one good message.
  auto good = [] {
    Stream s;
    s.Add(MsgType::kFrameReady, PayloadWriter().U32(0).U64(0));
    return s;
  };
  Decoder("wrong-direction", 1, good().Raw(1, 0, 12, 2, Bytes(12)));
  Decoder("unknown-type", 1, good().Raw(99, 0, 0, 2, {}));
  Decoder("nonzero-flags", 1, good().Raw(65, 1, 8, 2, Bytes(8)));
  Decoder("oversize", 1, good().Raw(67, 0, protocol::kMaxPayload + 1, 2, {}));
  Decoder("bad-length", 1, good().Raw(65, 0, 4, 2, Bytes(4)));
  Decoder("out-of-order", 1, good().Raw(65, 0, 8, 5, Bytes(8)));
  Decoder("frame-index-2", 1, good().Add(MsgType::kFrameReady, PayloadWriter().U32(2).U64(1)));
  // str "abc" then one byte more: within the type's bounds, so only the payload decoder sees it.
  Bytes trailing;
  Append(trailing, uint32_t{3});
  for (char c : std::string_view("abc!")) trailing.push_back(static_cast<uint8_t>(c));
  Decoder("drill-trailing", 1, good().Raw(67, 0, 8, 2, trailing));
  Decoder("drill-unprintable", 1,
          good().Add(MsgType::kDrillReport, PayloadWriter().Str(std::string("bell\a", 5))));
  auto bad = DocHeartbeat();
  bad.magic = 0;
  Decoder("heartbeat-bad-magic", 1,
          good().Add(MsgType::kHeartbeat, PayloadWriter().Bytes(HeartbeatBytes(bad))));
  Stream partial = good();
  partial.Add(MsgType::kPong, PayloadWriter().U64(7));
  Bytes cut(partial.bytes().begin(), partial.bytes().end() - 3);
  Bytes in{1, 0x37};
  in.insert(in.end(), cut.begin(), cut.end());
  Write("fuzz_decoder", "partial-pong", in);
}

void Heartbeats() {
  auto hb = DocHeartbeat();
  Write("fuzz_heartbeat", "doc", HeartbeatBytes(hb));
  auto fps = [&](uint32_t v) {
    auto h = hb;
    h.fps = v;
    return HeartbeatBytes(h);
  };
  Write("fuzz_heartbeat", "fps-1", fps(1));
  Write("fuzz_heartbeat", "fps-240", fps(240));
  Write("fuzz_heartbeat", "fps-0", fps(0));
  Write("fuzz_heartbeat", "fps-241", fps(241));
  auto flags = hb;
  flags.flags = 1;
  Write("fuzz_heartbeat", "flags-1", HeartbeatBytes(flags));
  auto magic = hb;
  magic.magic = protocol::kFrameMagic;
  Write("fuzz_heartbeat", "frame-magic", HeartbeatBytes(magic));
  Bytes shorter = HeartbeatBytes(hb);
  shorter.pop_back();
  Write("fuzz_heartbeat", "39-bytes", shorter);
  Bytes longer = HeartbeatBytes(hb);
  longer.resize(protocol::kQueueMsgSize);
  Write("fuzz_heartbeat", "64-bytes", longer);
}

// The header page as FrameReader::Create writes it, then as the protocol's publishing steps leave
// it after `published` frames: frame k goes to buffer k % 2 and bumps that buffer's seq by 2.
Bytes FrameHeader(uint32_t pick, FrameGeometry g, uint64_t published) {
  struct Fields {
    uint32_t magic, version, width, height, stride, format, front, reserved;
    uint64_t published, seq[2], frame_number[2];
  } h{};
  h.magic = protocol::kFrameMagic;
  h.version = protocol::kFrameVersion;
  h.width = static_cast<uint32_t>(g.width);
  h.height = static_cast<uint32_t>(g.height);
  h.stride = static_cast<uint32_t>(g.stride());
  h.format = protocol::kFormatRgba8888;
  h.published = published;
  for (uint64_t k = 0; k < published; ++k) {
    h.front = static_cast<uint32_t>(k % 2);
    h.seq[k % 2] += 2;
    h.frame_number[k % 2] = k;
  }
  Bytes out;
  Append(out, pick);
  Append(out, h);
  return out;
}

void FrameHeaders() {
  const FrameGeometry small{64, 64};
  const auto fits = static_cast<uint32_t>(2 * small.buffer_span());
  Write("fuzz_frame_header", "64x64-fresh", FrameHeader(fits, small, 0));
  Write("fuzz_frame_header", "64x64-published-3", FrameHeader(fits, small, 3));
  Write("fuzz_frame_header", "64x64-file-too-small", FrameHeader(fits - 1, small, 0));
  Write("fuzz_frame_header", "64x64-file-a-page-short", FrameHeader(fits - 4096, small, 0));
  Write("fuzz_frame_header", "640x360-default", FrameHeader(0x7fffffff, FrameGeometry{}, 1));
  Bytes odd = FrameHeader(fits, small, 2);
  odd[4 + 40] |= 1;  // seq[0] odd: a frame being written
  Write("fuzz_frame_header", "64x64-writing", odd);
  Bytes front = FrameHeader(fits, small, 2);
  front[4 + 24] = 7;  // front out of range
  Write("fuzz_frame_header", "64x64-front-7", front);
  Bytes stride = FrameHeader(fits, small, 0);
  stride[4 + 16] ^= 4;
  Write("fuzz_frame_header", "64x64-bad-stride", stride);
  Write("fuzz_frame_header", "4097x1", FrameHeader(fits, FrameGeometry{4097, 1}, 0));
}

void ControlLines() {
  const char* kLines[] = {"list",
                          "spawn",
                          "spawn sbx://text/hi",
                          "close 1",
                          "kill 2 KILL",
                          "kill 1",
                          "kill 1 SIGSEGV",
                          "kill 1 9",
                          "crash 2 segv",
                          "crash 1 abort",
                          "crash 1 stack-overflow",
                          "crash 1 escape",
                          "hang 1",
                          "oom 1",
                          "bad-ipc 1",
                          "navigate 1 sbx://clock",
                          "reload 1",
                          "fps 1 60",
                          "visibility 1 hidden",
                          "visibility 2 visible",
                          "ping 1",
                          "sandbox 1",
                          "stats",
                          "help",
                          "kill 3 STOP",
                          "bogus"};
  for (const char* line : kLines) {
    std::string name(line);
    for (char& c : name) {
      if (c == ' ' || c == '/' || c == ':') c = '_';
    }
    Write("fuzz_control_line", name, Text(std::string(line) + "\n"));
  }
  Write("fuzz_control_line", "several", Text("list\nstats\r\nping 1\n\n\thelp \n"));
  Write("fuzz_control_line", "too-long", Text(std::string(4097, 'a') + "\nlist\n"));
}

void CommandLines() {
  auto args = [](std::initializer_list<std::string_view> words) {
    Bytes out;
    bool first = true;
    for (auto w : words) {
      if (!first) out.push_back(0);
      first = false;
      out.insert(out.end(), w.begin(), w.end());
    }
    return out;
  };
  Write("fuzz_command_line", "readme-json", args({"--renderers", "3", "--json"}));
  Write("fuzz_command_line", "readme-clock", args({"--renderers", "8", "--page", "sbx://clock"}));
  Write("fuzz_command_line", "inline-values",
        args({"--renderers=2", "--fps=60", "--hang-timeout=500", "--page=about:blank"}));
  Write("fuzz_command_line", "flags",
        args({"--kill-hung", "--no-restart", "--no-sandbox", "--heartbeat-pipe"}));
  Write("fuzz_command_line", "hidden", args({"--renderers", "4", "--hidden"}));
  // Past the window's old bound of 1000, as hundreds of renderers are now allowed.
  Write("fuzz_command_line", "many", args({"--renderers", "21961", "--max-renderers", "30000"}));
  Write("fuzz_command_line", "paths",
        args({"--control", "/tmp/sbx-fuzz/control", "--renderer-path", "/usr/bin/true"}));
  Write("fuzz_command_line", "prefix", args({"--renderer-cmd-prefix", "valgrind -q"}));
  Write("fuzz_command_line", "help", args({"--help"}));
  Write("fuzz_command_line", "missing-value", args({"--fps"}));
  Write("fuzz_command_line", "flag-with-value", args({"--json=1"}));
  Write("fuzz_command_line", "unknown", args({"--bogus"}));
  Write("fuzz_command_line", "fps-241", args({"--fps", "241"}));
}

// A zygote message with, as the target reads it, its descriptor count in the first byte.
Bytes ZygoteSeed(size_t fds, const Bytes& message) {
  Bytes out{static_cast<uint8_t>(fds)};
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

void ZygoteMessages() {
  Write("fuzz_zygote_wire", "child-init",
        ZygoteSeed(1, zygote::EncodeChild({LaunchRole::kInit, 2})));
  Write("fuzz_zygote_wire", "child-without-pidfd",
        ZygoteSeed(0, zygote::EncodeChild({LaunchRole::kProgram, 1203})));
  zygote::Reply ok;
  ok.ok = true;
  ok.has_queue = true;
  Write("fuzz_zygote_wire", "reply-with-queue", ZygoteSeed(1, zygote::EncodeReply(ok)));
  zygote::Reply failed;
  failed.error = Error{Errc::kSystem, EACCES, "launch failed at mount the empty root"};
  failed.queue_errno = EMFILE;
  Write("fuzz_zygote_wire", "reply-failed", ZygoteSeed(0, zygote::EncodeReply(failed)));

  LaunchSpec spec;
  spec.argv = {"sbx-renderer", "--type=renderer", "--id=1", "--page=sbx://plasma"};
  spec.fds = {{40, 3}, {41, 4}, {42, 5}};
  spec.stdio = {43, 44, 44};
  spec.namespaces = NamespaceSpec{45};
  spec.cgroup_procs = {46, 47, 48};
  spec.nice = 5;
  Confinement c;
  c.exec_fd = 49;
  c.limits = {{RLIMIT_NOFILE, 16}, {RLIMIT_FSIZE, 0}};
  c.filter = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4), BPF_STMT(BPF_RET | BPF_K, 0x7fff0000)};
  spec.confine = c;
  spec.queue = NamespaceQueue{6, 8, 64, {"sbx-renderer", "--heartbeat=pipe"}};
  std::vector<int> fds;
  Bytes request = zygote::EncodeRequest(spec, fds);
  Write("fuzz_zygote_wire", "request-renderer", ZygoteSeed(fds.size(), request));
  LaunchSpec bare;
  bare.argv = {"/bin/true"};
  fds.clear();
  request = zygote::EncodeRequest(bare, fds);
  Write("fuzz_zygote_wire", "request-bare", ZygoteSeed(fds.size(), request));
}

}  // namespace
}  // namespace sbx

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR   (writes one folder of seeds per fuzz target)\n",
                 argv[0]);
    return 2;
  }
  sbx::g_root = argv[1];
  sbx::DecoderToRenderer();
  sbx::DecoderToBroker();
  sbx::Heartbeats();
  sbx::FrameHeaders();
  sbx::ControlLines();
  sbx::CommandLines();
  sbx::ZygoteMessages();
  return sbx::g_ok ? 0 : 1;
}
