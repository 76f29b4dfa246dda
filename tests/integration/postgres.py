"""A real PostgreSQL 15 (Debian's postgresql-15) for the integration tests.

PostgresCluster makes a cluster with initdb in a temporary directory and runs it on its own Unix
socket directory and a loopback TCP port.  As root its processes run as the `postgres` user (the
server refuses root).  A standby is made from a running primary with pg_basebackup and streams
from it; promote() turns it into a primary as an operator (or Patroni) would.  stop() and kill()
act on the postmaster by PID; cleanup() stops it and removes the directory.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from harness import free_port, read_text, wait_until

BIN = "/usr/lib/postgresql/15/bin/"


def _postgres_ids():
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


class PostgresCluster:
    def __init__(self, name="pg"):
        self.root = tempfile.mkdtemp(prefix=f"coffer-{name}-")
        self.data = os.path.join(self.root, "data")
        self.socket_dir = self.root
        self.port = free_port()
        self.log_path = os.path.join(self.root, "postgres.log")
        self.proc = None
        self.ids = _postgres_ids()
        if self.ids:
            os.chown(self.root, *self.ids)

    def _run(self, program, *args, check=True, timeout=120):
        kw = {}
        if self.ids:
            kw = {"user": self.ids[0], "group": self.ids[1], "extra_groups": []}
        with open(self.log_path, "ab") as log:
            p = subprocess.run([BIN + program, *args], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise RuntimeError(f"{program} exited with {p.returncode}:\n{read_text(self.log_path)}")
        return p.returncode

    def init(self, settings=()):
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-instructions")
        self._append_conf(["listen_addresses = '127.0.0.1'", f"port = {self.port}",
                           f"unix_socket_directories = '{self.socket_dir}'",
                           "max_connections = 200", "wal_level = replica",
                           "max_wal_senders = 10", *settings])
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
            f.write("host replication postgres 127.0.0.1/32 trust\n")
        return self

    def _append_conf(self, lines):
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n".join(lines) + "\n")

    def init_standby(self, primary, settings=()):
        """A streaming standby of `primary` (running), named `name` in its application_name."""
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                  "-D", self.data, "-R", "-X", "stream")
        self._append_conf([f"port = {self.port}", f"unix_socket_directories = '{self.socket_dir}'",
                           *settings])
        return self

    def start(self):
        kw = {}
        if self.ids:
            kw = {"user": self.ids[0], "group": self.ids[1], "extra_groups": []}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN + "postgres", "-D", self.data], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, **kw)
        log.close()
        wait_until(lambda: self.proc.poll() is not None or self.accepts(), timeout=60)
        if self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited:\n{read_text(self.log_path)}")
        return self

    def accepts(self):
        return subprocess.run([BIN + "pg_isready", "-q", "-h", self.socket_dir, "-p",
                               str(self.port)], stdin=subprocess.DEVNULL).returncode == 0

    def psql(self, sql, db="postgres"):
        """Runs `sql`; returns its output rows (unaligned, tuples only)."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                            self.socket_dir, "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-c", sql], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError(f"psql failed: {p.stderr}")
        return [line for line in p.stdout.splitlines() if line]

    def conninfo(self, db="coffer"):
        """The TCP connection string of database `db`."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def promote(self):
        self._run("pg_ctl", "promote", "-w", "-D", self.data)

    def kill(self):
        """SIGKILL to the postmaster, as a crash of the machine would stop it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            # Its backends exit when they notice the postmaster is gone.

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(test_case_or_class, name="pg", settings=()):
    """A running primary whose cleanup is registered on the test case (or class)."""
    pg = PostgresCluster(name)
    register = (test_case_or_class.addClassCleanup if isinstance(test_case_or_class, type)
                else test_case_or_class.addCleanup)
    register(pg.cleanup)
    pg.init(settings).start()
    pg.psql("CREATE DATABASE coffer")
    return pg
