"""Workload resources (web apps, virtual machines) and their managed identities, through raw
HTTP against the real server:

* lifecycle: a system-assigned identity is born with its resource and dies with it (tokens issued
  before stop working at once), a type change drops it, a user-assigned identity outlives the
  workloads it is assigned to, PATCH merges user-assigned identities, and regenerating the
  identity header revokes the old one;
* the App Service endpoint (/msi/token) refuses bad headers, identities that are not the
  workload's, ambiguous selections and bad queries with an OAuth2 error body and no token;
* `coffer agent --imds` serves only well-formed IMDS requests sent to the Host names IMDS is
  reached by;
* federated assertions from a local OIDC issuer (oidc_issuer.py): a good one gets a token, every
  kind of bad one gets 401 invalid_client (AADSTS70021) and nothing is issued;
* ARM refuses bad identity blocks, names, bodies and federated identity credentials and changes
  nothing.
"""

import hashlib
import hmac
import http.client
import json
import os
import select
import subprocess
import time
import urllib.parse
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from harness import (CofferServer, stop_process, ServerTestCase, b64url, b64url_decode, coffer_binary,
                     jwt_parts, read_text)
from oidc_issuer import OidcIssuer

SITES = "Microsoft.Web/sites"
VMS = "Microsoft.Compute/virtualMachines"
UAIS = "Microsoft.ManagedIdentity/userAssignedIdentities"
API = {SITES: "2023-12-01", VMS: "2024-07-01", UAIS: "2023-01-31"}
MI_API = "2019-08-01"
IMDS_API = "2018-02-01"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AGENT_READY_TIMEOUT_S = 20.0
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class WorkloadTestCase(ServerTestCase):
    """Helpers for workloads, identities and their token endpoints."""

    # ---- CLI ---------------------------------------------------------------------------------

    def coffer(self, *args, expect=0):
        rc, out, err = self.run_coffer(*args)
        self.assertEqual(rc, expect, f"coffer {args}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if expect == 0 and out.strip().startswith(("{", "[")) else (
            out if expect == 0 else err)

    @classmethod
    def new_identity(cls, name, rg):
        return cls.coffer_json("identity", "create", "-n", name, "-g", rg)

    @classmethod
    def grant(cls, object_id):
        cls.coffer_json("keyvault", "set-policy", "--name", "dev", "--object-id", object_id,
                        "--secret-permissions", "get", "list")

    # ---- ARM ---------------------------------------------------------------------------------

    @classmethod
    def workload(cls, method, rg, name, body=None, kind=SITES, action=""):
        path = f"/resourceGroups/{rg}/providers/{kind}/{name}" + (f"/{action}" if action else "")
        return cls.srv.arm(method, path, body, api_version=API[kind])

    @classmethod
    def put_workload(cls, rg, name, identity=None, kind=SITES):
        body = {"location": "local"}
        if identity is not None:
            body["identity"] = identity
        r = cls.workload("PUT", rg, name, body, kind)
        if r.status not in (200, 201):
            raise AssertionError(f"PUT {kind}/{name}: {r!r}")
        return r.json()

    @classmethod
    def endpoint(cls, rg, name, kind=SITES):
        """(identityEndpoint, identityHeader) of a workload."""
        r = cls.workload("POST", rg, name, kind=kind, action="listIdentityEndpoint")
        if r.status != 200:
            raise AssertionError(f"listIdentityEndpoint of {name}: {r!r}")
        return r.json()["identityEndpoint"], r.json()["identityHeader"]

    @staticmethod
    def user_assigned(identity_ids):
        return {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in identity_ids}}

    # ---- the App Service token endpoint ------------------------------------------------------

    def mi(self, header, query=None, api_version=MI_API, resource=None, method="GET"):
        """GET /msi/token as App Service clients send it; header None sends no header."""
        q = {}
        if api_version is not None:
            q["api-version"] = api_version
        if resource != "":
            q["resource"] = resource or self.srv.vault_resource
        q.update(query or {})
        headers = {} if header is None else {"X-IDENTITY-HEADER": header}
        return self.srv.request(method, "/msi/token?" + urllib.parse.urlencode(q),
                                headers=headers, host="localhost", auth=False)

    def mi_token(self, header, **query):
        r = self.mi(header, query)
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def oid(self, token):
        return jwt_parts(token)[1]["oid"]

    def vault_status(self, token):
        r = self.srv.kv("GET", "/secrets", token=token)
        if r.status == 401:
            self.assertIn("www-authenticate", r.headers)
        return r.status

    def assertOAuthError(self, r, status, error, msg=""):
        """An OAuth2 error body {error, error_description} with status, and no token."""
        self.assertEqual(r.status, status, f"{msg} {r!r}")
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                        f"{msg} {r!r} {r.headers}")
        body = r.json()
        self.assertEqual(body.get("error"), error, f"{msg} {r!r}")
        self.assertIsInstance(body.get("error_description"), str, f"{msg} {r!r}")
        self.assertTrue(body["error_description"], f"{msg} {r!r}")
        self.assertNotIn("access_token", body, msg)
        return body


class WorkloadLifecycleTests(WorkloadTestCase):

    def test_system_identity_is_created_with_the_web_app_and_deleted_with_it(self):
        created = self.put_workload("rg-life", "app-life", {"type": "SystemAssigned"})
        site_id = (f"/subscriptions/{self.srv.subscription}/resourceGroups/rg-life/providers/"
                   f"{SITES}/app-life")
        self.assertEqual(created["id"], site_id)
        identity = created["identity"]
        self.assertEqual(identity["type"], "SystemAssigned")
        self.assertEqual(identity["tenantId"], self.srv.tenant)
        self.assertRegex(identity["principalId"], UUID_RE)
        self.assertNotIn("userAssignedIdentities", identity)
        principal = identity["principalId"]

        url, header = self.endpoint("rg-life", "app-life")
        self.assertEqual(url, f"https://localhost:{self.srv.port}/msi/token")
        before = int(time.time())
        r = self.mi(header)
        self.assertEqual(r.status, 200, r)
        self.assertIn("no-store", r.headers.get("cache-control", ""))
        body = r.json()
        self.assertEqual(set(body), {"access_token", "client_id", "expires_in", "expires_on",
                                     "ext_expires_in", "not_before", "resource", "token_type"})
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["resource"], self.srv.vault_resource)
        for field in ("expires_on", "expires_in", "ext_expires_in", "not_before"):
            self.assertIsInstance(body[field], str, field)
            self.assertRegex(body[field], r"^[0-9]+$", field)
        self.assertGreater(int(body["expires_on"]), before + 300)
        self.assertLessEqual(int(body["expires_on"]),
                             int(time.time()) + int(body["expires_in"]) + 1)
        claims = jwt_parts(body["access_token"])[1]
        self.assertEqual(claims["oid"], principal)
        self.assertEqual(claims["appid"], body["client_id"])
        self.assertEqual(claims["tid"], self.srv.tenant)
        self.assertEqual(claims["xms_mirid"], site_id)
        self.assertEqual(claims["idtyp"], "app")
        self.assertEqual(claims["aud"], self.srv.vault_resource)
        token = body["access_token"]
        self.assertEqual(self.vault_status(token), 403, "no access policy yet")
        self.grant(principal)
        self.assertEqual(self.vault_status(token), 200)

        self.coffer("webapp", "delete", "-n", "app-life", "-g", "rg-life")
        self.assertEqual(self.vault_status(token), 401, "the identity's token outlived it")
        self.assertOAuthError(self.mi(header), 401, "invalid_client")
        self.assertEqual(self.workload("GET", "rg-life", "app-life").status, 404)
        self.assertEqual(self.workload("POST", "rg-life", "app-life",
                                       action="listIdentityEndpoint").status, 404)

        # The same name again is a new resource with a new identity.
        again = self.put_workload("rg-life", "app-life", {"type": "SystemAssigned"})
        self.assertNotEqual(again["identity"]["principalId"], principal)
        self.assertOAuthError(self.mi(header), 401, "invalid_client")
        self.assertEqual(self.vault_status(token), 401)
        _, new_header = self.endpoint("rg-life", "app-life")
        self.assertNotEqual(new_header, header)
        self.assertEqual(self.oid(self.mi_token(new_header)), again["identity"]["principalId"])

    def test_virtual_machine_system_identity_through_the_cli(self):
        vm = self.coffer("vm", "create", "-n", "vm-life", "-g", "rg-life", "--assign-identity",
                         "[system]")
        self.assertEqual(vm["type"], VMS)
        self.assertEqual(vm["resourceGroup"], "rg-life")
        principal = vm["identity"]["principalId"]
        env_text = self.coffer("vm", "identity", "endpoint", "-n", "vm-life", "-g", "rg-life",
                               "--env")
        lines = env_text.splitlines()
        self.assertEqual(len(lines), 2, env_text)
        url, header = self.endpoint("rg-life", "vm-life", VMS)
        self.assertEqual(lines, [f"IDENTITY_ENDPOINT={url}", f"IDENTITY_HEADER={header}"])
        token = self.mi_token(header)
        claims = jwt_parts(token)[1]
        self.assertEqual(claims["oid"], principal)
        self.assertEqual(claims["xms_mirid"], vm["id"])
        self.grant(principal)
        self.assertEqual(self.vault_status(token), 200)
        shown = self.coffer("vm", "identity", "show", "-n", "vm-life", "-g", "rg-life")
        self.assertEqual(shown["principalId"], principal)

        removed = self.coffer("vm", "identity", "remove", "-n", "vm-life", "-g", "rg-life")
        self.assertEqual(removed["type"], "None")
        self.assertEqual(self.vault_status(token), 401)
        self.assertOAuthError(self.mi(header), 400, "invalid_request")
        assigned = self.coffer("vm", "identity", "assign", "-n", "vm-life", "-g", "rg-life")
        self.assertNotEqual(assigned["principalId"], principal)
        self.assertEqual(self.oid(self.mi_token(header)), assigned["principalId"])
        self.coffer("vm", "delete", "-n", "vm-life", "-g", "rg-life")
        self.assertOAuthError(self.mi(header), 401, "invalid_client")

    def test_assign_identity_without_a_value_means_system(self):
        # `--assign-identity` alone assigns the system identity, as in az.
        for kind, name in (("webapp", "app-bare"), ("vm", "vm-bare")):
            with self.subTest(kind):
                created = self.coffer(kind, "create", "-n", name, "-g", "rg-life",
                                      "--assign-identity")
                self.assertEqual(created["identity"]["type"], "SystemAssigned")

    def test_changing_the_type_drops_the_system_identity(self):
        uai = self.new_identity("uai-switch", "rg-switch")
        created = self.put_workload("rg-switch", "app-switch", {
            "type": "SystemAssigned, UserAssigned",
            "userAssignedIdentities": {uai["id"]: {}}})
        self.assertEqual(created["identity"]["type"], "SystemAssigned, UserAssigned")
        self.assertEqual(created["identity"]["userAssignedIdentities"][uai["id"]],
                         {"principalId": uai["principalId"], "clientId": uai["clientId"]})
        system = created["identity"]["principalId"]
        _, header = self.endpoint("rg-switch", "app-switch")
        token = self.mi_token(header)
        self.assertEqual(self.oid(token), system, "the system identity is the default")
        self.grant(system)
        self.assertEqual(self.vault_status(token), 200)

        changed = self.put_workload("rg-switch", "app-switch", self.user_assigned([uai["id"]]))
        self.assertEqual(changed["identity"]["type"], "UserAssigned")
        self.assertNotIn("principalId", changed["identity"])
        self.assertEqual(self.vault_status(token), 401, "the dropped identity's token works")
        self.assertOAuthError(self.mi(header, {"principal_id": system}), 400, "invalid_request")
        self.assertEqual(self.oid(self.mi_token(header)), uai["principalId"],
                         "the only user-assigned identity is now the default")

        back = self.workload("PATCH", "rg-switch", "app-switch",
                             {"identity": {"type": "SystemAssigned, UserAssigned"}})
        self.assertEqual(back.status, 200, back)
        second = back.json()["identity"]["principalId"]
        self.assertNotEqual(second, system, "a dropped system identity is never revived")
        self.assertEqual(list(back.json()["identity"]["userAssignedIdentities"]), [uai["id"]])
        token2 = self.mi_token(header)
        self.assertEqual(self.oid(token2), second)

        none = self.put_workload("rg-switch", "app-switch", {"type": "None"})
        self.assertEqual(none["identity"], {"type": "None"})
        self.assertEqual(self.vault_status(token2), 401)
        self.assertOAuthError(self.mi(header), 400, "invalid_request")
        self.assertOAuthError(self.mi(header, {"client_id": uai["clientId"]}), 400,
                              "invalid_request")

    def test_a_user_assigned_identity_outlives_the_workloads_it_is_assigned_to(self):
        uai = self.new_identity("uai-shared", "rg-shared")
        self.grant(uai["principalId"])
        self.put_workload("rg-shared", "app-shared", self.user_assigned([uai["id"]]))
        self.put_workload("rg-shared", "vm-shared", self.user_assigned([uai["id"]]), VMS)
        _, app_header = self.endpoint("rg-shared", "app-shared")
        _, vm_header = self.endpoint("rg-shared", "vm-shared", VMS)
        token = self.mi_token(app_header, client_id=uai["clientId"])
        claims = jwt_parts(token)[1]
        self.assertEqual(claims["oid"], uai["principalId"])
        self.assertEqual(claims["xms_mirid"], uai["id"])
        self.assertEqual(self.vault_status(token), 200)

        r = self.workload("DELETE", "rg-shared", "app-shared")
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(self.workload("DELETE", "rg-shared", "app-shared").status, 204)
        self.assertEqual(self.vault_status(token), 200, "a user-assigned identity survives")
        self.assertOAuthError(self.mi(app_header), 401, "invalid_client")
        vm_token = self.mi_token(vm_header, mi_res_id=uai["id"])
        self.assertEqual(self.oid(vm_token), uai["principalId"])
        self.assertEqual(self.vault_status(vm_token), 200)
        shown = self.coffer("identity", "show", "-n", "uai-shared", "-g", "rg-shared")
        self.assertEqual(shown["principalId"], uai["principalId"])
        vm = self.workload("GET", "rg-shared", "vm-shared", kind=VMS).json()
        self.assertEqual(vm["identity"]["userAssignedIdentities"][uai["id"]]["clientId"],
                         uai["clientId"])

        # Deleting the identity itself is what ends it.
        self.coffer("identity", "delete", "-n", "uai-shared", "-g", "rg-shared")
        self.assertEqual(self.vault_status(vm_token), 401)
        self.assertOAuthError(self.mi(vm_header, {"client_id": uai["clientId"]}), 400,
                              "invalid_request")
        self.assertOAuthError(self.mi(vm_header), 400, "invalid_request")

    def test_patch_merges_user_assigned_identities_and_null_removes_one(self):
        one = self.new_identity("uai-merge-1", "rg-merge")
        two = self.new_identity("uai-merge-2", "rg-merge")
        self.put_workload("rg-merge", "app-merge", self.user_assigned([one["id"]]))
        r = self.workload("PATCH", "rg-merge", "app-merge",
                          {"identity": self.user_assigned([two["id"]])})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json()["identity"]["userAssignedIdentities"]),
                         sorted([one["id"], two["id"]]))
        _, header = self.endpoint("rg-merge", "app-merge")
        self.assertOAuthError(self.mi(header), 400, "invalid_request", "two: ambiguous default")
        r = self.workload("PATCH", "rg-merge", "app-merge", {"tags": {"team": "web"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["tags"], {"team": "web"})
        self.assertEqual(len(r.json()["identity"]["userAssignedIdentities"]), 2,
                         "a PATCH without an identity block keeps the identities")
        r = self.workload("PATCH", "rg-merge", "app-merge", {"identity": {
            "type": "UserAssigned", "userAssignedIdentities": {one["id"]: None}}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(list(r.json()["identity"]["userAssignedIdentities"]), [two["id"]])
        self.assertOAuthError(self.mi(header, {"mi_res_id": one["id"]}), 400, "invalid_request")
        self.assertEqual(self.oid(self.mi_token(header, mi_res_id=two["id"])),
                         two["principalId"])
        self.assertEqual(self.oid(self.mi_token(header)), two["principalId"])
        # Removing the last one while keeping the type is refused, and changes nothing.
        r = self.workload("PATCH", "rg-merge", "app-merge", {"identity": {
            "type": "UserAssigned", "userAssignedIdentities": {two["id"]: None}}})
        self.assertErrorBody(r, 400, "InvalidIdentityType")
        self.assertEqual(self.oid(self.mi_token(header)), two["principalId"])

    def test_regenerating_the_identity_header_revokes_the_old_one(self):
        self.put_workload("rg-regen", "app-regen", {"type": "SystemAssigned"})
        url, old = self.endpoint("rg-regen", "app-regen")
        self.mi_token(old)
        r = self.workload("POST", "rg-regen", "app-regen", action="regenerateIdentityHeader")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["identityEndpoint"], url)
        new = r.json()["identityHeader"]
        self.assertNotEqual(new, old)
        self.assertOAuthError(self.mi(old), 401, "invalid_client")
        self.mi_token(new)
        self.assertEqual(self.endpoint("rg-regen", "app-regen"), (url, new))
        out = self.coffer("webapp", "identity", "endpoint", "-n", "app-regen", "-g", "rg-regen",
                          "--regenerate", "--env")
        newest = dict(line.split("=", 1) for line in out.splitlines())["IDENTITY_HEADER"]
        self.assertNotIn(newest, (old, new))
        self.assertOAuthError(self.mi(new), 401, "invalid_client")
        self.assertOAuthError(self.mi(old), 401, "invalid_client")
        self.mi_token(newest)


class ManagedIdentityEndpointBadInputTests(WorkloadTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mine = cls.new_identity("uai-mine", "rg-mi")
        cls.other = cls.new_identity("uai-other", "rg-mi")
        cls.extra = cls.new_identity("uai-extra", "rg-mi")
        both = "SystemAssigned, UserAssigned"
        cls.a = cls.put_workload("rg-mi", "app-a", {
            "type": both, "userAssignedIdentities": {cls.mine["id"]: {}}})
        cls.b = cls.put_workload("rg-mi", "app-b", {
            "type": both, "userAssignedIdentities": {cls.other["id"]: {}}})
        cls.put_workload("rg-mi", "app-multi", cls.user_assigned([cls.mine["id"],
                                                                  cls.extra["id"]]))
        cls.put_workload("rg-mi", "app-none")
        cls.header_a = cls.endpoint("rg-mi", "app-a")[1]
        cls.header_b = cls.endpoint("rg-mi", "app-b")[1]

    def test_the_good_requests_work(self):
        # The baseline the refusals below are measured against.
        self.assertEqual(self.oid(self.mi_token(self.header_a)),
                         self.a["identity"]["principalId"])
        for selector in ({"client_id": self.mine["clientId"]},
                         {"principal_id": self.mine["principalId"]},
                         {"object_id": self.mine["principalId"]},
                         {"mi_res_id": self.mine["id"]}, {"msi_res_id": self.mine["id"]}):
            with self.subTest(selector):
                self.assertEqual(self.oid(self.mi_token(self.header_a, **selector)),
                                 self.mine["principalId"])
        mgmt = self.mi(self.header_a, resource=self.srv.mgmt_resource)
        self.assertEqual(mgmt.status, 200, mgmt)
        self.assertEqual(jwt_parts(mgmt.json()["access_token"])[1]["aud"],
                         self.srv.mgmt_resource)

    def test_missing_wrong_truncated_and_forged_headers_get_401(self):
        a, b = self.header_a, self.header_b
        uid_a, mac_a = a.split(".", 1)
        uid_b, mac_b = b.split(".", 1)
        flipped = mac_a[:-1] + ("A" if mac_a[-1] != "A" else "B")
        cases = {
            "missing": None,
            "empty": "",
            "garbage": "let-me-in",
            "truncated by one": a[:-1],
            "only the uid": uid_a,
            "uid and dot": uid_a + ".",
            "one byte longer": a + "A",
            "last byte changed": uid_a + "." + flipped,
            "uid of a, mac of b": uid_a + "." + mac_b,
            "uid of b, mac of a": uid_b + "." + mac_a,
            "unknown workload": str(uuid.uuid4()) + "." + mac_a,
            "upper-case uid": uid_a.upper() + "." + mac_a,
            "very long": a + "A" * 4000,
            "the admin's secret": self.srv.env["AZURE_CLIENT_SECRET"],
        }
        for name, header in cases.items():
            with self.subTest(name):
                self.assertOAuthError(self.mi(header), 401, "invalid_client", name)
        self.mi_token(a)

    def test_an_identity_that_is_not_the_workloads_is_refused(self):
        not_assigned = {
            "client_id of another app's identity": {"client_id": self.other["clientId"]},
            "principal_id of another app's identity": {"principal_id": self.other["principalId"]},
            "object_id of another app's identity": {"object_id": self.other["principalId"]},
            "mi_res_id of another app's identity": {"mi_res_id": self.other["id"]},
            "msi_res_id of another app's identity": {"msi_res_id": self.other["id"]},
            "principal_id of another app's system identity": {
                "principal_id": self.b["identity"]["principalId"]},
            "mi_res_id of another app": {"mi_res_id": self.b["id"]},
            "mi_res_id of the app itself": {"mi_res_id": self.a["id"]},
            "an unknown client_id": {"client_id": str(uuid.uuid4())},
            "the administrator's client_id": {"client_id": self.srv.env["AZURE_CLIENT_ID"]},
            "an unknown mi_res_id": {"mi_res_id": self.mine["id"] + "x"},
            "a path as mi_res_id": {"mi_res_id": "../../etc/passwd"},
        }
        for name, query in not_assigned.items():
            with self.subTest(name):
                self.assertOAuthError(self.mi(self.header_a, query), 400, "invalid_request", name)

    def test_several_selectors_are_refused_even_for_the_same_identity(self):
        for query in ({"client_id": self.mine["clientId"], "mi_res_id": self.mine["id"]},
                      {"client_id": self.mine["clientId"],
                       "principal_id": self.mine["principalId"]},
                      {"object_id": self.mine["principalId"],
                       "principal_id": self.mine["principalId"]},
                      {"mi_res_id": self.mine["id"], "msi_res_id": self.mine["id"]}):
            with self.subTest(sorted(query)):
                body = self.assertOAuthError(self.mi(self.header_a, query), 400,
                                             "invalid_request")
                self.assertIn("not several", body["error_description"])

    def test_an_ambiguous_or_missing_default_identity_is_refused(self):
        _, multi = self.endpoint("rg-mi", "app-multi")
        body = self.assertOAuthError(self.mi(multi), 400, "invalid_request")
        self.assertIn("Multiple user assigned identities", body["error_description"])
        self.assertEqual(self.oid(self.mi_token(multi, client_id=self.extra["clientId"])),
                         self.extra["principalId"])
        _, none = self.endpoint("rg-mi", "app-none")
        self.assertOAuthError(self.mi(none), 400, "invalid_request")
        self.assertOAuthError(self.mi(none, {"client_id": self.mine["clientId"]}), 400,
                              "invalid_request")

    def test_api_version_and_resource_are_required_and_checked(self):
        a = self.header_a
        self.assertOAuthError(self.mi(a, api_version=None), 400, "invalid_request")
        self.assertOAuthError(self.mi(a, api_version="2017-09-01"), 400, "invalid_request")
        self.assertOAuthError(self.mi(a, api_version="2019-08-01x"), 400, "invalid_request")
        self.assertOAuthError(self.mi(a, resource=""), 400, "invalid_request")
        for resource in ("https://vault.azure.net", "https://nope.example",
                         self.srv.vault_resource + ".evil.example", "not a url"):
            with self.subTest(resource):
                self.assertOAuthError(self.mi(a, resource=resource), 400, "invalid_resource")
        # Checked before the identity is looked at: no oracle for unknown headers.
        self.assertOAuthError(self.mi(None, api_version=None), 400, "invalid_request")

    def test_a_workload_identity_has_no_management_rights(self):
        # A management token of app-a's identity must not reach app-b's header or the vault's
        # access policies.
        mgmt = self.mi(self.header_a, resource=self.srv.mgmt_resource).json()["access_token"]
        vault = "/resourceGroups/coffer-dev/providers/Microsoft.KeyVault/vaults/dev"
        for method, path, body, api in (
                ("POST", f"/resourceGroups/rg-mi/providers/{SITES}/app-b/listIdentityEndpoint",
                 None, API[SITES]),
                ("POST", f"/resourceGroups/rg-mi/providers/{SITES}/app-b/regenerateIdentityHeader",
                 None, API[SITES]),
                ("PUT", f"/resourceGroups/rg-mi/providers/{SITES}/app-c", {"location": "local"},
                 API[SITES]),
                ("PATCH", vault, {"properties": {"accessPolicies": []}}, "2023-07-01")):
            with self.subTest(f"{method} {path}"):
                r = self.srv.arm(method, path, body, api_version=api, token=mgmt)
                self.assertErrorBody(r, 403, "AuthorizationFailed")
        # As in Azure, a collection it cannot read lists as empty.
        r = self.srv.arm("GET", f"/providers/{SITES}", api_version=API[SITES], token=mgmt)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["value"], [])
        self.assertEqual(self.endpoint("rg-mi", "app-b")[1], self.header_b)
        self.assertErrorBody(self.workload("GET", "rg-mi", "app-c"), 404)

    def test_other_methods_are_refused(self):
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method):
                r = self.mi(self.header_a, method=method)
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.json()["error"], "invalid_request")
                self.assertNotIn("access_token", r.json())


class ImdsAgent:
    """`coffer agent --imds --port 0` with a workload's endpoint; stopped by PID."""

    def __init__(self, env, log_dir):
        self.env = env
        self.stderr_path = os.path.join(log_dir, f"agent-{uuid.uuid4().hex[:8]}.stderr.log")
        self.proc = None
        self.port = None

    def start(self):
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([coffer_binary(), "agent", "--imds", "--port", "0"],
                                         env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err)
        deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
        out = b""
        fd = self.proc.stdout.fileno()
        marker = b"export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:"
        while marker not in out or not out.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"agent not ready: {out!r}\n{read_text(self.stderr_path)}")
            if select.select([fd], [], [], min(left, 0.5))[0]:
                out += os.read(fd, 4096)
        self.port = int(out.split(marker, 1)[1].split(b"\n", 1)[0])
        return self

    def stop(self):
        if self.proc is None:
            return None
        code = stop_process(self.proc)
        self.proc.stdout.close()
        return code

    def request(self, method="GET", path="/metadata/identity/oauth2/token", query=None,
                headers=None):
        target = path + ("?" + urllib.parse.urlencode(query) if query is not None else "")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            return CofferServer.send(conn, method, target, headers=headers)
        finally:
            conn.close()


class ImdsAgentTests(WorkloadTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uai = cls.new_identity("uai-imds", "rg-imds")
        cls.stranger = cls.new_identity("uai-stranger", "rg-imds")
        cls.vm = cls.put_workload("rg-imds", "vm-imds", {
            "type": "SystemAssigned, UserAssigned",
            "userAssignedIdentities": {cls.uai["id"]: {}}}, VMS)
        url, header = cls.endpoint("rg-imds", "vm-imds", VMS)
        env = cls.coffer_env()
        env.update({"IDENTITY_ENDPOINT": url, "IDENTITY_HEADER": header})
        cls.agent_env = env
        cls.agent = ImdsAgent(env, cls.srv.root).start()
        cls.addClassCleanup(cls.agent.stop)

    def query(self, **extra):
        q = {"api-version": IMDS_API, "resource": self.srv.vault_resource}
        q.update(extra)
        return {k: v for k, v in q.items() if v is not None}

    def imds(self, headers=None, **query):
        hdrs = {"Metadata": "true"} if headers is None else headers
        return self.agent.request(query=self.query(**query), headers=hdrs)

    def test_tokens_for_the_vm_and_its_identities(self):
        r = self.imds()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["resource"], self.srv.vault_resource)
        self.assertRegex(r.json()["expires_on"], r"^[0-9]+$")
        system = self.vm["identity"]["principalId"]
        token = r.json()["access_token"]
        self.assertEqual(self.oid(token), system)
        self.grant(system)
        self.assertEqual(self.vault_status(token), 200)
        slash = self.agent.request(path="/metadata/identity/oauth2/token/", query=self.query(),
                                   headers={"Metadata": "true"})
        self.assertEqual(slash.status, 200, slash)
        for selector in ({"client_id": self.uai["clientId"]},
                         {"object_id": self.uai["principalId"]},
                         {"msi_res_id": self.uai["id"]}):
            with self.subTest(selector):
                r = self.imds(**selector)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.oid(r.json()["access_token"]), self.uai["principalId"])

    def test_requests_without_metadata_or_through_a_proxy_are_refused(self):
        for name, headers in (("no Metadata header", {}),
                              ("Metadata: false", {"Metadata": "false"}),
                              ("Metadata: 1", {"Metadata": "1"}),
                              ("X-Forwarded-For", {"Metadata": "true",
                                                   "X-Forwarded-For": "203.0.113.7"})):
            with self.subTest(name):
                self.assertOAuthError(self.imds(headers), 400, "invalid_request", name)

    def test_a_host_header_of_another_name_is_refused(self):
        # DNS rebinding: a web page whose name resolves to 127.0.0.1 still sends its own name.
        port = self.agent.port
        for host in ("attacker.example", f"attacker.example:{port}", "localhost.attacker.example",
                     f"127.0.0.1.nip.io:{port}", "127.0.0.1@attacker.example"):
            with self.subTest(host):
                r = self.imds({"Metadata": "true", "Host": host})
                self.assertOAuthError(r, 400, "invalid_request", host)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "169.254.169.254"):
            with self.subTest(host):
                self.assertEqual(self.imds({"Metadata": "true", "Host": host}).status, 200, host)

    def test_other_paths_and_methods_are_refused(self):
        for path in ("/", "/metadata/instance", "/metadata/identity/oauth2/tokens",
                     "/metadata/identity/oauth2/token/extra", "/msi/token",
                     "/metadata/identity/oauth2/token//"):
            with self.subTest(path):
                r = self.agent.request(path=path, query=self.query(),
                                       headers={"Metadata": "true"})
                self.assertOAuthError(r, 404, "not_found", path)
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method):
                r = self.agent.request(method, query=self.query(), headers={"Metadata": "true"})
                self.assertOAuthError(r, 405, "invalid_request", method)

    def test_bad_queries_are_refused(self):
        self.assertOAuthError(self.imds(**{"api-version": None}), 400, "invalid_request")
        self.assertOAuthError(self.imds(**{"api-version": "2017-01-01"}), 400, "invalid_request")
        self.assertOAuthError(self.imds(resource=None), 400, "invalid_request")
        self.assertOAuthError(self.imds(resource="https://nope.example"), 400, "invalid_resource")
        self.assertOAuthError(self.imds(client_id=self.stranger["clientId"]), 400,
                              "invalid_request")
        self.assertOAuthError(self.imds(msi_res_id=self.stranger["id"]), 400, "invalid_request")
        # The agent forwards values, never extra parameters.
        smuggled = self.srv.vault_resource + "&client_id=" + self.stranger["clientId"]
        self.assertOAuthError(self.imds(resource=smuggled), 400, "invalid_resource")
        smuggled = self.uai["clientId"] + "&api-version=2017-09-01"
        self.assertOAuthError(self.imds(client_id=smuggled), 400, "invalid_request")

    def test_the_agent_refuses_to_start_without_a_usable_endpoint(self):
        def run(env, *args):
            return subprocess.run([coffer_binary(), "agent"] + list(args), env=env,
                                  capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        no_header = dict(self.agent_env)
        no_header.pop("IDENTITY_HEADER")
        remote = dict(self.agent_env, IDENTITY_ENDPOINT="http://example.com/msi/token")
        for name, env, args, needle in (
                ("no header", no_header, ["--imds"], "IDENTITY_HEADER"),
                ("plain http to a remote host", remote, ["--imds"], "https"),
                ("all interfaces", self.agent_env, ["--imds", "--address", "0.0.0.0"],
                 "loopback"),
                ("nothing to do", self.agent_env, [], "--imds")):
            with self.subTest(name):
                p = run(env, *args)
                self.assertNotEqual(p.returncode, 0, p)
                self.assertIn(needle, p.stderr.decode(), p)
                self.assertEqual(p.stdout, b"", p)

    def test_the_agent_stops_on_sigterm(self):
        agent = ImdsAgent(self.agent_env, self.srv.root).start()
        self.addCleanup(agent.stop)
        self.assertEqual(agent.request(query=self.query(), headers={"Metadata": "true"}).status,
                         200)
        self.assertEqual(agent.stop(), 0, read_text(agent.stderr_path))


def hs256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


class FederatedAssertionTests(WorkloadTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.issuer = OidcIssuer(subject="system:serviceaccount:shop:checkout")
        cls.addClassCleanup(cls.issuer.stop)
        cls.foreign = OidcIssuer(subject=cls.issuer.subject)
        cls.addClassCleanup(cls.foreign.stop)
        cls.uai = cls.new_identity("uai-fed", "rg-fed")
        cls.coffer_json("identity", "federated-credential", "create", "--name", "checkout",
                        "--identity-name", "uai-fed", "-g", "rg-fed", "--issuer", cls.issuer.url,
                        "--subject", cls.issuer.subject)
        cls.grant(cls.uai["principalId"])
        cls.audience = f"https://localhost:{cls.srv.port}/{cls.srv.tenant}/oauth2/v2.0/token"

    def post(self, assertion, client_id=None, assertion_type=JWT_BEARER):
        form = urllib.parse.urlencode({
            "client_id": client_id or self.uai["clientId"], "client_assertion": assertion,
            "client_assertion_type": assertion_type, "grant_type": "client_credentials",
            "scope": self.srv.vault_resource + "/.default"})
        return self.srv.request("POST", f"/{self.srv.tenant}/oauth2/v2.0/token", form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"},
                                host="localhost", auth=False)

    def assertRefused(self, r, msg="", code=70021):
        body = self.assertOAuthError(r, 401, "invalid_client", msg)
        self.assertTrue(body["error_description"].startswith(f"AADSTS{code}:"), f"{msg} {r!r}")
        self.assertEqual(body.get("error_codes"), [code], f"{msg} {r!r}")
        return body

    def test_a_valid_assertion_gets_a_token_that_reads_the_vault(self):
        assertion = self.issuer.mint()
        r = self.post(assertion)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["token_type"], "Bearer")
        claims = jwt_parts(r.json()["access_token"])[1]
        self.assertEqual(claims["oid"], self.uai["principalId"])
        self.assertEqual(claims["appid"], self.uai["clientId"])
        self.assertEqual(claims["xms_mirid"], self.uai["id"])
        self.assertEqual(claims["idtyp"], "app")
        self.assertEqual(self.vault_status(r.json()["access_token"]), 200)
        # azure-identity (Python) sends the projected file as is, newline included; and like
        # Entra, the same service-account token may be exchanged again while it is valid.
        self.assertEqual(self.post(assertion + "\n").status, 200)
        self.assertEqual(self.post(assertion).status, 200)

    def test_clock_skew_of_under_a_minute_and_a_string_aud_are_accepted(self):
        now = int(time.time())
        for name, claims in (("exp 30 s ago", {"exp": now - 30, "nbf": now - 600,
                                               "iat": now - 600}),
                             ("nbf and iat in 30 s", {"nbf": now + 30, "iat": now + 30}),
                             ("aud as a string", {"aud": self.issuer.audience})):
            with self.subTest(name):
                r = self.post(self.issuer.mint(claims=claims))
                self.assertEqual(r.status, 200, r)

    def test_each_broken_assertion_is_refused(self):
        now = int(time.time())
        iss = self.issuer
        stray = iss.add_key(publish=False)
        impostor = iss.add_key(publish=False)
        impostor.kid = iss.key.kid  # same kid as the published key, another key
        good = iss.mint()
        head, payload, sig = good.split(".")
        longer = json.loads(b64url_decode(payload))
        longer["exp"] = now + 86400
        public_pem = iss.key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        flipped = bytearray(b64url_decode(sig))
        flipped[10] ^= 0x01

        def pss(key):
            return lambda data: key.private.sign(data, padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())

        def resign(token, signer):
            h, p, _ = token.split(".")
            return f"{h}.{p}." + b64url(signer(f"{h}.{p}".encode()))

        cases = {
            "expired": iss.mint(claims={"exp": now - 400, "nbf": now - 1000, "iat": now - 1000}),
            "no exp": iss.mint(drop=("exp",)),
            "exp not a number": iss.mint(claims={"exp": "tomorrow"}),
            "not yet valid": iss.mint(claims={"nbf": now + 3600, "iat": now + 3600,
                                              "exp": now + 4000}),
            "issued in the future": iss.mint(claims={"iat": now + 3600}),
            "foreign issuer": self.foreign.mint(),
            "foreign issuer claiming ours": self.foreign.mint(claims={"iss": iss.url}),
            "issuer with a trailing slash": iss.mint(claims={"iss": iss.url + "/"}),
            "issuer missing": iss.mint(drop=("iss",)),
            "wrong audience": iss.mint(claims={"aud": ["api://SomethingElse"]}),
            "the token endpoint as audience": iss.mint(claims={"aud": self.audience}),
            "no audience": iss.mint(drop=("aud",)),
            "empty audience list": iss.mint(claims={"aud": []}),
            "wrong subject": iss.mint(claims={"sub": "system:serviceaccount:shop:other"}),
            "subject prefix": iss.mint(claims={"sub": iss.subject + "x"}),
            "no subject": iss.mint(drop=("sub",)),
            "alg none": resign(iss.mint(header={"alg": "none"}), lambda d: b""),
            "alg none, no signature": iss.mint(header={"alg": "none"}).rsplit(".", 1)[0] + ".",
            "alg none, RS256 signature": iss.mint(header={"alg": "none"}),
            "HS256 keyed with the public key": resign(iss.mint(header={"alg": "HS256"}),
                                                      lambda d: hs256(public_pem, d)),
            "HS256 keyed with the modulus": resign(iss.mint(header={"alg": "HS256"}),
                                                   lambda d: hs256(iss.key.n, d)),
            "PS256": resign(iss.mint(header={"alg": "PS256"}), pss(iss.key)),
            "PS256 signature labelled RS256": resign(good, pss(iss.key)),
            "RS512 label": iss.mint(header={"alg": "RS512"}),
            "missing kid": iss.mint(header={"kid": None}),
            "empty kid": iss.mint(header={"kid": ""}),
            "unknown kid": iss.mint(key=stray),
            "published kid, another key": iss.mint(key=impostor),
            "tampered signature": f"{head}.{payload}." + b64url(bytes(flipped)),
            "no signature": f"{head}.{payload}.",
            "tampered payload": f"{head}." + b64url(json.dumps(longer)) + f".{sig}",
            "garbage": "garbage",
            "not a jwt": "not.a.jwt",
            "four parts": good + ".x",
            "two parts": f"{head}.{payload}",
            "header not json": b64url("{") + f".{payload}.{sig}",
            "header an array": b64url("[]") + f".{payload}.{sig}",
            "payload an array": f"{head}." + b64url("[1]") + f".{sig}",
            "huge": "a" * 30000,
        }
        before = len(self.foreign.requests)
        for name, assertion in cases.items():
            with self.subTest(name):
                self.assertRefused(self.post(assertion), name)
        # The server never reached out to an issuer it does not trust.
        self.assertEqual(self.foreign.requests[before:], [])
        self.assertEqual(self.post(good).status, 200, "the good assertion still works")

    def test_an_issuer_whose_keys_cannot_be_fetched_safely_is_not_trusted(self):
        for name, setup in (("jwks_uri on plain http elsewhere", "http://example.com/jwks"),
                            ("issuer unreachable", None)):
            with self.subTest(name):
                issuer = OidcIssuer(subject="system:serviceaccount:shop:" + name.split()[0])
                self.addCleanup(issuer.stop)
                uai = self.new_identity("uai-" + name.split()[0].replace("_", "-"), "rg-fed")
                self.coffer("identity", "federated-credential", "create", "--name", "fic",
                            "--identity-name", uai["name"], "-g", "rg-fed",
                            "--issuer", issuer.url, "--subject", issuer.subject)
                assertion = issuer.mint()
                if setup is None:
                    issuer.stop()
                else:
                    issuer.jwks_uri = setup
                self.assertRefused(self.post(assertion, client_id=uai["clientId"]), name)
                if setup is not None:
                    self.assertEqual(issuer.requests, ["/.well-known/openid-configuration"])
                    issuer.jwks_uri = None
                    r = self.post(assertion, client_id=uai["clientId"])
                    self.assertEqual(r.status, 200, r)

    def test_the_assertion_only_works_for_the_identity_that_trusts_it(self):
        plain = self.new_identity("uai-no-fic", "rg-fed")
        other = self.new_identity("uai-other-subject", "rg-fed")
        self.coffer("identity", "federated-credential", "create", "--name", "other",
                    "--identity-name", "uai-other-subject", "-g", "rg-fed",
                    "--issuer", self.issuer.url, "--subject", "system:serviceaccount:shop:other")
        good = self.issuer.mint()
        self.assertRefused(self.post(good, client_id=plain["clientId"]), "no credential")
        self.assertRefused(self.post(good, client_id=other["clientId"]), "other subject")
        # Neither an application nor an unknown client id accepts an issuer's token.
        self.assertRefused(self.post(good, client_id=self.srv.env["AZURE_CLIENT_ID"]),
                           "application", code=700027)
        self.assertRefused(self.post(good, client_id=str(uuid.uuid4())), "unknown",
                           code=700027)
        r = self.post(good, assertion_type="urn:ietf:params:oauth:grant-type:jwt-bearer")
        self.assertOAuthError(r, 400, "invalid_request")
        self.assertEqual(self.post(good).status, 200)

    def test_audiences_are_the_registered_ones(self):
        uai = self.new_identity("uai-aud", "rg-fed")
        self.coffer("identity", "federated-credential", "create", "--name", "custom",
                    "--identity-name", "uai-aud", "-g", "rg-fed", "--issuer", self.issuer.url,
                    "--subject", self.issuer.subject, "--audiences", "api://one", "api://two")
        for aud, status in (("api://two", 200), (["x", "api://one"], 200),
                            ("api://AzureADTokenExchange", 401), (["api://three"], 401)):
            with self.subTest(aud):
                r = self.post(self.issuer.mint(claims={"aud": aud}), client_id=uai["clientId"])
                if status == 200:
                    self.assertEqual(r.status, 200, r)
                else:
                    self.assertRefused(r, str(aud))

    def test_a_deleted_credential_stops_working(self):
        uai = self.new_identity("uai-temp", "rg-fed")
        args = ["--identity-name", "uai-temp", "-g", "rg-fed"]
        self.coffer("identity", "federated-credential", "create", "--name", "temp", *args,
                    "--issuer", self.issuer.url, "--subject", self.issuer.subject)
        good = self.issuer.mint()
        self.assertEqual(self.post(good, client_id=uai["clientId"]).status, 200)
        self.coffer("identity", "federated-credential", "delete", "--name", "temp", *args)
        self.assertEqual(self.coffer("identity", "federated-credential", "list", *args), [])
        self.assertRefused(self.post(good, client_id=uai["clientId"]))
        # And a deleted identity takes its tokens with it.
        self.coffer("identity", "federated-credential", "create", "--name", "temp", *args,
                    "--issuer", self.issuer.url, "--subject", self.issuer.subject)
        r = self.post(good, client_id=uai["clientId"])
        self.assertEqual(r.status, 200, r)
        self.grant(uai["principalId"])
        token = r.json()["access_token"]
        self.assertEqual(self.vault_status(token), 200)
        self.coffer("identity", "delete", "-n", "uai-temp", "-g", "rg-fed")
        self.assertEqual(self.vault_status(token), 401)
        self.assertRefused(self.post(good, client_id=uai["clientId"]), code=700027)


class WorkloadArmBadInputTests(WorkloadTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uai = cls.new_identity("uai-arm", "rg-arm")

    def assertNoWorkload(self, name, kind=SITES, rg="rg-arm"):
        r = self.workload("GET", rg, name, kind=kind)
        self.assertErrorBody(r, 404, "ResourceNotFound", name)

    def test_bad_identity_blocks_are_refused_and_create_nothing(self):
        uai = self.uai["id"]
        missing = uai.rsplit("/", 1)[0] + "/no-such-identity"
        other_sub = uai.replace(self.srv.subscription, str(uuid.uuid4()))
        cases = [
            ({"type": "Bogus"}, "InvalidIdentityType"),
            ({"type": ""}, "InvalidIdentityType"),
            ({}, "InvalidIdentityType"),
            ({"type": 5}, "InvalidIdentityType"),
            ({"type": "SystemAssigned,,UserAssigned"}, "InvalidIdentityType"),
            ("SystemAssigned", None),
            ([], None),
            ({"type": "UserAssigned"}, "InvalidIdentityType"),
            ({"type": "UserAssigned", "userAssignedIdentities": {}}, "InvalidIdentityType"),
            ({"type": "UserAssigned", "userAssignedIdentities": None}, "InvalidIdentityType"),
            ({"type": "SystemAssigned, UserAssigned"}, "InvalidIdentityType"),
            ({"type": "SystemAssigned", "userAssignedIdentities": {uai: {}}},
             "InvalidIdentityType"),
            ({"type": "None", "userAssignedIdentities": {uai: {}}}, "InvalidIdentityType"),
            ({"type": "UserAssigned", "userAssignedIdentities": [uai]}, None),
            ({"type": "UserAssigned", "userAssignedIdentities": {uai: "yes"}}, None),
            ({"type": "UserAssigned", "userAssignedIdentities": {uai: []}}, None),
            (self.user_assigned([missing]), "FailedIdentityOperation"),
            (self.user_assigned([other_sub]), "FailedIdentityOperation"),
            (self.user_assigned(["not-an-id"]), "FailedIdentityOperation"),
            (self.user_assigned([uai, missing]), "FailedIdentityOperation"),
            (self.user_assigned([""]), "FailedIdentityOperation"),
        ]
        for i, (identity, code) in enumerate(cases):
            for kind in (SITES, VMS):
                with self.subTest(identity=identity, kind=kind):
                    r = self.workload("PUT", "rg-arm", f"bad-{i}",
                                      {"location": "local", "identity": identity}, kind)
                    self.assertErrorBody(r, 400, code, json.dumps(identity))
                    self.assertNoWorkload(f"bad-{i}", kind)

    def test_a_bad_update_leaves_the_workload_as_it_was(self):
        made = self.put_workload("rg-arm", "app-kept", {"type": "SystemAssigned"})
        _, header = self.endpoint("rg-arm", "app-kept")
        for method, body in (
                ("PUT", {"identity": {"type": "Bogus"}}),
                ("PUT", {"identity": self.user_assigned([self.uai["id"] + "-gone"])}),
                ("PATCH", {"identity": {"type": "UserAssigned"}}),
                ("PATCH", {"identity": {"type": "SystemAssigned, UserAssigned",
                                        "userAssignedIdentities": {"x": {}}}}),
                ("PATCH", {"tags": {"k": 1}}),
                ("PATCH", {"location": ""}),
                ("PUT", "{"),
                ("PATCH", "[]")):
            with self.subTest(method=method, body=body):
                r = self.workload(method, "rg-arm", "app-kept", body)
                self.assertErrorBody(r, 400, None, json.dumps(body))
        shown = self.workload("GET", "rg-arm", "app-kept").json()
        self.assertEqual(shown["identity"], made["identity"])
        self.assertEqual(shown["tags"], {})
        self.assertEqual(self.oid(self.mi_token(header)), made["identity"]["principalId"])

    def test_bad_names_are_refused(self):
        body = {"location": "local", "identity": {"type": "SystemAssigned"}}
        for name in ("-lead", ".lead", "has%20space", "x" * 65, "semi%3Bcolon", "%C3%BCber",
                     "a%00b"):
            with self.subTest(name=name):
                self.assertErrorBody(self.workload("PUT", "rg-arm", name, body), 400,
                                     "InvalidResourceName")
        for rg in ("rg.", "rg%20x", "r" * 91, "rg%2Fx"):
            with self.subTest(rg=rg):
                r = self.workload("PUT", rg, "app-ok", body)
                self.assertEqual(r.status, 400, r)
        listed = self.srv.arm("GET", f"/providers/{SITES}", api_version=API[SITES]).json()
        self.assertLessEqual({w["name"] for w in listed["value"]}, {"app-kept", "app-actions"})

    def test_non_json_bodies_are_refused(self):
        for body in ("{", "[]", "null", '"text"', "not json", b"\xff\xfe",
                     '{"identity": {"type": "SystemAssigned"}'):
            with self.subTest(body=body):
                r = self.workload("PUT", "rg-arm", "app-json", body)
                self.assertErrorBody(r, 400, "InvalidRequestContent")
        self.assertNoWorkload("app-json")

    def test_unknown_actions_methods_and_missing_resources(self):
        self.put_workload("rg-arm", "app-actions", {"type": "SystemAssigned"})
        r = self.workload("POST", "rg-arm", "app-actions", action="nope")
        self.assertErrorBody(r, 404)
        r = self.workload("GET", "rg-arm", "app-actions", action="listIdentityEndpoint")
        self.assertErrorBody(r, 405)
        r = self.workload("PATCH", "rg-arm", "app-missing", {"tags": {}})
        self.assertErrorBody(r, 404, "ResourceNotFound")
        self.assertNoWorkload("app-missing")
        self.assertEqual(self.workload("DELETE", "rg-arm", "app-missing").status, 204)
        r = self.workload("POST", "rg-arm", "app-missing", action="listIdentityEndpoint")
        self.assertErrorBody(r, 404, "ResourceNotFound")
        r = self.srv.arm("POST", f"/resourceGroups/rg-arm/providers/{SITES}", {},
                         api_version=API[SITES])
        self.assertErrorBody(r, 405)
        r = self.srv.arm("GET", f"/resourceGroups/rg-arm/providers/{SITES}/app-actions",
                         api_version=None)
        self.assertErrorBody(r, 400, "MissingApiVersionParameter")
        r = self.srv.arm_raw("GET", f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg-arm/"
                                    f"providers/{SITES}/app-actions?api-version={API[SITES]}")
        self.assertErrorBody(r, 404, "SubscriptionNotFound")
        r = self.srv.arm("GET", f"/resourceGroups/rg-arm/providers/{SITES}/app-actions",
                         api_version=API[SITES], token=self.srv.token(self.srv.vault_resource))
        self.assertEqual(r.status, 401, r)

    def test_bad_federated_identity_credentials_are_refused(self):
        base = f"/resourceGroups/rg-arm/providers/{UAIS}/uai-arm/federatedIdentityCredentials"

        def put(name, body):
            return self.srv.arm("PUT", f"{base}/{name}", body, api_version=API[UAIS])

        def props(**changes):
            p = {"issuer": "https://issuer.example", "subject": "repo:org/app:ref:main",
                 "audiences": ["api://AzureADTokenExchange"]}
            for k, v in changes.items():
                if v is ...:
                    p.pop(k)
                else:
                    p[k] = v
            return {"properties": p}

        cases = {
            "issuer on plain http": props(issuer="http://issuer.example"),
            "issuer on plain http, private address": props(issuer="http://10.0.0.1:8080"),
            "issuer on plain http, 0.0.0.0": props(issuer="http://0.0.0.0:8080"),
            "issuer looking like loopback": props(issuer="http://127.0.0.1.nip.io"),
            "issuer under localhost": props(issuer="http://localhost.evil.example"),
            "issuer with userinfo": props(issuer="http://127.0.0.1@evil.example"),
            "issuer with a fragment": props(issuer="https://issuer.example/#x"),
            "issuer ftp": props(issuer="ftp://127.0.0.1/"),
            "issuer without host": props(issuer="https://"),
            "issuer not a URL": props(issuer="issuer.example"),
            "issuer empty": props(issuer=""),
            "issuer missing": props(issuer=...),
            "issuer a number": props(issuer=5),
            "issuer too long": props(issuer="https://issuer.example/" + "a" * 2048),
            "subject empty": props(subject=""),
            "subject missing": props(subject=...),
            "subject a number": props(subject=7),
            "subject too long": props(subject="s" * 601),
            "audiences empty": props(audiences=[]),
            "audiences a string": props(audiences="api://AzureADTokenExchange"),
            "audiences missing": props(audiences=...),
            "audience a number": props(audiences=[5]),
            "audience empty": props(audiences=[""]),
            "audience too long": props(audiences=["a" * 601]),
            "eleven audiences": props(audiences=[f"api://{i}" for i in range(11)]),
            "no properties": {},
            "properties an array": {"properties": []},
            "body an array": [],
            "body not JSON": "{",
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.assertErrorBody(put("fic-bad", body), 400, None, name)
        for name in ("ab", "-lead", "has%20space", "x" * 121):
            with self.subTest(name=name):
                self.assertErrorBody(put(name, props()), 400, "InvalidResourceName")
        listed = self.srv.arm("GET", base, api_version=API[UAIS])
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual(listed.json()["value"], [])
        # The same through the CLI.
        args = ["identity", "federated-credential", "create", "--name", "fic-cli",
                "--identity-name", "uai-arm", "-g", "rg-arm"]
        err = self.coffer(*args, "--issuer", "http://issuer.example", "--subject", "s", expect=1)
        self.assertIn("issuer must be an https URL", err)
        err = self.coffer(*args, "--issuer", "https://issuer.example", "--subject", "", expect=1)
        self.assertIn("subject", err)
        # What is accepted: https anywhere, plain http on loopback only.
        for name, issuer in (("fic-https", "https://token.actions.githubusercontent.com"),
                             ("fic-loopback", "http://127.0.0.1:8080"),
                             ("fic-localhost", "http://localhost:8080/issuer")):
            with self.subTest(name):
                r = put(name, props(issuer=issuer))
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json()["properties"]["issuer"], issuer)
        listed = self.srv.arm("GET", base, api_version=API[UAIS]).json()["value"]
        self.assertEqual(sorted(c["name"] for c in listed),
                         ["fic-https", "fic-localhost", "fic-loopback"])
        # An issuer and subject pair appears once per identity, whatever the name.
        r = put("fic-again", props(issuer="http://127.0.0.1:8080"))
        self.assertErrorBody(r, 400, "BadRequest", "same issuer and subject")
        self.assertIn("fic-loopback", r.json()["error"]["message"])
        # Updating a credential in place keeps its own pair.
        r = put("fic-loopback", props(issuer="http://127.0.0.1:8080", subject="repo:org/app:ref:main"))
        self.assertEqual(r.status, 200, r)
        listed = self.srv.arm("GET", base, api_version=API[UAIS]).json()["value"]
        self.assertEqual(len(listed), 3)
