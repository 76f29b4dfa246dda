#!/usr/bin/env bash
# Installs what is missing, builds Coffer, and starts the dev server.
# Usage: scripts/dev.sh [extra `coffer server` flags, e.g. --port 9443]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_WERROR=ON >/dev/null
cmake --build build --target coffer
exec ./build/coffer server --dev --data-dir .data "$@"
