"""The node agent and `coffer exec` against a throttled vault (docs/service-limits.md,
docs/agent.md "Shared reads" and "Rotation", docs/exec.md), end to end against the real server.

The dev vault gets a custom secretOther budget per 10-second window (`coffer limits set --mode
custom --vault dev --secret-other N`); every count below comes from the server's audit log: the
SecretGet records of the client's identity (the VM's system-assigned identity for the agent, a
web app's for exec), by status (200 or 429) and by window (the record's time // 10 s, the
server's own windows).

* 100 standalone mounts of one agent (each its own SecretProviderClass file and target, the same
  3 secrets, the node's managed identity) against a budget of 50 reads per 10 s: every mount gets
  its files; the first round reads each object once (the reads before the agent opens its watch
  stream), the whole run (that round and the one the watch stream's first connection starts)
  at most twice, and nothing is throttled -- not one read per mount (300).
* The same 100 mounts against a budget of 2 reads per 10 s: the rounds are throttled (429s are
  audited), the agent waits as Retry-After says and shares the reads, so that it never sends more
  than AGENT_WINDOW_BOUND requests in one window, and every mount gets its files.
* The same 100 mounts, mounted, then a neighbour that takes the vault's whole budget at the start
  of every window while the secrets get new versions: the refresh that the push starts fails;
  the status record and `coffer agent status` say so as docs/agent.md describes (mounted, the
  old files kept, lastError naming the throttling, STALE), the metrics count a Throttled
  reconcile error, the agent stays within AGENT_WINDOW_BOUND requests per window (a round whose
  first read was throttled must not turn into one read per mount), and once the neighbour stops
  every mount gets the new values.
* `coffer exec` started while the window's budget is spent: its read is throttled once, it waits
  for the window to end (its next request is in a later window) and the child starts with the
  value; the status file says Resolved.
* The budget clients see: a budget of N admits N reads in a window also when the server has not
  cached the values (the first reads of secrets), and throttles the one after them.

Every wait is bounded (WAIT_S) and none is a performance claim; QUIET_S is how long a test lets
the audit log catch up (reads reach it within about a second) before it counts. Bursts start
early in a window (early_in_a_window), so that a window boundary cannot split them.
"""

import calendar
import collections
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from harness import KV_API, coffer_binary, read_text, wait_until
from test_agent import RG, WAIT_S, Agent, AgentTestCase
from test_agent_extensions import samples
from test_audit import audit_dir, read_records
from test_exec import ExecRun

QUIET_S = 3.0   # lets the audit log catch up before counting; never a performance claim
MOUNTS = 100
WINDOW_S = 10
# The most requests the agent may send in one window, however many mounts it has. Rounds run on
# two threads (the poll loop, with its back-off retries, and the push loop), one round at a time
# each. A round reads each object once (single flight), and a read tries at most once per window
# (after a 429 it waits for Retry-After, the window's end). A round that ends in a window may be
# followed in that window by the next one's first read (the others wait for it). So per thread
# at most 3 objects + 1 first read, and 2 threads: 8. A round that reads once per mount would
# send 100 x 3.
AGENT_WINDOW_BOUND = 2 * (3 + 1)


def early_in_a_window(left=6.0):
    """Waits until the current 10-second window (Unix time // 10 s, the server's clock) has at
    least `left` seconds left."""
    while WINDOW_S - time.time() % WINDOW_S < left:
        time.sleep(0.05)


def sleep_past_window_end(extra=0.3):
    """Sleeps until `extra` seconds into the next window; returns that window."""
    now = time.time()
    end = (now // WINDOW_S + 1) * WINDOW_S
    time.sleep(end - now + extra)
    return int(end // WINDOW_S)


def record_seconds(rec):
    """A record's time ("2026-12-07T16:20:56.2077170Z") as Unix seconds."""
    t = rec["time"]
    whole, _, frac = t.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def window_of(rec):
    return int(record_seconds(rec) // WINDOW_S)


def secret_of(rec):
    """The secret name a SecretGet record is about (from its requestUri)."""
    path = rec["properties"].get("requestUri", "").split("?", 1)[0]
    parts = path.split("/secrets/", 1)
    return parts[1].split("/", 1)[0].lower() if len(parts) == 2 else None


def status_of(rec):
    return rec["properties"].get("httpStatusCode")


def per_window(recs):
    """{window: {status: count}} of records, for checks and messages."""
    out = collections.defaultdict(collections.Counter)
    for r in recs:
        out[window_of(r)][status_of(r)] += 1
    return {w: dict(c) for w, c in sorted(out.items())}


def table(recs):
    """Records as short lines for a failure message."""
    return "\n".join(f"  {r['time']} {r['operationName']} {secret_of(r)} {status_of(r)}"
                     for r in sorted(recs, key=record_seconds))


class Neighbour:
    """Another client of the vault (the dev service principal) that takes a window's whole
    secretOther budget at its start: from a few milliseconds before each window's end it sends
    reads on one kept-alive connection until one sent after the boundary is throttled. A client
    that waits for Retry-After comes back at a random point of the window's first second, so the
    neighbour is nearly always first. Stopped by stop()."""

    def __init__(self, case, secret):
        self.srv = case.srv
        self.path = f"/secrets/{secret}?api-version={KV_API}"
        self.token = self.srv.token(self.srv.vault_resource)
        self.stopping = threading.Event()
        self.sent = collections.Counter()
        self.errors = []
        self.held = set()   # windows whose budget it saw spent after their start
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        case.addCleanup(self.stop)

    def get(self, conn):
        r = self.srv.send(conn, "GET", self.path, headers={"Authorization": "Bearer " +
                                                           self.token})
        self.sent[r.status] += 1
        return r.status

    def run(self):
        conn = self.srv.connection(timeout=10)
        try:
            while not self.stopping.is_set():
                now = time.time()
                end = (now // WINDOW_S + 1) * WINDOW_S
                if self.stopping.wait(max(0.0, end - 0.005 - now)):
                    return
                while not self.stopping.is_set() and time.time() < end + 2:
                    sent_at = time.time()
                    try:
                        status = self.get(conn)
                    except OSError as e:  # a dropped keep-alive connection: open another
                        self.errors.append(repr(e))
                        conn.close()
                        conn = self.srv.connection(timeout=10)
                        continue
                    if status == 429 and sent_at >= end:
                        self.held.add(int(end // WINDOW_S))
                        break
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)


class ThrottledClientTests(AgentTestCase):
    """AgentTestCase's VM "vm-agent" (the agent's node identity), and a web app "app-thr" with a
    system-assigned identity for exec; both may get and list the dev vault's secrets."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        app = cls.coffer_json("webapp", "create", "-n", "app-thr", "-g", RG,
                              "--assign-identity", "[system]")
        cls.app_principal = app["identity"]["principalId"]
        cls.grant(cls.app_principal)
        rc, out, err = cls.run_coffer("webapp", "identity", "endpoint", "-n", "app-thr", "-g", RG,
                                      "--env")
        if rc != 0:
            raise AssertionError(f"identity endpoint of app-thr: {rc}\n{out}\n{err}")
        cls.app_env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        cls.secrets["the identity header of app-thr"] = cls.app_env["IDENTITY_HEADER"]
        cls.node_oid = cls.vm["identity"]["principalId"]

    def tearDown(self):
        self.coffer_json("limits", "set", "--mode", "off")
        super().tearDown()

    # -- fixtures --

    def limit_reads(self, n):
        settings = self.coffer_json("limits", "set", "--mode", "custom", "--vault", "dev",
                                    "--secret-other", str(n))
        self.assertEqual(settings["mode"], "custom", settings)
        self.assertEqual(settings["vaults"]["dev"]["secretOther"], n, settings)

    def new_secrets(self, label, count=3):
        """`count` new secrets (names unique to the test); returns {name: value}."""
        tag = uuid.uuid4().hex[:6]
        values = {}
        for i in range(count):
            name = f"thr-{label}-{tag}-{i}"
            values[name] = self.value(name)
            self.set_secret(name, values[name])
        return values

    def hundred_mounts(self, names):
        """MOUNTS mounts of the node's identity, each with its own SecretProviderClass file and
        target, every one naming the same objects."""
        return [self.mount(f"m{i:03d}", list(names), {"useVMManagedIdentity": "true"})
                for i in range(MOUNTS)]

    def all_mounted(self, mounts, values):
        return all(self.read(m, n) == v for m in mounts for n, v in values.items())

    def wait_all_mounted(self, mounts, values, agent, what):
        ok = wait_until(lambda: self.all_mounted(mounts, values), timeout=WAIT_S, interval=0.5)
        if not ok:
            missing = [m["name"] for m in mounts
                       if any(self.read(m, n) != v for n, v in values.items())]
            self.fail(f"{what}: {len(missing)} of {len(mounts)} mounts lack the values "
                      f"({missing[:5]}...); status of {missing[0]}: {agent.status(missing[0])}\n"
                      f"--- agent ---\n{agent.output()[-3000:]}\n--- its audited reads ---\n"
                      f"{table(self.reads(self.node_oid, values))}")

    def reads(self, oid, names, since=0.0, operations=("SecretGet",)):
        """The audit records of `oid`'s requests on the secrets `names` from `since` on."""
        wanted = {n.lower() for n in names}
        return sorted((r for r in read_records(audit_dir(self.srv))
                       if r.get("operationName") in operations
                       and r.get("identity", {}).get("claim", {}).get("oid") == oid
                       and secret_of(r) in wanted and record_seconds(r) >= since),
                      key=record_seconds)

    def metric_total(self, agent, name, **labels):
        return sum(v for _, v in samples(agent.metrics(), name, **labels))

    def assertWithinWindowBound(self, recs, what):
        counts = per_window(recs)
        worst = max((sum(c.values()) for c in counts.values()), default=0)
        self.assertLessEqual(
            worst, AGENT_WINDOW_BOUND,
            f"{what}: the agent sent {worst} requests in one 10-second window (at most "
            f"{AGENT_WINDOW_BOUND}); per window {counts}\n{table(recs)}")
        return counts

    # -- the node agent --

    def test_100_mounts_read_each_object_once_per_round_within_the_budget(self):
        values = self.new_secrets("hundred")
        self.limit_reads(50)
        mounts = self.hundred_mounts(values)
        started = time.time()
        agent = Agent(self, mounts)
        self.wait_all_mounted(mounts, values, agent, "budget 50")
        # The watch stream's first connection starts one more round (docs/agent.md, "Push"):
        # wait for it to have refreshed every mount, then let the audit log catch up.
        self.assertTrue(wait_until(lambda: self.metric_total(agent, "rotation_reconcile_total")
                                   >= MOUNTS, timeout=WAIT_S),
                        f"the round after the watch stream's first connection did not refresh "
                        f"every mount\n{agent.metrics()[-2000:]}")
        time.sleep(QUIET_S)
        recs = self.reads(self.node_oid, values, since=started)
        watches = [r for r in read_records(audit_dir(self.srv))
                   if r.get("operationName") == "SecretWatch" and record_seconds(r) >= started
                   and r.get("identity", {}).get("claim", {}).get("oid") == self.node_oid]
        self.assertTrue(watches, "the agent opened no watch stream")
        stream_opened = min(record_seconds(r) for r in watches)
        first_round = [r for r in recs if record_seconds(r) < stream_opened]
        by_object = collections.Counter(secret_of(r) for r in recs)
        first_by_object = collections.Counter(secret_of(r) for r in first_round)
        msg = f"the agent's audited reads (watch stream opened at {stream_opened}):\n{table(recs)}"
        print(f"\n[budget 50] {len(recs)} agent SecretGets for {MOUNTS} mounts x {len(values)} "
              f"objects; first round {len(first_round)}; per window {per_window(recs)}",
              file=sys.stderr)
        self.assertEqual([status_of(r) for r in recs if status_of(r) != 200], [], msg)
        # The first round: one read per object, however many mounts name it.
        self.assertEqual(dict(first_by_object), {n.lower(): 1 for n in values}, msg)
        # That round and the stream's: at most two per object, not one per mount (300).
        self.assertLessEqual(max(by_object.values()), 2, msg)
        self.assertLessEqual(len(recs), 2 * len(values), msg)
        for m in mounts:
            st = agent.status(m["name"])
            self.assertTrue(st.get("mounted"), st)
            self.assertEqual(st.get("lastError"), "", st)
        self.assertNoSecrets(agent.output())

    def test_100_mounts_against_2_reads_per_window_back_off_and_mount(self):
        values = self.new_secrets("two")
        self.limit_reads(2)
        mounts = self.hundred_mounts(values)
        started = time.time()
        agent = Agent(self, mounts)
        self.wait_all_mounted(mounts, values, agent, "budget 2")
        # Counted now: the first round, and what the watch stream's round has sent so far.
        time.sleep(QUIET_S)
        recs = self.reads(self.node_oid, values, since=started)
        counts = self.assertWithinWindowBound(recs, "budget 2")
        ok = [r for r in recs if status_of(r) == 200]
        throttled = [r for r in recs if status_of(r) == 429]
        print(f"\n[budget 2] {len(recs)} agent SecretGets ({len(ok)} x 200, {len(throttled)} x "
              f"429) over {len(counts)} windows; per window {counts}", file=sys.stderr)
        msg = table(recs)
        self.assertEqual({status_of(r) for r in recs} - {200, 429}, set(), msg)
        # The test is only worth something if the rounds were throttled.
        self.assertTrue(throttled, f"no read of the agent was throttled\n{msg}")
        # Two rounds (the first, the stream's) of 3 objects, one successful read each.
        self.assertLessEqual(len(ok), 2 * len(values), msg)
        for w, c in counts.items():
            self.assertLessEqual(c.get(200, 0), 2, f"window {w} admitted more than the budget\n"
                                                   f"{msg}")
        for m in mounts:
            st = agent.status(m["name"])
            self.assertTrue(st.get("mounted"), st)
        self.assertNoSecrets(agent.output())

    def test_a_throttled_refresh_is_reported_stale_bounded_and_recovers(self):
        values = self.new_secrets("stale")
        busy = self.new_secrets("neighbour", count=1)
        mounts = self.hundred_mounts(values)
        agent = Agent(self, mounts)
        self.wait_all_mounted(mounts, values, agent, "no limits")
        self.assertTrue(wait_until(lambda: self.metric_total(agent, "rotation_reconcile_total")
                                   >= MOUNTS, timeout=WAIT_S), agent.metrics()[-2000:])
        # A neighbour takes the whole budget at the start of every window.
        self.limit_reads(2)
        neighbour = Neighbour(self, next(iter(busy)))
        held = sleep_past_window_end(extra=1.0)
        self.assertIn(held, neighbour.held, f"the neighbour did not spend window {held}'s budget: "
                                            f"{neighbour.sent} {neighbour.errors}")
        started = time.time()
        new = {n: self.value(n) for n in values}
        for n, v in new.items():
            self.set_secret(n, v)
        # The push's refresh fails once its reads have used up their retries; meanwhile the
        # agent must stay within the bound (checked as it goes, so that a flood fails at once).
        def failed_or_flooding():
            failed = [m["name"] for m in mounts if agent.status(m["name"]).get("lastError")]
            if failed:
                return failed
            recs = self.reads(self.node_oid, values, since=started)
            counts = per_window(recs)
            if max((sum(c.values()) for c in counts.values()), default=0) > AGENT_WINDOW_BOUND:
                self.assertWithinWindowBound(recs, "while the neighbour held the budget")
            return None

        failed = wait_until(failed_or_flooding, timeout=WAIT_S, interval=1.0)
        self.assertTrue(failed, f"no refresh failed while the neighbour held the budget; "
                                f"status: {agent.status(mounts[0]['name'])}\n"
                                f"{table(self.reads(self.node_oid, values, since=started))}")
        st = agent.status(failed[0])
        failed_mount = next(m for m in mounts if m["name"] == failed[0])
        self.assertTrue(st["mounted"], st)
        self.assertIn("VaultRequestTypeLimitReached", st["lastError"], st)
        self.assertGreaterEqual(st["consecutiveFailures"], 1, st)
        self.assertLess(st["lastSuccess"], st["lastAttempt"], st)
        self.assertEqual({n: self.read(failed_mount, n) for n in values}, values,
                         "the old files are kept")
        shown = subprocess.run([coffer_binary(), "agent", "status", "--state-dir", agent.state],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn(f"{failed[0]}  {failed_mount['target']}  STALE (last refresh failed)\n",
                      shown.stdout)
        as_json = json.loads(subprocess.run(
            [coffer_binary(), "agent", "status", "--state-dir", agent.state, "--json"],
            capture_output=True, text=True, timeout=30, check=True).stdout)
        record = next(r for r in as_json if r["name"] == failed[0])
        self.assertIn("VaultRequestTypeLimitReached", record["lastError"], record)
        self.assertTrue(wait_until(lambda: self.metric_total(
            agent, "rotation_reconcile_error_total", error_type="Throttled") >= 1,
            timeout=WAIT_S), agent.metrics()[-3000:])
        # The neighbour still holds the budget: watch one more whole window, then count.
        sleep_past_window_end(extra=QUIET_S)
        recs = self.reads(self.node_oid, values, since=started)
        counts = self.assertWithinWindowBound(recs, "while the neighbour held the budget")
        print(f"\n[neighbour] while throttled: {len(recs)} agent SecretGets, per window {counts}; "
              f"neighbour sent {dict(neighbour.sent)}", file=sys.stderr)
        # The neighbour stops: every mount gets the new values.
        neighbour.stop()
        stopped = time.time()
        self.wait_all_mounted(mounts, new, agent, "after the neighbour stopped")
        self.assertTrue(wait_until(lambda: all(agent.status(m["name"]).get("lastError") == ""
                                               for m in mounts), timeout=WAIT_S),
                        agent.status(failed[0]))
        time.sleep(QUIET_S)
        recs = self.reads(self.node_oid, values, since=started)
        counts = self.assertWithinWindowBound(recs, "the whole run")
        print(f"[neighbour] whole run: {len(recs)} agent SecretGets, per window {counts}; "
              f"recovered {time.time() - stopped:.0f} s after the neighbour stopped",
              file=sys.stderr)
        self.assertNoSecrets(agent.output())

    # -- coffer exec --

    def exec_env(self, refs):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "COFFER_", "IDENTITY_", "MSI_"))
               and k not in ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE",
                             "SSL_CERT_DIR")}
        env.update(self.app_env)
        env["REQUESTS_CA_BUNDLE"] = self.srv.ca_path
        env["COFFER_VAULT_DNS_SUFFIX"] = self.srv.env["COFFER_VAULT_DNS_SUFFIX"]
        env["AZURE_AUTHORITY_HOST"] = self.srv.env["AZURE_AUTHORITY_HOST"]
        env.update(refs)
        return env

    def spend_the_window(self, secret):
        """Reads `secret` as the dev service principal until a read is throttled; returns the
        window whose budget is spent."""
        conn = self.srv.connection()
        token = self.srv.token(self.srv.vault_resource)
        try:
            for _ in range(50):
                window = int(time.time() // WINDOW_S)
                r = self.srv.send(conn, "GET", f"/secrets/{secret}?api-version={KV_API}",
                                  headers={"Authorization": "Bearer " + token})
                if r.status == 429:
                    self.assertEqual(r.error_code(), "Throttled", repr(r))
                    return window
                self.assertEqual(r.status, 200, repr(r))
        finally:
            conn.close()
        self.fail("50 reads were not throttled")

    def test_exec_waits_for_retry_after_and_the_child_gets_the_value(self):
        values = self.new_secrets("exec", count=1)
        (name, value), = values.items()
        busy = next(iter(self.new_secrets("exec-busy", count=1)))
        self.limit_reads(3)
        early_in_a_window(left=7.0)
        spent = self.spend_the_window(busy)
        ref = f"@Microsoft.KeyVault(VaultName=dev;SecretName={name})"
        run = ExecRun(self, self.exec_env({"KV_VALUE": ref}), ["KV_VALUE"])
        start = run.wait_starts(1)[0]
        recs = self.reads(self.app_principal, [name], since=spent * WINDOW_S)
        msg = f"exec's audited reads:\n{table(recs)}\n{run.diagnostics()}"
        self.assertEqual(start["env"]["KV_VALUE"], value, msg)
        status = run.wait_status(lambda s: s["references"][0]["status"] == "Resolved",
                                 "Resolved")
        self.assertEqual(status["references"][0]["name"], "KV_VALUE", status)
        time.sleep(QUIET_S)
        recs = self.reads(self.app_principal, [name], since=spent * WINDOW_S)
        msg = f"exec's audited reads (window {spent} spent):\n{table(recs)}\n{run.diagnostics()}"
        print(f"\n[exec] {[(window_of(r) - spent, status_of(r)) for r in recs]} "
              "(window relative to the spent one, status)", file=sys.stderr)
        self.assertTrue(recs, msg)
        first = recs[0]
        self.assertEqual((window_of(first), status_of(first)), (spent, 429),
                         "exec's first read falls in the spent window and is throttled: " + msg)
        throttled = [r for r in recs if status_of(r) == 429]
        self.assertEqual(len(throttled), 1, "one 429, then it waited: " + msg)
        after = recs[1]
        self.assertEqual(status_of(after), 200, msg)
        self.assertGreater(window_of(after), spent,
                           "the retry waits for the window's end (Retry-After): " + msg)
        self.assertNotIn(value, run.output() + read_text(run.status_path))
        run.terminate()

    # -- the budget clients see --

    def test_a_budget_of_n_admits_n_reads_of_values_the_server_has_not_cached(self):
        values = self.new_secrets("budget", count=3)
        self.limit_reads(3)
        early_in_a_window()
        window = int(time.time() // WINDOW_S)
        answers = [self.srv.kv("GET", f"/secrets/{n}") for n in values]
        answers.append(self.srv.kv("GET", f"/secrets/{next(iter(values))}"))
        self.assertEqual(int(time.time() // WINDOW_S), window, "the burst stayed in one window")
        statuses = [r.status for r in answers]
        self.assertEqual(statuses, [200, 200, 200, 429],
                         "the first reads of 3 secrets fit a budget of 3; the 4th read does not: "
                         f"{answers}")
