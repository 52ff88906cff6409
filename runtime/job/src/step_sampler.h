// The last pipeline stage's decision for each logits row of a step: the
// sampled token, whether its sequence finished (stop token, EOS, length),
// and -- on the rank that reports to world rank 0 -- the logits hashes and
// the debug dump.
//
// Every tp rank of the last stage holds the whole logits (gathered) and runs
// a StepSampler: they all sample the same tokens (sampling depends only on
// the logits and on (seed, request stream, position)), so each can answer
// its own tp rank of stage 0. Only the `reporter` (tp rank 0, which answers
// world rank 0) hashes and dumps.
//
// A request's finish is decided here with the same rules as the one-rank
// job: EOS (unless ignore_eos), a stop token id, a stop string (with a
// tokenizer), or max_tokens reached.
//
// Thread safety: one thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "completion_text.h"
#include "lockstep/base/status.h"
#include "lockstep/engine/engine.h"
#include "lockstep/job/logits_hash.h"
#include "lockstep/job/request.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/tokenizer/tokenizer.h"
#include "step_message.h"

namespace lockstep::runtime {

struct StepSamplerOptions {
  kernels::Isa isa = kernels::Isa::kScalar;
  int32_t eos_token_id = -1;
  bool reporter = false;         // hashes (and dumps) for world rank 0
  bool hash_logits = false;      // SHA-256 per request (reporter only)
  bool fingerprints = false;     // a 64-bit fingerprint per step (reporter only)
  std::string dump_logits_path;  // "" = off (reporter only)
};

class StepSampler {
 public:
  // `tokenizer` (may be null; not owned) finds the requests' stop strings.
  StepSampler(const std::vector<Request>& requests, const StepSamplerOptions& options,
              const Tokenizer* tokenizer = nullptr);

  Status OpenDump();
  Status CloseDump();

  // One step: `logits` is [rows][vocab] for the step's logits rows (the
  // chunks with wants_logits, in order). Sampling runs inside `engine`'s
  // arena.
  Result<StepOutcomes> Sample(const StepDescriptor& step, const float* logits, int64_t vocab,
                              Engine& engine);

 private:
  const std::vector<Request>& requests_;
  StepSamplerOptions options_;
  std::vector<uint64_t> streams_;                       // RequestStream(id), by request index
  std::vector<int32_t> generated_;                      // tokens generated so far, by request index
  std::vector<std::unique_ptr<LogitsHasher>> hashers_;  // reporter with hash_logits
  const Tokenizer* tokenizer_;
  std::vector<std::optional<CompletionText>> texts_;  // by request index, with a tokenizer
  std::vector<float> scratch_;
  std::ofstream dump_;
};

// A 64-bit fingerprint of a logits row (FNV-1a over the f32 words): what the
// determinism tests compare step by step.
uint64_t LogitsFingerprint(const float* logits, int64_t vocab);

}  // namespace lockstep::runtime
