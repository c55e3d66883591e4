// sbx-policy-gen OUTPUT: a build step. Compiles the renderer's policy (policy.h) with libseccomp
// for a renderer at pid kRendererPidInside and writes it to OUTPUT as the C++ array behind
// PreparedPolicyProgram() (prepared_policy.h). Built with the same flags as the renderer, so the
// table it reads is the renderer's own.
#include <cstdio>

#include "sandbox/policy.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: sbx-policy-gen OUTPUT.cc\n");
    return 2;
  }
  auto program = sbx::sandbox::PolicyProgram(sbx::sandbox::kRendererPidInside);
  if (!program) {
    std::fprintf(stderr, "sbx-policy-gen: %s\n", program.error().ToString().c_str());
    return 1;
  }
  std::FILE* out = std::fopen(argv[1], "we");
  if (out == nullptr) {
    std::perror("sbx-policy-gen: open the output");
    return 1;
  }
  std::fprintf(out,
               "// Written by sbx-policy-gen from sandbox/policy.cc at build time; not edited.\n"
               "#include \"sandbox/prepared_policy.h\"\n\n"
               "namespace sbx::sandbox {\nnamespace {\n\n"
               "constexpr sock_filter kProgram[] = {\n");
  for (const sock_filter& i : *program) {
    std::fprintf(out, "    {0x%04x, %u, %u, 0x%08xu},\n", i.code, i.jt, i.jf, i.k);
  }
  std::fprintf(out,
               "};\n\n}  // namespace\n\n"
               "std::span<const sock_filter> PreparedPolicyProgram() { return kProgram; }\n\n"
               "}  // namespace sbx::sandbox\n");
  if (std::ferror(out) != 0 || std::fclose(out) != 0) {
    std::perror("sbx-policy-gen: write the output");
    std::remove(argv[1]);
    return 1;
  }
  return 0;
}
