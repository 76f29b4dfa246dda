"""SecretHash, end to end against the real server (docs/secrets.md): POST
/secrets/{name}[/{version}]/hash answers HMAC-SHA256 of a version's value under the caller's key.

* The answer is Python's hmac.new(key, value, sha256) in base64url without padding, for the
  current version and for a named one, a UTF-8 value and a certificate's secret (whose value is
  the one GET returns) included; `id` names the version hashed and `alg` is HS256.
* Who may ask is who may read the value: under access policies `get`, not `list` (nor every
  other secrets permission together); under RBAC getSecret/action: Key Vault Reader and a role
  with every other secrets action are refused 403, Key Vault Secrets User and Secrets Officer
  (secrets/*) may.
* Malformed bodies (not JSON, not an object, no key, a key not a string, 31 or 65 bytes, not
  base64url) are 400 BadParameter, the key never quoted, and the server keeps serving.
* The audit log has one SecretHash record per request, allowed, refused and malformed alike;
  no audit file and nothing the server wrote to stdout or stderr holds the key (base64url,
  base64, hex), the value or the HMAC.
"""

import base64
import hashlib
import hmac
import os
import unittest

from harness import b64url, wait_until
from test_audit import AuditTestCase, audit_dir, raw_lines
from test_authorization import ROLES

WAIT_S = 30.0  # bounds a wait for a certificate to be signed; never a performance claim
SECRETS = "Microsoft.KeyVault/vaults/secrets/"
OTHER_SECRET_ACTIONS = ("readMetadata/action", "setSecret/action", "update/action", "delete",
                        "backup/action", "restore/action", "recover/action", "purge/action")


def hs256(key, value):
    return b64url(hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest())


class SecretHashTests(AuditTestCase):
    AP_RG, AP_VAULT = "rg-hash-ap", "hashap"
    RBAC_RG, RBAC_VAULT = "rg-hash-rbac", "hashrbac"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lister = cls.new_sp("hash-lister")
        cls.most = cls.new_sp("hash-all-but-get")
        cls.getter = cls.new_sp("hash-getter")
        cls.create_vault(cls.AP_RG, cls.AP_VAULT, False, [
            cls.policy_entry(cls.admin_oid, ["all"]),
            cls.policy_entry(cls.lister.oid, ["list"]),
            cls.policy_entry(cls.most.oid, ["list", "set", "delete", "recover", "backup",
                                            "restore", "purge"]),
            cls.policy_entry(cls.getter.oid, ["get"])])
        cls.create_vault(cls.RBAC_RG, cls.RBAC_VAULT, True)
        cls.no_get_role = cls.create_custom_role(
            "hash: every secrets action but getSecret",
            [SECRETS + a for a in OTHER_SECRET_ACTIONS])
        # Everything that must never reach a log: keys (bytes), values, HMACs (text).
        cls.keys, cls.values, cls.macs = [], [], []

    # ---- helpers -----------------------------------------------------------------------------

    def new_key(self, size=32):
        key = os.urandom(size)
        self.keys.append(key)
        return key

    def put(self, name, value, vault="dev"):
        self.values.append(value)
        r, _, _, _ = self.kv_call("PUT", f"/secrets/{name}", {"value": value}, vault=vault,
                                  label="put")
        self.assertEqual(r.status, 200, r)
        return r.json()["id"].rsplit("/", 1)[1]

    def hash(self, path, key, vault="dev", token=None, body=None, label="hash"):
        """POST {path}/hash; returns (response, correlation id)."""
        if body is None:
            body = {"key": b64url(key)}
        r, corr, _, _ = self.kv_call("POST", f"{path}/hash", body, vault=vault, token=token,
                                     label=label)
        if r.status == 200:
            self.macs.append(r.json()["value"])
        return r, corr

    def hash_ok(self, path, key, **kw):
        r, _ = self.hash(path, key, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def vault_base(self, vault):
        return f"https://{self.srv.vault_host(vault)}:{self.srv.port}"

    # ---- what is answered --------------------------------------------------------------------

    def test_answers_the_hmac_python_computes(self):
        value = "pässwörd ✓ hash-" + os.urandom(6).hex()
        v1 = self.put("hashed", value)
        key = self.new_key()
        j = self.hash_ok("/secrets/hashed", key)
        self.assertEqual(j, {"id": f"{self.vault_base('dev')}/secrets/hashed/{v1}",
                             "alg": "HS256", "value": hs256(key, value)})
        self.assertNotIn("=", j["value"])
        long_key = self.new_key(64)
        self.assertEqual(self.hash_ok("/secrets/hashed", long_key)["value"],
                         hs256(long_key, value))
        # Padding is optional.
        padded = base64.urlsafe_b64encode(key).decode()
        self.assertTrue(padded.endswith("="))
        self.assertEqual(self.hash_ok("/secrets/hashed", None, body={"key": padded})["value"],
                         j["value"])
        # A named version, and the current one after a change.
        v2 = self.put("hashed", value + "!")
        self.assertEqual(self.hash_ok(f"/secrets/hashed/{v1}", key), j)
        current = self.hash_ok("/secrets/hashed", key)
        self.assertEqual(current["id"], f"{self.vault_base('dev')}/secrets/hashed/{v2}")
        self.assertEqual(current["value"], hs256(key, value + "!"))
        # Equal values hash equally across secrets; another key hashes differently.
        self.put("hashed-twin", value)
        self.assertEqual(self.hash_ok("/secrets/hashed-twin", key)["value"], j["value"])
        self.assertNotEqual(self.hash_ok(f"/secrets/hashed/{v1}", self.new_key())["value"],
                            j["value"])

    def test_answers_as_get_does(self):
        key = self.new_key()
        r, _ = self.hash("/secrets/never-was", key)
        self.assertErrorBody(r, 404, "SecretNotFound")
        version = self.put("hash-disabled", "disabled-" + os.urandom(6).hex())
        r = self.srv.kv("PATCH", f"/secrets/hash-disabled/{version}",
                        {"attributes": {"enabled": False}})
        self.assertEqual(r.status, 200, r)
        get = self.srv.kv("GET", f"/secrets/hash-disabled/{version}")
        r, _ = self.hash(f"/secrets/hash-disabled/{version}", key)
        self.assertEqual((r.status, r.error_code()), (get.status, get.error_code()), (r, get))
        self.assertEqual(r.status, 403, r)
        # A certificate's secret: the value GET returns.
        name = "hash-cert"
        r = self.srv.kv("POST", f"/certificates/{name}/create",
                        {"policy": {"x509_props": {"subject": f"CN={name}"}}})
        self.assertEqual(r.status, 202, r)
        got = {}

        def completed():
            got.update(self.srv.kv("GET", f"/certificates/{name}/pending").json())
            return got.get("status") != "inProgress"
        self.assertTrue(wait_until(completed, timeout=WAIT_S), got)
        secret = self.srv.kv("GET", f"/secrets/{name}").json()
        self.assertTrue(secret.get("managed"), secret)
        self.values.append(secret["value"])
        j = self.hash_ok(f"/secrets/{name}", key)
        self.assertEqual(j["value"], hs256(key, secret["value"]))
        self.assertEqual(j["id"], secret["id"])

    # ---- who may ask -------------------------------------------------------------------------

    def test_access_policies_need_get(self):
        value = "ap-" + os.urandom(6).hex()
        self.put("s", value, vault=self.AP_VAULT)
        key = self.new_key()
        for p in (self.lister, self.most):
            with self.subTest(principal=p.label):
                # They may list; not hash.
                r, _, _, _ = self.kv_call("GET", "/secrets", vault=self.AP_VAULT,
                                          token=p.vault_token)
                self.assertEqual(r.status, 200, r)
                r, corr = self.hash("/secrets/s", key, vault=self.AP_VAULT, token=p.vault_token,
                                    label="denied")
                body = self.assertErrorBody(r, 403, "Forbidden")
                self.assertIn("does not have secrets get permission", body["error"]["message"])
                rec = self.one_record(corr, p.label)
                self.assertEqual((rec["operationName"], rec["resultSignature"]),
                                 ("SecretHash", "Forbidden"))
        j = self.hash_ok("/secrets/s", key, vault=self.AP_VAULT, token=self.getter.vault_token)
        self.assertEqual(j["value"], hs256(key, value))

    def test_rbac_needs_get_secret(self):
        value = "rbac-" + os.urandom(6).hex()
        self.put("s", value, vault=self.RBAC_VAULT)
        vault_id = self.vault_id(self.RBAC_RG, self.RBAC_VAULT)
        key = self.new_key()
        cases = (("Key Vault Reader", ROLES["Key Vault Reader"], False),
                 ("every secrets action but getSecret", self.no_get_role, False),
                 ("Key Vault Secrets User", ROLES["Key Vault Secrets User"], True),
                 ("Key Vault Secrets Officer", ROLES["Key Vault Secrets Officer"], True))
        for label, role, allowed in cases:
            with self.subTest(role=label):
                p = self.new_sp("hash-rbac-" + label.replace(" ", "-").lower()[:30])
                self.assign_ok(f"{vault_id}/secrets/s", role, p.oid)
                r, corr = self.hash("/secrets/s", key, vault=self.RBAC_VAULT,
                                    token=p.vault_token, label="rbac")
                rec = self.one_record(corr, label)
                self.assertEqual(rec["operationName"], "SecretHash")
                if allowed:
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json()["value"], hs256(key, value))
                    self.assertIs(rec["properties"]["isRbacAuthorized"], True)
                else:
                    body = self.assertErrorBody(r, 403, "Forbidden")
                    self.assertIn(f"Action: '{SECRETS}getSecret/action'",
                                  body["error"]["message"])

    # ---- malformed requests ------------------------------------------------------------------

    def test_malformed_bodies_are_400_and_quote_no_key(self):
        self.put("malformed", "m-" + os.urandom(6).hex())
        key = self.new_key()
        k31, k65 = self.new_key(31), self.new_key(65)
        plus_slash = self.new_key(32)
        std = base64.b64encode(plus_slash).decode()
        cases = [
            ("not JSON", "{"),
            ("empty", ""),
            ("an array", [b64url(key)]),
            ("a string", '"' + b64url(key) + '"'),
            ("no key", {"value": b64url(key)}),
            ("null", {"key": None}),
            ("a number", {"key": 32}),
            ("an object", {"key": {"k": b64url(key)}}),
            ("31 bytes", {"key": b64url(k31)}),
            ("65 bytes", {"key": b64url(k65)}),
            ("empty key", {"key": ""}),
            ("not base64url", {"key": b64url(key) + "*"}),
            ("padding inside", {"key": b64url(key)[:20] + "=" + b64url(key)[20:]}),
        ]
        if "+" in std or "/" in std:
            cases.append(("standard base64", {"key": std}))
        for label, body in cases:
            with self.subTest(case=label):
                r, corr = self.hash("/secrets/malformed", None, body=body, label="malformed")
                err = self.assertErrorBody(r, 400, "BadParameter", label)
                for k in (key, k31, k65, plus_slash):
                    for text in (b64url(k), base64.b64encode(k).decode(), k.hex()):
                        self.assertNotIn(text, err["error"]["message"], label)
                rec = self.one_record(corr, label)
                self.assertEqual((rec["operationName"], rec["resultSignature"]),
                                 ("SecretHash", "Bad Request"), rec)
        self.assertServing()
        self.assertEqual(self.hash_ok("/secrets/malformed", key)["alg"], "HS256")
        # Other methods on the path are no operation.
        r, _, _, _ = self.kv_call("GET", "/secrets/malformed/hash")
        self.assertEqual(r.status, 405, r)

    # ---- nothing in the logs -----------------------------------------------------------------

    def test_zz_no_log_holds_a_key_a_value_or_an_hmac(self):
        """Runs last (by name): looks through everything the class's requests wrote."""
        self.assertTrue(self.keys and self.values and self.macs,
                        "the other tests ran first and hashed something")
        lines = [line for _, _, line in raw_lines(audit_dir(self.srv))]
        hashes = [line for line in lines if b'"operationName":"SecretHash"' in line]
        self.assertGreaterEqual(len(hashes), 10, "SecretHash records")
        audit = b"\n".join(lines)
        self.assertIn(b"/secrets/malformed/hash?api-version=", audit, "the right log is read")
        logs = self.srv.logs().encode("utf-8", "replace")
        forbidden = []
        for k in self.keys:
            forbidden += [b64url(k), base64.b64encode(k).decode().rstrip("="), k.hex(),
                          k.hex().upper()]
        forbidden += [v for v in self.values if len(v) >= 8]
        forbidden += self.macs
        for text in forbidden:
            needle = text.encode("utf-8")
            self.assertNotIn(needle, audit, "audit log")
            self.assertNotIn(needle, logs, "server output")
            # JSON escapes of non-ASCII values.
            escaped = text.encode("ascii", "backslashreplace")
            if escaped != needle:
                self.assertNotIn(escaped, audit)


if __name__ == "__main__":
    unittest.main()
