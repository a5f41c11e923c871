#!/usr/bin/env bash
# test_s3_faults.sh: faults against a real S3 server (a throw-away Ceph RADOS Gateway)
# with real WAL from a real PostgreSQL 15: a wrong secret and an unknown bucket (one
# clear error, nothing written; walkeep-fetch exits above 125, never 1); the gateway
# stopped in the middle of a multipart push (non-zero, no object, the retry after the
# restart succeeds and leaves no upload behind); walkeep-fetch with the gateway gone
# mid-download (above 125, no file) and back within the retry time (resumes, identical);
# a push killed half-way (no object; walkeep verify aborts the orphaned upload); and a
# restored cluster in archive recovery whose gateway stops (PostgreSQL stops, never
# promotes; with the gateway back the recovery ends where it should); and HTTPS with a
# private CA: verified with s3_ca_file, refused without it.
#
# Run: WALKEEP_BIN=<build dir> bash test_s3_faults.sh   (always on S3)

# shellcheck disable=SC2317 # helpers run through wk_assert_status
export WK_REPO_KIND=s3 WK_S3_TLS=1
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
FETCH=$(wk_bin walkeep-fetch)
WALKEEP=$(wk_bin walkeep)
BASEBACKUP=$(wk_bin walkeep-basebackup)
PITR=$(wk_bin pitr-restore)
as_pg() { wk_run_as_postgres "$@"; }
work=$(wk_tmpdir work)

wk_s3_start
set -a
# shellcheck disable=SC1091 # written by start-s3.sh
. "$WK__S3_DIR/s3.env"
set +a
rgw_pidfile=$WK__S3_DIR/run/client.rgw.s3.pid

# gateway_stop / gateway_start: stop and start radosgw alone; the monitor and the OSD
# keep running, so what was stored is still there afterwards.
gateway_stop() {
    local pid i
    pid=$(cat "$rgw_pidfile")
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
gateway_start() {
    radosgw -c "$WK__S3_DIR/ceph.conf" -n client.rgw.s3 || return 1
    wk_wait_for "the S3 gateway" 60 curl -s -o /dev/null "$S3_ENDPOINT/"
}

# objects_of REPO SEGMENT: the repository objects holding SEGMENT.
objects_of() { wk_repo_wal_objects "$1" | grep -F "/$2-" || true; }

# slow_pg CMD...: runs CMD as postgres with every send and receive on a socket delayed
# by DELAY_US microseconds (strace fault injection), so that a test can act in the
# middle of it.
DELAY_US=20000
# (LeakSanitizer cannot run under ptrace: a sanitized build's leak check is off there.)
slow_pg() {
    as_pg env ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o /dev/null -e trace=sendto,recvfrom \
        -e inject=sendto,recvfrom:delay_exit="$DELAY_US" "$@"
}

# wait_for_upload REPO PID: waits until a multipart upload is in progress in REPO
# while PID runs; status 1 if PID ended first.
wait_for_upload() {
    local i
    for ((i = 0; i < 400; i++)); do
        [[ -z $(wk_repo_uploads "$1") ]] || return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------------------
# real segments: a scratch cluster, three complete segments copied out of pg_wal

pg=$(wk_cluster_init primary)
wk_cluster_conf "$pg" "wal_level = replica"
wk_cluster_start "$pg"
segs=$work/segs
as_pg mkdir "$segs"
wk_psql "$pg" "CREATE TABLE t (id int, v text)" >/dev/null
for i in 1 2 3; do
    wk_psql "$pg" "INSERT INTO t SELECT g, md5(g::text || '$i') FROM generate_series(1, 60000) g" >/dev/null
    s=$(wk_psql "$pg" "SELECT pg_walfile_name(pg_current_wal_lsn())")
    wk_psql "$pg" "SELECT pg_switch_wal()" >/dev/null
    as_pg cp "$pg/pg_wal/$s" "$segs/"
    eval "seg$i=\$s"
done
wk_cluster_stop "$pg"

# Uncompressed 1 MiB parts, one at a time: a 16 MiB segment is a 16-part upload.
repo=$(wk_repo_new repo)
conf=$work/walkeep.conf
wk_repo_conf_write "$conf" "$repo" "compress = none" "s3_part_size = 1MB" "s3_parallel = 1" \
    "retry_timeout = 3s" "log_level = info"
wk_assert_status 0 "a first segment is archived on S3" -- as_pg "$ARCHIVE" --config "$conf" "$segs/$seg1"
wk_assert_eq 1 "$(objects_of "$repo" "$seg1" | wc -l)" "its object is in the bucket"
wk_assert_eq "" "$(wk_repo_uploads "$repo")" "no upload is left in progress"

# ---------------------------------------------------------------------------
# HTTPS: the certificate is verified, against s3_ca_file for a private CA

tls=$work/tls.conf
wk_repo_conf_write "$tls" "$repo" "compress = none" "retry_timeout = 3s"
sed -i "s|^s3_endpoint = .*|s3_endpoint = $S3_TLS_ENDPOINT|; /^s3_ca_file = /d" "$tls"
echo "s3_ca_file = $S3_CA_FILE" >>"$tls"
cwd=$(wk_tmpdir recovery) # plays the data directory of a server in archive recovery
fetch() { (cd "$cwd" && as_pg "$FETCH" "$@"); }
wk_assert_status 0 "over HTTPS with s3_ca_file, walkeep-fetch works" -- \
    fetch --config "$tls" "$seg1" "$cwd/out"
wk_assert_same_file "$segs/$seg1" "$cwd/out" "byte-identical"
rm -f "$cwd/out"
sed -i '/^s3_ca_file = /d' "$tls"
wk_assert_status '>125' "without s3_ca_file the private CA is not trusted: a hard error" -- \
    fetch --config "$tls" "$seg1" "$cwd/out"
wk_assert_contains "$WK_ERR" "^walkeep-fetch: hint: .*s3_ca_file" "the hint names s3_ca_file"
wk_assert_no_file "$cwd/out" "and leaves no file"
wk_assert_status '!0' "a push is refused too" -- as_pg "$ARCHIVE" --config "$tls" "$segs/$seg2"
wk_assert_eq 0 "$(objects_of "$repo" "$seg2" | wc -l)" "and stores nothing"

# ---------------------------------------------------------------------------
# a wrong secret, an unknown bucket

bad=$work/bad-secret.conf
wk_repo_conf_write "$bad" "$repo" "compress = none" "retry_timeout = 3s"
sed -i 's/^s3_secret_key = .*/s3_secret_key = not-the-secret/' "$bad"
before=$(wk_repo_ls "$repo")
wk_assert_status '!0' "a wrong secret key fails the push" -- as_pg "$ARCHIVE" --config "$bad" "$segs/$seg2"
wk_assert_contains "$WK_ERR" "^walkeep-archive: error: .*SignatureDoesNotMatch" "the error names the refused signature"
wk_assert_contains "$WK_ERR" "^walkeep-archive: hint: .*s3_secret_key" "the hint names s3_secret_key"
wk_assert_eq 1 "$(grep -c ': error: ' "$WK_ERR")" "with one error line"
wk_assert_not_contains "$WK_ERR" "not-the-secret" "the secret is not printed"
wk_assert_eq "$before" "$(wk_repo_ls "$repo")" "nothing was written with the wrong secret"
wk_assert_status '>125' "walkeep-fetch with a wrong secret is a hard error" -- \
    fetch --config "$bad" "$seg1" "$cwd/out"
wk_assert_no_file "$cwd/out" "and leaves no file"

nobucket=$work/no-bucket.conf
wk_repo_conf_write "$nobucket" "s3://no-such-bucket-wk/x" "compress = none" "retry_timeout = 3s"
wk_assert_status '!0' "an unknown bucket fails the push" -- as_pg "$ARCHIVE" --config "$nobucket" "$segs/$seg2"
wk_assert_contains "$WK_ERR" "^walkeep-archive: error: .*bucket \"no-such-bucket-wk\" does not exist" \
    "the error names the missing bucket"
wk_assert_eq 1 "$(grep -c ': error: ' "$WK_ERR")" "with one error line"
wk_assert_status '>125' "walkeep-fetch from an unknown bucket is a hard error, never 1" -- \
    fetch --config "$nobucket" "$seg1" "$cwd/out"
wk_assert_no_file "$cwd/out" "and leaves no file"
wk_assert_status 1 "walkeep-fetch of a segment that is not archived exits 1" -- \
    fetch --config "$conf" 0000000100000000000000FE "$cwd/out"

# ---------------------------------------------------------------------------
# the gateway stopped in the middle of a multipart push

slow_pg "$ARCHIVE" --config "$conf" "$segs/$seg2" >"$work/push.out" 2>"$work/push.err" &
push=$!
if wait_for_upload "$repo" "$push"; then
    wk_pass "the push of $seg2 is a multipart upload in progress"
    gateway_stop
    st=0
    wait "$push" || st=$?
    wk_assert_ne 0 "$st" "the push fails when the gateway stops under it"
    wk_assert_contains "$work/push.err" "^walkeep-archive: error: " "with an error line"
    wk_assert_status 0 "the gateway starts again" -- gateway_start
    wk_assert_eq 0 "$(objects_of "$repo" "$seg2" | wc -l)" "no object is visible for the failed push"
else
    wait "$push" || true
    wk_fail "the push of $seg2 is a multipart upload in progress" "got: $(cat "$work/push.err")"
fi
wk_assert_status 0 "the retry after the restart succeeds" -- as_pg "$ARCHIVE" --config "$conf" "$segs/$seg2"
wk_assert_eq 1 "$(objects_of "$repo" "$seg2" | wc -l)" "the segment's object is there"
wk_assert_eq "" "$(wk_repo_uploads "$repo")" "the failed attempt's upload is gone after the next run"
wk_assert_status 0 "and fetches back" -- fetch --config "$conf" "$seg2" "$cwd/out"
wk_assert_same_file "$segs/$seg2" "$cwd/out" "byte-identical"
rm -f "$cwd/out"

# ---------------------------------------------------------------------------
# walkeep-fetch with the gateway gone in the middle of a download

# wait_for_partial PID: waits until walkeep-fetch's hidden temporary beside the
# destination holds bytes while PID runs.
wait_for_partial() {
    local i
    for ((i = 0; i < 400; i++)); do
        [[ -z $(find "$cwd" -name '.*tmp*' -size +0 2>/dev/null) ]] || return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
(cd "$cwd" && slow_pg "$FETCH" --config "$conf" "$seg2" "$cwd/out") >"$work/fetch.out" 2>"$work/fetch.err" &
fpid=$!
if wait_for_partial "$fpid"; then
    wk_pass "walkeep-fetch is in the middle of the download"
    gateway_stop
    st=0
    wait "$fpid" || st=$?
    wk_assert_ge 126 "$st" "the gateway gone for longer than retry_timeout is a hard error (above 125)"
    wk_assert_contains "$work/fetch.err" "^walkeep-fetch: error: " "with an error line"
    wk_assert_no_file "$cwd/out" "no file at the destination"
    wk_assert_eq "" "$(find "$cwd" -name '.*tmp*')" "no temporary left beside it"
    wk_assert_status 0 "the gateway starts again" -- gateway_start
else
    wait "$fpid" || true
    wk_fail "walkeep-fetch is in the middle of the download" "got: $(cat "$work/fetch.err")"
fi

(cd "$cwd" && slow_pg "$FETCH" --config "$conf" --retry-timeout=60s "$seg2" "$cwd/out") \
    >"$work/fetch.out" 2>"$work/fetch.err" &
fpid=$!
if wait_for_partial "$fpid"; then
    gateway_stop
    sleep 1
    wk_assert_status 0 "the gateway comes back within the retry time" -- gateway_start
    st=0
    wait "$fpid" || st=$?
    wk_assert_eq 0 "$st" "walkeep-fetch resumes and succeeds"
    wk_assert_same_file "$segs/$seg2" "$cwd/out" "the resumed download is byte-identical"
    wk_assert_contains "$work/fetch.err" "resuming" "the resumed download is logged"
else
    wait "$fpid" || true
    wk_fail "walkeep-fetch is in the middle of the second download" "got: $(cat "$work/fetch.err")"
fi
rm -f "$cwd/out"

# ---------------------------------------------------------------------------
# a multipart push killed half-way: no object; walkeep verify aborts the orphan

slow_pg "$ARCHIVE" --config "$conf" "$segs/$seg3" >/dev/null 2>&1 &
push=$!
if wait_for_upload "$repo" "$push"; then
    sleep 0.3
    pkill -KILL -f -- "$ARCHIVE --config $conf $segs/$seg3" || true
    kill -KILL "$push" 2>/dev/null || true
    wait "$push" 2>/dev/null || true
    wk_assert_eq 0 "$(objects_of "$repo" "$seg3" | wc -l)" "a push killed half-way leaves no object"
    wk_assert_ne "" "$(wk_repo_uploads "$repo")" "its upload is left in progress"
    wk_assert_status 0 "walkeep verify passes" -- as_pg "$WALKEEP" verify --config "$conf"
    cp "$WK_OUT" "$work/verify.out"
    wk_assert_eq "" "$(wk_repo_uploads "$repo")" "walkeep verify aborted the orphaned upload (its writer is gone)"
else
    wait "$push" || true
    wk_fail "the push of $seg3 is a multipart upload in progress"
fi
wk_assert_status 0 "the segment is archived by the next run" -- as_pg "$ARCHIVE" --config "$conf" "$segs/$seg3"
wk_assert_eq 1 "$(objects_of "$repo" "$seg3" | wc -l)" "its object is there"

# ---------------------------------------------------------------------------
# archive recovery with the gateway stopped: PostgreSQL stops, never promotes

repo2=$(wk_repo_new recovery)
conf2=$work/recovery.conf
pg=$(wk_cluster_init primary2)
wk_repo_conf_write "$conf2" "$repo2" "retry_timeout = 2s" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$(wk_cluster_port "$pg") dbname=postgres"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf2 %p")"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE TABLE r AS SELECT g AS id FROM generate_series(1, 1000) g" >/dev/null
wk_assert_status 0 "a base backup on S3" -- as_pg "$BASEBACKUP" --config "$conf2" --label b1
for i in 1 2 3; do
    wk_psql "$pg" "INSERT INTO r SELECT g FROM generate_series(1, 1000) g" >/dev/null
    last=$(wk_psql "$pg" "select $(wk_sql_walfile "pg_switch_wal()")")
done
wk_psql "$pg" "SELECT pg_create_restore_point('after_inserts')" >/dev/null
last=$(wk_psql "$pg" "select $(wk_sql_walfile "pg_switch_wal()")")
wk_wait_for_sql "archiving of $last" 60 "$pg" "SELECT last_archived_wal >= '$last' FROM pg_stat_archiver" t
wk_cluster_stop "$pg"
restored=$(wk_cluster_path restored)
wk_assert_status 0 "pitr-restore lays the backup down" -- \
    as_pg "$PITR" --config "$conf2" --pgdata "$restored" --target-name after_inserts
wk_cluster_adopt "$restored"
gateway_stop
st=0
wk_cluster_start "$restored" 2>/dev/null || st=$?
wk_assert_ne 0 "$st" "the restored cluster does not come up while the gateway is stopped"
log=$(wk_cluster_log "$restored")
wk_assert_contains "$log" "walkeep-fetch: error: " "walkeep-fetch's error is in the server log"
wk_assert_contains "$log" "(exit code|exited with exit code) (12[6-9]|1[3-9][0-9]|2[0-9][0-9])" \
    "restore_command exited above 125"
wk_assert_not_contains "$log" "selected new timeline ID|archive recovery complete|database system is ready to accept connections" \
    "PostgreSQL did not end recovery or promote"
wk_assert_status 0 "the gateway starts again" -- gateway_start
wk_cluster_start "$restored"
wk_wait_for_sql "the end of recovery" 90 "$restored" "SELECT NOT pg_is_in_recovery()" t
wk_assert_eq 4000 "$(wk_psql "$restored" "SELECT count(*) FROM r")" \
    "with the gateway back, recovery reaches the restore point"
wk_cluster_stop "$restored"

wk_done
