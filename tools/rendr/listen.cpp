// `rendr listen`: accepts flows on one or more TCP addresses (one listener, one flow table) and
// serves each one: echo it, discard it, or (default) carry it over stdin/stdout for one flow.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "flow_metrics.hpp"
#include "flow_service.hpp"
#include "json.hpp"
#include "metrics_server.hpp"
#include "migration_logger.hpp"
#include "packet_service.hpp"
#include "packet_stdio.hpp"
#include "psk_file.hpp"
#include "rendr/rendr.hpp"
#include "stdio_pipe.hpp"
#include "tcp_endpoint.hpp"
#include "tcp_splice.hpp"
#include "tls_options.hpp"

namespace rendr::cli {
namespace {

enum class Service { stdio, echo, discard, forward };

template <class Connection>
std::string flow_name(const Connection& conn) {
  return "flow " + rendr::to_hex(conn.flow_id()).substr(0, 8);
}

// --log-json: one JSON object per line on stderr for each event below, beside the lines for
// people, for tooling (e.g. the fleet test finds out which node holds which flow). Keys are
// only ever added.
class JsonLog {
 public:
  explicit JsonLog(bool enabled) : enabled_(enabled) {}

  void listening(const std::string& address) const {
    if (enabled_) log_line(JsonObject().add("event", "listening").add("address", address).str());
  }
  template <class Connection>
  void flow_accepted(const Connection& conn) const {
    if (!enabled_) return;
    log_line(JsonObject()
                 .add("event", "flow_accepted")
                 .add("flow", rendr::to_hex(conn.flow_id()))
                 .add("mode", rendr::to_string(conn.mode()))
                 .str());
  }
  // `bytes`: echoed or discarded (packet flows: messages, under "messages").
  template <class Connection>
  void flow_ended(const Connection& conn, std::uint64_t bytes, const std::error_code& ec) const {
    if (!enabled_) return;
    const rendr::ConnStats stats = conn.stats();
    log_line(JsonObject()
                 .add("event", "flow_ended")
                 .add("flow", rendr::to_hex(conn.flow_id()))
                 .add(std::is_same_v<Connection, rendr::PacketConn> ? "messages" : "bytes", bytes)
                 .add("migrations", stats.migrations)
                 .add("joins_accepted", stats.joins_accepted)
                 .add("error", ec ? ec.message() : std::string())
                 .str());
  }

 private:
  bool enabled_;
};

// Connects the flow to `target` and splices the two on the engine's threads. If the target
// cannot be reached the flow is aborted: the `rendr forward` end resets its TCP connection.
void forward_async(rendr::Conn conn, const asio::ip::tcp::endpoint& target, std::string name) {
  auto socket = std::make_shared<asio::ip::tcp::socket>(rendr::Engine::default_engine().context());
  socket->async_connect(target, [socket, conn, name, target](std::error_code ec) mutable {
    if (ec) {
      const std::string error =
          "cannot connect to " + endpoint_string(target) + ": " + ec.message();
      log_line(name + ": " + error);
      conn.abort();
      return;
    }
    log_line(name + ": connected to " + endpoint_string(target));
    splice_async(rendr::Engine::default_engine().context(), std::move(*socket), std::move(conn),
                 name, {});
  });
}

// --packet: the same services, each message kept whole (packet_service.hpp, packet_stdio.hpp).
int serve_packet_flows(rendr::Listener& listener, Service service, const JsonLog& json,
                       std::chrono::milliseconds flush_timeout) {
  for (;;) {
    std::error_code ec;
    rendr::PacketConn conn = listener.accept_packet(ec);
    if (ec) {
      log_line("rendr listen: accept failed: " + ec.message());
      return 1;
    }
    const std::string name = flow_name(conn);
    log_line(name + ": accepted packet flow, mode " + std::string(rendr::to_string(conn.mode())));
    json.flow_accepted(conn);
    if (service == Service::stdio) {  // one flow, like `nc -l -u`
      const int status = pipe_stdio_packets(conn, name, flush_timeout);
      listener.close();
      return status;
    }
    serve_packets_async(std::move(conn),
                        service == Service::echo ? FlowService::echo : FlowService::discard, name,
                        [json](const rendr::PacketConn& ended, std::uint64_t messages,
                               std::error_code ec) { json.flow_ended(ended, messages, ec); });
  }
}

int run(const Args& args) {
  const std::vector<std::string> addresses = args.values("tcp");
  const std::vector<std::string> quic_addresses = args.values("quic");
  const std::vector<std::string> udp_addresses = args.values("udp");
  if (addresses.empty() && quic_addresses.empty() && udp_addresses.empty())
    throw UsageError(
        "rendr listen needs at least one --tcp HOST:PORT, --quic HOST:PORT or --udp HOST:PORT");
  const rendr::TlsServerConfig tls =
      quic_addresses.empty() ? rendr::TlsServerConfig{} : tls_server_config(args);
  const int services = int(args.has("echo")) + int(args.has("discard")) + int(args.has("stdio")) +
                       int(args.has("forward"));
  if (services > 1) throw UsageError("choose one of --echo, --discard, --stdio, --forward");
  const Service service = args.has("echo")      ? Service::echo
                          : args.has("discard") ? Service::discard
                          : args.has("forward") ? Service::forward
                                                : Service::stdio;
  const bool packet = args.has("packet");
  if (packet && service == Service::forward)
    throw UsageError("--forward carries byte streams; it cannot be combined with --packet");
  rendr::ListenOptions options;
  // --packet: packet flows only (a stream flow's OPEN is refused), so one service serves all.
  options.accept_stream_flows = !packet;
  options.accept_packet_flows = packet;
  options.migration_budget = args.millis("budget-ms", options.migration_budget);
  if (const auto psk = args.value("psk-file")) options.options.psk = read_psk_file(*psk);
  options.max_flows = args.count("max-flows", options.max_flows);
  options.udpflow_congestion = args.congestion();

  std::error_code ec;
  // The first address creates the listener; the others of every kind are added to it.
  rendr::Listener listener = !addresses.empty() ? rendr::listen_tcp(addresses[0], options, ec)
                             : !quic_addresses.empty()
                                 ? rendr::listen_quic(quic_addresses[0], tls, options, ec)
                                 : rendr::listen_udpflow(udp_addresses[0], options, ec);
  for (std::size_t i = 1; i < addresses.size() && !ec; ++i)
    ec = listener.listen_tcp(addresses[i]);
  for (std::size_t i = addresses.empty() ? 1 : 0; i < quic_addresses.size() && !ec; ++i)
    ec = listener.listen_quic(quic_addresses[i], tls);
  const bool udp_first = addresses.empty() && quic_addresses.empty();
  for (std::size_t i = udp_first ? 1 : 0; i < udp_addresses.size() && !ec; ++i)
    ec = listener.listen_udpflow(udp_addresses[i]);
  if (ec) {
    log_line("rendr listen: cannot listen: " + ec.message());
    return 1;
  }
  asio::ip::tcp::endpoint forward_target;
  if (service == Service::forward) {
    forward_target =
        resolve_tcp_endpoint(rendr::Engine::default_engine().context(), *args.value("forward"), ec);
    if (ec) {
      log_line("rendr listen: bad --forward '" + *args.value("forward") + "': " + ec.message());
      return 1;
    }
  }
  const JsonLog json(args.has("log-json"));
  // --metrics: the engine's flows (Engine::stats) and the listener's counters.
  std::shared_ptr<FlowMetrics> metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (const auto address = args.value("metrics")) {
    asio::io_context& io = rendr::Engine::default_engine().context();
    const asio::ip::tcp::endpoint endpoint = resolve_tcp_endpoint(io, *address, ec);
    metrics = std::make_shared<FlowMetrics>(rendr::Engine::default_engine());
    if (!ec) {
      metrics_server = std::make_unique<MetricsServer>(
          io, endpoint, [metrics, listener] { return metrics->render(listener.stats()); },
          [metrics] { metrics->sample_rtts(); }, ec);
    }
    if (ec) {
      log_line("rendr listen: cannot serve metrics on " + *address + ": " + ec.message());
      return 1;
    }
    log_line("metrics on http://" + endpoint_string(metrics_server->local_endpoint()) + "/metrics");
  }
  for (const std::string& address : listener.local_addresses()) {
    log_line("listening on " + address);
    json.listening(address);
  }

  if (packet) return serve_packet_flows(listener, service, json, options.migration_budget);

  if (service == Service::stdio) {  // one flow, like `nc -l`
    rendr::Conn conn = listener.accept(ec);
    if (ec) {
      log_line("rendr listen: accept failed: " + ec.message());
      return 1;
    }
    log_line(flow_name(conn) + ": accepted, mode " + std::string(rendr::to_string(conn.mode())));
    json.flow_accepted(conn);
    const MigrationLogger migrations(conn, flow_name(conn));
    const int status = pipe_stdio(conn, flow_name(conn), options.migration_budget);
    listener.close();
    return status;
  }

  for (;;) {
    rendr::Conn conn = listener.accept(ec);
    if (ec) {
      log_line("rendr listen: accept failed: " + ec.message());
      return 1;
    }
    log_line(flow_name(conn) + ": accepted, mode " + std::string(rendr::to_string(conn.mode())));
    json.flow_accepted(conn);
    const std::string name = flow_name(conn);
    if (service == Service::forward) {
      forward_async(std::move(conn), forward_target, name);
      continue;
    }
    // Served on the engine's threads; the listener runs until killed.
    serve_async(std::move(conn),
                service == Service::echo ? FlowService::echo : FlowService::discard, name,
                [json](const rendr::Conn& ended, std::uint64_t bytes, std::error_code ec) {
                  json.flow_ended(ended, bytes, ec);
                });
  }
}

std::vector<OptionSpec> listen_options() {
  std::vector<OptionSpec> options{
      {"tcp", OptionSpec::Kind::repeated, "HOST:PORT", "address to listen on (port 0: any)"},
      {"quic", OptionSpec::Kind::repeated, "HOST:PORT",
       "UDP address to accept QUIC paths on (needs --cert and --key)"},
      {"udp", OptionSpec::Kind::repeated, "HOST:PORT",
       "UDP address to accept udpflow paths on (rendr over UDP; port 0: any)"},
      congestion_option(),
      {"echo", OptionSpec::Kind::flag, "", "send every flow's bytes back"},
      {"discard", OptionSpec::Kind::flag, "", "read and drop every flow's bytes"},
      {"forward", OptionSpec::Kind::value, "HOST:PORT",
       "connect every flow to this TCP address and carry it there (the far end of `rendr "
       "forward`)"},
      {"stdio", OptionSpec::Kind::flag, "", "carry one flow over stdin/stdout (default)"},
      {"packet", OptionSpec::Kind::flag, "",
       "accept packet flows (`rendr dial --packet`) instead of stream flows: --echo sends each "
       "message back as one message, --discard drops it, --stdio writes each as a line and sends "
       "each stdin line as one message"},
      {"metrics", OptionSpec::Kind::value, "HOST:PORT",
       "serve Prometheus metrics (flows, paths, migrations, bytes, RTTs, refusals) at "
       "http://HOST:PORT/metrics"},
      {"log-json", OptionSpec::Kind::flag, "",
       "also log listening addresses and each flow's start and end as JSON lines on stderr"},
      psk_option(),
      {"max-flows", OptionSpec::Kind::value, "N",
       "flows held at once; more OPENs are refused (default 4096)"},
      budget_option()};
  for (OptionSpec& o : tls_server_options())
    options.push_back(std::move(o));
  return options;
}

}  // namespace

Command listen_command() {
  return {{"listen", "accept flows; serve them on stdio, as echo or discard, or forward them",
           "--tcp HOST:PORT [--tcp ...] [--quic HOST:PORT --cert FILE --key FILE] [--udp HOST:PORT "
           "[--congestion cubic|newreno|bbr]] "
           "[--echo | --discard | --stdio | --forward HOST:PORT] [--packet] [--metrics HOST:PORT] "
           "[--log-json] [--psk-file FILE] [--max-flows N]",
           "Accepts rendr flows on every given TCP, QUIC and udpflow address (a flow's paths may\n"
           "arrive on any of them). --stdio (default) carries one flow over stdin/stdout like\n"
           "`nc -l`; --echo and --discard serve flows until interrupted, as does --forward, which\n"
           "connects each flow to a TCP address (the far end of `rendr forward`; a refused\n"
           "connection aborts the flow). With --psk-file, only clients holding the same key reach\n"
           "a service (others are counted and closed). --metrics serves Prometheus metrics.\n"
           "--packet takes packet flows only (stream flows are refused): one message at a time,\n"
           "boundaries kept; with --stdio, one line is one message.\n"
           "Status goes to stderr.",
           listen_options()},
          run};
}

}  // namespace rendr::cli
