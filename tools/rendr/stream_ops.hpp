#pragma once
// The few operations the benchmarks need beyond read_some/write_some, for both kinds of stream
// they drive: a raw TCP socket (the baseline) and a rendr::Conn. Templates pick the overload.
#include <chrono>
#include <system_error>
#include <thread>

#include <asio/ip/tcp.hpp>

#include "rendr/conn.hpp"

namespace rendr::cli {

// Ends the sending direction; the peer reads EOF after every byte written so far.
inline void half_close(asio::ip::tcp::socket& socket) {
  std::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}
inline void half_close(rendr::Conn& conn) {
  conn.close();
}

// Unblocks a reader stuck on a stream that will never finish (a watchdog's last resort).
inline void abort_stream(asio::ip::tcp::socket& socket) {
  std::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}
inline void abort_stream(rendr::Conn& conn) {
  conn.abort();
}

// After close(): waits until the peer acknowledged everything written, so that leaving the
// process (which stops the engine) cannot drop bytes still in flight. False on timeout. For a
// rendr::Conn or a rendr::PacketConn.
template <class Connection>
bool wait_until_acked(const Connection& conn, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const rendr::ConnStats stats = conn.stats();
    if (stats.bytes_acked >= stats.bytes_written) return true;
    if (stats.state == "failed" || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace rendr::cli
