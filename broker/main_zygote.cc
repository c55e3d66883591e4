// sbx-zygote: the broker's launcher process (broker/zygote.h). Started by the broker only, with
// its socket as fd 3 and the namespace holder's pidfd as fd 4; there is nothing to run by hand.
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "broker/zygote.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "--root") != 0 ||
      ::fcntl(sbx::zygote::kSocketFd, F_GETFD) < 0 ||
      ::fcntl(sbx::zygote::kHolderFd, F_GETFD) < 0) {
    std::fprintf(stderr,
                 "sbx-zygote starts renderers for the sbx broker, which starts it itself; it is\n"
                 "not a program to run by hand (see docs/ARCHITECTURE.md, \"The zygote\").\n");
    return 2;
  }
  return sbx::zygote::Serve(argv[2]);
}
