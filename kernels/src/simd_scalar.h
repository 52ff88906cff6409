// Portable build of the 16-lane vector types the kernel templates are written
// against, and the contract every build (simd_avx2.h, simd_avx512.h) follows.
//
// Why one 16-lane type for every instruction set: a kernel written once as a
// template over VecF executes, per lane, exactly the same sequence of IEEE
// operations whichever build instantiates it, so the scalar, AVX2 and AVX-512
// paths give the same bits by construction (docs/determinism.md). Sixteen lanes
// is one AVX-512 register, two AVX2 registers, or a 16-element loop here; it
// is also kPanelWidth, so one VecF holds one packed matmul panel row.
//
// The contract, per lane i (0..15):
//   VecF::Zero/Set1/Load/LoadN/Store/StoreN  plain copies; the N forms touch
//       only lanes < n (other lanes load as +0 and memory beyond is not read)
//   LoadF16/LoadBF16  exact widening of 16 binary16 / bfloat16 values
//   Gather(base, idx) lane i = base[idx[i]]
//   + - * /  IEEE-754 single precision, round to nearest even
//   Fma(a, b, c)      a*b + c rounded once
//   Max(a, b) = a > b ? a : b     Min(a, b) = a < b ? a : b   (x86 semantics:
//       the second operand is returned when either is NaN or both are equal)
//   Sqrt              IEEE square root
//   Select(m, a, b) = m[i] ? a : b
//   Bits / FromBits   bit casts to and from VecI (32-bit integer lanes)
//   VecI + -, ShiftLeft<n>, ShiftRightArith<n>   two's complement, 32 bits
//   Mask::FromBits(b) lane i set iff bit i of b; Mask::FirstN(n) lanes < n
//
// The build compiles with -ffp-contract=off, so a*b+c written with operators
// stays two roundings; every fused multiply-add is an explicit Fma.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "lockstep/base/dtype.h"

#define LOCKSTEP_SIMD_NS scalar

namespace lockstep::kernels::scalar {

inline constexpr bool kIsScalarBuild = true;

struct VecF;

struct VecI {
  int32_t v[16];

  static VecI Zero() { return Set1(0); }
  static VecI Set1(int32_t x) {
    VecI r;
    for (int i = 0; i < 16; ++i) r.v[i] = x;
    return r;
  }
  static VecI Load(const int32_t* p) {
    VecI r;
    std::memcpy(r.v, p, sizeof(r.v));
    return r;
  }
  // Wrapping arithmetic, done in uint32 to avoid signed overflow.
  friend VecI operator+(VecI a, VecI b) {
    for (int i = 0; i < 16; ++i) {
      a.v[i] = static_cast<int32_t>(static_cast<uint32_t>(a.v[i]) + static_cast<uint32_t>(b.v[i]));
    }
    return a;
  }
  friend VecI operator-(VecI a, VecI b) {
    for (int i = 0; i < 16; ++i) {
      a.v[i] = static_cast<int32_t>(static_cast<uint32_t>(a.v[i]) - static_cast<uint32_t>(b.v[i]));
    }
    return a;
  }
  friend VecI operator&(VecI a, VecI b) {
    for (int i = 0; i < 16; ++i) a.v[i] &= b.v[i];
    return a;
  }
  static VecI Max(VecI a, VecI b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  int32_t ReduceMax() const {
    int32_t m = v[0];
    for (int i = 1; i < 16; ++i) m = m > v[i] ? m : v[i];
    return m;
  }
  int32_t ReduceAdd() const {
    uint32_t s = 0;
    for (int i = 0; i < 16; ++i) s += static_cast<uint32_t>(v[i]);
    return static_cast<int32_t>(s);
  }
  inline VecF ToFloat() const;
  void StoreInt8(int8_t* p) const {
    for (int i = 0; i < 16; ++i) p[i] = static_cast<int8_t>(v[i]);
  }
  template <int kBits>
  VecI ShiftLeft() const {
    VecI r;
    for (int i = 0; i < 16; ++i)
      r.v[i] = static_cast<int32_t>(static_cast<uint32_t>(v[i]) << kBits);
    return r;
  }
  template <int kBits>
  VecI ShiftRightArith() const {
    VecI r;
    for (int i = 0; i < 16; ++i) r.v[i] = v[i] >> kBits;  // arithmetic in C++20
    return r;
  }
};

struct Mask {
  uint32_t bits;
  static Mask FromBits(uint32_t b) { return {b & 0xffffu}; }
  static Mask FirstN(int n) { return FromBits(n >= 16 ? 0xffffu : (1u << n) - 1u); }
};

struct VecF {
  static constexpr int kLanes = 16;
  float v[16];

  static VecF Zero() { return Set1(0.0f); }
  static VecF Set1(float x) {
    VecF r;
    for (int i = 0; i < 16; ++i) r.v[i] = x;
    return r;
  }
  static VecF Load(const float* p) {
    VecF r;
    std::memcpy(r.v, p, sizeof(r.v));
    return r;
  }
  static VecF LoadN(const float* p, int n) {
    VecF r = Zero();
    for (int i = 0; i < n && i < 16; ++i) r.v[i] = p[i];
    return r;
  }
  static VecF LoadF16(const uint16_t* p) {
    VecF r;
    for (int i = 0; i < 16; ++i) r.v[i] = F16ToF32(p[i]);
    return r;
  }
  static VecF LoadBF16(const uint16_t* p) {
    VecF r;
    for (int i = 0; i < 16; ++i) r.v[i] = Bf16ToF32(p[i]);
    return r;
  }
  static VecF Gather(const float* base, VecI index) {
    VecF r;
    for (int i = 0; i < 16; ++i) r.v[i] = base[index.v[i]];
    return r;
  }
  void Store(float* p) const { std::memcpy(p, v, sizeof(v)); }
  void StoreN(float* p, int n) const {
    for (int i = 0; i < n && i < 16; ++i) p[i] = v[i];
  }

  friend VecF operator+(VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] + b.v[i];
    return a;
  }
  friend VecF operator-(VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] - b.v[i];
    return a;
  }
  friend VecF operator*(VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] * b.v[i];
    return a;
  }
  friend VecF operator/(VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] / b.v[i];
    return a;
  }
  static VecF Fma(VecF a, VecF b, VecF c) {
    for (int i = 0; i < 16; ++i) c.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
    return c;
  }
  static VecF Max(VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  static VecF Min(VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  static VecF Sqrt(VecF a) {
    for (int i = 0; i < 16; ++i) a.v[i] = std::sqrt(a.v[i]);
    return a;
  }
  static VecF Select(Mask m, VecF a, VecF b) {
    for (int i = 0; i < 16; ++i) a.v[i] = ((m.bits >> i) & 1u) ? a.v[i] : b.v[i];
    return a;
  }

  VecI Bits() const {
    VecI r;
    std::memcpy(r.v, v, sizeof(v));
    return r;
  }
  static VecF FromBits(VecI i) {
    VecF r;
    std::memcpy(r.v, i.v, sizeof(r.v));
    return r;
  }
  // Truncation towards zero; used only on integral values in int32 range.
  VecI ToIntTrunc() const {
    VecI r;
    for (int i = 0; i < 16; ++i) r.v[i] = static_cast<int32_t>(v[i]);
    return r;
  }
};

inline VecF VecI::ToFloat() const {
  VecF r;
  for (int i = 0; i < 16; ++i) r.v[i] = static_cast<float>(v[i]);
  return r;
}

// bf16 pairs (bf16_matmul.h): each 32-bit lane holds two bfloat16, the
// first of the pair in bits 31..16. Hi/Lo widen one of them to f32 exactly.
inline VecF Bf16Hi(VecF x) {
  VecI b = x.Bits();
  for (int i = 0; i < 16; ++i) b.v[i] = static_cast<int32_t>(static_cast<uint32_t>(b.v[i]) & 0xffff0000u);
  return VecF::FromBits(b);
}
inline VecF Bf16Lo(VecF x) {
  VecI b = x.Bits();
  for (int i = 0; i < 16; ++i) b.v[i] = static_cast<int32_t>(static_cast<uint32_t>(b.v[i]) << 16);
  return VecF::FromBits(b);
}
// Whether some lane holds a value with 0 < |x| <= 2^-126.
inline bool AnyTinyNonzero(VecF x) {
  const VecI b = x.Bits();
  bool any = false;
  for (int i = 0; i < 16; ++i) {
    any |= (static_cast<uint32_t>(b.v[i]) & 0x7fffffffu) - 1u < 0x00800000u;
  }
  return any;
}

// 64 bytes; byte 4i + j belongs to 32-bit lane i.
struct VecB {
  uint8_t v[64];
  static VecB Load(const uint8_t* p) {
    VecB r;
    std::memcpy(r.v, p, 64);
    return r;
  }
  static VecB Broadcast4(const int8_t* p) {
    VecB r;
    for (int i = 0; i < 16; ++i) std::memcpy(r.v + 4 * i, p, 4);
    return r;
  }
  VecB LowNibbles() const {
    VecB r;
    for (int i = 0; i < 64; ++i) r.v[i] = v[i] & 15u;
    return r;
  }
  VecB HighNibbles() const {
    VecB r;
    for (int i = 0; i < 64; ++i) r.v[i] = v[i] >> 4;
    return r;
  }
};

// acc[i] + sum_{j<4} u[4i+j] * s[4i+j] (u unsigned, s signed bytes), exact.
inline VecI DotU8S8(VecI acc, const VecB& u, const VecB& s) {
  for (int i = 0; i < 16; ++i) {
    int32_t sum = 0;
    for (int j = 0; j < 4; ++j) {
      sum += static_cast<int32_t>(u.v[4 * i + j]) * static_cast<int8_t>(s.v[4 * i + j]);
    }
    acc.v[i] += sum;
  }
  return acc;
}
inline VecI DotU4S8(VecI acc, const VecB& u, const VecB& s) {
  return DotU8S8(acc, u, s);
}

inline void Prefetch(const void*) {}
inline void PrefetchL2(const void*) {}

}  // namespace lockstep::kernels::scalar
