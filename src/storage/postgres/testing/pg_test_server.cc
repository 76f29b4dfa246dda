#include "storage/postgres/testing/pg_test_server.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "common/testing/wait.h"
#include "storage/postgres/pg_conn.h"

#include <sys/stat.h>
#include <sys/wait.h>

namespace coffer::storage::postgres::testing {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin/";
constexpr char kPort[] = "5432";  // of the socket file; no TCP listener

}  // namespace

StatusOr<std::unique_ptr<PgTestServer>> PgTestServer::Start() {
  if (access((std::string(kBin) + "postgres").c_str(), X_OK) != 0) {
    return UnavailableError(std::string("PostgreSQL 15 is not installed (") + kBin +
                            "postgres); scripts/setup.sh installs postgresql-15");
  }
  std::unique_ptr<PgTestServer> s(new PgTestServer());
  auto dir = test::TempDir::Create("coffer-pg-", "/tmp");
  if (!dir.ok()) {
    return dir.status();
  }
  s->dir_ = std::move(dir).value();
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return UnavailableError("running as root needs the `postgres` user (postgresql-15 makes it)");
    }
    s->as_postgres_ = true;
    s->uid_ = pw->pw_uid;
    s->gid_ = pw->pw_gid;
    if (chown(s->dir_.path().c_str(), s->uid_, s->gid_) != 0) {
      return UnavailableError("cannot give the test directory to postgres");
    }
  }
  auto initdb = s->Run("initdb",
                       {"-D", s->dir_.Join("data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--no-sync", "--no-instructions"},
                       true);
  if (!initdb.ok() || *initdb != 0) {
    return UnavailableError("initdb failed:\n" + s->Log());
  }
  auto started = s->Run("postgres",
                        {"-D", s->dir_.Join("data"), "-k", s->dir_.path(), "-p", kPort, "-c",
                         "listen_addresses=", "-c", "max_connections=200"},
                        false);
  if (!started.ok()) {
    return started.status();
  }
  bool ready = test::WaitUntil([&] {
    int status = 0;
    if (s->pid_ > 0 && waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      return true;
    }
    return PgConn::Connect(s->conninfo()).ok();
  });
  if (!ready || s->pid_ < 0) {
    return UnavailableError("PostgreSQL did not start:\n" + s->Log());
  }
  return s;
}

PgTestServer::~PgTestServer() {
  if (pid_ > 0) {
    kill(pid_, SIGINT);  // fast shutdown
    bool gone = test::WaitUntil([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; });
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
}

std::string PgTestServer::conninfo() const {
  return "host=" + dir_.path() + " port=" + kPort + " user=postgres dbname=postgres";
}

StatusOr<std::string> PgTestServer::CreateDatabase(const std::string& name) {
  auto conn = PgConn::Connect(conninfo());
  if (!conn.ok()) {
    return conn.status();
  }
  if (Status s = (*conn)->ExecScript("CREATE DATABASE \"" + name + "\""); !s.ok()) {
    return s;
  }
  return "host=" + dir_.path() + " port=" + kPort + " user=postgres dbname=" + name;
}

StatusOr<int> PgTestServer::Run(const std::string& program, const std::vector<std::string>& args,
                                bool wait) {
  std::string path = kBin + program;
  std::vector<std::string> argv_strings{path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::string log = dir_.Join("server.log");
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0 || (as_postgres_ && fchown(log_fd, uid_, gid_) != 0)) {
    if (log_fd >= 0) {
      close(log_fd);
    }
    return UnavailableError("cannot open " + log);
  }
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    if (as_postgres_ && (setgid(gid_) != 0 || setuid(uid_) != 0)) {
      _exit(126);
    }
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(log_fd);
  if (pid < 0) {
    return UnavailableError("cannot start " + program);
  }
  if (!wait) {
    pid_ = pid;
    return 0;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string PgTestServer::Log() const {
  std::ifstream in(dir_.Join("server.log"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace coffer::storage::postgres::testing
