#pragma once
// The Dialer the client commands (`dial`, `forward`) build from their flags: --mode,
// --budget-ms, --connect-timeout-ms, --psk-file, every --path (at least one) and the TLS flags
// of quic:// paths.
#include <string_view>

#include "args.hpp"
#include "rendr/rendr.hpp"

namespace rendr::cli {

// Throws UsageError naming `command` for a bad or missing --path.
rendr::Dialer dialer_from_args(const Args& args, std::string_view command);

}  // namespace rendr::cli
