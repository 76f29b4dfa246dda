// Conformance of Azure's management SDK for managed identities, @azure/arm-msi, with Coffer's
// Microsoft.ManagedIdentity/userAssignedIdentities resources.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { ClientSecretCredential } from "@azure/identity";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";

import { startCoffer } from "./coffer-server.mjs";

let coffer;
let msi;

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("@azure/arm-msi 2.2.0 against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    const tlsOptions = { ca: coffer.ca };
    const credential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    msi = new ManagedServiceIdentityClient(credential, coffer.env.COFFER_SUBSCRIPTION_ID, {
      endpoint: coffer.authorityHost,
      tlsOptions,
    });
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  it("createOrUpdate makes an identity with its own principalId and clientId", async () => {
    const id = await msi.userAssignedIdentities.createOrUpdate("rg-id", "app-identity", {
      location: "local",
      tags: { team: "platform" },
    });
    assert.equal(id.name, "app-identity");
    assert.equal(id.type, "Microsoft.ManagedIdentity/userAssignedIdentities");
    assert.match(id.id, /\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/app-identity$/);
    assert.equal(id.tenantId, coffer.env.AZURE_TENANT_ID);
    assert.match(id.principalId, UUID);
    assert.match(id.clientId, UUID);
    assert.notEqual(id.principalId, id.clientId);
    assert.deepEqual(id.tags, { team: "platform" });

    const again = await msi.userAssignedIdentities.createOrUpdate("rg-id", "app-identity", {
      location: "local",
      tags: { team: "data" },
    });
    assert.equal(again.principalId, id.principalId, "an update keeps the identity");
    assert.deepEqual(again.tags, { team: "data" });
  });

  it("get, update, listByResourceGroup and listBySubscription see it", async () => {
    const got = await msi.userAssignedIdentities.get("rg-id", "app-identity");
    assert.equal(got.name, "app-identity");
    const updated = await msi.userAssignedIdentities.update("rg-id", "app-identity", {
      tags: { env: "prod" },
    });
    assert.deepEqual(updated.tags, { env: "prod" });
    await msi.userAssignedIdentities.createOrUpdate("rg-other", "second-identity", {
      location: "local",
    });
    const inGroup = await collect(msi.userAssignedIdentities.listByResourceGroup("rg-id"));
    assert.deepEqual(inGroup.map((x) => x.name), ["app-identity"]);
    const all = (await collect(msi.userAssignedIdentities.listBySubscription())).map((x) => x.name);
    assert.deepEqual(all.sort(), ["app-identity", "second-identity"]);
  });

  it("delete removes it, and get then answers 404 ResourceNotFound", async () => {
    await msi.userAssignedIdentities.delete("rg-id", "app-identity");
    await assert.rejects(msi.userAssignedIdentities.get("rg-id", "app-identity"), (err) => {
      assert.equal(err.statusCode, 404);
      assert.equal(err.code, "ResourceNotFound");
      return true;
    });
    await msi.userAssignedIdentities.delete("rg-id", "app-identity"); // 204, no error
  });

  it("an invalid identity name is refused with 400", async () => {
    await assert.rejects(
      msi.userAssignedIdentities.createOrUpdate("rg-id", "-bad", { location: "local" }),
      (err) => {
        assert.equal(err.statusCode, 400);
        return true;
      },
    );
  });
});
