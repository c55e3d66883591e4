// docs/SANDBOX.md promises a table; this keeps it true to the policy the code installs.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/policy.h"

namespace sbx::sandbox {
namespace {

TEST(SandboxDocsTest, EveryPolicyRuleIsDocumentedWithItsOutcome) {
  std::ifstream in(std::string(SBX_SOURCE_DIR) + "/docs/SANDBOX.md");
  ASSERT_TRUE(in) << "docs/SANDBOX.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& rule : PolicyTable()) {
    std::string outcome = rule.outcome == Outcome::kAllow  ? "allow"
                          : rule.outcome == Outcome::kKill ? "kill (SIGSYS)"
                          : rule.err == EPERM              ? "EPERM"
                                                           : "ENOSYS";
    std::string row = "| `" + std::string(rule.name) + "` | " + outcome + " |";
    EXPECT_NE(text.str().find(row), std::string::npos) << "no row " << row;
  }
}

}  // namespace
}  // namespace sbx::sandbox
