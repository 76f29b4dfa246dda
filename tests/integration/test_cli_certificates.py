"""`coffer keyvault certificate ...` against a real dev server: a certificate's life through the CLI,
az's default policy as the input of create, interop with the openssl command line (a downloaded
certificate parses, an openssl-made PFX imports, the secret's PFX opens with no password), and bad
input.

The CLI runs with the server's dev.env in its environment, as in test_cli. Exit codes: 0 success,
1 a request was refused (`ERROR: (<code>) <message>` on stderr), 2 usage errors.
"""

import base64
import hashlib
import json
import os
import subprocess

from test_cli import CliTestCase

DEV = ("--vault-name", "dev")


def openssl(*args, data=None):
    """Runs the openssl command line, which must succeed; returns its stdout."""
    p = subprocess.run(["openssl"] + [str(a) for a in args], input=data, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"openssl {args} exited {p.returncode}: {p.stderr.decode()}")
    return p.stdout


class CertificateCliTestCase(CliTestCase):

    def cert(self, *args):
        return self.ok("certificate", *args)

    def path(self, name):
        return os.path.join(self.srv.root, name)

    def write(self, name, data):
        with open(self.path(name), "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return self.path(name)


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
