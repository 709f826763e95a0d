#include "runtime/listener.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "carrier/tcp/tcp_carrier.hpp"
#include "runtime/convert.hpp"
#include "runtime/session.hpp"

namespace rendr::runtime {

namespace {

using AcceptCallback = std::function<void(std::error_code, Conn)>;

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
  Pending(std::weak_ptr<ListenerImpl> listener, std::shared_ptr<carrier::Carrier> carrier)
      : listener_(std::move(listener)),
        carrier_(std::move(carrier)),
        timer_(carrier_->executor()) {}

  void start(std::chrono::milliseconds handshake_timeout);
  void on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) override;
  void on_down(carrier::DownReason reason, std::error_code, wire::DecodeError) override;
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
  const std::shared_ptr<carrier::Carrier>& carrier() const { return carrier_; }

 private:
  std::weak_ptr<ListenerImpl> listener_;
  std::shared_ptr<carrier::Carrier> carrier_;
  asio::steady_timer timer_;
  bool decided_ = false;
  std::optional<wire::OutFrame> last_frame_;
  bool last_frame_sent_ = false;
};

class ListenerImpl final : public std::enable_shared_from_this<ListenerImpl> {
 public:
  explicit ListenerImpl(const ListenOptions& options)
      : options_(options),
        ex_(options.engine != nullptr ? options.engine->executor()
                                      : Engine::default_engine().executor()),
        config_(make_config(Mode::prime, options.migration_budget, options.options)) {}

  asio::any_io_executor executor() const { return ex_; }

  std::error_code listen_tcp(const std::string& address) {
    std::error_code ec;
    const PathSpec spec = PathSpec::parse("tcp://" + address, ec);
    // Port 0 (any free port) is fine here, unlike in a path spec.
    std::string host = spec.host;
    std::string port;
    if (ec) {
      const auto colon = address.rfind(':');
      if (colon == std::string::npos || address.substr(colon + 1) != "0") return ec;
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
    if (ec) return ec;
    if (results.empty()) return errc::bad_path_spec;
    const auto endpoint = results.begin()->endpoint();
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

  Conn accept(std::error_code& ec) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || closed_; });
    if (ready_.empty()) {
      ec = errc::listener_closed;
      return {};
    }
    auto session = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    ec.clear();
    return Conn(make_conn(std::move(session)));
  }

  void async_accept(AcceptCallback done) {
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(mu_);
      if (!closed_ && ready_.empty()) {
        waiters_.push_back(std::move(done));
        return;
      }
      if (!ready_.empty()) {
        session = std::move(ready_.front());
        ready_.pop_front();
      }
    }
    if (session) {
      done({}, Conn(make_conn(std::move(session))));
    } else {
      done(errc::listener_closed, Conn());
    }
  }

  std::vector<std::string> local_addresses() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& ep : endpoints_) {
      const auto addr = ep.address();
      out.push_back((addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
                    std::to_string(ep.port()));
    }
    return out;
  }

  std::uint16_t port(std::size_t index) const {
    std::lock_guard lock(mu_);
    return index < endpoints_.size() ? endpoints_[index].port() : 0;
  }

  ListenerStats stats() const {
    std::lock_guard lock(mu_);
    ListenerStats s = stats_;
    s.live_flows = flows_.size();
    return s;
  }

  void close() {
    std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors;
    std::deque<std::shared_ptr<Session>> unaccepted;
    std::deque<AcceptCallback> waiters;
    std::unordered_map<Pending*, std::shared_ptr<Pending>> pending;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      acceptors.swap(acceptors_);
      unaccepted.swap(ready_);
      waiters.swap(waiters_);
      pending.swap(pending_);
    }
    cv_.notify_all();
    for (auto& a : acceptors)
      asio::post(a->get_executor(), [a] { a->close(); });
    for (auto& [raw, p] : pending)
      p->carrier()->abort();
    for (auto& s : unaccepted)
      s->abort();
    for (auto& w : waiters)
      w(errc::listener_closed, Conn());
    // Flows already accepted belong to the application and carry on.
  }

  // ---- called by Pending, on the carrier's strand

  void judge(const std::shared_ptr<Pending>& pending, const std::vector<wire::Frame>& frames,
             const wire::Slice& backing) {
    const auto rest = std::span<const wire::Frame>(frames).subspan(1);
    const auto& first = frames.front();
    if (const auto* open = std::get_if<wire::Open>(&first.body)) {
      handle_open(pending, *open, rest, backing);
    } else if (const auto* join = std::get_if<wire::Join>(&first.body)) {
      handle_join(pending, *join, rest, backing);
    } else {
      count(&ListenerStats::rejected_malformed);
      pending->carrier()->abort();
    }
  }

  void pending_done(Pending* pending) {
    std::shared_ptr<Pending> ref;  // dropped outside the lock
    std::lock_guard lock(mu_);
    if (auto it = pending_.find(pending); it != pending_.end()) {
      ref = std::move(it->second);
      pending_.erase(it);
    }
  }

  void count(std::uint64_t ListenerStats::*field) {
    std::lock_guard lock(mu_);
    ++(stats_.*field);
  }

 private:
  void start_accept(std::shared_ptr<asio::ip::tcp::acceptor> acceptor) {
    acceptor->async_accept(
        asio::make_strand(ex_),
        [weak = weak_from_this(), acceptor](std::error_code ec, asio::ip::tcp::socket socket) {
          auto self = weak.lock();
          if (!self || ec == asio::error::operation_aborted || !acceptor->is_open()) return;
          if (!ec) self->on_accept(std::move(socket));
          // Transient errors (EMFILE, ECONNABORTED) do not stop the listener.
          self->start_accept(acceptor);
        });
  }

  void on_accept(asio::ip::tcp::socket socket) {
    std::shared_ptr<Pending> pending;
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      ++stats_.connections_accepted;
      if (pending_.size() >= options_.max_half_open) {
        ++stats_.rejected_capacity;
        return;  // the socket closes as it goes out of scope
      }
      pending =
          std::make_shared<Pending>(weak_from_this(), carrier::make_tcp_carrier(std::move(socket)));
      pending_.emplace(pending.get(), pending);
    }
    pending->start(options_.handshake_timeout);
  }

  void handle_open(const std::shared_ptr<Pending>& pending, const wire::Open& open,
                   std::span<const wire::Frame> rest, const wire::Slice& backing) {
    wire::Status status = wire::Status::ok;
    bool known_flow = false;
    std::shared_ptr<Session> existing;
    {
      std::lock_guard lock(mu_);
      if (auto it = flows_.find(open.flow_id); it != flows_.end()) {
        known_flow = true;
        existing = it->second.lock();
      } else if (closed_ || flows_.size() >= options_.max_flows) {
        status = wire::Status::capacity;
      }
    }
    if (known_flow) {
      handle_repeated_open(pending, open, existing);
      return;
    }
    std::unique_ptr<core::Flow> flow;
    if (status == wire::Status::ok) {
      flow = core::Flow::make_server(config_, open, static_cast<core::PathId>(open.path_id),
                                     core::Clock::now(), status);
    }
    if (!flow) {
      count(status == wire::Status::capacity ? &ListenerStats::rejected_capacity
                                             : &ListenerStats::rejected_malformed);
      wire::OpenAck nack;
      nack.status = status;
      pending->answer_and_close(wire::Frame{0, nack});
      return;
    }
    auto session =
        Session::make_server(ex_, std::move(flow), [weak = weak_from_this()](const FlowId& id) {
          if (auto self = weak.lock()) self->flow_finished(id);
        });
    {
      std::lock_guard lock(mu_);
      if (closed_ || !flows_.emplace(open.flow_id, session).second) {
        session->abort();
        pending->carrier()->abort();
        return;
      }
    }
    session->attach_first(pending->carrier(), static_cast<core::PathId>(open.path_id), rest,
                          backing);
    AcceptCallback waiter;
    {
      std::lock_guard lock(mu_);
      ++stats_.flows_opened;
      if (closed_) {
        // close() ran meanwhile: this flow was never handed out.
      } else if (!waiters_.empty()) {
        waiter = std::move(waiters_.front());
        waiters_.pop_front();
      } else {
        ready_.push_back(session);
        cv_.notify_one();
        return;
      }
    }
    if (waiter) {
      waiter({}, Conn(make_conn(std::move(session))));
    } else {
      session->abort();
    }
  }

  void handle_join(const std::shared_ptr<Pending>& pending, const wire::Join& join,
                   std::span<const wire::Frame> rest, const wire::Slice& backing) {
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(mu_);
      if (auto it = flows_.find(join.flow_id); it != flows_.end()) session = it->second.lock();
    }
    wire::Status status = wire::Status::unknown_flow;
    if (session) status = session->attach_join(pending->carrier(), join, rest, backing);
    switch (status) {
      case wire::Status::ok:
        count(&ListenerStats::joins_accepted);
        return;
      case wire::Status::unknown_flow:
        count(&ListenerStats::rejected_unknown_flow);
        break;
      case wire::Status::bad_proof:
        count(&ListenerStats::rejected_bad_proof);
        break;
      case wire::Status::replayed:
        count(&ListenerStats::rejected_replay);
        break;
      case wire::Status::capacity:
        count(&ListenerStats::rejected_capacity);
        break;
      default:
        count(&ListenerStats::rejected_malformed);
        break;
    }
    wire::JoinAck nack;
    nack.status = status;
    pending->answer_and_close(wire::Frame{0, nack});
  }

  // An OPEN naming a flow we hold. A client whose first path died before the OPEN_ACK reached
  // it sends the same OPEN again on another path: it gets the flow's OPEN_ACK and then JOINs
  // (with a MAC) once it holds the key. The connection itself is never attached, so a replayed
  // OPEN gains nothing; one with any field changed is someone else's (refused).
  void handle_repeated_open(const std::shared_ptr<Pending>& pending, const wire::Open& open,
                            const std::shared_ptr<Session>& session) {
    std::optional<wire::OpenAck> ack;
    if (session) ack = session->open_ack_for_repeated_open(open);
    if (ack) {
      count(&ListenerStats::duplicate_opens);
      pending->answer_and_close(wire::Frame{0, *ack});
      return;
    }
    count(&ListenerStats::rejected_malformed);
    wire::OpenAck nack;
    nack.status = wire::Status::bad_request;
    pending->answer_and_close(wire::Frame{0, nack});
  }

  void flow_finished(const FlowId& id) {
    std::lock_guard lock(mu_);
    flows_.erase(id);
  }

  const ListenOptions options_;
  const asio::any_io_executor ex_;
  const core::FlowConfig config_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::vector<asio::ip::tcp::endpoint> endpoints_;
  std::map<FlowId, std::weak_ptr<Session>> flows_;
  std::deque<std::shared_ptr<Session>> ready_;
  std::deque<AcceptCallback> waiters_;
  std::unordered_map<Pending*, std::shared_ptr<Pending>> pending_;
  ListenerStats stats_;
};

void Pending::start(std::chrono::milliseconds handshake_timeout) {
  timer_.expires_after(handshake_timeout);
  timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->decided_) return;
    self->decided_ = true;
    if (auto l = self->listener_.lock()) l->count(&ListenerStats::rejected_timeout);
    self->carrier_->abort();
  });
  carrier_->start(weak_from_this());
}

void Pending::on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) {
  if (decided_ || frames.empty()) return;
  decided_ = true;
  timer_.cancel();
  auto listener = listener_.lock();
  if (!listener) {
    carrier_->abort();
    return;
  }
  listener->judge(shared_from_this(), frames, backing);
  // Accepted connections now belong to a session; rejected ones stay until their carrier
  // reports down (this handler must outlive the last frame's write).
  if (!last_frame_) listener->pending_done(this);
}

void Pending::on_down(carrier::DownReason reason, std::error_code, wire::DecodeError) {
  timer_.cancel();
  auto listener = listener_.lock();
  if (!listener) return;
  if (!decided_ && reason == carrier::DownReason::protocol_error)
    listener->count(&ListenerStats::rejected_malformed);
  decided_ = true;
  listener->pending_done(this);
}

// The public handle: closing the listener when the application lets go of it.
class ListenerHandle final : public detail::ListenerCore {
 public:
  explicit ListenerHandle(std::shared_ptr<ListenerImpl> impl) : impl_(std::move(impl)) {}
  ~ListenerHandle() override { impl_->close(); }

  asio::any_io_executor executor() override { return impl_->executor(); }
  Conn accept(std::error_code& ec) override { return impl_->accept(ec); }
  void async_accept(AcceptCallback done) override { impl_->async_accept(std::move(done)); }
  std::error_code listen_tcp(const std::string& address) override {
    return impl_->listen_tcp(address);
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
