// Bounds on numeric flags, taken from the machine where they depend on it,
// and the one-line messages of a bad command line (docs/reliability.md,
// "Command line"). A flag outside its bounds is refused before anything
// starts (exit 2) instead of starting 100,000 threads or allocating a
// terabyte.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::launch {

// What this process may use: the CPUs of its affinity mask (what Slurm's
// cpuset or mpirun's binding leaves it) and the machine's physical memory.
struct Machine {
  int cpus = 1;
  uint64_t memory_bytes = 0;
};
const Machine& ThisMachine();

// Upper bounds of `lockstep run`'s flags.
int64_t MaxThreads();        // 4 x cpus: more compute threads than that only contend
int64_t MaxLocalChips();     // 1 per 16 MiB of memory, 16 to 4096: local chips are threads that block
int64_t MaxKvCacheMiB();     // the machine's memory
inline constexpr int64_t kMaxBatch = 4096;       // KV cache slots; requests in flight
inline constexpr int64_t kMaxStepTokens = 65536;  // scratch buffers scale with it
inline constexpr int64_t kMaxSplit = 4096;        // --tp, --pp, --micro-batches

// A validator for a whole-number flag in [min, max]; `why` says where max
// comes from ("4 x the 2 CPUs this process may use"). Its message, in plain
// words: "must be a whole number from 1 to 8 (4 x the 2 CPUs this process
// may use), got 100000" -- also for "abc", "1.5" or "1e3".
CLI::Validator WholeNumber(int64_t min, int64_t max, std::string why = "");

// The one line of a command line CLI11 refused, for "lockstep: error: ...".
std::string ParseErrorLine(const CLI::ParseError& error);

// Unknown subcommands and flags, found before CLI11 parses (so that the
// message can suggest the nearest valid name): "unknown command 'rnu'; did
// you mean 'run'?", "unknown flag '--thraeds' for `lockstep run`; did you
// mean '--threads'?". Empty when every name is known.
std::string UnknownNames(const CLI::App& app, int argc, const char* const* argv);

}  // namespace lockstep::launch
