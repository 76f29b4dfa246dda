#include "exec/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "common/files.h"
#include "common/json.h"
#include "common/unique_fd.h"

#include <sys/wait.h>

namespace coffer::exec {
namespace {

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

sigset_t SupervisorSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwarded) {
    sigaddset(&set, s);
  }
  sigaddset(&set, SIGCHLD);
  return set;
}

using Clock = std::chrono::steady_clock;

class Supervisor {
 public:
  Supervisor(const SupervisorOptions& options, Resolver& resolver)
      : options_(options), resolver_(resolver) {}

  int Run() {
    resolver_.OnChange([this] { changed_.store(true); });
    env_ = resolver_.Resolve();
    WriteStatus();
    StatusOr<pid_t> pid = SpawnChild(options_.argv, env_);
    if (!pid.ok()) {
      std::cerr << "coffer exec: " << pid.status().message() << "\n";
      return pid.status().code() == StatusCode::kNotFound ? 127 : 126;
    }
    child_ = *pid;
    last_action_ = Clock::now();
    WriteStatus();
    sigset_t set = SupervisorSignals();
    Clock::time_point next_status = Clock::now() + std::chrono::seconds(1);
    for (;;) {
      siginfo_t info;
      timespec tick{0, 100 * 1000 * 1000};
      int sig = sigtimedwait(&set, &info, &tick);
      if (sig > 0 && sig != SIGCHLD) {
        Forward(sig, info);
      }
      if (auto code = Reap()) {
        return *code;
      }
      if (!stopping_) {
        MaybeAct();
      }
      if (Clock::now() >= next_status) {
        next_status = Clock::now() + std::chrono::seconds(1);
        // The caches refresh in the background: keep the file true to them.
        std::string now = ToJson(resolver_.StatusJson(0, 0)["references"]);
        if (now != last_refs_json_) {
          WriteStatus();
        }
      }
    }
  }

 private:
  void Forward(int sig, const siginfo_t& info) {
    // Signals the terminal sends (SI_KERNEL) reach the whole foreground
    // process group, the child included: sending them again would deliver
    // them twice. Those sent by a process (kill, a supervisor) are ours to pass on.
    if (info.si_code == SI_KERNEL && (sig == SIGINT || sig == SIGQUIT || sig == SIGWINCH)) {
      if (sig != SIGWINCH) {
        stopping_ = true;
      }
      return;
    }
    if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
      stopping_ = true;  // the child's end is ours: no restart after it
    }
    if (child_ > 0) {
      kill(child_, sig);
    }
  }

  // Reap collects every ended child; returns the exit code when the current
  // child ended (and it was not being restarted).
  std::optional<int> Reap() {
    for (;;) {
      int wstatus = 0;
      pid_t done = waitpid(-1, &wstatus, WNOHANG);
      if (done <= 0) {
        return std::nullopt;
      }
      if (done == child_) {
        return ExitCodeOf(wstatus);
      }
    }
  }

  void MaybeAct() {
    Clock::time_point now = Clock::now();
    if (changed_.exchange(false)) {
      if (!pending_) {
        pending_ = true;
        pending_since_ = now;
      }
    }
    if (!pending_ || options_.on_change == SupervisorOptions::OnChange::kNone) {
      if (pending_) {
        pending_ = false;
        env_ = resolver_.Resolve();
        WriteStatus();
      }
      return;
    }
    if (now - pending_since_ < options_.min_restart_interval ||
        now - last_action_ < options_.min_restart_interval) {
      return;
    }
    pending_ = false;
    std::vector<std::string> env = resolver_.Resolve();
    if (env == env_) {
      WriteStatus();
      return;  // a change that came back to what the child has
    }
    env_ = std::move(env);
    last_action_ = now;
    if (options_.on_change == SupervisorOptions::OnChange::kSignal) {
      kill(child_, options_.change_signal);
      WriteStatus();
      return;
    }
    Restart();
  }

  void Restart() {
    kill(child_, SIGTERM);
    Clock::time_point deadline = Clock::now() + options_.stop_timeout;
    bool killed = false;
    for (;;) {
      int wstatus = 0;
      pid_t done = waitpid(child_, &wstatus, WNOHANG);
      if (done == child_ || (done < 0 && errno == ECHILD)) {
        break;
      }
      if (!killed && Clock::now() >= deadline) {
        kill(child_, SIGKILL);
        killed = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    StatusOr<pid_t> pid = SpawnChild(options_.argv, env_);
    if (!pid.ok()) {
      std::cerr << "coffer exec: cannot restart: " << pid.status().message() << "\n";
      child_ = -1;
      std::_Exit(pid.status().code() == StatusCode::kNotFound ? 127 : 126);
    }
    child_ = *pid;
    ++restarts_;
    WriteStatus();
  }

  void WriteStatus() {
    Json status = resolver_.StatusJson(child_, restarts_);
    last_refs_json_ = ToJson(status["references"]);
    if (options_.status_file.empty()) {
      return;
    }
    Status written = WriteFileAtomic(options_.status_file, status.dump(2) + "\n", 0600);
    if (!written.ok()) {
      std::cerr << "coffer exec: cannot write the status file: " << written.message() << "\n";
    }
  }

  const SupervisorOptions& options_;
  Resolver& resolver_;
  std::vector<std::string> env_;
  pid_t child_ = -1;
  int restarts_ = 0;
  bool stopping_ = false;
  std::atomic<bool> changed_{false};
  bool pending_ = false;
  Clock::time_point pending_since_;
  Clock::time_point last_action_;
  std::string last_refs_json_;
};

}  // namespace

void BlockSupervisorSignals() {
  sigset_t set = SupervisorSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  if (WIFSIGNALED(wait_status)) {
    return 128 + WTERMSIG(wait_status);
  }
  return 1;
}

StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv,
                           const std::vector<std::string>& env) {
  if (argv.empty()) {
    return InvalidArgumentError("no command to run");
  }
  // Everything the child touches is made before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> cargv;
  for (const std::string& a : argv) {
    cargv.push_back(const_cast<char*>(a.c_str()));
  }
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const std::string& e : env) {
    cenv.push_back(const_cast<char*>(e.c_str()));
  }
  cenv.push_back(nullptr);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    return UnavailableError(std::string("pipe: ") + std::strerror(errno));
  }
  // The child writes its exec error to report_write (close-on-exec, so a
  // successful exec closes it and the read sees end of file).
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);
  pid_t pid = fork();
  if (pid < 0) {
    return UnavailableError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    report_read.reset();  // close(2) alone: async-signal-safe
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execvpe(cargv[0], cargv.data(), cenv.data());
    int e = errno;
    ssize_t ignored = write(report_write.get(), &e, sizeof e);
    (void)ignored;
    _exit(e == ENOENT ? 127 : 126);
  }
  report_write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  report_read.reset();
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int ignored;
    waitpid(pid, &ignored, 0);
    std::string what = argv[0] + ": " + std::strerror(child_errno);
    if (child_errno == ENOENT) {
      return NotFoundError(what);
    }
    return PermissionDeniedError(what);
  }
  return pid;
}

int RunSupervisor(const SupervisorOptions& options, Resolver& resolver) {
  return Supervisor(options, resolver).Run();
}

}  // namespace coffer::exec
