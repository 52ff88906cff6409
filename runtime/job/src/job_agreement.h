// Start-up agreement of a distributed job: every rank learns whether every
// other rank succeeded, so that a failure on one rank ends the job on all
// of them with one clear message and no hang (docs/architecture.md, "Errors").
//
// Each start-up phase ends with Agree(world, my_status): a reduction of the
// number of failing ranks up a binomial tree and its broadcast back (2
// log2(p) steps, 4-byte records; no rank receives a record per rank); when a
// rank failed, a second such reduction of a fixed-size record: the first two distinct
// failure messages (the first kAgreementMessageBytes bytes of each), in
// order of their lowest rank, each with its first 8 ranks and a count of
// the rest; further distinct failures are counted. If any rank failed,
// every rank gets the same non-OK Status naming the failing rank(s), e.g.
//   "rank 3: model.h5: no such file (each rank opens the model file itself:
//    check that it exists on every node)".
// Only the leader prints it; every rank returns it (exit code 1).
//
// Thread safety: like the communicator (one thread at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"
#include "lockstep/transport/communicator.h"

namespace lockstep::runtime {

inline constexpr size_t kAgreementMessageBytes = 480;

// Collective over `world`. Returns OK only when every rank's `mine` is OK.
Status Agree(transport::Communicator& world, const Status& mine);

// Collective: checks that every rank was started with the same arguments
// (their `fingerprint`, a hash of the command line). The error names the
// ranks whose fingerprint differs from rank 0's.
Status AgreeOnArguments(transport::Communicator& world, uint64_t fingerprint);

// Collective: checks that every rank opened the same model file: the same
// manifest_sha256 (docs/model-format.md, "Checksums"), or for a file without
// checksums the same size. The error names the ranks whose file differs
// from rank 0's. Tree collectives, as Agree.
Status AgreeOnModelFile(transport::Communicator& world, std::string_view path,
                        std::string_view identity);

// The stream id ScatterBytes uses (distinct from the pipeline's, 1..4).
inline constexpr uint32_t kScatterStream = 8;

// Collective: rank `root` sends parts[r] (any size; the size travels first)
// to every rank r, which receives it in *mine (the root copies its own).
// Each rank receives its part only; the root posts its p - 1 sends at once
// (its outgoing bytes are the sum of the parts, as in any scatter).
// `parts` is read on the root only (size() == world.size()).
Status ScatterBytes(transport::Communicator& world, int root,
                    const std::vector<std::vector<std::byte>>& parts, std::vector<std::byte>* mine);

}  // namespace lockstep::runtime
