#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "exec/resolver.h"

#include <sys/types.h>

namespace coffer::exec {

// SpawnChild forks and execs `argv` (searched in PATH) with `env`, with every
// signal unblocked and SIGPIPE at its default. Returns the child's pid once
// the exec succeeded. kNotFound when the command does not exist (exit code
// 127 by convention), kPermissionDenied when it cannot be run (126); the
// failed child is reaped.
StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv,
                           const std::vector<std::string>& env);

// ExitCodeOf turns a waitpid status into a shell's exit code (128 + N for a
// signal).
int ExitCodeOf(int wait_status);

struct SupervisorOptions {
  std::vector<std::string> argv;
  enum class OnChange { kRestart, kSignal, kNone };
  OnChange on_change = OnChange::kRestart;
  int change_signal = 1;  // SIGHUP
  std::chrono::milliseconds min_restart_interval{10000};
  std::chrono::milliseconds stop_timeout{10000};
  std::string status_file;  // "" writes none
};

// BlockSupervisorSignals blocks, in the calling thread and all threads it
// starts later, the signals RunSupervisor forwards or waits for (and
// SIGCHLD). Call it before any thread is started (before the Resolver).
void BlockSupervisorSignals();

// RunSupervisor resolves the environment, runs the child, forwards signals,
// restarts or signals the child when a referenced value changes (debounced by
// min_restart_interval), keeps the status file, and returns the exit code to
// leave with: the child's own when it ends by itself or after a forwarded
// signal, 127/126 when it cannot be started.
int RunSupervisor(const SupervisorOptions& options, Resolver& resolver);

}  // namespace coffer::exec
