// OCTET_ASSIGN_OR_RETURN / OCTET_RETURN_IF_ERROR for absl::Status(Or) code paths.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define OCTET_STATUS_CONCAT_INNER(a, b) a##b
#define OCTET_STATUS_CONCAT(a, b) OCTET_STATUS_CONCAT_INNER(a, b)

#define OCTET_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status _octet_status = (expr);         \
    if (!_octet_status.ok()) return _octet_status; \
  } while (0)

#define OCTET_ASSIGN_OR_RETURN(lhs, expr) \
  OCTET_ASSIGN_OR_RETURN_IMPL(OCTET_STATUS_CONCAT(_octet_statusor_, __LINE__), lhs, expr)

#define OCTET_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(*statusor)
