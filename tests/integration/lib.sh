# shellcheck shell=bash
# lib.sh: shared harness for walkeep's integration tests.
#
# Sourced by every tests/integration/test_*.sh. It gives a test a scratch
# folder, throw-away PostgreSQL clusters running as the "postgres" user (each on
# its own port and Unix-socket folder, no TCP), bounded waits and counting
# assertions. Everything a test starts is stopped and removed at exit, also when
# the test fails or is interrupted.
#
# Environment:
#   WALKEEP_BIN    build folder holding walkeep-archive, walkeep-fetch, walkeep (required)
#   WALKEEP_SRC    source folder (optional)
#   WK_PG_MAJOR    the PostgreSQL major to run on: 15 (default), 16, 17 or 18; its
#                  server programs come from scripts/pg-bindir.sh (Debian's, or the ones
#                  scripts/deps.sh unpacked into .pg/); the test fails when they are missing
#   WK_PGBIN       PostgreSQL server binaries (default: those of WK_PG_MAJOR)
#   WK_PG_CLIENT_BIN  client programs (psql, pgbench, pg_dump, ...) that WK_PGBIN lacks
#                  (default /usr/lib/postgresql/15/bin: Debian's 15 clients speak to 16-18)
#   WK_INITDB_ARGS extra initdb arguments for every cluster (e.g. --wal-segsize=64)
#   WK_PG_USER     user that runs PostgreSQL (default postgres)
#   WK_TMPROOT     where the scratch folder is made (default /tmp; must be
#                  traversable by WK_PG_USER)
#   WK_KEEP_TMP=1  keep the scratch folder at exit (it is always kept, and its
#                  path printed, when the test failed and this is set)
#   WK_REPO_KIND   posix (default): repositories are folders under the scratch
#                  folder; s3: prefixes in a bucket of a throw-away Ceph RADOS
#                  Gateway (tests/s3/start-s3.sh) that the test starts at first
#                  use and stops at exit
#
# State that must outlive a $(...) subshell (clusters, ports) lives in files
# under the scratch folder, so every function may be used in a command
# substitution.
#
# Functions (all return non-zero on failure, so `set -euo pipefail` stops the
# test where it went wrong; assertions never stop it, they count):
#   wk_tmpdir [NAME]             new scratch folder owned by postgres; prints it
#   wk_on_exit CMD...            run CMD at exit (last registered runs first)
#   wk_run_as_postgres CMD...    run CMD as postgres (cwd kept if postgres may enter it)
#   wk_pgbin NAME                path of a PostgreSQL program
#   wk_bin NAME                  path of a walkeep program, checked executable by postgres
#   wk_pg_bindir MAJOR           server programs' folder of another major (scripts/pg-bindir.sh)
#   wk_pg_client_bindir          pg_bindir for walkeep-dump (the folder with pg_dump)
#   wk_pg_dump_fits              status 0 when that pg_dump can dump WK_PG_MAJOR
#   wk_conf_quote STRING         STRING as a single-quoted postgresql.conf value
#   wk_cluster_path NAME         a fresh data-directory path (not created; parent owned by postgres)
#   wk_cluster_init NAME [initdb args...]   initdb + port/socket settings; prints the data dir
#   wk_cluster_adopt DATADIR     give a copied data dir (e.g. a base backup) its own port/socket
#   wk_cluster_conf DATADIR "key = value"...  append settings to postgresql.auto.conf
#   wk_cluster_start DATADIR     pg_ctl start -w (log tail on failure)
#   wk_cluster_stop DATADIR [fast|immediate|smart]  pg_ctl stop -w (log tail on failure)
#   wk_restored_start DIR TIMEOUT  adopt a restored copy, archiving off, start it, wait
#                                until recovery ended (status 1, log tail, when not)
#   wk_cluster_port / wk_cluster_sockdir / wk_cluster_log DATADIR   print them
#   wk_cluster_log_tail DATADIR [LINES]   server log tail, to stderr
#   wk_psql DATADIR SQL [DBNAME]          psql -XAtq -v ON_ERROR_STOP=1; prints the result
#   wk_sql_walfile LSN_SQL       SQL naming the segment before a position (pg_walfile_name
#                                as PostgreSQL 15 and 16 have it, on every major)
#   wk_wait_for DESCRIPTION TIMEOUT_S CMD...        poll CMD until it succeeds
#   wk_wait_for_sql DESCRIPTION TIMEOUT_S DATADIR SQL EXPECTED   poll until SQL prints EXPECTED
#   wk_pass MSG / wk_fail MSG [DETAIL...]
#   wk_assert_eq EXPECTED ACTUAL MSG      wk_assert_ne UNEXPECTED ACTUAL MSG
#   wk_assert_ge MINIMUM ACTUAL MSG       (integers)
#   wk_assert_status EXPECTED MSG -- CMD...   EXPECTED: N, !N (anything but N), >N, <N;
#                                 stdout/stderr kept in $WK_OUT / $WK_ERR, status in $WK_STATUS
#   wk_assert_contains FILE ERE MSG       wk_assert_not_contains FILE ERE MSG
#   wk_assert_file PATH MSG               wk_assert_no_file PATH MSG
#   wk_assert_same_file EXPECTED_FILE ACTUAL_FILE MSG   (cmp)
#   wk_bail MSG                  stops the test now (counts as failed)
#   wk_done                      prints "N passed, M failed"; exits 1 if any failed
#
# Repositories, so that a test is written once for both WK_REPO_KIND: REPO is
# what wk_repo_new printed, PATH an object path relative to it ("wal/..."). In
# s3 mode they reach the server through tests/s3/s3tool.py, never through
# walkeep's own S3 code; walkeep's programs get the keys from the configuration
# file (wk_repo_conf).
#   wk_repo_kind                 prints posix or s3
#   wk_s3_start                  s3: starts the test's S3 server if it does not run
#                                (wk_repo_new does it; stopped at exit); posix: nothing
#   wk_repo_new NAME [PARENT]    a fresh repository location (nothing there yet):
#                                posix PARENT/NAME (default PARENT: a new scratch
#                                folder), s3 s3://walkeep-test/<test>-<random>/NAME
#   wk_repo_conf REPO            its configuration lines: "repo = REPO", and in s3
#                                mode s3_endpoint, s3_region, s3_uri_style, the keys
#   wk_repo_conf_write FILE REPO [LINE...]   wk_repo_conf and LINEs into FILE,
#                                owned by postgres, mode 0600
#   wk_repo_ls [-s] REPO [SUBDIR]   object paths relative to REPO (below SUBDIR),
#                                sorted, hidden temporaries left out; -s: "SIZE PATH"
#   wk_repo_cat REPO PATH        the object to stdout
#   wk_repo_put REPO PATH        stdin to the object (replaced if there)
#   wk_repo_rm REPO PATH...      removes objects
#   wk_repo_exists REPO PATH     status 0 if PATH is an object, or a folder holding one
#   wk_repo_flip REPO PATH       flips the low bit of the object's middle byte
#   wk_repo_copy REPO NEWREPO    copies the whole repository (NEWREPO from wk_repo_new)
#   wk_repo_uploads REPO         leftovers of unfinished writes: posix the hidden
#                                temporaries, s3 the multipart uploads in progress
#                                ("PATH UPLOADID"); nothing when there is none
#   wk_repo_drop REPO            removes everything
#   wk_assert_repo_file REPO PATH MSG / wk_assert_no_repo_file REPO PATH MSG
#   wk_s3tool ARGS...            s3: tests/s3/s3tool.py against the test's server

set -euo pipefail
set -E

WK_PG_USER=${WK_PG_USER:-postgres}
WK_PG_MAJOR=${WK_PG_MAJOR:-15}
WK_INITDB_ARGS=${WK_INITDB_ARGS:-}
if [[ -z ${WK_PGBIN:-} ]]; then
    # A missing major fails the test here: never a silent pass on another version.
    WK_PGBIN=$("$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/pg-bindir.sh" "$WK_PG_MAJOR") ||
        { echo "$(basename "${BASH_SOURCE[1]:-$0}" .sh): error: PostgreSQL $WK_PG_MAJOR is not installed (scripts/deps.sh installs it)" >&2; exit 2; }
fi
WK_PG_CLIENT_BIN=${WK_PG_CLIENT_BIN:-/usr/lib/postgresql/15/bin}
export WK_PGBIN WK_PG_MAJOR WK_PG_CLIENT_BIN WK_INITDB_ARGS

WK_PASSED=0
WK_FAILED=0
WK_DONE=0
WK_ON_EXIT=()
WK_TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

# The test's own stdout and stderr, kept so that exit handling and harness
# messages reach them even from inside a redirected command (bash runs a trap
# with the redirections of the command it interrupted still in place).
exec {WK__STDOUT}>&1 {WK__STDERR}>&2

wk__log() {
    printf '%s: %s\n' "$WK_TEST_NAME" "$*" >&"$WK__STDERR"
}

wk__die() {
    wk__log "error: $*"
    exit 2
}

# ---------------------------------------------------------------------------
# running as postgres

if [[ $(id -un) == "$WK_PG_USER" ]]; then
    WK__AS_PG=()
elif [[ $(id -u) -eq 0 ]]; then
    command -v runuser >/dev/null 2>&1 || wk__die "runuser not found (util-linux)"
    id "$WK_PG_USER" >/dev/null 2>&1 || wk__die "user \"$WK_PG_USER\" does not exist"
    WK__AS_PG=(runuser -u "$WK_PG_USER" --)
else
    wk__die "must run as root or as \"$WK_PG_USER\" (PostgreSQL refuses to run as root)"
fi

# wk_run_as_postgres CMD...: runs CMD as postgres with the caller's stdin/stdout/
# stderr. The working directory is the caller's when postgres may enter it,
# else the scratch folder. PG* variables of the caller are not passed on.
wk_run_as_postgres() {
    # shellcheck disable=SC2016 # $1 and $2 are sh -c's
    "${WK__AS_PG[@]}" env -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER -u PGDATA \
        -u PGSERVICE -u PGPASSWORD -u PGOPTIONS \
        sh -c 'cd "$1" 2>/dev/null || cd "$2" || exit 125; shift 2; exec "$@"' \
        wk-sh "$PWD" "$WK_TMP" "$@" {WK__STDOUT}>&- {WK__STDERR}>&-
}

# wk_pgbin NAME: path of a PostgreSQL program: WK_PGBIN's (the server's major), else a
# client program from WK_PG_CLIENT_BIN (the npm server trees have no psql or pgbench).
wk_pgbin() {
    local p=$WK_PGBIN/$1
    if [[ ! -x $p ]]; then
        case $1 in
        initdb | pg_ctl | postgres | pg_controldata | pg_resetwal) p= ;;
        *) p=$WK_PG_CLIENT_BIN/$1 ;;
        esac
        if [[ -z $p || ! -x $p ]]; then
            wk__log "error: PostgreSQL program \"$1\" not found in $WK_PGBIN${p:+ nor $WK_PG_CLIENT_BIN}"
            return 1
        fi
    fi
    printf '%s\n' "$p"
}

# wk_pg_bindir MAJOR: the server programs' folder of another PostgreSQL major
# (scripts/pg-bindir.sh); fails with its message when that major is not installed.
wk_pg_bindir() {
    "$WK__SRC/scripts/pg-bindir.sh" "${1:?major}"
}

# wk_pg_client_bindir: the folder whose pg_dump, pg_restore and psql walkeep-dump runs
# (the tests' pg_bindir for dumps): WK_PGBIN when it has them, else WK_PG_CLIENT_BIN.
wk_pg_client_bindir() {
    if [[ -x $WK_PGBIN/pg_dump ]]; then
        printf '%s\n' "$WK_PGBIN"
    else
        printf '%s\n' "$WK_PG_CLIENT_BIN"
    fi
}

# wk_pg_dump_fits: status 0 when that pg_dump can dump the server's major (pg_dump
# refuses a newer server: Debian's 15 cannot dump 16 to 18).
wk_pg_dump_fits() {
    local v
    v=$("$(wk_pg_client_bindir)/pg_dump" --version | sed -n 's/^pg_dump (PostgreSQL) \([0-9]*\).*/\1/p')
    [[ -n $v ]] && ((v >= WK_PG_MAJOR))
}

# wk_bin NAME: path of a walkeep program in $WALKEEP_BIN; fails with a hint when
# it is missing or the postgres user cannot run it.
wk_bin() {
    [[ -n ${WALKEEP_BIN:-} ]] || { wk__log "error: WALKEEP_BIN is not set"; return 1; }
    local p=$WALKEEP_BIN/$1
    if [[ ! -f $p ]]; then
        wk__log "error: \"$p\" does not exist (build walkeep first)"
        return 1
    fi
    if ! wk_run_as_postgres test -x "$p"; then
        # The build folder is out of postgres's reach (a checkout under a 0700 folder):
        # run a copy from the scratch folder instead.
        mkdir -p "$WK_TMP/bin"
        chmod 0755 "$WK_TMP/bin"
        install -m 0755 "$p" "$WK_TMP/bin/$1"
        p=$WK_TMP/bin/$1
        if ! wk_run_as_postgres test -x "$p"; then
            wk__log "error: user \"$WK_PG_USER\" cannot run \"$p\""
            return 1
        fi
    fi
    printf '%s\n' "$p"
}

# wk_conf_quote STRING: prints 'STRING' with quotes doubled, for postgresql.conf.
wk_conf_quote() {
    local s=$1
    printf "'%s'\n" "${s//\'/\'\'}"
}

# ---------------------------------------------------------------------------
# scratch folder and exit handling

# Every test names the PostgreSQL it ran on (and the initdb arguments) in its output.
printf '# PostgreSQL: %s (%s)%s\n' "$("$WK_PGBIN/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //')" \
    "$WK_PGBIN" "${WK_INITDB_ARGS:+, initdb $WK_INITDB_ARGS}"

WK_TMPROOT=${WK_TMPROOT:-/tmp}
WK_TMP=$(mktemp -d "$WK_TMPROOT/wk-it.XXXXXX")
chmod 0711 "$WK_TMP"
[[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$WK_TMP"
: >"$WK_TMP/clusters.tsv"
export WK_TMP

# wk_tmpdir [NAME]: creates a new folder under the scratch folder, owned by
# postgres, mode 0700; prints its path. Removed at exit with the rest.
wk_tmpdir() {
    local d
    d=$(mktemp -d "$WK_TMP/${1:-tmp}.XXXXXX")
    [[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$d"
    printf '%s\n' "$d"
}

# wk_on_exit CMD...: runs CMD (as one command line, eval'd) at exit, before the
# clusters are stopped; the last registered runs first. Call it from the test's
# own shell, not from inside $(...).
wk_on_exit() {
    WK_ON_EXIT+=("$*")
}

wk__stop_all_clusters() {
    local port datadir pid pids
    # newest first
    while IFS=$'\t' read -r port datadir; do
        [[ -n $datadir && -f $datadir/postmaster.pid ]] || continue
        pid=$(head -n 1 "$datadir/postmaster.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            wk__log "stopping cluster $datadir (port $port)"
            wk_run_as_postgres "$(wk_pgbin pg_ctl)" -D "$datadir" -m immediate -w -t 30 stop \
                >/dev/null 2>&1 || true
        fi
        # Leftovers: the postmaster (if pg_ctl could not stop it) and its children.
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$datadir"; then
            pids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
            wk__log "killing leftover postmaster $pid ($datadir)"
            # shellcheck disable=SC2086
            kill -KILL "$pid" $pids 2>/dev/null || true
        fi
    done < <(tac "$WK_TMP/clusters.tsv" 2>/dev/null || true)
}

wk__exit() {
    local status=$?
    set +e
    trap - ERR
    exec 1>&"$WK__STDOUT" 2>&"$WK__STDERR"
    local i
    for ((i = ${#WK_ON_EXIT[@]} - 1; i >= 0; i--)); do
        eval "${WK_ON_EXIT[i]}"
    done
    if [[ $WK_DONE -eq 0 ]]; then
        [[ $status -ne 0 ]] || status=1
        wk__log "test stopped before wk_done (status $status): $WK_PASSED passed, $WK_FAILED failed so far"
        [[ -z $WK__ERR_WHERE ]] || wk__log "stopped by the failure of: $WK__ERR_WHERE"
    fi
    if [[ $status -ne 0 && -s $WK_TMP/clusters.tsv ]]; then
        local port datadir
        while IFS=$'\t' read -r port datadir; do
            [[ -f $WK_TMP/pg$port/server.log ]] || continue
            wk__log "---- server log tail of $datadir (port $port) ----"
            tail -n 30 "$WK_TMP/pg$port/server.log" >&2
        done <"$WK_TMP/clusters.tsv"
    fi
    wk__stop_all_clusters
    ! declare -F wk__s3_stop >/dev/null || wk__s3_stop "$status"
    if [[ ${WK_KEEP_TMP:-0} == 1 ]]; then
        wk__log "scratch folder kept: $WK_TMP"
    else
        rm -rf "$WK_TMP"
    fi
    exit "$status"
}

# Remembers the last command that failed where `set -e` applies; in the test's
# own shell that is the command that stops the test, reported at exit. (A
# failure inside $(...) is remembered in that subshell only, and reported by
# its caller's failure.)
WK__ERR_WHERE=
wk__err() {
    WK__ERR_WHERE="${BASH_SOURCE[1]:-?}:$2: $3 (status $1)"
}

trap wk__exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
trap 'wk__err $? $LINENO "$BASH_COMMAND"' ERR

# ---------------------------------------------------------------------------
# clusters

wk__cluster_lookup() { # DATADIR -> port
    local port
    port=$(awk -F'\t' -v d="$1" '$2 == d { p = $1 } END { print p }' "$WK_TMP/clusters.tsv")
    if [[ -z $port ]]; then
        wk__log "error: \"$1\" is not a cluster of this test"
        return 1
    fi
    printf '%s\n' "$port"
}

wk_cluster_port() { wk__cluster_lookup "$1"; }
wk_cluster_sockdir() {
    local port
    port=$(wk__cluster_lookup "$1")
    printf '%s\n' "$WK_TMP/pg$port"
}
wk_cluster_log() {
    local port
    port=$(wk__cluster_lookup "$1")
    printf '%s\n' "$WK_TMP/pg$port/server.log"
}

wk_cluster_log_tail() {
    local log
    log=$(wk_cluster_log "$1") || return 1
    {
        printf -- '---- last %s lines of %s ----\n' "${2:-40}" "$log"
        tail -n "${2:-40}" "$log" 2>/dev/null || true
        printf -- '----\n'
    } >&2
}

# Picks a port no cluster of this test uses and nothing listens on. Clusters
# listen on their own Unix-socket folder only (listen_addresses = ''), so a
# clash with another program is harmless; the probe just keeps things tidy.
wk__free_port() {
    local port=$((54000 + $$ % 1000)) tries=0 listening
    listening=$(ss -Hltn 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' || true)
    while ((tries < 1000)); do
        if ! grep -q "^$port"$'\t' "$WK_TMP/clusters.tsv" &&
            ! grep -qx "$port" <<<"$listening" &&
            [[ ! -e $WK_TMP/pg$port ]]; then
            printf '%s\n' "$port"
            return 0
        fi
        port=$((port + 1))
        ((port < 65000)) || port=50000
        tries=$((tries + 1))
    done
    wk__log "error: no free port found"
    return 1
}

# Registers DATADIR with a new port and socket folder and writes the settings.
wk__cluster_register() {
    local datadir=$1 port sockdir
    port=$(wk__free_port)
    sockdir=$WK_TMP/pg$port
    mkdir -p "$sockdir"
    [[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$sockdir"
    chmod 0700 "$sockdir"
    printf '%s\t%s\n' "$port" "$datadir" >>"$WK_TMP/clusters.tsv"
    wk_cluster_conf "$datadir" \
        "port = $port" \
        "listen_addresses = ''" \
        "unix_socket_directories = $(wk_conf_quote "$sockdir")"
}

# wk_cluster_path NAME: prints a data-directory path for a new cluster NAME
# (e.g. the target of pg_basebackup). Its parent exists and belongs to postgres.
wk_cluster_path() {
    local parent
    parent=$(wk_tmpdir "${1:?cluster name}")
    printf '%s\n' "$parent/data"
}

# wk_cluster_init NAME [initdb args...]: initdb as postgres (trust auth, -N,
# locale C, UTF8) into a new data dir, gives it its own port and socket folder,
# prints the data dir. Extra arguments go to initdb (e.g. --data-checksums).
# The server runs with fsync = off: tests stop servers (even with -m immediate)
# but never crash the OS, and walkeep's own fsyncs are unaffected.
wk_cluster_init() {
    local name=${1:?cluster name} datadir log
    shift
    datadir=$(wk_cluster_path "$name")
    log=$(dirname "$datadir")/initdb.log
    # shellcheck disable=SC2086 # WK_INITDB_ARGS: words
    if ! wk_run_as_postgres "$(wk_pgbin initdb)" -D "$datadir" --auth=trust -N \
        --locale=C -E UTF8 $WK_INITDB_ARGS "$@" >"$log" 2>&1; then
        wk__log "error: initdb of cluster \"$name\" failed:"
        tail -n 20 "$log" >&2
        return 1
    fi
    wk__cluster_register "$datadir"
    wk_cluster_conf "$datadir" "fsync = off" "log_line_prefix = '%m [%p] '"
    printf '%s\n' "$datadir"
}

# wk_cluster_adopt DATADIR: makes a copied data directory (a base backup) a
# cluster of this test: owner postgres, mode 0700, its own port and socket
# folder. Its postgresql.auto.conf gets the new settings appended (they win).
wk_cluster_adopt() {
    local datadir=${1:?data dir}
    [[ -d $datadir ]] || { wk__log "error: \"$datadir\" is not a folder"; return 1; }
    [[ ${#WK__AS_PG[@]} -eq 0 ]] || chown -R "$WK_PG_USER:" "$datadir"
    chmod 0700 "$datadir"
    rm -f "$datadir/postmaster.pid" "$datadir/postmaster.opts"
    wk__cluster_register "$datadir"
}

# wk_cluster_conf DATADIR "key = value"...: appends each line to
# postgresql.auto.conf, which is read last, so a later line wins.
wk_cluster_conf() {
    local datadir=${1:?data dir} line
    shift
    for line in "$@"; do
        printf '%s\n' "$line" >>"$datadir/postgresql.auto.conf"
    done
    [[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$datadir/postgresql.auto.conf"
}

# wk_cluster_start DATADIR: starts the cluster and waits (up to
# $WK_START_TIMEOUT s, default 120) until it accepts connections (or, in
# recovery, read-only connections). On failure prints the server log tail.
wk_cluster_start() {
    local datadir=${1:?data dir} log
    log=$(wk_cluster_log "$datadir") || return 1
    if ! wk_run_as_postgres "$(wk_pgbin pg_ctl)" -D "$datadir" -l "$log" -w \
        -t "${WK_START_TIMEOUT:-120}" start >"$log.pg_ctl" 2>&1; then
        wk__log "error: could not start cluster $datadir:"
        cat "$log.pg_ctl" >&2
        wk_cluster_log_tail "$datadir"
        return 1
    fi
}

# wk_cluster_stop DATADIR [MODE]: stops the cluster (MODE fast by default) and
# waits. On failure prints the server log tail.
wk_cluster_stop() {
    local datadir=${1:?data dir} mode=${2:-fast} log
    log=$(wk_cluster_log "$datadir") || return 1
    if ! wk_run_as_postgres "$(wk_pgbin pg_ctl)" -D "$datadir" -m "$mode" -w -t 120 stop \
        >"$log.pg_ctl" 2>&1; then
        wk__log "error: could not stop cluster $datadir:"
        cat "$log.pg_ctl" >&2
        wk_cluster_log_tail "$datadir"
        return 1
    fi
}

# wk_restored_start DIR TIMEOUT: a copy pitr-restore laid down in DIR becomes a cluster of
# this test (wk_cluster_adopt) that archives nothing (it must not write into the
# repository of the original), is started and waited for (up to TIMEOUT s each) until
# recovery has ended and it promoted. On failure prints the server log tail, status 1.
wk_restored_start() {
    local dir=${1:?data dir} timeout=${2:?timeout}
    wk_cluster_adopt "$dir" || return 1
    wk_cluster_conf "$dir" "archive_mode = off"
    if WK_START_TIMEOUT=$timeout wk_cluster_start "$dir" &&
        wk_wait_for_sql "the end of recovery" "$timeout" "$dir" "SELECT pg_is_in_recovery()" f; then
        return 0
    fi
    wk_cluster_log_tail "$dir"
    return 1
}

# wk_sql_walfile LSN_SQL: an SQL expression naming the WAL file that holds the byte
# before the position LSN_SQL (e.g. "pg_switch_wal()": the segment the switch closed).
# pg_walfile_name of a segment boundary names the segment before it up to PostgreSQL 16,
# the one starting there from 17 on; this gives the former on every major.
wk_sql_walfile() {
    if ((WK_PG_MAJOR >= 17)); then
        printf 'pg_walfile_name((%s) - 1)\n' "$1"
    else
        printf 'pg_walfile_name(%s)\n' "$1"
    fi
}

# wk_psql DATADIR SQL [DBNAME]: runs SQL (one -c string) as postgres through the
# cluster's socket; prints the unaligned, tuples-only result.
wk_psql() {
    local datadir=${1:?data dir} sql=${2:?sql} db=${3:-postgres} port
    port=$(wk__cluster_lookup "$datadir") || return 1
    wk_run_as_postgres "$(wk_pgbin psql)" -XAtq -v ON_ERROR_STOP=1 \
        -h "$WK_TMP/pg$port" -p "$port" -d "$db" -c "$sql"
}

# wk_switch_and_wait DATADIR [TIMEOUT_S]: switches WAL and waits (90 s by default) until
# the archiver has archived the segment the switch closed; prints its name.
wk_switch_and_wait() {
    local datadir=${1:?data dir} timeout=${2:-90} seg
    seg=$(wk_psql "$datadir" "select $(wk_sql_walfile "pg_switch_wal()")") || return 1
    wk_wait_for_sql "the archiving of $seg" "$timeout" "$datadir" \
        "select coalesce(last_archived_wal, '') >= '$seg' from pg_stat_archiver" t || return 1
    printf '%s\n' "$seg"
}

# ---------------------------------------------------------------------------
# waiting

# wk_wait_for DESCRIPTION TIMEOUT_S CMD...: runs CMD (output discarded) until
# it succeeds; returns 1 with a message after TIMEOUT_S seconds.
wk_wait_for() {
    local what=${1:?description} timeout=${2:?timeout} deadline delay=0.1
    shift 2
    deadline=$((SECONDS + timeout))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            wk__log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep "$delay"
        case $delay in
        0.1) delay=0.2 ;;
        0.2) delay=0.5 ;;
        *) delay=1 ;;
        esac
    done
}

wk__sql_is() { # DATADIR SQL EXPECTED
    local got
    got=$(wk_psql "$1" "$2" 2>/dev/null) || return 1
    [[ $got == "$3" ]]
}

# wk_wait_for_sql DESCRIPTION TIMEOUT_S DATADIR SQL EXPECTED: polls until SQL
# prints EXPECTED; on timeout also says what it printed last.
wk_wait_for_sql() {
    local what=$1 timeout=$2 datadir=$3 sql=$4 expected=$5
    if wk_wait_for "$what" "$timeout" wk__sql_is "$datadir" "$sql" "$expected"; then
        return 0
    fi
    wk__log "  expected: $expected"
    wk__log "  last got: $(wk_psql "$datadir" "$sql" 2>&1 | head -n 5 || true)"
    return 1
}

# ---------------------------------------------------------------------------
# assertions: each counts a pass or a failure and never stops the test

wk_pass() {
    WK_PASSED=$((WK_PASSED + 1))
    printf 'ok %d - %s\n' "$((WK_PASSED + WK_FAILED))" "$1"
}

wk_fail() {
    WK_FAILED=$((WK_FAILED + 1))
    printf 'not ok %d - %s\n' "$((WK_PASSED + WK_FAILED))" "$1"
    shift
    local detail line
    for detail in "$@"; do
        while IFS= read -r line; do
            printf '#   %s\n' "$line"
        done <<<"$detail"
    done
}

wk_assert_eq() {
    if [[ $2 == "$1" ]]; then
        wk_pass "$3"
    else
        wk_fail "$3" "expected: $1" "     got: $2"
    fi
}

wk_assert_ne() {
    if [[ $2 != "$1" ]]; then
        wk_pass "$3"
    else
        wk_fail "$3" "expected anything but: $1" "                   got: $2"
    fi
}

wk_assert_ge() {
    if [[ $2 =~ ^-?[0-9]+$ ]] && (($2 >= $1)); then
        wk_pass "$3"
    else
        wk_fail "$3" "expected: >= $1" "     got: $2"
    fi
}

# wk_assert_status EXPECTED MSG -- CMD...: runs CMD with stdout and stderr in
# the files $WK_OUT and $WK_ERR (kept until the next call) and checks its exit
# status: N, !N (not N), >N or <N.
WK_OUT=$WK_TMP/last.out
WK_ERR=$WK_TMP/last.err
WK_STATUS=
wk_assert_status() {
    local expected=$1 msg=$2 ok
    shift 2
    [[ ${1:-} == -- ]] && shift
    WK_STATUS=0
    "$@" >"$WK_OUT" 2>"$WK_ERR" || WK_STATUS=$?
    case $expected in
    '!'*) [[ $WK_STATUS -ne ${expected#!} ]] && ok=1 || ok=0 ;;
    '>'*) [[ $WK_STATUS -gt ${expected#>} ]] && ok=1 || ok=0 ;;
    '<'*) [[ $WK_STATUS -lt ${expected#<} ]] && ok=1 || ok=0 ;;
    *) [[ $WK_STATUS -eq $expected ]] && ok=1 || ok=0 ;;
    esac
    if ((ok)); then
        wk_pass "$msg"
    else
        wk_fail "$msg" "command: $*" "expected exit status: $expected" "     got exit status: $WK_STATUS" \
            "stdout: $(head -c 2000 "$WK_OUT")" "stderr: $(head -c 2000 "$WK_ERR")"
    fi
}

wk_assert_contains() {
    if [[ -f $1 ]] && grep -qE -- "$2" "$1"; then
        wk_pass "$3"
    else
        wk_fail "$3" "expected a line matching /$2/ in $1" \
            "got (last lines): $(tail -n 5 "$1" 2>&1 || true)"
    fi
}

wk_assert_not_contains() {
    if [[ ! -f $1 ]]; then
        wk_fail "$3" "file $1 does not exist"
    elif grep -qE -- "$2" "$1"; then
        wk_fail "$3" "expected no line matching /$2/ in $1" \
            "got: $(grep -E -m 5 -- "$2" "$1")"
    else
        wk_pass "$3"
    fi
}

wk_assert_file() {
    if [[ -e $1 ]]; then
        wk_pass "$2"
    else
        wk_fail "$2" "expected $1 to exist" "got: no such file"
    fi
}

wk_assert_no_file() {
    if [[ ! -e $1 && ! -L $1 ]]; then
        wk_pass "$2"
    else
        wk_fail "$2" "expected no $1" "got: $(ls -ld "$1" 2>&1)"
    fi
}

wk_assert_same_file() {
    local out
    if out=$(cmp -- "$1" "$2" 2>&1); then
        wk_pass "$3"
    else
        wk_fail "$3" "expected $2 to be byte-identical to $1" "got: $out"
    fi
}

# ---------------------------------------------------------------------------
# repositories: a folder (posix) or a prefix in an S3 bucket (s3)

WK_REPO_KIND=${WK_REPO_KIND:-posix}
case $WK_REPO_KIND in
posix | s3) ;;
*) wk__die "WK_REPO_KIND must be posix or s3, not \"$WK_REPO_KIND\"" ;;
esac
export WK_REPO_KIND
WK__SRC=${WALKEEP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WK__S3_BUCKET=walkeep-test
WK__S3_DIR=$WK_TMP/s3 # short: Ceph's admin-socket paths must fit in 107 bytes
# One prefix per test run, under which every repository of the test lives.
WK__S3_RUN=$WK_TEST_NAME-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')

wk_repo_kind() { printf '%s\n' "$WK_REPO_KIND"; }

# wk_s3_start: in s3 mode, starts the test's S3 server (once: later calls, also
# from subshells, find it running) on a free port, with a random secret, the
# bucket walkeep-test and 1 KiB as the smallest multipart part. The exit
# handler stops it and removes its folder, whether the test passed or not.
# With WK_S3_TLS=1 it also listens for HTTPS on a second port (S3_TLS_ENDPOINT
# and S3_CA_FILE, the private CA, in its s3.env). Does nothing in posix mode.
wk_s3_start() {
    [[ $WK_REPO_KIND == s3 ]] || return 0
    [[ ! -f $WK__S3_DIR.started ]] || return 0
    if [[ -f $WK__S3_DIR.failed ]]; then
        wk__log "error: the S3 server failed to start earlier (see above)"
        return 1
    fi
    local port tls_port secret log=$WK_TMP/s3-start.log attempt
    secret=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
    : >"$WK__S3_DIR.failed" # until it is up; the exit handler stops what did start
    # A start that fails (a Ceph start-up race, seen rarely: "ceph osd new" refused
    # with EPERM) is retried twice; start-s3.sh stopped what it had started and kept
    # its logs, which are moved aside.
    for attempt in 1 2 3; do
        port=$(wk__free_port) || return 1
        tls_port=
        if [[ ${WK_S3_TLS:-0} == 1 ]]; then
            tls_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
        fi
        if S3_TLS_PORT=$tls_port S3_MIN_PART_SIZE=1024 "$WK__SRC/tests/s3/start-s3.sh" "$WK__S3_DIR" "$port" \
            AKIAWALKEEPTEST "$secret" "$WK__S3_BUCKET" >"$log" 2>&1 </dev/null; then
            break
        fi
        if ((attempt == 3)); then
            wk__log "error: could not start the S3 server (tests/s3/start-s3.sh), 3 attempts:"
            tail -n 60 "$log" >&"$WK__STDERR"
            return 1
        fi
        wk__log "warning: starting the S3 server failed (attempt $attempt): $(grep -m 1 'FAILED' "$log" || tail -n 1 "$log"); retrying"
        mv "$WK__S3_DIR" "$WK__S3_DIR.attempt$attempt" 2>/dev/null || rm -rf "$WK__S3_DIR"
        mv "$log" "$log.attempt$attempt"
    done
    rm -f "$WK__S3_DIR.failed"
    : >"$WK__S3_DIR.started"
    wk__log "S3 server: $(grep -m 1 '^S3_ENDPOINT=' "$log" | cut -d= -f2-), $(grep -m 1 -o 'ready in [0-9.]* s' "$log" || true)"
}

# Loads the server's s3.env (S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION,
# and S3_CA_FILE if it has one) into this shell; starts the server if need be.
wk__s3_env() {
    [[ ${WK__S3_ENV_LOADED:-} != 1 ]] || return 0
    wk_s3_start || return 1
    set -a
    # shellcheck disable=SC1091 # written by start-s3.sh
    . "$WK__S3_DIR/s3.env" || { set +a; return 1; }
    set +a
    WK__S3_ENV_LOADED=1
}

# Stops the S3 server at exit, after the clusters (an archive_command may still
# be talking to it). WK_KEEP_TMP=1 keeps its folder; when the test failed, the
# tail of the radosgw log goes to stderr.
wk__s3_stop() {
    [[ -e $WK__S3_DIR.started || -e $WK__S3_DIR.failed ]] || return 0
    local purge=--purge d
    for d in "$WK__S3_DIR".attempt*; do # failed starts: normally nothing left to stop
        [[ ! -d $d ]] || "$WK__SRC/tests/s3/stop-s3.sh" "$d" >/dev/null 2>&1 || true
    done
    [[ -d $WK__S3_DIR ]] || return 0
    if [[ $1 -ne 0 && -f $WK__S3_DIR/log/client.rgw.s3.log ]]; then
        wk__log "---- radosgw log tail ($WK__S3_DIR/log/client.rgw.s3.log) ----"
        tail -n 20 "$WK__S3_DIR/log/client.rgw.s3.log" >&2
    fi
    [[ ${WK_KEEP_TMP:-0} != 1 ]] || purge=
    # shellcheck disable=SC2086 # $purge: nothing or one word
    "$WK__SRC/tests/s3/stop-s3.sh" "$WK__S3_DIR" $purge >"$WK_TMP/s3-stop.log" 2>&1 ||
        { wk__log "warning: tests/s3/stop-s3.sh $WK__S3_DIR $purge failed:"; cat "$WK_TMP/s3-stop.log" >&2; }
}

# wk_s3tool ARGS...: tests/s3/s3tool.py against the test's server (s3 mode),
# for what the wk_repo_* functions do not cover (e.g. upload-start).
wk_s3tool() {
    wk__s3_env || return 1
    python3 "$WK__SRC/tests/s3/s3tool.py" "$@"
}

wk__is_s3() { [[ $1 == s3://* ]]; }

# wk__s3_loc REPO [PATH]: the s3:// location of PATH in REPO.
wk__s3_loc() {
    local repo=${1%/} path=${2:-}
    path=${path#/}
    printf '%s\n' "$repo${path:+/$path}"
}

# wk_repo_new NAME [PARENT]: prints the location of a new, empty repository.
# posix: PARENT/NAME, not created (PARENT: by default a new scratch folder,
# owned by postgres); s3: s3://walkeep-test/<test>-<random>/NAME, the server
# started if it does not run yet. NAME must be unique within the test.
wk_repo_new() {
    local name=${1:?repository name} parent=${2:-}
    if [[ $name == */* || $name == .* ]]; then
        wk__log "error: bad repository name \"$name\""
        return 1
    fi
    if [[ $WK_REPO_KIND == s3 ]]; then
        wk_s3_start || return 1
        printf 's3://%s/%s/%s\n' "$WK__S3_BUCKET" "$WK__S3_RUN" "$name"
    else
        [[ -n $parent ]] || parent=$(wk_tmpdir repo) || return 1
        printf '%s/%s\n' "$parent" "$name"
    fi
}

# wk_repo_conf REPO: the configuration-file lines that reach REPO.
wk_repo_conf() {
    local repo=${1:?repository}
    if wk__is_s3 "$repo"; then
        wk__s3_env || return 1
    fi
    printf 'repo = %s\n' "$repo"
    if wk__is_s3 "$repo"; then
        printf 's3_endpoint = %s\n' "$S3_ENDPOINT"
        printf 's3_region = %s\n' "${S3_REGION:-us-east-1}"
        printf 's3_uri_style = path\n'
        printf 's3_access_key = %s\n' "$S3_ACCESS_KEY"
        printf 's3_secret_key = %s\n' "$S3_SECRET_KEY"
        [[ -z ${S3_CA_FILE:-} ]] || printf 's3_ca_file = %s\n' "$S3_CA_FILE"
    fi
}

# wk_repo_conf_write FILE REPO [LINE...]: writes a configuration file for REPO
# with the extra LINEs, owned by postgres, mode 0600 (it may hold keys).
wk_repo_conf_write() {
    local file=${1:?file} repo=${2:?repository} text
    shift 2
    text=$(wk_repo_conf "$repo") || return 1
    (
        umask 077
        printf '%s\n' "$text"
        (($# == 0)) || printf '%s\n' "$@"
    ) >"$file" || return 1
    [[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$file"
    chmod 0600 "$file"
}

# wk_repo_ls [-s] REPO [SUBDIR]: the objects of REPO (below SUBDIR), as paths
# relative to REPO, sorted (LC_ALL=C); -s: "SIZE PATH". Hidden files (walkeep's
# temporaries: names starting with ".") are left out. A missing folder lists
# nothing.
wk_repo_ls() {
    local sizes=0
    if [[ ${1:-} == -s ]]; then
        sizes=1
        shift
    fi
    local repo=${1:?repository} sub=${2:-}
    sub=${sub#/}
    sub=${sub%/}
    if wk__is_s3 "$repo"; then
        local args=(ls)
        ((sizes == 0)) || args+=(-l)
        wk_s3tool "${args[@]}" "$(wk__s3_loc "$repo" "$sub")" |
            awk -v dir="${sub:+$sub/}" -v sizes="$sizes" '{
                size = ""; path = $0
                if (sizes) { n = index($0, " "); size = substr($0, 1, n); path = substr($0, n + 1) }
                base = path; sub(/.*\//, "", base)
                if (base !~ /^\./) print size dir path }' |
            LC_ALL=C sort -k "$((sizes + 1))"
    else
        [[ -d $repo/$sub ]] || return 0
        local fmt='%P\n'
        ((sizes == 0)) || fmt='%s %P\n'
        [[ -z $sub ]] || fmt=${fmt/\%P/$sub/%P}
        (cd "$repo" && find "${sub:-.}" -type f ! -name '.*' -printf "$fmt") |
            LC_ALL=C sort -k "$((sizes + 1))"
    fi
}

# wk_repo_wal_objects REPO [SUBDIR]: the WAL objects below wal/SUBDIR of REPO, as wk_repo_ls
# lists them, without the names' claims ("<WAL file name>-claim", docs/format.md).
wk_repo_wal_objects() {
    local repo=${1:?repository} sub=${2:-}
    wk_repo_ls "$repo" "wal${sub:+/$sub}" | grep -v -- '-claim$' || true
}

# wk_repo_cat REPO PATH: the object's bytes to stdout.
wk_repo_cat() {
    local repo=${1:?repository} path=${2:?object path}
    if wk__is_s3 "$repo"; then
        wk_s3tool cat "$(wk__s3_loc "$repo" "$path")"
    else
        cat -- "$repo/$path"
    fi
}

# wk_repo_put REPO PATH: stdin becomes the object, replacing one that is there
# (posix: written in place, so an existing file keeps its owner and mode; a new
# one belongs to postgres, mode 0600).
wk_repo_put() {
    local repo=${1:?repository} path=${2:?object path}
    if wk__is_s3 "$repo"; then
        wk_s3tool put "$(wk__s3_loc "$repo" "$path")"
    else
        local f=$repo/$path
        if [[ ! -e $f ]]; then
            wk_run_as_postgres mkdir -p -m 0700 "$(dirname "$f")" || return 1
            (umask 077 && : >"$f") || return 1
            [[ ${#WK__AS_PG[@]} -eq 0 ]] || chown "$WK_PG_USER:" "$f"
        fi
        cat >"$f"
    fi
}

# wk_repo_rm REPO PATH...: removes the objects (a missing one is no error).
wk_repo_rm() {
    local repo=${1:?repository} p locs=()
    shift
    (($# > 0)) || return 0
    if wk__is_s3 "$repo"; then
        for p in "$@"; do locs+=("$(wk__s3_loc "$repo" "$p")"); done
        wk_s3tool rm "${locs[@]}"
    else
        for p in "$@"; do locs+=("$repo/$p"); done
        rm -f -- "${locs[@]}"
    fi
}

# wk_repo_exists REPO PATH: status 0 when PATH is an object of REPO, or a folder
# holding one (s3: a prefix with objects under it); 1 when not; 2 when it could
# not tell (S3 error).
wk_repo_exists() {
    local repo=${1:?repository} path=${2:?object path} st=0 listing
    if wk__is_s3 "$repo"; then
        wk_s3tool exists "$(wk__s3_loc "$repo" "$path")" || st=$?
        ((st == 1)) || return "$st"
        listing=$(wk_repo_ls "$repo" "$path") || return 2
        [[ -n $listing ]]
    else
        [[ -e $repo/$path ]]
    fi
}

# wk_repo_flip REPO PATH: flips the low bit of the byte in the middle of the object.
wk_repo_flip() {
    local repo=${1:?repository} path=${2:?object path}
    if wk__is_s3 "$repo"; then
        wk_s3tool flip "$(wk__s3_loc "$repo" "$path")"
    else
        python3 - "$repo/$path" <<'EOF'
import os, sys
with open(sys.argv[1], "r+b") as f:
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        sys.exit("flip: %s is empty" % sys.argv[1])
    f.seek(size // 2)
    b = f.read(1)
    f.seek(size // 2)
    f.write(bytes([b[0] ^ 1]))
EOF
    fi
}

# wk_repo_copy REPO NEWREPO: copies the whole repository (posix: cp -a; s3: a
# server-side copy of every object). NEWREPO comes from wk_repo_new.
wk_repo_copy() {
    local repo=${1:?repository} new=${2:?new repository}
    if wk__is_s3 "$repo"; then
        if ! wk__is_s3 "$new"; then
            wk__log "error: wk_repo_copy: \"$new\" is not an s3:// location"
            return 1
        fi
        wk_s3tool cp-prefix "$repo" "$new"
    else
        cp -a -- "$repo" "$new"
    fi
}

# wk_repo_uploads REPO: what unfinished writes left in REPO, one per line: posix
# the hidden temporaries (".*tmp*", paths relative to REPO), s3 the multipart
# uploads in progress ("PATH UPLOADID"). Nothing when there is none.
wk_repo_uploads() {
    local repo=${1:?repository}
    if wk__is_s3 "$repo"; then
        wk_s3tool uploads "$repo"
    else
        [[ -d $repo ]] || return 0
        (cd "$repo" && find . -name '.*tmp*' -printf '%P\n') | LC_ALL=C sort
    fi
}

# wk_repo_drop REPO: removes the repository and everything in it (s3: also the
# multipart uploads in progress).
wk_repo_drop() {
    local repo=${1:?repository}
    if wk__is_s3 "$repo"; then
        wk_s3tool rm-prefix "$repo"
    else
        rm -rf -- "$repo"
    fi
}

# wk_assert_repo_file REPO PATH MSG: PATH is an object (or a folder holding one) of REPO.
wk_assert_repo_file() {
    local st=0
    wk_repo_exists "$1" "$2" 2>"$WK_TMP/.repo-exists.err" || st=$?
    if ((st == 0)); then
        wk_pass "$3"
    else
        wk_fail "$3" "expected $1/$2 to exist" "got: no such object $(cat "$WK_TMP/.repo-exists.err")"
    fi
}

# wk_assert_no_repo_file REPO PATH MSG: PATH is neither an object nor a folder of REPO.
wk_assert_no_repo_file() {
    local st=0
    wk_repo_exists "$1" "$2" 2>"$WK_TMP/.repo-exists.err" || st=$?
    if ((st == 1)); then
        wk_pass "$3"
    elif ((st == 0)); then
        wk_fail "$3" "expected no $1/$2" "got: $(wk_repo_ls "$1" "$2" 2>&1 | head -n 5 || true)"
    else
        wk_fail "$3" "could not tell whether $1/$2 exists" "$(cat "$WK_TMP/.repo-exists.err")"
    fi
}

# wk_bail MSG: for when the test cannot go on; prints the tally and exits 1.
wk_bail() {
    wk__log "bail out: $*"
    WK_FAILED=$((WK_FAILED + 1))
    wk_done
}

# wk_done: prints the tally alone on a line; exits 0 only if nothing failed
# and something was checked.
wk_done() {
    WK_DONE=1
    printf '%d passed, %d failed\n' "$WK_PASSED" "$WK_FAILED"
    if ((WK_FAILED > 0 || WK_PASSED == 0)); then
        exit 1
    fi
    exit 0
}
