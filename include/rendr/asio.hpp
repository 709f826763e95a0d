#pragma once
// The Asio rendr is built with: standalone Asio (the default) or Boost.Asio (built with
// -DRENDR_ASIO=boost; the installed CMake package and rendr.pc then define RENDR_ASIO_BOOST=1
// for the application). Every public header names Asio through this file only:
//  - rendr::asio is the Asio namespace (`asio` or `boost::asio`), so code in namespace rendr, and
//    an application that wants to stay flavour-neutral, writes rendr::asio::buffer etc.;
//  - rendr::error_code is the error code of that Asio's completion signatures (std::error_code
//    or boost::system::error_code; the two convert into each other). rendr's own codes
//    (rendr::errc) compare equal through either;
//  - rendr::system_error is the exception that Asio's throwing calls throw (rendr's own throwing
//    calls throw std::system_error in both flavours).
// The two flavours are different ABIs: an application compiles with the definitions the library
// was built with (the package carries them), and mixing them is refused here. (The API
// reference shows the Boost flavour's declarations.)
#include <system_error>

#if defined(RENDR_ASIO_BOOST)
#if defined(ASIO_STANDALONE)
#error "rendr was built with Boost.Asio (RENDR_ASIO_BOOST) but ASIO_STANDALONE is defined"
#endif
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace rendr {
// The Asio rendr is built with: Boost.Asio.
namespace asio = ::boost::asio;
// The error code of Asio's completion signatures: boost::system::error_code.
using error_code = ::boost::system::error_code;
// What Asio's throwing calls throw: boost::system::system_error.
using system_error = ::boost::system::system_error;
}  // namespace rendr
#else
#if !defined(ASIO_STANDALONE)
#error "rendr was built with standalone Asio: compile with its definitions (ASIO_STANDALONE ...)"
#endif
#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>

namespace rendr {
// The Asio rendr is built with: standalone Asio.
namespace asio = ::asio;
// The error code of Asio's completion signatures: std::error_code.
using error_code = std::error_code;
// What Asio's throwing calls throw: std::system_error.
using system_error = std::system_error;
}  // namespace rendr
#endif
