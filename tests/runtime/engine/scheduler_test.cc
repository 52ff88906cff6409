// Scheduler and KV cache bookkeeping: admission, reservation, rejection,
// continuous admission order, chunked prefill.
#include "lockstep/engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>

#include "lockstep/engine/kv_cache.h"

namespace lockstep::runtime {
namespace {

constexpr int kPage = kernels::kKvPageSize;

std::vector<int32_t> Prompt(int n, int32_t first = 1) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(first + i);
  return p;
}

TEST(KvPageAllocatorTest, LowestIdsFirstAndExhaustion) {
  KvPageAllocator a(5);
  EXPECT_EQ(KvPagesFor(1), 1);
  EXPECT_EQ(KvPagesFor(kPage), 1);
  EXPECT_EQ(KvPagesFor(kPage + 1), 2);
  auto p1 = a.Allocate(2);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(*p1, (std::vector<int32_t>{0, 1}));
  auto p2 = a.Allocate(2);
  EXPECT_EQ(*p2, (std::vector<int32_t>{2, 3}));
  auto p3 = a.Allocate(2);
  ASSERT_FALSE(p3.ok());
  EXPECT_EQ(p3.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(a.free_pages(), 1);  // a failed allocation takes nothing
  a.Free(*p1);
  EXPECT_EQ(*a.Allocate(3), (std::vector<int32_t>{0, 1, 4}));
  EXPECT_EQ(a.free_pages(), 0);
}

TEST(KvCacheTest, PageTablesMapPositionsToPages) {
  KvCacheShape shape;
  shape.num_layers = 2;
  shape.page = {2, 8};  // 2 KV heads of dim 8
  shape.num_pages = 4;
  shape.num_slots = 2;
  KvCache cache(shape);
  EXPECT_EQ(shape.bytes_per_page(), 2u * 2 * 2 * 8 * kPage * sizeof(float));
  const std::vector<int32_t> pages = {3, 1};
  cache.Bind(1, pages);
  EXPECT_EQ(cache.SlotCapacity(1), 2 * kPage);
  for (int layer = 0; layer < 2; ++layer) {
    const float* const* k = cache.KPageTable(1, layer);
    const float* const* v = cache.VPageTable(1, layer);
    EXPECT_EQ(k[0], cache.KPageAt(1, layer, 0));
    EXPECT_EQ(k[0], cache.KPageAt(1, layer, kPage - 1));
    EXPECT_EQ(k[1], cache.KPageAt(1, layer, kPage));
    EXPECT_EQ(v[1], cache.VPageAt(1, layer, 2 * kPage - 1));
    EXPECT_NE(k[0], k[1]);
    EXPECT_NE(k[0], v[0]);
  }
  EXPECT_NE(cache.KPageTable(1, 0)[0], cache.KPageTable(1, 1)[0]);  // layers are distinct
  // Every K and V page of every layer is a distinct, non-overlapping block:
  // write them all and read back.
  const size_t fpp = shape.page.floats_per_page();
  cache.Bind(0, std::vector<int32_t>{0, 2});
  for (int slot = 0; slot < 2; ++slot) {
    for (int layer = 0; layer < 2; ++layer) {
      for (int e = 0; e < 2; ++e) {
        float* k = cache.KPageAt(slot, layer, e * kPage);
        float* v = cache.VPageAt(slot, layer, e * kPage);
        std::fill(k, k + fpp, float(slot * 100 + layer * 10 + e));
        std::fill(v, v + fpp, float(-(slot * 100 + layer * 10 + e)));
      }
    }
  }
  for (int slot = 0; slot < 2; ++slot) {
    for (int layer = 0; layer < 2; ++layer) {
      for (int e = 0; e < 2; ++e) {
        const float* k = cache.KPageTable(slot, layer)[e];
        const float* v = cache.VPageTable(slot, layer)[e];
        EXPECT_EQ(k[0], float(slot * 100 + layer * 10 + e));
        EXPECT_EQ(k[fpp - 1], float(slot * 100 + layer * 10 + e));
        EXPECT_EQ(v[fpp - 1], float(-(slot * 100 + layer * 10 + e)));
      }
    }
  }
}

TEST(SchedulerTest, RejectsWhatCanNeverFit) {
  Scheduler s({2, 64}, /*kv_pages=*/3);
  EXPECT_TRUE(s.Submit(0, Prompt(100), 3 * kPage - 100).ok());  // exactly 3 pages
  Status too_big = s.Submit(1, Prompt(100), 3 * kPage - 99);
  EXPECT_EQ(too_big.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(too_big.message().find("needs 4 KV cache pages"), std::string::npos)
      << too_big.message();
  EXPECT_NE(too_big.message().find("has 3 pages"), std::string::npos);
  EXPECT_EQ(s.num_queued(), 1);
}

TEST(SchedulerTest, AdmitsUpToMaxBatchAndReservesWholeRequests) {
  Scheduler s({2, 1000}, /*kv_pages=*/100);
  ASSERT_TRUE(s.Submit(10, Prompt(3), 100).ok());  // 103 positions: 2 pages
  ASSERT_TRUE(s.Submit(11, Prompt(5), 1).ok());    // 1 page
  ASSERT_TRUE(s.Submit(12, Prompt(2), 1).ok());
  StepPlan p = s.NextStep();
  EXPECT_EQ(p.admitted, (std::vector<int64_t>{10, 11}));
  ASSERT_EQ(p.bindings.size(), 2u);
  EXPECT_EQ(p.bindings[0].slot, 0);
  EXPECT_EQ(p.bindings[0].pages, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(p.bindings[1].slot, 1);
  EXPECT_EQ(p.bindings[1].pages, (std::vector<int32_t>{2}));
  EXPECT_EQ(s.allocator().free_pages(), 97);
  EXPECT_EQ(s.num_running(), 2);
  EXPECT_EQ(s.num_queued(), 1);
  // Both prompts whole, logits for the last token of each.
  EXPECT_EQ(p.batch.size(), 8);
  EXPECT_EQ(p.batch.logits_rows, (std::vector<int32_t>{2, 7}));
  EXPECT_EQ(p.logits_handles, (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(p.batch.positions, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 4}));
  EXPECT_EQ(p.batch.slots, (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(p.batch.tokens, (std::vector<int32_t>{1, 2, 3, 1, 2, 3, 4, 5}));

  // 11 finishes (max_tokens 1): its slot and page go to 12 in the very next step.
  const TokenOutcome outcomes[] = {{77, false}, {88, true}};
  s.CompleteStep(p, outcomes);
  EXPECT_EQ(s.num_running(), 1);
  StepPlan q = s.NextStep();
  EXPECT_EQ(q.admitted, (std::vector<int64_t>{12}));
  ASSERT_EQ(q.bindings.size(), 1u);
  EXPECT_EQ(q.bindings[0].slot, 1);
  EXPECT_EQ(q.bindings[0].pages, (std::vector<int32_t>{2}));
  // Decode token of 10 first (its sampled 77 at position 3), then 12's prompt.
  EXPECT_EQ(q.batch.tokens, (std::vector<int32_t>{77, 1, 2}));
  EXPECT_EQ(q.batch.positions, (std::vector<int32_t>{3, 0, 1}));
  EXPECT_EQ(q.batch.slots, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(q.logits_handles, (std::vector<int64_t>{10, 12}));
}

TEST(SchedulerTest, HeadOfQueueWaitsForPagesAndIsNotOvertaken) {
  Scheduler s({4, 1000}, /*kv_pages=*/3);
  ASSERT_TRUE(s.Submit(0, Prompt(2), 2 * kPage - 2).ok());  // 2 pages
  ASSERT_TRUE(s.Submit(1, Prompt(2), 2 * kPage - 2).ok());  // 2 pages: must wait
  ASSERT_TRUE(s.Submit(2, Prompt(2), 1).ok());              // 1 page: would fit, may not pass
  StepPlan p = s.NextStep();
  EXPECT_EQ(p.admitted, (std::vector<int64_t>{0}));
  EXPECT_EQ(s.num_queued(), 2);
  const TokenOutcome done[] = {{5, true}};
  s.CompleteStep(p, done);
  StepPlan q = s.NextStep();
  EXPECT_EQ(q.admitted, (std::vector<int64_t>{1, 2}));
}

TEST(SchedulerTest, ChunkedPrefillWithinTheTokenBudget) {
  Scheduler s({2, 4}, /*kv_pages=*/10);
  ASSERT_TRUE(s.Submit(0, Prompt(10), 2).ok());
  ASSERT_TRUE(s.Submit(1, Prompt(3), 2).ok());
  // Step 0: 4 tokens of 0's prompt; nothing left for 1.
  StepPlan p0 = s.NextStep();
  ASSERT_EQ(p0.chunks.size(), 1u);
  EXPECT_EQ(p0.chunks[0].num_tokens, 4);
  EXPECT_TRUE(p0.batch.logits_rows.empty());
  s.CompleteStep(p0, {});
  StepPlan p1 = s.NextStep();
  EXPECT_EQ(p1.batch.positions, (std::vector<int32_t>{4, 5, 6, 7}));
  s.CompleteStep(p1, {});
  // Step 2: the last 2 of 0's prompt (logits) and the first 2 of 1's prompt.
  StepPlan p2 = s.NextStep();
  ASSERT_EQ(p2.chunks.size(), 2u);
  EXPECT_EQ(p2.batch.positions, (std::vector<int32_t>{8, 9, 0, 1}));
  EXPECT_EQ(p2.batch.logits_rows, (std::vector<int32_t>{1}));
  const TokenOutcome o2[] = {{50, false}};
  s.CompleteStep(p2, o2);
  // Step 3: 0 decodes first, then 1 finishes its prompt.
  StepPlan p3 = s.NextStep();
  EXPECT_EQ(p3.batch.tokens, (std::vector<int32_t>{50, 3}));
  EXPECT_EQ(p3.batch.positions, (std::vector<int32_t>{10, 2}));
  EXPECT_EQ(p3.logits_handles, (std::vector<int64_t>{0, 1}));
}

TEST(SchedulerTest, SequencesInFlightAreNotScheduledTwice) {
  Scheduler s({2, 100}, /*kv_pages=*/10);
  ASSERT_TRUE(s.Submit(0, Prompt(3), 5).ok());
  StepPlan p = s.NextStep();
  EXPECT_EQ(p.batch.size(), 3);
  StepPlan q = s.NextStep();  // 0 is still in flight (a pipeline would do this)
  EXPECT_TRUE(q.batch.empty());
  EXPECT_EQ(q.step, p.step + 1);
  s.CompleteStep(q, {});
  const TokenOutcome o[] = {{9, false}};
  s.CompleteStep(p, o);
  EXPECT_EQ(s.NextStep().batch.tokens, (std::vector<int32_t>{9}));
}

// Drives the scheduler like a batch job with a fake model whose next token is
// a function of (handle, position), and checks that every sequence is fed
// exactly its prompt and then its generated tokens at consecutive positions,
// whatever max_batch and max_step_tokens are.
TEST(SchedulerTest, EverySequenceSeesItsOwnTokensInOrder) {
  struct Spec {
    int prompt;
    int max_tokens;
  };
  const std::vector<Spec> specs = {{5, 3}, {70, 10}, {1, 1}, {130, 4}, {9, 20}, {64, 2}, {2, 7}};
  auto fake_token = [](int64_t handle, int64_t position) {
    return static_cast<int32_t>((handle * 131 + position * 7) % 1000);
  };
  auto stops_at = [](int64_t handle) { return handle == 4 ? 5 : -1; };  // 4 "hits EOS" early

  std::map<int64_t, std::vector<std::pair<int32_t, int32_t>>> reference;  // (position, token)
  for (int max_batch : {1, 2, 3, 7}) {
    for (int budget : {1, 16, 1000}) {
      Scheduler s({max_batch, budget}, /*kv_pages=*/12);
      std::map<int64_t, std::vector<std::pair<int32_t, int32_t>>> fed;
      std::map<int64_t, int> generated;
      std::vector<int64_t> admission;
      for (size_t h = 0; h < specs.size(); ++h) {
        ASSERT_TRUE(s.Submit(int64_t(h), Prompt(specs[h].prompt, 100), specs[h].max_tokens).ok());
      }
      int steps = 0;
      while (!s.Idle()) {
        StepPlan p = s.NextStep();
        ASSERT_FALSE(p.batch.empty());
        ASSERT_LE(s.num_running(), max_batch);
        admission.insert(admission.end(), p.admitted.begin(), p.admitted.end());
        size_t t = 0;
        for (const StepChunk& c : p.chunks) {
          for (int i = 0; i < c.num_tokens; ++i, ++t) {
            EXPECT_EQ(p.batch.positions[t], c.first_position + i);
            fed[c.handle].push_back({p.batch.positions[t], p.batch.tokens[t]});
          }
        }
        std::vector<TokenOutcome> outcomes;
        for (size_t r = 0; r < p.logits_handles.size(); ++r) {
          const int64_t h = p.logits_handles[r];
          const int32_t pos = p.batch.positions[size_t(p.batch.logits_rows[r])];
          const int n = ++generated[h];
          outcomes.push_back(
              {fake_token(h, pos + 1), n == specs[size_t(h)].max_tokens || n == stops_at(h)});
        }
        s.CompleteStep(p, outcomes);
        ASSERT_LT(++steps, 10000);
      }
      // Admission is in submission order.
      EXPECT_EQ(admission, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
      EXPECT_EQ(s.allocator().free_pages(), 12);
      for (size_t h = 0; h < specs.size(); ++h) {
        const auto& seq = fed[int64_t(h)];
        for (size_t i = 0; i < seq.size(); ++i) {
          EXPECT_EQ(seq[i].first, int32_t(i));
          const int32_t want =
              int(i) < specs[h].prompt ? 100 + int32_t(i) : fake_token(int64_t(h), int64_t(i));
          EXPECT_EQ(seq[i].second, want) << "handle " << h << " position " << i;
        }
      }
      if (reference.empty()) {
        reference = fed;
      } else {
        EXPECT_EQ(fed, reference) << "max_batch " << max_batch << " budget " << budget;
      }
    }
  }
}

}  // namespace
}  // namespace lockstep::runtime

namespace lockstep::runtime {
namespace {

// Pipelining: a sequence still reading its prompt gets its next chunk in the
// next step while the previous chunk is in flight; a sequence awaiting a
// token does not.
TEST(SchedulerTest, PromptChunksPipelineButTokensWait) {
  Scheduler s({2, 4}, /*kv_pages=*/10);
  ASSERT_TRUE(s.Submit(0, std::vector<int32_t>(10, 5), 3).ok());
  StepPlan p0 = s.NextStep();
  StepPlan p1 = s.NextStep();  // p0 still in flight
  StepPlan p2 = s.NextStep();
  EXPECT_EQ(p0.batch.positions, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(p1.batch.positions, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(p2.batch.positions, (std::vector<int32_t>{8, 9}));
  EXPECT_EQ(p2.batch.logits_rows, (std::vector<int32_t>{1}));
  EXPECT_TRUE(s.NextStep().batch.empty());  // awaiting its first token
  s.CompleteStep(p0, {});
  s.CompleteStep(p1, {});
  EXPECT_TRUE(s.NextStep().batch.empty());
  const TokenOutcome o[] = {{42, false}};
  s.CompleteStep(p2, o);
  StepPlan p3 = s.NextStep();
  EXPECT_EQ(p3.batch.tokens, (std::vector<int32_t>{42}));
  EXPECT_EQ(p3.batch.positions, (std::vector<int32_t>{10}));
}

// max_sequences cuts the running sequences into micro-batches, in admission
// order, and every sequence gets its turn.
TEST(SchedulerTest, MaxSequencesCutsMicroBatches) {
  Scheduler s({4, 100}, /*kv_pages=*/10);
  for (int h = 0; h < 4; ++h) ASSERT_TRUE(s.Submit(h, {1, 2}, 5).ok());
  StepPlan a = s.NextStep(2);
  StepPlan b = s.NextStep(2);
  EXPECT_EQ(a.admitted, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(a.logits_handles, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(b.logits_handles, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(s.NextStep(2).batch.empty());
  const TokenOutcome two[] = {{7, false}, {8, false}};
  s.CompleteStep(a, two);
  StepPlan c = s.NextStep(2);
  EXPECT_EQ(c.logits_handles, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(c.batch.tokens, (std::vector<int32_t>{7, 8}));
}

}  // namespace
}  // namespace lockstep::runtime
