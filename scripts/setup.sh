#!/usr/bin/env bash
# Installs what Coffer needs to build and test on Debian 12: Debian packages
# (only those missing) and the npm packages of the SDK tests (from the lock
# file). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libssl-dev libsqlite3-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-format
  libsodium-dev  # Argon2id password hashes (src/crypto/password_hash.cc)
  libyaml-cpp-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libpq-dev postgresql-15 haproxy  # haproxy: tests/integration/test_failover.py
  nginx  # tests/integration/test_agent_certificates.py serves a mounted certificate
  python3 python3-azure python3-cryptography python3-yaml python3-knack python3-tabulate
  libnss-myhostname sqlite3 curl azure-cli ca-certificates systemd util-linux iproute2 dnsmasq-base
  buildah  # packaging/oci/build-image.sh and its test
)
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# *.localhost must resolve to loopback (nss-myhostname); the package's
# installer normally adds it to nsswitch.conf.
if ! grep -qE '^hosts:.*myhostname' /etc/nsswitch.conf; then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd sed -i -E 's/^(hosts:\s+files)/\1 myhostname/' /etc/nsswitch.conf
fi

# The SDK test packages (package-lock.json's `engines`) need a recent Node.js;
# Debian 12's own nodejs is 18. Say so plainly rather than let sdk_js fail
# later with a syntax or API error.
node_too_old=""
if [[ -f tests/sdk-js/package-lock.json ]] && command -v node >/dev/null 2>&1; then
  node_version=$(node --version 2>/dev/null || echo v0)
  engines_status=0
  need=$(python3 scripts/node_engines.py tests/sdk-js/package-lock.json "$node_version") ||
    engines_status=$?
  if ((engines_status == 3)); then
    node_too_old="setup: Node.js $node_version ($(command -v node)) is older than the SDK test
  packages need: ${need%% *} or later (engines of ${need#* } in tests/sdk-js/package-lock.json).
  The sdk_js conformance test (ctest -L sdk) will fail; everything else is unaffected.
  Install Node.js ${need%%.*} or later -- e.g. the nodejs package of https://deb.nodesource.com
  (node_${need%%.*}.x) or nvm -- and run scripts/setup.sh again."
    echo "$node_too_old" >&2
  elif ((engines_status != 0)); then
    echo "setup: could not read the Node.js versions tests/sdk-js/package-lock.json asks for" >&2
  fi
fi

# SDK test dependencies, pinned by package-lock.json.
if [[ -f tests/sdk-js/package-lock.json ]]; then
  stamp=tests/sdk-js/node_modules/.lock-stamp
  if [[ ! -f $stamp ]] || ! cmp -s tests/sdk-js/package-lock.json "$stamp"; then
    (cd tests/sdk-js && npm ci --no-audit --no-fund --loglevel=error)
    cp tests/sdk-js/package-lock.json "$stamp"
  fi
fi
if [[ -n $node_too_old ]]; then
  echo "$node_too_old" >&2  # again, last, where it is seen
fi
