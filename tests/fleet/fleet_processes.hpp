#pragma once
// What the fleet test runs beside itself: child processes (rendr listen, haproxy) that die with
// the test, a temporary directory removed afterwards, free loopback ports and bounded polls.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rendr::fleet {

// A child process with stdout and stderr in `log`. Killed (SIGKILL) and reaped when destroyed;
// it also dies if the test process dies (PR_SET_PDEATHSIG), so nothing outlives a crash.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // SIGKILL and reap now (idempotent).
  void kill();
  bool running();
  // Waits up to `timeout` for the process to end by itself: its exit status (128 + the signal if
  // a signal ended it), or nullopt while it still runs. Do not mix with running(), which reaps.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  const std::filesystem::path& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

// mkdtemp under the system temp directory; removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The haproxy executable (/usr/sbin, /usr/local/sbin, then $PATH), or nullopt.
std::optional<std::filesystem::path> find_haproxy();

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
std::uint16_t free_loopback_port();

// True once something accepts TCP connections on 127.0.0.1:port, polling until `timeout`.
bool wait_listening(std::uint16_t port, std::chrono::milliseconds timeout);

std::string read_file(const std::filesystem::path& path);

}  // namespace rendr::fleet
