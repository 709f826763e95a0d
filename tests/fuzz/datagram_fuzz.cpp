// libFuzzer target for the udpflow datagram codec (src/wire/datagram.*).
//
// The input is one received datagram. parse_header must agree with peek_dcid and, on success,
// re-encoding the parsed header must give the datagram's first bytes. A protected packet is
// opened under the fuzz keys (datagram_fuzz_keys.hpp) with its pn reconstructed as the first
// packet of a path; if it opens, sealing the plaintext again with the same dcid and pn must give
// back exactly the input (so nothing but the sealed bytes can open). Any violation aborts.
// Built with clang -fsanitize=fuzzer (target datagram_fuzz) and into datagram_fuzz_replay.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "datagram_fuzz_keys.hpp"
#include "wire/datagram.hpp"

namespace {

using namespace rendr::wire;
using namespace rendr::wire::datagram;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "datagram_fuzz: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exact-size copy: ASan flags any read past the datagram.
  std::vector<Byte> datagram(data, data + size);
  PacketHeader header;
  const PacketError error = parse_header(datagram, header);
  check(peek_dcid(datagram).has_value() == (error == PacketError::none),
        "peek_dcid disagrees with parse_header");
  if (error != PacketError::none) return 0;
  check(header.size <= size, "header longer than the datagram");

  std::vector<Byte> again(header.size);
  const std::size_t written =
      header.kind == PacketKind::handshake
          ? encode_handshake_header(header.dcid, header.scid, header.truncated_pn, again)
          : encode_protected_header(header.dcid, header.truncated_pn, again);
  check(written == header.size, "re-encoded header has another size");
  check(std::equal(again.begin(), again.end(), datagram.begin()), "header does not round-trip");
  if (header.kind != PacketKind::protected_) return 0;

  static PacketProtector receiver(rendr::fuzz::datagram_fuzz_keys());
  static PacketProtector sender(rendr::fuzz::datagram_fuzz_keys());
  const std::uint64_t pn = reconstruct_pn(std::nullopt, header.truncated_pn);
  MutableBytes frames;
  if (receiver.open(header, pn, datagram, frames) != PacketError::none) return 0;
  check(frames.size() + kProtectedHeaderSize + kTagSize == size, "opened payload size");
  std::vector<Byte> resealed(size);
  std::copy(frames.begin(), frames.end(), resealed.begin() + kProtectedHeaderSize);
  check(sender.seal(header.dcid, pn, resealed, frames.size()) == size, "reseal size");
  check(std::equal(resealed.begin(), resealed.end(), data),
        "an opened packet is not what sealing gives");
  return 0;
}
