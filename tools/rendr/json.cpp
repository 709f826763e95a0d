#include "json.hpp"

#include <cmath>
#include <cstdio>

namespace rendr::cli {
namespace {

std::string number_text(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", value);
  std::string out = buffer;
  // Trim trailing zeros so integers print as integers ("12" not "12.000").
  out.erase(out.find_last_not_of('0') + 1);
  if (out.back() == '.') out.pop_back();
  return out == "-0" ? "0" : out;
}

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace

JsonObject& JsonObject::put(std::string_view key, std::string literal) {
  entries_.emplace_back(std::string(key), std::move(literal));
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, std::string_view value) {
  return put(key, json_quote(value));
}
JsonObject& JsonObject::add(std::string_view key, bool value) {
  return put(key, value ? "true" : "false");
}
JsonObject& JsonObject::add(std::string_view key, std::uint64_t value) {
  return put(key, std::to_string(value));
}

JsonObject& JsonObject::add(std::string_view key, double value) {
  return put(key, number_text(value));
}
JsonObject& JsonObject::add(std::string_view key, const std::vector<double>& values) {
  std::string literal = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) literal += ',';
    literal += number_text(values[i]);
  }
  return put(key, literal + ']');
}

std::string JsonObject::str() const {
  std::string out = "{";
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (i > 0) out += ',';
    out += json_quote(entries_[i].first);
    out += ':';
    out += entries_[i].second;
  }
  out += '}';
  return out;
}

std::string JsonObject::human() const {
  std::string out;
  for (const auto& [key, literal] : entries_) {
    const bool quoted = literal.size() >= 2 && literal.front() == '"';
    out += "  " + key + std::string(key.size() < 22 ? 22 - key.size() : 1, ' ') +
           (quoted ? literal.substr(1, literal.size() - 2) : literal) + "\n";
  }
  return out;
}

}  // namespace rendr::cli
