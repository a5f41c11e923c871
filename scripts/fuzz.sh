#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer harnesses of fuzz/ with clang (ASan, UBSan) in
# build-fuzz/, seeds each one's corpus with real walkeep encodings (fuzz/seed.c), and runs
# every harness for SECONDS (default 30), two at a time. A crash, leak, timeout or
# sanitizer report fails the run: the input is kept as build-fuzz/crash-<harness>-*.
# scripts/test.sh runs it; WALKEEP_FUZZ_SECONDS sets SECONDS there.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
build=${WALKEEP_FUZZ_BUILD:-build-fuzz}
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: error: clang is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi
CC=clang cmake -S . -B "$build" -DWALKEEP_FUZZ=ON -DWALKEEP_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
corpus=$build/corpus
rm -rf "$corpus"
"$build/fuzz_seed" "$corpus"
mapfile -t harnesses < <(find "$build" -maxdepth 1 -name 'fuzz_*' -type f -perm -u+x \
    ! -name fuzz_seed -printf '%f\n' | sort)
export build corpus seconds
run_one() {
    local h=$1 log
    log=$build/$h.log
    mkdir -p "$corpus/$h"
    if "$build/$h" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -artifact_prefix="$build/crash-$h-" -print_final_stats=1 "$corpus/$h" >"$log" 2>&1; then
        echo "ok - $h: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds}s"
    else
        echo "not ok - $h (see $log):"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 5 | sed 's/^/#   /'
        return 1
    fi
}
export -f run_one
status=0
printf '%s\n' "${harnesses[@]}" | xargs -P 2 -I{} bash -c 'run_one {}' || status=1
echo "fuzz.sh: ${#harnesses[@]} harnesses, ${seconds}s each: $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
