#!/usr/bin/env bash
# test_archive_replay.sh: the main archive/restore scenario against a real
# PostgreSQL.
#
# A cluster archives through walkeep-archive into an encrypted repository that
# the first archive initializes by itself; pgbench makes at least 50 segments.
# PostgreSQL must see every one archived (pg_stat_archiver, no failures), every
# segment fetched back with walkeep-fetch must be byte-identical, and a base
# backup taken before the load, recovering with walkeep-fetch as its
# restore_command, must reach exactly the primary's data and promote.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh), with 1 MB parts, so that
# segments and the repository's checks go through multipart uploads.
#
# Run: WALKEEP_BIN=<build dir> WALKEEP_SRC=<source dir> bash test_archive_replay.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIN_SEGMENTS=50        # what the scenario must prove
TARGET_SEGMENTS=54     # what the load aims for (a little margin)
LOAD_TIMEOUT=240       # seconds allowed to generate the load
ARCHIVE_TIMEOUT=240    # seconds allowed for the archiver to catch up
RECOVERY_TIMEOUT=300   # seconds allowed for the replay from the archive

archive_bin=$(wk_bin walkeep-archive)
fetch_bin=$(wk_bin walkeep-fetch)
admin_bin=$(wk_bin walkeep)
pgbench=$(wk_pgbin pgbench)
# pg_basebackup of the server's own major where it is there (Debian's 15); the npm server
# trees of 16 to 18 have none and pg_basebackup 15 refuses newer servers, so there the
# backup is taken with the low-level API (pg_backup_start, a copy, pg_backup_stop).
pg_basebackup=
[[ ! -x $WK_PGBIN/pg_basebackup ]] || pg_basebackup=$WK_PGBIN/pg_basebackup
psql_bin=$(wk_pgbin psql)

# ---------------------------------------------------------------------------
# 1. repository folder, key (outside the repository) and config, all owned by
#    postgres, which runs the archiver

work=$(wk_tmpdir walkeep)
repo=$(wk_repo_new repo "$work")
key=$work/walkeep.key
conf=$work/walkeep.conf
[[ $(wk_repo_kind) != posix ]] || wk_run_as_postgres mkdir -m 0700 "$repo"
# On S3, small parts: every segment is a multipart upload, sent two parts at once.
s3_conf=()
[[ $(wk_repo_kind) != s3 ]] || s3_conf=("s3_part_size = 1MB" "s3_parallel = 2")

wk_assert_status 0 "walkeep keygen creates a key file" -- \
    wk_run_as_postgres "$admin_bin" keygen "$key"
wk_assert_file "$key" "the key file exists after keygen"
wk_assert_eq 600 "$(stat -c %a "$key" 2>&1)" "the key file is mode 0600"
wk_assert_eq "$WK_PG_USER" "$(stat -c %U "$key" 2>&1)" "the key file belongs to the user who made it"

key_sum=$(sha256sum <"$key")
wk_assert_status '!0' "walkeep keygen refuses to overwrite an existing key file" -- \
    wk_run_as_postgres "$admin_bin" keygen "$key"
wk_assert_eq "$key_sum" "$(sha256sum <"$key")" "the existing key is left unchanged"

wk_repo_conf_write "$conf" "$repo" "encrypt_key_file = $key" "${s3_conf[@]}"

# ---------------------------------------------------------------------------
# 2. the primary, archiving through walkeep-archive; the repository is not
#    initialized first: the first archive must do it

pg=$(wk_cluster_init primary --data-checksums)
archive_command="\"$archive_bin\" --config \"$conf\" %p"
wk_cluster_conf "$pg" \
    "wal_level = replica" \
    "archive_mode = on" \
    "archive_command = $(wk_conf_quote "$archive_command")" \
    "archive_timeout = 0" \
    "max_wal_size = 4GB" \
    "wal_keep_size = 2GB" \
    "checkpoint_timeout = 1h" \
    "synchronous_commit = off"
wk_cluster_start "$pg"
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")

segsize=$(wk_psql "$pg" "select setting from pg_settings where name = 'wal_segment_size'")
# Larger segments (initdb --wal-segsize=64): as much WAL as 50 segments of 16 MiB, in
# fewer segments, so that the load stays short and below max_wal_size (no recycling).
if ((segsize > 16 * 1024 * 1024)); then
    MIN_SEGMENTS=$((MIN_SEGMENTS * 16 * 1024 * 1024 / segsize))
    ((MIN_SEGMENTS >= 8)) || MIN_SEGMENTS=8
    TARGET_SEGMENTS=$((MIN_SEGMENTS + 4))
    echo "# $((segsize / 1024 / 1024)) MiB segments: at least $MIN_SEGMENTS of them"
fi
segno_sql="select floor((pg_current_wal_lsn() - '0/0'::pg_lsn) / $segsize)::bigint"

# ---------------------------------------------------------------------------
# 3. a plain base backup without WAL: it will need the archive. With -X none
#    pg_basebackup waits until its last segment is archived, so bound it.

backup=$(wk_cluster_path replica)
# The low-level API in one psql session: pg_backup_stop(true) waits, as -X none does,
# until the backup's last segment is archived; its label file goes beside the copy.
lowlevel_backup() {
    wk_run_as_postgres mkdir -m 0700 "$backup" &&
        wk_run_as_postgres timeout -k 10 180 "$psql_bin" -XAtq -v ON_ERROR_STOP=1 \
            -h "$sock" -p "$port" -d postgres <<SQL
SELECT pg_backup_start('walkeep-test', true);
\\! cd '$pg' && tar -cf - --warning=no-file-changed --warning=no-file-removed --exclude='./pg_wal/*' --exclude=./postmaster.pid --exclude=./postmaster.opts . | tar -xf - -C '$backup'
\\pset format unaligned
\\pset tuples_only on
SELECT labelfile FROM pg_backup_stop(true) \\g '$backup/backup_label'
SQL
}
if [[ -n $pg_basebackup ]]; then
    how="pg_basebackup -X none"
    bb_cmd=(wk_run_as_postgres timeout -k 10 180 "$pg_basebackup" -h "$sock" -p "$port"
        -D "$backup" -X none -c fast --no-sync)
else
    how="a low-level backup (pg_backup_start / pg_backup_stop)"
    bb_cmd=(lowlevel_backup)
fi
if ! "${bb_cmd[@]}" >"$work/basebackup.log" 2>&1; then
    cat "$work/basebackup.log" >&2
    wk_cluster_log_tail "$pg"
    wk_fail "$how completes (its WAL archived through walkeep-archive)" \
        "see its output and the server log above"
    wk_done
fi
wk_pass "$how completes (its WAL archived through walkeep-archive)"
wk_assert_repo_file "$repo" walkeep.repo "the first archive initialized the repository (walkeep.repo)"

# ---------------------------------------------------------------------------
# 4. load: pgbench -i, then pgbench runs until at least TARGET_SEGMENTS
#    segments were written since the start. A checkpoint before each run makes
#    the updates write full-page images, so the load needs little time.

start_segno=$(wk_psql "$pg" "$segno_sql")
pgb=("$pgbench" -h "$sock" -p "$port")
if ! wk_run_as_postgres "${pgb[@]}" -i -s 10 -q postgres >"$work/pgbench.log" 2>&1; then
    cat "$work/pgbench.log" >&2
    wk_bail "pgbench -i failed"
fi
load_start=$SECONDS
runs=0
while :; do
    made=$(($(wk_psql "$pg" "$segno_sql") - start_segno))
    ((made < TARGET_SEGMENTS)) || break
    if ((SECONDS - load_start >= LOAD_TIMEOUT)); then
        wk_fail "pgbench writes $TARGET_SEGMENTS WAL segments within ${LOAD_TIMEOUT}s" \
            "expected: $TARGET_SEGMENTS segments" "     got: $made"
        break
    fi
    wk_psql "$pg" "checkpoint" >/dev/null
    if ! wk_run_as_postgres "${pgb[@]}" -n -c 2 -j 2 -T 5 postgres >"$work/pgbench.log" 2>&1; then
        cat "$work/pgbench.log" >&2
        wk_bail "pgbench failed"
    fi
    runs=$((runs + 1))
done
echo "# load: $made segments in $((SECONDS - load_start))s ($runs pgbench runs after pgbench -i)"

# Known rows to find on the other side. The text also serves as a plaintext
# probe: it is in the WAL, and must not be readable in the encrypted repository.
probe=wk-marker-$(printf '%s' 1 | md5sum | cut -c1-32)
wk_psql "$pg" "create table wk_marker as
               select g as id, 'wk-marker-' || md5(g::text) as v
               from generate_series(1, 1000) as g" >/dev/null
marker_sql="select count(*) || ' ' || sum(id) || ' ' || md5(string_agg(v, ',' order by id))
            from wk_marker"
bench_sql="select (select count(*) || ' ' || sum(abalance) from pgbench_accounts)
                  || ' ' || (select count(*) from pgbench_history)"
primary_marker=$(wk_psql "$pg" "$marker_sql")
primary_bench=$(wk_psql "$pg" "$bench_sql")
wk_assert_eq "1000 500500" "${primary_marker% *}" "the marker table holds 1000 rows on the primary"

last_wal=$(wk_psql "$pg" "select $(wk_sql_walfile "pg_switch_wal()")")
if wk_wait_for_sql "the archiver to reach $last_wal" "$ARCHIVE_TIMEOUT" "$pg" \
    "select last_archived_wal from pg_stat_archiver" "$last_wal"; then
    wk_pass "pg_stat_archiver.last_archived_wal reaches the switched segment $last_wal"
else
    wk_fail "pg_stat_archiver.last_archived_wal reaches the switched segment $last_wal" \
        "within ${ARCHIVE_TIMEOUT}s; pg_stat_archiver: $(wk_psql "$pg" 'select * from pg_stat_archiver' 2>&1)"
fi

# ---------------------------------------------------------------------------
# 5. what PostgreSQL saw

archiver=$(wk_psql "$pg" \
    "select archived_count, failed_count, coalesce(last_failed_wal, '') from pg_stat_archiver")
IFS='|' read -r archived_count failed_count last_failed <<<"$archiver"
wk_assert_ge "$MIN_SEGMENTS" "$archived_count" "pg_stat_archiver.archived_count >= $MIN_SEGMENTS"
wk_assert_eq 0 "$failed_count" "pg_stat_archiver.failed_count = 0 (last_failed_wal '$last_failed')"

status_dir=$pg/pg_wal/archive_status
ready=$(find "$status_dir" -name '*.ready' | wc -l)
done_count=$(find "$status_dir" -name '*.done' | wc -l)
wk_assert_eq 0 "$ready" "no WAL file is left waiting for the archiver (.ready)"
wk_assert_eq "$archived_count" "$done_count" "archived_count matches the .done files in pg_wal"
wk_assert_not_contains "$(wk_cluster_log "$pg")" 'archive command failed|walkeep-archive: error' \
    "the primary's log shows no failed archive_command"

# ---------------------------------------------------------------------------
# 6. every archived file fetched back is byte-identical

fetched=$(wk_tmpdir fetched)
fetch_cwd=$(wk_tmpdir fetch-cwd)

# walkeep-fetch as PostgreSQL runs it: as postgres, from a folder without
# standby.signal (archive recovery); bounded, as a hang would be a bug too.
fetch_with() { # CONFIG NAME DEST
    local config=$1
    shift
    (cd "$fetch_cwd" && wk_run_as_postgres timeout -k 5 120 "$fetch_bin" --config "$config" "$@")
}
fetch() { fetch_with "$conf" "$@"; }
segments=0
files=0
bad=()
while IFS= read -r name; do
    files=$((files + 1))
    [[ ! $name =~ ^[0-9A-F]{24}$ ]] || segments=$((segments + 1))
    status=0
    fetch "$name" "$fetched/$name" >"$work/fetch.out" 2>&1 || status=$?
    if ((status != 0)); then
        bad+=("$name: walkeep-fetch exited $status: $(head -c 500 "$work/fetch.out")")
    elif ! cmp_out=$(cmp -- "$pg/pg_wal/$name" "$fetched/$name" 2>&1); then
        bad+=("$name: $cmp_out")
    fi
    rm -f -- "$fetched/$name"
done < <(find "$status_dir" -name '*.done' -printf '%f\n' | sed 's/\.done$//' | sort)

echo "# fetched back $files archived files ($segments segments)"
if ((${#bad[@]} == 0)); then
    wk_pass "all $files archived files fetch back byte-identical"
else
    wk_fail "all $files archived files fetch back byte-identical" \
        "${#bad[@]} differ or failed, e.g.:" "${bad[@]:0:5}"
fi
wk_assert_ge "$MIN_SEGMENTS" "$segments" "at least $MIN_SEGMENTS segments were fetched back and compared"
wk_assert_eq "" "$(ls -A "$fetched")" "walkeep-fetch leaves nothing beside its destinations"

# A file that is certainly not in the repository: exit 1, quietly, no file.
for absent in 00000002.history 000000010000000100000000; do
    wk_assert_status 1 "walkeep-fetch of absent $absent exits 1" -- \
        fetch "$absent" "$fetched/$absent"
    wk_assert_eq "" "$(cat "$WK_ERR")" "walkeep-fetch of absent $absent is quiet"
    wk_assert_no_file "$fetched/$absent" "walkeep-fetch of absent $absent creates no file"
done

# Encryption is on: no object in the repository reads as a WAL page or as a
# stock lz4 / zstd frame (what an unencrypted object would be, DESIGN.md), ...
# (Each object is read once, also for the plaintext probe further down.)
objects=0
readable=()
plain=()
object_copy=$work/object
while IFS= read -r object; do
    wk_repo_cat "$repo" "$object" >"$object_copy"
    if [[ $object == wal/* ]]; then
        objects=$((objects + 1))
        magic=$(head -c 4 -- "$object_copy" | od -An -tx1 | tr -d ' \n')
        # A WAL page (magic ..d1 of every major: 10d1 for 15, 18d1 for 18), a zstd or lz4 frame.
        case $magic in
        ??d1* | 28b52ffd | 04224d18) readable+=("$repo/$object (starts with $magic)") ;;
        esac
    fi
    ! grep -qF -- "$probe" "$object_copy" || plain+=("$repo/$object")
done < <(wk_repo_ls "$repo")
rm -f -- "$object_copy"
wk_assert_ge "$segments" "$objects" "the repository holds an object per archived segment"
if ((${#readable[@]} == 0)); then
    wk_pass "no repository object is plain WAL, lz4 or zstd (encrypted)"
else
    wk_fail "no repository object is plain WAL, lz4 or zstd (encrypted)" \
        "${#readable[@]} readable, e.g.:" "${readable[@]:0:3}"
fi

# ... and a key that is not the repository's cannot read it: a hard error,
# which must stop archive recovery (exit > 125), and no file.
other_key=$work/other.key
other_conf=$work/other.conf
wk_assert_status 0 "walkeep keygen makes a second, unrelated key" -- \
    wk_run_as_postgres "$admin_bin" keygen "$other_key"
wk_repo_conf_write "$other_conf" "$repo" "encrypt_key_file = $other_key"
wk_assert_status '>125' "walkeep-fetch with the wrong key fails hard (exit > 125)" -- \
    fetch_with "$other_conf" "$last_wal" "$fetched/wrong-key"
wk_assert_contains "$WK_ERR" '^walkeep-fetch: error' "walkeep-fetch with the wrong key says why on stderr"
wk_assert_no_file "$fetched/wrong-key" "walkeep-fetch with the wrong key writes no file"

# The probe text is in the WAL but nowhere in the repository.
if grep -rqF -- "$probe" "$pg/pg_wal"; then
    if ((${#plain[@]} > 0)); then
        wk_fail "the repository holds no plaintext of the WAL (encrypted)" \
            "found \"$probe\" in: ${plain[*]:0:3}"
    else
        wk_pass "the repository holds no plaintext of the WAL (encrypted)"
    fi
else
    echo "# the probe text is not in pg_wal; plaintext check skipped"
fi

# ---------------------------------------------------------------------------
# 7. PostgreSQL replays from the archive: the base backup, with walkeep-fetch
#    as restore_command and recovery.signal, recovers to the end of the archive
#    and promotes.

wk_cluster_adopt "$backup"
restore_command="\"$fetch_bin\" --config \"$conf\" %f %p"
wk_cluster_conf "$backup" \
    "archive_mode = off" \
    "restore_command = $(wk_conf_quote "$restore_command")"
wk_run_as_postgres touch "$backup/recovery.signal"
WK_START_TIMEOUT=$RECOVERY_TIMEOUT wk_cluster_start "$backup"

if wk_wait_for_sql "the restored cluster to finish recovery" "$RECOVERY_TIMEOUT" "$backup" \
    "select pg_is_in_recovery()" f; then
    wk_pass "the restored cluster finishes archive recovery and promotes"
else
    wk_fail "the restored cluster finishes archive recovery and promotes" \
        "still in recovery after ${RECOVERY_TIMEOUT}s"
    wk_cluster_log_tail "$backup"
fi

wk_assert_eq "$primary_marker" "$(wk_psql "$backup" "$marker_sql" 2>&1)" \
    "the restored cluster has the marker rows (count, sum, digest)"
wk_assert_eq "$primary_bench" "$(wk_psql "$backup" "$bench_sql" 2>&1)" \
    "the restored cluster has every pgbench transaction"

replica_log=$(wk_cluster_log "$backup")
wk_assert_not_contains "$replica_log" '(FATAL|PANIC):' "the restored cluster's log has no FATAL or PANIC"
wk_assert_not_contains "$replica_log" 'walkeep-fetch: error' "walkeep-fetch reported no error during recovery"
wk_assert_contains "$replica_log" 'archive recovery complete' "the restored cluster's log says archive recovery completed"
restored=$(grep -cE 'restored log file "[0-9A-F]{24}" from archive' "$replica_log" || true)
wk_assert_ge "$MIN_SEGMENTS" "$restored" "PostgreSQL restored at least $MIN_SEGMENTS segments from the archive"

wk_cluster_stop "$backup"
wk_cluster_stop "$pg"

wk_done
