// Token selection: argmax, and temperature / top-k / top-p sampling driven by
// a counter-based random generator, so a request's tokens depend only on
// (seed, request stream, position): never on batch neighbours, rank count or
// timing.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "lockstep/kernels/isa.h"

namespace lockstep::kernels {

// Philox4x32-10 (Salmon et al., SC'11): 4 x 32-bit outputs for a 128-bit
// counter and a 64-bit key.
std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// A uniform float in [0, 1) with 24 random bits, from Philox keyed by `seed`
// with counter (stream, position). `stream` identifies the request (a hash of
// its id), `position` the token position being sampled.
float UniformAt(uint64_t seed, uint64_t stream, uint64_t position);

// Index of the largest value; ties go to the lowest index. NaN is never
// chosen over a number.
int32_t Argmax(const float* x, int64_t n);

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax)
  int top_k = 0;             // 0: no top-k cut
  float top_p = 1.0f;        // 1: no nucleus cut
};

// temperature <= 0 (or NaN): Argmax(logits). Otherwise:
//   z_i = logits_i / temperature; p = softmax(z) as in activation.h;
//   u01 = UniformAt(seed, stream, position).
// Without a cut (top_k <= 0 or top_k >= vocab, and top_p >= 1):
//   the candidates are all tokens in increasing id order (no sort needed);
//   total = p_0 + p_1 + ... (sequential in that order); u = u01 * total; the
//   token is the first candidate whose running sum exceeds u.
// With a cut:
//   candidates sorted by probability descending, ties by lower id;
//   keep the first top_k (if 0 < top_k < vocab); then, if top_p < 1, the
//   shortest prefix of those whose cumulative probability (sequential sum in
//   that order) reaches top_p (at least one candidate; all kept if the sum
//   never reaches it); total = sum of the kept probabilities (sequential, in
//   order); u = u01 * total; the token is the first kept candidate whose
//   running sum exceeds u.
// In both cases candidates with probability 0 are skipped by the running sum,
// and if rounding leaves no running sum above u the last candidate with a
// nonzero probability is chosen. NaN probabilities are never candidates; if
// no probability is positive (e.g. a NaN or +inf logit), Argmax(logits).
// The implementation sorts only as deep as the cuts need, but the result is
// that of the full sort. `scratch` holds the probabilities and is reused
// between calls to avoid allocation.
int32_t Sample(Isa isa, const float* logits, int64_t vocab, const SamplingParams& params,
               uint64_t seed, uint64_t stream, uint64_t position, std::vector<float>* scratch);

}  // namespace lockstep::kernels
