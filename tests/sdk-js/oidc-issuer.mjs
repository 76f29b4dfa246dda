// A minimal OpenID Connect issuer for workload identity federation tests: it serves
// /.well-known/openid-configuration and its JWKS over plain HTTP on 127.0.0.1 (a loopback issuer
// Coffer accepts), and mints RS256 tokens signed by its own RSA key.  No mocks of Coffer: Coffer
// fetches these documents itself when it verifies an assertion.

import crypto from "node:crypto";
import http from "node:http";

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/**
 * Starts an issuer on 127.0.0.1:0.  Returns { issuer, kid, mint(claims, options), requests, stop() }.
 * `requests` lists the paths that were fetched, so a test can see Coffer really asked.
 */
export async function startOidcIssuer() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = crypto.randomUUID();
  const jwk = publicKey.export({ format: "jwk" });
  const requests = [];
  let issuer = "";

  const server = http.createServer((req, res) => {
    requests.push(req.url);
    let body;
    if (req.method === "GET" && req.url === "/.well-known/openid-configuration") {
      body = {
        issuer,
        jwks_uri: `${issuer}/openid/v1/jwks`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
      };
    } else if (req.method === "GET" && req.url === "/openid/v1/jwks") {
      body = { keys: [{ kty: jwk.kty, kid, use: "sig", alg: "RS256", n: jwk.n, e: jwk.e }] };
    }
    if (!body) {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end('{"error":"not_found"}');
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  issuer = `http://127.0.0.1:${server.address().port}`;

  /**
   * Signs a JWT.  Defaults: iss = this issuer, aud = api://AzureADTokenExchange, iat/nbf = now,
   * exp = now + 1 h; `claims` overrides or adds.  `options.kid` overrides the header's kid.
   */
  function mint(claims = {}, options = {}) {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "RS256", typ: "JWT", kid: options.kid ?? kid };
    const payload = {
      iss: issuer,
      aud: ["api://AzureADTokenExchange"],
      iat: now,
      nbf: now,
      exp: now + 3600,
      ...claims,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const signature = crypto.sign("sha256", Buffer.from(input), privateKey);
    return `${input}.${b64url(signature)}`;
  }

  async function stop() {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  return { issuer, kid, mint, requests, stop };
}
