#include "flow_service.hpp"

#include <memory>
#include <string>
#include <vector>

#include <asio/write.hpp>

#include "console.hpp"

namespace rendr::cli {
namespace {

// An idle flow holds a small read buffer; one that fills it gets a larger one while busy.
constexpr std::size_t kIdleBuffer = 2 * 1024;
constexpr std::size_t kBusyBuffer = 64 * 1024;

class Server : public std::enable_shared_from_this<Server> {
 public:
  Server(rendr::Conn conn, FlowService service)
      : conn_(std::move(conn)), service_(service), buffer_(kIdleBuffer) {}

  void read() {
    conn_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

 private:
  void on_read(std::error_code ec, std::size_t n) {
    if (ec) return finish(ec);
    bytes_ += n;
    if (service_ == FlowService::discard) return next(n);
    asio::async_write(conn_, asio::buffer(buffer_.data(), n),
                      [self = shared_from_this(), n](std::error_code ec, std::size_t) {
                        if (ec) return self->finish(ec);
                        self->next(n);
                      });
  }

  void next(std::size_t last_read) {
    const std::size_t size = last_read == buffer_.size() ? kBusyBuffer : kIdleBuffer;
    if (size != buffer_.size()) std::vector<std::byte>(size).swap(buffer_);
    read();
  }

  void finish(std::error_code ec) {
    const bool clean = ec == asio::error::eof;
    if (clean) conn_.close();  // the session finishes the close when the last handle goes
    log_line("flow " + rendr::to_hex(conn_.flow_id()).substr(0, 8) + ": " +
             (service_ == FlowService::echo ? "echoed " : "discarded ") + std::to_string(bytes_) +
             " bytes, " + std::to_string(conn_.migration_count()) + " migrations" +
             (clean ? ", closed" : ", error: " + ec.message()));
  }

  rendr::Conn conn_;
  const FlowService service_;
  std::vector<std::byte> buffer_;
  std::uint64_t bytes_ = 0;
};

}  // namespace

void serve_async(rendr::Conn conn, FlowService service) {
  std::make_shared<Server>(std::move(conn), service)->read();
}

}  // namespace rendr::cli
