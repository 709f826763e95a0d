#pragma once
// A TCP socket's congestion state as the kernel reports it (TCP_INFO, TCP_CONGESTION).
#include <optional>

#include "carrier/transport_congestion.hpp"

namespace rendr::carrier {

// nullopt if the kernel does not say (not a TCP socket, or closed).
std::optional<TransportCongestion> read_tcp_congestion(int fd);

}  // namespace rendr::carrier
