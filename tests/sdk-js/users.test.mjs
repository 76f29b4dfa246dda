// A person signs in with @azure/identity's DeviceCodeCredential (msal-node underneath), which
// derives the device endpoint from the token endpoint and gives up on any poll answer other than
// authorization_pending: the person finishes on Coffer's /devicelogin page, and the credential's
// token then reads a secret as that user, under the user's own access policy.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";

import { DeviceCodeCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { startCoffer } from "./coffer-server.mjs";
import { claimsOf, cli, cliJson, grantSecretGet, seedSecret } from "./coffer-cli.mjs";

const PASSWORD = "Node-Device-Pass-5";
const UPN = "lin@coffer.test";

let coffer;

/** Posts the device-login form as the person at the browser would; resolves to the page. */
function finishSignIn(verificationUri, userCode, password, action = "continue") {
  const body = new URLSearchParams({ code: userCode, login: UPN, passwd: password, action })
    .toString();
  return new Promise((resolve, reject) => {
    const req = https.request(verificationUri, {
      method: "POST",
      ca: coffer.ca,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "content-length": Buffer.byteLength(body),
      },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => { text += chunk; });
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A DeviceCodeCredential of the Azure CLI's public client against the server. */
function deviceCredential(userPromptCallback) {
  return new DeviceCodeCredential({
    tenantId: coffer.env.AZURE_TENANT_ID,
    authorityHost: coffer.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions: { ca: coffer.ca },
    userPromptCallback,
  });
}

describe("@azure/identity DeviceCodeCredential against coffer", () => {
  let oid;

  before(async () => {
    coffer = await startCoffer();
    const user = await cliJson(coffer, "ad", "user", "create", "--display-name", "Lin Wei",
      "--user-principal-name", UPN, "--password", PASSWORD);
    oid = user.id;
    await grantSecretGet(coffer, oid);
    await seedSecret(coffer, "for-lin", "hello-lin");
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  it("signs a person in and reads a secret as them", async () => {
    const prompts = [];
    let page;
    const credential = deviceCredential(async (info) => {
      prompts.push(info);
      page = await finishSignIn(info.verificationUri, info.userCode, PASSWORD);
    });
    const client = new SecretClient(coffer.vaultUrl, credential, { tlsOptions: { ca: coffer.ca } });
    const secret = await client.getSecret("for-lin");
    assert.equal(secret.value, "hello-lin");
    assert.equal(prompts.length, 1);
    assert.equal(prompts[0].verificationUri, `${coffer.authorityHost}/devicelogin`);
    assert.match(prompts[0].message, new RegExp(prompts[0].userCode));
    assert.equal(page.status, 200);
    assert.match(page.text, /You have signed in as lin@coffer\.test/);

    // SecretClient asks with continuous access evaluation on, and @azure/identity keeps one
    // token cache per that setting: the same setting finds the refresh token.
    const token = await credential.getToken(`${coffer.authorityHost}/.default`,
      { enableCae: true });
    const claims = claimsOf(token.token);
    assert.equal(claims.oid, oid);
    assert.equal(claims.upn, UPN);
    assert.equal(claims.idtyp, "user");
    assert.equal(prompts.length, 1, "a second resource came from the refresh token");
  });

  it("a declined sign-in fails the credential", async () => {
    const credential = deviceCredential(async (info) => {
      await finishSignIn(info.verificationUri, info.userCode, PASSWORD, "cancel");
    });
    await assert.rejects(credential.getToken(`${coffer.authorityHost}/.default`));
  });

  it("coffer ad user show names the person", async () => {
    const shown = JSON.parse(await cli(coffer, "ad", "user", "show", "--id", UPN));
    assert.equal(shown.id, oid);
  });
});
