#include "carrier/udp/udp_socket.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <asio/post.hpp>

#include "carrier/errno_code.hpp"

namespace rendr::carrier::udp {

namespace {

// A GRO buffer holds at most 64 KiB of coalesced datagrams.
constexpr std::size_t kGroSlotSize = 65536;
// The UDP payload limit of one GSO message (IPv4: 65535 - 20 - 8).
constexpr std::size_t kMaxGsoBytes = 65507;
// Batches drained in a row before yielding the executor to other work.
constexpr int kBatchesPerTurn = 16;

error_code last_error() {
  return errno_code(errno);
}

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

int read_int_option(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof(value);
  return getsockopt(fd, level, name, &value, &len) == 0 ? value : 0;
}

// Sets a buffer size, trying the variant that ignores net.core.*mem_max first.
bool set_buffer(int fd, int force_name, int name, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_name, &bytes, sizeof(bytes)) == 0) return true;
  setsockopt(fd, SOL_SOCKET, name, &bytes, sizeof(bytes));  // best effort: read back below
  return false;
}

}  // namespace

struct UdpSocket::ReceiveScratch {
  ReceiveScratch(std::size_t batch, std::size_t slot_size)
      : slot_size(slot_size),
        blocks(batch),
        messages(batch),
        iovecs(batch),
        addresses(batch),
        controls(batch) {
    datagrams.reserve(batch);
  }
  std::size_t slot_size;
  std::vector<wire::BlockPtr> blocks;
  std::vector<mmsghdr> messages;
  std::vector<iovec> iovecs;
  std::vector<sockaddr_storage> addresses;
  // Room for the UDP_GRO control message (an int).
  std::vector<std::array<char, CMSG_SPACE(sizeof(int))>> controls;
  std::vector<ReceivedDatagram> datagrams;
};

struct UdpSocket::SendScratch {
  explicit SendScratch(std::size_t batch)
      : messages(batch), iovecs(batch), message_datagrams(batch), controls(batch) {}
  std::vector<mmsghdr> messages;
  std::vector<iovec> iovecs;
  std::vector<std::size_t> message_datagrams;
  std::vector<std::size_t> sizes;  // send(buffer, segment_size) as a list of sizes
  // Room for the UDP_SEGMENT control message (a u16).
  std::vector<std::array<char, CMSG_SPACE(sizeof(std::uint16_t))>> controls;
};

std::shared_ptr<UdpSocket> UdpSocket::bind(asio::any_io_executor executor,
                                           const asio::ip::udp::endpoint& local,
                                           const UdpSocketOptions& options) {
  asio::ip::udp::socket socket(executor, local.protocol());
  socket.bind(local);
  return std::make_shared<UdpSocket>(std::move(socket), options);
}

std::shared_ptr<UdpSocket> UdpSocket::connect(asio::any_io_executor executor,
                                              const asio::ip::udp::endpoint& remote,
                                              const UdpSocketOptions& options) {
  asio::ip::udp::socket socket(executor, remote.protocol());
  socket.connect(remote);
  return std::make_shared<UdpSocket>(std::move(socket), options);
}

std::shared_ptr<UdpSocket> UdpSocket::connect_from(asio::any_io_executor executor,
                                                   const asio::ip::udp::endpoint& local,
                                                   const asio::ip::udp::endpoint& remote,
                                                   const UdpSocketOptions& options,
                                                   error_code& ec) {
  ec = {};
  asio::ip::udp::socket socket(executor);
  socket.open(local.protocol(), ec);
  if (!ec) socket.bind(local, ec);
  if (!ec) socket.connect(remote, ec);
  std::shared_ptr<UdpSocket> connected;
  if (!ec) {
    try {
      connected = std::make_shared<UdpSocket>(std::move(socket), options);
    } catch (const system_error& e) {
      ec = e.code();
    }
  }
  // asio reports errno values in its own category; callers compare with std::errc.
  if (ec) ec = errno_code(ec.value());
  return ec ? nullptr : connected;
}

UdpSocket::UdpSocket(asio::ip::udp::socket socket, const UdpSocketOptions& options)
    : socket_(std::move(socket)), options_(options) {
  configure();
  const std::size_t batch = std::max<std::size_t>(options_.batch, 1);
  receive_ = std::make_unique<ReceiveScratch>(
      batch, info_.gro ? kGroSlotSize : std::max<std::size_t>(options_.max_datagram, 1));
  send_ = std::make_unique<SendScratch>(batch);
}

UdpSocket::~UdpSocket() = default;

void UdpSocket::configure() {
  const int fd = socket_.native_handle();
  socket_.non_blocking(true);
  info_.buffers_forced = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options_.receive_buffer);
  info_.buffers_forced =
      set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options_.send_buffer) && info_.buffers_forced;
  info_.receive_buffer = read_int_option(fd, SOL_SOCKET, SO_RCVBUF);
  info_.send_buffer = read_int_option(fd, SOL_SOCKET, SO_SNDBUF);

  // DF on every datagram; the kernel neither fragments nor adopts ICMP-reported MTUs.
  v6_ = socket_.local_endpoint().protocol() == asio::ip::udp::v6();
  const bool v6 = v6_;
  int probe = v6 ? IPV6_PMTUDISC_PROBE : IP_PMTUDISC_PROBE;
  info_.pmtud_probe =
      setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER,
                 &probe, sizeof(probe)) == 0;
  if (v6) {  // a dual-stack socket's IPv4-mapped traffic follows the IPv4 option
    probe = IP_PMTUDISC_PROBE;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof(probe));
  }

  if (options_.gro) {
    const int on = 1;
    info_.gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
  }
  if (options_.gso) {
    // A socket-wide segment size of 0 changes nothing; the call only asks "is GSO known?".
    const int zero = 0;
    info_.gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
  }
  gso_.store(info_.gso, std::memory_order_relaxed);
}

UdpSocketInfo UdpSocket::info() const {
  UdpSocketInfo info = info_;
  info.gso = gso_.load(std::memory_order_relaxed);
  return info;
}

asio::ip::udp::endpoint UdpSocket::local_endpoint() const {
  error_code ec;
  return socket_.local_endpoint(ec);
}

std::span<const ReceivedDatagram> UdpSocket::receive(error_code& ec) {
  ec.clear();
  ReceiveScratch& r = *receive_;
  r.datagrams.clear();  // drop our references first, so unshared blocks can be reused
  if (closed_.load(std::memory_order_relaxed)) {
    ec = asio::error::bad_descriptor;
    return {};
  }
  for (std::size_t i = 0; i < r.messages.size(); ++i) {
    if (!r.blocks[i] || r.blocks[i].use_count() > 1) r.blocks[i] = wire::make_block(r.slot_size);
    r.iovecs[i] = {r.blocks[i]->data.get(), r.slot_size};
    msghdr& h = r.messages[i].msg_hdr;
    h = {};
    h.msg_name = &r.addresses[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &r.iovecs[i];
    h.msg_iovlen = 1;
    h.msg_control = r.controls[i].data();
    h.msg_controllen = r.controls[i].size();
  }
  const int n = recvmmsg(socket_.native_handle(), r.messages.data(),
                         static_cast<unsigned>(r.messages.size()), MSG_DONTWAIT, nullptr);
  if (n < 0) {
    ec = would_block(errno) ? make_error_code(asio::error::would_block) : last_error();
    return {};
  }
  counters_.receive_calls.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t bytes = 0;
  for (int i = 0; i < n; ++i) {
    const msghdr& h = r.messages[i].msg_hdr;
    const std::size_t length = r.messages[i].msg_len;
    if (h.msg_flags & MSG_TRUNC) {
      counters_.truncated.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::size_t segment = length;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int gro_size = 0;
        std::memcpy(&gro_size, CMSG_DATA(c), sizeof(gro_size));
        if (gro_size > 0) segment = static_cast<std::size_t>(gro_size);
      }
    }
    asio::ip::udp::endpoint source;
    std::memcpy(source.data(), &r.addresses[i], h.msg_namelen);
    source.resize(h.msg_namelen);
    if (length > segment) counters_.gro_buffers.fetch_add(1, std::memory_order_relaxed);
    wire::Byte* base = r.blocks[i]->data.get();
    for (std::size_t offset = 0; offset < length || (length == 0 && offset == 0);) {
      const std::size_t size = std::min(segment, length - offset);
      r.datagrams.push_back({wire::MutableBytes(base + offset, size), r.blocks[i], offset, source});
      offset += size;
      if (size == 0) break;  // an empty datagram is still one datagram
    }
    bytes += length;
  }
  counters_.datagrams_received.fetch_add(r.datagrams.size(), std::memory_order_relaxed);
  counters_.bytes_received.fetch_add(bytes, std::memory_order_relaxed);
  return r.datagrams;
}

void UdpSocket::start_reading(BatchHandler on_batch, ErrorHandler on_error) {
  on_batch_ = std::move(on_batch);
  on_error_ = std::move(on_error);
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->drain_then_wait(); });
}

void UdpSocket::drain_then_wait() {
  for (int turn = 0; turn < kBatchesPerTurn; ++turn) {
    if (closed_.load(std::memory_order_relaxed)) return;
    error_code ec;
    const auto batch = receive(ec);
    if (!batch.empty()) {
      on_batch_(batch);
      continue;
    }
    if (ec == asio::error::would_block) {
      socket_.async_wait(asio::socket_base::wait_read,
                         [self = shared_from_this()](error_code wait_ec) {
                           if (self->closed_.load(std::memory_order_relaxed)) return;
                           if (wait_ec) {
                             if (self->on_error_) self->on_error_(wait_ec);
                             return;
                           }
                           self->drain_then_wait();
                         });
      return;
    }
    // An ICMP error queued on the socket (a connected peer's port unreachable) is not a
    // socket failure: the next read goes on. Anything else is.
    if (ec && ec != std::errc::connection_refused) {
      if (on_error_) on_error_(ec);
      return;
    }
  }
  // A busy socket: let other handlers on the executor run, then go on draining.
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->drain_then_wait(); });
}

SendResult UdpSocket::send(wire::ConstBytes buffer, std::size_t segment_size,
                           const asio::ip::udp::endpoint* destination) {
  std::lock_guard lock(send_mutex_);
  if (segment_size == 0) return {};
  SendScratch& s = *send_;
  s.sizes.clear();
  for (std::size_t offset = 0; offset < buffer.size(); offset += segment_size)
    s.sizes.push_back(std::min(segment_size, buffer.size() - offset));
  return send_locked(buffer, s.sizes, destination);
}

SendResult UdpSocket::send(wire::ConstBytes buffer, std::span<const std::size_t> sizes,
                           const asio::ip::udp::endpoint* destination) {
  std::lock_guard lock(send_mutex_);
  std::size_t total = 0;
  for (std::size_t size : sizes)
    total += size;
  if (total != buffer.size()) return {0, make_error_code(std::errc::invalid_argument)};
  return send_locked(buffer, sizes, destination);
}

SendResult UdpSocket::send_locked(wire::ConstBytes buffer, std::span<const std::size_t> sizes,
                                  const asio::ip::udp::endpoint* destination) {
  if (closed_.load(std::memory_order_relaxed))
    return {0, make_error_code(asio::error::bad_descriptor)};
  SendResult total;
  while (!sizes.empty()) {
    const bool gso = gso_.load(std::memory_order_relaxed);
    bool first_segmented = false;
    SendResult part = send_messages(buffer, sizes, destination, gso, first_segmented);
    // The first message carried UDP_SEGMENT: an EIO or EINVAL is the kernel refusing GSO, not
    // (say) a bad destination.
    if (first_segmented && part.datagrams == 0 &&
        (part.error == std::errc::io_error || part.error == std::errc::invalid_argument)) {
      // Remember, and send one datagram per message from now on.
      gso_.store(false, std::memory_order_relaxed);
      counters_.gso_fallbacks.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    total.datagrams += part.datagrams;
    std::size_t sent_bytes = 0;
    for (std::size_t i = 0; i < part.datagrams; ++i)
      sent_bytes += sizes[i];
    buffer = buffer.subspan(sent_bytes);
    sizes = sizes.subspan(part.datagrams);
    if (part.error) {
      total.error = part.error;
      break;
    }
  }
  return total;
}

SendResult UdpSocket::send_messages(wire::ConstBytes buffer, std::span<const std::size_t> sizes,
                                    const asio::ip::udp::endpoint* destination, bool gso,
                                    bool& first_segmented) {
  SendScratch& s = *send_;
  std::size_t count = 0;
  std::size_t offset = 0;
  std::size_t next = 0;  // index into sizes
  while (next < sizes.size() && count < s.messages.size()) {
    // A GSO message: a run of datagrams of one size, perhaps ending with one shorter datagram
    // (the kernel splits the buffer every `segment` bytes), within the segment and byte caps.
    const std::size_t segment = sizes[next];
    std::size_t length = 0;
    std::size_t datagrams = 0;
    const bool can_segment = gso && segment > 0;
    while (next < sizes.size() && datagrams < (can_segment ? options_.max_gso_segments : 1) &&
           length + sizes[next] <= std::max(kMaxGsoBytes, segment) &&
           (sizes[next] == segment || (sizes[next] < segment && sizes[next] > 0))) {
      const bool shorter = sizes[next] < segment;
      length += sizes[next];
      ++next;
      ++datagrams;
      if (shorter) break;  // only the last datagram of a message may be shorter
    }
    s.iovecs[count] = {const_cast<wire::Byte*>(buffer.data() + offset), length};
    s.message_datagrams[count] = datagrams;
    msghdr& h = s.messages[count].msg_hdr;
    h = {};
    if (destination != nullptr) {
      h.msg_name = const_cast<sockaddr*>(destination->data());
      h.msg_namelen = static_cast<socklen_t>(destination->size());
    }
    h.msg_iov = &s.iovecs[count];
    h.msg_iovlen = 1;
    if (datagrams > 1) {
      h.msg_control = s.controls[count].data();
      h.msg_controllen = s.controls[count].size();
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      const auto segment16 = static_cast<std::uint16_t>(segment);
      std::memcpy(CMSG_DATA(c), &segment16, sizeof(segment16));
      if (count == 0) first_segmented = true;
    }
    offset += length;
    ++count;
  }

  SendResult result;
  std::size_t done = 0;
  while (done < count) {
    const int n = sendmmsg(socket_.native_handle(), s.messages.data() + done,
                           static_cast<unsigned>(count - done), MSG_DONTWAIT);
    if (n <= 0) {
      result.error =
          n < 0 && would_block(errno) ? make_error_code(asio::error::would_block) : last_error();
      break;
    }
    counters_.send_calls.fetch_add(1, std::memory_order_relaxed);
    counters_.messages_sent.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
      result.datagrams += s.message_datagrams[done + i];
      counters_.bytes_sent.fetch_add(s.iovecs[done + i].iov_len, std::memory_order_relaxed);
    }
    done += static_cast<std::size_t>(n);
  }
  counters_.datagrams_sent.fetch_add(result.datagrams, std::memory_order_relaxed);
  return result;
}

void UdpSocket::async_wait_writable(std::function<void(error_code)> done) {
  socket_.async_wait(asio::socket_base::wait_write, std::move(done));
}

void UdpSocket::async_wait_readable(std::function<void(error_code)> done) {
  socket_.async_wait(asio::socket_base::wait_read, std::move(done));
}

void UdpSocket::close() {
  if (closed_.exchange(true)) return;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    std::lock_guard lock(self->send_mutex_);
    error_code ignored;
    self->socket_.close(ignored);
    // The handlers may hold their owner; drop them so nothing keeps a cycle alive.
    self->on_batch_ = nullptr;
    self->on_error_ = nullptr;
  });
}

}  // namespace rendr::carrier::udp
