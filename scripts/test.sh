#!/usr/bin/env bash
# Installs what is missing, builds Coffer with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs every test (unit, integration and the
# official-SDK conformance suites) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${COFFER_TEST_BUILD_DIR:-build-asan}
# -O1 with line tables only: sanitizer builds compile much faster than at -O2 -g, and
# stack traces still name files and lines.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DCOFFER_SANITIZE=ON >/dev/null
cmake --build "$build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure -j2 "$@"
