#!/usr/bin/env python3
"""The node agent with M standalone mounts (default 100) sharing K secrets (default 10), each
mount with its own target on a tmpfs (/dev/shm, as the driver's volumes), all as the dev service
principal (a nodePublishSecretRef file). For bench/run.sh step 12 (docs/benchmarks.md):

  0. cold: `coffer agent` with one mount of 50 secrets, from starting the process to
     "agent ready" (process start, token, connections, 50 reads, the write), 7 times; and the
     same with one secret, which is the process's own start-up.
  1. push: `coffer agent` with a poll interval of an hour follows the watch stream. S SETs
     (default 30), one after another, each to one of the K secrets; for every SET, the time
     from sending it to each mount's file holding the new value (a reader thread re-reads all
     M files in a loop). p50 / p99 / max over the M x S (mount, SET) pairs that must change.
  2. memory: the agent's VmRSS (and peak VmHWM) with the M mounts, after the initial mount and
     after the push phase.
  3. reads per poll cycle: `coffer agent --no-watch` with a 5 s poll interval and no jitter;
     the agent's keyvault_request_count over three cycles (a cycle ends when
     rotation_reconcile_total has grown by M). The baseline, reading per mount as the driver
     with the Azure provider reads per pod, is M x K.

Usage: python3 bench/agent_bench.py COFFER_BIN [MOUNTS=100] [SECRETS=10] [SETS=30]
Needs the dev server's environment (bench/run.sh sources dev.env and sets $TOKEN). Loopback
only; stops the agents it started by PID and removes its directory.
"""
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

VAULT_HOST = "dev.vault.localhost"


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Vault:
    """PUTs over one keep-alive TLS connection to the dev vault, with $TOKEN."""

    def __init__(self):
        port = urllib.parse.urlparse(os.environ["AZURE_AUTHORITY_HOST"]).port
        ctx = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
        self.conn = http.client.HTTPSConnection(VAULT_HOST, port, context=ctx)
        self.headers = {"Authorization": "Bearer " + os.environ["TOKEN"],
                        "Content-Type": "application/json"}

    def set(self, name, value):
        self.conn.request("PUT", f"/secrets/{name}?api-version=7.5",
                          json.dumps({"value": value}), self.headers)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"SET {name} failed: {r.status} {body[:200]!r}")


class Agent:
    def __init__(self, coffer, root, label, mounts, poll, args=()):
        self.dir = os.path.join(root, label)
        os.makedirs(self.dir)
        config = os.path.join(self.dir, "agent.yaml")
        with open(config, "w", encoding="utf-8") as f:
            json.dump({"pollInterval": poll, "jitter": 0, "mounts": mounts}, f)
        self.out = os.path.join(self.dir, "agent.out")
        env = dict(os.environ, COFFER_CA_FILE=os.environ["REQUESTS_CA_BUNDLE"])
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [coffer, "agent", "--config", config, "--state-dir",
                 os.path.join(self.dir, "state"), "--metrics-port", "0"] + list(args),
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while "agent ready" not in self.text() and self.proc.poll() is None:
            if time.time() > deadline:
                self.stop()
                sys.exit("the agent did not become ready in 120 s")
            time.sleep(0.002)
        m = re.search(r"mounts: (\d+) of (\d+) mounted", self.text())
        if not m or m.group(1) != m.group(2):
            self.stop()
            sys.exit("the agent did not mount everything:\n" + self.text()[-2000:])
        self.metrics_port = int(re.search(r"metrics: http://127\.0\.0\.1:(\d+)/",
                                          self.text()).group(1))

    def text(self):
        with open(self.out, encoding="utf-8", errors="replace") as f:
            return f.read()

    def metric_sum(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=10) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spc_text(tenant, name, objects):
    return ("apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
            f"metadata:\n  name: {name}\nspec:\n  provider: azure\n  parameters:\n"
            f"    keyvaultName: dev\n    tenantID: {tenant}\n    objects: |\n      array:\n" +
            "".join(f"        - |\n          objectName: {n}\n          objectType: secret\n"
                    for n in objects))


def push(agent, vault, targets, names, sets):
    """S SETs; per (SET, mount) the time from sending the SET to the mount's file changing."""
    expected = {}  # file path -> (value, t0) of the SET it waits for
    seen = {}      # file path -> time the expected value was first read
    lock = threading.Lock()
    done = threading.Event()

    def reader():
        while not done.is_set():
            with lock:
                waiting = dict(expected)
            for path, (value, _) in waiting.items():
                try:
                    with open(path, "rb") as f:
                        content = f.read()
                except OSError:
                    continue
                if content == value:
                    now = time.perf_counter()
                    with lock:
                        if expected.get(path, (None,))[0] == value:
                            seen[path] = now
                            del expected[path]
            time.sleep(0.001)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    latencies, missing = [], 0
    for i in range(sets):
        name = names[i % len(names)]
        value = f"{name}-push-{i}-{os.urandom(6).hex()}".encode()
        paths = [os.path.join(t, name) for t in targets]
        t0 = time.perf_counter()
        with lock:
            seen.clear()
            for p in paths:
                expected[p] = (value, t0)
        vault.set(name, value.decode())
        deadline = time.time() + 10
        while time.time() < deadline:
            with lock:
                if not expected:
                    break
            time.sleep(0.005)
        with lock:
            missing += len(expected)
            expected.clear()
            latencies += [(seen[p] - t0) * 1000 for p in paths if p in seen]
        time.sleep(0.2)
    done.set()
    thread.join()
    print(f"push: SET -> file changed over {sets} SETs x {len(targets)} mounts: "
          f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
          f"max {max(latencies):.1f} ms, missing {missing} (target p99 < 1000 ms)")


def reads_per_cycle(agent, mounts, secrets, cycles=3):
    base_reads = agent.metric_sum("keyvault_request_count")
    base_rec = agent.metric_sum("rotation_reconcile_total")
    print(f"reads for the initial mount of {mounts} mounts: {base_reads:.0f} "
          f"(mounts x objects: {mounts * secrets})")
    per_cycle = []
    for c in range(1, cycles + 1):
        deadline = time.time() + 30
        while agent.metric_sum("rotation_reconcile_total") < base_rec + c * mounts:
            if time.time() > deadline:
                sys.exit(f"poll cycle {c} did not finish in 30 s")
            time.sleep(0.1)
        reads = agent.metric_sum("keyvault_request_count")
        per_cycle.append(reads - base_reads)
        base_reads = reads
    print(f"poll: upstream reads per cycle over {cycles} cycles: "
          f"{', '.join(f'{r:.0f}' for r in per_cycle)} "
          f"(per-mount reading, as the driver's per-pod reads: {mounts * secrets}; "
          f"target {secrets})")


def main():
    coffer = sys.argv[1]
    mounts = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    secrets = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    sets = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    root = tempfile.mkdtemp(prefix="coffer-agent-bench-", dir="/dev/shm")
    agents = []
    try:
        vault = Vault()
        names = [f"agent-share-{i}" for i in range(secrets)]
        for n in names:
            vault.set(n, f"{n}-initial")
        spc = os.path.join(root, "spc.yaml")
        with open(spc, "w", encoding="utf-8") as f:
            f.write(spc_text(os.environ["AZURE_TENANT_ID"], "shared", names))
        sp = os.path.join(root, "sp.json")
        with open(sp, "w", encoding="utf-8") as f:
            json.dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sp"},
                       "stringData": {"clientid": os.environ["AZURE_CLIENT_ID"],
                                      "clientsecret": os.environ["AZURE_CLIENT_SECRET"]}}, f)
        os.chmod(sp, 0o600)
        os.makedirs(os.path.join(root, "targets"))
        targets = [os.path.join(root, "targets", f"m{i}") for i in range(mounts)]
        entries = [{"name": f"m{i}", "secretProviderClass": spc, "target": t,
                    "nodePublishSecretRef": sp} for i, t in enumerate(targets)]

        fifty = [f"agent-cold-{i}" for i in range(50)]
        for n in fifty:
            vault.set(n, f"{n}-value")
        for count in (1, 50):
            spc_n = os.path.join(root, f"spc{count}.yaml")
            with open(spc_n, "w", encoding="utf-8") as f:
                f.write(spc_text(os.environ["AZURE_TENANT_ID"], f"cold{count}", fifty[:count]))
            cold = []
            for i in range(7):
                t0 = time.perf_counter()
                a = Agent(coffer, root, f"cold{count}-{i}", [
                    {"name": "cold", "secretProviderClass": spc_n,
                     "target": os.path.join(root, "targets", f"c{count}-{i}"),
                     "nodePublishSecretRef": sp}], "1h")
                cold.append((time.perf_counter() - t0) * 1000)
                agents.append(a)
                a.stop()
            print(f"cold mount of {count} secret(s), from starting `coffer agent` to agent ready: "
                  f"p50 {percentile(cold, 50):.0f} ms, max {max(cold):.0f} ms over {len(cold)} "
                  "starts")

        t0 = time.perf_counter()
        agent = Agent(coffer, root, "push", entries, "1h")
        agents.append(agent)
        print(f"agent start to {mounts} mounts in place: {(time.perf_counter() - t0) * 1000:.0f}"
              " ms (process start, token, reads, writes)")
        pid = agent.proc.pid
        print(f"memory with {mounts} mounts after the initial mount: VmRSS "
              f"{proc_kib(pid, 'VmRSS') / 1024:.1f} MiB")
        push(agent, vault, targets, names, sets)
        print(f"memory with {mounts} mounts after {sets} pushed rotations: VmRSS "
              f"{proc_kib(pid, 'VmRSS') / 1024:.1f} MiB (anonymous "
              f"{proc_kib(pid, 'RssAnon') / 1024:.1f}, file-backed "
              f"{proc_kib(pid, 'RssFile') / 1024:.1f}), peak VmHWM "
              f"{proc_kib(pid, 'VmHWM') / 1024:.1f} MiB, threads {proc_kib(pid, 'Threads')} "
              "(target < 20 MB; the upstream driver requests 100 MiB per node)")
        agent.stop()

        agent = Agent(coffer, root, "poll", entries, "5s", ["--no-watch"])
        agents.append(agent)
        reads_per_cycle(agent, mounts, secrets)
        agent.stop()
    finally:
        for a in agents:
            a.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
