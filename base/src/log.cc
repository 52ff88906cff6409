#include "lockstep/base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <string>

namespace lockstep {
namespace {

// Process-wide logging state (see log.h for why this one global exists).
struct LogState {
  std::mutex mutex;
  LogLevel default_level = LogLevel::kInfo;
  std::map<std::string, LogLevel, std::less<>> component_levels;
  std::atomic<int> rank{-1};
  std::string identity;
  std::string host;
};

LogState& State() {
  static LogState* state = new LogState();  // never destroyed: usable during exit
  return *state;
}

bool ParseLevel(std::string_view s, LogLevel* out) {
  static const std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},   {"warning", LogLevel::kWarn}, {"error", LogLevel::kError},
      {"off", LogLevel::kOff}};
  for (const auto& [name, level] : kNames) {
    if (s == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void RebuildIdentity(LogState& s) {
  if (s.host.empty()) {
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "?");
    s.host = host;
  }
  int rank = s.rank.load();
  s.identity = rank < 0 ? fmt::format("{}:{}:-", s.host, getpid())
                        : fmt::format("{}:{}:{}", s.host, getpid(), rank);
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return 'T';
    case LogLevel::kDebug: return 'D';
    case LogLevel::kInfo: return 'I';
    case LogLevel::kWarn: return 'W';
    case LogLevel::kError: return 'E';
    case LogLevel::kOff: return '-';
  }
  return '?';
}

}  // namespace

void InitLogging() {
  LogState& s = State();
  std::lock_guard lock(s.mutex);
  s.component_levels.clear();
  s.default_level = LogLevel::kInfo;
  if (const char* env = std::getenv("LOCKSTEP_LOG"); env != nullptr) {
    std::string_view spec(env);
    while (!spec.empty()) {
      size_t comma = spec.find(',');
      std::string_view item = spec.substr(0, comma);
      spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
      size_t eq = item.find('=');
      LogLevel level;
      if (eq == std::string_view::npos) {
        if (ParseLevel(item, &level)) s.default_level = level;
      } else if (ParseLevel(item.substr(eq + 1), &level)) {
        s.component_levels[std::string(item.substr(0, eq))] = level;
      }
    }
  }
  RebuildIdentity(s);
}

void SetLogRank(int rank) {
  LogState& s = State();
  std::lock_guard lock(s.mutex);
  s.rank = rank;
  RebuildIdentity(s);
}

int LogRank() { return State().rank.load(); }

std::string_view LogIdentity() {
  LogState& s = State();
  std::lock_guard lock(s.mutex);
  if (s.identity.empty()) RebuildIdentity(s);
  return s.identity;
}

bool LogEnabled(std::string_view component, LogLevel level) {
  LogState& s = State();
  std::lock_guard lock(s.mutex);
  auto it = s.component_levels.find(component);
  LogLevel threshold = it == s.component_levels.end() ? s.default_level : it->second;
  return level >= threshold && level != LogLevel::kOff;
}

void LogWrite(std::string_view component, LogLevel level, std::string_view message) {
  LogState& s = State();
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm;
  localtime_r(&t, &tm);
  std::string line;
  {
    std::lock_guard lock(s.mutex);
    if (s.identity.empty()) RebuildIdentity(s);
    line = fmt::format("[{:02}:{:02}:{:02}.{:03}] {} {} {}: {}\n", tm.tm_hour, tm.tm_min,
                       tm.tm_sec, ms, s.identity, LevelLetter(level), component, message);
  }
  // One write call per line keeps lines whole when ranks share a terminal.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace lockstep
