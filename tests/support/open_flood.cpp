#include "support/open_flood.hpp"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include "core/crypto.hpp"
#include "wire/frame.hpp"

namespace rendr::testing {

std::vector<std::uint8_t> fresh_open_bytes() {
  wire::Open open;
  core::crypto::random_bytes(open.flow_id);
  core::crypto::random_bytes(open.nonce);
  open.path_id = 1;
  open.window = 8 * 1024 * 1024;
  open.key_share = core::crypto::KeyPair().public_key();
  const wire::Frame frame{0, open};
  std::vector<std::uint8_t> bytes(wire::encoded_size(frame));
  wire::encode(frame, bytes);
  return bytes;
}

OpenFlood::OpenFlood(const Options& options) : options_(options) {}

OpenFlood::~OpenFlood() {
  stop();
}

void OpenFlood::start() {
  stop_ = false;
  for (int i = 0; i < options_.threads; ++i)
    threads_.emplace_back([this, i] { run(i); });
}

void OpenFlood::stop() {
  stop_ = true;
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

OpenFlood::Counts OpenFlood::counts() const {
  return {opens_.load(), held_.load(), connect_errors_.load()};
}

void OpenFlood::run(int index) {
  asio::io_context io;
  std::deque<asio::ip::tcp::socket> held;
  const asio::ip::tcp::endpoint target(asio::ip::address_v4::loopback(), options_.port);
  const int sources = options_.last_source - options_.first_source + 1;
  for (std::uint64_t n = static_cast<std::uint64_t>(index); !stop_; n += options_.threads) {
    const auto source =
        asio::ip::address_v4((127u << 24) | static_cast<unsigned>(options_.first_source +
                                                                  static_cast<int>(n % sources)));
    asio::ip::tcp::socket socket(io);
    std::error_code ec;
    socket.open(asio::ip::tcp::v4(), ec);
    if (!ec) socket.bind({source, 0}, ec);
    if (!ec) socket.connect(target, ec);
    if (ec) {
      ++connect_errors_;
      continue;
    }
    const auto open = fresh_open_bytes();
    asio::write(socket, asio::buffer(open), ec);
    if (ec) continue;
    ++opens_;
    if (options_.hold_every != 0 && n % options_.hold_every == 0) {
      ++held_;
      held.push_back(std::move(socket));
      if (held.size() > options_.max_held) held.pop_front();
    } else if (n % 2 == 0) {
      socket.set_option(asio::socket_base::linger(true, 0), ec);  // reset
    }
    // Anything else closes here: abandoned at once.
  }
}

}  // namespace rendr::testing
