"""--log-format json: one JSON object per line; a request's lines carry its x-ms-request-id and
the client's correlation id; every response names its request; no secret reaches the log."""

import json
import re

from harness import ServerTestCase, wait_until

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class JsonLogTests(ServerTestCase):
    SERVER_ARGS = ("--log-format", "json", "--log-level", "debug")

    def lines(self):
        return [line for line in self.srv.stderr_text().splitlines() if line.strip()]

    def test_every_line_is_json_and_a_requests_lines_name_it(self):
        r = self.srv.kv("PUT", "/secrets/logged", {"value": "do-not-log-me"},
                        headers={"x-ms-client-request-id": "corr-123"})
        self.assertEqual(r.status, 200, r)
        request_id = r.headers["x-ms-request-id"]
        self.assertRegex(request_id, UUID)
        found = wait_until(lambda: [json.loads(line) for line in self.lines()
                                    if request_id in line], timeout=30)
        self.assertTrue(found, "no log line names the request")
        for entry in found:
            self.assertEqual(entry["requestId"], request_id)
            self.assertEqual(entry["correlationId"], "corr-123")
        for line in self.lines():
            entry = json.loads(line)  # every line, the server's start included
            self.assertEqual(set(entry) - {"requestId", "correlationId"},
                             {"time", "level", "message"}, line)

    def test_no_secret_reaches_the_log(self):
        value = "s3cret-value-never-logged"
        r = self.srv.kv("PUT", "/secrets/unlogged", {"value": value})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.srv.kv("GET", "/secrets/unlogged").json()["value"], value)
        # A failing write with the value in its body is logged too, without it.
        self.assertEqual(self.srv.kv("PUT", "/secrets/bad_name", {"value": value}).status, 400)
        self.assertTrue(wait_until(lambda: any(r.headers["x-ms-request-id"] in line
                                               for line in self.lines()), timeout=30))
        log = self.srv.stderr_text()
        token = self.srv.token(self.srv.vault_resource)
        for what, text in (("the secret's value", value),
                           ("the client secret", self.srv.env["AZURE_CLIENT_SECRET"]),
                           ("an access token", token), ("a token's signature",
                                                        token.rsplit(".", 1)[1])):
            with self.subTest(what):
                self.assertNotIn(text, log)

    def test_every_response_carries_a_distinct_request_id(self):
        ids = set()
        for path, host in (("/secrets/logged-missing", None), ("/healthz", "localhost"),
                           ("/nowhere", "localhost")):
            for _ in range(3):
                if host is None:
                    r = self.srv.kv("GET", path)
                else:
                    r = self.srv.request("GET", path, host=host, auth=False)
                self.assertRegex(r.headers.get("x-ms-request-id", ""), UUID, (path, r))
                ids.add(r.headers["x-ms-request-id"])
        # The unauthenticated probe that SDKs send first, answered on the I/O thread.
        r = self.srv.kv("GET", "/secrets/logged-missing", auth=False)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.headers.get("x-ms-request-id", ""), UUID)
        ids.add(r.headers["x-ms-request-id"])
        self.assertEqual(len(ids), 10)

    def test_hostile_correlation_ids_are_left_out_and_lines_stay_json(self):
        r = self.srv.kv("GET", "/secrets/logged-x", headers={"x-ms-client-request-id": "a" * 200})
        request_id = r.headers["x-ms-request-id"]
        # A Host with bytes outside ASCII reaches the debug line of a misdirected request.
        sock = self.srv.tls_socket(host="localhost")
        try:
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: \xc3\xa9vil\"\\.example\r\n"
                         b"x-ms-client-request-id: \"}{\r\nConnection: close\r\n\r\n")
            while sock.recv(4096):
                pass
        finally:
            sock.close()
        self.assertTrue(wait_until(lambda: any(request_id in line for line in self.lines()),
                                   timeout=30))
        self.assertTrue(wait_until(lambda: any("-> 421" in line for line in self.lines()),
                                   timeout=30))
        quoted = []
        for line in self.lines():
            entry = json.loads(line)  # quotes and bytes outside ASCII escaped: every line parses
            if entry.get("requestId") == request_id:
                self.assertNotIn("correlationId", entry)
            if entry.get("correlationId") == '"}{':
                quoted.append(entry)
        self.assertTrue(quoted, "a printable id with quotes and braces is kept, escaped")
