#include "args.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>

namespace rendr::cli {
namespace {

const OptionSpec* find_option(const CommandSpec& command, std::string_view name) {
  const auto it = std::find_if(command.options.begin(), command.options.end(),
                               [&](const OptionSpec& o) { return o.name == name; });
  return it == command.options.end() ? nullptr : &*it;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

double parse_double(std::string_view text, std::string_view what) {
  double out = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (err != std::errc{} || end != text.data() + text.size() || !std::isfinite(out) || out < 0)
    throw UsageError("invalid " + std::string(what) + ": '" + std::string(text) + "'");
  return out;
}

}  // namespace

std::string usage_text(const CommandSpec& command) {
  std::ostringstream out;
  out << "usage: rendr " << command.name << " " << command.synopsis << "\n\n"
      << command.summary << "\n\noptions:\n";
  for (const OptionSpec& o : command.options) {
    std::string left = "--" + o.name;
    if (o.kind != OptionSpec::Kind::flag) left += " " + o.value_name;
    if (o.kind == OptionSpec::Kind::repeated) left += " ...";
    out << "  " << left;
    out << std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') << o.help << "\n";
  }
  out << "  --help                      show this help\n";
  return out.str();
}

Args Args::parse(const CommandSpec& command, std::span<char* const> argv) {
  Args args;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args.help_ = true;
      continue;
    }
    if (!arg.starts_with("--"))
      throw UsageError("unexpected argument '" + std::string(arg) + "' for 'rendr " + command.name +
                       "'");
    arg.remove_prefix(2);
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      inline_value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
    }
    const OptionSpec* option = find_option(command, arg);
    if (option == nullptr)
      throw UsageError("unknown flag '--" + std::string(arg) + "' for 'rendr " + command.name +
                       "'");
    const std::string name(arg);
    if (option->kind == OptionSpec::Kind::flag) {
      if (inline_value) throw UsageError("flag '--" + name + "' takes no value");
      args.values_[name].emplace_back();
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size())
        throw UsageError("flag '--" + name + "' needs a value (" + option->value_name + ")");
      inline_value = argv[++i];
    }
    auto& slot = args.values_[name];
    if (option->kind == OptionSpec::Kind::value && !slot.empty())
      throw UsageError("flag '--" + name + "' given more than once");
    slot.push_back(*inline_value);
  }
  return args;
}

bool Args::has(std::string_view name) const {
  return values_.find(name) != values_.end();
}

std::optional<std::string> Args::value(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::values(std::string_view name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::text(std::string_view name, std::string_view fallback) const {
  return value(name).value_or(std::string(fallback));
}

std::uint64_t Args::size(std::string_view name, std::uint64_t fallback) const {
  const auto v = value(name);
  return v ? parse_size(*v) : fallback;
}

std::uint64_t Args::count(std::string_view name, std::uint64_t fallback) const {
  const auto v = value(name);
  if (!v) return fallback;
  std::uint64_t out = 0;
  const auto [end, err] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (err != std::errc{} || end != v->data() + v->size())
    throw UsageError("--" + std::string(name) + " needs a whole number, got '" + *v + "'");
  return out;
}

double Args::number(std::string_view name, double fallback) const {
  const auto v = value(name);
  return v ? parse_double(*v, "--" + std::string(name)) : fallback;
}

std::vector<double> Args::numbers(std::string_view name) const {
  std::vector<double> out;
  const auto v = value(name);
  if (!v) return out;
  std::string_view rest = *v;
  for (;;) {
    const auto comma = rest.find(',');
    out.push_back(parse_double(rest.substr(0, comma), "--" + std::string(name) + " item"));
    if (comma == std::string_view::npos) return out;
    rest.remove_prefix(comma + 1);
  }
}

std::chrono::milliseconds Args::millis(std::string_view name,
                                       std::chrono::milliseconds fallback) const {
  return std::chrono::milliseconds(count(name, static_cast<std::uint64_t>(fallback.count())));
}

rendr::Mode Args::mode(rendr::Mode fallback) const {
  const auto v = value("mode");
  if (!v) return fallback;
  rendr::Mode out{};
  if (!rendr::parse_mode(*v, out))
    throw UsageError("--mode must be prime, race or bond, got '" + *v + "'");
  return out;
}

std::optional<rendr::Congestion> Args::congestion() const {
  const auto v = value("congestion");
  if (!v) return std::nullopt;
  rendr::Congestion out{};
  if (!rendr::parse_congestion(*v, out))
    throw UsageError("--congestion must be cubic, newreno or bbr, got '" + *v + "'");
  return out;
}

std::uint64_t parse_size(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double factor;
  };
  static constexpr std::array<Unit, 8> kUnits{{{"KiB", 1024.0},
                                               {"MiB", 1024.0 * 1024},
                                               {"GiB", 1024.0 * 1024 * 1024},
                                               {"KB", 1e3},
                                               {"MB", 1e6},
                                               {"GB", 1e9},
                                               {"B", 1.0},
                                               {"", 1.0}}};
  for (const Unit& unit : kUnits) {
    if (text.size() < unit.suffix.size() ||
        !iequals(text.substr(text.size() - unit.suffix.size()), unit.suffix))
      continue;
    const std::string_view digits = text.substr(0, text.size() - unit.suffix.size());
    if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits.back()))) continue;
    const double bytes = std::round(parse_double(digits, "size") * unit.factor);
    if (bytes >= 1.8e19) throw UsageError("size too large: '" + std::string(text) + "'");
    return static_cast<std::uint64_t>(bytes);
  }
  throw UsageError("invalid size '" + std::string(text) + "' (use e.g. 4096, 512KiB, 64MiB, 1GiB)");
}

}  // namespace rendr::cli
