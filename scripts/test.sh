#!/usr/bin/env bash
# The test command: sets up (idempotent), then runs the unit tests and the reference tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the long model-parity tests on the release
# build (the sanitizer build would make them take hours; the code paths are the same).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "test: building the ASan/UBSan configuration (build-asan)" >&2
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQUEEZE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$(nproc)")

export SQUEEZE_BIN="$PWD/build/bin/squeeze"
export SQUEEZE_ASAN_BIN="$PWD/build-asan/bin/squeeze"
export SQUEEZE_TOOLS_DIR="$PWD/build-asan/bin"
.venv/bin/python -m pytest -q tests/reference "$@"
