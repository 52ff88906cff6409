// The step loop of one rank of a distributed job: pipeline stages connected
// by ordered streams, tensor parallelism inside the engine
// (docs/distributed.md, "What each rank does" and "Step protocol").
//
// Stage 0 (every tp rank runs the same code and an identical scheduler
// replica; they make the same decisions because they see the same calls):
//   repeat: while fewer than `window` steps are in flight, take the next
//   step from the scheduler (at most `max_chunks` sequences), send its
//   descriptor (and bindings) to stage 1, embed and run the stage's layers,
//   send the hidden state to stage 1; then wait for the oldest step's
//   outcomes from the last stage and complete it in the scheduler. When the
//   scheduler is idle and nothing is in flight, send the end descriptor.
// Stage s > 0:
//   receive the next descriptor (a ring of pre-posted receives), forward it
//   to stage s+1 at once, post the receives of its bindings and hidden state
//   (their sizes are in the descriptor), apply the bindings, run the layers
//   when the hidden state is there and send it on; the last stage instead
//   computes the logits, samples and sends the step's outcomes to stage 0.
// With pp == 1 stage 0 is also the last stage and nothing is sent.
//
// Streams (world ranks, tp rank r of each stage talks to tp rank r):
//   1 descriptors  s -> s+1      3 hidden states  s -> s+1
//   2 bindings     s -> s+1      4 outcomes       last -> 0
// Hidden states travel without duplication: the hidden state of a step,
// flat ([tokens][hidden] f32) and padded to tp equal slices, is identical on
// every tp rank of a stage, so tp rank r sends only slice r to its
// counterpart, and the next stage completes it with an allgather in its tp
// group (pure data movement: the bits are those of the whole state). Per
// token a stage boundary carries hidden x 4 bytes instead of tp times that.
//
// Errors: a transport failure (deadline, peer gone) or a malformed message
// is returned; the job must then end (peers are at different points).
//
// Thread safety: one thread (the rank's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/engine/engine.h"
#include "lockstep/engine/scheduler.h"
#include "lockstep/partitioner/plan.h"
#include "lockstep/transport/communicator.h"
#include "step_message.h"
#include "step_sampler.h"

namespace lockstep::runtime {

struct PipelineLayout {
  int rank = 0;  // world rank
  int stage = 0;
  int tp_rank = 0;
  int pp = 1;
  int tp = 1;      // ranks of the stage's tp group
  int prev = -1;   // world rank of the same tp rank on stage - 1 (-1 on stage 0)
  int next = -1;   // on stage + 1 (-1 on the last stage)
  int last = -1;   // stage 0: the same tp rank on the last stage (its outcomes)
  int first = -1;  // last stage: the same tp rank on stage 0 (gets the outcomes)

  static PipelineLayout FromPlan(const partitioner::Plan& plan, int rank);
  bool is_first() const { return stage == 0; }
  bool is_last() const { return stage == pp - 1; }
};

struct PipelineOptions {
  int window = 1;      // steps in flight at once (stage 0); 1 when pp == 1
  int max_chunks = 1;  // sequences per step: the descriptor's capacity
};

struct PipelineTimes {
  double wait_s = 0;  // blocked on a descriptor, bindings, hidden state or outcomes
  int64_t steps = 0;  // steps this rank ran
  // In the StepObserver's calls (stage 0; world rank 0's results): the step
  // loop's time that is neither compute nor communication.
  double observer_s = 0;
  // Hidden states this rank received from the previous stage: bytes and
  // tokens (stage-to-stage traffic, benchmarks/RESULTS.md "## scale").
  uint64_t hidden_bytes_received = 0;
  int64_t hidden_tokens_received = 0;
};

// What stage 0 tells the job about steps (world rank 0 writes results).
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  // A step is about to run (its admissions are in plan.admitted).
  virtual Status OnIssued(const StepPlan& plan) = 0;
  // A step has completed: one outcome row per logits row, in order.
  virtual Status OnCompleted(const StepPlan& plan, const StepOutcomes& outcomes) = 0;
};

class Pipeline {
 public:
  // `sampler` is required on the last stage; `tp_group` (this rank's
  // stage's tp group, the one the engine's collectives use) when tp > 1.
  // None of the references is owned.
  Pipeline(transport::Communicator& world, const PipelineLayout& layout,
           const PipelineOptions& options, Engine& engine, StepSampler* sampler,
           transport::Communicator* tp_group);

  // Stage 0: runs every step of `scheduler` (until Idle()), then ends the
  // pipeline. `observer` may be null.
  Status RunFirstStage(Scheduler& scheduler, StepObserver* observer);
  // Stages 1..pp-1: runs steps until the end descriptor.
  Status RunLaterStage();

  const PipelineTimes& times() const { return times_; }

 private:
  struct PendingSend {
    transport::Request request;
    std::vector<std::byte> bytes;
    std::vector<float> floats;
  };
  Status Wait(transport::Request& request);
  // Starts a send that owns its buffer until it completes (ReapSends).
  Status Send(transport::SendStream& stream, std::vector<std::byte> bytes);
  // Sends floats[offset, offset + count) (all of them by default).
  Status SendFloats(transport::SendStream& stream, std::vector<float> floats, size_t offset = 0,
                    size_t count = SIZE_MAX);
  // Sends this tp rank's slice of a hidden state to the next stage (all of
  // it when tp == 1); `hidden` is padded to tp whole slices.
  Status SendHidden(transport::SendStream& stream, std::vector<float> hidden);
  // Floats of one tp rank's slice of a hidden state of `floats` floats.
  size_t SliceFloats(size_t floats) const;
  Status ReapSends(bool all);
  std::vector<float> TakeBuffer(size_t floats);

  transport::Communicator& world_;
  PipelineLayout layout_;
  PipelineOptions options_;
  Engine& engine_;
  StepSampler* sampler_;
  transport::Communicator* tp_group_;
  PipelineTimes times_;
  std::deque<PendingSend> sends_;
  std::vector<std::vector<float>> free_buffers_;  // hidden-state buffers for reuse
};

}  // namespace lockstep::runtime
