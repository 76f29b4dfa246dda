#!/usr/bin/env bash
# Installs what is missing, builds Coffer with AddressSanitizer and
# UndefinedBehaviorSanitizer, and its Release program (for the OCI image's test),
# and runs every test (unit, integration and the official-SDK conformance suites)
# with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${COFFER_TEST_BUILD_DIR:-build-asan}
# -O1 with line tables only: sanitizer builds compile much faster than at -O2 -g, and
# stack traces still name files and lines.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DCOFFER_SANITIZE=ON -DCOFFER_WERROR=ON >/dev/null
cmake --build "$build"
# The Release build as users and packagers make it (no options: warnings do not stop
# it), which the image test (tests/integration/test_image.py) packs. Only the program:
# ccache makes this cheap when the sources have not changed.
release=${COFFER_RELEASE_BUILD_DIR:-build-release}
cmake -S . -B "$release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$release" --target coffer
export COFFER_RELEASE_BIN=$PWD/$release/coffer
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure -j2 "$@"
