#!/usr/bin/env bash
# test_key_rotate.sh: `walkeep key rotate` on an encrypted repository a real PostgreSQL
# archives into, with a base backup. The rotation is killed (SIGKILL) at random moments a
# few times, and after each kill the repository is readable with the old key or the new
# one (walkeep verify passes with one of them); a last run completes it. Then the old key
# is refused, the cluster archives on with the new key, and pitr-restore with the new key
# alone brings back rows written before and after the rotation. A tampered backup record
# is refused by pitr-restore and reported by walkeep verify.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh).
#
# Run: WALKEEP_BIN=<build dir> bash test_key_rotate.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
WALKEEP=$(wk_bin walkeep)
PITR=$(wk_bin pitr-restore)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
old_key=$work/old.key
new_key=$work/new.key
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }
verify_with() { as_pg timeout -k 10 120 "$WALKEEP" verify --config "$conf" --encrypt-key-file="$1"; }

switch_and_wait() { wk_switch_and_wait "$1" >/dev/null; }

as_pg "$WALKEEP" keygen "$old_key" >/dev/null 2>&1
as_pg "$WALKEEP" keygen "$new_key" >/dev/null 2>&1
pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
# encrypt_key_file comes from the command line (--encrypt-key-file), so that the same
# configuration serves both keys; the cluster's archive_command names the key in force.
wk_repo_conf_write "$conf" "$repo" "compress = zstd" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" \
    "pg_bindir = $(wk_pg_client_bindir)"
archive_with() {
    wk_cluster_conf "$pg" \
        "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf --encrypt-key-file=$1 %p")"
}
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica"
archive_with "$old_key"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g" >/dev/null
switch_and_wait "$pg"
wk_assert_status 0 "a base backup with the old key" -- \
    as_pg timeout -k 10 240 "$BASEBACKUP" --config "$conf" --encrypt-key-file="$old_key" --label b1
wk_psql "$pg" "INSERT INTO t SELECT g, 'before' FROM generate_series(20001, 21000) g" >/dev/null
switch_and_wait "$pg"
wk_assert_status 0 "walkeep verify passes with the old key" -- verify_with "$old_key"

# ---------------------------------------------------------------------------
# rotations killed at random moments

neither=0
for i in 1 2 3 4; do
    as_pg "$WALKEEP" key rotate --config "$conf" --encrypt-key-file="$old_key" \
        --new-key-file "$new_key" >/dev/null 2>&1 &
    sleep "0.0$((RANDOM % 9))"
    pkill -KILL -f -- "$WALKEEP key rotate --config $conf" 2>/dev/null || true
    wait 2>/dev/null || true
    if verify_with "$old_key" >/dev/null 2>&1; then
        echo "# kill $i: the old key reads everything"
    elif verify_with "$new_key" >/dev/null 2>&1; then
        echo "# kill $i: the new key reads everything"
    else
        neither=$((neither + 1))
        verify_with "$new_key" 2>&1 | sed 's/^/#   /' | head -n 5
    fi
done
wk_assert_eq 0 "$neither" "after every killed rotation one of the keys reads the whole repository"
wk_assert_status 0 "the rotation, run again with the old key configured, completes" -- \
    as_pg "$WALKEEP" key rotate --config "$conf" --encrypt-key-file="$old_key" --new-key-file "$new_key"
wk_assert_status 0 "walkeep verify passes with the new key" -- verify_with "$new_key"
wk_assert_status '!0' "the old key opens the repository no more" -- verify_with "$old_key"
wk_assert_contains "$WK_ERR" "does not open" "and the message says so"

# ---------------------------------------------------------------------------
# archiving on with the new key, then a restore with it alone

archive_with "$new_key"
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
wk_psql "$pg" "INSERT INTO t SELECT g, 'after' FROM generate_series(21001, 22000) g" >/dev/null
switch_and_wait "$pg"
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT failed_count FROM pg_stat_archiver")" \
    "the cluster archives without failures across the rotation"
want=$(wk_psql "$pg" "SELECT count(*) FROM t")
d=$(wk_cluster_path restored)
wk_assert_status 0 "pitr-restore with the new key lays down the backup taken with the old one" -- \
    as_pg timeout -k 10 180 "$PITR" --config "$conf" --encrypt-key-file="$new_key" --pgdata "$d" \
    --target-action=promote
wk_cluster_adopt "$d"
wk_cluster_conf "$d" "archive_mode = off"
if wk_cluster_start "$d" && wk_wait_for_sql "recovery of the restored copy" 120 "$d" \
    "select pg_is_in_recovery()" f; then
    wk_assert_eq "$want" "$(wk_psql "$d" "SELECT count(*) FROM t")" \
        "the restored copy has every row, written before and after the rotation"
    wk_cluster_stop "$d" || true
else
    wk_fail "the restored copy recovers" "see the server log above"
fi
rm -rf -- "$d"

# ---------------------------------------------------------------------------
# a tampered record

rec=backups/b1/backup.json
wk_repo_cat "$repo" "$rec" >"$work/record"
sed 's/"compress": "zstd"/"compress": "lz4"/' "$work/record" | wk_repo_put "$repo" "$rec"
d=$(wk_cluster_path tampered)
wk_assert_status 1 "pitr-restore refuses a tampered backup record" -- \
    as_pg timeout -k 10 180 "$PITR" --config "$conf" --encrypt-key-file="$new_key" --pgdata "$d" \
    --target-action=promote
wk_assert_contains "$WK_ERR" "failed authentication" "the refusal says the record failed authentication"
wk_assert_status 1 "walkeep verify reports it" -- verify_with "$new_key"
wk_assert_contains "$WK_OUT" "failed authentication" "verify names the record"
wk_repo_put "$repo" "$rec" <"$work/record"
wk_assert_status 0 "the original record verifies again" -- verify_with "$new_key"

wk_done
