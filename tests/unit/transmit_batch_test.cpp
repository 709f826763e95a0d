// TransmitBatch: the caller's reusable buffer poll_transmit fills.
#include <gtest/gtest.h>

#include "core/flow.hpp"
#include "wire/transmit_batch.hpp"

namespace rendr::wire {
namespace {

OutFrame frame_of(std::size_t header_bytes) {
  OutFrame f;
  f.header_size = static_cast<std::uint8_t>(header_bytes);
  return f;
}

TEST(TransmitBatch, RoomShrinksByEachFrameAndNeverUnderflows) {
  TransmitBatch b(100);
  b.push(frame_of(60));
  EXPECT_EQ(b.room(), 40u);
  b.push(frame_of(60));  // the last frame may overshoot the budget
  EXPECT_EQ(b.room(), 0u);
  EXPECT_EQ(b.bytes(), 120u);
  EXPECT_EQ(b.frame_count(), 2u);
}

TEST(TransmitBatch, PacketsGroupTheFramesPushedAfterTheyBegin) {
  TransmitBatch b(10'000);
  EXPECT_TRUE(b.packets().empty());
  b.begin_packet(7, 100);
  b.push(frame_of(30));
  b.push(frame_of(50));
  EXPECT_EQ(b.packet_room(), 20u);
  b.begin_packet(8, 100);  // closes packet 7
  b.push(frame_of(90));
  b.end_packet();
  EXPECT_EQ(b.packet_room(), 0u);
  b.push(frame_of(5));  // outside any packet (a stream carrier's write has none)
  ASSERT_EQ(b.packets().size(), 2u);
  EXPECT_EQ(b.packets()[0].number, 7u);
  EXPECT_EQ(b.packets()[0].frame_count, 2u);
  EXPECT_EQ(b.packets()[0].bytes, 80u);
  EXPECT_EQ(b.frames_of(b.packets()[1]).size(), 1u);
  EXPECT_EQ(b.frames_of(b.packets()[1])[0].size(), 90u);
  b.reset(100);
  EXPECT_TRUE(b.packets().empty());
  EXPECT_FALSE(b.packet_open());
}

TEST(TransmitBatch, ResetKeepsTheStorageSoRefillingAllocatesNothing) {
  TransmitBatch b(1 << 20);
  for (int i = 0; i < 50; ++i)
    b.push(frame_of(10));
  const OutFrame* storage = b.frames().data();
  b.reset(1 << 20);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.room(), std::size_t{1} << 20);
  for (int i = 0; i < 50; ++i)
    b.push(frame_of(10));
  EXPECT_EQ(b.frames().data(), storage);  // same slots: no reallocation
}

// Decodes every frame of `batch` and hands it to `to` as arriving on `id`.
void deliver(const TransmitBatch& batch, core::Flow& to, core::PathId id, core::Time now) {
  for (const OutFrame& f : batch.frames()) {
    std::vector<Byte> bytes(f.header_bytes().begin(), f.header_bytes().end());
    bytes.insert(bytes.end(), f.payload.bytes().begin(), f.payload.bytes().end());
    Frame frame;
    ASSERT_EQ(decode(bytes, frame).error, DecodeError::none);
    to.on_frame(id, frame, Slice{}, now);
  }
}

// The core fills the caller's batch only while it has room: a flow with a megabyte to send
// stops at the batch's budget, overshooting by less than one DATA frame.
TEST(TransmitBatch, PollTransmitStopsAtTheRoom) {
  core::FlowConfig config;
  const core::Time t0{std::chrono::seconds(1000)};
  auto client = core::Flow::make_client(config, t0);
  const core::PathId id = client->add_path(t0);
  client->on_path_connected(id, t0);
  TransmitBatch b(1 << 20);
  ASSERT_TRUE(client->poll_transmit(id, t0, b));  // the OPEN
  std::vector<Byte> open_bytes(b.frames()[0].header_bytes().begin(),
                               b.frames()[0].header_bytes().end());
  Frame open;
  ASSERT_EQ(decode(open_bytes, open).error, DecodeError::none);
  Status status{};
  auto server = core::Flow::make_server(config, std::get<Open>(open.body), id, t0, status);
  ASSERT_NE(server, nullptr);
  b.reset(1 << 20);
  ASSERT_TRUE(server->poll_transmit(id, t0, b));  // the OPEN_ACK
  deliver(b, *client, id, t0);
  ASSERT_EQ(client->state(), core::FlowState::established);

  const std::vector<Byte> data(1 << 20, Byte{7});
  ASSERT_EQ(client->write(data, t0), data.size());
  constexpr std::size_t kRoom = 100 * 1024;
  b.reset(kRoom);
  ASSERT_TRUE(client->poll_transmit(id, t0, b));
  EXPECT_GE(b.bytes(), kRoom);
  EXPECT_LT(b.bytes(), kRoom + config.max_data_payload + 64);
  EXPECT_EQ(b.room(), 0u);
}

}  // namespace
}  // namespace rendr::wire
