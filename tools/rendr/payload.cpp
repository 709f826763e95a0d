#include "payload.hpp"

#include <algorithm>
#include <random>

namespace rendr::cli {

Payload::Payload() : pattern_(kPeriod + kMaxChunk) {
  std::mt19937_64 random(0x72656e6472ULL);  // fixed seed: runs are reproducible
  for (std::size_t i = 0; i + 8 <= kPeriod; i += 8) {
    const std::uint64_t word = random();
    for (std::size_t b = 0; b < 8; ++b)
      pattern_[i + b] = std::byte(word >> (8 * b));
  }
  std::copy_n(pattern_.begin(), kMaxChunk, pattern_.begin() + kPeriod);
}

}  // namespace rendr::cli
