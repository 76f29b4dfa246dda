"""`coffer keyvault key ...` against a real dev server: a key's whole life through the CLI, keys
imported from PEM and JWK files, interop with the openssl command line, and bad input.

The CLI runs with the server's dev.env in its environment, as in test_cli. Exit codes: 0 success,
1 a request (or a key file) was refused (`ERROR: (<code>) <message>` on stderr), 2 usage errors.
"""

import base64
import hashlib
import json
import os
import re
import subprocess

from test_cli import CliTestCase

DEV = ("--vault-name", "dev")
RSA_DEFAULT_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


def b64(data):
    return base64.b64encode(data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def openssl(*args, data=None):
    """Runs the openssl command line, which must succeed; returns its stdout."""
    p = subprocess.run(["openssl"] + [str(a) for a in args], input=data, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"openssl {args} exited {p.returncode}: {p.stderr.decode()}")
    return p.stdout


def ec_private_jwk(pem_path):
    """The private JWK of an EC P-256 PEM key, from `openssl pkey -text` (standard library only)."""
    text = openssl("pkey", "-in", pem_path, "-noout", "-text").decode()
    fields = {}
    for name, hexdigits in re.findall(r"^(priv|pub):\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M):
        fields[name] = bytes.fromhex(re.sub(r"[\s:]", "", hexdigits))
    d = fields["priv"].rjust(32, b"\0")[-32:]
    point = fields["pub"]
    assert point[0] == 4 and len(point) == 65, point.hex()
    return {"kty": "EC", "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:]),
            "d": b64url(d)}


class KeyCliTestCase(CliTestCase):

    def key(self, *args):
        return self.ok("key", *args)

    def path(self, name):
        return os.path.join(self.srv.root, name)

    def assert_public_only(self, bundle):
        for member in PRIVATE_MEMBERS:
            self.assertNotIn(member, bundle["key"], f"a private member '{member}' was printed")


class KeyLifecycleTests(KeyCliTestCase):

    def test_create_show_list_update_rotate_backup_delete_recover_purge_restore(self):
        port = self.srv.port
        rsa = self.key("create", *DEV, "--name", "life-rsa", "--kty", "RSA", "--size", "2048",
                       "--tags", "env=test")
        self.assertRegex(rsa["key"]["kid"],
                         r"^https://dev\.vault\.localhost:%d/keys/life-rsa/[0-9a-f]{32}$" % port)
        self.assertEqual(rsa["key"]["kty"], "RSA")
        self.assertEqual(rsa["key"]["e"], "AQAB")
        self.assertEqual(len(base64.urlsafe_b64decode(rsa["key"]["n"] + "==")), 256)
        self.assertEqual(rsa["key"]["key_ops"], RSA_DEFAULT_OPS)
        self.assertEqual(rsa["tags"], {"env": "test"})
        self.assertTrue(rsa["attributes"]["enabled"])
        self.assert_public_only(rsa)

        ec = self.key("create", *DEV, "--name", "life-ec", "--kty", "EC", "--curve", "P-384",
                      "--ops", "sign", "verify", "--disabled", "true",
                      "--expires", "2030-01-01T00:00:00Z", "--not-before", "1577836800")
        self.assertEqual((ec["key"]["kty"], ec["key"]["crv"]), ("EC", "P-384"))
        self.assertEqual(ec["key"]["key_ops"], ["sign", "verify"])
        self.assertFalse(ec["attributes"]["enabled"])
        self.assertEqual(ec["attributes"]["exp"], 1893456000)
        self.assertEqual(ec["attributes"]["nbf"], 1577836800)
        self.assert_public_only(ec)

        # show: the latest, one version, or a full id; a disabled key still shows.
        first_kid = rsa["key"]["kid"]
        first_version = first_kid.rsplit("/", 1)[1]
        self.assertEqual(self.key("show", *DEV, "--name", "life-rsa")["key"], rsa["key"])
        self.assertEqual(self.key("show", *DEV, "-n", "life-rsa", "--version", first_version)
                         ["key"]["kid"], first_kid)
        self.assertEqual(self.key("show", "--id", first_kid)["key"]["n"], rsa["key"]["n"])
        self.assertFalse(self.key("show", *DEV, "--name", "life-ec")["attributes"]["enabled"])

        listed = {i["kid"] for i in self.key("list", *DEV)}
        base = f"https://dev.vault.localhost:{port}/keys/"
        self.assertTrue({base + "life-rsa", base + "life-ec"} <= listed, listed)

        # rotate: a new version with new material and the same settings.
        rotated = self.key("rotate", *DEV, "--name", "life-rsa")
        self.assertNotEqual(rotated["key"]["kid"], first_kid)
        self.assertNotEqual(rotated["key"]["n"], rsa["key"]["n"])
        self.assertEqual(rotated["key"]["key_ops"], RSA_DEFAULT_OPS)
        versions = self.key("list-versions", *DEV, "--name", "life-rsa", "--maxresults", "1")
        self.assertEqual(sorted(v["kid"] for v in versions),
                         sorted([first_kid, rotated["key"]["kid"]]))

        updated = self.key("set-attributes", *DEV, "--name", "life-rsa", "--ops", "sign",
                           "verify", "--tags", "env=prod", "--expires", "2031-01-01T00:00:00Z")
        self.assertEqual(updated["key"]["key_ops"], ["sign", "verify"])
        self.assertEqual(updated["tags"], {"env": "prod"})
        self.assertEqual(updated["attributes"]["exp"], 1924992000)
        enabled = self.key("set-attributes", *DEV, "--name", "life-ec", "--enabled", "true")
        self.assertTrue(enabled["attributes"]["enabled"])
        self.assertEqual(enabled["key"]["key_ops"], ["sign", "verify"], "ops were not kept")

        backup = self.path("life-rsa.backup")
        self.assertIsNone(self.key("backup", *DEV, "--name", "life-rsa", "--file", backup))
        self.assertGreater(os.path.getsize(backup), 0)

        deleted = self.key("delete", *DEV, "--name", "life-rsa")
        self.assertEqual(deleted["recoveryId"],
                         f"https://dev.vault.localhost:{port}/deletedkeys/life-rsa")
        self.fails("KeyNotFound", "key", "show", *DEV, "--name", "life-rsa")
        self.assertIn("life-rsa", [i["kid"].rsplit("/", 1)[1]
                                   for i in self.key("list-deleted", *DEV)])
        self.assertEqual(self.key("show-deleted", *DEV, "--name", "life-rsa")["recoveryId"],
                         deleted["recoveryId"])
        self.assertEqual(self.key("recover", *DEV, "--name", "life-rsa")["key"]["kid"],
                         rotated["key"]["kid"])
        self.assertEqual(self.key("show", *DEV, "--name", "life-rsa")["tags"], {"env": "prod"})

        self.key("delete", *DEV, "--name", "life-rsa")
        self.assertIsNone(self.key("purge", *DEV, "--name", "life-rsa"))
        self.fails("KeyNotFound", "key", "show-deleted", *DEV, "--name", "life-rsa")

        restored = self.key("restore", *DEV, "--file", backup)
        self.assertEqual(restored["key"]["kid"], rotated["key"]["kid"])
        self.assertEqual(sorted(v["kid"] for v in
                                self.key("list-versions", *DEV, "--name", "life-rsa")),
                         sorted([first_kid, rotated["key"]["kid"]]))


class KeyRotationPolicyTests(KeyCliTestCase):

    def test_show_the_default_then_update_from_text_and_from_a_file(self):
        self.key("create", *DEV, "--name", "pol-key", "--kty", "EC")
        default = self.key("rotation-policy", "show", *DEV, "--name", "pol-key")
        self.assertEqual(default["lifetimeActions"],
                         [{"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}])
        policy = {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"},
                                       "action": {"type": "Rotate"}}],
                  "attributes": {"expiryTime": "P1Y"}}
        stored = self.key("rotation-policy", "update", *DEV, "--name", "pol-key",
                          "--value", json.dumps(policy))
        self.assertIn({"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
                      stored["lifetimeActions"])
        self.assertEqual(stored["attributes"]["expiryTime"], "P1Y")
        self.assertEqual(self.key("rotation-policy", "show", *DEV, "--name", "pol-key"), stored)
        path = self.path("policy.json")
        policy["attributes"]["expiryTime"] = "P2Y"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(policy, f)
        for value in (path, "@" + path):
            again = self.key("rotation-policy", "update", *DEV, "--name", "pol-key",
                             "--value", value)
            self.assertEqual(again["attributes"]["expiryTime"], "P2Y")
        # The vault's checks hold; what is not JSON is refused before anything is sent.
        bad = {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1D"},
                                    "action": {"type": "Rotate"}}]}
        self.fails("BadParameter", "key", "rotation-policy", "update", *DEV, "--name", "pol-key",
                   "--value", json.dumps(bad))
        self.usage_error("key", "rotation-policy", "update", *DEV, "--name", "pol-key",
                         "--value", "{not json")
        self.fails("KeyNotFound", "key", "rotation-policy", "show", *DEV, "--name", "no-such-key")
        self.assertEqual(self.key("rotation-policy", "show", *DEV, "--name", "pol-key")
                         ["attributes"]["expiryTime"], "P2Y")


class KeyImportTests(KeyCliTestCase):

    def test_import_an_openssl_rsa_pem_sends_the_key_and_prints_only_its_public_half(self):
        pem = self.path("import-rsa.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem)
        rc, out, err = self.srv.cli("key", "import", *DEV, "--name", "pem-rsa", "--pem-file", pem,
                                    "--ops", "sign", "verify", "--tags", "src=pem")
        self.assertEqual(rc, 0, err)
        imported = json.loads(out)
        modulus = openssl("rsa", "-in", pem, "-noout", "-modulus").decode()
        modulus = bytes.fromhex(modulus.strip().split("=", 1)[1])
        self.assertEqual(base64.urlsafe_b64decode(imported["key"]["n"] + "=="), modulus)
        self.assertEqual(imported["key"]["key_ops"], ["sign", "verify"])
        self.assertEqual(imported["tags"], {"src": "pem"})
        self.assert_public_only(imported)
        # Nothing the command printed carries the private key.
        text = openssl("pkey", "-in", pem, "-noout", "-text").decode()
        exponent = re.search(r"privateExponent:\s*\n((?:\s+[0-9a-f:]+\n)+)", text).group(1)
        d = bytes.fromhex(re.sub(r"[\s:]", "", exponent)).lstrip(b"\0")
        for encoded in (b64url(d), b64(d), d.hex()):
            self.assertNotIn(encoded[:24], out + err)

        # The vault holds the same key: its public key is the file's.
        pub = self.path("import-rsa.pub.pem")
        self.assertIsNone(self.key("download", *DEV, "--name", "pem-rsa", "--file", pub))
        with open(pub, "rb") as f:
            self.assertEqual(f.read(), openssl("pkey", "-in", pem, "-pubout"))

    def test_import_an_ec_pem_and_a_private_jwk_file(self):
        pem = self.path("import-ec.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem)
        from_pem = self.key("import", *DEV, "--name", "pem-ec", "--pem-file", pem)
        jwk = ec_private_jwk(pem)
        self.assertEqual((from_pem["key"]["crv"], from_pem["key"]["x"], from_pem["key"]["y"]),
                         ("P-256", jwk["x"], jwk["y"]))
        self.assert_public_only(from_pem)

        jwk_path = self.path("import-ec.jwk")
        with open(jwk_path, "w") as f:
            json.dump(dict(jwk, key_ops=["verify"]), f)
        from_jwk = self.key("import", *DEV, "--name", "jwk-ec", "--jwk-file", jwk_path,
                            "--disabled", "true")
        self.assertEqual((from_jwk["key"]["x"], from_jwk["key"]["y"]), (jwk["x"], jwk["y"]))
        self.assertEqual(from_jwk["key"]["key_ops"], ["verify"], "the file's key_ops were lost")
        self.assertFalse(from_jwk["attributes"]["enabled"])
        self.assert_public_only(from_jwk)

        # A JWK that asks for an HSM keeps asking: the standard vault refuses it.
        with open(jwk_path, "w") as f:
            json.dump(dict(jwk, kty="EC-HSM"), f)
        err = self.fails("BadParameter", "key", "import", *DEV, "--name", "jwk-hsm",
                         "--jwk-file", jwk_path)
        self.assertIn("not allowed on standard vault", err)

    def test_bad_key_files_are_refused_before_anything_is_stored(self):
        public = self.path("public-only.pem")
        key = self.path("to-make-public.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        with open(public, "wb") as f:
            f.write(openssl("pkey", "-in", key, "-pubout"))
        garbage = self.path("garbage.jwk")
        with open(garbage, "w") as f:
            f.write('{"kty": "EC", "crv": "P-256", "x": "AAAA"')
        small = self.path("small-rsa.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", small)
        for flag, path, says in (("--pem-file", public, "not an unencrypted PEM private key"),
                                 ("--jwk-file", garbage, "not a JSON object"),
                                 ("--pem-file", small, "1024 bits")):
            err = self.fails("BadParameter", "key", "import", *DEV, "--name", "refused", flag,
                             path)
            self.assertIn("Import failed", err)
            self.assertIn(says, err)
        self.usage_error("key", "import", *DEV, "--name", "refused", "--pem-file", key,
                         "--jwk-file", garbage)
        self.usage_error("key", "import", *DEV, "--name", "refused")
        self.usage_error("key", "import", *DEV, "--name", "refused", "--pem-file",
                         self.path("no-such-file.pem"))
        self.fails("KeyNotFound", "key", "show", *DEV, "--name", "refused")


class KeyCryptoTests(KeyCliTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer_json("keyvault", "key", "create", *DEV, "--name", "ops-rsa", "--kty", "RSA")
        cls.coffer_json("keyvault", "key", "create", *DEV, "--name", "ops-ec", "--kty", "EC")

    def test_a_cli_rs256_signature_verifies_with_openssl_and_the_downloaded_pem(self):
        data = b"signed by the vault, checked by openssl"
        digest = hashlib.sha256(data).digest()
        signed = self.key("sign", *DEV, "--name", "ops-rsa", "--algorithm", "RS256",
                          "--digest", b64(digest))
        self.assertEqual(signed["algorithm"], "RS256")
        self.assertRegex(signed["keyId"], r"/keys/ops-rsa/[0-9a-f]{32}$")
        signature = base64.b64decode(signed["signature"])
        self.assertEqual(len(signature), 256)

        pem = self.path("ops-rsa.pem")
        self.assertIsNone(self.key("download", *DEV, "--name", "ops-rsa", "--file", pem,
                                   "--encoding", "PEM"))
        sig_path, digest_path = self.path("ops-rsa.sig"), self.path("ops-rsa.digest")
        with open(sig_path, "wb") as f:
            f.write(signature)
        with open(digest_path, "wb") as f:
            f.write(digest)
        out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pem, "-in", digest_path,
                      "-sigfile", sig_path, "-pkeyopt", "digest:sha256")
        self.assertIn(b"Signature Verified Successfully", out)

        # The same with the CLI's verify; a changed signature is isValid false, not an error.
        ok = self.key("verify", *DEV, "--name", "ops-rsa", "-a", "RS256", "--digest", b64(digest),
                      "--signature", signed["signature"])
        self.assertEqual((ok["isValid"], ok["algorithm"]), (True, "RS256"))
        bad = bytes([signature[0] ^ 1]) + signature[1:]
        self.assertFalse(self.key("verify", "--id", signed["keyId"], "-a", "RS256",
                                  "--digest", b64(digest), "--signature", b64(bad))["isValid"])

        # DER is the same SubjectPublicKeyInfo; an existing file is never overwritten.
        der = self.path("ops-rsa.der")
        self.key("download", *DEV, "--name", "ops-rsa", "--file", der, "--encoding", "DER")
        with open(der, "rb") as f:
            self.assertEqual(f.read(), openssl("pkey", "-pubin", "-in", pem, "-outform", "DER"))
        with open(pem, "rb") as f:
            before = f.read()
        rc, out, err = self.srv.cli("key", "download", *DEV, "--name", "ops-rsa", "--file", pem)
        self.assertEqual((rc, out), (1, ""), err)
        self.assertTrue(err.startswith("ERROR: File or directory named"), err)
        with open(pem, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_ec_signature_and_rsa_encryption_round_trips(self):
        digest = hashlib.sha256(b"ec").digest()
        signed = self.key("sign", *DEV, "-n", "ops-ec", "-a", "ES256", "--digest", b64url(digest))
        self.assertEqual(len(base64.b64decode(signed["signature"])), 64)
        self.assertTrue(self.key("verify", *DEV, "-n", "ops-ec", "-a", "ES256", "--digest",
                                 b64(digest), "--signature", signed["signature"])["isValid"])

        # openssl encrypts with the downloaded public key (RSA-OAEP: SHA-1); the vault decrypts.
        pem = self.path("ops-rsa-enc.pem")
        self.key("download", *DEV, "--name", "ops-rsa", "--file", pem)
        ciphertext = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", pem, "-pkeyopt",
                             "rsa_padding_mode:oaep", data=b"from openssl")
        plain = self.key("decrypt", *DEV, "-n", "ops-rsa", "-a", "RSA-OAEP", "--value",
                         b64(ciphertext), "--data-type", "plaintext")
        self.assertEqual(plain["result"], "from openssl")
        self.assertEqual(plain["algorithm"], "RSA-OAEP")

        for alg in ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5"):
            enc = self.key("encrypt", *DEV, "-n", "ops-rsa", "-a", alg, "--value", "aGVsbG8=")
            self.assertEqual((enc["algorithm"], enc["iv"], enc["tag"], enc["aad"]),
                             (alg, None, None, None))
            self.assertRegex(enc["kid"], r"/keys/ops-rsa/[0-9a-f]{32}$")
            dec = self.key("decrypt", "--id", enc["kid"], "-a", alg, "--value", enc["result"])
            self.assertEqual(dec["result"], "aGVsbG8=", alg)
        text = self.key("encrypt", *DEV, "-n", "ops-rsa", "-a", "RSA-OAEP-256", "--value",
                        "plain words", "--data-type", "plaintext")
        self.assertEqual(self.key("decrypt", *DEV, "-n", "ops-rsa", "-a", "RSA-OAEP-256",
                                  "--value", text["result"], "--data-type", "plaintext")
                         ["result"], "plain words")


class KeyBadInputTests(KeyCliTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer_json("keyvault", "key", "create", *DEV, "--name", "bad-rsa")
        cls.coffer_json("keyvault", "key", "create", *DEV, "--name", "bad-ec", "--kty", "EC")
        cls.coffer_json("keyvault", "key", "create", *DEV, "--name", "bad-enc-only",
                        "--ops", "encrypt", "decrypt")

    DIGEST = b64(hashlib.sha256(b"x").digest())

    def test_unknown_algorithm_is_a_usage_error_naming_the_flag(self):
        for verb, extra in (("sign", ("--digest", self.DIGEST)),
                            ("encrypt", ("--value", "aGVsbG8="))):
            err = self.usage_error("key", verb, *DEV, "-n", "bad-rsa", "--algorithm", "RS257",
                                   *extra)
            self.assertIn("--algorithm", err)
            self.assertIn("RS257", err)

    def test_bad_base64_is_a_usage_error_and_sends_nothing(self):
        err = self.usage_error("key", "sign", *DEV, "-n", "bad-rsa", "-a", "RS256",
                               "--digest", "not base64!")
        self.assertIn("--digest", err)
        self.assertIn("not base64", err)
        err = self.usage_error("key", "decrypt", *DEV, "-n", "bad-rsa", "-a", "RSA-OAEP",
                               "--value", "%%%")
        self.assertIn("--value", err)
        self.usage_error("key", "verify", *DEV, "-n", "bad-rsa", "-a", "RS256",
                         "--digest", self.DIGEST, "--signature", "@@")

    def test_a_missing_key_is_key_not_found(self):
        for args in (("sign", "-a", "RS256", "--digest", self.DIGEST),
                     ("show",), ("delete",), ("rotate",),
                     ("download", "--file", self.path("never-written.pem"))):
            err = self.fails("KeyNotFound", "key", args[0], *DEV, "-n", "no-such-key", *args[1:])
            self.assertIn("no-such-key", err)
        self.assertFalse(os.path.exists(self.path("never-written.pem")))

    def test_wrong_key_type_and_wrong_key_for_the_operation_are_refused(self):
        err = self.usage_error("key", "create", *DEV, "-n", "dsa-key", "--kty", "DSA")
        self.assertIn("--kty", err)
        self.usage_error("key", "create", *DEV, "-n", "odd-curve", "--kty", "EC",
                         "--curve", "P-192")
        self.fails("BadParameter", "key", "create", *DEV, "-n", "rsa-with-curve", "--kty", "RSA",
                   "--curve", "P-256")
        self.fails("BadParameter", "key", "create", *DEV, "-n", "rsa-1024", "--size", "1024")
        err = self.fails("BadParameter", "key", "create", *DEV, "-n", "rsa-hsm", "--kty",
                         "RSA-HSM")
        self.assertIn("not allowed on standard vault", err)
        # An EC key cannot encrypt: its key_ops (sign, verify) refuse it first.
        err = self.fails("Forbidden", "key", "encrypt", *DEV, "-n", "bad-ec", "-a", "RSA-OAEP",
                         "--value", "aGVsbG8=")
        self.assertIn("encrypt", err)
        self.fails("BadParameter", "key", "sign", *DEV, "-n", "bad-ec", "-a", "RS256",
                   "--digest", self.DIGEST)
        self.fails("BadParameter", "key", "sign", *DEV, "-n", "bad-rsa", "-a", "RS256",
                   "--digest", b64(b"short"))
        self.fails("Forbidden", "key", "sign", *DEV, "-n", "bad-enc-only", "-a", "RS256",
                   "--digest", self.DIGEST)
        self.usage_error("key", "show", "--id", "https://dev.vault.localhost/secrets/bad-rsa")
        for name in ("dsa-key", "odd-curve", "rsa-with-curve", "rsa-1024", "rsa-hsm"):
            self.fails("KeyNotFound", "key", "show", *DEV, "-n", name)
        # Nothing was lost: the keys the refusals named still work.
        self.assertTrue(self.key("verify", *DEV, "-n", "bad-rsa", "-a", "RS256", "--digest",
                                 self.DIGEST, "--signature",
                                 self.key("sign", *DEV, "-n", "bad-rsa", "-a", "RS256",
                                          "--digest", self.DIGEST)["signature"])["isValid"])
        self.assertEqual(self.key("show", *DEV, "-n", "bad-ec")["key"]["kty"], "EC")
