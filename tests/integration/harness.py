"""Test harness for the Coffer integration tests: the real `coffer` binary on loopback.

Standard library only (Debian's /usr/bin/python3).  The binary is $COFFER_BIN (CTest sets it);
without it ../../build/coffer relative to this file is used.

This is the one server launcher of the Python suites: tests/integration imports it, and so does
tests/sdk-py (through sys.path; launch_server() there).  tests/sdk-js/coffer-server.mjs is its
JavaScript twin and starts the server the same way; a change to one is made to both:
  * command: `coffer server --dev --data-dir <tmp>/data --port <port>`; the server makes the data
    directory itself; COFFER_MASTER_KEY is removed from its environment (the dev server keeps its
    master key in the data directory);
  * port: free on both 127.0.0.1 and ::1; when another process takes it before the server binds
    it ("already in use"), a new port is tried, up to 5 starts;
  * ready: ca.pem and dev.env exist and GET https://localhost:<port>/healthz, trusting only the
    server's CA, answers 200 -- waited for at most READY_TIMEOUT_S, a bound and never a
    performance claim; a server that exits first fails the start with its stderr;
  * dev.env must name AZURE_TENANT_ID (the tenant's alias "adfs"), COFFER_TENANT_ID (its id),
    AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST, COFFER_SUBSCRIPTION_ID and
    COFFER_VAULT_URL;
  * stop: SIGTERM by PID, SIGKILL after STOP_TIMEOUT_S (recorded: killed_hard); cleanup stops it
    and removes the temporary directory, also when the start failed.

CofferServer runs `coffer server --dev` in a fresh temporary directory and talks to it:
  * vault requests go to https://dev.vault.localhost:<port> (nss-myhostname resolves *.localhost),
  * token and management requests go to https://localhost:<port>,
  * raw TLS sockets let tests send hand-crafted bytes,
  * the `coffer keyvault ...` CLI runs with the server's dev.env in its environment,
  * forge_token() signs JWTs with the server's own signing key so that tests can vary one claim.
Every process the harness starts is stopped by PID; the temporary directory is removed.

Waits: wait_until() polls for an event with a generous bound; the bound is when to give up, never
a performance claim, and no test asserts on how long something took (timing targets live in
bench/).

Skips: a test that cannot run here (no root for a chown to another uid, no sdk_probe) says why in
its skip reason.  Run through CTest, each suite's runner (run_suite.py) prints every skip and fails
the CTest test when it has any, unless COFFER_IT_ALLOW_SKIPS=1 (tests/README.md).
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# What every dev server writes to dev.env.
DEV_ENV_KEYS = ("AZURE_TENANT_ID", "COFFER_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                "AZURE_AUTHORITY_HOST", "COFFER_SUBSCRIPTION_ID", "COFFER_VAULT_URL")
KV_API = "7.5"
ARM_API = "2023-07-01"


def wait_until(fn, timeout=60.0, interval=0.05):
    """Polls fn() until it returns something true; returns that (or the last falsy value).
    `timeout` bounds the wait; it is never a performance claim."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def terminate(proc):
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Returns (exit code, killed_hard)."""
    killed_hard = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            killed_hard = True
            proc.kill()
            proc.wait()
    return proc.returncode, killed_hard


def stop_process(proc):
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Returns the exit code."""
    return terminate(proc)[0]


def coffer_binary():
    path = os.environ.get("COFFER_BIN") or os.path.join(HERE, "..", "..", "build", "coffer")
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise RuntimeError(f"coffer binary not found at {path} (set COFFER_BIN)")
    return path


def server_audit_dir(data_dir):
    """A server's own audit log: <data-dir>/audit/<its server id> (docs/audit.md)."""
    with open(os.path.join(data_dir, "server-id"), encoding="ascii") as f:
        return os.path.join(data_dir, "audit", f.read().strip())


def free_port():
    """A TCP port free on both loopback addresses the server binds (127.0.0.1 and ::1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("could not find a TCP port free on both 127.0.0.1 and ::1")


def parse_env_file(text):
    """Parses `export KEY=value` lines into a dict."""
    env = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*$", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    text += "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode())


def jwt_parts(token):
    """(header dict, payload dict) of a JWT, unverified."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def read_text(path, limit=None):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    if limit is not None and len(text) > limit:
        return "..." + text[-limit:]
    return text


class Response:
    """status, headers (lower-case names), raw body bytes; json() parses the body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except Exception:  # noqa: BLE001 - diagnostics only
            return None

    def __iter__(self):  # allows `status, headers, body = resp`
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        body = self.body[:600].decode("utf-8", "replace")
        return f"<HTTP {self.status} {body!r}>"


class CofferServer:
    """A `coffer server --dev` process in its own temporary directory.

    start() waits for /healthz; stop() sends SIGTERM (SIGKILL after STOP_TIMEOUT_S); kill()
    sends SIGKILL; start() again restarts on the same data directory and port.  cleanup() stops
    and removes everything and is registered by the test case helpers.
    """

    def __init__(self, extra_args=(), env=None):
        self.root = tempfile.mkdtemp(prefix="coffer-it-")
        self.data_dir = os.path.join(self.root, "data")
        self.ca_path = os.path.join(self.data_dir, "tls", "ca.pem")
        self.dev_env_path = os.path.join(self.data_dir, "dev.env")
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.port = None
        self.proc = None
        self.killed_hard = False  # the last stop needed SIGKILL
        self.starts = 0
        self.env = {}
        self.log_paths = []
        self._token_cache = {}
        self._ctx = None

    # ---- process control -------------------------------------------------------------------

    @property
    def stdout_path(self):
        return os.path.join(self.root, f"server-{self.starts}.stdout.log")

    @property
    def stderr_path(self):
        return os.path.join(self.root, f"server-{self.starts}.stderr.log")

    def start(self, extra_args=None, env=None, port=None):
        """Starts (or restarts) the server; the port is kept across restarts."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        args = self.extra_args if extra_args is None else list(extra_args)
        proc_env = dict(os.environ)
        proc_env.pop("COFFER_MASTER_KEY", None)
        proc_env.update(self.extra_env if env is None else env)
        pick = self.port is None and port is None
        for attempt in range(5):
            if port is not None:
                self.port = port
            elif pick:
                self.port = free_port()
            self.starts += 1
            self.log_paths += [self.stdout_path, self.stderr_path]
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(self.command(args), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, env=proc_env)
            try:
                self._wait_ready()
                break
            except RuntimeError:
                if pick and attempt < 4 and "already in use" in read_text(self.stderr_path):
                    self.port = None
                    continue
                raise
        self.env = parse_env_file(read_text(self.dev_env_path))
        for key in DEV_ENV_KEYS:
            if not self.env.get(key):
                raise RuntimeError(f"dev.env lacks {key}:\n{read_text(self.dev_env_path)}")
        self._ctx = ssl.create_default_context(cafile=self.ca_path)
        self._token_cache = {}
        return self

    def command(self, args):
        """The server's command line; a subclass may run it elsewhere (tests/integration's
        test_image runs it in the image's root file system)."""
        return [coffer_binary(), "server", "--dev", "--data-dir", self.data_dir,
                "--port", str(self.port)] + list(args)

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = None
        while True:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"coffer exited with {code} before becoming ready\n"
                                   f"--- stderr ---\n{read_text(self.stderr_path, 4000)}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"coffer not ready after {READY_TIMEOUT_S} s (last: {last})\n"
                                   f"--- stderr ---\n{read_text(self.stderr_path, 4000)}")
            if os.path.exists(self.ca_path):
                try:
                    ctx = ssl.create_default_context(cafile=self.ca_path)
                    conn = http.client.HTTPSConnection("localhost", self.port, context=ctx,
                                                       timeout=2)
                    try:
                        conn.request("GET", "/healthz")
                        resp = conn.getresponse()
                        resp.read()
                        last = resp.status
                        if resp.status == 200 and os.path.exists(self.dev_env_path):
                            return
                    finally:
                        conn.close()
                except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                    last = repr(e)
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait, SIGKILL fallback (then killed_hard is true). Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        code, self.killed_hard = terminate(self.proc)
        return code

    def kill(self):
        """SIGKILL by PID, no grace."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def stderr_text(self):
        return "".join(read_text(p) for p in self.log_paths if p.endswith(".stderr.log"))

    def logs(self):
        """Everything every start of the server wrote to stdout and stderr."""
        return "".join(read_text(p) for p in self.log_paths)

    # ---- identities ------------------------------------------------------------------------

    @property
    def tenant(self):
        """The tenant's id (COFFER_TENANT_ID; AZURE_TENANT_ID is its alias "adfs")."""
        return self.env["COFFER_TENANT_ID"]

    @property
    def subscription(self):
        return self.env["COFFER_SUBSCRIPTION_ID"]

    @property
    def authority(self):
        return f"https://localhost:{self.port}"

    @property
    def authority_host(self):
        """AZURE_AUTHORITY_HOST of dev.env (the token service's origin)."""
        return self.env["AZURE_AUTHORITY_HOST"]

    @property
    def vault_url(self):
        """COFFER_VAULT_URL of dev.env: https://dev.vault.localhost:<port>."""
        return self.env["COFFER_VAULT_URL"]

    @property
    def vault_resource(self):
        return f"https://vault.localhost:{self.port}"

    @property
    def mgmt_resource(self):
        return f"https://localhost:{self.port}"

    def vault_host(self, vault="dev"):
        return f"{vault}.vault.localhost"

    # ---- HTTP ------------------------------------------------------------------------------

    def connection(self, host=None, timeout=30):
        """A keep-alive HTTPS connection to host (default: the dev vault)."""
        return http.client.HTTPSConnection(host or self.vault_host(), self.port,
                                           context=self._ctx, timeout=timeout)

    @staticmethod
    def send(conn, method, path, body=None, headers=None):
        """One request on an existing connection; returns a Response."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def request(self, method, path, body=None, headers=None, host=None, token=None,
                auth=True, timeout=30):
        """A request on a fresh connection to host (default dev vault).

        auth=True adds a bearer token for the vault (or for `token` if given); auth=False sends
        no Authorization header.
        """
        hdrs = dict(headers or {})
        if auth and "Authorization" not in hdrs:
            if token is None:
                token = self.token(self.vault_resource if host is None or "vault." in host
                                   else self.mgmt_resource)
            hdrs["Authorization"] = "Bearer " + token
        conn = self.connection(host, timeout=timeout)
        try:
            return self.send(conn, method, path, body, hdrs)
        finally:
            conn.close()

    def kv(self, method, path, body=None, query=None, vault="dev", **kw):
        """Key Vault data-plane request with api-version and a vault token."""
        q = {"api-version": KV_API}
        q.update(query or {})
        sep = "&" if "?" in path else "?"
        target = path + sep + urllib.parse.urlencode(q)
        return self.request(method, target, body, host=self.vault_host(vault), **kw)

    def arm(self, method, path, body=None, api_version=ARM_API, **kw):
        """Management-plane request under /subscriptions/<sub> with a management token."""
        target = f"/subscriptions/{self.subscription}{path}"
        if api_version is not None:
            target += ("&" if "?" in target else "?") + "api-version=" + api_version
        kw.setdefault("token", self.token(self.mgmt_resource))
        return self.request(method, target, body, host="localhost", **kw)

    def arm_raw(self, method, target, body=None, **kw):
        kw.setdefault("token", self.token(self.mgmt_resource))
        return self.request(method, target, body, host="localhost", **kw)

    def token_response(self, resource, client_id=None, client_secret=None, tenant=None):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials",
            "client_id": client_id or self.env["AZURE_CLIENT_ID"],
            "client_secret": client_secret or self.env["AZURE_CLIENT_SECRET"],
            "scope": resource + "/.default",
        })
        return self.request("POST", f"/{tenant or self.tenant}/oauth2/v2.0/token", form,
                            headers={"Content-Type": "application/x-www-form-urlencoded"},
                            host="localhost", auth=False)

    def token(self, resource):
        """A cached access token for resource (client credentials from dev.env)."""
        if resource not in self._token_cache:
            r = self.token_response(resource)
            if r.status != 200:
                raise RuntimeError(f"token request for {resource} failed: {r!r}")
            self._token_cache[resource] = r.json()["access_token"]
        return self._token_cache[resource]

    # ---- raw TLS ---------------------------------------------------------------------------

    def tls_socket(self, timeout=30, host=None):
        """A TLS socket to the server (verified against the server CA), for hand-made bytes."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return self._ctx.wrap_socket(sock, server_hostname=host or self.vault_host())

    def plain_socket(self, timeout=30):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    # ---- forged tokens ---------------------------------------------------------------------

    @property
    def signing_key_path(self):
        """The server's current token-signing key as a PEM file, opened from the SQLite
        store's `signing_keys` meta row as docs/encryption.md describes it."""
        db = sqlite3.connect(f"file:{self.data_dir}/coffer.db?mode=ro", uri=True, timeout=30)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'signing_keys'").fetchone()
        finally:
            db.close()
        if row is None:
            raise RuntimeError("the store holds no signing keys")
        pem = open_signing_keys(row[0], self.master_key())["current"]
        path = os.path.join(self.root, "signing-current.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(pem)
        return path

    def master_key(self):
        """The 32-byte master key the server runs with."""
        text = self.extra_env.get("COFFER_MASTER_KEY") or read_text(
            os.path.join(self.data_dir, "master.key"))
        return base64.b64decode(text.strip())

    def forge_token(self, header_changes=None, claim_changes=None, drop_claims=(),
                    key_path=None, signature=None, base_resource=None):
        """A JWT copied from a real token, with the given header/claim changes, signed RS256.

        A value of None in the change dicts removes the field.  `signature` (bytes) replaces the
        computed signature; `key_path` signs with another RSA key.
        """
        real = self.token(base_resource or self.vault_resource)
        header, claims = jwt_parts(real)
        for k, v in (header_changes or {}).items():
            if v is None:
                header.pop(k, None)
            else:
                header[k] = v
        for k, v in (claim_changes or {}).items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        for k in drop_claims:
            claims.pop(k, None)
        signing_input = (b64url(json.dumps(header, separators=(",", ":"))) + "." +
                         b64url(json.dumps(claims, separators=(",", ":"))))
        if signature is None:
            signature = rs256_sign(key_path or self.signing_key_path, signing_input.encode())
        return signing_input + "." + b64url(signature)

    # ---- CLI -------------------------------------------------------------------------------

    def cli_env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("AZURE_", "COFFER_")):
                del env[k]
        env.update(self.env)
        return env

    def run_coffer(self, *args, timeout=60):
        """Runs `coffer <args>` as the administrator of this server; returns (rc, out, err)."""
        env = self.cli_env()
        env["COFFER_CA_FILE"] = self.ca_path
        p = subprocess.run([coffer_binary()] + [str(a) for a in args], env=env,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode(
            "utf-8", "replace")

    def coffer_json(self, *args):
        """Runs `coffer <args>`, which must succeed; returns its JSON output (or None)."""
        rc, out, err = self.run_coffer(*args)
        if rc != 0:
            raise AssertionError(f"coffer {args} exited with {rc}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if out.strip() else None

    def cli(self, *args, timeout=60, env=None):
        """Runs `coffer keyvault <args>` with dev.env (plus `env` overrides) in its environment;
        returns (rc, stdout, stderr)."""
        full_env = self.cli_env()
        full_env.update(env or {})
        p = subprocess.run([coffer_binary(), "keyvault"] + [str(a) for a in args],
                           env=full_env, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode(
            "utf-8", "replace")


def open_signing_keys(sealed, master_key):
    """The token-signing key set (`{"current": PEM, "previous": [PEM]}`) from its sealed form
    in the store's meta (docs/encryption.md)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    prefix = "csk1."
    if not sealed.startswith(prefix):
        raise ValueError("not a sealed signing key set")
    text = sealed[len(prefix):]
    body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"coffer signing keys v1").derive(master_key)
    plain = AESGCM(key).decrypt(body[:12], body[12:], b"coffer-signing-keys-v1")
    return json.loads(plain)


def rs256_sign(key_path, data):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=data,
                       capture_output=True, check=True)
    return p.stdout


def new_rsa_key(path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", path], capture_output=True, check=True)
    return path


def kid_for_key(key_path):
    """kid = base64url(sha256(modulus bytes)[:15]) for an RSA private key file."""
    out = subprocess.run(["openssl", "rsa", "-in", key_path, "-noout", "-modulus"],
                         capture_output=True, check=True).stdout.decode()
    modulus = bytes.fromhex(out.strip().split("=", 1)[1])
    return b64url(hashlib.sha256(modulus).digest()[:15])


def launch_server(*args, **kw):
    """Starts a server whose owner calls cleanup() (e.g. in tearDownModule); a start that fails
    leaves no process or directory behind."""
    srv = CofferServer(*args, **kw)
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    return srv


def start_server(test_case_or_class, *args, **kw):
    """Starts a server and registers its cleanup on the test case (or test class)."""
    srv = launch_server(*args, **kw)
    if isinstance(test_case_or_class, type):
        test_case_or_class.addClassCleanup(srv.cleanup)
    else:
        test_case_or_class.addCleanup(srv.cleanup)
    return srv


class ServerTestCase(unittest.TestCase):
    """One dev server shared by all tests of the class (SERVER_ARGS are passed to it)."""

    SERVER_ARGS = ()
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = start_server(cls, extra_args=cls.SERVER_ARGS)

    # -- the coffer CLI, as the server's administrator --

    @classmethod
    def coffer_env(cls):
        env = cls.srv.cli_env()
        env["COFFER_CA_FILE"] = cls.srv.ca_path
        return env

    @classmethod
    def run_coffer(cls, *args):
        """Runs `coffer <args>`; returns (rc, stdout, stderr)."""
        p = subprocess.run([coffer_binary()] + [str(a) for a in args], env=cls.coffer_env(),
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    @classmethod
    def coffer_json(cls, *args):
        """Runs `coffer <args>`, which must succeed; returns its JSON output (or None)."""
        rc, out, err = cls.run_coffer(*args)
        if rc != 0:
            raise AssertionError(f"coffer {args} exited with {rc}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if out.strip() else None

    # -- assertions shared by the suites --

    def assertErrorBody(self, resp, status, code=None, msg=""):
        """resp has `status` and a Key Vault error body {"error":{"code","message"}}."""
        self.assertEqual(resp.status, status, f"{msg} {resp!r}")
        try:
            body = resp.json()
        except Exception as e:  # noqa: BLE001
            self.fail(f"{msg} error body is not JSON ({e}): {resp!r}")
        self.assertIsInstance(body, dict, f"{msg} {resp!r}")
        self.assertIsInstance(body.get("error"), dict, f"{msg} {resp!r}")
        self.assertIsInstance(body["error"].get("code"), str, f"{msg} {resp!r}")
        self.assertIsInstance(body["error"].get("message"), str, f"{msg} {resp!r}")
        self.assertTrue(body["error"]["message"], f"{msg} empty message: {resp!r}")
        if code is not None:
            self.assertEqual(body["error"]["code"], code, f"{msg} {resp!r}")
        return body

    def assertServing(self):
        """The server process is alive and a normal authenticated GET works."""
        self.assertTrue(self.srv.running(),
                        "server died:\n" + read_text(self.srv.stderr_path, 3000))
        r = self.srv.kv("GET", "/secrets", query={"maxresults": "1"})
        self.assertEqual(r.status, 200, f"server no longer serves: {r!r}")
