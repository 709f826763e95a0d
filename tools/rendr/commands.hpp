#pragma once
// The `rendr` subcommands. Each returns the process exit status: 0 success, 1 failure (a
// transfer error, a SHA-256 mismatch, a dial that failed), 2 a bad command line.
#include "args.hpp"

namespace rendr::cli {

struct Command {
  CommandSpec spec;
  int (*run)(const Args& args);
};

Command listen_command();
Command dial_command();
Command forward_command();
Command demo_command();
Command bench_stream_command();
Command bench_echo_command();
Command bench_failover_command();
Command bench_flows_command();
Command bench_packet_command();

// Options several commands share.
inline OptionSpec mode_option() {
  return {"mode", OptionSpec::Kind::value, "prime|race|bond",
          "prime: one active path (default); race: every frame on every path, first copy wins; "
          "bond: frames striped over the paths, bandwidths add up"};
}
inline OptionSpec congestion_option() {
  return {"congestion", OptionSpec::Kind::value, "cubic|newreno|bbr",
          "udpflow paths: this end's congestion controller (default bbr, which keeps its rate "
          "under random loss that is not congestion)"};
}
inline OptionSpec json_option() {
  return {"json", OptionSpec::Kind::flag, "", "print the result as one JSON line (always last)"};
}
inline OptionSpec psk_option() {
  return {"psk-file", OptionSpec::Kind::value, "FILE",
          "pre-shared key: the file's raw bytes; both ends need the same (a wrong key fails the "
          "dial with \"authentication failed\")"};
}
inline OptionSpec budget_option() {
  return {"budget-ms", OptionSpec::Kind::value, "MS",
          "migration budget: how long with no usable path before I/O fails (default 90000)"};
}

}  // namespace rendr::cli
