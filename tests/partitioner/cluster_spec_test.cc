#include "lockstep/partitioner/cluster_spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lockstep/partitioner/chip_presets.h"
#include "lockstep/partitioner/workload.h"
#include "partitioner/test_models.h"

namespace lockstep::partitioner {
namespace {

nlohmann::json ValidSpec() {
  return nlohmann::json::parse(R"({
    "num_chips": 16,
    "chips_per_node": 8,
    "chip": {
      "name": "x",
      "memory_bytes": 1000000000,
      "memory_bandwidth_bytes_per_s": 1e12,
      "peak_flops": {"f16": 1e14, "int8": 2e14},
      "op_overhead_s": 1e-6,
      "links_per_chip": 16
    },
    "intra_node_link": {"bandwidth_bytes_per_s": 1.4e10, "latency_s": 1e-6},
    "inter_node_link": {"bandwidth_bytes_per_s": 1.4e10, "latency_s": 2e-6, "links_per_peer": 2}
  })");
}

std::string ErrorOf(const nlohmann::json& j) {
  Result<ClusterSpec> r = ClusterSpecFromJson(j, "spec.json");
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(ClusterSpecTest, ParsesAndRoundTrips) {
  Result<ClusterSpec> spec = ClusterSpecFromJson(ValidSpec(), "spec.json");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->num_chips, 16);
  EXPECT_EQ(spec->chip.PeakFlops(ElementType::kInt8), 2e14);
  EXPECT_EQ(spec->chip.PeakFlops(ElementType::kF32), 0);  // no f32 rate given
  EXPECT_EQ(spec->inter_node_link.PeerBandwidth(), 2.8e10);
  EXPECT_EQ(spec->intra_node_link.links_per_peer, 1);  // default
  EXPECT_EQ(spec->allreduce_large_min_bytes, 64 * 1024);
  Result<ClusterSpec> again = ClusterSpecFromJson(ClusterSpecToJson(*spec), "again");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *spec);
}

TEST(ClusterSpecTest, ErrorsNameTheField) {
  nlohmann::json j = ValidSpec();
  j["chip"].erase("memory_bytes");
  EXPECT_EQ(ErrorOf(j), "spec.json: field 'chip.memory_bytes' is missing (expected an integer)");

  j = ValidSpec();
  j["chip"]["memory_bytes"] = "lots";
  EXPECT_EQ(ErrorOf(j), "spec.json: field 'chip.memory_bytes' must be an integer, got \"lots\"");

  j = ValidSpec();
  j["chip"]["memroy_bytes"] = 5;
  EXPECT_EQ(ErrorOf(j), "spec.json: unknown field 'chip.memroy_bytes'");

  j = ValidSpec();
  j["intra_node_link"]["latency_s"] = -1;
  EXPECT_EQ(ErrorOf(j),
            "spec.json: field 'intra_node_link.latency_s' must be zero or positive, got -1");

  j = ValidSpec();
  j["inter_node_link"]["bandwidth_bytes_per_s"] = 0;
  EXPECT_NE(ErrorOf(j).find("'inter_node_link.bandwidth_bytes_per_s' must be a positive number"),
            std::string::npos);

  j = ValidSpec();
  j["chip"]["peak_flops"] = nlohmann::json::object();
  EXPECT_NE(ErrorOf(j).find("'chip.peak_flops' needs at least one rate"), std::string::npos);

  j = ValidSpec();
  j["chip"]["peak_flops"]["fp8"] = 1e15;
  EXPECT_EQ(ErrorOf(j), "spec.json: unknown field 'chip.peak_flops.fp8'");

  j = ValidSpec();
  j["num_chips"] = 0;
  EXPECT_EQ(ErrorOf(j), "spec.json: field 'num_chips' must be at least 1, got 0");

  j = ValidSpec();
  j["intra_node_link"]["links_per_peer"] = 3;  // 7 peers x 3 links > 16
  EXPECT_NE(ErrorOf(j).find("needs 21 links per chip but field 'chip.links_per_chip' is 16"),
            std::string::npos);

  EXPECT_NE(ErrorOf(nlohmann::json::array()).find("must be a JSON object"), std::string::npos);
}

TEST(ClusterSpecTest, PlacementAndLinks) {
  ClusterSpec s = testing::TestCluster(10);  // 4 per node: nodes 0,0,0,0,1,1,1,1,2,2
  EXPECT_EQ(s.num_nodes(), 3);
  EXPECT_EQ(s.NodeOf(9), 2);
  EXPECT_TRUE(s.SameNode(4, 7));
  EXPECT_FALSE(s.SameNode(3, 4));
  EXPECT_EQ(&s.Link(0, 3), &s.intra_node_link);
  EXPECT_EQ(&s.Link(3, 4), &s.inter_node_link);
}

TEST(ClusterSpecTest, NodeSharingDividesTheNode) {
  ClusterSpec s = testing::TestCluster(8);
  s.chip.shared_by_node = true;
  EXPECT_EQ(s.ChipMemoryBytes(), (int64_t{1} << 40) / 4);
  EXPECT_EQ(s.ChipMemoryBandwidth(), 1e10 / 4);
  EXPECT_EQ(s.ChipPeakFlops(ElementType::kF16), 1e11 / 4);  // f16 falls back to f32
  s.num_chips = 2;                                          // fewer chips than a node holds
  EXPECT_EQ(s.ChipMemoryBandwidth(), 1e10 / 2);
  s.chip.shared_by_node = false;
  EXPECT_EQ(s.ChipMemoryBandwidth(), 1e10);
}

TEST(ChipPresetTest, PresetsAreValidAndCiteTheirFigures) {
  for (const std::string& name : ChipPresetNames()) {
    Result<ClusterSpec> spec = ChipPreset(name, 16);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status().message();
    EXPECT_EQ(spec->chip.name, name);
    EXPECT_FALSE(spec->chip.source.empty());
    EXPECT_EQ(spec->num_chips, 16);
  }
  ClusterSpec groq = *ChipPreset("groq-lpu", 576);
  EXPECT_EQ(groq.chips_per_node, 8);
  EXPECT_EQ(groq.chip.memory_bytes, 220 * 1024 * 1024);
  EXPECT_EQ(groq.chip.memory_bandwidth_bytes_per_s, 80e12);
  EXPECT_EQ(groq.chip.PeakFlops(ElementType::kF16), 188e12);
  EXPECT_EQ(groq.chip.PeakFlops(ElementType::kInt8), 750e12);
  EXPECT_EQ(groq.chip.links_per_chip, 16);
  EXPECT_EQ(groq.intra_node_link.bandwidth_bytes_per_s, 14e9);
  ClusterSpec h100 = *ChipPreset("h100-nvlink", 16);
  EXPECT_EQ(h100.chip.PeakFlops(ElementType::kBF16), 989e12);
  EXPECT_EQ(h100.chip.memory_bandwidth_bytes_per_s, 3.35e12);
  ClusterSpec host = *ChipPreset("host", 3);
  EXPECT_EQ(host.chips_per_node, 3);  // every rank on this machine
  EXPECT_TRUE(host.chip.shared_by_node);
  Result<ClusterSpec> bad = ChipPreset("tpu-v9", 4);
  EXPECT_NE(bad.status().message().find("known: host, groq-lpu, h100-nvlink"), std::string::npos);
}

// A host whose ranks share 4 cores: 10 GB/s with 1 thread, 18 with 2, 30
// with all 4; 400 GFLOP/s in all.
ClusterSpec SharedHost(int chips, int threads_per_chip) {
  ClusterSpec c = *ChipPreset("host", chips);
  c.chip.cores = 4;
  c.chip.memory_bandwidth_bytes_per_s = 30e9;
  c.chip.memory_bandwidth_by_threads = {{1, 10e9}, {2, 18e9}};
  c.chip.peak_flops = {};
  c.chip.peak_flops[static_cast<int>(ElementType::kF32)] = 400e9;
  c.threads_per_chip = threads_per_chip;
  return c;
}

TEST(ClusterSpecTest, BusyChipsGetWhatTheirThreadsReach) {
  // One busy rank of one thread: the 1-thread bandwidth, a quarter of the FLOP/s.
  ClusterSpec c = SharedHost(4, 1);
  EXPECT_DOUBLE_EQ(c.BusyChipMemoryBandwidth(1), 10e9);
  EXPECT_DOUBLE_EQ(c.BusyChipPeakFlops(ElementType::kF32, 1), 100e9);
  // Two ranks: 2 threads' bandwidth split between them; 3: interpolated
  // between 2 threads (18) and the full node (30); 8 ranks: 4 threads' worth.
  EXPECT_DOUBLE_EQ(c.BusyChipMemoryBandwidth(2), 9e9);
  EXPECT_DOUBLE_EQ(c.NodeBandwidthWithThreads(3), 24e9);
  EXPECT_DOUBLE_EQ(c.BusyChipMemoryBandwidth(3), 8e9);
  EXPECT_DOUBLE_EQ(c.BusyChipMemoryBandwidth(8), 30e9 / 8);
  EXPECT_DOUBLE_EQ(c.BusyChipPeakFlops(ElementType::kF32, 8), 400e9 / 8);
  EXPECT_DOUBLE_EQ(c.ChipMemoryBandwidth(), 30e9 / 4);  // all 4 chips of the node busy
  // Two threads per rank: one busy rank gets 2 threads' bandwidth.
  EXPECT_DOUBLE_EQ(SharedHost(4, 2).BusyChipMemoryBandwidth(1), 18e9);
  EXPECT_DOUBLE_EQ(SharedHost(4, 2).BusyChipPeakFlops(ElementType::kF32, 1), 200e9);
  // Threads unknown: the node split evenly among the busy chips, as before.
  EXPECT_DOUBLE_EQ(SharedHost(4, 0).BusyChipMemoryBandwidth(1), 30e9);
  EXPECT_DOUBLE_EQ(SharedHost(4, 0).BusyChipMemoryBandwidth(2), 15e9);
  // Below the first measured point the curve goes through 0 threads = 0 B/s.
  ClusterSpec sparse = SharedHost(4, 1);
  sparse.chip.memory_bandwidth_by_threads = {{2, 18e9}};
  EXPECT_DOUBLE_EQ(sparse.NodeBandwidthWithThreads(1), 9e9);
  // Not shared (a node per chip): the chip's own figures whatever the threads.
  ClusterSpec own = SharedHost(4, 1);
  own.chip.shared_by_node = false;
  EXPECT_DOUBLE_EQ(own.BusyChipMemoryBandwidth(1), 30e9);
}

TEST(ClusterSpecTest, ThreadFieldsRoundTripAndNameTheirErrors) {
  ClusterSpec c = SharedHost(2, 1);
  nlohmann::json j = ClusterSpecToJson(c);
  EXPECT_EQ(j["chip"]["cores"], 4);
  EXPECT_EQ(j["chip"]["memory_bandwidth_by_threads"]["2"], 18e9);
  EXPECT_EQ(j["threads_per_chip"], 1);
  Result<ClusterSpec> again = ClusterSpecFromJson(j, "again");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, c);

  nlohmann::json bad = j;
  bad["chip"]["memory_bandwidth_by_threads"] = {{"two", 1e9}};
  EXPECT_EQ(ErrorOf(bad),
            "spec.json: field 'chip.memory_bandwidth_by_threads' has key \"two\"; keys are "
            "thread counts (1, 2, ...)");
  bad = j;
  bad["chip"]["memory_bandwidth_by_threads"] = {{"8", 1e9}};
  EXPECT_NE(ErrorOf(bad).find("has 8 threads; keys must be from 1 to chip.cores (4)"),
            std::string::npos);
  bad = j;
  bad["chip"]["memory_bandwidth_by_threads"] = {{"1", -1}};
  EXPECT_NE(ErrorOf(bad).find("'chip.memory_bandwidth_by_threads.1' must be a positive number"),
            std::string::npos);
  bad = j;
  bad["chip"]["memory_bandwidth_by_threads"] = 5;
  EXPECT_NE(ErrorOf(bad).find("must be an object of thread counts"), std::string::npos);
  bad = j;
  bad["chip"].erase("cores");
  EXPECT_NE(ErrorOf(bad).find("needs 'chip.cores'"), std::string::npos);
  bad = j;
  bad["threads_per_chip"] = -2;
  EXPECT_NE(ErrorOf(bad).find("field 'threads_per_chip' must be zero (unknown) or positive"),
            std::string::npos);
}

// The kernels' measured rates (lockstep calibrate): matmul by weight type,
// threads and tokens; attention by threads.
ClusterSpec CalibratedHost(int chips, int threads_per_chip) {
  ClusterSpec c = SharedHost(chips, threads_per_chip);
  c.chip.matmul_flops[ElementType::kBF16] = {{1, {{1, 10e9}, {4, 30e9}, {16, 60e9}}},
                                             {4, {{1, 30e9}, {4, 100e9}, {16, 200e9}}}};
  c.chip.matmul_flops[ElementType::kF32] = {{4, {{1, 20e9}}}};
  c.chip.attention_flops = {{1, 5e9}, {4, 16e9}};
  return c;
}

TEST(ClusterSpecTest, MeasuredKernelRatesByTokensAndThreads) {
  ClusterSpec c = CalibratedHost(4, 1);
  // One busy chip of one thread: the 1-thread table as measured...
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 1, 1), 10e9);
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 1), 60e9);
  // ... linear in log2(tokens) between the measured counts (2 is halfway
  // between 1 and 4), the end values outside them.
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 2, 1), 20e9);
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 8, 1), 45e9);
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 256, 1), 60e9);
  // Two busy chips of one thread, on cores of their own: each the 1-thread
  // table (no concurrency measured: they do not slow each other).
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 2), 60e9);
  // Eight busy chips of one thread on 4 cores: each gets half a core.
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 4, 8), 30e9 / 2);
  // f16 weights use the bf16 table (the same widening cost); f32 its own.
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kF16, 1, 1),
                   c.BusyChipMatmulFlops(ElementType::kBF16, 1, 1));
  // f32 has only a 4-thread table: one thread, linear through 0, a quarter.
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kF32, 64, 8), 20e9 / 4 / 2);
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(1), 5e9);
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(8), 5e9 / 2);
  // A decode step: its own table when measured, else the prefill's.
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(1, /*decode=*/true), 5e9);
  c.chip.decode_attention_flops = {{1, 2e9}, {4, 6e9}};
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(1, true), 2e9);
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(8, true), 2e9 / 2);
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(1, false), 5e9);
  // A chip of 2 threads: the tables between 1 and 4 threads (linear).
  ClusterSpec two = CalibratedHost(4, 2);
  EXPECT_DOUBLE_EQ(two.BusyChipMatmulFlops(ElementType::kBF16, 16, 1), 60e9 + 140e9 / 3);
  EXPECT_DOUBLE_EQ(two.BusyChipMatmulFlops(ElementType::kBF16, 16, 4), (60e9 + 140e9 / 3) / 2);
  // Threads unknown: the largest measured count, split among the busy chips.
  EXPECT_DOUBLE_EQ(CalibratedHost(4, 0).BusyChipMatmulFlops(ElementType::kBF16, 16, 2), 100e9);
  // Not shared by the node: the table's largest thread count, undivided.
  ClusterSpec own_node = CalibratedHost(4, 1);
  own_node.chip.shared_by_node = false;
  EXPECT_DOUBLE_EQ(own_node.BusyChipMatmulFlops(ElementType::kBF16, 16, 2), 200e9);
  // Quantized weights run on integer dot products: their own table when the
  // calibration measured one (lockstep calibrate does q8_0 and q4_0), else
  // the float tables stand in.
  ClusterSpec quant = CalibratedHost(4, 1);
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kQ8_0, 16, 1), 60e9);
  quant.chip.matmul_flops[ElementType::kQ8_0][1] = {{1, 30e9}, {16, 150e9}};
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kQ8_0, 16, 1), 150e9);
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kQ8_0, 4, 1), 90e9);
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kQ4_0, 16, 1), 60e9);
  // --compute bf16: its own table when measured, else bf16's.
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kBF16, 16, 1, /*bf16_compute=*/true),
                   60e9);
  quant.chip.bf16_compute_matmul_flops[1] = {{1, 8e9}, {16, 35e9}};
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kBF16, 16, 1, true), 35e9);
  EXPECT_DOUBLE_EQ(quant.BusyChipMatmulFlops(ElementType::kBF16, 16, 1, false), 60e9);
  // No tables: 0 (the cost model then uses the peaks).
  EXPECT_EQ(SharedHost(4, 1).BusyChipMatmulFlops(ElementType::kBF16, 16, 1), 0.0);
  EXPECT_EQ(SharedHost(4, 1).BusyChipAttentionFlops(1), 0.0);
}

// What chips working at once cost each other (ChipSpec::matmul_concurrency):
// the full factor with every other core busy, a share of it with fewer.
TEST(ClusterSpecTest, ConcurrencyFactorScalesWithTheOtherBusyCores) {
  ClusterSpec c = CalibratedHost(8, 1);
  c.chip.matmul_concurrency = {{1, 0.9}, {16, 0.6}};
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 1), 60e9);  // alone
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 2), 60e9 * (1 - 0.4 / 3));
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 4), 60e9 * 0.6);
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 8), 60e9 * 0.6 / 2);
  // A type with its own factor uses it; the others use matmul_concurrency.
  c.chip.matmul_flops[ElementType::kQ8_0][1] = {{16, 100e9}};
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kQ8_0, 16, 4), 100e9 * 0.6);
  c.chip.matmul_concurrency_by_type[ElementType::kQ8_0] = {{16, 0.5}};
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kQ8_0, 16, 4), 100e9 * 0.5);
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 16, 4), 60e9 * 0.6);
  // Linear in log2(tokens) between the measured counts, like the rates.
  EXPECT_DOUBLE_EQ(c.BusyChipMatmulFlops(ElementType::kBF16, 4, 4), 30e9 * 0.75);
  // Attention: its own threads, no matmul factor.
  EXPECT_DOUBLE_EQ(c.BusyChipAttentionFlops(4), 5e9);

  nlohmann::json j = ClusterSpecToJson(c);
  EXPECT_EQ(j["chip"]["matmul_concurrency"]["16"], 0.6);
  Result<ClusterSpec> again = ClusterSpecFromJson(j, "again");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, c);
  nlohmann::json bad = j;
  bad["chip"]["matmul_concurrency"]["16"] = 0;
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_concurrency.16' must be a positive number"),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["matmul_concurrency"] = {{"x", 1.0}};
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_concurrency' has key \"x\""), std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"].erase("cores");
  bad["chip"].erase("memory_bandwidth_by_threads");
  bad["chip"].erase("matmul_flops");
  bad["chip"].erase("attention_flops");
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_concurrency' needs 'chip.cores'"), std::string::npos)
      << ErrorOf(bad);
}

TEST(ClusterSpecTest, MeasuredKernelRatesRoundTripAndNameTheirErrors) {
  ClusterSpec c = CalibratedHost(2, 1);
  c.chip.matmul_flops[ElementType::kQ4_0][1] = {{1, 25e9}};
  c.chip.bf16_compute_matmul_flops[2] = {{1, 9e9}, {64, 70e9}};
  c.chip.decode_attention_flops = {{1, 3e9}};
  c.chip.matmul_concurrency_by_type[ElementType::kQ4_0] = {{1, 0.9}, {16, 0.7}};
  nlohmann::json j = ClusterSpecToJson(c);
  EXPECT_EQ(j["chip"]["matmul_concurrency_by_type"]["q4_0"]["16"], 0.7);
  EXPECT_EQ(j["chip"]["decode_attention_flops"]["1"], 3e9);
  EXPECT_EQ(j["chip"]["matmul_flops"]["bf16"]["4"]["16"], 200e9);
  EXPECT_EQ(j["chip"]["matmul_flops"]["q4_0"]["1"]["1"], 25e9);
  EXPECT_EQ(j["chip"]["bf16_compute_matmul_flops"]["2"]["64"], 70e9);
  EXPECT_EQ(j["chip"]["attention_flops"]["1"], 5e9);
  Result<ClusterSpec> again = ClusterSpecFromJson(j, "again");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, c);

  nlohmann::json bad = j;
  bad["chip"]["matmul_concurrency_by_type"]["q5"] = {{"1", 0.9}};
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_concurrency_by_type' has key \"q5\""),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["matmul_concurrency_by_type"]["q4_0"]["16"] = 0;
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_concurrency_by_type.q4_0.16' must be a positive"),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["decode_attention_flops"]["1"] = -1;
  EXPECT_NE(ErrorOf(bad).find("'chip.decode_attention_flops.1' must be a positive number"),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["bf16_compute_matmul_flops"]["2"]["0"] = 1e9;
  EXPECT_NE(ErrorOf(bad).find("'chip.bf16_compute_matmul_flops' has key \"0\""),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["bf16_compute_matmul_flops"]["8"] = {{"1", 1e9}};
  EXPECT_NE(ErrorOf(bad).find("'chip.bf16_compute_matmul_flops' has 8 threads"),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["matmul_flops"]["q4"] = nlohmann::json::object();
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_flops' has key \"q4\""), std::string::npos);
  bad = j;
  bad["chip"]["matmul_flops"]["bf16"]["8"] = {{"1", 1e9}};
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_flops.bf16' has 8 threads; keys must be from 1 to "
                              "chip.cores (4)"),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["matmul_flops"]["bf16"]["1"]["16"] = -3;
  EXPECT_NE(ErrorOf(bad).find("'chip.matmul_flops.bf16.1.16' must be a positive number"),
            std::string::npos)
      << ErrorOf(bad);
  bad = j;
  bad["chip"]["matmul_flops"]["bf16"]["1"] = {{"0", 1e9}};
  EXPECT_NE(ErrorOf(bad).find("has key \"0\""), std::string::npos) << ErrorOf(bad);
  bad = j;
  bad["chip"]["attention_flops"] = {{"1", "fast"}};
  EXPECT_NE(ErrorOf(bad).find("'chip.attention_flops' entry \"1\" must be a number"),
            std::string::npos)
      << ErrorOf(bad);
}

TEST(ClusterSpecTest, NativeTypesOfPresetsAndFiles) {
  EXPECT_EQ(ChipPreset("groq-lpu", 8)->chip.DefaultActivationType(), ElementType::kF16);
  EXPECT_EQ(ChipPreset("groq-lpu", 8)->chip.DefaultWeightTypes(),
            (std::vector<ElementType>{ElementType::kF16, ElementType::kInt8}));
  EXPECT_EQ(ChipPreset("h100-nvlink", 8)->chip.DefaultActivationType(), ElementType::kBF16);
  EXPECT_EQ(ChipPreset("host", 1)->chip.DefaultActivationType(), ElementType::kF32);
  EXPECT_EQ(ChipPreset("host", 1)->chip.DefaultWeightTypes(),
            std::vector<ElementType>{ElementType::kBF16});
  // Without the fields: derived from the rates. An f16/int8 chip computes f16
  // activations; a chip with only an f32 rate computes every float weight
  // type widened to f32.
  ClusterSpec groq = *ChipPreset("groq-lpu", 8);
  groq.chip.activation_type.reset();
  groq.chip.weight_types.clear();
  EXPECT_EQ(groq.chip.DefaultActivationType(), ElementType::kF16);
  EXPECT_EQ(groq.chip.DefaultWeightTypes(),
            (std::vector<ElementType>{ElementType::kF16, ElementType::kInt8}));
  ClusterSpec f32_only = testing::TestCluster(1);
  EXPECT_EQ(f32_only.chip.DefaultActivationType(), ElementType::kF32);
  EXPECT_EQ(f32_only.chip.DefaultWeightTypes(),
            (std::vector<ElementType>{ElementType::kBF16, ElementType::kF16, ElementType::kF32}));
  // They round-trip, and a bad type names the field.
  nlohmann::json j = ClusterSpecToJson(*ChipPreset("groq-lpu", 8));
  EXPECT_EQ(j["chip"]["activation_type"], "f16");
  EXPECT_EQ(j["chip"]["weight_types"], nlohmann::json::array({"f16", "int8"}));
  EXPECT_EQ(*ClusterSpecFromJson(j, "again"), *ChipPreset("groq-lpu", 8));
  j["chip"]["weight_types"] = {"f16", "fp4"};
  EXPECT_NE(ErrorOf(j).find("field 'chip.weight_types' must be one of"), std::string::npos)
      << ErrorOf(j);
  j["chip"]["weight_types"] = nlohmann::json::array();
  EXPECT_NE(ErrorOf(j).find("must be a non-empty list"), std::string::npos) << ErrorOf(j);
}

TEST(WorkloadTest, ParsesValidatesAndRoundTrips) {
  nlohmann::json j = {{"batch_size", 8},       {"prompt_length", 100},     {"generated_length", 50},
                      {"weight_type", "int8"}, {"activation_type", "f16"}, {"micro_batches", 4}};
  Result<Workload> w = WorkloadFromJson(j, "w.json");
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->weight_type, ElementType::kInt8);
  EXPECT_EQ(w->context_length(), 150);
  EXPECT_EQ(*WorkloadFromJson(WorkloadToJson(*w), "again"), *w);

  j["micro_batches"] = 9;
  EXPECT_NE(WorkloadFromJson(j, "w.json").status().message().find("field 'micro_batches'"),
            std::string::npos);
  j["micro_batches"] = 1;
  j["activation_type"] = "int8";
  EXPECT_NE(WorkloadFromJson(j, "w.json").status().message().find("'activation_type' must be f32"),
            std::string::npos);
  j["activation_type"] = "fp8";
  EXPECT_NE(WorkloadFromJson(j, "w.json").status().message().find("unknown element type 'fp8'"),
            std::string::npos);
  j["activation_type"] = "f32";
  j["generated_length"] = 0;
  EXPECT_EQ(WorkloadFromJson(j, "w.json").status().message(),
            "w.json: field 'generated_length' must be between 1 and 16777216, got 0");

  Workload huge;
  huge.batch_size = (1 << 20) + 1;
  EXPECT_NE(huge.Validate().message().find("'batch_size' must be between 1 and 1048576"),
            std::string::npos);
  Workload tiny_chunks;
  tiny_chunks.prompt_length = 100000;
  tiny_chunks.prefill_chunk = 8;
  EXPECT_NE(tiny_chunks.Validate().message().find("use a chunk of at least 25 tokens"),
            std::string::npos)
      << tiny_chunks.Validate().message();
  tiny_chunks.prefill_chunk = 25;
  EXPECT_TRUE(tiny_chunks.Validate().ok());
  EXPECT_EQ(tiny_chunks.NumPrefillChunks(), 4000);
  EXPECT_EQ(tiny_chunks.PrefillChunkBegin(4000), 100000);

  Workload long_context;
  long_context.prompt_length = 4000;
  long_context.generated_length = 200;
  Status s = long_context.ValidateFor(*ModelPreset("llama-2-7b"));
  EXPECT_NE(s.message().find("4200 exceeds the context length 4096"), std::string::npos);
}

TEST(WorkloadTest, ComputeModeRoundTripsAndNeedsBf16Weights) {
  nlohmann::json j = {{"batch_size", 2}, {"prompt_length", 10}, {"generated_length", 5}};
  Result<Workload> w = WorkloadFromJson(j, "w.json");
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->compute, MatmulCompute::kFloat);  // plans without the field
  EXPECT_FALSE(WorkloadToJson(*w).contains("compute"));
  j["compute"] = "bf16";
  w = WorkloadFromJson(j, "w.json");  // weight_type defaults to bf16
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->compute, MatmulCompute::kBf16);
  EXPECT_EQ(WorkloadToJson(*w)["compute"], "bf16");
  EXPECT_EQ(*WorkloadFromJson(WorkloadToJson(*w), "again"), *w);
  j["weight_type"] = "f16";
  EXPECT_EQ(WorkloadFromJson(j, "w.json").status().message(),
            "w.json: field 'compute' bf16 needs bf16 weights (weight_type bf16), got weight_type "
            "f16");
  j["weight_type"] = "bf16";
  j["compute"] = "fp8";
  EXPECT_EQ(WorkloadFromJson(j, "w.json").status().message(),
            "w.json: field 'compute': unknown compute mode 'fp8' (expected float or bf16)");
}

TEST(WorkloadTest, MicroBatchSizesDifferByAtMostOne) {
  for (int batch = 1; batch <= 20; ++batch) {
    for (int count = 1; count <= batch; ++count) {
      int total = 0;
      for (int j = 0; j < count; ++j) {
        int size = MicroBatchSize(batch, count, j);
        EXPECT_TRUE(size == batch / count || size == batch / count + 1);
        if (j > 0) {
          EXPECT_LE(size, MicroBatchSize(batch, count, j - 1));
        }
        total += size;
      }
      EXPECT_EQ(total, batch);
    }
  }
}

}  // namespace
}  // namespace lockstep::partitioner
