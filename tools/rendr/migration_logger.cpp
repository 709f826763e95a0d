#include "migration_logger.hpp"

#include <mutex>

#include "console.hpp"

namespace rendr::cli {

// The callback reads the conn's stats through this; the logger clears it (under the mutex)
// before the conn may go away, so a callback running late finds nothing instead of a dangling
// conn. (Capturing a Conn copy instead would keep the flow alive from its own callback.)
struct MigrationLogger::Source {
  std::mutex mu;
  const rendr::Conn* conn = nullptr;
};

MigrationLogger::MigrationLogger(rendr::Conn& conn, std::string who)
    : conn_(conn), source_(std::make_shared<Source>()) {
  source_->conn = &conn;
  conn.on_migrate([source = source_, who = std::move(who)](rendr::PathId from, rendr::PathId to,
                                                           rendr::MigrateCause cause) {
    std::string what(rendr::to_string(cause));
    if (cause == rendr::MigrateCause::death) {
      std::lock_guard lock(source->mu);
      if (source->conn == nullptr) return;
      what += ": " + describe_death(source->conn->stats(), from);
    }
    log_line(who + ": active path " + std::to_string(from) + " -> " + std::to_string(to) + " (" +
             what + ")");
  });
}

MigrationLogger::~MigrationLogger() {
  {
    std::lock_guard lock(source_->mu);
    source_->conn = nullptr;
  }
  conn_.on_migrate(nullptr);
}

std::string describe_death(const rendr::ConnStats& stats, rendr::PathId id) {
  std::string text = "path " + std::to_string(id) + " died";
  if (stats.last_down_path == id && !stats.last_down_cause.empty())
    text += " (" + stats.last_down_cause + ")";
  return text;
}

}  // namespace rendr::cli
