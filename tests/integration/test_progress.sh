#!/usr/bin/env bash
# Progress lines against a real PostgreSQL 15: walkeep-basebackup, pitr-restore,
# walkeep-dump create / restore and walkeep verify draw a progress line on stderr when
# it is a terminal (a pseudo-terminal from script(1)), a bar with a percentage when the
# total is known; with stderr in a file they write no "\r" and no progress at all,
# only their usual info lines.
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
    wk_assert_contains "$f" "MiB/s" "$2 shows its rate on a terminal"
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
check_tty verify-tty "walkeep verify" NOBAR
wk_assert_contains "$work/verify-tty.tty" "verified [0-9]+ objects" "and its summary follows"
wk_assert_status 0 "walkeep verify with stderr in a file succeeds" -- \
    as_pg "$WALKEEP" verify --config "$conf"
check_file "walkeep verify" ""
wk_assert_contains "$WK_OUT" "verified [0-9]+ objects .*: 0 problems" "verify's summary is on stdout"

wk_done
