// The edges of rendr::Conn's contract: an empty Conn, is_open(), whole buffer sequences, a Conn
// outliving its Engine, "forever" durations, and errc's portable error conditions.
#include <array>

#include <asio/bind_executor.hpp>
#include <asio/read.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

template <class Future>
error_code error_of(Future& f) {
  try {
    f.get();
  } catch (const system_error& e) {
    return e.code();
  }
  return {};
}

TEST(ConnApiTest, EmptyConnFailsWithNotConnectedOrANeutralValue) {
  Conn conn;
  const error_code not_connected = errc::not_connected;
  EXPECT_FALSE(conn.is_open());
  EXPECT_EQ(conn.flow_id(), FlowId{});
  EXPECT_EQ(conn.active_path(), kNoPath);
  EXPECT_EQ(conn.state(), "none");
  EXPECT_EQ(conn.mode(), Mode::prime);
  EXPECT_EQ(conn.migration_count(), 0u);
  EXPECT_EQ(conn.stats().paths.size(), 0u);
  EXPECT_EQ(conn.recv_queue_hwm(), 0u);
  EXPECT_EQ(conn.migrate(1), not_connected);
  EXPECT_EQ(conn.remove_path(1), not_connected);
  EXPECT_EQ(conn.set_mode(Mode::race), not_connected);
  error_code ec;
  EXPECT_EQ(conn.add_path(PathSpec::parse("127.0.0.1:1"), ec), kNoPath);
  EXPECT_EQ(ec, not_connected);
  EXPECT_THROW(conn.add_path(PathSpec::parse("127.0.0.1:1")), std::system_error);
  EXPECT_FALSE(conn.get_executor());
  conn.on_migrate([](PathId, PathId, MigrateCause) {});
  conn.cancel();
  conn.close();
  conn.abort();

  std::array<std::uint8_t, 4> buffer{};
  EXPECT_EQ(conn.read_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, not_connected);
  EXPECT_EQ(conn.write_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, not_connected);
  auto read = conn.async_read_some(asio::buffer(buffer), asio::use_future);
  auto write = conn.async_write_some(asio::buffer(buffer), asio::use_future);
  ASSERT_EQ(read.wait_for(5s), std::future_status::ready);
  ASSERT_EQ(write.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(error_of(read), not_connected);
  EXPECT_EQ(error_of(write), not_connected);
}

TEST(ConnApiTest, ErrorsCompareEqualToTheirPortableConditions) {
  EXPECT_TRUE(make_error_code(errc::migration_budget_exceeded) == std::errc::timed_out);
  EXPECT_TRUE(make_error_code(errc::peer_aborted) == std::errc::connection_aborted);
  EXPECT_TRUE(make_error_code(errc::aborted) == std::errc::operation_canceled);
  EXPECT_TRUE(make_error_code(errc::protocol_error) == std::errc::protocol_error);
  EXPECT_TRUE(make_error_code(errc::not_connected) == std::errc::not_connected);
  EXPECT_TRUE(make_error_code(errc::bad_path_spec) == std::errc::invalid_argument);
  // No portable meaning: only equal to itself.
  EXPECT_FALSE(make_error_code(errc::last_path) == std::errc::invalid_argument);
  EXPECT_TRUE(make_error_code(errc::last_path) == make_error_code(errc::last_path));
}

TEST_F(IntegrationTest, IsOpenIsFalseAfterAbortOnBothEnds) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));
  EXPECT_TRUE(client.is_open());
  EXPECT_TRUE(server.is_open());
  client.abort();
  EXPECT_FALSE(client.is_open());
  EXPECT_TRUE(wait_until([&] { return !server.is_open(); }, scaled(5s)));  // the peer aborted
}

TEST_F(IntegrationTest, IsOpenStaysTrueAfterCloseUntilBothSidesClosed) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));
  client.close();
  EXPECT_TRUE(client.is_open());  // the reading direction still works
  asio::write(server, asio::buffer(std::string("late")));
  std::array<char, 4> got{};
  asio::read(client, asio::buffer(got));
  EXPECT_EQ(std::string(got.data(), got.size()), "late");
  server.close();
  EXPECT_TRUE(wait_until([&] { return !client.is_open() && !server.is_open(); }, scaled(5s)));
}

TEST_F(IntegrationTest, ReadAndWriteSomeUseTheWholeBufferSequence) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));
  const std::string a = "abc", b = "defg";
  // Blocking: one write_some of two buffers sends both; one read_some fills both.
  const std::array<asio::const_buffer, 3> out{asio::buffer(a), asio::const_buffer(),
                                              asio::buffer(b)};
  EXPECT_EQ(client.write_some(out), 7u);
  ASSERT_TRUE(wait_until([&] { return server.stats().recv_buffered >= 7; }, scaled(5s)));
  std::array<char, 3> first{};
  std::array<char, 4> second{};
  const std::array<asio::mutable_buffer, 2> in{asio::buffer(first), asio::buffer(second)};
  EXPECT_EQ(server.read_some(in), 7u);
  EXPECT_EQ(std::string(first.data(), 3) + std::string(second.data(), 4), "abcdefg");

  // Async: the same, the other way.
  auto written = server.async_write_some(out, asio::use_future);
  ASSERT_EQ(written.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_EQ(written.get(), 7u);
  ASSERT_TRUE(wait_until([&] { return client.stats().recv_buffered >= 7; }, scaled(5s)));
  first = {};
  second = {};
  auto read = client.async_read_some(in, asio::use_future);
  ASSERT_EQ(read.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_EQ(read.get(), 7u);
  EXPECT_EQ(std::string(first.data(), 3) + std::string(second.data(), 4), "abcdefg");
}

// "Forever" as milliseconds::max() clamps instead of overflowing (UBSan: signed overflow).
TEST_F(IntegrationTest, HugeBudgetAndDialTimeoutClamp) {
  ListenOptions forever;
  forever.migration_budget = std::chrono::milliseconds::max();
  listen(forever);
  Dialer d = dialer(loopback_paths({listener_.port()}));
  d.migration_budget = std::chrono::milliseconds::max();
  d.dial_timeout = std::chrono::milliseconds::max();
  d.options.redial_max = std::chrono::milliseconds::max();
  Conn client;
  Conn server;
  std::tie(client, server) = connect(d);
  ASSERT_TRUE(client.is_open() && server.is_open());
  asio::write(client, asio::buffer(std::string("ping")));
  std::array<char, 4> got{};
  asio::read(server, asio::buffer(got));
  EXPECT_EQ(std::string(got.data(), got.size()), "ping");
}

// The Conn outlives both engines: every operation fails with not_connected, a pending one
// included, and dropping the Conn afterwards is harmless (ASan: no use of the dead context).
TEST(ConnApiTest, ConnOutlivingItsEngineFailsEveryOperationSafely) {
  auto server_engine = std::make_unique<Engine>(1);
  auto client_engine = std::make_unique<Engine>(1);
  ListenOptions lo;
  lo.engine = server_engine.get();
  Listener listener = listen_tcp("127.0.0.1:0", lo);
  Dialer d;
  d.paths = loopback_paths({listener.port()});
  d.engine = client_engine.get();
  d.dial_timeout = scaled(5s);
  Conn client = d.dial();
  Conn server = listener.accept();
  listener.close();

  asio::io_context io;  // the pending read's handler runs here, not on the dying engine
  std::array<std::uint8_t, 16> buffer{};
  std::optional<error_code> pending_error;
  client.async_read_some(
      asio::buffer(buffer),
      asio::bind_executor(io, [&](error_code ec, std::size_t) { pending_error = ec; }));
  client_engine.reset();
  io.run_for(scaled(5s));
  ASSERT_TRUE(pending_error.has_value());
  const error_code not_connected = errc::not_connected;
  EXPECT_EQ(*pending_error, not_connected);

  EXPECT_FALSE(client.is_open());
  error_code ec;
  EXPECT_EQ(client.write_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, not_connected);
  EXPECT_EQ(client.read_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, not_connected);
  // Without an executor of its own, the handler runs on the Conn's: no longer the engine's.
  auto read = client.async_read_some(asio::buffer(buffer), asio::use_future);
  ASSERT_EQ(read.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_EQ(error_of(read), not_connected);
  EXPECT_EQ(client.migrate(1), not_connected);
  EXPECT_EQ(client.set_mode(Mode::race), not_connected);
  client.add_path(PathSpec::parse("127.0.0.1:1"), ec);
  EXPECT_EQ(ec, not_connected);
  (void)client.stats();
  client.cancel();
  client.close();
  client.abort();

  server_engine.reset();
  EXPECT_FALSE(server.is_open());
  server.abort();
  client = Conn();
  server = Conn();
}

}  // namespace
}  // namespace rendr::itest
