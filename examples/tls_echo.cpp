// TLS over a rendr Conn: asio::ssl::stream works on a rendr::Conn exactly as on a TCP socket,
// and the connection may change paths underneath without TLS noticing.
//
// One program, both ends on loopback: a listener, a client with two paths to it, a TLS 1.3
// echo server and a client that moves between the paths between messages. Both run as C++20
// coroutines on the program's own io_context; rendr completes each operation there.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "rendr/rendr.hpp"

namespace {

using asio::use_awaitable;
constexpr auto as_tuple = asio::experimental::as_tuple(use_awaitable);

// A throwaway self-signed certificate for "rendr-example", made at start-up so that no key is
// ever stored. A real server loads its own (use_certificate_chain_file, use_private_key_file).
void make_identity(asio::ssl::context& server, asio::ssl::context& client) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("rendr-example"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_EXTENSION* ca = X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "CA:TRUE");
  X509_add_ext(cert, ca, -1);
  X509_EXTENSION_free(ca);
  X509_sign(cert, key, EVP_sha256());

  SSL_CTX_use_certificate(server.native_handle(), cert);
  SSL_CTX_use_PrivateKey(server.native_handle(), key);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(client.native_handle()), cert);  // trust it
  X509_free(cert);
  EVP_PKEY_free(key);
}

// Echoes over TLS until the client's close_notify. The stream owns its Conn (stream<Conn>).
asio::awaitable<void> serve(rendr::Listener& listener, asio::ssl::context& ctx) {
  rendr::Conn conn = co_await listener.async_accept(use_awaitable);
  asio::ssl::stream<rendr::Conn> tls(std::move(conn), ctx);
  co_await tls.async_handshake(asio::ssl::stream_base::server, use_awaitable);
  char data[4096];
  for (;;) {
    auto [ec, n] = co_await tls.async_read_some(asio::buffer(data), as_tuple);
    if (ec) break;  // asio::error::eof: the client sent close_notify
    co_await asio::async_write(tls, asio::buffer(data, n), use_awaitable);
  }
  co_await tls.async_shutdown(as_tuple);  // our close_notify
  tls.next_layer().close();
}

// A path other than the active one that is up, or rendr::kNoPath.
rendr::PathId other_path(const rendr::Conn& conn) {
  for (const auto& p : conn.stats().paths)
    if (p.id != conn.active_path() && p.state == "up") return p.id;
  return rendr::kNoPath;
}

// Sends a few messages over TLS, changing paths before each. The stream borrows the
// application's Conn (stream<Conn&>), which keeps its admin calls at hand.
asio::awaitable<void> talk(rendr::Conn& conn, asio::ssl::context& ctx) {
  asio::ssl::stream<rendr::Conn&> tls(conn, ctx);
  tls.set_verify_mode(asio::ssl::verify_peer);
  tls.set_verify_callback(asio::ssl::host_name_verification("rendr-example"));
  co_await tls.async_handshake(asio::ssl::stream_base::client, use_awaitable);
  std::cout << "TLS version: " << SSL_get_version(tls.native_handle()) << "\n";

  for (int i = 1; i <= 3; ++i) {
    if (const rendr::PathId next = other_path(conn); next != rendr::kNoPath) conn.migrate(next);
    const std::string message =
        "message " + std::to_string(i) + " over path " + std::to_string(conn.active_path());
    co_await asio::async_write(tls, asio::buffer(message), use_awaitable);
    std::string reply(message.size(), '\0');
    co_await asio::async_read(tls, asio::buffer(reply), use_awaitable);
    if (reply != message) throw std::runtime_error("echo mismatch");
    std::cout << "echoed: " << reply << "\n";
  }
  co_await tls.async_shutdown(as_tuple);  // close_notify both ways
  conn.close();
  std::cout << "migrations: " << conn.migration_count() << "\n";
}

}  // namespace

int main() {
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(server_ctx.native_handle(), TLS1_3_VERSION);
  SSL_CTX_set_min_proto_version(client_ctx.native_handle(), TLS1_3_VERSION);
  make_identity(server_ctx, client_ctx);

  rendr::Listener listener = rendr::listen_tcp("127.0.0.1:0");
  const std::string address = "127.0.0.1:" + std::to_string(listener.port());
  rendr::Dialer dialer;
  dialer.paths = {rendr::PathSpec::parse(address), rendr::PathSpec::parse(address)};  // two paths
  rendr::Conn conn = dialer.dial();

  asio::io_context io;
  bool ok = true;
  auto report = [&](std::exception_ptr e) {
    if (!e) return;
    ok = false;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << "error: " << x.what() << "\n";
    }
  };
  asio::co_spawn(io, serve(listener, server_ctx), report);
  asio::co_spawn(io, talk(conn, client_ctx), report);
  io.run();
  listener.close();
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
