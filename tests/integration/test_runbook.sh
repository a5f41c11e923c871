#!/usr/bin/env bash
# test_runbook.sh: docs/runbook.md section 1, "A table was dropped", followed as written
# against a real PostgreSQL: the time is found in the server log (log_statement = 'ddl'),
# one second before it is the target, pitr-restore lays a NEW data directory down with
# --target-action=promote, the copy starts on another port with archive_mode=off, the
# table is read there, dumped with pg_dump -t and loaded back into production with
# pg_restore; production keeps what happened after the accident.
#
# Run: WALKEEP_BIN=<build dir> bash test_runbook.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
PITR=$(wk_bin pitr-restore)
BIN=$(wk_pg_client_bindir)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
CONF=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }

pg=$(wk_cluster_init production)
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")
wk_repo_conf_write "$CONF" "$repo" "pg_conninfo = host=$sock port=$port dbname=postgres" \
    "pg_bindir = $BIN"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" "log_statement = 'ddl'" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $CONF %p")"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE DATABASE shop" >/dev/null
wk_psql "$pg" "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 5000) g; CREATE TABLE audit (n int)" >/dev/null shop
wk_assert_status 0 "a base backup" -- \
    as_pg timeout -k 10 240 "$BASEBACKUP" --config "$CONF" --label before
wk_psql "$pg" "INSERT INTO orders SELECT g, 'late ' || g FROM generate_series(5001, 5100) g" >/dev/null shop
want=$(wk_psql "$pg" "SELECT count(*) || ' ' || sum(id) FROM orders" shop)
sleep 1.2
# The accident, then life goes on.
wk_psql "$pg" "DROP TABLE orders" >/dev/null shop
sleep 1.2
wk_psql "$pg" "INSERT INTO audit SELECT g FROM generate_series(1, 10) g" >/dev/null shop
seg=$(wk_psql "$pg" "select $(wk_sql_walfile "pg_switch_wal()")")
wk_wait_for_sql "archiving of $seg" 90 "$pg" \
    "SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver" t

# 1.1 Find the time: the statement's, from the server log, to the millisecond, with its
# offset (the commit 1.2 s before it must be kept).
drop_line=$(grep -h 'statement: DROP TABLE orders' "$(wk_cluster_log "$pg")" | tail -n 1)
wk_assert_ne "" "$drop_line" "1.1 the server log names the DROP TABLE"
drop_time=$(awk '{ print $1 " " $2 " " $3 }' <<<"$drop_line")
target=$(date -d "$drop_time" '+%Y-%m-%d %H:%M:%S.%3N%:z')
echo "# DROP at $drop_time: target $target"

# 1.2 Restore into a NEW data directory.
new=$(wk_cluster_path pitr)
wk_assert_status 0 "1.2 pitr-restore into a new data directory" -- \
    as_pg timeout -k 10 180 "$PITR" --config "$CONF" --pgdata "$new" \
    --target-time "$target" --target-action=promote

# 1.3 Start it on another port, with archiving off.
wk_cluster_adopt "$new"
wk_cluster_conf "$new" "archive_mode = off"
wk_assert_status 0 "1.3 the copy starts on another port" -- wk_cluster_start "$new"
wk_wait_for_sql "the copy to end recovery" 120 "$new" "select pg_is_in_recovery()" f
wk_assert_contains "$(wk_cluster_log "$new")" "recovery stopping before commit of transaction" \
    "1.3 the log says where recovery stopped"
wk_assert_eq "$want" "$(wk_psql "$new" "SELECT count(*) || ' ' || sum(id) FROM orders" shop)" \
    "1.3 the copy has the table as it was the second before the DROP"

# 1.4 Copy the table back.
dump=$work/orders.dump
wk_assert_status 0 "1.4 pg_dump -t orders from the copy" -- \
    as_pg "$BIN/pg_dump" -h "$(wk_cluster_sockdir "$new")" -p "$(wk_cluster_port "$new")" \
    -d shop -t orders -Fc -f "$dump"
wk_assert_status 0 "1.4 pg_restore into production" -- \
    as_pg "$BIN/pg_restore" -h "$sock" -p "$port" -d shop "$dump"
wk_assert_eq "$want" "$(wk_psql "$pg" "SELECT count(*) || ' ' || sum(id) FROM orders" shop)" \
    "1.4 production has the table back, every row"
wk_assert_eq 10 "$(wk_psql "$pg" "SELECT count(*) FROM audit" shop)" \
    "1.4 production kept what happened after the accident"
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT failed_count FROM pg_stat_archiver")" \
    "production archived without failures throughout"

# 1.5 Clean up.
wk_cluster_stop "$new"
wk_done
