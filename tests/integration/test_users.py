"""Users: Graph's /v1.0/users and `coffer ad user ...` against a real server.

Passwords are kept only as Argon2id hashes (never in a response, the database, the audit log or the
logs), lists page by @odata.nextLink, filters Coffer does not know are refused, and only
administrators manage users.
"""

import json
import sqlite3
import subprocess
import urllib.parse

from harness import ServerTestCase, coffer_binary

PASSWORD = "Integration-Pass-7"


class UsersTestCase(ServerTestCase):

    def ad_user(self, *args, expect=0, stdin=None):
        p = subprocess.run([coffer_binary(), "ad", "user"] + [str(a) for a in args],
                           env=self.srv.cli_env(), capture_output=True, timeout=60,
                           input=stdin.encode() if stdin is not None else None,
                           stdin=None if stdin is not None else subprocess.DEVNULL)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertEqual(p.returncode, expect, f"ad user {args}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if expect == 0 and out.strip() else err

    def graph(self, method, path, body=None, token=None):
        return self.srv.request(method, "/v1.0/users" + path,
                                json.dumps(body) if body is not None else None, host="localhost",
                                token=token or self.srv.token(self.srv.mgmt_resource))

    def new_user(self, upn, name="Someone", password=PASSWORD, **extra):
        body = {"accountEnabled": True, "displayName": name, "mailNickname": upn.split("@")[0],
                "userPrincipalName": upn,
                "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False}}
        body.update(extra)
        return self.graph("POST", "", body)


class GraphUsersTests(UsersTestCase):

    def test_create_get_patch_delete_and_no_password_anywhere(self):
        r = self.new_user("ada@coffer.test", "Ada Lovelace", givenName="Ada")
        self.assertEqual(r.status, 201, r)
        user = r.json()
        self.assertEqual(user["userPrincipalName"], "ada@coffer.test")
        self.assertEqual(user["givenName"], "Ada")
        self.assertNotIn(PASSWORD, r.body.decode())
        got = self.graph("GET", "/ADA@coffer.test")
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json()["id"], user["id"])
        r = self.graph("PATCH", "/" + user["id"], {"displayName": "Countess"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.graph("GET", "/" + user["id"]).json()["displayName"], "Countess")
        r = self.graph("PATCH", "/" + user["id"],
                       {"passwordProfile": {"password": "Second-Pass-8"}})
        self.assertEqual(r.status, 204, r)
        r = self.graph("POST", "/" + user["id"] + "/revokeSignInSessions")
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["value"], True)

        # The database holds a hash, not the password.
        db = sqlite3.connect(f"file:{self.srv.data_dir}/coffer.db?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("SELECT password_hash FROM users WHERE object_id = ?",
                              (user["id"],)).fetchall()
            dump = "\n".join(db.iterdump())
        finally:
            db.close()
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0][0].startswith("$argon2id$v=19$m=65536,t=2,p=1$"), rows[0][0])
        for password in (PASSWORD, "Second-Pass-8"):
            self.assertNotIn(password, dump)
            self.assertNotIn(password, self.srv.logs())

        r = self.graph("DELETE", "/" + user["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.graph("GET", "/" + user["id"]).status, 404)

        # Every change was audited, under the administrator, without a body.
        mgmt = self.srv.token(self.srv.mgmt_resource)
        r = self.srv.request("GET", "/coffer/v1/audit?top=1000", host="localhost", token=mgmt)
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        for op in ("UserCreate", "UserUpdate", "UserRevokeSessions", "UserDelete"):
            self.assertIn(f'"{op}"', text, op)
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn("Second-Pass-8", text)

    def test_bad_input_is_refused_and_writes_nothing(self):
        cases = [
            ("missing password", {"passwordProfile": None}),
            ("weak password", {"passwordProfile": {"password": "weak"}}),
            ("bad name", {"userPrincipalName": "no-domain"}),
            ("unknown property", {"employeeId": "7"}),
            ("wrong type", {"accountEnabled": "yes"}),
            ("oversized name", {"displayName": "x" * 300}),
        ]
        for what, change in cases:
            body = {"accountEnabled": True, "displayName": "Bad", "mailNickname": "bad",
                    "userPrincipalName": "bad@coffer.test",
                    "passwordProfile": {"password": PASSWORD}}
            body.update(change)
            body = {k: v for k, v in body.items() if v is not None}
            r = self.graph("POST", "", body)
            self.assertEqual(r.status, 400, f"{what}: {r}")
            self.assertEqual(r.json()["error"]["code"], "Request_BadRequest", what)
            self.assertNotIn("weak", r.json()["error"]["message"].replace("weak password", ""))
        r = self.srv.request("POST", "/v1.0/users", "{not json", host="localhost",
                             token=self.srv.token(self.srv.mgmt_resource))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.graph("GET", "/bad@coffer.test").status, 404)
        # A filter Coffer does not know is refused, never ignored.
        r = self.graph("GET", "?" + urllib.parse.urlencode({"$filter": "jobTitle eq 'x'"}))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "Request_UnsupportedQuery")
        self.assertEqual(self.new_user("dup@coffer.test").status, 201)
        r = self.new_user("DUP@COFFER.TEST")
        self.assertEqual(r.status, 400, r)
        self.assertIn("already exists", r.json()["error"]["message"])

    def test_only_administrators_manage_users(self):
        sp = self.coffer_json("ad", "sp", "create-for-rbac", "--name", "not-an-admin")
        token = self.srv.token_response(self.srv.mgmt_resource, client_id=sp["appId"],
                                        client_secret=sp["password"]).json()["access_token"]
        for method, path, body in [("GET", "", None), ("POST", "", {"displayName": "x"}),
                                   ("GET", "/x@coffer.test", None),
                                   ("PATCH", "/x@coffer.test", {"displayName": "y"}),
                                   ("DELETE", "/x@coffer.test", None),
                                   ("POST", "/x@coffer.test/revokeSignInSessions", None)]:
            r = self.graph(method, path, body, token=token)
            self.assertEqual(r.status, 403, f"{method} {path}: {r}")
            self.assertEqual(r.json()["error"]["code"], "Authorization_RequestDenied")
        r = self.srv.request("GET", "/v1.0/users", None, host="localhost", auth=False)
        self.assertEqual(r.status, 401, r)


class CliUsersTests(UsersTestCase):

    def test_create_list_show_update_delete(self):
        made = self.ad_user("create", "--display-name", "Grace Hopper", "--user-principal-name",
                            "grace@coffer.test", "--password-file", "-", stdin=PASSWORD + "\n")
        self.assertEqual(made["userPrincipalName"], "grace@coffer.test")
        self.assertNotIn("password", made)
        generated = self.ad_user("create", "--display-name", "Alan Turing",
                                 "--user-principal-name", "alan@coffer.test")
        self.assertGreaterEqual(len(generated["password"]), 24, "a generated password, shown once")
        self.assertNotIn("password", self.ad_user("show", "--id", "alan@coffer.test"))
        for i in range(5):
            self.ad_user("create", "--display-name", f"Bulk {i}", "--user-principal-name",
                         f"bulk{i}@coffer.test", "--password", PASSWORD)
        everyone = {u["userPrincipalName"] for u in self.ad_user("list")}
        self.assertTrue({"grace@coffer.test", "alan@coffer.test"} <= everyone)
        # Paging: Graph's $top, followed to the end by the CLI.
        r = self.graph("GET", "?$top=2")
        self.assertEqual(len(r.json()["value"]), 2)
        self.assertIn("@odata.nextLink", r.json())
        bulk = self.ad_user("list", "--display-name", "bulk")
        self.assertEqual(sorted(u["displayName"] for u in bulk), [f"Bulk {i}" for i in range(5)])
        self.assertEqual([u["id"] for u in self.ad_user("list", "--upn", "GRACE@coffer.test")],
                         [made["id"]])
        self.assertEqual(self.ad_user("list", "--filter", "jobTitle eq 'x'", expect=1).count(
            "Request_UnsupportedQuery"), 1)
        self.ad_user("update", "--id", "grace@coffer.test", "--display-name", "Rear Admiral",
                     "--account-enabled", "false")
        shown = self.ad_user("show", "--id", made["id"])
        self.assertEqual(shown["displayName"], "Rear Admiral")
        r = self.graph("GET", "/" + made["id"] + "?$select=accountEnabled")
        self.assertIs(r.json()["accountEnabled"], False)
        err = self.ad_user("update", "--id", "grace@coffer.test", "--password", "weak", expect=1)
        self.assertIn("password complexity", err)
        self.assertNotIn("weak\n", err)
        self.ad_user("update", "--id", "grace@coffer.test", expect=2)  # nothing to update
        self.ad_user("delete", "--id", "grace@coffer.test")
        err = self.ad_user("show", "--id", "grace@coffer.test", expect=1)
        self.assertIn("Request_ResourceNotFound", err)


CLI_APP = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


class DeviceSignInTests(UsersTestCase):
    """The device-code endpoint and the /devicelogin page against hostile and wrong input."""

    def start_flow(self, client_id=CLI_APP, scope="openid offline_access"):
        return self.srv.request("POST", f"/{self.srv.tenant}/oauth2/v2.0/devicecode",
                                urllib.parse.urlencode({"client_id": client_id, "scope": scope}),
                                headers={"Content-Type": "application/x-www-form-urlencoded"},
                                host="localhost", auth=False)

    def page(self, form, headers=None):
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        hdrs.update(headers or {})
        body = form if isinstance(form, str) else urllib.parse.urlencode(form)
        return self.srv.request("POST", "/devicelogin", body, headers=hdrs, host="localhost",
                                auth=False)

    def test_the_endpoint_refuses_unknown_clients_tenants_and_scopes(self):
        r = self.start_flow()
        self.assertEqual(r.status, 200, r)
        flow = r.json()
        self.assertEqual(set(flow), {"device_code", "user_code", "verification_uri", "expires_in",
                                     "interval", "message"})
        self.assertEqual(r.headers.get("cache-control"), "no-store, no-cache")
        r = self.start_flow(client_id="11111111-1111-1111-1111-111111111111")
        self.assertEqual((r.status, r.json()["error"]), (400, "unauthorized_client"), r)
        r = self.start_flow(scope="https://a.test/.default https://b.test/.default")
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"), r)
        r = self.srv.request("POST", "/no-such-tenant/oauth2/v2.0/devicecode",
                             f"client_id={CLI_APP}", host="localhost", auth=False)
        self.assertEqual(r.status, 400, r)
        self.assertIn("AADSTS90002", r.json()["error_description"])
        doc = self.srv.request("GET", f"/{self.srv.tenant}/v2.0/.well-known/openid-configuration",
                               host="localhost", auth=False).json()
        self.assertTrue(doc["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode"))

    def test_the_page_is_locked_down_and_escapes_what_it_echoes(self):
        r = self.srv.request("GET", "/devicelogin", host="localhost", auth=False)
        self.assertEqual(r.status, 200, r)
        self.assertIn("default-src 'none'", r.headers["content-security-policy"])
        self.assertIn("frame-ancestors 'none'", r.headers["content-security-policy"])
        self.assertEqual(r.headers["x-frame-options"], "DENY")
        self.assertEqual(r.headers["cache-control"], "no-store")
        self.assertNotIn("<script", r.body.decode())
        code = self.start_flow().json()["user_code"]
        # Another site's form is refused; so is an oversized one.
        r = self.page({"code": code}, {"Origin": "https://evil.test"})
        self.assertEqual(r.status, 403, r)
        r = self.page({"code": code, "login": "x" * 20000})
        self.assertEqual(r.status, 413, r)
        r = self.page("code=%zz")
        self.assertEqual(r.status, 400, r)
        # What the page echoes is escaped.
        r = self.page({"code": code, "login": '"><script>alert(1)</script>', "passwd": "x",
                       "action": "continue"}, {"Origin": self.srv.authority_host})
        self.assertEqual(r.status, 400, r)
        text = r.body.decode()
        self.assertNotIn("<script>", text)
        self.assertIn("&quot;&gt;&lt;script&gt;", text)
        self.assertIn("AADSTS50126", text)

    def test_unknown_codes_are_limited_per_address(self):
        statuses = [self.page({"code": "BBBB-BBBB"}).status for _ in range(11)]
        self.assertEqual(statuses[:10], [400] * 10)
        self.assertEqual(statuses[10], 429)

    def test_ten_wrong_passwords_lock_the_user_out_even_with_the_right_one(self):
        self.assertEqual(self.new_user("locked@coffer.test").status, 201)
        flow = self.start_flow().json()
        for i in range(10):
            r = self.page({"code": flow["user_code"], "login": "locked@coffer.test",
                           "passwd": f"Wrong-Pass-{i}", "action": "continue"})
            self.assertIn("AADSTS50126", r.body.decode(), i)
        r = self.page({"code": flow["user_code"], "login": "locked@coffer.test",
                       "passwd": PASSWORD, "action": "continue"})
        self.assertIn("AADSTS50053", r.body.decode())
        poll = self.srv.request(
            "POST", f"/{self.srv.tenant}/oauth2/v2.0/token",
            urllib.parse.urlencode({"grant_type": "device_code", "client_id": CLI_APP,
                                    "device_code": flow["device_code"]}),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, host="localhost",
            auth=False)
        self.assertEqual((poll.status, poll.json()["error"]), (400, "authorization_pending"))
        # An administrator's reset lifts the lockout.
        user = self.graph("GET", "/locked@coffer.test").json()
        self.assertEqual(self.graph("PATCH", "/" + user["id"],
                                    {"passwordProfile": {"password": "Reset-Pass-11"}}).status, 204)
        r = self.page({"code": flow["user_code"], "login": "locked@coffer.test",
                       "passwd": "Reset-Pass-11", "action": "continue"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("You have signed in", r.body.decode())


class LoginTests(UsersTestCase):
    """`coffer login`: a person signs in from a terminal and the other commands act as them."""

    def person_env(self, config_dir):
        env = self.srv.cli_env()
        for k in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
            env.pop(k, None)
        env["COFFER_CA_FILE"] = self.srv.ca_path
        env["COFFER_CONFIG_DIR"] = config_dir
        return env

    def test_login_signs_a_person_in_and_logout_forgets_them(self):
        import os
        import re
        import tempfile
        self.assertEqual(self.new_user("pat@coffer.test").status, 201)
        oid = self.graph("GET", "/pat@coffer.test").json()["id"]
        self.coffer_json("keyvault", "create", "-n", "pats", "-g", "rg-people",
                         "--enable-rbac-authorization", "false")
        self.coffer_json("keyvault", "secret", "set", "--vault-name", "pats", "--name", "note",
                         "--value", "for-pat")
        self.coffer_json("keyvault", "set-policy", "--name", "pats", "--object-id", oid,
                         "--secret-permissions", "get")
        config = tempfile.mkdtemp(prefix="coffer-login-")
        env = self.person_env(os.path.join(config, "coffer"))
        p = subprocess.Popen([coffer_binary(), "login", "--use-device-code"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            line = p.stderr.readline().decode()
            m = re.search(r"open the page (\S+) and enter the code (\S+) ", line)
            self.assertIsNotNone(m, line)
            r = self.srv.request("POST", "/devicelogin", urllib.parse.urlencode(
                {"code": m.group(2), "login": "pat@coffer.test", "passwd": PASSWORD,
                 "action": "continue"}),
                headers={"Content-Type": "application/x-www-form-urlencoded"}, host="localhost",
                auth=False)
            self.assertEqual(r.status, 200, r)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err.decode())
        account = json.loads(out)
        self.assertEqual(account[0]["user"], {"name": "pat@coffer.test", "type": "user"})
        self.assertEqual(account[0]["tenantId"], self.srv.tenant)
        login_file = os.path.join(config, "coffer", "login.json")
        self.assertEqual(os.stat(login_file).st_mode & 0o777, 0o600)
        with open(login_file) as f:
            saved = f.read()
        self.assertNotIn(PASSWORD, saved)

        show = subprocess.run([coffer_binary(), "keyvault", "secret", "show", "--vault-name", "pats",
                               "--name", "note"], env=env, capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(show.returncode, 0, show.stderr.decode())
        self.assertEqual(json.loads(show.stdout)["value"], "for-pat")
        denied = subprocess.run([coffer_binary(), "keyvault", "secret", "set", "--vault-name",
                                 "pats", "--name", "note", "--value", "x"], env=env,
                                capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(denied.returncode, 1)
        self.assertIn("pat@coffer.test".split("@")[0], denied.stderr.decode() + oid)

        logout = subprocess.run([coffer_binary(), "logout"], env=env, capture_output=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(logout.returncode, 0, logout.stderr.decode())
        self.assertFalse(os.path.exists(login_file))
        after = subprocess.run([coffer_binary(), "keyvault", "secret", "show", "--vault-name",
                                "pats", "--name", "note"], env=env, capture_output=True,
                               timeout=60, stdin=subprocess.DEVNULL)
        self.assertNotEqual(after.returncode, 0)
        self.assertIn("coffer login", after.stderr.decode())
