"""Service principals: the Graph-shaped directory API and `coffer ad sp ...`.

Secrets are shown once, stored only as hashes, expire, and can be reset; deleting a principal
makes its tokens stop working at once.
"""

import json
import os
import sqlite3
import subprocess
import unittest
import urllib.parse

from harness import ServerTestCase, coffer_binary, parse_env_file, read_text, start_server


class DirectoryTestCase(ServerTestCase):

    def ad(self, *args, expect=0):
        p = subprocess.run([coffer_binary(), "ad", "sp"] + [str(a) for a in args],
                           env=self.srv.cli_env(), capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        out = p.stdout.decode()
        err = p.stderr.decode()
        self.assertEqual(p.returncode, expect, f"ad sp {args}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if expect == 0 and out.strip() else err

    def graph(self, method, path, body=None, token=None):
        return self.srv.request(method, "/v1.0/servicePrincipals" + path, body, host="localhost",
                                token=token or self.srv.token(self.srv.mgmt_resource))

    def token_for(self, app_id, secret, resource=None):
        return self.srv.token_response(resource or self.srv.vault_resource, client_id=app_id,
                                       client_secret=secret)


class ServicePrincipalLifecycleTests(DirectoryTestCase):

    def test_create_for_rbac_shows_the_secret_once_and_it_authenticates(self):
        sp = self.ad("create-for-rbac", "--name", "ci-pipeline")
        self.assertEqual(set(sp), {"appId", "displayName", "password", "tenant"})
        self.assertEqual(sp["tenant"], self.srv.tenant)
        self.assertEqual(sp["displayName"], "ci-pipeline")
        r = self.token_for(sp["appId"], sp["password"])
        self.assertEqual(r.status, 200, r)
        listed = {p["appId"]: p for p in self.ad("list")}
        self.assertIn(sp["appId"], listed)
        creds = listed[sp["appId"]]["passwordCredentials"]
        self.assertEqual(len(creds), 1)
        self.assertEqual(creds[0]["hint"], sp["password"][:3])
        self.assertNotIn("secretText", creds[0])
        self.assertNotIn(sp["password"], json.dumps(listed))
        shown = self.ad("show", "--id", sp["appId"])
        self.assertEqual(shown["id"], listed[sp["appId"]]["id"])

    def test_a_new_principal_has_no_access_until_granted(self):
        sp = self.ad("create-for-rbac", "--name", "no-grants")
        token = self.token_for(sp["appId"], sp["password"]).json()["access_token"]
        r = self.srv.kv("GET", "/secrets", token=token)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"]["code"], "Forbidden")
        self.assertIn(sp["appId"], r.json()["error"]["message"])
        mgmt = self.token_for(sp["appId"], sp["password"], self.srv.mgmt_resource)
        r = self.graph("GET", "", token=mgmt.json()["access_token"])
        self.assertEqual(r.status, 403, r)

    def test_credential_reset_replaces_the_secret_and_append_keeps_both(self):
        sp = self.ad("create-for-rbac", "--name", "rotating")
        reset = self.ad("credential", "reset", "--id", sp["appId"], "--years", "2")
        self.assertEqual(reset["appId"], sp["appId"])
        self.assertNotEqual(reset["password"], sp["password"])
        old = self.token_for(sp["appId"], sp["password"])
        self.assertEqual(old.status, 401, old)
        self.assertEqual(old.json()["error"], "invalid_client")
        self.assertEqual(self.token_for(sp["appId"], reset["password"]).status, 200)
        appended = self.ad("credential", "reset", "--id", sp["appId"], "--append")
        self.assertEqual(self.token_for(sp["appId"], reset["password"]).status, 200)
        self.assertEqual(self.token_for(sp["appId"], appended["password"]).status, 200)
        shown = self.ad("show", "--id", sp["appId"])
        self.assertEqual(len(shown["passwordCredentials"]), 2)

    def test_deleting_a_principal_stops_its_tokens_at_once(self):
        sp = self.ad("create-for-rbac", "--name", "short-lived")
        token = self.token_for(sp["appId"], sp["password"]).json()["access_token"]
        self.assertEqual(self.srv.kv("GET", "/secrets", token=token).status, 403)
        self.ad("delete", "--id", sp["appId"])
        r = self.srv.kv("GET", "/secrets", token=token)
        self.assertEqual(r.status, 401, r)
        self.assertIn("WWW-Authenticate".lower(), r.headers)
        again = self.token_for(sp["appId"], sp["password"])
        self.assertEqual(again.status, 401, again)
        self.assertNotIn(sp["appId"], [p["appId"] for p in self.ad("list")])
        err = self.ad("delete", "--id", sp["appId"], expect=1)
        self.assertIn("Request_ResourceNotFound", err)

    def test_the_administrator_cannot_be_deleted(self):
        err = self.ad("delete", "--id", self.srv.env["AZURE_CLIENT_ID"], expect=1)
        self.assertIn("Request_BadRequest", err)
        self.assertEqual(self.srv.token_response(self.srv.vault_resource).status, 200)


class AdministratorCredentialsFileTests(DirectoryTestCase):
    """The administrator's dev.env across restarts (directory.md): a secret the file no longer
    holds stops working. Each test has a server of its own, restarted in the test."""

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass()

    def setUp(self):
        self.srv = start_server(self)

    def secret_works(self, secret):
        status = self.token_for(self.srv.env["AZURE_CLIENT_ID"], secret).status
        self.assertIn(status, (200, 401))
        return status == 200

    def restart(self, remove_env=False):
        self.srv.stop()
        if remove_env:
            os.remove(self.srv.dev_env_path)
        self.srv.start()
        return self.srv.env["AZURE_CLIENT_SECRET"]

    def test_a_replaced_file_revokes_the_secret_it_held_and_keeps_graph_added_ones(self):
        first = self.srv.env["AZURE_CLIENT_SECRET"]
        added = self.ad("credential", "reset", "--id", self.srv.env["AZURE_CLIENT_ID"],
                        "--append")["password"]
        # With the file in place, its secret is kept.
        self.assertEqual(self.restart(), first)
        self.assertTrue(self.secret_works(first))

        second = self.restart(remove_env=True)
        self.assertNotEqual(second, first)
        self.assertTrue(self.secret_works(second))
        self.assertFalse(self.secret_works(first), "the secret of the deleted dev.env still works")
        self.assertTrue(self.secret_works(added), "a secret added through the Graph API was lost")

        # A stale file (its secret is not the administrator's) is replaced the same way.
        self.srv.stop()
        text = read_text(self.srv.dev_env_path).replace(second, "not-the-secret")
        with open(self.srv.dev_env_path, "w", encoding="utf-8") as f:
            f.write(text)
        self.srv.start()
        third = self.srv.env["AZURE_CLIENT_SECRET"]
        self.assertNotIn(third, (first, second, "not-the-secret"))
        self.assertTrue(self.secret_works(third))
        self.assertFalse(self.secret_works(second))
        self.assertTrue(self.secret_works(added))
        shown = self.ad("show", "--id", self.srv.env["AZURE_CLIENT_ID"])
        self.assertEqual(len(shown["passwordCredentials"]), 2)

    def test_an_installation_that_recorded_nothing_revokes_every_older_secret(self):
        first = self.srv.env["AZURE_CLIENT_SECRET"]
        added = self.ad("credential", "reset", "--id", self.srv.env["AZURE_CLIENT_ID"],
                        "--append")["password"]
        self.srv.stop()
        # As an earlier release left it: no record of the secrets bootstrap issued.
        db = sqlite3.connect(os.path.join(self.srv.data_dir, "coffer.db"))
        try:
            with db:
                db.execute("DELETE FROM meta WHERE key = 'admin_env_secret_key_ids'")
        finally:
            db.close()
        os.remove(self.srv.dev_env_path)
        self.srv.start()
        second = self.srv.env["AZURE_CLIENT_SECRET"]
        self.assertTrue(self.secret_works(second))
        self.assertFalse(self.secret_works(first))
        self.assertFalse(self.secret_works(added))
        self.assertEqual(parse_env_file(read_text(self.srv.dev_env_path))["AZURE_CLIENT_SECRET"],
                         second)


class DirectoryBadInputTests(DirectoryTestCase):

    def test_malformed_requests_get_graph_errors_and_change_nothing(self):
        before = self.graph("GET", "").json()["value"]
        for body in ("", "[]", "{", json.dumps({"displayName": 5}), json.dumps({})):
            r = self.graph("POST", "", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json()["error"]["code"], "Request_BadRequest")
        self.assertEqual(self.graph("POST", "", json.dumps({"displayName": ""})).status, 400)
        self.assertEqual(self.graph("POST", "", json.dumps({"displayName": "x" * 121})).status,
                         400)
        self.assertEqual(self.graph("GET", "").json()["value"], before)

    def test_unknown_ids_and_paths_get_404(self):
        self.assertEqual(self.graph("GET", "/00000000-0000-0000-0000-000000000000").status, 404)
        self.assertEqual(self.graph("DELETE", "/nope").status, 404)
        r = self.graph("POST", "/nope/addPassword", json.dumps({}))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["code"], "Request_ResourceNotFound")

    def test_bad_password_credentials_are_refused(self):
        sp = self.ad("create-for-rbac", "--name", "bad-creds")
        oid = self.ad("show", "--id", sp["appId"])["id"]
        for cred in ({"endDateTime": "yesterday"}, {"endDateTime": "2001-01-01T00:00:00Z"},
                     {"endDateTime": "2999-01-01T00:00:00Z"}, {"endDateTime": 5}):
            r = self.graph("POST", f"/{oid}/addPassword",
                           json.dumps({"passwordCredential": cred}))
            self.assertEqual(r.status, 400, (cred, r))
        r = self.graph("POST", f"/{oid}/removePassword", json.dumps({"keyId": "nope"}))
        self.assertEqual(r.status, 404, r)
        self.assertEqual(len(self.ad("show", "--id", oid)["passwordCredentials"]), 1)

    def test_unauthenticated_and_vault_tokens_are_refused(self):
        r = self.srv.request("GET", "/v1.0/servicePrincipals", host="localhost", auth=False)
        self.assertEqual(r.status, 401, r)
        r = self.graph("GET", "", token=self.srv.token(self.srv.vault_resource))
        self.assertEqual(r.status, 401, r)

    def test_years_out_of_range_is_a_usage_error_and_creates_nothing(self):
        before = len(self.ad("list"))
        self.ad("create-for-rbac", "--name", "x", "--years", "11", expect=2)
        self.ad("create", "--display-name", "x", "--years", "0", expect=2)
        self.assertEqual(len(self.ad("list")), before)

    def test_create_with_display_name_and_years(self):
        sp = self.ad("create", "--display-name", "two-years", "--years", "2")
        self.assertEqual(sp["displayName"], "two-years")
        shown = self.ad("show", "--id", sp["appId"])
        self.assertEqual(len(shown["passwordCredentials"]), 1)
        self.assertEqual(shown["passwordCredentials"][0]["hint"], sp["password"][:3])
        self.assertGreater(shown["passwordCredentials"][0]["endDateTime"][:4],
                           shown["passwordCredentials"][0]["startDateTime"][:4])
        self.assertEqual(self.token_for(sp["appId"], sp["password"]).status, 200)


class GraphLookupTests(DirectoryTestCase):
    """The lookups az makes: a principal by client id ($filter), objects by id (getByIds) and
    /me, which an application's token has none of."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sps = [cls.coffer_json("ad", "sp", "create-for-rbac", "--name", f"lookup-{i}")
                   for i in range(3)]
        cls.oids = [cls.coffer_json("ad", "sp", "show", "--id", sp["appId"])["id"]
                    for sp in cls.sps]
        cls.mi = cls.coffer_json("identity", "create", "-n", "lookup-mi", "-g", "rg-lookup")

    def filtered(self, odata_filter, token=None):
        return self.graph("GET", "?" + urllib.parse.urlencode({"$filter": odata_filter}),
                          token=token)

    def test_the_filter_finds_the_principal_of_a_client_id(self):
        for i in (2, 0, 1):
            for odata_filter in (f"servicePrincipalNames/any(c:c eq '{self.sps[i]['appId']}')",
                                 f"servicePrincipalNames/any( x : x eq '{self.sps[i]['appId']}' )",
                                 f"appId eq '{self.sps[i]['appId']}'"):
                with self.subTest(odata_filter=odata_filter):
                    r = self.filtered(odata_filter)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual([(p["id"], p["servicePrincipalNames"])
                                      for p in r.json()["value"]],
                                     [(self.oids[i], [self.sps[i]["appId"]])])
        r = self.filtered(f"servicePrincipalNames/any(c:c eq '{self.mi['clientId']}')")
        self.assertEqual([(p["id"], p["servicePrincipalType"]) for p in r.json()["value"]],
                         [(self.mi["principalId"], "ManagedIdentity")], r)
        r = self.filtered("servicePrincipalNames/any(c:c eq '00000000-0000-0000-0000-000000000000')")
        self.assertEqual((r.status, r.json()["value"]), (200, []), r)

    def test_a_filter_not_understood_is_refused_not_ignored(self):
        for odata_filter in ("displayName eq 'lookup-0'", "servicePrincipalNames/any(c:c eq x)",
                             "appId eq 'a' or appId eq 'b'", "servicePrincipalNames/any(c:d eq 'a')"):
            with self.subTest(odata_filter=odata_filter):
                self.assertErrorBody(self.filtered(odata_filter), 400, "Request_UnsupportedQuery")

    def test_get_by_ids_names_each_objects_type(self):
        ids = [self.oids[1], "00000000-0000-0000-0000-000000000000", self.mi["principalId"]]
        r = self.srv.request("POST", "/v1.0/directoryObjects/getByIds",
                             {"ids": ids, "types": ["user", "group", "servicePrincipal"]},
                             host="localhost", token=self.srv.token(self.srv.mgmt_resource))
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(o["id"], o["@odata.type"]) for o in r.json()["value"]],
                         [(self.oids[1], "#microsoft.graph.servicePrincipal"),
                          (self.mi["principalId"], "#microsoft.graph.servicePrincipal")])
        r = self.srv.request("POST", "/v1.0/directoryObjects/getByIds",
                             {"ids": ids, "types": ["user"]}, host="localhost",
                             token=self.srv.token(self.srv.mgmt_resource))
        self.assertEqual(r.json()["value"], [], r)
        for body in ({}, {"ids": "x"}, {"ids": [1]}, {"ids": ["x"] * 1001}):
            with self.subTest(body=body):
                r = self.srv.request("POST", "/v1.0/directoryObjects/getByIds", body,
                                     host="localhost", token=self.srv.token(self.srv.mgmt_resource))
                self.assertErrorBody(r, 400, "Request_BadRequest")

    def test_lookups_are_for_administrators_and_me_is_400_for_anyone(self):
        nobody = self.token_for(self.sps[0]["appId"], self.sps[0]["password"],
                                self.srv.mgmt_resource).json()["access_token"]
        r = self.filtered(f"appId eq '{self.sps[1]['appId']}'", token=nobody)
        self.assertErrorBody(r, 403, "Authorization_RequestDenied")
        r = self.srv.request("POST", "/v1.0/directoryObjects/getByIds", {"ids": self.oids},
                             host="localhost", token=nobody)
        self.assertErrorBody(r, 403, "Authorization_RequestDenied")
        for token in (nobody, self.srv.token(self.srv.mgmt_resource)):
            r = self.srv.request("GET", "/v1.0/me", host="localhost", token=token)
            self.assertErrorBody(r, 400, "BadRequest")


class UserAssignedIdentityTests(DirectoryTestCase):
    """`coffer identity ...` and the Microsoft.ManagedIdentity resources behind it."""

    def identity(self, *args, expect=0):
        p = subprocess.run([coffer_binary(), "identity"] + [str(a) for a in args],
                           env=self.srv.cli_env(), capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertEqual(p.returncode, expect, f"identity {args}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if expect == 0 and out.strip() else err

    def test_create_show_list_delete(self):
        created = self.identity("create", "--name", "web-id", "--resource-group", "rg-web",
                                "--tags", "app=web")
        self.assertEqual(created["name"], "web-id")
        self.assertEqual(created["resourceGroup"], "rg-web")
        self.assertEqual(created["tenantId"], self.srv.tenant)
        self.assertEqual(created["tags"], {"app": "web"})
        self.assertRegex(created["principalId"], r"^[0-9a-f-]{36}$")
        self.assertRegex(created["clientId"], r"^[0-9a-f-]{36}$")
        shown = self.identity("show", "--name", "web-id", "--resource-group", "rg-web")
        self.assertEqual(shown["principalId"], created["principalId"])
        again = self.identity("create", "--name", "web-id", "--resource-group", "rg-web")
        self.assertEqual(again["clientId"], created["clientId"], "create is idempotent")
        self.identity("create", "--name", "batch-id", "--resource-group", "rg-batch")
        self.assertEqual([i["name"] for i in self.identity("list", "--resource-group", "rg-web")],
                         ["web-id"])
        self.assertEqual(sorted(i["name"] for i in self.identity("list")), ["batch-id", "web-id"])
        self.identity("delete", "--name", "web-id", "--resource-group", "rg-web")
        err = self.identity("show", "--name", "web-id", "--resource-group", "rg-web", expect=1)
        self.assertIn("ResourceNotFound", err)
        self.assertEqual([i["name"] for i in self.identity("list")], ["batch-id"])

    def test_identities_are_not_service_principals(self):
        created = self.identity("create", "--name", "not-an-sp", "--resource-group", "rg-x")
        self.assertNotIn(created["clientId"], [p["appId"] for p in self.ad("list")])
        r = self.graph("DELETE", "/" + created["principalId"])
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.identity("show", "--name", "not-an-sp", "--resource-group", "rg-x")
                         ["principalId"], created["principalId"])
        # No client secret can be attached to a managed identity.
        r = self.graph("POST", "/" + created["principalId"] + "/addPassword", "{}")
        self.assertEqual(r.status, 404, r)

    def test_bad_names_and_bodies_are_refused(self):
        for name in ("ab", "-lead", "has space", "x" * 129):
            r = self.srv.arm("PUT", "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
                                    "userAssignedIdentities/" + name.replace(" ", "%20"),
                             {"location": "local"})
            self.assertEqual(r.status, 400, (name, r))
        path = "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ok-id"
        for body in ("[]", "{", json.dumps({"tags": []}), json.dumps({"location": 5}),
                     json.dumps({"tags": {"k": 1}})):
            r = self.srv.arm("PUT", path, body)
            self.assertEqual(r.status, 400, (body, r))
        self.assertEqual(self.srv.arm("GET", path).status, 404)
        self.assertEqual(self.srv.arm("PATCH", path, {"tags": {}}).status, 404)
        r = self.srv.arm("GET", path, api_version=None)
        self.assertEqual(r.json()["error"]["code"], "MissingApiVersionParameter")
