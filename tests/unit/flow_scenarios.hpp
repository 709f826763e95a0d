#pragma once
// Scenario helpers for the core::Flow tests over the in-memory harness (flow_harness.hpp).
#include <functional>
#include <numeric>
#include <vector>

#include "flow_harness.hpp"

namespace rendr::test {

inline std::vector<wire::Byte> pattern(std::size_t n, std::uint8_t seed = 7) {
  std::vector<wire::Byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<wire::Byte>(x >> 24);
  }
  return v;
}

// Pushes `data` from client to server through the harness, reading on the server as it goes.
inline std::vector<wire::Byte> transfer(FlowPair& net, const std::vector<wire::Byte>& data,
                                        const std::function<void(std::size_t)>& at_offset = {}) {
  std::vector<wire::Byte> got;
  std::size_t written = 0;
  std::vector<wire::Byte> buf(64 * 1024);
  for (int round = 0; round < 100000 && got.size() < data.size(); ++round) {
    if (written < data.size()) {
      const std::size_t before = written;
      written +=
          net.client().write(wire::ConstBytes(data).subspan(
                                 written, std::min<std::size_t>(data.size() - written, 100'000)),
                             net.now());
      if (at_offset && before != written) at_offset(written);
    }
    net.settle(1ms);
    if (net.has_server()) {
      std::size_t n;
      while ((n = net.server().read(buf, net.now())) > 0)
        got.insert(got.end(), buf.begin(), buf.begin() + n);
    }
    if (net.client().state() == core::FlowState::failed) break;
  }
  return got;
}

inline core::FlowConfig with_mode(core::Mode mode) {
  core::FlowConfig config;
  config.mode = mode;
  return config;
}

inline std::uint64_t bytes_sent_on(const core::FlowStats& stats, core::PathId id) {
  for (const auto& p : stats.paths) {
    if (p.id == id) return p.bytes_sent;
  }
  return 0;
}

// Longest virtual time between two reads that returned bytes while `data` streams through.
struct TimedTransfer {
  std::vector<wire::Byte> got;
  core::Duration longest_gap{};
};

inline TimedTransfer transfer_timed(FlowPair& net, const std::vector<wire::Byte>& data,
                                    const std::function<void(std::size_t)>& at_offset) {
  TimedTransfer r;
  std::size_t written = 0;
  std::vector<wire::Byte> buf(64 * 1024);
  core::Time last_progress = net.now();
  for (int round = 0; round < 100000 && r.got.size() < data.size(); ++round) {
    if (written < data.size()) {
      written +=
          net.client().write(wire::ConstBytes(data).subspan(
                                 written, std::min<std::size_t>(data.size() - written, 16 * 1024)),
                             net.now());
      at_offset(written);
    }
    net.settle(200us);
    std::size_t n;
    bool progress = false;
    while ((n = net.server().read(buf, net.now())) > 0) {
      r.got.insert(r.got.end(), buf.begin(), buf.begin() + n);
      progress = true;
    }
    if (progress) {
      r.longest_gap = std::max(r.longest_gap, net.now() - last_progress);
      last_progress = net.now();
    }
  }
  return r;
}

// Like transfer(), but keeps the send buffer full: bond shares out what the paths can carry,
// so an application that writes a trickle would never need the second path.
inline std::vector<wire::Byte> saturating_transfer(FlowPair& net,
                                                   const std::vector<wire::Byte>& data) {
  std::vector<wire::Byte> got;
  std::size_t written = 0;
  std::vector<wire::Byte> buf(1 << 20);
  for (int round = 0; round < 100000 && got.size() < data.size(); ++round) {
    written += net.client().write(wire::ConstBytes(data).subspan(written), net.now());
    net.settle(200us);
    std::size_t n;
    while ((n = net.server().read(buf, net.now())) > 0)
      got.insert(got.end(), buf.begin(), buf.begin() + n);
  }
  net.settle(50ms);  // the last ACKs arrive
  return got;
}

inline void expect_modes(FlowPair& net, core::Mode mode) {
  EXPECT_EQ(net.client().mode(), mode);
  EXPECT_EQ(net.server().mode(), mode);
  EXPECT_EQ(net.client().stats(net.now()).mode, mode);
}

// Keeps the client writing 16 KiB every 5 ms (its flight never drains by itself) for `d`;
// returns the bytes the server read.
inline std::uint64_t keep_busy(FlowPair& net, core::Duration d) {
  const auto chunk = pattern(16 * 1024);
  std::vector<wire::Byte> sink(1 << 20);
  std::uint64_t delivered = 0;
  const core::Time end = net.now() + d;
  while (net.now() < end) {
    net.client().write(chunk, net.now());
    net.settle(5ms);
    delivered += net.server().read(sink, net.now());
  }
  return delivered;
}

}  // namespace rendr::test
