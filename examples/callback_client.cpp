// A callback-style rendr client: async_dial, then async_write and async_read with completion
// handlers, as with an asio::ip::tcp::socket. The server here is a plain blocking loop on its
// own thread (rendr's default engine runs the I/O), to show the other style too.
//
// Handlers run on the io_context the application runs (their associated executor is `io`'s,
// via bind_executor), never inline inside the call that started the operation.
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "rendr/rendr.hpp"

// One request/response exchange, then a clean close; `done` holds the outcome.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, rendr::Dialer dialer) : io_(io), dialer_(std::move(dialer)) {}

  void start() {
    dialer_.async_dial(
        asio::bind_executor(io_, [self = shared_from_this()](std::error_code ec, rendr::Conn conn) {
          if (ec) return self->fail("dial", ec);
          self->conn_ = std::move(conn);
          self->send();
        }));
  }

  bool ok() const { return ok_; }

 private:
  void send() {
    request_ = "hello over rendr\n";
    asio::async_write(
        conn_, asio::buffer(request_),
        asio::bind_executor(io_, [self = shared_from_this()](std::error_code ec, std::size_t) {
          if (ec) return self->fail("write", ec);
          self->receive();
        }));
  }

  void receive() {
    reply_.resize(request_.size());
    asio::async_read(
        conn_, asio::buffer(reply_),
        asio::bind_executor(io_, [self = shared_from_this()](std::error_code ec, std::size_t) {
          if (ec) return self->fail("read", ec);
          std::printf("reply: %s", self->reply_.c_str());
          self->ok_ = self->reply_ == self->request_;
          self->conn_.close();  // the server sees EOF and ends too
        }));
  }

  void fail(const char* what, std::error_code ec) {
    std::fprintf(stderr, "%s failed: %s\n", what, ec.message().c_str());
  }

  asio::io_context& io_;
  rendr::Dialer dialer_;
  rendr::Conn conn_;
  std::string request_;
  std::string reply_;
  bool ok_ = false;
};

int main() {
  rendr::Listener listener = rendr::listen_tcp("127.0.0.1:0");

  // The server: blocking accept and echo on a thread of its own (not an engine thread, where
  // blocking calls fail with errc::blocking_call_on_engine_thread).
  std::thread server([&] {
    std::error_code ec;
    rendr::Conn conn = listener.accept(ec);
    char data[1024];
    for (;;) {
      const std::size_t n = conn.read_some(asio::buffer(data), ec);
      if (ec) break;  // asio::error::eof once the client has closed
      asio::write(conn, asio::buffer(data, n), ec);
    }
    conn.close();
  });

  asio::io_context io;
  rendr::Dialer dialer;
  dialer.paths.push_back(
      rendr::PathSpec::parse("tcp://127.0.0.1:" + std::to_string(listener.port())));
  auto client = std::make_shared<Client>(io, dialer);
  client->start();
  io.run();  // returns once the exchange is over: no handler is pending any more

  server.join();
  return client->ok() ? 0 : 1;
}
