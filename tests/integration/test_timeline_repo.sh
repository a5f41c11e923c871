#!/usr/bin/env bash
# test_timeline_repo.sh: a repository that starts on timeline 2 (created after a failover).
# A cluster is promoted to timeline 2 with archiving into a new, uninitialised repository:
# the first file PostgreSQL archives is 00000002.history, and walkeep-archive initialises
# the repository from the data directory instead of refusing it forever. With the history
# object removed, walkeep-basebackup stores it again (TIMELINE_HISTORY), so that
# walkeep verify finds no missing history and a restore can follow timeline 2.
#
# Run: WALKEEP_BIN=<build dir> bash test_timeline_repo.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
WALKEEP=$(wk_bin walkeep)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" \
    "pg_bindir = $(wk_pg_client_bindir)"
# A standby without a primary, promoted: timeline 2, archiving into a repository that does
# not exist yet.
as_pg touch "$pg/standby.signal"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
as_pg "$(wk_pgbin pg_ctl)" -D "$pg" -w promote >/dev/null
wk_wait_for_sql "the promotion" 60 "$pg" "select pg_is_in_recovery()" f
wk_psql "$pg" "checkpoint" >/dev/null
wk_assert_eq 2 "$(wk_psql "$pg" "select timeline_id from pg_control_checkpoint()")" \
    "the cluster runs on timeline 2"
wk_wait_for_sql "the archiving of 00000002.history" 60 "$pg" \
    "select last_archived_wal like '00000002.history%' or archived_count > 0 from pg_stat_archiver" t
wk_assert_eq 0 "$(wk_psql "$pg" "select failed_count from pg_stat_archiver")" \
    "the history file initialised the new repository: archiving never failed"
history_objects() { wk_repo_wal_objects "$repo" | grep -E '^wal/00000002\.history-' || true; }
wk_assert_ne "" "$(history_objects)" "00000002.history is in the repository"

# The history object gone (a repository created after the history was archived elsewhere):
# walkeep check warns, and a base backup stores it again.
mapfile -t gone < <(wk_repo_ls "$repo" wal | grep -E '^wal/00000002\.history-' || true)
wk_repo_rm "$repo" "${gone[@]}"
wk_assert_eq "" "$(history_objects)" "the history object was removed"
wk_assert_status '!0' "walkeep check is not OK without the current timeline's history" -- \
    as_pg timeout -k 10 120 "$WALKEEP" check --config "$conf"
wk_assert_contains "$WK_OUT" "WARNING.*00000002.history" "check names the missing history"
wk_psql "$pg" "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g" >/dev/null
wk_assert_status 0 "a base backup on timeline 2" -- \
    as_pg timeout -k 10 240 "$BASEBACKUP" --config "$conf" --label tl2
wk_assert_contains "$WK_ERR" "stored 00000002.history" "walkeep-basebackup says it stored the history"
wk_assert_ne "" "$(history_objects)" "00000002.history is in the repository again"
wk_assert_status 0 "walkeep verify finds no missing history" -- \
    as_pg timeout -k 10 120 "$WALKEEP" verify --config "$conf"

# walkeep init on a repository that lacks the history stores it from pg_wal.
mapfile -t gone < <(wk_repo_ls "$repo" wal | grep -E '^wal/00000002\.history-' || true)
wk_repo_rm "$repo" "${gone[@]}"
wk_assert_status 0 "walkeep init on the initialised repository" -- \
    as_pg "$WALKEEP" init --config "$conf" --pgdata="$pg"
wk_assert_contains "$WK_ERR" "stored 1 timeline history file" "init says it stored the history"
wk_assert_ne "" "$(history_objects)" "00000002.history is in the repository once more"

wk_done
