#include "step_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "lockstep/base/check.h"
#include "lockstep/job/sampler.h"

namespace lockstep::runtime {

uint64_t LogitsFingerprint(const float* logits, int64_t vocab) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < vocab; ++i) {
    uint32_t bits;
    std::memcpy(&bits, logits + i, sizeof(bits));
    h ^= bits;
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {

// The index of the first NaN or infinity of a logits row, or -1.
int64_t FirstNonFinite(const float* logits, int64_t vocab) {
  uint32_t any = 0;
  for (int64_t i = 0; i < vocab; ++i) {  // branch-free: vectorised
    uint32_t bits;
    std::memcpy(&bits, logits + i, sizeof(bits));
    any |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (any == 0) return -1;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!std::isfinite(logits[i])) return i;
  }
  return -1;
}

}  // namespace

StepSampler::StepSampler(const std::vector<Request>& requests, const StepSamplerOptions& options,
                         const Tokenizer* tokenizer)
    : requests_(requests),
      options_(options),
      generated_(requests.size(), 0),
      hashers_(requests.size()),
      tokenizer_(tokenizer),
      texts_(tokenizer != nullptr ? requests.size() : 0) {
  streams_.reserve(requests.size());
  for (const Request& r : requests) streams_.push_back(RequestStream(r.id));
}

Status StepSampler::OpenDump() {
  if (!options_.reporter || options_.dump_logits_path.empty()) return Status::Ok();
  dump_.open(options_.dump_logits_path, std::ios::binary | std::ios::trunc);
  if (!dump_) {
    return IoError("{}: cannot create the logits dump (--dump-logits)", options_.dump_logits_path);
  }
  return Status::Ok();
}

Status StepSampler::CloseDump() {
  if (!dump_.is_open()) return Status::Ok();
  dump_.close();
  if (!dump_) return IoError("{}: write failed", options_.dump_logits_path);
  return Status::Ok();
}

Result<StepOutcomes> StepSampler::Sample(const StepDescriptor& step, const float* logits,
                                         int64_t vocab, Engine& engine) {
  StepOutcomes out;
  out.step = step.step;
  size_t row = 0;
  for (const StepChunk& chunk : step.chunks) {
    if (!chunk.wants_logits) continue;
    const size_t h = static_cast<size_t>(chunk.handle);
    LOCKSTEP_CHECK(h < requests_.size(), "step {} names request {} of {}", step.step, h,
                   requests_.size());
    const Request& r = requests_[h];
    const float* row_logits = logits + row * static_cast<size_t>(vocab);
    ++row;
    // The sampled token takes the position after the chunk's last token.
    const int64_t position = int64_t{chunk.first_position} + chunk.num_tokens;
    // A NaN or an infinity in the logits (activations that overflowed) ends
    // the request with an error record rather than a token sampled from
    // garbage.
    if (const int64_t bad = FirstNonFinite(row_logits, vocab); bad >= 0) {
      RowOutcome o;
      o.handle = chunk.handle;
      o.token = static_cast<int32_t>(bad);
      o.finished = true;
      o.non_finite = std::isnan(row_logits[bad]) ? RowOutcome::NonFinite::kNan
                                                 : RowOutcome::NonFinite::kInfinity;
      generated_[h] = 0;
      hashers_[h].reset();
      if (tokenizer_ != nullptr) texts_[h].reset();
      out.rows.push_back(std::move(o));
      continue;
    }
    int32_t token = 0;
    engine.Execute([&] {
      token = SampleToken(options_.isa, row_logits, vocab, r, streams_[h], position, &scratch_);
    });
    const int32_t generated = ++generated_[h];
    // Stop strings need the text now (they decide the next step); a request
    // without any is not decoded here (world rank 0's writer thread builds
    // the results' text off the step loop).
    bool stop_text = false;
    if (tokenizer_ != nullptr && !r.stop.empty()) {
      if (generated == 1) texts_[h].emplace(*tokenizer_, r);
      stop_text = texts_[h]->Append(token);
    }
    const bool stop = (token == options_.eos_token_id && !r.ignore_eos) || stop_text ||
                      std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) !=
                          r.stop_token_ids.end();
    const bool length = generated >= r.max_tokens;
    RowOutcome o;
    o.handle = chunk.handle;
    o.token = token;
    o.finished = stop || length;
    o.stop = stop;
    if (options_.reporter) {
      if (options_.fingerprints) o.fingerprint = LogitsFingerprint(row_logits, vocab);
      if (options_.hash_logits) {
        if (!hashers_[h]) hashers_[h] = std::make_unique<LogitsHasher>();
        hashers_[h]->AddStep(row_logits, vocab);
        if (o.finished) {
          o.logits_sha256 = hashers_[h]->Finish();
          hashers_[h].reset();
        }
      }
      if (dump_.is_open()) {
        fmt::memory_buffer line;
        fmt::format_to(std::back_inserter(line),
                       "{{\"id\":{},\"step\":{},\"position\":{},\"token\":{},\"logits\":[",
                       nlohmann::json(r.id).dump(), generated - 1, position, token);
        for (int64_t i = 0; i < vocab; ++i) {
          if (i > 0) line.push_back(',');
          fmt::format_to(std::back_inserter(line), "{}", row_logits[i]);
        }
        fmt::format_to(std::back_inserter(line), "]}}\n");
        dump_.write(line.data(), static_cast<std::streamsize>(line.size()));
        if (!dump_) return IoError("{}: write failed", options_.dump_logits_path);
      }
    }
    if (o.finished) {
      generated_[h] = 0;
      if (tokenizer_ != nullptr) texts_[h].reset();
    }
    out.rows.push_back(std::move(o));
  }
  return out;
}

}  // namespace lockstep::runtime
