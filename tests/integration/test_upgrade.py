"""Upgrading a data directory: a release opens what an earlier release wrote and serves it
unchanged.

fixtures/schema7/ was written by the release with storage schema 7 (vault settings kept as ARM
properties JSON): coffer.db and master.key as that server left them after a clean stop, and
expected.json, what its API answered for the objects in it. The objects: an access-policy vault
with a premium SKU, 7-day retention, purge protection, tags and two access policies (one a
compound identity, permission names in mixed case, an empty and an absent list); an RBAC vault; a
secret with two versions (content type, tags, expiry, non-ASCII value); a soft-deleted secret; a
user-assigned identity with tags and a federated credential; a web app with a system- and a
user-assigned identity, whose system identity holds Key Vault Secrets User on the RBAC vault.
"""

import json
import os
import re
import shutil
import sqlite3
import unittest
import urllib.parse

from harness import CofferServer, jwt_parts

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "schema7")


def without_ports(value):
    """The same JSON with every localhost port removed (the fixture's server had another)."""
    return json.loads(re.sub(r"(localhost):\d+", r"\1", json.dumps(value)))


class UpgradeFromSchema7Tests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = CofferServer()
        cls.addClassCleanup(cls.srv.cleanup)
        os.makedirs(cls.srv.data_dir, mode=0o700)
        for name in ("coffer.db", "master.key"):
            path = os.path.join(cls.srv.data_dir, name)
            shutil.copyfile(os.path.join(FIXTURE, name), path)
            os.chmod(path, 0o600)
        cls.srv.start()
        with open(os.path.join(FIXTURE, "expected.json"), encoding="utf-8") as f:
            cls.expected = without_ports(json.load(f))
        cls.sub = f"/subscriptions/{cls.srv.subscription}"

    def arm(self, path, api="2023-07-01"):
        r = self.srv.arm_raw("GET", f"{self.sub}{path}?api-version={api}")
        self.assertEqual(r.status, 200, r)
        return without_ports(r.json())

    def kv(self, vault, path, method="GET", token=None):
        r = self.srv.kv(method, path, vault=vault, token=token)
        self.assertEqual(r.status, 200, r)
        return without_ports(r.json())

    def test_the_database_is_migrated_to_typed_vault_settings(self):
        db = sqlite3.connect(f"file:{os.path.join(self.srv.data_dir, 'coffer.db')}?mode=ro",
                             uri=True)
        try:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 12)
            self.assertEqual(db.execute("SELECT count(*) FROM users").fetchone()[0], 0)
            self.assertEqual(db.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0],
                             0)
            columns = [row[1] for row in db.execute("PRAGMA table_info(vaults)")]
            self.assertNotIn("properties_json", columns)
            self.assertEqual(db.execute("SELECT count(*) FROM vault_access_policies "
                                        "WHERE vault_key = 'fixap'").fetchone()[0], 2)
            # The release's secrets are secrets in the object tables that keys share.
            self.assertGreater(db.execute("SELECT count(*) FROM secrets").fetchone()[0], 0)
            self.assertEqual(db.execute("SELECT DISTINCT kind FROM secrets").fetchall(),
                             [("Secret",)])
            self.assertEqual(db.execute("SELECT DISTINCT kind FROM secret_versions").fetchall(),
                             [("Secret",)])
        finally:
            db.close()

    def test_vaults_keep_their_settings_and_access_policies(self):
        for name, want in self.expected["vaults"].items():
            with self.subTest(vault=name):
                got = self.arm(f"/resourceGroups/rg-fix/providers/Microsoft.KeyVault/vaults/{name}")
                self.assertEqual(got, want)

    def test_secrets_versions_and_deleted_secrets_read_as_before(self):
        self.assertEqual(self.kv("fixap", "/secrets/db-password"), self.expected["secret"])
        self.assertEqual(self.kv("fixap", "/secrets/db-password/versions"),
                         self.expected["versions"])
        self.assertEqual(self.kv("fixap", "/deletedsecrets/gone"), self.expected["deleted"])
        self.assertEqual(self.kv("dev", "/secrets/dev-secret"), self.expected["dev_secret"])
        recovered = self.srv.kv("POST", "/deletedsecrets/gone/recover", vault="fixap")
        self.assertEqual(recovered.status, 200, recovered)
        self.assertEqual(self.kv("fixap", "/secrets/gone")["value"], "deleted-value")

    def test_the_access_policies_still_decide(self):
        # The administrator's entry grants secrets/get; writing to an RBAC vault needs a role
        # it holds at the subscription.
        self.assertEqual(self.kv("fixap", "/secrets/db-password")["value"], "second väluе ✓")
        self.assertEqual(self.kv("fixrbac", "/secrets/app-key")["value"], "rbac-value")

    def test_identities_workloads_and_role_assignments_work_as_before(self):
        ident = self.expected["identity"]
        self.assertEqual(self.arm("/resourceGroups/rg-fix/providers/Microsoft.ManagedIdentity/"
                                  "userAssignedIdentities/fix-id", api="2023-01-31"), ident)
        fics = self.arm("/resourceGroups/rg-fix/providers/Microsoft.ManagedIdentity/"
                        "userAssignedIdentities/fix-id/federatedIdentityCredentials",
                        api="2023-01-31")
        self.assertEqual([f["name"] for f in fics["value"]], ["kube"])
        site = self.expected["site"]
        self.assertEqual(self.arm("/resourceGroups/rg-fix/providers/Microsoft.Web/sites/fix-app",
                                  api="2023-12-01"), site)
        r = self.srv.arm_raw("POST", f"{self.sub}/resourceGroups/rg-fix/providers/Microsoft.Web/"
                                     "sites/fix-app/listIdentityEndpoint?api-version=2023-12-01")
        self.assertEqual(r.status, 200, r)
        q = urllib.parse.urlencode({"api-version": "2019-08-01",
                                    "resource": self.srv.vault_resource})
        t = self.srv.request("GET", "/msi/token?" + q, host="localhost", auth=False,
                             headers={"X-IDENTITY-HEADER": r.json()["identityHeader"]})
        self.assertEqual(t.status, 200, t)
        token = t.json()["access_token"]
        self.assertEqual(jwt_parts(token)[1]["oid"], site["identity"]["principalId"])
        self.assertEqual(self.kv("fixrbac", "/secrets/app-key", token=token)["value"],
                         "rbac-value")
        denied = self.srv.kv("GET", "/secrets/db-password", vault="fixap", token=token)
        self.assertEqual(denied.status, 403, denied)


if __name__ == "__main__":
    unittest.main()
