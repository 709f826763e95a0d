// Writes the seed corpus of datagram_fuzz into the directory given as argv[1]: handshake packets
// carrying frames, protected packets sealed under the fuzz keys (empty, small, 1200 bytes, a pn
// past 2^32 in the low bits), and short and unknown-kind datagrams.
// Build with `cmake --build <dir> --target datagram_fuzz_gen_corpus`; the output is committed
// in tests/fuzz/datagram_corpus/.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "datagram_fuzz_keys.hpp"
#include "wire/datagram.hpp"
#include "wire/frame.hpp"

using namespace rendr::wire;
using namespace rendr::wire::datagram;

namespace {

using Buf = std::vector<Byte>;

Buf ping_frames(std::size_t count) {
  Buf out;
  for (std::size_t i = 0; i < count; ++i) {
    const Frame f{0, Ping{i, 1000 + i}};
    Buf b(encoded_size(f));
    encode(f, b);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

Buf handshake(ConnectionId dcid, ConnectionId scid, std::uint64_t pn, const Buf& frames) {
  Buf out(kHandshakeHeaderSize);
  encode_handshake_header(dcid, scid, pn, out);
  out.insert(out.end(), frames.begin(), frames.end());
  return out;
}

Buf sealed(ConnectionId dcid, std::uint64_t pn, const Buf& frames) {
  static PacketProtector sender(rendr::fuzz::datagram_fuzz_keys());
  Buf out(kProtectedHeaderSize + frames.size() + kTagSize);
  std::copy(frames.begin(), frames.end(), out.begin() + kProtectedHeaderSize);
  sender.seal(dcid, pn, out, frames.size());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  Buf large = ping_frames(1);
  large.resize(1200 - kProtectedHeaderSize - kTagSize, 0);  // PING, then zero padding
  const std::vector<std::pair<std::string, Buf>> seeds = {
      {"handshake_ping", handshake(0x1122334455667788, 0x99aabbccddeeff00, 0, ping_frames(1))},
      {"handshake_empty", handshake(1, 2, 3, {})},
      {"protected_empty", sealed(0x0102030405060708, 0, {})},
      {"protected_pings", sealed(0x0102030405060708, 7, ping_frames(3))},
      {"protected_1200", sealed(0xfedcba9876543210, 0xfffffffe, large)},
      {"short", Buf{0x02, 1, 2, 3}},
      {"unknown_kind", Buf(40, 0x7f)},
  };
  for (const auto& [name, bytes] : seeds) {
    std::ofstream f(std::string(argv[1]) + "/" + name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  }
  return 0;
}
