// The fleet contract (docs/operations.md): an L4 balancer that hashes the FlowId at bytes 5..20
// of a connection's first frame (OPEN or JOIN) sends every path of a flow to the same listener.
// Three `rendr listen --echo --log-json` processes sit behind two HAProxy instances, one per
// path, configured as the recipe says; the client is the C++ API with one path through each
// balancer. Skips when haproxy is not installed.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "fleet_processes.hpp"
#include "rendr/rendr.hpp"

namespace rendr::fleet {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr auto kStartup = 10s;  // a process to listen
constexpr auto kSettle = 5s;    // a path to come up, a log line to appear
constexpr auto kBudget = 10s;   // the flows' migration budget: bounds every blocking read

template <class Predicate>
bool poll_until(Predicate&& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string haproxy_config(std::uint16_t frontend, const std::vector<std::uint16_t>& nodes) {
  std::string text =
      "global\n"
      "  maxconn 256\n"
      "  log stderr format raw local0 info\n"
      "defaults\n"
      "  mode tcp\n"
      "  log global\n"
      "  option tcplog\n"
      "  timeout connect 2s\n"
      "  timeout client 60s\n"
      "  timeout server 60s\n"
      "frontend path\n"
      "  bind 127.0.0.1:" +
      std::to_string(frontend) +
      "\n"
      "  tcp-request inspect-delay 5s\n"
      "  tcp-request content set-var(sess.flow_id) req.payload(5,16) if { req.len ge 21 }\n"
      "  tcp-request content accept if { req.len ge 21 }\n"
      "  default_backend fleet\n"
      "backend fleet\n"
      "  balance hash var(sess.flow_id)\n"
      "  hash-type consistent\n";
  for (std::size_t i = 0; i < nodes.size(); ++i)
    text +=
        "  server node" + std::to_string(i + 1) + " 127.0.0.1:" + std::to_string(nodes[i]) + "\n";
  return text;
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto haproxy = find_haproxy();
    if (!haproxy) GTEST_SKIP() << "haproxy is not installed (scripts/install-deps.sh installs it)";
    for (int i = 0; i < kNodes; ++i)
      start_node(i);
    if (HasFatalFailure()) return;
    for (int i = 0; i < 2; ++i)
      start_balancer(*haproxy, i);
  }

  void start_node(int i) {
    const auto log = dir_.path() / ("node" + std::to_string(i + 1) + ".log");
    nodes_.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{RENDR_CLI_PATH, "listen", "--echo", "--tcp", "127.0.0.1:0",
                                 "--budget-ms", "10000", "--log-json"},
        log));
    static const std::regex listening(R"re("event":"listening","address":"127\.0\.0\.1:(\d+)")re");
    std::smatch match;
    ASSERT_TRUE(poll_until(
        [&] {
          const std::string text = read_file(log);
          return std::regex_search(text, match, listening);
        },
        kStartup))
        << "node " << i + 1 << " did not listen:\n"
        << read_file(log);
    node_ports_.push_back(std::uint16_t(std::stoi(match[1].str())));
  }

  void start_balancer(const std::filesystem::path& haproxy, int i) {
    const std::uint16_t port = free_loopback_port();
    const auto config = dir_.path() / ("haproxy" + std::to_string(i + 1) + ".cfg");
    std::ofstream(config) << haproxy_config(port, node_ports_);
    balancers_.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{haproxy.string(), "-db", "-f", config.string()},
        dir_.path() / ("haproxy" + std::to_string(i + 1) + ".log")));
    balancer_ports_.push_back(port);
    ASSERT_TRUE(wait_listening(port, kStartup))
        << "haproxy " << i + 1 << " did not listen on " << port << ":\n"
        << read_file(balancers_.back()->log());
  }

  Conn dial_through_both_balancers() { return dial_through(balancer_ports_); }

  Conn dial_through(const std::vector<std::uint16_t>& balancer_ports) {
    Dialer dialer;
    dialer.engine = &engine_;
    dialer.migration_budget = kBudget;
    dialer.dial_timeout = kSettle;
    for (const std::uint16_t port : balancer_ports)
      dialer.paths.push_back(PathSpec::parse("tcp://127.0.0.1:" + std::to_string(port)));
    std::error_code ec;
    Conn conn = dialer.dial(ec);
    EXPECT_FALSE(ec) << "dial: " << ec.message();
    return conn;
  }

  static bool both_paths_up(const Conn& conn) {
    const ConnStats stats = conn.stats();
    return std::count_if(stats.paths.begin(), stats.paths.end(),
                         [](const PathInfo& p) { return p.state == "up"; }) == 2;
  }

  // The nodes whose log names `flow` in an event (1-based), e.g. "flow_accepted".
  std::vector<int> nodes_logging(const std::string& event, const std::string& flow) const {
    std::vector<int> found;
    const std::string needle = "\"event\":\"" + event + "\",\"flow\":\"" + flow + "\"";
    for (int i = 0; i < kNodes; ++i)
      if (read_file(nodes_[i]->log()).find(needle) != std::string::npos) found.push_back(i + 1);
    return found;
  }

  // joins_accepted of `flow`'s flow_ended line on node `node` (1-based), or -1.
  int joins_accepted(int node, const std::string& flow) const {
    const std::regex ended("\"event\":\"flow_ended\",\"flow\":\"" + flow +
                           "\"[^\\n]*\"joins_accepted\":(\\d+)");
    const std::string text = read_file(nodes_[node - 1]->log());
    std::smatch match;
    return std::regex_search(text, match, ended) ? std::stoi(match[1].str()) : -1;
  }

  std::string logs() const {
    std::string text;
    for (int i = 0; i < kNodes; ++i)
      text += "--- node " + std::to_string(i + 1) + ":\n" + read_file(nodes_[i]->log());
    for (std::size_t i = 0; i < balancers_.size(); ++i)
      text += "--- haproxy " + std::to_string(i + 1) + ":\n" + read_file(balancers_[i]->log());
    return text;
  }

  // Members are destroyed in reverse: the engine (whose destructor lets closing flows finish)
  // before the processes, the processes before their directory.
  TempDir dir_;
  std::vector<std::unique_ptr<ChildProcess>> nodes_;
  std::vector<std::uint16_t> node_ports_;
  std::vector<std::unique_ptr<ChildProcess>> balancers_;
  std::vector<std::uint16_t> balancer_ports_;
  Engine engine_{1};
};

// Sends `text`, reads its echo, closes and reads the echo server's EOF.
void echo_and_close(Conn& conn, const std::string& text) {
  std::error_code ec;
  asio::write(conn, asio::buffer(text), ec);
  ASSERT_FALSE(ec) << "write: " << ec.message();
  std::string echoed(text.size(), '\0');
  asio::read(conn, asio::buffer(echoed), ec);
  ASSERT_FALSE(ec) << "read: " << ec.message();
  EXPECT_EQ(echoed, text);
  conn.close();
  std::array<char, 16> rest{};
  EXPECT_EQ(conn.read_some(asio::buffer(rest), ec), 0u);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(FleetTest, BothPathsOfEveryFlowLandOnOneNode) {
  // Flows until two nodes have been used (so the routing was not trivially to one node), at
  // least kMinFlows of them.
  constexpr int kMinFlows = 6;
  constexpr int kMaxFlows = 24;
  std::set<int> nodes_used;
  int flows = 0;
  for (; flows < kMaxFlows && (flows < kMinFlows || nodes_used.size() < 2); ++flows) {
    SCOPED_TRACE("flow " + std::to_string(flows));
    // Other flows through one balancer only must not matter. They also keep the balancers'
    // states apart: two round-robin balancers in step would pair the paths by accident (which
    // is what `balance hash req.payload(5,16)` silently falls back to on HAProxy 2.6).
    if (flows % 2 == 1) {
      Conn other = dial_through({balancer_ports_[0]});
      ASSERT_TRUE(other.is_open());
      echo_and_close(other, "one path only\n");
    }
    Conn conn = dial_through_both_balancers();
    ASSERT_TRUE(conn.is_open());
    const std::string flow = to_hex(conn.flow_id());
    // Only the node holding the flow accepts its JOIN: the others refuse it (unknown flow), and
    // the client would re-dial until a balancer happened to pick the right node.
    ASSERT_TRUE(poll_until([&] { return both_paths_up(conn); }, kSettle))
        << "the second path of flow " << flow << " never came up\n"
        << logs();
    const ConnStats stats = conn.stats();
    EXPECT_EQ(stats.joins_rejected, 0u) << "a JOIN went to a node without the flow";
    for (const PathInfo& path : stats.paths)
      EXPECT_EQ(path.down_count, 0u) << "path " << path.id << " needed another dial";

    echo_and_close(conn, "flow " + std::to_string(flows) + " says hello\n");

    ASSERT_TRUE(poll_until([&] { return !nodes_logging("flow_ended", flow).empty(); }, kSettle))
        << logs();
    const std::vector<int> holders = nodes_logging("flow_accepted", flow);
    ASSERT_EQ(holders.size(), 1u) << "flow " << flow << " was opened on several nodes\n" << logs();
    EXPECT_EQ(nodes_logging("flow_ended", flow), holders);
    EXPECT_EQ(joins_accepted(holders[0], flow), 1) << logs();
    nodes_used.insert(holders[0]);
  }
  EXPECT_GE(nodes_used.size(), 2u) << flows << " flows all went to one node\n" << logs();
}

TEST_F(FleetTest, FlowSurvivesLosingTheBalancerOfItsActivePath) {
  Conn conn = dial_through_both_balancers();
  ASSERT_TRUE(conn.is_open());
  const std::string flow = to_hex(conn.flow_id());
  ASSERT_TRUE(poll_until([&] { return both_paths_up(conn); }, kSettle)) << logs();
  std::atomic<std::uint64_t> deaths{0};
  conn.on_migrate([&](PathId, PathId, MigrateCause cause) {
    if (cause == MigrateCause::death) ++deaths;
  });

  // Lines keep flowing (one every 2 ms) while the balancer carrying the active path is killed.
  constexpr int kLines = 400;
  constexpr int kKillAfter = 100;  // lines echoed
  auto line = [](int i) {
    char text[32];
    std::snprintf(text, sizeof text, "line %04d\n", i);
    return std::string(text);
  };
  std::string expected;
  for (int i = 0; i < kLines; ++i)
    expected += line(i);
  std::error_code write_error;
  std::thread writer([&] {
    for (int i = 0; i < kLines && !write_error; ++i) {
      asio::write(conn, asio::buffer(line(i)), write_error);
      std::this_thread::sleep_for(2ms);  // pacing, not synchronisation
    }
    conn.close();
  });

  const std::size_t kill_at = std::size_t(kKillAfter) * line(0).size();
  const PathId active = conn.active_path();
  std::size_t victim = balancers_.size();
  for (const PathInfo& p : conn.stats().paths) {
    if (p.id != active) continue;
    std::error_code ec;
    const PathSpec spec = PathSpec::parse(p.spec, ec);
    for (std::size_t b = 0; b < balancer_ports_.size(); ++b)
      if (!ec && spec.port == balancer_ports_[b]) victim = b;
  }
  std::string echoed;
  std::error_code read_error;
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = conn.read_some(asio::buffer(buffer), read_error);
    echoed.append(buffer.data(), n);
    if (read_error) break;
    if (victim < balancers_.size() && echoed.size() >= kill_at && balancers_[victim]->running())
      balancers_[victim]->kill();
  }
  writer.join();

  EXPECT_EQ(read_error, asio::error::eof) << read_error.message();
  EXPECT_FALSE(write_error) << write_error.message();
  ASSERT_LT(victim, balancers_.size()) << "the active path's balancer was not found";
  EXPECT_FALSE(balancers_[victim]->running());
  EXPECT_EQ(echoed, expected) << "echoed lines lost or out of order";
  EXPECT_GE(deaths.load(), 1u) << "the active path never died";
  EXPECT_NE(conn.active_path(), active);

  // The flow stayed on the node that opened it: no other node ever saw it.
  ASSERT_TRUE(poll_until([&] { return !nodes_logging("flow_ended", flow).empty(); }, kSettle))
      << logs();
  const std::vector<int> holders = nodes_logging("flow_accepted", flow);
  ASSERT_EQ(holders.size(), 1u) << logs();
  EXPECT_EQ(nodes_logging("flow_ended", flow), holders);
  conn.on_migrate(nullptr);
}

}  // namespace
}  // namespace rendr::fleet
