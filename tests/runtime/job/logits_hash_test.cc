#include "lockstep/job/logits_hash.h"

#include <gtest/gtest.h>

#include "lockstep/job/sampler.h"

namespace lockstep::runtime {
namespace {

TEST(LogitsHashTest, KnownDigests) {
  EXPECT_EQ(Sha256Hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  LogitsHasher empty;
  EXPECT_EQ(empty.Finish(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(LogitsHashTest, StepsAreLittleEndianF32InOrder) {
  // Python: hashlib.sha256(struct.pack('<6f', 1, -2, 0.5, 3, -0.0, 1e-30)).hexdigest()
  const float step0[] = {1.0f, -2.0f, 0.5f};
  const float step1[] = {3.0f, -0.0f, 1e-30f};
  LogitsHasher h;
  h.AddStep(step0, 3);
  h.AddStep(step1, 3);
  EXPECT_EQ(h.Finish(), "d8ee8d06b3580ab96f0d2e35cd7584da0dd27807eecd73459a5df8039b3e2b74");
}

TEST(LogitsHashTest, OneBitChangesTheDigest) {
  float a[] = {1.0f, 2.0f};
  LogitsHasher h1, h2;
  h1.AddStep(a, 2);
  a[1] = std::nextafter(a[1], 3.0f);
  h2.AddStep(a, 2);
  EXPECT_NE(h1.Finish(), h2.Finish());
}

TEST(SamplerTest, RequestStreamIsFnv1a64) {
  // Published FNV-1a 64 test vectors.
  EXPECT_EQ(RequestStream(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(RequestStream("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(RequestStream("foobar"), 0x85944171f73967e8ull);
}

}  // namespace
}  // namespace lockstep::runtime
