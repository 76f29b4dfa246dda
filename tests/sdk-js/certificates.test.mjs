// Conformance of the official @azure/keyvault-certificates client (CertificateClient) with Coffer's
// certificates API, and of the certificate's key and secret as the keys and secrets clients see them.
//
// One real `coffer server --dev` process serves the whole file.  The clients are configured as in
// secrets.test.mjs: the vault URL, the server's CA (tlsOptions.ca), the authority host and
// disableInstanceDiscovery; nothing is opted out of.  What the server returns is checked with Node's
// own crypto as well as through the SDK: certificates are parsed with X509Certificate, PFX files are
// loaded into a TLS context (which refuses a key that does not match its certificate), signatures made
// with a certificate's key are verified with the certificate's public key.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";

import { ClientSecretCredential } from "@azure/identity";
import { CertificateClient, DefaultCertificatePolicy } from "@azure/keyvault-certificates";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";

import { cli, cliJson } from "./coffer-cli.mjs";
import { startCoffer } from "./coffer-server.mjs";

const POLL = { intervalInMs: 50 };
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

let coffer;
let tlsOptions;
let credential;
let certificates;
let secrets;
let keys;
// Private keys and passwords the suite sees or hands to the server; none may show up in its logs.
const sensitive = new Set();

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
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

async function create(name, policy, options = {}) {
  const poller = await certificates.beginCreateCertificate(name, policy, { ...POLL, ...options });
  return poller.pollUntilDone();
}

function x509(cer) {
  return new crypto.X509Certificate(Buffer.from(cer));
}

/** The private key and certificates of a PEM bundle, each block as text. */
function pemBlocks(pem, label) {
  return pem.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, "g")) ?? [];
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "coffer-certs-"));
}

function credentialFor(sp) {
  return new ClientSecretCredential(sp.tenant, sp.appId, sp.password, {
    authorityHost: coffer.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions,
  });
}

/** A new service principal with these certificate permissions on the dev vault: its credential and a CertificateClient. */
async function principalWithCertificatePermissions(name, permissions) {
  const sp = await cliJson(coffer, "ad", "sp", "create-for-rbac", "--name", name);
  sensitive.add(sp.password);
  const objectId = (await cliJson(coffer, "ad", "sp", "show", "--id", sp.appId)).id;
  if (permissions.length > 0) {
    await cli(coffer, "keyvault", "set-policy", "--name", "dev", "--object-id", objectId,
      "--certificate-permissions", ...permissions);
  }
  const cred = credentialFor(sp);
  return { cred, client: new CertificateClient(coffer.vaultUrl, cred, { tlsOptions }) };
}

describe("@azure/keyvault-certificates 4.10.3 against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    credential = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    certificates = new CertificateClient(coffer.vaultUrl, credential, { tlsOptions });
    secrets = new SecretClient(coffer.vaultUrl, credential, { tlsOptions });
    keys = new KeyClient(coffer.vaultUrl, credential, { tlsOptions });
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  describe("create with the Self issuer", () => {
    it("the default policy makes a self-signed RSA-2048 certificate, valid 12 months, through the poller", async () => {
      const cert = await create("default-policy", DefaultCertificatePolicy);
      assert.equal(cert.name, "default-policy");
      assert.ok(cert.properties.version);
      assert.equal(cert.properties.id, `${coffer.vaultUrl}/certificates/default-policy/${cert.properties.version}`);
      assert.equal(cert.keyId, `${coffer.vaultUrl}/keys/default-policy/${cert.properties.version}`);
      assert.equal(cert.secretId, `${coffer.vaultUrl}/secrets/default-policy/${cert.properties.version}`);
      const parsed = x509(cert.cer);
      assert.match(parsed.subject, /CN=MyCert/i);
      assert.equal(parsed.issuer, parsed.subject, "self-signed: the issuer is the subject");
      assert.ok(parsed.verify(parsed.publicKey), "the signature verifies with its own key");
      assert.equal(parsed.publicKey.asymmetricKeyType, "rsa");
      assert.equal(parsed.publicKey.asymmetricKeyDetails.modulusLength, 2048);
      const sha1 = crypto.createHash("sha1").update(Buffer.from(cert.cer)).digest();
      assert.deepEqual(Buffer.from(cert.properties.x509Thumbprint), sha1);
      // The attributes carry the certificate's validity; 12 months is 365 or 366 days.
      assert.equal(cert.properties.notBefore.getTime(), new Date(parsed.validFrom).getTime());
      assert.equal(cert.properties.expiresOn.getTime(), new Date(parsed.validTo).getTime());
      const days = (cert.properties.expiresOn - cert.properties.notBefore) / DAY;
      assert.ok(days >= 365 && days <= 366, `validity of ${days} days`);
      // The policy comes back with Key Vault's defaults filled in.
      const p = cert.policy;
      assert.equal(p.issuerName, "Self");
      assert.equal(p.keyType, "RSA");
      assert.equal(p.keySize, 2048);
      assert.equal(p.exportable, true);
      assert.equal(p.contentType, "application/x-pkcs12");
      assert.equal(p.validityInMonths, 12);
      assert.deepEqual(p.lifetimeActions, [{ action: "AutoRenew", daysBeforeExpiry: undefined, lifetimePercentage: 80 }]);
    });

    it("the creation operation is kept as completed, with a CSR for the certificate's key", async () => {
      const cert = await create("with-operation", { issuerName: "Self", subject: "CN=op.example" });
      const poller = await certificates.getCertificateOperation("with-operation", POLL);
      const op = poller.getOperationState().certificateOperation;
      assert.equal(op.status, "completed");
      assert.equal(op.issuerName, "Self");
      assert.equal(op.target, `${coffer.vaultUrl}/certificates/with-operation`);
      assert.ok(op.requestId);
      assert.ok(op.csr && op.csr.length > 100, "the operation has the request");
      // The CSR's public key is the certificate's: its SubjectPublicKeyInfo appears in the request.
      const spki = x509(cert.cer).publicKey.export({ type: "spki", format: "der" });
      assert.ok(Buffer.from(op.csr).includes(spki), "the CSR carries the certificate's public key");
    });

    it("an EC P-256 certificate in PEM, with names, usages and EKUs as the policy asks", async () => {
      const cert = await create("ec-pem", {
        issuerName: "Self",
        subject: "CN=www.example.com, O=Contoso, C=US",
        subjectAlternativeNames: { dnsNames: ["www.example.com", "*.api.example.com"], emails: ["ops@example.com"] },
        keyType: "EC",
        keyCurveName: "P-256",
        contentType: "application/x-pem-file",
        keyUsage: ["digitalSignature", "keyAgreement"],
        enhancedKeyUsage: ["1.3.6.1.5.5.7.3.1"],
        validityInMonths: 3,
      });
      const parsed = x509(cert.cer);
      assert.equal(parsed.publicKey.asymmetricKeyType, "ec");
      assert.equal(parsed.publicKey.asymmetricKeyDetails.namedCurve, "prime256v1");
      assert.match(parsed.subject, /CN=www\.example\.com/);
      assert.match(parsed.subject, /O=Contoso/);
      assert.match(parsed.subjectAltName, /DNS:www\.example\.com/);
      assert.match(parsed.subjectAltName, /DNS:\*\.api\.example\.com/);
      assert.match(parsed.subjectAltName, /email:ops@example\.com/);
      assert.equal(parsed.checkHost("www.example.com"), "www.example.com");
      assert.deepEqual(parsed.keyUsage, ["1.3.6.1.5.5.7.3.1"], "Node reports the EKUs as keyUsage");
      assert.equal(cert.policy.keyType, "EC");
      assert.equal(cert.policy.keyCurveName, "P-256");
      assert.deepEqual(cert.policy.subjectAlternativeNames.dnsNames, ["www.example.com", "*.api.example.com"]);
      const days = (cert.properties.expiresOn - cert.properties.notBefore) / DAY;
      assert.ok(days >= 89 && days <= 92, `3 months is ${days} days`);

      // The secret holds the key (PKCS#8) and then the certificate, and they match.
      const secret = await secrets.getSecret("ec-pem");
      sensitive.add(pemBlocks(secret.value, "PRIVATE KEY")[0]);
      assert.equal(secret.properties.contentType, "application/x-pem-file");
      assert.equal(secret.properties.managed, true);
      assert.equal(secret.properties.certificateKeyId, cert.keyId);
      assert.ok(secret.value.indexOf("-----BEGIN PRIVATE KEY-----") < secret.value.indexOf("-----BEGIN CERTIFICATE-----"));
      const key = crypto.createPrivateKey(pemBlocks(secret.value, "PRIVATE KEY")[0]);
      const inSecret = new crypto.X509Certificate(pemBlocks(secret.value, "CERTIFICATE")[0]);
      assert.ok(inSecret.checkPrivateKey(key), "the key in the secret is the certificate's");
      assert.deepEqual(inSecret.raw, Buffer.from(cert.cer));
    });

    for (const [keyType, detail] of [["RSA", { keySize: 3072 }], ["EC", { keyCurveName: "P-384" }], ["EC", { keyCurveName: "P-521" }]]) {
      it(`${keyType} ${JSON.stringify(detail)} makes a key of that size or curve`, async () => {
        const name = `kind-${keyType}-${detail.keySize ?? detail.keyCurveName}`.toLowerCase();
        const cert = await create(name, { issuerName: "Self", subject: `CN=${name}`, keyType, ...detail });
        const pk = x509(cert.cer).publicKey;
        if (detail.keySize) assert.equal(pk.asymmetricKeyDetails.modulusLength, detail.keySize);
        else assert.equal(pk.asymmetricKeyDetails.namedCurve, { "P-384": "secp384r1", "P-521": "secp521r1" }[detail.keyCurveName]);
        assert.ok(x509(cert.cer).verify(pk));
      });
    }

    it("a PKCS#12 secret is a password-less PFX of the key and the certificate that TLS can use", async () => {
      const cert = await create("pfx-secret", { issuerName: "Self", subject: "CN=localhost", subjectAlternativeNames: { dnsNames: ["localhost"] } });
      const secret = await secrets.getSecret("pfx-secret");
      sensitive.add(secret.value);
      assert.equal(secret.properties.contentType, "application/x-pkcs12");
      assert.equal(secret.properties.managed, true);
      assert.equal(secret.properties.certificateKeyId, cert.keyId);
      assert.equal(secret.properties.version, cert.properties.version);
      const pfx = Buffer.from(secret.value, "base64");
      // A TLS server made from the PFX serves the certificate to a client that trusts it.
      const server = tls.createServer({ pfx }, (socket) => socket.end("ok"));
      await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const served = await new Promise((resolve, reject) => {
          const socket = tls.connect({ port: server.address().port, host: "127.0.0.1", servername: "localhost", ca: x509(cert.cer).toString() }, () => {
            resolve(socket.getPeerX509Certificate());
            socket.end();
          });
          socket.on("error", reject);
        });
        assert.deepEqual(served.raw, Buffer.from(cert.cer));
      } finally {
        server.close();
      }
    });

    it("the certificate's key is a managed key that signs for the certificate", async () => {
      const cert = await create("signer", { issuerName: "Self", subject: "CN=signer", keyType: "EC", keyCurveName: "P-256" });
      const key = await keys.getKey("signer");
      assert.equal(key.id, cert.keyId);
      assert.equal(key.properties.managed, true);
      assert.deepEqual([...key.keyOperations].sort(), ["sign", "verify"]);
      const digest = crypto.createHash("sha256").update("signed by a certificate's key").digest();
      const signed = await new CryptographyClient(key.id, credential, { tlsOptions }).sign("ES256", digest);
      const ok = crypto.verify(null, Buffer.from("signed by a certificate's key"),
        { key: x509(cert.cer).publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(signed.result));
      assert.ok(ok, "the signature verifies with the certificate's public key");
    });

    it("a second create makes a new version with a new key, and versions are listed", async () => {
      const first = await create("two-versions", { issuerName: "Self", subject: "CN=two" });
      const second = await create("two-versions", { issuerName: "Self", subject: "CN=two" });
      assert.notEqual(second.properties.version, first.properties.version);
      assert.notDeepEqual(Buffer.from(second.cer), Buffer.from(first.cer));
      const spki = (c) => x509(c.cer).publicKey.export({ type: "spki", format: "der" });
      assert.notDeepEqual(spki(second), spki(first), "reuse_key is false: a new key");
      const latest = await certificates.getCertificate("two-versions");
      assert.equal(latest.properties.version, second.properties.version);
      const old = await certificates.getCertificateVersion("two-versions", first.properties.version);
      assert.deepEqual(Buffer.from(old.cer), Buffer.from(first.cer));
      const versions = await collect(certificates.listPropertiesOfCertificateVersions("two-versions"));
      assert.deepEqual(versions.map((v) => v.version).sort(), [first.properties.version, second.properties.version].sort());
      // The secret and the key follow: the latest is the second version.
      assert.equal((await secrets.getSecret("two-versions")).properties.version, second.properties.version);
      assert.equal((await keys.getKey("two-versions")).properties.version, second.properties.version);
      const all = await collect(certificates.listPropertiesOfCertificates());
      const item = all.find((c) => c.name === "two-versions");
      assert.ok(item, "the certificate is listed");
      assert.equal(item.id, `${coffer.vaultUrl}/certificates/two-versions`);
      assert.deepEqual(Buffer.from(item.x509Thumbprint), Buffer.from(second.properties.x509Thumbprint));
    });
  });

  describe("policy and properties", () => {
    it("updateCertificatePolicy changes what the next version is made with", async () => {
      await create("policy-change", { issuerName: "Self", subject: "CN=before", validityInMonths: 12 });
      // The SDK's updateCertificatePolicy resolves to an empty policy whatever the service answers
      // (4.10.3 never reads the response body), so the result is read back with a get.
      await certificates.updateCertificatePolicy("policy-change", {
        issuerName: "Self", subject: "CN=after", validityInMonths: 6,
      });
      const updated = await certificates.getCertificatePolicy("policy-change");
      assert.equal(updated.subject, "CN=after");
      assert.equal(updated.validityInMonths, 6);
      assert.equal(updated.keyType, "RSA", "what the patch does not name is kept");
      const poller = await certificates.beginCreateCertificate("policy-change", await certificates.getCertificatePolicy("policy-change"), POLL);
      const next = await poller.pollUntilDone();
      assert.match(x509(next.cer).subject, /CN=after/);
    });

    it("updateCertificateProperties disables the version with its key and secret, and sets tags", async () => {
      const cert = await create("disable-me", { issuerName: "Self", subject: "CN=disable" });
      const updated = await certificates.updateCertificateProperties("disable-me", cert.properties.version, {
        enabled: false, tags: { env: "test" },
      });
      assert.equal(updated.properties.enabled, false);
      assert.deepEqual(updated.properties.tags, { env: "test" });
      await rejectsWith(secrets.getSecret("disable-me"), 403, "Forbidden");
      assert.equal((await keys.getKey("disable-me")).properties.enabled, false);
      await certificates.updateCertificateProperties("disable-me", cert.properties.version, { enabled: true });
      assert.ok((await secrets.getSecret("disable-me")).value);
    });

    it("the managed key and secret are read-only through their own APIs", async () => {
      await create("read-only", { issuerName: "Self", subject: "CN=ro" });
      await rejectsWith(secrets.setSecret("read-only", "overwrite"), 403, "Forbidden");
      await rejectsWith(secrets.updateSecretProperties("read-only", "", { enabled: false }), 403, "Forbidden");
      await rejectsWith(secrets.beginDeleteSecret("read-only"), 403, "Forbidden");
      await rejectsWith(keys.updateKeyProperties("read-only", "", { enabled: false }), 403, "Forbidden");
      await rejectsWith(keys.beginDeleteKey("read-only"), 403, "Forbidden");
      assert.equal((await secrets.getSecret("read-only")).properties.enabled, true);
    });

    it("a certificate cannot take the name of an existing secret or key", async () => {
      await secrets.setSecret("plain-secret", "v");
      await rejectsWith(create("plain-secret", { issuerName: "Self", subject: "CN=x" }), 409, "Conflict");
      await keys.createEcKey("plain-key");
      await rejectsWith(create("plain-key", { issuerName: "Self", subject: "CN=x" }), 409, "Conflict");
      await rejectsWith(certificates.getCertificate("plain-key"), 404, "CertificateNotFound");
      assert.equal((await secrets.getSecret("plain-secret")).value, "v");
    });
  });

  describe("import", () => {
    it("imports the PEM of another certificate, raw text with the PEM content type", async () => {
      const source = await create("pem-source", { issuerName: "Self", subject: "CN=pem", contentType: "application/x-pem-file" });
      const pem = (await secrets.getSecret("pem-source")).value;
      sensitive.add(pemBlocks(pem, "PRIVATE KEY")[0]);
      const imported = await certificates.importCertificate("pem-imported", Buffer.from(pem), {
        policy: { contentType: "application/x-pem-file" },
      });
      assert.deepEqual(Buffer.from(imported.cer), Buffer.from(source.cer));
      assert.equal(imported.policy.issuerName, "Unknown");
      assert.equal(imported.policy.subject, "CN=pem");
      const secret = await secrets.getSecret("pem-imported");
      assert.equal(secret.properties.contentType, "application/x-pem-file");
      const key = crypto.createPrivateKey(pemBlocks(secret.value, "PRIVATE KEY")[0]);
      assert.ok(x509(imported.cer).checkPrivateKey(key));
    });

    it("imports a PFX made by openssl with a password, and refuses a wrong password without echoing it", async () => {
      const dir = tmpdir();
      try {
        execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", path.join(dir, "k.pem"), "-out", path.join(dir, "c.pem"), "-days", "30", "-subj", "/CN=openssl.example"], { stdio: "ignore" });
        const password = `pw-${crypto.randomUUID()}`;
        sensitive.add(password);
        execFileSync("openssl", ["pkcs12", "-export", "-inkey", path.join(dir, "k.pem"), "-in", path.join(dir, "c.pem"),
          "-out", path.join(dir, "c.pfx"), "-passout", `pass:${password}`], { stdio: "ignore" });
        const pfx = fs.readFileSync(path.join(dir, "c.pfx"));
        const wrong = `wrong-${crypto.randomUUID()}`;
        await assert.rejects(certificates.importCertificate("pfx-imported", pfx, { password: wrong }), (err) => {
          assert.equal(err.statusCode, 400);
          assert.equal(err.code, "BadParameter");
          assert.ok(!err.message.includes(wrong), "the message does not contain the password");
          return true;
        });
        const imported = await certificates.importCertificate("pfx-imported", pfx, { password });
        const expected = new crypto.X509Certificate(fs.readFileSync(path.join(dir, "c.pem")));
        assert.deepEqual(Buffer.from(imported.cer), expected.raw);
        assert.equal(imported.policy.keyType, "EC");
        assert.equal(imported.policy.contentType, "application/x-pkcs12");
        // The stored PFX has no password.
        const secret = await secrets.getSecret("pfx-imported");
        sensitive.add(secret.value);
        assert.doesNotThrow(() => tls.createSecureContext({ pfx: Buffer.from(secret.value, "base64") }));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("refuses garbage, a certificate without its key and a truncated PFX with 400 and keeps serving", async () => {
      await rejectsWith(certificates.importCertificate("bad-import", Buffer.from("not a certificate at all")), 400, "BadParameter");
      const lone = await create("lone-source", { issuerName: "Self", subject: "CN=lone" });
      const certOnly = x509(lone.cer).toString();
      await rejectsWith(certificates.importCertificate("bad-import", Buffer.from(certOnly), { policy: { contentType: "application/x-pem-file" } }), 400, "BadParameter");
      const pfx = Buffer.from((await secrets.getSecret("lone-source")).value, "base64");
      await rejectsWith(certificates.importCertificate("bad-import", pfx.subarray(0, pfx.length / 2)), 400, "BadParameter");
      await rejectsWith(certificates.getCertificate("bad-import"), 404, "CertificateNotFound");
      assert.ok(await certificates.getCertificate("lone-source"));
    });
  });

  describe("bad policies", () => {
    const cases = [
      ["an RSA size Key Vault does not make", { issuerName: "Self", subject: "CN=x", keyType: "RSA", keySize: 1024 }],
      ["an unknown curve", { issuerName: "Self", subject: "CN=x", keyType: "EC", keyCurveName: "P-192" }],
      ["an unknown content type", { issuerName: "Self", subject: "CN=x", contentType: "text/plain" }],
      ["a subject that does not parse", { issuerName: "Self", subject: "CN" }],
      ["a DNS name that is not one", { issuerName: "Self", subject: "CN=x", subjectAlternativeNames: { dnsNames: ["bad name!"] } }],
      ["an unknown key usage", { issuerName: "Self", subject: "CN=x", keyUsage: ["everything"] }],
      ["an EKU that is not an OID", { issuerName: "Self", subject: "CN=x", enhancedKeyUsage: ["serverAuth"] }],
      ["zero months", { issuerName: "Self", subject: "CN=x", validityInMonths: 0 }],
      ["an issuer this vault does not have", { issuerName: "DigiCert", subject: "CN=x" }],
    ];
    for (const [what, policy] of cases) {
      it(`refuses ${what} with 400 BadParameter and writes nothing`, async () => {
        await rejectsWith(certificates.beginCreateCertificate("bad-policy", policy, POLL), 400, "BadParameter");
        await rejectsWith(certificates.getCertificate("bad-policy"), 404, "CertificateNotFound");
        await rejectsWith(keys.getKey("bad-policy"), 404);
        await rejectsWith(secrets.getSecret("bad-policy"), 404);
      });
    }
  });

  describe("delete, recover, purge", () => {
    it("deleting a certificate deletes its key and secret; recovering brings all three back", async () => {
      const cert = await create("lifecycle", { issuerName: "Self", subject: "CN=life" });
      const poller = await certificates.beginDeleteCertificate("lifecycle", POLL);
      const deleted = await poller.pollUntilDone();
      assert.equal(deleted.recoveryId, `${coffer.vaultUrl}/deletedcertificates/lifecycle`);
      assertRecentDate(deleted.deletedOn);
      assert.ok(deleted.scheduledPurgeDate > deleted.deletedOn);
      await rejectsWith(certificates.getCertificate("lifecycle"), 404, "CertificateNotFound");
      await rejectsWith(secrets.getSecret("lifecycle"), 404);
      await rejectsWith(keys.getKey("lifecycle"), 404);
      assert.equal((await certificates.getDeletedCertificate("lifecycle")).properties.version, cert.properties.version);
      const deletedNames = (await collect(certificates.listDeletedCertificates())).map((c) => c.name);
      assert.ok(deletedNames.includes("lifecycle"));
      const deletedSecrets = (await collect(secrets.listDeletedSecrets())).map((s) => s.name);
      assert.ok(!deletedSecrets.includes("lifecycle"), "the certificate's secret is not listed as a deleted secret");
      await rejectsWith(create("lifecycle", { issuerName: "Self", subject: "CN=life" }), 409, "Conflict");

      const recovered = await (await certificates.beginRecoverDeletedCertificate("lifecycle", POLL)).pollUntilDone();
      assert.equal(recovered.properties.version, cert.properties.version);
      assert.equal((await secrets.getSecret("lifecycle")).properties.version, cert.properties.version);
      assert.equal((await keys.getKey("lifecycle")).properties.version, cert.properties.version);
    });

    it("purging removes the certificate, its key and its secret for good", async () => {
      await create("purge-me", { issuerName: "Self", subject: "CN=purge" });
      await (await certificates.beginDeleteCertificate("purge-me", POLL)).pollUntilDone();
      await certificates.purgeDeletedCertificate("purge-me");
      await rejectsWith(certificates.getDeletedCertificate("purge-me"), 404);
      await rejectsWith(secrets.getDeletedSecret("purge-me"), 404);
      await rejectsWith(keys.getDeletedKey("purge-me"), 404);
      // The name is free again.
      await secrets.setSecret("purge-me", "plain now");
      assert.equal((await secrets.getSecret("purge-me")).properties.managed, undefined);
    });
  });

  describe("authorization", () => {
    it("access-policy certificate permissions decide each operation", async () => {
      await create("guarded", { issuerName: "Self", subject: "CN=guarded" });
      const none = (await principalWithCertificatePermissions("certs-none", [])).client;
      await rejectsWith(none.getCertificate("guarded"), 403, "Forbidden");
      const reader = (await principalWithCertificatePermissions("certs-get", ["get"])).client;
      assert.ok((await reader.getCertificate("guarded")).cer);
      assert.ok(await reader.getCertificatePolicy("guarded"));
      await rejectsWith(collect(reader.listPropertiesOfCertificates()), 403, "Forbidden");
      await rejectsWith(reader.beginCreateCertificate("by-reader", DefaultCertificatePolicy, POLL), 403, "Forbidden");
      await rejectsWith(reader.beginDeleteCertificate("guarded", POLL), 403, "Forbidden");
      const creator = await principalWithCertificatePermissions("certs-create", ["get", "create"]);
      const made = await (await creator.client.beginCreateCertificate("by-creator", DefaultCertificatePolicy, POLL)).pollUntilDone();
      assert.ok(made.cer);
      // Certificate permissions say nothing about the secret that holds the private key.
      const creatorSecrets = new SecretClient(coffer.vaultUrl, creator.cred, { tlsOptions });
      await rejectsWith(creatorSecrets.getSecret("by-creator"), 403, "Forbidden");
    });
  });

  describe("server process", () => {
    it("the server exits with status 0 on SIGTERM", async () => {
      const result = await coffer.stop();
      assert.equal(result.killedHard, false, "needed SIGKILL: SIGTERM did not end it");
      assert.deepEqual({ code: result.code, signal: result.signal }, { code: 0, signal: null },
        `exit status after SIGTERM\n--- log tail ---\n${coffer.logs().slice(-3000)}`);
    });

    it("the server's output contains none of the private keys or passwords", async () => {
      await coffer.stop();
      const logs = coffer.logs();
      assert.ok(sensitive.size > 6, `the suite tracked ${sensitive.size} sensitive strings`);
      const leaked = [...sensitive].filter((s) => logs.includes(s));
      assert.deepEqual(leaked, [], "sensitive strings found in the server's log output");
    });
  });
});

function assertRecentDate(date) {
  assert.ok(date instanceof Date && Math.abs(Date.now() - date.getTime()) < 5 * MINUTE, `${date} is close to now`);
}
