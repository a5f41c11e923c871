#!/usr/bin/env bash
# bench/s3.sh: walkeep against pgBackRest 2.45 on an S3 repository, both talking HTTPS
# to the same local Ceph RADOS Gateway (tests/s3/start-s3.sh with S3_TLS_PORT, a private
# CA), in one run: per-segment push and fetch of real 16 MiB WAL segments, then base
# backup and restore of a pgbench cluster. A benchmark, not a test: it prints a table and
# whether the targets are met (see bench/README.md, section "S3").
#
# Runs as root on Debian 12. It installs what is missing (scripts/deps.sh, pgbackrest,
# time, and the Ceph packages through start-s3.sh), builds walkeep in release mode in its
# own folder, starts its own gateway (memstore: objects in the OSD's RAM) with two
# buckets, one per tool, and a throw-away PostgreSQL 15 cluster (run as postgres, own
# port and socket folder, no TCP). Everything it started is stopped and its scratch
# folders removed at exit, also on failure or Ctrl-C.
#
# The walkeep side may fail (a broken build, a driver error): the script then says why
# ("walkeep: <reason>"), leaves walkeep out and still measures pgBackRest.
#
# Environment:
#   BENCH_SEGMENTS=20        timed 16 MiB segments per configuration (push, then fetch)
#   BENCH_REPEAT=3           timed backups and restores per configuration
#   BENCH_DB_SCALE=50        pgbench -i scale of the cluster that is backed up (50: about
#                            750 MiB; 200: about 3 GiB, the "multi-gigabyte" setting)
#   BENCH_ENCRYPT=1          also the encrypted configurations (walkeep encrypt_key_file,
#                            pgBackRest aes-256-cbc); 0 leaves them out
#   BENCH_DROP_CACHES=1      sync and drop the page cache before every timed backup and
#                            restore (the repository is in the gateway's RAM either way)
#   BENCH_S3_PORT=59500      the gateway's plain HTTP port (only used for readiness)
#   BENCH_S3_TLS_PORT=59543  the gateway's HTTPS port: what both tools talk to
#   BENCH_S3_OBJECTSTORE=memstore  or bluestore (a sparse file under the scratch folder)
#   BENCH_S3_MEM_BYTES       memstore size; default sized from the scale and BENCH_REPEAT
#   BENCH_S3_PART_SIZE       walkeep s3_part_size (unset: the driver's default, 8MB)
#   BENCH_S3_PARALLEL        walkeep s3_parallel (unset: the driver's default, 4)
#   BENCH_WK_TIMEOUT=900     seconds before a walkeep command is killed (timeout(1) around
#                            every walkeep command, about 1 ms counted against walkeep);
#                            0: no timeout
#   WALKEEP_BENCH_BUILD=DIR  build folder (kept); default a mktemp -d folder, removed
#   BENCH_TMPDIR=/tmp        where the scratch folder is made (postgres must traverse it)
#   BENCH_PORT=55454         PostgreSQL port (only names the socket in our own folder);
#                            BENCH_PORT+1 is used once, for the restored cluster's check
#   BENCH_RESULTS=DIR        also copy the raw figures (TSV) and the table there
#   BENCH_KEEP=1             keep the scratch folder (and stop, not purge, the gateway)
#   BENCH_STRICT=1           exit 3 when a target is missed (default: exit 0)
#   BENCH_PGBIN              PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail
set -E

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

N=${BENCH_SEGMENTS:-20}
REPEAT=${BENCH_REPEAT:-3}
SCALE=${BENCH_DB_SCALE:-50}
ENCRYPT=${BENCH_ENCRYPT:-1}
DROP=${BENCH_DROP_CACHES:-1}
S3_PORT=${BENCH_S3_PORT:-59500}
S3_TLS_PORT=${BENCH_S3_TLS_PORT:-59543}
OBJECTSTORE=${BENCH_S3_OBJECTSTORE:-memstore}
WK_TIMEOUT=${BENCH_WK_TIMEOUT:-900}
PGBIN=${BENCH_PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-55454}
TMPROOT=${BENCH_TMPDIR:-/tmp}
AK=AKIAWALKEEPBENCH
SK=walkeep-bench-secret
REGION=us-east-1
WK_BUCKET=walkeep-bench
PGBR_BUCKET=pgbackrest-bench

# Messages go to the script's own stderr, kept aside: bash runs a trap with the redirections
# of the command it interrupted still in place, and a timed command's output goes to a file.
exec {bench_stderr}>&2
log() { printf 'bench: %s\n' "$*" >&"$bench_stderr"; }
die() { log "error: $*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_SEGMENTS must be a positive integer, not \"$N\""
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer, not \"$REPEAT\""
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "BENCH_DB_SCALE must be a positive integer, not \"$SCALE\""
[[ $ENCRYPT =~ ^[01]$ ]] || die "BENCH_ENCRYPT must be 0 or 1, not \"$ENCRYPT\""
[[ $DROP =~ ^[01]$ ]] || die "BENCH_DROP_CACHES must be 0 or 1, not \"$DROP\""
[[ $WK_TIMEOUT =~ ^[0-9]+$ ]] || die "BENCH_WK_TIMEOUT must be a number of seconds, not \"$WK_TIMEOUT\""
[[ $OBJECTSTORE =~ ^(memstore|bluestore)$ ]] || die "BENCH_S3_OBJECTSTORE must be memstore or bluestore"
for p in "$PORT" "$S3_PORT" "$S3_TLS_PORT"; do
    if ! [[ $p =~ ^[1-9][0-9]{0,4}$ ]] || ((p >= 65535)); then die "not a port number: \"$p\""; fi
done
[[ -z ${BENCH_S3_PART_SIZE:-} || ${BENCH_S3_PART_SIZE} =~ ^[1-9][0-9]*(kB|MB|GB)?$ ]] ||
    die "BENCH_S3_PART_SIZE must be a size such as 8MB, not \"$BENCH_S3_PART_SIZE\""
[[ -z ${BENCH_S3_PARALLEL:-} || ${BENCH_S3_PARALLEL} =~ ^[1-9][0-9]*$ ]] ||
    die "BENCH_S3_PARALLEL must be a positive integer, not \"$BENCH_S3_PARALLEL\""
[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages, starts the gateway, drops the page cache and runs PostgreSQL as postgres)"

# The memstore size: the OSD keeps every stored byte in RAM (and only what is stored).
# Per backup about 0.12 of the data directory for pgbench data (lz4), per unit of scale
# ~15 MiB of data; 4 backup configurations x BENCH_REPEAT, plus the WAL. Sized with a
# factor 2 of headroom: memstore that overflows makes writes hang, it does not fail.
if [[ -n ${BENCH_S3_MEM_BYTES:-} ]]; then
    MEM_BYTES=$BENCH_S3_MEM_BYTES
    [[ $MEM_BYTES =~ ^[1-9][0-9]*$ ]] || die "BENCH_S3_MEM_BYTES must be a number of bytes"
else
    MEM_BYTES=$(((2048 + SCALE * REPEAT * 4 * 4 + SCALE * 8) * 1024 * 1024))
fi
if [[ $OBJECTSTORE == memstore ]]; then
    avail_kib=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
    ((MEM_BYTES / 1024 < avail_kib * 3 / 4)) ||
        die "memstore of $((MEM_BYTES >> 20)) MiB would not fit in the $((avail_kib >> 10)) MiB of available RAM: lower BENCH_DB_SCALE / BENCH_REPEAT, or BENCH_S3_OBJECTSTORE=bluestore"
fi

# ---------------------------------------------------------------------------------------
# Packages and build.
"$root/scripts/deps.sh"
need_pkgs=()
command -v pgbackrest >/dev/null 2>&1 || need_pkgs+=(pgbackrest)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
    log "installing ${need_pkgs[*]} (for benchmarks only)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to compute the medians"
id postgres >/dev/null 2>&1 || die "no \"postgres\" user (is postgresql-15 installed?)"
for p in initdb pg_ctl pgbench psql pg_verifybackup; do
    [[ -x $PGBIN/$p ]] || die "no $p in $PGBIN"
done

scratch=
build=
own_build=0
s3dir=
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
    if [[ -n $s3dir && -d $s3dir ]]; then
        "$root/tests/s3/stop-s3.sh" "$s3dir" >/dev/null 2>&1 ||
            log "stop-s3.sh $s3dir failed: its daemons may still run"
    fi
    if [[ -n $scratch && -d $scratch ]]; then
        if [[ ${BENCH_KEEP:-} == 1 ]]; then
            log "kept the scratch folder $scratch (gateway stopped, data in $s3dir)"
        else
            rm -rf "$scratch"
        fi
    fi
    [[ $own_build == 1 && -n $build ]] && rm -rf "$build"
    [[ $status == 0 ]] || log "stopped with status $status (gateway and clusters stopped, scratch cleaned up)"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# walkeep's side may be missing or broken: WK=0 leaves it out from then on, and the reason
# goes into the report.
WK=1
WK_REASON=
wk_disable() { # REASON [LOGFILE]
    [[ $WK == 1 ]] || return 0
    WK=0
    WK_REASON=$1
    log "walkeep: $WK_REASON (the walkeep side is left out; pgBackRest is still measured)"
    if [[ -n ${2:-} && -s $2 ]]; then
        sed 's/^/    /' "$2" | tail -n 20 >&"$bench_stderr"
    fi
    rm -f "${scratch:-/nonexistent}/wk-enabled"
}

if [[ -n ${WALKEEP_BENCH_BUILD:-} ]]; then
    build=$WALKEEP_BENCH_BUILD
else
    build=$(mktemp -d "${TMPDIR:-/tmp}/walkeep-bench-build.XXXXXX")
    own_build=1
fi
log "building walkeep (Release) in $build"
mkdir -p "$build"
blog=$build/bench-build.log
if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWALKEEP_TESTS=OFF >"$blog" 2>&1; then
    wk_disable "cmake configure failed (see the lines below)" "$blog"
elif ! cmake --build "$build" -j2 >>"$blog" 2>&1; then
    grep -E 'error|undefined reference' "$blog" | head -n 20 >"$blog.errors" || true
    wk_disable "the build failed" "$blog.errors"
fi

# ---------------------------------------------------------------------------------------
# Scratch folder, owned by postgres, with the binaries copied in.
scratch=$(mktemp -d "$TMPROOT/walkeep-s3bench.XXXXXX")
chmod 755 "$scratch"
mkdir -p "$scratch/bin" "$scratch/runs" "$scratch/out" "$scratch/segs" "$scratch/pgbr"
if [[ $WK == 1 ]]; then
    for p in walkeep-archive walkeep-fetch walkeep walkeep-basebackup pitr-restore; do
        install -m 755 "$build/$p" "$scratch/bin/$p"
    done
    touch "$scratch/wk-enabled"
fi
: >"$scratch/empty.conf"
chown -R postgres: "$scratch"
runuser -u postgres -- test -r "$scratch/empty.conf" ||
    die "the postgres user cannot reach $scratch: every folder above it needs o+x"
cd "$scratch"

as_pg() {
    runuser -u postgres -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch" \
        LC_ALL=C TZ=UTC "$@"
}
c=$scratch/cluster
sock=$c/sock
psql_at() { # SQL
    as_pg "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$sock" -p "$PORT" -U postgres -d postgres -c "$1"
}

# Disk: the cluster (~15 MB per scale unit), its WAL, the segments, one restored copy.
per_unit=$((40 * 1024 * 1024))
avail=$(df -B1 --output=avail "$scratch" | tail -n 1 | tr -d ' ')
((avail > SCALE * per_unit + 2 * 1024 * 1024 * 1024)) ||
    die "only $((avail >> 20)) MiB free under $TMPROOT, about $(((SCALE * per_unit >> 20) + 2048)) MiB needed for scale $SCALE (set BENCH_TMPDIR)"

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

# ---------------------------------------------------------------------------------------
# The gateway: HTTPS with a private CA, two buckets.
s3dir=$scratch/s3
log "starting the Ceph gateway ($OBJECTSTORE$([[ $OBJECTSTORE == memstore ]] && echo ", $((MEM_BYTES >> 20)) MiB")), HTTPS on 127.0.0.1:$S3_TLS_PORT"
S3_TLS_PORT=$S3_TLS_PORT S3_OBJECTSTORE=$OBJECTSTORE S3_MEM_BYTES=$MEM_BYTES \
    "$root/tests/s3/start-s3.sh" "$s3dir" "$S3_PORT" "$AK" "$SK" "$WK_BUCKET" "$PGBR_BUCKET" \
    >"$scratch/runs/start-s3.out" 2>"$scratch/runs/start-s3.err" || {
    cat "$scratch/runs/start-s3.err" >&2
    s3dir= # start-s3.sh cleaned up after itself
    die "the gateway did not start"
}
log "$(grep 'ready in' "$scratch/runs/start-s3.err" | sed 's/^start-s3.sh: //')"
# shellcheck disable=SC1091
. "$s3dir/s3.env"
[[ -n ${S3_TLS_ENDPOINT:-} && -r ${S3_CA_FILE:-} ]] || die "start-s3.sh wrote no S3_TLS_ENDPOINT / S3_CA_FILE"
# The CA certificate where postgres can read it.
install -m 644 -o postgres -g postgres "$S3_CA_FILE" "$scratch/ca.crt"
CA=$scratch/ca.crt
rgw_pid=$(cat "$s3dir/run/client.rgw.s3.pid")
osd_pid=$(cat "$s3dir/run/osd.0.pid")

# A small S3 client for the report (object listings), SigV4 in Python's standard library.
cat >"$scratch/s3ls.py" <<'PY'
import datetime, hashlib, hmac, ssl, sys, urllib.parse, urllib.request, xml.etree.ElementTree as ET
endpoint, ca, region, ak, sk, bucket = sys.argv[1:7]
u = urllib.parse.urlsplit(endpoint)
ctx = ssl.create_default_context(cafile=ca)
q = lambda s: urllib.parse.quote(s, safe="-_.~")
def get(params):
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    query = "&".join("%s=%s" % (q(k), q(v)) for k, v in sorted(params.items()))
    empty = hashlib.sha256(b"").hexdigest()
    hdrs = "host:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n" % (u.netloc, empty, amz)
    signed = "host;x-amz-content-sha256;x-amz-date"
    creq = "\n".join(["GET", "/" + bucket, query, hdrs, signed, empty])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + sk).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request("%s/%s?%s" % (endpoint, bucket, query), headers={
        "x-amz-content-sha256": empty, "x-amz-date": amz,
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                         % (ak, scope, signed, sig)})
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        return ET.fromstring(r.read())
ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
params = {"list-type": "2", "max-keys": "1000"}
while True:
    root = get(params)
    for c in root.iter(ns + "Contents"):
        print("%s\t%s" % (c.find(ns + "Key").text, c.find(ns + "Size").text))
    tok = root.find(ns + "NextContinuationToken")
    if root.findtext(ns + "IsTruncated") != "true" or tok is None:
        break
    params["continuation-token"] = tok.text
PY
s3ls() { # BUCKET -> key TAB size, every object
    python3 "$scratch/s3ls.py" "$S3_TLS_ENDPOINT" "$CA" "$REGION" "$AK" "$SK" "$1"
}
s3ls "$WK_BUCKET" >/dev/null || die "listing the bucket $WK_BUCKET over HTTPS failed"

# ---------------------------------------------------------------------------------------
# Repositories. walkeep: one configuration file per repository, all in the walkeep bucket
# (a walkeep repository is encrypted or not, so the encrypted ones are separate). pgBackRest:
# one configuration file per repository, all in the pgBackRest bucket. seg-*: the
# per-segment figures; bk-*: backups (the cluster's archive_command feeds these).
if [[ $WK == 1 ]]; then
    as_pg "$scratch/bin/walkeep" --config="$scratch/empty.conf" keygen "$scratch/repo.key" \
        >"$scratch/runs/keygen.log" 2>&1 || wk_disable "walkeep keygen failed" "$scratch/runs/keygen.log"
fi
conninfo="host=$sock port=$PORT dbname=postgres user=postgres"
WK_REPOS=(seg-plain bk-plain)
PGBR_REPOS=(seg-plain bk-plain)
if [[ $ENCRYPT == 1 ]]; then
    WK_REPOS+=(seg-enc bk-enc)
    PGBR_REPOS+=(seg-enc)
fi
for r in "${WK_REPOS[@]}"; do
    {
        echo "# walkeep S3 bench ($r)"
        echo "repo = 's3://$WK_BUCKET/$r'"
        echo "compress = lz4"
        [[ $r == *-enc ]] && echo "encrypt_key_file = '$scratch/repo.key'"
        echo "s3_endpoint = '$S3_TLS_ENDPOINT'"
        echo "s3_region = '$REGION'"
        echo "s3_uri_style = path"
        echo "s3_access_key = '$AK'"
        echo "s3_secret_key = '$SK'"
        echo "s3_ca_file = '$CA'"
        [[ -n ${BENCH_S3_PART_SIZE:-} ]] && echo "s3_part_size = $BENCH_S3_PART_SIZE"
        [[ -n ${BENCH_S3_PARALLEL:-} ]] && echo "s3_parallel = $BENCH_S3_PARALLEL"
        echo "pg_conninfo = '$conninfo'"
        echo "pg_bindir = '$PGBIN'"
        echo "pgdata = '$c/data'" # walkeep-basebackup reads the data files ahead of the server
    } >"$scratch/wk-$r.conf"
    chmod 600 "$scratch/wk-$r.conf"
    chown postgres: "$scratch/wk-$r.conf"
done
for r in "${PGBR_REPOS[@]}"; do
    mkdir -p "$scratch/pgbr/$r"/{lock,spool,log}
    {
        echo "[global]"
        echo "repo1-type=s3"
        echo "repo1-path=/$r"
        echo "repo1-s3-bucket=$PGBR_BUCKET"
        echo "repo1-s3-endpoint=127.0.0.1"
        echo "repo1-storage-port=$S3_TLS_PORT"
        echo "repo1-s3-uri-style=path"
        echo "repo1-s3-region=$REGION"
        echo "repo1-s3-key=$AK"
        echo "repo1-s3-key-secret=$SK"
        echo "repo1-storage-ca-file=$CA"
        echo "repo1-storage-verify-tls=y"
        echo "repo1-retention-full=9999"
        if [[ $r == *-enc ]]; then
            echo "repo1-cipher-type=aes-256-cbc"
            echo "repo1-cipher-pass=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        fi
        echo "lock-path=$scratch/pgbr/$r/lock"
        echo "spool-path=$scratch/pgbr/$r/spool"
        echo "log-path=$scratch/pgbr/$r/log"
        echo "log-level-console=off"
        echo "log-level-stderr=warn"
        echo "log-level-file=off"
        echo "archive-async=n"
        echo "compress-type=lz4"
        echo "start-fast=y"
        echo
        echo "[bench]"
        echo "pg1-path=$c/data"
        echo "pg1-port=$PORT"
        echo "pg1-socket-path=$sock"
    } >"$scratch/pgbr-$r.conf"
    chmod 600 "$scratch/pgbr-$r.conf"
    chown -R postgres: "$scratch/pgbr/$r" "$scratch/pgbr-$r.conf"
done

# archive_command: one script whose behaviour a mode file selects. discard: pgbench -i's
# WAL (not needed); copy: into segs/ (the per-segment figures); s3: pgBackRest, then the
# walkeep repositories (the encrypted one last). A walkeep failure there is logged and
# turns walkeep off, so that pgBackRest's figures are still taken. (pgBackRest's backup
# refuses an archive_command that does not contain "pgbackrest": hence the name.)
cat >"$scratch/pgbackrest-walkeep-archive.sh" <<EOF
#!/bin/bash
# walkeep S3 bench: archive_command = '$scratch/pgbackrest-walkeep-archive.sh %p %f'
set -u
mode=\$(cat "$scratch/archive.mode")
case \$mode in
discard) exit 0 ;;
copy) exec cp "\$1" "$scratch/segs/\$2" ;;
s3)
    pgbackrest --config="$scratch/pgbr-bk-plain.conf" --stanza=bench archive-push "\$1" || exit 1
    if [ -f "$scratch/wk-enabled" ]; then
        for r in ${WK_REPOS[*]}; do
            case \$r in bk-*) ;; *) continue ;; esac
            if ! "$scratch/bin/walkeep-archive" --config "$scratch/wk-\$r.conf" "\$1" >>"$scratch/runs/wk-archive.log" 2>&1; then
                echo "walkeep-archive --config $scratch/wk-\$r.conf \$1 failed (\$(date -u +%T))" >>"$scratch/runs/wk-archive-failed.log"
                rm -f "$scratch/wk-enabled"
                break
            fi
        done
    fi
    exit 0 ;;
*) exit 1 ;;
esac
EOF
chmod 755 "$scratch/pgbackrest-walkeep-archive.sh"
echo discard >"$scratch/archive.mode"
chown postgres: "$scratch/pgbackrest-walkeep-archive.sh" "$scratch/archive.mode"
archive_mode() { echo "$1" >"$scratch/archive.mode"; }

log "cluster: initdb (PostgreSQL 15, 16 MiB segments), walkeep init and pgBackRest stanza-create"
mkdir -p "$c" "$sock"
chown -R postgres: "$c"
as_pg "$PGBIN/initdb" -D "$c/data" --auth=trust -U postgres -N --locale=C -E UTF8 \
    >"$c/initdb.log" 2>&1 || { tail -n 20 "$c/initdb.log" >&2; die "initdb failed"; }
cat >>"$c/data/postgresql.conf" <<EOF
# walkeep S3 bench
listen_addresses = ''
port = $PORT
unix_socket_directories = '$sock'
archive_mode = on
archive_command = '$scratch/pgbackrest-walkeep-archive.sh %p %f'
autovacuum = off                # no background work between timed runs
checkpoint_timeout = 1h         # checkpoints only when a backup asks for one
max_wal_size = 4GB
log_line_prefix = '%m [%p] '
EOF
cluster_start() {
    as_pg "$PGBIN/pg_ctl" -D "$c/data" -l "$c/server.log" -w -t 120 start >/dev/null ||
        { tail -n 20 "$c/server.log" >&2; die "PostgreSQL did not start"; }
}
cluster_stop() {
    as_pg "$PGBIN/pg_ctl" -D "$c/data" -m fast -w -t 300 stop >/dev/null ||
        { tail -n 20 "$c/server.log" >&2; die "PostgreSQL did not stop"; }
}
clusters+=("$c/data")
cluster_start

if [[ $WK == 1 ]]; then
    for r in "${WK_REPOS[@]}"; do
        if ! as_pg "$scratch/bin/walkeep" --config "$scratch/wk-$r.conf" --pgdata="$c/data" init \
            </dev/null >"$scratch/runs/wk-init-$r.log" 2>&1; then
            wk_disable "walkeep init of s3://$WK_BUCKET/$r failed" "$scratch/runs/wk-init-$r.log"
            break
        fi
    done
fi
for r in "${PGBR_REPOS[@]}"; do
    as_pg pgbackrest --config="$scratch/pgbr-$r.conf" --stanza=bench stanza-create \
        </dev/null >"$scratch/runs/stanza-create-$r.log" 2>&1 ||
        { cat "$scratch/runs/stanza-create-$r.log" >&2; die "pgbackrest stanza-create ($r) failed"; }
done

t0=$EPOCHREALTIME
log "pgbench -i -s $SCALE (its WAL is not archived)"
as_pg "$PGBIN/pgbench" -h "$sock" -p "$PORT" -U postgres -i -q -s "$SCALE" postgres \
    >"$c/pgbench-init.log" 2>&1 || { tail -n 20 "$c/pgbench-init.log" >&2; die "pgbench -i failed"; }
psql_at "CHECKPOINT" >/dev/null
log "pgbench -i -s $SCALE took $(python3 -c "print('%.0f' % ($EPOCHREALTIME - $t0))") s"

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
wait_archiver_idle 600

# ---------------------------------------------------------------------------------------
# 16 MiB segments: after a checkpoint, pgbench updates until enough segments are copied
# (full-page images, then steady update records, as a busy server's).
need=$((N + 1)) # one warm-up, N timed
archive_mode copy
first=$(psql_at "SELECT pg_walfile_name(pg_current_wal_lsn())")
count_after() {
    local n=0 f
    for f in "$scratch"/segs/*; do
        f=${f##*/}
        [[ $f =~ ^[0-9A-F]{24}$ && $f > $first ]] && n=$((n + 1))
    done
    echo "$n"
}
rounds=0
log "making WAL: pgbench updates until $need segments are archived"
while (($(count_after) < need)); do
    ((rounds < 60)) || die "pgbench made too little WAL ($(count_after) of $need segments)"
    as_pg "$PGBIN/pgbench" -h "$sock" -p "$PORT" -U postgres -n -c 2 -j 2 -T 10 postgres \
        >>"$c/pgbench-run.log" 2>&1 || { tail -n 20 "$c/pgbench-run.log" >&2; die "pgbench failed"; }
    rounds=$((rounds + 1))
done
# From here the WAL goes to the backup repositories.
archive_mode s3
psql_at "SELECT pg_switch_wal()" >/dev/null
log "waiting for the archiver (pgBackRest$([[ $WK == 1 ]] && echo " and walkeep") over S3)"
wait_archiver_idle 1200
cluster_stop # quiet machine for the per-segment figures
segs=()
for f in "$scratch"/segs/*; do
    n=${f##*/}
    [[ $n =~ ^[0-9A-F]{24}$ && $n > $first ]] || continue
    [[ $(stat -c %s "$f") == $((16 * 1024 * 1024)) ]] || die "$f is not 16 MiB"
    segs+=("$f")
    ((${#segs[@]} == need)) && break
done
((${#segs[@]} == need)) || die "only ${#segs[@]} segments, $need needed"
chown -R postgres: "$scratch/segs"
sync
if [[ -s $scratch/runs/wk-archive-failed.log ]]; then
    wk_disable "walkeep-archive failed in archive_command" "$scratch/runs/wk-archive-failed.log"
fi

# The per-segment helper runs as postgres and times each whole command with
# $EPOCHREALTIME (no extra process), CPU from `times`. A walkeep failure is recorded,
# and walkeep is skipped from then on; a pgBackRest failure stops the run.
cat >"$scratch/measure.sh" <<'HELPER'
#!/usr/bin/env bash
# measure.sh MODE OUT SEGMENT... (runs as postgres; see bench/s3.sh)
set -uo pipefail
mode=$1 out=$2
shift 2
segs=("$@")
s=$BENCH_SCRATCH
mapfile -t configs <"$s/seg-configs"
errlog=$s/runs/measure-errors.log
dest=$s/out/RECOVERYXLOG
tmo=()
((BENCH_WK_TIMEOUT > 0)) && tmo=(timeout "$BENCH_WK_TIMEOUT")
fail() { echo "measure: error: $*" >&2; tail -n 5 "$errlog" >&2; exit 1; }
cmd() { # PHASE CONFIG SEGMENT -> CMD
    local name tool repo seg=$3
    read -r name tool repo <<<"$2"
    if [[ $tool == walkeep ]]; then
        if [[ $1 == push ]]; then
            CMD=("${tmo[@]}" "$s/bin/walkeep-archive" --config "$s/wk-$repo.conf" "$seg")
        else
            CMD=("${tmo[@]}" "$s/bin/walkeep-fetch" --config "$s/wk-$repo.conf" "${seg##*/}" "$dest")
        fi
    else
        if [[ $1 == push ]]; then
            CMD=(pgbackrest --config="$s/pgbr-$repo.conf" --stanza=bench archive-push "$seg")
        else
            CMD=(pgbackrest --config="$s/pgbr-$repo.conf" --stanza=bench archive-get "${seg##*/}" "$dest")
        fi
    fi
}
k=${#configs[@]}
tfile=$s/runs/times.tmp
phases=(push fetch)
[[ $mode == warmup ]] && phases=(push)
for phase in "${phases[@]}"; do
    for i in "${!segs[@]}"; do
        seg=${segs[$i]}
        for ((j = 0; j < k; j++)); do
            c=${configs[$(((i + j) % k))]}
            cfg=${c%% *}
            [[ $c == *" walkeep "* && ! -f $s/wk-enabled ]] && continue
            rm -f "$dest"
            cmd "$phase" "$c" "$seg"
            times >"$tfile"
            t0=$EPOCHREALTIME
            "${CMD[@]}" >"$s/runs/last.log" 2>&1
            rc=$?
            t1=$EPOCHREALTIME
            times >>"$tfile"
            cat "$s/runs/last.log" >>"$errlog"
            if [[ $rc != 0 ]] || { [[ $phase == fetch ]] && ! cmp -s "$dest" "$seg"; }; then
                what="exited $rc"
                [[ $rc == 0 ]] && what="exited 0 but the fetched file differs from the original"
                [[ $rc == 124 ]] && what="timed out after ${BENCH_WK_TIMEOUT}s"
                if [[ $c == *" walkeep "* ]]; then
                    { echo "$phase ($cfg) $what: ${CMD[*]}"; cat "$s/runs/last.log"; } >>"$s/runs/wk-measure-failed.log"
                    rm -f "$s/wk-enabled"
                    continue
                fi
                fail "$phase ($cfg) $what: ${CMD[*]}"
            fi
            [[ $mode == warmup ]] && continue
            mapfile -t tl <"$tfile"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$cfg" "${seg##*/}" "$t0" "$t1" \
                "${tl[1]}" "${tl[3]}" >>"$out"
        done
    done
done
rm -f "$dest"
HELPER
chmod 755 "$scratch/measure.sh"
{
    echo "wk-lz4 walkeep seg-plain"
    [[ $ENCRYPT == 1 ]] && echo "wk-lz4-enc walkeep seg-enc"
    echo "pgbr-lz4 pgbackrest seg-plain"
    [[ $ENCRYPT == 1 ]] && echo "pgbr-lz4-enc pgbackrest seg-enc"
} >"$scratch/seg-configs"
chown postgres: "$scratch/measure.sh" "$scratch/seg-configs"
measure() { # MODE OUT SEGMENT...
    local mode=$1 out=$2
    shift 2
    : >"$out"
    chown postgres: "$out"
    runuser -u postgres -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch" LC_ALL=C \
        TZ=UTC BENCH_SCRATCH="$scratch" BENCH_WK_TIMEOUT="$WK_TIMEOUT" \
        "$scratch/measure.sh" "$mode" "$out" "$@"
}
log "warm-up: one segment into every repository"
measure warmup "$scratch/warmup.tsv" "${segs[0]}" || die "the warm-up failed"
log "timing: $(wc -l <"$scratch/seg-configs") configurations x $N segments over S3, push then fetch, interleaved"
measure timed "$scratch/timed.tsv" "${segs[@]:1:N}" || die "the per-segment timing failed"
if [[ -s $scratch/runs/wk-measure-failed.log ]]; then
    wk_disable "a walkeep push or fetch failed" "$scratch/runs/wk-measure-failed.log"
fi
printf '%s\n' "${segs[@]:1:N}" | sed 's|.*/||' >"$scratch/timed-segs.txt"

# ---------------------------------------------------------------------------------------
# Backups and restores. Each timed run is one whole command as postgres under
# /usr/bin/time; the gateway's CPU (radosgw + OSD, from /proc) is read around it.
cluster_start
db_bytes=$(psql_at "SELECT pg_database_size('postgres')")
db_pretty=$(psql_at "SELECT pg_size_pretty(pg_database_size('postgres'))")
data_bytes=$(du -sb --exclude=pg_wal "$c/data" | cut -f1)
log "database size: $db_pretty; data directory without pg_wal: $((data_bytes >> 20)) MiB"

results=$scratch/results.tsv
sizes=$scratch/sizes.tsv
: >"$results"
: >"$sizes"
cpu_ticks() {
    local _c u n s i w irq sirq st _rest
    read -r _c u n s i w irq sirq st _rest </proc/stat
    echo "$((u + n + s + irq + sirq + st)) $i $w"
}
gw_ticks() { # utime + stime of radosgw and the OSD
    local t=0 p f
    for p in "$rgw_pid" "$osd_pid"; do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        # shellcheck disable=SC2086 # the fields after the command name, split on purpose
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}
timed() { # KIND CONFIG REP CMD... -> 0, or 1 for a failed walkeep command (recorded)
    local kind=$1 cfg=$2 rep=$3
    shift 3
    local tag=$kind-$cfg-r$rep
    local out=$scratch/runs/$tag.log tf=$scratch/runs/$tag.time
    local c0 c1 g0 g1 t0 t1 rc=0 user sys rss pre=()
    : >"$tf"
    chown postgres: "$tf"
    [[ $cfg == wk-* ]] && ((WK_TIMEOUT > 0)) && pre=(timeout "$WK_TIMEOUT")
    wait_archiver_idle 600
    drop_caches
    c0=$(cpu_ticks)
    g0=$(gw_ticks)
    t0=$EPOCHREALTIME
    as_pg /usr/bin/time -f '%e %U %S %M' -o "$tf" "${pre[@]}" "$@" >"$out" 2>&1 </dev/null || rc=$?
    t1=$EPOCHREALTIME
    g1=$(gw_ticks)
    c1=$(cpu_ticks)
    if [[ $rc != 0 ]]; then
        log "$kind $cfg (run $rep) exited with status $rc$([[ $rc == 124 ]] && echo " (timed out)")"
        log "command: $*"
        if [[ $cfg == wk-* ]]; then
            { echo "$kind $cfg run $rep, exit $rc: $*"; cat "$out"; } >"$out.failed"
            wk_disable "$kind $cfg failed" "$out.failed"
            return 1
        fi
        sed 's/^/    /' "$out" >&2
        die "$kind $cfg failed"
    fi
    read -r _ user sys rss < <(tail -n 1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$cfg" "$rep" \
        "$(python3 -c "print('%.3f' % ($t1 - $t0))")" "$user" "$sys" "$rss" "$c0" "$c1" \
        "$((g1 - g0))" >>"$results"
    log "$(printf '%-7s %-10s run %s: %6.1f s  (CPU %s+%s s, gateway CPU %.1f s, peak RSS %s MiB)' \
        "$kind" "$cfg" "$rep" "$(python3 -c "print($t1 - $t0)")" "$user" "$sys" \
        "$(python3 -c "print(($g1 - $g0) / $(getconf CLK_TCK))")" "$((rss / 1024))")"
}

BACKUPS=(wk-lz4 pgbr-pm1 pgbr-pm2)
[[ $ENCRYPT == 1 ]] && BACKUPS=(wk-lz4 wk-lz4-enc pgbr-pm1 pgbr-pm2)
printf '%s\n' "${BACKUPS[@]}" >"$scratch/backup-configs"
wk_conf_of() { [[ $1 == wk-lz4-enc ]] && echo "$scratch/wk-bk-enc.conf" || echo "$scratch/wk-bk-plain.conf"; }
pgbr_info_sets() { # -> label TAB repository size, oldest first
    as_pg pgbackrest --config="$scratch/pgbr-bk-plain.conf" --stanza=bench --output=json info |
        python3 -c 'import json, sys
for st in json.load(sys.stdin):
    for b in st.get("backup", []):
        print("%s\t%s" % (b["label"], b["info"]["repository"]["size"]))'
}

run_backup() { # CONFIG REP
    local cfg=$1 rep=$2 before after label
    case $cfg in
    wk-*)
        [[ $WK == 1 ]] || return 0
        label=$cfg-r$rep
        timed backup "$cfg" "$rep" "$scratch/bin/walkeep-basebackup" --config "$(wk_conf_of "$cfg")" \
            --label="$label" || return 0
        if ! grep -qx "$label" "$scratch/runs/backup-$cfg-r$rep.log"; then
            wk_disable "walkeep-basebackup did not print the label $label" "$scratch/runs/backup-$cfg-r$rep.log"
            return 0
        fi
        echo "$label" >"$scratch/runs/label-$cfg-r$rep"
        ;;
    pgbr-pm*)
        before=$(pgbr_info_sets | cut -f1)
        timed backup "$cfg" "$rep" pgbackrest --config="$scratch/pgbr-bk-plain.conf" --stanza=bench \
            --type=full --process-max="${cfg#pgbr-pm}" backup
        after=$(pgbr_info_sets | cut -f1)
        label=$(comm -13 <(echo "$before") <(echo "$after") | tail -n 1)
        [[ -n $label ]] || die "pgbackrest backup exited 0 but made no new backup set"
        echo "$label" >"$scratch/runs/label-$cfg-r$rep"
        printf 'backup\t%s\t%s\t%s\n' "$cfg" "$rep" \
            "$(pgbr_info_sets | awk -F'\t' -v l="$label" '$1 == l { print $2 }')" >>"$sizes"
        ;;
    esac
}

run_restore() { # CONFIG REP
    local cfg=$1 rep=$2 dir=$scratch/out/restore label
    [[ $cfg == wk-* && $WK == 0 ]] && return 0
    label=$(cat "$scratch/runs/label-$cfg-r$rep" 2>/dev/null) || return 0
    rm -rf "$dir"
    install -d -m 700 -o postgres -g postgres "$dir"
    case $cfg in
    wk-*)
        timed restore "$cfg" "$rep" "$scratch/bin/pitr-restore" --config "$(wk_conf_of "$cfg")" \
            --pgdata "$dir" --target-immediate --backup="$label" || { rm -rf "$dir"; return 0; }
        if ! as_pg "$PGBIN/pg_verifybackup" -n -q "$dir" >"$scratch/runs/verify-$cfg-r$rep.log" 2>&1; then
            wk_disable "pg_verifybackup failed on what pitr-restore ($cfg) laid down" "$scratch/runs/verify-$cfg-r$rep.log"
            rm -rf "$dir"
            return 0
        fi
        ;;
    pgbr-pm*)
        timed restore "$cfg" "$rep" pgbackrest --config="$scratch/pgbr-bk-plain.conf" --stanza=bench \
            --pg1-path="$dir" --set="$label" --type=immediate --process-max="${cfg#pgbr-pm}" restore
        [[ -f $dir/PG_VERSION && -f $dir/backup_label ]] ||
            die "pgbackrest restore ($cfg) laid down no PG_VERSION/backup_label"
        ;;
    esac
    printf 'restore\t%s\t%s\t%s\n' "$cfg" "$rep" "$(du -sb "$dir" | cut -f1)" >>"$sizes"
    if [[ $cfg == wk-* && $rep == "$REPEAT" && ! -f $scratch/restored-check.txt ]]; then
        check_restored "$dir" "$cfg"
    fi
    rm -rf "$dir"
}

# Once, untimed: a cluster restored by pitr-restore starts, replays to the end of the
# backup through walkeep-fetch (over S3), promotes and holds every pgbench row.
check_restored() { # DIR CONFIG
    local dir=$1 rsock=$scratch/out/rsock rport=$((PORT + 1)) n w
    install -d -m 755 -o postgres -g postgres "$rsock"
    cat >>"$dir/postgresql.conf" <<EOF
# walkeep S3 bench: the restored copy
port = $rport
unix_socket_directories = '$rsock'
archive_mode = off
EOF
    clusters+=("$dir")
    if ! as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$scratch/runs/restored-server.log" -w -t 300 start >/dev/null; then
        wk_disable "the cluster restored by pitr-restore ($2) did not start" "$scratch/runs/restored-server.log"
        return 0
    fi
    for ((w = 0; w < 300; w++)); do
        [[ $(as_pg "$PGBIN/psql" -XAtq -h "$rsock" -p "$rport" -U postgres -d postgres \
            -c "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]] && break
        sleep 1
    done
    n=$(as_pg "$PGBIN/psql" -XAtq -h "$rsock" -p "$rport" -U postgres -d postgres \
        -c "SELECT count(*) FROM pgbench_accounts" 2>&1) || n="error: $n"
    as_pg "$PGBIN/pg_ctl" -D "$dir" -m fast -w -t 120 stop >/dev/null 2>&1 || true
    if [[ $n != $((SCALE * 100000)) ]]; then
        wk_disable "the cluster restored by pitr-restore ($2) has \"$n\" pgbench_accounts rows, not $((SCALE * 100000))" "$scratch/runs/restored-server.log"
        return 0
    fi
    log "check: the cluster pitr-restore ($2) laid down recovered, promoted and has all $n pgbench_accounts rows"
    echo "$2 $n" >"$scratch/restored-check.txt"
}

k=${#BACKUPS[@]}
log "timing: ${#BACKUPS[@]} backup configurations x $REPEAT, interleaved$([[ $DROP == 1 ]] && echo ", page cache dropped before each")"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for ((j = 0; j < k; j++)); do
        run_backup "${BACKUPS[$(((rep - 1 + j) % k))]}" "$rep"
    done
done
if [[ -s $scratch/runs/wk-archive-failed.log ]]; then
    wk_disable "walkeep-archive failed in archive_command" "$scratch/runs/wk-archive-failed.log"
fi
log "timing: ${#BACKUPS[@]} restore configurations x $REPEAT, interleaved"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for ((j = 0; j < k; j++)); do
        run_restore "${BACKUPS[$(((rep - 1 + j) % k))]}" "$rep"
    done
done
cluster_stop

# Stored sizes: every object of both buckets.
s3ls "$WK_BUCKET" >"$scratch/objects-walkeep.tsv"
s3ls "$PGBR_BUCKET" >"$scratch/objects-pgbackrest.tsv"

# ---------------------------------------------------------------------------------------
# Report.
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
[[ -n $(git -C "$root" status --porcelain -- lib basebackup pitr archive_cmd restore_cmd admin CMakeLists.txt 2>/dev/null) ]] &&
    commit="$commit+local changes"
# "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" (what an OpenSSL client negotiates).
tls=$(timeout 10 openssl s_client -connect "127.0.0.1:$S3_TLS_PORT" -CAfile "$CA" </dev/null 2>/dev/null |
    sed -n 's/^New, \([^,]*\), Cipher is \(.*\)$/\1, \2/p' | head -n 1) || true
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Debian $(cat /etc/debian_version), Linux $(uname -r)"
    echo "scratch filesystem: $(df -T "$scratch" | awk 'NR == 2 { print $2 " on " $1 }')"
    if [[ -x $scratch/bin/walkeep ]]; then
        echo "walkeep: $("$scratch/bin/walkeep" --version 2>/dev/null | awk '{ print $NF }') ($commit), Release build, $(cc --version | head -n 1)"
    else
        echo "walkeep: ($commit) not built: $WK_REASON"
    fi
    echo "pgBackRest: $(pgbackrest version | awk '{ print $2 }'); PostgreSQL: $("$PGBIN/postgres" --version | awk '{ print $3 }')"
    echo "libraries: liblz4 $(pkgver liblz4-1), libsodium $(pkgver libsodium23), libcurl $(pkgver libcurl4), OpenSSL $(pkgver libssl3)"
    echo "S3: Ceph RGW $(pkgver radosgw) (beast), $OBJECTSTORE$([[ $OBJECTSTORE == memstore ]] && echo " ($((MEM_BYTES >> 20)) MiB)"), one OSD, on this machine; both tools over HTTPS to $S3_TLS_ENDPOINT ($tls), certificate checked against a private CA (walkeep s3_ca_file, pgBackRest repo1-storage-ca-file), path-style addressing"
    echo "walkeep S3 settings: s3_part_size ${BENCH_S3_PART_SIZE:-default (8MB)}, s3_parallel ${BENCH_S3_PARALLEL:-default (4)}; pgBackRest: repo1-storage-upload-chunk-size default"
    echo "segments: $N x 16 MiB from pgbench updates (-c 2, after a checkpoint), each pushed once into a fresh repository per configuration, then fetched back"
    echo "database: pgbench -i -s $SCALE, pg_database_size $db_pretty ($db_bytes bytes); data directory without pg_wal $((data_bytes / 1024 / 1024)) MiB"
    echo "page cache: $([[ $DROP == 1 ]] && echo "synced and dropped before every timed backup and restore" || echo "not dropped")"
    echo "runs: $REPEAT per backup / restore configuration, interleaved"
    [[ -f $scratch/restored-check.txt ]] &&
        echo "check: a restored walkeep cluster ($(cut -d' ' -f1 "$scratch/restored-check.txt")) recovered through walkeep-fetch, promoted and had all $(cut -d' ' -f2 "$scratch/restored-check.txt") pgbench_accounts rows; every walkeep restore passed pg_verifybackup"
    [[ $WK == 0 ]] && echo "walkeep: $WK_REASON: the walkeep figures are missing or incomplete"
} >"$scratch/env.txt"

table=$scratch/table.txt
python3 - "$scratch" "$data_bytes" "$(nproc)" "$(getconf CLK_TCK)" "$WK_BUCKET" "$PGBR_BUCKET" \
    "$WK" "$WK_REASON" >"$table" <<'PY'
import os, statistics, sys
from collections import defaultdict

scratch, data_bytes, ncpu, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wk_bucket, pgbr_bucket, wk_on, wk_reason = sys.argv[5], sys.argv[6], sys.argv[7] == "1", sys.argv[8]
MiB = 1024 * 1024

def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]
def med(v): return statistics.median(v)
def quart(v):
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], q[2]
def cpu_s(t):
    total = 0.0
    for part in t.split():
        m, sec = part.rstrip("s").split("m")
        total += int(m) * 60 + float(sec)
    return total
def table(out):
    widths = [max(len(r[i]) for r in out) for i in range(len(out[0]))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(out[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in out[1:]:
        print(line(r))
pending = "pending (%s)" % (wk_reason or "no figures")

print(open(os.path.join(scratch, "env.txt")).read().rstrip())
print()

# --- per segment
configs = [l.split() for l in open(os.path.join(scratch, "seg-configs"))]
segnames = [l.strip() for l in open(os.path.join(scratch, "timed-segs.txt"))]
times, cpu = defaultdict(list), defaultdict(list)
for phase, cfg, seg, t0, t1, c0, c1 in rows(os.path.join(scratch, "timed.tsv")):
    times[phase, cfg].append((float(t1) - float(t0)) * 1000)
    cpu[phase, cfg].append((cpu_s(c1) - cpu_s(c0)) * 1000)
objs = {"walkeep": rows(os.path.join(scratch, "objects-walkeep.tsv")),
        "pgbackrest": rows(os.path.join(scratch, "objects-pgbackrest.tsv"))}
def stored_seg(tool, repo):
    pre = ("%s/" % repo) if tool == "walkeep" else ("%s/archive/" % repo)
    sizes = [int(s) for k, s in objs[tool] if k.startswith(pre) and k.rsplit("/", 1)[-1][:24] in segnames]
    return sum(sizes) / len(sizes) if sizes else None
n = len(segnames)
print("Per 16 MiB segment over S3 (HTTPS), whole process; median over %d segments, (p25-p75)." % n)
print("ratio = walkeep / pgBackRest with the same compression (lz4) and encryption.")
print("CPU = user + sys of the process (1 ms resolution); the rest is mostly waiting for the gateway.")
print()
out = [["configuration", "push ms", "fetch ms", "push ratio", "fetch ratio", "CPU ms push / fetch",
        "stored bytes/seg"]]
for name, tool, repo in configs:
    label = "%s lz4%s" % ("walkeep" if tool == "walkeep" else "pgBackRest",
                          " + encryption" if repo.endswith("-enc") else "")
    p, f = times["push", name], times["fetch", name]
    if len(p) != n or len(f) != n:
        if tool == "walkeep":
            out.append([label, pending, "", "", "", "", ""])
            continue
        sys.exit("missing timings for %s" % name)
    pr = fr = "-"
    if tool == "walkeep":
        ref = name.replace("wk-", "pgbr-")
        if len(times["push", ref]) == n:
            pr = "%.2f" % (med(p) / med(times["push", ref]))
            fr = "%.2f" % (med(f) / med(times["fetch", ref]))
    st = stored_seg(tool, repo)
    out.append([label, "%.1f (%.1f-%.1f)" % ((med(p),) + quart(p)),
                "%.1f (%.1f-%.1f)" % ((med(f),) + quart(f)), pr, fr,
                "%.0f / %.0f" % (med(cpu["push", name]), med(cpu["fetch", name])),
                "%d (%.3f)" % (st, st / (16 * MiB)) if st else "?"])
table(out)

# --- backups and restores
runs = defaultdict(list)
for kind, cfg, rep, wall, user, sys_, rss, c0, c1, gw in rows(os.path.join(scratch, "results.tsv")):
    b0, i0, w0 = map(int, c0.split())
    b1, i1, w1 = map(int, c1.split())
    total = (b1 - b0) + (i1 - i0) + (w1 - w0)
    runs[kind, cfg].append(dict(wall=float(wall), cpu=float(user) + float(sys_), rss=int(rss),
                                busy=100.0 * (b1 - b0) / total if total else 0.0,
                                gw=int(gw) / hz))
size = defaultdict(list)
for kind, cfg, rep, b in rows(os.path.join(scratch, "sizes.tsv")):
    size[kind, cfg].append(int(b))
for rep in range(1, 100):
    for cfg in ("wk-lz4", "wk-lz4-enc"):
        p = os.path.join(scratch, "runs", "label-%s-r%d" % (cfg, rep))
        if os.path.exists(p):
            label = open(p).read().strip()
            repo = "bk-enc" if cfg == "wk-lz4-enc" else "bk-plain"
            b = sum(int(s) for k, s in objs["walkeep"] if k.startswith("%s/backups/%s/" % (repo, label)))
            size["backup", cfg].append(b)

def wall(kind, cfg): return med([r["wall"] for r in runs[kind, cfg]])
names = {"wk-lz4": "walkeep lz4", "wk-lz4-enc": "walkeep lz4 + encryption",
         "pgbr-pm1": "pgBackRest lz4, process-max 1", "pgbr-pm2": "pgBackRest lz4, process-max 2"}
order = open(os.path.join(scratch, "backup-configs")).read().split()
print()
print("Backups and restores over S3 (HTTPS), whole command, wall seconds: median (min-max). MiB/s")
print("and the stored ratio are per MiB of the data directory (without pg_wal): %.0f MiB." % (data_bytes / MiB))
print("CPU = user + sys of the command and the children it waited for. gateway CPU = radosgw + OSD")
print("(same machine). machine = all %d CPUs busy over the run." % ncpu)
for kind in ("backup", "restore"):
    print()
    print("Backups (walkeep-basebackup / pgbackrest backup --type=full):" if kind == "backup" else
          "Restores (pitr-restore --target-immediate / pgbackrest restore --type=immediate), into a new empty folder:")
    print()
    p1 = wall(kind, "pgbr-pm1") if runs[kind, "pgbr-pm1"] else None
    p2 = wall(kind, "pgbr-pm2") if runs[kind, "pgbr-pm2"] else None
    out = [["configuration", "seconds", "vs pgBackRest pm1", "vs pgBackRest pm2", "MiB/s", "CPU s",
            "gateway CPU s", "machine busy", "peak RSS MiB",
            "stored MiB (ratio)" if kind == "backup" else "laid down MiB"]]
    for cfg in order:
        r = runs[kind, cfg]
        if not r:
            out.append([names[cfg], pending] + [""] * 8)
            continue
        w = [x["wall"] for x in r]
        m = med(w)
        if kind == "backup":
            s = med(size[kind, cfg]) if size[kind, cfg] else 0
            st = "%.0f (%.3f)" % (s / MiB, s / data_bytes)
        else:
            st = "%.0f" % (med(size[kind, cfg]) / MiB)
        out.append([names[cfg], "%.1f (%.1f-%.1f)" % (m, min(w), max(w)),
                    "%.2f" % (m / p1) if p1 else "-", "%.2f" % (m / p2) if p2 else "-",
                    "%.0f" % (data_bytes / MiB / m), "%.1f" % med([x["cpu"] for x in r]),
                    "%.1f" % med([x["gw"] for x in r]), "%.0f%%" % med([x["busy"] for x in r]),
                    "%.1f" % (max(x["rss"] for x in r) / 1024), st])
    table(out)

print()
print("Targets:")
missed = 0
def target(ok, text):
    global missed
    if ok is None:
        print("  %-7s %s" % ("PENDING", text))
        return
    missed += not ok
    print("  %-7s %s" % ("MET" if ok else "MISSED", text))
for w, b, what in (("wk-lz4", "pgbr-lz4", "lz4"), ("wk-lz4-enc", "pgbr-lz4-enc", "lz4 + encryption")):
    if not times["push", b]:
        continue
    for phase, prog in (("push", "walkeep-archive"), ("fetch", "walkeep-fetch")):
        if len(times[phase, w]) != n:
            target(None, "%s %s per segment: walkeep %s" % (prog, what, pending))
            continue
        r = med(times[phase, w]) / med(times[phase, b])
        target(r <= 1.0, "%s %s per segment: %.1f ms vs pgBackRest %.1f ms, ratio %.2f (target <= 1)"
               % (prog, what, med(times[phase, w]), med(times[phase, b]), r))
for kind, prog in (("backup", "walkeep-basebackup"), ("restore", "pitr-restore")):
    for ref in ("pgbr-pm1", "pgbr-pm2"):
        if not runs[kind, "wk-lz4"]:
            target(None, "%s lz4 vs pgBackRest %s: walkeep %s" % (prog, ref[5:], pending))
            continue
        w, p = wall(kind, "wk-lz4"), wall(kind, ref)
        target(w <= p, "%s lz4: %.1f s vs pgBackRest process-max %s %.1f s, ratio %.2f (target <= 1)"
               % (prog, w, ref[-1], p, w / p))
if data_bytes >= 2 * 1024 * MiB:
    if runs["backup", "wk-lz4"]:
        w, p = wall("backup", "wk-lz4"), wall("backup", "pgbr-pm1")
        target(w <= 0.5 * p, "multi-gigabyte backup (%.1f GiB): walkeep-basebackup lz4 %.1f s vs pgBackRest "
               "(default process-max 1) %.1f s, ratio %.2f (target <= 0.5)" % (data_bytes / 1024 / MiB, w, p, w / p))
    else:
        target(None, "multi-gigabyte backup at least 2x faster: walkeep %s" % pending)
else:
    print("  n/a     multi-gigabyte backup at least 2x faster: the data directory is %.0f MiB; "
          "run with BENCH_DB_SCALE=200 (about 3 GiB)" % (data_bytes / MiB))
print("MISSED=%d" % missed)
PY
grep -v '^MISSED=' "$table"
missed=$(sed -n 's/^MISSED=//p' "$table")
if [[ -n ${BENCH_RESULTS:-} ]]; then
    mkdir -p "$BENCH_RESULTS"
    grep -v '^MISSED=' "$table" >"$BENCH_RESULTS/table.txt"
    cp "$scratch/timed.tsv" "$results" "$sizes" "$scratch/env.txt" "$scratch/objects-walkeep.tsv" \
        "$scratch/objects-pgbackrest.tsv" "$BENCH_RESULTS/"
    cp "$scratch"/runs/*failed* "$BENCH_RESULTS/" 2>/dev/null || true
    log "raw figures in $BENCH_RESULTS"
fi
if [[ ${BENCH_STRICT:-} == 1 && $missed != 0 ]]; then
    log "$missed target(s) missed"
    exit 3
fi
exit 0
