// Clean close: the peer reads EOF only after every byte, each direction closes on its own
// (half-close), and an abort is an error, never an EOF.
#include <array>

#include "harness.hpp"

namespace rendr::itest {
namespace {

const error_code kEof = asio::error::eof;

TEST_F(IntegrationTest, HalfCloseDeliversEveryByteBeforeEofInBothDirections) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  // The client sends and closes its direction; the server reads everything, then EOF.
  StreamWriter upload(client, {.seed = 1, .bytes = 3 * MiB + 17});
  StreamReader upload_reader(server, {.seed = 1});
  finish_transfer(upload, upload_reader, scaled(10s));

  // The server's direction is still open: no EOF reaches the client while the server is
  // silent, and everything the server writes afterwards arrives before its EOF.
  StreamReader download_reader(client, {.seed = 2});
  EXPECT_FALSE(download_reader.wait(300ms)) << "EOF before the server closed";
  StreamWriter download(server, {.seed = 2, .bytes = 5 * MiB + 3});
  finish_transfer(download, download_reader, scaled(10s));

  // EOF is sticky on both ends.
  std::array<std::uint8_t, 16> buffer{};
  error_code ec;
  EXPECT_EQ(client.read_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, kEof);
  EXPECT_EQ(server.read_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, kEof);
}

TEST_F(IntegrationTest, CloseRightAfterAMigrationStillDeliversEveryByte) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  StreamReader upload_reader(server, {.seed = 1});
  // The last write is followed at once by a migration and the close, while bytes are in flight.
  error_code migrate_error;
  StreamWriter upload(client,
                      {.seed = 1, .bytes = 2 * MiB, .after_write = [&](std::uint64_t written) {
                         if (written < 2 * MiB) return;
                         for (const auto& p : client.stats().paths) {
                           if (p.id != client.active_path()) {
                             migrate_error = client.migrate(p.id);
                           }
                         }
                       }});
  finish_transfer(upload, upload_reader, scaled(10s));
  EXPECT_EQ(migrate_error, error_code{});
  EXPECT_GE(client.migration_count(), 1u);
}

TEST_F(IntegrationTest, AbortIsAnErrorForThePeerNeverEof) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(1, client, server));

  StreamReader server_reader(server, {.seed = 1});
  StreamWriter upload(client, {.seed = 1, .bytes = 1 * MiB, .close_when_done = false});
  ASSERT_TRUE(upload.wait(scaled(10s)));
  ASSERT_TRUE(wait_until([&] { return server_reader.progress() == 1 * MiB; }, scaled(10s)));
  client.abort();

  ASSERT_TRUE(server_reader.wait(scaled(5s))) << "the abort never reached the server";
  EXPECT_FALSE(server_reader.outcome().eof);
  EXPECT_EQ(server_reader.outcome().error, make_error_code(errc::peer_aborted));
  std::array<std::uint8_t, 16> buffer{};
  error_code ec;
  client.read_some(asio::buffer(buffer), ec);
  EXPECT_EQ(ec, make_error_code(errc::aborted));
}

}  // namespace
}  // namespace rendr::itest
