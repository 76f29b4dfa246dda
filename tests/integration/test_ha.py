"""Several Coffer servers on one PostgreSQL database (docs/ha.md).

Two servers, A and B, share a database (`--store postgresql://...`) and the master key, signing
keys and TLS material (copied from A's data directory into B's, as an operator distributes them).
Each test makes a change through one server and checks that the other honours it: what was
written is served, and what was revoked (a role assignment, a secret disabled, a vault deleted)
stops working there too, without waiting for any cache to expire.  The wait for the other server
is bounded generously; how fast it happens is measured in bench/ (docs/benchmarks.md), never
asserted here.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import unittest
import uuid

from harness import CofferServer, coffer_binary, jwt_parts, read_text, start_server, wait_until
from postgres import start_postgres
from test_events import EG_API, Receiver, events_of, subject_is

AUTHZ_API = "2022-04-01"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# How long the other server may take before the test calls it a failure: a bound, not a claim.
HONOURED_WITHIN_S = 10.0


def give_keys(a, b, share_audit=False):
    """Copies A's keys and TLS material into B's new data directory, as an operator distributes
    them; with `share_audit`, B's audit directory is A's, as on a volume both servers mount."""
    os.makedirs(b.data_dir, mode=0o700)
    # dev.env too: a dev server without one would issue the administrator a new secret.
    for name in ("master.key", "dev.env"):
        shutil.copy2(os.path.join(a.data_dir, name), b.data_dir)
    for name in ("keys", "tls"):
        shutil.copytree(os.path.join(a.data_dir, name), os.path.join(b.data_dir, name))
    if share_audit:
        os.symlink(os.path.join(a.data_dir, "audit"), os.path.join(b.data_dir, "audit"))


def start_pair(test_class, pg, share_audit=False):
    """A and B on `pg`'s database; B gets A's keys before it starts."""
    store = ["--store", pg.conninfo()]
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


class OneLeader(unittest.TestCase):
    """Work done once per installation (here: webhook deliveries) is done by one server, and by
    the other when the first dies."""

    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls)
        cls.a, cls.b = start_pair(cls, cls.pg)
        cls.receiver = Receiver()
        cls.addClassCleanup(cls.receiver.close)

    @staticmethod
    def leads(srv):
        return "now leads the installation" in srv.stderr_text()

    def deliveries(self, subject):
        return [c for c in self.receiver.received("/hook") if subject_is(subject)(c)]

    def test_webhooks_are_delivered_once_and_by_the_next_leader_when_the_leader_dies(self):
        self.assertTrue(wait_until(lambda: self.leads(self.a) or self.leads(self.b),
                                   timeout=HONOURED_WITHIN_S), "no server leads")
        leader, other = (self.a, self.b) if self.leads(self.a) else (self.b, self.a)
        self.assertFalse(self.leads(other), "both servers lead")
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


class MigrateFromSqlite(unittest.TestCase):
    """`coffer storage migrate` copies a stopped SQLite installation into PostgreSQL; a server
    on PostgreSQL with the same data directory then serves what the SQLite one held."""

    def migrate(self, data_dir, conninfo):
        p = subprocess.run([coffer_binary(), "storage", "migrate", "--from", data_dir, "--to",
                            conninfo], capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def test_an_installation_moves_whole_and_a_second_run_changes_nothing(self):
        srv = start_server(self)
        self.assertEqual(srv.kv("PUT", "/secrets/kept", body={"value": "one"}).status, 200)
        self.assertEqual(srv.kv("PUT", "/secrets/kept", body={"value": "two"}).status, 200)
        self.assertEqual(srv.kv("PUT", "/secrets/gone", body={"value": "x"}).status, 200)
        self.assertEqual(srv.kv("DELETE", "/secrets/gone").status, 200)
        sp = srv.coffer_json("ad", "sp", "create-for-rbac", "--name", "migrated-app")
        pg = start_postgres(self)

        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertNotEqual(rc, 0, "migrated while the server was running")
        self.assertIn("running", err)
        srv.stop()

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
        # The feed keeps its seqs, and the next change follows them.
        self.assertEqual(int(pg.psql("SELECT max(seq) FROM changes", "coffer")[0]), newest)

        rc, out, err = self.migrate(srv.data_dir, pg.conninfo())
        self.assertEqual(rc, 0, err)
        self.assertEqual({t["table"]: t for t in json.loads(out)}, first)

        srv.start(extra_args=["--store", pg.conninfo()])
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


if __name__ == "__main__":
    unittest.main()
