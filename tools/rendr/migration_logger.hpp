#pragma once
// Logs the active-path changes of a flow on a real network (`rendr dial`, `rendr listen`), and
// for a path's death what was seen: "active path 1 -> 2 (death: path 1 died (silent))". Nothing
// injects faults there, so unlike watch_migrations (demo, benches) it never calls a death
// spurious.
#include <memory>
#include <string>

#include "rendr/conn.hpp"

namespace rendr::cli {

class MigrationLogger {
 public:
  // `conn` must outlive the logger; the logger stops before it is destroyed.
  MigrationLogger(rendr::Conn& conn, std::string who);
  ~MigrationLogger();
  MigrationLogger(const MigrationLogger&) = delete;
  MigrationLogger& operator=(const MigrationLogger&) = delete;

  struct Source;  // the conn, shared with the callback until the logger stops

 private:
  rendr::Conn& conn_;
  std::shared_ptr<Source> source_;
};

// "path 2 died (silent)" if `stats` says why path `id` went down, else "path 2 died".
std::string describe_death(const rendr::ConnStats& stats, rendr::PathId id);

}  // namespace rendr::cli
