"""Failover, tested for real: HAProxy in front of two Coffer servers on a replicated PostgreSQL.

Each test builds its own topology on loopback (docs/ha.md), every process started and stopped by
PID and every directory removed, also when the test fails:

  * PostgreSQL primary P with `synchronous_standby_names = '*'` and a streaming standby S made
    from it with pg_basebackup; the load starts only once P's pg_stat_replication shows S as
    'sync', so every commit P acknowledges is on S too;
  * Coffer servers A and B, both with `--store` naming P and S with
    `target_session_attrs=read-write`, and HAProxy's address as their public names
    (`--authority-host localhost:H --dns-suffix vault.localhost:H`), so every URL they write
    (dev.env, the 401 challenge, ids) sends clients through HAProxy;
  * HAProxy (Debian's), TCP mode with TLS passed through, health checks (GET /healthz over TLS)
    on both servers, a short `timeout connect`, `retries` and `option redispatch`.

The tests:
  1. A is SIGKILLed while threads of the Python SDK (SecretClient, default retry policy) write
     and read through HAProxy: no operation fails and B serves the rest.
  2. P is SIGKILLed under write load and S promoted (`pg_ctl promote`, as an operator would):
     writes resume by themselves and every write the SDK acknowledged is readable with its
     value.  The time from the promotion to the first acknowledged write is printed (for
     docs/benchmarks.md), never asserted.
  3. A role assignment is revoked through A while a client reads through B: the reads are
     refused from then on.

Every wait is bounded (the bound is when to give up, not a performance claim); a test that
exceeds one fails with what it saw.  The whole suite ends well within 3 minutes.
"""

import csv
import http.client
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

from azure.core.exceptions import AzureError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from harness import KV_API, CofferServer, free_port, jwt_parts, read_text, wait_until
from postgres import PostgresCluster

AUTHZ_API = "2022-04-01"
ARM_API = "2023-07-01"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
HAPROXY = "/usr/sbin/haproxy"
# Bounds on waits: when to give up and fail, never a performance claim.
READY_S = 60.0
LOAD_S = 60.0
RESUME_S = 60.0
HONOURED_S = 15.0
# The whole suite gives up when this runs out, so that it stops by itself well within 3 minutes
# whatever hangs; every wait below is cut to what is left of it.
SUITE_BUDGET_S = 150.0
SUITE_DEADLINE = [time.monotonic() + SUITE_BUDGET_S]
# The SDK's transport timeouts, so a request that hangs fails (and is reported) within the
# test's bounds instead of after the transport's default of 300 s.
SDK_TIMEOUTS = {"connection_timeout": 5, "read_timeout": 30}


def bound(seconds):
    """`seconds`, or less when the suite's budget ends sooner (then 0: a wait checks once)."""
    return max(0.0, min(seconds, SUITE_DEADLINE[0] - time.monotonic()))


class Haproxy:
    """Debian's HAProxy in the foreground (`haproxy -db`), configured by the test.

    `public` (port H) balances over every server with health checks; `via` gives each server a
    frontend of its own (TLS passed through alike) for a client that must reach one server.
    """

    def __init__(self, root, port):
        self.root = root
        self.port = port
        self.cfg = os.path.join(root, "haproxy.cfg")
        self.sock = os.path.join(root, "admin.sock")
        self.log_path = os.path.join(root, "haproxy.log")
        self.via = {}
        self.proc = None

    def write_config(self, servers):
        """servers: {name: port} of the Coffer servers."""
        lines = [
            "global",
            f"  stats socket {self.sock} mode 600 level admin",
            "  maxconn 2000",
            "defaults",
            "  mode tcp",
            "  timeout connect 500ms",
            "  timeout client 60s",
            "  timeout server 60s",
            "  timeout check 2s",
            "  retries 3",
            "  option redispatch",
            "frontend public",
            f"  bind 127.0.0.1:{self.port}",
            f"  bind [::1]:{self.port}",
            "  default_backend coffer",
            "backend coffer",
            "  balance roundrobin",
            "  option httpchk",
            f"  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost:{self.port}",
            "  http-check expect status 200",
        ]
        for name, port in servers.items():
            lines.append(f"  server {name} 127.0.0.1:{port} check check-ssl verify none "
                         "check-sni localhost inter 200ms fall 2 rise 2")
        for name, port in servers.items():
            self.via[name] = free_port()
            lines += [f"listen via-{name}", f"  bind 127.0.0.1:{self.via[name]}",
                      f"  server {name} 127.0.0.1:{port}"]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        p = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"haproxy -c refused the configuration:\n{p.stdout}{p.stderr}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=log,
                                         stderr=log, stdin=subprocess.DEVNULL)

    def stats(self):
        """{server name: row of `show stat`} of the balanced backend ({} when unreachable)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(self.sock)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        text = data.decode().lstrip("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "coffer" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def status(self, name):
        return self.stats().get(name, {}).get("status", "")

    def sessions(self, name):
        """Connections HAProxy has made to `name` so far (stot)."""
        return int(self.stats().get(name, {}).get("stot") or 0)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class NamedConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:`port` presenting `name` in TLS (SNI, verified) and the Host header."""

    def __init__(self, name, port, context):
        super().__init__(name, port, context=context, timeout=30)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Topology:
    """P, S, A, B and HAProxy; cleanup() stops every process by PID and removes every directory."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="coffer-failover-")
        self.primary = PostgresCluster("failover-p")
        self.standby = PostgresCluster("failover-s")
        self.h_port = free_port()
        self.haproxy = Haproxy(self.root, self.h_port)
        self.a = self.b = None
        self.ctx = None

    @property
    def public(self):
        return f"localhost:{self.h_port}"

    @property
    def vault_suffix(self):
        return f"vault.localhost:{self.h_port}"

    def start(self):
        p, s = self.primary, self.standby
        p.init(["synchronous_standby_names = '*'"]).start()
        # The standby's own setting is empty: once promoted it waits for no standby of its own.
        s.init_standby(p, ["synchronous_standby_names = ''"]).start()
        if not wait_until(lambda: p.psql("SELECT sync_state FROM pg_stat_replication") == ["sync"],
                          timeout=bound(READY_S)):
            raise RuntimeError("the standby never became synchronous: "
                               f"{p.psql('SELECT * FROM pg_stat_replication')}")
        p.psql("CREATE DATABASE coffer")
        store = (f"postgresql://postgres@127.0.0.1:{p.port},127.0.0.1:{s.port}/coffer"
                 "?target_session_attrs=read-write")
        args = ["--store", store, "--authority-host", self.public, "--dns-suffix",
                self.vault_suffix]
        self.a = CofferServer(extra_args=args)
        self.b = CofferServer(extra_args=args)
        self.a.start()
        # B gets A's master key, dev.env and TLS material (docs/ha.md); the signing keys are
        # in the database.
        os.makedirs(self.b.data_dir, mode=0o700)
        for name in ("master.key", "dev.env"):
            shutil.copy2(os.path.join(self.a.data_dir, name), self.b.data_dir)
        shutil.copytree(os.path.join(self.a.data_dir, "tls"), os.path.join(self.b.data_dir, "tls"))
        self.b.start()
        self.haproxy.write_config({"a": self.a.port, "b": self.b.port})
        self.haproxy.start()
        if not wait_until(lambda: self.haproxy.status("a") == "UP" and
                          self.haproxy.status("b") == "UP" or self.haproxy.proc.poll() is not None,
                          timeout=bound(READY_S)) or self.haproxy.proc.poll() is not None:
            raise RuntimeError(f"HAProxy does not see both servers up: {self.haproxy.stats()}\n"
                               f"{read_text(self.haproxy.log_path, 3000)}")
        self.ctx = ssl.create_default_context(cafile=self.a.ca_path)
        return self

    def cleanup(self):
        self.haproxy.stop()
        for srv in (self.a, self.b):
            if srv is not None:
                srv.cleanup()
        self.primary.cleanup()
        self.standby.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self):
        """Everything the processes wrote, for a failure's message."""
        parts = []
        for label, text in (("A", self.a.logs() if self.a else ""),
                            ("B", self.b.logs() if self.b else ""),
                            ("HAProxy", read_text(self.haproxy.log_path)),
                            ("P", read_text(self.primary.log_path)),
                            ("S", read_text(self.standby.log_path))):
            parts.append(f"--- {label} ---\n{text[-4000:]}")
        return "\n".join(parts)

    # ---- clients through HAProxy -----------------------------------------------------------

    @property
    def env(self):
        return self.a.env

    def credential(self, client_id=None, secret=None):
        """A credential from dev.env's values: tenant alias, authority through HAProxy."""
        cred = ClientSecretCredential(self.env["AZURE_TENANT_ID"],
                                      client_id or self.env["AZURE_CLIENT_ID"],
                                      secret or self.env["AZURE_CLIENT_SECRET"],
                                      authority=self.env["AZURE_AUTHORITY_HOST"],
                                      connection_verify=self.a.ca_path)
        return cred

    def secret_client(self, credential, vault="dev"):
        url = f"https://{vault}.{self.vault_suffix}"
        return SecretClient(url, credential, connection_verify=self.a.ca_path, **SDK_TIMEOUTS)

    def call(self, method, path, host, port=None, body=None, token=None, headers=None):
        """One raw request naming `host` (its port is H, as every client's is), sent to
        `port` (default H, the balanced frontend; or a `via` frontend).  Returns (status, body)."""
        conn = NamedConnection(host.split(":")[0], port or self.h_port, self.ctx)
        hdrs = {"Host": host}
        hdrs.update(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if isinstance(body, dict):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def token(self, resource, client_id=None, secret=None):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials",
            "client_id": client_id or self.env["AZURE_CLIENT_ID"],
            "client_secret": secret or self.env["AZURE_CLIENT_SECRET"],
            "scope": resource + "/.default"})
        status, body = self.call("POST", f"/{self.env['COFFER_TENANT_ID']}/oauth2/v2.0/token",
                                 self.public, body=form,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise AssertionError(f"token request failed: {status} {body!r}")
        return json.loads(body)["access_token"]


SUITE_STARTED = []


def setUpModule():
    SUITE_STARTED.append(time.monotonic())
    SUITE_DEADLINE[0] = SUITE_STARTED[0] + SUITE_BUDGET_S


def tearDownModule():
    print(f"\ntest_failover: the suite ran {time.monotonic() - SUITE_STARTED[0]:.0f} s",
          flush=True)


class FailoverTests(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        if bound(1.0) == 0:
            self.fail(f"the suite's budget of {SUITE_BUDGET_S} s ran out before this test")
        started = time.monotonic()
        self.topo = Topology()
        self.addCleanup(self.topo.cleanup)
        self.topo.start()
        print(f"\n  topology up in {time.monotonic() - started:.1f} s", flush=True)

    def fail_with_logs(self, message):
        self.fail(f"{message}\n{self.topo.logs()}")

    # ---- 1 ---------------------------------------------------------------------------------

    def test_killing_a_server_under_load_fails_no_sdk_operation(self):
        topo = self.topo
        threads_n, ops_per_thread = 4, 40
        total = threads_n * ops_per_thread
        lock = threading.Lock()
        done = []  # (monotonic time, thread, i) of each completed set+get pair
        errors = []
        killed_at = []
        clients = []
        for _ in range(threads_n):
            cred = topo.credential()
            clients.append((cred, topo.secret_client(cred)))
            self.addCleanup(cred.close)
            self.addCleanup(clients[-1][1].close)

        def work(t):
            cred, client = clients[t]
            for i in range(ops_per_thread):
                value = f"t{t}-op{i}-{uuid.uuid4()}"
                try:
                    s = client.set_secret(f"load-{t}", value)
                    got = client.get_secret(f"load-{t}", s.properties.version)
                    if got.value != value:
                        raise AssertionError(f"read {got.value!r}, wrote {value!r}")
                except Exception as e:  # noqa: BLE001 - every failure is reported below
                    with lock:
                        errors.append(f"thread {t} op {i}: {type(e).__name__}: {e}")
                    return
                with lock:
                    done.append((time.monotonic(), t, i))

        workers = [threading.Thread(target=work, args=(t,), daemon=True)
                   for t in range(threads_n)]
        for w in workers:
            w.start()
        # Kill A once half the operations completed, with both servers having served some.
        if not wait_until(lambda: len(done) >= total // 2 or errors, timeout=bound(LOAD_S)):
            self.fail_with_logs(f"the load did not get half-way: {len(done)} of {total} done")
        served_a_before = topo.haproxy.sessions("a")
        served_b_before = topo.haproxy.sessions("b")
        topo.a.kill()
        killed_at.append(time.monotonic())
        for w in workers:
            w.join(timeout=bound(LOAD_S))
        if any(w.is_alive() for w in workers):
            self.fail_with_logs(f"the load did not finish after A was killed: {len(done)} of "
                                f"{total} done, errors {errors}")
        self.assertEqual(errors, [], f"SDK operations failed after A was killed\n{topo.logs()}")
        self.assertEqual(len(done), total)
        after = [d for d in done if d[0] > killed_at[0]]
        print(f"  {len(after)} of {total} operation pairs completed after A was killed", flush=True)
        self.assertGreater(served_a_before, 0, "A never served: the kill proved nothing")
        self.assertGreater(len(after), 0, "nothing ran after the kill: it proved nothing")
        # Everything after the kill was served by B (A is gone, HAProxy took it out).
        self.assertFalse(topo.a.running())
        self.assertTrue(wait_until(lambda: topo.haproxy.status("a").startswith("DOWN"),
                                   timeout=bound(READY_S)), topo.haproxy.stats())
        self.assertTrue(topo.haproxy.status("b").startswith("UP"), topo.haproxy.stats())
        self.assertGreater(topo.haproxy.sessions("b"), served_b_before,
                           "B made no new connection after A was killed")

    # ---- 2 ---------------------------------------------------------------------------------

    def test_database_failover_loses_no_acknowledged_write(self):
        topo = self.topo
        threads_n = 3
        lock = threading.Lock()
        acked = []  # (monotonic time, name, version, value)
        failures = []  # (monotonic time, error) of writes that failed (expected while no primary)
        stop = threading.Event()
        clients = []
        for _ in range(threads_n):
            cred = topo.credential()
            clients.append(topo.secret_client(cred))
            self.addCleanup(cred.close)
            self.addCleanup(clients[-1].close)

        def write(t):
            client = clients[t]
            i = 0
            while not stop.is_set():
                name, value = f"w{t}", f"t{t}-{i}-{uuid.uuid4()}"
                i += 1
                try:
                    s = client.set_secret(name, value)
                except AzureError as e:
                    with lock:
                        failures.append((time.monotonic(), f"{type(e).__name__}: {e}"))
                    stop.wait(0.2)
                    continue
                with lock:
                    acked.append((time.monotonic(), name, s.properties.version, value))

        # Besides the SDK, whose back-off between retries blurs when writes resumed, a probe
        # writes through HAProxy every 50 ms without retries of its own.
        probe_token = topo.token(f"https://{topo.vault_suffix}")
        probe_acked = []  # (monotonic time, name, version, value)

        def probe():
            i = 0
            while not stop.is_set():
                value = f"probe-{i}-{uuid.uuid4()}"
                i += 1
                try:
                    status, body = topo.call("PUT", f"/secrets/probe?api-version={KV_API}",
                                             f"dev.{topo.vault_suffix}", token=probe_token,
                                             body={"value": value})
                except (OSError, http.client.HTTPException):
                    status = None
                if status == 200:
                    version = json.loads(body)["id"].rsplit("/", 1)[1]
                    with lock:
                        probe_acked.append((time.monotonic(), "probe", version, value))
                stop.wait(0.05)

        workers = [threading.Thread(target=write, args=(t,), daemon=True)
                   for t in range(threads_n)]
        workers.append(threading.Thread(target=probe, daemon=True))
        for w in workers:
            w.start()
        try:
            if not wait_until(lambda: len(acked) >= 30, timeout=bound(LOAD_S)):
                self.fail_with_logs(f"the write load did not start: {len(acked)} acknowledged, "
                                    f"failures {failures[:3]}")
            topo.primary.kill()
            killed_at = time.monotonic()
            # The loss is seen: a write fails (after the SDK's own retries) with no primary.
            if not wait_until(lambda: any(f[0] > killed_at for f in failures),
                              timeout=bound(LOAD_S)):
                self.fail_with_logs("no write failed after the primary was killed")
            topo.standby.promote()
            promoted_at = time.monotonic()
            first = wait_until(lambda: next((a[0] for a in acked if a[0] > promoted_at), None),
                               timeout=bound(RESUME_S))
            if first is None:
                self.fail_with_logs(f"writes did not resume within {RESUME_S} s of the "
                                    f"promotion; last failures: {failures[-3:]}")
            first_probe = wait_until(
                lambda: next((a[0] for a in probe_acked if a[0] > promoted_at), None),
                timeout=bound(RESUME_S))
            if first_probe is None:
                self.fail_with_logs("the probe's writes did not resume after the promotion")
            print(f"  first acknowledged write after the promotion: the probe's "
                  f"{first_probe - promoted_at:.2f} s, the SDK's {first - promoted_at:.2f} s "
                  f"(its retry back-off included); {len(failures)} SDK writes failed meanwhile",
                  flush=True)
            # Each server reconnected by itself, not only the one that answered first: a write
            # through each server's own frontend succeeds.
            token = topo.token(f"https://{topo.vault_suffix}")
            for srv in ("a", "b"):
                def put():
                    try:
                        return topo.call("PUT", f"/secrets/probe-{srv}?api-version={KV_API}",
                                         f"dev.{topo.vault_suffix}", port=topo.haproxy.via[srv],
                                         token=token, body={"value": srv})[0] == 200
                    except (OSError, http.client.HTTPException):
                        return False
                if not wait_until(put, timeout=bound(RESUME_S), interval=0.2):
                    self.fail_with_logs(f"server {srv.upper()} does not write after the "
                                        "promotion")
            # A few more after the first, so the survivors' later writes are checked too.
            n = len(acked)
            wait_until(lambda: len(acked) >= n + 10, timeout=bound(RESUME_S))
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=bound(LOAD_S))
        self.assertFalse(any(w.is_alive() for w in workers), "a writer hung")
        with lock:
            writes = acked + probe_acked
        versions = [(name, version) for _, name, version, _ in writes]
        self.assertEqual(len(set(versions)), len(versions), "a version was acknowledged twice")
        reader_cred = topo.credential()
        reader = topo.secret_client(reader_cred)
        self.addCleanup(reader_cred.close)
        self.addCleanup(reader.close)
        lost = []
        for _, name, version, value in writes:
            try:
                got = reader.get_secret(name, version).value
            except AzureError as e:
                got = f"{type(e).__name__}: {e}"
            if got != value:
                lost.append((name, version, value, got))
        print(f"  {len(writes)} acknowledged writes checked", flush=True)
        if lost:
            self.fail_with_logs(f"{len(lost)} of {len(writes)} acknowledged writes were lost or "
                                f"changed, e.g. {lost[:3]}")

    # ---- 3 ---------------------------------------------------------------------------------

    def test_a_revocation_through_a_is_honoured_by_b_under_reads(self):
        """The reader must reach B while the revocation goes to A.  HAProxy gives each server a
        frontend of its own besides the balanced one (`listen via-a`, `listen via-b`), TLS
        passed through alike; the clients still name the public port H in their Host header and
        TLS name, as every client of this installation does, so the servers see an ordinary
        request for their public name.  `balance first` was not used: it sends everything to
        the first server while it is up, so a read through B would need A down, and the
        revocation goes through A."""
        topo = self.topo
        via_a, via_b = topo.haproxy.via["a"], topo.haproxy.via["b"]
        admin_mgmt = topo.token(f"https://{topo.public}")
        sub = topo.env["COFFER_SUBSCRIPTION_ID"]
        vault_id = (f"/subscriptions/{sub}/resourceGroups/failover/providers/"
                    f"Microsoft.KeyVault/vaults/fo-rbac")
        status, body = topo.call("PUT", f"{vault_id}?api-version={ARM_API}", topo.public,
                                 port=via_a, token=admin_mgmt,
                                 body={"location": "local",
                                       "properties": {"enableRbacAuthorization": True}})
        self.assertEqual(status, 201, body)
        vault_host = f"fo-rbac.{topo.vault_suffix}"
        admin_vault = topo.token(f"https://{topo.vault_suffix}")
        status, body = topo.call("PUT", f"/secrets/guarded?api-version={KV_API}", vault_host,
                                 port=via_a, token=admin_vault, body={"value": "v"})
        self.assertEqual(status, 200, body)
        sp = topo.a.coffer_json("ad", "sp", "create-for-rbac", "--name", "fo-reader")
        reader_token = topo.token(f"https://{topo.vault_suffix}", sp["appId"], sp["password"])
        sp_oid = jwt_parts(reader_token)[1]["oid"]
        assignment = (f"{vault_id}/providers/Microsoft.Authorization/roleAssignments/"
                      f"{uuid.uuid4()}?api-version={AUTHZ_API}")
        status, body = topo.call("PUT", assignment, topo.public, port=via_a, token=admin_mgmt,
                                 body={"properties": {
                                     "roleDefinitionId": f"/subscriptions/{sub}/providers/"
                                     f"Microsoft.Authorization/roleDefinitions/{SECRETS_USER}",
                                     "principalId": sp_oid}})
        self.assertEqual(status, 201, body)

        lock = threading.Lock()
        reads = []  # (monotonic time, status) of each read through B
        stop = threading.Event()

        def read_via_b():
            while not stop.is_set():
                try:
                    status, _ = topo.call("GET", f"/secrets/guarded?api-version={KV_API}",
                                          vault_host, port=via_b, token=reader_token)
                except (OSError, http.client.HTTPException) as e:
                    status = repr(e)
                with lock:
                    reads.append((time.monotonic(), status))
                stop.wait(0.05)

        reader = threading.Thread(target=read_via_b, daemon=True)
        reader.start()
        try:
            if not wait_until(lambda: any(s == 200 for _, s in reads),
                              timeout=bound(HONOURED_S)):
                self.fail_with_logs(f"B never served the granted read: {reads[-5:]}")
            status, body = topo.call("DELETE", assignment, topo.public, port=via_a,
                                     token=admin_mgmt)
            self.assertEqual(status, 200, body)
            revoked_at = time.monotonic()
            if not wait_until(lambda: any(t > revoked_at and s == 403 for t, s in reads),
                              timeout=bound(HONOURED_S)):
                self.fail_with_logs(f"B still serves the revoked reader after {HONOURED_S} s: "
                                    f"{reads[-5:]}")
            # And it stays refused: a few more reads after the first refusal.
            n = len(reads)
            wait_until(lambda: len(reads) >= n + 10, timeout=bound(HONOURED_S))
        finally:
            stop.set()
            reader.join(timeout=bound(LOAD_S))
        first_403 = next(t for t, s in reads if t > revoked_at and s == 403)
        later = [s for t, s in reads if t >= first_403]
        self.assertEqual(set(later), {403}, f"B served the revoked reader again: {later}")
        self.assertEqual({s for _, s in reads if s not in (200, 403)}, set(),
                         "a read through B failed otherwise")


if __name__ == "__main__":
    unittest.main()
