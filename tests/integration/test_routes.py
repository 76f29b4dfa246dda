"""Every route of the vault and management planes refuses a principal with no rights.

The routes come from the server itself (GET /coffer/v1/routes, the planes' route tables), so a
route added without a permission fails here: a principal that holds no role and no access policy
must get 403 on every route of a vault plane (on an access-policy vault and on an RBAC vault) and
of the management plane, with the route's operation or action named in the denial. The only
exceptions are the ones Azure makes: a collection the caller may not read is listed as an empty
page, and the tenant's role definitions are readable by everyone. A request that matches no route
is 404 / 405 before any handler runs, whoever asks.
"""

import re
import urllib.parse
import uuid

from harness import KV_API, ServerTestCase, jwt_parts

ARM_API = "2023-07-01"


class RouteTableTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = cls.srv
        r = srv.arm_raw("GET", "/coffer/v1/routes")
        if r.status != 200:
            raise AssertionError(f"GET /coffer/v1/routes: {r!r}")
        cls.routes = r.json()
        cls.sub = f"/subscriptions/{srv.subscription}"
        # An RBAC vault beside the dev vault (access policies), and a principal with nothing.
        r = srv.arm("PUT", "/resourceGroups/rg-routes/providers/Microsoft.KeyVault/vaults/routesrbac",
                    {"location": "local", "properties": {"enableRbacAuthorization": True}})
        if r.status != 201:
            raise AssertionError(f"PUT vault: {r!r}")
        # Every {name} of a path names something that exists, so that a refusal is the
        # authorization's, not a 404 of the parent.
        cls.coffer_json("identity", "create", "-n", "routesrbac", "-g", "rg-routes")
        for kind in ("Microsoft.Web/sites", "Microsoft.Compute/virtualMachines"):
            r = srv.arm("PUT", f"/resourceGroups/rg-routes/providers/{kind}/routesrbac",
                        {"location": "local"}, api_version="2023-12-01")
            if r.status != 201:
                raise AssertionError(f"PUT {kind}: {r!r}")
        sp = cls.coffer_json("ad", "sp", "create-for-rbac", "--name", "nobody-at-all")
        cls.nobody = {}
        for resource in (srv.vault_resource, srv.mgmt_resource):
            t = srv.token_response(resource, sp["appId"], sp["password"])
            if t.status != 200:
                raise AssertionError(f"token: {t!r}")
            cls.nobody[resource] = t.json()["access_token"]
        cls.nobody_oid = jwt_parts(cls.nobody[srv.vault_resource])[1]["oid"]

    def fill(self, pattern):
        """A concrete path for a pattern: real subscription and vault, made-up names."""
        values = {"sub": self.srv.subscription, "rg": "rg-routes", "name": "routesrbac",
                  "tenant": self.srv.tenant,
                  "vault": "routesrbac", "kind": "add", "location": "local",
                  "scope...": self.sub + "/resourceGroups/rg-routes",
                  "resource...": self.sub + "/resourceGroups/rg-routes/providers/"
                                 "Microsoft.KeyVault/vaults/routesrbac",
                  "id": str(uuid.uuid4()), "credential": "cred-one", "issuer": "corp",
                  "version": "0" * 32, "version?": "0" * 32}
        if "/roleDefinitions/{id}" in pattern:
            values["id"] = "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # Reader, which exists

        def value(m):
            key = m.group(1)
            if key not in values:
                raise AssertionError(f"no sample value for {{{key}}} in {pattern}")
            v = values[key]
            return v[1:] if key.endswith("...") else v
        path = re.sub(r"\{([^}]+)\}", value, pattern)
        return path if path.startswith("/") else "/" + path

    def test_the_tables_list_every_plane(self):
        # Every operation of the secrets, keys and certificates APIs (docs/authorization.md's
        # table, docs/keys.md's, docs/certificates.md's) and the watch stream are in the vault
        # plane's table.
        self.assertEqual(
            {r["operation"] for r in self.routes["vault"]},
            {"SecretList", "SecretRestore", "SecretSet", "SecretGet", "SecretDelete",
             "SecretListVersions", "SecretBackup", "SecretHash", "SecretUpdate",
             "SecretListDeleted", "SecretGetDeleted", "SecretPurge", "SecretRecover",
             "KeyList", "KeyRestore", "KeyCreate", "KeyImport", "KeyGet", "KeyListVersions",
             "KeyUpdate", "KeyDelete", "KeyBackup", "KeyRotate", "KeyRotationPolicyGet",
             "KeyRotationPolicySet", "KeyEncrypt", "KeyDecrypt", "KeyWrap", "KeyUnwrap",
             "KeySign", "KeyVerify", "KeyListDeleted", "KeyGetDeleted", "KeyPurge",
             "KeyRecover", "GetRandomBytes",
             "CertificateList", "CertificateCreate", "CertificatePendingGet",
             "CertificateImport", "CertificateGet", "CertificateListVersions",
             "CertificatePolicyGet", "CertificatePolicyUpdate", "CertificateUpdate",
             "CertificateDelete", "CertificateListDeleted", "CertificateGetDeleted",
             "CertificatePurge", "CertificateRecover", "CertificateBackup",
             "CertificateRestore", "CertificatePendingUpdate", "CertificatePendingDelete",
             "CertificatePendingMerge", "CertificateContactsGet", "CertificateContactsSet",
             "CertificateContactsDelete", "CertificateIssuerList", "CertificateIssuerGet",
             "CertificateIssuerSet", "CertificateIssuerUpdate", "CertificateIssuerDelete"},
            self.routes["vault"])
        self.assertIn("/coffer/watch", [r["pattern"] for r in self.routes["vault"]])
        self.assertGreaterEqual(len(self.routes["arm"]), 40, self.routes["arm"])
        for route in self.routes["vault"]:
            self.assertTrue(route["operation"], route)
        for route in self.routes["arm"]:
            public = route["pattern"].startswith("/providers/Microsoft.Authorization/")
            self.assertEqual(route["action"] == "", public, route)

    def test_no_vault_route_serves_a_principal_with_no_rights(self):
        token = self.nobody[self.srv.vault_resource]
        for vault in ("dev", "routesrbac"):
            for route in self.routes["vault"]:
                path = self.fill(route["pattern"])
                with self.subTest(vault=vault, method=route["method"], path=path):
                    r = self.srv.kv(route["method"], path, body={} if route["method"] in
                                    ("PUT", "PATCH", "POST") else None, vault=vault, token=token)
                    body = self.assertErrorBody(r, 403, "Forbidden")
                    self.assertIn(self.nobody_oid, body["error"]["message"])

    def test_no_management_route_serves_a_principal_with_no_rights(self):
        token = self.nobody[self.srv.mgmt_resource]
        for route in self.routes["arm"]:
            path = self.fill(route["pattern"])
            with self.subTest(method=route["method"], path=path):
                target = f"{path}?api-version={ARM_API}"
                body = {} if route["method"] in ("PUT", "PATCH", "POST") else None
                r = self.srv.arm_raw(route["method"], target, body, token=token)
                if route["action"] == "":
                    self.assertEqual(r.status, 200, r)
                elif route["collection"]:
                    # Azure lists what the caller may read: nothing.
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json()["value"], [], r)
                else:
                    self.assertErrorBody(r, 403, "AuthorizationFailed")
                    self.assertIn(f"'{route['action']}'", r.json()["error"]["message"])

    def test_no_authority_route_serves_a_principal_with_no_rights_beyond_its_own(self):
        """The authority host's table: public routes answer in their own protocol; the
        directory and the administration API refuse a principal that is no administrator;
        routes any caller may use (the audit query, explain) show it nothing it may not see."""
        token = self.nobody[self.srv.mgmt_resource]
        seen = set()
        for route in self.routes["authority"]:
            seen.add(route["access"])
            if route["access"] not in ("administrator", "directory", "directory-caller"):
                continue
            path = self.fill(route["pattern"])
            with self.subTest(method=route["method"], path=path):
                body = {} if route["method"] in ("PUT", "PATCH", "POST") else None
                r = self.srv.arm_raw(route["method"], path, body, token=token)
                # A user's own routes (/me) tell an application it is none.
                self.assertEqual(r.status, 400 if route["access"] == "directory-caller" else 403,
                                 r)
        self.assertEqual(seen, {"public", "caller", "administrator", "directory",
                                "directory-caller", "management"})
        # az login's listings: a subscription only to a caller that holds a role in it; the
        # tenant its token names anyway; Graph's /me is 400 for any application.
        r = self.srv.arm_raw("GET", "/subscriptions?api-version=2019-11-01", token=token)
        self.assertEqual((r.status, r.json()["value"]), (200, []), r)
        r = self.srv.arm_raw("GET", "/subscriptions?api-version=2019-11-01")
        self.assertEqual([(s["id"], s["tenantId"]) for s in r.json()["value"]],
                         [(self.sub, self.srv.tenant)], r)
        r = self.srv.arm_raw("GET", "/tenants?api-version=2019-11-01", token=token)
        self.assertEqual([t["tenantId"] for t in r.json()["value"]], [self.srv.tenant], r)
        self.assertErrorBody(self.srv.arm_raw("GET", "/v1.0/me", token=token), 400, "BadRequest")
        for path in ("/subscriptions", "/tenants", "/v1.0/me"):
            self.assertErrorBody(self.srv.arm_raw("GET", path, auth=False), 401,
                                 "InvalidAuthenticationToken")
        r = self.srv.arm_raw("GET", "/coffer/v1/audit?top=1000", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["value"], [], "the audit query showed records of resources "
                                                "the caller may not read")
        r = self.srv.arm_raw("GET", "/coffer/v1/authz/explain?" + urllib.parse.urlencode(
            {"assignee": self.nobody_oid, "vault": "routesrbac", "action": "SecretGet"}),
            token=token)
        self.assertEqual(r.status, 403, r)

    def test_a_request_that_names_no_route_runs_no_handler(self):
        admin_vault = self.srv.token(self.srv.vault_resource)
        for method, path, status in (("GET", "/keys/k", 404), ("POST", "/secrets/a", 405),
                                     ("GET", "/secrets/a/b/c", 404), ("GET", "/", 404),
                                     ("PATCH", "/coffer/watch", 405)):
            with self.subTest(method=method, path=path):
                r = self.srv.kv(method, path, vault="dev", token=admin_vault)
                self.assertErrorBody(r, status)
        for method, path, status in (
                ("GET", f"{self.sub}/providers/Microsoft.Nothing/things", 404),
                ("POST", f"{self.sub}/providers/Microsoft.KeyVault/vaults", 405),
                ("GET", f"{self.sub}/resourceGroups/rg/providers/Microsoft.Web/sites/a/nope", 404),
                ("PUT", "/providers/Microsoft.Authorization/roleDefinitions/x", 405),
                ("GET", "/coffer/v1/nothing", 404), ("POST", "/coffer/v1/routes", 405),
                ("GET", "/v1.0/groups", 404), ("GET", "/no/such/path", 404)):
            with self.subTest(method=method, path=path):
                r = self.srv.arm_raw(method, f"{path}?api-version={ARM_API}")
                self.assertErrorBody(r, status)

    def test_only_administrators_list_the_routes(self):
        r = self.srv.arm_raw("GET", "/coffer/v1/routes", token=self.nobody[self.srv.mgmt_resource])
        self.assertErrorBody(r, 403)
