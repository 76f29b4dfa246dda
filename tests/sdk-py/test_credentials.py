"""Credentials of azure-identity (Debian's python3-azure) against Coffer's token service, each
then reading a secret with azure-keyvault-secrets: CertificateCredential (client assertion signed
with a registered certificate), ClientSecretCredential, and DefaultAzureCredential() with no
argument, from dev.env's variables alone (AZURE_TENANT_ID=adfs: no instance discovery)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.keyvault.secrets import SecretClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)

SERVER = None


def setUpModule():
    global SERVER
    SERVER = harness.launch_server()


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


def coffer(*args):
    env = dict(os.environ)
    env.update(SERVER.env)
    env["COFFER_CA_FILE"] = SERVER.ca_path
    return subprocess.run([harness.coffer_binary()] + list(args), env=env, check=True,
                          capture_output=True, stdin=subprocess.DEVNULL).stdout.decode()


class CertificateCredentialTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cert_path = os.path.join(SERVER.root, "admin-cert.pem")
        # A self-signed certificate for the dev administrator, next to its secret.
        coffer("ad", "sp", "credential", "reset", "--id", SERVER.env["AZURE_CLIENT_ID"],
               "--create-cert", "--cert-file", cls.cert_path, "--append")
        setter = SecretClient(SERVER.vault_url, ClientSecretCredential(
            SERVER.env["AZURE_TENANT_ID"], SERVER.env["AZURE_CLIENT_ID"],
            SERVER.env["AZURE_CLIENT_SECRET"], authority=SERVER.authority_host,
            instance_discovery=False, connection_verify=SERVER.ca_path),
            connection_verify=SERVER.ca_path)
        setter.set_secret("via-certificate", "read-with-a-certificate")

    def credential(self, path):
        return CertificateCredential(
            SERVER.env["AZURE_TENANT_ID"], SERVER.env["AZURE_CLIENT_ID"], certificate_path=path,
            authority=SERVER.authority_host, instance_discovery=False,
            connection_verify=SERVER.ca_path)

    def test_certificate_credential_reads_a_secret(self):
        client = SecretClient(SERVER.vault_url, self.credential(self.cert_path),
                              connection_verify=SERVER.ca_path)
        self.assertEqual(client.get_secret("via-certificate").value, "read-with-a-certificate")

    def test_an_unregistered_certificate_is_refused(self):
        other = os.path.join(SERVER.root, "other.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        other + ".key", "-out", other + ".crt", "-days", "1", "-subj", "/CN=x"],
                       check=True, capture_output=True)
        with open(other, "wb") as f:
            f.write(open(other + ".key", "rb").read() + open(other + ".crt", "rb").read())
        with self.assertRaises(ClientAuthenticationError) as ctx:
            self.credential(other).get_token(SERVER.vault_url.replace("dev.", "", 1) + "/.default")
        self.assertIn("AADSTS700027", str(ctx.exception))
        self.assertIn("not registered", str(ctx.exception))


# Run in a fresh interpreter whose environment is dev.env and nothing else: the application code
# the README shows, with no argument to the credential or the client.
ENV_ONLY_APP = """
import json, os, sys
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
client = SecretClient(os.environ["COFFER_VAULT_URL"], DefaultAzureCredential())
client.set_secret("env-only", "read-with-no-setting-in-code")
token = DefaultAzureCredential().get_token(sys.argv[1]).token
print(json.dumps({"value": client.get_secret("env-only").value, "token": token}))
"""


class EnvironmentOnlyTests(unittest.TestCase):

    def test_default_credential_with_no_argument_reads_a_secret(self):
        self.assertEqual(SERVER.env["AZURE_TENANT_ID"], "adfs")
        with tempfile.TemporaryDirectory() as home:
            # Only dev.env: no az login, no managed identity, no proxy. An instance-discovery
            # call to login.microsoftonline.com fails here (no network beyond loopback).
            env = {"PATH": "/usr/bin:/bin", "HOME": home, "AZURE_CONFIG_DIR": home}
            env.update(SERVER.env)
            scope = SERVER.vault_url.replace("dev.", "", 1) + "/.default"
            run = subprocess.run(["/usr/bin/python3", "-c", ENV_ONLY_APP, scope], env=env,
                                 capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr.decode()[-3000:])
        out = json.loads(run.stdout)
        self.assertEqual(out["value"], "read-with-no-setting-in-code")
        # EnvironmentCredential answered: the token is the dev administrator's, for the tenant.
        claims = harness.jwt_parts(out["token"])[1]
        self.assertEqual(claims["appid"], SERVER.env["AZURE_CLIENT_ID"])
        self.assertEqual(claims["tid"], SERVER.env["COFFER_TENANT_ID"])


if __name__ == "__main__":
    unittest.main()
