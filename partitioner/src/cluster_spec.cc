#include "lockstep/partitioner/cluster_spec.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "json_reader.h"
#include "lockstep/base/json_nesting.h"

namespace lockstep::partitioner {
namespace {

using internal::JsonReader;

void ReadLink(JsonReader& parent, std::string_view field, LinkSpec* link) {
  JsonReader r = parent.Object(field);
  r.Double("bandwidth_bytes_per_s", &link->bandwidth_bytes_per_s);
  r.Double("latency_s", &link->latency_s);
  r.Int("links_per_peer", &link->links_per_peer, /*required=*/false);
  parent.Fail(r.Finish());
}

nlohmann::json LinkToJson(const LinkSpec& link) {
  return {{"bandwidth_bytes_per_s", link.bandwidth_bytes_per_s},
          {"latency_s", link.latency_s},
          {"links_per_peer", link.links_per_peer}};
}

Status CheckPositive(double value, std::string_view field) {
  if (!(value > 0) || !std::isfinite(value)) {
    return InvalidArgument("field '{}' must be a positive number, got {}", field, value);
  }
  return Status::Ok();
}

Status CheckLink(const LinkSpec& link, std::string_view name) {
  LOCKSTEP_RETURN_IF_ERROR(
      CheckPositive(link.bandwidth_bytes_per_s, fmt::format("{}.bandwidth_bytes_per_s", name)));
  if (!(link.latency_s >= 0) || !std::isfinite(link.latency_s)) {
    return InvalidArgument("field '{}.latency_s' must be zero or positive, got {}", name,
                           link.latency_s);
  }
  if (link.links_per_peer < 1) {
    return InvalidArgument("field '{}.links_per_peer' must be at least 1, got {}", name,
                           link.links_per_peer);
  }
  return Status::Ok();
}

// {"1": 1.4e10, "2": 2.6e10}: thread counts (decimal keys) to bytes/s.
void ReadBandwidthTable(JsonReader& chip, const nlohmann::json& table, std::map<int, double>* out) {
  constexpr std::string_view kField = "memory_bandwidth_by_threads";
  if (!table.is_object()) {
    chip.Fail(kField, "must be an object of thread counts to bytes/s, e.g. {\"1\": 1.4e10}");
    return;
  }
  for (const auto& [key, value] : table.items()) {
    int threads = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), threads);
    if (ec != std::errc() || end != key.data() + key.size() || threads < 1) {
      chip.Fail(kField, fmt::format("has key \"{}\"; keys are thread counts (1, 2, ...)", key));
      return;
    }
    if (!value.is_number()) {
      chip.Fail(kField, fmt::format("entry \"{}\" must be a number, got {}", key, value.dump()));
      return;
    }
    (*out)[threads] = value.get<double>();
  }
}

// A positive decimal key ("16") of a table; records an error otherwise.
bool ReadKey(JsonReader& chip, std::string_view field, const std::string& key, int64_t* out) {
  const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), *out);
  if (ec != std::errc() || end != key.data() + key.size() || *out < 1) {
    chip.Fail(field, fmt::format("has key \"{}\"; keys are counts (1, 2, ...)", key));
    return false;
  }
  return true;
}

// {"1": 2e10, "2": 4e10}: counts to rates.
template <typename Key>
void ReadRateTable(JsonReader& chip, std::string_view field, const nlohmann::json& table,
                   std::map<Key, double>* out) {
  if (!table.is_object()) {
    chip.Fail(field, "must be an object of counts to rates, e.g. {\"1\": 2e10}");
    return;
  }
  for (const auto& [key, value] : table.items()) {
    int64_t count = 0;
    if (!ReadKey(chip, field, key, &count)) return;
    if (!value.is_number()) {
      chip.Fail(field, fmt::format("entry \"{}\" must be a number, got {}", key, value.dump()));
      return;
    }
    (*out)[static_cast<Key>(count)] = value.template get<double>();
  }
}

// {"2": {"1": 2e10, "16": 9e10}}: threads -> tokens -> FLOP/s.
void ReadThreadsTable(JsonReader& chip, std::string_view field, const nlohmann::json& table,
                      std::map<int, std::map<int64_t, double>>* out) {
  if (!table.is_object()) {
    chip.Fail(field, "must be an object: threads -> tokens -> FLOP/s");
    return;
  }
  for (const auto& [threads_key, by_tokens] : table.items()) {
    int64_t threads = 0;
    if (!ReadKey(chip, field, threads_key, &threads)) return;
    ReadRateTable(chip, field, by_tokens, &(*out)[static_cast<int>(threads)]);
  }
}

// {"bf16": ..., "q8_0": ...}: weight type -> a table `read` reads
// (ReadThreadsTable for matmul_flops, ReadRateTable for the concurrency).
template <typename Table, typename Read>
void ReadByType(JsonReader& chip, std::string_view field, const nlohmann::json& table,
                std::map<ElementType, Table>* out, Read read) {
  if (!table.is_object()) {
    chip.Fail(field, "must be an object: weight type -> table");
    return;
  }
  for (const auto& [type_name, entry] : table.items()) {
    Result<ElementType> type = ParseElementType(type_name);
    if (!type.ok()) {
      chip.Fail(field, fmt::format("has key \"{}\"; keys are f32, f16, bf16, int8, q8_0, q4_0",
                                   type_name));
      return;
    }
    if (!entry.is_object()) {
      chip.Fail(field, fmt::format("entry \"{}\" must be an object of counts", type_name));
      return;
    }
    read(chip, field, entry, &(*out)[*type]);
  }
}

// A count -> value table as JSON ({"1": 2e10, "16": 9e10}).
template <typename Key>
nlohmann::json CountTableJson(const std::map<Key, double>& table) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [count, value] : table) out[std::to_string(count)] = value;
  return out;
}

}  // namespace

double ChipSpec::PeakFlops(ElementType t) const {
  double rate = peak_flops[static_cast<int>(t)];
  return rate > 0 ? rate : peak_flops[static_cast<int>(ElementType::kF32)];
}

ElementType ChipSpec::DefaultActivationType() const {
  if (activation_type) return *activation_type;
  for (ElementType t : {ElementType::kF32, ElementType::kBF16, ElementType::kF16}) {
    if (peak_flops[static_cast<int>(t)] > 0) return t;
  }
  return ElementType::kF32;
}

std::vector<ElementType> ChipSpec::DefaultWeightTypes() const {
  if (!weight_types.empty()) return weight_types;
  // 16-bit floats first (how checkpoints ship), widened to f32 where the chip
  // has no unit for them; int8 only with a unit of its own.
  std::vector<ElementType> types;
  for (ElementType t : {ElementType::kBF16, ElementType::kF16, ElementType::kF32}) {
    if (PeakFlops(t) > 0) types.push_back(t);
  }
  if (peak_flops[static_cast<int>(ElementType::kInt8)] > 0) types.push_back(ElementType::kInt8);
  return types;
}

namespace {

// "f16" -> kF16 for a field of `reader`; records an error otherwise.
std::optional<ElementType> ReadType(JsonReader& reader, std::string_view field,
                                    const nlohmann::json& value) {
  if (value.is_string()) {
    Result<ElementType> t = ParseElementType(value.get<std::string>());
    if (t.ok()) return *t;
  }
  reader.Fail(field, fmt::format("must be one of \"f32\", \"f16\", \"bf16\", \"int8\", got {}",
                                 value.dump()));
  return std::nullopt;
}

}  // namespace

Status ClusterSpec::Validate() const {
  if (num_chips < 1)
    return InvalidArgument("field 'num_chips' must be at least 1, got {}", num_chips);
  if (num_chips > kMaxClusterChips) {
    return InvalidArgument("field 'num_chips' is {}, more than lockstep supports ({})", num_chips,
                           kMaxClusterChips);
  }
  if (chips_per_node < 1) {
    return InvalidArgument("field 'chips_per_node' must be at least 1, got {}", chips_per_node);
  }
  if (chip.memory_bytes <= 0) {
    return InvalidArgument("field 'chip.memory_bytes' must be positive, got {}", chip.memory_bytes);
  }
  LOCKSTEP_RETURN_IF_ERROR(
      CheckPositive(chip.memory_bandwidth_bytes_per_s, "chip.memory_bandwidth_bytes_per_s"));
  bool any_rate = false;
  for (int i = 0; i < kNumComputeTypes; ++i) {
    double rate = chip.peak_flops[i];
    if (rate < 0 || !std::isfinite(rate)) {
      return InvalidArgument("field 'chip.peak_flops.{}' must be positive, got {}",
                             ElementTypeName(static_cast<ElementType>(i)), rate);
    }
    any_rate = any_rate || rate > 0;
  }
  if (!any_rate) {
    return InvalidArgument(
        "field 'chip.peak_flops' needs at least one rate, e.g. {{\"f32\": 1e11}}");
  }
  if (!(chip.op_overhead_s >= 0) || !std::isfinite(chip.op_overhead_s)) {
    return InvalidArgument("field 'chip.op_overhead_s' must be zero or positive, got {}",
                           chip.op_overhead_s);
  }
  if (chip.links_per_chip < 0) {
    return InvalidArgument(
        "field 'chip.links_per_chip' must be zero (unlimited) or positive, got {}",
        chip.links_per_chip);
  }
  if (chip.cores < 0) {
    return InvalidArgument("field 'chip.cores' must be zero (unknown) or positive, got {}",
                           chip.cores);
  }
  for (const auto& [threads, rate] : chip.memory_bandwidth_by_threads) {
    if (threads < 1 || (chip.cores > 0 && threads > chip.cores)) {
      return InvalidArgument(
          "field 'chip.memory_bandwidth_by_threads' has {} threads; keys must be from 1 to "
          "chip.cores ({})",
          threads, chip.cores);
    }
    LOCKSTEP_RETURN_IF_ERROR(
        CheckPositive(rate, fmt::format("chip.memory_bandwidth_by_threads.{}", threads)));
  }
  if (!chip.memory_bandwidth_by_threads.empty() && chip.cores == 0) {
    return InvalidArgument(
        "field 'chip.memory_bandwidth_by_threads' needs 'chip.cores' (the threads of the full "
        "node)");
  }
  if (threads_per_chip < 0) {
    return InvalidArgument("field 'threads_per_chip' must be zero (unknown) or positive, got {}",
                           threads_per_chip);
  }
  auto check_threads = [&](std::string_view field, int threads) -> Status {
    if (threads < 1 || (chip.cores > 0 && threads > chip.cores)) {
      return InvalidArgument("field '{}' has {} threads; keys must be from 1 to chip.cores ({})",
                             field, threads, chip.cores);
    }
    return Status::Ok();
  };
  auto check_rates = [&](const std::string& field,
                         const std::map<int, std::map<int64_t, double>>& by_threads) -> Status {
    for (const auto& [threads, by_tokens] : by_threads) {
      LOCKSTEP_RETURN_IF_ERROR(check_threads(field, threads));
      if (by_tokens.empty()) {
        return InvalidArgument("field '{}.{}' needs at least one token count", field, threads);
      }
      for (const auto& [tokens, rate] : by_tokens) {
        if (tokens < 1) {
          return InvalidArgument("field '{}.{}' has {} tokens; token counts start at 1", field,
                                 threads, tokens);
        }
        LOCKSTEP_RETURN_IF_ERROR(
            CheckPositive(rate, fmt::format("{}.{}.{}", field, threads, tokens)));
      }
    }
    return Status::Ok();
  };
  for (const auto& [type, by_threads] : chip.matmul_flops) {
    LOCKSTEP_RETURN_IF_ERROR(
        check_rates(fmt::format("chip.matmul_flops.{}", ElementTypeName(type)), by_threads));
  }
  LOCKSTEP_RETURN_IF_ERROR(
      check_rates("chip.bf16_compute_matmul_flops", chip.bf16_compute_matmul_flops));
  for (const auto& [threads, rate] : chip.attention_flops) {
    LOCKSTEP_RETURN_IF_ERROR(check_threads("chip.attention_flops", threads));
    LOCKSTEP_RETURN_IF_ERROR(CheckPositive(rate, fmt::format("chip.attention_flops.{}", threads)));
  }
  for (const auto& [threads, rate] : chip.decode_attention_flops) {
    LOCKSTEP_RETURN_IF_ERROR(check_threads("chip.decode_attention_flops", threads));
    LOCKSTEP_RETURN_IF_ERROR(
        CheckPositive(rate, fmt::format("chip.decode_attention_flops.{}", threads)));
  }
  auto check_factors = [](const std::string& field,
                          const std::map<int64_t, double>& by_tokens) -> Status {
    for (const auto& [tokens, factor] : by_tokens) {
      if (tokens < 1) {
        return InvalidArgument("field '{}' has {} tokens; token counts start at 1", field, tokens);
      }
      LOCKSTEP_RETURN_IF_ERROR(CheckPositive(factor, fmt::format("{}.{}", field, tokens)));
    }
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(check_factors("chip.matmul_concurrency", chip.matmul_concurrency));
  for (const auto& [type, by_tokens] : chip.matmul_concurrency_by_type) {
    const std::string field =
        fmt::format("chip.matmul_concurrency_by_type.{}", ElementTypeName(type));
    if (by_tokens.empty())
      return InvalidArgument("field '{}' needs at least one token count", field);
    LOCKSTEP_RETURN_IF_ERROR(check_factors(field, by_tokens));
  }
  if ((!chip.matmul_concurrency.empty() || !chip.matmul_concurrency_by_type.empty()) &&
      chip.cores == 0) {
    return InvalidArgument(
        "field 'chip.matmul_concurrency' needs 'chip.cores' (the threads of the full node)");
  }
  LOCKSTEP_RETURN_IF_ERROR(CheckLink(intra_node_link, "intra_node_link"));
  LOCKSTEP_RETURN_IF_ERROR(CheckLink(inter_node_link, "inter_node_link"));
  if (chip.links_per_chip > 0) {
    int64_t needed =
        int64_t{std::min(chips_per_node, num_chips) - 1} * intra_node_link.links_per_peer;
    if (needed > chip.links_per_chip) {
      return InvalidArgument(
          "a fully connected node of {} chips with intra_node_link.links_per_peer {} needs {} "
          "links per chip but field 'chip.links_per_chip' is {}; lower chips_per_node or "
          "links_per_peer",
          chips_per_node, intra_node_link.links_per_peer, needed, chip.links_per_chip);
    }
  }
  if (allreduce_large_min_bytes < 0) {
    return InvalidArgument("field 'allreduce_large_min_bytes' must be zero or positive, got {}",
                           allreduce_large_min_bytes);
  }
  return Status::Ok();
}

// Node sharing divides by the chips on one (full) node.
int64_t ClusterSpec::ChipMemoryBytes() const {
  if (!chip.shared_by_node) return chip.memory_bytes;
  return chip.memory_bytes / std::min(chips_per_node, num_chips);
}

double ClusterSpec::ChipMemoryBandwidth() const {
  return BusyChipMemoryBandwidth(std::min(chips_per_node, num_chips));
}

double ClusterSpec::ChipPeakFlops(ElementType t) const {
  return BusyChipPeakFlops(t, std::min(chips_per_node, num_chips));
}

int ClusterSpec::BusyThreads(int busy) const {
  if (!chip.shared_by_node || chip.cores <= 0 || threads_per_chip <= 0) return 0;
  return static_cast<int>(
      std::min<int64_t>(int64_t{std::max(busy, 1)} * threads_per_chip, chip.cores));
}

double ClusterSpec::NodeBandwidthWithThreads(int threads) const {
  const double full = chip.memory_bandwidth_bytes_per_s;
  if (chip.cores <= 0 || threads >= chip.cores) return full;
  // Points (0, 0), the measured ones, (cores, full); linear in between.
  int below_threads = 0;
  double below = 0;
  for (const auto& [n, rate] : chip.memory_bandwidth_by_threads) {
    if (n == threads) return rate;
    if (n > threads) {
      return below + (rate - below) * (threads - below_threads) / (n - below_threads);
    }
    below_threads = n;
    below = rate;
  }
  return below + (full - below) * (threads - below_threads) / (chip.cores - below_threads);
}

double ClusterSpec::BusyChipMemoryBandwidth(int busy) const {
  if (!chip.shared_by_node) return chip.memory_bandwidth_bytes_per_s;
  busy = std::max(busy, 1);
  const int threads = BusyThreads(busy);
  const double node =
      threads > 0 ? NodeBandwidthWithThreads(threads) : chip.memory_bandwidth_bytes_per_s;
  return node / busy;
}

namespace {

// `table` (threads -> value) at `threads`: linear between the measured
// counts and through 0 below the first; the largest count's value above it
// or when threads is 0 (unknown).
double AtThreads(const std::map<int, double>& table, int threads) {
  if (table.empty()) return 0;
  if (threads <= 0) return table.rbegin()->second;
  int below_threads = 0;
  double below = 0;
  for (const auto& [n, value] : table) {
    if (n == threads) return value;
    if (n > threads)
      return below + (value - below) * (threads - below_threads) / (n - below_threads);
    below_threads = n;
    below = value;
  }
  return below;
}

// `table` (tokens -> rate) at `tokens`: linear in log2(tokens) between the
// measured counts, the end values outside them.
double AtTokens(const std::map<int64_t, double>& table, int64_t tokens) {
  if (table.empty()) return 0;
  if (tokens <= table.begin()->first) return table.begin()->second;
  auto above = table.lower_bound(tokens);
  if (above == table.end()) return table.rbegin()->second;
  if (above->first == tokens) return above->second;
  auto below = std::prev(above);
  const double x0 = std::log2(static_cast<double>(below->first));
  const double x1 = std::log2(static_cast<double>(above->first));
  const double x = std::log2(static_cast<double>(tokens));
  return below->second + (above->second - below->second) * (x - x0) / (x1 - x0);
}

}  // namespace

// One of `busy` chips with its own threads (see BusyChipMatmulFlops):
// `by_threads` at threads_per_chip threads, times `concurrency` scaled by the
// other cores kept busy, times the oversubscription share.
double ClusterSpec::OwnThreadsRate(const std::map<int, double>& by_threads, int busy,
                                   double concurrency) const {
  const int own = std::min(threads_per_chip, chip.cores);
  const int64_t wanted = int64_t{std::max(busy, 1)} * threads_per_chip;
  const int others = BusyThreads(busy) - own;  // cores the other busy chips keep busy
  double rate = AtThreads(by_threads, own);
  if (others > 0 && chip.cores > 1) {
    rate *= 1.0 + (concurrency - 1.0) * static_cast<double>(others) / (chip.cores - 1);
  }
  if (wanted > chip.cores) rate *= static_cast<double>(chip.cores) / static_cast<double>(wanted);
  return rate;
}

bool ClusterSpec::ChipsHaveOwnThreads() const {
  return chip.shared_by_node && chip.cores > 0 && threads_per_chip > 0;
}

double ClusterSpec::BusyChipMatmulFlops(ElementType weight_type, int64_t tokens, int busy,
                                        bool bf16_compute) const {
  const auto& tables = chip.matmul_flops;
  // A type without a table borrows one: f16 and bf16 each other's (the same
  // widening), quantized types bf16's (what every calibration measures),
  // then any float one.
  auto table = tables.find(weight_type);
  for (ElementType stand_in :
       {weight_type == ElementType::kBF16 ? ElementType::kF16 : ElementType::kBF16,
        ElementType::kF16, ElementType::kF32}) {
    if (table == tables.end()) table = tables.find(stand_in);
  }
  const std::map<int, std::map<int64_t, double>>* chosen =
      table == tables.end() ? nullptr : &table->second;
  if (bf16_compute && !chip.bf16_compute_matmul_flops.empty()) {
    chosen = &chip.bf16_compute_matmul_flops;
  }
  if (chosen == nullptr || chosen->empty()) return 0;
  busy = std::max(busy, 1);
  std::map<int, double> by_threads;
  for (const auto& [n, by_tokens] : *chosen) by_threads[n] = AtTokens(by_tokens, tokens);
  if (ChipsHaveOwnThreads()) {
    const auto own = chip.matmul_concurrency_by_type.find(weight_type);
    const std::map<int64_t, double>& factors =
        own != chip.matmul_concurrency_by_type.end() ? own->second : chip.matmul_concurrency;
    const double concurrency = factors.empty() ? 1.0 : AtTokens(factors, tokens);
    return OwnThreadsRate(by_threads, busy, concurrency);
  }
  const double node = AtThreads(by_threads, 0);
  return chip.shared_by_node ? node / busy : node;
}

double ClusterSpec::BusyChipAttentionFlops(int busy, bool decode) const {
  const std::map<int, double>& table = decode && !chip.decode_attention_flops.empty()
                                           ? chip.decode_attention_flops
                                           : chip.attention_flops;
  if (table.empty()) return 0;
  busy = std::max(busy, 1);
  if (ChipsHaveOwnThreads()) return OwnThreadsRate(table, busy, 1.0);
  const double node = AtThreads(table, 0);
  return chip.shared_by_node ? node / busy : node;
}

double ClusterSpec::BusyChipPeakFlops(ElementType t, int busy) const {
  if (!chip.shared_by_node) return chip.PeakFlops(t);
  busy = std::max(busy, 1);
  const int threads = BusyThreads(busy);
  // FMA units scale with cores, unlike the memory bus.
  const double node = threads > 0 ? chip.PeakFlops(t) * threads / chip.cores : chip.PeakFlops(t);
  return node / busy;
}

Result<ClusterSpec> ClusterSpecFromJson(const nlohmann::json& json, std::string_view source) {
  ClusterSpec spec;
  JsonReader r(json, source);
  r.Int("num_chips", &spec.num_chips);
  r.Int("chips_per_node", &spec.chips_per_node);
  {
    JsonReader c = r.Object("chip");
    c.String("name", &spec.chip.name, /*required=*/false);
    c.Int("memory_bytes", &spec.chip.memory_bytes);
    c.Double("memory_bandwidth_bytes_per_s", &spec.chip.memory_bandwidth_bytes_per_s);
    {
      JsonReader f = c.Object("peak_flops");
      for (int i = 0; i < kNumComputeTypes; ++i) {
        f.Double(ElementTypeName(static_cast<ElementType>(i)), &spec.chip.peak_flops[i],
                 /*required=*/false);
      }
      c.Fail(f.Finish());
    }
    c.Double("op_overhead_s", &spec.chip.op_overhead_s, /*required=*/false);
    c.Int("links_per_chip", &spec.chip.links_per_chip, /*required=*/false);
    c.Bool("shared_by_node", &spec.chip.shared_by_node, /*required=*/false);
    c.Int("cores", &spec.chip.cores, /*required=*/false);
    if (const nlohmann::json* table = c.Raw("memory_bandwidth_by_threads", /*required=*/false)) {
      ReadBandwidthTable(c, *table, &spec.chip.memory_bandwidth_by_threads);
    }
    c.String("source", &spec.chip.source, /*required=*/false);
    if (const nlohmann::json* table = c.Raw("matmul_flops", /*required=*/false)) {
      ReadByType(c, "matmul_flops", *table, &spec.chip.matmul_flops, ReadThreadsTable);
    }
    if (const nlohmann::json* table = c.Raw("bf16_compute_matmul_flops", /*required=*/false)) {
      ReadThreadsTable(c, "bf16_compute_matmul_flops", *table,
                       &spec.chip.bf16_compute_matmul_flops);
    }
    if (const nlohmann::json* table = c.Raw("attention_flops", /*required=*/false)) {
      ReadRateTable(c, "attention_flops", *table, &spec.chip.attention_flops);
    }
    if (const nlohmann::json* table = c.Raw("decode_attention_flops", /*required=*/false)) {
      ReadRateTable(c, "decode_attention_flops", *table, &spec.chip.decode_attention_flops);
    }
    if (const nlohmann::json* table = c.Raw("matmul_concurrency", /*required=*/false)) {
      ReadRateTable(c, "matmul_concurrency", *table, &spec.chip.matmul_concurrency);
    }
    if (const nlohmann::json* table = c.Raw("matmul_concurrency_by_type", /*required=*/false)) {
      ReadByType(c, "matmul_concurrency_by_type", *table, &spec.chip.matmul_concurrency_by_type,
                 ReadRateTable<int64_t>);
    }
    if (const nlohmann::json* t = c.Raw("activation_type", /*required=*/false)) {
      spec.chip.activation_type = ReadType(c, "activation_type", *t);
    }
    if (const nlohmann::json* list = c.Raw("weight_types", /*required=*/false)) {
      if (!list->is_array() || list->empty()) {
        c.Fail("weight_types", "must be a non-empty list of types, e.g. [\"f16\", \"int8\"]");
      } else {
        for (const nlohmann::json& t : *list) {
          if (std::optional<ElementType> type = ReadType(c, "weight_types", t)) {
            spec.chip.weight_types.push_back(*type);
          }
        }
      }
    }
    r.Fail(c.Finish());
  }
  ReadLink(r, "intra_node_link", &spec.intra_node_link);
  ReadLink(r, "inter_node_link", &spec.inter_node_link);
  r.Int("allreduce_large_min_bytes", &spec.allreduce_large_min_bytes, /*required=*/false);
  r.Int("threads_per_chip", &spec.threads_per_chip, /*required=*/false);
  LOCKSTEP_RETURN_IF_ERROR(r.Finish());
  Status valid = spec.Validate();
  if (!valid.ok()) return valid.WithContext(source);
  return spec;
}

Result<ClusterSpec> LoadClusterSpecFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("{}: cannot open cluster spec", path);
  nlohmann::json json;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LOCKSTEP_RETURN_IF_ERROR(CheckJsonNesting(text, path));
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, a number beyond a double
    return InvalidArgument("{}: not valid JSON: {}", path, e.what());
  }
  return ClusterSpecFromJson(json, path);
}

nlohmann::json ClusterSpecToJson(const ClusterSpec& spec) {
  nlohmann::json flops = nlohmann::json::object();
  for (int i = 0; i < kNumComputeTypes; ++i) {
    if (spec.chip.peak_flops[i] > 0) {
      flops[std::string(ElementTypeName(static_cast<ElementType>(i)))] = spec.chip.peak_flops[i];
    }
  }
  nlohmann::json chip = {{"name", spec.chip.name},
                         {"memory_bytes", spec.chip.memory_bytes},
                         {"memory_bandwidth_bytes_per_s", spec.chip.memory_bandwidth_bytes_per_s},
                         {"peak_flops", flops},
                         {"op_overhead_s", spec.chip.op_overhead_s},
                         {"links_per_chip", spec.chip.links_per_chip},
                         {"shared_by_node", spec.chip.shared_by_node},
                         {"source", spec.chip.source}};
  if (spec.chip.cores > 0) chip["cores"] = spec.chip.cores;
  auto threads_table = [](const std::map<int, std::map<int64_t, double>>& by_threads) {
    nlohmann::json threads = nlohmann::json::object();
    for (const auto& [n, by_tokens] : by_threads)
      threads[std::to_string(n)] = CountTableJson(by_tokens);
    return threads;
  };
  if (!spec.chip.matmul_flops.empty()) {
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [type, by_threads] : spec.chip.matmul_flops) {
      types[std::string(ElementTypeName(type))] = threads_table(by_threads);
    }
    chip["matmul_flops"] = types;
  }
  if (!spec.chip.bf16_compute_matmul_flops.empty()) {
    chip["bf16_compute_matmul_flops"] = threads_table(spec.chip.bf16_compute_matmul_flops);
  }
  if (!spec.chip.attention_flops.empty()) {
    chip["attention_flops"] = CountTableJson(spec.chip.attention_flops);
  }
  if (!spec.chip.decode_attention_flops.empty()) {
    chip["decode_attention_flops"] = CountTableJson(spec.chip.decode_attention_flops);
  }
  if (!spec.chip.matmul_concurrency.empty()) {
    chip["matmul_concurrency"] = CountTableJson(spec.chip.matmul_concurrency);
  }
  if (!spec.chip.matmul_concurrency_by_type.empty()) {
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [type, by_tokens] : spec.chip.matmul_concurrency_by_type) {
      types[std::string(ElementTypeName(type))] = CountTableJson(by_tokens);
    }
    chip["matmul_concurrency_by_type"] = types;
  }
  if (spec.chip.activation_type) {
    chip["activation_type"] = std::string(ElementTypeName(*spec.chip.activation_type));
  }
  if (!spec.chip.weight_types.empty()) {
    nlohmann::json types = nlohmann::json::array();
    for (ElementType t : spec.chip.weight_types) types.push_back(std::string(ElementTypeName(t)));
    chip["weight_types"] = types;
  }
  if (!spec.chip.memory_bandwidth_by_threads.empty()) {
    nlohmann::json table = nlohmann::json::object();
    for (const auto& [threads, rate] : spec.chip.memory_bandwidth_by_threads) {
      table[std::to_string(threads)] = rate;
    }
    chip["memory_bandwidth_by_threads"] = table;
  }
  nlohmann::json out = {{"num_chips", spec.num_chips},
                        {"chips_per_node", spec.chips_per_node},
                        {"chip", chip},
                        {"intra_node_link", LinkToJson(spec.intra_node_link)},
                        {"inter_node_link", LinkToJson(spec.inter_node_link)},
                        {"allreduce_large_min_bytes", spec.allreduce_large_min_bytes}};
  if (spec.threads_per_chip > 0) out["threads_per_chip"] = spec.threads_per_chip;
  return out;
}

Status SaveClusterSpecFile(const ClusterSpec& spec, const std::string& path) {
  std::ofstream out(path);
  if (!out) return IoError("{}: cannot open for writing", path);
  out << ClusterSpecToJson(spec).dump(2) << "\n";
  out.close();
  if (!out) return IoError("{}: write failed", path);
  return Status::Ok();
}

}  // namespace lockstep::partitioner
