// SHA-256 over the logits a request produced: the fingerprint that the
// determinism tests compare between runs (batch sizes, thread counts,
// instruction sets, and in issue 5 rank counts).
//
// The hashed bytes are the f32 logits of every generated step, in step order,
// each step the whole vocabulary in token-id order, each value as its 4
// IEEE-754 bytes in little-endian order. So for a request with n generated
// tokens and vocabulary V, the hash covers n * V * 4 bytes, and
//   hashlib.sha256(np.asarray(steps, dtype='<f4').tobytes()).hexdigest()
// reproduces it.
//
// Uses OpenSSL's EVP interface; the context is owned (RAII). Not thread-safe:
// one hasher per request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace lockstep::runtime {

class LogitsHasher {
 public:
  LogitsHasher();
  ~LogitsHasher();
  LogitsHasher(LogitsHasher&&) noexcept;
  LogitsHasher& operator=(LogitsHasher&&) noexcept;

  // Adds one step's logits [vocab] f32.
  void AddStep(const float* logits, int64_t vocab);
  // The digest as 64 lowercase hex digits. Ends the hash: call once.
  std::string Finish();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// SHA-256 of a byte string as hex (for tests and for hashing ids).
std::string Sha256Hex(const void* data, size_t size);

}  // namespace lockstep::runtime
