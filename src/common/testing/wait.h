#pragma once

// Bounded waits for tests. A test that needs another thread or process to get
// somewhere waits for that event, never for a fixed time: the bound only
// says when to give up and report a failure, so it is generous (a loaded
// sanitizer build on a shared two-core machine stays far inside it) and is
// never a performance claim. Timing targets live in bench/.

#include <chrono>
#include <functional>

namespace coffer::test {

// How long WaitUntil waits by default before it gives up.
inline constexpr std::chrono::milliseconds kWaitLimit{std::chrono::seconds(30)};

// WaitUntil calls `condition` on the calling thread, every few milliseconds,
// until it returns true (then true) or `limit` has passed (then the result of
// one last call). `condition` should be cheap and must not block.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds limit = kWaitLimit);

}  // namespace coffer::test
