"""The packages for hosts and clusters (packaging/) agree with the binary they run.

systemd units (packaging/systemd):
* `systemd-analyze verify` says nothing about either unit (its ExecStart pointed at the built
  binary) and fails neither; a broken copy makes it speak, so its silence means something.
* Every flag of ExecStart and of the environment files is one `coffer server --help` or
  `coffer agent --help` lists. Every variable an environment file names is one the unit passes
  on or the binary reads, and the defaults it shows are the unit's.
* The paths agree: the server's --data-dir is its StateDirectory, the agent's
  --csi-provider-dir its RuntimeDirectory and the DaemonSet's hostPath.
* Each unit's command line, with the unit's defaults, runs the real binary as the unit runs it,
  as far as a process can without systemd: the server as a user of its own, the agent as root,
  both without capabilities, with no new privileges, umask 0077 and, on kernels with
  PR_SET_MDWE, no writable executable memory. The server answers /healthz; the agent serves a
  Mount of a real secret over its socket. The system call filter, the address families and the
  read-only file system are systemd's to apply and are not exercised here.

Kubernetes manifests (packaging/kubernetes), parsed with PyYAML:
* Every object names what it uses, and what it names is defined: namespace, service account,
  claim, volumes, selectors. Images are coffer:latest, commands /usr/bin/coffer.
* Every flag in a container's command and args is one the binary lists.
* The server's containerPort, --port, probe ports and the Service's targetPort are one port;
  the Service's port is the one in the public names; the authority is the Service's DNS name.
* The probes are answered: a real server with the manifest's public names answers each probe
  path 200 over HTTPS to a request shaped as the kubelet's (an IP in Host, no SNI, no
  certificate check); a real agent with the DaemonSet's flags, as root without capabilities,
  answers its liveness path and a Mount.
* The securityContexts are the ones docs/deployment.md describes.

Missing tools fail the suite (never skip it) with a message saying to run scripts/setup.sh.
Every wait is bounded (WAIT_S) and none is a performance claim.
"""

import base64
import glob
import http.client
import json
import mmap
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

from harness import (HERE, coffer_binary, free_port, read_text, start_server, stop_process,
                     wait_until)

try:
    import yaml
except ImportError:  # reported by each test that needs it, as a failure
    yaml = None

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SYSTEMD_DIR = os.path.join(REPO, "packaging", "systemd")
KUBE_DIR = os.path.join(REPO, "packaging", "kubernetes")
UNITS = {"server": "coffer-server.service", "agent": "coffer-agent.service"}
DEFAULTS = {"server": "coffer-server.default", "agent": "coffer-agent.default"}
INSTALLED_BINARY = "/usr/bin/coffer"
PROVIDER_DIR = "/var/run/secrets-store-csi-providers"  # the CSI driver's default
IMAGE = "coffer:latest"
NOBODY = 65534
WAIT_S = 60.0  # bounds a wait for something that should happen; never a performance claim
SETUP_HINT = "run scripts/setup.sh, which installs it"


def need_yaml():
    if yaml is None:
        raise AssertionError(f"PyYAML (Debian package python3-yaml) is missing: {SETUP_HINT}")
    return yaml


def need_tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} (Debian package {package}) is missing: {SETUP_HINT}")
    return path


# ---- the binary -----------------------------------------------------------------------------

_help_cache = {}


def help_flags(subcommand):
    """The long options `coffer <subcommand> --help` lists."""
    if subcommand not in _help_cache:
        p = subprocess.run([coffer_binary(), subcommand, "--help"], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise AssertionError(f"coffer {subcommand} --help: {p.returncode}\n{p.stderr}")
        flags = set(re.findall(r"(?m)^\s+(?:-\w,)?(--[a-z0-9][a-z0-9-]*)", p.stdout))
        if "--help" not in flags or len(flags) < 5:
            raise AssertionError(f"cannot read the options of `coffer {subcommand} --help`:\n"
                                 f"{p.stdout}")
        _help_cache[subcommand] = flags
    return _help_cache[subcommand]


def binary_mentions(word):
    """Whether the binary holds `word` as a string (an environment variable it reads)."""
    with open(coffer_binary(), "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(word.encode() + b"\0") >= 0


def flags_of(words):
    return [w.split("=", 1)[0] for w in words if w.startswith("--")]


def option_values(words, flag):
    """The words after `flag` up to the next option (CLI11 takes several for --listen)."""
    if flag not in words:
        return []
    i = words.index(flag) + 1
    out = []
    while i < len(words) and not words[i].startswith("--"):
        out.append(words[i])
        i += 1
    return out


def option(words, flag):
    values = option_values(words, flag)
    if len(values) != 1:
        raise AssertionError(f"{flag} should have one value in {words}")
    return values[0]


def with_option(words, flag, *values):
    """words with the values of `flag` replaced (appended when absent)."""
    words = list(words)
    if flag not in words:
        return words + [flag] + list(values)
    i = words.index(flag) + 1
    j = i
    while j < len(words) and not words[j].startswith("--"):
        j += 1
    return words[:i] + list(values) + words[j:]


def without_options(words, *flags):
    words = list(words)
    for flag in flags:
        if flag in words:
            i = words.index(flag)
            j = i + 1
            while j < len(words) and not words[j].startswith("--"):
                j += 1
            words = words[:i] + words[j:]
    return words


# ---- systemd units ----------------------------------------------------------------------------

def read_unit(name):
    """{section: [(key, value)]} of packaging/systemd/<name>, continuation lines joined."""
    sections = {}
    current = None
    pending = ""
    with open(os.path.join(SYSTEMD_DIR, name), encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and line.lstrip().startswith(("#", ";")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], [])
                continue
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def unit_values(unit, key, section="Service"):
    return [v for k, v in unit.get(section, []) if k == key]


def unit_defaults(unit):
    """The Environment= assignments of a unit."""
    env = {}
    for value in unit_values(unit, "Environment"):
        for assignment in shlex.split(value):
            k, _, v = assignment.partition("=")
            env[k] = v
    return env


def expand(words, env):
    """ExecStart's variable expansion: a word that is $VAR becomes the value's words; ${VAR}
    becomes the value in place."""
    out = []
    for w in words:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            out.extend(env.get(m.group(1), "").split())
        else:
            out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                              lambda m: env.get(m.group(1), ""), w))
    return out


def exec_start(unit):
    values = unit_values(unit, "ExecStart")
    if len(values) != 1:
        raise AssertionError(f"one ExecStart expected, found {values}")
    return shlex.split(values[0].lstrip("-@:+!"))


def env_file_entries(name):
    """[(variable, shown value)] of the commented assignments of an environment file."""
    out = []
    with open(os.path.join(SYSTEMD_DIR, name), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#?([A-Z_][A-Z0-9_]*)=(.*)$", line.rstrip("\n"))
            if m:
                out.append((m.group(1), m.group(2)))
    return out


def referenced_variables(words):
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", " ".join(words)))


# ---- Kubernetes manifests ---------------------------------------------------------------------

def manifests():
    """{file name: [object]} of packaging/kubernetes/*.yaml."""
    need_yaml()
    out = {}
    for path in sorted(glob.glob(os.path.join(KUBE_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            out[os.path.basename(path)] = [d for d in yaml.safe_load_all(f) if d is not None]
    if not out:
        raise AssertionError(f"no manifests in {KUBE_DIR}")
    return out


def objects(kind):
    return [(name, o) for name, docs in manifests().items() for o in docs if o["kind"] == kind]


def only(kind):
    found = objects(kind)
    if len(found) != 1:
        raise AssertionError(f"one {kind} expected, found {len(found)}")
    return found[0][1]


def container(workload):
    containers = workload["spec"]["template"]["spec"]["containers"]
    if len(containers) != 1:
        raise AssertionError(f"{workload['metadata']['name']}: one container expected")
    return containers[0]


def command_line(c):
    return [str(w) for w in c.get("command", []) + c.get("args", [])]


def resolve_port(c, port):
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"no container port named {port!r}")


def public_port(name):
    return int(name.rsplit(":", 1)[1]) if ":" in name else None


def without_443(name):
    return name[:-4] if name.endswith(":443") else name


# ---- running the binary as the packages run it -----------------------------------------------

# Execs argv[1:] with umask 0077 (the units' UMask=) and, where the kernel has it (Linux 6.3),
# PR_SET_MDWE with PR_MDWE_REFUSE_EXEC_GAIN: what MemoryDenyWriteExecute= asks of a process,
# kept across execve. It prints whether that took effect, for the test's message.
MDWE_EXEC = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mdwe = libc.prctl(65, 1, 0, 0, 0) == 0
os.umask(0o077)
print("mdwe: " + ("on" if mdwe else "not available"), flush=True)
os.execv(sys.argv[1], sys.argv[1:])
"""


def sandboxed(argv, user=None):
    """argv as the units and the manifests run it: no capabilities, no new privileges (the
    kubelet's allowPrivilegeEscalation: false), as `user` when given. An unprivileged runner
    has no capabilities to drop, and runs everything as itself."""
    setpriv = need_tool("setpriv", "util-linux")
    prefix = [setpriv, "--no-new-privs"]
    if os.geteuid() == 0:
        prefix += ["--bounding-set", "-all", "--inh-caps", "-all", "--ambient-caps", "-all"]
        if user is not None:
            prefix += ["--reuid", str(user), "--regid", str(user), "--clear-groups"]
    return prefix + [sys.executable, "-c", MDWE_EXEC] + list(argv)


def process_status(pid):
    fields = {}
    for line in read_text(f"/proc/{pid}/status").splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


class Process:
    """A process started by a test, stopped by PID in the test's cleanup."""

    def __init__(self, case, argv, env=None):
        self.dir = tempfile.mkdtemp(prefix="coffer-pkg-")
        case.addCleanup(shutil.rmtree, self.dir, True)
        self.out_path = os.path.join(self.dir, "out.log")
        self.argv = argv
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        case.addCleanup(self.stop)

    def output(self):
        return read_text(self.out_path, 6000)

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        return stop_process(self.proc)


def clean_env(extra=None):
    """The runner's environment without Azure, Coffer or identity settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
           and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    env.update(extra or {})
    return env


def kubelet_get(port, path, scheme, host_header):
    """GET as the kubelet's probe sends it: to an address, Host naming it, no SNI and no
    certificate check for HTTPS. Returns the status."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if scheme == "HTTPS":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=None)
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n"
                      "User-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n\r\n")
                     .encode())
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        resp.read()
        return resp.status
    finally:
        sock.close()


def healthz_status(port):
    try:
        return kubelet_get(port, "/healthz", "HTTPS", f"127.0.0.1:{port}")
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return None


# ---- tests ------------------------------------------------------------------------------------

class SystemdUnitTests(unittest.TestCase):
    maxDiff = 6000

    def verify(self, texts):
        """Runs `systemd-analyze verify` on units {file name: text} (ExecStart pointed at the
        built binary); returns (exit status, what it said about them, everything it said)."""
        analyze = need_tool("systemd-analyze", "systemd")
        d = tempfile.mkdtemp(prefix="coffer-units-")
        self.addCleanup(shutil.rmtree, d, True)
        paths = []
        for name, text in texts.items():
            path = os.path.join(d, name)
            with open(path, "w", encoding="utf-8") as f:
                # verify checks that ExecStart's program exists and is executable.
                f.write(text.replace(INSTALLED_BINARY + " ", coffer_binary() + " "))
            paths.append(path)
        # --recursive-errors=no: the exit status is about these units, not about the host's
        # units they are ordered against (network-online.target, multi-user.target).
        p = subprocess.run(
            [analyze, "verify", "--man=no", "--recursive-errors=no"] + paths, cwd=d,
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SYSTEMD_LOG_LEVEL="info", SYSTEMD_LOG_COLOR="0",
                     SYSTEMD_PAGER=""))
        said = (p.stdout + p.stderr).splitlines()
        ours = []
        for line in said:
            # What it says about a unit names the unit or its file ("coffer-server.service: ...",
            # "<dir>/coffer-server.service:12: ..."). Under Debian 12's systemd 252 in a
            # container (systemd not PID 1) it prints nothing else at the info level; at the
            # debug level, and on other hosts, it adds lines about the host's own units and the
            # manager, which are not about these units.
            if not any(name in line for name in texts) and d not in line:
                continue
            # systemd expands @system-service with system calls that the installed libseccomp
            # does not know (systemd 252 with Debian 12's libseccomp: riscv_hwprobe,
            # uretprobe) and says so for every unit that uses the group, its own included; 252
            # says it at the debug level only. A name the unit itself writes is still a finding.
            m = re.search(r"Failed to parse system call, ignoring: (\S+)", line)
            if m and not any(re.search(rf"\b{re.escape(m.group(1))}\b", t)
                             for t in texts.values()):
                continue
            ours.append(line)
        return p.returncode, ours, said

    def unit_text(self, name):
        return read_text(os.path.join(SYSTEMD_DIR, name))

    def test_units_verify_without_a_word(self):
        texts = {name: self.unit_text(name) for name in UNITS.values()}
        rc, ours, said = self.verify(texts)
        self.assertEqual(ours, [], "\n".join(said))
        self.assertEqual(rc, 0, "\n".join(said))

    def test_verify_speaks_about_a_broken_unit(self):
        text = self.unit_text(UNITS["server"]).replace(
            "ProtectSystem=strict", "ProtectSystem=strikt\nProtectHomes=yes")
        rc, ours, said = self.verify({"coffer-broken.service": text})
        self.assertTrue(any("strikt" in line for line in ours), "\n".join(said))
        self.assertTrue(any("ProtectHomes" in line for line in ours), "\n".join(said))
        # A program that does not exist is an error, and fails the command.
        text = text.replace(INSTALLED_BINARY + " ", "/nonexistent/coffer ")
        rc, ours, said = self.verify({"coffer-broken.service": text})
        self.assertNotEqual(rc, 0, "\n".join(said))
        self.assertTrue(any("/nonexistent/coffer" in line for line in ours), "\n".join(said))

    def test_exec_start_runs_the_installed_binary_with_flags_it_has(self):
        for sub, name in UNITS.items():
            words = exec_start(read_unit(name))
            self.assertEqual(words[:2], [INSTALLED_BINARY, sub], name)
            unknown = sorted(set(flags_of(words)) - help_flags(sub))
            self.assertEqual(unknown, [], f"{name}: not in `coffer {sub} --help`")

    def test_environment_files_name_what_exists_and_show_the_units_defaults(self):
        for sub, name in UNITS.items():
            unit = read_unit(name)
            defaults = unit_defaults(unit)
            self.assertEqual(unit_values(unit, "EnvironmentFile"), [f"-/etc/default/coffer-{sub}"])
            passed_on = referenced_variables(exec_start(unit))
            self.assertLessEqual(set(defaults), passed_on,
                                 f"{name}: a default that ExecStart does not use")
            entries = env_file_entries(DEFAULTS[sub])
            shown = dict(entries)
            self.assertEqual(sorted(set(defaults) - set(shown)), [],
                             f"{DEFAULTS[sub]}: the unit's settings it does not list")
            for var, value in entries:
                self.assertTrue(var in passed_on or binary_mentions(var),
                                f"{DEFAULTS[sub]}: {var} is neither in {name}'s ExecStart nor "
                                "read by the binary")
                if var in defaults and not var.endswith("_ARGS"):
                    self.assertEqual(value, defaults[var],
                                     f"{DEFAULTS[sub]} shows {var}={value}; the unit's default "
                                     f"is {defaults[var]!r}")
                unknown = sorted(set(flags_of(value.split())) - help_flags(sub))
                self.assertEqual(unknown, [], f"{DEFAULTS[sub]}: {var} names flags not in "
                                 f"`coffer {sub} --help`")

    def test_paths_are_the_units_directories(self):
        server = read_unit(UNITS["server"])
        self.assertEqual(unit_values(server, "StateDirectory"), ["coffer"])
        self.assertEqual(option(exec_start(server), "--data-dir"), "/var/lib/coffer")
        agent = read_unit(UNITS["agent"])
        self.assertEqual(option(exec_start(agent), "--csi-provider-dir"), PROVIDER_DIR)
        # /var/run is /run.
        self.assertEqual(["/run/" + d for d in unit_values(agent, "RuntimeDirectory")],
                         [PROVIDER_DIR.replace("/var/run/", "/run/", 1)])
        self.assertEqual(unit_values(agent, "RuntimeDirectoryPreserve"), ["yes"])

    def test_reload_is_sighup_where_the_process_handles_it(self):
        # The server reloads its TLS certificate on SIGHUP (the test below sends one); the
        # agent stops on it, so an ExecReload= sending it would stop that service.
        self.assertEqual(unit_values(read_unit(UNITS["server"]), "ExecReload"),
                         ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(unit_values(read_unit(UNITS["agent"]), "ExecReload"), [])

    def test_server_runs_as_its_unit_runs_it(self):
        unit = read_unit(UNITS["server"])
        words = expand(exec_start(unit), unit_defaults(unit))
        root = tempfile.mkdtemp(prefix="coffer-pkg-server-")
        self.addCleanup(shutil.rmtree, root, True)
        if os.geteuid() == 0:
            os.chown(root, NOBODY, NOBODY)  # as StateDirectory= gives it to the dynamic user
        port = free_port()
        # Loopback instead of every address, a free port, a directory of the test's.
        words = with_option(words, "--data-dir", os.path.join(root, "coffer"))
        words = with_option(words, "--listen", "127.0.0.1")
        words = with_option(words, "--port", str(port))
        p = Process(self, sandboxed([coffer_binary()] + words[1:], user=NOBODY), clean_env())
        ok = wait_until(lambda: not p.running() or healthz_status(port) == 200, timeout=WAIT_S)
        self.assertTrue(ok and p.running(), f"{p.argv}\n{p.output()}")
        status = process_status(p.proc.pid)
        self.assertEqual(status.get("CapEff"), "0000000000000000", status)
        self.assertEqual(status.get("NoNewPrivs"), "1", status)
        if os.geteuid() == 0:
            self.assertEqual(status.get("Uid", "").split()[0], str(NOBODY), status)
        # systemctl reload: the server reloads its certificate and keeps serving.
        p.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "reloading the TLS certificate" in p.output(),
                                   timeout=WAIT_S), p.output())
        self.assertEqual(healthz_status(port), 200)
        self.assertTrue(p.running(), p.output())
        # SIGTERM, systemd's stop, ends it with status 0: Restart=on-failure does not restart.
        self.assertEqual(p.stop(), 0, p.output())

    def test_agent_runs_as_its_unit_runs_it(self):
        unit = read_unit(UNITS["agent"])
        words = expand(exec_start(unit), unit_defaults(unit))
        srv = start_server(self)
        agent = AgentRun(self, srv, words[1:], extra_env={
            # What coffer-agent.default lists, for this server.
            "AZURE_AUTHORITY_HOST": srv.env["AZURE_AUTHORITY_HOST"],
            "COFFER_VAULT_DNS_SUFFIX": srv.env["COFFER_VAULT_DNS_SUFFIX"],
            "COFFER_CA_FILE": srv.ca_path})
        agent.assert_sandboxed()
        agent.assert_mounts_a_secret()


class AgentRun:
    """`coffer agent ARGS` (args[0] is "agent") with the test's provider directory and a free
    metrics port, run as root without capabilities, as the unit and the DaemonSet run it."""

    def __init__(self, case, srv, args, extra_env):
        self.case = case
        self.srv = srv
        self.csi_dir = tempfile.mkdtemp(prefix="coffer-pkg-csi-")
        os.chmod(self.csi_dir, 0o755)  # as RuntimeDirectoryMode= and the driver's hostPath
        case.addCleanup(shutil.rmtree, self.csi_dir, True)
        args = with_option(args, "--csi-provider-dir", self.csi_dir)
        args = with_option(args, "--metrics-port", "0")
        case.assertEqual(args[:1], ["agent"])
        self.process = Process(case, sandboxed([coffer_binary()] + args), clean_env(extra_env))
        wait_until(lambda: "agent ready" in self.process.output() or
                   not self.process.running(), timeout=WAIT_S)
        out = self.process.output()
        case.assertIn("agent ready", out, f"{self.process.argv}\n{out}")
        self.metrics_port = int(re.search(r"metrics: http://127\.0\.0\.1:(\d+)/", out).group(1))
        self.socket = os.path.join(self.csi_dir, "coffer.sock")

    def assert_sandboxed(self):
        status = process_status(self.process.proc.pid)
        self.case.assertEqual(status.get("CapEff"), "0000000000000000", status)
        self.case.assertEqual(status.get("NoNewPrivs"), "1", status)

    def assert_mounts_a_secret(self):
        """A Mount as the driver sends it, with the dev service principal as the
        nodePublishSecretRef: the file comes back with the secret's value."""
        case, srv = self.case, self.srv
        value = "packaged-" + base64.b32encode(os.urandom(10)).decode()
        r = srv.kv("PUT", "/secrets/pkg-db", {"value": value})
        case.assertEqual(r.status, 200, repr(r))
        attrs = {"keyvaultName": "dev", "tenantID": srv.tenant,
                 "objects": "array:\n  - |\n    objectName: pkg-db\n    objectType: secret\n",
                 "secretProviderClass": "app-spc", "csi.storage.k8s.io/pod.name": "web-7d9c",
                 "csi.storage.k8s.io/pod.namespace": "prod",
                 "csi.storage.k8s.io/pod.uid": "1b7b",
                 "csi.storage.k8s.io/serviceAccount.name": "web"}
        secrets = json.dumps({"clientid": srv.env["AZURE_CLIENT_ID"],
                              "clientsecret": srv.env["AZURE_CLIENT_SECRET"]})
        client = os.path.join(os.path.dirname(coffer_binary()), "coffer-csi-client")
        p = subprocess.run([client, "--socket", self.socket, "--attributes", json.dumps(attrs),
                            "--secrets", secrets, "--timeout-ms", "60000"],
                           capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        case.assertEqual(p.returncode, 0, f"{p.stdout}\n{p.stderr}\n{self.process.output()}")
        files = {f["path"]: f for f in json.loads(p.stdout)["files"]}
        case.assertEqual(base64.b64decode(files["pkg-db"]["contents_base64"]).decode(), value)


class KubernetesManifestTests(unittest.TestCase):
    maxDiff = 6000

    def server(self):
        return only("Deployment")

    def agent(self):
        return only("DaemonSet")

    def test_objects_name_what_is_defined(self):
        docs = manifests()
        for file, objs in docs.items():
            defined = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
                       for o in objs}
            namespaces = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
            for o in objs:
                where = f"{file}: {o['kind']} {o['metadata'].get('name')}"
                self.assertTrue(o.get("apiVersion") and o["metadata"].get("name"), where)
                if o["kind"] == "Namespace":
                    continue
                ns = o["metadata"].get("namespace")
                self.assertTrue(ns, f"{where} has no namespace")
                if namespaces:
                    self.assertIn(ns, namespaces, f"{where}: a namespace {file} does not define")
                if o["kind"] not in ("Deployment", "DaemonSet"):
                    continue
                spec = o["spec"]["template"]["spec"]
                labels = o["spec"]["template"]["metadata"]["labels"]
                self.assertLessEqual(o["spec"]["selector"]["matchLabels"].items(),
                                     labels.items(), where)
                self.assertIn(("ServiceAccount", ns, spec["serviceAccountName"]), defined, where)
                volumes = {v["name"]: v for v in spec.get("volumes", [])}
                for c in spec["containers"]:
                    self.assertEqual(c["image"], IMAGE, where)
                    self.assertEqual(c["command"][:1], [INSTALLED_BINARY], where)
                    for m in c.get("volumeMounts", []):
                        self.assertIn(m["name"], volumes, where)
                for v in volumes.values():
                    if "persistentVolumeClaim" in v:
                        self.assertIn(("PersistentVolumeClaim", ns,
                                       v["persistentVolumeClaim"]["claimName"]), defined, where)
            for svc in [o for o in objs if o["kind"] == "Service"]:
                pods = [o for o in objs if o["kind"] in ("Deployment", "DaemonSet") and
                        svc["spec"]["selector"].items() <=
                        o["spec"]["template"]["metadata"]["labels"].items()]
                self.assertEqual(len(pods), 1, f"{file}: Service {svc['metadata']['name']} "
                                 "should select one workload")

    def test_container_flags_exist(self):
        for kind, sub in (("Deployment", "server"), ("DaemonSet", "agent")):
            for file, o in objects(kind):
                words = command_line(container(o))
                self.assertEqual(words[:2], [INSTALLED_BINARY, sub], file)
                unknown = sorted(set(flags_of(words)) - help_flags(sub))
                self.assertEqual(unknown, [], f"{file}: not in `coffer {sub} --help`")

    def test_server_ports_and_names_agree(self):
        d = self.server()
        c = container(d)
        words = command_line(c)
        port = int(option(words, "--port"))
        self.assertEqual([p["containerPort"] for p in c["ports"]], [port])
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            self.assertEqual(resolve_port(c, get["port"]), port, probe)
            self.assertEqual(get.get("scheme"), "HTTPS", probe)
        svc = only("Service")
        ns = d["metadata"]["namespace"]
        self.assertEqual(svc["metadata"]["namespace"], ns)
        [sp] = svc["spec"]["ports"]
        self.assertEqual(resolve_port(c, sp["targetPort"]), port)
        authority = option(words, "--authority-host")
        suffix = option(words, "--dns-suffix")
        # The names carry the port clients use, the Service's.
        self.assertEqual(public_port(authority), sp["port"], authority)
        self.assertEqual(public_port(suffix), sp["port"], suffix)
        self.assertEqual(authority.split(":")[0], f"{svc['metadata']['name']}.{ns}.svc")
        self.assertEqual(option_values(words, "--listen"), ["0.0.0.0"])

    def test_server_data_dir_is_on_the_claim(self):
        d = self.server()
        c = container(d)
        data_dir = option(command_line(c), "--data-dir")
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        claims = [m["mountPath"] for m in c["volumeMounts"]
                  if "persistentVolumeClaim" in volumes[m["name"]]]
        self.assertEqual(len(claims), 1, c["volumeMounts"])
        # Under the volume's root, not the root itself: the root's group permissions are the
        # kubelet's (fsGroup), the data directory's are the server's (0700).
        self.assertTrue(data_dir.startswith(claims[0].rstrip("/") + "/"), (data_dir, claims))
        self.assertEqual(d["spec"]["replicas"], 1)
        self.assertEqual(d["spec"]["strategy"]["type"], "Recreate")
        pod = d["spec"]["template"]["spec"]["securityContext"]
        self.assertEqual(pod.get("fsGroupChangePolicy"), "OnRootMismatch")

    def test_security_contexts(self):
        c = container(self.server())
        pod = self.server()["spec"]["template"]["spec"].get("securityContext", {})
        sc = c["securityContext"]
        self.assertTrue(sc.get("runAsNonRoot") or pod.get("runAsNonRoot"))
        self.assertNotEqual(pod.get("runAsUser", sc.get("runAsUser")), 0)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
        a = container(self.agent())
        sc = a["securityContext"]
        self.assertEqual(sc["runAsUser"], 0)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
        self.assertNotIn("privileged", sc)

    def test_agent_runs_on_every_linux_node_with_the_drivers_directory(self):
        ds = self.agent()
        spec = ds["spec"]["template"]["spec"]
        self.assertEqual(spec["nodeSelector"], {"kubernetes.io/os": "linux"})
        self.assertIn({"operator": "Exists"}, spec["tolerations"])
        c = container(ds)
        self.assertTrue(c["resources"].get("requests") and c["resources"].get("limits"))
        words = command_line(c)
        provider_dir = option(words, "--csi-provider-dir")
        volumes = {v["name"]: v for v in spec["volumes"]}
        [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == provider_dir]
        self.assertEqual(volumes[mount["name"]]["hostPath"]["path"], provider_dir)
        self.assertEqual(provider_dir, PROVIDER_DIR)
        unit_dir = option(exec_start(read_unit(UNITS["agent"])), "--csi-provider-dir")
        self.assertEqual(provider_dir, unit_dir, "the unit and the DaemonSet serve one directory")

    def test_agent_reaches_the_server_the_manifests_name(self):
        server_words = command_line(container(self.server()))
        c = container(self.agent())
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        self.assertEqual(env["AZURE_AUTHORITY_HOST"],
                         "https://" + without_443(option(server_words, "--authority-host")))
        self.assertEqual(option(command_line(c), "--vault-dns-suffix"),
                         without_443(option(server_words, "--dns-suffix")))
        ca = env["COFFER_CA_FILE"]
        mounts = [m["mountPath"] for m in c["volumeMounts"]]
        self.assertTrue(any(ca.startswith(m.rstrip("/") + "/") for m in mounts), (ca, mounts))

    def test_server_answers_its_probes(self):
        d = self.server()
        c = container(d)
        words = command_line(c)
        # The manifest's flags but the data directory, listen addresses and port, which the
        # harness chooses on loopback.
        args = without_options(words[2:], "--data-dir", "--listen", "--port")
        srv = start_server(self, extra_args=args)
        pod_port = int(option(words, "--port"))
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            # The kubelet connects to the pod's IP and names it in Host.
            status = kubelet_get(srv.port, get["path"], get["scheme"], f"10.244.1.7:{pod_port}")
            self.assertEqual(status, 200, f"{probe} {get}\n{srv.stderr_text()[-3000:]}")

    def test_agent_answers_its_probe_and_mounts_as_the_daemonset_runs_it(self):
        ds = self.agent()
        spec = ds["spec"]["template"]["spec"]
        c = container(ds)
        get = c["livenessProbe"]["httpGet"]
        words = command_line(c)
        # The metrics endpoint listens on 127.0.0.1: the kubelet reaches it only in the node's
        # network, and only when the probe names that address.
        self.assertIs(spec.get("hostNetwork"), True)
        self.assertEqual(spec.get("dnsPolicy"), "ClusterFirstWithHostNet")
        self.assertEqual(get.get("host"), "127.0.0.1")
        self.assertEqual(get.get("scheme", "HTTP"), "HTTP")
        self.assertEqual(resolve_port(c, get["port"]), int(option(words, "--metrics-port")))
        srv = start_server(self)
        # The manifest's flags and environment, with this server in place of the cluster's.
        args = with_option(words[2:], "--vault-dns-suffix", srv.env["COFFER_VAULT_DNS_SUFFIX"])
        env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
        env.update({"AZURE_AUTHORITY_HOST": srv.env["AZURE_AUTHORITY_HOST"],
                    "COFFER_CA_FILE": srv.ca_path})
        agent = AgentRun(self, srv, ["agent"] + args, extra_env=env)
        agent.assert_sandboxed()
        status = kubelet_get(agent.metrics_port, get["path"], "HTTP", f"127.0.0.1:{get['port']}")
        self.assertEqual(status, 200, f"{get}\n{agent.process.output()}")
        agent.assert_mounts_a_secret()


if __name__ == "__main__":
    unittest.main()
