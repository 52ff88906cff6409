// Ordered tensor streams between two chips (pipeline stages).
//
// A stream is a one-way, ordered channel of messages from one rank to one
// other rank, named by a stream id the two sides agree on before the run (the
// plan's schedule). Message i on a stream has sequence number i (0, 1, 2...);
// its identity on the wire is (sender, receiver, stream id, sequence). There
// is no wildcard matching: a receive names its sender and stream, and is
// normally posted before the data arrives (pre-posted), straight into the
// buffer the receiving stage will read.
//
//   // stage s (sender)                      // stage s+1 (receiver)
//   auto out = comm.OpenSendStream(next, 1); auto in = comm.OpenRecvStream(prev, 1);
//                                            Request r0 = in->Post(buf0);   // seq 0
//                                            Request r1 = in->Post(buf1);   // seq 1
//   Request s0 = out->Send(act0);  // seq 0   ...compute...
//   ...compute the next micro-batch...       r0.Wait();  // buf0 holds act0, bit for bit
//   s0.Wait();                     // act0 may be reused
//
// Rules:
// - Message sizes are part of the schedule: a received message must have
//   exactly the posted buffer's size, otherwise the receive fails with
//   InvalidArgument naming the stream, sequence and both sizes.
// - Any number of sends and posts may be outstanding; completion order
//   follows sequence order per stream. Up to 65536 messages may be in flight
//   on one stream.
// - Stream ids are in [0, kMaxStreamId]. A (sender, receiver, stream id)
//   triple must have at most one open SendStream and one open RecvStream at
//   a time, across all communicators of the world (streams are identified by
//   world ranks underneath).
// - Streams carry raw bytes: pipeline activations pass bit for bit.
//
// Thread safety: a stream is used by one thread at a time (like its
// Communicator). Lifetime: a stream and its Requests must not outlive the
// Communicator that opened it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "lockstep/base/status.h"
#include "lockstep/transport/request.h"

namespace lockstep::transport {

inline constexpr uint32_t kMaxStreamId = 63;

class SendStream {
 public:
  SendStream(SendStream&&) noexcept = default;
  SendStream& operator=(SendStream&&) noexcept = default;

  // Starts sending `data` as the next message (sequence next_sequence()).
  // `data` must stay valid and unchanged until the Request completes.
  Result<Request> Send(std::span<const std::byte> data);
  template <typename T>
  Result<Request> Send(std::span<const T> data) {
    return Send(std::as_bytes(data));
  }

  int peer() const { return peer_; }
  uint32_t stream_id() const { return stream_id_; }
  uint64_t next_sequence() const { return next_sequence_; }

 private:
  friend class Communicator;
  SendStream(const internal::World* world, int peer, int peer_world, uint32_t stream_id)
      : world_(world), peer_(peer), peer_world_(peer_world), stream_id_(stream_id) {}
  const internal::World* world_;
  int peer_;
  int peer_world_;
  uint32_t stream_id_;
  uint64_t next_sequence_ = 0;
};

class RecvStream {
 public:
  RecvStream(RecvStream&&) noexcept = default;
  RecvStream& operator=(RecvStream&&) noexcept = default;

  // Posts the receive of the next message (sequence next_sequence()) into
  // `buffer`, which must stay valid and unread until the Request completes.
  Result<Request> Post(std::span<std::byte> buffer);
  template <typename T>
  Result<Request> Post(std::span<T> buffer) {
    return Post(std::as_writable_bytes(buffer));
  }

  int peer() const { return peer_; }
  uint32_t stream_id() const { return stream_id_; }
  uint64_t next_sequence() const { return next_sequence_; }

 private:
  friend class Communicator;
  RecvStream(const internal::World* world, int peer, int peer_world, uint32_t stream_id)
      : world_(world), peer_(peer), peer_world_(peer_world), stream_id_(stream_id) {}
  const internal::World* world_;
  int peer_;
  int peer_world_;
  uint32_t stream_id_;
  uint64_t next_sequence_ = 0;
};

}  // namespace lockstep::transport
