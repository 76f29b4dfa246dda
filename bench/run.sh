#!/usr/bin/env bash
# Coffer's benchmarks for the vault server foundation, measured in one run on
# this machine (docs/benchmarks.md records results and how to read them):
#   1. GET secret over TLS keep-alive vs nginx serving the same bytes with the
#      same certificate, TLS settings and number of server threads;
#   2. durable SET (new secret per request) with 32 concurrent clients;
#   3. listing one page in a vault holding 100,000 secrets;
#   4. token issuance (client credentials);
#   5. the cost of token validation on the GET path, as a share of the
#      server's CPU time per GET in run 1;
#   6. authorization: one decision with 1,000 role assignments in the tenant
#      (Google Benchmark), and GET on an RBAC vault with and without 1,000
#      assignments present, alternated;
#   7. audit: GET with the audit log on (this server) and off (a second server,
#      `--audit off`), alternated, with the server's CPU time per GET;
#   8. SET -> watch stream: the time from a SET's response to its event on an
#      open watch stream;
#   9. 2,000 idle watch streams: the server's resident memory before and after.
#  10. SDK: a cached GetSecret (Google Benchmark) against a GetSecret from this
#      server over loopback TLS;
#  11. coffer exec with 20 references: from start to the child running, against
#      no references and against starting the child directly.
#  12. the node agent: mounting 50 secrets (standalone and over the CSI socket,
#      against 50 reads one after another); with 100 mounts sharing 10 secrets,
#      SET -> file changed by push, resident memory, and upstream reads per poll
#      cycle against reading per mount.
#  13. TLS handshakes: the server's CPU per full handshake with the built-in
#      CA's ECDSA P-256 material against an RSA-2048 certificate, on two servers
#      alike but for the certificate, alternated.
#  14. several servers on PostgreSQL (bench/ha.py): HAProxy in front of two
#      servers on a primary with a synchronous standby, as
#      tests/integration/test_failover.py builds it: GET against nginx, durable
#      SET, cross-server invalidation, leader takeover, write resume after a
#      failover of the primary.
#  15. keys: RSA-2048 RS256 and EC P-256 ES256 `sign` over TLS keep-alive with
#      32 concurrent clients, against `openssl speed -multi 2` on the same
#      machine in the same run, with the server's CPU per signature; key
#      creation latency (p50/p99, one client) for RSA-2048 and P-256.
#  16. certificates: create to completed (p50/p99, one client) for a
#      Self-issued RSA-2048 and P-256 certificate and a P-256 one issued by an
#      issuer of the Coffer provider, against `openssl genpkey` making RSA-2048
#      keys in the same run.
#  17. certificate renewal: from the scheduler's AutoRenew renewal (the new
#      version's event time) to the new file on an agent's mount, 20 rounds on
#      a server of its own (bench/renewal.py).
#  18. service limits: GET on a server counting every request against its
#      vault's limits (a budget the run does not reach) against a server with
#      the limits off, alternated as step 7 (target: within 5%).
# Usage: bench/run.sh [--threads N] [--duration S] [--secrets N] [--steps 1,2,...]
#                     [--release]
# --release measures the Release build in build-release, configured as
# scripts/test.sh configures it (what users and packagers build), instead of
# RelWithDebInfo in build/. Only the programs the chosen steps run are built.
# Needs: wrk, nginx-light (installed if missing). Uses loopback only and
# stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2
duration=10
secrets=100000
steps=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18
build=build
while (($#)); do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --secrets) secrets=$2; shift 2 ;;
    --release) build=build-release; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
for p in wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
want() { [[ ",$steps," == *",$1,"* ]]; }
if [[ $build == build-release ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
else
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_WERROR=ON >/dev/null
fi
targets=(coffer)
if want 5; then targets+=(token_validation_bench); fi
if want 6; then targets+=(authz_bench); fi
if want 10; then targets+=(sdk_cache_bench); fi
if want 12; then targets+=(agent_mount_bench); fi
cmake --build "$build" --target "${targets[@]}" >/dev/null

work=$(mktemp -d /tmp/coffer-bench.XXXXXX)
# nginx workers run unprivileged and must read the static copy of the response.
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  if [[ -n ${shm:-} ]]; then rm -rf "$shm"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
ngx_port=$(free_port)

# Step 9's 2,000 streams are all the dev principal's: raise its cap of watch streams.
"$build"/coffer server --dev --data-dir "$work/data" --port "$port" --io-threads "$threads" \
  --watch-streams-per-principal 2100 \
  --log-level warning >"$work/coffer.out" 2>"$work/coffer.err" &
pids+=($!)
coffer_pid=$!
for _ in $(seq 100); do
  curl -sf --cacert "$work/data/tls/ca.pem" "https://localhost:$port/healthz" >/dev/null && break
  sleep 0.1
done
set -a; source "$work/data/dev.env"; set +a
ca=$REQUESTS_CA_BUNDLE
TOKEN=$(curl -sf --cacert "$ca" \
  -d "grant_type=client_credentials&client_id=$AZURE_CLIENT_ID&client_secret=$AZURE_CLIENT_SECRET&scope=https://vault.localhost:$port/.default" \
  "https://localhost:$port/$AZURE_TENANT_ID/oauth2/v2.0/token" |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
export TOKEN
vault="https://dev.vault.localhost:$port"
auth=(-H "Authorization: Bearer $TOKEN")

echo "== machine: $(nproc) cores; server threads: $threads; wrk duration ${duration}s; steps $steps; $build"
path="/secrets/bench-get/?api-version=7.5"
curl -sf --cacert "$ca" "${auth[@]}" -X PUT -H 'Content-Type: application/json' \
  -d '{"value":"s3cr3t-value-for-the-benchmark","contentType":"text/plain","tags":{"env":"bench"}}' \
  "$vault/secrets/bench-get?api-version=7.5" >/dev/null
run_get() {  # label url [token]
  wrk -t2 -c32 -d"${duration}s" --latency -H "Authorization: Bearer ${3:-$TOKEN}" "$2" \
    >"$work/$1.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.txt")
  echo "$1: $rps req/s, p50 $p50, p99 $p99"
  eval "${1}_rps=$rps"
}
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Prints throughput and CPU per GET of three alternated pairs run by cpu_get as
# <a>1..3 (the baseline) and <b>1..3.
pair_summary() {  # title target a b
  local args=() i
  for i in 1 2 3; do args+=("$(eval echo "\$${3}${i}_rps")" "$(eval echo "\$${4}${i}_rps")"); done
  for i in 1 2 3; do args+=("$(eval echo "\$${3}${i}_cpu")" "$(eval echo "\$${4}${i}_cpu")"); done
  python3 - "$1" "$2" "${args[@]}" <<'PY'
import sys
title, target, v = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3:]]
rps_a, rps_b, cpu_a, cpu_b = v[0:6:2], v[1:6:2], v[6::2], v[7::2]
print("%s: throughput per pair %s, overall %.3f (target %s)"
      % (title, ", ".join("%.3f" % (b / a) for a, b in zip(rps_a, rps_b)),
         sum(rps_b) / sum(rps_a), target))
print("  server CPU per GET, baseline / compared: %.0f / %.0f ns (ratio %.3f)"
      % (sum(cpu_a) / 3, sum(cpu_b) / 3, sum(cpu_b) / sum(cpu_a)))
PY
}
cpu_get() {  # label pid url [token]: run_get, plus that server's CPU ns per request
  local before after
  before=$(cpu_of "$2")
  run_get "$1" "$3" "${4:-$TOKEN}"
  after=$(cpu_of "$2")
  eval "${1}_cpu=$(python3 -c "print(($after - $before) / $(getconf CLK_TCK) / \
    $(awk '/requests in/ {print $1}' "$work/$1.txt") * 1e9)")"
}

# 1. GET: Coffer vs nginx with the same response bytes.
if want 1 || want 5; then
mkdir -p "$work/ngx/html/secrets/bench-get"
curl -sf --cacert "$ca" "${auth[@]}" "$vault$path" >"$work/ngx/html/secrets/bench-get/index.json"
cat "$work/data/tls/server.pem" "$work/data/tls/ca.pem" >"$work/ngx/chain.pem"
cat >"$work/ngx/nginx.conf" <<NGX
daemon off;
worker_processes $threads;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$ngx_port ssl;
    ssl_certificate $work/ngx/chain.pem;
    ssl_certificate_key $work/data/tls/server-key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /secrets/bench-get/ { root $work/ngx/html; index index.json; }
  }
}
NGX
nginx -c "$work/ngx/nginx.conf" -p "$work/ngx" 2>"$work/ngx/stderr.log" &
pids+=($!)
for _ in $(seq 50); do [[ -f "$work/ngx/nginx.pid" ]] && break; sleep 0.1; done; sleep 0.2
coffer_bytes=$(curl -sf --cacert "$ca" "${auth[@]}" "$vault$path" | wc -c)
nginx_bytes=$(curl -sf --cacert "$ca" "${auth[@]}" "https://dev.vault.localhost:$ngx_port$path" | wc -c)
echo "response body bytes: coffer $coffer_bytes, nginx $nginx_bytes"

run_get nginx_get "https://dev.vault.localhost:$ngx_port$path"
ticks_before=$(cpu_of "$coffer_pid")
run_get coffer_get "$vault$path"
ticks_after=$(cpu_of "$coffer_pid")
coffer_get_requests=$(awk '/requests in/ {print $1}' "$work/coffer_get.txt")
python3 -c "print('GET ratio coffer/nginx: %.2f (target >= 0.80)' % ($coffer_get_rps/$nginx_get_rps))"

# The same GET through public names (--authority-host, --dns-suffix) on a
# second server; *.localhost resolves to loopback, so no DNS is needed.
named_port=$(free_port)
"$build"/coffer server --dev --data-dir "$work/named" --port "$named_port" --io-threads "$threads" \
  --authority-host coffer.localhost --dns-suffix vault.coffer.localhost \
  --log-level warning >"$work/named.out" 2>"$work/named.err" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf --cacert "$work/named/tls/ca.pem" "https://coffer.localhost:$named_port/healthz" \
    >/dev/null && break
  sleep 0.1
done
named_env=$(env -i bash -c "set -a; source '$work/named/dev.env'; env")
named_token=$(curl -sf --cacert "$work/named/tls/ca.pem" \
  -d "grant_type=client_credentials&client_id=$(sed -n 's/^AZURE_CLIENT_ID=//p' <<<"$named_env")&client_secret=$(sed -n 's/^AZURE_CLIENT_SECRET=//p' <<<"$named_env")&scope=https://vault.coffer.localhost:$named_port/.default" \
  "https://coffer.localhost:$named_port/$(sed -n 's/^AZURE_TENANT_ID=//p' <<<"$named_env")/oauth2/v2.0/token" |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
named_vault="https://dev.vault.coffer.localhost:$named_port"
curl -sf --cacert "$work/named/tls/ca.pem" -H "Authorization: Bearer $named_token" -X PUT \
  -H 'Content-Type: application/json' \
  -d '{"value":"s3cr3t-value-for-the-benchmark","contentType":"text/plain","tags":{"env":"bench"}}' \
  "$named_vault/secrets/bench-get?api-version=7.5" >/dev/null
run_get named_get "$named_vault$path" "$named_token"
python3 -c "print('GET through public names / localhost names: %.2f (no change expected)' % ($named_get_rps/$coffer_get_rps))"
fi

# 2. Durable SET, 32 concurrent clients, a new secret per request.
if want 2; then
wrk -t2 -c32 -d"${duration}s" --latency -s bench/put_unique.lua "$vault" >"$work/set.txt"
echo "durable SET: $(awk '/Requests\/sec/ {print $2}' "$work/set.txt") writes/s" \
  "(p50 $(awk '$1=="50%" {print $2}' "$work/set.txt"), p99 $(awk '$1=="99%" {print $2}' "$work/set.txt"));" \
  "$(grep non-200 "$work/set.txt") (target >= 2000/s)"
fi

# 3. Listing one page among $secrets secrets.
if want 3; then
have=$(sqlite3 "$work/data/coffer.db" "SELECT count(*) FROM secrets WHERE vault_key='dev'")
need=$((secrets - have))
if ((need > 0)); then
  LIMIT=$(((need + 1) / 2)) PREFIX=L wrk -t2 -c32 -d600s -s bench/put_unique.lua "$vault" >"$work/fill.txt"
fi
count=$(sqlite3 "$work/data/coffer.db" "SELECT count(*) FROM secrets WHERE vault_key='dev'")
echo "vault holds $count secrets"
middle=$(python3 -c "import base64;print(base64.urlsafe_b64encode(b'c1:l0-25000').decode().rstrip('='))")
for conns in 1 4; do
  for page in first middle; do
    q="api-version=7.5&maxresults=25"
    [[ $page == middle ]] && q="$q&\$skiptoken=$middle"
    wrk -t1 -c"$conns" -d"${duration}s" --latency "${auth[@]}" "$vault/secrets?$q" >"$work/list.txt"
    echo "list page ($page, $conns conn): $(awk '/Requests\/sec/ {print $2}' "$work/list.txt") req/s," \
      "p50 $(awk '$1=="50%" {print $2}' "$work/list.txt"), p99 $(awk '$1=="99%" {print $2}' "$work/list.txt") (target p99 < 5ms)"
  done
done
fi

# 4. Token issuance (client credentials), 16 concurrent clients.
if want 4; then
SCOPE="https://vault.localhost:$port/.default" wrk -t2 -c16 -d"${duration}s" --latency \
  -s bench/token.lua "https://localhost:$port/$AZURE_TENANT_ID/oauth2/v2.0/token" >"$work/token.txt"
echo "token issuance: $(awk '/Requests\/sec/ {print $2}' "$work/token.txt") tokens/s" \
  "(p50 $(awk '$1=="50%" {print $2}' "$work/token.txt"), p99 $(awk '$1=="99%" {print $2}' "$work/token.txt"));" \
  "$(grep non-200 "$work/token.txt") (target >= 1500/s)"
fi

# 5. Token validation on the GET path: its CPU cost per request (measured with
# the server's own classes) as a share of the server's CPU time per GET in run 1.
if want 5; then
"$build"/bench/token_validation_bench --threads "$threads" --seconds 3 | tee "$work/validation.txt"
cached_ns=$(sed -E 's/.*cached ([0-9]+) ns.*/\1/' "$work/validation.txt")
python3 - "$ticks_before" "$ticks_after" "$coffer_get_requests" "$cached_ns" "$(getconf CLK_TCK)" <<'PY'
import sys
before, after, requests, cached, hz = (float(x) for x in sys.argv[1:])
per_get = (after - before) / hz / requests * 1e9
print("server CPU per GET: %.0f ns; token validation (cached): %.0f ns = %.2f%% of a GET "
      "(target <= 5%%)" % (per_get, cached, 100 * cached / per_get))
PY
fi

# 6. Authorization with 1,000 role assignments in the tenant.
if want 6; then
"$build"/bench/authz_bench --benchmark_repetitions=10 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 2>/dev/null | awk '/_median/ {printf "decision %s: %s %s (median of 10; target p50 < 2 us)\n", $1, $2, $3}'
curl -sf --cacert "$ca" -X PUT -H "Authorization: Bearer $(curl -sf --cacert "$ca" \
  -d "grant_type=client_credentials&client_id=$AZURE_CLIENT_ID&client_secret=$AZURE_CLIENT_SECRET&scope=$AZURE_AUTHORITY_HOST/.default" \
  "https://localhost:$port/$AZURE_TENANT_ID/oauth2/v2.0/token" | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')" \
  -H 'Content-Type: application/json' \
  -d '{"location":"local","properties":{"enableRbacAuthorization":true}}' \
  "https://localhost:$port/subscriptions/$COFFER_SUBSCRIPTION_ID/resourceGroups/$COFFER_RESOURCE_GROUP/providers/Microsoft.KeyVault/vaults/rbacbench?api-version=2023-07-01" >/dev/null
rbac="https://rbacbench.vault.localhost:$port"
curl -sf --cacert "$ca" "${auth[@]}" -X PUT -H 'Content-Type: application/json' \
  -d '{"value":"s3cr3t-value-for-the-benchmark","contentType":"text/plain","tags":{"env":"bench"}}' \
  "$rbac/secrets/bench-get?api-version=7.5" >/dev/null
# Three alternated pairs; each change of the tenant is followed by a pause, so
# neither side is measured while the server still settles after the writes.
# Throughput on this 2-core machine varies by about +-15% between runs, so the
# server's CPU time per GET (from /proc, as in step 5) is reported as well.
for pair in 1 2 3; do
  cpu_get "rbac_get_a$pair" "$coffer_pid" "$rbac$path"
  python3 bench/assignments.py create 1000
  sleep 5
  cpu_get "rbac_get_b$pair" "$coffer_pid" "$rbac$path"
  python3 bench/assignments.py delete
  sleep 5
done
pair_summary "GET on an RBAC vault, with/without 1,000 assignments" ">= 0.95" rbac_get_a rbac_get_b
fi

# 7. Audit on vs off: two fresh servers, alike but for --audit, alternated.
# fresh_server name audit [server flags...]: starts a dev server of its own; sets <name>_pid,
# <name>_token, <name>_vault, <name>_port.
fresh_server() {
  local p t
  p=$(free_port)
  "$build"/coffer server --dev --audit "$2" --data-dir "$work/data-$1" --port "$p" \
    --io-threads "$threads" --log-level warning "${@:3}" >"$work/coffer-$1.out" \
    2>"$work/coffer-$1.err" &
  pids+=($!)
  eval "${1}_pid=$!"
  for _ in $(seq 100); do
    curl -sf --cacert "$work/data-$1/tls/ca.pem" "https://localhost:$p/healthz" >/dev/null && break
    sleep 0.1
  done
  t=$(set -a; source "$work/data-$1/dev.env"; curl -sf --cacert "$REQUESTS_CA_BUNDLE" \
    -d "grant_type=client_credentials&client_id=$AZURE_CLIENT_ID&client_secret=$AZURE_CLIENT_SECRET&scope=https://vault.localhost:$p/.default" \
    "https://localhost:$p/$AZURE_TENANT_ID/oauth2/v2.0/token" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  eval "${1}_token=$t"
  eval "${1}_vault=https://dev.vault.localhost:$p"
  eval "${1}_port=$p"
  curl -sf --cacert "$work/data-$1/tls/ca.pem" -H "Authorization: Bearer $t" -X PUT \
    -H 'Content-Type: application/json' \
    -d '{"value":"s3cr3t-value-for-the-benchmark","contentType":"text/plain","tags":{"env":"bench"}}' \
    "https://dev.vault.localhost:$p/secrets/bench-get?api-version=7.5" >/dev/null
}

if want 7; then
fresh_server on on
fresh_server off off
for pair in 1 2 3; do
  cpu_get "audit_off$pair" "$off_pid" "$off_vault$path" "$off_token"
  sleep 2
  cpu_get "audit_on$pair" "$on_pid" "$on_vault$path" "$on_token"
  sleep 2
done
pair_summary "GET with audit on / off" ">= 0.90" audit_off audit_on
echo "audit log of the audited server: $("$build"/coffer audit verify --data-dir "$work/data-on" | tail -1)"
fi

# 8. SET -> watch event latency (1,000 sequential SETs).
if want 8; then
python3 bench/watch.py latency 1000
fi

# 9. 2,000 idle watch streams.
if want 9; then
python3 bench/watch.py idle 2000 "$coffer_pid"
fi

# 10. SDK: cached GetSecret vs a read from the server.
if want 10; then
"$build"/bench/sdk_cache_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 2>/dev/null | grep -E '_(median|mean)'
fi

# 11. coffer exec start-up with 20 references.
if want 11; then
python3 bench/exec_start.py "$build"/coffer 20 30
fi

# 12. The node agent.
if want 12; then
shm=$(mktemp -d /dev/shm/coffer-mount-bench.XXXXXX)
"$build"/bench/agent_mount_bench --dir "$shm" --objects 50 --runs 30
rm -rf "$shm"
python3 bench/agent_bench.py "$build"/coffer 100 10 30
fi

# 13. TLS handshakes: ECDSA P-256 (the built-in CA's) against RSA-2048.
if want 13; then
rsa_port=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/rsa-ca.key" -out "$work/rsa-ca.pem" \
  -days 2 -subj "/CN=bench RSA CA" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$work/rsa.key" -out "$work/rsa.csr" \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,DNS:vault.localhost,DNS:*.vault.localhost\n' >"$work/rsa.ext"
openssl x509 -req -in "$work/rsa.csr" -CA "$work/rsa-ca.pem" -CAkey "$work/rsa-ca.key" \
  -set_serial 1 -days 2 -extfile "$work/rsa.ext" -out "$work/rsa.pem" 2>/dev/null
cat "$work/rsa.pem" "$work/rsa-ca.pem" >"$work/rsa-chain.pem"
"$build"/coffer server --dev --data-dir "$work/rsa-data" --port "$rsa_port" --io-threads "$threads" \
  --tls-cert "$work/rsa-chain.pem" --tls-key "$work/rsa.key" \
  --log-level warning >"$work/rsa.out" 2>"$work/rsa.err" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf --cacert "$work/rsa-ca.pem" "https://localhost:$rsa_port/healthz" >/dev/null && break
  sleep 0.1
done
echo "key types: $(openssl x509 -noout -text -in "$work/data/tls/server.pem" |
  grep -m1 'Public Key Algorithm' | sed 's/.*: //') (built-in) / $(openssl x509 -noout -text \
  -in "$work/rsa.pem" | grep -m1 'Public Key Algorithm' | sed 's/.*: //') (RSA)"
rsa_pid=${pids[-1]}
# openssl s_time -new makes a full handshake per connection (no resumption);
# one client is the bottleneck, so what is compared is the server's CPU per
# handshake, from /proc.
handshakes() {  # label port pid
  local before after n
  before=$(cpu_of "$3")
  n=$(openssl s_time -connect "127.0.0.1:$2" -new -time "$duration" 2>/dev/null |
    awk '/real seconds/ {print $1}')
  after=$(cpu_of "$3")
  eval "${1}_us=$(python3 -c "print(round(($after - $before) / $(getconf CLK_TCK) / $n * 1e6))")"
  echo "$1: $n handshakes in ${duration}s, server CPU $(eval echo "\$${1}_us") us each"
}
for i in 1 2; do
  handshakes "ecdsa$i" "$port" "$coffer_pid"
  handshakes "rsa$i" "$rsa_port" "$rsa_pid"
done
python3 -c "print('server CPU per handshake, ECDSA/RSA: %.2f' % (($ecdsa1_us + $ecdsa2_us) / ($rsa1_us + $rsa2_us)))"
fi

# 14. Several servers on PostgreSQL (bench/ha.py; Debian's python3 has the Azure
# SDK that the failover test's helpers import). It gives up by itself after
# 200 s; the timeout is a last resort, and its SIGTERM still cleans up.
if want 14; then
single=()
if [[ -n ${coffer_get_rps:-} ]]; then
  single=(--single-ratio "$(python3 -c "print($coffer_get_rps / $nginx_get_rps)")")
fi
COFFER_BIN="$PWD/$build/coffer" timeout -k 10 270 /usr/bin/python3 bench/ha.py \
  --duration "$duration" --rounds 300 "${single[@]}"
fi

# 15. Keys: sign against openssl speed, and creation latency.
if want 15; then
# Signed by version, as a CryptographyClient does (/keys/<name>/<version>/sign).
create_key() {  # name body: prints <name>/<version>
  local kid
  kid=$(curl -sf --cacert "$ca" "${auth[@]}" -X POST -H 'Content-Type: application/json' -d "$2" \
    "$vault/keys/$1/create?api-version=7.5" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["key"]["kid"])')
  echo "${kid##*/keys/}"
}
rsa_key=$(create_key bench-rsa '{"kty":"RSA","key_size":2048}')
ec_key=$(create_key bench-ec '{"kty":"EC","crv":"P-256"}')
# openssl's rate with both cores, each process signing on its own (-mr: the
# last +F line is the sum of the processes' signs per second).
speed() {  # algorithm field
  openssl speed -multi 2 -seconds "$duration" -mr "$1" 2>/dev/null |
    awk -F: -v f="+F$2" '$1 == f {rate = $4} END {print rate}'
}
sign_run() {  # label key alg: wrk as in step 1, and the server's CPU ns per signature
  local before after
  before=$(cpu_of "$coffer_pid")
  KEY=$2 ALG=$3 wrk -t2 -c32 -d"${duration}s" --latency -s bench/sign.lua "$vault" >"$work/$1.txt"
  after=$(cpu_of "$coffer_pid")
  eval "${1}_rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")"
  eval "${1}_cpu=$(python3 -c "print(round(($after - $before) / $(getconf CLK_TCK) / \
    $(awk '/requests in/ {print $1}' "$work/$1.txt") * 1e9))")"
  echo "$1: $(eval echo "\$${1}_rps") signs/s, p50 $(awk '$1=="50%" {print $2}' "$work/$1.txt")," \
    "p99 $(awk '$1=="99%" {print $2}' "$work/$1.txt"), server CPU $(eval echo "\$${1}_cpu") ns" \
    "per sign; $(grep non-200 "$work/$1.txt")"
}
openssl_rsa=$(speed rsa2048 2)
sign_run sign_rsa "$rsa_key" RS256
openssl_ec=$(speed ecdsap256 4)
sign_run sign_ec "$ec_key" ES256
python3 - "$openssl_rsa" "$sign_rsa_rps" "$sign_rsa_cpu" "$openssl_ec" "$sign_ec_rps" \
  "$sign_ec_cpu" <<'PY'
import sys
o_rsa, rsa, rsa_cpu, o_ec, ec, ec_cpu = (float(x) for x in sys.argv[1:])
for name, o, c, cpu, target in (("RSA-2048 RS256", o_rsa, rsa, rsa_cpu, 0.8),
                                ("EC P-256 ES256", o_ec, ec, ec_cpu, 0.5)):
    # openssl's time per signature in one of its two processes, beside the
    # server's CPU per signed request (the signature and everything around it).
    print("%s sign: coffer %.0f/s, openssl speed -multi 2 %.0f/s, ratio %.2f (target >= %.1f); "
          "server CPU per sign %.0f ns, openssl per sign and process %.0f ns"
          % (name, c, o, c / o, target, cpu, 2 / o * 1e9))
PY
for spec in 'rsa {"kty":"RSA","key_size":2048}' 'ec {"kty":"EC","crv":"P-256"}'; do
  BODY=${spec#* } PREFIX="create-${spec%% *}-" wrk -t1 -c1 -d"${duration}s" --latency \
    -s bench/create_object.lua "$vault" >"$work/create.txt"
  echo "key creation ${spec%% *}: p50 $(awk '$1=="50%" {print $2}' "$work/create.txt")," \
    "p99 $(awk '$1=="99%" {print $2}' "$work/create.txt")," \
    "$(awk '/requests in/ {print $1}' "$work/create.txt") keys, one client;" \
    "$(grep unexpected "$work/create.txt")"
done
fi

if want 16; then
# A Self-issued certificate is signed and written before the create's 202, so
# the 202's latency is create to completed (the SDKs' pollers then find the
# operation completed at their first poll). RSA-2048 is mostly key
# generation: `openssl genpkey` makes the same keys one after another, here.
# An issuer of the Coffer provider signs with the installation's CA.
curl -sf --cacert "$ca" "${auth[@]}" -X PUT -H 'Content-Type: application/json' \
  -d '{"provider":"Coffer"}' "$vault/certificates/issuers/bench-ca?api-version=7.5" >/dev/null
for spec in 'rsa Self {"kty":"RSA","key_size":2048}' 'ec Self {"kty":"EC","crv":"P-256"}' \
  'ec-coffer-issued bench-ca {"kty":"EC","crv":"P-256"}'; do
  label=${spec%% *}
  rest=${spec#* }
  issuer=${rest%% *}
  BODY="{\"policy\":{\"key_props\":${rest#* },\"x509_props\":{\"subject\":\"CN=bench\"},\"issuer\":{\"name\":\"$issuer\"}}}" \
    COLLECTION=certificates STATUS=202 PREFIX="cert-$label-" wrk -t1 -c1 -d"${duration}s" \
    --latency -s bench/create_object.lua "$vault" >"$work/cert.txt"
  echo "certificate create to completed $label: p50 $(awk '$1=="50%" {print $2}' "$work/cert.txt")," \
    "p99 $(awk '$1=="99%" {print $2}' "$work/cert.txt")," \
    "$(awk '/requests in/ {print $1}' "$work/cert.txt") certificates, one client;" \
    "$(grep unexpected "$work/cert.txt")"
done
python3 - "$duration" <<'PY'
import statistics, subprocess, sys, time
# openssl genpkey RSA-2048, one key after another for the same duration.
times, end = [], time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    start = time.monotonic()
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times.append((time.monotonic() - start) * 1000)
times.sort()
print("openssl genpkey RSA-2048: p50 %.1f ms, p99 %.1f ms, %d keys (one process each)"
      % (statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], len(times)))
PY
fi

# 17. A renewal by the scheduler reaching a mounted node.
if want 17; then
python3 bench/renewal.py "$build"/coffer 20
fi

# 18. Service limits counted vs off: two fresh servers, alike but for the limits, alternated.
# The counted one has a budget far above what the benchmark reaches (1,000,000 reads per 10 s
# for every vault, so the installation's cap is five times that), so every request is counted,
# against its vault and the installation, and none refused: the cost of the counting alone.
if want 18; then
fresh_server lim_off on --service-limits off
fresh_server lim_on on --service-limits azure
(set -a; source "$work/data-lim_on/dev.env"; set +a
 COFFER_CA_FILE="$work/data-lim_on/tls/ca.pem" "$build"/coffer limits set --mode custom \
   --secret-other 1000000 >/dev/null)
for pair in 1 2 3; do
  cpu_get "limits_off$pair" "$lim_off_pid" "$lim_off_vault$path" "$lim_off_token"
  sleep 2
  cpu_get "limits_on$pair" "$lim_on_pid" "$lim_on_vault$path" "$lim_on_token"
  sleep 2
done
pair_summary "GET with service limits counted / off" ">= 0.95" limits_off limits_on
throttled=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/data-lim_on/tls/ca.pem" \
  -H "Authorization: Bearer $lim_on_token" "$lim_on_vault$path")
echo "a GET on the counted server after the runs: HTTP $throttled (200: no request was refused)"
fi
