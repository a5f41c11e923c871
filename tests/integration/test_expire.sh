#!/usr/bin/env bash
# test_expire.sh: walkeep expire (retention) against a real PostgreSQL (15 to 18).
#
# A primary archives through walkeep-archive; four base backups are taken with WAL
# switched between them. With retention_full = 2:
#   1. --dry-run lists the two older backups and the WAL before the third one and
#      changes nothing (the repository listing is identical);
#   2. expire removes them: two backups remain, every WAL object before the start of
#      the older kept backup is gone, the rest is there;
#   3. a point-in-time restore inside the kept window works (restore, start, rows);
#   4. one to a time before the end of the older kept backup is refused ("before");
#   5. a second run has nothing to remove;
#   6. dumps (where pg_dump fits the server): retention_dumps = 1 keeps the newest dump of
#      each database and of the globals.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh), and what expire removed is
# checked by listing the bucket.
#
# Run: WALKEEP_BIN=<build dir> bash test_expire.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RESTORE_TIMEOUT=180
RECOVERY_TIMEOUT=120
ARCHIVE_TIMEOUT=90
BACKUP_TIMEOUT=240

archive_bin=$(wk_bin walkeep-archive)
fetch_bin=$(wk_bin walkeep-fetch) # pitr-restore writes it into restore_command
admin_bin=$(wk_bin walkeep)
basebackup_bin=$(wk_bin walkeep-basebackup)
pitr_bin=$(wk_bin pitr-restore)
: "$fetch_bin"

work=$(wk_tmpdir walkeep)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
[[ $(wk_repo_kind) != posix ]] || wk_run_as_postgres mkdir -m 0700 "$repo"

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = $(wk_conf_quote "host=$sock port=$port dbname=postgres")" \
    "pg_bindir = $WK_PGBIN" \
    "retention_full = 2"

wk_cluster_conf "$pg" \
    "wal_level = replica" \
    "archive_mode = on" \
    "archive_command = $(wk_conf_quote "\"$archive_bin\" --config \"$conf\" %p")" \
    "archive_timeout = 0"
wk_cluster_start "$pg"

walkeep() { wk_run_as_postgres timeout -k 5 120 "$admin_bin" --config "$conf" "$@"; }
basebackup() {
    wk_run_as_postgres timeout -k 10 "$BACKUP_TIMEOUT" "$basebackup_bin" --config "$conf" "$@"
}
pitr() {
    local d=$1
    shift
    wk_run_as_postgres timeout -k 10 "$RESTORE_TIMEOUT" "$pitr_bin" --config "$conf" --pgdata "$d" "$@"
}
switch_and_wait() { wk_switch_and_wait "$pg" "$ARCHIVE_TIMEOUT"; }
# Every file and folder of the repository with its size, sorted (s3: every object).
listing() {
    if [[ $(wk_repo_kind) == posix ]]; then
        (cd "$repo" && find . -printf '%p %s\n' | LC_ALL=C sort)
    else
        wk_repo_ls -s "$repo"
    fi
}
# The 24-character WAL names of the segment objects in the repository, sorted.
segments() {
    wk_repo_wal_objects "$repo" | awk -F/ 'NF >= 3 { print $NF }' |
        sed -n 's/^\([0-9A-F]\{24\}\)-.*/\1/p' | LC_ALL=C sort -u
}
# The backups in the repository (posix: every folder in backups/), sorted.
backup_folders() {
    if [[ $(wk_repo_kind) == posix ]]; then
        find "$repo/backups" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort
    else
        wk_repo_ls "$repo" backups | cut -d/ -f2 | LC_ALL=C sort -u
    fi
}
# count_wal ERE: how many objects in wal/ have a name matching ERE.
count_wal() { wk_repo_wal_objects "$repo" | awk -F/ -v re="$1" '$NF ~ re { n++ } END { print n + 0 }'; }
# Start LSN of a backup from walkeep info --json.
start_lsn() {
    walkeep info --json | python3 -c \
        'import json,sys; d=json.load(sys.stdin); print([b["start_lsn"] for b in d["backups"] if b["label"]==sys.argv[1]][0])' "$1"
}

# ---------------------------------------------------------------------------
# four backups, rows and WAL between them

wk_psql "$pg" "create table t (id int, phase int)" >/dev/null
labels=()
for i in 1 2 3 4; do
    wk_psql "$pg" "insert into t select g, $i from generate_series(1, 1000) g" >/dev/null
    switch_and_wait >/dev/null
    sleep 1.1 # default labels are start times, one per second
    wk_assert_status 0 "backup $i is taken" -- basebackup --checkpoint=fast
    ((WK_STATUS == 0)) || wk_bail "walkeep-basebackup failed: $(cat "$WK_ERR")"
    labels+=("$(cat "$WK_OUT")")
    if ((i == 2)); then
        sleep 1.1
        t_between=$(wk_psql "$pg" "select clock_timestamp()") # before backup 3 ends
        sleep 1.1
    fi
    if ((i == 3)); then
        wk_psql "$pg" "insert into t select g, 30 from generate_series(1, 500) g" >/dev/null
        sleep 1.1
        t_kept=$(wk_psql "$pg" "select clock_timestamp()") # after backup 3 ended
        sleep 1.1
        wk_psql "$pg" "delete from t where phase = 1" >/dev/null
    fi
    switch_and_wait >/dev/null
done
wk_psql "$pg" "insert into t select g, 5 from generate_series(1, 10) g" >/dev/null
last=$(switch_and_wait)
b1=${labels[0]} b2=${labels[1]} b3=${labels[2]} b4=${labels[3]}
echo "# backups: ${labels[*]}; last segment archived: $last"

b1_seg=$(wk_psql "$pg" "select pg_walfile_name('$(start_lsn "$b1")')")
b3_seg=$(wk_psql "$pg" "select pg_walfile_name('$(start_lsn "$b3")')")
# (A backup's start LSN is never a segment's first byte, where pg_walfile_name would
# name the segment before it: the page header comes first.)
echo "# backup $b1 starts in $b1_seg, $b3 in $b3_seg"
mapfile -t all_before < <(segments)
wk_assert_eq 1 "$(segments | grep -c -x "$b1_seg")" "the first backup's start segment is archived"

# ---------------------------------------------------------------------------
# 1. --dry-run

before=$(listing)
wk_assert_status 0 "1. expire --dry-run exits 0" -- walkeep expire --dry-run
wk_assert_contains "$WK_OUT" "^would remove backup $b1\$" "1. it names backup $b1"
wk_assert_contains "$WK_OUT" "^would remove backup $b2\$" "1. it names backup $b2"
wk_assert_not_contains "$WK_OUT" "backup ($b3|$b4)" "1. it does not name the two newest backups"
wk_assert_contains "$WK_OUT" \
    "^would remove WAL 000000010000000000000001 \.\. [0-9A-F]{24} \([0-9]+ segments(, [^)]*)?\)\$" \
    "1. it names one WAL range from the first segment"
wk_assert_eq 3 "$(grep -c '^would remove' "$WK_OUT")" "1. three lines: two backups and one WAL range"
echo "# dry run said:"
sed 's/^/#   /' "$WK_OUT"
wk_assert_eq "$before" "$(listing)" "1. the repository listing is identical after --dry-run"
# The segment before b3_seg (256 segments per log id with initdb's 16 MiB segments).
expected_last=$(python3 -c 'import sys; s=sys.argv[1]; p=int(s[8:16],16)*256+int(s[16:],16)-1; print("%s%08X%08X" % (s[:8], p // 256, p % 256))' "$b3_seg")
wk_assert_contains "$WK_OUT" "^would remove WAL .* \.\. $expected_last " \
    "1. the WAL range ends just before $b3_seg, where the older kept backup starts"

# ---------------------------------------------------------------------------
# 2. expire

wk_assert_status 0 "2. expire exits 0" -- walkeep expire
sed 's/^/#   /' "$WK_OUT"
wk_assert_contains "$WK_OUT" "^removed backup $b1\$" "2. it says backup $b1 was removed"
wk_assert_contains "$WK_OUT" "^removed backup $b2\$" "2. it says backup $b2 was removed"
wk_assert_contains "$WK_OUT" "^removed WAL " "2. it says WAL was removed"
wk_assert_eq "$b3 $b4" "$(backup_folders | tr '\n' ' ' | sed 's/ $//')" \
    "2. two backups remain: $b3 and $b4"
wk_assert_eq "complete complete" \
    "$(walkeep info --json | python3 -c 'import json,sys; print(" ".join(b["status"] for b in json.load(sys.stdin)["backups"]))')" \
    "2. walkeep info lists both as complete"
mapfile -t after < <(segments)
older=0 kept_from=0
for s in "${after[@]}"; do
    [[ $s < $b3_seg ]] && older=$((older + 1))
done
for s in "${all_before[@]}"; do
    [[ $s < $b3_seg ]] || kept_from=$((kept_from + 1))
done
wk_assert_eq 0 "$older" "2. no segment before $b3_seg is left"
wk_assert_eq "$kept_from" "${#after[@]}" "2. every segment from $b3_seg on is still there (${#after[@]})"
wk_assert_eq 1 "$(segments | grep -c -x "$b3_seg")" "2. the older kept backup's start segment $b3_seg is there"
wk_assert_eq 0 "$(segments | grep -c -x "$b1_seg")" "2. the first backup's start segment $b1_seg is gone"
wk_assert_eq 0 "$(count_wal "^${b1_seg}[.].*[.]backup-")" \
    "2. the first backup's .backup file is gone"
wk_assert_eq 1 "$(count_wal "^${b3_seg}[.].*[.]backup-")" \
    "2. the older kept backup's .backup file is there"

# ---------------------------------------------------------------------------
# 3. a restore inside the kept window

what="3. restore to a time after $b3 ended"
d=$(wk_cluster_path restored)
wk_assert_status 0 "$what: pitr-restore succeeds" -- pitr "$d" --target-time "$t_kept" --target-action=promote
if ((WK_STATUS == 0)); then
    wk_cluster_adopt "$d"
    wk_cluster_conf "$d" "archive_mode = off"
    if WK_START_TIMEOUT=$RECOVERY_TIMEOUT wk_cluster_start "$d" &&
        wk_wait_for_sql "the end of recovery" "$RECOVERY_TIMEOUT" "$d" "select pg_is_in_recovery()" f; then
        wk_pass "$what: the restored cluster recovers and promotes"
        wk_assert_eq "1000 1000 1000 500 0" \
            "$(wk_psql "$d" "select count(*) filter (where phase = 1), count(*) filter (where phase = 2),
                                    count(*) filter (where phase = 3), count(*) filter (where phase = 30),
                                    count(*) filter (where phase > 30 or phase = 4) from t" | tr '|' ' ')" \
            "$what: the rows up to the target are there, the DELETE after it is not applied"
        wk_assert_not_contains "$(wk_cluster_log "$d")" '(FATAL|PANIC):|walkeep-fetch: error' \
            "$what: the server log has no FATAL, PANIC or walkeep-fetch error"
        wk_cluster_stop "$d" || true
    else
        wk_fail "$what: the restored cluster recovers and promotes"
        wk_cluster_log_tail "$d"
    fi
fi

# ---------------------------------------------------------------------------
# 4. a restore to before the older kept backup's end

what="4. restore to a time before $b3 ended"
d=$(wk_cluster_path refused)
wk_assert_status 1 "$what: pitr-restore exits 1" -- pitr "$d" --target-time "$t_between" --target-action=promote
wk_assert_contains "$WK_ERR" "^pitr-restore: error: .*before" "$what: the message says \"before\""
sed 's/^/#   /' "$WK_ERR"
if [[ ! -e $d || -z $(ls -A "$d" 2>/dev/null) ]]; then
    wk_pass "$what: nothing is laid down"
else
    wk_fail "$what: nothing is laid down" "$(ls -A "$d" | head)"
fi

# ---------------------------------------------------------------------------
# 5. again: nothing to do

before=$(listing)
wk_assert_status 0 "5. a second expire exits 0" -- walkeep expire
wk_assert_contains "$WK_OUT" "^nothing to remove" "5. it has nothing to remove"
wk_assert_eq "$before" "$(listing)" "5. the repository is unchanged"

# ---------------------------------------------------------------------------
# 6. dumps: "keep one dump" keeps the newest of each database, and of the globals

dump_bin=$(wk_bin walkeep-dump)
dump() { wk_run_as_postgres timeout -k 5 120 "$dump_bin" --config "$conf" "$@"; }
if wk_pg_dump_fits; then
    wk_psql "$pg" "CREATE DATABASE shop" >/dev/null
    wk_assert_status 0 "6. a first round of dumps (globals, postgres, shop)" -- \
        dump create --all --pg-bindir "$(wk_pg_client_bindir)" "--dump-databases=postgres shop"
    sleep 1 # default labels name the second a dump started
    wk_assert_status 0 "6. a second round" -- \
        dump create --all --pg-bindir "$(wk_pg_client_bindir)" "--dump-databases=postgres shop"
    newest=$(sort <"$WK_OUT" | tr '\n' ' ')
    wk_assert_status 0 "6. expire with retention_dumps = 1" -- walkeep expire --retention-dumps=1
    wk_assert_eq 3 "$(grep -c '^removed dump ' "$WK_OUT")" "6. it removes three dumps, one of each kind"
    wk_assert_status 0 "6. the dumps listed" -- dump list --json
    kept=$(python3 -c 'import json,sys; print(" ".join(sorted(d["label"] for d in json.load(open(sys.argv[1]))["dumps"])) + " ")' "$WK_OUT")
    wk_assert_eq "$newest" "$kept" "6. the newest dump of the globals, of postgres and of shop are kept"
else
    wk__log "6. skipped: pg_dump $(wk_pg_client_bindir) is older than PostgreSQL $WK_PG_MAJOR"
fi

wk_cluster_stop "$pg"
wk_done
