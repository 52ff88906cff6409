#include "lockstep/job/logits_hash.h"

#include <openssl/evp.h>

#include <bit>
#include <cstring>
#include <vector>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

struct LogitsHasher::Context {
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx;
  bool finished = false;
};

namespace {

std::string Hex(const unsigned char* digest, unsigned size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * size, '0');
  for (unsigned i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[digest[i] >> 4];
    hex[2 * i + 1] = kDigits[digest[i] & 15];
  }
  return hex;
}

}  // namespace

LogitsHasher::LogitsHasher() : context_(std::make_unique<Context>()) {
  context_->ctx.reset(EVP_MD_CTX_new());
  LOCKSTEP_CHECK(context_->ctx != nullptr, "EVP_MD_CTX_new failed (out of memory)");
  LOCKSTEP_CHECK(EVP_DigestInit_ex(context_->ctx.get(), EVP_sha256(), nullptr) == 1,
                 "EVP_DigestInit_ex(sha256) failed");
}

LogitsHasher::~LogitsHasher() = default;
LogitsHasher::LogitsHasher(LogitsHasher&&) noexcept = default;
LogitsHasher& LogitsHasher::operator=(LogitsHasher&&) noexcept = default;

void LogitsHasher::AddStep(const float* logits, int64_t vocab) {
  LOCKSTEP_CHECK(!context_->finished, "AddStep after Finish");
  // x86-64 is little-endian, so the in-memory bytes are the hashed bytes.
  static_assert(std::endian::native == std::endian::little);
  LOCKSTEP_CHECK(EVP_DigestUpdate(context_->ctx.get(), logits,
                                  static_cast<size_t>(vocab) * sizeof(float)) == 1);
}

std::string LogitsHasher::Finish() {
  LOCKSTEP_CHECK(!context_->finished, "Finish called twice");
  context_->finished = true;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  LOCKSTEP_CHECK(EVP_DigestFinal_ex(context_->ctx.get(), digest, &size) == 1);
  return Hex(digest, size);
}

std::string Sha256Hex(const void* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned digest_size = 0;
  LOCKSTEP_CHECK(EVP_Digest(data, size, digest, &digest_size, EVP_sha256(), nullptr) == 1);
  return Hex(digest, digest_size);
}

}  // namespace lockstep::runtime
