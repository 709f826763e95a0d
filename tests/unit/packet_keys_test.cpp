// udpflow packet keys (core/crypto: hkdf_sha256, derive_packet_keys), checked against
// independent computations, and what the keys are for: a packet opens only under its own
// path's and direction's keys.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/crypto.hpp"
#include "wire/datagram.hpp"

namespace rendr::core::crypto {
namespace {

using wire::Byte;
using Buf = std::vector<Byte>;

Buf from_hex(const std::string& hex) {
  Buf out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<Byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

template <class Range>
Buf to_buf(const Range& r) {
  return Buf(std::begin(r), std::end(r));
}

FlowKey test_flow_key() {
  FlowKey key;
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<Byte>(i);
  return key;
}

// RFC 5869 appendix A.1 (test case 1) and A.3 (test case 3: empty salt and info).
TEST(Hkdf, Rfc5869TestVectors) {
  const Buf ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  Buf okm(42);
  hkdf_sha256(ikm, from_hex("000102030405060708090a0b0c"), from_hex("f0f1f2f3f4f5f6f7f8f9"), okm);
  EXPECT_EQ(okm, from_hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                          "34007208d5b887185865"));
  hkdf_sha256(ikm, {}, {}, okm);
  EXPECT_EQ(okm, from_hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                          "9d201395faa4b61a96c8"));
}

// Expected values computed outside rendr, with the OpenSSL CLI:
//   openssl kdf -keylen 16 -kdfopt digest:SHA256 -kdfopt hexkey:000102..1f
//     -kdfopt 'salt:rendr udpflow v1' -kdfopt hexinfo:<"c2s"|"s2c"><dcid><"key"|"iv"> HKDF
// and cross-checked with a few lines of Python (hmac + hashlib).
TEST(PacketKeys, MatchTheOpensslCli) {
  const FlowKey key = test_flow_key();
  const wire::datagram::ConnectionId dcid = 0x0123456789abcdef;
  const auto c2s = derive_packet_keys(key, PacketDirection::client_to_server, dcid);
  EXPECT_EQ(to_buf(c2s.key), from_hex("39812dc4b984d11b827317254f120b5a"));
  EXPECT_EQ(to_buf(c2s.iv), from_hex("f13bbdd9d54040da3bb7a359"));
  const auto s2c = derive_packet_keys(key, PacketDirection::server_to_client, dcid);
  EXPECT_EQ(to_buf(s2c.key), from_hex("d3492a5173c14c5cb9fd4c196b5f0874"));
  EXPECT_EQ(to_buf(s2c.iv), from_hex("e7d4d668052735bf2c419d1d"));
}

TEST(PacketKeys, DeterministicAndDistinctPerDirectionPathAndFlow) {
  const FlowKey key = test_flow_key();
  FlowKey other_flow = key;
  other_flow[0] ^= 1;
  const auto a = derive_packet_keys(key, PacketDirection::client_to_server, 7);
  EXPECT_EQ(a, derive_packet_keys(key, PacketDirection::client_to_server, 7));
  for (const auto& other : {derive_packet_keys(key, PacketDirection::server_to_client, 7),
                            derive_packet_keys(key, PacketDirection::client_to_server, 8),
                            derive_packet_keys(other_flow, PacketDirection::client_to_server, 7)}) {
    EXPECT_NE(a.key, other.key);
    EXPECT_NE(a.iv, other.iv);
  }
}

// A packet sealed for one path and direction opens there and nowhere else: not with the other
// direction's keys (a reflected packet), not with another path's (same pn, other dcid).
TEST(PacketKeys, PacketOpensOnlyUnderItsOwnPathAndDirection) {
  const FlowKey key = test_flow_key();
  constexpr wire::datagram::ConnectionId kPathA = 0xaaaa, kPathB = 0xbbbb;
  wire::datagram::PacketProtector sender(
      derive_packet_keys(key, PacketDirection::client_to_server, kPathA));
  const Buf frames(100, 0x5a);
  Buf sealed(wire::datagram::kProtectedHeaderSize + frames.size() + wire::datagram::kTagSize);
  std::copy(frames.begin(), frames.end(), sealed.begin() + wire::datagram::kProtectedHeaderSize);
  ASSERT_NE(sender.seal(kPathA, 0, sealed, frames.size()), 0u);

  auto try_open = [&](wire::datagram::PacketProtector& receiver) {
    Buf packet = sealed;
    wire::datagram::PacketHeader header;
    EXPECT_EQ(wire::datagram::parse_header(packet, header), wire::datagram::PacketError::none);
    wire::MutableBytes opened;
    return receiver.open(header, 0, packet, opened);
  };
  wire::datagram::PacketProtector right(
      derive_packet_keys(key, PacketDirection::client_to_server, kPathA));
  wire::datagram::PacketProtector wrong_direction(
      derive_packet_keys(key, PacketDirection::server_to_client, kPathA));
  wire::datagram::PacketProtector wrong_path(
      derive_packet_keys(key, PacketDirection::client_to_server, kPathB));
  EXPECT_EQ(try_open(right), wire::datagram::PacketError::none);
  EXPECT_EQ(try_open(wrong_direction), wire::datagram::PacketError::auth_failed);
  EXPECT_EQ(try_open(wrong_path), wire::datagram::PacketError::auth_failed);
}

}  // namespace
}  // namespace rendr::core::crypto
