// Conformance of the official @azure/keyvault-keys client (KeyClient and CryptographyClient) with
// Coffer's keys API.
//
// One real `coffer server --dev` process serves the whole file.  The clients are configured as in
// secrets.test.mjs: the vault URL, the server's CA (tlsOptions.ca), the authority host and
// disableInstanceDiscovery; nothing is opted out of.
//
// CryptographyClient runs some operations itself after fetching the public key (RSA-OAEP and RSA1_5
// encrypt and wrapKey, verifyData RS*) and sends the others (sign, decrypt, unwrapKey, verify,
// RSA-OAEP-256 encrypt, every EC operation) to the server.  The tests show which side ran an
// operation through permissions: a principal whose access policy lacks `encrypt` can still encrypt
// locally, and gets 403 for the same call sent to the server.  Signatures the server makes are also
// checked with Node's own crypto, independently of the SDK.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";

import { ClientSecretCredential } from "@azure/identity";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";

import { cli, cliJson } from "./coffer-cli.mjs";
import { startCoffer } from "./coffer-server.mjs";

const POLL = { intervalInMs: 50 };
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];
const EC_SIZES = { "P-256": 32, "P-384": 48, "P-521": 66, "P-256K": 32 };

let coffer;
let tlsOptions;
let credential;
let client;
// Plaintexts and private key material the suite hands to the server; none may show up in its logs.
const sensitive = new Set();

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

function sha256(data) {
  return crypto.createHash("sha256").update(data).digest();
}

function plaintext(label) {
  const text = `pt-${label}-${crypto.randomUUID()}`;
  sensitive.add(text);
  return Buffer.from(text);
}

/** Asserts that `promise` rejects with a RestError of the given HTTP status (and error code). */
async function rejectsWith(promise, statusCode, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
    assert.equal(err.statusCode, statusCode, `status of ${err.message}`);
    if (code !== undefined) assert.equal(err.code, code, `error code of ${err.message}`);
    return true;
  });
}

/** Key Vault's 403 with this inner error code (AccessDenied: the access policy does not allow it). */
async function forbidden(promise, inner) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
    assert.equal(err.statusCode, 403, `status of ${err.message}`);
    assert.equal(err.code, "Forbidden", `error code of ${err.message}`);
    assert.equal(err.details?.error?.innerError?.code, inner, `inner error code of ${JSON.stringify(err.details)}`);
    return true;
  });
}

const accessDenied = (promise) => forbidden(promise, "AccessDenied");

function assertRecent(date, what) {
  assert.ok(date instanceof Date && !Number.isNaN(date.getTime()), `${what} is a Date`);
  assert.ok(Math.abs(Date.now() - date.getTime()) < 5 * MINUTE, `${what} (${date.toISOString()}) is close to now`);
}

function wholeSecondsFromNow(deltaMs) {
  return new Date(Math.floor((Date.now() + deltaMs) / 1000) * 1000);
}

/** The public key of a KeyVaultKey as a Node KeyObject, built from the JWK the server returned. */
function publicKeyOf(key) {
  const jwk = { kty: key.key.kty.replace(/-HSM$/, "") };
  if (jwk.kty === "RSA") {
    jwk.n = Buffer.from(key.key.n).toString("base64url");
    jwk.e = Buffer.from(key.key.e).toString("base64url");
  } else {
    jwk.crv = key.key.crv === "P-256K" ? "secp256k1" : key.key.crv;
    jwk.x = Buffer.from(key.key.x).toString("base64url");
    jwk.y = Buffer.from(key.key.y).toString("base64url");
  }
  return crypto.createPublicKey({ key: jwk, format: "jwk" });
}

/** The SDK's JsonWebKey (binary fields as bytes) from a Node private key. */
function sdkJwkOf(privateKey, keyOps) {
  const jwk = privateKey.export({ format: "jwk" });
  const out = { kty: jwk.kty, keyOps };
  for (const f of ["n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y"]) {
    if (jwk[f]) {
      out[f] = Buffer.from(jwk[f], "base64url");
      if (f !== "n" && f !== "e" && f !== "x" && f !== "y") sensitive.add(jwk[f]);
    }
  }
  if (jwk.crv) out.crv = jwk.crv === "secp256k1" ? "P-256K" : jwk.crv;
  return out;
}

function assertNoPrivateParts(key) {
  for (const f of ["d", "p", "q", "dp", "dq", "qi", "k"]) {
    assert.equal(key.key[f], undefined, `the server returned the private field ${f}`);
  }
}

function credentialFor(sp) {
  return new ClientSecretCredential(sp.tenant, sp.appId, sp.password, {
    authorityHost: coffer.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions,
  });
}

/** A new service principal with the given key permissions on the dev vault (none if empty). */
async function principalWithKeyPermissions(name, permissions) {
  const sp = await cliJson(coffer, "ad", "sp", "create-for-rbac", "--name", name);
  sensitive.add(sp.password);
  const objectId = (await cliJson(coffer, "ad", "sp", "show", "--id", sp.appId)).id;
  if (permissions.length > 0) {
    await cli(coffer, "keyvault", "set-policy", "--name", "dev", "--object-id", objectId,
      "--key-permissions", ...permissions);
  }
  return credentialFor(sp);
}

describe("@azure/keyvault-keys 4.10.2 against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    credential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    client = new KeyClient(coffer.vaultUrl, credential, { tlsOptions });
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  describe("create and get", () => {
    it("createRsaKey without options makes a 2048-bit RSA key with the six RSA operations and only its public half", async () => {
      const key = await client.createRsaKey("rsa-default");
      assert.equal(key.name, "rsa-default");
      assert.equal(key.keyType, "RSA");
      assert.deepEqual([...key.keyOperations].sort(), [...RSA_OPS].sort());
      assert.equal(key.key.n.length, 256, "n is the 2048-bit modulus without a sign byte");
      assert.deepEqual([...key.key.e], [1, 0, 1]);
      assertNoPrivateParts(key);
      assert.ok(key.properties.version, "create returns a version");
      assert.equal(key.id, `${coffer.vaultUrl}/keys/rsa-default/${key.properties.version}`);
      assert.equal(key.properties.vaultUrl, coffer.vaultUrl);
      assert.equal(key.properties.enabled, true);
      assertRecent(key.properties.createdOn, "createdOn");
      assertRecent(key.properties.updatedOn, "updatedOn");
      assert.match(key.properties.recoveryLevel ?? "", /Recoverable/);

      const got = await client.getKey("rsa-default");
      assert.equal(got.id, key.id);
      assert.deepEqual(Buffer.from(got.key.n), Buffer.from(key.key.n));
      assertNoPrivateParts(got);
    });

    for (const keySize of [3072, 4096]) {
      it(`createRsaKey with keySize ${keySize} makes a modulus of ${keySize / 8} bytes`, async () => {
        const key = await client.createRsaKey(`rsa-${keySize}`, { keySize });
        assert.equal(key.key.n.length, keySize / 8);
        assert.deepEqual([...key.key.e], [1, 0, 1]);
      });
    }

    for (const [curve, size] of Object.entries(EC_SIZES)) {
      it(`createEcKey on ${curve} returns the curve, ${size}-byte coordinates and sign/verify only`, async () => {
        const name = `ec-${curve.toLowerCase()}`;
        const key = await client.createEcKey(name, { curve });
        assert.equal(key.keyType, "EC");
        assert.equal(key.key.crv, curve);
        assert.equal(key.key.x.length, size, "x is fixed length");
        assert.equal(key.key.y.length, size, "y is fixed length");
        assert.deepEqual([...key.keyOperations].sort(), ["sign", "verify"]);
        assertNoPrivateParts(key);
        // The coordinates are a point on the curve: Node accepts them as a public key.
        assert.equal(publicKeyOf(key).asymmetricKeyType, "ec");
      });
    }

    it("createEcKey without a curve makes a P-256 key", async () => {
      const key = await client.createEcKey("ec-default");
      assert.equal(key.key.crv, "P-256");
    });

    it("createKey with keyOps keeps exactly those operations, in their canonical spelling", async () => {
      const key = await client.createKey("rsa-wrap-only", "RSA", { keyOps: ["wrapKey", "unwrapKey"] });
      assert.deepEqual([...key.keyOperations].sort(), ["unwrapKey", "wrapKey"]);
    });

    it("getKey of a missing name fails with 404 KeyNotFound", async () => {
      await rejectsWith(client.getKey("no-such-key"), 404, "KeyNotFound");
    });

    it("createKey with an invalid name is refused by the server with 400 BadParameter", async () => {
      await rejectsWith(client.createRsaKey("bad_name!"), 400, "BadParameter");
    });

    it("createRsaKey with hsm: true (kty RSA-HSM) on a standard vault is refused with Key Vault's message", async () => {
      await assert.rejects(client.createRsaKey("hsm-key", { hsm: true }), (err) => {
        assert.equal(err.statusCode, 400, err.message);
        assert.equal(err.code, "BadParameter", err.message);
        assert.match(err.message, /Hardware key operation not allowed on standard vault/);
        return true;
      });
      await rejectsWith(client.getKey("hsm-key"), 404, "KeyNotFound");
    });
  });

  describe("versions, listing and update", () => {
    const name = "versioned-key";
    let v1;
    let v2;

    before(async () => {
      v1 = await client.createRsaKey(name, { tags: { gen: "1" } });
      v2 = await client.createRsaKey(name, { tags: { gen: "2" } });
    });

    it("a second createKey is a new latest version; getKey with a version returns that version", async () => {
      assert.notEqual(v1.properties.version, v2.properties.version);
      const latest = await client.getKey(name);
      assert.equal(latest.properties.version, v2.properties.version);
      assert.deepEqual(latest.properties.tags, { gen: "2" });
      const old = await client.getKey(name, { version: v1.properties.version });
      assert.equal(old.id, v1.id);
      assert.deepEqual(Buffer.from(old.key.n), Buffer.from(v1.key.n));
      assert.deepEqual(old.properties.tags, { gen: "1" });
    });

    it("listPropertiesOfKeyVersions lists both versions with versioned ids", async () => {
      const pages = await collect(client.listPropertiesOfKeyVersions(name).byPage({ maxPageSize: 1 }));
      assert.ok(pages.length >= 2, `2 versions with maxPageSize 1 take >= 2 pages, got ${pages.length}`);
      const listed = pages.flat();
      assert.deepEqual(listed.map((p) => p.version).sort(), [v1.properties.version, v2.properties.version].sort());
      for (const p of listed) assert.equal(p.id, `${coffer.vaultUrl}/keys/${name}/${p.version}`);
    });

    it("listPropertiesOfKeys pages with maxPageSize and lists each key once with its version-less id", async () => {
      const names = ["list-a", "list-b", "list-c"];
      for (const n of names) await client.createEcKey(n);
      const pages = await collect(client.listPropertiesOfKeys().byPage({ maxPageSize: 2 }));
      for (const page of pages) assert.ok(page.length <= 2, `page of ${page.length} exceeds maxPageSize 2`);
      const all = pages.flat();
      assert.equal(new Set(all.map((p) => p.name)).size, all.length, "no key appears twice");
      for (const n of [...names, name]) {
        const item = all.find((p) => p.name === n);
        assert.ok(item, `${n} is listed`);
        assert.equal(item.id, `${coffer.vaultUrl}/keys/${n}`);
      }
    });

    it("updateKeyProperties sets enabled, tags, notBefore and expiresOn on one version; a disabled key is still readable", async () => {
      const notBefore = wholeSecondsFromNow(-60 * MINUTE);
      const expiresOn = wholeSecondsFromNow(DAY);
      const updated = await client.updateKeyProperties(name, v1.properties.version, {
        enabled: false,
        tags: { state: "retired" },
        notBefore,
        expiresOn,
      });
      assert.equal(updated.properties.version, v1.properties.version);
      assert.equal(updated.properties.enabled, false);
      assert.deepEqual(updated.properties.tags, { state: "retired" });
      assert.equal(updated.properties.notBefore?.getTime(), notBefore.getTime());
      assert.equal(updated.properties.expiresOn?.getTime(), expiresOn.getTime());

      const got = await client.getKey(name, { version: v1.properties.version });
      assert.equal(got.properties.enabled, false, "GET of a disabled key is 200 with enabled:false");
      assert.deepEqual(got.properties.tags, { state: "retired" });
      const latest = await client.getKey(name);
      assert.equal(latest.properties.version, v2.properties.version);
      assert.equal(latest.properties.enabled, true, "the other version is untouched");
    });

    describe("key_ops and the validity window, enforced by the server", () => {
      let narrowed;
      let remoteOnly; // keys [encrypt, decrypt, sign] without get: the client cannot check anything itself

      before(async () => {
        const key = await client.createRsaKey("narrowed");
        narrowed = await client.updateKeyProperties("narrowed", key.properties.version, { keyOps: ["sign", "verify"] });
        remoteOnly = await principalWithKeyPermissions("keys-js-remote-only", ["encrypt", "decrypt", "sign"]);
      });

      it("updateKeyProperties with keyOps narrows the operations; the server refuses decrypt and still signs", async () => {
        assert.deepEqual([...narrowed.keyOperations].sort(), ["sign", "verify"]);
        // A client that fetched the key would refuse decrypt itself; this one reaches the server.
        const cc = new CryptographyClient(narrowed.id, remoteOnly, { tlsOptions });
        await assert.rejects(cc.decrypt("RSA-OAEP", Buffer.alloc(256, 1)), (err) => {
          assert.equal(err.statusCode, 403, err.message);
          assert.equal(err.code, "Forbidden", err.message);
          assert.match(err.message, /Operation decrypt is not permitted on this key/);
          return true;
        });
        assert.equal((await cc.sign("RS256", sha256("narrowed"))).result.length, 256);
      });

      it("the refusal for key_ops carries Key Vault's inner code KeyOperationForbidden", async () => {
        const cc = new CryptographyClient(narrowed.id, remoteOnly, { tlsOptions });
        await forbidden(cc.decrypt("RSA-OAEP", Buffer.alloc(256, 1)), "KeyOperationForbidden");
      });

      it("a client built from a version-less id (POST /keys/{name}//decrypt) uses the latest version, also after rotateKey", async () => {
        await client.createRsaKey("versionless-rsa");
        const cc = new CryptographyClient(`${coffer.vaultUrl}/keys/versionless-rsa`, remoteOnly, { tlsOptions });
        const first = plaintext("versionless-1");
        const enc = await cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext: first });
        assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result })).result), first);
        const rotated = await client.rotateKey("versionless-rsa");
        const pt = plaintext("versionless-2");
        const ct = crypto.publicEncrypt({
          key: publicKeyOf(rotated), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256",
        }, pt);
        assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: ct })).result), pt,
          "the same client now decrypts with the rotated version");
      });

      it("an expired key: the server refuses sign and encrypt but still decrypts", async () => {
        const key = await client.createRsaKey("expired-rsa");
        await client.updateKeyProperties("expired-rsa", key.properties.version, {
          expiresOn: wholeSecondsFromNow(-DAY),
        });
        const cc = new CryptographyClient(key.id, remoteOnly, { tlsOptions });
        await rejectsWith(cc.sign("RS256", sha256("expired")), 403, "Forbidden");
        await rejectsWith(cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext: plaintext("expired-enc") }), 403, "Forbidden");
        const pt = plaintext("expired-dec");
        const ct = crypto.publicEncrypt({
          key: publicKeyOf(key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256",
        }, pt);
        const dec = await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: ct });
        assert.deepEqual(Buffer.from(dec.result), pt, "decrypt stays allowed outside nbf/exp");
      });

      it("a key not valid yet: the server refuses sign but still verifies", async () => {
        const key = await client.createEcKey("future-ec");
        const signature = (await client.getCryptographyClient("future-ec", { keyVersion: key.properties.version })
          .sign("ES256", sha256("before"))).result;
        await client.updateKeyProperties("future-ec", key.properties.version, { notBefore: wholeSecondsFromNow(DAY) });
        const verifier = await principalWithKeyPermissions("keys-js-verify-sign", ["sign", "verify"]);
        const cc = new CryptographyClient(key.id, verifier, { tlsOptions });
        await rejectsWith(cc.sign("ES256", sha256("not yet")), 403, "Forbidden");
        assert.equal((await cc.verify("ES256", sha256("before"), signature)).result, true);
      });
    });

    it("a disabled key version signs nothing: the server answers 403", async () => {
      const crypto1 = client.getCryptographyClient(name, { keyVersion: v1.properties.version });
      await rejectsWith(crypto1.sign("RS256", sha256("disabled")), 403, "Forbidden");
    });
  });

  describe("soft delete, recover and purge", () => {
    const name = "lifecycle-key";
    let created;

    before(async () => {
      created = await client.createEcKey(name);
    });

    it("beginDeleteKey completes with recoveryId, deletedOn and scheduledPurgeDate; getKey then answers 404", async () => {
      const poller = await client.beginDeleteKey(name, POLL);
      const deleted = await poller.pollUntilDone();
      assert.equal(deleted.name, name);
      assert.equal(deleted.properties.recoveryId, `${coffer.vaultUrl}/deletedkeys/${name}`);
      assert.equal(deleted.id, created.id, "the deleted bundle keeps the versioned key id");

      const got = await client.getDeletedKey(name);
      assert.equal(got.properties.recoveryId, `${coffer.vaultUrl}/deletedkeys/${name}`);
      assertRecent(got.properties.deletedOn, "deletedOn");
      assert.ok(got.properties.scheduledPurgeDate.getTime() - got.properties.deletedOn.getTime() >= 7 * DAY - MINUTE);
      assert.deepEqual(Buffer.from(got.key.x), Buffer.from(created.key.x));
      await rejectsWith(client.getKey(name), 404, "KeyNotFound");
    });

    it("listDeletedKeys lists the deleted key", async () => {
      const item = (await collect(client.listDeletedKeys())).find((d) => d.name === name);
      assert.ok(item, `${name} is listed`);
      assert.equal(item.properties.recoveryId, `${coffer.vaultUrl}/deletedkeys/${name}`);
      assert.ok(item.properties.deletedOn instanceof Date);
    });

    it("createKey on a soft-deleted name fails with 409 Conflict", async () => {
      await rejectsWith(client.createEcKey(name), 409, "Conflict");
    });

    it("beginRecoverDeletedKey brings the same key material back", async () => {
      const recovered = await (await client.beginRecoverDeletedKey(name, POLL)).pollUntilDone();
      assert.equal(recovered.name, name);
      const got = await client.getKey(name);
      assert.equal(got.id, created.id);
      assert.deepEqual(Buffer.from(got.key.x), Buffer.from(created.key.x));
      await rejectsWith(client.getDeletedKey(name), 404, "KeyNotFound");
    });

    it("purgeDeletedKey removes the key for good and frees its name", async () => {
      await (await client.beginDeleteKey(name, POLL)).pollUntilDone();
      await client.purgeDeletedKey(name);
      await rejectsWith(client.getDeletedKey(name), 404, "KeyNotFound");
      await rejectsWith(client.getKey(name), 404, "KeyNotFound");
      const reborn = await client.createEcKey(name);
      assert.notDeepEqual(Buffer.from(reborn.key.x), Buffer.from(created.key.x));
    });
  });

  describe("backup, restore and rotate", () => {
    it("backupKey, delete, purge and restoreKeyBackup bring back every version; a signature of the old key still verifies", async () => {
      const name = "backed-up-key";
      const v1 = await client.createRsaKey(name);
      const v2 = await client.createRsaKey(name, { tags: { k: "v" } });
      const digest = sha256("signed before the backup");
      const signature = (await client.getCryptographyClient(name, { keyVersion: v2.properties.version })
        .sign("RS256", digest)).result;
      const backup = await client.backupKey(name);
      assert.ok(backup instanceof Uint8Array && backup.length > 0, "backup is a non-empty byte array");
      await rejectsWith(client.restoreKeyBackup(backup), 409, "Conflict");

      await (await client.beginDeleteKey(name, POLL)).pollUntilDone();
      await rejectsWith(client.restoreKeyBackup(backup), 409, "Conflict"); // soft-deleted: the name is taken
      await client.purgeDeletedKey(name);
      await rejectsWith(client.getKey(name), 404, "KeyNotFound");

      const restored = await client.restoreKeyBackup(backup);
      assert.equal(restored.name, name);
      assert.equal(restored.id, v2.id);
      assert.deepEqual(Buffer.from(restored.key.n), Buffer.from(v2.key.n));
      assert.deepEqual(restored.properties.tags, { k: "v" });
      assert.equal(restored.properties.createdOn.getTime(), v2.properties.createdOn.getTime(), "restore keeps created");
      const versions = (await collect(client.listPropertiesOfKeyVersions(name))).map((p) => p.version).sort();
      assert.deepEqual(versions, [v1.properties.version, v2.properties.version].sort());
      const verified = await client.getCryptographyClient(name, { keyVersion: v2.properties.version })
        .verify("RS256", digest, signature);
      assert.equal(verified.result, true);
    });

    it("rotateKey makes a new version with new material and the same type, operations and tags", async () => {
      const name = "rotated-key";
      const original = await client.createRsaKey(name, { keyOps: ["sign", "verify"], tags: { app: "x" } });
      const rotated = await client.rotateKey(name);
      assert.equal(rotated.name, name);
      assert.notEqual(rotated.properties.version, original.properties.version);
      assert.equal(rotated.keyType, original.keyType);
      assert.deepEqual([...rotated.keyOperations].sort(), ["sign", "verify"]);
      assert.deepEqual(rotated.properties.tags, { app: "x" });
      assert.equal(rotated.key.n.length, original.key.n.length);
      assert.notDeepEqual(Buffer.from(rotated.key.n), Buffer.from(original.key.n));
      assert.equal((await client.getKey(name)).properties.version, rotated.properties.version);
    });

    it("getRandomBytes returns the number of bytes asked for, different each time", async () => {
      const a = await client.getRandomBytes(32);
      const b = await client.getRandomBytes(32);
      assert.equal(a.length, 32);
      assert.equal(b.length, 32);
      assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
    });

    it("getRandomBytes outside 1..128 is a 400 BadParameter from the server", async () => {
      await rejectsWith(client.getRandomBytes(129), 400, "BadParameter");
      await rejectsWith(client.getRandomBytes(0), 400, "BadParameter");
      assert.equal((await client.getRandomBytes(128)).length, 128);
    });

    it("updateKeyRotationPolicy stores a Rotate action, adds the default Notify, and getKeyRotationPolicy returns it", async () => {
      const name = "policy-key";
      await client.createEcKey(name);
      const set = await client.updateKeyRotationPolicy(name, {
        lifetimeActions: [{ action: "Rotate", timeAfterCreate: "P90D" }],
        expiresIn: "P2Y",
      });
      assert.equal(set.id, `${coffer.vaultUrl}/keys/${name}/rotationpolicy`);
      assert.equal(set.expiresIn, "P2Y");
      const actions = (policy) => Object.fromEntries(
        policy.lifetimeActions.map((a) => [a.action, [a.timeAfterCreate, a.timeBeforeExpiry]]));
      assert.deepEqual(actions(set), { Rotate: ["P90D", undefined], Notify: [undefined, "P30D"] });
      const got = await client.getKeyRotationPolicy(name);
      assert.deepEqual(actions(got), actions(set));
      assert.equal(got.expiresIn, "P2Y");
      await rejectsWith(client.getKeyRotationPolicy("no-such-key"), 404, "KeyNotFound");
    });
  });

  describe("import", () => {
    it("importKey of an RSA JWK returns only its public half, and the server signs with the imported private key", async () => {
      const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
      const imported = await client.importKey("imported-rsa", sdkJwkOf(privateKey, ["sign", "verify"]));
      assert.equal(imported.keyType, "RSA");
      assertNoPrivateParts(imported);
      assert.deepEqual(Buffer.from(imported.key.n).toString("base64url"), publicKey.export({ format: "jwk" }).n);
      assert.deepEqual([...imported.keyOperations].sort(), ["sign", "verify"]);

      const data = Buffer.from("imported and signed");
      const { result } = await client.getCryptographyClient("imported-rsa").sign("RS256", sha256(data));
      assert.ok(crypto.verify("sha256", data, publicKey, Buffer.from(result)), "Node verifies the server's RS256 signature");
    });

    it("importKey of an EC P-256 JWK signs ES256 that Node verifies", async () => {
      const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
      const imported = await client.importKey("imported-ec", sdkJwkOf(privateKey, ["sign", "verify"]));
      assert.equal(imported.key.crv, "P-256");
      assertNoPrivateParts(imported);
      const data = Buffer.from("imported EC");
      const { result } = await client.getCryptographyClient("imported-ec").sign("ES256", sha256(data));
      assert.equal(result.length, 64, "ES256 signatures are raw r||s");
      assert.ok(crypto.verify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(result)));
    });
  });

  describe("CryptographyClient, remote operations", () => {
    let key;
    let cc;

    before(async () => {
      key = await client.createRsaKey("crypto-rsa");
      cc = client.getCryptographyClient("crypto-rsa", { keyVersion: key.properties.version });
    });

    it("sign RS256 and PS256 give signatures Node verifies (PSS salt = hash length); verify on the server agrees", async () => {
      const data = Buffer.from("remote signatures");
      const digest = sha256(data);
      const rs = await cc.sign("RS256", digest);
      assert.equal(rs.algorithm, "RS256");
      assert.equal(rs.result.length, 256);
      assert.ok(crypto.verify("sha256", data, publicKeyOf(key), Buffer.from(rs.result)));
      const ps = await cc.sign("PS256", digest);
      assert.ok(crypto.verify("sha256", data, {
        key: publicKeyOf(key), padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
      }, Buffer.from(ps.result)), "Node verifies PS256 with a 32-byte salt");
      assert.equal((await cc.verify("RS256", digest, rs.result)).result, true);
      assert.equal((await cc.verify("PS256", digest, ps.result)).result, true);
      const tampered = Buffer.from(rs.result);
      tampered[10] ^= 1;
      assert.equal((await cc.verify("RS256", digest, tampered)).result, false, "a bad signature is false, not an error");
    });

    it("encrypt RSA-OAEP-256 (sent to the server) and decrypt round-trip", async () => {
      const pt = plaintext("oaep256");
      const enc = await cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext: pt });
      assert.equal(enc.result.length, 256);
      // Node decrypts nothing here (no private key); the server's decrypt must give the plaintext.
      const dec = await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result });
      assert.deepEqual(Buffer.from(dec.result), pt);
    });

    it("decrypt of what Node encrypted with RSA-OAEP-256 gives the plaintext", async () => {
      const pt = plaintext("node-oaep256");
      const ct = crypto.publicEncrypt({
        key: publicKeyOf(key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256",
      }, pt);
      const dec = await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: ct });
      assert.deepEqual(Buffer.from(dec.result), pt);
    });

    it("wrapKey and unwrapKey round-trip a 32-byte key with each RSA algorithm", async () => {
      for (const alg of ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"]) {
        const dek = crypto.randomBytes(32);
        sensitive.add(dek.toString("base64url"));
        const wrapped = await cc.wrapKey(alg, dek);
        const unwrapped = await cc.unwrapKey(alg, wrapped.result);
        assert.deepEqual(Buffer.from(unwrapped.result), dek, alg);
      }
    });

    it("decrypt of garbage with RSA-OAEP is a 400 BadParameter, not a crash", async () => {
      await rejectsWith(cc.decrypt({ algorithm: "RSA-OAEP", ciphertext: Buffer.alloc(256, 7) }), 400, "BadParameter");
    });

    for (const [curve, alg] of [["P-256", "ES256"], ["P-256K", "ES256K"]]) {
      it(`${alg} on ${curve}: the server signs raw r||s, verifies it, and Node verifies it too`, async () => {
        const ec = await client.createEcKey(`crypto-${alg.toLowerCase()}`, { curve });
        const ecc = client.getCryptographyClient(ec.name, { keyVersion: ec.properties.version });
        const data = Buffer.from(`signed with ${alg}`);
        const signed = await ecc.signData(alg, data);
        assert.equal(signed.result.length, 64);
        assert.equal((await ecc.verifyData(alg, data, signed.result)).result, true);
        assert.equal((await ecc.verifyData(alg, Buffer.from("other data"), signed.result)).result, false);
        assert.ok(crypto.verify("sha256", data, { key: publicKeyOf(ec), dsaEncoding: "ieee-p1363" },
          Buffer.from(signed.result)), "Node verifies the signature");
      });
    }
  });

  describe("CryptographyClient, local operations", () => {
    let key;
    let local; // a CryptographyClient for a principal with keys [get, decrypt, unwrapKey, sign]

    before(async () => {
      key = await client.createRsaKey("local-rsa");
      const cred = await principalWithKeyPermissions("keys-js-local", ["get", "decrypt", "unwrapKey", "sign"]);
      local = new CryptographyClient(key.id, cred, { tlsOptions });
    });

    for (const alg of ["RSA-OAEP", "RSA1_5"]) {
      it(`encrypt ${alg} runs in the client (the principal has no encrypt permission) and the server decrypts it`, async () => {
        const pt = plaintext(`local-${alg}`);
        const enc = await local.encrypt({ algorithm: alg, plaintext: pt });
        assert.equal(enc.result.length, 256);
        const dec = await local.decrypt({ algorithm: alg, ciphertext: enc.result });
        assert.deepEqual(Buffer.from(dec.result), pt);
      });
    }

    it("wrapKey RSA-OAEP runs in the client and the server unwraps it", async () => {
      const dek = crypto.randomBytes(32);
      sensitive.add(dek.toString("base64url"));
      const wrapped = await local.wrapKey("RSA-OAEP", dek);
      assert.deepEqual(Buffer.from((await local.unwrapKey("RSA-OAEP", wrapped.result)).result), dek);
    });

    it("encrypt RSA-OAEP-256 goes to the server, which refuses the principal with 403", async () => {
      await accessDenied(local.encrypt({ algorithm: "RSA-OAEP-256", plaintext: plaintext("remote-refused") }));
    });

    it("verifyData RS256 runs in the client (no verify permission) on a signature the server made", async () => {
      const data = Buffer.from("verified locally");
      const signed = await local.signData("RS256", data);
      assert.equal((await local.verifyData("RS256", data, signed.result)).result, true);
      assert.equal((await local.verifyData("RS256", Buffer.from("not what was signed"), signed.result)).result, false);
      await accessDenied(local.verify("RS256", sha256(data), signed.result));
    });
  });

  describe("authorization through an access policy", () => {
    let key;

    before(async () => {
      key = await client.createRsaKey("guarded-rsa");
    });

    it("a principal with keys [get, sign] signs and reads the key, but gets 403 on decrypt and on create", async () => {
      const cred = await principalWithKeyPermissions("keys-js-signer", ["get", "sign"]);
      const cc = new CryptographyClient(key.id, cred, { tlsOptions });
      const data = Buffer.from("signed by the signer");
      const { result } = await cc.sign("RS256", sha256(data));
      assert.ok(crypto.verify("sha256", data, publicKeyOf(key), Buffer.from(result)));
      await accessDenied(cc.decrypt({ algorithm: "RSA-OAEP", ciphertext: Buffer.alloc(256, 1) }));
      const kc = new KeyClient(coffer.vaultUrl, cred, { tlsOptions });
      assert.equal((await kc.getKey("guarded-rsa")).id, key.id);
      await accessDenied(kc.createRsaKey("signer-made"));
    });

    it("a principal without key permissions gets 403 on get, sign and list", async () => {
      const cred = await principalWithKeyPermissions("keys-js-nobody", []);
      const kc = new KeyClient(coffer.vaultUrl, cred, { tlsOptions });
      await accessDenied(kc.getKey("guarded-rsa"));
      // The 403 on the client's first GET makes it remote-only; the server refuses the sign too.
      const cc = new CryptographyClient(key.id, cred, { tlsOptions });
      await accessDenied(cc.sign("RS256", sha256("nobody")));
      await assert.rejects(collect(kc.listPropertiesOfKeys()), (err) => err.statusCode === 403);
    });
  });

  describe("server process", () => {
    it("the server exits with status 0 on SIGTERM", async () => {
      const result = await coffer.stop();
      assert.equal(result.killedHard, false, "needed SIGKILL: SIGTERM did not end it");
      assert.deepEqual(
        { code: result.code, signal: result.signal },
        { code: 0, signal: null },
        `exit status after SIGTERM\n--- log tail ---\n${coffer.logs().slice(-3000)}`,
      );
    });

    it("the server's output contains none of the plaintexts, unwrapped keys, imported private parts or passwords", async () => {
      await coffer.stop();
      const logs = coffer.logs();
      assert.ok(sensitive.size > 15, `the suite tracked ${sensitive.size} sensitive strings`);
      const leaked = [...sensitive].filter((s) => logs.includes(s));
      assert.deepEqual(leaked, [], "sensitive strings found in the server's log output");
    });
  });
});
