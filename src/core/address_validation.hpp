#pragma once
// Address validation of one datagram path (RFC 9000 §8 and §9.3; docs/design.md, "Address
// validation"). Sans-I/O: the runtime reports where each authenticated datagram came from, and
// the validator decides where the path's packets go and which probes are owed.
//
// - The path has a *current* address: where its packets go. A server path starts with the
//   address its OPEN or JOIN came from, unvalidated; the client's PROOF validates it (the PROOF
//   answers the OPEN_ACK or JOIN_ACK sent there), as does a retry token.
// - A datagram from another address never moves the path by itself. If it is the newest packet
//   of the path (a replay of an older one is ignored) the address becomes a *candidate*: it is
//   sent a PATH_CHALLENGE with 8 fresh random bytes, again after a probe timeout (doubling) up
//   to max_challenges times, and only a PATH_RESPONSE with those bytes *from that address*
//   makes it current. The challenge travels inside a protected packet, so only the holder of
//   the path's keys who receives datagrams at that address can answer it: a spoofed or
//   replayed packet gets a challenge sent to its claimed source, and nothing else.
// - Until an address is validated it is sent at most amplification_factor (3) times the bytes
//   received from it (RFC 9000 §8.1): the current address during the handshake, and every
//   challenge or response sent to a candidate.
// - A PATH_CHALLENGE from the peer is answered with a PATH_RESPONSE to the address it came from
//   (within that address's allowance).
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "core/peer_address.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

struct AddressValidationConfig {
  std::uint32_t max_challenges = 3;       // per candidate address, each with fresh data
  std::size_t max_candidates = 4;         // addresses validated at once; the oldest gives way
  std::size_t max_pending_responses = 4;  // PATH_RESPONSEs owed; the oldest gives way
  std::uint32_t amplification_factor = 3;
};

struct AddressValidationStats {
  std::uint64_t challenges_sent = 0;
  std::uint64_t responses_sent = 0;
  std::uint64_t validations = 0;            // a new address answered: the path moved to it
  std::uint64_t validations_failed = 0;     // a new address did not answer in time
  std::uint64_t amplification_blocked = 0;  // sends to an unvalidated address withheld (3x)
  std::uint64_t stale_ignored = 0;          // datagrams from a new address that were not the newest
  std::uint64_t responses_unmatched = 0;    // PATH_RESPONSEs with unknown data or from elsewhere
  std::uint64_t responses_dropped = 0;      // owed PATH_RESPONSEs dropped (queue full, no address)
  std::uint64_t bytes_to_unvalidated = 0;   // everything sent to unvalidated addresses
};

// One probe datagram: the frames it carries and where it goes (nullopt: the path's current
// address, also when that is unknown, as on a client's connected socket).
struct AddressProbe {
  std::optional<PeerAddress> to;
  std::optional<wire::PathChallengeData> challenge;
  std::optional<wire::PathChallengeData> response;
};

class AddressValidator {
 public:
  // Bytes a probe datagram costs beyond its frames (a protected packet's header and tag).
  static constexpr std::size_t kProbeOverhead = 13 + 16;
  static constexpr std::size_t kProbeFrameBytes = 3 + wire::kPathChallengeSize;

  AddressValidator() = default;
  explicit AddressValidator(const AddressValidationConfig& config) : config_(config) {}

  // The path's first address (a server's: the OPEN's or JOIN's source, with that datagram's
  // size); `validated`: proven already (a valid retry token; a client's dialed address).
  void start(const PeerAddress& first, std::size_t datagram_bytes, bool validated);
  // Where the path's packets go (nullopt: unknown; the carrier's own peer).
  const std::optional<PeerAddress>& current() const { return current_; }
  bool current_validated() const { return validated_; }

  // An authenticated datagram of `bytes` came from `from`. `newest`: its packet number is above
  // every other received on the path (only such a packet may start a validation).
  void on_datagram(const PeerAddress& from, std::size_t bytes, bool newest, Time now);
  // The client's PROOF arrived: it answers what was sent to the current address.
  void on_handshake_proven() { validated_ = true; }
  // A PATH_CHALLENGE from `from` (nullopt: the current address) is owed its PATH_RESPONSE.
  void on_challenge(const std::optional<PeerAddress>& from, const wire::PathChallengeData& data);
  // A PATH_RESPONSE from `from`; true if it validated `from`, which is now current.
  bool on_response(const PeerAddress& from, const wire::PathChallengeData& data);

  // The flow's own packets to the current address: what the 3x limit still allows (unlimited
  // once validated), and what went.
  std::uint64_t current_allowance() const;
  void on_sent_to_current(std::size_t bytes);
  void on_blocked() { ++stats_.amplification_blocked; }

  // The probe timeout of the path (spacing of challenges), kept up to date by the flow.
  void set_probe_timeout(Duration pto) { pto_ = pto; }
  // Whether next_probe would give a probe now.
  bool wants_probe() const;
  // The next probe datagram that is owed and within its address's allowance, recorded as sent.
  std::optional<AddressProbe> next_probe(Time now);
  static std::size_t probe_bytes(const AddressProbe& p) {
    return kProbeOverhead + kProbeFrameBytes * ((p.challenge ? 1 : 0) + (p.response ? 1 : 0));
  }
  // Challenges that timed out are owed again, or their address is given up.
  void on_timer(Time now);
  std::optional<Time> next_timer() const;

  const AddressValidationStats& stats() const { return stats_; }

 private:
  struct Candidate {
    PeerAddress address;
    std::uint64_t received = 0;
    std::uint64_t sent = 0;
    std::vector<wire::PathChallengeData> challenges;  // sent so far, any may be answered
    bool challenge_owed = true;
    std::uint32_t expiries = 0;
    Time deadline{};  // the current challenge (sent or waiting for allowance) times out
    bool blocked_counted = false;
  };
  struct Response {
    std::optional<PeerAddress> to;
    wire::PathChallengeData data{};
    bool blocked_counted = false;
  };

  bool is_current(const std::optional<PeerAddress>& a) const { return !a || a == current_; }
  Candidate* find(const PeerAddress& a);
  std::uint64_t allowance(std::uint64_t received, std::uint64_t sent) const;
  // What `to` may still be sent (nullopt: an address that is neither current nor a candidate).
  std::optional<std::uint64_t> allowance_of(const std::optional<PeerAddress>& to) const;
  void charge(const std::optional<PeerAddress>& to, std::size_t bytes);
  // The probe of what is owed to `to`, if it fits `to`'s allowance.
  std::optional<AddressProbe> probe_to(const std::optional<PeerAddress>& to) const;
  // The probe next_probe sends next (nullopt: nothing owed fits its allowance).
  std::optional<AddressProbe> pick() const;
  // Counts owed items the 3x limit holds back (once per challenge or response); called
  // whenever something becomes owed.
  void count_blocked();

  AddressValidationConfig config_;
  AddressValidationStats stats_;
  std::optional<PeerAddress> current_;
  bool validated_ = true;  // an unknown current address is the carrier's: nothing to validate
  std::uint64_t received_current_ = 0;
  std::uint64_t sent_current_ = 0;
  std::vector<Candidate> candidates_;  // oldest first
  std::deque<Response> responses_;
  Duration pto_ = std::chrono::seconds(1);
};

}  // namespace rendr::core
