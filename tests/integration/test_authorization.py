"""Authorization, end to end against the real server: who may do what, and why.

* The data-plane matrix: every secrets operation x grant (none, exact, neighbouring, wildcard) x
  where it is granted (access policy; Azure RBAC at the vault, at the secret, at the resource
  group) x principal kind (service principal, user-assigned and system-assigned managed
  identity).  Each cell performs the operation with the principal's token, checks the 2xx or the
  403 (inner code, DecisionReason, the action and the resource it names), checks that a denied
  write changed nothing and an allowed one did, and asks the explain API for the same decision.
* Switching a vault between access policies and Azure RBAC, editing access policies and
  changing a custom role take effect on the next request, cached reads included.
* The management plane: what Contributor, Key Vault Contributor, Reader, User Access
  Administrator, Key Vault Data Access Administrator and a principal without a role may do, and
  that a role held at a resource group or a vault stops there.
* The explain API: the ways to name an action, every assignment considered, compound-identity and
  foreign-tenant policy entries, action patterns and notDataActions, scope boundaries.
* Bad access-policy edits, role assignments and role definitions are refused with a clear error
  and change nothing; the server keeps serving.
* Deleting a vault deletes the role assignments at and below it (and recovering it or re-creating
  the name does not bring them back).
* `coffer authz explain`, `coffer role ...` and `coffer keyvault create/set-policy` on the
  command line.

"""

import hashlib
import hmac
import http.client
import json
import ssl
import subprocess
import threading
import urllib.parse
import uuid

from harness import KV_API, ServerTestCase, b64url, coffer_binary, jwt_parts

AUTHZ_API = "2022-04-01"
VAULT_API = "2023-07-01"
SITES_API = "2023-12-01"
MI_API = "2019-08-01"
SECRETS = "Microsoft.KeyVault/vaults/secrets/"

ROLES = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Key Vault Contributor": "f25e0fa2-a7c8-4377-a976-54943a77a395",
    "Key Vault Data Access Administrator": "8b54135c-b56d-4d72-a534-26097cfdc8d8",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Certificates Officer": "a4417e6f-fecd-4de8-b567-7b0420556985",
    "Key Vault Crypto Officer": "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "Key Vault Crypto Service Encryption User": "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "Key Vault Crypto User": "12338af0-0e69-4776-bea7-57ae8d297424",
    "Key Vault Reader": "21090545-7ca7-4776-b22c-e363652d74d2",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Certificate User": "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
}
KV_DATA_ROLES = ("Key Vault Administrator", "Key Vault Certificates Officer",
                 "Key Vault Crypto Officer", "Key Vault Crypto Service Encryption User",
                 "Key Vault Crypto User", "Key Vault Reader", "Key Vault Secrets Officer",
                 "Key Vault Secrets User")

# (operation, access-policy permission, data action after SECRETS, applies at object scope)
OPERATIONS = (
    ("SecretGet", "get", "getSecret/action", True),
    ("SecretHash", "get", "getSecret/action", True),
    ("SecretList", "list", "readMetadata/action", False),
    ("SecretListVersions", "list", "readMetadata/action", True),
    ("SecretSet", "set", "setSecret/action", True),
    ("SecretUpdate", "set", "update/action", True),
    ("SecretDelete", "delete", "delete", True),
    ("SecretBackup", "backup", "backup/action", True),
    ("SecretRestore", "restore", "restore/action", False),
    ("SecretRecover", "recover", "recover/action", True),
    ("SecretPurge", "purge", "purge/action", True),
    ("SecretGetDeleted", "list", "readMetadata/action", True),
    ("SecretListDeleted", "list", "readMetadata/action", False),
)
# A different permission / data action of the same object type, for the "neighbouring" grants.
NEIGHBOUR_PERMISSION = {"get": "list", "list": "get", "set": "get", "delete": "recover",
                        "recover": "delete", "purge": "delete", "backup": "restore",
                        "restore": "backup"}
NEIGHBOUR_ACTION = {"getSecret/action": "readMetadata/action",
                    "readMetadata/action": "getSecret/action",
                    "setSecret/action": "update/action", "update/action": "setSecret/action",
                    "delete": "purge/action", "purge/action": "delete",
                    "recover/action": "restore/action", "backup/action": "restore/action",
                    "restore/action": "backup/action"}
WHERES = ("access policy", "vault", "secret", "resource group")
GRANTS = ("none", "exact", "neighbouring", "wildcard")
LIVE = "live"          # the secret every non-destructive cell works on
HASH_KEY = bytes(range(32))  # SecretHash's HMAC key in the matrix
RESTORED = "restored"  # the name the backup blob restores to


class Principal:
    """A caller: kind as the explain API names it, object id, app id and its tokens."""

    def __init__(self, label, kind, oid, app_id, vault_token, mgmt_token=None):
        self.label, self.kind, self.oid, self.app_id = label, kind, oid, app_id
        self.vault_token, self.mgmt_token = vault_token, mgmt_token

    def __repr__(self):
        return f"<{self.label} {self.kind} {self.oid}>"


class Connections:
    """Keep-alive HTTPS connections, one per host, so that the matrix's thousands of requests
    do not each pay a TLS handshake (and so that cached data-plane reads are exercised too)."""

    def __init__(self, srv):
        self.srv = srv
        self.conns = {}
        self.count = 0

    def close(self):
        for conn in self.conns.values():
            conn.close()
        self.conns = {}

    def request(self, method, host, target, body=None, token=None, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        for attempt in (0, 1):
            reused = host in self.conns
            conn = self.conns.get(host) or self.srv.connection(host)
            self.conns[host] = conn
            try:
                r = self.srv.send(conn, method, target, body, hdrs)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    ssl.SSLEOFError):
                # Only an idle connection the server closed is retried, once.
                conn.close()
                del self.conns[host]
                if attempt or not reused:
                    raise
                continue
            except Exception:
                conn.close()
                del self.conns[host]
                raise
            self.count += 1
            if r.headers.get("connection", "").lower() == "close":
                conn.close()
                del self.conns[host]
            return r
        raise AssertionError("unreachable")

    def kv(self, method, vault, path, body=None, token=None, query=None):
        q = {"api-version": KV_API}
        q.update(query or {})
        target = path + "?" + urllib.parse.urlencode(q)
        return self.request(method, self.srv.vault_host(vault), target, body,
                            token or self.srv.token(self.srv.vault_resource))

    def arm(self, method, target, body=None, token=None, api_version=None):
        if api_version is not None:
            target += ("&" if "?" in target else "?") + "api-version=" + api_version
        return self.request(method, "localhost", target, body,
                            token or self.srv.token(self.srv.mgmt_resource))


class AuthzTestCase(ServerTestCase):
    """Helpers for principals, vaults, access policies, roles and the explain API."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http = Connections(cls.srv)
        cls.addClassCleanup(cls.http.close)
        cls.admin_oid = jwt_parts(cls.srv.token(cls.srv.vault_resource))[1]["oid"]
        cls.sub_id = f"/subscriptions/{cls.srv.subscription}"

    # ---- CLI ---------------------------------------------------------------------------------

    def coffer(self, *args, expect=0):
        rc, out, err = self.run_coffer(*args)
        self.assertEqual(rc, expect, f"coffer {args}\nstdout: {out}\nstderr: {err}")
        return out if expect == 0 else err

    # ---- principals --------------------------------------------------------------------------

    @classmethod
    def new_sp(cls, name):
        sp = cls.coffer_json("ad", "sp", "create-for-rbac", "--name", name)
        tokens = []
        for resource in (cls.srv.vault_resource, cls.srv.mgmt_resource):
            r = cls.srv.token_response(resource, sp["appId"], sp["password"])
            if r.status != 200:
                raise AssertionError(f"token for {name}: {r!r}")
            tokens.append(r.json()["access_token"])
        oid = jwt_parts(tokens[0])[1]["oid"]
        p = Principal(name, "ServicePrincipal", oid, sp["appId"], *tokens)
        p.secret = sp["password"]
        return p

    @classmethod
    def new_workload_identities(cls, rg, app, uai_name):
        """A web app with a system-assigned and a user-assigned identity; returns both, with
        vault tokens from the app's /msi/token endpoint (the UAI selected by client_id)."""
        uai = cls.coffer_json("identity", "create", "-n", uai_name, "-g", rg)
        site = f"/resourceGroups/{rg}/providers/Microsoft.Web/sites/{app}"
        r = cls.srv.arm("PUT", site, {"location": "local", "identity": {
            "type": "SystemAssigned, UserAssigned",
            "userAssignedIdentities": {uai["id"]: {}}}}, api_version=SITES_API)
        if r.status not in (200, 201):
            raise AssertionError(f"PUT {site}: {r!r}")
        system_oid = r.json()["identity"]["principalId"]
        r = cls.srv.arm("POST", site + "/listIdentityEndpoint", api_version=SITES_API)
        if r.status != 200:
            raise AssertionError(f"listIdentityEndpoint: {r!r}")
        header = r.json()["identityHeader"]

        def mi_token(**selector):
            q = {"api-version": MI_API, "resource": cls.srv.vault_resource}
            q.update(selector)
            t = cls.srv.request("GET", "/msi/token?" + urllib.parse.urlencode(q),
                                headers={"X-IDENTITY-HEADER": header}, host="localhost",
                                auth=False)
            if t.status != 200:
                raise AssertionError(f"/msi/token {selector}: {t!r}")
            return t.json()["access_token"], t.json()["client_id"]

        sys_token, sys_client = mi_token()
        uai_token, uai_client = mi_token(client_id=uai["clientId"])
        system = Principal("system-assigned identity", "SystemAssignedIdentity", system_oid,
                           sys_client, sys_token)
        user = Principal("user-assigned identity", "UserAssignedIdentity", uai["principalId"],
                         uai_client, uai_token)
        for p in (system, user):
            if jwt_parts(p.vault_token)[1]["oid"] != p.oid:
                raise AssertionError(f"{p.label}: the token names another principal")
        return system, user

    # ---- vaults and access policies ------------------------------------------------------------

    @staticmethod
    def vault_path(rg, name):
        return f"/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"

    def vault_id(self, rg, name):
        return self.sub_id + self.vault_path(rg, name)

    @classmethod
    def create_vault(cls, rg, name, rbac, policies=None):
        props = {"enableRbacAuthorization": rbac}
        if policies is not None:
            props["accessPolicies"] = policies
        r = cls.srv.arm("PUT", cls.vault_path(rg, name), {"location": "local",
                                                            "properties": props})
        if r.status != 201:
            raise AssertionError(f"PUT vault {name}: {r!r}")
        return r.json()

    @classmethod
    def policy_entry(cls, oid, secrets=None, app_id=None):
        entry = {"tenantId": cls.srv.tenant, "objectId": oid,
                 "permissions": {} if secrets is None else {"secrets": list(secrets)}}
        if app_id:
            entry["applicationId"] = app_id
        return entry

    def edit_policies(self, rg, vault, kind, entries, token=None):
        return self.http.arm("PUT", self.sub_id + self.vault_path(rg, vault) +
                             f"/accessPolicies/{kind}",
                             {"properties": {"accessPolicies": entries}}, token=token,
                             api_version=VAULT_API)

    def vault_props(self, rg, vault):
        r = self.srv.arm("GET", self.vault_path(rg, vault))
        self.assertEqual(r.status, 200, r)
        return r.json()["properties"]

    # ---- roles ---------------------------------------------------------------------------------

    def role_definition_id(self, guid):
        return f"{self.sub_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"

    @classmethod
    def create_custom_role(cls, name, data_actions, actions=()):
        guid = str(uuid.uuid4())
        body = {"properties": {
            "roleName": name, "description": f"test role {name}",
            "permissions": [{"actions": list(actions), "notActions": [],
                             "dataActions": list(data_actions), "notDataActions": []}],
            "assignableScopes": [f"/subscriptions/{cls.srv.subscription}"]}}
        r = cls.srv.arm("PUT", f"/providers/Microsoft.Authorization/roleDefinitions/{guid}", body,
                        api_version=AUTHZ_API)
        if r.status != 201:
            raise AssertionError(f"PUT role {name}: {r!r}")
        return guid

    def assign(self, scope, role_guid, principal_id, name=None, token=None, body=None):
        """PUT a role assignment at scope (a full resource id); returns (response, name)."""
        name = name or str(uuid.uuid4())
        if body is None:
            body = {"properties": {"roleDefinitionId": self.role_definition_id(role_guid),
                                   "principalId": principal_id}}
        r = self.http.arm("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/"
                                 f"{name}", body, token=token, api_version=AUTHZ_API)
        return r, name

    def assign_ok(self, scope, role_guid, principal_id, token=None):
        r, name = self.assign(scope, role_guid, principal_id, token=token)
        self.assertEqual(r.status, 201, r)
        return name

    def unassign(self, scope, name, token=None):
        return self.http.arm("DELETE", f"{scope}/providers/Microsoft.Authorization/"
                                       f"roleAssignments/{name}", token=token,
                             api_version=AUTHZ_API)

    def assignments(self, scope=None, filter=None, token=None):
        """{name: (scope, principalId, role guid)} listed at scope (default: the subscription,
        which lists every assignment at, above and below it)."""
        target = f"{scope or self.sub_id}/providers/Microsoft.Authorization/roleAssignments"
        if filter:
            target += "?$filter=" + urllib.parse.quote(filter)
        r = self.http.arm("GET", target, token=token, api_version=AUTHZ_API)
        self.assertEqual(r.status, 200, r)
        out = {}
        for a in r.json()["value"]:
            p = a["properties"]
            out[a["name"]] = (p["scope"], p["principalId"],
                              p["roleDefinitionId"].rsplit("/", 1)[1])
        return out

    def custom_roles(self):
        r = self.http.arm("GET", f"{self.sub_id}/providers/Microsoft.Authorization/"
                                 "roleDefinitions?$filter=" +
                          urllib.parse.quote("type eq 'CustomRole'"), api_version=AUTHZ_API)
        self.assertEqual(r.status, 200, r)
        return {d["name"]: d["properties"] for d in r.json()["value"]}

    # ---- explain -------------------------------------------------------------------------------

    def explain(self, assignee, vault, action, obj=None, token=None):
        q = {"assignee": assignee, "vault": vault, "action": action}
        if obj is not None:
            q["object"] = obj
        return self.http.request("GET", "localhost",
                                 "/coffer/v1/authz/explain?" + urllib.parse.urlencode(q),
                                 token=token or self.srv.token(self.srv.mgmt_resource))

    def explain_ok(self, *args, **kw):
        r = self.explain(*args, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    # ---- assertions ----------------------------------------------------------------------------

    def assertAccessPolicyDenial(self, r, principal, vault, permission, reason, msg=""):
        body = self.assertErrorBody(r, 403, "Forbidden", msg)
        self.assertEqual(body["error"].get("innererror"), {"code": "AccessDenied"}, f"{msg} {r!r}")
        text = body["error"]["message"]
        for needle in (f"does not have secrets {permission} permission on key vault "
                       f"'{vault};location=local'", f"DecisionReason: '{reason}'",
                       f"oid={principal.oid}"):
            self.assertIn(needle, text, msg)

    def assertRbacDenial(self, r, principal, action, resource, reason, msg=""):
        body = self.assertErrorBody(r, 403, "Forbidden", msg)
        self.assertEqual(body["error"].get("innererror"), {"code": "ForbiddenByRbac"},
                         f"{msg} {r!r}")
        text = body["error"]["message"]
        for needle in (f"Action: '{action}'", f"Resource: '{resource.lower()}'",
                       f"DecisionReason: '{reason}'", f"oid={principal.oid}"):
            self.assertIn(needle, text, msg)

    def assertArmDenied(self, r, action=None, msg=""):
        body = self.assertErrorBody(r, 403, "AuthorizationFailed", msg)
        if action:
            self.assertIn(f"'{action}'", body["error"]["message"], msg)
        return body


class DataPlaneMatrixTests(AuthzTestCase):
    """Every secrets operation x grant x where x principal kind (see the module docstring)."""

    AP_RG, AP_VAULT = "rg-matrix-ap", "matrixap"
    RBAC_RG, RBAC_VAULT = "rg-matrix-rbac", "matrixrbac"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        admin_entry = cls.policy_entry(cls.admin_oid, ["all"])
        cls.create_vault(cls.AP_RG, cls.AP_VAULT, False, [admin_entry])
        cls.create_vault(cls.RBAC_RG, cls.RBAC_VAULT, True)
        cls.state = {}
        for vault in (cls.AP_VAULT, cls.RBAC_VAULT):
            live = cls.admin_kv("PUT", vault, f"/secrets/{LIVE}", {"value": "live-0"}, 200)
            cls.admin_kv("PUT", vault, f"/secrets/{RESTORED}", {"value": "restored"}, 200)
            blob = cls.admin_kv("POST", vault, f"/secrets/{RESTORED}/backup", None, 200)["value"]
            cls.admin_kv("DELETE", vault, f"/secrets/{RESTORED}", None, 200)
            cls.admin_kv("DELETE", vault, f"/deletedsecrets/{RESTORED}", None, 204)
            cls.state[vault] = {"value": "live-0", "version": live["id"].rsplit("/", 1)[1],
                                "blob": blob}
        actions = sorted({op[2] for op in OPERATIONS})
        cls.exact_role = {a: cls.create_custom_role(f"matrix exact {a}", [SECRETS + a])
                          for a in actions}
        cls.wildcard_role = cls.create_custom_role("matrix secrets wildcard", [SECRETS + "*"])
        cls.sp = cls.new_sp("matrix-sp")
        cls.system, cls.user = cls.new_workload_identities("rg-matrix-wl", "matrix-app",
                                                           "matrix-uai")
        cls.counter = 0

    @classmethod
    def admin_kv(cls, method, vault, path, body, status):
        r = cls.http.kv(method, vault, path, body)
        if r.status != status:
            raise AssertionError(f"admin {method} {vault}{path}: expected {status}, got {r!r}")
        return r.json() if r.body else None

    # ---- one cell ------------------------------------------------------------------------------

    def fresh_name(self, op_name):
        type(self).counter += 1
        return f"{op_name.lower()[6:]}-{self.counter}"

    def expectation(self, where, grant, on_object):
        """(allowed, DecisionReason, does the grant apply to the principal and resource)."""
        if where == "access policy":
            return {"none": (False, "NoAccessPolicy", None),
                    "neighbouring": (False, "AccessPolicyLacksPermission", True),
                    "exact": (True, "AccessPolicyMatch", True),
                    "wildcard": (True, "AccessPolicyMatch", True)}[grant]
        if grant == "none":
            return False, "NoRoleAssignment", None
        if where == "secret" and not on_object:
            return False, "NoRoleAssignment", False
        if grant == "neighbouring":
            return False, "RoleLacksAction", True
        return True, "RoleAssignmentMatch", True

    def grant(self, p, where, grant, op, scope_object):
        """Sets the grant; returns what revoke() needs (None for no grant)."""
        name, perm, action, _ = op
        if grant == "none":
            return None
        if where == "access policy":
            perms = {"exact": [perm], "neighbouring": [NEIGHBOUR_PERMISSION[perm]],
                     "wildcard": ["all"]}[grant]
            r = self.edit_policies(self.AP_RG, self.AP_VAULT, "add",
                                   [self.policy_entry(p.oid, perms)])
            self.assertEqual(r.status, 200, r)
            return ("policy", None)
        role = {"exact": self.exact_role[action],
                "neighbouring": self.exact_role[NEIGHBOUR_ACTION[action]],
                "wildcard": self.wildcard_role}[grant]
        vault_id = self.vault_id(self.RBAC_RG, self.RBAC_VAULT)
        scope = {"vault": vault_id, "secret": f"{vault_id}/secrets/{scope_object}",
                 "resource group": f"{self.sub_id}/resourceGroups/{self.RBAC_RG}"}[where]
        r, assignment = self.assign(scope, role, p.oid)
        self.assertEqual(r.status, 201, r)
        return ("role", (scope, assignment))

    def revoke(self, p, handle):
        if handle is None:
            return
        kind, what = handle
        if kind == "policy":
            r = self.edit_policies(self.AP_RG, self.AP_VAULT, "remove",
                                   [self.policy_entry(p.oid)])
        else:
            r = self.unassign(*what)
        self.assertEqual(r.status, 200, r)

    def run_cell(self, p, where, grant, op):
        name, perm, action, on_object = op
        vault = self.AP_VAULT if where == "access policy" else self.RBAC_VAULT
        rg = self.AP_RG if where == "access policy" else self.RBAC_RG
        cell = f"{p.label} / {where} / {grant} / {name}"
        allowed, reason, applies = self.expectation(where, grant, on_object)

        # State, part one: what must exist before an object-scope grant can name it.
        target = None
        if name in ("SecretGet", "SecretHash", "SecretListVersions", "SecretSet",
                    "SecretUpdate", "SecretBackup"):
            target = LIVE
        elif name in ("SecretDelete", "SecretRecover", "SecretPurge", "SecretGetDeleted"):
            target = self.fresh_name(name)
            self.admin_kv("PUT", vault, f"/secrets/{target}", {"value": "v"}, 200)
        handle = self.grant(p, where, grant, op, target or LIVE)
        try:
            # State, part two: soft-delete what the deleted-secret operations work on.
            if name in ("SecretRecover", "SecretPurge", "SecretGetDeleted"):
                self.admin_kv("DELETE", vault, f"/secrets/{target}", None, 200)
            r, ok_status = self.perform(p, vault, name, target, cell)
            resource = self.vault_id(rg, vault)
            if on_object:
                resource += f"/secrets/{target}"
            if allowed:
                self.assertEqual(r.status, ok_status, f"{cell}: expected allowed, got {r!r}")
            elif where == "access policy":
                self.assertAccessPolicyDenial(r, p, vault, perm, reason, cell)
            else:
                self.assertRbacDenial(r, p, SECRETS + action, resource, reason, cell)
            self.check_effect(vault, name, target, allowed, r, cell)
            self.check_explain(p, vault, op, target, resource, allowed, reason, applies, where,
                               handle, cell)
        finally:
            self.revoke(p, handle)
            if name == "SecretRestore" and self.http.kv("GET", vault,
                                                        f"/secrets/{RESTORED}").status == 200:
                self.admin_kv("DELETE", vault, f"/secrets/{RESTORED}", None, 200)
                self.admin_kv("DELETE", vault, f"/deletedsecrets/{RESTORED}", None, 204)

    def perform(self, p, vault, name, target, cell):
        """The operation with the principal's token; returns (response, status on success)."""
        st = self.state[vault]

        def kv(method, path, body=None):
            return self.http.kv(method, vault, path, body, token=p.vault_token)

        if name == "SecretGet":
            return kv("GET", f"/secrets/{target}"), 200
        if name == "SecretHash":
            return kv("POST", f"/secrets/{target}/hash", {"key": b64url(HASH_KEY)}), 200
        if name == "SecretList":
            return kv("GET", "/secrets"), 200
        if name == "SecretListVersions":
            return kv("GET", f"/secrets/{target}/versions"), 200
        if name == "SecretSet":
            st["attempt"] = "value " + cell
            return kv("PUT", f"/secrets/{target}", {"value": st["attempt"]}), 200
        if name == "SecretUpdate":
            return kv("PATCH", f"/secrets/{target}/{st['version']}",
                      {"tags": {"cell": cell[:200]}}), 200
        if name == "SecretDelete":
            return kv("DELETE", f"/secrets/{target}"), 200
        if name == "SecretBackup":
            return kv("POST", f"/secrets/{target}/backup"), 200
        if name == "SecretRestore":
            return kv("POST", "/secrets/restore", {"value": st["blob"]}), 200
        if name == "SecretRecover":
            return kv("POST", f"/deletedsecrets/{target}/recover"), 200
        if name == "SecretPurge":
            return kv("DELETE", f"/deletedsecrets/{target}"), 204
        if name == "SecretGetDeleted":
            return kv("GET", f"/deletedsecrets/{target}"), 200
        if name == "SecretListDeleted":
            return kv("GET", "/deletedsecrets"), 200
        raise AssertionError(name)

    def check_effect(self, vault, name, target, allowed, r, cell):
        """An allowed operation did its work; a denied one changed nothing."""
        st = self.state[vault]
        kv = lambda method, path: self.http.kv(method, vault, path)  # noqa: E731 (admin)
        if name == "SecretGet" and allowed:
            self.assertEqual(r.json()["value"], st["value"], cell)
        elif name == "SecretHash" and allowed:
            digest = hmac.new(HASH_KEY, st["value"].encode(), hashlib.sha256).digest()
            self.assertEqual(r.json()["value"], b64url(digest), cell)
        elif name in ("SecretList", "SecretListDeleted", "SecretListVersions") and allowed:
            self.assertIsInstance(r.json()["value"], list, cell)
            self.assertNotIn("value", (r.json()["value"] or [{}])[0], cell)
        elif name == "SecretSet":
            if r.status == 200:  # bookkeeping by what happened, so one failure stays one
                st["value"] = st["attempt"]
            value = kv("GET", f"/secrets/{target}").json()["value"]
            self.assertEqual(value, st["value"], cell)
            self.assertEqual(value == st["attempt"], allowed, cell)
        elif name == "SecretUpdate":
            tags = kv("GET", f"/secrets/{target}/{st['version']}").json().get("tags") or {}
            self.assertEqual(tags.get("cell") == cell[:200], allowed, f"{cell}: tags {tags}")
        elif name == "SecretDelete":
            self.assertEqual(kv("GET", f"/secrets/{target}").status, 404 if allowed else 200,
                             cell)
        elif name == "SecretBackup" and allowed:
            self.assertTrue(r.json()["value"], cell)
        elif name == "SecretRestore":
            restored = kv("GET", f"/secrets/{RESTORED}")
            self.assertEqual(restored.status, 200 if allowed else 404, cell)
            if allowed:
                self.assertEqual(restored.json()["value"], "restored", cell)
        elif name == "SecretRecover":
            self.assertEqual(kv("GET", f"/secrets/{target}").status, 200 if allowed else 404,
                             cell)
        elif name == "SecretPurge":
            self.assertEqual(kv("GET", f"/deletedsecrets/{target}").status,
                             404 if allowed else 200, cell)
        elif name == "SecretGetDeleted" and allowed:
            self.assertTrue(r.json()["recoveryId"].endswith(f"/deletedsecrets/{target}"), cell)

    def check_explain(self, p, vault, op, target, resource, allowed, reason, applies, where,
                      handle, cell):
        name, perm, action, on_object = op
        d = self.explain_ok(p.oid, vault, name, target)
        got = {k: d.get(k) for k in ("allowed", "decisionReason", "model", "operation",
                                     "permission", "dataAction", "vault", "resource")}
        want = {"allowed": allowed, "decisionReason": reason,
                "model": "access policies" if where == "access policy" else "Azure RBAC",
                "operation": name, "permission": f"secrets/{perm}",
                "dataAction": SECRETS + action, "vault": vault, "resource": resource}
        self.assertEqual(got, want, f"{cell}: explain {d}")
        self.assertEqual(d["principal"]["objectId"], p.oid, cell)
        self.assertEqual(d["principal"]["kind"], p.kind, cell)
        if handle is None:
            self.assertEqual(d["considered"], [], f"{cell}: {d}")
            self.assertIsNone(d["applied"], cell)
            return
        self.assertEqual(len(d["considered"]), 1, f"{cell}: {d}")
        c = d["considered"][0]
        self.assertEqual((c["appliesToPrincipalAndResource"], c["grants"]), (applies, allowed),
                         f"{cell}: {c}")
        if handle[0] == "role":
            scope, assignment = handle[1]
            self.assertEqual((c["source"], c["id"], c["scope"]),
                             ("roleAssignment", assignment, scope), f"{cell}: {c}")
        else:
            self.assertEqual(c["source"], "accessPolicy", f"{cell}: {c}")
        self.assertEqual(d["applied"], c["id"] if allowed else None, f"{cell}: {d}")

    def run_matrix(self, p):
        cells = 0
        for where in WHERES:
            for grant in GRANTS:
                for op in OPERATIONS:
                    with self.subTest(principal=p.label, where=where, grant=grant, op=op[0]):
                        cells += 1
                        self.run_cell(p, where, grant, op)
        self.assertEqual(cells, len(WHERES) * len(GRANTS) * len(OPERATIONS))
        # Nothing is left behind for the next principal.
        self.assertEqual([a for a in self.assignments().values() if a[1] == p.oid], [])
        entries = self.vault_props(self.AP_RG, self.AP_VAULT)["accessPolicies"]
        self.assertEqual([e["objectId"] for e in entries], [self.admin_oid])

    def test_matrix_service_principal(self):
        self.run_matrix(self.sp)

    def test_matrix_user_assigned_identity(self):
        self.run_matrix(self.user)

    def test_matrix_system_assigned_identity(self):
        self.run_matrix(self.system)


class PermissionModelTests(AuthzTestCase):

    def test_switching_the_permission_model_takes_effect_on_the_next_request(self):
        rg, vault = "rg-switch", "switchvault"
        self.create_vault(rg, vault, False, [self.policy_entry(self.admin_oid, ["all"])])
        self.assertEqual(self.http.kv("PUT", vault, "/secrets/s", {"value": "switch"}).status, 200)
        by_policy = self.new_sp("switch-by-policy")
        by_role = self.new_sp("switch-by-role")
        r = self.edit_policies(rg, vault, "add", [self.policy_entry(by_policy.oid, ["get"])])
        self.assertEqual(r.status, 200, r)

        def get(p):
            return self.http.kv("GET", vault, "/secrets/s", token=p.vault_token)

        def patch(rbac):
            r = self.http.arm("PATCH", self.vault_id(rg, vault),
                              {"properties": {"enableRbacAuthorization": rbac}},
                              api_version=VAULT_API)
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.json()["properties"]["enableRbacAuthorization"], rbac)

        resource = self.vault_id(rg, vault) + "/secrets/s"
        # Warm every cache (same keep-alive connection, same token) before each switch.
        for _ in range(3):
            self.assertEqual(get(by_policy).status, 200)
            self.assertAccessPolicyDenial(get(by_role), by_role, vault, "get", "NoAccessPolicy")
        patch(True)
        self.assertRbacDenial(get(by_policy), by_policy, SECRETS + "getSecret/action", resource,
                              "NoRoleAssignment", "the access policy still works under RBAC")
        d = self.explain_ok(by_policy.oid, vault, "SecretGet", "s")
        self.assertEqual((d["model"], d["allowed"], d["decisionReason"]),
                         ("Azure RBAC", False, "NoRoleAssignment"), d)
        self.assertEqual(self.http.kv("GET", vault, "/secrets/s").status, 200,
                         "the administrator holds Key Vault Administrator")
        self.assign_ok(self.vault_id(rg, vault), ROLES["Key Vault Secrets User"], by_role.oid)
        for _ in range(3):
            self.assertEqual(get(by_role).status, 200)
        patch(False)
        self.assertAccessPolicyDenial(get(by_role), by_role, vault, "get", "NoAccessPolicy",
                                      "the role assignment still works under access policies")
        self.assertEqual(get(by_policy).status, 200, "the policy is kept across the switch")
        d = self.explain_ok(by_role.oid, vault, "SecretGet", "s")
        self.assertEqual((d["model"], d["allowed"], d["decisionReason"], d["considered"]),
                         ("access policies", False, "NoAccessPolicy", []), d)
        # And the same switch made with PUT (the whole vault) rather than PATCH.
        props = self.vault_props(rg, vault)
        r = self.http.arm("PUT", self.vault_id(rg, vault),
                          {"location": "local", "properties": dict(
                              props, enableRbacAuthorization=True)}, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(get(by_role).status, 200)
        self.assertRbacDenial(get(by_policy), by_policy, SECRETS + "getSecret/action", resource,
                              "NoRoleAssignment")

    def test_access_policy_edits_take_effect_on_the_next_request(self):
        rg, vault = "rg-policy", "policyvault"
        self.create_vault(rg, vault, False, [self.policy_entry(self.admin_oid, ["all"])])
        self.assertEqual(self.http.kv("PUT", vault, "/secrets/s", {"value": "v"}).status, 200)
        p = self.new_sp("policy-edits")
        probes = {"get": ("GET", "/secrets/s"), "list": ("GET", "/secrets"),
                  "backup": ("POST", "/secrets/s/backup")}

        def allowed():
            out = set()
            for perm, (method, path) in probes.items():
                r = self.http.kv(method, vault, path, token=p.vault_token)
                if r.status == 200:
                    out.add(perm)
                else:
                    self.assertEqual(r.status, 403, r)
            return out

        def entry():
            mine = [e for e in self.vault_props(rg, vault)["accessPolicies"]
                    if e["objectId"].lower() == p.oid]
            self.assertLessEqual(len(mine), 1, mine)
            return sorted(x.lower() for x in mine[0]["permissions"]["secrets"]) if mine else None

        def edit(kind, oid, perms):
            r = self.edit_policies(rg, vault, kind, [self.policy_entry(oid, perms)])
            self.assertEqual(r.status, 200, r)

        self.assertEqual(allowed(), set())
        # Object ids and permission names compare case-insensitively.
        edit("add", p.oid.upper(), ["GET"])
        self.assertEqual(allowed(), {"get"})
        edit("add", p.oid, ["list", "get"])
        self.assertEqual(allowed(), {"get", "list"})
        self.assertEqual(entry(), ["get", "list"], "add merges without duplicates")
        edit("replace", p.oid, ["backup"])
        self.assertEqual(allowed(), {"backup"})
        self.assertEqual(entry(), ["backup"])
        edit("remove", p.oid, ["backup"])
        self.assertIsNone(entry(), "an entry left with no permissions is dropped")
        self.assertEqual(allowed(), set())
        self.assertAccessPolicyDenial(self.http.kv("GET", vault, "/secrets/s",
                                                   token=p.vault_token), p, vault, "get",
                                      "NoAccessPolicy")
        edit("add", p.oid, ["all"])
        self.assertEqual(allowed(), {"get", "list", "backup"})
        edit("remove", p.oid.upper(), None)
        self.assertIsNone(entry(), "an entry naming no permissions removes the whole entry")
        self.assertEqual(allowed(), set())
        self.assertEqual([e["objectId"] for e in self.vault_props(rg, vault)["accessPolicies"]],
                         [self.admin_oid])


class ManagementPlaneTests(AuthzTestCase):
    """What the built-in control-plane roles allow, each held at the subscription."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.create_vault("rg-mgmt", "mgmtrbac", True)
        cls.create_vault("rg-mgmt", "mgmtap", False, [cls.policy_entry(cls.admin_oid, ["all"])])
        for vault in ("mgmtrbac", "mgmtap"):
            r = cls.http.kv("PUT", vault, "/secrets/s", {"value": "admin's"})
            if r.status != 200:
                raise AssertionError(r)

    def holder(self, role, label):
        p = self.new_sp(label)
        self.assign_ok(self.sub_id, ROLES[role], p.oid)
        return p

    def put_vault(self, p, rg, name, rbac=None):
        props = {} if rbac is None else {"enableRbacAuthorization": rbac}
        return self.http.arm("PUT", self.vault_id(rg, name), {"location": "local",
                                                              "properties": props},
                             token=p.mgmt_token, api_version=VAULT_API)

    def assertNoVault(self, rg, name):
        r = self.srv.arm("GET", self.vault_path(rg, name))
        self.assertErrorBody(r, 404, "ResourceNotFound")

    def assertCannotAssign(self, p, role="Key Vault Secrets User", scope=None, condition=False):
        scope = scope or self.vault_id("rg-mgmt", "mgmtrbac")
        before = self.assignments()
        r, name = self.assign(scope, ROLES[role], p.oid, token=p.mgmt_token)
        body = self.assertArmDenied(r, "Microsoft.Authorization/roleAssignments/write",
                                    f"{p.label} assigning {role}")
        self.assertEqual("ABAC condition" in body["error"]["message"], condition, r)
        self.assertEqual(self.assignments(), before, "a refused assignment was stored")
        r = self.http.arm("GET", f"{scope}/providers/Microsoft.Authorization/roleAssignments/"
                                 f"{name}", api_version=AUTHZ_API)
        self.assertErrorBody(r, 404, "RoleAssignmentNotFound")

    def test_contributor_can_grant_itself_data_access_through_access_policies(self):
        c = self.holder("Contributor", "contributor")
        r = self.put_vault(c, "rg-contrib", "contribvault")
        self.assertEqual(r.status, 201, r)
        self.assertIs(r.json()["properties"]["enableRbacAuthorization"], False,
                      "api-version 2023-07-01 creates access-policy vaults")
        self.assertEqual(r.json()["properties"]["accessPolicies"], [])
        self.assertAccessPolicyDenial(
            self.http.kv("PUT", "contribvault", "/secrets/mine", {"value": "x"},
                         token=c.vault_token), c, "contribvault", "set", "NoAccessPolicy")
        # Azure's known weakness, reproduced: vaults/accessPolicies/write is a control-plane
        # action, so a Contributor can write itself into any access-policy vault.
        for rg, vault in (("rg-contrib", "contribvault"), ("rg-mgmt", "mgmtap")):
            r = self.edit_policies(rg, vault, "add",
                                   [self.policy_entry(c.oid, ["get", "set", "list"])],
                                   token=c.mgmt_token)
            self.assertEqual(r.status, 200, r)
        r = self.http.kv("PUT", "contribvault", "/secrets/mine", {"value": "x"},
                         token=c.vault_token)
        self.assertEqual(r.status, 200, r)
        r = self.http.kv("GET", "mgmtap", "/secrets/s", token=c.vault_token)
        self.assertEqual((r.status, r.json().get("value")), (200, "admin's"), r)
        # ... but not into an RBAC vault, and it cannot assign roles.
        self.assertRbacDenial(self.http.kv("GET", "mgmtrbac", "/secrets/s", token=c.vault_token),
                              c, SECRETS + "getSecret/action",
                              self.vault_id("rg-mgmt", "mgmtrbac") + "/secrets/s",
                              "RoleLacksAction")
        r = self.edit_policies("rg-mgmt", "mgmtrbac", "add", [self.policy_entry(c.oid, ["get"])],
                               token=c.mgmt_token)
        self.assertErrorBody(r, 400, "BadRequest")
        self.assertEqual(self.vault_props("rg-mgmt", "mgmtrbac")["accessPolicies"], [])
        self.assertCannotAssign(c)
        self.assertCannotAssign(c, "Owner", self.sub_id)
        # Clean up the grant it gave itself on the shared vault.
        r = self.edit_policies("rg-mgmt", "mgmtap", "remove", [self.policy_entry(c.oid)])
        self.assertEqual(r.status, 200, r)

    def test_key_vault_contributor_manages_vaults_but_gets_no_data_access(self):
        k = self.holder("Key Vault Contributor", "kv-contributor")
        r = self.put_vault(k, "rg-kvc", "kvcvault", rbac=True)
        self.assertEqual(r.status, 201, r)
        r = self.http.arm("PATCH", self.vault_id("rg-kvc", "kvcvault"), {"tags": {"team": "k"}},
                          token=k.mgmt_token, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["tags"], {"team": "k"})
        for vault, rg in (("kvcvault", "rg-kvc"), ("mgmtrbac", "rg-mgmt")):
            r = self.http.kv("PUT", vault, "/secrets/s", {"value": "k"}, token=k.vault_token)
            # Its assignment covers the vault; its role has no data actions.
            self.assertRbacDenial(r, k, SECRETS + "setSecret/action",
                                  self.vault_id(rg, vault) + "/secrets/s", "RoleLacksAction")
        self.assertAccessPolicyDenial(
            self.http.kv("GET", "mgmtap", "/secrets/s", token=k.vault_token), k, "mgmtap", "get",
            "NoAccessPolicy")
        d = self.explain_ok(k.oid, "kvcvault", "SecretSet", "s")
        self.assertEqual((d["allowed"], d["decisionReason"]), (False, "RoleLacksAction"), d)
        self.assertEqual([(c["role"], c["appliesToPrincipalAndResource"], c["grants"])
                          for c in d["considered"]], [("Key Vault Contributor", True, False)], d)
        self.assertCannotAssign(k, scope=self.vault_id("rg-kvc", "kvcvault"))
        # Its actions stop at Microsoft.KeyVault.
        r = self.http.arm("PUT", f"{self.sub_id}/resourceGroups/rg-kvc/providers/"
                                 "Microsoft.Web/sites/kvc-app", {"location": "local"},
                          token=k.mgmt_token, api_version=SITES_API)
        self.assertArmDenied(r, "Microsoft.Web/sites/write")
        r = self.http.arm("DELETE", self.vault_id("rg-kvc", "kvcvault"), token=k.mgmt_token,
                          api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.assertNoVault("rg-kvc", "kvcvault")

    def test_reader_reads_but_cannot_write(self):
        rd = self.holder("Reader", "reader")
        vault = self.vault_id("rg-mgmt", "mgmtrbac")
        r = self.http.arm("GET", vault, token=rd.mgmt_token, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        before = r.json()
        r = self.http.arm("GET", f"{self.sub_id}/providers/Microsoft.KeyVault/vaults",
                          token=rd.mgmt_token, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual({"mgmtrbac", "mgmtap"}, {v["name"] for v in r.json()["value"]})
        self.assertIn(rd.oid, [a[1] for a in self.assignments(token=rd.mgmt_token).values()])
        self.assertArmDenied(self.put_vault(rd, "rg-reader", "readervault"),
                             "Microsoft.KeyVault/vaults/write")
        self.assertNoVault("rg-reader", "readervault")
        self.assertArmDenied(self.http.arm("PATCH", vault, {"tags": {"x": "y"}},
                                           token=rd.mgmt_token, api_version=VAULT_API),
                             "Microsoft.KeyVault/vaults/write")
        self.assertArmDenied(self.http.arm("DELETE", vault, token=rd.mgmt_token,
                                           api_version=VAULT_API),
                             "Microsoft.KeyVault/vaults/delete")
        policies = self.vault_props("rg-mgmt", "mgmtap")["accessPolicies"]
        self.assertArmDenied(self.edit_policies("rg-mgmt", "mgmtap", "add",
                                                [self.policy_entry(rd.oid, ["get"])],
                                                token=rd.mgmt_token))
        self.assertEqual(self.vault_props("rg-mgmt", "mgmtap")["accessPolicies"], policies)
        self.assertEqual(self.srv.arm("GET", self.vault_path("rg-mgmt", "mgmtrbac")).json(),
                         before)
        self.assertCannotAssign(rd)
        self.assertRbacDenial(self.http.kv("GET", "mgmtrbac", "/secrets/s", token=rd.vault_token),
                              rd, SECRETS + "getSecret/action", vault + "/secrets/s",
                              "RoleLacksAction")
        # Reading a vault's policies and assignments is what the explain API needs.
        d = self.explain_ok(rd.oid, "mgmtrbac", "SecretGet", "s", token=rd.mgmt_token)
        self.assertEqual(d["decisionReason"], "RoleLacksAction", d)

    def test_user_access_administrator_assigns_roles_but_manages_no_vaults(self):
        u = self.holder("User Access Administrator", "uaa")
        other = self.new_sp("uaa-beneficiary")
        vault = self.vault_id("rg-mgmt", "mgmtrbac")
        self.assertArmDenied(self.put_vault(u, "rg-uaa", "uaavault"),
                             "Microsoft.KeyVault/vaults/write")
        self.assertNoVault("rg-uaa", "uaavault")
        get = lambda: self.http.kv("GET", "mgmtrbac", "/secrets/s",  # noqa: E731
                                   token=other.vault_token)
        self.assertEqual(get().status, 403)
        user = self.assign_ok(vault, ROLES["Key Vault Secrets User"], other.oid,
                              token=u.mgmt_token)
        self.assertEqual(get().status, 200)
        owner = self.assign_ok(f"{self.sub_id}/resourceGroups/rg-mgmt", ROLES["Owner"],
                               other.oid, token=u.mgmt_token)
        listed = self.assignments(filter=f"principalId eq '{other.oid}'")
        self.assertEqual(set(listed), {user, owner}, listed)
        self.assertEqual(listed[user][2], ROLES["Key Vault Secrets User"])
        self.assertEqual(self.unassign(vault, user, token=u.mgmt_token).status, 200)
        self.assertEqual(self.unassign(vault, user, token=u.mgmt_token).status, 204)
        self.assertEqual(self.unassign(f"{self.sub_id}/resourceGroups/rg-mgmt", owner,
                                       token=u.mgmt_token).status, 200)
        self.assertEqual(self.assignments(filter=f"principalId eq '{other.oid}'"), {})
        self.assertEqual(get().status, 403)

    def test_key_vault_data_access_administrator_assigns_only_key_vault_data_roles(self):
        d = self.holder("Key Vault Data Access Administrator", "daa")
        other = self.new_sp("daa-beneficiary")
        vault = self.vault_id("rg-mgmt", "mgmtrbac")
        get = lambda: self.http.kv("GET", "mgmtrbac", "/secrets/s",  # noqa: E731
                                   token=other.vault_token)
        user = self.assign_ok(vault, ROLES["Key Vault Secrets User"], other.oid,
                              token=d.mgmt_token)
        self.assertEqual(get().status, 200)
        for role in KV_DATA_ROLES:
            if role == "Key Vault Secrets User":
                continue
            with self.subTest(role=role):
                name = self.assign_ok(vault, ROLES[role], other.oid, token=d.mgmt_token)
                self.assertEqual(self.unassign(vault, name, token=d.mgmt_token).status, 200)
        for role in ("Owner", "Contributor", "User Access Administrator",
                     "Key Vault Data Access Administrator", "Key Vault Contributor", "Reader",
                     "Key Vault Certificate User"):
            with self.subTest(role=role):
                self.assertCannotAssign(d, role, condition=True)
        # Nor a custom role, however harmless.
        custom = self.create_custom_role("daa custom", [SECRETS + "readMetadata/action"])
        before = self.assignments()
        r, _ = self.assign(vault, custom, other.oid, token=d.mgmt_token)
        self.assertIn("ABAC condition", self.assertArmDenied(r)["error"]["message"])
        self.assertEqual(self.assignments(), before)
        # The condition holds for deletions too: it cannot remove an Owner assignment.
        owner = self.assign_ok(vault, ROLES["Owner"], other.oid)
        r = self.unassign(vault, owner, token=d.mgmt_token)
        body = self.assertArmDenied(r, "Microsoft.Authorization/roleAssignments/delete")
        self.assertIn("ABAC condition", body["error"]["message"])
        self.assertIn(owner, self.assignments())
        self.assertEqual(self.unassign(vault, owner).status, 200)
        self.assertEqual(self.unassign(vault, user, token=d.mgmt_token).status, 200)
        self.assertEqual(get().status, 403)
        self.assertArmDenied(self.put_vault(d, "rg-daa", "daavault"),
                             "Microsoft.KeyVault/vaults/write")
        self.assertRbacDenial(self.http.kv("GET", "mgmtrbac", "/secrets/s", token=d.vault_token),
                              d, SECRETS + "getSecret/action", vault + "/secrets/s",
                              "RoleLacksAction")

    def test_roles_held_at_a_resource_group_or_a_vault_stop_there(self):
        self.create_vault("rg-mgmt-other", "mgmtother", True)
        rg = f"{self.sub_id}/resourceGroups/rg-mgmt"
        c = self.new_sp("rg-contributor")
        self.assign_ok(rg, ROLES["Contributor"], c.oid)
        self.assertEqual(self.put_vault(c, "rg-mgmt", "rgscoped").status, 201)
        self.assertArmDenied(self.put_vault(c, "rg-mgmt-other", "rgscoped2"),
                             "Microsoft.KeyVault/vaults/write")
        self.assertNoVault("rg-mgmt-other", "rgscoped2")
        other = self.vault_id("rg-mgmt-other", "mgmtother")
        self.assertArmDenied(self.http.arm("PATCH", other, {"tags": {"x": "y"}},
                                           token=c.mgmt_token, api_version=VAULT_API),
                             "Microsoft.KeyVault/vaults/write")
        # The subscription's vault list shows it the resource group's vaults only.
        everything = self.http.arm("GET", f"{self.sub_id}/providers/Microsoft.KeyVault/vaults",
                                   api_version=VAULT_API).json()["value"]
        in_rg = {v["name"] for v in everything if "/resourceGroups/rg-mgmt/" in v["id"]}
        self.assertLessEqual({"mgmtrbac", "mgmtap", "rgscoped"}, in_rg)
        r = self.http.arm("GET", f"{self.sub_id}/providers/Microsoft.KeyVault/vaults",
                          token=c.mgmt_token, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({v["name"] for v in r.json()["value"]}, in_rg)

        # A Key Vault Data Access Administrator on one vault assigns there and below only.
        vault = self.vault_id("rg-mgmt", "mgmtrbac")
        d = self.new_sp("vault-daa")
        self.assign_ok(vault, ROLES["Key Vault Data Access Administrator"], d.oid)
        beneficiary = self.new_sp("vault-daa-beneficiary")
        made = [(scope, self.assign_ok(scope, ROLES["Key Vault Secrets User"], beneficiary.oid,
                                       token=d.mgmt_token))
                for scope in (vault, vault + "/secrets/s")]
        for scope in (rg, other, self.sub_id):
            with self.subTest(scope=scope):
                self.assertCannotAssign(d, scope=scope)
        for scope, name in made:
            self.assertEqual(self.unassign(scope, name, token=d.mgmt_token).status, 200)

    def test_built_in_roles_have_azures_ids_and_names(self):
        r = self.http.arm("GET", f"{self.sub_id}/providers/Microsoft.Authorization/"
                                 "roleDefinitions?$filter=" +
                          urllib.parse.quote("type eq 'BuiltInRole'"), api_version=AUTHZ_API)
        self.assertEqual(r.status, 200, r)
        by_name = {d["properties"]["roleName"]: d for d in r.json()["value"]}
        for name, guid in ROLES.items():
            with self.subTest(name):
                self.assertEqual(by_name[name]["name"], guid)
                self.assertEqual(by_name[name]["properties"]["type"], "BuiltInRole")
        daa = by_name["Key Vault Data Access Administrator"]["properties"]["permissions"][0]
        for name in KV_DATA_ROLES:
            self.assertIn(ROLES[name], daa["condition"], name)
        self.assertNotIn(ROLES["Owner"], daa["condition"])
        self.assertEqual(by_name["Key Vault Secrets User"]["properties"]["permissions"][0]
                         ["dataActions"], [SECRETS + "getSecret/action",
                                           SECRETS + "readMetadata/action"])
        # Role definitions at the root are readable by every principal, role or not.
        n = self.new_sp("catalog-reader")
        r = self.http.arm("GET", "/providers/Microsoft.Authorization/roleDefinitions/" +
                          ROLES["Key Vault Secrets User"], token=n.mgmt_token,
                          api_version=AUTHZ_API)
        self.assertEqual((r.status, r.json().get("name")), (200, ROLES["Key Vault Secrets User"]),
                         r)

    def test_a_principal_without_a_role_can_do_nothing(self):
        n = self.new_sp("no-role")
        vault = self.vault_id("rg-mgmt", "mgmtrbac")
        self.assertArmDenied(self.put_vault(n, "rg-none", "nonevault"),
                             "Microsoft.KeyVault/vaults/write")
        self.assertNoVault("rg-none", "nonevault")
        self.assertArmDenied(self.http.arm("GET", vault, token=n.mgmt_token,
                                           api_version=VAULT_API),
                             "Microsoft.KeyVault/vaults/read")
        # Collections it cannot read list as empty, as in Azure.
        r = self.http.arm("GET", f"{self.sub_id}/providers/Microsoft.KeyVault/vaults",
                          token=n.mgmt_token, api_version=VAULT_API)
        self.assertEqual((r.status, r.json().get("value")), (200, []), r)
        self.assertEqual(self.assignments(token=n.mgmt_token), {})
        self.assertCannotAssign(n)
        self.assertCannotAssign(n, scope=f"{self.sub_id}/resourceGroups/rg-mgmt")
        r = self.explain(n.oid, "mgmtrbac", "SecretGet", token=n.mgmt_token)
        self.assertArmDenied(r, "Microsoft.KeyVault/vaults/read")
        self.assertArmDenied(self.edit_policies("rg-mgmt", "mgmtap", "add",
                                                [self.policy_entry(n.oid, ["all"])],
                                                token=n.mgmt_token))
        self.assertAccessPolicyDenial(
            self.http.kv("GET", "mgmtap", "/secrets/s", token=n.vault_token), n, "mgmtap", "get",
            "NoAccessPolicy")


class LinkedAuthorizationTests(AuthzTestCase):
    """Rights reached through linked resources (reproductions of two privilege escalations):
    attaching a user-assigned identity to a workload needs assign/action on the identity, and
    rewriting a role definition needs the right at every scope it can be assigned at, old and
    new."""

    MIO = "f1a07417-d97a-45cb-824c-7a7467783830"  # Managed Identity Operator
    ASSIGN = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prod_id = cls.coffer_json("identity", "create", "-n", "prod-id", "-g", "rg-prod")
        cls.dev_id = cls.coffer_json("identity", "create", "-n", "dev-id", "-g", "rg-dev")

    def site(self, rg, name, kind="Microsoft.Web/sites"):
        return f"{self.sub_id}/resourceGroups/{rg}/providers/{kind}/{name}"

    def put_site(self, p, rg, name, identity, method="PUT", kind="Microsoft.Web/sites"):
        body = {"location": "local"}
        if identity is not None:
            body["identity"] = identity
        return self.http.arm(method, self.site(rg, name, kind), body, token=p.mgmt_token,
                             api_version=SITES_API)

    @staticmethod
    def user_assigned(*ids, system=False):
        return {"type": ("SystemAssigned, " if system else "") + "UserAssigned",
                "userAssignedIdentities": {i: {} for i in ids}}

    def assertLinkedDenied(self, r, scope, action=None, msg=""):
        body = self.assertErrorBody(r, 403, "LinkedAuthorizationFailed", msg)
        text = body["error"]["message"]
        self.assertIn(f"'{action or self.ASSIGN}'", text, msg)
        self.assertIn(f"linked scope(s) '{scope}'", text, msg)

    def mi_token_for(self, rg, name, identity):
        r = self.http.arm("POST", self.site(rg, name) + "/listIdentityEndpoint",
                          api_version=SITES_API)
        self.assertEqual(r.status, 200, r)
        q = urllib.parse.urlencode({"api-version": MI_API, "resource": self.srv.vault_resource,
                                    "mi_res_id": identity["id"]})
        return self.srv.request("GET", "/msi/token?" + q, host="localhost", auth=False,
                                headers={"X-IDENTITY-HEADER": r.json()["identityHeader"]})

    def test_a_workload_cannot_be_given_an_identity_the_caller_may_not_assign(self):
        dev = self.new_sp("rg-dev contributor")
        self.assign_ok(f"{self.sub_id}/resourceGroups/rg-dev", ROLES["Contributor"], dev.oid)
        self.assertArmDenied(self.http.arm("GET", self.prod_id["id"], token=dev.mgmt_token,
                                           api_version=MI_API))
        prod = self.prod_id["id"]
        for kind in ("Microsoft.Web/sites", "Microsoft.Compute/virtualMachines"):
            with self.subTest(kind=kind):
                r = self.put_site(dev, "rg-dev", "app1", self.user_assigned(prod), kind=kind)
                self.assertLinkedDenied(r, prod)
                self.assertEqual(self.http.arm("GET", self.site("rg-dev", "app1", kind),
                                               api_version=SITES_API).status, 404,
                                 "a refused PUT created the workload")
        # An identity in its own resource group is fine; adding prod-id by PATCH or by PUT to
        # an existing workload is not, and leaves the workload as it was.
        r = self.put_site(dev, "rg-dev", "app2", self.user_assigned(self.dev_id["id"],
                                                                    system=True))
        self.assertEqual(r.status, 201, r)
        before = r.json()["identity"]
        for method in ("PATCH", "PUT"):
            with self.subTest(method=method):
                r = self.put_site(dev, "rg-dev", "app2",
                                  self.user_assigned(self.dev_id["id"], prod, system=True),
                                  method=method)
                self.assertLinkedDenied(r, prod)
        shown = self.http.arm("GET", self.site("rg-dev", "app2"), api_version=SITES_API)
        self.assertEqual(shown.json()["identity"], before)
        # A case-changed or otherwise respelled id is the same identity.
        r = self.put_site(dev, "rg-dev", "app2",
                          self.user_assigned(prod.upper().replace("/SUBSCRIPTIONS/",
                                                                  "/subscriptions/")),
                          method="PATCH")
        self.assertEqual(r.status, 403, r)
        # `coffer webapp identity assign` with the contributor's credentials is refused too.
        env = self.coffer_env()
        env.update({"AZURE_CLIENT_ID": dev.app_id, "AZURE_CLIENT_SECRET": dev.secret})
        p = subprocess.run([coffer_binary(), "webapp", "identity", "assign", "-n", "app2", "-g",
                            "rg-dev", "--identities", prod], env=env, capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0, p)
        self.assertIn(b"LinkedAuthorizationFailed", p.stdout + p.stderr)
        self.assertEqual(self.http.arm("GET", self.site("rg-dev", "app2"),
                                       api_version=SITES_API).json()["identity"], before)

    def test_managed_identity_operator_on_the_identity_allows_attaching_it(self):
        dev = self.new_sp("rg-dev contributor and operator")
        self.assign_ok(f"{self.sub_id}/resourceGroups/rg-dev", ROLES["Contributor"], dev.oid)
        prod = self.prod_id["id"]
        self.assertLinkedDenied(self.put_site(dev, "rg-dev", "app3", self.user_assigned(prod)),
                                prod)
        self.assign_ok(prod, self.MIO, dev.oid)
        r = self.put_site(dev, "rg-dev", "app3", self.user_assigned(prod))
        self.assertEqual(r.status, 201, r)
        t = self.mi_token_for("rg-dev", "app3", self.prod_id)
        self.assertEqual(t.status, 200, t)
        self.assertEqual(jwt_parts(t.json()["access_token"])[1]["oid"],
                         self.prod_id["principalId"])

    def test_an_identity_already_attached_needs_no_new_right(self):
        other = self.new_sp("rg-dev contributor, later")
        self.assign_ok(f"{self.sub_id}/resourceGroups/rg-dev", ROLES["Contributor"], other.oid)
        prod = self.prod_id["id"]
        r = self.http.arm("PUT", self.site("rg-dev", "app4"),
                          {"location": "local", "identity": self.user_assigned(prod)},
                          api_version=SITES_API)
        self.assertEqual(r.status, 201, r)
        r = self.http.arm("PATCH", self.site("rg-dev", "app4"), {"tags": {"team": "a"}},
                          token=other.mgmt_token, api_version=SITES_API)
        self.assertEqual(r.status, 200, r)
        r = self.put_site(other, "rg-dev", "app4", self.user_assigned(prod), method="PUT")
        self.assertEqual(r.status, 200, r)
        # Dropping it is allowed; bringing it back is attaching it anew.
        r = self.put_site(other, "rg-dev", "app4", {"type": "SystemAssigned"})
        self.assertEqual(r.status, 200, r)
        self.assertLinkedDenied(self.put_site(other, "rg-dev", "app4",
                                              self.user_assigned(prod)), prod)

    def test_a_narrow_scope_cannot_rewrite_a_role_assigned_wider(self):
        rg_b = f"{self.sub_id}/resourceGroups/rg-b"
        self.coffer_json("identity", "create", "-n", "b-id", "-g", "rg-b")
        guid = self.create_custom_role("wide reader", [], actions=["Microsoft.KeyVault/vaults/read"])
        role_at_sub = f"{self.sub_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        role_at_rg = f"{rg_b}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        b = self.new_sp("sp-b")
        self.assign_ok(self.sub_id, guid, b.oid)
        self.assign_ok(rg_b, ROLES["User Access Administrator"], b.oid)
        r, _ = self.assign(self.sub_id, ROLES["Owner"], b.oid, token=b.mgmt_token)
        self.assertArmDenied(r, "Microsoft.Authorization/roleAssignments/write")
        before = self.custom_roles()[guid]
        widened = {"properties": {"roleName": "wide reader", "assignableScopes": [rg_b],
                                  "permissions": [{"actions": ["*"]}]}}
        r = self.http.arm("PUT", role_at_rg, widened, token=b.mgmt_token, api_version=AUTHZ_API)
        self.assertLinkedDenied(r, f"/subscriptions/{self.srv.subscription}",
                                "Microsoft.Authorization/roleDefinitions/write")
        self.assertEqual(self.custom_roles()[guid], before)
        r, _ = self.assign(self.sub_id, ROLES["Owner"], b.oid, token=b.mgmt_token)
        self.assertArmDenied(r, "Microsoft.Authorization/roleAssignments/write")
        r = self.http.arm("DELETE", role_at_rg, token=b.mgmt_token, api_version=AUTHZ_API)
        self.assertLinkedDenied(r, f"/subscriptions/{self.srv.subscription}",
                                "Microsoft.Authorization/roleDefinitions/delete")
        self.assertEqual(self.custom_roles()[guid], before)
        # Even the administrator cannot narrow it away from where it is assigned.
        r = self.http.arm("PUT", role_at_sub, widened, api_version=AUTHZ_API)
        self.assertErrorBody(r, 409, "RoleDefinitionHasAssignments")
        self.assertIn(self.sub_id, r.json()["error"]["message"])
        self.assertEqual(self.custom_roles()[guid], before)


class ConcurrentChangeTests(AuthzTestCase):
    """Read-modify-write of management state is atomic: concurrent changes all land, and ARM's
    If-Match / If-None-Match hold."""

    def concurrently(self, calls):
        """Runs each zero-argument call on its own thread (all released together); returns the
        results in order."""
        results = [None] * len(calls)
        start = threading.Barrier(len(calls))

        def run(i):
            start.wait()
            results[i] = calls[i]()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_concurrent_access_policy_adds_all_land(self):
        self.create_vault("rg-race", "raceap", False, [])
        oids = [str(uuid.uuid4()) for _ in range(24)]
        path = f"{self.sub_id}{self.vault_path('rg-race', 'raceap')}/accessPolicies/add"
        token = self.srv.token(self.srv.mgmt_resource)
        results = self.concurrently([
            (lambda oid=oid: self.srv.arm_raw(
                "PUT", f"{path}?api-version={VAULT_API}",
                {"properties": {"accessPolicies": [self.policy_entry(oid, ["get"])]}},
                token=token))
            for oid in oids])
        self.assertEqual([r.status for r in results], [200] * 24, results)
        kept = {e["objectId"] for e in self.vault_props("rg-race", "raceap")["accessPolicies"]}
        self.assertEqual(kept, set(oids))

    def test_concurrent_tag_merges_all_land(self):
        self.create_vault("rg-race", "racetags", True)
        uai = self.coffer_json("identity", "create", "-n", "race-id", "-g", "rg-race")
        site = f"{self.sub_id}/resourceGroups/rg-race/providers/Microsoft.Web/sites/race-app"
        r = self.http.arm("PUT", site, {"location": "local", "tags": {"keep": "me"}},
                          api_version=SITES_API)
        self.assertEqual(r.status, 201, r)
        token = self.srv.token(self.srv.mgmt_resource)
        tags_api = "providers/Microsoft.Resources/tags/default?api-version=2021-04-01"
        for label, target in (("vault", self.vault_id("rg-race", "racetags")),
                              ("identity", uai["id"]), ("web app", site)):
            with self.subTest(resource=label):
                # What `az tag update --operation Merge` sends, 12 at once, each its own tag.
                results = self.concurrently([
                    (lambda i=i: self.srv.arm_raw(
                        "PATCH", f"{target}/{tags_api}",
                        {"operation": "Merge", "properties": {"tags": {f"k{i}": str(i)}}},
                        token=token))
                    for i in range(12)])
                self.assertEqual([r.status for r in results], [200] * 12, results)
                shown = self.srv.arm_raw("GET", f"{target}/{tags_api}").json()
                want = {f"k{i}": str(i) for i in range(12)}
                if label == "web app":
                    want["keep"] = "me"
                self.assertEqual(shown["properties"]["tags"], want)
        # The resource itself shows them too; Delete removes one; a PUT replaces them all.
        r = self.srv.arm_raw("GET", f"{site}?api-version={SITES_API}")
        self.assertEqual(len(r.json()["tags"]), 13, r)
        r = self.srv.arm_raw("PATCH", f"{site}/{tags_api}",
                             {"operation": "Delete", "properties": {"tags": {"keep": ""}}})
        self.assertNotIn("keep", r.json()["properties"]["tags"])
        r = self.srv.arm_raw("PUT", f"{site}/{tags_api}", {"properties": {"tags": {"a": "b"}}})
        self.assertEqual(r.json()["properties"]["tags"], {"a": "b"})
        self.assertEqual(self.srv.arm_raw("GET", f"{site}?api-version={SITES_API}").json()["tags"],
                         {"a": "b"})

    def test_concurrent_patches_of_different_properties_all_land(self):
        self.create_vault("rg-race", "raceprops", False, [])
        target = f"{self.vault_id('rg-race', 'raceprops')}?api-version={VAULT_API}"
        token = self.srv.token(self.srv.mgmt_resource)
        oid = str(uuid.uuid4())
        bodies = [{"tags": {"team": "a"}},
                  {"properties": {"enablePurgeProtection": True}},
                  {"properties": {"sku": {"family": "A", "name": "premium"}}},
                  {"properties": {"accessPolicies": [self.policy_entry(oid, ["get"])]}}]
        results = self.concurrently([(lambda b=b: self.srv.arm_raw("PATCH", target, b,
                                                                   token=token))
                                     for b in bodies])
        self.assertEqual([r.status for r in results], [200] * 4, results)
        v = self.srv.arm_raw("GET", target).json()
        self.assertEqual(v["tags"], {"team": "a"})
        self.assertIs(v["properties"].get("enablePurgeProtection"), True)
        self.assertEqual(v["properties"]["sku"]["name"], "premium")
        self.assertEqual([e["objectId"] for e in v["properties"]["accessPolicies"]], [oid])

    def test_if_match_guards_a_read_modify_write(self):
        self.create_vault("rg-race", "raceetag", True)
        target = f"{self.vault_id('rg-race', 'raceetag')}?api-version={VAULT_API}"
        r = self.srv.arm_raw("GET", target)
        self.assertEqual(r.status, 200, r)
        etag = r.headers["etag"]
        ok = self.srv.arm_raw("PATCH", target, {"tags": {"a": "1"}}, headers={"If-Match": etag})
        self.assertEqual(ok.status, 200, ok)
        self.assertNotEqual(ok.headers["etag"], etag)
        stale = self.srv.arm_raw("PATCH", target, {"tags": {"b": "2"}},
                                 headers={"If-Match": etag})
        self.assertErrorBody(stale, 412, "PreconditionFailed")
        self.assertEqual(self.srv.arm_raw("GET", target).json()["tags"], {"a": "1"})
        self.assertEqual(self.srv.arm_raw("PATCH", target, {"tags": {"c": "3"}},
                                          headers={"If-Match": "*"}).status, 200)
        exists = self.srv.arm_raw("PUT", target, {"location": "local"},
                                  headers={"If-None-Match": "*"})
        self.assertErrorBody(exists, 412, "PreconditionFailed")
        fresh = f"{self.vault_id('rg-race', 'raceetag2')}?api-version={VAULT_API}"
        self.assertErrorBody(self.srv.arm_raw("PUT", fresh, {"location": "local"},
                                              headers={"If-Match": etag}), 412,
                             "PreconditionFailed")
        self.assertEqual(self.srv.arm_raw("GET", fresh).status, 404)
        r = self.srv.arm_raw("PUT", fresh, {"location": "local"}, headers={"If-None-Match": "*"})
        self.assertEqual(r.status, 201, r)


class ExplainApiTests(AuthzTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.create_vault("rg-explain", "explainrbac", True)
        cls.create_vault("rg-explain", "explainother", True)
        cls.create_vault("rg-explain", "explainap", False,
                         [cls.policy_entry(cls.admin_oid, ["all"])])
        for vault in ("explainrbac", "explainap"):
            r = cls.http.kv("PUT", vault, "/secrets/s", {"value": "x"})
            if r.status != 200:
                raise AssertionError(r)
        cls.p = cls.new_sp("explained")

    def test_the_action_may_be_named_three_ways_and_the_assignee_by_app_id(self):
        forms = ("SecretGet", "secretget", SECRETS + "getSecret/action", "secrets/get",
                 "SECRETS/GET")
        for assignee in (self.p.oid, self.p.app_id):
            for action in forms:
                with self.subTest(assignee=assignee, action=action):
                    d = self.explain_ok(assignee, "explainrbac", action, "s")
                    self.assertEqual((d["operation"], d["principal"]["objectId"]),
                                     ("SecretGet", self.p.oid), d)
        # A data action shared by several operations names the vault-wide one.
        d = self.explain_ok(self.p.oid, "explainrbac", SECRETS + "readMetadata/action")
        self.assertEqual(d["operation"], "SecretList", d)

    def test_every_assignment_of_the_principal_is_considered(self):
        vault = self.vault_id("rg-explain", "explainrbac")
        rg = f"{self.sub_id}/resourceGroups/rg-explain"
        elsewhere = self.assign_ok(self.vault_id("rg-explain", "explainother"),
                                   ROLES["Key Vault Secrets Officer"], self.p.oid)
        self.addCleanup(self.unassign, self.vault_id("rg-explain", "explainother"), elsewhere)
        d = self.explain_ok(self.p.oid, "explainrbac", "SecretGet", "s")
        self.assertEqual((d["allowed"], d["decisionReason"]), (False, "NoRoleAssignment"), d)
        self.assertEqual([(c["id"], c["appliesToPrincipalAndResource"], c["grants"])
                          for c in d["considered"]], [(elsewhere, False, False)], d)
        reader = self.assign_ok(vault, ROLES["Key Vault Reader"], self.p.oid)
        self.addCleanup(self.unassign, vault, reader)
        d = self.explain_ok(self.p.oid, "explainrbac", "SecretGet", "s")
        self.assertEqual((d["allowed"], d["decisionReason"]), (False, "RoleLacksAction"), d)
        self.assertRbacDenial(self.http.kv("GET", "explainrbac", "/secrets/s",
                                           token=self.p.vault_token), self.p,
                              SECRETS + "getSecret/action", vault + "/secrets/s",
                              "RoleLacksAction")
        user = self.assign_ok(rg, ROLES["Key Vault Secrets User"], self.p.oid)
        self.addCleanup(self.unassign, rg, user)
        d = self.explain_ok(self.p.oid, "explainrbac", "SecretGet", "s")
        self.assertEqual((d["allowed"], d["decisionReason"], d["applied"]),
                         (True, "RoleAssignmentMatch", user), d)
        got = {c["id"]: (c["role"], c["scope"], c["appliesToPrincipalAndResource"], c["grants"])
               for c in d["considered"]}
        self.assertEqual(got, {
            elsewhere: ("Key Vault Secrets Officer", self.vault_id("rg-explain", "explainother"),
                        False, False),
            reader: ("Key Vault Reader", vault, True, False),
            user: ("Key Vault Secrets User", rg, True, True)}, d)
        self.assertEqual(self.http.kv("GET", "explainrbac", "/secrets/s",
                                      token=self.p.vault_token).status, 200)

    def test_a_compound_identity_entry_does_not_apply_to_the_principal_alone(self):
        other_app = self.new_sp("explain-compound-app")
        entry = self.policy_entry(self.p.oid, ["get"], app_id=other_app.app_id)
        r = self.edit_policies("rg-explain", "explainap", "add", [entry])
        self.assertEqual(r.status, 200, r)
        self.addCleanup(self.edit_policies, "rg-explain", "explainap", "remove",
                        [dict(entry, permissions={})])
        self.assertAccessPolicyDenial(
            self.http.kv("GET", "explainap", "/secrets/s", token=self.p.vault_token), self.p,
            "explainap", "get", "NoAccessPolicy")
        d = self.explain_ok(self.p.oid, "explainap", "SecretGet", "s")
        self.assertEqual((d["allowed"], d["decisionReason"]), (False, "NoAccessPolicy"), d)
        self.assertEqual(len(d["considered"]), 1, d)
        self.assertFalse(d["considered"][0]["appliesToPrincipalAndResource"], d)
        self.assertIn(other_app.app_id, d["considered"][0]["detail"], d)

    def test_an_entry_in_another_tenant_does_not_apply(self):
        # The accessPolicies endpoint refuses other tenants; a whole-vault PATCH does not, so
        # such an entry can exist, and must grant nothing.
        rg, vault = "rg-explain", "explainap"
        before = self.vault_props(rg, vault)["accessPolicies"]
        foreign = dict(self.policy_entry(self.p.oid, ["get"]), tenantId=str(uuid.uuid4()))
        r = self.http.arm("PATCH", self.vault_id(rg, vault),
                          {"properties": {"accessPolicies": before + [foreign]}},
                          api_version=VAULT_API)
        if r.status == 400:  # refusing such entries outright is as good
            self.assertEqual(self.vault_props(rg, vault)["accessPolicies"], before)
            return
        self.assertEqual(r.status, 200, r)
        self.addCleanup(self.http.arm, "PATCH", self.vault_id(rg, vault),
                        {"properties": {"accessPolicies": before}}, api_version=VAULT_API)
        self.assertAccessPolicyDenial(
            self.http.kv("GET", vault, "/secrets/s", token=self.p.vault_token), self.p, vault,
            "get", "NoAccessPolicy")
        d = self.explain_ok(self.p.oid, vault, "SecretGet", "s")
        self.assertEqual((d["allowed"], d["decisionReason"]), (False, "NoAccessPolicy"), d)
        self.assertEqual([(c["appliesToPrincipalAndResource"], c["grants"])
                          for c in d["considered"]], [(False, False)], d)
        self.assertIn("another tenant", d["considered"][0]["detail"], d)

    def test_the_administrator_holds_owner_and_key_vault_administrator(self):
        d = self.explain_ok(self.admin_oid, "explainrbac", "SecretPurge", "s")
        self.assertEqual((d["allowed"], d["decisionReason"]), (True, "RoleAssignmentMatch"), d)
        got = {c["role"]: (c["scope"], c["grants"]) for c in d["considered"]}
        self.assertEqual(got, {"Owner": (self.sub_id, False),
                               "Key Vault Administrator": (self.sub_id, True)}, d)
        mine = self.assignments(filter=f"principalId eq '{self.admin_oid}'")
        self.assertEqual(sorted((a[0], a[2]) for a in mine.values()),
                         sorted([(self.sub_id, ROLES["Owner"]),
                                 (self.sub_id, ROLES["Key Vault Administrator"])]))
        for action in ("SecretGet", "SecretSet", "SecretPurge", "SecretRestore"):
            d = self.explain_ok(self.admin_oid, "dev", action, "s")
            self.assertEqual((d["model"], d["allowed"], d["decisionReason"]),
                             ("access policies", True, "AccessPolicyMatch"), d)
            self.assertIn("secrets: get, list, set, delete, recover, backup, restore, purge",
                          d["considered"][0]["detail"], d)

    def test_data_action_patterns_and_not_data_actions(self):
        vault = self.vault_id("rg-explain", "explainrbac")
        cases = (
            ("actions only", [SECRETS + "*/action"], [],
             {"SecretGet": True, "SecretDelete": False, "SecretPurge": True}),
            ("all but getSecret", [SECRETS + "*"], [SECRETS + "getSecret/action"],
             {"SecretGet": False, "SecretList": True, "SecretSet": True}),
            ("upper-case pattern", [SECRETS.upper() + "GETSECRET/ACTION"], [],
             {"SecretGet": True, "SecretList": False}),
            ("all of the vault", ["Microsoft.KeyVault/vaults/*"], [],
             {"SecretGet": True, "SecretRestore": True}),
            ("keys only", ["Microsoft.KeyVault/vaults/keys/*"], [],
             {"SecretGet": False, "SecretList": False}),
        )
        for label, data_actions, not_data_actions, expected in cases:
            with self.subTest(label):
                guid = str(uuid.uuid4())
                body = {"properties": {
                    "roleName": f"pattern {label}", "assignableScopes": [self.sub_id],
                    "permissions": [{"actions": [], "notActions": [],
                                     "dataActions": data_actions,
                                     "notDataActions": not_data_actions}]}}
                role_url = f"{self.sub_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
                r = self.http.arm("PUT", role_url, body, api_version=AUTHZ_API)
                self.assertEqual(r.status, 201, r)
                name = self.assign_ok(vault, guid, self.p.oid)
                try:
                    for op, allowed in expected.items():
                        d = self.explain_ok(self.p.oid, "explainrbac", op, "s")
                        self.assertEqual((d["allowed"], d["decisionReason"]),
                                         (allowed, "RoleAssignmentMatch" if allowed
                                          else "RoleLacksAction"), f"{op}: {d}")
                    r = self.http.kv("GET", "explainrbac", "/secrets/s", token=self.p.vault_token)
                    self.assertEqual(r.status, 200 if expected["SecretGet"] else 403, r)
                finally:
                    self.assertEqual(self.unassign(vault, name).status, 200)
                    self.http.arm("DELETE", role_url, api_version=AUTHZ_API)

    def test_changing_a_custom_role_takes_effect_on_the_next_request(self):
        vault = self.vault_id("rg-explain", "explainrbac")
        guid = self.create_custom_role("changing", [SECRETS + "getSecret/action"])
        role_url = f"{self.sub_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        name = self.assign_ok(vault, guid, self.p.oid)
        self.addCleanup(self.http.arm, "DELETE", role_url, api_version=AUTHZ_API)
        self.addCleanup(self.unassign, vault, name)
        get = lambda: self.http.kv("GET", "explainrbac", "/secrets/s",  # noqa: E731
                                   token=self.p.vault_token)
        for _ in range(2):
            self.assertEqual(get().status, 200)
        body = {"properties": {"roleName": "changing", "assignableScopes": [self.sub_id],
                               "permissions": [{"dataActions": [SECRETS + "readMetadata/action"]}]}}
        r = self.http.arm("PUT", role_url, body, api_version=AUTHZ_API)
        self.assertIn(r.status, (200, 201), r)
        self.assertRbacDenial(get(), self.p, SECRETS + "getSecret/action", vault + "/secrets/s",
                              "RoleLacksAction")
        self.assertEqual(self.http.kv("GET", "explainrbac", "/secrets",
                                      token=self.p.vault_token).status, 200)

    def test_scopes_end_at_name_boundaries(self):
        # An assignment on secret "s" does not reach "s2", "s-2" or "s/2"; one on vault
        # "explainrbac" does not reach "explainrbac2"; names compare case-insensitively.
        for secret in ("s2", "s-2", "S"):
            r = self.http.kv("PUT", "explainrbac", f"/secrets/{secret}", {"value": secret})
            self.assertEqual(r.status, 200, r)
        self.create_vault("rg-explain", "explainrbac2", True)
        self.assertEqual(self.http.kv("PUT", "explainrbac2", "/secrets/s", {"value": "2"}).status,
                         200)
        vault = self.vault_id("rg-explain", "explainrbac")
        scope = vault.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/") + "/secrets/S"
        r, name = self.assign(scope, ROLES["Key Vault Secrets User"], self.p.oid)
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.unassign, scope, name)

        def get(path, vault="explainrbac"):
            return self.http.kv("GET", vault, path, token=self.p.vault_token).status

        self.assertEqual(get("/secrets/s"), 200)
        self.assertEqual(get("/secrets/S"), 200)
        for path in ("/secrets/s2", "/secrets/s-2", "/secrets/s2/versions", "/secrets"):
            self.assertEqual(get(path), 403, path)
        self.assertEqual(get("/secrets/s", vault="explainrbac2"), 403)
        # Encoded slashes never reach another secret (whatever the status says).
        for path in ("/secrets/s%2F2", "/secrets/s%2F..%2Fs2", "/secrets/s%2F..%2Fs2/versions",
                     "/secrets/s/..%2Fs2"):
            r = self.http.kv("GET", "explainrbac", path, token=self.p.vault_token)
            self.assertIn(r.status, (400, 403, 404), f"{path}: {r!r}")
            self.assertNotIn(b'"value":"s2"', r.body, path)
        d = self.explain_ok(self.p.oid, "explainrbac2", "SecretGet", "s")
        self.assertEqual((d["decisionReason"], d["considered"][0]["appliesToPrincipalAndResource"]),
                         ("NoRoleAssignment", False), d)

    def test_names_holding_a_slash_never_reach_below_an_object_scope(self):
        """An object-scope assignment on "s" must not cover "s/../s2" or "s/2": such names are
        no secret's, so the data plane decides them at the vault's scope (403 here), and the
        explain API refuses them as bad parameters."""
        vault = self.vault_id("rg-explain", "explainrbac")
        name = self.assign_ok(vault + "/secrets/s", ROLES["Key Vault Secrets User"], self.p.oid)
        self.addCleanup(self.unassign, vault + "/secrets/s", name)
        self.assertTrue(self.explain_ok(self.p.oid, "explainrbac", "SecretGet", "s")["allowed"])
        for obj in ("s/../s2", "s/2", "s/"):
            with self.subTest(obj):
                r = self.explain(self.p.oid, "explainrbac", "SecretGet", obj)
                self.assertErrorBody(r, 400, "BadParameter", obj)
                path = "/secrets/" + urllib.parse.quote(obj, safe="")
                r = self.http.kv("GET", "explainrbac", path, token=self.p.vault_token)
                self.assertErrorBody(r, 403, "Forbidden", obj)

    def test_bad_explain_requests(self):
        base = {"assignee": self.p.oid, "vault": "explainrbac", "action": "SecretGet"}

        def ask(query, method="GET", token=None):
            return self.http.request(method, "localhost", "/coffer/v1/authz/explain?" +
                                     urllib.parse.urlencode(query),
                                     token=token or self.srv.token(self.srv.mgmt_resource))

        for missing in ("assignee", "vault", "action"):
            with self.subTest(missing=missing):
                q = dict(base)
                del q[missing]
                self.assertErrorBody(ask(q), 400, "BadParameter")
        for name, change, status, code in (
                ("unknown action", {"action": "SecretFly"}, 400, "BadParameter"),
                ("a storage action", {"action": "storage/get"}, 400, "BadParameter"),
                ("a hostile action", {"action": "x" * 5000}, 400, "BadParameter"),
                ("a long assignee", {"assignee": "a" * 200}, 400, "BadParameter"),
                ("a long object", {"object": "o" * 200}, 400, "BadParameter"),
                ("unknown principal", {"assignee": str(uuid.uuid4())}, 404, "PrincipalNotFound"),
                ("unknown vault", {"vault": "nosuchvault"}, 404, None),
                ("vault path", {"vault": "../explainrbac"}, 404, None)):
            with self.subTest(name):
                self.assertErrorBody(ask(dict(base, **change)), status, code, name)
        r = ask(base, method="POST")
        self.assertEqual(r.status, 405, r)
        r = ask(base, token=self.srv.token(self.srv.vault_resource))
        self.assertEqual(r.status, 401, r)
        r = ask(base, token=self.p.mgmt_token)
        self.assertArmDenied(r, "Microsoft.KeyVault/vaults/read")
        self.assertServing()


class BadInputTests(AuthzTestCase):
    """Refused with a clear error, and nothing changed."""

    RG = "rg-bad"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.p = cls.new_sp("bad-input-principal")
        cls.create_vault(cls.RG, "badap", False, [cls.policy_entry(cls.admin_oid, ["all"]),
                                                  cls.policy_entry(cls.p.oid, ["get"])])
        cls.create_vault(cls.RG, "badrbac", True)
        for vault in ("badap", "badrbac"):
            for secret in ("s", "gone"):
                r = cls.http.kv("PUT", vault, f"/secrets/{secret}", {"value": "v"})
                if r.status != 200:
                    raise AssertionError(r)
            cls.http.kv("DELETE", vault, "/secrets/gone")

    def rbac_vault(self):
        return self.vault_id(self.RG, "badrbac")

    def assertUnchangedAccess(self):
        """The principal's access is what setUpClass gave it: get on badap, nothing on badrbac."""
        self.assertEqual(self.http.kv("GET", "badap", "/secrets/s",
                                      token=self.p.vault_token).status, 200)
        self.assertAccessPolicyDenial(
            self.http.kv("GET", "badap", "/secrets", token=self.p.vault_token), self.p, "badap",
            "list", "AccessPolicyLacksPermission")
        self.assertRbacDenial(
            self.http.kv("GET", "badrbac", "/secrets/s", token=self.p.vault_token), self.p,
            SECRETS + "getSecret/action", self.rbac_vault() + "/secrets/s", "NoRoleAssignment")

    def test_malformed_access_policy_edits_change_nothing(self):
        before = self.vault_props(self.RG, "badap")["accessPolicies"]
        oid, tenant = self.p.oid, self.srv.tenant

        def entry(**changes):
            e = {"tenantId": tenant, "objectId": oid, "permissions": {"secrets": ["list"]}}
            for k, v in changes.items():
                if v is ...:
                    e.pop(k)
                else:
                    e[k] = v
            return e

        def body(*entries):
            return {"properties": {"accessPolicies": list(entries)}}

        many = [entry(objectId=str(uuid.uuid4())) for _ in range(1025)]
        cases = {
            "not JSON": "{",
            "empty body": "",
            "body an array": [],
            "body null": "null",
            "no properties": {},
            "properties an array": {"properties": []},
            "no accessPolicies": {"properties": {}},
            "accessPolicies an object": {"properties": {"accessPolicies": entry()}},
            "accessPolicies null": {"properties": {"accessPolicies": None}},
            "accessPolicies a string": {"properties": {"accessPolicies": "all"}},
            "entry a string": body("x"),
            "entry null": body(None),
            "no objectId": body(entry(objectId=...)),
            "empty objectId": body(entry(objectId="")),
            "objectId a number": body(entry(objectId=7)),
            "objectId of 10000 characters": body(entry(objectId="o" * 10000)),
            "no tenantId": body(entry(tenantId=...)),
            "another tenant": body(entry(tenantId=str(uuid.uuid4()))),
            "applicationId a number": body(entry(applicationId=5)),
            "applicationId too long": body(entry(applicationId="a" * 65)),
            "no permissions": body(entry(permissions=...)),
            "permissions a list": body(entry(permissions=["get"])),
            "secrets a string": body(entry(permissions={"secrets": "get"})),
            "secrets an object": body(entry(permissions={"secrets": {"get": True}})),
            "unknown object type": body(entry(permissions={"blobs": ["get"]})),
            "unknown permission": body(entry(permissions={"secrets": ["read"]})),
            "a data action as permission": body(entry(permissions={"secrets": ["getSecret"]})),
            "a key permission on secrets": body(entry(permissions={"secrets": ["decrypt"]})),
            "empty permission": body(entry(permissions={"secrets": [""]})),
            "permission with NUL": body(entry(permissions={"secrets": ["get\u0000"]})),
            "permission with a space": body(entry(permissions={"secrets": ["get "]})),
            "non-ASCII permission": body(entry(permissions={"secrets": ["gét"]})),
            "permission a number": body(entry(permissions={"secrets": [1]})),
            "permission of 100000 characters": body(entry(permissions={"secrets": ["g" * 100000]})),
            "one bad permission among good ones": body(entry(permissions={
                "secrets": ["list", "set", "bogus"]})),
            "a good entry, then a bad one": body(entry(objectId=str(uuid.uuid4())),
                                                 entry(permissions={"secrets": ["bogus"]})),
            "1025 entries": body(*many),
        }
        for kind in ("add", "replace", "remove"):
            for name, b in cases.items():
                if kind != "add" and name not in ("not JSON", "no objectId", "unknown permission",
                                                   "another tenant", "1025 entries"):
                    continue
                with self.subTest(kind=kind, case=name):
                    r = self.edit_policies(self.RG, "badap", kind, []) if b is None else \
                        self.http.arm("PUT", self.vault_id(self.RG, "badap") +
                                      f"/accessPolicies/{kind}", b, api_version=VAULT_API)
                    body_ = self.assertErrorBody(r, 400, None, name)
                    self.assertIn(body_["error"]["code"], ("BadRequest", "InvalidRequestContent"),
                                  r)
                    self.assertLess(len(r.body), 4096, "the error echoes the hostile input")
        with self.subTest("unknown permission names the valid ones"):
            r = self.edit_policies(self.RG, "badap", "add",
                                   [entry(permissions={"secrets": ["read"]})])
            self.assertIn("read", r.json()["error"]["message"])
            self.assertIn("get, list, set", r.json()["error"]["message"])
        for kind, method in (("merge", "PUT"), ("add", "GET"), ("add", "POST"),
                             ("add", "DELETE")):
            with self.subTest(kind=kind, method=method):
                r = self.http.arm(method, self.vault_id(self.RG, "badap") +
                                  f"/accessPolicies/{kind}", body(entry()),
                                  api_version=VAULT_API)
                self.assertIn(r.status, (400, 404, 405), r)
        # The vault-level PATCH/PUT validates the same way.
        for name in ("unknown permission", "1025 entries", "no objectId"):
            with self.subTest(patch=name):
                b = cases[name]
                r = self.http.arm("PATCH", self.vault_id(self.RG, "badap"), b,
                                  api_version=VAULT_API)
                self.assertErrorBody(r, 400, None, name)
        # On an RBAC vault the endpoint refuses even a valid edit.
        r = self.edit_policies(self.RG, "badrbac", "add", [entry()])
        body_ = self.assertErrorBody(r, 400, "BadRequest")
        self.assertIn("role-based access control", body_["error"]["message"])
        self.assertEqual(self.vault_props(self.RG, "badrbac")["accessPolicies"], [])
        self.assertEqual(self.vault_props(self.RG, "badap")["accessPolicies"], before)
        self.assertUnchangedAccess()
        self.assertServing()

    def test_the_1024_entry_limit_counts_what_the_vault_already_holds(self):
        vault = "badlimit"
        self.create_vault(self.RG, vault, False, [self.policy_entry(self.admin_oid, ["all"])])
        filler = [self.policy_entry(str(uuid.uuid4()), ["get"]) for _ in range(1023)]
        r = self.edit_policies(self.RG, vault, "add", filler)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["properties"]["accessPolicies"]), 1024)
        r = self.edit_policies(self.RG, vault, "add", [self.policy_entry(self.p.oid, ["get"])])
        self.assertErrorBody(r, 400, "BadRequest")
        props = self.vault_props(self.RG, vault)
        self.assertEqual(len(props["accessPolicies"]), 1024)
        self.assertNotIn(self.p.oid, [e["objectId"] for e in props["accessPolicies"]])
        self.assertEqual(self.http.kv("GET", vault, "/secrets", token=self.p.vault_token).status,
                         403)
        # Adding to an entry already there is not a new entry.
        r = self.edit_policies(self.RG, vault, "add",
                               [dict(filler[0], permissions={"secrets": ["list"]})])
        self.assertEqual(r.status, 200, r)
        got = {e["objectId"]: e for e in r.json()["properties"]["accessPolicies"]}
        self.assertEqual(sorted(got[filler[0]["objectId"]]["permissions"]["secrets"]),
                         ["get", "list"])

    def test_bad_role_assignments_change_nothing(self):
        before = self.assignments()
        vault = self.rbac_vault()
        user = ROLES["Key Vault Secrets User"]

        def props(**changes):
            p = {"roleDefinitionId": self.role_definition_id(user), "principalId": self.p.oid}
            for k, v in changes.items():
                if v is ...:
                    p.pop(k)
                else:
                    p[k] = v
            return {"properties": p}

        other_sub = f"/subscriptions/{uuid.uuid4()}"
        cases = [
            # (name, scope, assignment name, body, status, code)
            ("unknown role", vault, None,
             props(roleDefinitionId=self.role_definition_id(uuid.uuid4())), 400,
             "RoleDefinitionDoesNotExist"),
            ("role by name", vault, None,
             props(roleDefinitionId=self.role_definition_id("Owner")), 400,
             "InvalidRoleDefinitionId"),
            ("role id not under roleDefinitions", vault, None,
             props(roleDefinitionId=f"{self.sub_id}/providers/Microsoft.Authorization/"
                                    f"roleAssignments/{user}"), 400, "InvalidRoleDefinitionId"),
            ("role id missing", vault, None, props(roleDefinitionId=...), 400,
             "InvalidRoleDefinitionId"),
            ("role id a number", vault, None, props(roleDefinitionId=5), 400,
             "InvalidRoleDefinitionId"),
            ("non-GUID assignment name", vault, "not-a-guid", props(), 400,
             "InvalidRoleAssignmentId"),
            ("GUID without dashes", vault, uuid.uuid4().hex, props(), 400,
             "InvalidRoleAssignmentId"),
            ("GUID with braces", vault, "{" + str(uuid.uuid4()) + "}", props(), 400,
             "InvalidRoleAssignmentId"),
            ("assignment name of 3000 characters", vault, "a" * 3000, props(), 400,
             "InvalidRoleAssignmentId"),
            ("missing resource group", f"{self.sub_id}/resourceGroups/rg-nowhere", None,
             props(), 404, "ResourceGroupNotFound"),
            ("missing vault", self.vault_id(self.RG, "nosuchvault"), None, props(), 404,
             "ResourceNotFound"),
            ("vault in another resource group", self.vault_id("rg-other", "badrbac"), None,
             props(), 404, "ResourceNotFound"),
            ("missing secret", vault + "/secrets/nosuch", None, props(), 404,
             "ResourceNotFound"),
            ("soft-deleted secret", vault + "/secrets/gone", None, props(), 404,
             "ResourceNotFound"),
            ("secret of another vault", self.vault_id(self.RG, "badap") + "/secrets/nosuch",
             None, props(), 404, "ResourceNotFound"),
            ("other subscription", other_sub, None, props(), 404, "SubscriptionNotFound"),
            ("other subscription's vault", other_sub + self.vault_path(self.RG, "badrbac"),
             None, props(), 404, "SubscriptionNotFound"),
            ("unknown principal", vault, None, props(principalId=str(uuid.uuid4())), 400,
             "PrincipalNotFound"),
            ("principal missing", vault, None, props(principalId=...), 400,
             "InvalidPrincipalId"),
            ("principal of 10000 characters", vault, None, props(principalId="p" * 10000), 400,
             "InvalidPrincipalId"),
            ("principal is an app id", vault, None, props(principalId=self.p.app_id), 400,
             "PrincipalNotFound"),
            ("principal type User", vault, None, props(principalType="User"), 400,
             "UnmatchedPrincipalType"),
            ("principal type unknown", vault, None, props(principalType="Robot"), 400,
             "InvalidPrincipalType"),
            ("a condition", vault, None, props(condition="@Resource[x] StringEquals 'y'",
                                               conditionVersion="2.0"), 400, "InvalidCondition"),
            ("description of 3000 characters", vault, None, props(description="d" * 3000), 400,
             "InvalidRequestContent"),
            ("scope in the body differs", vault, None, props(scope=self.sub_id), 400,
             "InvalidScope"),
            ("body not JSON", vault, None, "{", 400, "InvalidRequestContent"),
            ("body an array", vault, None, [], 400, "InvalidRequestContent"),
            ("no properties", vault, None, {}, 400, "InvalidRequestContent"),
            ("properties a string", vault, None, {"properties": "x"}, 400,
             "InvalidRequestContent"),
        ]
        for name, scope, assignment, body, status, code in cases:
            with self.subTest(name):
                r, assignment = self.assign(scope, None, None, name=assignment, body=body)
                self.assertErrorBody(r, status, code, name)
                self.assertLess(len(r.body), 4096, "the error echoes the hostile input")
        self.assertEqual(self.assignments(), before)
        self.assertUnchangedAccess()
        self.assertServing()

    def test_a_duplicate_assignment_is_409_and_an_assignment_cannot_be_changed(self):
        vault = self.rbac_vault()
        first = self.assign_ok(vault, ROLES["Key Vault Reader"], self.p.oid)
        self.addCleanup(self.unassign, vault, first)
        before = self.assignments()
        r, second = self.assign(vault, ROLES["Key Vault Reader"], self.p.oid)
        body = self.assertErrorBody(r, 409, "RoleAssignmentExists")
        self.assertIn(first, body["error"]["message"])
        r, _ = self.assign(vault.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"),
                           ROLES["Key Vault Reader"], self.p.oid)
        self.assertErrorBody(r, 409, "RoleAssignmentExists", "the same scope in capitals")
        # The same PUT again is idempotent; another role under the same name is refused.
        r, _ = self.assign(vault, ROLES["Key Vault Reader"], self.p.oid, name=first)
        self.assertEqual(r.status, 200, r)
        r, _ = self.assign(vault, ROLES["Key Vault Administrator"], self.p.oid, name=first)
        self.assertErrorBody(r, 400, "RoleAssignmentUpdateNotPermitted")
        # Nor may the same name be reused at another scope.
        r, _ = self.assign(f"{self.sub_id}/resourceGroups/{self.RG}", ROLES["Key Vault Reader"],
                           self.p.oid, name=first)
        self.assertErrorBody(r, 400, "RoleAssignmentUpdateNotPermitted")
        self.assertEqual(self.assignments(), before)
        self.assertEqual(before[first][2], ROLES["Key Vault Reader"])
        r = self.http.arm("GET", f"{vault}/providers/Microsoft.Authorization/roleAssignments/"
                                 f"{second}", api_version=AUTHZ_API)
        self.assertErrorBody(r, 404, "RoleAssignmentNotFound")
        d = self.explain_ok(self.p.oid, "badrbac", "SecretGet", "s")
        self.assertEqual((d["decisionReason"], len(d["considered"])), ("RoleLacksAction", 1), d)

    def test_bad_custom_roles_are_refused_and_create_nothing(self):
        before = self.custom_roles()
        sub = f"/subscriptions/{self.srv.subscription}"

        def role(data_actions=(SECRETS + "getSecret/action",), **changes):
            p = {"roleName": "bad role", "description": "x",
                 "permissions": [{"actions": [], "notActions": [],
                                  "dataActions": list(data_actions), "notDataActions": []}],
                 "assignableScopes": [sub]}
            for k, v in changes.items():
                if v is ...:
                    p.pop(k)
                else:
                    p[k] = v
            return {"properties": p}

        def perms(**block):
            b = {"actions": [], "notActions": [], "dataActions": [], "notDataActions": []}
            b.update(block)
            return [b]

        invalid = "InvalidActionOrNotAction"
        cases = [
            ("unknown secrets data action", role([SECRETS + "bogus/action"]), 400, invalid),
            ("a control-plane action as data action",
             role(["Microsoft.KeyVault/vaults/write"]), 400, invalid),
            ("another provider's data action",
             role(["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]), 400,
             invalid),
            ("data action with a quote", role([SECRETS + "get\"Secret"]), 400, invalid),
            ("data action with a space", role([SECRETS + "get Secret"]), 400, invalid),
            ("data action with a control character", role([SECRETS + "get\nSecret"]), 400,
             invalid),
            ("unknown notDataAction", role(permissions=perms(
                dataActions=[SECRETS + "*"], notDataActions=[SECRETS + "bogus"])), 400, invalid),
            ("an action without a provider", role(permissions=perms(actions=["everything"])),
             400, invalid),
            ("dataActions a string", role(permissions=perms(dataActions=SECRETS + "*")), 400,
             "InvalidRoleDefinition"),
            ("empty data action", role([""]), 400, "InvalidRoleDefinition"),
            ("data action of 600 characters", role([SECRETS + "a" * 600]), 400,
             "InvalidRoleDefinition"),
            ("1001 data actions", role([SECRETS + "delete"] * 1001), 400,
             "InvalidRoleDefinition"),
            ("no permissions", role(permissions=...), 400, "InvalidRoleDefinition"),
            ("empty permissions", role(permissions=[]), 400, "InvalidRoleDefinition"),
            ("a condition", role(permissions=[dict(perms(dataActions=[SECRETS + "*"])[0],
                                                   condition="x")]), 400,
             "InvalidRoleDefinition"),
            ("no role name", role(roleName=...), 400, "InvalidRoleDefinition"),
            ("empty role name", role(roleName=""), 400, "InvalidRoleDefinition"),
            ("role name of 600 characters", role(roleName="n" * 600), 400,
             "InvalidRoleDefinition"),
            ("description of 5000 characters", role(description="d" * 5000), 400,
             "InvalidRoleDefinition"),
            ("type BuiltInRole", role(type="BuiltInRole"), 400, "InvalidRoleDefinition"),
            ("no assignable scopes", role(assignableScopes=[]), 400, "InvalidAssignableScopes"),
            ("assignable scope not an id", role(assignableScopes=["everywhere"]), 400,
             "InvalidAssignableScopes"),
            ("assignable scope in another subscription",
             role(assignableScopes=[f"/subscriptions/{uuid.uuid4()}"]), 404,
             "InvalidAssignableScopes"),
            ("a built-in role's name", role(roleName="Owner"), 409,
             "RoleDefinitionWithSameNameExists"),
            ("body not JSON", "{", 400, "InvalidRequestContent"),
            ("no properties", {}, 400, "InvalidRoleDefinition"),
        ]
        for name, body, status, code in cases:
            with self.subTest(name):
                guid = str(uuid.uuid4())
                r = self.http.arm("PUT", f"{sub}/providers/Microsoft.Authorization/"
                                         f"roleDefinitions/{guid}", body, api_version=AUTHZ_API)
                self.assertErrorBody(r, status, code, name)
                self.assertLess(len(r.body), 4096, "the error echoes the hostile input")
                r = self.http.arm("GET", f"{sub}/providers/Microsoft.Authorization/"
                                         f"roleDefinitions/{guid}", api_version=AUTHZ_API)
                self.assertErrorBody(r, 404, "RoleDefinitionDoesNotExist", name)
        r = self.http.arm("PUT", f"{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                                 "not-a-guid", role(), api_version=AUTHZ_API)
        self.assertErrorBody(r, 400, "InvalidRoleDefinitionId")
        # Built-in roles cannot be rewritten or deleted.
        owner = f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{ROLES['Owner']}"
        shown = self.http.arm("GET", owner, api_version=AUTHZ_API).json()
        for method, body in (("PUT", role(roleName="Owner")), ("DELETE", None)):
            with self.subTest(builtin=method):
                r = self.http.arm(method, owner, body, api_version=AUTHZ_API)
                self.assertErrorBody(r, 400, "BuiltInRoleCannotBeModified")
        self.assertEqual(self.http.arm("GET", owner, api_version=AUTHZ_API).json(), shown)
        self.assertEqual(shown["properties"]["permissions"][0]["actions"], ["*"])
        self.assertEqual(self.custom_roles(), before)
        self.assertServing()

    def test_a_custom_role_is_assignable_only_within_its_assignable_scopes(self):
        guid = str(uuid.uuid4())
        rg = f"{self.sub_id}/resourceGroups/{self.RG}"
        body = {"properties": {"roleName": "bad rg only", "assignableScopes": [rg],
                               "permissions": [{"dataActions": [SECRETS + "getSecret/action"]}]}}
        r = self.http.arm("PUT", f"{self.sub_id}/providers/Microsoft.Authorization/"
                                 f"roleDefinitions/{guid}", body, api_version=AUTHZ_API)
        self.assertEqual(r.status, 201, r)
        self.create_vault("rg-bad-elsewhere", "badelsewhere", True)
        before = self.assignments()
        for scope in (self.sub_id, f"{self.sub_id}/resourceGroups/rg-bad-elsewhere",
                      self.vault_id("rg-bad-elsewhere", "badelsewhere")):
            with self.subTest(scope=scope):
                r, _ = self.assign(scope, guid, self.p.oid)
                self.assertErrorBody(r, 400, "RoleNotAssignableAtScope")
        self.assertEqual(self.assignments(), before)
        name = self.assign_ok(self.rbac_vault(), guid, self.p.oid)
        self.assertEqual(self.http.kv("GET", "badrbac", "/secrets/s",
                                      token=self.p.vault_token).status, 200)
        self.assertEqual(self.unassign(self.rbac_vault(), name).status, 200)
        self.assertUnchangedAccess()

    def test_a_role_in_use_cannot_be_deleted(self):
        vault = self.rbac_vault()
        guid = self.create_custom_role("bad in use", [SECRETS + "getSecret/action"])
        role_url = f"{self.sub_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        assignment = self.assign_ok(vault, guid, self.p.oid)
        get = lambda: self.http.kv("GET", "badrbac", "/secrets/s",  # noqa: E731
                                   token=self.p.vault_token)
        self.assertEqual(get().status, 200)
        r = self.http.arm("DELETE", role_url, api_version=AUTHZ_API)
        self.assertErrorBody(r, 409, "RoleDefinitionHasAssignments")
        self.assertIn(guid, self.custom_roles())
        self.assertEqual(get().status, 200, "the refused delete took the grant away")
        self.assertEqual(self.unassign(vault, assignment).status, 200)
        self.assertEqual(self.http.arm("DELETE", role_url, api_version=AUTHZ_API).status, 200)
        self.assertErrorBody(self.http.arm("GET", role_url, api_version=AUTHZ_API), 404,
                             "RoleDefinitionDoesNotExist")
        self.assertEqual(self.http.arm("DELETE", role_url, api_version=AUTHZ_API).status, 204)
        r, _ = self.assign(vault, guid, self.p.oid)
        self.assertErrorBody(r, 400, "RoleDefinitionDoesNotExist")
        self.assertUnchangedAccess()

    def test_hostile_requests_are_refused_and_the_server_keeps_serving(self):
        before = self.assignments()
        vault = self.rbac_vault()
        ok_body = {"properties": {"roleDefinitionId": self.role_definition_id(
            ROLES["Key Vault Secrets User"]), "principalId": self.p.oid}}
        name = str(uuid.uuid4())
        ra = "providers/Microsoft.Authorization/roleAssignments"
        for label, target, body in (
                ("dot-dot in the scope", f"{self.sub_id}/resourceGroups/{self.RG}/../rg-x/"
                                         f"{ra}/{name}", ok_body),
                ("encoded slash in the vault name",
                 f"{self.sub_id}/resourceGroups/{self.RG}/providers/Microsoft.KeyVault/vaults/"
                 f"badrbac%2F..%2Fbadap/{ra}/{name}", ok_body),
                ("NUL in the secret name", f"{vault}/secrets/s%00x/{ra}/{name}", ok_body),
                ("assignment under an assignment", f"{vault}/{ra}/{name}/{ra}/{name}", ok_body),
                ("role assignment on a role assignment's path",
                 f"{vault}/{ra}/{name}/extra", ok_body),
                ("a 1.5 MB description", f"{vault}/{ra}/{name}", {"properties": dict(
                    ok_body["properties"], description="d" * 1_500_000)}),
                ("a 3 MB body", f"{vault}/{ra}/{name}", "x" * 3_000_000),
                ("deeply nested JSON", f"{vault}/{ra}/{name}", "[" * 100000 + "]" * 100000),
                ("non-UTF-8 body", f"{vault}/{ra}/{name}", b"\xff\xfe{\"properties\":1}"),
                ("unicode principal", f"{vault}/{ra}/{name}", {"properties": dict(
                    ok_body["properties"], principalId="\u202e" + self.p.oid)})):
            with self.subTest(label):
                try:
                    r = self.http.arm("PUT", target, body, api_version=AUTHZ_API)
                except (ConnectionError, http.client.HTTPException, ssl.SSLError) as e:
                    # The server may close the connection on a body over its limit.
                    self.assertEqual(label, "a 3 MB body", f"{label}: {e!r}")
                    continue
                self.assertGreaterEqual(r.status, 400, f"{label}: {r!r}")
                self.assertLess(r.status, 500, f"{label}: {r!r}")
        self.assertEqual(self.assignments(), before)
        self.assertUnchangedAccess()
        self.assertServing()


class VaultDeletionTests(AuthzTestCase):

    def test_deleting_a_vault_deletes_the_role_assignments_at_and_below_it(self):
        rg = "rg-del"
        # "delvault2" starts with "delvault": its assignments must survive.
        self.create_vault(rg, "delvault", True)
        self.create_vault(rg, "delvault2", True)
        for vault in ("delvault", "delvault2"):
            self.assertEqual(self.http.kv("PUT", vault, "/secrets/s", {"value": "v"}).status, 200)
        p = self.new_sp("deleted-vault-principal")
        gone = self.vault_id(rg, "delvault")
        kept = self.vault_id(rg, "delvault2")
        # Scopes compare case-insensitively: one written in capitals goes too.
        shouted = gone.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
        at_vault = self.assign_ok(shouted, ROLES["Key Vault Secrets User"], p.oid)
        at_secret = self.assign_ok(gone + "/secrets/s", ROLES["Key Vault Secrets Officer"], p.oid)
        at_rg = self.assign_ok(f"{self.sub_id}/resourceGroups/{rg}", ROLES["Key Vault Reader"],
                               p.oid)
        at_other = self.assign_ok(kept, ROLES["Key Vault Secrets User"], p.oid)
        mine = f"principalId eq '{p.oid}'"
        self.assertEqual(set(self.assignments(filter=mine)), {at_vault, at_secret, at_rg,
                                                              at_other})
        for _ in range(2):  # warm the caches
            self.assertEqual(self.http.kv("GET", "delvault", "/secrets/s",
                                          token=p.vault_token).status, 200)

        r = self.http.arm("DELETE", gone, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        r = self.http.kv("GET", "delvault", "/secrets/s", token=p.vault_token)
        self.assertNotEqual(r.status, 200, r)
        self.assertNotIn(b'"value"', r.body)
        self.assertEqual(set(self.assignments(filter=mine)), {at_rg, at_other})
        self.assertEqual(set(self.assignments()) & {at_vault, at_secret}, set())
        for scope, name in ((shouted, at_vault), (gone + "/secrets/s", at_secret)):
            r = self.http.arm("GET", f"{scope}/providers/Microsoft.Authorization/"
                                     f"roleAssignments/{name}", api_version=AUTHZ_API)
            self.assertErrorBody(r, 404, "RoleAssignmentNotFound")
        self.assertEqual(self.http.kv("GET", "delvault2", "/secrets/s",
                                      token=p.vault_token).status, 200)
        # A deleted vault is no scope for new assignments.
        r, _ = self.assign(gone, ROLES["Key Vault Secrets User"], p.oid)
        self.assertErrorBody(r, 404, "ResourceNotFound")

        # Recovering the vault brings its secrets back, not its old assignments.
        r = self.http.arm("PUT", gone, {"location": "local",
                                        "properties": {"createMode": "recover"}},
                          api_version=VAULT_API)
        self.assertIn(r.status, (200, 201), r)
        self.assertEqual(self.http.kv("GET", "delvault", "/secrets/s").status, 200)
        self.assertRbacDenial(self.http.kv("GET", "delvault", "/secrets/s", token=p.vault_token),
                              p, SECRETS + "getSecret/action", gone + "/secrets/s",
                              "RoleLacksAction", "only the resource group's Reader is left")
        d = self.explain_ok(p.oid, "delvault", "SecretGet", "s")
        self.assertEqual({c["id"] for c in d["considered"]}, {at_rg, at_other}, d)
        # Nor does purging and re-creating the name.
        self.assertEqual(self.http.arm("DELETE", gone, api_version=VAULT_API).status, 200)
        r = self.http.arm("POST", f"{self.sub_id}/providers/Microsoft.KeyVault/locations/local/"
                                  "deletedVaults/delvault/purge", api_version=VAULT_API)
        self.assertIn(r.status, (200, 202, 204), r)
        self.create_vault(rg, "delvault", True)
        d = self.explain_ok(p.oid, "delvault", "SecretGet", "s")
        self.assertEqual((d["decisionReason"], {c["id"] for c in d["considered"]}),
                         ("RoleLacksAction", {at_rg, at_other}), d)
        self.assertEqual(set(self.assignments(filter=mine)), {at_rg, at_other})


class CliTests(AuthzTestCase):

    def test_authz_explain_prints_the_decision_and_what_was_considered(self):
        created = json.loads(self.coffer("keyvault", "create", "-n", "clirbac", "-g", "rg-cli"))
        self.assertIs(created["properties"]["enableRbacAuthorization"], True)
        vault = created["id"]
        self.assertEqual(self.http.kv("PUT", "clirbac", "/secrets/s", {"value": "v"}).status, 200)
        p = self.new_sp("cli-explained")
        args = ("authz", "explain", "--assignee", p.app_id, "--vault", "clirbac", "--action",
                "secrets/get", "--object", "s")

        out = self.coffer(*args)
        self.assertTrue(out.startswith(f"DENIED: cli-explained ({p.oid}) SecretGet on "
                                       f"{vault}/secrets/s\n"), out)
        self.assertIn("model:       Azure RBAC", out)
        self.assertIn("reason:      NoRoleAssignment", out)
        self.assertIn("nothing names this principal", out)

        reader = json.loads(self.coffer("role", "assignment", "create", "--assignee", p.app_id,
                                        "--role", "Key Vault Reader", "--scope", vault))
        self.assertEqual(reader["properties"]["principalId"], p.oid)
        out = self.coffer(*args)
        self.assertTrue(out.startswith("DENIED: "), out)
        self.assertIn("reason:      RoleLacksAction", out)
        self.assertIn(f"- {reader['name']} Key Vault Reader at {vault}: role does not grant "
                      "the action", out)

        user = json.loads(self.coffer("role", "assignment", "create", "--assignee", p.oid,
                                      "--role", ROLES["Key Vault Secrets User"], "--scope",
                                      vault + "/secrets/s"))
        out = self.coffer(*args)
        self.assertTrue(out.startswith("ALLOWED: "), out)
        self.assertIn("reason:      RoleAssignmentMatch", out)
        self.assertIn(f"granted by:  {user['name']}", out)
        self.assertIn(f"+ {user['name']} Key Vault Secrets User at {vault}/secrets/s: grants "
                      "the action", out)
        self.assertIn(f"- {reader['name']} Key Vault Reader", out)
        self.assertIn("Access policies do not apply", out)
        self.assertEqual(self.http.kv("GET", "clirbac", "/secrets/s",
                                      token=p.vault_token).status, 200)

        as_json = json.loads(self.coffer(*args, "--json"))
        self.assertEqual(as_json, self.explain_ok(p.app_id, "clirbac", "secrets/get", "s"))
        self.assertEqual((as_json["allowed"], as_json["applied"]), (True, user["name"]))

        # An access-policy vault, with the creator's own entry and set-policy/delete-policy.
        ap = json.loads(self.coffer("keyvault", "create", "-n", "cliap", "-g", "rg-cli",
                                    "--enable-rbac-authorization", "false"))
        self.assertEqual([(e["objectId"], e["permissions"]["secrets"])
                          for e in ap["properties"]["accessPolicies"]],
                         [(self.admin_oid, ["all"])])
        ap_args = ("authz", "explain", "--assignee", p.oid, "--vault", "cliap", "--action",
                   "SecretList")
        self.coffer("keyvault", "set-policy", "--name", "cliap", "--object-id", p.oid,
                    "--secret-permissions", "get", "list")
        out = self.coffer(*ap_args)
        self.assertTrue(out.startswith("ALLOWED: "), out)
        self.assertIn("model:       access policies", out)
        self.assertIn("+ accessPolicies[1]: secrets: get, list", out)
        self.assertIn("Role assignments do not apply", out)
        self.coffer("keyvault", "delete-policy", "--name", "cliap", "--object-id", p.oid)
        out = self.coffer(*ap_args)
        self.assertTrue(out.startswith("DENIED: "), out)
        self.assertIn("reason:      NoAccessPolicy", out)
        none = json.loads(self.coffer("keyvault", "create", "-n", "cliapbare", "-g", "rg-cli",
                                      "--enable-rbac-authorization", "false", "--no-self-perms"))
        self.assertEqual(none["properties"]["accessPolicies"], [])

        err = self.coffer("authz", "explain", "--assignee", p.oid, "--vault", "nosuchvault",
                          "--action", "SecretGet", expect=1)
        self.assertIn("nosuchvault", err)
        err = self.coffer("authz", "explain", "--assignee", p.oid, "--vault", "clirbac",
                          "--action", "SecretFly", expect=1)
        self.assertIn("BadParameter", err)

    def test_role_definition_and_assignment_commands(self):
        p = self.new_sp("cli-roles")
        self.coffer("keyvault", "create", "-n", "cliroles", "-g", "rg-cli-roles")
        vault = self.vault_id("rg-cli-roles", "cliroles")
        definition = {"Name": "cli secret reader", "Description": "reads secrets",
                      "Actions": [], "DataActions": [SECRETS + "getSecret/action"],
                      "AssignableScopes": [self.sub_id]}
        created = json.loads(self.coffer("role", "definition", "create", "--role-definition",
                                         json.dumps(definition)))
        self.assertEqual(created["properties"]["type"], "CustomRole")
        customs = json.loads(self.coffer("role", "definition", "list", "--custom-role-only"))
        self.assertIn(created["name"], [d["name"] for d in customs])
        self.assertTrue(all(d["properties"]["type"] == "CustomRole" for d in customs), customs)
        named = json.loads(self.coffer("role", "definition", "list", "--name",
                                       "cli secret reader"))
        self.assertEqual([d["name"] for d in named], [created["name"]])
        bad = dict(definition, Name="cli bad", DataActions=[SECRETS + "fly/action"])
        err = self.coffer("role", "definition", "create", "--role-definition", json.dumps(bad),
                          expect=1)
        self.assertIn("InvalidActionOrNotAction", err)

        assignment = json.loads(self.coffer("role", "assignment", "create", "--assignee",
                                            p.app_id, "--role", "cli secret reader",
                                            "--scope", vault))
        listed = json.loads(self.coffer("role", "assignment", "list", "--assignee", p.app_id))
        self.assertEqual([a["name"] for a in listed], [assignment["name"]])
        at_scope = json.loads(self.coffer("role", "assignment", "list", "--scope", vault))
        self.assertEqual([a["name"] for a in at_scope], [assignment["name"]])
        everything = json.loads(self.coffer("role", "assignment", "list", "--all"))
        self.assertIn(assignment["name"], [a["name"] for a in everything])
        self.assertEqual(self.http.kv("GET", "cliroles", "/secrets/nope",
                                      token=p.vault_token).status, 404,
                         "allowed, so the secret's absence shows")
        err = self.coffer("role", "definition", "delete", "--name", "cli secret reader",
                          expect=1)
        self.assertIn("RoleDefinitionHasAssignments", err)
        err = self.coffer("role", "assignment", "create", "--assignee", p.oid, "--role",
                          "No Such Role", "--scope", vault, expect=1)
        self.assertIn("No Such Role", err)

        self.coffer("role", "assignment", "delete", "--assignee", p.oid, "--role",
                    "cli secret reader", "--scope", vault)
        self.assertEqual(json.loads(self.coffer("role", "assignment", "list", "--assignee",
                                                p.oid)), [])
        err = self.coffer("role", "assignment", "delete", "--assignee", p.oid, "--role",
                          "cli secret reader", "--scope", vault, expect=1)
        self.assertIn("RoleAssignmentNotFound", err)
        again = json.loads(self.coffer("role", "assignment", "create", "--assignee", p.oid,
                                       "--role", created["name"], "--scope", vault))
        self.coffer("role", "assignment", "delete", "--ids", again["id"])
        self.assertEqual(self.assignments(filter=f"principalId eq '{p.oid}'"), {})
        self.coffer("role", "definition", "delete", "--name", "cli secret reader")
        customs = json.loads(self.coffer("role", "definition", "list", "--custom-role-only"))
        self.assertNotIn(created["name"], [d["name"] for d in customs])
