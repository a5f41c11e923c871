#!/usr/bin/env bash
# Installs what is missing, builds walkeep with AddressSanitizer and UBSan, and runs every
# test (Check unit suites and integration tests against a real PostgreSQL) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
build=${WALKEEP_TEST_BUILD:-build-test}
cmake -S . -B "$build" -DWALKEEP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"
# The README's plain optimized build must compile too (the optimizer finds other warnings).
cmake -S . -B "$build-release" >/dev/null
cmake --build "$build-release" -j"$(nproc)" >/dev/null

# Memory errors and leaks fail the run, also inside programs PostgreSQL starts.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 1500 "$@"
