#!/usr/bin/env python3
"""Enforces the layering of docs/architecture.md on #include lines.

Heavy dependencies stay in their folder:
  Boost only in src/net/; OpenSSL only in src/crypto/ and src/net/ (TLS
  contexts); sqlite3.h only in src/storage/sqlite/; libpq-fe.h only in src/storage/postgres/; gRPC and protobuf only in
  src/agent/csi/; yaml-cpp only in its adapter, src/agent/spc_yaml.cc. Lower layers never include
  higher ones. No `throw` in our code and no `using namespace` in headers.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"
LAYERS = ["common", "crypto", "storage", "http", "auth", "authz", "events", "keyvault", "mgmt", "net",
          "audit",
          "sdk",
          "client",
          "exec",
          "agent",
          "server", "cli"]
# Which src/ folders each layer may include.
ALLOWED = {
    "common": {"common"},
    "crypto": {"common", "crypto"},
    "audit": {"common", "crypto", "audit"},
    "storage": {"common", "storage"},
    "http": {"common", "http"},
    "auth": {"common", "crypto", "storage", "http", "auth"},
    "authz": {"common", "storage", "http", "authz"},
    "events": {"common", "crypto", "storage", "http", "events"},
    "keyvault": {"common", "crypto", "storage", "http", "authz", "keyvault"},
    "mgmt": {"common", "crypto", "storage", "http", "authz", "events", "keyvault", "mgmt"},
    "net": {"common", "http", "net"},
    "sdk": {"common", "crypto", "http", "net", "sdk"},
    "client": {"common", "http", "net", "sdk", "client"},
    "exec": {"common", "sdk", "client", "exec"},
    "server": {"common", "crypto", "storage", "http", "auth", "authz", "events", "keyvault", "mgmt",
               "net", "audit", "server"},
    "agent": {"common", "crypto", "http", "net", "sdk", "client", "exec", "agent"},
    "cli": {"common", "crypto", "audit", "http", "authz", "keyvault", "server", "sdk", "client",
            "exec", "agent", "cli"},
}
THIRD_PARTY = {
    "boost/": {"net"},
    "openssl/": {"crypto", "net"},
    "sodium.h": {"crypto/password_hash.cc"},
    "sqlite3.h": {"storage/sqlite"},
    "libpq-fe.h": {"storage/postgres"},
    "grpcpp/": {"agent/csi"},
    "grpc/": {"agent/csi"},
    "google/protobuf": {"agent/csi"},
    "yaml-cpp/": {"agent/spc_yaml.cc"},
}

errors = []
for path in sorted(ROOT.rglob("*")):
    if path.suffix not in (".h", ".cc"):
        continue
    rel = path.relative_to(ROOT)
    layer = rel.parts[0]
    text = path.read_text()
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r'\s*#include\s+([<"])([^>"]+)[>"]', line)
        if m:
            target = m.group(2)
            if m.group(1) == '"':
                top = target.split("/")[0]
                if top in LAYERS and top not in ALLOWED[layer]:
                    errors.append(f"{rel}:{n}: layer '{layer}' must not include '{target}'")
            else:
                for prefix, owners in THIRD_PARTY.items():
                    if target.startswith(prefix) and not any(
                            str(rel).startswith(o) for o in owners):
                        errors.append(f"{rel}:{n}: <{target}> is only allowed in {sorted(owners)}")
        stripped = line.split("//")[0]
        if re.search(r"\bthrow\b", stripped):
            errors.append(f"{rel}:{n}: our code does not throw (docs/errors.md)")
        if path.suffix == ".h" and re.search(r"^\s*using namespace\b", stripped):
            errors.append(f"{rel}:{n}: no 'using namespace' in headers")

for e in errors:
    print(e)
print(f"layering: {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
