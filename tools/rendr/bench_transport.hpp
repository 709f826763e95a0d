#pragma once
// `--transport tcp|quic|udpflow|mixed` for the benches: which carrier the rendr paths use. tcp,
// quic: every path; udpflow: every path over UDP (issue 9); mixed: path i is tcp for even i,
// udpflow for odd.
#include <optional>
#include <string>
#include <string_view>

#include "args.hpp"

namespace rendr::cli {

enum class BenchTransport { tcp, quic, udpflow, mixed };

std::string_view to_string(BenchTransport t);
OptionSpec transport_option();
// "--transport"; tcp when absent, UsageError on anything else but quic, udpflow or mixed.
BenchTransport parse_transport(const Args& args);
// Why a bench cannot run its paths over `t` in this build, or nullopt if it can
// (`through_fault_proxy`: the bench relays its paths through the TCP fault proxy).
std::optional<std::string> unavailable_reason(BenchTransport t, bool through_fault_proxy = false);

}  // namespace rendr::cli
