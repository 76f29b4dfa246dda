"""The C++ SDK (include/coffer, src/sdk), end to end against the real server.

The SDK is driven through tests/sdk-cpp/sdk_probe ($COFFER_SDK_PROBE; CTest sets it when the
sdk_probe target exists, and the suite is skipped without it).  The probe prints one JSON line per
event: a secret as its version and SHA-256, a token as some of its claims, an error as its status
code, reason and message.  Every request it makes goes through a counting transport.

* Every credential against the real token service: client secret (the dev service principal of
  dev.env), client certificate (a service principal with a certificate registered by Graph
  addKey), managed identity through the App Service endpoint (IDENTITY_ENDPOINT/HEADER) and
  through IMDS (`coffer agent --imds`, AZURE_POD_IDENTITY_AUTHORITY_HOST), a user-assigned identity
  by client id (both ways), resource id and object id, workload identity (a federated token file
  from oidc_issuer.py), and DefaultAzureCredential picking from the environment.  Each token's
  claims name the expected identity, the credential's cache serves the second GetToken with no
  request, and each identity reads a secret.  Refusals and missing configuration are values.
* Denied reads (access policies and RBAC on one secret) and missing secrets are values, in
  one-shot reads and in the cache, and the probe goes on.
* SecretCache: hits make no request (the counting transport, cross-checked with the audit log);
  a rotation fires OnChange exactly once through the watch stream, and by polling with the watch
  off; a deleted secret is no longer served; a vault outage (the server stopped) serves the cached
  value, and after a restart on the same port and data directory the cache recovers by itself and
  sees the newer version.
* KeyClient and CryptographyClient (`sdk_probe keys`): RSA and EC keys created and imported
  through the SDK, every lifecycle call (get, list, versions, update, rotate, rotation policy,
  backup, delete, recover, purge, restore, random bytes), and every cryptographic operation:
  signatures and ciphertexts the SDK gets verify and decrypt with python3-cryptography on the
  public key, and what python3-cryptography encrypts and signs, the SDK decrypts and verifies;
  a tampered signature is false, a refused operation (key_ops, disabled key) an error value.
* No secret value, client secret, identity header, federated token or access token appears in
  anything the probe prints (checked after every test).

Every wait is for an event and bounded (WAIT_S), and none is a performance claim.  That a callback
does not come twice is shown by refreshes awaited by their count (CacheProbe.settle), not by
watching for a while.
"""

import base64
import glob
import hashlib
import json
import os
import subprocess
import threading
import time
import unittest
import urllib.parse
import uuid

from harness import (ServerTestCase, jwt_parts, read_text, server_audit_dir, stop_process,
                     wait_until)
from oidc_issuer import OidcIssuer
from test_workloads import ImdsAgent

PROBE = os.environ.get("COFFER_SDK_PROBE")
WAIT_S = 60.0    # bounds a wait for something that should happen; never a performance claim
RUN_TIMEOUT_S = 60.0
RG = "rg-sdk"
CLAIM_URI = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def probe_binary():
    return os.path.abspath(PROBE)


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, check=True).stdout


def new_cert(directory, name):
    """(PEM file with the certificate and its key, DER of the certificate)."""
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", "/CN=" + name)
    pem = os.path.join(directory, name + ".pem")
    with open(pem, "w", encoding="utf-8") as f:
        f.write(read_text(crt) + read_text(key))
    return pem, openssl("x509", "-in", crt, "-outform", "DER")


def sanitizer_report(text):
    return "Sanitizer" in text or "runtime error:" in text


# ---- the interactive probe ----------------------------------------------------------------------

class CacheProbe:
    """`sdk_probe cache ...`: commands on stdin, JSON lines read by a thread.  Stopped by PID in
    cleanup (registered on the test case), after which its output joins the test's probe output.
    """

    def __init__(self, case, env, *args):
        self.case = case
        self.args = [str(a) for a in args]
        self.stderr_path = os.path.join(case.srv.root, f"probe-{uuid.uuid4().hex[:8]}.stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([probe_binary(), "cache"] + self.args, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err)
        self.cond = threading.Condition()
        self.events = []
        self.raw = []
        self.eof = False
        self.sent = 0
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        case.addCleanup(self.close)
        self.wait_for(lambda e: e.get("event") == "ready", "the ready line")

    def _read(self):
        for line in self.proc.stdout:
            text = line.decode("utf-8", "replace")
            try:
                event = json.loads(text)
            except ValueError:
                event = {"event": "unparsed", "text": text}
            with self.cond:
                self.raw.append(text)
                self.events.append(event)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def output(self):
        with self.cond:
            return "".join(self.raw) + read_text(self.stderr_path)

    def diagnostics(self):
        with self.cond:
            out = "".join(self.raw)
        return (f"--- probe cache {self.args} ---\n--- stdout ---\n{out[-4000:]}\n"
                f"--- stderr ---\n{read_text(self.stderr_path, 3000)}")

    def wait_for(self, predicate, what, timeout=WAIT_S):
        """The first event (in order) that satisfies predicate, waiting at most timeout."""
        def first():
            return next((e for e in self.events if predicate(e)), None)
        return self.wait_state(first, what, timeout)

    def wait_state(self, check, what, timeout=WAIT_S):
        """Waits at most timeout for check() (called under the lock) to return something true;
        returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = check()
                if v:
                    return v
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
        self.case.fail(f"the probe never printed {what} within {timeout} s "
                       f"(exit {self.proc.poll()})\n{self.diagnostics()}")

    def command(self, line, timeout=WAIT_S):
        self.sent += 1
        number = self.sent
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:
            self.case.fail(f"cannot send {line!r} to the probe ({e})\n{self.diagnostics()}")
        reply = self.wait_for(lambda e: e.get("reply") == number, f"the reply to {line!r}",
                              timeout)
        self.case.assertNotEqual(reply.get("event"), "error", reply)
        return reply

    def get(self, name, version=None):
        return self.command(f"get {name}" + (f" {version}" if version else ""))

    def stats(self):
        return self.command("stats")

    def select(self, event, **fields):
        with self.cond:
            return [e for e in self.events if e.get("event") == event and
                    all(e.get(k) == v for k, v in fields.items())]

    def changes(self, name=None):
        return self.select("change", **({} if name is None else {"for": name}))

    def settle(self, rounds=2, names=1):
        """Refreshes the cache `rounds` times, each awaited by its count: a refresh reads each of
        the `names` secrets the cache holds and counts each once its value is stored, so a round
        is over when the count has grown by `names` (waiting for any growth would let a test
        go on while the round's other reads are still to be sent).  The cache runs the callbacks
        of what a refresh found before its next refresh: afterwards every callback of what the
        cache had read before has run, wrong ones included -- no need to watch for a while."""
        for _ in range(rounds):
            before = self.stats()["cache"]["refreshes"]
            self.case.assertTrue(self.command("refresh")["ok"])
            self.case.assertTrue(
                wait_until(lambda: self.stats()["cache"]["refreshes"] >= before + names, WAIT_S),
                f"a refresh of {names} secret(s) was never counted\n{self.diagnostics()}")

    def wait_stream_open(self, count=1):
        """Waits until `count` watch-stream connections have received their first bytes (the
        server registers a stream before it sends anything)."""
        self.wait_state(lambda: sum(1 for e in self.events if e.get("event") == "stream" and
                                    e.get("state") == "open") >= count,
                        f"{count} open watch stream(s)")

    def quit(self):
        """quit: the cache stops its threads and the probe exits 0, with no sanitizer report."""
        self.command("quit")
        try:
            rc = self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.case.fail(f"the probe did not exit within {WAIT_S} s of quit\n"
                           f"{self.diagnostics()}")
        self.case.assertEqual(rc, 0, self.diagnostics())
        self.case.assertFalse(sanitizer_report(read_text(self.stderr_path)), self.diagnostics())

    def close(self):
        if self.closed:
            return
        self.closed = True
        stop_process(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.reader.join(5)
        self.case.probe_outputs.append(("probe cache " + " ".join(self.args), self.output()))


# ---- the shared fixture -------------------------------------------------------------------------

class SdkTestCase(ServerTestCase):
    """Runs the probe against the class's server; every test's probe output is checked for
    secrets afterwards."""

    maxDiff = 6000

    @classmethod
    def setUpClass(cls):
        if not PROBE:
            raise unittest.SkipTest(
                "COFFER_SDK_PROBE is not set: build the sdk_probe target (tests/sdk-cpp) and set "
                "COFFER_SDK_PROBE to it (CTest does when the target exists)")
        if not os.access(probe_binary(), os.X_OK):
            raise RuntimeError(f"COFFER_SDK_PROBE={PROBE} is not an executable")
        super().setUpClass()
        cls.secrets = {"the dev client secret": cls.srv.env["AZURE_CLIENT_SECRET"]}
        cls.dev_oid = jwt_parts(cls.srv.token(cls.srv.vault_resource))[1]["oid"]

    def setUp(self):
        super().setUp()
        self.probe_outputs = []  # (what ran, stdout + stderr)
        self.addCleanup(self.assertNoSecretsInProbeOutput)

    # -- fixtures --

    @classmethod
    def vault_url(cls, vault="dev"):
        return f"https://{vault}.vault.localhost:{cls.srv.port}"

    @classmethod
    def scope(cls):
        return cls.srv.vault_resource + "/.default"

    @classmethod
    def set_secret(cls, name, value, vault="dev"):
        """Sets a secret as the administrator; returns the new version."""
        cls.secrets[f"a value of {vault}/{name}"] = value
        r = cls.srv.kv("PUT", f"/secrets/{name}", {"value": value}, vault=vault)
        if r.status != 200:
            raise AssertionError(f"PUT secret {vault}/{name}: {r!r}")
        return r.json()["id"].rstrip("/").rsplit("/", 1)[1]

    @staticmethod
    def value(label):
        return f"{label}-{uuid.uuid4().hex}"

    @classmethod
    def grant(cls, object_id, vault="dev"):
        cls.coffer_json("keyvault", "set-policy", "--name", vault, "--object-id", object_id,
                        "--secret-permissions", "get", "list")

    @classmethod
    def endpoint_env(cls, kind, name):
        """IDENTITY_ENDPOINT and IDENTITY_HEADER of a web app or VM (`... identity endpoint
        --env`)."""
        rc, out, err = cls.run_coffer(kind, "identity", "endpoint", "-n", name, "-g", RG, "--env")
        if rc != 0:
            raise AssertionError(f"identity endpoint of {name}: {rc}\n{out}\n{err}")
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if set(env) != {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"}:
            raise AssertionError(f"identity endpoint --env printed {out!r}")
        cls.secrets[f"the identity header of {name}"] = env["IDENTITY_HEADER"]
        return env

    def base_env(self, extra=None):
        """The probe's environment: the test runner's without AZURE_*, COFFER_*, IDENTITY_* and
        CA settings, plus the server's CA and the authority host."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
               and k not in ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE",
                             "SSL_CERT_DIR")}
        env["COFFER_CA_FILE"] = self.srv.ca_path
        env["AZURE_AUTHORITY_HOST"] = self.srv.env["AZURE_AUTHORITY_HOST"]
        env.update(extra or {})
        return env

    def secret_env(self, secret=None):
        """The dev service principal (dev.env)."""
        return self.base_env({"AZURE_TENANT_ID": self.srv.tenant,
                              "AZURE_CLIENT_ID": self.srv.env["AZURE_CLIENT_ID"],
                              "AZURE_CLIENT_SECRET": secret or self.srv.env["AZURE_CLIENT_SECRET"]})

    # -- one-shot runs --

    def run_probe(self, *args, env):
        """`sdk_probe <args>`, which must exit 0 and print exactly one JSON line; returns it."""
        argv = [probe_binary()] + [str(a) for a in args]
        p = subprocess.run(argv, env=env, capture_output=True, timeout=RUN_TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        self.probe_outputs.append(("probe " + " ".join(argv[1:]), out + err))
        what = f"probe {argv[1:]} exited {p.returncode}\nstdout: {out}\nstderr: {err[-3000:]}"
        self.assertEqual(p.returncode, 0, what)
        self.assertFalse(sanitizer_report(err), what)
        lines = [line for line in out.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, what)
        return json.loads(lines[0])

    def token(self, credential, env, *flags):
        return self.run_probe("token", "--credential", credential, "--scope", self.scope(),
                              *flags, env=env)

    def get(self, credential, env, name, *flags, version=None, vault="dev"):
        args = ["get", "--credential", credential, "--vault-url", self.vault_url(vault),
                "--name", name] + list(flags)
        if version:
            args += ["--version", version]
        return self.run_probe(*args, env=env)

    # -- assertions --

    def assertToken(self, out, oid=None, appid=None, mirid=None):
        """A token for the vault whose claims name the identity; the second GetToken was served
        from the credential's cache."""
        self.assertTrue(out.get("ok"), out)
        claims = out["claims"]
        self.assertIsInstance(claims, dict, out)
        self.assertEqual(claims["aud"], self.srv.vault_resource, out)
        self.assertEqual(claims["tid"], self.srv.tenant, out)
        if oid is not None:
            self.assertEqual(claims["oid"], oid, out)
        if appid is not None:
            self.assertEqual(claims["appid"], appid, out)
        if mirid is not None:
            self.assertEqual(claims.get("xms_mirid"), mirid, out)
        self.assertGreater(out["expires_on"], time.time() + 300, out)
        self.assertEqual(out["requests"], 1, f"one token request: {out}")
        self.assertTrue(out["second_ok"] and out["second_same_token"], out)
        self.assertEqual(out["second_requests"], 0, f"the second token was not cached: {out}")
        return claims

    def assertSecret(self, out, name, version, value):
        self.assertTrue(out.get("ok"), out)
        self.assertEqual(out["name"], name, out)
        self.assertEqual(out["version"], version, out)
        self.assertEqual(out["sha256"], sha256_hex(value), out)
        self.assertEqual(out["length"], len(value.encode()), out)
        self.assertTrue(out["enabled"], out)

    def assertError(self, out, code, reason=None, in_message=()):
        """An error value: the canonical code (and its number), Key Vault's reason, a message."""
        self.assertIs(out.get("ok"), False, out)
        self.assertEqual(out["code"], code, out)
        self.assertIsInstance(out["code_number"], int, out)
        self.assertTrue(out["message"], out)
        if reason is not None:
            self.assertEqual(out["reason"], reason, out)
        for needle in in_message:
            self.assertIn(needle, out["message"], out)

    def assertNoSecretsInProbeOutput(self):
        """No secret value, client secret, identity header or federated token, and nothing like
        a JWT or a private key, in what any probe of this test printed."""
        for what, text in self.probe_outputs:
            for label, secret in self.secrets.items():
                if secret and secret in text:
                    self.fail(f"{label} appears in the output of {what}")
            self.assertNotIn("eyJ", text, f"something like a JWT appears in the output of {what}")
            self.assertNotIn("PRIVATE KEY", text, f"a private key appears in the output of {what}")

    # -- the audit log --

    def audit_records(self, operation):
        out = []
        pattern = os.path.join(server_audit_dir(self.srv.data_dir), "audit-*.jsonl")
        for path in sorted(glob.glob(pattern)):
            for line in read_text(path).splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if rec.get("operationName") == operation:
                    out.append(rec)
        return out

    def audited_gets(self, name, version=""):
        """SecretGet records of GET /secrets/<name>/<version> (the SDK's form of a request for
        the latest version ends with "/")."""
        want = f"/secrets/{name}/{version}".lower()
        return [r for r in self.audit_records("SecretGet")
                if urllib.parse.urlsplit(r["properties"]["requestUri"]).path.lower() == want]

    def audited_watches(self, oid):
        return [r for r in self.audit_records("SecretWatch")
                if r.get("properties", {}).get("httpStatusCode") == 200 and
                r.get("identity", {}).get("claim", {}).get(CLAIM_URI) == oid]


# ---- credentials --------------------------------------------------------------------------------

class SdkCredentialTests(SdkTestCase):
    """Fixtures: a service principal with a certificate; a web app (system identity + "uai-sdk")
    and a VM (system identity + "uai-sdk") behind `coffer agent --imds`; "uai-sdk-fed" trusting a
    local OIDC issuer; all of them may read the dev vault.  "app-sdk-none" may read nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = cls.srv
        cls.secret_value = cls.value("sdk-cred")
        cls.secret_version = cls.set_secret("sdk-cred", cls.secret_value)

        # A service principal with a certificate (Graph addKey).
        mgmt = srv.token(srv.mgmt_resource)
        r = srv.request("POST", "/v1.0/servicePrincipals",
                        json.dumps({"displayName": "sdk-cert-app"}), host="localhost", token=mgmt)
        if r.status not in (200, 201):
            raise AssertionError(f"create service principal: {r!r}")
        cls.cert_app, cls.cert_oid = r.json()["appId"], r.json()["id"]
        cls.cert_pem, der = new_cert(srv.root, "sdk-cert-app")
        r = srv.request("POST", f"/v1.0/servicePrincipals/{cls.cert_oid}/addKey", json.dumps(
            {"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify",
                               "key": base64.b64encode(der).decode()}}),
            host="localhost", token=mgmt)
        if r.status != 200:
            raise AssertionError(f"addKey: {r!r}")
        cls.grant(cls.cert_oid)

        # Managed identities: a web app and a VM, each with a system identity and uai-sdk.
        cls.uai = cls.coffer_json("identity", "create", "-n", "uai-sdk", "-g", RG)
        cls.app = cls.coffer_json("webapp", "create", "-n", "app-sdk", "-g", RG,
                                  "--assign-identity", "[system]", cls.uai["id"])
        cls.vm = cls.coffer_json("vm", "create", "-n", "vm-sdk", "-g", RG,
                                 "--assign-identity", "[system]", cls.uai["id"])
        for principal in (cls.uai["principalId"], cls.app["identity"]["principalId"],
                          cls.vm["identity"]["principalId"]):
            cls.grant(principal)
        cls.app_env = cls.endpoint_env("webapp", "app-sdk")
        agent_env = cls.coffer_env()
        agent_env.update(cls.endpoint_env("vm", "vm-sdk"))
        cls.agent = ImdsAgent(agent_env, srv.root).start()
        cls.addClassCleanup(cls.agent.stop)
        cls.imds_env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{cls.agent.port}"}
        none = cls.coffer_json("webapp", "create", "-n", "app-sdk-none", "-g", RG,
                               "--assign-identity", "[system]")
        cls.none_principal = none["identity"]["principalId"]
        cls.none_env = cls.endpoint_env("webapp", "app-sdk-none")

        # Workload identity federation.
        cls.issuer = OidcIssuer(subject="system:serviceaccount:sdk:probe")
        cls.addClassCleanup(cls.issuer.stop)
        cls.foreign = OidcIssuer(subject=cls.issuer.subject)
        cls.addClassCleanup(cls.foreign.stop)
        cls.fed = cls.coffer_json("identity", "create", "-n", "uai-sdk-fed", "-g", RG)
        cls.coffer_json("identity", "federated-credential", "create", "--name", "probe",
                        "--identity-name", "uai-sdk-fed", "-g", RG, "--issuer", cls.issuer.url,
                        "--subject", cls.issuer.subject)
        cls.grant(cls.fed["principalId"])

    # -- environments --

    def cert_env(self, pem=None, client_id=None):
        return self.base_env({"AZURE_TENANT_ID": self.srv.tenant,
                              "AZURE_CLIENT_ID": client_id or self.cert_app,
                              "AZURE_CLIENT_CERTIFICATE_PATH": pem or self.cert_pem})

    def federated_env(self, issuer=None, client_id=None):
        """A fresh service-account token in a file, as the kubelet projects it."""
        token = (issuer or self.issuer).mint()
        self.secrets[f"a federated token ({len(self.secrets)})"] = token
        path = os.path.join(self.srv.root, f"sa-token-{uuid.uuid4().hex[:8]}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(token + "\n")
        return self.base_env({"AZURE_TENANT_ID": self.srv.tenant,
                              "AZURE_CLIENT_ID": client_id or self.fed["clientId"],
                              "AZURE_FEDERATED_TOKEN_FILE": path})

    def assertReads(self, credential, env, *flags):
        out = self.get(credential, env, "sdk-cred", *flags)
        self.assertSecret(out, "sdk-cred", self.secret_version, self.secret_value)
        return out

    # -- the tests --

    def test_client_secret(self):
        env = self.secret_env()
        self.assertToken(self.token("secret", env), oid=self.dev_oid,
                         appid=self.srv.env["AZURE_CLIENT_ID"])
        out = self.assertReads("secret", env)
        # The challenge, one token, one read.
        self.assertEqual({k: out["requests"][k] for k in ("challenges", "token", "vault")},
                         {"challenges": 1, "token": 1, "vault": 1}, out)
        wrong = "not-the-secret-" + uuid.uuid4().hex
        self.secrets["a wrong client secret"] = wrong
        refused = self.token("secret", self.secret_env(wrong))
        self.assertError(refused, "UNAUTHENTICATED")
        self.assertError(self.get("secret", self.secret_env(wrong), "sdk-cred"), "UNAUTHENTICATED")
        unset = self.token("secret", self.base_env({"AZURE_TENANT_ID": self.srv.tenant}))
        self.assertError(unset, "FAILED_PRECONDITION")
        self.assertEqual(unset["requests"], 0, "nothing is sent without a configuration")

    def test_client_certificate(self):
        env = self.cert_env()
        claims = self.assertToken(self.token("certificate", env), oid=self.cert_oid,
                                  appid=self.cert_app)
        self.assertEqual(claims["idtyp"], "app")
        self.assertReads("certificate", env)
        # --certificate instead of the environment variable.
        flag_env = self.cert_env()
        del flag_env["AZURE_CLIENT_CERTIFICATE_PATH"]
        self.assertReads("certificate", flag_env, "--certificate", self.cert_pem)

        stranger, _ = new_cert(self.srv.root, "sdk-stranger")
        self.assertError(self.token("certificate", self.cert_env(stranger)), "UNAUTHENTICATED")
        mismatched = os.path.join(self.srv.root, "sdk-mismatched.pem")
        with open(mismatched, "w", encoding="utf-8") as f:
            f.write(read_text(self.cert_pem).split("-----BEGIN PRIVATE KEY-----")[0] +
                    "-----BEGIN PRIVATE KEY-----" +
                    read_text(stranger).split("-----BEGIN PRIVATE KEY-----")[1])
        out = self.token("certificate", self.cert_env(mismatched))
        self.assertError(out, "INVALID_ARGUMENT", in_message=["does not belong"])
        self.assertEqual(out["requests"], 0)
        missing = self.token("certificate", self.cert_env(self.cert_pem + ".missing"))
        self.assertError(missing, "FAILED_PRECONDITION")

    def test_managed_identity_through_the_app_service_endpoint(self):
        env = self.base_env(self.app_env)
        system = self.app["identity"]["principalId"]
        self.assertToken(self.token("managed", env), oid=system, mirid=self.app["id"])
        self.assertReads("managed", env)
        uai = self.uai
        for label, flags in (("client id", ["--identity", uai["clientId"]]),
                             ("resource id", ["--identity", uai["id"]]),
                             ("object id", ["--identity-object-id", uai["principalId"]])):
            with self.subTest(label):
                self.assertToken(self.token("managed", env, *flags), oid=uai["principalId"],
                                 mirid=uai["id"])
                self.assertReads("managed", env, *flags)
        # An identity that is not the app's is refused, as a value.
        other = self.fed["clientId"]
        self.assertError(self.token("managed", env, "--identity", other), "UNAUTHENTICATED")
        bad_header = self.base_env(dict(self.app_env, IDENTITY_HEADER="wrong"))
        self.assertError(self.token("managed", bad_header), "UNAUTHENTICATED")
        self.assertError(self.token("managed", self.base_env()), "FAILED_PRECONDITION",
                         in_message=["IDENTITY_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST"])

    def test_managed_identity_through_imds(self):
        env = self.base_env(self.imds_env)
        system = self.vm["identity"]["principalId"]
        self.assertToken(self.token("managed", env), oid=system, mirid=self.vm["id"])
        self.assertReads("managed", env)
        uai = self.uai
        for label, flags in (("client id", ["--identity", uai["clientId"]]),
                             ("resource id", ["--identity", uai["id"]]),
                             ("object id", ["--identity-object-id", uai["principalId"]])):
            with self.subTest(label):
                self.assertToken(self.token("managed", env, *flags), oid=uai["principalId"],
                                 mirid=uai["id"])
                self.assertReads("managed", env, *flags)
        self.assertError(self.token("managed", env, "--identity", self.fed["clientId"]),
                         "UNAUTHENTICATED")

    def test_workload_identity(self):
        env = self.federated_env()
        self.assertToken(self.token("workload", env), oid=self.fed["principalId"],
                         appid=self.fed["clientId"], mirid=self.fed["id"])
        self.assertReads("workload", self.federated_env())
        self.assertError(self.token("workload", self.federated_env(self.foreign)),
                         "UNAUTHENTICATED")
        no_file = self.federated_env()
        no_file["AZURE_FEDERATED_TOKEN_FILE"] += ".missing"
        self.assertError(self.token("workload", no_file), "FAILED_PRECONDITION")
        unset = self.base_env({"AZURE_TENANT_ID": self.srv.tenant})
        self.assertError(self.token("workload", unset), "FAILED_PRECONDITION",
                         in_message=["AZURE_FEDERATED_TOKEN_FILE"])

    def test_the_default_chain_picks_from_the_environment(self):
        dev_app = self.srv.env["AZURE_CLIENT_ID"]
        app_system = self.app["identity"]["principalId"]
        uai = self.uai["principalId"]
        secret_only = {k: v for k, v in self.secret_env().items() if k.startswith("AZURE_")}
        missing_file = self.federated_env(client_id=self.uai["clientId"])
        missing_file["AZURE_FEDERATED_TOKEN_FILE"] += ".missing"
        cases = [
            ("client secret", self.secret_env(), {"appid": dev_app}),
            ("client certificate", self.cert_env(), {"appid": self.cert_app}),
            ("workload identity", self.federated_env(), {"oid": self.fed["principalId"]}),
            ("App Service managed identity", self.base_env(self.app_env), {"oid": app_system}),
            ("IMDS managed identity", self.base_env(self.imds_env),
             {"oid": self.vm["identity"]["principalId"]}),
            ("AZURE_CLIENT_ID alone names the user-assigned identity",
             self.base_env(dict(self.app_env, AZURE_CLIENT_ID=self.uai["clientId"])),
             {"oid": uai}),
            ("the environment comes before managed identity",
             self.base_env(dict(self.app_env, **secret_only)), {"appid": dev_app}),
            ("an unreadable token file passes to managed identity",
             dict(missing_file, **self.app_env), {"oid": uai}),
        ]
        for label, env, expect in cases:
            with self.subTest(label):
                self.assertToken(self.token("default", env), **expect)
        with self.subTest("--identity chooses the managed identity"):
            self.assertToken(self.token("default", self.base_env(self.imds_env), "--identity",
                                        self.uai["id"]), oid=uai)
        with self.subTest("reads through the chain"):
            self.assertReads("default", self.base_env(self.app_env))
        with self.subTest("nothing configured"):
            out = self.token("default", self.base_env())
            self.assertError(out, "FAILED_PRECONDITION",
                             in_message=["DefaultAzureCredential", "ManagedIdentityCredential"])
            self.assertEqual(out["requests"], 0)
        with self.subTest("a refusal ends the chain"):
            wrong = "not-the-secret-" + uuid.uuid4().hex
            self.secrets["a wrong client secret"] = wrong
            env = self.base_env(dict(self.app_env, AZURE_TENANT_ID=self.srv.tenant,
                                     AZURE_CLIENT_ID=dev_app, AZURE_CLIENT_SECRET=wrong))
            out = self.token("default", env)
            self.assertError(out, "UNAUTHENTICATED", in_message=["EnvironmentCredential"])
            self.assertEqual(out["requests"], 1, "the managed identity was not asked")

    def test_denied_and_missing_reads_are_values(self):
        # No access at all (access policies).
        none_env = self.base_env(self.none_env)
        self.assertToken(self.token("managed", none_env), oid=self.none_principal)
        self.assertError(self.get("managed", none_env, "sdk-cred"), "PERMISSION_DENIED",
                         "Forbidden")
        self.assertError(self.get("secret", self.secret_env(), "sdk-no-such-secret"),
                         "NOT_FOUND", "SecretNotFound")
        self.assertError(self.get("secret", self.secret_env(), "sdk-cred",
                                  version="0123456789abcdef0123456789abcdef"),
                         "NOT_FOUND", "SecretNotFound")
        self.assertError(self.get("secret", self.secret_env(), "bad/name"), "INVALID_ARGUMENT")

        # RBAC on one secret: the app's system identity may read "allowed", not "denied".
        vault = self.coffer_json("keyvault", "create", "-n", "sdkrbac", "-g", RG)
        allowed, denied = self.value("allowed"), self.value("denied")
        allowed_v = self.set_secret("allowed", allowed, vault="sdkrbac")
        self.set_secret("denied", denied, vault="sdkrbac")
        self.coffer_json("role", "assignment", "create", "--role", "Key Vault Secrets User",
                         "--assignee-object-id", self.app["identity"]["principalId"],
                         "--scope", vault["id"] + "/secrets/allowed")
        env = self.base_env(self.app_env)
        self.assertSecret(self.get("managed", env, "allowed", vault="sdkrbac"), "allowed",
                          allowed_v, allowed)
        self.assertError(self.get("managed", env, "denied", vault="sdkrbac"),
                         "PERMISSION_DENIED", "Forbidden")

        # The same through the cache: the denial is a value, it is not cached, the probe goes on.
        probe = CacheProbe(self, env, "--vault-url", self.vault_url("sdkrbac"),
                           "--credential", "managed", "--no-watch")
        for _ in range(2):
            self.assertError(probe.get("denied"), "PERMISSION_DENIED", "Forbidden")
        self.assertSecret(probe.get("allowed"), "allowed", allowed_v, allowed)
        self.assertError(probe.command("last-error denied"), "PERMISSION_DENIED")
        self.assertTrue(probe.command("last-error allowed")["ok"])
        stats = probe.stats()
        self.assertEqual(stats["cache"]["errors"], 2, stats)
        self.assertEqual(stats["cache"]["misses"], 3, stats)
        self.assertEqual(stats["requests"]["vault"], 3, stats)
        probe.quit()


# ---- the cache ----------------------------------------------------------------------------------

class SdkCacheTests(SdkTestCase):
    """SecretCache with the dev service principal."""

    def start_cache(self, *args):
        return CacheProbe(self, self.secret_env(), "--vault-url", self.vault_url(),
                          "--credential", "secret", *args)

    def test_cache_hits_make_no_request(self):
        old, new = self.value("hit-old"), self.value("hit-new")
        old_v = self.set_secret("sdk-hit", old)
        new_v = self.set_secret("sdk-hit", new)
        self.set_secret("sdk-hit-marker", self.value("marker"))
        probe = self.start_cache("--no-watch", "--poll-ms", "600000")
        first = probe.get("sdk-hit")
        self.assertSecret(first, "sdk-hit", new_v, new)
        self.assertEqual(first["requests"]["vault"], 1, first)
        pinned = probe.get("sdk-hit", old_v)
        self.assertSecret(pinned, "sdk-hit", old_v, old)
        counts = pinned["requests"]
        self.assertEqual(counts["vault"], 2, pinned)
        for _ in range(20):
            r = probe.get("sdk-hit")
            self.assertSecret(r, "sdk-hit", new_v, new)
            self.assertEqual(r["requests"], counts, "a cache hit made a request")
        for _ in range(5):
            r = probe.get("sdk-hit", old_v)
            self.assertSecret(r, "sdk-hit", old_v, old)
            self.assertEqual(r["requests"], counts,
                             "a cache hit of a pinned version made a request")
        stats = probe.stats()
        self.assertEqual(stats["cache"]["hits"], 25, stats)
        self.assertEqual(stats["cache"]["misses"], 2, stats)
        self.assertEqual(stats["requests"], counts, stats)

        # The server agrees: one read of each.  A read made after the hits, once in the log,
        # shows that everything before it is there too.
        probe.get("sdk-hit-marker")
        self.assertTrue(wait_until(lambda: self.audited_gets("sdk-hit-marker")),
                        "the marker read never reached the audit log")
        self.assertEqual(len(self.audited_gets("sdk-hit")), 1)
        self.assertEqual(len(self.audited_gets("sdk-hit", old_v)), 1)
        probe.quit()

    def test_a_rotation_fires_on_change_once_through_the_watch_stream(self):
        v1 = self.set_secret("sdk-rot-watch", self.value("watch-1"))
        quiet = self.value("quiet")
        quiet_v = self.set_secret("sdk-rot-quiet", quiet)
        watches = len(self.audited_watches(self.dev_oid))
        # Polling is out of the picture: only the watch stream can bring the change in time.
        probe = self.start_cache("--poll-ms", "600000")
        self.assertTrue(probe.command("watch sdk-rot-watch")["ok"])
        self.assertTrue(probe.command("watch sdk-rot-quiet")["ok"])
        self.assertEqual(probe.get("sdk-rot-watch")["version"], v1)
        probe.wait_stream_open()
        self.assertTrue(wait_until(lambda: len(self.audited_watches(self.dev_oid)) > watches),
                        "no SecretWatch record for the probe's stream")

        new = self.value("watch-2")
        v2 = self.set_secret("sdk-rot-watch", new)
        change = probe.wait_for(lambda e: e.get("event") == "change", "a change callback")
        self.assertEqual(change["for"], "sdk-rot-watch", change)
        self.assertSecret(change, "sdk-rot-watch", v2, new)
        probe.settle(names=2)  # sdk-rot-watch and sdk-rot-quiet
        self.assertEqual(len(probe.changes()), 1, f"one change, one callback\n"
                                                  f"{probe.diagnostics()}")
        vault = probe.stats()["requests"]["vault"]
        self.assertSecret(probe.get("sdk-rot-watch"), "sdk-rot-watch", v2, new)
        self.assertSecret(probe.get("sdk-rot-quiet"), "sdk-rot-quiet", quiet_v, quiet)
        stats = probe.stats()
        self.assertEqual(stats["requests"]["vault"], vault, "the new version was already cached")
        self.assertEqual(stats["cache"]["changes"], 1, stats)
        self.assertEqual(stats["requests"]["streams"], 1, stats)
        probe.quit()

    def test_a_rotation_fires_on_change_once_by_polling_without_watch(self):
        v1 = self.set_secret("sdk-rot-poll", self.value("poll-1"))
        watches = len(self.audited_watches(self.dev_oid))
        probe = self.start_cache("--no-watch", "--poll-ms", "500")
        self.assertTrue(probe.command("watch sdk-rot-poll")["ok"])
        self.assertEqual(probe.get("sdk-rot-poll")["version"], v1)
        new = self.value("poll-2")
        v2 = self.set_secret("sdk-rot-poll", new)
        change = probe.wait_for(lambda e: e.get("event") == "change", "a change callback")
        self.assertSecret(change, "sdk-rot-poll", v2, new)
        probe.settle()  # more reads, which find nothing new
        self.assertEqual(len(probe.changes()), 1, probe.diagnostics())
        stats = probe.stats()
        self.assertEqual(stats["cache"]["changes"], 1, stats)
        self.assertGreater(stats["cache"]["refreshes"], 1, stats)
        self.assertEqual(stats["requests"]["streams"], 0, "--no-watch opened a watch stream")
        self.assertSecret(probe.get("sdk-rot-poll"), "sdk-rot-poll", v2, new)
        probe.quit()
        self.assertEqual(len(self.audited_watches(self.dev_oid)), watches)

    def test_a_deleted_secret_is_no_longer_served(self):
        value = self.value("deleted")
        version = self.set_secret("sdk-deleted", value)
        probe = self.start_cache("--poll-ms", "600000")
        self.assertTrue(probe.command("watch sdk-deleted")["ok"])
        self.assertSecret(probe.get("sdk-deleted"), "sdk-deleted", version, value)
        probe.wait_stream_open()
        r = self.srv.kv("DELETE", "/secrets/sdk-deleted")
        self.assertEqual(r.status, 200, r)

        def dropped():
            out = probe.command("last-error sdk-deleted")
            return out if not out.get("ok") else None
        out = wait_until(dropped, interval=0.2)
        self.assertTrue(out, f"the deletion never reached the cache\n{probe.diagnostics()}")
        self.assertError(out, "NOT_FOUND", "SecretNotFound")
        self.assertError(probe.get("sdk-deleted"), "NOT_FOUND", "SecretNotFound")
        self.assertEqual(probe.changes(), [], "a deletion is no change of value")
        probe.quit()


# ---- a vault outage -----------------------------------------------------------------------------

class SdkCacheOutageTests(SdkTestCase):
    """The server is stopped and started again (same port, same data directory) under a running
    cache.  Short TTLs, so that reads during the outage really go to the (absent) vault; one retry,
    and back-off capped at a second, so that the waits stay short."""

    def setUp(self):
        super().setUp()
        if not self.srv.running():  # a test that failed during its outage
            self.srv.start()

    def outage(self, name, *args):
        old = self.value(f"{name}-1")
        v1 = self.set_secret(name, old)
        probe = CacheProbe(self, self.secret_env(), "--vault-url", self.vault_url(),
                           "--credential", "secret", "--ttl-ms", "300", "--stale-ms", "300",
                           "--max-backoff-ms", "1000", "--retries", "1", "--retry-delay-ms",
                           "100", *args)
        self.assertTrue(probe.command(f"watch {name}")["ok"])
        self.assertSecret(probe.get(name), name, v1, old)
        self.assertTrue(probe.command(f"last-error {name}")["ok"])
        return probe, old, v1

    def serve_through_outage(self, probe, name, value, version):
        """While the server is down: every read returns the cached value, and the cache says why
        it could not refresh."""
        def failed_read():
            r = probe.get(name)
            self.assertSecret(r, name, version, value)
            err = probe.command(f"last-error {name}")
            return err if not err.get("ok") else None
        err = wait_until(failed_read, interval=0.2)
        self.assertTrue(err, f"no read failed while the server was down\n{probe.diagnostics()}")
        self.assertError(err, "UNAVAILABLE")
        for _ in range(3):
            self.assertSecret(probe.get(name), name, version, value)
        stats = probe.stats()
        self.assertGreaterEqual(stats["cache"]["errors"], 1, stats)
        self.assertGreaterEqual(stats["cache"]["stale_hits"], 1, stats)
        self.assertGreaterEqual(stats["requests"]["failed"], 1, stats)

    def recover(self, probe, name):
        """Restart, rotate as the administrator, and wait for the cache to see it by itself."""
        port, data = self.srv.port, self.srv.data_dir
        self.srv.start()
        self.assertEqual((self.srv.port, self.srv.data_dir), (port, data))
        new = self.value(f"{name}-2")
        v2 = self.set_secret(name, new)
        change = probe.wait_for(lambda e: e.get("event") == "change", "a change after the restart")
        self.assertSecret(change, name, v2, new)
        return new, v2

    def after_recovery(self, probe, name, value, version):
        probe.settle()
        self.assertEqual(len(probe.changes()), 1, probe.diagnostics())
        self.assertSecret(probe.get(name), name, version, value)
        self.assertTrue(wait_until(lambda: probe.command(f"last-error {name}")["ok"],
                                   interval=0.2), probe.diagnostics())
        self.assertTrue(self.srv.running())
        probe.quit()

    def test_an_outage_serves_the_cached_value_and_the_watch_stream_recovers(self):
        name = "sdk-outage-watch"
        probe, old, v1 = self.outage(name, "--poll-ms", "600000")
        probe.wait_stream_open()
        self.srv.stop()
        probe.wait_for(lambda e: e.get("event") == "stream" and e.get("state") == "ended",
                       "the end of the watch stream")
        self.serve_through_outage(probe, name, old, v1)
        new, v2 = self.recover(probe, name)
        probe.wait_stream_open(2)
        self.after_recovery(probe, name, new, v2)

    def test_an_outage_serves_the_cached_value_and_polling_recovers(self):
        name = "sdk-outage-poll"
        probe, old, v1 = self.outage(name, "--no-watch", "--poll-ms", "500")
        self.srv.stop()
        self.serve_through_outage(probe, name, old, v1)
        new, v2 = self.recover(probe, name)
        self.after_recovery(probe, name, new, v2)
        self.assertEqual(probe.select("stream"), [])


# ---- keys ---------------------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key(reply):
    """The python3-cryptography public key of a probe's key reply."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if reply["kty"].startswith("RSA"):
        return rsa.RSAPublicNumbers(int.from_bytes(unb64url(reply["e"]), "big"),
                                    int.from_bytes(unb64url(reply["n"]), "big")).public_key()
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1(),
             "P-256K": ec.SECP256K1()}[reply["crv"]]
    return ec.EllipticCurvePublicNumbers(int.from_bytes(unb64url(reply["x"]), "big"),
                                         int.from_bytes(unb64url(reply["y"]), "big"),
                                         curve).public_key()


def der_signature(raw):
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                int.from_bytes(raw[half:], "big"))


class SdkKeyTests(SdkTestCase):
    """KeyClient and CryptographyClient with the dev service principal, whose access policy on
    the dev vault grants every key permission."""

    def keys(self, *commands):
        """Runs `sdk_probe keys` over `commands`; returns one reply per command."""
        argv = [probe_binary(), "keys", "--credential", "secret", "--vault-url", self.vault_url()]
        p = subprocess.run(argv, env=self.secret_env(), capture_output=True,
                           timeout=RUN_TIMEOUT_S, input="\n".join(commands).encode() + b"\n")
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        self.probe_outputs.append(("probe keys " + "; ".join(commands), out + err))
        what = f"probe keys exited {p.returncode}\nstdout: {out}\nstderr: {err[-3000:]}"
        self.assertEqual(p.returncode, 0, what)
        self.assertFalse(sanitizer_report(err), what)
        replies = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(len(replies), len(commands), what)
        return replies

    def assertOk(self, reply):
        self.assertTrue(reply.get("ok"), reply)
        return reply

    def test_cryptography_both_ways_with_created_keys(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
        rsa_name, ec_name = f"sdk-rsa-{uuid.uuid4().hex[:6]}", f"sdk-ec-{uuid.uuid4().hex[:6]}"
        message = os.urandom(100)
        digest = hashlib.sha256(message).digest()
        plain = os.urandom(40)
        self.secrets["a plaintext"] = b64url(plain)
        created_rsa, created_ec, sig_rs, sig_ps, sig_es, enc, wrapped = self.keys(
            f"create {rsa_name} RSA 3072 -",
            f"create {ec_name} EC P-384 sign,verify",
            f"sign {rsa_name} - RS256 {b64url(digest)}",
            f"sign-data {rsa_name} - PS512 {b64url(message)}",
            f"sign-data {ec_name} - ES384 {b64url(message)}",
            f"encrypt {rsa_name} - RSA-OAEP-256 {b64url(plain)}",
            f"wrap {rsa_name} - RSA1_5 {b64url(plain[:32])}")
        self.assertOk(created_rsa)
        self.assertEqual((created_rsa["kty"], len(unb64url(created_rsa["n"]))), ("RSA", 384))
        self.assertEqual(created_ec["crv"], "P-384")
        self.assertEqual(sorted(created_ec["key_ops"]), ["sign", "verify"])
        rsa_pub, ec_pub = public_key(created_rsa), public_key(created_ec)
        # What the vault signed through the SDK verifies here (raises if not).
        for reply in (sig_rs, sig_ps, sig_es, enc, wrapped):
            self.assertOk(reply)
            self.assertEqual(reply["kid"].rsplit("/", 1)[1],
                             (created_ec if reply is sig_es else created_rsa)["version"], reply)
        rsa_pub.verify(unb64url(sig_rs["value"]), digest, padding.PKCS1v15(),
                       Prehashed(hashes.SHA256()))
        rsa_pub.verify(unb64url(sig_ps["value"]), message,
                       padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.AUTO),
                       hashes.SHA512())
        ec_pub.verify(der_signature(unb64url(sig_es["value"])), message,
                      ec.ECDSA(hashes.SHA384()))
        self.assertEqual(len(unb64url(enc["value"])), 384)

        # What is encrypted and signed here, the SDK decrypts and verifies; a tampered
        # signature is false, not an error.
        mine = rsa_pub.encrypt(plain, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(),
                                                   None))
        bad = bytearray(unb64url(sig_es["value"]))
        bad[5] ^= 1
        version = created_rsa["version"]
        dec, dec_mine, unwrapped, ok_rs, ok_es, tampered = self.keys(
            f"decrypt {rsa_name} {version} RSA-OAEP-256 {enc['value']}",
            f"decrypt {rsa_name} - RSA-OAEP {b64url(mine)}",
            f"unwrap {rsa_name} - RSA1_5 {wrapped['value']}",
            f"verify {rsa_name} - RS256 {b64url(digest)} {sig_rs['value']}",
            f"verify-data {ec_name} - ES384 {b64url(message)} {sig_es['value']}",
            f"verify-data {ec_name} - ES384 {b64url(message)} {b64url(bytes(bad))}")
        for reply, want in ((dec, plain), (dec_mine, plain), (unwrapped, plain[:32])):
            self.assertOk(reply)
            self.assertEqual((reply["sha256"], reply["length"]),
                             (hashlib.sha256(want).hexdigest(), len(want)), reply)
        self.assertIs(self.assertOk(ok_rs)["value"], True)
        self.assertIs(self.assertOk(ok_es)["value"], True)
        self.assertIs(self.assertOk(tampered)["value"], False)

        # Refusals are values: an operation the key does not permit, a disabled key, a digest
        # of the wrong length, an algorithm of another key type.
        not_permitted, disabled, sign_disabled, short, wrong_alg = self.keys(
            f"encrypt {ec_name} - RSA-OAEP {b64url(plain)}",
            f"update {rsa_name} - disabled -",
            f"sign {rsa_name} - RS256 {b64url(digest)}",
            f"sign {ec_name} - ES384 {b64url(digest)}",
            f"sign {ec_name} - RS256 {b64url(digest)}")
        self.assertError(not_permitted, "PERMISSION_DENIED", "Forbidden")
        self.assertIs(self.assertOk(disabled)["enabled"], False)
        self.assertError(sign_disabled, "PERMISSION_DENIED", "Forbidden")
        self.assertError(short, "INVALID_ARGUMENT", "BadParameter")
        self.assertError(wrong_alg, "INVALID_ARGUMENT", "BadParameter")

    def test_an_imported_key_answers_only_with_its_public_half(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        private = ec.generate_private_key(ec.SECP256K1())
        numbers = private.private_numbers()
        d = b64url(numbers.private_value.to_bytes(32, "big"))
        self.secrets["the imported key's private member"] = d
        jwk = {"kty": "EC", "crv": "P-256K", "d": d,
               "x": b64url(numbers.public_numbers.x.to_bytes(32, "big")),
               "y": b64url(numbers.public_numbers.y.to_bytes(32, "big"))}
        path = os.path.join(self.srv.root, f"import-{uuid.uuid4().hex[:6]}.jwk")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(jwk, f)
        self.addCleanup(os.remove, path)
        name = f"sdk-imp-{uuid.uuid4().hex[:6]}"
        message = os.urandom(64)
        imported, got, signed = self.keys(f"import {name} {path}", f"get {name}",
                                          f"sign-data {name} - ES256K {b64url(message)}")
        self.assertOk(imported)
        self.assertEqual((imported["x"], imported["y"]), (jwk["x"], jwk["y"]))
        self.assertEqual(got["version"], imported["version"])
        private.public_key().verify(der_signature(unb64url(self.assertOk(signed)["value"])),
                                    message, ec.ECDSA(hashes.SHA256()))
        self.assertNotIn(d, json.dumps([imported, got, signed]))
        # Not JSON: refused without quoting it.
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"kty":"EC","d":"' + d + '"')
        refused, = self.keys(f"import {name} {path}")
        self.assertError(refused, "INVALID_ARGUMENT")

    def test_the_lifecycle_of_a_key(self):
        name = f"sdk-life-{uuid.uuid4().hex[:6]}"
        (v1, v2, malformed, got1, versions, listed, updated, policy, policy_read, rotated, backup, deleted,
         deleted_read, deleted_list, gone, recovered, random, too_many) = self.keys(
            f"create {name} EC P-256 -",
            f"create {name} EC P-256 -",
            f"get {name} VERSION1",
            f"get {name} {'0' * 32}",
            f"versions {name}",
            "list",
            f"update {name} {'0' * 32} disabled verify",
            f"policy-set {name} P90D P1Y",
            f"policy-get {name}",
            f"rotate {name}",
            f"backup {name}",
            f"delete {name}",
            f"deleted {name}",
            "list-deleted",
            f"get {name}",
            f"recover {name}",
            "rng 32",
            "rng 129")
        # A malformed version and a missing one are error values.
        self.assertOk(v1)
        self.assertOk(v2)
        self.assertError(malformed, "INVALID_ARGUMENT", "BadParameter")
        self.assertError(got1, "NOT_FOUND", "KeyNotFound")
        self.assertEqual(len(self.assertOk(versions)["items"]), 2)
        self.assertIn(name, [i["name"] for i in self.assertOk(listed)["items"]])
        self.assertError(updated, "NOT_FOUND", "KeyNotFound")
        self.assertEqual(self.assertOk(policy)["expires_in"], "P1Y")
        self.assertIn({"action": "Rotate", "time_after_create": "P90D", "time_before_expiry": ""},
                      policy["actions"])
        self.assertEqual(self.assertOk(policy_read)["actions"], policy["actions"])
        self.assertTrue(policy_read["id"].endswith(f"/keys/{name}/rotationpolicy"), policy_read)
        self.assertOk(rotated)
        self.assertNotIn(rotated["version"], (v1["version"], v2["version"]))
        self.assertGreater(rotated["expires_on"], time.time() + 300 * 86400, rotated)
        self.assertGreater(self.assertOk(backup)["length"], 100)
        self.assertTrue(self.assertOk(deleted)["recovery_id"].endswith(f"/deletedkeys/{name}"))
        self.assertEqual(self.assertOk(deleted_read)["version"], rotated["version"])
        self.assertIn(name, [i["name"] for i in self.assertOk(deleted_list)["items"]])
        self.assertError(gone, "NOT_FOUND", "KeyNotFound")
        self.assertEqual(self.assertOk(recovered)["version"], rotated["version"])
        self.assertEqual(len(unb64url(self.assertOk(random)["value"])), 32)
        self.assertError(too_many, "INVALID_ARGUMENT")

        # Version by version: disable the first, back up, delete, purge and restore; the
        # restored key has every version as it was backed up.
        v1_disabled, backup_again, purge_live, delete_again, purge, restored, versions_after = (
            self.keys(f"update {name} {v1['version']} disabled verify",
                      f"backup {name}",
                      f"purge {name}",
                      f"delete {name}",
                      f"purge {name}",
                      f"restore {name}",
                      f"versions {name}"))
        self.assertIs(self.assertOk(v1_disabled)["enabled"], False)
        self.assertEqual(v1_disabled["key_ops"], ["verify"])
        self.assertOk(backup_again)
        self.assertIs(purge_live.get("ok"), False, purge_live)  # only a deleted key is purged
        self.assertOk(delete_again)
        self.assertOk(purge)
        self.assertEqual(self.assertOk(restored)["version"], rotated["version"])
        states = {i["version"]: i["enabled"] for i in self.assertOk(versions_after)["items"]}
        self.assertEqual(states, {v1["version"]: False, v2["version"]: True,
                                  rotated["version"]: True})
