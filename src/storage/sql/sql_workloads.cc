// Workload resources and federated identity credentials (docs/storage.md).

#include "common/json.h"
#include "common/strings.h"
#include "storage/sql/sql_store.h"

namespace coffer::storage {
namespace {

std::string ListToJson(const std::vector<std::string>& items) {
  Json out = Json::array();
  for (const auto& item : items) {
    out.push_back(item);
  }
  return ToJson(out);
}

StatusOr<std::vector<std::string>> ListFromJson(const std::string& text) {
  auto parsed = ParseJson(text);
  if (!parsed || !parsed->is_array()) {
    return DataLossError("a stored list is not a JSON array");
  }
  std::vector<std::string> out;
  for (const auto& item : *parsed) {
    if (!item.is_string()) {
      return DataLossError("a stored list holds a non-string");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

constexpr char kWorkloadColumns[] =
    "SELECT uid, resource_id, type, location, tags_json, system_principal_id, "
    "user_assigned_json, header_generation, created, version FROM workloads ";

StatusOr<WorkloadRecord> ReadWorkload(const Stmt& st) {
  WorkloadRecord w;
  w.uid = st.Text(0);
  w.resource_id = st.Text(1);
  w.type = st.Text(2);
  w.location = st.Text(3);
  w.tags_json = st.Text(4);
  w.system_principal_id = st.Text(5);
  ASSIGN_OR_RETURN(w.user_assigned, ListFromJson(st.Text(6)));
  w.header_generation = st.Int(7);
  w.created = st.Int(8);
  w.version = st.Int(9);
  return w;
}

StatusOr<FederatedCredentialRecord> ReadFederatedCredential(const Stmt& st) {
  FederatedCredentialRecord c{st.Text(0), st.Text(1), st.Text(2), st.Text(3), {}, st.Int(5)};
  ASSIGN_OR_RETURN(c.audiences, ListFromJson(st.Text(4)));
  return c;
}

constexpr char kFederatedColumns[] =
    "SELECT principal_object_id, name, issuer, subject, audiences_json, created "
    "FROM federated_credentials WHERE principal_object_id = ? ORDER BY name_key";

}  // namespace

StatusOr<FederatedCredentialRecord> SqlStore::PutFederatedCredential(
    const std::string& principal_object_id, const std::string& name,
    const FederatedCredentialsUpsert& make) {
  FederatedCredentialRecord c;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    RETURN_IF_ERROR(RequirePrincipal(db, principal_object_id));
    std::vector<FederatedCredentialRecord> existing;
    ASSIGN_OR_RETURN(Stmt * list, db.Prepare(kFederatedColumns));
    list->Bind(1, principal_object_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, list->Step());
      if (!row) {
        break;
      }
      ASSIGN_OR_RETURN(auto one, ReadFederatedCredential(*list));
      existing.push_back(std::move(one));
    }
    list->Reset();
    ASSIGN_OR_RETURN(c, make(existing));
    c.principal_object_id = principal_object_id;
    if (!EqualsIgnoreCase(c.name, name)) {
      return InvalidArgumentError("a federated credential keeps its name");
    }
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO federated_credentials("
                                           "principal_object_id, name_key, name, issuer, subject, "
                                           "audiences_json, created) VALUES(?, ?, ?, ?, ?, ?, ?) "
                                           "ON CONFLICT(principal_object_id, name_key) DO UPDATE "
                                           "SET name = excluded.name, issuer = excluded.issuer, "
                                           "subject = excluded.subject, "
                                           "audiences_json = excluded.audiences_json, "
                                           "created = excluded.created"));
    st->Bind(1, c.principal_object_id).Bind(2, AsciiLower(c.name)).Bind(3, c.name);
    st->Bind(4, c.issuer).Bind(5, c.subject).Bind(6, ListToJson(c.audiences)).Bind(7, c.created);
    return st->Exec();
  }));
  return c;
}

StatusOr<std::vector<FederatedCredentialRecord>> SqlStore::ListFederatedCredentials(
    const std::string& principal_object_id) {
  std::vector<FederatedCredentialRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(kFederatedColumns));
    st->Bind(1, principal_object_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      ASSIGN_OR_RETURN(auto c, ReadFederatedCredential(*st));
      out.push_back(std::move(c));
    }
  }));
  return out;
}

Status SqlStore::DeleteFederatedCredential(const std::string& principal_object_id,
                                           const std::string& name) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM federated_credentials WHERE "
                                           "principal_object_id = ? AND name_key = ?"));
    st->Bind(1, principal_object_id).Bind(2, AsciiLower(name));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("federated identity credential '" + name + "' not found");
    }
    return OkStatus();
  });
}

StatusOr<WorkloadRecord> SqlStore::PutWorkload(const std::string& resource_id,
                                               const Upsert<WorkloadWrite>& make) {
  WorkloadRecord stored;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find,
                     db.Prepare(std::string(kWorkloadColumns) + "WHERE resource_key = ?"));
    find->Bind(1, AsciiLower(resource_id));
    ASSIGN_OR_RETURN(bool row, find->Step());
    std::optional<WorkloadWrite> current;
    if (row) {
      ASSIGN_OR_RETURN(WorkloadRecord w, ReadWorkload(*find));
      current = WorkloadWrite{std::move(w), std::nullopt, ""};
    }
    find->Reset();
    ASSIGN_OR_RETURN(WorkloadWrite write, make(current));
    WorkloadRecord& w = write.workload;
    if (current) {
      w.uid = current->workload.uid;
      w.resource_id = current->workload.resource_id;
      w.version = current->workload.version + 1;
    } else {
      w.resource_id = resource_id;
      w.version = 1;
    }
    if (!write.remove_principal_id.empty()) {
      RETURN_IF_ERROR(DeletePrincipalRows(db, write.remove_principal_id));
    }
    if (write.add_principal) {
      RETURN_IF_ERROR(InsertPrincipal(db, *write.add_principal));
    }
    ASSIGN_OR_RETURN(
        Stmt * st,
        db.Prepare("INSERT INTO workloads(uid, resource_key, resource_id, type, "
                   "location, tags_json, system_principal_id, user_assigned_json, "
                   "header_generation, created, version) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT(uid) DO UPDATE SET type = excluded.type, "
                   "location = excluded.location, tags_json = excluded.tags_json, "
                   "system_principal_id = excluded.system_principal_id, "
                   "user_assigned_json = excluded.user_assigned_json, "
                   "header_generation = excluded.header_generation, version = excluded.version"));
    st->Bind(1, w.uid).Bind(2, AsciiLower(w.resource_id)).Bind(3, w.resource_id).Bind(4, w.type);
    st->Bind(5, w.location).Bind(6, w.tags_json).Bind(7, w.system_principal_id);
    st->Bind(8, ListToJson(w.user_assigned)).Bind(9, w.header_generation).Bind(10, w.created);
    st->Bind(11, w.version);
    Status s = st->Exec();
    if (s.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("a workload with this uid exists");
    }
    RETURN_IF_ERROR(s);
    stored = w;
    return OkStatus();
  }));
  return stored;
}

StatusOr<WorkloadRecord> SqlStore::GetWorkload(const std::string& uid) {
  std::optional<WorkloadRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kWorkloadColumns) + "WHERE uid = ?"));
    st->Bind(1, uid);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      ASSIGN_OR_RETURN(out, ReadWorkload(*st));
    }
    return OkStatus();
  }));
  if (!out) {
    return NotFoundError("workload not found");
  }
  return *out;
}

StatusOr<std::vector<WorkloadRecord>> SqlStore::ListWorkloads() {
  std::vector<WorkloadRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kWorkloadColumns) + "ORDER BY created"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      ASSIGN_OR_RETURN(auto w, ReadWorkload(*st));
      out.push_back(std::move(w));
    }
  }));
  return out;
}

Status SqlStore::DeleteWorkload(const std::string& uid) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find,
                     db.Prepare("SELECT system_principal_id FROM workloads WHERE uid = ?"));
    find->Bind(1, uid);
    ASSIGN_OR_RETURN(bool row, find->Step());
    if (!row) {
      find->Reset();
      return NotFoundError("workload not found");
    }
    std::string system_principal = find->Text(0);
    find->Reset();
    if (!system_principal.empty()) {
      Status s = DeletePrincipalRows(db, system_principal);
      if (!s.ok() && s.code() != StatusCode::kNotFound) {
        return s;
      }
    }
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM workloads WHERE uid = ?"));
    st->Bind(1, uid);
    return st->Exec();
  });
}

}  // namespace coffer::storage
