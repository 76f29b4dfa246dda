"""`coffer env`: environments declared once in a file (src/cli/env_file.h, env_plan.h,
env_check.h; docs/environments.md).

* Three environments (dev, staging, prod) built from one file by `apply`: an RBAC vault and a
  user-assigned identity per environment, a role assignment written once with ${env}, an
  access-policy vault and a service principal in prod only, secrets set from files with
  `--set` (contentType and an expiry maxAhead from the file).  After it, `plan` has no changes
  and `check` no findings; a second apply changes nothing.
* Broken in each of the ways the issue names -- a missing secret, a disabled one, an expired
  one, a value shared between environments, a cross-environment read grant and a grant made by
  hand -- `plan`, `check` and `diff` report exactly those, and `apply` repairs what it can (the
  two grants) and nothing else (it leaves the values to a person).  A deleted secret is
  recovered by apply.
* `diff` compares values by keyed hashes: equal and different values are told apart without
  any value in the output; `promote` copies a shareable secret as a new version tagged with its
  origin and refuses one that is not shareable.
* `check` follows SecretProviderClass manifests and @Microsoft.KeyVault references; apply takes
  a value from stdin (`--set NAME=-`).
* Bad input: malformed files and unknown keys (naming the line), a principal or role that does
  not resolve, a vault setting that cannot change (conflict): clear errors and nothing
  applied for that environment; a write the server refuses half-way stops apply, which reports
  exactly what it did before.
"""

import json
import os
import subprocess
import time
import unittest
import uuid

from harness import coffer_binary, launch_server
from test_audit import by_correlation, new_correlation, wait_for_records

SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
AUTHZ_API = "2022-04-01"
MI_API = "2023-01-31"
NOBODY = "11111111-2222-4333-8444-555555555555"

ENVS = """\
environments:
  - name: dev
  - name: staging
  - name: prod
    vaults:
      - name: envt-audit-prod
        resourceGroup: rg-envt-prod
        enableRbacAuthorization: false
        softDeleteRetentionInDays: 7
vaults:
  - name: envt-shop-${env}
    resourceGroup: rg-envt-${env}
    enableRbacAuthorization: true
    softDeleteRetentionInDays: 7
identities:
  - name: envt-shop-${env}
    resourceGroup: rg-envt-${env}
  - name: envt-ci-prod
    kind: servicePrincipal
    environments: [prod]
applications:
  - name: shop
    identity: envt-shop-${env}
    vault: envt-shop-${env}
    secrets:
      - name: db-password
        contentType: text/plain
        expiry: {required: true, maxAhead: 90d, minRemaining: 7d}
      - name: flags
        shareable: true
      - name: api-key
access:
  - vault: envt-shop-${env}
    principal: envt-shop-${env}
    role: Key Vault Secrets User
  - vault: envt-audit-prod
    principal: envt-ci-prod
    permissions: {secrets: [get, list]}
    environments: [prod]
"""

VALUES = {  # what each environment's secrets are set to
    ("dev", "db-password"): "ENVT-dev-db",
    ("staging", "db-password"): "ENVT-staging-db",
    ("prod", "db-password"): "ENVT-prod-db",
    ("dev", "api-key"): "ENVT-dev-key",
    ("staging", "api-key"): "ENVT-staging-key",
    ("prod", "api-key"): "ENVT-prod-key",
}
FLAGS = "ENVT-flags-everywhere"
# What check finds of the breakage that only a person can repair (values).
VALUE_FINDINGS = [
    ("MISSING", "staging", "shop: envt-shop-staging/api-key"),
    ("DISABLED", "dev", "shop: envt-shop-dev/api-key"),
    ("EXPIRED", "staging", "shop: envt-shop-staging/db-password"),
    ("SHARED-VALUE", "dev", "envt-shop-dev/db-password"),
    ("SHARED-VALUE", "prod", "envt-shop-prod/db-password"),
]


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def ok(resp, *statuses):
    if resp.status not in (statuses or (200,)):
        raise AssertionError(f"unexpected answer: {resp!r}")
    return resp.json() if resp.body else None


class EnvCase(unittest.TestCase):
    maxDiff = 8000

    def env(self, *args):
        """Runs `coffer env <args>`; returns (rc, stdout, stderr)."""
        return self.srv.run_coffer("env", *args, timeout=180)

    def env_json(self, *args, rc=None):
        code, out, err = self.env(*args, "--json")
        if rc is not None:
            self.assertEqual(code, rc, f"stdout: {out}\nstderr: {err}")
        self.assertNotIn("ENVT-", out + err, "a value in the output")
        return json.loads(out)

    def vault_names(self):
        r = self.srv.arm("GET", "/providers/Microsoft.KeyVault/vaults")
        return sorted(v["name"] for v in ok(r)["value"])

    def identity_names(self):
        r = self.srv.arm("GET", "/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                         api_version=MI_API)
        return sorted(i["name"] for i in ok(r)["value"])

    def vault_id(self, rg, name):
        return (f"/subscriptions/{self.srv.subscription}/resourceGroups/{rg}/providers/"
                f"Microsoft.KeyVault/vaults/{name}")

    def assignments_at(self, scope):
        r = self.srv.arm_raw("GET", f"{scope}/providers/Microsoft.Authorization/roleAssignments"
                                    f"?api-version={AUTHZ_API}&$filter=atScope()")
        return [a for a in ok(r)["value"]
                if a["properties"]["scope"].lower() == scope.lower()]

    def principal_of(self, rg, name):
        r = self.srv.arm("GET", f"/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
                                f"userAssignedIdentities/{name}", api_version=MI_API)
        return ok(r)["properties"]["principalId"]

    def assign(self, scope, role, principal):
        name = str(uuid.uuid4())
        ok(self.srv.arm_raw(
            "PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
                   f"?api-version={AUTHZ_API}",
            {"properties": {"roleDefinitionId": f"/subscriptions/{self.srv.subscription}/providers/"
                                                f"Microsoft.Authorization/roleDefinitions/{role}",
                            "principalId": principal}}), 200, 201)

    @staticmethod
    def changes(plan):
        return {p["environment"]: p["changes"] for p in plan}


class EnvironmentsTests(EnvCase):
    """One installation, built, broken and repaired in order (test_1 ... test_6)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = launch_server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.file = write(os.path.join(cls.srv.root, "envs.yaml"), ENVS)

    def sets(self):
        args = []
        for (env, name), value in VALUES.items():
            path = write(os.path.join(self.srv.root, f"value-{env}-{name}"), value + "\n")
            args += ["--set", f"{env}:{name}={path}"]
        flags = write(os.path.join(self.srv.root, "value-flags"), FLAGS)
        return args + ["--set", f"flags={flags}"]

    def test_1_plan_on_an_empty_installation_says_everything_and_changes_nothing(self):
        before = (self.vault_names(), self.identity_names())
        plan = self.env_json("plan", "-f", self.file, rc=2)
        changes = self.changes(plan)
        self.assertEqual(sorted(changes), ["dev", "prod", "staging"])
        self.assertEqual(changes["dev"], [
            "+ identity envt-shop-dev (user-assigned, group rg-envt-dev)",
            "+ vault envt-shop-dev (group rg-envt-dev, Azure RBAC, retention 7 days)",
            "+ secret envt-shop-dev/db-password: needs a value (apply --set dev:db-password=FILE)",
            "+ secret envt-shop-dev/flags: needs a value (apply --set dev:flags=FILE)",
            "+ secret envt-shop-dev/api-key: needs a value (apply --set dev:api-key=FILE)",
            "+ role assignment 'Key Vault Secrets User' to envt-shop-dev on vault envt-shop-dev",
        ])
        self.assertIn("+ service principal envt-ci-prod", changes["prod"])
        self.assertIn("+ vault envt-audit-prod (group rg-envt-prod, access policies, "
                      "retention 7 days)", changes["prod"])
        self.assertIn("+ access policy for envt-ci-prod on vault envt-audit-prod: "
                      '{"secrets":["get","list"]}', changes["prod"])
        self.assertEqual((self.vault_names(), self.identity_names()), before)
        rc, out, _ = self.env("plan", "-f", self.file, "-e", "staging")
        self.assertEqual(rc, 2)
        self.assertTrue(out.startswith("environment staging:\n  + identity envt-shop-staging"),
                        out)
        self.assertNotIn("environment dev", out)

    def test_2_apply_builds_every_environment_and_then_nothing_differs(self):
        result = self.env_json("apply", "-f", self.file, *self.sets(), rc=0)
        self.assertEqual([r["environment"] for r in result], ["dev", "staging", "prod"])
        for r in result:
            self.assertNotIn("failed", r)
            self.assertEqual(r["needsValue"], [])
        self.assertIn("+ secret envt-shop-prod/db-password (value from --set)", result[2]["done"])

        srv = self.srv
        for env in ("dev", "staging", "prod"):
            vault = f"envt-shop-{env}"
            for name in ("db-password", "api-key"):
                got = ok(srv.kv("GET", f"/secrets/{name}", vault=vault))
                self.assertEqual(got["value"], VALUES[(env, name)])
            got = ok(srv.kv("GET", "/secrets/db-password", vault=vault))
            self.assertEqual(got["contentType"], "text/plain")
            self.assertAlmostEqual(got["attributes"]["exp"], time.time() + 90 * 86400, delta=600)
            self.assertEqual(ok(srv.kv("GET", "/secrets/flags", vault=vault))["value"], FLAGS)
            scope = self.vault_id(f"rg-envt-{env}", vault)
            held = [(a["properties"]["principalId"], a["properties"]["roleDefinitionId"]
                     .rsplit("/", 1)[1]) for a in self.assignments_at(scope)]
            self.assertEqual(held, [(self.principal_of(f"rg-envt-{env}", vault), SECRETS_USER)])
            props = ok(srv.arm("GET", f"/resourceGroups/rg-envt-{env}/providers/"
                                      f"Microsoft.KeyVault/vaults/{vault}"))["properties"]
            self.assertEqual(props["softDeleteRetentionInDays"], 7)
            self.assertTrue(props["enableRbacAuthorization"])
        audit = ok(srv.arm("GET", "/resourceGroups/rg-envt-prod/providers/Microsoft.KeyVault/"
                                  "vaults/envt-audit-prod"))["properties"]
        self.assertFalse(audit["enableRbacAuthorization"])
        self.assertEqual(len(audit["accessPolicies"]), 2)  # envt-ci-prod and the caller

        plan = self.env_json("plan", "-f", self.file, rc=0)
        self.assertEqual(self.changes(plan), {"dev": [], "staging": [], "prod": []})
        self.assertEqual(self.env_json("check", "-f", self.file, rc=0), [])
        rc, out, _ = self.env("check", "-f", self.file)
        self.assertEqual((rc, out), (0, "no findings\n"))
        again = self.env_json("apply", "-f", self.file, rc=0)
        self.assertEqual([r["done"] for r in again], [[], [], []])

    def break_them(self):
        srv = self.srv
        # missing: staging's api-key deleted and purged
        ok(srv.kv("DELETE", "/secrets/api-key", vault="envt-shop-staging"))
        ok(srv.kv("DELETE", "/deletedsecrets/api-key", vault="envt-shop-staging"), 204)
        # disabled: dev's api-key
        ok(srv.kv("PATCH", "/secrets/api-key", {"attributes": {"enabled": False}},
                  vault="envt-shop-dev"))
        # expired: staging's db-password
        ok(srv.kv("PUT", "/secrets/db-password",
                  {"value": "ENVT-staging-db-2", "contentType": "text/plain",
                   "attributes": {"exp": int(time.time()) - 3600}}, vault="envt-shop-staging"))
        # shared: prod's db-password made equal to dev's
        ok(srv.kv("PUT", "/secrets/db-password",
                  {"value": VALUES[("dev", "db-password")], "contentType": "text/plain",
                   "attributes": {"exp": int(time.time()) + 30 * 86400}}, vault="envt-shop-prod"))
        # cross-environment: dev's identity may read prod's vault
        self.assign(self.vault_id("rg-envt-prod", "envt-shop-prod"), SECRETS_USER,
                    self.principal_of("rg-envt-dev", "envt-shop-dev"))
        # by hand: staging's identity made Secrets Officer of its own vault
        self.assign(self.vault_id("rg-envt-staging", "envt-shop-staging"), SECRETS_OFFICER,
                    self.principal_of("rg-envt-staging", "envt-shop-staging"))

    def findings(self, *extra):
        found = self.env_json("check", "-f", self.file, *extra)
        return sorted((f["kind"], f["environment"], f["subject"]) for f in found)

    def test_3_plan_check_and_diff_report_exactly_what_was_broken(self):
        self.break_them()
        changes = self.changes(self.env_json("plan", "-f", self.file, rc=2))
        self.assertEqual(changes["dev"], [])
        self.assertEqual(changes["staging"][0],
                         "+ secret envt-shop-staging/api-key: needs a value (apply --set "
                         "staging:api-key=FILE)")
        self.assertEqual(len(changes["staging"]), 2)
        self.assertRegex(changes["staging"][1],
                         r"^- role assignment 'Key Vault Secrets Officer' of envt-shop-staging "
                         r"\([0-9a-f-]{36}\) on vault envt-shop-staging \(not in the file\)$")
        self.assertEqual(len(changes["prod"]), 1)
        self.assertRegex(changes["prod"][0],
                         r"^- role assignment 'Key Vault Secrets User' of envt-shop-dev "
                         r"\([0-9a-f-]{36}\) on vault envt-shop-prod \(not in the file\)$")

        self.assertEqual(self.findings(), sorted(VALUE_FINDINGS + [
            ("CROSS-ENVIRONMENT", "prod", "envt-shop-prod")]))
        self.assertEqual(self.findings("-e", "prod"), sorted([
            ("SHARED-VALUE", "prod", "envt-shop-prod/db-password"),
            ("CROSS-ENVIRONMENT", "prod", "envt-shop-prod"),
        ]))
        rc, out, _ = self.env("check", "-f", self.file, "-e", "prod")
        self.assertEqual(rc, 2)
        self.assertRegex(out, r"CROSS-ENVIRONMENT \[prod\] envt-shop-prod: dev identity "
                              r"'envt-shop-dev' can read it \(granted by .*\); remove that grant")

        diff = self.env_json("diff", "staging", "prod", "-f", self.file, rc=2)
        rows = {r["name"]: r for r in diff["rows"]}
        self.assertEqual(sorted(rows), ["api-key", "db-password", "flags"])
        self.assertEqual(rows["api-key"]["notes"], ["only in prod"])
        self.assertIsNone(rows["api-key"]["left"])
        self.assertEqual((rows["db-password"]["value"], rows["db-password"]["notes"]),
                         ("different", []))
        self.assertEqual((rows["flags"]["value"], rows["flags"]["notes"]), ("equal", []))
        self.assertEqual(diff["differences"], 1)

        diff = self.env_json("diff", "dev", "prod", "-f", self.file, rc=2)
        rows = {r["name"]: r for r in diff["rows"]}
        self.assertEqual(rows["api-key"]["notes"], ["disabled in dev"])
        self.assertEqual(rows["db-password"]["notes"], ["same value, not marked shareable"])
        self.assertEqual(rows["db-password"]["value"], "equal")
        self.assertEqual(diff["differences"], 2)
        # Without a file the sides are vaults, and nothing is shareable.
        diff = self.env_json("diff", "envt-shop-staging", "envt-shop-prod", rc=2)
        rows = {r["name"]: r for r in diff["rows"]}
        self.assertEqual(rows["flags"]["notes"], ["same value, not marked shareable"])
        rc, out, err = self.env("diff", "dev", "prod", "-f", self.file)
        self.assertEqual(rc, 2)
        self.assertIn("db-password\n  dev: enabled, text/plain, exp ", out)
        self.assertIn("2 of 3 secrets differ", out)
        self.assertNotIn("ENVT-", out + err)

    def test_4_apply_repairs_the_grants_and_leaves_the_values_to_a_person(self):
        result = self.env_json("apply", "-f", self.file, rc=2)
        by_env = {r["environment"]: r for r in result}
        self.assertEqual(by_env["dev"]["done"], [])
        self.assertEqual(len(by_env["staging"]["done"]), 1)
        self.assertIn("'Key Vault Secrets Officer'", by_env["staging"]["done"][0])
        self.assertEqual(by_env["staging"]["needsValue"], ["envt-shop-staging/api-key"])
        self.assertEqual(len(by_env["prod"]["done"]), 1)
        for r in result:
            self.assertNotIn("failed", r)
        # The grants are gone, the values are as they were.
        scope = self.vault_id("rg-envt-prod", "envt-shop-prod")
        self.assertEqual([a["properties"]["principalId"] for a in self.assignments_at(scope)],
                         [self.principal_of("rg-envt-prod", "envt-shop-prod")])
        self.assertEqual(self.findings(), sorted(VALUE_FINDINGS))
        self.assertFalse(ok(self.srv.kv("GET", "/secrets/api-key", vault="envt-shop-dev"),
                            403, 200).get("attributes", {}).get("enabled", False))
        # A person gives the missing value; the rest they fix by hand.
        value = write(os.path.join(self.srv.root, "value-new-key"), "ENVT-staging-key-2")
        result = self.env_json("apply", "-f", self.file, "-e", "staging", "--set",
                               f"api-key={value}", rc=0)
        self.assertEqual(result[0]["done"],
                         ["+ secret envt-shop-staging/api-key (value from --set)"])
        changes = self.changes(self.env_json("plan", "-f", self.file, rc=0))
        self.assertEqual(changes, {"dev": [], "staging": [], "prod": []})

    def test_5_a_deleted_secret_is_recovered(self):
        ok(self.srv.kv("DELETE", "/secrets/flags", vault="envt-shop-dev"))
        changes = self.changes(self.env_json("plan", "-f", self.file, "-e", "dev", rc=2))
        self.assertEqual(changes["dev"],
                         ["~ secret envt-shop-dev/flags: recover the deleted secret"])
        self.assertIn(("MISSING", "dev", "shop: envt-shop-dev/flags"), self.findings("-e", "dev"))
        self.env_json("apply", "-f", self.file, "-e", "dev", rc=0)
        deadline = time.time() + 30
        while self.srv.kv("GET", "/secrets/flags", vault="envt-shop-dev").status != 200:
            self.assertLess(time.time(), deadline, "the secret was not recovered")
            time.sleep(0.2)
        self.assertEqual(ok(self.srv.kv("GET", "/secrets/flags", vault="envt-shop-dev"))["value"],
                         FLAGS)

    def test_6_promote_copies_a_shareable_value_and_refuses_the_others(self):
        srv = self.srv
        marker = new_correlation("promote")
        source = ok(srv.kv("PUT", "/secrets/flags", {"value": "ENVT-flags-v2",
                                                     "tags": {"team": "a"}},
                           vault="envt-shop-staging",
                           headers={"x-ms-client-request-id": marker}))["id"]
        by_correlation(srv, marker)  # the log holds every record before it

        def audited(operation, vault):
            return lambda r: (r.get("operationName") == operation and
                              r["properties"]["requestUri"].startswith(
                                  f"https://{vault}.vault.localhost:{srv.port}/secrets/flags?"))
        read, wrote = audited("SecretGet", "envt-shop-staging"), audited("SecretSet",
                                                                         "envt-shop-prod")
        reads = len(wait_for_records(srv, read, count=1 << 30, timeout=0))
        writes = len(wait_for_records(srv, wrote, count=1 << 30, timeout=0))
        rc, out, err = self.env("promote", "--from", "staging", "--to", "prod", "--secret",
                                "flags", "-f", self.file)
        # Both the read and the write are audited, as the caller's.
        self.assertEqual(len(wait_for_records(srv, read, count=reads + 1)), reads + 1)
        self.assertEqual(len(wait_for_records(srv, wrote, count=writes + 1)), writes + 1)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("ENVT-", out + err)
        made = json.loads(out)
        self.assertEqual(made["promotedFrom"], source)
        got = ok(srv.kv("GET", "/secrets/flags", vault="envt-shop-prod"))
        self.assertEqual(got["value"], "ENVT-flags-v2")
        self.assertEqual(got["id"], made["id"])
        self.assertEqual(got["tags"], {"team": "a", "promotedFrom": source})

        versions = ok(srv.kv("GET", "/secrets/db-password/versions", vault="envt-shop-prod"))
        rc, out, err = self.env("promote", "--from", "staging", "--to", "prod", "--secret",
                                "db-password", "-f", self.file)
        self.assertEqual(rc, 1)
        self.assertIn("the secret is not shareable", err)
        self.assertEqual(ok(srv.kv("GET", "/secrets/db-password/versions",
                                   vault="envt-shop-prod")), versions)
        # Vault names without a file.
        rc, out, err = self.env("promote", "--from", "envt-shop-prod", "--to", "envt-shop-dev",
                                "--secret", "flags")
        self.assertEqual(rc, 0, err)
        self.assertEqual(ok(srv.kv("GET", "/secrets/flags", vault="envt-shop-dev"))["value"],
                         "ENVT-flags-v2")
        rc, _, err = self.env("promote", "--from", "envt-shop-prod", "--to", "envt-shop-dev",
                              "--secret", "no-such-secret")
        self.assertEqual(rc, 1)
        self.assertIn("SecretNotFound", err)

    def test_7_access_policies_changed_by_hand_are_put_back(self):
        srv = self.srv
        path = "/resourceGroups/rg-envt-prod/providers/Microsoft.KeyVault/vaults/envt-audit-prod"
        vault = ok(srv.arm("GET", path))
        tenant = vault["properties"]["tenantId"]
        ci = next(p["objectId"] for p in vault["properties"]["accessPolicies"]
                  if p["permissions"].get("secrets") == ["get", "list"])
        dev = self.principal_of("rg-envt-dev", "envt-shop-dev")
        ok(srv.arm("PUT", path + "/accessPolicies/add", {"properties": {"accessPolicies": [
            {"tenantId": tenant, "objectId": ci,
             "permissions": {"keys": ["get"], "secrets": ["delete"]}},
            {"tenantId": tenant, "objectId": dev, "permissions": {"secrets": ["get"]}}]}}),
           200, 201)
        changes = self.changes(self.env_json("plan", "-f", self.file, "-e", "prod", rc=2))
        self.assertEqual(len(changes["prod"]), 2, changes)
        self.assertEqual(changes["prod"][0],
                         "~ access policy for envt-ci-prod on vault envt-audit-prod: "
                         '{"secrets":["get","list"]} (now {"keys":["get"],'
                         '"secrets":["delete","get","list"]})')
        self.assertRegex(changes["prod"][1], r"^- access policy of envt-shop-dev \([0-9a-f-]{36}\) "
                                             r"on vault envt-audit-prod \(not in the file\)$")
        self.env_json("apply", "-f", self.file, "-e", "prod", rc=0)
        policies = {p["objectId"]: {k: sorted(v) for k, v in p["permissions"].items() if v}
                    for p in ok(srv.arm("GET", path))["properties"]["accessPolicies"]}
        self.assertEqual(policies[ci], {"secrets": ["get", "list"]})
        self.assertNotIn(dev, policies)
        self.assertEqual(len(policies), 2)  # and the caller's own entry


SPC = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: shop
spec:
  provider: azure
  parameters:
    keyvaultName: envt-qc-kv
    tenantID: t
    objects: |
      array:
        - |
          objectName: present
          objectType: secret
        - |
          objectName: ghost
          objectType: secret
"""


class FollowsManifestsTests(EnvCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = launch_server()
        cls.addClassCleanup(cls.srv.cleanup)

    def test_check_follows_secret_provider_classes_and_references(self):
        root = self.srv.root
        write(os.path.join(root, "spc-qc.yaml"), SPC)
        write(os.path.join(root, "qc.env"),
              "DB=@Microsoft.KeyVault(VaultName=envt-qc-kv;SecretName=present)\n"
              "OTHER=@Microsoft.KeyVault(VaultName=envt-elsewhere;SecretName=x)\nPLAIN=1\n")
        path = write(os.path.join(root, "envs-qc.yaml"), """\
environments: [{name: qc}]
vaults: [{name: envt-qc-kv, resourceGroup: rg-qc}]
identities: [{name: envt-qc-app, resourceGroup: rg-qc}]
applications:
  - name: app
    identity: envt-qc-app
    secrets: [{name: present}]
    secretProviderClasses: [spc-qc.yaml]
    referenceFiles: [qc.env]
access: [{vault: envt-qc-kv, principal: envt-qc-app, role: Key Vault Secrets User}]
""")
        # The value comes from stdin (`--set NAME=-`), never from the file or the command line.
        env = self.srv.cli_env()
        env["COFFER_CA_FILE"] = self.srv.ca_path
        p = subprocess.run([coffer_binary(), "env", "apply", "-f", path, "--set", "present=-",
                            "--json"], env=env, input=b"ENVT-present\n", capture_output=True,
                           timeout=180)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(b"ENVT-", p.stdout + p.stderr)
        self.assertEqual(ok(self.srv.kv("GET", "/secrets/present", vault="envt-qc-kv"))["value"],
                         "ENVT-present")
        found = self.env_json("check", "-f", path, rc=2)
        got = sorted((f["kind"], f["subject"]) for f in found)
        self.assertEqual(got, [
            ("MISSING", "app: envt-qc-kv/ghost (line 5: applications[0] [qc] (app): "
                        "spc-qc.yaml (shop) secret/ghost)"),
            ("WRONG-VAULT", "app: envt-elsewhere/x (line 5: applications[0] [qc] (app): "
                            "qc.env OTHER)"),
        ])
        # The identity loses its grant: every object it reads is reported.
        scope = (f"/subscriptions/{self.srv.subscription}/resourceGroups/rg-qc/providers/"
                 "Microsoft.KeyVault/vaults/envt-qc-kv")
        for a in self.assignments_at(scope):
            ok(self.srv.arm_raw("DELETE", a["id"] + f"?api-version={AUTHZ_API}"), 200, 204)
        kinds = sorted(f["kind"] for f in self.env_json("check", "-f", path, rc=2))
        self.assertEqual(kinds, ["MISSING", "NOT-READABLE", "NOT-READABLE", "NOT-READABLE",
                                 "WRONG-VAULT"])


class BadInputTests(EnvCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = launch_server()
        cls.addClassCleanup(cls.srv.cleanup)

    def refused(self, text, *needles, command="plan", name="bad.yaml"):
        path = write(os.path.join(self.srv.root, name), text)
        before = (self.vault_names(), self.identity_names())
        rc, out, err = self.env(command, "-f", path)
        self.assertEqual(rc, 1, f"stdout: {out}\nstderr: {err}")
        for n in needles:
            self.assertIn(n, err)
        self.assertEqual((self.vault_names(), self.identity_names()), before)
        return out, err

    def test_malformed_and_unknown_are_refused_naming_the_line(self):
        self.refused("environments: [\n", "bad.yaml: malformed YAML")
        self.refused("environments: [{name: qa}]\nvaults: [{name: envt-qa}]\nvault: []\n",
                     'bad.yaml: line 1: the document: unknown key "vault"')
        self.refused("environments: [{name: qa}]\nvaults:\n  - name: envt-qa\n    purge: true\n",
                     "line 3: vaults[0] [qa] (envt-qa): unknown key \"purge\"",
                     command="apply")
        rc, _, err = self.env("plan", "-f", os.path.join(self.srv.root, "missing.yaml"))
        self.assertEqual(rc, 2)

    def test_principals_and_roles_that_do_not_resolve_apply_nothing(self):
        for access, needle in (
                (f"principal: {NOBODY}\n    role: Key Vault Secrets User",
                 "is neither an identity of the environment nor a principal of the directory"),
                ("principal: envt-qd-app\n    role: No Such Role",
                 "role 'No Such Role' does not exist")):
            with self.subTest(needle):
                self.refused(f"""\
environments: [{{name: qd}}]
vaults: [{{name: envt-qd-kv, resourceGroup: rg-qd}}]
identities: [{{name: envt-qd-app, resourceGroup: rg-qd}}]
access:
  - vault: envt-qd-kv
    {access}
""", needle, command="apply")

    def test_a_conflict_refuses_the_environment_and_a_failed_write_reports_what_was_done(self):
        first = write(os.path.join(self.srv.root, "qe.yaml"), """\
environments: [{name: qe}]
vaults: [{name: envt-qe-kv, resourceGroup: rg-qe, softDeleteRetentionInDays: 7}]
""")
        self.env_json("apply", "-f", first, rc=0)
        conflicting = write(os.path.join(self.srv.root, "qe2.yaml"), """\
environments: [{name: qe}]
vaults: [{name: envt-qe-kv, resourceGroup: rg-qe, softDeleteRetentionInDays: 30}]
identities: [{name: envt-qe-app, resourceGroup: rg-qe}]
""")
        plan = self.env_json("plan", "-f", conflicting, rc=2)
        self.assertEqual(len(plan[0]["conflicts"]), 1)
        self.assertIn("softDeleteRetentionInDays is 7 and cannot change", plan[0]["conflicts"][0])
        result = self.env_json("apply", "-f", conflicting, rc=1)
        self.assertEqual(result[0]["done"], [])
        self.assertIn("nothing applied", result[0]["failed"])
        self.assertNotIn("envt-qe-app", self.identity_names())

        halfway = write(os.path.join(self.srv.root, "qf.yaml"), """\
environments: [{name: qf}]
vaults:
  - {name: envt-qf-one, resourceGroup: rg-qf}
  - {name: envt-qf-two, resourceGroup: rg-qf, location: ""}
  - {name: envt-qf-three, resourceGroup: rg-qf}
""")
        result = self.env_json("apply", "-f", halfway, rc=1)
        self.assertEqual(result[0]["done"],
                         ["+ vault envt-qf-one (group rg-qf, Azure RBAC, retention 90 days)"])
        self.assertTrue(result[0]["failed"].startswith("+ vault envt-qf-two"), result)
        self.assertIn("location must be a non-empty string", result[0]["failed"])
        names = self.vault_names()
        self.assertIn("envt-qf-one", names)
        self.assertNotIn("envt-qf-two", names)
        self.assertNotIn("envt-qf-three", names)

    def test_vaults_that_do_not_exist(self):
        rc, out, err = self.env("diff", "envt-no-such", "dev")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("(VaultNotFound) vault 'envt-no-such' does not exist", err)
        path = write(os.path.join(self.srv.root, "qh.yaml"), """\
environments: [{name: qh}]
vaults: [{name: envt-qh-kv}]
applications: [{name: app, secrets: [{name: s}]}]
""")
        found = self.env_json("check", "-f", path, rc=2)
        self.assertEqual([(f["kind"], f["subject"]) for f in found],
                         [("MISSING-VAULT", "app: envt-qh-kv/s")])
        rc, _, err = self.env("promote", "--from", "envt-no-such", "--to", "dev", "--secret", "s")
        self.assertEqual(rc, 1)

    def test_set_naming_no_environment_is_a_usage_error(self):
        path = write(os.path.join(self.srv.root, "qg.yaml"),
                     "environments: [{name: qg}]\nvaults: [{name: envt-qg-kv}]\n")
        value = write(os.path.join(self.srv.root, "qg-v"), "x")
        rc, _, err = self.env("apply", "-f", path, "--set", f"prod:x={value}")
        self.assertEqual(rc, 2)
        self.assertIn("no environment 'prod'", err)
        rc, _, err = self.env("apply", "-f", path, "--set", "novalue")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main()
