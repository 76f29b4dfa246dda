#pragma once

// A test seam of SecretCache (include/coffer/secret_cache.h). It is not part
// of the installed SDK, and production code never sets it.

#include <functional>
#include <string>

namespace coffer {

// SetSecretCacheRefreshHookForTesting installs `hook`, which every
// SecretCache then calls on its refresh thread right after a background
// refresh of the secret `name` has been counted in stats().refreshes. An
// empty function removes it. The hook is process-wide, so one test at a time
// may use it; a call already under way when it is removed still finishes.
//
// A test stands there where any reader that has just seen the count stands,
// and can check what the count promises: the refreshed value is served.
void SetSecretCacheRefreshHookForTesting(std::function<void(const std::string& name)> hook);

}  // namespace coffer
