#!/usr/bin/env bash
# walkeep check against a real PostgreSQL (15 to 18): OK on a healthy setup, WARNING / CRITICAL
# with the Nagios exit codes when the newest backup is too old, when archive_command
# fails, when the repository belongs to another cluster; the Prometheus textfile parses
# and holds the expected values; --switch-wal proves archiving end to end.
# With WK_REPO_KIND=s3 the repositories are on S3 (lib.sh).
source "$(dirname "$0")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
BASEBACKUP=$(wk_bin walkeep-basebackup)
WALKEEP=$(wk_bin walkeep)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
prom=$work/metrics/walkeep.prom
as_pg() { wk_run_as_postgres "$@"; }
check() { as_pg "$WALKEEP" check --config "$conf" "$@"; }

# prom_parse FILE: checks the textfile format (every line a # HELP / # TYPE comment or
# "name value", names ^walkeep_[a-z_]+$, every sample with its HELP and TYPE) and prints
# "name value" lines; exits 1 on the first bad line.
prom_parse() {
    python3 - "$1" <<'EOF'
import re, sys
name_re = re.compile(r'^walkeep_[a-z_]+$')
label = r'[a-z_]+="(?:[^"\\\n]|\\.)*"'
sample_re = re.compile(r'^walkeep_[a-z_]+(?:\{' + label + r'(?:,' + label + r')*\})? -?[0-9]+(?:\.[0-9]+)?$')
described, typed, samples = set(), set(), []
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip('\n')
    parts = line.split(' ')
    if line.startswith('# HELP ') and len(parts) >= 4 and name_re.match(parts[2]):
        described.add(parts[2])
    elif line.startswith('# TYPE ') and len(parts) == 4 and name_re.match(parts[2]) \
            and parts[3] in ('gauge', 'counter'):
        typed.add(parts[2])
    elif sample_re.match(line):
        sample, value = line.rsplit(' ', 1)
        name = sample.split('{')[0]
        if name not in described or name not in typed:
            sys.exit('line %d: %s has no HELP or TYPE before it' % (n, name))
        if sample in [s[0] for s in samples]:
            sys.exit('line %d: %s repeated' % (n, sample))
        samples.append((sample, value))
    else:
        sys.exit('line %d does not parse: %r' % (n, line))
for name, value in samples:
    print(name, value)
EOF
}
prom_value() { # NAME: its value in $prom ("" when absent)
    prom_parse "$prom" | awk -v n="$1" '$1 == n { print $2 }'
}
json_status() { # prints the overall status of check --json output in $WK_OUT
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], " ".join(c["name"] + "=" + c["status"] for c in d["checks"]))' "$WK_OUT"
}

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$port dbname=postgres" \
    "pgdata = $pg"
mkdir -p "$work/metrics"
chown postgres: "$work/metrics"
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g" >/dev/null

# --- no backup yet: CRITICAL -----------------------------------------------------------
as_pg "$WALKEEP" init --config "$conf" >/dev/null 2>&1
wk_assert_status 2 "no complete backup: CRITICAL (exit 2)" -- check
wk_assert_contains "$WK_OUT" "^CRITICAL: backup: no complete base backup" "it says there is no backup"

# --- healthy --------------------------------------------------------------------------
wk_assert_status 0 "a backup succeeds" -- as_pg "$BASEBACKUP" --config "$conf" --label first
# The backup's history file and last segment are archived after it returns: wait for them,
# so that the backlog below is a fact of a healthy setup, not of the archiver's timing.
wk_wait_for_sql "the archiver to catch up with the backup" 60 "$pg" \
    "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'" 0
wk_assert_status 0 "healthy setup with a fresh backup: OK (exit 0)" -- check --prometheus "$prom"
for c in repository postgresql backup archiver wal ready; do
    wk_assert_contains "$WK_OUT" "^OK: $c: " "the $c check is OK"
done
wk_assert_eq 6 "$(wc -l <"$WK_OUT")" "one line per check"
server_version=$(wk_psql "$pg" "SHOW server_version")
wk_assert_eq "OK: postgresql: PostgreSQL $server_version (supported: 15 to 18)" \
    "$(grep '^OK: postgresql: ' "$WK_OUT")" "the postgresql check names the server's version (PostgreSQL $WK_PG_MAJOR)"
wk_assert_contains "$WK_OUT" "system identifier [0-9]+ matches the server" "the identity is compared"
if prom_parse "$prom" >"$work/prom.txt" 2>"$work/prom.err"; then
    wk_pass "the Prometheus file parses"
else
    wk_fail "the Prometheus file parses" "$(cat "$work/prom.err")" "$(cat "$prom")"
fi
wk_assert_no_file "$prom.tmp" "no temporary file is left behind"
wk_assert_eq 1 "$(prom_value walkeep_up)" "walkeep_up 1"
wk_assert_eq 0 "$(prom_value walkeep_check_status)" "walkeep_check_status 0"
wk_assert_eq 0 "$(prom_value walkeep_archive_failed_total)" "walkeep_archive_failed_total 0"
age=$(prom_value walkeep_backup_newest_age_seconds)
age_at=$(date +%s) # when the backup was $age seconds old
if [[ $age =~ ^[0-9]+$ ]] && ((age < 60)); then
    wk_pass "the backup age is small ($age s)"
else
    wk_fail "the backup age is small" "got: $age"
fi
wk_assert_ge 1 "$(prom_value walkeep_backup_newest_size_bytes)" "the backup size is there"
wk_assert_ge 1 "$(prom_value walkeep_repository_size_bytes)" "the repository size is there"
wk_assert_eq 0 "$(prom_value walkeep_archive_ready_files)" "no .ready backlog"
start=$(prom_value walkeep_recovery_window_start_seconds)
end=$(prom_value walkeep_recovery_window_end_seconds)
now=$(date +%s)
if [[ -n $start && -n $end ]] && ((start <= end && end <= now + 1 && now - start < 120)); then
    wk_pass "the recovery window is plausible ($start .. $end)"
else
    wk_fail "the recovery window is plausible" "start: $start end: $end now: $now"
fi
wk_assert_status 0 "--json: OK" -- check --json
wk_assert_eq "OK repository=OK postgresql=OK backup=OK archiver=OK wal=OK ready=OK" "$(json_status)" \
    "--json lists every check with its status"

# --- --switch-wal -----------------------------------------------------------------------
wk_psql "$pg" "INSERT INTO t SELECT generate_series(1, 1000)" >/dev/null
wk_assert_status 0 "--switch-wal: the segment reaches the repository (OK)" -- \
    check --switch-wal --timeout=30s
wk_assert_contains "$WK_OUT" '^OK: switch_wal: "[0-9A-F]{24}" reached the repository' \
    "it names the segment"

# --- .ready count without pg_ls_archive_statusdir(): from pgdata --------------------------
wk_psql "$pg" "CREATE ROLE plain LOGIN" >/dev/null
wk_assert_status 0 "a role without pg_monitor: still OK (the backlog read from pgdata)" -- \
    check --pg-conninfo="host=$(wk_cluster_sockdir "$pg") port=$port user=plain dbname=postgres"
wk_assert_contains "$WK_OUT" "^OK: ready: 0 WAL files" "the backlog is counted"

# --- the backup ages ---------------------------------------------------------------------
stop=$((age_at - age))
while (($(date +%s) - stop < 12)); do sleep 1; done
# A limit just under the age, so that WARNING (between it and twice it) holds however long
# the check takes on a busy machine (up to the limit itself).
limit=$(($(date +%s) - stop - 1))
wk_assert_status 1 "a backup older than --max-backup-age: WARNING (exit 1)" -- \
    check --max-backup-age="${limit}s"
wk_assert_contains "$WK_OUT" "^WARNING: backup: newest complete backup finished .* limit ${limit}s" \
    "it names the backup and the limit"
wk_assert_status 2 "older than twice --max-backup-age: CRITICAL (exit 2)" -- \
    check --max-backup-age=1s
wk_assert_status 3 "a bad duration is UNKNOWN (exit 3)" -- check --max-backup-age=soon
wk_assert_contains "$WK_ERR" "invalid value for --max-backup-age" "and says why"

# --- archive_command fails: CRITICAL ------------------------------------------------------
wk_psql "$pg" "ALTER SYSTEM SET archive_command = '/bin/false'" >/dev/null
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
sleep 1
wk_psql "$pg" "INSERT INTO t SELECT generate_series(1, 1000)" >/dev/null
wk_psql "$pg" "SELECT pg_switch_wal()" >/dev/null
wk_wait_for_sql "an archiving failure" 60 "$pg" \
    "SELECT failed_count > 0 FROM pg_stat_archiver" t
wk_assert_status 2 "archive_command failing: CRITICAL (exit 2)" -- check --prometheus "$prom"
wk_assert_contains "$WK_OUT" "^CRITICAL: archiver: archiving is failing" "the archiver check says so"
wk_assert_ge 1 "$(prom_value walkeep_archive_failed_total)" "walkeep_archive_failed_total counts it"
wk_assert_eq 2 "$(prom_value walkeep_check_status)" "walkeep_check_status 2"
wk_assert_ge 1 "$(prom_value walkeep_archive_ready_files)" "the .ready backlog shows"
wk_assert_status 2 "--switch-wal while archiving fails: CRITICAL" -- \
    check --switch-wal --timeout=2s
wk_assert_contains "$WK_OUT" "^CRITICAL: switch_wal: .*did not reach the repository within 2 s" \
    "the switch check times out"

# --- archiving recovers: WARNING until the statistics are reset ---------------------------
wk_psql "$pg" "ALTER SYSTEM SET archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")" >/dev/null
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
wk_wait_for_sql "archiving to recover" 90 "$pg" \
    "SELECT last_archived_time > last_failed_time FROM pg_stat_archiver" t
wk_wait_for_sql "the backlog to clear" 60 "$pg" \
    "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'" 0
wk_assert_status 1 "archiving recovered after failures: WARNING (exit 1)" -- check
wk_assert_contains "$WK_OUT" "^WARNING: archiver: archiving recovered" "the archiver check says so"
wk_psql "$pg" "SELECT pg_stat_reset_shared('archiver')" >/dev/null
wk_psql "$pg" "INSERT INTO t SELECT generate_series(1, 1000)" >/dev/null
wk_assert_status 0 "after pg_stat_reset_shared('archiver'): OK" -- check --switch-wal
# Nothing written since that switch: the position is at a segment boundary, where
# pg_walfile_name names the next (empty) segment from PostgreSQL 17 on.
wk_assert_status 0 "--switch-wal on an idle server: OK" -- check --switch-wal --timeout=20s
wk_assert_contains "$WK_OUT" "^OK: switch_wal: " "the idle switch check names an archived segment"

# --- archive_command and archive_library both set: CRITICAL ------------------------------
# PostgreSQL 16 and later refuse to archive at all; 15 uses the library and ignores
# archive_command, so no WAL reaches walkeep either way.
wk_psql "$pg" "ALTER SYSTEM SET archive_library = 'basic_archive'" >/dev/null
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
wk_wait_for_sql "archive_library to be set" 30 "$pg" "SHOW archive_library" basic_archive
wk_assert_status 2 "archive_command and archive_library both set: CRITICAL (exit 2)" -- check
if ((WK_PG_MAJOR >= 16)); then
    wk_assert_contains "$WK_OUT" "^CRITICAL: archiver: archive_command and archive_library are both set: PostgreSQL 16 and later archive nothing; set archive_library = ''\$" \
        "the archiver check says PostgreSQL $WK_PG_MAJOR archives nothing"
else
    wk_assert_contains "$WK_OUT" "^CRITICAL: archiver: archive_library is set, so PostgreSQL 15 ignores archive_command and no WAL reaches walkeep; set archive_library = ''\$" \
        "the archiver check says PostgreSQL 15 ignores archive_command"
fi
wk_psql "$pg" "ALTER SYSTEM RESET archive_library" >/dev/null
wk_psql "$pg" "SELECT pg_reload_conf()" >/dev/null
wk_wait_for_sql "archive_library to be cleared" 30 "$pg" "SHOW archive_library" ""
wk_psql "$pg" "SELECT pg_stat_reset_shared('archiver')" >/dev/null
wk_psql "$pg" "INSERT INTO t SELECT generate_series(1, 1000)" >/dev/null
wk_assert_status 0 "archive_library cleared again: OK" -- check --switch-wal --timeout=60s

# --- a dump that shrank: WARNING -----------------------------------------------------------
# (where pg_dump fits the server: Debian's 15 dumps only 15)
if wk_pg_dump_fits; then
    dump() { as_pg "$WALKEEP_BIN/walkeep-dump" --config "$conf" --pg-bindir "$(wk_pg_client_bindir)" "$@"; }
    wk_psql "$pg" "CREATE DATABASE shop" >/dev/null
    wk_psql "$pg" "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 50000) g" shop >/dev/null
    wk_assert_status 0 "a dump of shop" -- dump create --dbname shop --label shop-1
    wk_assert_status 0 "one dump of shop: OK" -- check
    wk_assert_contains "$WK_OUT" "^OK: dump: " "the dump check is OK"
    wk_psql "$pg" "TRUNCATE orders" shop >/dev/null
    sleep 1 # the listing orders dumps by their start second
    wk_assert_status 0 "a dump of shop with its main table emptied" -- dump create --dbname shop --label shop-2
    wk_assert_status 1 "a dump that shrank: WARNING (exit 1)" -- check --prometheus "$prom"
    wk_assert_contains "$WK_OUT" '^WARNING: dump: .*; the newest custom dump of "shop" is only [0-9]+% of the one before \([0-9.]+ [KM]iB, before [0-9.]+ MiB\)$' \
        "it names the database and says by how much"
    ratio=$(prom_value 'walkeep_dump_newest_size_ratio{database="shop",format="custom"}')
    if [[ -n $ratio ]] && python3 -c "import sys; sys.exit(0 if float('$ratio') < 0.5 else 1)"; then
        wk_pass "the Prometheus file has the ratio ($ratio)"
    else
        wk_fail "the Prometheus file has the ratio" "got: '$ratio'" "$(cat "$prom")"
    fi
    wk_assert_status 0 "check_shrink_percent = 0 turns the warning off" -- check --check-shrink-percent=0
fi

# --- a repository of another cluster: CRITICAL ----------------------------------------------
other=$(wk_cluster_init other)
otherrepo=$(wk_repo_new otherrepo "$work")
as_pg "$WALKEEP" init --config "$conf" --pgdata "$other" --repo="$otherrepo" >/dev/null 2>&1
wk_assert_status 2 "a repository of another cluster: CRITICAL (exit 2)" -- \
    check --repo="$otherrepo"
wk_assert_contains "$WK_OUT" "^CRITICAL: repository: the repository belongs to another cluster" \
    "the repository check says so"
none=$(wk_repo_new none "$work")
wk_assert_status 2 "a missing repository: CRITICAL (exit 2)" -- check --repo="$none"
wk_assert_contains "$WK_OUT" "^CRITICAL: repository: " "the repository check says why"

wk_done
