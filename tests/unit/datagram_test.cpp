// Unit tests for the udpflow datagram codec and packet protection (src/wire/datagram.*).
#include "wire/datagram.hpp"

#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace rendr::wire::datagram {
namespace {

using Buf = std::vector<Byte>;

PacketKeys test_keys(Byte seed) {
  PacketKeys keys;
  for (std::size_t i = 0; i < keys.key.size(); ++i)
    keys.key[i] = static_cast<Byte>(seed + i);
  for (std::size_t i = 0; i < keys.iv.size(); ++i)
    keys.iv[i] = static_cast<Byte>(seed * 3 + i * 5);
  return keys;
}

// A buffer holding header room, `frames`, and tag room, as PacketProtector::seal wants it.
Buf packet_with(const Buf& frames) {
  Buf packet(kProtectedHeaderSize + frames.size() + kTagSize, 0);
  std::copy(frames.begin(), frames.end(), packet.begin() + kProtectedHeaderSize);
  return packet;
}

Buf some_frames(std::size_t n) {
  Buf frames(n);
  for (std::size_t i = 0; i < n; ++i)
    frames[i] = static_cast<Byte>(i * 31 + 7);
  return frames;
}

// Parses, reconstructs against `largest` and opens; returns the error.
PacketError open_packet(PacketProtector& p, Buf& packet, std::optional<std::uint64_t> largest,
                        MutableBytes& frames) {
  PacketHeader header;
  if (auto e = parse_header(packet, header); e != PacketError::none) return e;
  return p.open(header, reconstruct_pn(largest, header.truncated_pn), packet, frames);
}

// ---- header codec ------------------------------------------------------------------------

TEST(DatagramHeader, HandshakeRoundTrip) {
  Buf buf(kHandshakeHeaderSize + 5, 0xee);
  ASSERT_EQ(encode_handshake_header(0x0102030405060708, 0xa1a2a3a4a5a6a7a8, 0x1'2345'6789, buf),
            kHandshakeHeaderSize);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[1], 0x01);  // dcid big-endian
  EXPECT_EQ(buf[8], 0x08);
  EXPECT_EQ(buf[9], 0xa1);   // scid
  EXPECT_EQ(buf[17], 0x23);  // pn truncated to its low 32 bits, big-endian
  EXPECT_EQ(buf[20], 0x89);
  EXPECT_EQ(buf[21], 0xee);  // frames untouched
  PacketHeader h;
  ASSERT_EQ(parse_header(buf, h), PacketError::none);
  EXPECT_EQ(h, (PacketHeader{PacketKind::handshake, 0x0102030405060708, 0xa1a2a3a4a5a6a7a8,
                             0x23456789, kHandshakeHeaderSize}));
  EXPECT_EQ(peek_dcid(buf), 0x0102030405060708u);
}

TEST(DatagramHeader, ProtectedRoundTrip) {
  Buf buf(kProtectedHeaderSize + kTagSize, 0);
  ASSERT_EQ(encode_protected_header(0xfedcba9876543210, 7, buf), kProtectedHeaderSize);
  EXPECT_EQ(buf[0], 0x02);
  PacketHeader h;
  ASSERT_EQ(parse_header(buf, h), PacketError::none);
  EXPECT_EQ(h,
            (PacketHeader{PacketKind::protected_, 0xfedcba9876543210, 0, 7, kProtectedHeaderSize}));
}

TEST(DatagramHeader, ShortAndUnknownAreRejectedWithoutReadingPastTheEnd) {
  PacketHeader h;
  EXPECT_EQ(parse_header({}, h), PacketError::too_short);
  Buf handshake(kHandshakeHeaderSize, 0);
  encode_handshake_header(1, 2, 3, handshake);
  for (std::size_t n = 1; n < kHandshakeHeaderSize; ++n)
    EXPECT_EQ(parse_header(ConstBytes(handshake).first(n), h), PacketError::too_short) << n;
  // A protected packet needs room for its tag too.
  Buf prot(kProtectedHeaderSize + kTagSize, 0);
  encode_protected_header(1, 3, prot);
  for (std::size_t n = 1; n < prot.size(); ++n)
    EXPECT_EQ(parse_header(ConstBytes(prot).first(n), h), PacketError::too_short) << n;
  for (Byte kind : {0x00, 0x03, 0x10, 0xff}) {
    Buf bad(64, 0);
    bad[0] = kind;
    EXPECT_EQ(parse_header(bad, h), PacketError::unknown_kind);
    EXPECT_FALSE(peek_dcid(bad).has_value());
  }
  Buf small(kProtectedHeaderSize - 1);
  EXPECT_EQ(encode_protected_header(1, 1, small), 0u);
  Buf small_handshake(kHandshakeHeaderSize - 1);
  EXPECT_EQ(encode_handshake_header(1, 2, 1, small_handshake), 0u);
}

// ---- packet number reconstruction (RFC 9000 A.3, 32-bit truncation) ------------------------

TEST(PacketNumber, FirstPacketsOfAPath) {
  EXPECT_EQ(reconstruct_pn(std::nullopt, 0), 0u);
  EXPECT_EQ(reconstruct_pn(std::nullopt, 5), 5u);
  // Nothing below 0: a huge truncated value early on is taken as it is.
  EXPECT_EQ(reconstruct_pn(std::nullopt, 0xffffffff), 0xffffffffu);
  EXPECT_EQ(reconstruct_pn(0, 0xfffffffe), 0xfffffffeu);
}

TEST(PacketNumber, CrossesTheWrapForward) {
  constexpr std::uint64_t kWrap = std::uint64_t{1} << 32;
  EXPECT_EQ(reconstruct_pn(kWrap - 2, 0xffffffff), kWrap - 1);
  EXPECT_EQ(reconstruct_pn(kWrap - 2, 0), kWrap);
  EXPECT_EQ(reconstruct_pn(kWrap - 2, 1), kWrap + 1);
  EXPECT_EQ(reconstruct_pn(5 * kWrap - 100, 50), 5 * kWrap + 50);
}

TEST(PacketNumber, LateReorderedPacketsFromBeforeTheWrap) {
  constexpr std::uint64_t kWrap = std::uint64_t{1} << 32;
  // Largest is just past a wrap; an older packet from before it must not jump a window ahead.
  EXPECT_EQ(reconstruct_pn(kWrap + 5, 0xfffffff0), kWrap - 16);
  EXPECT_EQ(reconstruct_pn(3 * kWrap + 5, 0xfffffff0), 3 * kWrap - 16);
}

TEST(PacketNumber, HalfWindowBoundary) {
  constexpr std::uint64_t kWrap = std::uint64_t{1} << 32;
  constexpr std::uint64_t kHalf = kWrap / 2;
  const std::uint64_t largest = 2 * kWrap + 10;  // expected = 2 * kWrap + 11
  // Up to half a window behind or ahead of the expected number decodes into its window.
  EXPECT_EQ(reconstruct_pn(largest, static_cast<std::uint32_t>(11 + kHalf)),
            2 * kWrap + 11 + kHalf);
  EXPECT_EQ(reconstruct_pn(largest, static_cast<std::uint32_t>(11 + kHalf + 1)),
            2 * kWrap + 11 + kHalf + 1 - kWrap);
  // Every pn within (expected - half, expected + half] round-trips through truncation.
  for (std::uint64_t pn : {largest - kHalf + 2, largest - 1000, largest, largest + 1,
                           largest + 1000, largest + kHalf}) {
    EXPECT_EQ(reconstruct_pn(largest, static_cast<std::uint32_t>(pn)), pn) << pn;
  }
}

TEST(PacketNumber, NeverExceedsTheMaximum) {
  const std::uint64_t largest = kMaxPacketNumber - 10;
  EXPECT_EQ(reconstruct_pn(largest, static_cast<std::uint32_t>(kMaxPacketNumber)),
            kMaxPacketNumber);
  // A candidate a window above would pass 2^62: the lower one is chosen.
  EXPECT_LE(reconstruct_pn(largest, 3), kMaxPacketNumber);
}

// ---- protection ---------------------------------------------------------------------------

TEST(PacketProtection, SealOpenRoundTrip) {
  PacketProtector sender(test_keys(1)), receiver(test_keys(1));
  const Buf frames = some_frames(1200 - kProtectedHeaderSize - kTagSize);
  for (std::uint64_t pn : {0ull, 1ull, 77ull, 0xffffffffull, 0x1'0000'0000ull}) {
    Buf packet = packet_with(frames);
    ASSERT_EQ(sender.seal(0xabcdef, pn, packet, frames.size()), 1200u);
    EXPECT_NE(Buf(packet.begin() + kProtectedHeaderSize, packet.end() - kTagSize), frames)
        << "payload is encrypted";
    MutableBytes opened;
    ASSERT_EQ(open_packet(receiver, packet, pn == 0 ? std::nullopt : std::optional(pn - 1), opened),
              PacketError::none);
    EXPECT_EQ(Buf(opened.begin(), opened.end()), frames);
  }
}

TEST(PacketProtection, EmptyPayloadStillAuthenticated) {
  PacketProtector sender(test_keys(2)), receiver(test_keys(2));
  Buf packet = packet_with({});
  ASSERT_EQ(sender.seal(9, 0, packet, 0), kProtectedHeaderSize + kTagSize);
  MutableBytes opened;
  EXPECT_EQ(open_packet(receiver, packet, std::nullopt, opened), PacketError::none);
  EXPECT_TRUE(opened.empty());
  packet.back() ^= 1;
  EXPECT_EQ(open_packet(receiver, packet, std::nullopt, opened), PacketError::auth_failed);
}

// AES-128-GCM with OpenSSL's one-shot EVP API, independently of the protector's context reuse:
// nonce = iv XOR pn (big-endian, right-aligned), AAD = the 13 header bytes. The whole packet.
Buf independent_seal(const PacketKeys& keys, ConnectionId dcid, std::uint64_t pn,
                     const Buf& frames) {
  Buf packet(kProtectedHeaderSize + frames.size() + kTagSize);
  encode_protected_header(dcid, pn, packet);
  auto nonce = keys.iv;
  for (int i = 0; i < 8; ++i)
    nonce[11 - i] ^= static_cast<Byte>(pn >> (8 * i));
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0, final_len = 0;
  Byte* ciphertext = packet.data() + kProtectedHeaderSize;
  const bool ok =
      EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, keys.key.data(), nonce.data()) == 1 &&
      EVP_EncryptUpdate(ctx, nullptr, &len, packet.data(), kProtectedHeaderSize) == 1 &&
      EVP_EncryptUpdate(ctx, ciphertext, &len, frames.data(), static_cast<int>(frames.size())) ==
          1 &&
      EVP_EncryptFinal_ex(ctx, ciphertext + len, &final_len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, ciphertext + frames.size()) == 1;
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_TRUE(ok) << "OpenSSL one-shot AES-128-GCM failed";
  return packet;
}

// The layout is the contract: AES-128-GCM, nonce = iv XOR pn (big-endian, right-aligned),
// AAD = the 13 header bytes.
TEST(PacketProtection, MatchesAnIndependentAesGcmComputation) {
  const PacketKeys keys = test_keys(3);
  const std::uint64_t pn = 0x0102'0304'0506;
  const Buf frames = some_frames(100);
  Buf packet = packet_with(frames);
  PacketProtector sender(keys);
  ASSERT_NE(sender.seal(0x1122334455667788, pn, packet, frames.size()), 0u);
  EXPECT_EQ(packet, independent_seal(keys, 0x1122334455667788, pn, frames));
}

// The piece sizes of one gathered seal, and the concatenation they cut `frames` into.
std::vector<ConstBytes> cut(const Buf& frames, const std::vector<std::size_t>& sizes) {
  std::vector<ConstBytes> pieces;
  std::size_t at = 0;
  for (std::size_t n : sizes) {
    pieces.emplace_back(frames.data() + at, n);
    at += n;
  }
  EXPECT_EQ(at, frames.size());
  return pieces;
}

// Sealing out of place from pieces of any size (GCM's partial blocks carried across update
// calls, OpenSSL's bulk AES-NI path entered mid-block) gives the bytes of sealing their
// concatenation in place and of an independent one-shot computation, and opens.
TEST(PacketProtection, GatheredSealMatchesInPlaceSeal) {
  const PacketKeys keys = test_keys(10);
  PacketProtector sender(keys), in_place(keys), receiver(keys);
  std::vector<std::vector<std::size_t>> splits = {
      {},                      // empty payload, no pieces
      {0},                     // empty payload, one empty piece
      {1153},                  // one piece
      {13, 1154},              // a DATA frame header, then its payload
      {1, 15, 17, 1153},       // odd sizes around the 16-byte block
      {0, 17, 0, 1, 0},        // empty pieces among others
      {5, 300, 7, 600, 17},    // bulk-sized pieces starting mid-block
      {16, 16, 32, 288, 289},  // block-aligned, then around the bulk threshold
      {3, 1419},               // 1452-byte datagram
  };
  // Random cuts of a 1200-byte datagram's payload into 1-8 pieces (fixed seed).
  std::uint32_t state = 12345;
  auto next = [&state](std::uint32_t bound) {
    state = state * 1664525u + 1013904223u;
    return (state >> 8) % bound;
  };
  for (int i = 0; i < 50; ++i) {
    std::size_t left = 1200 - kProtectedHeaderSize - kTagSize;
    std::vector<std::size_t> sizes;
    const std::uint32_t count = 1 + next(8);
    for (std::uint32_t k = 1; k < count && left > 0; ++k) {
      sizes.push_back(next(static_cast<std::uint32_t>(left) + 1));
      left -= sizes.back();
    }
    sizes.push_back(left);
    splits.push_back(sizes);
  }
  std::uint64_t pn = 0;
  for (const auto& sizes : splits) {
    std::size_t total = 0;
    for (std::size_t n : sizes)
      total += n;
    const Buf frames = some_frames(total);
    const std::vector<ConstBytes> pieces = cut(frames, sizes);
    SCOPED_TRACE(::testing::PrintToString(sizes));

    Buf expected = packet_with(frames);
    ASSERT_EQ(in_place.seal(0x77, pn, expected, frames.size()), expected.size());
    Buf gathered(expected.size() + 7, 0xcc);  // more room than needed: only the packet written
    ASSERT_EQ(sender.seal_gathered(0x77, pn, pieces, gathered), expected.size());
    EXPECT_EQ(Buf(gathered.begin(), gathered.begin() + expected.size()), expected);
    EXPECT_EQ(Buf(gathered.begin() + expected.size(), gathered.end()), Buf(7, 0xcc));
    EXPECT_EQ(expected, independent_seal(keys, 0x77, pn, frames));

    gathered.resize(expected.size());
    MutableBytes opened;
    ASSERT_EQ(
        open_packet(receiver, gathered, pn == 0 ? std::nullopt : std::optional(pn - 1), opened),
        PacketError::none);
    EXPECT_EQ(Buf(opened.begin(), opened.end()), frames);
    ++pn;
  }
}

TEST(PacketProtection, GatheredSealRefusesWhatItCannotDo) {
  PacketProtector p(test_keys(11));
  const Buf frames = some_frames(30);
  const std::vector<ConstBytes> pieces = cut(frames, {10, 20});
  Buf out(kProtectedHeaderSize + frames.size() + kTagSize - 1, 0xcc);
  EXPECT_EQ(p.seal_gathered(1, 1, pieces, out), 0u);  // no room for the tag
  EXPECT_EQ(out, Buf(out.size(), 0xcc)) << "nothing written";
  out.resize(out.size() + 1);
  EXPECT_EQ(p.seal_gathered(1, kMaxPacketNumber + 1, pieces, out), 0u);
  EXPECT_EQ(p.seal_gathered(1, kMaxPacketNumber, pieces, out), out.size());
}

// Flipping any one bit anywhere (kind excepted: that is a different packet) fails to open.
TEST(PacketProtection, AnyTamperedByteIsRejected) {
  PacketProtector sender(test_keys(4)), receiver(test_keys(4));
  const Buf frames = some_frames(64);
  Buf sealed = packet_with(frames);
  ASSERT_NE(sender.seal(0x42, 1000, sealed, frames.size()), 0u);
  for (std::size_t i = 1; i < sealed.size(); ++i) {
    Buf packet = sealed;
    packet[i] ^= 0x04;
    MutableBytes opened;
    PacketHeader header;
    ASSERT_EQ(parse_header(packet, header), PacketError::none);
    // The receiver opens with the pn it would reconstruct; for a flipped pn byte that is another
    // number, whose nonce and AAD both differ.
    EXPECT_EQ(receiver.open(header, reconstruct_pn(999, header.truncated_pn), packet, opened),
              PacketError::auth_failed)
        << "byte " << i
        << (i < kProtectedHeaderSize       ? " (header)"
            : i < sealed.size() - kTagSize ? " (ciphertext)"
                                           : " (tag)");
  }
  // The untouched packet still opens (the loop did not damage the receiver's context).
  MutableBytes opened;
  EXPECT_EQ(open_packet(receiver, sealed, 999, opened), PacketError::none);
}

TEST(PacketProtection, WrongFullPacketNumberIsRejected) {
  // Same low 32 bits, another window: the header matches but the nonce does not.
  PacketProtector sender(test_keys(5)), receiver(test_keys(5));
  const Buf frames = some_frames(32);
  Buf packet = packet_with(frames);
  const std::uint64_t pn = (std::uint64_t{1} << 32) + 9;
  ASSERT_NE(sender.seal(1, pn, packet, frames.size()), 0u);
  PacketHeader header;
  ASSERT_EQ(parse_header(packet, header), PacketError::none);
  MutableBytes opened;
  EXPECT_EQ(receiver.open(header, 9, packet, opened), PacketError::auth_failed);
  // And a pn whose low bits disagree with the header is refused outright.
  EXPECT_EQ(receiver.open(header, pn + 1, packet, opened), PacketError::auth_failed);
}

TEST(PacketProtection, WrongKeyOrIvIsRejected) {
  PacketProtector sender(test_keys(6));
  PacketKeys other_iv = test_keys(6);
  other_iv.iv[0] ^= 1;
  PacketKeys other_key = test_keys(6);
  other_key.key[15] ^= 1;
  for (const PacketKeys& keys : {other_iv, other_key}) {
    PacketProtector receiver(keys);
    const Buf frames = some_frames(40);
    Buf packet = packet_with(frames);
    ASSERT_NE(sender.seal(1, 3, packet, frames.size()), 0u);
    MutableBytes opened;
    EXPECT_EQ(open_packet(receiver, packet, 2, opened), PacketError::auth_failed);
  }
}

TEST(PacketProtection, RefusesWhatItCannotDo) {
  PacketProtector p(test_keys(7));
  Buf small(kProtectedHeaderSize + 10 + kTagSize - 1);
  EXPECT_EQ(p.seal(1, 1, small, 10), 0u);  // no room for the tag
  Buf packet = packet_with(some_frames(10));
  EXPECT_EQ(p.seal(1, kMaxPacketNumber + 1, packet, 10), 0u);
  // A handshake header given to open() is not a protected packet.
  Buf handshake(kHandshakeHeaderSize + kTagSize, 0);
  encode_handshake_header(1, 2, 0, handshake);
  PacketHeader header;
  ASSERT_EQ(parse_header(handshake, header), PacketError::none);
  MutableBytes opened;
  EXPECT_EQ(p.open(header, 0, handshake, opened), PacketError::unknown_kind);
}

TEST(PacketProtection, MovedProtectorKeepsWorking) {
  PacketProtector a(test_keys(8));
  PacketProtector b(std::move(a));
  PacketProtector c(test_keys(9));
  c = std::move(b);
  PacketProtector receiver(test_keys(8));
  const Buf frames = some_frames(20);
  Buf packet = packet_with(frames);
  ASSERT_NE(c.seal(5, 0, packet, frames.size()), 0u);
  MutableBytes opened;
  EXPECT_EQ(open_packet(receiver, packet, std::nullopt, opened), PacketError::none);
}

}  // namespace
}  // namespace rendr::wire::datagram
