// Writes the seed corpus of decode_fuzz into the directory given as argv[1]:
// one valid frame of each type, edge-value variants and a few multi-frame streams.
// Build with `cmake --build <dir> --target decode_fuzz_gen_corpus`; the output is committed
// in tests/fuzz/corpus/.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "wire/frame.hpp"

using namespace rendr::wire;

namespace {

using Buf = std::vector<Byte>;

template <std::size_t N>
std::array<Byte, N> pattern(Byte seed) {
  std::array<Byte, N> a{};
  for (std::size_t i = 0; i < N; ++i)
    a[i] = static_cast<Byte>(seed + i * 29);
  return a;
}

Buf enc(std::initializer_list<Frame> frames) {
  Buf out;
  for (const Frame& f : frames) {
    Buf b(encoded_size(f));
    encode(f, b);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const auto put = [&](const std::string& name, const Buf& b) {
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };

  Open open{kVersion, pattern<kFlowIdSize>(1),   ModeCode::race,        StreamKind::stream, 1,
            8 << 20,  pattern<kKeyShareSize>(2), pattern<kNonceSize>(3)};
  OpenAck open_ack{Status::ok, 8 << 20, pattern<kKeyShareSize>(4), pattern<kNonceSize>(5),
                   pattern<kMacSize>(6)};
  Join join{kVersion, open.flow_id, 2, 17, pattern<kNonceSize>(7), pattern<kMacSize>(8)};
  JoinAck join_ack{Status::ok, 123456, pattern<kNonceSize>(10), pattern<kMacSize>(9)};
  Proof proof{pattern<kMacSize>(11)};
  const Buf payload = [] {
    Buf p(100);
    for (std::size_t i = 0; i < p.size(); ++i)
      p[i] = static_cast<Byte>('a' + i % 26);
    return p;
  }();
  const ConstBytes pl(payload);

  put("open", enc({Frame{0, open}}));
  put("open_ack", enc({Frame{0, open_ack}}));
  put("join", enc({Frame{0, join}}));
  put("join_ack", enc({Frame{0, join_ack}}));
  put("proof", enc({Frame{0, proof}}));
  put("join_ack_replayed", enc({Frame{0, JoinAck{Status::replayed, 0, {}}}}));
  put("data", enc({Frame{0, Data{0, pl.first(16)}}}));
  put("data_empty", enc({Frame{0, Data{kMaxVarint, {}}}}));
  put("data_large_offset", enc({Frame{0, Data{(std::uint64_t{1} << 30) + 5, pl}}}));
  put("ack", enc({Frame{0, Ack{16384, 16384 + (8 << 20), false}}}));
  put("ack_fin", enc({Frame{0, Ack{100, 200, true}}}));
  put("fin", enc({Frame{0, Fin{16383}}}));
  put("close", enc({Frame{0, Close{CloseCode::protocol_error, "bad frame"}}}));
  put("close_budget", enc({Frame{0, Close{CloseCode::migration_budget_exceeded, ""}}}));
  put("ping", enc({Frame{0, Ping{63, 0x0102030405060708ull}}}));
  put("pong", enc({Frame{0, Pong{64, 0xfffffffffffffffeull}}}));
  put("mode", enc({Frame{0, Mode{3, ModeCode::bond}}}));
  put("extension", Buf{0xc5, 0x07, 0x04, 0xde, 0xad, 0xbe, 0xef});
  {
    AckRanges one;
    one.ack_delay_us = 25000;
    one.ranges = {{0, 1000}};
    put("ack_ranges", enc({Frame{0, one}}));
    AckRanges gapped;
    gapped.ack_delay_us = 7;
    for (std::uint64_t i = 0; i < AckRanges::kMaxRanges; ++i)
      gapped.ranges.push_back(PacketRange{100000 - i * 100 - 40, 100000 - i * 100});
    put("ack_ranges_max", enc({Frame{0, gapped}}));
  }
  put("path_challenge", enc({Frame{0, PathChallenge{{1, 2, 3, 4, 5, 6, 7, 8}}}}));
  put("path_response", enc({Frame{0, PathResponse{{8, 7, 6, 5, 4, 3, 2, 1}}}}));
  {
    RetryToken token{};
    for (std::size_t i = 0; i < token.size(); ++i)
      token[i] = static_cast<Byte>(i + 1);
    put("retry", enc({Frame{0, Retry{token}}}));
  }
  put("multi_handshake", enc({Frame{0, open}, Frame{0, open_ack}, Frame{0, proof},
                              Frame{0, Mode{1, ModeCode::prime}}}));
  put("multi_join", enc({Frame{0, join}, Frame{0, join_ack}, Frame{0, proof}, Frame{0, Ping{1, 2}},
                         Frame{0, Pong{1, 2}}}));
  put("multi_proof_data", enc({Frame{0, proof}, Frame{0, Data{0, pl.first(24)}}}));
  {
    Buf s = enc({Frame{0, Data{0, pl.first(40)}}, Frame{0, Data{40, pl.subspan(40)}},
                 Frame{0, Ack{100, 1000, false}}});
    const Buf ext{0xfe, 0x00, 0x02, 0x01, 0x02};
    s.insert(s.end(), ext.begin(), ext.end());
    const Buf tail = enc({Frame{0, Fin{100}}, Frame{0x01, Ack{0, 100, true}},
                          Frame{0, Close{CloseCode::normal, "bye"}}});
    s.insert(s.end(), tail.begin(), tail.end());
    put("multi_stream", s);
  }
  {
    Buf s = enc({Frame{0, Ping{9, 9}}});
    const Buf partial = enc({Frame{0, Data{7, pl.first(30)}}});
    s.insert(s.end(), partial.begin(), partial.end() - 5);
    put("multi_partial_tail", s);
  }
  return 0;
}
