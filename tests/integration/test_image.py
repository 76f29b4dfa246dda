"""The OCI image that packaging/oci/build-image.sh makes runs Coffer by itself.

Podman cannot run containers on these machines, so the test does what a runtime does, as far
as root can without one: it builds the image from the Release build ($COFFER_RELEASE_BIN, which
scripts/test.sh builds; else build-release/coffer) under a name of its own, exports it with
`buildah push ... oci-archive:`, reads its manifest and configuration, unpacks its layer into a
root file system and starts the configured entrypoint there with `chroot --userspec` as the
configured user, with an empty environment and nothing of the host's files in sight.

* The configuration: entrypoint /usr/bin/coffer, a user that is not root and that the image's
  /etc/passwd and /etc/group name, the port its default command listens on, one layer.
* packaging/kubernetes names the image by the script's default name, runs its entrypoint, and
  runs the server as the image's user and group.
* The server in the image, started with the image's default command (--dev added, a free port
  on loopback), answers /healthz over TLS, gives the dev service principal a token, and stores
  and returns a secret, asked from the host as a Service's clients would.
* The CLI in the image reads that secret by the vault's name, dev.vault.localhost, which only
  NSS's myhostname module in the image resolves (there is no /etc/hosts), and trusts the
  server through OpenSSL's default paths to the image's CA bundle (the server's CA appended,
  as a cluster mounts its own bundle).
* What is missing is caught: a copy of the root file system without a library the program
  loads does not start (the loader names the library); without libnss_myhostname.so.2 the CLI
  cannot resolve the vault's name; without OpenSSL's default path to the bundle it cannot
  verify the server.

Every buildah container and image the test makes is removed, also when it fails. It needs root
(buildah's storage and chroot); missing tools fail it with a message saying to run
scripts/setup.sh.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import unittest
import uuid

from harness import HERE, CofferServer, read_text

try:
    import yaml
except ImportError:  # reported by the test that needs it, as a failure
    yaml = None

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(REPO, "packaging", "oci", "build-image.sh")
KUBE_DIR = os.path.join(REPO, "packaging", "kubernetes")
DATA_DIR = "/var/lib/coffer/data"  # the image's default command's --data-dir
SETUP_HINT = "run scripts/setup.sh, which installs it"


def need_tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} (Debian package {package}) is missing: {SETUP_HINT}")
    return path


def release_binary():
    path = os.environ.get("COFFER_RELEASE_BIN") or os.path.join(REPO, "build-release", "coffer")
    if not os.access(path, os.X_OK):
        raise AssertionError(
            f"no Release build at {path}: scripts/test.sh builds it and sets COFFER_RELEASE_BIN; "
            "or cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && "
            "cmake --build build-release --target coffer")
    return path


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=kw.pop("timeout", 600), **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit status {p.returncode}\n{p.stdout}\n"
                             f"{p.stderr}")
    return p.stdout


def default_image_name():
    m = re.search(r"COFFER_IMAGE:-([^}]+)\}", read_text(SCRIPT))
    if not m:
        raise AssertionError(f"{SCRIPT} does not say its default image name")
    return m.group(1)


def read_blob(oci_dir, digest):
    algorithm, _, hex_digest = digest.partition(":")
    return os.path.join(oci_dir, "blobs", algorithm, hex_digest)


def unpack_oci_archive(archive, into):
    """(config, root file system directory) of the one image in an oci-archive."""
    oci_dir = os.path.join(into, "oci")
    with tarfile.open(archive) as t:
        t.extractall(oci_dir)
    with open(os.path.join(oci_dir, "index.json"), encoding="utf-8") as f:
        [entry] = json.load(f)["manifests"]
    with open(read_blob(oci_dir, entry["digest"]), encoding="utf-8") as f:
        manifest = json.load(f)
    with open(read_blob(oci_dir, manifest["config"]["digest"]), encoding="utf-8") as f:
        config = json.load(f)
    rootfs = os.path.join(into, "rootfs")
    os.mkdir(rootfs)
    for layer in manifest["layers"]:
        # GNU tar as a runtime unpacks: owners by number, modes as stored.
        run(["tar", "--numeric-owner", "-xpf", read_blob(oci_dir, layer["digest"]), "-C",
             rootfs])
    shutil.rmtree(oci_dir)
    return config, rootfs, len(manifest["layers"])


def in_image(rootfs, user, argv, env=None):
    """argv as a runtime starts it in the image: in its root file system, as its user, with
    only the given environment."""
    return ([need_tool("env", "coreutils"), "-i"] + [f"{k}={v}" for k, v in (env or {}).items()] +
            [need_tool("chroot", "coreutils"), f"--userspec={user}", rootfs] + list(argv))


class ImageServer(CofferServer):
    """A dev server run by the image's entrypoint in an unpacked root file system. Its data
    directory is the image's /var/lib/coffer/data, read by the test from the host."""

    def __init__(self, rootfs, config, extra_args=()):
        super().__init__(extra_args)
        self.rootfs = rootfs
        self.config = config
        self.data_dir = rootfs + DATA_DIR
        self.ca_path = os.path.join(self.data_dir, "tls", "ca.pem")
        self.dev_env_path = os.path.join(self.data_dir, "dev.env")

    def command(self, args):
        c = self.config["config"]
        words = list(c.get("Cmd") or [])
        # Loopback, as the dev server listens, instead of every address.
        words = replace_option(words, "--listen", "127.0.0.1", "::1")
        words = replace_option(words, "--port", str(self.port))
        return in_image(self.rootfs, c["User"], c["Entrypoint"] + words + ["--dev"] + list(args))


def replace_option(words, flag, *values):
    """words with the one value of `flag` replaced by `values`."""
    if flag not in words:
        raise AssertionError(f"the image's command has no {flag}: {words}")
    i = words.index(flag)
    return words[:i + 1] + list(values) + words[i + 2:]


class ImageTests(unittest.TestCase):
    maxDiff = 6000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: buildah's storage and chroot")
        need_tool("buildah", "buildah")
        need_tool("chroot", "coreutils")
        binary = release_binary()
        tag = uuid.uuid4().hex[:12]
        cls.image = f"localhost/coffer-test:{tag}"
        container = f"coffer-test-{tag}"
        # The script removes its container itself; these run also when it or the test fails.
        cls.addClassCleanup(subprocess.run, ["buildah", "rmi", "--force", cls.image],
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
        cls.addClassCleanup(subprocess.run, ["buildah", "rm", container],
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
        cls.dir = tempfile.mkdtemp(prefix="coffer-image-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        run(["bash", SCRIPT, binary],
            env=dict(os.environ, COFFER_IMAGE=cls.image, COFFER_IMAGE_CONTAINER=container))
        archive = os.path.join(cls.dir, "image.tar")
        run(["buildah", "push", "--quiet", cls.image, f"oci-archive:{archive}"])
        cls.config, cls.rootfs, cls.layers = unpack_oci_archive(archive, cls.dir)
        os.remove(archive)
        cls.user = cls.config["config"]["User"]

    def path(self, inside):
        return self.rootfs + inside

    def broken_copy(self, *remove):
        """A copy of the root file system without the given paths."""
        copy = tempfile.mkdtemp(prefix="coffer-image-broken-", dir=self.dir)
        self.addCleanup(shutil.rmtree, copy, True)
        run(["cp", "-a", self.rootfs + "/.", copy])
        for inside in remove:
            self.assertTrue(os.path.lexists(copy + inside), inside)
            os.remove(copy + inside)
        return copy

    def start_server(self, rootfs):
        srv = ImageServer(rootfs, self.config)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def cli_in_image(self, rootfs, srv, *args):
        """`coffer keyvault ARGS` in the image with the dev service principal and no CA file:
        it trusts what OpenSSL's default paths give it."""
        env = {k: v for k, v in srv.env.items()
               if k not in ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "COFFER_CA_FILE")}
        entry = self.config["config"]["Entrypoint"]
        return subprocess.run(in_image(rootfs, self.user, entry + ["keyvault"] + list(args), env),
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    def trust_server_ca(self, rootfs, srv):
        """Appends the server's CA to the image's bundle, as a cluster mounts its own."""
        bundle = rootfs + "/etc/ssl/certs/ca-certificates.crt"
        self.assertTrue(os.path.isfile(bundle), "the image has no CA bundle")
        with open(bundle, "a", encoding="utf-8") as out:
            out.write("\n" + read_text(srv.ca_path))

    # ---- the image's configuration and the manifests -------------------------------------

    def test_configuration_names_a_user_of_the_image_that_is_not_root(self):
        c = self.config["config"]
        self.assertEqual(self.layers, 1, "an image from scratch has the one layer of its files")
        self.assertEqual(c["Entrypoint"], ["/usr/bin/coffer"])
        uid, _, gid = c["User"].partition(":")
        self.assertTrue(uid.isdigit() and gid.isdigit(), c["User"])  # runAsNonRoot checks numbers
        self.assertNotEqual(int(uid), 0)
        passwd = [line.split(":") for line in read_text(self.path("/etc/passwd")).splitlines()]
        group = [line.split(":") for line in read_text(self.path("/etc/group")).splitlines()]
        [user] = [p for p in passwd if p[2] == uid]
        self.assertEqual(user[3], gid)
        self.assertTrue([g for g in group if g[2] == gid])
        # Its home is the data directory's parent, the one place of the image it owns.
        st = os.stat(self.path(user[5]))
        self.assertEqual((st.st_uid, st.st_gid), (int(uid), int(gid)), user[5])
        self.assertEqual(os.path.dirname(DATA_DIR), user[5])
        cmd = c["Cmd"]
        self.assertEqual(cmd[0], "server")
        self.assertEqual(list(c.get("ExposedPorts", {})), [cmd[cmd.index("--port") + 1] + "/tcp"])
        self.assertEqual(cmd[cmd.index("--data-dir") + 1], DATA_DIR)

    def test_manifests_run_this_image_as_its_user(self):
        if yaml is None:
            raise AssertionError(f"PyYAML (Debian package python3-yaml) is missing: {SETUP_HINT}")
        name = default_image_name()
        uid, _, gid = self.user.partition(":")
        workloads = []
        for path in sorted(glob.glob(os.path.join(KUBE_DIR, "*.yaml"))):
            with open(path, encoding="utf-8") as f:
                workloads += [(os.path.basename(path), d) for d in yaml.safe_load_all(f)
                              if d and d["kind"] in ("Deployment", "DaemonSet")]
        self.assertEqual(sorted(d["kind"] for _, d in workloads), ["DaemonSet", "Deployment"])
        for file, d in workloads:
            spec = d["spec"]["template"]["spec"]
            for c in spec["containers"]:
                self.assertEqual(c["image"], name, file)
                self.assertEqual(c["command"], self.config["config"]["Entrypoint"], file)
            if d["kind"] == "Deployment":
                pod = spec["securityContext"]
                self.assertEqual((str(pod["runAsUser"]), str(pod["runAsGroup"])), (uid, gid), file)
                self.assertEqual(str(pod["fsGroup"]), gid, file)

    # ---- the image runs ------------------------------------------------------------------

    def test_server_and_cli_run_in_the_image(self):
        srv = self.start_server(self.rootfs)  # waits for /healthz over TLS, trusting its CA
        token = srv.token(srv.vault_resource)
        self.assertEqual(token.count("."), 2)
        value = "from-the-image-" + uuid.uuid4().hex
        r = srv.kv("PUT", "/secrets/image-db", {"value": value})
        self.assertEqual(r.status, 200, repr(r))
        r = srv.kv("GET", "/secrets/image-db")
        self.assertEqual((r.status, r.json()["value"]), (200, value), repr(r))
        # The server runs as the image's user.
        uid = self.user.partition(":")[0]
        status = read_text(f"/proc/{srv.proc.pid}/status")
        self.assertEqual(re.search(r"(?m)^Uid:\s+(\d+)", status).group(1), uid, status)

        self.trust_server_ca(self.rootfs, srv)
        p = self.cli_in_image(self.rootfs, srv, "secret", "show", "--vault-name", "dev",
                              "--name", "image-db")
        self.assertEqual(p.returncode, 0, f"{p.stdout}\n{p.stderr}")
        self.assertEqual(json.loads(p.stdout)["value"], value)

        # The same CLI in copies without the NSS module or OpenSSL's path to the bundle fails.
        for missing, words in (("/usr/lib/x86_64-linux-gnu/libnss_myhostname.so.2", "resol"),
                               ("/usr/lib/ssl/cert.pem", "certificate")):
            copy = self.broken_copy(missing)
            p = self.cli_in_image(copy, srv, "secret", "show", "--vault-name", "dev",
                                  "--name", "image-db")
            self.assertNotEqual(p.returncode, 0, f"without {missing}: {p.stdout}")
            self.assertIn(words, p.stderr.lower(), f"without {missing}")
            self.assertNotIn(value, p.stdout + p.stderr)
        self.assertEqual(srv.stop(), 0, srv.logs()[-3000:])

    def test_a_missing_library_stops_the_server(self):
        libraries = sorted(os.path.basename(p) for p in
                           glob.glob(self.path("/usr/lib/x86_64-linux-gnu/libssl.so.*")))
        self.assertTrue(libraries, "the image has no libssl")
        copy = self.broken_copy("/usr/lib/x86_64-linux-gnu/" + libraries[0])
        srv = ImageServer(copy, self.config)
        self.addCleanup(srv.cleanup)
        with self.assertRaises(RuntimeError) as caught:
            srv.start()
        self.assertIn(libraries[0], str(caught.exception))
        self.assertIn("error while loading shared libraries", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
