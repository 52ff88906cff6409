// AVX-512 (F/BW/VL/DQ + F16C + FMA) build of the 16-lane vector types the
// kernel templates are written against. See simd_scalar.h for the contract
// every operation follows; this file only maps each one to one instruction
// (or a fixed short sequence), so the per-lane results are the same bits as
// the scalar build.
//
// Only the per-ISA translation unit kernels_avx512.cc includes this header,
// and everything lives in namespace lockstep::kernels::avx512, so no inline
// function compiled with AVX-512 can be picked by the linker for baseline code.
#pragma once

// GCC 12's AVX-512 headers build some intrinsics on _mm512_undefined_ps(),
// which trips -Wuninitialized when inlined (GCC bug 105593, fixed in 13).
// Diagnostic state is tracked by source location, so ignoring the warning
// for the header's own lines silences only those false positives.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include <cstring>

// The namespace of the build. kernels_avx512.cc takes the default;
// kernels_avx512_vnni.cc (compiled with -mavx512vnni as well) defines it as
// avx512vnni and sets LOCKSTEP_SIMD_VNNI, which changes only how DotU8S8 /
// DotU4S8 are computed (same integers).
#ifndef LOCKSTEP_SIMD_NS
#define LOCKSTEP_SIMD_NS avx512
#endif
#ifndef LOCKSTEP_SIMD_VNNI
#define LOCKSTEP_SIMD_VNNI 0
#endif
// kernels_avx512_bf16.cc (compiled with -mavx512bf16 as well) defines the
// namespace as avx512bf16 and sets LOCKSTEP_SIMD_BF16: the bf16 dot product
// (bf16_matmul.h) is then the vdpbf16ps instruction instead of its emulation.
#ifndef LOCKSTEP_SIMD_BF16
#define LOCKSTEP_SIMD_BF16 0
#endif
// kernels_avx512_ftz.cc defines the namespace as avx512ftz and sets
// LOCKSTEP_SIMD_FTZ: its bf16-compute matmul runs with the MXCSR
// flush-to-zero bit set, so the emulated dot-product step is two bare FMAs
// (the bit is the step's flush) and the segment tree's adds recover the
// subnormal sums the bit would flush (matmul_impl.h).
#ifndef LOCKSTEP_SIMD_FTZ
#define LOCKSTEP_SIMD_FTZ 0
#endif

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline constexpr bool kIsScalarBuild = false;

struct VecF;

struct VecI {
  __m512i v;

  static VecI Zero() { return {_mm512_setzero_si512()}; }
  static VecI Set1(int32_t x) { return {_mm512_set1_epi32(x)}; }
  static VecI Load(const int32_t* p) { return {_mm512_loadu_si512(p)}; }
  friend VecI operator+(VecI a, VecI b) { return {_mm512_add_epi32(a.v, b.v)}; }
  friend VecI operator-(VecI a, VecI b) { return {_mm512_sub_epi32(a.v, b.v)}; }
  friend VecI operator&(VecI a, VecI b) { return {_mm512_and_si512(a.v, b.v)}; }
  static VecI Max(VecI a, VecI b) { return {_mm512_max_epi32(a.v, b.v)}; }
  int32_t ReduceMax() const { return _mm512_reduce_max_epi32(v); }
  int32_t ReduceAdd() const { return _mm512_reduce_add_epi32(v); }
  inline VecF ToFloat() const;
  // The low byte of each lane (values in -128..127), 16 bytes.
  void StoreInt8(int8_t* p) const {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
  }
  template <int kBits>
  VecI ShiftLeft() const {
    return {_mm512_slli_epi32(v, kBits)};
  }
  template <int kBits>
  VecI ShiftRightArith() const {
    return {_mm512_srai_epi32(v, kBits)};
  }
};

struct Mask {
  __mmask16 m;
  static Mask FromBits(uint32_t bits) { return {static_cast<__mmask16>(bits)}; }
  static Mask FirstN(int n) { return FromBits(n >= 16 ? 0xffffu : (1u << n) - 1u); }
};

struct VecF {
  static constexpr int kLanes = 16;
  __m512 v;

  static VecF Zero() { return {_mm512_setzero_ps()}; }
  static VecF Set1(float x) { return {_mm512_set1_ps(x)}; }
  static VecF Load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static VecF LoadN(const float* p, int n) { return {_mm512_maskz_loadu_ps(Mask::FirstN(n).m, p)}; }
  // 16 IEEE binary16 values widened exactly (F16C).
  static VecF LoadF16(const uint16_t* p) {
    return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
  }
  // 16 bfloat16 values widened exactly: zero-extend to 32 bits, shift left 16.
  static VecF LoadBF16(const uint16_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
  }
  static VecF Gather(const float* base, VecI index) {
    return {_mm512_i32gather_ps(index.v, base, 4)};
  }
  void Store(float* p) const { _mm512_storeu_ps(p, v); }
  void StoreN(float* p, int n) const { _mm512_mask_storeu_ps(p, Mask::FirstN(n).m, v); }

  friend VecF operator+(VecF a, VecF b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend VecF operator-(VecF a, VecF b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend VecF operator*(VecF a, VecF b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend VecF operator/(VecF a, VecF b) { return {_mm512_div_ps(a.v, b.v)}; }
  // a*b + c with one rounding.
  static VecF Fma(VecF a, VecF b, VecF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  // x86 semantics: Max(a, b) = a > b ? a : b, Min(a, b) = a < b ? a : b.
  static VecF Max(VecF a, VecF b) { return {_mm512_max_ps(a.v, b.v)}; }
  static VecF Min(VecF a, VecF b) { return {_mm512_min_ps(a.v, b.v)}; }
  static VecF Sqrt(VecF a) { return {_mm512_sqrt_ps(a.v)}; }
  static VecF Select(Mask m, VecF a, VecF b) { return {_mm512_mask_blend_ps(m.m, b.v, a.v)}; }

  VecI Bits() const { return {_mm512_castps_si512(v)}; }
  static VecF FromBits(VecI i) { return {_mm512_castsi512_ps(i.v)}; }
  // Truncation towards zero (exact for the integral values it is used on).
  VecI ToIntTrunc() const { return {_mm512_cvttps_epi32(v)}; }
};

inline VecF VecI::ToFloat() const {
  return {_mm512_cvtepi32_ps(v)};
}

// 64 bytes; byte 4i + j belongs to 32-bit lane i.
struct VecB {
  __m512i v;
  static VecB Load(const uint8_t* p) { return {_mm512_loadu_si512(p)}; }
  // The 4 bytes at p in every lane.
  static VecB Broadcast4(const int8_t* p) {
    int32_t x;
    std::memcpy(&x, p, 4);
    return {_mm512_set1_epi32(x)};
  }
  VecB LowNibbles() const { return {_mm512_and_si512(v, _mm512_set1_epi8(0x0f))}; }
  VecB HighNibbles() const {
    return {_mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f))};
  }
};

// acc[i] + sum_{j<4} u[4i+j] * s[4i+j], u unsigned and s signed bytes, exact
// in int32 (VNNI vpdpbusd; without VNNI u is split into nibbles so that the
// 16-bit pair sums of vpmaddubsw cannot saturate).
inline VecI DotU8S8(VecI acc, VecB u, VecB s) {
#if LOCKSTEP_SIMD_VNNI
  return {_mm512_dpbusd_epi32(acc.v, u.v, s.v)};
#else
  const __m512i lo = _mm512_maddubs_epi16(u.LowNibbles().v, s.v);
  const __m512i hi = _mm512_maddubs_epi16(u.HighNibbles().v, s.v);
  const __m512i sum =
      _mm512_add_epi32(_mm512_madd_epi16(lo, _mm512_set1_epi16(1)),
                       _mm512_madd_epi16(hi, _mm512_set1_epi16(16)));
  return {_mm512_add_epi32(acc.v, sum)};
#endif
}
// The same for u <= 15 (4-bit values): one vpmaddubsw cannot saturate.
inline VecI DotU4S8(VecI acc, VecB u, VecB s) {
#if LOCKSTEP_SIMD_VNNI
  return {_mm512_dpbusd_epi32(acc.v, u.v, s.v)};
#else
  const __m512i p = _mm512_maddubs_epi16(u.v, s.v);
  return {_mm512_add_epi32(acc.v, _mm512_madd_epi16(p, _mm512_set1_epi16(1)))};
#endif
}

// bf16 pairs (bf16_matmul.h): each 32-bit lane holds two bfloat16, the
// first of the pair in bits 31..16. Hi/Lo widen one of them to f32 exactly.
inline VecF Bf16Hi(VecF x) {
  return {_mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(x.v), _mm512_set1_epi32(static_cast<int>(0xffff0000u))))};
}
inline VecF Bf16Lo(VecF x) {
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(x.v), 16))};
}
// Whether some lane holds a value with 0 < |x| <= 2^-126 (the only results
// of an emulated bf16 dot-product step that need a closer look).
inline bool AnyTinyNonzero(VecF x) {
  const __m512i a = _mm512_sub_epi32(
      _mm512_and_si512(_mm512_castps_si512(x.v), _mm512_set1_epi32(0x7fffffff)),
      _mm512_set1_epi32(1));
  return _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32(0x00800000)) != 0;
}
// Whether some lane of r = a + b is a zero although a != -b: under the MXCSR
// flush-to-zero bit, an add whose exact result is subnormal gives a zero.
inline bool AnyFlushedSum(VecF r, VecF a, VecF b) {
  const __mmask16 zero = _mm512_cmp_ps_mask(r.v, _mm512_setzero_ps(), _CMP_EQ_OQ);
  if (zero == 0) return false;
  const __m512 minus_b = _mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(b.v), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
  return _mm512_mask_cmp_ps_mask(zero, a.v, minus_b, _CMP_NEQ_UQ) != 0;
}
#if LOCKSTEP_SIMD_BF16
// acc + the two products of each lane's pair, as vdpbf16ps computes it
// (bf16_matmul.h; w is the instruction's first source).
inline VecF DotBf16Native(VecF acc, VecF w, VecF x) {
  return {_mm512_dpbf16_ps(acc.v, (__m512bh)_mm512_castps_si512(w.v),
                           (__m512bh)_mm512_castps_si512(x.v))};
}
#endif

inline void Prefetch(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
}
inline void PrefetchL2(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
