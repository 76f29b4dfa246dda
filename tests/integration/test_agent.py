"""`coffer agent`, end to end against the real server (docs/agent.md).

Standalone mounts (SecretProviderClass files + a target directory each):

* An initial mount with each identity of AKS: a service principal from the mount's
  nodePublishSecretRef, the node's managed identity (a VM's identity endpoint in the agent's
  environment), a user-assigned identity of that VM, and workload identity (a service-account
  token file from a local OIDC issuer). The kubelet atomic-writer layout (..data symlink swap),
  file modes and ownership as asked (ownership only as root: chown to another uid needs it, and
  the test says so when it skips), aliases, objectEncoding, version history folders.
* Rotation by push (the watch stream, with a poll interval of an hour) and by poll (--no-watch):
  the file content changes, the reload hook fires once per change, never when bytes are
  unchanged.
* 403 on one object (an RBAC vault, a role on one secret), a malformed SecretProviderClass, a
  certificate that is not there, a key that is not there (a secret of its name is another
  object):
  clear errors in the status record and `coffer agent status`, no partial files, old files kept.
* The vault down then up (its own server): files stay as they were, the error is reported, the
  agent recovers by itself.
* `coffer doctor` names what is wrong and how to fix it; metrics carry the driver's names.

The CSI provider: coffer-csi-client calls Mount over the agent's Unix socket exactly as the
upstream driver does (attributes JSON with the pod keys, secrets `null`, permission "420", the
service-account token in csi.storage.k8s.io/serviceAccount.tokens), and gets the files and
object versions of the Azure provider; a forged token and malformed requests are refused.

No secret value, client secret or token appears in the agent's output, its status records or
the doctor's output. Every wait is bounded (WAIT_S) and none is a performance claim.
"""

import base64
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
import unittest
import uuid

from harness import (ServerTestCase, coffer_binary, read_text, start_server, stop_process,
                     wait_until)
from oidc_issuer import OidcIssuer

RG = "rg-agent"
WAIT_S = 60.0   # bounds a wait for something that should happen; never a performance claim
TS_DIR = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.[A-Za-z0-9]+$")


def csi_client_binary():
    return os.path.join(os.path.dirname(coffer_binary()), "coffer-csi-client")


def spc_yaml(objects, vault="dev", tenant="", name="app-spc", **params):
    """A SecretProviderClass manifest with the Azure provider's parameters."""
    items = ""
    for o in objects:
        o = dict({"objectType": "secret"}, **({"objectName": o} if isinstance(o, str) else o))
        items += "        - |\n" + "".join(f"          {k}: {json.dumps(str(v))}\n"
                                           for k, v in o.items())
    extra = "".join(f"    {k}: {json.dumps(str(v))}\n" for k, v in params.items())
    return ("apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
            f"metadata:\n  name: {name}\n  namespace: default\nspec:\n  provider: azure\n"
            f"  parameters:\n    keyvaultName: {vault}\n    tenantID: {json.dumps(tenant)}\n"
            + extra + "    objects: |\n      array:\n" + items)


def k8s_secret(data):
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sp"},
                       "stringData": data})


class Agent:
    """`coffer agent --config … --state-dir … --metrics-port 0 [args]` in its own directory,
    stopped by PID in cleanup."""

    def __init__(self, case, mounts, args=(), env=None, poll="1h", jitter=0):
        self.case = case
        self.dir = tempfile.mkdtemp(prefix="agent-", dir=case.srv.root)
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "agent.yaml")
        # JSON is YAML: the config is written as JSON.
        with open(self.config, "w", encoding="utf-8") as f:
            json.dump({"pollInterval": poll, "jitter": jitter, "mounts": mounts}, f, indent=1)
        config_args = ["--config", self.config] if mounts else []
        self.out_path = os.path.join(self.dir, "agent.out")
        self.err_path = os.path.join(self.dir, "agent.err")
        self.argv = [coffer_binary(), "agent"] + config_args + [
            "--state-dir", self.state, "--metrics-port", "0"] + list(args)
        self.env = env if env is not None else case.agent_env()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err)
        case.addCleanup(self.stop)
        wait_until(lambda: "agent ready" in read_text(self.out_path) or
                   self.proc.poll() is not None, timeout=WAIT_S)
        if "agent ready" not in read_text(self.out_path):
            raise AssertionError(f"agent did not start ({self.proc.poll()}):\n{self.output()}")
        m = re.search(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", read_text(self.out_path))
        self.metrics_port = int(m.group(1))
        m = re.search(r"CSI provider: unix://(\S+)", read_text(self.out_path))
        self.socket = m.group(1) if m else None

    def output(self):
        return read_text(self.out_path) + read_text(self.err_path)

    def stop(self):
        stop_process(self.proc)

    def status(self, name):
        path = os.path.join(self.state, "mounts", name + ".json")
        text = read_text(path)
        return json.loads(text) if text else {}

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=10) as r:
            return r.read().decode()


class AgentTestCase(ServerTestCase):
    """Fixtures: a VM "vm-agent" (system identity + "uai-agent") whose identity endpoint is the
    agent's; "uai-agent-fed" trusting a local OIDC issuer; all may read the dev vault.  The dev
    service principal is the nodePublishSecretRef identity."""

    maxDiff = 6000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secrets = {}
        cls.uai = cls.coffer_json("identity", "create", "-n", "uai-agent", "-g", RG)
        cls.vm = cls.coffer_json("vm", "create", "-n", "vm-agent", "-g", RG,
                                 "--assign-identity", "[system]", cls.uai["id"])
        cls.node_env = cls.endpoint_env("vm-agent")
        cls.issuer = OidcIssuer(subject="system:serviceaccount:prod:web")
        cls.addClassCleanup(cls.issuer.stop)
        cls.fed = cls.coffer_json("identity", "create", "-n", "uai-agent-fed", "-g", RG)
        cls.coffer_json("identity", "federated-credential", "create", "--name", "web",
                        "--identity-name", "uai-agent-fed", "-g", RG, "--issuer", cls.issuer.url,
                        "--subject", cls.issuer.subject)
        for principal in (cls.vm["identity"]["principalId"], cls.uai["principalId"],
                          cls.fed["principalId"]):
            cls.grant(principal)
        cls.sp_file = os.path.join(cls.srv.root, "sp-secret.json")
        with open(cls.sp_file, "w", encoding="utf-8") as f:
            f.write(k8s_secret({"clientid": cls.srv.env["AZURE_CLIENT_ID"],
                                "clientsecret": cls.srv.env["AZURE_CLIENT_SECRET"]}))
        cls.secrets["the dev client secret"] = cls.srv.env["AZURE_CLIENT_SECRET"]

    @classmethod
    def endpoint_env(cls, name):
        rc, out, err = cls.run_coffer("vm", "identity", "endpoint", "-n", name, "-g", RG, "--env")
        if rc != 0:
            raise AssertionError(f"identity endpoint of {name}: {rc}\n{out}\n{err}")
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        cls.secrets[f"the identity header of {name}"] = env["IDENTITY_HEADER"]
        return env

    @classmethod
    def grant(cls, object_id, vault="dev"):
        cls.coffer_json("keyvault", "set-policy", "--name", vault, "--object-id", object_id,
                        "--secret-permissions", "get", "list")

    def set_secret(self, name, value, vault="dev", content_type=None):
        body = {"value": value}
        if content_type:
            body["contentType"] = content_type
        r = self.srv.kv("PUT", f"/secrets/{name}", body, vault=vault)
        self.assertEqual(r.status, 200, repr(r))
        self.secrets[f"secret {name}"] = value
        return r.json()["id"].rstrip("/").rsplit("/", 1)[1]

    @staticmethod
    def value(label):
        return f"{label}-{uuid.uuid4().hex}"

    def agent_env(self, extra=None):
        """The agent's environment: the runner's without AZURE_*/COFFER_*/IDENTITY_*, the node's
        identity endpoint, the CA, the authority host and the DNS suffix; no client secret."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
               and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        env["COFFER_CA_FILE"] = self.srv.ca_path
        env["AZURE_AUTHORITY_HOST"] = self.srv.env["AZURE_AUTHORITY_HOST"]
        env["COFFER_VAULT_DNS_SUFFIX"] = self.srv.env["COFFER_VAULT_DNS_SUFFIX"]
        env.update(self.node_env)
        env.update(extra or {})
        return env

    def mount(self, name, objects, spc_params=None, **fields):
        """A mount entry with its own SPC file and target (the dev SP unless spc_params choose
        another identity)."""
        d = tempfile.mkdtemp(prefix=f"mount-{name}-", dir=self.srv.root)
        spc = os.path.join(d, "spc.yaml")
        params = dict(spc_params or {})
        vault = params.pop("vault", "dev")
        with open(spc, "w", encoding="utf-8") as f:
            f.write(spc_yaml(objects, vault=vault, tenant=self.srv.tenant, **params))
        entry = {"name": name, "secretProviderClass": spc, "target": os.path.join(d, "target")}
        if not spc_params:
            entry["nodePublishSecretRef"] = self.sp_file
        entry.update(fields)
        return entry

    def read(self, entry, path):
        return read_text(os.path.join(entry["target"], path))

    def wait_content(self, entry, path, want, agent):
        ok = wait_until(lambda: self.read(entry, path) == want, timeout=WAIT_S)
        self.assertTrue(ok, f"{entry['name']}/{path} never became the expected value; status: "
                        f"{agent.status(entry['name'])}\n{agent.output()[-3000:]}")

    def assertNoSecrets(self, *texts):
        for text in texts:
            for what, v in self.secrets.items():
                self.assertNotIn(v, text, f"{what} appears")

    def assertLayout(self, entry, names):
        target = entry["target"]
        entries = sorted(os.listdir(target))
        ts = [e for e in entries if TS_DIR.match(e)]
        self.assertEqual(len(ts), 1, entries)
        self.assertEqual(os.readlink(os.path.join(target, "..data")), ts[0])
        self.assertEqual(sorted(e for e in entries if not e.startswith("..")), sorted(names))
        for n in names:
            self.assertEqual(os.readlink(os.path.join(target, n)), "..data/" + n)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(target, ts[0])).st_mode), 0o755)


class StandaloneMountTests(AgentTestCase):

    def test_each_identity_mounts_with_the_atomic_writer_layout(self):
        v1 = self.value("db")
        self.set_secret("agent-db", v1)
        token_file = os.path.join(self.srv.root, "sa-token")
        with open(token_file, "w", encoding="utf-8") as f:
            f.write(self.issuer.mint() + "\n")
        self.secrets["the service-account token"] = read_text(token_file).strip()
        mounts = [
            self.mount("sp", ["agent-db"], permission="0640"),
            self.mount("node", ["agent-db"], {"useVMManagedIdentity": "true"}),
            self.mount("uai", ["agent-db"], {"useVMManagedIdentity": "true",
                                             "userAssignedIdentityID": self.uai["clientId"]}),
            self.mount("wi", ["agent-db"], {"clientID": self.fed["clientId"]},
                       serviceAccountTokenFile=token_file),
        ]
        agent = Agent(self, mounts)
        self.assertIn("mounts: 4 of 4 mounted", agent.output())
        for m in mounts:
            self.assertEqual(self.read(m, "agent-db"), v1, m["name"])
            self.assertLayout(m, ["agent-db"])
            st = agent.status(m["name"])
            self.assertTrue(st["mounted"], st)
            self.assertEqual(st["lastError"], "", st)
            self.assertEqual([o["id"] for o in st["objects"]], ["secret/agent-db"])
        f = os.path.join(mounts[0]["target"], "..data", "agent-db")
        self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(mounts[1]["target"], "..data",
                                                           "agent-db")).st_mode), 0o644)
        self.assertIn("user-assigned", agent.status("uai")["identity"])
        self.assertIn("workload identity", agent.status("wi")["identity"])
        rc = subprocess.run([coffer_binary(), "agent", "status", "--state-dir", agent.state],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(rc.returncode, 0, rc.stderr)
        for m in mounts:
            self.assertIn(m["name"], rc.stdout)
        self.assertIn("secret/agent-db", rc.stdout)
        status_texts = [read_text(os.path.join(agent.state, "mounts", n + ".json"))
                        for n in ("sp", "node", "uai", "wi")]
        self.assertNoSecrets(agent.output(), rc.stdout, *status_texts)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: the agent gives the mounted files to "
                         "uid 1234 and gid 5678 (fchown), which only root may do")
    def test_files_are_owned_as_asked(self):
        v1 = self.value("owned")
        self.set_secret("agent-owned", v1)
        m = self.mount("owned", ["agent-owned"], permission="0640", uid=1234, gid=5678)
        agent = Agent(self, [m])
        self.assertEqual(self.read(m, "agent-owned"), v1)
        s = os.stat(os.path.join(m["target"], "..data", "agent-owned"))
        self.assertEqual(stat.S_IMODE(s.st_mode), 0o640)
        self.assertEqual((s.st_uid, s.st_gid), (1234, 5678))
        self.assertTrue(agent.status("owned")["mounted"])

    def test_output_rules_aliases_encodings_and_version_history(self):
        raw = os.urandom(24)
        self.set_secret("agent-b64", base64.b64encode(raw).decode())
        self.set_secret("agent-hex", raw.hex())
        versions = []
        for i in range(3):
            # Versions are ordered by `created`, which Key Vault keeps in whole seconds.
            if i:
                time.sleep(1.1)
            versions.append(self.set_secret("agent-hist", self.value(f"h{i}")))
        values = [self.secrets["secret agent-hist"]]  # the newest
        m = self.mount("rules", [
            {"objectName": "agent-b64", "objectType": "secret", "objectEncoding": "base64",
             "objectAlias": "bin/raw.bin"},
            {"objectName": "agent-hex", "objectType": "secret", "objectEncoding": "hex",
             "filePermission": "0600"},
            {"objectName": "agent-hist", "objectType": "secret", "objectVersionHistory": 2},
        ])
        agent = Agent(self, [m])
        with open(os.path.join(m["target"], "bin", "raw.bin"), "rb") as f:
            self.assertEqual(f.read(), raw)
        with open(os.path.join(m["target"], "agent-hex"), "rb") as f:
            self.assertEqual(f.read(), raw)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(m["target"], "agent-hex")).st_mode),
                         0o600)
        self.assertEqual(self.read(m, "agent-hist/0"), values[0])
        self.assertTrue(self.read(m, "agent-hist/1").startswith("h1-"))
        self.assertFalse(os.path.exists(os.path.join(m["target"], "agent-hist", "2")))
        st = agent.status("rules")
        ids = {o["id"]: o["version"] for o in st["objects"]}
        self.assertEqual(ids["secret/agent-hist/0"], versions[2])
        self.assertEqual(ids["secret/agent-hist/1"], versions[1])
        self.assertLayout(m, ["bin", "agent-hex", "agent-hist"])

    def test_rotation_by_push_reloads_once_per_change(self):
        v1 = self.value("push")
        self.set_secret("agent-push", v1)
        self.set_secret("agent-still", self.value("still"))
        hook_log = os.path.join(self.srv.root, "hook-push.log")
        m = self.mount("push", ["agent-push", "agent-still"],
                       reload={"command": ["/bin/sh", "-c", f'echo "$COFFER_MOUNT" >> {hook_log}']})
        agent = Agent(self, [m], poll="1h")  # only the watch stream can explain a change
        self.assertEqual(self.read(m, "agent-push"), v1)
        first_ts = os.readlink(os.path.join(m["target"], "..data"))
        v2 = self.value("push")
        self.set_secret("agent-push", v2)
        self.wait_content(m, "agent-push", v2, agent)
        self.assertTrue(wait_until(lambda: read_text(hook_log) == "push\n", timeout=WAIT_S),
                        read_text(hook_log))
        self.assertNotEqual(os.readlink(os.path.join(m["target"], "..data")), first_ts)
        # A secret the mount does not use, then a new version with the same bytes: no write, no
        # reload. The status record names the version the agent read, and counts the reloads
        # it decided on in the same update: once it shows the new version, both changes were
        # handled (the watch stream hands them over in order).
        ts = os.readlink(os.path.join(m["target"], "..data"))
        self.set_secret("agent-other", self.value("other"))
        same_bytes = self.set_secret("agent-push", v2)

        def read_version():
            objects = agent.status("push").get("objects", [])
            return {o.get("id"): o.get("version") for o in objects}.get("secret/agent-push")
        self.assertTrue(wait_until(lambda: read_version() == same_bytes, timeout=WAIT_S),
                        agent.status("push"))
        self.assertEqual(agent.status("push")["reloads"], 1, agent.status("push"))
        self.assertEqual(os.readlink(os.path.join(m["target"], "..data")), ts)
        self.assertEqual(read_text(hook_log), "push\n")
        text = agent.metrics()
        self.assertRegex(text, r'rotation_reconcile_total\{[^}]*rotated="true"\} [1-9]')
        self.assertIn("node_publish_total", text)
        self.assertIn("rotation_reconcile_duration_sec_bucket", text)
        self.assertIn('keyvault_request_count{object_type="secret",object_name="agent-push"',
                      text)
        self.assertNoSecrets(agent.output(), text)

    def test_rotation_by_poll_and_a_signal_hook(self):
        v1 = self.value("poll")
        self.set_secret("agent-poll", v1)
        # A process to signal: it counts SIGHUPs into a file.
        count = os.path.join(self.srv.root, "hups")
        pid_file = os.path.join(self.srv.root, "hup.pid")
        script = ("import signal,sys,time\n"
                  "n=0\n"
                  "def h(*_):\n"
                  "    global n; n+=1; open(sys.argv[1],'w').write(str(n))\n"
                  "signal.signal(signal.SIGHUP,h)\n"
                  "open(sys.argv[2],'w').write(__import__('os').getpid().__str__())\n"
                  "time.sleep(120)\n")
        proc = subprocess.Popen(["python3", "-c", script, count, pid_file])
        self.addCleanup(stop_process, proc)
        self.assertTrue(wait_until(lambda: read_text(pid_file).strip() == str(proc.pid)))
        m = self.mount("poll", ["agent-poll"], reload={"signal": "HUP", "pidFile": pid_file})
        agent = Agent(self, [m], args=["--no-watch"], poll="1s", jitter=0.1)
        v2 = self.value("poll")
        self.set_secret("agent-poll", v2)
        self.wait_content(m, "agent-poll", v2, agent)
        self.assertTrue(wait_until(lambda: read_text(count) == "1", timeout=WAIT_S))
        # Several unchanged polls: the status record's last attempt (whole seconds) moves on.
        since = agent.status("poll")["lastAttempt"]
        self.assertTrue(wait_until(lambda: agent.status("poll")["lastAttempt"] >= since + 3,
                                   timeout=WAIT_S), agent.status("poll"))
        self.assertEqual(agent.status("poll")["reloads"], 1, agent.status("poll"))
        self.assertEqual(read_text(count), "1")

    def test_403_on_one_object_keeps_old_files_and_recovers(self):
        vault = self.coffer_json("keyvault", "create", "-n", "agentrbac", "-g", RG)
        a, b = self.value("a"), self.value("b")
        self.set_secret("allowed", a, vault="agentrbac")
        self.set_secret("denied", b, vault="agentrbac")
        principal = self.vm["identity"]["principalId"]
        self.coffer_json("role", "assignment", "create", "--role", "Key Vault Secrets User",
                         "--assignee-object-id", principal,
                         "--scope", vault["id"] + "/secrets/allowed")
        ok = self.mount("rbac-ok", ["allowed"], {"vault": "agentrbac",
                                                 "useVMManagedIdentity": "true"})
        bad = self.mount("rbac-bad", ["allowed", "denied"], {"vault": "agentrbac",
                                                             "useVMManagedIdentity": "true"})
        agent = Agent(self, [ok, bad], poll="1s")
        self.assertEqual(self.read(ok, "allowed"), a)
        self.assertIn("mounts: 1 of 2 mounted", agent.output())
        self.assertFalse(os.path.exists(bad["target"]) and os.listdir(bad["target"]),
                         "no partial files")
        st = agent.status("rbac-bad")
        self.assertFalse(st["mounted"])
        self.assertIn("objectName:denied", st["lastError"])
        errors = {o["id"]: o.get("error", "") for o in st["objects"]}
        self.assertEqual(errors["secret/allowed"], "")
        self.assertTrue(errors["secret/denied"], st)
        rc = subprocess.run([coffer_binary(), "agent", "status", "--state-dir", agent.state],
                            capture_output=True, text=True, timeout=30)
        self.assertIn("NOT MOUNTED", rc.stdout)
        self.assertIn("denied", rc.stdout)
        # Doctor names the object and the fix.
        doc = subprocess.run([coffer_binary(), "doctor", "--config", agent.config, "--mount",
                              "rbac-bad"], capture_output=True, text=True, timeout=60,
                             env=self.agent_env())
        self.assertEqual(doc.returncode, 1, doc.stdout + doc.stderr)
        self.assertIn("[ok] SecretProviderClass", doc.stdout)
        self.assertIn("[ok] token", doc.stdout)
        self.assertIn("[ok] secret allowed", doc.stdout)
        self.assertIn("[FAIL] secret denied", doc.stdout)
        self.assertIn("Key Vault Secrets User", doc.stdout)
        good = subprocess.run([coffer_binary(), "doctor", "--config", agent.config, "--mount",
                               "rbac-ok"], capture_output=True, text=True, timeout=60,
                              env=self.agent_env())
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
        self.assertNoSecrets(doc.stdout, good.stdout, agent.output())
        # Granted: the next cycle mounts it.
        self.coffer_json("role", "assignment", "create", "--role", "Key Vault Secrets User",
                         "--assignee-object-id", principal,
                         "--scope", vault["id"] + "/secrets/denied")
        self.wait_content(bad, "denied", b, agent)
        # The status record is written after the files.
        self.assertTrue(wait_until(lambda: agent.status("rbac-bad").get("lastError") == "",
                                   timeout=WAIT_S), agent.status("rbac-bad"))

    def test_malformed_spc_and_unsupported_objects_keep_old_files(self):
        v1 = self.value("kept")
        self.set_secret("agent-kept", v1)
        m = self.mount("edit", ["agent-kept"])
        agent = Agent(self, [m], poll="1s")
        self.assertEqual(self.read(m, "agent-kept"), v1)
        ts = os.readlink(os.path.join(m["target"], "..data"))
        cases = [
            ("kind: [", "malformed YAML"),
            (spc_yaml(["agent-kept"], tenant=self.srv.tenant).replace("keyvaultName: dev",
                                                                      "keyvaultName: x"),
             "keyvaultName"),
            (spc_yaml([{"objectName": "agent-kept", "objectType": "vault"}],
                      tenant=self.srv.tenant), "objectType"),
            (spc_yaml(["agent-kept", {"objectName": "tls", "objectType": "cert"}],
                      tenant=self.srv.tenant), "objectType:cert, objectName:tls"),
            (spc_yaml(["agent-kept", {"objectName": "agent-kept", "objectType": "key",
                                      "objectAlias": "k"}], tenant=self.srv.tenant),
             "objectType:key, objectName:agent-kept"),
            (spc_yaml([{"objectName": "agent-kept", "objectAlias": "../escape"}],
                      tenant=self.srv.tenant), '"../escape"'),
        ]
        for text, words in cases:
            with open(m["secretProviderClass"], "w", encoding="utf-8") as f:
                f.write(text)
            ok = wait_until(lambda: words in agent.status("edit").get("lastError", ""),
                            timeout=WAIT_S)
            self.assertTrue(ok, f"{words!r} not in {agent.status('edit')}")
            self.assertEqual(self.read(m, "agent-kept"), v1)
            self.assertEqual(os.readlink(os.path.join(m["target"], "..data")), ts)
            self.assertEqual(sorted(e for e in os.listdir(m["target"]) if not e.startswith("..")),
                             ["agent-kept"])
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(m["target"]), "escape")))
        self.assertIsNone(agent.proc.poll(), "the agent keeps running")

    def test_bad_config_is_a_clear_error(self):
        d = tempfile.mkdtemp(prefix="badcfg-", dir=self.srv.root)
        cases = [
            ("mounts: [", "agent config"),
            (json.dumps({"mounts": []}), "mount"),
            (json.dumps({"mounts": [{"name": "x", "secretProviderClass": "spc.yaml",
                                     "target": "/"}]}), "target"),
            (json.dumps({"pollInterval": "soon", "mounts": []}), "pollInterval"),
        ]
        for text, words in cases:
            path = os.path.join(d, "agent.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            p = subprocess.run([coffer_binary(), "agent", "--config", path, "--state-dir",
                                os.path.join(d, "state")], capture_output=True, text=True,
                               timeout=30, env=self.agent_env())
            self.assertNotEqual(p.returncode, 0, text)
            self.assertIn(words, p.stderr, text)
            self.assertIn("ERROR", p.stderr)


class CsiProviderTests(AgentTestCase):
    """The provider socket, called as the upstream driver calls it."""

    def setUp(self):
        self.csi_dir = tempfile.mkdtemp(prefix="csi-", dir=self.srv.root)
        self.agent = Agent(self, [], args=["--csi-provider-dir", self.csi_dir])

    def attributes(self, objects, token=None, **params):
        token = token if token is not None else self.issuer.mint()
        self.secrets[f"token {len(self.secrets)}"] = token
        items = "".join("  - |\n" + "".join(f"    {k}: {json.dumps(str(v))}\n"
                                            for k, v in dict(
                                                {"objectType": "secret"},
                                                **({"objectName": o} if isinstance(o, str)
                                                   else o)).items())
                        for o in objects)
        attrs = {"keyvaultName": "dev", "tenantID": self.srv.tenant,
                 "clientID": self.fed["clientId"], "objects": "array:\n" + items,
                 "secretProviderClass": "app-spc", "csi.storage.k8s.io/pod.name": "web-7d9c",
                 "csi.storage.k8s.io/pod.namespace": "prod", "csi.storage.k8s.io/pod.uid": "1b7b",
                 "csi.storage.k8s.io/serviceAccount.name": "web",
                 "csi.storage.k8s.io/ephemeral": "true",
                 "csi.storage.k8s.io/serviceAccount.tokens": json.dumps(
                     {"api://AzureADTokenExchange": {"token": token,
                                                     "expirationTimestamp": "2030-01-01T00:00:00Z"}})}
        attrs.update(params)
        return attrs

    def mount_call(self, attributes, secrets="null", permission="420", raw=None):
        path = os.path.join(self.csi_dir, f"attrs-{uuid.uuid4().hex[:6]}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(raw if raw is not None else json.dumps(attributes))
        p = subprocess.run([csi_client_binary(), "--socket", self.agent.socket,
                            "--attributes-file", path, "--secrets", secrets, "--permission",
                            permission, "--target-path",
                            "/var/lib/kubelet/pods/1b7b/volumes/kubernetes.io~csi/v/mount",
                            "--timeout-ms", "60000"], capture_output=True, text=True, timeout=90)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            out = {"raw": p.stdout}
        return p.returncode, out, p.stderr

    def test_mount_as_the_driver_sends_it(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.agent.socket).st_mode), 0o600)
        v = self.value("csi")
        version = self.set_secret("csi-db", v)
        raw = os.urandom(16)
        self.set_secret("csi-bin", base64.b64encode(raw).decode())
        rc, out, err = self.mount_call(self.attributes(
            ["csi-db", {"objectName": "csi-bin", "objectType": "secret",
                        "objectEncoding": "base64", "objectAlias": "certs/bin",
                        "filePermission": "0600"}]))
        self.assertEqual(rc, 0, f"{out}\n{err}")
        self.assertEqual(out["version"]["runtime_name"], "coffer")
        files = {f["path"]: f for f in out["files"]}
        self.assertEqual(sorted(files), ["certs/bin", "csi-db"])
        self.assertEqual(base64.b64decode(files["csi-db"]["contents_base64"]).decode(), v)
        self.assertEqual(files["csi-db"]["mode"], 420)
        self.assertEqual(base64.b64decode(files["certs/bin"]["contents_base64"]), raw)
        self.assertEqual(files["certs/bin"]["mode"], 0o600)
        versions = {o["id"]: o["version"] for o in out["object_version"]}
        self.assertEqual(versions["secret/csi-db"], version)
        self.assertIn("secret/csi-bin", versions)
        self.assertNoSecrets(self.agent.output())

    def test_refusals_are_grpc_errors_with_context(self):
        self.set_secret("csi-x", self.value("x"))
        forged = self.issuer.mint(claims={"sub": "system:serviceaccount:prod:intruder"})
        rc, out, _ = self.mount_call(self.attributes(["csi-x"], token=forged))
        self.assertEqual(rc, 2, out)
        self.assertIn("prod/web-7d9c", out.get("message", ""), out)
        rc, out, _ = self.mount_call(self.attributes(["csi-missing"]))
        self.assertEqual(rc, 2, out)
        self.assertEqual(out.get("grpc_code"), "NOT_FOUND", out)
        self.assertIn("objectName:csi-missing", out.get("message", ""))
        # Malformed requests: attributes, secrets, permission, missing pod info.
        no_pod = self.attributes(["csi-x"])
        del no_pod["csi.storage.k8s.io/pod.name"]
        for kwargs in ({"attributes": None, "raw": "{not json"},
                       {"attributes": None, "raw": json.dumps({"keyvaultName": 1})},
                       {"attributes": self.attributes(["csi-x"]), "secrets": "[1]"},
                       {"attributes": self.attributes(["csi-x"]), "permission": "rw"},
                       {"attributes": no_pod},
                       {"attributes": self.attributes([{"objectName": "csi-x",
                                                        "objectAlias": "/etc/passwd"}])}):
            rc, out, _ = self.mount_call(**kwargs)
            self.assertEqual(rc, 2, (kwargs, out))
            self.assertEqual(out.get("grpc_code"), "INVALID_ARGUMENT", (kwargs, out))
        # Still serving.
        rc, out, err = self.mount_call(self.attributes(["csi-x"]))
        self.assertEqual(rc, 0, f"{out}\n{err}")
        text = self.agent.metrics()
        self.assertRegex(text, r"node_publish_error_total\{[^}]*\} [1-9]")
        self.assertNoSecrets(self.agent.output(), text)


class AgentOutageTests(AgentTestCase):
    """Its own server, stopped and started again under the agent."""

    def test_vault_down_then_up(self):
        v1 = self.value("outage")
        self.set_secret("agent-outage", v1)
        m = self.mount("outage", ["agent-outage"])
        agent = Agent(self, [m], poll="1s")
        ts = os.readlink(os.path.join(m["target"], "..data"))
        port = self.srv.port
        self.srv.stop()
        ok = wait_until(lambda: agent.status("outage").get("consecutiveFailures", 0) >= 3,
                        timeout=WAIT_S)
        self.assertTrue(ok, agent.status("outage"))  # failed polls, files kept through them
        self.assertTrue(agent.status("outage").get("lastError"), agent.status("outage"))
        self.assertEqual(self.read(m, "agent-outage"), v1)
        self.assertEqual(os.readlink(os.path.join(m["target"], "..data")), ts)
        self.assertTrue(agent.status("outage")["mounted"])
        self.assertGreaterEqual(agent.status("outage")["consecutiveFailures"], 1)
        self.assertIsNone(agent.proc.poll())
        self.srv.start(port=port)
        v2 = self.value("outage")
        self.set_secret("agent-outage", v2)
        self.wait_content(m, "agent-outage", v2, agent)
        self.assertTrue(wait_until(lambda: agent.status("outage").get("lastError") == "",
                                   timeout=WAIT_S))


if __name__ == "__main__":
    unittest.main()
