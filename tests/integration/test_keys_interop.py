"""Key Vault keys interoperate with OpenSSL's command line.

Signatures Coffer makes (RS256, PS256, ES256/384/512, ES256K) verify with `openssl pkeyutl -verify`
on the public key the keys API returns; data OpenSSL encrypts with that public key (RSA-OAEP,
RSA-OAEP-256, RSA1_5) decrypts in Coffer; and a key Coffer wraps unwraps again after the wrapping key
was backed up, deleted, purged and restored.

The public key is turned into a SubjectPublicKeyInfo PEM here with a few lines of DER, so that
nothing of Coffer's (nor a crypto library) stands between its JWK and OpenSSL.
"""

import base64
import hashlib
import os
import subprocess
import tempfile

import harness


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- a minimal DER encoder for SubjectPublicKeyInfo ------------------------------------------

def der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def der_int(value):
    return der(0x02, b"\x00" + value if value[0] & 0x80 else value)


def der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return der(0x06, body)


SEQ, BITSTRING, NULL = 0x30, 0x03, b"\x05\x00"
CURVE_OIDS = {"P-256": "1.2.840.10045.3.1.7", "P-384": "1.3.132.0.34", "P-521": "1.3.132.0.35",
              "P-256K": "1.3.132.0.10"}


def spki_pem(jwk):
    """The JWK's public key as a PEM SubjectPublicKeyInfo."""
    if jwk["kty"].startswith("RSA"):
        alg = der(SEQ, der_oid("1.2.840.113549.1.1.1") + NULL)
        key = der(SEQ, der_int(unb64url(jwk["n"])) + der_int(unb64url(jwk["e"])))
    else:
        alg = der(SEQ, der_oid("1.2.840.10045.2.1") + der_oid(CURVE_OIDS[jwk["crv"]]))
        key = b"\x04" + unb64url(jwk["x"]) + unb64url(jwk["y"])
    body = base64.encodebytes(der(SEQ, alg + der(BITSTRING, b"\x00" + key))).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def raw_to_der_signature(sig):
    half = len(sig) // 2
    r, s = (x.lstrip(b"\x00") or b"\x00" for x in (sig[:half], sig[half:]))
    return der(SEQ, der_int(r) + der_int(s))


class KeysInteropTest(harness.ServerTestCase):
    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-keys-interop-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp], check=False)

    def path(self, name, data=None):
        p = os.path.join(self.tmp, name)
        if data is not None:
            with open(p, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
        return p

    def openssl(self, *args, input_bytes=None):
        p = subprocess.run(["openssl"] + list(args), input=input_bytes, capture_output=True, timeout=60)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def ok(self, resp, status=200):
        self.assertEqual(resp.status, status, repr(resp))
        return resp.json() if resp.body else None

    def create(self, name, **params):
        return self.ok(self.srv.kv("POST", f"/keys/{name}/create", params))

    def op(self, kid, op, body):
        path = kid.split("://", 1)[1].split("/", 1)[1]  # keys/<name>/<version>
        return self.ok(self.srv.kv("POST", f"/{path}/{op}", body))

    def public_pem(self, bundle, name):
        pem = self.path(name, spki_pem(bundle["key"]))
        rc, out, err = self.openssl("pkey", "-pubin", "-in", pem, "-noout")
        self.assertEqual(rc, 0, f"OpenSSL does not read the public key: {err}")
        return pem

    def verify_with_openssl(self, pem, digest, signature, *opts):
        rc, out, err = self.openssl("pkeyutl", "-verify", "-pubin", "-inkey", pem,
                                    "-in", self.path("digest.bin", digest),
                                    "-sigfile", self.path("sig.bin", signature), *opts)
        return rc == 0 and b"Signature Verified Successfully" in out, err

    def test_rsa_signatures_verify_with_openssl(self):
        key = self.create("interop-rsa", kty="RSA", key_size=2048)
        pem = self.public_pem(key, "rsa.pem")
        cases = (("RS256", hashlib.sha256, ["-pkeyopt", "digest:sha256"]),
                 ("RS384", hashlib.sha384, ["-pkeyopt", "digest:sha384"]),
                 ("RS512", hashlib.sha512, ["-pkeyopt", "digest:sha512"]),
                 ("PS256", hashlib.sha256, ["-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss",
                                            "-pkeyopt", "rsa_pss_saltlen:32"]),
                 ("PS512", hashlib.sha512, ["-pkeyopt", "digest:sha512", "-pkeyopt", "rsa_padding_mode:pss",
                                            "-pkeyopt", "rsa_pss_saltlen:64"]))
        for alg, hash_fn, opts in cases:
            with self.subTest(alg=alg):
                digest = hash_fn(f"signed by coffer with {alg}".encode()).digest()
                sig = unb64url(self.op(key["key"]["kid"], "sign", {"alg": alg, "value": b64url(digest)})["value"])
                self.assertEqual(len(sig), 256)
                verified, err = self.verify_with_openssl(pem, digest, sig, *opts)
                self.assertTrue(verified, f"openssl refused Coffer's {alg} signature: {err}")
                # The check can fail: another digest does not verify.
                other = hash_fn(b"something else").digest()
                verified, _ = self.verify_with_openssl(pem, other, sig, *opts)
                self.assertFalse(verified, f"openssl verified {alg} over the wrong digest")

    def test_ec_signatures_verify_with_openssl_after_r_s_to_der(self):
        cases = (("P-256", "ES256", hashlib.sha256, 64), ("P-384", "ES384", hashlib.sha384, 96),
                 ("P-521", "ES512", hashlib.sha512, 132), ("P-256K", "ES256K", hashlib.sha256, 64))
        for crv, alg, hash_fn, length in cases:
            with self.subTest(alg=alg):
                key = self.create(f"interop-{alg.lower()}", kty="EC", crv=crv)
                pem = self.public_pem(key, f"{alg}.pem")
                digest = hash_fn(f"signed by coffer with {alg}".encode()).digest()
                sig = unb64url(self.op(key["key"]["kid"], "sign", {"alg": alg, "value": b64url(digest)})["value"])
                self.assertEqual(len(sig), length, "raw r||s, each half fixed length")
                verified, err = self.verify_with_openssl(pem, digest, raw_to_der_signature(sig))
                self.assertTrue(verified, f"openssl refused Coffer's {alg} signature: {err}")
                verified, _ = self.verify_with_openssl(pem, hash_fn(b"other").digest(), raw_to_der_signature(sig))
                self.assertFalse(verified)

    def test_openssl_encrypts_coffer_decrypts(self):
        key = self.create("interop-decrypt", kty="RSA", key_size=3072)
        pem = self.public_pem(key, "dec.pem")
        cases = (("RSA-OAEP", ["-pkeyopt", "rsa_padding_mode:oaep"]),
                 ("RSA-OAEP-256", ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                                   "-pkeyopt", "rsa_mgf1_md:sha256"]),
                 ("RSA1_5", ["-pkeyopt", "rsa_padding_mode:pkcs1"]))
        for alg, opts in cases:
            with self.subTest(alg=alg):
                plaintext = f"openssl encrypted this for {alg}".encode()
                rc, ct, err = self.openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", pem, *opts,
                                           input_bytes=plaintext)
                self.assertEqual(rc, 0, err)
                self.assertEqual(len(ct), 384)
                for op in ("decrypt", "unwrapkey"):
                    got = self.op(key["key"]["kid"], op, {"alg": alg, "value": b64url(ct)})
                    self.assertEqual(unb64url(got["value"]), plaintext, f"{op} {alg}")

    def test_a_wrapped_key_unwraps_after_backup_delete_purge_and_restore(self):
        name = "interop-kek"
        kek = self.create(name, kty="RSA", key_size=2048, key_ops=["wrapKey", "unwrapKey"])
        dek = os.urandom(32)
        wrapped = self.op(kek["key"]["kid"], "wrapkey", {"alg": "RSA-OAEP-256", "value": b64url(dek)})["value"]
        backup = self.ok(self.srv.kv("POST", f"/keys/{name}/backup"))["value"]
        self.ok(self.srv.kv("DELETE", f"/keys/{name}"))
        self.ok(self.srv.kv("DELETE", f"/deletedkeys/{name}"), 204)
        self.assertEqual(self.srv.kv("GET", f"/keys/{name}/").status, 404)
        self.assertEqual(self.srv.kv("GET", f"/deletedkeys/{name}").status, 404)
        restored = self.ok(self.srv.kv("POST", "/keys/restore", {"value": backup}))
        self.assertEqual(restored["key"]["kid"], kek["key"]["kid"])
        self.assertEqual(restored["key"]["n"], kek["key"]["n"])
        got = self.op(kek["key"]["kid"], "unwrapkey", {"alg": "RSA-OAEP-256", "value": wrapped})
        self.assertEqual(unb64url(got["value"]), dek)
        # The versionless path (an empty version segment) reaches the same key.
        got = self.ok(self.srv.kv("POST", f"/keys/{name}//unwrapkey", {"alg": "RSA-OAEP-256", "value": wrapped}))
        self.assertEqual(unb64url(got["value"]), dek)


if __name__ == "__main__":
    import unittest
    unittest.main()
