#include "tcp_splice.hpp"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include "console.hpp"
#include "migration_logger.hpp"

namespace rendr::cli {
namespace {

constexpr std::size_t kChunk = 64 * 1024;

class Splice : public std::enable_shared_from_this<Splice> {
 public:
  Splice(asio::io_context& io, asio::ip::tcp::socket socket, rendr::Conn conn, std::string name,
         SpliceEnded on_end)
      : socket_(std::move(socket)),
        conn_(std::move(conn)),
        // Both directions' handlers run here, one at a time, whatever runs the context.
        // (A strand of the io_context's own executor: rendr's completions need one that
        // tracks outstanding work the classic way, which strand<any_io_executor> does not.)
        strand_(asio::make_strand(io)),
        name_(std::move(name)),
        on_end_(std::move(on_end)),
        up_(kChunk),
        down_(kChunk) {
    migrations_.emplace(conn_, name_);
  }

  void start() {
    asio::dispatch(strand_, [self = shared_from_this()] {
      self->socket_to_flow();
      self->flow_to_socket();
    });
  }

 private:
  void socket_to_flow() {
    socket_.async_read_some(
        asio::buffer(up_), asio::bind_executor(strand_, [self = shared_from_this()](
                                                            std::error_code ec, std::size_t n) {
          if (ec == asio::error::eof) {
            self->conn_.close();  // the half-close travels on
            return self->direction_done();
          }
          if (ec) return self->fail("tcp read", ec);
          asio::async_write(
              self->conn_, asio::buffer(self->up_.data(), n),
              asio::bind_executor(self->strand_, [self](std::error_code ec, std::size_t n) {
                if (ec) return self->fail("flow write", ec);
                self->result_.to_flow += n;
                self->socket_to_flow();
              }));
        }));
  }

  void flow_to_socket() {
    conn_.async_read_some(
        asio::buffer(down_), asio::bind_executor(strand_, [self = shared_from_this()](
                                                              std::error_code ec, std::size_t n) {
          if (ec == asio::error::eof) {
            std::error_code ignored;
            self->socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
            return self->direction_done();
          }
          if (ec) return self->fail("flow read", ec);
          asio::async_write(
              self->socket_, asio::buffer(self->down_.data(), n),
              asio::bind_executor(self->strand_, [self](std::error_code ec, std::size_t n) {
                if (ec) return self->fail("tcp write", ec);
                self->result_.from_flow += n;
                self->flow_to_socket();
              }));
        }));
  }

  void direction_done() {
    if (--open_directions_ > 0) return;
    std::error_code ignored;
    socket_.close(ignored);
    finish();
  }

  // The other direction's pending operation then fails too; ended_ makes that a no-op.
  void fail(const char* what, std::error_code ec) {
    if (ended_) return;
    result_.error = std::string(what) + ": " + ec.message();
    conn_.abort();
    std::error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);  // close sends a reset
    socket_.close(ignored);
    finish();
  }

  void finish() {
    ended_ = true;
    migrations_.reset();
    log_line(name_ + ": " + std::to_string(result_.to_flow) + " bytes to the flow, " +
             std::to_string(result_.from_flow) + " bytes from it, " +
             std::to_string(conn_.migration_count()) + " migrations" +
             (result_.error.empty() ? ", closed" : ", error: " + result_.error));
    if (on_end_) on_end_(conn_, result_);
  }

  asio::ip::tcp::socket socket_;
  rendr::Conn conn_;
  asio::strand<asio::io_context::executor_type> strand_;
  const std::string name_;
  const SpliceEnded on_end_;
  std::optional<MigrationLogger> migrations_;  // stops before conn_ goes
  std::vector<std::byte> up_;
  std::vector<std::byte> down_;
  int open_directions_ = 2;
  bool ended_ = false;
  SpliceResult result_;
};

}  // namespace

void splice_async(asio::io_context& io, asio::ip::tcp::socket socket, rendr::Conn conn,
                  std::string name, SpliceEnded on_end) {
  std::make_shared<Splice>(io, std::move(socket), std::move(conn), std::move(name),
                           std::move(on_end))
      ->start();
}

}  // namespace rendr::cli
