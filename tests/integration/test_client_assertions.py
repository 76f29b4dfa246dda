"""Client assertions (certificate credentials) at the token endpoint: the good ones get a token,
every kind of bad one gets 401 invalid_client (or 400) and nothing is issued; and the Graph-shaped
addKey/removeKey calls refuse bad certificates."""

import base64
import hashlib
import json
import os
import subprocess
import time
import urllib.parse
import uuid

from harness import ServerTestCase, b64url, rs256_sign

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, check=True).stdout


def new_cert(directory, name, days=2):
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", str(days), "-subj", "/CN=" + name)
    der = openssl("x509", "-in", crt, "-outform", "DER")
    return key, crt, der


def ps256_sign(key_path, data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                           "-sigopt", "rsa_pss_saltlen:32", "-sign", key_path], input=data,
                          capture_output=True, check=True).stdout


class ClientAssertionTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = cls.srv
        mgmt = srv.token(srv.mgmt_resource)
        r = srv.request("POST", "/v1.0/servicePrincipals", json.dumps({"displayName": "cert-app"}),
                        host="localhost", token=mgmt)
        cls.app = r.json()["appId"]
        cls.oid = r.json()["id"]
        cls.dir = os.path.dirname(srv.ca_path)
        cls.key, cls.crt, cls.der = new_cert(cls.dir, "cert-app")
        r = srv.request("POST", f"/v1.0/servicePrincipals/{cls.oid}/addKey", json.dumps(
            {"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify",
                               "key": base64.b64encode(cls.der).decode()}}),
            host="localhost", token=mgmt)
        assert r.status == 200, r
        cls.key_id = r.json()["keyId"]
        cls.audience = f"https://localhost:{srv.port}/{srv.tenant}/oauth2/v2.0/token"

    def assertion(self, header=None, claims=None, key=None, sign=None, drop=()):
        now = int(time.time())
        h = {"alg": "RS256", "typ": "JWT",
             "x5t": b64url(hashlib.sha1(self.der).digest())}
        h.update(header or {})
        c = {"aud": self.audience, "iss": self.app, "sub": self.app, "jti": str(uuid.uuid4()),
             "nbf": now, "iat": now, "exp": now + 600}
        c.update(claims or {})
        for k in drop:
            c.pop(k, None)
        signing_input = (b64url(json.dumps(h).encode()) + "." +
                         b64url(json.dumps(c).encode())).encode()
        signer = sign or (ps256_sign if h.get("alg") == "PS256" else rs256_sign)
        return signing_input.decode() + "." + b64url(signer(key or self.key, signing_input))

    def post(self, assertion, client_id=None, assertion_type=JWT_BEARER):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": client_id or self.app,
            "scope": self.srv.vault_resource + "/.default", "client_assertion": assertion,
            "client_assertion_type": assertion_type})
        return self.srv.request("POST", f"/{self.srv.tenant}/oauth2/v2.0/token", form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"},
                                host="localhost", auth=False)

    def assertRefused(self, r, status=401, error="invalid_client"):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json()["error"], error, r)
        self.assertNotIn("access_token", r.json())

    def test_rs256_with_x5t_and_ps256_with_x5t_s256_get_tokens(self):
        r = self.post(self.assertion())
        self.assertEqual(r.status, 200, r)
        self.assertIn("access_token", r.json())
        ps = self.assertion({"alg": "PS256", "x5t#S256": b64url(hashlib.sha256(self.der).digest())})
        self.assertEqual(self.post(ps).status, 200)
        # MSAL for Python sends fractional NumericDates and a trailing newline.
        now = time.time()
        frac = self.assertion(claims={"nbf": now, "iat": now, "exp": now + 600})
        self.assertEqual(self.post(frac + "\n").status, 200)

    def test_a_replayed_assertion_is_refused(self):
        a = self.assertion()
        self.assertEqual(self.post(a).status, 200)
        self.assertRefused(self.post(a))

    def test_each_broken_assertion_is_refused(self):
        other_key, _, other_der = new_cert(self.dir, "stranger")
        now = int(time.time())
        cases = {
            "wrong audience": self.assertion(claims={"aud": "https://elsewhere/token"}),
            "expired": self.assertion(claims={"exp": now - 400, "nbf": now - 1000}),
            "not yet valid": self.assertion(claims={"nbf": now + 3600, "exp": now + 4000}),
            "lives a week": self.assertion(claims={"exp": now + 7 * 86400}),
            "no exp": self.assertion(drop=("exp",)),
            "no jti": self.assertion(drop=("jti",)),
            "iss is another app": self.assertion(claims={"iss": "someone-else"}),
            "sub is another app": self.assertion(claims={"sub": "someone-else"}),
            "signed by another key": self.assertion(key=other_key),
            "unregistered certificate": self.assertion(
                {"x5t": b64url(hashlib.sha1(other_der).digest())}, key=other_key),
            "no thumbprint": self.assertion({"x5t": None}),
            "alg none": self.assertion({"alg": "none"}, sign=lambda k, d: b""),
            "alg HS256": self.assertion({"alg": "HS256"}, sign=lambda k, d: b"x" * 32),
            "PS256 signature labelled RS256": self.assertion(sign=ps256_sign),
            "garbage": "not.a.jwt",
            "two parts": "abc.def",
            "huge": "a" * 20000,
        }
        for name, a in cases.items():
            with self.subTest(name):
                self.assertRefused(self.post(a))
        self.assertRefused(self.post(self.assertion(), client_id=str(uuid.uuid4())))
        self.assertRefused(self.post(self.assertion(), assertion_type="password"), 400,
                           "invalid_request")

    def test_a_removed_certificate_stops_working(self):
        srv = self.srv
        mgmt = srv.token(srv.mgmt_resource)
        key, _, der = new_cert(self.dir, "short")
        r = srv.request("POST", f"/v1.0/servicePrincipals/{self.oid}/addKey", json.dumps(
            {"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify",
                               "key": base64.b64encode(der).decode()}}), host="localhost",
            token=mgmt)
        self.assertEqual(r.status, 200, r)
        x5t = {"x5t": b64url(hashlib.sha1(der).digest())}
        self.assertEqual(self.post(self.assertion(x5t, key=key)).status, 200)
        r = srv.request("POST", f"/v1.0/servicePrincipals/{self.oid}/removeKey",
                        json.dumps({"keyId": r.json()["keyId"]}), host="localhost", token=mgmt)
        self.assertEqual(r.status, 204, r)
        self.assertRefused(self.post(self.assertion(x5t, key=key)))

    def test_add_key_refuses_bad_certificates(self):
        srv = self.srv
        mgmt = srv.token(srv.mgmt_resource)
        path = f"/v1.0/servicePrincipals/{self.oid}/addKey"
        good = base64.b64encode(self.der).decode()
        for body, status in (
                ({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify",
                                    "key": "bm90IGEgY2VydA=="}}, 400),
                ({"keyCredential": {"type": "Symmetric", "usage": "Verify", "key": good}}, 400),
                ({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Sign", "key": good}},
                 400),
                ({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify"}}, 400),
                ({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify",
                                    "key": good}}, 409)):
            r = srv.request("POST", path, json.dumps(body), host="localhost", token=mgmt)
            self.assertEqual(r.status, status, (body, r))
        r = srv.request("POST", f"/v1.0/servicePrincipals/{self.oid}/removeKey",
                        json.dumps({"keyId": "nope"}), host="localhost", token=mgmt)
        self.assertEqual(r.status, 404, r)
        shown = srv.request("GET", f"/v1.0/servicePrincipals/{self.oid}", host="localhost",
                            token=mgmt).json()
        self.assertEqual([k["keyId"] for k in shown["keyCredentials"]], [self.key_id])
        self.assertEqual(shown["keyCredentials"][0]["customKeyIdentifier"],
                         hashlib.sha1(self.der).hexdigest().upper())
