// Writes the seed corpus of flow_fuzz into the directory given as argv[1]: honest transfers in
// each mode with migrations, path deaths and lossy pipes, and hand-made hostile sequences
// (forged and out-of-window frames after the handshake). Build with
// `cmake --build <dir> --target flow_fuzz_gen_corpus`; the output is committed in
// tests/fuzz/flow_corpus/.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/flow.hpp"
#include "flow_fuzz_script.hpp"
#include "wire/frame.hpp"

using namespace rendr;
using fuzz::Op;
using fuzz::ScriptWriter;
using K = Op::Kind;

namespace {

constexpr int kClient = 0, kServer = 1;

std::vector<std::uint8_t> frame(const wire::Frame& f) {
  std::vector<std::uint8_t> b(wire::encoded_size(f));
  wire::encode(f, b);
  return b;
}

// Handshake on paths 1 and 2, then bytes both ways.
ScriptWriter established(std::uint8_t mode) {
  ScriptWriter w(mode, 16, 16, 40);
  w.op(K::add_path, kClient, 1, 1).flow_freely(6);
  w.op(K::write, kClient, 1, 300).op(K::write, kServer, 1, 200).flow_freely(4);
  w.op(K::read, kClient, 1, 500).op(K::read, kServer, 1, 500);
  return w;
}

// A valid OPEN of a fresh client flow (a stranger's): the endpoint creates a flow for it.
std::vector<std::uint8_t> stranger_open(core::PathId path) {
  const core::Time now{std::chrono::seconds(1)};
  auto client = core::Flow::make_client(core::FlowConfig{}, now);
  client->add_path(now);
  while (client->poll_event()) {
  }
  client->on_path_connected(1, now);
  wire::TransmitBatch out(64 * 1024);
  client->poll_transmit(1, now, out);
  wire::Frame first;
  wire::decode(out.frames()[0].header_bytes(), first);
  std::get<wire::Open>(first.body).path_id = path;
  return frame(first);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const auto put = [&](const std::string& name, const ScriptWriter& w) {
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(w.bytes().data()),
               static_cast<std::streamsize>(w.bytes().size()));
  };

  // Honest runs.
  for (std::uint8_t mode : {0, 1, 2}) {
    ScriptWriter w = established(mode);
    w.op(K::write, kClient, 1, 700).flow_freely(3).op(K::migrate, kClient, 2).flow_freely(3);
    w.op(K::read, kServer, 1, 700).op(K::close, kClient).op(K::close, kServer).flow_freely(5);
    w.op(K::read, kClient, 1, 700).op(K::read, kServer, 1, 700).flow_freely(3);
    put("transfer_mode" + std::to_string(mode + 1), w);
  }
  {
    ScriptWriter w = established(0);
    w.op(K::write, kClient, 1, 700).op(K::pump).op(K::path_down, kClient, 1, 1);
    w.op(K::path_down, kServer, 1, 1).flow_freely(5).op(K::advance, 0, 1, 2000).flow_freely(5);
    w.op(K::read, kServer, 1, 700).flow_freely(2);
    put("path_death_and_redial", w);
  }
  {
    ScriptWriter w = established(0);
    w.op(K::write, kClient, 1, 700).op(K::pump);
    for (int i = 0; i < 6; ++i)
      w.op(K::drop, kServer, 1).op(K::duplicate, kServer, 1).op(K::reorder, kServer, 2);
    w.flow_freely(4).op(K::advance, 0, 1, 5000).flow_freely(4).op(K::read, kServer, 1, 900);
    put("lossy_pipes", w);
  }
  {
    ScriptWriter w = established(0);
    w.op(K::add_path, kClient, 1, 2).flow_freely(3).op(K::remove_path, kClient, 1);
    w.op(K::dial_fails).op(K::path_down, kClient, 2, 0).flow_freely(4);
    w.op(K::set_mode, kClient, 1, 1).flow_freely(2).op(K::set_mode, kServer, 1, 0).flow_freely(2);
    w.op(K::set_mode, kClient, 1, 2).flow_freely(2).op(K::abort, kServer).flow_freely(2);
    put("admin_and_modes", w);
  }
  {
    ScriptWriter w(0, 8, 8, 10);  // silence: timers only, until the budget runs out
    w.op(K::add_path).flow_freely(3).op(K::write, kClient, 1, 400).op(K::pump);
    for (int i = 0; i < 30; ++i)
      w.op(K::advance, 0, 1, 3000);
    put("all_dark_budget", w);
  }

  // Hostile frames after the handshake, towards the server (and the client).
  const std::vector<std::uint8_t> payload(200, 0x41);
  const wire::ConstBytes pl(payload);
  const std::vector<std::pair<std::string, std::vector<wire::Frame>>> hostile = {
      {"hostile_data_beyond_window", {wire::Frame{0, wire::Data{1 << 20, pl}}}},
      {"hostile_data_far_offset", {wire::Frame{0, wire::Data{wire::kMaxVarint - 200, pl}}}},
      {"hostile_data_overlap",
       {wire::Frame{0, wire::Data{0, pl.first(50)}}, wire::Frame{0, wire::Data{10, pl}}}},
      {"hostile_small_out_of_order",
       {wire::Frame{0, wire::Data{5000, pl.first(1)}},
        wire::Frame{0, wire::Data{5002, pl.first(1)}},
        wire::Frame{0, wire::Data{5004, pl.first(1)}},
        wire::Frame{0, wire::Data{5006, pl.first(1)}}}},
      {"hostile_ack_unsent", {wire::Frame{0, wire::Ack{1u << 30, 1u << 31, true}}}},
      {"hostile_ack_copy", {wire::Frame{wire::Ack::kFlagCopy, wire::Ack{0, 1 << 20, false}}}},
      {"hostile_fin_then_data",
       {wire::Frame{0, wire::Fin{10}}, wire::Frame{0, wire::Data{5, pl.first(20)}},
        wire::Frame{0, wire::Fin{30}}}},
      {"hostile_close", {wire::Frame{0, wire::Close{wire::CloseCode::normal, "done"}}}},
      {"hostile_open_on_attached",
       {wire::Frame{0, wire::Open{wire::kVersion,
                                  {},
                                  wire::ModeCode::prime,
                                  wire::StreamKind::stream,
                                  1,
                                  1024,
                                  {},
                                  {}}}}},
      {"hostile_join_bad_mac", {wire::Frame{0, wire::Join{wire::kVersion, {}, 3, 1, {}, {}}}}},
      {"hostile_mode_and_ping",
       {wire::Frame{0, wire::Mode{7, wire::ModeCode::race}}, wire::Frame{0, wire::Ping{1, 2}},
        wire::Frame{0, wire::Pong{99, 3}}, wire::Frame{0, wire::Mode{8, wire::ModeCode::bond}}}},
      {"hostile_open_ack_join_ack",
       {wire::Frame{0, wire::OpenAck{wire::Status::ok, 1024, {}, {}, {}}},
        wire::Frame{0, wire::JoinAck{wire::Status::ok, 5, {}}}}},
  };
  for (const auto& [name, frames] : hostile) {
    for (int target : {kServer, kClient}) {
      ScriptWriter w = established(0);
      for (const auto& f : frames)
        w.inject(target, 1, frame(f)).inject(target, 2, frame(f));
      w.flow_freely(3).op(K::read, target, 1, 900).op(K::write, target, 1, 100).flow_freely(3);
      put(name + (target == kServer ? "_to_server" : "_to_client"), w);
    }
  }
  {
    // Hostile frames before the handshake: towards the opening client and a fresh server.
    ScriptWriter w(0, 16, 16, 40);
    w.op(K::add_path).op(K::pump);
    w.inject(kClient, 1, frame(wire::Frame{0, wire::Data{0, pl.first(30)}}));
    w.inject(kClient, 1, frame(wire::Frame{0, wire::OpenAck{wire::Status::ok, 4096, {}, {}, {}}}));
    w.inject(kServer, 2, frame(wire::Frame{0, wire::Data{0, pl.first(30)}}));
    w.flow_freely(4).op(K::read, kClient, 1, 500);
    put("hostile_before_handshake", w);
  }

  // The endpoint's limits (flow_fuzz.cpp: 4 half-open, 2 flows, 2 unaccepted, 4 paths a flow).
  {
    // Strangers' OPENs before and after the client's: flows evicted, the client's kept.
    ScriptWriter w(0, 16, 16, 40);
    w.op(K::add_path).op(K::pump);
    for (core::PathId p = 3; p <= 6; ++p)
      w.inject(kServer, p, stranger_open(p));
    w.flow_freely(4);
    for (core::PathId p = 3; p <= 8; ++p)
      w.inject(kServer, p, stranger_open(p)).op(K::advance, 0, 1, 5000);
    w.op(K::write, kClient, 1, 300).flow_freely(4).op(K::read, kServer, 1, 500);
    put("endpoint_open_flood", w);
  }
  {
    // Silent connections push the client's waiting connection out; it redials.
    ScriptWriter w(0, 16, 16, 40);
    w.op(K::add_path);
    for (int i = 0; i < 6; ++i)
      w.inject(kServer, 1, {});
    w.flow_freely(4).op(K::advance, 0, 1, 30000).flow_freely(4);
    for (int i = 0; i < 3; ++i)
      w.inject(kServer, 1, {});
    w.op(K::advance, 0, 1, 30000).flow_freely(6).op(K::write, kClient, 1, 300).flow_freely(4);
    put("endpoint_half_open_flood", w);
  }
  {
    // More paths than a flow may have, JOINs for unknown flows, garbage first frames.
    ScriptWriter w = established(1);
    for (core::PathId p = 3; p <= 6; ++p)
      w.op(K::add_path, kClient, p, 1);
    w.flow_freely(4, 6);
    w.inject(kServer, 7, frame(wire::Frame{0, wire::Join{wire::kVersion, {9}, 7, 1, {}, {}}}));
    w.inject(kServer, 8, {0xff, 0xff, 0xff, 0xff}).inject(kServer, 8, {0x00});
    w.op(K::write, kClient, 1, 300).flow_freely(4, 6).op(K::read, kServer, 1, 500);
    put("endpoint_paths_and_unknown_joins", w);
  }
  return 0;
}
