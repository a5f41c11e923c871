#!/usr/bin/env bash
# test_verify.sh: walkeep verify against a repository a real PostgreSQL (15 to 18) archived into,
# with a walkeep-basebackup backup (and a walkeep-dump dump when that program is built).
# A clean repository verifies (exit 0); then, each on a fresh copy of the repository, a
# flipped byte in a WAL object, in a backup object, in a dump object, and a segment
# deleted in the middle of the timeline: verify exits 1 and names each, in text and in
# --json. A leftover temporary is only a warning; a bad option is one error line.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh), and the leftover is a multipart
# upload in progress.
#
# Run: WALKEEP_BIN=<build dir> bash test_verify.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
WALKEEP=$(wk_bin walkeep)
DUMP=
if [[ -f $WALKEEP_BIN/walkeep-dump ]]; then
    DUMP=$(wk_bin walkeep-dump)
fi
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }
verify() { # REPO [ARGS...]
    local r=$1
    shift
    as_pg timeout -k 10 120 "$WALKEEP" verify --config "$conf" --repo="$r" "$@"
}

# switch_and_wait DATADIR: ends the current segment and waits until it is archived.
switch_and_wait() { wk_switch_and_wait "$1" >/dev/null; }

# copy_repo NAME: a fresh copy of the repository; prints its location.
copy_repo() {
    local c
    c=$(wk_repo_new "$1" "$work")
    wk_repo_copy "$repo" "$c"
    printf '%s\n' "$c"
}

# json_check FILE PYTHON-EXPR: evaluates the expression with d = the parsed document.
json_check() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

# assert_json FILE EXPR MSG
assert_json() {
    if json_check "$1" "$2" 2>/dev/null; then
        wk_pass "$3"
    else
        wk_fail "$3" "expected: $2" "got: $(head -c 2000 "$1")"
    fi
}

# ---------------------------------------------------------------------------
# a cluster archiving into the repository, a base backup, more WAL

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
wk_repo_conf_write "$conf" "$repo" "compress = lz4" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" \
    "pg_bindir = $(wk_pg_client_bindir)"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g" >/dev/null
switch_and_wait "$pg"
wk_assert_status 0 "a base backup succeeds" -- \
    as_pg timeout -k 10 240 "$BASEBACKUP" --config "$conf" --label b1
for i in 1 2 3 4; do
    wk_psql "$pg" "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g" >/dev/null
    switch_and_wait "$pg"
done
dumped=0
if [[ -n $DUMP ]] && ! wk_pg_dump_fits; then
    echo "# pg_dump in $(wk_pg_client_bindir) is older than PostgreSQL $WK_PG_MAJOR: the dump part is skipped (test_dump checks the refusal)"
    DUMP=
fi
if [[ -n $DUMP ]]; then
    wk_assert_status 0 "a dump succeeds" -- \
        as_pg timeout -k 10 120 "$DUMP" create --config "$conf" --format custom
    [[ $WK_STATUS -ne 0 ]] || dumped=1
else
    echo "# walkeep-dump is not built: the dump part is skipped"
fi
wk_cluster_stop "$pg"

# ---------------------------------------------------------------------------
# the clean repository

wk_assert_status 0 "verify passes on a clean repository" -- verify "$repo"
wk_assert_contains "$WK_OUT" "^verified [0-9]+ objects \([0-9.]+ (B|KiB|MiB|GiB)\): 0 problems$" \
    "it prints the summary"
wk_assert_status 0 "verify --json passes too" -- verify "$repo" --json
cp "$WK_OUT" "$work/clean.json"
assert_json "$work/clean.json" 'd["ok"] is True and d["problems"] == [] and d["gaps"] == {} and d["objects"] >= 8 and d["bytes"] > 0' \
    "--json: ok, no problems, no gaps, objects counted"

# The WAL objects of timeline 1, sorted; the backup's objects.
mapfile -t segments < <(wk_repo_wal_objects "$repo" 0000000100000000 |
    awk -F/ '$NF ~ /^000000010000000000000.*-/ && $NF !~ /\.backup-/ && $NF !~ /\.partial-/')
wk_assert_ge 6 "${#segments[@]}" "at least six segments archived"
mapfile -t backup_objects < <(wk_repo_ls "$repo" backups/b1 | awk -F/ '$NF ~ /^base\.tar/')
wk_assert_eq 1 "${#backup_objects[@]}" "the backup has its base.tar object"

# ---------------------------------------------------------------------------
# a flipped byte in a WAL object

mid=$((${#segments[@]} / 2))
wal_obj=${segments[$((mid - 1))]}
copy=$(copy_repo flip-wal)
wk_repo_flip "$copy" "$wal_obj"
wk_assert_status 1 "a flipped byte in a WAL object fails verify" -- verify "$copy"
wk_assert_contains "$WK_OUT" "^corrupt: ${wal_obj//./\\.}: " "the WAL object is named as corrupt"
wk_assert_contains "$WK_OUT" "^verified [0-9]+ objects \([0-9.]+ (B|KiB|MiB|GiB)\): 1 problem$" \
    "the summary counts one problem"
wk_assert_status 1 "--json too" -- verify "$copy" --json
cp "$WK_OUT" "$work/flip-wal.json"
assert_json "$work/flip-wal.json" "d['ok'] is False and [(p['kind'], p['object']) for p in d['problems']] == [('corrupt', '$wal_obj')]" \
    "--json lists the corrupt WAL object"

# ---------------------------------------------------------------------------
# a flipped byte in a backup object

backup_obj=${backup_objects[0]}
copy=$(copy_repo flip-backup)
wk_repo_flip "$copy" "$backup_obj"
wk_assert_status 1 "a flipped byte in a backup object fails verify" -- verify "$copy"
wk_assert_contains "$WK_OUT" "^corrupt: ${backup_obj//./\\.}: " "the backup object is named as corrupt"
wk_assert_status 1 "--json too" -- verify "$copy" --json
cp "$WK_OUT" "$work/flip-backup.json"
assert_json "$work/flip-backup.json" "d['ok'] is False and [(p['kind'], p['object']) for p in d['problems']] == [('corrupt', '$backup_obj')]" \
    "--json lists the corrupt backup object"

# ---------------------------------------------------------------------------
# a flipped byte in a dump object

if ((dumped)); then
    dump_obj=$(wk_repo_ls "$repo" dumps | awk -F/ '$NF != "dump.json"' | sed -n 1p)
    if [[ -n $dump_obj ]]; then
        copy=$(copy_repo flip-dump)
        wk_repo_flip "$copy" "$dump_obj"
        wk_assert_status 1 "a flipped byte in a dump object fails verify" -- verify "$copy"
        wk_assert_contains "$WK_OUT" "^corrupt: ${dump_obj//./\\.}: " "the dump object is named as corrupt"
        wk_assert_status 1 "--json too" -- verify "$copy" --json
        cp "$WK_OUT" "$work/flip-dump.json"
        assert_json "$work/flip-dump.json" "d['ok'] is False and ('corrupt', '$dump_obj') in [(p['kind'], p['object']) for p in d['problems']]" \
            "--json lists the corrupt dump object"
    else
        wk_fail "the dump left no object in the repository"
    fi
fi

# ---------------------------------------------------------------------------
# a segment deleted in the middle of the timeline

gone=${segments[$mid]}
gone_name=$(basename "$gone")
gone_name=${gone_name%%-*}
copy=$(copy_repo gap)
wk_repo_rm "$copy" "$gone"
wk_assert_status 1 "a deleted segment fails verify" -- verify "$copy"
wk_assert_contains "$WK_OUT" "^gap: $gone_name: " "the missing segment is named as a gap"
wk_assert_status 1 "--json too" -- verify "$copy" --json
cp "$WK_OUT" "$work/gap.json"
assert_json "$work/gap.json" "d['ok'] is False and d['gaps'] == {'1': ['$gone_name']} and ('gap', '$gone_name') in [(p['kind'], p['object']) for p in d['problems']]" \
    "--json lists the gap by segment name"

# ---------------------------------------------------------------------------
# warnings and usage

copy=$(copy_repo temporary)
if [[ $(wk_repo_kind) == posix ]]; then
    # a temporary file of a killed write
    temp=wal/0000000100000000/.000000010000000000000042.tmp.4242.0
    printf 'half' >"$copy/$temp"
    chown postgres: "$copy/$temp"
else
    # a multipart upload in progress, one part sent, as a killed write leaves it
    temp=wal/0000000100000000/000000010000000000000042-half
    wk_s3tool upload-start "$copy/$temp" 2048 >/dev/null
fi
wk_assert_status 0 "a leftover temporary is only a warning" -- verify "$copy"
wk_assert_contains "$WK_OUT" "^warning: temporary: ${temp//./\\.}: " \
    "the temporary is named"
wk_assert_contains "$WK_OUT" ": 0 problems, 1 warning$" "the summary counts the warning"
wk_assert_eq 1 "$(wk_repo_uploads "$copy" | grep -c -F "$temp" || true)" "nothing is deleted"

wk_assert_status 1 "an unknown option is refused" -- verify "$repo" --bogus
wk_assert_eq 1 "$(grep -c 'error:' "$WK_ERR")" "with one error line"
wk_assert_eq "" "$(cat "$WK_OUT")" "and nothing on stdout"
nothing=$(wk_repo_new nothing-here "$work")
wk_assert_status 1 "a repository that is not one is an error" -- verify "$nothing"
wk_assert_eq 1 "$(grep -c 'error:' "$WK_ERR")" "with one error line"

wk_done
