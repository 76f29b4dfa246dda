"""Conformance of the official azure-keyvault-keys client (Debian python3-azure, 4.8.0b3) with Coffer's
keys API: KeyClient's lifecycle and CryptographyClient's local and remote operations.

One real `coffer server --dev` process serves the whole module.  The clients are configured as in
test_secrets.py: the vault URL, the server's CA (connection_verify), the authority and
instance_discovery=False; nothing is opted out of.

CryptographyClient fetches the key and then encrypts, wraps and verifies itself; it sends decrypt,
unwrap and sign to the server.  The tests show which side ran an operation through permissions: a
principal whose access policy lacks `encrypt` and `verify` still encrypts and verifies locally, and
gets 403 from the server for what it must send.  Signatures the server makes are also checked with
python3-cryptography, independently of the SDK.

Run with Debian's interpreter, which has the azure packages:
    COFFER_BIN=build/coffer /usr/bin/python3 -m unittest -v test_keys   (in tests/sdk-py)
"""

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import unittest
import uuid

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import JsonWebKey, KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy
from azure.keyvault.keys.crypto import (CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm,
                                        SignatureAlgorithm)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)

POLL = {"_polling_interval": 0.05}
UTC = datetime.timezone.utc
RSA_OPS = ["decrypt", "encrypt", "sign", "unwrapKey", "verify", "wrapKey"]
EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66, "P-256K": 32}
EC_CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1(),
             "P-256K": ec.SECP256K1()}

SERVER = None
CREDENTIAL = None
CLIENT = None
# Plaintexts, unwrapped keys, imported private parts and passwords; none may reach the server's logs.
SENSITIVE = set()


def setUpModule():
    global SERVER, CREDENTIAL, CLIENT
    SERVER = harness.launch_server()
    CREDENTIAL = credential(SERVER.env["AZURE_CLIENT_ID"], SERVER.env["AZURE_CLIENT_SECRET"])
    CLIENT = KeyClient(SERVER.vault_url, CREDENTIAL, connection_verify=SERVER.ca_path)


def tearDownModule():
    for c in (CLIENT, CREDENTIAL):
        if c is not None:
            c.close()
    if SERVER is not None:
        SERVER.cleanup()


def credential(client_id, client_secret):
    return ClientSecretCredential(
        SERVER.env["AZURE_TENANT_ID"], client_id, client_secret,
        authority=SERVER.authority_host, instance_discovery=False, connection_verify=SERVER.ca_path)


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


def principal_with_key_permissions(name, permissions):
    """A new service principal's credential, with these key permissions on the dev vault."""
    sp = coffer("ad", "sp", "create-for-rbac", "--name", name)
    SENSITIVE.add(sp["password"])
    object_id = coffer("ad", "sp", "show", "--id", sp["appId"])["id"]
    if permissions:
        coffer("keyvault", "set-policy", "--name", "dev", "--object-id", object_id,
               "--key-permissions", *permissions)
    return credential(sp["appId"], sp["password"])


def plaintext(label):
    text = f"pt-{label}-{uuid.uuid4()}"
    SENSITIVE.add(text)
    SENSITIVE.add(harness.b64url(text.encode()))  # as the request body carries it
    return text.encode()


def sha256(data):
    return hashlib.sha256(data).digest()


def whole_seconds_from_now(delta):
    return (datetime.datetime.now(UTC) + delta).replace(microsecond=0)


def public_key_of(key):
    """The key's public half as a python3-cryptography object, from the JWK the server returned."""
    jwk = key.key
    if jwk.kty in ("RSA", "RSA-HSM"):
        return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()
    return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"),
                                         EC_CURVES[jwk.crv]).public_key()


def raw_to_der(signature):
    half = len(signature) // 2
    return encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))


def int_bytes(n, length=None):
    return n.to_bytes(length or (n.bit_length() + 7) // 8, "big")


def error_code(err):
    return getattr(getattr(err, "error", None), "code", None)


class KeysTestCase(unittest.TestCase):
    maxDiff = 4000

    def assertHttpError(self, exc_type, status, code, func, *args, **kwargs):
        with self.assertRaises(exc_type) as ctx:
            func(*args, **kwargs)
        err = ctx.exception
        self.assertEqual(err.status_code, status, str(err))
        if code is not None:
            self.assertEqual(error_code(err), code, str(err))
        return err

    def assertForbidden(self, func, *args, **kwargs):
        return self.assertHttpError(HttpResponseError, 403, "Forbidden", func, *args, **kwargs)

    def assertPublicOnly(self, key):
        for field in ("d", "p", "q", "dp", "dq", "qi", "k"):
            self.assertIsNone(getattr(key.key, field), f"the server returned the private field {field}")

    def assertRecent(self, value, what):
        self.assertIsInstance(value, datetime.datetime, what)
        self.assertLess(abs((datetime.datetime.now(UTC) - value).total_seconds()), 300, f"{what} ({value})")


class Test01CreateAndGet(KeysTestCase):
    def test_create_rsa_key_defaults_to_2048_bits_the_six_operations_and_the_public_half(self):
        key = CLIENT.create_rsa_key("py-rsa-default")
        self.assertEqual(key.name, "py-rsa-default")
        self.assertEqual(key.key_type, "RSA")
        self.assertEqual(sorted(key.key_operations), RSA_OPS)
        self.assertEqual(len(key.key.n), 256, "n is the modulus without a sign byte")
        self.assertEqual(key.key.e, b"\x01\x00\x01")
        self.assertPublicOnly(key)
        self.assertEqual(key.id, f"{SERVER.vault_url}/keys/py-rsa-default/{key.properties.version}")
        self.assertIs(key.properties.enabled, True)
        self.assertRecent(key.properties.created_on, "created_on")
        self.assertIn("Recoverable", key.properties.recovery_level)
        got = CLIENT.get_key("py-rsa-default")  # GET /keys/py-rsa-default/ (empty version)
        self.assertEqual(got.id, key.id)
        self.assertEqual(got.key.n, key.key.n)

    def test_create_rsa_key_3072_and_4096(self):
        for size in (3072, 4096):
            with self.subTest(size=size):
                key = CLIENT.create_rsa_key(f"py-rsa-{size}", size=size)
                self.assertEqual(len(key.key.n), size // 8)

    def test_create_ec_key_on_each_curve_returns_fixed_length_coordinates_on_the_curve(self):
        for curve, size in EC_SIZES.items():
            with self.subTest(curve=curve):
                key = CLIENT.create_ec_key(f"py-ec-{curve.lower()}", curve=curve)
                self.assertEqual(key.key_type, "EC")
                self.assertEqual(key.key.crv, curve)
                self.assertEqual((len(key.key.x), len(key.key.y)), (size, size))
                self.assertEqual(sorted(key.key_operations), ["sign", "verify"])
                self.assertPublicOnly(key)
                public_key_of(key)  # raises unless the point is on the curve

    def test_get_key_of_a_missing_name_is_404_key_not_found(self):
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", CLIENT.get_key, "py-no-such-key")

    def test_a_hardware_protected_key_is_refused_on_a_standard_vault(self):
        err = self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.create_rsa_key, "py-hsm",
                                   hardware_protected=True)
        self.assertIn("Hardware key operation not allowed on standard vault", err.message)
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", CLIENT.get_key, "py-hsm")


class Test02VersionsAndUpdate(KeysTestCase):
    NAME = "py-versioned"

    @classmethod
    def setUpClass(cls):
        cls.v1 = CLIENT.create_rsa_key(cls.NAME, tags={"gen": "1"})
        cls.v2 = CLIENT.create_rsa_key(cls.NAME, tags={"gen": "2"})

    def test_get_key_latest_and_by_version(self):
        self.assertEqual(CLIENT.get_key(self.NAME).properties.version, self.v2.properties.version)
        old = CLIENT.get_key(self.NAME, self.v1.properties.version)
        self.assertEqual(old.key.n, self.v1.key.n)
        self.assertEqual(old.properties.tags, {"gen": "1"})

    def test_list_versions_and_keys(self):
        versions = list(CLIENT.list_properties_of_key_versions(self.NAME, max_page_size=1))
        self.assertEqual(sorted(p.version for p in versions),
                         sorted([self.v1.properties.version, self.v2.properties.version]))
        for p in versions:
            self.assertEqual(p.id, f"{SERVER.vault_url}/keys/{self.NAME}/{p.version}")
        listed = list(CLIENT.list_properties_of_keys(max_page_size=2))
        names = [p.name for p in listed]
        self.assertEqual(len(names), len(set(names)), "no key is listed twice")
        item = next(p for p in listed if p.name == self.NAME)
        self.assertEqual(item.id, f"{SERVER.vault_url}/keys/{self.NAME}")

    def test_update_key_properties_disables_one_version_which_stays_readable(self):
        nbf = whole_seconds_from_now(datetime.timedelta(hours=-1))
        exp = whole_seconds_from_now(datetime.timedelta(days=1))
        updated = CLIENT.update_key_properties(self.NAME, self.v1.properties.version, enabled=False,
                                               tags={"state": "retired"}, not_before=nbf, expires_on=exp)
        self.assertIs(updated.properties.enabled, False)
        self.assertEqual(updated.properties.tags, {"state": "retired"})
        self.assertEqual((updated.properties.not_before, updated.properties.expires_on), (nbf, exp))
        got = CLIENT.get_key(self.NAME, self.v1.properties.version)
        self.assertIs(got.properties.enabled, False)
        self.assertIs(CLIENT.get_key(self.NAME).properties.enabled, True)
        # Crypto on a disabled version is refused by the server.
        cc = CLIENT.get_cryptography_client(self.NAME, key_version=self.v1.properties.version)
        self.assertForbidden(cc.sign, SignatureAlgorithm.rs256, sha256(b"disabled"))

    def test_update_key_properties_narrows_key_operations_and_the_server_enforces_them(self):
        key = CLIENT.create_rsa_key("py-narrowed")
        updated = CLIENT.update_key_properties("py-narrowed", key_operations=["sign", "verify"])
        self.assertEqual(sorted(updated.key_operations), ["sign", "verify"])
        cc = CLIENT.get_cryptography_client("py-narrowed", key_version=key.properties.version)
        # decrypt is never local: the server refuses it on this key.
        err = self.assertForbidden(cc.decrypt, EncryptionAlgorithm.rsa_oaep, b"\x01" * 256)
        self.assertIn("Operation decrypt is not permitted on this key.", err.message)
        self.assertEqual(len(cc.sign(SignatureAlgorithm.rs256, sha256(b"ok")).signature), 256)

    def test_the_key_ops_refusal_carries_the_inner_code_key_operation_forbidden(self):
        key = CLIENT.create_rsa_key("py-narrowed-inner", key_operations=["sign"])
        cc = CLIENT.get_cryptography_client(key.name, key_version=key.properties.version)
        err = self.assertForbidden(cc.decrypt, EncryptionAlgorithm.rsa_oaep, b"\x01" * 256)
        inner = json.loads(err.response.text())["error"].get("innererror") or {}
        self.assertEqual(inner.get("code"), "KeyOperationForbidden", err.response.text())

    def test_outside_nbf_exp_the_server_refuses_sign_but_decrypts_and_verifies(self):
        key = CLIENT.create_rsa_key("py-expired")
        digest = sha256(b"signed while valid")
        # From an id string the client checks no dates itself (only a KeyVaultKey carries them).
        cc = CryptographyClient(key.id, CREDENTIAL, connection_verify=SERVER.ca_path)
        self.addCleanup(cc.close)
        signature = cc.sign(SignatureAlgorithm.rs256, digest).signature
        CLIENT.update_key_properties("py-expired", key.properties.version,
                                     expires_on=whole_seconds_from_now(datetime.timedelta(days=-1)))
        self.assertForbidden(cc.sign, SignatureAlgorithm.rs256, digest)
        pt = plaintext("expired")
        ct = cc.encrypt(EncryptionAlgorithm.rsa_oaep_256, pt).ciphertext  # local, after the GET
        self.assertEqual(cc.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext, pt)
        r = SERVER.kv("POST", f"/keys/py-expired/{key.properties.version}/verify",
                      {"alg": "RS256", "digest": harness.b64url(digest), "value": harness.b64url(signature)})
        self.assertEqual((r.status, r.json()), (200, {"value": True}))
        r = SERVER.kv("POST", f"/keys/py-expired/{key.properties.version}/encrypt",
                      {"alg": "RSA-OAEP", "value": harness.b64url(b"x")})
        self.assertEqual((r.status, r.error_code()), (403, "Forbidden"), repr(r))


class Test03DeleteRecoverPurge(KeysTestCase):
    NAME = "py-lifecycle"

    def test_delete_get_deleted_list_deleted_conflict_recover_and_purge(self):
        created = CLIENT.create_ec_key(self.NAME)
        deleted = CLIENT.begin_delete_key(self.NAME, **POLL).result()
        self.assertEqual(deleted.recovery_id, f"{SERVER.vault_url}/deletedkeys/{self.NAME}")
        self.assertEqual(deleted.id, created.id)
        got = CLIENT.get_deleted_key(self.NAME)
        self.assertRecent(got.deleted_date, "deleted_date")
        self.assertGreaterEqual(got.scheduled_purge_date - got.deleted_date, datetime.timedelta(days=7))
        self.assertEqual(got.key.x, created.key.x)
        self.assertIn(self.NAME, [d.name for d in CLIENT.list_deleted_keys()])
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", CLIENT.get_key, self.NAME)
        self.assertHttpError(ResourceExistsError, 409, "Conflict", CLIENT.create_ec_key, self.NAME)

        recovered = CLIENT.begin_recover_deleted_key(self.NAME, **POLL).result()
        self.assertEqual(recovered.id, created.id)
        self.assertEqual(CLIENT.get_key(self.NAME).key.x, created.key.x)

        CLIENT.begin_delete_key(self.NAME, **POLL).result()
        CLIENT.purge_deleted_key(self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", CLIENT.get_deleted_key, self.NAME)
        self.assertNotEqual(CLIENT.create_ec_key(self.NAME).key.x, created.key.x)


class Test04BackupRestoreRotateRng(KeysTestCase):
    def test_backup_purge_restore_keeps_versions_material_and_timestamps(self):
        name = "py-backed-up"
        v1 = CLIENT.create_rsa_key(name)
        v2 = CLIENT.create_rsa_key(name, tags={"k": "v"})
        digest = sha256(b"before backup")
        signature = CLIENT.get_cryptography_client(name, key_version=v2.properties.version).sign(
            SignatureAlgorithm.rs256, digest).signature
        backup = CLIENT.backup_key(name)
        self.assertIsInstance(backup, bytes)
        self.assertHttpError(ResourceExistsError, 409, "Conflict", CLIENT.restore_key_backup, backup)
        CLIENT.begin_delete_key(name, **POLL).result()
        CLIENT.purge_deleted_key(name)
        restored = CLIENT.restore_key_backup(backup)
        self.assertEqual(restored.id, v2.id)
        self.assertEqual(restored.key.n, v2.key.n)
        self.assertEqual(restored.properties.tags, {"k": "v"})
        self.assertEqual(restored.properties.created_on, v2.properties.created_on)
        self.assertEqual(restored.properties.updated_on, v2.properties.updated_on)
        self.assertEqual(sorted(p.version for p in CLIENT.list_properties_of_key_versions(name)),
                         sorted([v1.properties.version, v2.properties.version]))
        public_key_of(restored).verify(signature, b"before backup", padding.PKCS1v15(), hashes.SHA256())

    def test_rotate_key_makes_a_new_version_of_the_same_kind(self):
        name = "py-rotated"
        original = CLIENT.create_ec_key(name, curve="P-384", key_operations=["sign"], tags={"a": "b"})
        rotated = CLIENT.rotate_key(name)
        self.assertNotEqual(rotated.properties.version, original.properties.version)
        self.assertEqual((rotated.key.crv, rotated.key_operations, rotated.properties.tags),
                         ("P-384", ["sign"], {"a": "b"}))
        self.assertNotEqual(rotated.key.x, original.key.x)
        self.assertEqual(CLIENT.get_key(name).properties.version, rotated.properties.version)

    def test_get_random_bytes(self):
        a = CLIENT.get_random_bytes(32)
        b = CLIENT.get_random_bytes(32)
        self.assertEqual((len(a), len(b)), (32, 32))
        self.assertNotEqual(a, b)
        err = self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.get_random_bytes, 129)
        self.assertIsNotNone(err.response)
        self.assertEqual(len(CLIENT.get_random_bytes(128)), 128)

    def test_rotation_policy_round_trips_with_the_default_notify_action(self):
        name = "py-policy"
        CLIENT.create_ec_key(name)
        policy = CLIENT.update_key_rotation_policy(
            name, KeyRotationPolicy(),
            lifetime_actions=[KeyRotationLifetimeAction("Rotate", time_after_create="P90D")], expires_in="P2Y")
        self.assertEqual(policy.id, f"{SERVER.vault_url}/keys/{name}/rotationpolicy")
        self.assertEqual(policy.expires_in, "P2Y")
        actions = {a.action: (a.time_after_create, a.time_before_expiry) for a in policy.lifetime_actions}
        self.assertEqual(actions, {"Rotate": ("P90D", None), "Notify": (None, "P30D")})
        got = CLIENT.get_key_rotation_policy(name)
        self.assertEqual({a.action: (a.time_after_create, a.time_before_expiry) for a in got.lifetime_actions},
                         actions)
        # An empty policy is accepted (the SDK sends lifetimeActions: []).
        CLIENT.update_key_rotation_policy(name, KeyRotationPolicy())


class Test05Import(KeysTestCase):
    def test_import_rsa_jwk_with_leading_zero_bytes_returns_the_public_half_and_signs(self):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        nums = private.private_numbers()
        # As the SDK's own tests send it: integers with a leading 0x00 byte, e = 0x010001.
        jwk = JsonWebKey(kty="RSA", key_ops=["sign", "verify", "decrypt", "encrypt"],
                         n=b"\x00" + int_bytes(nums.public_numbers.n), e=b"\x01\x00\x01",
                         d=int_bytes(nums.d), p=b"\x00" + int_bytes(nums.p), q=b"\x00" + int_bytes(nums.q),
                         dp=b"\x00" + int_bytes(nums.dmp1), dq=b"\x00" + int_bytes(nums.dmq1),
                         qi=b"\x00" + int_bytes(nums.iqmp))
        SENSITIVE.update(harness.b64url(x) for x in (int_bytes(nums.d), int_bytes(nums.p), int_bytes(nums.q)))
        imported = CLIENT.import_key("py-imported-rsa", jwk)
        self.assertEqual(imported.key.n, int_bytes(nums.public_numbers.n), "n comes back minimal")
        self.assertPublicOnly(imported)
        cc = CLIENT.get_cryptography_client("py-imported-rsa")
        signature = cc.sign(SignatureAlgorithm.rs256, sha256(b"imported")).signature
        private.public_key().verify(signature, b"imported", padding.PKCS1v15(), hashes.SHA256())
        pt = plaintext("imported")
        ct = private.public_key().encrypt(pt, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
        self.assertEqual(cc.decrypt(EncryptionAlgorithm.rsa_oaep, ct).plaintext, pt)

    def test_import_ec_jwk_signs_es256(self):
        private = ec.generate_private_key(ec.SECP256R1())
        nums = private.private_numbers()
        jwk = JsonWebKey(kty="EC", crv="P-256", d=int_bytes(nums.private_value, 32),
                         x=int_bytes(nums.public_numbers.x, 32), y=int_bytes(nums.public_numbers.y, 32))
        imported = CLIENT.import_key("py-imported-ec", jwk)
        self.assertEqual(imported.key.crv, "P-256")
        self.assertPublicOnly(imported)
        signature = CLIENT.get_cryptography_client("py-imported-ec").sign(
            SignatureAlgorithm.es256, sha256(b"imported ec")).signature
        self.assertEqual(len(signature), 64)
        private.public_key().verify(raw_to_der(signature), b"imported ec", ec.ECDSA(hashes.SHA256()))


class Test06CryptographyClient(KeysTestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = CLIENT.create_rsa_key("py-crypto-rsa")
        # A principal whose policy lacks encrypt, wrapKey and verify: what it does with those
        # operations must have run in the client.
        cls.cred = principal_with_key_permissions("py-keys-local", ["get", "decrypt", "unwrapKey", "sign"])
        cls.local = CryptographyClient(cls.key.id, cls.cred, connection_verify=SERVER.ca_path)

    @classmethod
    def tearDownClass(cls):
        cls.local.close()
        cls.cred.close()

    def test_local_encrypt_each_rsa_algorithm_then_remote_decrypt(self):
        for alg in (EncryptionAlgorithm.rsa_oaep, EncryptionAlgorithm.rsa_oaep_256, EncryptionAlgorithm.rsa1_5):
            with self.subTest(alg=alg):
                pt = plaintext(f"local-{alg}")
                ct = self.local.encrypt(alg, pt).ciphertext
                self.assertEqual(len(ct), 256)
                self.assertEqual(self.local.decrypt(alg, ct).plaintext, pt)

    def test_local_wrap_then_remote_unwrap(self):
        dek = os.urandom(32)
        SENSITIVE.add(harness.b64url(dek))
        wrapped = self.local.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek).encrypted_key
        self.assertEqual(self.local.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key, dek)

    def test_remote_sign_local_verify_for_rs_and_ps(self):
        for alg, pad in ((SignatureAlgorithm.rs256, padding.PKCS1v15()),
                         (SignatureAlgorithm.ps256, padding.PSS(padding.MGF1(hashes.SHA256()), 32))):
            with self.subTest(alg=alg):
                digest = sha256(b"signed remotely")
                signature = self.local.sign(alg, digest).signature
                self.assertTrue(self.local.verify(alg, digest, signature).is_valid)
                self.assertFalse(self.local.verify(alg, sha256(b"other"), signature).is_valid)
                public_key_of(self.key).verify(signature, b"signed remotely", pad, hashes.SHA256())

    def test_remote_verify_is_refused_without_the_verify_permission(self):
        # The admin's client verifies locally too; the raw route shows the server's answer.
        r = SERVER.request("POST", f"/keys/py-crypto-rsa/{self.key.properties.version}/verify?api-version=7.4",
                           {"alg": "RS256", "digest": "AA", "value": "AA"},
                           token=self.cred.get_token(SERVER.vault_resource + "/.default").token)
        self.assertEqual(r.status, 403, repr(r))
        self.assertEqual(r.error_code(), "Forbidden", repr(r))

    def test_decrypt_of_garbage_is_400_bad_parameter(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", self.local.decrypt,
                             EncryptionAlgorithm.rsa_oaep, b"\x07" * 256)

    def test_es256_and_es256k_sign_remotely_and_verify_locally(self):
        for curve, alg in (("P-256", SignatureAlgorithm.es256), ("P-256K", SignatureAlgorithm.es256_k)):
            with self.subTest(alg=alg):
                key = CLIENT.create_ec_key(f"py-crypto-{curve.lower()}", curve=curve)
                cc = CLIENT.get_cryptography_client(key.name, key_version=key.properties.version)
                digest = sha256(f"signed with {alg}".encode())
                signature = cc.sign(alg, digest).signature
                self.assertEqual(len(signature), 64)
                self.assertTrue(cc.verify(alg, digest, signature).is_valid)
                self.assertFalse(cc.verify(alg, sha256(b"other"), signature).is_valid)
                public_key_of(key).verify(raw_to_der(signature), f"signed with {alg}".encode(),
                                          ec.ECDSA(hashes.SHA256()))


    def test_a_client_from_a_versionless_id_without_get_uses_the_latest_version_after_rotation(self):
        # No `get`: the client is remote-only and sends POST /keys/<name>//decrypt.
        cred = principal_with_key_permissions("py-keys-remote-only", ["encrypt", "decrypt"])
        self.addCleanup(cred.close)
        CLIENT.create_rsa_key("py-versionless")
        cc = CryptographyClient(f"{SERVER.vault_url}/keys/py-versionless", cred, connection_verify=SERVER.ca_path)
        self.addCleanup(cc.close)
        pt = plaintext("versionless-1")
        ct = cc.encrypt(EncryptionAlgorithm.rsa_oaep_256, pt).ciphertext
        self.assertEqual(cc.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext, pt)
        rotated = CLIENT.rotate_key("py-versionless")
        pt = plaintext("versionless-2")
        ct = public_key_of(rotated).encrypt(pt, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        self.assertEqual(cc.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext, pt)


class Test07Authorization(KeysTestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = CLIENT.create_rsa_key("py-guarded")

    def test_get_and_sign_only_principal_signs_but_cannot_decrypt_or_create(self):
        cred = principal_with_key_permissions("py-keys-signer", ["get", "sign"])
        self.addCleanup(cred.close)
        cc = CryptographyClient(self.key.id, cred, connection_verify=SERVER.ca_path)
        signature = cc.sign(SignatureAlgorithm.rs256, sha256(b"signer")).signature
        public_key_of(self.key).verify(signature, b"signer", padding.PKCS1v15(), hashes.SHA256())
        err = self.assertForbidden(cc.decrypt, EncryptionAlgorithm.rsa_oaep, b"\x01" * 256)
        self.assertIn("AccessDenied", err.response.text())
        kc = KeyClient(SERVER.vault_url, cred, connection_verify=SERVER.ca_path)
        self.addCleanup(kc.close)
        self.addCleanup(cc.close)
        self.assertEqual(kc.get_key("py-guarded").id, self.key.id)
        self.assertForbidden(kc.create_rsa_key, "py-signer-made")

    def test_principal_without_key_permissions_gets_403_everywhere(self):
        cred = principal_with_key_permissions("py-keys-nobody", [])
        self.addCleanup(cred.close)
        kc = KeyClient(SERVER.vault_url, cred, connection_verify=SERVER.ca_path)
        self.addCleanup(kc.close)
        self.assertForbidden(kc.get_key, "py-guarded")
        self.assertForbidden(lambda: list(kc.list_properties_of_keys()))
        cc = CryptographyClient(self.key.id, cred, connection_verify=SERVER.ca_path)
        self.addCleanup(cc.close)
        self.assertForbidden(cc.sign, SignatureAlgorithm.rs256, sha256(b"nobody"))
        # The 403 on its first GET made the client remote-only: encrypt goes to the server too.
        self.assertForbidden(cc.encrypt, EncryptionAlgorithm.rsa_oaep, b"x")


class Test08BadInput(KeysTestCase):
    """Bad input is a 400 BadParameter that changes nothing."""

    @classmethod
    def setUpClass(cls):
        cls.rsa = CLIENT.create_rsa_key("py-bad-input-rsa")
        cls.ec = CLIENT.create_ec_key("py-bad-input-ec", curve="P-384")
        cls.rsa_cc = CLIENT.get_cryptography_client(cls.rsa.name, key_version=cls.rsa.properties.version)
        cls.ec_cc = CLIENT.get_cryptography_client(cls.ec.name, key_version=cls.ec.properties.version)

    def test_sign_with_a_digest_of_the_wrong_length(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", self.rsa_cc.sign,
                             SignatureAlgorithm.rs256, b"\x01" * 20)

    def test_sign_with_an_algorithm_of_another_key_type_or_curve(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", self.rsa_cc.sign,
                             SignatureAlgorithm.es256, sha256(b"x"))
        self.assertHttpError(HttpResponseError, 400, "BadParameter", self.ec_cc.sign,
                             SignatureAlgorithm.es256, sha256(b"x"))

    def test_decrypt_with_an_unknown_algorithm_or_a_ciphertext_of_the_wrong_length(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", self.rsa_cc.decrypt, "RSA-OAEP-512", b"\x01" * 256)
        self.assertHttpError(HttpResponseError, 400, "BadParameter", self.rsa_cc.decrypt,
                             EncryptionAlgorithm.rsa_oaep, b"\x01" * 255)

    def test_ec_keys_neither_encrypt_nor_wrap(self):
        r = SERVER.kv("POST", f"/keys/{self.ec.name}/{self.ec.properties.version}/wrapkey",
                      {"alg": "RSA-OAEP", "value": harness.b64url(b"k" * 32)})
        self.assertIn(r.status, (400, 403), repr(r))

    def test_import_of_a_jwk_whose_parts_disagree_is_refused_and_creates_nothing(self):
        a = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        b = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        SENSITIVE.update(harness.b64url(int_bytes(x)) for x in (a.d, b.p, b.q))
        jwk = JsonWebKey(kty="RSA", n=int_bytes(a.public_numbers.n), e=b"\x01\x00\x01", d=int_bytes(a.d),
                         p=int_bytes(b.p), q=int_bytes(b.q))
        err = self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.import_key, "py-mismatched", jwk)
        for part in (a.d, b.p, b.q):
            self.assertNotIn(harness.b64url(int_bytes(part)), err.message, "the error echoes a private part")
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", CLIENT.get_key, "py-mismatched")

    def test_create_with_an_unsupported_size_or_curve(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.create_rsa_key, "py-rsa-1024", size=1024)
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.create_ec_key, "py-ec-bad", curve="P-192")
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", CLIENT.get_key, "py-rsa-1024")

    def test_the_keys_still_work_after_the_bad_requests(self):
        digest = sha256(b"still fine")
        self.assertTrue(self.rsa_cc.verify(SignatureAlgorithm.rs256, digest,
                                           self.rsa_cc.sign(SignatureAlgorithm.rs256, digest).signature).is_valid)


class Test99ServerProcess(unittest.TestCase):
    def test_1_the_server_exits_with_status_0_on_sigterm(self):
        returncode = SERVER.stop()
        self.assertFalse(SERVER.killed_hard, f"needed SIGKILL, {harness.STOP_TIMEOUT_S:.0f} s after SIGTERM")
        self.assertEqual(returncode, 0, f"exit status after SIGTERM\n--- stderr tail ---\n{SERVER.logs()[-3000:]}")

    def test_3_the_audit_log_names_the_key_operations_and_holds_no_plaintext_or_private_part(self):
        SERVER.stop()
        text = ""
        for root, _, files in os.walk(harness.server_audit_dir(SERVER.data_dir)):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    text += fh.read().decode("utf-8", "replace")
        names = set(re.findall(r'"operationName"\s*:\s*"(\w+)"', text))
        expected = {"KeyCreate", "KeyImport", "KeyGet", "KeyList", "KeyListVersions", "KeyUpdate", "KeyDelete",
                    "KeyGetDeleted", "KeyListDeleted", "KeyRecover", "KeyPurge", "KeyBackup", "KeyRestore",
                    "KeyRotate", "KeyEncrypt", "KeyDecrypt", "KeyWrap", "KeyUnwrap", "KeySign", "KeyVerify",
                    "GetRandomBytes"}
        self.assertEqual(expected - names, set(), f"operations missing from the audit log (found {sorted(names)})")
        leaked = sorted(s for s in SENSITIVE if s in text)
        self.assertFalse(leaked, f"{len(leaked)} sensitive strings found in the audit log")

    def test_2_the_server_logs_contain_no_plaintext_unwrapped_key_private_part_or_password(self):
        SERVER.stop()
        logs = SERVER.logs()
        self.assertGreater(len(SENSITIVE), 8, f"the suite tracked {len(SENSITIVE)} sensitive strings")
        leaked = sorted(s for s in SENSITIVE if s in logs)
        self.assertFalse(leaked, f"{len(leaked)} sensitive strings found in the server's log output")


if __name__ == "__main__":
    unittest.main()
