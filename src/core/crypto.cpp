#include "core/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace rendr::core::crypto {

namespace {

void put_u64(std::vector<wire::Byte>& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i)
    out.push_back(static_cast<wire::Byte>(v >> (8 * i)));
}

template <class Range>
void put(std::vector<wire::Byte>& out, const Range& r) {
  out.insert(out.end(), std::begin(r), std::end(r));
}

void put_label(std::vector<wire::Byte>& out, std::string_view label) {
  out.insert(out.end(), label.begin(), label.end());
}

wire::Mac hmac(const FlowKey& key, const std::vector<wire::Byte>& msg) {
  return hmac_sha256(key, msg);
}

}  // namespace

wire::Mac hmac_sha256(std::span<const wire::Byte> key, std::span<const wire::Byte> msg) {
  wire::Mac mac{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(),
           mac.data(), &len) == nullptr ||
      len != mac.size()) {
    throw std::runtime_error("rendr: HMAC-SHA256 failed");
  }
  return mac;
}

void random_bytes(std::span<wire::Byte> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1)
    throw std::runtime_error("rendr: RAND_bytes failed");
}

struct KeyPair::Impl {
  EVP_PKEY* key = nullptr;
  ~Impl() { EVP_PKEY_free(key); }
};

KeyPair::KeyPair() : impl_(std::make_unique<Impl>()) {
  impl_->key = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
  if (impl_->key == nullptr) throw std::runtime_error("rendr: X25519 keygen failed");
  std::size_t len = public_.size();
  if (EVP_PKEY_get_raw_public_key(impl_->key, public_.data(), &len) != 1 || len != public_.size())
    throw std::runtime_error("rendr: X25519 public key export failed");
}

KeyPair::~KeyPair() = default;
KeyPair::KeyPair(KeyPair&&) noexcept = default;
KeyPair& KeyPair::operator=(KeyPair&&) noexcept = default;

bool KeyPair::agree(const wire::KeyShare& peer, std::array<wire::Byte, 32>& shared) const {
  EVP_PKEY* peer_key =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), peer.size());
  if (peer_key == nullptr) return false;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(impl_->key, nullptr);
  bool ok = ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
            EVP_PKEY_derive_set_peer(ctx, peer_key) == 1;
  std::size_t len = shared.size();
  ok = ok && EVP_PKEY_derive(ctx, shared.data(), &len) == 1 && len == shared.size();
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer_key);
  if (!ok) return false;
  // An all-zero secret means a low-order peer point: refuse it.
  wire::Byte acc = 0;
  for (auto b : shared)
    acc |= b;
  return acc != 0;
}

void hkdf_sha256(std::span<const wire::Byte> ikm, std::span<const wire::Byte> salt,
                 std::span<const wire::Byte> info, std::span<wire::Byte> out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers; HKDF only reads these buffers.
  auto octets = [](const char* name, std::span<const wire::Byte> bytes) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<wire::Byte*>(bytes.data()),
                                             bytes.size());
  };
  // OpenSSL refuses an empty octet string; an absent salt or info means the same (RFC 5869).
  OSSL_PARAM params[5];
  std::size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = octets(OSSL_KDF_PARAM_KEY, ikm);
  if (!salt.empty()) params[n++] = octets(OSSL_KDF_PARAM_SALT, salt);
  if (!info.empty()) params[n++] = octets(OSSL_KDF_PARAM_INFO, info);
  params[n] = OSSL_PARAM_construct_end();
  const bool ok = ctx != nullptr && EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) throw std::runtime_error("rendr: HKDF failed");
}

wire::datagram::PacketKeys derive_packet_keys(const FlowKey& flow_key, PacketDirection direction,
                                              wire::datagram::ConnectionId dcid) {
  static constexpr std::string_view kSalt = "rendr udpflow v1";
  const std::span<const wire::Byte> salt(reinterpret_cast<const wire::Byte*>(kSalt.data()),
                                         kSalt.size());
  auto info = [&](std::string_view label) {
    std::vector<wire::Byte> out;
    put_label(out, direction == PacketDirection::client_to_server ? "c2s" : "s2c");
    put_u64(out, dcid);
    put_label(out, label);
    return out;
  };
  wire::datagram::PacketKeys keys;
  hkdf_sha256(flow_key, salt, info("key"), keys.key);
  hkdf_sha256(flow_key, salt, info("iv"), keys.iv);
  return keys;
}

FlowKey derive_flow_key(std::span<const wire::Byte> shared, std::span<const wire::Byte> psk,
                        const wire::Nonce& client_nonce, const wire::Nonce& server_nonce,
                        const wire::FlowId& flow_id) {
  std::vector<wire::Byte> ikm(shared.begin(), shared.end());
  ikm.insert(ikm.end(), psk.begin(), psk.end());
  std::vector<wire::Byte> salt;
  put(salt, client_nonce);
  put(salt, server_nonce);
  std::vector<wire::Byte> info;
  put_label(info, "rendr v1 flow key");
  put(info, flow_id);

  FlowKey key{};
  hkdf_sha256(ikm, salt, info, key);
  OPENSSL_cleanse(ikm.data(), ikm.size());
  return key;
}

wire::Mac open_ack_confirm(const FlowKey& key, const wire::FlowId& flow_id,
                           const wire::Nonce& client_nonce, const wire::Nonce& server_nonce) {
  std::vector<wire::Byte> msg;
  put_label(msg, "rendr open-ack");
  put(msg, flow_id);
  put(msg, client_nonce);
  put(msg, server_nonce);
  return hmac(key, msg);
}

wire::Mac open_proof(const FlowKey& key, const wire::FlowId& flow_id,
                     const wire::Nonce& client_nonce, const wire::Nonce& server_nonce) {
  std::vector<wire::Byte> msg;
  put_label(msg, "rendr client-open");
  put(msg, flow_id);
  put(msg, client_nonce);
  put(msg, server_nonce);
  return hmac(key, msg);
}

wire::Mac join_mac(const FlowKey& key, const wire::FlowId& flow_id, std::uint64_t path_id,
                   std::uint64_t counter, const wire::Nonce& nonce) {
  std::vector<wire::Byte> msg;
  put_label(msg, "rendr join");
  put(msg, flow_id);
  put_u64(msg, path_id);
  put_u64(msg, counter);
  put(msg, nonce);
  return hmac(key, msg);
}

wire::Mac join_ack_mac(const FlowKey& key, const wire::FlowId& flow_id, std::uint64_t path_id,
                       std::uint64_t counter, const wire::Nonce& nonce, wire::Status status,
                       std::uint64_t delivered, const wire::Nonce& challenge) {
  std::vector<wire::Byte> msg;
  put_label(msg, "rendr join-ack");
  put(msg, flow_id);
  put_u64(msg, path_id);
  put_u64(msg, counter);
  put(msg, nonce);
  msg.push_back(static_cast<wire::Byte>(status));
  put_u64(msg, delivered);
  put(msg, challenge);
  return hmac(key, msg);
}

wire::Mac join_proof(const FlowKey& key, const wire::FlowId& flow_id, std::uint64_t path_id,
                     std::uint64_t counter, const wire::Nonce& nonce,
                     const wire::Nonce& challenge) {
  std::vector<wire::Byte> msg;
  put_label(msg, "rendr client-join");
  put(msg, flow_id);
  put_u64(msg, path_id);
  put_u64(msg, counter);
  put(msg, nonce);
  put(msg, challenge);
  return hmac(key, msg);
}

bool equal(const wire::Mac& a, const wire::Mac& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ReplayWindow::accept(std::uint64_t counter) {
  constexpr std::uint64_t kWindow = 64;
  if (!any_) {
    any_ = true;
    highest_ = counter;
    seen_ = 1;
    return true;
  }
  if (counter > highest_) {
    const std::uint64_t shift = counter - highest_;
    seen_ = shift >= kWindow ? 0 : seen_ << shift;
    seen_ |= 1;
    highest_ = counter;
    return true;
  }
  const std::uint64_t age = highest_ - counter;
  if (age >= kWindow) return false;
  const std::uint64_t bit = std::uint64_t{1} << age;
  if (seen_ & bit) return false;
  seen_ |= bit;
  return true;
}

}  // namespace rendr::core::crypto
