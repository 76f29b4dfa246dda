// ManagedIdentityCredential of @azure/identity in IMDS mode against `coffer agent --imds`: the agent
// serves Azure's IMDS token endpoint on loopback for a virtual machine (it holds the VM's
// IDENTITY_ENDPOINT and IDENTITY_HEADER), and the SDK finds it through
// AZURE_POD_IDENTITY_AUTHORITY_HOST.  The system-assigned identity and a user-assigned one (by
// clientId, resourceId and objectId) each read a secret with @azure/keyvault-secrets.
//
// msal-node caches the managed-identity source in a process-wide static, so this file holds the
// IMDS mode only (App Service mode is mi-appservice.test.mjs).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";

import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";
import { claimsOf, cliJson, cofferBin, grantSecretGet, identityEndpoint, seedSecret } from "./coffer-cli.mjs";

const SECRET = "vm-secret";
const VALUE = "read-through-imds";
const RG = "rg-vm";
const AGENT_READY_MS = 60_000;
const AGENT_STOP_MS = 30_000;

let coffer;
let agent;
let tlsOptions;
let scope;
let vmId; // user-assigned, assigned to the VM
let strangerId; // user-assigned, assigned to nothing
let vm;

/** Starts `coffer agent --imds --port 0` and waits for its AZURE_POD_IDENTITY_AUTHORITY_HOST line. */
async function startAgent(endpoint) {
  const child = spawn(cofferBin(), ["agent", "--imds", "--port", "0"], {
    env: { ...process.env, ...endpoint, COFFER_CA_FILE: coffer.caPath },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const authorityHost = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent not ready after ${AGENT_READY_MS} ms:\n${stderr}`)),
      AGENT_READY_MS);
    child.stdout.on("data", (d) => {
      stdout += d;
      const m = /^export AZURE_POD_IDENTITY_AUTHORITY_HOST=(\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`agent exited (code=${code} signal=${signal}):\n${stderr}`));
    });
  }).catch(async (err) => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, "SIGKILL");
      await exited;
    }
    throw err;
  });

  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    process.kill(child.pid, "SIGTERM");
    let timer;
    const outcome = await Promise.race([
      exited,
      new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), AGENT_STOP_MS))),
    ]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      process.kill(child.pid, "SIGKILL");
      await exited;
      return { timedOut: true };
    }
    return outcome;
  }
  return { authorityHost, pid: child.pid, stop };
}

const readWith = (credential) =>
  new SecretClient(coffer.vaultUrl, credential, { tlsOptions }).getSecret(SECRET);

describe("ManagedIdentityCredential in IMDS mode through `coffer agent --imds`", () => {
  before(async () => {
    // Only IMDS may be picked: no App Service / Machine Learning / Cloud Shell variables.
    for (const v of ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
      "AZURE_FEDERATED_TOKEN_FILE"]) {
      delete process.env[v];
    }
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    scope = `https://vault.localhost:${coffer.port}/.default`;
    await seedSecret(coffer, SECRET, VALUE);

    vmId = await cliJson(coffer, "identity", "create", "-n", "vm-id", "-g", RG);
    strangerId = await cliJson(coffer, "identity", "create", "-n", "stranger-id", "-g", RG);
    vm = await cliJson(coffer, "vm", "create", "-n", "vm1", "-g", RG, "--assign-identity", "[system]", "vm-id");
    await grantSecretGet(coffer, vm.identity.principalId);
    await grantSecretGet(coffer, vmId.principalId);
    await grantSecretGet(coffer, strangerId.principalId);

    agent = await startAgent(await identityEndpoint(coffer, "vm", "vm1", RG));
    assert.match(agent.authorityHost, /^http:\/\/127\.0\.0\.1:\d+$/);
    process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = agent.authorityHost;
  });

  after(async () => {
    delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    if (agent) await agent.stop();
    if (coffer) await coffer.cleanup();
  });

  it("the system-assigned identity reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, vm.identity.principalId);
  });

  it("the user-assigned identity, named by clientId, reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ clientId: vmId.clientId, tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, vmId.principalId);
  });

  it("the user-assigned identity, named by resourceId, reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ resourceId: vmId.id, tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
    assert.equal(claimsOf((await credential.getToken(scope)).token).oid, vmId.principalId);
  });

  it("the user-assigned identity, named by objectId, reads a secret", async () => {
    const credential = new ManagedIdentityCredential({ objectId: vmId.principalId, tlsOptions });
    assert.equal((await readWith(credential)).value, VALUE);
  });

  it("an identity that is not assigned to the VM is refused", async () => {
    const credential = new ManagedIdentityCredential({ clientId: strangerId.clientId, tlsOptions });
    await assert.rejects(credential.getToken(scope), (err) => {
      assert.equal(err.name, "CredentialUnavailableError", err.message);
      assert.match(err.message, /not assigned to this resource/);
      return true;
    });
  });

  it("the agent stops on SIGTERM with exit code 0", async () => {
    const outcome = await agent.stop();
    assert.deepEqual(outcome, { code: 0, signal: null });
  });
});
