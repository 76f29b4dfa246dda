#!/usr/bin/env python3
"""Watch-stream benchmarks for bench/run.sh (docs/benchmarks.md).

  watch.py latency N     N sequential SETs on one connection while one watch stream is open:
                         the time from each SET's response to its event arriving on the stream
                         (p50, p99, max)
  watch.py idle N PID    opens N watch streams, each over its own TLS connection, waits until
                         every one is live, and reports the server's (PID) resident memory
                         before and after; then one SET must reach every stream

Uses the dev credentials and vault of dev.env ($TOKEN: a token for the vault resource) and
loopback only. Standard library only.
"""
import http.client
import json
import os
import resource
import selectors
import socket
import ssl
import sys
import threading
import time
import urllib.parse

VAULT_HOST = "dev.vault.localhost"


def context():
    return ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])


def port():
    return urllib.parse.urlparse(os.environ["AZURE_AUTHORITY_HOST"]).port


def open_stream(ctx, query=""):
    raw = socket.create_connection(("127.0.0.1", port()), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname=VAULT_HOST)
    s.sendall((f"GET /coffer/watch{query} HTTP/1.1\r\nHost: {VAULT_HOST}:{port()}\r\n"
               f"Authorization: Bearer {os.environ['TOKEN']}\r\n\r\n").encode())
    return s


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def latency(n):
    ctx = context()
    stream = open_stream(ctx, "?names=watch-latency")
    arrived = {}
    ready = threading.Event()
    buf = b""

    def reader():
        nonlocal buf
        stream.settimeout(None)
        while True:
            try:
                chunk = stream.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            buf += chunk
            if b"coffer.ready" in buf:
                ready.set()
            while b'"Version":"' in buf:
                i = buf.index(b'"Version":"') + 11
                j = buf.index(b'"', i)
                arrived.setdefault(buf[i:j].decode(), now)
                buf = buf[j:]

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(10):
        sys.exit("the watch stream did not become ready")
    conn = http.client.HTTPSConnection(VAULT_HOST, port(), context=ctx)
    headers = {"Authorization": "Bearer " + os.environ["TOKEN"],
               "Content-Type": "application/json"}
    acked = {}
    sent = {}
    for i in range(n):
        t0 = time.perf_counter()
        conn.request("PUT", "/secrets/watch-latency?api-version=7.5",
                     json.dumps({"value": "v%d" % i}), headers)
        r = conn.getresponse()
        body = r.read()
        t = time.perf_counter()
        if r.status != 200:
            sys.exit("SET failed: %d %s" % (r.status, body[:200]))
        version = json.loads(body)["id"].rsplit("/", 1)[1]
        acked[version] = t
        sent[version] = t0
    deadline = time.time() + 10
    while len([v for v in acked if v in arrived]) < n and time.time() < deadline:
        time.sleep(0.01)
    missing = [v for v in acked if v not in arrived]
    # An event may arrive before the client has read the SET's response; that
    # counts as zero.
    lat = [max(0.0, arrived[v] - acked[v]) * 1000 for v in acked if v in arrived]
    # And from the moment the SET was sent, which includes the write itself.
    whole = [(arrived[v] - sent[v]) * 1000 for v in acked if v in arrived]
    print("SET -> watch event over %d SETs: p50 %.2f ms, p99 %.2f ms, max %.2f ms, missing %d "
          "(target p99 < 50 ms)" % (n, percentile(lat, 50), percentile(lat, 99), max(lat),
                                    len(missing)))
    print("  from the SET being sent to its event: p50 %.2f ms, p99 %.2f ms"
          % (percentile(whole, 50), percentile(whole, 99)))
    stream.close()


def idle(n, pid):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    ctx = context()
    # Warm up: let the server's allocator and thread stacks settle before the baseline.
    warm = [open_stream(ctx) for _ in range(20)]
    time.sleep(1)
    for s in warm:
        s.close()
    time.sleep(2)
    before = rss_kib(pid)
    sel = selectors.DefaultSelector()
    bufs = {}
    for i in range(n):
        s = open_stream(ctx)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""

    def drain(until, want):
        done = set()
        while len(done) < len(bufs) and time.time() < until:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        bufs[s] += chunk
                except (ssl.SSLWantReadError, BlockingIOError):
                    pass
                if want in bufs[s]:
                    done.add(s)
        return len(done)

    live = drain(time.time() + 60, b"coffer.ready")
    time.sleep(2)
    after = rss_kib(pid)
    for s in bufs:
        bufs[s] = b""
    conn = http.client.HTTPSConnection(VAULT_HOST, port(), context=ctx)
    conn.request("PUT", "/secrets/watch-idle?api-version=7.5", json.dumps({"value": "x"}),
                 {"Authorization": "Bearer " + os.environ["TOKEN"],
                  "Content-Type": "application/json"})
    status = conn.getresponse().status
    reached = drain(time.time() + 30, b"watch-idle")
    print("%d idle watch streams (%d live): server RSS %.1f MiB -> %.1f MiB, +%.1f MiB "
          "(%.1f KiB per stream; target < 100 MB in all); one SET (%d) reached %d of them"
          % (n, live, before / 1024, after / 1024, (after - before) / 1024,
             (after - before) / max(1, n), status, reached))
    for s in bufs:
        s.close()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "latency":
        latency(int(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "idle":
        idle(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)
