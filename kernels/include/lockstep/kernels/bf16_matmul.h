// The bf16 compute mode of Matmul (matmul.h, Compute::kBf16): bf16 weights
// times activations rounded to bf16, the products accumulated the way the
// AVX512_BF16 dot-product instruction (vdpbf16ps) does, in one fixed order, so
// the same bits on every Isa, thread count, batch and tp split.
//
// For every output (row n, token m) of a pack with Compute::kBf16:
//
// 1. Activations: each x[m][k] is rounded to bf16 by RoundToBf16: to nearest
//    even; a finite value beyond the bf16 range becomes an infinity; a
//    subnormal f32 (|x| < 2^-126) becomes a zero of its sign (bf16 subnormals
//    are never produced); every NaN becomes 0xffc0, x86's default NaN, so that
//    all NaNs of the computation are one bit pattern whichever operand an
//    instruction prefers. Weights: bf16 as stored, subnormals replaced by a
//    zero of their sign when packed.
// 2. Pairs. Inside each canonical segment of matmul.h ([floor(i*K/64),
//    floor((i+1)*K/64)) for the whole reduction), the columns are taken in
//    pairs (k0, k0+1), (k0+2, k0+3), ... from the segment's start; a segment
//    of odd length ends with the pair (k_last, pad) whose pad weight and
//    activation are +0.
// 3. The chain of a segment starts from +0 and, pair by pair in increasing
//    order, does two steps: acc = Bf16DotStep(acc, w[k], x[k]), then
//    acc = Bf16DotStep(acc, w[k+1], x[k+1]). One step is
//      r = w*x + acc rounded once to f32, to nearest even (the product is not
//          rounded on its own; an overflow gives an infinity);
//      if |r|, rounded to 24 significant bits with an unbounded exponent, is
//          below 2^-126: r = a zero of r's sign (flush to zero with tininess
//          detected after rounding);
//    NaN operands give the first of (w, x, acc) quieted, Inf*0 and Inf-Inf
//    the default NaN 0xffc00000 (the kernels see only that one NaN pattern);
//    which is what vdpbf16ps does for each 32-bit lane with the pair in
//    bits 31..16 (first) and 15..0 (second) of both sources: measured on an
//    Intel Xeon (Emerald Rapids) against this definition, bit for bit, NaN
//    payloads included (docs/determinism.md, "bf16 compute").
// 4. The 64 segment sums are added by the balanced tree of matmul.h (plain
//    f32 adds); tensor parallelism cuts along segments exactly as for f32
//    compute, so the shard bounds, the allreduce and the plans are unchanged.
//
// The step is computed one of three ways, the same bits (tests compare
// them): vdpbf16ps where the CPU has AVX512_BF16 (Isa::kAvx512 only); with
// AVX-512 or AVX2, two FMAs per pair with the MXCSR flush-to-zero bit set,
// which is the step's flush (x86 detects tininess after rounding); on any
// Isa (the only way of the scalar build) two FMAs per pair, each followed by
// a vector test for the flush. Which of the first two is faster depends on the CPU: Intel's
// AVX512_BF16 cores issue vdpbf16ps at half the FMA's multiply-add rate, AMD
// Zen 4 at twice; Bf16Step::kAuto measures both once and takes the faster.
#pragma once

#include <cstdint>
#include <string_view>

#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/matmul.h"

namespace lockstep::kernels {

// Step 1: the bf16 an activation is rounded to.
uint16_t RoundToBf16(float x);

// One step of step 3 on f32 values (a, b: bf16 values widened, not subnormal;
// acc: not subnormal). Plain scalar code: the definition the kernels follow.
float Bf16DotStep(float acc, float a, float b);

// The naive reference of the whole contract in plain loops: W given as
// `rows` rows of bf16 (row stride ld) covering the columns of `slice`.
void Bf16MatmulReference(const uint16_t* w, int64_t rows, int64_t ld, ReductionSlice slice,
                         const float* x, int64_t num_tokens, int64_t ldx, float* y, int64_t ldy);

// Whether the CPU has the dot-product instruction (AVX512_BF16; for
// Isa::kAvx512 only).
bool Bf16DotAvailable(Isa isa);

// How the bf16 compute's kernels compute the step.
enum class Bf16Step {
  kAuto,         // kChecked on scalar, kFlushToZero on AVX2; on AVX-512
                 // the faster of kInstruction (where the CPU has it) and
                 // kFlushToZero, measured once, on the first bf16-compute
                 // matmul
  kInstruction,  // vdpbf16ps
  kFlushToZero,  // two FMAs per pair under the MXCSR flush-to-zero bit (AVX-512, AVX2)
  kChecked,      // two FMAs per pair, each followed by a vector flush test
};
std::string_view Bf16StepName(Bf16Step step);  // "auto", "instruction", "ftz", "checked"
// Whether kernels of `isa` can compute the step that way on this CPU.
bool Bf16StepAvailable(Isa isa, Bf16Step step);
// Selects the step for every later bf16-compute matmul (for tests and
// benchmarks; it must not be called while a matmul runs); a step `isa`
// lacks falls back to kAuto. At start-up the environment's
// LOCKSTEP_BF16_DOT (a Bf16StepName, or 0 for "checked") selects it;
// unset, kAuto.
void UseBf16Step(Bf16Step step);
// The step a bf16-compute matmul on `isa` uses now (never kAuto).
Bf16Step Bf16StepFor(Isa isa);

}  // namespace lockstep::kernels
