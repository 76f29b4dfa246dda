#!/usr/bin/env bash
# Fails when a C++ source differs from .clang-format's output.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'src/*.cc' 'src/*.h' 'fuzz/*.cc' 2>/dev/null ||
                     find src fuzz -name '*.cc' -o -name '*.h')
clang-format --dry-run -Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
