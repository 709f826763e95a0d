// Boost.Beast HTTP over rendr::Conn (RENDR_ASIO=boost only): the server reads a request and
// writes its response with beast::http::read/write on the accepted Conn; the client writes the
// request and reads the response piece by piece on the dialed Conn, migrating between two TCP
// paths while each large body is on its way. Both bodies are checked byte for byte.
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

namespace http = boost::beast::http;
using Body = http::vector_body<std::uint8_t>;

// Beast accepts a Conn as a stream of Boost.Asio's kind (boost::system::error_code).
static_assert(boost::beast::is_sync_stream<Conn>::value);
static_assert(boost::beast::is_async_stream<Conn>::value);
static_assert(std::is_same_v<error_code, boost::system::error_code>);

PathId other_up_path(const Conn& client) {
  for (const auto& p : client.stats().paths)
    if (p.id != client.active_path() && p.state == "up") return p.id;
  return kNoPath;
}

Bytes pattern(std::uint64_t seed, std::size_t size) {
  Bytes bytes(size);
  fill_pattern(seed, 0, bytes);
  return bytes;
}

// Migrates `client` to its other path once `done` has passed the next of `marks` (ascending).
class MigrateAt {
 public:
  MigrateAt(Conn& client, std::vector<std::uint64_t> marks)
      : client_(client), marks_(std::move(marks)) {}
  void progress(std::uint64_t done) {
    while (next_ < marks_.size() && done >= marks_[next_]) {
      PathId target = kNoPath;
      ASSERT_TRUE(
          wait_until([&] { return (target = other_up_path(client_)) != kNoPath; }, scaled(5s)));
      ASSERT_EQ(client_.migrate(target), std::error_code{}) << "at " << done;
      ++next_;
    }
  }
  std::size_t migrated() const { return next_; }

 private:
  Conn& client_;
  std::vector<std::uint64_t> marks_;
  std::size_t next_ = 0;
};

TEST_F(IntegrationTest, BeastHttpExchangeCrossesMigrationsMidBody) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  constexpr std::size_t kRequestBody = 6 * MiB;
  constexpr std::size_t kResponseBody = 8 * MiB;

  // The server: one request in, one response out, with Beast's whole-message calls.
  error_code server_error;
  std::uint64_t request_seed_seen = 0;
  bool request_intact = false;
  std::thread server_thread([&] {
    boost::beast::flat_buffer buffer;
    http::request_parser<Body> parser;
    parser.body_limit(kRequestBody);  // Beast's default for requests is 1 MiB
    http::read(server, buffer, parser, server_error);
    if (server_error) return;
    const http::request<Body> request = parser.release();
    const auto seed = request["X-Seed"];
    request_seed_seen = std::stoull(std::string(seed.data(), seed.size()));
    request_intact = request.body() == pattern(request_seed_seen, kRequestBody);
    http::response<Body> response{http::status::ok, request.version()};
    response.set(http::field::content_type, "application/octet-stream");
    response.body() = pattern(request_seed_seen + 1, kResponseBody);
    response.prepare_payload();
    http::write(server, response, server_error);
  });
  struct Join {
    std::function<void()> f;
    ~Join() { f(); }
  } join{[&] {
    client.abort();
    server.abort();
    server_thread.join();
  }};

  // The client writes its request in pieces, migrating twice while the body goes out...
  http::request<Body> request{http::verb::post, "/upload", 11};
  request.set(http::field::host, "rendr.test");
  request.set("X-Seed", "7");
  request.body() = pattern(7, kRequestBody);
  request.prepare_payload();
  MigrateAt migrate_out(client, {kRequestBody / 4, kRequestBody / 2});
  http::request_serializer<Body> serializer{request};
  std::uint64_t written = 0;
  error_code ec;
  while (!serializer.is_done()) {
    written += http::write_some(client, serializer, ec);
    ASSERT_FALSE(ec) << "write: " << ec.message();
    migrate_out.progress(written);
  }
  EXPECT_EQ(migrate_out.migrated(), 2u);

  // ...and reads the response in pieces, migrating twice while that body comes in.
  boost::beast::flat_buffer buffer;
  http::response_parser<Body> parser;
  parser.body_limit(kResponseBody);
  MigrateAt migrate_in(client, {kResponseBody / 4, kResponseBody / 2});
  std::uint64_t read = 0;
  while (!parser.is_done()) {
    read += http::read_some(client, buffer, parser, ec);
    ASSERT_FALSE(ec) << "read: " << ec.message();
    migrate_in.progress(read);
  }
  EXPECT_EQ(migrate_in.migrated(), 2u);

  server_thread.join();
  join.f = [] {};
  ASSERT_FALSE(server_error) << "server: " << server_error.message();
  EXPECT_EQ(request_seed_seen, 7u);
  EXPECT_TRUE(request_intact) << "the request body arrived changed";
  const http::response<Body>& response = parser.get();
  EXPECT_EQ(response.result(), http::status::ok);
  ASSERT_EQ(response.body().size(), kResponseBody);
  EXPECT_TRUE(response.body() == pattern(8, kResponseBody)) << "the response body arrived changed";
  EXPECT_GE(client.migration_count(), 4u) << describe(client.stats());

  // The connection ends as a socket's would: the peer's close reads as EOF (Beast's
  // http::error::end_of_stream on a message boundary).
  server.close();
  http::response<Body> none;
  http::read(client, buffer, none, ec);
  EXPECT_EQ(ec, http::error::end_of_stream) << ec.message();
  client.close();
}

}  // namespace
}  // namespace rendr::itest
