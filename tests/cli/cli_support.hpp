#pragma once
// What the `rendr` tool's process tests share: the sanitizer slowdown, loopback addresses and a
// bounded poll.
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace rendr::cli_test {

#ifdef RENDR_SANITIZED
inline constexpr int kSlowdown = 3;
#else
inline constexpr int kSlowdown = 1;
#endif

inline std::string port_text(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

// Polls until `done` holds or `timeout` (scaled by kSlowdown) passes; deadlines only matter when
// something is broken.
template <class Condition>
bool wait_until(Condition done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout * kSlowdown;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace rendr::cli_test
