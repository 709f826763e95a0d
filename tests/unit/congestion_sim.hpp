#pragma once
// Round-by-round driver for congestion-controller tests: each round sends a full window at
// once and acknowledges it one RTT later (optionally losing one packet of it).
#include <vector>

#include "core/recovery/congestion_controller.hpp"

namespace rendr::core::recovery::testing {

struct RoundDriver {
  CongestionController& cc;
  std::size_t mss;
  Duration rtt_value;
  RttStats rtt{rtt_value};
  Time now;
  PacketNumber next_pn = 0;

  RoundDriver(CongestionController& controller, std::size_t datagram, Duration round_trip,
              Time start)
      : cc(controller), mss(datagram), rtt_value(round_trip), now(start) {
    rtt.update(round_trip, Duration::zero());
  }

  // One round trip: sends the window (rounded down to datagrams), then one RTT later
  // acknowledges it, declaring the last packet lost first if `lose_one`.
  void round(bool lose_one = false) {
    const std::size_t n = std::max<std::size_t>(cc.congestion_window() / mss, 1);
    std::vector<AckedPacket> acked;
    std::vector<LostPacket> lost;
    for (std::size_t i = 0; i < n; ++i) {
      cc.on_packet_sent(mss, now);
      if (lose_one && i + 1 == n)
        lost.push_back(LostPacket{next_pn++, mss, now});
      else
        acked.push_back(AckedPacket{next_pn++, mss, now});
    }
    now += rtt_value;
    if (!lost.empty()) cc.on_packets_lost(lost, now);
    cc.on_packets_acked(acked, rtt, now);
  }
  double window_packets() const { return static_cast<double>(cc.congestion_window()) / mss; }
};

}  // namespace rendr::core::recovery::testing
