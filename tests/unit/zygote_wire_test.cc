// The zygote's messages (broker/zygote.h): a launch spec survives the trip, with its fds as
// indexes; anything malformed is an error, never a crash or a half-read spec.
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "broker/zygote.h"

namespace sbx {
namespace {

using nlohmann::json;

LaunchSpec Sample() {
  LaunchSpec spec;
  spec.argv = {"sbx-renderer", "--type=renderer", "--id=7"};
  spec.fds = {{40, 3}, {41, 4}, {42, 5}};
  spec.stdio = {43, 44, 44};  // stdout and stderr share the log pipe
  spec.namespaces = NamespaceSpec{45};
  spec.cgroup_procs = {46, 47};
  spec.nice = 5;
  Confinement c;
  c.exec_fd = 48;
  c.root = "/mnt";
  c.limits = {{RLIMIT_NOFILE, 16}, {RLIMIT_FSIZE, 0}};
  c.filter = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4), BPF_STMT(BPF_RET | BPF_K, 0x7fff0000)};
  spec.confine = c;
  spec.queue = NamespaceQueue{6, 8, 64, {"sbx-renderer", "--heartbeat=pipe"}};
  return spec;
}

TEST(ZygoteWireTest, ARequestRoundTrips) {
  LaunchSpec spec = Sample();
  std::vector<int> fds;
  auto bytes = zygote::EncodeRequest(spec, fds);
  // Each distinct fd once, in the order first named.
  EXPECT_EQ(fds, (std::vector<int>{40, 41, 42, 43, 44, 46, 47, 48}));
  // The zygote receives them as other numbers.
  std::vector<int> theirs = {100, 101, 102, 103, 104, 105, 106, 107};
  auto back = zygote::DecodeRequest(bytes, theirs);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->argv, spec.argv);
  EXPECT_FALSE(back->search_path);
  EXPECT_EQ(back->fds, (std::vector<std::pair<int, int>>{{100, 3}, {101, 4}, {102, 5}}));
  EXPECT_EQ(back->stdio, (std::array<int, 3>{103, 104, 104}));
  ASSERT_TRUE(back->namespaces);
  EXPECT_EQ(back->namespaces->holder_pidfd, -1) << "the zygote is inside them already";
  EXPECT_EQ(back->cgroup_procs, (std::vector<int>{105, 106}));
  EXPECT_EQ(back->nice, 5);
  ASSERT_TRUE(back->confine);
  EXPECT_EQ(back->confine->exec_fd, 107);
  EXPECT_EQ(back->confine->root, "/") << "the zygote is in the empty root already";
  EXPECT_EQ(back->confine->limits, spec.confine->limits);
  ASSERT_EQ(back->confine->filter.size(), 2u);
  EXPECT_EQ(back->confine->filter[1].k, 0x7fff0000u);
  ASSERT_TRUE(back->queue);
  EXPECT_EQ(back->queue->target_fd, 6);
  EXPECT_EQ(back->queue->max_msg, 8);
  EXPECT_EQ(back->queue->msg_size, 64);
  EXPECT_EQ(back->queue->fallback_argv, spec.queue->fallback_argv);
}

TEST(ZygoteWireTest, AnUnconfinedRequestRoundTrips) {
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  std::vector<int> fds;
  auto back = zygote::DecodeRequest(zygote::EncodeRequest(spec, fds), fds);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_TRUE(fds.empty());
  EXPECT_FALSE(back->namespaces);
  EXPECT_FALSE(back->confine);
  EXPECT_FALSE(back->queue);
  EXPECT_FALSE(back->nice);
  EXPECT_EQ(back->stdio, (std::array<int, 3>{-1, -1, -1}));
}

// Decodes `j` (the encoded sample, changed) against the sample's eight fds.
Result<LaunchSpec> DecodeChanged(const std::function<void(json&)>& change) {
  std::vector<int> fds;
  auto bytes = zygote::EncodeRequest(Sample(), fds);
  json j = json::from_cbor(bytes);
  change(j);
  return zygote::DecodeRequest(json::to_cbor(j), fds);
}

TEST(ZygoteWireTest, MalformedRequestsAreRefused) {
  std::vector<std::function<void(json&)>> changes = {
      [](json& j) { j["argv"] = json::array(); },
      [](json& j) { j["argv"][0] = 5; },
      [](json& j) { j["argv"][1] = std::string("a\0b", 3); },
      [](json& j) { j.erase("search_path"); },
      [](json& j) { j["fds"][0][0] = 8; },   // past the message's fds
      [](json& j) { j["fds"][0][0] = -1; },  // a map entry needs an fd
      [](json& j) { j["fds"][0][1] = 99999; },
      [](json& j) { j["fds"][0] = {1}; },
      [](json& j) {
        j["stdio"] = {0, 1};
      },
      [](json& j) { j["cgroup_procs"][0] = "x"; },
      [](json& j) { j["nice"] = 40; },
      [](json& j) { j["confine"]["exec"] = -1; },
      [](json& j) {
        j["confine"]["limits"][0] = {RLIM_NLIMITS, 1};
      },
      [](json& j) {
        j["confine"]["limits"][0] = {1, -1};
      },
      [](json& j) {
        j["confine"]["filter"] = json::binary({1, 2, 3});
      },
      [](json& j) { j["confine"]["filter"] = json::binary({}); },
      [](json& j) { j["confine"]["filter"] = "text"; },
      [](json& j) { j["queue"]["target"] = 2; },
      [](json& j) { j["queue"].erase("fallback_argv"); },
      [](json& j) { j["queue"] = 1; },
      [](json& j) { j = json::array(); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    auto r = DecodeChanged(changes[i]);
    EXPECT_FALSE(r) << "change " << i << " was accepted";
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << i;
    }
  }
}

TEST(ZygoteWireTest, TruncatedOrGarbageBytesAreRefused) {
  std::vector<int> fds;
  auto bytes = zygote::EncodeRequest(Sample(), fds);
  for (size_t n = 0; n < bytes.size(); n += 7) {
    EXPECT_FALSE(zygote::DecodeRequest(std::span(bytes.data(), n), fds)) << n;
  }
  std::vector<uint8_t> garbage(64, 0xff);
  EXPECT_FALSE(zygote::DecodeRequest(garbage, fds));
}

// The reader of CBOR recurses per nesting level: a message of nothing but nested arrays, as
// large as the socket carries, once took the broker down with a stack overflow.
TEST(ZygoteWireTest, AMessageNestedDeeperThanAnyRealOneIsRefusedNotFollowed) {
  std::vector<uint8_t> deep(zygote::kMaxMessage - 1, 0x81);  // [[[[...
  deep.push_back(0x00);
  EXPECT_FALSE(zygote::DecodeAnswer(deep, 0));
  std::vector<int> none;
  EXPECT_FALSE(zygote::DecodeRequest(deep, none));
  // Nine levels are refused too, where the deepest real message (a request) has four.
  json nine = json::array();
  for (int i = 0; i < 8; ++i) nine = json::array({nine});
  EXPECT_FALSE(zygote::DecodeAnswer(json::to_cbor(json{{"child", 0}, {"pid", 5}, {"x", nine}}), 1));
  // An array that claims 2^63 elements (the reader's tree builder threw on it, and the broker
  // ended in std::terminate), and a map that claims more entries than the message has bytes.
  std::vector<uint8_t> huge = {0xa1, 0x61, 'x',  0x9b, 0x7f, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(zygote::DecodeAnswer(huge, 0));
  EXPECT_FALSE(zygote::DecodeRequest(huge, none));
  std::vector<uint8_t> long_map = {0xba, 0x00, 0x10, 0x00, 0x00};  // a map of 2^20 pairs
  EXPECT_FALSE(zygote::DecodeAnswer(long_map, 0));
  json four = json::array({json::array({json::array()})});
  EXPECT_TRUE(zygote::DecodeAnswer(json::to_cbor(json{{"child", 0}, {"pid", 5}, {"x", four}}), 1));
}

TEST(ZygoteWireTest, AChildComesWithItsPidfdOrNone) {
  auto bytes = zygote::EncodeChild({LaunchRole::kInit, 1234});
  for (size_t fds : {0u, 1u}) {
    auto back = zygote::DecodeAnswer(bytes, fds);
    ASSERT_TRUE(back) << back.error().ToString();
    ASSERT_TRUE(back->child);
    EXPECT_EQ(back->child->role, LaunchRole::kInit);
    EXPECT_EQ(back->child->pid, 1234);
  }
  EXPECT_FALSE(zygote::DecodeAnswer(bytes, 2));
  for (json bad : {json{{"child", 3}, {"pid", 5}}, json{{"child", 0}, {"pid", 0}},
                   json{{"child", 0}}, json{{"child", "joiner"}, {"pid", 5}}}) {
    EXPECT_FALSE(zygote::DecodeAnswer(json::to_cbor(bad), 1)) << bad.dump();
  }
}

TEST(ZygoteWireTest, AReplysFdsMustAddUp) {
  zygote::Reply ok;
  ok.ok = true;
  ok.has_queue = true;
  auto bytes = zygote::EncodeReply(ok);
  auto back = zygote::DecodeAnswer(bytes, 1);  // the queue's read end
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_FALSE(back->child);
  EXPECT_TRUE(back->reply.ok);
  EXPECT_TRUE(back->reply.has_queue);
  EXPECT_FALSE(zygote::DecodeAnswer(bytes, 0));
  EXPECT_FALSE(zygote::DecodeAnswer(bytes, 2));

  zygote::Reply failed;
  failed.error = Error{Errc::kState, EINVAL, "launch failed at seccomp filter"};
  back = zygote::DecodeAnswer(zygote::EncodeReply(failed), 0);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_FALSE(back->reply.ok);
  EXPECT_EQ(back->reply.error.code, Errc::kState);
  EXPECT_EQ(back->reply.error.sys_errno, EINVAL);
  EXPECT_EQ(back->reply.error.what, "launch failed at seccomp filter");
  failed.has_queue = true;  // a failed launch hands no queue over
  EXPECT_FALSE(zygote::DecodeAnswer(zygote::EncodeReply(failed), 1));
  std::vector<uint8_t> garbage = {0xa1, 0x61};
  EXPECT_FALSE(zygote::DecodeAnswer(garbage, 0));
}

// A launch's own failure relayed by the zygote never reads as the zygote failing, which would
// make the broker kill a healthy zygote.
TEST(ZygoteWireTest, ARelayedTimeoutIsTheLaunchsNotTheZygotes) {
  zygote::Reply failed;
  failed.error = Error{Errc::kTimeout, 0, "the namespace joiner did not hand the queue over"};
  auto back = zygote::DecodeAnswer(zygote::EncodeReply(failed), 0);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->reply.error.code, Errc::kState);
  EXPECT_EQ(back->reply.error.what, failed.error.what);
}

}  // namespace
}  // namespace sbx
