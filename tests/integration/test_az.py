"""Debian's azure-cli (2.45, with MSAL for Python 1.21), unmodified, against a dev server.

The cloud comes from `coffer cloud az-config`; az registers it, logs in with the dev
administrator's service principal, and then runs the commands as users type them. az keeps its
state in a temporary AZURE_CONFIG_DIR (telemetry off) and trusts the server's CA through
REQUESTS_CA_BUNDLE. Nothing reaches beyond loopback: MSAL sees an ADFS authority
(`<authority>/adfs`), for which it makes no instance-discovery call to login.microsoftonline.com.

`az keyvault secret ...` and `az role ...` cannot run on Debian 12 against any server: az 2.45
imports the track-1 `azure.keyvault.v7_0`, which Debian's python3-azure does not ship, and reads
`.config` of the track-1 authorization client, where python3-azure has azure-mgmt-authorization
3.0.0 (docs/compatibility.md). Secrets are read and written with `az rest`, which is what a user
of that package does; AzDebianLimitTests shows both failures.

az takes a second or two to start, so each test runs a handful of commands.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import ServerTestCase, coffer_binary

AZ = "/usr/bin/az"
RG = "rg-az"


class AzTestCase(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(AZ):
            raise AssertionError(f"{AZ} is missing: scripts/setup.sh installs Debian's azure-cli")
        super().setUpClass()
        cls.config_dir = tempfile.mkdtemp(prefix="coffer-az-")
        cls.addClassCleanup(shutil.rmtree, cls.config_dir, True)
        cloud = cls.coffer_json("cloud", "az-config")
        path = os.path.join(cls.config_dir, "coffer-cloud.json")
        with open(path, "w") as f:
            json.dump(cloud, f)
        cls.az("config", "set", "core.collect_telemetry=false", "--only-show-errors")
        cls.az("cloud", "register", "--name", "Coffer", "--cloud-config", "@" + path)
        cls.az("cloud", "set", "--name", "Coffer")
        env = cls.srv.env
        # "--password=": a secret may begin with '-', which az would take for an option.
        cls.login = cls.az("login", "--service-principal", "-u", env["AZURE_CLIENT_ID"],
                           "--password=" + env["AZURE_CLIENT_SECRET"], "--tenant",
                           env["COFFER_TENANT_ID"])
        # Two more principals, so that a lookup that took the first one listed would pick the
        # wrong one.
        cls.first = cls.coffer_json("ad", "sp", "create-for-rbac", "--name", "az-first")
        cls.second = cls.coffer_json("ad", "sp", "create-for-rbac", "--name", "az-second")
        cls.second_oid = cls.coffer_json("ad", "sp", "show", "--id", cls.second["appId"])["id"]

    @classmethod
    def run_az(cls, *args):
        env = {"PATH": "/usr/bin:/bin", "HOME": cls.config_dir, "AZURE_CONFIG_DIR": cls.config_dir,
               "REQUESTS_CA_BUNDLE": cls.srv.ca_path, "AZURE_CORE_COLLECT_TELEMETRY": "false",
               "AZURE_CORE_NO_COLOR": "true", "LANG": "C.UTF-8"}
        p = subprocess.run([AZ] + [str(a) for a in args], env=env, capture_output=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    @classmethod
    def az(cls, *args):
        """Runs `az <args> -o json`, which must succeed; returns its JSON output (or None)."""
        rc, out, err = cls.run_az(*args, "-o", "json")
        if rc != 0:
            raise AssertionError(f"az {' '.join(map(str, args))} exited with {rc}\n"
                                 f"stdout: {out}\nstderr: {err}")
        return json.loads(out) if out.strip() else None

    def vault_url(self, name):
        return f"https://{name}.vault.localhost:{self.srv.port}"


class AzLoginTests(AzTestCase):

    def test_the_cloud_names_the_servers_endpoints(self):
        cloud = self.az("cloud", "show", "--name", "Coffer")
        authority = self.srv.authority_host
        self.assertEqual(cloud["endpoints"]["activeDirectory"], authority + "/adfs")
        self.assertEqual(cloud["endpoints"]["resourceManager"], authority)
        self.assertEqual(cloud["suffixes"]["keyvaultDns"], f".vault.localhost:{self.srv.port}")

    def test_login_lists_the_one_subscription(self):
        self.assertEqual([(s["id"], s["tenantId"], s["state"]) for s in self.login],
                         [(self.srv.subscription, self.srv.tenant, "Enabled")])
        account = self.az("account", "show")
        self.assertEqual(account["user"], {"name": self.srv.env["AZURE_CLIENT_ID"],
                                           "type": "servicePrincipal"})

    def test_a_principal_with_no_role_sees_no_subscription(self):
        other = tempfile.mkdtemp(prefix="coffer-az-other-", dir=self.config_dir)
        shutil.copy(os.path.join(self.config_dir, "config"), other)
        shutil.copy(os.path.join(self.config_dir, "clouds.config"), other)
        env = {"PATH": "/usr/bin:/bin", "HOME": other, "AZURE_CONFIG_DIR": other,
               "REQUESTS_CA_BUNDLE": self.srv.ca_path}
        p = subprocess.run([AZ, "login", "--service-principal", "-u", self.first["appId"],
                            "--password=" + self.first["password"], "--tenant", self.srv.tenant],
                           env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("No subscriptions found", p.stderr.decode())


class AzUserLoginTests(AzTestCase):
    """A person signs in with `az login --use-device-code` and az then acts as them."""

    def test_device_code_login_lists_the_subscription_and_names_the_user(self):
        import re
        import urllib.parse
        password = "Az-Device-Pass-3"
        user = self.coffer_json("ad", "user", "create", "--display-name", "Ada Az",
                                "--user-principal-name", "ada.az@coffer.test",
                                "--password", password)
        self.coffer_json("role", "assignment", "create", "--assignee", user["id"], "--role",
                         "Reader", "--scope", f"/subscriptions/{self.srv.subscription}")
        other = tempfile.mkdtemp(prefix="coffer-az-user-", dir=self.config_dir)
        shutil.copy(os.path.join(self.config_dir, "config"), other)
        shutil.copy(os.path.join(self.config_dir, "clouds.config"), other)
        env = {"PATH": "/usr/bin:/bin", "HOME": other, "AZURE_CONFIG_DIR": other,
               "REQUESTS_CA_BUNDLE": self.srv.ca_path, "AZURE_CORE_COLLECT_TELEMETRY": "false",
               "LANG": "C.UTF-8"}
        p = subprocess.Popen([AZ, "login", "--use-device-code", "-o", "json"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            seen = ""
            for _ in range(50):
                line = p.stderr.readline().decode()
                seen += line
                m = re.search(r"open the page (\S+) and enter the code (\S+) ", line)
                if m or not line:
                    break
            self.assertIsNotNone(m, seen)
            self.assertEqual(m.group(1), self.srv.authority_host + "/devicelogin")
            r = self.srv.request("POST", "/devicelogin", urllib.parse.urlencode(
                {"code": m.group(2), "login": "ada.az@coffer.test", "passwd": password,
                 "action": "continue"}),
                headers={"Content-Type": "application/x-www-form-urlencoded"}, host="localhost",
                auth=False)
            self.assertEqual(r.status, 200, r)
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err.decode())
        login = json.loads(out)
        self.assertEqual([(s["id"], s["tenantId"]) for s in login],
                         [(self.srv.subscription, self.srv.tenant)])
        self.assertEqual(login[0]["user"], {"name": "ada.az@coffer.test", "type": "user"})
        me = subprocess.run([AZ, "ad", "signed-in-user", "show", "-o", "json"], env=env,
                            capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        self.assertEqual(me.returncode, 0, me.stderr.decode())
        self.assertEqual(json.loads(me.stdout)["id"], user["id"])


class AzKeyVaultTests(AzTestCase):

    def test_vault_lifecycle_and_access_policy(self):
        # No --location: az reads the resource group's.
        kv = self.az("keyvault", "create", "-n", "azkv", "-g", RG, "--retention-days", "7",
                     "--enable-rbac-authorization", "false")
        self.assertEqual(kv["properties"]["vaultUri"].rstrip("/"), self.vault_url("azkv"))
        self.assertEqual(kv["properties"]["tenantId"], self.srv.tenant)
        admin_oid = self.coffer_json("ad", "sp", "show", "--id",
                                     self.srv.env["AZURE_CLIENT_ID"])["id"]
        # az gave its caller every permission, looked up through Graph.
        self.assertEqual([p["objectId"] for p in kv["properties"]["accessPolicies"]], [admin_oid])
        self.assertEqual(self.az("keyvault", "show", "-n", "azkv")["name"], "azkv")
        self.assertIn("azkv", [v["name"] for v in self.az("keyvault", "list")])

        # --spn names the second principal, found by its client id among several.
        kv = self.az("keyvault", "set-policy", "-n", "azkv", "--spn", self.second["appId"],
                     "--secret-permissions", "get", "list")
        entry = [p for p in kv["properties"]["accessPolicies"] if p["objectId"] != admin_oid]
        self.assertEqual([(p["objectId"], sorted(p["permissions"]["secrets"])) for p in entry],
                         [(self.second_oid, ["get", "list"])])

        # Secrets through az rest (az keyvault secret cannot run on Debian 12).
        resource = f"https://vault.localhost:{self.srv.port}"
        url = self.vault_url("azkv") + "/secrets/db-password?api-version=7.4"
        put = self.az("rest", "--method", "put", "--url", url, "--resource", resource,
                      "--body", json.dumps({"value": "s3cret-from-az"}))
        self.assertEqual(put["value"], "s3cret-from-az")
        got = self.az("rest", "--method", "get", "--url", url, "--resource", resource)
        self.assertEqual(got["id"], put["id"])

        self.az("keyvault", "delete", "-n", "azkv")
        self.assertIn("azkv", [v["name"] for v in self.az("keyvault", "list-deleted")])
        self.assertNotIn("azkv", [v["name"] for v in self.az("keyvault", "list")])
        self.az("keyvault", "recover", "-n", "azkv")
        self.assertEqual(self.az("rest", "--method", "get", "--url", url, "--resource",
                                 resource)["value"], "s3cret-from-az")
        self.az("keyvault", "delete", "-n", "azkv")
        self.az("keyvault", "purge", "-n", "azkv")
        self.assertNotIn("azkv", [v["name"] for v in self.az("keyvault", "list-deleted")])


class AzIdentityTests(AzTestCase):

    def test_identity_create_and_show(self):
        made = self.az("identity", "create", "-n", "az-app", "-g", RG)
        shown = self.az("identity", "show", "-n", "az-app", "-g", RG)
        self.assertEqual((shown["principalId"], shown["clientId"], shown["tenantId"]),
                         (made["principalId"], made["clientId"], self.srv.tenant))


class AzDebianLimitTests(AzTestCase):
    """Commands Debian 12's az cannot run against any server, for reasons in the client
    (docs/compatibility.md). If a Debian update fixes them, this fails, and they join the tests
    above."""

    def test_secret_and_role_commands_fail_in_the_client(self):
        for args, why in (
                # az 2.45 imports the track-1 SDK, which python3-azure does not ship.
                (("keyvault", "secret", "list", "--vault-name", "dev"),
                 "No module named 'azure.keyvault.v7_0'"),
                # az 2.45 reads `.config` of the track-1 authorization client; python3-azure's
                # azure-mgmt-authorization 3.0.0 has none.
                (("role", "definition", "list", "--name", "Reader"),
                 "object has no attribute 'config'")):
            with self.subTest(args=args):
                rc, out, err = self.run_az(*args)
                self.assertNotEqual(rc, 0, out)
                self.assertIn(why, err)


class CofferCloudConfigTests(unittest.TestCase):
    """`coffer cloud az-config` for configured public names, without a server."""

    def cloud(self, *args, env=None):
        full = {"PATH": "/usr/bin:/bin"}
        full.update(env or {})
        p = subprocess.run([coffer_binary(), "cloud", "az-config"] + list(args), env=full,
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_the_names_come_from_flags_or_dev_env(self):
        rc, out, err = self.cloud("--authority-host", "coffer.corp.example",
                                  "--dns-suffix", "vault.corp.example")
        self.assertEqual(rc, 0, err)
        cloud = json.loads(out)
        self.assertEqual(cloud["endpoints"]["activeDirectory"], "https://coffer.corp.example/adfs")
        self.assertEqual(cloud["endpoints"]["microsoftGraphResourceId"],
                         "https://coffer.corp.example")
        self.assertEqual(cloud["suffixes"]["keyvaultDns"], ".vault.corp.example")
        rc, out, err = self.cloud(env={"AZURE_AUTHORITY_HOST": "https://coffer.test:8443",
                                       "COFFER_VAULT_DNS_SUFFIX": "vault.coffer.test"})
        self.assertEqual(rc, 0, err)
        cloud = json.loads(out)
        self.assertEqual(cloud["endpoints"]["resourceManager"], "https://coffer.test:8443")
        self.assertEqual(cloud["suffixes"]["keyvaultDns"], ".vault.coffer.test:8443")

    def test_a_bad_or_missing_name_is_a_usage_error(self):
        rc, out, err = self.cloud()
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("AZURE_AUTHORITY_HOST", err)
        rc, out, err = self.cloud("--authority-host", "https://x/")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("--authority-host", err)


if __name__ == "__main__":
    unittest.main()
