#include "common/testing/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace coffer::test {

namespace fs = std::filesystem;

StatusOr<TempDir> TempDir::Create(std::string_view prefix, std::string_view parent) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base(parent);
  if (base.empty()) {
    base = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  }
  std::string pattern = base + "/" + std::string(prefix) + "XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) {
    return InternalError("cannot make a temporary directory " + pattern + ": " +
                         std::strerror(errno));
  }
  std::error_code ec;
  fs::path absolute = fs::absolute(name.data(), ec);
  TempDir dir;
  dir.path_ = ec ? std::string(name.data()) : absolute.string();
  return dir;
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  Remove();
}

std::string TempDir::Join(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

void TempDir::Remove() {
  if (path_.empty()) {
    return;
  }
  // A test may have taken the permissions away from a directory (to see a
  // write fail); give them back first, or nobody but root could remove it.
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  for (auto it = fs::recursive_directory_iterator(
           path_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
  }
  fs::remove_all(path_, ec);
  path_.clear();
}

}  // namespace coffer::test
