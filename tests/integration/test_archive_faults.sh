#!/usr/bin/env bash
# Bad input and faults for walkeep-archive / walkeep-fetch against real WAL from a real
# PostgreSQL 15: each case checks the exit status, the message, and that nothing was lost.
# With WK_REPO_KIND=s3 the repository is on S3 (lib.sh); the faults of a local file system
# (syscalls failed with strace, a full disk) are posix only.
source "$(dirname "$0")/lib.sh"

ARCHIVE=$(wk_bin walkeep-archive)
FETCH=$(wk_bin walkeep-fetch)
WALKEEP=$(wk_bin walkeep)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
key=$work/repo.key
conf=$work/walkeep.conf
bare=$work/bare.conf # the repository alone: no key, default settings

as_pg() { wk_run_as_postgres "$@"; }
# Objects of the segment named $1 in the repository (paths relative to it).
objects_of() {
    local all
    all=$(wk_repo_wal_objects "$repo") || return 1
    grep -F -- "/$1-" <<<"$all" || true
}
# Objects of the segment named $2 in repository $1.
objects_of_in() { wk_repo_wal_objects "$1" | grep -F -- "/$2-" || true; }
# Object of a WAL name in the repository (empty when none).
object_of() { objects_of "$1" | sed -n 1p; }
# Any temporary or partial file left in a folder.
leftovers() { find "$1" -name '.*tmp*' 2>/dev/null || true; }
has_leftovers() { [[ -n $(leftovers "$1") ]]; }

as_pg "$WALKEEP" keygen "$key"
wk_repo_conf_write "$conf" "$repo" "encrypt_key_file = $key" "log_level = info"
wk_repo_conf_write "$bare" "$repo"

# --- real segments from a real cluster --------------------------------------------
pg=$(wk_cluster_init primary)
wk_cluster_conf "$pg" "archive_mode = on" "wal_level = replica" \
    "archive_command = $(wk_conf_quote "$ARCHIVE --config $conf %p")"
wk_cluster_start "$pg"
wk_psql "$pg" "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g" >/dev/null
seg1=$(wk_psql "$pg" "SELECT pg_walfile_name(pg_current_wal_lsn())")
wk_psql "$pg" "SELECT pg_switch_wal()" >/dev/null
wk_psql "$pg" "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g" >/dev/null
wk_psql "$pg" "SELECT pg_switch_wal()" >/dev/null
wk_wait_for_sql "archiving of $seg1" 60 "$pg" \
    "SELECT last_archived_wal >= '$seg1' FROM pg_stat_archiver" t
segs=$work/segs
as_pg mkdir "$segs"
as_pg cp "$pg/pg_wal/$seg1" "$segs/"
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT failed_count FROM pg_stat_archiver")" \
    "the cluster archives through walkeep-archive without failures"
wk_repo_cat "$repo" walkeep.repo >"$work/walkeep.repo" 2>&1 || true
wk_assert_contains "$work/walkeep.repo" "encryption = xchacha20poly1305" \
    "the first archived segment initialised an encrypted repository"

# --- duplicate and conflicting pushes ----------------------------------------------
wk_assert_status 0 "identical re-push succeeds" -- as_pg "$ARCHIVE" --config "$conf" "$segs/$seg1"
wk_assert_contains "$WK_ERR" "already archived with identical content" "re-push says it was a duplicate"
obj=$(object_of "$seg1")
before=$(wk_repo_cat "$repo" "$obj" | sha256sum)
as_pg mkdir "$work/conflict"
as_pg cp "$segs/$seg1" "$work/conflict/$seg1"
printf 'Z' | dd of="$work/conflict/$seg1" bs=1 seek=100000 conv=notrunc status=none
wk_assert_status '!0' "conflicting push fails" -- as_pg "$ARCHIVE" --config "$conf" "$work/conflict/$seg1"
wk_assert_contains "$WK_ERR" "^walkeep-archive: error: .*already archived with different content" \
    "conflicting push names the conflict"
wk_assert_eq "$before" "$(wk_repo_cat "$repo" "$obj" | sha256sum)" "the stored copy is unchanged after a conflicting push"
wk_assert_eq 1 "$(objects_of "$seg1" | grep -c . || true)" "still one object for the segment"

# A damaged stored copy (truncated) is not "already archived": the re-push replaces it.
wk_repo_cat "$repo" "$obj" >"$work/whole.obj"
head -c 1000 "$work/whole.obj" >"$work/truncated.obj"
wk_repo_put "$repo" "$obj" <"$work/truncated.obj"
wk_assert_status 0 "re-push over a truncated stored copy succeeds" -- \
    as_pg "$ARCHIVE" --config "$conf" "$segs/$seg1"
wk_assert_contains "$WK_ERR" "warning: the stored copy .* is damaged" "the re-push warns about the damaged copy"
wk_assert_eq "$(wc -c <"$work/whole.obj")" "$(wk_repo_cat "$repo" "$obj" | wc -c)" \
    "the stored copy is whole again (fetch below restores it byte for byte)"
before=$(wk_repo_cat "$repo" "$obj" | sha256sum)

# --- concurrent writers of different content: one winner --------------------------
# Three walkeep-archive runs of one WAL name with different content, started together,
# each round into a fresh repository: exactly one succeeds, the others get the conflict,
# one object holds the name and fetch restores the winner's bytes (docs/format.md, Claims).
RACE_ROUNDS=${WK_RACE_ROUNDS:-8}
race_bad=0
for round in $(seq 1 "$RACE_ROUNDS"); do
    rrepo=$(wk_repo_new "race$round" "$work")
    rconf=$work/race$round.conf
    wk_repo_conf_write "$rconf" "$rrepo" "encrypt_key_file = $key"
    as_pg "$WALKEEP" init --config "$rconf" --pgdata="$pg" >/dev/null 2>&1
    pids=()
    for w in 1 2 3; do
        d=$work/race$round-$w
        as_pg mkdir "$d"
        as_pg cp "$segs/$seg1" "$d/$seg1"
        printf '%s' "$w" | dd of="$d/$seg1" bs=1 seek=$((100000 + round)) conv=notrunc status=none
        as_pg "$ARCHIVE" --config "$rconf" "$d/$seg1" >"$d.out" 2>&1 &
        pids+=($!)
    done
    won=() conflicts=0 others=0
    for w in 1 2 3; do
        if wait "${pids[$((w - 1))]}"; then
            won+=("$w")
        elif grep -q "already archived with different content" "$work/race$round-$w.out"; then
            conflicts=$((conflicts + 1))
        else
            others=$((others + 1))
            sed 's/^/# /' "$work/race$round-$w.out" >&2
        fi
    done
    n_objects=$(objects_of_in "$rrepo" "$seg1" | grep -c . || true)
    if [[ ${#won[@]} -ne 1 || $conflicts -ne 2 || $others -ne 0 || $n_objects -ne 1 ]]; then
        race_bad=$((race_bad + 1))
        echo "# round $round: ${#won[@]} succeeded, $conflicts conflicts, $others other failures, $n_objects objects" >&2
        continue
    fi
    (cd "$work" && as_pg "$FETCH" --config "$rconf" "$seg1" "$work/race$round.fetched") ||
        race_bad=$((race_bad + 1))
    cmp -s "$work/race$round.fetched" "$work/race$round-${won[0]}/$seg1" || race_bad=$((race_bad + 1))
done
wk_assert_eq 0 "$race_bad" \
    "$RACE_ROUNDS rounds of 3 concurrent different-content pushes: one winner each, whose bytes fetch restores"

# --- fetch: found, missing, corrupt, wrong key, standby --------------------------
cwd=$(wk_tmpdir recovery)   # plays the data directory: no standby.signal
fetch() { (cd "$cwd" && as_pg "$FETCH" "$@"); }
wk_assert_status 0 "fetch of an archived segment succeeds" -- fetch --config "$conf" "$seg1" "$cwd/out"
wk_assert_same_file "$segs/$seg1" "$cwd/out" "fetched segment is byte-identical"
rm -f "$cwd/out"
wk_assert_status 1 "fetch of a missing segment exits 1" -- fetch --config "$conf" 0000000100000000000000FE "$cwd/out"
wk_assert_no_file "$cwd/out" "no file for a missing segment"
wk_assert_eq "" "$(cat "$WK_ERR")" "a missing segment is quiet"
wk_assert_status 1 "fetch of a missing history file exits 1" -- fetch --config "$conf" 00000007.history "$cwd/out"
wk_assert_no_file "$cwd/out" "no file for a missing history file"

# Fetches killed mid-write (SIGKILL at random moments) leave hidden temporaries beside
# the destination; the next fetch into the folder removes those whose writer is gone.
killdir=$(wk_tmpdir killed)
for i in $(seq 1 25); do
    (cd "$killdir" && as_pg "$FETCH" --config "$conf" "$seg1" "$killdir/victim-$i" >/dev/null 2>&1) &
    sleep "0.00$((RANDOM % 10))"
    pkill -KILL -f -- "$FETCH --config $conf $seg1 $killdir/victim-$i" 2>/dev/null || true
    wait 2>/dev/null || true
done
killed_left=$(find "$killdir" -name '.*.tmp.*' | wc -l)
echo "# $killed_left temporaries left by the killed fetches"
wk_assert_status 0 "a fetch after killed ones succeeds" -- \
    as_pg "$FETCH" --config "$conf" "$seg1" "$killdir/after"
wk_assert_eq 0 "$(find "$killdir" -name '.*.tmp.*' | wc -l)" \
    "the next fetch removed the temporaries of the killed ones ($killed_left were left)"

wk_repo_cat "$repo" "$obj" >"$work/object.saved"
wk_repo_flip "$repo" "$obj"
wk_assert_status '>125' "fetch of a corrupt object is a hard error in archive recovery" -- \
    fetch --config "$conf" "$seg1" "$cwd/out"
wk_assert_contains "$WK_ERR" "^walkeep-fetch: error: .*(authentication|corrupt)" "corrupt object is named as such"
wk_assert_no_file "$cwd/out" "no file from a corrupt object"
wk_assert_eq "" "$(leftovers "$cwd")" "no temporary left beside the destination"
as_pg touch "$cwd/standby.signal"
wk_assert_status 1 "on a standby a corrupt object exits 1" -- fetch --config "$conf" "$seg1" "$cwd/out"
wk_assert_contains "$WK_ERR" "^walkeep-fetch: error: " "on a standby the error is still logged loudly"
rm -f "$cwd/standby.signal"
wk_repo_put "$repo" "$obj" <"$work/object.saved"

otherkey=$work/other.key
as_pg "$WALKEEP" keygen "$otherkey"
wk_assert_status '>125' "fetch with the wrong key is a hard error" -- \
    fetch --config "$bare" --encrypt-key-file="$otherkey" "$seg1" "$cwd/out"
wk_assert_contains "$WK_ERR" "key does not match" "wrong key is named as such"
wk_assert_no_file "$cwd/out" "no file with the wrong key"
nowhere=$(wk_repo_new nowhere "$work")
wk_assert_status '>125' "fetch from a missing repository is a hard error" -- \
    fetch --config "$bare" --repo="$nowhere" "$seg1" "$cwd/out"
wk_assert_status '>125' "fetch without the key of an encrypted repository is a hard error" -- \
    fetch --config "$bare" "$seg1" "$cwd/out"
wk_assert_contains "$WK_ERR" "is encrypted but no key is configured" "missing key is named"

# --- transient repository errors: retried with backoff, for a bounded time --------
if [[ $(wk_repo_kind) == posix ]]; then
    # strace fails the open of the object itself (-P; walkeep opens it relative to the
    # repository folder) with ETIMEDOUT, as a network file
    # system may: once (the retry restores it), then every time (a hard error after
    # retry_timeout). LeakSanitizer cannot run under ptrace.
    inject_fetch() { # WHEN ARGS...
        local when=$1
        shift
        (cd "$cwd" && ASAN_OPTIONS=detect_leaks=0 runuser -u postgres -- strace -f -o /dev/null \
            -P "$obj" -e trace=openat -e inject=openat:error=ETIMEDOUT"$when" "$FETCH" "$@")
    }
    wk_assert_status 0 "a transient error is retried and the fetch succeeds" -- \
        inject_fetch :when=1 --config "$conf" "$seg1" "$cwd/out"
    wk_assert_same_file "$segs/$seg1" "$cwd/out" "the retried fetch is byte-identical"
    wk_assert_contains "$WK_ERR" "warning: restored .* after 2 attempts" "the retry is logged as a warning"
    rm -f "$cwd/out"
    start=$SECONDS
    wk_assert_status '>125' "a lasting transient error is a hard error after retry_timeout" -- \
        inject_fetch "" --config "$conf" --retry-timeout=2s "$seg1" "$cwd/out"
    wk_assert_contains "$WK_ERR" "gave up after [0-9]+ attempts.*Connection timed out" "it says it gave up, and why"
    wk_assert_eq 1 "$(( SECONDS - start <= 20 ))" "the retries are bounded in time"
    wk_assert_no_file "$cwd/out" "no file after giving up"
else
    echo "# s3: transient errors injected into openat with strace skipped (local filesystem fault)"
    # An endpoint where nothing listens: connection refused, transient, retried until
    # retry_timeout, then a hard error.
    dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    start=$SECONDS
    wk_assert_status '>125' "s3: an endpoint that refuses connections is a hard error after retry_timeout" -- \
        fetch --config "$conf" --s3-endpoint="http://127.0.0.1:$dead" --retry-timeout=2s "$seg1" "$cwd/out"
    wk_assert_contains "$WK_ERR" "^walkeep-fetch: error: " "s3: it says why"
    wk_assert_eq 1 "$(( SECONDS - start <= 20 ))" "s3: the retries are bounded in time"
    wk_assert_no_file "$cwd/out" "s3: no file after giving up"
fi

# --- archive: bad names, unreadable, short, foreign cluster, unsafe key ----------
wk_assert_status '!0' "a non-WAL file is refused" -- as_pg "$ARCHIVE" --config "$conf" /etc/hostname
wk_assert_contains "$WK_ERR" "invalid WAL file name" "non-WAL name is named"
as_pg cp "$segs/$seg1" "$work/${seg1}x"
wk_assert_status '!0' "a name with extra characters is refused" -- as_pg "$ARCHIVE" --config "$conf" "$work/${seg1}x"
wk_assert_status '!0' "fetch of a path as a name is refused" -- fetch --config "$conf" "../$seg1" "$cwd/out"
wk_assert_no_file "$cwd/out" "no file for a path as a name"
wk_assert_status '!0' "a missing file is refused" -- as_pg "$ARCHIVE" --config "$conf" "$work/000000010000000000000077"
wk_assert_contains "$WK_ERR" "could not open file" "missing file is named"
as_pg mkdir "$work/unreadable"
as_pg cp "$segs/$seg1" "$work/unreadable/000000010000000000000070"
chown root: "$work/unreadable/000000010000000000000070"; chmod 600 "$work/unreadable/000000010000000000000070"
wk_assert_status '!0' "an unreadable file is refused" -- as_pg "$ARCHIVE" --config "$conf" "$work/unreadable/000000010000000000000070"
wk_assert_contains "$WK_ERR" "Permission denied" "unreadable file says why"
as_pg mkdir "$work/short"
as_pg head -c 1000 "$segs/$seg1" >"$work/short/$seg1"
chown postgres: "$work/short/$seg1"
wk_assert_status '!0' "a short segment is refused" -- as_pg "$ARCHIVE" --config "$conf" "$work/short/$seg1"
wk_assert_contains "$WK_ERR" "has 1000 bytes" "short segment is named"
as_pg cp "$segs/$seg1" "$work/short/000000010000000000000071"
wk_assert_status '!0' "a segment under another segment's name is refused" -- \
    as_pg "$ARCHIVE" --config "$conf" "$work/short/000000010000000000000071"
wk_assert_contains "$WK_ERR" "does not hold the WAL its name says" "misnamed segment is named"

# A segment of a PostgreSQL newer than walkeep knows (its page magic one above 18's):
# one line naming the magic and the supported majors, a hint, nothing stored.
mkdir -p "$work/future"
chown postgres: "$work/future"
future=000000010000000000000072
as_pg cp "$segs/$seg1" "$work/future/$future"
# the page address must match the new name, so only the magic is what is wrong
python3 - "$work/future/$future" "$seg1" "$future" <<'PY'
import struct, sys
path, old, new = sys.argv[1:]
with open(path, "r+b") as f:
    head = bytearray(f.read(40))
    seg_size = struct.unpack_from("<I", head, 32)[0]
    struct.pack_into("<H", head, 0, 0xD119)
    addr = struct.unpack_from("<Q", head, 8)[0] + (int(new[8:], 16) - int(old[8:], 16)) * seg_size
    struct.pack_into("<Q", head, 8, addr)
    f.seek(0)
    f.write(head)
PY
objects_before=$(wk_repo_ls "$repo" wal)
wk_assert_status '!0' "a segment of a PostgreSQL newer than 18 is refused" -- \
    as_pg "$ARCHIVE" --config "$conf" "$work/future/$future"
wk_assert_eq "walkeep-archive: error: file \"$work/future/$future\" cannot be archived: WAL page magic D119 is of a PostgreSQL newer than this walkeep supports (PostgreSQL 15 to 18)" \
    "$(head -n 1 "$WK_ERR")" "the refusal names the magic and the supported majors"
wk_assert_eq "walkeep-archive: hint: install a walkeep release that supports the server's PostgreSQL version" \
    "$(sed -n 2p "$WK_ERR")" "and says what to do"
wk_assert_eq 2 "$(wc -l <"$WK_ERR")" "nothing else is printed"
wk_assert_eq "$objects_before" "$(wk_repo_ls "$repo" wal)" "nothing stored for the newer segment"

other=$(wk_cluster_init other)
objects_before=$(wk_repo_ls "$repo" wal)
wk_assert_status '!0' "a segment of another cluster is refused" -- \
    as_pg "$ARCHIVE" --config "$conf" "$other/pg_wal/000000010000000000000001"
wk_assert_contains "$WK_ERR" "system identifier .* does not match" "foreign segment names the system identifiers"
wk_assert_eq "$objects_before" "$(wk_repo_ls "$repo" wal)" "nothing stored for the foreign segment"

chmod 0644 "$key"
wk_assert_status '!0' "a world-readable key file is refused" -- as_pg "$ARCHIVE" --config "$conf" "$segs/$seg1"
wk_assert_contains "$WK_ERR" "group or (world|others)" "unsafe key file says why"
chmod 0600 "$key"
wk_assert_status '!0' "a relative repository path is refused" -- as_pg "$ARCHIVE" --repo=relative "$segs/$seg1"
wk_assert_status '!0' "an unknown configuration key is refused" -- as_pg "$ARCHIVE" --config "$conf" --no-such-key=1 "$segs/$seg1"

# --- full disk: a 256 KiB tmpfs as the repository ---------------------------------
if [[ $(wk_repo_kind) == posix ]]; then
    small=$work/small
    mkdir "$small"
    if mount -t tmpfs -o size=256k,mode=0700 tmpfs "$small"; then
        wk_on_exit umount -l "$small"
        chown postgres: "$small"
        wk_assert_status 0 "init on the small repository" -- \
            as_pg "$WALKEEP" init --repo="$small/r" --pgdata="$pg"
        wk_assert_status '!0' "a push onto a full disk fails" -- \
            as_pg "$ARCHIVE" --repo="$small/r" --compress=none "$segs/$seg1"
        wk_assert_contains "$WK_ERR" "No space left on device" "full disk says so"
        wk_assert_eq "" "$(find "$small/r/wal" -type f 2>/dev/null)" "no object or temporary left on the full disk"
        mount -o remount,size=64m "$small"
        wk_assert_status 0 "the push succeeds once there is room" -- \
            as_pg "$ARCHIVE" --repo="$small/r" --compress=none "$segs/$seg1"
        (cd "$cwd" && as_pg "$FETCH" --repo="$small/r" "$seg1" "$cwd/small.out")
        wk_assert_same_file "$segs/$seg1" "$cwd/small.out" "and it fetches back identical"
    else
        wk_fail "could not mount a tmpfs for the full-disk test"
    fi
else
    echo "# s3: full disk (a small tmpfs) skipped (local filesystem fault)"
fi

# --- a push killed with SIGKILL half-way ----------------------------------------
# posix: strace holds the push at its rename (the object is written and fsync'd in its
# temporary file); s3 (no rename): strace slows every send (30 ms each) and the segment
# goes up in 1 MB parts, so its multipart upload is seen in progress. SIGKILL then, and
# nothing may be visible.
krepo=$(wk_repo_new killrepo "$work")
kconf=$work/kill.conf
if [[ $(wk_repo_kind) == posix ]]; then
    wk_repo_conf_write "$kconf" "$krepo"
    inject=(-e trace=renameat2 -e inject=renameat2:delay_enter=30000000)
    push_started() { has_leftovers "$krepo/wal"; }
else
    wk_repo_conf_write "$kconf" "$krepo" "s3_part_size = 1MB" "s3_parallel = 1"
    # shellcheck disable=SC2054 # commas in strace's syscall list
    inject=(-e trace=sendto,sendmsg -e inject=sendto:delay_enter=30000
        -e inject=sendmsg:delay_enter=30000)
    push_started() { [[ -n $(wk_repo_uploads "$krepo") ]]; }
fi
as_pg "$WALKEEP" init --config "$kconf" --pgdata="$pg" >/dev/null 2>&1
wk_assert_status '>125' "fetch from an initialised repository without any WAL is an error, not \"missing\"" -- \
    fetch --config "$kconf" "$seg1" "$cwd/killed.out"
wk_assert_contains "$WK_ERR" "holds no WAL at all" "the error says the repository holds no WAL"
wk_assert_no_file "$cwd/killed.out" "nothing at %p"
# Some WAL first (a history file), so that a name without an object is certainly missing:
# a repository that holds no WAL at all answers every fetch with an error.
as_pg mkdir -p "$work/khist"
printf '1\t0/3000000\tno recovery target specified\n' | as_pg tee "$work/khist/00000002.history" >/dev/null
wk_assert_status 0 "a history file is archived into the repository first" -- \
    as_pg "$ARCHIVE" --config "$kconf" "$work/khist/00000002.history"
ASAN_OPTIONS=detect_leaks=0 runuser -u postgres -- strace -f -o /dev/null "${inject[@]}" \
    "$ARCHIVE" --config "$kconf" "$segs/$seg1" &
strace_pid=$!
wk_wait_for "the push's temporary file" 30 push_started
archive_pid=$(pgrep -f -n "^$ARCHIVE --config $kconf") || true
if [[ -n $archive_pid ]]; then
    kill -KILL "$archive_pid"
    wait "$strace_pid" 2>/dev/null || true
    wk_pass "push killed half-way"
else
    kill "$strace_pid" 2>/dev/null || true
    wk_fail "could not find the push to kill"
fi
wk_assert_eq "" "$(wk_repo_wal_objects "$krepo" | grep -F -- "/$seg1-" || true)" \
    "nothing visible after the killed push"
wk_assert_status 1 "fetch after the killed push finds nothing" -- \
    fetch --config "$kconf" "$seg1" "$cwd/killed.out"
wk_assert_status 0 "the retried push succeeds" -- as_pg "$ARCHIVE" --config "$kconf" "$segs/$seg1"
wk_assert_status 0 "and fetches back" -- fetch --config "$kconf" "$seg1" "$cwd/killed.out"
wk_assert_same_file "$segs/$seg1" "$cwd/killed.out" "identical after the retry"

# --- usage --------------------------------------------------------------------
wk_assert_status 1 "archive without arguments is a usage error" -- as_pg "$ARCHIVE" --repo="$repo"
wk_assert_contains "$WK_ERR" "^walkeep-archive: error: missing WAL file path" "usage error is one clear line"
wk_assert_status 0 "--help works" -- "$FETCH" --help
wk_assert_contains "$WK_OUT" "restore_command" "--help explains restore_command"

wk_cluster_stop "$pg"
wk_done
