#include "agent/owner_check.h"

#include <string>

namespace coffer::agent {

Status CheckWritableOnlyByTrusted(const struct stat& st, uid_t self, std::string_view what) {
  std::string name(what);
  if (st.st_uid != 0 && st.st_uid != self) {
    return PermissionDeniedError(name + " is owned by uid " + std::to_string(st.st_uid) +
                                 ", neither root nor the agent's user (uid " +
                                 std::to_string(self) + "); refused");
  }
  if ((st.st_mode & S_IWOTH) != 0) {
    return PermissionDeniedError(name + " is writable by every user; refused");
  }
  if ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0) {
    return PermissionDeniedError(name + " is writable by group " + std::to_string(st.st_gid) +
                                 ", which is not root's; refused");
  }
  return OkStatus();
}

}  // namespace coffer::agent
