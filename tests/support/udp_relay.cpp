#include "support/udp_relay.hpp"

#include <asio/post.hpp>

namespace rendr::testing {

struct UdpRelay::Upstream {
  explicit Upstream(asio::io_context& io) : socket(io) {}
  asio::ip::udp::socket socket;
  asio::ip::udp::endpoint client;
  asio::ip::udp::endpoint sender;
  std::array<std::uint8_t, 65536> buffer{};
};

UdpRelay::UdpRelay(std::uint16_t target_port)
    : target_(asio::ip::make_address("127.0.0.1"), target_port) {
  front_.open(asio::ip::udp::v4());
  front_.bind({asio::ip::make_address("127.0.0.1"), 0});
  front_.set_option(asio::socket_base::receive_buffer_size(8 << 20));
  port_ = front_.local_endpoint().port();
  receive_front();
  thread_ = std::thread([this] { io_.run(); });
}

UdpRelay::~UdpRelay() {
  asio::post(io_, [this] { io_.stop(); });
  thread_.join();
}

void UdpRelay::receive_front() {
  front_.async_receive_from(
      asio::buffer(buffer_), from_, [this](std::error_code ec, std::size_t n) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          auto& up = upstreams_[from_];
          if (!up) {
            up = std::make_shared<Upstream>(io_);
            up->client = from_;
            up->socket.open(asio::ip::udp::v4());
            up->socket.bind({asio::ip::make_address("127.0.0.1"), 0});
            up->socket.set_option(asio::socket_base::receive_buffer_size(8 << 20));
            receive_back(up);
          }
          if (blackhole_) {
            ++dropped_;
          } else {
            std::error_code ignored;
            up->socket.send_to(asio::buffer(buffer_.data(), n), target_, 0, ignored);
          }
        }
        receive_front();
      });
}

void UdpRelay::receive_back(const std::shared_ptr<Upstream>& up) {
  up->socket.async_receive_from(
      asio::buffer(up->buffer), up->sender, [this, up](std::error_code ec, std::size_t n) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          if (blackhole_) {
            ++dropped_;
          } else {
            std::error_code ignored;
            front_.send_to(asio::buffer(up->buffer.data(), n), up->client, 0, ignored);
          }
        }
        receive_back(up);
      });
}

}  // namespace rendr::testing
