#include "path_admin.hpp"

#include <algorithm>
#include <cstdio>

#include <thread>

#include "console.hpp"

namespace rendr::cli {

std::vector<rendr::PathId> up_paths(const rendr::ConnStats& stats) {
  std::vector<rendr::PathId> ids;
  for (const rendr::PathInfo& path : stats.paths)
    if (path.state == "up") ids.push_back(path.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

rendr::PathId next_path_round_robin(const rendr::Conn& conn) {
  const rendr::ConnStats stats = conn.stats();
  const std::vector<rendr::PathId> ids = up_paths(stats);
  const auto after = std::upper_bound(ids.begin(), ids.end(), stats.active_path);
  const rendr::PathId next = after != ids.end() ? *after : (ids.empty() ? rendr::kNoPath : ids[0]);
  return next == stats.active_path ? rendr::kNoPath : next;
}

bool wait_for_up_paths(const rendr::Conn& conn, std::size_t count,
                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (up_paths(conn.stats()).size() < count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string path_spec(const rendr::ConnStats& stats, rendr::PathId id) {
  for (const rendr::PathInfo& path : stats.paths)
    if (path.id == id) return path.spec;
  return {};
}

std::uint16_t path_port(const rendr::ConnStats& stats, rendr::PathId id) {
  std::error_code ec;
  const rendr::PathSpec spec = rendr::PathSpec::parse(path_spec(stats, id), ec);
  return ec ? 0 : spec.port;
}

std::string describe_paths(const rendr::ConnStats& stats) {
  std::string out;
  for (const rendr::PathInfo& path : stats.paths) {
    if (!out.empty()) out += ", ";
    char text[160];
    std::snprintf(text, sizeof text, "%u %s%s (rtt %.2f ms, heard %.1f ms ago, up %llu, down %llu)",
                  path.id, path.state.c_str(), path.active ? " active" : "",
                  double(path.rtt.count()) / 1e3, double(path.last_heard_age.count()) / 1e3,
                  static_cast<unsigned long long>(path.up_count),
                  static_cast<unsigned long long>(path.down_count));
    out += text;
  }
  return out;
}

std::shared_ptr<MigrationTally> watch_migrations(rendr::Conn& conn, std::string who,
                                                 LogMigrations log) {
  auto tally = std::make_shared<MigrationTally>();
  conn.on_migrate([tally, who = std::move(who), log](rendr::PathId from, rendr::PathId to,
                                                     rendr::MigrateCause cause) {
    std::string note;
    if (cause == rendr::MigrateCause::explicit_request) {
      ++tally->requested;
    } else if (cause == rendr::MigrateCause::death) {
      ++tally->after_death;
      if (from != tally->faulted_path) {
        ++tally->unexpected_deaths;
        note = ", no fault was injected: spurious";
      }
    } else {
      ++tally->other;
    }
    if (log == LogMigrations::all || cause != rendr::MigrateCause::explicit_request)
      log_line(who + ": active path " + std::to_string(from) + " -> " + std::to_string(to) + " (" +
               std::string(rendr::to_string(cause)) + note + ")");
  });
  return tally;
}

}  // namespace rendr::cli
