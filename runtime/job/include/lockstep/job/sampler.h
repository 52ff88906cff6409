// Token selection for a request: the glue between a Request's sampling
// fields and kernels::Sample.
//
// The random draw for a token is keyed by (seed, stream, position):
//   seed     = the request's "seed" (default 0);
//   stream   = RequestStream(request id), a 64-bit FNV-1a hash of the id's
//              UTF-8 bytes;
//   position = the position the sampled token will take in the sequence
//              (prompt length + number of tokens generated before it).
// Nothing else enters, so a request's tokens do not depend on its batch
// neighbours, the order of admission, the thread count, the instruction set
// or (issue 5) the number of ranks.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "lockstep/job/request.h"
#include "lockstep/kernels/isa.h"

namespace lockstep::runtime {

// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t RequestStream(std::string_view id);

// The token for logits [vocab] of `request` at sequence position `position`.
// Greedy (argmax, lowest id on ties) when request.temperature == 0.
// `scratch` is reused between calls.
int32_t SampleToken(kernels::Isa isa, const float* logits, int64_t vocab, const Request& request,
                    uint64_t stream, int64_t position, std::vector<float>* scratch);

}  // namespace lockstep::runtime
