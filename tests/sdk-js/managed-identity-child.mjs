// Child process for the managed-identity tests: reads one secret with ManagedIdentityCredential in
// a fresh Node process, and prints {"value": ...} or {"error": {...}} as JSON on stdout.
//
// msal-node keeps the managed-identity source it picked (with its IDENTITY_ENDPOINT and
// IDENTITY_HEADER) in a process-wide static, so a second workload's endpoint can only be used from
// another process.  The environment chooses the mode; argv[2] is JSON:
//   { vaultUrl, caPath, secretName, clientId?, resourceId?, objectId?, scope? }
// With `scope`, the access token the credential obtained is printed too, as "token".

import fs from "node:fs";

import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const args = JSON.parse(process.argv[2]);
const tlsOptions = { ca: fs.readFileSync(args.caPath) };
const id = {};
for (const key of ["clientId", "resourceId", "objectId"]) {
  if (args[key]) id[key] = args[key];
}
let out;
try {
  const credential = new ManagedIdentityCredential({ ...id, tlsOptions });
  const secret = await new SecretClient(args.vaultUrl, credential, { tlsOptions }).getSecret(args.secretName);
  out = { value: secret.value };
  if (args.scope) out.token = (await credential.getToken(args.scope)).token;
} catch (err) {
  out = { error: { name: err.name, statusCode: err.statusCode, message: err.message } };
}
process.stdout.write(JSON.stringify(out) + "\n");
