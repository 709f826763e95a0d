// udpflow packet protection cost: AES-128-GCM seal and open in place, per packet size.
#include <benchmark/benchmark.h>

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

BENCHMARK(BM_Seal)->Arg(64)->Arg(1200)->Arg(1452)->Arg(16384);
BENCHMARK(BM_SealOpen)->Arg(1200)->Arg(1452);

}  // namespace
}  // namespace rendr::wire::datagram
