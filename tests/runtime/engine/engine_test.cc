// The engine and the batch job on small synthesized models of every family
// (biases, sliding windows, each rope scaling type): the determinism
// contract (bits, not tolerances) across batch composition, --max-batch,
// prefill chunking, threads and instruction sets, greedy and sampled; stop
// conditions; pipeline stages.
#include "lockstep/engine/engine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "lockstep/job/batch_job.h"
#include "lockstep/kernels/bf16_matmul.h"
#include "lockstep/kernels/isa.h"
#include "lockstep/kernels/quant_matmul.h"
#include "lockstep/kernels/sampling.h"
#include "lockstep/model/model_file.h"
#include "lockstep/model/synth.h"
#include "runtime/distributed_test_util.h"
#include "runtime/model_file_test_util.h"

namespace lockstep::runtime {
namespace {

using nlohmann::json;
using testing::ScratchDir;

struct Outcome {
  std::vector<int32_t> tokens;
  std::string finish_reason;
  std::string logits_sha256;
  int64_t prompt_tokens = 0;
  bool operator==(const Outcome&) const = default;
};
using Outcomes = std::map<std::string, Outcome>;

// Seven requests of mixed prompt lengths (across page boundaries) and output
// lengths; four greedy, three sampled with different cuts and seeds; some
// may stop on EOS.
std::string MixedRequests(int64_t vocab) {
  struct Spec {
    const char* id;
    int prompt;
    int max_tokens;
    double temperature;
    int top_k;
    double top_p;
    int seed;
    bool ignore_eos;
  };
  const Spec specs[] = {
      {"g-1", 1, 12, 0.0, 0, 1.0, 0, true},      {"s-5", 5, 30, 0.8, 0, 0.9, 3, false},
      {"g-63", 63, 9, 0.0, 0, 1.0, 0, false},    {"s-64", 64, 25, 1.2, 40, 1.0, 0, true},
      {"g-65", 65, 20, 0.0, 0, 1.0, 0, true},    {"g-130", 130, 6, 0.0, 0, 1.0, 0, true},
      {"s-17", 17, 40, 0.7, 20, 0.95, 11, true},
  };
  std::string text;
  int salt = 0;
  for (const Spec& s : specs) {
    json j = {{"id", s.id},
              {"prompt_tokens", runtime::testing::TestPrompt(s.prompt, vocab, salt++)},
              {"max_tokens", s.max_tokens},
              {"temperature", s.temperature},
              {"top_k", s.top_k},
              {"top_p", s.top_p},
              {"seed", s.seed},
              {"ignore_eos", s.ignore_eos}};
    text += j.dump() + "\n";
  }
  return text;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

Outcomes ReadOutcomes(const std::string& path) {
  Outcomes outcomes;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    EXPECT_FALSE(j.contains("error")) << line;
    if (j.contains("error")) continue;
    Outcome o;
    o.tokens = j["tokens"].get<std::vector<int32_t>>();
    o.finish_reason = j["finish_reason"];
    if (j.contains("logits_sha256")) o.logits_sha256 = j["logits_sha256"];
    o.prompt_tokens = j["usage"]["prompt_tokens"];
    EXPECT_EQ(j["usage"]["completion_tokens"], o.tokens.size());
    EXPECT_EQ(j["usage"]["total_tokens"], o.prompt_tokens + int64_t(o.tokens.size()));
    outcomes[j["id"]] = o;
  }
  return outcomes;
}

struct RunConfig {
  int max_batch = 1;
  int max_step_tokens = 256;
  int threads = 1;
  kernels::Isa isa = kernels::BestIsa();
  bool vnni = true;  // quantized kernels: VNNI where the CPU has it, or the emulation
  kernels::Compute compute = kernels::Compute::kFloat;
  // bf16 compute: how the dot-product step is computed (kernels/bf16_matmul.h)
  kernels::Bf16Step bf16_step = kernels::Bf16Step::kAuto;
  std::string Name() const {
    return fmt::format("max_batch {} max_step_tokens {} threads {} isa {}{} compute {}{}",
                       max_batch, max_step_tokens, threads, kernels::IsaName(isa),
                       vnni ? "" : " no-vnni", kernels::ComputeName(compute),
                       bf16_step == kernels::Bf16Step::kAuto
                           ? std::string()
                           : " bf16 step " + std::string(kernels::Bf16StepName(bf16_step)));
  }
};

Outcomes RunJob(const ScratchDir& dir, const std::string& model, const std::string& requests,
                const RunConfig& config) {
  BatchJobOptions options;
  options.model_path = model;
  options.input_path = requests;
  options.output_path = dir.File("results.jsonl");
  options.force = true;  // every run overwrites the last one's results
  options.threads = config.threads;
  options.isa = config.isa;
  options.max_batch = config.max_batch;
  options.max_step_tokens = config.max_step_tokens;
  options.hash_logits = true;
  options.progress = false;
  options.compute = config.compute;
  kernels::UseVnni(config.vnni);
  kernels::UseBf16Step(config.bf16_step);
  Result<BatchJobSummary> summary = RunBatchJob(options);
  kernels::UseVnni(true);
  kernels::UseBf16Step(kernels::Bf16Step::kAuto);
  EXPECT_TRUE(summary.ok()) << summary.status().message();
  if (!summary.ok()) return {};
  EXPECT_EQ(summary->failed, 0);
  return ReadOutcomes(options.output_path);
}

std::vector<kernels::Isa> SupportedIsas() {
  std::vector<kernels::Isa> isas;
  for (kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (kernels::IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

partitioner::ModelConfig TinyPreset() {
  return *partitioner::ModelPreset("tiny");
}

// Multi-head attention (no GQA), tied embeddings, head_dim 32, an odd
// vocabulary and hidden size, rope_theta 500000.
partitioner::ModelConfig OddConfig() {
  partitioner::ModelConfig c;
  c.name = "odd";
  c.vocab_size = 301;
  c.hidden_size = 96;
  c.intermediate_size = 200;
  c.num_layers = 3;
  c.num_heads = 3;
  c.num_kv_heads = 3;
  c.head_dim = 32;
  c.max_position_embeddings = 256;
  c.rope_theta = 500000.0;
  c.tie_word_embeddings = true;
  c.eos_token_id = 7;
  return c;
}

partitioner::ModelConfig FamilyPreset(const char* name) {
  return *partitioner::ModelPreset(name);
}
partitioner::ModelConfig TinyLlama3() {
  return FamilyPreset("tiny-llama3");
}
partitioner::ModelConfig TinyQwen2() {
  return FamilyPreset("tiny-qwen2");
}
partitioner::ModelConfig TinyMistral() {
  return FamilyPreset("tiny-mistral");
}
partitioner::ModelConfig TinyPhi3() {
  return FamilyPreset("tiny-phi3");
}

// The generic rope scaling types on the tiny model, with thresholds the
// prompts of MixedRequests cross (positions up to 170).
partitioner::ModelConfig TinyWithScaling(partitioner::RopeScalingType type) {
  partitioner::ModelConfig c = TinyPreset();
  c.max_position_embeddings = 96;
  c.rope_scaling.type = type;
  c.rope_scaling.factor = 2.0;
  if (type != partitioner::RopeScalingType::kLinear) {
    c.rope_scaling.original_max_position_embeddings = 96;
  }
  if (type == partitioner::RopeScalingType::kYarn) c.rope_scaling.attention_factor = 1.07;
  return c;
}
partitioner::ModelConfig TinyLinear() {
  return TinyWithScaling(partitioner::RopeScalingType::kLinear);
}
partitioner::ModelConfig TinyDynamic() {
  return TinyWithScaling(partitioner::RopeScalingType::kDynamic);
}
partitioner::ModelConfig TinyYarn() {
  return TinyWithScaling(partitioner::RopeScalingType::kYarn);
}

struct ModelCase {
  const char* name;
  partitioner::ModelConfig (*config)();
  DType dtype;
  kernels::Compute compute = kernels::Compute::kFloat;
};

class DeterminismTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(DeterminismTest, SameBitsForEveryBatchThreadAndIsa) {
  const ModelCase& mc = GetParam();
  ScratchDir dir;
  const std::string model = dir.File("model.h5");
  const partitioner::ModelConfig config = mc.config();
  ASSERT_TRUE(SynthesizeModel(config, mc.dtype, 17, model).ok());
  const std::string requests = dir.File("requests.jsonl");
  WriteText(requests, MixedRequests(config.vocab_size));

  // Batch 1, one thread: the reference every other run must equal bit for bit.
  RunConfig base;
  base.compute = mc.compute;
  const Outcomes expected = RunJob(dir, model, requests, base);
  ASSERT_EQ(expected.size(), 7u);
  for (const auto& [id, o] : expected) {
    EXPECT_EQ(o.logits_sha256.size(), 64u) << id;
    EXPECT_FALSE(o.tokens.empty()) << id;
  }
  if (mc.compute == kernels::Compute::kBf16) {
    // The results say so, and the bits are not the float compute's.
    std::ifstream in(dir.File("results.jsonl"));
    for (std::string line; std::getline(in, line);) {
      EXPECT_EQ(json::parse(line).value("compute", ""), "bf16") << line;
    }
    const Outcomes float_compute = RunJob(dir, model, requests, RunConfig{});
    int same = 0;
    for (const auto& [id, o] : expected) same += float_compute.at(id).logits_sha256 == o.logits_sha256;
    EXPECT_EQ(same, 0) << "bf16 compute gave float compute's logits";
  }
  std::vector<RunConfig> variants = {
      {7, 256, 1, kernels::BestIsa()},  // everything in one batch
      {7, 256, 2, kernels::BestIsa()},  // and two threads
      {3, 16, 2, kernels::BestIsa()},   // continuous admission, chunked prefill
      {7, 5, 1, kernels::BestIsa()},    // tiny chunks mixed with decode tokens
      {2, 64, 4, kernels::BestIsa()},   // more threads than cores
  };
  for (kernels::Isa isa : SupportedIsas()) {
    if (isa != kernels::BestIsa()) variants.push_back({7, 256, 2, isa});
    // Quantized models: the emulated dot product too, where VNNI is there.
    if (DTypeIsQuantized(mc.dtype) && kernels::VnniAvailable(isa)) {
      variants.push_back({7, 256, 2, isa, false});
    }
    // bf16 compute: every other way this CPU computes the dot-product step
    // (vdpbf16ps, FMAs under flush-to-zero, FMAs with a flush test).
    if (mc.compute == kernels::Compute::kBf16) {
      for (kernels::Bf16Step step : {kernels::Bf16Step::kInstruction,
                                     kernels::Bf16Step::kFlushToZero, kernels::Bf16Step::kChecked}) {
        if (!kernels::Bf16StepAvailable(isa, step) || step == kernels::Bf16StepFor(isa)) continue;
        RunConfig other{7, 256, 2, isa};
        other.bf16_step = step;
        variants.push_back(other);
      }
    }
  }
  for (RunConfig v : variants) {
    v.compute = mc.compute;
    const Outcomes got = RunJob(dir, model, requests, v);
    ASSERT_EQ(got.size(), expected.size()) << v.Name();
    for (const auto& [id, want] : expected) {
      const Outcome& have = got.at(id);
      EXPECT_EQ(have.tokens, want.tokens) << id << " with " << v.Name();
      EXPECT_EQ(have.logits_sha256, want.logits_sha256) << id << " with " << v.Name();
      EXPECT_EQ(have.finish_reason, want.finish_reason) << id << " with " << v.Name();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, DeterminismTest,
                         ::testing::Values(ModelCase{"tiny_bf16", &TinyPreset, DType::kBF16},
                                           ModelCase{"tiny_f32", &TinyPreset, DType::kF32},
                                           ModelCase{"odd_f16", &OddConfig, DType::kF16},
                                           ModelCase{"tiny_q8_0", &TinyPreset, DType::kQ8_0},
                                           ModelCase{"tiny_q4_0", &TinyPreset, DType::kQ4_0},
                                           // Each family's features (model_family.h).
                                           ModelCase{"llama3_bf16", &TinyLlama3, DType::kBF16},
                                           ModelCase{"qwen2_bf16", &TinyQwen2, DType::kBF16},
                                           ModelCase{"mistral_f16", &TinyMistral, DType::kF16},
                                           ModelCase{"phi3_bf16", &TinyPhi3, DType::kBF16},
                                           ModelCase{"linear_f32", &TinyLinear, DType::kF32},
                                           ModelCase{"dynamic_bf16", &TinyDynamic, DType::kBF16},
                                           ModelCase{"yarn_f16", &TinyYarn, DType::kF16},
                                           // The bf16 compute (kernels/bf16_matmul.h): odd
                                           // sizes give segments of odd length.
                                           ModelCase{"tiny_bf16_compute", &TinyPreset,
                                                     DType::kBF16, kernels::Compute::kBf16},
                                           ModelCase{"odd_bf16_compute", &OddConfig, DType::kBF16,
                                                     kernels::Compute::kBf16}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) {
                           return std::string(info.param.name);
                         });

// A request's tokens do not depend on the other requests of the file, and
// sampling does depend on the seed and the id (the stream), as documented.
TEST(BatchJobTest, SamplingIsKeyedBySeedAndIdOnly) {
  ScratchDir dir;
  const std::string model = dir.File("model.h5");
  const partitioner::ModelConfig config = TinyPreset();
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 3, model).ok());
  const std::vector<int32_t> prompt = runtime::testing::TestPrompt(10, config.vocab_size, 5);
  auto line = [&](const std::string& id, int seed) {
    return json({{"id", id},
                 {"prompt_tokens", prompt},
                 {"max_tokens", 24},
                 {"temperature", 1.0},
                 {"seed", seed},
                 {"ignore_eos", true}})
               .dump() +
           "\n";
  };
  const std::string requests = dir.File("requests.jsonl");
  WriteText(requests, line("a", 1) + line("a-again", 1) + line("b", 2));
  Outcomes one = RunJob(dir, model, requests, {3, 256, 1, kernels::BestIsa()});
  WriteText(requests, line("b", 2) + line("a", 1));
  Outcomes two = RunJob(dir, model, requests, {1, 256, 2, kernels::BestIsa()});
  EXPECT_EQ(one.at("a"), two.at("a"));
  EXPECT_EQ(one.at("b"), two.at("b"));
  // Same prompt and seed, another id: another random stream, another sample.
  EXPECT_NE(one.at("a").tokens, one.at("a-again").tokens);
  EXPECT_NE(one.at("a").tokens, one.at("b").tokens);
}

TEST(BatchJobTest, StopsOnStopTokensEosAndLength) {
  ScratchDir dir;
  partitioner::ModelConfig config = TinyPreset();
  const std::string model = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kF32, 5, model).ok());
  const std::vector<int32_t> prompt = runtime::testing::TestPrompt(8, config.vocab_size, 1);
  auto line = [&](const std::string& id, json extra) {
    json j = {{"id", id}, {"prompt_tokens", prompt}, {"max_tokens", 12}, {"temperature", 0}};
    j.update(extra);
    return j.dump() + "\n";
  };
  const std::string requests = dir.File("requests.jsonl");
  WriteText(requests, line("free", {{"ignore_eos", true}}));
  const Outcomes free = RunJob(dir, model, requests, {});
  const std::vector<int32_t>& greedy = free.at("free").tokens;
  ASSERT_EQ(greedy.size(), 12u);
  EXPECT_EQ(free.at("free").finish_reason, "length");

  // Stop on the token greedy decoding produces at step 4: generation ends
  // with its first occurrence, which is included.
  const int32_t stop = greedy[4];
  const size_t first = std::find(greedy.begin(), greedy.end(), stop) - greedy.begin();
  WriteText(requests, line("stop", {{"stop_token_ids", {stop}}, {"ignore_eos", true}}) +
                          line("short", {{"max_tokens", 3}, {"ignore_eos", true}}));
  const Outcomes stopped = RunJob(dir, model, requests, {2, 256, 1, kernels::BestIsa()});
  EXPECT_EQ(stopped.at("stop").tokens,
            std::vector<int32_t>(greedy.begin(), greedy.begin() + first + 1));
  EXPECT_EQ(stopped.at("stop").finish_reason, "stop");
  EXPECT_EQ(stopped.at("short").tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + 3));
  EXPECT_EQ(stopped.at("short").finish_reason, "length");

  // EOS: a model whose eos_token_id is that token stops there unless ignore_eos.
  config.eos_token_id = stop;
  const std::string eos_model = dir.File("eos.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kF32, 5, eos_model).ok());
  WriteText(requests, line("eos", json::object()) + line("ignore", {{"ignore_eos", true}}));
  const Outcomes eos = RunJob(dir, eos_model, requests, {2, 256, 1, kernels::BestIsa()});
  EXPECT_EQ(eos.at("eos").tokens, stopped.at("stop").tokens);
  EXPECT_EQ(eos.at("eos").finish_reason, "stop");
  EXPECT_EQ(eos.at("ignore").tokens, greedy);
}

// Pipeline parallelism's building block: two engines holding layers [0, 2)
// and [2, 4), passing the hidden state between them, give the bits of one
// engine holding all four.
TEST(EngineTest, TwoPipelineStagesEqualOneStage) {
  ScratchDir dir;
  const partitioner::ModelConfig config = TinyPreset();
  const std::string path = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 9, path).ok());
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();

  EngineOptions options;
  options.isa = kernels::BestIsa();
  options.max_slots = 1;
  options.kv_pages = 2;
  auto make = [&](int stage, int pp, int begin, int end) {
    Result<ShardSpec> shard = ShardSpec::Make(config, 1, 0, pp, stage, begin, end);
    EXPECT_TRUE(shard.ok());
    Result<ModelWeights> weights = LoadWeights(*file, *shard);
    EXPECT_TRUE(weights.ok()) << weights.status().message();
    Result<std::unique_ptr<Engine>> engine = Engine::Create(std::move(weights).value(), options);
    EXPECT_TRUE(engine.ok());
    std::unique_ptr<Engine> e = std::move(engine).value();
    e->ApplyBindings(std::vector<SlotBinding>{{0, {0, 1}}});
    return e;
  };
  std::unique_ptr<Engine> whole = make(0, 1, 0, 4);
  std::unique_ptr<Engine> first = make(0, 2, 0, 2);
  std::unique_ptr<Engine> last = make(1, 2, 2, 4);

  // A 70-token prompt in one step, then 5 greedy decode steps.
  TokenBatch batch;
  const std::vector<int32_t> prompt = runtime::testing::TestPrompt(70, config.vocab_size, 2);
  for (size_t i = 0; i < prompt.size(); ++i) {
    batch.Add(prompt[i], 0, static_cast<int32_t>(i), i + 1 == prompt.size());
  }
  std::vector<float> expected, hidden, got(static_cast<size_t>(config.vocab_size));
  for (int step = 0; step < 6; ++step) {
    ASSERT_TRUE(whole->Forward(batch, &expected).ok());
    hidden.assign(static_cast<size_t>(batch.size() * config.hidden_size), 0.0f);
    ASSERT_TRUE(first->Embed(batch, hidden.data()).ok());
    ASSERT_TRUE(first->RunLayers(batch, hidden.data()).ok());
    ASSERT_TRUE(last->RunLayers(batch, hidden.data()).ok());
    ASSERT_TRUE(last->ComputeLogits(batch, hidden.data(), got.data()).ok());
    ASSERT_EQ(expected.size(), got.size());
    EXPECT_EQ(std::memcmp(expected.data(), got.data(), got.size() * sizeof(float)), 0)
        << "step " << step;
    const int32_t next = kernels::Argmax(expected.data(), config.vocab_size);
    const int32_t position = batch.positions.back() + 1;
    batch.Clear();
    batch.Add(next, 0, position, true);
  }
}

// Quantized weights: a tp split that would cut a block and a non-finite
// block scale are refused at load, with one message naming the tensor.
TEST(EngineTest, QuantizedWeightsRefuseBadSplitsAndScales) {
  ScratchDir dir;
  const partitioner::ModelConfig config = TinyPreset();  // intermediate_size 352 = 11 blocks
  const std::string path = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kQ8_0, 1, path).ok());
  {
    Result<ModelFile> file = ModelFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().message();
    Result<ShardSpec> shard = ShardSpec::Make(config, 2, 0, 1, 0, 0, 4);
    ASSERT_TRUE(shard.ok());
    Result<ModelWeights> weights = LoadWeights(*file, *shard);
    ASSERT_FALSE(weights.ok());
    EXPECT_EQ(weights.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(weights.status().message().find("/ffn/w_down"), std::string::npos)
        << weights.status().message();
    EXPECT_NE(weights.status().message().find("tp 2"), std::string::npos);
    EXPECT_TRUE(LoadWeights(*file, ShardSpec::SingleRank(config)).ok());
  }
  // An Inf scale in block 3 of row 5 of layer 1's wv.
  testing::FileEditor(path).SetBlockScale("/layers/1/attn/wv", 5, 3, 0x7c00);
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  Result<ModelWeights> weights = LoadWeights(*file, ShardSpec::SingleRank(config));
  ASSERT_FALSE(weights.ok());
  EXPECT_EQ(weights.status().code(), StatusCode::kInvalidArgument);
  const std::string& message = weights.status().message();
  EXPECT_NE(message.find("/layers/1/attn/wv"), std::string::npos) << message;
  EXPECT_NE(message.find("non-finite scale (inf) in block 3 of row 5"), std::string::npos)
      << message;
}

// A sliding window changes nothing while a sequence fits in it, and the
// logits after: tiny-mistral (window 40) and tiny have the same shapes, so
// the same synthesized weights.
TEST(EngineTest, SlidingWindowChangesOnlyWhatLiesPastIt) {
  ScratchDir dir;
  const std::string windowed = dir.File("mistral.h5");
  const std::string full = dir.File("tiny.h5");
  ASSERT_TRUE(SynthesizeModel(TinyMistral(), DType::kBF16, 7, windowed).ok());
  ASSERT_TRUE(SynthesizeModel(TinyPreset(), DType::kBF16, 7, full).ok());
  auto line = [](const std::string& id, int prompt, int max_tokens) {
    return json({{"id", id},
                 {"prompt_tokens", runtime::testing::TestPrompt(prompt, 500, prompt)},
                 {"max_tokens", max_tokens},
                 {"temperature", 0},
                 {"ignore_eos", true}})
               .dump() +
           "\n";
  };
  const std::string requests = dir.File("requests.jsonl");
  WriteText(requests, line("fits", 20, 20) + line("past", 60, 8));  // positions < 40; to 67
  const Outcomes a = RunJob(dir, windowed, requests, {2, 16, 1, kernels::BestIsa()});
  const Outcomes b = RunJob(dir, full, requests, {2, 16, 1, kernels::BestIsa()});
  EXPECT_EQ(a.at("fits"), b.at("fits"));
  EXPECT_NE(a.at("past").logits_sha256, b.at("past").logits_sha256);
}

TEST(EngineTest, RejectsBadOptions) {
  ScratchDir dir;
  const partitioner::ModelConfig config = TinyPreset();
  const std::string path = dir.File("model.h5");
  ASSERT_TRUE(SynthesizeModel(config, DType::kBF16, 1, path).ok());
  Result<ModelFile> file = ModelFile::Open(path);
  ASSERT_TRUE(file.ok());
  auto weights = [&](int tp) {
    Result<ShardSpec> shard = ShardSpec::Make(config, tp, 0, 1, 0, 0, 4);
    return std::move(LoadWeights(*file, *shard)).value();
  };
  EngineOptions options;
  options.threads = 0;
  EXPECT_EQ(Engine::Create(weights(1), options).status().code(), StatusCode::kInvalidArgument);
  options.threads = 1;
  options.max_slots = 0;
  EXPECT_EQ(Engine::Create(weights(1), options).status().code(), StatusCode::kInvalidArgument);
  options.max_slots = 1;
  // A tensor-parallel shard without its tp group.
  EXPECT_EQ(Engine::Create(weights(2), options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Engine::Create(weights(1), options).ok());
}

}  // namespace
}  // namespace lockstep::runtime
