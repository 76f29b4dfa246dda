"""`coffer keyvault ...` against a real dev server: the newcomer's tour and every command.

The CLI runs with the server's dev.env in its environment, like a user who sourced it.
Exit codes: 0 success, 1 a request failed (`ERROR: (<code>) <message>` on stderr), 2 usage errors.
"""

import json
import os

from harness import ServerTestCase

RG = "rg1"


class CliTestCase(ServerTestCase):

    def ok(self, *args):
        """Runs the CLI, asserts exit 0 and returns the parsed JSON on stdout (or None)."""
        rc, out, err = self.srv.cli(*args)
        self.assertEqual(rc, 0, f"coffer keyvault {' '.join(map(str, args))}\n"
                                f"stdout: {out}\nstderr: {err}")
        return json.loads(out) if out.strip() else None

    def fails(self, code, *args):
        """Asserts exit 1 with `ERROR: (<code>)` on stderr; returns stderr."""
        rc, out, err = self.srv.cli(*args)
        self.assertEqual(rc, 1, f"{args}: stdout: {out}\nstderr: {err}")
        self.assertTrue(err.startswith(f"ERROR: ({code})"), f"{args}: stderr: {err!r}")
        self.assertEqual(out.strip(), "", "a failed command printed a result")
        return err

    def usage_error(self, *args):
        rc, out, err = self.srv.cli(*args)
        self.assertEqual(rc, 2, f"usage error should exit 2: {args}\nstdout: {out}\nstderr: {err}")
        self.assertTrue(err.strip(), "a usage error printed nothing on stderr")
        return err

    def secret(self, *args):
        return self.ok("secret", *args)


class ReadmeTourTests(CliTestCase):
    """README.md "A quick tour", CLI steps in order (the SDK steps live in tests/sdk-*)."""

    def test_readme_tour_set_show_list_then_create_and_list_vaults(self):
        dev = ("--vault-name", "dev")
        created = self.secret("set", *dev, "--name", "db-password", "--value", "correct horse")
        self.assertEqual(created["value"], "correct horse")
        self.assertRegex(created["id"], r"^https://dev\.vault\.localhost:%d/secrets/db-password/"
                                        r"[0-9a-f]{32}$" % self.srv.port)
        self.assertEqual(self.secret("show", *dev, "--name", "db-password")["value"],
                         "correct horse")
        listed = {i["id"]: i for i in self.secret("list", *dev)}
        item = listed.get(f"https://dev.vault.localhost:{self.srv.port}/secrets/db-password")
        self.assertIsNotNone(item, list(listed))
        self.assertNotIn("value", item)

        vault = self.ok("create", "--name", "team-a", "--resource-group", RG,
                        "--retention-days", "30")
        self.assertEqual(vault["name"], "team-a")
        self.assertEqual(vault["properties"]["softDeleteRetentionInDays"], 30)
        self.assertEqual(vault["properties"]["vaultUri"],
                         f"https://team-a.vault.localhost:{self.srv.port}/")
        self.assertTrue({"dev", "team-a"} <= {v["name"] for v in self.ok("list")})

    def test_newcomer_rotates_deletes_and_recovers_a_secret(self):
        dev = ("--vault-name", "dev")
        self.secret("set", *dev, "--name", "api-key", "--value", "first")
        self.secret("set", *dev, "--name", "api-key", "--value", "rotated")
        self.assertEqual(len(self.secret("list-versions", *dev, "--name", "api-key")), 2)
        self.assertEqual(self.secret("show", *dev, "--name", "api-key")["value"], "rotated")
        self.secret("delete", *dev, "--name", "api-key")
        self.fails("SecretNotFound", "secret", "show", *dev, "--name", "api-key")
        self.secret("recover", *dev, "--name", "api-key")
        self.assertEqual(self.secret("show", *dev, "--name", "api-key")["value"], "rotated")


class VaultCommandTests(CliTestCase):

    def test_vault_create_show_update_list_delete_in_rg1(self):
        v = self.ok("create", "--name", "second", "--resource-group", RG, "--retention-days", "7",
                    "--tags", "env=test")
        self.assertEqual(v["name"], "second")
        self.assertIn(f"/resourceGroups/{RG}/", v["id"])
        self.assertEqual(v["properties"]["softDeleteRetentionInDays"], 7)
        self.assertNotIn("enablePurgeProtection", v["properties"])
        self.assertEqual(v["properties"]["vaultUri"],
                         f"https://second.vault.localhost:{self.srv.port}/")
        self.assertEqual(v["tags"], {"env": "test"})

        shown = self.ok("show", "--name", "second", "--resource-group", RG)
        self.assertEqual(shown["properties"]["softDeleteRetentionInDays"], 7)
        self.assertEqual(self.ok("show", "--name", "second")["id"], shown["id"],
                         "show without --resource-group finds the vault by name")

        updated = self.ok("update", "--name", "second", "--resource-group", RG,
                          "--enable-purge-protection", "true", "--tags", "env=prod", "owner=me")
        self.assertTrue(updated["properties"]["enablePurgeProtection"])
        self.assertEqual(updated["tags"], {"env": "prod", "owner": "me"})
        shown = self.ok("show", "--name", "second", "-g", RG)
        self.assertTrue(shown["properties"]["enablePurgeProtection"])
        self.assertEqual(shown["tags"], {"env": "prod", "owner": "me"})
        self.assertEqual(shown["properties"]["softDeleteRetentionInDays"], 7)

        self.assertEqual([x["name"] for x in self.ok("list", "--resource-group", RG)], ["second"])
        self.assertEqual(sorted(x["name"] for x in self.ok("list")), ["dev", "second"])

        # The new vault serves secrets at its own host name.
        self.secret("set", "--vault-name", "second", "--name", "in-second", "--value", "2nd")
        self.assertEqual(
            self.secret("show", "--vault-name", "second", "--name", "in-second")["value"], "2nd")
        self.fails("SecretNotFound", "secret", "show", "--vault-name", "dev", "--name", "in-second")

        self.assertIsNone(self.ok("delete", "--name", "second", "--resource-group", RG))
        self.fails("ResourceNotFound", "show", "--name", "second", "--resource-group", RG)
        self.fails("ResourceNotFound", "show", "--name", "second")
        self.assertEqual(self.ok("list", "--resource-group", RG), [])

    def test_vault_create_with_purge_protection_flag(self):
        v = self.ok("create", "-n", "ppcli", "-g", RG, "--enable-purge-protection")
        self.assertTrue(v["properties"]["enablePurgeProtection"])
        self.assertEqual(v["properties"]["softDeleteRetentionInDays"], 90)

    def test_vault_errors_exit_1_with_the_server_code(self):
        self.fails("VaultNameNotValid", "create", "--name", "a--b", "--resource-group", RG)
        self.fails("BadRequest", "create", "--name", "shortret", "--resource-group", RG,
                   "--retention-days", "5")
        self.fails("ResourceNotFound", "show", "--name", "nosuchvault", "--resource-group", RG)


class SecretCommandTests(CliTestCase):
    DEV = ("--vault-name", "dev")

    def test_set_and_show_round_trip_an_awkward_value(self):
        value = 'spaces  and "quotes" \\ back\tslash; $HOME `x` ünïcødé ✓ \u2028 end'
        out = self.secret("set", *self.DEV, "-n", "awkward", "--value", value)
        self.assertEqual(out["value"], value)
        self.assertEqual(self.secret("show", *self.DEV, "-n", "awkward")["value"], value)

    def test_set_from_file_stores_the_file_content_exactly(self):
        content = "-----BEGIN KEY-----\nline one\nline two\n\n  indented\r\nlast line\n"
        path = os.path.join(self.srv.root, "value.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(content)
        self.secret("set", *self.DEV, "--name", "from-file", "--file", path)
        self.assertEqual(self.secret("show", *self.DEV, "--name", "from-file")["value"], content)

    def test_set_from_a_file_that_is_not_utf8_fails_instead_of_storing_altered_bytes(self):
        content = b"\xff\xfebinary\x00data\xc3"
        path = os.path.join(self.srv.root, "value.bin")
        with open(path, "wb") as f:
            f.write(content)
        rc, out, err = self.srv.cli("secret", "set", *self.DEV, "--name", "binary", "--file", path)
        stored = self.srv.kv("GET", "/secrets/binary")
        self.assertNotEqual(rc, 0, "a file a JSON string cannot carry was accepted; the server "
                            f"now holds {stored.json().get('value')!r} instead of {content!r}")
        self.assertTrue(err.startswith("ERROR:"), err)
        self.assertEqual(stored.status, 404, "a refused --file still stored a secret")

    def test_set_with_tags_content_type_and_expiry(self):
        out = self.secret("set", *self.DEV, "--name", "tagged", "--value", "v", "--tags", "a=b",
                          "c=d=e", "--content-type", "text/plain", "--expires",
                          "2030-01-01T00:00:00Z", "--not-before", "2020-01-01T00:00:00Z")
        self.assertEqual(out["tags"], {"a": "b", "c": "d=e"})
        shown = self.secret("show", *self.DEV, "--name", "tagged")
        self.assertEqual(shown["tags"], {"a": "b", "c": "d=e"})
        self.assertEqual(shown["contentType"], "text/plain")
        self.assertEqual(shown["attributes"]["exp"], 1893456000)
        self.assertEqual(shown["attributes"]["nbf"], 1577836800)

    def test_list_shows_ids_and_attributes_but_no_values(self):
        self.secret("set", *self.DEV, "--name", "listed-a", "--value", "value-a")
        self.secret("set", *self.DEV, "--name", "listed-b", "--value", "value-b")
        items = self.secret("list", *self.DEV)
        names = [i["id"].rsplit("/", 1)[1] for i in items]
        self.assertIn("listed-a", names)
        self.assertIn("listed-b", names)
        for item in items:
            self.assertNotIn("value", item)
            self.assertIn("attributes", item)

    def test_output_formats_json_tsv_table_none(self):
        self.secret("set", *self.DEV, "--name", "shown-as", "--value", "value-a",
                    "--content-type", "text/plain")
        args = ("secret", "show", *self.DEV, "--name", "shown-as")
        shown = self.ok(*args, "-o", "json")
        self.assertEqual(shown["value"], "value-a")
        # tsv: the members' values in key order, tab-separated (objects empty), as az.
        rc, out, err = self.srv.cli(*args, "-o", "tsv")
        self.assertEqual(rc, 0, err)
        keys = sorted(shown)
        fields = out.rstrip("\n").split("\t")
        self.assertEqual(len(fields), len(keys), out)
        self.assertEqual(fields[keys.index("value")], "value-a")
        self.assertEqual(fields[keys.index("contentType")], "text/plain")
        self.assertEqual(fields[keys.index("attributes")], "")
        # table: the scalar members as columns under a dashed rule; one row per item of a list.
        rc, out, err = self.srv.cli("secret", "list", *self.DEV, "-o", "table")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertIn("Id", lines[0].split())
        self.assertEqual(set(lines[1].replace(" ", "")), {"-"})
        self.assertTrue(any(w.endswith("/secrets/shown-as") for line in lines[2:]
                            for w in line.split()), out)
        rc, out, err = self.srv.cli(*args, "--output", "none")
        self.assertEqual((rc, out), (0, ""), err)

    def test_list_follows_paging_to_the_end(self):
        for i in range(7):
            self.secret("set", *self.DEV, "--name", f"page-{i}", "--value", str(i))
        names = [i["id"].rsplit("/", 1)[1] for i in
                 self.secret("list", *self.DEV, "--maxresults", "2")]
        self.assertEqual(len(names), len(set(names)), "paging repeated items")
        self.assertTrue({f"page-{i}" for i in range(7)} <= set(names), names)

    def test_versions_are_listed_and_each_version_is_readable(self):
        ids = []
        for v in ("one", "two", "three"):
            ids.append(self.secret("set", *self.DEV, "--name", "versioned", "--value", v)["id"])
        listed = self.secret("list-versions", *self.DEV, "--name", "versioned")
        self.assertEqual(sorted(i["id"] for i in listed), sorted(ids))
        paged = self.secret("list-versions", *self.DEV, "--name", "versioned", "--maxresults", "1")
        self.assertEqual(sorted(i["id"] for i in paged), sorted(ids))
        for value, sid in zip(("one", "two", "three"), ids):
            version = sid.rsplit("/", 1)[1]
            self.assertEqual(self.secret("show", *self.DEV, "--name", "versioned", "--version",
                                         version)["value"], value)
            self.assertEqual(self.secret("show", "--id", sid)["value"], value)
        self.assertEqual(self.secret("show", *self.DEV, "--name", "versioned")["value"], "three")

    def test_set_attributes_disables_enables_and_retags(self):
        self.secret("set", *self.DEV, "--name", "attrs", "--value", "v", "--tags", "old=1")
        out = self.secret("set-attributes", *self.DEV, "--name", "attrs", "--enabled", "false")
        self.assertFalse(out["attributes"]["enabled"])
        self.assertNotIn("value", out)
        self.fails("Forbidden", "secret", "show", *self.DEV, "--name", "attrs")
        out = self.secret("set-attributes", *self.DEV, "--name", "attrs", "--enabled", "true",
                          "--tags", "new=2", "--content-type", "application/json", "--expires",
                          "2031-01-01T00:00:00Z")
        self.assertTrue(out["attributes"]["enabled"])
        shown = self.secret("show", *self.DEV, "--name", "attrs")
        self.assertEqual(shown["value"], "v")
        self.assertEqual(shown["tags"], {"new": "2"})
        self.assertEqual(shown["contentType"], "application/json")
        self.assertEqual(shown["attributes"]["exp"], 1924992000)
        self.assertEqual(len(self.secret("list-versions", *self.DEV, "--name", "attrs")), 1,
                         "set-attributes must not create a version")

    def test_soft_delete_show_deleted_recover_delete_purge(self):
        self.secret("set", *self.DEV, "--name", "cycle", "--value", "round")
        deleted = self.secret("delete", *self.DEV, "--name", "cycle")
        self.assertEqual(deleted["recoveryId"],
                         f"https://dev.vault.localhost:{self.srv.port}/deletedsecrets/cycle")
        self.assertIn("scheduledPurgeDate", deleted)
        self.fails("SecretNotFound", "secret", "show", *self.DEV, "--name", "cycle")
        self.assertIn("cycle", [i["id"].rsplit("/", 1)[1]
                                for i in self.secret("list-deleted", *self.DEV)])
        shown = self.secret("show-deleted", *self.DEV, "--name", "cycle")
        self.assertEqual(shown["recoveryId"], deleted["recoveryId"])
        self.assertNotIn("value", shown)
        recovered = self.secret("recover", *self.DEV, "--name", "cycle")
        self.assertEqual(recovered["id"].split("/")[4], "cycle")
        self.assertEqual(self.secret("show", *self.DEV, "--name", "cycle")["value"], "round")
        self.fails("SecretNotFound", "secret", "show-deleted", *self.DEV, "--name", "cycle")

        self.secret("delete", *self.DEV, "--name", "cycle")
        self.assertIsNone(self.secret("purge", *self.DEV, "--name", "cycle"))
        self.fails("SecretNotFound", "secret", "show-deleted", *self.DEV, "--name", "cycle")
        self.fails("SecretNotFound", "secret", "recover", *self.DEV, "--name", "cycle")
        self.assertNotIn("cycle", [i["id"].rsplit("/", 1)[1]
                                   for i in self.secret("list-deleted", *self.DEV)])
        self.secret("set", *self.DEV, "--name", "cycle", "--value", "reborn")
        self.assertEqual(len(self.secret("list-versions", *self.DEV, "--name", "cycle")), 1)

    def test_backup_to_file_delete_purge_restore_brings_the_value_back(self):
        self.secret("set", *self.DEV, "--name", "saved", "--value", "first-of-two")
        self.secret("set", *self.DEV, "--name", "saved", "--value", "precious-value",
                    "--tags", "k=v")
        path = os.path.join(self.srv.root, "saved.backup")
        self.assertIsNone(self.secret("backup", *self.DEV, "--name", "saved", "--file", path))
        with open(path, "rb") as f:
            blob = f.read()
        self.assertGreater(len(blob), 0)
        self.assertNotIn(b"precious-value", blob, "backup file holds the value in plaintext")
        self.secret("delete", *self.DEV, "--name", "saved")
        self.secret("purge", *self.DEV, "--name", "saved")
        self.fails("SecretNotFound", "secret", "show", *self.DEV, "--name", "saved")
        restored = self.secret("restore", *self.DEV, "--file", path)
        self.assertEqual(restored["id"].split("/")[4], "saved")
        shown = self.secret("show", *self.DEV, "--name", "saved")
        self.assertEqual(shown["value"], "precious-value")
        self.assertEqual(shown["tags"], {"k": "v"})
        self.assertEqual(len(self.secret("list-versions", *self.DEV, "--name", "saved")), 2)
        self.fails("Conflict", "secret", "restore", *self.DEV, "--file", path)

    def test_missing_secret_exits_1_with_secret_not_found(self):
        for verb in ("show", "delete", "list-versions", "backup", "set-attributes"):
            args = [verb, *self.DEV, "--name", "does-not-exist"]
            if verb == "backup":
                args += ["--file", os.path.join(self.srv.root, "nothing.backup")]
            with self.subTest(verb=verb):
                self.fails("SecretNotFound", "secret", *args)
        for verb in ("show-deleted", "recover", "purge"):
            with self.subTest(verb=verb):
                self.fails("SecretNotFound", "secret", verb, *self.DEV, "--name", "does-not-exist")

    def test_server_side_validation_errors_exit_1_with_bad_parameter(self):
        self.fails("BadParameter", "secret", "set", *self.DEV, "--name", "bad_name", "--value", "x")
        self.fails("BadParameter", "secret", "set", *self.DEV, "--name", "big", "--value",
                   "x" * (25 * 1024 + 1))

    def test_wrong_client_secret_exits_1(self):
        rc, out, err = self.srv.cli("secret", "list", *self.DEV,
                                    env={"AZURE_CLIENT_SECRET": "not-the-secret"})
        self.assertEqual(rc, 1, (out, err))
        self.assertTrue(err.startswith("ERROR:"), err)
        self.assertEqual(out, "")
        self.assertNotIn("not-the-secret", err)


class UsageErrorTests(CliTestCase):
    DEV = ("--vault-name", "dev")

    def test_missing_name_exits_2(self):
        self.usage_error("secret", "show", *self.DEV)
        self.usage_error("secret", "set", *self.DEV, "--value", "x")

    def test_value_and_file_together_or_neither_exit_2(self):
        self.usage_error("secret", "set", *self.DEV, "--name", "x")
        self.usage_error("secret", "set", *self.DEV, "--name", "x", "--value", "v", "--file",
                         "/etc/hostname")

    def test_unreadable_value_file_exits_2(self):
        self.usage_error("secret", "set", *self.DEV, "--name", "x", "--file",
                         os.path.join(self.srv.root, "no-such-file"))

    def test_bad_flag_values_exit_2(self):
        self.usage_error("secret", "set", *self.DEV, "--name", "x", "--value", "v", "--expires",
                         "next tuesday")
        self.usage_error("secret", "set-attributes", *self.DEV, "--name", "x", "--enabled", "maybe")
        self.usage_error("update", "--name", "dev", "--enable-purge-protection", "yes")
        self.usage_error("secret", "show", "--id", "http://dev.vault.localhost/keys/x")

    def test_missing_vault_exits_2(self):
        self.usage_error("secret", "show", "--name", "x")

    def test_unknown_subcommand_or_option_exits_2(self):
        for args in (("secret", "frobnicate"), ("secret", "show", *self.DEV, "--name", "x",
                                                "--bogus"), ("secret",), ()):
            with self.subTest(args=args):
                self.usage_error(*args)

    def test_an_unknown_command_is_named(self):
        for args, group, word in ((("secret", "download"), "coffer keyvault secret", "download"),
                                  (("secrets", "list"), "coffer keyvault", "secrets")):
            with self.subTest(args=args):
                err = self.usage_error(*args)
                self.assertEqual(err.strip(), f"ERROR: '{word}' is not in the '{group}' command "
                                              f"group. See '{group} --help'.")

    def test_a_bad_output_format_exits_2(self):
        err = self.usage_error("list", "-o", "yaml")
        self.assertIn("yaml", err)

    def test_missing_required_option_or_malformed_number_exits_2(self):
        for args in (("create", "--name", "needs-rg"),
                     ("secret", "backup", *self.DEV, "--name", "x"),
                     ("create", "--name", "v", "-g", RG, "--retention-days", "seven"),
                     ("secret", "list", *self.DEV, "--maxresults", "many")):
            with self.subTest(args=args):
                self.usage_error(*args)

    def test_usage_errors_send_no_request(self):
        before = self.srv.kv("GET", "/secrets").body
        self.usage_error("secret", "set", *self.DEV, "--name", "never", "--value", "v", "--file",
                         "/etc/hostname")
        self.assertEqual(self.srv.kv("GET", "/secrets").body, before)


class DeletedVaultCommandTests(CliTestCase):
    """`keyvault delete` soft-deletes; `list-deleted`, `recover` and `purge` act on it."""

    def test_deleted_vault_is_listed_recovered_with_its_secrets_then_purged(self):
        self.ok("create", "--name", "comeback", "--resource-group", "rg-del", "--retention-days", "7")
        self.secret("set", "--vault-name", "comeback", "--name", "kept", "--value", "still-here")
        self.assertIsNone(self.ok("delete", "--name", "comeback"))
        self.assertNotIn("comeback", [v["name"] for v in self.ok("list")])
        deleted = {v["name"]: v for v in self.ok("list-deleted")}
        self.assertIn("comeback", deleted)
        self.assertTrue(deleted["comeback"]["properties"]["vaultId"].endswith(
            "/resourceGroups/rg-del/providers/Microsoft.KeyVault/vaults/comeback"))
        self.fails("ConflictError", "create", "--name", "comeback", "--resource-group", "rg-del")
        recovered = self.ok("recover", "--name", "comeback")
        self.assertEqual(recovered["properties"]["softDeleteRetentionInDays"], 7)
        self.assertEqual(self.secret("show", "--vault-name", "comeback", "--name", "kept")["value"],
                         "still-here")
        self.assertIsNone(self.ok("delete", "--name", "comeback"))
        self.assertIsNone(self.ok("purge", "--name", "comeback"))
        self.assertNotIn("comeback", [v["name"] for v in self.ok("list-deleted")])
        self.fails("DeletedVaultNotFound", "recover", "--name", "comeback")

    def test_purge_protected_deleted_vault_cannot_be_purged(self):
        self.ok("create", "--name", "held-vault", "--resource-group", "rg-del",
                "--enable-purge-protection")
        self.ok("delete", "--name", "held-vault")
        self.fails("Conflict", "purge", "--name", "held-vault")
        self.assertIn("held-vault", [v["name"] for v in self.ok("list-deleted")])
