"""Resource Manager's throttling of management requests (src/server/arm_limits.h,
docs/service-limits.md): with the service limits in `azure` mode, each principal has token buckets per kind
of request (reads 250 refilled at 25/s, writes and deletes 200 at 10/s), every management answer
says what is left in x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}, and a request
beyond them is answered 429 SubscriptionRequestsThrottled with Retry-After, before anything is
done, and audited with its 429; another principal's buckets are its own.  They are the `azure` mode's: with the limits off
or custom there is neither header nor 429.  The floods are bounded in count and stop by themselves.
"""

import json
import time
import unittest

from harness import launch_server
from test_audit import wait_for_records

VAULT_API = "2023-07-01"
FLOOD = 2000  # at most this many requests per flood


class ArmLimitsTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = launch_server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.sub = cls.srv.subscription
        cls.vault = (f"/subscriptions/{cls.sub}/resourceGroups/{cls.srv.env['COFFER_RESOURCE_GROUP']}"
                     f"/providers/Microsoft.KeyVault/vaults/dev")

    def tearDown(self):
        self.srv.coffer_json("limits", "set", "--mode", "off")

    def flood(self, method, target, body=None, token=None):
        """Sends until a 429 (or FLOOD requests); returns (answers before it, the 429)."""
        token = token or self.srv.token(self.srv.mgmt_resource)
        conn = self.srv.connection("localhost")
        headers = {"Authorization": "Bearer " + token}
        answers = []
        try:
            for _ in range(FLOOD):
                r = self.srv.send(conn, method, target, body, headers)
                if r.status == 429:
                    return answers, r
                answers.append(r)
        finally:
            conn.close()
        return answers, None

    def test_reads_and_writes_are_throttled_per_principal_with_the_remaining_headers(self):
        self.srv.coffer_json("limits", "set", "--mode", "azure")
        target = f"{self.vault}?api-version={VAULT_API}"
        answers, throttled = self.flood("GET", target)
        self.assertIsNotNone(throttled, f"no 429 in {FLOOD} reads")
        self.assertGreaterEqual(len(answers), 250)
        self.assertTrue(all(a.status == 200 for a in answers))
        left = [int(a.headers["x-ms-ratelimit-remaining-subscription-reads"]) for a in answers]
        self.assertEqual(left[0], 249)
        self.assertLessEqual(left[-1], 1)
        self.assertEqual(throttled.headers["retry-after"], "1")
        error = throttled.json()["error"]
        self.assertEqual(error["code"], "SubscriptionRequestsThrottled")
        self.assertIn(f"'read' requests for subscription '{self.sub}'", error["message"])
        # Audited with its 429, under the operation it would have been.
        audited = wait_for_records(
            self.srv, lambda r: r["properties"].get("httpStatusCode") == 429 and
            r.get("operationName") == "VaultGet")
        self.assertTrue(audited, "the throttled read is not in the audit log")
        self.assertEqual(audited[0]["resourceId"].lower(), self.vault.lower())
        self.assertEqual(audited[0]["resultSignature"], "Too Many Requests")

        # Writes have their own bucket; a throttled write changes nothing.
        patch = f"{self.vault}?api-version={VAULT_API}"
        n = [0]

        def body():
            n[0] += 1
            return json.dumps({"tags": {"n": str(n[0])}})
        conn = self.srv.connection("localhost")
        token = self.srv.token(self.srv.mgmt_resource)
        writes, last_ok = 0, None
        try:
            for _ in range(FLOOD):
                r = self.srv.send(conn, "PATCH", patch, body(),
                                  {"Authorization": "Bearer " + token,
                                   "Content-Type": "application/json"})
                if r.status == 429:
                    break
                self.assertEqual(r.status, 200, r)
                self.assertIn("x-ms-ratelimit-remaining-subscription-writes", r.headers)
                writes, last_ok = writes + 1, n[0]
        finally:
            conn.close()
        self.assertGreaterEqual(writes, 200)
        self.assertLess(writes, FLOOD, "no 429 among the writes")
        time.sleep(1.2)
        r = self.srv.arm("GET", f"/resourceGroups/{self.srv.env['COFFER_RESOURCE_GROUP']}"
                                f"/providers/Microsoft.KeyVault/vaults/dev", api_version=VAULT_API)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["tags"], {"n": str(last_ok)})

        # Another principal's reads are not the administrator's.
        sp = self.srv.coffer_json("ad", "sp", "create-for-rbac", "-n", "arm-limits-other")
        t = self.srv.token_response(self.srv.mgmt_resource, client_id=sp["appId"],
                                    client_secret=sp["password"])
        self.assertEqual(t.status, 200, t)
        other = t.json()["access_token"]
        r = self.srv.request("GET", target, host="localhost", token=other)
        self.assertEqual(r.status, 403)  # throttling is not what stops it
        self.assertEqual(r.headers["x-ms-ratelimit-remaining-subscription-reads"], "249")

    def test_off_and_custom_have_neither_headers_nor_429(self):
        self.srv.coffer_json("limits", "set", "--mode", "custom", "--secret-other", "5")
        target = f"{self.vault}?api-version={VAULT_API}"
        conn = self.srv.connection("localhost")
        headers = {"Authorization": "Bearer " + self.srv.token(self.srv.mgmt_resource)}
        try:
            for _ in range(400):
                r = self.srv.send(conn, "GET", target, None, headers)
                self.assertEqual(r.status, 200)
                self.assertNotIn("x-ms-ratelimit-remaining-subscription-reads", r.headers)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
