#include "job_agreement.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>

#include "lockstep/base/check.h"
#include "lockstep/job/batch_job.h"

namespace lockstep::runtime {
namespace {

// Ranks listed by name in a message; more are counted ("... (40 ranks)").
constexpr int kListedRanks = 8;
// Distinct failure messages kept; failures beyond them are counted.
constexpr int kMessageGroups = 2;

// Ranks in increasing order, at most kListedRanks of them named.
struct RankSet {
  int32_t count = 0;
  int32_t ranks[kListedRanks] = {};

  void Add(const RankSet& upper) {
    for (int32_t i = 0; i < upper.count && i < kListedRanks; ++i) {
      if (count + i < kListedRanks) ranks[count + i] = upper.ranks[i];
    }
    count += upper.count;
  }
  // "rank 3", "ranks 3 and 5", "ranks 1, 2, ..., 8, ... (40 ranks)".
  std::string Text() const {
    std::string out = count == 1 ? "rank " : "ranks ";
    const int32_t named = std::min(count, kListedRanks);
    for (int32_t i = 0; i < named; ++i) {
      if (i > 0) out += i + 1 == named && count == named ? " and " : ", ";
      out += std::to_string(ranks[i]);
    }
    if (count > named) out += fmt::format(", ... ({} ranks)", count);
    return out;
  }
};

struct MessageGroup {
  int32_t code = 0;
  int32_t length = 0;
  RankSet ranks;
  char message[kAgreementMessageBytes] = {};

  bool Same(const MessageGroup& o) const {
    return code == o.code && length == o.length && std::memcmp(message, o.message, length) == 0;
  }
};

// The outcome of a phase over a block of consecutive ranks: the failure
// messages in order of their first rank, the ranks of each.
struct AgreementRecord {
  int32_t groups = 0;
  int32_t unlisted_failures = 0;  // failing ranks whose message found no free group
  MessageGroup group[kMessageGroups];
};

void CombineRecords(std::span<std::byte> lower_bytes, std::span<const std::byte> upper_bytes) {
  AgreementRecord lower;
  AgreementRecord upper;
  std::memcpy(&lower, lower_bytes.data(), sizeof lower);
  std::memcpy(&upper, upper_bytes.data(), sizeof upper);
  lower.unlisted_failures += upper.unlisted_failures;
  for (int32_t u = 0; u < upper.groups; ++u) {
    const MessageGroup& g = upper.group[u];
    int32_t l = 0;
    while (l < lower.groups && !lower.group[l].Same(g)) ++l;
    if (l < lower.groups) {
      lower.group[l].ranks.Add(g.ranks);
    } else if (lower.groups < kMessageGroups) {
      lower.group[lower.groups++] = g;
    } else {
      lower.unlisted_failures += g.ranks.count;
    }
  }
  std::memcpy(lower_bytes.data(), &lower, sizeof lower);
}

}  // namespace

Status Agree(transport::Communicator& world, const Status& mine) {
  // First the number of failing ranks (4 bytes a record); the messages only
  // when one failed, so that a job that starts well pays little per phase.
  int32_t failed = mine.ok() ? 0 : 1;
  LOCKSTEP_RETURN_IF_ERROR(
      world.AllReduce(std::as_writable_bytes(std::span<int32_t>(&failed, 1)),
                      [](std::span<std::byte> lower, std::span<const std::byte> upper) {
                        int32_t l = 0;
                        int32_t u = 0;
                        std::memcpy(&l, lower.data(), sizeof l);
                        std::memcpy(&u, upper.data(), sizeof u);
                        l += u;
                        std::memcpy(lower.data(), &l, sizeof l);
                      }));
  if (failed == 0) return Status::Ok();
  AgreementRecord record;
  if (!mine.ok()) {
    MessageGroup& g = record.group[0];
    record.groups = 1;
    g.code = static_cast<int32_t>(mine.code());
    const size_t length = std::min(mine.message().size(), kAgreementMessageBytes);
    g.length = static_cast<int32_t>(length);
    std::memcpy(g.message, mine.message().data(), length);
    g.ranks.count = 1;
    g.ranks.ranks[0] = world.rank();
  }
  LOCKSTEP_RETURN_IF_ERROR(world.AllReduce(
      std::as_writable_bytes(std::span<AgreementRecord>(&record, 1)), CombineRecords));
  if (record.groups == 0) return Status::Ok();
  std::string text;
  for (int32_t i = 0; i < std::clamp(record.groups, 0, kMessageGroups); ++i) {
    const MessageGroup& g = record.group[i];
    std::string message(
        g.message, static_cast<size_t>(std::clamp<int32_t>(g.length, 0, kAgreementMessageBytes)));
    if (!text.empty()) text += "; ";
    if (world.size() == 1) {
      text += message;
    } else {
      text += fmt::format("{}: {}", g.ranks.Text(), message);
    }
  }
  if (record.unlisted_failures > 0) {
    text += fmt::format("; {} more rank(s) failed with other errors", record.unlisted_failures);
  }
  return Status(static_cast<StatusCode>(record.group[0].code), text);
}

Status AgreeOnArguments(transport::Communicator& world, uint64_t fingerprint) {
  // Rank 0's fingerprint to everyone (a tree), then the ranks that differ,
  // reduced up a tree: no rank receives a record per rank.
  uint64_t leader = fingerprint;
  LOCKSTEP_RETURN_IF_ERROR(
      world.Broadcast(std::as_writable_bytes(std::span<uint64_t>(&leader, 1)), 0));
  RankSet differ;
  if (fingerprint != leader) {
    differ.count = 1;
    differ.ranks[0] = world.rank();
  }
  LOCKSTEP_RETURN_IF_ERROR(
      world.AllReduce(std::as_writable_bytes(std::span<RankSet>(&differ, 1)),
                      [](std::span<std::byte> lower, std::span<const std::byte> upper) {
                        RankSet l;
                        RankSet u;
                        std::memcpy(&l, lower.data(), sizeof l);
                        std::memcpy(&u, upper.data(), sizeof u);
                        l.Add(u);
                        std::memcpy(lower.data(), &l, sizeof l);
                      }));
  if (differ.count == 0) return Status::Ok();
  return InvalidArgument(
      "{} {} started with different arguments than rank 0; every rank of a job must run the same "
      "`lockstep run` command line (check the mpirun/srun command)",
      differ.Text(), differ.count == 1 ? "was" : "were");
}

Status ScatterBytes(transport::Communicator& world, int root,
                    const std::vector<std::vector<std::byte>>& parts,
                    std::vector<std::byte>* mine) {
  const int p = world.size();
  if (world.rank() == root) {
    LOCKSTEP_CHECK(static_cast<int>(parts.size()) == p, "{} parts for {} ranks", parts.size(), p);
    *mine = parts[static_cast<size_t>(root)];
    // Every send posted at once: one step for the root, one message pair per
    // rank.
    std::vector<uint64_t> sizes(static_cast<size_t>(p));
    std::vector<transport::SendStream> streams;
    std::vector<transport::Request> requests;
    for (int r = 0; r < p; ++r) {
      if (r == root) continue;
      sizes[static_cast<size_t>(r)] = parts[static_cast<size_t>(r)].size();
      LOCKSTEP_ASSIGN_OR_RETURN(transport::SendStream s, world.OpenSendStream(r, kScatterStream));
      LOCKSTEP_ASSIGN_OR_RETURN(
          transport::Request size_sent,
          s.Send(std::span<const uint64_t>(&sizes[static_cast<size_t>(r)], 1)));
      requests.push_back(std::move(size_sent));
      LOCKSTEP_ASSIGN_OR_RETURN(transport::Request sent,
                                s.Send(std::span<const std::byte>(parts[static_cast<size_t>(r)])));
      requests.push_back(std::move(sent));
      streams.push_back(std::move(s));
    }
    for (transport::Request& request : requests) LOCKSTEP_RETURN_IF_ERROR(request.Wait());
    return Status::Ok();
  }
  LOCKSTEP_ASSIGN_OR_RETURN(transport::RecvStream s, world.OpenRecvStream(root, kScatterStream));
  uint64_t size = 0;
  LOCKSTEP_ASSIGN_OR_RETURN(transport::Request size_received,
                            s.Post(std::span<uint64_t>(&size, 1)));
  LOCKSTEP_RETURN_IF_ERROR(size_received.Wait());
  mine->resize(static_cast<size_t>(size));
  LOCKSTEP_ASSIGN_OR_RETURN(transport::Request received, s.Post(std::span<std::byte>(*mine)));
  return received.Wait();
}

Status AgreeOnModelFile(transport::Communicator& world, std::string_view path,
                        std::string_view identity) {
  // Rank 0's identity to everyone (a tree), then the ranks whose file
  // differs, with the first one's identity, reduced up a tree.
  struct Identity {
    char text[96] = {};
  };
  struct Differ {
    RankSet ranks;
    Identity first;  // the identity of ranks.ranks[0]
  };
  Identity mine;
  std::memcpy(mine.text, identity.data(), std::min(identity.size(), sizeof(mine.text) - 1));
  Identity leader = mine;
  LOCKSTEP_RETURN_IF_ERROR(
      world.Broadcast(std::as_writable_bytes(std::span<Identity>(&leader, 1)), 0));
  Differ differ;
  if (std::strncmp(mine.text, leader.text, sizeof(Identity::text)) != 0) {
    differ.ranks.count = 1;
    differ.ranks.ranks[0] = world.rank();
    differ.first = mine;
  }
  LOCKSTEP_RETURN_IF_ERROR(world.AllReduce(
      std::as_writable_bytes(std::span<Differ>(&differ, 1)),
      [](std::span<std::byte> lower, std::span<const std::byte> upper) {
        Differ l;
        Differ u;
        std::memcpy(&l, lower.data(), sizeof l);
        std::memcpy(&u, upper.data(), sizeof u);
        if (l.ranks.count == 0) l.first = u.first;
        l.ranks.Add(u.ranks);
        std::memcpy(lower.data(), &l, sizeof l);
      }));
  if (differ.ranks.count == 0) return Status::Ok();
  auto shown = [](const Identity& r) {
    std::string text(r.text, strnlen(r.text, sizeof(r.text)));
    return text.find(':') == std::string::npos ? "manifest_sha256 " + text.substr(0, 16) + "..."
                                               : text;
  };
  return FailedPrecondition(
      "{} opened a different model file than rank 0 at {} ({} on rank 0, {} on rank {}): every "
      "rank must read the same file (copy it again, or put it on a shared file system)",
      differ.ranks.Text(), path, shown(leader), shown(differ.first), differ.ranks.ranks[0]);
}

uint64_t ArgumentsFingerprint(const std::vector<std::string_view>& arguments) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::string_view a : arguments) {
    for (char c : a) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ull;
    }
    h ^= 0;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace lockstep::runtime
