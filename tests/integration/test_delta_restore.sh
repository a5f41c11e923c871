#!/usr/bin/env bash
# test_delta_restore.sh: pitr-restore --delta over an older copy of the same cluster
# (PostgreSQL 15 to 18).
#
# A primary (with a tablespace) archives through walkeep-archive; backup A; a copy
# restored from A (its tablespace mapped elsewhere) is started,
# promoted and written to (it diverges: rows of its own), and stray files are put into it
# (a WAL file of its own, a file in base/). The primary then changes: about 1% of a
# table's rows updated, a table dropped, a table created; backup B. Then:
#   1. pitr-restore --delta of B over the copy: exit 0, it reports what was already in
#      place (most of it) and removes what B lacks; started, the copy recovers and holds
#      exactly the primary's data (the diverged rows gone, the dropped table gone, the new
#      one there);
#   2. refused, nothing touched: a copy with a server running on it, a tablespace mapped
#      to a folder of other files, a data directory of another cluster, a folder that is
#      no data directory.
#
# Run: WALKEEP_BIN=<build dir> bash test_delta_restore.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECOVERY_TIMEOUT=180
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
wk_cluster_start "$pg"
tsdir=$work/ts          # the primary's tablespace
copy_ts=$work/copy_ts   # the copy's, mapped with --tablespace-map
mkdir -p "$tsdir"
chown postgres: "$tsdir" "$work"
wk_psql "$pg" "CREATE TABLESPACE ts LOCATION '$tsdir'" >/dev/null
wk_psql "$pg" "CREATE TABLE a AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g;
               ALTER TABLE a ADD PRIMARY KEY (id);
               CREATE TABLE b AS SELECT generate_series(1, 1000) AS id;
               CREATE TABLE in_ts TABLESPACE ts AS SELECT generate_series(1, 3000) AS id" >/dev/null
wk_assert_status 0 "backup A" -- as_pg "$BASEBACKUP" --config "$conf" --label a --wait-archive=60s

# --- the older copy, diverged --------------------------------------------------------------
copy=$(wk_cluster_path copy)
wk_assert_status 0 "a copy restored from A" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$copy" --backup a --target-immediate \
    "--tablespace-map=$tsdir=$copy_ts"
wk_restored_start "$copy" "$RECOVERY_TIMEOUT" || wk_bail "the copy did not start"
wk_psql "$copy" "INSERT INTO a SELECT g, 'diverged' FROM generate_series(300001, 300500) g" >/dev/null
wk_psql "$copy" "CHECKPOINT" >/dev/null
wk_cluster_stop "$copy"

# --- the primary moves on ------------------------------------------------------------------
wk_psql "$pg" "UPDATE a SET v = 'changed' WHERE id % 100 = 0;
               DELETE FROM in_ts WHERE id > 2000;
               DROP TABLE b;
               CREATE TABLE c AS SELECT generate_series(1, 500) AS id" >/dev/null
wk_assert_status 0 "backup B" -- as_pg "$BASEBACKUP" --config "$conf" --label b --wait-archive=60s
wk_psql "$pg" "INSERT INTO c SELECT generate_series(501, 600)" >/dev/null
seg=$(wk_psql "$pg" "SELECT $(wk_sql_walfile "pg_switch_wal()")")
wk_wait_for_sql "the archiving of $seg" 90 "$pg" \
    "SELECT coalesce(last_archived_wal, '') >= '$seg' FROM pg_stat_archiver" t
expected=$(wk_psql "$pg" "SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM a")

# Stray files the backup does not hold.
printf 'stray' >"$copy/stray_file"
printf 'stray' >"$copy/pg_wal/000000090000000000000099"
chown postgres: "$copy/stray_file" "$copy/pg_wal/000000090000000000000099"

# --- 1. --delta over the copy ------------------------------------------------------------------
wk_assert_status 0 "1. pitr-restore --delta of B over the older copy" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$copy" --backup b --delta "--tablespace-map=$tsdir=$copy_ts"
wk_assert_contains "$WK_ERR" "^pitr-restore: info: delta: [0-9.]+ [KMG]iB of [0-9.]+ [KMG]iB already in place, [0-9]+ files and folders removed\$" \
    "1. it says how much was already in place"
kept=$(sed -n 's/.*delta: \([0-9.]*\) \([KMG]\)iB of \([0-9.]*\) \([KMG]\)iB.*/\1 \2 \3 \4/p' "$WK_ERR")
# shellcheck disable=SC2086 # $kept: the four words the check takes
if python3 -c "
import sys
k, ku, t, tu = sys.argv[1:]
f = {'K': 1, 'M': 1024, 'G': 1024 * 1024}
sys.exit(0 if float(k) * f[ku] >= 0.5 * float(t) * f[tu] else 1)" $kept; then
    wk_pass "1. most of the backup was already in place ($kept)"
else
    wk_fail "1. most of the backup was already in place" "got: $kept"
fi
wk_assert_no_file "$copy/stray_file" "1. a file the backup lacks is removed"
wk_assert_no_file "$copy/pg_wal/000000090000000000000099" "1. so is the copy's own WAL"
wk_assert_file "$copy/recovery.signal" "1. recovery.signal is written"
if wk_restored_start "$copy" "$RECOVERY_TIMEOUT"; then
    wk_pass "1. the updated copy recovers and promotes"
    wk_assert_eq "$expected" \
        "$(wk_psql "$copy" "SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM a")" \
        "1. table a is the primary's, row for row (the diverged rows are gone)"
    wk_assert_eq "" "$(wk_psql "$copy" "SELECT to_regclass('b')")" "1. table b, dropped after A, is gone"
    wk_assert_eq 600 "$(wk_psql "$copy" "SELECT count(*) FROM c")" "1. table c, created after A, is there"
    wk_assert_eq 2000 "$(wk_psql "$copy" "SELECT count(*) FROM in_ts")" \
        "1. the table in the tablespace is the primary's too"
else
    wk_fail "1. the updated copy recovers and promotes"
fi

# --- 2. refusals -----------------------------------------------------------------------------
wk_assert_status 1 "2. --delta over a copy with a server running on it is refused" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$copy" --backup b --delta
wk_assert_contains "$WK_ERR" "^pitr-restore: error: a server is running on \"$copy\" \\(pid [0-9]+\\)\$" \
    "2. it names the server"
wk_assert_eq 600 "$(wk_psql "$copy" "SELECT count(*) FROM c")" "2. and the copy keeps running, untouched"
wk_cluster_stop "$copy"

junk_ts=$(wk_tmpdir junk_ts)
printf 'x' >"$junk_ts/holiday.jpg"
wk_assert_status 1 "2. --delta with a tablespace mapped to a folder of other files is refused" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$copy" --backup b --delta "--tablespace-map=$tsdir=$junk_ts"
wk_assert_contains "$WK_ERR" "^pitr-restore: error: tablespace folder \"$junk_ts\" holds \"holiday.jpg\", which is no tablespace's\$" \
    "2. it names the file that would go"
wk_assert_file "$junk_ts/holiday.jpg" "2. which stays"
wk_assert_no_file "$copy/recovery.signal" "2. and the copy is untouched"

other=$(wk_cluster_init other)
wk_assert_status 1 "2. --delta over another cluster's data directory is refused" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$other" --backup b --delta
wk_assert_contains "$WK_ERR" "^pitr-restore: error: \"$other\" belongs to another cluster \\(system identifier [0-9]+, the backup's is [0-9]+\\)\$" \
    "2. it says whose it is"
wk_assert_no_file "$other/recovery.signal" "2. nothing was written there"

junk=$(wk_tmpdir junk)
printf 'x' >"$junk/notes.txt"
wk_assert_status 1 "2. --delta over a folder that is no data directory is refused" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$junk" --backup b --delta
wk_assert_contains "$WK_ERR" "^pitr-restore: error: \"$junk\" holds no PostgreSQL data directory" \
    "2. it says so"
wk_assert_file "$junk/notes.txt" "2. and leaves the folder alone"

wk_cluster_stop "$pg"
wk_done
