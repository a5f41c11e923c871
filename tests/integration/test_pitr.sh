#!/usr/bin/env bash
# test_pitr.sh: base backups (walkeep-basebackup) and point-in-time restore
# (pitr-restore) against a real PostgreSQL (15 to 18: WK_PG_MAJOR, lib.sh).
#
# One primary archives through walkeep-archive into an encrypted repository.
# walkeep-basebackup takes backups of it; then accidents happen and
# pitr-restore brings the data back into fresh data directories, which the
# test starts as an operator would (own port and socket, archive_mode off),
# waits for the promotion and compares rows. In order of value:
#   1. --target-time: a DELETE after the noted time is undone
#   2. --target-name: a restore point before a DROP TABLE
#   3. --target-xid (inclusive, and --target-inclusive=false)
#   4. --target-lsn
#   5. --target-immediate: the state at the end of the backup
#   6. a tablespace, relocated with --tablespace-map; the newest backup that
#      ended before the target is chosen (and the older one for an older target)
#   9. walkeep info --json: complete backups with their LSNs, WAL without gaps; each
#      backup's story in text and JSON (type, duration, sizes with units, the WAL it
#      needs from start to stop)
#   7. timelines: a restore to the end of the archive becomes timeline 2 and
#      archives into the same repository; the original (timeline 1) backup then
#      recovers along timeline 2 to a time on it
#   8. refusals, each leaving the data directory as it was: not empty, target
#      before the oldest backup, a missing WAL segment (on a copy of the
#      repository; walkeep info then reports the gap), a corrupt backup object
#      (on another copy), a target LSN past the end of the archive; --start with
#      the pg_ctl of another major (9b)
#  10. --start: pitr-restore starts the restored cluster itself (once, last,
#      when the primary is stopped so that its port is free)
# With WK_REPO_KIND=s3 the repositories are on S3 (lib.sh), with 1 MB parts so that
# the backups go through multipart uploads.
#
# Run: WALKEEP_BIN=<build dir> WALKEEP_SRC=<source dir> bash test_pitr.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status and wk_on_exit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RESTORE_TIMEOUT=180  # seconds for one pitr-restore (choose, prove, lay down)
RECOVERY_TIMEOUT=120 # seconds for a restored cluster to start, replay and promote
ARCHIVE_TIMEOUT=90   # seconds for the archiver to archive a switched segment
BACKUP_TIMEOUT=240   # seconds for one walkeep-basebackup

archive_bin=$(wk_bin walkeep-archive)
fetch_bin=$(wk_bin walkeep-fetch) # pitr-restore writes it into restore_command
admin_bin=$(wk_bin walkeep)
basebackup_bin=$(wk_bin walkeep-basebackup)
pitr_bin=$(wk_bin pitr-restore)
: "$fetch_bin"

# ---------------------------------------------------------------------------
# helpers

# pitr CONF DIR ARGS...: pitr-restore as postgres, bounded.
pitr() {
    local c=$1 d=$2
    shift 2
    wk_run_as_postgres timeout -k 10 "$RESTORE_TIMEOUT" "$pitr_bin" --config "$c" --pgdata "$d" "$@"
}

# basebackup ARGS...: walkeep-basebackup as postgres, bounded.
basebackup() {
    wk_run_as_postgres timeout -k 10 "$BACKUP_TIMEOUT" "$basebackup_bin" --config "$conf" "$@"
}

# info_json CONF FILE: walkeep info --json into FILE; returns its status.
info_json() {
    wk_run_as_postgres timeout -k 5 60 "$admin_bin" info --json --config "$1" >"$2" 2>"$2.err"
}

# info_text CONF FILE: walkeep info (text) into FILE; returns its status.
info_text() {
    wk_run_as_postgres timeout -k 5 60 "$admin_bin" info --config "$1" >"$2" 2>"$2.err"
}

# jq_py FILE EXPR: evaluates a Python expression over the JSON document j of
# FILE and prints the result (lists, dicts, booleans as JSON), or "<error: ...>".
# b(LABEL) is that backup, tl(N) that timeline's "wal" entry (None if absent),
# lsn(S) an LSN as an integer.
jq_py() {
    python3 - "$1" "$2" <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as f:
        j = json.load(f)
    def b(label):
        return next(x for x in j["backups"] if x["label"] == label)
    def tl(n):
        return next((x for x in j["wal"] if int(x["timeline"]) == n), None)
    def lsn(s):
        hi, lo = s.split("/")
        return (int(hi, 16) << 32) | int(lo, 16)
    r = eval(sys.argv[2])
    print(json.dumps(r) if isinstance(r, (list, dict, bool)) or r is None else r)
except Exception as e:  # the assertion that uses it reports the mismatch
    print("<error: %s: %s>" % (type(e).__name__, e))
PY
}

# lsn_norm LSN: the LSN as PostgreSQL prints it (%X/%X), "?" if it is not one.
lsn_norm() {
    if [[ $1 =~ ^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$ ]]; then
        printf '%X/%X\n' "$((16#${BASH_REMATCH[1]}))" "$((16#${BASH_REMATCH[2]}))"
    else
        printf '?\n'
    fi
}

# label_start DIR: START WAL LOCATION of the backup_label laid down in DIR.
label_start() {
    lsn_norm "$(awk '/^START WAL LOCATION:/ { print $4; exit }' "$1/backup_label" 2>/dev/null || true)"
}

# switch_and_wait DATADIR: switches WAL and waits until the switched segment is
# archived; prints its name.
switch_and_wait() { wk_switch_and_wait "$1" "$ARCHIVE_TIMEOUT"; }

# assert_absent_or_empty DIR MSG
assert_absent_or_empty() {
    if [[ ! -e $1 ]]; then
        wk_pass "$2 (not created)"
    elif [[ -d $1 && -z $(ls -A "$1") ]]; then
        wk_pass "$2 (left empty)"
    else
        wk_fail "$2" "expected $1 absent or empty" "got: $(find "$1" -maxdepth 2 | head -n 10)"
    fi
}

# assert_error_line MSG: $WK_ERR has exactly one "pitr-restore: error: ..." line
# (info, detail and hint lines may come with it).
assert_error_line() {
    local n
    n=$(grep -c '^pitr-restore: error: ' "$WK_ERR" || true)
    if [[ $n == 1 ]]; then
        wk_pass "$1"
        grep '^pitr-restore: error: ' "$WK_ERR" | sed 's/^/# /' || true
    else
        wk_fail "$1" "expected one stderr line \"pitr-restore: error: ...\", got $n" "stderr: $(head -c 1000 "$WK_ERR")"
    fi
}

# backup_history: "START STOP" LSNs of the newest backup history file in the
# primary's pg_wal (written by the server at the end of each base backup; the
# truth that walkeep's records are compared with).
backup_history() {
    local f
    f=$(find "$pg/pg_wal" -maxdepth 1 -name '*.backup' | sort | tail -n 1)
    if [[ -z $f ]]; then
        echo "? ?"
        return
    fi
    printf '%s %s\n' "$(lsn_norm "$(awk '/^START WAL LOCATION:/ { print $4 }' "$f")")" \
        "$(lsn_norm "$(awk '/^STOP WAL LOCATION:/ { print $4 }' "$f")")"
}

# sum_sql TABLE: "count sum(v)" of a table.
sum_sql() { printf "select count(*) || ' ' || coalesce(sum(v), 0) from %s" "$1"; }

# restore_and_start NAME WHAT TARGET_ERE [pitr-restore args...]: restores into a
# fresh data dir ($restored) with $conf, checks what was laid down (TARGET_ERE:
# a line expected in postgresql.auto.conf, empty for none), records the
# backup_label's start ($restored_start), then gives the dir its own port and
# socket, appends the settings in $RESTORED_CONF, starts it and waits until
# recovery has ended. Returns 1 (after counting a failure) if any step failed.
RESTORED_CONF=("archive_mode = off")
restored=
restored_start=
restore_and_start() {
    local name=$1 what=$2 target_ere=$3 dir
    shift 3
    dir=$(wk_cluster_path "$name") || return 1
    restored=$dir
    restored_start=
    wk_assert_status 0 "$what: pitr-restore succeeds" -- pitr "$conf" "$dir" "$@"
    ((WK_STATUS == 0)) || return 1
    restored_start=$(label_start "$dir")
    wk_assert_file "$dir/recovery.signal" "$what: recovery.signal is written"
    wk_assert_no_file "$dir/standby.signal" "$what: no standby.signal"
    wk_assert_eq "700 $WK_PG_USER" "$(stat -c '%a %U' "$dir" 2>&1)" \
        "$what: the data dir is mode 0700 and belongs to the user who ran pitr-restore"
    wk_assert_contains "$dir/postgresql.auto.conf" "^restore_command *= *'.*walkeep-fetch.*%f.*%p" \
        "$what: postgresql.auto.conf has a restore_command through walkeep-fetch"
    if [[ " $* " == *" --target-action=promote "* ]]; then
        wk_assert_contains "$dir/postgresql.auto.conf" "^recovery_target_action *= *'promote'" \
            "$what: postgresql.auto.conf has recovery_target_action = 'promote'"
    fi
    if [[ -n $target_ere ]]; then
        wk_assert_contains "$dir/postgresql.auto.conf" "$target_ere" \
            "$what: postgresql.auto.conf has /$target_ere/"
    fi
    wk_cluster_adopt "$dir" || return 1
    wk_cluster_conf "$dir" "${RESTORED_CONF[@]}" || return 1
    if ! WK_START_TIMEOUT=$RECOVERY_TIMEOUT wk_cluster_start "$dir"; then
        wk_fail "$what: the restored cluster starts" "see the server log above"
        return 1
    fi
    if wk_wait_for_sql "the end of recovery of $dir" "$RECOVERY_TIMEOUT" "$dir" \
        "select pg_is_in_recovery()" f; then
        wk_pass "$what: the restored cluster recovers and promotes"
    else
        wk_fail "$what: the restored cluster recovers and promotes" \
            "still in recovery after ${RECOVERY_TIMEOUT}s"
        wk_cluster_log_tail "$restored"
        return 1
    fi
}

# finish_restored WHAT: checks the restored cluster's log, stops it and removes it.
finish_restored() {
    local log
    log=$(wk_cluster_log "$restored")
    wk_assert_not_contains "$log" '(FATAL|PANIC):|walkeep-fetch: error' \
        "$1: the restored cluster's log has no FATAL, PANIC or walkeep-fetch error"
    wk_cluster_stop "$restored" || true
    [[ ${WK_KEEP_TMP:-0} == 1 ]] || rm -rf -- "$restored"
}

# q SQL: a query on the restored cluster (errors as output, never fatal).
q() { wk_psql "$restored" "$1" 2>&1 || true; }

# ---------------------------------------------------------------------------
# setup: key, primary, configuration

work=$(wk_tmpdir walkeep)
repo=$(wk_repo_new repo "$work")
key=$work/repo.key
conf=$work/walkeep.conf
[[ $(wk_repo_kind) != posix ]] || wk_run_as_postgres mkdir -m 0700 "$repo"
wk_run_as_postgres "$admin_bin" keygen "$key" >"$work/keygen.log" 2>&1 ||
    { cat "$work/keygen.log" >&2; wk_bail "walkeep keygen failed"; }

pg=$(wk_cluster_init primary --data-checksums)
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")

# write_conf FILE REPO
write_conf() {
    local s3_conf=()
    [[ $(wk_repo_kind) != s3 ]] || s3_conf=("s3_part_size = 1MB")
    wk_repo_conf_write "$1" "$2" \
        "encrypt_key_file = $key" \
        "pg_conninfo = $(wk_conf_quote "host=$sock port=$port dbname=postgres")" \
        "pg_bindir = $WK_PGBIN" \
        "${s3_conf[@]}"
}
write_conf "$conf" "$repo"

archive_command="\"$archive_bin\" --config \"$conf\" %p"
wk_cluster_conf "$pg" \
    "wal_level = replica" \
    "archive_mode = on" \
    "archive_command = $(wk_conf_quote "$archive_command")" \
    "archive_timeout = 0" \
    "max_wal_size = 1GB" \
    "checkpoint_timeout = 1h"
wk_cluster_start "$pg"

# Rows that exist before the first backup.
wk_psql "$pg" "create table pre as select g as id, g * 3 as v from generate_series(1, 100) as g" >/dev/null
pre_rows="100 $((3 * 100 * 101 / 2))"
t0=$(wk_psql "$pg" "select clock_timestamp()")
sleep 1.1

# ---------------------------------------------------------------------------
# backup 1 (default label)

wk_assert_status 0 "walkeep-basebackup takes a backup (default label)" -- basebackup --checkpoint=fast
((WK_STATUS == 0)) || wk_bail "no base backup, nothing else can be tested"
b1=$(cat "$WK_OUT")
wk_assert_eq 1 "$(wc -l <"$WK_OUT")" "walkeep-basebackup prints one line on stdout"
if [[ $b1 =~ ^[0-9]{8}T[0-9]{6}Z$ ]]; then
    wk_pass "the default label is the UTC start time ($b1)"
else
    wk_fail "the default label is the UTC start time" "expected: like 20261125T093012Z" "     got: $b1"
fi
[[ -n $b1 && $b1 != */* ]] || wk_bail "unusable backup label \"$b1\""
wk_assert_repo_file "$repo" "backups/$b1" "the backup is stored under backups/<label>/"

# The server's backup history file says where it starts and stops; walkeep
# info must say the same, and the stop segment must already be archived.
read -r b1_start b1_stop < <(backup_history)
wk_assert_ne "?" "$b1_stop" "the server wrote a backup history file ($b1_start - $b1_stop)"
info_json "$conf" "$work/info1.json" || true
wk_assert_eq "complete $b1_start $b1_stop" \
    "$(jq_py "$work/info1.json" "b('$b1')['status']") $(lsn_norm "$(jq_py "$work/info1.json" "b('$b1')['start_lsn']")") $(lsn_norm "$(jq_py "$work/info1.json" "b('$b1')['stop_lsn']")")" \
    "9. walkeep info --json lists the backup as complete with its start and stop LSN"
b1_stopseg=
if [[ $b1_stop != "?" ]]; then
    b1_stopseg=$(wk_psql "$pg" "select pg_walfile_name('$b1_stop')")
    if wk_repo_wal_objects "$repo" | grep -qF -- "/$b1_stopseg-"; then
        wk_pass "when walkeep-basebackup returns, its stop segment $b1_stopseg is archived"
    else
        wk_fail "when walkeep-basebackup returns, its stop segment $b1_stopseg is archived" \
            "no object $repo/wal/*/$b1_stopseg-*"
    fi
fi

# The backup's story: its type, how long it took, its sizes, and the WAL it needs from
# its start to its stop (the segments the server names for those points).
what="9. walkeep info tells the backup's story"
b1_startseg=$(wk_psql "$pg" "select file_name from pg_walfile_name_offset('$b1_start')")
wk_assert_eq "full" "$(jq_py "$work/info1.json" "b('$b1')['type']")" "$what: --json type is full"
wk_assert_eq "${b1_startseg:-?} ${b1_stopseg:-?}" \
    "$(jq_py "$work/info1.json" "b('$b1')['wal_start_segment'] + ' ' + b('$b1')['wal_stop_segment']")" \
    "$what: --json names the segments of its start and stop points"
wk_assert_eq true \
    "$(jq_py "$work/info1.json" "(lambda x, per: x['wal_segments'] == (int(x['wal_stop_segment'][8:16], 16) * per + int(x['wal_stop_segment'][16:], 16)) - (int(x['wal_start_segment'][8:16], 16) * per + int(x['wal_start_segment'][16:], 16)) + 1)(b('$b1'), 0x100000000 // j['wal_segment_size'])")" \
    "$what: --json counts the segments from start to stop"
wk_assert_eq true \
    "$(jq_py "$work/info1.json" "(lambda x: __import__('datetime').datetime.strptime(x['stop_time'], '%Y-%m-%d %H:%M:%S+00') - __import__('datetime').datetime.strptime(x['start_time'], '%Y-%m-%d %H:%M:%S+00'))(b('$b1')).total_seconds() == b('$b1')['duration_seconds'] >= 0")" \
    "$what: --json duration_seconds is its stop time minus its start time"
wk_assert_eq true \
    "$(jq_py "$work/info1.json" "b('$b1')['bytes'] > 0 and 0 < b('$b1')['stored_bytes'] and b('$b1')['stop_timeline'] == 1")" \
    "$what: --json sizes in bytes and the stop timeline"
info_text "$conf" "$work/info1.txt" || true
# (times hold "+", an ERE operator)
b1_start_time=$(jq_py "$work/info1.json" "b('$b1')['start_time']" | sed 's/[+.]/\\&/g')
b1_stop_time=$(jq_py "$work/info1.json" "b('$b1')['stop_time']" | sed 's/[+.]/\\&/g')
size_re='[0-9.]+ (B|KiB|MiB|GiB|TiB)'
wk_assert_contains "$work/info1.txt" "^  $b1  full  complete  $size_re \\(stored $size_re\\) in [0-9]+ (s|min [0-9]+ s)\$" \
    "$what: its line gives type, status, both sizes with their units and the duration"
wk_assert_contains "$work/info1.txt" "^    WAL from $b1_start_time  LSN $b1_start  ${b1_startseg:-?}\$" \
    "$what: the WAL it needs starts at its start (time, LSN, segment)"
wk_assert_contains "$work/info1.txt" "^          to $b1_stop_time  LSN $b1_stop  ${b1_stopseg:-?}\$" \
    "$what: and ends at its stop (time, LSN, segment)"
wk_assert_contains "$work/info1.txt" "^repository .*, PostgreSQL [0-9]+, $size_re WAL segments, encrypted\$" \
    "$what: the segment size with its unit"

# ---------------------------------------------------------------------------
# the accidents, each after a noted target

# A: rows, a noted time, then DELETE. s1 is the segment of the inserts, after
# the backup's stop segment (the segment-deletion refusal removes it later).
wk_psql "$pg" "select pg_switch_wal()" >/dev/null
wk_psql "$pg" "create table t (id int primary key, v int);
               insert into t select g, g * 7 from generate_series(1, 1000) as g" >/dev/null
t_rows="1000 $((7 * 1000 * 1001 / 2))"
s1=$(wk_psql "$pg" "select pg_walfile_name(pg_current_wal_lsn())")
wk_psql "$pg" "select pg_switch_wal()" >/dev/null
sleep 1.1
t_a=$(wk_psql "$pg" "select clock_timestamp()")
sleep 1.1
wk_psql "$pg" "delete from t" >/dev/null

# B: a restore point, then DROP TABLE.
wk_psql "$pg" "create table t_name as select g as id, g * 11 as v from generate_series(1, 500) as g" >/dev/null
name_rows="500 $((11 * 500 * 501 / 2))"
wk_psql "$pg" "select pg_create_restore_point('before_drop')" >/dev/null
wk_psql "$pg" "drop table t_name" >/dev/null

# C: rows inserted by transaction x, deleted by a later one.
wk_psql "$pg" "create table t_xid (id int, v int)" >/dev/null
x=$(wk_psql "$pg" "insert into t_xid select g, g * 13 from generate_series(1, 300) as g;
                   select txid_current()" | tail -n 1)
xid_rows="300 $((13 * 300 * 301 / 2))"
wk_psql "$pg" "delete from t_xid" >/dev/null

# D: rows, the insert LSN after their commit, then DROP TABLE.
wk_psql "$pg" "create table t_lsn as select g as id, g * 17 as v from generate_series(1, 200) as g" >/dev/null
lsn_rows="200 $((17 * 200 * 201 / 2))"
l=$(wk_psql "$pg" "select pg_current_wal_insert_lsn()")
wk_psql "$pg" "drop table t_lsn" >/dev/null
wk_psql "$pg" "insert into pre select g, 0 from generate_series(101, 150) as g" >/dev/null
last_tl1=$(switch_and_wait "$pg")
echo "# backup $b1 ($b1_start - $b1_stop); targets: time $t_a, xid $x, lsn $l; last archived $last_tl1"

# ---------------------------------------------------------------------------
# 1. by time: the DELETE is undone

what="1. --target-time"
if restore_and_start r_time "$what" "^recovery_target_time *= *'" \
    --target-time "$t_a" --target-action=promote; then
    wk_assert_eq "$t_rows" "$(q "$(sum_sql t)")" "$what: t has its 1000 rows back (count, sum)"
    wk_assert_eq "$pre_rows" "$(q "$(sum_sql pre)")" "$what: the rows from before the backup are there"
    wk_assert_eq t "$(q "select to_regclass('t_name') is null")" "$what: later tables are absent"
    wk_assert_contains "$(wk_cluster_log "$restored")" 'recovery stopping before commit of transaction' \
        "$what: PostgreSQL stopped before the DELETE's commit"
    finish_restored "$what"
fi

# 2. by restore point name
what="2. --target-name"
if restore_and_start r_name "$what" "^recovery_target_name *= *'before_drop'" \
    --target-name=before_drop --target-action=promote; then
    wk_assert_eq "$name_rows" "$(q "$(sum_sql t_name)")" "$what: the dropped table is back with its rows"
    wk_assert_eq "0 0" "$(q "$(sum_sql t)")" "$what: the earlier DELETE stays applied"
    wk_assert_contains "$(wk_cluster_log "$restored")" 'recovery stopping at restore point "before_drop"' \
        "$what: PostgreSQL stopped at the restore point"
    finish_restored "$what"
fi

# 3. by xid, inclusive (default) and not
what="3. --target-xid"
if restore_and_start r_xid "$what" "^recovery_target_xid *= *'?$x'?" \
    --target-xid "$x" --target-action=promote; then
    wk_assert_eq "$xid_rows" "$(q "$(sum_sql t_xid)")" "$what: the rows of transaction $x are there"
    wk_assert_contains "$(wk_cluster_log "$restored")" "recovery stopping after commit of transaction $x" \
        "$what: PostgreSQL stopped after the commit of $x"
    finish_restored "$what"
fi
what="3b. --target-xid --target-inclusive=false"
if restore_and_start r_xid_excl "$what" "^recovery_target_inclusive *= *'?(false|off)'?" \
    --target-xid="$x" --target-inclusive=false --target-action=promote; then
    wk_assert_eq "0 0" "$(q "$(sum_sql t_xid)")" "$what: transaction $x is not applied"
    wk_assert_contains "$(wk_cluster_log "$restored")" "recovery stopping before commit of transaction $x" \
        "$what: PostgreSQL stopped before the commit of $x"
    finish_restored "$what"
fi

# 4. by LSN
what="4. --target-lsn"
if restore_and_start r_lsn "$what" "^recovery_target_lsn *= *'" \
    --target-lsn "$l" --target-action=promote; then
    wk_assert_eq "$lsn_rows" "$(q "$(sum_sql t_lsn)")" "$what: the dropped table is back with its rows"
    wk_assert_contains "$(wk_cluster_log "$restored")" 'recovery stopping after WAL location' \
        "$what: PostgreSQL stopped at the LSN"
    finish_restored "$what"
fi

# 5. immediate: the end of the backup
what="5. --target-immediate"
if restore_and_start r_immediate "$what" "^recovery_target *= *'immediate'" \
    --target-immediate --target-action=promote; then
    wk_assert_eq "$b1_start" "$restored_start" "$what: backup $b1 was laid down (backup_label START WAL LOCATION)"
    wk_assert_eq "$pre_rows" "$(q "$(sum_sql pre)")" "$what: the rows of the backup are there, later ones not"
    wk_assert_eq t "$(q "select to_regclass('t') is null")" "$what: tables created after the backup are absent"
    wk_assert_contains "$(wk_cluster_log "$restored")" 'recovery stopping after reaching consistency' \
        "$what: PostgreSQL stopped at consistency"
    finish_restored "$what"
fi

# ---------------------------------------------------------------------------
# 6. a tablespace, a second backup, a restore that relocates the tablespace

old_ts=$(wk_tmpdir ts-old)
wk_psql "$pg" "create tablespace ts location '$old_ts'" >/dev/null
wk_psql "$pg" "create table tts tablespace ts as
               select g as id, g * 19 as v from generate_series(1, 400) as g" >/dev/null
b2=tblspc-b2
# --pgdata: the data files, the tablespace's too, are read ahead of the server.
wk_assert_status 0 "walkeep-basebackup takes a backup with a tablespace (--label $b2)" -- \
    basebackup --label "$b2" --checkpoint=fast --pgdata="$pg" --log-level=debug
wk_assert_contains "$WK_ERR" "debug: read [1-9][0-9]* bytes of the data directory ahead" \
    "it reads the data files ahead of the server"
have_b2=$((WK_STATUS == 0))
wk_assert_eq "$b2" "$(cat "$WK_OUT")" "walkeep-basebackup prints the label it was given"
read -r b2_start b2_stop < <(backup_history)
wk_psql "$pg" "insert into tts select g, g * 19 from generate_series(401, 500) as g" >/dev/null
tts_rows="500 $((19 * 500 * 501 / 2))"
sleep 1.1
t6=$(wk_psql "$pg" "select clock_timestamp()")
sleep 1.1
wk_psql "$pg" "delete from tts where id <= 100" >/dev/null
tts_end_rows="400 $((19 * 500 * 501 / 2 - 19 * 100 * 101 / 2))"
last_tl1=$(switch_and_wait "$pg")


what="6. tablespace"
new_ts=$(wk_tmpdir ts-new)
if ((have_b2)) && restore_and_start r_tblspc "$what" "^recovery_target_time *= *'" \
    --target-time="$t6" --target-action=promote --tablespace-map "$old_ts=$new_ts"; then
    wk_assert_eq "$b2_start" "$restored_start" \
        "$what: the newest backup that ended before the target ($b2) was chosen"
    wk_assert_eq "$tts_rows" "$(q "$(sum_sql tts)")" "$what: the table in the tablespace is readable, with all its rows"
    wk_assert_eq "$new_ts" "$(q "select pg_tablespace_location(oid) from pg_tablespace where spcname = 'ts'")" \
        "$what: pg_tablespace_location() is the mapped folder"
    relpath=$(q "select pg_relation_filepath('tts')")
    real=$(readlink -f "$restored/$relpath" || true)
    if [[ -f $real && $real == "$new_ts"/* ]]; then
        wk_pass "$what: the table's file lives under the mapped folder"
    else
        wk_fail "$what: the table's file lives under the mapped folder" \
            "expected: $new_ts/..." "     got: $restored/$relpath -> ${real:-?}"
    fi
    wk_assert_eq "$tts_end_rows" "$(wk_psql "$pg" "$(sum_sql tts)" 2>&1)" \
        "$what: the primary's table in the original folder is unaffected"
    finish_restored "$what"
fi

# An older target still gets the older backup (laid down only, not started).
what="6b. backup choice"
d=$(wk_cluster_path r_choice)
wk_assert_status 0 "$what: pitr-restore to the first target succeeds" -- \
    pitr "$conf" "$d" --target-time "$t_a" --target-action=promote
wk_assert_eq "$b1_start" "$(label_start "$d")" \
    "$what: for a target before the second backup ended, the first backup ($b1) is laid down"
rm -rf -- "$d"

# ---------------------------------------------------------------------------
# 9. walkeep info --json

what="9. walkeep info --json"
info_json "$conf" "$work/info3.json" || true
wk_assert_eq object "$(jq_py "$work/info3.json" "'object' if isinstance(j, dict) else type(j).__name__")" \
    "$what: prints one JSON object"
wk_assert_eq "[\"$b1\", \"$b2\"]" \
    "$(jq_py "$work/info3.json" "sorted(x['label'] for x in j['backups'] if x['status'] == 'complete')")" \
    "$what: both backups are listed as complete"
wk_assert_eq "$b2_start $b2_stop" \
    "$(lsn_norm "$(jq_py "$work/info3.json" "b('$b2')['start_lsn']")") $(lsn_norm "$(jq_py "$work/info3.json" "b('$b2')['stop_lsn']")")" \
    "$what: backup $b2 has the start and stop LSN of the server's backup history file"
for lab in "$b1" "$b2"; do
    wk_assert_eq true \
        "$(jq_py "$work/info3.json" "int(b('$lab')['timeline']) == 1 and bool(b('$lab')['start_time']) and b('$lab')['start_time'] <= b('$lab')['stop_time']")" \
        "$what: backup $lab has timeline 1 and start/stop times"
done
wk_assert_eq "[]" "$(jq_py "$work/info3.json" "tl(1)['gaps']")" "$what: timeline 1 has no gaps"
wk_assert_eq true "$(jq_py "$work/info3.json" "tl(1)['ranges'][-1]['last'] >= '$last_tl1'")" \
    "$what: timeline 1's WAL reaches the last archived segment $last_tl1"

# ---------------------------------------------------------------------------
# 7. timelines. The primary is gone; a restore to the end of the archive takes
#    over, archiving into the same repository on timeline 2.

wk_cluster_stop "$pg"
what="7a. end of archive"
RESTORED_CONF=("archive_mode = on" "archive_command = $(wk_conf_quote "$archive_command")")
tl2=
if ((have_b2)) && restore_and_start r_tl2 "$what" "" \
    --backup "$b2" --tablespace-map "$old_ts=$(wk_tmpdir ts-tl2)"; then
    tl2=$restored
    wk_psql "$tl2" "checkpoint" >/dev/null
    wk_assert_eq 2 "$(q "select timeline_id from pg_control_checkpoint()")" "$what: the restored cluster is on timeline 2"
    wk_assert_eq "$tts_end_rows" "$(q "$(sum_sql tts)")" "$what: it has every change of the archive"
    wk_psql "$tl2" "create table t_tl2 as select g as id, g * 23 as v from generate_series(1, 250) as g" >/dev/null
    tl2_rows="250 $((23 * 250 * 251 / 2))"
    sleep 1.1
    t2=$(wk_psql "$tl2" "select clock_timestamp()")
    sleep 1.1
    wk_psql "$tl2" "drop table t_tl2" >/dev/null
    seg2=$(switch_and_wait "$tl2") || true
    wk_assert_eq 00000002 "${seg2:0:8}" "$what: timeline 2 segments are archived ($seg2)"
    wal_top=$(wk_repo_wal_objects "$repo" | awk -F/ 'NF == 2 { print $2 }')
    if grep -q '^00000002\.history' <<<"$wal_top"; then
        wk_pass "$what: 00000002.history is in the repository"
    else
        wk_fail "$what: 00000002.history is in the repository" "$wal_top"
    fi
    finish_restored "$what"
fi
RESTORED_CONF=("archive_mode = off")

what="7b. along timeline 2"
if [[ -n $tl2 ]] && restore_and_start r_t2 "$what" "^recovery_target_timeline *= *'?latest'?" \
    --target-time "$t2" --target-action=promote --tablespace-map "$old_ts=$(wk_tmpdir ts-t2)"; then
    wk_assert_eq "$b2_start" "$restored_start" "$what: the timeline 1 backup $b2 was laid down"
    wk_assert_eq "$tl2_rows" "$(q "$(sum_sql t_tl2)")" "$what: the rows written on timeline 2 are there"
    wk_psql "$restored" "checkpoint" >/dev/null 2>&1 || true
    wk_assert_eq 3 "$(q "select timeline_id from pg_control_checkpoint()")" \
        "$what: the restored cluster went on to timeline 3"
    finish_restored "$what"
fi

info_json "$conf" "$work/info4.json" || true
wk_assert_eq true "$(jq_py "$work/info4.json" "tl(2) is not None and len(tl(2)['ranges']) > 0")" \
    "9. walkeep info --json lists timeline 2's WAL"

# ---------------------------------------------------------------------------
# 8. refusals

what="8a. not empty"
d=$(wk_tmpdir nonempty)
echo "precious" >"$d/keep.txt"
[[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$d/keep.txt"
keep_sum=$(sha256sum <"$d/keep.txt")
wk_assert_status 1 "$what: pitr-restore into a non-empty folder exits 1" -- \
    pitr "$conf" "$d" --target-time "$t_a" --target-action=promote
assert_error_line "$what: one error line"
wk_assert_contains "$WK_ERR" 'not empty' "$what: the message says \"not empty\""
wk_assert_eq "keep.txt $keep_sum" "$(ls -A "$d") $(sha256sum <"$d/keep.txt")" \
    "$what: the folder's content is untouched"

what="8b. before the oldest backup"
d=$(wk_cluster_path r_before)
wk_assert_status 1 "$what: a target time before the end of the oldest backup exits 1" -- \
    pitr "$conf" "$d" --target-time "$t0" --target-action=promote
assert_error_line "$what: one error line"
wk_assert_contains "$WK_ERR" 'before' "$what: the message says \"before\""
assert_absent_or_empty "$d" "$what: the data dir is untouched"

# A segment missing between the first backup and the first target: on a copy
# of the repository, which keeps the original whole.
what="8c. missing segment"
repo_gap=$(wk_repo_new repo-gap "$work")
conf_gap=$work/walkeep-gap.conf
wk_repo_copy "$repo" "$repo_gap"
write_conf "$conf_gap" "$repo_gap"
if [[ -n $b1_stopseg && $s1 > $b1_stopseg && $s1 < $last_tl1 ]]; then
    wk_pass "$what: $s1 lies strictly between the backup's stop segment $b1_stopseg and $last_tl1"
else
    wk_fail "$what: $s1 lies strictly between the backup's stop segment ${b1_stopseg:-?} and $last_tl1"
fi
mapfile -t objs < <(wk_repo_wal_objects "$repo_gap" | grep -F -- "/$s1-" || true)
wk_assert_eq 1 "${#objs[@]}" "$what: the repository holds one object for $s1"
wk_repo_rm "$repo_gap" "${objs[@]}"
d=$(wk_cluster_path r_gap)
wk_assert_status 1 "$what: pitr-restore exits 1 when $s1 is missing" -- \
    pitr "$conf_gap" "$d" --target-time "$t_a" --target-action=promote
assert_error_line "$what: one error line"
wk_assert_contains "$WK_ERR" "$s1" "$what: the message names $s1"
wk_assert_contains "$WK_ERR" 'missing' "$what: the message says \"missing\""
assert_absent_or_empty "$d" "$what: the data dir is untouched"
info_json "$conf_gap" "$work/info-gap.json" || true
wk_assert_eq "[\"$s1\"]" "$(jq_py "$work/info-gap.json" "tl(1)['gaps']")" \
    "9. walkeep info --json names the deleted segment as timeline 1's gap"
# The gap does not matter to the second backup.
d=$(wk_cluster_path r_gap_ok)
wk_assert_status 0 "$what: a restore from the later backup $b2 to a later target still succeeds" -- \
    pitr "$conf_gap" "$d" --target-time "$t6" --target-action=promote \
    --tablespace-map "$old_ts=$(wk_tmpdir ts-gap)"
rm -rf -- "$d"

# An object moved under another segment's name (the next segment's object renamed to
# $s1's, its fingerprint and all): the pre-flight proof sees every name, but walkeep-fetch
# proves what the object decodes to and refuses it, so PostgreSQL stops recovery with an
# error instead of ending it early at the wrong point and promoting.
what="8f. swapped segment"
repo_swap=$(wk_repo_new repo-swap "$work")
conf_swap=$work/walkeep-swap.conf
wk_repo_copy "$repo" "$repo_swap"
write_conf "$conf_swap" "$repo_swap"
mapfile -t tl1_objs < <(wk_repo_wal_objects "$repo_swap" | awk -F/ 'NF == 3' |
    grep -E '/00000001[0-9A-F]{16}-' || true)
own=
next_obj=
for ((i = 0; i + 1 < ${#tl1_objs[@]}; i++)); do
    if [[ ${tl1_objs[$i]} == */"$s1"-* ]]; then
        own=${tl1_objs[$i]}
        next_obj=${tl1_objs[$((i + 1))]}
    fi
done
if [[ -n $own && -n $next_obj ]]; then
    next_base=${next_obj##*/}
    moved="${own%/*}/$s1-${next_base#*-}" # its fingerprint, time index and suffix
    wk_repo_cat "$repo_swap" "$next_obj" >"$work/swap.obj"
    wk_repo_rm "$repo_swap" "$own"
    wk_repo_put "$repo_swap" "$moved" <"$work/swap.obj"
    echo "# moved $next_obj to $moved"
    d=$(wk_cluster_path r_swap)
    # pitr-restore reads the segments whose records its proof needs (restore points, the
    # backup's end): it may meet the swapped object itself and refuse before writing;
    # else it lays the backup down and walkeep-fetch refuses the object during recovery.
    if pitr "$conf_swap" "$d" --target-time "$t_a" --target-action=promote >"$work/swap.out" 2>"$work/swap.err"; then
        wk_pass "$what: pitr-restore lays the backup down (every name is there)"
        wk_cluster_adopt "$d"
        wk_cluster_conf "$d" "${RESTORED_CONF[@]}"
        if WK_START_TIMEOUT=$RECOVERY_TIMEOUT wk_cluster_start "$d" 2>/dev/null; then
            wk_fail "$what: recovery stops at the swapped segment" "the server started and recovered"
            wk_cluster_stop "$d" immediate || true
        else
            wk_pass "$what: recovery stops at the swapped segment (the server does not come up)"
        fi
        swap_log=$(wk_cluster_log "$d")
        wk_assert_not_contains "$swap_log" "selected new timeline ID|archive recovery complete" \
            "$what: PostgreSQL never ended recovery nor promoted"
    else
        wk_pass "$what: pitr-restore refuses the swapped object while proving the target"
        swap_log=$work/swap.err
        assert_absent_or_empty "$d" "$what: nothing was written"
    fi
    # Encrypted (this repository): the object is bound to its place and fails authentication
    # first; plain: its page header names another segment.
    wk_assert_contains "$swap_log" "moved from another place than \"wal/[0-9A-F]*/$s1\"|does not hold WAL file \"$s1\"" \
        "$what: walkeep says the object is not $s1"
    rm -rf -- "$d"
else
    wk_fail "$what: $s1 and the segment after it are in the repository" "${#tl1_objs[@]} objects"
fi

# A target LSN beyond the end of the archive: the WAL cannot reach it.
what="8e. beyond the archive"
d=$(wk_cluster_path r_beyond)
wk_assert_status 1 "$what: a target LSN past the end of the archive (1/0) exits 1" -- \
    pitr "$conf" "$d" --target-lsn 1/0 --target-action=promote
assert_error_line "$what: one error line"
assert_absent_or_empty "$d" "$what: the data dir is untouched"

# Settings PostgreSQL would refuse at start: refused before anything is laid down.
what="8g. settings PostgreSQL refuses"
long_name=$(printf 'n%.0s' $(seq 1 64))
for bad in "--target-name=$long_name" "--target-xid=18446744073709551616" $'--target-name=before\ndrop'; do
    d=$(wk_cluster_path r_refused)
    wk_assert_status 1 "$what: pitr-restore refuses ${bad:0:30}..." -- \
        pitr "$conf" "$d" "$bad" --target-action=promote
    assert_error_line "$what: one error line"
    assert_absent_or_empty "$d" "$what: the data dir is untouched"
done

# A corrupt backup object: on another copy.
what="8d. corrupt backup"
repo_bad=$(wk_repo_new repo-bad "$work")
conf_bad=$work/walkeep-bad.conf
wk_repo_copy "$repo" "$repo_bad"
write_conf "$conf_bad" "$repo_bad"
read -r size victim < <(wk_repo_ls -s "$repo_bad" "backups/$b1" | sort -n | tail -n 1) || true
if [[ -n $victim ]]; then
    wk_repo_flip "$repo_bad" "$victim"
    echo "# flipped the byte at $((size / 2)) of $repo_bad/$victim ($size bytes)"
    d=$(wk_cluster_path r_bad)
    wk_assert_status 1 "$what: pitr-restore of a backup with a flipped byte exits 1" -- \
        pitr "$conf_bad" "$d" --backup "$b1" --target-immediate --target-action=promote
    assert_error_line "$what: one error line"
    assert_absent_or_empty "$d" "$what: nothing is left in the data dir"
    wk_assert_no_file "$d/recovery.signal" "$what: no recovery.signal"
else
    wk_fail "$what: the backup has objects under $repo_bad/backups/$b1"
fi

# ---------------------------------------------------------------------------
# 9b. --start with the pg_ctl of another major (pg_bindir of 15 for a backup of 16-18,
#     of 18 for one of 15): refused before anything is laid down.

what="9b. --start with another major's pg_ctl"
other_major=15
((WK_PG_MAJOR != 15)) || other_major=18
if other_bindir=$(wk_pg_bindir "$other_major"); then
    conf_other=$work/walkeep-other.conf
    write_conf "$conf_other" "$repo"
    printf 'pg_bindir = %s\n' "$other_bindir" >>"$conf_other"
    d=$(wk_cluster_path r_other)
    wk_assert_status 1 "$what: pitr-restore exits 1" -- \
        pitr "$conf_other" "$d" --backup "$b1" --target-immediate --target-action=promote --start
    assert_error_line "$what: one error line"
    wk_assert_contains "$WK_ERR" "^pitr-restore: error: pg_ctl $other_major\.[0-9]+ \(pg_bindir \"$other_bindir\"\) cannot start a data directory of PostgreSQL $WK_PG_MAJOR\$" \
        "$what: the error names both majors and pg_bindir"
    wk_assert_contains "$WK_ERR" "^pitr-restore: hint: set \"pg_bindir\" to the bin folder of PostgreSQL $WK_PG_MAJOR\$" \
        "$what: the hint says what to do"
    assert_absent_or_empty "$d" "$what: nothing is laid down"
else
    wk_fail "$what: PostgreSQL $other_major is installed (scripts/deps.sh)"
fi

# ---------------------------------------------------------------------------
# 10. --start, once: the restored cluster keeps the primary's port and socket
#     folder (from the backup's settings); the primary is stopped, so they are
#     free. It archives into the repository like the primary did (last test).

what="10. --start"
d=$(wk_cluster_path r_start)
stop_started() {
    if [[ -f $1/postmaster.pid ]]; then
        wk_run_as_postgres "$(wk_pgbin pg_ctl)" -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
}
wk_on_exit "stop_started '$d'"
wk_assert_status 0 "$what: pitr-restore --start succeeds" -- \
    pitr "$conf" "$d" --backup "$b1" --target-immediate --target-action=promote --start
if ((WK_STATUS == 0)); then
    # The primary's port and socket: wk_psql "$pg" reaches the started cluster.
    wk_assert_eq "$d|f" "$(wk_psql "$pg" "select current_setting('data_directory'), pg_is_in_recovery()" 2>&1)" \
        "$what: when it returns, the restored cluster runs and has left recovery"
    wk_assert_eq "$pre_rows" "$(wk_psql "$pg" "$(sum_sql pre)" 2>&1)" "$what: it has the backup's rows"
    wk_run_as_postgres "$(wk_pgbin pg_ctl)" -D "$d" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        wk_fail "$what: the started cluster stops"
fi

wk_done
