"""`coffer keyvault certificate ...` against a real dev server: a certificate's life through the CLI,
az's default policy as the input of create, interop with the openssl command line (a downloaded
certificate parses, an openssl-made PFX imports, the secret's PFX opens with no password), the
Unknown issuer's operation in progress (its CSR signed by an openssl CA, then merged), the
installation CA (`coffer ca show`, and `coffer ca import` of a company's intermediate) and issuers
of the Coffer provider (what they sign verifies with `openssl verify`), contacts, backup and
restore, and bad input.

The CLI runs with the server's dev.env in its environment, as in test_cli. Exit codes: 0 success,
1 a request was refused (`ERROR: (<code>) <message>` on stderr), 2 usage errors.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import unittest

from test_cli import CliTestCase

DEV = ("--vault-name", "dev")


def openssl(*args, data=None):
    """Runs the openssl command line, which must succeed; returns its stdout."""
    p = subprocess.run(["openssl"] + [str(a) for a in args], input=data, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"openssl {args} exited {p.returncode}: {p.stderr.decode()}")
    return p.stdout


def pem_certificates(text):
    """The DER of each CERTIFICATE block of PEM text, in order."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    return [base64.b64decode("".join(body.split())) for body in
            re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)]


def public_key_of_certificate(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey")


def unknown_policy(subject, dns_names, content_type="application/x-pkcs12"):
    """A policy (Key Vault's wire shape) whose issuer is Unknown: a P-256 key and a CSR."""
    return {"issuer": {"name": "Unknown"},
            "key_props": {"kty": "EC", "crv": "P-256", "exportable": True, "reuse_key": False},
            "secret_props": {"contentType": content_type},
            "x509_props": {"subject": subject, "sans": {"dns_names": dns_names},
                           "validity_months": 12}}


class OpensslCa:
    """A throwaway CA made with `openssl req -x509` in its own temporary directory; it signs
    CSRs with `openssl x509 -req`, copying their extensions (the SANs among them)."""

    def __init__(self, parent, name):
        self.dir = tempfile.mkdtemp(prefix="openssl-ca-", dir=parent)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        self.serial = 0
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-days", "30", "-subj", f"/CN={name}")
        with open(self.cert) as f:
            self.pem = f.read()
        self.der = pem_certificates(self.pem)[0]

    def sign_csr(self, csr_b64, name):
        """Signs a CSR given as Key Vault gives it (std base64 DER); returns the leaf's path
        (PEM). The CSR is converted to PEM first, and openssl checks its signature."""
        der_path = os.path.join(self.dir, name + ".csr.der")
        with open(der_path, "wb") as f:
            f.write(base64.b64decode(csr_b64))
        pem_path = os.path.join(self.dir, name + ".csr.pem")
        openssl("req", "-inform", "DER", "-in", der_path, "-outform", "PEM", "-out", pem_path,
                "-verify")
        return self.sign_pem_csr(pem_path, name)

    def sign_pem_csr(self, pem_path, name):
        self.serial += 1
        leaf = os.path.join(self.dir, name + ".pem")
        openssl("x509", "-req", "-in", pem_path, "-CA", self.cert, "-CAkey", self.key,
                "-set_serial", str(1000 + self.serial), "-days", "30", "-copy_extensions", "copy",
                "-out", leaf)
        return leaf

    def chain(self, leaf, name):
        """A PEM file with the leaf, then this CA."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f, open(leaf) as l:
            f.write(l.read() + self.pem)
        return path

    def leaf_for_another_key(self, subject, name):
        """A certificate this CA signed for a key of its own (not a pending request's)."""
        csr = os.path.join(self.dir, name + ".csr.pem")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", os.path.join(self.dir, name + ".key"), "-subj", subject, "-out", csr)
        return self.sign_pem_csr(csr, name)


class CertificateCliTestCase(CliTestCase):

    def cert(self, *args):
        return self.ok("certificate", *args)

    def path(self, name):
        return os.path.join(self.srv.root, name)

    def write(self, name, data):
        with open(self.path(name), "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return self.path(name)

    def fails_with_exit_1(self, *args):
        """Asserts exit 1 with `ERROR: (<some code>)` on stderr and nothing on stdout."""
        rc, out, err = self.srv.cli(*args)
        self.assertEqual(rc, 1, f"{args}: stdout: {out}\nstderr: {err}")
        self.assertRegex(err, r"^ERROR: \(\w+\) ", f"{args}")
        self.assertEqual(out.strip(), "", "a failed command printed a result")
        return err

    def start_pending(self, name, policy):
        """Starts an operation in progress with `certificate create`, which returns it at once
        for the Unknown issuer, as az does. Returns the operation."""
        path = self.write(f"{name}-policy.json", json.dumps(policy))
        op = self.cert("create", *DEV, "--name", name, "--policy", "@" + path)
        self.assertEqual((op["status"], op["issuer"]["name"]), ("inProgress", "Unknown"), op)
        return op

    def nothing_named(self, name):
        """No certificate, key or secret of that name exists."""
        self.fails("CertificateNotFound", "certificate", "show", *DEV, "--name", name)
        self.fails("KeyNotFound", "key", "show", *DEV, "--name", name)
        self.fails("SecretNotFound", "secret", "show", *DEV, "--name", name)

    def only_pending(self, name):
        """The certificate's first version waits for its merge: `certificate show` gives the
        version-to-be (disabled, no `cer`, with `pending`), `download` says why it has nothing to
        write, and there is no key or secret."""
        shown = self.cert("show", *DEV, "--name", name)
        self.assertEqual(shown["attributes"]["enabled"], False, shown)
        self.assertNotIn("cer", shown)
        self.assertNotIn("sid", shown)
        self.assertTrue(shown["pending"]["id"].endswith(f"/certificates/{name}/pending"), shown)
        err = self.fails("PendingCertificate", "certificate", "download", *DEV, "--name", name,
                         "--file", self.path(f"{name}-download.pem"))
        self.assertIn("pending merge", err)
        self.assertFalse(os.path.exists(self.path(f"{name}-download.pem")))
        self.fails("KeyNotFound", "key", "show", *DEV, "--name", name)
        self.fails("SecretNotFound", "secret", "show", *DEV, "--name", name)


class CertificateLifecycleTests(CertificateCliTestCase):

    def test_create_from_the_default_policy_show_download_list_disable_delete_recover_purge(self):
        port = self.srv.port
        policy = self.cert("get-default-policy")
        self.assertEqual(policy["issuerParameters"]["name"], "Self")
        policy["x509CertificateProperties"]["subject"] = "CN=cli.example"
        policy["x509CertificateProperties"]["subjectAlternativeNames"] = {
            "dnsNames": ["cli.example", "www.cli.example"]}
        policy_file = self.write("policy.json", json.dumps(policy))

        op = self.cert("create", *DEV, "--name", "cli-cert", "--policy", "@" + policy_file,
                       "--tags", "team=web")
        self.assertEqual(op["status"], "completed")
        self.assertEqual(op["target"], f"https://dev.vault.localhost:{port}/certificates/cli-cert")
        shown = self.cert("show", *DEV, "--name", "cli-cert")
        self.assertRegex(shown["id"],
                         r"^https://dev\.vault\.localhost:%d/certificates/cli-cert/[0-9a-f]{32}$" % port)
        self.assertEqual(shown["tags"], {"team": "web"})
        self.assertEqual(shown["policy"]["x509_props"]["subject"], "CN=cli.example")
        self.assertEqual(shown["policy"]["key_props"]["reuse_key"], True)
        self.assertEqual(shown["policy"]["lifetime_actions"],
                         [{"action": {"action_type": "AutoRenew"},
                           "trigger": {"days_before_expiry": 90}}])
        version = shown["id"].rsplit("/", 1)[1]

        # download: PEM and DER, both the certificate the API returned, and openssl reads them.
        pem_path = self.path("cli-cert.pem")
        self.ok("certificate", "download", *DEV, "--name", "cli-cert", "--file", pem_path)
        der_path = self.path("cli-cert.der")
        self.ok("certificate", "download", *DEV, "--name", "cli-cert", "--file", der_path,
                "--encoding", "DER")
        with open(der_path, "rb") as f:
            der = f.read()
        self.assertEqual(der, base64.b64decode(shown["cer"]))
        text = openssl("x509", "-in", pem_path, "-noout", "-subject", "-ext", "subjectAltName").decode()
        self.assertIn("CN = cli.example", text)
        self.assertIn("DNS:www.cli.example", text)
        self.assertEqual(openssl("x509", "-in", der_path, "-inform", "DER", "-outform", "DER"), der)
        # The certificate is self-signed: openssl verifies it against itself.
        openssl("verify", "-CAfile", pem_path, "-x509_strict", "-purpose", "sslserver", pem_path)
        self.assertEqual(base64.urlsafe_b64decode(shown["x5t"] + "=="), hashlib.sha1(der).digest())

        # The secret holds a PFX without a password that openssl opens.
        secret = self.ok("secret", "show", *DEV, "--name", "cli-cert")
        self.assertEqual(secret["contentType"], "application/x-pkcs12")
        self.assertTrue(secret["managed"])
        self.assertEqual(secret["kid"], f"https://dev.vault.localhost:{port}/keys/cli-cert/{version}")
        pfx = self.write("cli-cert.pfx", base64.b64decode(secret["value"]))
        out = openssl("pkcs12", "-in", pfx, "-passin", "pass:", "-nodes")
        self.assertIn(b"PRIVATE KEY", out)
        self.assertIn(b"CERTIFICATE", out)

        # reuse_key (az's default policy): a second version keeps the key.
        self.cert("create", *DEV, "--name", "cli-cert", "--policy", "@" + policy_file)
        versions = self.cert("list-versions", *DEV, "--name", "cli-cert")
        self.assertEqual(len(versions), 2)
        second = self.cert("show", *DEV, "--name", "cli-cert")
        key_of = lambda c: openssl("x509", "-inform", "DER", "-noout", "-pubkey",
                                   data=base64.b64decode(c["cer"]))
        self.assertEqual(key_of(second), key_of(shown))
        self.assertNotEqual(second["cer"], shown["cer"])
        self.assertIn(f"https://dev.vault.localhost:{port}/certificates/cli-cert",
                      [c["id"] for c in self.cert("list", *DEV)])

        # set-attributes: disable the old version; its secret version is disabled with it.
        updated = self.cert("set-attributes", *DEV, "--name", "cli-cert", "--version", version,
                            "--enabled", "false")
        self.assertFalse(updated["attributes"]["enabled"])
        self.fails("Forbidden", "secret", "show", *DEV, "--name", "cli-cert", "--version", version)

        # set-attributes --policy merges a change into the policy.
        self.cert("set-attributes", *DEV, "--name", "cli-cert", "--policy",
                  json.dumps({"x509CertificateProperties": {"validityInMonths": 6}}))
        self.assertEqual(self.cert("show", *DEV, "--name", "cli-cert")["policy"]["x509_props"]
                         ["validity_months"], 6)
        self.assertEqual(self.cert("pending", "show", *DEV, "--name", "cli-cert")["status"],
                         "completed")

        deleted = self.cert("delete", *DEV, "--name", "cli-cert")
        self.assertEqual(deleted["recoveryId"],
                         f"https://dev.vault.localhost:{port}/deletedcertificates/cli-cert")
        self.fails("SecretNotFound", "secret", "show", *DEV, "--name", "cli-cert")
        self.assertEqual([c["recoveryId"] for c in self.cert("list-deleted", *DEV)],
                         [deleted["recoveryId"]])
        self.cert("show-deleted", *DEV, "--name", "cli-cert")
        self.cert("recover", *DEV, "--name", "cli-cert")
        self.assertTrue(self.ok("secret", "show", *DEV, "--name", "cli-cert")["value"])
        self.cert("delete", *DEV, "--name", "cli-cert")
        self.assertIsNone(self.ok("certificate", "purge", *DEV, "--name", "cli-cert"))
        self.fails("CertificateNotFound", "certificate", "show-deleted", *DEV, "--name", "cli-cert")
        self.fails("KeyNotFound", "key", "show", *DEV, "--name", "cli-cert")

    def test_import_an_openssl_pfx_with_a_password_and_a_pem_bundle(self):
        key = self.path("k.pem")
        crt = self.path("c.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                "-days", "30", "-subj", "/O=Contoso/CN=imported.example")
        pfx = self.path("c.pfx")
        openssl("pkcs12", "-export", "-inkey", key, "-in", crt, "-out", pfx,
                "-passout", "pass:s3cret-pw")
        err = self.fails("BadParameter", "certificate", "import", *DEV, "--name", "imp-pfx",
                         "--file", pfx, "--password", "wrong-pw")
        self.assertNotIn("wrong-pw", err)
        imported = self.cert("import", *DEV, "--name", "imp-pfx", "--file", pfx,
                             "--password", "s3cret-pw")
        der = openssl("x509", "-in", crt, "-outform", "DER")
        self.assertEqual(base64.b64decode(imported["cer"]), der)
        self.assertEqual(imported["policy"]["issuer"]["name"], "Unknown")
        self.assertEqual(imported["policy"]["x509_props"]["subject"], "CN=imported.example, O=Contoso")

        bundle = self.path("bundle.pem")
        with open(bundle, "w") as f, open(crt) as c, open(key) as k:
            f.write(c.read() + k.read())  # the certificate first, the key after it
        pem = self.cert("import", *DEV, "--name", "imp-pem", "--file", bundle)
        self.assertEqual(base64.b64decode(pem["cer"]), der)
        secret = self.ok("secret", "show", *DEV, "--name", "imp-pem")
        self.assertEqual(secret["contentType"], "application/x-pem-file")
        self.assertLess(secret["value"].index("PRIVATE KEY"), secret["value"].index("CERTIFICATE"))
        self.assertNotIn("s3cret-pw", self.srv.logs())

    def test_backup_delete_purge_restore_gives_the_certificate_key_and_secret_back(self):
        policy = json.dumps({"issuer": {"name": "Self"},
                             "key_props": {"kty": "EC", "crv": "P-256", "reuse_key": False},
                             "x509_props": {"subject": "CN=saved.example",
                                            "validity_months": 3}})
        self.cert("create", *DEV, "--name", "saved", "--policy", policy, "--tags", "kept=yes")
        shown = self.cert("show", *DEV, "--name", "saved")
        secret = self.ok("secret", "show", *DEV, "--name", "saved")
        key = self.ok("key", "show", *DEV, "--name", "saved")
        blob = self.path("saved.backup")
        self.assertIsNone(self.cert("backup", *DEV, "--name", "saved", "--file", blob))
        self.assertGreater(os.path.getsize(blob), 0)
        # A restore is refused while the name exists, live or soft-deleted.
        self.fails("Conflict", "certificate", "restore", *DEV, "--file", blob)
        self.cert("delete", *DEV, "--name", "saved")
        self.fails("Conflict", "certificate", "restore", *DEV, "--file", blob)
        self.assertIsNone(self.cert("purge", *DEV, "--name", "saved"))
        self.nothing_named("saved")

        restored = self.cert("restore", *DEV, "--file", blob)
        self.assertEqual((restored["id"], restored["cer"]), (shown["id"], shown["cer"]))
        again = self.cert("show", *DEV, "--name", "saved")
        self.assertEqual((again["id"], again["cer"], again["x5t"]),
                         (shown["id"], shown["cer"], shown["x5t"]))
        self.assertEqual(again["tags"], {"kept": "yes"})
        self.assertEqual(again["policy"]["x509_props"], shown["policy"]["x509_props"])
        self.assertEqual(again["policy"]["issuer"], {"name": "Self"})
        back = self.ok("secret", "show", *DEV, "--name", "saved")
        self.assertTrue(back["managed"])
        self.assertEqual((back["id"], back["kid"], back["value"], back["contentType"]),
                         (secret["id"], secret["kid"], secret["value"], secret["contentType"]))
        self.assertEqual(self.ok("key", "show", *DEV, "--name", "saved")["key"], key["key"])
        self.fails("Conflict", "certificate", "restore", *DEV, "--file", blob)
        self.assertEqual(len(self.cert("list-versions", *DEV, "--name", "saved")), 1)


class PendingOperationTests(CertificateCliTestCase):
    """The Unknown issuer: a create answers an operation in progress with a CSR; an openssl CA
    signs it; `pending merge` makes the version."""

    def test_unknown_issuer_csr_signed_by_openssl_merged_shown_downloaded_in_the_secret(self):
        port = self.srv.port
        op = self.start_pending("csr-cert", unknown_policy("CN=csr.example", ["csr.example"]))
        # Only the version-to-be exists until the merge.
        self.only_pending("csr-cert")
        pending = self.cert("pending", "show", *DEV, "--name", "csr-cert")
        self.assertEqual(pending["status"], "inProgress")
        self.assertEqual(pending["issuer"], {"name": "Unknown"})
        self.assertEqual(pending["csr"], op["csr"])
        self.assertEqual(pending["target"],
                         f"https://dev.vault.localhost:{port}/certificates/csr-cert")

        ca = OpensslCa(self.srv.root, "Coffer CLI test CA")
        leaf = ca.sign_csr(pending["csr"], "csr-cert")
        text = openssl("x509", "-in", leaf, "-noout", "-subject", "-ext",
                       "subjectAltName").decode()
        self.assertIn("CN = csr.example", text)
        self.assertIn("DNS:csr.example", text)
        with open(leaf) as f:
            leaf_der = pem_certificates(f.read())[0]

        merged = self.cert("pending", "merge", *DEV, "--name", "csr-cert",
                           "--file", ca.chain(leaf, "chain.pem"), "--tags", "signer=openssl")
        self.assertEqual(base64.b64decode(merged["cer"]), leaf_der)
        self.assertRegex(merged["id"], r"^https://dev\.vault\.localhost:%d/certificates/"
                                       r"csr-cert/[0-9a-f]{32}$" % port)
        self.assertEqual(merged["tags"], {"signer": "openssl"})
        self.assertTrue(merged["attributes"]["enabled"])
        version = merged["id"].rsplit("/", 1)[1]
        done = self.cert("pending", "show", *DEV, "--name", "csr-cert")
        self.assertEqual((done["status"], done["csr"]), ("completed", op["csr"]))

        shown = self.cert("show", *DEV, "--name", "csr-cert")
        self.assertEqual((shown["id"], base64.b64decode(shown["cer"])), (merged["id"], leaf_der))
        self.assertEqual(shown["policy"]["issuer"], {"name": "Unknown"})
        downloaded = self.path("csr-cert.pem")
        self.cert("download", *DEV, "--name", "csr-cert", "--file", downloaded)
        with open(downloaded) as f:
            self.assertEqual(pem_certificates(f.read()), [leaf_der])
        openssl("verify", "-CAfile", ca.cert, downloaded)

        # The managed secret: a PFX with the key of the CSR and the chain merged, leaf first.
        secret = self.ok("secret", "show", *DEV, "--name", "csr-cert")
        self.assertTrue(secret["managed"])
        self.assertEqual(secret["contentType"], "application/x-pkcs12")
        self.assertEqual(secret["kid"],
                         f"https://dev.vault.localhost:{port}/keys/csr-cert/{version}")
        pfx = self.write("csr-cert.pfx", base64.b64decode(secret["value"]))
        certs = openssl("pkcs12", "-in", pfx, "-passin", "pass:", "-nokeys")
        self.assertEqual(pem_certificates(certs), [leaf_der, ca.der])
        key = openssl("pkcs12", "-in", pfx, "-passin", "pass:", "-nocerts", "-nodes")
        self.assertEqual(openssl("pkey", "-pubout", data=key), public_key_of_certificate(leaf))

        # Deleting the finished operation drops its record; the certificate stays.
        self.assertEqual(self.cert("pending", "delete", *DEV, "--name", "csr-cert")["status"],
                         "completed")
        err = self.fails("PendingCertificateNotFound", "certificate", "pending", "show", *DEV,
                         "--name", "csr-cert")
        self.assertIn("Pending certificate not found: csr-cert", err)
        self.assertEqual(self.cert("show", *DEV, "--name", "csr-cert")["cer"], shown["cer"])

    def test_a_certificate_for_another_key_is_refused_and_a_deleted_operation_is_gone(self):
        op = self.start_pending("csr-dropped",
                                unknown_policy("CN=dropped.example", ["dropped.example"]))
        ca = OpensslCa(self.srv.root, "Coffer CLI test CA 2")
        other = ca.leaf_for_another_key("/CN=dropped.example", "other-key")
        err = self.fails("BadParameter", "certificate", "pending", "merge", *DEV,
                         "--name", "csr-dropped", "--file", ca.chain(other, "other-chain.pem"))
        self.assertIn("public key", err)
        # The refused merge left the operation as it was, and made nothing.
        still = self.cert("pending", "show", *DEV, "--name", "csr-dropped")
        self.assertEqual((still["status"], still["csr"]), ("inProgress", op["csr"]))
        self.only_pending("csr-dropped")

        dropped = self.cert("pending", "delete", *DEV, "--name", "csr-dropped")
        self.assertEqual((dropped["status"], dropped["csr"]), ("inProgress", op["csr"]))
        # Which error it is: test_pending_show_after_a_delete_says_pending_certificate_not_found.
        self.fails_with_exit_1("certificate", "pending", "show", *DEV, "--name", "csr-dropped")
        # The operation and its key are gone: the certificate signed for its CSR merges nowhere.
        signed = ca.sign_csr(op["csr"], "csr-dropped")
        err = self.fails("PendingCertificateNotFound", "certificate", "pending", "merge", *DEV,
                         "--name", "csr-dropped", "--file", signed)
        self.assertIn("Pending certificate not found: csr-dropped", err)
        self.nothing_named("csr-dropped")

    def test_pending_show_after_a_delete_says_pending_certificate_not_found(self):
        self.start_pending("csr-gone", unknown_policy("CN=gone.example", ["gone.example"]))
        self.cert("pending", "delete", *DEV, "--name", "csr-gone")
        err = self.fails("PendingCertificateNotFound", "certificate", "pending", "show", *DEV,
                         "--name", "csr-gone")
        self.assertIn("Pending certificate not found: csr-gone", err)

    def test_create_with_the_unknown_issuer_returns_at_once(self):
        policy = self.write("unknown-policy.json", json.dumps({
            "issuerParameters": {"name": "Unknown"},
            "keyProperties": {"keyType": "EC", "curve": "P-256", "exportable": True,
                              "reuseKey": False},
            "lifetimeActions": [{"action": {"actionType": "EmailContacts"},
                                 "trigger": {"lifetimePercentage": 80}}],
            "secretProperties": {"contentType": "application/x-pem-file"},
            "x509CertificateProperties": {"subject": "CN=cli-pending.example",
                                          "subjectAlternativeNames": {
                                              "dnsNames": ["cli-pending.example"]},
                                          "validityInMonths": 12}}))
        try:
            op = self.cert("create", *DEV, "--name", "cli-pending", "--policy", "@" + policy)
        except subprocess.TimeoutExpired:
            self.fail("`certificate create` with the Unknown issuer was still waiting after "
                      "60 s (a bound, not a performance claim): it should return the operation "
                      "in progress at once, as az does")
        self.assertEqual((op["status"], op["issuer"]["name"]), ("inProgress", "Unknown"))
        csr = self.write("cli-pending.csr", base64.b64decode(op["csr"]))
        self.assertIn(b"CN = cli-pending.example",
                      openssl("req", "-inform", "DER", "-in", csr, "-noout", "-verify",
                              "-subject"))
        self.assertEqual(self.cert("pending", "show", *DEV, "--name", "cli-pending")["csr"],
                         op["csr"])
        self.only_pending("cli-pending")


class IssuerAndContactTests(CertificateCliTestCase):
    """`coffer ca show`, issuers (the Coffer provider signs with the installation CA) and
    contacts."""

    def coffer_policy(self, issuer, dns_name, months=12, key=None):
        return json.dumps({
            "issuerParameters": {"name": issuer},
            "keyProperties": key or {"keyType": "EC", "curve": "P-256", "exportable": True,
                                     "reuseKey": False},
            "secretProperties": {"contentType": "application/x-pem-file"},
            "x509CertificateProperties": {"subject": "CN=" + dns_name,
                                          "subjectAlternativeNames": {"dnsNames": [dns_name]},
                                          "validityInMonths": months}})

    def test_ca_show_and_a_coffer_issuer_signs_what_openssl_verifies(self):
        ca_pem = self.path("ca.pem")
        rc, out, err = self.srv.run_coffer("ca", "show", "--file", ca_pem)
        self.assertEqual((rc, out), (0, ""), err)
        with open(ca_pem) as f:
            ca_text = f.read()
        ca_der = pem_certificates(ca_text)
        self.assertEqual(len(ca_der), 1, ca_text)
        rc, out, err = self.srv.run_coffer("ca", "show")
        self.assertEqual((rc, out), (0, ca_text), err)
        # The authority host serves it without authentication.
        served = self.srv.request("GET", "/coffer/v1/ca", host="localhost", auth=False)
        self.assertEqual((served.status, served.body.decode()), (200, ca_text))
        text = openssl("x509", "-in", ca_pem, "-noout", "-subject", "-ext",
                       "basicConstraints").decode()
        self.assertRegex(text, r"CN = Coffer CA [0-9a-f]{8}")
        self.assertIn("CA:TRUE", text)
        # An existing file is not overwritten.
        self.write("taken.pem", "keep me")
        rc, out, err = self.srv.run_coffer("ca", "show", "--file", self.path("taken.pem"))
        self.assertEqual(rc, 1, err)
        self.assertIn("already exists", err)
        with open(self.path("taken.pem")) as f:
            self.assertEqual(f.read(), "keep me")

        issuer = self.cert("issuer", "create", *DEV, "--issuer-name", "corp",
                           "--provider-name", "Coffer", "--allowed-dns-suffixes", "corp.example",
                           "--max-validity-months", "12", "--account-id", "corp-account",
                           "--password", "corp-Pa55word-1")
        self.assertEqual(issuer["provider"], "Coffer")
        self.assertEqual(issuer["coffer"], {"allowed_dns_suffixes": ["corp.example"],
                                            "max_validity_months": 12})
        self.assertEqual(issuer["credentials"], {"account_id": "corp-account"})
        self.assertEqual(self.cert("issuer", "show", *DEV, "--issuer-name", "corp"), issuer)

        op = self.cert("create", *DEV, "--name", "web", "--policy",
                       self.coffer_policy("corp", "web.corp.example",
                                          key={"keyType": "RSA", "keySize": 2048}))
        self.assertEqual((op["status"], op["issuer"]["name"]), ("completed", "corp"))
        leaf = self.path("web.pem")
        self.cert("download", *DEV, "--name", "web", "--file", leaf)
        # Interop: openssl verifies the leaf, a TLS server's, with the CA `coffer ca show` wrote.
        self.assertEqual(openssl("verify", "-CAfile", ca_pem, "-x509_strict", "-purpose",
                                 "sslserver", leaf).decode().strip(), f"{leaf}: OK")
        text = openssl("x509", "-in", leaf, "-noout", "-subject", "-issuer", "-ext",
                       "subjectAltName").decode()
        self.assertIn("subject=CN = web.corp.example", text)
        self.assertIn("DNS:web.corp.example", text)
        self.assertRegex(text, r"issuer=O = Coffer, CN = Coffer CA [0-9a-f]{8}")
        with open(leaf) as f:
            leaf_der = pem_certificates(f.read())
        # The PEM secret: the key, then the leaf and the CA.
        secret = self.ok("secret", "show", *DEV, "--name", "web")
        self.assertEqual(secret["contentType"], "application/x-pem-file")
        self.assertTrue(secret["managed"])
        self.assertEqual(pem_certificates(secret["value"]), leaf_der + ca_der)
        self.assertLess(secret["value"].index("PRIVATE KEY"),
                        secret["value"].index("CERTIFICATE"))
        self.assertEqual(openssl("pkey", "-pubout", data=secret["value"].encode()),
                         public_key_of_certificate(leaf))
        secret_leaf = self.write("web-from-secret.pem", secret["value"])
        openssl("verify", "-CAfile", ca_pem, secret_leaf)
        self.assertNotIn("corp-Pa55word-1", self.srv.logs())

    def test_issuer_rules_disabled_issuers_other_providers_list_update_delete(self):
        rules = self.cert("issuer", "create", *DEV, "--issuer-name", "rules",
                          "--provider-name", "Coffer", "--allowed-dns-suffixes", "corp.example",
                          "--max-validity-months", "12")
        self.cert("create", *DEV, "--name", "in-rules",
                  "--policy", self.coffer_policy("rules", "a.corp.example"))
        first = self.cert("show", *DEV, "--name", "in-rules")

        # A name outside the suffixes, or a longer validity: 400 BadParameter, nothing written.
        err = self.fails("BadParameter", "certificate", "create", *DEV, "--name", "out-of-rules",
                         "--policy", self.coffer_policy("rules", "x.other.example"))
        self.assertIn("x.other.example", err)
        self.nothing_named("out-of-rules")
        self.fails_with_exit_1("certificate", "pending", "show", *DEV, "--name", "out-of-rules")
        err = self.fails("BadParameter", "certificate", "create", *DEV, "--name", "in-rules",
                         "--policy", self.coffer_policy("rules", "a.corp.example", months=24))
        self.assertIn("12 months", err)
        self.assertEqual(len(self.cert("list-versions", *DEV, "--name", "in-rules")), 1)
        again = self.cert("show", *DEV, "--name", "in-rules")
        self.assertEqual((again["id"], again["policy"]["x509_props"]["validity_months"]),
                         (first["id"], 12))

        # A disabled issuer refuses; update changes only what it names.
        disabled = self.cert("issuer", "update", *DEV, "--issuer-name", "rules",
                             "--disabled", "true")
        self.assertFalse(disabled["attributes"]["enabled"])
        self.assertEqual(disabled["coffer"], rules["coffer"])
        err = self.fails("BadParameter", "certificate", "create", *DEV, "--name", "while-off",
                         "--policy", self.coffer_policy("rules", "b.corp.example"))
        self.assertIn("disabled", err)
        self.fails("CertificateNotFound", "certificate", "show", *DEV, "--name", "while-off")

        # Another provider is kept, its password never shown, but Coffer cannot sign with it.
        digi = self.cert("issuer", "create", *DEV, "--issuer-name", "digi",
                         "--provider-name", "DigiCert", "--account-id", "digi-account",
                         "--password", "digi-Pa55word-2", "--organization-id", "org-7")
        for shown in (digi, self.cert("issuer", "show", *DEV, "--issuer-name", "digi")):
            self.assertEqual(shown["provider"], "DigiCert")
            self.assertEqual(shown["credentials"], {"account_id": "digi-account"})
            self.assertEqual(shown["org_details"], {"id": "org-7"})
            self.assertNotIn("digi-Pa55word-2", json.dumps(shown))
        err = self.fails("BadParameter", "certificate", "create", *DEV, "--name", "via-digi",
                         "--policy", self.coffer_policy("digi", "c.corp.example"))
        self.assertIn("DigiCert", err)
        self.fails("CertificateNotFound", "certificate", "show", *DEV, "--name", "via-digi")

        port = self.srv.port
        listed = {i["id"]: i for i in self.cert("issuer", "list", *DEV)}
        base = f"https://dev.vault.localhost:{port}/certificates/issuers/"
        self.assertEqual(listed.get(base + "rules", {}).get("provider"), "Coffer", listed)
        self.assertEqual(listed.get(base + "digi", {}).get("provider"), "DigiCert", listed)
        self.assertNotIn("digi-Pa55word-2", json.dumps(listed))

        self.assertEqual(self.cert("issuer", "delete", *DEV, "--issuer-name", "digi")["id"],
                         base + "digi")
        self.fails("IssuerNotFound", "certificate", "issuer", "show", *DEV,
                   "--issuer-name", "digi")
        self.assertNotIn(base + "digi", [i["id"] for i in self.cert("issuer", "list", *DEV)])
        self.cert("issuer", "delete", *DEV, "--issuer-name", "rules")
        err = self.fails("BadParameter", "certificate", "create", *DEV, "--name", "in-rules",
                         "--policy", self.coffer_policy("rules", "a.corp.example"))
        self.assertIn("not configured", err)
        self.assertNotIn("digi-Pa55word-2", self.srv.logs())

    def test_contacts_add_list_delete_until_there_are_none(self):
        self.fails("ContactsNotFound", "certificate", "contact", "list", *DEV)
        one = self.cert("contact", "add", *DEV, "--email", "alice@corp.example",
                        "--name", "Alice", "--phone", "555-0100")
        alice = {"email": "alice@corp.example", "name": "Alice", "phone": "555-0100"}
        self.assertEqual(one["contacts"], [alice])
        self.cert("contact", "add", *DEV, "--email", "bob@corp.example")
        bob = {"email": "bob@corp.example"}
        listed = self.cert("contact", "list", *DEV)
        self.assertEqual(listed["contacts"], [alice, bob])
        self.assertEqual(listed["id"],
                         f"https://dev.vault.localhost:{self.srv.port}/certificates/contacts")
        self.fails("ContactNotFound", "certificate", "contact", "delete", *DEV,
                   "--email", "nobody@corp.example")
        self.assertEqual(self.cert("contact", "delete", *DEV, "--email", "alice@corp.example")
                         ["contacts"], [bob])
        self.assertEqual(self.cert("contact", "list", *DEV)["contacts"], [bob])
        self.cert("contact", "delete", *DEV, "--email", "bob@corp.example")
        self.fails("ContactsNotFound", "certificate", "contact", "list", *DEV)
        self.fails("ContactsNotFound", "certificate", "contact", "delete", *DEV,
                   "--email", "bob@corp.example")


class CaImportTests(CertificateCliTestCase):
    """`coffer ca import`: a CA of the company's (an intermediate under its root) becomes the
    installation's issuing CA; a server of its own, since the CA is the installation's."""

    def test_an_imported_intermediate_signs_and_chains_to_the_companys_root(self):
        d = tempfile.mkdtemp(prefix="corp-ca-", dir=self.srv.root)
        root_key, root = os.path.join(d, "root.key"), os.path.join(d, "root.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", root_key, "-out", root, "-days", "30", "-subj", "/CN=Corp Root",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        int_key, int_csr = os.path.join(d, "int.key"), os.path.join(d, "int.csr")
        intermediate = os.path.join(d, "int.pem")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", int_key, "-out", int_csr, "-subj", "/CN=Corp Issuing CA")
        ext = self.write("int.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                    "keyUsage=critical,keyCertSign,cRLSign\n")
        openssl("x509", "-req", "-in", int_csr, "-CA", root, "-CAkey", root_key, "-set_serial",
                "7", "-days", "20", "-extfile", ext, "-out", intermediate)
        texts = {}
        for name, path in (("int_key", int_key), ("int", intermediate), ("root", root)):
            with open(path) as f:
                texts[name] = f.read()
        before = self.srv.run_coffer("ca", "show")[1]

        # What is not a CA with its own key is refused, and the CA stays.
        mismatched = self.write("mismatched.pem", texts["int_key"] + texts["root"])
        for bad in (self.write("junk.pem", "not a pem file"), mismatched):
            rc, out, err = self.srv.run_coffer("ca", "import", "--file", bad)
            self.assertEqual(rc, 1, f"{out}\n{err}")
            self.assertIn("BadParameter", err)
        self.assertEqual(self.srv.run_coffer("ca", "show")[1], before)

        bundle = self.write("corp-bundle.pem", texts["root"] + texts["int_key"] + texts["int"])
        rc, out, err = self.srv.run_coffer("ca", "import", "--file", bundle)
        self.assertEqual(rc, 0, err)
        self.assertEqual(pem_certificates(out),
                         pem_certificates(texts["int"]) + pem_certificates(texts["root"]))
        self.assertEqual(self.srv.run_coffer("ca", "show")[1], out)
        self.assertNotIn("PRIVATE KEY", out)

        self.cert("issuer", "create", *DEV, "--issuer-name", "corp", "--provider-name", "Coffer")
        policy = json.dumps({"issuerParameters": {"name": "corp"},
                             "keyProperties": {"keyType": "EC", "curve": "P-256"},
                             "secretProperties": {"contentType": "application/x-pem-file"},
                             "x509CertificateProperties": {
                                 "subject": "CN=app.corp.example",
                                 "subjectAlternativeNames": {"dnsNames": ["app.corp.example"]},
                                 "validityInMonths": 1}})
        self.cert("create", *DEV, "--name", "app", "--policy", policy)
        leaf = self.path("app.pem")
        self.cert("download", *DEV, "--name", "app", "--file", leaf)
        # Interop: openssl trusts only the company's root; the intermediate is given as
        # untrusted, as a TLS peer would send it.
        self.assertEqual(openssl("verify", "-CAfile", root, "-untrusted", intermediate,
                                 "-purpose", "sslserver", leaf).decode().strip(),
                         f"{leaf}: OK")
        secret = self.ok("secret", "show", *DEV, "--name", "app")
        with open(leaf) as f:
            self.assertEqual(pem_certificates(secret["value"]),
                             pem_certificates(f.read()) + pem_certificates(texts["int"]) +
                             pem_certificates(texts["root"]))
        # The imported key never shows in the logs.
        key_body = "".join(texts["int_key"].splitlines()[1:-1])
        self.assertNotIn(key_body[-40:], self.srv.logs())


class CertificateBadInputTests(CertificateCliTestCase):

    def test_bad_policies_files_and_arguments(self):
        self.usage_error("certificate", "create", *DEV, "--name", "bad")
        self.usage_error("certificate", "create", *DEV, "--name", "bad", "--policy", "[1, 2]")
        self.usage_error("certificate", "create", *DEV, "--name", "bad", "--policy",
                         "@" + self.path("no-such-file.json"))
        self.fails("BadParameter", "certificate", "create", *DEV, "--name", "bad", "--policy",
                   json.dumps({"keyProperties": {"keyType": "RSA", "keySize": 1024},
                               "x509CertificateProperties": {"subject": "CN=bad"}}))
        self.fails("BadParameter", "certificate", "create", *DEV, "--name", "bad", "--policy",
                   json.dumps({"x509_props": {"subject": "CN=bad", "sans": {"dns_names": ["a b"]}},
                               "issuer": {"name": "Self"}}))
        garbage = self.write("garbage.pfx", os.urandom(600))
        self.fails("BadParameter", "certificate", "import", *DEV, "--name", "bad", "--file", garbage)
        self.usage_error("certificate", "download", *DEV, "--name", "bad", "--file",
                         self.path("x.pem"), "--encoding", "PKCS7")
        self.fails("CertificateNotFound", "certificate", "show", *DEV, "--name", "bad")
        # A plain secret's name cannot become a certificate's.
        self.ok("secret", "set", *DEV, "--name", "taken", "--value", "v")
        self.fails("Conflict", "certificate", "create", *DEV, "--name", "taken", "--policy",
                   json.dumps({"x509_props": {"subject": "CN=taken"}}))

    def test_merge_of_files_that_hold_no_certificate_and_reserved_issuer_names(self):
        op = self.start_pending("bad-merge", unknown_policy("CN=bad-merge.example",
                                                            ["bad-merge.example"]))
        # Not PEM: the CLI sends the bytes as one DER certificate, which the server refuses.
        text = self.write("not-a-certificate.txt", "hello, I am no certificate\n")
        err = self.fails("BadParameter", "certificate", "pending", "merge", *DEV,
                         "--name", "bad-merge", "--file", text)
        self.assertIn("not a DER X.509 certificate", err)
        # PEM whose CERTIFICATE block does not parse, or no file: usage errors of the CLI.
        broken = self.write("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                          "-----END CERTIFICATE-----\n")
        self.assertIn("--file", self.usage_error("certificate", "pending", "merge", *DEV,
                                                 "--name", "bad-merge", "--file", broken))
        self.usage_error("certificate", "pending", "merge", *DEV, "--name", "bad-merge",
                         "--file", self.path("no-such-file.pem"))
        self.usage_error("certificate", "pending", "merge", *DEV, "--name", "bad-merge")
        self.only_pending("bad-merge")
        self.assertEqual(self.cert("pending", "show", *DEV, "--name", "bad-merge")["status"],
                         "inProgress")
        # The operation still merges: one DER certificate, the version disabled.
        ca = OpensslCa(self.srv.root, "Coffer CLI test CA 3")
        leaf = ca.sign_csr(op["csr"], "bad-merge")
        der = self.write("bad-merge.der", openssl("x509", "-in", leaf, "-outform", "DER"))
        merged = self.cert("pending", "merge", *DEV, "--name", "bad-merge", "--file", der,
                           "--disabled", "true")
        self.assertFalse(merged["attributes"]["enabled"])
        with open(der, "rb") as f:
            self.assertEqual(base64.b64decode(merged["cer"]), f.read())

        for reserved in ("Self", "unknown"):
            err = self.fails("BadParameter", "certificate", "issuer", "create", *DEV,
                             "--issuer-name", reserved, "--provider-name", "Coffer")
            self.assertIn("reserved", err)
        self.assertEqual(self.cert("issuer", "list", *DEV), [])
        # The rules of the Coffer provider belong to no other.
        self.fails("BadParameter", "certificate", "issuer", "create", *DEV, "--issuer-name", "x",
                   "--provider-name", "DigiCert", "--max-validity-months", "3")
        self.usage_error("certificate", "issuer", "create", *DEV, "--issuer-name", "x",
                         "--provider-name", "Coffer", "--max-validity-months", "twelve")
        self.assertEqual(self.cert("issuer", "list", *DEV), [])
