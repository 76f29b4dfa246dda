"""Seed files: `coffer server --dev --seed`, `coffer keyvault import` and `export`
(src/cli/seed_file.h, seed_apply.h).

* --seed at start: a file with an Azure RBAC vault (retention 7, tags), an access-policy vault with
  purge protection, secrets in the existing `dev` vault, secrets with several versions (the last is
  the current one; tags, contentType, notBefore/expires, an old version disabled), placeholders
  (${host}, ${port}, ${now+30d}, ${now-2h}, $${ for a literal ${), a user-assigned identity, its
  role assignment at a vault's scope and its access-policy entry.  /readyz answers 503 ("seed":
  "applying") while the seed is applied and 200 only once all of it, purge protection included,
  is there; stdout has the "Seeded from" line with the summary.  A restart on the same data
  directory with the same file applies nothing (seed.sha256); a changed file is imported.
* A seed that fails while it is applied (a vault the server refuses, after an identity, a vault
  and secrets were created) makes the server exit 1 naming the entry on stderr, and leaves
  nothing: started again without --seed, no vault (live or deleted), secret or identity of it
  exists.
* `coffer keyvault import` is all or nothing: a secret that exists (live or deleted) in an
  existing vault refuses the whole file before anything is made; a role assignment the server
  refuses after identities, vaults, secrets, a policy entry and a role assignment were made
  undoes all of them (vault purged, secret purged); the undo keeps what a principal's
  access-policy entry held before.  A file that lists an existing access-policy vault without
  repeating its model may grant access-policy permissions on it.  A successful import maps an app
  id to its service principal and takes a 25600-byte value.
* Bad input is refused naming the file (parser errors), the line and the entry, changes nothing
  and never echoes a secret value: malformed YAML, unknown keys, duplicates, bad names, values
  over 25600 bytes, unknown or unclosed placeholders, bad times, role vs. permissions, versions
  without values (an export without --include-values), files over 16 MiB, unknown roles, vaults
  neither existing nor declared, deleted vaults, existing vaults with other settings.  Refusals
  found against the server print `ERROR: (<code>) line N: <entry>: ...` like every refused command
  (docs/cli.md).
* Export -> import round trip between two servers: files are mode 0600 with or without values,
  values only with --include-values, a disabled version has no value, certificate-managed secrets
  are left out (and a file holding a disabled version is refused by import, changing nothing),
  versions oldest first; importing into a fresh server gives the same vaults and
  settings, secrets, versions, tags, contentType, nbf/exp, identities, role assignments (by role
  name) and access-policy entries.  --name limits the export; an unknown --name fails and writes
  nothing.
* --seed without --dev is a usage error (exit 2); an unreadable seed file stops a dev server
  (exit 1).
"""

import calendar
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import (CofferServer, coffer_binary, free_port, jwt_parts, launch_server,
                     read_text, stop_process, wait_until)

MI_API = "2023-01-31"
AUTHZ_API = "2022-04-01"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
NOBODY = "11111111-2222-4333-8444-555555555555"  # a GUID that is no principal of any server
WAIT_S = 30.0


# ---- helpers ---------------------------------------------------------------------------------

def write(path, text, mode=None):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


def ok(resp, *statuses):
    if resp.status not in (statuses or (200,)):
        raise AssertionError(f"unexpected answer: {resp!r}")
    return resp.json() if resp.body else None


def vaults(srv):
    """{name: ARM body} of the live vaults."""
    r = srv.arm("GET", "/providers/Microsoft.KeyVault/vaults")
    return {v["name"]: v for v in ok(r)["value"]}


def deleted_vaults(srv):
    r = srv.arm("GET", "/providers/Microsoft.KeyVault/deletedVaults")
    return sorted(v["name"] for v in ok(r)["value"])


def identities(srv):
    r = srv.arm("GET", "/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                api_version=MI_API)
    return {i["name"]: i for i in ok(r)["value"]}


def vault_id(srv, rg, name):
    return (f"/subscriptions/{srv.subscription}/resourceGroups/{rg}/providers/"
            f"Microsoft.KeyVault/vaults/{name}")


def assignments(srv, scope=None):
    """Role assignments' properties (name added) at, above and below scope (a full id; default
    the subscription)."""
    scope = scope or f"/subscriptions/{srv.subscription}"
    r = srv.arm_raw("GET", f"{scope}/providers/Microsoft.Authorization/roleAssignments"
                           f"?api-version={AUTHZ_API}")
    out = []
    for a in ok(r)["value"]:
        p = dict(a["properties"])
        p["name"] = a["name"]
        out.append(p)
    return out


def assignments_at(srv, scope):
    return [a for a in assignments(srv, scope) if a["scope"].lower() == scope.lower()]


def all_pages(srv, path, vault):
    items = []
    r = srv.kv("GET", path, vault=vault, query={"maxresults": "25"})
    while True:
        body = ok(r)
        items += body.get("value", [])
        nxt = body.get("nextLink")
        if not nxt:
            return items
        u = urllib.parse.urlsplit(nxt)
        r = srv.request("GET", u.path + "?" + u.query, host=srv.vault_host(vault))


def secret_names(srv, vault, deleted=False):
    items = all_pages(srv, "/deletedsecrets" if deleted else "/secrets", vault)
    return sorted(i["id"].rsplit("/", 1)[1] for i in items if not i.get("managed"))


def versions(srv, vault, name):
    return all_pages(srv, f"/secrets/{name}/versions", vault)


def version_details(srv, vault, name):
    """{value: (contentType, tags, nbf, exp)} of the enabled versions, the number of versions,
    the number of disabled ones, and the current value."""
    out, disabled = {}, 0
    items = versions(srv, vault, name)
    for item in items:
        attrs = item["attributes"]
        if not attrs.get("enabled", True):
            disabled += 1
            continue
        got = ok(srv.kv("GET", "/secrets/" + name + "/" + item["id"].rsplit("/", 1)[1],
                        vault=vault))
        out[got["value"]] = (got.get("contentType"), got.get("tags") or {},
                             got["attributes"].get("nbf"), got["attributes"].get("exp"))
    current = ok(srv.kv("GET", f"/secrets/{name}", vault=vault))["value"]
    return out, len(items), disabled, current


def readyz(srv):
    return srv.request("GET", "/readyz", host="localhost", auth=False)


def world(srv):
    """What an import could change: vaults (with properties and tags), deleted vaults,
    identities, role assignments, and each live vault's secrets, live and deleted."""
    live = vaults(srv)
    return {
        "vaults": {n: (v["id"], v["properties"], v.get("tags")) for n, v in live.items()},
        "deleted vaults": deleted_vaults(srv),
        "identities": sorted(identities(srv)),
        "assignments": sorted(a["name"] for a in assignments(srv)),
        "secrets": {n: (secret_names(srv, n), secret_names(srv, n, deleted=True))
                    for n in live},
    }


def policy_of(vault_body, object_id):
    for e in vault_body["properties"]["accessPolicies"]:
        if e["objectId"] == object_id:
            return {k: sorted(v) for k, v in e["permissions"].items() if v}
    return None


class SeedCase(unittest.TestCase):
    maxDiff = 6000

    def import_file(self, srv, text, name="seed.yaml"):
        path = write(os.path.join(srv.root, name), text)
        rc, out, err = srv.cli("import", "--file", path)
        return path, rc, out, err

    def assertRefused(self, rc, out, err, *needles, values=()):
        self.assertEqual(rc, 1, f"stdout: {out}\nstderr: {err}")
        self.assertEqual(out.strip(), "", "a refused import printed a summary")
        for n in needles:
            self.assertIn(n, err)
        for v in values:
            self.assertNotIn(v, err, "an error shows a secret's value")

    def assertNoVault(self, srv, name):
        self.assertNotIn(name, vaults(srv))
        self.assertNotIn(name, deleted_vaults(srv))

    def assertNoSecret(self, srv, vault, name):
        self.assertEqual(srv.kv("GET", f"/secrets/{name}", vault=vault).status, 404)
        self.assertEqual(srv.kv("GET", f"/deletedsecrets/{name}", vault=vault).status, 404)


# ---- 1. --seed at start ------------------------------------------------------------------------

BULK = 40
SEED_WORLD = """\
# The world of SeedAtStartTests.
vaults:
  - name: seed-rbac
    resourceGroup: rg-seed
    enableRbacAuthorization: true
    softDeleteRetentionInDays: 7
    tags: {team: payments, env: "dev"}
    secrets:
      - name: service-url
        value: https://${host}:${port}/x
        contentType: text/uri-list
        expires: ${now+30d}
      - name: literal
        value: "$${host} stays"
      - name: db-password
        versions:
          - value: first-pw
            enabled: false
          - value: second-pw
            tags: {rotation: "2"}
            notBefore: ${now-2h}
          - value: third-pw
            contentType: password
            expires: 2030-01-31T00:00:00Z
  - name: seed-policies
    resourceGroup: rg-seed
    enableRbacAuthorization: false
    enablePurgeProtection: true
    secrets:
      - name: api-key
        value: k-123
  - name: dev
    secrets:
      - name: seeded-in-dev
        value: hello
  - name: seed-bulk
    secrets:
""" + "".join(f"      - name: bulk-{i:02d}\n        value: bulk value {i}\n"
              for i in range(BULK)) + """\
identities:
  - name: seed-app
    resourceGroup: rg-seed
    tags: {owner: seed}
access:
  - vault: seed-rbac
    principal: seed-app
    role: Key Vault Secrets User
  - vault: seed-policies
    principal: seed-app
    permissions: {secrets: [get, list]}
"""


class SeedAtStartTests(SeedCase):
    """One dev server started with --seed SEED_WORLD."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = CofferServer()
        cls.addClassCleanup(srv.cleanup)
        cls.srv = srv
        cls.seed_path = write(os.path.join(srv.root, "world.yaml"), SEED_WORLD)
        srv.extra_args = ["--seed", cls.seed_path]
        srv.start()  # waits for /healthz only
        cls.readyz_seen = []
        cls.at_ready = None

        def ready():
            if not srv.running():
                raise AssertionError("the seeded server exited:\n" + srv.stderr_text())
            r = readyz(srv)
            cls.readyz_seen.append((r.status, r.json()))
            if r.status != 200:
                return False
            # The first 200: the whole seed must be there, purge protection (its last step)
            # included.
            cls.at_ready = (vaults(srv).get("seed-policies"),
                            srv.kv("GET", f"/secrets/bulk-{BULK - 1:02d}", vault="seed-bulk"))
            return True

        if not wait_until(ready, timeout=WAIT_S):
            raise AssertionError(f"/readyz never answered 200: {cls.readyz_seen[-3:]}")
        cls.stdout = wait_until(lambda: ("Seeded from" in read_text(srv.stdout_path)
                                         and read_text(srv.stdout_path)), timeout=WAIT_S)

    def seed_app(self):
        return identities(self.srv)["seed-app"]

    def test_readiness_and_the_seeded_from_line(self):
        for status, body in self.readyz_seen:
            self.assertIn(status, (200, 503), self.readyz_seen)
            if status == 503:
                self.assertEqual(body.get("seed"), "applying", body)
        self.assertEqual(self.readyz_seen[-1][0], 200)
        self.assertNotIn("seed", self.readyz_seen[-1][1])
        policies, last_bulk = self.at_ready
        self.assertIsNotNone(policies, "a vault of the seed was missing when /readyz said 200")
        self.assertTrue(policies["properties"].get("enablePurgeProtection"),
                        "purge protection (the last step) was off when /readyz said 200")
        self.assertEqual(last_bulk.status, 200, last_bulk)
        self.assertEqual(readyz(self.srv).status, 200)

        self.assertTrue(self.stdout, "stdout never showed the 'Seeded from' line:\n" +
                        read_text(self.srv.stdout_path))
        line = next(l for l in self.stdout.splitlines() if l.startswith("Seeded from"))
        self.assertTrue(line.startswith(f"Seeded from {self.seed_path}: "), line)
        summary = json.loads(line.split(": ", 1)[1])
        self.assertEqual(summary, {
            "vaults": {"created": ["seed-rbac", "seed-policies", "seed-bulk"],
                       "existing": ["dev"]},
            "secrets": 3 + 1 + 1 + BULK, "versions": 5 + 1 + 1 + BULK,
            "identitiesCreated": 1, "access": 2})
        with open(os.path.join(self.srv.data_dir, "seed.sha256")) as f:
            self.assertEqual(f.read().strip(),
                             hashlib.sha256(SEED_WORLD.encode()).hexdigest())

    def test_vaults_have_the_declared_settings(self):
        live = vaults(self.srv)
        rbac = live["seed-rbac"]
        self.assertEqual(rbac["id"], vault_id(self.srv, "rg-seed", "seed-rbac"))
        self.assertEqual(rbac["location"], "local")
        self.assertEqual(rbac["tags"], {"team": "payments", "env": "dev"})
        self.assertIs(rbac["properties"]["enableRbacAuthorization"], True)
        self.assertEqual(rbac["properties"]["softDeleteRetentionInDays"], 7)
        self.assertFalse(rbac["properties"].get("enablePurgeProtection", False))
        pol = live["seed-policies"]
        self.assertEqual(pol["id"], vault_id(self.srv, "rg-seed", "seed-policies"))
        self.assertIs(pol["properties"]["enableRbacAuthorization"], False)
        self.assertEqual(pol["properties"]["softDeleteRetentionInDays"], 90)
        self.assertIs(pol["properties"]["enablePurgeProtection"], True)
        bulk = live["seed-bulk"]
        self.assertEqual(bulk["id"], vault_id(self.srv, "coffer-dev", "seed-bulk"))
        self.assertEqual(len(secret_names(self.srv, "seed-bulk")), BULK)
        self.assertEqual(live["dev"]["properties"]["softDeleteRetentionInDays"], 7)

    def test_secrets_versions_attributes_and_placeholders(self):
        srv = self.srv
        url = ok(srv.kv("GET", "/secrets/service-url", vault="seed-rbac"))
        self.assertEqual(url["value"], f"https://localhost:{srv.port}/x")
        self.assertEqual(url["value"], srv.authority + "/x")
        self.assertEqual(url["contentType"], "text/uri-list")
        self.assertLess(abs(url["attributes"]["exp"] - (time.time() + 30 * 86400)), 60,
                        url["attributes"])
        self.assertEqual(ok(srv.kv("GET", "/secrets/literal", vault="seed-rbac"))["value"],
                         "${host} stays")

        items = versions(srv, "seed-rbac", "db-password")
        self.assertEqual(len(items), 3, items)
        disabled = [i for i in items if not i["attributes"]["enabled"]]
        self.assertEqual(len(disabled), 1, items)
        d_version = disabled[0]["id"].rsplit("/", 1)[1]
        self.assertEqual(srv.kv("GET", f"/secrets/db-password/{d_version}",
                                vault="seed-rbac").status, 403)
        details, count, n_disabled, current = version_details(srv, "seed-rbac", "db-password")
        self.assertEqual((count, n_disabled, current), (3, 1, "third-pw"))
        self.assertEqual(sorted(details), ["second-pw", "third-pw"])
        ct, tags, nbf, exp = details["second-pw"]
        self.assertEqual((ct, tags, exp), (None, {"rotation": "2"}, None))
        self.assertLess(abs(nbf - (time.time() - 7200)), 60)
        self.assertEqual(details["third-pw"],
                         ("password", {}, None, calendar.timegm((2030, 1, 31, 0, 0, 0))))
        self.assertEqual(ok(srv.kv("GET", "/secrets/api-key", vault="seed-policies"))["value"],
                         "k-123")
        self.assertEqual(ok(srv.kv("GET", "/secrets/seeded-in-dev"))["value"], "hello")
        self.assertEqual(ok(srv.kv("GET", "/secrets/bulk-07", vault="seed-bulk"))["value"],
                         "bulk value 7")

    def test_identity_role_assignment_and_access_policy(self):
        app = self.seed_app()
        self.assertIn("/resourceGroups/rg-seed/".lower(), app["id"].lower())
        self.assertEqual(app["tags"], {"owner": "seed"})
        pid = app["properties"]["principalId"]
        scope = vault_id(self.srv, "rg-seed", "seed-rbac")
        at = assignments_at(self.srv, scope)
        self.assertEqual([(a["principalId"], a["roleDefinitionId"].rsplit("/", 1)[1])
                          for a in at], [(pid, SECRETS_USER)], at)
        pol = vaults(self.srv)["seed-policies"]
        self.assertEqual(policy_of(pol, pid), {"secrets": ["get", "list"]})

    def counts(self):
        srv = self.srv
        pid = self.seed_app()["properties"]["principalId"]
        return {
            "vaults": sorted(vaults(srv)),
            "identities": sorted(identities(srv)),
            "db-password": len(versions(srv, "seed-rbac", "db-password")),
            "seeded-in-dev": len(versions(srv, "dev", "seeded-in-dev")),
            "bulk-00": len(versions(srv, "seed-bulk", "bulk-00")),
            "assignments": len(assignments_at(srv, vault_id(srv, "rg-seed", "seed-rbac"))),
            "policy entries": sum(1 for e in vaults(srv)["seed-policies"]["properties"]
                                  ["accessPolicies"] if e["objectId"] == pid),
        }

    def restart(self, args):
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start(extra_args=args)
        if not wait_until(lambda: readyz(self.srv).status == 200, timeout=WAIT_S):
            self.fail("/readyz never answered 200 after the restart:\n" + self.srv.stderr_text())
        out = wait_until(lambda: ("Coffer is listening" in read_text(self.srv.stdout_path)
                                  and read_text(self.srv.stdout_path)), timeout=WAIT_S)
        self.assertTrue(out, read_text(self.srv.stdout_path))
        return out

    def test_restart_with_the_same_file_applies_nothing_and_a_changed_file_is_imported(self):
        before = self.counts()
        self.assertEqual(before["db-password"], 3)
        out = self.restart(["--seed", self.seed_path])
        self.assertIn(f"Seed {self.seed_path} was applied to this data directory before; "
                      "nothing to do", out)
        self.assertNotIn("Seeded from", out)
        self.assertEqual(self.counts(), before)

        later = "vaults:\n  - name: seed-later\n    secrets:\n      - name: later\n" \
                "        value: later value\n"
        later_path = write(os.path.join(self.srv.root, "later.yaml"), later)
        out = self.restart(["--seed", later_path])
        self.assertIn(f"Seeded from {later_path}: ", out)
        self.assertEqual(ok(self.srv.kv("GET", "/secrets/later", vault="seed-later"))["value"],
                         "later value")
        with open(os.path.join(self.srv.data_dir, "seed.sha256")) as f:
            self.assertEqual(f.read().strip(), hashlib.sha256(later.encode()).hexdigest())
        after = self.counts()
        after["vaults"].remove("seed-later")
        self.assertEqual(after, before)


# ---- 2. a --seed that fails --------------------------------------------------------------------

FAILING_SEED = """\
vaults:
  - name: fail-first
    secrets:
      - name: first-secret
        versions:
          - value: FAILSEED-one
          - value: FAILSEED-two
  - name: dev
    secrets:
      - name: fail-in-dev
        value: FAILSEED-dev
  - name: fail-second
    location: ""
    secrets:
      - name: never
        value: FAILSEED-never
identities:
  - name: fail-id
access:
  - vault: fail-first
    principal: fail-id
    role: Key Vault Secrets User
"""


class FailingSeedTests(SeedCase):

    def test_a_seed_that_fails_while_applied_stops_the_server_and_leaves_nothing(self):
        srv = CofferServer()
        self.addCleanup(srv.cleanup)
        path = write(os.path.join(srv.root, "failing.yaml"), FAILING_SEED)
        try:
            srv.start(extra_args=["--seed", path])
        except RuntimeError:
            pass  # it may exit before /healthz answers
        self.assertTrue(wait_until(lambda: srv.proc.poll() is not None, timeout=WAIT_S),
                        "the server kept running with a seed that failed")
        self.assertEqual(srv.proc.returncode, 1)
        err, out = read_text(srv.stderr_path), read_text(srv.stdout_path)
        self.assertIn("coffer server: --seed ", err)
        self.assertRegex(err, r"line 12: vaults\[2\] \(fail-second\): creating the vault: "
                              r"location must be a non-empty string")
        self.assertIn("nothing of the import was kept", err)
        self.assertNotIn("FAILSEED", err + out)
        self.assertNotIn("Seeded from", out)
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "seed.sha256")))

        srv.start(extra_args=[])
        self.assertEqual(readyz(srv).status, 200)
        for name in ("fail-first", "fail-second"):
            self.assertNoVault(srv, name)
        self.assertNoSecret(srv, "dev", "fail-in-dev")
        self.assertEqual(identities(srv), {})
        self.assertEqual([a for a in assignments(srv) if "fail-first" in a["scope"]], [])


# ---- 3. import: all or nothing -----------------------------------------------------------------

class ImportAllOrNothingTests(SeedCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = launch_server()
        cls.addClassCleanup(cls.srv.cleanup)

    def test_a_secret_that_exists_in_an_existing_vault_refuses_the_whole_file(self):
        srv = self.srv
        ok(srv.kv("PUT", "/secrets/taken", {"value": "original"}))
        ok(srv.kv("PUT", "/secrets/gone", {"value": "original"}))
        ok(srv.kv("DELETE", "/secrets/gone"))
        for taken, message in (("taken", "the secret exists already in vault 'dev'"),
                               ("gone", "a deleted secret of this name is in vault 'dev'")):
            with self.subTest(taken):
                before = world(srv)
                text = f"""\
vaults:
  - name: ion-new
    secrets:
      - name: fresh
        value: IONVALUE-fresh
  - name: dev
    secrets:
      - name: fresh-in-dev
        value: IONVALUE-dev
      - name: {taken}
        value: IONVALUE-taken
identities:
  - name: ion-id
access:
  - vault: ion-new
    principal: ion-id
    role: Key Vault Secrets User
"""
                _, rc, out, err = self.import_file(srv, text)
                self.assertRefused(rc, out, err,
                                   f"line 10: vaults[1].secrets[1] ({taken}): {message}",
                                   values=("IONVALUE", "original"))
                self.assertEqual(world(srv), before)
                self.assertNoVault(srv, "ion-new")
                self.assertNotIn("ion-id", identities(srv))
                self.assertNoSecret(srv, "dev", "fresh-in-dev")
        self.assertEqual(ok(srv.kv("GET", "/secrets/taken"))["value"], "original")

    def test_a_failure_while_applying_undoes_everything_it_made(self):
        srv = self.srv
        before = world(srv)
        dev_policies = vaults(srv)["dev"]["properties"]["accessPolicies"]
        text = f"""\
vaults:
  - name: undo-new
    enablePurgeProtection: true
    tags: {{kept: "no"}}
    secrets:
      - name: undo-secret
        versions:
          - value: UNDOVALUE-1
          - value: UNDOVALUE-2
  - name: dev
    enableRbacAuthorization: false
    secrets:
      - name: undo-in-dev
        value: UNDOVALUE-dev
identities:
  - name: undo-id
access:
  - vault: dev
    principal: undo-id
    permissions: {{secrets: [get]}}
  - vault: undo-new
    principal: undo-id
    role: Key Vault Secrets User
  - vault: undo-new
    principal: {NOBODY}
    role: Key Vault Secrets User
"""
        path, rc, out, err = self.import_file(srv, text)
        self.assertRefused(rc, out, err, f"ERROR: (PrincipalNotFound) {path}: line 24: access[2]: "
                                         "assigning the role: ",
                           "(nothing of the import was kept)", values=("UNDOVALUE",))
        self.assertNotIn("undoing the import failed", err)
        self.assertNoVault(srv, "undo-new")
        self.assertNoSecret(srv, "dev", "undo-in-dev")
        self.assertNotIn("undo-id", identities(srv))
        self.assertEqual(vaults(srv)["dev"]["properties"]["accessPolicies"], dev_policies)
        self.assertEqual(world(srv), before)
        # The name is free again: the same vault can be created.
        r = srv.arm("PUT", "/resourceGroups/coffer-dev/providers/Microsoft.KeyVault/vaults/"
                           "undo-new", {"location": "local",
                                        "properties": {"enableRbacAuthorization": True}})
        self.assertEqual(r.status, 201, r)

    def test_the_undo_keeps_the_permissions_an_access_policy_entry_held_before(self):
        srv = self.srv
        pre = self.run_identity("keep-id", "rg-keep")
        pid = pre["principalId"]
        r = srv.arm("PUT", "/resourceGroups/coffer-dev/providers/Microsoft.KeyVault/vaults/dev/"
                           "accessPolicies/add",
                    {"properties": {"accessPolicies": [{
                        "tenantId": srv.tenant, "objectId": pid,
                        "permissions": {"secrets": ["get", "list"]}}]}})
        ok(r)
        held = policy_of(vaults(srv)["dev"], pid)
        self.assertEqual(held, {"secrets": ["get", "list"]})
        text = f"""\
identities:
  - name: keep-id
    resourceGroup: rg-keep
access:
  - vault: dev
    principal: keep-id
    permissions: {{secrets: [get]}}
  - vault: dev
    principal: {NOBODY}
    permissions: {{secrets: [get]}}
  - vault: keep-rbac
    principal: {NOBODY}
    role: Key Vault Secrets User
vaults:
  - name: keep-rbac
"""
        _, rc, out, err = self.import_file(srv, text)
        self.assertRefused(rc, out, err, "(PrincipalNotFound)", "access[2]",
                           "(nothing of the import was kept)")
        self.assertNoVault(srv, "keep-rbac")
        self.assertIsNone(policy_of(vaults(srv)["dev"], NOBODY))
        self.assertEqual(policy_of(vaults(srv)["dev"], pid), held,
                         "undoing the import took away permissions the principal had before")

    def test_permissions_for_an_existing_access_policy_vault_the_file_declares_without_model(self):
        # `dev` exists and uses access policies; the file lists it (to add a secret) without
        # repeating enableRbacAuthorization, which "is not compared for an existing vault".
        srv = self.srv
        text = f"""\
vaults:
  - name: dev
    secrets:
      - name: model-secret
        value: MODELVALUE
identities:
  - name: model-id
access:
  - vault: dev
    principal: model-id
    permissions: {{secrets: [get]}}
"""
        _, rc, out, err = self.import_file(srv, text)
        self.assertEqual(rc, 0, "an access-policy entry for an existing access-policy vault "
                                f"that the file declares without its model was refused: {err}")
        pid = identities(srv)["model-id"]["properties"]["principalId"]
        self.assertEqual(policy_of(vaults(srv)["dev"], pid), {"secrets": ["get"]})
        self.assertEqual(ok(srv.kv("GET", "/secrets/model-secret"))["value"], "MODELVALUE")

    def run_identity(self, name, rg):
        return self.srv.coffer_json("identity", "create", "-n", name, "-g", rg)

    def test_a_successful_import_maps_app_ids_and_takes_the_largest_value(self):
        srv = self.srv
        sp = srv.coffer_json("ad", "sp", "create-for-rbac", "--name", "seed-import-sp")
        token = srv.token_response(srv.vault_resource, sp["appId"], sp["password"])
        sp_oid = jwt_parts(ok(token)["access_token"])[1]["oid"]
        largest = "L" * 25600
        text = f"""\
vaults:
  - name: ok-import
    resourceGroup: rg-import
    secrets:
      - name: largest
        value: {largest}
      - name: two
        versions:
          - value: one
          - value: two
access:
  - vault: ok-import
    principal: {sp['appId']}
    role: Key Vault Secrets User
"""
        _, rc, out, err = self.import_file(srv, text)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {
            "vaults": {"created": ["ok-import"], "existing": []}, "secrets": 2,
            "versions": 3, "identitiesCreated": 0, "access": 1})
        self.assertEqual(ok(srv.kv("GET", "/secrets/largest", vault="ok-import"))["value"],
                         largest)
        at = assignments_at(srv, vault_id(srv, "rg-import", "ok-import"))
        self.assertEqual([(a["principalId"], a["roleDefinitionId"].rsplit("/", 1)[1])
                          for a in at], [(sp_oid, SECRETS_USER)])
        # The same file again: its secrets exist now.
        _, rc, out, err = self.import_file(srv, text)
        self.assertRefused(rc, out, err, "vaults[0].secrets[0] (largest): the secret exists "
                                         "already in vault 'ok-import'", values=(largest[:40],))
        self.assertEqual(len(versions(srv, "ok-import", "two")), 2)


# ---- 4. bad input ------------------------------------------------------------------------------

def bad_cases():
    """(label, file text, [expected parts of stderr; {path} is the file], values never shown).
    Parser errors name the file; check errors (made against the server) name line and entry."""
    big = "OVERSIZE" + "o" * 25600
    huge = "HUGEVALUE" * ((17 << 20) // 9)
    tail = "identities:\n  - name: bad-input-id\n"
    return [
        ("malformed YAML",
         "vaults:\n  - name: bad-yaml\n    secrets: [\n      {name: a, value: MARK1}\n",
         ["{path}: malformed YAML at line "], ["MARK1"]),
        ("unknown key",
         "vaults:\n  - name: typo-vault\n    secrets:\n      - name: api-key\n"
         "        value: MARK2\n      - name: db-password\n        valeu: MARK2b\n" + tail,
         ['{path}: line 6: vaults[0].secrets[1] (db-password): unknown key "valeu"'],
         ["MARK2"]),
        ("duplicate vault",
         "vaults:\n  - name: dup-vault\n    secrets:\n      - name: a\n        value: MARK3\n"
         "  - name: DUP-Vault\n" + tail,
         ["{path}: line 6: vaults[1] (DUP-Vault): the vault is named twice "
          "(also at line 2: vaults[0] (dup-vault))"], ["MARK3"]),
        ("duplicate secret",
         "vaults:\n  - name: twice-vault\n    secrets:\n      - name: same\n"
         "        value: MARK4\n      - name: SAME\n        value: MARK4b\n" + tail,
         ["{path}: line 6: vaults[0].secrets[1] (SAME): the secret is named twice in vault "
          "'twice-vault'"], ["MARK4"]),
        ("bad vault name",
         "vaults:\n  - name: fine-vault\n    secrets:\n      - name: a\n        value: MARK5\n"
         "  - name: bad--name\n" + tail,
         ["{path}: line 6: vaults[1]: The vault name 'bad--name' is invalid"], ["MARK5"]),
        ("value over 25600 bytes",
         f"vaults:\n  - name: big-vault\n    secrets:\n      - name: big-value\n"
         f"        value: {big}\n" + tail,
         ["{path}: line 4: vaults[0].secrets[0] (big-value): value is longer than 25600 bytes"],
         ["OVERSIZE", "ooooooooooo"]),
        ("unknown placeholder",
         "vaults:\n  - name: ph-vault\n    secrets:\n      - name: placeholder\n"
         "        value: MARK6-${hostname}-MARK6\n" + tail,
         ['{path}: line 4: vaults[0].secrets[0] (placeholder): value: unknown placeholder '
          '"${hostname}"'], ["MARK6"]),
        ("unclosed placeholder",
         "vaults:\n  - name: ph-vault\n    secrets:\n      - name: open\n"
         "        value: MARK7-${port\n" + tail,
         ['{path}: line 4: vaults[0].secrets[0] (open): value: a placeholder "${" is not closed'],
         ["MARK7"]),
        ("bad time",
         "vaults:\n  - name: time-vault\n    secrets:\n      - name: when\n        versions:\n"
         "          - value: MARK8\n          - value: MARK8b\n            expires: next tuesday\n"
         + tail,
         ["{path}: line 7: vaults[0].secrets[0].versions[1] (when): expires must be a time"],
         ["MARK8"]),
        ("retention out of range",
         "vaults:\n  - name: short-vault\n    softDeleteRetentionInDays: 5\n    secrets:\n"
         "      - name: a\n        value: MARK9\n" + tail,
         ["{path}: line 2: vaults[0] (short-vault): softDeleteRetentionInDays must be a whole "
          "number from 7 to 90"], ["MARK9"]),
        ("versions and value together",
         "vaults:\n  - name: both-vault\n    secrets:\n      - name: both\n        value: MARK10\n"
         "        versions:\n          - value: MARK10b\n" + tail,
         ["{path}: line 4: vaults[0].secrets[0] (both): give either versions or value"],
         ["MARK10"]),
        ("role on an access-policy vault",
         "vaults:\n  - name: ap-vault\n    enableRbacAuthorization: false\n    secrets:\n"
         "      - name: a\n        value: MARK11\n" + tail +
         "access:\n  - vault: ap-vault\n    principal: bad-input-id\n"
         "    role: Key Vault Secrets User\n",
         ["{path}: line 10: access[0]: vault 'ap-vault' uses access policies"], ["MARK11"]),
        ("permissions on an RBAC vault",
         "vaults:\n  - name: rbac-vault\n    secrets:\n      - name: a\n        value: MARK12\n"
         + tail + "access:\n  - vault: rbac-vault\n    principal: bad-input-id\n"
         "    permissions: {secrets: [get]}\n",
         ["{path}: line 9: access[0]: vault 'rbac-vault' uses Azure RBAC"], ["MARK12"]),
        ("unknown permission",
         "vaults:\n  - name: perm-vault\n    enableRbacAuthorization: false\n" + tail +
         "access:\n  - vault: perm-vault\n    principal: bad-input-id\n"
         "    permissions: {secrets: [get, peek]}\n",
         ['{path}: line 7: access[0]: permissions.secrets: Key Vault has no permission "peek"'],
         []),
        ("principal that is no identity and no GUID",
         "vaults:\n  - name: who-vault\n    secrets:\n      - name: a\n        value: MARK13\n"
         + tail + "access:\n  - vault: who-vault\n    principal: nobody-at-all\n"
         "    role: Key Vault Secrets User\n",
         ['{path}: line 9: access[0]: principal "nobody-at-all" is neither an identity of this '
          "file nor an object id or app id"], ["MARK13"]),
        ("file over 16 MiB",
         f"vaults:\n  - name: huge-vault\n    secrets:\n      - name: huge\n"
         f"        value: {huge}\n",
         ["{path}: YAML is ", "more than the limit of 16777216"], ["HUGEVALUE"]),
        # Checked against the server, before anything is made.
        ("unknown role",
         "vaults:\n  - name: role-vault\n    secrets:\n      - name: a\n        value: MARK14\n"
         + tail + "access:\n  - vault: role-vault\n    principal: bad-input-id\n"
         "    role: Key Vault Secret Wizard\n",
         ["ERROR: (RoleDefinitionDoesNotExist) {path}: line 9: access[0]: role 'Key Vault Secret Wizard' "
          "does not exist"], ["MARK14"]),
        ("access to a vault neither existing nor declared",
         "vaults:\n  - name: here-vault\n    secrets:\n      - name: a\n        value: MARK15\n"
         + tail + "access:\n  - vault: nowhere-vault\n    principal: bad-input-id\n"
         "    role: Key Vault Secrets User\n",
         ["ERROR: (VaultNotFound) {path}: line 9: access[0]: vault 'nowhere-vault' does not exist and "
          "the file does not declare it"], ["MARK15"]),
        ("a deleted vault of a declared name",
         "vaults:\n  - name: fresh-vault\n    secrets:\n      - name: a\n        value: MARK16\n"
         "  - name: gone-vault\n" + tail,
         ["line 6: vaults[1] (gone-vault): a deleted vault of this name exists"], ["MARK16"]),
        ("an existing vault with another retention",
         "vaults:\n  - name: other-vault\n    secrets:\n      - name: a\n        value: MARK17\n"
         "  - name: dev\n    softDeleteRetentionInDays: 30\n" + tail,
         ["line 6: vaults[1] (dev): the vault exists with softDeleteRetentionInDays 7"],
         ["MARK17"]),
        ("an existing vault with another authorization model",
         "vaults:\n  - name: dev\n    enableRbacAuthorization: true\n    secrets:\n"
         "      - name: never-made\n        value: MARK18\n" + tail,
         ["line 2: vaults[0] (dev): the vault exists with enableRbacAuthorization false"],
         ["MARK18"]),
        ("an existing vault in another resource group",
         "vaults:\n  - name: dev\n    resourceGroup: rg-elsewhere\n" + tail,
         ["line 2: vaults[0] (dev): the vault exists in resource group 'coffer-dev', "
          "not 'rg-elsewhere'"], []),
    ]


class BadInputTests(SeedCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = srv = launch_server()
        cls.addClassCleanup(srv.cleanup)
        # A deleted vault, and a vault with a secret for an export without values.
        for name in ("gone-vault", "noval-vault"):
            ok(srv.arm("PUT", f"/resourceGroups/rg-bad/providers/Microsoft.KeyVault/vaults/{name}",
                       {"location": "local", "properties": {"enableRbacAuthorization": True}}),
               201)
        ok(srv.arm("DELETE", "/resourceGroups/rg-bad/providers/Microsoft.KeyVault/vaults/"
                             "gone-vault"), 200)
        for v in ("NOVALUE-old", "NOVALUE-current"):
            ok(srv.kv("PUT", "/secrets/exported", {"value": v}, vault="noval-vault"))

    def test_bad_files_are_refused_naming_file_line_and_entry_and_change_nothing(self):
        srv = self.srv
        before = world(srv)
        for i, (label, text, expected, values) in enumerate(bad_cases()):
            with self.subTest(label):
                path, rc, out, err = self.import_file(srv, text, f"bad-{i}.yaml")
                self.assertRefused(rc, out, err, *[e.replace("{path}", path) for e in expected],
                                   values=values)
                self.assertTrue(err.startswith("ERROR: "), err)
                self.assertEqual(world(srv), before)

    def test_refusals_found_against_the_server_carry_an_error_code(self):
        # docs/cli.md: a refused command prints `ERROR: (<code>) <message>`.
        cases = {label: text for label, text, _, _ in bad_cases()}
        for label in ("unknown role", "access to a vault neither existing nor declared",
                      "a deleted vault of a declared name",
                      "an existing vault with another retention",
                      "an existing vault with another authorization model",
                      "an existing vault in another resource group"):
            with self.subTest(label):
                _, rc, out, err = self.import_file(self.srv, cases[label], "coded.yaml")
                self.assertEqual(rc, 1, err)
                self.assertRegex(err, r"^ERROR: \([A-Za-z]+\) \S+/coded\.yaml: line \d+: ")

    def test_an_export_without_values_is_refused_as_having_no_value(self):
        srv = self.srv
        path = os.path.join(srv.root, "novalues.yaml")
        rc, out, err = srv.cli("export", "--file", path, "--name", "noval-vault")
        self.assertEqual(rc, 0, err)
        self.assertIs(json.loads(out)["values"], False)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        text = read_text(path)
        self.assertIn('- name: "exported"', text)
        self.assertNotIn("value:", text)
        self.assertNotIn("NOVALUE", text)
        before = world(srv)
        rc, out, err = srv.cli("import", "--file", path)
        self.assertRefused(rc, out, err, "(BadParameter)", "(exported): version 1 has no value",
                           values=("NOVALUE",))
        self.assertRegex(err, r"line \d+: vaults\[0\]\.secrets\[0\] \(exported\): version 1 "
                              r"has no value")
        self.assertEqual(world(srv), before)


# ---- 5. export -> import round trip ------------------------------------------------------------

SPECIAL = ' leading space, "quotes", back\\slash, tab\tand\nnew line, ${host} ${now}, é ✓ 🙂 '


class RoundTripTests(SeedCase):
    """Server A gets a world through the CLI and the API; its export goes into server B."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = a = launch_server()
        cls.addClassCleanup(a.cleanup)
        cls.b = b = launch_server()
        cls.addClassCleanup(b.cleanup)

        def cli(*args):
            rc, out, err = a.cli(*args)
            if rc != 0:
                raise AssertionError(f"coffer keyvault {args}: {err}")
            return json.loads(out) if out.strip() else None

        cli("create", "--name", "rt-rbac", "-g", "rg-rt", "--retention-days", "7",
            "--tags", "team=a", "tier=gold")
        cli("create", "--name", "rt-policies", "-g", "rg-rt", "--enable-rbac-authorization",
            "false", "--enable-purge-protection")
        cli("create", "--name", "rt-disabled", "-g", "rg-rt")
        cls.app = a.coffer_json("identity", "create", "-n", "rt-app", "-g", "rg-rt", "--tags",
                                "owner=rt")
        pid = cls.app["principalId"]
        scope = vault_id(a, "rg-rt", "rt-rbac")
        ok(a.arm_raw("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/"
                            f"6d8b1e62-4c57-4a57-9d2b-6a1d0e8f3c11?api-version={AUTHZ_API}",
                     {"properties": {"roleDefinitionId": f"/subscriptions/{a.subscription}/"
                                     f"providers/Microsoft.Authorization/roleDefinitions/"
                                     f"{SECRETS_OFFICER}", "principalId": pid}}), 201)
        cli("set-policy", "-n", "rt-policies", "-g", "rg-rt", "--object-id", pid,
            "--secret-permissions", "get", "list", "--certificate-permissions", "get")

        # Versions made in three different seconds (Key Vault orders versions by `created`
        # alone, to the second), each with its own tag.
        cls.multi = [f"m{i}" for i in range(1, 4)]
        for i, v in enumerate(cls.multi):
            if i:
                second = int(time.time())
                while int(time.time()) == second:
                    time.sleep(0.05)
            ok(a.kv("PUT", "/secrets/multi", {"value": v, "tags": {"n": str(i)},
                                              "contentType": f"text/v{i}"}, vault="rt-rbac"))
        cli("secret", "set", "--vault-name", "rt-rbac", "--name", "attrs", "--value", "a-value",
            "--content-type", "application/json", "--tags", "a=1", "b=two",
            "--not-before", "2025-01-01T00:00:00Z", "--expires", "2031-06-30T12:00:00Z")
        ok(a.kv("PUT", "/secrets/special", {"value": SPECIAL}, vault="rt-rbac"))
        ok(a.kv("PUT", "/secrets/plain", {"value": "plain-value"}, vault="rt-policies"))
        policy = cli("certificate", "get-default-policy")
        policy["x509CertificateProperties"]["subject"] = "CN=rt.example"
        op = cli("certificate", "create", "--vault-name", "rt-policies", "--name", "rt-cert",
                 "--policy", json.dumps(policy))
        if op.get("status") != "completed":
            raise AssertionError(f"certificate create: {op}")
        first = ok(a.kv("PUT", "/secrets/toggled", {"value": "DISABLED-d1"}, vault="rt-disabled"))
        ok(a.kv("PUT", "/secrets/toggled", {"value": "d2"}, vault="rt-disabled"))
        ok(a.kv("PATCH", "/secrets/toggled/" + first["id"].rsplit("/", 1)[1],
                {"attributes": {"enabled": False}}, vault="rt-disabled"))

        cls.files = {}
        for key, extra in (("all", ["--include-values"]),
                           ("two", ["--include-values", "--name", "rt-rbac", "--name",
                                    "rt-policies"]),
                           ("novalues", []),
                           ("one", ["--include-values", "--name", "rt-rbac"])):
            path = os.path.join(a.root, f"export-{key}.yaml")
            if key == "all":
                write(path, "old content\n", mode=0o644)  # replaced, and owner-only after
            rc, out, err = a.cli("export", "--file", path, *extra)
            if rc != 0:
                raise AssertionError(f"export {extra}: {err}")
            cls.files[key] = (path, json.loads(out), read_text(path))

        # Into B: the whole export first (refused: a disabled version has no value), then the
        # two vaults without one.
        cls.b_before = world(b)
        cls.refused = b.cli("import", "--file", cls.files["all"][0])
        cls.b_after_refusal = world(b)
        cls.imported = b.cli("import", "--file", cls.files["two"][0])

    def test_export_files_are_owner_only_and_hold_values_only_when_asked(self):
        for key, (path, summary, text) in self.files.items():
            with self.subTest(key):
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
                self.assertEqual(summary["file"], path)
                self.assertEqual(summary["values"], key != "novalues")
        _, summary, text = self.files["novalues"]
        self.assertNotIn("value:", text)
        for v in self.multi + ["a-value", "plain-value", "d2"]:
            self.assertNotIn(f'"{v}"', text)
        _, summary, text = self.files["all"]
        self.assertEqual((summary["vaults"], summary["identities"]), (4, 1))
        self.assertIn('value: "plain-value"', text)
        self.assertIn('value: "m3"', text)

    def test_export_leaves_out_certificate_secrets_and_disabled_values(self):
        _, summary, text = self.files["all"]
        self.assertIn('name: "plain"', text)
        self.assertNotIn("rt-cert", text)
        self.assertNotIn("DISABLED-d1", text)
        m = re.search(r'- name: "toggled"\n\s+versions:\n((?:\s{10}.*\n)+)', text)
        self.assertIsNotNone(m, text)
        self.assertEqual([l.strip() for l in m.group(1).splitlines()],
                         ["- enabled: false", '- value: "d2"'])

    def test_export_lists_versions_oldest_first(self):
        _, _, text = self.files["two"]
        m = re.search(r'- name: "multi"\n\s+versions:\n((?:\s{10}.*\n)+)', text)
        self.assertIsNotNone(m, text)
        values = re.findall(r'value: "(m\d)"', m.group(1))
        self.assertEqual(values, self.multi,
                         "the export lists the versions of 'multi' out of order")

    def test_a_file_with_a_disabled_version_is_refused_and_changes_nothing(self):
        rc, out, err = self.refused
        self.assertRefused(rc, out, err, "(toggled): version 1 has no value",
                           values=("plain-value", "a-value", "m1", "d2"))
        self.assertEqual(self.b_after_refusal, self.b_before)

    def test_import_into_a_fresh_server_recreates_the_world(self):
        a, b = self.a, self.b
        rc, out, err = self.imported
        self.assertEqual(rc, 0, err)
        summary = json.loads(out)
        self.assertEqual(sorted(summary["vaults"]["created"]), ["rt-policies", "rt-rbac"])
        self.assertEqual(summary["identitiesCreated"], 1)

        va, vb = vaults(a), vaults(b)
        for name in ("rt-rbac", "rt-policies"):
            with self.subTest(name):
                pa, pb = va[name]["properties"], vb[name]["properties"]
                self.assertEqual(vb[name]["id"], vault_id(b, "rg-rt", name))
                self.assertEqual(vb[name]["location"], va[name]["location"])
                self.assertEqual(vb[name]["tags"], va[name]["tags"])
                for p in ("enableRbacAuthorization", "softDeleteRetentionInDays"):
                    self.assertEqual(pb[p], pa[p], p)
                self.assertEqual(pb.get("enablePurgeProtection", False),
                                 pa.get("enablePurgeProtection", False))
                self.assertEqual(secret_names(b, name), secret_names(a, name))
                for s in secret_names(a, name):
                    self.assertEqual(version_details(b, name, s), version_details(a, name, s), s)
        self.assertEqual(vb["rt-rbac"]["tags"], {"team": "a", "tier": "gold"})
        self.assertIs(vb["rt-policies"]["properties"]["enablePurgeProtection"], True)
        self.assertEqual(secret_names(b, "rt-policies"), ["plain"])
        self.assertEqual(ok(b.kv("GET", "/secrets/special", vault="rt-rbac"))["value"], SPECIAL)
        details, count, _, current = version_details(b, "rt-rbac", "multi")
        self.assertEqual((count, current), (3, "m3"))
        self.assertEqual(details["m3"], ("text/v2", {"n": "2"}, None, None))
        attrs, _, _, _ = version_details(b, "rt-rbac", "attrs")
        self.assertEqual(attrs["a-value"], ("application/json", {"a": "1", "b": "two"},
                                            calendar.timegm((2025, 1, 1, 0, 0, 0)),
                                            calendar.timegm((2031, 6, 30, 12, 0, 0))))
        self.assertNotIn("rt-disabled", vb)

        app = identities(b)["rt-app"]
        self.assertIn("/resourcegroups/rg-rt/", app["id"].lower())
        self.assertEqual(app["tags"], {"owner": "rt"})
        pid = app["properties"]["principalId"]
        at = assignments_at(b, vault_id(b, "rg-rt", "rt-rbac"))
        self.assertEqual([(x["principalId"], x["roleDefinitionId"].rsplit("/", 1)[1])
                          for x in at], [(pid, SECRETS_OFFICER)])
        self.assertEqual(policy_of(vb["rt-policies"], pid),
                         {"secrets": ["get", "list"], "certificates": ["get"]})

    def test_name_limits_the_export_and_an_unknown_name_fails(self):
        _, summary, text = self.files["one"]
        self.assertEqual((summary["vaults"], summary["secrets"]), (1, 3))
        self.assertIn('- name: "rt-rbac"', text)
        self.assertNotIn("rt-policies", text)
        self.assertNotIn('"dev"', text)
        self.assertIn('principal: "rt-app"', text)
        self.assertIn('role: "Key Vault Secrets Officer"', text)
        path = os.path.join(self.a.root, "unknown.yaml")
        rc, out, err = self.a.cli("export", "--file", path, "--name", "rt-rbac",
                                  "--name", "no-such-vault")
        self.assertEqual(rc, 1, out)
        self.assertIn("(VaultNotFound) vault 'no-such-vault' not found", err)
        self.assertFalse(os.path.exists(path))


# ---- 6. usage ------------------------------------------------------------------------------------

class SeedUsageTests(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="coffer-it-seed-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.seed = write(os.path.join(self.root, "seed.yaml"), "vaults: []\n")

    def test_seed_without_dev_is_a_usage_error(self):
        data = os.path.join(self.root, "data")
        p = subprocess.run([coffer_binary(), "server", "--data-dir", data, "--port",
                            str(free_port()), "--seed", self.seed], capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 2, err)
        self.assertIn("--seed is for dev servers (--dev)", err)
        self.assertFalse(os.path.exists(data), "a usage error created the data directory")

    def test_an_unreadable_seed_file_stops_the_dev_server(self):
        missing = os.path.join(self.root, "missing.yaml")
        data = os.path.join(self.root, "data")
        with open(os.path.join(self.root, "out"), "wb") as out, \
                open(os.path.join(self.root, "err"), "wb") as err:
            proc = subprocess.Popen([coffer_binary(), "server", "--dev", "--data-dir", data,
                                     "--port", str(free_port()), "--seed", missing],
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            self.fail("the dev server kept running without its seed file")
        text = read_text(os.path.join(self.root, "err"))
        self.assertEqual(proc.returncode, 1, text)
        self.assertIn("coffer server: --seed ", text)
        self.assertIn(missing, text)


if __name__ == "__main__":
    unittest.main()
