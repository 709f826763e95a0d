// Pacer: a token bucket at the pacing rate, a burst of about ten datagrams for GSO, bounded
// by the window.
#include "core/recovery/pacer.hpp"

#include <gtest/gtest.h>

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};
constexpr std::size_t kMss = 1200;

double ms_after(Time t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

// Sends as many datagrams as the pacer allows at `now`.
int send_burst(Pacer& p, Time now) {
  int n = 0;
  while (n < 100000) {
    const auto at = p.next_send_time();
    if (at && *at > now) break;
    p.on_sent(kMss, now);
    ++n;
  }
  return n;
}

TEST(Pacer, FreshBucketLetsABurstOfTenGoAtOnce) {
  Pacer p(kMss, 10);
  p.set_rate(1'200'000, 100 * kMss, t0);  // 1.2 MB/s: one datagram per ms
  EXPECT_EQ(p.capacity(), 10 * kMss);
  EXPECT_EQ(send_burst(p, t0), 10);
  // Then one datagram per millisecond.
  ASSERT_TRUE(p.next_send_time());
  EXPECT_NEAR(ms_after(*p.next_send_time()), 1.0, 0.01);
  EXPECT_EQ(send_burst(p, t0 + 1ms), 1);
  EXPECT_EQ(send_burst(p, t0 + 1500us), 0);
  EXPECT_EQ(send_burst(p, t0 + 2ms), 1);
}

TEST(Pacer, SendsAtTheRateOverASecond) {
  Pacer p(kMss, 10);
  p.set_rate(12'000'000, 1000 * kMss, t0);  // 10 datagrams per ms
  std::uint64_t bytes = 0;
  for (Time t = t0; t < t0 + 1s; t += 100us)
    bytes += static_cast<std::uint64_t>(send_burst(p, t)) * kMss;
  // The rate for a second, plus the first burst (2 ms at this rate = 24000 B).
  EXPECT_NEAR(static_cast<double>(bytes), 12'000'000.0 + 24000.0, 2.0 * kMss);
}

TEST(Pacer, IdleTimeRefillsOnlyUpToTheBurst) {
  Pacer p(kMss, 10);
  p.set_rate(1'200'000, 100 * kMss, t0);
  send_burst(p, t0);
  // A long idle period does not bank more than one burst.
  EXPECT_EQ(p.tokens(t0 + 10s), p.capacity());
  EXPECT_EQ(send_burst(p, t0 + 10s), 10);
}

TEST(Pacer, HighRatesBurstTwoMillisecondsButNeverMoreThanTheWindow) {
  Pacer p(kMss, 10);
  p.set_rate(120'000'000, 1000 * kMss, t0);  // 100 datagrams per ms
  EXPECT_EQ(p.capacity(), 240'000u);         // 2 ms
  p.set_rate(120'000'000, 50 * kMss, t0);
  EXPECT_EQ(p.capacity(), 50 * kMss);
  p.set_rate(1000, 1, t0);  // never below one datagram
  EXPECT_EQ(p.capacity(), kMss);
}

TEST(Pacer, ZeroRateDoesNotPace) {
  Pacer p(kMss, 10);
  p.set_rate(0, 100 * kMss, t0);
  for (int i = 0; i < 1000; ++i)
    p.on_sent(kMss, t0);
  EXPECT_EQ(p.next_send_time(), std::nullopt);
}

TEST(Pacer, LowerRateSlowsTheNextSend) {
  Pacer p(kMss, 10);
  p.set_rate(1'200'000, 100 * kMss, t0);
  send_burst(p, t0);
  p.set_rate(120'000, 100 * kMss, t0);  // ten times slower: 10 ms per datagram
  ASSERT_TRUE(p.next_send_time());
  EXPECT_NEAR(ms_after(*p.next_send_time()), 10.0, 0.01);
}

}  // namespace
}  // namespace rendr::core::recovery
