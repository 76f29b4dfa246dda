"""The audit log, end to end against the real server (docs/audit.md).

* Every data-plane operation writes one record in Key Vault's AuditEvent shape, allowed or
  denied (under access policies and under Azure RBAC) and when authentication fails; the
  fields are checked one by one against what the test sent and the token it used, managed
  identities' xms_mirid included.  Hostile header values stay inside their fields.
* Management-plane operations (vault put/get/patch/list/delete, a role assignment, a 403)
  are recorded too.
* No audit file, and nothing the server logs, holds a secret value or a bearer token.
* `coffer audit verify` accepts an intact log and finds each kind of tampering in a copy: an
  edited, deleted or reordered record, a cut tail, a line cut short, a removed file, a forged
  checkpoint, an edit with the chain recomputed after it, another public key; it names the
  file, the line and the seq.
* Small files rotate; the chain and the seq run on across files.
* Acknowledged writes have their records after a SIGKILL; reads made a second before it too.
* `coffer audit query` and GET /coffer/v1/audit: every filter, table and JSON output, and only
  the records of resources where the caller holds Microsoft.Insights/logs/read.
* A deleted or garbled head, and records after the newest checkpoint cut or rewritten, fail
  verify (`--without-head` forgives the head only, and says so).
* Old files deleted while the server is down: its restart writes a recovery record, which fails
  verify until `coffer audit acknowledge` appends a signed acknowledgement.
* `--audit-signing-key` keeps the key out of the audit directory: a log re-signed with a key
  written into the directory fails verify with the server's public key; a missing or loose key
  stops the server.
"""

import base64
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
import subprocess
import threading
import time
import unittest
import urllib.parse
import uuid

from harness import (KV_API, ServerTestCase, coffer_binary, jwt_parts, server_audit_dir,
                     start_server)
from test_authorization import ROLES, AuthzTestCase, Principal

VAULT_API = "2023-07-01"
AUTHZ_API = "2022-04-01"
RECORD_WAIT_S = 10.0  # reads reach the file within about a second; this only bounds a hang
AUDIT_FILE = re.compile(r"^audit-(\d{20})\.jsonl$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}0Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
RECORD_KEYS = ["time", "resourceId", "operationName", "operationVersion", "category",
               "resultType", "resultSignature", "resultDescription", "durationMs",
               "callerIpAddress", "correlationId", "identity", "properties", "serverId", "seq",
               "prev"]
CLAIM_URI = "http://schemas.microsoft.com/identity/claims/objectidentifier"


# ---- reading the log ------------------------------------------------------------------------

def audit_dir(srv):
    return server_audit_dir(srv.data_dir)


def audit_files(directory):
    """The log file names in `directory`, oldest first."""
    return sorted(n for n in os.listdir(directory) if AUDIT_FILE.match(n))


def raw_lines(directory):
    """[(file name, 1-based line number, line bytes without newline)] of every complete line."""
    out = []
    for name in audit_files(directory):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        parts = data.split(b"\n")
        for i, line in enumerate(parts[:-1]):  # the last part is incomplete (or empty)
            out.append((name, i + 1, line))
    return out


def read_records(directory, checkpoints=False):
    """Every complete line parsed, in file order (AuditEvent records unless checkpoints)."""
    out = []
    for _, _, line in raw_lines(directory):
        rec = json.loads(line.decode("utf-8"))
        if checkpoints or rec.get("category") == "AuditEvent":
            out.append(rec)
    return out


def wait_for_records(srv, match, count=1, timeout=RECORD_WAIT_S):
    """Polls the live log until `count` records satisfy match(record); returns them all."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in read_records(audit_dir(srv)) if match(r)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def by_correlation(srv, correlation_id, count=1):
    return wait_for_records(srv, lambda r: r.get("correlationId") == correlation_id, count)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def iso_seconds(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def wait_next_second():
    """Sleeps until the wall clock enters a new second; returns that second (int)."""
    now = time.time()
    target = int(now) + 1
    time.sleep(target - now + 0.01)
    return target


def new_correlation(label):
    return f"audit-{label}-{uuid.uuid4()}"


class AuditTestCase(AuthzTestCase):
    """Helpers: requests with a correlation id and a User-Agent, and record assertions."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_token = cls.srv.token(cls.srv.vault_resource)

    def kv_call(self, method, path, body=None, vault="dev", token=None, label="kv", auth=True,
                headers=None):
        """A data-plane request with a fresh correlation id and User-Agent.
        Returns (response, correlation id, user agent, path with query)."""
        corr = new_correlation(label)
        ua = f"coffer-audit-test/1.0 ({label})"
        hdrs = {"x-ms-client-request-id": corr, "User-Agent": ua}
        hdrs.update(headers or {})
        target = path + ("&" if "?" in path else "?") + "api-version=" + KV_API
        r = self.srv.request(method, target, body, host=self.srv.vault_host(vault),
                             token=token, auth=auth, headers=hdrs)
        return r, corr, ua, target

    def arm_call(self, method, path, body=None, token=None, api_version=VAULT_API, label="arm"):
        """A management request (path under the subscription) with a correlation id."""
        corr = new_correlation(label)
        ua = f"coffer-audit-test/1.0 ({label})"
        r = self.srv.arm(method, path, body, api_version=api_version,
                         token=token or self.srv.token(self.srv.mgmt_resource),
                         headers={"x-ms-client-request-id": corr, "User-Agent": ua})
        return r, corr, ua

    def vault_arm_id(self, rg, name):
        return f"/subscriptions/{self.srv.subscription}/resourceGroups/{rg}/providers/" \
               f"Microsoft.KeyVault/vaults/{name}"

    def one_record(self, corr, msg=""):
        recs = by_correlation(self.srv, corr)
        self.assertEqual(len(recs), 1, f"{msg}: records with correlationId {corr}: {recs}")
        rec = recs[0]
        self.assertWellFormed(rec, msg)
        return rec

    def assertWellFormed(self, rec, msg=""):
        """The shape docs/audit.md gives: field order, types, formats."""
        self.assertEqual(list(rec.keys()), RECORD_KEYS, f"{msg}: {rec}")
        self.assertRegex(rec["time"], TIME_RE, msg)
        self.assertEqual(rec["category"], "AuditEvent", msg)
        self.assertIsInstance(rec["durationMs"], int, msg)
        self.assertGreaterEqual(rec["durationMs"], 0, msg)
        self.assertIsInstance(rec["callerIpAddress"], str, msg)
        self.assertIn(rec["callerIpAddress"], ("127.0.0.1", "::1", "::ffff:127.0.0.1"), msg)
        self.assertIsInstance(rec["seq"], int, msg)
        self.assertRegex(rec["prev"], HEX64, msg)
        self.assertEqual(rec["resourceId"], rec["resourceId"].upper(), msg)
        self.assertEqual(set(rec["identity"].keys()), {"claim"}, msg)
        props = rec["properties"]
        self.assertIsInstance(props["httpStatusCode"], int, msg)
        self.assertEqual(rec["resultType"], "Success" if props["httpStatusCode"] < 400
                         else "Failure", msg)
        self.assertEqual(props["tlsVersion"], "TLS1_3", msg)
        order = [k for k in ("id", "requestUri", "clientInfo", "httpStatusCode",
                             "isRbacAuthorized", "isAccessPolicyMatch", "appliedAssignmentId",
                             "tlsVersion") if k in props]
        self.assertEqual([k for k in props if k in order], order, f"{msg}: {props}")
        for k in ("isRbacAuthorized", "isAccessPolicyMatch"):
            if k in props:
                self.assertIsInstance(props[k], bool, msg)

    def assertClaims(self, rec, token, msg=""):
        """identity.claim names the token's principal."""
        claims = jwt_parts(token)[1]
        got = rec["identity"]["claim"]
        self.assertEqual(got["oid"], claims["oid"], msg)
        self.assertEqual(got[CLAIM_URI], claims["oid"], msg)
        self.assertEqual(got["appid"], claims["appid"], msg)
        self.assertEqual(got["tid"], claims["tid"], msg)
        for optional in ("appidacr", "idtyp", "xms_mirid"):
            if optional in claims:
                self.assertEqual(got.get(optional), claims[optional], f"{msg}: {optional}")
            else:
                self.assertNotIn(optional, got, msg)
        self.assertLessEqual(set(got), {"oid", CLAIM_URI, "appid", "tid", "appidacr", "idtyp",
                                        "xms_mirid"}, msg)

    def assertDataRecord(self, rec, *, operation, status, signature, vault_id, target, ua,
                         host=None, msg=""):
        host = host or f"{self.srv.vault_host()}:{self.srv.port}"
        path = target.split("?", 1)[0]
        self.assertEqual(rec["operationName"], operation, msg)
        self.assertEqual(rec["resourceId"], vault_id.upper(), msg)
        self.assertEqual(rec["operationVersion"], KV_API, msg)
        self.assertEqual(rec["resultSignature"], signature, msg)
        self.assertEqual(rec["resultType"], "Success" if status < 400 else "Failure", msg)
        props = rec["properties"]
        self.assertEqual(props["httpStatusCode"], status, msg)
        self.assertEqual(props["id"], f"https://{host}{path}", msg)
        self.assertEqual(props["requestUri"], f"https://{host}{target}", msg)
        self.assertEqual(props["clientInfo"], ua, msg)


class DataPlaneRecordTests(AuditTestCase):
    """One record per data-plane request, field by field."""

    RBAC_RG, RBAC_VAULT = "rg-audit-rbac", "auditrbac"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dev_id = (f"/subscriptions/{cls.srv.subscription}/resourceGroups/coffer-dev/"
                      f"providers/Microsoft.KeyVault/vaults/dev")
        cls.create_vault(cls.RBAC_RG, cls.RBAC_VAULT, True)
        cls.sp = cls.new_sp("audit-data-sp")

    def test_every_secret_operation_allowed_under_access_policies(self):
        name = "audited"
        steps = []  # (operation, response, corr, ua, target, expected status)

        def step(op, method, path, body=None, status=200):
            r, corr, ua, target = self.kv_call(method, path, body, label=op)
            self.assertEqual(r.status, status, f"{op}: {r!r}")
            steps.append((op, r, corr, ua, target, status))
            return r

        version = step("SecretSet", "PUT", f"/secrets/{name}", {"value": "audited-1"}) \
            .json()["id"].rsplit("/", 1)[1]
        step("SecretGet", "GET", f"/secrets/{name}/{version}")
        step("SecretHash", "POST", f"/secrets/{name}/{version}/hash", {"key": "A" * 43})
        step("SecretList", "GET", "/secrets")
        step("SecretListVersions", "GET", f"/secrets/{name}/versions")
        step("SecretUpdate", "PATCH", f"/secrets/{name}/{version}", {"tags": {"a": "b"}})
        blob = step("SecretBackup", "POST", f"/secrets/{name}/backup").json()["value"]
        step("SecretDelete", "DELETE", f"/secrets/{name}")
        step("SecretGetDeleted", "GET", f"/deletedsecrets/{name}")
        step("SecretListDeleted", "GET", "/deletedsecrets")
        step("SecretRecover", "POST", f"/deletedsecrets/{name}/recover")
        self.assertEqual(self.kv_call("DELETE", f"/secrets/{name}")[0].status, 200)
        step("SecretPurge", "DELETE", f"/deletedsecrets/{name}", status=204)
        step("SecretRestore", "POST", "/secrets/restore", {"value": blob})
        step("SecretGet", "GET", "/secrets/never-was", status=404)

        self.assertEqual({s[0] for s in steps},
                         {"SecretSet", "SecretGet", "SecretList", "SecretListVersions",
                          "SecretUpdate", "SecretDelete", "SecretGetDeleted",
                          "SecretListDeleted", "SecretRecover", "SecretPurge", "SecretBackup",
                          "SecretRestore", "SecretHash"})
        reasons = {200: "OK", 204: "No Content", 404: "Not Found"}
        for op, r, corr, ua, target, status in steps:
            with self.subTest(op=op, status=status):
                rec = self.one_record(corr, op)
                self.assertDataRecord(rec, operation=op, status=status,
                                      signature=reasons[status], vault_id=self.dev_id,
                                      target=target, ua=ua, msg=op)
                self.assertEqual(rec["correlationId"], corr)
                self.assertClaims(rec, self.admin_token, op)
                self.assertEqual((rec["identity"]["claim"]["oid"],
                                  rec["identity"]["claim"]["idtyp"]), (self.admin_oid, "app"))
                props = rec["properties"]
                self.assertIs(props["isAccessPolicyMatch"], True, op)
                self.assertIs(props["isRbacAuthorized"], False, op)
                self.assertNotIn("appliedAssignmentId", props, op)
                if status < 400:
                    self.assertEqual(rec["resultDescription"], "", op)
                else:
                    self.assertTrue(rec["resultDescription"], op)
                    self.assertEqual(rec["resultDescription"], r.json()["error"]["message"])

    # (operation, method, path, body, access-policy permission, data action after "secrets/")
    DENIABLE = (
        ("SecretSet", "PUT", "/secrets/{live}", {"value": "denied"}, "set", "setSecret/action"),
        ("SecretGet", "GET", "/secrets/{live}", None, "get", "getSecret/action"),
        ("SecretHash", "POST", "/secrets/{live}/hash", {"key": "A" * 43}, "get",
         "getSecret/action"),
        ("SecretList", "GET", "/secrets", None, "list", "readMetadata/action"),
        ("SecretListVersions", "GET", "/secrets/{live}/versions", None, "list",
         "readMetadata/action"),
        ("SecretUpdate", "PATCH", "/secrets/{live}/{version}", {"tags": {"x": "y"}}, "set",
         "update/action"),
        ("SecretBackup", "POST", "/secrets/{live}/backup", None, "backup", "backup/action"),
        ("SecretRestore", "POST", "/secrets/restore", "blob", "restore", "restore/action"),
        ("SecretDelete", "DELETE", "/secrets/{live}", None, "delete", "delete"),
        ("SecretGetDeleted", "GET", "/deletedsecrets/{gone}", None, "list",
         "readMetadata/action"),
        ("SecretListDeleted", "GET", "/deletedsecrets", None, "list", "readMetadata/action"),
        ("SecretRecover", "POST", "/deletedsecrets/{gone}/recover", None, "recover",
         "recover/action"),
        ("SecretPurge", "DELETE", "/deletedsecrets/{gone}", None, "purge", "purge/action"),
    )

    def deny_all(self, vault, prefix, token):
        """Every operation by a principal that may do none of them; returns
        [(operation, permission, data action, response, correlation id, ua, target)]."""
        live, gone = f"{prefix}-live", f"{prefix}-gone"
        version = self.kv_call("PUT", f"/secrets/{live}", {"value": "x"}, vault=vault)[0] \
            .json()["id"].rsplit("/", 1)[1]
        blob = self.kv_call("POST", f"/secrets/{live}/backup", vault=vault)[0].json()["value"]
        self.assertEqual(self.kv_call("PUT", f"/secrets/{gone}", {"value": "x"},
                                      vault=vault)[0].status, 200)
        self.assertEqual(self.kv_call("DELETE", f"/secrets/{gone}", vault=vault)[0].status, 200)
        out = []
        for op, method, path, body, perm, action in self.DENIABLE:
            path = path.format(live=live, gone=gone, version=version)
            body = {"value": blob} if body == "blob" else body
            r, corr, ua, target = self.kv_call(method, path, body, vault=vault, token=token,
                                               label="denied-" + op)
            self.assertEqual(r.status, 403, f"{op}: {r!r}")
            out.append((op, perm, action, r, corr, ua, target))
        return out

    def assertDenialRecord(self, rec, r, token):
        self.assertClaims(rec, token)
        props = rec["properties"]
        self.assertIs(props["isAccessPolicyMatch"], False)
        self.assertIs(props["isRbacAuthorized"], False)
        self.assertNotIn("appliedAssignmentId", props)
        message = r.json()["error"]["message"]
        self.assertEqual(rec["resultDescription"], message.encode()[:512].decode(),
                         "the error message, at most 512 bytes of it")

    def test_every_operation_denied_under_access_policies(self):
        for op, perm, _, r, corr, ua, target in self.deny_all("dev", "ap-deny",
                                                              self.sp.vault_token):
            with self.subTest(op=op):
                rec = self.one_record(corr, op)
                self.assertDataRecord(rec, operation=op, status=403, signature="Forbidden",
                                      vault_id=self.dev_id, target=target, ua=ua, msg=op)
                self.assertDenialRecord(rec, r, self.sp.vault_token)
                self.assertEqual(rec["identity"]["claim"]["oid"], self.sp.oid)
                self.assertIn(f"does not have secrets {perm} permission",
                              rec["resultDescription"])

    def test_every_operation_denied_under_rbac(self):
        vault_id = self.vault_arm_id(self.RBAC_RG, self.RBAC_VAULT)
        host = f"{self.srv.vault_host(self.RBAC_VAULT)}:{self.srv.port}"
        nobody = self.new_sp("audit-no-role")
        for op, _, action, r, corr, ua, target in self.deny_all(self.RBAC_VAULT, "rbac-deny",
                                                                nobody.vault_token):
            with self.subTest(op=op):
                rec = self.one_record(corr, op)
                self.assertDataRecord(rec, operation=op, status=403, signature="Forbidden",
                                      vault_id=vault_id, target=target, ua=ua, host=host,
                                      msg=op)
                self.assertDenialRecord(rec, r, nobody.vault_token)
                self.assertTrue(rec["resultDescription"].startswith(
                    "Caller is not authorized to perform action on resource."))
                self.assertIn(f"Action: 'Microsoft.KeyVault/vaults/secrets/{action}'",
                              rec["resultDescription"])

    def test_allowed_and_denied_under_rbac(self):
        vault_id = self.vault_arm_id(self.RBAC_RG, self.RBAC_VAULT)
        host = f"{self.srv.vault_host(self.RBAC_VAULT)}:{self.srv.port}"
        assignment = self.assign_ok(vault_id, ROLES["Key Vault Secrets User"], self.sp.oid)
        r, corr, ua, target = self.kv_call("PUT", "/secrets/rb", {"value": "rbac"},
                                           vault=self.RBAC_VAULT, label="admin-set")
        self.assertEqual(r.status, 200, r)
        rec = self.one_record(corr, "the administrator's role")
        self.assertDataRecord(rec, operation="SecretSet", status=200, signature="OK",
                              vault_id=vault_id, target=target, ua=ua, host=host)
        self.assertIs(rec["properties"]["isRbacAuthorized"], True)
        self.assertIs(rec["properties"]["isAccessPolicyMatch"], False)
        admin_grants = [a for a, (_, principal, _) in self.assignments().items()
                        if principal == self.admin_oid]
        self.assertIn(rec["properties"].get("appliedAssignmentId"), admin_grants)

        r, corr, ua, target = self.kv_call("GET", "/secrets/rb", vault=self.RBAC_VAULT,
                                           token=self.sp.vault_token, label="rbac-get")
        self.assertEqual(r.status, 200, r)
        rec = self.one_record(corr, "allowed")
        self.assertDataRecord(rec, operation="SecretGet", status=200, signature="OK",
                              vault_id=vault_id, target=target, ua=ua, host=host)
        self.assertClaims(rec, self.sp.vault_token)
        props = rec["properties"]
        self.assertIs(props["isRbacAuthorized"], True)
        self.assertIs(props["isAccessPolicyMatch"], False)
        self.assertEqual(props.get("appliedAssignmentId"), assignment)

        r, corr, ua, target = self.kv_call("PUT", "/secrets/rb", {"value": "denied"},
                                           vault=self.RBAC_VAULT, token=self.sp.vault_token,
                                           label="rbac-set")
        self.assertEqual(r.status, 403, r)
        rec = self.one_record(corr, "denied")
        self.assertDataRecord(rec, operation="SecretSet", status=403, signature="Forbidden",
                              vault_id=vault_id, target=target, ua=ua, host=host)
        self.assertDenialRecord(rec, r, self.sp.vault_token)
        self.unassign(vault_id, assignment)

    def test_failed_authentication(self):
        now = int(time.time())
        cases = (
            ("no Authorization (the challenge probe)", False, None),
            ("a forged signature", True, self.srv.forge_token(signature=b"\x01" * 256)),
            ("an expired token", True, self.srv.forge_token(
                claim_changes={"exp": now - 3600, "nbf": now - 7200, "iat": now - 7200})),
            ("a token for another audience", True, self.srv.token(self.srv.mgmt_resource)),
        )
        for label, auth, token in cases:
            with self.subTest(label):
                r, corr, ua, target = self.kv_call("GET", "/secrets/anything", auth=auth,
                                                   token=token, label="authn")
                self.assertEqual(r.status, 401, r)
                rec = self.one_record(corr, label)
                self.assertDataRecord(rec, operation="Authentication", status=401,
                                      signature="Unauthorized", vault_id=self.dev_id,
                                      target=target, ua=ua, msg=label)
                self.assertEqual(rec["identity"]["claim"], {}, label)
                self.assertNotIn("isRbacAuthorized", rec["properties"], label)
                self.assertNotIn("isAccessPolicyMatch", rec["properties"], label)
                self.assertTrue(rec["resultDescription"], label)
                if not auth:
                    self.assertIn("AKV10000", rec["resultDescription"])

    def test_managed_identity_callers_carry_xms_mirid(self):
        system, user = self.new_workload_identities("rg-audit-mi", "audit-app", "audit-uai")
        self.assertEqual(self.kv_call("PUT", "/secrets/mi", {"value": "mi"})[0].status, 200)
        r = self.edit_policies("coffer-dev", "dev", "add",
                               [self.policy_entry(p.oid, ["get"]) for p in (system, user)])
        self.assertEqual(r.status, 200, r)
        site = (f"/subscriptions/{self.srv.subscription}/resourceGroups/rg-audit-mi/providers/"
                f"Microsoft.Web/sites/audit-app")
        for p in (system, user):
            with self.subTest(p.label):
                claims = jwt_parts(p.vault_token)[1]
                self.assertIn("xms_mirid", claims, "the token service gives MI tokens xms_mirid")
                if p is system:
                    self.assertEqual(claims["xms_mirid"].lower(), site.lower())
                r, corr, _, _ = self.kv_call("GET", "/secrets/mi", token=p.vault_token,
                                             label="mi")
                self.assertEqual(r.status, 200, r)
                rec = self.one_record(corr, p.label)
                self.assertClaims(rec, p.vault_token, p.label)
                self.assertEqual(rec["identity"]["claim"]["xms_mirid"], claims["xms_mirid"])
        # And a service principal has none.
        r, corr, _, _ = self.kv_call("GET", "/secrets/mi", label="sp")
        self.assertNotIn("xms_mirid", self.one_record(corr)["identity"]["claim"])

    def test_hostile_header_values_stay_inside_their_fields(self):
        ua = b'evil"},"operationName":"SecretPurge","x":"\\\xff\xfe\xc3\x28 \xe2\x82\xac end'
        corr = 'corr"\\\U0001f511'.encode() + b"A" * 200
        for auth in (True, False):
            with self.subTest(auth=auth):
                s = self.srv.tls_socket()
                try:
                    s.sendall(
                        b"GET /secrets/hostile?api-version=7.5 HTTP/1.1\r\n" +
                        f"Host: dev.vault.localhost:{self.srv.port}\r\n".encode() +
                        (b"Authorization: Bearer " + self.admin_token.encode() + b"\r\n"
                         if auth else b"") +
                        b"User-Agent: " + ua + b"\r\nx-ms-client-request-id: " + corr +
                        b"\r\nConnection: close\r\n\r\n")
                    reply = b""
                    while True:
                        data = s.recv(65536)
                        if not data:
                            break
                        reply += data
                finally:
                    s.close()
                self.assertTrue(reply.startswith(b"HTTP/1.1 404" if auth else b"HTTP/1.1 401"),
                                reply[:200])
                recs = wait_for_records(self.srv,
                                        lambda r: r["correlationId"].startswith('corr"'),
                                        count=2 if not auth else 1)
                rec = recs[-1]
                self.assertWellFormed(rec)
                self.assertEqual(rec["operationName"],
                                 "SecretGet" if auth else "Authentication")
                self.assertEqual(rec["properties"]["clientInfo"],
                                 ua.decode("utf-8", "replace"))
                self.assertTrue(rec["correlationId"].startswith('corr"\\\U0001f511AAA'))
                self.assertLessEqual(len(rec["correlationId"].encode()), 128)
                self.assertEqual(len(recs), 1 if auth else 2, "one request, one line")
                self.assertNotIn("SecretPurge", [r["operationName"] for r in recs])

    def test_the_watch_stream_is_recorded(self):
        r, corr, ua, target = self.kv_call("GET", "/coffer/watch?from=abc", label="watch")
        self.assertEqual(r.status, 400, r)
        rec = self.one_record(corr)
        self.assertDataRecord(rec, operation="SecretWatch", status=400, signature="Bad Request",
                              vault_id=self.dev_id, target=target, ua=ua)
        self.assertClaims(rec, self.admin_token)


class ManagementRecordTests(AuditTestCase):

    RG, VAULT = "rg-audit-mgmt", "auditmgmt"

    def test_vault_lifecycle_role_assignment_and_a_denial(self):
        sp = self.new_sp("audit-mgmt-sp")
        mgmt_token = self.srv.token(self.srv.mgmt_resource)
        vault_path = f"/resourceGroups/{self.RG}/providers/Microsoft.KeyVault/vaults/{self.VAULT}"
        vault_id = self.vault_arm_id(self.RG, self.VAULT)
        sub_prefix = f"/subscriptions/{self.srv.subscription}"
        assignment = str(uuid.uuid4())
        assignment_path = (vault_path + "/providers/Microsoft.Authorization/roleAssignments/" +
                           assignment)
        steps = []

        def step(op, method, path, body, status, signature, resource_id, api=VAULT_API,
                 token=None, principal_token=None):
            r, corr, ua = self.arm_call(method, path, body, token=token, api_version=api,
                                        label=op.replace("/", "-"))
            self.assertEqual(r.status, status, f"{op}: {r!r}")
            steps.append((op, method, path, r, corr, ua, status, signature, resource_id, api,
                          principal_token or mgmt_token))

        step("VaultPut", "PUT", vault_path,
             {"location": "local", "properties": {"enableRbacAuthorization": True}},
             201, "Created", vault_id)
        step("VaultGet", "GET", vault_path, None, 200, "OK", vault_id)
        step("VaultPatch", "PATCH", vault_path, {"tags": {"audited": "yes"}}, 200, "OK",
             vault_id)
        step("VaultList", "GET", f"/resourceGroups/{self.RG}/providers/Microsoft.KeyVault/vaults",
             None, 200, "OK", f"{sub_prefix}/resourceGroups/{self.RG}")
        step("Microsoft.Authorization/roleAssignments/write", "PUT", assignment_path,
             {"properties": {"roleDefinitionId": f"{sub_prefix}/providers/Microsoft."
                             f"Authorization/roleDefinitions/{ROLES['Reader']}",
                             "principalId": sp.oid}},
             201, "Created", sub_prefix + assignment_path, api=AUTHZ_API)
        step("VaultPut", "PUT", f"/resourceGroups/{self.RG}/providers/Microsoft.KeyVault/"
                                f"vaults/auditmgmt2",
             {"location": "local", "properties": {}}, 403, "Forbidden",
             self.vault_arm_id(self.RG, "auditmgmt2"), token=sp.mgmt_token,
             principal_token=sp.mgmt_token)
        step("VaultDelete", "DELETE", vault_path, None, 200, "OK", vault_id)

        for op, method, path, r, corr, ua, status, signature, rid, api, token in steps:
            with self.subTest(op=op, status=status):
                rec = self.one_record(corr, op)
                self.assertEqual(rec["operationName"], op)
                self.assertEqual(rec["resourceId"], rid.upper())
                self.assertEqual(rec["operationVersion"], api)
                self.assertEqual(rec["resultSignature"], signature)
                self.assertEqual(rec["correlationId"], corr)
                self.assertClaims(rec, token, op)
                props = rec["properties"]
                self.assertEqual(props["httpStatusCode"], status)
                self.assertEqual(props["clientInfo"], ua)
                self.assertEqual(props["requestUri"],
                                 f"https://localhost:{self.srv.port}{sub_prefix}{path}"
                                 f"?api-version={api}")
                self.assertNotIn("isAccessPolicyMatch", props)
                if status < 400:
                    self.assertIs(props["isRbacAuthorized"], True, op)
                    self.assertTrue(props.get("appliedAssignmentId"), op)
                    self.assertEqual(rec["resultDescription"], "")
                else:
                    self.assertIs(props["isRbacAuthorized"], False, op)
                    self.assertNotIn("appliedAssignmentId", props)
                    self.assertEqual(r.error_code(), "AuthorizationFailed")
                    self.assertEqual(rec["resultDescription"], r.json()["error"]["message"])
                    self.assertIn("'Microsoft.KeyVault/vaults/write'", rec["resultDescription"])

    def test_a_bad_management_token_is_recorded_as_authentication(self):
        corr = new_correlation("arm-authn")
        r = self.srv.arm("GET", "/resourceGroups/coffer-dev/providers/Microsoft.KeyVault/vaults/"
                                "dev", token=self.srv.forge_token(signature=b"\x02" * 256),
                         headers={"x-ms-client-request-id": corr})
        self.assertEqual(r.status, 401, r)
        rec = self.one_record(corr)
        self.assertEqual((rec["operationName"], rec["resultSignature"], rec["resultType"]),
                         ("Authentication", "Unauthorized", "Failure"))
        self.assertEqual(rec["resourceId"], f"/SUBSCRIPTIONS/{self.srv.subscription.upper()}")
        self.assertEqual(rec["identity"]["claim"], {})


class SecretsStayOutOfTheLogTests(ServerTestCase):
    """No audit file and no server log holds a secret value or a bearer token."""

    SERVER_ARGS = ("--log-level", "debug")

    def test_no_value_and_no_token_in_audit_files_or_logs(self):
        srv = self.srv
        nonce = uuid.uuid4().hex
        values = [
            f"plain-{nonce}-value",
            f'quote"{nonce}"and\\backslash',
            f"new\nline-{nonce}\r\n\ttab",
            f"unicode-ünïcødé-{nonce}-🔑-秘密",
            f"{{\"json\": \"{nonce}\"}}",
            "x" * 2000 + nonce,
        ]
        admin = srv.token(srv.vault_resource)
        mgmt = srv.token(srv.mgmt_resource)
        forged = srv.forge_token(signature=b"\x03" * 256)
        tokens = [admin, mgmt, forged]
        blobs = []
        for i, value in enumerate(values):
            name = f"scan-{i}"
            r = srv.kv("PUT", f"/secrets/{name}", {"value": value, "tags": {"t": "tag"}},
                       headers={"x-ms-client-request-id": f"scan-{i}"})
            self.assertEqual(r.status, 200, r)
            r = srv.kv("GET", f"/secrets/{name}")
            self.assertEqual(r.json()["value"], value)
            r = srv.kv("POST", f"/secrets/{name}/backup")
            self.assertEqual(r.status, 200, r)
            blobs.append(r.json()["value"])
        # A value in a request that fails, and in one that is denied, and a bad token.
        r = srv.kv("PUT", "/secrets/bad_name", {"value": values[0]})
        self.assertEqual(r.status, 400, r)
        r = srv.kv("PUT", "/secrets/scan-0", {"value": values[0]}, token=forged)
        self.assertEqual(r.status, 401, r)
        r = srv.kv("GET", "/secrets/scan-1", auth=False,
                   headers={"Authorization": "Bearer " + admin[:-4] + "AAAA"})
        self.assertEqual(r.status, 401, r)
        r = srv.kv("DELETE", "/secrets/scan-0")
        self.assertEqual(r.status, 200, r)
        r = srv.kv("DELETE", "/deletedsecrets/scan-0")
        self.assertEqual(r.status, 204, r)
        r = srv.kv("POST", "/secrets/restore", {"value": blobs[0]})
        self.assertEqual(r.status, 200, r)
        r = srv.arm("GET", "/resourceGroups/coffer-dev/providers/Microsoft.KeyVault/vaults/dev")
        self.assertEqual(r.status, 200, r)
        r = srv.request("GET", "/coffer/v1/audit?top=1000", host="localhost", token=mgmt)
        self.assertEqual(r.status, 200, r)
        srv.stop()  # everything is flushed and the logs are complete

        needles = {}
        for i, v in enumerate(values):
            needles[f"value {i}"] = v.encode()
            needles[f"value {i}, JSON-escaped"] = json.dumps(v)[1:-1].encode()
            needles[f"value {i}, ASCII-escaped"] = json.dumps(v, ensure_ascii=True)[1:-1].encode()
        needles["the nonce in every value"] = nonce.encode()
        for i, b in enumerate(blobs):
            needles[f"backup blob {i}"] = b[:64].encode()
        for i, t in enumerate(tokens):
            needles[f"token {i}"] = t.encode()
            needles[f"token {i} signature"] = t.rsplit(".", 1)[1].encode()
        needles["the truncated admin token"] = admin[:-4].encode()
        haystacks = {}
        for path in glob.glob(os.path.join(audit_dir(srv), "*")):
            with open(path, "rb") as f:
                haystacks[path] = f.read()
        for path in srv.log_paths:
            with open(path, "rb") as f:
                haystacks[path] = f.read()
        self.assertTrue(any(os.path.basename(p).startswith("audit-") for p in haystacks))
        self.assertIn(b"scan-3", b"".join(haystacks.values()), "the records are there")
        for path, data in haystacks.items():
            for what, needle in needles.items():
                self.assertNotIn(needle, data, f"{what} appears in {path}")
        srv.start()


class AuditOffTests(ServerTestCase):
    """--audit off: no audit files, and the query API says the log is off."""

    SERVER_ARGS = ("--audit", "off")

    def test_no_log_and_the_api_says_so(self):
        srv = self.srv
        r = srv.kv("PUT", "/secrets/off", {"value": "x"})
        self.assertEqual(r.status, 200)
        audit_dir = os.path.join(srv.data_dir, "audit")
        self.assertFalse(os.path.exists(audit_dir) and os.listdir(audit_dir))
        r = srv.request("GET", "/coffer/v1/audit", host="localhost",
                        token=srv.token(srv.mgmt_resource))
        self.assertErrorBody(r, 404, "AuditDisabled")


class AuditChainTests(AuditTestCase):
    """Small files: rotation, verify, and tampering found in copies of the log."""

    SERVER_ARGS = ("--audit-max-file-bytes", "20000")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fill(150)

    @classmethod
    def fill(cls, n):
        """n requests, writes and reads, on one keep-alive connection."""
        conn = cls.srv.connection()
        hdrs = {"Authorization": "Bearer " + cls.srv.token(cls.srv.vault_resource)}
        try:
            for i in range(n):
                if i % 2 == 0:
                    r = cls.srv.send(conn, "PUT", f"/secrets/chain-{i % 7}?api-version={KV_API}",
                                     {"value": f"v{i}"}, hdrs)
                else:
                    r = cls.srv.send(conn, "GET", f"/secrets/chain-{i % 7}?api-version={KV_API}",
                                     None, hdrs)
                if r.status not in (200, 404):
                    raise AssertionError(f"fill request {i}: {r!r}")
        finally:
            conn.close()

    def verify(self, data_dir, expect_rc=None):
        rc, out, err = self.run_coffer("audit", "verify", "--data-dir", data_dir, "--json")
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, f"verify {data_dir}\nstdout: {out}\nstderr: {err}")
        report = json.loads(out)
        self.assertEqual(report["ok"], rc == 0, out)
        return report

    def test_files_rotate_and_the_chain_runs_across_them(self):
        directory = audit_dir(self.srv)
        self.fill(20)
        files = audit_files(directory)
        self.assertGreaterEqual(len(files), 4, files)
        lines = raw_lines(directory)
        seqs = []
        prev_hash = "0" * 64
        for name, line_no, line in lines:
            rec = json.loads(line)
            seqs.append(rec["seq"])
            self.assertEqual(rec["prev"], prev_hash, f"{name} line {line_no}")
            prev_hash = sha256_hex(line)
            if line_no == 1:
                self.assertEqual(int(AUDIT_FILE.match(name).group(1)), rec["seq"], name)
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "seq continuous across files")
        for name in files[:-1]:
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
            self.assertLessEqual(len(data), 20000, name)
            last = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])
            self.assertEqual(last["category"], "CofferAuditCheckpoint",
                             f"{name} does not end with a checkpoint")
            cp = last["checkpoint"]
            self.assertEqual((cp["seq"], cp["hash"]), (last["seq"] - 1, last["prev"]))
        self.assertEqual(os.stat(directory).st_mode & 0o777, 0o700)
        for name in files + ["head", "checkpoint.key"]:
            self.assertEqual(os.stat(os.path.join(directory, name)).st_mode & 0o777, 0o600, name)
        # verify works on the live log, while requests are being written.
        writer = threading.Thread(target=self.fill, args=(40,))
        writer.start()
        try:
            report = self.verify(self.srv.data_dir, expect_rc=0)
        finally:
            writer.join()
        self.assertEqual(report["problems"], [])
        self.assertEqual(report["firstSeq"], 1)
        self.assertGreaterEqual(report["checkpoints"], len(files) - 1)
        report = self.verify(self.srv.data_dir, expect_rc=0)
        self.assertGreater(report["records"], 150)

    def test_verify_finds_each_kind_of_tampering_in_a_copy(self):
        self.srv.stop()
        try:
            root = tempfile.mkdtemp(prefix="coffer-audit-tamper-")
            self.addCleanup(shutil.rmtree, root, True)
            pristine = os.path.join(root, "pristine")
            shutil.copytree(audit_dir(self.srv), os.path.join(pristine, "audit"))
        finally:
            self.srv.start()

        # The intact copy: OK, text and JSON.
        report = self.verify(pristine, expect_rc=0)
        self.assertEqual((report["problems"], report["firstSeq"]), ([], 1))
        rc, out, err = self.run_coffer("audit", "verify", "--data-dir", pristine)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"(?m)^OK: \d+ records \(seq 1-\d+\), \d+ checkpoints$")
        self.assertNotIn("TAMPERED", out)

        files = audit_files(os.path.join(pristine, "audit"))
        self.assertGreaterEqual(len(files), 4, files)
        middle = files[len(files) // 2]
        newest = files[-1]

        def lines_of(d, name):
            with open(os.path.join(d, "audit", name), "rb") as f:
                return f.read().split(b"\n")[:-1]

        def write_lines(d, name, lines, tail=b"\n"):
            with open(os.path.join(d, "audit", name), "wb") as f:
                f.write(b"\n".join(lines) + (tail if lines else b""))

        def seq_of(line):
            return json.loads(line)["seq"]

        def copy(label):
            d = os.path.join(root, label)
            shutil.copytree(os.path.join(pristine, "audit"), os.path.join(d, "audit"))
            return d

        def record_index(lines, start):
            """Index of the first AuditEvent line at or after start."""
            for i in range(start, len(lines)):
                if json.loads(lines[i])["category"] == "AuditEvent":
                    return i
            raise AssertionError("no record line")

        cases = []

        # 1. An edited field.
        d = copy("edited")
        lines = lines_of(d, middle)
        i = record_index(lines, 3)
        rec = json.loads(lines[i])
        self.assertIn('"resultSignature":"OK"', lines[i].decode())
        lines[i] = lines[i].replace(b'"resultSignature":"OK"', b'"resultSignature":"Ok"')
        write_lines(d, middle, lines)
        cases.append(("edited record", d, middle, rec["seq"], i + 1, "altered"))

        # 2. A deleted line: reported where the gap is, with the first missing seq.
        d = copy("deleted")
        lines = lines_of(d, middle)
        i = record_index(lines, 4)
        gone = seq_of(lines[i])
        del lines[i]
        write_lines(d, middle, lines)
        cases.append(("deleted record", d, middle, gone, i + 1, "missing"))

        # 3. Two lines swapped: the late one is named.
        d = copy("swapped")
        lines = lines_of(d, middle)
        i = record_index(lines, 5)
        first = seq_of(lines[i])
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        write_lines(d, middle, lines)
        cases.append(("swapped records", d, middle, first, i + 2, "out of order"))

        # 4. The tail cut off (whole lines).
        d = copy("truncated")
        lines = lines_of(d, newest)
        self.assertGreaterEqual(len(lines), 3)
        kept = lines[:-2]
        write_lines(d, newest, kept)
        cases.append(("truncated tail", d, newest, seq_of(kept[-1]) + 1, len(kept) + 1,
                      "truncated"))

        # 5. The newest file cut in the middle of its last line.
        d = copy("cut-newest")
        path = os.path.join(d, "audit", newest)
        with open(path, "rb") as f:
            data = f.read()
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        last_seq = seq_of(data[last_start:].rstrip(b"\n"))
        with open(path, "r+b") as f:
            f.truncate(last_start + (len(data) - last_start) // 2)
        complete = data[:last_start].count(b"\n")
        cases.append(("newest file cut mid-line", d, newest, last_seq, complete + 1,
                      "truncated"))

        # 6. An older file cut in the middle of a line.
        d = copy("cut-middle")
        path = os.path.join(d, "audit", middle)
        with open(path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")[:-1]
        cut_line = len(lines) // 2
        offset = sum(len(x) + 1 for x in lines[:cut_line]) + len(lines[cut_line]) // 2
        with open(path, "r+b") as f:
            f.truncate(offset)
        cases.append(("older file cut mid-line", d, middle, seq_of(lines[cut_line]), cut_line + 1,
                      "incomplete line"))

        # 7. The oldest file removed.
        d = copy("oldest-removed")
        os.unlink(os.path.join(d, "audit", files[0]))
        cases.append(("oldest file removed", d, files[1], 1, 1, "removed"))

        # 8. A checkpoint with another (well-formed) signature.
        d = copy("forged-checkpoint")
        lines = lines_of(d, middle)
        cp_index = max(i for i, line in enumerate(lines)
                       if json.loads(line)["category"] == "CofferAuditCheckpoint")
        cp = json.loads(lines[cp_index])
        sig = cp["checkpoint"]["signature"]
        forged_sig = base64.b64encode(os.urandom(64)).decode()
        self.assertEqual(len(forged_sig), len(sig))
        lines[cp_index] = lines[cp_index].replace(sig.encode(), forged_sig.encode())
        write_lines(d, middle, lines)
        cases.append(("forged checkpoint signature", d, middle, cp["seq"], cp_index + 1,
                      "signature"))

        # 9. An edit with every later prev recomputed: the next checkpoint's signed hash
        #    no longer matches the chain.
        d = copy("edited-and-rehashed")
        chain = [(name, lines_of(d, name)) for name in files]
        fi = files.index(middle)
        i = record_index(chain[fi][1], 3)
        edited_seq = seq_of(chain[fi][1][i])
        chain[fi][1][i] = chain[fi][1][i].replace(b'"resultType":"Success"',
                                                  b'"resultType":"Failure"')
        self.assertIn(b'"resultType":"Failure"', chain[fi][1][i])
        prev = sha256_hex(chain[fi][1][i])
        first_cp = None
        for k in range(fi, len(chain)):
            name, lines = chain[k]
            for j in range(i + 1 if k == fi else 0, len(lines)):
                old = json.loads(lines[j])["prev"]
                lines[j] = lines[j].replace(f'"prev":"{old}"'.encode(),
                                            f'"prev":"{prev}"'.encode())
                prev = sha256_hex(lines[j])
                if first_cp is None and b"CofferAuditCheckpoint" in lines[j]:
                    first_cp = (name, j + 1, seq_of(lines[j]))
            write_lines(d, name, lines)
        self.assertIsNotNone(first_cp)
        self.assertGreater(first_cp[2], edited_seq)
        cases.append(("edited and rehashed", d, first_cp[0], first_cp[2], first_cp[1],
                      "checkpoint"))

        for label, d, want_file, want_seq, want_line, word in cases:
            with self.subTest(label):
                report = self.verify(d, expect_rc=1)
                problems = report["problems"]
                self.assertTrue(problems, f"{label}: {report}")
                named = [p for p in problems if (p["file"], p["line"], p["seq"]) ==
                         (want_file, want_line, want_seq) and word in p["problem"]]
                self.assertTrue(named, f"{label}: expected a problem '...{word}...' at "
                                       f"{want_file} line {want_line} seq {want_seq}; "
                                       f"got {problems}")
                for p in problems:
                    self.assertTrue(p["problem"], p)
                # The text form names the same place.
                rc, out, _ = self.run_coffer("audit", "verify", "--data-dir", d)
                self.assertEqual(rc, 1, out)
                p = named[0]
                self.assertIn(f"TAMPERED: {p['file']} line {p['line']} (seq {p['seq']}): "
                              f"{p['problem']}", out)
                self.assertIn("FAILED", out)
        # The pristine copy is still fine: the cases worked on copies.
        self.verify(pristine, expect_rc=0)
        # Checked against another key, no checkpoint holds.
        other = os.path.join(root, "other")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", other + ".pem"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", other + ".pem", "-pubout", "-out",
                        other + ".pub"], check=True, capture_output=True)
        rc, out, err = self.run_coffer("audit", "verify", "--data-dir", pristine,
                                       "--public-key", other + ".pub", "--json")
        self.assertEqual(rc, 1, out + err)
        problems = json.loads(out)["problems"]
        self.assertTrue(problems)
        checkpoints = [json.loads(line)["seq"] for _, _, line in
                       raw_lines(os.path.join(pristine, "audit"))
                       if b"CofferAuditCheckpoint" in line]
        self.assertLessEqual(set(checkpoints), {p["seq"] for p in problems},
                             "every checkpoint is reported")


class AuditDurabilityTests(AuditTestCase):
    """Acknowledged writes and earlier reads have their records after a SIGKILL."""

    WRITERS = 5
    WRITES_EACH = 10

    def test_records_survive_sigkill_after_a_burst_of_writes(self):
        srv = self.srv
        token = srv.token(srv.vault_resource)
        read_ids = []
        conn = srv.connection()
        try:
            for i in range(10):
                corr = new_correlation(f"read-{i}")
                r = srv.send(conn, "GET", f"/secrets/nope-{i}?api-version={KV_API}", None,
                             {"Authorization": "Bearer " + token,
                              "x-ms-client-request-id": corr})
                self.assertEqual(r.status, 404, r)
                read_ids.append(corr)
        finally:
            conn.close()
        # Reads are written behind (within a second): these are in the file before the burst.
        ids = set(read_ids)
        self.assertEqual(len(wait_for_records(srv, lambda r: r.get("correlationId") in ids,
                                              count=len(ids))), len(ids))

        acked = []
        lock = threading.Lock()
        errors = []

        def writer(w):
            c = srv.connection()
            try:
                for i in range(self.WRITES_EACH):
                    corr = new_correlation(f"write-{w}-{i}")
                    r = srv.send(c, "PUT", f"/secrets/burst-{w}-{i}?api-version={KV_API}",
                                 {"value": f"burst {w} {i}"},
                                 {"Authorization": "Bearer " + token,
                                  "x-ms-client-request-id": corr})
                    if r.status != 200:
                        errors.append(r)
                        return
                    with lock:
                        acked.append(corr)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                c.close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(self.WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        srv.kill()
        self.assertEqual(errors, [])
        self.assertEqual(len(acked), self.WRITERS * self.WRITES_EACH)

        # Straight from the files the killed process left.
        recs = read_records(audit_dir(srv))
        by_corr = {}
        for r in recs:
            by_corr.setdefault(r["correlationId"], []).append(r)
        for corr in acked:
            got = by_corr.get(corr, [])
            self.assertEqual(len(got), 1, f"acknowledged write {corr}: {got}")
            self.assertEqual((got[0]["operationName"], got[0]["resultType"],
                              got[0]["properties"]["httpStatusCode"]), ("SecretSet", "Success",
                                                                        200))
        for corr in read_ids:
            got = by_corr.get(corr, [])
            self.assertEqual(len(got), 1, f"read {corr}: {got}")
            self.assertEqual(got[0]["operationName"], "SecretGet")

        rc, out, err = self.run_coffer("audit", "verify", "--data-dir", srv.data_dir, "--json")
        self.assertEqual(rc, 0, f"after SIGKILL: {out}{err}")
        srv.start()
        rc, out, err = self.run_coffer("audit", "verify", "--data-dir", srv.data_dir, "--json")
        self.assertEqual(rc, 0, f"after the restart: {out}{err}")
        self.assertEqual(json.loads(out)["problems"], [])
        # The restarted server goes on with the same chain.
        r = srv.kv("PUT", "/secrets/after", {"value": "after"},
                   headers={"x-ms-client-request-id": "after-restart"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(by_correlation(srv, "after-restart")), 1)
        srv.stop()
        rc, out, err = self.run_coffer("audit", "verify", "--data-dir", srv.data_dir, "--json")
        self.assertEqual(rc, 0, f"after the stop: {out}{err}")
        srv.start()


class AuditQueryTests(AuditTestCase):
    """coffer audit query and GET /coffer/v1/audit."""

    RG = "rg-audit-query"
    V1, V2 = "auditq1", "auditq2"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        admin_entry = cls.policy_entry(cls.admin_oid, ["all"])
        cls.create_vault(cls.RG, cls.V1, False, [admin_entry])
        cls.create_vault(cls.RG, cls.V2, False, [admin_entry])
        cls.writer = cls.new_sp("audit-query-writer")   # set on V1 by an access policy
        cls.data_only = cls.new_sp("audit-query-data")  # a data role only, no logs/read
        # Reader at V2's scope; its secret lets the CLI run as it.
        sp = cls.coffer_json("ad", "sp", "create-for-rbac", "--name", "audit-query-reader")
        cls.reader_secret = sp["password"]
        tokens = [cls.srv.token_response(res, sp["appId"], sp["password"]).json()["access_token"]
                  for res in (cls.srv.vault_resource, cls.srv.mgmt_resource)]
        cls.reader = Principal("audit-query-reader", "ServicePrincipal",
                               jwt_parts(tokens[0])[1]["oid"], sp["appId"], *tokens)
        r = cls.srv.arm("PUT", f"/resourceGroups/{cls.RG}/providers/Microsoft.KeyVault/vaults/"
                               f"{cls.V1}/accessPolicies/add",
                        {"properties": {"accessPolicies": [
                            cls.policy_entry(cls.writer.oid, ["set", "get"]),
                            cls.policy_entry(cls.data_only.oid, ["get", "list"])]}},
                        api_version=VAULT_API)
        if r.status != 200:
            raise AssertionError(r)

    def api(self, token=None, **query):
        return self.srv.request("GET", "/coffer/v1/audit?" + urllib.parse.urlencode(query),
                                host="localhost",
                                token=token or self.srv.token(self.srv.mgmt_resource))

    def query_json(self, *args):
        rc, out, err = self.run_coffer("audit", "query", *args, "-o", "json")
        self.assertEqual(rc, 0, f"audit query {args}: {out}{err}")
        recs = json.loads(out)
        self.assertIsInstance(recs, list)
        for r in recs:
            self.assertNotEqual(r.get("category"), "CofferAuditCheckpoint")
        return recs

    def flush(self):
        """Waits until the records of every request made so far are in the files (the log is
        written in order, so a new read's record appearing means the earlier ones are there)."""
        r, corr, _, _ = self.kv_call("GET", "/secrets/flush-marker", vault=self.V1,
                                     label="flush")
        self.assertEqual(len(by_correlation(self.srv, corr)), 1)

    def test_filters(self):
        ids = {"V1 set": [], "V2 set": [], "V1 get": [], "writer": [], "404": []}
        for i in range(3):
            r, corr, _, _ = self.kv_call("PUT", f"/secrets/q-{i}", {"value": "q"}, vault=self.V1,
                                         label="v1set")
            self.assertEqual(r.status, 200, r)
            ids["V1 set"].append(corr)
            r, corr, _, _ = self.kv_call("PUT", f"/secrets/q-{i}", {"value": "q"}, vault=self.V2,
                                         label="v2set")
            self.assertEqual(r.status, 200, r)
            ids["V2 set"].append(corr)
            r, corr, _, _ = self.kv_call("GET", f"/secrets/q-{i}", vault=self.V1, label="v1get")
            self.assertEqual(r.status, 200, r)
            ids["V1 get"].append(corr)
        r, corr, _, _ = self.kv_call("PUT", "/secrets/by-writer", {"value": "w"}, vault=self.V1,
                                     token=self.writer.vault_token, label="writer")
        self.assertEqual(r.status, 200, r)
        ids["writer"].append(corr)
        for i in range(2):
            r, corr, _, _ = self.kv_call("GET", f"/secrets/missing-{i}", vault=self.V1,
                                         label="missing")
            self.assertEqual(r.status, 404, r)
            ids["404"].append(corr)
        self.flush()

        def corrs(recs):
            return {r["correlationId"] for r in recs}

        # vault + operation
        recs = self.query_json("--vault-name", self.V1, "--operation", "SecretSet",
                               "--top", "1000")
        self.assertTrue(recs)
        for r in recs:
            self.assertTrue(r["resourceId"].endswith(f"/VAULTS/{self.V1.upper()}"), r)
            self.assertEqual(r["operationName"], "SecretSet")
        self.assertLessEqual(set(ids["V1 set"] + ids["writer"]), corrs(recs))
        self.assertFalse(set(ids["V2 set"]) & corrs(recs))
        # Case-insensitive vault and operation.
        self.assertEqual(corrs(self.query_json("--vault-name", self.V1.upper(), "--operation",
                                               "secretset", "--top", "1000")), corrs(recs))
        # caller: by object id and by app id
        for who in (self.writer.oid, self.writer.app_id):
            recs = self.query_json("--caller", who, "--top", "1000")
            self.assertEqual(corrs(recs) & set(sum(ids.values(), [])), set(ids["writer"]), who)
            for r in recs:
                self.assertEqual(r["identity"]["claim"]["oid"], self.writer.oid)
        # result
        recs = self.query_json("--vault-name", self.V1, "--result", "Failure", "--top", "1000")
        self.assertLessEqual(set(ids["404"]), corrs(recs))
        self.assertTrue(all(r["resultType"] == "Failure" for r in recs))
        recs = self.query_json("--vault-name", self.V1, "--result", "404", "--top", "1000")
        self.assertLessEqual(set(ids["404"]), corrs(recs))
        self.assertTrue(all(r["properties"]["httpStatusCode"] == 404 for r in recs))
        recs = self.query_json("--vault-name", self.V1, "--result", "Success", "--top", "1000")
        self.assertLessEqual(set(ids["V1 get"] + ids["V1 set"]), corrs(recs))
        self.assertFalse(set(ids["404"]) & corrs(recs))
        # top: the newest n, oldest first
        everything = self.query_json("--vault-name", self.V1, "--top", "1000")
        last3 = self.query_json("--vault-name", self.V1, "--top", "3")
        self.assertEqual(len(last3), 3)
        self.assertEqual([r["seq"] for r in last3], [r["seq"] for r in everything[-3:]])
        self.assertEqual([r["seq"] for r in everything], sorted(r["seq"] for r in everything))
        # The HTTP API answers the same.
        r = self.api(vault=self.V1, operation="SecretSet", top="1000")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(corrs(r.json()["value"]),
                         corrs(self.query_json("--vault-name", self.V1, "--operation",
                                               "SecretSet", "--top", "1000")))

    def test_time_range(self):
        def batch(label):
            out = []
            for i in range(2):
                r, corr, _, _ = self.kv_call("PUT", f"/secrets/t-{label}", {"value": label},
                                             vault=self.V2, label="t" + label)
                self.assertEqual(r.status, 200, r)
                out.append(corr)
            return out

        before = batch("a")
        t1 = wait_next_second()
        inside = batch("b")
        t2 = wait_next_second()
        after = batch("c")
        self.flush()
        recs = self.query_json("--vault-name", self.V2, "--from", iso_seconds(t1), "--to",
                               iso_seconds(t2), "--top", "1000")
        got = {r["correlationId"] for r in recs}
        self.assertEqual(got & set(before + inside + after), set(inside))
        for r in recs:
            self.assertGreaterEqual(r["time"], iso_seconds(t1)[:-1])
            self.assertLess(r["time"], iso_seconds(t2)[:-1])
        recs = self.query_json("--vault-name", self.V2, "--from", iso_seconds(t2), "--top",
                               "1000")
        self.assertEqual({r["correlationId"] for r in recs} & set(before + inside + after),
                         set(after))
        recs = self.query_json("--vault-name", self.V2, "--to", iso_seconds(t1), "--top", "1000")
        self.assertEqual({r["correlationId"] for r in recs} & set(before + inside + after),
                         set(before))
        # A record's own time (seven fractional digits) is a valid bound, to the microsecond:
        # from the second "inside" record on, only it and the "after" ones.
        second = next(r for r in self.query_json("--vault-name", self.V2, "--top", "1000")
                      if r["correlationId"] == inside[1])
        recs = self.query_json("--vault-name", self.V2, "--from", second["time"], "--top", "1000")
        self.assertEqual({r["correlationId"] for r in recs} & set(before + inside + after),
                         set(inside[1:] + after))

    def test_table_output(self):
        for i in range(2):
            r, _, _, _ = self.kv_call("PUT", f"/secrets/tbl-{i}", {"value": "t"}, vault=self.V1)
            self.assertEqual(r.status, 200, r)
        self.flush()
        rc, out, err = self.run_coffer("audit", "query", "--vault-name", self.V1, "--operation",
                                       "SecretSet", "--top", "2")
        self.assertEqual(rc, 0, out + err)
        lines = out.rstrip("\n").split("\n")
        self.assertEqual(len(lines), 3, out)
        self.assertEqual(lines[0].split(), ["time", "server", "operation", "result", "status",
                                            "caller", "(oid)", "resource"])
        server = os.path.basename(audit_dir(self.srv))
        for line in lines[1:]:
            cells = line.split()
            self.assertRegex(cells[0], TIME_RE)
            self.assertEqual(cells[1:7], [server, "SecretSet", "Success", "200", self.admin_oid,
                                          self.V1.upper()], line)

    def test_who_may_read_which_records(self):
        # The data-only principal has records of its own, and still reads none.
        r, _, _, _ = self.kv_call("GET", "/secrets", vault=self.V1,
                                  token=self.data_only.vault_token)
        self.assertEqual(r.status, 200, r)
        r, _, _, _ = self.kv_call("PUT", "/secrets/r", {"value": "r"}, vault=self.V2)
        self.assertEqual(r.status, 200, r)
        self.flush()
        r = self.api(token=self.data_only.mgmt_token, top="1000")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"value": []})
        r = self.api(token=self.data_only.mgmt_token, caller=self.data_only.oid)
        self.assertEqual(r.json(), {"value": []})

        v2_id = self.vault_arm_id(self.RG, self.V2)
        self.assign_ok(v2_id, ROLES["Reader"], self.reader.oid)
        r = self.api(token=self.reader.mgmt_token, top="1000")
        self.assertEqual(r.status, 200, r)
        recs = r.json()["value"]
        self.assertTrue(recs, "a Reader at the vault reads its records")
        for rec in recs:
            self.assertTrue(rec["resourceId"] == v2_id.upper() or
                            rec["resourceId"].startswith(v2_id.upper() + "/"), rec["resourceId"])
        self.assertIn("SecretSet", {rec["operationName"] for rec in recs})
        r = self.api(token=self.reader.mgmt_token, vault=self.V1)
        self.assertEqual(r.json(), {"value": []})
        # The CLI as that principal.
        env = self.coffer_env()
        env.update(AZURE_CLIENT_ID=self.reader.app_id, AZURE_CLIENT_SECRET=self.reader_secret)
        p = subprocess.run([coffer_binary(), "audit", "query", "--top", "1000", "-o", "json"],
                           env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        cli_recs = json.loads(p.stdout)
        self.assertTrue(cli_recs)
        self.assertLessEqual({rec["seq"] for rec in cli_recs}, {rec["seq"] for rec in recs},
                             "the CLI as the Reader reads what the API gives the Reader")
        # The administrator (Owner at the subscription) reads both vaults.
        r = self.api(top="1000")
        vaults = {rec["resourceId"].rsplit("/", 1)[-1] for rec in r.json()["value"]}
        self.assertLessEqual({self.V1.upper(), self.V2.upper()}, vaults)

    def test_bad_parameters_are_refused(self):
        for query in ({"from": "yesterday"}, {"to": "2026-13-45T00:00:00Z"},
                      {"from": "2026-01-01T00:00:00+02:00"}, {"top": "0"}, {"top": "1001"},
                      {"top": "ten"}, {"top": "-1"}, {"top": "5x"}):
            with self.subTest(query=query):
                r = self.api(**query)
                body = self.assertErrorBody(r, 400, "BadParameter", str(query))
                self.assertTrue(body["error"]["message"])
        r = self.api(top="1000")
        self.assertEqual(r.status, 200, r)
        r = self.srv.request("POST", "/coffer/v1/audit", host="localhost",
                             token=self.srv.token(self.srv.mgmt_resource))
        self.assertEqual(r.status, 405, r)
        r = self.srv.request("GET", "/coffer/v1/audit", host="localhost",
                             token=self.srv.token(self.srv.vault_resource))
        self.assertEqual(r.status, 401, r)
        rc, out, err = self.run_coffer("audit", "query", "--from", "yesterday")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("yesterday", err)


# ---- the end of the log, recovery records, the signing key (issue 18 §3) --------------------

CHECKPOINT = "CofferAuditCheckpoint"
FOREIGN_CHECKPOINT = "the checkpoint is signed by another key"


def coffer(*args):
    """Runs `coffer <args>` with no credentials; returns (rc, stdout, stderr)."""
    p = subprocess.run([coffer_binary()] + [str(a) for a in args], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def verify_json(data_dir, *extra):
    """`coffer audit verify --json` on a data directory: (rc, report, stderr)."""
    rc, out, err = coffer("audit", "verify", "--data-dir", data_dir, "--json", *extra)
    try:
        report = json.loads(out)
    except ValueError as e:
        raise AssertionError(f"verify printed no report ({e}): {out}{err}") from e
    if report["ok"] != (rc == 0):
        raise AssertionError(f"rc {rc} but ok={report['ok']}: {out}{err}")
    return rc, report, err


def problems_with(report, word):
    return [p for p in report["problems"] if word in p["problem"]]


def copy_audit(src_data_dir, root, label):
    """A copy of a data directory's audit log, as the data directory root/label, in the layout
    of a log from before server ids (the log in <data-dir>/audit itself), which verify reads."""
    d = os.path.join(root, label)
    server_id = os.path.join(src_data_dir, "server-id")
    src = (server_audit_dir(src_data_dir) if os.path.exists(server_id)
           else os.path.join(src_data_dir, "audit"))  # a copy made here
    shutil.copytree(src, os.path.join(d, "audit"))
    return d


def file_lines(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def put_lines(path, lines):
    with open(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))


def rewrite_after(directory, seq, edit):
    """Applies edit(line) to every record from `seq` on and recomputes every later prev: a
    rewrite by someone without the key."""
    prev = None
    for name in audit_files(directory):
        path = os.path.join(directory, name)
        out = []
        for line in file_lines(path):
            rec = json.loads(line)
            if rec["seq"] >= seq:
                if rec["category"] != CHECKPOINT:
                    line = edit(line)
                line = line.replace(f'"prev":"{rec["prev"]}"'.encode(), f'"prev":"{prev}"'.encode())
            prev = sha256_hex(line)
            out.append(line)
        put_lines(path, out)


def last_checkpoint_seq(directory):
    return max(json.loads(line)["seq"] for _, _, line in raw_lines(directory)
               if json.loads(line)["category"] == CHECKPOINT)


class AuditEndOfLogTests(ServerTestCase):
    """`coffer audit verify` fails when the head file is deleted or garbled, and when records
    after the newest checkpoint are cut or rewritten; `--without-head` accepts a lost head, and
    says so, but still not records that nothing vouches for."""

    def write_some(self, label, n=5):
        for i in range(n):
            r = self.srv.kv("PUT", f"/secrets/{label}-{i}", {"value": f"{label} {i}"})
            self.assertEqual(r.status, 200, r)

    def test_a_lost_head_and_a_cut_or_rewritten_tail(self):
        srv = self.srv
        root = tempfile.mkdtemp(prefix="coffer-audit-end-")
        self.addCleanup(shutil.rmtree, root, True)
        # A log closed by a stop (it ends with a checkpoint), and one left by a SIGKILL (records
        # after its newest checkpoint, vouched for by the head alone).
        self.write_some("closed")
        srv.stop()
        closed = copy_audit(srv.data_dir, root, "closed")
        srv.start()
        self.write_some("killed")
        srv.kill()
        killed = copy_audit(srv.data_dir, root, "killed")
        srv.start()
        for d in (closed, killed):
            rc, report, _ = verify_json(d)
            self.assertEqual((rc, report["problems"]), (0, []), d)
        killed_audit = os.path.join(killed, "audit")
        after = last_checkpoint_seq(killed_audit) + 1
        last = raw_lines(killed_audit)[-1]
        self.assertGreaterEqual(json.loads(last[2])["seq"] - after, 3, "records after it")

        # 1. The head deleted, or garbled.
        for label, damage in (("deleted", None), ("garbled", b"x" * 256)):
            with self.subTest(f"head {label}"):
                d = copy_audit(closed, root, f"head-{label}")
                head = os.path.join(d, "audit", "head")
                os.unlink(head)
                if damage is not None:
                    with open(head, "wb") as f:
                        f.write(damage)
                rc, report, _ = verify_json(d)
                self.assertEqual(rc, 1)
                word = "missing" if damage is None else "unreadable"
                self.assertTrue([p for p in problems_with(report, word) if p["file"] == "head"],
                                report)
                rc, out, err = coffer("audit", "verify", "--data-dir", d)
                self.assertIn(f"TAMPERED: head line 0 (seq 0): the head file is {word}", out)
                # Asked for, the rest is checked and the output says what was not.
                rc, report, err = verify_json(d, "--without-head")
                self.assertEqual((rc, report["problems"]), (0, []), report)
                self.assertTrue(report["withoutHead"])
                self.assertIn("WARNING", err)
                self.assertTrue([n for n in report["notes"] if "WITHOUT THE HEAD" in n], report)
                rc, out, err = coffer("audit", "verify", "--data-dir", d, "--without-head")
                self.assertEqual(rc, 0, out + err)
                self.assertRegex(out, r"(?m)^OK: .*, WITHOUT THE HEAD$")

        # 2. The head deleted and the last two records cut.
        d = copy_audit(killed, root, "head-deleted-tail-cut")
        os.unlink(os.path.join(d, "audit", "head"))
        newest = os.path.join(d, "audit", audit_files(os.path.join(d, "audit"))[-1])
        lines = file_lines(newest)
        put_lines(newest, lines[:-2])
        for extra in ((), ("--without-head",)):
            with self.subTest("head deleted, tail cut", extra=extra):
                rc, report, _ = verify_json(d, *extra)
                self.assertEqual(rc, 1, report)
                found = problems_with(report, "vouched for by neither the head nor a checkpoint")
                self.assertEqual([p["seq"] for p in found], [after], report)

        # 3. Every record after the newest checkpoint rewritten, prev recomputed.
        def edit(line):
            self.assertIn(b'"operationName":"SecretSet"', line)
            return line.replace(b'"operationName":"SecretSet"', b'"operationName":"SecretGet"')

        for head in ("kept", "deleted", "garbled"):
            d = copy_audit(killed, root, f"rewritten-head-{head}")
            rewrite_after(os.path.join(d, "audit"), after, edit)
            head_path = os.path.join(d, "audit", "head")
            if head != "kept":
                os.unlink(head_path)
            if head == "garbled":
                with open(head_path, "wb") as f:
                    f.write(b"{" * 256)
            for extra in ((), ("--without-head",)):
                with self.subTest("tail rewritten", head=head, extra=extra):
                    rc, report, _ = verify_json(d, *extra)
                    self.assertEqual(rc, 1, report)
                    if head == "kept":
                        self.assertTrue(problems_with(report, "differs from the one the head"),
                                        report)
                    else:
                        found = problems_with(report, "vouched for by neither")
                        self.assertEqual([p["seq"] for p in found], [after], report)


class AuditRecoveryTests(ServerTestCase):
    """Old log files deleted while the server is down: the restart writes a recovery record,
    verify fails until `coffer audit acknowledge` (with the server stopped) appends a signed
    acknowledgement to the chain."""

    SERVER_ARGS = ("--audit-max-file-bytes", "20000")

    def test_deleted_files_are_recorded_at_the_restart_until_acknowledged(self):
        srv = self.srv
        directory = audit_dir(srv)
        for i in range(60):
            r = srv.kv("PUT", f"/secrets/rec-{i % 5}", {"value": f"v{i}"})
            self.assertEqual(r.status, 200, r)
        srv.stop()
        files = audit_files(directory)
        self.assertGreaterEqual(len(files), 4, files)
        kept_from = int(AUDIT_FILE.match(files[2]).group(1))
        os.unlink(os.path.join(directory, files[0]))
        os.unlink(os.path.join(directory, files[1]))
        srv.start()

        recoveries = [json.loads(line) for _, _, line in raw_lines(directory)
                      if b"CofferAuditRecovery" in line]
        self.assertEqual(len(recoveries), 1, recoveries)
        recovery = recoveries[0]
        self.assertEqual(recovery["operationName"], "AuditLogRecovery")
        self.assertIn(f"records 1..{kept_from - 1} are missing: log files were removed other "
                      "than by retention", recovery["resultDescription"])
        self.assertIn("coffer audit verify fails until it is acknowledged", srv.stderr_text())
        rc, report, _ = verify_json(srv.data_dir)
        self.assertEqual(rc, 1, report)
        found = problems_with(report, "not acknowledged")
        self.assertEqual([p["seq"] for p in found], [recovery["seq"]], report)
        self.assertIn("removed other than by retention", found[0]["problem"])

        reason = "files removed by the backup job, ticket OPS-1234"
        # The log has one writer: not while the server holds it.
        rc, out, err = coffer("audit", "acknowledge", "--data-dir", srv.data_dir,
                              "--seq", recovery["seq"], "--reason", reason)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("is open in another process", err)
        srv.stop()
        rc, out, err = coffer("audit", "acknowledge", "--data-dir", srv.data_dir,
                              "--seq", recovery["seq"] - 1, "--reason", reason)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("is not a recovery record", err)
        rc, out, err = coffer("audit", "acknowledge", "--data-dir", srv.data_dir,
                              "--seq", recovery["seq"], "--reason", reason)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"acknowledged seq {recovery['seq']}", out)

        lines = raw_lines(directory)
        acks = [json.loads(line) for _, _, line in lines if b"CofferAuditAcknowledgement" in line]
        self.assertEqual(len(acks), 1, acks)
        ack = acks[0]
        recovery_line = next(line for _, _, line in lines
                             if json.loads(line)["seq"] == recovery["seq"])
        self.assertEqual((ack["operationName"], ack["resultDescription"]),
                         ("AuditLogAcknowledge", reason))
        self.assertEqual(ack["properties"]["acknowledgedSeq"], str(recovery["seq"]))
        self.assertEqual(ack["properties"]["acknowledgedHash"], sha256_hex(recovery_line))
        self.assertRegex(ack["properties"]["operator"], r"^uid=\d+")
        # Chained, and signed by the checkpoint written after it.
        self.assertEqual(json.loads(lines[-1][2])["category"], CHECKPOINT)
        self.assertEqual(json.loads(lines[-1][2])["seq"], ack["seq"] + 1)
        rc, report, _ = verify_json(srv.data_dir)
        self.assertEqual((rc, report["problems"]), (0, []), report)
        self.assertTrue([n for n in report["notes"]
                         if f"acknowledged at seq {ack['seq']}" in n and reason in n], report)
        srv.start()
        r = srv.kv("PUT", "/secrets/after-ack", {"value": "x"})
        self.assertEqual(r.status, 200, r)
        rc, report, _ = verify_json(srv.data_dir)
        self.assertEqual((rc, report["problems"]), (0, []), report)


def resign(directory, key):
    """Re-signs every checkpoint and the head of the log in `directory` with `key` (an
    Ed25519PrivateKey), recomputing the chain, and puts the key in the directory: what someone
    who can write the directory, but not read the real key, can do."""
    from cryptography.hazmat.primitives import serialization
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(raw).hexdigest()[:16]
    prev, last = "0" * 64, 0
    for name in audit_files(directory):
        path = os.path.join(directory, name)
        out = []
        for line in file_lines(path):
            rec = json.loads(line)
            if rec["category"] == CHECKPOINT:
                kept = rec["checkpoint"]["retainedFrom"]
                signed = f"coffer-audit-checkpoint-v1|{rec['seq'] - 1}|{prev}|{kept}".encode()
                sig = base64.b64encode(key.sign(signed)).decode()
                line = (f'{{"time":"{rec["time"]}","category":"{CHECKPOINT}","seq":{rec["seq"]},'
                        f'"prev":"{prev}","checkpoint":{{"seq":{rec["seq"] - 1},"hash":"{prev}",'
                        f'"retainedFrom":{kept},"keyId":"{key_id}","signature":"{sig}"}}}}'
                        ).encode()
            else:
                line = line.replace(f'"prev":"{rec["prev"]}"'.encode(), f'"prev":"{prev}"'.encode())
            prev, last = sha256_hex(line), rec["seq"]
            out.append(line)
        put_lines(path, out)
    sig = base64.b64encode(key.sign(f"coffer-audit-head-v1|{last}|{prev}".encode())).decode()
    head = f'{{"seq":{last},"hash":"{prev}","keyId":"{key_id}","signature":"{sig}"}}'
    with open(os.path.join(directory, "head"), "wb") as f:
        f.write(head.ljust(255).encode() + b"\n")
    with open(os.path.join(directory, "checkpoint.key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(os.path.join(directory, "checkpoint.key"), 0o600)
    with open(os.path.join(directory, "checkpoint.pub"), "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


class AuditSigningKeyTests(unittest.TestCase):
    """`coffer server --audit-signing-key PATH` keeps the checkpoint key out of the audit
    directory: a log re-signed with a key written into the directory fails `verify
    --public-key` with the server's public key, and the server, restarted, keeps its own key and
    records what it found. A key that is missing (for an existing log) or readable by others
    stops the server with a message that says so."""

    def test_a_key_outside_the_audit_directory(self):
        from cryptography.hazmat.primitives.asymmetric import ed25519
        keys = tempfile.mkdtemp(prefix="coffer-audit-keys-")
        self.addCleanup(shutil.rmtree, keys, True)
        os.chmod(keys, 0o700)
        key_path = os.path.join(keys, "audit-signing.key")
        srv = start_server(self, extra_args=["--audit-signing-key", key_path])
        for i in range(5):
            self.assertEqual(srv.kv("PUT", f"/secrets/k-{i}", {"value": "v"}).status, 200)
        directory = audit_dir(srv)
        self.assertEqual(os.stat(key_path).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(os.path.join(directory, "checkpoint.key")))
        self.assertTrue(os.path.exists(os.path.join(directory, "checkpoint.pub")))
        # The operator keeps a copy of the public key apart from the log.
        trusted = os.path.join(keys, "trusted.pub")
        subprocess.run(["openssl", "pkey", "-in", key_path, "-pubout", "-out", trusted],
                       check=True, capture_output=True)
        with open(trusted, "rb") as a, open(os.path.join(directory, "checkpoint.pub"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        srv.stop()
        rc, report, _ = verify_json(srv.data_dir, "--public-key", trusted)
        self.assertEqual((rc, report["problems"]), (0, []), report)

        resign(directory, ed25519.Ed25519PrivateKey.generate())
        # Consistent with the key now in the directory: that is all the directory can prove...
        rc, report, _ = verify_json(srv.data_dir)
        self.assertEqual(rc, 0, report)
        # ...and the server's public key shows every signature to be another key's.
        rc, report, _ = verify_json(srv.data_dir, "--public-key", trusted)
        self.assertEqual(rc, 1, report)
        checkpoints = [json.loads(line)["seq"] for _, _, line in raw_lines(directory)
                       if b'"category":"CofferAuditCheckpoint"' in line]
        self.assertTrue(checkpoints)
        signed_by_other = {p["seq"] for p in report["problems"]
                           if p["problem"].startswith(FOREIGN_CHECKPOINT)}
        self.assertEqual(signed_by_other, set(checkpoints), report)
        self.assertTrue([p for p in report["problems"] if p["file"] == "head"], report)

        # The restarted server signs with its own key, not the one in the directory, puts its
        # public key back and records the foreign head and checkpoints.
        srv.start()
        with open(trusted, "rb") as a, open(os.path.join(directory, "checkpoint.pub"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        recoveries = [json.loads(line) for _, _, line in raw_lines(directory)
                      if b"CofferAuditRecovery" in line]
        self.assertEqual(len(recoveries), 1)
        self.assertIn("the head file's signature did not verify",
                      recoveries[0]["resultDescription"])
        srv.stop()
        rc, report, _ = verify_json(srv.data_dir)
        self.assertEqual(rc, 1, report)
        self.assertEqual(signed_by_other, {p["seq"] for p in report["problems"]
                                           if p["problem"].startswith(FOREIGN_CHECKPOINT)})

        # A key readable by others, or missing while the log exists: the server does not start.
        os.chmod(key_path, 0o640)
        with self.assertRaises(RuntimeError) as ctx:
            srv.start()
        self.assertIn("is readable by group or others", str(ctx.exception))
        os.chmod(key_path, 0o600)
        os.rename(key_path, key_path + ".away")
        with self.assertRaises(RuntimeError) as ctx:
            srv.start()
        self.assertIn(f"the audit signing key {key_path} does not exist, but", str(ctx.exception))
        self.assertFalse(os.path.exists(key_path), "no new key was made")
        os.rename(key_path + ".away", key_path)
        srv.start()
        self.assertEqual(srv.kv("PUT", "/secrets/k-after", {"value": "v"}).status, 200)


class AuditServerIdTests(unittest.TestCase):
    """Each server's log is DATA_DIR/audit/<server id>; a log of the layout before server ids
    (DATA_DIR/audit itself) is moved there by the next start and continued, its chain unbroken;
    a hostile id is refused before anything is written (docs/audit.md, "Several servers")."""

    def test_a_log_of_the_old_layout_moves_to_the_servers_id_and_goes_on(self):
        srv = start_server(self)
        for i in range(3):
            self.assertEqual(srv.kv("PUT", f"/secrets/old-{i}", {"value": "v"}).status, 200)
        srv.stop()
        # The old layout: the log's files in DATA_DIR/audit, no server-id file.
        root = os.path.join(srv.data_dir, "audit")
        own = audit_dir(srv)
        first_id = os.path.basename(own)
        for name in os.listdir(own):
            os.rename(os.path.join(own, name), os.path.join(root, name))
        os.rmdir(own)
        os.unlink(os.path.join(srv.data_dir, "server-id"))
        rc, before, _ = verify_json(srv.data_dir)
        self.assertEqual((rc, before["problems"]), (0, []), before)
        self.assertEqual(before["servers"][0]["serverId"], "", before)

        srv.start(extra_args=["--server-id", "node-old"])
        self.assertEqual(srv.kv("PUT", "/secrets/new-0", {"value": "v"}).status, 200)
        self.assertEqual(sorted(os.listdir(root)), ["node-old"])
        with open(os.path.join(srv.data_dir, "server-id"), encoding="ascii") as f:
            self.assertEqual(f.read().strip(), "node-old")
        srv.stop()
        rc, after, _ = verify_json(srv.data_dir)
        self.assertEqual((rc, after["problems"]), (0, []), after)
        # This binary wrote the "old" records too, under the id it had then: verify notes them.
        self.assertEqual(len(after["notes"]), 1, after)
        self.assertIn("name another server than node-old", after["notes"][0])
        self.assertIn(f"names {first_id}", after["notes"][0])
        self.assertEqual([s["serverId"] for s in after["servers"]], ["node-old"])
        self.assertEqual(after["firstSeq"], 1)
        self.assertGreater(after["lastSeq"], before["lastSeq"])
        rc, out, err = coffer("audit", "query", "--data-dir", srv.data_dir, "--operation",
                              "SecretSet", "-o", "json")
        self.assertEqual(rc, 0, err)
        names = [r["properties"]["requestUri"].split("/secrets/")[1].split("?")[0]
                 for r in json.loads(out)]
        self.assertEqual(names, ["old-0", "old-1", "old-2", "new-0"])
        # Nothing was rewritten: each record still names the id it was written under (this
        # binary wrote the "old" ones too; records without the field are the unit tests').
        self.assertEqual([r["serverId"] for r in json.loads(out)], [first_id] * 3 + ["node-old"])

    def test_a_hostile_server_id_is_refused(self):
        for bad in ("../escape", "UPPER", "a.b", "audit", "x" * 64, "-a"):
            d = tempfile.mkdtemp(prefix="coffer-audit-id-")
            self.addCleanup(shutil.rmtree, d, True)
            rc, out, err = coffer("server", "--dev", "--data-dir", os.path.join(d, "data"),
                                  "--port", "0", "--server-id", bad)
            self.assertNotEqual(rc, 0, bad)
            self.assertIn("server id", err, bad)
            self.assertFalse(os.path.exists(os.path.join(d, "escape")), bad)
            # Refused before the data directory is touched.
            self.assertFalse(os.path.exists(os.path.join(d, "data", "tls")), (bad, err))
            self.assertFalse(os.path.exists(os.path.join(d, "data", "audit")), (bad, err))
