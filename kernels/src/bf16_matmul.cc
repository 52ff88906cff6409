// The bf16 compute: the activation rounding, the pair pack, the dot-product
// step in plain code, the naive reference and the instruction choice
// (bf16_matmul.h is the contract; matmul_impl.h the block kernels, with the
// vector emulation of the step; kernels_avx512_bf16.cc the vdpbf16ps build).
#include "lockstep/kernels/bf16_matmul.h"

#include <cpuid.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "bf16_matmul_internal.h"
#include "lockstep/base/check.h"

namespace lockstep::kernels {
namespace {

Bf16Step ParseStep(const char* env) {
  if (env == nullptr) return Bf16Step::kAuto;
  const std::string_view v(env);
  if (v == "0") return Bf16Step::kChecked;
  for (Bf16Step step : {Bf16Step::kInstruction, Bf16Step::kFlushToZero, Bf16Step::kChecked}) {
    if (v == Bf16StepName(step)) return step;
  }
  return Bf16Step::kAuto;
}

std::atomic<Bf16Step>& SelectedStep() {
  static std::atomic<Bf16Step> step(ParseStep(std::getenv("LOCKSTEP_BF16_DOT")));
  return step;
}

// AVX512_BF16: CPUID leaf 7, subleaf 1, EAX bit 5 (read directly: not every
// compiler's __builtin_cpu_supports knows the name).
// Read once (CPUID traps to the hypervisor under a VM; this runs on every
// bf16-compute matmul).
bool CpuHasAvx512Bf16() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
    return (eax & (1u << 5)) != 0;
  }();
  return has;
}

// A bf16 weight as the kernels see it: a subnormal is a zero of its sign.
uint16_t FlushBf16(uint16_t w) {
  return (w & 0x7f80u) == 0 ? static_cast<uint16_t>(w & 0x8000u) : w;
}

}  // namespace

uint16_t RoundToBf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t exponent = (bits >> 23) & 0xffu;
  if (exponent == 0xffu && (bits & 0x7fffffu) != 0) return 0xffc0u;         // NaN: the default NaN
  if (exponent == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);  // zero, subnormal
  // To nearest even on the upper 16 bits; a carry into the exponent is the
  // right result, up to infinity.
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float Bf16DotStep(float acc, float a, float b) {
  // NaN operands: the first of a, b, acc, quieted (vdpbf16ps's order; the
  // kernels only ever see one NaN pattern, RoundToBf16's 0xffc0, so the order
  // cannot change their bits).
  for (const float v : {a, b, acc}) {
    if (std::isnan(v)) return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | 0x00400000u);
  }
  const float r = std::fma(a, b, acc);
  // Invalid (Inf * 0, Inf - Inf): the default NaN.
  if (std::isnan(r)) return std::bit_cast<float>(0xffc00000u);
  const uint32_t bits = std::bit_cast<uint32_t>(r);
  const uint32_t mag = bits & 0x7fffffffu;
  if (mag == 0 || mag > 0x00800000u) return r;  // zero, normal above 2^-126, Inf, NaN
  bool flush = mag < 0x00800000u;
  if (!flush) {
    // |r| == 2^-126: flush when the exact sum, rounded to 24 bits, is below
    // 2^-126, i.e. |exact| < 2^-126 - 2^-151 (ties go to 2^-126, the even
    // neighbour). Two-sum in double: a*b is exact in double.
    const double p = static_cast<double>(a) * static_cast<double>(b);
    const double c = acc;
    double s = c + p;
    const double bb = s - c;
    double e = (c - (s - bb)) + (p - bb);
    if (s < 0) {
      s = -s;
      e = -e;
    }
    constexpr double kTiny = 0x1p-126 - 0x1p-151;
    flush = s < kTiny || (s == kTiny && e < 0);
  }
  return flush ? std::bit_cast<float>(bits & 0x80000000u) : r;
}

void Bf16MatmulReference(const uint16_t* w, int64_t rows, int64_t ld, ReductionSlice slice,
                         const float* x, int64_t num_tokens, int64_t ldx, float* y, int64_t ldy) {
  const internal::Bf16PairLayout layout = internal::Bf16Pairs(slice);
  const int num_segments = slice.segment_end - slice.segment_begin;
  std::vector<float> sums(static_cast<size_t>(num_segments));
  for (int64_t m = 0; m < num_tokens; ++m) {
    for (int64_t n = 0; n < rows; ++n) {
      for (int s = 0; s < num_segments; ++s) {
        const int64_t k0 = layout.columns[s], k1 = layout.columns[s + 1];
        float acc = 0.0f;
        for (int64_t k = k0; k < k1; k += 2) {
          for (int64_t kk = k; kk < k + 2; ++kk) {
            const bool pad = kk >= k1;
            const float wv = pad ? 0.0f : Bf16ToF32(FlushBf16(w[n * ld + kk]));
            const float xv = pad ? 0.0f : Bf16ToF32(RoundToBf16(x[m * ldx + kk]));
            acc = Bf16DotStep(acc, wv, xv);
          }
        }
        sums[s] = acc;
      }
      for (int width = num_segments; width > 1; width /= 2) {
        for (int i = 0; i < width / 2; ++i) sums[i] = sums[2 * i] + sums[2 * i + 1];
      }
      y[m * ldy + n] = sums[0];
    }
  }
}

bool Bf16DotAvailable(Isa isa) {
  return isa == Isa::kAvx512 && IsaSupported(isa) && CpuHasAvx512Bf16();
}

std::string_view Bf16StepName(Bf16Step step) {
  switch (step) {
    case Bf16Step::kAuto:
      return "auto";
    case Bf16Step::kInstruction:
      return "instruction";
    case Bf16Step::kFlushToZero:
      return "ftz";
    case Bf16Step::kChecked:
      return "checked";
  }
  return "?";
}

bool Bf16StepAvailable(Isa isa, Bf16Step step) {
  switch (step) {
    case Bf16Step::kAuto:
    case Bf16Step::kChecked:
      return IsaSupported(isa);
    case Bf16Step::kInstruction:
      return Bf16DotAvailable(isa);
    case Bf16Step::kFlushToZero:
      return (isa == Isa::kAvx512 || isa == Isa::kAvx2) && IsaSupported(isa);
  }
  return false;
}

void UseBf16Step(Bf16Step step) {
  SelectedStep().store(step);
}

Bf16Step Bf16StepFor(Isa isa) {
  const Bf16Step selected = SelectedStep().load();
  if (selected != Bf16Step::kAuto && Bf16StepAvailable(isa, selected)) return selected;
  if (isa == Isa::kScalar) return Bf16Step::kChecked;
  if (!Bf16DotAvailable(isa)) return Bf16Step::kFlushToZero;
  static const Bf16Step faster = internal::MeasureFasterBf16Step();
  return faster;
}

namespace internal {

Bf16PairLayout Bf16Pairs(const ReductionSlice& slice) {
  Bf16PairLayout layout;
  layout.pairs.push_back(0);
  for (int seg = slice.segment_begin; seg <= slice.segment_end; ++seg) {
    layout.columns.push_back(SegmentStart(slice.k_global, seg) - slice.column_begin());
    if (seg > slice.segment_begin) {
      const size_t i = layout.columns.size() - 1;
      layout.pairs.push_back(layout.pairs.back() +
                             (layout.columns[i] - layout.columns[i - 1] + 1) / 2);
    }
  }
  return layout;
}

std::vector<int64_t> Bf16PairBounds(const ReductionSlice& slice) {
  return Bf16Pairs(slice).pairs;
}

void PackBf16Pairs(const uint16_t* src, int64_t rows, int64_t ld, const ReductionSlice& slice,
                   uint32_t* dst) {
  const Bf16PairLayout layout = Bf16Pairs(slice);
  const int64_t num_pairs = layout.num_pairs();
  const int64_t num_panels = (rows + kPanelWidth - 1) / kPanelWidth;
  const size_t num_segments = layout.columns.size() - 1;
  for (int64_t p = 0; p < num_panels; ++p) {
    uint32_t* panel = dst + p * num_pairs * kPanelWidth;
    for (int r = 0; r < kPanelWidth; ++r) {
      const int64_t row = p * kPanelWidth + r;
      if (row >= rows) break;  // padding rows stay zero
      const uint16_t* s = src + row * ld;
      for (size_t i = 0; i < num_segments; ++i) {
        const int64_t k1 = layout.columns[i + 1];
        int64_t j = layout.pairs[i];
        for (int64_t k = layout.columns[i]; k < k1; k += 2, ++j) {
          const uint32_t hi = FlushBf16(s[k]);
          const uint32_t lo = k + 1 < k1 ? FlushBf16(s[k + 1]) : 0u;
          panel[j * kPanelWidth + r] = hi << 16 | lo;
        }
      }
    }
  }
}

void RoundToBf16Pairs(const float* x, const Bf16PairLayout& layout, float* dst) {
  const size_t num_segments = layout.columns.size() - 1;
  for (size_t i = 0; i < num_segments; ++i) {
    const int64_t k1 = layout.columns[i + 1];
    int64_t j = layout.pairs[i];
    for (int64_t k = layout.columns[i]; k < k1; k += 2, ++j) {
      const uint32_t hi = RoundToBf16(x[k]);
      const uint32_t lo = k + 1 < k1 ? RoundToBf16(x[k + 1]) : 0u;
      const uint32_t pair = hi << 16 | lo;
      std::memcpy(dst + j, &pair, 4);
    }
  }
}

float Bf16PairPackedAt(const uint32_t* pack, const ReductionSlice& slice, int64_t row,
                       int64_t col) {
  const Bf16PairLayout layout = Bf16Pairs(slice);
  size_t i = 0;
  while (layout.columns[i + 1] <= col) ++i;
  const int64_t offset = col - layout.columns[i];
  const int64_t j = layout.pairs[i] + offset / 2;
  const uint32_t pair =
      pack[((row / kPanelWidth) * layout.num_pairs() + j) * kPanelWidth + row % kPanelWidth];
  return Bf16ToF32(static_cast<uint16_t>(offset % 2 == 0 ? pair >> 16 : pair & 0xffffu));
}

}  // namespace internal
}  // namespace lockstep::kernels
