#include "wire/datagram.hpp"

#include <openssl/evp.h>

#include <cstring>
#include <stdexcept>
#include <utility>

namespace rendr::wire::datagram {

namespace {

void put_u64(Byte* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<Byte>(v >> (56 - 8 * i));
}

void put_u32(Byte* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<Byte>(v >> (24 - 8 * i));
}

std::uint64_t get_u64(const Byte* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | in[i];
  return v;
}

std::uint32_t get_u32(const Byte* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | in[i];
  return v;
}

}  // namespace

std::string_view to_string(PacketError e) {
  switch (e) {
    case PacketError::none:
      return "none";
    case PacketError::too_short:
      return "too_short";
    case PacketError::unknown_kind:
      return "unknown_kind";
    case PacketError::auth_failed:
      return "auth_failed";
  }
  return "?";
}

PacketError parse_header(ConstBytes datagram, PacketHeader& out) {
  if (datagram.empty()) return PacketError::too_short;
  const Byte* p = datagram.data();
  switch (static_cast<PacketKind>(p[0])) {
    case PacketKind::handshake:
      if (datagram.size() < kHandshakeHeaderSize) return PacketError::too_short;
      out.kind = PacketKind::handshake;
      out.dcid = get_u64(p + 1);
      out.scid = get_u64(p + 1 + kConnectionIdSize);
      out.truncated_pn = get_u32(p + 1 + 2 * kConnectionIdSize);
      out.size = kHandshakeHeaderSize;
      return PacketError::none;
    case PacketKind::protected_:
      if (datagram.size() < kProtectedHeaderSize + kTagSize) return PacketError::too_short;
      out.kind = PacketKind::protected_;
      out.dcid = get_u64(p + 1);
      out.scid = 0;
      out.truncated_pn = get_u32(p + 1 + kConnectionIdSize);
      out.size = kProtectedHeaderSize;
      return PacketError::none;
  }
  return PacketError::unknown_kind;
}

std::optional<ConnectionId> peek_dcid(ConstBytes datagram) {
  PacketHeader header;
  if (parse_header(datagram, header) != PacketError::none) return std::nullopt;
  return header.dcid;
}

std::size_t encode_handshake_header(ConnectionId dcid, ConnectionId scid, std::uint64_t pn,
                                    MutableBytes out) {
  if (out.size() < kHandshakeHeaderSize) return 0;
  out[0] = static_cast<Byte>(PacketKind::handshake);
  put_u64(out.data() + 1, dcid);
  put_u64(out.data() + 1 + kConnectionIdSize, scid);
  put_u32(out.data() + 1 + 2 * kConnectionIdSize, static_cast<std::uint32_t>(pn));
  return kHandshakeHeaderSize;
}

std::size_t encode_protected_header(ConnectionId dcid, std::uint64_t pn, MutableBytes out) {
  if (out.size() < kProtectedHeaderSize) return 0;
  out[0] = static_cast<Byte>(PacketKind::protected_);
  put_u64(out.data() + 1, dcid);
  put_u32(out.data() + 1 + kConnectionIdSize, static_cast<std::uint32_t>(pn));
  return kProtectedHeaderSize;
}

std::uint64_t reconstruct_pn(std::optional<std::uint64_t> largest_received,
                             std::uint32_t truncated) {
  constexpr std::uint64_t kWindow = std::uint64_t{1} << 32;
  constexpr std::uint64_t kHalfWindow = kWindow / 2;
  constexpr std::uint64_t kMask = kWindow - 1;
  const std::uint64_t expected = largest_received ? *largest_received + 1 : 0;
  const std::uint64_t candidate = (expected & ~kMask) | truncated;
  // The RFC's signed comparisons, written so that nothing underflows.
  if (expected >= kHalfWindow && candidate <= expected - kHalfWindow &&
      candidate < (std::uint64_t{1} << 62) - kWindow)
    return candidate + kWindow;
  if (candidate > expected + kHalfWindow && candidate >= kWindow) return candidate - kWindow;
  return candidate;
}

PacketProtector::PacketProtector(const PacketKeys& keys) : iv_(keys.iv) {
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr ||
      EVP_CipherInit_ex(ctx_, EVP_aes_128_gcm(), nullptr, keys.key.data(), nullptr, 1) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw std::runtime_error("rendr: AES-128-GCM setup failed");
  }
}

PacketProtector::~PacketProtector() {
  EVP_CIPHER_CTX_free(ctx_);  // also cleanses the key schedule
}

PacketProtector::PacketProtector(PacketProtector&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), iv_(other.iv_) {}

PacketProtector& PacketProtector::operator=(PacketProtector&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    iv_ = other.iv_;
  }
  return *this;
}

bool PacketProtector::run(bool encrypt, std::uint64_t pn, ConstBytes aad, Byte* data,
                          std::size_t size, Byte* tag) {
  if (ctx_ == nullptr || pn > kMaxPacketNumber) return false;
  std::array<Byte, kIvSize> nonce = iv_;
  for (int i = 0; i < 8; ++i)
    nonce[kIvSize - 1 - i] ^= static_cast<Byte>(pn >> (8 * i));
  int len = 0;
  // Only the nonce changes per packet: the cipher and key set in the constructor stay.
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce.data(), encrypt ? 1 : 0) != 1)
    return false;
  if (EVP_CipherUpdate(ctx_, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return false;
  if (size > 0 && EVP_CipherUpdate(ctx_, data, &len, data, static_cast<int>(size)) != 1)
    return false;
  if (!encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) != 1)
    return false;
  int final_len = 0;
  if (EVP_CipherFinal_ex(ctx_, data + len, &final_len) != 1) return false;  // tag mismatch
  return !encrypt ||
         EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), tag) == 1;
}

std::size_t PacketProtector::seal(ConnectionId dcid, std::uint64_t pn, MutableBytes packet,
                                  std::size_t payload_size) {
  const std::size_t total = kProtectedHeaderSize + payload_size + kTagSize;
  if (packet.size() < total || pn > kMaxPacketNumber) return 0;
  encode_protected_header(dcid, pn, packet);
  Byte* payload = packet.data() + kProtectedHeaderSize;
  if (!run(true, pn, packet.first(kProtectedHeaderSize), payload, payload_size,
           payload + payload_size))
    return 0;
  return total;
}

PacketError PacketProtector::open(const PacketHeader& header, std::uint64_t pn,
                                  MutableBytes datagram, MutableBytes& frames) {
  if (header.kind != PacketKind::protected_ || header.size != kProtectedHeaderSize)
    return PacketError::unknown_kind;
  if (datagram.size() < kProtectedHeaderSize + kTagSize) return PacketError::too_short;
  // The header's pn must be the one the nonce is built from (the AAD covers only its low bits).
  if (static_cast<std::uint32_t>(pn) != header.truncated_pn) return PacketError::auth_failed;
  const std::size_t payload_size = datagram.size() - kProtectedHeaderSize - kTagSize;
  Byte* payload = datagram.data() + kProtectedHeaderSize;
  if (!run(false, pn, datagram.first(kProtectedHeaderSize), payload, payload_size,
           payload + payload_size))
    return PacketError::auth_failed;
  frames = MutableBytes(payload, payload_size);
  return PacketError::none;
}

}  // namespace rendr::wire::datagram
