#pragma once
// The reference for a shaped `bench stream`: what plain TCP achieves over the same links. One
// raw TCP connection per path, each through its own FaultProxy shaped like that path, all
// transferring at once; connection i carries total * rate_i / sum of rates, so on ideal links
// all finish together. The sum is what the proxies and the CPU actually deliver, next to the
// nominal sum of the rates.
#include <cstdint>

#include "path_shaping.hpp"
#include "payload.hpp"
#include "stats.hpp"
#include "transfer.hpp"

namespace rendr::cli {

struct ShapedTcpResult {
  std::uint64_t bytes_received = 0;
  Clock::duration elapsed{};    // until the last connection finished
  Clock::duration max_stall{};  // the longest read gap of any connection
  bool ok = true;               // every connection intact, EOF after all bytes, no error

  double megabytes_per_second() const {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    return seconds > 0 ? double(bytes_received) / 1e6 / seconds : 0;
  }
};

ShapedTcpResult run_shaped_tcp(const PathShaping& shaping, const Payload& payload,
                               std::uint64_t total, Verify verify);

}  // namespace rendr::cli
