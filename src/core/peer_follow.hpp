#pragma once
// Server side of prime mode: following the client's active path, judged from its frames.
//
// The client sends its new DATA and its ACKs on its active path; ACK copies it sends on other
// paths carry the COPY flag and are never followed (docs/protocol.md §4). A frame that advances
// the stream (DATA past the highest end seen, an ACK past the highest delivered seen) on another
// path means the client moved there. But DATA and ACKs are two separate orders: after the
// client switched, an ACK it sent just before may still arrive on the path it left (a slower
// one) after its first DATA arrived on the new path, and the other way round. So after a
// follow, the kind of frame that has not yet shown up on the new path cannot pull the flow back
// to the path just left; anything sent after the switch is higher than anything sent before,
// so once that kind shows up on the new path, the high mark rejects the stale ones anyway.
#include "core/types.hpp"

namespace rendr::core {

class PeerFollow {
 public:
  enum class Signal { data, ack };

  // A non-copy DATA or ACK arrived on `path` while `active` is our active path; `advances`:
  // it is past the highest seen of its kind. Returns true if the server should move to `path`.
  bool should_follow(Signal signal, PathId path, PathId active, bool advances) {
    bool& awaited = awaiting_[static_cast<int>(signal)];
    if (path == active) {
      if (active == joined_) awaited = false;
      return false;
    }
    if (!advances) return false;
    if (active == joined_ && path == left_ && awaited) return false;  // sent before the switch
    left_ = active;
    joined_ = path;
    awaiting_[0] = awaiting_[1] = true;
    awaited = false;
    return true;
  }

 private:
  PathId left_ = kNoPath;
  PathId joined_ = kNoPath;
  bool awaiting_[2] = {false, false};  // per Signal: not yet seen on `joined_` since the follow
};

}  // namespace rendr::core
