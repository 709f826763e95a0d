#pragma once
// Shared helpers of the integration tests: deterministic payloads, SHA-256, bounded waits,
// writer/reader threads over a rendr::Conn, a connected client/server pair over loopback, a
// recording TCP relay and a raw wire-protocol peer for hostile input.
//
// Every wait is bounded (a deadline and a short poll, or the API's own completion); deadlines
// stretch under sanitizers, the behaviour asserted does not.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "rendr/rendr.hpp"
#include "wire/frame.hpp"

namespace rendr::itest {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;

#ifdef RENDR_SANITIZED
inline constexpr int kSlowdown = 3;
#else
inline constexpr int kSlowdown = 1;
#endif

// A deadline for "should happen": generous, only reached when something is broken.
constexpr std::chrono::milliseconds scaled(std::chrono::milliseconds d) {
  return d * kSlowdown;
}

// Polls `done` until it holds or `timeout` passes; returns its final value.
template <class Predicate>
bool wait_until(Predicate&& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = 2ms) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

// Byte i of stream `seed` depends only on (seed, i), so a reader can check any offset.
void fill_pattern(std::uint64_t seed, std::uint64_t offset, std::span<std::uint8_t> out);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::uint8_t> bytes);
  std::string hex_digest();  // finalises

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// What one direction of a transfer saw.
struct StreamOutcome {
  std::uint64_t bytes = 0;
  std::string sha256;                           // of every byte written / read
  error_code error;                             // the call that ended the stream, if it failed
  bool eof = false;                             // reader: asio::error::eof seen
  std::optional<std::uint64_t> first_mismatch;  // reader: first offset off the pattern
  Clock::time_point ended{};
};

struct WriteSpec {
  std::uint64_t seed = 1;
  std::optional<std::uint64_t> bytes{};  // nullopt: until stop()
  std::size_t chunk = 256 * KiB;
  bool close_when_done = true;
  // Runs on the writer thread after each write_some with the total written so far.
  std::function<void(std::uint64_t written)> after_write{};
};

struct ReadSpec {
  std::uint64_t seed = 1;
  std::size_t chunk = 256 * KiB;
  // Runs on the reader thread after each read_some that returned bytes, with the total read.
  std::function<void(std::uint64_t read)> after_read{};
};

// A thread writing pattern bytes through blocking write_some, then (by default) close().
// If it is still running when destroyed, it is stopped, the conn aborted and the thread joined.
class StreamWriter {
 public:
  StreamWriter(Conn conn, WriteSpec spec);
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  void stop() { stop_ = true; }
  // True once the writer has finished (outcome() is then ready).
  bool wait(std::chrono::milliseconds timeout);
  std::uint64_t progress() const { return progress_; }
  const StreamOutcome& outcome();

 private:
  StreamOutcome run();
  Conn conn_;
  WriteSpec spec_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> progress_{0};
  std::future<StreamOutcome> future_;
  std::optional<StreamOutcome> outcome_;
  std::thread thread_;
};

// A thread reading through blocking read_some until EOF or an error, checking the pattern.
class StreamReader {
 public:
  StreamReader(Conn conn, ReadSpec spec);
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  bool wait(std::chrono::milliseconds timeout);
  std::uint64_t progress() const { return progress_; }
  const StreamOutcome& outcome();

 private:
  StreamOutcome run();
  Conn conn_;
  ReadSpec spec_;
  std::atomic<std::uint64_t> progress_{0};
  std::future<StreamOutcome> future_;
  std::optional<StreamOutcome> outcome_;
  std::thread thread_;
};

// Both ends free of errors, the reader got EOF right after exactly the bytes written, intact.
void expect_same_stream(const StreamOutcome& written, const StreamOutcome& read);
// Waits (bounded) for both to finish, then expect_same_stream.
void finish_transfer(StreamWriter& writer, StreamReader& reader, std::chrono::milliseconds timeout);

// `up` from client to server and `down` back, each read whole and checked; both ends' stats are
// taken before the server closes (a flow closed both ways has no paths left to report).
struct BothEndsStats {
  ConnStats client;
  ConnStats server;
};
BothEndsStats transfer_both_ways(Conn& client, Conn& server, WriteSpec up, WriteSpec down,
                                 std::chrono::milliseconds timeout);

// Every change of the active path reported by Conn::on_migrate.
class MigrationLog {
 public:
  struct Entry {
    PathId from;
    PathId to;
    MigrateCause cause;
    Clock::time_point at;
  };
  void attach(Conn& conn);
  std::vector<Entry> entries() const;
  std::size_t count(MigrateCause cause) const;

 private:
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<Entry>> entries_ = std::make_shared<std::vector<Entry>>();
};

// One line per path, for failure messages.
std::string describe(const ConnStats& stats);
std::string describe(const MigrationLog& log);

std::size_t paths_up(const Conn& conn);
std::optional<PathInfo> path_info(const Conn& conn, PathId id);
// The client path whose spec ends with ":<port>" (before an optional "?weight=N").
PathId path_via_port(const Conn& client, std::uint16_t port);
std::string loopback(std::uint16_t port);  // "127.0.0.1:<port>"
std::vector<PathSpec> loopback_paths(std::initializer_list<std::uint16_t> ports);

// Two engines (client, server) and a listener on 127.0.0.1:0. Declared before any Conn in a
// test body, so they outlive them.
class IntegrationTest : public ::testing::Test {
 protected:
  void TearDown() override;

  void listen(ListenOptions options = {});
  Dialer dialer(std::vector<PathSpec> paths);
  // Dials and accepts; both handles are empty (and a failure recorded) if that fails in time.
  std::pair<Conn, Conn> connect(const Dialer& dialer);
  // connect() and wait until `paths` paths are up on the client.
  std::pair<Conn, Conn> connect_all_up(const Dialer& dialer, std::size_t paths);
  // connect_all_up() with every path of `dialer`, into `client` and `server`; true when both
  // ends are open, for the test to ASSERT on (a failure to connect is recorded already).
  // Out-parameters rather than a pair for structured bindings: clang before 16 cannot capture
  // those in the tests' lambdas.
  [[nodiscard]] bool connect_all_paths(const Dialer& dialer, Conn& client, Conn& server);
  // listen() with default options, then connect_all_paths() over `paths` paths straight to it.
  [[nodiscard]] bool listen_and_connect(std::size_t paths, Conn& client, Conn& server);

  Engine server_engine_{1};
  Engine client_engine_{1};
  Listener listener_;
};

// A bare TCP connection to a listener, speaking (or breaking) the wire protocol by hand.
class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port);
  void send(std::span<const std::uint8_t> bytes);
  void send(const wire::Frame& frame);

  struct Ending {
    Bytes received;
    bool closed = false;  // the listener closed it (EOF or reset) before the timeout
    Clock::duration after{};
  };
  // Reads until the listener closes the connection or `timeout` passes.
  Ending read_until_closed(std::chrono::milliseconds timeout);
  // Reads into `received` until it begins with one whole frame (decoded into `frame`, which may
  // point into `received`); false if the connection ends or `timeout` passes first.
  bool read_frame(Bytes& received, wire::Frame& frame, std::chrono::milliseconds timeout);

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
  Clock::time_point connected_at_;
};

// The client's half of the opening handshake on `peer`, without a PSK: sends `open` (its key
// share replaced by a fresh one), then the PROOF over the listener's OPEN_ACK. False if no
// OPEN_ACK came within `timeout`.
bool open_and_prove(RawPeer& peer, wire::Open open, std::chrono::milliseconds timeout);

Bytes encode_frame(const wire::Frame& frame);
// Decodes the frames at the front of `bytes` (stops at the first incomplete or bad one).
// DATA payloads point into `bytes`.
std::vector<wire::Frame> decode_frames(std::span<const std::uint8_t> bytes);

// A TCP relay to 127.0.0.1:target_port that records what each connection's client sent first,
// so a test can capture a genuine JOIN and replay it.
class RecordingRelay {
 public:
  static constexpr std::size_t kRecordBytes = 512;
  explicit RecordingRelay(std::uint16_t target_port);
  ~RecordingRelay();
  RecordingRelay(const RecordingRelay&) = delete;
  RecordingRelay& operator=(const RecordingRelay&) = delete;

  std::uint16_t port() const { return port_; }
  // The first bytes (up to kRecordBytes) each relayed connection carried client -> server.
  std::vector<Bytes> recorded() const;

 private:
  struct Link;
  void accept_next();
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_{io_};
  asio::ip::tcp::endpoint target_;
  std::uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Bytes>> records_;
  std::vector<std::weak_ptr<Link>> links_;
  std::thread thread_;
};

}  // namespace rendr::itest
