// DefaultAzureCredential of @azure/identity falling through to ManagedIdentityCredential in App
// Service mode (IDENTITY_ENDPOINT + IDENTITY_HEADER of a coffer web app), reading a secret with
// @azure/keyvault-secrets: the system-assigned identity when AZURE_CLIENT_ID is unset, the
// user-assigned identity it names when it is set.
//
// A file of its own: msal-node caches the managed-identity mode in a process-wide static.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { DefaultAzureCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
// @azure/identity's own logger: "Result for <credential class>" names the credential that answered.
import { AzureLogger, setLogLevel } from "@azure/logger";

import { startCoffer } from "./coffer-server.mjs";
import { claimsOf, cliJson, grantSecretGet, identityEndpoint, seedSecret } from "./coffer-cli.mjs";

const SECRET = "default-mi-secret";
const VALUE = "read-with-the-default-credential-as-a-managed-identity";
const RG = "rg-default-mi";

// Every variable DefaultAzureCredential's chain reads; the tests set only their own.
const CHAIN_VARS = [
  "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_AUTHORITY_HOST",
  "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
  "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];
const saved = Object.fromEntries(CHAIN_VARS.map((v) => [v, process.env[v]]));

let coffer;
let tlsOptions;
let scope;
let uai;
let app;
let endpoint;
let logLines = [];

/** Reads the secret with a new DefaultAzureCredential; returns the chosen credential and token claims. */
async function readAs() {
  logLines = [];
  const credential = new DefaultAzureCredential({ disableInstanceDiscovery: true, tlsOptions });
  const client = new SecretClient(coffer.vaultUrl, credential, { tlsOptions });
  assert.equal((await client.getSecret(SECRET)).value, VALUE);
  const used = logLines.map((l) => /Result for (\w+):/.exec(l)?.[1]).filter(Boolean);
  return { used, claims: claimsOf((await credential.getToken(scope)).token) };
}

describe("DefaultAzureCredential as a managed identity (App Service) against coffer", () => {
  before(async () => {
    for (const v of CHAIN_VARS) delete process.env[v];
    setLogLevel("info");
    AzureLogger.log = (...args) => logLines.push(args.join(" "));
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    scope = `https://vault.localhost:${coffer.port}/.default`;
    await seedSecret(coffer, SECRET, VALUE);

    uai = await cliJson(coffer, "identity", "create", "-n", "site-id", "-g", RG);
    app = await cliJson(coffer, "webapp", "create", "-n", "site", "-g", RG,
      "--assign-identity", "[system]", "site-id");
    await grantSecretGet(coffer, app.identity.principalId);
    await grantSecretGet(coffer, uai.principalId);
    endpoint = await identityEndpoint(coffer, "webapp", "site", RG);
  });

  after(async () => {
    for (const [v, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[v];
      else process.env[v] = value;
    }
    if (coffer) await coffer.cleanup();
  });

  it("without AZURE_CLIENT_ID it uses the system-assigned identity", async () => {
    Object.assign(process.env, endpoint);
    const { used, claims } = await readAs();
    assert.deepEqual(used, ["ManagedIdentityCredential"]);
    assert.equal(claims.oid, app.identity.principalId);
  });

  it("AZURE_CLIENT_ID selects the user-assigned identity", async () => {
    Object.assign(process.env, endpoint, { AZURE_CLIENT_ID: uai.clientId });
    const { used, claims } = await readAs();
    assert.deepEqual(used, ["ManagedIdentityCredential"]);
    assert.equal(claims.oid, uai.principalId);
  });
});
