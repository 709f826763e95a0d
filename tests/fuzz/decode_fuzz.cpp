// libFuzzer target for the rendr wire v1 decoder.
//
// Decodes frames from the input one after another. Every frame that decodes is re-encoded; the
// re-encoding must decode to an identical frame of the announced size, must be canonical
// (re-encoding it again gives the same bytes) and every strict prefix of it must be need_more.
// Any violation aborts. Built with clang -fsanitize=fuzzer (target decode_fuzz) and, without
// libFuzzer, into decode_fuzz_replay (see replay_main.cpp).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wire/frame.hpp"

namespace {

using namespace rendr::wire;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "decode_fuzz: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

bool bytes_equal(ConstBytes a, ConstBytes b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

void check_prefix(ConstBytes wire, std::size_t k) {
  // A fresh allocation of exactly k bytes, so ASan flags any read past the prefix.
  std::vector<Byte> prefix(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(k));
  Frame f;
  const DecodeResult r = decode(prefix, f);
  check(r.error == DecodeError::need_more, "strict prefix of a valid frame is not need_more");
  check(r.consumed == 0, "need_more consumed bytes");
}

void check_reencode(const Frame& frame, std::size_t max_body) {
  const std::size_t size = encoded_size(frame);
  std::vector<Byte> wire(size);
  check(encode(frame, wire) == size, "encode wrote other than encoded_size bytes");
  if (size > 0) check(encode(frame, MutableBytes(wire).first(size - 1)) == 0, "encode overran");

  // Minimal varints never make a body longer than the one it was decoded from.
  Frame again;
  const DecodeResult r = decode(wire, again, max_body);
  check(r.error == DecodeError::none, "re-encoded frame does not decode");
  check(r.consumed == size, "re-encoded frame consumed size mismatch");
  check(frame == again, "re-encoded frame decodes to a different frame");

  std::vector<Byte> wire2(encoded_size(again));
  check(encode(again, wire2) == wire2.size() && wire2 == wire, "encoding is not canonical");

  if (const auto* d = std::get_if<Data>(&frame.body)) {
    std::vector<Byte> header(kMaxDataHeader);
    const std::size_t h = encode_data_header(d->offset, d->payload.size(), header);
    check(h <= kMaxDataHeader && h + d->payload.size() == size, "data header size mismatch");
    if (frame.flags == 0) {
      check(bytes_equal(ConstBytes(header).first(h), ConstBytes(wire).first(h)),
            "encode_data_header differs from encode");
    }
  }

  // Strict prefixes: all of them for small frames, a sample for large ones.
  if (size <= 256) {
    for (std::size_t k = 0; k < size; ++k)
      check_prefix(wire, k);
  } else {
    for (std::size_t k : {std::size_t{0}, std::size_t{2}, std::size_t{3}, std::size_t{4},
                          std::size_t{kMaxDataHeader}, size / 2, size - 1}) {
      check_prefix(wire, k);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ConstBytes in(data, size);
  // Two limits: the default, and a tiny one to exercise too_long on ordinary frames.
  for (std::size_t max_body : {kDefaultMaxBody, std::size_t{48}}) {
    ConstBytes rest = in;
    while (!rest.empty()) {
      Frame frame;
      const DecodeResult r = decode(rest, frame, max_body);
      if (r.error != DecodeError::none) {
        check(r.consumed == 0, "failed decode consumed bytes");
        break;
      }
      check(r.consumed >= 3 && r.consumed <= rest.size(), "consumed out of range");
      if (const auto* d = std::get_if<Data>(&frame.body)) {
        check(d->payload.data() >= rest.data() &&
                  d->payload.data() + d->payload.size() <= rest.data() + r.consumed,
              "DATA payload outside its frame");
        check(d->offset + d->payload.size() <= kMaxVarint, "DATA end above 2^62-1");
      }
      if (const auto* c = std::get_if<Close>(&frame.body)) {
        check(c->reason.size() <= kMaxCloseReason, "CLOSE reason above limit");
      }
      check_reencode(frame, max_body);
      rest = rest.subspan(r.consumed);
    }
  }
  return 0;
}
