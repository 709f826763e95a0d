// rendr::PathSpec text form: tcp and udpflow specs parse, print and round-trip; malformed ones
// are errc::bad_path_spec and never throw from the error_code overload.
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "rendr/error.hpp"
#include "rendr/types.hpp"

namespace rendr {
namespace {

PathSpec parse_ok(const std::string& text) {
  std::error_code ec;
  PathSpec spec = PathSpec::parse(text, ec);
  EXPECT_FALSE(ec) << text << ": " << ec.message();
  return spec;
}

void expect_bad(const std::string& text) {
  std::error_code ec;
  const PathSpec spec = PathSpec::parse(text, ec);
  EXPECT_EQ(ec, errc::bad_path_spec) << text;
  EXPECT_TRUE(spec.host.empty()) << text;
}

TEST(PathSpecTest, UdpflowSpecParses) {
  const PathSpec spec = parse_ok("udpflow://127.0.0.1:9000");
  EXPECT_EQ(spec.transport, "udpflow");
  EXPECT_EQ(spec.host, "127.0.0.1");
  EXPECT_EQ(spec.port, 9000);
  EXPECT_EQ(spec.weight, 1u);
}

TEST(PathSpecTest, UdpflowIpv6HostnameAndWeight) {
  const PathSpec v6 = parse_ok("udpflow://[::1]:443?weight=3");
  EXPECT_EQ(v6.transport, "udpflow");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 443);
  EXPECT_EQ(v6.weight, 3u);
  const PathSpec named = parse_ok("udpflow://relay.example:65535");
  EXPECT_EQ(named.host, "relay.example");
  EXPECT_EQ(named.port, 65535);
}

TEST(PathSpecTest, SchemeIsCaseInsensitive) {
  EXPECT_EQ(parse_ok("UDPFLOW://h:1").transport, "udpflow");
  EXPECT_EQ(parse_ok("Tcp://h:1").transport, "tcp");
}

TEST(PathSpecTest, BareHostPortIsTcp) {
  const PathSpec spec = parse_ok("10.0.0.1:80");
  EXPECT_EQ(spec.transport, "tcp");
  EXPECT_EQ(spec.port, 80);
}

TEST(PathSpecTest, ToStringRoundTripsBothTransports) {
  for (const std::string text : {"udpflow://127.0.0.1:9000", "udpflow://[::1]:9000?weight=2",
                                 "tcp://127.0.0.1:80", "tcp://[fe80::1]:80?weight=5"}) {
    EXPECT_EQ(parse_ok(text).to_string(), text);
    EXPECT_EQ(PathSpec::parse(parse_ok(text).to_string()).to_string(), text);
  }
}

TEST(PathSpecTest, MalformedSpecsAreBadPathSpec) {
  for (const std::string text :
       {"udpflow://127.0.0.1:0", "udpflow://127.0.0.1:65536", "udpflow://127.0.0.1",
        "udpflow://:9000", "udpflow://127.0.0.1:9000/x", "udpflow://127.0.0.1:9000?weight=0",
        "udpflow://127.0.0.1:9000?mtu=1200", "udpflow://[::1]9000", "udpflow://::1:9000",
        "://127.0.0.1:9000", "udp flow://127.0.0.1:9000", "1udp://127.0.0.1:9000",
        "udp_flow://127.0.0.1:9000", "", "udpflow://"}) {
    expect_bad(text);
  }
  EXPECT_THROW(PathSpec::parse("udpflow://127.0.0.1:0"), std::system_error);
}

}  // namespace
}  // namespace rendr
