#!/usr/bin/env bash
# test_dist.sh: the scheduling files in dist/ as `cmake --install` installs them.
# Needs no PostgreSQL cluster, only systemd's tools (installed with apt-get when
# missing and we are root).
#
#   1. `cmake --install $WALKEEP_BIN --prefix P` installs the four services and
#      four timers (backup, dump, check, drill) into P/lib/systemd/system and the
#      cron file into P/share/walkeep/cron.d/walkeep, every @VARIABLE@ filled in,
#      the programs named as P/bin/... (the prefix given at install time, not at
#      configure time);
#   2. `systemd-analyze verify` accepts every unit with nothing printed about them
#      (it also checks that each ExecStart program exists and is executable);
#   3. the services are Type=oneshot, run as postgres, log to the journal, read
#      /etc/walkeep/walkeep.conf; check treats WARNING/CRITICAL (1/2) as success;
#      the timers are Persistent with a RandomizedDelaySec and every OnCalendar
#      expression parses (`systemd-analyze calendar`);
#   4. the cron file: 5 time fields and the user postgres on every job line, valid
#      shell, the same commands as the units, only existing programs; its check line
#      is silent on exit 0/1/2 and prints the output on 3;
#   5. a DESTDIR staging install (packagers) writes paths without DESTDIR.
#
# Run: WALKEEP_BIN=<build dir> WALKEEP_SRC=<source dir> bash test_dist.sh

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WALKEEP_SRC=${WALKEEP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CONFIG=/etc/walkeep/walkeep.conf
SERVICES=(walkeep-backup.service walkeep-dump.service walkeep-check.service walkeep-drill.service)
TIMERS=(walkeep-backup.timer walkeep-dump.timer walkeep-check.timer walkeep-drill.timer)

# --- systemd's tools ---------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        wk__log "installing systemd (for systemd-analyze)"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q \
            --no-install-recommends systemd >"$WK_TMP/apt.log" 2>&1 ||
            { tail -n 20 "$WK_TMP/apt.log" >&2; wk_bail "apt-get install systemd failed"; }
    fi
    command -v systemd-analyze >/dev/null 2>&1 || wk_bail "systemd-analyze not found"
fi
wk__log "$(systemd-analyze --version | head -n 1)"

# --- 1. install into a fresh prefix -------------------------------------------
prefix=$WK_TMP/prefix
if [[ -n ${WALKEEP_BIN:-} && -f $WALKEEP_BIN/cmake_install.cmake ]]; then
    wk_assert_status 0 "cmake --install of the build folder into a fresh prefix" -- \
        cmake --install "$WALKEEP_BIN" --prefix "$prefix"
else
    wk__log "no configured build folder in WALKEEP_BIN; configuring and building one"
    # shellcheck disable=SC2016 # $1..$3 are sh -c's
    wk_assert_status 0 "configure, build and install walkeep into a fresh prefix" -- \
        sh -c 'cmake -S "$1" -B "$2" -DWALKEEP_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$3" &&
               cmake --build "$2" -j2 && cmake --install "$2"' \
            wk-sh "$WALKEEP_SRC" "$WK_TMP/build" "$prefix"
fi
((WK_STATUS == 0)) || wk_bail "install failed"

unitdir=$prefix/lib/systemd/system
cronfile=$prefix/share/walkeep/cron.d/walkeep
for f in "${SERVICES[@]}" "${TIMERS[@]}"; do
    wk_assert_file "$unitdir/$f" "$f installed in <prefix>/lib/systemd/system"
done
wk_assert_file "$cronfile" "cron file installed in <prefix>/share/walkeep/cron.d"
for f in "${SERVICES[@]}" "${TIMERS[@]}" cron; do
    p=$unitdir/$f
    [[ $f == cron ]] && p=$cronfile
    [[ -f $p ]] || continue
    wk_assert_not_contains "$p" '@[A-Za-z_]+@' "$f: every @VARIABLE@ substituted"
done
ls -l "$unitdir" "$cronfile" >"$WK_TMP/ls.txt" 2>&1 || true
wk_assert_not_contains "$WK_TMP/ls.txt" '^-.{7}w' "installed files are not world-writable"

# --- 2. systemd-analyze verify ------------------------------------------------
# Lines that name our units or our folder are ours; anything else verify prints
# (complaints about the host's own units) is shown but not held against us.
for f in "${SERVICES[@]}" "${TIMERS[@]}"; do
    [[ -f $unitdir/$f ]] || continue
    wk_assert_status 0 "systemd-analyze verify $f" -- systemd-analyze verify "$unitdir/$f"
    cat "$WK_OUT" "$WK_ERR" >"$WK_TMP/verify.txt"
    grep -E 'walkeep|'"$prefix" "$WK_TMP/verify.txt" >"$WK_TMP/verify.ours" || true
    grep -vE 'walkeep|'"$prefix" "$WK_TMP/verify.txt" >"$WK_TMP/verify.other" || true
    if [[ -s $WK_TMP/verify.ours ]]; then
        wk_fail "systemd-analyze verify $f prints nothing about our units" "$(cat "$WK_TMP/verify.ours")"
    else
        wk_pass "systemd-analyze verify $f prints nothing about our units"
    fi
    if [[ -s $WK_TMP/verify.other ]]; then
        wk__log "note: unrelated systemd-analyze output for $f: $(head -c 500 "$WK_TMP/verify.other")"
    fi
done

# --- 3. what the units say ----------------------------------------------------
unit_value() { # FILE KEY -> values of KEY, one a line
    sed -n "s/^$2=//p" "$1"
}
for f in "${SERVICES[@]}"; do
    u=$unitdir/$f
    [[ -f $u ]] || continue
    wk_assert_eq oneshot "$(unit_value "$u" Type)" "$f: Type=oneshot"
    wk_assert_eq postgres "$(unit_value "$u" User)" "$f: User=postgres"
    wk_assert_eq postgres "$(unit_value "$u" Group)" "$f: Group=postgres"
    wk_assert_eq journal "$(unit_value "$u" StandardOutput)" "$f: StandardOutput=journal"
    wk_assert_eq yes "$(unit_value "$u" NoNewPrivileges)" "$f: NoNewPrivileges=yes"
    wk_assert_eq full "$(unit_value "$u" ProtectSystem)" "$f: ProtectSystem=full (data and repository paths not restricted)"
    wk_assert_not_contains "$u" '^(ProtectHome|ReadOnlyPaths|InaccessiblePaths|ProtectSystem=strict)' \
        "$f: no hardening that hides the data directory or the repository"
    unit_value "$u" 'ExecStart\(Post\)\?' >"$WK_TMP/exec.txt"
    wk_assert_ge 1 "$(wc -l <"$WK_TMP/exec.txt")" "$f: has ExecStart"
    while read -r prog args; do
        wk_assert_eq "$prefix/bin" "$(dirname "$prog")" "$f: runs $(basename "$prog") from <prefix>/bin"
        if [[ -x $prog ]]; then wk_pass "$f: $prog is executable"; else wk_fail "$f: $prog is executable"; fi
        wk_assert_eq 1 "$(grep -c -- "--config $CONFIG" <<<"$args")" "$f: $(basename "$prog") reads $CONFIG"
    done <"$WK_TMP/exec.txt"
done
u=$unitdir/walkeep-backup.service
wk_assert_contains "$u" "^ExecStart=$prefix/bin/walkeep-basebackup " "backup: ExecStart takes the base backup"
wk_assert_contains "$u" "^ExecStartPost=$prefix/bin/walkeep expire " "backup: ExecStartPost expires (only after a good backup)"
u=$unitdir/walkeep-dump.service
wk_assert_contains "$u" "^ExecStart=$prefix/bin/walkeep-dump create --all " "dump: ExecStart dumps the globals and every database"
wk_assert_contains "$u" "^ExecStartPost=$prefix/bin/walkeep expire " "dump: ExecStartPost expires (only after good dumps)"
u=$unitdir/walkeep-check.service
wk_assert_contains "$u" "^ExecStart=$prefix/bin/walkeep check .*--prometheus /[^ ]+\\.prom\$" \
    "check: writes a Prometheus textfile"
wk_assert_eq "1 2" "$(unit_value "$u" SuccessExitStatus)" "check: WARNING (1) and CRITICAL (2) do not fail the unit"
wk_assert_contains "$unitdir/walkeep-drill.service" "^ExecStart=$prefix/bin/walkeep drill " "drill: runs walkeep drill"

for f in "${TIMERS[@]}"; do
    t=$unitdir/$f
    [[ -f $t ]] || continue
    wk_assert_eq true "$(unit_value "$t" Persistent)" "$f: Persistent=true"
    wk_assert_ne "" "$(unit_value "$t" RandomizedDelaySec)" "$f: has RandomizedDelaySec"
    wk_assert_eq timers.target "$(unit_value "$t" WantedBy)" "$f: WantedBy=timers.target"
    wk_assert_eq "${f%.timer}.service" "$(unit_value "$t" Unit)" "$f: starts ${f%.timer}.service"
    n=0
    while IFS= read -r cal; do
        n=$((n + 1))
        wk_assert_status 0 "$f: OnCalendar=$cal parses" -- systemd-analyze calendar "$cal"
    done < <(unit_value "$t" OnCalendar)
    wk_assert_eq 1 "$n" "$f: one OnCalendar expression"
done
# The schedules themselves (the next runs are what the docs promise).
next_runs() { # EXPR -> 'Ddd HH:MM' of the next 3 runs
    systemd-analyze calendar --iterations=3 "$1" 2>/dev/null |
        sed -nE 's/^ *(Next elapse|Iter\. #[0-9]+): ([A-Z][a-z]{2}) [0-9-]+ ([0-9]{2}:[0-9]{2}):.*/\2 \3/p' |
        awk '{print $2}' | sort -u | paste -sd' ' -
}
wk_assert_eq "01:30" "$(next_runs "$(unit_value "$unitdir/walkeep-backup.timer" OnCalendar)")" \
    "backup timer: daily at 01:30"
wk_assert_eq "02:30" "$(next_runs "$(unit_value "$unitdir/walkeep-dump.timer" OnCalendar)")" \
    "dump timer: daily at 02:30"
cal=$(unit_value "$unitdir/walkeep-drill.timer" OnCalendar)
drill_days=$(systemd-analyze calendar --iterations=6 "$cal" |
    sed -nE 's/^ *(Next elapse|Iter\. #[0-9]+): ([A-Z][a-z]{2}) [0-9]{4}-([0-9]{2})-([0-9]{2}) 04:00:00.*/\2 \3 \4/p')
wk_assert_eq 6 "$(awk '$1 == "Mon" && $3 <= 7' <<<"$drill_days" | wc -l)" \
    "drill timer: the first Monday of the month at 04:00"
wk_assert_eq 6 "$(awk '{print $2}' <<<"$drill_days" | sort -u | wc -l)" "drill timer: once a month"
cal=$(unit_value "$unitdir/walkeep-check.timer" OnCalendar)
mins=$(systemd-analyze calendar --iterations=3 "$cal" |
    sed -nE 's/^ *(Next elapse|Iter\. #[0-9]+): .* [0-9]{2}:([0-9]{2}):00 .*/\2/p' | paste -sd' ' -)
ok=1
for m in $mins; do ((10#$m % 5 == 0)) || ok=0; done
[[ $(wc -w <<<"$mins") -eq 3 ]] || ok=0
wk_assert_eq 1 "$ok" "check timer: every 5 minutes (next: $mins)"

# --- 4. the cron file ---------------------------------------------------------
jobs=0
: >"$WK_TMP/cron.cmds"
while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
        wk_pass "cron: environment line ${line%%=*}"
        continue
    fi
    jobs=$((jobs + 1))
    read -r m h dom mon dow user cmd <<<"$line"
    bad=
    for field in "$m" "$h" "$dom" "$mon" "$dow"; do
        [[ $field =~ ^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || bad+=" $field"
    done
    wk_assert_eq "" "$bad" "cron job $jobs: five valid time fields ($m $h $dom $mon $dow)"
    wk_assert_eq postgres "$user" "cron job $jobs: runs as postgres"
    wk_assert_ne "" "$cmd" "cron job $jobs: has a command"
    # cron turns an unescaped % into a newline.
    if grep -qE '(^|[^\\])%' <<<"$cmd"; then
        wk_fail "cron job $jobs: no unescaped %" "$cmd"
    else
        wk_pass "cron job $jobs: no unescaped %"
    fi
    shcmd=${cmd//\\%/%}
    wk_assert_status 0 "cron job $jobs: valid sh" -- sh -n -c "$shcmd"
    printf '%s\n' "$shcmd" >>"$WK_TMP/cron.cmds"
    n=0
    while read -r prog; do
        n=$((n + 1))
        if [[ -x $prog && $(dirname "$prog") == "$prefix/bin" ]]; then
            wk_pass "cron job $jobs: $prog exists in <prefix>/bin"
        else
            wk_fail "cron job $jobs: $prog exists in <prefix>/bin"
        fi
    done < <(grep -oE '/[^ ;&|()"]*/walkeep(-[a-z]+)?( |$)' <<<"$shcmd" | sed 's/ $//')
    wk_assert_ge 1 "$n" "cron job $jobs: names a walkeep program by its full path"
    wk_assert_eq 1 "$(grep -o -- "--config $CONFIG" <<<"$shcmd" | wc -l | awk '{print ($1 >= 1)}')" \
        "cron job $jobs: reads $CONFIG"
done <"$cronfile"
wk_assert_eq 4 "$jobs" "cron: four jobs (backup+expire, dump+expire, check, drill)"
# The same commands as the units, and the same times.
while IFS= read -r exec; do
    if grep -qF -- "$exec" "$WK_TMP/cron.cmds"; then
        wk_pass "cron runs the same command as the units: ${exec#"$prefix"/bin/}"
    else
        wk_fail "cron runs the same command as the units: ${exec#"$prefix"/bin/}"
    fi
done < <(for f in "${SERVICES[@]}"; do unit_value "$unitdir/$f" 'ExecStart\(Post\)\?'; done)
wk_assert_contains "$cronfile" '^30 1 \* \* \* +postgres [^ ]*/walkeep-basebackup .*&& [^ ]*/walkeep expire ' \
    "cron: backup at 01:30, then expire only if it worked"
wk_assert_contains "$cronfile" '^30 2 \* \* \* +postgres [^ ]*/walkeep-dump create --all .*&& [^ ]*/walkeep expire ' \
    "cron: dumps at 02:30, then expire only if they worked"
wk_assert_contains "$cronfile" '^\*/5 \* \* \* \* +postgres .*walkeep check .*--prometheus ' "cron: check every 5 minutes"
wk_assert_contains "$cronfile" '^0 4 1-7 \* \* +postgres .*date \+\\%u.* -eq 1 .*&& [^ ]*/walkeep drill ' \
    "cron: drill on the first Monday at 04:00"

# The cron check line with a stand-in walkeep exiting 0..3: silent unless >= 3.
stub=$(wk_tmpdir stub)
cat >"$stub/walkeep" <<'EOF'
#!/bin/sh
echo "walkeep check output (status $STUB_RC)"
exit "$STUB_RC"
EOF
chmod 0755 "$stub/walkeep"
checkcmd=$(grep -F 'walkeep check' "$WK_TMP/cron.cmds" | head -n 1)
checkcmd=${checkcmd//"$prefix/bin/"/"$stub/"}
for rc in 0 1 2 3; do
    out=$(STUB_RC=$rc sh -c "$checkcmd" 2>&1) || true
    if ((rc <= 2)); then
        wk_assert_eq "" "$out" "cron check line: quiet when walkeep check exits $rc"
    else
        wk_assert_eq "walkeep check output (status 3)" "$out" "cron check line: prints the output when it exits 3"
    fi
done

# --- 5. a DESTDIR staging install ---------------------------------------------
if [[ -n ${WALKEEP_BIN:-} && -f $WALKEEP_BIN/cmake_install.cmake ]]; then
    dest=$WK_TMP/destdir
    wk_assert_status 0 "DESTDIR install with --prefix /usr" -- \
        env DESTDIR="$dest" cmake --install "$WALKEEP_BIN" --prefix /usr
    wk_assert_contains "$dest/usr/lib/systemd/system/walkeep-backup.service" \
        '^ExecStart=/usr/bin/walkeep-basebackup ' "DESTDIR install: units name /usr/bin, not the staging folder"
    wk_assert_contains "$dest/usr/share/walkeep/cron.d/walkeep" ' postgres /usr/bin/walkeep-basebackup ' \
        "DESTDIR install: the cron file names /usr/bin"
fi

wk_done
