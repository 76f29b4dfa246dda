"""Starts a real `coffer server --dev` process for the SDK conformance tests and stops it again.

The binary comes from $COFFER_BIN (CTest sets it to the built target); without it the default
build tree location ../../build/coffer is used.  Everything the server writes goes into a fresh
temporary directory that stop() deletes.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def stop_process(proc):
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Returns (returncode, killed_hard)."""
    killed_hard = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            killed_hard = True
            proc.kill()
            proc.wait()
    return proc.returncode, killed_hard


def coffer_binary():
    path = os.environ.get("COFFER_BIN") or os.path.join(HERE, "..", "..", "build", "coffer")
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise RuntimeError(f"coffer binary not found at {path} (set COFFER_BIN)")
    return path


def free_port():
    """A TCP port free on both loopback addresses the server binds (127.0.0.1 and ::1)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("could not find a TCP port free on both 127.0.0.1 and ::1")


def parse_dev_env(text):
    """Parses `export KEY=value` lines."""
    env = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*$", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def _tail(path, limit=4000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    return text if len(text) <= limit else "..." + text[-limit:]


def _healthz(port, ca_path):
    try:
        ctx = ssl.create_default_context(cafile=ca_path)
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=2)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return 0


class CofferServer:
    """A running `coffer server --dev`; use start() then stop()/cleanup()."""

    REQUIRED = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                "COFFER_VAULT_URL")

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="coffer-sdk-py-")
        self.data_dir = os.path.join(self.root, "data")
        os.mkdir(self.data_dir)
        self.stdout_path = os.path.join(self.root, "server.stdout.log")
        self.stderr_path = os.path.join(self.root, "server.stderr.log")
        self.ca_path = os.path.join(self.data_dir, "tls", "ca.pem")
        self.dev_env_path = os.path.join(self.data_dir, "dev.env")
        self.port = None
        self.proc = None
        self.env = {}
        self.stop_result = None
        self._logs = None

    @property
    def vault_url(self):
        return self.env["COFFER_VAULT_URL"]

    @property
    def authority_host(self):
        return self.env["AZURE_AUTHORITY_HOST"]

    def start(self):
        try:
            self._start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start(self):
        binary = coffer_binary()
        self.port = free_port()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [binary, "server", "--dev", "--data-dir", self.data_dir, "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + READY_TIMEOUT_S
        status = 0
        while True:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"coffer exited with {code} before becoming ready\n"
                                   f"--- stderr ---\n{_tail(self.stderr_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"coffer not ready after {READY_TIMEOUT_S} s (ca.pem exists: {os.path.exists(self.ca_path)}, "
                    f"dev.env exists: {os.path.exists(self.dev_env_path)}, last /healthz status: {status})\n"
                    f"--- stderr ---\n{_tail(self.stderr_path)}")
            if os.path.exists(self.ca_path) and os.path.exists(self.dev_env_path):
                status = _healthz(self.port, self.ca_path)
                if status == 200:
                    break
            time.sleep(0.1)
        with open(self.dev_env_path, encoding="utf-8") as f:
            text = f.read()
        self.env = parse_dev_env(text)
        missing = [k for k in self.REQUIRED if not self.env.get(k)]
        if missing:
            raise RuntimeError(f"dev.env lacks {missing}; contents:\n{text}")

    def stop(self):
        """SIGTERM, wait up to 10 s, then SIGKILL. Returns (returncode, killed_hard). Idempotent."""
        if self.stop_result is None and self.proc is not None:
            self.stop_result = stop_process(self.proc)
        return self.stop_result

    def logs(self):
        """Everything the server wrote to stdout and stderr."""
        if self._logs is not None:
            return self._logs
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def cleanup(self):
        self.stop()
        if os.path.isdir(self.root):
            self._logs = self.logs()
            shutil.rmtree(self.root, ignore_errors=True)
