#pragma once
// `--transport tcp|quic|udpflow|mixed` for the benches: which carrier the rendr paths use. tcp,
// quic: every path; udpflow: every path over UDP (issue 9); mixed: path i is tcp for even i,
// udpflow for odd.
#include <string_view>

#include "args.hpp"

namespace rendr::cli {

enum class BenchTransport { tcp, quic, udpflow, mixed };

std::string_view to_string(BenchTransport t);
OptionSpec transport_option();
// "--transport"; tcp when absent, UsageError on anything else but quic, udpflow or mixed.
BenchTransport parse_transport(const Args& args);

}  // namespace rendr::cli
