"""Metrics on their own listener, named after Key Vault's; /healthz and /readyz for probes."""

import http.client
import re
import subprocess

from harness import ServerTestCase, coffer_binary, free_port, read_text, wait_until


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


class ObservabilityTests(ServerTestCase):
    SERVER_ARGS = ("--metrics-listen", "127.0.0.1:0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
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
