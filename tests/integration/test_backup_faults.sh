#!/usr/bin/env bash
# walkeep-basebackup under faults, against a real PostgreSQL (15 to 18): a backup killed half-way
# is never usable, a bad connection is one clear error, a backup whose WAL is not
# archived waits (bounded) and becomes usable once it is, and labels never collide.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh): there the backup is killed while
# its first object is a multipart upload in progress (1 MB parts, sent slowly).
source "$(dirname "$0")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
RESTORE=$(wk_bin pitr-restore)
WALKEEP=$(wk_bin walkeep)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }
info_json() { as_pg "$WALKEEP" info --config "$conf" --json; }
backup_status() { # LABEL
    info_json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([b["status"] for b in d["backups"] if b["label"]==sys.argv[1]][0])' "$1"
}

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
s3_conf=()
[[ $(wk_repo_kind) != s3 ]] || s3_conf=("s3_part_size = 1MB" "s3_parallel = 1")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" "${s3_conf[@]}"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g" >/dev/null

# --- a backup killed half-way ----------------------------------------------------------
if [[ $(wk_repo_kind) == posix ]]; then
    # strace holds the backup at its first rename (the first archive's object about to be
    # committed); SIGKILL then.
    inject=(-e trace=renameat2 -e inject=renameat2:delay_enter=30000000)
    has_temp() { [[ -n $(find "$repo/backups/killed" -name '.*tmp*' 2>/dev/null) ]]; }
else
    # No rename on S3: strace slows every send (50 ms each) so that the first object's
    # multipart upload is still in progress when it is seen; SIGKILL then.
    # shellcheck disable=SC2054 # commas in strace's syscall list
    inject=(-e trace=sendto,sendmsg -e inject=sendto:delay_enter=50000
        -e inject=sendmsg:delay_enter=50000)
    has_temp() { wk_repo_uploads "$repo" | grep -q '^backups/killed/'; }
fi
ASAN_OPTIONS=detect_leaks=0 runuser -u postgres -- strace -f -o /dev/null "${inject[@]}" \
    "$BASEBACKUP" --config "$conf" --label killed >/dev/null 2>&1 &
tracer=$!
wk_wait_for "the backup's first object" 60 has_temp
victim=$(pgrep -f -n "^$BASEBACKUP --config $conf --label killed") || true
if [[ -n $victim ]]; then
    kill -KILL "$victim"
    wait "$tracer" 2>/dev/null || true
    wk_pass "backup killed half-way"
else
    kill "$tracer" 2>/dev/null || true
    wk_fail "could not find the backup to kill"
fi
wk_assert_no_repo_file "$repo" backups/killed/backup.json "the killed backup has no record"
if [[ $(wk_repo_kind) == posix ]]; then
    wk_assert_eq incomplete "$(backup_status killed)" "walkeep info lists the killed backup as incomplete"
else
    # An upload in progress is no object: the backup has nothing visible yet, so walkeep
    # info may not list it at all; it must never be complete.
    status=$(backup_status killed 2>/dev/null || echo absent)
    if [[ $status == incomplete || $status == absent ]]; then
        wk_pass "walkeep info lists the killed backup as incomplete, or not at all ($status)"
    else
        wk_fail "walkeep info lists the killed backup as incomplete, or not at all" "got: $status"
    fi
fi
wk_assert_status 1 "pitr-restore refuses a repository holding only an interrupted backup" -- \
    as_pg "$RESTORE" --config "$conf" --pgdata "$work/never"
wk_assert_contains "$WK_ERR" "no complete backup" "and says there is no complete backup"
wk_assert_no_file "$work/never" "nothing restored from an interrupted backup"

# --- good backup, then a label that is taken ---------------------------------------
wk_assert_status 0 "a backup succeeds" -- \
    as_pg "$BASEBACKUP" --config "$conf" --label good --pgdata="$pg" --log-level=debug
wk_assert_eq good "$(cat "$WK_OUT")" "it prints its label"
wk_assert_eq complete "$(backup_status good)" "and it is complete"
# With pgdata the cluster's own data directory, the data files were read ahead of the
# server: at least table t (about 3.5 MB), at most what the backup holds.
wk_assert_contains "$WK_ERR" "debug: reading \"$pg\" ahead of the server" \
    "it reads the data directory ahead of the server"
read_ahead=$(sed -n 's/.*debug: read \([0-9]*\) bytes of the data directory ahead.*/\1/p' "$WK_ERR")
backup_bytes=$(info_json | python3 -c 'import json,sys; print([b["bytes"] for b in json.load(sys.stdin)["backups"] if b["label"] == "good"][0])')
if [[ -n $read_ahead && -n $backup_bytes ]] && ((read_ahead >= 3000000 && read_ahead <= backup_bytes)); then
    wk_pass "it read $read_ahead bytes ahead, of the $backup_bytes the backup holds"
else
    wk_fail "it reads the data files ahead: at least table t, at most the backup" \
        "read ahead: ${read_ahead:-?} bytes, backup: ${backup_bytes:-?} bytes"
fi
wk_assert_status 1 "a label in use is refused" -- as_pg "$BASEBACKUP" --config "$conf" --label good
wk_assert_contains "$WK_ERR" "already exists" "the refusal says why"
wk_assert_status 1 "a label that is no plain name is refused" -- \
    as_pg "$BASEBACKUP" --config "$conf" --label "../x"
wk_assert_contains "$WK_ERR" "invalid backup label" "the label is named"

# --- the connection --------------------------------------------------------------------
wk_assert_status 1 "a wrong port is one clear error" -- \
    as_pg "$BASEBACKUP" --config "$conf" --pg-conninfo="host=$(wk_cluster_sockdir "$pg") port=1 dbname=postgres"
wk_assert_contains "$WK_ERR" "^walkeep-basebackup: error: could not connect to the server" "it says it could not connect"
wk_assert_eq 1 "$(grep -c 'error:' "$WK_ERR")" "exactly one error line"
wk_psql "$pg" "CREATE ROLE plain LOGIN" >/dev/null
wk_assert_status 1 "a role without REPLICATION is refused" -- \
    as_pg "$BASEBACKUP" --config "$conf" --pg-conninfo="host=$(wk_cluster_sockdir "$pg") port=$port user=plain dbname=postgres"
wk_assert_contains "$WK_ERR" "REPLICATION|replication" "it points at the replication privilege"

# --- WAL that does not reach the archive ---------------------------------------------
wk_psql "$pg" "ALTER SYSTEM SET archive_command = '/bin/false'" >/dev/null
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
wk_assert_status 1 "a backup whose WAL is not archived fails after --wait-archive" -- \
    as_pg "$BASEBACKUP" --config "$conf" --label nowal --wait-archive=3s \
    --pgdata="$work" --log-level=debug
wk_assert_contains "$WK_ERR" "was not archived within 3 s" "it names the wait"
wk_assert_contains "$WK_ERR" "debug: not reading ahead: \"$work\" is not the data directory" \
    "a pgdata that is not the cluster's is not read (and does not stop the backup)"
wk_assert_eq waiting-for-wal "$(backup_status nowal)" "walkeep info shows it waiting for WAL"
wk_psql "$pg" "ALTER SYSTEM SET archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")" >/dev/null
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
nowal_complete() { [[ $(backup_status nowal) == complete ]]; }
wk_wait_for "the WAL of backup nowal to be archived" 120 nowal_complete
wk_assert_eq complete "$(backup_status nowal)" "once its WAL is archived the backup is complete"

wk_cluster_stop "$pg"
wk_done
