// `rendr bench flows`: what an idle flow costs a listener. Starts `rendr listen --echo` as a
// child process, opens N idle flows to it from this process, and reports the listener's RSS
// growth per flow (VmRSS from /proc before and after) and how long the opens took.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "rendr/rendr.hpp"

namespace rendr::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Sockets for `flows` flows in this process and in the listener (which inherits the limit).
bool raise_file_limit(std::uint64_t flows) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  return limit.rlim_cur >= flows + 256;
}

std::optional<std::uint64_t> rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return std::nullopt;
}

// The listener child: its stderr is read on a thread, which learns the port from the first
// "listening on" line and counts accepted flows.
class ListenerProcess {
 public:
  bool start(std::uint64_t max_flows) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    const std::string flows = std::to_string(max_flows);
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
      execl("/proc/self/exe", "rendr", "listen", "--tcp", "127.0.0.1:0", "--echo", "--max-flows",
            flows.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { read_log(fd); });
    return wait_for([&] { return port_.load() != 0; }, std::chrono::seconds(10));
  }

  ~ListenerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();  // the pipe closes with the child
  }

  pid_t pid() const { return pid_; }
  // "" while it runs, else how it ended.
  std::string ended() {
    int status = 0;
    if (pid_ <= 0 || waitpid(pid_, &status, WNOHANG) != pid_) return "";
    pid_ = -1;
    if (WIFSIGNALED(status))
      return "; the listener died of signal " + std::to_string(WTERMSIG(status));
    return "; the listener exited with status " + std::to_string(WEXITSTATUS(status));
  }
  std::uint16_t port() const { return port_.load(); }
  std::uint64_t accepted() const { return accepted_.load(); }

  template <class Predicate>
  static bool wait_for(Predicate done, Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

 private:
  void read_log(int fd) {
    FILE* log = fdopen(fd, "r");
    char line[512];
    while (std::fgets(line, sizeof line, log)) {
      const std::string text(line);
      if (const auto at = text.find("listening on "); at != std::string::npos && !port_) {
        port_ = static_cast<std::uint16_t>(std::stoul(text.substr(text.rfind(':') + 1)));
      } else if (text.find(": accepted") != std::string::npos) {
        ++accepted_;
      }
    }
    std::fclose(log);
  }

  pid_t pid_ = -1;
  std::thread reader_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::uint64_t> accepted_{0};
};

int run(const Args& args) {
  const std::uint64_t count = args.count("count", 1000);
  if (count == 0) throw UsageError("--count must be at least 1");
  if (!raise_file_limit(count))
    return report_setup_failure(args, "flows", "RLIMIT_NOFILE is too low for --count flows");

  ListenerProcess listener;
  if (!listener.start(count + 16))
    return report_setup_failure(args, "flows", "the listener process did not start");

  rendr::Dialer dialer;
  dialer.paths = {rendr::PathSpec::parse("tcp://127.0.0.1:" + std::to_string(listener.port()))};
  std::vector<rendr::Conn> flows;
  flows.reserve(count + 1);
  std::error_code ec;
  // One flow first, so the listener's one-time allocations (engine, pools) are not counted.
  flows.push_back(dialer.dial(ec));
  if (ec || !ListenerProcess::wait_for([&] { return listener.accepted() == 1; },
                                       std::chrono::seconds(10)))
    return report_setup_failure(args, "flows", "the first flow did not open");
  const std::optional<std::uint64_t> before = rss_kib(listener.pid());

  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < count && !ec; ++i)
    flows.push_back(dialer.dial(ec));
  const double open_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (ec)
    return report_setup_failure(
        args, "flows",
        "flow " + std::to_string(flows.size()) + " failed: " + ec.message() + listener.ended());
  if (!ListenerProcess::wait_for([&] { return listener.accepted() == count + 1; },
                                 std::chrono::seconds(30)))
    return report_setup_failure(args, "flows", "the listener did not accept every flow");
  const std::optional<std::uint64_t> after = rss_kib(listener.pid());
  if (!before || !after)
    return report_setup_failure(args, "flows", "cannot read the listener's VmRSS");
  const double growth_kib = double(*after) - double(*before);

  JsonObject result;
  result.add("bench", "flows")
      .add("flows", count)
      .add("open_s", open_s)
      .add("opens_per_s", double(count) / open_s)
      .add("listener_rss_before_kib", *before)
      .add("listener_rss_after_kib", *after)
      .add("rss_per_flow_kib", growth_kib / double(count));
  print_result(args, "rendr bench flows", result);
  return 0;
}

}  // namespace

Command bench_flows_command() {
  return {{"bench flows",
           "what an idle flow costs a listener (RSS per flow, open rate)",
           "[--count N] [--json]",
           "Starts `rendr listen --echo` as a child process, opens N idle flows to it (one\n"
           "path each, over loopback) and reports the listener's RSS growth per flow and the\n"
           "time the opens took.",
           {{"count", OptionSpec::Kind::value, "N", "idle flows to open (default 1000)"},
            json_option()}},
          run};
}

}  // namespace rendr::cli
