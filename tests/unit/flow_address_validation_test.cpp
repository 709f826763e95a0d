// Address validation of datagram paths through core::Flow and core::Endpoint: a client whose NAT
// rebinds is followed once its new address answered a challenge, a spoofed source never gets the
// flow's packets, an unvalidated address never gets more than 3x what it sent, and a listener
// under load answers OPENs with a RETRY the client follows.
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "core/endpoint.hpp"
#include "core/flow.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kProtected = 13 + 16;  // header + tag
constexpr std::size_t kHandshake = 21;

bool is_handshake(const std::vector<wire::Frame>& frames) {
  if (frames.empty()) return false;
  const auto& b = frames.front().body;
  return std::holds_alternative<wire::Open>(b) || std::holds_alternative<wire::OpenAck>(b) ||
         std::holds_alternative<wire::Join>(b) || std::holds_alternative<wire::JoinAck>(b) ||
         std::holds_alternative<wire::Retry>(b);
}

template <class T>
bool carries(const std::vector<wire::Frame>& frames) {
  return std::any_of(frames.begin(), frames.end(),
                     [](const wire::Frame& f) { return std::holds_alternative<T>(f.body); });
}

std::vector<wire::Frame> decode_all(const wire::Slice& backing) {
  std::vector<wire::Frame> frames;
  std::size_t offset = 0;
  while (offset < backing.size()) {
    wire::Frame f;
    const auto r = wire::decode(backing.bytes().subspan(offset), f);
    if (r.error != wire::DecodeError::none) break;
    offset += r.consumed;
    frames.push_back(std::move(f));
  }
  return frames;
}

// One client flow with one datagram path behind a NAT, a listener (core::Endpoint) and its
// server flow, in virtual time. The server sees each client datagram with the NAT's current
// source address; the client receives only what the server sends to that address (a rebinding
// forgets the old mapping). An attacker may copy the client's packets and send them from another
// address, ahead of the genuine ones.
class NatPair {
 public:
  struct Datagram {
    Time at;
    bool to_server = true;
    std::uint64_t number = 0;
    std::vector<wire::Byte> bytes;
    PeerAddress from, to;
  };

  explicit NatPair(FlowConfig config = {}, EndpointLimits limits = {})
      : config_(config), endpoint_(config, limits) {
    client_ = Flow::make_client(config_, now_);
    PathOptions o;
    o.transport = TransportKind::datagram;
    path_ = client_->add_path(now_, o);
  }

  Flow& client() { return *client_; }
  Flow& server() { return *server_; }
  bool has_server() const { return server_ != nullptr; }
  PathId server_path() const { return server_path_; }
  PathId client_path() const { return path_; }
  Endpoint& endpoint() { return endpoint_; }
  Time now() const { return now_; }
  const PeerAddress& client_address() const { return client_address_; }

  // The NAT gives the client a new source port; the old mapping is gone.
  void rebind() { client_address_ = peer_address_v4(0x0a000001, ++client_port_); }
  // Every protected client packet is also sent from `spoofed`, arriving just before the genuine
  // copy (nullopt: stop). `small_only`: only packets of at most 64 bytes, and just one.
  void spoof(std::optional<PeerAddress> spoofed, bool one_small = false) {
    spoofed_ = spoofed;
    spoof_one_small_ = one_small;
  }

  // What the server sent to and received from each address (whole datagrams).
  std::map<PeerAddress, std::uint64_t> sent_to, received_from;
  std::map<PeerAddress, std::uint64_t> data_packets_to;
  // The frames of the first datagram the server sent to each address.
  std::map<PeerAddress, std::vector<wire::Frame>> first_to;
  // Times the server's peer address for the path changed (seen before each of its sends).
  std::uint64_t address_changes = 0;
  std::optional<bool> validated_at_creation;
  std::size_t open_bytes = 0, retry_bytes = 0;

  void settle(Duration limit) {
    const Time stop = now_ + limit;
    for (int guard = 0; guard < 1'000'000; ++guard) {
      if (step()) continue;
      std::optional<Time> t = client_->next_deadline();
      auto consider = [&](std::optional<Time> x) {
        if (x && (!t || *x < *t)) t = x;
      };
      if (server_) consider(server_->next_deadline());
      if (!in_flight_.empty()) consider(in_flight_.front().at);
      if (!t || *t > stop) {
        now_ = std::max(now_, stop);
        return;
      }
      now_ = std::max(now_, *t);
      client_->on_timer(now_);
      if (server_) server_->on_timer(now_);
    }
  }

  // Client -> server bytes of a pattern, read and checked on the server, until `total` are read.
  std::uint64_t transfer(std::uint64_t total, Duration limit) {
    std::vector<wire::Byte> chunk(16 * 1024), got(64 * 1024);
    const Time stop = now_ + limit;
    while (now_ < stop && received_ < total) {
      while (written_ < total && client_->write_capacity() > 0) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - written_));
        for (std::size_t i = 0; i < n; ++i)
          chunk[i] = pattern(written_ + i);
        const std::size_t w = client_->write(std::span(chunk.data(), n), now_);
        if (w == 0) break;
        written_ += w;
      }
      if (server_) {
        while (const std::size_t n = server_->read(std::span(got.data(), got.size()), now_)) {
          for (std::size_t i = 0; i < n; ++i) {
            if (got[i] != pattern(received_ + i)) return received_;  // corrupt: stop short
          }
          received_ += n;
        }
      }
      settle(1ms);
    }
    return received_;
  }

 private:
  static wire::Byte pattern(std::uint64_t at) { return static_cast<wire::Byte>(at * 131 + 7); }

  void send(bool to_server, const wire::TransmitBatch& out, const PeerAddress& from,
            const PeerAddress& to) {
    for (const auto& p : out.packets()) {
      Datagram d{now_ + 5ms, to_server, p.number, {}, from, to};
      for (const auto& f : out.frames_of(p)) {
        d.bytes.insert(d.bytes.end(), f.header_bytes().begin(), f.header_bytes().end());
        d.bytes.insert(d.bytes.end(), f.payload.bytes().begin(), f.payload.bytes().end());
      }
      const auto frames = decode_all(wire::Slice::copy_of(d.bytes));
      const std::size_t size = d.bytes.size() + (is_handshake(frames) ? kHandshake : kProtected);
      if (!to_server) {
        sent_to[to] += size;
        if (carries<wire::Data>(frames)) ++data_packets_to[to];
        first_to.try_emplace(to, frames);
      } else if (spoofed_ && !is_handshake(frames) && (!spoof_one_small_ || size <= 64)) {
        Datagram copy = d;
        copy.from = *spoofed_;
        copy.at -= 1us;
        insert(std::move(copy));
        if (spoof_one_small_) spoofed_.reset();
      }
      insert(std::move(d));
    }
  }

  void insert(Datagram d) {
    auto it = std::upper_bound(in_flight_.begin(), in_flight_.end(), d.at,
                               [](Time t, const Datagram& x) { return t < x.at; });
    in_flight_.insert(it, std::move(d));
  }

  void deliver(const Datagram& d) {
    const wire::Slice backing = wire::Slice::copy_of(d.bytes);
    const auto frames = decode_all(backing);
    if (frames.empty()) return;
    const std::size_t size = d.bytes.size() + (is_handshake(frames) ? kHandshake : kProtected);
    if (!d.to_server) {
      if (d.to == client_address_) client_->on_packet(path_, d.number, frames, backing, now_);
      return;
    }
    received_from[d.from] += size;
    if (is_handshake(frames)) {
      if (server_) return;  // a repeat: not modelled
      listener_first_packet(frames, d, size);
      return;
    }
    if (server_) {
      server_->on_packet(server_path_, d.number, frames, backing, now_, PacketSource{d.from, size});
    }
  }

  // The listener: a handshake packet's frames (a RETRY's token, then the OPEN).
  void listener_first_packet(const std::vector<wire::Frame>& frames, const Datagram& d,
                             std::size_t size) {
    DatagramOrigin origin{d.from, size, std::nullopt};
    std::size_t first = 0;
    if (const auto* r = std::get_if<wire::Retry>(&frames.front().body)) {
      origin.token = r->token;
      first = 1;
    }
    if (first >= frames.size()) return;
    open_bytes = size;
    PathOptions carrier;
    carrier.transport = TransportKind::datagram;
    const ConnectionId conn = endpoint_.on_connection(now_);
    Admission a = endpoint_.on_first_frame(conn, frames[first], now_, carrier, origin);
    if (a.kind == Admission::Kind::open) {
      server_ = std::move(a.created);
      server_path_ = static_cast<PathId>(std::get<wire::Open>(frames[first].body).path_id);
      validated_at_creation = server_->peer_address_validated(server_path_);
    } else if (a.kind == Admission::Kind::refuse && a.answer) {
      // Sent back statelessly from the listener's socket, to where the OPEN came from.
      Datagram answer{now_ + 5ms, false, 0, {}, {}, d.from};
      answer.bytes.resize(wire::encoded_size(*a.answer));
      wire::encode(*a.answer, answer.bytes);
      retry_bytes = answer.bytes.size() + kHandshake;
      sent_to[d.from] += retry_bytes;
      insert(std::move(answer));
    }
  }

  bool step() {
    bool progress = false;
    while (auto e = client_->poll_event()) {
      progress = true;
      if (e->kind == Event::Kind::dial_path) client_->on_path_connected(e->path, now_);
    }
    if (server_) {
      while (server_->poll_event())
        progress = true;
    }
    if (client_->wants_transmit(path_)) {
      out_.reset(1 << 20);
      if (client_->poll_transmit(path_, now_, out_)) {
        progress = true;
        send(true, out_, client_address_, kServer);
      }
    }
    while (client_->wants_probe(path_)) {
      out_.reset(0);
      if (!client_->poll_probe(path_, now_, out_)) break;
      progress = true;
      send(true, out_, client_address_, kServer);
    }
    if (server_) {
      const PeerAddress peer = server_->peer_address(server_path_).value();
      if (last_peer_ && *last_peer_ != peer) ++address_changes;
      last_peer_ = peer;
      if (server_->wants_transmit(server_path_)) {
        out_.reset(1 << 20);
        if (server_->poll_transmit(server_path_, now_, out_)) {
          progress = true;
          send(false, out_, kServer, peer);
        }
      }
      while (server_->wants_probe(server_path_)) {
        out_.reset(0);
        const auto target = server_->poll_probe(server_path_, now_, out_);
        if (!target) break;
        progress = true;
        send(false, out_, kServer, target->to.value_or(peer));
      }
    }
    while (!in_flight_.empty() && in_flight_.front().at <= now_) {
      progress = true;
      Datagram d = std::move(in_flight_.front());
      in_flight_.pop_front();
      deliver(d);
    }
    return progress;
  }

  inline static const PeerAddress kServer = peer_address_v4(0xc0000201, 443);
  FlowConfig config_;
  Endpoint endpoint_;
  Time now_{std::chrono::seconds(1000)};
  std::unique_ptr<Flow> client_, server_;
  PathId path_ = kNoPath;
  PathId server_path_ = kNoPath;
  std::uint16_t client_port_ = 40000;
  PeerAddress client_address_ = peer_address_v4(0x0a000001, 40000);
  std::optional<PeerAddress> spoofed_;
  std::optional<PeerAddress> last_peer_;
  bool spoof_one_small_ = false;
  std::deque<Datagram> in_flight_;
  wire::TransmitBatch out_;
  std::uint64_t written_ = 0, received_ = 0;
};

const PeerAddress kSpoofed = peer_address_v4(0x08080808, 53);

TEST(FlowAddressValidation, TheProofValidatesTheAddressTheOpenCameFrom) {
  NatPair net;
  net.settle(200ms);
  ASSERT_TRUE(net.has_server());
  EXPECT_EQ(net.validated_at_creation, false);
  ASSERT_TRUE(net.server().authenticated());
  EXPECT_EQ(net.server().peer_address(net.server_path()), net.client_address());
  EXPECT_TRUE(net.server().peer_address_validated(net.server_path()));
  // Before the PROOF the server sent only its OPEN_ACK, well within 3x the OPEN.
  EXPECT_LE(net.server().address_stats(net.server_path()).bytes_to_unvalidated, 3 * net.open_bytes);
  EXPECT_EQ(net.server().address_stats(net.server_path()).challenges_sent, 0u);
}

TEST(FlowAddressValidation, AGenuineRebindingIsFollowedAfterValidationAndDataContinues) {
  NatPair net;
  net.settle(200ms);
  const PeerAddress before = net.client_address();
  ASSERT_EQ(net.transfer(256 * 1024, 10s), 256u * 1024);
  net.rebind();
  const PeerAddress after = net.client_address();
  ASSERT_EQ(net.transfer(1024 * 1024, 20s), 1024u * 1024);
  EXPECT_EQ(net.address_changes, 1u);
  EXPECT_EQ(net.server().peer_address(net.server_path()), after);
  EXPECT_TRUE(net.server().peer_address_validated(net.server_path()));
  const AddressValidationStats s = net.server().address_stats(net.server_path());
  EXPECT_EQ(s.validations, 1u);
  EXPECT_GE(s.challenges_sent, 1u);
  // The first thing the new address got was the challenge, not the flow's packets.
  ASSERT_TRUE(net.first_to.count(after));
  EXPECT_TRUE(carries<wire::PathChallenge>(net.first_to[after]));
  EXPECT_FALSE(carries<wire::Data>(net.first_to[after]));
  EXPECT_NE(before, after);
  EXPECT_EQ(net.server().state(), FlowState::established);
}

// A client that moved its own socket (Conn::migrate_local_address) on an idle flow: its PING
// from the new address makes the server challenge and follow it within a few round trips, not
// only at the next idle ping seconds later. Only an up datagram client path can say so.
TEST(FlowAddressValidation, AClientThatMovedItsLocalAddressIsFollowedAtOnceWhenIdle) {
  NatPair net;
  net.settle(200ms);
  ASSERT_EQ(net.transfer(64 * 1024, 10s), 64u * 1024);
  net.settle(3s);  // quiet: the next idle ping is seconds away
  net.rebind();
  const PeerAddress after = net.client_address();
  EXPECT_TRUE(net.client().on_local_address_moved(net.client_path()));
  net.settle(40ms);  // a few 10 ms round trips
  EXPECT_EQ(net.server().peer_address(net.server_path()), after);
  EXPECT_EQ(net.server().address_stats(net.server_path()).validations, 1u);
  EXPECT_FALSE(net.server().on_local_address_moved(net.server_path()));  // servers do not move
  EXPECT_FALSE(net.client().on_local_address_moved(PathId{99}));
  EXPECT_EQ(net.server().state(), FlowState::established);
}

TEST(FlowAddressValidation, ASpoofedSourceNeverGetsTheFlowsPackets) {
  NatPair net;
  net.settle(200ms);
  const PeerAddress genuine = net.client_address();
  // An on-path attacker races every packet of the transfer from another source.
  net.spoof(kSpoofed);
  ASSERT_EQ(net.transfer(512 * 1024, 20s), 512u * 1024);
  net.spoof(std::nullopt);
  net.settle(5s);  // every challenge to the spoofed address times out
  EXPECT_EQ(net.server().peer_address(net.server_path()), genuine);
  EXPECT_EQ(net.address_changes, 0u);
  EXPECT_EQ(net.data_packets_to[kSpoofed], 0u);
  const AddressValidationStats s = net.server().address_stats(net.server_path());
  EXPECT_GE(s.challenges_sent, 1u);
  EXPECT_EQ(s.validations, 0u);
  EXPECT_GE(s.validations_failed, 1u);
  // Only challenges went there, and at most 3x what came from there.
  ASSERT_GT(net.sent_to[kSpoofed], 0u);
  EXPECT_LE(net.sent_to[kSpoofed], 3 * net.received_from[kSpoofed]);
}

TEST(FlowAddressValidation, ASpoofedSmallPacketGetsAtMostThreeTimesItsSize) {
  FlowConfig config;
  config.address_validation.max_challenges = 10;  // more than 3x allows
  NatPair net(config);
  net.settle(200ms);
  net.spoof(kSpoofed, /*one_small=*/true);
  net.settle(30s);
  ASSERT_GT(net.received_from[kSpoofed], 0u);
  EXPECT_LE(net.received_from[kSpoofed], 64u);
  ASSERT_GT(net.sent_to[kSpoofed], 0u);
  EXPECT_LE(net.sent_to[kSpoofed], 3 * net.received_from[kSpoofed]);
  const AddressValidationStats s = net.server().address_stats(net.server_path());
  EXPECT_GE(s.amplification_blocked, 1u);
  EXPECT_LT(s.challenges_sent, 10u);
  EXPECT_EQ(net.server().peer_address(net.server_path()), net.client_address());
}

TEST(FlowAddressValidation, AServerPathSendsNoMoreThanThreeTimesTheOpenBeforeTheProof) {
  const Time now{std::chrono::seconds(50)};
  Endpoint endpoint(FlowConfig{}, EndpointLimits{});
  auto client = Flow::make_client(FlowConfig{}, now);
  PathOptions datagram;
  datagram.transport = TransportKind::datagram;
  const PathId path = client->add_path(now, datagram);
  while (client->poll_event()) {
  }
  client->on_path_connected(path, now);
  wire::TransmitBatch out(1 << 16);
  ASSERT_TRUE(client->poll_transmit(path, now, out));
  wire::Frame open;
  ASSERT_EQ(wire::decode(out.frames()[0].header_bytes(), open).error, wire::DecodeError::none);
  // The OPEN "came" in a datagram of 30 bytes: 90 bytes of allowance, less than an OPEN_ACK.
  const PeerAddress from = peer_address_v4(0x0a000002, 5555);
  Admission a = endpoint.on_first_frame(endpoint.on_connection(now), open, now, datagram,
                                        DatagramOrigin{from, 30, std::nullopt});
  ASSERT_EQ(a.kind, Admission::Kind::open);
  Flow& server = *a.created;
  const PathId server_path = static_cast<PathId>(std::get<wire::Open>(open.body).path_id);
  EXPECT_FALSE(server.peer_address_validated(server_path));
  EXPECT_FALSE(server.wants_transmit(server_path));
  out.reset(1 << 16);
  EXPECT_FALSE(server.poll_transmit(server_path, now, out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(server.address_stats(server_path).amplification_blocked, 1u);
  // More from that address: the client repeats its OPEN, which reaches the path as a packet (the
  // carrier routes the client's first dcid there too). The OPEN_ACK may go.
  server.on_packet(server_path, 1, std::span<const wire::Frame>(&open, 1), wire::Slice{}, now,
                   PacketSource{from, 60});
  EXPECT_TRUE(server.wants_transmit(server_path));
  ASSERT_TRUE(server.poll_transmit(server_path, now, out));
  EXPECT_LE(server.address_stats(server_path).bytes_to_unvalidated, 3u * 90);
}

// ---- RETRY under load ------------------------------------------------------------------------

TEST(FlowAddressValidation, UnderLoadTheClientFollowsARetryAndItsAddressStartsValidated) {
  EndpointLimits limits;
  limits.retry_above_unproven = 0;  // always under load
  NatPair net(FlowConfig{}, limits);
  net.settle(300ms);
  ASSERT_TRUE(net.has_server());
  const EndpointStats s = net.endpoint().stats();
  EXPECT_EQ(s.retries_sent, 1u);
  EXPECT_EQ(s.retry_tokens_valid, 1u);
  EXPECT_EQ(s.flows_opened, 1u);
  EXPECT_EQ(net.validated_at_creation, true);
  // The RETRY was no larger than the OPEN that provoked it.
  EXPECT_GT(net.retry_bytes, 0u);
  EXPECT_LE(net.retry_bytes, net.open_bytes);
  EXPECT_EQ(net.client().state(), FlowState::established);
  EXPECT_EQ(net.transfer(64 * 1024, 10s), 64u * 1024);
}

TEST(FlowAddressValidation, ARetryThatAnswersNoOpenChangesNothing) {
  NatPair net;
  net.settle(200ms);
  ASSERT_EQ(net.client().state(), FlowState::established);
  // Anyone who sees the connection id can send a RETRY in clear: an established path ignores it.
  const std::vector<wire::Frame> retry{wire::Frame{0, wire::Retry{}}};
  const std::uint64_t pn = net.client().largest_received_packet(net.client_path()).value() + 1;
  net.client().on_packet(net.client_path(), pn, retry, {}, net.now());
  EXPECT_EQ(net.client().path_state(net.client_path()), PathState::up);
  EXPECT_EQ(net.client().stats(net.now()).protocol_errors, 0u);
  EXPECT_EQ(net.transfer(64 * 1024, 10s), 64u * 1024);
}

TEST(FlowAddressValidation, ARetryOnAStreamCarrierIsAProtocolError) {
  const Time now{std::chrono::seconds(10)};
  auto client = Flow::make_client(FlowConfig{}, now);
  const PathId path = client->add_path(now);
  while (client->poll_event()) {
  }
  client->on_path_connected(path, now);
  wire::TransmitBatch out(1 << 16);
  ASSERT_TRUE(client->poll_transmit(path, now, out));  // the OPEN
  client->on_frame(path, wire::Frame{0, wire::Retry{}}, {}, now);
  EXPECT_EQ(client->stats(now).protocol_errors, 1u);
}

class RetryEndpoint : public ::testing::Test {
 protected:
  RetryEndpoint() : endpoint_(FlowConfig{}, limits()) {}
  static EndpointLimits limits() {
    EndpointLimits l;
    l.retry_above_unproven = 0;
    l.retry_token_lifetime = 10s;
    return l;
  }
  // A fresh client's OPEN.
  wire::Frame open() {
    auto client = Flow::make_client(FlowConfig{}, now_);
    const PathId path = client->add_path(now_, datagram_);
    while (client->poll_event()) {
    }
    client->on_path_connected(path, now_);
    wire::TransmitBatch out(1 << 16);
    EXPECT_TRUE(client->poll_transmit(path, now_, out));
    wire::Frame f;
    EXPECT_EQ(wire::decode(out.frames()[0].header_bytes(), f).error, wire::DecodeError::none);
    return f;
  }
  Admission first(const wire::Frame& f, std::optional<wire::RetryToken> token,
                  const PeerAddress& from) {
    const std::size_t size = kHandshake + wire::encoded_size(f) +
                             (token ? wire::encoded_size(wire::Frame{0, wire::Retry{*token}}) : 0);
    return endpoint_.on_first_frame(endpoint_.on_connection(now_), f, now_, datagram_,
                                    DatagramOrigin{from, size, token});
  }
  static wire::RetryToken token_of(const Admission& a) {
    return std::get<wire::Retry>(a.answer->body).token;
  }

  Time now_{std::chrono::seconds(500)};
  PathOptions datagram_{.transport = TransportKind::datagram};
  Endpoint endpoint_;
  const PeerAddress from_ = peer_address_v4(0x0a000003, 6000);
};

TEST_F(RetryEndpoint, AValidTokenOpensAFlowWithAValidatedAddress) {
  const wire::Frame o = open();
  Admission a = first(o, std::nullopt, from_);
  ASSERT_EQ(a.kind, Admission::Kind::refuse);
  ASSERT_TRUE(a.answer && std::holds_alternative<wire::Retry>(a.answer->body));
  EXPECT_EQ(endpoint_.stats().flows_opened, 0u);  // nothing kept
  now_ += 2s;
  Admission b = first(o, token_of(a), from_);
  ASSERT_EQ(b.kind, Admission::Kind::open);
  EXPECT_TRUE(
      b.created->peer_address_validated(static_cast<PathId>(std::get<wire::Open>(o.body).path_id)));
  EXPECT_EQ(endpoint_.stats().retry_tokens_valid, 1u);
}

TEST_F(RetryEndpoint, AnExpiredTokenGetsAFreshRetry) {
  const wire::Frame o = open();
  const wire::RetryToken t = token_of(first(o, std::nullopt, from_));
  now_ += 11s;
  Admission b = first(o, t, from_);
  ASSERT_EQ(b.kind, Admission::Kind::refuse);
  ASSERT_TRUE(std::holds_alternative<wire::Retry>(b.answer->body));
  EXPECT_NE(token_of(b), t);
  EXPECT_EQ(endpoint_.stats().retry_tokens_expired, 1u);
  EXPECT_EQ(endpoint_.stats().retries_sent, 2u);
  EXPECT_EQ(endpoint_.stats().flows_opened, 0u);
}

TEST_F(RetryEndpoint, AForgedOrStolenTokenIsDroppedUnanswered) {
  const wire::Frame o = open();
  const wire::RetryToken t = token_of(first(o, std::nullopt, from_));
  wire::RetryToken forged = t;
  forged[20] ^= 1;
  EXPECT_EQ(first(o, forged, from_).kind, Admission::Kind::drop);
  // A genuine token used from another address proves nothing about that address.
  EXPECT_EQ(first(o, t, peer_address_v4(0x0a000003, 6001)).kind, Admission::Kind::drop);
  EXPECT_EQ(endpoint_.stats().retry_tokens_forged, 2u);
  EXPECT_EQ(endpoint_.stats().flows_opened, 0u);
  EXPECT_EQ(endpoint_.stats().half_open, 0u);
}

TEST(RetryEndpointLoad, BelowTheThresholdOpensGoStraightThrough) {
  EndpointLimits limits;
  limits.retry_above_unproven = 2;
  Endpoint endpoint(FlowConfig{}, limits);
  const Time now{std::chrono::seconds(10)};
  PathOptions datagram{.transport = TransportKind::datagram};
  auto kind_of_next_open = [&](std::uint16_t port) {
    auto client = Flow::make_client(FlowConfig{}, now);
    const PathId path = client->add_path(now, datagram);
    while (client->poll_event()) {
    }
    client->on_path_connected(path, now);
    wire::TransmitBatch out(1 << 16);
    client->poll_transmit(path, now, out);
    wire::Frame f;
    wire::decode(out.frames()[0].header_bytes(), f);
    return endpoint
        .on_first_frame(endpoint.on_connection(now), f, now, datagram,
                        DatagramOrigin{peer_address_v4(0x0a000004, port), 200, std::nullopt})
        .kind;
  };
  EXPECT_EQ(kind_of_next_open(1), Admission::Kind::open);
  EXPECT_EQ(kind_of_next_open(2), Admission::Kind::open);
  // Two flows await their PROOF: the third OPEN must show its address first.
  EXPECT_EQ(kind_of_next_open(3), Admission::Kind::refuse);
  EXPECT_EQ(endpoint.stats().retries_sent, 1u);
}

}  // namespace
}  // namespace rendr::core
