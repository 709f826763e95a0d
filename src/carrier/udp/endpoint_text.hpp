#pragma once
// UDP endpoints as text, the form Conn::migrate_local_address takes: "host:port" with a numeric
// host ("[v6]:port" for IPv6).
#include <algorithm>
#include <optional>
#include <string>
#include <system_error>

#include <asio/ip/address.hpp>
#include <asio/ip/udp.hpp>

#include "rendr/asio.hpp"

namespace rendr::carrier::udp {

// "host:port" with a numeric host ("[v6]:port" for IPv6).
inline std::optional<asio::ip::udp::endpoint> parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const unsigned long port = std::stoul(port_text);
  if (port > 65535) return std::nullopt;
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return asio::ip::udp::endpoint(address, static_cast<unsigned short>(port));
}

}  // namespace rendr::carrier::udp
