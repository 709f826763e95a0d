#pragma once
// Command-line parsing for the `rendr` subcommands: each command declares its options, and the
// parser turns argv into values or a UsageError (exit status 2) that names the offending flag.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rendr/types.hpp"

namespace rendr::cli {

// Exit status for a command line that does not parse (as sysexits-free tools do, e.g. grep).
inline constexpr int kUsageExit = 2;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  enum class Kind { flag, value, repeated };
  std::string name;  // without the leading "--"
  Kind kind = Kind::flag;
  std::string value_name;  // shown in usage, e.g. "HOST:PORT"
  std::string help;
};

struct CommandSpec {
  std::string name;      // "bench stream"
  std::string brief;     // a few words for `rendr --help`
  std::string synopsis;  // one line after "usage: rendr <name> "
  std::string summary;   // one sentence
  std::vector<OptionSpec> options;
};

std::string usage_text(const CommandSpec& command);

class Args {
 public:
  // Parses `argv` (the arguments after the command name). "--name value" and "--name=value" are
  // both accepted. Throws UsageError on an unknown flag, a missing value or a stray argument.
  static Args parse(const CommandSpec& command, std::span<char* const> argv);

  bool help_requested() const { return help_; }
  bool has(std::string_view name) const;
  std::optional<std::string> value(std::string_view name) const;
  std::vector<std::string> values(std::string_view name) const;

  // Typed accessors: the default when absent, UsageError when present but malformed.
  std::string text(std::string_view name, std::string_view fallback) const;
  std::uint64_t size(std::string_view name, std::uint64_t fallback) const;
  std::uint64_t count(std::string_view name, std::uint64_t fallback) const;
  double number(std::string_view name, double fallback) const;
  // "200,200,50": comma-separated non-negative numbers; empty when the flag is absent.
  std::vector<double> numbers(std::string_view name) const;
  std::chrono::milliseconds millis(std::string_view name, std::chrono::milliseconds fallback) const;
  rendr::Mode mode(rendr::Mode fallback = rendr::Mode::prime) const;  // "--mode"
  std::optional<rendr::Congestion> congestion() const;                // "--congestion"

 private:
  bool help_ = false;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// "1GiB", "64MiB", "512KiB", "1000" (bytes), "10MB" (decimal). Throws UsageError otherwise.
std::uint64_t parse_size(std::string_view text);

}  // namespace rendr::cli
