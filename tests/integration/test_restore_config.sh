#!/usr/bin/env bash
# test_restore_config.sh: pitr-restore of a cluster that keeps its configuration outside
# the data directory, as Debian and Ubuntu do (/etc/postgresql/<version>/<cluster>/): the
# backup holds no postgresql.conf, and PostgreSQL does not start without one.
#   1. without --start: the restore is laid down, exit 0, and a warning says which files
#      to copy where;
#   2. with --start: the same warning, then an error instead of a server that cannot
#      start, and the restore stays laid down;
#   3. with the configuration copied in, the copy starts and holds the data.
#
# Run: WALKEEP_BIN=<build dir> bash test_restore_config.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
PITR=$(wk_bin pitr-restore)
FETCH=$(wk_bin walkeep-fetch) # pitr-restore writes it into restore_command
: "$FETCH"
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres timeout -k 10 240 "$@"; }

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" \
    "pg_bindir = $WK_PGBIN"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
# The configuration moves out of the data directory, as Debian keeps it.
etc=$(wk_tmpdir etc)
mv "$pg/postgresql.conf" "$etc/postgresql.conf"
chown -R postgres: "$etc"
log=$(wk_cluster_log "$pg")
as_pg "$(wk_pgbin pg_ctl)" -D "$pg" -l "$log" -w -o "-c config_file=$etc/postgresql.conf" start \
    >"$work/start.out" 2>&1 || { cat "$work/start.out" >&2; wk_bail "the primary did not start"; }
wk_psql "$pg" "CREATE TABLE t AS SELECT generate_series(1, 100) AS id" >/dev/null
wk_assert_status 0 "a backup of a cluster whose postgresql.conf is elsewhere" -- \
    as_pg "$BASEBACKUP" --config "$conf" --label etc --checkpoint=fast --wait-archive=60s

warning="^pitr-restore: warning: the backup holds no postgresql.conf \\(Debian and Ubuntu keep it in /etc/postgresql/<version>/<cluster>/\\): copy postgresql.conf, pg_hba.conf and pg_ident.conf into \"[^\"]+\" before starting the server\$"
d1=$(wk_cluster_path one)
wk_assert_status 0 "1. pitr-restore without --start succeeds" -- as_pg "$PITR" --config "$conf" --pgdata "$d1"
wk_assert_contains "$WK_ERR" "$warning" "1. and warns which files to copy where"
wk_assert_file "$d1/PG_VERSION" "1. the backup is laid down"

d2=$(wk_cluster_path two)
wk_assert_status 1 "2. pitr-restore --start refuses to start a copy without configuration" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$d2" --start
wk_assert_contains "$WK_ERR" "$warning" "2. the same warning"
wk_assert_contains "$WK_ERR" "^pitr-restore: error: cannot start the server: \"$d2\" has no postgresql.conf\$" \
    "2. then the error"
wk_assert_file "$d2/recovery.signal" "2. the restore stays laid down"
wk_assert_no_file "$d2/postmaster.pid" "2. no server was started"

cp "$etc/postgresql.conf" "$d1/postgresql.conf"
chown postgres: "$d1/postgresql.conf"
if wk_restored_start "$d1" 120; then
    wk_pass "3. with the configuration copied in, the copy starts"
    wk_assert_eq 100 "$(wk_psql "$d1" "SELECT count(*) FROM t")" "3. and holds the data"
    wk_cluster_stop "$d1"
else
    wk_fail "3. with the configuration copied in, the copy starts"
fi
wk_cluster_stop "$pg"
wk_done
