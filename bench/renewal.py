#!/usr/bin/env python3
"""A certificate renewal from the server's scheduler to the new file on a mounted node, for
bench/run.sh step 17 (docs/benchmarks.md).

Starts its own dev server with `--expiry-scan-interval 1`, an issuer `corp` of the Coffer
provider for localhost, and `coffer agent` with one standalone mount (nodePublishSecretRef: the
dev service principal; a poll interval of an hour, so only the watch stream explains a change)
of the certificate's secret (PEM) on a tmpfs (/dev/shm). Each of R rounds (default 20):

  1. import a certificate made with openssl, valid for two days, and wait until the mount's
     file holds it;
  2. PATCH the policy: issuer `corp` and an AutoRenew action 20 days before expiry, which makes
     the version due at once; the scheduler's next pass (within a second) renews it, signed by
     the installation's CA;
  3. measure from the renewal's SecretNewVersionCreated event time (stamped in milliseconds by
     the store when the new version commits; read from a watch stream the bench holds open) to
     a reader thread's first read of the file holding the new certificate. The time from the
     PATCH's response to the file, which adds the wait for the scheduler's pass, is reported
     beside it.

Usage: python3 bench/renewal.py COFFER_BIN [ROUNDS=20]
Loopback only; stops the processes it started by PID and removes its directory.
"""
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_bench import Agent, percentile, spc_text  # noqa: E402

VAULT_HOST = "dev.vault.localhost"
NAME = "renewal-bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vault:
    """Key Vault calls over one keep-alive TLS connection, as the dev service principal."""

    def __init__(self, port, ca, token):
        self.conn = http.client.HTTPSConnection(VAULT_HOST, port,
                                                context=ssl.create_default_context(cafile=ca))
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(self, method, path, body=None, want=200):
        sep = "&" if "?" in path else "?"
        self.conn.request(method, f"{path}{sep}api-version=7.5",
                          json.dumps(body) if body is not None else None, self.headers)
        r = self.conn.getresponse()
        text = r.read()
        if r.status != want:
            sys.exit(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None


class Events:
    """A watch stream of the certificate's secret: SecretNewVersionCreated event times (Unix
    seconds, from the event's `eventTime`) by version."""

    def __init__(self, port, ca, token):
        ctx = ssl.create_default_context(cafile=ca)
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = ctx.wrap_socket(raw, server_hostname=VAULT_HOST)
        self.sock.sendall((f"GET /coffer/watch?names={NAME}&types=Microsoft.KeyVault.SecretNewVersionCreated "
                           f"HTTP/1.1\r\nHost: {VAULT_HOST}:{port}\r\nAuthorization: Bearer "
                           f"{token}\r\n\r\n").encode())
        self.times = {}
        self.ready = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()
        if not self.ready.wait(30):
            sys.exit("the watch stream did not become ready")

    def read(self):
        buf = ""
        self.sock.settimeout(None)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk.decode(errors="replace")
            if "coffer.ready" in buf:
                self.ready.set()
            while "\ndata: {" in buf:
                start = buf.index("\ndata: {") + 7
                end = buf.find("\n", start)
                if end < 0:
                    break
                line, buf = buf[start:end], buf[end:]
                if '"eventType"' not in line:
                    continue
                event = json.loads(line)
                stamp = datetime.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
                with self.lock:
                    self.times[event["data"]["Version"]] = stamp.timestamp()

    def time_of(self, version):
        with self.lock:
            return self.times.get(version)


class FileWatch:
    """Re-reads the mounted file in a loop and remembers when each content was first seen."""

    def __init__(self, path):
        self.path = path
        self.seen = {}
        self.lock = threading.Lock()
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                with open(self.path, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                text = ""
            now = time.time()
            with self.lock:
                self.seen.setdefault(text, now)
            time.sleep(0.0005)

    def first_seen(self, predicate):
        with self.lock:
            for text, t in self.seen.items():
                if predicate(text):
                    return t
        return None


def openssl_certificate(directory, round_number):
    key = os.path.join(directory, f"r{round_number}.key")
    crt = os.path.join(directory, f"r{round_number}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-addext", "keyUsage=critical,digitalSignature",
                    "-addext", "extendedKeyUsage=serverAuth"],
                   check=True, capture_output=True, timeout=30)
    with open(key, encoding="utf-8") as k, open(crt, encoding="utf-8") as c:
        key_pem, crt_pem = k.read(), c.read()
    return key_pem + crt_pem, crt_pem


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.001)
    sys.exit(f"timed out waiting for {what}")


def main():
    coffer = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    root = tempfile.mkdtemp(prefix="coffer-renewal-bench-", dir="/dev/shm")
    os.chmod(root, 0o700)
    server = agent = None
    try:
        port = free_port()
        data = os.path.join(root, "data")
        with open(os.path.join(root, "server.err"), "wb") as err:
            server = subprocess.Popen([coffer, "server", "--dev", "--data-dir", data, "--port",
                                       str(port), "--expiry-scan-interval", "1",
                                       "--log-level", "warning"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=err)
        env_file = os.path.join(data, "dev.env")
        wait_for(lambda: os.path.exists(env_file) and "AZURE_CLIENT_SECRET" in
                 open(env_file, encoding="utf-8").read(), 60, "the dev server")
        env = dict(line.strip().removeprefix("export ").split("=", 1)
                   for line in open(env_file, encoding="utf-8")
                   if "=" in line and not line.startswith("#"))
        os.environ.update(env)
        ca = env["REQUESTS_CA_BUNDLE"]
        ctx = ssl.create_default_context(cafile=ca)
        token_conn = http.client.HTTPSConnection("localhost", port, context=ctx)
        form = (f"grant_type=client_credentials&client_id={env['AZURE_CLIENT_ID']}"
                f"&client_secret={env['AZURE_CLIENT_SECRET']}"
                f"&scope=https://vault.localhost:{port}/.default")
        token_conn.request("POST", f"/{env['AZURE_TENANT_ID']}/oauth2/v2.0/token", form,
                           {"Content-Type": "application/x-www-form-urlencoded"})
        token = json.loads(token_conn.getresponse().read())["access_token"]
        os.environ["TOKEN"] = token
        vault = Vault(port, ca, token)
        vault.call("PUT", "/certificates/issuers/corp",
                   {"provider": "Coffer", "coffer": {"allowed_dns_suffixes": ["localhost"]}})

        first, _ = openssl_certificate(root, 0)
        vault.call("POST", f"/certificates/{NAME}/import",
                   {"value": first, "policy": {"secret_props": {"contentType":
                                                                "application/x-pem-file"}}})
        spc = os.path.join(root, "spc.yaml")
        with open(spc, "w", encoding="utf-8") as f:
            f.write(spc_text(env["AZURE_TENANT_ID"], "renewal", [NAME]))
        sp = os.path.join(root, "sp.json")
        with open(sp, "w", encoding="utf-8") as f:
            json.dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sp"},
                       "stringData": {"clientid": env["AZURE_CLIENT_ID"],
                                      "clientsecret": env["AZURE_CLIENT_SECRET"]}}, f)
        os.chmod(sp, 0o600)
        target = os.path.join(root, "target")
        agent = Agent(coffer, root, "agent",
                      [{"name": "tls", "secretProviderClass": spc, "target": target,
                        "nodePublishSecretRef": sp}], "1h")
        events = Events(port, ca, token)
        files = FileWatch(os.path.join(target, NAME))

        from_event, from_patch = [], []
        for r in range(1, rounds + 1):
            pem, crt = openssl_certificate(root, r)
            vault.call("POST", f"/certificates/{NAME}/import",
                       {"value": pem, "policy": {"secret_props": {"contentType":
                                                                  "application/x-pem-file"}}})
            leaf = crt.strip()
            wait_for(lambda: files.first_seen(lambda text: leaf in text), 30,
                     f"round {r}: the imported certificate on the mount")
            before = vault.call("GET", f"/certificates/{NAME}/")["id"].rsplit("/", 1)[1]
            vault.call("PATCH", f"/certificates/{NAME}/policy",
                       {"issuer": {"name": "corp"},
                        "lifetime_actions": [{"trigger": {"days_before_expiry": 20},
                                              "action": {"action_type": "AutoRenew"}}]})
            patched = time.time()

            def renewed():
                latest = vault.call("GET", f"/certificates/{NAME}/")
                version = latest["id"].rsplit("/", 1)[1]
                return latest if version != before else None
            latest = wait_for(renewed, 30, f"round {r}: the renewal")
            version = latest["id"].rsplit("/", 1)[1]
            secret = vault.call("GET", f"/secrets/{NAME}/{version}")["value"]
            seen = wait_for(lambda: files.first_seen(lambda text: text == secret), 30,
                            f"round {r}: the renewal on the mount")
            stamped = wait_for(lambda: events.time_of(version), 30,
                               f"round {r}: the renewal's event")
            from_event.append(max(0.0, seen - stamped) * 1000)
            from_patch.append((seen - patched) * 1000)
        files.stop = True
        print("certificate renewal (scheduler) -> new file on the mount over %d renewals: "
              "p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 < 1000 ms)"
              % (rounds, percentile(from_event, 50), percentile(from_event, 99), max(from_event)))
        print("  from the PATCH that makes AutoRenew due (adds the wait for the scheduler's "
              "1 s pass): p50 %.1f ms, p99 %.1f ms" % (percentile(from_patch, 50),
                                                        percentile(from_patch, 99)))
    finally:
        if agent:
            agent.stop()
        if server and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
