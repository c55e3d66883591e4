// Runs a fuzz target's LLVMFuzzerTestOneInput over files and directories of inputs, with no
// libFuzzer: the g++ builds (plain and ASan+UBSan) replay every corpus this way, so each result
// stands without the clang build and its __cpp_concepts override.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

bool RunFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  // Tell which input is running, so an abort or a sanitizer report below it names its file.
  std::fprintf(stderr, "replaying %s\n", path.c_str());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return true;
}

// Every regular file under `dir`, in name order so that runs are repeatable.
bool Files(const fs::path& dir, std::vector<fs::path>* out) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) out->push_back(it->path());
  }
  if (ec) std::fprintf(stderr, "cannot list %s: %s\n", dir.c_str(), ec.message().c_str());
  std::sort(out->begin(), out->end());
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...   (replays fuzz inputs, no fuzzing)\n", argv[0]);
    return 2;
  }
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(argv[i], ec)) {
      if (!Files(argv[i], &files)) return 1;
    } else {
      files.emplace_back(argv[i]);
    }
    for (const auto& f : files) {
      if (!RunFile(f)) return 1;
      ++runs;
    }
  }
  // An empty corpus would make the replay pass without testing anything.
  if (runs == 0) {
    std::fprintf(stderr, "no inputs found\n");
    return 1;
  }
  std::printf("%zu inputs replayed, all clean\n", runs);
  return 0;
}
