// `rendr forward`: accepts TCP connections on a local address and carries each one over its own
// rendr flow to a `rendr listen --forward TARGET`, which connects it to TARGET (like ssh -L).
#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>

#include "commands.hpp"
#include "console.hpp"
#include "dialer_options.hpp"
#include "psk_file.hpp"
#include "rendr/rendr.hpp"
#include "tcp_endpoint.hpp"
#include "tcp_splice.hpp"
#include "tls_options.hpp"

namespace rendr::cli {
namespace {

class Forwarder {
 public:
  Forwarder(asio::io_context& io, const asio::ip::tcp::endpoint& local, rendr::Dialer dialer)
      : io_(io), acceptor_(io, local), dialer_(std::move(dialer)) {}

  asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) {
        // Out of descriptors and the like: this connection is lost, the next may work.
        log_line("rendr forward: accept failed: " + ec.message());
      } else {
        carry(std::move(socket));
      }
      accept();
    });
  }

 private:
  void carry(asio::ip::tcp::socket socket) {
    std::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    const std::string from = ec ? std::string("?") : endpoint_string(peer);
    const std::uint64_t number = ++connections_;
    // async_dial wants a copyable handler: the socket waits in a shared_ptr.
    auto waiting = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
    dialer_.async_dial([this, waiting, from, number](std::error_code ec, rendr::Conn conn) {
      const std::string name = "connection " + std::to_string(number) + " from " + from;
      if (ec) {
        log_line(name + ": cannot open a flow: " + ec.message());
        std::error_code ignored;
        waiting->set_option(asio::socket_base::linger(true, 0), ignored);  // reset, like nc
        waiting->close(ignored);
        return;
      }
      log_line(name + ": flow " + rendr::to_hex(conn.flow_id()).substr(0, 8) + " open, mode " +
               std::string(rendr::to_string(conn.mode())));
      splice_async(io_, std::move(*waiting), std::move(conn), name, {});
    });
  }

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  const rendr::Dialer dialer_;
  std::uint64_t connections_ = 0;
};

int run(const Args& args) {
  const auto listen = args.value("listen");
  if (!listen) throw UsageError("rendr forward needs --listen HOST:PORT");
  rendr::Dialer dialer = dialer_from_args(args, "forward");

  // rendr runs on this thread's io_context, beside the acceptor and the sockets.
  asio::io_context io;
  rendr::Engine engine(io);
  dialer.engine = &engine;
  std::error_code ec;
  const asio::ip::tcp::endpoint local = resolve_tcp_endpoint(io, *listen, ec);
  if (ec) {
    log_line("rendr forward: bad --listen '" + *listen + "': " + ec.message());
    return 1;
  }
  std::unique_ptr<Forwarder> forwarder;
  try {
    forwarder = std::make_unique<Forwarder>(io, local, dialer);
  } catch (const std::system_error& e) {
    log_line("rendr forward: cannot listen on " + *listen + ": " + e.code().message());
    return 1;
  }
  log_line("listening on " + endpoint_string(forwarder->local_endpoint()) + ", forwarding over " +
           std::to_string(dialer.paths.size()) + " path(s), mode " +
           std::string(rendr::to_string(dialer.mode)));
  forwarder->accept();

  // Runs until interrupted; connections still open then are cut.
  asio::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&io](std::error_code, int) { io.stop(); });
  io.run();
  return 0;
}

std::vector<OptionSpec> forward_options() {
  std::vector<OptionSpec> options{
      {"listen", OptionSpec::Kind::value, "HOST:PORT",
       "local TCP address to accept connections on (port 0: any)"},
      {"path", OptionSpec::Kind::repeated, "tcp|quic://HOST:PORT",
       "a network path to the `rendr listen --forward` end"},
      mode_option(),
      {"connect-timeout-ms", OptionSpec::Kind::value, "MS",
       "give up on a connection if no path completes the opening handshake in time (default "
       "10000)"},
      psk_option(),
      budget_option()};
  for (OptionSpec& o : tls_client_options())
    options.push_back(std::move(o));
  return options;
}

}  // namespace

Command forward_command() {
  return {
      {"forward", "carry local TCP connections over rendr flows (like ssh -L)",
       "--listen HOST:PORT --path tcp://HOST:PORT [--path ...] [--mode prime|race|bond] "
       "[--psk-file FILE] [--ca FILE | --insecure] [--server-name NAME]",
       "Accepts TCP connections on --listen and carries each one over a rendr flow of its own,\n"
       "opened over every given path, to `rendr listen --forward TARGET`, which connects it to\n"
       "TARGET. Half-closes pass through; an error on either side resets the other, like nc.\n"
       "A connection whose flow cannot be opened is reset. Runs until interrupted (exit 0);\n"
       "exits 1 if it cannot listen, 2 on a bad command line. Status goes to stderr.",
       forward_options()},
      run};
}

}  // namespace rendr::cli
