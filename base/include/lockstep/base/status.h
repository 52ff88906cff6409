// Status and Result<T>: errors as values at component boundaries.
//
// Every function that can fail because of its input, the file system or a peer
// returns a Status (or a Result<T>, which holds either a T or a non-OK Status).
// The message is written for the person running the job: it names the file,
// field, line, tensor or rank involved and, where it helps, what to do.
// Broken internal invariants are not Statuses; they use LOCKSTEP_CHECK
// (check.h) and abort.
//
// Thread safety: values, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace lockstep {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,    // bad flag, request, config or plan
  kNotFound,           // missing file, tensor, attribute or id
  kDataLoss,           // truncated or corrupt file
  kIo,                 // an operating-system or library I/O failure
  kOutOfRange,         // token id or length outside what the model allows
  kResourceExhausted,  // does not fit in memory / KV cache
  kUnavailable,        // a peer stopped answering
  kDeadlineExceeded,   // a wait ran past its deadline
  kFailedPrecondition, // ranks disagree, wrong state
  kInternal,
  kUnimplemented,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid argument: <message>" (or "ok").
  std::string ToString() const;

  // Returns a copy with "<context>: " put in front of the message.
  Status WithContext(std::string_view context) const;

  // Explicitly ignore (for best-effort cleanup paths).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Constructors with fmt-style formatting, e.g.
//   return InvalidArgument("{}:{}: field 'max_tokens' must be positive", path, line);
#define LOCKSTEP_DEFINE_STATUS_CTOR(Name, Code)                                   \
  template <typename... Args>                                                     \
  Status Name(fmt::format_string<Args...> format, Args&&... args) {               \
    return Status(StatusCode::Code, fmt::format(format, std::forward<Args>(args)...)); \
  }
LOCKSTEP_DEFINE_STATUS_CTOR(InvalidArgument, kInvalidArgument)
LOCKSTEP_DEFINE_STATUS_CTOR(NotFound, kNotFound)
LOCKSTEP_DEFINE_STATUS_CTOR(DataLoss, kDataLoss)
LOCKSTEP_DEFINE_STATUS_CTOR(IoError, kIo)
LOCKSTEP_DEFINE_STATUS_CTOR(OutOfRange, kOutOfRange)
LOCKSTEP_DEFINE_STATUS_CTOR(ResourceExhausted, kResourceExhausted)
LOCKSTEP_DEFINE_STATUS_CTOR(Unavailable, kUnavailable)
LOCKSTEP_DEFINE_STATUS_CTOR(DeadlineExceeded, kDeadlineExceeded)
LOCKSTEP_DEFINE_STATUS_CTOR(FailedPrecondition, kFailedPrecondition)
LOCKSTEP_DEFINE_STATUS_CTOR(Internal, kInternal)
LOCKSTEP_DEFINE_STATUS_CTOR(Unimplemented, kUnimplemented)
#undef LOCKSTEP_DEFINE_STATUS_CTOR

// Result<T>: a T or a non-OK Status. (std::expected is C++23.)
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result constructed from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace lockstep

#define LOCKSTEP_STATUS_CONCAT_INNER(a, b) a##b
#define LOCKSTEP_STATUS_CONCAT(a, b) LOCKSTEP_STATUS_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define LOCKSTEP_RETURN_IF_ERROR(expr)               \
  do {                                               \
    ::lockstep::Status _lockstep_status = (expr);    \
    if (!_lockstep_status.ok()) return _lockstep_status; \
  } while (0)

// LOCKSTEP_ASSIGN_OR_RETURN(auto x, Foo()) : declares x from a Result, or
// returns its Status.
#define LOCKSTEP_ASSIGN_OR_RETURN(lhs, expr) \
  LOCKSTEP_ASSIGN_OR_RETURN_IMPL(LOCKSTEP_STATUS_CONCAT(_lockstep_result_, __LINE__), lhs, expr)
#define LOCKSTEP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
