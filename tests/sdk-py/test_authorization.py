"""Authorization as azure-keyvault-secrets (Debian's python3-azure) sees it: a service principal
gets HttpResponseError 403 exactly where Key Vault gives it, under Azure RBAC (inner code
ForbiddenByRbac) and under access policies (AccessDenied), and a grant made with `coffer role
assignment create` or `coffer keyvault set-policy` opens exactly what it names.
"""

import json
import os
import subprocess
import sys
import unittest

from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)

SERVER = None
RG = "rg-sdk-authz"


def setUpModule():
    global SERVER
    SERVER = harness.launch_server()


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


def coffer(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
    env.update(SERVER.env)
    env["COFFER_CA_FILE"] = SERVER.ca_path
    p = subprocess.run([harness.coffer_binary()] + list(args), env=env,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"coffer {' '.join(args)} exited with {p.returncode}:\n"
                             f"{p.stdout.decode()}\n{p.stderr.decode()}")
    out = p.stdout.decode()
    return json.loads(out) if out.strip().startswith(("{", "[")) else out


def vault_url(name):
    return SERVER.vault_url.replace("://dev.", f"://{name}.", 1)


class AuthorizationTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        sp = coffer("ad", "sp", "create-for-rbac", "--name", "py-authz")
        cls.app_id = sp["appId"]
        cls.credential = ClientSecretCredential(
            SERVER.env["AZURE_TENANT_ID"], sp["appId"], sp["password"],
            authority=SERVER.authority_host, instance_discovery=False,
            connection_verify=SERVER.ca_path)
        cls.sub = "/subscriptions/" + SERVER.env["COFFER_SUBSCRIPTION_ID"]

    @classmethod
    def tearDownClass(cls):
        cls.credential.close()

    def client(self, vault):
        client = SecretClient(vault_url(vault), self.credential, connection_verify=SERVER.ca_path)
        self.addCleanup(client.close)
        return client

    def assertForbidden(self, call, inner):
        with self.assertRaises(HttpResponseError) as ctx:
            call()
        self.assertEqual(ctx.exception.status_code, 403)
        self.assertEqual(ctx.exception.error.code, "Forbidden")
        self.assertIn(inner, ctx.exception.response.text())
        return ctx.exception

    def test_rbac_vault_opens_exactly_the_assigned_secret(self):
        coffer("keyvault", "create", "-n", "py-rbac", "-g", RG)
        for name in ("granted", "other"):
            coffer("keyvault", "secret", "set", "--vault-name", "py-rbac", "--name", name,
                   "--value", name + "-value")
        client = self.client("py-rbac")
        err = self.assertForbidden(lambda: client.get_secret("granted"), "ForbiddenByRbac")
        self.assertIn("Microsoft.KeyVault/vaults/secrets/getSecret/action", err.message)
        scope = f"{self.sub}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/py-rbac"
        coffer("role", "assignment", "create", "--assignee", self.app_id, "--role",
               "Key Vault Secrets User", "--scope", scope + "/secrets/granted")
        self.assertEqual(client.get_secret("granted").value, "granted-value")
        self.assertForbidden(lambda: client.get_secret("other"), "ForbiddenByRbac")
        self.assertForbidden(lambda: client.set_secret("granted", "changed"), "ForbiddenByRbac")
        self.assertForbidden(lambda: list(client.list_properties_of_secrets()), "ForbiddenByRbac")
        coffer("role", "assignment", "create", "--assignee", self.app_id, "--role",
               "Key Vault Secrets User", "--scope", scope)
        self.assertEqual(client.get_secret("other").value, "other-value")
        self.assertEqual(sorted(p.name for p in client.list_properties_of_secrets()),
                         ["granted", "other"])

    def test_access_policy_vault_follows_its_policies_not_role_assignments(self):
        coffer("keyvault", "create", "-n", "py-policies", "-g", RG,
               "--enable-rbac-authorization", "false")
        coffer("keyvault", "secret", "set", "--vault-name", "py-policies", "--name", "db",
               "--value", "db-value")
        client = self.client("py-policies")
        err = self.assertForbidden(lambda: client.get_secret("db"), "AccessDenied")
        self.assertIn("does not have secrets get permission", err.message)
        scope = f"{self.sub}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/py-policies"
        coffer("role", "assignment", "create", "--assignee", self.app_id, "--role",
               "Key Vault Secrets Officer", "--scope", scope)
        self.assertForbidden(lambda: client.get_secret("db"), "AccessDenied")
        oid = coffer("authz", "explain", "--assignee", self.app_id, "--vault", "py-policies",
                     "--action", "SecretGet", "--json")["principal"]["objectId"]
        coffer("keyvault", "set-policy", "--name", "py-policies", "--object-id", oid,
               "--secret-permissions", "get")
        self.assertEqual(client.get_secret("db").value, "db-value")
        self.assertForbidden(lambda: client.set_secret("db", "changed"), "AccessDenied")
        coffer("keyvault", "delete-policy", "--name", "py-policies", "--object-id", oid)
        self.assertForbidden(lambda: client.get_secret("db"), "AccessDenied")


if __name__ == "__main__":
    unittest.main()
