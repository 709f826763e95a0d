// Drives LLVMFuzzerTestOneInput without libFuzzer: runs every file of the given corpus
// directories (or single files), then N pseudo-random inputs derived from them (mutations,
// truncations, splices and plain random bytes, from a fixed seed). An input that breaks an
// invariant aborts the process; the last line printed on success is "N passed, 0 failed".
//
//   decode_fuzz_replay / flow_fuzz_replay [--random N] [--seed S] PATH...
#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Input = std::vector<std::uint8_t>;

char g_current[512] = "";

void on_abort(int) {
  const char msg[] = "fuzz replay: aborted on input: ";
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, g_current, std::strlen(g_current));
  (void)!write(2, "\n", 1);
  std::signal(SIGABRT, SIG_DFL);
}

void run(const std::string& name, const Input& in) {
  std::snprintf(g_current, sizeof g_current, "%s", name.c_str());
  LLVMFuzzerTestOneInput(in.data(), in.size());
}

Input read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Input(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Input mutate(const std::vector<Input>& seeds, std::mt19937_64& rng) {
  Input out;
  const auto pick = [&]() -> const Input& { return seeds[rng() % seeds.size()]; };
  switch (seeds.empty() ? 0 : rng() % 5) {
    case 0:  // plain random bytes
      out.resize(rng() % 301);
      for (auto& b : out)
        b = static_cast<std::uint8_t>(rng());
      return out;
    case 1:  // truncated seed
      out = pick();
      out.resize(out.empty() ? 0 : rng() % out.size());
      return out;
    case 2: {  // splice of two seeds
      const Input& a = pick();
      const Input& b = pick();
      out.assign(a.begin(),
                 a.begin() + static_cast<std::ptrdiff_t>(a.empty() ? 0 : rng() % (a.size() + 1)));
      out.insert(out.end(),
                 b.begin() + static_cast<std::ptrdiff_t>(b.empty() ? 0 : rng() % (b.size() + 1)),
                 b.end());
      return out;
    }
    default: {  // byte flips / overwrites in a seed
      out = pick();
      if (out.empty()) return out;
      const int n = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) {
        auto& b = out[rng() % out.size()];
        b = rng() % 2 ? static_cast<std::uint8_t>(b ^ (1u << (rng() % 8)))
                      : static_cast<std::uint8_t>(rng());
      }
      return out;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGABRT, on_abort);
  std::size_t random_count = 0;
  std::uint64_t seed = 0x72656e6472ull;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--random" && i + 1 < argc) {
      random_count = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 0);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "usage: %s [--random N] [--seed S] PATH...\n", argv[0]);
      return 2;
    } else {
      paths.emplace_back(a);
    }
  }

  std::vector<std::filesystem::path> files;
  for (const auto& p : paths) {
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "fuzz replay: no such file or directory: %s\n", p.c_str());
      return 2;
    }
  }
  std::sort(files.begin(), files.end());

  std::size_t passed = 0;
  std::vector<Input> seeds;
  for (const auto& f : files) {
    seeds.push_back(read_file(f));
    run(f.string(), seeds.back());
    ++passed;
  }
  std::printf("corpus: %zu files\n", files.size());

  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < random_count; ++i) {
    const Input in = mutate(seeds, rng);
    run("random #" + std::to_string(i) + " (seed " + std::to_string(seed) + ")", in);
    ++passed;
  }
  std::printf("random: %zu inputs (seed %llu)\n", random_count,
              static_cast<unsigned long long>(seed));
  std::printf("%zu passed, 0 failed\n", passed);
  return 0;
}
