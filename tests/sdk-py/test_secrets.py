"""Conformance of the official azure-keyvault-secrets + azure-identity clients (Debian python3-azure) with Coffer.

One real `coffer server --dev` process serves the whole module.  The clients are configured the way a
user would configure them against a private endpoint: the vault URL, the server's CA
(connection_verify), the authority and instance_discovery=False.  No challenge-resource verification
opt-out (verify_challenge_resource=False) and no TLS verification opt-out is used anywhere.

Run with Debian's interpreter, which has the azure packages:
    COFFER_BIN=build/coffer /usr/bin/python3 -m unittest discover -v -s tests/sdk-py
"""

import datetime
import os
import sys
import unittest
import uuid

from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError)
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)

POLL = {"_polling_interval": 0.05}
UTC = datetime.timezone.utc

SERVER = None
CREDENTIAL = None
CLIENT = None
# Every secret value (and credential) the suite hands to the server; none may show up in its logs.
SENSITIVE = set()


def setUpModule():
    global SERVER, CREDENTIAL, CLIENT
    SERVER = harness.launch_server()
    CREDENTIAL = make_credential(SERVER.env["AZURE_CLIENT_SECRET"])
    CLIENT = SecretClient(SERVER.vault_url, CREDENTIAL, connection_verify=SERVER.ca_path)


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


def make_credential(client_secret):
    return ClientSecretCredential(
        SERVER.env["AZURE_TENANT_ID"], SERVER.env["AZURE_CLIENT_ID"], client_secret,
        authority=SERVER.authority_host, instance_discovery=False, connection_verify=SERVER.ca_path)


def secret_value(label):
    value = f"sv-{label}-{uuid.uuid4()}"
    SENSITIVE.add(value)
    return value


def set_secret(name, label, **kwargs):
    value = secret_value(label)
    return value, CLIENT.set_secret(name, value, **kwargs)


def whole_seconds_from_now(delta):
    return (datetime.datetime.now(UTC) + delta).replace(microsecond=0)


def error_code(err):
    return getattr(getattr(err, "error", None), "code", None)


class ErrorAssertions(unittest.TestCase):
    def assertHttpError(self, exc_type, status, code, func, *args, **kwargs):
        with self.assertRaises(exc_type) as ctx:
            func(*args, **kwargs)
        err = ctx.exception
        self.assertEqual(err.status_code, status, str(err))
        if code is not None:
            self.assertEqual(error_code(err), code, str(err))
        return err

    def assertRecent(self, value, what):
        self.assertIsInstance(value, datetime.datetime, what)
        self.assertLess(abs((datetime.datetime.now(UTC) - value).total_seconds()), 300,
                        f"{what} ({value}) is close to now")


class Test01SetAndGet(ErrorAssertions):
    NAME = "greeting"

    def test_1_dev_vault_url_is_dev_vault_localhost_with_the_port(self):
        self.assertEqual(SERVER.vault_url, f"https://dev.vault.localhost:{SERVER.port}")
        self.assertEqual(SERVER.authority_host, f"https://localhost:{SERVER.port}")
        self.assertEqual(CLIENT.vault_url, SERVER.vault_url)

    def test_2_set_secret_stores_value_content_type_tags_enabled_and_get_returns_them_with_ids_on_the_vault_host(self):
        tags = {"team": "platform", "purpose": "sdk-test"}
        value, s = set_secret(self.NAME, "greeting-1", content_type="text/plain", tags=tags, enabled=True)
        type(self).first = (value, s)
        self.assertEqual(s.name, self.NAME)
        self.assertEqual(s.value, value)
        self.assertEqual(s.properties.content_type, "text/plain")
        self.assertEqual(s.properties.tags, tags)
        self.assertIs(s.properties.enabled, True)
        self.assertTrue(s.properties.version)
        self.assertEqual(s.properties.vault_url, SERVER.vault_url)
        self.assertEqual(s.id, f"{SERVER.vault_url}/secrets/{self.NAME}/{s.properties.version}")

        got = CLIENT.get_secret(self.NAME)
        self.assertEqual(got.value, value)
        self.assertEqual(got.name, self.NAME)
        self.assertEqual(got.properties.version, s.properties.version)
        self.assertEqual(got.properties.content_type, "text/plain")
        self.assertEqual(got.properties.tags, tags)
        self.assertIs(got.properties.enabled, True)
        self.assertEqual(got.id, s.id)
        self.assertTrue(got.id.startswith(f"https://dev.vault.localhost:{SERVER.port}/secrets/"))
        self.assertRecent(got.properties.created_on, "created_on")
        self.assertRecent(got.properties.updated_on, "updated_on")
        self.assertLessEqual(got.properties.created_on, got.properties.updated_on)

    def test_3_get_secret_with_an_explicit_version_returns_that_version(self):
        value, s = self.first
        got = CLIENT.get_secret(self.NAME, s.properties.version)
        self.assertEqual(got.value, value)
        self.assertEqual(got.properties.version, s.properties.version)
        self.assertEqual(got.id, f"{SERVER.vault_url}/secrets/{self.NAME}/{s.properties.version}")

    def test_4_a_second_set_becomes_the_latest_version_and_the_first_stays_readable(self):
        first_value, first = self.first
        second_value, second = set_secret(self.NAME, "greeting-2")
        self.assertNotEqual(second.properties.version, first.properties.version)
        latest = CLIENT.get_secret(self.NAME)
        self.assertEqual(latest.value, second_value)
        self.assertEqual(latest.properties.version, second.properties.version)
        old = CLIENT.get_secret(self.NAME, first.properties.version)
        self.assertEqual(old.value, first_value)
        self.assertEqual(old.properties.content_type, "text/plain")


class Test02UpdateProperties(ErrorAssertions):
    def test_update_secret_properties_disables_a_version_and_sets_tags_content_type_expires_on_and_not_before(self):
        name = "updatable"
        value, s = set_secret(name, "updatable", content_type="text/plain", tags={"a": "1"})
        version = s.properties.version
        not_before = whole_seconds_from_now(datetime.timedelta(hours=-1))
        expires_on = whole_seconds_from_now(datetime.timedelta(days=1))
        tags = {"env": "test", "owner": "sdk-py"}

        updated = CLIENT.update_secret_properties(name, version, enabled=False, tags=tags,
                                                  content_type="application/json", expires_on=expires_on,
                                                  not_before=not_before)
        self.assertEqual(updated.version, version)
        self.assertIs(updated.enabled, False)
        self.assertEqual(updated.tags, tags)
        self.assertEqual(updated.content_type, "application/json")
        self.assertEqual(updated.expires_on, expires_on)
        self.assertEqual(updated.not_before, not_before)
        self.assertGreaterEqual(updated.updated_on, s.properties.updated_on)

        # Read back through the versions listing (a disabled version's value is not served).
        listed = [p for p in CLIENT.list_properties_of_secret_versions(name) if p.version == version]
        self.assertEqual(len(listed), 1)
        self.assertIs(listed[0].enabled, False)
        self.assertEqual(listed[0].tags, tags)
        self.assertEqual(listed[0].content_type, "application/json")
        self.assertEqual(listed[0].expires_on, expires_on)
        self.assertEqual(listed[0].not_before, not_before)

        # Re-enable: the value is unchanged and the other properties were kept.
        self.assertIs(CLIENT.update_secret_properties(name, version, enabled=True).enabled, True)
        got = CLIENT.get_secret(name, version)
        self.assertEqual(got.value, value)
        self.assertIs(got.properties.enabled, True)
        self.assertEqual(got.properties.tags, tags)
        self.assertEqual(got.properties.content_type, "application/json")
        self.assertEqual(got.properties.expires_on, expires_on)
        self.assertEqual(got.properties.not_before, not_before)

    def test_update_secret_properties_without_a_version_updates_the_latest_version_only(self):
        name = "versionless-update"
        _, older = set_secret(name, "vu-1", tags={"gen": "1"})
        _, latest = set_secret(name, "vu-2", tags={"gen": "2"})
        updated = CLIENT.update_secret_properties(name, tags={"gen": "2", "patched": "yes"},
                                                  content_type="text/markdown")
        self.assertEqual(updated.version, latest.properties.version)
        self.assertEqual(updated.tags, {"gen": "2", "patched": "yes"})
        self.assertEqual(CLIENT.get_secret(name).properties.content_type, "text/markdown")
        old = CLIENT.get_secret(name, older.properties.version)
        self.assertEqual(old.properties.tags, {"gen": "1"})
        self.assertIsNone(old.properties.content_type)

    def test_update_secret_properties_with_only_tags_leaves_enabled_and_content_type_unchanged(self):
        name = "updatable"
        _, s = set_secret(name, "updatable-2", content_type="text/csv")
        version = s.properties.version
        CLIENT.update_secret_properties(name, version, enabled=False)
        updated = CLIENT.update_secret_properties(name, version, tags={"only": "tags"})
        self.assertEqual(updated.tags, {"only": "tags"})
        self.assertIs(updated.enabled, False)
        self.assertEqual(updated.content_type, "text/csv")


class Test03Listing(ErrorAssertions):
    PREFIX = "paged-"
    NAMES = [f"paged-{i:02d}" for i in range(32)]

    @classmethod
    def setUpClass(cls):
        for name in cls.NAMES:
            set_secret(name, name)

    def test_list_properties_of_secrets_with_max_page_size_10_returns_3_plus_pages_of_at_most_10_with_every_secret_once(self):
        pages = [list(page) for page in CLIENT.list_properties_of_secrets(max_page_size=10).by_page()]
        self.assertGreaterEqual(len(pages), 3)
        for page in pages:
            self.assertLessEqual(len(page), 10)
        items = [p for page in pages for p in page]
        names = [p.name for p in items]
        self.assertEqual(sorted(n for n in names if n.startswith(self.PREFIX)), self.NAMES)
        self.assertEqual(len(set(names)), len(names), "no secret appears twice")
        for p in items:
            self.assertEqual(p.id, f"{SERVER.vault_url}/secrets/{p.name}")

    def test_list_properties_of_secrets_without_max_page_size_returns_pages_of_at_most_25(self):
        pages = [list(page) for page in CLIENT.list_properties_of_secrets().by_page()]
        self.assertGreaterEqual(len(pages), 2)
        for page in pages:
            self.assertLessEqual(len(page), 25)
        names = [p.name for page in pages for p in page]
        self.assertEqual(sorted(n for n in names if n.startswith(self.PREFIX)), self.NAMES)

    def test_list_properties_of_secret_versions_lists_every_version_with_its_id(self):
        name = "versioned"
        versions = [set_secret(name, f"versioned-{i}")[1].properties.version for i in range(4)]
        pages = [list(p) for p in CLIENT.list_properties_of_secret_versions(name, max_page_size=3).by_page()]
        self.assertGreaterEqual(len(pages), 2)
        listed = [p for page in pages for p in page]
        self.assertEqual(sorted(p.version for p in listed), sorted(versions))
        for p in listed:
            self.assertEqual(p.name, name)
            self.assertEqual(p.id, f"{SERVER.vault_url}/secrets/{name}/{p.version}")


class Test04SoftDeleteRecoverPurge(ErrorAssertions):
    NAME = "lifecycle"

    @classmethod
    def setUpClass(cls):
        cls.value, _ = set_secret(cls.NAME, "lifecycle")

    def test_1_begin_delete_secret_completes_and_get_deleted_secret_reports_recovery_id_deleted_date_and_purge_date(self):
        deleted = CLIENT.begin_delete_secret(self.NAME, **POLL)
        deleted.wait()
        result = deleted.result()
        self.assertEqual(result.name, self.NAME)
        self.assertEqual(result.recovery_id, f"{SERVER.vault_url}/deletedsecrets/{self.NAME}")

        got = CLIENT.get_deleted_secret(self.NAME)
        self.assertEqual(got.name, self.NAME)
        self.assertEqual(got.recovery_id, f"{SERVER.vault_url}/deletedsecrets/{self.NAME}")
        self.assertRecent(got.deleted_date, "deleted_date")
        self.assertGreaterEqual(got.scheduled_purge_date - got.deleted_date, datetime.timedelta(days=7, minutes=-1))
        self.assertRegex(got.properties.recovery_level or "", r"Recoverable\+Purgeable$")
        self.assertGreaterEqual(got.properties.recoverable_days or 0, 7)

        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", CLIENT.get_secret, self.NAME)

    def test_2_list_deleted_secrets_includes_the_deleted_secret(self):
        items = [d for d in CLIENT.list_deleted_secrets() if d.name == self.NAME]
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0].recovery_id, f"{SERVER.vault_url}/deletedsecrets/{self.NAME}")
        self.assertIsInstance(items[0].deleted_date, datetime.datetime)
        self.assertIsInstance(items[0].scheduled_purge_date, datetime.datetime)

    def test_3_set_secret_on_a_soft_deleted_name_fails_with_409_conflict(self):
        self.assertHttpError(ResourceExistsError, 409, "Conflict",
                             CLIENT.set_secret, self.NAME, secret_value("lifecycle-conflict"))

    def test_4_begin_recover_deleted_secret_makes_the_secret_readable_again_with_its_value(self):
        poller = CLIENT.begin_recover_deleted_secret(self.NAME, **POLL)
        poller.wait()
        self.assertEqual(poller.result().name, self.NAME)
        self.assertEqual(CLIENT.get_secret(self.NAME).value, self.value)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", CLIENT.get_deleted_secret, self.NAME)

    def test_5_purge_deleted_secret_removes_a_deleted_secret_for_good_and_frees_its_name(self):
        CLIENT.begin_delete_secret(self.NAME, **POLL).wait()
        self.assertIsNone(CLIENT.purge_deleted_secret(self.NAME))
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", CLIENT.get_deleted_secret, self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", CLIENT.get_secret, self.NAME)
        value, _ = set_secret(self.NAME, "lifecycle-reborn")
        self.assertEqual(CLIENT.get_secret(self.NAME).value, value)


class Test05BackupRestore(ErrorAssertions):
    NAME = "backed-up"
    backup = None

    def test_1_backup_purge_restore_brings_back_the_value_and_all_versions(self):
        v1_value, v1 = set_secret(self.NAME, "backup-1", content_type="text/plain")
        v2_value, v2 = set_secret(self.NAME, "backup-2", tags={"k": "v"})
        backup = CLIENT.backup_secret(self.NAME)
        self.assertIsInstance(backup, bytes)
        self.assertGreater(len(backup), 0)
        type(self).backup = backup

        CLIENT.begin_delete_secret(self.NAME, **POLL).wait()
        CLIENT.purge_deleted_secret(self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", CLIENT.get_secret, self.NAME)

        restored = CLIENT.restore_secret_backup(backup)
        self.assertEqual(restored.name, self.NAME)
        self.assertEqual(restored.vault_url, SERVER.vault_url)

        latest = CLIENT.get_secret(self.NAME)
        self.assertEqual(latest.value, v2_value)
        self.assertEqual(latest.properties.version, v2.properties.version)
        self.assertEqual(latest.properties.tags, {"k": "v"})
        old = CLIENT.get_secret(self.NAME, v1.properties.version)
        self.assertEqual(old.value, v1_value)
        self.assertEqual(old.properties.content_type, "text/plain")
        versions = sorted(p.version for p in CLIENT.list_properties_of_secret_versions(self.NAME))
        self.assertEqual(versions, sorted([v1.properties.version, v2.properties.version]))

    def test_2_restore_secret_backup_fails_with_409_while_the_name_exists(self):
        self.assertIsNotNone(self.backup, "needs the backup of the previous test")
        self.assertHttpError(ResourceExistsError, 409, None, CLIENT.restore_secret_backup, self.backup)


class Test06Errors(ErrorAssertions):
    def test_get_secret_of_a_missing_name_fails_with_404_secret_not_found(self):
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", CLIENT.get_secret, "does-not-exist")

    def test_set_secret_with_an_invalid_name_is_rejected_by_the_server_with_400_bad_parameter(self):
        # The generated client has client_side_validation off, so the request reaches the server.
        err = self.assertHttpError(HttpResponseError, 400, "BadParameter",
                                   CLIENT.set_secret, "bad_name!", secret_value("bad-name"))
        self.assertIsNotNone(err.response, "the error came from an HTTP response, not from the client")

    def test_a_credential_with_a_wrong_client_secret_fails_with_client_authentication_error(self):
        wrong = f"wrong-{uuid.uuid4()}"
        SENSITIVE.add(wrong)
        bad_client = SecretClient(SERVER.vault_url, make_credential(wrong), connection_verify=SERVER.ca_path)
        with self.assertRaises(ClientAuthenticationError) as ctx:
            bad_client.get_secret("greeting")
        self.assertIn("Authentication failed", str(ctx.exception))

    def test_client_secret_credential_obtains_a_vault_scoped_token_that_lives_longer_than_5_minutes(self):
        token = CREDENTIAL.get_token(f"https://vault.localhost:{SERVER.port}/.default")
        self.assertTrue(token.token)
        self.assertGreater(token.expires_on, datetime.datetime.now(UTC).timestamp() + 300)
        SENSITIVE.add(token.token)


class Test99ServerProcess(unittest.TestCase):
    def test_1_the_server_exits_with_status_0_on_sigterm(self):
        returncode = SERVER.stop()
        self.assertFalse(SERVER.killed_hard,
                         f"needed SIGKILL, {harness.STOP_TIMEOUT_S:.0f} s after SIGTERM")
        # A sanitizer report at exit (e.g. a leak) shows up here as a non-zero status.
        self.assertEqual(returncode, 0, f"exit status after SIGTERM\n--- stderr tail ---\n{SERVER.logs()[-3000:]}")

    def test_2_the_server_logs_contain_none_of_the_secret_values_the_wrong_client_secret_or_the_token(self):
        SERVER.stop()
        logs = SERVER.logs()
        self.assertGreater(len(SENSITIVE), 40, f"the suite tracked {len(SENSITIVE)} sensitive strings")
        leaked = sorted(s for s in SENSITIVE if s in logs)
        self.assertFalse(leaked, f"{len(leaked)} sensitive strings found in the server's log output, e.g. {leaked[:3]}")


if __name__ == "__main__":
    unittest.main()
