// The messages of the pipeline (docs/distributed.md, "Step protocol"), and
// their wire format.
//
// Stage 0 makes every step (its scheduler; each tp rank of stage 0 runs an
// identical replica) and describes it in a StepDescriptor, which travels
// from tp rank r of stage s to tp rank r of stage s+1 ahead of the step's
// activations. The last stage answers each step with a StepOutcomes message
// (the sampled token of every logits row, whether its sequence finished, and
// for world rank 0 the logits fingerprints) to tp rank r of stage 0.
//
// Every message has a size its receiver knows before it arrives:
//   descriptor  fixed: DescriptorBytes(max_chunks)        (pre-posted ring)
//   bindings    BindingBytes(descriptor), only when the descriptor admits
//               sequences (posted when the descriptor arrives)
//   hidden      num_tokens * hidden_size * 4 bytes        (posted when the
//               descriptor arrives, i.e. before the activations are sent)
//   outcomes    fixed: OutcomeBytes(max_chunks)           (pre-posted ring)
// Fields are fixed-width integers copied in the host's byte order (x86-64:
// little endian); all ranks of a job run on the same architecture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/engine/scheduler.h"
#include "lockstep/engine/token_batch.h"

namespace lockstep::runtime {

struct StepDescriptor {
  enum class Kind : uint32_t {
    kStep = 1,  // run this step
    kEnd = 2,   // the job is over: forward and stop
  };
  Kind kind = Kind::kStep;
  int64_t step = 0;                   // 0, 1, 2, ...: the step's sequence number on every stream
  std::vector<StepChunk> chunks;      // in batch order
  std::vector<SlotBinding> bindings;  // sequences admitted in this step

  static StepDescriptor FromPlan(const StepPlan& plan);
  static StepDescriptor End(int64_t step);

  int64_t num_tokens() const;
  // The step's TokenBatch for a stage that does not embed: slots, positions
  // and logits rows from the chunks; token ids are not carried (zero).
  TokenBatch Batch() const;
};

// Bytes of the fixed descriptor message for steps of at most `max_chunks`
// chunks.
size_t DescriptorBytes(int max_chunks);
// Writes the fixed part into `fixed` (resized to DescriptorBytes(max_chunks))
// and the bindings into `bindings` (resized to BindingBytes, possibly 0).
// Requires d.chunks.size() <= max_chunks.
void EncodeDescriptor(const StepDescriptor& d, int max_chunks, std::vector<std::byte>* fixed,
                      std::vector<std::byte>* bindings);
// Reads the fixed part. The bindings are read separately (DecodeBindings)
// from a message of *binding_bytes bytes (0: none). InvalidArgument for a
// message that is not a descriptor or whose counts exceed the capacity.
Result<StepDescriptor> DecodeDescriptor(std::span<const std::byte> fixed, int max_chunks,
                                        size_t* binding_bytes);
Status DecodeBindings(std::span<const std::byte> bindings, StepDescriptor* d);

// The answer of the last stage to one step: one row per logits row of the
// step, in batch order.
struct RowOutcome {
  int64_t handle = 0;         // the sequence (request index)
  int32_t token = 0;          // sampled token
  bool finished = false;      // the sequence ends with this token
  bool stop = false;          // finished by a stop token / EOS (else by length)
  uint64_t fingerprint = 0;   // 64-bit hash of this step's logits (when hashing)
  std::string logits_sha256;  // 64 hex digits: the request's whole hash, on its last row
  // The logits row held a NaN or an infinity: no token was sampled, the
  // sequence is finished (with an error record), and `token` is the id
  // whose logit was the first non-finite one.
  enum class NonFinite : uint8_t { kNone = 0, kNan = 1, kInfinity = 2 };
  NonFinite non_finite = NonFinite::kNone;
};

struct StepOutcomes {
  int64_t step = 0;
  std::vector<RowOutcome> rows;
};

size_t OutcomeBytes(int max_chunks);
void EncodeOutcomes(const StepOutcomes& o, int max_chunks, std::vector<std::byte>* out);
Result<StepOutcomes> DecodeOutcomes(std::span<const std::byte> in, int max_chunks);

}  // namespace lockstep::runtime
