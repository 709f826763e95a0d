#include "runtime/convert.hpp"

#include "carrier/carrier.hpp"
#include "rendr/error.hpp"

namespace rendr::runtime {

core::Mode to_core(Mode m) {
  switch (m) {
    case Mode::prime:
      return core::Mode::prime;
    case Mode::race:
      return core::Mode::race;
    case Mode::bond:
      return core::Mode::bond;
  }
  return core::Mode::prime;
}

Mode from_core(core::Mode m) {
  switch (m) {
    case core::Mode::prime:
      return Mode::prime;
    case core::Mode::race:
      return Mode::race;
    case core::Mode::bond:
      return Mode::bond;
  }
  return Mode::prime;
}

MigrateCause from_core(core::MigrateCause c) {
  switch (c) {
    case core::MigrateCause::explicit_request:
      return MigrateCause::explicit_request;
    case core::MigrateCause::death:
      return MigrateCause::death;
    case core::MigrateCause::follow_peer:
      return MigrateCause::follow_peer;
    case core::MigrateCause::quality:
      return MigrateCause::quality;
  }
  return MigrateCause::explicit_request;
}

core::recovery::CongestionAlgorithm to_core(Congestion c) {
  switch (c) {
    case Congestion::cubic:
      return core::recovery::CongestionAlgorithm::cubic;
    case Congestion::new_reno:
      return core::recovery::CongestionAlgorithm::new_reno;
    case Congestion::bbr:
      return core::recovery::CongestionAlgorithm::bbr;
  }
  return core::recovery::CongestionAlgorithm::cubic;
}

core::MigrateCause to_core(MigrateCause c) {
  switch (c) {
    case MigrateCause::explicit_request:
      return core::MigrateCause::explicit_request;
    case MigrateCause::death:
      return core::MigrateCause::death;
    case MigrateCause::follow_peer:
      return core::MigrateCause::follow_peer;
    case MigrateCause::quality:
      return core::MigrateCause::quality;
  }
  return core::MigrateCause::explicit_request;
}

core::DownCause down_cause(int reason) {
  switch (static_cast<carrier::DownReason>(reason)) {
    case carrier::DownReason::eof:
      return core::DownCause::eof;
    case carrier::DownReason::reset:
      return core::DownCause::reset;
    case carrier::DownReason::protocol_error:
      return core::DownCause::protocol_error;
    case carrier::DownReason::error:
    case carrier::DownReason::closed:
      break;
  }
  return core::DownCause::error;
}

std::error_code to_error_code(core::FlowError e) {
  switch (e) {
    case core::FlowError::none:
      return {};
    case core::FlowError::migration_budget_exceeded:
      return errc::migration_budget_exceeded;
    case core::FlowError::protocol_error:
      return errc::protocol_error;
    case core::FlowError::peer_aborted:
      return errc::peer_aborted;
    case core::FlowError::aborted:
      return errc::aborted;
    case core::FlowError::handshake_failed:
      return errc::handshake_failed;
    case core::FlowError::authentication_failed:
      return errc::authentication_failed;
  }
  return errc::protocol_error;
}

namespace {
std::chrono::microseconds micros(core::Duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d);
}
}  // namespace

ConnStats to_conn_stats(const core::FlowStats& s,
                        const std::function<std::string(core::PathId)>& path_spec) {
  ConnStats out;
  out.flow_id = s.flow_id;
  out.state = std::string(core::to_string(s.state));
  out.mode = from_core(s.mode);
  out.active_path = s.active_path;
  out.migrations = s.migrations;
  out.recv_queue_hwm = s.recv_queue_hwm;
  out.recv_dups = s.recv_dups;
  out.bond_stuck_skips = s.bond_stuck_skips;
  out.mode_switches = s.mode_switches;
  out.migrations_explicit = s.migrations_explicit;
  out.migrations_death = s.migrations_death;
  out.migrations_follow = s.migrations_follow;
  out.migrations_quality = s.migrations_quality;
  out.bytes_written = s.bytes_written;
  out.bytes_acked = s.bytes_acked;
  out.bytes_delivered = s.bytes_delivered;
  out.send_buffered = s.send_buffered;
  out.recv_buffered = s.recv_buffered;
  out.recv_memory = s.recv_memory;
  out.retransmitted_bytes = s.retransmitted_bytes;
  out.joins_rejected = s.joins_rejected;
  out.joins_accepted = s.joins_accepted;
  out.protocol_errors = s.protocol_errors;
  out.last_down_path = s.last_down_path;
  if (s.last_down_path != core::kNoPath)
    out.last_down_cause = std::string(core::to_string(s.last_down_cause));
  for (const auto& p : s.paths) {
    PathInfo info;
    info.id = p.id;
    info.spec = path_spec(p.id);
    info.state = std::string(core::to_string(p.state));
    info.active = p.active;
    info.rtt = micros(p.srtt);
    info.rtt_var = micros(p.rttvar);
    info.last_heard_age = micros(p.last_heard_age);
    info.bytes_sent = p.bytes_sent;
    info.bytes_received = p.bytes_received;
    info.frames_sent = p.frames_sent;
    info.frames_received = p.frames_received;
    info.up_count = p.up_count;
    info.down_count = p.down_count;
    info.delivery_rate = p.delivery_rate;
    info.in_flight = p.in_flight;
    info.weight = p.weight;
    info.bytes_retransmitted = p.bytes_retransmitted;
    info.datagram = p.transport == core::TransportKind::datagram;
    info.packets_sent = p.packets_sent;
    info.packets_lost = p.packets_lost;
    info.congestion_window = p.congestion_window;
    info.bytes_in_flight = p.bytes_in_flight;
    info.pacing_rate = p.pacing_rate;
    info.congestion_control = std::string(p.congestion_control);
    info.bandwidth_estimate = p.bandwidth_estimate;
    info.pto_count = p.pto_count;
    info.pto = micros(p.pto);
    info.spurious_losses = p.spurious_losses;
    info.congestion_events = p.congestion_events;
    info.congestion_events_undone = p.congestion_events_undone;
    info.persistent_congestions = p.persistent_congestions;
    info.slow_start_threshold = p.slow_start_threshold;
    info.mtu = p.max_datagram_size;
    info.mtu_ceiling = p.mtu_ceiling;
    info.mtu_black_holes = p.mtu_black_holes;
    info.path_challenges_sent = p.address.challenges_sent;
    info.path_validations = p.address.validations;
    info.path_validations_failed = p.address.validations_failed;
    info.amplification_blocked = p.address.amplification_blocked;
    info.bytes_to_unvalidated = p.address.bytes_to_unvalidated;
    info.stale_address_packets = p.address.stale_ignored;
    info.datagrams_sent = p.datagrams_sent;
    info.datagrams_acked = p.datagrams_acked;
    info.datagrams_lost = p.datagrams_lost;
    info.datagrams_unjudged = p.datagrams_unjudged;
    out.paths.push_back(std::move(info));
  }
  return out;
}

void add_transport_congestion(PathInfo& info, const carrier::TransportCongestion& c) {
  info.congestion_control = c.controller;
  info.congestion_window = c.congestion_window;
  info.bytes_in_flight = c.bytes_in_flight;
  info.slow_start_threshold = c.slow_start_threshold;
  info.pacing_rate = c.pacing_rate;
  info.packets_sent = c.packets_sent;
  info.packets_lost = c.packets_lost;
  info.mtu = c.mtu;
}

core::Duration to_duration(std::chrono::milliseconds d) {
  // Compared in milliseconds, which hold both bounds without overflow.
  if (d <= std::chrono::milliseconds::zero()) return core::Duration::zero();
  if (d >= kLongestDuration) return kLongestDuration;
  return d;
}

static_assert(kMaxMessageSize == core::kDefaultMaxMessage);

core::PacketOptions to_core(const PacketOptions& p) {
  core::PacketOptions out;
  out.reliable = p.reliable;
  out.ordered = p.ordered;
  return out;
}

core::FlowConfig make_config(Mode mode, std::chrono::milliseconds migration_budget,
                             const FlowOptions& options) {
  core::FlowConfig c;
  c.mode = to_core(mode);
  c.migration_budget = to_duration(migration_budget);
  if (options.send_buffer != 0) c.send_buffer = options.send_buffer;
  if (options.recv_window != 0) c.recv_window = options.recv_window;
  c.dead_floor = to_duration(options.dead_floor);
  c.dead_cap = to_duration(options.dead_cap);
  c.redial_max = to_duration(options.redial_max);
  c.psk.assign(options.psk.begin(), options.psk.end());
  return c;
}

}  // namespace rendr::runtime
