#pragma once
// Writes the Prometheus text exposition format (version 0.0.4): one family at a time, its HELP
// and TYPE lines, then its samples.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rendr::cli {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // `type`: counter, gauge or histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// Cumulative histogram of observations, rendered as NAME_bucket{le=...}, NAME_sum, NAME_count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  void render(PrometheusText& out, std::string_view name, std::string_view help) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; the last one is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace rendr::cli
