// Logging and CHECK for octet. (Debian 12's abseil, 20220623, predates absl/log, so this is the small subset we use.)
// Usage: OCTET_LOG(INFO, "engine") << "started with " << n << " blocks";
//        OCTET_CHECK(ptr != nullptr) << "why";   // programmer errors only: aborts
#pragma once

#include <sstream>
#include <string_view>

namespace octet {

enum class LogSeverity { kDebug, kInfo, kWarning, kError, kFatal };

// Messages below this severity are dropped (default kInfo; OCTET_LOG_LEVEL=debug|info|warning|error overrides).
LogSeverity MinLogSeverity();
void SetMinLogSeverity(LogSeverity s);

class LogMessage {
 public:
  LogMessage(LogSeverity severity, std::string_view module, const char* file, int line);
  ~LogMessage();  // writes one line to stderr; aborts for kFatal
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Swallows a stream expression when a message is dropped.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace octet

#define OCTET_LOG_SEVERITY_DEBUG ::octet::LogSeverity::kDebug
#define OCTET_LOG_SEVERITY_INFO ::octet::LogSeverity::kInfo
#define OCTET_LOG_SEVERITY_WARNING ::octet::LogSeverity::kWarning
#define OCTET_LOG_SEVERITY_ERROR ::octet::LogSeverity::kError
#define OCTET_LOG_SEVERITY_FATAL ::octet::LogSeverity::kFatal

#define OCTET_LOG(severity, module)                           \
  (OCTET_LOG_SEVERITY_##severity < ::octet::MinLogSeverity()) \
      ? (void)0                                               \
      : ::octet::LogVoidify() &                               \
            ::octet::LogMessage(OCTET_LOG_SEVERITY_##severity, module, __FILE__, __LINE__).stream()

#define OCTET_CHECK(cond)                                                                              \
  (cond) ? (void)0                                                                                     \
         : ::octet::LogVoidify() &                                                                     \
               ::octet::LogMessage(::octet::LogSeverity::kFatal, "check", __FILE__, __LINE__).stream() \
                   << "CHECK failed: " #cond " "
