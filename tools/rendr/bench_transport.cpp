#include "bench_transport.hpp"

namespace rendr::cli {

std::string_view to_string(BenchTransport t) {
  switch (t) {
    case BenchTransport::tcp:
      return "tcp";
    case BenchTransport::quic:
      return "quic";
    case BenchTransport::udpflow:
      return "udpflow";
    case BenchTransport::mixed:
      return "mixed";
  }
  return "?";
}

OptionSpec transport_option() {
  return {"transport", OptionSpec::Kind::value, "tcp|quic|udpflow|mixed",
          "carrier of the rendr paths: tcp (default), quic (a throw-away certificate; the "
          "reference stays raw TCP), udpflow (rendr over UDP), or mixed (even paths tcp, odd "
          "paths udpflow)"};
}

BenchTransport parse_transport(const Args& args) {
  const auto v = args.value("transport");
  if (!v) return BenchTransport::tcp;
  for (const BenchTransport t : {BenchTransport::tcp, BenchTransport::quic, BenchTransport::udpflow,
                                 BenchTransport::mixed}) {
    if (*v == to_string(t)) return t;
  }
  throw UsageError("--transport must be tcp, quic, udpflow or mixed, got '" + *v + "'");
}

std::optional<std::string> unavailable_reason(BenchTransport t, bool through_fault_proxy) {
  // The benches that kill paths through the TCP fault proxy cannot run udpflow paths yet (the
  // local flow has no UDP fault proxy): they must fail rather than quietly measure tcp.
  if (t == BenchTransport::tcp || t == BenchTransport::quic || !through_fault_proxy)
    return std::nullopt;
  return "udpflow paths are not available yet through the fault proxy (--transport " +
         std::string(to_string(t)) + " needs a UDP fault proxy in the local flow)";
}

}  // namespace rendr::cli
