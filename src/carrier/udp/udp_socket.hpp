#pragma once
// A UDP socket tuned for udpflow, over an asio::ip::udp::socket's native handle. It moves
// datagrams and decides nothing about the protocol.
//
// Setup: SO_RCVBUF/SO_SNDBUF as large as allowed (the FORCE variants first, which pass
// net.core.[rw]mem_max with CAP_NET_ADMIN, then the plain ones; what was obtained is in info());
// IP_MTU_DISCOVER / IPV6_MTU_DISCOVER = PROBE, so every datagram has DF set, the kernel never
// fragments and never shrinks the size on an ICMP (path-MTU discovery is the core's
// MtuProber); UDP_GRO on receive and UDP_SEGMENT (GSO) on send where the kernel has them.
//
// Receiving: receive() drains up to a batch with one recvmmsg (MSG_DONTWAIT). A GRO buffer
// (several datagrams of one flow the kernel coalesced, announced by a UDP_GRO control message
// with their segment size) is split back into its datagrams. start_reading() runs the loop the
// runtime wants: drain until EAGAIN, then async_wait for readability, then drain again, so a
// burst costs one reactor wakeup, not one per datagram, and the loop never depends on the
// reactor reporting readiness that came before the wait started.
//
// Sending: send() takes datagrams back to back in one buffer, either all of one size (the last
// may be shorter) or with a size each, and hands them to the kernel with one sendmmsg. With
// GSO a message carries a run of equal-size datagrams (ending, perhaps, with one shorter) with
// a UDP_SEGMENT control message, up to max_gso_segments and 64 KiB; a size change starts a new
// message. If the kernel refuses GSO on a segmented message (EIO: the device cannot checksum;
// EINVAL: segmentation not accepted) the socket says so in info().gso and sends one datagram
// per message from then on. On EAGAIN, send() reports how many datagrams went (from the front);
// async_wait_writable() says when to go on.
//
// Threading: the socket's executor must run its handlers one at a time (a strand, or an
// io_context on one thread): reading, close() and async waits run there. send() may be called
// from any thread (a mutex guards its scratch space; the kernel send is atomic per message).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/udp.hpp>

#include "rendr/asio.hpp"
#include "wire/bytes.hpp"

namespace rendr::carrier::udp {

struct UdpSocketOptions {
  int receive_buffer = 8 * 1024 * 1024;  // requested SO_RCVBUF (the kernel doubles it)
  int send_buffer = 8 * 1024 * 1024;
  bool gso = true;
  bool gro = true;
  // Datagrams per recvmmsg / messages per sendmmsg.
  std::size_t batch = 32;
  // Receive slot size without GRO: the largest datagram accepted (longer ones are truncated and
  // dropped), room for a jumbo frame's (udpflow's default MTU ceiling is 8952). With GRO a slot
  // holds a whole coalesced buffer (64 KiB).
  std::size_t max_datagram = 9216;
  // Datagrams per GSO message (the kernel's limit is 64 on older kernels, 128 on newer).
  std::size_t max_gso_segments = 64;
};

// What the kernel granted.
struct UdpSocketInfo {
  int receive_buffer = 0;  // SO_RCVBUF as read back
  int send_buffer = 0;
  bool buffers_forced = false;  // SO_*BUFFORCE was permitted
  bool pmtud_probe = false;     // DF set, never fragmented
  bool gso = false;             // UDP_SEGMENT in use (cleared if the kernel refused a send)
  bool gro = false;             // UDP_GRO enabled
};

// Counters, readable from any thread (relaxed; for stats and tests).
struct UdpSocketCounters {
  std::atomic<std::uint64_t> datagrams_received{0};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> receive_calls{0};  // recvmmsg calls that returned datagrams
  std::atomic<std::uint64_t> gro_buffers{0};    // received buffers holding > 1 datagram
  std::atomic<std::uint64_t> truncated{0};      // datagrams longer than a slot, dropped
  std::atomic<std::uint64_t> datagrams_sent{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> send_calls{0};     // sendmmsg calls
  std::atomic<std::uint64_t> messages_sent{0};  // a GSO message counts once
  std::atomic<std::uint64_t> gso_fallbacks{0};
};

// One received datagram. `bytes` lies in `block` at `offset` (so a handler may decrypt it in
// place and keep wire::Slice(block, ...) of its frames); the socket never writes a block again
// while anyone else holds a reference to it.
struct ReceivedDatagram {
  wire::MutableBytes bytes;
  wire::BlockPtr block;
  std::size_t offset = 0;
  asio::ip::udp::endpoint source;
};

struct SendResult {
  std::size_t datagrams = 0;  // datagrams handed to the kernel, from the front of the buffer
  error_code error;           // would_block: wait for writability and send the rest
};

class UdpSocket : public std::enable_shared_from_this<UdpSocket> {
 public:
  using BatchHandler = std::function<void(std::span<const ReceivedDatagram>)>;
  using ErrorHandler = std::function<void(error_code)>;

  // A socket bound to `local` (a listener's shared socket). Throws Asio's system_error.
  static std::shared_ptr<UdpSocket> bind(asio::any_io_executor executor,
                                         const asio::ip::udp::endpoint& local,
                                         const UdpSocketOptions& options = {});
  // A socket connected to `remote` (one client path): the kernel drops datagrams from anyone
  // else. Throws Asio's system_error.
  static std::shared_ptr<UdpSocket> connect(asio::any_io_executor executor,
                                            const asio::ip::udp::endpoint& remote,
                                            const UdpSocketOptions& options = {});

  // A socket bound to `local` and connected to `remote` (a client path moving to a new local
  // address). Bound here, so an address that is not this host's fails the call; nullptr with
  // `ec` (comparable with std::errc) on failure.
  static std::shared_ptr<UdpSocket> connect_from(asio::any_io_executor executor,
                                                 const asio::ip::udp::endpoint& local,
                                                 const asio::ip::udp::endpoint& remote,
                                                 const UdpSocketOptions& options, error_code& ec);

  UdpSocket(asio::ip::udp::socket socket, const UdpSocketOptions& options);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Non-blocking: receives what is queued, up to one batch (GRO buffers split). Empty with
  // would_block when nothing is; the datagrams are valid until the next receive().
  std::span<const ReceivedDatagram> receive(error_code& ec);

  // Runs drain-then-wait on the socket's executor: `on_batch` for every non-empty batch until
  // close(); `on_error` once if the socket fails (not after close()).
  void start_reading(BatchHandler on_batch, ErrorHandler on_error);

  // Sends `buffer` as datagrams of `segment_size` bytes (the last may be shorter) to
  // `destination`, or to the connected peer when it is null. Non-blocking. An empty buffer
  // sends nothing.
  SendResult send(wire::ConstBytes buffer, std::size_t segment_size,
                  const asio::ip::udp::endpoint* destination = nullptr);
  // Sends `buffer` as datagrams of the given sizes, in order (invalid_argument if they do not
  // add up to the buffer): sealed packets of different lengths in one call.
  SendResult send(wire::ConstBytes buffer, std::span<const std::size_t> sizes,
                  const asio::ip::udp::endpoint* destination = nullptr);
  // Calls `done` on the socket's executor once the socket can take more.
  void async_wait_writable(std::function<void(error_code)> done);
  // Calls `done` on the socket's executor once a datagram is queued: for owners that drive
  // receive() themselves instead of start_reading() (so the pending wait, not a handler stored
  // in the socket, keeps them alive).
  void async_wait_readable(std::function<void(error_code)> done);

  void close();

  asio::ip::udp::endpoint local_endpoint() const;
  // Whether the socket is IPv6 (dual-stack), read once when it was opened: no system call per
  // send, as local_endpoint() makes.
  bool is_v6() const { return v6_; }
  int native_handle() { return socket_.native_handle(); }
  UdpSocketInfo info() const;
  const UdpSocketCounters& counters() const { return counters_; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  void configure();
  void drain_then_wait();
  SendResult send_locked(wire::ConstBytes buffer, std::span<const std::size_t> sizes,
                         const asio::ip::udp::endpoint* destination);
  // One sendmmsg's worth of messages (fewer if EAGAIN); `first_segmented`: the first message
  // carried UDP_SEGMENT.
  SendResult send_messages(wire::ConstBytes buffer, std::span<const std::size_t> sizes,
                           const asio::ip::udp::endpoint* destination, bool gso,
                           bool& first_segmented);

  struct ReceiveScratch;
  struct SendScratch;

  asio::ip::udp::socket socket_;
  const UdpSocketOptions options_;
  bool v6_ = false;
  UdpSocketInfo info_;  // as configured; gso_ says whether GSO is still in use
  std::atomic<bool> gso_{false};
  UdpSocketCounters counters_;
  std::unique_ptr<ReceiveScratch> receive_;
  std::mutex send_mutex_;  // guards send_
  std::unique_ptr<SendScratch> send_;
  BatchHandler on_batch_;
  ErrorHandler on_error_;
  std::atomic<bool> closed_{false};
};

}  // namespace rendr::carrier::udp
