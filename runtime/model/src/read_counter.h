// Measures the bytes the calling thread reads from the file system.
//
// Linux keeps, per thread, the number of bytes returned by read-family system
// calls (read, pread64, readv, preadv, ...): the `rchar` line of
// /proc/thread-self/io. ReadCounter samples it before and after a region of
// code; the difference is what that thread read, whether the bytes came from
// the page cache or from disk. HDF5's sec2 driver and the MPI-IO drivers of
// Open MPI (ROMIO, OMPIO) issue their reads on the calling thread, so around
// an HDF5 call this is what the driver asked the operating system for:
// metadata, whole chunks touched by a partial selection, and sieve-buffer
// over-reads included.
//
// Limits: memory-mapped I/O is not counted (HDF5 does not use it); reads by
// other threads are not counted (so concurrent unrelated reads on other
// threads do not pollute the figure); within a collective MPI-IO read, an
// aggregator rank counts the bytes it reads on behalf of others. Without
// /proc (non-Linux), available() is false and the counts stay zero.
#pragma once

#include <cstdint>

namespace lockstep::runtime {

class ReadCounter {
 public:
  // Adds the bytes read by this thread between construction and destruction
  // to *total.
  explicit ReadCounter(uint64_t* total);
  ~ReadCounter();
  ReadCounter(const ReadCounter&) = delete;
  ReadCounter& operator=(const ReadCounter&) = delete;

  static bool available();

 private:
  uint64_t* total_;
  bool ok_ = false;
  uint64_t start_ = 0;
};

}  // namespace lockstep::runtime
