#pragma once
// A datagram path's sender (DatagramTransport: loss detection, congestion controller, pacer)
// over a simulated bottleneck: a link of `rate` bytes/s with a drop-tail queue, a propagation
// delay each way, optional random loss, and a receiver that acknowledges every packet at once.
// Virtual time advances in fixed ticks; everything is deterministic.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <utility>

#include "core/recovery/datagram_transport.hpp"
#include "core/retransmit_queue.hpp"

namespace rendr::core::recovery::testing {

class BottleneckSim {
 public:
  struct Link {
    double rate = 10e6;  // bytes/s
    Duration one_way = std::chrono::milliseconds(10);
    std::uint64_t queue_limit = 200'000;  // bytes waiting at the bottleneck, at most
    double loss = 0;                      // share of packets dropped at random
  };
  static constexpr std::size_t kPacket = 1200;
  static constexpr Duration kTick = std::chrono::microseconds(100);

  BottleneckSim(CongestionAlgorithm algorithm, Link link, Time start)
      : link_(link), now_(start), sender_(config(algorithm)) {
    sender_.seed_rtt(2 * link_.one_way, now_);
  }

  // Runs for `d`; the application offers `app_rate` bytes/s (0: always has data).
  void run(Duration d, double app_rate = 0) {
    const Time end = now_ + d;
    while (now_ < end) {
      deliver_acks();
      if (const auto t = sender_.next_timer(); t && *t <= now_) sender_.on_timer(now_, lost_);
      send(app_rate);
      observe();
      now_ += kTick;
    }
  }

  // Bytes acknowledged during the next run(d), per second.
  double goodput(Duration d, double app_rate = 0) {
    const std::uint64_t before = acked_bytes_;
    run(d, app_rate);
    return static_cast<double>(acked_bytes_ - before) / std::chrono::duration<double>(d).count();
  }

  void set_link(const Link& link) { link_ = link; }
  DatagramTransport& sender() { return sender_; }
  const CongestionController& controller() const { return sender_.controller(); }
  Time now() const { return now_; }
  // Bytes queued at the bottleneck now.
  double queued_bytes() const {
    if (link_free_ <= now_) return 0;
    return std::chrono::duration<double>(link_free_ - now_).count() * link_.rate;
  }
  std::uint64_t packets_dropped() const { return dropped_; }
  // The lowest window seen since the last call (per tick).
  std::uint64_t take_lowest_window() {
    return std::exchange(lowest_window_, std::numeric_limits<std::uint64_t>::max());
  }
  // Called every tick with the simulation (to watch the controller's state).
  std::function<void(BottleneckSim&)> on_tick;

 private:
  static RecoveryConfig config(CongestionAlgorithm algorithm) {
    RecoveryConfig c;
    c.max_datagram_size = kPacket;
    c.congestion = algorithm;
    return c;
  }

  void deliver_acks() {
    while (!acks_.empty() && acks_.front().at <= now_) {
      wire::AckRanges ack;
      ack.ranges.push_back(wire::PacketRange{acks_.front().pn, acks_.front().pn});
      acks_.pop_front();
      const auto out = sender_.on_ack_received(ack, now_, lost_);
      acked_bytes_ += out.newly_acked * kPacket;
    }
    lost_.clear();
  }

  void send(double app_rate) {
    if (app_rate > 0) {
      app_credit_ += app_rate * std::chrono::duration<double>(kTick).count();
      app_credit_ = std::min(app_credit_, 20.0 * kPacket);
    }
    while (sender_.send_allowance() >= kPacket) {
      if (const auto at = sender_.next_send_time(); at && *at > now_) return;
      if (app_rate > 0 && app_credit_ < kPacket) {
        sender_.on_app_limited();
        return;
      }
      app_credit_ -= app_rate > 0 ? kPacket : 0;
      PacketContent content;
      content.ack_eliciting = true;
      content.add_data(offset_, offset_ + kPacket - 40);
      offset_ += kPacket - 40;
      const PacketNumber pn = sender_.on_packet_sent(kPacket, content, now_);
      enter_link(pn);
    }
  }

  void enter_link(PacketNumber pn) {
    lcg_ = lcg_ * 6364136223846793005ull + 1442695040888963407ull;
    const double draw = static_cast<double>(lcg_ >> 11) / 9007199254740992.0;
    if (draw < link_.loss || queued_bytes() + kPacket > static_cast<double>(link_.queue_limit)) {
      ++dropped_;
      return;
    }
    const Duration serialise =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(kPacket / link_.rate));
    link_free_ = std::max(link_free_, now_) + serialise;
    acks_.push_back(Ack{link_free_ + 2 * link_.one_way, pn});
  }

  void observe() {
    lowest_window_ = std::min(lowest_window_, sender_.controller().congestion_window());
    if (on_tick) on_tick(*this);
  }

  struct Ack {
    Time at;
    PacketNumber pn;
  };
  Link link_;
  Time now_;
  DatagramTransport sender_;
  RetransmitQueue lost_;
  std::deque<Ack> acks_;  // in order: the bottleneck is FIFO and the delay fixed
  Time link_free_{};
  std::uint64_t offset_ = 0;
  std::uint64_t acked_bytes_ = 0;
  std::uint64_t dropped_ = 0;
  double app_credit_ = 0;
  std::uint64_t lcg_ = 42;
  std::uint64_t lowest_window_ = std::numeric_limits<std::uint64_t>::max();
};

}  // namespace rendr::core::recovery::testing
