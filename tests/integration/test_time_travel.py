"""Time travel, end to end against the real server: an administrator moves a vault's clock
forward (POST /coffer/v1/time-shift, `coffer keyvault time-shift`) and what falls due happens at
once, by its ordinary rules.

* Expiry notices, with the expiry scan's own interval an hour: a secret 40 days from `exp`, with
  a webhook subscription, gets nothing from a shift of a second (which does announce a secret 10
  days from `exp`), exactly one SecretNearExpiry after 11 days and exactly one SecretExpired
  after 30 more, each with the EXP that GET shows, the original moved by the total; `created` and
  `updated` move by the total too, and the expired secret is still returned by GET. A shift of
  one vault leaves another vault alone; `--all` moves both.
* Retention, with the purge interval an hour: a soft-deleted secret stays through a shift that
  ends one hour short of its recoverableDays and is purged right after a shift past them; a
  soft-deleted vault likewise after shifts of every vault (`--all`).
* Rotation and renewal: a key whose policy rotates it 30 days after creation is not rotated by
  a shift of 29 days and gets exactly one new version right after 2 more; a self-signed
  certificate renews (AutoRenew at 80% of its lifetime) likewise, one day after the point.
* Refusals: 400 BadParameter for a missing, zero, negative, fractional, malformed or too large
  `seconds`, for neither or both of vault= and all=, for all= other than "true" and for a total
  past ten years (one vault at the limit refuses `--all`); 404 VaultNotFound; 403 for a service
  principal that is not an administrator, even as Owner of the vault; 401 for a vault token. A
  refused shift moves nothing. GET /coffer/v1/time-shift and `--show` give the totals, which add
  up; a purged vault's total does not pass to a new vault of its name. Without --dev a shift is
  403 TimeShiftDisabled (GET says enabled: false); the same server started with
  --allow-time-shift shifts.
* Audit: TimeShift records in real time, with the seconds in the requestUri and the vault's
  resource id.
* The node agent and `coffer exec`: a secret two days from `exp`, shifted three days, stays
  mounted with the agent's "expired at ... still mounted" warning and a negative
  keyvault_object_expiry_seconds, and exec still resolves it; disabled, the agent reports the
  object's error and keeps the old file, and exec leaves the reference literal, saying why.

Every wait is bounded (WAIT_S) and none is a performance claim; QUIET_S is how long a test keeps
watching for something that must not happen.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import ServerTestCase, coffer_binary, parse_env_file, read_text, wait_until
from test_agent import Agent, k8s_secret, spc_yaml
from test_agent_extensions import sample_value
from test_audit import by_correlation, new_correlation
from test_authorization import ROLES, AuthzTestCase
from test_bootstrap import ProductionServer, clean_env
from test_events import EXPIRED, NEAR_EXPIRY, EventsTestCase, events_of

DAY = 86400
MAX_SHIFT = 315576000  # ten years of 365.25 days
WAIT_S = 30.0  # bounds a wait for something that should happen; never a performance claim
QUIET_S = 2.0  # how long to keep watching for something that must not happen
SHIFT_PATH = "/coffer/v1/time-shift"
AUDIT_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+Z$")


def iso_epoch(text):
    """Unix seconds of an ARM date-time such as 2027-03-07T15:53:17Z."""
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


class TimeShiftCase(ServerTestCase):
    """Helpers for the time-shift API on the class's server."""

    def shift(self, query, token=None, headers=None):
        """POST /coffer/v1/time-shift?<query> (a management token of the dev administrator
        unless `token`)."""
        return self.srv.request("POST", f"{SHIFT_PATH}?{query}", host="localhost",
                                token=token, headers=headers)

    def shift_ok(self, vault, seconds):
        r = self.shift(f"vault={urllib.parse.quote(vault)}&seconds={seconds}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def totals(self, token=None):
        r = self.srv.request("GET", SHIFT_PATH, host="localhost", token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def cli_json(self, *args):
        rc, out, err = self.srv.cli(*args)
        self.assertEqual(rc, 0, f"coffer keyvault {args}\nstdout: {out}\nstderr: {err}")
        return json.loads(out)

    def get_secret(self, vault, name):
        r = self.srv.kv("GET", f"/secrets/{name}", vault=vault)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def put_secret(self, vault, name, value="v", **attributes):
        body = {"value": value}
        if attributes:
            body["attributes"] = attributes
        r = self.srv.kv("PUT", f"/secrets/{name}", body, vault=vault)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assertMoved(self, before, after, seconds, msg=""):
        """Every time attribute of `after` is that of `before` less `seconds`; the rest equal."""
        a, b = dict(before["attributes"]), dict(after["attributes"])
        for k in ("created", "updated", "nbf", "exp"):
            if k in a:
                self.assertEqual(b.get(k), a[k] - seconds, f"{msg} {k}: {before} -> {after}")
                a.pop(k)
                b.pop(k)
        self.assertEqual(a, b, msg)
        self.assertEqual(before["id"], after["id"], msg)


# ---- the scheduled work: expiry, retention, rotation, renewal; the audit log ---------------

class ScheduleTests(EventsTestCase, TimeShiftCase):
    """The expiry scan and the purge run every hour here: only a shift can make them run
    within a test."""

    SERVER_ARGS = ("--event-retry-base-ms", "50", "--expiry-scan-interval", "3600",
                   "--purge-interval", "3600")

    def notices(self, path, subject, etype):
        return [e for c in self.receiver.received(path) for e in events_of(c)
                if e["subject"] == subject and e["eventType"] == etype]

    def wait_notice(self, path, subject, etype):
        found = wait_until(lambda: self.notices(path, subject, etype), WAIT_S, 0.1)
        self.assertTrue(found, f"no {etype} for {subject} at {path}; got "
                               f"{[events_of(c) for c in self.receiver.received(path)]}")
        return found

    def test_expiry_notices_follow_the_shifted_clock(self):
        a, b = "ttexpa", "ttexpb"
        for vault in (a, b):
            self.new_vault(vault)
            self.subscribe(vault, f"{vault}-sub", self.receiver.url(f"/{vault}"),
                           types=[NEAR_EXPIRY, EXPIRED])
        now = int(time.time())
        db = self.put_secret(a, "db", "db-value", exp=now + 40 * DAY)
        self.put_secret(a, "marker", exp=now + 10 * DAY)
        other = self.put_secret(b, "db", "other-value", exp=now + 40 * DAY)
        version = db["id"].rsplit("/", 1)[1]

        # A second: the scan runs at once. Ten days from exp is near; forty is not.
        got = self.shift_ok(a, 1)
        self.assertEqual((got["seconds"], got["vault"], got["versionsMoved"]), (1, a, 2), got)
        self.assertEqual(got["vaults"].get(a), 1, got)
        self.assertNotIn(b, got["vaults"], got)
        self.wait_notice(f"/{a}", "marker", NEAR_EXPIRY)
        self.assertEqual(self.notices(f"/{a}", "db", NEAR_EXPIRY), [])
        self.assertEqual(self.notices(f"/{a}", "db", EXPIRED), [])

        # Eleven days: 29 days from exp, near expiry; the marker has expired.
        got = self.shift_ok(a, 11 * DAY)
        self.assertEqual((got["versionsMoved"], got["vaults"][a]), (2, 1 + 11 * DAY), got)
        after = self.get_secret(a, "db")
        self.assertMoved(db, after, 1 + 11 * DAY)
        self.assertEqual(after["value"], "db-value")
        (near,) = self.wait_notice(f"/{a}", "db", NEAR_EXPIRY)
        self.assertEqual(near["data"]["EXP"], after["attributes"]["exp"], near)
        self.assertEqual(near["data"]["EXP"], now + 40 * DAY - 1 - 11 * DAY, near)
        self.assertEqual((near["data"]["Id"], near["data"]["Version"], near["data"]["VaultName"]),
                         (db["id"], version, a), near)
        self.wait_notice(f"/{a}", "marker", EXPIRED)
        self.assertEqual(self.notices(f"/{a}", "db", EXPIRED), [])
        self.assertEqual(self.get_secret(b, "db"), other, "a shift of one vault moved another")

        # Thirty days more (the CLI): expired, and GET still returns it.
        got = self.cli_json("time-shift", "--name", a, "--seconds", 30 * DAY)
        self.assertEqual((got["seconds"], got["vault"], got["versionsMoved"]),
                         (30 * DAY, a, 2), got)
        self.assertEqual(got["vaults"][a], 1 + 41 * DAY, got)
        expired = self.get_secret(a, "db")
        self.assertMoved(db, expired, 1 + 41 * DAY)
        self.assertLess(expired["attributes"]["exp"], time.time())
        self.assertEqual(expired["value"], "db-value", "Key Vault returns an expired secret")
        (gone,) = self.wait_notice(f"/{a}", "db", EXPIRED)
        self.assertEqual(gone["data"]["EXP"], expired["attributes"]["exp"], gone)
        self.assertEqual(gone["data"]["Version"], version, gone)
        self.assertEqual(self.get_secret(b, "db"), other, "a shift of one vault moved another")
        self.assertEqual(self.receiver.received(f"/{b}"), [])

        # Every vault, eleven days: the other vault's secret comes near expiry in turn.
        got = self.cli_json("time-shift", "--all", "--seconds", 11 * DAY)
        self.assertIsNone(got["vault"], got)
        self.assertGreaterEqual(got["versionsMoved"], 3, got)
        self.assertEqual((got["vaults"][a], got["vaults"][b]), (1 + 52 * DAY, 11 * DAY), got)
        self.assertMoved(other, self.get_secret(b, "db"), 11 * DAY)
        self.assertMoved(db, self.get_secret(a, "db"), 1 + 52 * DAY)
        (near_b,) = self.wait_notice(f"/{b}", "db", NEAR_EXPIRY)
        self.assertEqual(near_b["data"]["EXP"], now + 40 * DAY - 11 * DAY, near_b)
        # Three more scans have run since each notice: none came twice.
        time.sleep(QUIET_S)
        for subject, etype in (("db", NEAR_EXPIRY), ("db", EXPIRED), ("marker", NEAR_EXPIRY),
                               ("marker", EXPIRED)):
            with self.subTest(subject=subject, type=etype):
                self.assertEqual(len(self.notices(f"/{a}", subject, etype)), 1,
                                 self.notices(f"/{a}", subject, etype))
        self.assertEqual(len(self.notices(f"/{b}", "db", NEAR_EXPIRY)), 1)
        self.assertEqual(self.notices(f"/{b}", "db", EXPIRED), [])

    def test_a_deleted_secret_is_purged_past_its_retention(self):
        vault = "ttpurge"
        self.create_vault(f"rg-{vault}", vault, False, [self.admin_entry])
        self.put_secret(vault, "gone", "gone-value")
        kept = self.put_secret(vault, "kept", "kept-value")
        r = self.srv.kv("DELETE", "/secrets/gone", vault=vault)
        self.assertEqual(r.status, 200, r)
        deleted = self.srv.kv("GET", "/deletedsecrets/gone", vault=vault)
        self.assertEqual(deleted.status, 200, deleted)
        d = deleted.json()
        days = d["attributes"]["recoverableDays"]
        self.assertEqual(d["scheduledPurgeDate"] - d["deletedDate"], days * DAY, d)

        # To an hour before the scheduled purge: still there, its dates moved.
        short = d["scheduledPurgeDate"] - int(time.time()) - 3600
        self.shift_ok(vault, short)
        time.sleep(QUIET_S)
        r = self.srv.kv("GET", "/deletedsecrets/gone", vault=vault)
        self.assertEqual(r.status, 200, f"purged before its retention ended: {r!r}")
        self.assertEqual((r.json()["deletedDate"], r.json()["scheduledPurgeDate"]),
                         (d["deletedDate"] - short, d["scheduledPurgeDate"] - short), r)

        # Two hours more: purged now, not at the next hourly purge.
        self.shift_ok(vault, 7200)
        purged = wait_until(lambda: self.srv.kv("GET", "/deletedsecrets/gone",
                                                vault=vault).status == 404, WAIT_S, 0.1)
        self.assertTrue(purged, self.srv.kv("GET", "/deletedsecrets/gone", vault=vault))
        self.assertEqual(self.srv.kv("GET", "/secrets/gone", vault=vault).status, 404)
        self.assertMoved(kept, self.get_secret(vault, "kept"), short + 7200,
                         "a live secret stays, moved")

    def test_a_deleted_vault_is_purged_past_its_retention(self):
        vault, rg = "ttgone", "rg-ttgone"
        r = self.srv.arm("PUT", self.vault_path(rg, vault),
                         {"location": "local", "properties": {"softDeleteRetentionInDays": 7}})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.srv.arm("DELETE", self.vault_path(rg, vault)).status, 200)
        path = f"/providers/Microsoft.KeyVault/locations/local/deletedVaults/{vault}"
        r = self.srv.arm("GET", path)
        self.assertEqual(r.status, 200, r)
        props = r.json()["properties"]
        deleted, purge = iso_epoch(props["deletionDate"]), iso_epoch(props["scheduledPurgeDate"])
        self.assertEqual(purge - deleted, 7 * DAY, props)

        short = purge - int(time.time()) - 3600
        self.cli_json("time-shift", "--all", "--seconds", short)
        time.sleep(QUIET_S)
        r = self.srv.arm("GET", path)
        self.assertEqual(r.status, 200, f"purged before its retention ended: {r!r}")
        props = r.json()["properties"]
        self.assertEqual((iso_epoch(props["deletionDate"]), iso_epoch(props["scheduledPurgeDate"])),
                         (deleted - short, purge - short), props)

        self.cli_json("time-shift", "--all", "--seconds", 7200)
        purged = wait_until(lambda: self.srv.arm("GET", path).status == 404, WAIT_S, 0.1)
        r = self.srv.arm("GET", path)
        self.assertTrue(purged, r)
        self.assertEqual(r.error_code(), "DeletedVaultNotFound", r)

    def test_a_key_rotates_when_its_policy_falls_due(self):
        vault = "ttrotate"
        entry = dict(self.admin_entry, permissions={"keys": ["all"], "secrets": ["all"]})
        self.create_vault(f"rg-{vault}", vault, False, [entry])
        r = self.srv.kv("POST", "/keys/rotated/create", {"kty": "EC", "crv": "P-256"},
                        vault=vault)
        self.assertEqual(r.status, 200, r)
        first = r.json()["key"]["kid"]
        policy = {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"},
                                       "action": {"type": "Rotate"}}],
                  "attributes": {"expiryTime": "P90D"}}
        r = self.srv.kv("PUT", "/keys/rotated/rotationpolicy", policy, vault=vault)
        self.assertEqual(r.status, 200, r)

        def versions():
            r = self.srv.kv("GET", "/keys/rotated/versions", vault=vault)
            self.assertEqual(r.status, 200, r)
            return sorted(k["kid"] for k in r.json()["value"])

        self.shift_ok(vault, 29 * DAY)
        time.sleep(QUIET_S)
        self.assertEqual(versions(), [first], "rotated a day early")
        self.shift_ok(vault, 2 * DAY)
        self.assertTrue(wait_until(lambda: len(versions()) == 2, WAIT_S, 0.1), versions())
        r = self.srv.kv("GET", "/keys/rotated", vault=vault)
        self.assertEqual(r.status, 200, r)
        latest = r.json()
        self.assertNotEqual(latest["key"]["kid"], first)
        created = latest["attributes"]["created"]
        self.assertLess(abs(created - time.time()), 600, "the new version is made now")
        self.assertEqual(latest["attributes"]["exp"], created + 90 * DAY, latest)
        time.sleep(QUIET_S)
        self.assertEqual(len(versions()), 2, "rotated once")

    def test_a_certificate_renews_when_its_lifetime_action_falls_due(self):
        vault = "ttrenew"
        entry = dict(self.admin_entry, permissions={"certificates": ["all"], "keys": ["all"],
                                                    "secrets": ["all"]})
        self.create_vault(f"rg-{vault}", vault, False, [entry])
        # Twelve months, AutoRenew at 80% of the lifetime (the default lifetime action).
        policy = {"issuer": {"name": "Self"},
                  "x509_props": {"subject": "CN=renewed.example", "validity_months": 12},
                  "key_props": {"kty": "EC", "crv": "P-256"}}
        r = self.srv.kv("POST", "/certificates/renewed/create", {"policy": policy}, vault=vault)
        self.assertEqual(r.status, 202, r)
        r = self.srv.kv("GET", "/certificates/renewed", vault=vault)
        self.assertEqual(r.status, 200, r)
        first = r.json()
        attrs = first["attributes"]
        due = attrs["created"] + (attrs["exp"] - attrs["created"]) * 80 // 100

        def versions():
            r = self.srv.kv("GET", "/certificates/renewed/versions", vault=vault)
            self.assertEqual(r.status, 200, r)
            return sorted(c["id"] for c in r.json()["value"])

        self.shift_ok(vault, due - int(time.time()) - DAY)
        time.sleep(QUIET_S)
        self.assertEqual(versions(), [first["id"]], "renewed a day early")
        self.shift_ok(vault, 2 * DAY)
        self.assertTrue(wait_until(lambda: len(versions()) == 2, WAIT_S, 0.1), versions())
        r = self.srv.kv("GET", "/certificates/renewed", vault=vault)
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json()["id"], first["id"])
        self.assertLess(abs(r.json()["attributes"]["created"] - time.time()), 600,
                        "the new version is made now")
        time.sleep(QUIET_S)
        self.assertEqual(len(versions()), 2, "renewed once")

    def test_shifts_are_audited_in_real_time(self):
        vault, rg = "ttaudit", "rg-ttaudit"
        v = self.create_vault(rg, vault, False, [self.admin_entry])
        seconds = 400 * DAY
        corr = new_correlation("time-shift")
        r = self.shift(f"vault={vault}&seconds={seconds}",
                       headers={"x-ms-client-request-id": corr})
        self.assertEqual(r.status, 200, r)
        bad = new_correlation("time-shift-bad")
        r = self.shift(f"vault={vault}&seconds=0", headers={"x-ms-client-request-id": bad})
        self.assertEqual(r.status, 400, r)
        for label, c, status, query in (("shift", corr, 200, f"vault={vault}&seconds={seconds}"),
                                        ("refused", bad, 400, f"vault={vault}&seconds=0")):
            with self.subTest(label):
                recs = by_correlation(self.srv, c)
                self.assertEqual(len(recs), 1, recs)
                rec = recs[0]
                self.assertEqual(rec["operationName"], "TimeShift", rec)
                self.assertEqual(rec["resourceId"], v["id"].upper(), rec)
                self.assertEqual(rec["properties"]["httpStatusCode"], status, rec)
                self.assertEqual(rec["resultType"], "Success" if status < 400 else "Failure")
                self.assertEqual(rec["properties"]["requestUri"],
                                 f"{self.srv.authority}{SHIFT_PATH}?{query}", rec)
                m = AUDIT_TIME_RE.match(rec["time"])
                self.assertIsNotNone(m, rec["time"])
                at = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                self.assertLess(abs(at - time.time()), 60, f"not the real time: {rec['time']}")
        # Every vault: the seconds in the requestUri too.
        corr = new_correlation("time-shift-all")
        r = self.shift("all=true&seconds=60", headers={"x-ms-client-request-id": corr})
        self.assertEqual(r.status, 200, r)
        (rec,) = by_correlation(self.srv, corr)
        self.assertEqual(rec["operationName"], "TimeShift", rec)
        self.assertEqual(rec["properties"]["requestUri"],
                         f"{self.srv.authority}{SHIFT_PATH}?all=true&seconds=60", rec)


# ---- refusals and totals ----------------------------------------------------------------------

class ApiTests(AuthzTestCase, TimeShiftCase):
    """Refusals and totals. Its own server: one test brings a vault to the ten-year limit,
    after which no shift of every vault can succeed there."""

    def snapshot(self, vault):
        return self.get_secret(vault, "s"), self.totals()

    def new_vault_with_secret(self, vault):
        self.create_vault(f"rg-{vault}", vault, False,
                          [self.policy_entry(self.admin_oid, ["all"])])
        now = int(time.time())
        self.put_secret(vault, "s", "s-value", exp=now + 40 * DAY, nbf=now - 60)

    def test_bad_parameters_and_unknown_vaults_move_nothing(self):
        vault = "ttbad"
        self.new_vault_with_secret(vault)
        self.shift_ok(vault, 60)
        before = self.snapshot(vault)
        for query in (f"vault={vault}", f"vault={vault}&seconds=", f"vault={vault}&seconds=0",
                      f"vault={vault}&seconds=-60", f"vault={vault}&seconds=1.5",
                      f"vault={vault}&seconds=60s", f"vault={vault}&seconds=abc",
                      f"vault={vault}&seconds=1e3", f"vault={vault}&seconds=0x10",
                      f"vault={vault}&seconds={MAX_SHIFT + 1}",
                      f"vault={vault}&seconds=99999999999999999999999",
                      "seconds=60", "vault=&seconds=60", f"vault={vault}&all=true&seconds=60",
                      "all=false&seconds=60", "all=TRUE&seconds=60", "all=1&seconds=60",
                      "all=&seconds=60", "all=true&seconds=-5", "all=true"):
            with self.subTest(query=query):
                self.assertErrorBody(self.shift(query), 400, "BadParameter", query)
        for query in ("vault=nosuchvault&seconds=60", "vault=no-such-vault&seconds=60"):
            with self.subTest(query=query):
                self.assertErrorBody(self.shift(query), 404, "VaultNotFound", query)
        for args in (("--name", vault), ("--seconds", 60), ("--name", vault, "--all",
                                                             "--seconds", 60),
                     ("--name", vault, "--seconds", 0), ("--name", vault, "--seconds", -1),
                     ("--name", vault, "--seconds", MAX_SHIFT + 1)):
            with self.subTest(cli=args):
                rc, out, err = self.srv.cli("time-shift", *args)
                self.assertNotEqual(rc, 0, f"{args}: {out}{err}")
        rc, out, err = self.srv.cli("time-shift", "--name", "nosuchvault", "--seconds", 60)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("VaultNotFound", err)
        self.assertEqual(self.snapshot(vault), before, "a refused shift moved something")
        self.assertEqual(before[1]["vaults"][vault], 60)
        self.assertNotIn("nosuchvault", before[1]["vaults"])

    def test_a_vault_goes_at_most_ten_years_ahead(self):
        at_limit, other = "ttlimit", "ttlimitother"
        for vault in (at_limit, other):
            self.new_vault_with_secret(vault)
        start = self.get_secret(at_limit, "s")
        self.shift_ok(at_limit, MAX_SHIFT - 10)
        before, before_other = self.snapshot(at_limit), self.get_secret(other, "s")
        self.assertMoved(start, before[0], MAX_SHIFT - 10)
        self.assertErrorBody(self.shift(f"vault={at_limit}&seconds=11"), 400, "BadParameter")
        self.assertEqual(self.snapshot(at_limit), before, "a refused shift moved something")
        got = self.shift_ok(at_limit, 10)
        self.assertEqual(got["vaults"][at_limit], MAX_SHIFT, got)
        self.assertMoved(start, self.get_secret(at_limit, "s"), MAX_SHIFT)
        # One vault at the limit: a shift of every vault moves none.
        before = self.snapshot(at_limit)
        self.assertErrorBody(self.shift("all=true&seconds=1"), 400, "BadParameter")
        rc, out, err = self.srv.cli("time-shift", "--all", "--seconds", 1)
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(self.snapshot(at_limit), before)
        self.assertEqual(self.get_secret(other, "s"), before_other,
                         "a refused shift of every vault moved one")

    def test_only_administrators(self):
        vault, rg = "ttadmin", "rg-ttadmin"
        self.new_vault_with_secret(vault)
        before = self.snapshot(vault)
        sp = self.new_sp("tt-not-admin")
        for label in ("no role", "Owner of the vault"):
            with self.subTest(label):
                self.assertErrorBody(self.shift(f"vault={vault}&seconds=60",
                                                token=sp.mgmt_token), 403, "Forbidden")
                self.assertErrorBody(self.shift("all=true&seconds=60", token=sp.mgmt_token),
                                     403, "Forbidden")
                r = self.srv.request("GET", SHIFT_PATH, host="localhost", token=sp.mgmt_token)
                self.assertErrorBody(r, 403, "Forbidden")
            if label == "no role":
                self.assign_ok(self.vault_id(rg, vault), ROLES["Owner"], sp.oid)
        rc, out, err = self.srv.cli("time-shift", "--name", vault, "--seconds", 60,
                                    env={"AZURE_CLIENT_ID": sp.app_id,
                                         "AZURE_CLIENT_SECRET": sp.secret})
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Forbidden", err)
        # A token for the vaults, not the management plane.
        r = self.shift(f"vault={vault}&seconds=60",
                       token=self.srv.token(self.srv.vault_resource))
        self.assertEqual(r.status, 401, r)
        self.assertEqual(self.snapshot(vault), before, "a refused shift moved something")

    def test_the_totals_add_up(self):
        vault = "tttotal"
        self.new_vault_with_secret(vault)
        start = self.get_secret(vault, "s")
        self.assertTrue(self.totals()["enabled"])
        self.assertNotIn(vault, self.totals()["vaults"])
        self.assertEqual(self.shift_ok(vault, 100)["vaults"][vault], 100)
        got = self.shift_ok(vault.upper(), 200)
        self.assertEqual(got["vaults"][vault], 300, got)
        self.assertNotIn(vault.upper(), got["vaults"], got)
        got = self.cli_json("time-shift", "--name", vault, "--seconds", 300)
        self.assertEqual(got["vaults"][vault], 600, got)
        shown = self.totals()
        self.assertEqual(shown, {"enabled": True, "vaults": got["vaults"]})
        self.assertEqual(self.cli_json("time-shift", "--show"), shown)
        self.assertMoved(start, self.get_secret(vault, "s"), 600)

    def test_a_purged_vaults_total_does_not_pass_to_a_new_vault_of_its_name(self):
        vault, rg = "ttreborn", "rg-ttreborn"
        self.new_vault_with_secret(vault)
        self.assertEqual(self.shift_ok(vault, DAY)["vaults"][vault], DAY)
        self.assertEqual(self.srv.arm("DELETE", self.vault_path(rg, vault)).status, 200)
        r = self.srv.arm("POST", f"/providers/Microsoft.KeyVault/locations/local/deletedVaults/"
                                 f"{vault}/purge")
        self.assertEqual(r.status, 200, r)
        # A new vault of that name: its clock has not moved.
        self.new_vault_with_secret(vault)
        start = self.get_secret(vault, "s")
        self.assertEqual(self.totals()["vaults"].get(vault, 0), 0,
                         "the purged vault's total passed to the new vault")
        self.assertEqual(self.shift_ok(vault, 60)["vaults"][vault], 60)
        self.assertMoved(start, self.get_secret(vault, "s"), 60)


class NotDevTests(unittest.TestCase):
    """A server without --dev: time travel is off; --allow-time-shift turns it on."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="coffer-it-timetravel-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        cls.srv = ProductionServer(cls.root, os.path.join(cls.root, "data"))
        cls.addClassCleanup(cls.srv.stop)
        cls.srv.start()
        cls.creds = parse_env_file(read_text(os.path.join(cls.root, "data", "admin.env")))

    def call(self, method, target, body=None):
        token = self.srv.token(self.creds)
        status, data = self.srv.request(method, target, json.dumps(body) if body else None,
                                        {"Authorization": "Bearer " + token,
                                         "Content-Type": "application/json"})
        return status, json.loads(data) if data else None

    def cli(self, *args):
        env = dict(self.creds, COFFER_CA_FILE=self.srv.ca_path)
        p = subprocess.run([coffer_binary(), "keyvault", *[str(a) for a in args]],
                           capture_output=True, text=True, timeout=60, env=clean_env(env),
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def test_off_without_dev_and_on_with_allow_time_shift(self):
        p = subprocess.run([coffer_binary(), "server", "--help"], capture_output=True, text=True,
                           timeout=60)
        self.assertIn("--allow-time-shift", p.stdout)
        vault = f"/subscriptions/{self.creds['COFFER_SUBSCRIPTION_ID']}/resourceGroups/rg-tt/" \
                "providers/Microsoft.KeyVault/vaults/prodtt?api-version=2023-07-01"
        status, body = self.call("PUT", vault, {"location": "local", "properties": {}})
        self.assertEqual(status, 201, body)

        self.assertEqual(self.call("GET", SHIFT_PATH), (200, {"enabled": False, "vaults": {}}))
        for query in ("vault=prodtt&seconds=60", "all=true&seconds=60", "vault=nosuch&seconds=60",
                      "vault=prodtt&seconds=0"):
            with self.subTest(query=query):
                status, body = self.call("POST", f"{SHIFT_PATH}?{query}")
                self.assertEqual(status, 403, body)
                self.assertEqual(body["error"]["code"], "TimeShiftDisabled", body)
                self.assertIn("--allow-time-shift", body["error"]["message"])
        rc, out, err = self.cli("time-shift", "--name", "prodtt", "--seconds", 60)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("TimeShiftDisabled", err)
        self.assertEqual(self.call("GET", SHIFT_PATH), (200, {"enabled": False, "vaults": {}}),
                         "a refused shift moved something")

        # The same data directory, started with --allow-time-shift.
        self.srv.stop()
        self.srv.args = ["--allow-time-shift"]
        self.srv.start()
        self.assertEqual(self.call("GET", SHIFT_PATH), (200, {"enabled": True, "vaults": {}}))
        status, body = self.call("POST", f"{SHIFT_PATH}?vault=nosuch&seconds=60")
        self.assertEqual((status, body["error"]["code"]), (404, "VaultNotFound"), body)
        status, body = self.call("POST", f"{SHIFT_PATH}?vault=prodtt&seconds=60")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["seconds"], body["vault"], body["vaults"]),
                         (60, "prodtt", {"prodtt": 60}), body)
        rc, out, err = self.cli("time-shift", "--name", "prodtt", "--seconds", 40)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["vaults"], {"prodtt": 100})


# ---- the node agent and `coffer exec` ----------------------------------------------------------

class AgentAndExecTests(TimeShiftCase):
    """The agent mounts with the dev service principal (nodePublishSecretRef) and follows the
    watch stream (a poll interval of an hour); exec resolves with dev.env's credentials."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sp_file = os.path.join(cls.srv.root, "sp-secret.json")
        with open(cls.sp_file, "w", encoding="utf-8") as f:
            f.write(k8s_secret({"clientid": cls.srv.env["AZURE_CLIENT_ID"],
                                "clientsecret": cls.srv.env["AZURE_CLIENT_SECRET"]}))

    def agent_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
               and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        env["COFFER_CA_FILE"] = self.srv.ca_path
        env["AZURE_AUTHORITY_HOST"] = self.srv.env["AZURE_AUTHORITY_HOST"]
        env["COFFER_VAULT_DNS_SUFFIX"] = self.srv.env["COFFER_VAULT_DNS_SUFFIX"]
        return env

    def mount(self, name, objects):
        d = tempfile.mkdtemp(prefix=f"mount-{name}-", dir=self.srv.root)
        spc = os.path.join(d, "spc.yaml")
        with open(spc, "w", encoding="utf-8") as f:
            f.write(spc_yaml(objects, vault="dev", tenant=self.srv.tenant))
        return {"name": name, "secretProviderClass": spc, "target": os.path.join(d, "target"),
                "nodePublishSecretRef": self.sp_file}

    def exec_once(self, reference):
        """`coffer exec` of a child that writes $REF to a file; returns (rc, what the child saw,
        the status file's one reference, exec's output)."""
        d = tempfile.mkdtemp(prefix="exec-", dir=self.srv.root)
        out, status = os.path.join(d, "child.out"), os.path.join(d, "status.json")
        env = self.srv.cli_env()
        for k in list(env):
            if k.startswith(("IDENTITY_", "MSI_")):
                del env[k]
        env.update(COFFER_CA_FILE=self.srv.ca_path, REQUESTS_CA_BUNDLE=self.srv.ca_path,
                   REF=reference)
        p = subprocess.run([coffer_binary(), "exec", "--no-watch", "--status-file", status, "--",
                            "/bin/sh", "-c", f'printf %s "$REF" > {out}'],
                           env=env, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        try:
            with open(status, encoding="utf-8") as f:
                refs = json.load(f)["references"]
        except (OSError, ValueError, KeyError):
            refs = []
        self.assertEqual(len(refs), 1, f"status file: {read_text(status)}\n{p.stderr}")
        return p.returncode, read_text(out), refs[0], p.stdout + p.stderr

    def test_an_expired_secret_stays_mounted_and_resolved_until_disabled(self):
        value = "mounted-value-8d1f"
        exp = int(time.time()) + 2 * DAY
        self.put_secret("dev", "tt-db", value, exp=exp)
        m = self.mount("tt", ["tt-db"])
        agent = Agent(self, [m], poll="1h")
        target = os.path.join(m["target"], "tt-db")
        self.assertEqual(read_text(target), value)

        def record():
            st = agent.status("tt")
            obj = {o["id"]: o for o in st.get("objects", [])}.get("secret/tt-db", {})
            return st, obj

        def warnings():
            return [w for w in record()[0].get("warnings", []) if "secret/tt-db" in w]

        self.assertTrue(wait_until(lambda: record()[1].get("expiresOn") == exp, WAIT_S, 0.1),
                        record())
        self.assertTrue(any("expires in" in w for w in warnings()), record())
        labels = {"mount": "tt", "object_type": "secret", "object_name": "tt-db",
                  "file": "tt-db"}
        left = sample_value(agent.metrics(), "keyvault_object_expiry_seconds", **labels)
        self.assertIsNotNone(left)
        self.assertGreater(left, 0)

        # Three days on: a day past exp, still mounted, with the warning and a negative gauge.
        self.shift_ok("dev", 3 * DAY)
        moved = wait_until(lambda: record()[1].get("expiresOn") == exp - 3 * DAY, WAIT_S, 0.1)
        self.assertTrue(moved, f"{record()}\n{agent.output()[-3000:]}")
        st, obj = record()
        self.assertTrue(st["mounted"], st)
        self.assertEqual(st["lastError"], "", st)
        self.assertEqual(len(warnings()), 1, st)
        self.assertIn("expired at", warnings()[0])
        self.assertIn("still mounted", warnings()[0])
        self.assertEqual(read_text(target), value)
        self.assertTrue(wait_until(lambda: (sample_value(
            agent.metrics(), "keyvault_object_expiry_seconds", **labels) or 0) < 0, WAIT_S, 0.2),
            sample_value(agent.metrics(), "keyvault_object_expiry_seconds", **labels))
        left = sample_value(agent.metrics(), "keyvault_object_expiry_seconds", **labels)
        self.assertGreater(left, -2 * DAY, "about a day past exp, not more")
        p = subprocess.run([coffer_binary(), "agent", "status", "--state-dir", agent.state,
                            "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("secret/tt-db", p.stdout)
        self.assertIn("expired at", p.stdout)
        self.assertNotIn(value, p.stdout)

        reference = "@Microsoft.KeyVault(VaultName=dev;SecretName=tt-db)"
        rc, seen, ref, output = self.exec_once(reference)
        self.assertEqual(rc, 0, output)
        self.assertEqual(seen, value, output)
        self.assertEqual(ref["status"], "Resolved", ref)
        self.assertNotIn(value, output)

        # Disabled: the agent reports the object's error and keeps the old file; exec leaves the
        # reference literal and says why.
        r = self.srv.kv("PATCH", "/secrets/tt-db", {"attributes": {"enabled": False}})
        self.assertEqual(r.status, 200, r)
        failed = wait_until(lambda: "disabled" in record()[0].get("lastError", ""), WAIT_S, 0.1)
        self.assertTrue(failed, f"{record()}\n{agent.output()[-3000:]}")
        st, obj = record()
        self.assertIn("disabled", obj.get("error", ""), st)
        self.assertEqual(read_text(target), value, "the old file is kept")
        rc, seen, ref, output = self.exec_once(reference)
        self.assertEqual(rc, 0, output)
        self.assertEqual(seen, reference, "an unresolved reference stays literal")
        self.assertNotEqual(ref["status"], "Resolved", ref)
        self.assertIn("disabled", ref["details"], ref)
        self.assertNotIn(value, output + json.dumps(ref) + agent.output())


if __name__ == "__main__":
    unittest.main()
