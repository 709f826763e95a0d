// Receive memory under hostile framing (defect 5): a peer that sends small out-of-order DATA
// frames, each followed by duplicates that fill the rest of a read block, must not make the
// listener hold a whole read block per small frame. Its flow's receive memory stays within a
// small multiple of the window, and a healthy flow on the same listener carries on intact.
#include <atomic>
#include <memory>

#include "core/crypto.hpp"
#include "core/recv_buffer.hpp"
#include "harness.hpp"

namespace rendr::itest {
namespace {

constexpr std::size_t kWindow = 1 * MiB;
constexpr std::size_t kFrame = 4096;
constexpr std::size_t kReadBlock = 256 * 1024;  // the TCP carrier's read block

TEST_F(IntegrationTest, SmallOutOfOrderFramesCannotPinReadBlocks) {
  ListenOptions options;
  options.options.recv_window = kWindow;
  listen(options);
  Conn client, server;
  ASSERT_TRUE(connect_all_paths(dialer(loopback_paths({listener_.port()})), client, server));
  StreamWriter upload(client, WriteSpec{.seed = 3});
  StreamReader upload_reader(server, ReadSpec{.seed = 3});

  wire::Open open{.flow_id = {}, .path_id = 1, .window = kWindow};
  core::crypto::random_bytes(open.flow_id);
  core::crypto::random_bytes(open.nonce);
  RawPeer hostile(listener_.port());
  ASSERT_TRUE(open_and_prove(hostile, open, scaled(2s)));
  Conn hostile_flow = listener_.accept();

  // Every other 4 KiB of the window after a hole at 0, each frame followed by duplicates of
  // itself up to a read block's worth of bytes.
  const std::vector<std::uint8_t> payload(kFrame, 0x5a);
  std::size_t kept = 0;
  for (std::uint64_t offset = kFrame; offset + kFrame <= kWindow; offset += 2 * kFrame) {
    const Bytes data = encode_frame(
        wire::Frame{.flags = 0, .body = wire::Data{.offset = offset, .payload = payload}});
    Bytes burst;
    while (burst.size() + data.size() <= kReadBlock)
      burst.insert(burst.end(), data.begin(), data.end());
    hostile.send(burst);
    kept += kFrame;
  }
  ASSERT_TRUE(wait_until([&] { return hostile_flow.stats().recv_buffered == kept; }, scaled(10s)))
      << "buffered " << hostile_flow.stats().recv_buffered << " of " << kept;
  const ConnStats stats = hostile_flow.stats();
  EXPECT_LE(stats.recv_memory,
            core::RecvBuffer::kMaxWaste * kWindow + core::RecvBuffer::kCompactSlack)
      << "pinned " << stats.recv_memory << " bytes for " << stats.recv_buffered << " buffered";

  const std::uint64_t seen = upload_reader.progress();
  EXPECT_TRUE(wait_until([&] { return upload_reader.progress() >= seen + 1 * MiB; }, scaled(5s)))
      << "the healthy flow stalled";
  upload.stop();
  finish_transfer(upload, upload_reader, scaled(20s));
}

}  // namespace
}  // namespace rendr::itest

namespace rendr::itest {
namespace {

constexpr std::size_t kBudget = 256 * 1024;

// The listener's memory budget: a flow's peer can fill only the window the budget granted (its
// fair share), a new flow is refused while the budget is used up, and every byte still arrives
// once the application reads.
TEST_F(IntegrationTest, MemoryBudgetIsBackPressureNotLoss) {
  ListenOptions options;
  options.options.recv_window = kWindow;
  options.memory_budget = kBudget;
  listen(options);
  Conn client, server;
  ASSERT_TRUE(connect_all_paths(dialer(loopback_paths({listener_.port()})), client, server));
  StreamWriter upload(client, WriteSpec{.seed = 5, .bytes = 1 * MiB});

  // Nobody reads: the peer fills the window the budget granted (the fair share: the whole
  // budget, for one flow) and no more.
  ASSERT_TRUE(wait_until([&] { return server.stats().recv_buffered >= kBudget; }, scaled(5s)));
  EXPECT_EQ(server.stats().recv_buffered, kBudget) << "the peer went beyond the budget";

  Dialer refused = dialer(loopback_paths({listener_.port()}));
  refused.dial_timeout = 1s;
  std::error_code ec;
  Conn none = refused.dial(ec);
  EXPECT_TRUE(ec) << "a flow opened with the budget used up";
  EXPECT_GE(listener_.stats().rejected_memory, 1u);
  EXPECT_EQ(server.stats().recv_buffered, kBudget) << "the peer went beyond the budget";

  std::atomic<std::uint64_t> most_buffered{0};
  Conn server_handle = server;
  StreamReader download(server, ReadSpec{.seed = 5, .after_read = [&](std::uint64_t) {
                                           most_buffered = std::max<std::uint64_t>(
                                               most_buffered, server_handle.stats().recv_buffered);
                                         }});
  finish_transfer(upload, download, scaled(20s));
  EXPECT_LE(most_buffered.load(), kBudget);
}

}  // namespace
}  // namespace rendr::itest
