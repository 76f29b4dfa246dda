"""Coffer served to other machines: network namespaces stand in for a vault host and two nodes.

The test builds its own small network and removes it afterwards, also when a test fails:

  * four network namespaces: a switch (a bridge) and three hosts, each joined to the bridge by a
    veth pair; `vault-1` is 10.231.0.1, `node-1` .2, `node-2` .3, and nothing else is reachable;
  * dnsmasq in `vault-1` answers coffer.test and *.vault.coffer.test with 10.231.0.1; each host
    uses it through its own resolv.conf (/etc/netns/<namespace>/resolv.conf, which
    `ip netns exec` mounts over /etc/resolv.conf);
  * `coffer server --dev` in `vault-1` listens on 10.231.0.1:443 as `coffer.test` with vaults
    under `vault.coffer.test`, with a certificate chain the test made (its own CA, like a
    company's), never loopback.

Everything a node does runs inside that node's namespace: the Python and JS SDKs, `coffer agent`
(IMDS, a standalone mount, the CSI provider socket), `coffer exec` and curl. The test needs root
to make namespaces; without it it fails (it never skips).
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

from harness import (coffer_binary, parse_env_file, read_text, stop_process, terminate,
                     wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_JS = os.path.normpath(os.path.join(HERE, "..", "sdk-js"))
WAIT_S = 60.0  # bounds a wait for something that should happen; never a performance claim
SUBNET = "10.231.0"
HOSTS = {"vault-1": f"{SUBNET}.1", "node-1": f"{SUBNET}.2", "node-2": f"{SUBNET}.3"}
AUTHORITY = "coffer.test"
SUFFIX = "vault.coffer.test"
VAULT_URL = f"https://dev.{SUFFIX}"
RG = "rg-cluster"

# A workload's Python program, run on a node: the SDK with a service principal, or a managed
# identity through the node's IMDS, all from the environment.
PY_CLIENT = r"""
import json, os, sys
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
op, name = sys.argv[1], sys.argv[2]
env = os.environ
if env.get("AZURE_CLIENT_SECRET"):
    cred = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"],
                                  env["AZURE_CLIENT_SECRET"], authority=env["AZURE_AUTHORITY_HOST"],
                                  instance_discovery=False)
else:
    cred = ManagedIdentityCredential()
client = SecretClient(env["COFFER_VAULT_URL"], cred)
if op == "set":
    s = client.set_secret(name, sys.argv[3])
    print(json.dumps({"version": s.properties.version}))
else:
    s = client.get_secret(name)
    print(json.dumps({"value": s.value, "version": s.properties.version}))
"""

# Holds one TLS connection open across a certificate change: a request, then (on a line from
# stdin) another on the same connection; prints each status and the certificate's serial.
PY_KEEPALIVE = r"""
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
conn = http.client.HTTPSConnection(sys.argv[2], 443, context=ctx, timeout=60)
def once():
    conn.request("GET", "/healthz")
    r = conn.getresponse(); r.read()
    cert = conn.sock.getpeercert()
    print(r.status, cert["serialNumber"], flush=True)
once()
sys.stdin.readline()
once()
"""


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 120)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, **kw)


def must(argv, **kw):
    p = run(argv, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


class Network:
    """The namespaces, their links, resolv.conf files and every process started in them.

    down() stops the processes by PID, deletes the namespaces (which removes their links) and
    the /etc/netns entries; it is safe to call after a partial up().
    """

    def __init__(self, root):
        self.root = root
        tag = f"cf{os.getpid() % 100000}"
        self.switch = f"{tag}-switch"
        self.ns = {host: f"{tag}-{host}" for host in HOSTS}
        self.made = []
        self.procs = []

    def up(self):
        for name in [self.switch] + list(self.ns.values()):
            must(["ip", "netns", "add", name])
            self.made.append(name)
        must(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge"])
        must(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        for i, (host, ns) in enumerate(self.ns.items()):
            port = f"p{i}"
            must(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
                  port, "netns", self.switch])
            must(["ip", "-n", self.switch, "link", "set", port, "master", "br0", "up"])
            must(["ip", "-n", ns, "addr", "add", HOSTS[host] + "/24", "dev", "eth0"])
            must(["ip", "-n", ns, "link", "set", "eth0", "up"])
            must(["ip", "-n", ns, "link", "set", "lo", "up"])
            etc = os.path.join("/etc/netns", ns)
            os.makedirs(etc, exist_ok=True)
            with open(os.path.join(etc, "resolv.conf"), "w", encoding="utf-8") as f:
                f.write(f"nameserver {HOSTS['vault-1']}\n")
        log = os.path.join(self.root, "dnsmasq.log")
        self.popen("vault-1", [
            "dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground", "--no-resolv",
            "--no-hosts", "--bind-interfaces", f"--listen-address={HOSTS['vault-1']}",
            f"--address=/{AUTHORITY}/{HOSTS['vault-1']}",
            f"--address=/{SUFFIX}/{HOSTS['vault-1']}", "--pid-file=", "--user=root",
            "--log-facility=" + log], log_name="dnsmasq")
        ok = wait_until(lambda: run(self.argv("node-1", ["getent", "hosts", "dev." + SUFFIX]))
                        .stdout.split()[:1] == [HOSTS["vault-1"].encode()], timeout=WAIT_S)
        if not ok:
            raise RuntimeError("dnsmasq does not answer:\n" + read_text(log))

    def argv(self, host, argv):
        return ["ip", "netns", "exec", self.ns[host]] + list(argv)

    def run(self, host, argv, env=None, **kw):
        return run(self.argv(host, argv), env=env, **kw)

    def popen(self, host, argv, env=None, log_name=None, **kw):
        """Starts argv in `host`'s namespace (ip execs it, so the PID is the program's); its
        output goes to <root>/<log_name>.out and .err."""
        name = log_name or os.path.basename(argv[0])
        out = open(os.path.join(self.root, name + ".out"), "wb")
        err = open(os.path.join(self.root, name + ".err"), "wb")
        kw.setdefault("stdin", subprocess.DEVNULL)
        try:
            proc = subprocess.Popen(self.argv(host, argv), env=env, stdout=out, stderr=err, **kw)
        finally:
            out.close()
            err.close()
        self.procs.append(proc)
        return proc

    def output(self, name):
        return (read_text(os.path.join(self.root, name + ".out")) +
                read_text(os.path.join(self.root, name + ".err")))

    def log(self, name):
        """What the program logged (stderr); a dev server's stdout prints its credentials once."""
        return read_text(os.path.join(self.root, name + ".err"))

    def down(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                terminate(proc)
        for name in reversed(self.made):
            run(["ip", "netns", "del", name])
            shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)
        self.made = []


def make_ca(d):
    key, cert = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    must(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=Cluster Test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return key, cert


def issue_server_cert(d, ca_key, ca_cert, serial, key_path, cert_path):
    """A leaf for coffer.test and *.vault.coffer.test, written next to the final paths and renamed
    over them, as a certificate manager replaces files."""
    tmp_key, csr, tmp_cert = (os.path.join(d, f"leaf-{serial}.{x}") for x in ("key", "csr", "pem"))
    must(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-nodes", "-keyout", tmp_key, "-out", csr, "-subj", f"/CN={AUTHORITY}"])
    ext = os.path.join(d, f"leaf-{serial}.ext")
    with open(ext, "w", encoding="utf-8") as f:
        f.write(f"subjectAltName=DNS:{AUTHORITY},DNS:*.{SUFFIX}\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n")
    must(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
          "-set_serial", str(serial), "-days", "2", "-extfile", ext, "-out", tmp_cert])
    with open(tmp_cert, "a", encoding="utf-8") as f:
        f.write(read_text(ca_cert))  # the chain: server certificate first
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)


class ClusterTests(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("the cluster test makes network namespaces and needs root")
        cls.root = tempfile.mkdtemp(prefix="coffer-it-cluster-")
        os.chmod(cls.root, 0o755)
        cls.net = Network(cls.root)
        try:
            cls._set_up()
        except BaseException:
            cls._tear_down()
            raise
        cls.addClassCleanup(cls._tear_down)

    @classmethod
    def _tear_down(cls):
        cls.net.down()
        shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def _set_up(cls):
        cls.net.up()
        tls = os.path.join(cls.root, "tls")
        os.mkdir(tls)
        cls.ca_key, cls.ca = make_ca(tls)
        cls.cert, cls.key = os.path.join(tls, "server.pem"), os.path.join(tls, "server.key")
        issue_server_cert(tls, cls.ca_key, cls.ca, 1001, cls.key, cls.cert)
        cls.tls_dir = tls
        cls.data = os.path.join(cls.root, "data")
        cls.server = cls.net.popen("vault-1", [
            coffer_binary(), "server", "--dev", "--data-dir", cls.data, "--port", "443",
            "--listen", HOSTS["vault-1"], "--authority-host", AUTHORITY, "--dns-suffix", SUFFIX,
            "--tls-cert", cls.cert, "--tls-key", cls.key, "--tls-reload-interval", "1"],
            env=cls.base_env(), log_name="server")
        ok = wait_until(lambda: cls.server.poll() is not None or cls.curl(
            "node-1", f"https://{AUTHORITY}/healthz")[0] == "200", timeout=WAIT_S)
        if not ok or cls.server.poll() is not None:
            raise RuntimeError("server not ready:\n" + cls.net.output("server")[-4000:])
        cls.dev = parse_env_file(read_text(os.path.join(cls.data, "dev.env")))
        cls.secrets = {"the dev client secret": cls.dev["AZURE_CLIENT_SECRET"]}
        # One VM per node, each with a system-assigned identity that may read the dev vault.
        cls.vm_env = {}
        for host in ("node-1", "node-2"):
            vm = cls.cli_json("node-2", "vm", "create", "-n", "vm-" + host, "-g", RG,
                              "--assign-identity", "[system]")
            cls.cli_json("node-2", "keyvault", "set-policy", "--name", "dev", "--object-id",
                         vm["identity"]["principalId"], "--secret-permissions", "get", "list")
            p = cls.cli("node-2", "vm", "identity", "endpoint", "-n", "vm-" + host, "-g", RG,
                        "--env")
            cls.vm_env[host] = dict(line.split("=", 1) for line in p.stdout.splitlines()
                                    if "=" in line)
            cls.secrets["identity header of " + host] = cls.vm_env[host]["IDENTITY_HEADER"]

    # ---- environments and clients ------------------------------------------------------------

    @staticmethod
    def base_env():
        """The runner's environment without Azure, Coffer, identity or CA settings."""
        return {k: v for k, v in os.environ.items()
                if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
                and k not in ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE",
                              "SSL_CERT_DIR")}

    @classmethod
    def node_env(cls, extra=None):
        """What a node is given: the authority host, the vault suffix and the CA."""
        env = cls.base_env()
        env.update({"AZURE_AUTHORITY_HOST": f"https://{AUTHORITY}",
                    "COFFER_VAULT_DNS_SUFFIX": SUFFIX, "COFFER_VAULT_URL": VAULT_URL,
                    "COFFER_CA_FILE": cls.ca, "REQUESTS_CA_BUNDLE": cls.ca,
                    "NODE_EXTRA_CA_CERTS": cls.ca})
        env.update(extra or {})
        return env

    @classmethod
    def sp_env(cls):
        """A node's environment with the dev service principal's credentials."""
        return cls.node_env({k: cls.dev[k] for k in (
            "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
            "COFFER_SUBSCRIPTION_ID")})

    @classmethod
    def cli(cls, host, *args):
        p = cls.net.run(host, [coffer_binary()] + list(args), env=cls.sp_env(), text=True)
        if p.returncode != 0:
            raise AssertionError(f"coffer {' '.join(args)} on {host}: {p.returncode}\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    @classmethod
    def cli_json(cls, host, *args):
        return json.loads(cls.cli(host, *args).stdout)

    @classmethod
    def curl(cls, host, url, *args):
        """(status, body) of curl on `host`, trusting the test's CA."""
        p = cls.net.run(host, ["curl", "-sS", "--max-time", "20", "--cacert", cls.ca, "-o",
                               "-", "-w", "\n%{http_code}", *args, url], text=True)
        body, _, status = p.stdout.rpartition("\n")
        return status, body

    def python(self, host, env, *args):
        p = self.net.run(host, ["/usr/bin/python3", "-c", PY_CLIENT, *args], env=env, text=True)
        self.assertEqual(p.returncode, 0, f"python {args} on {host}:\n{p.stdout}\n{p.stderr}")
        return json.loads(p.stdout)

    def node_js(self, host, env, *args):
        p = self.net.run(host, ["node", os.path.join(SDK_JS, "remote-client.mjs"), *args],
                         env=env, text=True, cwd=SDK_JS)
        self.assertEqual(p.returncode, 0, f"node {args} on {host}:\n{p.stdout}\n{p.stderr}")
        return json.loads(p.stdout)

    def value(self, label):
        v = f"{label}-{uuid.uuid4().hex}"
        self.secrets[label + " " + v[-6:]] = v
        return v

    def start_agent(self, host, args, env, name):
        """`coffer agent` on `host`; returns (process, its stdout path) once it says it is ready."""
        proc = self.net.popen(host, [coffer_binary(), "agent"] + list(args), env=env,
                              log_name=name)
        self.addCleanup(stop_process, proc)
        out = os.path.join(self.root, name + ".out")
        wait_until(lambda: "agent ready" in read_text(out) or proc.poll() is not None,
                   timeout=WAIT_S)
        self.assertIn("agent ready", read_text(out), self.net.output(name))
        return proc, out

    def assertNoSecrets(self, *texts):
        for text in texts:
            for what, v in self.secrets.items():
                self.assertNotIn(v, text, f"{what} appears")

    # ---- tests --------------------------------------------------------------------------------

    def test_sdks_read_and_write_from_both_nodes(self):
        # The nodes resolve the server's names through DNS, not through loopback.
        p = self.net.run("node-1", ["getent", "hosts", f"dev.{SUFFIX}"], text=True)
        self.assertEqual(p.stdout.split()[0], HOSTS["vault-1"])
        v1 = self.value("py")
        written = self.python("node-1", self.sp_env(), "set", "cluster-py", v1)
        read = self.node_js("node-2", self.sp_env(), "get", "cluster-py")
        self.assertEqual(read, {"value": v1, "version": written["version"]})
        v2 = self.value("js")
        written = self.node_js("node-2", self.sp_env(), "set", "cluster-js", v2)
        read = self.python("node-1", self.sp_env(), "get", "cluster-js")
        self.assertEqual(read, {"value": v2, "version": written["version"]})
        self.assertIn("ready on port 443", self.net.log("server"))
        self.assertNoSecrets(self.net.log("server"))

    def test_a_pod_reads_with_its_nodes_managed_identity(self):
        v = self.value("mi")
        self.python("node-2", self.sp_env(), "set", "cluster-mi", v)
        env = self.node_env(self.vm_env["node-1"])
        _, out = self.start_agent("node-1", ["--imds", "--port", "0", "--state-dir",
                                             os.path.join(self.root, "imds-state")],
                                  env, "agent-imds")
        port = None
        for line in read_text(out).splitlines():
            if "AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:" in line:
                port = line.rsplit(":", 1)[1].strip()
        self.assertTrue(port, read_text(out))
        pod_env = self.node_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{port}"})
        self.assertEqual(self.python("node-1", pod_env, "get", "cluster-mi")["value"], v)

    def test_mounts_on_node_1_follow_a_rotation_made_on_node_2(self):
        v1 = self.value("mount")
        self.python("node-2", self.sp_env(), "set", "cluster-db", v1)
        d = tempfile.mkdtemp(prefix="mount-", dir=self.root)
        spc = os.path.join(d, "spc.yaml")
        with open(spc, "w", encoding="utf-8") as f:
            f.write("apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
                    "metadata:\n  name: app\n  namespace: default\nspec:\n  provider: azure\n"
                    f"  parameters:\n    keyvaultName: dev\n    tenantID: "
                    f"{json.dumps(self.dev['AZURE_TENANT_ID'])}\n    objects: |\n"
                    "      array:\n        - |\n          objectName: cluster-db\n"
                    "          objectType: secret\n")
        sp_file = os.path.join(d, "sp.json")
        with open(sp_file, "w", encoding="utf-8") as f:
            json.dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sp"},
                       "stringData": {"clientid": self.dev["AZURE_CLIENT_ID"],
                                      "clientsecret": self.dev["AZURE_CLIENT_SECRET"]}}, f)
        target = os.path.join(d, "target")
        config = os.path.join(d, "agent.yaml")
        with open(config, "w", encoding="utf-8") as f:
            json.dump({"pollInterval": "1h", "jitter": 0, "mounts": [
                {"name": "app", "secretProviderClass": spc, "target": target,
                 "nodePublishSecretRef": sp_file}]}, f)
        csi_dir = os.path.join(d, "csi")
        os.mkdir(csi_dir)
        _, out = self.start_agent("node-1", [
            "--config", config, "--state-dir", os.path.join(d, "state"),
            "--csi-provider-dir", csi_dir], self.node_env(), "agent-mount")
        path = os.path.join(target, "cluster-db")
        self.assertEqual(read_text(path), v1)
        # Through the CSI provider socket, as the driver on node-1 calls it.
        attrs = os.path.join(d, "attrs.json")
        with open(attrs, "w", encoding="utf-8") as f:
            json.dump({"keyvaultName": "dev", "tenantID": self.dev["AZURE_TENANT_ID"],
                       "objects": "array:\n  - |\n    objectName: cluster-db\n"
                                  "    objectType: secret\n",
                       "csi.storage.k8s.io/pod.name": "web", "csi.storage.k8s.io/pod.namespace":
                       "default"}, f)
        secrets = json.dumps({"clientid": self.dev["AZURE_CLIENT_ID"],
                              "clientsecret": self.dev["AZURE_CLIENT_SECRET"]})
        client = os.path.join(os.path.dirname(coffer_binary()), "coffer-csi-client")
        p = self.net.run("node-1", [client, "--socket", os.path.join(csi_dir, "coffer.sock"),
                                    "--attributes-file", attrs, "--secrets", secrets,
                                    "--permission", "420", "--target-path", "/tmp/unused",
                                    "--timeout-ms", "60000"], text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        files = {f["path"]: f for f in json.loads(p.stdout)["files"]}
        self.assertEqual(base64.b64decode(files["cluster-db"]["contents_base64"]).decode(), v1)
        # A rotation from node-2 reaches node-1's file by push (the agent polls hourly).
        v2 = self.value("rotated")
        self.node_js("node-2", self.sp_env(), "set", "cluster-db", v2)
        self.assertTrue(wait_until(lambda: read_text(path) == v2, timeout=WAIT_S),
                        self.net.output("agent-mount")[-3000:])
        self.assertNoSecrets(self.net.output("agent-mount"), self.net.log("server"))

    def test_exec_on_node_2_resolves_references(self):
        v = self.value("exec")
        self.python("node-1", self.sp_env(), "set", "cluster-exec", v)
        out = os.path.join(self.root, "exec-child.txt")
        env = self.node_env(self.vm_env["node-2"])
        env["BY_URI"] = f"@Microsoft.KeyVault(SecretUri={VAULT_URL}/secrets/cluster-exec/)"
        env["BY_NAME"] = "@Microsoft.KeyVault(VaultName=dev;SecretName=cluster-exec)"
        p = self.net.run("node-2", [coffer_binary(), "exec", "--no-watch", "--", "/bin/sh",
                                    "-c", f'printf "%s\\n%s" "$BY_URI" "$BY_NAME" > {out}'],
                         env=env, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(read_text(out), f"{v}\n{v}")
        self.assertNoSecrets(p.stdout, p.stderr)

    def test_a_replaced_certificate_is_served_without_a_restart(self):
        conn = self.net.popen("node-1", ["/usr/bin/python3", "-c", PY_KEEPALIVE, self.ca,
                                         AUTHORITY], env=self.base_env(), log_name="keepalive",
                              stdin=subprocess.PIPE)
        self.addCleanup(stop_process, conn)
        out = os.path.join(self.root, "keepalive.out")
        self.assertTrue(wait_until(lambda: read_text(out).count("\n") >= 1 or
                                   conn.poll() is not None, timeout=WAIT_S),
                        self.net.output("keepalive"))
        status, old_serial = read_text(out).split()
        self.assertEqual(status, "200")
        issue_server_cert(self.tls_dir, self.ca_key, self.ca, 2002, self.key, self.cert)

        def serial_served():
            p = self.net.run("node-2", ["sh", "-c", f"openssl s_client -connect {AUTHORITY}:443 "
                                        f"-servername {AUTHORITY} -CAfile {self.ca} </dev/null "
                                        "2>/dev/null | openssl x509 -noout -serial"], text=True)
            return p.stdout.strip()
        self.assertTrue(wait_until(lambda: serial_served() == "serial=07D2", timeout=WAIT_S),
                        serial_served())
        # New connections verify the new certificate; the SDKs keep working.
        v = self.value("after-swap")
        self.python("node-2", self.sp_env(), "set", "cluster-swap", v)
        self.assertEqual(self.node_js("node-1", self.sp_env(), "get", "cluster-swap")["value"], v)
        # The connection opened before the swap was not dropped.
        conn.stdin.write(b"\n")
        conn.stdin.flush()
        self.assertEqual(conn.wait(timeout=WAIT_S), 0, self.net.output("keepalive"))
        lines = read_text(out).split("\n")
        self.assertEqual(lines[1].split(), ["200", old_serial], lines)
        self.assertEqual(self.server.poll(), None, "the server kept running")

    def test_an_unconfigured_host_is_misdirected(self):
        status, body = self.curl("node-2", f"https://{AUTHORITY}/{self.dev['COFFER_TENANT_ID']}"
                                 "/v2.0/.well-known/openid-configuration", "-H", "Host: other.test")
        self.assertEqual(status, "421", body)
        self.assertEqual(json.loads(body)["error"]["code"], "MisdirectedRequest")
        status, _ = self.curl("node-2", f"https://{AUTHORITY}/{self.dev['COFFER_TENANT_ID']}"
                              "/v2.0/.well-known/openid-configuration")
        self.assertEqual(status, "200")
        # Loopback on the vault host is not a name the server answers to, nor an address it
        # listens on: the server serves only the network.
        p = self.net.run("vault-1", ["curl", "-sS", "--max-time", "10", "-k",
                                     "https://127.0.0.1:443/healthz"], text=True)
        self.assertNotEqual(p.returncode, 0, p.stdout)


if __name__ == "__main__":
    unittest.main()
