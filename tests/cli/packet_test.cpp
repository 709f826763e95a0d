// `rendr listen --packet`, `rendr dial --packet` and `rendr bench packet` as separate
// processes: stdin lines become messages and come back as the same lines (an empty line is a
// message too), and the bench's JSON line has every field of its contract with nothing lost or
// duplicated across planned migrations.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "fleet/fleet_processes.hpp"

namespace {

using namespace std::chrono_literals;
using rendr::cli_test::kSlowdown;
using rendr::cli_test::port_text;
using rendr::cli_test::wait_until;
using rendr::fleet::ChildProcess;
using rendr::fleet::free_loopback_port;
using rendr::fleet::read_file;
using rendr::fleet::TempDir;

const std::string kRendr = RENDR_CLI_PATH;

bool log_has(const std::filesystem::path& log, const std::string& text) {
  return read_file(log).find(text) != std::string::npos;
}

TEST(PacketCliTest, DialPacketLinesComeBackAsTheSameMessages) {
  TempDir dir;
  const std::uint16_t port = free_loopback_port();
  const auto listen_log = dir.path() / "listen.log";
  ChildProcess server({kRendr, "listen", "--udp", port_text(port), "--packet", "--echo"},
                      listen_log);
  ASSERT_TRUE(wait_until([&] { return log_has(listen_log, "listening on"); }, 10s))
      << read_file(listen_log);

  const auto out = dir.path() / "out.txt";
  const std::string dial = "printf 'alpha\\n\\nbeta gamma\\n' | '" + kRendr +
                           "' dial --packet --path udpflow://" + port_text(port) + " > '" +
                           out.string() + "'";
  ChildProcess client({"/bin/sh", "-c", dial}, dir.path() / "dial.log");
  ASSERT_EQ(client.wait_exit(30s * kSlowdown), std::optional<int>(0))
      << read_file(dir.path() / "dial.log");
  // Three messages (the empty line is one), none merged or split: the same three lines.
  EXPECT_EQ(read_file(out), "alpha\n\nbeta gamma\n");
  EXPECT_TRUE(wait_until([&] { return log_has(listen_log, "echoed 3 messages"); }, 10s))
      << read_file(listen_log);
}

// Runs a command line through the shell; its stdout.
std::string run_stdout(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> chunk{};
  while (std::fgets(chunk.data(), chunk.size(), pipe) != nullptr)
    out += chunk.data();
  ::pclose(pipe);
  return out;
}

std::string last_line(const std::string& text) {
  const std::string trimmed = text.substr(0, text.find_last_not_of('\n') + 1);
  return trimmed.substr(trimmed.find_last_of('\n') + 1);
}

// The literal after "key": in a flat JSON object, or nullopt.
std::optional<std::string> json_field(const std::string& json, const std::string& key) {
  const std::string marker = "\"" + key + "\":";
  const auto at = json.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const auto begin = at + marker.size();
  return json.substr(begin, json.find_first_of(",}", begin) - begin);
}

void expect_clean_bench(const std::string& transport) {
  const std::string json = last_line(
      run_stdout("'" + kRendr + "' bench packet --transport " + transport +
                 " --pps 2000 --size 200 --duration 1 --migrations 2 --json 2>/dev/null"));
  ASSERT_TRUE(json.starts_with("{\"bench\":\"packet\"")) << json;
  for (const char* key : {"transport",
                          "mode",
                          "paths",
                          "pps",
                          "size",
                          "duration_s",
                          "sent",
                          "received",
                          "lost",
                          "duplicated",
                          "reordered",
                          "achieved_pps",
                          "baseline_pps",
                          "rendr_p50_rtt_us",
                          "rendr_p95_rtt_us",
                          "baseline_p50_rtt_us",
                          "baseline_p95_rtt_us",
                          "p95_ratio",
                          "migrations",
                          "reliable",
                          "ordered",
                          "rendr_cpu_s",
                          "baseline_cpu_s"})
    EXPECT_TRUE(json_field(json, key)) << key << " missing in " << json;
  EXPECT_EQ(json_field(json, "transport"), "\"" + transport + "\"") << json;
  EXPECT_EQ(json_field(json, "sent"), "2000") << json;
  EXPECT_EQ(json_field(json, "received"), "2000") << json;
  EXPECT_EQ(json_field(json, "lost"), "0") << json;
  EXPECT_EQ(json_field(json, "duplicated"), "0") << json;
  // The two planned ones (a failover under load would add to them, not replace them).
  EXPECT_GE(std::atoi(json_field(json, "migrations").value_or("0").c_str()), 2) << json;
  EXPECT_EQ(json_field(json, "reliable"), "true") << json;
  EXPECT_EQ(json_field(json, "ordered"), "true") << json;
  EXPECT_EQ(json_field(json, "errors"), "0") << json;
}

TEST(PacketCliTest, BenchPacketUdpflowLosesNothingAcrossMigrations) {
  expect_clean_bench("udpflow");
}

TEST(PacketCliTest, BenchPacketTcpLosesNothingAcrossMigrations) {
  expect_clean_bench("tcp");
}

// One udpflow path moving its local address twice (as one quic path does): both moves are
// counted in local_address_moves, nothing lost or duplicated, no admin error.
TEST(PacketCliTest, BenchPacketOneUdpflowPathMovesItsLocalAddress) {
  const std::string json = last_line(
      run_stdout("'" + kRendr +
                 "' bench packet --transport udpflow --paths 1 --pps 2000 --size 200 --duration 1"
                 " --migrations 2 --json 2>/dev/null"));
  ASSERT_TRUE(json.starts_with("{\"bench\":\"packet\"")) << json;
  EXPECT_EQ(json_field(json, "paths"), "1") << json;
  EXPECT_EQ(json_field(json, "local_address_moves"), "2") << json;
  EXPECT_EQ(json_field(json, "admin_errors"), "0") << json;
  EXPECT_EQ(json_field(json, "received"), "2000") << json;
  EXPECT_EQ(json_field(json, "lost"), "0") << json;
  EXPECT_EQ(json_field(json, "duplicated"), "0") << json;
  EXPECT_EQ(json_field(json, "errors"), "0") << json;
}

}  // namespace
