// The GoogleTest main for multi-rank tests (tests/mpi_gtest_main.cc), in the
// spirit of LLNL's gtest-mpi-listener:
//   - it owns MPI: an MpiSession is created before the tests and finalized
//     after them;
//   - rank 0 prints GoogleTest's usual output; every other rank prints only
//     its failures, each line prefixed "[rank N]", so no failure is lost;
//   - every rank exits with the same code: non-zero if any rank failed;
//   - a test that fails on some ranks only is reported once per failing rank.
// Link the target lockstep_mpi_gtest_main instead of GTest::gtest_main.
//
// Tests reach the session and their own command-line flags (given after the
// gtest flags, e.g. `transport_mpi_test --transport=ucx`) through the
// functions below.
#pragma once

#include <string>
#include <string_view>

#include "lockstep/transport/mpi_session.h"

namespace lockstep::testing {

// The session of this test process.
const transport::MpiSession& TestSession();

// The value of "--<name>=<value>" on the command line, or `fallback`.
std::string TestFlag(std::string_view name, std::string_view fallback);

}  // namespace lockstep::testing
