#pragma once

#include <string>

#include "common/file_system.h"
#include "common/status.h"

namespace coffer {

// ReadFile returns the whole file. kNotFound if absent, kUnavailable on other
// I/O errors.
// (ReadWholeFile on FileSystem::Default().)
StatusOr<std::string> ReadFile(const std::string& path);

// WriteFileAtomic writes `data` to a temporary file in the same directory
// with `mode`, fsyncs it, renames it over `path` and fsyncs the directory, so
// readers see either the old or the new content, never a mix. The temporary
// file is created new under a random name ("<path>.tmp.<12 random
// characters>", O_CREAT|O_EXCL|O_NOFOLLOW, as mkstemp), so nothing planted in
// the directory is written through; it is removed on failure. A symlink at
// `path` itself is replaced, not followed. kUnavailable on I/O errors.
// Every file operation goes through `fs` (FileSystem::Default() by
// default).
Status WriteFileAtomic(const std::string& path, const std::string& data, int mode);
Status WriteFileAtomic(FileSystem& fs, const std::string& path, const std::string& data, int mode);

// EnsurePrivateDirectory creates `path` (and parents) with mode 0700 if
// absent. kUnavailable on failure.
Status EnsurePrivateDirectory(const std::string& path);

// FileMode returns the permission bits of `path`, or -1 if it cannot be read.
int FileMode(const std::string& path);

}  // namespace coffer
