#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/asym_key.h"
#include "crypto/secure_bytes.h"

namespace coffer::crypto {

// X.509 certificates, PKCS#10 requests, PKCS#12 and PEM bundles for Key
// Vault's certificates API.
//
// Errors. Every refusal of caller input - a profile, a certificate or a
// request, a PFX or PEM bundle, a password that does not open it - is
// kInvalidArgument with reason "BadParameter" and a message that says what
// is wrong; kInternal means OpenSSL failed where it should not. No message
// carries key material, a password or more than a short, sanitised excerpt
// of the input.
//
// Every function is thread-safe: none keeps state between calls (the PKCS#12
// reader's OpenSSL library context is made once and only read after).

// --- Names as Key Vault writes them ------------------------------------------
//
// A subject is a distinguished name in Key Vault's (.NET's) form, most
// specific first: "CN=www.example.com, O=Contoso, OU=IT, C=US". In DER the
// order is reversed (RFC 4514): C first, CN last.
//   - Attributes, case-insensitive on input: CN, O, OU, L, S (or ST), C, E
//     (or EMAIL, emailAddress), DC, STREET, SERIALNUMBER, T (or TITLE), G (or
//     GN, givenName), SN (or surname), I (or initials), and any other as
//     OID.<dotted> (or a bare dotted OID). Output uses the first spelling.
//   - RDNs are separated by ',' or ';'; '+' joins attributes into one
//     multi-valued RDN. Spaces around types, values and separators are
//     dropped.
//   - A value may be quoted ("Contoso, Inc", a '"' inside written "") or
//     carry RFC 4514 escapes (\, \+ \" \\ \; \< \> \= \# and \XX hex). Output
//     quotes a value that needs it (as .NET does) and writes '"' as "" and
//     '\' as \\ inside the quotes.
//   - Limits: at most 1 KiB in all; no empty value; values are UTF-8 without
//     control characters and within X.520's lengths (CN, O, OU, T: 64
//     characters; L, S, STREET: 128; E: 128, ASCII; C: two letters; DC: 63,
//     ASCII; SERIALNUMBER: 64, PrintableString).
//
// NormalizeSubject parses `subject` and returns it in the canonical form
// above, which reading an issued certificate gives back verbatim.
// kInvalidArgument ("BadParameter") naming what is wrong; "" is refused.
StatusOr<std::string> NormalizeSubject(std::string_view subject);

// Subject alternative names as Key Vault's certificate policy names them.
struct SubjectAltNames {
  std::vector<std::string> dns_names;
  std::vector<std::string> emails;
  std::vector<std::string> upns;  // otherName 1.3.6.1.4.1.311.20.2.3, UTF8String
  std::vector<std::string> uris;
  std::vector<std::string> ip_addresses;  // IPv4 dotted quad or IPv6 text

  bool empty() const {
    return dns_names.empty() && emails.empty() && upns.empty() && uris.empty() &&
           ip_addresses.empty();
  }
};

// What a certificate, or a request for one, says about its subject.
struct CertificateProfile {
  std::string subject;  // Key Vault's form, see above; "" only with a SAN
  SubjectAltNames sans;
  // Key Vault's names, case-insensitive on input, its camelCase on output:
  // digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment,
  // keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly.
  std::vector<std::string> key_usage;
  std::vector<std::string> ekus;  // dotted OIDs, e.g. "1.3.6.1.5.5.7.3.1"
  int64_t not_before = 0;         // Unix seconds
  int64_t not_after = 0;
  // A CA: basicConstraints CA:TRUE (critical) and keyCertSign, cRLSign
  // added to the key usage. path_length only for a CA.
  bool is_ca = false;
  std::optional<int> path_length;
};

// CheckProfile checks everything IssueCertificate uses, and says in a
// kInvalidArgument ("BadParameter") the first thing that is wrong:
//   - the subject (NormalizeSubject's rules); "" is allowed only when there
//     is a SAN, and then the SAN extension is marked critical (RFC 5280);
//   - each SAN: DNS names are LDH labels of 1-63 characters, at most 253 in
//     all, with an optional leading "*." wildcard before at least two labels;
//     emails are local@domain (ASCII, the domain a DNS name); UPNs are
//     user@domain (UTF-8, no spaces); URIs are absolute (scheme ":" rest,
//     printable ASCII); IPs are IPv4 dotted quads or IPv6 text;
//     at most 100 of each kind, each at most 255 bytes;
//   - key usage names (above; repeats are allowed and count once) and EKU
//     OIDs (dotted, at least two arcs, first arc 0-2, no leading zeros; at
//     most 100, each at most 255 bytes);
//   - validity: 0 <= not_before < not_after <= 9999-12-31T23:59:59Z;
//   - path_length is >= 0 and only given with is_ca.
Status CheckProfile(const CertificateProfile& profile);

// --- Issuing and requesting ------------------------------------------------------

// IssueCertificate signs an X.509 v3 certificate for the SubjectPublicKeyInfo
// DER `subject_public_key_der` (as AsymKey::PublicKeyDer gives it; an RSA key
// of 2048, 3072 or 4096 bits or an EC key on a supported curve) with
// `issuer_key`, and returns its DER.
//   - `issuer_certificate_der` empty: self-signed. The issuer name is the
//     subject, and the subject key must be issuer_key's public key.
//     Otherwise it is the issuer's certificate: a CA (basicConstraints
//     CA:TRUE; keyCertSign if it has a key usage) whose public key is
//     issuer_key's; the issuer name is its subject. The new certificate's
//     validity is the profile's even where it outlasts the issuer's.
//   - Serial: `serial_hex` (hex, a positive integer of at most 20 bytes), or
//     empty for 16 random bytes with the top bit clear.
//   - Signature: RSA PKCS#1 v1.5 with SHA-256; ECDSA with SHA-256 on P-256
//     and P-256K, SHA-384 on P-384, SHA-512 on P-521.
//   - Extensions: basicConstraints (critical), keyUsage (critical; absent for
//     a non-CA with none), extendedKeyUsage, subjectAltName, subjectKeyIdentifier
//     (SHA-1 of the public key), authorityKeyIdentifier (the issuer's key id).
// kInvalidArgument ("BadParameter") for a profile CheckProfile refuses, a
// malformed or unsupported subject key, a bad serial, or an issuer that does
// not fit; kInternal when OpenSSL fails to build or sign.
StatusOr<std::string> IssueCertificate(const CertificateProfile& profile,
                                       std::string_view subject_public_key_der,
                                       const AsymKey& issuer_key,
                                       std::string_view issuer_certificate_der,
                                       std::string_view serial_hex = {});

// CreateCsr makes a PKCS#10 request (DER) for `key`, signed by it as
// IssueCertificate would sign, with the profile's subject, and its SANs, key
// usage, EKUs and (for a CA) basicConstraints as requested extensions.
// CheckProfile's rules except validity, which a request does not carry.
StatusOr<std::string> CreateCsr(const CertificateProfile& profile, const AsymKey& key);

// What a certificate request asks for.
struct CsrDetails {
  // subject, sans, key_usage, ekus, is_ca and path_length as requested;
  // not_before and not_after are 0.
  CertificateProfile profile;
  std::string public_key_der;  // SubjectPublicKeyInfo
};

// ReadCsr parses a DER PKCS#10 request (untrusted; at most 64 KiB, DER with
// nothing after it) and checks its self-signature. SANs of other kinds
// (directoryName, other otherNames) are skipped; the key may be of any type
// OpenSSL can verify with (IssueCertificate decides whether to sign it).
// kInvalidArgument ("BadParameter") for anything malformed, a subject or an
// extension that does not decode, or a signature that does not verify.
StatusOr<CsrDetails> ReadCsr(std::string_view der);

// --- Reading certificates ----------------------------------------------------

// A parsed certificate.
struct CertificateDetails {
  std::string der;
  std::string sha1_thumbprint;  // raw 20 bytes (Key Vault's x5t is its base64url)
  std::string subject;          // Key Vault's form
  std::string issuer;
  std::string serial_hex;  // upper case, the integer's magnitude bytes; "-" first if negative
  int64_t not_before = 0;
  int64_t not_after = 0;
  SubjectAltNames sans;                // other kinds skipped, as in ReadCsr
  std::vector<std::string> key_usage;  // Key Vault's names; empty without the extension
  std::vector<std::string> ekus;       // dotted OIDs
  bool is_ca = false;                  // basicConstraints CA:TRUE
  std::optional<int> path_length;
  std::string public_key_der;  // SubjectPublicKeyInfo, whatever the key type
};

// ReadCertificateDer parses one certificate (untrusted; at most 64 KiB, DER
// - it must re-encode to the same bytes - with nothing after it). Its
// signature is not checked: that needs the issuer. kInvalidArgument
// ("BadParameter") for anything malformed, including extensions OpenSSL
// finds invalid (duplicates, bad encodings) and names or times that do not
// decode.
StatusOr<CertificateDetails> ReadCertificateDer(std::string_view der);

// CertificatePem is one certificate (checked as ReadCertificateDer does) as a
// PEM "CERTIFICATE" block ending in "\n".
StatusOr<std::string> CertificatePem(std::string_view der);

// --- Key and chain bundles ----------------------------------------------------

// A private key with its certificate chain: the leaf (the certificate whose
// public key is the key's) first, then its issuer, that one's issuer and so
// on, as far as the input has them (an issuer is a certificate whose subject
// is the issuer name and whose key verifies the signature; the walk stops at
// a self-issued certificate). Certificates of the input that are not on
// that path are kept, appended after it in input order: Key Vault keeps
// every certificate of an imported bundle. An exact repeat of a certificate
// is dropped. When two certificates carry the key, the first is the leaf.
struct KeyAndChain {
  std::unique_ptr<AsymKey> key;
  std::vector<std::string> chain_der;
};

// ReadPkcs12 opens a PFX (untrusted; at most 1 MiB, at most 20
// certificates, at most 64 safe bags, nested safe contents at most 3 deep).
//   - Password: `password` (at most 1 KiB). When it is empty, both the
//     absent password and the empty one are tried, as PKCS12_parse does.
//     With a MAC, the password must verify it; without one, the first
//     password that decrypts every bag is taken. A password that fits
//     neither is kInvalidArgument with the message "The PFX could not be
//     opened with this password." - nothing more.
//   - Encryption: what OpenSSL's default provider reads (PBES2 with AES,
//     3DES) and, through OpenSSL's legacy provider loaded into a library
//     context of its own, the RC2 and RC4 of older Windows and `openssl
//     pkcs12 -legacy`. Where that provider is not installed such a file is
//     refused with a message that says so. No key derivation may ask for
//     more than 600000 iterations (.NET's limit), and scrypt is refused,
//     so a hostile file cannot make the server spin.
//   - Exactly one private key (RSA or EC, AsymKey's sizes and curves,
//     passing OpenSSL's key check), at least one certificate, and one of
//     them must carry the key. Bags of other kinds (CRLs, secrets) are
//     ignored.
StatusOr<KeyAndChain> ReadPkcs12(std::string_view pfx, std::string_view password);

// ReadPemBundle reads PEM text (untrusted; at most 1 MiB, at most 20
// certificates): "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY", "EC PRIVATE
// KEY" and "CERTIFICATE" blocks in any order, with any text between them
// (the "Bag Attributes" lines `openssl pkcs12 -nodes` writes). "EC
// PARAMETERS" blocks are skipped. Exactly one private key, and the leaf and
// chain rules above. An encrypted key ("ENCRYPTED PRIVATE KEY", or a
// Proc-Type ENCRYPTED header), any other block type, a block without its END
// line and a block that does not decode are each refused with a message that
// says so.
StatusOr<KeyAndChain> ReadPemBundle(std::string_view pem);

// ReadPemCertificates reads "CERTIFICATE" blocks only (untrusted; the
// limits above), each checked as ReadCertificateDer does, and returns
// their DER in the order given. Any other block type is refused.
StatusOr<std::vector<std::string>> ReadPemCertificates(std::string_view pem);

// WritePkcs12 writes `key` and `chain` (leaf first; the leaf must carry the
// key; at most 20 certificates) as a PFX with no password, for Key Vault's
// "application/x-pkcs12" secrets. SECURITY: without a password the file is
// protected only by who may read it; its encryption is there for readers
// that expect some, so it is chosen for reach, not strength: the key in a
// PKCS#8 shrouded bag under pbeWithSHA1And3-KeyTripleDES-CBC (the scheme
// Windows and Java have always written, and one OpenSSL 3 reads without its
// legacy provider; Java ignores an unencrypted key bag), the certificates
// unencrypted, and a SHA-1 MAC, all keyed with the empty password (a
// BMPString of just its terminator, which readers try for "no password"),
// 2048 iterations. certificate_bundle_test.cc checks that OpenSSL's
// `pkcs12 -passin pass:` (with the default provider only), Python's
// pkcs12.load_key_and_certificates(data, None) and Node's
// tls.createSecureContext({pfx}) read it.
StatusOr<SecureBytes> WritePkcs12(const AsymKey& key, const std::vector<std::string>& chain_der);

// WritePem writes `key` as PKCS#8 "PRIVATE KEY" and then `chain` (leaf
// first, as for WritePkcs12) as "CERTIFICATE" blocks, each ending in "\n",
// for Key Vault's "application/x-pem-file" secrets.
StatusOr<SecureBytes> WritePem(const AsymKey& key, const std::vector<std::string>& chain_der);

// WriteCertificatesPkcs12 and WriteCertificatesPem write `chain` alone, as
// the two above but without a private key: the secret of a certificate
// whose policy says its key is not exportable.
StatusOr<SecureBytes> WriteCertificatesPkcs12(const std::vector<std::string>& chain_der);
StatusOr<SecureBytes> WriteCertificatesPem(const std::vector<std::string>& chain_der);

}  // namespace coffer::crypto
