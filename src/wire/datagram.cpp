#include "wire/datagram.hpp"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <strings.h>

#include <cstring>
#include <stdexcept>
#include <string_view>
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

// AES-128-GCM as OpenSSL's provider implements it (provider-cipher(7)): the functions EVP calls.
// Calling them directly skips what OpenSSL 3.0's EVP_CipherInit_ex does on every packet (the IV
// length looked up through an OSSL_PARAM round trip) and the ctrl-to-param translation of the
// tag; the bytes produced are the same.
struct GcmProvider {
  EVP_CIPHER* cipher = nullptr;  // holds the provider, and so these functions, loaded
  void* provider_context = nullptr;
  OSSL_FUNC_cipher_newctx_fn* newctx = nullptr;
  OSSL_FUNC_cipher_freectx_fn* freectx = nullptr;
  OSSL_FUNC_cipher_encrypt_init_fn* encrypt_init = nullptr;
  OSSL_FUNC_cipher_decrypt_init_fn* decrypt_init = nullptr;
  OSSL_FUNC_cipher_update_fn* update = nullptr;
  OSSL_FUNC_cipher_final_fn* final = nullptr;
  OSSL_FUNC_cipher_get_ctx_params_fn* get_ctx_params = nullptr;
  OSSL_FUNC_cipher_set_ctx_params_fn* set_ctx_params = nullptr;

  bool complete() const {
    return provider_context != nullptr && newctx != nullptr && freectx != nullptr &&
           encrypt_init != nullptr && decrypt_init != nullptr && update != nullptr &&
           final != nullptr && get_ctx_params != nullptr && set_ctx_params != nullptr;
  }
};

bool is_first_name(const char* names, std::string_view name) {
  const std::string_view all(names);
  const std::string_view first = all.substr(0, all.find(':'));
  return first.size() == name.size() && strncasecmp(first.data(), name.data(), name.size()) == 0;
}

void take_functions(const OSSL_DISPATCH* f, GcmProvider& out) {
  for (; f->function_id != 0; ++f) {
    switch (f->function_id) {
      case OSSL_FUNC_CIPHER_NEWCTX:
        out.newctx = OSSL_FUNC_cipher_newctx(f);
        break;
      case OSSL_FUNC_CIPHER_FREECTX:
        out.freectx = OSSL_FUNC_cipher_freectx(f);
        break;
      case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
        out.encrypt_init = OSSL_FUNC_cipher_encrypt_init(f);
        break;
      case OSSL_FUNC_CIPHER_DECRYPT_INIT:
        out.decrypt_init = OSSL_FUNC_cipher_decrypt_init(f);
        break;
      case OSSL_FUNC_CIPHER_UPDATE:
        out.update = OSSL_FUNC_cipher_update(f);
        break;
      case OSSL_FUNC_CIPHER_FINAL:
        out.final = OSSL_FUNC_cipher_final(f);
        break;
      case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
        out.get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(f);
        break;
      case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
        out.set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(f);
        break;
      default:
        break;
    }
  }
}

// The provider EVP would use for AES-128-GCM (default library context and properties). The
// fetched cipher is never freed (and stays reachable, for leak checkers).
GcmProvider find_gcm_provider() {
  GcmProvider gcm;
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  if (cipher == nullptr) return gcm;
  gcm.cipher = cipher;
  const OSSL_PROVIDER* provider = EVP_CIPHER_get0_provider(cipher);
  int no_cache = 0;
  const OSSL_ALGORITHM* algorithms =
      OSSL_PROVIDER_query_operation(provider, OSSL_OP_CIPHER, &no_cache);
  for (const OSSL_ALGORITHM* a = algorithms; a != nullptr && a->algorithm_names != nullptr; ++a) {
    if (is_first_name(a->algorithm_names, EVP_CIPHER_get0_name(cipher))) {
      take_functions(a->implementation, gcm);
      break;
    }
  }
  OSSL_PROVIDER_unquery_operation(provider, OSSL_OP_CIPHER, algorithms);
  gcm.provider_context = OSSL_PROVIDER_get0_provider_ctx(provider);
  return gcm;
}

const GcmProvider& gcm_provider() {
  static const GcmProvider gcm = find_gcm_provider();
  return gcm;
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
  const GcmProvider& gcm = gcm_provider();
  if (gcm.complete()) cipher_ = gcm.newctx(gcm.provider_context);
  if (cipher_ == nullptr ||
      gcm.encrypt_init(cipher_, keys.key.data(), keys.key.size(), nullptr, 0, nullptr) != 1) {
    if (cipher_ != nullptr) gcm.freectx(cipher_);  // also cleanses the key schedule
    throw std::runtime_error("rendr: AES-128-GCM setup failed");
  }
}

PacketProtector::~PacketProtector() {
  if (cipher_ != nullptr) gcm_provider().freectx(cipher_);  // also cleanses the key schedule
}

PacketProtector::PacketProtector(PacketProtector&& other) noexcept
    : cipher_(std::exchange(other.cipher_, nullptr)), iv_(other.iv_) {}

PacketProtector& PacketProtector::operator=(PacketProtector&& other) noexcept {
  if (this != &other) {
    if (cipher_ != nullptr) gcm_provider().freectx(cipher_);
    cipher_ = std::exchange(other.cipher_, nullptr);
    iv_ = other.iv_;
  }
  return *this;
}

bool PacketProtector::start(bool encrypt, std::uint64_t pn, ConstBytes aad) {
  if (cipher_ == nullptr || pn > kMaxPacketNumber) return false;
  const GcmProvider& gcm = gcm_provider();
  std::array<Byte, kIvSize> nonce = iv_;
  for (int i = 0; i < 8; ++i)
    nonce[kIvSize - 1 - i] ^= static_cast<Byte>(pn >> (8 * i));
  // Only the nonce changes per packet: the key set in the constructor stays.
  auto* const init = encrypt ? gcm.encrypt_init : gcm.decrypt_init;
  if (init(cipher_, nullptr, 0, nonce.data(), nonce.size(), nullptr) != 1) return false;
  std::size_t len = 0;
  // The provider's update wants an output size of at least the input even for AAD.
  return gcm.update(cipher_, nullptr, &len, aad.size(), aad.data(), aad.size()) == 1;
}

bool PacketProtector::crypt(const Byte* in, Byte* out, std::size_t size) {
  if (size == 0) return true;
  std::size_t len = 0;
  return gcm_provider().update(cipher_, out, &len, size, in, size) == 1 && len == size;
}

bool PacketProtector::finish_seal(Byte* tag) {
  const GcmProvider& gcm = gcm_provider();
  std::size_t final_len = 0;
  if (gcm.final(cipher_, tag, &final_len, 0) != 1) return false;
  OSSL_PARAM tag_param[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize),
      OSSL_PARAM_construct_end()};
  return gcm.get_ctx_params(cipher_, tag_param) == 1;
}

bool PacketProtector::finish_open(Byte* tag) {
  const GcmProvider& gcm = gcm_provider();
  OSSL_PARAM tag_param[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize),
      OSSL_PARAM_construct_end()};
  if (gcm.set_ctx_params(cipher_, tag_param) != 1) return false;
  std::size_t final_len = 0;
  return gcm.final(cipher_, tag, &final_len, 0) == 1;  // 0: the tag does not match
}

std::size_t PacketProtector::seal(ConnectionId dcid, std::uint64_t pn, MutableBytes packet,
                                  std::size_t payload_size) {
  if (packet.size() < kProtectedHeaderSize + payload_size + kTagSize) return 0;
  const ConstBytes payload(packet.data() + kProtectedHeaderSize, payload_size);
  return seal_gathered(dcid, pn, std::span<const ConstBytes>(&payload, 1), packet);
}

std::size_t PacketProtector::seal_gathered(ConnectionId dcid, std::uint64_t pn,
                                           std::span<const ConstBytes> plaintext,
                                           MutableBytes out) {
  std::size_t payload_size = 0;
  for (const ConstBytes piece : plaintext)
    payload_size += piece.size();
  const std::size_t total = kProtectedHeaderSize + payload_size + kTagSize;
  if (out.size() < total || pn > kMaxPacketNumber) return 0;
  encode_protected_header(dcid, pn, out);
  if (!start(true, pn, out.first(kProtectedHeaderSize))) return 0;
  Byte* at = out.data() + kProtectedHeaderSize;
  for (const ConstBytes piece : plaintext) {
    if (!crypt(piece.data(), at, piece.size())) return 0;
    at += piece.size();
  }
  return finish_seal(at) ? total : 0;
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
  if (!start(false, pn, datagram.first(kProtectedHeaderSize)) ||
      !crypt(payload, payload, payload_size) || !finish_open(payload + payload_size))
    return PacketError::auth_failed;
  frames = MutableBytes(payload, payload_size);
  return PacketError::none;
}

}  // namespace rendr::wire::datagram
