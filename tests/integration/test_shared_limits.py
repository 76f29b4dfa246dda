"""Service limits counted per installation, not per server (docs/service-limits.md, "Several
servers"; src/server/limit_shares.h).

Two servers, A and B, share one PostgreSQL database.  The dev vault gets a custom budget of 40
reads per 10-second window.  Flooded through both servers at once, the installation admits 40 in
the window, not 40 per server.  A client whose requests all reach A (one keep-alive connection
behind a TCP load balancer) is first refused at A's even share with Retry-After 1, and gets the
rest of the budget, bar B's small reserve, once the servers have agreed (every half second),
then is refused until the window's end.  Resource Manager's buckets are divided between the two
servers.  Floods are bounded in count and time; every wait is bounded.
"""

import json
import os
import threading
import time
import unittest

from harness import wait_until
from postgres import start_postgres
from test_ha import start_pair

BUDGET = 40
WINDOW_S = 10
FLOOD = 2000  # requests per server per flood, at most
RESERVE = max(1, BUDGET // 2 // 10)  # what an idle server keeps of its even share


def early_in_a_window(left):
    """Waits until the current window (Unix time // 10 s) has at least `left` seconds left;
    returns it."""
    while WINDOW_S - time.time() % WINDOW_S < left:
        time.sleep(0.05)
    return int(time.time() // WINDOW_S)


class SharedLimitsTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        cls.a, cls.b = start_pair(cls, cls.pg)
        cls.ids = {}
        for srv in (cls.a, cls.b):
            with open(os.path.join(srv.data_dir, "server-id")) as f:
                cls.ids[srv] = f.read().strip()
        r = cls.a.kv("PUT", "/secrets/shared-limits", {"value": "v"})
        assert r.status == 200, r

    def tearDown(self):
        self.a.coffer_json("limits", "set", "--mode", "off")

    def shares(self):
        rows = self.pg.psql("SELECT value FROM meta WHERE key = 'service_limit_shares'", "coffer")
        return json.loads(rows[0]) if rows else {}

    def limit_reads(self):
        settings = self.a.coffer_json("limits", "set", "--mode", "custom", "--vault", "dev",
                                      "--secret-other", str(BUDGET))
        self.assertEqual(settings["vaults"]["dev"]["secretOther"], BUDGET, settings)
        # B hears of it as it hears every change; both then split each window between them.
        both = sorted(self.ids.values())
        self.assertTrue(wait_until(
            lambda: self.b.coffer_json("limits", "show")["mode"] == "custom", timeout=30),
            "B did not take the limits")
        self.assertTrue(wait_until(lambda: sorted(self.shares().get("members", [])) == both,
                                   timeout=60),
                        f"the servers did not become the window's members: {self.shares()}")

    def reads(self, srv, stop_when, pause=0.0):
        """GETs of the secret on one keep-alive connection to `srv` until stop_when(response)
        (or FLOOD requests), pausing `pause` s after each 429; returns the responses."""
        conn = srv.connection()
        headers = {"Authorization": "Bearer " + srv.token(srv.vault_resource)}
        out = []
        try:
            for _ in range(FLOOD):
                r = srv.send(conn, "GET", "/secrets/shared-limits?api-version=7.4", None, headers)
                out.append(r)
                if stop_when(r):
                    break
                if r.status == 429:
                    time.sleep(pause)
        finally:
            conn.close()
        return out

    def test_both_servers_flooded_at_once_admit_the_budget_once(self):
        self.limit_reads()
        for attempt in range(3):
            window = early_in_a_window(left=7)
            results = {}

            # Until the window is spent (a refusal that waits for its end), or 4 s.
            deadline = time.time() + 4

            def flood(srv):
                results[srv] = self.reads(
                    srv, lambda r: time.time() > deadline or (
                        r.status == 429 and int(r.headers["retry-after"]) > 1), pause=0.05)

            threads = [threading.Thread(target=flood, args=(s,)) for s in (self.a, self.b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            if int(time.time() // WINDOW_S) != window:
                continue  # the flood crossed into the next window: try in a fresh one
            passed = {s: sum(r.status == 200 for r in results[s]) for s in results}
            for s in results:
                self.assertTrue(all(r.status in (200, 429) for r in results[s]),
                                [r.status for r in results[s]])
            self.assertEqual(passed[self.a] + passed[self.b], BUDGET, passed)
            self.assertGreater(passed[self.a], 0)
            self.assertGreater(passed[self.b], 0)
            return
        self.fail("no flood fitted in one window")

    def test_a_client_that_reaches_one_server_gets_the_budget_bar_the_others_reserve(self):
        self.limit_reads()
        for attempt in range(3):
            window = early_in_a_window(left=9)
            answers = []
            deadline = time.time() + 7
            first_refusal = None
            while time.time() < deadline:
                # Retry-After 1: the other server may spare some; wait as a client would.
                got = self.reads(self.a, lambda r: r.status == 429)
                answers += got
                last = got[-1]
                if last.status != 429:
                    continue
                first_refusal = first_refusal or last
                if int(last.headers["retry-after"]) > 1:
                    break  # nothing left in the window
                time.sleep(0.25)
            if int(time.time() // WINDOW_S) != window:
                continue
            passed = sum(r.status == 200 for r in answers)
            self.assertIsNotNone(first_refusal)
            self.assertEqual(first_refusal.headers["retry-after"], "1", "at A's even share")
            self.assertGreaterEqual(passed, BUDGET // 2 + 1, "A got more than its even share")
            self.assertGreaterEqual(passed, BUDGET - RESERVE)
            self.assertLessEqual(passed, BUDGET)
            self.assertGreater(int(answers[-1].headers.get("retry-after", "0")), 1,
                               "the last refusal waits for the window's end")
            # B kept its reserve: it still serves in this window.
            if int(time.time() // WINDOW_S) == window:
                b = self.reads(self.b, lambda r: r.status == 429)
                if int(time.time() // WINDOW_S) == window:
                    self.assertLessEqual(sum(r.status == 200 for r in b), BUDGET - passed)
            return
        self.fail("no run fitted in one window")

    def test_resource_managers_buckets_are_divided_between_the_servers(self):
        self.a.coffer_json("limits", "set", "--mode", "azure")
        self.assertTrue(wait_until(
            lambda: self.b.coffer_json("limits", "show")["mode"] == "azure", timeout=30))
        self.assertTrue(wait_until(lambda: len(self.shares().get("servers", {})) == 2, timeout=30))
        # A's bucket shrinks to its half when A hears of B (every half second): a principal's
        # first reads then have at most 125 tokens left, not 250.
        left = []
        for _ in range(20):
            r = self.a.arm("GET", "/providers/Microsoft.KeyVault/vaults", api_version="2023-07-01")
            self.assertEqual(r.status, 200, r)
            left.append(int(r.headers["x-ms-ratelimit-remaining-subscription-reads"]))
            if left[-1] < 125:
                break
            time.sleep(0.2)
        self.assertLess(left[-1], 125, left)
        self.assertGreater(left[-1], 100, left)


if __name__ == "__main__":
    unittest.main()
