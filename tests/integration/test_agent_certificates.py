"""`coffer agent` mounting certificates, end to end against the real server.

As the Azure provider (csi-driver.md §3.4), for certificates the vault made with the Self
issuer (POST /certificates/{name}/create), each version a certificate, a key and a secret of
one name and version:

* objectType cert: the certificate alone, one PEM CERTIFICATE, the one the vault serves (its
  SHA-1 fingerprint is the x5t), with the certificate's version;
* objectType secret of a PKCS#12 certificate: PEM, the private key (PKCS#8) first, which
  `openssl pkey` reads and which is the certificate's key; with objectFormat pfx and
  objectEncoding base64, the PFX itself, which `openssl pkcs12 -passin pass:` opens;
* objectType secret of a PEM certificate: the secret's value as stored;
* --write-cert-and-key-in-separate-files: <file>.crt and <file>.key beside the bundle;
* objectVersionHistory on a cert: a directory of the newest certificates;
* a new version of the certificate reaches the files by push (the watch stream carries its
  secret's new version; a poll interval of an hour) and by poll (--no-watch);
* a renewal the server's scheduler makes (the policy's AutoRenew action, signed by an issuer of
  the Coffer provider) reaches nginx (Debian's): the agent writes the new key and certificate
  and signals nginx through its reload hook, and a client that trusts only the installation's
  CA then verifies the new certificate nginx serves.

The file contents are checked with the `openssl` command. No private key or PFX appears in the
agent's output or its status records. Every wait is bounded (WAIT_S) and none is a
performance claim.
"""

import base64
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

from cryptography import x509

from harness import free_port, read_text, wait_until
from test_agent import WAIT_S, Agent, AgentTestCase

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"


def openssl(*args, data=None):
    """Runs `openssl <args>` with `data` (bytes or text) on stdin; returns its stdout."""
    binary = isinstance(data, bytes)
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True,
                       text=not binary, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {p.stderr}")
    return p.stdout.decode() if binary else p.stdout


def fingerprint(cert_pem):
    """The SHA-1 fingerprint of the first certificate of `cert_pem`, hex upper-case."""
    out = openssl("x509", "-noout", "-fingerprint", "-sha1", data=cert_pem)
    return out.strip().split("=", 1)[1].replace(":", "")


def public_key_of_certificate(cert_pem):
    return openssl("x509", "-noout", "-pubkey", data=cert_pem)


def public_key_of_private_key(key_pem):
    return openssl("pkey", "-pubout", data=key_pem)


def blocks(pem, label):
    """The PEM blocks of `pem` of this label, each with its final newline."""
    out, begin, end = [], f"-----BEGIN {label}-----", f"-----END {label}-----"
    at = pem.find(begin)
    while at >= 0:
        stop = pem.index(end, at) + len(end)
        out.append(pem[at:stop] + "\n")
        at = pem.find(begin, stop)
    return out


class CertificateMountTestCase(AgentTestCase):
    """The identities of AgentTestCase may also get and list certificates in the dev vault."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for principal in (cls.vm["identity"]["principalId"], cls.fed["principalId"]):
            cls.coffer_json("keyvault", "set-policy", "--name", "dev", "--object-id", principal,
                            "--secret-permissions", "get", "list",
                            "--certificate-permissions", "get", "list")

    def create_certificate(self, name, content_type=PKCS12):
        """A new version of certificate `name` (Self-signed, CN=<name>); returns its bundle."""
        policy = {"x509_props": {"subject": f"CN={name}"},
                  "secret_props": {"contentType": content_type}}
        r = self.srv.kv("POST", f"/certificates/{name}/create", {"policy": policy})
        self.assertEqual(r.status, 202, repr(r))
        operation = {"status": r.json()["status"]}

        def signed():
            if operation["status"] == "inProgress":
                operation.update(self.srv.kv("GET", f"/certificates/{name}/pending").json())
            return operation["status"] != "inProgress"
        self.assertTrue(wait_until(signed, timeout=WAIT_S), operation)
        self.assertEqual(operation["status"], "completed", operation)
        r = self.srv.kv("GET", f"/certificates/{name}/")
        self.assertEqual(r.status, 200, repr(r))
        bundle = r.json()
        # The private key is in the certificate's secret; none of it may leak.
        secret = self.srv.kv("GET", "/" + bundle["sid"].split("/", 3)[3]).json()
        self.assertTrue(secret.get("managed"), secret)
        self.assertEqual(secret["contentType"], content_type)
        self.secrets[f"the secret of {name} {self.version_of(bundle)}"] = secret["value"]
        bundle["secret_value"] = secret["value"]
        return bundle

    @staticmethod
    def version_of(bundle):
        return bundle["id"].rstrip("/").rsplit("/", 1)[1]

    @staticmethod
    def x5t_hex(bundle):
        x5t = bundle["x5t"]
        return base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex().upper()

    def remember_keys(self, *pems):
        """The private key blocks of these files must appear nowhere else."""
        for pem in pems:
            for i, block in enumerate(blocks(pem, "PRIVATE KEY")):
                # The end of PKCS#8 is key material (the start is the same for every key).
                body = "".join(block.splitlines()[1:-1])
                self.secrets[f"a private key ({len(self.secrets)}.{i})"] = body[-64:]

    def assertIsCertificateOf(self, pem, bundle):
        """`pem` is exactly one CERTIFICATE, the vault's certificate of `bundle`."""
        self.assertEqual(len(blocks(pem, "CERTIFICATE")), 1, pem)
        self.assertTrue(pem.startswith("-----BEGIN CERTIFICATE-----\n"), pem)
        self.assertNotIn("PRIVATE KEY", pem)
        self.assertEqual(fingerprint(pem), self.x5t_hex(bundle))
        name = bundle["id"].split("/certificates/", 1)[1].split("/")[0]
        self.assertIn(f"CN = {name}", openssl("x509", "-noout", "-subject", data=pem))

    def assertIsBundleOf(self, pem, bundle):
        """`pem` is the private key (PKCS#8) first, then the certificate it belongs to."""
        self.assertTrue(pem.startswith("-----BEGIN PRIVATE KEY-----\n"), pem[:40])
        keys = blocks(pem, "PRIVATE KEY")
        certs = blocks(pem, "CERTIFICATE")
        self.assertEqual(len(keys), 1)
        self.assertEqual(len(certs), 1, "a Self-signed certificate has no chain")
        self.assertEqual(pem, keys[0] + certs[0])
        self.assertEqual(fingerprint(certs[0]), self.x5t_hex(bundle))
        self.assertEqual(public_key_of_private_key(keys[0]), public_key_of_certificate(certs[0]),
                         "the key is not the certificate's")

    def holds_certificate(self, entry, path, bundle):
        try:
            return fingerprint(self.read(entry, path)) == self.x5t_hex(bundle)
        except AssertionError:
            return False


class StandaloneCertificateMountTests(CertificateMountTestCase):

    def test_cert_pem_and_pfx_files_are_what_openssl_reads_and_rotate_by_push(self):
        tls = self.create_certificate("agent-tls")
        pem_cert = self.create_certificate("agent-pemcert", content_type=PEM)
        m = self.mount("certs", [
            {"objectName": "agent-tls", "objectType": "cert", "objectAlias": "tls.crt"},
            {"objectName": "agent-tls", "objectType": "secret", "objectAlias": "tls.pem"},
            {"objectName": "agent-tls", "objectType": "secret", "objectFormat": "pfx",
             "objectEncoding": "base64", "objectAlias": "tls.pfx"},
            {"objectName": "agent-pemcert", "objectType": "secret", "objectAlias": "pem.pem"},
        ], permission="0600")
        agent = Agent(self, [m], poll="1h")  # only push explains a change
        self.assertLayout(m, ["tls.crt", "tls.pem", "tls.pfx", "pem.pem"])
        for f in ("tls.crt", "tls.pem", "tls.pfx", "pem.pem"):
            mode = os.stat(os.path.join(m["target"], "..data", f)).st_mode
            self.assertEqual(stat.S_IMODE(mode), 0o600, f)
        crt, pem = self.read(m, "tls.crt"), self.read(m, "tls.pem")
        self.remember_keys(pem, self.read(m, "pem.pem"))
        self.assertIsCertificateOf(crt, tls)
        self.assertIsBundleOf(pem, tls)
        self.assertEqual(blocks(pem, "CERTIFICATE")[0], crt)
        # The PFX itself: the vault's bytes, which openssl opens with the empty password.
        with open(os.path.join(m["target"], "tls.pfx"), "rb") as f:
            pfx = f.read()
        self.assertEqual(pfx, base64.b64decode(tls["secret_value"]))
        self.assertEqual(fingerprint(openssl("pkcs12", "-passin", "pass:", "-nokeys", "-clcerts",
                                             data=pfx)), self.x5t_hex(tls))
        pfx_key = openssl("pkcs12", "-passin", "pass:", "-nocerts", "-nodes", data=pfx)
        self.assertEqual(public_key_of_private_key(pfx_key), public_key_of_certificate(crt))
        # A PEM certificate's secret is written as stored.
        self.assertEqual(self.read(m, "pem.pem"), pem_cert["secret_value"])
        self.assertIsBundleOf(self.read(m, "pem.pem"), pem_cert)
        st = agent.status("certs")
        self.assertEqual([(o["id"], o["version"]) for o in st["objects"]],
                         [("cert/agent-tls", self.version_of(tls)),
                          ("secret/agent-tls", self.version_of(tls)),
                          ("secret/agent-tls", self.version_of(tls)),
                          ("secret/agent-pemcert", self.version_of(pem_cert))])

        # A new version: the watch stream brings its secret's SecretNewVersionCreated, and
        # every file of the certificate changes to it.
        renewed = self.create_certificate("agent-tls")
        self.assertNotEqual(self.x5t_hex(renewed), self.x5t_hex(tls))
        self.assertTrue(wait_until(lambda: self.holds_certificate(m, "tls.crt", renewed),
                                   timeout=WAIT_S), agent.status("certs"))
        self.assertTrue(wait_until(
            lambda: [o["version"] for o in agent.status("certs")["objects"]][:3] ==
            [self.version_of(renewed)] * 3, timeout=WAIT_S), agent.status("certs"))
        self.assertIsCertificateOf(self.read(m, "tls.crt"), renewed)
        self.remember_keys(self.read(m, "tls.pem"))
        self.assertIsBundleOf(self.read(m, "tls.pem"), renewed)
        with open(os.path.join(m["target"], "tls.pfx"), "rb") as f:
            self.assertEqual(f.read(), base64.b64decode(renewed["secret_value"]))
        status_text = read_text(os.path.join(agent.state, "mounts", "certs.json"))
        self.assertNotIn("PRIVATE KEY", status_text + agent.output())
        self.assertNoSecrets(agent.output(), status_text)

    def test_separate_files_history_and_rotation_by_poll(self):
        first = self.create_certificate("agent-poll")
        m = self.mount("poll", [
            {"objectName": "agent-poll", "objectType": "secret", "objectAlias": "bundle.pem"},
            {"objectName": "agent-poll", "objectType": "secret", "objectFormat": "pfx",
             "objectAlias": "bundle.pfx"},
            {"objectName": "agent-poll", "objectType": "cert", "objectVersionHistory": 2,
             "objectAlias": "history"},
        ], spc_params={"useVMManagedIdentity": "true"})
        agent = Agent(self, [m], poll="1s",
                      args=["--no-watch", "--write-cert-and-key-in-separate-files"])
        self.assertLayout(m, ["bundle.pem", "bundle.pem.crt", "bundle.pem.key", "bundle.pfx",
                              "bundle.pfx.crt", "bundle.pfx.key", "history"])
        bundle = self.read(m, "bundle.pem")
        self.remember_keys(bundle)
        self.assertIsBundleOf(bundle, first)
        crt, key = self.read(m, "bundle.pem.crt"), self.read(m, "bundle.pem.key")
        self.assertEqual(crt + key, blocks(bundle, "CERTIFICATE")[0] + blocks(bundle,
                                                                             "PRIVATE KEY")[0])
        self.assertIsCertificateOf(crt, first)
        self.assertEqual(public_key_of_private_key(key), public_key_of_certificate(crt))
        # The PFX (base64 text) is not PEM: its .crt and .key are empty, as the provider's.
        self.assertEqual(self.read(m, "bundle.pfx"), first["secret_value"])
        self.assertEqual(self.read(m, "bundle.pfx.crt"), "")
        self.assertEqual(self.read(m, "bundle.pfx.key"), "")
        self.assertEqual(os.listdir(os.path.join(m["target"], "history")), ["0"])
        self.assertIsCertificateOf(self.read(m, "history/0"), first)
        ids = [(o["id"], o["file"]) for o in agent.status("poll")["objects"]]
        self.assertEqual(ids, [("secret/agent-poll", "bundle.pem"),
                               ("secret/agent-poll", "bundle.pem.crt"),
                               ("secret/agent-poll", "bundle.pem.key"),
                               ("secret/agent-poll", "bundle.pfx"),
                               ("secret/agent-poll", "bundle.pfx.crt"),
                               ("secret/agent-poll", "bundle.pfx.key"),
                               ("cert/agent-poll/0", "history/0")])

        time.sleep(1.1)  # versions are ordered by their creation second
        second = self.create_certificate("agent-poll")
        self.assertTrue(wait_until(lambda: self.holds_certificate(m, "history/0", second) and
                                   self.holds_certificate(m, "bundle.pem.crt", second),
                                   timeout=WAIT_S), agent.status("poll"))
        self.assertIsCertificateOf(self.read(m, "history/1"), first)
        self.remember_keys(self.read(m, "bundle.pem"))
        self.assertIsBundleOf(self.read(m, "bundle.pem"), second)
        self.assertEqual(public_key_of_private_key(self.read(m, "bundle.pem.key")),
                         public_key_of_certificate(self.read(m, "history/0")))
        versions = {o["id"]: o["version"] for o in agent.status("poll")["objects"]}
        self.assertEqual(versions["cert/agent-poll/0"], self.version_of(second))
        self.assertEqual(versions["cert/agent-poll/1"], self.version_of(first))
        self.assertEqual(versions["secret/agent-poll"], self.version_of(second))
        status_text = read_text(os.path.join(agent.state, "mounts", "poll.json"))
        self.assertNoSecrets(agent.output(), status_text)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def served_certificate(port, cafile):
    """The certificate the TLS server on `port` presents for "localhost", verified against
    `cafile`; None when the handshake or the verification fails."""
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    except (OSError, ssl.SSLError):
        return None


@unittest.skipUnless(os.path.exists(NGINX), "needs nginx (scripts/setup.sh installs it)")
class NginxRenewalTests(CertificateMountTestCase):
    """An AutoRenew renewal, from the scheduler to the certificate nginx serves."""

    SERVER_ARGS = ("--expiry-scan-interval", "1")

    def start_nginx(self, directory, target):
        port = free_port()
        conf = os.path.join(directory, "nginx.conf")
        pid_file = os.path.join(directory, "nginx.pid")
        temp = "".join(f"{kind}_temp_path {directory}/{kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f"""daemon off;
worker_processes 1;
pid {pid_file};
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  {temp}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {target}/tls.pem.crt;
    ssl_certificate_key {target}/tls.pem.key;
    location / {{ return 200 "ok"; }}
  }}
}}
""")
        proc = subprocess.Popen([NGINX, "-c", conf, "-p", directory, "-e",
                                 os.path.join(directory, "error.log")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)
                try:
                    proc.wait(timeout=WAIT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        self.assertTrue(wait_until(lambda: read_text(pid_file).strip() == str(proc.pid),
                                   timeout=WAIT_S), read_text(os.path.join(directory, "error.log")))
        return proc, port, pid_file

    def test_an_autorenewed_certificate_reaches_nginx_through_the_mount_and_its_reload_hook(self):
        d = tempfile.mkdtemp(prefix="nginx-", dir=self.srv.root)
        # The first version is a certificate made elsewhere, valid for two days, imported.
        key_path, crt_path = os.path.join(d, "first.key"), os.path.join(d, "first.crt")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key_path, "-out", crt_path, "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost",
                "-addext", "keyUsage=critical,digitalSignature",
                "-addext", "extendedKeyUsage=serverAuth",
                "-addext", "basicConstraints=critical,CA:FALSE")
        first_pem = read_text(key_path) + read_text(crt_path)
        self.remember_keys(read_text(key_path))
        r = self.srv.kv("POST", "/certificates/web-renew/import",
                        {"value": first_pem, "policy": {"secret_props": {"contentType": PEM}}})
        self.assertEqual(r.status, 200, repr(r))
        first = r.json()
        # An issuer of the Coffer provider for localhost, and the CA it signs with.
        r = self.srv.kv("PUT", "/certificates/issuers/corp",
                        {"provider": "Coffer", "coffer": {"allowed_dns_suffixes": ["localhost"]}})
        self.assertEqual(r.status, 200, repr(r))
        ca_path = os.path.join(d, "coffer-ca.pem")
        rc, out, err = self.run_coffer("ca", "show", "--file", ca_path)
        self.assertEqual(rc, 0, err)
        ca = x509.load_pem_x509_certificate(read_text(ca_path).encode())

        m = self.mount("nginx", [{"objectName": "web-renew", "objectType": "secret",
                                  "objectAlias": "tls.pem"}],
                       spc_params={"useVMManagedIdentity": "true"},
                       reload={"signal": "HUP", "pidFile": os.path.join(d, "nginx.pid")})
        agent = Agent(self, [m], poll="1h", args=["--write-cert-and-key-in-separate-files"])
        nginx, port, _ = self.start_nginx(d, m["target"])
        served = served_certificate(port, crt_path)
        self.assertIsNotNone(served, read_text(os.path.join(d, "error.log")))
        self.assertEqual(served.serial_number,
                         x509.load_pem_x509_certificate(read_text(crt_path).encode()).serial_number)
        self.assertIsNone(served_certificate(port, ca_path), "the first one is not the CA's")

        # The policy now renews through the issuer 20 days before expiry: the version, which
        # expires in two days, is due at the scheduler's next pass (every second here).
        r = self.srv.kv("PATCH", "/certificates/web-renew/policy",
                        {"issuer": {"name": "corp"},
                         "lifetime_actions": [{"trigger": {"days_before_expiry": 20},
                                               "action": {"action_type": "AutoRenew"}}]})
        self.assertEqual(r.status, 200, repr(r))
        renewed = {}

        def nginx_serves_the_renewal():
            renewed["cert"] = served_certificate(port, ca_path)
            return renewed["cert"] is not None
        self.assertTrue(wait_until(nginx_serves_the_renewal, timeout=WAIT_S),
                        f"{agent.status('nginx')}\n{agent.output()[-3000:]}\n"
                        f"{read_text(os.path.join(d, 'error.log'))[-2000:]}")
        cert = renewed["cert"]
        self.assertEqual(cert.issuer, ca.subject)
        self.assertEqual(cert.subject.rfc4514_string(), "CN=localhost")
        # nginx was reloaded (its master lives on), not restarted.
        self.assertIsNone(nginx.poll())
        self.assertGreaterEqual(agent.status("nginx").get("reloads", 0), 1, agent.status("nginx"))
        # The vault's latest version is the one nginx serves, and the files hold its key.
        latest = self.srv.kv("GET", "/certificates/web-renew/").json()
        self.assertNotEqual(self.version_of(latest), self.version_of(first))
        self.assertEqual(fingerprint(self.read(m, "tls.pem.crt")), self.x5t_hex(latest))
        self.assertEqual(public_key_of_private_key(self.read(m, "tls.pem.key")),
                         public_key_of_certificate(self.read(m, "tls.pem.crt")))
        self.remember_keys(self.read(m, "tls.pem"))
        # Renewed once: the new version is not due for weeks.
        time.sleep(2.5)
        versions = self.srv.kv("GET", "/certificates/web-renew/versions").json()["value"]
        self.assertEqual(len(versions), 2, versions)
        status_text = read_text(os.path.join(agent.state, "mounts", "nginx.json"))
        self.assertNoSecrets(agent.output(), status_text)


if __name__ == "__main__":
    unittest.main()
