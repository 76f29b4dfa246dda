"""`coffer agent` mounting keys (objectType: key), end to end against the real server.

As the Azure provider (csi-driver.md §3.4): the file is the key's public half as PEM
"PUBLIC KEY" (SubjectPublicKeyInfo), read with GET /keys/{name}/{version}, and the mount's
object version is the key's version. Checked for an RSA-2048 and an EC P-256 key:

* standalone mounts: the files are what `openssl pkey -pubin` reads as those keys, with the
  numbers of the key's JWK; rotation (POST /keys/{name}/rotate) rewrites them, by push from the
  watch stream (Key changes) and by poll (--no-watch);
* objectVersionHistory on a key: a directory of the newest versions' public halves, moved on by
  a rotation;
* a key and a secret of the same name are two objects: a new version of the key refreshes only
  the mounts of the key, and a new version of the secret only those of the secret (the agent's
  per-object read counters tell);
* the CSI provider socket, called as the upstream driver calls it: the same files and the key
  versions in object_version; after a rotation, a later Mount returns the new key.

Every wait is bounded (WAIT_S) and none is a performance claim.
"""

import base64
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness import read_text, wait_until
from test_agent import WAIT_S, Agent, AgentTestCase, csi_client_binary

VAULT_API = "2023-07-01"


def b64url_int(text):
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


class KeyMountTestCase(AgentTestCase):
    """The identities of AgentTestCase may also get keys in the dev vault."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        entries = [{"tenantId": cls.srv.tenant, "objectId": oid,
                    "permissions": {"secrets": ["get", "list"], "keys": ["get", "list"]}}
                   for oid in (cls.vm["identity"]["principalId"], cls.fed["principalId"])]
        r = cls.srv.arm("PUT", f"/resourceGroups/{cls.srv.env['COFFER_RESOURCE_GROUP']}"
                               "/providers/Microsoft.KeyVault/vaults/dev/accessPolicies/add",
                        {"properties": {"accessPolicies": entries}}, api_version=VAULT_API)
        if r.status != 200:
            raise AssertionError(r)

    def create_key(self, name, kty, **params):
        body = {"kty": kty}
        body.update(params)
        r = self.srv.kv("POST", f"/keys/{name}/create", body)
        self.assertEqual(r.status, 200, repr(r))
        return r.json()["key"]

    def rotate_key(self, name):
        r = self.srv.kv("POST", f"/keys/{name}/rotate")
        self.assertEqual(r.status, 200, repr(r))
        return r.json()["key"]

    @staticmethod
    def version_of(jwk):
        return jwk["kid"].rstrip("/").rsplit("/", 1)[1]

    def assertPemIsKey(self, pem, jwk):
        """openssl reads the PEM as a public key of the JWK's type and size, and its numbers are
        the JWK's."""
        self.assertTrue(pem.startswith("-----BEGIN PUBLIC KEY-----\n"), pem)
        self.assertTrue(pem.endswith("-----END PUBLIC KEY-----\n"), pem)
        p = subprocess.run(["openssl", "pkey", "-pubin", "-noout", "-text"], input=pem,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        key = serialization.load_pem_public_key(pem.encode())
        if jwk["kty"] == "RSA":
            self.assertIn("Public-Key: (2048 bit)", p.stdout)
            self.assertIsInstance(key, rsa.RSAPublicKey)
            self.assertEqual(key.public_numbers().n, b64url_int(jwk["n"]))
            self.assertEqual(key.public_numbers().e, b64url_int(jwk["e"]))
        else:
            self.assertIn("prime256v1", p.stdout)
            self.assertIsInstance(key, ec.EllipticCurvePublicKey)
            self.assertEqual(key.public_numbers().x, b64url_int(jwk["x"]))
            self.assertEqual(key.public_numbers().y, b64url_int(jwk["y"]))

    def holds(self, entry, path, jwk):
        """The mount's file is the public half of this JWK."""
        try:
            numbers = serialization.load_pem_public_key(
                self.read(entry, path).encode()).public_numbers()
        except ValueError:
            return False
        if jwk["kty"] == "RSA":
            return numbers.n == b64url_int(jwk["n"])
        return (numbers.x, numbers.y) == (b64url_int(jwk["x"]), b64url_int(jwk["y"]))

    def reads(self, agent, object_type, name):
        """The agent's upstream reads of one object (keyvault_request_count, the driver's
        name)."""
        m = re.search(r'keyvault_request_count\{object_type="%s",object_name="%s"[^}]*\} (\d+)'
                      % (object_type, re.escape(name)), agent.metrics())
        return int(m.group(1)) if m else 0


class StandaloneKeyMountTests(KeyMountTestCase):

    def test_rsa_and_ec_keys_are_public_pem_and_rotate_by_push(self):
        rsa_jwk = self.create_key("agent-rsa", "RSA", key_size=2048)
        ec_jwk = self.create_key("agent-ec", "EC", crv="P-256")
        # A secret with the key's name, in a mount of its own.
        secret_v1 = self.value("same-name")
        self.set_secret("agent-rsa", secret_v1)
        self.set_secret("agent-sentinel", self.value("sentinel"))
        keys = self.mount("keys", [{"objectName": "agent-rsa", "objectType": "key"},
                                   {"objectName": "agent-ec", "objectType": "key",
                                    "objectAlias": "ec.pem", "filePermission": "0640"}])
        named = self.mount("named", ["agent-rsa"])
        sentinel = self.mount("sentinel", ["agent-sentinel"])
        agent = Agent(self, [keys, named, sentinel], poll="1h")  # only push explains a change
        self.assertLayout(keys, ["agent-rsa", "ec.pem"])
        self.assertPemIsKey(self.read(keys, "agent-rsa"), rsa_jwk)
        self.assertPemIsKey(self.read(keys, "ec.pem"), ec_jwk)
        self.assertEqual(os.stat(os.path.join(keys["target"], "ec.pem")).st_mode & 0o777, 0o640)
        self.assertEqual(self.read(named, "agent-rsa"), secret_v1)
        versions = {o["id"]: o["version"] for o in agent.status("keys")["objects"]}
        self.assertEqual(versions, {"key/agent-rsa": self.version_of(rsa_jwk),
                                    "key/agent-ec": self.version_of(ec_jwk)})

        def flush(label):
            # The push loop handles changes one batch after another: once a later change of
            # another mount is on disk, what an earlier one set off has run to its end.
            value = self.value(label)
            self.set_secret("agent-sentinel", value)
            self.wait_content(sentinel, "agent-sentinel", value, agent)

        flush("sentinel")
        secret_reads = self.reads(agent, "secret", "agent-rsa")
        key_reads = self.reads(agent, "key", "agent-rsa")
        self.assertGreater(secret_reads, 0, agent.metrics())
        self.assertGreater(key_reads, 0, agent.metrics())

        # A new version of the key: its file changes; the secret of that name is not read.
        rotated = self.rotate_key("agent-rsa")
        self.assertNotEqual(rotated["n"], rsa_jwk["n"])
        self.assertTrue(wait_until(lambda: self.holds(keys, "agent-rsa", rotated),
                                   timeout=WAIT_S), agent.status("keys"))
        self.assertPemIsKey(self.read(keys, "agent-rsa"), rotated)
        self.assertTrue(wait_until(
            lambda: {o["id"]: o["version"] for o in agent.status("keys")["objects"]}.get(
                "key/agent-rsa") == self.version_of(rotated), timeout=WAIT_S),
            agent.status("keys"))
        flush("after-key")
        self.assertEqual(self.reads(agent, "secret", "agent-rsa"), secret_reads,
                         "a new version of the key re-read the secret of the same name")
        key_reads = self.reads(agent, "key", "agent-rsa")

        # A new version of the secret: its mount changes; the key is not read again.
        secret_v2 = self.value("same-name")
        self.set_secret("agent-rsa", secret_v2)
        self.wait_content(named, "agent-rsa", secret_v2, agent)
        flush("after-secret")
        self.assertEqual(self.reads(agent, "key", "agent-rsa"), key_reads,
                         "a new version of the secret re-read the key of the same name")
        self.assertPemIsKey(self.read(keys, "agent-rsa"), rotated)
        self.assertNoSecrets(agent.output())

    def test_a_key_rotates_by_poll_and_a_missing_key_keeps_the_files(self):
        jwk = self.create_key("agent-poll", "EC", crv="P-256")
        m = self.mount("poll", [{"objectName": "agent-poll", "objectType": "key"}],
                       spc_params={"useVMManagedIdentity": "true"})
        agent = Agent(self, [m], args=["--no-watch"], poll="1s")
        self.assertPemIsKey(self.read(m, "agent-poll"), jwk)
        rotated = self.rotate_key("agent-poll")
        self.assertTrue(wait_until(lambda: self.holds(m, "agent-poll", rotated),
                                   timeout=WAIT_S), agent.status("poll"))
        self.assertPemIsKey(self.read(m, "agent-poll"), rotated)
        # Deleted: the mount fails with Key Vault's words, the last good file stays.
        r = self.srv.kv("DELETE", "/keys/agent-poll")
        self.assertEqual(r.status, 200, repr(r))
        ok = wait_until(lambda: "objectType:key, objectName:agent-poll" in
                        agent.status("poll").get("lastError", ""), timeout=WAIT_S)
        self.assertTrue(ok, agent.status("poll"))
        self.assertPemIsKey(self.read(m, "agent-poll"), rotated)


    def test_a_keys_version_history_is_a_directory_of_its_newest_versions(self):
        first = self.create_key("agent-khist", "EC", crv="P-256")
        time.sleep(1.1)  # versions are ordered by their creation second
        second = self.rotate_key("agent-khist")
        m = self.mount("khist", [{"objectName": "agent-khist", "objectType": "key",
                                  "objectVersionHistory": 2}],
                       spc_params={"useVMManagedIdentity": "true"})
        agent = Agent(self, [m], args=["--no-watch"], poll="1s")
        self.assertPemIsKey(self.read(m, "agent-khist/0"), second)
        self.assertPemIsKey(self.read(m, "agent-khist/1"), first)
        ids = {o["id"]: o["version"] for o in agent.status("khist")["objects"]}
        self.assertEqual(ids, {"key/agent-khist/0": self.version_of(second),
                               "key/agent-khist/1": self.version_of(first)})
        time.sleep(1.1)
        third = self.rotate_key("agent-khist")
        self.assertTrue(wait_until(lambda: self.holds(m, "agent-khist/0", third) and
                                   self.holds(m, "agent-khist/1", second), timeout=WAIT_S),
                        agent.status("khist"))
        self.assertFalse(os.path.exists(os.path.join(m["target"], "agent-khist", "2")))


class CsiKeyMountTests(KeyMountTestCase):
    """The provider socket, called as the upstream driver calls it, for keys."""

    def mount_call(self, objects):
        token = self.issuer.mint()
        self.secrets[f"token {len(self.secrets)}"] = token
        items = "".join("  - |\n" + "".join(f"    {k}: {json.dumps(str(v))}\n"
                                            for k, v in o.items()) for o in objects)
        attrs = {"keyvaultName": "dev", "tenantID": self.srv.tenant,
                 "clientID": self.fed["clientId"], "objects": "array:\n" + items,
                 "secretProviderClass": "app-spc", "csi.storage.k8s.io/pod.name": "web-7d9c",
                 "csi.storage.k8s.io/pod.namespace": "prod", "csi.storage.k8s.io/pod.uid": "1b7b",
                 "csi.storage.k8s.io/serviceAccount.name": "web",
                 "csi.storage.k8s.io/serviceAccount.tokens": json.dumps(
                     {"api://AzureADTokenExchange": {"token": token}})}
        path = os.path.join(self.csi_dir, "attrs.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(attrs, f)
        p = subprocess.run([csi_client_binary(), "--socket", self.agent.socket,
                            "--attributes-file", path, "--secrets", "null", "--permission", "420",
                            "--target-path",
                            "/var/lib/kubelet/pods/1b7b/volumes/kubernetes.io~csi/v/mount",
                            "--timeout-ms", "60000"], capture_output=True, text=True, timeout=90)
        self.assertEqual(p.returncode, 0, f"{p.stdout}\n{p.stderr}")
        out = json.loads(p.stdout)
        files = {f["path"]: base64.b64decode(f["contents_base64"]).decode() for f in out["files"]}
        versions = {o["id"]: o["version"] for o in out["object_version"]}
        return files, versions

    def test_rsa_and_ec_keys_through_the_csi_socket(self):
        self.csi_dir = tempfile.mkdtemp(prefix="csi-", dir=self.srv.root)
        self.agent = Agent(self, [], args=["--csi-provider-dir", self.csi_dir])
        rsa_jwk = self.create_key("csi-rsa", "RSA", key_size=2048)
        ec_jwk = self.create_key("csi-ec", "EC", crv="P-256")
        objects = [{"objectName": "csi-rsa", "objectType": "key"},
                   {"objectName": "csi-ec", "objectType": "key", "objectAlias": "keys/ec.pem"}]
        files, versions = self.mount_call(objects)
        self.assertEqual(sorted(files), ["csi-rsa", "keys/ec.pem"])
        self.assertPemIsKey(files["csi-rsa"], rsa_jwk)
        self.assertPemIsKey(files["keys/ec.pem"], ec_jwk)
        self.assertEqual(versions, {"key/csi-rsa": self.version_of(rsa_jwk),
                                    "key/csi-ec": self.version_of(ec_jwk)})
        # The driver's rotation is a later Mount: it returns the new version (once the reads
        # the provider shares between mounts that arrive together are behind it).
        rotated = self.rotate_key("csi-ec")
        latest = {}

        def remounted():
            latest["files"], latest["versions"] = self.mount_call(objects)
            return latest["versions"]["key/csi-ec"] == self.version_of(rotated)
        self.assertTrue(wait_until(remounted, timeout=WAIT_S), latest)
        self.assertPemIsKey(latest["files"]["keys/ec.pem"], rotated)
        self.assertPemIsKey(latest["files"]["csi-rsa"], rsa_jwk)
        self.assertNoSecrets(self.agent.output())


if __name__ == "__main__":
    unittest.main()
