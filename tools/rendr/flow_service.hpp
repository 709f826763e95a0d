#pragma once
// `rendr listen --echo / --discard`: serves an accepted flow with asynchronous reads and writes
// on the engine's threads, so a listener holding thousands of flows needs no thread per flow.
#include "rendr/rendr.hpp"

namespace rendr::cli {

enum class FlowService { echo, discard };

// Serves `conn` until the peer closes (then closes our side) or the flow fails; logs the end.
void serve_async(rendr::Conn conn, FlowService service);

}  // namespace rendr::cli
