"""The server's certificate: an operator's files, replaced while serving, and the built-in CA.

Certificates here are made with the openssl command (a CA of the test's own, ECDSA P-256 keys).
A reload is observed by what new TLS connections are shown, never by waiting a while.
"""

import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import unittest

from harness import CofferServer, ServerTestCase, coffer_binary, free_port, wait_until

AUTHORITY = "coffer.test"
SUFFIX = "vault.coffer.test"
GOOD_NAMES = ("localhost", AUTHORITY, "*." + SUFFIX)


def openssl(*args, data=None):
    p = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"openssl {args}: {p.stderr.decode()}")
    return p.stdout


class Pki:
    """A CA in a temporary directory that issues server certificates."""

    def __init__(self, root):
        self.root = root
        self.ca_key = os.path.join(root, "ca.key")
        self.ca_pem = os.path.join(root, "ca.pem")
        self.serial = 0
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca_pem, "-days", "30",
                "-subj", "/CN=Coffer test CA")

    def issue(self, names, days=30, ca_key=None, ca_pem=None, key_type="ec"):
        """Returns (cert_pem, key_pem) bytes for the DNS `names`, issued by this CA (or by
        ca_pem/ca_key)."""
        self.serial += 1
        base = os.path.join(self.root, f"leaf{self.serial}")
        newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key_type == "ec"
                  else ["-newkey", "rsa:2048"])
        openssl("req", "-new", *newkey, "-nodes", "-keyout", base + ".key", "-out", base + ".csr",
                "-subj", f"/CN={names[0]}")
        with open(base + ".ext", "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
        openssl("x509", "-req", "-in", base + ".csr", "-CA", ca_pem or self.ca_pem,
                "-CAkey", ca_key or self.ca_key, "-set_serial", str(1000 + self.serial),
                "-days", str(days), "-extfile", base + ".ext", "-out", base + ".pem")
        with open(base + ".pem", "rb") as c, open(base + ".key", "rb") as k:
            return c.read(), k.read()


def replace_file(path, data):
    """Writes `path` as a deployment tool does: a new file renamed over the old one."""
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def served_certificate(port, ca_path, name):
    """The DER certificate a new TLS connection to `name` is shown."""
    ctx = ssl.create_default_context(cafile=ca_path)
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def pem_to_der(pem):
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def not_after(der):
    out = openssl("x509", "-inform", "DER", "-noout", "-enddate", data=der).decode()
    return datetime.datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")


class OperatorCertificateTests(unittest.TestCase):
    """A server given --tls-cert and --tls-key, which it checks every second."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="coffer-it-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        cls.pki = Pki(cls.root)
        cls.cert_path = os.path.join(cls.root, "server.pem")
        cls.key_path = os.path.join(cls.root, "server.key")
        cls.first_cert, cls.first_key = cls.pki.issue(GOOD_NAMES)
        replace_file(cls.cert_path, cls.first_cert)
        replace_file(cls.key_path, cls.first_key)
        cls.first_der = pem_to_der(cls.first_cert)
        cls.srv = CofferServer(extra_args=[
            "--authority-host", AUTHORITY, "--dns-suffix", SUFFIX, "--tls-cert", cls.cert_path,
            "--tls-key", cls.key_path, "--tls-reload-interval", "1"])
        cls.srv.ca_path = cls.pki.ca_pem  # clients trust the operator's CA
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.start()

    def tearDown(self):
        # Each test leaves the class's certificate in place and served.
        replace_file(self.key_path, self.first_key)
        replace_file(self.cert_path, self.first_cert)
        self.wait_served(self.first_der)

    def served(self, name=AUTHORITY):
        return served_certificate(self.srv.port, self.pki.ca_pem, name)

    def wait_served(self, der, name=AUTHORITY):
        self.assertTrue(wait_until(lambda: self.served(name) == der, timeout=60),
                        "the expected certificate was never served")

    def test_the_operators_certificate_is_served_and_dev_env_names_no_ca(self):
        self.assertEqual(self.served(), self.first_der)
        self.assertEqual(self.served("dev." + SUFFIX), self.first_der)
        self.assertNotIn("NODE_EXTRA_CA_CERTS", self.srv.env)
        self.assertNotIn("REQUESTS_CA_BUNDLE", self.srv.env)

    def test_a_replaced_certificate_reaches_new_connections_and_open_ones_keep_theirs(self):
        # A kept-alive connection made before the replacement.
        ctx = ssl.create_default_context(cafile=self.pki.ca_pem)
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.srv.port), 30),
                               server_hostname=AUTHORITY)
        self.addCleanup(sock.close)
        self.assertEqual(sock.getpeercert(binary_form=True), self.first_der)

        def healthz():
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + AUTHORITY.encode() + b"\r\n\r\n")
            data = b""
            while not data.endswith(b"}"):
                chunk = sock.recv(4096)
                self.assertTrue(chunk, "the server closed the connection")
                data += chunk
            return data

        self.assertIn(b" 200 ", healthz())
        cert, key = self.pki.issue(GOOD_NAMES, key_type="rsa")
        replace_file(self.key_path, key)
        replace_file(self.cert_path, cert)
        self.wait_served(pem_to_der(cert))
        self.assertEqual(self.served("anyvault." + SUFFIX), pem_to_der(cert))
        # The open connection still works, on the session it began with.
        self.assertIn(b" 200 ", healthz())
        self.assertEqual(sock.getpeercert(binary_form=True), self.first_der)

    def test_a_bad_replacement_leaves_the_certificate_in_use(self):
        refusals = self.srv.stderr_text().count("was not replaced")
        cert, _ = self.pki.issue(("localhost", AUTHORITY))  # no *.vault.coffer.test
        replace_file(self.cert_path, cert)
        self.assertTrue(wait_until(
            lambda: self.srv.stderr_text().count("was not replaced") > refusals, timeout=60))
        self.assertIn("does not cover *." + SUFFIX, self.srv.stderr_text())
        self.assertEqual(self.served(), self.first_der)
        # A key that is not the certificate's is refused too.
        _, other_key = self.pki.issue(GOOD_NAMES)
        replace_file(self.cert_path, self.first_cert)
        replace_file(self.key_path, other_key)
        self.assertTrue(wait_until(
            lambda: self.srv.stderr_text().count("was not replaced") > refusals + 1, timeout=60))
        self.assertEqual(self.served(), self.first_der)
        self.assertTrue(self.srv.running())
        self.assertNotIn(self.first_key.decode().splitlines()[1], self.srv.logs(),
                         "no key material in the log")


class ReloadOnSignalTests(unittest.TestCase):
    """SIGHUP reloads at once; the file check is too slow to be what reloaded."""

    def test_sighup_serves_the_new_certificate(self):
        root = tempfile.mkdtemp(prefix="coffer-it-tls-")
        self.addCleanup(shutil.rmtree, root, True)
        pki = Pki(root)
        cert_path, key_path = os.path.join(root, "server.pem"), os.path.join(root, "server.key")
        cert, key = pki.issue(GOOD_NAMES)
        replace_file(cert_path, cert)
        replace_file(key_path, key)
        srv = CofferServer(extra_args=[
            "--authority-host", AUTHORITY, "--dns-suffix", SUFFIX, "--tls-cert", cert_path,
            "--tls-key", key_path, "--tls-reload-interval", "86400"])
        srv.ca_path = pki.ca_pem
        self.addCleanup(srv.cleanup)
        srv.start()
        new_cert, new_key = pki.issue(GOOD_NAMES)
        replace_file(key_path, new_key)
        replace_file(cert_path, new_cert)
        self.assertEqual(served_certificate(srv.port, pki.ca_pem, AUTHORITY), pem_to_der(cert))
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: served_certificate(srv.port, pki.ca_pem, AUTHORITY)
                                   == pem_to_der(new_cert), timeout=60))
        self.assertTrue(srv.running())


class StartupRefusalTests(unittest.TestCase):
    """A certificate that cannot serve the configured names stops the server at start."""

    def test_uncovered_names_and_mismatched_keys_are_refused(self):
        root = tempfile.mkdtemp(prefix="coffer-it-tls-")
        self.addCleanup(shutil.rmtree, root, True)
        pki = Pki(root)
        good_cert, good_key = pki.issue(GOOD_NAMES)
        no_vaults, no_vaults_key = pki.issue(("localhost", AUTHORITY, "dev." + SUFFIX))
        no_authority, no_authority_key = pki.issue(("localhost", "*." + SUFFIX))
        _, other_key = pki.issue(GOOD_NAMES)
        cases = (
            ("no wildcard for the vaults", no_vaults, no_vaults_key, "does not cover *." + SUFFIX),
            ("no authority", no_authority, no_authority_key, "does not cover " + AUTHORITY),
            ("another key", good_cert, other_key, "private key"),
            ("not a certificate", b"not a pem\n", good_key, "does not cover " + AUTHORITY),
        )
        for label, cert, key, needle in cases:
            with self.subTest(label):
                cert_path = os.path.join(root, "c.pem")
                key_path = os.path.join(root, "k.pem")
                replace_file(cert_path, cert)
                replace_file(key_path, key)
                p = subprocess.run(
                    [coffer_binary(), "server", "--dev", "--data-dir", os.path.join(root, "d"),
                     "--port", str(free_port()), "--authority-host", AUTHORITY,
                     "--dns-suffix", SUFFIX, "--tls-cert", cert_path, "--tls-key", key_path],
                    capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(needle, p.stderr.decode())
        p = subprocess.run([coffer_binary(), "server", "--tls-cert", "x.pem"],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"--tls-key", p.stderr)


class BuiltInCaTests(ServerTestCase):
    """The dev server's own CA: exported for clients, and renewing the server certificate."""

    SERVER_ARGS = ("--tls-reload-interval", "1")

    def test_ca_export_prints_the_certificate_clients_trust(self):
        p = subprocess.run([coffer_binary(), "ca", "export", "--data-dir", self.srv.data_dir],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.srv.ca_path, "rb") as f:
            self.assertEqual(p.stdout, f.read())
        self.assertNotIn(b"PRIVATE KEY", p.stdout)
        exported = os.path.join(self.srv.root, "exported-ca.pem")
        with open(exported, "wb") as f:
            f.write(p.stdout)
        served_certificate(self.srv.port, exported, "dev.vault.localhost")  # verifies
        p = subprocess.run([coffer_binary(), "ca", "export", "--data-dir",
                            os.path.join(self.srv.root, "nothing-here")],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"coffer ca export", p.stderr)

    def test_tls_1_2_offers_only_forward_secret_aead_suites(self):
        def handshake(ciphers):
            ctx = ssl.create_default_context(cafile=self.srv.ca_path)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(ciphers)
            with socket.create_connection(("127.0.0.1", self.srv.port), 10) as sock:
                with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                    return tls.cipher()[0]

        # The built-in CA's material is ECDSA P-256.
        self.assertEqual(handshake("ECDHE-ECDSA-AES128-GCM-SHA256"),
                         "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(handshake("ECDHE-ECDSA-CHACHA20-POLY1305"),
                         "ECDHE-ECDSA-CHACHA20-POLY1305")
        # Suites the key could serve but that are not AEAD.
        for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                     "ECDHE-ECDSA-AES128-SHA256"):
            with self.subTest(weak):
                with self.assertRaises(ssl.SSLError):
                    handshake(weak)

    def test_new_material_is_ecdsa_p256(self):
        der = served_certificate(self.srv.port, self.srv.ca_path, "dev.vault.localhost")
        text = openssl("x509", "-inform", "DER", "-noout", "-text", data=der).decode()
        self.assertIn("id-ecPublicKey", text)
        self.assertIn("prime256v1", text)
        with open(self.srv.ca_path, "rb") as f:
            ca = openssl("x509", "-noout", "-text", data=f.read()).decode()
        self.assertIn("prime256v1", ca)

    def test_a_certificate_near_its_end_is_renewed_while_serving(self):
        tls_dir = os.path.join(self.srv.data_dir, "tls")
        pki = Pki(tempfile.mkdtemp(prefix="coffer-it-tls-", dir=self.srv.root))
        # The server's own CA issues a certificate with 5 days left, as one would find it
        # after a year: the server must replace it without a restart.
        names = ("localhost", "vault.localhost", "*.vault.localhost")
        short, short_key = pki.issue(names, days=5, ca_pem=self.srv.ca_path,
                                     ca_key=os.path.join(tls_dir, "ca-key.pem"), key_type="rsa")
        before = served_certificate(self.srv.port, self.srv.ca_path, "localhost")
        replace_file(os.path.join(tls_dir, "server-key.pem"), short_key)
        replace_file(os.path.join(tls_dir, "server.pem"), short)

        def renewed():
            der = served_certificate(self.srv.port, self.srv.ca_path, "localhost")
            return der not in (before, pem_to_der(short)) and der

        der = wait_until(renewed, timeout=60)
        self.assertTrue(der, "the certificate was never renewed")
        self.assertGreater(not_after(der), datetime.datetime.utcnow() + datetime.timedelta(days=300))
        with open(os.path.join(tls_dir, "server.pem"), "rb") as f:
            self.assertNotEqual(f.read(), short, "the renewed certificate is on disk")
        self.assertServing()
