#include "crypto/secure_bytes.h"

#include <cstring>
#include <utility>

#include <openssl/crypto.h>

namespace coffer::crypto {

SecureBytes::SecureBytes(size_t size)
    : data_(size == 0 ? nullptr : new unsigned char[size]()), size_(size), capacity_(size) {}

SecureBytes::SecureBytes(std::string_view bytes) : SecureBytes(bytes.size()) {
  if (!bytes.empty()) {
    std::memcpy(data_.get(), bytes.data(), bytes.size());
  }
}

SecureBytes::~SecureBytes() {
  Wipe();
}

SecureBytes::SecureBytes(SecureBytes&& other) noexcept
    : data_(std::move(other.data_)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

void SecureBytes::Truncate(size_t size) {
  if (size < size_) {
    OPENSSL_cleanse(data_.get() + size, size_ - size);
    size_ = size;
  }
}

void SecureBytes::Wipe() {
  if (data_ != nullptr) {
    OPENSSL_cleanse(data_.get(), capacity_);
  }
  data_.reset();
  size_ = 0;
  capacity_ = 0;
}

}  // namespace coffer::crypto
