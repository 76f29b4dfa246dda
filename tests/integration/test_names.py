"""The server's public names: every URL it writes uses them, and other hosts get 421.

The server runs as `coffer.test:9443` with vaults under `vault.coffer.test:9444`, ports that
differ from the one it listens on (as behind a port mapping), so each URL below shows that the
configured name and port were used, not the request's connection. The names are reached through
127.0.0.1 with TLS's server name and the Host header set, as a client that resolved them would.
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest
import urllib.parse

from harness import KV_API, ServerTestCase, coffer_binary, free_port, jwt_parts

AUTHORITY = "coffer.test:9443"
SUFFIX = "vault.coffer.test:9444"


class NamedConnection(http.client.HTTPSConnection):
    """An HTTPS connection to 127.0.0.1 that presents `name` in TLS and verifies it."""

    def __init__(self, name, port, context):
        super().__init__(name, port, context=context, timeout=30)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class PublicNameTests(ServerTestCase):
    SERVER_ARGS = ("--authority-host", AUTHORITY, "--dns-suffix", SUFFIX)

    def call(self, method, path, host, body=None, token=None, headers=None):
        """One request to `host` (Host header and TLS name); returns (status, headers, body)."""
        name = host.split(":")[0]
        conn = NamedConnection(name, self.srv.port, self.srv._ctx)
        hdrs = {"Host": host}
        hdrs.update(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if isinstance(body, dict):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def token(self, resource):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials",
            "client_id": self.srv.env["AZURE_CLIENT_ID"],
            "client_secret": self.srv.env["AZURE_CLIENT_SECRET"],
            "scope": resource + "/.default",
        })
        status, _, body = self.call(
            "POST", f"/{self.srv.tenant}/oauth2/v2.0/token", AUTHORITY, form,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        return json.loads(body)["access_token"]

    def test_dev_env_names_the_public_urls(self):
        self.assertEqual(self.srv.env["AZURE_AUTHORITY_HOST"], "https://" + AUTHORITY)
        self.assertEqual(self.srv.env["COFFER_VAULT_URL"], "https://dev." + SUFFIX)
        # The vaults' port is not the authority's: the suffix carries it, for the CLI, the agent
        # and exec, which otherwise take the authority's.
        self.assertEqual(self.srv.env["COFFER_VAULT_DNS_SUFFIX"], SUFFIX)

    def test_discovery_and_tokens_name_the_authority(self):
        tenant = self.srv.tenant
        base = f"https://{AUTHORITY}/{tenant}"
        status, _, body = self.call(
            "GET", f"/{tenant}/v2.0/.well-known/openid-configuration", AUTHORITY)
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["issuer"], base + "/v2.0")
        self.assertEqual(doc["token_endpoint"], base + "/oauth2/v2.0/token")
        self.assertEqual(doc["authorization_endpoint"], base + "/oauth2/v2.0/authorize")
        self.assertEqual(doc["jwks_uri"], base + "/discovery/v2.0/keys")
        _, claims = jwt_parts(self.token("https://" + SUFFIX))
        self.assertEqual(claims["iss"], base + "/v2.0")
        self.assertEqual(claims["aud"], "https://" + SUFFIX)

    def test_vault_urls_name_the_vault_suffix(self):
        token = self.token("https://" + SUFFIX)
        vault_host = "dev." + SUFFIX
        status, _, body = self.call("PUT", f"/secrets/named?api-version={KV_API}", vault_host,
                                    {"value": "v"}, token=token)
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["id"].startswith(f"https://{vault_host}/secrets/named/"))
        status, _, body = self.call("PUT", f"/secrets/named-2?api-version={KV_API}", vault_host,
                                    {"value": "v"}, token=token)
        self.assertEqual(status, 200, body)
        status, _, body = self.call("GET", f"/secrets?api-version={KV_API}&maxresults=1",
                                    vault_host, token=token)
        self.assertEqual(status, 200, body)
        page = json.loads(body)
        self.assertTrue(page["nextLink"].startswith(f"https://{vault_host}/secrets?"), page)
        # The challenge sends a client without a token to the configured authority.
        status, headers, _ = self.call("GET", f"/secrets/named?api-version={KV_API}", vault_host)
        self.assertEqual(status, 401)
        challenge = headers["www-authenticate"]
        self.assertIn(f'authorization="https://{AUTHORITY}/{self.srv.tenant}"', challenge)
        self.assertIn(f'resource="https://{SUFFIX}"', challenge)

    def test_management_plane_names_the_vault_suffix_and_authority(self):
        token = self.token(f"https://{AUTHORITY}")
        path = (f"/subscriptions/{self.srv.subscription}/resourceGroups/coffer-dev/providers/"
                f"Microsoft.KeyVault/vaults/dev?api-version=2023-07-01")
        status, _, body = self.call("GET", path, AUTHORITY, token=token)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["properties"]["vaultUri"], f"https://dev.{SUFFIX}/")
        status, headers, _ = self.call("GET", path, AUTHORITY)
        self.assertEqual(status, 401)
        self.assertIn(f"https://{AUTHORITY}/{self.srv.tenant}", headers["www-authenticate"])

    def test_other_hosts_are_misdirected(self):
        for host in (f"localhost:{self.srv.port}", f"127.0.0.1:{self.srv.port}",
                     f"dev.vault.localhost:{self.srv.port}", "evil.example", "coffer.test.evil",
                     "dev.vault.coffer.test.evil", ""):
            with self.subTest(host=host):
                conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port,
                                                   context=self.srv._ctx, timeout=30)
                try:
                    conn.request("GET", f"/{self.srv.tenant}/v2.0/.well-known/"
                                 "openid-configuration", headers={"Host": host})
                    resp = conn.getresponse()
                    body = json.loads(resp.read())
                finally:
                    conn.close()
                self.assertEqual(resp.status, 421, body)
                self.assertEqual(body["error"]["code"], "MisdirectedRequest")
                self.assertIn("coffer.test", body["error"]["message"])
        # Liveness answers whatever the Host: a probe names an address.
        status, _, _ = self.call("GET", "/healthz", f"127.0.0.1:{self.srv.port}")
        self.assertEqual(status, 200)
        # The configured names still work on the same server.
        status, _, _ = self.call(
            "GET", f"/{self.srv.tenant}/v2.0/.well-known/openid-configuration", AUTHORITY)
        self.assertEqual(status, 200)

    def test_the_certificate_covers_the_configured_names_only(self):
        for name in ("coffer.test", "dev.vault.coffer.test", "other.vault.coffer.test"):
            with self.subTest(name=name):
                with socket.create_connection(("127.0.0.1", self.srv.port), 10) as sock:
                    with self.srv._ctx.wrap_socket(sock, server_hostname=name) as tls:
                        self.assertTrue(tls.version())
        for name in ("other.test", "dev.vault.localhost", "a.b.vault.coffer.test"):
            with self.subTest(name=name):
                with socket.create_connection(("127.0.0.1", self.srv.port), 10) as sock:
                    with self.assertRaises(ssl.SSLCertVerificationError):
                        self.srv._ctx.wrap_socket(sock, server_hostname=name).close()


class BadNameTests(unittest.TestCase):
    """Names that are not names stop the server before it starts, naming the flag."""

    def test_bad_names_are_refused(self):
        root = tempfile.mkdtemp(prefix="coffer-it-names-")
        self.addCleanup(shutil.rmtree, root, True)
        for flag, value in (("--authority-host", "10.0.0.1"), ("--dns-suffix", "*.vault.test"),
                            ("--authority-host", "coffer.test:0"),
                            ("--dns-suffix", "vault.test/x"), ("--authority-host", "")):
            with self.subTest(flag=flag, value=value):
                p = subprocess.run(
                    [coffer_binary(), "server", "--data-dir", root + "/data",
                     "--port", str(free_port()), flag, value],
                    capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(flag.encode(), p.stderr)
                self.assertFalse(os.path.exists(root + "/data"), "nothing was created")
