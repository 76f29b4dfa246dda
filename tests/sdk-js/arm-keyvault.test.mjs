// Conformance of Azure's management SDK, @azure/arm-keyvault, with Coffer's ARM-shaped
// management plane. The client only gets `endpoint` (the authority host, which also serves
// /subscriptions/...) and the server's CA; its default scope is `${endpoint}/.default`.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { ClientSecretCredential } from "@azure/identity";
import { KeyVaultManagementClient } from "@azure/arm-keyvault";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";

let coffer;
let credential;
let arm;
let tlsOptions;

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

async function rejectsWith(promise, statusCode, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.statusCode, statusCode, `status of ${err.message}`);
    if (code !== undefined) assert.equal(err.code, code, `error code of ${err.message}`);
    return true;
  });
}

describe("@azure/arm-keyvault 5.0.0 against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    credential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    arm = new KeyVaultManagementClient(credential, coffer.env.COFFER_SUBSCRIPTION_ID, {
      endpoint: coffer.authorityHost,
      tlsOptions,
    });
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  it("createOrUpdate makes a vault whose vaultUri serves the secrets API", async () => {
    const v = await arm.vaults.createOrUpdate("rg-arm", "armvault1", {
      location: "local",
      properties: {
        tenantId: coffer.tenantId,
        sku: { family: "A", name: "standard" },
        softDeleteRetentionInDays: 7,
        accessPolicies: [],
      },
    });
    assert.equal(
      v.id,
      `/subscriptions/${coffer.env.COFFER_SUBSCRIPTION_ID}/resourceGroups/rg-arm/providers/Microsoft.KeyVault/vaults/armvault1`,
    );
    assert.equal(v.type, "Microsoft.KeyVault/vaults");
    assert.equal(v.properties.vaultUri, `https://armvault1.vault.localhost:${coffer.port}/`);
    assert.equal(v.properties.softDeleteRetentionInDays, 7);
    assert.equal(v.properties.enableSoftDelete, true);

    const secrets = new SecretClient(v.properties.vaultUri, credential, { tlsOptions });
    await secrets.setSecret("from-arm", "hello");
    assert.equal((await secrets.getSecret("from-arm")).value, "hello");
  });

  it("get, update and the two list operations see the vault", async () => {
    assert.equal((await arm.vaults.get("rg-arm", "armvault1")).name, "armvault1");
    const updated = await arm.vaults.update("rg-arm", "armvault1", {
      tags: { team: "platform" },
      properties: { enableRbacAuthorization: true, enablePurgeProtection: true },
    });
    assert.deepEqual(updated.tags, { team: "platform" });
    assert.equal(updated.properties.enableRbacAuthorization, true);
    assert.equal(updated.properties.enablePurgeProtection, true);
    const byGroup = await collect(arm.vaults.listByResourceGroup("rg-arm"));
    assert.deepEqual(byGroup.map((v) => v.name), ["armvault1"]);
    const bySub = (await collect(arm.vaults.listBySubscription())).map((v) => v.name).sort();
    assert.deepEqual(bySub, ["armvault1", "dev"]);
  });

  it("immutable properties are refused with 400", async () => {
    await rejectsWith(
      arm.vaults.update("rg-arm", "armvault1", { properties: { softDeleteRetentionInDays: 30 } }),
      400,
    );
    await rejectsWith(
      arm.vaults.update("rg-arm", "armvault1", { properties: { enablePurgeProtection: false } }),
      400,
    );
  });

  it("delete soft-deletes: listDeleted and getDeleted show it, purge is refused under purge protection", async () => {
    await arm.vaults.delete("rg-arm", "armvault1");
    await rejectsWith(arm.vaults.get("rg-arm", "armvault1"), 404, "ResourceNotFound");
    const deleted = await collect(arm.vaults.listDeleted());
    assert.deepEqual(deleted.map((d) => d.name), ["armvault1"]);
    const d = await arm.vaults.getDeleted("armvault1", "local");
    assert.equal(d.properties.purgeProtectionEnabled, true);
    assert.ok(d.properties.scheduledPurgeDate > d.properties.deletionDate);
    await rejectsWith(arm.vaults.purgeDeleted("armvault1", "local"), 409);
  });

  it("a vault without purge protection can be deleted and purged", async () => {
    await arm.vaults.createOrUpdate("rg-arm", "armvault2", {
      location: "local",
      properties: { tenantId: coffer.tenantId, sku: { family: "A", name: "standard" } },
    });
    await arm.vaults.delete("rg-arm", "armvault2");
    await arm.vaults.purgeDeleted("armvault2", "local");
    await rejectsWith(arm.vaults.getDeleted("armvault2", "local"), 404);
  });

  it("an invalid vault name gets 400 VaultNameNotValid", async () => {
    await rejectsWith(
      arm.vaults.createOrUpdate("rg-arm", "a--b", {
        location: "local",
        properties: { tenantId: coffer.tenantId, sku: { family: "A", name: "standard" } },
      }),
      400,
      "VaultNameNotValid",
    );
  });
});
