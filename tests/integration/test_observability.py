"""Metrics on their own listener, named after Key Vault's; /healthz and /readyz for probes.

* Requests by activity, vault and status, with latency; tokens, watch streams, the audit queue.
* Authorization denials by reason: each reason provoked once and counted once.
* Webhook deliveries by outcome and dead letters by reason, against a live, a failing and a dead
  endpoint.
* Audit write latency and storage commit latency grow with writes.
* /readyz answers 503 while the audit log cannot be written and 200 once it can again.
"""

import glob
import http.client
import os
import re
import subprocess
import time

from harness import (ServerTestCase, coffer_binary, free_port, read_text, server_audit_dir,
                     wait_until)
from test_events import EventsTestCase, Receiver


def series(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-z_]+)(?:\{(.*)\})? (\S+)', line)
        if m is None:
            raise AssertionError(f"not an exposition line: {line!r}")
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Metered:
    """Finds the server's metrics listener; reads series from it."""

    @classmethod
    def find_metrics_port(cls):
        found = wait_until(lambda: re.search(r"Metrics on port (\d+)",
                                             read_text(cls.srv.stdout_path)), timeout=30)
        if not found:
            raise AssertionError("the server did not say where its metrics are:\n"
                                 + read_text(cls.srv.stdout_path))
        cls.metrics_port = int(found.group(1))

    def plain_get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read().decode()
        finally:
            conn.close()

    def metrics(self):
        status, ctype, body = self.plain_get("/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(ctype, "text/plain; version=0.0.4")
        return series(body)

    def value(self, m, name, **labels):
        return m.get((name, frozenset(labels.items())), 0.0)

    def growth(self, before, after, name, **labels):
        return self.value(after, name, **labels) - self.value(before, name, **labels)


class ObservabilityTests(Metered, ServerTestCase):
    SERVER_ARGS = ("--metrics-listen", "127.0.0.1:0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.find_metrics_port()

    def test_requests_are_counted_by_activity_vault_and_status(self):
        before = self.metrics()
        self.assertEqual(self.srv.kv("PUT", "/secrets/metered", {"value": "v"}).status, 200)
        for _ in range(3):
            self.assertEqual(self.srv.kv("GET", "/secrets/metered").status, 200)
        self.assertEqual(self.srv.kv("GET", "/secrets/not-there").status, 404)
        # A vault that does not exist: answered, but never a label.
        self.assertEqual(self.srv.kv("GET", "/secrets/x", vault="nosuchvault").status, 404)
        tokens_before = self.value(before, "coffer_tokens_issued_total")
        self.srv.token_response(self.srv.vault_resource)
        after = self.metrics()

        def grew(name, **labels):
            return self.value(after, name, **labels) - self.value(before, name, **labels)

        self.assertEqual(grew("coffer_service_api_hit_total", activity_name="SecretGet",
                              vault="dev"), 4)
        self.assertEqual(grew("coffer_service_api_hit_total", activity_name="SecretSet",
                              vault="dev"), 1)
        self.assertEqual(grew("coffer_service_api_result_total", activity_name="SecretGet",
                              vault="dev", status_code="200", status_code_class="2xx"), 3)
        self.assertEqual(grew("coffer_service_api_result_total", activity_name="SecretGet",
                              vault="dev", status_code="404", status_code_class="4xx"), 1)
        self.assertEqual(grew("coffer_service_api_latency_seconds_count",
                              activity_name="SecretGet", vault="dev"), 4)
        self.assertEqual(
            self.value(after, "coffer_service_api_latency_seconds_bucket",
                       activity_name="SecretGet", vault="dev", le="+Inf"),
            self.value(after, "coffer_service_api_latency_seconds_count",
                       activity_name="SecretGet", vault="dev"))
        self.assertGreaterEqual(self.value(after, "coffer_tokens_issued_total") - tokens_before, 1)
        self.assertFalse([k for k in after if ("vault", "nosuchvault") in k[1]],
                         "a Host names no series")
        availability = self.value(after, "coffer_availability_ratio")
        self.assertTrue(0.0 <= availability <= 1.0, availability)
        self.assertIn(("coffer_audit_queued_records", frozenset()), after)
        self.assertEqual(self.value(after, "coffer_audit_write_failing"), 0)
        self.assertIn(("coffer_watch_streams", frozenset()), after)

    def test_metrics_are_not_on_the_public_port(self):
        r = self.srv.request("GET", "/metrics", host="localhost", auth=False)
        self.assertEqual(r.status, 404, r)
        status, _, body = self.plain_get("/secrets")
        self.assertEqual(status, 404, body)

    def test_health_and_readiness(self):
        for path in ("/healthz", "/readyz"):
            with self.subTest(path):
                status, _, body = self.plain_get(path)
                self.assertEqual(status, 200, body)
                r = self.srv.request("GET", path, host="127.0.0.1", auth=False)
                self.assertEqual(r.status, 200, r)
        r = self.srv.request("GET", "/readyz", host="localhost", auth=False)
        self.assertEqual(r.json(), {"status": "ready", "storage": "ok", "audit": "ok"})

    def test_a_bad_listen_address_stops_the_server(self):
        for value, needle in (("nonsense", "--metrics-listen"), ("127.0.0.1", "--metrics-listen"),
                              ("127.0.0.1:99999", "--metrics-listen")):
            with self.subTest(value):
                p = subprocess.run(
                    [coffer_binary(), "server", "--dev", "--data-dir", self.srv.root + "/bad",
                     "--port", str(free_port()), "--metrics-listen", value],
                    capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(needle, p.stderr.decode())

    def test_audit_and_storage_latency_grow_with_writes(self):
        before = self.metrics()
        for i in range(3):
            self.assertEqual(self.srv.kv("PUT", f"/secrets/timed-{i}", {"value": "v"}).status, 200)
        after = self.metrics()
        # Each acknowledged write waited for its storage commit and its durable audit record.
        for name in ("coffer_storage_commit_latency_seconds", "coffer_audit_write_latency_seconds"):
            with self.subTest(name):
                self.assertGreaterEqual(self.growth(before, after, name + "_count"), 1)
                self.assertEqual(self.value(after, name + "_bucket", le="+Inf"),
                                 self.value(after, name + "_count"))
                self.assertGreater(self.value(after, name + "_sum"), 0)

    def test_readiness_follows_the_audit_log(self):
        """503 while audit records cannot be written (the log file made immutable, which stops
        root too), 200 once they can again."""
        # A write's record is durable before its answer: the log has a file from then on.
        self.assertEqual(self.srv.kv("PUT", "/secrets/audited-first", {"value": "v"}).status, 200)
        log_dir = server_audit_dir(self.srv.data_dir)
        files = sorted(glob.glob(os.path.join(log_dir, "audit-*.jsonl")))
        self.assertTrue(files, "no audit log file")
        current = files[-1]
        subprocess.run(["chattr", "+i", current], check=True)
        try:
            r = self.srv.kv("PUT", "/secrets/unaudited", {"value": "v"})
            self.assertEqual(r.status, 503, r)
            status, _, body = self.plain_get("/readyz")
            self.assertEqual(status, 503, body)
            self.assertIn('"audit":"failing"', body.replace(" ", ""))
            self.assertEqual(self.value(self.metrics(), "coffer_audit_write_failing"), 1)
        finally:
            subprocess.run(["chattr", "-i", current], check=True)
        # The writer retries on its own; readiness comes back without a request.
        self.assertTrue(wait_until(lambda: self.plain_get("/readyz")[0] == 200, timeout=60),
                        self.plain_get("/readyz"))
        self.assertEqual(self.value(self.metrics(), "coffer_audit_write_failing"), 0)
        self.assertEqual(self.srv.kv("PUT", "/secrets/audited", {"value": "v"}).status, 200)


class DenialAndDeliveryMetricsTests(Metered, EventsTestCase):
    SERVER_ARGS = EventsTestCase.SERVER_ARGS + ("--metrics-listen", "127.0.0.1:0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.find_metrics_port()

    def test_each_denial_is_counted_under_its_reason(self):
        self.new_vault("obspolicy")
        self.new_vault("obsrbac", rbac=True)
        nobody = self.new_sp("obs-nobody")
        gone = self.new_sp("obs-gone")
        self.coffer("ad", "sp", "delete", "--id", gone.app_id)
        rotate = "/coffer/v1/signing-keys/rotate"

        def kv(vault, token=None, auth=True):
            return self.srv.kv("GET", "/secrets/x", vault=vault, token=token, auth=auth)

        cases = (
            ("missing_token", 401, lambda: kv("obspolicy", auth=False)),
            ("missing_token", 401, lambda: self.srv.request(
                "GET", "/secrets/x", host=self.srv.vault_host("obspolicy"),
                headers={"Authorization": "Basic dTpw"})),
            ("invalid_token", 401, lambda: kv("obspolicy", self.srv.forge_token(
                signature=b"\0" * 256))),
            ("invalid_token", 401, lambda: kv("obspolicy", self.srv.forge_token(
                claim_changes={"iss": "https://elsewhere/"}))),
            ("expired_token", 401, lambda: kv("obspolicy", self.srv.forge_token(
                claim_changes={"exp": int(time.time()) - 3600}))),
            ("wrong_audience", 401, lambda: kv("obspolicy",
                                                self.srv.token(self.srv.mgmt_resource))),
            ("unknown_principal", 401, lambda: kv("obspolicy", gone.vault_token)),
            # Twice: the second is answered from the caches.
            ("no_access_policy", 403, lambda: kv("obspolicy", nobody.vault_token)),
            ("no_access_policy", 403, lambda: kv("obspolicy", nobody.vault_token)),
            ("no_role_assignment", 403, lambda: kv("obsrbac", nobody.vault_token)),
            ("no_role_assignment", 403, lambda: self.srv.arm(
                "GET", "/resourceGroups/rg-obsrbac/providers/Microsoft.KeyVault/vaults/obsrbac",
                api_version="2023-07-01", token=nobody.mgmt_token)),
            ("not_administrator", 403, lambda: self.srv.request(
                "POST", rotate, b"", host="localhost", token=nobody.mgmt_token)),
        )
        expected = {}
        before = self.metrics()
        for reason, status, call in cases:
            with self.subTest(reason):
                r = call()
                self.assertEqual(r.status, status, r)
                expected[reason] = expected.get(reason, 0) + 1
        after = self.metrics()
        reasons = {dict(k[1])["reason"] for k in after
                   if k[0] == "coffer_authorization_denials_total"}
        self.assertEqual(reasons, {
            "missing_token", "invalid_token", "expired_token", "wrong_audience",
            "unknown_principal", "session_revoked", "no_access_policy",
            "access_policy_lacks_permission",
            "no_role_assignment", "role_lacks_action", "condition_not_met", "not_administrator",
            "linked_scope"}, "a closed set, every reason from the start")
        for reason in reasons:
            with self.subTest(reason):
                self.assertEqual(self.growth(before, after, "coffer_authorization_denials_total",
                                             reason=reason), expected.get(reason, 0))
        # An allowed request is no denial.
        self.assertEqual(kv("obspolicy").status, 404)
        later = self.metrics()
        for reason in reasons:
            self.assertEqual(self.growth(after, later, "coffer_authorization_denials_total",
                                         reason=reason), 0, reason)

    def test_webhook_deliveries_and_dead_letters_are_counted_by_outcome(self):
        vault = "obshooks"
        self.new_vault(vault)
        self.receiver.plan("/obs-fail", always=503)
        self.subscribe(vault, "obs-ok", self.receiver.url("/obs-ok"), begins="ok-")
        self.subscribe(vault, "obs-fail", self.receiver.url("/obs-fail"), begins="fail-",
                       attempts=2)
        gone = Receiver()  # validated, then gone
        self.subscribe(vault, "obs-dead", gone.url("/hook"), begins="dead-", attempts=3)
        gone.close()
        before = self.metrics()
        self.set_secret(vault, "ok-1")
        self.set_secret(vault, "fail-1")
        self.set_secret(vault, "dead-1")
        self.assertTrue(self.wait_dead_letter("obs-fail"))
        self.assertTrue(self.wait_dead_letter("obs-dead"))
        self.receiver.wait("/obs-ok")

        def grew(name, **labels):
            return self.growth(before, self.metrics(), name, **labels)

        self.assertTrue(wait_until(lambda: grew("coffer_webhook_deliveries_total",
                                                outcome="delivered") == 1, timeout=30))
        self.assertEqual(grew("coffer_webhook_deliveries_total", outcome="rejected"), 2)
        self.assertEqual(grew("coffer_webhook_deliveries_total", outcome="unreachable"), 3)
        self.assertEqual(grew("coffer_webhook_deliveries_total", outcome="refused"), 0)
        self.assertEqual(grew("coffer_webhook_dead_letters_total",
                              reason="MaxDeliveryAttemptsExceeded"), 2)
        self.assertEqual(grew("coffer_webhook_dead_letters_total", reason="NonRetryableResponse"),
                         0)
