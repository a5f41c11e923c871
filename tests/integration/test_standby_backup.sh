#!/usr/bin/env bash
# test_standby_backup.sh: walkeep-basebackup against a hot standby (PostgreSQL 15 to 18), so
# that the primary does no backup I/O.
#
# A primary archives through walkeep-archive; a first backup of it becomes, through
# pitr-restore, a streaming standby (standby.signal, primary_conninfo). Then:
#   1. walkeep-basebackup against the idle standby: the backup is recorded (from a
#      standby, info says so) and waits for its last segment, which only the primary
#      archives: the error after --wait-archive says so and what to run on the primary;
#   2. once the primary switches WAL the backup is complete; a second standby backup
#      while the primary switches now and then succeeds;
#   3. pitr-restore of the standby backup drops the standby's standby.signal, and the copy
#      recovers (not as a standby), promotes, and holds every archived row.
#
# Run: WALKEEP_BIN=<build dir> bash test_standby_backup.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECOVERY_TIMEOUT=180

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
PITR=$(wk_bin pitr-restore)
WALKEEP=$(wk_bin walkeep)
FETCH=$(wk_bin walkeep-fetch) # pitr-restore writes it into restore_command
: "$FETCH"
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf

primary=$(wk_cluster_init primary)
pport=$(wk_cluster_port "$primary")
psock=$(wk_cluster_sockdir "$primary")
wk_repo_conf_write "$conf" "$repo" "pg_conninfo = host=$psock port=$pport dbname=postgres" \
    "pg_bindir = $WK_PGBIN"
wk_cluster_conf "$primary" "archive_mode = on" "wal_level = replica" "hot_standby = on" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$primary"
wk_psql "$primary" "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g" >/dev/null

as_pg() { wk_run_as_postgres timeout -k 10 240 "$@"; }
wk_assert_status 0 "a backup of the primary" -- \
    as_pg "$BASEBACKUP" --config "$conf" --label seed --checkpoint=fast --wait-archive=60s

# --- the standby ----------------------------------------------------------------------
standby=$(wk_cluster_path standby)
wk_assert_status 0 "pitr-restore lays the seed backup down" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$standby" --backup seed
((WK_STATUS == 0)) || wk_bail "no standby"
wk_cluster_adopt "$standby"
rm -f "$standby/recovery.signal"
touch "$standby/standby.signal"
chown postgres: "$standby/standby.signal"
wk_cluster_conf "$standby" "archive_mode = off" \
    "primary_conninfo = $(wk_conf_quote "host=$psock port=$pport")"
sport=$(wk_cluster_port "$standby")
ssock=$(wk_cluster_sockdir "$standby")
wk_cluster_start "$standby"
wk_psql "$primary" "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g" >/dev/null
lsn=$(wk_psql "$primary" "SELECT pg_current_wal_lsn()")
wk_wait_for_sql "the standby to replay $lsn" 90 "$standby" \
    "SELECT pg_last_wal_replay_lsn() >= '$lsn'" t
wk_assert_eq t "$(wk_psql "$standby" "SELECT pg_is_in_recovery()")" "the standby is in recovery"

# --- 1. a backup of the standby ---------------------------------------------------------
# Its last segment is archived only once the primary switches to the next one: with the
# primary idle, the wait ends and says so (the backup is recorded, waiting for that WAL).
sconf=$work/standby.conf
wk_repo_conf_write "$sconf" "$repo" "pg_conninfo = host=$ssock port=$sport dbname=postgres" \
    "pg_bindir = $WK_PGBIN"
backup_json() { # LABEL KEY: the member of walkeep info --json's backup LABEL
    as_pg "$WALKEEP" info --config "$conf" --json |
        python3 -c 'import json,sys; print(json.dumps([b for b in json.load(sys.stdin)["backups"] if b["label"] == sys.argv[1]][0].get(sys.argv[2])))' "$1" "$2"
}
wk_assert_status 1 "a backup of the idle standby waits for its last segment, then says why" -- \
    as_pg "$BASEBACKUP" --config "$sconf" --label fromstandby --checkpoint=fast --wait-archive=3s
wk_assert_contains "$WK_ERR" "^walkeep-basebackup: error: WAL segment [0-9A-F]{24}, which ends backup \"fromstandby\", was not archived within 3 s\$" \
    "it names the segment"
wk_assert_contains "$WK_ERR" "^walkeep-basebackup: detail: The backup was taken from a standby: the primary archives that segment when it switches to the next one\.\$" \
    "it says the backup comes from a standby"
wk_assert_contains "$WK_ERR" "^walkeep-basebackup: hint: run SELECT pg_switch_wal\(\) on the primary, or set archive_timeout there" \
    "and what to do on the primary"
wk_assert_eq true "$(backup_json fromstandby from_standby)" "info: the backup is from a standby"
wk_assert_eq '"waiting-for-wal"' "$(backup_json fromstandby status)" "info: waiting for its WAL"

# --- 2. more rows; the primary closes its segment ----------------------------------------
wk_psql "$primary" "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(6001, 7000) g" >/dev/null
seg=$(wk_psql "$primary" "SELECT $(wk_sql_walfile "pg_switch_wal()")")
wk_wait_for_sql "the archiving of $seg" 90 "$primary" \
    "SELECT coalesce(last_archived_wal, '') >= '$seg' FROM pg_stat_archiver" t
wk_assert_eq '"complete"' "$(backup_json fromstandby status)" "info: complete once the primary switched"
wk_assert_eq false "$(backup_json seed from_standby)" "info: the primary's backup is not from a standby"

# A primary that writes and switches now and then (as archive_timeout does): the backup's
# last segment is archived while walkeep-basebackup waits for it.
wk_psql "$primary" "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(7001, 8000) g" >/dev/null
lsn=$(wk_psql "$primary" "SELECT pg_current_wal_lsn()")
wk_wait_for_sql "the standby to replay $lsn" 90 "$standby" \
    "SELECT pg_last_wal_replay_lsn() >= '$lsn'" t
archived_before=$(wk_psql "$primary" "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
(
    for i in $(seq 1 12); do
        sleep 4
        wk_psql "$primary" "INSERT INTO t VALUES ($((8000 + i)), 'tick')" >/dev/null 2>&1 || true
        wk_psql "$primary" "SELECT pg_switch_wal()" >/dev/null 2>&1 || true
    done
) &
ticker=$!
wk_assert_status 0 "a backup of the standby while the primary switches WAL" -- \
    as_pg "$BASEBACKUP" --config "$sconf" --label fromstandby2 --checkpoint=fast --wait-archive=60s
kill "$ticker" 2>/dev/null || true
wait "$ticker" 2>/dev/null || true
wk_assert_eq '"complete"' "$(backup_json fromstandby2 status)" "that backup is complete"
wk_assert_contains "$WK_ERR" "backup \"fromstandby2\" complete: .* to [0-9A-F]+/[0-9A-F]+ on timeline 1" \
    "it reports its range"
ticks=$(wk_psql "$primary" "SELECT count(*) FROM t WHERE v = 'tick'")
wk_assert_ge 1 "$ticks" "the primary switched while it waited ($ticks switches)"
stop_segment=$(backup_json fromstandby2 wal_stop_segment | tr -d '"')
if [[ ${stop_segment:8} > ${archived_before:8} ]]; then
    wk_pass "its last segment ($stop_segment) was not archived when it started ($archived_before): it waited for it"
else
    wk_fail "its last segment was not archived when it started" "stop $stop_segment, archived before: $archived_before"
fi

# walkeep check pointed at the standby says so, instead of judging the primary's archiving
# from the standby's pg_stat_archiver.
wk_assert_status '!0' "walkeep check against the standby" -- \
    as_pg "$WALKEEP" check --config "$sconf"
wk_assert_contains "$WK_OUT" "^WARNING: archiver: the server is a standby \(in recovery\): the archiving to watch is the primary's; point walkeep check's pg_conninfo at the primary\$" \
    "check says the server is a standby"

# --- 3. restore the first standby backup ----------------------------------------------------
rows=$(wk_psql "$primary" "SELECT count(*) FROM t")
seg=$(wk_psql "$primary" "SELECT $(wk_sql_walfile "pg_switch_wal()")")
wk_wait_for_sql "the archiving of $seg" 90 "$primary" \
    "SELECT coalesce(last_archived_wal, '') >= '$seg' FROM pg_stat_archiver" t
restored=$(wk_cluster_path restored)
wk_assert_status 0 "pitr-restore of the standby backup" -- \
    as_pg "$PITR" --config "$conf" --pgdata "$restored" --backup fromstandby --target-action=promote
wk_assert_contains "$WK_ERR" "removed standby.signal \(the backup was taken from a standby\)" \
    "it drops the standby's standby.signal"
wk_assert_no_file "$restored/standby.signal" "no standby.signal in the restored copy"
if ((WK_STATUS == 0)); then
    if wk_restored_start "$restored" "$RECOVERY_TIMEOUT"; then
        wk_pass "the restored standby backup recovers and promotes"
        wk_assert_eq "$rows" "$(wk_psql "$restored" "SELECT count(*) FROM t")" \
            "every row archived is there ($rows), the ones after the backup included"
        wk_assert_not_contains "$(wk_cluster_log "$restored")" "entering standby mode" \
            "it recovered as a restore, not as a standby"
        wk_cluster_stop "$restored"
    else
        wk_fail "the restored standby backup recovers and promotes"
    fi
fi
wk_cluster_stop "$standby"
wk_cluster_stop "$primary"
wk_done
