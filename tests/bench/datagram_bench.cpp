// udpflow packet protection cost: AES-128-GCM seal and open in place, per packet size, and a
// packet sealed from its frames in place (after copying them) or gathered (out of place).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "wire/datagram.hpp"

namespace rendr::wire::datagram {
namespace {

PacketKeys bench_keys() {
  PacketKeys keys;
  for (std::size_t i = 0; i < keys.key.size(); ++i)
    keys.key[i] = static_cast<Byte>(i * 11 + 3);
  for (std::size_t i = 0; i < keys.iv.size(); ++i)
    keys.iv[i] = static_cast<Byte>(i * 5 + 1);
  return keys;
}

// The datagram size is the argument; the payload is what remains after header and tag.
std::size_t payload_of(std::int64_t datagram) {
  return static_cast<std::size_t>(datagram) - kProtectedHeaderSize - kTagSize;
}

void BM_Seal(benchmark::State& state) {
  PacketProtector sender(bench_keys());
  std::vector<Byte> packet(static_cast<std::size_t>(state.range(0)), 0x5a);
  std::uint64_t pn = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sender.seal(0x1234, pn++, packet, payload_of(state.range(0))));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// One packet sealed then opened per iteration (both ends' cost); bytes counted once.
void BM_SealOpen(benchmark::State& state) {
  PacketProtector sender(bench_keys()), receiver(bench_keys());
  std::vector<Byte> packet(static_cast<std::size_t>(state.range(0)), 0x5a);
  std::optional<std::uint64_t> largest;
  std::uint64_t pn = 0;
  for (auto _ : state) {
    sender.seal(0x1234, pn++, packet, payload_of(state.range(0)));
    PacketHeader header;
    parse_header(packet, header);
    const std::uint64_t full = reconstruct_pn(largest, header.truncated_pn);
    MutableBytes frames;
    if (receiver.open(header, full, packet, frames) != PacketError::none) {
      state.SkipWithError("open failed");
      break;
    }
    largest = full;
    benchmark::DoNotOptimize(frames.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// A protected packet as the udpflow carrier builds it: a 13-byte DATA frame header and its
// payload, which lives in the sender's buffer. Range 0 is the datagram size; range 1 the size
// of that buffer, walked packet by packet (1: the same payload every time, hot in L1; 8 MiB:
// each payload read from memory the application wrote earlier, as a bulk stream does).
struct FramedPayloads {
  explicit FramedPayloads(const benchmark::State& state)
      : payload(payload_of(state.range(0)) - header.size()),
        source(std::max<std::size_t>(static_cast<std::size_t>(state.range(1)), payload), 0x5a),
        packet(static_cast<std::size_t>(state.range(0))) {}
  ConstBytes next() {
    if (offset + payload > source.size()) offset = 0;
    const ConstBytes bytes(source.data() + offset, payload);
    offset += payload;
    return bytes;
  }
  std::array<Byte, 13> header{};
  std::size_t payload;
  std::vector<Byte> source;
  std::vector<Byte> packet;
  std::size_t offset = 0;
};

// Before seal_gathered: the frames copied into the datagram, then encrypted in place.
void BM_CopyThenSeal(benchmark::State& state) {
  PacketProtector sender(bench_keys());
  FramedPayloads frames(state);
  std::uint64_t pn = 0;
  for (auto _ : state) {
    const ConstBytes payload = frames.next();
    Byte* at = frames.packet.data() + kProtectedHeaderSize;
    std::memcpy(at, frames.header.data(), frames.header.size());
    std::memcpy(at + frames.header.size(), payload.data(), payload.size());
    benchmark::DoNotOptimize(
        sender.seal(0x1234, pn++, frames.packet, frames.header.size() + payload.size()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// The frames encrypted from where they are straight into the datagram.
void BM_SealGathered(benchmark::State& state) {
  PacketProtector sender(bench_keys());
  FramedPayloads frames(state);
  std::uint64_t pn = 0;
  for (auto _ : state) {
    const std::array<ConstBytes, 2> pieces{ConstBytes(frames.header), frames.next()};
    benchmark::DoNotOptimize(sender.seal_gathered(0x1234, pn++, pieces, frames.packet));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

BENCHMARK(BM_Seal)->Arg(64)->Arg(1200)->Arg(1452)->Arg(16384);
BENCHMARK(BM_CopyThenSeal)->Args({1200, 1})->Args({1200, 8 << 20})->Args({1452, 8 << 20});
BENCHMARK(BM_SealGathered)->Args({1200, 1})->Args({1200, 8 << 20})->Args({1452, 8 << 20});
BENCHMARK(BM_SealOpen)->Arg(1200)->Arg(1452);

}  // namespace
}  // namespace rendr::wire::datagram
