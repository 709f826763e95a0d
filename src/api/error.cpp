// The rendr error category.
#include "rendr/error.hpp"

namespace rendr {

namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "rendr"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::migration_budget_exceeded:
        return "no usable path for longer than the migration budget";
      case errc::illegal_mode_switch:
        return "illegal mode switch (race <-> bond)";
      case errc::protocol_error:
        return "the peer broke the rendr protocol";
      case errc::peer_aborted:
        return "the peer aborted the flow";
      case errc::aborted:
        return "the flow was aborted locally";
      case errc::handshake_failed:
        return "the opening handshake did not complete";
      case errc::no_such_path:
        return "no such path (unknown, or not up)";
      case errc::last_path:
        return "cannot remove the last path";
      case errc::bad_path_spec:
        return "bad or unsupported path spec";
      case errc::not_connected:
        return "not connected";
      case errc::listener_closed:
        return "listener closed";
      case errc::authentication_failed:
        return "authentication failed (pre-shared keys differ)";
      case errc::blocking_call_on_engine_thread:
        return "blocking call on a thread running the engine's io_context (it would deadlock); "
               "use async_dial / async_accept / async_read_some / async_write_some there";
      case errc::message_too_large:
        return "message larger than the packet flow's limit (refused, not truncated)";
      case errc::message_buffer_too_small:
        return "receive buffer smaller than the next message (it stays queued)";
    }
    return "unknown rendr error";
  }

  // The portable meaning, where one exists, so `ec == std::errc::timed_out` works; the others
  // are conditions of this category only.
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::migration_budget_exceeded:
        return std::errc::timed_out;
      case errc::peer_aborted:
        return std::errc::connection_aborted;
      case errc::aborted:
        return std::errc::operation_canceled;
      case errc::protocol_error:
        return std::errc::protocol_error;
      case errc::not_connected:
        return std::errc::not_connected;
      case errc::bad_path_spec:
        return std::errc::invalid_argument;
      case errc::message_too_large:
        return std::errc::message_size;
      default:
        return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

}  // namespace rendr
