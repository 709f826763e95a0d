#pragma once
// An errno value as the error code of rendr's Asio flavour, in the system category that maps
// to the portable std::errc conditions (Asio's own system category does not, in standalone Asio),
// so callers may compare it with std::errc::invalid_argument and the like.
#include <system_error>

#include "rendr/asio.hpp"

namespace rendr::carrier {

inline error_code errno_code(int value) {
#if defined(RENDR_ASIO_BOOST)
  return error_code(value, boost::system::system_category());
#else
  return error_code(value, std::system_category());
#endif
}

}  // namespace rendr::carrier
