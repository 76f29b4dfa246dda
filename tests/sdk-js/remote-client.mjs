// A client on another machine: the official @azure/identity + @azure/keyvault-secrets, configured
// from its environment only (COFFER_VAULT_URL, AZURE_AUTHORITY_HOST, AZURE_TENANT_ID,
// AZURE_CLIENT_ID, AZURE_CLIENT_SECRET; the CA through NODE_EXTRA_CA_CERTS).
//
//   node remote-client.mjs set NAME VALUE   -> prints {"version": ...}
//   node remote-client.mjs get NAME         -> prints {"value": ..., "version": ...}
//
// tests/integration/test_cluster.py runs it inside a network namespace; it is not a test file.

import { ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const env = process.env;
const [op, name, value] = process.argv.slice(2);
const credential = new ClientSecretCredential(
  env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, env.AZURE_CLIENT_SECRET,
  { authorityHost: env.AZURE_AUTHORITY_HOST, disableInstanceDiscovery: true });
const client = new SecretClient(env.COFFER_VAULT_URL, credential);

if (op === "set") {
  const s = await client.setSecret(name, value);
  console.log(JSON.stringify({ version: s.properties.version }));
} else if (op === "get") {
  const s = await client.getSecret(name);
  console.log(JSON.stringify({ value: s.value, version: s.properties.version }));
} else {
  console.error(`usage: remote-client.mjs set NAME VALUE | get NAME (got ${op})`);
  process.exit(2);
}
