"""Conformance of the official azure-keyvault-certificates client (Debian python3-azure, 4.7.0b1) with
Coffer's certificates API: CertificateClient's create (Self issuer), import, policy, versions, update,
delete/recover/purge and access-policy permissions, and the key and secret a certificate owns as
KeyClient and SecretClient see them; the Unknown issuer with get_certificate_operation and
merge_certificate (and its refusals), cancel_certificate_operation and delete_certificate_operation;
contacts; issuers, including one of Coffer's own provider that signs with the installation's CA
(served at /coffer/v1/ca); backup_certificate and restore_certificate_backup; and the access-policy
permissions of contacts and issuers.

One real `coffer server --dev` process serves the whole module.  The clients are configured as in
test_secrets.py: the vault URL, the server's CA (connection_verify), the authority and
instance_discovery=False; nothing is opted out of.

What the server returns is checked independently of the SDK with python3-cryptography: the `cer` is
parsed as X.509 and its self-signature verified, the operation's `csr` as PKCS#10, the backing secret
as a password-less PFX (with its chain) or as PEM, and signatures the backing key makes against the
certificate's public key.  A CSR to merge is signed here by a CA made with python3-cryptography; a
certificate of a Coffer issuer is verified against the CA certificate the server publishes.  Coffer's
own issuer rules (the `coffer` member, which the SDK has no parameter for) go through the client's
pipeline with send_request.

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
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import (AdministratorContact, CertificateClient, CertificateContact,
                                         CertificateContentType, CertificatePolicy, CertificatePolicyAction,
                                         KeyUsageType, LifetimeAction)
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


def new_ca(common_name):
    """A CA made here (EC P-256): its private key and its self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.utcnow().replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def sign_csr(csr, ca_key, ca_cert, public_key=None, days=90):
    """A certificate for the CSR's subject and SANs, issued by the CA, for public_key (the CSR's by default)."""
    now = datetime.datetime.utcnow().replace(microsecond=0)
    builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
               .public_key(public_key or csr.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(san, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca_key, hashes.SHA256())


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def csr_of(operation):
    return x509.load_der_x509_csr(bytes(operation.csr))


def pfx_chain(secret):
    """The certificates of a PFX secret besides its leaf, as DER."""
    _, _, extra = pkcs12.load_key_and_certificates(base64.b64decode(secret.value, validate=True), None)
    return [der(c) for c in extra]


def begin_pending(name, subject, **kwargs):
    """begin_create_certificate with the Unknown issuer, waited for; the operation the server then holds.

    CreateCertificatePoller (4.7.0b1, _polling.py) counts an operation of the Unknown issuer as finished
    from the start, so wait() returns at once and result() has nothing; the operation is read back."""
    poller = CLIENT.begin_create_certificate(name, CertificatePolicy("Unknown", subject=subject, **kwargs), **POLL)
    poller.wait()
    return CLIENT.get_certificate_operation(name)


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

    def test_a_non_exportable_key_stays_out_of_the_secret_but_signs_in_the_vault(self):
        name = "py-cert-non-exportable"
        cert = create(name, CertificatePolicy("Self", subject="CN=ne", key_type="EC", key_curve_name="P-256",
                                              exportable=False))
        self.assertIs(cert.policy.exportable, False)
        secret = SECRETS.get_secret(name)
        self.assertEqual(secret.properties.content_type, PKCS12)
        key, leaf, extra = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
        self.assertIsNone(key)
        # With no key, no certificate is "the key's": the PFX holds it among the others.
        certs = ([leaf] if leaf else []) + extra
        self.assertEqual([c.public_bytes(serialization.Encoding.DER) for c in certs], [bytes(cert.cer)])
        # The SDK sends key_props only when one of them is truthy: exportable=False alone would not
        # reach the server, so the key type goes with it.
        pem = create(name + "-pem", CertificatePolicy("Self", subject="CN=ne", exportable=False, key_type="RSA",
                                                      content_type=CertificateContentType.pem))
        text = SECRETS.get_secret(name + "-pem").value
        self.assertNotIn("PRIVATE KEY", text)
        self.assertEqual(x509.load_pem_x509_certificate(text.encode()).public_bytes(serialization.Encoding.DER),
                         bytes(pem.cer))
        # The key is the vault's: it signs there.
        self.assertIs(KEYS.get_key(name).properties.managed, True)
        cc = KEYS.get_cryptography_client(name, key_version=cert.properties.version)
        signature = cc.sign(SignatureAlgorithm.es256, hashlib.sha256(b"non-exportable").digest()).signature
        x509_of(cert).public_key().verify(raw_to_der(signature), b"non-exportable", ec.ECDSA(hashes.SHA256()))


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
    def test_an_issuer_the_vault_does_not_have_is_400_bad_parameter_and_creates_nothing(self):
        # Self, Unknown and the vault's own issuers are known (Test10, Test14, Test15); "DigiCert"
        # names no issuer of this vault.
        name = "py-cert-issuer-digicert"
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.begin_create_certificate, name,
                             CertificatePolicy("DigiCert", subject="CN=issued"), **POLL)
        self.assertCertificateNotFound(name)
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_certificate_operation, name)
        self.assertHttpError(ResourceNotFoundError, 404, "KeyNotFound", KEYS.get_key, name)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, name)

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


class Test10UnknownIssuerAndMerge(CertificatesTestCase):
    NAME = "py-cert-unknown"
    SUBJECT = "CN=merge.example.com"
    DNS = ["merge.example.com", "www.merge.example.com"]
    ca_key = ca_cert = poller = None

    @classmethod
    def setUpClass(cls):
        cls.ca_key, cls.ca_cert = new_ca("Coffer SDK test merge CA")
        cls.poller = CLIENT.begin_create_certificate(
            cls.NAME, CertificatePolicy("Unknown", subject=cls.SUBJECT, san_dns_names=cls.DNS), **POLL)
        cls.poller.wait()

    def test_1_create_leaves_an_operation_in_progress_with_a_csr_as_the_policy_asks(self):
        # The poller keeps the 202's operation: the SDK reports its status in lower case.
        self.assertEqual(self.poller.status(), "inprogress")
        op = CLIENT.get_certificate_operation(self.NAME)
        self.assertEqual(op.status, "inProgress")
        self.assertEqual(op.issuer_name, "Unknown")
        self.assertEqual(op.id, f"{SERVER.vault_url}/certificates/{self.NAME}/pending")
        self.assertEqual(op.target, f"{SERVER.vault_url}/certificates/{self.NAME}")
        self.assertTrue(op.request_id)
        self.assertFalse(op.cancellation_requested)
        self.assertIsNone(op.error)
        csr = csr_of(op)
        self.assertTrue(csr.is_signature_valid, "the CSR is signed by its own key")
        self.assertEqual(csr.subject.rfc4514_string(), self.SUBJECT)
        self.assertIsInstance(csr.public_key(), rsa.RSAPublicKey)
        self.assertEqual(csr.public_key().key_size, 2048)
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(sorted(san.get_values_for_type(x509.DNSName)), sorted(self.DNS))
        # Nothing holds a private key yet: the secret comes with the merge.
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, self.NAME)
        # The certificate reads as Key Vault shows a pending one: its version-to-be, disabled, with the policy
        # and no certificate.
        waiting = CLIENT.get_certificate(self.NAME)
        self.assertIs(waiting.properties.enabled, False)
        self.assertIsNone(waiting.cer)
        self.assertEqual(waiting.policy.issuer_name, "Unknown")
        self.assertEqual(waiting.policy.subject, self.SUBJECT)
        raw = CLIENT._client.get_certificate(SERVER.vault_url, self.NAME, "")
        self.assertIsNone(raw.kid)

    def test_2_a_create_while_the_operation_is_in_progress_is_409_conflict_and_changes_nothing(self):
        before = CLIENT.get_certificate_operation(self.NAME)
        for issuer in ("Unknown", "Self"):
            with self.subTest(issuer=issuer):
                self.assertHttpError(HttpResponseError, 409, "Conflict", CLIENT.begin_create_certificate, self.NAME,
                                     CertificatePolicy(issuer, subject="CN=other"), **POLL)
        after = CLIENT.get_certificate_operation(self.NAME)
        self.assertEqual((after.status, after.request_id, bytes(after.csr)),
                         ("inProgress", before.request_id, bytes(before.csr)))

    def test_3_merge_makes_the_certificate_from_the_signed_chain_with_the_pending_key(self):
        op = CLIENT.get_certificate_operation(self.NAME)
        csr = csr_of(op)
        leaf = sign_csr(csr, self.ca_key, self.ca_cert)
        merged = CLIENT.merge_certificate(self.NAME, [der(leaf), der(self.ca_cert)], tags={"stage": "merged"})
        self.assertIds(merged, self.NAME)
        self.assertEqual(bytes(merged.cer), der(leaf))
        self.assertEqual(merged.properties.tags, {"stage": "merged"})
        self.assertIs(merged.properties.enabled, True)
        self.assertAttributesMatch(merged, leaf)
        verify_signed_by(x509_of(merged), self.ca_cert.public_key())
        self.assertEqual(spki(x509_of(merged)), spki(csr), "the certificate carries the CSR's key")
        self.assertIsNotNone(merged.policy)
        self.assertEqual(merged.policy.issuer_name, "Unknown")
        self.assertEqual(merged.policy.subject, self.SUBJECT)
        got = CLIENT.get_certificate(self.NAME)
        self.assertEqual((got.id, bytes(got.cer)), (merged.id, der(leaf)))
        # The secret holds the pending key with the whole chain, leaf first.
        secret = SECRETS.get_secret(self.NAME)
        self.assertIs(secret.properties.managed, True)
        self.assertEqual(secret.properties.key_id, merged.key_id)
        self.assertPfxSecret(secret, merged)
        self.assertEqual(pfx_chain(secret), [der(self.ca_cert)])
        key = KEYS.get_key(self.NAME)
        self.assertEqual(key.id, merged.key_id)
        self.assertIs(key.properties.managed, True)
        self.assertEqual(int.from_bytes(key.key.n, "big"), csr.public_key().public_numbers().n)
        done = CLIENT.get_certificate_operation(self.NAME)
        self.assertEqual(done.status, "completed")
        self.assertEqual(done.issuer_name, "Unknown")
        self.assertEqual(done.request_id, op.request_id)
        self.assertEqual(bytes(done.csr), bytes(op.csr))

    def test_4_a_second_merge_is_404_certificate_operation_not_found(self):
        before = CLIENT.get_certificate(self.NAME)
        leaf = sign_csr(csr_of(CLIENT.get_certificate_operation(self.NAME)), self.ca_key, self.ca_cert)
        self.assertHttpError(ResourceNotFoundError, 404, "PendingCertificateNotFound", CLIENT.merge_certificate,
                             self.NAME, [der(leaf)])
        after = CLIENT.get_certificate(self.NAME)
        self.assertEqual((after.id, bytes(after.cer)), (before.id, bytes(before.cer)))


class Test11MergeRefusals(CertificatesTestCase):
    def test_a_certificate_for_another_key_is_400_and_the_operation_stays_mergeable(self):
        name = "py-merge-wrong-key"
        ca_key, ca_cert = new_ca("Coffer SDK test refusal CA")
        op = begin_pending(name, "CN=wrong-key.example.com")
        csr = csr_of(op)
        wrong = sign_csr(csr, ca_key, ca_cert, public_key=new_rsa_key().public_key())
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.merge_certificate, name, [der(wrong)])
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.merge_certificate, name,
                             [b"this is not a certificate"])
        still = CLIENT.get_certificate_operation(name)
        self.assertEqual((still.status, still.request_id), ("inProgress", op.request_id))
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, name)
        right = sign_csr(csr, ca_key, ca_cert)
        merged = CLIENT.merge_certificate(name, [der(right)])
        self.assertEqual(bytes(merged.cer), der(right))
        self.assertEqual(pfx_chain(SECRETS.get_secret(name)), [], "a chain of the leaf alone")

    def test_a_merge_without_an_operation_is_404_certificate_operation_not_found(self):
        _, ca_cert = new_ca("Coffer SDK test stray CA")
        stray = self_signed(new_rsa_key(), "stray.example.com")
        self.assertHttpError(ResourceNotFoundError, 404, "PendingCertificateNotFound", CLIENT.merge_certificate,
                             "py-merge-nothing-pending", [der(stray), der(ca_cert)])
        self.assertCertificateNotFound("py-merge-nothing-pending")


class Test12CancelAndDeleteOperation(CertificatesTestCase):
    def test_cancel_marks_an_operation_in_progress_cancelled_and_a_merge_is_then_409(self):
        name = "py-op-cancel"
        op = begin_pending(name, "CN=cancel.example.com")
        cancelled = CLIENT.cancel_certificate_operation(name)
        self.assertEqual(cancelled.status, "cancelled")
        self.assertIs(cancelled.cancellation_requested, True)
        self.assertEqual((cancelled.request_id, bytes(cancelled.csr)), (op.request_id, bytes(op.csr)))
        got = CLIENT.get_certificate_operation(name)
        self.assertEqual((got.status, got.cancellation_requested), ("cancelled", True))
        ca_key, ca_cert = new_ca("Coffer SDK test cancel CA")
        leaf = sign_csr(csr_of(op), ca_key, ca_cert)
        self.assertHttpError(HttpResponseError, 409, "Conflict", CLIENT.merge_certificate, name, [der(leaf)])
        # Until a new create or a delete replaces it, the certificate reads as the cancelled operation's
        # version-to-be: disabled, with no certificate; there is no secret.
        waiting = CLIENT.get_certificate(name)
        self.assertIs(waiting.properties.enabled, False)
        self.assertIsNone(waiting.cer)
        self.assertHttpError(ResourceNotFoundError, 404, "SecretNotFound", SECRETS.get_secret, name)
        # A cancelled operation does not hold the name: a new create starts a new one with a new key.
        again = begin_pending(name, "CN=cancel.example.com")
        self.assertEqual(again.status, "inProgress")
        self.assertFalse(again.cancellation_requested)
        self.assertNotEqual(again.request_id, op.request_id)
        self.assertNotEqual(spki(csr_of(again)), spki(csr_of(op)))

    def test_cancel_returns_a_finished_operation_unchanged(self):
        name = "py-op-cancel-finished"
        cert = create(name)
        op = CLIENT.cancel_certificate_operation(name)
        self.assertEqual(op.status, "completed")
        self.assertFalse(op.cancellation_requested)
        self.assertEqual(CLIENT.get_certificate_operation(name).status, "completed")
        self.assertEqual(bytes(CLIENT.get_certificate(name).cer), bytes(cert.cer))

    def test_delete_drops_an_operation_in_progress_and_frees_the_name(self):
        name = "py-op-delete"
        op = begin_pending(name, "CN=delete.example.com")
        deleted = CLIENT.delete_certificate_operation(name)
        self.assertEqual(deleted.status, "inProgress")
        self.assertEqual(deleted.issuer_name, "Unknown")
        self.assertEqual((deleted.request_id, bytes(deleted.csr)), (op.request_id, bytes(op.csr)))
        # Which 404 it is: test_after_a_delete_get_pending_says_pending_certificate_not_found.
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_certificate_operation, name)
        ca_key, ca_cert = new_ca("Coffer SDK test delete CA")
        self.assertHttpError(ResourceNotFoundError, 404, "PendingCertificateNotFound", CLIENT.merge_certificate,
                             name, [der(sign_csr(csr_of(op), ca_key, ca_cert))])
        self.assertCertificateNotFound(name)
        cert = create(name)
        self.assertIds(cert, name)
        self.assertNotEqual(spki(x509_of(cert)), spki(csr_of(op)))

    def test_after_a_delete_get_pending_says_pending_certificate_not_found(self):
        name = "py-op-delete-msg"
        begin_pending(name, "CN=delete-msg.example.com")
        CLIENT.delete_certificate_operation(name)
        err = self.assertHttpError(ResourceNotFoundError, 404, "PendingCertificateNotFound",
                                   CLIENT.get_certificate_operation, name)
        self.assertEqual(err.error.message, f"Pending certificate not found: {name}")

    def test_delete_of_a_finished_operation_drops_the_record_and_keeps_the_certificate(self):
        name = "py-op-delete-finished"
        cert = create(name)
        deleted = CLIENT.delete_certificate_operation(name)
        self.assertEqual((deleted.status, deleted.issuer_name), ("completed", "Self"))
        self.assertEqual(spki(csr_of(deleted)), spki(x509_of(cert)))
        err = self.assertHttpError(ResourceNotFoundError, 404, "PendingCertificateNotFound",
                                   CLIENT.get_certificate_operation, name)
        self.assertEqual(err.error.message, f"Pending certificate not found: {name}")
        got = CLIENT.get_certificate(name)
        self.assertEqual((got.id, bytes(got.cer)), (cert.id, bytes(cert.cer)))
        self.assertPfxSecret(SECRETS.get_secret(name), cert)


def contact_fields(contacts):
    return [(c.email, c.name, c.phone) for c in contacts]


class Test13Contacts(CertificatesTestCase):
    CONTACTS = [("ops@example.com", "Ops on call", "+1 555 0100"), ("pki@example.com", None, None)]

    def test_1_with_no_contacts_get_and_delete_are_404_contacts_not_found(self):
        self.assertHttpError(ResourceNotFoundError, 404, "ContactsNotFound", CLIENT.get_contacts)
        self.assertHttpError(ResourceNotFoundError, 404, "ContactsNotFound", CLIENT.delete_contacts)

    def test_2_set_get_replace_and_delete(self):
        made = CLIENT.set_contacts([CertificateContact(email=e, name=n, phone=p) for e, n, p in self.CONTACTS])
        self.assertEqual(contact_fields(made), self.CONTACTS)
        self.assertEqual(contact_fields(CLIENT.get_contacts()), self.CONTACTS)
        r = SERVER.kv("GET", "/certificates/contacts")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.json(), {"id": f"{SERVER.vault_url}/certificates/contacts", "contacts": [
            {"email": "ops@example.com", "name": "Ops on call", "phone": "+1 555 0100"},
            {"email": "pki@example.com"}]})
        # A set replaces the whole list.
        replaced = CLIENT.set_contacts([CertificateContact(name="Night desk", phone="+1 555 0199")])
        self.assertEqual(contact_fields(replaced), [(None, "Night desk", "+1 555 0199")])
        self.assertEqual(contact_fields(CLIENT.get_contacts()), [(None, "Night desk", "+1 555 0199")])
        removed = CLIENT.delete_contacts()
        self.assertEqual(contact_fields(removed), [(None, "Night desk", "+1 555 0199")])
        self.assertHttpError(ResourceNotFoundError, 404, "ContactsNotFound", CLIENT.get_contacts)

    def test_3_a_contact_whose_email_is_no_address_is_400_and_sets_nothing(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.set_contacts,
                             [CertificateContact(email="ops.example.com", name="Ops")])
        self.assertHttpError(ResourceNotFoundError, 404, "ContactsNotFound", CLIENT.get_contacts)


class Test14Issuers(CertificatesTestCase):
    NAME = "py-issuer-digicert"
    ADMIN = ("Ada", "Lovelace", "ada@example.com", "+1 555 0101")
    password = None

    @classmethod
    def setUpClass(cls):
        cls.password = f"issuer-pw-{uuid.uuid4()}"
        SENSITIVE.add(cls.password)

    def assertIssuer(self, issuer, provider, account_id, enabled):
        self.assertEqual(issuer.id, f"{SERVER.vault_url}/certificates/issuers/{self.NAME}")
        self.assertEqual(issuer.name, self.NAME)
        self.assertEqual(issuer.provider, provider)
        self.assertEqual(issuer.account_id, account_id)
        self.assertIsNone(issuer.password, "the password is never read back")
        self.assertEqual(issuer.organization_id, "org-1")
        self.assertEqual([(a.first_name, a.last_name, a.email, a.phone) for a in issuer.admin_contacts or []],
                         [self.ADMIN])
        self.assertIs(issuer.enabled, enabled)
        self.assertRecent(issuer.created_on, "created_on")
        self.assertGreaterEqual(issuer.updated_on, issuer.created_on)

    def test_1_create_issuer_returns_the_issuer_without_its_password(self):
        first, last, email, phone = self.ADMIN
        made = CLIENT.create_issuer(
            self.NAME, "DigiCert", account_id="acct-1", password=self.password, organization_id="org-1",
            admin_contacts=[AdministratorContact(first_name=first, last_name=last, email=email, phone=phone)],
            enabled=True)
        for source, issuer in (("create_issuer", made), ("get_issuer", CLIENT.get_issuer(self.NAME))):
            with self.subTest(source=source):
                self.assertIssuer(issuer, "DigiCert", "acct-1", True)
        r = SERVER.kv("GET", f"/certificates/issuers/{self.NAME}")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.json().get("credentials"), {"account_id": "acct-1"})
        self.assertNotIn(self.password, r.body.decode())

    def test_2_update_issuer_changes_what_it_names_and_keeps_the_rest(self):
        updated = CLIENT.update_issuer(self.NAME, account_id="acct-2", enabled=False)
        for source, issuer in (("update_issuer", updated), ("get_issuer", CLIENT.get_issuer(self.NAME))):
            with self.subTest(source=source):
                self.assertIssuer(issuer, "DigiCert", "acct-2", False)

    def test_3_list_properties_of_issuers_lists_each_with_its_provider(self):
        CLIENT.create_issuer("py-issuer-second", "OneCertV2-PublicCA")
        listed = {p.name: p for p in CLIENT.list_properties_of_issuers()}
        self.assertEqual(listed[self.NAME].provider, "DigiCert")
        self.assertEqual(listed[self.NAME].id, f"{SERVER.vault_url}/certificates/issuers/{self.NAME}")
        self.assertEqual(listed["py-issuer-second"].provider, "OneCertV2-PublicCA")

    def test_4_a_certificate_from_an_issuer_coffer_cannot_reach_is_400_and_creates_nothing(self):
        # py-issuer-second is enabled; its provider is not Coffer's own.
        for issuer in (self.NAME, "py-issuer-second"):
            with self.subTest(issuer=issuer):
                name = f"py-cert-from-{issuer}"
                self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.begin_create_certificate, name,
                                     CertificatePolicy(issuer, subject="CN=public.example.com"), **POLL)
                self.assertCertificateNotFound(name)
                self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_certificate_operation, name)

    def test_5_self_and_unknown_are_reserved_names(self):
        for reserved in ("Self", "Unknown"):
            with self.subTest(name=reserved):
                self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.create_issuer, reserved, "Coffer")

    def test_6_delete_issuer_returns_it_and_it_is_gone(self):
        deleted = CLIENT.delete_issuer(self.NAME)
        self.assertIssuer(deleted, "DigiCert", "acct-2", False)
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_issuer, self.NAME)
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.delete_issuer, self.NAME)
        self.assertNotIn(self.NAME, [p.name for p in CLIENT.list_properties_of_issuers()])


class Test15CofferIssuer(CertificatesTestCase):
    ISSUER = "py-coffer-ca"
    ca = None

    @classmethod
    def setUpClass(cls):
        r = SERVER.request("GET", "/coffer/v1/ca", host="localhost", auth=False)
        if r.status != 200:
            raise AssertionError(f"GET /coffer/v1/ca: {r!r}")
        cls.ca_pem = r.body
        cls.ca = x509.load_pem_x509_certificate(r.body)
        cls.issuer = CLIENT.create_issuer(cls.ISSUER, "Coffer")

    def test_1_the_installation_ca_is_served_without_a_token_as_the_pem_of_a_ca(self):
        self.assertTrue(self.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----"), self.ca_pem[:60])
        self.assertEqual(self.ca.issuer, self.ca.subject)
        verify_signed_by(self.ca, self.ca.public_key())
        self.assertIs(self.ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, True)
        self.assertEqual((self.issuer.name, self.issuer.provider, self.issuer.enabled), (self.ISSUER, "Coffer", True))

    def test_2_a_certificate_of_a_coffer_issuer_is_signed_by_the_installation_ca(self):
        name = "py-cert-coffer-issued"
        dns = ["svc.internal.example"]
        cert = create(name, CertificatePolicy(self.ISSUER, subject="CN=svc.internal.example", san_dns_names=dns,
                                              validity_in_months=6))
        self.assertIds(cert, name)
        leaf = x509_of(cert)
        self.assertEqual(leaf.issuer, self.ca.subject)
        self.assertNotEqual(leaf.issuer, leaf.subject)
        verify_signed_by(leaf, self.ca.public_key())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), dns)
        self.assertValidityMonths(leaf, 6)
        self.assertAttributesMatch(cert, leaf)
        self.assertEqual(cert.policy.issuer_name, self.ISSUER)
        secret = SECRETS.get_secret(name)
        self.assertPfxSecret(secret, cert)
        self.assertEqual(pfx_chain(secret), [der(self.ca)], "the secret's chain is the leaf and the CA")
        self.assertIs(KEYS.get_key(name).properties.managed, True)
        op = CLIENT.get_certificate_operation(name)
        self.assertEqual((op.status, op.issuer_name), ("completed", self.ISSUER))

    def test_3_the_coffer_members_rules_refuse_other_dns_names_and_longer_validity(self):
        # The SDK has no parameter for Coffer's own member: it goes through the client's pipeline.
        rules = {"allowed_dns_suffixes": ["internal.example"], "max_validity_months": 6}
        resp = CLIENT.send_request(HttpRequest("PATCH", f"/certificates/issuers/{self.ISSUER}",
                                               json={"coffer": rules}))
        self.assertEqual(resp.status_code, 200, resp.text())
        self.assertEqual(resp.json().get("coffer"), rules)
        self.assertEqual(CLIENT.get_issuer(self.ISSUER).provider, "Coffer")
        for label, policy in (
                ("a DNS name outside the suffixes",
                 CertificatePolicy(self.ISSUER, subject="CN=svc", san_dns_names=["svc.example.org"])),
                ("a suffix that is only a tail of a label",
                 CertificatePolicy(self.ISSUER, subject="CN=svc", san_dns_names=["evilinternal.example"])),
                ("more months than the issuer signs for",
                 CertificatePolicy(self.ISSUER, subject="CN=long", san_dns_names=["long.internal.example"],
                                   validity_in_months=12))):
            with self.subTest(refused=label):
                name = "py-cert-coffer-refused"
                self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.begin_create_certificate, name,
                                     policy, **POLL)
                self.assertCertificateNotFound(name)
        within = create("py-cert-coffer-within", CertificatePolicy(
            self.ISSUER, subject="CN=deep", san_dns_names=["a.b.internal.example", "internal.example"],
            validity_in_months=6))
        verify_signed_by(x509_of(within), self.ca.public_key())

    def test_4_a_disabled_coffer_issuer_is_400(self):
        self.assertIs(CLIENT.update_issuer(self.ISSUER, enabled=False).enabled, False)
        self.addCleanup(CLIENT.update_issuer, self.ISSUER, enabled=True)
        name = "py-cert-coffer-disabled"
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.begin_create_certificate, name,
                             CertificatePolicy(self.ISSUER, subject="CN=off", san_dns_names=["off.internal.example"],
                                               validity_in_months=6), **POLL)
        self.assertCertificateNotFound(name)


class Test16BackupRestore(CertificatesTestCase):
    NAME = "py-cert-backup"
    POLICY = CertificatePolicy("Self", subject="CN=backup.example.com", key_type="EC", key_curve_name="P-256",
                               content_type=CertificateContentType.pem)

    def test_1_backup_then_purge_then_restore_brings_back_every_version_with_its_key_and_secret(self):
        versions = [create(self.NAME, self.POLICY, tags={"gen": str(n)}) for n in (1, 2)]
        values = {}
        for cert in versions:
            values[cert.properties.version] = SECRETS.get_secret(self.NAME, cert.properties.version).value
            SENSITIVE.add(values[cert.properties.version])
        backup = CLIENT.backup_certificate(self.NAME)
        self.assertIsInstance(backup, bytes)
        for value in values.values():
            for clear in (value.encode(), base64.b64encode(value.encode())):
                self.assertNotIn(clear, backup, "the blob holds no secret value in the clear")
        CLIENT.begin_delete_certificate(self.NAME, **POLL).wait()
        CLIENT.purge_deleted_certificate(self.NAME)
        self.assertCertificateNotFound(self.NAME)

        restored = CLIENT.restore_certificate_backup(backup)
        latest = versions[-1]
        self.assertIds(restored, self.NAME)
        self.assertEqual(restored.id, latest.id)
        self.assertEqual(bytes(restored.cer), bytes(latest.cer))
        self.assertEqual(restored.properties.tags, {"gen": "2"})
        self.assertEqual(CLIENT.get_certificate_policy(self.NAME).subject, "CN=backup.example.com")
        listed = sorted(p.version for p in CLIENT.list_properties_of_certificate_versions(self.NAME))
        self.assertEqual(listed, sorted(values))
        for cert in versions:
            version = cert.properties.version
            with self.subTest(version=version):
                self.assertEqual(bytes(CLIENT.get_certificate_version(self.NAME, version).cer), bytes(cert.cer))
                secret = SECRETS.get_secret(self.NAME, version)
                self.assertIs(secret.properties.managed, True)
                self.assertEqual(secret.value, values[version])
                self.assertPemSecret(secret, cert)
                key = KEYS.get_key(self.NAME, version)
                self.assertIs(key.properties.managed, True)
                self.assertEqual(key.id, cert.key_id)
        # The restored key signs for the certificate.
        cc = KEYS.get_cryptography_client(self.NAME, key_version=latest.properties.version)
        signature = cc.sign(SignatureAlgorithm.es256, hashlib.sha256(b"restored").digest()).signature
        x509_of(latest).public_key().verify(raw_to_der(signature), b"restored", ec.ECDSA(hashes.SHA256()))

    def test_2_restore_over_a_live_or_soft_deleted_certificate_is_409_conflict(self):
        backup = CLIENT.backup_certificate(self.NAME)
        self.assertHttpError(HttpResponseError, 409, "Conflict", CLIENT.restore_certificate_backup, backup)
        CLIENT.begin_delete_certificate(self.NAME, **POLL).wait()
        self.assertHttpError(HttpResponseError, 409, "Conflict", CLIENT.restore_certificate_backup, backup)
        self.assertEqual(CLIENT.get_deleted_certificate(self.NAME).name, self.NAME, "the deleted one is untouched")
        self.assertCertificateNotFound(self.NAME)

    def test_3_a_blob_that_is_no_backup_is_400_and_a_backup_of_nothing_is_404(self):
        self.assertHttpError(HttpResponseError, 400, "BadParameter", CLIENT.restore_certificate_backup,
                             b"this is not a certificate backup")
        self.assertHttpError(ResourceNotFoundError, 404, "CertificateNotFound", CLIENT.backup_certificate,
                             "py-cert-never-made")


class Test17ContactsAndIssuersAuthorization(CertificatesTestCase):
    GUARDED = "py-issuer-guarded"

    @classmethod
    def setUpClass(cls):
        CLIENT.create_issuer(cls.GUARDED, "Coffer")

    def client(self, cred):
        self.addCleanup(cred.close)
        client = CertificateClient(SERVER.vault_url, cred, connection_verify=SERVER.ca_path)
        self.addCleanup(client.close)
        return client

    def test_with_only_certificate_get_a_principal_can_neither_read_nor_set_contacts_or_issuers(self):
        client = self.client(principal_with_certificate_permissions("py-certs-get-only", ["get"]))
        self.assertEqual(client.get_certificate("py-cert-default").name, "py-cert-default")
        self.assertForbidden(client.set_contacts, [CertificateContact(email="intruder@example.com")])
        self.assertForbidden(client.get_contacts)
        self.assertForbidden(client.delete_contacts)
        self.assertForbidden(client.create_issuer, "py-issuer-by-getter", "Coffer")
        self.assertForbidden(client.update_issuer, self.GUARDED, enabled=False)
        self.assertForbidden(client.get_issuer, self.GUARDED)
        self.assertForbidden(lambda: list(client.list_properties_of_issuers()))
        self.assertForbidden(client.delete_issuer, self.GUARDED)
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_issuer, "py-issuer-by-getter")
        self.assertIs(CLIENT.get_issuer(self.GUARDED).enabled, True)
        try:
            emails = [c.email for c in CLIENT.get_contacts()]
        except ResourceNotFoundError:
            emails = []
        self.assertNotIn("intruder@example.com", emails)

    def test_managecontacts_and_getissuers_allow_those_and_nothing_else(self):
        client = self.client(principal_with_certificate_permissions(
            "py-certs-admin-reader", ["managecontacts", "getissuers", "listissuers"]))
        made = client.set_contacts([CertificateContact(email="desk@example.com")])
        self.addCleanup(lambda: CLIENT.delete_contacts())
        self.assertEqual(contact_fields(made), [("desk@example.com", None, None)])
        self.assertEqual(contact_fields(client.get_contacts()), [("desk@example.com", None, None)])
        self.assertEqual(client.get_issuer(self.GUARDED).provider, "Coffer")
        self.assertIn(self.GUARDED, [p.name for p in client.list_properties_of_issuers()])
        self.assertForbidden(client.create_issuer, "py-issuer-by-reader", "Coffer")
        self.assertForbidden(client.delete_issuer, self.GUARDED)
        self.assertForbidden(client.get_certificate, "py-cert-default")
        self.assertIs(CLIENT.get_issuer(self.GUARDED).enabled, True)


    def test_setissuers_sets_other_providers_but_only_an_administrator_sets_a_coffer_issuer(self):
        # An issuer of the Coffer provider signs with the installation's CA, which every vault's clients may
        # trust: a vault's own issuer permissions do not reach it.
        client = self.client(principal_with_certificate_permissions(
            "py-certs-issuer-setter", ["setissuers", "getissuers", "deleteissuers"]))
        made = client.create_issuer("py-issuer-digicert-by-setter", "DigiCert")
        self.assertEqual(made.provider, "DigiCert")
        self.assertForbidden(client.create_issuer, "py-issuer-coffer-by-setter", "Coffer")
        self.assertForbidden(client.update_issuer, "py-issuer-digicert-by-setter", provider="Coffer")
        self.assertForbidden(client.update_issuer, self.GUARDED, account_id="taken-over")
        self.assertHttpError(ResourceNotFoundError, 404, None, CLIENT.get_issuer, "py-issuer-coffer-by-setter")
        self.assertEqual(CLIENT.get_issuer("py-issuer-digicert-by-setter").provider, "DigiCert")
        self.assertIsNone(CLIENT.get_issuer(self.GUARDED).account_id)
        client.delete_issuer("py-issuer-digicert-by-setter")

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
