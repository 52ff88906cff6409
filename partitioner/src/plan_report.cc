#include "lockstep/partitioner/plan_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lockstep/base/plural.h"

namespace lockstep::partitioner {
namespace {

double Percent(double part, double whole) {
  return whole > 0 ? 100.0 * part / whole : 0.0;
}

std::string Shares(const RankShares& s, double total) {
  return fmt::format("{:5.1f} {:5.1f} {:5.1f} {:5.1f}", Percent(s.compute_s, total),
                     Percent(s.memory_s, total), Percent(s.communication_s, total),
                     Percent(s.idle_s, total));
}

}  // namespace

std::string FormatSeconds(double s) {
  const double a = std::fabs(s);
  if (a >= 1.0) return fmt::format("{:.2f} s", s);
  if (a >= 1e-3) return fmt::format("{:.2f} ms", s * 1e3);
  if (a >= 1e-6) return fmt::format("{:.1f} us", s * 1e6);
  return fmt::format("{:.1f} ns", s * 1e9);
}

std::string FormatBytes(double b) {
  if (b >= 1e12) return fmt::format("{:.2f} TB", b / 1e12);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

std::string FormatPlanReport(const Plan& plan, const ReportOptions& options) {
  const PlanRequest& q = plan.request;
  const ClusterSpec& c = q.cluster;
  const Workload& w = q.workload;
  const Prediction& p = plan.prediction;
  const double total = p.total_time_s;
  std::string out;
  auto line = [&out](const std::string& s) {
    out += s;
    out += '\n';
  };

  line(fmt::format("plan: {} ({} parameters) on {} ({} per node, {})",
                   q.model.name.empty() ? "unnamed model" : q.model.name,
                   FormatCount(static_cast<double>(q.model.NumParameters())),
                   Plural(c.num_chips, c.chip.name + " chip"), c.chips_per_node,
                   Plural(c.num_nodes(), "node")));
  line(fmt::format("  tp {} x pp {}, {} ({}, objective {})", plan.tp, plan.pp,
                   Plural(plan.micro_batches, "micro-batch"), q.tp == 0 ? "automatic" : "manual",
                   ObjectiveName(q.objective)));
  line(
      fmt::format("  workload: batch {}, prompt {}, {} generated; weights {}, activations "
                  "and KV cache {}",
                  w.batch_size, Plural(w.prompt_length, "token"), w.generated_length,
                  ElementTypeName(w.weight_type), ElementTypeName(w.activation_type)));
  line(fmt::format(
      "  chip: {} memory ({}), {}/s memory bandwidth; links {}/s + {} inside a node, "
      "{}/s + {} between nodes",
      FormatBytes(static_cast<double>(c.ChipMemoryBytes())),
      c.chip.shared_by_node ? "its share of the node" : "each",
      FormatBytes(c.ChipMemoryBandwidth()), FormatBytes(c.intra_node_link.PeerBandwidth()),
      FormatSeconds(c.intra_node_link.latency_s), FormatBytes(c.inter_node_link.PeerBandwidth()),
      FormatSeconds(c.inter_node_link.latency_s)));
  if (!plan.executable()) {
    line("  note: int8 weights are a cost study; lockstep executes f32, f16 and bf16 weights");
  }
  line("");

  const bool list_ranks = options.all_ranks || plan.num_ranks() <= 64;
  line(
      "stages (memory: the largest rank of the stage; time shares: mean of its ranks over the "
      "whole workload, %)");
  line(fmt::format("  {:>5}  {:<16} {:<11} {:>10} {:>10} {:>10} {:>10} {:>5}  {:>10} {:>10}  {}",
                   "stage", "layers", "ranks", "memory", "weights", "kv cache", "other", "use%",
                   "prefill", "decode", " comp   mem  comm  idle"));
  const double chip_memory = static_cast<double>(c.ChipMemoryBytes());
  for (const StagePlan& s : plan.stages) {
    const RankPlan* largest = nullptr;
    RankShares mean;
    for (int r : plan.TpGroup(s.stage)) {
      const RankPlan& rp = plan.Rank(r);
      if (largest == nullptr || rp.memory.total() > largest->memory.total()) largest = &rp;
      const RankShares& sh = p.ranks[r];
      mean.compute_s += sh.compute_s / plan.tp;
      mean.memory_s += sh.memory_s / plan.tp;
      mean.communication_s += sh.communication_s / plan.tp;
      mean.idle_s += sh.idle_s / plan.tp;
    }
    std::string layers = fmt::format("{}-{}", s.layer_begin, s.layer_end - 1);
    if (s.embedding) layers += " +emb";
    if (s.lm_head) layers += " +head";
    const RankMemory& m = largest->memory;
    const StagePrediction& sp = p.stages[s.stage];
    line(fmt::format(
        "  {:>5}  {:<16} {:<11} {:>10} {:>10} {:>10} {:>10} {:>5.1f}  {:>10} {:>10}  {}", s.stage,
        layers,
        plan.tp == 1 ? fmt::format("{}", plan.WorldRank(s.stage, 0))
                     : fmt::format("{}-{}", plan.WorldRank(s.stage, 0),
                                   plan.WorldRank(s.stage, plan.tp - 1)),
        FormatBytes(static_cast<double>(m.total())), FormatBytes(static_cast<double>(m.weights)),
        FormatBytes(static_cast<double>(m.kv_cache)),
        FormatBytes(static_cast<double>(m.activations + m.comm_buffers)),
        Percent(static_cast<double>(m.total()), chip_memory), FormatSeconds(sp.prefill.time_s),
        FormatSeconds(sp.decode.time_s), Shares(mean, total)));
  }
  line(
      fmt::format("  (prefill: the whole prompt of a micro-batch of {} sequence{}, in {} "
                  "chunk{}; decode: one step at context {})",
                  p.stages.empty() ? 0 : p.stages[0].decode.sequences,
                  p.stages.empty() || p.stages[0].decode.sequences == 1 ? "" : "s",
                  w.NumPrefillChunks(), w.NumPrefillChunks() == 1 ? "" : "s", p.decode_context));
  line("");

  if (list_ranks) {
    line("ranks (time shares over the whole workload, %)");
    line(fmt::format("  {:>5} {:>5} {:>3} {:>5}  {:>10} {:>5}  {}", "rank", "stage", "tp", "node",
                     "memory", "use%", " comp   mem  comm  idle"));
    for (const RankPlan& r : plan.ranks) {
      line(fmt::format("  {:>5} {:>5} {:>3} {:>5}  {:>10} {:>5.1f}  {}", r.rank, r.stage, r.tp_rank,
                       r.node, FormatBytes(static_cast<double>(r.memory.total())),
                       Percent(static_cast<double>(r.memory.total()), chip_memory),
                       Shares(p.ranks[r.rank], total)));
    }
  } else {
    line(fmt::format("ranks: {} (listed with --show-ranks; the stage table shows their means)",
                     plan.num_ranks()));
  }
  line("");

  line("prediction");
  line(fmt::format("  time to first token   {} (prefill of {})",
                   FormatSeconds(p.time_to_first_token_s),
                   w.batch_size == 1 ? std::string("the sequence")
                                     : fmt::format("all {} sequences", w.batch_size)));
  line(fmt::format("  decode latency        {} per token = {:.1f} tokens/s per user",
                   FormatSeconds(p.decode_latency_per_token_s), p.decode_tokens_per_s_per_user));
  line(fmt::format("  throughput            {:.1f} generated tokens/s ({} x {} tokens in {})",
                   p.throughput_tokens_per_s, w.batch_size, w.generated_length,
                   FormatSeconds(p.total_time_s)));

  if (options.op_breakdown && !p.stages.empty()) {
    const StagePrediction* slowest = &p.stages[0];
    for (const StagePrediction& s : p.stages) {
      if (s.decode.time_s > slowest->decode.time_s) slowest = &s;
    }
    line("");
    line(fmt::format("decode pass of stage {} (the slowest), per operator, slowest rank:",
                     slowest->stage));
    line(fmt::format("  {:<20} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10}  {:<13} {:>6}", "op",
                     "count", "flops", "bytes", "comm", "each", "total", "bound", "share"));
    for (const OpCost& op : slowest->decode.ops) {
      line(fmt::format("  {:<20} {:>5} {:>10.3g} {:>10} {:>10} {:>10} {:>10}  {:<13} {:>5.1f}%",
                       op.name, op.count, op.flops, FormatBytes(op.bytes),
                       FormatBytes(op.comm_bytes), FormatSeconds(op.time_s),
                       FormatSeconds(op.total_s()), OpBoundName(op.bound),
                       Percent(op.total_s(), slowest->decode.time_s)));
    }
    line(fmt::format("  handoff to the next stage: {}", FormatSeconds(slowest->decode_handoff_s)));
  }
  return out;
}

}  // namespace lockstep::partitioner
