// TLS over a rendr Conn: asio::ssl::stream<Conn&> (client) and asio::ssl::stream<Conn> (server)
// with a self-signed certificate made at run time, TLS 1.3 only, bytes both ways checked across
// several migrations between two TCP paths.
#include <memory>
#include <thread>

#include <openssl/ssl.h>

#include <asio/read.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>

#include "harness.hpp"
#include "self_signed.hpp"

namespace rendr::itest {
namespace {

PathId other_up_path(const Conn& client) {
  for (const auto& p : client.stats().paths)
    if (p.id != client.active_path() && p.state == "up") return p.id;
  return kNoPath;
}

Bytes transformed(Bytes bytes) {
  for (auto& b : bytes)
    b ^= 0x5a;
  return bytes;
}

TEST_F(IntegrationTest, Tls13OverConnCarriesBytesBothWaysAcrossMigrations) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  const SelfSigned identity;
  ASSERT_TRUE(identity.key && identity.cert);
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  for (auto* ctx : {&server_ctx, &client_ctx}) {
    ASSERT_EQ(SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION), 1);
  }
  ASSERT_TRUE(identity.install(server_ctx.native_handle(), client_ctx.native_handle()));

  // Both forms of next layer: a reference to the application's Conn, and a Conn by value.
  asio::ssl::stream<Conn&> tls_client(client, client_ctx);
  asio::ssl::stream<Conn> tls_server(server, server_ctx);
  static_assert(std::is_same_v<asio::ssl::stream<Conn&>::lowest_layer_type, Conn>);
  EXPECT_EQ(&tls_client.lowest_layer(), &client);

  constexpr std::size_t kMessage = 64 * KiB;
  // The server (blocking, on its own thread) answers each message with its bytes transformed,
  // until the client's close_notify.
  error_code server_error;
  std::thread server_thread([&] {
    tls_server.handshake(asio::ssl::stream_base::server, server_error);
    if (server_error) return;
    Bytes message(kMessage);
    for (;;) {
      asio::read(tls_server, asio::buffer(message), server_error);
      if (server_error) break;
      asio::write(tls_server, asio::buffer(transformed(message)), server_error);
      if (server_error) break;
    }
    if (server_error == asio::error::eof) tls_server.shutdown(server_error);
  });
  struct Join {
    std::function<void()> f;
    ~Join() { f(); }
  } join{[&] {
    if (::testing::Test::HasFailure()) {
      client.abort();
      server.abort();
    }
    server_thread.join();
  }};

  error_code ec;
  tls_client.handshake(asio::ssl::stream_base::client, ec);
  ASSERT_FALSE(ec) << "client handshake: " << ec.message();
  EXPECT_EQ(SSL_version(tls_client.native_handle()), TLS1_3_VERSION);

  constexpr int kMigrations = 6;
  for (int i = 0; i < kMigrations; ++i) {
    PathId target = kNoPath;
    ASSERT_TRUE(
        wait_until([&] { return (target = other_up_path(client)) != kNoPath; }, scaled(5s)));
    ASSERT_EQ(client.migrate(target), error_code{}) << "migration " << i;
    Bytes message(kMessage);
    fill_pattern(static_cast<std::uint64_t>(i) + 1, 0, message);
    asio::write(tls_client, asio::buffer(message), ec);
    ASSERT_FALSE(ec) << "write " << i << ": " << ec.message();
    Bytes reply(kMessage);
    asio::read(tls_client, asio::buffer(reply), ec);
    ASSERT_FALSE(ec) << "read " << i << ": " << ec.message();
    ASSERT_TRUE(reply == transformed(message)) << "round " << i;
  }
  EXPECT_GE(client.migration_count(), static_cast<std::uint64_t>(kMigrations));

  tls_client.shutdown(ec);  // close_notify both ways
  EXPECT_FALSE(ec) << "client shutdown: " << ec.message();
  client.close();
  server_thread.join();
  join.f = [] {};
  EXPECT_FALSE(server_error) << "server: " << server_error.message();
}

}  // namespace
}  // namespace rendr::itest
