// Public vocabulary: mode names, FlowId text, path spec parsing.
#include "rendr/types.hpp"

#include <charconv>

#include "core/types.hpp"
#include "rendr/error.hpp"
#include "runtime/convert.hpp"

namespace rendr {

std::string_view to_string(Mode m) {
  return core::to_string(runtime::to_core(m));
}

bool parse_mode(std::string_view text, Mode& out) {
  for (Mode m : {Mode::prime, Mode::race, Mode::bond}) {
    if (text == to_string(m)) {
      out = m;
      return true;
    }
  }
  return false;
}

std::string_view to_string(Congestion c) {
  switch (c) {
    case Congestion::cubic:
      return "cubic";
    case Congestion::new_reno:
      return "newreno";
    case Congestion::bbr:
      return "bbr";
  }
  return "cubic";
}

bool parse_congestion(std::string_view text, Congestion& out) {
  for (Congestion c : {Congestion::cubic, Congestion::new_reno, Congestion::bbr}) {
    if (text == to_string(c)) {
      out = c;
      return true;
    }
  }
  return false;
}

std::string to_hex(const FlowId& id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(id.size() * 2);
  for (auto b : id) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

std::string_view to_string(MigrateCause c) {
  return core::to_string(runtime::to_core(c));
}

namespace {

// A URI scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), case-insensitive, so
// stored in lower case: "UDPFLOW://" names the udpflow transport.
bool parse_scheme(std::string_view text, std::string& out) {
  auto is_alpha = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); };
  if (text.empty() || !is_alpha(text.front())) return false;
  out.clear();
  for (const char ch : text) {
    const bool ok = is_alpha(ch) || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.';
    if (!ok) return false;
    out.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
  }
  return true;
}

}  // namespace

PathSpec PathSpec::parse(std::string_view uri, std::error_code& ec) {
  ec.clear();
  PathSpec spec;
  if (const auto query = uri.find('?'); query != std::string_view::npos) {
    const std::string_view option = uri.substr(query + 1);
    constexpr std::string_view kWeight = "weight=";
    unsigned weight = 0;
    const char* first = option.data() + kWeight.size();
    const char* last = option.data() + option.size();
    if (!option.starts_with(kWeight) || std::from_chars(first, last, weight).ptr != last ||
        weight == 0) {
      ec = errc::bad_path_spec;
      return {};
    }
    spec.weight = weight;
    uri = uri.substr(0, query);
  }
  if (const auto scheme_end = uri.find("://"); scheme_end != std::string_view::npos) {
    if (!parse_scheme(uri.substr(0, scheme_end), spec.transport)) {
      ec = errc::bad_path_spec;
      return {};
    }
    uri.remove_prefix(scheme_end + 3);
  }
  std::string_view host;
  std::string_view port;
  if (!uri.empty() && uri.front() == '[') {  // [v6]:port
    const auto close = uri.find(']');
    if (close == std::string_view::npos || close + 1 >= uri.size() || uri[close + 1] != ':') {
      ec = errc::bad_path_spec;
      return {};
    }
    host = uri.substr(1, close - 1);
    port = uri.substr(close + 2);
  } else {
    const auto colon = uri.rfind(':');
    if (colon == std::string_view::npos || uri.find(':') != colon) {
      ec = errc::bad_path_spec;
      return {};
    }
    host = uri.substr(0, colon);
    port = uri.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || spec.transport.empty() || err != std::errc{} ||
      end != port.data() + port.size() || value == 0 || value > 65535) {
    ec = errc::bad_path_spec;
    return {};
  }
  spec.host = std::string(host);
  spec.port = static_cast<std::uint16_t>(value);
  return spec;
}

PathSpec PathSpec::parse(std::string_view uri) {
  std::error_code ec;
  PathSpec spec = parse(uri, ec);
  if (ec) throw std::system_error(ec, "rendr::PathSpec::parse(" + std::string(uri) + ")");
  return spec;
}

std::string PathSpec::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string text =
      transport + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (weight != 1) text += "?weight=" + std::to_string(weight);
  return text;
}

}  // namespace rendr
