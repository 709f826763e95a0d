#include "core/endpoint.hpp"

#include "wire/datagram.hpp"

namespace rendr::core {

JoinVerdict admit_join(Flow& flow, const wire::Join& join, std::size_t max_paths, Time now) {
  return admit_join(flow, join, max_paths, now, PathOptions{});
}

JoinVerdict admit_join(Flow& flow, const wire::Join& join, std::size_t max_paths, Time now,
                       const PathOptions& carrier) {
  const PathState existing = flow.path_state(static_cast<PathId>(join.path_id));
  const bool new_path =
      existing == PathState::removed || existing == PathState::dead || join.path_id > 0xffffffffu;
  // Checked before the MAC: refusing costs nothing, and the flow is not touched.
  if (new_path && flow.path_count() >= max_paths) return {wire::Status::capacity};
  return flow.on_join(join, now, carrier);
}

Endpoint::Endpoint(const FlowConfig& config, const EndpointLimits& limits)
    : config_(config), limits_(limits) {}

EndpointStats Endpoint::stats() const {
  EndpointStats s = stats_;
  s.half_open = half_open_.size();
  s.live_flows = live_;
  s.unaccepted_flows = unaccepted_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Connections.

ConnectionId Endpoint::on_connection(Time now) {
  ++stats_.connections;
  if (!half_open_.empty() && half_open_.size() >= limits_.max_half_open) {
    const auto oldest = half_open_.begin();
    actions_.push_back({EndpointAction::Kind::close_connection, oldest->first, {}});
    half_open_.erase(oldest);
    ++stats_.evicted_half_open;
  }
  const ConnectionId id = next_connection_++;
  if (limits_.max_half_open == 0) {
    // No connection may wait at all: closed at once, like a timeout.
    actions_.push_back({EndpointAction::Kind::close_connection, id, {}});
    ++stats_.rejected_timeout;
    return id;
  }
  half_open_.emplace(id, now);
  return id;
}

void Endpoint::on_connection_lost(ConnectionId connection, bool protocol_error) {
  if (half_open_.erase(connection) > 0 && protocol_error) ++stats_.rejected_malformed;
}

Admission Endpoint::on_first_frame(ConnectionId connection, const wire::Frame& first, Time now) {
  return on_first_frame(connection, first, now, PathOptions{});
}

Admission Endpoint::on_first_frame(ConnectionId connection, const wire::Frame& first, Time now,
                                   const PathOptions& carrier) {
  if (half_open_.erase(connection) == 0) return {};  // evicted or timed out meanwhile
  if (const auto* o = std::get_if<wire::Open>(&first.body)) return open(*o, now, carrier);
  if (const auto* j = std::get_if<wire::Join>(&first.body)) return join(*j);
  ++stats_.rejected_malformed;
  return {};
}

PathOptions Endpoint::with_origin(PathOptions carrier, const DatagramOrigin& origin) {
  carrier.peer = origin.from;
  carrier.peer_datagram_bytes = origin.datagram_bytes;
  carrier.peer_validated = false;
  return carrier;
}

Admission Endpoint::on_first_frame(ConnectionId connection, const wire::Frame& first, Time now,
                                   const PathOptions& carrier, const DatagramOrigin& origin) {
  PathOptions c = with_origin(carrier, origin);
  if (!std::holds_alternative<wire::Open>(first.body))
    return on_first_frame(connection, first, now, c);
  std::optional<RetryTokens::Check> check;
  if (origin.token) {
    check = retry_tokens_.check(*origin.token, origin.from, now, limits_.retry_token_lifetime);
    switch (*check) {
      case RetryTokens::Check::valid:
        ++stats_.retry_tokens_valid;
        break;
      case RetryTokens::Check::expired:
        ++stats_.retry_tokens_expired;
        break;
      case RetryTokens::Check::forged:
        ++stats_.retry_tokens_forged;
        break;
    }
  }
  c.peer_validated = check == RetryTokens::Check::valid;
  if (c.peer_validated || unproven_.size() < limits_.retry_above_unproven)
    return on_first_frame(connection, first, now, c);
  // Under load: no flow for an address that has not shown it receives our datagrams.
  if (half_open_.erase(connection) == 0) return {};
  if (check == RetryTokens::Check::forged) return {};  // counted; a forger gets nothing
  wire::Frame retry{0, wire::Retry{retry_tokens_.mint(origin.from, now)}};
  // Never more than the datagram that asked (an OPEN is always larger; anything else is not
  // worth an answer).
  if (wire::datagram::kHandshakeHeaderSize + wire::encoded_size(retry) > origin.datagram_bytes) {
    ++stats_.rejected_malformed;
    return {};
  }
  ++stats_.retries_sent;
  return refusal(std::move(retry));
}

Admission Endpoint::refusal(wire::Frame answer) {
  Admission a;
  a.kind = Admission::Kind::refuse;
  a.answer = std::move(answer);
  return a;
}

Admission Endpoint::open(const wire::Open& open, Time now, const PathOptions& carrier) {
  if (auto it = flows_.find(open.flow_id); it != flows_.end()) {
    if (it->second.dropping) {
      // Its flow is going: nothing to answer with, and the FlowId is not free yet.
      ++stats_.rejected_malformed;
      return refusal({0, wire::OpenAck{.status = wire::Status::bad_request}});
    }
    Admission a;
    a.kind = Admission::Kind::repeated_open;
    a.flow = {open.flow_id, it->second.serial};
    return a;
  }
  // Room first (no key agreement for an OPEN that cannot be taken), evictions last (none for
  // an OPEN that turns out malformed).
  const bool flows_full = live_ >= limits_.max_flows;
  const bool queue_full = unaccepted_ >= limits_.max_unaccepted;
  if (flows_full && !has_evictable(false)) {
    ++stats_.rejected_capacity;
    return refusal({0, wire::OpenAck{.status = wire::Status::capacity}});
  }
  if (queue_full && !has_evictable(true)) {
    ++stats_.rejected_accept_queue;
    return refusal({0, wire::OpenAck{.status = wire::Status::capacity}});
  }
  // A new flow needs its first window from the listener's receive memory budget.
  if (config_.memory_budget && config_.memory_budget->available() < MemoryBudget::kInitialWindow) {
    ++stats_.rejected_memory;
    return refusal({0, wire::OpenAck{.status = wire::Status::capacity}});
  }
  wire::Status status = wire::Status::ok;
  auto flow =
      Flow::make_server(config_, open, static_cast<PathId>(open.path_id), now, status, carrier);
  if (!flow) {
    ++stats_.rejected_malformed;
    return refusal({0, wire::OpenAck{.status = status}});
  }
  // An unaccepted flow makes room in both tables at once.
  if (queue_full) evict(true);
  if (live_ >= limits_.max_flows) evict(false);
  Record record;
  record.serial = next_serial_++;
  flows_[open.flow_id] = record;
  unproven_[record.serial] = open.flow_id;
  ++live_;
  ++unaccepted_;
  ++stats_.flows_opened;
  Admission a;
  a.kind = Admission::Kind::open;
  a.flow = {open.flow_id, record.serial};
  a.created = std::move(flow);
  return a;
}

Admission Endpoint::join(const wire::Join& join) {
  auto it = flows_.find(join.flow_id);
  if (it == flows_.end() || it->second.dropping) {
    ++stats_.rejected_unknown_flow;
    return refusal({0, wire::JoinAck{.status = wire::Status::unknown_flow}});
  }
  Admission a;
  a.kind = Admission::Kind::join;
  a.flow = {join.flow_id, it->second.serial};
  return a;
}

// ---------------------------------------------------------------------------------------------
// Answers through a flow.

wire::Frame Endpoint::answer_repeated_open(const std::optional<wire::OpenAck>& ack) {
  if (ack) {
    ++stats_.duplicate_opens;
    return {0, *ack};
  }
  // Not a repeat of the creating OPEN: someone else's, refused.
  ++stats_.rejected_malformed;
  return {0, wire::OpenAck{.status = wire::Status::bad_request}};
}

std::optional<wire::Frame> Endpoint::on_join_result(const FlowRef& flow, wire::Status status) {
  switch (status) {
    case wire::Status::ok:
      ++stats_.joins_accepted;
      // A JOIN with the right MAC comes from the client: the flow is not abandoned.
      if (Record* r = find(flow)) set_heard(flow.id, *r);
      return std::nullopt;
    case wire::Status::unknown_flow:
      ++stats_.rejected_unknown_flow;
      break;
    case wire::Status::bad_proof:
      ++stats_.rejected_bad_proof;
      break;
    case wire::Status::replayed:
      ++stats_.rejected_replay;
      break;
    case wire::Status::capacity:
      ++stats_.rejected_paths_per_flow;
      break;
    default:
      ++stats_.rejected_malformed;
      break;
  }
  return wire::Frame{0, wire::JoinAck{.status = status}};
}

// ---------------------------------------------------------------------------------------------
// Reports.

Endpoint::Record* Endpoint::find(const FlowRef& flow) {
  auto it = flows_.find(flow.id);
  if (it == flows_.end() || it->second.serial != flow.serial || it->second.dropping) return nullptr;
  return &it->second;
}

void Endpoint::on_flow_report(const FlowRef& flow, const FlowReport& report, Time now) {
  Record* r = find(flow);
  if (r == nullptr || report.version <= r->report_version) return;
  r->report_version = report.version;
  if (report.heard) set_heard(flow.id, *r);
  if (report.authenticated && !r->authenticated) {
    r->authenticated = true;
    unproven_.erase(r->serial);
  }
  set_pathless(flow.id, *r, report.paths == 0, now);
}

void Endpoint::on_flow_accepted(const FlowRef& flow) {
  Record* r = find(flow);
  if (r == nullptr || r->accepted) return;
  r->accepted = true;
  --unaccepted_;
}

void Endpoint::on_flow_finished(const FlowRef& flow) {
  auto it = flows_.find(flow.id);
  if (it == flows_.end() || it->second.serial != flow.serial) return;
  Record& r = it->second;
  if (!r.dropping) {
    --live_;
    if (!r.accepted) --unaccepted_;
    if (r.pathless_since) pathless_.erase({r.heard, *r.pathless_since, flow.id});
    unproven_.erase(r.serial);
  }
  flows_.erase(it);
}

void Endpoint::set_pathless(const wire::FlowId& id, Record& r, bool pathless, Time now) {
  if (pathless == r.pathless_since.has_value()) return;
  if (pathless) {
    r.pathless_since = now;
    pathless_.insert({r.heard, now, id});
  } else {
    pathless_.erase({r.heard, *r.pathless_since, id});
    r.pathless_since.reset();
  }
}

void Endpoint::set_heard(const wire::FlowId& id, Record& r) {
  if (r.heard) return;
  if (r.pathless_since) {
    pathless_.erase({false, *r.pathless_since, id});
    pathless_.insert({true, *r.pathless_since, id});
  }
  r.heard = true;
}

// ---------------------------------------------------------------------------------------------
// Eviction.

// An unproven flow is never accepted (accept() takes only authenticated flows), so it makes
// room in either table.
bool Endpoint::has_evictable(bool unaccepted_only) const {
  if (!unproven_.empty()) return true;
  for (const auto& key : pathless_) {
    if (!unaccepted_only || !flows_.at(std::get<2>(key)).accepted) return true;
  }
  return false;
}

bool Endpoint::evict(bool unaccepted_only) {
  for (const auto& key : pathless_) {
    const wire::FlowId id = std::get<2>(key);
    Record& r = flows_.at(id);
    if (unaccepted_only && r.accepted) continue;
    drop(id, r);
    ++stats_.evicted_flows;
    return true;
  }
  if (unproven_.empty()) return false;
  const wire::FlowId id = unproven_.begin()->second;
  drop(id, flows_.at(id));
  ++stats_.evicted_unproven;
  return true;
}

void Endpoint::drop(const wire::FlowId& id, Record& r) {
  if (r.pathless_since) pathless_.erase({r.heard, *r.pathless_since, id});
  r.pathless_since.reset();
  unproven_.erase(r.serial);
  r.dropping = true;
  --live_;
  if (!r.accepted) --unaccepted_;
  actions_.push_back({EndpointAction::Kind::drop_flow, 0, {id, r.serial}});
}

// ---------------------------------------------------------------------------------------------
// Time.

std::optional<Time> Endpoint::next_deadline() const {
  std::optional<Time> next;
  if (!half_open_.empty()) next = half_open_.begin()->second + limits_.first_frame_timeout;
  // Never-heard flows sort first, oldest first: the first one is the next to expire.
  if (!pathless_.empty() && !std::get<0>(*pathless_.begin())) {
    const Time t = std::get<1>(*pathless_.begin()) + limits_.abandoned_flow_timeout;
    if (!next || t < *next) next = t;
  }
  return next;
}

void Endpoint::on_timer(Time now) {
  while (!half_open_.empty() && half_open_.begin()->second + limits_.first_frame_timeout <= now) {
    actions_.push_back({EndpointAction::Kind::close_connection, half_open_.begin()->first, {}});
    half_open_.erase(half_open_.begin());
    ++stats_.rejected_timeout;
  }
  while (!pathless_.empty()) {
    const auto& [heard, since, id] = *pathless_.begin();
    if (heard || since + limits_.abandoned_flow_timeout > now) break;
    const wire::FlowId flow = id;  // drop() erases the key
    drop(flow, flows_.at(flow));
    ++stats_.dropped_abandoned;
  }
}

std::optional<EndpointAction> Endpoint::poll_action() {
  if (actions_.empty()) return std::nullopt;
  EndpointAction a = actions_.front();
  actions_.pop_front();
  return a;
}

}  // namespace rendr::core
