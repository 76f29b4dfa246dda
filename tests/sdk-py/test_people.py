"""A person signs in as azure-identity's DeviceCodeCredential (Debian's python3-azure, MSAL
underneath) does against Entra: the device code is shown, the person finishes on Coffer's
/devicelogin page, and the credential's tokens then read secrets as that user, under the user's own
access policy; a second resource costs no second sign-in (the refresh token); the audit record
names the user; a password change ends the user's tokens.
"""

import json
import os
import ssl
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import DeviceCodeCredential
from azure.keyvault.secrets import SecretClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)

SERVER = None
PASSWORD = "Device-Code-Pass-9"
UPN = "dana@coffer.test"


def setUpModule():
    global SERVER
    SERVER = harness.launch_server()


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


def admin(method, path, body=None):
    r = SERVER.request(method, path, json.dumps(body) if body is not None else None,
                       host="localhost", token=SERVER.token(SERVER.mgmt_resource))
    if r.status >= 300:
        raise AssertionError(f"{method} {path}: {r!r}")
    return r.json() if r.body else None


class DeviceLogin:
    """The person at the browser: posts the code and the password to the page it is shown."""

    def __init__(self, upn, password, action="continue"):
        self.upn, self.password, self.action = upn, password, action
        self.prompts = []
        self.context = ssl.create_default_context(cafile=SERVER.ca_path)

    def __call__(self, verification_uri, user_code, expires_on):
        self.prompts.append((verification_uri, user_code, expires_on))
        # A second prompt means a second sign-in was needed: the person declines it.
        action = self.action if len(self.prompts) == 1 else "cancel"
        form = urllib.parse.urlencode({"code": user_code, "login": self.upn,
                                       "passwd": self.password, "action": action}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(verification_uri, data=form),
                                        context=self.context, timeout=30) as page:
                self.page = page.read().decode()
                self.headers = dict(page.headers)
        except urllib.error.HTTPError as e:  # a refused password is a 400 page
            self.page = e.read().decode()
            self.headers = dict(e.headers)


class DeviceCodeTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        user = admin("POST", "/v1.0/users", {
            "accountEnabled": True, "displayName": "Dana Scully", "mailNickname": "dana",
            "userPrincipalName": UPN,
            "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": False}})
        cls.oid = user["id"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
        env.update(SERVER.env)
        env["COFFER_CA_FILE"] = SERVER.ca_path

        def coffer(*args):
            import subprocess
            p = subprocess.run([harness.coffer_binary()] + list(args), env=env,
                               capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
            assert p.returncode == 0, p.stderr.decode()
        coffer("keyvault", "create", "-n", "py-people", "-g", "rg-people",
               "--enable-rbac-authorization", "false")
        coffer("keyvault", "secret", "set", "--vault-name", "py-people", "--name", "mine",
               "--value", "for-dana")
        coffer("keyvault", "set-policy", "--name", "py-people", "--object-id", cls.oid,
               "--secret-permissions", "get")
        cls.vault_url = SERVER.vault_url.replace("://dev.", "://py-people.", 1)

    def credential(self, login):
        cred = DeviceCodeCredential(tenant_id=SERVER.tenant, authority=SERVER.authority_host,
                                    instance_discovery=False, connection_verify=SERVER.ca_path,
                                    prompt_callback=login, timeout=60)
        self.addCleanup(cred.close)
        return cred

    def test_a_person_signs_in_with_a_device_code_and_reads_their_secret(self):
        login = DeviceLogin(UPN, PASSWORD)
        cred = self.credential(login)
        client = SecretClient(self.vault_url, cred, connection_verify=SERVER.ca_path)
        self.addCleanup(client.close)
        self.assertEqual(client.get_secret("mine").value, "for-dana")
        self.assertEqual(len(login.prompts), 1)
        uri, code, _ = login.prompts[0]
        self.assertEqual(uri, SERVER.authority_host + "/devicelogin")
        self.assertRegex(code, r"^[B-Z0-9]{4}-[B-Z0-9]{4}$")
        self.assertIn("You have signed in as " + UPN, login.page)
        self.assertIn("default-src 'none'", login.headers["Content-Security-Policy"])
        self.assertEqual(login.headers["X-Frame-Options"], "DENY")
        # The policy grants get, not set: the user is refused as any principal is.
        with self.assertRaises(HttpResponseError) as ctx:
            client.set_secret("mine", "changed")
        self.assertEqual(ctx.exception.status_code, 403)
        # Another resource: the refresh token, not a second sign-in.
        token = cred.get_token(SERVER.mgmt_resource + "/.default")
        self.assertEqual(len(login.prompts), 1)
        me = SERVER.request("GET", "/v1.0/me", host="localhost", token=token.token)
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.json()["userPrincipalName"], UPN)
        # The audit record names the user (records reach the files shortly after the answer).
        gets = []
        for _ in range(50):
            r = SERVER.request("GET", "/coffer/v1/audit?top=1000&operation=SecretGet",
                               host="localhost", token=SERVER.token(SERVER.mgmt_resource))
            self.assertEqual(r.status, 200, r)
            gets = [rec for rec in r.json()["value"]
                    if rec.get("identity", {}).get("claim", {}).get("oid") == self.oid]
            if gets:
                break
            time.sleep(0.2)
        self.assertTrue(gets, "the user's reads are audited under their object id")
        claim = gets[-1]["identity"]["claim"]
        self.assertEqual(claim["upn"], UPN)
        self.assertEqual(claim["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"], UPN)
        self.assertEqual(claim["idtyp"], "user")

    def test_a_wrong_password_or_a_cancel_signs_nobody_in(self):
        for login, error in ((DeviceLogin(UPN, "Not-The-Password-1"), "incorrect"),
                             (DeviceLogin(UPN, PASSWORD, action="cancel"), "declined")):
            # (A wrong password leaves the flow pending until the credential's timeout.)
            cred = DeviceCodeCredential(tenant_id=SERVER.tenant, authority=SERVER.authority_host,
                                        instance_discovery=False,
                                        connection_verify=SERVER.ca_path, prompt_callback=login,
                                        timeout=12)
            self.addCleanup(cred.close)
            with self.assertRaises(ClientAuthenticationError):
                cred.get_token(SERVER.vault_resource + "/.default")
            self.assertIn(error, login.page)

    def test_a_password_change_ends_the_users_tokens(self):
        login = DeviceLogin(UPN, PASSWORD)
        cred = self.credential(login)
        graph = cred.get_token(SERVER.mgmt_resource + "/.default").token
        vault_token = cred.get_token(SERVER.vault_resource + "/.default").token
        r = SERVER.kv("GET", "/secrets/mine", vault="py-people", token=vault_token)
        self.assertEqual(r.status, 200, r)
        new_password = "Changed-Pass-10"
        r = SERVER.request("POST", "/v1.0/me/changePassword",
                           json.dumps({"currentPassword": PASSWORD, "newPassword": new_password}),
                           host="localhost", token=graph)
        self.assertEqual(r.status, 204, r)
        self.addCleanup(admin, "PATCH", f"/v1.0/users/{self.oid}",
                        {"passwordProfile": {"password": PASSWORD}})
        r = SERVER.kv("GET", "/secrets/mine", vault="py-people", token=vault_token)
        self.assertEqual(r.status, 401, r)
        # The refresh token ended too: the credential has to sign in again (and is declined).
        with self.assertRaises(ClientAuthenticationError):
            cred.get_token("https://graph.microsoft.com/.default")
        self.assertEqual(len(login.prompts), 2)


if __name__ == "__main__":
    unittest.main()
