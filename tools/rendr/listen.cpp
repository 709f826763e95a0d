// `rendr listen`: accepts flows on one or more TCP addresses (one listener, one flow table) and
// serves each one: echo it, discard it, or (default) carry it over stdin/stdout for one flow.
#include <cstdint>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "flow_service.hpp"
#include "path_admin.hpp"
#include "rendr/rendr.hpp"
#include "stdio_pipe.hpp"

namespace rendr::cli {
namespace {

enum class Service { stdio, echo, discard };

std::string flow_name(const rendr::Conn& conn) {
  return "flow " + rendr::to_hex(conn.flow_id()).substr(0, 8);
}

int run(const Args& args) {
  const std::vector<std::string> addresses = args.values("tcp");
  if (addresses.empty()) throw UsageError("rendr listen needs at least one --tcp HOST:PORT");
  const int services = int(args.has("echo")) + int(args.has("discard")) + int(args.has("stdio"));
  if (services > 1) throw UsageError("choose one of --echo, --discard, --stdio");
  const Service service = args.has("echo")      ? Service::echo
                          : args.has("discard") ? Service::discard
                                                : Service::stdio;
  rendr::ListenOptions options;
  options.migration_budget = args.millis("budget-ms", options.migration_budget);
  options.max_flows = args.count("max-flows", options.max_flows);

  std::error_code ec;
  rendr::Listener listener = rendr::listen_tcp(addresses[0], options, ec);
  for (std::size_t i = 1; i < addresses.size() && !ec; ++i)
    ec = listener.listen_tcp(addresses[i]);
  if (ec) {
    log_line("rendr listen: cannot listen: " + ec.message());
    return 1;
  }
  for (const std::string& address : listener.local_addresses())
    log_line("listening on " + address);

  if (service == Service::stdio) {  // one flow, like `nc -l`
    rendr::Conn conn = listener.accept(ec);
    if (ec) {
      log_line("rendr listen: accept failed: " + ec.message());
      return 1;
    }
    log_line(flow_name(conn) + ": accepted, mode " + std::string(rendr::to_string(conn.mode())));
    watch_migrations(conn, flow_name(conn));
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
    watch_migrations(conn, flow_name(conn));
    // Served on the engine's threads; the listener runs until killed.
    serve_async(std::move(conn),
                service == Service::echo ? FlowService::echo : FlowService::discard);
  }
}

}  // namespace

Command listen_command() {
  return {{"listen",
           "accept flows; serve them on stdio, as echo or discard",
           "--tcp HOST:PORT [--tcp HOST:PORT ...] [--echo | --discard | --stdio] [--max-flows N]",
           "Accepts rendr flows on every given TCP address (a flow's paths may arrive on any of\n"
           "them). --stdio (default) carries one flow over stdin/stdout like `nc -l`; --echo and\n"
           "--discard serve flows until interrupted. Status goes to stderr.",
           {{"tcp", OptionSpec::Kind::repeated, "HOST:PORT", "address to listen on (port 0: any)"},
            {"echo", OptionSpec::Kind::flag, "", "send every flow's bytes back"},
            {"discard", OptionSpec::Kind::flag, "", "read and drop every flow's bytes"},
            {"stdio", OptionSpec::Kind::flag, "", "carry one flow over stdin/stdout (default)"},
            {"max-flows", OptionSpec::Kind::value, "N",
             "flows held at once; more OPENs are refused (default 4096)"},
            budget_option()}},
          run};
}

}  // namespace rendr::cli
