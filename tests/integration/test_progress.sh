#!/usr/bin/env bash
# Progress lines against a real PostgreSQL 15: walkeep-basebackup, pitr-restore,
# walkeep-dump create / restore and walkeep verify draw a progress line on stderr when
# it is a terminal (a pseudo-terminal from script(1)), a bar with a percentage when the
# total is known; with stderr in a file they write no "\r" and no progress at all,
# only their usual info lines. On a narrow terminal (60 columns, then 24) the line fits
# the width, is redrawn in place, and its last update is 100% of the final size.
source "$(dirname "$0")/lib.sh"

command -v script >/dev/null 2>&1 || wk_bail "script (util-linux) is needed"
ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
RESTORE=$(wk_bin pitr-restore)
DUMP=$(wk_bin walkeep-dump)
WALKEEP=$(wk_bin walkeep)
PGBENCH=$(wk_pgbin pgbench)
work=$(wk_tmpdir work)
repo=$work/repo
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }

BAR='\[[#-]+\] +[0-9]+%'
CR=$'\r'

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")
printf 'repo = %s\npg_conninfo = host=%s port=%s dbname=postgres\nlog_level = info\n' \
    "$repo" "$sock" "$port" >"$conf"
chown postgres: "$conf"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
as_pg "$PGBENCH" -i -s 5 -q -h "$sock" -p "$port" postgres >/dev/null 2>&1 ||
    wk_bail "pgbench -i failed"

# on_tty NAME CMD...: runs CMD as postgres with a pseudo-terminal for its output; what
# the terminal showed goes to $work/NAME.tty. Returns CMD's status.
on_tty() {
    local name=$1 cmd
    shift
    printf -v cmd '%q ' "$@"
    as_pg script -qec "$cmd" /dev/null </dev/null >"$work/$name.tty" 2>&1
}

# check_tty NAME WHAT BAR|NOBAR: the terminal showed a progress line (with a bar).
check_tty() {
    local f=$work/$1.tty
    wk_assert_contains "$f" "[0-9.]+ (B|KiB|MiB|GiB|TiB)/s" "$2 shows its rate on a terminal"
    # (the terminal ends every line with "\r\n"; a redraw is "\r" then the line)
    wk_assert_contains "$f" "$CR(\[|  [0-9])" "$2 draws its progress line after a \"\\r\""
    if [[ $3 == BAR ]]; then
        wk_assert_contains "$f" "$BAR" "$2 draws a progress bar with a percentage"
    else
        wk_assert_not_contains "$f" "$BAR" "$2 draws no bar (its total is unknown)"
    fi
}

# check_file WHAT EXPECTED: $WK_ERR (stderr in a file) holds no progress at all, and
# the usual info line.
check_file() {
    wk_assert_not_contains "$WK_ERR" "$CR" "$1 writes no \"\\r\" when stderr is a file"
    wk_assert_not_contains "$WK_ERR" "MiB/s|$BAR" "$1 writes no progress when stderr is a file"
    if [[ -n $2 ]]; then
        wk_assert_contains "$WK_ERR" "$2" "$1 still writes its info lines"
    fi
}

# --- walkeep-basebackup ----------------------------------------------------------------
if on_tty backup-tty "$BASEBACKUP" --config "$conf" --label tty; then
    wk_pass "a backup under a terminal succeeds"
else
    wk_fail "a backup under a terminal succeeds" "$(tail -c 2000 "$work/backup-tty.tty")"
fi
check_tty backup-tty "walkeep-basebackup" BAR
wk_assert_contains "$work/backup-tty.tty" 'backup "tty" complete' "and its info line follows"
wk_assert_status 0 "a backup with stderr in a file succeeds" -- \
    as_pg "$BASEBACKUP" --config "$conf" --label file
check_file "walkeep-basebackup" 'backup "file" complete'

# --- pitr-restore ----------------------------------------------------------------------
if on_tty restore-tty "$RESTORE" --config "$conf" --backup tty --pgdata "$work/restored-tty"; then
    wk_pass "a restore under a terminal succeeds"
else
    wk_fail "a restore under a terminal succeeds" "$(tail -c 2000 "$work/restore-tty.tty")"
fi
check_tty restore-tty "pitr-restore" BAR
# Progress during each archive, not only at its end: the first call is always drawn,
# and it comes with the archive's first bytes, not when base.tar is done.
first=$(grep -oE "$BAR" "$work/restore-tty.tty" | head -n 1 | grep -oE '[0-9]+%$' | tr -d %)
wk_assert_ge 0 "${first:--1}" "pitr-restore draws a first bar"
if [[ -n $first ]] && ((first < 50)); then
    wk_pass "pitr-restore draws its bar during the archive (first at $first%)"
else
    wk_fail "pitr-restore draws its bar during the archive" "first bar at ${first:-none}%"
fi
wk_assert_file "$work/restored-tty/PG_VERSION" "the restore under a terminal laid the data down"
wk_assert_status 0 "a restore with stderr in a file succeeds" -- \
    as_pg "$RESTORE" --config "$conf" --backup file --pgdata "$work/restored-file"
check_file "pitr-restore" "restored into"

# --- walkeep-dump ------------------------------------------------------------------------
if on_tty dump-tty "$DUMP" --config "$conf" create --format custom --label tty; then
    wk_pass "a custom dump under a terminal succeeds"
else
    wk_fail "a custom dump under a terminal succeeds" "$(tail -c 2000 "$work/dump-tty.tty")"
fi
check_tty dump-tty "walkeep-dump create" NOBAR
wk_assert_status 0 "a custom dump with stderr in a file succeeds" -- \
    as_pg "$DUMP" --config "$conf" create --format custom --label file
check_file "walkeep-dump create" 'dump "file" of "postgres" \(custom\) complete'

wk_psql "$pg" "CREATE DATABASE copy_tty" >/dev/null
wk_psql "$pg" "CREATE DATABASE copy_file" >/dev/null
if on_tty dump-restore-tty "$DUMP" --config "$conf" restore tty --dbname copy_tty; then
    wk_pass "a dump restore under a terminal succeeds"
else
    wk_fail "a dump restore under a terminal succeeds" "$(tail -c 2000 "$work/dump-restore-tty.tty")"
fi
check_tty dump-restore-tty "walkeep-dump restore" BAR
wk_assert_eq 500000 "$(wk_psql "$pg" "SELECT count(*) FROM pgbench_accounts" copy_tty)" \
    "the dump restored under a terminal holds every row"
wk_assert_status 0 "a dump restore with stderr in a file succeeds" -- \
    as_pg "$DUMP" --config "$conf" restore file --dbname copy_file
check_file "walkeep-dump restore" 'dump "file" restored'

# --- walkeep verify ----------------------------------------------------------------------
if on_tty verify-tty "$WALKEEP" verify --config "$conf"; then
    wk_pass "walkeep verify under a terminal succeeds"
else
    wk_fail "walkeep verify under a terminal succeeds" "$(tail -c 2000 "$work/verify-tty.tty")"
fi
check_tty verify-tty "walkeep verify" BAR
wk_assert_contains "$work/verify-tty.tty" "verified [0-9]+ objects" "and its summary follows"
wk_assert_status 0 "walkeep verify with stderr in a file succeeds" -- \
    as_pg "$WALKEEP" verify --config "$conf"
check_file "walkeep verify" ""
wk_assert_contains "$WK_OUT" "verified [0-9]+ objects .*: 0 problems" "verify's summary is on stdout"

# --- a narrow terminal ----------------------------------------------------------------
# On a 60-column terminal no rendered line is wider than 60 columns (the bar fits the
# width the program reads from its terminal), the line is redrawn in place ("\r", no
# newline between the updates) and the last update is the end: 100% of the final size.
# (Info lines are left out with log_level=warning: they are text the terminal wraps.)

# on_narrow_tty NAME COLUMNS CMD...: on_tty on a terminal COLUMNS wide.
on_narrow_tty() {
    local name=$1 columns=$2 cmd
    shift 2
    printf -v cmd '%q ' "$@"
    as_pg script -qfec "stty cols $columns rows 24 && $cmd" /dev/null </dev/null >"$work/$name.tty" 2>&1
}

# check_narrow NAME WHAT COLUMNS: what the terminal showed, split at "\r" and "\n" with
# the escape sequences removed, is never wider than COLUMNS; the progress updates (each
# "\r", the line, "\033[K") follow one another on one line, and the last shows 100%.
check_narrow() {
    local f=$work/$1.tty what=$2 columns=$3 out
    out=$(python3 - "$f" "$columns" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
columns = int(sys.argv[2])
plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data)
widest = max((len(line) for line in re.split(r"[\r\n]", plain)), default=0)
updates = list(re.finditer(r"\r([^\r\n]*)\x1b\[K", data))
first, last = (updates[0], updates[-1]) if updates else (None, None)
between = data[first.start():last.end()] if updates else ""
print("widest=%d" % widest)
print("updates=%d" % len(updates))
print("newlines_between=%d" % between.count("\n"))
print("last=%s" % (last.group(1) if last else ""))
PY
    )
    local widest updates newlines last
    widest=$(sed -n 's/^widest=//p' <<<"$out")
    updates=$(sed -n 's/^updates=//p' <<<"$out")
    newlines=$(sed -n 's/^newlines_between=//p' <<<"$out")
    last=$(sed -n 's/^last=//p' <<<"$out")
    # (the last column is never written: a character there wraps the line)
    if ((${widest:-999} < columns)); then
        wk_pass "$what: every line narrower than $columns columns (widest $widest)"
    else
        wk_fail "$what: every line narrower than $columns columns" "widest: $widest; $(tr '\r' '\n' <"$f" | awk -v c="$columns" 'length >= c' | head -n 3)"
    fi
    wk_assert_ge 2 "${updates:-0}" "$what: draws its progress more than once"
    wk_assert_eq 0 "${newlines:-x}" "$what: redraws one line in place (\\r, no newline between updates)"
    if [[ $last =~ \]\ +100%\ +([0-9.]+\ [KMGT]?i?B)\ /\ ([0-9.]+\ [KMGT]?i?B) && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]; then
        wk_pass "$what: its last update is 100% of the final size ($last)"
    else
        wk_fail "$what: its last update is 100% of the final size" "last update: \"$last\""
    fi
}

if on_narrow_tty restore-narrow 60 "$RESTORE" --config "$conf" --log_level=warning --backup tty \
    --pgdata "$work/restored-narrow"; then
    wk_pass "a restore under a 60-column terminal succeeds"
else
    wk_fail "a restore under a 60-column terminal succeeds" "$(tail -c 2000 "$work/restore-narrow.tty")"
fi
check_narrow restore-narrow "pitr-restore (60 columns)" 60

if on_narrow_tty verify-narrow 60 "$WALKEEP" verify --config "$conf" --log_level=warning; then
    wk_pass "walkeep verify under a 60-column terminal succeeds"
else
    wk_fail "walkeep verify under a 60-column terminal succeeds" "$(tail -c 2000 "$work/verify-narrow.tty")"
fi
check_narrow verify-narrow "walkeep verify (60 columns)" 60
wk_assert_contains "$work/verify-narrow.tty" "verified [0-9]+ objects \([0-9.]+ [KMGT]?i?B\): 0 problems" \
    "walkeep verify's summary gives the size read with its unit"

# A terminal too narrow for any bar: the counter alone, still within the width.
if on_narrow_tty verify-tiny 24 "$WALKEEP" verify --config "$conf" --log_level=warning; then
    wk_pass "walkeep verify under a 24-column terminal succeeds"
else
    wk_fail "walkeep verify under a 24-column terminal succeeds" "$(tail -c 2000 "$work/verify-tiny.tty")"
fi
tiny_widest=$(tr '\r' '\n' <"$work/verify-tiny.tty" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' |
    grep -E '%' | awk '{ if (length > m) m = length } END { print m + 0 }')
if ((tiny_widest > 0 && tiny_widest <= 23)); then
    wk_pass "walkeep verify's progress fits 24 columns (widest $tiny_widest)"
else
    wk_fail "walkeep verify's progress fits 24 columns" "widest progress line: $tiny_widest"
fi
wk_assert_contains "$work/verify-tiny.tty" "${CR} +100%  [0-9.]+ [KMGT]?i?B" "on 24 columns it is a counter without a bar"

wk_done
