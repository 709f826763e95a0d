#include "flow_service.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/write.hpp>

#include "console.hpp"
#include "migration_logger.hpp"

namespace rendr::cli {
namespace {

// An idle flow holds a small read buffer; one that fills it gets a larger one while busy.
constexpr std::size_t kIdleBuffer = 2 * 1024;
constexpr std::size_t kBusyBuffer = 64 * 1024;

class Server : public std::enable_shared_from_this<Server> {
 public:
  Server(rendr::Conn conn, FlowService service, std::string name, FlowEnded on_end)
      : conn_(std::move(conn)),
        service_(service),
        name_(std::move(name)),
        on_end_(std::move(on_end)),
        buffer_(kIdleBuffer) {
    migrations_.emplace(conn_, name_);
  }

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
    migrations_.reset();
    log_line(name_ + ": " + (service_ == FlowService::echo ? "echoed " : "discarded ") +
             std::to_string(bytes_) + " bytes, " + std::to_string(conn_.migration_count()) +
             " migrations" + (clean ? ", closed" : ", error: " + ec.message()));
    if (on_end_) on_end_(conn_, bytes_, clean ? std::error_code{} : ec);
  }

  rendr::Conn conn_;
  const FlowService service_;
  const std::string name_;
  const FlowEnded on_end_;
  std::optional<MigrationLogger> migrations_;  // stops before conn_ goes
  std::vector<std::byte> buffer_;
  std::uint64_t bytes_ = 0;
};

}  // namespace

void serve_async(rendr::Conn conn, FlowService service, std::string name, FlowEnded on_end) {
  std::make_shared<Server>(std::move(conn), service, std::move(name), std::move(on_end))->read();
}

}  // namespace rendr::cli
