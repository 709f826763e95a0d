#include "path_shaping.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "console.hpp"

namespace rendr::cli {
namespace {

std::string join(const std::vector<double>& values) {
  std::string out;
  for (const double v : values) {
    if (!out.empty()) out += '+';
    out += short_number(v);
  }
  return out;
}

}  // namespace

testing::Shaping PathShaping::of_path(std::size_t index) const {
  testing::Shaping shaping;
  shaping.rate_bps = static_cast<std::uint64_t>(std::llround(rates_mbit.at(index) * 1e6));
  shaping.delay = std::chrono::microseconds(std::llround(delays_ms.at(index) * 1000));
  return shaping;
}

double PathShaping::sum_megabytes_per_second() const {
  return std::accumulate(rates_mbit.begin(), rates_mbit.end(), 0.0) / 8;
}

double PathShaping::max_megabytes_per_second() const {
  return rates_mbit.empty() ? 0 : *std::max_element(rates_mbit.begin(), rates_mbit.end()) / 8;
}

std::string PathShaping::describe() const {
  return join(rates_mbit) + " Mbit/s, one-way delay " + join(delays_ms) + " ms";
}

PathShaping parse_path_shaping(const Args& args) {
  PathShaping shaping{args.numbers("rates"), args.numbers("delays")};
  if (shaping.rates_mbit.empty()) {
    if (!shaping.delays_ms.empty()) throw UsageError("--delays needs --rates");
    return shaping;
  }
  if (std::any_of(shaping.rates_mbit.begin(), shaping.rates_mbit.end(),
                  [](double r) { return r <= 0; }))
    throw UsageError("--rates must all be > 0 (Mbit/s)");
  if (shaping.delays_ms.empty()) shaping.delays_ms.assign(shaping.rates_mbit.size(), 0);
  if (shaping.delays_ms.size() != shaping.rates_mbit.size())
    throw UsageError("--delays needs one value per --rates value");
  return shaping;
}

}  // namespace rendr::cli
