#pragma once
// `rendr listen --packet --echo / --discard` (and `bench packet`'s in-process listener): serves
// an accepted packet flow with asynchronous receives and sends on the engine's threads: each
// message is echoed back as one message, or dropped.
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

#include "flow_service.hpp"
#include "rendr/rendr.hpp"

namespace rendr::cli {

// How a served packet flow ended: messages echoed or discarded, and the error (none after a
// clean close).
using PacketFlowEnded =
    std::function<void(const rendr::PacketConn&, std::uint64_t, std::error_code)>;

// Serves `conn` until the peer closes (then closes our side) or the flow fails; logs its end
// under `name` (unless `name` is empty), then calls `on_end`.
void serve_packets_async(rendr::PacketConn conn, FlowService service, std::string name,
                         PacketFlowEnded on_end);

}  // namespace rendr::cli
