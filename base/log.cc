#include "base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace octet {
namespace {

LogSeverity SeverityFromEnv() {
  const char* v = std::getenv("OCTET_LOG_LEVEL");
  if (v == nullptr) return LogSeverity::kInfo;
  std::string_view s(v);
  if (s == "debug") return LogSeverity::kDebug;
  if (s == "warning") return LogSeverity::kWarning;
  if (s == "error") return LogSeverity::kError;
  return LogSeverity::kInfo;
}

std::atomic<LogSeverity>& MinSeverity() {
  static std::atomic<LogSeverity> s{SeverityFromEnv()};
  return s;
}

char SeverityLetter(LogSeverity s) {
  switch (s) {
    case LogSeverity::kDebug:
      return 'D';
    case LogSeverity::kInfo:
      return 'I';
    case LogSeverity::kWarning:
      return 'W';
    case LogSeverity::kError:
      return 'E';
    case LogSeverity::kFatal:
      return 'F';
  }
  return '?';
}

}  // namespace

LogSeverity MinLogSeverity() { return MinSeverity().load(std::memory_order_relaxed); }
void SetMinLogSeverity(LogSeverity s) { MinSeverity().store(s, std::memory_order_relaxed); }

LogMessage::LogMessage(LogSeverity severity, std::string_view module, const char* file, int line)
    : severity_(severity) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm;
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%m%d %H:%M:%S", &tm);
  const char* base = std::strrchr(file, '/');
  stream_ << SeverityLetter(severity) << stamp << '.' << (ms < 100 ? (ms < 10 ? "00" : "0") : "") << ms << ' '
          << (base ? base + 1 : file) << ':' << line << "] " << module << ": ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string line = stream_.str();
  std::fwrite(line.data(), 1, line.size(), stderr);
  if (severity_ == LogSeverity::kFatal) {
    std::fflush(stderr);
    std::abort();
  }
}

}  // namespace octet
