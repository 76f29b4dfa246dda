"""Several Coffer servers on one PostgreSQL database (docs/ha.md).

Two servers, A and B, share a database (`--store postgresql://...`), which holds the token
signing keys, and the master key and TLS material (copied from A's data directory into B's, as an
operator distributes them).
Each test makes a change through one server and checks that the other honours it: what was
written is served, and what was revoked (a role assignment, a secret disabled, a vault deleted)
stops working there too, without waiting for any cache to expire.  The wait for the other server
is bounded generously; how fast it happens is measured in bench/ (docs/benchmarks.md), never
asserted here.
"""

import http.client
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import time
import unittest
import urllib.parse
import uuid

from harness import (KV_API, CofferServer, coffer_binary, free_port, jwt_parts, kid_for_key,
                     open_signing_keys, read_text, start_server, wait_until)
from postgres import start_postgres
from test_events import EG_API, Receiver, events_of, subject_is

AUTHZ_API = "2022-04-01"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# How long the other server may take before the test calls it a failure: a bound, not a claim.
HONOURED_WITHIN_S = 10.0


def give_keys(a, b, share_audit=False):
    """Copies A's master key and TLS material into B's new data directory, as an operator
    distributes them (the token signing keys are in the database); with `share_audit`, B's audit
    directory is A's, as on a volume both servers mount."""
    os.makedirs(b.data_dir, mode=0o700)
    # dev.env too: a dev server without one would issue the administrator a new secret.
    for name in ("master.key", "dev.env"):
        shutil.copy2(os.path.join(a.data_dir, name), b.data_dir)
    shutil.copytree(os.path.join(a.data_dir, "tls"), os.path.join(b.data_dir, "tls"))
    if share_audit:
        os.symlink(os.path.join(a.data_dir, "audit"), os.path.join(b.data_dir, "audit"))


def start_pair(test_class, pg, extra_args=(), share_audit=False):
    """A and B on `pg`'s database; B gets A's master key and TLS material before it starts."""
    store = ["--store", pg.conninfo()] + list(extra_args)
    a = CofferServer(extra_args=store)
    b = CofferServer(extra_args=store)
    test_class.addClassCleanup(a.cleanup)
    test_class.addClassCleanup(b.cleanup)
    a.start()
    give_keys(a, b, share_audit)
    b.start()
    return a, b


class TwoServersOneDatabase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        cls.a, cls.b = start_pair(cls, cls.pg)

    def vault_path(self, name):
        return f"/resourceGroups/ha/providers/Microsoft.KeyVault/vaults/{name}"

    def create_vault(self, srv, name, rbac):
        r = srv.arm("PUT", self.vault_path(name),
                    {"location": "local", "properties": {"enableRbacAuthorization": rbac}})
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def eventually(self, fn, what):
        """Waits (bounded) until fn() is true; fails naming `what`."""
        if not wait_until(fn, timeout=HONOURED_WITHIN_S):
            self.fail(f"the other server did not honour it within {HONOURED_WITHIN_S} s: {what}")

    def test_each_server_serves_what_the_other_wrote(self):
        r = self.a.kv("PUT", "/secrets/from-a", body={"value": "written by A"})
        self.assertEqual(r.status, 200, r)
        r = self.b.kv("GET", "/secrets/from-a")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["value"], "written by A")
        r = self.b.kv("PUT", "/secrets/from-a", body={"value": "then by B"})
        self.assertEqual(r.status, 200, r)
        r = self.a.kv("GET", "/secrets/from-a")
        self.assertEqual(r.json()["value"], "then by B")
        # Versions made through both are one history.
        r = self.b.kv("GET", "/secrets/from-a/versions")
        self.assertEqual(len(r.json()["value"]), 2, r)

    def test_a_new_version_and_a_disabled_secret_reach_the_other_servers_cache(self):
        r = self.a.kv("PUT", "/secrets/cached", body={"value": "one"})
        self.assertEqual(r.status, 200, r)
        # B reads it, so it holds it in its cache.
        self.assertEqual(self.b.kv("GET", "/secrets/cached").json()["value"], "one")
        self.assertEqual(self.a.kv("PUT", "/secrets/cached", body={"value": "two"}).status, 200)
        self.eventually(lambda: self.b.kv("GET", "/secrets/cached").json().get("value") == "two",
                        "a new version")
        version = self.a.kv("GET", "/secrets/cached").json()["id"].rsplit("/", 1)[1]
        r = self.a.kv("PATCH", f"/secrets/cached/{version}",
                      body={"attributes": {"enabled": False}})
        self.assertEqual(r.status, 200, r)
        self.eventually(lambda: self.b.kv("GET", "/secrets/cached").status == 403,
                        "a disabled secret")

    def test_a_revoked_role_assignment_is_refused_by_the_other_server(self):
        vault_id = self.create_vault(self.a, "ha-rbac", rbac=True)
        sp = self.a.coffer_json("ad", "sp", "create-for-rbac", "--name", "ha-reader")
        name = str(uuid.uuid4())
        assignment = f"{vault_id}/providers/Microsoft.Authorization/roleAssignments/{name}"
        # The administrator (Key Vault Administrator at the subscription) writes the secret.
        r = self.a.kv("PUT", "/secrets/guarded", body={"value": "v"}, vault="ha-rbac")
        self.assertEqual(r.status, 200, r)
        sp_oid = None
        tokens = {}
        for srv in (self.a, self.b):
            t = srv.token_response(srv.vault_resource, sp["appId"], sp["password"])
            self.assertEqual(t.status, 200, t)
            tokens[srv] = t.json()["access_token"]
            sp_oid = jwt_parts(tokens[srv])[1]["oid"]

        def read_via_b():
            return self.b.kv("GET", "/secrets/guarded", vault="ha-rbac", token=tokens[self.b])

        self.assertEqual(read_via_b().status, 403)
        r = self.a.arm_raw("PUT", assignment + f"?api-version={AUTHZ_API}", {"properties": {
            "roleDefinitionId": f"/subscriptions/{self.a.subscription}/providers/"
                                f"Microsoft.Authorization/roleDefinitions/{SECRETS_USER}",
            "principalId": sp_oid}})
        self.assertEqual(r.status, 201, r)
        self.eventually(lambda: read_via_b().status == 200, "a new role assignment")
        r = self.a.arm_raw("DELETE", assignment + f"?api-version={AUTHZ_API}")
        self.assertEqual(r.status, 200, r)
        self.eventually(lambda: read_via_b().status == 403, "a deleted role assignment")

    def test_a_deleted_vault_and_a_deleted_principal_are_gone_on_the_other_server(self):
        self.create_vault(self.a, "ha-gone", rbac=True)
        self.assertEqual(self.a.kv("PUT", "/secrets/s", body={"value": "v"},
                                   vault="ha-gone").status, 200)
        self.assertEqual(self.b.kv("GET", "/secrets/s", vault="ha-gone").status, 200)
        r = self.a.arm("DELETE", self.vault_path("ha-gone"))
        self.assertIn(r.status, (200, 204), r)
        self.eventually(lambda: self.b.kv("GET", "/secrets/s", vault="ha-gone").status == 404,
                        "a deleted vault")

        sp = self.a.coffer_json("ad", "sp", "create-for-rbac", "--name", "ha-doomed")
        t = self.b.token_response(self.b.vault_resource, sp["appId"], sp["password"])
        self.assertEqual(t.status, 200, t)
        token = t.json()["access_token"]
        self.assertEqual(self.b.kv("GET", "/secrets", token=token).status, 403)
        rc, out, err = self.a.run_coffer("ad", "sp", "delete", "--id", sp["appId"])
        self.assertEqual(rc, 0, err)
        self.eventually(lambda: self.b.kv("GET", "/secrets", token=token).status == 401,
                        "a deleted principal's token")
        t = self.b.token_response(self.b.vault_resource, sp["appId"], sp["password"])
        self.assertEqual(t.status, 401, t)

    def test_a_person_signs_in_across_servers_and_a_password_change_ends_it_on_both(self):
        password, cli_app = "Ha-Device-Pass-4", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
        made = self.a.request("POST", "/v1.0/users", json.dumps(
            {"accountEnabled": True, "displayName": "Hal", "mailNickname": "hal",
             "userPrincipalName": "hal@coffer.test",
             "passwordProfile": {"password": password}}),
            host="localhost", token=self.a.token(self.a.mgmt_resource))
        self.assertEqual(made.status, 201, made)
        form = {"Content-Type": "application/x-www-form-urlencoded"}

        def post(srv, path, fields):
            return srv.request("POST", path, urllib.parse.urlencode(fields), headers=form,
                               host="localhost", auth=False)
        # Started on A, finished on B's page, polled on A.
        flow = post(self.a, f"/{self.a.tenant}/oauth2/v2.0/devicecode",
                    {"client_id": cli_app, "scope": f"{self.a.mgmt_resource}/.default "
                                                    "offline_access openid"}).json()
        page = post(self.b, "/devicelogin", {"code": flow["user_code"], "login": "hal@coffer.test",
                                             "passwd": password, "action": "continue"})
        self.assertEqual(page.status, 200, page)
        poll = {"grant_type": "device_code", "client_id": cli_app,
                "device_code": flow["device_code"]}
        got = post(self.a, f"/{self.a.tenant}/oauth2/v2.0/token", poll)
        self.assertEqual(got.status, 200, got)
        again = post(self.b, f"/{self.b.tenant}/oauth2/v2.0/token", poll)
        self.assertEqual(again.json()["error"], "bad_verification_code", "redeemed once, anywhere")
        token, refresh = got.json()["access_token"], got.json()["refresh_token"]
        me = self.a.request("GET", "/v1.0/me", host="localhost", token=token)
        self.assertEqual(me.json().get("userPrincipalName"), "hal@coffer.test", me)
        # A's refresh token is B's too (each server here has its own name, so its own audience).
        refreshed = post(self.b, f"/{self.b.tenant}/oauth2/v2.0/token",
                         {"grant_type": "refresh_token", "client_id": cli_app,
                          "refresh_token": refresh, "scope": f"{self.b.mgmt_resource}/.default"})
        self.assertEqual(refreshed.status, 200, refreshed)
        me = self.b.request("GET", "/v1.0/me", host="localhost",
                            token=refreshed.json()["access_token"])
        self.assertEqual(me.json().get("userPrincipalName"), "hal@coffer.test", me)
        # The password changes on B: A refuses the token it has verified and cached, and the
        # refresh token, at once.
        changed = self.b.request("POST", "/v1.0/me/changePassword", json.dumps(
            {"currentPassword": password, "newPassword": "Ha-Changed-Pass-5"}), host="localhost",
            token=refreshed.json()["access_token"])
        self.assertEqual(changed.status, 204, changed)
        self.eventually(lambda: self.a.request("GET", "/v1.0/me", host="localhost",
                                               token=token).status == 401,
                        "a changed password's old token")
        stale = post(self.a, f"/{self.a.tenant}/oauth2/v2.0/token",
                     {"grant_type": "refresh_token", "client_id": cli_app,
                      "refresh_token": refresh})
        self.assertEqual(stale.json()["error_codes"], [50173], stale)


def server_id(srv):
    with open(os.path.join(srv.data_dir, "server-id"), encoding="ascii") as f:
        return f.read().strip()


def coffer_cli(*args):
    p = subprocess.run([coffer_binary()] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


class AuditOfSeveralServers(unittest.TestCase):
    """Each server writes its own hash-chained log, named with its server id, even when both are
    given one audit directory; `coffer audit verify` and `coffer audit query` read the logs of
    several servers together (docs/audit.md, "Several servers")."""

    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        cls.a, cls.b = start_pair(cls, cls.pg, share_audit=True)
        cls.root = os.path.join(cls.a.data_dir, "audit")

    def test_a_second_server_with_the_same_id_is_refused(self):
        if not self.a.running():
            self.a.start()
        c = CofferServer(extra_args=["--store", self.pg.conninfo(), "--server-id",
                                     server_id(self.a)])
        self.addCleanup(c.cleanup)
        give_keys(self.a, c, share_audit=True)
        with self.assertRaises(RuntimeError):
            c.start()
        self.assertIn(f"another running server writes the audit log of server id "
                      f"{server_id(self.a)}", c.stderr_text())
        self.assertEqual(sorted(os.listdir(self.root)), sorted([server_id(self.a),
                                                                server_id(self.b)]))

    def test_each_server_writes_its_own_log_and_the_cli_reads_them_together(self):
        ids = {self.a: server_id(self.a), self.b: server_id(self.b)}
        self.assertNotEqual(ids[self.a], ids[self.b])
        self.assertEqual(sorted(os.listdir(self.root)), sorted(ids.values()))
        run = uuid.uuid4().hex[:8]
        made = []
        for i, srv in enumerate([self.a, self.b, self.a, self.b, self.b, self.a]):
            name = f"audited-{run}-{i}"
            self.assertEqual(srv.kv("PUT", f"/secrets/{name}", {"value": "v"}).status, 200)
            made.append((name, ids[srv]))

        # Both logs, from the shared directory (the servers run: verify reads live logs).
        rc, out, err = coffer_cli("audit", "verify", "--dir", self.root, "--json")
        self.assertEqual(rc, 0, out + err)
        report = json.loads(out)
        self.assertTrue(report["ok"], report)
        self.assertEqual([(s["serverId"], s["ok"]) for s in report["servers"]],
                         sorted((i, True) for i in ids.values()))
        # The same, each log named on its own.
        rc, out, err = coffer_cli("audit", "verify", "--dir", os.path.join(self.root, ids[self.a]),
                                  "--dir", os.path.join(self.root, ids[self.b]))
        self.assertEqual(rc, 0, out + err)
        self.assertIn(f"server {ids[self.a]} ", out)
        self.assertIn(f"server {ids[self.b]} ", out)
        self.assertIn("OK: 2 server logs, 0 broken", out)
        # A public key named for one server: B's log checked with A's key fails, A's passes.
        a_pub = os.path.join(self.root, ids[self.a], "checkpoint.pub")
        rc, out, err = coffer_cli("audit", "verify", "--dir", self.root, "--json",
                                  "--public-key", f"{ids[self.b]}={a_pub}")
        self.assertEqual(rc, 1, out + err)
        report = json.loads(out)
        self.assertEqual([(s["serverId"], s["ok"]) for s in report["servers"]],
                         sorted([(ids[self.a], True), (ids[self.b], False)]))
        self.assertTrue([p for p in report["problems"] if "signed by another key" in p["problem"]],
                        report)

        # Every request is in the log of the server that took it, merged in time order.
        rc, out, err = coffer_cli("audit", "query", "--dir", self.root, "--operation", "SecretSet",
                                  "--top", "1000", "-o", "json")
        self.assertEqual(rc, 0, err)
        ours = [r for r in json.loads(out) if f"/secrets/audited-{run}-" in
                r["properties"]["requestUri"]]
        got = [(r["properties"]["requestUri"].split("/secrets/")[1].split("?")[0], r["serverId"])
               for r in ours]
        self.assertEqual(got, made)
        times = [r["time"] for r in ours]
        self.assertEqual(times, sorted(times))

        # A line edited in B's log: B is reported broken, A still verifies.
        self.a.stop()
        self.b.stop()
        copy = os.path.join(self.a.root, "audit-copy")
        shutil.copytree(self.root, copy)
        b_log = os.path.join(copy, ids[self.b])
        name = sorted(n for n in os.listdir(b_log) if n.startswith("audit-"))[-1]
        path = os.path.join(b_log, name)
        with open(path, "rb") as f:
            data = f.read()
        target = f"audited-{run}-1".encode()
        self.assertIn(target, data)
        with open(path, "wb") as f:
            f.write(data.replace(target, f"audited-{run}-X".encode(), 1))
        rc, out, err = coffer_cli("audit", "verify", "--dir", copy, "--json")
        self.assertEqual(rc, 1, out + err)
        report = json.loads(out)
        self.assertEqual([(s["serverId"], s["ok"]) for s in report["servers"]],
                         sorted([(ids[self.a], True), (ids[self.b], False)]))
        self.assertTrue(report["problems"])
        self.assertEqual({p["serverId"] for p in report["problems"]}, {ids[self.b]})
        # A server log named explicitly must be there.
        rc, out, err = coffer_cli("audit", "verify", "--dir", copy, "--dir",
                                  os.path.join(copy, "no-such-server"))
        self.assertNotEqual(rc, 0)
        self.assertIn("no-such-server", err)


def kid_of(token):
    return jwt_parts(token)[0]["kid"]


class SigningKeysOnEveryServer(unittest.TestCase):
    """The token signing keys live in the database, sealed (docs/encryption.md): a rotation
    through A is honoured by B. Both servers answer for one public name, as behind a load
    balancer, so that a token issued by one is meant for the other too (nothing listens on
    that name's port here: each request names it in its Host header and goes to one server)."""

    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        port = free_port()
        cls.public = f"localhost:{port}"
        cls.vault_suffix = f"vault.localhost:{port}"
        cls.a, cls.b = start_pair(cls, cls.pg, ["--authority-host", cls.public,
                                                "--dns-suffix", cls.vault_suffix])

    def call(self, srv, method, path, host, body=None, token=None, headers=None):
        conn = http.client.HTTPSConnection(host.split(":")[0], srv.port, timeout=30,
                                           context=ssl.create_default_context(cafile=srv.ca_path))
        hdrs = {"Host": host}
        hdrs.update(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def token(self, srv, resource):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": srv.env["AZURE_CLIENT_ID"],
            "client_secret": srv.env["AZURE_CLIENT_SECRET"], "scope": resource + "/.default"})
        status, body = self.call(srv, "POST", f"/{srv.tenant}/oauth2/v2.0/token", self.public,
                                 body=form,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        return json.loads(body)["access_token"]

    def vault_token(self, srv):
        return self.token(srv, f"https://{self.vault_suffix}")

    def jwks_kids(self, srv):
        status, body = self.call(srv, "GET", f"/{srv.tenant}/discovery/v2.0/keys", self.public)
        self.assertEqual(status, 200, body)
        return [k["kid"] for k in json.loads(body)["keys"]]

    def read(self, srv, token):
        status, _ = self.call(srv, "GET", f"/secrets?api-version={KV_API}",
                              f"dev.{self.vault_suffix}", token=token)
        return status

    def rotate(self, srv):
        status, body = self.call(srv, "POST", "/coffer/v1/signing-keys/rotate", self.public,
                                 body=b"", token=self.token(srv, f"https://{self.public}"))
        self.assertEqual(status, 200, body)
        return json.loads(body)["currentKid"]

    def eventually(self, fn, what):
        if not wait_until(fn, timeout=HONOURED_WITHIN_S):
            self.fail(f"the other server did not honour it within {HONOURED_WITHIN_S} s: {what}")

    def test_a_rotation_through_one_server_is_honoured_by_the_other(self):
        a, b = self.a, self.b
        before = self.vault_token(a)
        kid0 = kid_of(before)
        self.assertEqual(self.jwks_kids(a), [kid0])
        self.assertEqual(self.jwks_kids(b), [kid0], "both servers sign with the stored key")
        self.assertEqual(self.read(b, before), 200)

        kid1 = self.rotate(a)
        self.assertNotEqual(kid1, kid0)
        after = self.vault_token(a)
        self.assertEqual(kid_of(after), kid1)
        # Whether or not B has heard of the rotation yet, a token naming the new key makes it
        # read the keys: accepted at once.
        self.assertEqual(self.read(b, after), 200)
        self.eventually(lambda: self.jwks_kids(b) == [kid1, kid0], "B publishes the new key")
        self.assertEqual(kid_of(self.vault_token(b)), kid1, "B signs with the new key")
        for srv in (a, b):
            self.assertEqual(self.read(srv, before), 200,
                             "a token of the previous key still verifies")

        # No token tells B of this one: the database's notification does (well before the
        # periodic re-read).
        kid2 = self.rotate(a)
        self.eventually(lambda: kid_of(self.vault_token(b)) == kid2, "B signs with the newer key")
        self.assertEqual(self.jwks_kids(b), [kid2, kid1])
        # The first key is now retired on both, and its token refused, also where it was cached.
        self.eventually(lambda: self.read(b, before) == 401, "a retired key's token")
        self.assertEqual(self.read(a, before), 401)
        for srv in (a, b):
            self.assertEqual(self.read(srv, after), 200)

    def test_the_database_holds_the_keys_sealed(self):
        [value] = self.pg.psql("SELECT value FROM meta WHERE key = 'signing_keys'", "coffer")
        self.assertTrue(value.startswith("csk1."), value[:8])
        self.assertNotIn("PRIVATE KEY", value)
        # Sealed as docs/encryption.md says: it opens with the master key to the key B signs with.
        path = os.path.join(self.a.root, "opened-current.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(open_signing_keys(value, self.a.master_key())["current"])
        self.assertEqual(kid_for_key(path), kid_of(self.vault_token(self.b)))


class OneLeader(unittest.TestCase):
    """Work done once per installation (here: webhook deliveries) is done by one server, and by
    the other when the first dies."""

    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        cls.a, cls.b = start_pair(cls, cls.pg, ("--metrics-listen", "127.0.0.1:0"))
        cls.receiver = Receiver()
        cls.addClassCleanup(cls.receiver.close)

    @staticmethod
    def leads(srv):
        return "now leads the installation" in srv.stderr_text()

    @staticmethod
    def leader_gauge(srv):
        """coffer_leader from the server's metrics listener; None when it cannot be read."""
        found = re.search(r"Metrics on port (\d+)", read_text(srv.stdout_path))
        if not found:
            return None
        conn = http.client.HTTPConnection("127.0.0.1", int(found.group(1)), timeout=30)
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode()
        except OSError:
            return None
        finally:
            conn.close()
        value = re.search(r"^coffer_leader (\d+)$", body, re.M)
        return int(value.group(1)) if value else None

    def deliveries(self, subject):
        return [c for c in self.receiver.received("/hook") if subject_is(subject)(c)]

    def test_webhooks_are_delivered_once_and_by_the_next_leader_when_the_leader_dies(self):
        self.assertTrue(wait_until(lambda: self.leads(self.a) or self.leads(self.b),
                                   timeout=HONOURED_WITHIN_S), "no server leads")
        leader, other = (self.a, self.b) if self.leads(self.a) else (self.b, self.a)
        self.assertFalse(self.leads(other), "both servers lead")
        self.assertTrue(wait_until(lambda: self.leader_gauge(leader) == 1, timeout=30))
        self.assertEqual(self.leader_gauge(other), 0)
        r = self.a.arm("PUT", "/resourceGroups/ha/providers/Microsoft.KeyVault/vaults/ha-events",
                       {"location": "local", "properties": {"enableRbacAuthorization": True}})
        self.assertEqual(r.status, 201, r)
        sub = ("/resourceGroups/ha/providers/Microsoft.KeyVault/vaults/ha-events/providers/"
               "Microsoft.EventGrid/eventSubscriptions/hook")
        r = self.a.arm("PUT", sub, {"properties": {
            "destination": {"endpointType": "WebHook",
                            "properties": {"endpointUrl": self.receiver.url("/hook")}},
            "filter": {"includedEventTypes": ["Microsoft.KeyVault.SecretNewVersionCreated"]}}},
            api_version=EG_API)
        self.assertEqual(r.status, 201, r)

        # Written through the server that does not lead: delivered once, by the leader.
        r = other.kv("PUT", "/secrets/first", body={"value": "1"}, vault="ha-events")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.receiver.wait("/hook", subject_is("first")), "not delivered")
        r = leader.kv("PUT", "/secrets/second", body={"value": "2"}, vault="ha-events")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.receiver.wait("/hook", subject_is("second")), "not delivered")

        # The leader stores how far it handed the feed on after handing it on: killed before
        # that, the next leader would deliver the last page again (at least once, docs/ha.md).
        # Killed after it, nothing is delivered twice.
        def position_stored():
            stored = self.pg.psql("SELECT value FROM meta WHERE key = 'webhook_feed_seq'",
                                  "coffer")
            newest = self.pg.psql("SELECT max(seq) FROM changes", "coffer")
            return stored and stored == newest
        self.assertTrue(wait_until(position_stored, timeout=HONOURED_WITHIN_S))
        leader.kill()
        self.assertTrue(wait_until(lambda: self.leads(other), timeout=HONOURED_WITHIN_S),
                        "the other server did not take over:\n" + read_text(other.stderr_path))
        self.assertEqual(self.leader_gauge(other), 1)
        r = other.kv("PUT", "/secrets/third", body={"value": "3"}, vault="ha-events")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.receiver.wait("/hook", subject_is("third")),
                        "the new leader did not deliver")
        # Give a second delivery every chance to arrive before counting.
        r = other.kv("PUT", "/secrets/fourth", body={"value": "4"}, vault="ha-events")
        self.assertTrue(self.receiver.wait("/hook", subject_is("fourth")))
        for subject in ("first", "second", "third", "fourth"):
            ids = [e["id"] for c in self.deliveries(subject) for e in events_of(c)]
            self.assertEqual(len(ids), 1, f"{subject}: delivered {len(ids)} times")


class PendingRetriesOutliveTheLeader(unittest.TestCase):
    """A webhook retry the leader had pending when it died is made by the next leader, from the
    row the dead one left in the database (docs/ha.md)."""

    # The first retry is due 3 s after the first attempt: long enough for the leader to be
    # killed while it waits, short for the test.
    RETRY_BASE_MS = "3000"

    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        cls.a, cls.b = start_pair(cls, cls.pg, ("--event-retry-base-ms", cls.RETRY_BASE_MS))
        cls.receiver = Receiver()
        cls.addClassCleanup(cls.receiver.close)

    def pending_attempts(self):
        return [int(n) for n in self.pg.psql("SELECT attempts FROM webhook_deliveries", "coffer")]

    def test_the_next_leader_makes_the_retry_the_dead_one_had_pending(self):
        leads = OneLeader.leads
        self.assertTrue(wait_until(lambda: leads(self.a) or leads(self.b),
                                   timeout=HONOURED_WITHIN_S), "no server leads")
        leader, other = (self.a, self.b) if leads(self.a) else (self.b, self.a)
        r = self.a.arm("PUT", "/resourceGroups/ha/providers/Microsoft.KeyVault/vaults/ha-retry",
                       {"location": "local", "properties": {"enableRbacAuthorization": True}})
        self.assertEqual(r.status, 201, r)
        sub = ("/resourceGroups/ha/providers/Microsoft.KeyVault/vaults/ha-retry/providers/"
               "Microsoft.EventGrid/eventSubscriptions/retry")
        r = self.a.arm("PUT", sub, {"properties": {
            "destination": {"endpointType": "WebHook",
                            "properties": {"endpointUrl": self.receiver.url("/retry")}},
            "filter": {"includedEventTypes": ["Microsoft.KeyVault.SecretNewVersionCreated"]}}},
            api_version=EG_API)
        self.assertEqual(r.status, 201, r)
        # The endpoint fails the first attempt, then accepts.
        self.receiver.plan("/retry", [500], always=200)

        r = other.kv("PUT", "/secrets/retried", body={"value": "1"}, vault="ha-retry")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.receiver.wait("/retry", subject_is("retried")), "no first attempt")
        # The failed attempt is recorded in the database, and its retry is pending.
        self.assertTrue(wait_until(lambda: self.pending_attempts() == [1],
                                   timeout=HONOURED_WITHIN_S),
                        f"pending: {self.pending_attempts()}")
        leader.kill()
        self.assertTrue(wait_until(lambda: leads(other), timeout=HONOURED_WITHIN_S),
                        "the other server did not take over:\n" + read_text(other.stderr_path))
        calls = self.receiver.wait("/retry", subject_is("retried"), count=2, timeout=30)
        self.assertEqual(len(calls), 2, "the new leader did not make the pending retry")
        self.assertEqual([c["headers"].get("aeg-delivery-count") for c in calls], ["0", "1"])
        # The same event (its URLs name the server that sent it: each has its own port here).
        self.assertEqual([[(e["id"], e["subject"]) for e in events_of(c)] for c in calls[1:]],
                         [[(e["id"], e["subject"]) for e in events_of(calls[0])]])
        self.assertTrue(wait_until(lambda: self.pending_attempts() == [],
                                   timeout=HONOURED_WITHIN_S), "the delivered row stays")

        # A later event, delivered by the new leader, gives a second delivery of the first
        # every chance to arrive before counting: each is accepted once.
        r = other.kv("PUT", "/secrets/later", body={"value": "2"}, vault="ha-retry")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.receiver.wait("/retry", subject_is("later")), "not delivered")
        for subject, attempts in (("retried", 2), ("later", 1)):
            calls = [c for c in self.receiver.received("/retry") if subject_is(subject)(c)]
            self.assertEqual(len(calls), attempts, f"{subject}: {len(calls)} attempts")


class MigrateFromSqlite(unittest.TestCase):
    """`coffer storage migrate` copies a stopped SQLite installation into PostgreSQL; a server
    on PostgreSQL with the same data directory then serves what the SQLite one held."""

    def migrate(self, data_dir, conninfo):
        p = subprocess.run([coffer_binary(), "storage", "migrate", "--from", data_dir, "--to",
                            conninfo], capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    @staticmethod
    def jwks_kids(srv):
        r = srv.request("GET", f"/{srv.tenant}/discovery/v2.0/keys", host="localhost", auth=False)
        return [k["kid"] for k in r.json()["keys"]]

    def test_an_installation_moves_whole_and_a_second_run_changes_nothing(self):
        srv = start_server(self)
        self.assertEqual(srv.kv("PUT", "/secrets/kept", body={"value": "one"}).status, 200)
        self.assertEqual(srv.kv("PUT", "/secrets/kept", body={"value": "two"}).status, 200)
        self.assertEqual(srv.kv("PUT", "/secrets/gone", body={"value": "x"}).status, 200)
        self.assertEqual(srv.kv("DELETE", "/secrets/gone").status, 200)
        sp = srv.coffer_json("ad", "sp", "create-for-rbac", "--name", "migrated-app")
        issued = srv.token(srv.vault_resource)
        kids = self.jwks_kids(srv)
        pg = start_postgres(self)

        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertNotEqual(rc, 0, "migrated while the server was running")
        self.assertIn("running", err)
        srv.stop()
        # A webhook retry the stopped server had pending goes along.
        db = sqlite3.connect(f"{srv.data_dir}/coffer.db")
        try:
            with db:
                db.execute("INSERT INTO webhook_deliveries VALUES('vault', 'hook', 3, 'e-3', 1, "
                           "'Vault', 'SecretNewVersionCreated', 'Secret', 'kept', 'v', NULL, 9, "
                           "2, 5000, 1000, 'HTTP 500', 500)")
        finally:
            db.close()

        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertEqual(rc, 0, err)
        first = {t["table"]: t for t in json.loads(out)}
        db = sqlite3.connect(f"file:{srv.data_dir}/coffer.db?mode=ro", uri=True)
        try:
            for table, row in first.items():
                count = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                self.assertEqual(row["rows"], count, table)
                self.assertEqual(int(pg.psql(f"SELECT count(*) FROM {table}", "coffer")[0]),
                                 count, table)
            newest = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
        finally:
            db.close()
        self.assertGreater(first["secret_versions"]["rows"], 2)
        self.assertGreater(first["changes"]["rows"], 0)
        self.assertEqual(first["webhook_deliveries"]["rows"], 1)
        self.assertEqual(pg.psql("SELECT seq, attempts, due_ms, exp, last_outcome FROM "
                                 "webhook_deliveries", "coffer"), ["3|2|5000|9|HTTP 500"])
        # The feed keeps its seqs, and the next change follows them.
        self.assertEqual(int(pg.psql("SELECT max(seq) FROM changes", "coffer")[0]), newest)

        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertEqual(rc, 0, err)
        self.assertEqual({t["table"]: t for t in json.loads(out)}, first)

        srv.start(extra_args=["--store", pg.conninfo()])
        # The signing keys came with the metadata (there are no key files to fall back on): a
        # token issued before the move still verifies.
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "keys")))
        self.assertEqual(self.jwks_kids(srv), kids)
        self.assertEqual(srv.kv("GET", "/secrets", token=issued).status, 200)
        r = srv.kv("GET", "/secrets/kept")
        self.assertEqual(r.json().get("value"), "two", r)
        self.assertEqual(len(srv.kv("GET", "/secrets/kept/versions").json()["value"]), 2)
        self.assertEqual(srv.kv("GET", "/deletedsecrets/gone").status, 200)
        t = srv.token_response(srv.vault_resource, sp["appId"], sp["password"])
        self.assertEqual(t.status, 200, t)
        self.assertEqual(srv.kv("PUT", "/secrets/kept", body={"value": "three"}).status, 200)
        self.assertGreater(int(pg.psql("SELECT max(seq) FROM changes", "coffer")[0]), newest)

    def test_a_target_holding_other_data_is_refused_and_left_as_it_was(self):
        srv = start_server(self)
        self.assertEqual(srv.kv("PUT", "/secrets/s", body={"value": "v"}).status, 200)
        srv.stop()
        pg = start_postgres(self)
        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertEqual(rc, 0, err)
        pg.psql("UPDATE secret_versions SET content_type = 'tampered'", "coffer")
        pg.psql("DELETE FROM meta WHERE key = 'subscription_id'", "coffer")
        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertNotEqual(rc, 0, out)
        self.assertIn("differs", err)
        # Nothing of the second run was committed: the deleted row is still missing.
        self.assertEqual(pg.psql("SELECT count(*) FROM meta WHERE key = 'subscription_id'",
                                 "coffer"), ["0"])

    def test_a_directory_without_an_installation_is_refused(self):
        pg = start_postgres(self)
        rc, out, err = self.migrate("/nonexistent-coffer-dir", pg.conninfo())
        self.assertNotEqual(rc, 0)
        self.assertIn("no Coffer installation", err)
        rc, out, err = self.migrate("/tmp", "mysql://db/coffer")
        self.assertNotEqual(rc, 0)
        self.assertIn("--to", err)


class DatabaseOutage(unittest.TestCase):
    """One server on PostgreSQL while the database is stopped and started again."""

    def test_cached_reads_go_on_writes_fail_clearly_and_nothing_is_half_written(self):
        pg = start_postgres(self)
        srv = CofferServer(extra_args=["--store", pg.conninfo()])
        self.addCleanup(srv.cleanup)
        srv.start()
        sp = srv.coffer_json("ad", "sp", "create-for-rbac", "--name", "outage-reader")
        vault_id = srv.arm("PUT", "/resourceGroups/ha/providers/Microsoft.KeyVault/vaults/outage",
                           {"location": "local",
                            "properties": {"enableRbacAuthorization": True}}).json()["id"]
        t = srv.token_response(srv.vault_resource, sp["appId"], sp["password"])
        self.assertEqual(t.status, 200, t)
        token = t.json()["access_token"]
        r = srv.arm_raw("PUT", f"{vault_id}/providers/Microsoft.Authorization/roleAssignments/"
                               f"{uuid.uuid4()}?api-version={AUTHZ_API}", {"properties": {
                                   "roleDefinitionId":
                                       f"/subscriptions/{srv.subscription}/providers/"
                                       f"Microsoft.Authorization/roleDefinitions/{SECRETS_USER}",
                                   "principalId": jwt_parts(token)[1]["oid"]}})
        self.assertEqual(r.status, 201, r)
        for name in ("kept", "unread"):
            r = srv.kv("PUT", f"/secrets/{name}", body={"value": "before"}, vault="outage")
            self.assertEqual(r.status, 200, r)

        def read(name):
            return srv.kv("GET", f"/secrets/{name}", vault="outage", token=token)

        self.assertEqual(read("kept").json()["value"], "before")

        pg.stop()
        # A write fails with 503 and says why; a secret this server never read cannot be answered.
        # (A secret written meanwhile is dropped from the cache: whether a write whose answer was
        # lost landed is unknown, so it is written to another.)
        r = srv.kv("PUT", "/secrets/unread", body={"value": "during"}, vault="outage")
        self.assertEqual(r.status, 503, r)
        self.assertIn("database cannot be reached", r.json()["error"]["message"])
        self.assertNotIn("postgres", r.body.decode().lower())
        self.assertEqual(read("unread").status, 503)
        # What it read keeps being served, by the reader's own token, well past the 5 s for which
        # a cache entry counts as fresh.
        deadline = time.monotonic() + 7
        reads = 0
        while time.monotonic() < deadline:
            r = read("kept")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["value"], "before")
            reads += 1
            time.sleep(0.5)
        self.assertGreater(reads, 5)

        pg.start()
        self.assertTrue(wait_until(lambda: srv.kv("PUT", "/secrets/after", body={"value": "a"},
                                                  vault="outage").status == 200, timeout=30),
                        "writes did not resume once the database was back")
        # The write refused during the outage left nothing behind.
        r = srv.kv("GET", "/secrets/unread/versions", vault="outage")
        self.assertEqual(len(r.json()["value"]), 1, r)
        self.assertEqual(read("kept").json()["value"], "before")
        self.assertEqual(read("unread").json()["value"], "before")


if __name__ == "__main__":
    unittest.main()
