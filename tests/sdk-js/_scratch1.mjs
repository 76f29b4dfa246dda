import { execFileSync } from "node:child_process";
import { startCoffer } from "./coffer-server.mjs";
const c = await startCoffer();
const bin = process.env.COFFER_BIN;
const run = (...a) => { try { return execFileSync(bin, a, { env: { ...process.env, ...c.env, COFFER_CA_FILE: c.caPath }, encoding: "utf8" }); } catch (e) { return "ERR " + e.status + " " + e.stdout + e.stderr; } };
try {
  console.log(c.env);
  console.log(run("identity", "create", "-n", "uai1", "-g", "rg"));
  console.log(run("webapp", "create", "-n", "app1", "-g", "rg", "--assign-identity", "[system]", "uai1"));
  console.log(run("webapp", "identity", "endpoint", "-n", "app1", "-g", "rg", "--env"));
  console.log(run("keyvault", "set-policy", "--help"));
  console.log(run("keyvault", "show", "--name", "dev"));
} finally { await c.cleanup(); }
