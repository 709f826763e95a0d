#pragma once
// Helpers over a Conn's admin API: which paths are up, round-robin migration targets, waiting
// for paths to come up.
#include <atomic>
#include <chrono>
#include <memory>

#include <cstdint>
#include <string>
#include <vector>

#include "rendr/conn.hpp"

namespace rendr::cli {

std::vector<rendr::PathId> up_paths(const rendr::ConnStats& stats);

// The up path after the active one in id order (wrapping), or kNoPath if no other path is up.
rendr::PathId next_path_round_robin(const rendr::Conn& conn);

// Polls until at least `count` paths are up; false on timeout.
bool wait_for_up_paths(const rendr::Conn& conn, std::size_t count,
                       std::chrono::milliseconds timeout);

// The spec of path `id` ("tcp://127.0.0.1:4000"), or "" if unknown.
std::string path_spec(const rendr::ConnStats& stats, rendr::PathId id);

// The port of path `id` as the client dialed it, or 0 if unknown.
std::uint16_t path_port(const rendr::ConnStats& stats, rendr::PathId id);

// "1 up active rtt 0.1 ms down 0, 2 dead ..." for diagnostics.
std::string describe_paths(const rendr::ConnStats& stats);

// Changes of a connection's active path, by cause. A death of any path but the one a fault was
// injected into (`faulted_path`) is a spurious failover: the path was alive. (A path, not a
// time window: the callback may run after the code that injected the fault saw the failover.)
struct MigrationTally {
  std::atomic<std::uint64_t> requested{0};  // migrate()
  std::atomic<std::uint64_t> after_death{0};
  std::atomic<std::uint64_t> other{0};  // follow_peer, quality
  std::atomic<std::uint64_t> unexpected_deaths{0};
  std::atomic<rendr::PathId> faulted_path{rendr::kNoPath};

  std::uint64_t unrequested() const { return after_death + other; }
};

enum class LogMigrations { all, unrequested };

// Tallies every change of the active path of `conn` and logs it on stderr, prefixed with `who`.
// The tally is shared with the callback, so it outlives the connection if need be.
std::shared_ptr<MigrationTally> watch_migrations(rendr::Conn& conn, std::string who,
                                                 LogMigrations log = LogMigrations::all);

}  // namespace rendr::cli
