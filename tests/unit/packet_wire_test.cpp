// Packet flows on the wire (docs/protocol.md §3.1 OPEN options, §3.5 DATA's message flag,
// §3.17 SKIP): encodings, round trips, and malformed or hostile inputs.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "wire/frame.hpp"

namespace rendr::wire {
namespace {

using Buf = std::vector<Byte>;

Buf enc(const Frame& f) {
  Buf out(encoded_size(f));
  EXPECT_EQ(encode(f, out), out.size());
  return out;
}

Buf raw(std::uint8_t type, std::uint8_t flags, const Buf& body) {
  Buf out{type, flags};
  Byte len[8];
  out.insert(out.end(), len, len + encode_varint(body.size(), len));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

DecodeResult dec(const Buf& b, Frame& out, std::size_t max_body = kDefaultMaxBody) {
  return decode(b, out, max_body);
}

Open packet_open(std::uint8_t options) {
  Open o;
  o.flow_id[0] = 0x42;
  o.kind = StreamKind::packet;
  o.path_id = 1;
  o.window = 1 << 20;
  o.options = options;
  return o;
}

TEST(PacketOpen, StreamOpenIsUnchangedOnTheWire) {
  // An old peer's stream OPEN: no options byte, and it still decodes as stream.
  Open o;
  o.path_id = 1;
  const Buf b = enc(Frame{0, o});
  // type, flags, a 2-byte length, then version, flow id, mode, kind, path id, window, key, nonce.
  EXPECT_EQ(b.size(), 4 + 1 + kFlowIdSize + 2 + 1 + 1 + kKeyShareSize + kNonceSize);
  Frame f;
  ASSERT_EQ(dec(b, f).error, DecodeError::none);
  EXPECT_EQ(std::get<Open>(f.body).kind, StreamKind::stream);
  EXPECT_EQ(std::get<Open>(f.body).options, 0);
}

TEST(PacketOpen, OptionsRoundTripAsOneTrailingByte) {
  for (std::uint8_t options : {0, 1, 2, 3}) {
    const Open o = packet_open(options);
    const Buf b = enc(Frame{0, o});
    EXPECT_EQ(b.back(), options);
    Open stream = o;
    stream.kind = StreamKind::stream;
    EXPECT_EQ(b.size(), enc(Frame{0, stream}).size() + 1);
    Frame f;
    ASSERT_EQ(dec(b, f).error, DecodeError::none);
    EXPECT_EQ(std::get<Open>(f.body), o);
  }
}

TEST(PacketOpen, MissingOrExtraOptionsByteIsRefused) {
  Buf b = enc(Frame{0, packet_open(Open::kOptionOrdered)});
  Buf body(b.begin() + 4, b.end());  // after type, flags and a 2-byte length
  Frame f;
  Buf shorter(body.begin(), body.end() - 1);
  EXPECT_EQ(dec(raw(0x01, 0, shorter), f).error, DecodeError::truncated_body);
  Buf longer = body;
  longer.push_back(0);
  EXPECT_EQ(dec(raw(0x01, 0, longer), f).error, DecodeError::trailing_bytes);
}

TEST(PacketOpen, UnknownKindDecodesSoTheServerCanRefuseIt) {
  Open o = packet_open(0x80);
  o.kind = static_cast<StreamKind>(9);
  Frame f;
  ASSERT_EQ(dec(enc(Frame{0, o}), f).error, DecodeError::none);
  EXPECT_EQ(static_cast<int>(std::get<Open>(f.body).kind), 9);
  EXPECT_EQ(std::get<Open>(f.body).options, 0x80);
}

TEST(PacketOpen, UnsupportedKindStatusRoundTrips) {
  OpenAck a;
  a.status = Status::unsupported_kind;
  Frame f;
  ASSERT_EQ(dec(enc(Frame{0, a}), f).error, DecodeError::none);
  EXPECT_EQ(std::get<OpenAck>(f.body).status, Status::unsupported_kind);
}

TEST(MessageData, FlagTravelsInTheHeaderAndThePayloadIsTheMessage) {
  const Buf message{1, 2, 3, 4, 5};
  Byte header[kMaxDataHeader];
  const std::size_t n = encode_data_header(300, message.size(), header, Data::kFlagMessage);
  Buf b(header, header + n);
  b.insert(b.end(), message.begin(), message.end());
  EXPECT_EQ(b[0], 0x10);
  EXPECT_EQ(b[1], Data::kFlagMessage);
  Frame f;
  ASSERT_EQ(dec(b, f).error, DecodeError::none);
  EXPECT_EQ(f.flags, Data::kFlagMessage);
  const Data& d = std::get<Data>(f.body);
  EXPECT_EQ(d.offset, 300u);
  EXPECT_EQ(Buf(d.payload.begin(), d.payload.end()), message);
}

TEST(MessageData, EmptyMessageAndDefaultFlags) {
  Byte header[kMaxDataHeader];
  const std::size_t n = encode_data_header(7, 0, header, Data::kFlagMessage);
  Frame f;
  ASSERT_EQ(dec(Buf(header, header + n), f).error, DecodeError::none);
  EXPECT_TRUE(std::get<Data>(f.body).payload.empty());
  // A stream DATA header is what it always was: flags 0.
  encode_data_header(7, 0, header);
  EXPECT_EQ(header[1], 0);
}

TEST(MessageData, OversizeMessageFrameIsTooLongForTheDecoder) {
  // A message larger than the receiver's frame limit is refused whole, never truncated.
  Buf body(1 + 2000, 0xab);
  body[0] = 0x00;  // offset 0
  Frame f;
  EXPECT_EQ(dec(raw(0x10, Data::kFlagMessage, body), f, 1024).error, DecodeError::too_long);
}

TEST(SkipCodec, RoundTripAndLayout) {
  const Skip s{1000, 64 * 3};
  const Buf b = enc(Frame{0, s});
  EXPECT_EQ(b[0], 0x15);
  Frame f;
  const DecodeResult r = dec(b, f);
  ASSERT_EQ(r.error, DecodeError::none);
  EXPECT_EQ(r.consumed, b.size());
  EXPECT_EQ(std::get<Skip>(f.body), s);
  EXPECT_TRUE(is_ack_eliciting(f));  // it is repaired when lost, like the DATA it replaces
  EXPECT_EQ(type_of(f), FrameType::skip);
}

TEST(SkipCodec, MalformedBodies) {
  Frame f;
  EXPECT_EQ(dec(raw(0x15, 0, {}), f).error, DecodeError::bad_varint);
  EXPECT_EQ(dec(raw(0x15, 0, {0x05}), f).error, DecodeError::bad_varint);       // no length
  EXPECT_EQ(dec(raw(0x15, 0, {0x05, 0x00}), f).error, DecodeError::bad_value);  // empty range
  EXPECT_EQ(dec(raw(0x15, 0, {0x05, 0x01, 0x00}), f).error, DecodeError::trailing_bytes);
  // offset + length beyond 2^62 - 1.
  Buf body{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  EXPECT_EQ(dec(raw(0x15, 0, body), f).error, DecodeError::bad_value);
}

}  // namespace
}  // namespace rendr::wire
