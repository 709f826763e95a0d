// Dialing: what a caller learns when no path can be connected.
#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

// A loopback port that nobody listens on (bound to find a free one, then closed).
std::uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::uint16_t port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

TEST_F(IntegrationTest, DialToAClosedPortReportsConnectionRefused) {
  Dialer d = dialer({PathSpec::parse("tcp://127.0.0.1:" + std::to_string(closed_port()))});
  d.dial_timeout = std::chrono::milliseconds(500);
  std::error_code ec;
  Conn c = d.dial(ec);
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(ec, asio::error::connection_refused) << ec.message();
}

TEST_F(IntegrationTest, DialWithABadPathSpecFailsAtOnce) {
  Dialer d = dialer({PathSpec{"carrier-pigeon", "127.0.0.1", 1}});
  std::error_code ec;
  EXPECT_FALSE(d.dial(ec).is_open());
  EXPECT_EQ(ec, errc::bad_path_spec);
  std::error_code parse_ec;
  PathSpec::parse("tcp://127.0.0.1:0", parse_ec);
  EXPECT_EQ(parse_ec, errc::bad_path_spec);
  PathSpec::parse("tcp://127.0.0.1:80?weight=0", parse_ec);
  EXPECT_EQ(parse_ec, errc::bad_path_spec);
  EXPECT_EQ(PathSpec::parse("tcp://[::1]:80?weight=3").weight, 3u);
}

}  // namespace
}  // namespace rendr::itest
