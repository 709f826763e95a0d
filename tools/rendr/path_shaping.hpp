#pragma once
// Per-path link shaping for the benchmarks: "--rates 200,200 --delays 1,20" becomes one
// FaultProxy Shaping per path, applied to both directions of that path (the delay is one-way, so
// a path's round trip grows by twice its delay).
#include <cstdint>
#include <string>
#include <vector>

#include "args.hpp"
#include "support/fault_proxy.hpp"

namespace rendr::cli {

struct PathShaping {
  std::vector<double> rates_mbit;  // per path, 10^6 bit/s
  std::vector<double> delays_ms;   // per path, one-way, same length as rates_mbit

  bool empty() const { return rates_mbit.empty(); }
  std::size_t paths() const { return rates_mbit.size(); }
  testing::Shaping of_path(std::size_t index) const;
  double sum_megabytes_per_second() const;  // the sum of the rates, in 10^6 bytes/s
  double max_megabytes_per_second() const;  // the fastest path's rate, in 10^6 bytes/s
  std::string describe() const;             // "200+200 Mbit/s, one-way delay 1+20 ms"
};

// Reads --rates MBIT,MBIT[,...] and --delays MS,MS[,...] (one per rate; default 0). Empty if
// --rates is absent. Throws UsageError on malformed lists, zero rates or mismatched lengths.
PathShaping parse_path_shaping(const Args& args);

}  // namespace rendr::cli
