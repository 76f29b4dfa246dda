#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/testing/temp_dir.h"

#include <sys/types.h>

namespace coffer::storage::postgres::testing {

// PgTestServer is a real PostgreSQL 15 (Debian's postgresql-15) for one test
// binary: a fresh cluster (initdb) in a temporary directory, serving only a
// Unix socket in that directory, stopped and removed by the destructor. As
// root (PostgreSQL refuses to run as root) its processes run as the
// `postgres` user, who owns the directory.
class PgTestServer {
 public:
  // Start makes and starts the cluster and waits until it accepts
  // connections. kUnavailable when PostgreSQL 15 is not installed
  // (scripts/setup.sh installs it) or does not start; the message quotes
  // its log.
  static StatusOr<std::unique_ptr<PgTestServer>> Start();
  // Stops the server (fast shutdown, then SIGKILL) and removes its files.
  ~PgTestServer();
  PgTestServer(const PgTestServer&) = delete;
  PgTestServer& operator=(const PgTestServer&) = delete;

  // A libpq connection string for the database `postgres` as `postgres`.
  std::string conninfo() const;
  // CreateDatabase makes an empty database and returns its connection
  // string, so that tests sharing the server do not share tables.
  StatusOr<std::string> CreateDatabase(const std::string& name);

 private:
  PgTestServer() = default;
  // Runs a PostgreSQL program (as `postgres` when root) with its output
  // appended to the log; returns its exit status.
  StatusOr<int> Run(const std::string& program, const std::vector<std::string>& args, bool wait);
  std::string Log() const;

  test::TempDir dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool as_postgres_ = false;
  pid_t pid_ = -1;
};

}  // namespace coffer::storage::postgres::testing
