#!/usr/bin/env bash
# Installs the SDK from a build tree into a temporary prefix and builds
# examples/db_password_reload against it with find_package(coffer), as an SDK
# user would. Usage: sdk_install.sh BUILD_DIR SOURCE_DIR [CXX_FLAGS]
set -euo pipefail
build=$1 src=$2 flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/coffer/secret_client.h"
# Debug information leaves the installed files (docs/deployment.md, "Release builds"): the
# program's goes to lib/debug/<prefix>/bin/coffer.debug, named by its .gnu_debuglink; the
# SDK's libraries have none. (A build without debug information has none to move.)
# Not grep -q: readelf would die of SIGPIPE when grep stops early, and pipefail would see it.
has_debug_info() { readelf -S --wide "$1" | grep ' \.debug_info ' >/dev/null; }
if has_debug_info "$build/coffer"; then
  debug_file=$work/prefix/lib/debug$work/prefix/bin/coffer.debug
  if has_debug_info "$work/prefix/bin/coffer"; then
    echo "the installed coffer has debug information" >&2; exit 1
  fi
  [[ $(readelf --string-dump=.gnu_debuglink "$work/prefix/bin/coffer") == *coffer.debug* ]] || {
    echo "the installed coffer does not name coffer.debug" >&2; exit 1; }
  has_debug_info "$debug_file" || { echo "$debug_file has no debug information" >&2; exit 1; }
  libs=("$work/prefix/lib"*/libcoffer_*.a)
  [[ -f ${libs[0]} ]] || { echo "no libcoffer_*.a installed" >&2; exit 1; }
  for lib in "${libs[@]}"; do
    if has_debug_info "$lib"; then echo "$lib has debug information" >&2; exit 1; fi
  done
fi
# The public headers name only the standard library and each other.
if grep -hE '^\s*#\s*include' "$work/prefix/include/coffer/"*.h | grep -vE '<[a-z_]+>|"coffer/'; then
  echo "public headers include something other than the standard library" >&2
  exit 1
fi
cmake -S "$src/examples/db_password_reload" -B "$work/example" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$work/example"
"$work/example/db_password_reload" </dev/null >/dev/null 2>"$work/err" && exit 1
grep -q COFFER_VAULT_URL "$work/err"

# The example against a real server: it connects, then reconnects on rotation.
coffer=$build/coffer
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$coffer" server --dev --data-dir "$work/data" --port "$port" >"$work/server.log" 2>&1 &
server=$!
example=
cleanup() {
  [[ -n $example ]] && kill "$example" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -f $work/data/dev.env ]] && break; sleep 0.2; done
set -a; source "$work/data/dev.env"; set +a
"$coffer" keyvault secret set --vault-name dev --name db-password --value first >/dev/null
"$work/example/db_password_reload" db-password >"$work/example.log" 2>&1 &
example=$!
wait_lines() {  # wait_lines N: until the example has said "connected" N times (20 s at most)
  for _ in $(seq 200); do
    (( $(grep -c '^connected' "$work/example.log") >= $1 )) && return 0
    sleep 0.1
  done
  echo "example: expected $1 connections; its output:" >&2; cat "$work/example.log" >&2; return 1
}
wait_lines 1
"$coffer" keyvault secret set --vault-name dev --name db-password --value second >/dev/null
wait_lines 2
if grep -qE 'first|second' "$work/example.log"; then
  echo "the example printed a password" >&2; exit 1
fi
kill -TERM "$example"; wait "$example"; example=
echo "installed SDK: find_package(coffer), the example built and reloaded on rotation"
