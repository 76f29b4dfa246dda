#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace coffer::crypto {

// SecureBytes owns a buffer of secret bytes (private key DER, a decrypted
// plaintext, an unwrapped key) and overwrites it with OPENSSL_cleanse when it
// is destroyed or assigned over. Move-only: a copy would be one more place a
// secret lives. The bytes are on the heap, so a move hands over the pointer
// and leaves nothing behind (a short std::string would copy its inline
// buffer). Not thread-safe for writes; const access from several threads is
// safe.
class SecureBytes {
 public:
  SecureBytes() = default;
  // Allocates `size` zero bytes.
  explicit SecureBytes(size_t size);
  // Copies `bytes`. The caller still owns (and should wipe) its source.
  explicit SecureBytes(std::string_view bytes);
  ~SecureBytes();

  SecureBytes(SecureBytes&& other) noexcept;
  SecureBytes& operator=(SecureBytes&& other) noexcept;
  SecureBytes(const SecureBytes&) = delete;
  SecureBytes& operator=(const SecureBytes&) = delete;

  unsigned char* data() { return data_.get(); }
  const unsigned char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(data_.get()), size_);
  }
  // Shrinks the visible length to `size` (<= size()), wiping the bytes cut
  // off; the allocation is kept.
  void Truncate(size_t size);

 private:
  void Wipe();
  std::unique_ptr<unsigned char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace coffer::crypto
