// AVX2 + FMA + F16C build of the 16-lane vector types the kernel templates are
// written against: each 16-lane value is two 8-lane registers (lo = lanes
// 0..7, hi = lanes 8..15). See simd_scalar.h for the contract every operation
// follows; each maps to the same IEEE operation per lane as the other builds.
//
// Only kernels_avx2.cc includes this header; everything lives in namespace
// lockstep::kernels::avx2 (see simd_avx512.h for why).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

// kernels_avx2_vnni.cc (compiled with -mavxvnni as well) defines the
// namespace as avx2vnni and sets LOCKSTEP_SIMD_VNNI (see simd_avx512.h).
#ifndef LOCKSTEP_SIMD_NS
#define LOCKSTEP_SIMD_NS avx2
#endif
#ifndef LOCKSTEP_SIMD_VNNI
#define LOCKSTEP_SIMD_VNNI 0
#endif
// kernels_avx2_ftz.cc defines the namespace as avx2ftz and sets
// LOCKSTEP_SIMD_FTZ (see simd_avx512.h).
#ifndef LOCKSTEP_SIMD_FTZ
#define LOCKSTEP_SIMD_FTZ 0
#endif

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline constexpr bool kIsScalarBuild = false;

struct VecF;

// Horizontal max / sum of 8 int32 lanes.
inline int32_t ReduceMax8(__m256i v) {
  __m128i m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  return _mm_cvtsi128_si32(m);
}
inline int32_t ReduceAdd8(__m256i v) {
  __m128i m = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  return _mm_cvtsi128_si32(m);
}

struct VecI {
  __m256i lo, hi;

  static VecI Zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static VecI Set1(int32_t x) { return {_mm256_set1_epi32(x), _mm256_set1_epi32(x)}; }
  friend VecI operator&(VecI a, VecI b) {
    return {_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)};
  }
  static VecI Max(VecI a, VecI b) {
    return {_mm256_max_epi32(a.lo, b.lo), _mm256_max_epi32(a.hi, b.hi)};
  }
  int32_t ReduceMax() const { return ReduceMax8(_mm256_max_epi32(lo, hi)); }
  int32_t ReduceAdd() const { return ReduceAdd8(_mm256_add_epi32(lo, hi)); }
  inline VecF ToFloat() const;
  // The low byte of each lane (values in -128..127), 16 bytes.
  void StoreInt8(int8_t* p) const {
    // packs interleaves 128-bit halves: [lo0-3 hi0-3 | lo4-7 hi4-7]; put the
    // quarters back in order before narrowing again.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xd8);
    const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), b);
  }
  static VecI Load(const int32_t* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 8))};
  }
  friend VecI operator+(VecI a, VecI b) {
    return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)};
  }
  friend VecI operator-(VecI a, VecI b) {
    return {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)};
  }
  template <int kBits>
  VecI ShiftLeft() const {
    return {_mm256_slli_epi32(lo, kBits), _mm256_slli_epi32(hi, kBits)};
  }
  template <int kBits>
  VecI ShiftRightArith() const {
    return {_mm256_srai_epi32(lo, kBits), _mm256_srai_epi32(hi, kBits)};
  }
};

// A lane mask as two all-ones / all-zeros 8-lane vectors.
struct Mask {
  __m256i lo, hi;
  static Mask FromBits(uint32_t bits) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i b_lo = _mm256_set1_epi32(static_cast<int32_t>(bits & 0xffu));
    __m256i b_hi = _mm256_set1_epi32(static_cast<int32_t>((bits >> 8) & 0xffu));
    return {_mm256_cmpeq_epi32(_mm256_and_si256(b_lo, lane_bit), lane_bit),
            _mm256_cmpeq_epi32(_mm256_and_si256(b_hi, lane_bit), lane_bit)};
  }
  static Mask FirstN(int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i nv = _mm256_set1_epi32(n);
    return {_mm256_cmpgt_epi32(nv, lane),
            _mm256_cmpgt_epi32(nv, _mm256_add_epi32(lane, _mm256_set1_epi32(8)))};
  }
};

struct VecF {
  static constexpr int kLanes = 16;
  __m256 lo, hi;

  static VecF Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static VecF Set1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static VecF Load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static VecF LoadN(const float* p, int n) {
    Mask m = Mask::FirstN(n);
    return {_mm256_maskload_ps(p, m.lo), _mm256_maskload_ps(p + 8, m.hi)};
  }
  static VecF LoadF16(const uint16_t* p) {
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
  }
  static VecF LoadBF16(const uint16_t* p) {
    __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)),
            _mm256_castsi256_ps(_mm256_slli_epi32(b, 16))};
  }
  static VecF Gather(const float* base, VecI index) {
    return {_mm256_i32gather_ps(base, index.lo, 4), _mm256_i32gather_ps(base, index.hi, 4)};
  }
  void Store(float* p) const {
    _mm256_storeu_ps(p, lo);
    _mm256_storeu_ps(p + 8, hi);
  }
  void StoreN(float* p, int n) const {
    Mask m = Mask::FirstN(n);
    _mm256_maskstore_ps(p, m.lo, lo);
    _mm256_maskstore_ps(p + 8, m.hi, hi);
  }

  friend VecF operator+(VecF a, VecF b) {
    return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
  }
  friend VecF operator-(VecF a, VecF b) {
    return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)};
  }
  friend VecF operator*(VecF a, VecF b) {
    return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
  }
  friend VecF operator/(VecF a, VecF b) {
    return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)};
  }
  static VecF Fma(VecF a, VecF b, VecF c) {
    return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
  }
  static VecF Max(VecF a, VecF b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
  static VecF Min(VecF a, VecF b) { return {_mm256_min_ps(a.lo, b.lo), _mm256_min_ps(a.hi, b.hi)}; }
  static VecF Sqrt(VecF a) { return {_mm256_sqrt_ps(a.lo), _mm256_sqrt_ps(a.hi)}; }
  static VecF Select(Mask m, VecF a, VecF b) {
    return {_mm256_blendv_ps(b.lo, a.lo, _mm256_castsi256_ps(m.lo)),
            _mm256_blendv_ps(b.hi, a.hi, _mm256_castsi256_ps(m.hi))};
  }

  VecI Bits() const { return {_mm256_castps_si256(lo), _mm256_castps_si256(hi)}; }
  static VecF FromBits(VecI i) { return {_mm256_castsi256_ps(i.lo), _mm256_castsi256_ps(i.hi)}; }
  // Truncation towards zero (exact for the integral values it is used on).
  VecI ToIntTrunc() const { return {_mm256_cvttps_epi32(lo), _mm256_cvttps_epi32(hi)}; }
};

inline VecF VecI::ToFloat() const {
  return {_mm256_cvtepi32_ps(lo), _mm256_cvtepi32_ps(hi)};
}

// bf16 pairs (bf16_matmul.h): each 32-bit lane holds two bfloat16, the
// first of the pair in bits 31..16. Hi/Lo widen one of them to f32 exactly.
inline VecF Bf16Hi(VecF x) {
  const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0xffff0000u)));
  return {_mm256_and_ps(x.lo, m), _mm256_and_ps(x.hi, m)};
}
inline VecF Bf16Lo(VecF x) {
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(x.lo), 16)),
          _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(x.hi), 16))};
}
// Whether some lane holds a value with 0 < |x| <= 2^-126: (|bits| - 1) >> 23
// is 0 exactly for those (a zero wraps to 0xffffffff).
inline bool AnyTinyNonzero(VecF x) {
  const __m256i abs = _mm256_set1_epi32(0x7fffffff), one = _mm256_set1_epi32(1);
  const __m256i a = _mm256_srli_epi32(
      _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(x.lo), abs), one), 23);
  const __m256i b = _mm256_srli_epi32(
      _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(x.hi), abs), one), 23);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i tiny = _mm256_or_si256(_mm256_cmpeq_epi32(a, zero), _mm256_cmpeq_epi32(b, zero));
  return _mm256_movemask_epi8(tiny) != 0;
}
// Whether some lane of r = a + b is a zero although a != -b: under the MXCSR
// flush-to-zero bit, an add whose exact result is subnormal gives a zero.
inline bool AnyFlushedSum(VecF r, VecF a, VecF b) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  const __m256 lo = _mm256_and_ps(_mm256_cmp_ps(r.lo, zero, _CMP_EQ_OQ),
                                  _mm256_cmp_ps(a.lo, _mm256_xor_ps(b.lo, sign), _CMP_NEQ_UQ));
  const __m256 hi = _mm256_and_ps(_mm256_cmp_ps(r.hi, zero, _CMP_EQ_OQ),
                                  _mm256_cmp_ps(a.hi, _mm256_xor_ps(b.hi, sign), _CMP_NEQ_UQ));
  return _mm256_movemask_ps(_mm256_or_ps(lo, hi)) != 0;
}

// 64 bytes as two halves; byte 4i + j belongs to 32-bit lane i (lo holds
// lanes 0..7).
struct VecB {
  __m256i lo, hi;
  static VecB Load(const uint8_t* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))};
  }
  static VecB Broadcast4(const int8_t* p) {
    int32_t x;
    std::memcpy(&x, p, 4);
    const __m256i v = _mm256_set1_epi32(x);
    return {v, v};
  }
  VecB LowNibbles() const {
    const __m256i m = _mm256_set1_epi8(0x0f);
    return {_mm256_and_si256(lo, m), _mm256_and_si256(hi, m)};
  }
  VecB HighNibbles() const {
    const __m256i m = _mm256_set1_epi8(0x0f);
    return {_mm256_and_si256(_mm256_srli_epi16(lo, 4), m),
            _mm256_and_si256(_mm256_srli_epi16(hi, 4), m)};
  }
};

#if LOCKSTEP_SIMD_VNNI
inline __m256i DotHalf(__m256i acc, __m256i u, __m256i s) {
  return _mm256_dpbusd_avx_epi32(acc, u, s);
}
#endif
// acc[i] + sum_{j<4} u[4i+j] * s[4i+j], exact in int32 (AVX-VNNI vpdpbusd;
// without it u is split into nibbles so vpmaddubsw cannot saturate).
inline VecI DotU8S8(VecI acc, VecB u, VecB s) {
#if LOCKSTEP_SIMD_VNNI
  return {DotHalf(acc.lo, u.lo, s.lo), DotHalf(acc.hi, u.hi, s.hi)};
#else
  const VecB l = u.LowNibbles(), h = u.HighNibbles();
  const __m256i one = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
  auto half = [&](__m256i a, __m256i ul, __m256i uh, __m256i sv) {
    const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(ul, sv), one);
    const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(uh, sv), sixteen);
    return _mm256_add_epi32(a, _mm256_add_epi32(pl, ph));
  };
  return {half(acc.lo, l.lo, h.lo, s.lo), half(acc.hi, l.hi, h.hi, s.hi)};
#endif
}
// The same for u <= 15.
inline VecI DotU4S8(VecI acc, VecB u, VecB s) {
#if LOCKSTEP_SIMD_VNNI
  return {DotHalf(acc.lo, u.lo, s.lo), DotHalf(acc.hi, u.hi, s.hi)};
#else
  const __m256i one = _mm256_set1_epi16(1);
  return {_mm256_add_epi32(acc.lo, _mm256_madd_epi16(_mm256_maddubs_epi16(u.lo, s.lo), one)),
          _mm256_add_epi32(acc.hi, _mm256_madd_epi16(_mm256_maddubs_epi16(u.hi, s.hi), one))};
#endif
}

inline void Prefetch(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
}
inline void PrefetchL2(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
