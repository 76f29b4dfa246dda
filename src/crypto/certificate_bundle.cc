// A private key with its certificate chain: the chain's order, the key's
// import, and PEM bundles (Key Vault's "application/x-pem-file" secrets).
// PKCS#12 is in certificate_pkcs12.cc.

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/asym_key_internal.h"
#include "crypto/certificate.h"
#include "crypto/certificate_internal.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace cert_internal {

bool CarriesKey(X509* cert, EVP_PKEY* key) {
  EVP_PKEY* public_key = X509_get0_pubkey(cert);
  bool same = public_key != nullptr && EVP_PKEY_eq(public_key, key) == 1;
  ERR_clear_error();
  return same;
}

StatusOr<std::unique_ptr<AsymKey>> ImportKey(std::string_view der, int type,
                                             const std::string& what) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  auto length = static_cast<long>(der.size());
  EvpPkeyPtr pkey(type == EVP_PKEY_NONE ? d2i_AutoPrivateKey(nullptr, &p, length)
                                        : d2i_PrivateKey(type, nullptr, &p, length));
  ERR_clear_error();
  if (!pkey || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return BadParameter("The private key of " + what + " does not decode.");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<AsymKey> key, asym_internal::KeyAccess::Wrap(std::move(pkey)));
  if (!asym_internal::PassesKeyCheck(asym_internal::KeyAccess::Pkey(*key))) {
    return BadParameter("The private key of " + what +
                        " is not a valid key: its parts do not agree.");
  }
  return key;
}

StatusOr<KeyAndChain> AssembleChain(std::unique_ptr<AsymKey> key, std::vector<X509Ptr> certs,
                                    const std::string& what) {
  std::vector<X509Ptr> unique;
  std::vector<std::string> ders;
  for (X509Ptr& cert : certs) {
    std::string der = ToDer<X509>(cert.get(), i2d_X509);
    if (std::find(ders.begin(), ders.end(), der) == ders.end()) {
      ders.push_back(std::move(der));
      unique.push_back(std::move(cert));
    }
  }
  if (unique.empty()) {
    return BadParameter(what + " holds no certificate.");
  }
  EVP_PKEY* pkey = asym_internal::KeyAccess::Pkey(*key);
  auto leaf = std::find_if(unique.begin(), unique.end(),
                           [pkey](const X509Ptr& cert) { return CarriesKey(cert.get(), pkey); });
  if (leaf == unique.end()) {
    return BadParameter("No certificate in " + what + " carries its private key.");
  }
  std::vector<size_t> order = {static_cast<size_t>(leaf - unique.begin())};
  std::vector<bool> placed(unique.size(), false);
  placed[order[0]] = true;
  while (order.size() < unique.size()) {
    X509* current = unique[order.back()].get();
    const X509_NAME* issuer_name = X509_get_issuer_name(current);
    if (X509_NAME_cmp(X509_get_subject_name(current), issuer_name) == 0) {
      break;  // self-issued: the root
    }
    size_t next = 0;
    for (; next < unique.size(); ++next) {
      X509* candidate = unique[next].get();
      EVP_PKEY* candidate_key = X509_get0_pubkey(candidate);
      if (!placed[next] && X509_NAME_cmp(X509_get_subject_name(candidate), issuer_name) == 0 &&
          candidate_key != nullptr && X509_verify(current, candidate_key) == 1) {
        break;
      }
    }
    ERR_clear_error();
    if (next == unique.size()) {
      break;
    }
    order.push_back(next);
    placed[next] = true;
  }
  for (size_t i = 0; i < unique.size(); ++i) {
    if (!placed[i]) {
      order.push_back(i);
    }
  }
  KeyAndChain out;
  out.key = std::move(key);
  for (size_t i : order) {
    out.chain_der.push_back(std::move(ders[i]));
  }
  return out;
}

StatusOr<std::vector<X509Ptr>> ParseChainToWrite(const AsymKey* key,
                                                 const std::vector<std::string>& chain_der) {
  if (chain_der.empty()) {
    return BadParameter("The chain is empty; it needs at least the key's certificate.");
  }
  if (chain_der.size() > kMaxBundleCertificates) {
    return BadParameter("The chain has more than 20 certificates.");
  }
  std::vector<X509Ptr> chain;
  for (size_t i = 0; i < chain_der.size(); ++i) {
    ASSIGN_OR_RETURN(X509Ptr cert,
                     cert_internal::ParseCertificate(
                         chain_der[i], "Certificate " + std::to_string(i + 1) + " of the chain"));
    chain.push_back(std::move(cert));
  }
  if (key != nullptr && !CarriesKey(chain[0].get(), asym_internal::KeyAccess::Pkey(*key))) {
    return BadParameter("The chain's first certificate is not the key's.");
  }
  return chain;
}

}  // namespace cert_internal

namespace {

using cert_internal::AssembleChain;
using cert_internal::BadParameter;
using cert_internal::Excerpt;
using cert_internal::ImportKey;
using cert_internal::kMaxBundleBytes;
using cert_internal::kMaxBundleCertificates;
using cert_internal::OpenSslFailure;
using cert_internal::ParseChainToWrite;

void FreeOpenSslChars(char* chars) {
  OPENSSL_free(chars);
}
using OpenSslCharsPtr = std::unique_ptr<char, OpenSslDeleter<char, FreeOpenSslChars>>;

constexpr size_t kMaxPemBlocks = 64;

struct PemBlock {
  std::string label;
  std::string_view text;  // from "-----BEGIN" to the end of the END line
};

StatusOr<std::vector<PemBlock>> SplitPem(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  constexpr std::string_view kDashes = "-----";
  std::vector<PemBlock> blocks;
  for (size_t pos = pem.find(kBegin); pos != std::string_view::npos; pos = pem.find(kBegin, pos)) {
    size_t label_start = pos + kBegin.size();
    size_t label_end = pem.find(kDashes, label_start);
    size_t line_end = pem.find('\n', label_start);
    if (label_end == std::string_view::npos || label_end > line_end ||
        label_end - label_start > 64) {
      return BadParameter("A PEM BEGIN line is malformed.");
    }
    std::string label(pem.substr(label_start, label_end - label_start));
    std::string end_line = "-----END " + label + "-----";
    size_t end = pem.find(end_line, label_end);
    size_t next_begin = pem.find(kBegin, label_end);
    if (end == std::string_view::npos || next_begin < end) {
      return BadParameter("The PEM block " + Excerpt(label) + " has no END line.");
    }
    if (blocks.size() == kMaxPemBlocks) {
      return BadParameter("The PEM has more than 64 blocks.");
    }
    end += end_line.size();
    blocks.push_back({std::move(label), pem.substr(pos, end - pos)});
    pos = end;
  }
  if (blocks.empty()) {
    return BadParameter("The text holds no PEM block.");
  }
  return blocks;
}

// The decoded body of a PEM block; a key's is wiped when freed.
struct ClearFree {
  long length = 0;
  void operator()(unsigned char* data) const {
    OPENSSL_clear_free(data, static_cast<size_t>(length));
  }
};
struct PemBody {
  OpenSslCharsPtr header;
  std::unique_ptr<unsigned char, ClearFree> data;
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(data.get()),
                            static_cast<size_t>(data.get_deleter().length));
  }
};

StatusOr<PemBody> DecodePem(const PemBlock& block, const std::string& what) {
  BioPtr bio(BIO_new_mem_buf(block.text.data(), static_cast<int>(block.text.size())));
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long length = 0;
  int read = bio ? PEM_read_bio(bio.get(), &name, &header, &data, &length) : 0;
  OpenSslCharsPtr owned_name(name);
  PemBody body{OpenSslCharsPtr(header), {data, ClearFree{length}}};
  if (read != 1 || data == nullptr || length <= 0) {
    ERR_clear_error();
    return BadParameter(what + " does not decode (its base64 is damaged or cut short).");
  }
  return body;
}

// PEM labels of the private keys the bundle reads, with their key types.
struct PemKeyLabel {
  std::string_view label;
  int type;
};
constexpr std::array<PemKeyLabel, 3> kPemKeyLabels = {{
    {"PRIVATE KEY", EVP_PKEY_NONE},
    {"RSA PRIVATE KEY", EVP_PKEY_RSA},
    {"EC PRIVATE KEY", EVP_PKEY_EC},
}};
constexpr std::string_view kEncryptedKey =
    "The PEM's private key is encrypted; decrypt it first (openssl pkey) or import it as a PFX "
    "with its password.";

}  // namespace

StatusOr<KeyAndChain> ReadPemBundle(std::string_view pem) {
  if (pem.size() > kMaxBundleBytes) {
    return BadParameter("The PEM is larger than 1 MiB.");
  }
  ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, SplitPem(pem));
  std::unique_ptr<AsymKey> key;
  std::vector<X509Ptr> certs;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PemBlock& block = blocks[i];
    std::string what = "PEM block " + std::to_string(i + 1) + " (" + block.label + ")";
    if (block.label == "EC PARAMETERS") {
      continue;  // `openssl ecparam -genkey` writes them before the key
    }
    if (block.label == "ENCRYPTED PRIVATE KEY") {
      return BadParameter(std::string(kEncryptedKey));
    }
    auto key_label =
        std::find_if(kPemKeyLabels.begin(), kPemKeyLabels.end(),
                     [&block](const PemKeyLabel& k) { return k.label == block.label; });
    if (key_label == kPemKeyLabels.end() && block.label != "CERTIFICATE") {
      return BadParameter("The PEM has a block of type " + Excerpt(block.label) +
                          "; only PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY and CERTIFICATE "
                          "are read.");
    }
    if (key_label != kPemKeyLabels.end() && key) {
      return BadParameter("The PEM holds more than one private key; exactly one is required.");
    }
    if (key_label == kPemKeyLabels.end() && certs.size() == kMaxBundleCertificates) {
      return BadParameter("The PEM holds more than 20 certificates.");
    }
    ASSIGN_OR_RETURN(PemBody body, DecodePem(block, what));
    if (key_label != kPemKeyLabels.end()) {
      if (body.header &&
          std::string_view(body.header.get()).find("ENCRYPTED") != std::string_view::npos) {
        return BadParameter(std::string(kEncryptedKey));
      }
      ASSIGN_OR_RETURN(key, ImportKey(body.view(), key_label->type, what));
    } else {
      ASSIGN_OR_RETURN(X509Ptr cert, cert_internal::ParseCertificate(body.view(), what));
      certs.push_back(std::move(cert));
    }
  }
  if (!key) {
    return BadParameter("The PEM holds no private key.");
  }
  return AssembleChain(std::move(key), std::move(certs), "the PEM");
}

StatusOr<std::vector<std::string>> ReadPemCertificates(std::string_view pem) {
  if (pem.size() > kMaxBundleBytes) {
    return BadParameter("The PEM is larger than 1 MiB.");
  }
  ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, SplitPem(pem));
  std::vector<std::string> out;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PemBlock& block = blocks[i];
    std::string what = "PEM block " + std::to_string(i + 1) + " (" + block.label + ")";
    if (block.label != "CERTIFICATE") {
      return BadParameter("The PEM has a block of type " + Excerpt(block.label) +
                          "; only CERTIFICATE blocks are read here.");
    }
    if (out.size() == kMaxBundleCertificates) {
      return BadParameter("The PEM holds more than 20 certificates.");
    }
    ASSIGN_OR_RETURN(PemBody body, DecodePem(block, what));
    ASSIGN_OR_RETURN(CertificateDetails details, ReadCertificateDer(body.view()));
    out.push_back(std::move(details.der));
  }
  return out;
}

namespace {

// The PEM of WritePem, without the key when `key` is null.
StatusOr<SecureBytes> PemOf(const AsymKey* key, const std::vector<std::string>& chain_der) {
  RETURN_IF_ERROR(ParseChainToWrite(key, chain_der).status());
  // A memory BIO wipes its buffer as it grows and when freed (BUF_MEM).
  BioPtr bio(BIO_new(BIO_s_mem()));
  bool written = bio != nullptr;
  if (written && key != nullptr) {
    written = cert_internal::WritePemBlock(bio.get(), "PRIVATE KEY", key->ToPrivateDer().view());
  }
  for (size_t i = 0; written && i < chain_der.size(); ++i) {
    written = cert_internal::WritePemBlock(bio.get(), "CERTIFICATE", chain_der[i]);
  }
  if (!written) {
    return OpenSslFailure("cannot write PEM");
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return SecureBytes(std::string_view(data, static_cast<size_t>(length)));
}

}  // namespace

StatusOr<SecureBytes> WritePem(const AsymKey& key, const std::vector<std::string>& chain_der) {
  return PemOf(&key, chain_der);
}

StatusOr<SecureBytes> WriteCertificatesPem(const std::vector<std::string>& chain_der) {
  return PemOf(nullptr, chain_der);
}

}  // namespace coffer::crypto
