// Conformance of the official @azure/keyvault-certificates client (CertificateClient) with Coffer's
// certificates API, and of the certificate's key and secret as the keys and secrets clients see them.
//
// One real `coffer server --dev` process serves the whole file.  The clients are configured as in
// secrets.test.mjs: the vault URL, the server's CA (tlsOptions.ca), the authority host and
// disableInstanceDiscovery; nothing is opted out of.  What the server returns is checked with Node's
// own crypto as well as through the SDK: certificates are parsed with X509Certificate, PFX files are
// loaded into a TLS context (which refuses a key that does not match its certificate), signatures made
// with a certificate's key are verified with the certificate's public key.
//
// The Unknown issuer: a CA made with the openssl CLI in a temporary directory signs the operation's CSR
// (Node's crypto cannot sign certificates), and mergeCertificate takes the chain; cancel and delete of
// an operation; contacts; issuers, including one of Coffer's own provider whose certificates verify
// against the CA the server serves at /coffer/v1/ca; backup and restore.  Where the SDK drops what the
// server answered, a client that keeps the responses (capturingClient) shows what the wire said.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
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

/**
 * A CertificateClient of the dev administrator that keeps every response: `wire` holds
 * { method, url, status, body } with the body as text, for what the SDK does not pass on.
 */
function capturingClient() {
  const wire = [];
  const client = new CertificateClient(coffer.vaultUrl, credential, {
    tlsOptions,
    additionalPolicies: [{
      position: "perCall",
      policy: {
        name: "coffer-test-capture",
        async sendRequest(request, next) {
          const response = await next(request);
          wire.push({ method: request.method, url: request.url, status: response.status, body: response.bodyAsText });
          return response;
        },
      },
    }],
  });
  /** The JSON body of the last response to `method` on a URL whose path ends with `pathEnd`. */
  const answer = (method, pathEnd, status) => {
    const hit = wire.filter((w) => w.method === method && new URL(w.url).pathname.endsWith(pathEnd)).at(-1);
    assert.ok(hit, `no ${method} ...${pathEnd} on the wire`);
    assert.equal(hit.status, status, `${method} ...${pathEnd}: ${hit.body}`);
    return JSON.parse(hit.body);
  };
  return { client, wire, answer };
}

/** An HTTPS request to the server, trusting its CA; `token` adds a bearer token. Resolves to { status, headers, body }. */
function httpsRequest(url, { method = "GET", token, json } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    const body = json === undefined ? undefined : JSON.stringify(json);
    if (body !== undefined) headers["content-type"] = "application/json";
    const req = https.request(url, { method, headers, ca: coffer.ca, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A Key Vault request outside the SDK, with the dev administrator's token for the vault. */
async function vaultRequest(method, pathname, json) {
  const { token } = await credential.getToken(`https://vault.localhost:${coffer.port}/.default`);
  return httpsRequest(`${coffer.vaultUrl}${pathname}?api-version=7.5`, { method, token, json });
}

function openssl(...args) {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} exited with ${r.status}:\n${r.stderr}`);
  return r;
}

/** A CA made with the openssl CLI in dir (ca.key, ca.crt): its certificate. */
function makeCa(dir, cn) {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", path.join(dir, "ca.key"), "-out", path.join(dir, "ca.crt"), "-days", "30", "-subj", `/CN=${cn}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  return new crypto.X509Certificate(fs.readFileSync(path.join(dir, "ca.crt")));
}

/** A CSR (DER bytes or standard base64) as a PEM file in dir; its path. */
function csrFile(dir, csr) {
  const b64 = typeof csr === "string" ? csr : Buffer.from(csr).toString("base64");
  const file = path.join(dir, `req-${crypto.randomUUID()}.csr`);
  fs.writeFileSync(file, `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g).join("\n")}\n-----END CERTIFICATE REQUEST-----\n`);
  return file;
}

/** The CSR signed by the CA in dir with `openssl x509 -req`, its extensions copied: the PEM file's path. */
function signCsrToFile(dir, csr, ...extra) {
  const out = path.join(dir, `leaf-${crypto.randomUUID()}.crt`);
  openssl("x509", "-req", "-in", csrFile(dir, csr), "-CA", path.join(dir, "ca.crt"), "-CAkey", path.join(dir, "ca.key"),
    "-set_serial", `0x${crypto.randomBytes(8).toString("hex")}`, "-days", "30", "-copy_extensions", "copy",
    "-out", out, ...extra);
  return out;
}

function signCsr(dir, csr, ...extra) {
  return new crypto.X509Certificate(fs.readFileSync(signCsrToFile(dir, csr, ...extra)));
}

/** What openssl reads in a CSR: its subject line, whether its self-signature verifies, its public key (SPKI DER). */
function readCsr(dir, csr) {
  const file = csrFile(dir, csr);
  const r = openssl("req", "-in", file, "-noout", "-subject", "-verify");
  const pub = openssl("req", "-in", file, "-noout", "-pubkey").stdout;
  return {
    subject: r.stdout.trim(),
    verified: /verify OK/.test(r.stderr + r.stdout),
    spki: crypto.createPublicKey(pub).export({ type: "spki", format: "der" }),
  };
}

/** The certificates of a password-less PFX (base64), as read by `openssl pkcs12`, each as DER. */
function pfxCertificates(dir, base64Pfx) {
  const file = path.join(dir, `s-${crypto.randomUUID()}.pfx`);
  fs.writeFileSync(file, Buffer.from(base64Pfx, "base64"));
  const pem = openssl("pkcs12", "-in", file, "-nokeys", "-passin", "pass:").stdout;
  return pemBlocks(pem, "CERTIFICATE").map((b) => new crypto.X509Certificate(b).raw);
}

function spkiOf(cer) {
  return x509(cer).publicKey.export({ type: "spki", format: "der" });
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

  describe("the Unknown issuer: operation, merge, cancel and delete", () => {
    let dir;
    let ca;
    // The operation of "unknown-merge" as the create's 202 said it, for the merge that follows.
    let created;

    before(() => {
      dir = tmpdir();
      ca = makeCa(dir, "Coffer JS test merge CA");
    });

    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("beginCreateCertificate with the Unknown issuer answers an operation in progress with a CSR for the policy", async () => {
      const { client, answer } = capturingClient();
      const poller = await client.beginCreateCertificate("unknown-merge", {
        issuerName: "Unknown", subject: "CN=merge.example", subjectAlternativeNames: { dnsNames: ["merge.example"] },
      }, POLL);
      const state = poller.getOperationState();
      assert.equal(state.isStarted, true);
      assert.ok(!state.isCompleted && !state.isCancelled, "the poller waits for a merge");
      created = answer("POST", "/certificates/unknown-merge/create", 202);
      assert.equal(created.status, "inProgress");
      assert.equal(created.issuer.name, "Unknown");
      assert.equal(created.id, `${coffer.vaultUrl}/certificates/unknown-merge/pending`);
      assert.equal(created.cancellation_requested, false);
      assert.ok(created.request_id);
      const csr = readCsr(dir, created.csr);
      assert.equal(csr.subject, "subject=CN = merge.example");
      assert.ok(csr.verified, "the CSR is signed by its own key");
      // Nothing holds a private key until the merge; a second create must wait for it.
      await rejectsWith(secrets.getSecret("unknown-merge"), 404, "SecretNotFound");
      await rejectsWith(certificates.beginCreateCertificate("unknown-merge", { issuerName: "Unknown", subject: "CN=again" }, POLL), 409, "Conflict");
    });

    it("getCertificateOperation of an operation in progress has its CSR in the poller's state", async () => {
      // As the SDK's own example of mergeCertificate starts (CertificateClient.mergeCertificate's doc comment).
      await certificates.beginCreateCertificate("unknown-operation", { issuerName: "Unknown", subject: "CN=op.example" }, POLL);
      const poller = await certificates.getCertificateOperation("unknown-operation", POLL);
      const op = poller.getOperationState().certificateOperation;
      assert.equal(op.status, "inProgress");
      assert.equal(op.issuerName, "Unknown");
      assert.ok(readCsr(dir, op.csr).verified);
      assert.equal(poller.getOperationState().isCompleted, undefined);
    });

    it("mergeCertificate with the chain openssl signed makes the certificate, its managed key and secret", async () => {
      assert.ok(created, "the create test ran");
      const leaf = signCsr(dir, created.csr);
      const merged = await certificates.mergeCertificate("unknown-merge", [leaf.raw, ca.raw]);
      assert.equal(merged.name, "unknown-merge");
      assert.ok(merged.properties.version);
      assert.equal(merged.properties.enabled, true);
      assert.deepEqual(Buffer.from(merged.cer), leaf.raw);
      assert.ok(x509(merged.cer).verify(ca.publicKey), "signed by the CA");
      assert.deepEqual(spkiOf(merged.cer), readCsr(dir, created.csr).spki, "the certificate carries the CSR's key");
      assert.equal(merged.policy.issuerName, "Unknown");
      assert.equal(merged.keyId, `${coffer.vaultUrl}/keys/unknown-merge/${merged.properties.version}`);
      assert.deepEqual(Buffer.from((await certificates.getCertificate("unknown-merge")).cer), leaf.raw);
      // The secret is a PFX of the pending key with the chain, leaf first.
      const secret = await secrets.getSecret("unknown-merge");
      sensitive.add(secret.value);
      assert.equal(secret.properties.managed, true);
      assert.doesNotThrow(() => tls.createSecureContext({ pfx: Buffer.from(secret.value, "base64") }),
        "the key in the PFX is the certificate's");
      assert.deepEqual(pfxCertificates(dir, secret.value), [leaf.raw, ca.raw]);
      const key = await keys.getKey("unknown-merge");
      assert.equal(key.properties.managed, true);
      assert.equal(key.id, merged.keyId);
      // Now that the certificate exists, the operation reads as completed.
      const poller = await certificates.getCertificateOperation("unknown-merge", POLL);
      const op = poller.getOperationState().certificateOperation;
      assert.equal(op.status, "completed");
      assert.equal(op.requestId, created.request_id);
      assert.equal(Buffer.from(op.csr).toString("base64"), created.csr);
      assert.equal(poller.getOperationState().isCompleted, true);
      assert.deepEqual(Buffer.from(poller.getResult().cer), leaf.raw);
    });

    it("a certificate for another key is 400 and leaves the operation mergeable; a second merge is 404", async () => {
      const { client, answer } = capturingClient();
      await client.beginCreateCertificate("unknown-refusals", { issuerName: "Unknown", subject: "CN=refusals.example" }, POLL);
      const op = answer("POST", "/certificates/unknown-refusals/create", 202);
      const other = path.join(dir, "other.pub");
      fs.writeFileSync(other, crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
      const wrong = signCsr(dir, op.csr, "-force_pubkey", other);
      await rejectsWith(certificates.mergeCertificate("unknown-refusals", [wrong.raw]), 400, "BadParameter");
      await rejectsWith(secrets.getSecret("unknown-refusals"), 404, "SecretNotFound");
      const right = signCsr(dir, op.csr);
      const merged = await certificates.mergeCertificate("unknown-refusals", [right.raw]);
      assert.deepEqual(Buffer.from(merged.cer), right.raw);
      await rejectsWith(certificates.mergeCertificate("unknown-refusals", [right.raw]), 404, "PendingCertificateNotFound");
      assert.equal((await certificates.getCertificate("unknown-refusals")).properties.version, merged.properties.version);
    });

    it("mergeCertificate as the SDK's own example calls it, with the bytes of the PEM's base64 text", async () => {
      const { client, answer } = capturingClient();
      await client.beginCreateCertificate("unknown-merge-text", { issuerName: "Unknown", subject: "CN=text.example" }, POLL);
      const op = answer("POST", "/certificates/unknown-merge-text/create", 202);
      const crt = signCsrToFile(dir, op.csr);
      const base64Crt = fs.readFileSync(crt).toString().split("\n").slice(1, -1).join("");
      const merged = await certificates.mergeCertificate("unknown-merge-text", [Buffer.from(base64Crt)]);
      assert.deepEqual(Buffer.from(merged.cer), new crypto.X509Certificate(fs.readFileSync(crt)).raw);
    });

    it("the create poller's cancelOperation cancels the operation; a merge is then 409 and a new create starts over", async () => {
      const { client, answer } = capturingClient();
      const poller = await client.beginCreateCertificate("unknown-cancel", { issuerName: "Unknown", subject: "CN=cancel.example" }, POLL);
      const op = answer("POST", "/certificates/unknown-cancel/create", 202);
      await poller.cancelOperation();
      assert.equal(poller.getOperationState().isCancelled, true);
      const cancelled = answer("PATCH", "/certificates/unknown-cancel/pending", 200);
      assert.equal(cancelled.status, "cancelled");
      assert.equal(cancelled.cancellation_requested, true);
      assert.equal(cancelled.request_id, op.request_id);
      const pending = await vaultRequest("GET", "/certificates/unknown-cancel/pending");
      assert.equal(pending.status, 200, pending.body);
      assert.equal(JSON.parse(pending.body).status, "cancelled");
      await rejectsWith(certificates.mergeCertificate("unknown-cancel", [signCsr(dir, op.csr).raw]), 409, "Conflict");
      // Until a new create or a delete replaces it, the certificate reads as the cancelled
      // operation's version-to-be: disabled, without a certificate.
      const waiting = await certificates.getCertificate("unknown-cancel");
      assert.equal(waiting.properties.enabled, false);
      assert.equal(waiting.cer, undefined);
      assert.equal(waiting.policy.issuerName, "Unknown");
      await client.beginCreateCertificate("unknown-cancel", { issuerName: "Unknown", subject: "CN=cancel.example" }, POLL);
      const again = answer("POST", "/certificates/unknown-cancel/create", 202);
      assert.equal(again.status, "inProgress");
      assert.notEqual(again.request_id, op.request_id);
    });

    it("deleteCertificateOperation returns the operation in progress and drops it; the name is then free", async () => {
      const { client, answer } = capturingClient();
      await client.beginCreateCertificate("unknown-delete", { issuerName: "Unknown", subject: "CN=delete.example" }, POLL);
      const op = answer("POST", "/certificates/unknown-delete/create", 202);
      const deleted = await certificates.deleteCertificateOperation("unknown-delete");
      assert.equal(deleted.status, "inProgress");
      assert.equal(deleted.issuerName, "Unknown");
      assert.equal(deleted.requestId, op.request_id);
      assert.equal(Buffer.from(deleted.csr).toString("base64"), op.csr);
      const pending = await vaultRequest("GET", "/certificates/unknown-delete/pending");
      assert.equal(pending.status, 404, pending.body);
      await rejectsWith(certificates.mergeCertificate("unknown-delete", [signCsr(dir, op.csr).raw]), 404, "PendingCertificateNotFound");
      const cert = await create("unknown-delete", { issuerName: "Self", subject: "CN=delete.example" });
      assert.notDeepEqual(spkiOf(cert.cer), readCsr(dir, op.csr).spki, "nothing of the dropped operation is used");
    });

    it("cancelling or deleting a finished operation leaves the certificate as it is", async () => {
      const cert = await create("finished-op", { issuerName: "Self", subject: "CN=finished" });
      const poller = await certificates.getCertificateOperation("finished-op", POLL);
      await poller.cancelOperation();
      const op = poller.getOperationState().certificateOperation;
      assert.equal(op.status, "completed");
      assert.equal(op.cancellationRequested, false);
      const deleted = await certificates.deleteCertificateOperation("finished-op");
      assert.equal(deleted.status, "completed");
      assert.equal(deleted.issuerName, "Self");
      const pending = await vaultRequest("GET", "/certificates/finished-op/pending");
      assert.equal(pending.status, 404, pending.body);
      assert.deepEqual(JSON.parse(pending.body).error,
        { code: "PendingCertificateNotFound", message: "Pending certificate not found: finished-op" });
      const got = await certificates.getCertificate("finished-op");
      assert.equal(got.properties.version, cert.properties.version);
      assert.deepEqual(Buffer.from(got.cer), Buffer.from(cert.cer));
    });
  });

  describe("contacts", () => {
    it("setContacts, getContacts and deleteContacts; with none set, 404 ContactsNotFound", async () => {
      await rejectsWith(certificates.getContacts(), 404, "ContactsNotFound");
      const contacts = [
        { email: "ops@example.com", name: "Ops on call", phone: "+1 555 0100" },
        { email: "pki@example.com", name: undefined, phone: undefined },
      ];
      assert.deepEqual(await certificates.setContacts(contacts), contacts);
      assert.deepEqual(await certificates.getContacts(), contacts);
      const { client, answer } = capturingClient();
      const removed = await client.deleteContacts();
      // deleteContacts (4.10.3) reads the raw response body as if it were deserialized and always
      // resolves to []; the wire has the removed list.
      assert.deepEqual(removed, []);
      assert.deepEqual(answer("DELETE", "/certificates/contacts", 200), {
        id: `${coffer.vaultUrl}/certificates/contacts`,
        contacts: [{ email: "ops@example.com", name: "Ops on call", phone: "+1 555 0100" }, { email: "pki@example.com" }],
      });
      await rejectsWith(certificates.getContacts(), 404, "ContactsNotFound");
      await rejectsWith(certificates.setContacts([{ email: "ops.example.com" }]), 400, "BadParameter");
      await rejectsWith(certificates.getContacts(), 404, "ContactsNotFound");
    });
  });

  describe("issuers", () => {
    const admin = { firstName: "Ada", lastName: "Lovelace", email: "ada@example.com", phone: "+1 555 0101" };

    function assertIssuer(issuer, provider, accountId) {
      // The SDK's toPublicIssuer parses the issuer's id as a certificate's, so its `name` is
      // "issuers"; the id is the issuer's.
      assert.equal(issuer.id, `${coffer.vaultUrl}/certificates/issuers/js-digicert`);
      assert.equal(issuer.provider, provider);
      assert.equal(issuer.accountId, accountId);
      assert.equal(issuer.password, undefined, "the password is never read back");
      assert.equal(issuer.organizationId, "org-1");
      assert.deepEqual(issuer.administratorContacts, [admin]);
      assert.equal(issuer.enabled, true);
      assertRecentDate(issuer.createdOn);
      assert.ok(issuer.updatedOn >= issuer.createdOn);
    }

    it("createIssuer, getIssuer, updateIssuer, listPropertiesOfIssuers and deleteIssuer; the password is never read back", async () => {
      const password = `issuer-pw-${crypto.randomUUID()}`;
      sensitive.add(password);
      const made = await certificates.createIssuer("js-digicert", "DigiCert", {
        accountId: "acct-1", password, organizationId: "org-1", administratorContacts: [admin], enabled: true,
      });
      assertIssuer(made, "DigiCert", "acct-1");
      assertIssuer(await certificates.getIssuer("js-digicert"), "DigiCert", "acct-1");
      const raw = await vaultRequest("GET", "/certificates/issuers/js-digicert");
      assert.equal(raw.status, 200, raw.body);
      assert.deepEqual(JSON.parse(raw.body).credentials, { account_id: "acct-1" });
      assert.ok(!raw.body.includes(password));
      // updateIssuer (4.10.3) sends `enabled` only when it is true, so it cannot disable an issuer.
      assertIssuer(await certificates.updateIssuer("js-digicert", { accountId: "acct-2" }), "DigiCert", "acct-2");
      assertIssuer(await certificates.getIssuer("js-digicert"), "DigiCert", "acct-2");
      await certificates.createIssuer("js-second", "OneCertV2-PrivateCA");
      const listed = await collect(certificates.listPropertiesOfIssuers());
      const byId = Object.fromEntries(listed.map((i) => [i.id, i.provider]));
      assert.equal(byId[`${coffer.vaultUrl}/certificates/issuers/js-digicert`], "DigiCert");
      assert.equal(byId[`${coffer.vaultUrl}/certificates/issuers/js-second`], "OneCertV2-PrivateCA");
      // Coffer signs only with its own provider's issuers.
      await rejectsWith(certificates.beginCreateCertificate("from-digicert",
        { issuerName: "js-digicert", subject: "CN=public.example" }, POLL), 400, "BadParameter");
      await rejectsWith(certificates.getCertificate("from-digicert"), 404, "CertificateNotFound");
      await rejectsWith(certificates.createIssuer("Self", "Coffer"), 400, "BadParameter");
      await rejectsWith(certificates.createIssuer("Unknown", "Coffer"), 400, "BadParameter");
      assertIssuer(await certificates.deleteIssuer("js-digicert"), "DigiCert", "acct-2");
      await rejectsWith(certificates.getIssuer("js-digicert"), 404);
      const after = (await collect(certificates.listPropertiesOfIssuers())).map((i) => i.id);
      assert.ok(!after.includes(`${coffer.vaultUrl}/certificates/issuers/js-digicert`));
      assert.ok(after.includes(`${coffer.vaultUrl}/certificates/issuers/js-second`));
    });

    /** The installation's CA certificate as GET /coffer/v1/ca serves it, without a token. */
    async function installationCa() {
      const served = await httpsRequest(new URL("/coffer/v1/ca", coffer.authorityHost));
      assert.equal(served.status, 200, served.body);
      assert.match(served.body, /^-----BEGIN CERTIFICATE-----/);
      return new crypto.X509Certificate(served.body);
    }

    it("a certificate of a Coffer-provider issuer is signed by the installation's CA served at /coffer/v1/ca", async () => {
      const ca = await installationCa();
      assert.equal(ca.ca, true);
      assert.ok(ca.verify(ca.publicKey), "self-signed");
      const issuer = await certificates.createIssuer("js-coffer", "Coffer");
      assert.equal(issuer.provider, "Coffer");
      assert.equal(issuer.enabled, true);
      const cert = await create("coffer-issued", {
        issuerName: "js-coffer", subject: "CN=svc.internal.example",
        subjectAlternativeNames: { dnsNames: ["svc.internal.example"] }, validityInMonths: 6,
      });
      const leaf = x509(cert.cer);
      assert.ok(leaf.checkIssued(ca), "the CA's subject is the leaf's issuer");
      assert.ok(leaf.verify(ca.publicKey), "signed by the installation's CA");
      assert.equal(leaf.ca, false);
      assert.match(leaf.subjectAltName, /DNS:svc\.internal\.example/);
      assert.equal(cert.policy.issuerName, "js-coffer");
      const secret = await secrets.getSecret("coffer-issued");
      sensitive.add(secret.value);
      const dir = tmpdir();
      try {
        assert.deepEqual(pfxCertificates(dir, secret.value), [leaf.raw, ca.raw]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const op = (await certificates.getCertificateOperation("coffer-issued", POLL)).getOperationState().certificateOperation;
      assert.equal(op.status, "completed");
      assert.equal(op.issuerName, "js-coffer");
    });

    it("a Coffer issuer's own rules and a disabled Coffer issuer refuse with 400 and write nothing", async () => {
      // Coffer's rules are a member the SDK does not know: set outside it.
      const rules = { allowed_dns_suffixes: ["internal.example"], max_validity_months: 6 };
      const patched = await vaultRequest("PATCH", "/certificates/issuers/js-coffer", { coffer: rules });
      assert.equal(patched.status, 200, patched.body);
      assert.deepEqual(JSON.parse(patched.body).coffer, rules);
      assert.equal((await certificates.getIssuer("js-coffer")).provider, "Coffer");
      const refused = [
        { issuerName: "js-coffer", subject: "CN=svc", subjectAlternativeNames: { dnsNames: ["svc.example.org"] } },
        { issuerName: "js-coffer", subject: "CN=long", subjectAlternativeNames: { dnsNames: ["long.internal.example"] }, validityInMonths: 12 },
      ];
      for (const policy of refused) {
        await rejectsWith(certificates.beginCreateCertificate("coffer-refused", policy, POLL), 400, "BadParameter");
      }
      await rejectsWith(certificates.getCertificate("coffer-refused"), 404, "CertificateNotFound");
      const within = await create("coffer-within", {
        issuerName: "js-coffer", subject: "CN=deep", subjectAlternativeNames: { dnsNames: ["a.b.internal.example"] }, validityInMonths: 6,
      });
      assert.ok(x509(within.cer).verify((await installationCa()).publicKey), "signed by the installation's CA");
      // createIssuer replaces the issuer: disabled, and without the rules.
      assert.equal((await certificates.createIssuer("js-coffer", "Coffer", { enabled: false })).enabled, false);
      await rejectsWith(certificates.beginCreateCertificate("coffer-disabled", {
        issuerName: "js-coffer", subject: "CN=off", subjectAlternativeNames: { dnsNames: ["off.internal.example"] },
      }, POLL), 400, "BadParameter");
      await rejectsWith(certificates.getCertificate("coffer-disabled"), 404, "CertificateNotFound");
    });
  });

  describe("backup and restore", () => {
    it("backupCertificate, then delete and purge, then restoreCertificateBackup brings back the certificate, its key and its secret", async () => {
      const cert = await create("backup-me", { issuerName: "Self", subject: "CN=backup.example", keyType: "EC", keyCurveName: "P-256" });
      const value = (await secrets.getSecret("backup-me")).value;
      sensitive.add(value);
      const backup = await certificates.backupCertificate("backup-me");
      assert.ok(backup instanceof Uint8Array && backup.length > 0);
      assert.ok(!Buffer.from(backup).includes(Buffer.from(value)), "the blob holds no secret value in the clear");
      await (await certificates.beginDeleteCertificate("backup-me", POLL)).pollUntilDone();
      await certificates.purgeDeletedCertificate("backup-me");
      await rejectsWith(certificates.getCertificate("backup-me"), 404, "CertificateNotFound");

      const restored = await certificates.restoreCertificateBackup(backup);
      assert.equal(restored.name, "backup-me");
      assert.equal(restored.properties.version, cert.properties.version);
      assert.deepEqual(Buffer.from(restored.cer), Buffer.from(cert.cer));
      assert.equal(restored.policy.subject, "CN=backup.example");
      const secret = await secrets.getSecret("backup-me");
      assert.equal(secret.value, value);
      assert.equal(secret.properties.managed, true);
      const key = await keys.getKey("backup-me");
      assert.equal(key.properties.managed, true);
      assert.equal(key.id, cert.keyId);
      const digest = crypto.createHash("sha256").update("restored").digest();
      const signed = await new CryptographyClient(key.id, credential, { tlsOptions }).sign("ES256", digest);
      assert.ok(crypto.verify(null, Buffer.from("restored"), { key: x509(cert.cer).publicKey, dsaEncoding: "ieee-p1363" },
        Buffer.from(signed.result)), "the restored key signs for the certificate");

      // The name is taken now: live, then soft-deleted.
      await rejectsWith(certificates.restoreCertificateBackup(backup), 409, "Conflict");
      await (await certificates.beginDeleteCertificate("backup-me", POLL)).pollUntilDone();
      await rejectsWith(certificates.restoreCertificateBackup(backup), 409, "Conflict");
      await rejectsWith(certificates.restoreCertificateBackup(Buffer.from("not a backup")), 400, "BadParameter");
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
