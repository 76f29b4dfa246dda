import { execFileSync } from "node:child_process";
import { startCoffer, parseDevEnv } from "./coffer-server.mjs";
import { ManagedIdentityCredential } from "@azure/identity";
const c = await startCoffer();
const bin = process.env.COFFER_BIN;
const run = (...a) => execFileSync(bin, a, { env: { ...process.env, ...c.env, COFFER_CA_FILE: c.caPath }, encoding: "utf8" });
try {
  const uai = JSON.parse(run("identity", "create", "-n", "uai1", "-g", "rg"));
  run("webapp", "create", "-n", "app1", "-g", "rg", "--assign-identity", "[system]", "uai1");
  const e = parseDevEnv(run("webapp", "identity", "endpoint", "-n", "app1", "-g", "rg", "--env"));
  process.env.IDENTITY_ENDPOINT = e.IDENTITY_ENDPOINT; process.env.IDENTITY_HEADER = e.IDENTITY_HEADER;
  const scope = `https://vault.localhost:${c.port}/.default`;
  for (const opts of [{}, { clientId: uai.clientId }, { resourceId: uai.id }]) {
    try {
      const t = await new ManagedIdentityCredential({ ...opts }).getToken(scope);
      console.log("OK", JSON.stringify(opts), t.token.slice(0, 20), new Date(t.expiresOnTimestamp));
    } catch (err) { console.log("ERR", JSON.stringify(opts), err.name, err.message); }
  }
} finally { await c.cleanup(); }
