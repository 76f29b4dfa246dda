// Custom role definitions and role assignments (docs/storage.md).

#include "common/strings.h"
#include "storage/sql/sql_store.h"

namespace coffer::storage {

namespace {

constexpr char kRoleColumns[] =
    "SELECT id, role_name, definition_json, created, updated, version FROM role_definitions ";

RoleDefinitionRecord ReadRole(const Stmt& st) {
  return {st.Text(0), st.Text(1), st.Text(2), st.Int(3), st.Int(4), st.Int(5)};
}

}  // namespace

StatusOr<RoleDefinitionRecord> SqlStore::PutRoleDefinition(
    const std::string& id, const Upsert<RoleDefinitionRecord>& make) {
  RoleDefinitionRecord r;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare(std::string(kRoleColumns) + "WHERE id = ?"));
    find->Bind(1, id);
    ASSIGN_OR_RETURN(bool row, find->Step());
    std::optional<RoleDefinitionRecord> current;
    if (row) {
      current = ReadRole(*find);
    }
    find->Reset();
    ASSIGN_OR_RETURN(r, make(current));
    r.id = id;
    r.created = current ? current->created : r.created;
    r.version = current ? current->version + 1 : 1;
    ASSIGN_OR_RETURN(Stmt * same, db.Prepare("SELECT id FROM role_definitions WHERE name_key = ? "
                                             "AND id <> ?"));
    same->Bind(1, AsciiLower(r.role_name)).Bind(2, r.id);
    ASSIGN_OR_RETURN(bool taken, same->Step());
    same->Reset();
    if (taken) {
      return AlreadyExistsError("A custom role named '" + r.role_name + "' already exists.",
                                "RoleDefinitionWithSameNameExists");
    }
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("INSERT INTO role_definitions(id, name_key, role_name, "
                                "definition_json, created, updated, version) "
                                "VALUES(?, ?, ?, ?, ?, ?, ?) "
                                "ON CONFLICT(id) DO UPDATE SET name_key = excluded.name_key, "
                                "role_name = excluded.role_name, "
                                "definition_json = excluded.definition_json, "
                                "updated = excluded.updated, version = excluded.version"));
    st->Bind(1, r.id).Bind(2, AsciiLower(r.role_name)).Bind(3, r.role_name);
    st->Bind(4, r.definition_json).Bind(5, r.created).Bind(6, r.updated).Bind(7, r.version);
    return st->Exec();
  }));
  return r;
}

StatusOr<std::vector<RoleDefinitionRecord>> SqlStore::ListRoleDefinitions() {
  std::vector<RoleDefinitionRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kRoleColumns) + "ORDER BY name_key"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadRole(*st));
    }
  }));
  return out;
}

Status SqlStore::DeleteRoleDefinition(
    const std::string& id, const std::function<Status(const RoleDefinitionRecord&)>& check) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare(std::string(kRoleColumns) + "WHERE id = ?"));
    find->Bind(1, id);
    ASSIGN_OR_RETURN(bool row, find->Step());
    if (!row) {
      find->Reset();
      return NotFoundError("role definition '" + id + "' not found", "RoleDefinitionDoesNotExist");
    }
    RoleDefinitionRecord current = ReadRole(*find);
    find->Reset();
    RETURN_IF_ERROR(check(current));
    ASSIGN_OR_RETURN(Stmt * used,
                     db.Prepare("SELECT 1 FROM role_assignments WHERE role_definition_id = ?"));
    used->Bind(1, id);
    ASSIGN_OR_RETURN(bool in_use, used->Step());
    if (in_use) {
      return FailedPreconditionError(
          "There are existing role assignments referencing role '" + id + "'.",
          "RoleDefinitionHasAssignments");
    }
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM role_definitions WHERE id = ?"));
    st->Bind(1, id);
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("role definition '" + id + "' not found", "RoleDefinitionDoesNotExist");
    }
    return OkStatus();
  });
}

Status SqlStore::CreateRoleAssignment(const RoleAssignmentRecord& a) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(
        Stmt * st,
        db.Prepare("INSERT INTO role_assignments(id, scope, scope_key, "
                   "role_definition_id, principal_id, principal_type, description, "
                   "created_by, created, updated) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, a.id).Bind(2, a.scope).Bind(3, RoleScopeKey(a.scope));
    st->Bind(4, a.role_definition_id).Bind(5, a.principal_id).Bind(6, a.principal_type);
    st->Bind(7, a.description).Bind(8, a.created_by).Bind(9, a.created).Bind(10, a.updated);
    Status s = st->Exec();
    if (s.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("The role assignment already exists.", "RoleAssignmentExists");
    }
    return s;
  });
}

StatusOr<std::vector<RoleAssignmentRecord>> SqlStore::ListRoleAssignments() {
  std::vector<RoleAssignmentRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT id, scope, role_definition_id, principal_id, "
                                           "principal_type, description, created_by, created, "
                                           "updated FROM role_assignments ORDER BY created, id"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back({st->Text(0), st->Text(1), st->Text(2), st->Text(3), st->Text(4), st->Text(5),
                     st->Text(6), st->Int(7), st->Int(8)});
    }
  }));
  return out;
}

Status SqlStore::DeleteRoleAssignment(const std::string& id) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM role_assignments WHERE id = ?"));
    st->Bind(1, id);
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("role assignment '" + id + "' not found", "RoleAssignmentNotFound");
    }
    return OkStatus();
  });
}

Status SqlStore::DeleteRoleAssignmentsUnder(Db& db, const std::string& scope) {
  std::string key = RoleScopeKey(scope);
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM role_assignments WHERE scope_key = ? OR "
                                         "substr(scope_key, 1, ?) = ?"));
  st->Bind(1, key).Bind(2, static_cast<int64_t>(key.size() + 1)).Bind(3, key + "/");
  return st->Exec();
}

}  // namespace coffer::storage
