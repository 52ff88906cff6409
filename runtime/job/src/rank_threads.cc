#include "rank_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "lockstep/base/check.h"

namespace lockstep::runtime {

int RankCpus::Count() const {
  int n = 0;
  for (uint64_t word : mask) n += std::popcount(word);
  return n;
}

RankCpus OwnCpus() {
  RankCpus cpus;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) name[0] = '\0';
  uint64_t hash = 1469598103934665603ull;  // FNV-1a 64
  for (char c : std::string_view(name)) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  cpus.host = hash;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int limit = static_cast<int>(cpus.mask.size() * 64);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < std::min(limit, CPU_SETSIZE); ++c) {
      if (CPU_ISSET(c, &set)) cpus.mask[c / 64] |= uint64_t{1} << (c % 64);
    }
  }
  if (cpus.Count() == 0) {
    const long online = std::clamp<long>(sysconf(_SC_NPROCESSORS_ONLN), 1, limit);
    for (int c = 0; c < online; ++c) cpus.mask[c / 64] |= uint64_t{1} << (c % 64);
  }
  return cpus;
}

int ThreadsForRank(const std::vector<RankCpus>& ranks, int rank) {
  const RankCpus& mine = ranks[static_cast<size_t>(rank)];
  const int sharing = static_cast<int>(std::count(ranks.begin(), ranks.end(), mine));
  return std::max(1, mine.Count() / std::max(1, sharing));
}

namespace {

bool KeyLess(const RankCpus& a, const RankCpus& b) {
  if (a.host != b.host) return a.host < b.host;
  return a.mask < b.mask;
}

struct KeyCount {
  RankCpus key;
  int32_t count = 0;
  int32_t unused = 0;  // no padding bytes on the wire
};

// The smallest `capacity` (<= kSharingKeys) keys of a block of ranks with the number of the
// block's ranks holding each, and whether the block had more keys. Merging
// keeps the smallest keys of the union, so the kept counts are exact: a key
// among the smallest of the whole world is among the smallest of every block
// that holds it, and no block dropped any of its ranks.
struct SharingRecord {
  int32_t keys = 0;
  int32_t overflow = 0;  // 1: the block held more than `capacity` keys
  KeyCount entry[kSharingKeys];
};
static_assert(sizeof(SharingRecord) == kSharingRecordBytes);

void CombineSharing(std::span<std::byte> lower_bytes, std::span<const std::byte> upper_bytes,
                    int32_t capacity) {
  SharingRecord lower;
  SharingRecord upper;
  std::memcpy(&lower, lower_bytes.data(), sizeof lower);
  std::memcpy(&upper, upper_bytes.data(), sizeof upper);
  SharingRecord out;
  out.overflow = lower.overflow | upper.overflow;
  const int32_t nl = std::clamp(lower.keys, 0, kSharingKeys);
  const int32_t nu = std::clamp(upper.keys, 0, kSharingKeys);
  int32_t l = 0;
  int32_t u = 0;
  while (l < nl || u < nu) {
    KeyCount next;
    if (u == nu || (l < nl && KeyLess(lower.entry[l].key, upper.entry[u].key))) {
      next = lower.entry[l++];
    } else if (l == nl || KeyLess(upper.entry[u].key, lower.entry[l].key)) {
      next = upper.entry[u++];
    } else {  // the same key on both sides
      next = lower.entry[l++];
      next.count += upper.entry[u++].count;
    }
    if (out.keys == capacity) {
      out.overflow = 1;
      break;
    }
    out.entry[out.keys++] = next;
  }
  std::memcpy(lower_bytes.data(), &out, sizeof out);
}

// A key's home: a hash of it modulo the butterfly's power of two.
uint64_t KeyHash(const RankCpus& key) {
  uint64_t h = key.host ^ 0x9e3779b97f4a7c15ull;
  for (uint64_t word : key.mask) h = (h ^ word) * 0x100000001b3ull + 0x632be59bd9b4e019ull;
  h ^= h >> 31;  // splitmix64's finisher: every bit of the key moves the low bits
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 29;
  return h;
}

using KeyCounts = std::map<RankCpus, int32_t, decltype(&KeyLess)>;

// Sends `out` to member `peer` and receives its list (a 4-byte size, then
// the entries when there are any), on stream kSharingStream.
Result<std::vector<KeyCount>> ExchangeKeys(transport::Communicator& world, int peer,
                                           const std::vector<KeyCount>& out) {
  LOCKSTEP_ASSIGN_OR_RETURN(transport::SendStream send, world.OpenSendStream(peer, kSharingStream));
  LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream recv, world.OpenRecvStream(peer, kSharingStream));
  const int32_t n_out = static_cast<int32_t>(out.size());
  std::vector<transport::Request> sent;
  LOCKSTEP_ASSIGN_OR_RETURN(transport::Request header,
                            send.Send(std::span<const int32_t>(&n_out, 1)));
  sent.push_back(std::move(header));
  if (n_out > 0) {
    LOCKSTEP_ASSIGN_OR_RETURN(transport::Request body, send.Send(std::span<const KeyCount>(out)));
    sent.push_back(std::move(body));
  }
  int32_t n_in = 0;
  LOCKSTEP_ASSIGN_OR_RETURN(transport::Request size, recv.Post(std::span<int32_t>(&n_in, 1)));
  LOCKSTEP_RETURN_IF_ERROR(size.Wait());
  if (n_in < 0 || n_in > world.size()) {
    return Internal("--threads auto: rank {} announced {} CPU keys (at most {})",
                    world.WorldRankOf(peer), n_in, world.size());
  }
  std::vector<KeyCount> in(static_cast<size_t>(n_in));
  if (n_in > 0) {
    LOCKSTEP_ASSIGN_OR_RETURN(transport::Request body, recv.Post(std::span<KeyCount>(in)));
    LOCKSTEP_RETURN_IF_ERROR(body.Wait());
  }
  for (transport::Request& r : sent) LOCKSTEP_RETURN_IF_ERROR(r.Wait());
  return in;
}

// Sends `out` to member `peer` and receives `in` (both sizes known to both
// sides; an empty side sends or posts nothing).
Status ExchangeCounts(transport::Communicator& world, int peer, const std::vector<int32_t>& out,
                      std::vector<int32_t>* in) {
  std::optional<transport::SendStream> send;
  std::optional<transport::Request> sent;
  if (!out.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(send, world.OpenSendStream(peer, kSharingStream));
    LOCKSTEP_ASSIGN_OR_RETURN(sent, send->Send(std::span<const int32_t>(out)));
  }
  if (!in->empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream recv,
                              world.OpenRecvStream(peer, kSharingStream));
    LOCKSTEP_ASSIGN_OR_RETURN(transport::Request received, recv.Post(std::span<int32_t>(*in)));
    LOCKSTEP_RETURN_IF_ERROR(received.Wait());
  }
  return sent ? sent->Wait() : Status::Ok();
}

// The count of `mine` (when `has_key`) over every rank's key, each key sent
// to its home rank along a butterfly and the totals sent back the same way
// (see the header). Collective.
Result<int32_t> RouteKeys(transport::Communicator& world, const RankCpus& mine, bool has_key) {
  const int p = world.size();
  const int r = world.rank();
  const int P = static_cast<int>(std::bit_floor(static_cast<unsigned>(p)));
  const auto home = [&](const RankCpus& key) { return static_cast<int>(KeyHash(key) & (P - 1)); };
  KeyCounts held(&KeyLess);
  if (has_key) held[mine] = 1;
  const auto entries = [](const KeyCounts& counts) {
    std::vector<KeyCount> out;
    for (const auto& [key, count] : counts) out.push_back({key, count, 0});
    return out;
  };
  // Ranks P..p-1 hand their key to rank r - P and get its total back.
  if (r >= P) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<KeyCount> none,
                              ExchangeKeys(world, r - P, entries(held)));
    std::vector<int32_t> total(held.size());
    LOCKSTEP_RETURN_IF_ERROR(ExchangeCounts(world, r - P, {}, &total));
    return has_key ? total[0] : 1;
  }
  std::vector<KeyCount> folded;
  if (r + P < p) {
    LOCKSTEP_ASSIGN_OR_RETURN(folded, ExchangeKeys(world, r + P, {}));
    for (const KeyCount& e : folded) held[e.key] += e.count;
  }
  // Forward: at round j the keys whose home differs from this rank in bit j
  // go to the partner across bit j, so every key ends at its home with the
  // sum of its counts.
  int rounds = 0;
  while ((1 << rounds) < P) ++rounds;
  std::vector<std::vector<RankCpus>> sent(static_cast<size_t>(rounds));
  std::vector<std::vector<RankCpus>> received(static_cast<size_t>(rounds));
  for (int j = 0; j < rounds; ++j) {
    const int partner = r ^ (1 << j);
    KeyCounts out(&KeyLess);
    for (auto it = held.begin(); it != held.end();) {
      if (((home(it->first) ^ r) >> j & 1) != 0) {
        out.insert(*it);
        sent[static_cast<size_t>(j)].push_back(it->first);
        it = held.erase(it);
      } else {
        ++it;
      }
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<KeyCount> in, ExchangeKeys(world, partner, entries(out)));
    for (const KeyCount& e : in) {
      received[static_cast<size_t>(j)].push_back(e.key);
      held[e.key] += e.count;
    }
  }
  KeyCounts total = held;  // the keys whose home this rank is, complete
  // A key this rank forwarded or received has its total by the time it is
  // asked for (the back pass runs the rounds in reverse): an invariant.
  const auto total_of = [&](const RankCpus& key) {
    const auto it = total.find(key);
    LOCKSTEP_CHECK(it != total.end(), "--threads auto: rank {} lost the count of a CPU key", r);
    return it->second;
  };
  // Back: each rank returns the totals of the keys it received, in the order
  // it received them.
  for (int j = rounds - 1; j >= 0; --j) {
    const int partner = r ^ (1 << j);
    std::vector<int32_t> out;
    for (const RankCpus& key : received[static_cast<size_t>(j)]) out.push_back(total_of(key));
    std::vector<int32_t> in(sent[static_cast<size_t>(j)].size());
    LOCKSTEP_RETURN_IF_ERROR(ExchangeCounts(world, partner, out, &in));
    for (size_t i = 0; i < in.size(); ++i) total[sent[static_cast<size_t>(j)][i]] = in[i];
  }
  if (r + P < p) {
    std::vector<int32_t> out;
    for (const KeyCount& e : folded) out.push_back(total_of(e.key));
    std::vector<int32_t> none;
    LOCKSTEP_RETURN_IF_ERROR(ExchangeCounts(world, r + P, out, &none));
  }
  if (!has_key) return 1;
  const auto it = total.find(mine);
  if (it == total.end())
    return Internal("--threads auto: rank {}'s CPU key came back without its count", r);
  return it->second;
}

}  // namespace

Result<SharingCount> CountSharing(transport::Communicator& world, const RankCpus& mine,
                                  int capacity) {
  LOCKSTEP_CHECK(capacity >= 1 && capacity <= kSharingKeys, "capacity {}", capacity);
  SharingCount result;
  // One CPU (or none): one thread, however many ranks share it.
  const bool has_key = mine.Count() > 1;
  SharingRecord record;
  if (has_key) {
    record.keys = 1;
    record.entry[0].key = mine;
    record.entry[0].count = 1;
  }
  LOCKSTEP_RETURN_IF_ERROR(
      world.AllReduce(std::as_writable_bytes(std::span<SharingRecord>(&record, 1)),
                      [capacity](std::span<std::byte> lower, std::span<const std::byte> upper) {
                        CombineSharing(lower, upper, capacity);
                      }));
  bool found = false;
  for (int32_t i = 0; has_key && i < std::clamp(record.keys, 0, kSharingKeys); ++i) {
    if (record.entry[i].key == mine) {
      result.sharing = record.entry[i].count;
      found = true;
      break;
    }
  }
  // More keys than a record holds (every rank sees the same flag): the
  // ranks whose key did not fit count it along the butterfly.
  if (record.overflow != 0) {
    result.routed = true;
    LOCKSTEP_ASSIGN_OR_RETURN(int32_t routed, RouteKeys(world, mine, has_key && !found));
    if (has_key && !found) result.sharing = routed;
  } else {
    LOCKSTEP_CHECK(found || !has_key, "rank {}: its CPUs are missing from a complete count",
                   world.rank());
  }
  result.threads = std::max(1, mine.Count() / std::max(1, result.sharing));
  return result;
}

Result<int> AutoThreads(transport::Communicator& world) {
  LOCKSTEP_ASSIGN_OR_RETURN(SharingCount count, CountSharing(world, OwnCpus()));
  return count.threads;
}

}  // namespace lockstep::runtime
