#pragma once
// A flat JSON object writer for the benchmarks' one-line results (keys keep insertion order).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rendr::cli {

class JsonObject {
 public:
  JsonObject& add(std::string_view key, std::string_view value);
  JsonObject& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonObject& add(std::string_view key, bool value);
  JsonObject& add(std::string_view key, std::uint64_t value);

  JsonObject& add(std::string_view key, double value);  // up to 3 decimals
  JsonObject& add(std::string_view key, const std::vector<double>& values);

  std::string str() const;    // one line of JSON
  std::string human() const;  // "key: value" lines for people

 private:
  JsonObject& put(std::string_view key, std::string literal);
  std::vector<std::pair<std::string, std::string>> entries_;  // key, JSON literal
};

}  // namespace rendr::cli
