"""`coffer exec`, end to end against the real server (docs/exec.md).

`coffer exec` runs a child (exec_child.py) with Key Vault references in its environment resolved
through a web app's managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER of the app, the
server's CA in REQUESTS_CA_BUNDLE, COFFER_VAULT_DNS_SUFFIX and AZURE_AUTHORITY_HOST from dev.env,
and no AZURE_CLIENT_SECRET, so that the managed identity is what resolves.

* Both reference forms, with and without a version, and the case tolerance resolve; other values
  pass through untouched; the status file lists every reference (Resolved, resolvedVersion).
* Missing secrets, versions and vaults, a secret the identity may not read (RBAC on one secret),
  and a system identity without access stay literal in the child, with App Service's statuses.
* --identity names a user-assigned identity of the app, by resource id and by client id.
* Rotation: --on-change restart through the watch stream and by polling (--no-watch), --on-change
  signal, and a burst of changes inside --min-restart-interval: exactly one restart (or signal),
  old children reaped, the status file's restarts and pid.
* Signals sent to exec reach the child; exec exits with the child's status (128 + N for signal
  N, 127 for a missing command, 126 for one that cannot be run).
* Hostile references (control characters, oversized, injection attempts, unbalanced parentheses,
  hosts that are no vault of this server) never crash exec and stay literal; a TLS listener that
  the server's CA vouches for, at such a host, never receives a token or the identity header.
* No secret value appears in exec's output or in the status file; `coffer exec --status`.

Every wait is bounded (WAIT_S) and none is a performance claim; QUIET_S is how long a test keeps
watching for something that must not happen.
"""

import glob
import http.server
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from harness import (ServerTestCase, coffer_binary, free_port, read_text, server_audit_dir,
                     stop_process, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "exec_child.py")
RG = "rg-exec"
WAIT_S = 60.0   # bounds a wait for something that should happen; never a performance claim
QUIET_S = 3.0   # how long to keep watching for something that must not happen
TERM_CODE = 42  # what exec_child.py exits with on SIGTERM
STATUSES = {"Resolved", "InvalidSyntax", "MSINotEnabled", "VaultNotFound", "SecretNotFound",
            "SecretVersionNotFound", "AccessToKeyVaultDenied", "UnauthorizedClient",
            "FetchTimedOut", "OtherReasons"}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CLAIM_URI = "http://schemas.microsoft.com/identity/claims/objectidentifier"
REF_KEYS = {"name", "status", "vaultName", "secretName", "secretVersion", "resolvedVersion",
            "details", "lastResolved"}


def proc_stat(pid):
    """(state, ppid) of a process from /proc/<pid>/stat, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def children_of(pid):
    """{child pid: state} of every process whose parent is pid."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st is not None and st[1] == pid:
                out[int(d)] = st[0]
    return out


def uri_ref(url):
    return f"@Microsoft.KeyVault(SecretUri={url})"


def name_ref(vault, name, version=None):
    extra = f";SecretVersion={version}" if version else ""
    return f"@Microsoft.KeyVault(VaultName={vault};SecretName={name}{extra})"


# ---- one `coffer exec` ------------------------------------------------------------------------

class ExecRun:
    """`coffer exec [args] -- python3 exec_child.py LOG ...`, with its own directory.

    The exec process and every child it started are stopped by PID in cleanup (registered on
    the test case).
    """

    def __init__(self, case, env, variables, exec_args=(), mode="run", code=0, kill_signal=None,
                 command=None, status_file=True):
        self.case = case
        self.dir = tempfile.mkdtemp(prefix="exec-", dir=case.srv.root)
        self.log = os.path.join(self.dir, "child.log")
        self.status_path = os.path.join(self.dir, "status.json")
        self.stdout_path = os.path.join(self.dir, "exec.stdout")
        self.stderr_path = os.path.join(self.dir, "exec.stderr")
        self.variables = list(variables)
        if command is None:
            command = [sys.executable, CHILD, self.log, "--vars", ",".join(self.variables),
                       "--mode", mode, "--code", str(code), "--term-code", str(TERM_CODE)]
            if kill_signal is not None:
                command += ["--signal", str(int(kill_signal))]
        args = [coffer_binary(), "exec"]
        if status_file:
            args += ["--status-file", self.status_path]
        self.argv = args + [str(a) for a in exec_args] + ["--"] + list(command)
        self.started_at = time.time()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)
        case.addCleanup(self.cleanup)

    @property
    def pid(self):
        return self.proc.pid

    # -- the child's log --

    def records(self):
        out = []
        for line in read_text(self.log).splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out

    def starts(self):
        return [r for r in self.records() if r.get("event") == "start"]

    def signals(self, pid=None):
        return [r["signal"] for r in self.records()
                if r.get("event") == "signal" and (pid is None or r["pid"] == pid)]

    def wait_starts(self, count, timeout=WAIT_S):
        """Waits until the child has started `count` times; returns the start records."""
        wait_until(lambda: len(self.starts()) >= count or self.proc.poll() is not None, timeout)
        # A child writes its start line before it can exit, and exec exits after its child:
        # once exec has exited, the log is complete.
        starts = self.starts()
        rc = self.proc.poll()
        self.case.assertGreaterEqual(
            len(starts), count, f"the child did not start {count} time(s) within {timeout} s; "
            f"exec {'is running' if rc is None else f'exited with {rc}'}\n{self.diagnostics()}")
        return starts

    def wait_signal(self, name, pid=None, count=1, timeout=WAIT_S):
        wait_until(lambda: self.signals(pid).count(name) >= count, timeout)
        got = self.signals(pid)
        self.case.assertGreaterEqual(got.count(name), count,
                                     f"the child got {got}, not {name}\n{self.diagnostics()}")
        return got

    # -- the status file --

    def status(self):
        try:
            with open(self.status_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_status(self, predicate, what, timeout=WAIT_S):
        def check():
            s = self.status()
            return s if s is not None and predicate(s) else None
        s = wait_until(check, timeout)
        self.case.assertIsNotNone(s, f"status file never showed {what}; last: {self.status()}"
                                     f"\n{self.diagnostics()}")
        return s

    def wait_status_pid(self, pid, timeout=WAIT_S):
        return self.wait_status(lambda s: s.get("pid") == pid, f"pid {pid}", timeout)

    # -- exec itself --

    def output(self):
        return read_text(self.stdout_path) + read_text(self.stderr_path)

    def diagnostics(self):
        return (f"--- exec {self.argv[1:self.argv.index('--')]} ---\n"
                f"--- exec stderr ---\n{read_text(self.stderr_path, 3000)}\n"
                f"--- exec stdout ---\n{read_text(self.stdout_path, 1000)}\n"
                f"--- child log ---\n{read_text(self.log, 2000)}\n"
                f"--- status ---\n{read_text(self.status_path, 2000)}")

    def send(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=WAIT_S):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.case.fail(f"exec did not exit within {timeout} s\n{self.diagnostics()}")

    def assertRunning(self):
        self.case.assertIsNone(self.proc.poll(), f"exec exited\n{self.diagnostics()}")

    def terminate(self):
        """SIGTERM to exec: the child exits with TERM_CODE, and so must exec."""
        self.send(signal.SIGTERM)
        rc = self.wait_exit()
        self.case.assertEqual(rc, TERM_CODE, f"exec's exit code\n{self.diagnostics()}")
        self.assertNoSanitizerReport()
        return rc

    def assertNoSanitizerReport(self):
        err = read_text(self.stderr_path)
        self.case.assertNotIn("Sanitizer", err, err[-4000:])
        self.case.assertNotIn("runtime error:", err, err[-4000:])

    def cleanup(self):
        stop_process(self.proc)
        for rec in self.starts():
            pid = rec.get("pid")
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if b"exec_child.py" in cmdline and self.log.encode() in cmdline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


# ---- a TLS listener the server's CA vouches for, at hosts that are no vault of the server -----

class TrapServer:
    """HTTPS on a loopback port (127.0.0.1 and ::1) with a certificate signed by the server's CA
    for `hosts`.  Records every request; answers one without Authorization with a Key Vault
    challenge naming the real server (bait), and one with Authorization with a secret."""

    def __init__(self, srv, hosts, workdir):
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        key = os.path.join(workdir, "trap-key.pem")
        csr = os.path.join(workdir, "trap.csr")
        cert = os.path.join(workdir, "trap.pem")
        ext = os.path.join(workdir, "trap.ext")
        with open(ext, "w", encoding="utf-8") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n")
        ca_key = os.path.join(srv.data_dir, "tls", "ca-key.pem")
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-subj", f"/CN={hosts[0]}", "-out", csr], capture_output=True, check=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", srv.ca_path, "-CAkey", ca_key,
                        "-CAcreateserial", "-CAserial", os.path.join(workdir, "trap.srl"),
                        "-days", "2", "-sha256", "-extfile", ext, "-out", cert],
                       capture_output=True, check=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        trap = self
        challenge = (f'Bearer authorization="{srv.authority}/{srv.tenant}", '
                     f'resource="{srv.vault_resource}"')

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self):
                with trap.lock:
                    trap.connections += 1
                try:
                    super().handle()
                except (OSError, ssl.SSLError):
                    pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with trap.lock:
                    trap.requests.append({"method": self.command, "path": self.path,
                                          "headers": {k.lower(): v for k, v in
                                                      self.headers.items()},
                                          "body": body})
                if "authorization" not in {k.lower() for k in self.headers}:
                    data = json.dumps({"error": {"code": "Unauthorized",
                                                 "message": "challenge"}}).encode()
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", challenge)
                else:
                    name = self.path.split("?")[0].rstrip("/").split("/")[-1]
                    data = json.dumps({
                        "value": "trap-value-" + name,
                        "id": f"https://{self.headers.get('Host')}/secrets/{name}/"
                              "0123456789abcdef0123456789abcdef",
                        "attributes": {"enabled": True}}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args):
                pass

        class V6Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self.port = free_port()
        self.servers = []
        for cls, addr in ((http.server.ThreadingHTTPServer, "127.0.0.1"), (V6Server, "::1")):
            httpd = cls((addr, self.port), Handler)
            httpd.daemon_threads = True
            # The handshake happens on first read, in the handler's thread.
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                           do_handshake_on_connect=False)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            self.servers.append(httpd)

    def seen(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()


# ---- the shared fixture -------------------------------------------------------------------------

class ExecTestCase(ServerTestCase):
    """A web app "app-exec" with a system-assigned identity that may get and list the dev vault's
    secrets (dev uses access policies)."""

    maxDiff = 6000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        app = cls.coffer_json("webapp", "create", "-n", "app-exec", "-g", RG,
                              "--assign-identity", "[system]")
        cls.principal = app["identity"]["principalId"]
        cls.identity_env = cls.endpoint_env("app-exec")
        cls.grant(cls.principal)

    # -- fixtures --

    @classmethod
    def endpoint_env(cls, app):
        rc, out, err = cls.run_coffer("webapp", "identity", "endpoint", "-n", app, "-g", RG,
                                      "--env")
        if rc != 0:
            raise AssertionError(f"identity endpoint of {app}: {rc}\n{out}\n{err}")
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if set(env) != {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"}:
            raise AssertionError(f"identity endpoint --env printed {out!r}")
        return env

    @classmethod
    def grant(cls, object_id, vault="dev"):
        cls.coffer_json("keyvault", "set-policy", "--name", vault, "--object-id", object_id,
                        "--secret-permissions", "get", "list")

    @classmethod
    def set_secret(cls, name, value, vault="dev"):
        """Sets a secret as the administrator; returns the new version."""
        r = cls.srv.kv("PUT", f"/secrets/{name}", {"value": value}, vault=vault)
        if r.status != 200:
            raise AssertionError(f"PUT secret {vault}/{name}: {r!r}")
        return r.json()["id"].rstrip("/").rsplit("/", 1)[1]

    @classmethod
    def url(cls, name, version="", vault="dev"):
        return (f"https://{vault}.vault.localhost:{cls.srv.port}/secrets/{name}" +
                (f"/{version}" if version else ""))

    @staticmethod
    def value(label):
        return f"{label}-{uuid.uuid4().hex}"

    def exec_env(self, identity_env=None, extra=None, drop=()):
        """exec's environment: the test runner's without AZURE_*, COFFER_*, IDENTITY_* and CA
        settings, plus a workload's identity endpoint, the server's CA, the DNS suffix and the
        authority host -- and no client secret."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
               and k not in ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE",
                             "SSL_CERT_DIR")}
        env.update(self.identity_env if identity_env is None else identity_env)
        env["REQUESTS_CA_BUNDLE"] = self.srv.ca_path
        env["COFFER_VAULT_DNS_SUFFIX"] = self.srv.env["COFFER_VAULT_DNS_SUFFIX"]
        env["AZURE_AUTHORITY_HOST"] = self.srv.env["AZURE_AUTHORITY_HOST"]
        env.update(extra or {})
        for k in drop:
            env.pop(k, None)
        self.assertNotIn("AZURE_CLIENT_SECRET", env)
        return env

    def start_exec(self, refs, exec_args=(), identity_env=None, extra_env=None, drop=(),
                   also=(), **kw):
        """Runs exec with `refs` (name -> value) in the environment; the child reports those
        variables and the ones in `also`."""
        env = self.exec_env(identity_env, extra_env, drop)
        env.update(refs)
        return ExecRun(self, env, list(refs) + list(also), exec_args, **kw)

    def run_until_status(self, refs, **kw):
        """Starts exec, waits for the child and for the status file naming it; returns
        (run, child start record, status)."""
        run = self.start_exec(refs, **kw)
        start = run.wait_starts(1)[0]
        status = run.wait_status_pid(start["pid"])
        return run, start, status

    # -- the audit log: has exec opened its watch stream? --

    def watch_records(self, oid):
        out = []
        log_dir = server_audit_dir(self.srv.data_dir)
        for path in sorted(glob.glob(os.path.join(log_dir, "audit-*.jsonl"))):
            for line in read_text(path).splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if (rec.get("operationName") == "SecretWatch" and
                        rec.get("properties", {}).get("httpStatusCode") == 200 and
                        rec.get("identity", {}).get("claim", {}).get(CLAIM_URI) == oid):
                    out.append(rec)
        return out

    def wait_watching(self, run, oid, before):
        """Waits until exec (identity `oid`) has a watch stream open that was not there before:
        a change made after that reaches it (docs/events.md)."""
        got = wait_until(lambda: len(self.watch_records(oid)) > before)
        self.assertTrue(got, "exec never opened the vault's watch stream (no SecretWatch "
                             f"record for its identity)\n{run.diagnostics()}")

    # -- assertions --

    def refs_by_name(self, status):
        self.assertIsInstance(status.get("references"), list, status)
        out = {}
        for ref in status["references"]:
            self.assertIsInstance(ref, dict, status)
            self.assertNotIn(ref.get("name"), out, f"reference listed twice: {status}")
            out[ref.get("name")] = ref
        return out

    def assertStatusShape(self, status):
        self.assertTrue(TIME_RE.match(str(status.get("updated"))), status)
        self.assertIsInstance(status.get("pid"), int, status)
        self.assertIsInstance(status.get("restarts"), int, status)
        for ref in self.refs_by_name(status).values():
            self.assertLessEqual(REF_KEYS, set(ref), ref)
            self.assertIn(ref["status"], STATUSES, ref)
            self.assertIsInstance(ref["details"], str, ref)
            if ref["status"] != "Resolved":
                self.assertTrue(ref["details"], f"an unresolved reference says why: {ref}")

    def assertResolved(self, status, name, vault, secret, version, resolved_version):
        ref = self.refs_by_name(status).get(name)
        self.assertIsNotNone(ref, f"{name} missing from {status}")
        self.assertEqual(ref["status"], "Resolved", ref)
        self.assertEqual(ref["vaultName"].lower(), vault.lower(), ref)
        self.assertEqual(ref["secretName"].lower(), secret.lower(), ref)
        self.assertEqual(ref["secretVersion"], version, ref)
        self.assertEqual(ref["resolvedVersion"], resolved_version, ref)
        self.assertTrue(TIME_RE.match(str(ref["lastResolved"])), ref)

    def assertUnresolved(self, status, name, expected=None):
        ref = self.refs_by_name(status).get(name)
        self.assertIsNotNone(ref, f"{name} missing from {status}")
        self.assertNotEqual(ref["status"], "Resolved", ref)
        if expected is not None:
            self.assertEqual(ref["status"], expected, ref)
        return ref

    def assertNoValues(self, run, values, also=()):
        """No secret value in exec's output, the status file or `coffer exec --status`; no
        token or identity header in exec's output."""
        texts = {"exec output": run.output(), "status file": read_text(run.status_path)}
        for where, text in texts.items():
            for v in values:
                self.assertNotIn(v, text, f"a secret value appears in the {where}")
            self.assertNotIn("eyJ", text, f"something like a JWT appears in the {where}")
            self.assertNotIn(self.identity_env["IDENTITY_HEADER"], text,
                             f"the identity header appears in the {where}")
            for a in also:
                self.assertNotIn(a, text, f"{a!r} appears in the {where}")


# ---- resolution -----------------------------------------------------------------------------------

class ExecResolutionTests(ExecTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.one_old, cls.one = cls.value("one-old"), cls.value("one")
        cls.one_old_v = cls.set_secret("exec-one", cls.one_old)
        cls.one_v = cls.set_secret("exec-one", cls.one)
        cls.two_old, cls.two = cls.value("two-old"), cls.value("two")
        cls.two_old_v = cls.set_secret("exec-two", cls.two_old)
        cls.two_v = cls.set_secret("exec-two", cls.two)

    def test_both_forms_with_and_without_a_version_resolve_and_other_values_pass(self):
        refs = {
            "URI_LATEST": uri_ref(self.url("exec-one")),
            "URI_VERSION": uri_ref(self.url("exec-one", self.one_old_v)),
            "URI_TRAILING_SLASH": uri_ref(self.url("exec-one") + "/"),
            "NAME_LATEST": name_ref("dev", "exec-two"),
            "NAME_VERSION": name_ref("dev", "exec-two", self.two_old_v),
            "CASE_VARIANT": f"@microsoft.keyvault( vaultname = dev ; SECRETNAME=exec-two ; )",
            "URI_UPPER": uri_ref(self.url("exec-one").upper().replace("HTTPS://", "https://")),
        }
        plain = {
            "PLAIN": "hello world",
            "EMPTY": "",
            "WITH_SYMBOLS": "a=b;c=(d) @Microsoft",
            "NO_AT": "Microsoft.KeyVault(VaultName=dev;SecretName=exec-one)",
            "OTHER_PREFIX": "@Microsoft.AppConfiguration(Endpoint=https://x)",
            "UTF8": "gr\u00fc\u00dfe \u2603",
        }
        run, start, status = self.run_until_status({**refs, **plain})
        env = start["env"]
        self.assertEqual(env["URI_LATEST"], self.one)
        self.assertEqual(env["URI_VERSION"], self.one_old)
        self.assertEqual(env["URI_TRAILING_SLASH"], self.one)
        self.assertEqual(env["NAME_LATEST"], self.two)
        self.assertEqual(env["NAME_VERSION"], self.two_old)
        self.assertEqual(env["CASE_VARIANT"], self.two)
        self.assertEqual(env["URI_UPPER"], self.one)
        for k, v in plain.items():
            self.assertEqual(env[k], v, f"{k} must pass through untouched")

        self.assertStatusShape(status)
        self.assertEqual(status["pid"], start["pid"])
        self.assertEqual(status["restarts"], 0)
        by_name = self.refs_by_name(status)
        self.assertEqual(set(by_name), set(refs), "exactly the references are listed")
        self.assertResolved(status, "URI_LATEST", "dev", "exec-one", "", self.one_v)
        self.assertResolved(status, "URI_VERSION", "dev", "exec-one", self.one_old_v,
                            self.one_old_v)
        self.assertResolved(status, "URI_TRAILING_SLASH", "dev", "exec-one", "", self.one_v)
        self.assertResolved(status, "NAME_LATEST", "dev", "exec-two", "", self.two_v)
        self.assertResolved(status, "NAME_VERSION", "dev", "exec-two", self.two_old_v,
                            self.two_old_v)
        self.assertResolved(status, "CASE_VARIANT", "dev", "exec-two", "", self.two_v)
        self.assertResolved(status, "URI_UPPER", "dev", "exec-one", "", self.one_v)
        mode = stat.S_IMODE(os.stat(run.status_path).st_mode)
        self.assertEqual(mode, 0o600, f"status file mode {oct(mode)}")
        self.assertNoValues(run, [self.one, self.one_old, self.two, self.two_old])
        run.assertRunning()
        run.terminate()

    def test_the_vault_name_form_finds_the_vault_by_suffix_option_or_default(self):
        refs = {"BY_NAME": name_ref("dev", "exec-one")}
        port = self.srv.port
        for label, args, drop in (
                ("--vault-dns-suffix with a port", ["--vault-dns-suffix", f"vault.localhost:{port}"],
                 ["COFFER_VAULT_DNS_SUFFIX"]),
                ("--vault-dns-suffix without a port, the authority's port",
                 ["--vault-dns-suffix", "vault.localhost"], ["COFFER_VAULT_DNS_SUFFIX"]),
                ("the default suffix, the authority's port", [], ["COFFER_VAULT_DNS_SUFFIX"]),
                ("$COFFER_VAULT_DNS_SUFFIX", [], [])):
            with self.subTest(label):
                run, start, status = self.run_until_status(refs, exec_args=args, drop=drop)
                self.assertEqual(start["env"]["BY_NAME"], self.one, run.diagnostics())
                self.assertResolved(status, "BY_NAME", "dev", "exec-one", "", self.one_v)
                run.terminate()

    def test_missing_secrets_versions_and_vaults_stay_literal(self):
        missing_version = uuid.uuid4().hex
        refs = {
            "MISSING_URI": uri_ref(self.url("exec-no-such-secret")),
            "MISSING_NAME": name_ref("dev", "exec-no-such-either"),
            "MISSING_VERSION_URI": uri_ref(self.url("exec-one", missing_version)),
            "MISSING_VERSION_NAME": name_ref("dev", "exec-two", missing_version),
            "MISSING_VAULT": name_ref("nosuchvault", "exec-one"),
            "GOOD": name_ref("dev", "exec-one"),
        }
        run, start, status = self.run_until_status(refs)
        env = start["env"]
        for k, v in refs.items():
            if k != "GOOD":
                self.assertEqual(env[k], v, f"{k} must stay literal")
        self.assertEqual(env["GOOD"], self.one, "the child starts with what resolved")
        self.assertStatusShape(status)
        self.assertUnresolved(status, "MISSING_URI", "SecretNotFound")
        self.assertUnresolved(status, "MISSING_NAME", "SecretNotFound")
        self.assertUnresolved(status, "MISSING_VERSION_URI", "SecretVersionNotFound")
        self.assertUnresolved(status, "MISSING_VERSION_NAME", "SecretVersionNotFound")
        self.assertUnresolved(status, "MISSING_VAULT", "VaultNotFound")
        self.assertResolved(status, "GOOD", "dev", "exec-one", "", self.one_v)
        ref = self.refs_by_name(status)["MISSING_VERSION_URI"]
        self.assertEqual(ref["secretVersion"], missing_version, ref)
        self.assertNoValues(run, [self.one])
        run.assertRunning()
        run.terminate()

    def test_a_secret_the_identity_may_not_read_stays_literal(self):
        # An RBAC vault: the app's identity holds Key Vault Secrets User on one secret only.
        vault = self.coffer_json("keyvault", "create", "-n", "execrbac", "-g", RG)
        allowed, denied = self.value("allowed"), self.value("denied")
        allowed_v = self.set_secret("allowed", allowed, vault="execrbac")
        self.set_secret("denied", denied, vault="execrbac")
        self.coffer_json("role", "assignment", "create", "--role", "Key Vault Secrets User",
                         "--assignee-object-id", self.principal,
                         "--scope", vault["id"] + "/secrets/allowed")
        refs = {"A": name_ref("execrbac", "allowed"),
                "B": uri_ref(self.url("denied", vault="execrbac")),
                "B_BY_NAME": name_ref("execrbac", "denied")}
        run, start, status = self.run_until_status(refs)
        self.assertEqual(start["env"]["A"], allowed)
        self.assertEqual(start["env"]["B"], refs["B"])
        self.assertEqual(start["env"]["B_BY_NAME"], refs["B_BY_NAME"])
        self.assertStatusShape(status)
        self.assertResolved(status, "A", "execrbac", "allowed", "", allowed_v)
        self.assertUnresolved(status, "B", "AccessToKeyVaultDenied")
        self.assertUnresolved(status, "B_BY_NAME", "AccessToKeyVaultDenied")
        self.assertNoValues(run, [allowed, denied])
        run.terminate()

    def test_a_user_assigned_identity_by_resource_id_or_client_id(self):
        uai = self.coffer_json("identity", "create", "-n", "uai-exec", "-g", RG)
        app = self.coffer_json("webapp", "create", "-n", "app-exec-uai", "-g", RG,
                               "--assign-identity", "[system]", uai["id"])
        self.assertIn("UserAssigned", app["identity"]["type"])
        self.grant(uai["principalId"])  # the user-assigned identity only
        identity_env = self.endpoint_env("app-exec-uai")
        refs = {"SECRET": uri_ref(self.url("exec-one")), "PINNED": name_ref("dev", "exec-two",
                                                                           self.two_old_v)}
        for label, selector in (("resource id", uai["id"]), ("client id", uai["clientId"])):
            with self.subTest(label):
                run, start, status = self.run_until_status(
                    refs, exec_args=["--identity", selector], identity_env=identity_env)
                self.assertEqual(start["env"]["SECRET"], self.one, run.diagnostics())
                self.assertEqual(start["env"]["PINNED"], self.two_old, run.diagnostics())
                self.assertResolved(status, "SECRET", "dev", "exec-one", "", self.one_v)
                self.assertNoValues(run, [self.one, self.two_old])
                run.terminate()
        with self.subTest("the system identity, which has no access"):
            run, start, status = self.run_until_status(refs, identity_env=identity_env)
            self.assertEqual(start["env"]["SECRET"], refs["SECRET"])
            self.assertEqual(start["env"]["PINNED"], refs["PINNED"])
            self.assertUnresolved(status, "SECRET", "AccessToKeyVaultDenied")
            self.assertUnresolved(status, "PINNED", "AccessToKeyVaultDenied")
            run.terminate()

    def test_hostile_references_stay_literal_and_exec_survives(self):
        port = self.srv.port
        base = f"https://dev.vault.localhost:{port}"
        workdir = tempfile.mkdtemp(dir=self.srv.root)
        pwned = os.path.join(workdir, "pwned")
        trap = TrapServer(self.srv, ["evil.localhost", "dev.vault.localhost.evil.localhost"],
                          workdir)
        self.addCleanup(trap.close)
        invalid = {
            "CTRL_SOH": uri_ref(f"{base}/secrets/exec-one\x01"),
            "CTRL_NEWLINE": f"@Microsoft.KeyVault(VaultName=dev;\nSecretName=exec-one)",
            "CTRL_ESCAPE": f"@Microsoft.KeyVault(VaultName=dev;SecretName=exec-one\x1b[2J)",
            "CTRL_DEL": f"@Microsoft.KeyVault(VaultName=dev\x7f;SecretName=exec-one)",
            "CTRL_TAB": f"@Microsoft.KeyVault(VaultName=dev;\tSecretName=exec-one)",
            "OVERSIZED": uri_ref(f"{base}/secrets/" + "a" * 5000),
            "OVERSIZED_PADDED": "@Microsoft.KeyVault(VaultName=dev;" + ";" * 5000 +
                                "SecretName=exec-one)",
            "VAULT_DOTDOT": "@Microsoft.KeyVault(VaultName=../x;SecretName=exec-one)",
            "VAULT_HOSTLIKE": "@Microsoft.KeyVault(VaultName=evil.localhost:1;SecretName=x)",
            "NAME_SLASH": "@Microsoft.KeyVault(VaultName=dev;SecretName=a/b)",
            "NAME_DOTDOT": uri_ref(f"{base}/secrets/.."),
            "PATH_ESCAPE": uri_ref(f"{base}/secrets/../keys/k"),
            "PATH_ENCODED": uri_ref(f"{base}/secrets/exec%2Fone"),
            "VERSION_TRAVERSAL": "@Microsoft.KeyVault(VaultName=dev;SecretName=exec-one;"
                                 "SecretVersion=../../x)",
            "ONLY_SEMICOLONS": "@Microsoft.KeyVault(;;;)",
            "EMPTY": "@Microsoft.KeyVault()",
            "UNBALANCED_OPEN": "@Microsoft.KeyVault(VaultName=dev;SecretName=exec-one",
            "UNBALANCED_CLOSE": "@Microsoft.KeyVault(VaultName=dev;SecretName=exec-one))",
            "NESTED": "@Microsoft.KeyVault(VaultName=dev;SecretName=@Microsoft.KeyVault("
                      "VaultName=dev;SecretName=exec-one))",
            "BOTH_FORMS": f"@Microsoft.KeyVault(SecretUri={base}/secrets/exec-one;"
                          "VaultName=dev;SecretName=exec-one)",
            "TWICE": "@Microsoft.KeyVault(VaultName=dev;VaultName=dev;SecretName=exec-one)",
            "UNKNOWN_PARAM": "@Microsoft.KeyVault(VaultName=dev;SecretName=exec-one;"
                             "Identity=/subscriptions/x)",
            "NOT_NAME_VALUE": "@Microsoft.KeyVault(exec-one)",
            "NAME_ONLY": "@Microsoft.KeyVault(SecretName=exec-one)",
            "PLAIN_HTTP": uri_ref(f"http://dev.vault.localhost:{port}/secrets/exec-one"),
            "QUERY": uri_ref(f"{base}/secrets/exec-one?api-version=1"),
            "FRAGMENT": uri_ref(f"{base}/secrets/exec-one#x"),
            "USERINFO": uri_ref(f"https://user@dev.vault.localhost:{port}/secrets/exec-one"),
            "USERINFO_TRAP": uri_ref(f"https://dev.vault.localhost:{port}@evil.localhost:"
                                     f"{trap.port}/secrets/exec-one"),
            "BACKSLASH": uri_ref(f"https://evil.localhost:{trap.port}\\@dev.vault.localhost:"
                                 f"{port}/secrets/exec-one"),
            "NOT_SECRETS": uri_ref(f"{base}/keys/exec-one"),
            "SPACES_IN_URI": uri_ref(f"{base}/secrets/exec one"),
            "SHELL": f"@Microsoft.KeyVault(VaultName=dev;SecretName=$(touch {pwned}))",
        }
        off_server = {
            "EVIL_EXAMPLE": uri_ref("https://evil.example/secrets/x"),
            "EVIL_TRAP": uri_ref(f"https://evil.localhost:{trap.port}/secrets/exec-one"),
            "EVIL_SUFFIX_TRAP": uri_ref(
                f"https://dev.vault.localhost.evil.localhost:{trap.port}/secrets/exec-one"),
        }
        refs = {**invalid, **off_server, "GOOD": name_ref("dev", "exec-one")}
        run = self.start_exec(refs)
        start = run.wait_starts(1, timeout=2 * WAIT_S)[0]
        status = run.wait_status_pid(start["pid"], timeout=2 * WAIT_S)
        env = start["env"]
        self.assertEqual(env["GOOD"], self.one, "the good reference next to them resolves")
        self.assertStatusShape(status)
        by_name = self.refs_by_name(status)
        for name, value in invalid.items():
            with self.subTest(name):
                self.assertEqual(env[name], value, f"{name} must stay literal")
                self.assertIn(name, by_name, f"{name} is a reference; it must be listed")
                self.assertEqual(by_name[name]["status"], "InvalidSyntax", by_name[name])
        for name, value in off_server.items():
            with self.subTest(name):
                self.assertEqual(env[name], value, f"{name} must stay literal")
                self.assertUnresolved(status, name)
        for req in trap.seen():
            self.assertNotIn("authorization", req["headers"], f"a token reached the trap: {req}")
            self.assertNotIn(self.identity_env["IDENTITY_HEADER"], json.dumps(req["headers"]),
                             "the identity header reached the trap")
        self.assertFalse(os.path.exists(pwned), "something ran a shell on a value")
        self.assertNotIn(self.one, read_text(run.status_path))
        run.assertRunning()
        run.terminate()

    def test_a_secret_uri_at_another_port_of_a_vault_host_gets_no_token(self):
        # dev.vault.localhost, but a port that is not this server's: no vault of this server.
        trap = TrapServer(self.srv, ["dev.vault.localhost"], tempfile.mkdtemp(dir=self.srv.root))
        self.addCleanup(trap.close)
        refs = {"OTHER_PORT": uri_ref(f"https://dev.vault.localhost:{trap.port}/secrets/exec-one"),
                "GOOD": uri_ref(self.url("exec-one"))}
        run = self.start_exec(refs)
        start = run.wait_starts(1, timeout=2 * WAIT_S)[0]
        status = run.wait_status_pid(start["pid"], timeout=2 * WAIT_S)
        self.assertEqual(start["env"]["GOOD"], self.one)
        self.assertEqual(start["env"]["OTHER_PORT"], refs["OTHER_PORT"])
        self.assertUnresolved(status, "OTHER_PORT")
        for req in trap.seen():
            self.assertNotIn("authorization", req["headers"], f"a token reached the trap: {req}")
        run.terminate()

    def test_status_prints_the_status_file(self):
        refs = {"ONE": uri_ref(self.url("exec-one")), "MISSING": name_ref("dev", "exec-absent")}
        run, start, status = self.run_until_status(refs)
        p = subprocess.run([coffer_binary(), "exec", "--status", "--status-file",
                            run.status_path], env=self.exec_env(), capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, f"{out}\n{p.stderr.decode('utf-8', 'replace')}")
        printed = json.loads(out)
        self.assertEqual(printed, run.status(), "--status prints the status file")
        self.assertEqual(printed["pid"], start["pid"])
        self.assertEqual(self.refs_by_name(printed)["ONE"]["status"], "Resolved")
        self.assertEqual(self.refs_by_name(printed)["MISSING"]["status"], "SecretNotFound")
        self.assertNotIn(self.one, out)
        run.terminate()
        # A status file that does not exist is an error, not an empty status.
        missing = os.path.join(run.dir, "no-such-status.json")
        p = subprocess.run([coffer_binary(), "exec", "--status", "--status-file", missing],
                           env=self.exec_env(), capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0, p)
        self.assertTrue(p.stderr.strip(), p)


# ---- rotation ---------------------------------------------------------------------------------------

class ExecRotationTests(ExecTestCase):

    def assertReaped(self, run, old_pid):
        """The old child is gone: neither a zombie nor a child of exec any more."""
        def gone():
            st = proc_stat(old_pid)
            return st is None or (st[0] != "Z" and st[1] != run.pid)
        self.assertTrue(wait_until(gone, WAIT_S),
                        f"old child {old_pid} still there: {proc_stat(old_pid)}")
        kids = children_of(run.pid)
        self.assertNotIn("Z", kids.values(), f"exec has zombie children: {kids}")

    def rotate_with_restart(self, name, exec_args, watch):
        old, new = self.value(f"{name}-1"), self.value(f"{name}-2")
        v1 = self.set_secret(name, old)
        pinned = self.value(f"{name}-pinned")
        pinned_v = self.set_secret(f"{name}-pinned", pinned)
        self.set_secret(f"{name}-pinned", self.value("newer"))  # the pin keeps the old one
        refs = {"ROTATED": uri_ref(self.url(name)),
                "PINNED": name_ref("dev", f"{name}-pinned", pinned_v)}
        watches = len(self.watch_records(self.principal))
        run = self.start_exec(refs, exec_args=exec_args, also=["PLAIN"],
                              extra_env={"PLAIN": "kept"})
        first = run.wait_starts(1)[0]
        self.assertEqual(first["env"], {"ROTATED": old, "PINNED": pinned, "PLAIN": "kept"})
        run.wait_status_pid(first["pid"])
        if watch:
            self.wait_watching(run, self.principal, watches)

        v2 = self.set_secret(name, new)
        starts = run.wait_starts(2)
        second = starts[1]
        self.assertEqual(second["env"], {"ROTATED": new, "PINNED": pinned, "PLAIN": "kept"})
        self.assertNotEqual(second["pid"], first["pid"])
        self.assertIn("SIGTERM", run.signals(first["pid"]), "the old child gets SIGTERM")
        time.sleep(QUIET_S)
        self.assertEqual(len(run.starts()), 2, f"one change, one restart\n{run.diagnostics()}")
        run.assertRunning()
        self.assertReaped(run, first["pid"])
        kids = children_of(run.pid)
        self.assertEqual(set(kids), {second["pid"]}, f"exec's only child is the new one: {kids}")
        status = run.wait_status(lambda s: s.get("pid") == second["pid"], "the new pid")
        self.assertEqual(status["restarts"], 1, status)
        self.assertResolved(status, "ROTATED", "dev", name, "", v2)
        self.assertResolved(status, "PINNED", "dev", f"{name}-pinned", pinned_v, pinned_v)
        self.assertNotEqual(v1, v2)
        self.assertNoValues(run, [old, new, pinned])
        run.terminate()
        self.assertNoValues(run, [old, new, pinned])
        return run, watches

    def test_a_new_version_restarts_the_child_once_through_the_watch_stream(self):
        self.rotate_with_restart("rot-watch", ["--on-change", "restart",
                                               "--min-restart-interval", "1"], watch=True)

    def test_a_new_version_restarts_the_child_once_by_polling_without_watch(self):
        run, watches = self.rotate_with_restart(
            "rot-poll", ["--no-watch", "--refresh-interval", "1", "--min-restart-interval", "1"],
            watch=False)
        self.assertEqual(len(self.watch_records(self.principal)), watches,
                         "--no-watch opened a watch stream")

    def test_on_change_signal_sends_one_signal_and_keeps_the_child(self):
        old, new = self.value("sig-1"), self.value("sig-2")
        self.set_secret("rot-signal", old)
        watches = len(self.watch_records(self.principal))
        run = self.start_exec({"ROTATED": name_ref("dev", "rot-signal")},
                              exec_args=["--on-change", "signal", "--signal", "SIGUSR1",
                                         "--min-restart-interval", "1"])
        first = run.wait_starts(1)[0]
        self.assertEqual(first["env"]["ROTATED"], old)
        run.wait_status_pid(first["pid"])
        self.wait_watching(run, self.principal, watches)

        v2 = self.set_secret("rot-signal", new)
        run.wait_signal("SIGUSR1", first["pid"])
        time.sleep(QUIET_S)
        self.assertEqual(run.signals(), ["SIGUSR1"], f"exactly one SIGUSR1\n{run.diagnostics()}")
        self.assertEqual(len(run.starts()), 1, "the child is not restarted")
        self.assertEqual(proc_stat(first["pid"]), ("S", run.pid), "the same child runs on")
        status = run.wait_status(
            lambda s: self.refs_by_name(s).get("ROTATED", {}).get("resolvedVersion") == v2,
            "the new version (a reloading child reads it there)")
        self.assertEqual(status["pid"], first["pid"])
        self.assertEqual(status["restarts"], 0, status)
        self.assertNoValues(run, [old, new])
        run.terminate()

    def test_a_burst_of_changes_inside_the_interval_restarts_once_with_the_last_value(self):
        interval = 3
        self.set_secret("rot-burst", self.value("burst-0"))
        watches = len(self.watch_records(self.principal))
        run = self.start_exec({"ROTATED": uri_ref(self.url("rot-burst"))},
                              exec_args=["--min-restart-interval", str(interval)])
        first = run.wait_starts(1)[0]
        run.wait_status_pid(first["pid"])
        self.wait_watching(run, self.principal, watches)

        values = [self.value(f"burst-{i}") for i in range(1, 6)]
        t0 = time.monotonic()
        versions = [self.set_secret("rot-burst", v) for v in values]

        def last_resolved(s):
            ref = self.refs_by_name(s).get("ROTATED", {})
            return s.get("restarts", 0) >= 1 and ref.get("resolvedVersion") == versions[-1]
        status = run.wait_status(last_resolved, "a restart with the last version",
                                 timeout=WAIT_S + interval)
        watched = time.monotonic() - t0
        # A restart comes an interval after the change that asks for it and an interval after
        # the last restart, and every change came after t0: within the `watched` seconds, at
        # most this many fit.  When exec (and this machine) keep up, that is one restart for
        # all five changes; on a machine so slow that the writes or their events straddle an
        # interval, more restarts are right, never more than one per interval.
        most = int(watched // interval)
        self.assertGreaterEqual(most, 1, f"a restart {watched:.1f} s after the first change, "
                                         f"before the {interval} s interval\n{run.diagnostics()}")
        self.assertLessEqual(status["restarts"], most,
                             f"{status['restarts']} restarts within {watched:.1f} s: more than "
                             f"one per {interval} s interval\n{run.diagnostics()}")
        starts = run.wait_starts(status["restarts"] + 1)  # exec writes the status first
        self.assertEqual(len(starts), status["restarts"] + 1, run.diagnostics())
        self.assertEqual(starts[-1]["pid"], status["pid"])
        self.assertEqual(starts[-1]["env"]["ROTATED"], values[-1])
        self.assertResolved(status, "ROTATED", "dev", "rot-burst", "", versions[-1])
        # Nothing is left over: no event can show that a restart does not come, so this waits
        # out the earliest moment one could (one interval) and a little more.  It cannot fail
        # a correct exec; it catches one that restarts once per change.
        time.sleep(interval + QUIET_S)
        self.assertEqual(len(run.starts()), len(starts),
                         f"a restart with nothing changed\n{run.diagnostics()}")
        self.assertReaped(run, first["pid"])
        self.assertNoValues(run, values)
        run.terminate()


# ---- the child process ------------------------------------------------------------------------------

class ExecProcessTests(ExecTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secret = cls.value("proc")
        cls.set_secret("exec-proc", cls.secret)

    def refs(self):
        return {"SECRET": name_ref("dev", "exec-proc")}

    def test_signals_sent_to_exec_reach_the_child_and_exec_exits_with_its_code(self):
        run = self.start_exec(self.refs())
        start = run.wait_starts(1)[0]
        self.assertEqual(start["env"]["SECRET"], self.secret)
        self.assertEqual(start["ppid"], run.pid, "the child is exec's own")
        sent = []
        for sig in (signal.SIGHUP, signal.SIGUSR2, signal.SIGUSR1, signal.SIGINT, signal.SIGQUIT,
                    signal.SIGWINCH, signal.SIGHUP):
            with self.subTest(sig.name):
                run.send(sig)
                sent.append(sig.name)
                run.wait_signal(sig.name, start["pid"], count=sent.count(sig.name))
                run.assertRunning()
        # SIGTERM ends the child, and it comes after the others: a signal forwarded twice or out
        # of order shows in the list the child leaves.
        run.send(signal.SIGTERM)
        rc = run.wait_exit()
        self.assertEqual(run.signals(), sent + ["SIGTERM"], "each signal forwarded once, in order")
        self.assertEqual(rc, TERM_CODE, run.diagnostics())
        run.assertNoSanitizerReport()
        self.assertEqual(len(run.starts()), 1)
        self.assertIsNone(proc_stat(start["pid"]), "the child was reaped")
        self.assertNoValues(run, [self.secret])

    def test_exec_exits_with_the_childs_exit_code(self):
        for code in (0, 7, 255):
            with self.subTest(code=code):
                run = self.start_exec(self.refs(), mode="exit", code=code)
                rc = run.wait_exit()
                self.assertEqual(rc, code, run.diagnostics())
                self.assertEqual(len(run.starts()), 1)
                self.assertEqual(run.starts()[0]["env"]["SECRET"], self.secret)
                run.assertNoSanitizerReport()

    def test_a_child_ended_by_a_signal_gives_128_plus_its_number(self):
        # (No SIGSEGV or SIGABRT: they would leave core files behind.)
        for sig in (signal.SIGKILL, signal.SIGUSR1, signal.SIGTERM):
            with self.subTest(sig.name):
                run = self.start_exec(self.refs(), mode="kill", kill_signal=sig)
                rc = run.wait_exit()
                self.assertEqual(rc, 128 + int(sig), run.diagnostics())
                self.assertEqual(len(run.starts()), 1)
                run.assertNoSanitizerReport()

    def test_a_command_that_is_missing_gives_127_and_one_that_cannot_run_126(self):
        workdir = tempfile.mkdtemp(dir=self.srv.root)
        not_executable = os.path.join(workdir, "script.sh")
        with open(not_executable, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(not_executable, 0o644)
        for label, command, expected in (
                ("a missing path", [os.path.join(workdir, "no-such-program")], 127),
                ("a name not on PATH", ["coffer-exec-no-such-command-" + uuid.uuid4().hex], 127),
                ("a file without execute permission", [not_executable], 126),
                ("a directory", [workdir], 126)):
            with self.subTest(label):
                run = self.start_exec(self.refs(), command=command)
                rc = run.wait_exit()
                self.assertEqual(rc, expected, run.diagnostics())
                run.assertNoSanitizerReport()
                self.assertNotIn(self.secret, run.output())


if __name__ == "__main__":
    import unittest
    unittest.main()
