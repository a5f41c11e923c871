#!/usr/bin/env bash
# Installs what is missing, builds walkeep with AddressSanitizer and UBSan, and runs every
# test (Check unit suites, integration tests against real PostgreSQL 15, 16, 17 and 18 and
# a real Ceph RADOS Gateway) through ctest; then every libFuzzer harness for 30 seconds
# (scripts/fuzz.sh; WALKEEP_FUZZ_SECONDS, 0 to skip; skipped when ctest arguments are given).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
build=${WALKEEP_TEST_BUILD:-build-test}
cmake -S . -B "$build" -DWALKEEP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"
# The README's plain optimized build (RelWithDebInfo, -O2) and scripts/demo.sh's (Release,
# -O3, no tests) must compile too: the optimizer finds other warnings.
cmake -S . -B "$build-release" >/dev/null
cmake --build "$build-release" -j"$(nproc)" >/dev/null
cmake -S . -B "$build-o3" -DCMAKE_BUILD_TYPE=Release -DWALKEEP_TESTS=OFF >/dev/null
cmake --build "$build-o3" -j"$(nproc)" >/dev/null

# Memory errors and leaks fail the run, also inside programs PostgreSQL starts.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
# Every test has its own scratch folder, sockets and S3 server, so they run side by side:
# most of an integration test's time is spent waiting on PostgreSQL and on Ceph, not on
# the two cores. The matrix (CMakeLists.txt, docs/versions.md): all tests on PostgreSQL
# 15, the server-facing ones again on 16, 17 and 18, PITR on S3 and 64 MiB segments on 18.
# The longest tests are started first (ctest's cost data from an earlier run, else the
# order of CMakeLists.txt).
ctest --output-on-failure --timeout 1500 -j "${WALKEEP_TEST_JOBS:-4}" "$@"
cd - >/dev/null
fuzz_seconds=${WALKEEP_FUZZ_SECONDS:-30}
if [[ $# -eq 0 && $fuzz_seconds -gt 0 ]]; then
    scripts/fuzz.sh "$fuzz_seconds"
fi
