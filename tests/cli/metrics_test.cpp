// `rendr listen --metrics`: a real `rendr listen --echo` process scraped with curl while a flow
// from this test moves bytes, migrates and ends, and a garbage connection is refused. The page
// must be well-formed Prometheus text, and its numbers must follow the traffic.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "cli/cli_support.hpp"
#include "fleet/fleet_processes.hpp"
#include "rendr/rendr.hpp"
#include "support/fault_proxy.hpp"

namespace {

using namespace std::chrono_literals;
using rendr::fleet::ChildProcess;
using rendr::fleet::free_loopback_port;
using rendr::fleet::read_file;
using rendr::fleet::TempDir;

using rendr::cli_test::kSlowdown;
using rendr::cli_test::port_text;
using rendr::cli_test::wait_until;

struct Page {
  int status = 0;
  std::string headers;
  std::string body;
  std::map<std::string, double> samples;  // "name{labels}" as printed -> value
  std::string format_error;               // empty: well-formed
};

// Checks the exposition format line by line and collects the samples.
void parse(Page& page) {
  static const std::regex sample_line(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\S+)$)");
  static const std::regex type_line(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::set<std::string> typed;
  std::istringstream lines(page.body);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, m, type_line)) {
      typed.insert(m[1]);
      continue;
    }
    if (!std::regex_match(line, m, sample_line)) {
      page.format_error = "bad line: " + line;
      return;
    }
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!typed.count(family) && family.size() > std::strlen(suffix) && family.ends_with(suffix))
        family.resize(family.size() - std::strlen(suffix));
    if (!typed.count(family)) {
      page.format_error = "sample before its TYPE: " + line;
      return;
    }
    page.samples[std::string(m[1]) + std::string(m[2])] = std::stod(m[4]);
  }
}

// GET with curl, as Prometheus (or an operator) would.
Page scrape(const TempDir& dir, std::uint16_t port, const std::string& path = "/metrics") {
  const auto body = dir.path() / "body";
  const auto headers = dir.path() / "headers";
  const auto log = dir.path() / "curl.log";
  ChildProcess curl({"/usr/bin/curl", "-sS", "-o", body.string(), "-D", headers.string(), "-w",
                     "%{http_code}", "http://" + port_text(port) + path},
                    log);
  Page page;
  if (curl.wait_exit(20s * kSlowdown).value_or(-1) != 0) return page;
  page.status = std::stoi(read_file(log));
  page.headers = read_file(headers);
  page.body = read_file(body);
  parse(page);
  return page;
}

double value(const Page& page, const std::string& sample) {
  const auto it = page.samples.find(sample);
  return it == page.samples.end() ? -1 : it->second;
}

std::string echo(rendr::Conn& conn, std::size_t size) {
  const std::string sent(size, 'm');
  std::string back(size, '\0');
  std::error_code ec;
  asio::write(conn, asio::buffer(sent), ec);
  if (!ec) asio::read(conn, asio::buffer(back), ec);
  return ec ? ec.message() : back == sent ? "" : "echo differs";
}

TEST(MetricsTest, CurlScrapesNumbersThatFollowTheTraffic) {
  if (!std::filesystem::exists("/usr/bin/curl"))
    GTEST_SKIP() << "/usr/bin/curl is not installed (scripts/install-deps.sh)";
  TempDir dir;
  const std::uint16_t first = free_loopback_port();
  const std::uint16_t second = free_loopback_port();
  const std::uint16_t metrics = free_loopback_port();
  ChildProcess server({RENDR_CLI_PATH, "listen", "--tcp", port_text(first), "--tcp",
                       port_text(second), "--echo", "--metrics", port_text(metrics)},
                      dir.path() / "listen.log");
  ASSERT_TRUE(wait_until(
      [&] {
        return read_file(dir.path() / "listen.log").find("metrics on http://") != std::string::npos;
      },
      10s))
      << read_file(dir.path() / "listen.log");

  const Page idle = scrape(dir, metrics);
  ASSERT_EQ(idle.status, 200) << idle.headers;
  EXPECT_NE(idle.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  ASSERT_EQ(idle.format_error, "") << idle.body;
  EXPECT_EQ(value(idle, "rendr_flows"), 0);
  EXPECT_EQ(value(idle, R"(rendr_bytes_total{direction="received"})"), 0);
  EXPECT_EQ(value(idle, R"(rendr_refused_total{reason="malformed"})"), 0);
  EXPECT_EQ(value(idle, "rendr_path_rtt_seconds_count"), 0);
  EXPECT_EQ(scrape(dir, metrics, "/other").status, 404);

  // One flow over two paths: 1 MiB echoed, a planned migration, 64 KiB more.
  rendr::testing::FaultProxy a("127.0.0.1", "127.0.0.1", first);
  rendr::testing::FaultProxy b("127.0.0.1", "127.0.0.1", second);
  rendr::Engine engine(1);
  rendr::Dialer dialer;
  dialer.engine = &engine;
  dialer.paths = {rendr::PathSpec::parse("tcp://" + port_text(a.port())),
                  rendr::PathSpec::parse("tcp://" + port_text(b.port()))};
  rendr::Conn conn = dialer.dial();
  ASSERT_EQ(echo(conn, 1 << 20), "");
  ASSERT_TRUE(wait_until(
      [&] {
        return conn.stats().paths.size() == 2 && conn.stats().paths[0].state == "up" &&
               conn.stats().paths[1].state == "up";
      },
      10s));
  const rendr::PathId standby = conn.active_path() == conn.stats().paths[0].id
                                    ? conn.stats().paths[1].id
                                    : conn.stats().paths[0].id;
  ASSERT_FALSE(conn.migrate(standby));
  ASSERT_EQ(echo(conn, 64 << 10), "");

  // A connection that speaks no rendr is refused and counted.
  {
    asio::io_context io;
    asio::ip::tcp::socket garbage(io);
    garbage.connect({asio::ip::make_address("127.0.0.1"), first});
    // A whole frame of an unknown type, so the listener can judge it at once.
    const unsigned char frame[] = {0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37};
    asio::write(garbage, asio::buffer(frame));
    std::string rest;
    std::error_code ec;
    asio::read(garbage, asio::dynamic_buffer(rest), ec);  // the listener closes it
  }

  Page busy;
  ASSERT_TRUE(wait_until(
      [&] {
        busy = scrape(dir, metrics);
        return value(busy, "rendr_path_rtt_seconds_count") > 0 &&
               value(busy, R"(rendr_migrations_total{cause="follow"})") >= 1 &&
               value(busy, R"(rendr_refused_total{reason="malformed"})") == 1;
      },
      15s))
      << busy.body;
  ASSERT_EQ(busy.format_error, "") << busy.body;
  EXPECT_EQ(value(busy, "rendr_flows"), 1);
  EXPECT_EQ(value(busy, "rendr_flows_started_total"), 1);
  EXPECT_EQ(value(busy, R"(rendr_paths{state="up",transport="tcp"})"), 2) << busy.body;
  const double received = value(busy, R"(rendr_bytes_total{direction="received"})");
  EXPECT_EQ(received, (1 << 20) + (64 << 10));
  EXPECT_EQ(value(busy, R"(rendr_bytes_total{direction="sent"})"), received);
  EXPECT_GT(value(busy, R"(rendr_path_rtt_seconds_bucket{le="+Inf"})"), 0);
  EXPECT_EQ(value(busy, R"(rendr_path_rtt_seconds_bucket{le="+Inf"})"),
            value(busy, "rendr_path_rtt_seconds_count"));
  EXPECT_EQ(value(busy, "rendr_listener_flows_opened_total"), 1);
  EXPECT_GE(value(busy, "rendr_listener_joins_total"), 1);

  // The flow ends: the gauge drops, the counters keep what it did.
  conn.close();
  char byte;
  std::error_code ec;
  conn.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  Page after;
  ASSERT_TRUE(wait_until(
      [&] {
        after = scrape(dir, metrics);
        return value(after, "rendr_flows") == 0;
      },
      10s))
      << after.body;
  EXPECT_EQ(value(after, R"(rendr_flows_ended_total{result="closed"})"), 1) << after.body;
  EXPECT_EQ(value(after, R"(rendr_bytes_total{direction="received"})"), received);
  EXPECT_GE(value(after, R"(rendr_migrations_total{cause="follow"})"), 1);
  EXPECT_EQ(value(after, R"(rendr_paths{state="up",transport="tcp"})"), -1);  // no path left
}

}  // namespace
