#include "pipeline.h"

#include <chrono>
#include <optional>

#include "lockstep/base/check.h"

namespace lockstep::runtime {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kDescriptorStream = 1;
constexpr uint32_t kBindingsStream = 2;
constexpr uint32_t kHiddenStream = 3;
constexpr uint32_t kOutcomeStream = 4;

// Sends not yet complete beyond which a rank waits for the oldest one. A
// rank is never more than `window` steps ahead of the next stage, so this is
// only a bound on memory.
constexpr size_t kMaxPendingSends = 64;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

PipelineLayout PipelineLayout::FromPlan(const partitioner::Plan& plan, int rank) {
  PipelineLayout l;
  l.rank = rank;
  l.stage = plan.StageOf(rank);
  l.tp_rank = plan.TpRankOf(rank);
  l.pp = plan.pp;
  l.tp = plan.tp;
  if (l.stage > 0) l.prev = plan.WorldRank(l.stage - 1, l.tp_rank);
  if (l.stage + 1 < plan.pp) l.next = plan.WorldRank(l.stage + 1, l.tp_rank);
  if (l.stage == 0 && plan.pp > 1) l.last = plan.WorldRank(plan.pp - 1, l.tp_rank);
  if (l.stage == plan.pp - 1 && plan.pp > 1) l.first = plan.WorldRank(0, l.tp_rank);
  return l;
}

Pipeline::Pipeline(transport::Communicator& world, const PipelineLayout& layout,
                   const PipelineOptions& options, Engine& engine, StepSampler* sampler,
                   transport::Communicator* tp_group)
    : world_(world),
      layout_(layout),
      options_(options),
      engine_(engine),
      sampler_(sampler),
      tp_group_(tp_group) {
  LOCKSTEP_CHECK(options.window >= 1 && options.max_chunks >= 1);
  LOCKSTEP_CHECK(!layout.is_last() || sampler != nullptr, "the last stage needs a sampler");
  LOCKSTEP_CHECK(layout.tp == 1 || (tp_group != nullptr && tp_group->size() == layout.tp &&
                                    tp_group->rank() == layout.tp_rank),
                 "tp {} needs its tp group", layout.tp);
}

size_t Pipeline::SliceFloats(size_t floats) const {
  const size_t tp = static_cast<size_t>(layout_.tp);
  return (floats + tp - 1) / tp;
}

Status Pipeline::Wait(transport::Request& request) {
  const Clock::time_point start = Clock::now();
  Status s = request.Wait();
  times_.wait_s += Since(start);
  return s;
}

Status Pipeline::Send(transport::SendStream& stream, std::vector<std::byte> bytes) {
  PendingSend p;
  p.bytes = std::move(bytes);
  LOCKSTEP_ASSIGN_OR_RETURN(p.request, stream.Send(std::span<const std::byte>(p.bytes)));
  sends_.push_back(std::move(p));
  return ReapSends(false);
}

Status Pipeline::SendFloats(transport::SendStream& stream, std::vector<float> floats, size_t offset,
                            size_t count) {
  PendingSend p;
  p.floats = std::move(floats);
  LOCKSTEP_ASSIGN_OR_RETURN(p.request,
                            stream.Send(std::span<const float>(p.floats).subspan(offset, count)));
  sends_.push_back(std::move(p));
  return ReapSends(false);
}

Status Pipeline::SendHidden(transport::SendStream& stream, std::vector<float> hidden) {
  if (layout_.tp == 1) return SendFloats(stream, std::move(hidden));
  const size_t slice = SliceFloats(hidden.size());
  hidden.resize(slice * static_cast<size_t>(layout_.tp));  // the padding is never read
  return SendFloats(stream, std::move(hidden), static_cast<size_t>(layout_.tp_rank) * slice, slice);
}

// Releases completed sends from the front (in order); waits for the oldest
// while too many are pending, or for all of them with `all`.
Status Pipeline::ReapSends(bool all) {
  while (!sends_.empty()) {
    PendingSend& front = sends_.front();
    if (all || sends_.size() > kMaxPendingSends) {
      LOCKSTEP_RETURN_IF_ERROR(Wait(front.request));
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(bool done, front.request.Test());
      if (!done) break;
    }
    if (!front.floats.empty()) free_buffers_.push_back(std::move(front.floats));
    sends_.pop_front();
  }
  return Status::Ok();
}

std::vector<float> Pipeline::TakeBuffer(size_t floats) {
  std::vector<float> v;
  if (!free_buffers_.empty()) {
    v = std::move(free_buffers_.back());
    free_buffers_.pop_back();
  }
  v.resize(floats);
  return v;
}

Status Pipeline::RunFirstStage(Scheduler& scheduler, StepObserver* observer) {
  const int64_t h = engine_.config().hidden_size;
  const int64_t vocab = engine_.vocab_rows();
  const bool alone = layout_.pp == 1;
  const int window = alone ? 1 : options_.window;

  std::optional<transport::SendStream> desc_out, bind_out, hidden_out;
  std::optional<transport::RecvStream> outcome_in;
  if (!alone) {
    LOCKSTEP_ASSIGN_OR_RETURN(desc_out, world_.OpenSendStream(layout_.next, kDescriptorStream));
    LOCKSTEP_ASSIGN_OR_RETURN(bind_out, world_.OpenSendStream(layout_.next, kBindingsStream));
    LOCKSTEP_ASSIGN_OR_RETURN(hidden_out, world_.OpenSendStream(layout_.next, kHiddenStream));
    LOCKSTEP_ASSIGN_OR_RETURN(outcome_in, world_.OpenRecvStream(layout_.last, kOutcomeStream));
  }

  struct InFlight {
    StepPlan plan;
    std::vector<std::byte> outcome_bytes;
    transport::Request outcome_request;
    StepOutcomes local;  // pp == 1: sampled here
  };
  std::deque<InFlight> in_flight;
  std::vector<float> logits;
  int64_t last_step = -1;

  while (true) {
    while (static_cast<int>(in_flight.size()) < window) {
      StepPlan plan = scheduler.NextStep(options_.max_chunks);
      if (plan.batch.empty()) break;
      if (observer != nullptr) {
        const Clock::time_point start = Clock::now();
        LOCKSTEP_RETURN_IF_ERROR(observer->OnIssued(plan));
        times_.observer_s += Since(start);
      }
      in_flight.emplace_back();
      InFlight& f = in_flight.back();
      f.plan = std::move(plan);
      last_step = f.plan.step;
      ++times_.steps;
      const StepDescriptor d = StepDescriptor::FromPlan(f.plan);
      engine_.ApplyBindings(f.plan.bindings);
      if (alone) {
        LOCKSTEP_RETURN_IF_ERROR(engine_.Forward(f.plan.batch, &logits));
        LOCKSTEP_ASSIGN_OR_RETURN(f.local, sampler_->Sample(d, logits.data(), vocab, engine_));
        continue;
      }
      // The outcome receive is posted before anything of the step is sent,
      // so it is always waiting when the answer comes.
      f.outcome_bytes.resize(OutcomeBytes(options_.max_chunks));
      LOCKSTEP_ASSIGN_OR_RETURN(f.outcome_request,
                                outcome_in->Post(std::span<std::byte>(f.outcome_bytes)));
      std::vector<std::byte> fixed, bindings;
      EncodeDescriptor(d, options_.max_chunks, &fixed, &bindings);
      LOCKSTEP_RETURN_IF_ERROR(Send(*desc_out, std::move(fixed)));
      if (!bindings.empty()) LOCKSTEP_RETURN_IF_ERROR(Send(*bind_out, std::move(bindings)));
      std::vector<float> hidden = TakeBuffer(static_cast<size_t>(f.plan.batch.size() * h));
      LOCKSTEP_RETURN_IF_ERROR(engine_.Embed(f.plan.batch, hidden.data()));
      LOCKSTEP_RETURN_IF_ERROR(engine_.RunLayers(f.plan.batch, hidden.data()));
      LOCKSTEP_RETURN_IF_ERROR(SendHidden(*hidden_out, std::move(hidden)));
    }
    if (in_flight.empty()) break;

    InFlight& f = in_flight.front();
    StepOutcomes outcomes;
    if (alone) {
      outcomes = std::move(f.local);
    } else {
      LOCKSTEP_RETURN_IF_ERROR(Wait(f.outcome_request));
      LOCKSTEP_ASSIGN_OR_RETURN(outcomes, DecodeOutcomes(f.outcome_bytes, options_.max_chunks));
      LOCKSTEP_RETURN_IF_ERROR(ReapSends(false));
    }
    if (outcomes.step != f.plan.step || outcomes.rows.size() != f.plan.logits_handles.size()) {
      return Internal("outcomes for step {} ({} rows) arrived for step {} ({} logits rows)",
                      outcomes.step, outcomes.rows.size(), f.plan.step,
                      f.plan.logits_handles.size());
    }
    std::vector<TokenOutcome> tokens;
    tokens.reserve(outcomes.rows.size());
    for (size_t i = 0; i < outcomes.rows.size(); ++i) {
      LOCKSTEP_CHECK(outcomes.rows[i].handle == f.plan.logits_handles[i],
                     "step {} row {}: outcome for sequence {}, expected {}", f.plan.step, i,
                     outcomes.rows[i].handle, f.plan.logits_handles[i]);
      tokens.push_back({outcomes.rows[i].token, outcomes.rows[i].finished});
    }
    scheduler.CompleteStep(f.plan, tokens);
    if (observer != nullptr) {
      const Clock::time_point start = Clock::now();
      LOCKSTEP_RETURN_IF_ERROR(observer->OnCompleted(f.plan, outcomes));
      times_.observer_s += Since(start);
    }
    in_flight.pop_front();
  }
  LOCKSTEP_CHECK(scheduler.Idle(), "the scheduler made no step but is not idle");
  if (!alone) {
    std::vector<std::byte> fixed, bindings;
    EncodeDescriptor(StepDescriptor::End(last_step + 1), options_.max_chunks, &fixed, &bindings);
    LOCKSTEP_RETURN_IF_ERROR(Send(*desc_out, std::move(fixed)));
  }
  return ReapSends(true);
}

Status Pipeline::RunLaterStage() {
  const int64_t h = engine_.config().hidden_size;
  const int64_t vocab = engine_.vocab_rows();
  const bool last = layout_.is_last();
  const int max_chunks = options_.max_chunks;

  LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream desc_in,
                            world_.OpenRecvStream(layout_.prev, kDescriptorStream));
  LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream bind_in,
                            world_.OpenRecvStream(layout_.prev, kBindingsStream));
  LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream hidden_in,
                            world_.OpenRecvStream(layout_.prev, kHiddenStream));
  std::optional<transport::SendStream> desc_out, bind_out, hidden_out, outcome_out;
  if (!last) {
    LOCKSTEP_ASSIGN_OR_RETURN(desc_out, world_.OpenSendStream(layout_.next, kDescriptorStream));
    LOCKSTEP_ASSIGN_OR_RETURN(bind_out, world_.OpenSendStream(layout_.next, kBindingsStream));
    LOCKSTEP_ASSIGN_OR_RETURN(hidden_out, world_.OpenSendStream(layout_.next, kHiddenStream));
  } else {
    LOCKSTEP_ASSIGN_OR_RETURN(outcome_out, world_.OpenSendStream(layout_.first, kOutcomeStream));
  }

  // A ring of pre-posted descriptor receives: stage 0 keeps at most `window`
  // steps in flight, so no stage is more than that many descriptors behind.
  const size_t ring = static_cast<size_t>(options_.window) + 2;
  std::vector<std::vector<std::byte>> desc_buffers(
      ring, std::vector<std::byte>(DescriptorBytes(max_chunks)));
  std::vector<transport::Request> desc_requests(ring);
  for (size_t i = 0; i < ring; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(desc_requests[i],
                              desc_in.Post(std::span<std::byte>(desc_buffers[i])));
  }

  struct Incoming {
    StepDescriptor descriptor;
    std::vector<std::byte> bindings;
    transport::Request bindings_request;
    std::vector<float> hidden;
    transport::Request hidden_request;
  };
  std::deque<Incoming> ready;
  uint64_t next_descriptor = 0;
  bool ended = false;

  // Takes descriptor `next_descriptor` if it has arrived (or waits for it
  // with `block`): forwards it, posts its bindings and hidden-state receives
  // and re-posts the ring slot. Returns whether one was taken.
  auto accept = [&](bool block) -> Result<bool> {
    if (ended) return false;
    const size_t slot = next_descriptor % ring;
    transport::Request& request = desc_requests[slot];
    if (block) {
      LOCKSTEP_RETURN_IF_ERROR(Wait(request));
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(bool done, request.Test());
      if (!done) return false;
    }
    size_t binding_bytes = 0;
    LOCKSTEP_ASSIGN_OR_RETURN(StepDescriptor d,
                              DecodeDescriptor(desc_buffers[slot], max_chunks, &binding_bytes));
    if (!last) LOCKSTEP_RETURN_IF_ERROR(Send(*desc_out, desc_buffers[slot]));
    ++next_descriptor;
    Incoming in;
    if (d.kind == StepDescriptor::Kind::kEnd) {
      ended = true;
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(request, desc_in.Post(std::span<std::byte>(desc_buffers[slot])));
      if (binding_bytes > 0) {
        in.bindings.resize(binding_bytes);
        LOCKSTEP_ASSIGN_OR_RETURN(in.bindings_request,
                                  bind_in.Post(std::span<std::byte>(in.bindings)));
      }
      // This tp rank's slice lands in its place of the padded whole; the
      // allgather fills in the others' before the layers run.
      const size_t slice = SliceFloats(static_cast<size_t>(d.num_tokens() * h));
      in.hidden = TakeBuffer(slice * static_cast<size_t>(layout_.tp));
      std::span<float> mine =
          std::span<float>(in.hidden).subspan(static_cast<size_t>(layout_.tp_rank) * slice, slice);
      LOCKSTEP_ASSIGN_OR_RETURN(in.hidden_request, hidden_in.Post(std::as_writable_bytes(mine)));
      times_.hidden_bytes_received += slice * sizeof(float);
      times_.hidden_tokens_received += d.num_tokens();
    }
    in.descriptor = std::move(d);
    ready.push_back(std::move(in));
    return true;
  };

  std::vector<float> logits;
  while (true) {
    if (ready.empty()) LOCKSTEP_RETURN_IF_ERROR(accept(true).status());
    Incoming& in = ready.front();
    if (in.descriptor.kind == StepDescriptor::Kind::kEnd) break;
    // Look ahead: take descriptors that have already arrived, so that their
    // hidden-state receives are posted before their data is sent.
    while (ready.size() < ring) {
      LOCKSTEP_ASSIGN_OR_RETURN(bool taken, accept(false));
      if (!taken) break;
    }
    StepDescriptor& d = in.descriptor;
    if (in.bindings_request.valid()) {
      LOCKSTEP_RETURN_IF_ERROR(Wait(in.bindings_request));
      LOCKSTEP_RETURN_IF_ERROR(DecodeBindings(in.bindings, &d));
      if (!last) LOCKSTEP_RETURN_IF_ERROR(Send(*bind_out, std::move(in.bindings)));
    }
    engine_.ApplyBindings(d.bindings);
    const TokenBatch batch = d.Batch();
    LOCKSTEP_RETURN_IF_ERROR(Wait(in.hidden_request));
    if (layout_.tp > 1) {
      const Clock::time_point start = Clock::now();
      const size_t slice = in.hidden.size() / static_cast<size_t>(layout_.tp);
      LOCKSTEP_RETURN_IF_ERROR(
          tp_group_->AllGather(std::span<const float>(in.hidden).subspan(
                                   static_cast<size_t>(layout_.tp_rank) * slice, slice),
                               std::span<float>(in.hidden)));
      times_.wait_s += Since(start);
    }
    LOCKSTEP_RETURN_IF_ERROR(engine_.RunLayers(batch, in.hidden.data()));
    ++times_.steps;
    if (last) {
      logits.resize(batch.logits_rows.size() * static_cast<size_t>(vocab));
      LOCKSTEP_RETURN_IF_ERROR(engine_.ComputeLogits(batch, in.hidden.data(), logits.data()));
      LOCKSTEP_ASSIGN_OR_RETURN(StepOutcomes outcomes,
                                sampler_->Sample(d, logits.data(), vocab, engine_));
      std::vector<std::byte> bytes;
      EncodeOutcomes(outcomes, max_chunks, &bytes);
      LOCKSTEP_RETURN_IF_ERROR(Send(*outcome_out, std::move(bytes)));
      free_buffers_.push_back(std::move(in.hidden));
    } else {
      // Padded already: the same slices as the ones received.
      LOCKSTEP_RETURN_IF_ERROR(SendHidden(*hidden_out, std::move(in.hidden)));
    }
    ready.pop_front();
  }
  return ReapSends(true);
}

}  // namespace lockstep::runtime
