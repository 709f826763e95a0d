#include "stream_ops.hpp"

#include <thread>

namespace rendr::cli {

bool wait_until_acked(const rendr::Conn& conn, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const rendr::ConnStats stats = conn.stats();
    if (stats.bytes_acked >= stats.bytes_written) return true;
    if (stats.state == "failed" || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace rendr::cli
