// Child process for the environment-only test: the application code the README shows, with no
// option to the credential or the client. Its environment is dev.env and nothing else:
// AZURE_TENANT_ID=adfs (no instance discovery), AZURE_AUTHORITY_HOST, the client id and secret,
// COFFER_VAULT_URL, and NODE_EXTRA_CA_CERTS for the server's CA. argv[2] is the scope whose token
// is printed. Prints {"value", "token"} or {"error": {...}} as JSON on stdout.

import { DefaultAzureCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

let out;
try {
  const credential = new DefaultAzureCredential();
  const client = new SecretClient(process.env.COFFER_VAULT_URL, credential);
  await client.setSecret("env-only-js", "read-with-no-setting-in-code");
  out = {
    value: (await client.getSecret("env-only-js")).value,
    token: (await credential.getToken(process.argv[2])).token,
  };
} catch (err) {
  out = { error: { name: err.name, message: err.message } };
}
process.stdout.write(JSON.stringify(out) + "\n");
