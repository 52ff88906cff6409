// Element-wise and row kernels, written once over the 16-lane VecF of the
// including build (see simd_scalar.h). Included only by kernels_<isa>.cc,
// after the build's simd header; everything is in that build's namespace.
//
// Element-wise kernels give the same bits whichever way the elements are cut
// into vectors, so tails simply use LoadN/StoreN. Row reductions (the sums of
// Softmax and RMSNorm) follow the canonical segmented tree of matmul.h.

namespace lockstep::kernels::LOCKSTEP_SIMD_NS {

inline float Lane0(VecF v) {
  alignas(64) float tmp[16];
  v.Store(tmp);
  return tmp[0];
}

// The project's exp (activation.h), per lane:
//   x  <- clamp(x, -110, 89)         (NaN passes through both clamps)
//   kn  = fma(x, log2(e), 1.5*2^23)  (n = round(x / ln 2) lands in the low
//                                      mantissa bits of kn)
//   n   = kn - 1.5*2^23              (exact)
//   r   = fma(-n, C1, x); r = fma(-n, C2, r)   (Cody-Waite, C1 + C2 = ln 2)
//   y   = 1 + r + r^2 * P(r)         (Cephes expf minimax polynomial, Horner
//                                      with FMAs)
//   exp = (y * 2^n1) * 2^n2          (n1 = n >> 1, n2 = n - n1: two exact
//                                      power-of-two scalings keep 2^n1, 2^n2
//                                      normal, so results that overflow give
//                                      +inf and tiny ones round correctly to a
//                                      subnormal or 0)
inline VecF ExpV(VecF x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23, bits 0x4b400000
  x = VecF::Min(VecF::Set1(89.0f), x);   // Min(a, b) returns b on NaN
  x = VecF::Max(VecF::Set1(-110.0f), x);
  const VecF kn = VecF::Fma(x, VecF::Set1(1.44269504088896341f), VecF::Set1(kMagic));
  const VecF n = kn - VecF::Set1(kMagic);
  VecF r = VecF::Fma(n, VecF::Set1(-0.693359375f), x);
  r = VecF::Fma(n, VecF::Set1(2.12194440e-4f), r);
  VecF p = VecF::Set1(1.9875691500e-4f);
  p = VecF::Fma(p, r, VecF::Set1(1.3981999507e-3f));
  p = VecF::Fma(p, r, VecF::Set1(8.3334519073e-3f));
  p = VecF::Fma(p, r, VecF::Set1(4.1665795894e-2f));
  p = VecF::Fma(p, r, VecF::Set1(1.6666665459e-1f));
  p = VecF::Fma(p, r, VecF::Set1(5.0000001201e-1f));
  VecF y = VecF::Fma(p, r * r, r);
  y = y + VecF::Set1(1.0f);
  const VecI ni = kn.Bits() - VecI::Set1(0x4b400000);
  const VecI n1 = ni.ShiftRightArith<1>();
  const VecI n2 = ni - n1;
  const VecF s1 = VecF::FromBits((n1 + VecI::Set1(127)).ShiftLeft<23>());
  const VecF s2 = VecF::FromBits((n2 + VecI::Set1(127)).ShiftLeft<23>());
  return (y * s1) * s2;
}

inline float ExpScalar(float x) {
  return Lane0(ExpV(VecF::Set1(x)));
}

// SiLU(gate) * up, silu(g) = g / (1 + Exp(-g)).
inline VecF SwiGluV(VecF g, VecF u) {
  const VecF e = ExpV(VecF::Zero() - g);
  return (g / (VecF::Set1(1.0f) + e)) * u;
}

inline void SwiGlu(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) SwiGluV(VecF::Load(gate + i), VecF::Load(up + i)).Store(out + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    SwiGluV(VecF::LoadN(gate + i, rest), VecF::LoadN(up + i, rest)).StoreN(out + i, rest);
  }
}

inline void Add(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) (VecF::Load(y + i) + VecF::Load(x + i)).Store(y + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    (VecF::LoadN(y + i, rest) + VecF::LoadN(x + i, rest)).StoreN(y + i, rest);
  }
}

inline void ConvertToF32(internal::WeightType type, const void* src, int64_t count, float* dst) {
  if (type == internal::WeightType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(float));
    return;
  }
  const uint16_t* s = static_cast<const uint16_t*>(src);
  const bool f16 = type == internal::WeightType::kF16;
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    (f16 ? VecF::LoadF16(s + i) : VecF::LoadBF16(s + i)).Store(dst + i);
  }
  if (i < count) {
    // Tail through a zero-padded copy: the widening loads read 16 elements.
    uint16_t tmp[16] = {};
    const int rest = static_cast<int>(count - i);
    std::memcpy(tmp, s + i, static_cast<size_t>(rest) * sizeof(uint16_t));
    (f16 ? VecF::LoadF16(tmp) : VecF::LoadBF16(tmp)).StoreN(dst + i, rest);
  }
}

// Sum of the 64 canonical segment sums with the balanced binary tree in index
// order: ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))...  s is overwritten.
inline float TreeSum64(float* s) {
  for (int width = 64; width > 1; width /= 2) {
    for (int i = 0; i < width / 2; ++i) s[i] = s[2 * i] + s[2 * i + 1];
  }
  return s[0];
}

// The canonical segmented-tree reduction (matmul.h) of one row x[0..n):
// kSquares: sum of x[k]^2, each segment one FMA chain from +0 (the dot product
// of x with itself); otherwise the plain sum, each segment a chain of adds
// from +0. Vectorised across the 64 segments (lane l of group g runs segment
// 16g + l), never within a segment, so the order is the same in every build.
template <bool kSquares>
float CanonicalRowSum(const float* x, int64_t n) {
  alignas(64) float sums[64];
  for (int group = 0; group < 4; ++group) {
    alignas(64) int32_t start[16];
    int32_t len[16];
    int32_t min_len = 0x7fffffff, max_len = 0;
    for (int l = 0; l < 16; ++l) {
      const int64_t s = 16 * group + l;
      const int64_t b = s * n / 64, e = (s + 1) * n / 64;
      start[l] = static_cast<int32_t>(b);
      len[l] = static_cast<int32_t>(e - b);
      min_len = len[l] < min_len ? len[l] : min_len;
      max_len = len[l] > max_len ? len[l] : max_len;
    }
    VecF acc = VecF::Zero();
    VecI index = VecI::Load(start);
    const VecI one = VecI::Set1(1);
    for (int32_t t = 0; t < min_len; ++t) {
      const VecF v = VecF::Gather(x, index);
      acc = kSquares ? VecF::Fma(v, v, acc) : acc + v;
      index = index + one;
    }
    if (max_len > min_len) {
      // Segment lengths differ by at most one: the longer segments take one
      // more step. The other lanes read a valid element (their own first,
      // n > 0 here) and keep their sum.
      alignas(64) int32_t last[16];
      uint32_t longer = 0;
      for (int l = 0; l < 16; ++l) {
        const bool is_longer = len[l] > min_len;
        longer |= (is_longer ? 1u : 0u) << l;
        last[l] = start[l] + (is_longer ? min_len : 0);
      }
      const VecF v = VecF::Gather(x, VecI::Load(last));
      acc = VecF::Select(Mask::FromBits(longer), kSquares ? VecF::Fma(v, v, acc) : acc + v, acc);
    }
    acc.Store(sums + 16 * group);
  }
  return TreeSum64(sums);
}

// In-place softmax of x[0..n) (activation.h).
inline void Softmax(float* x, int64_t n) {
  if (n <= 0) return;
  // Max: exact, so the order only matters for NaN (and the sign of a zero
  // maximum, which cannot change Exp(x - m) since Exp(+0) == Exp(-0) == 1).
  const VecF neg_inf = VecF::Set1(-__builtin_inff());
  VecF mv = neg_inf;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) mv = VecF::Max(VecF::Load(x + i), mv);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    mv = VecF::Max(VecF::Select(Mask::FirstN(rest), VecF::LoadN(x + i, rest), neg_inf), mv);
  }
  alignas(64) float lanes[16];
  mv.Store(lanes);
  float m = lanes[0];
  for (int l = 1; l < 16; ++l) m = lanes[l] > m ? lanes[l] : m;

  const VecF mb = VecF::Set1(m);
  for (i = 0; i + 16 <= n; i += 16) ExpV(VecF::Load(x + i) - mb).Store(x + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    ExpV(VecF::LoadN(x + i, rest) - mb).StoreN(x + i, rest);
  }
  const VecF sum = VecF::Set1(CanonicalRowSum<false>(x, n));
  for (i = 0; i + 16 <= n; i += 16) (VecF::Load(x + i) / sum).Store(x + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    (VecF::LoadN(x + i, rest) / sum).StoreN(x + i, rest);
  }
}

// One row of RMSNorm (norm.h): inv = 1 / sqrt(sum(x^2) / dim + eps),
// y = (x * inv) * weight.
inline void RmsNormRow(const float* x, int64_t dim, const float* weight, float eps, float* y) {
  const float sum = CanonicalRowSum<true>(x, dim);
  const float mean = sum / static_cast<float>(dim);
  // Scalar sqrt and division through lane 0 of the vector ops (IEEE-exact
  // either way; this keeps std:: functions out of the ISA builds).
  const float inv = Lane0(VecF::Set1(1.0f) / VecF::Sqrt(VecF::Set1(mean + eps)));
  const VecF iv = VecF::Set1(inv);
  int64_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    ((VecF::Load(x + i) * iv) * VecF::Load(weight + i)).Store(y + i);
  }
  if (i < dim) {
    const int rest = static_cast<int>(dim - i);
    ((VecF::LoadN(x + i, rest) * iv) * VecF::LoadN(weight + i, rest)).StoreN(y + i, rest);
  }
}

// One token of RoPE, rotate-half layout (rope.h): for each head, element i
// (< half) pairs with i + half. Products and sums are separate roundings.
inline void RopeRow(const float* cos, const float* sin, int head_dim, int num_heads, float* x) {
  const int half = head_dim / 2;
  for (int h = 0; h < num_heads; ++h) {
    float* lo = x + static_cast<int64_t>(h) * head_dim;
    float* hi = lo + half;
    for (int i = 0; i < half; i += 16) {
      const int count = half - i < 16 ? half - i : 16;
      const VecF c = VecF::LoadN(cos + i, count), s = VecF::LoadN(sin + i, count);
      const VecF a = VecF::LoadN(lo + i, count), b = VecF::LoadN(hi + i, count);
      (a * c - b * s).StoreN(lo + i, count);
      (b * c + a * s).StoreN(hi + i, count);
    }
  }
}

}  // namespace lockstep::kernels::LOCKSTEP_SIMD_NS
