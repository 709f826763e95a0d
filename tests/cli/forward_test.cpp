// `rendr forward` and `rendr listen --forward` end to end: two real `rendr` processes with two
// paths between them through fault proxies, carrying real programs from Debian (OpenSSH, curl
// against python3's http.server) while the active path dies, plus the nc-like rules (half-close
// passes through, an unreachable target resets the local connection).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "cli/cli_support.hpp"
#include "fleet/fleet_processes.hpp"
#include "support/fault_proxy.hpp"

namespace {

using namespace std::chrono_literals;
using rendr::fleet::ChildProcess;
using rendr::fleet::free_loopback_port;
using rendr::fleet::read_file;
using rendr::fleet::TempDir;
using rendr::testing::FaultMode;
using rendr::testing::FaultProxy;

const std::string kRendr = RENDR_CLI_PATH;

using rendr::cli_test::kSlowdown;
using rendr::cli_test::port_text;
using rendr::cli_test::wait_until;

bool log_has(const std::filesystem::path& log, const std::string& text) {
  return read_file(log).find(text) != std::string::npos;
}

std::uintmax_t file_size_or_zero(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// Runs a program to its end (bounded); its exit status, or -1 if it had to be killed.
int run_to_end(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  ChildProcess child(argv, log);
  return child.wait_exit(30s * kSlowdown).value_or(-1);
}

// client --forward--> proxy A / proxy B --> rendr listen --forward--> target port.
class ForwardRig {
 public:
  ForwardRig(const TempDir& dir, std::uint16_t target_port) : dir_(dir) {
    const std::uint16_t first = free_loopback_port();
    const std::uint16_t second = free_loopback_port();
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kRendr, "listen", "--tcp", port_text(first), "--tcp",
                                 port_text(second), "--forward", port_text(target_port)},
        dir.path() / "listen.log");
    EXPECT_TRUE(
        wait_until([&] { return log_has(dir.path() / "listen.log", port_text(second)); }, 10s))
        << read_file(dir.path() / "listen.log");
    proxies_[0] = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", first);
    proxies_[1] = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", second);
    local_port_ = free_loopback_port();
    client_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kRendr, "forward", "--listen", port_text(local_port_), "--path",
                                 "tcp://" + port_text(proxies_[0]->port()), "--path",
                                 "tcp://" + port_text(proxies_[1]->port())},
        dir.path() / "forward.log");
    EXPECT_TRUE(
        wait_until([&] { return log_has(dir.path() / "forward.log", "listening on"); }, 10s))
        << read_file(dir.path() / "forward.log");
  }

  std::uint16_t local_port() const { return local_port_; }
  FaultProxy& proxy(std::size_t i) { return *proxies_[i]; }
  std::string logs() const {
    return "--- rendr forward:\n" + read_file(dir_.path() / "forward.log") + "--- rendr listen:\n" +
           read_file(dir_.path() / "listen.log");
  }

  // Blackholes the path carrying the traffic (the one that forwarded more) and returns its index.
  std::size_t kill_active_path() {
    const std::size_t active =
        proxies_[0]->bytes_forwarded() >= proxies_[1]->bytes_forwarded() ? 0 : 1;
    proxies_[active]->set_mode(FaultMode::blackhole);
    return active;
  }

 private:
  const TempDir& dir_;
  std::unique_ptr<ChildProcess> server_;
  std::unique_ptr<FaultProxy> proxies_[2];
  std::unique_ptr<ChildProcess> client_;
  std::uint16_t local_port_ = 0;
};

// While `program` runs: once the busier path has carried `kill_at` bytes, blackholes it. Then
// waits for the program's end and checks the other path carried the rest. Counting bytes at the
// path, not the program's progress: a slow reader leaves megabytes buffered downstream (the
// flow's window, socket buffers), so its progress says little about what has crossed the path.
void kill_a_path_while_running(ForwardRig& rig, ChildProcess& program, std::uintmax_t kill_at,
                               std::uintmax_t total, std::optional<int>& status) {
  const auto busiest = [&] {
    return std::max(rig.proxy(0).bytes_forwarded(), rig.proxy(1).bytes_forwarded());
  };
  ASSERT_TRUE(wait_until([&] { return busiest() >= kill_at; }, 30s))
      << "a path carried " << busiest() << " of " << total << " bytes\n"
      << rig.logs();
  const std::size_t dead = rig.kill_active_path();
  const std::uint64_t dead_at_kill = rig.proxy(dead).bytes_forwarded();
  const std::uint64_t survivor_before = rig.proxy(1 - dead).bytes_forwarded();
  status = program.wait_exit(60s * kSlowdown);
  ASSERT_TRUE(status.has_value()) << "still running\n" << rig.logs();
  ASSERT_LT(dead_at_kill, total) << "the path died after it had carried everything";
  // What had not crossed the dead path had to cross the other one (the dead path's count
  // includes a little upstream traffic and framing, hence the margin).
  EXPECT_GT(rig.proxy(1 - dead).bytes_forwarded() - survivor_before, (total - dead_at_kill) / 2)
      << rig.logs();
}

// The reason to skip if one of `programs` is not installed.
std::optional<std::string> missing_program(const std::vector<std::filesystem::path>& programs) {
  for (const auto& program : programs)
    if (::access(program.c_str(), X_OK) != 0)
      return program.string() + " is not installed (scripts/install-deps.sh)";
  return std::nullopt;
}

// ---- OpenSSH

struct SshServer {
  std::unique_ptr<ChildProcess> process;
  std::uint16_t port = 0;
  std::string skip_reason;  // non-empty: sshd cannot run here
};

SshServer start_sshd(const TempDir& dir) {
  SshServer sshd;
  const std::filesystem::path binary = "/usr/sbin/sshd";
  if (const auto missing = missing_program({binary, "/usr/bin/ssh", "/usr/bin/ssh-keygen"})) {
    sshd.skip_reason = *missing;
    return sshd;
  }
  // As root, sshd wants its privilege separation directory, which the Debian service creates at
  // boot; as another user it runs without one.
  if (::geteuid() == 0) {
    std::error_code ec;
    std::filesystem::create_directories("/run/sshd", ec);
    if (ec) {
      sshd.skip_reason = "cannot create /run/sshd: " + ec.message();
      return sshd;
    }
  }
  const auto& d = dir.path();
  for (const char* key : {"host_key", "client_key"}) {
    if (run_to_end({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / key},
                   d / "keygen.log") != 0) {
      sshd.skip_reason = "ssh-keygen failed: " + read_file(d / "keygen.log");
      return sshd;
    }
  }
  std::filesystem::copy_file(d / "client_key.pub", d / "authorized_keys");
  sshd.port = free_loopback_port();
  std::ofstream(d / "sshd_config") << "Port " << sshd.port << "\nListenAddress 127.0.0.1\n"
                                   << "HostKey " << (d / "host_key").string() << "\n"
                                   << "AuthorizedKeysFile " << (d / "authorized_keys").string()
                                   << "\nPidFile none\nStrictModes no\nUsePAM no\n"
                                   << "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                   << "PermitRootLogin prohibit-password\n";
  sshd.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary, "-D", "-e", "-f", d / "sshd_config"}, d / "sshd.log");
  if (!wait_until([&] { return log_has(d / "sshd.log", "Server listening"); }, 10s))
    sshd.skip_reason = "sshd did not start: " + read_file(d / "sshd.log");
  return sshd;
}

// `seq` lines the remote command prints: 60 batches of 1000 numbers, 0.1 s apart (~6 s).
constexpr int kSshBatches = 60;
std::string ssh_command() {
  return "for i in $(seq 1 " + std::to_string(kSshBatches) +
         "); do seq $((i * 1000)) $((i * 1000 + 999)); sleep 0.1; done";
}
std::string ssh_expected() {
  std::string out;
  for (int i = 1; i <= kSshBatches; ++i)
    for (int n = i * 1000; n <= i * 1000 + 999; ++n)
      out += std::to_string(n) + "\n";
  return out;
}

TEST(ForwardTest, SshSessionSurvivesThePathDeath) {
  TempDir dir;
  SshServer sshd = start_sshd(dir);
  if (!sshd.skip_reason.empty()) GTEST_SKIP() << sshd.skip_reason;
  ForwardRig rig(dir, sshd.port);
  const auto out = dir.path() / "ssh.out";
  const auto err = dir.path() / "ssh.err";
  // ssh as a user would run it, pointed at the local end of `rendr forward`.
  ChildProcess ssh({"/bin/sh", "-c",
                    "exec /usr/bin/ssh -F /dev/null -i '" + (dir.path() / "client_key").string() +
                        "' -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                        "-o BatchMode=yes -o LogLevel=ERROR -p " +
                        std::to_string(rig.local_port()) + " 127.0.0.1 '" + ssh_command() +
                        "' > '" + out.string() + "' 2> '" + err.string() + "'"},
                   dir.path() / "ssh.log");
  const std::string expected = ssh_expected();
  std::optional<int> status;
  kill_a_path_while_running(rig, ssh, expected.size() / 4, expected.size(), status);
  if (HasFatalFailure()) return;
  EXPECT_EQ(*status, 0) << read_file(err) << rig.logs();
  EXPECT_TRUE(read_file(out) == expected)
      << "ssh output differs (" << file_size_or_zero(out) << " of " << expected.size() << " bytes)";
}

// ---- curl and python3 -m http.server

TEST(ForwardTest, CurlDownloadSurvivesThePathDeath) {
  if (const auto missing = missing_program({"/usr/bin/curl", "/usr/bin/python3"}))
    GTEST_SKIP() << *missing;
  TempDir dir;
  const auto site = dir.path() / "site";
  std::filesystem::create_directory(site);
  constexpr std::size_t kSize = 24 * 1024 * 1024;
  {
    std::mt19937_64 random(12);
    std::vector<std::uint64_t> words(kSize / 8);
    for (auto& w : words)
      w = random();
    std::ofstream(site / "big.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(words.data()), kSize);
  }
  const std::uint16_t http_port = free_loopback_port();
  ChildProcess http({"/usr/bin/python3", "-m", "http.server", std::to_string(http_port), "--bind",
                     "127.0.0.1", "--directory", site.string()},
                    dir.path() / "http.log");
  ASSERT_TRUE(rendr::fleet::wait_listening(http_port, 10s * kSlowdown))
      << read_file(dir.path() / "http.log");
  ForwardRig rig(dir, http_port);
  const auto out = dir.path() / "big.out";
  // 6 MB/s: the download lasts ~4 s, long enough to lose a path in the middle.
  ChildProcess curl({"/usr/bin/curl", "-sS", "--fail", "--limit-rate", "6M", "-o", out.string(),
                     "http://" + port_text(rig.local_port()) + "/big.bin"},
                    dir.path() / "curl.log");
  std::optional<int> status;
  kill_a_path_while_running(rig, curl, kSize / 4, kSize, status);
  if (HasFatalFailure()) return;
  EXPECT_EQ(*status, 0) << read_file(dir.path() / "curl.log") << rig.logs();
  EXPECT_TRUE(read_file(out) == read_file(site / "big.bin"))
      << "download differs (" << file_size_or_zero(out) << " of " << kSize << " bytes)";
}

// ---- nc's rules

// A target that reads everything to EOF, then answers with the byte count and closes.
class CountingTarget {
 public:
  CountingTarget() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      std::error_code ec;
      asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      std::vector<char> data(64 * 1024);
      std::size_t total = 0;
      for (;;) {
        const std::size_t n = socket.read_some(asio::buffer(data), ec);
        if (ec) break;
        total += n;
      }
      eof_seen_ = ec == asio::error::eof;
      asio::write(socket, asio::buffer("got " + std::to_string(total)), ec);
      socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    });
  }
  ~CountingTarget() {
    acceptor_.close();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  bool eof_seen() const { return eof_seen_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> eof_seen_{false};
  std::thread thread_;
};

TEST(ForwardTest, HalfCloseTravelsBothWays) {
  TempDir dir;
  auto target = std::make_unique<CountingTarget>();
  ForwardRig rig(dir, target->port());
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), rig.local_port()});
  const std::string request(300'000, 'r');
  asio::write(socket, asio::buffer(request));
  socket.shutdown(asio::ip::tcp::socket::shutdown_send);  // the target must see EOF...
  std::string reply;
  std::error_code ec;
  asio::read(socket, asio::dynamic_buffer(reply), ec);  // ...and answer: we read to its EOF
  EXPECT_EQ(ec, asio::error::eof) << rig.logs();
  EXPECT_EQ(reply, "got 300000");
  target.reset();
  EXPECT_TRUE(wait_until([&] { return log_has(dir.path() / "forward.log", "closed"); }, 10s))
      << rig.logs();
}

TEST(ForwardTest, UnreachableTargetResetsTheLocalConnection) {
  TempDir dir;
  ForwardRig rig(dir, free_loopback_port());  // nothing listens there
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), rig.local_port()});
  char byte = 0;
  std::error_code ec;
  socket.read_some(asio::buffer(&byte, 1), ec);  // bounded: the flow is aborted at once
  EXPECT_EQ(ec, asio::error::connection_reset) << rig.logs();
  EXPECT_TRUE(log_has(dir.path() / "listen.log", "cannot connect to")) << rig.logs();
}

}  // namespace
