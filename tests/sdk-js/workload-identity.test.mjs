// WorkloadIdentityCredential of @azure/identity (a federated token file exchanged for an access
// token) against Coffer's token service, then reading a secret with @azure/keyvault-secrets.
// The federated tokens come from a real OIDC issuer on loopback (oidc-issuer.mjs) whose discovery
// document and keys Coffer fetches itself.  Negative cases: an issuer that is not registered, the
// wrong audience or subject, an expired token, and a token signed by another key.
// Also ManagedIdentityCredential's token-exchange mode (AKS: AZURE_FEDERATED_TOKEN_FILE), run in a
// child process: that mode builds its WorkloadIdentityCredential without the credential's
// tlsOptions (@azure/identity 4.13.1, tokenExchangeMsi.js), so the CA must come from
// NODE_EXTRA_CA_CERTS, which Node reads only at start-up.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { WorkloadIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";
import { claimsOf, cli, cliJson, grantSecretGet, seedSecret } from "./coffer-cli.mjs";
import { startOidcIssuer } from "./oidc-issuer.mjs";

const SECRET = "federated-secret";
const VALUE = "read-with-a-federated-token";
const RG = "rg-wl";
const SUBJECT = "system:serviceaccount:payments:api";

let coffer;
let issuer; // registered on the identity
let rogue; // not registered anywhere
let tmp;
let tlsOptions;
let scope;
let uai;
let files = 0;

function credentialFor(federatedToken) {
  const tokenFilePath = path.join(tmp, `token-${++files}`);
  fs.writeFileSync(tokenFilePath, federatedToken);
  return new WorkloadIdentityCredential({
    tenantId: coffer.env.AZURE_TENANT_ID,
    clientId: uai.clientId,
    tokenFilePath,
    authorityHost: coffer.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions,
  });
}

// msal-node raises the token endpoint's OAuth error as a ServerError, which @azure/identity 4.13.1
// wraps in AuthenticationRequiredError with msal's message.
const execFileAsync = promisify(execFile);

const refused = (why) => (err) => {
  assert.equal(err.name, "AuthenticationRequiredError", err.message);
  assert.match(err.message, /invalid_client/);
  assert.match(err.message, /AADSTS70021/);
  assert.match(err.message, why);
  return true;
};
const NO_MATCH = /no federated identity credential of the identity matches/;

describe("WorkloadIdentityCredential against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    issuer = await startOidcIssuer();
    rogue = await startOidcIssuer();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-sdk-js-wl-"));
    tlsOptions = { ca: coffer.ca };
    scope = `https://vault.localhost:${coffer.port}/.default`;
    await seedSecret(coffer, SECRET, VALUE);

    uai = await cliJson(coffer, "identity", "create", "-n", "payments-api", "-g", RG);
    await grantSecretGet(coffer, uai.principalId);
    await cli(coffer, "identity", "federated-credential", "create", "--name", "payments-k8s",
      "--identity-name", "payments-api", "-g", RG, "--issuer", issuer.issuer, "--subject", SUBJECT,
      "--audiences", "api://AzureADTokenExchange");
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
    if (issuer) await issuer.stop();
    if (rogue) await rogue.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("a token of the registered issuer, subject and audience reads a secret", async () => {
    const credential = credentialFor(issuer.mint({ sub: SUBJECT }));
    const client = new SecretClient(coffer.vaultUrl, credential, { tlsOptions });
    assert.equal((await client.getSecret(SECRET)).value, VALUE);
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, uai.principalId);
    // Coffer fetched the issuer's discovery document and keys itself.
    assert.ok(issuer.requests.includes("/.well-known/openid-configuration"), issuer.requests.join());
    assert.ok(issuer.requests.includes("/openid/v1/jwks"), issuer.requests.join());
  });

  it("a token file with a trailing newline is accepted", async () => {
    const credential = credentialFor(issuer.mint({ sub: SUBJECT }) + "\n");
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, uai.principalId);
  });

  it("a token whose aud is a single string is accepted", async () => {
    const credential = credentialFor(issuer.mint({ sub: SUBJECT, aud: "api://AzureADTokenExchange" }));
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, uai.principalId);
  });

  it("a token from an issuer that is not registered is refused", async () => {
    await assert.rejects(credentialFor(rogue.mint({ sub: SUBJECT })).getToken(scope), refused(NO_MATCH));
    assert.deepEqual(rogue.requests, [], "an unregistered issuer is never contacted");
  });

  it("a token for another audience is refused", async () => {
    const token = issuer.mint({ sub: SUBJECT, aud: ["api://SomethingElse"] });
    await assert.rejects(credentialFor(token).getToken(scope), refused(NO_MATCH));
  });

  it("a token for another subject is refused", async () => {
    const token = issuer.mint({ sub: "system:serviceaccount:payments:other" });
    await assert.rejects(credentialFor(token).getToken(scope), refused(NO_MATCH));
  });

  it("an expired token is refused", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = issuer.mint({ sub: SUBJECT, iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
    await assert.rejects(credentialFor(token).getToken(scope), refused(/expired/));
  });

  it("a token naming a key the issuer does not publish is refused", async () => {
    const token = issuer.mint({ sub: SUBJECT }, { kid: "not-a-published-key" });
    await assert.rejects(credentialFor(token).getToken(scope), refused(/has no key/));
  });

  it("a token with the registered issuer's name and kid but signed by another key is refused", async () => {
    const forged = rogue.mint({ iss: issuer.issuer, sub: SUBJECT }, { kid: issuer.kid });
    await assert.rejects(credentialFor(forged).getToken(scope), refused(/signature does not verify/));
  });

  it("ManagedIdentityCredential in token-exchange mode (AZURE_FEDERATED_TOKEN_FILE) reads a secret", async () => {
    const tokenFile = path.join(tmp, "aks-token");
    fs.writeFileSync(tokenFile, issuer.mint({ sub: SUBJECT }));
    const env = { ...process.env };
    for (const v of ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_CLIENT_SECRET",
      "AZURE_POD_IDENTITY_AUTHORITY_HOST"]) {
      delete env[v];
    }
    Object.assign(env, {
      AZURE_TENANT_ID: coffer.env.AZURE_TENANT_ID,
      AZURE_CLIENT_ID: uai.clientId,
      AZURE_FEDERATED_TOKEN_FILE: tokenFile,
      AZURE_AUTHORITY_HOST: coffer.authorityHost,
      NODE_EXTRA_CA_CERTS: coffer.caPath,
    });
    const args = { vaultUrl: coffer.vaultUrl, caPath: coffer.caPath, secretName: SECRET, scope };
    const { stdout } = await execFileAsync(process.execPath,
      [path.join(import.meta.dirname, "managed-identity-child.mjs"), JSON.stringify(args)],
      { env, timeout: 30_000 });
    const out = JSON.parse(stdout);
    assert.equal(out.value, VALUE, stdout);
    assert.equal(claimsOf(out.token).oid, uai.principalId);
  });
});
