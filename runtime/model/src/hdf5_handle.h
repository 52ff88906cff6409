// RAII ownership of HDF5 identifiers, and the process-wide HDF5 lock.
//
// Every hid_t that lockstep opens is held by an Hdf5Handle, which closes it
// with the matching H5*close when it goes out of scope. Handles are move-only.
//
// Debian's parallel HDF5 is built without thread safety, so every HDF5 call
// of the process (including the closes done by these handles) must happen
// under the one recursive mutex returned by Hdf5Mutex(). The model-file code
// takes Hdf5Lock at each public entry point; the lock is recursive so that a
// handle closed inside a locked region does not deadlock.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <utility>

namespace lockstep::runtime {

std::recursive_mutex& Hdf5Mutex();

class Hdf5Lock {
 public:
  Hdf5Lock() : lock_(Hdf5Mutex()) {}

 private:
  std::lock_guard<std::recursive_mutex> lock_;
};

template <herr_t (*CloseFn)(hid_t)>
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  explicit Hdf5Handle(hid_t id) : id_(id) {}
  ~Hdf5Handle() { Reset(); }
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept {
    if (this != &other) {
      Reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;

  // A negative id (what HDF5 returns on failure) makes an invalid handle.
  bool valid() const { return id_ >= 0; }
  hid_t get() const { return id_; }

  // Gives up ownership without closing.
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }

  void Reset() {
    if (id_ >= 0) {
      Hdf5Lock lock;
      CloseFn(id_);  // a failed close leaves nothing to recover
      id_ = H5I_INVALID_HID;
    }
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using H5File = Hdf5Handle<H5Fclose>;
using H5Group = Hdf5Handle<H5Gclose>;
using H5Dataset = Hdf5Handle<H5Dclose>;
using H5Dataspace = Hdf5Handle<H5Sclose>;
using H5Datatype = Hdf5Handle<H5Tclose>;  // only for types we own (H5Tcopy, H5Dget_type, ...)
using H5Attribute = Hdf5Handle<H5Aclose>;
using H5PropertyList = Hdf5Handle<H5Pclose>;

}  // namespace lockstep::runtime
