#include "prometheus.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace rendr::cli {
namespace {

std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

// Label values escape backslash, double quote and newline.
std::string escaped(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PrometheusText::sample(std::string_view name, const Labels& labels, double value) {
  out_.append(name);
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_ += ',';
      out_.append(labels[i].first).append("=\"").append(escaped(labels[i].second)).append("\"");
    }
    out_ += '}';
  }
  out_.append(" ").append(number(value)).append("\n");
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[std::size_t(bucket)];
  sum_ += value;
  ++count_;
}

void Histogram::render(PrometheusText& out, std::string_view name, std::string_view help) const {
  out.family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    char le[32] = "+Inf";
    if (i < bounds_.size()) std::snprintf(le, sizeof le, "%g", bounds_[i]);
    out.sample(bucket, {{"le", le}}, double(cumulative));
  }
  out.sample(std::string(name) + "_sum", sum_);
  out.sample(std::string(name) + "_count", double(count_));
}

}  // namespace rendr::cli
