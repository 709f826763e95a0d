#include "core/bond_scheduler.hpp"

#include <algorithm>

namespace rendr::core {

double estimated_arrival(const BondCandidate& path, std::size_t frame_bytes) {
  const double rate = std::max(path.delivery_rate, 1.0) * std::max<std::uint32_t>(path.weight, 1);
  return std::chrono::duration<double>(path.srtt).count() / 2 +
         static_cast<double>(path.in_flight + frame_bytes) / rate;
}

bool bond_admits(double arrival, double best_arrival, double aggregate_rate,
                 std::uint64_t window_room) {
  if (arrival <= best_arrival) return true;
  const double tolerance = static_cast<double>(window_room) / 2 / std::max(aggregate_rate, 1.0);
  return arrival - best_arrival <= tolerance;
}

}  // namespace rendr::core
