#pragma once

// How every client of a vault sends a request: the bearer token for the
// scope Key Vault's challenge named, one more try after a 401, and the Azure
// SDKs' retry policy. Shared by SecretClient and KeyClient.

#include <functional>
#include <string>

#include "coffer/http_transport.h"
#include "coffer/secret_client.h"
#include "coffer/status.h"

namespace coffer {

// Retryable is true for the HTTP statuses the Azure SDKs retry: 408, 429,
// 500, 502, 503, 504.
bool Retryable(int status);

// SendAuthorized sends `request` with the Authorization header that
// `authorization(refresh)` returns. After a 401 it asks for it again with
// refresh = true (the resource may have changed, or the token been revoked)
// and sends once more. A retryable status, an unreachable vault or a timeout
// is retried up to retry.max_retries times, after Retry-After or else an
// exponential back-off with jitter. Returns the last response whatever its
// status; an error only when the vault could not be reached (or the
// authorization failed). Blocks for the back-off.
StatusOr<HttpResponse> SendAuthorized(
    HttpTransport& transport, const RetryOptions& retry, const HttpRequest& request,
    const std::function<StatusOr<std::string>(bool refresh)>& authorization);

}  // namespace coffer
