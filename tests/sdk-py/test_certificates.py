"""Conformance of the official azure-keyvault-certificates client (Debian python3-azure, 4.7.0b1) with
Coffer's certificates API: CertificateClient's create (Self issuer), import, policy, versions, update,
delete/recover/purge and access-policy permissions, and the key and secret a certificate owns as
KeyClient and SecretClient see them.

One real `coffer server --dev` process serves the whole module.  The clients are configured as in
test_secrets.py: the vault URL, the server's CA (connection_verify), the authority and
instance_discovery=False; nothing is opted out of.

What the server returns is checked independently of the SDK with python3-cryptography: the `cer` is
parsed as X.509 and its self-signature verified, the operation's `csr` as PKCS#10, the backing secret
as a password-less PFX or as PEM, and signatures the backing key makes against the certificate's
public key.  Not covered because the server does not implement them yet: the Unknown issuer and
merge, cancelling or deleting a pending operation, contacts, issuers, backup and restore.

Run with Debian's interpreter, which has the azure packages:
    COFFER_BIN=build/coffer /usr/bin/python3 -m unittest -v test_certificates   (in tests/sdk-py)
"""

import base64
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import uuid

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import (CertificateClient, CertificateContentType, CertificatePolicy,
                                         CertificatePolicyAction, KeyUsageType, LifetimeAction)
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)

POLL = {"_polling_interval": 0.05}
UTC = datetime.timezone.utc
PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string    # 1.3.6.1.5.5.7.3.1
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string    # 1.3.6.1.5.5.7.3.2
CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING.dotted_string  # 1.3.6.1.5.5.7.3.3
UPN_OID = "1.3.6.1.4.1.311.20.2.3"
CURVES = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1", "P-256K": "secp256k1"}

SERVER = None
CREDENTIAL = None
CLIENT = None
KEYS = None
SECRETS = None
# Private keys (as PKCS#8 and as JWK parts), backing secret values, PFX passwords and principals'
# passwords; none may reach the server's logs.
SENSITIVE = set()


def setUpModule():
    global SERVER, CREDENTIAL, CLIENT, KEYS, SECRETS
    SERVER = harness.launch_server()
    CREDENTIAL = credential(SERVER.env["AZURE_CLIENT_ID"], SERVER.env["AZURE_CLIENT_SECRET"])
    CLIENT = CertificateClient(SERVER.vault_url, CREDENTIAL, connection_verify=SERVER.ca_path)
    KEYS = KeyClient(SERVER.vault_url, CREDENTIAL, connection_verify=SERVER.ca_path)
    SECRETS = SecretClient(SERVER.vault_url, CREDENTIAL, connection_verify=SERVER.ca_path)


def tearDownModule():
    for c in (CLIENT, KEYS, SECRETS, CREDENTIAL):
        if c is not None:
            c.close()
    if SERVER is not None:
        SERVER.cleanup()


def credential(client_id, client_secret):
    return ClientSecretCredential(
        SERVER.env["AZURE_TENANT_ID"], client_id, client_secret,
        authority=SERVER.authority_host, instance_discovery=False, connection_verify=SERVER.ca_path)


def coffer(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
    env.update(SERVER.env)
    env["COFFER_CA_FILE"] = SERVER.ca_path
    p = subprocess.run([harness.coffer_binary()] + list(args), env=env,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"coffer {' '.join(args)} exited with {p.returncode}:\n"
                             f"{p.stdout.decode()}\n{p.stderr.decode()}")
    out = p.stdout.decode()
    return json.loads(out) if out.strip().startswith(("{", "[")) else out


def principal_with_certificate_permissions(name, permissions):
    """A new service principal's credential, with these certificate permissions on the dev vault."""
    sp = coffer("ad", "sp", "create-for-rbac", "--name", name)
    SENSITIVE.add(sp["password"])
    object_id = coffer("ad", "sp", "show", "--id", sp["appId"])["id"]
    if permissions:
        coffer("keyvault", "set-policy", "--name", "dev", "--object-id", object_id,
               "--certificate-permissions", *permissions)
    return credential(sp["appId"], sp["password"])


def create(name, policy=None, client=None, **kwargs):
    """begin_create_certificate, waited for; the certificate it made (the poller's result)."""
    client = client or CLIENT
    poller = client.begin_create_certificate(name, policy or CertificatePolicy.get_default(), **POLL, **kwargs)
    result = poller.result()
    if result is None:
        raise AssertionError(f"begin_create_certificate({name!r}).result() is None")
    return result


def x509_of(certificate):
    return x509.load_der_x509_certificate(bytes(certificate.cer))


def spki(obj):
    """The SubjectPublicKeyInfo DER of a certificate, CSR, public or private key."""
    key = obj.public_key() if hasattr(obj, "public_key") else obj
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def track_private_key(key):
    """Adds a private key's PKCS#8 DER (standard base64) and its secret number (base64url) to SENSITIVE."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    SENSITIVE.add(base64.b64encode(der).decode())
    if isinstance(key, rsa.RSAPrivateKey):
        secret_number = key.private_numbers().d
    else:
        secret_number = key.private_numbers().private_value
    SENSITIVE.add(harness.b64url(secret_number.to_bytes((secret_number.bit_length() + 7) // 8, "big")))


def verify_signed_by(cert, public_key):
    """Raises unless `cert` carries a valid signature by public_key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                          cert.signature_hash_algorithm)
    else:
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def self_signed(key, common_name, dns_names=()):
    """A self-signed certificate made here, for import."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.utcnow().replace(microsecond=0)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=90)))
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns_names]),
                                        critical=False)
    return builder.sign(key, hashes.SHA256())


def new_rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    track_private_key(key)
    return key


def pem_block(text, label):
    m = re.search(f"-----BEGIN {label}-----\r?\n.*?-----END {label}-----", text, re.S)
    return m.group(0).encode() if m else None


def raw_to_der(signature):
    half = len(signature) // 2
    return encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))


def name_attribute(name, oid):
    values = [a.value for a in name.get_attributes_for_oid(oid)]
    return values[0] if len(values) == 1 else values


def error_code(err):
    return getattr(getattr(err, "error", None), "code", None)


class CertificatesTestCase(unittest.TestCase):
    maxDiff = 4000

    def assertHttpError(self, exc_type, status, code, func, *args, **kwargs):
        with self.assertRaises(exc_type) as ctx:
            func(*args, **kwargs)
        err = ctx.exception
        self.assertEqual(err.status_code, status, str(err))
        if code is not None:
            self.assertEqual(error_code(err), code, str(err))
        return err

    def assertForbidden(self, func, *args, **kwargs):
        return self.assertHttpError(HttpResponseError, 403, "Forbidden", func, *args, **kwargs)

    def assertCertificateNotFound(self, name):
        self.assertHttpError(ResourceNotFoundError, 404, "CertificateNotFound", CLIENT.get_certificate, name)

    def assertRecent(self, value, what):
        self.assertIsInstance(value, datetime.datetime, what)
        self.assertLess(abs((datetime.datetime.now(UTC) - value).total_seconds()), 300, f"{what} ({value})")

    def assertIds(self, cert, name):
        """id, kid and sid name the same version on the vault's host."""
        version = cert.properties.version
        self.assertTrue(version, cert.id)
        self.assertEqual(cert.id, f"{SERVER.vault_url}/certificates/{name}/{version}")
        self.assertEqual(cert.key_id, f"{SERVER.vault_url}/keys/{name}/{version}")
        self.assertEqual(cert.secret_id, f"{SERVER.vault_url}/secrets/{name}/{version}")
        self.assertEqual(cert.name, name)

    def assertValidityMonths(self, der_cert, months):
        days = (der_cert.not_valid_after - der_cert.not_valid_before).total_seconds() / 86400
        self.assertGreaterEqual(days, months * 29.5 - 2, f"validity of {days:.2f} days for {months} months")
        self.assertLessEqual(days, months * 31 + 1, f"validity of {days:.2f} days for {months} months")

    def assertAttributesMatch(self, cert, der_cert):
        """attributes nbf/exp are the certificate's own validity; x5t is the SHA-1 of the DER."""
        self.assertEqual(cert.properties.not_before, der_cert.not_valid_before.replace(tzinfo=UTC))
        self.assertEqual(cert.properties.expires_on, der_cert.not_valid_after.replace(tzinfo=UTC))
        self.assertEqual(cert.properties.x509_thumbprint, hashlib.sha1(bytes(cert.cer)).digest())

    def assertPfxSecret(self, secret, cert):
        """The backing secret is standard base64 of a password-less PFX with cert's key and certificate."""
        self.assertEqual(secret.properties.content_type, PKCS12)
        SENSITIVE.add(secret.value)
        pfx = base64.b64decode(secret.value, validate=True)
        key, leaf, _ = pkcs12.load_key_and_certificates(pfx, None)
        self.assertIsNotNone(key, "the PFX holds the private key")
        self.assertIsNotNone(leaf, "the PFX holds the certificate")
        track_private_key(key)
        self.assertEqual(leaf.public_bytes(serialization.Encoding.DER), bytes(cert.cer))
        self.assertEqual(spki(key), spki(x509_of(cert)))
        return key

    def assertPemSecret(self, secret, cert):
        """The backing secret is PEM text: the PKCS#8 private key, then the certificate."""
        self.assertEqual(secret.properties.content_type, PEM)
        SENSITIVE.add(secret.value)
        text = secret.value
        self.assertIn("-----BEGIN PRIVATE KEY-----", text, "a PKCS#8 private key")
        self.assertIn("-----BEGIN CERTIFICATE-----", text)
        self.assertLess(text.index("-----BEGIN PRIVATE KEY-----"), text.index("-----BEGIN CERTIFICATE-----"),
                        "the key comes before the certificate")
        key = serialization.load_pem_private_key(pem_block(text, "PRIVATE KEY"), None)
        track_private_key(key)
        leaf = x509.load_pem_x509_certificate(pem_block(text, "CERTIFICATE"))
        self.assertEqual(leaf.public_bytes(serialization.Encoding.DER), bytes(cert.cer))
        self.assertEqual(spki(key), spki(x509_of(cert)))
        return key


class Test01CreateSelfSigned(CertificatesTestCase):
    NAME = "py-cert-default"
    cert = None

    @classmethod
    def setUpClass(cls):
        cls.cert = create(cls.NAME)

    def test_the_pollers_result_is_the_certificate(self):
        # CreateCertificatePoller (azure-keyvault-certificates 4.7.0b1, _polling.py) runs only when
        # the 202 answer says "inProgress": LROPoller starts no polling thread for an operation that
        # is already finished, and result() is then None instead of the certificate.
        poller = CLIENT.begin_create_certificate("py-cert-poller", CertificatePolicy.get_default(), **POLL)
        result = poller.result()
        self.assertIsNotNone(result, "begin_create_certificate(...).result() is None")
        self.assertIds(result, "py-cert-poller")
        self.assertEqual(bytes(result.cer), bytes(CLIENT.get_certificate("py-cert-poller").cer))
        self.assertIsNotNone(result.policy)
        self.assertEqual(poller.status(), "completed")

    def test_create_with_the_default_policy_returns_the_certificate_with_ids_of_one_version(self):
        self.assertIds(self.cert, self.NAME)
        self.assertIs(self.cert.properties.enabled, True)
        self.assertRecent(self.cert.properties.created_on, "created_on")
        self.assertIn("Recoverable", self.cert.properties.recovery_level or "")
        got = CLIENT.get_certificate(self.NAME)  # GET /certificates/py-cert-default/ (empty version)
        self.assertEqual(got.id, self.cert.id)
        self.assertEqual(bytes(got.cer), bytes(self.cert.cer))
        self.assertIsNotNone(got.policy, "the latest version carries the policy")
        by_version = CLIENT.get_certificate_version(self.NAME, self.cert.properties.version)
        self.assertEqual(by_version.id, self.cert.id)
        self.assertEqual(bytes(by_version.cer), bytes(self.cert.cer))

    def test_the_server_fills_in_the_policy_defaults(self):
        for source, policy in (("created certificate", self.cert.policy),
                               ("get_certificate_policy", CLIENT.get_certificate_policy(self.NAME))):
            with self.subTest(source=source):
                self.assertIsNotNone(policy)
                self.assertEqual(policy.issuer_name, "Self")
                self.assertEqual(policy.subject, "CN=DefaultPolicy")
                self.assertEqual((policy.key_type, policy.key_size), ("RSA", 2048))
                self.assertIs(policy.exportable, True)
                self.assertIs(policy.reuse_key, False)
                self.assertEqual(policy.content_type, PKCS12)
                self.assertEqual(policy.validity_in_months, 12)
                self.assertEqual(sorted(policy.key_usage), sorted([KeyUsageType.digital_signature,
                                                                   KeyUsageType.key_encipherment]))
                self.assertEqual(sorted(policy.enhanced_key_usage), sorted([SERVER_AUTH, CLIENT_AUTH]))
                self.assertEqual([(a.action, a.lifetime_percentage, a.days_before_expiry)
                                  for a in policy.lifetime_actions or []],
                                 [(CertificatePolicyAction.auto_renew, 80, None)])

    def test_the_cer_is_a_self_signed_rsa_2048_certificate_as_the_policy_says(self):
        cert = x509_of(self.cert)
        self.assertEqual(cert.subject.rfc4514_string(), "CN=DefaultPolicy")
        self.assertEqual(cert.issuer, cert.subject)
        public_key = cert.public_key()
        self.assertIsInstance(public_key, rsa.RSAPublicKey)
        self.assertEqual(public_key.key_size, 2048)
        verify_signed_by(cert, public_key)
        self.assertValidityMonths(cert, 12)
        self.assertLess(abs((datetime.datetime.utcnow() - cert.not_valid_before).total_seconds()), 86400)
        self.assertAttributesMatch(self.cert, cert)
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertEqual((ku.digital_signature, ku.key_encipherment, ku.content_commitment, ku.data_encipherment,
                          ku.key_agreement, ku.key_cert_sign, ku.crl_sign),
                         (True, True, False, False, False, False, False))
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(sorted(o.dotted_string for o in eku), sorted([SERVER_AUTH, CLIENT_AUTH]))

    def test_the_pending_operation_is_completed_with_a_csr_for_the_certificates_key(self):
        op = CLIENT.get_certificate_operation(self.NAME)
        self.assertEqual(op.status, "completed")
        self.assertEqual(op.issuer_name, "Self")
        self.assertEqual(op.id, f"{SERVER.vault_url}/certificates/{self.NAME}/pending")
        self.assertEqual(op.target, f"{SERVER.vault_url}/certificates/{self.NAME}")
        self.assertTrue(op.request_id)
        self.assertFalse(op.cancellation_requested)
        self.assertIsNone(op.error)
        csr = x509.load_der_x509_csr(bytes(op.csr))
        self.assertTrue(csr.is_signature_valid, "the CSR is signed by its own key")
        self.assertEqual(spki(csr), spki(x509_of(self.cert)), "the CSR's key is the certificate's")

    def test_on_the_wire_create_answers_202_in_progress_and_the_operation_then_says_completed(self):
        # What both pollers need (reference azure-sdk-compat.md §4.2, §4.4), seen without an SDK:
        # "inProgress" exactly (JS compares case-sensitively) in the 202 answer, and a GET of the
        # operation that then says "completed"; see test_the_pollers_result_is_the_certificate.
        name = "py-cert-wire"
        r = SERVER.kv("POST", f"/certificates/{name}/create",
                      {"policy": {"x509_props": {"subject": "CN=wire"}, "issuer": {"name": "Self"}}})
        self.assertEqual(r.status, 202, repr(r))
        op = r.json()
        self.assertEqual(op.get("id"), f"{SERVER.vault_url}/certificates/{name}/pending", op)
        x509.load_der_x509_csr(base64.b64decode(op.get("csr", ""), validate=True))
        r = SERVER.kv("GET", f"/certificates/{name}/pending")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.json().get("status"), "completed", repr(r))
        self.assertEqual(op.get("status"), "inProgress", f"the 202 answer to the create: {op}")

    def test_on_the_wire_the_bundle_has_base64url_x5t_standard_base64_cer_and_integer_times(self):
        r = SERVER.kv("GET", f"/certificates/{self.NAME}/")
        self.assertEqual(r.status, 200, repr(r))
        bundle = r.json()
        der = base64.b64decode(bundle["cer"], validate=True)
        self.assertEqual(der, bytes(self.cert.cer))
        self.assertRegex(bundle["x5t"], r"^[A-Za-z0-9_-]+$", "base64url without padding")
        self.assertEqual(bundle["x5t"], harness.b64url(hashlib.sha1(der).digest()))
        for field in ("nbf", "exp", "created", "updated"):
            self.assertIsInstance(bundle["attributes"].get(field), int, f"attributes.{field}: {bundle['attributes']}")
        self.assertEqual(bundle.get("policy", {}).get("id"), f"{SERVER.vault_url}/certificates/{self.NAME}/policy")


class Test02PolicyVariants(CertificatesTestCase):
    def test_ec_certificates_on_each_curve_default_to_digital_signature(self):
        for curve, openssl_name in CURVES.items():
            with self.subTest(curve=curve):
                name = f"py-cert-ec-{curve.lower()}"
                cert = create(name, CertificatePolicy("Self", subject=f"CN={name}", key_type="EC",
                                                      key_curve_name=curve))
                self.assertIds(cert, name)
                self.assertEqual((cert.policy.key_type, cert.policy.key_curve_name), ("EC", curve))
                self.assertEqual(cert.policy.key_usage, [KeyUsageType.digital_signature])
                der_cert = x509_of(cert)
                self.assertIsInstance(der_cert.public_key(), ec.EllipticCurvePublicKey)
                self.assertEqual(der_cert.public_key().curve.name, openssl_name)
                verify_signed_by(der_cert, der_cert.public_key())
                ku = der_cert.extensions.get_extension_for_class(x509.KeyUsage).value
                self.assertEqual((ku.digital_signature, ku.key_encipherment), (True, False))

    def test_rsa_3072_and_4096(self):
        for size in (3072, 4096):
            with self.subTest(size=size):
                cert = create(f"py-cert-rsa-{size}", CertificatePolicy("Self", subject="CN=big", key_type="RSA",
                                                                       key_size=size))
                self.assertEqual(cert.policy.key_size, size)
                self.assertEqual(x509_of(cert).public_key().key_size, size)

    def test_subject_sans_key_usage_ekus_validity_and_tags_reach_the_certificate_and_the_policy(self):
        name = "py-cert-detailed"
        subject = "CN=svc.example.com, O=Coffer Test, OU=QA"
        dns = ["svc.example.com", "alt.example.com"]
        emails = ["ops@example.com"]
        upns = ["svc@example.com"]
        usage = [KeyUsageType.digital_signature, KeyUsageType.non_repudiation, KeyUsageType.data_encipherment]
        policy = CertificatePolicy("Self", subject=subject, san_dns_names=dns, san_emails=emails,
                                   san_user_principal_names=upns, key_usage=usage,
                                   enhanced_key_usage=[CODE_SIGNING], validity_in_months=3)
        cert = create(name, policy, tags={"team": "platform"})
        self.assertEqual(cert.properties.tags, {"team": "platform"})
        der_cert = x509_of(cert)
        self.assertEqual(name_attribute(der_cert.subject, NameOID.COMMON_NAME), "svc.example.com")
        self.assertEqual(name_attribute(der_cert.subject, NameOID.ORGANIZATION_NAME), "Coffer Test")
        self.assertEqual(name_attribute(der_cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME), "QA")
        san = der_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(sorted(san.get_values_for_type(x509.DNSName)), sorted(dns))
        self.assertEqual(san.get_values_for_type(x509.RFC822Name), emails)
        other = san.get_values_for_type(x509.OtherName)
        self.assertEqual([o.type_id.dotted_string for o in other], [UPN_OID], "the UPN is an otherName")
        self.assertEqual(other[0].value[:1], b"\x0c", "as a UTF8String")
        self.assertIn(upns[0].encode(), other[0].value)
        ku = der_cert.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertEqual((ku.digital_signature, ku.content_commitment, ku.data_encipherment, ku.key_encipherment),
                         (True, True, True, False))
        eku = der_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual([o.dotted_string for o in eku], [CODE_SIGNING])
        self.assertValidityMonths(der_cert, 3)
        self.assertAttributesMatch(cert, der_cert)
        got = CLIENT.get_certificate_policy(name)
        self.assertEqual(got.subject, subject)
        self.assertEqual(sorted(got.san_dns_names), sorted(dns))
        self.assertEqual(got.san_emails, emails)
        self.assertEqual(got.san_user_principal_names, upns)
        self.assertEqual(sorted(got.key_usage), sorted(usage))
        self.assertEqual(got.enhanced_key_usage, [CODE_SIGNING])
        self.assertEqual(got.validity_in_months, 3)

    def test_lifetime_actions_given_replace_the_default_one(self):
        cert = create("py-cert-email-contacts", CertificatePolicy(
            "Self", subject="CN=contacts",
            lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, days_before_expiry=30)]))
        actions = CLIENT.get_certificate_policy("py-cert-email-contacts").lifetime_actions
        for policy_actions in (cert.policy.lifetime_actions, actions):
            self.assertEqual([(a.action, a.lifetime_percentage, a.days_before_expiry) for a in policy_actions or []],
                             [(CertificatePolicyAction.email_contacts, None, 30)])

    def test_pem_content_type_makes_a_pem_secret(self):
        name = "py-cert-pem"
        cert = create(name, CertificatePolicy("Self", subject="CN=pem", content_type=CertificateContentType.pem))
        self.assertEqual(cert.policy.content_type, PEM)
        self.assertPemSecret(SECRETS.get_secret(name), cert)


class Test03BackingKeyAndSecret(CertificatesTestCase):
    NAME = "py-cert-backed"

    @classmethod
    def setUpClass(cls):
        cls.cert = create(cls.NAME)

    def test_the_secret_is_managed_names_the_key_and_holds_a_passwordless_pfx(self):
        secret = SECRETS.get_secret(self.NAME)
        self.assertEqual(secret.id, self.cert.secret_id)
        self.assertIs(secret.properties.managed, True)
        self.assertEqual(secret.properties.key_id, self.cert.key_id)
        self.assertPfxSecret(secret, self.cert)

    def test_the_key_is_managed_is_the_certificates_public_key_and_signs(self):
        key = KEYS.get_key(self.NAME)
        self.assertEqual(key.id, self.cert.key_id)
        self.assertIs(key.properties.managed, True)
        public = x509_of(self.cert).public_key().public_numbers()
        self.assertEqual((int.from_bytes(key.key.n, "big"), int.from_bytes(key.key.e, "big")), (public.n, public.e))
        cc = KEYS.get_cryptography_client(self.NAME, key_version=self.cert.properties.version)
        digest = hashlib.sha256(b"signed by a certificate's key").digest()
        signature = cc.sign(SignatureAlgorithm.rs256, digest).signature
        x509_of(self.cert).public_key().verify(signature, b"signed by a certificate's key", padding.PKCS1v15(),
                                               hashes.SHA256())

    def test_an_ec_certificates_key_signs_es256(self):
        cert = create("py-cert-ec-signer", CertificatePolicy("Self", subject="CN=ec-signer", key_type="EC",
                                                             key_curve_name="P-256"))
        key = KEYS.get_key("py-cert-ec-signer")
        self.assertIs(key.properties.managed, True)
        self.assertEqual(key.key.crv, "P-256")
        cc = KEYS.get_cryptography_client("py-cert-ec-signer", key_version=cert.properties.version)
        signature = cc.sign(SignatureAlgorithm.es256, hashlib.sha256(b"ec cert").digest()).signature
        x509_of(cert).public_key().verify(raw_to_der(signature), b"ec cert", ec.ECDSA(hashes.SHA256()))

    def test_the_managed_secret_cannot_be_set_updated_or_deleted_on_its_own(self):
        value = f"sv-overwrite-{uuid.uuid4()}"
        SENSITIVE.add(value)
        self.assertForbidden(SECRETS.set_secret, self.NAME, value)
        self.assertForbidden(SECRETS.update_secret_properties, self.NAME, self.cert.properties.version,
                             tags={"changed": "yes"})
        self.assertForbidden(SECRETS.begin_delete_secret, self.NAME, **POLL)
        secret = SECRETS.get_secret(self.NAME)
        self.assertEqual(secret.id, self.cert.secret_id, "no new version was made")
        self.assertFalse(secret.properties.tags)
        self.assertPfxSecret(secret, self.cert)

    def test_the_managed_key_cannot_be_updated_or_deleted_on_its_own(self):
        self.assertForbidden(KEYS.update_key_properties, self.NAME, self.cert.properties.version,
                             tags={"changed": "yes"})
        self.assertForbidden(KEYS.begin_delete_key, self.NAME, **POLL)
        key = KEYS.get_key(self.NAME)
        self.assertEqual(key.id, self.cert.key_id)
        self.assertFalse(key.properties.tags)


class Test04VersionsListAndUpdate(CertificatesTestCase):
    NAME = "py-cert-versioned"

    @classmethod
    def setUpClass(cls):
        cls.v1 = create(cls.NAME, tags={"gen": "1"})
        cls.v2 = create(cls.NAME, tags={"gen": "2"})

    def test_a_second_create_is_a_new_version_with_its_own_key_and_secret(self):
        self.assertNotEqual(self.v1.properties.version, self.v2.properties.version)
        self.assertNotEqual(spki(x509_of(self.v1)), spki(x509_of(self.v2)), "reuse_key is false: a new key")
        self.assertEqual(CLIENT.get_certificate(self.NAME).id, self.v2.id)
        old = CLIENT.get_certificate_version(self.NAME, self.v1.properties.version)
        self.assertEqual(bytes(old.cer), bytes(self.v1.cer))
        self.assertEqual(old.properties.tags, {"gen": "1"})
        self.assertEqual(KEYS.get_key(self.NAME, self.v1.properties.version).id, self.v1.key_id)
        self.assertPfxSecret(SECRETS.get_secret(self.NAME, self.v1.properties.version), self.v1)
        self.assertPfxSecret(SECRETS.get_secret(self.NAME), self.v2)

    def test_list_properties_of_certificate_versions(self):
        versions = list(CLIENT.list_properties_of_certificate_versions(self.NAME, max_page_size=1))
        by_version = {p.version: p for p in versions}
        self.assertEqual(sorted(by_version), sorted([self.v1.properties.version, self.v2.properties.version]))
        for cert in (self.v1, self.v2):
            item = by_version[cert.properties.version]
            self.assertEqual(item.id, cert.id)
            self.assertEqual(item.x509_thumbprint, hashlib.sha1(bytes(cert.cer)).digest())

    def test_list_properties_of_certificates_lists_each_name_once_with_the_latest_thumbprint(self):
        pages = [list(p) for p in CLIENT.list_properties_of_certificates(max_page_size=2).by_page()]
        for page in pages:
            self.assertLessEqual(len(page), 2)
        items = [p for page in pages for p in page]
        names = [p.name for p in items]
        self.assertEqual(len(names), len(set(names)), f"no certificate is listed twice: {names}")
        self.assertIn("py-cert-default", names)
        item = next(p for p in items if p.name == self.NAME)
        self.assertEqual(item.id, f"{SERVER.vault_url}/certificates/{self.NAME}", "a listed id has no version")
        self.assertEqual(item.x509_thumbprint, hashlib.sha1(bytes(self.v2.cer)).digest())
        self.assertEqual(item.tags, CLIENT.get_certificate(self.NAME).properties.tags)
        self.assertTrue(item.tags)
        self.assertIs(item.enabled, True)
        self.assertIsInstance(item.created_on, datetime.datetime)
        self.assertIsInstance(item.expires_on, datetime.datetime)

    def test_disabling_a_version_disables_its_key_and_secret_and_enabling_restores_them(self):
        version = self.v1.properties.version
        updated = CLIENT.update_certificate_properties(self.NAME, version, enabled=False, tags={"state": "retired"})
        self.assertEqual(updated.id, self.v1.id)
        self.assertIs(updated.properties.enabled, False)
        self.assertEqual(updated.properties.tags, {"state": "retired"})
        listed = {p.version: p for p in CLIENT.list_properties_of_certificate_versions(self.NAME)}
        self.assertIs(listed[version].enabled, False)
        self.assertEqual(listed[version].tags, {"state": "retired"})
        self.assertForbidden(SECRETS.get_secret, self.NAME, version)
        self.assertIs(KEYS.get_key(self.NAME, version).properties.enabled, False)
        cc = KEYS.get_cryptography_client(self.NAME, key_version=version)
        self.assertForbidden(cc.sign, SignatureAlgorithm.rs256, hashlib.sha256(b"disabled").digest())
        # The latest version is untouched.
        self.assertPfxSecret(SECRETS.get_secret(self.NAME), self.v2)
        self.assertIs(CLIENT.update_certificate_properties(self.NAME, version, enabled=True).properties.enabled, True)
        self.assertPfxSecret(SECRETS.get_secret(self.NAME, version), self.v1)
        self.assertIs(KEYS.get_key(self.NAME, version).properties.enabled, True)

    def test_update_without_a_version_changes_the_latest_version_only(self):
        updated = CLIENT.update_certificate_properties(self.NAME, tags={"gen": "2", "patched": "yes"})
        self.assertEqual(updated.id, self.v2.id)
        self.assertEqual(updated.properties.tags, {"gen": "2", "patched": "yes"})
        self.assertEqual(CLIENT.get_certificate(self.NAME).properties.tags, {"gen": "2", "patched": "yes"})
        self.assertNotIn("patched", CLIENT.get_certificate_version(self.NAME, self.v1.properties.version)
                         .properties.tags or {})


class Test05Policy(CertificatesTestCase):
    NAME = "py-cert-policy"

    def test_1_update_certificate_policy_merges_into_the_current_policy(self):
        create(self.NAME, CertificatePolicy("Self", subject="CN=policy.example.com",
                                            san_dns_names=["policy.example.com"], key_type="RSA"))
        # The SDK sends {"secret_props":{"contentType":"application/x-pem-file"},
        #                "x509_props":{"sans":{},"validity_months":6}}: the rest stays as it was.
        updated = CLIENT.update_certificate_policy(self.NAME, CertificatePolicy(
            validity_in_months=6, content_type=CertificateContentType.pem))
        for source, policy in (("PATCH answer", updated), ("GET policy", CLIENT.get_certificate_policy(self.NAME)),
                               ("GET certificate", CLIENT.get_certificate(self.NAME).policy)):
            with self.subTest(source=source):
                self.assertEqual(policy.validity_in_months, 6)
                self.assertEqual(policy.content_type, PEM)
                self.assertEqual(policy.subject, "CN=policy.example.com")
                self.assertEqual(policy.san_dns_names, ["policy.example.com"], "an empty sans object clears nothing")
                self.assertEqual(policy.issuer_name, "Self")
                self.assertEqual((policy.key_type, policy.key_size), ("RSA", 2048))
                self.assertEqual(sorted(policy.enhanced_key_usage), sorted([SERVER_AUTH, CLIENT_AUTH]))

    def test_2_a_create_without_a_policy_makes_the_next_version_under_the_updated_one(self):
        # The SDK always sends a policy, so this create goes on the wire without one.
        before = CLIENT.get_certificate(self.NAME)
        r = SERVER.kv("POST", f"/certificates/{self.NAME}/create", {})
        self.assertEqual(r.status, 202, repr(r))
        cert = CLIENT.get_certificate(self.NAME)
        self.assertNotEqual(cert.properties.version, before.properties.version, "a new version")
        self.assertValidityMonths(x509_of(cert), 6)
        self.assertEqual(name_attribute(x509_of(cert).subject, NameOID.COMMON_NAME), "policy.example.com")
        self.assertPemSecret(SECRETS.get_secret(self.NAME), cert)


class Test06Import(CertificatesTestCase):
    def assertImportedPolicy(self, policy, key_type, subject, dns_names=None):
        self.assertEqual(policy.issuer_name, "Unknown")
        self.assertEqual(policy.key_type, key_type)
        self.assertEqual(policy.subject, subject)
        self.assertEqual(policy.san_dns_names, dns_names)

    def test_a_pfx_without_password(self):
        name = "py-import-pfx"
        key = new_rsa_key()
        der_cert = self_signed(key, "imported.example.com", ["imported.example.com"])
        pfx = pkcs12.serialize_key_and_certificates(b"imported", key, der_cert, None, serialization.NoEncryption())
        SENSITIVE.add(base64.b64encode(pfx).decode())
        cert = CLIENT.import_certificate(name, pfx, tags={"origin": "pfx"})
        self.assertIds(cert, name)
        self.assertEqual(bytes(cert.cer), der_cert.public_bytes(serialization.Encoding.DER))
        self.assertEqual(cert.properties.tags, {"origin": "pfx"})
        self.assertAttributesMatch(cert, der_cert)
        self.assertImportedPolicy(cert.policy, "RSA", "CN=imported.example.com", ["imported.example.com"])
        self.assertEqual(cert.policy.key_size, 2048)
        self.assertEqual(cert.policy.content_type, PKCS12)
        self.assertPfxSecret(SECRETS.get_secret(name), cert)
        backing_key = KEYS.get_key(name)
        self.assertIs(backing_key.properties.managed, True)
        self.assertEqual(int.from_bytes(backing_key.key.n, "big"), key.public_key().public_numbers().n)

    def test_a_password_protected_pfx_made_by_openssl_is_stored_without_password(self):
        name = "py-import-pfx-password"
        key = new_rsa_key()
        der_cert = self_signed(key, "protected.example.com")
        password = f"pfx-{uuid.uuid4()}"
        SENSITIVE.add(password)
        with tempfile.TemporaryDirectory() as tmp:
            key_path, cert_path, pfx_path = (os.path.join(tmp, f) for f in ("key.pem", "cert.pem", "out.pfx"))
            with open(key_path, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            with open(cert_path, "wb") as f:
                f.write(der_cert.public_bytes(serialization.Encoding.PEM))
            subprocess.run(["openssl", "pkcs12", "-export", "-inkey", key_path, "-in", cert_path, "-out", pfx_path,
                            "-passout", "env:PFX_PASSWORD"], env=dict(os.environ, PFX_PASSWORD=password),
                           capture_output=True, check=True)
            with open(pfx_path, "rb") as f:
                pfx = f.read()
        SENSITIVE.add(base64.b64encode(pfx).decode())
        cert = CLIENT.import_certificate(name, pfx, password=password)
        self.assertEqual(bytes(cert.cer), der_cert.public_bytes(serialization.Encoding.DER))
        self.assertImportedPolicy(cert.policy, "RSA", "CN=protected.example.com")
        self.assertPfxSecret(SECRETS.get_secret(name), cert)

    def test_a_pfx_with_the_wrong_password_is_refused_without_echoing_it(self):
        name = "py-import-wrong-password"
        key = new_rsa_key()
        password = f"right-{uuid.uuid4()}"
        wrong = f"wrong-{uuid.uuid4()}"
        SENSITIVE.update((password, wrong))
        pfx = pkcs12.serialize_key_and_certificates(
            b"x", key, self_signed(key, "wrong.example.com"), None,
            serialization.BestAvailableEncryption(password.encode()))
        err = self.assertHttpError(HttpResponseError, 400, None, CLIENT.import_certificate, name, pfx, password=wrong)
        text = err.response.text()
        for p in (password, wrong):
            self.assertNotIn(p, text, "the error echoes a password")
        self.assertCertificateNotFound(name)

    def test_pem_bytes_with_a_pem_policy_as_the_sdk_documents(self):
        name = "py-import-pem-ec"
        key = ec.generate_private_key(ec.SECP256R1())
        track_private_key(key)
        der_cert = self_signed(key, "pem.example.com", ["pem.example.com"])
        pem = (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()) + der_cert.public_bytes(serialization.Encoding.PEM))
        SENSITIVE.add(base64.b64encode(pem).decode())
        cert = CLIENT.import_certificate(name, pem, policy=CertificatePolicy(content_type=CertificateContentType.pem))
        self.assertEqual(bytes(cert.cer), der_cert.public_bytes(serialization.Encoding.DER))
        self.assertImportedPolicy(cert.policy, "EC", "CN=pem.example.com", ["pem.example.com"])
        self.assertEqual(cert.policy.key_curve_name, "P-256")
        self.assertEqual(cert.policy.content_type, PEM)
        self.assertPemSecret(SECRETS.get_secret(name), cert)

    def test_pem_bytes_without_a_policy_keep_the_detected_pem_format(self):
        name = "py-import-pem-detected"
        key = new_rsa_key()
        der_cert = self_signed(key, "detected.example.com")
        pem = (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()) + der_cert.public_bytes(serialization.Encoding.PEM))
        SENSITIVE.add(base64.b64encode(pem).decode())
        cert = CLIENT.import_certificate(name, pem)
        self.assertEqual(cert.policy.content_type, PEM)
        self.assertPemSecret(SECRETS.get_secret(name), cert)

    def test_a_pfx_with_a_pem_policy_is_stored_as_pem(self):
        name = "py-import-pfx-as-pem"
        key = new_rsa_key()
        der_cert = self_signed(key, "converted.example.com")
        pfx = pkcs12.serialize_key_and_certificates(b"x", key, der_cert, None, serialization.NoEncryption())
        SENSITIVE.add(base64.b64encode(pfx).decode())
        cert = CLIENT.import_certificate(name, pfx, policy=CertificatePolicy(content_type=CertificateContentType.pem))
        self.assertEqual(cert.policy.content_type, PEM)
        self.assertPemSecret(SECRETS.get_secret(name), cert)

    def test_garbage_is_400_bad_parameter_and_creates_nothing(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.import_certificate, "py-import-garbage",
                             b"this is neither a PFX nor PEM")
        self.assertCertificateNotFound("py-import-garbage")
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, "py-import-garbage")


class Test07DeleteRecoverPurge(CertificatesTestCase):
    NAME = "py-cert-lifecycle"
    cert = None
    secret_value = None

    @classmethod
    def setUpClass(cls):
        cls.cert = create(cls.NAME)
        cls.secret_value = SECRETS.get_secret(cls.NAME).value
        SENSITIVE.add(cls.secret_value)

    def test_1_delete_returns_the_deleted_certificate_and_hides_its_key_and_secret(self):
        poller = CLIENT.begin_delete_certificate(self.NAME, **POLL)
        deleted = poller.result()
        poller.wait()
        self.assertEqual(deleted.recovery_id, f"{SERVER.vault_url}/deletedcertificates/{self.NAME}")
        self.assertEqual(deleted.id, self.cert.id)
        self.assertEqual(deleted.name, self.NAME)
        self.assertRecent(deleted.deleted_on, "deleted_on")
        self.assertGreaterEqual(deleted.scheduled_purge_date - deleted.deleted_on, datetime.timedelta(days=7))
        got = CLIENT.get_deleted_certificate(self.NAME)
        self.assertEqual(got.recovery_id, deleted.recovery_id)
        self.assertEqual(bytes(got.cer), bytes(self.cert.cer))
        self.assertIn(self.NAME, [d.name for d in CLIENT.list_deleted_certificates()])
        self.assertCertificateNotFound(self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", KEYS.get_key, self.NAME)
        self.assertNotIn(self.NAME, [d.name for d in SECRETS.list_deleted_secrets()],
                         "the certificate's secret is not listed as a deleted secret")

    def test_2_recover_brings_back_the_certificate_its_key_and_its_secret(self):
        poller = CLIENT.begin_recover_deleted_certificate(self.NAME, **POLL)
        poller.wait()
        self.assertEqual(poller.result().id, self.cert.id)
        got = CLIENT.get_certificate(self.NAME)
        self.assertEqual(bytes(got.cer), bytes(self.cert.cer))
        self.assertIsNotNone(got.policy)
        self.assertEqual(SECRETS.get_secret(self.NAME).value, self.secret_value)
        self.assertEqual(KEYS.get_key(self.NAME).id, self.cert.key_id)
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_deleted_certificate, self.NAME)

    def test_3_purge_removes_the_certificate_its_key_and_its_secret_for_good(self):
        CLIENT.begin_delete_certificate(self.NAME, **POLL).wait()
        self.assertIsNone(CLIENT.purge_deleted_certificate(self.NAME))
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_deleted_certificate, self.NAME)
        self.assertCertificateNotFound(self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_deleted_secret, self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", KEYS.get_deleted_key, self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", KEYS.get_key, self.NAME)
        reborn = create(self.NAME)
        self.assertNotEqual(bytes(reborn.cer), bytes(self.cert.cer))


class Test08BadInput(CertificatesTestCase):
    def test_an_issuer_other_than_self_is_400_bad_parameter_and_creates_nothing(self):
        for issuer in ("Unknown", "DigiCert"):
            with self.subTest(issuer=issuer):
                name = f"py-cert-issuer-{issuer.lower()}"
                self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.begin_create_certificate, name,
                                     CertificatePolicy(issuer, subject="CN=issued"), **POLL)
                self.assertCertificateNotFound(name)

    def test_an_unsupported_key_size_or_curve_is_400_bad_parameter(self):
        for label, policy in (("rsa-1024", CertificatePolicy("Self", subject="CN=x", key_type="RSA", key_size=1024)),
                              ("p-192", CertificatePolicy("Self", subject="CN=x", key_type="EC",
                                                          key_curve_name="P-192"))):
            with self.subTest(policy=label):
                name = f"py-cert-bad-{label}"
                self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.begin_create_certificate, name,
                                     policy, **POLL)
                self.assertCertificateNotFound(name)


class Test09Authorization(CertificatesTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cert = create("py-cert-guarded")

    def client(self, cred):
        self.addCleanup(cred.close)
        client = CertificateClient(SERVER.vault_url, cred, connection_verify=SERVER.ca_path)
        self.addCleanup(client.close)
        return client

    def test_without_create_a_principal_that_reads_and_lists_gets_403_on_create_and_import(self):
        client = self.client(principal_with_certificate_permissions("py-certs-reader", ["get", "list"]))
        self.assertEqual(client.get_certificate("py-cert-guarded").id, self.cert.id)
        self.assertIn("py-cert-guarded", [p.name for p in client.list_properties_of_certificates()])
        self.assertForbidden(client.begin_create_certificate, "py-cert-reader-made", CertificatePolicy.get_default(),
                             **POLL)
        key = new_rsa_key()
        pfx = pkcs12.serialize_key_and_certificates(b"x", key, self_signed(key, "reader"), None,
                                                    serialization.NoEncryption())
        self.assertForbidden(client.import_certificate, "py-cert-reader-imported", pfx)
        self.assertCertificateNotFound("py-cert-reader-made")
        self.assertCertificateNotFound("py-cert-reader-imported")

    def test_with_only_get_a_principal_gets_but_cannot_list(self):
        client = self.client(principal_with_certificate_permissions("py-certs-getter", ["get"]))
        self.assertEqual(bytes(client.get_certificate("py-cert-guarded").cer), bytes(self.cert.cer))
        self.assertForbidden(lambda: list(client.list_properties_of_certificates()))
        self.assertForbidden(lambda: list(client.list_properties_of_certificate_versions("py-cert-guarded")))

    def test_with_create_and_get_a_principal_creates_but_cannot_update_or_delete(self):
        client = self.client(principal_with_certificate_permissions("py-certs-creator", ["create", "get"]))
        cert = create("py-cert-creator-made", client=client)
        self.assertIds(cert, "py-cert-creator-made")
        self.assertForbidden(client.update_certificate_properties, "py-cert-creator-made", tags={"a": "b"})
        self.assertForbidden(client.begin_delete_certificate, "py-cert-creator-made", **POLL)


class Test99ServerProcess(unittest.TestCase):
    def test_1_the_server_exits_with_status_0_on_sigterm(self):
        returncode = SERVER.stop()
        self.assertFalse(SERVER.killed_hard, f"needed SIGKILL, {harness.STOP_TIMEOUT_S:.0f} s after SIGTERM")
        self.assertEqual(returncode, 0, f"exit status after SIGTERM\n--- stderr tail ---\n{SERVER.logs()[-3000:]}")

    def test_2_the_server_logs_contain_no_private_key_secret_value_or_password(self):
        SERVER.stop()
        logs = SERVER.logs()
        self.assertGreater(len(SENSITIVE), 20, f"the suite tracked {len(SENSITIVE)} sensitive strings")
        leaked = sorted(s for s in SENSITIVE if s in logs)
        self.assertFalse(leaked, f"{len(leaked)} sensitive strings found in the server's log output")


if __name__ == "__main__":
    unittest.main()
