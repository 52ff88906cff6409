#include "transport_checks.h"

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "lockstep/transport/rank_layout.h"

namespace lockstep::transport::testing {

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::byte TestByte(uint32_t seed, int rank, size_t index) {
  return static_cast<std::byte>(
      SplitMix64((uint64_t{seed} << 40) ^ (uint64_t(rank) << 32) ^ index * 0x100000001b3ull) >> 56);
}

float TreeOver(std::span<const float> leaves, size_t first, size_t width) {
  if (first >= leaves.size()) return 0.0f;  // never used: callers prune
  if (width == 1) return leaves[first];
  size_t half = width / 2;
  float left = TreeOver(leaves, first, half);
  if (first + half >= leaves.size()) return left;  // right subtree missing: pruned
  return left + TreeOver(leaves, first + half, half);
}

size_t CountDifferentBits(std::span<const float> a, std::span<const float> b, size_t* first) {
  size_t wrong = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) {
      if (wrong == 0) *first = i;
      ++wrong;
    }
  }
  return wrong;
}

}  // namespace

float TestValue(uint32_t seed, int rank, size_t index) {
  uint64_t h = SplitMix64((uint64_t{seed} << 40) ^ (uint64_t(rank) << 32) ^ index);
  uint32_t sign = static_cast<uint32_t>(h >> 63) << 31;
  uint32_t exponent = static_cast<uint32_t>(127 - 12 + (h >> 32) % 25) << 23;
  uint32_t mantissa = static_cast<uint32_t>(h) & 0x7fffff;
  return std::bit_cast<float>(sign | exponent | mantissa);
}

float CanonicalTreeSum(std::span<const float> leaves) {
  if (leaves.empty()) return 0.0f;
  return TreeOver(leaves, 0, std::bit_ceil(leaves.size()));
}

void CheckAllReduce(Communicator& comm, size_t n, AllReduceAlgorithm algorithm, uint32_t seed) {
  const int p = comm.size();
  std::vector<float> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = TestValue(seed, comm.world_rank(), i);
  Status status = comm.AllReduceSum(data, algorithm);
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  std::vector<float> expected(n);
  std::vector<float> leaves(p);
  for (size_t i = 0; i < n; ++i) {
    for (int r = 0; r < p; ++r) leaves[r] = TestValue(seed, comm.WorldRankOf(r), i);
    expected[i] = CanonicalTreeSum(leaves);
  }
  size_t first = 0;
  size_t wrong = CountDifferentBits(data, expected, &first);
  EXPECT_EQ(wrong, 0u) << "rank " << comm.rank() << " of " << p << ", n=" << n << ", algorithm "
                       << AllReduceAlgorithmName(algorithm) << ": first wrong element " << first
                       << " got " << (wrong ? data[first] : 0.f) << " expected "
                       << (wrong ? expected[first] : 0.f);
}

void CheckSplitAllReduce(Communicator& comm, size_t n, uint32_t seed) {
  const int p = comm.size();
  std::vector<float> a(n), b(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = TestValue(seed, comm.world_rank(), i);
    b[i] = TestValue(seed + 1, comm.world_rank(), i);
  }
  Result<PendingAllReduce> first = comm.StartAllReduceSum(a);
  ASSERT_TRUE(first.ok()) << "rank " << comm.rank() << ": " << first.status().ToString();
  CheckBroadcast(comm, 100, p - 1, seed + 2);
  Result<PendingAllReduce> second = comm.StartAllReduceSum(b);
  ASSERT_TRUE(second.ok()) << "rank " << comm.rank() << ": " << second.status().ToString();
  Status status = first->Finish();
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  status = second->Finish();
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  std::vector<float> leaves(p);
  for (const auto& [data, s] : {std::pair{&a, seed}, std::pair{&b, seed + 1}}) {
    std::vector<float> expected(n);
    for (size_t i = 0; i < n; ++i) {
      for (int r = 0; r < p; ++r) leaves[r] = TestValue(s, comm.WorldRankOf(r), i);
      expected[i] = CanonicalTreeSum(leaves);
    }
    size_t wrong_at = 0;
    EXPECT_EQ(CountDifferentBits(*data, expected, &wrong_at), 0u)
        << "rank " << comm.rank() << " of " << p << ", n=" << n << ", split allreduce (seed " << s
        << "): first wrong element " << wrong_at;
  }
}

void CheckOrderMatters(const Communicator& comm, size_t n, uint32_t seed) {
  const int p = comm.size();
  if (p < 3) return;
  std::vector<float> leaves(p);
  size_t differ = 0;
  for (size_t i = 0; i < n; ++i) {
    for (int r = 0; r < p; ++r) leaves[r] = TestValue(seed, comm.WorldRankOf(r), i);
    // Another order: serial from the last rank down.
    float serial = leaves[p - 1];
    for (int r = p - 2; r >= 0; --r) serial = serial + leaves[r];
    if (std::bit_cast<uint32_t>(serial) != std::bit_cast<uint32_t>(CanonicalTreeSum(leaves))) {
      ++differ;
    }
  }
  EXPECT_GT(differ, 0u) << "the test inputs do not tell summation orders apart";
}

void CheckAllGather(Communicator& comm, size_t block, uint32_t seed) {
  const int p = comm.size();
  std::vector<std::byte> mine(block);
  for (size_t i = 0; i < block; ++i) mine[i] = TestByte(seed, comm.world_rank(), i);
  std::vector<std::byte> all(block * p, std::byte{0xee});
  Status status = comm.AllGather(mine, all);
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  size_t wrong = 0;
  for (int r = 0; r < p; ++r) {
    for (size_t i = 0; i < block; ++i) {
      if (all[r * block + i] != TestByte(seed, comm.WorldRankOf(r), i)) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0u) << "rank " << comm.rank() << " of " << p << ", block " << block;
}

void CheckBroadcast(Communicator& comm, size_t bytes, int root, uint32_t seed) {
  std::vector<std::byte> data(bytes);
  for (size_t i = 0; i < bytes; ++i) {
    data[i] = comm.rank() == root ? TestByte(seed, comm.WorldRankOf(root), i) : std::byte{0};
  }
  Status status = comm.Broadcast(data, root);
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  size_t wrong = 0;
  for (size_t i = 0; i < bytes; ++i) {
    if (data[i] != TestByte(seed, comm.WorldRankOf(root), i)) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << "rank " << comm.rank() << ", root " << root << ", " << bytes << " bytes";
}

namespace {
size_t MessageBytes(int stream, int sequence, size_t max_bytes) {
  if (sequence == 0) return stream == 0 ? 0 : max_bytes;  // the extremes
  return (static_cast<size_t>(stream) * 977 + static_cast<size_t>(sequence) * 131) % 4099 + 1;
}
std::byte StreamByte(int sender, int stream, int sequence, size_t i) {
  return static_cast<std::byte>(SplitMix64((uint64_t(sender) << 48) ^ (uint64_t(stream) << 40) ^
                                           (uint64_t(sequence) << 32) ^ i) >>
                                56);
}
}  // namespace

namespace {
struct Mat2 {
  uint64_t a, b, c, d;
};
Mat2 Multiply(const Mat2& x, const Mat2& y) {
  return {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c,
          x.c * y.b + x.d * y.d};
}
Mat2 RankMatrix(uint32_t seed, int rank) {
  const uint64_t h = SplitMix64((uint64_t(seed) << 32) ^ uint64_t(rank));
  return {h | 1, h >> 7, SplitMix64(h), (h >> 3) | 1};
}
}  // namespace

void CheckAllReduceRecords(Communicator& comm, uint32_t seed) {
  Mat2 mine = RankMatrix(seed, comm.rank());
  const uint64_t before = comm.traffic().messages_received;
  Status s = comm.AllReduce(std::as_writable_bytes(std::span<Mat2>(&mine, 1)),
                            [](std::span<std::byte> lower, std::span<const std::byte> upper) {
                              Mat2 x, y;
                              std::memcpy(&x, lower.data(), sizeof(x));
                              std::memcpy(&y, upper.data(), sizeof(y));
                              const Mat2 z = Multiply(x, y);
                              std::memcpy(lower.data(), &z, sizeof(z));
                            });
  ASSERT_TRUE(s.ok()) << "rank " << comm.rank() << ": " << s.ToString();
  Mat2 want = RankMatrix(seed, 0);
  for (int r = 1; r < comm.size(); ++r) want = Multiply(want, RankMatrix(seed, r));
  EXPECT_TRUE(mine.a == want.a && mine.b == want.b && mine.c == want.c && mine.d == want.d)
      << "rank " << comm.rank() << " of " << comm.size();
  int log2p = 0;
  while ((1 << log2p) < comm.size()) ++log2p;
  EXPECT_LE(comm.traffic().messages_received - before, uint64_t(log2p) + 1)
      << "rank " << comm.rank();
}

void CheckGather(Communicator& comm, size_t block, uint32_t seed) {
  const int p = comm.size();
  for (int root = 0; root < p; root += (p > 8 ? 5 : 1)) {
    std::vector<std::byte> mine(block);
    for (size_t i = 0; i < block; ++i) mine[i] = StreamByte(comm.rank(), int(seed), root, i);
    std::vector<std::byte> all(comm.rank() == root ? block * p : 0);
    const uint64_t before = comm.traffic().bytes_received;
    Status s = comm.Gather(mine, all, root);
    ASSERT_TRUE(s.ok()) << "rank " << comm.rank() << ": " << s.ToString();
    const int v = (comm.rank() - root + p) % p;
    const int subtree = v == 0 ? p : std::min(v & -v, p - v);
    EXPECT_EQ(comm.traffic().bytes_received - before, block * size_t(subtree - 1))
        << "rank " << comm.rank() << " root " << root;
    if (comm.rank() != root) continue;
    size_t wrong = 0;
    for (int r = 0; r < p; ++r) {
      for (size_t i = 0; i < block; ++i) {
        if (all[r * block + i] != StreamByte(r, int(seed), root, i)) ++wrong;
      }
    }
    EXPECT_EQ(wrong, 0u) << "root " << root << " of " << p;
  }
}

void CheckBarrier(Communicator& comm) {
  // Rank 0 enters the barrier 200 ms late and records when; nobody may leave
  // before that moment. steady_clock is CLOCK_MONOTONIC, one clock for every
  // process and thread of a node (the tests run on one node).
  using Clock = std::chrono::steady_clock;
  ASSERT_TRUE(comm.Barrier().ok());
  int64_t entered = 0;
  if (comm.rank() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    entered = Clock::now().time_since_epoch().count();
  }
  Status status = comm.Barrier();
  const int64_t left = Clock::now().time_since_epoch().count();
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE(comm.Broadcast(std::as_writable_bytes(std::span(&entered, 1)), 0).ok());
  EXPECT_GE(left, entered) << "rank " << comm.rank() << " left the barrier "
                           << (entered - left) / 1000 << " us before rank 0 entered it";
}

void CheckInterleavedStreams(Communicator& comm, int messages, size_t max_bytes) {
  const int p = comm.size();
  if (p < 2) return;
  const int next = (comm.rank() + 1) % p;
  const int prev = (comm.rank() - 1 + p) % p;
  constexpr int kStreams = 3;
  const uint32_t ids[kStreams] = {5, 0, kMaxStreamId};  // any ids; not contiguous
  std::vector<SendStream> out;
  std::vector<RecvStream> in;
  for (int s = 0; s < kStreams; ++s) {
    auto o = comm.OpenSendStream(next, ids[s]);
    auto i = comm.OpenRecvStream(prev, ids[s]);
    ASSERT_TRUE(o.ok() && i.ok());
    out.push_back(std::move(*o));
    in.push_back(std::move(*i));
  }
  // Pre-post every receive first.
  std::vector<std::vector<std::byte>> received(kStreams * messages);
  std::vector<Request> recvs;
  for (int m = 0; m < messages; ++m) {
    for (int s = 0; s < kStreams; ++s) {
      auto& buffer = received[s * messages + m];
      buffer.assign(MessageBytes(s, m, max_bytes), std::byte{0});
      auto request = in[s].Post(std::span<std::byte>(buffer));
      ASSERT_TRUE(request.ok()) << request.status().ToString();
      EXPECT_EQ(request->sequence(), static_cast<uint64_t>(m));
      recvs.push_back(std::move(*request));
    }
  }
  // Send interleaved: streams in a rotating order per message.
  std::vector<std::vector<std::byte>> sent(kStreams * messages);
  std::vector<Request> sends;
  for (int m = 0; m < messages; ++m) {
    for (int k = 0; k < kStreams; ++k) {
      int s = (k + m) % kStreams;
      auto& buffer = sent[s * messages + m];
      buffer.resize(MessageBytes(s, m, max_bytes));
      for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = StreamByte(comm.rank(), s, m, i);
      auto request = out[s].Send(std::span<const std::byte>(buffer));
      ASSERT_TRUE(request.ok()) << request.status().ToString();
      sends.push_back(std::move(*request));
    }
  }
  Status status = WaitAll(recvs);
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  status = WaitAll(sends);
  ASSERT_TRUE(status.ok()) << "rank " << comm.rank() << ": " << status.ToString();
  size_t wrong = 0;
  for (int s = 0; s < kStreams; ++s) {
    for (int m = 0; m < messages; ++m) {
      const auto& buffer = received[s * messages + m];
      for (size_t i = 0; i < buffer.size(); ++i) {
        if (buffer[i] != StreamByte(prev, s, m, i)) ++wrong;
      }
    }
  }
  EXPECT_EQ(wrong, 0u) << "rank " << comm.rank();
  EXPECT_EQ(out[0].next_sequence(), static_cast<uint64_t>(messages));
}

void CheckStreamSizeMismatch(Communicator& comm) {
  const int p = comm.size();
  if (p < 2) return;
  constexpr uint32_t kStream = 37;
  if (comm.rank() == 0) {
    auto out = comm.OpenSendStream(1, kStream);
    ASSERT_TRUE(out.ok());
    std::vector<std::byte> data(64);
    auto request = out->Send(std::span<const std::byte>(data));
    ASSERT_TRUE(request.ok());
    // The send itself may complete (eager) or fail; either way it ends.
    (void)request->Wait();
  } else if (comm.rank() == 1) {
    auto in = comm.OpenRecvStream(0, kStream);
    ASSERT_TRUE(in.ok());
    std::vector<std::byte> small(32);
    auto request = in->Post(std::span<std::byte>(small));
    ASSERT_TRUE(request.ok());
    Status status = request->Wait();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
    EXPECT_NE(status.message().find("stream 37 seq 0"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find("32 bytes"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find("from rank 0"), std::string::npos) << status.message();
  }
  ASSERT_TRUE(comm.Barrier().ok());
}

void CheckTensorParallelSubtrees(Communicator& comm, size_t outputs, uint32_t seed) {
  const int p = comm.size();
  if (!std::has_single_bit(static_cast<unsigned>(p)) || p > 64) return;
  constexpr int kSegments = 64;
  std::vector<float> partial(outputs);
  std::vector<float> full(outputs);
  std::vector<float> segments(kSegments);
  const int per_rank = kSegments / p;
  for (size_t o = 0; o < outputs; ++o) {
    for (int s = 0; s < kSegments; ++s) segments[s] = TestValue(seed, s, o);
    full[o] = CanonicalTreeSum(segments);
    partial[o] = CanonicalTreeSum(std::span<const float>(segments).subspan(
        static_cast<size_t>(comm.rank() * per_rank), static_cast<size_t>(per_rank)));
  }
  for (AllReduceAlgorithm algorithm :
       {AllReduceAlgorithm::kRecursiveDoubling, AllReduceAlgorithm::kReduceScatterAllGather}) {
    std::vector<float> data = partial;
    Status status = comm.AllReduceSum(data, algorithm);
    ASSERT_TRUE(status.ok()) << status.ToString();
    size_t first = 0;
    EXPECT_EQ(CountDifferentBits(data, full, &first), 0u)
        << "rank " << comm.rank() << " of " << p << ": the tp allreduce does not complete the "
        << "64-segment tree (algorithm " << AllReduceAlgorithmName(algorithm) << ")";
  }
}

void CheckLayoutGroups(Communicator& world) {
  const int n = world.size();
  int tp = 1;
  while (tp < 4 && n % (tp * 2) == 0) tp *= 2;
  auto layout = RankLayout::Create(tp, n / tp);
  ASSERT_TRUE(layout.ok());
  auto tp_group = world.Split(layout->TpGroups(), "tp");
  ASSERT_TRUE(tp_group.ok()) << tp_group.status().ToString();
  auto pp_group = world.Split(layout->PpGroups(), "pp");
  ASSERT_TRUE(pp_group.ok()) << pp_group.status().ToString();
  const int me = world.rank();
  EXPECT_EQ(tp_group->size(), tp);
  EXPECT_EQ(tp_group->rank(), layout->TpRank(me));
  EXPECT_EQ(tp_group->name(), "tp" + std::to_string(layout->Stage(me)));
  EXPECT_EQ(pp_group->size(), n / tp);
  EXPECT_EQ(pp_group->rank(), layout->Stage(me));
  EXPECT_EQ(pp_group->WorldRankOf(pp_group->rank()), me);
  // The same call numbers in two groups must not cross: run both at once.
  CheckAllReduce(*tp_group, 1000, AllReduceAlgorithm::kAuto, 11);
  CheckAllReduce(*pp_group, 999, AllReduceAlgorithm::kAuto, 12);
  CheckAllReduce(*tp_group, 70000, AllReduceAlgorithm::kAuto, 13);
  CheckInterleavedStreams(*pp_group, 3, 10000);
}

void CheckSilentPeerTimesOut(Communicator& comm, int silent) {
  const int p = comm.size();
  if (p < 2) return;
  const int partner = silent ^ 1;
  std::vector<float> data(16, 1.0f);
  if (comm.rank() == silent) {
    // Stay away until the others have given up.
    std::this_thread::sleep_for(comm.options().timeout * 3);
  } else {
    auto start = std::chrono::steady_clock::now();
    Status status = comm.AllReduceSum(data);
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(status.ok()) << "rank " << comm.rank();
    EXPECT_LT(waited, comm.options().timeout * 3);
    if (comm.rank() == partner) {
      EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status.ToString();
      const std::string& m = status.message();
      EXPECT_NE(m.find("allreduce #"), std::string::npos) << m;
      EXPECT_NE(m.find("step 0"), std::string::npos) << m;
      EXPECT_NE(m.find("rank " + std::to_string(silent) + " (world rank " +
                       std::to_string(comm.WorldRankOf(silent)) + ")"),
                std::string::npos)
          << m;
      EXPECT_NE(m.find(BackendName(comm.backend())), std::string::npos) << m;
    }
  }
}

}  // namespace lockstep::transport::testing
