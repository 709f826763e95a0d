#pragma once
// rendr wire v1: frame types and a pure, bounds-checked codec. See docs/protocol.md.
//
// Every frame: type u8 | flags u8 | length (QUIC varint) | body[length].
// Integers in bodies are QUIC varints (u62) or fixed-size big-endian.
#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wire/bytes.hpp"

namespace rendr::wire {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kFlowIdSize = 16;
inline constexpr std::size_t kKeyShareSize = 32;  // X25519 public key
inline constexpr std::size_t kNonceSize = 16;
inline constexpr std::size_t kMacSize = 32;  // HMAC-SHA256
inline constexpr std::uint64_t kMaxVarint = (std::uint64_t{1} << 62) - 1;
// Longest frame header: type + flags + 8-byte length varint.
inline constexpr std::size_t kMaxFrameHeader = 10;
// Longest DATA header: frame header + 8-byte offset varint.
inline constexpr std::size_t kMaxDataHeader = kMaxFrameHeader + 8;
// Default cap on a frame body; a decoder rejects anything larger.
inline constexpr std::size_t kDefaultMaxBody = 256 * 1024;
inline constexpr std::size_t kMaxCloseReason = 256;

inline constexpr std::size_t kRetryTokenSize = 24;  // issued_ms (8) | truncated HMAC (16)
using FlowId = std::array<Byte, kFlowIdSize>;
using KeyShare = std::array<Byte, kKeyShareSize>;
using Nonce = std::array<Byte, kNonceSize>;
using Mac = std::array<Byte, kMacSize>;
using RetryToken = std::array<Byte, kRetryTokenSize>;

enum class FrameType : std::uint8_t {
  open = 0x01,
  open_ack = 0x02,
  join = 0x03,
  join_ack = 0x04,
  proof = 0x05,
  retry = 0x06,  // datagram paths only
  data = 0x10,
  ack = 0x11,
  fin = 0x12,
  close = 0x13,
  ack_ranges = 0x14,  // datagram paths only
  skip = 0x15,        // packet flows only
  ping = 0x20,
  pong = 0x21,
  path_challenge = 0x22,  // datagram paths only
  path_response = 0x23,   // datagram paths only
  mode = 0x30,
};

// Types 0xc0..0xff are extensions: a receiver that does not know one skips it.
inline constexpr std::uint8_t kFirstExtensionType = 0xc0;

enum class ModeCode : std::uint8_t { prime = 1, race = 2, bond = 3 };
// The kind of flow an OPEN asks for. A decoder keeps any other value (a kind of a later
// version): the server refuses it with Status::unsupported_kind, a clear answer rather than a
// decode error.
enum class StreamKind : std::uint8_t { stream = 0, packet = 1 };

// Packet flows: a message of n bytes occupies n + kMessageSpanOverhead offsets of the flow's
// offset space (docs/protocol.md §3.18). Every message, even an empty one, so gets an offset of
// its own, and the receive window, which counts offsets, bounds the number of queued messages
// (window / kMessageSpanOverhead) as well as their bytes.
inline constexpr std::uint64_t kMessageSpanOverhead = 64;

enum class Status : std::uint8_t {
  ok = 0,
  unknown_flow = 1,
  bad_proof = 2,
  replayed = 3,
  capacity = 4,
  bad_request = 5,
  version = 6,
  unsupported_kind = 7,  // the OPEN's kind (or a packet option) is unknown to the server
};

// OPEN: client -> server, first frame on the first path of a new flow. A kind other than
// stream adds one options byte after the nonce; for packet: kOptionUnreliable, kOptionOrdered.
struct Open {
  static constexpr std::uint8_t kOptionUnreliable = 0x01;
  static constexpr std::uint8_t kOptionOrdered = 0x02;
  std::uint8_t version = kVersion;
  FlowId flow_id{};
  ModeCode mode = ModeCode::prime;
  StreamKind kind = StreamKind::stream;
  std::uint64_t path_id = 0;
  std::uint64_t window = 0;  // initial receive window the client grants the server
  KeyShare key_share{};
  Nonce nonce{};
  // Options of a kind other than stream (kOption* for packet); never on the wire for stream.
  std::uint8_t options = 0;

  friend bool operator==(const Open&, const Open&) = default;
};

// OPEN_ACK: server -> client. `confirm` = HMAC(flow key, "open-ack" transcript): proves the
// server derived the same key (and, with a PSK, that it knows the PSK).
struct OpenAck {
  Status status = Status::ok;
  std::uint64_t window = 0;
  KeyShare key_share{};
  Nonce nonce{};
  Mac confirm{};

  friend bool operator==(const OpenAck&, const OpenAck&) = default;
};

// JOIN: attaches a further path to an existing flow. `counter` is strictly fresh per flow
// (replay window at the server); `mac` = HMAC(flow key, "join" | flow_id | path_id | counter |
// nonce).
struct Join {
  std::uint8_t version = kVersion;
  FlowId flow_id{};
  std::uint64_t path_id = 0;
  std::uint64_t counter = 0;
  Nonce nonce{};
  Mac mac{};

  friend bool operator==(const Join&, const Join&) = default;
};

// JOIN_ACK: `delivered` is the server's contiguous receive offset; `challenge` is a fresh random
// nonce the client must answer with a PROOF before the path is attached; `mac` proves the server
// holds the flow key (all zero when status != ok).
struct JoinAck {
  Status status = Status::ok;
  std::uint64_t delivered = 0;
  Nonce challenge{};
  Mac mac{};

  friend bool operator==(const JoinAck&, const JoinAck&) = default;
};

// PROOF: client -> server, the first frame after a verified OPEN_ACK or JOIN_ACK: the client's
// proof of the flow key (and so of the PSK, if one is configured). See docs/protocol.md §8.
struct Proof {
  Mac mac{};

  friend bool operator==(const Proof&, const Proof&) = default;
};

// DATA: stream bytes at `offset`. The payload references the decoder's input buffer.
// In a packet flow every DATA carries kFlagMessage: its payload is exactly one whole message,
// which occupies [offset, offset + size + kMessageSpanOverhead).
struct Data {
  static constexpr std::uint8_t kFlagMessage = 0x01;
  std::uint64_t offset = 0;
  ConstBytes payload{};

  // Payloads compare by content (they are views into different buffers).
  friend bool operator==(const Data& a, const Data& b) {
    return a.offset == b.offset && std::ranges::equal(a.payload, b.payload);
  }
};

// ACK: cumulative contiguous offset received, and the highest offset the sender may send.
struct Ack {
  static constexpr std::uint8_t kFlagFinReceived = 0x01;
  // Sent on a path that does not carry the sender's ACKs (a copy that keeps the path's
  // liveness answered); the receiver never follows the sender's active path on it.
  static constexpr std::uint8_t kFlagCopy = 0x02;
  std::uint64_t delivered = 0;
  std::uint64_t limit = 0;
  bool fin_received = false;

  friend bool operator==(const Ack&, const Ack&) = default;
};

struct Fin {
  std::uint64_t final_offset = 0;

  friend bool operator==(const Fin&, const Fin&) = default;
};

enum class CloseCode : std::uint64_t {
  normal = 0,
  protocol_error = 1,
  migration_budget_exceeded = 2,
  aborted = 3,
};

struct Close {
  CloseCode code = CloseCode::normal;
  std::string reason;

  friend bool operator==(const Close&, const Close&) = default;
};

struct Ping {
  std::uint64_t id = 0;
  std::uint64_t timestamp = 0;  // opaque to the peer, echoed in PONG

  friend bool operator==(const Ping&, const Ping&) = default;
};

struct Pong {
  std::uint64_t id = 0;
  std::uint64_t timestamp = 0;

  friend bool operator==(const Pong&, const Pong&) = default;
};

struct Mode {
  std::uint64_t seq = 0;
  ModeCode mode = ModeCode::prime;

  friend bool operator==(const Mode&, const Mode&) = default;
};

// ACK_RANGES (datagram paths): the packet numbers of this path the sender has received, as
// disjoint ranges, highest first (RFC 9000 §19.3, without ECN). Packet numbers are per path and
// per direction; the frame acknowledges packets of the path it arrives on.
//
// Wire body: largest (varint) | ack_delay_us (varint) | extra range count (varint) |
// first range length (varint: largest - smallest of the first range) | extra ranges as
// {gap (varint), length (varint)} pairs, where a range's largest = the previous range's
// smallest - gap - 2 and its smallest = its largest - length. At most kMaxRanges ranges: a
// decoder rejects more (too_long) and any range that would go below 0 (bad_value).
struct PacketRange {
  std::uint64_t smallest = 0;
  std::uint64_t largest = 0;

  friend bool operator==(const PacketRange&, const PacketRange&) = default;
};

struct AckRanges {
  // Enough for a full 1200-byte packet of small ranges; the sender fits what its packet holds.
  static constexpr std::size_t kMaxRanges = 256;
  // How long the sender held the ACK after receiving `largest()` (RFC 9002 §5.3), in µs.
  std::uint64_t ack_delay_us = 0;
  // Disjoint, non-adjacent, highest first; never empty in a valid frame (an encoder given an
  // empty list writes one range {0, 0}; callers never send that).
  std::vector<PacketRange> ranges;

  std::uint64_t largest() const { return ranges.empty() ? 0 : ranges.front().largest; }

  friend bool operator==(const AckRanges&, const AckRanges&) = default;
};

// PATH_CHALLENGE / PATH_RESPONSE (datagram paths, RFC 9000 §19.17-18): 8 unpredictable bytes
// the peer must echo from the address being validated.
inline constexpr std::size_t kPathChallengeSize = 8;
using PathChallengeData = std::array<Byte, kPathChallengeSize>;

struct PathChallenge {
  PathChallengeData data{};

  friend bool operator==(const PathChallenge&, const PathChallenge&) = default;
};

struct PathResponse {
  PathChallengeData data{};

  friend bool operator==(const PathResponse&, const PathResponse&) = default;
};

// RETRY (datagram paths): a listener under load answers an OPEN from an address it has not
// validated with a token instead of a flow (RFC 9000 §8.1.2 in spirit); the client sends its
// OPEN again, preceded by a RETRY frame echoing the token. The token is opaque to the client
// (docs/protocol.md §3.16); a RETRY datagram is never larger than the OPEN that provoked it.
struct Retry {
  RetryToken token{};

  friend bool operator==(const Retry&, const Retry&) = default;
};

// SKIP (packet flows, unreliable): the sender will never send the messages in
// [offset, offset + length) again (their first copies were lost); the receiver stops waiting for
// them. It is sent, and repaired when lost, where a reliable flow would resend those messages.
struct Skip {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;

  friend bool operator==(const Skip&, const Skip&) = default;
};

// An extension frame the decoder skipped (type >= kFirstExtensionType).
struct Extension {
  std::uint8_t type = 0;

  friend bool operator==(const Extension&, const Extension&) = default;
};

// New alternatives go at the end, so the indexes of the others (type_of) stay.
using Body = std::variant<Open, OpenAck, Join, JoinAck, Data, Ack, Fin, Close, Ping, Pong, Mode,
                          Extension, Proof, AckRanges, PathChallenge, PathResponse, Retry, Skip>;

struct Frame {
  std::uint8_t flags = 0;
  Body body;

  friend bool operator==(const Frame&, const Frame&) = default;
};

enum class DecodeError {
  none,
  need_more,       // not an error: the input holds only part of a frame
  unknown_type,    // a core type this version does not know
  too_long,        // length above the decoder's limit
  bad_varint,      // varint longer than the remaining body
  truncated_body,  // body shorter than its fields
  trailing_bytes,  // body longer than its fields (fixed-layout frames)
  bad_value,       // a field outside its domain (mode, status, kind, version...)
};

std::string_view to_string(DecodeError e);

struct DecodeResult {
  DecodeError error = DecodeError::none;
  std::size_t consumed = 0;  // bytes of input that made up the frame (when error == none)
};

// Decodes one frame from the front of `in`. On success `out` holds it and `consumed` says how
// many bytes it took; DATA payloads point into `in`. Never reads outside `in`.
DecodeResult decode(ConstBytes in, Frame& out, std::size_t max_body = kDefaultMaxBody);

// Encodes a frame into `out`; returns the bytes written, or 0 if `out` is too small.
// DATA frames are encoded whole (header + payload); use encode_data_header for gather writes.
std::size_t encode(const Frame& frame, MutableBytes out);
std::size_t encoded_size(const Frame& frame);

// Writes the header of a DATA frame carrying `payload_size` bytes at `offset` into `out`
// (at least kMaxDataHeader bytes). Returns the header length. The payload follows it.
// `flags`: Data::kFlagMessage in packet flows.
std::size_t encode_data_header(std::uint64_t offset, std::size_t payload_size, MutableBytes out,
                               std::uint8_t flags = 0);

// QUIC variable-length integers (RFC 9000 §16).
std::size_t varint_size(std::uint64_t v);
std::size_t encode_varint(std::uint64_t v, Byte* out);  // out has >= varint_size(v) bytes
// Returns bytes read, or 0 if `in` is too short.
std::size_t decode_varint(ConstBytes in, std::uint64_t& v);

// Indexed by Body's alternatives; Extension has no fixed type (0).
inline FrameType type_of(const Frame& f) {
  constexpr FrameType kTypes[] = {
      FrameType::open,          FrameType::open_ack,   FrameType::join,
      FrameType::join_ack,      FrameType::data,       FrameType::ack,
      FrameType::fin,           FrameType::close,      FrameType::ping,
      FrameType::pong,          FrameType::mode,       FrameType{0},
      FrameType::proof,         FrameType::ack_ranges, FrameType::path_challenge,
      FrameType::path_response, FrameType::retry,      FrameType::skip};
  static_assert(std::size(kTypes) == std::variant_size_v<Body>);
  return kTypes[f.body.index()];
}

// True for frames the peer must answer (directly or by an ACK), used for liveness.
inline bool is_ack_eliciting(const Frame& f) {
  return std::holds_alternative<Data>(f.body) || std::holds_alternative<Ping>(f.body) ||
         std::holds_alternative<Fin>(f.body) || std::holds_alternative<Mode>(f.body) ||
         std::holds_alternative<PathChallenge>(f.body) ||
         std::holds_alternative<PathResponse>(f.body) || std::holds_alternative<Skip>(f.body);
}

}  // namespace rendr::wire
