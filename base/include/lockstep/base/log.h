// Rank-aware logging.
//
// Every line carries a "host:pid:rank" prefix so that the interleaved stderr
// of an mpirun job can be untangled, a level and the component that wrote it:
//
//   [12:00:01.123] node7:41235:3 W transport: peer 2 slow to answer (1.2 s)
//
// The level and a component filter come from the environment variable
// LOCKSTEP_LOG (read once by InitLogging):
//   LOCKSTEP_LOG=debug                 every component at debug
//   LOCKSTEP_LOG=info,transport=trace  info everywhere, trace for transport
// The default is "info". Banners and progress meant for people are written by
// rank 0 only (see IsRankZero()).
//
// Thread safety: all functions may be called from any thread. The logging
// state is process-wide by nature (stderr is), and is the one global the
// project keeps.
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace lockstep {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// Reads LOCKSTEP_LOG. Safe to call more than once.
void InitLogging();

// Sets the rank shown in the prefix (-1 shows "-": before MPI is up).
void SetLogRank(int rank);
int LogRank();
inline bool IsRankZero() { return LogRank() <= 0; }

bool LogEnabled(std::string_view component, LogLevel level);
void LogWrite(std::string_view component, LogLevel level, std::string_view message);

template <typename... Args>
void Log(std::string_view component, LogLevel level, fmt::format_string<Args...> format,
         Args&&... args) {
  if (!LogEnabled(component, level)) return;
  LogWrite(component, level, fmt::format(format, std::forward<Args>(args)...));
}

// "host:pid:rank", as used in the prefix and in error messages.
std::string_view LogIdentity();

}  // namespace lockstep

#define LOCKSTEP_LOG_TRACE(component, ...) ::lockstep::Log(component, ::lockstep::LogLevel::kTrace, __VA_ARGS__)
#define LOCKSTEP_LOG_DEBUG(component, ...) ::lockstep::Log(component, ::lockstep::LogLevel::kDebug, __VA_ARGS__)
#define LOCKSTEP_LOG_INFO(component, ...) ::lockstep::Log(component, ::lockstep::LogLevel::kInfo, __VA_ARGS__)
#define LOCKSTEP_LOG_WARN(component, ...) ::lockstep::Log(component, ::lockstep::LogLevel::kWarn, __VA_ARGS__)
#define LOCKSTEP_LOG_ERROR(component, ...) ::lockstep::Log(component, ::lockstep::LogLevel::kError, __VA_ARGS__)
