#include "hdf5_handle.h"

namespace lockstep::runtime {

std::recursive_mutex& Hdf5Mutex() {
  // The HDF5 library is process-global state; so is the lock that guards it.
  static std::recursive_mutex* mutex = new std::recursive_mutex;
  return *mutex;
}

}  // namespace lockstep::runtime
