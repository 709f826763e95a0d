#include "packet_service.hpp"

#include <array>
#include <memory>
#include <utility>

#include <asio/error.hpp>

#include "console.hpp"

namespace rendr::cli {
namespace {

class PacketServer : public std::enable_shared_from_this<PacketServer> {
 public:
  PacketServer(rendr::PacketConn conn, FlowService service, std::string name,
               PacketFlowEnded on_end)
      : conn_(std::move(conn)),
        service_(service),
        name_(std::move(name)),
        on_end_(std::move(on_end)) {}

  void receive() {
    conn_.async_receive(asio::buffer(buffer_),
                        [self = shared_from_this()](std::error_code ec, std::size_t n) {
                          self->on_receive(ec, n);
                        });
  }

 private:
  void on_receive(std::error_code ec, std::size_t n) {
    if (ec) return finish(ec);
    ++messages_;
    if (service_ == FlowService::discard) return receive();
    conn_.async_send(asio::buffer(buffer_.data(), n),
                     [self = shared_from_this()](std::error_code ec, std::size_t) {
                       if (ec) return self->finish(ec);
                       self->receive();
                     });
  }

  void finish(std::error_code ec) {
    const bool clean = ec == asio::error::eof;
    if (clean) conn_.close();
    if (!name_.empty())
      log_line(name_ + ": " + (service_ == FlowService::echo ? "echoed " : "discarded ") +
               std::to_string(messages_) + " messages, " + std::to_string(conn_.migration_count()) +
               " migrations" + (clean ? ", closed" : ", error: " + ec.message()));
    if (on_end_) on_end_(conn_, messages_, clean ? std::error_code{} : ec);
  }

  rendr::PacketConn conn_;
  const FlowService service_;
  const std::string name_;
  const PacketFlowEnded on_end_;
  // A buffer of the largest message always takes the next one (packet_conn.hpp).
  std::array<std::byte, rendr::kMaxMessageSize> buffer_{};
  std::uint64_t messages_ = 0;
};

}  // namespace

void serve_packets_async(rendr::PacketConn conn, FlowService service, std::string name,
                         PacketFlowEnded on_end) {
  std::make_shared<PacketServer>(std::move(conn), service, std::move(name), std::move(on_end))
      ->receive();
}

}  // namespace rendr::cli
