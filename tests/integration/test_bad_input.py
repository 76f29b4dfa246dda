"""Hostile and malformed input against a real `coffer server --dev`.

Every rejection must be a Key Vault-shaped error body {"error":{"code","message"}} with the right
status, must leave stored state exactly as it was, and the server must keep serving afterwards.
"""

import hashlib
import hmac
import json
import os
import ssl
import subprocess
import time
import uuid

from harness import (KV_API, ServerTestCase, b64url, jwt_parts, kid_for_key, new_rsa_key,
                     start_server, wait_until)

VAULTS = "/providers/Microsoft.KeyVault/vaults"


def rg_vault(name, rg="rg-bad"):
    return f"/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"


# Bounds how long a test reads from a raw socket for an answer or a close that should come.  It
# is never a performance claim: a test that shows the server *drops* a stalled client reads for
# this long with the server's read deadline at 2 s (TransportTests), far below it, and nothing
# else would end such a connection before the 120 s idle timeout.
WAIT_S = 30.0


def recv_all(sock, timeout, until_response=False):
    """Reads until EOF, error or timeout -- or, with until_response, until one whole response
    (head and Content-Length body) is in; returns (bytes, seconds, how it ended)."""
    sock.settimeout(timeout)
    data = b""
    t0 = time.monotonic()
    ended = "eof"
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if until_response and whole_response(data):
                ended = "response"
                break
    except TimeoutError:
        ended = "timeout"
    except OSError as e:  # reset, TLS errors: the server dropped the connection
        ended = f"error: {e!r}"
    return data, time.monotonic() - t0, ended


def whole_response(data):
    parsed = parse_raw_response(data)
    if parsed is None or b"\r\n\r\n" not in data:
        return False
    length = parsed[1].get("content-length")
    return length is not None and length.isdigit() and len(parsed[2]) >= int(length)


def parse_raw_response(data):
    """(status, headers, body) from raw HTTP/1.1 response bytes, or None."""
    if not data.startswith(b"HTTP/1."):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class SecretStateMixin:
    """Snapshots of stored state, to prove that rejected writes change nothing."""

    def snapshot(self, name, vault="dev"):
        latest = self.srv.kv("GET", f"/secrets/{name}", vault=vault)
        versions = self.srv.kv("GET", f"/secrets/{name}/versions", vault=vault)
        listed = self.srv.kv("GET", "/secrets", vault=vault)
        return {
            "latest": (latest.status, latest.body),
            "versions": (versions.status, versions.body),
            "listed": sorted(i["id"] for i in listed.json()["value"]),
        }

    def assertUnchanged(self, name, before, msg=""):
        self.assertEqual(self.snapshot(name), before, f"state changed after a rejected write {msg}")


class UnauthenticatedRequestTests(ServerTestCase):

    def challenge(self):
        return (f'Bearer authorization="https://localhost:{self.srv.port}/{self.srv.tenant}", '
                f'resource="https://vault.localhost:{self.srv.port}"')

    def test_request_without_token_gets_401_and_the_exact_bearer_challenge(self):
        r = self.srv.kv("GET", "/secrets", auth=False)
        self.assertErrorBody(r, 401, "Unauthorized")
        self.assertEqual(r.headers.get("www-authenticate"), self.challenge())
        self.assertServing()

    def test_unknown_path_without_token_gets_the_challenge_not_404(self):
        for path in ("/no/such/path", "/", "/secrets/x/y/z/w", "/keys/k?api-version=7.5"):
            with self.subTest(path=path):
                r = self.srv.request("GET", path, auth=False)
                self.assertErrorBody(r, 401, "Unauthorized")
                self.assertEqual(r.headers.get("www-authenticate"), self.challenge())
        self.assertServing()

    def test_bodiless_put_probe_gets_the_challenge(self):
        r = self.srv.request("PUT", f"/secrets/probe?api-version={KV_API}", b"",
                             headers={"Content-Type": "application/json"}, auth=False)
        self.assertErrorBody(r, 401, "Unauthorized")
        self.assertEqual(r.headers.get("www-authenticate"), self.challenge())
        self.assertEqual(self.srv.kv("GET", "/secrets/probe").status, 404)

    def test_unauthenticated_put_announcing_a_body_is_answered_without_reading_it(self):
        for framing in ("Content-Length: 100000", "Transfer-Encoding: chunked"):
            with self.subTest(framing=framing):
                sock = self.srv.tls_socket()
                try:
                    sock.sendall((f"PUT /secrets/unread?api-version={KV_API} HTTP/1.1\r\n"
                                  f"Host: dev.vault.localhost:{self.srv.port}\r\n"
                                  "Content-Type: application/json\r\n"
                                  f"{framing}\r\n\r\n").encode())
                    # The body never comes: an answer within the server's read deadline (30 s
                    # here, longer than this wait) is one given without waiting for it.
                    data, _, _ = recv_all(sock, 20, until_response=True)
                finally:
                    sock.close()
                parsed = parse_raw_response(data)
                self.assertIsNotNone(parsed, f"no response while the body was withheld: {data!r}")
                status, headers, body = parsed
                self.assertEqual(status, 401, data)
                self.assertEqual(headers.get("www-authenticate"), self.challenge())
                self.assertEqual(json.loads(body)["error"]["code"], "Unauthorized")
        self.assertEqual(self.srv.kv("GET", "/secrets/unread").status, 404)
        self.assertServing()

    def test_non_bearer_authorization_gets_401(self):
        for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer    ", "Token abc"):
            with self.subTest(authorization=value):
                r = self.srv.kv("GET", "/secrets", headers={"Authorization": value})
                self.assertErrorBody(r, 401, "Unauthorized")
                self.assertIn("www-authenticate", r.headers)
        self.assertServing()

    def test_management_plane_without_token_gets_401(self):
        r = self.srv.arm("GET", VAULTS, auth=False)
        self.assertErrorBody(r, 401)
        self.assertIn("www-authenticate", r.headers)


class ForgedTokenTests(ServerTestCase):
    """Each token differs from a valid one in one respect and must get 401."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = cls.srv
        r = srv.kv("PUT", "/secrets/guarded", {"value": "guarded-value"})
        assert r.status == 200, r
        cls.real = srv.token(srv.vault_resource)
        cls.header, cls.claims = jwt_parts(cls.real)
        cls.now = int(cls.claims["iat"])
        cls.other_key = new_rsa_key(os.path.join(srv.root, "other-key.pem"))

    def assertRejected(self, token, why):
        r = self.srv.kv("GET", "/secrets/guarded", token=token)
        self.assertErrorBody(r, 401, "Unauthorized", why)
        self.assertIn("www-authenticate", r.headers, why)
        self.assertNotIn(b"guarded-value", r.body)

    def test_the_forging_helper_itself_produces_an_accepted_token(self):
        self.assertEqual(self.header["kid"], kid_for_key(self.srv.signing_key_path))
        r = self.srv.kv("GET", "/secrets/guarded", token=self.srv.forge_token())
        self.assertEqual(r.status, 200, r)

    def test_malformed_tokens_get_401(self):
        h, p, s = self.real.split(".")
        for label, tok in [("garbage", "not-a-jwt"),
                           ("two parts", f"{h}.{p}"),
                           ("four parts", f"{h}.{p}.{s}.{s}"),
                           ("empty signature", f"{h}.{p}."),
                           ("bad base64", f"{h}.{p}.!!!***"),
                           ("header not json", f"{b64url('x')}.{p}.{s}"),
                           ("15000-byte signature", f"{h}.{p}." + "A" * 15000)]:
            with self.subTest(label):
                self.assertRejected(tok, label)
        self.assertServing()

    def test_truncated_tokens_get_401(self):
        for cut in (1, 10, len(self.real) // 2, len(self.real) - 5):
            with self.subTest(cut=cut):
                self.assertRejected(self.real[:-cut], f"truncated by {cut}")

    def test_token_with_wrong_signature_gets_401(self):
        signed_by_other = self.srv.forge_token(key_path=self.other_key)
        self.assertRejected(signed_by_other, "signed by another key under the real kid")
        h, p, s = self.real.split(".")
        flipped = s[:10] + ("A" if s[10] != "A" else "B") + s[11:]
        self.assertRejected(f"{h}.{p}.{flipped}", "one signature character changed")
        claims = dict(self.claims, oid=str(uuid.uuid4()))
        tampered = b64url(json.dumps(claims))
        self.assertRejected(f"{h}.{tampered}.{s}", "payload changed, signature kept")

    def test_alg_none_token_gets_401(self):
        for alg in ("none", "None", "NONE"):
            with self.subTest(alg=alg):
                tok = self.srv.forge_token(header_changes={"alg": alg})
                h, p, _ = tok.split(".")
                self.assertRejected(f"{h}.{p}.", "alg none, no signature")
                self.assertRejected(tok, "alg none with an RS256 signature")

    def test_alg_hs256_token_keyed_with_the_public_key_gets_401(self):
        pub = subprocess.run(["openssl", "pkey", "-in", self.srv.signing_key_path, "-pubout"],
                             capture_output=True, check=True).stdout
        header = dict(self.header, alg="HS256")
        signing_input = b64url(json.dumps(header)) + "." + b64url(json.dumps(self.claims))
        for key in (pub, pub.strip()):
            sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
            self.assertRejected(signing_input + "." + b64url(sig), "HS256 key confusion")

    def test_token_with_unknown_kid_gets_401(self):
        self.assertRejected(self.srv.forge_token(header_changes={"kid": "AAAAAAAAAAAAAAAAAAAA"}),
                            "unknown kid")
        self.assertRejected(self.srv.forge_token(header_changes={"kid": None}), "no kid")
        own_kid = kid_for_key(self.other_key)
        self.assertRejected(self.srv.forge_token(header_changes={"kid": own_kid},
                                                 key_path=self.other_key),
                            "another key under its own kid")

    def test_expired_token_gets_401(self):
        tok = self.srv.forge_token(claim_changes={"exp": self.now - 300, "nbf": self.now - 3600,
                                                  "iat": self.now - 3600})
        self.assertRejected(tok, "exp 300 s in the past")
        self.assertRejected(self.srv.forge_token(claim_changes={"exp": None}), "no exp")
        self.assertRejected(self.srv.forge_token(claim_changes={"exp": str(self.now + 3600)}),
                            "exp as a string")

    def test_token_not_yet_valid_gets_401(self):
        tok = self.srv.forge_token(claim_changes={"nbf": self.now + 3600})
        self.assertRejected(tok, "nbf an hour ahead")

    def test_management_token_used_on_the_vault_gets_401(self):
        self.assertRejected(self.srv.token(self.srv.mgmt_resource), "management audience")
        for aud in ("https://vault.azure.net", "https://evil.vault.localhost:%d" % self.srv.port,
                    ["https://vault.localhost:%d" % self.srv.port]):
            with self.subTest(aud=aud):
                self.assertRejected(self.srv.forge_token(claim_changes={"aud": aud}), "audience")

    def test_vault_token_used_on_the_management_plane_gets_401(self):
        r = self.srv.arm("GET", VAULTS, token=self.real)
        self.assertErrorBody(r, 401)

    def test_token_with_wrong_issuer_gets_401(self):
        iss = self.claims["iss"]
        for bad in ("https://evil.example/" + self.srv.tenant + "/v2.0",
                    iss.replace(self.srv.tenant, str(uuid.uuid4())), iss + "/", None):
            with self.subTest(iss=bad):
                self.assertRejected(self.srv.forge_token(claim_changes={"iss": bad}), "issuer")

    def test_token_for_another_tenant_gets_401(self):
        self.assertRejected(self.srv.forge_token(claim_changes={"tid": str(uuid.uuid4())}),
                            "other tenant")
        self.assertRejected(self.srv.forge_token(claim_changes={"tid": None}), "no tid")

    def test_token_of_a_principal_that_does_not_exist_gets_401(self):
        self.assertRejected(self.srv.forge_token(claim_changes={"oid": str(uuid.uuid4())}),
                            "random oid")
        self.assertRejected(self.srv.forge_token(claim_changes={"oid": None}), "no oid")

    def test_server_keeps_serving_after_forged_tokens(self):
        for _ in range(3):
            self.assertRejected(self.srv.forge_token(key_path=self.other_key), "other key")
        self.assertServing()


class BodyValidationTests(SecretStateMixin, ServerTestCase):
    """PUT/PATCH bodies that must get 400 BadParameter and change nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.srv.kv("PUT", "/secrets/stable", {"value": "original", "tags": {"k": "v"},
                                                  "contentType": "text/plain"})
        assert r.status == 200, r
        cls.version = r.json()["id"].rsplit("/", 1)[1]

    def check_rejected_put(self, body, label, status=400, code="BadParameter"):
        """The body is refused both as a new version of `stable` and as a new secret."""
        before = self.snapshot("stable")
        r = self.srv.kv("PUT", "/secrets/stable", body)
        self.assertErrorBody(r, status, code, label)
        self.assertUnchanged("stable", before, label)
        r = self.srv.kv("PUT", "/secrets/never-created", body)
        self.assertErrorBody(r, status, code, label)
        self.assertEqual(self.srv.kv("GET", "/secrets/never-created").status, 404, label)

    def check_rejected_patch(self, body, label):
        before = self.snapshot("stable")
        r = self.srv.kv("PATCH", f"/secrets/stable/{self.version}", body)
        self.assertErrorBody(r, 400, "BadParameter", label)
        self.assertUnchanged("stable", before, label)

    def test_malformed_json_is_rejected(self):
        for body in ('{"value": "x"', '{"value": "x",}', "{value: 'x'}", "\x00\x01",
                     '{"value": "x"} trailing', '{"value": "\\ud800"}'):
            with self.subTest(body=body):
                self.check_rejected_put(body, repr(body))
                self.check_rejected_patch(body, repr(body))
        self.assertServing()

    def test_empty_body_is_rejected(self):
        self.check_rejected_put("", "empty body")
        self.check_rejected_patch("", "empty body")

    def test_json_that_is_not_an_object_is_rejected(self):
        for body in ('["x"]', '"x"', "42", "null", "true"):
            with self.subTest(body=body):
                self.check_rejected_put(body, body)
                self.check_rejected_patch(body, body)

    def test_fields_of_the_wrong_type_are_rejected(self):
        cases = {
            "value number": {"value": 5},
            "value object": {"value": {"a": "b"}},
            "value null": {"value": None},
            "tags array": {"value": "x", "tags": ["a"]},
            "tag value number": {"value": "x", "tags": {"a": 1}},
            "attributes array": {"value": "x", "attributes": []},
            "attributes.enabled string": {"value": "x", "attributes": {"enabled": "true"}},
            "attributes.exp string": {"value": "x", "attributes": {"exp": "2030-01-01"}},
            "attributes.nbf float": {"value": "x", "attributes": {"nbf": 1.5}},
            "contentType number": {"value": "x", "contentType": 7},
        }
        for label, body in cases.items():
            with self.subTest(label):
                self.check_rejected_put(body, label)
                if label not in ("value number", "value object", "value null"):
                    patch = {k: v for k, v in body.items() if k != "value"}
                    self.check_rejected_patch(patch, label)

    def test_missing_value_is_rejected(self):
        self.check_rejected_put({"tags": {"a": "b"}}, "no value")
        self.check_rejected_put({}, "empty object")

    def test_deeply_nested_json_is_rejected_without_harm(self):
        for label, body in [("10000 [", "[" * 10000),
                            ("10000 [ closed", "[" * 10000 + "]" * 10000),
                            ("nested in tags", '{"value":"x","tags":{"a":' + "[" * 10000 +
                             "]" * 10000 + "}}"),
                            ("10000 {", '{"a":' * 10000 + "1" + "}" * 10000)]:
            with self.subTest(label):
                self.check_rejected_put(body, label)
        self.assertServing()

    def test_value_over_25_kib_is_rejected_and_25_kib_is_accepted(self):
        self.check_rejected_put({"value": "v" * (25 * 1024 + 1)}, "25 KiB + 1")
        r = self.srv.kv("PUT", "/secrets/exactly-25k", {"value": "v" * (25 * 1024)})
        self.assertEqual(r.status, 200, r)

    def test_sixteen_tags_are_rejected_and_fifteen_accepted(self):
        sixteen = {f"t{i}": "x" for i in range(16)}
        self.check_rejected_put({"value": "x", "tags": sixteen}, "16 tags")
        self.check_rejected_patch({"tags": sixteen}, "16 tags")
        r = self.srv.kv("PUT", "/secrets/fifteen-tags",
                        {"value": "x", "tags": {f"t{i}": "x" for i in range(15)}})
        self.assertEqual(r.status, 200, r)

    def test_tag_longer_than_512_characters_is_rejected(self):
        self.check_rejected_put({"value": "x", "tags": {"k": "v" * 513}}, "tag value 513")
        self.check_rejected_put({"value": "x", "tags": {"k" * 513: "v"}}, "tag name 513")
        self.check_rejected_patch({"tags": {"k": "v" * 513}}, "tag value 513")
        r = self.srv.kv("PUT", "/secrets/tag-512", {"value": "x", "tags": {"k": "v" * 512}})
        self.assertEqual(r.status, 200, r)

    def test_content_type_longer_than_255_characters_is_rejected(self):
        self.check_rejected_put({"value": "x", "contentType": "c" * 256}, "contentType 256")
        self.check_rejected_patch({"contentType": "c" * 256}, "contentType 256")
        r = self.srv.kv("PUT", "/secrets/ct-255", {"value": "x", "contentType": "c" * 255})
        self.assertEqual(r.status, 200, r)

    def test_rejections_never_echo_the_submitted_value(self):
        canary = "canary-" + uuid.uuid4().hex
        bodies = ['{"value": "%s"' % canary, {"value": canary, "tags": [canary]},
                  {"value": canary * 2000}, {"value": canary, "contentType": canary * 10},
                  {"value": canary, "attributes": {"exp": canary}}]
        for body in bodies:
            r = self.srv.kv("PUT", "/secrets/echo", body)
            self.assertErrorBody(r, 400, "BadParameter")
            self.assertNotIn(canary.encode(), r.body)
        self.assertNotIn(canary, self.srv.stderr_text())

    def test_restore_of_a_bogus_backup_is_rejected(self):
        before = self.snapshot("stable")
        for body in ({"value": "not base64 !!"}, {"value": b64url(b"CKB1" + os.urandom(64))},
                     {"value": 5}, {}):
            with self.subTest(body=body):
                r = self.srv.kv("POST", "/secrets/restore", body)
                self.assertErrorBody(r, 400, "BadParameter")
        self.assertUnchanged("stable", before)


class UrlValidationTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        assert cls.srv.kv("PUT", "/secrets/present", {"value": "p"}).status == 200

    def test_invalid_secret_names_are_rejected(self):
        names = {"underscore": "bad_name", "128 chars": "a" * 128, "dot": "a.b",
                 "encoded traversal": "%2F..%2Fpresent", "encoded slash": "a%2Fb",
                 "space": "a%20b", "unicode": "%C3%A9t%C3%A9"}
        for label, name in names.items():
            with self.subTest(label):
                for method, body in (("GET", None), ("PUT", {"value": "x"}), ("DELETE", None)):
                    r = self.srv.kv(method, f"/secrets/{name}", body)
                    self.assertErrorBody(r, 400, "BadParameter", f"{method} {name}")
        listed = [i["id"].rsplit("/", 1)[1] for i in self.srv.kv("GET", "/secrets").json()["value"]]
        self.assertEqual(listed, ["present"])
        self.assertEqual(self.srv.kv("GET", "/secrets/present").json()["value"], "p")

    def test_name_of_127_characters_is_accepted(self):
        name = "a" * 127
        self.assertEqual(self.srv.kv("PUT", f"/secrets/{name}", {"value": "x"}).status, 200)
        self.assertEqual(self.srv.kv("GET", f"/secrets/{name}").json()["value"], "x")

    def test_invalid_version_is_rejected(self):
        for version in ("zz", "0" * 31, "g" * 32, "0" * 33):
            with self.subTest(version=version):
                r = self.srv.kv("GET", f"/secrets/present/{version}")
                self.assertErrorBody(r, 400, "BadParameter")
                r = self.srv.kv("PATCH", f"/secrets/present/{version}", {"tags": {}})
                self.assertErrorBody(r, 400, "BadParameter")

    def test_bad_maxresults_is_rejected(self):
        for value in ("0", "26", "abc", "-1", "1.5", "99999999999999999999"):
            for path in ("/secrets", "/deletedsecrets", "/secrets/present/versions"):
                with self.subTest(maxresults=value, path=path):
                    r = self.srv.kv("GET", path, query={"maxresults": value})
                    self.assertErrorBody(r, 400, "BadParameter")

    def test_bad_skiptoken_is_rejected(self):
        for token in ("!!!", b64url("zz:present"), "%%%", b64url(os.urandom(40))):
            with self.subTest(token=token):
                r = self.srv.kv("GET", "/secrets", query={"$skiptoken": token})
                self.assertErrorBody(r, 400, "BadParameter")

    def test_missing_api_version_is_rejected(self):
        for method, path, body in (("GET", "/secrets", None), ("GET", "/secrets/present", None),
                                   ("PUT", "/secrets/no-version", {"value": "x"})):
            with self.subTest(method=method, path=path):
                r = self.srv.request(method, path, body)
                self.assertErrorBody(r, 400, "BadParameter")
        self.assertEqual(self.srv.kv("GET", "/secrets/no-version").status, 404)

    def test_percent_encoded_api_version_key_and_empty_version_segment_are_accepted(self):
        r = self.srv.request("GET", "/secrets/present/?api%2Dversion=2025-07-01")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["value"], "p")

    def test_request_for_a_vault_that_does_not_exist_is_an_error_not_a_crash(self):
        r = self.srv.kv("GET", "/secrets/present", vault="nosuchvault")
        self.assertErrorBody(r, 404)
        self.assertServing()


class TransportTests(ServerTestCase):
    """Byte-level abuse on raw TLS sockets; the server runs with --read-timeout 2."""

    SERVER_ARGS = ("--read-timeout", "2")

    def raw_exchange(self, data, timeout=WAIT_S, **kw):
        sock = self.srv.tls_socket(**kw)
        try:
            if isinstance(data, str):
                data = data.encode()
            try:
                sock.sendall(data)
            except OSError:
                pass  # the server may stop reading early; what it answered is still readable
            return recv_all(sock, timeout, until_response=True)
        finally:
            sock.close()

    def head(self, method, target, extra="", auth=True):
        lines = f"{method} {target} HTTP/1.1\r\nHost: dev.vault.localhost:{self.srv.port}\r\n"
        if auth:
            lines += f"Authorization: Bearer {self.srv.token(self.srv.vault_resource)}\r\n"
        return lines + extra + "\r\n"

    def test_body_over_2_mib_announced_by_content_length_gets_413(self):
        before = self.srv.kv("GET", "/secrets").body
        n = 2 * 1024 * 1024 + 1
        data, _, ended = self.raw_exchange(
            self.head("PUT", f"/secrets/huge?api-version={KV_API}",
                      f"Content-Type: application/json\r\nContent-Length: {n}\r\n"))
        parsed = parse_raw_response(data)
        self.assertIsNotNone(parsed, f"no response ({ended})")
        self.assertEqual(parsed[0], 413, data[:400])
        self.assertEqual(json.loads(parsed[2])["error"]["code"], "RequestEntityTooLarge")
        self.assertEqual(self.srv.kv("GET", "/secrets").body, before)
        self.assertServing()

    def test_body_over_2_mib_sent_chunked_gets_413(self):
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        data, _, ended = self.raw_exchange(
            self.head("PUT", f"/secrets/huge?api-version={KV_API}",
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n").encode()
            + chunk * 40)
        parsed = parse_raw_response(data)
        self.assertIsNotNone(parsed, f"no response ({ended})")
        self.assertEqual(parsed[0], 413, data[:400])
        self.assertEqual(json.loads(parsed[2])["error"]["code"], "RequestEntityTooLarge")
        self.assertEqual(self.srv.kv("GET", "/secrets/huge").status, 404)
        self.assertServing()

    def test_body_of_exactly_2_mib_passes_the_transport_and_gets_400(self):
        value = "v" * (2 * 1024 * 1024 - len('{"value": ""}'))
        body = json.dumps({"value": value})
        self.assertEqual(len(body), 2 * 1024 * 1024)
        r = self.srv.kv("PUT", "/secrets/twomib", body,
                        headers={"Content-Type": "application/json"})
        self.assertErrorBody(r, 400, "BadParameter")

    def test_headers_over_16_kib_get_431(self):
        data, _, ended = self.raw_exchange(
            self.head("GET", f"/secrets?api-version={KV_API}", f"X-Pad: {'a' * 17000}\r\n"))
        parsed = parse_raw_response(data)
        # Observed behaviour: 431 with a JSON error body, then the connection is closed.
        self.assertIsNotNone(parsed, f"no response ({ended}); a bare close would also be safe")
        self.assertEqual(parsed[0], 431, data[:400])
        self.assertEqual(json.loads(parsed[2])["error"]["code"], "RequestHeaderFieldsTooLarge")
        self.assertServing()

    def test_request_target_over_16_kib_gets_431(self):
        data, _, ended = self.raw_exchange(
            self.head("GET", f"/secrets/{'a' * 20000}?api-version={KV_API}"))
        parsed = parse_raw_response(data)
        self.assertIsNotNone(parsed, f"no response ({ended})")
        self.assertIn(parsed[0], (414, 431), data[:400])
        self.assertServing()

    def test_many_small_headers_over_16_kib_get_431(self):
        extra = "".join(f"X-H{i}: {'b' * 100}\r\n" for i in range(200))
        data, _, ended = self.raw_exchange(self.head("GET", f"/secrets?api-version={KV_API}",
                                                     extra))
        parsed = parse_raw_response(data)
        self.assertIsNotNone(parsed, f"no response ({ended})")
        self.assertEqual(parsed[0], 431, data[:400])
        self.assertServing()

    def test_slow_client_sending_half_a_request_line_is_dropped_by_the_read_deadline(self):
        sock = self.srv.tls_socket(timeout=WAIT_S)
        try:
            sock.sendall(b"GET /secre")
            # Meanwhile the server keeps answering other clients.
            self.assertServing()
            data, _, ended = recv_all(sock, WAIT_S)
        finally:
            sock.close()
        self.assertNotEqual(ended, "timeout", f"the connection was still open after {WAIT_S} s")
        self.assertFalse(data.startswith(b"HTTP/1.1 2"), data)
        self.assertServing()

    def test_client_stalling_mid_body_is_dropped_by_the_read_deadline(self):
        sock = self.srv.tls_socket(timeout=WAIT_S)
        try:
            sock.sendall(self.head("PUT", f"/secrets/stalled?api-version={KV_API}",
                                   "Content-Type: application/json\r\nContent-Length: 100\r\n")
                         .encode() + b'{"value":')
            data, _, ended = recv_all(sock, WAIT_S)
        finally:
            sock.close()
        self.assertNotEqual(ended, "timeout", f"the connection was still open after {WAIT_S} s")
        self.assertEqual(self.srv.kv("GET", "/secrets/stalled").status, 404)
        self.assertServing()

    def test_client_that_never_finishes_the_tls_handshake_is_dropped_by_the_read_deadline(self):
        sock = self.srv.plain_socket(timeout=WAIT_S)
        try:
            data, _, ended = recv_all(sock, WAIT_S)
        finally:
            sock.close()
        self.assertNotEqual(ended, "timeout", f"the connection was still open after {WAIT_S} s")
        self.assertServing()

    def test_client_trickling_one_byte_at_a_time_is_dropped_by_the_read_deadline(self):
        # The deadline is for the whole request, not for each byte: trickled a byte every
        # 0.25 s, the request would take far longer than the 2 s deadline to arrive.
        request = self.head("GET", f"/secrets?api-version={KV_API}").encode()
        sock = self.srv.tls_socket(timeout=WAIT_S)
        dropped = None
        try:
            for i in range(len(request)):
                try:
                    sock.sendall(request[i:i + 1])
                except OSError as e:
                    dropped = e
                    break
                time.sleep(0.25)
            if dropped is None:
                data, _, ended = recv_all(sock, WAIT_S)
                dropped = ended if not data.startswith(b"HTTP/1.1 200") else None
        finally:
            sock.close()
        self.assertIsNotNone(dropped, f"a request trickled over {len(request) * 0.25:.0f} s "
                                      "was still served")
        self.assertServing()

    def test_pipelined_requests_are_all_answered_in_order(self):
        names = ("pipe-a", "pipe-b", "pipe-c")
        for n in names:
            self.assertEqual(self.srv.kv("PUT", f"/secrets/{n}", {"value": n}).status, 200)
        data = b"".join(self.head("GET", f"/secrets/{n}?api-version={KV_API}").encode()
                        for n in names)
        sock = self.srv.tls_socket()
        try:
            sock.sendall(data)
            got = b""
            sock.settimeout(WAIT_S)
            while got.count(b"HTTP/1.1 ") < 3 or not got.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        finally:
            sock.close()
        values = [json.loads(part.partition(b"\r\n\r\n")[2] or b"{}").get("value")
                  for part in got.split(b"HTTP/1.1 ")[1:]]
        self.assertEqual(values, list(names), got[:600])

    def test_hundred_idle_connections_do_not_block_other_clients(self):
        # A server of its own with the default read deadline (30 s), so that the idle
        # connections stay open: the request is answered while the server holds all of them.
        srv = start_server(self)
        socks = []
        try:
            for _ in range(100):
                socks.append(srv.tls_socket(timeout=WAIT_S))
            r = srv.kv("GET", "/secrets", query={"maxresults": "1"})
            self.assertEqual(r.status, 200, r)
            for i, sk in enumerate(socks):
                sk.setblocking(False)
                try:
                    self.fail(f"idle connection {i} was answered or closed: {sk.recv(1)!r}")
                except ssl.SSLWantReadError:
                    pass  # open, nothing to read
        finally:
            for sk in socks:
                sk.close()

    def test_garbage_after_tls_gets_400_or_close(self):
        for garbage in (b"\x00\x01\x02\xff\xfe garbage\r\n\r\n", b"HELLO WORLD\r\n\r\n",
                        b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                        b"GET /secrets HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                        b"GET /secrets HTTP/1.1\r\nBad Header\r\n\r\n"):
            with self.subTest(garbage=garbage):
                data, _, ended = self.raw_exchange(garbage)
                parsed = parse_raw_response(data)
                if parsed is None:
                    self.assertEqual(data, b"", f"neither HTTP nor a close ({ended})")
                else:
                    self.assertEqual(parsed[0], 400, data[:300])
                    self.assertIn("code", json.loads(parsed[2])["error"])
        self.assertServing()

    def test_plain_http_to_the_tls_port_gets_no_http_answer(self):
        sock = self.srv.plain_socket(timeout=WAIT_S)
        try:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{self.srv.port}\r\n\r\n"
                         .encode())
            data, _, ended = recv_all(sock, WAIT_S)
        finally:
            sock.close()
        self.assertNotEqual(ended, "timeout", "the plain-HTTP connection was left open")
        self.assertFalse(data.startswith(b"HTTP/"), f"answered plain HTTP: {data[:200]!r}")
        self.assertServing()


class SecretStateConflictTests(SecretStateMixin, ServerTestCase):

    def test_setting_a_soft_deleted_name_gets_409_conflict(self):
        srv = self.srv
        self.assertEqual(srv.kv("PUT", "/secrets/gone", {"value": "old"}).status, 200)
        self.assertEqual(srv.kv("DELETE", "/secrets/gone").status, 200)
        deleted_before = srv.kv("GET", "/deletedsecrets/gone")
        r = srv.kv("PUT", "/secrets/gone", {"value": "new"})
        self.assertErrorBody(r, 409, "Conflict")
        self.assertEqual(srv.kv("GET", "/secrets/gone").status, 404)
        self.assertEqual(srv.kv("GET", "/deletedsecrets/gone").body, deleted_before.body)
        self.assertEqual(srv.kv("POST", "/deletedsecrets/gone/recover").status, 200)
        self.assertEqual(srv.kv("GET", "/secrets/gone").json()["value"], "old")

    def test_purging_a_secret_that_is_not_deleted_gets_404(self):
        self.assertEqual(self.srv.kv("PUT", "/secrets/alive", {"value": "a"}).status, 200)
        before = self.snapshot("alive")
        r = self.srv.kv("DELETE", "/deletedsecrets/alive")
        self.assertErrorBody(r, 404, "SecretNotFound")
        self.assertUnchanged("alive", before)
        r = self.srv.kv("POST", "/deletedsecrets/alive/recover")
        self.assertErrorBody(r, 404, "SecretNotFound")
        self.assertUnchanged("alive", before)

    def test_getting_a_disabled_secret_gets_403(self):
        r = self.srv.kv("PUT", "/secrets/off",
                        {"value": "hidden", "attributes": {"enabled": False}})
        self.assertEqual(r.status, 200, r)
        r = self.srv.kv("GET", "/secrets/off")
        self.assertErrorBody(r, 403, "Forbidden")
        self.assertNotIn(b"hidden", r.body)

    def test_operations_on_missing_secrets_get_404_secret_not_found(self):
        for method, path in (("GET", "/secrets/missing"), ("DELETE", "/secrets/missing"),
                             ("GET", "/deletedsecrets/missing"),
                             ("POST", "/secrets/missing/backup"),
                             ("GET", "/secrets/missing/" + "0" * 32)):
            with self.subTest(method=method, path=path):
                self.assertErrorBody(self.srv.kv(method, path), 404, "SecretNotFound")


class ManagementValidationTests(ServerTestCase):

    def create(self, name, props=None, rg="rg-bad", **kw):
        body = {"location": "local", "properties": props or {}}
        body.update(kw)
        return self.srv.arm("PUT", rg_vault(name, rg), body)

    def vault_names(self):
        return sorted(v["name"] for v in self.srv.arm("GET", VAULTS).json()["value"])

    def test_missing_api_version_gets_400_missing_api_version_parameter(self):
        for method, path in (("GET", VAULTS), ("GET", rg_vault("dev", "coffer-dev")),
                             ("PUT", rg_vault("noversion"))):
            with self.subTest(method=method):
                r = self.srv.arm(method, path, {"location": "local"} if method == "PUT" else None,
                                 api_version=None)
                self.assertErrorBody(r, 400, "MissingApiVersionParameter")
        self.assertNotIn("noversion", self.vault_names())

    def test_invalid_vault_names_get_400(self):
        before = self.vault_names()
        for name in ("ab", "1abc", "a--b", "a" * 25, "abc-", "ab_c", "-abc"):
            with self.subTest(name=name):
                r = self.create(name)
                self.assertErrorBody(r, 400, msg=name)
        self.assertEqual(self.vault_names(), before)

    def test_vault_names_of_3_and_24_characters_are_accepted(self):
        for name in ("abc", "b" + "1-" * 11 + "c"):
            with self.subTest(name=name):
                self.assertEqual(len(name) in (3, 24), True)
                self.assertEqual(self.create(name).status, 201)

    def test_retention_outside_7_to_90_days_gets_400(self):
        for days in (5, 6, 91, 0, -1, "30", 7.5):
            with self.subTest(days=days):
                r = self.create("ret-bad", {"softDeleteRetentionInDays": days})
                self.assertErrorBody(r, 400, msg=str(days))
        self.assertNotIn("ret-bad", self.vault_names())

    def test_retention_cannot_change_after_creation(self):
        self.assertEqual(self.create("ret-fixed", {"softDeleteRetentionInDays": 30}).status, 201)
        before = self.srv.arm("GET", rg_vault("ret-fixed")).json()
        r = self.create("ret-fixed", {"softDeleteRetentionInDays": 31})
        self.assertErrorBody(r, 400, msg="PUT")
        r = self.srv.arm("PATCH", rg_vault("ret-fixed"),
                         {"properties": {"softDeleteRetentionInDays": 31}})
        self.assertErrorBody(r, 400, msg="PATCH")
        self.assertEqual(self.srv.arm("GET", rg_vault("ret-fixed")).json(), before)

    def test_purge_protection_cannot_be_turned_off(self):
        self.assertEqual(self.create("pp-on", {"enablePurgeProtection": True}).status, 201)
        before = self.srv.arm("GET", rg_vault("pp-on")).json()
        r = self.srv.arm("PATCH", rg_vault("pp-on"),
                         {"properties": {"enablePurgeProtection": False}})
        self.assertErrorBody(r, 400, msg="PATCH")
        r = self.create("pp-on", {"enablePurgeProtection": False})
        self.assertErrorBody(r, 400, msg="PUT")
        after = self.srv.arm("GET", rg_vault("pp-on")).json()
        self.assertEqual(after, before)
        self.assertTrue(after["properties"]["enablePurgeProtection"])

    def test_soft_delete_cannot_be_disabled(self):
        r = self.create("nosoft", {"enableSoftDelete": False})
        self.assertErrorBody(r, 400)
        self.assertNotIn("nosoft", self.vault_names())
        r = self.srv.arm("PATCH", rg_vault("dev", "coffer-dev"),
                         {"properties": {"enableSoftDelete": False}})
        self.assertErrorBody(r, 400)
        self.assertTrue(self.srv.arm("GET", rg_vault("dev", "coffer-dev"))
                        .json()["properties"]["enableSoftDelete"])

    def test_malformed_vault_body_gets_400(self):
        for body in ('{"location":', "[]", '{"properties": []}', '{"tags": ["a"]}',
                     '{"location": 5}', '{"location": ""}',
                     '{"location": "local", "properties": ' + "[" * 10000 + "}",
                     '{"location": "local", "properties": {"sku": {"name": "basic"}}}',
                     '{"location": "local", "properties": {"tenantId": "%s"}}' % uuid.uuid4(),
                     '{"location": "local", "properties": {"accessPolicies": [{"x": 1}]}}',
                     '{"location": "local", "properties": {"enablePurgeProtection": "true"}}',
                     '{"location": "local", "properties": {"enableRbacAuthorization": 1}}',
                     json.dumps({"location": "local",
                                 "tags": {f"t{i}": "v" for i in range(51)}})):
            with self.subTest(body=body):
                r = self.srv.arm("PUT", rg_vault("badbody"), body,
                                 headers={"Content-Type": "application/json"})
                self.assertErrorBody(r, 400)
        self.assertNotIn("badbody", self.vault_names())

    def test_vault_name_taken_in_another_resource_group_gets_409(self):
        self.assertEqual(self.create("taken", rg="rg-one").status, 201)
        r = self.create("taken", rg="rg-two")
        self.assertErrorBody(r, 409, "VaultAlreadyExists")
        r = self.create("TAKEN", rg="rg-two")
        self.assertErrorBody(r, 409, "VaultAlreadyExists", "names are case-insensitive")
        self.assertIn("/resourceGroups/rg-one/", self.srv.arm("GET", rg_vault("taken", "rg-one"))
                      .json()["id"])

    def test_wrong_subscription_gets_404(self):
        other = str(uuid.uuid4())
        for path in (VAULTS, rg_vault("dev", "coffer-dev")):
            with self.subTest(path=path):
                r = self.srv.arm_raw("GET", f"/subscriptions/{other}{path}?api-version=2023-07-01")
                self.assertErrorBody(r, 404, "SubscriptionNotFound")

    def test_missing_vault_gets_404_resource_not_found(self):
        r = self.srv.arm("GET", rg_vault("nosuchvault"))
        self.assertErrorBody(r, 404, "ResourceNotFound")
        r = self.srv.arm("GET", rg_vault("dev", "wrong-rg"))
        self.assertErrorBody(r, 404, "ResourceNotFound")

    def test_purge_is_forbidden_under_purge_protection_and_the_secret_stays_recoverable(self):
        self.assertEqual(self.create("ppvault", {"enablePurgeProtection": True,
                                                     "enableRbacAuthorization": True}).status, 201)
        srv = self.srv
        self.assertEqual(srv.kv("PUT", "/secrets/keep", {"value": "kept"}, vault="ppvault").status,
                         200)
        self.assertEqual(srv.kv("DELETE", "/secrets/keep", vault="ppvault").status, 200)
        r = srv.kv("DELETE", "/deletedsecrets/keep", vault="ppvault")
        self.assertErrorBody(r, 403)
        self.assertEqual(srv.kv("GET", "/deletedsecrets/keep", vault="ppvault").status, 200)
        r = srv.kv("POST", "/deletedsecrets/keep/recover", vault="ppvault")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(srv.kv("GET", "/secrets/keep", vault="ppvault").json()["value"], "kept")
        self.assertServing()

    def test_deleting_a_purge_protected_vault_does_not_destroy_its_deleted_secrets(self):
        """Purge protection is irreversible: nothing may be purged before retention ends, and a
        deleted vault's name stays reserved (Key Vault soft-deletes vaults). Deleting the vault
        must therefore not be a way to purge its secrets."""
        srv = self.srv
        self.assertEqual(self.create("ppdel", {"enablePurgeProtection": True,
                                                   "enableRbacAuthorization": True}).status, 201)
        self.assertEqual(srv.kv("PUT", "/secrets/held", {"value": "held-value"},
                                vault="ppdel").status, 200)
        self.assertEqual(srv.kv("DELETE", "/secrets/held", vault="ppdel").status, 200)
        self.assertEqual(srv.kv("DELETE", "/deletedsecrets/held", vault="ppdel").status, 403)
        deleted = srv.arm("DELETE", rg_vault("ppdel"))
        if deleted.status < 400:
            recreate = self.create("ppdel", {"enablePurgeProtection": True,
                                                   "enableRbacAuthorization": True})
            self.assertNotEqual(
                recreate.status, 201,
                "a purge-protected vault was deleted at once and its name re-created empty: "
                "its soft-deleted secrets were purged before their retention ended")
            # Key Vault's way back: PUT with createMode "recover".
            self.create("ppdel", {"createMode": "recover"})
        r = srv.kv("GET", "/deletedsecrets/held", vault="ppdel")
        self.assertEqual(r.status, 200, f"the protected deleted secret is gone: {r!r}")


class TokenEndpointTests(ServerTestCase):
    """Bad token requests get Entra-shaped errors {"error","error_description","error_codes"}."""

    def post(self, form, tenant=None):
        return self.srv.request("POST", f"/{tenant or self.srv.tenant}/oauth2/v2.0/token", form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"},
                                host="localhost", auth=False)

    def assertOAuthError(self, r, status, error):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body.get("error"), error, r)
        self.assertTrue(body.get("error_description"), r)
        self.assertIsInstance(body.get("error_codes"), list, r)
        self.assertNotIn("access_token", body)

    def test_wrong_client_secret_gets_401_invalid_client(self):
        r = self.srv.token_response(self.srv.vault_resource, client_secret="wrong-secret")
        self.assertOAuthError(r, 401, "invalid_client")
        self.assertNotIn(b"wrong-secret", r.body)
        r = self.srv.token_response(self.srv.vault_resource, client_id=str(uuid.uuid4()))
        self.assertOAuthError(r, 401, "invalid_client")

    def test_unknown_tenant_gets_400(self):
        r = self.srv.token_response(self.srv.vault_resource, tenant=str(uuid.uuid4()))
        self.assertOAuthError(r, 400, "invalid_request")

    def test_unknown_resource_or_scope_without_default_gets_400(self):
        self.assertOAuthError(self.srv.token_response("https://other.example"), 400,
                              "invalid_resource")
        form = (f"grant_type=client_credentials&client_id={self.srv.env['AZURE_CLIENT_ID']}"
                f"&client_secret={self.srv.env['AZURE_CLIENT_SECRET']}"
                f"&scope={self.srv.vault_resource}")
        self.assertOAuthError(self.post(form), 400, "invalid_scope")

    def test_unsupported_grant_missing_fields_and_malformed_form_get_400(self):
        self.assertOAuthError(self.post("grant_type=password&client_id=x"), 400,
                              "unsupported_grant_type")
        self.assertOAuthError(self.post("client_id=x"), 400, "invalid_request")
        self.assertOAuthError(self.post("grant_type=client_credentials"), 400, "invalid_request")
        self.assertOAuthError(self.post("grant_type=client_credentials&client_id=%zz"), 400,
                              "invalid_request")

    def test_form_over_64_kib_gets_413_before_it_is_sent(self):
        # 1 MiB announced and none of it sent: an answer that waited for the body would never
        # come (the server's read timeout is 30 s, the wait here 60 s).
        sock = self.srv.tls_socket(timeout=60, host="localhost")
        try:
            sock.sendall((f"POST /{self.srv.tenant}/oauth2/v2.0/token HTTP/1.1\r\n"
                          f"Host: localhost:{self.srv.port}\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n"
                          f"Content-Length: {1024 * 1024}\r\n\r\n").encode())
            data, _, ended = recv_all(sock, 60)
        finally:
            sock.close()
        parsed = parse_raw_response(data)
        self.assertIsNotNone(parsed, f"no response ({ended})")
        self.assertEqual(parsed[0], 413, data[:400])
        self.assertEqual(json.loads(parsed[2])["error"]["code"], "RequestEntityTooLarge")
        # A form of ordinary size is still served.
        self.assertEqual(self.srv.token_response(self.srv.vault_resource).status, 200)

    def test_get_on_the_token_endpoint_gets_405(self):
        r = self.srv.request("GET", f"/{self.srv.tenant}/oauth2/v2.0/token", host="localhost",
                             auth=False)
        self.assertOAuthError(r, 405, "invalid_request")


class ClientSecretLimitTests(ServerTestCase):
    """Failed client-secret checks are limited per client id and per address (token-service.md):
    10 failures at once per client id, then one every 6 s."""

    def test_repeated_wrong_secrets_get_429_while_the_right_secret_and_other_clients_work(self):
        admin = self.srv.env["AZURE_CLIENT_ID"]
        right = self.srv.env["AZURE_CLIENT_SECRET"]
        rc, out, err = self.run_coffer("ad", "sp", "create-for-rbac", "--name", "limit-other")
        self.assertEqual(rc, 0, err)
        other = json.loads(out)
        resource = self.srv.vault_resource

        # Ten failures are allowed at once; one more every 6 s, so on a slow machine a few more
        # may pass before the 429.
        statuses = []
        while len(statuses) < 25 and 429 not in statuses:
            limited = self.srv.token_response(resource, client_secret=f"wrong-{len(statuses)}")
            statuses.append(limited.status)
        self.assertEqual(statuses[:10], [401] * 10)
        self.assertEqual(statuses[-1], 429, statuses)
        body = limited.json()
        self.assertEqual(body["error"], "invalid_client")
        self.assertEqual(body["error_codes"], [50053])
        self.assertNotIn(b"wrong-", limited.body)
        retry_after = int(limited.headers["retry-after"])
        self.assertGreaterEqual(retry_after, 1)

        # The right secret is not locked out by the failures.
        self.assertEqual(self.srv.token_response(resource).status, 200)
        # Another client id from the same address is unaffected.
        self.assertEqual(self.srv.token_response(resource, client_id=other["appId"],
                                                 client_secret="wrong").status, 401)
        self.assertEqual(self.srv.token_response(resource, client_id=other["appId"],
                                                 client_secret=other["password"]).status, 200)

        # After the window a wrong secret is an ordinary 401 again; the 429s meanwhile did not
        # extend it.
        def window_over():
            return self.srv.token_response(resource, client_secret="wrong-later").status == 401
        self.assertTrue(wait_until(window_over, timeout=60, interval=1),
                        f"still limited a minute after Retry-After: {retry_after}")
        self.assertEqual(self.srv.token_response(resource, client_id=admin,
                                                 client_secret=right).status, 200)


class IdleConnectionTests(ServerTestCase):
    """A kept-alive connection that sends nothing is closed after --idle-timeout, which is far
    shorter here than --read-timeout."""

    SERVER_ARGS = ("--idle-timeout", "1", "--read-timeout", "300")

    def test_idle_kept_alive_connection_is_closed(self):
        sock = self.srv.tls_socket(timeout=60, host="localhost")
        try:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{self.srv.port}\r\n\r\n"
                         .encode())
            data, _, ended = recv_all(sock, 60)
        finally:
            sock.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        self.assertNotIn(b"Connection: close", data)
        self.assertNotEqual(ended, "timeout", "the idle connection was still open after 60 s")
        self.assertServing()
