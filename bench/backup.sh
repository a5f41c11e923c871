#!/usr/bin/env bash
# bench/backup.sh: walkeep-basebackup / pitr-restore against pg_basebackup -Ft (the
# reference) and pgBackRest 2.45 backup / restore, on a pgbench database of about 1.5 GB,
# whole commands, in one run. A benchmark, not a test: it prints a table and whether the
# targets are met (see bench/README.md).
#
# Runs as root on Debian 12. It installs what is missing (scripts/deps.sh, pgbackrest,
# time), builds walkeep in release mode in its own folder, fills a throw-away PostgreSQL
# 15 cluster (run as postgres, own port and socket folder, no TCP) with pgbench -i, then
# times every tool and configuration on it, interleaved, each run from a cold page cache.
# Everything it started is stopped and its scratch folders removed at exit, also on
# failure or Ctrl-C.
#
# Environment:
#   BENCH_REPEAT=2           timed runs per configuration (the table shows median and range)
#   BENCH_SCALE=100          pgbench -i scale (100: about 1.5 GB); lowered, with a message,
#                            when the scratch file system has less than ~150 MB per unit
#   BENCH_DROP_CACHES=1      sync and drop the page cache before every timed run (all tools
#                            alike); 0 keeps whatever is cached
#   WALKEEP_BENCH_BUILD=DIR  build folder (kept); default a mktemp -d folder, removed
#   BENCH_TMPDIR=/tmp        where the scratch folder is made (postgres must traverse it)
#   BENCH_PORT=55434         PostgreSQL port (only names the socket in our own folder);
#                            BENCH_PORT+1 is used once, for the restored cluster's check
#   BENCH_RESULTS=DIR        also copy the raw figures (TSV) and the table there
#   BENCH_KEEP=1             keep the scratch folder at exit
#   BENCH_STRICT=1           exit 3 when a target is missed (default: exit 0)
#   BENCH_PGBIN              PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail
set -E

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

REPEAT=${BENCH_REPEAT:-2}
SCALE=${BENCH_SCALE:-100}
DROP=${BENCH_DROP_CACHES:-1}
PGBIN=${BENCH_PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-55434}
TMPROOT=${BENCH_TMPDIR:-/tmp}

# Messages go to the script's own stderr, kept aside: bash runs a trap with the redirections
# of the command it interrupted still in place, and a timed command's output goes to a file.
exec {bench_stderr}>&2
log() { printf 'bench: %s\n' "$*" >&"$bench_stderr"; }
die() { log "error: $*"; exit 1; }

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer, not \"$REPEAT\""
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE must be a positive integer, not \"$SCALE\""
[[ $DROP =~ ^[01]$ ]] || die "BENCH_DROP_CACHES must be 0 or 1, not \"$DROP\""
[[ $PORT =~ ^[1-9][0-9]{0,4}$ ]] || die "BENCH_PORT must be a port number, not \"$PORT\""
((PORT < 65535)) || die "BENCH_PORT must be below 65535 (BENCH_PORT+1 is used too)"
[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages, drops the page cache and runs PostgreSQL as postgres)"

# ---------------------------------------------------------------------------------------
# Packages and build.
"$root/scripts/deps.sh"
need_pkgs=()
command -v pgbackrest >/dev/null 2>&1 || need_pkgs+=(pgbackrest)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
    log "installing ${need_pkgs[*]} (for benchmarks only)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to compute the medians"
id postgres >/dev/null 2>&1 || die "no \"postgres\" user (is postgresql-15 installed?)"
for p in initdb pg_ctl pgbench psql pg_basebackup pg_verifybackup; do
    [[ -x $PGBIN/$p ]] || die "no $p in $PGBIN"
done

scratch=
build=
own_build=0
clusters=()
# shellcheck disable=SC2317 # invoked by the traps
cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    for d in "${clusters[@]}"; do
        if [[ -f $d/postmaster.pid ]]; then
            runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
        fi
    done
    if [[ -n $scratch && -d $scratch ]]; then
        if [[ ${BENCH_KEEP:-} == 1 ]]; then
            log "kept the scratch folder $scratch"
        else
            rm -rf "$scratch"
        fi
    fi
    [[ $own_build == 1 && -n $build ]] && rm -rf "$build"
    [[ $status == 0 ]] || log "stopped with status $status (clusters stopped, scratch cleaned up)"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${WALKEEP_BENCH_BUILD:-} ]]; then
    build=$WALKEEP_BENCH_BUILD
else
    build=$(mktemp -d "${TMPDIR:-/tmp}/walkeep-bench-build.XXXXXX")
    own_build=1
fi
log "building walkeep (Release) in $build"
mkdir -p "$build"
blog=$build/bench-build.log
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWALKEEP_TESTS=OFF >"$blog" 2>&1 ||
    { tail -n 30 "$blog" >&2; die "cmake configure failed"; }
cmake --build "$build" -j2 >>"$blog" 2>&1 || { tail -n 30 "$blog" >&2; die "build failed"; }

# ---------------------------------------------------------------------------------------
# Scratch folder, owned by postgres, with the binaries copied in (so postgres can run
# them whatever the build folder's modes are; pitr-restore names walkeep-fetch beside
# itself in restore_command).
scratch=$(mktemp -d "$TMPROOT/walkeep-bench.XXXXXX")
chmod 755 "$scratch"
mkdir -p "$scratch/bin" "$scratch/runs" "$scratch/out"
for p in walkeep-archive walkeep-fetch walkeep walkeep-basebackup pitr-restore; do
    install -m 755 "$build/$p" "$scratch/bin/$p"
done
chown -R postgres: "$scratch"
runuser -u postgres -- test -x "$scratch/bin/walkeep-basebackup" ||
    die "the postgres user cannot reach $scratch: every folder above it needs o+x"
cd "$scratch"
: >"$scratch/empty.conf"
chown postgres: "$scratch/empty.conf"

# Disk space: the cluster (~15 MB per scale unit), up to max_wal_size of WAL, three
# archives of the WAL, the backups of every run (several kept at once), one uncompressed
# pg_basebackup and one restored copy at a time: about 150 MB per scale unit, 15 GB at
# the default scale.
per_unit=$((150 * 1024 * 1024))
avail=$(df -B1 --output=avail "$scratch" | tail -n 1 | tr -d ' ')
if ((avail < SCALE * per_unit)); then
    fit=$((avail / per_unit))
    ((fit >= 5)) || die "only $((avail / 1024 / 1024)) MiB free under $TMPROOT: not enough even for scale 5 (set BENCH_TMPDIR)"
    log "only $((avail / 1024 / 1024 / 1024)) GiB free under $TMPROOT, about $((SCALE * per_unit / 1024 / 1024 / 1024)) GiB needed for scale $SCALE: scale reduced to $fit"
    SCALE=$fit
fi

# The page cache: dropped before every timed run when we can, for every tool alike.
if [[ $DROP == 1 ]]; then
    sync
    if ! (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        log "cannot write /proc/sys/vm/drop_caches (container?): runs will not start from a cold page cache"
        DROP=0
    fi
fi
drop_caches() {
    sync
    [[ $DROP == 1 ]] && echo 3 >/proc/sys/vm/drop_caches
    return 0
}

# Commands run as postgres with a clean environment (no WALKEEP_* / PGBACKREST_* / PG*).
as_pg() {
    runuser -u postgres -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch" \
        LC_ALL=C TZ=UTC "$@"
}
c=$scratch/cluster
sock=$c/sock
psql_at() { # SQL
    as_pg "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$sock" -p "$PORT" -U postgres -d postgres -c "$1"
}

# ---------------------------------------------------------------------------------------
# Repositories and configuration: two walkeep repositories (one encrypted, one not: a
# walkeep repository is either), one pgBackRest stanza. archive_command pushes every
# segment into all three, pgBackRest first and the encrypted walkeep repository last, so
# the target configuration waits for the whole chain as pg_basebackup does.
as_pg "$scratch/bin/walkeep" --config="$scratch/empty.conf" keygen "$scratch/repo.key" 2>/dev/null ||
    die "walkeep keygen failed"
conninfo="host=$sock port=$PORT dbname=postgres user=postgres"
for r in enc plain; do
    {
        echo "# walkeep bench ($r)"
        echo "repo = '$scratch/wk-$r'"
        echo "compress = lz4"
        [[ $r == enc ]] && echo "encrypt_key_file = '$scratch/repo.key'"
        echo "pg_conninfo = '$conninfo'"
        echo "pg_bindir = '$PGBIN'"
        echo "pgdata = '$c/data'" # walkeep-basebackup reads the data files ahead of the server
    } >"$scratch/$r.conf"
    chmod 600 "$scratch/$r.conf"
    chown postgres: "$scratch/$r.conf"
done
pgbr_conf=$scratch/pgbackrest.conf
mkdir -p "$scratch/pgbr"/{repo,lock,spool,log}
cat >"$pgbr_conf" <<EOF
[global]
repo1-path=$scratch/pgbr/repo
repo1-retention-full=9999
lock-path=$scratch/pgbr/lock
spool-path=$scratch/pgbr/spool
log-path=$scratch/pgbr/log
log-level-console=off
log-level-stderr=warn
log-level-file=off
archive-async=n
compress-type=lz4
start-fast=y

[bench]
pg1-path=$c/data
pg1-port=$PORT
pg1-socket-path=$sock
EOF
chmod 600 "$pgbr_conf"
chown -R postgres: "$scratch/pgbr" "$pgbr_conf"

archive_command="pgbackrest --config=$pgbr_conf --stanza=bench archive-push %p"
archive_command+=" && $scratch/bin/walkeep-archive --config $scratch/plain.conf %p"
archive_command+=" && $scratch/bin/walkeep-archive --config $scratch/enc.conf %p"

log "cluster: initdb, pgbench -i -s $SCALE, archiving into walkeep (x2) and pgBackRest"
mkdir -p "$c" "$sock"
chown -R postgres: "$c"
as_pg "$PGBIN/initdb" -D "$c/data" --auth=trust -U postgres -N --locale=C -E UTF8 \
    >"$c/initdb.log" 2>&1 || { tail -n 20 "$c/initdb.log" >&2; die "initdb failed"; }
cat >>"$c/data/postgresql.conf" <<EOF
# walkeep bench
listen_addresses = ''
port = $PORT
unix_socket_directories = '$sock'
archive_mode = on
archive_command = '$archive_command'
autovacuum = off                # no background work between timed runs
checkpoint_timeout = 1h         # checkpoints only when a backup asks for one
max_wal_size = 2GB
log_line_prefix = '%m [%p] '
EOF
clusters+=("$c/data")
as_pg "$PGBIN/pg_ctl" -D "$c/data" -l "$c/server.log" -w -t 120 start >/dev/null ||
    { tail -n 20 "$c/server.log" >&2; die "PostgreSQL did not start"; }
for r in enc plain; do
    as_pg "$scratch/bin/walkeep" --config "$scratch/$r.conf" --pgdata="$c/data" init \
        </dev/null >"$scratch/runs/init-$r.log" 2>&1 ||
        { cat "$scratch/runs/init-$r.log" >&2; die "walkeep init ($r) failed"; }
done
as_pg pgbackrest --config="$pgbr_conf" --stanza=bench stanza-create \
    </dev/null >"$scratch/runs/stanza-create.log" 2>&1 ||
    { cat "$scratch/runs/stanza-create.log" >&2; die "pgbackrest stanza-create failed"; }

t0=$EPOCHREALTIME
as_pg "$PGBIN/pgbench" -h "$sock" -p "$PORT" -U postgres -i -q -s "$SCALE" postgres \
    >"$c/pgbench-init.log" 2>&1 || { tail -n 20 "$c/pgbench-init.log" >&2; die "pgbench -i failed"; }
psql_at "CHECKPOINT" >/dev/null
log "pgbench -i -s $SCALE took $(python3 -c "print('%.0f' % ($EPOCHREALTIME - $t0))") s"

# Waits until the archiver has nothing left to do (no .ready file).
wait_archiver_idle() { # TIMEOUT_S
    local deadline=$((SECONDS + $1)) f
    while :; do
        f=$(find "$c/data/pg_wal/archive_status" -name '*.ready' -print -quit 2>/dev/null)
        [[ -z $f ]] && return 0
        if ((SECONDS >= deadline)); then
            psql_at "SELECT * FROM pg_stat_archiver" >&2 || true
            tail -n 20 "$c/server.log" >&2
            die "the archiver is stuck: $f is still waiting after $1 s"
        fi
        sleep 0.2
    done
}
psql_at "SELECT pg_switch_wal()" >/dev/null
log "waiting for the archiver to push the pgbench WAL into the three repositories"
wait_archiver_idle 1800

db_bytes=$(psql_at "SELECT pg_database_size('postgres')")
db_pretty=$(psql_at "SELECT pg_size_pretty(pg_database_size('postgres'))")
data_bytes=$(du -sb --exclude=pg_wal "$c/data" | cut -f1)
log "database size: $db_pretty ($db_bytes bytes; data directory without pg_wal: $((data_bytes / 1024 / 1024)) MiB)"

# ---------------------------------------------------------------------------------------
# Timed runs. Each is one whole command as postgres, under /usr/bin/time (wall time from
# bash's $EPOCHREALTIME around it; user+sys CPU and peak RSS from time, which counts the
# command and the children it waited for), with the machine's CPU counters (/proc/stat)
# read before and after. Before each: the archiver idle, sync, page cache dropped.
results=$scratch/results.tsv
sizes=$scratch/sizes.tsv
: >"$results"
: >"$sizes"
cpu_ticks() { # busy idle iowait, all CPUs, in USER_HZ
    local _c u n s i w irq sirq st _rest
    read -r _c u n s i w irq sirq st _rest </proc/stat
    echo "$((u + n + s + irq + sirq + st)) $i $w"
}
# Sectors (512 bytes) read and written on the scratch folder's block device, machine-wide
# ("0 0" when the device is not in /proc/diskstats, e.g. an overlay).
disk_dev=$(basename "$(df --output=source "$scratch" | tail -n 1)")
disk_sectors() {
    awk -v d="$disk_dev" '$3 == d { print $6, $10; found = 1; exit } END { if (!found) print "0 0" }' /proc/diskstats
}
timed() { # KIND CONFIG REP CMD...
    local kind=$1 cfg=$2 rep=$3
    shift 3
    local tag=$kind-$cfg-r$rep
    local out=$scratch/runs/$tag.log tf=$scratch/runs/$tag.time
    local c0 c1 d0 d1 t0 t1 rc=0 user sys rss
    : >"$tf"
    chown postgres: "$tf"
    wait_archiver_idle 300
    drop_caches
    d0=$(disk_sectors)
    c0=$(cpu_ticks)
    t0=$EPOCHREALTIME
    as_pg /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$out" 2>&1 </dev/null || rc=$?
    t1=$EPOCHREALTIME
    c1=$(cpu_ticks)
    d1=$(disk_sectors)
    if [[ $rc != 0 ]]; then
        log "$kind $cfg (run $rep) exited with status $rc"
        log "command: $*"
        log "output:"
        sed 's/^/    /' "$out" >&2
        die "$kind $cfg failed"
    fi
    read -r _ user sys rss < <(tail -n 1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$cfg" "$rep" \
        "$(python3 -c "print('%.3f' % ($t1 - $t0))")" "$user" "$sys" "$rss" "$c0" "$c1" "$d0" "$d1" \
        >>"$results"
    log "$(printf '%-7s %-10s run %s: %6.1f s  (CPU %s+%s s, peak RSS %s MiB)' "$kind" "$cfg" "$rep" \
        "$(python3 -c "print($t1 - $t0)")" "$user" "$sys" "$((rss / 1024))")"
}

# Configurations: name, what it runs.
BACKUPS=(pgbb wk-lz4-enc wk-lz4 wk-zstd wk-none pgbr-pm1 pgbr-pm2)
RESTORES=(wk-lz4-enc wk-lz4 wk-zstd wk-none pgbr-pm1 pgbr-pm2)
wk_conf() { # CONFIG -> the walkeep config file and options
    case $1 in
    wk-lz4-enc) WK=(--config "$scratch/enc.conf") ;;
    wk-lz4) WK=(--config "$scratch/plain.conf") ;;
    wk-zstd) WK=(--config "$scratch/plain.conf" --compress=zstd) ;;
    wk-none) WK=(--config "$scratch/plain.conf" --compress=none) ;;
    *) die "unknown configuration $1" ;;
    esac
}
wk_repo_of() { [[ $1 == wk-lz4-enc ]] && echo "$scratch/wk-enc" || echo "$scratch/wk-plain"; }
pgbr_sets() { find "$scratch/pgbr/repo/backup/bench" -mindepth 1 -maxdepth 1 -type d -name '*F' -printf '%f\n' | sort; }

run_backup() { # CONFIG REP
    local cfg=$1 rep=$2 dir before after label
    case $cfg in
    pgbb)
        dir=$scratch/out/pgbb
        timed backup "$cfg" "$rep" "$PGBIN/pg_basebackup" -h "$sock" -p "$PORT" -U postgres \
            -Ft -X none -c fast -D "$dir"
        [[ -f $dir/base.tar ]] || die "pg_basebackup wrote no base.tar"
        printf 'backup\t%s\t%s\t%s\n' "$cfg" "$rep" "$(du -sb "$dir" | cut -f1)" >>"$sizes"
        rm -rf "$dir"
        ;;
    wk-*)
        label=$cfg-r$rep
        wk_conf "$cfg"
        timed backup "$cfg" "$rep" "$scratch/bin/walkeep-basebackup" "${WK[@]}" --label="$label"
        grep -qx "$label" "$scratch/runs/backup-$cfg-r$rep.log" ||
            { cat "$scratch/runs/backup-$cfg-r$rep.log" >&2; die "walkeep-basebackup did not print the label $label"; }
        dir=$(wk_repo_of "$cfg")/backups/$label
        [[ -d $dir ]] || die "walkeep-basebackup exited 0 but $dir does not exist"
        printf 'backup\t%s\t%s\t%s\n' "$cfg" "$rep" "$(du -sb "$dir" | cut -f1)" >>"$sizes"
        ;;
    pgbr-pm*)
        before=$(pgbr_sets)
        timed backup "$cfg" "$rep" pgbackrest --config="$pgbr_conf" --stanza=bench --type=full \
            --process-max="${cfg#pgbr-pm}" backup
        after=$(pgbr_sets)
        label=$(comm -13 <(echo "$before") <(echo "$after") | tail -n 1)
        [[ -n $label ]] || die "pgbackrest backup exited 0 but made no new backup set"
        printf 'backup\t%s\t%s\t%s\n' "$cfg" "$rep" \
            "$(du -sb "$scratch/pgbr/repo/backup/bench/$label" | cut -f1)" >>"$sizes"
        ;;
    esac
}

# A restore goes into a new empty folder (made beforehand, mode 0700, for every tool);
# afterwards (untimed) it is checked and removed.
run_restore() { # CONFIG REP
    local cfg=$1 rep=$2 dir=$scratch/out/restore
    rm -rf "$dir"
    install -d -m 700 -o postgres -g postgres "$dir"
    case $cfg in
    wk-*)
        wk_conf "$cfg"
        timed restore "$cfg" "$rep" "$scratch/bin/pitr-restore" "${WK[@]}" --pgdata "$dir" \
            --target-immediate --backup="$cfg-r$rep"
        [[ -f $dir/recovery.signal ]] || die "pitr-restore ($cfg) wrote no recovery.signal"
        grep -q "^recovery_target = 'immediate'" "$dir/postgresql.auto.conf" ||
            die "pitr-restore ($cfg) wrote no recovery_target = 'immediate'"
        # Every file against the server's own backup_manifest (CRC32C), untimed.
        as_pg "$PGBIN/pg_verifybackup" -n -q "$dir" >"$scratch/runs/verify-$cfg-r$rep.log" 2>&1 ||
            { cat "$scratch/runs/verify-$cfg-r$rep.log" >&2; die "pg_verifybackup failed on what pitr-restore ($cfg) laid down"; }
        ;;
    pgbr-pm*)
        timed restore "$cfg" "$rep" pgbackrest --config="$pgbr_conf" --stanza=bench \
            --pg1-path="$dir" --type=immediate --process-max="${cfg#pgbr-pm}" restore
        [[ -f $dir/PG_VERSION && -f $dir/backup_label ]] ||
            die "pgbackrest restore ($cfg) laid down no PG_VERSION/backup_label"
        ;;
    esac
    printf 'restore\t%s\t%s\t%s\n' "$cfg" "$rep" "$(du -sb "$dir" | cut -f1)" >>"$sizes"
    if [[ $cfg == wk-lz4-enc && $rep == "$REPEAT" ]]; then
        check_restored "$dir"
    fi
    rm -rf "$dir"
}

# Once, untimed: the restored cluster (walkeep lz4 + encryption) starts, replays to the
# end of the backup through walkeep-fetch, promotes and holds every pgbench row.
check_restored() { # DIR
    local dir=$1 rsock=$scratch/out/rsock rport=$((PORT + 1)) n w
    install -d -m 755 -o postgres -g postgres "$rsock"
    cat >>"$dir/postgresql.conf" <<EOF
# walkeep bench: the restored copy
port = $rport
unix_socket_directories = '$rsock'
archive_mode = off
EOF
    clusters+=("$dir")
    as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$scratch/runs/restored-server.log" -w -t 300 start >/dev/null ||
        { tail -n 20 "$scratch/runs/restored-server.log" >&2; die "the cluster restored by pitr-restore did not start"; }
    for ((w = 0; w < 300; w++)); do
        [[ $(as_pg "$PGBIN/psql" -XAtq -h "$rsock" -p "$rport" -U postgres -d postgres \
            -c "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]] && break
        sleep 1
    done
    n=$(as_pg "$PGBIN/psql" -XAtq -h "$rsock" -p "$rport" -U postgres -d postgres \
        -c "SELECT count(*) FROM pgbench_accounts" 2>&1) || n="error: $n"
    as_pg "$PGBIN/pg_ctl" -D "$dir" -m fast -w -t 120 stop >/dev/null 2>&1 || true
    [[ $n == $((SCALE * 100000)) ]] ||
        { tail -n 20 "$scratch/runs/restored-server.log" >&2; die "the restored cluster has \"$n\" pgbench_accounts rows, not $((SCALE * 100000))"; }
    log "check: the cluster pitr-restore laid down recovered, promoted and has all $n pgbench_accounts rows"
    echo "$n" >"$scratch/restored-check.txt"
}

# Interleaved: every repetition goes through every configuration, starting at a different
# one each time. Backups first (the restores need them), then restores.
k=${#BACKUPS[@]}
log "timing: ${#BACKUPS[@]} backup configurations x $REPEAT, interleaved$([[ $DROP == 1 ]] && echo ", page cache dropped before each")"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for ((j = 0; j < k; j++)); do
        run_backup "${BACKUPS[$(((rep - 1 + j) % k))]}" "$rep"
    done
done
k=${#RESTORES[@]}
log "timing: ${#RESTORES[@]} restore configurations x $REPEAT, interleaved"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for ((j = 0; j < k; j++)); do
        run_restore "${RESTORES[$(((rep - 1 + j) % k))]}" "$rep"
    done
done

# ---------------------------------------------------------------------------------------
# Report.
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
[[ -n $(git -C "$root" status --porcelain -- lib basebackup pitr archive_cmd restore_cmd admin CMakeLists.txt 2>/dev/null) ]] &&
    commit="$commit+local changes"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Debian $(cat /etc/debian_version), Linux $(uname -r)"
    echo "scratch filesystem: $(df -T "$scratch" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "walkeep: $("$scratch/bin/walkeep" --version | awk '{ print $NF }') ($commit), Release build, $(cc --version | head -n 1)"
    echo "pgBackRest: $(pgbackrest version | awk '{ print $2 }'); PostgreSQL: $("$PGBIN/postgres" --version | awk '{ print $3 }')"
    echo "libraries: liblz4 $(pkgver liblz4-1), libzstd $(pkgver libzstd1), libsodium $(pkgver libsodium23), OpenSSL $(pkgver libssl3)"
    echo "database: pgbench -i -s $SCALE, pg_database_size $db_pretty ($db_bytes bytes); data directory without pg_wal $((data_bytes / 1024 / 1024)) MiB"
    echo "page cache: $([[ $DROP == 1 ]] && echo "synced and dropped (echo 3 > /proc/sys/vm/drop_caches) before every timed run, for every tool" || echo "not dropped")"
    echo "runs: $REPEAT per configuration, interleaved"
    [[ -f $scratch/restored-check.txt ]] &&
        echo "check: a walkeep lz4 + encryption restore was started: it recovered, promoted and had all $(cat "$scratch/restored-check.txt") pgbench_accounts rows; every walkeep restore passed pg_verifybackup"
} >"$scratch/env.txt"

table=$scratch/table.txt
python3 - "$scratch" "$db_bytes" "$data_bytes" "$(nproc)" >"$table" <<'PY'
import os, statistics, sys
from collections import defaultdict

scratch, db_bytes, data_bytes, ncpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
MiB = 1024 * 1024

def rows(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]

runs = defaultdict(list)        # (kind, cfg) -> [dict]
for kind, cfg, rep, wall, user, sys_, rss, c0, c1, d0, d1 in rows(os.path.join(scratch, "results.tsv")):
    b0, i0, w0 = map(int, c0.split())
    b1, i1, w1 = map(int, c1.split())
    r0, x0 = map(int, d0.split())
    r1, x1 = map(int, d1.split())
    total = (b1 - b0) + (i1 - i0) + (w1 - w0)
    runs[kind, cfg].append(dict(wall=float(wall), cpu=float(user) + float(sys_), rss=int(rss),
                                busy=100.0 * (b1 - b0) / total if total else 0.0,
                                iowait=100.0 * (w1 - w0) / total if total else 0.0,
                                read=(r1 - r0) * 512, written=(x1 - x0) * 512))
size = defaultdict(list)
for kind, cfg, rep, b in rows(os.path.join(scratch, "sizes.tsv")):
    size[kind, cfg].append(int(b))

def med(v): return statistics.median(v)
def wall(kind, cfg): return med([r["wall"] for r in runs[kind, cfg]])
def span(kind, cfg):
    w = [r["wall"] for r in runs[kind, cfg]]
    return "%.1f (%.1f-%.1f)" % (med(w), min(w), max(w))
def cpu(kind, cfg):
    return "%.1f" % med([r["cpu"] for r in runs[kind, cfg]])
def machine(kind, cfg):
    return "%.0f%% / %.0f%%" % (med([r["busy"] for r in runs[kind, cfg]]),
                                med([r["iowait"] for r in runs[kind, cfg]]))
def disk(kind, cfg):
    return "%.0f / %.0f" % (med([r["read"] for r in runs[kind, cfg]]) / MiB,
                            med([r["written"] for r in runs[kind, cfg]]) / MiB)
def rss(kind, cfg):
    return "%.1f" % (max(r["rss"] for r in runs[kind, cfg]) / 1024)

names = {
    "pgbb": "pg_basebackup -Ft (uncompressed tar)",
    "wk-lz4-enc": "walkeep lz4 + encryption",
    "wk-lz4": "walkeep lz4",
    "wk-zstd": "walkeep zstd level 1",
    "wk-none": "walkeep none",
    "pgbr-pm1": "pgBackRest lz4, process-max 1",
    "pgbr-pm2": "pgBackRest lz4, process-max 2",
}
def table(out):
    widths = [max(len(r[i]) for r in out) for i in range(len(out[0]))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(out[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in out[1:]:
        print(line(r))

print(open(os.path.join(scratch, "env.txt")).read().rstrip())
print()
print("Whole command, wall seconds: median (min-max). CPU = user + sys of the command and the")
print("children it waited for (not the PostgreSQL server's walsender or archiver). machine =")
print("all %d CPUs busy / iowait over the run. MiB/s and the stored ratio are per MiB of the" % ncpu)
print("data directory (without pg_wal): %.0f MiB. disk = MiB read / written on the scratch" % (data_bytes / MiB))
print("folder's block device during the run, by everything (the server included).")
print()
print("Backups:")
print()
ref = wall("backup", "pgbb")
out = [["configuration", "seconds", "vs pg_basebackup", "MiB/s", "CPU s", "machine busy / iowait",
        "disk MiB r / w", "peak RSS MiB", "stored MiB (ratio)"]]
for cfg in ["pgbb", "wk-lz4-enc", "wk-lz4", "wk-zstd", "wk-none", "pgbr-pm1", "pgbr-pm2"]:
    s = med(size["backup", cfg])
    out.append([names[cfg], span("backup", cfg), "%.2f" % (wall("backup", cfg) / ref),
                "%.0f" % (data_bytes / MiB / wall("backup", cfg)), cpu("backup", cfg),
                machine("backup", cfg), disk("backup", cfg), rss("backup", cfg),
                "%.0f (%.3f)" % (s / MiB, s / data_bytes)])
table(out)
print()
print("Restores (pitr-restore --target-immediate / pgbackrest restore --type=immediate, into a")
print("new empty folder; pitr-restore ends with syncfs):")
print()
p1, p2 = wall("restore", "pgbr-pm1"), wall("restore", "pgbr-pm2")
out = [["configuration", "seconds", "vs pgBackRest pm1", "vs pgBackRest pm2", "MiB/s", "CPU s",
        "machine busy / iowait", "disk MiB r / w", "peak RSS MiB", "laid down MiB"]]
for cfg in ["wk-lz4-enc", "wk-lz4", "wk-zstd", "wk-none", "pgbr-pm1", "pgbr-pm2"]:
    w = wall("restore", cfg)
    out.append([names[cfg], span("restore", cfg), "%.2f" % (w / p1), "%.2f" % (w / p2),
                "%.0f" % (data_bytes / MiB / w), cpu("restore", cfg), machine("restore", cfg),
                disk("restore", cfg),
                rss("restore", cfg), "%.0f" % (med(size["restore", cfg]) / MiB)])
table(out)

print()
print("Targets:")
missed = 0
def target(ok, text):
    global missed
    missed += not ok
    print("  %-6s %s" % ("MET" if ok else "MISSED", text))
w = wall("backup", "wk-lz4-enc")
target(w <= 1.2 * ref, "walkeep-basebackup lz4 + encryption: %.1f s vs pg_basebackup -Ft %.1f s, "
       "ratio %.2f (target <= 1.2)" % (w, ref, w / ref))
w = wall("restore", "wk-lz4-enc")
for cfg, p in (("1", p1), ("2", p2)):
    target(w <= 0.5 * p, "pitr-restore lz4 + encryption: %.1f s vs pgBackRest restore process-max %s "
           "%.1f s, ratio %.2f (target <= 0.5)" % (w, cfg, p, w / p))
print("MISSED=%d" % missed)
PY
grep -v '^MISSED=' "$table"
missed=$(sed -n 's/^MISSED=//p' "$table")
if [[ -n ${BENCH_RESULTS:-} ]]; then
    mkdir -p "$BENCH_RESULTS"
    grep -v '^MISSED=' "$table" >"$BENCH_RESULTS/table.txt"
    cp "$results" "$sizes" "$scratch/env.txt" "$BENCH_RESULTS/"
    log "raw figures in $BENCH_RESULTS"
fi
if [[ ${BENCH_STRICT:-} == 1 && $missed != 0 ]]; then
    log "$missed target(s) missed"
    exit 3
fi
exit 0
