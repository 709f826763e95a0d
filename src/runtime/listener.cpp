#include "runtime/listener.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "carrier/quic/quic_server.hpp"
#include "carrier/quic/quic_tls.hpp"
#include "carrier/tcp/tcp_carrier.hpp"
#include "carrier/udp/route_mtu.hpp"
#include "carrier/udp/udp_demux.hpp"
#include "carrier/udp/udpflow_carrier.hpp"
#include "core/endpoint.hpp"
#include "runtime/convert.hpp"
#include "runtime/engine_thread.hpp"
#include "runtime/peer_endpoint.hpp"
#include "runtime/session.hpp"

namespace rendr::runtime {

namespace {

// An accepted flow's application handle (Conn or PacketConn wraps it), or the error.
using AcceptCallback = std::function<void(error_code, std::shared_ptr<detail::ConnCore>)>;

// An async_accept (packet: async_accept_packet) waiting for a flow of its kind; `op`
// identifies it for cancel_accept.
struct Waiter {
  std::uint64_t op = 0;
  bool packet = false;
  AcceptCallback done;
};

wire::OutFrame encode_frame(const wire::Frame& frame) {
  wire::OutFrame out;
  out.header_size = static_cast<std::uint8_t>(wire::encode(frame, out.header));
  return out;
}

class ListenerImpl;

// The handler of a transport connection whose first frame has not been judged yet. Lives on
// the carrier's strand; the listener keeps it alive until the carrier is handed over or gone.
class Pending final : public carrier::CarrierHandler, public std::enable_shared_from_this<Pending> {
 public:
  Pending(std::weak_ptr<ListenerImpl> listener, core::ConnectionId id,
          std::shared_ptr<carrier::Carrier> carrier)
      : listener_(std::move(listener)), id_(id), carrier_(std::move(carrier)) {}

  void start() { carrier_->start(weak_from_this()); }
  void on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) override;
  void on_down(carrier::DownReason reason, error_code, wire::DecodeError) override;
  bool pull(wire::TransmitBatch& out) override {
    if (!last_frame_ || last_frame_sent_) return false;
    out.push(wire::OutFrame(*last_frame_));
    last_frame_sent_ = true;
    carrier_->close();  // after this frame is written
    return true;
  }

  // Answers with `frame` (a refusal, or the OPEN_ACK for a repeated OPEN), then closes the
  // connection without attaching it to any flow.
  void answer_and_close(const wire::Frame& frame) {
    last_frame_ = encode_frame(frame);
    carrier_->kick();
  }
  core::ConnectionId id() const { return id_; }
  const std::shared_ptr<carrier::Carrier>& carrier() const { return carrier_; }

 private:
  std::weak_ptr<ListenerImpl> listener_;
  const core::ConnectionId id_;
  std::shared_ptr<carrier::Carrier> carrier_;
  bool decided_ = false;
  std::optional<wire::OutFrame> last_frame_;
  bool last_frame_sent_ = false;
};

// Every flow of a listener shares one receive memory budget.
core::FlowConfig flow_config(const ListenOptions& options) {
  core::FlowConfig config = make_config(Mode::prime, options.migration_budget, options.options);
  // The OPEN says which kind a flow is; a kind this listener does not take is refused there.
  config.accept_stream_flows = options.accept_stream_flows;
  config.accept_packet_flows = options.accept_packet_flows;
  config.memory_budget = std::make_shared<core::MemoryBudget>(options.memory_budget);
  // How long a client has to prove the key (PROOF after OPEN or JOIN) as well as to send its
  // first frame.
  config.handshake_timeout = options.handshake_timeout;
  return config;
}

core::EndpointLimits endpoint_limits(const ListenOptions& o) {
  return {.max_half_open = o.max_half_open,
          .first_frame_timeout = o.handshake_timeout,
          .max_flows = o.max_flows,
          .max_unaccepted = o.max_unaccepted,
          .max_paths_per_flow = o.max_paths_per_flow,
          .abandoned_flow_timeout = o.abandoned_flow_timeout,
          .retry_above_unproven = o.udpflow_retry_above_unproven};
}

// The listener drives a core::Endpoint, which decides what each first frame leads to and owns
// the limits; the listener does the I/O (acceptors, carriers, one timer) and owns the sessions.
// The endpoint lives under `mu_`; a session is never called with `mu_` held.
class ListenerImpl final : public std::enable_shared_from_this<ListenerImpl> {
 public:
  explicit ListenerImpl(const ListenOptions& options)
      : options_(options),
        ex_(options.engine != nullptr ? options.engine->executor()
                                      : Engine::default_engine().executor()),
        config_(flow_config(options)),
        endpoint_(config_, endpoint_limits(options)),
        timer_(std::in_place, asio::make_strand(ex_)) {}

  asio::any_io_executor executor() const { return ex_; }

  // "HOST:PORT" (port 0: any free one) as an endpoint to bind.
  asio::ip::tcp::endpoint resolve_passive(const std::string& address, error_code& ec) {
    const PathSpec spec = PathSpec::parse("tcp://" + address, ec);
    // Port 0 (any free port) is fine here, unlike in a path spec.
    std::string host = spec.host;
    std::string port;
    if (ec) {
      const auto colon = address.rfind(':');
      if (colon == std::string::npos || address.substr(colon + 1) != "0") return {};
      host = address.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
      port = "0";
      ec.clear();
    } else {
      port = std::to_string(spec.port);
    }
    asio::ip::tcp::resolver resolver(ex_);
    const auto results = resolver.resolve(host, port, asio::ip::tcp::resolver::passive, ec);
    if (ec) return {};
    if (results.empty()) {
      ec = errc::bad_path_spec;
      return {};
    }
    return results.begin()->endpoint();
  }

  error_code listen_tcp(const std::string& address) {
    error_code ec;
    const auto endpoint = resolve_passive(address, ec);
    if (ec) return ec;
    auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(asio::make_strand(ex_));
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec;
    const auto local = acceptor->local_endpoint(ec);
    if (ec) return ec;
    {
      std::lock_guard lock(mu_);
      if (closed_) return errc::listener_closed;
      acceptors_.push_back(acceptor);
      endpoints_.push_back(local);
    }
    asio::post(acceptor->get_executor(),
               [self = shared_from_this(), acceptor] { self->start_accept(acceptor); });
    return {};
  }

  // A QUIC address: one UDP socket shared by its connections; a connection whose handshake
  // completed is judged like an accepted TCP connection.
  error_code listen_quic(const std::string& address, const TlsServerConfig& tls) {
    error_code ec;
    const auto endpoint = resolve_passive(address, ec);
    if (ec) return ec;
    auto credentials = carrier::TlsCredentials::for_server(tls, ec);
    if (ec) return ec;
    auto socket = carrier::QuicServerSocket::open(
        ex_, asio::ip::udp::endpoint(endpoint.address(), endpoint.port()), std::move(credentials),
        carrier::QuicOptions{},
        [weak = weak_from_this()](std::shared_ptr<carrier::Carrier> c) {
          if (auto self = weak.lock()) self->on_accept(std::move(c));
        },
        ec);
    if (ec) return ec;
    std::lock_guard lock(mu_);
    if (closed_) {
      socket->stop();
      return errc::listener_closed;
    }
    quic_sockets_.push_back(std::move(socket));
    return {};
  }

  // A udpflow address: one UDP socket shared by its paths, demultiplexed by connection id. A
  // handshake packet on an unrouted id is a new path: its one frame (OPEN or JOIN) is judged by
  // the endpoint like a TCP connection's first frame (docs/design.md, "udpflow runtime").
  error_code listen_udpflow(const std::string& address) {
    error_code ec;
    const auto endpoint = resolve_passive(address, ec);
    if (ec) return ec;
    auto demux_slot = std::make_shared<std::weak_ptr<carrier::udp::UdpDemux>>();
    std::shared_ptr<carrier::udp::UdpDemux> demux;
    try {
      demux = carrier::udp::UdpDemux::open(
          asio::make_strand(ex_), asio::ip::udp::endpoint(endpoint.address(), endpoint.port()),
          [weak = weak_from_this(), demux_slot](const carrier::udp::ReceivedDatagram& d,
                                                const wire::datagram::PacketHeader& h) {
            auto self = weak.lock();
            auto demux = demux_slot->lock();
            if (self && demux) self->on_udp_handshake(demux, d, h);
          });
    } catch (const system_error& e) {
      return e.code();
    }
    *demux_slot = demux;
    {
      std::lock_guard lock(mu_);
      if (closed_) return errc::listener_closed;
      udp_demuxes_.push_back(demux);
    }
    demux->start();
    return {};
  }

  std::uint16_t udpflow_port(std::size_t index) const {
    std::lock_guard lock(mu_);
    return index < udp_demuxes_.size() ? udp_demuxes_[index]->socket().local_endpoint().port() : 0;
  }

  std::uint16_t quic_port(std::size_t index) const {
    std::lock_guard lock(mu_);
    return index < quic_sockets_.size() ? quic_sockets_[index]->local_endpoint().port() : 0;
  }

  // Blocks until a flow of the kind (packet or stream) is ready.
  std::shared_ptr<detail::ConnCore> accept(bool packet, error_code& ec) {
    if (on_engine_thread(ex_)) {
      ec = errc::blocking_call_on_engine_thread;
      return {};
    }
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return find_ready_locked(packet) != ready_.end() || closed_; });
    if (closed_) {
      ec = errc::listener_closed;
      return {};
    }
    auto session = take_ready_locked(find_ready_locked(packet));
    lock.unlock();
    ec.clear();
    return make_conn(std::move(session));
  }

  void async_accept(bool packet, AcceptCallback done, std::uint64_t op) {
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(mu_);
      const auto ready = find_ready_locked(packet);
      if (!closed_ && ready == ready_.end()) {
        waiters_.push_back({op, packet, std::move(done)});
        return;
      }
      if (ready != ready_.end()) session = take_ready_locked(ready);
    }
    if (session) {
      done({}, make_conn(std::move(session)));
    } else {
      done(errc::listener_closed, nullptr);
    }
  }

  // A waiting async_accept `op` completes with operation_aborted; the listener goes on, and a
  // flow that arrives later waits for the next accept.
  void cancel_accept(std::uint64_t op) {
    AcceptCallback cancelled;
    {
      std::lock_guard lock(mu_);
      const auto it = std::find_if(waiters_.begin(), waiters_.end(),
                                   [op](const Waiter& w) { return w.op == op; });
      if (it == waiters_.end()) return;  // completed already: too late to cancel
      cancelled = std::move(it->done);
      waiters_.erase(it);
    }
    cancelled(asio::error::operation_aborted, nullptr);
  }

  std::vector<std::string> local_addresses() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& ep : endpoints_) {
      const auto addr = ep.address();
      out.push_back((addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
                    std::to_string(ep.port()));
    }
    for (const auto& d : udp_demuxes_) {
      const auto ep = d->socket().local_endpoint();
      const auto addr = ep.address();
      out.push_back("udpflow://" +
                    (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
                    std::to_string(ep.port()));
    }
    for (const auto& q : quic_sockets_) {
      const auto ep = q->local_endpoint();
      const auto addr = ep.address();
      out.push_back("quic://" + (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) +
                    ":" + std::to_string(ep.port()));
    }
    return out;
  }

  std::uint16_t port(std::size_t index) const {
    std::lock_guard lock(mu_);
    return index < endpoints_.size() ? endpoints_[index].port() : 0;
  }

  ListenerStats stats() const {
    std::lock_guard lock(mu_);
    const core::EndpointStats e = endpoint_.stats();
    ListenerStats s;
    s.connections_accepted = e.connections;
    s.flows_opened = e.flows_opened;
    s.joins_accepted = e.joins_accepted;
    s.rejected_malformed = e.rejected_malformed;
    s.rejected_unknown_flow = e.rejected_unknown_flow;
    s.rejected_bad_proof = e.rejected_bad_proof;
    s.rejected_replay = e.rejected_replay;
    s.rejected_capacity = e.rejected_capacity;
    s.rejected_timeout = e.rejected_timeout;
    s.live_flows = e.live_flows;
    s.duplicate_opens = e.duplicate_opens;
    s.rejected_accept_queue = e.rejected_accept_queue;
    s.rejected_paths_per_flow = e.rejected_paths_per_flow;
    s.evicted_half_open = e.evicted_half_open;
    s.evicted_flows = e.evicted_flows;
    s.evicted_unproven = e.evicted_unproven;
    s.dropped_abandoned = e.dropped_abandoned;
    s.half_open = e.half_open;
    s.unaccepted_flows = e.unaccepted_flows;
    s.authentication_failures = authentication_failures_;
    s.rejected_memory = e.rejected_memory;
    s.retries_sent = e.retries_sent;
    s.retry_tokens_valid = e.retry_tokens_valid;
    s.retry_tokens_expired = e.retry_tokens_expired;
    s.retry_tokens_forged = e.retry_tokens_forged;
    return s;
  }

  void close() {
    std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors;
    std::vector<std::shared_ptr<carrier::QuicServerSocket>> quic_sockets;
    std::vector<std::shared_ptr<carrier::udp::UdpDemux>> demuxes;
    std::deque<Ready> unaccepted;
    std::deque<Waiter> waiters;
    std::map<core::ConnectionId, std::shared_ptr<Pending>> pending;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      acceptors.swap(acceptors_);
      quic_sockets.swap(quic_sockets_);
      // New paths stop here; a demux lives on while its paths (carriers) hold it, like
      // accepted TCP connections, and closes its socket with the last of them.
      demuxes.swap(udp_demuxes_);
      unaccepted.swap(ready_);
      waiters.swap(waiters_);
      pending.swap(pending_);
      // Gone now (a pending wait completes as aborted), so a closed listener may outlive its
      // engine.
      timer_.reset();
    }
    cv_.notify_all();
    for (auto& a : acceptors)
      asio::post(a->get_executor(), [a] { a->close(); });
    for (auto& q : quic_sockets)
      q->stop();  // its established connections carry on, like accepted TCP connections
    for (auto& [id, p] : pending)
      p->carrier()->abort();
    for (auto& r : unaccepted)
      r.session->abort();
    for (auto& w : waiters)
      w.done(errc::listener_closed, nullptr);
    // Flows already accepted belong to the application and carry on.
  }

  // ---- called by Pending, on the carrier's strand

  void judge(const std::shared_ptr<Pending>& pending, const std::vector<wire::Frame>& frames,
             const wire::Slice& backing) {
    const auto rest = std::span<const wire::Frame>(frames).subspan(1);
    core::Admission admission;
    {
      std::lock_guard lock(mu_);
      if (!closed_) admission = endpoint_.on_first_frame(pending->id(), frames.front(), now());
    }
    run_endpoint_actions();
    switch (admission.kind) {
      case core::Admission::Kind::drop:
        pending->carrier()->abort();
        break;
      case core::Admission::Kind::refuse:
        pending->answer_and_close(*admission.answer);
        break;
      case core::Admission::Kind::open:
        open_flow(pending->carrier(), std::move(admission),
                  static_cast<core::PathId>(std::get<wire::Open>(frames.front().body).path_id),
                  rest, backing);
        break;
      case core::Admission::Kind::repeated_open:
        answer_repeated_open(admission.flow, std::get<wire::Open>(frames.front().body),
                             [&](const wire::Frame& f) { pending->answer_and_close(f); });
        break;
      case core::Admission::Kind::join:
        join_flow(pending->carrier(), admission.flow, std::get<wire::Join>(frames.front().body),
                  rest, backing, [&](const wire::Frame& f) { pending->answer_and_close(f); });
        break;
    }
  }

  // ---- called by a udpflow demux, on its strand

  // A handshake packet on an unrouted connection id. Nothing is answered unless it holds exactly
  // one well-formed OPEN or JOIN, or a RETRY (the client's echo of our token) then an OPEN (a
  // flood of garbage costs no state and no reply). The endpoint sees where it came from and how
  // big it was: under load an OPEN without a valid token gets a stateless RETRY, and a new
  // path starts at that address with its 3x allowance (docs/design.md, "Address validation").
  void on_udp_handshake(const std::shared_ptr<carrier::udp::UdpDemux>& demux,
                        const carrier::udp::ReceivedDatagram& d,
                        const wire::datagram::PacketHeader& h) {
    const auto payload = d.bytes.subspan(h.size);
    std::vector<wire::Frame> frames(2);
    std::size_t count = 0;
    bool well_formed = true;
    for (std::size_t offset = 0; well_formed && offset < payload.size(); ++count) {
      if (count == frames.size()) {
        well_formed = false;
        break;
      }
      const wire::DecodeResult r = wire::decode(payload.subspan(offset), frames[count]);
      well_formed = r.error == wire::DecodeError::none;
      offset += r.consumed;
    }
    const auto is = [&frames](std::size_t i, auto type) {
      return std::holds_alternative<decltype(type)>(frames[i].body);
    };
    const bool single = count == 1 && (is(0, wire::Open{}) || is(0, wire::Join{}));
    const bool retried_open = count == 2 && is(0, wire::Retry{}) && is(1, wire::Open{});
    if (!well_formed || !(single || retried_open)) {
      std::lock_guard lock(mu_);
      ++udp_dropped_;
      return;
    }
    core::DatagramOrigin origin{runtime::to_peer_address(d.source), d.bytes.size()};
    if (retried_open) {
      origin.token = std::get<wire::Retry>(frames.front().body).token;
      frames.erase(frames.begin());
    }
    frames.resize(1);
    carrier::udp::UdpflowOptions carrier_options;
    core::PathOptions path;
    path.transport = core::TransportKind::datagram;
    path.max_packet_payload = carrier_options.max_packet_payload;
    path.max_datagram_size = options_.udpflow_max_datagram_size;
    if (const auto route = carrier::udp::route_max_udp_payload(d.source))
      path.max_datagram_size = std::min(path.max_datagram_size, *route);
    if (options_.udpflow_congestion)
      path.congestion = runtime::to_core(*options_.udpflow_congestion);
    core::Admission admission;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      const core::ConnectionId id = endpoint_.on_connection(now());
      admission = endpoint_.on_first_frame(id, frames.front(), now(), path, origin);
    }
    run_endpoint_actions();
    auto carrier = carrier::udp::UdpflowCarrier::make_server(
        demux, carrier::udp::random_connection_id(), h.scid, d.source, carrier_options);
    auto answer = [&carrier](const wire::Frame& f) {
      const wire::OutFrame out = encode_frame(f);
      carrier->send_handshake_frames(std::span<const wire::OutFrame>(&out, 1));
      carrier->abort();
    };
    const wire::Slice backing(d.block, d.offset + h.size, payload.size());
    switch (admission.kind) {
      case core::Admission::Kind::drop:
        break;
      case core::Admission::Kind::refuse:
        answer(*admission.answer);
        break;
      case core::Admission::Kind::open:
      case core::Admission::Kind::join:
        // The path's own id, routed before the session answers on it (ids are random 64 bits:
        // a collision with a live route is retried once with a fresh id).
        if (!carrier->route_to_carrier()) {
          carrier = carrier::udp::UdpflowCarrier::make_server(
              demux, carrier::udp::random_connection_id(), h.scid, d.source, carrier_options);
          if (!carrier->route_to_carrier()) {
            std::lock_guard lock(mu_);
            ++udp_dropped_;
            endpoint_.on_flow_finished(admission.flow);
            return;
          }
        }
        // The client's own first dcid too: its repeat of this packet must find this path.
        (void)carrier->route_initial_dcid(h.dcid);
        if (admission.kind == core::Admission::Kind::open) {
          open_flow(carrier, std::move(admission),
                    static_cast<core::PathId>(std::get<wire::Open>(frames.front().body).path_id),
                    {}, backing);
        } else {
          join_flow(carrier, admission.flow, std::get<wire::Join>(frames.front().body), {}, backing,
                    answer, core::Endpoint::with_origin(path, origin));
        }
        break;
      case core::Admission::Kind::repeated_open:
        answer_repeated_open(admission.flow, std::get<wire::Open>(frames.front().body), answer);
        break;
    }
  }

  void connection_down(core::ConnectionId id, bool undecided_protocol_error) {
    std::shared_ptr<Pending> ref;  // dropped outside the lock
    {
      std::lock_guard lock(mu_);
      endpoint_.on_connection_lost(id, undecided_protocol_error);
      if (auto it = pending_.find(id); it != pending_.end()) {
        ref = std::move(it->second);
        pending_.erase(it);
      }
    }
  }

  void pending_done(core::ConnectionId id) {
    std::shared_ptr<Pending> ref;  // dropped outside the lock
    std::lock_guard lock(mu_);
    if (auto it = pending_.find(id); it != pending_.end()) {
      ref = std::move(it->second);
      pending_.erase(it);
    }
  }

 private:
  struct Ready {
    core::FlowRef flow;
    bool packet = false;  // which accept takes it
    std::shared_ptr<Session> session;
  };
  struct FlowEntry {
    std::uint64_t serial = 0;
    std::weak_ptr<Session> session;
  };

  static core::Time now() { return core::Clock::now(); }

  void start_accept(std::shared_ptr<asio::ip::tcp::acceptor> acceptor) {
    // The accepted socket gets the plain executor: its carrier serializes on a strand of its
    // own (a strand here would put every carrier handler through two strands).
    acceptor->async_accept(
        ex_, [weak = weak_from_this(), acceptor](error_code ec, asio::ip::tcp::socket socket) {
          auto self = weak.lock();
          if (!self || ec == asio::error::operation_aborted || !acceptor->is_open()) return;
          if (!ec) self->on_accept(carrier::make_tcp_carrier(std::move(socket)));
          // Transient errors (EMFILE, ECONNABORTED) do not stop the listener.
          self->start_accept(acceptor);
        });
  }

  void on_accept(std::shared_ptr<carrier::Carrier> accepted) {
    std::shared_ptr<Pending> pending;
    {
      std::lock_guard lock(mu_);
      if (closed_) {
        accepted->abort();
        return;
      }
      const core::ConnectionId id = endpoint_.on_connection(now());
      pending = std::make_shared<Pending>(weak_from_this(), id, std::move(accepted));
      pending_.emplace(id, pending);
    }
    pending->start();
    run_endpoint_actions();  // perhaps an older half-open connection to evict
  }

  void open_flow(std::shared_ptr<carrier::Carrier> first, core::Admission admission,
                 core::PathId first_path, std::span<const wire::Frame> rest,
                 const wire::Slice& backing) {
    const core::FlowRef ref = admission.flow;
    // The flow is offered to accept() only once the client has proven the key (PROOF).
    Session::ServerHooks hooks;
    hooks.finished = [weak = weak_from_this(), ref](const FlowId&) {
      if (auto self = weak.lock()) self->flow_finished(ref);
    };
    hooks.authenticated = [weak = weak_from_this(), ref](std::shared_ptr<Session> s) {
      if (auto self = weak.lock()) self->hand_to_accept(ref, std::move(s));
    };
    hooks.authentication_failed = [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->count_authentication_failure();
    };
    hooks.report = [weak = weak_from_this(), ref](const core::FlowReport& report) {
      if (auto self = weak.lock()) self->flow_report(ref, report);
    };
    auto session = Session::make_server(ex_, std::move(admission.created), std::move(hooks));
    {
      std::lock_guard lock(mu_);
      if (!closed_) flows_[ref.id] = FlowEntry{ref.serial, session};
    }
    session->attach_first(std::move(first), first_path, rest, backing);
  }

  void count_authentication_failure() {
    std::lock_guard lock(mu_);
    ++authentication_failures_;
  }

  // Hands an authenticated server flow to its kind's accept (a packet flow to accept_packet,
  // a stream flow to accept): to a waiting async one, else to the queue of flows waiting for
  // one. The endpoint counts the flow as unaccepted from its OPEN until then, so flows of a kind
  // the application never accepts are bounded like any unaccepted flow (max_unaccepted).
  void hand_to_accept(const core::FlowRef& ref, std::shared_ptr<Session> session) {
    AcceptCallback waiter;
    const bool packet = session->packet();
    {
      std::lock_guard lock(mu_);
      const auto it = flows_.find(ref.id);
      const auto w = std::find_if(waiters_.begin(), waiters_.end(),
                                  [packet](const Waiter& x) { return x.packet == packet; });
      if (closed_) {
        // close() ran meanwhile: this flow was never handed out.
      } else if (it == flows_.end() || it->second.serial != ref.serial) {
        return;  // it finished (failed or was dropped) before anyone could take it
      } else if (w != waiters_.end()) {
        waiter = std::move(w->done);
        waiters_.erase(w);
        endpoint_.on_flow_accepted(ref);
      } else {
        ready_.push_back({ref, packet, std::move(session)});
        cv_.notify_all();  // blocked accepts of both kinds share cv_
        return;
      }
    }
    if (waiter) {
      waiter({}, make_conn(std::move(session)));
    } else {
      session->abort();
    }
  }

  std::deque<Ready>::iterator find_ready_locked(bool packet) {
    return std::find_if(ready_.begin(), ready_.end(),
                        [packet](const Ready& r) { return r.packet == packet; });
  }

  std::shared_ptr<Session> take_ready_locked(std::deque<Ready>::iterator ready) {
    Ready r = std::move(*ready);
    ready_.erase(ready);
    endpoint_.on_flow_accepted(r.flow);
    return std::move(r.session);
  }

  std::shared_ptr<Session> session_of(const core::FlowRef& ref) {
    std::lock_guard lock(mu_);
    auto it = flows_.find(ref.id);
    return it != flows_.end() && it->second.serial == ref.serial ? it->second.session.lock()
                                                                 : nullptr;
  }

  // An OPEN naming a flow we hold. A client whose first path died before the OPEN_ACK reached
  // it sends the same OPEN again on another path: it gets the flow's OPEN_ACK and then JOINs
  // (with a MAC) once it holds the key. The connection itself is never attached, so a replayed
  // OPEN gains nothing; one with any field changed is someone else's (refused).
  using Answer = std::function<void(const wire::Frame&)>;

  void answer_repeated_open(const core::FlowRef& ref, const wire::Open& open,
                            const Answer& answer_and_close) {
    std::optional<wire::OpenAck> ack;
    if (auto session = session_of(ref)) ack = session->open_ack_for_repeated_open(open);
    wire::Frame answer;
    {
      std::lock_guard lock(mu_);
      answer = endpoint_.answer_repeated_open(ack);
    }
    answer_and_close(answer);
  }

  void join_flow(const std::shared_ptr<carrier::Carrier>& carrier, const core::FlowRef& ref,
                 const wire::Join& join, std::span<const wire::Frame> rest,
                 const wire::Slice& backing, const Answer& answer_and_close,
                 const std::optional<core::PathOptions>& path = std::nullopt) {
    wire::Status status = wire::Status::unknown_flow;
    if (auto session = session_of(ref)) {
      status =
          session->attach_join(carrier, join, rest, backing, options_.max_paths_per_flow, path);
    }
    std::optional<wire::Frame> refusal;
    {
      std::lock_guard lock(mu_);
      refusal = endpoint_.on_join_result(ref, status);
    }
    if (refusal) answer_and_close(*refusal);
  }

  void flow_report(const core::FlowRef& ref, const core::FlowReport& report) {
    {
      std::lock_guard lock(mu_);
      endpoint_.on_flow_report(ref, report, now());
    }
    run_endpoint_actions();  // a deadline to arm
  }

  void flow_finished(const core::FlowRef& ref) {
    std::shared_ptr<Session> unaccepted;  // dropped outside the lock
    std::lock_guard lock(mu_);
    endpoint_.on_flow_finished(ref);
    if (auto it = flows_.find(ref.id); it != flows_.end() && it->second.serial == ref.serial)
      flows_.erase(it);
    // A flow that failed before anyone accepted it is nobody's: the queue stays bounded.
    for (auto it = ready_.begin(); it != ready_.end(); ++it) {
      if (it->flow.serial == ref.serial) {
        unaccepted = std::move(it->session);
        ready_.erase(it);
        break;
      }
    }
  }

  // Carries out what the endpoint decided (close evicted or timed-out connections, abort
  // dropped flows) outside the lock, and arms the timer for its next deadline.
  void run_endpoint_actions() {
    std::vector<std::shared_ptr<carrier::Carrier>> closes;
    std::vector<std::shared_ptr<Session>> drops;
    {
      std::lock_guard lock(mu_);
      while (auto action = endpoint_.poll_action()) {
        if (action->kind == core::EndpointAction::Kind::close_connection) {
          if (auto it = pending_.find(action->connection); it != pending_.end())
            closes.push_back(it->second->carrier());
          continue;
        }
        const core::FlowRef& ref = action->flow;
        if (auto it = flows_.find(ref.id); it != flows_.end() && it->second.serial == ref.serial) {
          if (auto s = it->second.session.lock()) drops.push_back(std::move(s));
        }
        std::erase_if(ready_, [&](const Ready& r) { return r.flow.serial == ref.serial; });
      }
      if (!closed_) arm_timer_locked();
    }
    for (auto& c : closes)
      c->abort();
    for (auto& s : drops)
      s->abort();  // its finish reaches flow_finished, which frees the FlowId
  }

  void arm_timer_locked() {
    const auto next = endpoint_.next_deadline();
    if (!next || (timer_at_ && *timer_at_ <= *next)) return;
    timer_at_ = *next;
    timer_->expires_at(*next);
    timer_->async_wait([weak = weak_from_this()](error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      if (auto self = weak.lock()) self->on_timer();
    });
  }

  void on_timer() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      timer_at_.reset();
      endpoint_.on_timer(now());
    }
    run_endpoint_actions();
  }

  const ListenOptions options_;
  const asio::any_io_executor ex_;
  const core::FlowConfig config_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  core::Endpoint endpoint_;
  std::optional<asio::steady_timer> timer_;  // until close()
  std::optional<core::Time> timer_at_;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::vector<asio::ip::tcp::endpoint> endpoints_;
  std::vector<std::shared_ptr<carrier::QuicServerSocket>> quic_sockets_;
  std::vector<std::shared_ptr<carrier::udp::UdpDemux>> udp_demuxes_;
  std::uint64_t udp_dropped_ = 0;  // handshake packets on new ids that were not one OPEN/JOIN
  std::map<FlowId, FlowEntry> flows_;
  std::deque<Ready> ready_;
  std::uint64_t authentication_failures_ = 0;  // not the endpoint's: the session sees them
  std::deque<Waiter> waiters_;
  std::map<core::ConnectionId, std::shared_ptr<Pending>> pending_;
};

void Pending::on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) {
  if (decided_ || frames.empty()) return;
  decided_ = true;
  auto listener = listener_.lock();
  if (!listener) {
    carrier_->abort();
    return;
  }
  listener->judge(shared_from_this(), frames, backing);
  // Accepted connections now belong to a session; rejected ones stay until their carrier
  // reports down (this handler must outlive the last frame's write).
  if (!last_frame_) listener->pending_done(id_);
}

void Pending::on_down(carrier::DownReason reason, error_code, wire::DecodeError) {
  auto listener = listener_.lock();
  if (!listener) return;
  listener->connection_down(id_, !decided_ && reason == carrier::DownReason::protocol_error);
  decided_ = true;
}

// The public handle: closing the listener when the application lets go of it.
class ListenerHandle final : public detail::ListenerCore {
 public:
  explicit ListenerHandle(std::shared_ptr<ListenerImpl> impl) : impl_(std::move(impl)) {}
  ~ListenerHandle() override { impl_->close(); }

  asio::any_io_executor executor() override { return impl_->executor(); }
  Conn accept(error_code& ec) override {
    auto core = impl_->accept(false, ec);
    return core ? Conn(std::move(core)) : Conn();
  }
  void async_accept(std::function<void(error_code, Conn)> done, std::uint64_t op) override {
    impl_->async_accept(
        false,
        [done = std::move(done)](error_code ec, std::shared_ptr<detail::ConnCore> core) {
          done(ec, core ? Conn(std::move(core)) : Conn());
        },
        op);
  }
  PacketConn accept_packet(error_code& ec) override {
    auto core = impl_->accept(true, ec);
    return core ? PacketConn(std::move(core)) : PacketConn();
  }
  void async_accept_packet(std::function<void(error_code, PacketConn)> done,
                           std::uint64_t op) override {
    impl_->async_accept(
        true,
        [done = std::move(done)](error_code ec, std::shared_ptr<detail::ConnCore> core) {
          done(ec, core ? PacketConn(std::move(core)) : PacketConn());
        },
        op);
  }
  void cancel_accept(std::uint64_t op) override { impl_->cancel_accept(op); }
  error_code listen_tcp(const std::string& address) override { return impl_->listen_tcp(address); }
  error_code listen_quic(const std::string& address, const TlsServerConfig& tls) override {
    return impl_->listen_quic(address, tls);
  }
  std::uint16_t quic_port(std::size_t index) const override { return impl_->quic_port(index); }
  error_code listen_udpflow(const std::string& address) override {
    return impl_->listen_udpflow(address);
  }
  std::uint16_t udpflow_port(std::size_t index) const override {
    return impl_->udpflow_port(index);
  }
  std::vector<std::string> local_addresses() const override { return impl_->local_addresses(); }
  std::uint16_t port(std::size_t index) const override { return impl_->port(index); }
  ListenerStats stats() const override { return impl_->stats(); }
  void close() override { impl_->close(); }

 private:
  std::shared_ptr<ListenerImpl> impl_;
};

}  // namespace

std::shared_ptr<detail::ListenerCore> make_listener(const ListenOptions& options) {
  return std::make_shared<ListenerHandle>(std::make_shared<ListenerImpl>(options));
}

}  // namespace rendr::runtime
