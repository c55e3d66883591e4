// The stray sweep (ReapStrayChildren) against real children: one shaped like a stray (in another
// process group that it does not lead) is left alone while a ChildProcess owns it, and killed
// and reaped once nobody does.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "broker/child_process.h"
#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

TEST(StraySweepTest, AChildSomeoneOwnsIsNeverTakenForAStray) {
  test::Child leader = test::ForkChild([] { ::pause(); });
  test::Child member = test::ForkChild([] { ::pause(); });
  ASSERT_TRUE(leader.pidfd.valid());
  ASSERT_TRUE(member.pidfd.valid());
  // The member joins the leader's new group: the shape the sweep takes for a stray.
  ASSERT_EQ(::setpgid(leader.pid, leader.pid), 0);
  ASSERT_EQ(::setpgid(member.pid, leader.pid), 0);
  ChildProcess owned_leader(leader.pid, std::move(leader.pidfd));
  ChildProcess owned_member(member.pid, std::move(member.pidfd));

  EXPECT_EQ(ReapStrayChildren(), 0);
  EXPECT_FALSE(owned_member.TryWait().has_value()) << "the sweep killed a child it owns";
  EXPECT_FALSE(owned_leader.TryWait().has_value());

  // Given up by its owner, the same child is a stray: killed, then reaped by a later sweep.
  UniqueFd member_fd = owned_member.Release();
  EXPECT_EQ(ReapStrayChildren(), 1);
  auto killed = WaitReadable(member_fd.get(), test::kDeadlineMs);
  ASSERT_TRUE(killed && *killed) << "the sweep did not kill the stray";
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (test::StillUnreaped(member.pid) && MonotonicNs() < deadline) {
    (void)ReapStrayChildren();
  }
  EXPECT_FALSE(test::StillUnreaped(member.pid));
  EXPECT_FALSE(owned_leader.TryWait().has_value()) << "the sweep killed the group's leader";
}

}  // namespace
}  // namespace sbx
