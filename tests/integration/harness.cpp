#include "harness.hpp"

#include "core/crypto.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <tuple>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

namespace rendr::itest {

namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void fill_pattern(std::uint64_t seed, std::uint64_t offset, std::span<std::uint8_t> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t position = offset + i;
    const std::uint64_t word = mix((position >> 3) ^ (seed * 0x9e3779b97f4a7c15ULL));
    for (unsigned byte = position & 7; byte < 8 && i < out.size(); ++byte, ++i) {
      out[i] = static_cast<std::uint8_t>(word >> (8 * byte));
    }
  }
}

struct Sha256::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
}

Sha256::~Sha256() = default;

void Sha256::update(std::span<const std::uint8_t> bytes) {
  EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size());
}

std::string Sha256::hex_digest() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx_->md, digest.data(), &size);
  std::string hex;
  char pair[3];
  for (unsigned i = 0; i < size; ++i) {
    std::snprintf(pair, sizeof pair, "%02x", digest[i]);
    hex += pair;
  }
  return hex;
}

// ---- StreamWriter

StreamWriter::StreamWriter(Conn conn, WriteSpec spec)
    : conn_(std::move(conn)), spec_(std::move(spec)) {
  std::promise<StreamOutcome> result;
  future_ = result.get_future();
  thread_ = std::thread([this, result = std::move(result)]() mutable { result.set_value(run()); });
}

StreamWriter::~StreamWriter() {
  stop();
  // Still blocked (the test failed or broke off early): unblock it by aborting the flow.
  if (!wait(scaled(2s))) conn_.abort();
  thread_.join();
}

bool StreamWriter::wait(std::chrono::milliseconds timeout) {
  return outcome_ || future_.wait_for(timeout) == std::future_status::ready;
}

const StreamOutcome& StreamWriter::outcome() {
  if (!outcome_) outcome_ = future_.get();
  return *outcome_;
}

StreamOutcome StreamWriter::run() {
  StreamOutcome out;
  Sha256 sha;
  std::vector<std::uint8_t> chunk(spec_.chunk);
  std::uint64_t offset = 0;
  while (!stop_ && !out.error) {
    std::size_t size = spec_.chunk;
    if (spec_.bytes) {
      if (offset >= *spec_.bytes) break;
      size = static_cast<std::size_t>(std::min<std::uint64_t>(size, *spec_.bytes - offset));
    }
    fill_pattern(spec_.seed, offset, {chunk.data(), size});
    for (std::size_t done = 0; done < size;) {
      const std::size_t written =
          conn_.write_some(asio::buffer(chunk.data() + done, size - done), out.error);
      if (out.error) break;
      sha.update({chunk.data() + done, written});
      done += written;
      offset += written;
      progress_ = offset;
      if (spec_.after_write) spec_.after_write(offset);
    }
  }
  if (!out.error && spec_.close_when_done) conn_.close();
  out.bytes = offset;
  out.sha256 = sha.hex_digest();
  out.ended = Clock::now();
  return out;
}

// ---- StreamReader

StreamReader::StreamReader(Conn conn, ReadSpec spec)
    : conn_(std::move(conn)), spec_(std::move(spec)) {
  std::promise<StreamOutcome> result;
  future_ = result.get_future();
  thread_ = std::thread([this, result = std::move(result)]() mutable { result.set_value(run()); });
}

StreamReader::~StreamReader() {
  if (!wait(0ms)) conn_.abort();  // the test broke off before EOF: unblock the read
  thread_.join();
}

bool StreamReader::wait(std::chrono::milliseconds timeout) {
  return outcome_ || future_.wait_for(timeout) == std::future_status::ready;
}

const StreamOutcome& StreamReader::outcome() {
  if (!outcome_) outcome_ = future_.get();
  return *outcome_;
}

StreamOutcome StreamReader::run() {
  StreamOutcome out;
  Sha256 sha;
  std::vector<std::uint8_t> chunk(spec_.chunk);
  std::vector<std::uint8_t> expected(spec_.chunk);
  std::uint64_t offset = 0;
  for (;;) {
    error_code ec;
    const std::size_t n = conn_.read_some(asio::buffer(chunk), ec);
    if (n > 0) {
      sha.update({chunk.data(), n});
      if (!out.first_mismatch) {
        fill_pattern(spec_.seed, offset, {expected.data(), n});
        const auto diff = std::mismatch(chunk.begin(), chunk.begin() + n, expected.begin());
        if (diff.first != chunk.begin() + n)
          out.first_mismatch = offset + (diff.first - chunk.begin());
      }
      offset += n;
      progress_ = offset;
      if (spec_.after_read) spec_.after_read(offset);
    }
    if (ec == asio::error::eof) {
      out.eof = true;
      break;
    }
    if (ec) {
      out.error = ec;
      break;
    }
    if (n == 0) {  // read_some must block until a byte, EOF or an error: never 0 and no error
      out.error = std::make_error_code(std::errc::protocol_error);
      break;
    }
  }
  out.bytes = offset;
  out.sha256 = sha.hex_digest();
  out.ended = Clock::now();
  return out;
}

void expect_same_stream(const StreamOutcome& written, const StreamOutcome& read) {
  EXPECT_FALSE(written.error) << "writer failed: " << written.error.message();
  EXPECT_FALSE(read.error) << "reader failed: " << read.error.message();
  EXPECT_TRUE(read.eof) << "reader did not end with EOF";
  EXPECT_EQ(read.bytes, written.bytes);
  EXPECT_FALSE(read.first_mismatch.has_value())
      << "first corrupted byte at offset " << read.first_mismatch.value_or(0);
  EXPECT_EQ(read.sha256, written.sha256);
}

void finish_transfer(StreamWriter& writer, StreamReader& reader,
                     std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ASSERT_TRUE(writer.wait(timeout)) << "writer stuck at " << writer.progress() << " bytes";
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  ASSERT_TRUE(reader.wait(std::max(left, 0ms)))
      << "reader stuck at " << reader.progress() << " of " << writer.progress() << " bytes";
  expect_same_stream(writer.outcome(), reader.outcome());
}

BothEndsStats transfer_both_ways(Conn& client, Conn& server, WriteSpec up, WriteSpec down,
                                 std::chrono::milliseconds timeout) {
  down.close_when_done = false;
  StreamWriter upload(client, up);
  StreamReader reader(server, {.seed = up.seed});
  StreamWriter download(server, down);
  StreamReader download_reader(client, {.seed = down.seed});
  finish_transfer(upload, reader, timeout);
  BothEndsStats stats;
  if (!download.wait(timeout)) {
    ADD_FAILURE() << "download writer stuck at " << download.progress() << " bytes";
    return stats;
  }
  stats.client = client.stats();
  stats.server = server.stats();
  server.close();
  finish_transfer(download, download_reader, timeout);
  return stats;
}

// ---- MigrationLog

void MigrationLog::attach(Conn& conn) {
  conn.on_migrate([mu = mu_, entries = entries_](PathId from, PathId to, MigrateCause cause) {
    std::lock_guard lock(*mu);
    entries->push_back({from, to, cause, Clock::now()});
  });
}

std::vector<MigrationLog::Entry> MigrationLog::entries() const {
  std::lock_guard lock(*mu_);
  return *entries_;
}

std::size_t MigrationLog::count(MigrateCause cause) const {
  std::lock_guard lock(*mu_);
  return std::count_if(entries_->begin(), entries_->end(),
                       [cause](const Entry& e) { return e.cause == cause; });
}

// ---- path helpers

std::string describe(const ConnStats& stats) {
  std::string out = "flow " + stats.state + ", active path " + std::to_string(stats.active_path) +
                    ", " + std::to_string(stats.migrations) + " migrations";
  if (stats.last_down_path != kNoPath)
    out += ", last down: path " + std::to_string(stats.last_down_path) + " (" +
           stats.last_down_cause + ")";
  out += "\n";
  for (const auto& p : stats.paths) {
    out += "  path " + std::to_string(p.id) + " " + p.spec + ": " + p.state +
           (p.active ? " (active)" : "") + ", up " + std::to_string(p.up_count) + "x, down " +
           std::to_string(p.down_count) + "x, rtt " + std::to_string(p.rtt.count()) +
           " us, heard " + std::to_string(p.last_heard_age.count()) + " us ago, sent " +
           std::to_string(p.bytes_sent) + " B, rate " + std::to_string(p.delivery_rate) + " B/s" +
           (p.datagram ? ", mtu " + std::to_string(p.mtu) + " (ceiling " +
                             std::to_string(p.mtu_ceiling) + ")"
                       : std::string()) +
           "\n";
  }
  return out;
}

std::string describe(const MigrationLog& log) {
  std::string out;
  for (const auto& e : log.entries()) {
    out += "  " + std::to_string(e.from) + " -> " + std::to_string(e.to) + " (" +
           std::string(to_string(e.cause)) + ")\n";
  }
  return out;
}

std::size_t paths_up(const Conn& conn) {
  const auto stats = conn.stats();
  return std::count_if(stats.paths.begin(), stats.paths.end(),
                       [](const PathInfo& p) { return p.state == "up"; });
}

std::optional<PathInfo> path_info(const Conn& conn, PathId id) {
  for (const auto& p : conn.stats().paths) {
    if (p.id == id) return p;
  }
  return std::nullopt;
}

PathId path_via_port(const Conn& client, std::uint16_t port) {
  // Appended, not `":" + ...`: g++ 12 -O2 reports a false -Wrestrict on that.
  std::string suffix = ":";
  suffix += std::to_string(port);
  for (const auto& p : client.stats().paths) {
    // The spec ends with the port, or with the port and "?weight=N".
    const std::string address = p.spec.substr(0, p.spec.find('?'));
    if (address.size() >= suffix.size() &&
        address.compare(address.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return p.id;
    }
  }
  return kNoPath;
}

std::string loopback(std::uint16_t port) {
  std::string address = "127.0.0.1:";
  address += std::to_string(port);
  return address;
}

std::vector<PathSpec> loopback_paths(std::initializer_list<std::uint16_t> ports) {
  std::vector<PathSpec> paths;
  for (const auto port : ports)
    paths.push_back(PathSpec::parse("tcp://" + loopback(port)));
  return paths;
}

// ---- IntegrationTest

void IntegrationTest::TearDown() {
  listener_.close();
}

void IntegrationTest::listen(ListenOptions options) {
  options.engine = &server_engine_;
  error_code ec;
  listener_ = listen_tcp("127.0.0.1:0", options, ec);
  ASSERT_FALSE(ec) << "listen_tcp: " << ec.message();
}

Dialer IntegrationTest::dialer(std::vector<PathSpec> paths) {
  Dialer d;
  d.paths = std::move(paths);
  d.dial_timeout = scaled(5s);
  d.engine = &client_engine_;
  return d;
}

std::pair<Conn, Conn> IntegrationTest::connect(const Dialer& dialer) {
  auto accepted = listener_.async_accept(asio::use_future);
  error_code ec;
  Conn client = dialer.dial(ec);
  if (ec) {
    ADD_FAILURE() << "dial: " << ec.message();
    return {};
  }
  if (accepted.wait_for(scaled(5s)) != std::future_status::ready) {
    ADD_FAILURE() << "accept did not complete";
    return {};
  }
  try {
    return {client, accepted.get()};
  } catch (const system_error& e) {
    ADD_FAILURE() << "accept: " << e.what();
    return {};
  }
}

std::pair<Conn, Conn> IntegrationTest::connect_all_up(const Dialer& dialer, std::size_t paths) {
  auto conns = connect(dialer);
  if (conns.first.is_open()) {
    EXPECT_TRUE(wait_until([&] { return paths_up(conns.first) >= paths; }, scaled(5s)))
        << "only " << paths_up(conns.first) << " of " << paths << " paths came up";
  }
  return conns;
}

bool IntegrationTest::connect_all_paths(const Dialer& dialer, Conn& client, Conn& server) {
  std::tie(client, server) = connect_all_up(dialer, dialer.paths.size());
  return client.is_open() && server.is_open();
}

bool IntegrationTest::listen_and_connect(std::size_t paths, Conn& client, Conn& server) {
  listen();
  if (HasFatalFailure()) return false;
  const PathSpec to_listener = PathSpec::parse("tcp://" + loopback(listener_.port()));
  return connect_all_paths(dialer(std::vector<PathSpec>(paths, to_listener)), client, server);
}

// ---- RawPeer

RawPeer::RawPeer(std::uint16_t port) {
  socket_.connect({asio::ip::address_v4::loopback(), port});
  connected_at_ = Clock::now();
}

void RawPeer::send(std::span<const std::uint8_t> bytes) {
  error_code ec;  // the listener may already have closed on us; what it did is asserted
  asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
}

void RawPeer::send(const wire::Frame& frame) {
  send(encode_frame(frame));
}

bool open_and_prove(RawPeer& peer, wire::Open open, std::chrono::milliseconds timeout) {
  core::crypto::KeyPair keys;
  open.key_share = keys.public_key();
  peer.send(wire::Frame{0, open});
  Bytes received;
  wire::Frame answer;
  if (!peer.read_frame(received, answer, timeout)) return false;
  const auto* ack = std::get_if<wire::OpenAck>(&answer.body);
  std::array<wire::Byte, 32> shared{};
  if (ack == nullptr || ack->status != wire::Status::ok || !keys.agree(ack->key_share, shared))
    return false;
  const auto key = core::crypto::derive_flow_key(shared, {}, open.nonce, ack->nonce, open.flow_id);
  peer.send(wire::Frame{
      0, wire::Proof{core::crypto::open_proof(key, open.flow_id, open.nonce, ack->nonce)}});
  return true;
}

bool RawPeer::read_frame(Bytes& received, wire::Frame& frame, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::array<std::uint8_t, 4096> buffer{};
  for (;;) {
    if (!received.empty() && wire::decode(received, frame).error == wire::DecodeError::none)
      return true;
    if (Clock::now() >= deadline) return false;
    std::optional<error_code> result;
    std::size_t n = 0;
    socket_.async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t k) {
      result = ec;
      n = k;
    });
    io_.restart();
    io_.run_for(deadline - Clock::now());
    if (!result) {
      error_code ignored;
      socket_.cancel(ignored);
      io_.restart();
      io_.run();
      return false;
    }
    if (*result) return false;
    received.insert(received.end(), buffer.begin(), buffer.begin() + n);
  }
}

RawPeer::Ending RawPeer::read_until_closed(std::chrono::milliseconds timeout) {
  Ending end;
  std::array<std::uint8_t, 4096> buffer{};
  std::function<void()> read_more = [&] {
    socket_.async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t n) {
      end.received.insert(end.received.end(), buffer.begin(), buffer.begin() + n);
      if (ec == asio::error::operation_aborted) return;  // our own timeout
      if (ec) {
        end.closed = true;
        end.after = Clock::now() - connected_at_;
        return;
      }
      read_more();
    });
  };
  read_more();
  io_.restart();
  io_.run_for(timeout);
  if (!end.closed) {
    error_code ignored;
    socket_.close(ignored);
    io_.restart();
    io_.run();
  }
  return end;
}

Bytes encode_frame(const wire::Frame& frame) {
  Bytes bytes(wire::encoded_size(frame));
  bytes.resize(wire::encode(frame, bytes));
  return bytes;
}

std::vector<wire::Frame> decode_frames(std::span<const std::uint8_t> bytes) {
  std::vector<wire::Frame> frames;
  while (!bytes.empty()) {
    wire::Frame frame;
    const auto result = wire::decode(bytes, frame);
    if (result.error != wire::DecodeError::none) break;
    frames.push_back(std::move(frame));
    bytes = bytes.subspan(result.consumed);
  }
  return frames;
}

// ---- RecordingRelay

struct RecordingRelay::Link : std::enable_shared_from_this<Link> {
  Link(asio::io_context& io, std::shared_ptr<Bytes> record)
      : client(io), upstream(io), record(std::move(record)) {}

  void start(RecordingRelay& relay) {
    pump(relay, client, upstream, client_to_server, true);
    pump(relay, upstream, client, server_to_client, false);
  }

  void pump(RecordingRelay& relay, asio::ip::tcp::socket& from, asio::ip::tcp::socket& to,
            std::array<std::uint8_t, 64 * 1024>& buffer, bool recording) {
    from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &relay, &from, &to,
                                                &buffer, recording](error_code ec, std::size_t n) {
      if (ec) return self->close();
      if (recording) {
        std::lock_guard lock(relay.mu_);
        const std::size_t room = kRecordBytes - std::min(kRecordBytes, self->record->size());
        self->record->insert(self->record->end(), buffer.begin(),
                             buffer.begin() + std::min(room, n));
      }
      asio::async_write(to, asio::buffer(buffer.data(), n),
                        [self, &relay, &from, &to, &buffer, recording](error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->pump(relay, from, to, buffer, recording);
                        });
    });
  }

  // Either side ending ends both: the relay carries rendr paths, whose end is a path event.
  void close() {
    error_code ignored;
    client.close(ignored);
    upstream.close(ignored);
  }

  asio::ip::tcp::socket client;
  asio::ip::tcp::socket upstream;
  std::shared_ptr<Bytes> record;
  std::array<std::uint8_t, 64 * 1024> client_to_server{};
  std::array<std::uint8_t, 64 * 1024> server_to_client{};
};

RecordingRelay::RecordingRelay(std::uint16_t target_port)
    : target_(asio::ip::address_v4::loopback(), target_port) {
  const asio::ip::tcp::endpoint local(asio::ip::address_v4::loopback(), 0);
  acceptor_.open(local.protocol());
  acceptor_.bind(local);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
  accept_next();
  thread_ = std::thread([this] { io_.run(); });
}

RecordingRelay::~RecordingRelay() {
  // Closing everything cancels every operation, so run() returns once the handlers have run.
  asio::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
    std::lock_guard lock(mu_);
    for (auto& weak : links_) {
      if (auto link = weak.lock()) link->close();
    }
  });
  thread_.join();
}

std::vector<Bytes> RecordingRelay::recorded() const {
  std::lock_guard lock(mu_);
  std::vector<Bytes> out;
  for (const auto& record : records_)
    out.push_back(*record);
  return out;
}

void RecordingRelay::accept_next() {
  auto record = std::make_shared<Bytes>();
  auto link = std::make_shared<Link>(io_, record);
  acceptor_.async_accept(link->client, [this, link, record](error_code ec) {
    if (ec) return;  // closed
    {
      std::lock_guard lock(mu_);
      records_.push_back(record);
      links_.push_back(link);
    }
    link->upstream.async_connect(target_, [this, link](error_code ec) {
      if (ec) return link->close();
      // Without it, Nagle and delayed ACKs hold a lone PING for ~40 ms: a false dead path.
      link->client.set_option(asio::ip::tcp::no_delay(true), ec);
      link->upstream.set_option(asio::ip::tcp::no_delay(true), ec);
      link->start(*this);
    });
    accept_next();
  });
}

}  // namespace rendr::itest
