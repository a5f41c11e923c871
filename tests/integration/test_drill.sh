#!/usr/bin/env bash
# test_drill.sh: walkeep drill (the automated restore test) against a real PostgreSQL (15 to 18).
#
# One primary archives through walkeep-archive; walkeep-basebackup takes one backup. Then:
#   1. a drill on the good backup passes (exit 0), names the backup, and an --sql
#      expectation that holds (in the database --dbname names) is reported ok; amcheck
#      ran (or was skipped);
#   2. an --sql expectation that does not hold fails the drill (exit 1) and names the
#      check; --json reports the same;
#   3. a corrupt backup object (a flipped byte in the biggest object of the backup, on a
#      copy of the repository) fails the drill with the "restore" check named;
#   4. a malformed --sql file is refused before anything is restored;
#   5. an error half-way (pg_ctl missing) is reported and still cleaned up;
# and after every run no PostgreSQL process runs on a drill folder, nothing is left in
# the drill's TMPDIR, and the drill archived nothing into the repository.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh).
#
# Run: WALKEEP_BIN=<build dir> bash test_drill.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DRILL_TIMEOUT=240 # seconds for one drill (restore, replay, checks, stop)

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
WALKEEP=$(wk_bin walkeep)
FETCH=$(wk_bin walkeep-fetch) # the drill's restore_command
: "$FETCH"
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
drilltmp=$(wk_tmpdir drilltmp) # the drills' TMPDIR: must be empty after each run

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" \
    "pg_bindir = $WK_PGBIN"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
# The checked table lives in its own database: --sql queries run where --dbname says.
wk_psql "$pg" "CREATE DATABASE shop" >/dev/null
wk_psql "$pg" "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g" shop >/dev/null
wk_psql "$pg" "CREATE INDEX t_v ON t (v); ALTER TABLE t ADD PRIMARY KEY (id)" shop >/dev/null

wk_run_as_postgres timeout -k 10 240 "$BASEBACKUP" --config "$conf" --label good >/dev/null
wk_pass "a base backup was taken"
# Rows after the backup: the default target (the end of the archive) must replay them.
wk_psql "$pg" "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1001, 1200) g" shop >/dev/null
seg=$(wk_psql "$pg" "select $(wk_sql_walfile "pg_switch_wal()")")
wk_wait_for_sql "the archiving of $seg" 90 "$pg" \
    "select coalesce(last_archived_wal, '') >= '$seg' from pg_stat_archiver" t

# drill CONF ARGS...: walkeep drill as postgres with TMPDIR=$drilltmp, bounded.
drill() {
    local c=$1
    shift
    wk_run_as_postgres env TMPDIR="$drilltmp" timeout -k 10 "$DRILL_TIMEOUT" \
        "$WALKEEP" drill --config "$c" "$@"
}

# Postmasters (postgres processes whose parent is no postgres) running on a drill folder.
drill_postmasters() {
    ps -eo pid=,ppid=,comm= | awk '$3 == "postgres" { comm[$1] = 1; ppid[$1] = $2 }
        END { for (p in comm) if (!(ppid[p] in comm)) print p }' |
        while read -r p; do
            # this test's drills only: others may run in parallel (ctest -j)
            if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$drilltmp/walkeep-drill."; then
                printf '%s ' "$p"
            fi
        done
}
# The timeline history files in the repository (a promoted drill server that archived
# would add 00000002.history).
histories() {
    local all
    all=$(wk_repo_ls "$repo") || return 1
    grep -E '(^|/)[0-9A-F]{8}\.history' <<<"$all" | tr '\n' ' ' || true
}
history_before=$(histories)

# after_run WHAT: nothing of the drill is left behind.
after_run() {
    local left
    left=$(pgrep -f -- "$drilltmp" || true)
    wk_assert_eq "" "$left" "$1: no process runs on a drill folder"
    wk_assert_eq "" "$(ls -A "$drilltmp")" "$1: the drill's temporary folder is gone"
    # The drill's server must never archive into the repository (it promotes to timeline 2).
    wk_assert_eq "$history_before" "$(histories)" \
        "$1: the drill archived nothing into the repository"
}

sqlfile=$work/checks.sql
cat >"$sqlfile" <<'EOF'
# checks for the drill: SQL => expected first column of the first row
SELECT count(*) FROM t => 1200

SELECT v FROM t WHERE id = 7 => 8f14e45fceea167a5a36dedd4bea2543
EOF
badfile=$work/bad.sql
cat >"$badfile" <<'EOF'
SELECT count(*) FROM t WHERE id <= 1000 => 1000
SELECT count(*) FROM t WHERE id > 1000 => 999
EOF
malformed=$work/malformed.sql
printf 'SELECT 1 => 1\nSELECT 2\n' >"$malformed"
chown postgres: "$sqlfile" "$badfile" "$malformed" 2>/dev/null || true

# --- 1. a good backup passes -------------------------------------------------------------
wk_assert_status 1 "--dbname without --sql is refused" -- drill "$conf" --dbname shop
wk_assert_contains "$WK_ERR" "--dbname names the database of the --sql queries: give --sql too" \
    "saying what it is for"
wk_assert_status 0 "the drill passes on a good backup" -- drill "$conf" --sql "$sqlfile" --dbname shop
cp "$WK_OUT" "$work/run1.out"
wk_assert_contains "$work/run1.out" '^backup: +good$' "the report names the backup"
wk_assert_contains "$work/run1.out" '^target: +end of archive$' "and the target"
wk_assert_contains "$work/run1.out" '^restore: +[0-9.]+ s$' "and the time to restore"
wk_assert_contains "$work/run1.out" '^replay: +[0-9.]+ s$' "and the time to replay"
wk_assert_contains "$work/run1.out" '^ok +server: ' "the server came up"
wk_assert_contains "$work/run1.out" '^ok +target: .*archive recovery complete' \
    "recovery reached the end of the archive"
wk_assert_contains "$work/run1.out" '^(ok +amcheck: [1-9][0-9]* B-tree indexes|skipped +amcheck)' \
    "amcheck ran over the B-tree indexes (or was skipped)"
wk_assert_contains "$work/run1.out" '^ok +sql line 2: SELECT count\(\*\) FROM t => 1200$' \
    "the --sql expectation holds (rows after the backup were replayed)"
wk_assert_contains "$work/run1.out" '^ok +sql line 4: ' "and the second one"
wk_assert_contains "$work/run1.out" '^drill passed$' "the report says the drill passed"
after_run "good backup"

# --- 2. an expectation that does not hold --------------------------------------------
wk_assert_status 1 "the drill fails when an --sql expectation does not hold" -- \
    drill "$conf" --sql "$badfile" --dbname shop --json --target-immediate
cp "$WK_OUT" "$work/run2.json"
check_json() {
    python3 - "$work/run2.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in j["checks"]}
assert j["ok"] is False, j
assert j["failed"] == "sql line 2", j["failed"]
assert j["backup"] == "good", j["backup"]
assert j["target"].startswith("immediate"), j["target"]
assert c["sql line 2"]["status"] == "failed", c
assert "expected 999, got 0" in c["sql line 2"]["detail"], c["sql line 2"]
assert c["sql line 1"]["status"] == "ok", c
assert c["sql line 2"]["detail"].endswith("got 0"), c  # immediate: no row after the backup
assert c["server"]["status"] == "ok" and c["target"]["status"] == "ok", c
assert "recovery stopping" in c["target"]["detail"], c["target"]
assert isinstance(j["restore_ms"], int) and isinstance(j["replay_ms"], int), j
print("ok")
PY
}
wk_assert_eq ok "$(check_json 2>&1)" "--json names the failed check and what it got"
after_run "failed expectation"

# --- 3. a corrupt backup object --------------------------------------------------------
repo2=$(wk_repo_new repo-corrupt "$work")
wk_repo_copy "$repo" "$repo2"
victim=$(wk_repo_ls -s "$repo2" backups/good | sort -n | tail -n 1 | cut -d' ' -f2-)
wk_repo_flip "$repo2" "$victim"
conf2=$work/walkeep-corrupt.conf
sed "s|^repo = .*|repo = $repo2|" "$conf" >"$conf2"
chmod 0600 "$conf2"
chown postgres: "$conf2" 2>/dev/null || true
wk_assert_status 1 "the drill fails on a corrupt backup object" -- drill "$conf2"
cp "$WK_OUT" "$work/run3.out"
wk_assert_contains "$work/run3.out" '^FAILED +restore: ' "the restore check is the one that failed"
wk_assert_contains "$work/run3.out" '^drill FAILED: check "restore" failed$' "and the report names it"
after_run "corrupt object"

# --- 4. a malformed --sql file ---------------------------------------------------------
wk_assert_status 1 "a malformed --sql file is refused" -- drill "$conf" --sql "$malformed"
wk_assert_contains "$WK_ERR" 'invalid line 2 of' "the error names the line"
after_run "malformed --sql"

# --- 5. an error half-way (no pg_ctl): reported, and everything removed ------------------
wk_assert_status 1 "a drill that cannot start the server is an error" -- \
    drill "$conf" --pg-bindir=/nonexistent
wk_assert_contains "$WK_ERR" 'could not run "/nonexistent/pg_ctl"' "the error names pg_ctl"
after_run "no pg_ctl"

wk_assert_eq "" "$(drill_postmasters)" "no postmaster of a drill remains"
wk_done
