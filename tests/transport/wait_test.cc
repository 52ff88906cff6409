// Waiting without spinning: the WakeSignal a local chip sleeps on, and the
// properties that let hundreds of chips share a few cores — a chip that
// waits uses no CPU, and wakes when its peer completes the op.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "lockstep/transport/communicator.h"
#include "lockstep/transport/local_fabric.h"
#include "lockstep/transport/rank_layout.h"
#include "wake_signal.h"

namespace lockstep::transport {
namespace {

using Clock = std::chrono::steady_clock;
using internal::WakeSignal;

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

TEST(WakeSignalTest, NotifyWithoutSleeperLeavesTheEpoch) {
  // Nobody announced: nothing to wake, the epoch stays (the cheap path).
  WakeSignal signal;
  const uint32_t epoch = signal.epoch();
  signal.Notify();
  EXPECT_EQ(signal.epoch(), epoch);
}

TEST(WakeSignalTest, NotifyAfterAnnounceEndsTheSleepAtOnce) {
  WakeSignal signal;
  WakeSignal::Sleeper sleeper(signal);
  // A completion between the waiter's announce and its sleep (the race the
  // protocol exists for): the sleep must not start.
  signal.Notify();
  const Clock::time_point start = Clock::now();
  sleeper.Sleep(start + std::chrono::seconds(30));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
}

TEST(WakeSignalTest, SleepEndsAtItsBoundWithoutNotify) {
  WakeSignal signal;
  const uint32_t epoch = signal.epoch();
  const Clock::time_point start = Clock::now();
  // A spurious wake-up may end a sleep early; the caller loops, as here.
  while (Clock::now() < start + std::chrono::milliseconds(50)) {
    WakeSignal::Sleeper sleeper(signal);
    sleeper.Sleep(start + std::chrono::milliseconds(50));
  }
  EXPECT_EQ(signal.epoch(), epoch);
}

TEST(WakeSignalTest, NotifyFromAnotherThreadWakesTheSleeper) {
  WakeSignal signal;
  std::atomic<bool> flag{false};
  const Clock::time_point start = Clock::now();
  std::thread waiter([&] {
    while (true) {
      WakeSignal::Sleeper sleeper(signal);
      if (flag.load()) break;  // the re-test after announcing
      sleeper.Sleep(start + std::chrono::seconds(60));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  flag = true;
  signal.Notify();
  waiter.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));
}

// A chip waiting 2 s for a message sleeps: its thread's CPU time stays far
// below what polling costs (even polling with sleeps doubling up to 1 ms,
// the mpi backend's way, took 23 ms of CPU here), and it still gets the data.
TEST(LocalWaitTest, WaitingChipUsesNoCpu) {
  CommOptions options;
  options.backend = BackendKind::kLocal;
  options.timeout = std::chrono::seconds(60);
  options.adaptive_polling = false;
  options.spin = std::chrono::microseconds(100);
  options.yield = std::chrono::microseconds(200);
  double waiter_cpu = -1;
  std::vector<Status> results = RunLocal(2, options, [&](Communicator& comm) -> Status {
    std::vector<float> buffer(1024, comm.rank() == 0 ? 7.0f : 0.0f);
    if (comm.rank() == 0) {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      LOCKSTEP_ASSIGN_OR_RETURN(SendStream out, comm.OpenSendStream(1, 3));
      LOCKSTEP_ASSIGN_OR_RETURN(Request sent, out.Send(std::span<const float>(buffer)));
      return sent.Wait();
    }
    LOCKSTEP_ASSIGN_OR_RETURN(RecvStream in, comm.OpenRecvStream(0, 3));
    LOCKSTEP_ASSIGN_OR_RETURN(Request received, in.Post(std::span<float>(buffer)));
    const double cpu0 = ThreadCpuSeconds();
    LOCKSTEP_RETURN_IF_ERROR(received.Wait());
    waiter_cpu = ThreadCpuSeconds() - cpu0;
    EXPECT_EQ(buffer[1023], 7.0f);
    return Status::Ok();
  });
  for (const Status& s : results) ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE(waiter_cpu, 0.0);
  EXPECT_LT(waiter_cpu, 0.010) << "the waiting chip polled instead of sleeping";
}

// 512 chips as tp 8 x pp 64 on this machine's few cores: a token goes down
// the pipeline and back 4 times, every stage's tp group allreducing it on
// the way (what a decode step does). Polling chips would take the cores
// from the one chip that has work; sleeping chips let it run.
TEST(LocalWaitTest, FiveHundredTwelveChipsMakeProgress) {
  constexpr int kTp = 8, kPp = 64, kRounds = 4;
  CommOptions options;
  options.backend = BackendKind::kLocal;
  options.timeout = std::chrono::seconds(120);
  std::vector<Status> results = RunLocal(kTp * kPp, options, [&](Communicator& world) -> Status {
    LOCKSTEP_ASSIGN_OR_RETURN(RankLayout layout, RankLayout::Create(kTp, kPp));
    LOCKSTEP_ASSIGN_OR_RETURN(Communicator tp, world.Split(layout.TpGroups(), "tp"));
    const int stage = layout.Stage(world.rank());
    const int tp_rank = layout.TpRank(world.rank());
    const int prev = layout.WorldRank((stage + kPp - 1) % kPp, tp_rank);
    const int next = layout.WorldRank((stage + 1) % kPp, tp_rank);
    LOCKSTEP_ASSIGN_OR_RETURN(RecvStream in, world.OpenRecvStream(prev, 1));
    LOCKSTEP_ASSIGN_OR_RETURN(SendStream out, world.OpenSendStream(next, 1));
    std::vector<float> x(64);
    for (int round = 0; round < kRounds; ++round) {
      if (stage == 0 && round == 0) {
        for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
      } else {
        LOCKSTEP_ASSIGN_OR_RETURN(Request r, in.Post(std::span<float>(x)));
        LOCKSTEP_RETURN_IF_ERROR(r.Wait());
      }
      // Each tp rank adds 1 to element 0: the sum adds kTp per stage.
      std::vector<float> part(x.size(), 0.0f);
      part[0] = x[0] / kTp + 1.0f;
      LOCKSTEP_RETURN_IF_ERROR(tp.AllReduceSum(part));
      x[0] = part[0];
      if (stage == 0 && round > 0 && x[0] != 1.0f * kTp * kPp * round + kTp) {
        return Internal("round {}: element 0 is {}", round, x[0]);
      }
      if (!(stage == kPp - 1 && round == kRounds - 1)) {
        LOCKSTEP_ASSIGN_OR_RETURN(Request s, out.Send(std::span<const float>(x)));
        LOCKSTEP_RETURN_IF_ERROR(s.Wait());
      }
    }
    return Status::Ok();
  });
  for (size_t r = 0; r < results.size(); ++r) {
    ASSERT_TRUE(results[r].ok()) << "chip " << r << ": " << results[r].ToString();
  }
}

}  // namespace
}  // namespace lockstep::transport
