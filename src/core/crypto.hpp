#pragma once
// Handshake cryptography: X25519 key agreement, HKDF flow key, HMAC proofs, udpflow packet
// keys (OpenSSL).
#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "wire/datagram.hpp"
#include "wire/frame.hpp"

namespace rendr::core::crypto {

using FlowKey = std::array<wire::Byte, 32>;

void random_bytes(std::span<wire::Byte> out);

// An ephemeral X25519 key pair.
class KeyPair {
 public:
  KeyPair();
  ~KeyPair();
  KeyPair(KeyPair&&) noexcept;
  KeyPair& operator=(KeyPair&&) noexcept;
  const wire::KeyShare& public_key() const { return public_; }
  // Computes the shared secret with the peer's public key; false if the peer key is invalid.
  bool agree(const wire::KeyShare& peer, std::array<wire::Byte, 32>& shared) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  wire::KeyShare public_{};
};

// flow key = HKDF-SHA256(ikm = shared || psk, salt = client_nonce || server_nonce,
//                        info = "rendr v1 flow key" || flow_id)
FlowKey derive_flow_key(std::span<const wire::Byte> shared, std::span<const wire::Byte> psk,
                        const wire::Nonce& client_nonce, const wire::Nonce& server_nonce,
                        const wire::FlowId& flow_id);

// HKDF-SHA256 (RFC 5869, extract then expand) of `ikm` into `out` (at most 255 * 32 bytes).
void hkdf_sha256(std::span<const wire::Byte> ikm, std::span<const wire::Byte> salt,
                 std::span<const wire::Byte> info, std::span<wire::Byte> out);

// The direction a udpflow packet travels: each direction of each path has its own keys.
enum class PacketDirection : std::uint8_t { client_to_server, server_to_client };

// The AES-128-GCM key and iv protecting one direction of one datagram path (docs/protocol.md
// §10.4): HKDF-SHA256(secret = flow key, salt = "rendr udpflow v1",
//                     info = ("c2s" | "s2c") || dcid (8, big-endian) || ("key" | "iv")).
// `dcid` is the connection id the packets carry (the receiver's id for the path), so two paths
// of one flow, whose packet numbers both start at 0, never share a key and nonce.
wire::datagram::PacketKeys derive_packet_keys(const FlowKey& flow_key, PacketDirection direction,
                                              wire::datagram::ConnectionId dcid);

wire::Mac open_ack_confirm(const FlowKey& key, const wire::FlowId& flow_id,
                           const wire::Nonce& client_nonce, const wire::Nonce& server_nonce);
// The client's PROOF after a verified OPEN_ACK: HMAC(key, "rendr client-open" || flow_id || Nc ||
// Ns). Until it arrives the server delivers nothing and does not offer the flow to accept().
wire::Mac open_proof(const FlowKey& key, const wire::FlowId& flow_id,
                     const wire::Nonce& client_nonce, const wire::Nonce& server_nonce);
wire::Mac join_mac(const FlowKey& key, const wire::FlowId& flow_id, std::uint64_t path_id,
                   std::uint64_t counter, const wire::Nonce& nonce);
wire::Mac join_ack_mac(const FlowKey& key, const wire::FlowId& flow_id, std::uint64_t path_id,
                       std::uint64_t counter, const wire::Nonce& nonce, wire::Status status,
                       std::uint64_t delivered, const wire::Nonce& challenge);
// The client's PROOF after a verified JOIN_ACK: binds the JOIN to the server's fresh challenge,
// so a recorded JOIN replayed later cannot attach a path.
wire::Mac join_proof(const FlowKey& key, const wire::FlowId& flow_id, std::uint64_t path_id,
                     std::uint64_t counter, const wire::Nonce& nonce, const wire::Nonce& challenge);

// HMAC-SHA256 of `msg` under `key` (retry tokens: core/retry_token.hpp).
wire::Mac hmac_sha256(std::span<const wire::Byte> key, std::span<const wire::Byte> msg);

// Constant-time comparison.
bool equal(const wire::Mac& a, const wire::Mac& b);

// Sliding window over JOIN counters: accepts each counter at most once, rejects counters
// older than the window (64).
class ReplayWindow {
 public:
  bool accept(std::uint64_t counter);

 private:
  std::uint64_t highest_ = 0;
  std::uint64_t seen_ = 0;  // bit i: counter highest_ - i seen
  bool any_ = false;
};

}  // namespace rendr::core::crypto
