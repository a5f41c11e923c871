#!/usr/bin/env bash
# demo.sh: walkeep from archive to point-in-time restore, on a scratch cluster.
#
# Installs what is missing (scripts/deps.sh), builds walkeep into build-demo/, then, in a
# scratch folder: starts a PostgreSQL 15 cluster as postgres (own port and socket
# folder, no TCP) that archives its WAL through walkeep-archive into an encrypted
# repository, takes a base backup with walkeep-basebackup, writes some precious rows,
# notes the time, drops them by accident, restores with pitr-restore to the noted time
# into a new data directory, starts it and shows the rows are back.
#
# Run as root on Debian 12. Exits 0 only if the rows came back. Everything it starts
# is stopped, and the scratch folder removed, at exit (also on failure); build-demo/
# stays for the next run. Set WALKEEP_DEMO_KEEP=1 to keep the scratch folder.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pg_user=postgres
pgbin=/usr/lib/postgresql/15/bin

say() { printf '==> %s\n' "$*"; }
die() {
    printf 'demo.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run me as root (I install packages and run PostgreSQL as $pg_user)"

say "Installing missing dependencies (scripts/deps.sh)"
"$src/scripts/deps.sh"
[[ -x $pgbin/postgres ]] || die "PostgreSQL 15 is not in $pgbin"
id "$pg_user" >/dev/null 2>&1 || die "user $pg_user does not exist"

# ---------------------------------------------------------------------------
# scratch folder and clean-up

demo=$(mktemp -d /tmp/walkeep-demo.XXXXXX)
chmod 0755 "$demo"
chown "$pg_user:" "$demo"
clusters=() # data dirs to stop at exit

as_pg() { # runs a command as postgres, from the scratch folder, without PG* settings
    (cd "$demo" && runuser -u "$pg_user" -- env -u PGHOST -u PGPORT -u PGDATABASE \
        -u PGUSER -u PGDATA -u PGSERVICE -u PGOPTIONS "$@")
}

cleanup() {
    local status=$? d
    set +e
    trap - EXIT INT TERM HUP
    if ((status != 0)); then
        for d in "${clusters[@]}"; do
            [[ -f $d.log ]] || continue
            printf -- '---- last lines of %s ----\n' "$d.log" >&2
            tail -n 20 "$d.log" >&2
        done
    fi
    say "Cleaning up (stopping the clusters, removing $demo)"
    for d in "${clusters[@]}"; do
        [[ -f $d/postmaster.pid ]] || continue
        as_pg "$pgbin/pg_ctl" -D "$d" -m immediate -w -t 60 stop >/dev/null 2>&1
    done
    if [[ ${WALKEEP_DEMO_KEEP:-0} == 1 ]]; then
        say "Kept $demo"
    else
        rm -rf -- "$demo"
    fi
    if ((status == 0)); then
        say "Done: the precious rows were dropped, and pitr-restore brought them back."
    else
        printf 'demo.sh: failed (status %d)\n' "$status" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# free_port FROM: the first port from FROM on that nothing listens on.
free_port() {
    local p=$1 listening
    listening=$(ss -Hltn 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' || true)
    while grep -qx "$p" <<<"$listening" || [[ -e /tmp/.s.PGSQL.$p || -e /var/run/postgresql/.s.PGSQL.$p ]]; do
        p=$((p + 1))
    done
    printf '%s\n' "$p"
}

# cluster_settings DATADIR PORT SOCKDIR [more lines...]: own port and socket, no TCP.
cluster_settings() {
    local d=$1 port=$2 sock=$3
    shift 3
    as_pg mkdir -p -m 0700 "$sock"
    {
        printf "port = %s\n" "$port"
        printf "listen_addresses = ''\n"
        printf "unix_socket_directories = '%s'\n" "$sock"
        printf '%s\n' "$@"
    } | as_pg tee -a "$d/postgresql.auto.conf" >/dev/null
}

start_cluster() { # DATADIR
    clusters+=("$1")
    as_pg "$pgbin/pg_ctl" -D "$1" -l "$1.log" -w -t 120 start >/dev/null ||
        die "could not start the cluster in $1"
}

sql() { # DATADIR PORT SOCKDIR SQL
    as_pg "$pgbin/psql" -XAtq -v ON_ERROR_STOP=1 -h "$3" -p "$2" -d postgres -c "$4"
}

wait_for() { # DESCRIPTION TIMEOUT_S DATADIR PORT SOCKDIR SQL EXPECTED
    local deadline=$((SECONDS + $2)) got
    while :; do
        got=$(sql "$3" "$4" "$5" "$6" 2>/dev/null || true)
        [[ $got != "$7" ]] || return 0
        ((SECONDS < deadline)) || die "timed out after $2 s waiting for $1 (last got: ${got:-nothing})"
        sleep 0.5
    done
}

# ---------------------------------------------------------------------------
# build

say "Building walkeep (cmake, Release, into $src/build-demo)"
build=$src/build-demo
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWALKEEP_TESTS=OFF &&
    cmake --build "$build" -j "$(nproc)"; } >"$demo/build.log" 2>&1; then
    tail -n 40 "$demo/build.log" >&2
    die "the build failed"
fi

say "Copying the programs where $pg_user can run them ($demo/bin)"
bin=$demo/bin
mkdir -m 0755 "$bin"
for p in walkeep-archive walkeep-fetch walkeep walkeep-basebackup pitr-restore; do
    [[ -x $build/$p ]] || die "$build/$p was not built"
    install -m 0755 "$build/$p" "$bin/$p"
done

# ---------------------------------------------------------------------------
# repository, key, configuration, primary

say "Creating an encryption key (walkeep keygen) and a repository folder"
repo=$demo/repo
key=$demo/walkeep.key
conf=$demo/walkeep.conf
as_pg mkdir -m 0700 "$repo"
as_pg "$bin/walkeep" keygen "$key" >/dev/null

primary=$demo/primary
port=$(free_port 55432)
sock=$demo/sock-primary
as_pg touch "$conf"
chmod 0600 "$conf"
cat >"$conf" <<CONF
repo = $repo
encrypt_key_file = $key
pg_conninfo = 'host=$sock port=$port dbname=postgres'
pg_bindir = $pgbin
CONF

say "Creating a PostgreSQL 15 cluster (port $port, socket in $sock, no TCP) that archives through walkeep-archive"
as_pg "$pgbin/initdb" -D "$primary" --auth=trust -N --locale=C -E UTF8 >"$demo/initdb.log" 2>&1 ||
    { cat "$demo/initdb.log" >&2; die "initdb failed"; }
cluster_settings "$primary" "$port" "$sock" \
    "wal_level = replica" \
    "archive_mode = on" \
    "archive_command = '$bin/walkeep-archive --config $conf %p'"
start_cluster "$primary"
p() { sql "$primary" "$port" "$sock" "$1"; }

say "Taking a base backup (walkeep-basebackup)"
label=$(as_pg "$bin/walkeep-basebackup" --config "$conf" --checkpoint=fast) || die "walkeep-basebackup failed"
say "Backup $label is in the repository"

say "Writing precious rows"
p "create table precious (id int primary key, what text not null);
   insert into precious values
     (1, 'the signed contract'),
     (2, 'the customer list'),
     (3, 'the only copy of the Q3 report'),
     (4, 'grandma''s recipe'),
     (5, 'the launch codes (just kidding)')" >/dev/null
p "select id || ' | ' || what from precious order by id" | sed 's/^/    /'
expected=$(p "select count(*) || ' ' || md5(string_agg(id || what, ',' order by id)) from precious")

sleep 1.1
noted=$(p "select clock_timestamp()")
say "Noting the time: $noted"
sleep 1.1

say "Oops: DROP TABLE precious"
p "drop table precious" >/dev/null
if p "select count(*) from precious" >/dev/null 2>&1; then
    die "the table is still there?"
fi
say "The rows are gone: $(p "select count(*) from pg_class where relname = 'precious'") tables named precious left"

say "Making sure the WAL of the accident is archived (pg_switch_wal)"
seg=$(p "select pg_walfile_name(pg_switch_wal())")
wait_for "the archiving of $seg" 60 "$primary" "$port" "$sock" \
    "select coalesce(last_archived_wal, '') >= '$seg' from pg_stat_archiver" t

say "What the repository holds (walkeep info)"
as_pg "$bin/walkeep" info --config "$conf" 2>&1 | sed 's/^/    /' || true

# ---------------------------------------------------------------------------
# point-in-time restore

restored=$demo/restored
say "Restoring to $noted into $restored (pitr-restore --target-time)"
as_pg "$bin/pitr-restore" --config "$conf" --pgdata "$restored" \
    --target-time "$noted" --target-action=promote || die "pitr-restore failed"

port2=$(free_port $((port + 1)))
sock2=$demo/sock-restored
say "Starting the restored cluster (port $port2, socket in $sock2; archiving off, the primary still archives)"
cluster_settings "$restored" "$port2" "$sock2" "archive_mode = off"
start_cluster "$restored"
say "Waiting for recovery to reach the noted time and promote"
wait_for "the restored cluster to leave recovery" 180 "$restored" "$port2" "$sock2" \
    "select pg_is_in_recovery()" f

say "The precious rows on the restored cluster:"
sql "$restored" "$port2" "$sock2" "select id || ' | ' || what from precious order by id" | sed 's/^/    /' ||
    die "the table is not there"
got=$(sql "$restored" "$port2" "$sock2" \
    "select count(*) || ' ' || md5(string_agg(id || what, ',' order by id)) from precious")
if [[ $got != "$expected" ]]; then
    die "the restored rows differ (expected count+digest \"$expected\", got \"$got\")"
fi
say "All ${expected%% *} rows are back, identical to what was written."
