"""`coffer server --config FILE`: every flag has a key; COFFER_* variables and the command line
override the file; bad files are refused naming the key; --print-config shows the result."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import CofferServer, coffer_binary


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    env.update(extra or {})
    return env


class ServerConfigTests(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="coffer-it-config-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def write(self, text, name="server.yaml"):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_server(self, *args, env=None):
        return subprocess.run([coffer_binary(), "server", *args], capture_output=True, timeout=60,
                              env=clean_env(env), stdin=subprocess.DEVNULL)

    def effective(self, *args, env=None):
        """--print-config's output as a dict (its values are JSON, which is YAML)."""
        p = self.run_server(*args, "--print-config", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = {}
        for line in p.stdout.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            key, _, value = line.partition(": ")
            out[key] = json.loads(value)
        return out, p.stdout.decode()

    def test_the_command_line_then_the_environment_then_the_file(self):
        path = self.write("dns-suffix: vault.file.test\n"
                          "authority-host: file.test:9443\n"
                          "listen: [127.0.0.1, '::1', 10.0.0.1]\n"
                          "idle-timeout: 30\n"
                          "audit: 'off'\n"
                          "webhook-allow-private: true\n")
        cfg, _ = self.effective("--config", path)
        self.assertEqual(cfg["dns-suffix"], "vault.file.test")
        self.assertEqual(cfg["authority-host"], "file.test:9443")
        self.assertEqual(cfg["listen"], ["127.0.0.1", "::1", "10.0.0.1"])
        self.assertEqual(cfg["idle-timeout"], "30")
        self.assertEqual(cfg["audit"], "off")
        self.assertEqual(cfg["webhook-allow-private"], "true")
        self.assertEqual(cfg["port"], "8443", "a default the file does not set")
        cfg, _ = self.effective("--config", path, env={"COFFER_DNS_SUFFIX": "vault.env.test",
                                                       "COFFER_LISTEN": "127.0.0.2, 127.0.0.3"})
        self.assertEqual(cfg["dns-suffix"], "vault.env.test")
        self.assertEqual(cfg["listen"], ["127.0.0.2", "127.0.0.3"])
        self.assertEqual(cfg["authority-host"], "file.test:9443")
        cfg, _ = self.effective("--config", path, "--dns-suffix", "vault.cli.test",
                                env={"COFFER_DNS_SUFFIX": "vault.env.test"})
        self.assertEqual(cfg["dns-suffix"], "vault.cli.test")
        # Without a file, the environment alone.
        cfg, _ = self.effective(env={"COFFER_IDLE_TIMEOUT": "45", "COFFER_DEV": "true"})
        self.assertEqual(cfg["idle-timeout"], "45")
        self.assertEqual(cfg["dev"], "true")

    def test_the_printed_configuration_is_a_configuration(self):
        path = self.write("dns-suffix: vault.file.test\nlisten: [127.0.0.1]\nmax-connections: 99\n")
        _, printed = self.effective("--config", path)
        again = self.write(printed, "printed.yaml")
        _, reprinted = self.effective("--config", again)
        self.assertEqual(reprinted, printed)

    def test_the_master_key_is_never_printed(self):
        key = base64.b64encode(os.urandom(32)).decode()
        _, printed = self.effective(env={"COFFER_MASTER_KEY": key})
        self.assertNotIn(key, printed)
        self.assertIn("from COFFER_MASTER_KEY (redacted)", printed)

    def test_bad_files_and_values_are_refused_naming_the_key(self):
        cases = (
            ("unknown key", "dns-suffix: vault.x.test\nno-such-flag: 1\n",
             ["line 2", "unknown key", "no-such-flag"]),
            ("a map value", "dns-suffix:\n  a: b\n", ["dns-suffix", "must be a scalar"]),
            ("a list for one value", "port: [1, 2]\n", ["port", "must be a scalar"]),
            ("not a map", "- port\n- 8443\n", ["one YAML map"]),
            ("two documents", "port: 1\n---\nport: 2\n", ["one YAML map"]),
            ("malformed", "port: [1, 2\n", ["server.yaml"]),
            ("a bad port", "port: seventy\n", ["--port"]),
            ("a port out of range", "port: 70000\n", ["--port"]),
            ("a bad name", "authority-host: 10.0.0.1\n", ["--authority-host"]),
            ("a bad choice", "audit: maybe\n", ["--audit"]),
            ("the meta keys", "config: other.yaml\n", ["unknown key", "config"]),
        )
        for label, text, needles in cases:
            with self.subTest(label):
                path = self.write(text)
                p = self.run_server("--config", path, "--print-config")
                self.assertEqual(p.returncode, 2, p)
                for needle in needles:
                    self.assertIn(needle, p.stderr.decode())
        p = self.run_server("--config", os.path.join(self.root, "missing.yaml"), "--print-config")
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.yaml", p.stderr.decode())
        p = self.run_server("--print-config", env={"COFFER_PORT": "seventy"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("--port", p.stderr.decode())

    def test_a_server_runs_with_its_file(self):
        path = self.write("authority-host: coffer.file.test\n"
                          "dns-suffix: vault.coffer.file.test\n"
                          "tls-reload-interval: 60\n")
        srv = CofferServer(extra_args=["--config", path])
        self.addCleanup(srv.cleanup)
        srv.start()
        self.assertEqual(srv.env["AZURE_AUTHORITY_HOST"], f"https://coffer.file.test:{srv.port}")
        self.assertEqual(srv.env["COFFER_VAULT_URL"],
                         f"https://dev.vault.coffer.file.test:{srv.port}")
