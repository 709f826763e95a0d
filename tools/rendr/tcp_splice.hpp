#pragma once
// `rendr forward` and `rendr listen --forward`: carries one TCP connection over one rendr flow,
// both ways, on the engine's threads (no thread per connection). Half-closes pass through: the
// TCP peer's EOF closes the flow's sending direction and the flow's EOF shuts down the socket's.
// An error on either side ends both at once, as nc does: the flow is aborted (the other end sees
// errc::peer_aborted) and the socket is reset, so neither program mistakes it for a clean end.
#include <cstdint>
#include <functional>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "rendr/conn.hpp"

namespace rendr::cli {

struct SpliceResult {
  std::uint64_t to_flow = 0;    // bytes read from the socket and written to the flow
  std::uint64_t from_flow = 0;  // bytes read from the flow and written to the socket
  std::string error;            // empty when both directions ended cleanly
};

// `socket` belongs to `io`, which the flow's engine runs (or which runs the engine's work). Logs
// migrations and the end under `name`, then calls `on_end` (may be empty).
using SpliceEnded = std::function<void(const rendr::Conn&, const SpliceResult&)>;
void splice_async(asio::io_context& io, asio::ip::tcp::socket socket, rendr::Conn conn,
                  std::string name, SpliceEnded on_end);

}  // namespace rendr::cli
