"""A minimal OpenID Connect issuer for workload identity federation tests.

It plays the part of a Kubernetes service-account issuer (or GitHub Actions): an http.server on
127.0.0.1 with an ephemeral port, run in a thread, serving
  /.well-known/openid-configuration  {issuer, jwks_uri, ...}
  /openid/v1/jwks                    the public halves of its published RSA keys
and mint() signs service-account tokens with them (python3-cryptography).

Used by tests/integration and, through sys.path, by tests/sdk-py.  stop() shuts the server down
and joins its thread; the issuer is also a context manager.
"""

import base64
import hashlib
import http.server
import json
import threading
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
JWKS_PATH = "/openid/v1/jwks"
STOP_TIMEOUT_S = 10.0


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class SigningKey:
    """An RSA key and the kid it is published under."""

    def __init__(self, bits=2048, kid=None):
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        numbers = self.private.public_key().public_numbers()
        self.n = _int_bytes(numbers.n)
        self.e = _int_bytes(numbers.e)
        self.kid = kid or b64url(hashlib.sha256(self.n).digest()[:15])

    def jwk(self):
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": b64url(self.n), "e": b64url(self.e)}

    def sign(self, data):
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


class OidcIssuer:
    """An issuer at http://127.0.0.1:<port> with one published key (more with add_key())."""

    def __init__(self, subject="system:serviceaccount:default:workload",
                 audience=DEFAULT_AUDIENCE):
        self.subject = subject
        self.audience = audience
        self.key = SigningKey()
        self.published = [self.key]
        self.requests = []  # paths served, in order
        self.jwks_uri = None  # what the discovery document names; None: our own JWKS
        self._lock = threading.Lock()
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                with issuer._lock:
                    issuer.requests.append(self.path)
                    keys = list(issuer.published)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url,
                            "jwks_uri": issuer.jwks_uri or issuer.url + JWKS_PATH,
                            "response_types_supported": ["id_token"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == JWKS_PATH:
                    body = {"keys": [k.jwk() for k in keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output clean
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def add_key(self, publish=True):
        """A new signing key; published in the JWKS unless publish=False."""
        key = SigningKey()
        if publish:
            with self._lock:
                self.published.append(key)
        return key

    def key_fetches(self):
        with self._lock:
            return sum(1 for p in self.requests if p == JWKS_PATH)

    def mint(self, claims=None, header=None, key=None, drop=(), signature=None, lifetime=600):
        """A service-account token signed RS256 with `key` (default: the first published key).

        `claims`/`header` override the defaults (a None value removes the field), `drop` removes
        claims, `signature` (bytes) replaces the computed signature.
        """
        key = key or self.key
        now = int(time.time())
        c = {"iss": self.url, "sub": self.subject, "aud": [self.audience], "iat": now,
             "nbf": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
        h = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
        for target, changes in ((c, claims), (h, header)):
            for k, v in (changes or {}).items():
                if v is None:
                    target.pop(k, None)
                else:
                    target[k] = v
        for k in drop:
            c.pop(k, None)
        signing_input = (b64url(json.dumps(h, separators=(",", ":"))) + "." +
                         b64url(json.dumps(c, separators=(",", ":"))))
        if signature is None:
            signature = key.sign(signing_input.encode())
        return signing_input + "." + b64url(signature)

    def stop(self):
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(STOP_TIMEOUT_S)
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
