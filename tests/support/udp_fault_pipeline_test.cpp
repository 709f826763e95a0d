// Tests for the UDP fault pipeline with injected time: exact, seeded and free of sleeps.
#include "support/udp_fault_pipeline.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rendr::testing::AtomicUdpFaultCounters;
using rendr::testing::UdpFaultPipeline;
using rendr::testing::UdpFaults;
using Clock = UdpFaultPipeline::Clock;

UdpFaultPipeline::Datagram datagram(std::uint32_t seq, std::size_t size = 64) {
  UdpFaultPipeline::Datagram d(size, '\0');
  std::memcpy(d.data(), &seq, sizeof seq);
  return d;
}

std::uint32_t seq_of(const UdpFaultPipeline::Datagram& d) {
  std::uint32_t seq = 0;
  std::memcpy(&seq, d.data(), sizeof seq);
  return seq;
}

struct Sent {
  std::uint32_t seq;
  std::size_t size;
  Clock::time_point at;
};

// Drives a pipeline the way the proxy's io loop does: pop at every wake-up up to `until`.
class Harness {
 public:
  Harness(std::uint64_t seed, const UdpFaults& faults) : pipe(seed, counters, t0) {
    pipe.configure(faults, t0);
  }

  void advance_to(Clock::time_point until) {
    for (auto wake = pipe.next_wake(); wake && *wake <= until; wake = pipe.next_wake()) {
      now = std::max(now, *wake);
      pop();
    }
    now = std::max(now, until);
    pop();
  }
  void push(std::uint32_t seq, std::size_t size = 64) {
    pipe.push(datagram(seq, size), now);
    pop();  // as the proxy does right after a receive
  }
  std::vector<std::uint32_t> seqs() const {
    std::vector<std::uint32_t> v;
    for (const Sent& s : sent)
      v.push_back(s.seq);
    return v;
  }

  const Clock::time_point t0 = Clock::now();
  Clock::time_point now = t0;
  AtomicUdpFaultCounters counters;
  UdpFaultPipeline pipe;
  std::vector<Sent> sent;

 private:
  void pop() {
    std::vector<UdpFaultPipeline::Datagram> out;
    pipe.pop_due(now, out);
    for (const auto& d : out)
      sent.push_back(Sent{seq_of(d), d.size(), now});
  }
};

UdpFaults everything() {
  UdpFaults f;
  f.loss = 0.2;
  f.duplicate = 0.1;
  f.reorder = 0.1;
  f.delay = 2ms;
  f.jitter = 3ms;
  return f;
}

std::vector<std::uint32_t> run_everything(std::uint64_t seed) {
  Harness h(seed, everything());
  for (std::uint32_t i = 0; i < 2000; ++i) {
    h.push(i);
    h.advance_to(h.now + 100us);
  }
  h.advance_to(h.now + 1s);
  return h.seqs();
}

TEST(UdpFaultPipelineTest, SameSeedMakesTheSameDecisionsAndAnotherSeedDoesNot) {
  const auto a = run_everything(7);
  EXPECT_EQ(a, run_everything(7));
  EXPECT_NE(a, run_everything(8));
}

TEST(UdpFaultPipelineTest, LossOfTenPercentOverTenThousandDatagrams) {
  UdpFaults f;
  f.loss = 0.1;
  Harness h(42, f);
  for (std::uint32_t i = 0; i < 10'000; ++i)
    h.push(i);
  const auto c = h.counters.snapshot();
  EXPECT_EQ(c.received, 10'000u);
  EXPECT_EQ(c.dropped + h.sent.size(), 10'000u);
  EXPECT_NEAR(static_cast<double>(c.dropped), 1000.0, 150.0);  // 5 standard deviations
}

TEST(UdpFaultPipelineTest, DuplicateSendsBothCopiesBackToBack) {
  UdpFaults f;
  f.duplicate = 1.0;
  Harness h(1, f);
  for (std::uint32_t i = 0; i < 3; ++i)
    h.push(i);
  EXPECT_EQ(h.seqs(), (std::vector<std::uint32_t>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(h.counters.snapshot().duplicated, 3u);
}

TEST(UdpFaultPipelineTest, HeldDatagramIsReleasedAfterGapLaterOnes) {
  UdpFaults f;
  f.reorder = 1.0;
  f.reorder_gap = 3;
  f.reorder_hold = 0us;  // count trigger only
  Harness h(1, f);
  h.push(0);
  f.reorder = 0;
  h.pipe.configure(f, h.now);  // keeps what is held
  for (std::uint32_t i = 1; i <= 4; ++i)
    h.push(i);
  EXPECT_EQ(h.seqs(), (std::vector<std::uint32_t>{1, 2, 3, 0, 4}));
  EXPECT_EQ(h.counters.snapshot().reordered, 1u);
}

TEST(UdpFaultPipelineTest, HeldDatagramIsReleasedAtTheHoldDeadline) {
  UdpFaults f;
  f.reorder = 1.0;
  f.reorder_gap = 3;
  f.reorder_hold = 20ms;
  Harness h(1, f);
  h.push(0);
  EXPECT_EQ(h.pipe.next_wake(), h.t0 + 20ms);
  h.advance_to(h.t0 + 19ms);
  EXPECT_TRUE(h.sent.empty());
  h.advance_to(h.t0 + 20ms);
  ASSERT_EQ(h.sent.size(), 1u);
  EXPECT_EQ(h.sent[0].at, h.t0 + 20ms);
}

TEST(UdpFaultPipelineTest, DelayWithJitterNeverReordersAndIsNeverShort) {
  UdpFaults f;
  f.delay = 10ms;
  f.jitter = 5ms;
  Harness h(3, f);
  std::vector<Clock::time_point> pushed;
  for (std::uint32_t i = 0; i < 200; ++i) {
    pushed.push_back(h.now);
    h.push(i);
    h.advance_to(h.now + 100us);
  }
  h.advance_to(h.now + 1s);
  ASSERT_EQ(h.sent.size(), 200u);
  bool some_jitter = false;
  for (std::uint32_t i = 0; i < 200; ++i) {
    EXPECT_EQ(h.sent[i].seq, i);
    EXPECT_GE(h.sent[i].at - pushed[i], 10ms);
    EXPECT_LE(h.sent[i].at - pushed[i], 15ms + 100us * 200);
    some_jitter |= h.sent[i].at - pushed[i] > 10ms;
  }
  EXPECT_TRUE(some_jitter);
  EXPECT_EQ(h.counters.snapshot().delayed, 200u);
}

TEST(UdpFaultPipelineTest, TokenBucketBoundsThroughputAndTailDropsBeyondTheQueue) {
  constexpr std::uint64_t kRate = 1'000'000;  // bytes/s
  constexpr std::size_t kSize = 1000;
  UdpFaults f;
  f.rate_bytes_per_sec = kRate;
  f.queue_limit_bytes = 10 * kSize;
  Harness h(1, f);
  // Offer twice the rate for one second.
  for (std::uint32_t i = 0; i < 2000; ++i) {
    h.push(i, kSize);
    EXPECT_LE(h.pipe.queued_bytes(), f.queue_limit_bytes);
    h.advance_to(h.now + 500us);
  }
  h.advance_to(h.now + 1s);
  std::size_t bytes = 0;
  for (const Sent& s : h.sent) {
    bytes += s.size;
    const double allowed = static_cast<double>(UdpFaultPipeline::kBurstBytes + kSize) +
                           std::chrono::duration<double>(s.at - h.t0).count() * kRate +
                           1.0;  // floating-point rounding: the bucket runs exactly at the bound
    ASSERT_LE(static_cast<double>(bytes), allowed);
  }
  const auto c = h.counters.snapshot();
  EXPECT_GT(c.overflowed, 900u);
  EXPECT_EQ(c.overflowed, c.dropped);
  EXPECT_EQ(h.sent.size() + c.dropped, 2000u);
  EXPECT_GE(bytes, kRate * 95 / 100);  // about one second's worth got through
}

TEST(UdpFaultPipelineTest, BlackholeDropsWhatIsQueuedAndEverythingAfter) {
  UdpFaults f;
  f.delay = 10ms;
  Harness h(1, f);
  for (std::uint32_t i = 0; i < 5; ++i)
    h.push(i);
  f.blackhole = true;
  h.pipe.configure(f, h.now);
  EXPECT_EQ(h.pipe.queued_bytes(), 0u);
  EXPECT_FALSE(h.pipe.next_wake());
  h.push(5);
  h.advance_to(h.now + 1s);
  EXPECT_TRUE(h.sent.empty());
  EXPECT_EQ(h.counters.snapshot().dropped, 6u);
}

// A path MTU: datagrams above it vanish (counted as too big), those at or below it pass in
// order; lowering it mid-run (a route change) applies from the next datagram.
TEST(UdpFaultPipelineTest, DatagramsAboveTheMaxSizeAreDroppedOthersPass) {
  UdpFaults f;
  f.max_datagram_bytes = 1400;
  Harness h(1, f);
  h.push(0, 1200);
  h.push(1, 1400);
  h.push(2, 1401);
  h.push(3, 1452);
  f.max_datagram_bytes = 1300;
  h.pipe.configure(f, h.now);
  h.push(4, 1400);
  h.push(5, 1300);
  h.advance_to(h.now + 1s);
  EXPECT_EQ(h.seqs(), (std::vector<std::uint32_t>{0, 1, 5}));
  const auto c = h.counters.snapshot();
  EXPECT_EQ(c.too_big, 3u);
  EXPECT_EQ(c.dropped, 3u);
}

TEST(UdpFaultPipelineTest, HoldsAreBoundedSoMemoryIs) {
  UdpFaults f;
  f.reorder = 1.0;
  f.reorder_gap = 1000;
  f.reorder_hold = 0us;
  Harness h(1, f);
  for (std::uint32_t i = 0; i < 1000; ++i)
    h.push(i, 100);
  EXPECT_EQ(h.counters.snapshot().reordered, UdpFaultPipeline::kMaxHeldDatagrams);
  EXPECT_LE(h.pipe.queued_bytes(), UdpFaultPipeline::kMaxHeldDatagrams * 100);
}

}  // namespace
