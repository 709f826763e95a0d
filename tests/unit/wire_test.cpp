// Unit tests for the rendr wire v1 frame codec (src/wire/frame.{hpp,cpp}).
#include "wire/frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace rendr::wire {
namespace {

using Buf = std::vector<Byte>;

constexpr std::uint64_t kEdges[] = {
    0, 63, 64, 16383, 16384, (std::uint64_t{1} << 30) - 1, std::uint64_t{1} << 30, kMaxVarint,
};

// ---- helpers ---------------------------------------------------------------------------------

template <std::size_t N>
std::array<Byte, N> pattern(Byte seed) {
  std::array<Byte, N> a{};
  for (std::size_t i = 0; i < N; ++i)
    a[i] = static_cast<Byte>(seed + i * 7);
  return a;
}

bool bytes_equal(ConstBytes a, ConstBytes b) {
  return std::ranges::equal(a, b);
}

Buf enc(const Frame& f) {
  Buf out(encoded_size(f));
  const std::size_t n = encode(f, out);
  EXPECT_EQ(n, out.size());
  return out;
}

// A raw frame with an arbitrary type/flags/body (length encoded minimally).
Buf raw(std::uint8_t type, std::uint8_t flags, const Buf& body) {
  Buf out{type, flags};
  Byte len[8];
  const std::size_t n = encode_varint(body.size(), len);
  out.insert(out.end(), len, len + n);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Buf varint_bytes(std::uint64_t v) {
  Byte b[8];
  return Buf(b, b + encode_varint(v, b));
}

// Splits an encoded frame into its body (after type, flags and length).
Buf body_of(const Buf& frame) {
  std::uint64_t len = 0;
  const std::size_t n = decode_varint(ConstBytes(frame).subspan(2), len);
  return Buf(frame.begin() + 2 + static_cast<std::ptrdiff_t>(n), frame.end());
}

DecodeResult dec(const Buf& in, Frame& out, std::size_t max_body = kDefaultMaxBody) {
  return decode(ConstBytes(in), out, max_body);
}

DecodeError dec_err(const Buf& in, std::size_t max_body = kDefaultMaxBody) {
  Frame f;
  const DecodeResult r = dec(in, f, max_body);
  if (r.error != DecodeError::none) {
    EXPECT_EQ(r.consumed, 0u);
  }
  return r.error;
}

std::string describe(DecodeError e) {
  return std::string(to_string(e));
}

// Payload storage for DATA frames built by valid_frames(); lives for the whole test binary.
const Buf& big_payload() {
  static const Buf p = [] {
    Buf b(64 * 1024);
    for (std::size_t i = 0; i < b.size(); ++i)
      b[i] = static_cast<Byte>(i * 31 + 5);
    return b;
  }();
  return p;
}

// Every frame type with edge values (the fixed-layout ones at each varint boundary).
std::vector<Frame> valid_frames() {
  std::vector<Frame> v;
  const ModeCode modes[] = {ModeCode::prime, ModeCode::race, ModeCode::bond};
  const Status statuses[] = {Status::ok,       Status::unknown_flow,    Status::bad_proof,
                             Status::replayed, Status::capacity,        Status::bad_request,
                             Status::version,  Status::unsupported_kind};
  std::size_t i = 0;
  for (std::uint64_t e : kEdges) {
    const auto seed = static_cast<Byte>(i * 13 + 1);
    Open o;
    o.version = static_cast<std::uint8_t>(i % 2 ? kVersion : 0xff);
    o.flow_id = pattern<kFlowIdSize>(seed);
    o.mode = modes[i % 3];
    o.kind = i % 2 ? StreamKind::packet : StreamKind::stream;
    o.path_id = e;
    o.window = kEdges[(i + 3) % std::size(kEdges)];
    o.key_share = pattern<kKeyShareSize>(seed + 1);
    o.nonce = pattern<kNonceSize>(seed + 2);
    v.push_back(Frame{0, o});

    OpenAck oa;
    oa.status = statuses[i % std::size(statuses)];
    oa.window = e;
    oa.key_share = pattern<kKeyShareSize>(seed + 3);
    oa.nonce = pattern<kNonceSize>(seed + 4);
    oa.confirm = pattern<kMacSize>(seed + 5);
    v.push_back(Frame{static_cast<std::uint8_t>(i), oa});

    Join j;
    j.version = kVersion;
    j.flow_id = pattern<kFlowIdSize>(seed + 6);
    j.path_id = e;
    j.counter = kEdges[(i + 5) % std::size(kEdges)];
    j.nonce = pattern<kNonceSize>(seed + 7);
    j.mac = pattern<kMacSize>(seed + 8);
    v.push_back(Frame{0, j});

    JoinAck ja;
    ja.status = statuses[(i + 2) % std::size(statuses)];
    ja.delivered = e;
    ja.challenge = pattern<kNonceSize>(seed + 10);
    ja.mac = pattern<kMacSize>(seed + 9);
    v.push_back(Frame{0, ja});
    v.push_back(Frame{0, Proof{pattern<kMacSize>(seed + 11)}});

    v.push_back(Frame{0, Data{e, {}}});
    if (e <= kMaxVarint - 5) {
      v.push_back(Frame{0, Data{e, ConstBytes(big_payload()).first(5)}});
    }
    v.push_back(Frame{0, Ack{e, kEdges[(i + 1) % std::size(kEdges)], i % 2 == 0}});
    v.push_back(Frame{0, Fin{e}});
    v.push_back(Frame{0, Close{static_cast<CloseCode>(i % 4), std::string(i * 3, 'r')}});
    v.push_back(Frame{0x80, Ping{e, i % 2 ? std::numeric_limits<std::uint64_t>::max() : e}});
    v.push_back(Frame{0, Pong{e, 0x0102030405060708ull}});
    v.push_back(Frame{0, Mode{e, modes[(i + 1) % 3]}});
    // ACK_RANGES: one range reaching down to 0, and (room permitting) a gapped second one.
    AckRanges ar;
    ar.ack_delay_us = kEdges[(i + 2) % std::size(kEdges)];
    ar.ranges.push_back(PacketRange{e >= 10 ? e - 10 : 0, e});
    if (e >= 100) ar.ranges.push_back(PacketRange{0, e - 100});
    v.push_back(Frame{0, ar});
    v.push_back(Frame{0, PathChallenge{pattern<kPathChallengeSize>(seed + 12)}});
    v.push_back(Frame{0, PathResponse{pattern<kPathChallengeSize>(seed + 13)}});
    v.push_back(Frame{0, Retry{pattern<kRetryTokenSize>(seed + 14)}});
    if (e > 0) v.push_back(Frame{0, Skip{kMaxVarint - e, e}});
    ++i;
  }
  v.push_back(Frame{0, Data{12345, ConstBytes(big_payload())}});
  v.push_back(Frame{0, Data{kMaxVarint - big_payload().size(), ConstBytes(big_payload())}});
  v.push_back(Frame{0, Close{CloseCode::aborted, std::string(kMaxCloseReason, 'x')}});
  v.push_back(
      Frame{0, Close{CloseCode::migration_budget_exceeded, std::string("budget \0 exceeded", 17)}});
  v.push_back(Frame{0x5a, Extension{0xc0}});
  v.push_back(Frame{0, Extension{0xff}});
  return v;
}

// ---- varints ---------------------------------------------------------------------------------

TEST(Varint, SizesAtBoundaries) {
  EXPECT_EQ(varint_size(0), 1u);
  EXPECT_EQ(varint_size(63), 1u);
  EXPECT_EQ(varint_size(64), 2u);
  EXPECT_EQ(varint_size(16383), 2u);
  EXPECT_EQ(varint_size(16384), 4u);
  EXPECT_EQ(varint_size((std::uint64_t{1} << 30) - 1), 4u);
  EXPECT_EQ(varint_size(std::uint64_t{1} << 30), 8u);
  EXPECT_EQ(varint_size(kMaxVarint), 8u);
}

TEST(Varint, Rfc9000Examples) {
  EXPECT_EQ(varint_bytes(37), (Buf{0x25}));
  EXPECT_EQ(varint_bytes(15293), (Buf{0x7b, 0xbd}));
  EXPECT_EQ(varint_bytes(494878333), (Buf{0x9d, 0x7f, 0x3e, 0x7d}));
  EXPECT_EQ(varint_bytes(151288809941952652ull),
            (Buf{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}));
}

TEST(Varint, RoundTripEdgesAndPrefixes) {
  for (std::uint64_t e : kEdges) {
    for (std::uint64_t v : {e, e == 0 ? 0 : e - 1, e == kMaxVarint ? e : e + 1}) {
      const Buf b = varint_bytes(v);
      ASSERT_EQ(b.size(), varint_size(v));
      std::uint64_t out = ~std::uint64_t{0};
      EXPECT_EQ(decode_varint(b, out), b.size());
      EXPECT_EQ(out, v);
      for (std::size_t k = 0; k < b.size(); ++k) {
        EXPECT_EQ(decode_varint(ConstBytes(b).first(k), out), 0u) << v << " prefix " << k;
      }
    }
  }
}

TEST(Varint, NonMinimalEncodingsDecode) {
  std::uint64_t v = 0;
  EXPECT_EQ(decode_varint(Buf{0x40, 0x25}, v), 2u);
  EXPECT_EQ(v, 37u);
  EXPECT_EQ(decode_varint(Buf{0xc0, 0, 0, 0, 0, 0, 0, 0}, v), 8u);
  EXPECT_EQ(v, 0u);
}

// ---- round trips -----------------------------------------------------------------------------

TEST(Codec, RoundTripEveryFrameType) {
  std::set<std::size_t> kinds;
  for (const Frame& f : valid_frames()) {
    kinds.insert(f.body.index());
    const Buf b = enc(f);
    ASSERT_GE(b.size(), 3u);
    Frame out;
    const DecodeResult r = dec(b, out);
    ASSERT_EQ(r.error, DecodeError::none) << describe(r.error) << " type " << int(b[0]);
    EXPECT_EQ(r.consumed, b.size());
    Frame expect = f;
    if (const auto* ack = std::get_if<Ack>(&f.body)) {
      expect.flags = ack->fin_received ? Ack::kFlagFinReceived : 0;
    }
    EXPECT_TRUE(out == expect) << "type " << int(b[0]) << " size " << b.size();
    // Canonical: re-encoding the decoded frame yields the same bytes.
    EXPECT_EQ(enc(out), b);
  }
  EXPECT_EQ(kinds.size(), std::variant_size_v<Body>);
}

TEST(Codec, TypeBytesOnTheWire) {
  const std::pair<Frame, std::uint8_t> cases[] = {
      {Frame{0, Open{}}, 0x01},          {Frame{0, OpenAck{}}, 0x02},
      {Frame{0, Join{}}, 0x03},          {Frame{0, JoinAck{}}, 0x04},
      {Frame{0, Data{}}, 0x10},          {Frame{0, Ack{}}, 0x11},
      {Frame{0, Fin{}}, 0x12},           {Frame{0, Close{}}, 0x13},
      {Frame{0, Ping{}}, 0x20},          {Frame{0, Pong{}}, 0x21},
      {Frame{0, Mode{}}, 0x30},          {Frame{0, Extension{0xd7}}, 0xd7},
      {Frame{0, Proof{}}, 0x05},         {Frame{0, AckRanges{}}, 0x14},
      {Frame{0, PathChallenge{}}, 0x22}, {Frame{0, PathResponse{}}, 0x23},
      {Frame{0, Retry{}}, 0x06},         {Frame{0, Skip{}}, 0x15},
  };
  for (const auto& [f, type] : cases)
    EXPECT_EQ(enc(f)[0], type);
}

// PROOF is the MAC alone; JOIN_ACK carries the challenge between `delivered` and the MAC.
TEST(Codec, ProofAndJoinAckChallengeLayout) {
  Proof proof;
  proof.mac[0] = 0xaa;
  proof.mac[31] = 0xbb;
  Buf b = enc(Frame{0, proof});
  ASSERT_EQ(b.size(), 3u + kMacSize);
  EXPECT_EQ(b[0], 0x05);
  EXPECT_EQ(b[2], kMacSize);
  EXPECT_EQ(b[3], 0xaa);
  EXPECT_EQ(b.back(), 0xbb);
  JoinAck ack;
  ack.delivered = 7;
  ack.challenge[0] = 0xcc;
  ack.mac[0] = 0xdd;
  b = enc(Frame{0, ack});
  ASSERT_EQ(b.size(), 3u + 1 + 1 + kNonceSize + kMacSize);
  EXPECT_EQ(b[3], 0);     // status ok
  EXPECT_EQ(b[4], 7);     // delivered
  EXPECT_EQ(b[5], 0xcc);  // challenge
  EXPECT_EQ(b[5 + kNonceSize], 0xdd);
}

TEST(Codec, ExactBytesOfSmallFrames) {
  EXPECT_EQ(enc(Frame{0, Fin{64}}), (Buf{0x12, 0x00, 0x02, 0x40, 0x40}));
  EXPECT_EQ(enc(Frame{0, Ack{1, 2, true}}), (Buf{0x11, 0x01, 0x02, 0x01, 0x02}));
  EXPECT_EQ(enc(Frame{0, Ping{5, 0x0102030405060708ull}}),
            (Buf{0x20, 0x00, 0x09, 0x05, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(enc(Frame{0, Mode{0, ModeCode::bond}}), (Buf{0x30, 0x00, 0x02, 0x00, 0x03}));
  EXPECT_EQ(enc(Frame{0, Close{CloseCode::aborted, "ab"}}),
            (Buf{0x13, 0x00, 0x04, 0x03, 0x02, 'a', 'b'}));
  const Byte p[] = {9, 8, 7};
  EXPECT_EQ(enc(Frame{0, Data{16384, p}}),
            (Buf{0x10, 0x00, 0x07, 0x80, 0x00, 0x40, 0x00, 9, 8, 7}));
}

TEST(Codec, FlagsArePreservedAndAckFinFlagFollowsField) {
  Frame out;
  ASSERT_EQ(dec(enc(Frame{0xa5, Fin{7}}), out).error, DecodeError::none);
  EXPECT_EQ(out.flags, 0xa5);
  // The ACK fin bit on the wire is the fin_received field, whatever Frame::flags says.
  Buf b = enc(Frame{0x01, Ack{1, 2, false}});
  EXPECT_EQ(b[1], 0x00);
  b = enc(Frame{0xf0, Ack{1, 2, true}});
  EXPECT_EQ(b[1], 0xf1);
  ASSERT_EQ(dec(b, out).error, DecodeError::none);
  EXPECT_TRUE(std::get<Ack>(out.body).fin_received);
  EXPECT_EQ(out.flags, 0xf1);
}

TEST(Codec, DataEmptyAnd64KiBPayload) {
  for (std::size_t size : {std::size_t{0}, std::size_t{64 * 1024}}) {
    const ConstBytes payload = ConstBytes(big_payload()).first(size);
    const Buf b = enc(Frame{0, Data{99, payload}});
    Frame out;
    const DecodeResult r = dec(b, out);
    ASSERT_EQ(r.error, DecodeError::none);
    EXPECT_EQ(r.consumed, b.size());
    const auto& d = std::get<Data>(out.body);
    EXPECT_EQ(d.offset, 99u);
    ASSERT_EQ(d.payload.size(), size);
    EXPECT_TRUE(bytes_equal(d.payload, payload));
    // The payload is a view into the input, at the end of the frame.
    if (size > 0) {
      EXPECT_EQ(d.payload.data(), b.data() + b.size() - size);
    }
  }
}

TEST(Codec, DataHeaderPlusPayloadEqualsEncode) {
  for (std::uint64_t offset : kEdges) {
    for (std::size_t size : {0, 1, 5, 62, 63, 64, 16382, 16383, 16384, 65536}) {
      if (offset > kMaxVarint - size) continue;
      const ConstBytes payload = ConstBytes(big_payload()).first(size);
      Buf wire(kMaxDataHeader);
      const std::size_t h = encode_data_header(offset, size, wire);
      ASSERT_LE(h, kMaxDataHeader);
      wire.resize(h);
      wire.insert(wire.end(), payload.begin(), payload.end());
      EXPECT_EQ(wire, enc(Frame{0, Data{offset, payload}})) << offset << " " << size;
    }
  }
}

TEST(Codec, EncodeIntoSmallBufferFails) {
  for (const Frame& f : valid_frames()) {
    const std::size_t n = encoded_size(f);
    Buf out(n, 0xee);
    EXPECT_EQ(encode(f, MutableBytes(out).first(n - 1)), 0u);
    EXPECT_EQ(encode(f, out), n);
  }
  EXPECT_EQ(encode(Frame{0, Fin{}}, MutableBytes{}), 0u);
}

TEST(Codec, EncoderTruncatesOverlongCloseReason) {
  const Buf b = enc(Frame{0, Close{CloseCode::normal, std::string(kMaxCloseReason + 50, 'z')}});
  Frame out;
  ASSERT_EQ(dec(b, out).error, DecodeError::none);
  EXPECT_EQ(std::get<Close>(out.body).reason, std::string(kMaxCloseReason, 'z'));
}

// ---- partial input ---------------------------------------------------------------------------

TEST(Decode, EveryStrictPrefixNeedsMore) {
  for (const Frame& f : valid_frames()) {
    const Buf b = enc(f);
    for (std::size_t k = 0; k < b.size(); ++k) {
      // Copy the prefix into its own allocation so ASan would catch any read past it.
      const Buf prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(k));
      Frame out;
      const DecodeResult r = dec(prefix, out);
      ASSERT_EQ(r.error, DecodeError::need_more) << "type " << int(b[0]) << " prefix " << k << "/"
                                                 << b.size() << ": " << describe(r.error);
      ASSERT_EQ(r.consumed, 0u);
    }
  }
}

TEST(Decode, ConcatenatedFramesDecodeInOrder) {
  const std::vector<Frame> frames = valid_frames();
  Buf stream;
  std::vector<std::size_t> sizes;
  for (const Frame& f : frames) {
    const Buf b = enc(f);
    sizes.push_back(b.size());
    stream.insert(stream.end(), b.begin(), b.end());
  }
  // A partial frame at the end.
  const Buf tail = enc(Frame{0, Ping{1, 2}});
  stream.insert(stream.end(), tail.begin(), tail.end() - 1);

  ConstBytes in(stream);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    Frame out;
    const DecodeResult r = decode(in, out);
    ASSERT_EQ(r.error, DecodeError::none) << i;
    ASSERT_EQ(r.consumed, sizes[i]) << i;
    EXPECT_EQ(out.body.index(), frames[i].body.index()) << i;
    in = in.subspan(r.consumed);
  }
  Frame out;
  EXPECT_EQ(decode(in, out).error, DecodeError::need_more);
  EXPECT_EQ(in.size(), tail.size() - 1);
}

// ---- malformed input -------------------------------------------------------------------------

TEST(Decode, UnknownCoreTypes) {
  for (std::uint8_t t : {0x00, 0x07, 0x0f, 0x16, 0x24, 0x31, 0x7f, 0x80, 0xbf}) {
    EXPECT_EQ(dec_err(raw(t, 0, {1, 2, 3})), DecodeError::unknown_type) << int(t);
    EXPECT_EQ(dec_err(raw(t, 0, {})), DecodeError::unknown_type) << int(t);
  }
}

TEST(Decode, EveryTypeByteIsClassified) {
  const std::set<int> core = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12,
                              0x13, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x30};
  for (int t = 0; t < 256; ++t) {
    Frame out;
    const DecodeResult r = dec(raw(static_cast<std::uint8_t>(t), 0, {}), out);
    if (t >= kFirstExtensionType) {
      ASSERT_EQ(r.error, DecodeError::none) << t;
      EXPECT_EQ(std::get<Extension>(out.body).type, t);
    } else if (core.count(t)) {
      // Every core frame has at least one field, so an empty body is malformed.
      EXPECT_TRUE(r.error == DecodeError::truncated_body || r.error == DecodeError::bad_varint)
          << t << ": " << describe(r.error);
    } else {
      EXPECT_EQ(r.error, DecodeError::unknown_type) << t;
    }
  }
}

TEST(Decode, ExtensionFrameIsSkippedWithItsBody) {
  Buf stream = raw(0xc5, 0x42, {1, 2, 3, 4, 5, 0x10, 0x00, 0x01});  // body looks like frames
  const Buf ping = enc(Frame{0, Ping{77, 88}});
  stream.insert(stream.end(), ping.begin(), ping.end());
  Frame out;
  DecodeResult r = dec(stream, out);
  ASSERT_EQ(r.error, DecodeError::none);
  EXPECT_EQ(r.consumed, 3u + 8u);
  EXPECT_EQ(std::get<Extension>(out.body).type, 0xc5);
  EXPECT_EQ(out.flags, 0x42);
  r = decode(ConstBytes(stream).subspan(r.consumed), out);
  ASSERT_EQ(r.error, DecodeError::none);
  EXPECT_EQ(r.consumed, ping.size());
  EXPECT_EQ(std::get<Ping>(out.body).id, 77u);
  // A long extension body (2-byte length) is skipped too.
  EXPECT_EQ(dec(raw(0xc5, 0, Buf(1000, 0xab)), out).consumed, 2u + 2u + 1000u);
}

TEST(Decode, LengthAboveMaxBody) {
  // Header alone is enough to reject: no need to buffer the body.
  Buf h{0x10, 0x00};
  const Buf len = varint_bytes(kDefaultMaxBody + 1);
  h.insert(h.end(), len.begin(), len.end());
  EXPECT_EQ(dec_err(h), DecodeError::too_long);
  Buf h8{0xc5, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(dec_err(h8), DecodeError::too_long);

  // Exactly max_body is fine, one more is not (custom limit).
  Buf body16 = varint_bytes(0);
  body16.resize(16, 0x11);
  EXPECT_EQ(dec_err(raw(0x10, 0, body16), 16), DecodeError::none);
  body16.push_back(0x11);
  EXPECT_EQ(dec_err(raw(0x10, 0, body16), 16), DecodeError::too_long);
  EXPECT_EQ(dec_err(raw(0xc9, 0, body16), 16), DecodeError::too_long);
  EXPECT_EQ(dec_err(raw(0x42, 0, body16), 16), DecodeError::too_long);

  // Default limit: a full 256 KiB body decodes.
  Buf big = varint_bytes(0);
  big.resize(kDefaultMaxBody, 0);
  EXPECT_EQ(dec_err(raw(0x10, 0, big)), DecodeError::none);
  big.push_back(0);
  EXPECT_EQ(dec_err(raw(0x10, 0, big)), DecodeError::too_long);
}

std::vector<Frame> fixed_layout_frames() {
  std::vector<Frame> v;
  for (const Frame& f : valid_frames()) {
    if (!std::holds_alternative<Data>(f.body) && !std::holds_alternative<Extension>(f.body)) {
      v.push_back(f);
    }
  }
  return v;
}

TEST(Decode, TrailingBytesInFixedLayoutFrames) {
  for (const Frame& f : fixed_layout_frames()) {
    const Buf b = enc(f);
    Buf body = body_of(b);
    body.push_back(0);
    EXPECT_EQ(dec_err(raw(b[0], b[1], body)), DecodeError::trailing_bytes) << int(b[0]);
    body.insert(body.end(), 40, 0x7);
    EXPECT_EQ(dec_err(raw(b[0], b[1], body)), DecodeError::trailing_bytes) << int(b[0]);
  }
}

TEST(Decode, TruncatedBodies) {
  for (const Frame& f : fixed_layout_frames()) {
    const Buf b = enc(f);
    const Buf body = body_of(b);
    for (std::size_t k = 0; k < body.size(); ++k) {
      const Buf cut(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(k));
      const DecodeError e = dec_err(raw(b[0], b[1], cut));
      EXPECT_TRUE(e == DecodeError::truncated_body || e == DecodeError::bad_varint)
          << "type " << int(b[0]) << " body " << k << "/" << body.size() << ": " << describe(e);
    }
  }
  // Specific classes.
  EXPECT_EQ(dec_err(raw(0x12, 0, {})), DecodeError::bad_varint);            // FIN, no offset
  EXPECT_EQ(dec_err(raw(0x12, 0, {0x40})), DecodeError::bad_varint);        // FIN, half varint
  EXPECT_EQ(dec_err(raw(0x10, 0, {})), DecodeError::bad_varint);            // DATA, no offset
  EXPECT_EQ(dec_err(raw(0x10, 0, {0xc0, 1, 2})), DecodeError::bad_varint);  // DATA, cut offset
  EXPECT_EQ(dec_err(raw(0x11, 0, {0x05})), DecodeError::bad_varint);        // ACK, no limit
  EXPECT_EQ(dec_err(raw(0x20, 0, {0x05, 1, 2, 3})), DecodeError::truncated_body);  // PING ts
  EXPECT_EQ(dec_err(raw(0x30, 0, {0x05})), DecodeError::truncated_body);           // MODE, no mode
  EXPECT_EQ(dec_err(raw(0x13, 0, {0x00, 0x05, 'a', 'b'})),
            DecodeError::truncated_body);  // CLOSE reason shorter than its length
  EXPECT_EQ(dec_err(raw(0x01, 0, {kVersion})), DecodeError::truncated_body);  // OPEN
}

TEST(Decode, BadValues) {
  auto patch = [](const Frame& f, std::size_t body_index, Byte value) {
    const Buf b = enc(f);
    Buf body = body_of(b);
    body.at(body_index) = value;
    return raw(b[0], b[1], body);
  };
  // OPEN: version(1) flow_id(16) mode kind ...
  for (Byte m : {0, 4, 0x7f, 0xff}) {
    EXPECT_EQ(dec_err(patch(Frame{0, Open{}}, 1 + kFlowIdSize, m)), DecodeError::bad_value);
  }
  // A kind other than stream is followed by its options byte (docs/protocol.md §3.1): a stream
  // OPEN patched to another kind is one byte short. Unknown kinds decode; servers refuse them
  // (packet_wire_test).
  for (Byte k : {2, 0x80, 0xff}) {
    EXPECT_EQ(dec_err(patch(Frame{0, Open{}}, 2 + kFlowIdSize, k)), DecodeError::truncated_body);
  }
  for (Byte s : {8, 0x40, 0xff}) {
    EXPECT_EQ(dec_err(patch(Frame{0, OpenAck{}}, 0, s)), DecodeError::bad_value);
    EXPECT_EQ(dec_err(patch(Frame{0, JoinAck{}}, 0, s)), DecodeError::bad_value);
  }
  for (Byte m : {0, 4, 0xff}) {
    EXPECT_EQ(dec_err(patch(Frame{0, Mode{}}, 1, m)), DecodeError::bad_value);
  }
  EXPECT_EQ(dec_err(raw(0x13, 0, {0x04, 0x00})), DecodeError::bad_value);
  Buf close = varint_bytes(kMaxVarint);
  close.push_back(0);
  EXPECT_EQ(dec_err(raw(0x13, 0, close)), DecodeError::bad_value);
  // The codec does not judge the version byte: that is the handshake's job (Status::version).
  Open o;
  o.version = 0xee;
  Frame out;
  ASSERT_EQ(dec(enc(Frame{0, o}), out).error, DecodeError::none);
  EXPECT_EQ(std::get<Open>(out.body).version, 0xee);
}

TEST(Decode, CloseReasonTooLong) {
  Buf body{0x00};
  const Buf len = varint_bytes(kMaxCloseReason + 1);
  body.insert(body.end(), len.begin(), len.end());
  EXPECT_EQ(dec_err(raw(0x13, 0, body)), DecodeError::too_long);  // no reason bytes at all
  body.insert(body.end(), kMaxCloseReason + 1, 'q');
  EXPECT_EQ(dec_err(raw(0x13, 0, body)), DecodeError::too_long);
  Buf huge{0x00};
  const Buf hl = varint_bytes(kMaxVarint);
  huge.insert(huge.end(), hl.begin(), hl.end());
  EXPECT_EQ(dec_err(raw(0x13, 0, huge)), DecodeError::too_long);
}

TEST(Decode, DataOffsetPlusLengthOverflow) {
  auto data = [](std::uint64_t offset, std::size_t n) {
    Buf body = varint_bytes(offset);
    body.insert(body.end(), n, 0x5c);
    return raw(0x10, 0, body);
  };
  EXPECT_EQ(dec_err(data(kMaxVarint, 0)), DecodeError::none);
  EXPECT_EQ(dec_err(data(kMaxVarint, 1)), DecodeError::bad_value);
  EXPECT_EQ(dec_err(data(kMaxVarint - 10, 10)), DecodeError::none);
  EXPECT_EQ(dec_err(data(kMaxVarint - 9, 10)), DecodeError::bad_value);
  EXPECT_EQ(dec_err(data(kMaxVarint - 100, 1000)), DecodeError::bad_value);
}

TEST(Decode, ToStringCoversEveryError) {
  std::set<std::string_view> names;
  for (auto e : {DecodeError::none, DecodeError::need_more, DecodeError::unknown_type,
                 DecodeError::too_long, DecodeError::bad_varint, DecodeError::truncated_body,
                 DecodeError::trailing_bytes, DecodeError::bad_value}) {
    names.insert(to_string(e));
  }
  EXPECT_EQ(names.size(), 8u);
}

// ---- robustness ------------------------------------------------------------------------------

TEST(Decode, RandomBytesNeverCrash) {
  std::mt19937 rng(20240611);
  const std::uint8_t types[] = {0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12,
                                0x13, 0x20, 0x21, 0x30, 0xc5, 0x05};
  std::size_t ok = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    Buf buf(rng() % 301);
    for (Byte& b : buf)
      b = static_cast<Byte>(rng());
    // Half the time, make the header plausible so bodies get exercised.
    if (buf.size() >= 3 && iter % 2 == 0) {
      buf[0] = types[rng() % std::size(types)];
      buf[2] = static_cast<Byte>(rng() % std::min<std::size_t>(buf.size() - 2, 64));
    }
    const std::size_t max_body = iter % 7 == 0 ? rng() % 64 : kDefaultMaxBody;
    ConstBytes in(buf);
    while (!in.empty()) {
      Frame out;
      const DecodeResult r = decode(in, out, max_body);
      if (r.error != DecodeError::none) {
        ASSERT_EQ(r.consumed, 0u);
        break;
      }
      ++ok;
      ASSERT_GE(r.consumed, 3u);
      ASSERT_LE(r.consumed, in.size());
      if (const auto* d = std::get_if<Data>(&out.body)) {
        ASSERT_GE(d->payload.data(), in.data());
        ASSERT_LE(d->payload.data() + d->payload.size(), in.data() + r.consumed);
      }
      in = in.subspan(r.consumed);
    }
  }
  EXPECT_GT(ok, 1000u);  // the plausible headers do produce valid frames
}

// ---- helpers on Frame ------------------------------------------------------------------------

TEST(Frame, TypeOfAndAckEliciting) {
  EXPECT_EQ(type_of(Frame{0, Data{}}), FrameType::data);
  EXPECT_EQ(type_of(Frame{0, Mode{}}), FrameType::mode);
  EXPECT_EQ(type_of(Frame{0, Extension{0xc1}}), FrameType{0});
  EXPECT_EQ(type_of(Frame{0, Proof{}}), FrameType::proof);
  EXPECT_FALSE(is_ack_eliciting(Frame{0, Proof{}}));
  EXPECT_TRUE(is_ack_eliciting(Frame{0, Data{}}));
  EXPECT_TRUE(is_ack_eliciting(Frame{0, Ping{}}));
  EXPECT_TRUE(is_ack_eliciting(Frame{0, Fin{}}));
  EXPECT_TRUE(is_ack_eliciting(Frame{0, Mode{}}));
  EXPECT_FALSE(is_ack_eliciting(Frame{0, Ack{}}));
  EXPECT_FALSE(is_ack_eliciting(Frame{0, Pong{}}));
  EXPECT_FALSE(is_ack_eliciting(Frame{0, Close{}}));
  EXPECT_EQ(type_of(Frame{0, AckRanges{}}), FrameType::ack_ranges);
  EXPECT_FALSE(is_ack_eliciting(Frame{0, AckRanges{}}));
  EXPECT_TRUE(is_ack_eliciting(Frame{0, PathChallenge{}}));
  EXPECT_TRUE(is_ack_eliciting(Frame{0, PathResponse{}}));
}

// ---- ACK_RANGES and PATH_CHALLENGE / PATH_RESPONSE --------------------------------------------

// A raw ACK_RANGES body: largest, delay, extra count, first length, then gap/length pairs.
Buf ack_ranges_body(std::initializer_list<std::uint64_t> fields) {
  Buf body;
  for (std::uint64_t f : fields) {
    const Buf b = varint_bytes(f);
    body.insert(body.end(), b.begin(), b.end());
  }
  return body;
}

TEST(AckRangesCodec, ExactLayoutOfGapsAndLengths) {
  // Received 95..100, 90..92 and 0..80: gaps are "missing packets - 1" as in RFC 9000 §19.3.1.
  AckRanges ar;
  ar.ack_delay_us = 300;
  ar.ranges = {{95, 100}, {90, 92}, {0, 80}};
  const Buf b = enc(Frame{0, ar});
  EXPECT_EQ(body_of(b), ack_ranges_body({100, 300, 2, 5, 1, 2, 8, 80}));
  Frame out;
  ASSERT_EQ(dec(b, out).error, DecodeError::none);
  EXPECT_EQ(std::get<AckRanges>(out.body), ar);
  EXPECT_EQ(std::get<AckRanges>(out.body).largest(), 100u);
}

TEST(AckRangesCodec, MaximumRangeCountRoundTripsAndOneMoreIsRejected) {
  AckRanges ar;
  for (std::uint64_t i = 0; i < AckRanges::kMaxRanges; ++i) {
    const std::uint64_t top = 10000 - i * 10;
    ar.ranges.push_back(PacketRange{top - 3, top});
  }
  const Buf b = enc(Frame{0, ar});
  Frame out;
  ASSERT_EQ(dec(b, out).error, DecodeError::none);
  EXPECT_EQ(std::get<AckRanges>(out.body).ranges.size(), AckRanges::kMaxRanges);

  // The same frame claiming one more range (its pair present) is oversize.
  std::vector<std::uint64_t> fields = {10000, 0, AckRanges::kMaxRanges, 3};
  for (std::uint64_t i = 1; i <= AckRanges::kMaxRanges; ++i) {
    fields.push_back(5);
    fields.push_back(3);
  }
  Buf body;
  for (std::uint64_t f : fields) {
    const Buf v = varint_bytes(f);
    body.insert(body.end(), v.begin(), v.end());
  }
  EXPECT_EQ(dec_err(raw(0x14, 0, body)), DecodeError::too_long);
  // A huge count with no pairs behind it is rejected without trying to read them.
  EXPECT_EQ(dec_err(raw(0x14, 0, ack_ranges_body({1000, 0, kMaxVarint, 3}))),
            DecodeError::too_long);
}

TEST(AckRangesCodec, EncoderWritesAtMostTheMaximumHighestRanges) {
  AckRanges ar;
  for (std::uint64_t i = 0; i < AckRanges::kMaxRanges + 5; ++i) {
    const std::uint64_t top = 10000 - i * 10;
    ar.ranges.push_back(PacketRange{top - 1, top});
  }
  Frame out;
  ASSERT_EQ(dec(enc(Frame{0, ar}), out).error, DecodeError::none);
  const auto& got = std::get<AckRanges>(out.body).ranges;
  ASSERT_EQ(got.size(), AckRanges::kMaxRanges);
  EXPECT_EQ(got.front(), ar.ranges.front());
  EXPECT_EQ(got.back(), ar.ranges[AckRanges::kMaxRanges - 1]);
}

TEST(AckRangesCodec, RangesBelowZeroAreRejected) {
  // First range longer than the largest.
  EXPECT_EQ(dec_err(raw(0x14, 0, ack_ranges_body({5, 0, 0, 6}))), DecodeError::bad_value);
  // A gap that would reach below 0: smallest 3, gap 2 -> largest 3 - 2 - 2 < 0.
  EXPECT_EQ(dec_err(raw(0x14, 0, ack_ranges_body({5, 0, 1, 2, 2, 0}))), DecodeError::bad_value);
  // A second range longer than what remains: smallest 10, gap 0 -> largest 8, length 9.
  EXPECT_EQ(dec_err(raw(0x14, 0, ack_ranges_body({10, 0, 1, 0, 0, 9}))), DecodeError::bad_value);
  // Just fits: largest 8, length 8 -> down to 0.
  Frame out;
  ASSERT_EQ(dec(raw(0x14, 0, ack_ranges_body({10, 0, 1, 0, 0, 8})), out).error, DecodeError::none);
  EXPECT_EQ(std::get<AckRanges>(out.body).ranges.back(), (PacketRange{0, 8}));
  // Huge varints near 2^62 do not overflow the arithmetic.
  EXPECT_EQ(dec_err(raw(0x14, 0, ack_ranges_body({kMaxVarint, 0, 1, 0, kMaxVarint, 0}))),
            DecodeError::bad_value);
}

TEST(AckRangesCodec, TruncatedAndTrailingBodies) {
  const Buf full = ack_ranges_body({100, 7, 1, 2, 3, 4});
  for (std::size_t k = 0; k < full.size(); ++k) {
    const DecodeError e = dec_err(raw(0x14, 0, Buf(full.begin(), full.begin() + k)));
    EXPECT_TRUE(e == DecodeError::bad_varint || e == DecodeError::truncated_body) << k;
  }
  Buf longer = full;
  longer.push_back(0);
  EXPECT_EQ(dec_err(raw(0x14, 0, longer)), DecodeError::trailing_bytes);
}

TEST(AckRangesCodec, DecodingIntoAFrameReusesNothingStale) {
  AckRanges big;
  big.ranges = {{50, 60}, {30, 40}, {10, 20}};
  AckRanges small;
  small.ranges = {{7, 9}};
  Frame out;
  ASSERT_EQ(dec(enc(Frame{0, big}), out).error, DecodeError::none);
  ASSERT_EQ(dec(enc(Frame{0, small}), out).error, DecodeError::none);
  EXPECT_EQ(std::get<AckRanges>(out.body), small);
}

TEST(PathChallengeCodec, EightBytesExactly) {
  const PathChallengeData d{1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(enc(Frame{0, PathChallenge{d}}), raw(0x22, 0, Buf(d.begin(), d.end())));
  EXPECT_EQ(enc(Frame{0, PathResponse{d}}), raw(0x23, 0, Buf(d.begin(), d.end())));
  EXPECT_EQ(dec_err(raw(0x22, 0, Buf(7, 1))), DecodeError::truncated_body);
  EXPECT_EQ(dec_err(raw(0x23, 0, Buf(9, 1))), DecodeError::trailing_bytes);
  Frame out;
  ASSERT_EQ(dec(raw(0x23, 0, Buf(d.begin(), d.end())), out).error, DecodeError::none);
  EXPECT_EQ(std::get<PathResponse>(out.body).data, d);
}

TEST(RetryCodec, TokenOfFixedSizeAndNotAckEliciting) {
  RetryToken t{};
  for (std::size_t i = 0; i < t.size(); ++i)
    t[i] = static_cast<Byte>(i + 1);
  EXPECT_EQ(enc(Frame{0, Retry{t}}), raw(0x06, 0, Buf(t.begin(), t.end())));
  EXPECT_EQ(encoded_size(Frame{0, Retry{t}}), 3 + kRetryTokenSize);
  EXPECT_EQ(dec_err(raw(0x06, 0, Buf(kRetryTokenSize - 1, 1))), DecodeError::truncated_body);
  EXPECT_EQ(dec_err(raw(0x06, 0, Buf(kRetryTokenSize + 1, 1))), DecodeError::trailing_bytes);
  Frame out;
  ASSERT_EQ(dec(raw(0x06, 0, Buf(t.begin(), t.end())), out).error, DecodeError::none);
  EXPECT_EQ(std::get<Retry>(out.body).token, t);
  EXPECT_FALSE(is_ack_eliciting(Frame{0, Retry{t}}));
}

}  // namespace
}  // namespace rendr::wire
