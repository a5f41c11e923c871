#!/usr/bin/env bash
# format.sh [--check]: formats walkeep's C sources with clang-format and .clang-format (the
# style of STYLE.md). With --check nothing is changed: it lists the files that differ and
# exits 1 when there is one (ctest lint_format runs it so).
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = "--check" ] && check=true
if ! command -v clang-format >/dev/null 2>&1; then
    echo "format.sh: error: clang-format is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi
mapfile -t files < <(find lib admin archive_cmd restore_cmd basebackup pitr dump tests/unit fuzz \
    -name '*.[ch]' | sort)
differ=0
for f in "${files[@]}"; do
    if $check; then
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "not formatted: $f"
            differ=$((differ + 1))
        fi
    else
        clang-format -i "$f"
    fi
done
if $check; then
    echo "${#files[@]} files checked, $differ not formatted"
    if [ "$differ" -gt 0 ]; then
        echo "format.sh: run scripts/format.sh to format them (clang-format, .clang-format)" >&2
        exit 1
    fi
fi
