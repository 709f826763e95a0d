#pragma once
// `rendr listen --echo / --discard`: serves an accepted flow with asynchronous reads and writes
// on the engine's threads, so a listener holding thousands of flows needs no thread per flow.
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

#include "rendr/rendr.hpp"

namespace rendr::cli {

enum class FlowService { echo, discard };

// How a served flow ended: bytes echoed or discarded, and the error (none after a clean close).
using FlowEnded = std::function<void(const rendr::Conn&, std::uint64_t, std::error_code)>;

// Serves `conn` until the peer closes (then closes our side) or the flow fails; logs its
// migrations and its end under `name`, then calls `on_end`.
void serve_async(rendr::Conn conn, FlowService service, std::string name, FlowEnded on_end);

}  // namespace rendr::cli
