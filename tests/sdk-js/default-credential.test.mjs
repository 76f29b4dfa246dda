// DefaultAzureCredential of @azure/identity against coffer: it picks the credential the environment
// describes, and each reads a secret with @azure/keyvault-secrets.
//   - EnvironmentCredential: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or
//     AZURE_CLIENT_CERTIFICATE_PATH), with AZURE_AUTHORITY_HOST;
//   - WorkloadIdentityCredential: AZURE_FEDERATED_TOKEN_FILE + AZURE_CLIENT_ID + AZURE_TENANT_ID +
//     AZURE_AUTHORITY_HOST, the token file written from a loopback OIDC issuer.
// DefaultAzureCredential hands its options to every credential of its chain, so
// `disableInstanceDiscovery: true` and `tlsOptions` are given once. The last case gives none: a
// child process whose environment is dev.env alone (AZURE_TENANT_ID=adfs) runs
// `new DefaultAzureCredential()` (env-only-child.mjs).  None of these cases reaches
// ManagedIdentityCredential, whose mode msal-node caches process-wide; the managed-identity case is
// default-credential-mi.test.mjs.

import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { DefaultAzureCredential } from "@azure/identity";
// @azure/logger is @azure/identity's own logger (a dependency of it, at the version the lock pins);
// its info line "Result for <credential class>" names the credential of the chain that answered.
import { AzureLogger, setLogLevel } from "@azure/logger";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";
import { claimsOf, cli, cliJson, grantSecretGet } from "./coffer-cli.mjs";
import { startOidcIssuer } from "./oidc-issuer.mjs";

const here = path.dirname(new URL(import.meta.url).pathname);

const SECRET = "default-secret";
const VALUE = "read-with-the-default-credential";
const RG = "rg-default";
const SUBJECT = "system:serviceaccount:default:reader";

// Every variable DefaultAzureCredential's chain reads; each test sets only its own.
const CHAIN_VARS = [
  "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "AZURE_USERNAME",
  "AZURE_PASSWORD", "AZURE_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS",
  "AZURE_ADDITIONALLY_ALLOWED_TENANTS", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT",
  "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];
const saved = Object.fromEntries(CHAIN_VARS.map((v) => [v, process.env[v]]));

let coffer;
let issuer;
let tmp;
let tlsOptions;
let scope;
let certPath;
let uai;

function setEnv(vars) {
  for (const v of CHAIN_VARS) delete process.env[v];
  Object.assign(process.env, vars);
}

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

describe("DefaultAzureCredential against coffer", () => {
  before(async () => {
    setLogLevel("info");
    AzureLogger.log = (...args) => logLines.push(args.join(" "));
    coffer = await startCoffer();
    issuer = await startOidcIssuer();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-sdk-js-dac-"));
    tlsOptions = { ca: coffer.ca };
    scope = `https://vault.localhost:${coffer.port}/.default`;
    certPath = path.join(tmp, "admin-cert.pem");
    await cli(coffer, "ad", "sp", "credential", "reset", "--id", coffer.env.AZURE_CLIENT_ID,
      "--create-cert", "--cert-file", certPath, "--append");

    setEnv({
      AZURE_TENANT_ID: coffer.env.AZURE_TENANT_ID,
      AZURE_CLIENT_ID: coffer.env.AZURE_CLIENT_ID,
      AZURE_CLIENT_SECRET: coffer.env.AZURE_CLIENT_SECRET,
      AZURE_AUTHORITY_HOST: coffer.authorityHost,
    });
    const admin = new DefaultAzureCredential({ disableInstanceDiscovery: true, tlsOptions });
    await new SecretClient(coffer.vaultUrl, admin, { tlsOptions }).setSecret(SECRET, VALUE);

    uai = await cliJson(coffer, "identity", "create", "-n", "reader", "-g", RG);
    await grantSecretGet(coffer, uai.principalId);
    await cli(coffer, "identity", "federated-credential", "create", "--name", "reader-k8s",
      "--identity-name", "reader", "-g", RG, "--issuer", issuer.issuer, "--subject", SUBJECT);
  });

  beforeEach(() => setEnv({}));

  after(async () => {
    for (const [v, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[v];
      else process.env[v] = value;
    }
    if (coffer) await coffer.cleanup();
    if (issuer) await issuer.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("EnvironmentCredential with AZURE_CLIENT_SECRET", async () => {
    setEnv({
      AZURE_TENANT_ID: coffer.env.AZURE_TENANT_ID,
      AZURE_CLIENT_ID: coffer.env.AZURE_CLIENT_ID,
      AZURE_CLIENT_SECRET: coffer.env.AZURE_CLIENT_SECRET,
      AZURE_AUTHORITY_HOST: coffer.authorityHost,
    });
    const { used, claims } = await readAs();
    assert.deepEqual(used, ["EnvironmentCredential"]);
    assert.equal(claims.appid, coffer.env.AZURE_CLIENT_ID);
  });

  it("EnvironmentCredential with AZURE_CLIENT_CERTIFICATE_PATH", async () => {
    setEnv({
      AZURE_TENANT_ID: coffer.env.AZURE_TENANT_ID,
      AZURE_CLIENT_ID: coffer.env.AZURE_CLIENT_ID,
      AZURE_CLIENT_CERTIFICATE_PATH: certPath,
      AZURE_AUTHORITY_HOST: coffer.authorityHost,
    });
    const { used, claims } = await readAs();
    assert.deepEqual(used, ["EnvironmentCredential"]);
    assert.equal(claims.appid, coffer.env.AZURE_CLIENT_ID);
  });

  it("WorkloadIdentityCredential with AZURE_FEDERATED_TOKEN_FILE", async () => {
    const tokenFile = path.join(tmp, "federated-token");
    fs.writeFileSync(tokenFile, issuer.mint({ sub: SUBJECT }));
    setEnv({
      AZURE_TENANT_ID: coffer.env.AZURE_TENANT_ID,
      AZURE_CLIENT_ID: uai.clientId,
      AZURE_FEDERATED_TOKEN_FILE: tokenFile,
      AZURE_AUTHORITY_HOST: coffer.authorityHost,
    });
    const { used, claims } = await readAs();
    assert.deepEqual(used, ["WorkloadIdentityCredential"]);
    assert.equal(claims.appid, uai.clientId);
    assert.equal(claims.oid, uai.principalId);
  });

  it("DefaultAzureCredential() with no argument, from dev.env alone", () => {
    assert.equal(coffer.env.AZURE_TENANT_ID, "adfs");
    const home = fs.mkdtempSync(path.join(tmp, "home-"));
    // Only dev.env: no az login, no managed identity; an instance-discovery call to
    // login.microsoftonline.com fails here (no network beyond loopback).
    const env = { PATH: process.env.PATH, HOME: home, AZURE_CONFIG_DIR: home, ...coffer.env };
    const stdout = execFileSync(process.execPath, [path.join(here, "env-only-child.mjs"), scope],
      { env, cwd: here, timeout: 300_000 });
    const out = JSON.parse(stdout.toString());
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    assert.equal(out.value, "read-with-no-setting-in-code");
    const claims = claimsOf(out.token);
    assert.equal(claims.appid, coffer.env.AZURE_CLIENT_ID);
    assert.equal(claims.tid, coffer.tenantId);
  });
});
