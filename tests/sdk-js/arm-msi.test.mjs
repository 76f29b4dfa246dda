// Conformance of Azure's management SDK for managed identities, @azure/arm-msi, with Coffer's
// Microsoft.ManagedIdentity/userAssignedIdentities resources and their federatedIdentityCredentials.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ClientSecretCredential, WorkloadIdentityCredential } from "@azure/identity";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";

import { startCoffer } from "./coffer-server.mjs";
import { startOidcIssuer } from "./oidc-issuer.mjs";

let coffer;
let msi;
let issuer;
let tmp;

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
    if (issuer) await issuer.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("createOrUpdate makes an identity with its own principalId and clientId", async () => {
    const id = await msi.userAssignedIdentities.createOrUpdate("rg-id", "app-identity", {
      location: "local",
      tags: { team: "platform" },
    });
    assert.equal(id.name, "app-identity");
    assert.equal(id.type, "Microsoft.ManagedIdentity/userAssignedIdentities");
    assert.match(id.id, /\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/app-identity$/);
    assert.equal(id.tenantId, coffer.tenantId);
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

  describe("federatedIdentityCredentials", () => {
    const FIC_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
    const AUDIENCES = ["api://AzureADTokenExchange"];
    const ISSUER = "https://oidc.cluster.example/6f1c2d3e";

    before(async () => {
      await msi.userAssignedIdentities.createOrUpdate("rg-fic", "fic-identity", { location: "local" });
    });

    it("createOrUpdate creates one, and again updates it", async () => {
      const fic = await msi.federatedIdentityCredentials.createOrUpdate("rg-fic", "fic-identity", "k8s-api", {
        issuer: ISSUER, subject: "system:serviceaccount:ns:api", audiences: AUDIENCES,
      });
      assert.equal(fic.name, "k8s-api");
      assert.equal(fic.type, FIC_TYPE);
      assert.match(fic.id, /\/userAssignedIdentities\/fic-identity\/federatedIdentityCredentials\/k8s-api$/);
      assert.equal(fic.issuer, ISSUER);
      assert.equal(fic.subject, "system:serviceaccount:ns:api");
      assert.deepEqual(fic.audiences, AUDIENCES);

      const again = await msi.federatedIdentityCredentials.createOrUpdate("rg-fic", "fic-identity", "k8s-api", {
        issuer: ISSUER, subject: "system:serviceaccount:ns:api-v2", audiences: AUDIENCES,
      });
      assert.equal(again.id, fic.id);
      assert.equal(again.subject, "system:serviceaccount:ns:api-v2");
    });

    it("get and list see it", async () => {
      const got = await msi.federatedIdentityCredentials.get("rg-fic", "fic-identity", "k8s-api");
      assert.equal(got.subject, "system:serviceaccount:ns:api-v2");
      await msi.federatedIdentityCredentials.createOrUpdate("rg-fic", "fic-identity", "github-main", {
        issuer: "https://token.actions.githubusercontent.com", subject: "repo:org/repo:ref:refs/heads/main",
        audiences: AUDIENCES,
      });
      const all = await collect(msi.federatedIdentityCredentials.list("rg-fic", "fic-identity"));
      assert.deepEqual(all.map((x) => x.name).sort(), ["github-main", "k8s-api"]);
      assert.ok(all.every((x) => x.type === FIC_TYPE && x.issuer && x.subject && x.audiences.length === 1));
    });

    it("delete removes it, and get then answers 404", async () => {
      await msi.federatedIdentityCredentials.delete("rg-fic", "fic-identity", "github-main");
      await assert.rejects(msi.federatedIdentityCredentials.get("rg-fic", "fic-identity", "github-main"),
        (err) => {
          assert.equal(err.statusCode, 404);
          return true;
        });
      await msi.federatedIdentityCredentials.delete("rg-fic", "fic-identity", "github-main"); // 204, no error
      const all = await collect(msi.federatedIdentityCredentials.list("rg-fic", "fic-identity"));
      assert.deepEqual(all.map((x) => x.name), ["k8s-api"]);
    });

    it("an issuer that is neither https nor loopback http, or no audiences, is refused with 400", async () => {
      for (const parameters of [
        { issuer: "http://oidc.cluster.example", subject: "s", audiences: AUDIENCES },
        { issuer: ISSUER, subject: "s", audiences: [] },
        { issuer: ISSUER, subject: "", audiences: AUDIENCES },
      ]) {
        await assert.rejects(
          msi.federatedIdentityCredentials.createOrUpdate("rg-fic", "fic-identity", "bad-one", parameters),
          (err) => {
            assert.equal(err.statusCode, 400, JSON.stringify(parameters));
            return true;
          });
      }
    });

    it("on an identity that does not exist it answers 404", async () => {
      await assert.rejects(
        msi.federatedIdentityCredentials.createOrUpdate("rg-fic", "no-such-identity", "k8s-api", {
          issuer: ISSUER, subject: "s", audiences: AUDIENCES,
        }),
        (err) => {
          assert.equal(err.statusCode, 404);
          return true;
        });
    });

    it("a credential created through the SDK is honoured by the token service until it is deleted", async () => {
      issuer = await startOidcIssuer();
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-sdk-js-msi-"));
      const identity = await msi.userAssignedIdentities.get("rg-fic", "fic-identity");
      await msi.federatedIdentityCredentials.createOrUpdate("rg-fic", "fic-identity", "local-issuer", {
        issuer: issuer.issuer, subject: "job:nightly", audiences: AUDIENCES,
      });
      const scope = `https://vault.localhost:${coffer.port}/.default`;
      let n = 0;
      const credential = () => {
        const tokenFilePath = path.join(tmp, `token-${++n}`);
        fs.writeFileSync(tokenFilePath, issuer.mint({ sub: "job:nightly" }));
        return new WorkloadIdentityCredential({
          tenantId: coffer.env.AZURE_TENANT_ID, clientId: identity.clientId, tokenFilePath,
          authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions: { ca: coffer.ca },
        });
      };
      assert.ok((await credential().getToken(scope)).token);
      await msi.federatedIdentityCredentials.delete("rg-fic", "fic-identity", "local-issuer");
      await assert.rejects(credential().getToken(scope), (err) => /AADSTS70021/.test(err.message));
    });

    it("deleting the identity deletes its credentials", async () => {
      await msi.userAssignedIdentities.delete("rg-fic", "fic-identity");
      await msi.userAssignedIdentities.createOrUpdate("rg-fic", "fic-identity", { location: "local" });
      assert.deepEqual(await collect(msi.federatedIdentityCredentials.list("rg-fic", "fic-identity")), []);
    });
  });
});
