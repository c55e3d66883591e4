// docs/SANDBOX.md promises a table; this keeps it true to the policy the code installs, row for
// row: outcome, argument conditions and reason.
#include <gtest/gtest.h>
#include <string.h>

#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/policy.h"

namespace sbx::sandbox {
namespace {

std::string OutcomeText(Outcome outcome, int err) {
  if (outcome == Outcome::kAllow) return "allow";
  if (outcome == Outcome::kKill) return "kill (SIGSYS)";
  const char* name = ::strerrorname_np(err);
  return name ? name : std::to_string(err);
}

// Each rule of `table` has its row in docs/SANDBOX.md, word for word.
void ExpectDocumented(std::span<const SyscallRule> table) {
  std::ifstream in(std::string(SBX_SOURCE_DIR) + "/docs/SANDBOX.md");
  ASSERT_TRUE(in) << "docs/SANDBOX.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& rule : table) {
    std::string row = "| `" + std::string(rule.name) + "` | " +
                      OutcomeText(rule.outcome, rule.err) + " | " +
                      (rule.args.empty() ? std::string("any") : std::string(rule.args)) + " | " +
                      std::string(rule.why) + " |";
    EXPECT_NE(text.str().find(row), std::string::npos) << "no row\n" << row;
  }
}

TEST(SandboxDocsTest, EveryPolicyRuleIsDocumentedWithItsOutcomeAndArguments) {
  ExpectDocumented(PolicyTable());
}

TEST(SandboxDocsTest, EveryStartUpRuleOfTheLauncherFilterIsDocumented) {
  ExpectDocumented(StartupTable());
}

}  // namespace
}  // namespace sbx::sandbox
