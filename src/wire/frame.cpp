#include "wire/frame.hpp"

#include <algorithm>

namespace rendr::wire {

std::string_view to_string(DecodeError e) {
  switch (e) {
    case DecodeError::none:
      return "none";
    case DecodeError::need_more:
      return "need more input";
    case DecodeError::unknown_type:
      return "unknown frame type";
    case DecodeError::too_long:
      return "frame length above limit";
    case DecodeError::bad_varint:
      return "truncated varint";
    case DecodeError::truncated_body:
      return "frame body too short";
    case DecodeError::trailing_bytes:
      return "frame body too long";
    case DecodeError::bad_value:
      return "field value out of range";
  }
  return "unknown decode error";
}

std::size_t varint_size(std::uint64_t v) {
  if (v < (1u << 6)) return 1;
  if (v < (1u << 14)) return 2;
  if (v < (1u << 30)) return 4;
  return 8;
}

std::size_t encode_varint(std::uint64_t v, Byte* out) {
  const std::size_t n = varint_size(v);
  const std::uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
  for (std::size_t i = 0; i < n; ++i)
    out[n - 1 - i] = static_cast<Byte>(v >> (8 * i));
  out[0] = static_cast<Byte>((out[0] & 0x3f) | prefix);
  return n;
}

std::size_t decode_varint(ConstBytes in, std::uint64_t& v) {
  if (in.empty()) return 0;
  const std::size_t n = std::size_t{1} << (in[0] >> 6);
  if (in.size() < n) return 0;
  v = in[0] & 0x3f;
  for (std::size_t i = 1; i < n; ++i)
    v = (v << 8) | in[i];
  return n;
}

namespace {

// Sequential reader over a frame body; every read is bounds-checked and sticky on failure.
class Reader {
 public:
  explicit Reader(ConstBytes body) : in_(body) {}

  bool u8(std::uint8_t& v) {
    if (!ok_ || in_.size() - pos_ < 1) return fail(DecodeError::truncated_body);
    v = in_[pos_++];
    return true;
  }
  bool u64be(std::uint64_t& v) {
    if (!ok_ || in_.size() - pos_ < 8) return fail(DecodeError::truncated_body);
    v = 0;
    for (int i = 0; i < 8; ++i)
      v = (v << 8) | in_[pos_++];
    return true;
  }
  bool varint(std::uint64_t& v) {
    if (!ok_) return false;
    const std::size_t n = decode_varint(in_.subspan(pos_), v);
    if (n == 0) return fail(DecodeError::bad_varint);
    pos_ += n;
    return true;
  }
  template <std::size_t N>
  bool bytes(std::array<Byte, N>& out) {
    if (!ok_ || in_.size() - pos_ < N) return fail(DecodeError::truncated_body);
    std::copy_n(in_.begin() + static_cast<std::ptrdiff_t>(pos_), N, out.begin());
    pos_ += N;
    return true;
  }
  ConstBytes take(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      fail(DecodeError::truncated_body);
      return {};
    }
    ConstBytes s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  ConstBytes rest() {
    ConstBytes s = in_.subspan(pos_);
    pos_ = in_.size();
    return s;
  }
  bool fail(DecodeError e) {
    if (ok_) error_ = e;
    ok_ = false;
    return false;
  }
  DecodeError error() const { return ok_ ? DecodeError::none : error_; }
  // Fixed-layout frames must consume their body exactly.
  DecodeError finish() {
    if (ok_ && pos_ != in_.size()) fail(DecodeError::trailing_bytes);
    return ok_ ? DecodeError::none : error_;
  }

 private:
  ConstBytes in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  DecodeError error_ = DecodeError::none;
};

bool valid_mode(std::uint8_t m) {
  return m >= 1 && m <= 3;
}
bool valid_status(std::uint8_t s) {
  return s <= static_cast<std::uint8_t>(Status::unsupported_kind);
}

// Ranges are checked as they are read: none may reach below packet number 0, and there are at
// most AckRanges::kMaxRanges of them, so a hostile frame costs a bounded allocation.
DecodeError decode_ack_ranges(Reader& r, Frame& out) {
  std::uint64_t largest = 0, delay = 0, extra = 0, first = 0;
  r.varint(largest);
  r.varint(delay);
  r.varint(extra);
  r.varint(first);
  if (auto e = r.error(); e != DecodeError::none) return e;
  if (extra >= AckRanges::kMaxRanges) return DecodeError::too_long;
  if (first > largest) return DecodeError::bad_value;
  // Reuse the vector of an ACK_RANGES the caller decoded before into the same Frame.
  AckRanges f;
  if (auto* previous = std::get_if<AckRanges>(&out.body)) f.ranges = std::move(previous->ranges);
  f.ranges.clear();
  f.ack_delay_us = delay;
  f.ranges.push_back(PacketRange{largest - first, largest});
  for (std::uint64_t i = 0; i < extra; ++i) {
    std::uint64_t gap = 0, length = 0;
    r.varint(gap);
    r.varint(length);
    if (auto e = r.error(); e != DecodeError::none) return e;
    const std::uint64_t below = f.ranges.back().smallest;
    if (below < gap + 2) return DecodeError::bad_value;
    const std::uint64_t top = below - gap - 2;
    if (length > top) return DecodeError::bad_value;
    f.ranges.push_back(PacketRange{top - length, top});
  }
  if (auto e = r.finish(); e != DecodeError::none) return e;
  out.body = std::move(f);
  return DecodeError::none;
}

DecodeError decode_body(std::uint8_t type, std::uint8_t flags, ConstBytes body, Frame& out) {
  Reader r(body);
  out.flags = flags;
  switch (static_cast<FrameType>(type)) {
    case FrameType::open: {
      Open f;
      std::uint8_t mode = 0, kind = 0;
      r.u8(f.version);
      r.bytes(f.flow_id);
      r.u8(mode);
      r.u8(kind);
      r.varint(f.path_id);
      r.varint(f.window);
      r.bytes(f.key_share);
      r.bytes(f.nonce);
      if (kind != static_cast<std::uint8_t>(StreamKind::stream)) r.u8(f.options);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (!valid_mode(mode)) return DecodeError::bad_value;
      f.mode = static_cast<ModeCode>(mode);
      f.kind = static_cast<StreamKind>(kind);  // unknown kinds are the server's to refuse
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::open_ack: {
      OpenAck f;
      std::uint8_t status = 0;
      r.u8(status);
      r.varint(f.window);
      r.bytes(f.key_share);
      r.bytes(f.nonce);
      r.bytes(f.confirm);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (!valid_status(status)) return DecodeError::bad_value;
      f.status = static_cast<Status>(status);
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::join: {
      Join f;
      r.u8(f.version);
      r.bytes(f.flow_id);
      r.varint(f.path_id);
      r.varint(f.counter);
      r.bytes(f.nonce);
      r.bytes(f.mac);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::join_ack: {
      JoinAck f;
      std::uint8_t status = 0;
      r.u8(status);
      r.varint(f.delivered);
      r.bytes(f.challenge);
      r.bytes(f.mac);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (!valid_status(status)) return DecodeError::bad_value;
      f.status = static_cast<Status>(status);
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::proof: {
      Proof f;
      r.bytes(f.mac);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::retry: {
      Retry f;
      r.bytes(f.token);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::data: {
      Data f;
      r.varint(f.offset);
      f.payload = r.rest();
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (f.offset + f.payload.size() > kMaxVarint) return DecodeError::bad_value;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::skip: {
      Skip f;
      r.varint(f.offset);
      r.varint(f.length);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (f.length == 0 || f.offset + f.length > kMaxVarint) return DecodeError::bad_value;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::ack: {
      Ack f;
      r.varint(f.delivered);
      r.varint(f.limit);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      f.fin_received = (flags & Ack::kFlagFinReceived) != 0;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::fin: {
      Fin f;
      r.varint(f.final_offset);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      out.body = f;
      return DecodeError::none;
    }
    case FrameType::close: {
      Close f;
      std::uint64_t code = 0, len = 0;
      r.varint(code);
      r.varint(len);
      if (len > kMaxCloseReason) return DecodeError::too_long;
      ConstBytes reason = r.take(static_cast<std::size_t>(len));
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (code > static_cast<std::uint64_t>(CloseCode::aborted)) return DecodeError::bad_value;
      f.code = static_cast<CloseCode>(code);
      f.reason.assign(reason.begin(), reason.end());
      out.body = std::move(f);
      return DecodeError::none;
    }
    case FrameType::ping:
    case FrameType::pong: {
      std::uint64_t id = 0, ts = 0;
      r.varint(id);
      r.u64be(ts);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (static_cast<FrameType>(type) == FrameType::ping)
        out.body = Ping{id, ts};
      else
        out.body = Pong{id, ts};
      return DecodeError::none;
    }
    case FrameType::ack_ranges:
      return decode_ack_ranges(r, out);
    case FrameType::path_challenge:
    case FrameType::path_response: {
      PathChallengeData data{};
      r.bytes(data);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (static_cast<FrameType>(type) == FrameType::path_challenge)
        out.body = PathChallenge{data};
      else
        out.body = PathResponse{data};
      return DecodeError::none;
    }
    case FrameType::mode: {
      Mode f;
      std::uint8_t mode = 0;
      r.varint(f.seq);
      r.u8(mode);
      if (auto e = r.finish(); e != DecodeError::none) return e;
      if (!valid_mode(mode)) return DecodeError::bad_value;
      f.mode = static_cast<ModeCode>(mode);
      out.body = f;
      return DecodeError::none;
    }
  }
  if (type >= kFirstExtensionType) {
    out.body = Extension{type};
    return DecodeError::none;
  }
  return DecodeError::unknown_type;
}

// Sequential writer; callers size the output with encoded_size first.
class Writer {
 public:
  explicit Writer(Byte* out) : p_(out) {}
  void u8(std::uint8_t v) { *p_++ = v; }
  void u64be(std::uint64_t v) {
    for (int i = 7; i >= 0; --i)
      *p_++ = static_cast<Byte>(v >> (8 * i));
  }
  void varint(std::uint64_t v) { p_ += encode_varint(v, p_); }
  void bytes(ConstBytes b) {
    if (!b.empty()) std::memcpy(p_, b.data(), b.size());
    p_ += b.size();
  }
  Byte* pos() const { return p_; }

 private:
  Byte* p_;
};

// The encoder writes at most AckRanges::kMaxRanges ranges (the highest ones), so what it writes
// always decodes.
std::size_t ack_ranges_encoded_count(const AckRanges& f) {
  return std::min(f.ranges.size(), AckRanges::kMaxRanges);
}

std::size_t ack_ranges_body_size(const AckRanges& f) {
  const std::size_t count = ack_ranges_encoded_count(f);
  const PacketRange first = count == 0 ? PacketRange{} : f.ranges.front();
  std::size_t n = varint_size(first.largest) + varint_size(f.ack_delay_us) +
                  varint_size(count == 0 ? 0 : count - 1) +
                  varint_size(first.largest - first.smallest);
  for (std::size_t i = 1; i < count; ++i) {
    n += varint_size(f.ranges[i - 1].smallest - f.ranges[i].largest - 2) +
         varint_size(f.ranges[i].largest - f.ranges[i].smallest);
  }
  return n;
}

struct BodySize {
  std::size_t operator()(const Open& f) const {
    return 1 + kFlowIdSize + 2 + varint_size(f.path_id) + varint_size(f.window) + kKeyShareSize +
           kNonceSize + (f.kind == StreamKind::stream ? 0 : 1);
  }
  std::size_t operator()(const OpenAck& f) const {
    return 1 + varint_size(f.window) + kKeyShareSize + kNonceSize + kMacSize;
  }
  std::size_t operator()(const Join& f) const {
    return 1 + kFlowIdSize + varint_size(f.path_id) + varint_size(f.counter) + kNonceSize +
           kMacSize;
  }
  std::size_t operator()(const JoinAck& f) const {
    return 1 + varint_size(f.delivered) + kNonceSize + kMacSize;
  }
  std::size_t operator()(const Proof&) const { return kMacSize; }
  std::size_t operator()(const Data& f) const { return varint_size(f.offset) + f.payload.size(); }
  std::size_t operator()(const Ack& f) const {
    return varint_size(f.delivered) + varint_size(f.limit);
  }
  std::size_t operator()(const Fin& f) const { return varint_size(f.final_offset); }
  std::size_t operator()(const Close& f) const {
    const std::size_t len = std::min(f.reason.size(), kMaxCloseReason);
    return varint_size(static_cast<std::uint64_t>(f.code)) + varint_size(len) + len;
  }
  std::size_t operator()(const Ping& f) const { return varint_size(f.id) + 8; }
  std::size_t operator()(const Pong& f) const { return varint_size(f.id) + 8; }
  std::size_t operator()(const Mode& f) const { return varint_size(f.seq) + 1; }
  std::size_t operator()(const Extension&) const { return 0; }
  std::size_t operator()(const AckRanges& f) const { return ack_ranges_body_size(f); }
  std::size_t operator()(const PathChallenge&) const { return kPathChallengeSize; }
  std::size_t operator()(const PathResponse&) const { return kPathChallengeSize; }
  std::size_t operator()(const Retry&) const { return kRetryTokenSize; }
  std::size_t operator()(const Skip& f) const {
    return varint_size(f.offset) + varint_size(f.length);
  }
};

struct BodyWriter {
  Writer& w;
  void operator()(const Open& f) const {
    w.u8(f.version);
    w.bytes(f.flow_id);
    w.u8(static_cast<std::uint8_t>(f.mode));
    w.u8(static_cast<std::uint8_t>(f.kind));
    w.varint(f.path_id);
    w.varint(f.window);
    w.bytes(f.key_share);
    w.bytes(f.nonce);
    if (f.kind != StreamKind::stream) w.u8(f.options);
  }
  void operator()(const OpenAck& f) const {
    w.u8(static_cast<std::uint8_t>(f.status));
    w.varint(f.window);
    w.bytes(f.key_share);
    w.bytes(f.nonce);
    w.bytes(f.confirm);
  }
  void operator()(const Join& f) const {
    w.u8(f.version);
    w.bytes(f.flow_id);
    w.varint(f.path_id);
    w.varint(f.counter);
    w.bytes(f.nonce);
    w.bytes(f.mac);
  }
  void operator()(const JoinAck& f) const {
    w.u8(static_cast<std::uint8_t>(f.status));
    w.varint(f.delivered);
    w.bytes(f.challenge);
    w.bytes(f.mac);
  }
  void operator()(const Proof& f) const { w.bytes(f.mac); }
  void operator()(const Data& f) const {
    w.varint(f.offset);
    w.bytes(f.payload);
  }
  void operator()(const Ack& f) const {
    w.varint(f.delivered);
    w.varint(f.limit);
  }
  void operator()(const Fin& f) const { w.varint(f.final_offset); }
  void operator()(const Close& f) const {
    const std::size_t len = std::min(f.reason.size(), kMaxCloseReason);
    w.varint(static_cast<std::uint64_t>(f.code));
    w.varint(len);
    w.bytes({reinterpret_cast<const Byte*>(f.reason.data()), len});
  }
  void operator()(const Ping& f) const {
    w.varint(f.id);
    w.u64be(f.timestamp);
  }
  void operator()(const Pong& f) const {
    w.varint(f.id);
    w.u64be(f.timestamp);
  }
  void operator()(const Mode& f) const {
    w.varint(f.seq);
    w.u8(static_cast<std::uint8_t>(f.mode));
  }
  void operator()(const Extension&) const {}
  void operator()(const AckRanges& f) const {
    const std::size_t count = ack_ranges_encoded_count(f);
    const PacketRange first = count == 0 ? PacketRange{} : f.ranges.front();
    w.varint(first.largest);
    w.varint(f.ack_delay_us);
    w.varint(count == 0 ? 0 : count - 1);
    w.varint(first.largest - first.smallest);
    for (std::size_t i = 1; i < count; ++i) {
      w.varint(f.ranges[i - 1].smallest - f.ranges[i].largest - 2);
      w.varint(f.ranges[i].largest - f.ranges[i].smallest);
    }
  }
  void operator()(const PathChallenge& f) const { w.bytes(f.data); }
  void operator()(const PathResponse& f) const { w.bytes(f.data); }
  void operator()(const Retry& f) const { w.bytes(f.token); }
  void operator()(const Skip& f) const {
    w.varint(f.offset);
    w.varint(f.length);
  }
};

std::uint8_t type_byte(const Frame& f) {
  if (const auto* ext = std::get_if<Extension>(&f.body)) return ext->type;
  return static_cast<std::uint8_t>(type_of(f));
}

std::uint8_t flags_byte(const Frame& f) {
  std::uint8_t flags = f.flags;
  if (const auto* ack = std::get_if<Ack>(&f.body)) {
    flags = static_cast<std::uint8_t>(ack->fin_received ? flags | Ack::kFlagFinReceived
                                                        : flags & ~Ack::kFlagFinReceived);
  }
  return flags;
}

}  // namespace

DecodeResult decode(ConstBytes in, Frame& out, std::size_t max_body) {
  if (in.size() < 3) return {DecodeError::need_more, 0};
  const std::uint8_t type = in[0];
  const std::uint8_t flags = in[1];
  std::uint64_t length = 0;
  const std::size_t n = decode_varint(in.subspan(2), length);
  if (n == 0) return {DecodeError::need_more, 0};
  if (length > max_body) return {DecodeError::too_long, 0};
  const std::size_t header = 2 + n;
  if (in.size() - header < length) return {DecodeError::need_more, 0};
  const auto body = in.subspan(header, static_cast<std::size_t>(length));
  const DecodeError e = decode_body(type, flags, body, out);
  if (e != DecodeError::none) return {e, 0};
  return {DecodeError::none, header + static_cast<std::size_t>(length)};
}

std::size_t encoded_size(const Frame& frame) {
  const std::size_t body = std::visit(BodySize{}, frame.body);
  return 2 + varint_size(body) + body;
}

std::size_t encode(const Frame& frame, MutableBytes out) {
  const std::size_t body = std::visit(BodySize{}, frame.body);
  const std::size_t total = 2 + varint_size(body) + body;
  if (out.size() < total) return 0;
  Writer w(out.data());
  w.u8(type_byte(frame));
  w.u8(flags_byte(frame));
  w.varint(body);
  std::visit(BodyWriter{w}, frame.body);
  return total;
}

std::size_t encode_data_header(std::uint64_t offset, std::size_t payload_size, MutableBytes out,
                               std::uint8_t flags) {
  const std::size_t body = varint_size(offset) + payload_size;
  Writer w(out.data());
  w.u8(static_cast<std::uint8_t>(FrameType::data));
  w.u8(flags);
  w.varint(body);
  w.varint(offset);
  return static_cast<std::size_t>(w.pos() - out.data());
}

}  // namespace rendr::wire
