// `rendr dial`: opens a flow over the given paths and carries stdin/stdout over it, like nc.
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "dialer_options.hpp"
#include "migration_logger.hpp"
#include "packet_stdio.hpp"
#include "path_admin.hpp"
#include "psk_file.hpp"
#include "rendr/rendr.hpp"
#include "stdio_pipe.hpp"
#include "tls_options.hpp"

namespace rendr::cli {
namespace {

std::vector<OptionSpec> dial_options() {
  std::vector<OptionSpec> options{
      {"path", OptionSpec::Kind::repeated, "tcp|quic|udpflow://HOST:PORT",
       "a network path to the listener"},
      mode_option(),
      congestion_option(),
      {"connect-timeout-ms", OptionSpec::Kind::value, "MS",
       "give up if no path completes the opening handshake in time (default 10000)"},
      {"packet", OptionSpec::Kind::flag, "",
       "open a packet flow: one stdin line is one message, each message received one line"},
      {"unreliable", OptionSpec::Kind::flag, "",
       "--packet: a lost message is not sent again (never duplicated either)"},
      {"unordered", OptionSpec::Kind::flag, "",
       "--packet: deliver messages on arrival instead of in the order sent"},
      psk_option(),
      budget_option()};
  for (OptionSpec& o : tls_client_options())
    options.push_back(std::move(o));
  return options;
}

// --packet: reliable and ordered unless told otherwise (lines are read as a conversation).
int dial_packet(const Args& args, const rendr::Dialer& dialer) {
  const rendr::PacketOptions options{.reliable = !args.has("unreliable"),
                                     .ordered = !args.has("unordered")};
  std::error_code ec;
  rendr::PacketConn conn = dialer.dial_packet(options, ec);
  if (ec) {
    log_line("rendr dial: cannot open a packet flow (mode " +
             std::string(rendr::to_string(dialer.mode)) + "): " + ec.message());
    return 1;
  }
  const std::string name = "flow " + rendr::to_hex(conn.flow_id()).substr(0, 8);
  log_line(name + ": packet flow open over " + std::to_string(dialer.paths.size()) +
           " path(s), mode " + std::string(rendr::to_string(conn.mode())) +
           (options.reliable ? ", reliable" : ", unreliable") +
           (options.ordered ? ", ordered" : ", unordered") + ", active " +
           path_spec(conn.stats(), conn.active_path()));
  return pipe_stdio_packets(conn, name, dialer.migration_budget);
}

int run(const Args& args) {
  rendr::Dialer dialer = dialer_from_args(args, "dial");
  if (const auto congestion = args.congestion()) {
    for (rendr::PathSpec& spec : dialer.paths)
      spec.congestion = *congestion;
  }

  if (!args.has("packet") && (args.has("unreliable") || args.has("unordered")))
    throw UsageError("--unreliable and --unordered need --packet");
  if (args.has("packet")) return dial_packet(args, dialer);

  std::error_code ec;
  rendr::Conn conn = dialer.dial(ec);
  if (ec) {
    log_line("rendr dial: cannot open a flow (mode " + std::string(rendr::to_string(dialer.mode)) +
             "): " + ec.message());
    return 1;
  }
  const std::string name = "flow " + rendr::to_hex(conn.flow_id()).substr(0, 8);
  log_line(name + ": open over " + std::to_string(dialer.paths.size()) + " path(s), mode " +
           std::string(rendr::to_string(conn.mode())) + ", active " +
           path_spec(conn.stats(), conn.active_path()));
  const MigrationLogger migrations(conn, name);
  return pipe_stdio(conn, name, dialer.migration_budget);
}

}  // namespace

Command dial_command() {
  return {{"dial", "open a flow and pipe stdin/stdout over it (like nc)",
           "--path tcp://HOST:PORT[?weight=N] [--path quic://HOST:PORT ...] [--path "
           "udpflow://HOST:PORT ...] "
           "[--mode prime|race|bond] [--congestion cubic|newreno|bbr] [--packet [--unreliable] "
           "[--unordered]] "
           "[--psk-file FILE] [--ca FILE | --insecure] [--server-name NAME]",
           "Opens one rendr flow over every given path and pipes stdin to it and it to stdout,\n"
           "like nc. Closes the sending direction on stdin EOF and exits once the peer closed\n"
           "(stdin from a file or pipe is still sent to its end). quic:// paths verify the\n"
           "server's certificate (system store or --ca, name = host or --server-name) unless\n"
           "--insecure. --packet opens a packet flow (reliable and ordered unless --unreliable,\n"
           "--unordered): each stdin line is sent as one message (a line longer than 1153 bytes\n"
           "is an error), each message received is printed as one line. Status goes to stderr.",
           dial_options()},
          run};
}

}  // namespace rendr::cli
