#pragma once
// The bytes the stream transfers send: a pseudo-random pattern with an odd period, so that a
// replay bug duplicating or dropping any power-of-two-sized block changes the SHA-256.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace rendr::cli {

class Payload {
 public:
  static constexpr std::size_t kMaxChunk = 1024 * 1024;        // the transfers' write size
  static constexpr std::size_t kPeriod = 8 * 1024 * 1024 - 1;  // odd on purpose

  Payload();
  // The `length` (<= kMaxChunk) bytes at stream offset `offset`, contiguous in memory.
  std::span<const std::byte> at(std::uint64_t offset, std::size_t length) const {
    return {pattern_.data() + offset % kPeriod, length};
  }

 private:
  std::vector<std::byte> pattern_;  // kPeriod bytes, then its first kMaxChunk bytes again
};

}  // namespace rendr::cli
