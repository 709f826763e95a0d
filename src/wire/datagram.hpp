#pragma once
// udpflow datagrams: the packet header codec, packet-number truncation and reconstruction, and
// AES-128-GCM packet protection (OpenSSL EVP). Pure: no sockets, no clock. See docs/protocol.md
// §10.
//
//   handshake: kind=0x01 | dcid (8) | scid (8) | pn (4) | frames (clear)
//   protected: kind=0x02 | dcid (8) | pn (4)            | AES-128-GCM(frames) | tag (16)
//
// Connection ids and the truncated packet number are big-endian. A protected packet's AAD is its
// 13 header bytes as sent; its nonce is iv XOR the full 62-bit packet number (right-aligned,
// big-endian), so the truncated pn in the header is authenticated and the full pn is implied.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "wire/bytes.hpp"

namespace rendr::wire::datagram {

// A path's connection id: random 64 bits chosen by the receiver of the packets that carry it.
using ConnectionId = std::uint64_t;

enum class PacketKind : std::uint8_t {
  handshake = 0x01,   // frames in clear: OPEN/OPEN_ACK/JOIN/JOIN_ACK/PROOF, PING/PONG
  protected_ = 0x02,  // every packet after the path's handshake
};

inline constexpr std::size_t kConnectionIdSize = 8;
inline constexpr std::size_t kTruncatedPnSize = 4;
inline constexpr std::size_t kHandshakeHeaderSize = 1 + 2 * kConnectionIdSize + kTruncatedPnSize;
inline constexpr std::size_t kProtectedHeaderSize = 1 + kConnectionIdSize + kTruncatedPnSize;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kKeySize = 16;  // AES-128
inline constexpr std::size_t kIvSize = 12;
// The datagram size every path may use before path-MTU probing raised it.
inline constexpr std::size_t kSafeDatagramSize = 1200;
// Packet numbers are QUIC-sized: at most 2^62 - 1.
inline constexpr std::uint64_t kMaxPacketNumber = (std::uint64_t{1} << 62) - 1;

struct PacketHeader {
  PacketKind kind = PacketKind::handshake;
  ConnectionId dcid = 0;
  ConnectionId scid = 0;  // handshake packets only (0 in protected ones)
  std::uint32_t truncated_pn = 0;
  std::size_t size = 0;  // header bytes: kHandshakeHeaderSize or kProtectedHeaderSize

  friend bool operator==(const PacketHeader&, const PacketHeader&) = default;
};

enum class PacketError {
  none,
  too_short,     // shorter than its header (protected: header + tag)
  unknown_kind,  // first byte is not a packet kind
  auth_failed,   // protected packet whose tag does not verify (tampered, wrong key, wrong pn)
};

std::string_view to_string(PacketError e);

// Parses the header at the front of a datagram. A protected packet must also have room for its
// tag. Never reads outside `datagram`.
PacketError parse_header(ConstBytes datagram, PacketHeader& out);

// The dcid of a datagram that has a well-formed header, for demultiplexing.
std::optional<ConnectionId> peek_dcid(ConstBytes datagram);

// Write a header into `out`; return its size, or 0 if `out` is too small. `pn` is truncated.
std::size_t encode_handshake_header(ConnectionId dcid, ConnectionId scid, std::uint64_t pn,
                                    MutableBytes out);
std::size_t encode_protected_header(ConnectionId dcid, std::uint64_t pn, MutableBytes out);

// RFC 9000 appendix A.3 with a 32-bit truncated packet number: the packet number closest to
// largest_received + 1 whose low 32 bits are `truncated`. nullopt: nothing received yet on this
// path and direction. Correct while the sender keeps fewer than 2^31 packets unacknowledged.
std::uint64_t reconstruct_pn(std::optional<std::uint64_t> largest_received,
                             std::uint32_t truncated);

struct PacketKeys {
  std::array<Byte, kKeySize> key{};
  std::array<Byte, kIvSize> iv{};

  friend bool operator==(const PacketKeys&, const PacketKeys&) = default;
};

// AES-128-GCM under one path-direction's keys. Holds its cipher context and key schedule, so
// sealing and opening allocate nothing per packet. One protector is used by one thread at a
// time (a path's send side or its receive side). It calls OpenSSL's AES-128-GCM provider
// through its public dispatch table rather than through EVP_Cipher*: OpenSSL 3.0's EVP layer
// spends more per 1200-byte packet on parameter lookups than AES-GCM itself (docs/design.md).
class PacketProtector {
 public:
  // Throws std::runtime_error if OpenSSL cannot set the cipher up (never per packet).
  explicit PacketProtector(const PacketKeys& keys);
  ~PacketProtector();
  PacketProtector(PacketProtector&& other) noexcept;
  PacketProtector& operator=(PacketProtector&& other) noexcept;
  PacketProtector(const PacketProtector&) = delete;
  PacketProtector& operator=(const PacketProtector&) = delete;

  // Seals a protected packet in place. `packet` holds, from its start, the kProtectedHeaderSize
  // header room, then `payload_size` bytes of frames, then room for the tag. Writes the header
  // (dcid, truncated pn), encrypts the frames in place and appends the tag. Returns the
  // datagram size (header + payload + tag), or 0 if `packet` is too small or pn is out of range.
  std::size_t seal(ConnectionId dcid, std::uint64_t pn, MutableBytes packet,
                   std::size_t payload_size);

  // Seals a protected packet out of place: writes into `out` the header, the concatenation of
  // `plaintext` encrypted, and the tag, reading each plaintext byte once (no copy into `out`
  // first). The pieces may have any sizes, empty included. A piece may lie exactly where its
  // ciphertext goes (in place), never elsewhere in `out`. Returns the datagram size (header +
  // plaintext + tag), or 0 if `out` is too small or pn is out of range.
  std::size_t seal_gathered(ConnectionId dcid, std::uint64_t pn,
                            std::span<const ConstBytes> plaintext, MutableBytes out);

  // Opens a protected packet in place, given its parsed header and full packet number
  // (reconstruct_pn). On success `frames` is the decrypted payload inside `datagram`. On
  // failure the packet is to be dropped; its payload bytes are garbage. Never throws.
  PacketError open(const PacketHeader& header, std::uint64_t pn, MutableBytes datagram,
                   MutableBytes& frames);

 private:
  // One packet's AES-GCM pass: start sets the nonce and absorbs the AAD; crypt runs over the
  // payload in consecutive pieces (GCM is a stream mode, so pieces of any size give the bytes of
  // one call over their concatenation); finish_seal writes the tag, finish_open checks it.
  bool start(bool encrypt, std::uint64_t pn, ConstBytes aad);
  bool crypt(const Byte* in, Byte* out, std::size_t size);
  bool finish_seal(Byte* tag);
  bool finish_open(Byte* tag);

  void* cipher_ = nullptr;  // the provider's cipher context: the key schedule is set once
  std::array<Byte, kIvSize> iv_{};
};

}  // namespace rendr::wire::datagram
