// Boost.Beast WebSocket over rendr::Conn (RENDR_ASIO=boost only): many echoed messages with
// migrations between two TCP paths, once over the Conn itself (client async: Beast's composed
// operations over Conn::async_read_some/async_write_some) and once over
// boost::asio::ssl::stream<Conn&> with a run-time self-signed certificate. Every echo is
// checked, and both ends close with the WebSocket closing handshake.
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <thread>

#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "harness.hpp"
#include "rendr/beast.hpp"
#include "self_signed.hpp"

namespace rendr::itest {
namespace {

namespace websocket = boost::beast::websocket;

constexpr int kMessages = 240;
constexpr int kMigrateEvery = 40;  // 5 migrations between the messages

PathId other_up_path(const Conn& client) {
  for (const auto& p : client.stats().paths)
    if (p.id != client.active_path() && p.state == "up") return p.id;
  return kNoPath;
}

// Message i: a size from 1 byte to 64 KiB, pattern bytes of its own; binary when i is even,
// else text (letters: a text message must be UTF-8).
Bytes message(int i) {
  Bytes bytes(1 + (static_cast<std::size_t>(i) * 7919) % (64 * KiB));
  fill_pattern(static_cast<std::uint64_t>(i) + 100, 0, bytes);
  if (i % 2 != 0) {
    for (auto& b : bytes)
      b = static_cast<std::uint8_t>('a' + b % 26);
  }
  return bytes;
}

void migrate_to_other_path(Conn& client) {
  PathId target = kNoPath;
  ASSERT_TRUE(wait_until([&] { return (target = other_up_path(client)) != kNoPath; }, scaled(5s)));
  ASSERT_EQ(client.migrate(target), std::error_code{});
}

// The server's side of both tests: accepts the handshake, echoes every message (text or
// binary as it came) until the client's close. Blocking, on its own thread.
template <class Stream>
void echo_until_closed(websocket::stream<Stream>& ws, error_code& ec, int& echoed) {
  ws.accept(ec);
  if (ec) return;
  boost::beast::flat_buffer buffer;
  for (;;) {
    ws.read(buffer, ec);
    if (ec) break;
    ws.binary(ws.got_binary());
    ws.write(buffer.data(), ec);
    if (ec) break;
    buffer.consume(buffer.size());
    ++echoed;
  }
  if (ec == websocket::error::closed) ec = {};
}

// Joins the server thread at scope exit; on a failure (or an exception: a future's error) first
// aborts both ends so that it returns.
struct JoinServer {
  Conn& client;
  Conn& server;
  std::thread& thread;
  ~JoinServer() {
    if (::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) {
      client.abort();
      server.abort();
    }
    if (thread.joinable()) thread.join();
  }
};

TEST_F(IntegrationTest, BeastWebSocketEchoesAcrossMigrations) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  error_code server_error;
  int echoed = 0;
  std::thread server_thread([&] {
    websocket::stream<Conn> ws(server);  // the next layer by value: a handle of the same flow
    echo_until_closed(ws, server_error, echoed);
  });
  JoinServer join{client, server, server_thread};

  // The client drives Beast's asynchronous operations; each completes on the Conn's executor
  // (an engine thread) and hands its result over through a future.
  websocket::stream<Conn&> ws(client);
  ws.async_handshake("rendr.test", "/echo", boost::asio::use_future).get();
  boost::beast::flat_buffer buffer;
  for (int i = 0; i < kMessages; ++i) {
    if (i > 0 && i % kMigrateEvery == 0) {
      migrate_to_other_path(client);
      ASSERT_FALSE(HasFatalFailure()) << "before message " << i;
    }
    const Bytes sent = message(i);
    ws.binary(i % 2 == 0);
    ws.async_write(boost::asio::buffer(sent), boost::asio::use_future).get();
    buffer.consume(buffer.size());
    const std::size_t n = ws.async_read(buffer, boost::asio::use_future).get();
    ASSERT_EQ(n, sent.size()) << "message " << i;
    ASSERT_EQ(ws.got_binary(), i % 2 == 0) << "message " << i;
    const auto* data = static_cast<const std::uint8_t*>(buffer.data().data());
    ASSERT_TRUE(Bytes(data, data + n) == sent) << "message " << i << " came back changed";
  }
  ws.async_close(websocket::close_code::normal, boost::asio::use_future).get();
  server_thread.join();
  EXPECT_FALSE(server_error) << "server: " << server_error.message();
  EXPECT_EQ(echoed, kMessages);
  EXPECT_GE(client.migration_count(), static_cast<std::uint64_t>(kMessages / kMigrateEvery - 1));
}

TEST_F(IntegrationTest, BeastWebSocketOverTlsEchoesAcrossMigrations) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  const SelfSigned identity;
  ASSERT_TRUE(identity.key && identity.cert);
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  ASSERT_TRUE(identity.install(server_ctx.native_handle(), client_ctx.native_handle()));

  error_code server_error;
  int echoed = 0;
  std::thread server_thread([&] {
    websocket::stream<asio::ssl::stream<Conn&>> ws(server, server_ctx);
    ws.next_layer().handshake(asio::ssl::stream_base::server, server_error);
    if (!server_error) echo_until_closed(ws, server_error, echoed);
  });
  JoinServer join{client, server, server_thread};

  websocket::stream<asio::ssl::stream<Conn&>> ws(client, client_ctx);
  error_code ec;
  ws.next_layer().handshake(asio::ssl::stream_base::client, ec);
  ASSERT_FALSE(ec) << "TLS handshake: " << ec.message();
  ws.handshake("rendr.test", "/echo", ec);
  ASSERT_FALSE(ec) << "WebSocket handshake: " << ec.message();
  boost::beast::flat_buffer buffer;
  for (int i = 0; i < kMessages; ++i) {
    if (i > 0 && i % kMigrateEvery == 0) {
      migrate_to_other_path(client);
      ASSERT_FALSE(HasFatalFailure()) << "before message " << i;
    }
    const Bytes sent = message(i);
    ws.binary(true);
    ws.write(boost::asio::buffer(sent), ec);
    ASSERT_FALSE(ec) << "write " << i << ": " << ec.message();
    buffer.consume(buffer.size());
    const std::size_t n = ws.read(buffer, ec);
    ASSERT_FALSE(ec) << "read " << i << ": " << ec.message();
    ASSERT_EQ(n, sent.size()) << "message " << i;
    const auto* data = static_cast<const std::uint8_t*>(buffer.data().data());
    ASSERT_TRUE(Bytes(data, data + n) == sent) << "message " << i << " came back changed";
  }
  ws.close(websocket::close_code::normal, ec);
  EXPECT_FALSE(ec) << "close: " << ec.message();
  server_thread.join();
  EXPECT_FALSE(server_error) << "server: " << server_error.message();
  EXPECT_EQ(echoed, kMessages);
  EXPECT_GE(client.migration_count(), static_cast<std::uint64_t>(kMessages / kMigrateEvery - 1));
}

}  // namespace
}  // namespace rendr::itest
