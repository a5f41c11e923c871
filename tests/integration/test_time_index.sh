#!/usr/bin/env bash
# test_time_index.sh: the archive's time index and the target proof of pitr-restore
# against a real PostgreSQL (15 to 18: WK_PG_MAJOR, lib.sh).
#
# A primary with track_commit_timestamp runs in time zone Asia/Tokyo while this test runs
# with TZ=America/New_York; it archives a single-client pgbench history (commits in time
# order) with restore points into a repository through walkeep-archive. Then:
#   1. every segment object carries its time index; walkeep info --json's recovery window
#      ends at the last commit the server reports (pg_last_committed_xact), to the
#      microsecond, and lists the restore points
#   2. random targets across the history, each exact: a zone-less time read in the
#      server's zone, one read in --timezone America/Los_Angeles, an xid, a restore
#      point: the restored cluster holds exactly the pgbench_history rows that committed
#      at or before the target (their commit timestamps, from the primary)
#   3. refusals before anything is written: a time after the last archived commit (the
#      window in the message), a restore point and an xid that are not there, an xid
#      that rolled back, a time in the daylight-saving gap and one in the repeated hour
#   4. timelines: a restored copy promoted to timeline 2 archives its history into the
#      same repository; before its own copy of the branch segment is archived, a second
#      restore to a restore point on timeline 1 before the branch succeeds (timeline 1's
#      copy is what PostgreSQL reads); then targets on timeline 2, exact again
#   5. a repository archived before time indexes (names without one): the window and a
#      restore point are read from the WAL itself
#
# Run: WALKEEP_BIN=<build dir> WALKEEP_SRC=<source dir> bash test_time_index.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status and wk_on_exit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export TZ=America/New_York # not the server's zone
RESTORE_TIMEOUT=180
RECOVERY_TIMEOUT=120
ARCHIVE_TIMEOUT=90

archive_bin=$(wk_bin walkeep-archive)
admin_bin=$(wk_bin walkeep)
basebackup_bin=$(wk_bin walkeep-basebackup)
pitr_bin=$(wk_bin pitr-restore)
pgbench=$(wk_pgbin pgbench)

pitr() {
    local c=$1 d=$2
    shift 2
    wk_run_as_postgres timeout -k 10 "$RESTORE_TIMEOUT" "$pitr_bin" --config "$c" --pgdata "$d" "$@"
}

info_json() {
    wk_run_as_postgres timeout -k 5 120 "$admin_bin" info --json --config "$1" >"$2" 2>"$2.err"
}

# py FILE EXPR: a Python expression over the JSON document j of FILE; w(N) is the
# recovery window of timeline N.
py() {
    python3 - "$1" "$2" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    def w(n):
        return next(x for x in j["recovery_windows"] if x["timeline"] == n)
    r = eval(sys.argv[2])
    print(json.dumps(r) if isinstance(r, (list, dict, bool)) or r is None else r)
except Exception as e:
    print("<error: %s: %s>" % (type(e).__name__, e))
PY
}

switch_and_wait() { wk_switch_and_wait "$1" "$ARCHIVE_TIMEOUT"; }

# restore_check WHAT CONF EXPECTED_ROWS [pitr-restore args...]: restores into a fresh
# folder, starts it (archiving off, promote at the target), waits for the promotion and
# compares the count of pgbench_history rows.
restore_check() {
    local what=$1 c=$2 want=$3 dir got
    shift 3
    dir=$(wk_cluster_path restored) || return 1
    wk_assert_status 0 "$what: pitr-restore succeeds" -- pitr "$c" "$dir" --target-action=promote "$@"
    if ((WK_STATUS != 0)); then
        sed 's/^/# /' "$WK_ERR" | head -n 8 >&2
        return 1
    fi
    grep -E 'target time|recovery will stop' "$WK_ERR" | sed 's/^/# /' || true
    wk_cluster_adopt "$dir" || return 1
    wk_cluster_conf "$dir" "archive_mode = off" || return 1
    if ! WK_START_TIMEOUT=$RECOVERY_TIMEOUT wk_cluster_start "$dir" ||
        ! wk_wait_for_sql "the promotion of $dir" "$RECOVERY_TIMEOUT" "$dir" \
            "select pg_is_in_recovery()" f; then
        wk_fail "$what: the restored cluster recovers and promotes" "see the log above"
        wk_cluster_log_tail "$dir"
        wk_cluster_stop "$dir" immediate || true
        return 1
    fi
    got=$(wk_psql "$dir" "select count(*) from pgbench_history" 2>&1 || true)
    wk_assert_eq "$want" "$got" "$what: exactly the rows committed at or before the target"
    wk_assert_not_contains "$(wk_cluster_log "$dir")" '(FATAL|PANIC):' "$what: no FATAL in the log"
    wk_cluster_stop "$dir" || true
    rm -rf -- "$(dirname "$dir")"
}

# refused WHAT ERE [pitr-restore args...]: pitr-restore fails with one error line
# matching ERE and writes nothing.
refused() {
    local what=$1 ere=$2 dir
    shift 2
    dir=$(wk_cluster_path refused) || return 1
    wk_assert_status 1 "$what: refused" -- pitr "$conf" "$dir" "$@"
    wk_assert_contains "$WK_ERR" "$ere" "$what: the message says why"
    wk_assert_eq 1 "$(grep -c '^pitr-restore: error: ' "$WK_ERR" || true)" "$what: one error line"
    if [[ -e $dir && -n $(ls -A "$dir" 2>/dev/null) ]]; then
        wk_fail "$what: nothing written" "found: $(ls -A "$dir" | head -n 5)"
    else
        wk_pass "$what: nothing written"
    fi
    rm -rf -- "$(dirname "$dir")"
}

# ---------------------------------------------------------------------------
# setup

work=$(wk_tmpdir walkeep)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
[[ $(wk_repo_kind) != posix ]] || wk_run_as_postgres mkdir -m 0700 "$repo"

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = $(wk_conf_quote "host=$sock port=$port dbname=postgres")" \
    "pg_bindir = $WK_PGBIN"
archive_command="\"$archive_bin\" --config \"$conf\" %p"
wk_cluster_conf "$pg" \
    "wal_level = replica" \
    "archive_mode = on" \
    "archive_command = $(wk_conf_quote "$archive_command")" \
    "track_commit_timestamp = on" \
    "autovacuum = off" \
    "timezone = 'Asia/Tokyo'" \
    "max_wal_size = 1GB" \
    "checkpoint_timeout = 1h"
wk_cluster_start "$pg"

pgb=("$pgbench" -h "$sock" -p "$port")
wk_run_as_postgres "${pgb[@]}" -i -s 1 -q postgres >"$work/pgbench.log" 2>&1 ||
    { cat "$work/pgbench.log" >&2; wk_bail "pgbench -i failed"; }
wk_assert_status 0 "walkeep-basebackup succeeds" -- \
    wk_run_as_postgres timeout -k 10 240 "$basebackup_bin" --config "$conf"
backup_label=$(head -n 1 "$WK_OUT")
wk_assert_eq '"Asia/Tokyo"' "$(wk_repo_cat "$repo" "backups/$backup_label/backup.json" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("timezone")))')" \
    "the backup records the server's time zone"

# The history: single-client pgbench (each transaction adds one pgbench_history row and
# commits after the one before), restore points in between, one rolled-back transaction.
run_pgbench() { # DATADIR SECONDS
    wk_run_as_postgres "$pgbench" -h "$(wk_cluster_sockdir "$1")" -p "$(wk_cluster_port "$1")" \
        -n -c 1 -T "$2" postgres >>"$work/pgbench.log" 2>&1
}
run_pgbench "$pg" 2 || wk_fail "pgbench runs" "$(tail -n 5 "$work/pgbench.log")"
rows_tick_one=$(wk_psql "$pg" "select count(*) from pgbench_history")
wk_psql "$pg" "select pg_create_restore_point('tick one')" >/dev/null
aborted_xid=$(wk_psql "$pg" "begin; select txid_current(); insert into pgbench_history values (0, 0, 0, 0, now()); rollback" | head -n 1)
run_pgbench "$pg" 2 || wk_fail "pgbench runs" "$(tail -n 5 "$work/pgbench.log")"
rows_tick_two=$(wk_psql "$pg" "select count(*) from pgbench_history")
wk_psql "$pg" "select pg_create_restore_point('tick two')" >/dev/null
run_pgbench "$pg" 2 || wk_fail "pgbench runs" "$(tail -n 5 "$work/pgbench.log")"
wk_psql "$pg" "create table marker as select 1 as m" >/dev/null
last_commit=$(wk_psql "$pg" "select (extract(epoch from timestamp) * 1000000)::bigint from pg_last_committed_xact()")
switch_and_wait "$pg" >/dev/null || wk_fail "the last segment is archived" "see above"

# The commit time of every history row (Unix microseconds), in commit order.
wk_psql "$pg" "select xmin::text || ' ' || (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000000)::bigint from pgbench_history order by pg_xact_commit_timestamp(xmin)" >"$work/commits" ||
    wk_bail "could not read the commit timestamps"
total=$(wc -l <"$work/commits")
wk_assert_ge 20 "$total" "pgbench committed a history to restore into"

# ---------------------------------------------------------------------------
# 1. the index in object names, and the window as times

unindexed=$(wk_repo_wal_objects "$repo" | grep -E '/[0-9A-F]{24}-[0-9a-f]{32}\.' | grep -vcE -- '-[0-9a-f]{32}\.i' || true)
wk_assert_eq 0 "$unindexed" "every segment object carries its time index"
info_json "$conf" "$work/info.json"
wk_assert_eq "$last_commit" "$(py "$work/info.json" 'w(1)["to_unix_us"]')" \
    "info --json: timeline 1's window ends at the server's last commit, to the microsecond"
wk_assert_eq '["tick one", "tick two"]' "$(py "$work/info.json" '[p["name"] for p in w(1)["restore_points"]]')" \
    "info --json lists the restore points in WAL order"
wk_run_as_postgres "$admin_bin" info --config "$conf" >"$work/info.txt" 2>&1
wk_assert_contains "$work/info.txt" '^  timeline 1: from .* \(end of backup .*\) to 20' \
    "walkeep info shows the window as times"
wk_assert_contains "$work/info.txt" '^    restore point "tick one" at 20' \
    "walkeep info lists the restore points"

# ---------------------------------------------------------------------------
# 2. exact targets

# rows_at US: history rows committed at or before Unix microsecond US.
rows_at() { awk -v t="$1" '$2 <= t { n++ } END { print n + 0 }' "$work/commits"; }
# pick K: the commit time of the K-th history row (1-based).
pick() { sed -n "${1}p" "$work/commits" | cut -d' ' -f2; }
pick_xid() { sed -n "${1}p" "$work/commits" | cut -d' ' -f1; }
# local_time US ZONE: the wall-clock time of US in ZONE, to the microsecond, no offset.
local_time() {
    python3 -c 'import sys, datetime, zoneinfo
t = datetime.datetime.fromtimestamp(int(sys.argv[1]) / 1e6, zoneinfo.ZoneInfo(sys.argv[2]))
t = t.replace(microsecond=int(sys.argv[1]) % 1000000)
print(t.strftime("%Y-%m-%d %H:%M:%S.%f"))' "$1" "$2"
}

k1=$((RANDOM % (total / 3) + 2))
t1=$(pick "$k1")
restore_check "a zone-less time in the server's zone (Asia/Tokyo, test TZ New York)" "$conf" \
    "$(rows_at "$t1")" --target-time="$(local_time "$t1" Asia/Tokyo)"
k2=$((total / 3 + RANDOM % (total / 3)))
t2=$(pick "$k2")
restore_check "a zone-less time in --timezone America/Los_Angeles" "$conf" "$(rows_at "$t2")" \
    --target-time="$(local_time "$t2" America/Los_Angeles)" --timezone=America/Los_Angeles
restore_check "an exclusive time: the transaction at it is not applied" "$conf" \
    "$(rows_at "$((t2 - 1))")" --target-time="$(local_time "$t2" Asia/Tokyo)" --target-inclusive=false
k3=$((2 * total / 3 + RANDOM % (total / 3 - 1)))
restore_check "an xid" "$conf" "$k3" --target-xid="$(pick_xid "$k3")"
restore_check "a restore point" "$conf" "$rows_tick_two" --target-name="tick two"

# ---------------------------------------------------------------------------
# 3. refusals

after=$((last_commit + 1000000))
refused "a time after the last archived commit" 'after the last commit archived on timeline 1.*' \
    --target-time="$(local_time "$after" Asia/Tokyo)"
wk_assert_contains "$WK_ERR" 'recovery window runs from .* to ' "the refusal gives the window"
refused "a restore point that does not exist" 'no restore point "tick three"' --target-name="tick three"
refused "an xid that never committed" 'transaction 4000000000 did not commit' --target-xid=4000000000
refused "an xid that rolled back" "transaction $aborted_xid was rolled back" --target-xid="$aborted_xid"
refused "a time in the daylight-saving gap" 'does not exist in time zone America/New_York' \
    --target-time='2026-03-08 02:30:00' --timezone=America/New_York
wk_assert_contains "$WK_ERR" 'before the change it is 2026-03-08 07:30:00\+00, with the one after 2026-03-08 06:30:00\+00' \
    "the gap refusal gives both readings"
refused "a time in the repeated hour" 'is ambiguous in time zone America/New_York' \
    --target-time='2026-11-01 01:30:00' --timezone=America/New_York
wk_assert_contains "$WK_ERR" 'it is 2026-11-01 05:30:00\+00 \(the first time\) or 2026-11-01 06:30:00\+00' \
    "the ambiguity refusal gives both readings"

# ---------------------------------------------------------------------------
# 5. a repository archived before time indexes: its names lack them (a copy with the
#    index taken out of every name); the window and restore points come from the WAL

if [[ $(wk_repo_kind) == posix ]]; then
    legacy=$work/legacy
    cp -a -- "$repo" "$legacy"
    find "$legacy/wal" -type f -name '*-*.i*' | while read -r f; do
        mv -- "$f" "$(printf '%s\n' "$f" | sed -E 's/(-[0-9a-f]{32})\.i[^.]*/\1/')"
    done
    wk_assert_eq 0 "$(find "$legacy/wal" -type f -name '*-*.i*' | wc -l)" "the copy has names without index"
    legacy_conf=$work/legacy.conf
    wk_repo_conf_write "$legacy_conf" "$legacy" "pg_bindir = $WK_PGBIN"
    start=$SECONDS
    info_json "$legacy_conf" "$work/legacy.json"
    wk_assert_eq "$last_commit" "$(py "$work/legacy.json" 'w(1)["to_unix_us"]')" \
        "names without index: the window still ends at the last commit (read from the WAL)"
    wk_assert_eq '["tick one", "tick two"]' "$(py "$work/legacy.json" '[p["name"] for p in w(1)["restore_points"]]')" \
        "names without index: the restore points are read from the WAL"
    printf '# info read %s segments without index in %s s\n' \
        "$(find "$legacy/wal" -type f -name '0*[0-9A-F]-*' ! -name '*-claim' | wc -l)" "$((SECONDS - start))"
    restore_check "names without index: a restore point" "$legacy_conf" "$rows_tick_one" \
        --target-name="tick one"
    # walkeep verify gives them their index: the names then equal the original ones.
    legacy_segments=$(find "$legacy/wal" -type f -name '0*[0-9A-F]-[0-9a-f]*' ! -name '*-claim' | wc -l)
    wk_assert_status 0 "walkeep verify on names without index" -- \
        wk_run_as_postgres "$admin_bin" verify --json --config "$legacy_conf"
    wk_assert_eq "$legacy_segments" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["indexed"])' "$WK_OUT")" \
        "walkeep verify gives every segment archived before time indexes its index"
    wk_assert_eq "$(cd "$repo/wal" && find . -type f | sort)" "$(cd "$legacy/wal" && find . -type f | sort)" \
        "the indexed names are the ones walkeep-archive gave"
fi

# ---------------------------------------------------------------------------
# 4. timelines: a restored copy promoted to timeline 2 archives into the repository

copy=$(wk_cluster_path copy)
wk_assert_status 0 "restore a copy to \"tick two\"" -- pitr "$conf" "$copy" --target-name="tick two" \
    --target-action=promote
wk_cluster_adopt "$copy"
wk_cluster_conf "$copy" "archive_mode = on" "archive_command = $(wk_conf_quote "$archive_command")"
WK_START_TIMEOUT=$RECOVERY_TIMEOUT wk_cluster_start "$copy" || wk_bail "the copy does not start"
wk_wait_for_sql "the promotion of the copy" "$RECOVERY_TIMEOUT" "$copy" "select pg_is_in_recovery()" f ||
    wk_bail "the copy does not promote"
wk_assert_eq 2 "$(wk_psql "$copy" "select timeline_id from pg_control_checkpoint()")" "the copy is on timeline 2"
wk_wait_for_sql "the archiving of 00000002.history" "$ARCHIVE_TIMEOUT" "$copy" \
    "select coalesce(last_archived_wal, '') from pg_stat_archiver" "00000002.history" ||
    wk_fail "the copy archives its history file" "see above"
wk_assert_eq 0 "$(wk_repo_wal_objects "$repo" | grep -c '/00000002000000' || true)" \
    "no segment of timeline 2 is archived yet (its copy of the branch segment included)"

# The second restore: to a restore point on timeline 1 before the branch, recovering
# towards timeline 2 (latest): timeline 1's copy of the branch segment serves.
restore_check "a second restore, before the branch, with timeline 2's branch segment not archived" \
    "$conf" "$rows_tick_one" --target-name="tick one"

# Timeline 2 goes on.
run_pgbench "$copy" 2 || wk_fail "pgbench runs on timeline 2" "$(tail -n 5 "$work/pgbench.log")"
rows_tick_three=$(wk_psql "$copy" "select count(*) from pgbench_history")
wk_psql "$copy" "select pg_create_restore_point('tick three')" >/dev/null
run_pgbench "$copy" 1 || wk_fail "pgbench runs on timeline 2" "$(tail -n 5 "$work/pgbench.log")"
switch_and_wait "$copy" >/dev/null || wk_fail "timeline 2's last segment is archived" "see above"
wk_psql "$copy" "select xmin::text || ' ' || (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000000)::bigint from pgbench_history where xmin::text::bigint > $(pick_xid "$rows_tick_two") order by pg_xact_commit_timestamp(xmin)" >"$work/commits2" ||
    wk_bail "could not read timeline 2's commit timestamps"
new2=$(wc -l <"$work/commits2")
wk_assert_ge 5 "$new2" "timeline 2 has a history of its own"
# A backup of timeline 2 taken while the server runs in America/Los_Angeles: zone-less
# times are read in the newest backup's zone, here west of UTC while this run's TZ is east.
wk_psql "$copy" "alter system set timezone = 'America/Los_Angeles'" >/dev/null
wk_psql "$copy" "select pg_reload_conf()" >/dev/null
copy_conf=$work/copy.conf
wk_repo_conf_write "$copy_conf" "$repo" \
    "pg_conninfo = $(wk_conf_quote "host=$(wk_cluster_sockdir "$copy") port=$(wk_cluster_port "$copy") dbname=postgres")" \
    "pg_bindir = $WK_PGBIN"
wk_assert_status 0 "walkeep-basebackup of timeline 2" -- \
    wk_run_as_postgres timeout -k 10 240 "$basebackup_bin" --config "$copy_conf"
k4=$((RANDOM % (new2 - 2) + 1))
t4=$(sed -n "${k4}p" "$work/commits2" | cut -d' ' -f2)
TZ=Asia/Tokyo restore_check "a zone-less time on timeline 2 in the newest backup's zone (Los Angeles, TZ Tokyo)" \
    "$conf" "$((rows_tick_two + k4))" --target-time="$(local_time "$t4" America/Los_Angeles)"
restore_check "a restore point on timeline 2" "$conf" "$rows_tick_three" --target-name="tick three"
# On timeline 1, past the branch: only with --target-timeline=1.
k5=$((rows_tick_two + 1 + RANDOM % (total - rows_tick_two - 1)))
t5=$(pick "$k5")
restore_check "a time on timeline 1 after the branch (--target-timeline=1)" "$conf" "$k5" \
    --target-time="$(local_time "$t5" Asia/Tokyo)" --timezone=Asia/Tokyo --target-timeline=1
info_json "$conf" "$work/info2.json"
wk_assert_eq '["tick one", "tick two", "tick three"]' "$(py "$work/info2.json" '[p["name"] for p in w(2)["restore_points"]]')" \
    "info --json: timeline 2's window holds the restore points on its way"
wk_assert_eq '[1, 1, 2]' "$(py "$work/info2.json" '[p["timeline"] for p in w(2)["restore_points"]]')" \
    "info --json: each restore point's timeline"
wk_cluster_stop "$copy" || true

wk_done
