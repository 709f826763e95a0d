#include "metrics_server.hpp"

#include <chrono>
#include <utility>

#include <asio/dispatch.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

namespace rendr::cli {

constexpr std::size_t kMaxRequestBytes = 8 * 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(5);
constexpr auto kSampleInterval = std::chrono::seconds(1);

struct MetricsServer::State : std::enable_shared_from_this<MetricsServer::State> {
  State(asio::io_context& io, std::function<std::string()> render, std::function<void()> sample)
      : strand(asio::make_strand(io)),
        acceptor(strand),
        sampler(strand),
        render(std::move(render)),
        sample(std::move(sample)) {}

  void accept() {
    acceptor.async_accept(
        [self = shared_from_this()](std::error_code ec, asio::ip::tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
          if (!ec) std::make_shared<Exchange>(std::move(socket), self)->start();
          self->accept();
        });
  }

  void tick() {
    sampler.expires_after(kSampleInterval);
    sampler.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec) return;
      self->sample();
      self->tick();
    });
  }

  // One request and its answer on one connection.
  struct Exchange : std::enable_shared_from_this<Exchange> {
    Exchange(asio::ip::tcp::socket s, std::shared_ptr<State> st)
        : socket(std::move(s)), state(std::move(st)), deadline(socket.get_executor()) {}

    void start() {
      deadline.expires_after(kRequestTimeout);
      deadline.async_wait([self = shared_from_this()](std::error_code ec) {
        if (ec) return;
        std::error_code ignored;
        self->socket.close(ignored);
      });
      asio::async_read_until(socket, asio::dynamic_buffer(request, kMaxRequestBytes), "\r\n\r\n",
                             [self = shared_from_this()](std::error_code ec, std::size_t) {
                               if (!ec) return self->answer();
                               self->deadline.cancel();  // too long, or gone
                             });
    }

    void answer() {
      // "METHOD TARGET HTTP/1.1"
      const std::size_t method_end = request.find(' ');
      const std::size_t target_end = request.find(' ', method_end + 1);
      const std::string method = request.substr(0, method_end);
      const std::string target = method_end == std::string::npos || target_end == std::string::npos
                                     ? std::string()
                                     : request.substr(method_end + 1, target_end - method_end - 1);
      if (method != "GET" && method != "HEAD") {
        reply("405 Method Not Allowed", "text/plain", "GET /metrics\n");
      } else if (target != "/metrics" && target.rfind("/metrics?", 0) != 0) {
        reply("404 Not Found", "text/plain", "rendr serves /metrics\n");
      } else {
        reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", state->render(),
              method == "HEAD");
      }
    }

    void reply(const char* status, const char* type, std::string body, bool head = false) {
      response = std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
                 "\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + (head ? std::string() : body);
      asio::async_write(socket, asio::buffer(response),
                        [self = shared_from_this()](std::error_code, std::size_t) {
                          std::error_code ignored;
                          self->socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
                          self->socket.close(ignored);
                          self->deadline.cancel();
                        });
    }

    asio::ip::tcp::socket socket;
    std::shared_ptr<State> state;
    asio::steady_timer deadline;
    std::string request;
    std::string response;
  };

  asio::strand<asio::io_context::executor_type> strand;
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer sampler;
  std::function<std::string()> render;
  std::function<void()> sample;
};

MetricsServer::MetricsServer(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                             std::function<std::string()> render, std::function<void()> sample,
                             std::error_code& ec)
    : state_(std::make_shared<State>(io, std::move(render), std::move(sample))) {
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return;
  asio::dispatch(state_->strand, [state = state_] {
    state->accept();
    state->tick();
  });
}

MetricsServer::~MetricsServer() {
  asio::dispatch(state_->strand, [state = state_] {
    std::error_code ignored;
    state->acceptor.close(ignored);
    state->sampler.cancel();
  });
}

asio::ip::tcp::endpoint MetricsServer::local_endpoint() const {
  std::error_code ignored;
  return state_->acceptor.local_endpoint(ignored);
}

}  // namespace rendr::cli
