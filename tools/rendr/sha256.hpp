#pragma once
// Incremental SHA-256 (OpenSSL EVP), used to prove that a transfer arrived intact.
#include <cstddef>
#include <memory>
#include <span>
#include <string>

struct evp_md_ctx_st;

namespace rendr::cli {

class Sha256 {
 public:
  Sha256();

  void update(std::span<const std::byte> bytes);
  void update(const void* data, std::size_t size);
  // Finishes the hash; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

}  // namespace rendr::cli
