"""Key Vault's service limits against the official azure-keyvault-secrets client (Debian
python3-azure): a vault whose budget is a few reads per 10 seconds answers 429 with Retry-After
and Key Vault's error, and the SDK's own retry policy waits as told and succeeds
(docs/service-limits.md). Writes have a budget of their own.

    COFFER_BIN=build/coffer /usr/bin/python3 -m unittest -v tests/sdk-py/test_service_limits.py
"""

import os
import sys
import time
import unittest
import uuid

from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

SERVER = None
CLIENT = None


def setUpModule():
    global SERVER, CLIENT
    SERVER = harness.launch_server()
    credential = ClientSecretCredential(
        SERVER.env["AZURE_TENANT_ID"], SERVER.env["AZURE_CLIENT_ID"],
        SERVER.env["AZURE_CLIENT_SECRET"], authority=SERVER.authority_host,
        instance_discovery=False, connection_verify=SERVER.ca_path)
    CLIENT = SecretClient(SERVER.vault_url, credential, connection_verify=SERVER.ca_path)


def early_in_a_window():
    """Waits until the server's current 10-second window (the Unix time divided by 10 s, on
    the same clock) has at least 5 s left, so that a short burst stays within one window."""
    while time.time() % 10 >= 5:
        time.sleep(0.1)


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


class ServiceLimitsTests(unittest.TestCase):
    def tearDown(self):
        SERVER.coffer_json("limits", "set", "--mode", "off")

    def test_the_sdk_retries_a_429_after_retry_after_and_succeeds(self):
        value = f"sl-{uuid.uuid4()}"
        CLIENT.set_secret("limited", value)
        settings = SERVER.coffer_json("limits", "set", "--mode", "custom", "--vault", "dev",
                                      "--secret-other", "3")
        self.assertEqual(settings["vaults"]["dev"]["secretOther"], 3)
        seen = []
        early_in_a_window()

        def hook(response):
            seen.append((response.http_response.status_code,
                         response.http_response.headers.get("Retry-After")))

        for _ in range(6):
            self.assertEqual(CLIENT.get_secret("limited", raw_response_hook=hook).value, value)
        statuses = [s for s, _ in seen]
        self.assertIn(429, statuses, seen)
        self.assertEqual(statuses.count(200), 6, seen)
        for status, retry_after in seen:
            if status == 429:
                self.assertIn(retry_after, [str(n) for n in range(1, 11)], seen)

    def test_a_throttled_request_is_key_vaults_429_and_is_audited(self):
        CLIENT.set_secret("audited", "x-" + uuid.uuid4().hex)
        SERVER.coffer_json("limits", "set", "--mode", "custom", "--vault", "dev",
                           "--secret-other", "1")
        early_in_a_window()
        answers = [SERVER.kv("GET", "/secrets/audited") for _ in range(3)]
        throttled = [r for r in answers if r.status == 429]
        self.assertTrue(throttled, [r.status for r in answers])
        body = throttled[0].json()
        self.assertEqual(body["error"]["code"], "Throttled")
        self.assertIn("VaultRequestTypeLimitReached", body["error"]["message"])
        self.assertIn(throttled[0].headers.get("retry-after"), [str(n) for n in range(1, 11)])
        # Audited with its 429, as Key Vault audits a throttled request (the record of a read
        # reaches the log without waiting for the disk, so it may take a moment).
        def throttled_records():
            return SERVER.coffer_json("audit", "query", "--vault", "dev", "--operation",
                                      "SecretGet", "--result", "429", "--output", "json")
        self.assertTrue(harness.wait_until(lambda: throttled_records(), timeout=10))
        record = throttled_records()[-1]
        self.assertEqual(record["resultSignature"], "Too Many Requests", record)
        self.assertEqual(record["properties"]["httpStatusCode"], 429, record)

    def test_writes_have_a_budget_of_their_own_and_settings_are_checked(self):
        SERVER.coffer_json("limits", "set", "--mode", "custom", "--vault", "dev",
                           "--secret-create", "2", "--secret-other", "1000")
        early_in_a_window()
        statuses = [SERVER.kv("PUT", f"/secrets/w-{i}", {"value": "v"}).status for i in range(4)]
        self.assertEqual(statuses[:2], [200, 200], statuses)
        self.assertIn(429, statuses[2:], statuses)
        # Reads still go through.
        self.assertEqual(SERVER.kv("GET", "/secrets/w-0").status, 200)
        rc, _, err = SERVER.run_coffer("limits", "set", "--mode", "custom", "--secret-other", "0")
        self.assertNotEqual(rc, 0)
        self.assertIn("secretOther", err)
        shown = SERVER.coffer_json("limits", "show")
        self.assertEqual(shown["vaults"]["dev"]["secretCreate"], 2, "a refused change changes "
                         "nothing")


class KeyWeightTests(unittest.TestCase):
    def tearDown(self):
        SERVER.coffer_json("limits", "set", "--mode", "off")

    def test_key_operations_weigh_by_key_size(self):
        import base64
        digest = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        big = SERVER.kv("POST", "/keys/weigh-rsa4096/create", {"kty": "RSA", "key_size": 4096})
        self.assertEqual(big.status, 200, big.body)
        small = SERVER.kv("POST", "/keys/weigh-ec/create", {"kty": "EC", "crv": "P-256"})
        self.assertEqual(small.status, 200, small.body)
        SERVER.coffer_json("limits", "set", "--mode", "custom", "--vault", "dev",
                           "--key-other", "16")

        def signs(name, alg, n):
            return [SERVER.kv("POST", f"/keys/{name}//sign", {"alg": alg, "value": digest}).status
                    for _ in range(n)]

        # An RSA-4096 operation weighs 8 RSA-2048 ones: two fit in 16.
        early_in_a_window()
        statuses = signs("weigh-rsa4096", "RS256", 3)
        self.assertEqual(statuses, [200, 200, 429], statuses)
        # An EC operation weighs 1: sixteen fit, in the next window.
        while time.time() % 10 < 9.5:
            time.sleep(0.1)
        early_in_a_window()
        statuses = signs("weigh-ec", "ES256", 17)
        self.assertEqual(statuses.count(200), 16, statuses)
        self.assertEqual(statuses[-1], 429, statuses)


class ConcurrentChangesTests(unittest.TestCase):
    def tearDown(self):
        SERVER.coffer_json("limits", "set", "--mode", "off")

    def test_administrators_changing_several_vaults_at_once_all_land(self):
        import threading
        results = []

        def change(i):
            results.append(SERVER.run_coffer("limits", "set", "--mode", "custom", "--vault",
                                             f"conc{i}", "--secret-other", str(10 + i)))

        threads = [threading.Thread(target=change, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([rc for rc, _, _ in results], [0] * 8, results)
        shown = SERVER.coffer_json("limits", "show")
        for i in range(8):
            self.assertEqual(shown["vaults"].get(f"conc{i}", {}).get("secretOther"), 10 + i,
                             shown)


if __name__ == "__main__":
    unittest.main()
