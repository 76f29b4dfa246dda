// ManagedIdentityCredential of @azure/identity in App Service mode (IDENTITY_ENDPOINT +
// IDENTITY_HEADER from `coffer webapp identity endpoint`), reading a secret with
// @azure/keyvault-secrets: the system-assigned identity, and a user-assigned one named by clientId,
// resourceId and objectId.  Then the identity lifecycle: an unassigned identity is refused, a
// removed system identity and a deleted web app lose their tokens at once, the user-assigned
// identity lives on, and a regenerated identity header replaces the old one.
//
// msal-node caches the managed-identity source (endpoint, header and HTTP client) in a
// process-wide static (and its tokens in a process-wide cache), so this process is bound to the web
// app "web"; the web app "doomed" and fresh token requests run in child processes
// (managed-identity-child.mjs).
// Trust: the credential's own `tlsOptions: { ca }` is honoured (msal-node sends through
// @azure/identity's pipeline), so NODE_EXTRA_CA_CERTS is not needed.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";
import { claimsOf, cli, cliJson, grantSecretGet, identityEndpoint, seedSecret } from "./coffer-cli.mjs";

const execFileAsync = promisify(execFile);
const SECRET = "app-secret";
const VALUE = "read-by-a-managed-identity";
const RG = "rg-web";

let coffer;
let tlsOptions;
let scope;
let sharedId; // user-assigned, assigned to "web" (and later "doomed")
let strangerId; // user-assigned, assigned to nothing
let web;
let systemToken; // an access token of web's system-assigned identity

// A TokenCredential that hands out one access token obtained earlier from the server.
const fixed = (accessToken) => ({ getToken: async () => accessToken });

const readWith = (credential) =>
  new SecretClient(coffer.vaultUrl, credential, { tlsOptions }).getSecret(SECRET);

// Reads the secret with ManagedIdentityCredential in a fresh Node process whose App Service
// environment is `endpoint`; `extra` adds clientId/resourceId/objectId/scope.
async function readInChild(endpoint, extra) {
  const env = { ...process.env, ...endpoint };
  const args = { vaultUrl: coffer.vaultUrl, caPath: coffer.caPath, secretName: SECRET, ...extra };
  const { stdout } = await execFileAsync(process.execPath,
    [path.join(import.meta.dirname, "managed-identity-child.mjs"), JSON.stringify(args)],
    { env, timeout: 30_000 });
  return JSON.parse(stdout);
}

const rejects401 = (promise) =>
  assert.rejects(promise, (err) => {
    assert.equal(err.statusCode, 401, err.message);
    return true;
  });

const refused = (pattern) => (err) => {
  assert.equal(err.name, "CredentialUnavailableError", err.message);
  assert.match(err.message, pattern);
  return true;
};

describe("ManagedIdentityCredential in App Service mode against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    scope = `https://vault.localhost:${coffer.port}/.default`;
    await seedSecret(coffer, SECRET, VALUE);

    sharedId = await cliJson(coffer, "identity", "create", "-n", "shared-id", "-g", RG);
    strangerId = await cliJson(coffer, "identity", "create", "-n", "stranger-id", "-g", RG);
    web = await cliJson(coffer, "webapp", "create", "-n", "web", "-g", RG,
      "--assign-identity", "[system]", "shared-id");
    await grantSecretGet(coffer, web.identity.principalId);
    await grantSecretGet(coffer, sharedId.principalId);
    await grantSecretGet(coffer, strangerId.principalId);

    Object.assign(process.env, await identityEndpoint(coffer, "webapp", "web", RG));
  });

  after(async () => {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
    if (coffer) await coffer.cleanup();
  });

  it("the system-assigned identity reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
    systemToken = await credential.getToken(scope);
    assert.equal(claimsOf(systemToken.token).oid, web.identity.principalId);
  });

  it("the user-assigned identity, named by clientId, reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ clientId: sharedId.clientId, tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, sharedId.principalId);
  });

  it("the user-assigned identity, named by resourceId, reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ resourceId: sharedId.id, tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, sharedId.principalId);
  });

  it("the user-assigned identity, named by objectId, reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ objectId: sharedId.principalId, tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
  });

  it("an identity that is not assigned to the web app is refused", async () => {
    const credential = new ManagedIdentityCredential({ clientId: strangerId.clientId, tlsOptions });
    await assert.rejects(credential.getToken(scope), refused(/not assigned to this resource/));
  });

  it("after `identity remove [system]` its earlier token gets 401 and a fresh credential is refused", async () => {
    await cli(coffer, "webapp", "identity", "remove", "-n", "web", "-g", RG, "--identities", "[system]");
    await rejects401(readWith(fixed(systemToken)));
    const credential = new ManagedIdentityCredential({ objectId: web.identity.principalId, tlsOptions });
    await assert.rejects(credential.getToken(scope), refused(/not assigned to this resource/));
    // The user-assigned identity is untouched.
    assert.equal((await readWith(new ManagedIdentityCredential({ clientId: sharedId.clientId, tlsOptions }))).value, VALUE);
  });

  it("after `webapp delete` its system identity's earlier token gets 401 and its endpoint refuses it", async () => {
    // "doomed" is used from child processes: this process is bound to web's endpoint.
    const doomed = await cliJson(coffer, "webapp", "create", "-n", "doomed", "-g", RG,
      "--assign-identity", "[system]", "shared-id");
    await grantSecretGet(coffer, doomed.identity.principalId);
    const endpoint = await identityEndpoint(coffer, "webapp", "doomed", RG);
    const before = await readInChild(endpoint, { scope });
    assert.equal(before.value, VALUE);
    assert.equal(claimsOf(before.token).oid, doomed.identity.principalId);

    await cli(coffer, "webapp", "delete", "-n", "doomed", "-g", RG);
    await rejects401(readWith(fixed({ token: before.token, expiresOnTimestamp: Date.now() + 3600_000 })));
    // The deleted app's identity header is no longer valid, whichever identity it asks for.
    for (const id of [{}, { clientId: sharedId.clientId }]) {
      const after = await readInChild(endpoint, id);
      assert.equal(after.error?.name, "CredentialUnavailableError", JSON.stringify(after));
      assert.match(after.error.message, /invalid_client/);
    }
  });

  it("the user-assigned identity outlives the deleted web app and still reads for another app", async () => {
    // A fresh process, so the token comes from the endpoint and not from msal's cache.
    const endpoint = await identityEndpoint(coffer, "webapp", "web", RG);
    assert.deepEqual(await readInChild(endpoint, { clientId: sharedId.clientId }), { value: VALUE });
    // web now has only this one identity, so it is also its default.
    assert.deepEqual(await readInChild(endpoint, {}), { value: VALUE });
  });

  it("`identity endpoint --regenerate` issues a new header and the old one is refused", async () => {
    const old = await identityEndpoint(coffer, "webapp", "web", RG);
    const renewed = await identityEndpoint(coffer, "webapp", "web", RG, "--regenerate");
    assert.equal(renewed.IDENTITY_ENDPOINT, old.IDENTITY_ENDPOINT);
    assert.notEqual(renewed.IDENTITY_HEADER, old.IDENTITY_HEADER);
    const refusedOld = await readInChild(old, { clientId: sharedId.clientId });
    assert.match(refusedOld.error?.message ?? "", /invalid_client/, JSON.stringify(refusedOld));
    assert.deepEqual(await readInChild(renewed, { clientId: sharedId.clientId }), { value: VALUE });
  });
});
