// Runs the `coffer` command-line tool against a server started by coffer-server.mjs, with that
// server's environment (tenant, admin client, authority host, subscription) and its CA.
//
// The calls are asynchronous on purpose: a test may serve something the server fetches while a
// command runs (an OIDC issuer in this process), so the event loop must not be blocked.

import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

import { ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { parseDevEnv } from "./coffer-server.mjs";

const execFileAsync = promisify(execFile);
const CLI_TIMEOUT_MS = 30_000;

export function cofferBin() {
  return process.env.COFFER_BIN || path.resolve(import.meta.dirname, "../../build/coffer");
}

/** Runs `coffer ...args`; resolves to stdout, rejects with stderr in the message. */
export async function cli(coffer, ...args) {
  try {
    const { stdout } = await execFileAsync(cofferBin(), args, {
      env: { ...process.env, ...coffer.env, COFFER_CA_FILE: coffer.caPath },
      timeout: CLI_TIMEOUT_MS,
      maxBuffer: 1 << 20,
    });
    return stdout;
  } catch (err) {
    throw new Error(`coffer ${args.join(" ")} failed (code=${err.code} signal=${err.signal}):\n` +
      `${err.stderr ?? ""}${err.stdout ?? ""}`);
  }
}

/** Runs a command that prints JSON and parses it. */
export async function cliJson(coffer, ...args) {
  return JSON.parse(await cli(coffer, ...args));
}

/** `coffer webapp|vm identity endpoint --env` as { IDENTITY_ENDPOINT, IDENTITY_HEADER }. */
export async function identityEndpoint(coffer, kind, name, group, ...extra) {
  const env = parseDevEnv(await cli(coffer, kind, "identity", "endpoint", "-n", name, "-g", group,
    "--env", ...extra));
  if (!env.IDENTITY_ENDPOINT || !env.IDENTITY_HEADER) {
    throw new Error(`identity endpoint printed no IDENTITY_ENDPOINT/IDENTITY_HEADER: ${JSON.stringify(env)}`);
  }
  return { IDENTITY_ENDPOINT: env.IDENTITY_ENDPOINT, IDENTITY_HEADER: env.IDENTITY_HEADER };
}

/** Grants a principal `get` on the dev vault's secrets through an access policy. */
export async function grantSecretGet(coffer, objectId) {
  await cli(coffer, "keyvault", "set-policy", "--name", "dev", "--object-id", objectId,
    "--secret-permissions", "get");
}

/** The claims of a JWT access token (Coffer's tokens are JWTs; no signature check here). */
export function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

/** Sets a secret in the dev vault as the dev administrator (ClientSecretCredential). */
export async function seedSecret(coffer, name, value) {
  const tlsOptions = { ca: coffer.ca };
  const admin = new ClientSecretCredential(
    coffer.env.AZURE_TENANT_ID, coffer.env.AZURE_CLIENT_ID, coffer.env.AZURE_CLIENT_SECRET,
    { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions });
  await new SecretClient(coffer.vaultUrl, admin, { tlsOptions }).setSecret(name, value);
}
