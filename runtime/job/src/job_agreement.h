// Start-up agreement of a distributed job: every rank learns whether every
// other rank succeeded, so that a failure on one rank ends the job on all
// of them with one clear message and no hang (docs/architecture.md, "Errors").
//
// Each start-up phase ends with Agree(world, my_status): an allgather of a
// fixed-size record (status code and the first kMessageBytes bytes of the
// message) from every rank. If any rank failed, every rank gets the same
// non-OK Status naming the failing rank(s), e.g.
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
// from rank 0's.
Status AgreeOnModelFile(transport::Communicator& world, std::string_view path,
                        std::string_view identity);

// Collective: `data` of rank `root` copied to every rank (any size; the size
// travels first).
Status BroadcastBytes(transport::Communicator& world, int root, std::vector<std::byte>* data);

}  // namespace lockstep::runtime
