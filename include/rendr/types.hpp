#pragma once
// Public vocabulary: modes, flow ids, path specs.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "rendr/tls.hpp"

namespace rendr {

// How a flow uses its paths: prime (one active path, the others standby), race (every frame on
// every path, the first copy wins) or bond (frames striped over the paths, bandwidths add up).
enum class Mode { prime, race, bond };
// "prime", "race" or "bond".
std::string_view to_string(Mode m);
// Parses "prime" / "race" / "bond"; returns false on anything else.
bool parse_mode(std::string_view text, Mode& out);

// A path's number within its flow (1, 2, ... in the order the paths were added).
using PathId = std::uint32_t;
// No path (e.g. active_path() of an empty Conn).
inline constexpr PathId kNoPath = 0;

// A flow's 128-bit id, random, fixed for the flow's life.
using FlowId = std::array<std::uint8_t, 16>;
// The id as 32 lower-case hex digits.
std::string to_hex(const FlowId& id);

// explicit_request: migrate(); death: the active path died; follow_peer: the peer moved (server
// side); quality: prime mode moved to a clearly better path.
enum class MigrateCause { explicit_request, death, follow_peer, quality };
// "explicit_request", "death", "follow_peer" or "quality".
std::string_view to_string(MigrateCause c);

// A udpflow path's congestion controller for what this end sends (each end picks its own):
// BBR (the default), model-based: it keeps its rate under random loss that is not congestion;
// or CUBIC or NewReno, loss-based (docs/design.md, "BBR").
enum class Congestion { cubic, new_reno, bbr };
// "cubic", "newreno" or "bbr".
std::string_view to_string(Congestion c);
// Parses "cubic" / "newreno" / "bbr"; returns false on anything else.
bool parse_congestion(std::string_view text, Congestion& out);

// One network path: "tcp://HOST:PORT", "quic://HOST:PORT" or "udpflow://HOST:PORT" (rendr over
// UDP; dialing it needs the udpflow carrier). Which transports can be dialed is the carriers' to
// say: parsing checks the syntax only, and dial() reports an unknown one as errc::bad_path_spec.
struct PathSpec {
  std::string transport = "tcp";  // "tcp", "quic" or "udpflow" (lower case)
  std::string host;               // name or numeric address (IPv6 without brackets)
  std::uint16_t port = 0;         // the peer's port
  // Bond mode: the path's share while the paths have room (weights 3 and 1 split what the
  // application writes 75/25); when it writes more than they carry, each path's capacity caps
  // its share. Also scales the path's rate in the delivery-time estimate ("?weight=N").
  std::uint32_t weight = 1;
  // quic:// paths: how the server is authenticated (default: the system trust store and the
  // path's host name). Not part of the URI; set it after parse(). Other transports ignore it.
  TlsClientConfig tls = {};
  // udpflow paths: the largest datagram (UDP payload bytes) path-MTU probing tries, from the
  // safe 1200 up; 0: the default, 8952 (jumbo frames' 9000 under IPv6 + UDP headers). Probing
  // never goes above what the route to the server takes whole either (its interface's MTU less
  // the headers: 1452 / 1472 on a 1500-byte Ethernet link, IPv6 / IPv4). A probe larger than
  // the real path MTU is lost, never fragmented.
  // quic paths: towards a peer on this host (a loopback address, or the local address itself)
  // QUIC sends datagrams up to this size without probing (0: the default, 65527, and never
  // above the route's MTU: 65507 on IPv4 loopback), and asks the server to send no larger; a
  // relay on this host that reads smaller datagrams needs its size here (1200: the server sends
  // 1200-byte datagrams, this end probes up to 1452 as ngtcp2 does elsewhere). Other peers
  // always get ngtcp2's path-MTU discovery. Not part of the URI.
  std::size_t max_datagram_size = 0;
  // udpflow paths: this end's congestion controller on the path; nullopt: the default (BBR).
  // Not part of the URI.
  std::optional<Congestion> congestion{};

  // Parses "SCHEME://HOST:PORT" (e.g. tcp, udpflow; the scheme is case-insensitive and stored
  // in lower case) or "HOST:PORT" (tcp); IPv6 as "udpflow://[::1]:PORT"; an optional
  // "?weight=N" (N >= 1) sets `weight`. A malformed scheme, host or port is bad_path_spec.
  static PathSpec parse(std::string_view uri, std::error_code& ec);
  static PathSpec parse(std::string_view uri);  // throws std::system_error
  // The URI form, "SCHEME://HOST:PORT" (with "?weight=N" when the weight is not 1).
  std::string to_string() const;
};

}  // namespace rendr
