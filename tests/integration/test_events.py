"""Change events, end to end against the real server: webhooks, expiry notices and the watch
stream.

* Event subscriptions in Event Grid's ARM shape: create, read (without the URL's query string),
  list, getFullUrl, getSigningKey, regenerateSigningKey, delete; bad bodies are refused with a
  clear message; who may manage them.
* Webhook delivery to a loopback HTTP receiver: Event Grid schema and CloudEvents, the headers,
  the Coffer-Signature HMAC, the filters, retries (aeg-delivery-count), the dead-letter file
  (attempts exhausted, a 400, no listener), and that a receiver that hangs never holds up a
  request.  A deleted subscription gets no more attempts; a purged vault's subscriptions do not
  pass to a new vault of the same name.  A retry pending when the server is killed is made after
  it starts again.
* SecretNearExpiry and SecretExpired, each once; VaultAccessPolicyChanged when the policies or
  the permission model change; each notification audited once.
* The watch stream: live events, resuming from the last id under concurrent writes with nothing
  lost or repeated, only what the caller may read, names= and types=, bad tokens, Last-Event-ID,
  no secret values on the wire.  Resuming after 10,000 changes gets all of them or a resync,
  never a closed connection; opening a stream needs a right to read or list in the vault; a
  principal holds at most 16 streams; a stream ends, saying why, when its token expires or its
  principal is deleted.
"""

import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import sqlite3
import stat
import threading
import time
import unittest
import urllib.parse
import uuid

from harness import b64url_decode, free_port, read_text, start_server, wait_until
from test_audit import wait_for_records
from test_authorization import ROLES, AuthzTestCase

EG_API = "2022-06-15"
VAULT_API = "2023-07-01"
WAIT_S = 30.0  # bounds a wait for something that should come; never a performance claim
QUIET_S = 2.0  # how long to keep watching for something that must not come
NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
EXPIRED = "Microsoft.KeyVault.SecretExpired"
POLICY_CHANGED = "Microsoft.KeyVault.VaultAccessPolicyChanged"
DELETED = "Coffer.KeyVault.SecretDeleted"
EVENT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ---- the webhook receiver -------------------------------------------------------------------

class Receiver:
    """A loopback HTTP server that records every POST and answers as planned per path.

    plan(path, [s1, s2, ...]) answers the next requests to path with those statuses, then
    `always` (default 200).  hold(path) makes requests to path wait until release(path) (or
    release()).

    Endpoint validation (Event Grid's SubscriptionValidationEvent POST, CloudEvents' OPTIONS) is
    recorded apart, in `validations`, and answered as validate(path, mode) says: "echo" (the
    default: the code back, or WebHook-Allowed-Origin), "ignore" (200 without it: manual
    validation) or "reject" (403).
    """

    def __init__(self):
        self.cond = threading.Condition()
        self.calls = []
        self.validations = []
        self.modes = {}
        self.plans = {}
        self.always = {}
        self.gates = {}
        self.finished = {}
        self.sockets = set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver.cond:
                    receiver.sockets.add(self.connection)

            def finish(self):
                with receiver.cond:
                    receiver.sockets.discard(self.connection)
                super().finish()

            def _record(self, body):
                url = urllib.parse.urlsplit(self.path)
                return {"method": self.command, "path": url.path, "query": url.query,
                        "body": body, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "at": time.time()}

            def _answer(self, status, headers=(), body=b""):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _validation(self, call):
                with receiver.cond:
                    receiver.validations.append(call)
                    mode = receiver.modes.get(call["path"], "echo")
                    receiver.cond.notify_all()
                if mode == "reject":
                    return self._answer(403)
                if mode == "ignore":
                    return self._answer(200)
                if call["method"] == "OPTIONS":
                    origin = call["headers"].get("webhook-request-origin", "")
                    return self._answer(200, [("WebHook-Allowed-Origin", origin),
                                              ("Allow", "POST")])
                code = json.loads(call["body"])[0]["data"]["validationCode"]
                return self._answer(200, [("Content-Type", "application/json")],
                                    json.dumps({"validationResponse": code}).encode())

            def do_OPTIONS(self):  # noqa: N802 - http.server's name
                self._validation(self._record(b""))

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                call = self._record(self.rfile.read(length))
                if call["headers"].get("aeg-event-type") == "SubscriptionValidation":
                    return self._validation(call)
                path = call["path"]
                with receiver.cond:
                    receiver.calls.append(call)
                    queue = receiver.plans.get(path)
                    status = queue.pop(0) if queue else receiver.always.get(path, 200)
                    gate = receiver.gates.get(path)
                    receiver.cond.notify_all()
                if gate is not None:
                    gate.wait(60)
                    with receiver.cond:
                        receiver.finished[path] = receiver.finished.get(path, 0) + 1
                self._answer(status)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def finished_held(self):
        with self.cond:
            return sum(self.finished.values())

    def url(self, path, query=""):
        return f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def plan(self, path, statuses=(), always=200):
        with self.cond:
            self.plans[path] = list(statuses)
            self.always[path] = always

    def validate(self, path, mode):
        with self.cond:
            self.modes[path] = mode

    def hold(self, path):
        with self.cond:
            self.gates[path] = threading.Event()

    def release(self, path=None):
        with self.cond:
            gates = [self.gates[path]] if path else list(self.gates.values())
        for g in gates:
            g.set()

    def received(self, path):
        with self.cond:
            return [c for c in self.calls if c["path"] == path]

    def validations_of(self, path):
        with self.cond:
            return [c for c in self.validations if c["path"] == path]

    def wait(self, path, match=lambda c: True, count=1, timeout=WAIT_S):
        """Waits until `count` calls to path satisfy match; returns all that do."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [c for c in self.calls if c["path"] == path and match(c)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self.cond.wait(min(left, 0.5))

    def close(self):
        """Stops listening and closes the connections kept alive, so nothing answers."""
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.cond:
            sockets = list(self.sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def events_of(call):
    """The events in one delivery (Event Grid: a JSON array; CloudEvents: one object)."""
    body = json.loads(call["body"])
    return body if isinstance(body, list) else [body]


def subject_is(*subjects):
    return lambda c: any(e.get("subject") in subjects for e in events_of(c))


def type_of(e):
    return e.get("eventType") or e.get("type")


# ---- the watch stream -----------------------------------------------------------------------

class WatchClient:
    """One GET /coffer/watch on a raw TLS socket, parsed incrementally (chunked + SSE)."""

    def __init__(self, srv, vault, query="", token=None, headers=None):
        self.sock = srv.tls_socket(timeout=0.25, host=srv.vault_host(vault))
        token = token or srv.token(srv.vault_resource)
        hdrs = {"Host": f"{srv.vault_host(vault)}:{srv.port}",
                "Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        hdrs.update(headers or {})
        target = "/coffer/watch" + (f"?{query}" if query else "")
        head = f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        self.sock.sendall((head + "\r\n").encode())
        self.wire = b""      # every byte received, for scans
        self.pending = b""   # received, not yet de-chunked
        self.body = b""      # de-chunked body, not yet split into frames
        self.frames = []
        self.closed = False
        self.status, self.headers = self._read_head()

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionError, OSError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self.wire += data
        self.pending += data
        return True

    def _read_head(self):
        deadline = time.monotonic() + WAIT_S
        while b"\r\n\r\n" not in self.pending:
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"no response head: {self.pending!r}")
            self._recv()
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        if not self.chunked:
            n = int(headers.get("content-length", "0"))
            while len(self.pending) < n and not self.closed and time.monotonic() < deadline:
                self._recv()
            self.body, self.pending = self.pending[:n], self.pending[n:]
        return status, headers

    def json(self):
        return json.loads(self.body)

    def _dechunk(self):
        while True:
            end = self.pending.find(b"\r\n")
            if end < 0:
                return
            size = int(self.pending[:end].split(b";")[0], 16)
            if len(self.pending) < end + 2 + size + 2:
                return
            self.body += self.pending[end + 2:end + 2 + size]
            self.pending = self.pending[end + 2 + size + 2:]
            if size == 0:
                self.closed = True
                return

    def _split(self):
        while b"\n\n" in self.body:
            raw, self.body = self.body.split(b"\n\n", 1)
            frame = {"comments": []}
            for line in raw.decode("utf-8").split("\n"):
                if line.startswith(":"):
                    frame["comments"].append(line[1:].strip())
                elif ":" in line:
                    k, v = line.split(":", 1)
                    frame[k] = v[1:] if v.startswith(" ") else v
            if "data" in frame:
                frame["json"] = json.loads(frame["data"])
            self.frames.append(frame)

    def pump(self):
        got = self._recv()
        self._dechunk()
        self._split()
        return got

    def read_until(self, pred, timeout=WAIT_S):
        """Reads until some frame satisfies pred (or the stream ends / time runs out);
        returns that frame or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for f in self.frames[seen:]:
                if pred(f):
                    return f
            seen = len(self.frames)
            if self.closed or time.monotonic() > deadline:
                return None
            self.pump()

    def ready(self):
        f = self.read_until(lambda f: f.get("event") == "coffer.ready")
        if f is None:
            raise AssertionError(f"no coffer.ready frame: {self.wire[-2000:]!r}")
        return f

    def events(self):
        return [f for f in self.frames if "event" in f and f["event"] != "coffer.ready"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- the test base ---------------------------------------------------------------------------

class EventsTestCase(AuthzTestCase):
    SERVER_ARGS = ("--event-retry-base-ms", "50", "--expiry-scan-interval", "1",
                   "--watch-heartbeat", "1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = Receiver()
        cls.addClassCleanup(cls.receiver.close)
        cls.admin_entry = cls.policy_entry(cls.admin_oid, ["all"])

    @classmethod
    def new_vault(cls, name, rbac=False):
        return cls.create_vault(f"rg-{name}", name, rbac, None if rbac else [cls.admin_entry])

    def sub_path(self, vault, name=None, action=None):
        p = (f"/resourceGroups/rg-{vault}/providers/Microsoft.KeyVault/vaults/{vault}/providers/"
             f"Microsoft.EventGrid/eventSubscriptions")
        if name:
            p += f"/{name}"
        if action:
            p += f"/{action}"
        return p

    def sub_call(self, method, vault, name=None, action=None, body=None, token=None):
        kw = {"token": token} if token else {}
        return self.srv.arm(method, self.sub_path(vault, name, action), body, api_version=EG_API,
                            **kw)

    @staticmethod
    def sub_body(url, types=None, begins="", ends="", schema="EventGridSchema", attempts=None,
                 ttl=None, endpoint_type="WebHook"):
        props = {"destination": {"endpointType": endpoint_type,
                                 "properties": {"endpointUrl": url}},
                 "filter": {"includedEventTypes": types, "subjectBeginsWith": begins,
                            "subjectEndsWith": ends},
                 "eventDeliverySchema": schema}
        if attempts is not None or ttl is not None:
            props["retryPolicy"] = {}
            if attempts is not None:
                props["retryPolicy"]["maxDeliveryAttempts"] = attempts
            if ttl is not None:
                props["retryPolicy"]["eventTimeToLiveInMinutes"] = ttl
        return {"properties": props}

    def subscribe(self, vault, name, url, **kw):
        r = self.sub_call("PUT", vault, name, body=self.sub_body(url, **kw))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["properties"]["provisioningState"], "Succeeded", r)
        return r.json()

    def state(self, vault, name):
        r = self.sub_call("GET", vault, name)
        self.assertEqual(r.status, 200, r)
        return r.json()["properties"]["provisioningState"]

    def use_validation_url(self, url, method="GET"):
        """Calls a validation URL as the endpoint's owner would: no token, nothing else."""
        parts = urllib.parse.urlsplit(url)
        self.assertEqual(f"{parts.scheme}://{parts.netloc}", self.srv.authority, url)
        return self.srv.request(method, parts.path + "?" + parts.query, host="localhost",
                                auth=False)

    def signing_key(self, vault, name):
        r = self.sub_call("POST", vault, name, "getSigningKey")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def set_secret(self, vault, name, value="v", attributes=None):
        body = {"value": value}
        if attributes:
            body["attributes"] = attributes
        r = self.srv.kv("PUT", f"/secrets/{name}", body, vault=vault)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assertSigned(self, call, key_b64, msg=""):
        key = b64url_decode(key_b64)
        header = call["headers"].get("coffer-signature", "")
        m = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
        self.assertIsNotNone(m, f"{msg}: Coffer-Signature {header!r}")
        t, v1 = m.group(1), m.group(2)
        want = hmac.new(key, t.encode() + b"." + call["body"], hashlib.sha256).hexdigest()
        self.assertEqual(v1, want, f"{msg}: signature does not verify")
        # t is the time of sending: not after the receipt, and not a stale stamp.
        self.assertLessEqual(int(t), call["at"] + 1, msg)
        self.assertLess(call["at"] - int(t), 300, msg)

    def dead_letters(self):
        path = os.path.join(self.srv.data_dir, "events", "deadletter.jsonl")
        text = read_text(path)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_dead_letter(self, subscription):
        def found():
            return [d for d in self.dead_letters() if d["subscriptionName"] == subscription]
        wait_until(found, WAIT_S)
        return found()


class WebhookTests(EventsTestCase):

    def test_event_grid_delivery_headers_signature_and_resource_shape(self):
        vault = "evgrid"
        v = self.new_vault(vault)
        self.set_secret(vault, "before", "before-value")  # committed before: never delivered
        url = self.receiver.url("/grid", "code=s3cr3t-query&x=1")
        r = self.sub_call("PUT", vault, "grid-sub", body=self.sub_body(url))
        self.assertEqual(r.status, 201, r)
        sub_id = f"{v['id']}/providers/Microsoft.EventGrid/eventSubscriptions/grid-sub"
        for label, resp in (("PUT", r), ("GET", self.sub_call("GET", vault, "grid-sub")),
                            ("PUT again", self.sub_call("PUT", vault, "grid-sub",
                                                        body=self.sub_body(url)))):
            with self.subTest(label):
                self.assertEqual(resp.status, 200 if label != "PUT" else 201, resp)
                self.assertNotIn(b"s3cr3t-query", resp.body, "the URL's query string is hidden")
                got = resp.json()
                self.assertEqual((got["id"], got["name"], got["type"]),
                                 (sub_id, "grid-sub", "Microsoft.EventGrid/eventSubscriptions"))
                p = got["properties"]
                self.assertEqual(p["destination"]["endpointType"], "WebHook")
                self.assertEqual(p["destination"]["properties"]["endpointBaseUrl"],
                                 self.receiver.url("/grid"))
                self.assertNotIn("endpointUrl", p["destination"]["properties"])
                self.assertEqual(p["topic"], v["id"])
                self.assertEqual(p["eventDeliverySchema"], "EventGridSchema")
                self.assertEqual(p["provisioningState"], "Succeeded")
        listed = self.sub_call("GET", vault)
        self.assertEqual(listed.status, 200, listed)
        self.assertNotIn(b"s3cr3t-query", listed.body)
        self.assertEqual([s["name"] for s in listed.json()["value"]], ["grid-sub"])
        full = self.sub_call("POST", vault, "grid-sub", "getFullUrl")
        self.assertEqual((full.status, full.json()), (200, {"endpointUrl": url}))
        key = self.signing_key(vault, "grid-sub")
        self.assertEqual((key["keyGeneration"], key["header"]), (1, "Coffer-Signature"))
        self.assertEqual(len(b64url_decode(key["signingKey"])), 32)
        self.assertEqual(self.signing_key(vault, "grid-sub")["signingKey"], key["signingKey"])

        secret = self.set_secret(vault, "alpha", "alpha-value-do-not-send",
                                 {"exp": 4102444800, "nbf": 1700000000})
        calls = self.receiver.wait("/grid", subject_is("alpha"))
        self.assertEqual(len(calls), 1, calls)
        call = calls[0]
        h = call["headers"]
        self.assertEqual(call["query"], "code=s3cr3t-query&x=1", "delivered to the full URL")
        self.assertEqual(h["aeg-event-type"], "Notification")
        self.assertEqual(h["aeg-subscription-name"], "GRID-SUB")
        self.assertEqual(h["aeg-delivery-count"], "0")
        self.assertEqual(h["aeg-data-version"], "1")
        self.assertEqual(h["aeg-metadata-version"], "1")
        self.assertTrue(h["content-type"].startswith("application/json"), h)
        self.assertSigned(call, key["signingKey"])
        body = json.loads(call["body"])
        self.assertIsInstance(body, list)
        self.assertEqual(len(body), 1)
        e = body[0]
        version = secret["id"].rsplit("/", 1)[1]
        self.assertRegex(e["id"], UUID_RE)
        self.assertRegex(e["eventTime"], EVENT_TIME)
        self.assertEqual({k: e[k] for k in ("topic", "subject", "eventType", "dataVersion",
                                            "metadataVersion")},
                         {"topic": v["id"], "subject": "alpha", "eventType": NEW_VERSION,
                          "dataVersion": "1", "metadataVersion": "1"})
        self.assertEqual(e["data"], {"Id": secret["id"], "VaultName": vault,
                                     "ObjectType": "Secret", "ObjectName": "alpha",
                                     "Version": version, "NBF": 1700000000, "EXP": 4102444800})
        self.assertNotIn(b"alpha-value-do-not-send", call["body"])

        # A new key signs what is sent from then on; the old one no longer verifies.
        r = self.sub_call("POST", vault, "grid-sub", "regenerateSigningKey")
        self.assertEqual(r.status, 200, r)
        new_key = r.json()
        self.assertEqual(new_key["keyGeneration"], 2)
        self.assertNotEqual(new_key["signingKey"], key["signingKey"])
        self.assertEqual(self.signing_key(vault, "grid-sub")["signingKey"],
                         new_key["signingKey"])
        self.set_secret(vault, "beta")
        call = self.receiver.wait("/grid", subject_is("beta"))[0]
        self.assertSigned(call, new_key["signingKey"])
        with self.assertRaises(AssertionError):
            self.assertSigned(call, key["signingKey"])

        # Deleted: nothing more is sent to it (a second subscription shows when it would be).
        self.subscribe(vault, "grid-marker", self.receiver.url("/grid-marker"))
        r = self.sub_call("DELETE", vault, "grid-sub")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.sub_call("GET", vault, "grid-sub").status, 404)
        self.assertEqual(self.sub_call("POST", vault, "grid-sub", "getFullUrl").status, 404)
        self.set_secret(vault, "gamma")
        self.assertEqual(len(self.receiver.wait("/grid-marker", subject_is("gamma"))), 1)
        subjects = [e["subject"] for c in self.receiver.received("/grid") for e in events_of(c)]
        self.assertEqual(subjects, ["alpha", "beta"], "nothing before creation or after delete")

    def test_cloud_events_delivery(self):
        vault = "evcloud"
        v = self.new_vault(vault)
        self.subscribe(vault, "cloud-sub", self.receiver.url("/cloud"),
                       schema="CloudEventSchemaV1_0")
        # CloudEvents' abuse protection instead of Event Grid's validation event.
        (handshake,) = self.receiver.validations_of("/cloud")
        self.assertEqual(handshake["method"], "OPTIONS")
        self.assertEqual(handshake["headers"]["webhook-request-origin"], "localhost")
        self.assertTrue(handshake["headers"]["webhook-request-callback"].startswith(
            f"{self.srv.authority}/eventsubscriptions/{vault}/cloud-sub/validate?token="))
        key = self.signing_key(vault, "cloud-sub")["signingKey"]
        got = self.sub_call("GET", vault, "cloud-sub").json()
        self.assertEqual(got["properties"]["eventDeliverySchema"], "CloudEventSchemaV1_0")
        secret = self.set_secret(vault, "ce", "cloud-value-do-not-send")
        call = self.receiver.wait("/cloud", subject_is("ce"))[0]
        self.assertEqual(call["headers"]["content-type"],
                         "application/cloudevents+json; charset=utf-8")
        self.assertEqual(call["headers"]["aeg-subscription-name"], "CLOUD-SUB")
        self.assertEqual(call["headers"]["origin"], "localhost")
        self.assertSigned(call, key)
        e = json.loads(call["body"])
        self.assertIsInstance(e, dict, "CloudEvents are sent one object at a time")
        self.assertRegex(e["id"], UUID_RE)
        self.assertRegex(e["time"], EVENT_TIME)
        self.assertEqual({k: e[k] for k in ("specversion", "source", "subject", "type")},
                         {"specversion": "1.0", "source": v["id"], "subject": "ce",
                          "type": NEW_VERSION})
        self.assertEqual(e["data"]["Id"], secret["id"])
        self.assertEqual(e["data"]["Version"], secret["id"].rsplit("/", 1)[1])
        self.assertNotIn(b"cloud-value-do-not-send", call["body"])
        # An endpoint that answers OPTIONS without allowing the origin waits for its callback.
        self.receiver.validate("/cloud-manual", "ignore")
        r = self.sub_call("PUT", vault, "cloud-manual",
                          body=self.sub_body(self.receiver.url("/cloud-manual"),
                                             schema="CloudEventSchemaV1_0"))
        self.assertEqual((r.status, r.json()["properties"]["provisioningState"]),
                         (201, "AwaitingManualAction"), r)
        callback = self.receiver.validations_of("/cloud-manual")[0]["headers"][
            "webhook-request-callback"]
        self.assertEqual(self.use_validation_url(callback, "POST").status, 200)
        self.assertEqual(self.state(vault, "cloud-manual"), "Succeeded")

    def test_the_endpoint_validates_before_any_delivery(self):
        vault = "evvalid"
        v = self.new_vault(vault)
        self.set_secret(vault, "before")
        url = self.receiver.url("/valid", "code=s3cr3t-v")
        self.subscribe(vault, "valid-sub", url)
        calls = self.receiver.validations_of("/valid")
        self.assertEqual(len(calls), 1, calls)
        call = calls[0]
        self.assertEqual((call["method"], call["query"]), ("POST", "code=s3cr3t-v"))
        h = call["headers"]
        self.assertEqual(h["aeg-event-type"], "SubscriptionValidation")
        self.assertEqual(h["aeg-subscription-name"], "VALID-SUB")
        self.assertTrue(h["content-type"].startswith("application/json"), h)
        body = json.loads(call["body"])
        self.assertIsInstance(body, list)
        self.assertEqual(len(body), 1)
        e = body[0]
        self.assertEqual(e["eventType"], "Microsoft.EventGrid.SubscriptionValidationEvent")
        self.assertEqual(e["topic"], v["id"])
        self.assertRegex(e["id"], UUID_RE)
        self.assertRegex(e["eventTime"], EVENT_TIME)
        self.assertRegex(e["data"]["validationCode"], UUID_RE)
        validation_url = e["data"]["validationUrl"]
        self.assertTrue(validation_url.startswith(
            f"{self.srv.authority}/eventsubscriptions/{vault}/valid-sub/validate?token="),
            validation_url)
        self.assertEqual(self.receiver.received("/valid"), [], "the handshake is no notification")
        self.set_secret(vault, "after")
        self.assertEqual(len(self.receiver.wait("/valid", subject_is("after"))), 1)
        # The echo used the handshake up: its validation URL no longer works.
        self.assertErrorBody(self.use_validation_url(validation_url), 404, "NotFound")
        # The same endpoint again: no new handshake; another URL: a new one, to that URL.
        r = self.sub_call("PUT", vault, "valid-sub", body=self.sub_body(url, begins="a"))
        self.assertEqual((r.status, r.json()["properties"]["provisioningState"]),
                         (200, "Succeeded"), r)
        self.assertEqual(len(self.receiver.validations_of("/valid")), 1)
        r = self.sub_call("PUT", vault, "valid-sub",
                          body=self.sub_body(self.receiver.url("/valid-moved")))
        self.assertEqual((r.status, r.json()["properties"]["provisioningState"]),
                         (200, "Succeeded"), r)
        self.assertEqual(len(self.receiver.validations_of("/valid-moved")), 1)
        subjects = [e["subject"] for c in self.receiver.received("/valid") for e in events_of(c)]
        self.assertEqual(subjects, ["after"])

    def test_an_endpoint_that_does_not_echo_awaits_manual_validation_and_gets_nothing(self):
        vault = "evmanual"
        self.new_vault(vault)
        self.receiver.validate("/manual", "ignore")
        r = self.sub_call("PUT", vault, "manual-sub",
                          body=self.sub_body(self.receiver.url("/manual")))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["properties"]["provisioningState"], "AwaitingManualAction")
        self.assertNotIn(b"validation", r.body, "no validation state or token in the resource")
        # A subscription that echoed shows when the waiting one would have had the event.
        self.subscribe(vault, "manual-marker", self.receiver.url("/manual-marker"))
        self.set_secret(vault, "while-awaiting")
        self.assertEqual(len(self.receiver.wait("/manual-marker", subject_is("while-awaiting"))),
                         1)
        self.assertEqual(self.receiver.received("/manual"), [])
        self.assertEqual(self.state(vault, "manual-sub"), "AwaitingManualAction")
        event = json.loads(self.receiver.validations_of("/manual")[0]["body"])[0]
        validation_url = event["data"]["validationUrl"]
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(validation_url).query)["token"][0]
        self.assertGreaterEqual(len(token), 43, "256 random bits")
        # A wrong token, or the right one on another subscription, does nothing and says
        # nothing about why.
        wrong = validation_url.replace(token, ("A" if token[0] != "A" else "B") + token[1:])
        other = validation_url.replace("/manual-sub/", "/manual-marker/")
        for label, u in (("wrong token", wrong), ("other subscription", other)):
            with self.subTest(label):
                err = self.assertErrorBody(self.use_validation_url(u), 404, "NotFound", label)
                self.assertIn("not valid", err["error"]["message"])
        # Another method is not a way in, and does not use the URL up.
        r = self.use_validation_url(validation_url, "PUT")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(self.state(vault, "manual-sub"), "AwaitingManualAction")
        # The owner opens the URL: validated, once.
        r = self.use_validation_url(validation_url)
        self.assertEqual(r.status, 200, r)
        self.assertErrorBody(self.use_validation_url(validation_url), 404, "NotFound")
        self.assertEqual(self.state(vault, "manual-sub"), "Succeeded")
        self.set_secret(vault, "after-manual")
        self.assertEqual(len(self.receiver.wait("/manual", subject_is("after-manual"))), 1)
        subjects = [e["subject"] for c in self.receiver.received("/manual") for e in events_of(c)]
        self.assertEqual(subjects, ["after-manual"], "nothing from before it was validated")
        # The token reached neither the audit log nor the server's log.
        recs = wait_for_records(
            self.srv, lambda rec: (rec["operationName"] == "EventSubscriptionValidate" and
                                   rec["resourceId"].endswith("/VAULTS/EVMANUAL")), count=4)
        self.assertEqual(len(recs), 4, recs)
        self.assertEqual(sorted(rec["properties"]["httpStatusCode"] for rec in recs),
                         [200, 404, 404, 404])
        for rec in recs:
            self.assertNotIn(token, json.dumps(rec))
            self.assertNotIn(token[1:], json.dumps(rec))
        self.assertNotIn(token, self.srv.stderr_text())

    def test_a_failed_validation_delivers_nothing_and_loses_nothing(self):
        vault = "evfail"
        self.new_vault(vault)
        self.receiver.validate("/refuses", "reject")
        refusing = self.receiver.url("/refuses")
        r = self.sub_call("PUT", vault, "refused-sub", body=self.sub_body(refusing))
        err = self.assertErrorBody(r, 400, "InvalidRequest")["error"]["message"]
        self.assertIn(f"Webhook validation handshake failed for {refusing}: ", err)
        self.assertIn("HTTP 403", err)
        self.assertEqual(self.state(vault, "refused-sub"), "Failed")
        # A validated subscription moved to an endpoint that refuses stays as it was.
        self.subscribe(vault, "moving-sub", self.receiver.url("/stays"))
        r = self.sub_call("PUT", vault, "moving-sub", body=self.sub_body(refusing))
        err = self.assertErrorBody(r, 400, "InvalidRequest")["error"]["message"]
        self.assertIn("unchanged", err)
        self.assertEqual(self.state(vault, "moving-sub"), "Succeeded")
        full = self.sub_call("POST", vault, "moving-sub", "getFullUrl")
        self.assertEqual(full.json(), {"endpointUrl": self.receiver.url("/stays")})
        # Nothing listens: refused the same way, without saying what the connection met.
        r = self.sub_call("PUT", vault, "nobody-sub",
                          body=self.sub_body(f"http://127.0.0.1:{free_port()}/hook"))
        err = self.assertErrorBody(r, 400, "InvalidRequest")["error"]["message"]
        self.assertIn("did not answer", err)
        self.assertNotIn("refused", err.lower().replace("is refused", ""))
        self.set_secret(vault, "after-failures")
        self.assertEqual(len(self.receiver.wait("/stays", subject_is("after-failures"))), 1)
        self.assertEqual(self.receiver.received("/refuses"), [])
        # A Failed subscription is validated again by a PUT.
        self.receiver.validate("/refuses", "echo")
        r = self.sub_call("PUT", vault, "refused-sub", body=self.sub_body(refusing))
        self.assertEqual((r.status, r.json()["properties"]["provisioningState"]),
                         (200, "Succeeded"), r)

    def test_a_slow_endpoint_does_not_delay_another(self):
        vault = "evisolate"
        self.new_vault(vault)
        self.receiver.hold("/isolate-slow")
        self.subscribe(vault, "slow-sub", self.receiver.url("/isolate-slow"))
        self.subscribe(vault, "fast-sub", self.receiver.url("/isolate-fast"))
        try:
            for i in range(2):
                self.set_secret(vault, f"first-{i}")
            # The slow endpoint holds every delivery it may have in flight.
            self.assertEqual(len(self.receiver.wait("/isolate-slow", count=2)), 2)
            for i in range(5):
                self.set_secret(vault, f"then-{i}")
            # Measured by order: all of the fast endpoint's events arrive while the slow one
            # has finished none.
            self.assertEqual(len(self.receiver.wait("/isolate-fast", count=7)), 7,
                             "the fast endpoint waited for the slow one")
            self.assertEqual(self.receiver.finished.get("/isolate-slow", 0), 0)
        finally:
            self.receiver.release("/isolate-slow")
        self.assertEqual(len(self.receiver.wait("/isolate-slow", count=7)), 7)

    def test_filters(self):
        vault = "evfilter"
        self.new_vault(vault)
        self.subscribe(vault, "prefix-sub", self.receiver.url("/prefix"), types=[NEW_VERSION],
                       begins="app-")
        self.subscribe(vault, "suffix-sub", self.receiver.url("/suffix"), ends="-db")
        self.subscribe(vault, "deleted-sub", self.receiver.url("/deleted"), types=[DELETED])
        self.subscribe(vault, "all-sub", self.receiver.url("/all"))
        for name in ("app-one", "other", "APP-CASE", "web-db", "app-db"):
            self.set_secret(vault, name)
        r = self.srv.kv("DELETE", "/secrets/app-one", vault=vault)
        self.assertEqual(r.status, 200, r)
        self.set_secret(vault, "last")
        # Wait for what each should get, then a little longer for anything it should not.
        for path, n in (("/all", 6), ("/prefix", 3), ("/suffix", 2), ("/deleted", 1)):
            self.assertGreaterEqual(len(self.receiver.wait(path, count=n)), n, path)
        time.sleep(QUIET_S)

        def seen(path):
            return sorted((e["subject"], e["eventType"]) for c in self.receiver.received(path)
                          for e in events_of(c))

        self.assertEqual(seen("/prefix"), sorted([("app-one", NEW_VERSION),
                                                  ("APP-CASE", NEW_VERSION),
                                                  ("app-db", NEW_VERSION)]))
        self.assertEqual(seen("/suffix"), sorted([("web-db", NEW_VERSION),
                                                  ("app-db", NEW_VERSION)]))
        self.assertEqual(seen("/deleted"), [("app-one", DELETED)])
        # Without includedEventTypes: the Key Vault types (Coffer's own are asked for by name).
        self.assertEqual(seen("/all"), sorted((n, NEW_VERSION) for n in (
            "app-one", "other", "APP-CASE", "web-db", "app-db", "last")))

    def test_retries_then_success(self):
        vault = "evretry"
        self.new_vault(vault)
        self.receiver.plan("/flaky", [500, 503])
        self.subscribe(vault, "flaky-sub", self.receiver.url("/flaky"))
        key = self.signing_key(vault, "flaky-sub")["signingKey"]
        self.set_secret(vault, "wobbly")
        calls = self.receiver.wait("/flaky", subject_is("wobbly"), count=3)
        self.assertEqual([c["headers"]["aeg-delivery-count"] for c in calls], ["0", "1", "2"])
        self.assertEqual(len({events_of(c)[0]["id"] for c in calls}), 1, "the same event")
        self.assertEqual(len({c["body"] for c in calls}), 1, "the same body each time")
        for c in calls:
            self.assertSigned(c, key)
        # Delivered: no further attempt (a later event shows the subscription has moved on).
        self.set_secret(vault, "steady")
        self.receiver.wait("/flaky", subject_is("steady"))
        self.assertEqual(len(self.receiver.received("/flaky")), 4)
        self.assertEqual([d for d in self.dead_letters() if d["vaultName"] == vault], [])

    def test_dead_letters(self):
        vault = "evdead"
        self.new_vault(vault)
        self.receiver.plan("/down", always=503)
        self.receiver.plan("/reject", always=400)
        self.subscribe(vault, "down-sub", self.receiver.url("/down"), begins="down-", attempts=3)
        self.subscribe(vault, "reject-sub", self.receiver.url("/reject"), begins="reject-",
                       attempts=10)
        # An endpoint that validated, then went away.
        gone = Receiver()
        self.subscribe(vault, "nowhere-sub", gone.url("/hook"), begins="nowhere-", attempts=2)
        gone.close()
        self.set_secret(vault, "down-1")
        self.set_secret(vault, "reject-1")
        self.set_secret(vault, "nowhere-1")

        cases = (("down-sub", "down-1", "MaxDeliveryAttemptsExceeded", 3, 503, "/down"),
                 ("reject-sub", "reject-1", "NonRetryableResponse", 1, 400, "/reject"),
                 ("nowhere-sub", "nowhere-1", "MaxDeliveryAttemptsExceeded", 2, 0, None))
        for sub, subject, reason, attempts, status, path in cases:
            with self.subTest(sub):
                found = self.wait_dead_letter(sub)
                self.assertEqual(len(found), 1, found)
                d = found[0]
                self.assertEqual(d["deadLetterReason"], reason)
                self.assertEqual(d["deliveryAttempts"], attempts)
                self.assertEqual(d["lastHttpStatusCode"], status)
                self.assertEqual(d["vaultName"], vault)
                self.assertTrue(d["lastDeliveryOutcome"], d)
                if status:
                    self.assertEqual(d["lastDeliveryOutcome"], f"HTTP {status}")
                self.assertEqual(d["event"]["subject"], subject)
                self.assertEqual(d["event"]["eventType"], NEW_VERSION)
                self.assertRegex(d["event"]["id"], UUID_RE)
                if path:
                    calls = self.receiver.received(path)
                    self.assertEqual([c["headers"]["aeg-delivery-count"] for c in calls],
                                     [str(i) for i in range(attempts)])
                    self.assertEqual({events_of(c)[0]["id"] for c in calls}, {d["event"]["id"]})
        mode = os.stat(os.path.join(self.srv.data_dir, "events", "deadletter.jsonl")).st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o600)
        # No attempt after the dead letter.
        time.sleep(QUIET_S)
        self.assertEqual(len(self.receiver.received("/down")), 3)
        self.assertEqual(len(self.receiver.received("/reject")), 1)
        self.assertEqual(len([d for d in self.dead_letters() if d["vaultName"] == vault]), 3)

    def test_deleting_a_subscription_stops_its_retries(self):
        vault = "evstop"
        self.new_vault(vault)
        self.receiver.plan("/stop", always=503)
        self.subscribe(vault, "stop-sub", self.receiver.url("/stop"))  # 30 attempts
        self.set_secret(vault, "stopping")
        self.assertEqual(len(self.receiver.wait("/stop", count=2)), 2)
        r = self.sub_call("DELETE", vault, "stop-sub")
        self.assertEqual(r.status, 200, r)
        at_delete = len(self.receiver.received("/stop"))
        # The next retries are due 0.3 s and 1.5 s after the last; one attempt may have been
        # on its way when the DELETE was answered.
        time.sleep(QUIET_S + 1)
        counts = [c["headers"]["aeg-delivery-count"] for c in self.receiver.received("/stop")]
        self.assertLessEqual(len(counts), at_delete + 1,
                             f"attempts went on after the subscription was deleted: {counts}")

    def test_a_purged_vaults_subscriptions_do_not_pass_to_a_new_vault_of_that_name(self):
        vault = "evreuse"
        self.new_vault(vault)
        self.subscribe(vault, "old-sub", self.receiver.url("/reuse-old"))
        self.set_secret(vault, "first")
        self.assertEqual(len(self.receiver.wait("/reuse-old", subject_is("first"))), 1)
        vault_path = f"/resourceGroups/rg-{vault}/providers/Microsoft.KeyVault/vaults/{vault}"
        self.assertEqual(self.srv.arm("DELETE", vault_path).status, 200)
        r = self.srv.arm("POST", f"/providers/Microsoft.KeyVault/locations/local/deletedVaults/"
                                 f"{vault}/purge")
        self.assertEqual(r.status, 200, r)
        self.new_vault(vault)
        r = self.sub_call("GET", vault)
        self.assertEqual((r.status, r.json()), (200, {"value": []}))
        # (No subscription is written in between: that would make the server re-read them.)
        self.set_secret(vault, "second")
        time.sleep(QUIET_S)
        subjects = [e["subject"] for c in self.receiver.received("/reuse-old")
                    for e in events_of(c)]
        self.assertEqual(subjects, ["first"],
                         "the purged vault's subscription received the new vault's events")
        # The new vault's own subscriptions work.
        self.subscribe(vault, "new-sub", self.receiver.url("/reuse-new"))
        self.set_secret(vault, "third")
        self.assertEqual(len(self.receiver.wait("/reuse-new", subject_is("third"))), 1)

    def test_a_hanging_receiver_never_holds_up_a_request(self):
        vault = "evslow"
        self.new_vault(vault)
        self.receiver.hold("/slow")
        self.subscribe(vault, "slow-sub", self.receiver.url("/slow"))
        try:
            for i in range(3):
                self.set_secret(vault, f"slow-{i}")
            # The subscription's deliveries in flight are now stuck in the receiver.
            self.assertGreaterEqual(len(self.receiver.wait("/slow", count=2)), 2)
            self.assertEqual(self.receiver.finished_held, 0)
            secret = self.set_secret(vault, "while-stuck")
            r = self.srv.kv("GET", "/secrets/while-stuck", vault=vault)
            self.assertEqual((r.status, r.json()["id"]), (200, secret["id"]))
            r = self.srv.kv("DELETE", "/secrets/slow-0", vault=vault)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.receiver.finished_held, 0,
                             "the requests were answered while the receiver still held")
        finally:
            self.receiver.release("/slow")
        self.assertEqual(len(self.receiver.wait("/slow", subject_is("while-stuck"))), 1)

    def test_bad_subscription_bodies_are_refused(self):
        vault = "evbad"
        self.new_vault(vault)
        good = self.receiver.url("/bad")
        cases = (
            ("EventHub destination", "bad-sub", self.sub_body(good, endpoint_type="EventHub"),
             "endpointType must be 'WebHook'"),
            ("ftp URL", "bad-sub", self.sub_body("ftp://127.0.0.1/hook"), "endpointUrl"),
            ("plain http to another host", "bad-sub",
             self.sub_body("http://example.com/hook"), "endpointUrl"),
            ("no URL", "bad-sub", self.sub_body(""), "endpointUrl"),
            ("unknown event type", "bad-sub",
             self.sub_body(good, types=["Microsoft.KeyVault.SecretExploded"]),
             "unknown event type: Microsoft.KeyVault.SecretExploded"),
            ("maxDeliveryAttempts 31", "bad-sub", self.sub_body(good, attempts=31),
             "maxDeliveryAttempts must be an integer from 1 to 30"),
            ("maxDeliveryAttempts 0", "bad-sub", self.sub_body(good, attempts=0),
             "maxDeliveryAttempts must be an integer from 1 to 30"),
            ("event TTL 1441", "bad-sub", self.sub_body(good, ttl=1441),
             "eventTimeToLiveInMinutes must be an integer from 1 to 1440"),
            ("unknown schema", "bad-sub", self.sub_body(good, schema="CustomInputSchema"),
             "eventDeliverySchema"),
            ("private address", "bad-sub", self.sub_body("https://10.1.2.3/hook"),
             "private address, which this server does not deliver webhooks to (the operator "
             "allows it with --webhook-allow-private)"),
            ("cloud metadata address", "bad-sub",
             self.sub_body("https://169.254.169.254/metadata/instance"),
             "--webhook-allow-link-local"),
            ("IPv6 link-local", "bad-sub", self.sub_body("https://[fe80::1]/hook"), "link-local"),
            ("IPv6 unique local", "bad-sub", self.sub_body("https://[fd00::1]/hook"), "private"),
            ("private address mapped into IPv6", "bad-sub",
             self.sub_body("https://[::ffff:192.168.1.1]/hook"), "private"),
            ("unspecified address", "bad-sub", self.sub_body("https://0.0.0.0/hook"),
             "unspecified, multicast or reserved"),
            ("a query before the path", "bad-sub",
             self.sub_body("http://localhost?.attacker.example/"), "authority must not hold"),
            ("userinfo", "bad-sub", self.sub_body("https://user@hooks.example/"), "endpointUrl"),
            ("name too short", "a", self.sub_body(good), "3-64"),
            ("name with a dot", "bad.sub", self.sub_body(good), "3-64"),
        )
        for label, name, body, needle in cases:
            with self.subTest(label):
                r = self.sub_call("PUT", vault, name, body=body)
                err = self.assertErrorBody(r, 400, None, label)
                self.assertIn(needle, err["error"]["message"], label)
        r = self.srv.arm("PUT", self.sub_path(vault, "bad-sub"), "{not json", api_version=EG_API,
                         headers={"Content-Type": "application/json"})
        self.assertErrorBody(r, 400)
        r = self.sub_call("GET", vault)
        self.assertEqual((r.status, r.json()), (200, {"value": []}), "nothing was created")
        r = self.sub_call("PUT", vault, "bad-sub", body=self.sub_body(good))
        self.assertEqual(r.status, 201, "the same body with good values is accepted")

    def test_who_may_manage_subscriptions(self):
        vault = "evauthz"
        v = self.new_vault(vault)
        self.subscribe(vault, "owned", self.receiver.url("/authz", "code=hidden"))
        officer = self.new_sp("events-secrets-officer")
        reader = self.new_sp("events-reader")
        contributor = self.new_sp("events-contributor")
        self.assign_ok(v["id"], ROLES["Key Vault Secrets Officer"], officer.oid)
        self.assign_ok(v["id"], ROLES["Reader"], reader.oid)
        self.assign_ok(v["id"], ROLES["Contributor"], contributor.oid)
        body = self.sub_body(self.receiver.url("/authz"))
        prefix = "Microsoft.EventGrid/eventSubscriptions/"
        for label, method, name, action, b, want in (
                ("create", "PUT", "new-sub", None, body, prefix + "write"),
                ("replace", "PUT", "owned", None, body, prefix + "write"),
                ("read", "GET", "owned", None, None, prefix + "read"),
                ("full URL", "POST", "owned", "getFullUrl", None, prefix + "getFullUrl/action"),
                ("signing key", "POST", "owned", "getSigningKey", None,
                 prefix + "getSigningKey/action"),
                ("new signing key", "POST", "owned", "regenerateSigningKey", None,
                 prefix + "regenerateSigningKey/action"),
                ("delete", "DELETE", "owned", None, None, prefix + "delete")):
            with self.subTest(label):
                r = self.sub_call(method, vault, name, action, b, token=officer.mgmt_token)
                self.assertArmDenied(r, want, label)
                self.assertNotIn(b"hidden", r.body)
        r = self.sub_call("GET", vault, token=officer.mgmt_token)
        self.assertEqual((r.status, r.json()), (200, {"value": []}), "the list is filtered")
        # A Reader reads the subscription, but neither its full URL nor its key.
        r = self.sub_call("GET", vault, "owned", token=reader.mgmt_token)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(b"hidden", r.body)
        self.assertEqual(len(self.sub_call("GET", vault, token=reader.mgmt_token)
                             .json()["value"]), 1)
        for action in ("getFullUrl", "getSigningKey"):
            r = self.sub_call("POST", vault, "owned", action, token=reader.mgmt_token)
            self.assertArmDenied(r, f"{prefix}{action}/action")
        r = self.sub_call("PUT", vault, "by-reader", body=body, token=reader.mgmt_token)
        self.assertArmDenied(r, prefix + "write")
        # A Contributor manages them.
        r = self.sub_call("PUT", vault, "by-contributor", body=body,
                          token=contributor.mgmt_token)
        self.assertEqual(r.status, 201, r)
        r = self.sub_call("POST", vault, "owned", "getFullUrl", token=contributor.mgmt_token)
        self.assertEqual(r.json(), {"endpointUrl": self.receiver.url("/authz", "code=hidden")})
        r = self.sub_call("DELETE", vault, "by-contributor", token=contributor.mgmt_token)
        self.assertEqual(r.status, 200, r)
        names = [s["name"] for s in self.sub_call("GET", vault).json()["value"]]
        self.assertEqual(names, ["owned"], "the denied requests changed nothing")


class RetriesOutliveARestart(unittest.TestCase):
    """A webhook retry pending when `coffer server` dies is made after it starts again: the
    delivery is a row of the database (SQLite here, one server), not a place in memory."""

    def pending_attempts(self, srv):
        db = sqlite3.connect(f"file:{srv.data_dir}/coffer.db?mode=ro", uri=True)
        try:
            return [n for (n,) in db.execute("SELECT attempts FROM webhook_deliveries")]
        finally:
            db.close()

    def test_a_retry_pending_across_a_restart_is_made_after_it(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        # The first retry is due 3 s after the first attempt: the server is killed meanwhile.
        srv = start_server(self, extra_args=["--event-retry-base-ms", "3000"])
        vault = "/resourceGroups/rg-restart/providers/Microsoft.KeyVault/vaults/restart"
        r = srv.arm("PUT", vault, {"location": "local",
                                   "properties": {"enableRbacAuthorization": True}})
        self.assertEqual(r.status, 201, r)
        r = srv.arm("PUT", vault + "/providers/Microsoft.EventGrid/eventSubscriptions/hook",
                    EventsTestCase.sub_body(receiver.url("/restart"), types=[NEW_VERSION]),
                    api_version=EG_API)
        self.assertEqual(r.status, 201, r)
        receiver.plan("/restart", [500], always=200)  # fails the first attempt, then accepts

        r = srv.kv("PUT", "/secrets/pending", body={"value": "v"}, vault="restart")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(receiver.wait("/restart"), "no first attempt")
        self.assertTrue(wait_until(lambda: self.pending_attempts(srv) == [1], timeout=WAIT_S),
                        f"pending: {self.pending_attempts(srv)}")
        srv.kill()
        srv.start()
        calls = receiver.wait("/restart", count=2)
        self.assertEqual(len(calls), 2, "the retry was not made after the restart:\n" +
                         srv.stderr_text())
        self.assertEqual([c["headers"].get("aeg-delivery-count") for c in calls], ["0", "1"])
        self.assertEqual(events_of(calls[0]), events_of(calls[1]))
        self.assertTrue(wait_until(lambda: self.pending_attempts(srv) == [], timeout=WAIT_S),
                        "the delivered row stays")


class TargetTests(EventsTestCase):
    """A server that delivers to no loopback address, as without --dev."""

    SERVER_ARGS = EventsTestCase.SERVER_ARGS + ("--webhook-allow-loopback=false",)

    def test_loopback_endpoints_are_refused_by_address_and_by_name(self):
        vault = "evtargets"
        self.new_vault(vault)
        port = self.receiver.port
        cases = (("IPv4 literal", f"http://127.0.0.1:{port}/t-literal"),
                 ("IPv6 literal", f"http://[::1]:{port}/t-v6"),
                 ("localhost, which resolves to 127.0.0.1", f"http://localhost:{port}/t-name"),
                 ("a name under .localhost", f"https://hooks.localhost:{port}/t-sub"))
        for label, url in cases:
            with self.subTest(label):
                r = self.sub_call("PUT", vault, "target-sub", body=self.sub_body(url))
                msg = self.assertErrorBody(r, 400, "InvalidRequest", label)["error"]["message"]
                self.assertIn("loopback address, which this server does not deliver webhooks to",
                              msg, label)
                self.assertIn("--webhook-allow-loopback", msg, label)
        self.assertEqual(self.sub_call("GET", vault).json(), {"value": []},
                         "nothing was written")
        with self.receiver.cond:
            self.assertEqual((self.receiver.validations, self.receiver.calls), ([], []),
                             "nothing was sent")


class NoticeTests(EventsTestCase):
    """Expiry notices and access-policy changes (scans every second)."""

    def test_near_expiry_and_expired_each_once(self):
        vault = "evexpiry"
        self.new_vault(vault)
        self.subscribe(vault, "expiry-sub", self.receiver.url("/expiry"),
                       types=[NEAR_EXPIRY, EXPIRED])
        key = self.signing_key(vault, "expiry-sub")["signingKey"]
        now = int(time.time())
        soon = self.set_secret(vault, "soon", attributes={"exp": now + 4})
        ten_days = self.set_secret(vault, "ten-days", attributes={"exp": now + 10 * 86400})
        self.set_secret(vault, "far", attributes={"exp": now + 60 * 86400})
        self.set_secret(vault, "never")

        def notices(subject, etype):
            return [e for c in self.receiver.received("/expiry") for e in events_of(c)
                    if e["subject"] == subject and e["eventType"] == etype]

        self.assertTrue(wait_until(lambda: notices("soon", NEAR_EXPIRY) and
                                   notices("ten-days", NEAR_EXPIRY) and
                                   notices("soon", EXPIRED), WAIT_S),
                        [json.loads(c["body"]) for c in self.receiver.received("/expiry")])
        time.sleep(QUIET_S + 1)  # a few more scans: nothing is announced twice
        for subject, etype, secret in (("soon", NEAR_EXPIRY, soon), ("soon", EXPIRED, soon),
                                       ("ten-days", NEAR_EXPIRY, ten_days)):
            with self.subTest(subject=subject, type=etype):
                got = notices(subject, etype)
                self.assertEqual(len(got), 1, got)
                e = got[0]
                self.assertEqual(e["data"]["Id"], secret["id"])
                self.assertEqual(e["data"]["Version"], secret["id"].rsplit("/", 1)[1])
                self.assertEqual(e["data"]["EXP"], secret["attributes"]["exp"])
        self.assertEqual(notices("ten-days", EXPIRED), [])
        for name in ("far", "never"):
            self.assertEqual([e for c in self.receiver.received("/expiry")
                              for e in events_of(c) if e["subject"] == name], [])
        for c in self.receiver.received("/expiry"):
            self.assertSigned(c, key)
        # Each notice is audited once, by event id.
        for subject, etype, op in (("soon", NEAR_EXPIRY, "SecretNearExpiryEventGridNotification"),
                                   ("soon", EXPIRED, "SecretExpiredEventGridNotification"),
                                   ("ten-days", NEAR_EXPIRY,
                                    "SecretNearExpiryEventGridNotification")):
            event_id = notices(subject, etype)[0]["id"]
            recs = wait_for_records(
                self.srv, lambda r: r["properties"].get("eventId") == event_id)
            self.assertEqual(len(recs), 1, recs)
            self.assertEqual(recs[0]["operationName"], op)
            self.assertEqual(recs[0]["resultType"], "Success")
            self.assertTrue(recs[0]["resourceId"].endswith(f"/VAULTS/{vault.upper()}"))
            self.assertTrue(recs[0]["properties"]["id"].endswith(f"/secrets/{subject}/" +
                                                                 notices(subject, etype)[0]
                                                                 ["data"]["Version"]))

    def test_access_policy_changes(self):
        vault = "evpolicy"
        v = self.new_vault(vault)
        self.subscribe(vault, "policy-sub", self.receiver.url("/policy"), types=[POLICY_CHANGED])
        sp = self.new_sp("events-policy-sp")

        def changes():
            return [e for c in self.receiver.received("/policy") for e in events_of(c)]

        r = self.edit_policies(f"rg-{vault}", vault, "add", [self.policy_entry(sp.oid, ["get"])])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_until(lambda: len(changes()) >= 1, WAIT_S))
        r = self.srv.arm("PATCH", f"/resourceGroups/rg-{vault}/providers/Microsoft.KeyVault/"
                                  f"vaults/{vault}", {"tags": {"only": "tags"}},
                         api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.set_secret(vault, "not-a-policy-change")
        r = self.srv.arm("PATCH", f"/resourceGroups/rg-{vault}/providers/Microsoft.KeyVault/"
                                  f"vaults/{vault}",
                         {"properties": {"enableRbacAuthorization": True}}, api_version=VAULT_API)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_until(lambda: len(changes()) >= 2, WAIT_S))
        time.sleep(QUIET_S)
        got = changes()
        self.assertEqual(len(got), 2, got)
        for e in got:
            self.assertEqual((e["subject"], e["eventType"], e["topic"]),
                             (vault, POLICY_CHANGED, v["id"]))
            self.assertEqual((e["data"]["ObjectType"], e["data"]["ObjectName"],
                              e["data"]["VaultName"], e["data"]["Version"]),
                             ("Vault", vault, vault, ""))
            recs = wait_for_records(self.srv,
                                    lambda r, i=e["id"]: r["properties"].get("eventId") == i)
            self.assertEqual([r["operationName"] for r in recs],
                             ["VaultAccessPolicyChangedEventGridNotification"])


class WatchTests(EventsTestCase):

    def watch(self, vault, query="", **kw):
        w = WatchClient(self.srv, vault, query, **kw)
        self.addCleanup(w.close)
        return w

    def token_now(self, vault, **kw):
        w = self.watch(vault, **kw)
        self.assertEqual(w.status, 200, w.body)
        token = w.ready()["json"]["token"]
        w.close()
        return token

    def backlog(self, vault, after, query="", **kw):
        """The events a stream resuming after `after` delivers before its ready frame."""
        q = f"from={after}" + (f"&{query}" if query else "")
        w = self.watch(vault, q, **kw)
        self.assertEqual(w.status, 200, w.body)
        w.ready()
        w.close()
        return w.events()

    def test_events_arrive_live_with_heartbeats(self):
        vault = "evwatch"
        v = self.new_vault(vault)
        w = self.watch(vault)
        self.assertEqual(w.status, 200, w.body)
        self.assertTrue(w.headers["content-type"].startswith("text/event-stream"), w.headers)
        ready = w.ready()
        self.assertEqual(w.frames[0]["comments"], ["coffer watch"])
        self.assertEqual(ready["id"], ready["json"]["token"])
        secret = self.set_secret(vault, "live", "live-value-never-streamed")
        f = w.read_until(lambda f: f.get("event") == NEW_VERSION)
        self.assertIsNotNone(f, w.wire[-2000:])
        self.assertGreater(int(f["id"]), int(ready["id"]))
        e = f["json"]
        self.assertEqual((e["subject"], e["eventType"], e["topic"]), ("live", NEW_VERSION,
                                                                      v["id"]))
        self.assertEqual(e["data"]["Id"], secret["id"])
        r = self.srv.kv("DELETE", "/secrets/live", vault=vault)
        self.assertEqual(r.status, 200, r)
        f2 = w.read_until(lambda f: f.get("event") == DELETED)
        self.assertIsNotNone(f2, w.wire[-2000:])
        self.assertGreater(int(f2["id"]), int(f["id"]))
        self.assertIsNotNone(w.read_until(lambda f: "keep-alive" in f["comments"]),
                             "a heartbeat comes every --watch-heartbeat seconds")
        self.assertNotIn(b"live-value-never-streamed", w.wire)
        # The stream is audited as SecretWatch.
        recs = wait_for_records(self.srv, lambda r: r["operationName"] == "SecretWatch" and
                                r["resourceId"].endswith(f"/VAULTS/{vault.upper()}"))
        self.assertTrue(recs)
        self.assertEqual(recs[0]["properties"]["httpStatusCode"], 200)

    def test_resume_under_concurrent_writes_loses_and_repeats_nothing(self):
        vault = "evresume"
        self.new_vault(vault)
        n = 200
        nonce = uuid.uuid4().hex
        start = self.token_now(vault)
        written = []
        errors = []

        def writer():
            conn = self.srv.connection(self.srv.vault_host(vault))
            hdrs = {"Authorization": "Bearer " + self.srv.token(self.srv.vault_resource)}
            try:
                for i in range(n):
                    r = self.srv.send(conn, "PUT",
                                      f"/secrets/res-{i % 4}?api-version=7.5",
                                      {"value": f"{nonce}-{i}"}, hdrs)
                    if r.status != 200:
                        errors.append(r)
                        return
                    sid = r.json()["id"]
                    written.append((sid.split("/")[-2], sid.split("/")[-1]))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                conn.close()

        t = threading.Thread(target=writer)
        t.start()
        got = []   # (seq, name, version)
        last = start
        connections = 0
        wire = b""
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                connections += 1
                # Alternate between the query parameter and the header EventSource resends.
                if connections % 2:
                    w = WatchClient(self.srv, vault, f"from={last}")
                else:
                    w = WatchClient(self.srv, vault, headers={"Last-Event-ID": last})
                try:
                    self.assertEqual(w.status, 200, w.body)
                    taken = 0
                    budget = 7 + (connections * 13) % 30  # a different cut each time
                    stop = time.monotonic() + 3
                    while taken < budget and time.monotonic() < stop:
                        w.pump()
                        while w.frames:
                            f = w.frames.pop(0)
                            if f.get("event") == "coffer.ready":
                                last = f["id"]
                            elif "event" in f:
                                e = f["json"]
                                got.append((int(f["id"]), e["subject"], e["data"]["Version"]))
                                last = f["id"]
                                taken += 1
                                if taken >= budget:
                                    break
                finally:
                    wire += w.wire
                    w.close()
                if not t.is_alive() and len(got) >= n:
                    break
        finally:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(written), n)
        self.assertGreaterEqual(connections, 4, "the reader reconnected several times")
        seqs = [g[0] for g in got]
        self.assertEqual(seqs, sorted(set(seqs)), "in seq order, each once")
        self.assertEqual([(name, version) for _, name, version in got], written,
                         "every version exactly once, in commit order, nothing else")
        self.assertNotIn(nonce.encode(), wire, "no secret value on the wire")

    def test_only_what_the_caller_may_read(self):
        rbac, ap = "evpermrbac", "evpermap"
        rbac_v = self.new_vault(rbac, rbac=True)
        self.new_vault(ap)
        one_secret = self.new_sp("watch-one-secret")
        no_role = self.new_sp("watch-no-role")
        metadata = self.new_sp("watch-metadata-only")
        self.set_secret(rbac, "one", "one-value-0")  # a role is assigned at an existing secret
        self.assign_ok(rbac_v["id"] + "/secrets/one", ROLES["Key Vault Secrets User"],
                       one_secret.oid)
        self.assign_ok(rbac_v["id"], ROLES["Key Vault Reader"], metadata.oid)
        r = self.edit_policies(f"rg-{ap}", ap, "add",
                               [self.policy_entry(one_secret.oid, ["get"]),
                                self.policy_entry(metadata.oid, ["list"])])
        self.assertEqual(r.status, 200, r)

        # Live: the principal with one secret sees that one only.
        live = self.watch(rbac, token=one_secret.vault_token)
        self.assertEqual(live.status, 200, live.body)
        live.ready()
        start = {v: self.token_now(v) for v in (rbac, ap)}
        for vault in (rbac, ap):
            self.set_secret(vault, "two", "two-value")
            self.set_secret(vault, "one", "one-value")
            self.set_secret(vault, "two", "two-value-2")
            self.set_secret(vault, "one", "one-value-2")
        first = live.read_until(lambda f: f.get("event") == NEW_VERSION)
        self.assertIsNotNone(first, live.wire[-2000:])
        self.assertEqual(first["json"]["subject"], "one", "the change to 'two' was not shown")
        live.read_until(lambda f: len(live.events()) >= 2)
        self.assertEqual([f["json"]["subject"] for f in live.events()], ["one", "one"])

        def subjects(vault, p):
            return [f["json"]["subject"] for f in
                    self.backlog(vault, start[vault], token=p.vault_token if p else None)]

        def refused(vault, p):
            w = self.watch(vault, f"from={start[vault]}", token=p.vault_token)
            return w.status == 403 and not w.chunked

        self.assertEqual(subjects(rbac, None), ["two", "one", "two", "one"], "the administrator")
        self.assertEqual(subjects(rbac, one_secret), ["one", "one"])
        self.assertTrue(refused(rbac, no_role), "no right at all: no stream")
        self.assertEqual(subjects(rbac, metadata), [], "listing is not reading")
        self.assertEqual(subjects(ap, one_secret), ["two", "one", "two", "one"],
                         "an access policy's get covers every secret of the vault")
        self.assertEqual(subjects(ap, metadata), [], "list is not get")
        self.assertTrue(refused(ap, no_role))
        # A grant taken away takes effect on the streams too, live ones included.
        live_ap = self.watch(ap, token=one_secret.vault_token)
        live_ap.ready()
        r = self.edit_policies(f"rg-{ap}", ap, "remove", [self.policy_entry(one_secret.oid)])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(refused(ap, one_secret))
        admin_live = self.watch(ap)
        admin_live.ready()
        self.set_secret(ap, "one", "one-value-3")
        self.assertIsNotNone(admin_live.read_until(lambda f: f.get("event") == NEW_VERSION))
        live_ap.read_until(lambda f: False, timeout=QUIET_S)
        self.assertEqual([f["event"] for f in live_ap.events()], [],
                         "a stream opened before the grant was removed shows nothing after it")
        # That edit is a change of the vault itself: shown to those who may list.
        self.assertEqual(subjects(ap, None)[-2:], [ap, "one"])
        self.assertEqual(subjects(ap, metadata), [ap])
        self.assertTrue(refused(ap, no_role))

    def test_names_and_types_filters(self):
        vault = "evnames"
        self.new_vault(vault)
        start = self.token_now(vault)
        for name in ("a", "b", "c"):
            self.set_secret(vault, name)
        r = self.srv.kv("DELETE", "/secrets/b", vault=vault)
        self.assertEqual(r.status, 200, r)

        def seen(query):
            return [(f["json"]["subject"], f["event"]) for f in self.backlog(vault, start, query)]

        self.assertEqual(seen(""), [("a", NEW_VERSION), ("b", NEW_VERSION), ("c", NEW_VERSION),
                                    ("b", DELETED)])
        self.assertEqual(seen("names=a,b"), [("a", NEW_VERSION), ("b", NEW_VERSION),
                                             ("b", DELETED)])
        self.assertEqual(seen("names=A"), [("a", NEW_VERSION)], "names are case-insensitive")
        self.assertEqual(seen("types=" + DELETED), [("b", DELETED)])
        self.assertEqual(seen(f"names=b&types={NEW_VERSION}"), [("b", NEW_VERSION)])
        self.assertEqual(seen("names=zzz"), [])

    def test_bad_tokens_and_last_event_id(self):
        vault = "evtokens"
        self.new_vault(vault)
        start = self.token_now(vault)
        self.set_secret(vault, "t1")
        self.set_secret(vault, "t2")
        by_query = [(f["id"], f["json"]["subject"]) for f in self.backlog(vault, start)]
        self.assertEqual([s for _, s in by_query], ["t1", "t2"])
        by_header = [(f["id"], f["json"]["subject"])
                     for f in self.backlog_header(vault, start)]
        self.assertEqual(by_header, by_query, "Last-Event-ID resumes like from=")
        after_first = [f["json"]["subject"] for f in self.backlog(vault, by_query[0][0])]
        self.assertEqual(after_first, ["t2"])
        newest = int(self.token_now(vault))
        for label, query, headers in (
                ("letters", "from=abc", None), ("negative", "from=-5", None),
                ("in the future", f"from={newest + 1000}", None),
                ("too long", "from=" + "9" * 25, None),
                ("bad Last-Event-ID", "", {"Last-Event-ID": "not-a-token"})):
            with self.subTest(label):
                w = self.watch(vault, query, headers=headers)
                self.assertEqual(w.status, 400, w.wire[:500])
                self.assertEqual(w.json()["error"]["code"], "BadParameter")
        w = self.watch(vault, "from=1", token="not-a-jwt")
        self.assertEqual(w.status, 401, w.wire[:500])

    def test_resume_after_ten_thousand_changes_gets_them_all_or_a_resync(self):
        vault = "evbacklog"
        self.new_vault(vault)
        start = int(self.token_now(vault))
        n, threads = 10000, 4
        errors = []

        def writer(k):
            conn = self.srv.connection(self.srv.vault_host(vault))
            hdrs = {"Authorization": "Bearer " + self.srv.token(self.srv.vault_resource)}
            try:
                for i in range(k, n, threads):
                    r = self.srv.send(conn, "PUT", f"/secrets/bl-{i % 16}?api-version=7.5",
                                      {"value": "v"}, hdrs)
                    if r.status != 200:
                        errors.append(r)
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                conn.close()

        ts = [threading.Thread(target=writer, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        newest = int(self.token_now(vault))
        self.assertGreaterEqual(newest - start, n)

        w = self.watch(vault, f"from={start}")
        self.assertEqual(w.status, 200, w.body)
        ready = w.read_until(lambda f: f.get("event") == "coffer.ready")
        self.assertIsNotNone(ready, f"the stream ended (closed={w.closed}) before its ready "
                                    f"marker: {w.wire[:300]!r} ... {w.wire[-300:]!r}")
        events = [f for f in w.frames if "event" in f and f["event"] != "coffer.ready"]
        resyncs = [f for f in events if f["event"] == "coffer.resync"]
        if resyncs:
            self.assertEqual(len(events), 1, "a resync, and no part of the backlog")
            self.assertEqual(resyncs[0]["json"],
                             {"token": resyncs[0]["id"], "reason": "BacklogTooLarge"})
            self.assertGreaterEqual(int(resyncs[0]["id"]), newest,
                                    "the resync's token covers every change written")
            self.assertEqual(ready["id"], resyncs[0]["id"])
        else:
            seqs = [int(f["id"]) for f in events]
            self.assertEqual(len(seqs), n, "every change")
            self.assertEqual(seqs, sorted(set(seqs)), "in order, each once")
        # The stream stays open and carries what comes next.
        self.set_secret(vault, "after-backlog")
        f = w.read_until(lambda f: f.get("json", {}).get("subject") == "after-backlog")
        self.assertIsNotNone(f, f"closed={w.closed}: {w.wire[-1000:]!r}")
        self.assertGreater(int(f["id"]), int(ready["id"]))

    def test_opening_a_watch_needs_a_right_to_read_or_list(self):
        rbac, ap = "evopenrbac", "evopenap"
        rbac_v = self.new_vault(rbac, rbac=True)
        self.new_vault(ap)
        nobody = self.new_sp("watch-open-nobody")
        setter = self.new_sp("watch-open-set-only")
        crypto = self.new_sp("watch-open-keys-only")
        r = self.edit_policies(f"rg-{ap}", ap, "add", [self.policy_entry(setter.oid, ["set"])])
        self.assertEqual(r.status, 200, r)
        self.assign_ok(rbac_v["id"], ROLES["Key Vault Crypto Officer"], crypto.oid)
        for label, vault, p in (("no role", rbac, nobody), ("no policy", ap, nobody),
                                ("set only", ap, setter)):
            with self.subTest(label):
                w = self.watch(vault, token=p.vault_token)
                self.assertEqual(w.status, 403, w.wire[:500])
                self.assertFalse(w.chunked, "an error, not a stream")
                err = w.json()["error"]
                self.assertEqual(err["code"], "Forbidden")
                self.assertIn(p.oid, err["message"], "the denial names the principal")
        recs = wait_for_records(self.srv, lambda r: r["operationName"] == "SecretWatch" and
                                r["properties"]["httpStatusCode"] == 403)
        self.assertTrue(recs, "refusals are audited")
        # A right to keys only opens a stream that shows the keys' changes, not the secrets'.
        w = self.watch(rbac, token=crypto.vault_token)
        self.assertEqual(w.status, 200, w.wire[:500])
        w.ready()
        self.set_secret(rbac, "hidden", "hidden-value")
        r = self.srv.kv("POST", "/keys/shown/create", {"kty": "EC"}, vault=rbac)
        self.assertEqual(r.status, 200, r)
        first = w.read_until(lambda f: f.get("event", "").startswith("Microsoft.KeyVault."))
        self.assertIsNotNone(first, w.wire[-2000:])
        self.assertEqual((first["event"], first["json"]["subject"]),
                         ("Microsoft.KeyVault.KeyNewVersionCreated", "shown"))

    def test_a_principal_holds_at_most_sixteen_streams(self):
        vault = "evcap"
        self.new_vault(vault)
        p = self.new_sp("watch-cap")
        r = self.edit_policies(f"rg-{vault}", vault, "add", [self.policy_entry(p.oid, ["get"])])
        self.assertEqual(r.status, 200, r)
        streams = []
        for i in range(16):
            w = self.watch(vault, token=p.vault_token)
            self.assertEqual(w.status, 200, f"stream {i + 1}: {w.wire[:300]!r}")
            w.ready()
            streams.append(w)
        w = self.watch(vault, token=p.vault_token)
        self.assertEqual(w.status, 429, w.wire[:500])
        self.assertEqual(w.json()["error"]["code"], "Throttled")
        self.assertEqual(w.headers.get("retry-after"), "30")
        other = self.watch(vault)
        self.assertEqual(other.status, 200, "another principal is not held back")
        # A stream that ends frees its place.
        streams.pop().close()

        def reopened():
            again = self.watch(vault, token=p.vault_token)
            return again.status == 200
        self.assertTrue(wait_until(reopened, WAIT_S))
        # The streams it holds still work.
        self.set_secret(vault, "cap")
        for s in streams:
            self.assertIsNotNone(s.read_until(lambda f: f.get("event") == NEW_VERSION))

    def test_a_stream_ends_when_its_token_expires(self):
        vault = "evexpiry"
        self.new_vault(vault)
        token = self.srv.forge_token(claim_changes={"exp": int(time.time()) + 3})
        w = self.watch(vault, token=token)
        self.assertEqual(w.status, 200, w.wire[:500])
        ready = w.ready()
        f = w.read_until(lambda f: f.get("event") == "coffer.closed")
        self.assertIsNotNone(f, f"closed={w.closed}: {w.wire[-1000:]!r}")
        self.assertEqual(f["json"], {"token": ready["id"], "reason": "TokenExpired"})
        self.assertEqual(f["id"], ready["id"], "the id to resume from")
        w.read_until(lambda f: False)
        self.assertTrue(w.closed, "the response ends after the final event")
        self.assertIs(w.frames[-1], f, "nothing after the final event")

    def test_a_stream_ends_when_its_principal_is_deleted(self):
        vault = "evgone"
        self.new_vault(vault)
        p = self.new_sp("watch-deleted")
        r = self.edit_policies(f"rg-{vault}", vault, "add", [self.policy_entry(p.oid, ["get"])])
        self.assertEqual(r.status, 200, r)
        w = self.watch(vault, token=p.vault_token)
        self.assertEqual(w.status, 200, w.wire[:500])
        w.ready()
        other = self.watch(vault)
        other.ready()
        self.coffer("ad", "sp", "delete", "--id", p.app_id)
        f = w.read_until(lambda f: f.get("event") == "coffer.closed")
        self.assertIsNotNone(f, f"closed={w.closed}: {w.wire[-1000:]!r}")
        self.assertEqual(f["json"]["reason"], "PrincipalDeleted")
        w.read_until(lambda f: False)
        self.assertTrue(w.closed)
        self.assertEqual(self.watch(vault, token=p.vault_token).status, 401)
        self.set_secret(vault, "still-watched")
        self.assertIsNotNone(other.read_until(
            lambda f: f.get("json", {}).get("subject") == "still-watched"),
            "another principal's stream goes on")

    def backlog_header(self, vault, token):
        w = self.watch(vault, headers={"Last-Event-ID": token})
        self.assertEqual(w.status, 200, w.body)
        w.ready()
        w.close()
        return w.events()
