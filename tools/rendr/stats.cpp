#include "stats.hpp"

#include <algorithm>
#include <cmath>

namespace rendr::cli {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const auto index = static_cast<std::size_t>(std::clamp(rank, 1.0, double(values.size()))) - 1;
  return values[index];
}

double max_of(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

double to_ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
double to_us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

}  // namespace rendr::cli
