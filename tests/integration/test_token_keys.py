"""Signing-key rotation: `coffer token rotate-keys` and POST /coffer/v1/signing-keys/rotate."""

import base64
import json
import os
import subprocess
import unittest

from harness import CofferServer, ServerTestCase, coffer_binary, kid_for_key, new_rsa_key


def kid_of(token):
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


class SigningKeyRotationTests(ServerTestCase):

    def coffer(self, *args, expect=0):
        p = subprocess.run([coffer_binary()] + list(args), env=self.srv.cli_env(),
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, expect, p.stderr.decode())
        return json.loads(p.stdout) if expect == 0 else p.stderr.decode()

    def fresh_token(self):
        r = self.srv.token_response(self.srv.vault_resource)
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def jwks_kids(self):
        r = self.srv.request("GET", f"/{self.srv.tenant}/discovery/v2.0/keys", host="localhost",
                             auth=False)
        return [k["kid"] for k in r.json()["keys"]]

    def test_rotation_keeps_the_previous_key_for_one_round_then_retires_it(self):
        first = self.fresh_token()
        self.assertEqual(self.srv.kv("GET", "/secrets", token=first).status, 200)
        self.assertEqual(self.jwks_kids(), [kid_of(first)])

        rotated = self.coffer("token", "rotate-keys")
        self.assertNotEqual(rotated["currentKid"], kid_of(first))
        self.assertEqual(set(self.jwks_kids()), {rotated["currentKid"], kid_of(first)})
        second = self.fresh_token()
        self.assertEqual(kid_of(second), rotated["currentKid"])
        self.assertEqual(self.srv.kv("GET", "/secrets", token=first).status, 200,
                         "a token of the previous key still verifies")
        self.assertEqual(self.srv.kv("GET", "/secrets", token=second).status, 200)

        self.coffer("token", "rotate-keys")
        self.assertNotIn(kid_of(first), self.jwks_kids())
        r = self.srv.kv("GET", "/secrets", token=first)
        self.assertEqual(r.status, 401, "a token of a retired key is refused at once")
        self.assertEqual(self.srv.kv("GET", "/secrets", token=second).status, 200)

        # The keys are persisted: after a restart the current and previous keys still verify.
        self.srv.stop()
        self.srv.start()
        self.assertEqual(self.srv.kv("GET", "/secrets", token=second).status, 200)

    def test_only_administrators_may_rotate(self):
        r = self.srv.request("POST", "/coffer/v1/signing-keys/rotate", host="localhost",
                             auth=False)
        self.assertEqual(r.status, 401, r)
        r = self.srv.request("POST", "/coffer/v1/signing-keys/rotate", host="localhost",
                             token=self.srv.token(self.srv.vault_resource))
        self.assertEqual(r.status, 401, "a vault token is not a management token")
        sp = self.srv.request("POST", "/v1.0/servicePrincipals",
                              json.dumps({"displayName": "not-admin"}), host="localhost",
                              token=self.srv.token(self.srv.mgmt_resource)).json()
        other = self.srv.token_response(self.srv.mgmt_resource, client_id=sp["appId"],
                                        client_secret=sp["passwordCredentials"][0]["secretText"])
        r = self.srv.request("POST", "/coffer/v1/signing-keys/rotate", host="localhost",
                             token=other.json()["access_token"])
        self.assertEqual(r.status, 403, r)
        kids = self.jwks_kids()
        r = self.srv.request("GET", "/coffer/v1/signing-keys/rotate", host="localhost",
                             token=self.srv.token(self.srv.mgmt_resource))
        self.assertEqual(r.status, 405, r)
        self.assertEqual(self.jwks_kids(), kids, "refused calls rotate nothing")


class KeyFilesOfAnEarlierRelease(unittest.TestCase):
    """Releases before kept the signing keys as PEM files in DATA_DIR/keys; the store keeps
    them now (token-service.md). The first start adopts the files: the kid and the tokens
    issued with it stay valid."""

    def test_the_key_files_are_adopted_once_and_never_written(self):
        srv = CofferServer()
        self.addCleanup(srv.cleanup)
        keys = os.path.join(srv.data_dir, "keys")
        os.makedirs(keys, mode=0o700)
        current = new_rsa_key(os.path.join(keys, "signing-current.pem"))
        previous = new_rsa_key(os.path.join(keys, "signing-previous.pem"))
        with open(current, "rb") as f:
            pem = f.read()
        srv.start()

        def jwks_kids():
            r = srv.request("GET", f"/{srv.tenant}/discovery/v2.0/keys", host="localhost",
                            auth=False)
            return [k["kid"] for k in r.json()["keys"]]

        self.assertEqual(jwks_kids(), [kid_for_key(current), kid_for_key(previous)])
        token = srv.token(srv.vault_resource)
        self.assertEqual(kid_of(token), kid_for_key(current))
        self.assertEqual(srv.kv("GET", "/secrets", token=token).status, 200)

        r = srv.request("POST", "/coffer/v1/signing-keys/rotate", host="localhost",
                        token=srv.token(srv.mgmt_resource))
        self.assertEqual(r.status, 200, r)
        rotated = r.json()["currentKid"]
        with open(current, "rb") as f:
            self.assertEqual(f.read(), pem, "the files are not written")
        # After a restart the store's keys are used, not the files.
        srv.stop()
        srv.start()
        self.assertEqual(jwks_kids(), [rotated, kid_for_key(current)])
        self.assertEqual(srv.kv("GET", "/secrets", token=token).status, 200)
