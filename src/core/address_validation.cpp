#include "core/address_validation.hpp"

#include <algorithm>
#include <limits>

#include "core/crypto.hpp"

namespace rendr::core {

void AddressValidator::start(const PeerAddress& first, std::size_t datagram_bytes, bool validated) {
  current_ = first;
  validated_ = validated;
  received_current_ = datagram_bytes;
  sent_current_ = 0;
  candidates_.clear();
  responses_.clear();
}

AddressValidator::Candidate* AddressValidator::find(const PeerAddress& a) {
  for (Candidate& c : candidates_) {
    if (c.address == a) return &c;
  }
  return nullptr;
}

void AddressValidator::on_datagram(const PeerAddress& from, std::size_t bytes, bool newest,
                                   Time now) {
  if (!current_) current_ = from;
  if (from == *current_) {
    received_current_ += bytes;
    return;
  }
  if (Candidate* c = find(from)) {
    c->received += bytes;
    return;
  }
  if (!newest) {
    // An older packet from a new address: a replay (or reordering across a rebinding, which
    // the newest packet settles). It may not start anything.
    ++stats_.stale_ignored;
    return;
  }
  if (candidates_.size() >= std::max<std::size_t>(config_.max_candidates, 1)) {
    ++stats_.validations_failed;
    candidates_.erase(candidates_.begin());
  }
  Candidate c;
  c.address = from;
  c.received = bytes;
  c.deadline = now + pto_;
  candidates_.push_back(std::move(c));
  count_blocked();
}

void AddressValidator::on_challenge(const std::optional<PeerAddress>& from,
                                    const wire::PathChallengeData& data) {
  if (responses_.size() >= std::max<std::size_t>(config_.max_pending_responses, 1)) {
    ++stats_.responses_dropped;
    responses_.pop_front();
  }
  responses_.push_back(Response{is_current(from) ? std::nullopt : from, data});
  count_blocked();
}

bool AddressValidator::on_response(const PeerAddress& from, const wire::PathChallengeData& data) {
  Candidate* c = find(from);
  if (c == nullptr ||
      std::find(c->challenges.begin(), c->challenges.end(), data) == c->challenges.end()) {
    ++stats_.responses_unmatched;
    return false;
  }
  current_ = from;
  validated_ = true;
  received_current_ = c->received;
  sent_current_ = c->sent;
  candidates_.clear();
  // Responses owed to other addresses were charged to their candidacy, which is over.
  std::erase_if(responses_, [&](const Response& r) {
    const bool orphan = r.to && *r.to != *current_;
    if (orphan) ++stats_.responses_dropped;
    return orphan;
  });
  for (Response& r : responses_)
    r.to.reset();
  ++stats_.validations;
  return true;
}

std::uint64_t AddressValidator::allowance(std::uint64_t received, std::uint64_t sent) const {
  const std::uint64_t limit = received * config_.amplification_factor;
  return limit > sent ? limit - sent : 0;
}

std::uint64_t AddressValidator::current_allowance() const {
  if (validated_) return std::numeric_limits<std::uint64_t>::max();
  return allowance(received_current_, sent_current_);
}

void AddressValidator::on_sent_to_current(std::size_t bytes) {
  if (validated_) return;
  sent_current_ += bytes;
  stats_.bytes_to_unvalidated += bytes;
}

std::optional<std::uint64_t> AddressValidator::allowance_of(
    const std::optional<PeerAddress>& to) const {
  if (is_current(to)) return current_allowance();
  for (const Candidate& c : candidates_) {
    if (c.address == *to) return allowance(c.received, c.sent);
  }
  return std::nullopt;
}

void AddressValidator::charge(const std::optional<PeerAddress>& to, std::size_t bytes) {
  if (is_current(to)) {
    on_sent_to_current(bytes);
    return;
  }
  for (Candidate& c : candidates_) {
    if (c.address == *to) {
      c.sent += bytes;
      stats_.bytes_to_unvalidated += bytes;
    }
  }
}

std::optional<AddressProbe> AddressValidator::probe_to(const std::optional<PeerAddress>& to) const {
  // Everything owed to one destination goes in one datagram: its oldest response, its
  // challenge.
  AddressProbe p;
  p.to = is_current(to) ? std::nullopt : to;
  for (const Response& r : responses_) {
    if (is_current(r.to) == is_current(to) && (is_current(to) || *r.to == *to)) {
      p.response = r.data;
      break;
    }
  }
  if (!is_current(to)) {
    for (const Candidate& c : candidates_) {
      if (c.address == *to && c.challenge_owed) p.challenge = wire::PathChallengeData{};
    }
  }
  if (!p.response && !p.challenge) return std::nullopt;
  const auto room = allowance_of(to);
  if (!room || *room < probe_bytes(p)) return std::nullopt;
  return p;
}

std::optional<AddressProbe> AddressValidator::pick() const {
  // Owed responses first (oldest first), then owed challenges.
  for (const Response& r : responses_) {
    if (auto p = probe_to(r.to)) return p;
  }
  for (const Candidate& c : candidates_) {
    if (c.challenge_owed) {
      if (auto p = probe_to(c.address)) return p;
    }
  }
  return std::nullopt;
}

void AddressValidator::count_blocked() {
  for (Response& r : responses_) {
    if (!r.blocked_counted && allowance_of(r.to) && !probe_to(r.to)) {
      r.blocked_counted = true;
      ++stats_.amplification_blocked;
    }
  }
  for (Candidate& c : candidates_) {
    if (c.challenge_owed && !c.blocked_counted && !probe_to(c.address)) {
      c.blocked_counted = true;
      ++stats_.amplification_blocked;
    }
  }
}

bool AddressValidator::wants_probe() const {
  return pick().has_value();
}

std::optional<AddressProbe> AddressValidator::next_probe(Time now) {
  std::erase_if(responses_, [&](const Response& r) {
    const bool orphan = !allowance_of(r.to).has_value();
    if (orphan) ++stats_.responses_dropped;
    return orphan;
  });
  std::optional<AddressProbe> p = pick();
  if (!p) {
    count_blocked();
    return std::nullopt;
  }
  if (p->response) {
    const auto it = std::find_if(responses_.begin(), responses_.end(), [&](const Response& r) {
      return r.data == *p->response && is_current(r.to) == is_current(p->to) &&
             (is_current(p->to) || *r.to == *p->to);
    });
    responses_.erase(it);
    ++stats_.responses_sent;
  }
  if (p->challenge) {
    Candidate* c = find(*p->to);
    crypto::random_bytes(*p->challenge);
    c->challenges.push_back(*p->challenge);
    c->challenge_owed = false;
    c->blocked_counted = false;
    // PTO-like backoff: each further challenge waits twice as long for its answer.
    c->deadline =
        now + pto_ * (std::int64_t{1} << std::min<std::size_t>(c->challenges.size() - 1, 8));
    ++stats_.challenges_sent;
  }
  charge(p->to, probe_bytes(*p));
  return p;
}

void AddressValidator::on_timer(Time now) {
  std::erase_if(candidates_, [&](Candidate& c) {
    if (now < c.deadline) return false;
    if (++c.expiries >= config_.max_challenges) {
      ++stats_.validations_failed;
      return true;
    }
    c.challenge_owed = true;
    c.deadline = now + pto_;
    return false;
  });
  count_blocked();
}

std::optional<Time> AddressValidator::next_timer() const {
  std::optional<Time> t;
  for (const Candidate& c : candidates_) {
    if (!t || c.deadline < *t) t = c.deadline;
  }
  return t;
}

}  // namespace rendr::core
