// Conformance of the official @azure/keyvault-secrets + @azure/identity clients with Coffer.
//
// One real `coffer server --dev` process serves the whole file.  The clients are configured
// the way a user would configure them against a private endpoint: the vault URL, the server's
// CA (tlsOptions.ca), the authority host and disableInstanceDiscovery.  No challenge-resource
// verification opt-out and no TLS verification opt-out is used anywhere.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";

const POLL = { intervalInMs: 50 };
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

let coffer;
let credential;
let client;
let clientOptions;
// Every secret value (and credential) the suite hands to the server; none may show up in its logs.
const sensitive = new Set();

function secretValue(label) {
  const v = `sv-${label}-${randomUUID()}`;
  sensitive.add(v);
  return v;
}

async function setSecret(name, label, options) {
  const value = secretValue(label);
  const secret = await client.setSecret(name, value, options);
  return { value, secret };
}

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** Asserts that `promise` rejects with a RestError of the given HTTP status (and error code). */
async function rejectsWith(promise, statusCode, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
    assert.equal(err.statusCode, statusCode, `status of ${err.message}`);
    if (code !== undefined) assert.equal(err.code, code, `error code of ${err.message}`);
    return true;
  });
}

function assertRecent(date, what) {
  assert.ok(date instanceof Date && !Number.isNaN(date.getTime()), `${what} is a Date`);
  assert.ok(Math.abs(Date.now() - date.getTime()) < 5 * MINUTE, `${what} (${date.toISOString()}) is close to now`);
}

// Unix seconds, as the wire format has no sub-second precision.
function wholeSecondsFromNow(deltaMs) {
  return new Date(Math.floor((Date.now() + deltaMs) / 1000) * 1000);
}

describe("@azure/keyvault-secrets 4.11.2 against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    const tlsOptions = { ca: coffer.ca };
    credential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    clientOptions = { tlsOptions };
    client = new SecretClient(coffer.vaultUrl, credential, clientOptions);
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  describe("set and get", () => {
    const name = "greeting";
    let first;

    it("the dev vault URL is https://dev.vault.localhost:<port>", () => {
      assert.equal(coffer.vaultUrl, `https://dev.vault.localhost:${coffer.port}`);
      assert.equal(coffer.authorityHost, `https://localhost:${coffer.port}`);
    });

    it("setSecret stores value, contentType, tags and enabled, and getSecret returns them with ids on the vault host", async () => {
      const tags = { team: "platform", purpose: "sdk-test" };
      first = await setSecret(name, "greeting-1", { contentType: "text/plain", tags, enabled: true });
      const set = first.secret;
      assert.equal(set.name, name);
      assert.equal(set.value, first.value);
      assert.equal(set.properties.contentType, "text/plain");
      assert.deepEqual(set.properties.tags, tags);
      assert.equal(set.properties.enabled, true);
      assert.ok(set.properties.version, "set returns a version");
      assert.equal(set.properties.vaultUrl, coffer.vaultUrl);
      assert.equal(set.properties.id, `${coffer.vaultUrl}/secrets/${name}/${set.properties.version}`);

      const got = await client.getSecret(name);
      assert.equal(got.value, first.value);
      assert.equal(got.name, name);
      assert.equal(got.properties.version, set.properties.version);
      assert.equal(got.properties.contentType, "text/plain");
      assert.deepEqual(got.properties.tags, tags);
      assert.equal(got.properties.enabled, true);
      assert.equal(new URL(got.properties.id).host, `dev.vault.localhost:${coffer.port}`);
      assert.equal(got.properties.id, set.properties.id);
      assertRecent(got.properties.createdOn, "createdOn");
      assertRecent(got.properties.updatedOn, "updatedOn");
      assert.ok(got.properties.createdOn.getTime() <= got.properties.updatedOn.getTime(), "createdOn <= updatedOn");
    });

    it("getSecret with an explicit version returns that version", async () => {
      const version = first.secret.properties.version;
      const got = await client.getSecret(name, { version });
      assert.equal(got.value, first.value);
      assert.equal(got.properties.version, version);
      assert.equal(got.properties.id, `${coffer.vaultUrl}/secrets/${name}/${version}`);
    });

    it("a second setSecret becomes the latest version and the first version stays readable", async () => {
      const second = await setSecret(name, "greeting-2");
      assert.notEqual(second.secret.properties.version, first.secret.properties.version);

      const latest = await client.getSecret(name);
      assert.equal(latest.value, second.value);
      assert.equal(latest.properties.version, second.secret.properties.version);

      const old = await client.getSecret(name, { version: first.secret.properties.version });
      assert.equal(old.value, first.value);
      assert.equal(old.properties.contentType, "text/plain");
    });
  });

  describe("update properties", () => {
    const name = "updatable";

    it("updateSecretProperties disables a version and sets tags, contentType, expiresOn and notBefore", async () => {
      const { value, secret } = await setSecret(name, "updatable", { contentType: "text/plain", tags: { a: "1" } });
      const version = secret.properties.version;
      const notBefore = wholeSecondsFromNow(-60 * MINUTE);
      const expiresOn = wholeSecondsFromNow(DAY);
      const tags = { env: "test", owner: "sdk-js" };

      const updated = await client.updateSecretProperties(name, version, {
        enabled: false,
        tags,
        contentType: "application/json",
        expiresOn,
        notBefore,
      });
      assert.equal(updated.version, version);
      assert.equal(updated.enabled, false);
      assert.deepEqual(updated.tags, tags);
      assert.equal(updated.contentType, "application/json");
      assert.equal(updated.expiresOn?.getTime(), expiresOn.getTime());
      assert.equal(updated.notBefore?.getTime(), notBefore.getTime());
      assert.ok(updated.updatedOn.getTime() >= secret.properties.updatedOn.getTime());

      // Read back through the versions listing (a disabled version's value is not served).
      const versions = await collect(client.listPropertiesOfSecretVersions(name));
      const listed = versions.find((p) => p.version === version);
      assert.ok(listed, "the version is listed");
      assert.equal(listed.enabled, false);
      assert.deepEqual(listed.tags, tags);
      assert.equal(listed.contentType, "application/json");
      assert.equal(listed.expiresOn?.getTime(), expiresOn.getTime());
      assert.equal(listed.notBefore?.getTime(), notBefore.getTime());

      // Re-enable: the value is unchanged and the other properties were kept.
      const reenabled = await client.updateSecretProperties(name, version, { enabled: true });
      assert.equal(reenabled.enabled, true);
      const got = await client.getSecret(name, { version });
      assert.equal(got.value, value);
      assert.equal(got.properties.enabled, true);
      assert.deepEqual(got.properties.tags, tags);
      assert.equal(got.properties.contentType, "application/json");
      assert.equal(got.properties.expiresOn?.getTime(), expiresOn.getTime());
      assert.equal(got.properties.notBefore?.getTime(), notBefore.getTime());
    });

    it("updateSecretProperties with only tags leaves enabled and contentType unchanged", async () => {
      const { secret } = await setSecret(name, "updatable-2", { contentType: "text/csv" });
      const version = secret.properties.version;
      await client.updateSecretProperties(name, version, { enabled: false });
      const updated = await client.updateSecretProperties(name, version, { tags: { only: "tags" } });
      assert.deepEqual(updated.tags, { only: "tags" });
      assert.equal(updated.enabled, false);
      assert.equal(updated.contentType, "text/csv");
    });
  });

  describe("listing", () => {
    const prefix = "paged-";
    const count = 32;
    const names = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(2, "0")}`);

    before(async () => {
      for (let i = 0; i < names.length; i += 8) {
        await Promise.all(names.slice(i, i + 8).map((n) => setSecret(n, n)));
      }
    });

    it("listPropertiesOfSecrets byPage({maxPageSize: 10}) returns 3+ pages of at most 10 with every secret exactly once", async () => {
      const pages = await collect(client.listPropertiesOfSecrets().byPage({ maxPageSize: 10 }));
      assert.ok(pages.length >= 3, `expected >= 3 pages, got ${pages.length}`);
      for (const page of pages) assert.ok(page.length <= 10, `page of ${page.length} items exceeds maxPageSize 10`);
      const seen = pages.flat().map((p) => p.name);
      const ours = seen.filter((n) => n.startsWith(prefix)).sort();
      assert.deepEqual(ours, names, "every created secret appears exactly once");
      assert.equal(new Set(seen).size, seen.length, "no secret appears twice");
      for (const p of pages.flat()) {
        assert.equal(p.id, `${coffer.vaultUrl}/secrets/${p.name}`, "list items carry the version-less id");
        assert.equal(p.value, undefined);
      }
    });

    it("listPropertiesOfSecrets without maxPageSize returns pages of at most 25", async () => {
      const pages = await collect(client.listPropertiesOfSecrets().byPage());
      assert.ok(pages.length >= 2, `expected >= 2 pages for ${count}+ secrets, got ${pages.length}`);
      for (const page of pages) assert.ok(page.length <= 25, `page of ${page.length} items exceeds 25`);
      const ours = pages.flat().map((p) => p.name).filter((n) => n.startsWith(prefix)).sort();
      assert.deepEqual(ours, names);
    });

    it("listPropertiesOfSecretVersions lists every version of a secret with its id", async () => {
      const name = "versioned";
      const versions = [];
      for (let i = 0; i < 4; i++) versions.push((await setSecret(name, `versioned-${i}`)).secret.properties.version);
      const pages = await collect(client.listPropertiesOfSecretVersions(name).byPage({ maxPageSize: 3 }));
      assert.ok(pages.length >= 2, `4 versions with maxPageSize 3 take >= 2 pages, got ${pages.length}`);
      const listed = pages.flat();
      assert.deepEqual(listed.map((p) => p.version).sort(), [...versions].sort());
      for (const p of listed) {
        assert.equal(p.name, name);
        assert.equal(p.id, `${coffer.vaultUrl}/secrets/${name}/${p.version}`);
      }
    });
  });

  describe("soft delete, recover and purge", () => {
    const name = "lifecycle";
    let value;

    before(async () => {
      ({ value } = await setSecret(name, "lifecycle"));
    });

    it("beginDeleteSecret completes and getDeletedSecret reports recoveryId, deletedOn and scheduledPurgeDate", async () => {
      const poller = await client.beginDeleteSecret(name, POLL);
      const deleted = await poller.pollUntilDone();
      assert.equal(deleted.name, name);
      assert.equal(deleted.properties.recoveryId, `${coffer.vaultUrl}/deletedsecrets/${name}`);

      const got = await client.getDeletedSecret(name);
      assert.equal(got.name, name);
      assert.equal(got.properties.recoveryId, `${coffer.vaultUrl}/deletedsecrets/${name}`);
      assertRecent(got.properties.deletedOn, "deletedOn");
      const purgeIn = got.properties.scheduledPurgeDate.getTime() - got.properties.deletedOn.getTime();
      assert.ok(purgeIn >= 7 * DAY - MINUTE, `scheduledPurgeDate is >= 7 days after deletedOn (got ${purgeIn} ms)`);
      assert.match(got.properties.recoveryLevel ?? "", /Recoverable\+Purgeable$/);
      assert.ok(got.properties.recoverableDays >= 7, `recoverableDays ${got.properties.recoverableDays} >= 7`);

      await rejectsWith(client.getSecret(name), 404, "SecretNotFound");
    });

    it("listDeletedSecrets includes the deleted secret", async () => {
      const deleted = await collect(client.listDeletedSecrets());
      const item = deleted.find((d) => d.name === name);
      assert.ok(item, `deleted secret ${name} is listed`);
      assert.equal(item.properties.recoveryId, `${coffer.vaultUrl}/deletedsecrets/${name}`);
      assert.ok(item.properties.deletedOn instanceof Date);
      assert.ok(item.properties.scheduledPurgeDate instanceof Date);
    });

    it("setSecret on a soft-deleted name fails with 409 Conflict", async () => {
      await rejectsWith(client.setSecret(name, secretValue("lifecycle-conflict")), 409, "Conflict");
    });

    it("beginRecoverDeletedSecret makes the secret readable again with its value", async () => {
      const poller = await client.beginRecoverDeletedSecret(name, POLL);
      const recovered = await poller.pollUntilDone();
      assert.equal(recovered.name, name);
      const got = await client.getSecret(name);
      assert.equal(got.value, value);
      await rejectsWith(client.getDeletedSecret(name), 404, "SecretNotFound");
    });

    it("purgeDeletedSecret removes a deleted secret for good and frees its name", async () => {
      await (await client.beginDeleteSecret(name, POLL)).pollUntilDone();
      await client.purgeDeletedSecret(name);
      await rejectsWith(client.getDeletedSecret(name), 404, "SecretNotFound");
      await rejectsWith(client.getSecret(name), 404, "SecretNotFound");
      const again = await setSecret(name, "lifecycle-reborn");
      assert.equal((await client.getSecret(name)).value, again.value);
    });
  });

  describe("backup and restore", () => {
    const name = "backed-up";
    let v1;
    let v2;
    let backup;

    it("backupSecret, purge, restoreSecretBackup brings back the value and all versions", async () => {
      v1 = await setSecret(name, "backup-1", { contentType: "text/plain" });
      v2 = await setSecret(name, "backup-2", { tags: { k: "v" } });
      backup = await client.backupSecret(name);
      assert.ok(backup instanceof Uint8Array && backup.length > 0, "backup is a non-empty byte array");

      await (await client.beginDeleteSecret(name, POLL)).pollUntilDone();
      await client.purgeDeletedSecret(name);
      await rejectsWith(client.getSecret(name), 404, "SecretNotFound");

      const restored = await client.restoreSecretBackup(backup);
      assert.equal(restored.name, name);
      assert.equal(restored.vaultUrl, coffer.vaultUrl);

      const latest = await client.getSecret(name);
      assert.equal(latest.value, v2.value);
      assert.equal(latest.properties.version, v2.secret.properties.version);
      assert.deepEqual(latest.properties.tags, { k: "v" });
      const old = await client.getSecret(name, { version: v1.secret.properties.version });
      assert.equal(old.value, v1.value);
      assert.equal(old.properties.contentType, "text/plain");
      const versions = (await collect(client.listPropertiesOfSecretVersions(name))).map((p) => p.version).sort();
      assert.deepEqual(versions, [v1.secret.properties.version, v2.secret.properties.version].sort());
    });

    it("restoreSecretBackup fails with 409 while the name exists", async () => {
      assert.ok(backup, "needs the backup of the previous test");
      await rejectsWith(client.restoreSecretBackup(backup), 409);
    });
  });

  describe("errors", () => {
    it("getSecret of a missing name fails with 404 SecretNotFound", async () => {
      await rejectsWith(client.getSecret("does-not-exist"), 404, "SecretNotFound");
    });

    it("setSecret with an invalid name is rejected by the server with 400 BadParameter", async () => {
      // The JS SDK does no client-side name validation; the request reaches the server.
      await rejectsWith(client.setSecret("bad_name!", secretValue("bad-name")), 400, "BadParameter");
    });

    it("a credential with a wrong client secret fails with an invalid_client authentication error", async () => {
      const wrong = `wrong-${randomUUID()}`;
      sensitive.add(wrong);
      const badCredential = new ClientSecretCredential(coffer.env.AZURE_TENANT_ID, coffer.env.AZURE_CLIENT_ID, wrong, {
        authorityHost: coffer.authorityHost,
        disableInstanceDiscovery: true,
        tlsOptions: { ca: coffer.ca },
      });
      const badClient = new SecretClient(coffer.vaultUrl, badCredential, clientOptions);
      await assert.rejects(badClient.getSecret("greeting"), (err) => {
        // @azure/identity 4.13.1 surfaces MSAL's server error (the token endpoint's `error` field)
        // as AuthenticationRequiredError; an HTTP-level failure would be AuthenticationError.
        assert.ok(
          ["AuthenticationError", "AuthenticationRequiredError"].includes(err.name),
          `expected an authentication error, got ${err.name}: ${err.message}`,
        );
        assert.match(err.message, /invalid_client/);
        return true;
      });
    });

    it("ClientSecretCredential obtains a vault-scoped access token that lives longer than 5 minutes", async () => {
      const scope = `https://vault.localhost:${coffer.port}/.default`;
      const token = await credential.getToken(scope);
      assert.ok(token?.token, "a token is issued for the vault scope");
      assert.ok(token.expiresOnTimestamp > Date.now() + 5 * MINUTE, "the token lives longer than 5 minutes");
      sensitive.add(token.token);
    });
  });

  describe("server process", () => {
    it("the server exits with status 0 on SIGTERM", async () => {
      const result = await coffer.stop();
      assert.equal(result.killedHard, false, "needed SIGKILL: SIGTERM did not end it");
      // A sanitizer report at exit (e.g. a leak) shows up here as a non-zero status.
      assert.deepEqual(
        { code: result.code, signal: result.signal },
        { code: 0, signal: null },
        `exit status after SIGTERM\n--- log tail ---\n${coffer.logs().slice(-3000)}`,
      );
    });

    it("the server's stdout and stderr contain none of the secret values, the wrong client secret or the token", async () => {
      await coffer.stop();
      const logs = coffer.logs();
      assert.ok(sensitive.size > 40, `the suite tracked ${sensitive.size} sensitive strings`);
      const leaked = [...sensitive].filter((s) => logs.includes(s));
      assert.deepEqual(leaked, [], "sensitive strings found in the server's log output");
    });
  });
});
