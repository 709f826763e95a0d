// StreamPayload: the byte stream behind the Payload interface (send side, receive side, ACKs).
#include <gtest/gtest.h>

#include <vector>

#include "core/memory_budget.hpp"
#include "core/stream_payload.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};

FlowConfig small_config() {
  FlowConfig c;
  c.send_buffer = 4096;
  c.recv_window = 4096;
  c.max_data_payload = 1024;
  c.ack_every_bytes = 2048;
  c.max_ack_delay = 2ms;
  return c;
}

// A DATA frame whose payload lives in its own block, as a carrier delivers it.
struct Arriving {
  wire::Slice backing;
  wire::Data data;
  Arriving(std::uint64_t offset, std::size_t size, wire::Byte fill = 1) {
    const std::vector<wire::Byte> bytes(size, fill);
    backing = wire::Slice::copy_of(bytes);
    data = wire::Data{offset, backing.bytes()};
  }
};

TEST(StreamPayload, SendsOnlyWithinThePeersWindow) {
  StreamPayload s(small_config());
  const std::vector<wire::Byte> bytes(3000, 9);
  EXPECT_EQ(s.write(bytes), 3000u);
  EXPECT_EQ(s.window_end(), 0u);  // the peer has not opened a window yet
  s.raise_peer_limit(2000);
  EXPECT_EQ(s.window_end(), 2000u);
  s.raise_peer_limit(100);  // a limit never shrinks
  EXPECT_EQ(s.peer_limit(), 2000u);
  EXPECT_EQ(s.frame_payload(0, 2000, 1024).size(), 1024u);
}

TEST(StreamPayload, AckOfBytesNeverSentIsRefusedAndChangesNothing) {
  StreamPayload s(small_config());
  const std::vector<wire::Byte> bytes(3000, 9);
  s.write(bytes);
  s.sent_new_to(1000);
  EXPECT_FALSE(s.on_ack(wire::Ack{2000, 8000, false}));
  EXPECT_EQ(s.acked(), 0u);
  EXPECT_EQ(s.peer_limit(), 0u);
  EXPECT_TRUE(s.on_ack(wire::Ack{600, 8000, false}));
  EXPECT_EQ(s.acked(), 600u);
  EXPECT_EQ(s.write_capacity(), 4096u - 2400u);  // acknowledged bytes free their room
}

TEST(StreamPayload, CloseEndsWritingAndTheFinIsAcknowledgedWithTheLastByte) {
  StreamPayload s(small_config());
  const std::vector<wire::Byte> bytes(100, 9);
  s.write(bytes);
  s.close();
  EXPECT_EQ(s.fin_offset(), std::optional<std::uint64_t>(100));
  EXPECT_EQ(s.write(bytes), 0u);
  EXPECT_EQ(s.write_capacity(), 0u);
  s.sent_new_to(100);
  EXPECT_TRUE(s.on_ack(wire::Ack{100, 4096, true}));
  EXPECT_TRUE(s.fin_acked());
}

TEST(StreamPayload, ReceivesInOrderCountsDuplicatesAndAcksThemAtOnce) {
  StreamPayload s(small_config());
  FlowStats counters;
  Arriving second(1000, 1000), first(0, 1000);
  EXPECT_FALSE(s.on_data(second.data, second.backing, counters, t0));  // a hole before it
  EXPECT_TRUE(s.on_data(first.data, first.backing, counters, t0));
  EXPECT_EQ(s.delivered(), 2000u);
  EXPECT_EQ(s.readable_bytes(), 2000u);
  EXPECT_FALSE(s.ack_due_now());  // below ack_every_bytes: may wait max_ack_delay
  EXPECT_EQ(s.ack_timer(), std::optional<Time>(t0 + 2ms));
  Arriving again(0, 500);
  s.on_data(again.data, again.backing, counters, t0);
  EXPECT_EQ(counters.recv_dups, 1u);
  EXPECT_TRUE(s.ack_due_now());  // a duplicate means our ACK was lost: answer at once
  const wire::Ack ack = s.make_ack();
  EXPECT_EQ(ack.delivered, 2000u);
  EXPECT_EQ(ack.limit, 4096u);
  s.ack_sent(ack, true);
  EXPECT_FALSE(s.ack_pending());
}

TEST(StreamPayload, DataBeyondTheWindowIsCountedAndNeverBuffered) {
  StreamPayload s(small_config());
  FlowStats counters;
  Arriving beyond(4096, 100), straddling(4000, 200);
  EXPECT_FALSE(s.on_data(beyond.data, beyond.backing, counters, t0));
  EXPECT_EQ(counters.protocol_errors, 1u);
  EXPECT_EQ(s.received_buffered(), 0u);
  s.on_data(straddling.data, straddling.backing, counters, t0);
  EXPECT_EQ(counters.protocol_errors, 2u);
  EXPECT_EQ(s.received_buffered(), 96u);  // only what fits below the limit
}

TEST(StreamPayload, DelayedAckFallsDueAtItsTimer) {
  StreamPayload s(small_config());
  FlowStats counters;
  Arriving a(0, 10);
  s.on_data(a.data, a.backing, counters, t0);
  s.on_timer(t0 + 1ms);
  EXPECT_FALSE(s.ack_due_now());
  s.on_timer(t0 + 2ms);
  EXPECT_TRUE(s.ack_due_now());
  EXPECT_EQ(s.ack_timer(), std::nullopt);
}

TEST(StreamPayload, ReadingAQuarterOfTheWindowOwesTheSenderAnUpdate) {
  StreamPayload s(small_config());
  FlowStats counters;
  Arriving a(0, 1024);
  s.on_data(a.data, a.backing, counters, t0);
  std::vector<wire::Byte> out(1023);
  s.read(out);
  EXPECT_FALSE(s.window_update_due());
  s.read(wire::MutableBytes(out.data(), 1));
  EXPECT_TRUE(s.window_update_due());
}

TEST(StreamPayload, FinContradictingTheStreamIsAProtocolError) {
  StreamPayload s(small_config());
  FlowStats counters;
  Arriving a(0, 100);
  s.on_data(a.data, a.backing, counters, t0);
  EXPECT_FALSE(s.on_fin(50, counters, t0));  // below what was delivered
  EXPECT_EQ(counters.protocol_errors, 1u);
  EXPECT_TRUE(s.on_fin(100, counters, t0));
  EXPECT_FALSE(s.on_fin(120, counters, t0));  // a second, different end
  EXPECT_EQ(counters.protocol_errors, 2u);
  EXPECT_TRUE(s.peer_end_delivered());
  EXPECT_FALSE(s.eof());  // not read yet
  std::vector<wire::Byte> out(100);
  s.read(out);
  EXPECT_TRUE(s.eof());
}

TEST(StreamPayload, CompleteOnlyWhenBothEndsAreAcknowledged) {
  StreamPayload s(small_config());
  FlowStats counters;
  s.close();  // nothing written: our end is offset 0
  EXPECT_TRUE(s.on_ack(wire::Ack{0, 4096, true}));
  EXPECT_FALSE(s.complete());  // the peer's end has not arrived
  EXPECT_TRUE(s.on_fin(0, counters, t0));
  EXPECT_FALSE(s.complete());  // ...and we have not acknowledged it
  const wire::Ack ack = s.make_ack();
  EXPECT_TRUE(ack.fin_received);
  s.ack_sent(ack, true);
  EXPECT_TRUE(s.complete());
}

// DATA far beyond the window is refused, and must not count as the peer using its grant: else
// one hostile frame makes the next ACK reserve the flow's whole share of the budget.
TEST(StreamPayload, RefusedDataDoesNotGrowTheBudgetedGrant) {
  FlowConfig config;
  config.memory_budget = std::make_shared<MemoryBudget>(std::size_t{1} << 30);
  StreamPayload s(config);
  const std::uint64_t first = s.open_window();
  FlowStats counters;
  const Arriving far(std::uint64_t{1} << 40, 10);
  s.on_data(far.data, far.backing, counters, t0);
  EXPECT_EQ(counters.protocol_errors, 1u);
  EXPECT_EQ(s.make_ack().limit, first) << config.memory_budget->used() << " bytes reserved";
}

// With a budget, the grant grows only once the peer has used half of it: reads before that
// cannot widen the window, so they must not ask for an ACK that advertises the same limit.
TEST(StreamPayload, BudgetedReadsAskForNoWindowUpdateThatChangesNothing) {
  FlowConfig config;
  config.memory_budget = std::make_shared<MemoryBudget>(std::size_t{1} << 30);
  StreamPayload s(config);
  const std::uint64_t first = s.open_window();
  FlowStats counters;
  std::uint64_t offset = 0;
  int useless = 0;
  for (int i = 0; i < 10; ++i) {
    const Arriving d(offset, 100);
    s.on_data(d.data, d.backing, counters, t0);
    offset += 100;
    std::vector<wire::Byte> out(100);
    ASSERT_EQ(s.read(out), 100u);
    if (s.window_update_due()) {
      const wire::Ack ack = s.make_ack();
      useless += ack.limit == first ? 1 : 0;
      s.ack_sent(ack, true);
    }
  }
  EXPECT_EQ(useless, 0);
  // Once the peer has used its grant, reading half of it does open the window.
  const Arriving bulk(offset, static_cast<std::size_t>(first - offset));
  s.on_data(bulk.data, bulk.backing, counters, t0);
  std::vector<wire::Byte> out(static_cast<std::size_t>(first / 2 - offset));
  ASSERT_EQ(s.read(out), out.size());
  EXPECT_TRUE(s.window_update_due());
  EXPECT_GT(s.make_ack().limit, first);
}

}  // namespace
}  // namespace rendr::core
