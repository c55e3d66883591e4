// What every fuzz target shares: a check that stops the run loudly, the same under libFuzzer
// (which saves the input as a crash) and under the g++ replay driver (which names the file).
#pragma once

#include <cstdio>
#include <cstdlib>

// A broken property is a bug in the code under test, never in the input: abort so that both
// drivers and every sanitizer report it with a stack.
#define SBX_FUZZ_CHECK(cond)                                                                \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
