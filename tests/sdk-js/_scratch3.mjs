import { execFileSync } from "node:child_process";
import { startCoffer, parseDevEnv } from "./coffer-server.mjs";
import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
const c = await startCoffer();
const bin = process.env.COFFER_BIN;
const run = (...a) => execFileSync(bin, a, { env: { ...process.env, ...c.env, COFFER_CA_FILE: c.caPath }, encoding: "utf8" });
const tls = { tlsOptions: { ca: c.ca } };
const show = async (label, p) => { try { const r = await p; console.log("OK", label, typeof r === "object" ? JSON.stringify(r).slice(0,100) : r); } catch (err) { console.log("ERR", label, err.name, err.statusCode, err.code, err.message.slice(0, 400)); } };
try {
  const uai = JSON.parse(run("identity", "create", "-n", "uai1", "-g", "rg"));
  const stranger = JSON.parse(run("identity", "create", "-n", "stranger", "-g", "rg"));
  const app = JSON.parse(run("webapp", "create", "-n", "app1", "-g", "rg", "--assign-identity", "[system]", "uai1"));
  const e = parseDevEnv(run("webapp", "identity", "endpoint", "-n", "app1", "-g", "rg", "--env"));
  process.env.IDENTITY_ENDPOINT = e.IDENTITY_ENDPOINT; process.env.IDENTITY_HEADER = e.IDENTITY_HEADER;
  const scope = `https://vault.localhost:${c.port}/.default`;
  const sys = await new ManagedIdentityCredential(tls).getToken(scope);
  const staticCred = (t) => ({ getToken: async () => t });
  await show("sys token on vault (no policy)", new SecretClient(c.vaultUrl, staticCred(sys), tls).getSecret("x"));
  await show("stranger", new ManagedIdentityCredential({ clientId: stranger.clientId, ...tls }).getToken(scope));
  await show("objectId uai", new ManagedIdentityCredential({ objectId: uai.principalId, ...tls }).getToken(scope));
  console.log(run("webapp", "identity", "remove", "-n", "app1", "-g", "rg", "--identities", "[system]"));
  await show("sys token after remove", new SecretClient(c.vaultUrl, staticCred(sys), tls).getSecret("x"));
  await show("objectId old system", new ManagedIdentityCredential({ objectId: app.identity.principalId, ...tls }).getToken(scope));
  await show("default after remove", new ManagedIdentityCredential(tls).getToken(scope));
  run("webapp", "delete", "-n", "app1", "-g", "rg");
  await show("uai after delete", new ManagedIdentityCredential({ clientId: uai.clientId, ...tls }).getToken(scope));
} finally { await c.cleanup(); }
