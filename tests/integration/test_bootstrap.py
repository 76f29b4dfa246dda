"""Production bootstrap and `coffer admin credentials rotate` (directory.md, deployment.md).

Without --dev, the start that creates the administrator writes its credentials once (mode 0600)
or prints them once; no later start writes or prints them, even when the file is gone. Two
servers starting on one store make one administrator. A rotation, which only an administrator
may ask for, revokes the secret it replaces; concurrent rotations leave exactly one secret valid.
"""

import concurrent.futures
import glob
import http.client
import json
import os
import shutil
import sqlite3
import ssl
import stat
import subprocess
import tempfile
import unittest
import urllib.parse

from harness import (coffer_binary, free_port, parse_env_file, read_text, stop_process,
                     wait_until)

READY_S = 60.0


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COFFER_", "AZURE_")) and k not in ("REQUESTS_CA_BUNDLE",
                                                                   "NODE_EXTRA_CA_CERTS")}
    env.update(extra or {})
    return env


class ProductionServer:
    """A `coffer server` without --dev on a data directory of its own (or a shared one)."""

    def __init__(self, root, data_dir, args=()):
        self.root = root
        self.data_dir = data_dir
        self.args = list(args)
        self.port = free_port()
        self.proc = None
        self.starts = 0
        self.outputs = []

    @property
    def ca_path(self):
        return os.path.join(self.data_dir, "tls", "ca.pem")

    def launch(self, env=None):
        self.starts += 1
        base = os.path.join(self.root, f"server-{self.port}-{self.starts}")
        self.outputs.append(base)
        with open(base + ".stdout", "wb") as out, open(base + ".stderr", "wb") as err:
            self.proc = subprocess.Popen(
                [coffer_binary(), "server", "--data-dir", self.data_dir, "--port", str(self.port)]
                + self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=clean_env(env))
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"coffer exited with {self.proc.returncode}:\n{self.stderr()}")
        if not os.path.exists(self.ca_path):
            return False
        try:
            status, _ = self.request("GET", "/healthz")
            return status == 200
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False

    def wait_ready(self):
        if not wait_until(self.healthy, timeout=READY_S):
            raise RuntimeError(f"coffer not ready after {READY_S} s:\n{self.stderr()}")
        return self

    def start(self, env=None):
        return self.launch(env).wait_ready()

    def stop(self):
        if self.proc is not None:
            self.assert_stopped(stop_process(self.proc))

    @staticmethod
    def assert_stopped(code):
        if code != 0:
            raise RuntimeError(f"coffer stopped with {code}")

    def stdout(self, start=-1):
        return read_text(self.outputs[start] + ".stdout")

    def stderr(self, start=-1):
        return read_text(self.outputs[start] + ".stderr")

    def logs(self):
        return "".join(read_text(b + ext) for b in self.outputs for ext in (".stdout", ".stderr"))

    def request(self, method, path, body=None, headers=None):
        # The CA file may have been made by another server sharing the data directory; these
        # tests are about credentials, not certificates.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("localhost", self.port, context=ctx, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def token_response(self, tenant, client_id, secret):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": secret, "scope": f"https://localhost:{self.port}/.default"})
        status, body = self.request("POST", f"/{tenant}/oauth2/v2.0/token", form,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        return status, json.loads(body)

    def token(self, creds):
        status, body = self.token_response(creds["AZURE_TENANT_ID"], creds["AZURE_CLIENT_ID"],
                                           creds["AZURE_CLIENT_SECRET"])
        if status != 200:
            raise AssertionError(f"token request refused: {status} {body}")
        return body["access_token"]

    def rotate(self, token):
        status, body = self.request("POST", "/coffer/v1/administrator/credentials/rotate", b"",
                                    {"Authorization": "Bearer " + token})
        return status, json.loads(body) if body else None


class BootstrapTestCase(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="coffer-it-bootstrap-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.data_dir = os.path.join(self.root, "data")
        self.servers = []
        self.addCleanup(self.stop_all)

    def stop_all(self):
        for s in self.servers:
            if s.proc is not None and s.proc.poll() is None:
                stop_process(s.proc)

    def server(self, *args, data_dir=None):
        s = ProductionServer(self.root, data_dir or self.data_dir, args)
        self.servers.append(s)
        return s

    def works(self, srv, creds, secret=None):
        status, body = srv.token_response(creds["AZURE_TENANT_ID"], creds["AZURE_CLIENT_ID"],
                                          secret or creds["AZURE_CLIENT_SECRET"])
        self.assertIn(status, (200, 401), body)
        return status == 200

    def assert_nowhere_but(self, secret, srv, allowed=()):
        """The secret is in no log of `srv` and no file of its data directory but `allowed`."""
        self.assertNotIn(secret, srv.logs())
        for path in glob.glob(os.path.join(srv.data_dir, "**"), recursive=True):
            if os.path.isfile(path) and path not in allowed:
                with open(path, "rb") as f:
                    self.assertNotIn(secret.encode(), f.read(), path)


class FirstStartTests(BootstrapTestCase):

    def test_the_first_start_writes_the_file_once_and_no_later_start_again(self):
        creds_path = os.path.join(self.root, "secrets", "admin.env")
        os.makedirs(os.path.dirname(creds_path), mode=0o700)
        config = os.path.join(self.root, "server.yaml")
        with open(config, "w") as f:
            f.write(f"admin-credentials-file: {creds_path}\n")
        srv = self.server("--config", config).start()
        mode = stat.S_IMODE(os.stat(creds_path).st_mode)
        self.assertEqual(mode, 0o600, oct(mode))
        creds = parse_env_file(read_text(creds_path))
        secret = creds["AZURE_CLIENT_SECRET"]
        self.assertTrue(self.works(srv, creds))
        self.assertIn(f"written once, mode 0600): {creds_path}", srv.stdout())
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "admin.env")))
        srv.stop()

        # A restart with the file in place leaves it alone; with the file gone, it is not
        # written again, and the secret it held still works.
        before = os.stat(creds_path)
        srv.start()
        after = os.stat(creds_path)
        self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))
        srv.stop()
        os.remove(creds_path)
        srv.start()
        self.assertFalse(os.path.exists(creds_path), "the credentials were written again")
        self.assertIn("credentials were delivered at the first start", srv.stdout())
        self.assertTrue(self.works(srv, creds))
        self.assert_nowhere_but(secret, srv)

    def test_printed_once_when_asked_to_print(self):
        srv = self.server().start(env={"COFFER_ADMIN_CREDENTIALS_FILE": "-"})
        printed = parse_env_file(srv.stdout())
        secret = printed["AZURE_CLIENT_SECRET"]
        self.assertTrue(self.works(srv, printed))
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "admin.env")))
        self.assertNotIn(secret, srv.stderr(), "the secret reached the log")
        srv.stop()
        srv.start(env={"COFFER_ADMIN_CREDENTIALS_FILE": "-"})
        self.assertNotIn("AZURE_CLIENT_SECRET", srv.stdout())
        self.assertNotIn(secret, srv.stdout(-1) + srv.stderr(-1))
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "admin.env")))
        # Only the first start's standard output, which was asked for it, holds the secret.
        self.assertEqual(sum(secret in srv.stdout(i) for i in range(srv.starts)), 1)

    def test_a_file_that_cannot_be_written_leaves_no_administrator_behind(self):
        blocked = os.path.join(self.root, "not-a-directory")
        with open(blocked, "w") as f:
            f.write("x")
        srv = self.server("--admin-credentials-file", os.path.join(blocked, "admin.env"))
        srv.launch()
        self.assertNotEqual(srv.proc.wait(timeout=READY_S), 0)
        self.assertIn("cannot write the administrator's credentials", srv.stderr())
        # The next start, with a path that works, creates the administrator and delivers it.
        srv.args = []
        srv.start()
        creds = parse_env_file(read_text(os.path.join(self.data_dir, "admin.env")))
        self.assertTrue(self.works(srv, creds))
        db = sqlite3.connect(os.path.join(self.data_dir, "coffer.db"))
        try:
            names = [r[0] for r in db.execute("SELECT display_name FROM principals")]
        finally:
            db.close()
        self.assertEqual(names, ["coffer-admin"])

    def test_two_servers_starting_on_one_store_make_one_administrator(self):
        # The same data directory, hence one database; the audit log, one writer per directory,
        # is off, as it is per server when servers share a database.
        key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
        a = self.server("--audit", "off")
        b = self.server("--audit", "off")
        for s in (a, b):
            s.launch(env={"COFFER_MASTER_KEY": key})
        for s in (a, b):
            s.wait_ready()
        creds = parse_env_file(read_text(os.path.join(self.data_dir, "admin.env")))
        db = sqlite3.connect(os.path.join(self.data_dir, "coffer.db"))
        try:
            principals = list(db.execute("SELECT app_id FROM principals"))
            admins = json.loads(db.execute(
                "SELECT value FROM meta WHERE key = 'admin_object_ids'").fetchone()[0])
        finally:
            db.close()
        self.assertEqual(principals, [(creds["AZURE_CLIENT_ID"],)])
        self.assertEqual(len(admins), 1)
        delivered = [s for s in (a, b) if "written once" in s.stdout()]
        self.assertEqual(len(delivered), 1, [a.stdout(), b.stdout()])
        for s in (a, b):
            self.assertTrue(self.works(s, creds), s.port)


class RotationTests(BootstrapTestCase):

    def setUp(self):
        super().setUp()
        self.srv = self.server().start()
        self.creds = parse_env_file(read_text(os.path.join(self.data_dir, "admin.env")))

    def cli(self, *args, creds=None, expect=0):
        env = dict(creds or self.creds)
        env["AZURE_AUTHORITY_HOST"] = f"https://localhost:{self.srv.port}"
        env["COFFER_CA_FILE"] = self.srv.ca_path
        p = subprocess.run([coffer_binary(), *args], capture_output=True, timeout=60,
                           env=clean_env(env), stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, expect, p.stderr)
        return p

    def test_a_rotation_revokes_the_old_secret_and_writes_the_new_once(self):
        path = os.path.join(self.root, "rotated.env")
        p = self.cli("admin", "credentials", "rotate", "--credentials-file", path)
        shown = json.loads(p.stdout)
        self.assertNotIn("password", shown)
        self.assertEqual(shown["credentialsFile"], path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        new = parse_env_file(read_text(path))
        self.assertEqual(new["AZURE_CLIENT_ID"], self.creds["AZURE_CLIENT_ID"])
        self.assertEqual(new["AZURE_AUTHORITY_HOST"], f"https://localhost:{self.srv.port}")
        self.assertTrue(self.works(self.srv, new))
        status, body = self.srv.token_response(self.creds["AZURE_TENANT_ID"],
                                               self.creds["AZURE_CLIENT_ID"],
                                               self.creds["AZURE_CLIENT_SECRET"])
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"], "invalid_client")
        self.assertIn("AADSTS7000215", body["error_description"])
        # Printed when no file is given; the secret never reaches the server's logs.
        printed = json.loads(self.cli("admin", "credentials", "rotate", creds=new).stdout)
        self.assertEqual(printed["appId"], new["AZURE_CLIENT_ID"])
        self.assertFalse(self.works(self.srv, new))
        self.assertTrue(self.works(self.srv, new, printed["password"]))
        for secret in (new["AZURE_CLIENT_SECRET"], printed["password"]):
            self.assert_nowhere_but(secret, self.srv,
                                    allowed=(os.path.join(self.data_dir, "admin.env"),))

    def test_only_the_administrator_may_rotate(self):
        other = json.loads(self.cli("ad", "sp", "create-for-rbac", "--name", "not-admin").stdout)
        other_creds = dict(self.creds, AZURE_CLIENT_ID=other["appId"],
                           AZURE_CLIENT_SECRET=other["password"])
        p = self.cli("admin", "credentials", "rotate", creds=other_creds, expect=1)
        self.assertIn("Forbidden", p.stderr.decode())
        status, _ = self.srv.rotate(self.srv.token(other_creds))
        self.assertEqual(status, 403)
        status, _ = self.srv.rotate("not-a-token")
        self.assertEqual(status, 401)
        self.assertTrue(self.works(self.srv, self.creds), "a refused rotation changed nothing")

    def test_an_operator_with_the_stopped_servers_data_directory_recovers_lost_credentials(self):
        os.remove(os.path.join(self.data_dir, "admin.env"))  # lost
        no_identity = {"AZURE_AUTHORITY_HOST": "", "AZURE_CLIENT_ID": "", "AZURE_CLIENT_SECRET": ""}
        p = self.cli("admin", "credentials", "rotate", "--data-dir", self.data_dir,
                     creds=no_identity, expect=1)
        self.assertIn("running", p.stderr.decode(), "refused while the server runs")
        self.srv.stop()
        path = os.path.join(self.root, "recovered.env")
        p = self.cli("admin", "credentials", "rotate", "--data-dir", self.data_dir,
                     "--credentials-file", path, creds=no_identity)
        self.assertEqual(json.loads(p.stdout)["credentialsFile"], path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        recovered = parse_env_file(read_text(path))
        self.assertEqual(recovered["AZURE_CLIENT_ID"], self.creds["AZURE_CLIENT_ID"])
        self.assertEqual(recovered["AZURE_TENANT_ID"], self.creds["AZURE_TENANT_ID"])
        self.assertEqual(recovered["COFFER_TENANT_ID"], self.creds["COFFER_TENANT_ID"])
        self.srv.start()
        self.assertTrue(self.works(self.srv, recovered))
        self.assertFalse(self.works(self.srv, self.creds), "the lost secret still works")
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "admin.env")))
        self.assert_nowhere_but(recovered["AZURE_CLIENT_SECRET"], self.srv, allowed=(path,))
        p = self.cli("admin", "credentials", "rotate", "--data-dir",
                     os.path.join(self.root, "nothing"), creds=no_identity, expect=1)
        self.assertIn("no Coffer installation", p.stderr.decode())

    def test_concurrent_rotations_leave_exactly_the_last_secret_valid(self):
        # One token, got before any rotation, for every caller: all of them reach the rotation
        # (a token outlives the secret it was got with, as Entra's do).
        token = self.srv.token(self.creds)
        callers = 6
        with concurrent.futures.ThreadPoolExecutor(callers) as pool:
            results = list(pool.map(lambda _: self.srv.rotate(token), range(callers)))
        answered = [body for status, body in results if status == 200]
        for status, body in results:
            self.assertIn(status, (200, 409), body)
            if status == 409:
                self.assertEqual(body["error"]["code"], "Conflict")
                self.assertNotIn("password", json.dumps(body))
        self.assertTrue(answered)
        last = max(answered, key=lambda b: b["generation"])
        self.assertEqual(len({b["generation"] for b in answered}), len(answered))
        for body in answered:
            self.assertEqual(self.works(self.srv, self.creds, body["password"]), body is last,
                             body["generation"])
        self.assertFalse(self.works(self.srv, self.creds))
        valid = dict(self.creds, AZURE_CLIENT_SECRET=last["password"])
        shown = json.loads(self.cli("ad", "sp", "show", "--id", self.creds["AZURE_CLIENT_ID"],
                                    creds=valid).stdout)
        self.assertEqual([c["keyId"] for c in shown["passwordCredentials"]], [last["keyId"]])


if __name__ == "__main__":
    unittest.main()
