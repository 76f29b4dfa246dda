// Key Vault's service limits against the official @azure/keyvault-secrets client: a vault whose
// budget is a few reads per 10 seconds answers 429 with Retry-After, and the SDK's own retry
// policy waits as told and succeeds (docs/service-limits.md).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { cliJson } from "./coffer-cli.mjs";
import { startCoffer } from "./coffer-server.mjs";

let coffer;
let client;
const seen = [];

/** Waits until the server's 10-second window (Unix time / 10 s, the same clock) has at least 5 s
 * left, so that a short burst stays within one window. */
async function earlyInAWindow() {
  while (Date.now() % 10_000 >= 5_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("service limits with @azure/keyvault-secrets", () => {
  before(async () => {
    coffer = await startCoffer();
    const tlsOptions = { ca: coffer.ca };
    const credential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    // Every response the SDK sees, each retry's included (a policy per retry: `onResponse`
    // sees only the last).
    const recorder = {
      name: "recordStatuses",
      async sendRequest(request, next) {
        const response = await next(request);
        seen.push({ status: response.status, retryAfter: response.headers.get("retry-after") });
        return response;
      },
    };
    client = new SecretClient(coffer.vaultUrl, credential, {
      tlsOptions,
      additionalPolicies: [{ policy: recorder, position: "perRetry" }],
    });
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  it("the SDK retries a 429 after Retry-After and every read succeeds", async () => {
    const value = `sl-${randomUUID()}`;
    await client.setSecret("limited", value);
    const set = await cliJson(coffer, "limits", "set", "--mode", "custom", "--vault", "dev",
      "--secret-other", "3");
    assert.equal(set.mode, "custom");
    assert.equal(set.vaults.dev.secretOther, 3);

    await earlyInAWindow();
    seen.length = 0;
    for (let i = 0; i < 6; i++) {
      const got = await client.getSecret("limited");
      assert.equal(got.value, value);
    }
    const statuses = seen.map((r) => r.status);
    const retryAfter = seen.filter((r) => r.status === 429).map((r) => r.retryAfter);
    assert.ok(statuses.includes(429), `a read was throttled: ${statuses}`);
    for (const ra of retryAfter) {
      assert.match(ra, /^([1-9]|10)$/, "Retry-After is whole seconds within the window");
    }
    assert.equal(statuses.filter((s) => s === 200).length, 6);

    // A throttled request says so as Key Vault does.
    const limits = await cliJson(coffer, "limits", "show");
    assert.equal(limits.vaults.dev.secretOther, 3);
    await cliJson(coffer, "limits", "set", "--mode", "off");
    for (let i = 0; i < 10; i++) {
      assert.equal((await client.getSecret("limited")).value, value);
    }
  });
});
