#pragma once
// runtime::Session — one flow at run time: a core::Flow, the carriers of its paths, a timer, and
// the application's waiters.
//
// Threading and locking
//  - Every call into the Flow happens with `mu_` held. After each input the session "pumps":
//    it drains the Flow's events, serves waiters and collects Actions (carrier kicks, closes,
//    dials, completions, user callbacks) that run after `mu_` is released. Nothing outside the
//    session (a carrier, a completion handler, a user callback, the listener) is ever called
//    with `mu_` held.
//  - Lock order: the session mutex and a listener's mutex are never held together.
//  - Carrier callbacks, the timer and the on_migrate callback run on the engine's threads;
//    application calls come from any thread. The blocking calls (read_some, write_some and
//    Dialer::dial) fail with errc::blocking_call_on_engine_thread on an engine thread.
//  - Cancellation (cancel_op, cancel) comes from any thread: a pending operation is removed
//    under `mu_` and completed with operation_aborted, so its buffers are never touched again.
//
// Lifetime
//  - The application holds a ConnHandle (the detail::ConnCore behind rendr::Conn). Dropping the
//    last handle closes the sending direction gracefully and discards what arrives afterwards.
//  - The I/O side keeps the session alive (KeepAlive registry) until the flow has finished and
//    its carriers have drained (bounded by a linger timer), so a close() completes even if the
//    application has let go. Once both directions are closed (or the flow has finished) the
//    session is marked closing there, so the engine's destructor lets it finish (bounded).
//  - The application's handle may outlive the engine: when the engine's context shuts down
//    (KeepAlive::clear), on_engine_shutdown drops the carriers and timers while the context
//    still exists and fails pending operations; from then on every application call fails with
//    errc::not_connected and nothing touches the context again.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include "carrier/carrier.hpp"
#include "core/endpoint.hpp"
#include "core/flow.hpp"
#include "rendr/conn.hpp"

namespace rendr::runtime {

class Session;
class FlowRegistry;

// The CarrierHandler of one carrier attached to a session path. Holds the session weakly, so a
// carrier never keeps a flow alive. The session knows which path the carrier serves (a
// provisional JOIN path changes its id when it proves itself).
class PathHandler final : public carrier::CarrierHandler {
 public:
  PathHandler(std::weak_ptr<Session> session, carrier::Carrier* carrier)
      : session_(std::move(session)), carrier_(carrier) {}
  void on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) override;
  void on_down(carrier::DownReason reason, error_code ec, wire::DecodeError decode_error) override;
  void on_acknowledged() override;
  bool pull(wire::TransmitBatch& out) override;
  void on_packets(std::span<const carrier::ReceivedPacket> packets) override;
  bool pull_datagrams(wire::TransmitBatch& out,
                      std::optional<asio::ip::udp::endpoint>& to) override;
  bool pull_probe(wire::TransmitBatch& out, std::optional<asio::ip::udp::endpoint>& to) override;
  void on_local_address_moved() override;
  void on_datagram_frames(const std::vector<wire::Frame>& frames,
                          const wire::Slice& backing) override;
  void on_datagram_fates(std::span<const std::uint64_t> acked,
                         std::span<const std::uint64_t> lost) override;

 private:
  std::weak_ptr<Session> session_;
  carrier::Carrier* carrier_;  // identity only
};

class Session final : public std::enable_shared_from_this<Session> {
 public:
  using FinishedCallback = std::function<void(const FlowId&)>;
  // What a server session tells its listener; each runs outside all session locks.
  struct ServerHooks {
    FinishedCallback finished;  // the flow has finished
    // The client proved the key: the session may be offered to accept() (once).
    std::function<void(std::shared_ptr<Session>)> authenticated;
    // A client did not prove the key on one of its paths (docs/protocol.md §8).
    std::function<void()> authentication_failed;
    // What the listener's core::Endpoint needs to know of the flow (paths, heard), whenever it
    // changes, until the flow has finished.
    std::function<void(const core::FlowReport&)> report;
  };

  // Client: a fresh flow. Paths are added with add_path.
  static std::shared_ptr<Session> make_client(asio::any_io_executor ex,
                                              const core::FlowConfig& config);
  // Server: a flow created from an OPEN, not yet authenticated (hooks.authenticated says when).
  static std::shared_ptr<Session> make_server(asio::any_io_executor ex,
                                              std::unique_ptr<core::Flow> flow, ServerHooks hooks);

  struct Private {};
  Session(Private, asio::any_io_executor ex, std::unique_ptr<core::Flow> flow);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- client setup
  // Waits until the flow is established (ok), failed, or `deadline` passed.
  error_code wait_established(core::Time deadline);
  // Calls `done` once, outside the session's locks, when the flow is established (ok) or has
  // failed (its error): on an engine thread, or at once if that is already decided.
  void on_established(std::function<void(error_code)> done);
  // What wait_established would return now (ok once established).
  error_code establish_result() const;

  // ---- server setup (on the carrier's executor, from the listener's pending handler)
  // Attaches the carrier on which OPEN arrived (the flow already knows it as `path`) and feeds
  // it the frames that followed OPEN in the same read.
  void attach_first(std::shared_ptr<carrier::Carrier> carrier, core::PathId path,
                    std::span<const wire::Frame> rest, const wire::Slice& backing);
  // Checks a JOIN (core::admit_join: a new path beyond `max_paths` is refused with capacity);
  // on ok the carrier is a provisional path of the flow, and becomes the current carrier of
  // join.path_id once its PROOF arrives (core::Flow::on_join). `path`: what the path starts
  // with (a udpflow listener's: the JOIN's source address and its 3x allowance); by default
  // what the carrier says.
  wire::Status attach_join(std::shared_ptr<carrier::Carrier> carrier, const wire::Join& join,
                           std::span<const wire::Frame> rest, const wire::Slice& backing,
                           std::size_t max_paths,
                           const std::optional<core::PathOptions>& path = std::nullopt);
  // The answer to an OPEN for this flow on another carrier: the flow's own OPEN_ACK if the
  // OPEN repeats the one that created it, else nullopt (core::Flow::open_ack_for_repeated_open).
  std::optional<wire::OpenAck> open_ack_for_repeated_open(const wire::Open& open);

  // ---- application side (ConnCore)
  // The engine's executor; once the engine is gone, the system executor (so that completions
  // of operations that fail with not_connected still run somewhere).
  asio::any_io_executor executor() const;
  bool is_open() const;
  std::size_t read_some(const detail::MutableBuffers& buffers, error_code& ec);
  std::size_t write_some(const detail::ConstBuffers& buffers, error_code& ec);
  void async_read_some(const detail::MutableBuffers& buffers, detail::Completion done,
                       std::uint64_t op);
  void async_write_some(const detail::ConstBuffers& buffers, detail::Completion done,
                        std::uint64_t op);
  // Packet flows (rendr::PacketConn): one whole message per call. send: ok with its size,
  // errc::message_too_large, or the write error; receive: ok with its size, or
  // errc::message_buffer_too_small with the message's size (it stays queued), or the read error.
  std::size_t send_message(asio::const_buffer message, error_code& ec);
  std::size_t receive_message(asio::mutable_buffer out, error_code& ec);
  void async_send_message(asio::const_buffer message, detail::Completion done, std::uint64_t op);
  void async_receive_message(asio::mutable_buffer out, detail::Completion done, std::uint64_t op);
  void cancel_op(std::uint64_t op);
  void cancel();
  void close();
  void abort();
  // The last application handle is gone.
  void detach();

  FlowId flow_id() const;
  error_code migrate(PathId id);
  // Moves path `id`'s transport to a new local address (Conn::migrate_local_address).
  error_code migrate_local_address(PathId id, const std::string& local_host_port);
  PathId active_path() const;
  PathId add_path(const PathSpec& spec, error_code& ec);
  error_code remove_path(PathId id);
  std::string state() const;
  Mode mode() const;
  error_code set_mode(Mode m);
  std::uint64_t migration_count() const;
  ConnStats stats() const;
  using MigrateCallback = std::function<void(PathId, PathId, MigrateCause)>;
  // The callback runs on the session's executor, in order, one at a time, never once detach()
  // has returned (docs: Conn::on_migrate).
  void on_migrate(MigrateCallback callback);

  // True once the flow has finished (closed or failed).
  bool finished() const;
  // A packet flow (messages; the client's dial or the server's OPEN said so, fixed for life).
  bool packet() const { return packet_; }

  // The engine's context is shutting down (no thread runs it any more).
  void on_engine_shutdown();

  // ---- carrier glue (PathHandler)
  void carrier_frames(carrier::Carrier* c, const std::vector<wire::Frame>& frames,
                      const wire::Slice& backing);
  void carrier_down(carrier::Carrier* c, carrier::DownReason reason);
  // A stream carrier's transport saw our packets acknowledged (core::Flow::on_path_acknowledged).
  void carrier_acknowledged(carrier::Carrier* c);
  bool carrier_pull(carrier::Carrier* c, wire::TransmitBatch& out);
  // A datagram carrier's pull, with where its packets go (the path's validated peer address,
  // empty when the core leaves it to the carrier).
  bool carrier_pull_datagrams(carrier::Carrier* c, wire::TransmitBatch& out,
                              std::optional<asio::ip::udp::endpoint>& to);
  // One address-validation probe of a datagram carrier's path (core::Flow::poll_probe).
  bool carrier_pull_probe(carrier::Carrier* c, wire::TransmitBatch& out,
                          std::optional<asio::ip::udp::endpoint>& to);
  // A datagram carrier now sends from a new local address (core::Flow::on_local_address_moved).
  void carrier_local_address_moved(carrier::Carrier* c);
  // A datagram carrier's packets (core::Flow::on_packet each, one pump for the batch).
  void carrier_packets(carrier::Carrier* c, std::span<const carrier::ReceivedPacket> packets);
  // A stream carrier's datagrams (QUIC DATAGRAM): frames in, and the fates of those sent.
  void carrier_datagram_frames(carrier::Carrier* c, const std::vector<wire::Frame>& frames,
                               const wire::Slice& backing);
  void carrier_datagram_fates(carrier::Carrier* c, std::span<const std::uint64_t> acked,
                              std::span<const std::uint64_t> lost);

 private:
  struct Actions;

  // One carrier this session has attached (current, or retired and still closing).
  struct Attached {
    core::PathId path = core::kNoPath;
    std::shared_ptr<carrier::Carrier> carrier;
    std::shared_ptr<PathHandler> handler;
    std::string peer;
    bool current = false;
    bool started = false;    // start()/set_handler() done: kicks may go to it
    bool key_given = false;  // a datagram carrier has the flow key (set_flow_key)
  };
  struct PathEntry {
    std::optional<PathSpec> spec;         // client
    carrier::Carrier* current = nullptr;  // key into carriers_
    std::uint64_t dial_seq = 0;
    std::string peer;       // last known peer address
    std::string transport;  // of the last carrier attached (server: there is no spec)
  };
  struct PendingRead {
    detail::MutableBuffers buffers;
    detail::Completion done;
    std::uint64_t op = 0;
    std::optional<asio::mutable_buffer> message;  // set: a packet flow's receive_message
  };
  struct PendingWrite {
    detail::ConstBuffers buffers;
    detail::Completion done;
    std::uint64_t op = 0;
    std::optional<asio::const_buffer> message;  // set: a packet flow's send_message
  };
  template <class Pending>
  void start_async(std::optional<Pending>& slot, Pending op);
  enum class Direction { read, write };
  // The blocking calls' shared shape: refused on an engine thread or beside a pending async
  // operation of the same direction; otherwise `attempt(n, ec)` runs under mu_ until it returns
  // true (decided), waiting on cv_ in between and counted in the direction's waiters so the pump
  // wakes it.
  template <class Attempt>
  std::size_t block_until_decided(Direction direction, error_code& ec, Attempt attempt);
  // One attempt at a message operation: true once it is decided (n and ec set), false while it
  // must wait (no message yet, no room yet).
  bool try_send_message(asio::const_buffer message, core::Time t, std::size_t& n, error_code& ec);
  bool try_receive_message(asio::mutable_buffer out, core::Time t, std::size_t& n, error_code& ec);

  // All of these require mu_.
  void pump(Actions& a, carrier::Carrier* pulling = nullptr);
  // Hands the flow key to datagram carriers that lack it, once the flow holds it.
  void give_packet_keys(Actions& a);
  void count_started(Actions& a);
  void count_ended(Actions& a);
  ConnStats stats_locked() const;
  bool serve_waiters(Actions& a, core::Time now);
  void retire(core::PathId path, bool graceful, Actions& a);
  void attach_locked(std::shared_ptr<carrier::Carrier> carrier, core::PathId path,
                     std::span<const wire::Frame> rest, const wire::Slice& backing, core::Time now,
                     Actions& a);
  void feed_locked(carrier::Carrier* c, std::span<const wire::Frame> frames,
                   const wire::Slice& backing, core::Time t, Actions& a);
  void adopt_joined(core::PathId path, core::PathId provisional, Actions& a);
  void arm_timer();
  void arm_timer_at(core::Time at);
  void on_finished_locked(Actions& a);
  void maybe_mark_closing();
  void maybe_release(Actions& a);
  void report(Actions& a);
  error_code establish_result_locked() const;
  void settle_establishment(Actions& a);
  error_code read_error() const;
  error_code write_error() const;
  // Copies into / from the whole buffer list, in order, as far as the flow allows.
  std::size_t read_into(const detail::MutableBuffers& buffers, core::Time t);
  std::size_t write_from(const detail::ConstBuffers& buffers, core::Time t);

  void on_timer(std::uint64_t generation);
  void on_linger();
  void on_dialed(core::PathId path, std::uint64_t seq, error_code ec,
                 std::shared_ptr<carrier::Carrier> carrier);
  void start_dial(core::PathId path, std::uint64_t seq, const PathSpec& spec);
  void run(Actions& a);
  void deliver_migrations();

  const asio::any_io_executor ex_;
  // Created with the first session of a context, so it exists before any flow is counted.
  FlowRegistry& registry_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<core::Flow> flow_;
  const core::Role role_;
  const FlowId id_;
  const bool packet_;

  std::map<core::PathId, PathEntry> paths_;
  std::unordered_map<carrier::Carrier*, Attached> carriers_;

  // Reset by on_engine_shutdown: a timer must not outlive its context.
  std::optional<asio::steady_timer> timer_;
  bool timer_armed_ = false;
  core::Time timer_at_{};
  core::Time timer_pushed_at_{};  // when arm_timer last moved the timer later
  std::uint64_t timer_gen_ = 0;
  bool late_timer_deferred_ = false;
  std::optional<asio::steady_timer> linger_;

  std::optional<PendingRead> pending_read_;
  std::optional<PendingWrite> pending_write_;
  int read_waiters_ = 0;
  int write_waiters_ = 0;

  bool established_ = false;
  bool any_dial_succeeded_ = false;
  error_code last_dial_error_;
  std::function<void(error_code)> established_waiter_;
  bool finished_ = false;
  bool finish_handled_ = false;
  bool detached_ = false;
  bool released_ = false;
  bool closing_ = false;  // marked closing in KeepAlive
  // on_engine_shutdown ran: the context must not be touched. Atomic for executor().
  std::atomic<bool> engine_gone_{false};
  // on_migrate: the callback, the migrations it has yet to hear of, whether a delivery is
  // posted; callback_mu_ is held while a callback runs, on callback_thread_.
  std::shared_ptr<MigrateCallback> migrate_cb_;
  struct Migration {
    PathId old_path = kNoPath;
    PathId new_path = kNoPath;
    MigrateCause cause = MigrateCause::explicit_request;
  };
  std::deque<Migration> migrations_;
  bool migrations_posted_ = false;
  std::mutex callback_mu_;
  std::atomic<std::thread::id> callback_thread_{};
  ServerHooks hooks_;
  core::FlowReport reported_{0, 1, false};  // the OPEN's carrier is attached first
  bool heard_after_open_ = false;
};

// The application handle behind rendr::Conn: forwards to the session and detaches it when the
// last Conn copy is dropped.
std::shared_ptr<detail::ConnCore> make_conn(std::shared_ptr<Session> session);

}  // namespace rendr::runtime
