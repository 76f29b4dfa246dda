// Credentials of @azure/identity against Coffer's token service, each then reading a secret with
// @azure/keyvault-secrets: ClientCertificateCredential (PS256 client assertion with x5t#S256,
// signed by a registered certificate).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";

import { ClientCertificateCredential, ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";

let coffer;
let certPath;

describe("@azure/identity credentials against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    certPath = path.join(coffer.dataDir, "..", "admin-cert.pem");
    const bin = process.env.COFFER_BIN || path.resolve(import.meta.dirname, "../../build/coffer");
    // A self-signed certificate for the dev administrator, next to its secret.
    execFileSync(bin, ["ad", "sp", "credential", "reset", "--id", coffer.env.AZURE_CLIENT_ID,
      "--create-cert", "--cert-file", certPath, "--append"], {
      env: { ...process.env, ...coffer.env, COFFER_CA_FILE: coffer.caPath },
    });
    const secretCredential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID, coffer.env.AZURE_CLIENT_ID, coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions: { ca: coffer.ca } });
    await new SecretClient(coffer.vaultUrl, secretCredential, { tlsOptions: { ca: coffer.ca } })
      .setSecret("via-certificate", "read-with-a-certificate");
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  it("ClientCertificateCredential reads a secret", async () => {
    const credential = new ClientCertificateCredential(
      coffer.env.AZURE_TENANT_ID, coffer.env.AZURE_CLIENT_ID, { certificatePath: certPath },
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions: { ca: coffer.ca } });
    const client = new SecretClient(coffer.vaultUrl, credential, { tlsOptions: { ca: coffer.ca } });
    assert.equal((await client.getSecret("via-certificate")).value, "read-with-a-certificate");
  });

  it("ClientCertificateCredential for an app that does not have the certificate fails with invalid_client", async () => {
    const credential = new ClientCertificateCredential(
      coffer.env.AZURE_TENANT_ID, "00000000-0000-4000-8000-000000000000", { certificatePath: certPath },
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions: { ca: coffer.ca } });
    await assert.rejects(credential.getToken(`https://vault.localhost:${coffer.port}/.default`),
      (err) => /invalid_client/.test(err.message) && /AADSTS700027/.test(err.message));
  });
});
