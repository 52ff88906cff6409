#include "lockstep/job/sampler.h"

#include "lockstep/kernels/sampling.h"

namespace lockstep::runtime {

uint64_t RequestStream(std::string_view id) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char ch : id) {
    hash ^= ch;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

int32_t SampleToken(kernels::Isa isa, const float* logits, int64_t vocab, const Request& request,
                    uint64_t stream, int64_t position, std::vector<float>* scratch) {
  kernels::SamplingParams params;
  params.temperature = request.temperature;
  params.top_k = request.top_k;
  params.top_p = request.top_p;
  return kernels::Sample(isa, logits, vocab, params, request.seed, stream,
                         static_cast<uint64_t>(position), scratch);
}

}  // namespace lockstep::runtime
