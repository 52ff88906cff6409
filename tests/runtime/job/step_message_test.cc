// The pipeline's wire format: descriptors, bindings and outcomes survive the
// trip bit for bit, and malformed messages are refused.
#include "step_message.h"

#include <gtest/gtest.h>

namespace lockstep::runtime {
namespace {

StepDescriptor Sample() {
  StepDescriptor d;
  d.step = 41;
  d.chunks = {{7, 2, 0, 5, false}, {3, 0, 64, 1, true}, {9, 1, 10, 3, true}};
  d.bindings = {{2, {4, 5, 9}}, {1, {0}}};
  return d;
}

TEST(StepMessageTest, DescriptorRoundTrip) {
  const StepDescriptor d = Sample();
  std::vector<std::byte> fixed, bindings;
  EncodeDescriptor(d, 4, &fixed, &bindings);
  EXPECT_EQ(fixed.size(), DescriptorBytes(4));
  size_t binding_bytes = 0;
  Result<StepDescriptor> got = DecodeDescriptor(fixed, 4, &binding_bytes);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(binding_bytes, bindings.size());
  ASSERT_TRUE(DecodeBindings(bindings, &*got).ok());
  EXPECT_EQ(got->step, 41);
  EXPECT_EQ(got->kind, StepDescriptor::Kind::kStep);
  ASSERT_EQ(got->chunks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got->chunks[i].handle, d.chunks[i].handle);
    EXPECT_EQ(got->chunks[i].slot, d.chunks[i].slot);
    EXPECT_EQ(got->chunks[i].first_position, d.chunks[i].first_position);
    EXPECT_EQ(got->chunks[i].num_tokens, d.chunks[i].num_tokens);
    EXPECT_EQ(got->chunks[i].wants_logits, d.chunks[i].wants_logits);
  }
  ASSERT_EQ(got->bindings.size(), 2u);
  EXPECT_EQ(got->bindings[0].slot, 2);
  EXPECT_EQ(got->bindings[0].pages, (std::vector<int32_t>{4, 5, 9}));
  EXPECT_EQ(got->bindings[1].pages, (std::vector<int32_t>{0}));

  // The batch a later stage runs: slots, positions, logits rows.
  const TokenBatch batch = got->Batch();
  EXPECT_EQ(batch.size(), 9);
  EXPECT_EQ(batch.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 64, 10, 11, 12}));
  EXPECT_EQ(batch.slots, (std::vector<int32_t>{2, 2, 2, 2, 2, 0, 1, 1, 1}));
  EXPECT_EQ(batch.logits_rows, (std::vector<int32_t>{5, 8}));
}

// Regression: a step may admit more sequences (--max-batch) than it has
// chunks (the micro-batch capacity); their bindings still travel.
TEST(StepMessageTest, MoreBindingsThanChunks) {
  StepDescriptor d;
  d.step = 0;
  d.chunks = {{0, 0, 0, 4, true}};
  for (int32_t slot = 0; slot < 6; ++slot) d.bindings.push_back({slot, {slot}});
  std::vector<std::byte> fixed, bindings;
  EncodeDescriptor(d, 1, &fixed, &bindings);
  size_t binding_bytes = 0;
  Result<StepDescriptor> got = DecodeDescriptor(fixed, 1, &binding_bytes);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(DecodeBindings(bindings, &*got).ok());
  ASSERT_EQ(got->bindings.size(), 6u);
  EXPECT_EQ(got->bindings[5].slot, 5);
  EXPECT_EQ(got->bindings[5].pages, (std::vector<int32_t>{5}));
}

TEST(StepMessageTest, EndAndMalformedDescriptors) {
  std::vector<std::byte> fixed, bindings;
  EncodeDescriptor(StepDescriptor::End(12), 2, &fixed, &bindings);
  EXPECT_TRUE(bindings.empty());
  size_t binding_bytes = 1;
  Result<StepDescriptor> end = DecodeDescriptor(fixed, 2, &binding_bytes);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->kind, StepDescriptor::Kind::kEnd);
  EXPECT_EQ(binding_bytes, 0u);

  EXPECT_FALSE(DecodeDescriptor(fixed, 3, &binding_bytes).ok());  // wrong size
  fixed[0] = std::byte{0};
  EXPECT_FALSE(DecodeDescriptor(fixed, 2, &binding_bytes).ok());  // not a descriptor
}

TEST(StepMessageTest, OutcomesRoundTrip) {
  StepOutcomes o;
  o.step = 9;
  o.rows.push_back({5, 17, false, false, 0x1234, ""});
  o.rows.push_back({8, 2, true, true, 0xfedcba9876543210ull, std::string(64, 'a')});
  o.rows.push_back({3, 41, true, false, 0, "", RowOutcome::NonFinite::kNan});
  std::vector<std::byte> bytes;
  EncodeOutcomes(o, 3, &bytes);
  EXPECT_EQ(bytes.size(), OutcomeBytes(3));
  Result<StepOutcomes> got = DecodeOutcomes(bytes, 3);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->step, 9);
  ASSERT_EQ(got->rows.size(), 3u);
  EXPECT_EQ(got->rows[0].non_finite, RowOutcome::NonFinite::kNone);
  EXPECT_EQ(got->rows[2].non_finite, RowOutcome::NonFinite::kNan);
  EXPECT_EQ(got->rows[2].token, 41);
  EXPECT_EQ(got->rows[0].handle, 5);
  EXPECT_EQ(got->rows[0].token, 17);
  EXPECT_FALSE(got->rows[0].finished);
  EXPECT_EQ(got->rows[0].fingerprint, 0x1234u);
  EXPECT_TRUE(got->rows[0].logits_sha256.empty());
  EXPECT_TRUE(got->rows[1].finished);
  EXPECT_TRUE(got->rows[1].stop);
  EXPECT_EQ(got->rows[1].fingerprint, 0xfedcba9876543210ull);
  EXPECT_EQ(got->rows[1].logits_sha256, std::string(64, 'a'));
  EXPECT_FALSE(DecodeOutcomes(bytes, 2).ok());
  // An unknown non-finite kind is a damaged message.
  bytes[16 + 2 * 88 + 15] = std::byte{7};
  EXPECT_FALSE(DecodeOutcomes(bytes, 3).ok());
}

}  // namespace
}  // namespace lockstep::runtime
