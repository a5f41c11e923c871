#!/usr/bin/env bash
# bench/archive.sh: walkeep-archive / walkeep-fetch against pgBackRest 2.45 archive-push /
# archive-get, per real 16 MiB WAL segment, whole process, in one run. A benchmark, not a
# test: it prints a table and whether the targets are met (see bench/README.md).
#
# Runs as root on Debian 12. It installs what is missing (scripts/deps.sh, pgbackrest,
# time), builds walkeep in release mode in its own folder, makes real WAL with pgbench in
# a throw-away PostgreSQL 15 cluster (run as postgres, own port and socket folder, no
# TCP), then times every tool and configuration on the same segments, interleaved.
# Everything it started is stopped and its scratch folders removed at exit, also on
# failure or Ctrl-C.
#
# Environment:
#   BENCH_SEGMENTS=20        timed segments per configuration (the median is over them)
#   BENCH_SCALE=20           pgbench -i scale of the 16 MiB cluster
#   BENCH_BIG_SEGSIZES="64 1024"  extra WAL segment sizes (MiB) measured for peak memory
#                            (one push, one fetch per configuration); "" skips them
#   WALKEEP_BENCH_BUILD=DIR  build folder (kept); default a mktemp -d folder, removed
#   BENCH_TMPDIR=/tmp        where the scratch folder is made (postgres must traverse it)
#   BENCH_PORT=55433         PostgreSQL port (only names the socket in our own folder)
#   BENCH_RESULTS=DIR        also copy the raw figures (TSV) and the table there
#   BENCH_KEEP=1             keep the scratch folder at exit
#   BENCH_STRICT=1           exit 3 when a target is missed (default: exit 0)
#   BENCH_PGBIN              PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail
set -E

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

N=${BENCH_SEGMENTS:-20}
SCALE=${BENCH_SCALE:-20}
BIG_SEGSIZES=${BENCH_BIG_SEGSIZES-64 1024}
PGBIN=${BENCH_PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-55433}
TMPROOT=${BENCH_TMPDIR:-/tmp}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_SEGMENTS must be a positive integer, not \"$N\""
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE must be a positive integer, not \"$SCALE\""
[[ $PORT =~ ^[1-9][0-9]*$ ]] || die "BENCH_PORT must be a port number, not \"$PORT\""
for s in $BIG_SEGSIZES; do
    [[ $s =~ ^(1|2|4|8|16|32|64|128|256|512|1024)$ ]] ||
        die "BENCH_BIG_SEGSIZES: $s is not a WAL segment size in MiB (a power of two, 1..1024)"
done
[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and runs PostgreSQL as postgres)"

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
[[ -x $PGBIN/initdb && -x $PGBIN/pgbench ]] || die "no PostgreSQL binaries in $PGBIN"

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
# them whatever the build folder's modes are).
scratch=$(mktemp -d "$TMPROOT/walkeep-bench.XXXXXX")
chmod 755 "$scratch"
mkdir -p "$scratch/bin"
for p in walkeep-archive walkeep-fetch walkeep; do
    install -m 755 "$build/$p" "$scratch/bin/$p"
done
chown -R postgres: "$scratch"
runuser -u postgres -- test -x "$scratch/bin/walkeep-archive" ||
    die "the postgres user cannot reach $scratch: every folder above it needs o+x"
cd "$scratch"
: >"$scratch/empty.conf" # walkeep gets --config=empty.conf: no /etc/walkeep, no surprise
chown postgres: "$scratch/empty.conf"

# Commands run as postgres with a clean environment (no WALKEEP_* / PGBACKREST_* / PG*).
as_pg() {
    runuser -u postgres -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch" \
        LC_ALL=C TZ=UTC "$@"
}
psql_at() { # DIR SQL
    as_pg "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$1/sock" -p "$PORT" -U postgres \
        -d postgres -c "$2"
}

cluster_init() { # DIR SEGSIZE_MB [SETTING...]
    local dir=$1 segsize=$2
    shift 2
    mkdir -p "$dir/segs" "$dir/sock"
    chown -R postgres: "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" --auth=trust -U postgres -N --locale=C -E UTF8 \
        --wal-segsize="$segsize" >"$dir/initdb.log" 2>&1 ||
        { tail -n 20 "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<EOF
# walkeep bench
listen_addresses = ''
port = $PORT
unix_socket_directories = '$dir/sock'
archive_mode = on
archive_command = 'cp %p $dir/segs/%f'
synchronous_commit = off
log_line_prefix = '%m [%p] '
EOF
    [[ $# -eq 0 ]] || printf '%s\n' "$@" >>"$dir/data/postgresql.conf"
}
cluster_start() { # DIR
    clusters+=("$1/data")
    as_pg "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 120 start >/dev/null ||
        { tail -n 20 "$1/server.log" >&2; die "PostgreSQL did not start"; }
}
cluster_stop() { # DIR
    as_pg "$PGBIN/pg_ctl" -D "$1/data" -m fast -w -t 300 stop >/dev/null ||
        { tail -n 20 "$1/server.log" >&2; die "PostgreSQL did not stop"; }
}
run_pgbench() { # DIR ARGS...
    local dir=$1
    shift
    as_pg "$PGBIN/pgbench" -h "$dir/sock" -p "$PORT" -U postgres "$@" postgres
}

# Configurations: name, tool, compression, encryption. The pgBackRest ones use the same
# codec and level as the walkeep ones they are compared with (zstd level 1: walkeep's
# default level; pgBackRest's own zstd default would be 3).
CONFIGS=(
    "wk-lz4       walkeep    lz4  0"
    "wk-lz4-enc   walkeep    lz4  1"
    "wk-zstd      walkeep    zstd 0"
    "wk-zstd-enc  walkeep    zstd 1"
    "wk-none      walkeep    none 0"
    "pgbr-lz4     pgbackrest lz4  0"
    "pgbr-lz4-enc pgbackrest lz4  1"
    "pgbr-zstd    pgbackrest zstd 0"
    "pgbr-zstd-enc pgbackrest zstd 1"
    "pgbr-none    pgbackrest none 0"
)
printf '%s\n' "${CONFIGS[@]}" >"$scratch/configs"

# Repositories for one cluster under DIR/repos: a fresh walkeep folder per configuration
# (initialised by the warm-up push, or by walkeep init for the larger segment sizes), a
# pgBackRest config + stanza per configuration (stanza-create needs the cluster running).
setup_repos() { # DIR
    local dir=$1 name tool alg enc conf
    mkdir -p "$dir/repos" "$dir/restore"
    chown postgres: "$dir/repos" "$dir/restore"
    while read -r name tool alg enc; do
        [[ $tool == pgbackrest ]] || continue
        conf=$dir/repos/$name.conf
        mkdir -p "$dir/repos/$name"/{repo,lock,spool,log}
        {
            echo "[global]"
            echo "repo1-path=$dir/repos/$name/repo"
            echo "lock-path=$dir/repos/$name/lock"
            echo "spool-path=$dir/repos/$name/spool"
            echo "log-path=$dir/repos/$name/log"
            echo "log-level-console=off"
            echo "log-level-stderr=error"
            echo "log-level-file=off"
            echo "archive-async=n"
            echo "compress-type=${alg/#zstd/zst}" # pgBackRest spells it zst
            [[ $alg == zstd ]] && echo "compress-level=1"
            if [[ $enc == 1 ]]; then
                echo "repo1-cipher-type=aes-256-cbc"
                echo "repo1-cipher-pass=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            fi
            echo
            echo "[bench]"
            echo "pg1-path=$dir/data"
            echo "pg1-port=$PORT"
            echo "pg1-socket-path=$dir/sock"
        } >"$conf"
        chmod 600 "$conf"
        chown -R postgres: "$dir/repos/$name" "$conf"
        as_pg pgbackrest --config="$conf" --stanza=bench stanza-create \
            </dev/null >"$dir/repos/$name.create.log" 2>&1 ||
            { cat "$dir/repos/$name.create.log" >&2; die "pgbackrest stanza-create ($name) failed"; }
    done <"$scratch/configs"
}

# The measuring helper, run as postgres. Times whole processes with bash's
# $EPOCHREALTIME (no extra fork around the tool) and their CPU time with the `times`
# builtin (the shell's children's user+sys, taken just before and after: the tool is the
# only child in between), writes one TSV line per run:
#   phase config segment start_s end_s children_cpu_before children_cpu_after
# and checks every fetched file against the original (outside the timed span).
cat >"$scratch/measure.sh" <<'HELPER'
#!/usr/bin/env bash
# measure.sh MODE REPOS_DIR RESTORE_DIR OUT SEGMENT...
#   MODE warmup: push each SEGMENT into every configuration, untimed
#   MODE timed:  push every SEGMENT (timed), then fetch each back (timed)
#   MODE rss:    push then fetch the single SEGMENT under /usr/bin/time -f %M
set -uo pipefail
mode=$1 repos=$2 restore=$3 out=$4
shift 4
segs=("$@")
bin=$BENCH_SCRATCH/bin
key=$BENCH_SCRATCH/repo.key
mapfile -t configs <"$BENCH_SCRATCH/configs"
errlog=$repos/errors.log

fail() { echo "measure: error: $*" >&2; [[ -s $errlog ]] && tail -n 5 "$errlog" >&2; exit 1; }

cmd_push() { # CONFIG SEGMENT -> CMD
    local name tool alg enc
    read -r name tool alg enc <<<"$1"
    if [[ $tool == walkeep ]]; then
        CMD=("$bin/walkeep-archive" --config="$BENCH_SCRATCH/empty.conf" --repo="$repos/$name"
             --compress="$alg")
        [[ $enc == 1 ]] && CMD+=(--encrypt-key-file="$key")
        CMD+=("$2")
    else
        CMD=(pgbackrest --config="$repos/$name.conf" --stanza=bench archive-push "$2")
    fi
}
cmd_fetch() { # CONFIG NAME DEST -> CMD
    local name tool alg enc
    read -r name tool alg enc <<<"$1"
    if [[ $tool == walkeep ]]; then
        CMD=("$bin/walkeep-fetch" --config="$BENCH_SCRATCH/empty.conf" --repo="$repos/$name")
        [[ $enc == 1 ]] && CMD+=(--encrypt-key-file="$key")
        CMD+=("$2" "$3")
    else
        CMD=(pgbackrest --config="$repos/$name.conf" --stanza=bench archive-get "$2" "$3")
    fi
}

k=${#configs[@]}
dest=$restore/RECOVERYXLOG
tfile=$repos/times.tmp
case $mode in
warmup)
    for seg in "${segs[@]}"; do
        for c in "${configs[@]}"; do
            cmd_push "$c" "$seg"
            "${CMD[@]}" >>"$errlog" 2>&1 || fail "warm-up push failed: ${CMD[*]}"
        done
    done
    ;;
timed)
    # Interleaved: segment by segment, every configuration, starting each segment at a
    # different configuration, so that machine noise spreads over all of them.
    for phase in push fetch; do
        for i in "${!segs[@]}"; do
            seg=${segs[$i]}
            name=${seg##*/}
            for ((j = 0; j < k; j++)); do
                c=${configs[$(((i + j) % k))]}
                cfg=${c%% *}
                if [[ $phase == push ]]; then
                    cmd_push "$c" "$seg"
                else
                    rm -f "$dest"
                    cmd_fetch "$c" "$name" "$dest"
                fi
                times >"$tfile"
                t0=$EPOCHREALTIME
                "${CMD[@]}" >>"$errlog" 2>&1
                rc=$?
                t1=$EPOCHREALTIME
                times >>"$tfile"
                [[ $rc == 0 ]] || fail "$phase exited $rc: ${CMD[*]}"
                mapfile -t tl <"$tfile"
                if [[ $phase == fetch ]]; then
                    cmp -s "$dest" "$seg" || fail "fetched $name ($cfg) differs from the original"
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$cfg" "$name" "$t0" "$t1" \
                    "${tl[1]}" "${tl[3]}" >>"$out"
            done
        done
    done
    rm -f "$dest"
    ;;
rss)
    seg=${segs[0]}
    name=${seg##*/}
    for c in "${configs[@]}"; do
        cfg=${c%% *}
        for phase in push fetch; do
            if [[ $phase == push ]]; then
                cmd_push "$c" "$seg"
            else
                rm -f "$dest"
                cmd_fetch "$c" "$name" "$dest"
            fi
            t0=$EPOCHREALTIME
            /usr/bin/time -f %M -o "$repos/rss.tmp" "${CMD[@]}" >>"$errlog" 2>&1
            rc=$?
            t1=$EPOCHREALTIME
            [[ $rc == 0 ]] || fail "$phase exited $rc: ${CMD[*]}"
            if [[ $phase == fetch ]]; then
                cmp -s "$dest" "$seg" || fail "fetched $name ($cfg) differs from the original"
                rm -f "$dest"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$cfg" "$name" "$t0" "$t1" \
                "$(tail -n 1 "$repos/rss.tmp")" >>"$out"
        done
    done
    ;;
*) fail "unknown mode $mode" ;;
esac
HELPER
chmod 755 "$scratch/measure.sh"
chown postgres: "$scratch/measure.sh"
measure() { # MODE CLUSTER_DIR OUT SEGMENT...
    local mode=$1 dir=$2 out=$3
    shift 3
    : >"$out"
    chown postgres: "$out"
    runuser -u postgres -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch" LC_ALL=C \
        TZ=UTC BENCH_SCRATCH="$scratch" \
        "$scratch/measure.sh" "$mode" "$dir/repos" "$dir/restore" "$out" "$@"
}

as_pg "$scratch/bin/walkeep" --config="$scratch/empty.conf" keygen "$scratch/repo.key" 2>/dev/null ||
    die "walkeep keygen failed"

# ---------------------------------------------------------------------------------------
# 16 MiB segments: pgbench -i, a checkpoint, then pgbench updates until enough segments
# (full-page images after the checkpoint, then steady updates) are archived.
c16=$scratch/c16
need=$((N + 2)) # one warm-up, N timed, one for peak memory
log "making WAL: initdb, pgbench -i -s $SCALE, then pgbench updates until $need segments"
cluster_init "$c16" 16
cluster_start "$c16"
run_pgbench "$c16" -i -q -s "$SCALE" >"$c16/pgbench-init.log" 2>&1 ||
    { tail -n 20 "$c16/pgbench-init.log" >&2; die "pgbench -i failed"; }
psql_at "$c16" "CHECKPOINT" >/dev/null
first=$(psql_at "$c16" "SELECT pg_walfile_name(pg_current_wal_lsn())")
count_after() { # DIR FIRST: archived segment files after FIRST
    local n=0 f
    for f in "$1"/segs/*; do
        f=${f##*/}
        [[ $f =~ ^[0-9A-F]{24}$ && $f > $2 ]] && n=$((n + 1))
    done
    echo "$n"
}
rounds=0
while (($(count_after "$c16" "$first") < need)); do
    ((rounds < 60)) || die "pgbench made too little WAL ($(count_after "$c16" "$first") of $need segments)"
    run_pgbench "$c16" -n -c 2 -j 2 -T 10 >>"$c16/pgbench-run.log" 2>&1 ||
        { tail -n 20 "$c16/pgbench-run.log" >&2; die "pgbench failed"; }
    rounds=$((rounds + 1))
done
setup_repos "$c16"
cluster_stop "$c16" # the archiver finishes before the server stops; quiet machine from here
segs=()
for f in "$c16"/segs/*; do
    n=${f##*/}
    [[ $n =~ ^[0-9A-F]{24}$ && $n > $first ]] || continue
    [[ $(stat -c %s "$f") == $((16 * 1024 * 1024)) ]] || die "$f is not 16 MiB"
    segs+=("$f")
    ((${#segs[@]} == need)) && break
done
((${#segs[@]} == need)) || die "only ${#segs[@]} segments, $need needed"
log "made ${#segs[@]} segments in $rounds pgbench rounds of 10 s ($(grep -h '^tps' "$c16/pgbench-run.log" | head -n 1))"

# The copies of the segments and the cluster's last checkpoint are still dirty in the page
# cache: write them out now, or the first fsyncs of the timed runs would pay for them.
sync
log "warm-up: one segment into every repository (initialises them, warms the page cache)"
measure warmup "$c16" "$c16/warmup.tsv" "${segs[0]}"
log "timing: ${#CONFIGS[@]} configurations x $N segments, push then fetch, interleaved"
measure timed "$c16" "$c16/timed.tsv" "${segs[@]:1:N}"
log "peak memory: one push and one fetch per configuration"
measure rss "$c16" "$c16/rss.tsv" "${segs[N + 1]}"

# Stored bytes per timed segment, per configuration.
: >"$c16/stored.tsv"
for ((i = 1; i <= N; i++)); do
    n=${segs[$i]##*/}
    while read -r name tool _; do
        if [[ $tool == walkeep ]]; then
            f=$(find "$c16/repos/$name/wal" -type f -name "$n-*" ! -name "*-claim" | head -n 1)
        else
            f=$(find "$c16/repos/$name/repo/archive" -type f -name "$n-*" | head -n 1)
        fi
        [[ -n $f ]] || die "no stored object for $n in $name"
        printf '%s\t%s\t%s\n' "$name" "$n" "$(stat -c %s "$f")" >>"$c16/stored.tsv"
    done <"$scratch/configs"
done
rm -rf "$c16/data" # the segments stay, the cluster's 300+ MB go

# ---------------------------------------------------------------------------------------
# Larger segment sizes: peak memory (and time) of one push and one fetch.
: >"$scratch/big.tsv"
for mb in $BIG_SEGSIZES; do
    d=$scratch/big$mb
    log "segment size $mb MiB: initdb, pgbench -i -s $SCALE, updates until one segment is archived"
    # Checkpoints every 30 s keep full-page images coming, so that even a 1 GiB segment
    # fills with real WAL in a couple of minutes.
    cluster_init "$d" "$mb" "checkpoint_timeout = 30s"
    cluster_start "$d"
    run_pgbench "$d" -i -q -s "$SCALE" >"$d/pgbench-init.log" 2>&1 ||
        { tail -n 20 "$d/pgbench-init.log" >&2; die "pgbench -i failed"; }
    psql_at "$d" "CHECKPOINT" >/dev/null
    rounds=0
    while (($(count_after "$d" 0) < 1)) && ((rounds < 12)); do
        run_pgbench "$d" -n -c 2 -j 2 -T 10 >>"$d/pgbench-run.log" 2>&1 ||
            { tail -n 20 "$d/pgbench-run.log" >&2; die "pgbench failed"; }
        rounds=$((rounds + 1))
    done
    filled=full
    if (($(count_after "$d" 0) < 1)); then
        # Not enough WAL for one whole segment in two minutes: switch (the tail is zeros;
        # the file still has the full size, which is what the memory figure is about).
        filled=switched
        psql_at "$d" "SELECT pg_switch_wal()" >/dev/null
        for ((w = 0; w < 600; w++)); do
            (($(count_after "$d" 0) >= 1)) && break
            sleep 0.5
        done
    fi
    setup_repos "$d"
    cluster_stop "$d"
    seg=
    for f in "$d"/segs/*; do
        [[ ${f##*/} =~ ^[0-9A-F]{24}$ && $(stat -c %s "$f") == $((mb * 1024 * 1024)) ]] && { seg=$f; break; }
    done
    [[ -n $seg ]] || die "no archived $mb MiB segment"
    # Initialise the repositories without storing anything: the segment must be new to
    # every one of them when it is measured.
    while read -r name tool alg enc; do
        [[ $tool == walkeep ]] || continue
        args=(--config="$scratch/empty.conf" --repo="$d/repos/$name" --compress="$alg"
              --pgdata="$d/data")
        [[ $enc == 1 ]] && args+=(--encrypt-key-file="$scratch/repo.key")
        as_pg "$scratch/bin/walkeep" "${args[@]}" init </dev/null >"$d/repos/$name.init.log" 2>&1 ||
            { cat "$d/repos/$name.init.log" >&2; die "walkeep init ($name) failed"; }
    done <"$scratch/configs"
    log "segment size $mb MiB ($filled segment): one push and one fetch per configuration"
    sync
    measure rss "$d" "$d/rss.tsv" "$seg"
    rm -rf "$d/data"
    awk -v mb="$mb" -v filled="$filled" 'BEGIN { OFS = "\t" } { print mb, filled, $0 }' \
        "$d/rss.tsv" >>"$scratch/big.tsv"
    rm -rf "$d"
done

# ---------------------------------------------------------------------------------------
# Report.
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
[[ -n $(git -C "$root" status --porcelain -- lib archive_cmd restore_cmd admin CMakeLists.txt 2>/dev/null) ]] &&
    commit="$commit+local changes"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Debian $(cat /etc/debian_version), Linux $(uname -r)"
    echo "scratch filesystem: $(df -T "$scratch" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "walkeep: $("$scratch/bin/walkeep" --version | awk '{ print $NF }') ($commit), Release build, $(cc --version | head -n 1)"
    echo "pgBackRest: $(pgbackrest version | awk '{ print $2 }'); PostgreSQL: $("$PGBIN/postgres" --version | awk '{ print $3 }')"
    echo "libraries: liblz4 $(pkgver liblz4-1), libzstd $(pkgver libzstd1), libsodium $(pkgver libsodium23), libxxhash $(pkgver libxxhash0), OpenSSL $(pkgver libssl3)"
    echo "segments: $N x 16 MiB from pgbench -s $SCALE updates (-c 2, after a checkpoint), each pushed once into a fresh repository per configuration, then fetched back"
} >"$scratch/env.txt"

table=$scratch/table.txt
python3 - "$scratch" "$N" "$BIG_SEGSIZES" >"$table" <<'PY'
import os, statistics, sys
from collections import defaultdict

scratch, n, big = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
configs = [line.split() for line in open(os.path.join(scratch, "configs"))]
c16 = os.path.join(scratch, "c16")

def rows(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]

def cpu_s(t):                                   # "0m1.234s 0m0.567s" -> user + sys
    total = 0.0
    for part in t.split():
        m, sec = part.rstrip("s").split("m")
        total += int(m) * 60 + float(sec)
    return total

times = defaultdict(list)                       # (phase, config) -> [ms]
cpu = defaultdict(list)                         # (phase, config) -> [CPU ms]
for phase, cfg, seg, t0, t1, c0, c1 in rows(os.path.join(c16, "timed.tsv")):
    times[phase, cfg].append((float(t1) - float(t0)) * 1000)
    cpu[phase, cfg].append((cpu_s(c1) - cpu_s(c0)) * 1000)
stored = defaultdict(list)
for cfg, seg, size in rows(os.path.join(c16, "stored.tsv")):
    stored[cfg].append(int(size))
rss = {}
for phase, cfg, seg, t0, t1, kib in rows(os.path.join(c16, "rss.tsv")):
    rss[phase, cfg] = int(kib)

def med(v): return statistics.median(v)
def quart(v):
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], q[2]

seg_bytes = 16 * 1024 * 1024
print(open(os.path.join(scratch, "env.txt")).read().rstrip())
print()
print("Per 16 MiB segment, whole process; median over %d segments, (p25-p75) in brackets." % n)
print("ratio = walkeep / pgBackRest with the same compression and encryption.")
print("CPU = user + sys time of the process (1 ms resolution); wall - CPU is mostly fsync.")
print()
hdr = ["configuration", "push ms", "fetch ms", "push ratio", "fetch ratio", "CPU ms push / fetch",
       "stored bytes/seg", "peak RSS push / fetch"]
out = [hdr]
for name, tool, alg, enc in configs:
    p, f = times["push", name], times["fetch", name]
    if len(p) != n or len(f) != n:
        sys.exit("missing timings for %s" % name)
    pr = fr = "-"
    if tool == "walkeep":
        ref = "pgbr-%s%s" % (alg, "-enc" if enc == "1" else "")
        if ("push", ref) in times:
            pr = "%.2f" % (med(p) / med(times["push", ref]))
            fr = "%.2f" % (med(f) / med(times["fetch", ref]))
    label = "%s %s%s" % ("walkeep" if tool == "walkeep" else "pgBackRest", alg,
                          (" level 1" if alg == "zstd" else "") + (" + encryption" if enc == "1" else ""))
    avg = sum(stored[name]) / len(stored[name])
    out.append([label,
                "%.1f (%.1f-%.1f)" % ((med(p),) + quart(p)),
                "%.1f (%.1f-%.1f)" % ((med(f),) + quart(f)),
                pr, fr,
                "%.0f / %.0f" % (med(cpu["push", name]), med(cpu["fetch", name])),
                "%d (%.3f)" % (avg, avg / seg_bytes),
                "%.1f / %.1f MiB" % (rss["push", name] / 1024, rss["fetch", name] / 1024)])
widths = [max(len(r[i]) for r in out) for i in range(len(hdr))]
def line(r): return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
print(line(out[0]))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for r in out[1:]:
    print(line(r))

big_rows = rows(os.path.join(scratch, "big.tsv")) if big else []
if big_rows:
    print()
    print("Larger WAL segments: one push and one fetch per configuration (single runs, not medians).")
    print()
    bout = [["segment", "configuration", "push ms", "fetch ms", "peak RSS push / fetch"]]
    acc = defaultdict(dict)
    for mb, filled, phase, cfg, seg, t0, t1, kib in big_rows:
        acc[mb, filled, cfg][phase] = ((float(t1) - float(t0)) * 1000, int(kib))
    for (mb, filled, cfg), v in acc.items():
        bout.append(["%s MiB%s" % (mb, "" if filled == "full" else " (switched)"), cfg,
                     "%.0f" % v["push"][0], "%.0f" % v["fetch"][0],
                     "%.1f / %.1f MiB" % (v["push"][1] / 1024, v["fetch"][1] / 1024)])
    widths = [max(len(r[i]) for r in bout) for i in range(len(bout[0]))]
    print(line(bout[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in bout[1:]:
        print(line(r))

# Targets (from the issue).
print()
print("Targets:")
missed = 0
def target(ok, text):
    global missed
    missed += not ok
    print("  %-6s %s" % ("MET" if ok else "MISSED", text))
for enc, suffix, what in (("0", "", "no encryption"), ("1", "-enc", "encryption")):
    w, b = "wk-lz4" + suffix, "pgbr-lz4" + suffix
    for phase, prog in (("push", "walkeep-archive"), ("fetch", "walkeep-fetch")):
        r = med(times[phase, w]) / med(times[phase, b])
        target(r <= 0.5, "%s lz4, %s: %.1f ms vs pgBackRest %.1f ms, ratio %.3f (target <= 0.5)"
               % (prog, what, med(times[phase, w]), med(times[phase, b]), r))
limit = 8 * 1024
worst = [(kib, "16", phase, cfg) for (phase, cfg), kib in rss.items() if cfg.startswith("wk-")]
worst += [(int(r[7]), r[0], r[2], r[3]) for r in big_rows if r[3].startswith("wk-")]
for mb in dict.fromkeys(["16"] + big):  # each size once
    sel = [w for w in worst if w[1] == mb]
    if not sel:
        continue
    kib, _, phase, cfg = max(sel)
    target(kib < limit, "peak RSS of one walkeep push or fetch, %s MiB segments: at most %.1f MiB "
           "(%s %s; target < 8 MiB)" % (mb, kib / 1024, cfg, phase))
print("MISSED=%d" % missed)
PY
grep -v '^MISSED=' "$table"
missed=$(sed -n 's/^MISSED=//p' "$table")
if [[ -n ${BENCH_RESULTS:-} ]]; then
    mkdir -p "$BENCH_RESULTS"
    grep -v '^MISSED=' "$table" >"$BENCH_RESULTS/table.txt"
    cp "$scratch/c16/timed.tsv" "$scratch/c16/rss.tsv" "$scratch/c16/stored.tsv" \
        "$scratch/big.tsv" "$scratch/env.txt" "$BENCH_RESULTS/"
    log "raw figures in $BENCH_RESULTS"
fi
if [[ ${BENCH_STRICT:-} == 1 && $missed != 0 ]]; then
    log "$missed target(s) missed"
    exit 3
fi
exit 0
