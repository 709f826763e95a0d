#pragma once
// A minimal HTTP/1.1 server for Prometheus: GET /metrics answers with the text exposition, one
// request per connection. Requests are bounded (8 KiB of header, 5 s to send it); anything else
// gets 404 or 405. Runs on the given io_context; also samples the flows' RTTs once a second.
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace rendr::cli {

class MetricsServer {
 public:
  // `render` builds the page; `sample` runs once a second. Fails through `ec` (e.g. port in use).
  MetricsServer(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                std::function<std::string()> render, std::function<void()> sample,
                std::error_code& ec);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  asio::ip::tcp::endpoint local_endpoint() const;

  struct State;  // shared with the pending handlers

 private:
  std::shared_ptr<State> state_;
};

}  // namespace rendr::cli
