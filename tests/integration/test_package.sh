#!/usr/bin/env bash
# test_package.sh: the Debian package (the CPack section of CMakeLists.txt,
# scripts/package.sh). Needs no PostgreSQL cluster; needs root (it installs the package
# into this machine and removes it again) and dpkg-dev (scripts/deps.sh).
#
#   1. builds walkeep_<version>_<arch>.deb, <version> that of project() in
#      CMakeLists.txt: from WALKEEP_PACKAGE_BUILD with scripts/package.sh when that is
#      set; else with scripts/package.sh in a fresh Release build folder under the
#      scratch folder (never from WALKEEP_BIN, which other tests install from);
#   2. its control fields (`dpkg-deb --info`): name, version, architecture, section
#      admin, a maintainer, a description, Recommends postgresql-client, and Depends
#      computed by dpkg-shlibdeps (versioned) naming liblz4, libzstd, libsodium,
#      libxxhash, libpq and libc, plus libcurl4 (loaded with dlopen) and no sanitizer
#      runtime;
#   3. its files (`dpkg-deb --contents`): every program in /usr/bin, every man page of
#      docs/man, every systemd unit and timer in /usr/lib/systemd/system, the cron file
#      in /usr/share/walkeep/cron.d; nothing outside /usr, owned by root, nothing
#      world-writable; the units and cron file name /usr/bin and no build or staging
#      folder;
#   4. `dpkg -i` installs it (its Depends satisfied on this machine), /usr/bin/walkeep
#      --version prints the version, the installed units run /usr/bin programs that
#      exist (systemd-analyze verify), the cron file names them;
#   5. `dpkg -r` removes every file, `dpkg --purge` forgets the package.
#
# The package is removed at exit also when the test fails. The test refuses to run
# (fails at once) when walkeep is already installed here, as a package or as files in
# /usr that the package would overwrite and then delete.
#
# Run (as root): WALKEEP_BIN=<build dir> WALKEEP_SRC=<source dir> bash test_package.sh

# shellcheck disable=SC2317 # helpers run through wk_assert_status and wk_on_exit
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WALKEEP_SRC=${WALKEEP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PROGRAMS=(walkeep walkeep-archive walkeep-fetch walkeep-basebackup pitr-restore walkeep-dump)
SERVICES=(walkeep-backup.service walkeep-dump.service walkeep-check.service walkeep-drill.service)
TIMERS=(walkeep-backup.timer walkeep-dump.timer walkeep-check.timer walkeep-drill.timer)
CRON=usr/share/walkeep/cron.d/walkeep

[[ $(id -u) -eq 0 ]] || wk_bail "must run as root (it installs the package with dpkg -i)"
for tool in cpack dpkg dpkg-deb dpkg-query dpkg-shlibdeps file; do
    command -v "$tool" >/dev/null 2>&1 || wk_bail "$tool not found (scripts/deps.sh installs it)"
done

version=$(sed -nE 's/^project\(walkeep VERSION ([0-9][0-9.]*)[ )].*/\1/p' "$WALKEEP_SRC/CMakeLists.txt")
[[ -n $version ]] || wk_bail "no project(walkeep VERSION ...) in $WALKEEP_SRC/CMakeLists.txt"
arch=$(dpkg --print-architecture)
debname=walkeep_${version}_${arch}.deb
wk__log "package $debname"

# dpkg ARGS...: dpkg, waiting (up to 2 minutes) while another dpkg or apt holds its lock.
dpkg_locked() {
    local i rc
    for ((i = 0; i < 120; i++)); do
        rc=0
        dpkg "$@" 2>"$WK_TMP/dpkg.err" || rc=$?
        if ((rc != 0)) && grep -qE 'locked by another process|unable to lock' "$WK_TMP/dpkg.err"; then
            sleep 1
            continue
        fi
        cat "$WK_TMP/dpkg.err" >&2
        return "$rc"
    done
    cat "$WK_TMP/dpkg.err" >&2
    return "$rc"
}
# The package's state in dpkg's database: not-installed, installed, config-files, ...
pkg_state() {
    local s
    s=$(dpkg-query -W -f='${db:Status-Status}' walkeep 2>/dev/null) || s=
    printf '%s\n' "${s:-not-installed}"
}

# --- 1. build the package -----------------------------------------------------
started=$SECONDS
if [[ -n ${WALKEEP_PACKAGE_BUILD:-} ]]; then
    wk_assert_status 0 "scripts/package.sh $WALKEEP_PACKAGE_BUILD" -- \
        "$WALKEEP_SRC/scripts/package.sh" "$WALKEEP_PACKAGE_BUILD"
    deb=$(tail -n 1 "$WK_OUT")
else
    # Never cpack of WALKEEP_BIN: its install step writes into that build folder, which
    # test_dist installs from at the same time (and may relink what other tests run).
    wk__log "a Release build in the scratch folder"
    wk_assert_status 0 "scripts/package.sh in a fresh Release build folder" -- \
        timeout -k 10 900 "$WALKEEP_SRC/scripts/package.sh" "$WK_TMP/build"
    deb=$(tail -n 1 "$WK_OUT")
fi
((WK_STATUS == 0)) || wk_bail "the package could not be built"
wk__log "built in $((SECONDS - started)) s: $deb"
wk_assert_eq "$debname" "$(basename "$deb")" "the package is named walkeep_<project version>_<arch>.deb"
[[ -f $deb ]] || wk_bail "no package at \"$deb\""

# --- 2. control fields --------------------------------------------------------
wk_assert_status 0 "dpkg-deb --info reads the package" -- dpkg-deb --info "$deb"
field() { dpkg-deb --field "$deb" "$1"; }
wk_assert_eq walkeep "$(field Package)" "Package: walkeep"
wk_assert_eq "$version" "$(field Version)" "Version: the project version, $version"
wk_assert_eq "$arch" "$(field Architecture)" "Architecture: $arch"
wk_assert_eq admin "$(field Section)" "Section: admin"
wk_assert_eq optional "$(field Priority)" "Priority: optional"
maintainer=$(field Maintainer)
if [[ $maintainer =~ ^[^\<]+\ \<[^@\ ]+@[^\>\ ]+\>$ ]]; then
    wk_pass "Maintainer: a name and an address ($maintainer)"
else
    wk_fail "Maintainer: a name and an address" "got: $maintainer"
fi
field Description >"$WK_TMP/description.txt"
wk_assert_contains "$WK_TMP/description.txt" '^PostgreSQL .*WAL' "Description: a summary naming PostgreSQL and WAL"
wk_assert_ge 3 "$(wc -l <"$WK_TMP/description.txt")" "Description: an extended description"
field Recommends | tr ',' '\n' | sed 's/^ *//' >"$WK_TMP/recommends.txt"
wk_assert_contains "$WK_TMP/recommends.txt" '^postgresql-client( |$)' \
    "Recommends: postgresql-client (walkeep-dump runs pg_dump, pg_restore, psql)"
field Depends | tr ',' '\n' | sed 's/^ *//' >"$WK_TMP/depends.txt"
wk__log "Depends: $(field Depends)"
for lib in liblz4-1 libzstd1 libsodium23 libxxhash0 libpq5 libc6; do
    wk_assert_contains "$WK_TMP/depends.txt" "^$lib \\(>= [^)]+\\)\$" "Depends: $lib, versioned (dpkg-shlibdeps)"
done
wk_assert_contains "$WK_TMP/depends.txt" '^libcurl4( |$)' "Depends: libcurl4 (dlopen'ed for S3 repositories)"
wk_assert_not_contains "$WK_TMP/depends.txt" '^lib(asan|ubsan|tsan|lsan)' "Depends: no sanitizer runtime"

# --- 3. files -----------------------------------------------------------------
dpkg-deb --contents "$deb" >"$WK_TMP/contents.txt"
# "./usr/bin/walkeep" -> "usr/bin/walkeep"; folders end with "/".
awk '{print $6}' "$WK_TMP/contents.txt" | sed 's|^\./||' >"$WK_TMP/paths.txt"
grep -v '/$' "$WK_TMP/paths.txt" >"$WK_TMP/files.txt" || true
has_file() { grep -qxF -- "$1" "$WK_TMP/files.txt"; }
assert_has() { # PATH MSG
    if has_file "$1"; then wk_pass "$2"; else wk_fail "$2" "no /$1 in the package"; fi
}
for p in "${PROGRAMS[@]}"; do
    assert_has "usr/bin/$p" "holds /usr/bin/$p"
    wk_assert_contains "$WK_TMP/contents.txt" "^-rwxr-xr-x root/root .* \\./usr/bin/$p\$" "/usr/bin/$p: mode 0755, root"
    assert_has "usr/share/man/man1/$p.1" "holds the man page $p(1)"
done
n=0
for src in "$WALKEEP_SRC"/docs/man/*.md; do
    page=$(basename "$src" .md)
    n=$((n + 1))
    assert_has "usr/share/man/man${page##*.}/$page" "holds the man page of docs/man/$page.md"
done
wk_assert_ge 7 "$n" "docs/man has a page for every program and walkeep.conf(5)"
unitdir=usr/lib/systemd/system
for u in "${SERVICES[@]}" "${TIMERS[@]}"; do
    assert_has "$unitdir/$u" "holds the unit /$unitdir/$u"
done
assert_has "$CRON" "holds the cron file /$CRON"
wk_assert_not_contains "$WK_TMP/paths.txt" '^(usr/local|usr/include|usr/lib/[^s])|^[^u]' \
    "nothing outside /usr, nothing in /usr/local, no headers or libraries"
awk '$2 != "root/root"' "$WK_TMP/contents.txt" >"$WK_TMP/owners.txt"
wk_assert_eq "" "$(head -n 5 "$WK_TMP/owners.txt")" "every file owned by root/root"
wk_assert_not_contains "$WK_TMP/contents.txt" '^.{8}w' "nothing world-writable"
wk_assert_eq "$(sort -u "$WK_TMP/files.txt" | wc -l)" "$(wc -l <"$WK_TMP/files.txt")" "no file listed twice"

root=$WK_TMP/extract
wk_assert_status 0 "dpkg-deb --extract" -- dpkg-deb --extract "$deb" "$root"
for u in "${SERVICES[@]}"; do
    f=$root/$unitdir/$u
    [[ -f $f ]] || continue
    wk_assert_contains "$f" '^ExecStart=/usr/bin/walkeep(-[a-z]+)? ' "$u (in the package): ExecStart runs /usr/bin/..."
    sed -nE 's/^Exec[A-Za-z]*=([^ ]*).*/\1/p' "$f" | grep -vE '^/usr/bin/[a-z-]+$' >"$WK_TMP/badexec.txt" || true
    wk_assert_eq "" "$(cat "$WK_TMP/badexec.txt")" "$u (in the package): every Exec line runs a /usr/bin program"
done
if [[ -f $root/$CRON ]]; then
    wk_assert_contains "$root/$CRON" '^30 1 .* postgres /usr/bin/walkeep-basebackup --config /etc/walkeep/walkeep.conf ' \
        "cron file (in the package): the backup line names /usr/bin and /etc/walkeep/walkeep.conf"
    wk_assert_contains "$root/$CRON" '^30 2 .* postgres /usr/bin/walkeep-dump create --all ' \
        "cron file (in the package): the dump line names /usr/bin"
fi
# Text files only: units, cron file, man pages. (The man pages' first line, a roff
# comment, names the source file they were generated from: not held against them.)
grep -rIlE -- '@[A-Za-z_]+@' "$root" >"$WK_TMP/unsubstituted.txt" || true
wk_assert_eq "" "$(cat "$WK_TMP/unsubstituted.txt")" "every @VARIABLE@ substituted"
grep -rIF -e "$WK_TMP" -e _CPack_Packages -e "$WALKEEP_SRC/" -e "${WALKEEP_BIN:-/nonexistent/}" "$root" |
    grep -v '^[^:]*:\.\\"' >"$WK_TMP/leaks.txt" || true
wk_assert_eq "" "$(head -n 5 "$WK_TMP/leaks.txt")" "no build, source or staging folder named in the text files"

# --- 4. install ---------------------------------------------------------------
# A run of this test killed outright (ctest's timeout is SIGKILL: no exit trap) leaves the
# package installed and this stamp behind: that package is this test's to remove.
stamp=/var/lib/walkeep-test-package.installed
if [[ -e $stamp && $(pkg_state) != not-installed ]]; then
    wk__log "removing the package a killed run of this test left installed"
    dpkg_locked --purge walkeep >/dev/null 2>&1 || true
fi
rm -f "$stamp"
state=$(pkg_state)
[[ $state == not-installed ]] ||
    wk_bail "the package walkeep is installed here ($state): this test would replace and remove it; remove it first (dpkg --purge walkeep)"
: >"$WK_TMP/clash.txt"
while IFS= read -r f; do
    [[ ! -e /$f && ! -L /$f ]] || printf '/%s\n' "$f" >>"$WK_TMP/clash.txt"
done <"$WK_TMP/files.txt"
[[ ! -s $WK_TMP/clash.txt ]] ||
    wk_bail "files of the package are already on this machine (installed by hand?); the test would overwrite and then delete them: $(head -n 5 "$WK_TMP/clash.txt" | paste -sd' ')"

# From here on the package is purged at exit, whatever happens.
remove_package() {
    [[ $(pkg_state) != not-installed ]] || return 0
    wk__log "removing the package walkeep"
    if dpkg_locked --purge walkeep >/dev/null 2>"$WK_TMP/purge.err"; then
        rm -f "$stamp"
    else
        wk__log "error: dpkg --purge walkeep failed, the package is still installed: $(cat "$WK_TMP/purge.err")"
    fi
}
wk_on_exit remove_package
: >"$stamp"

started=$SECONDS
wk_assert_status 0 "dpkg -i installs the package (its Depends are satisfied here)" -- \
    dpkg_locked --install "$deb"
wk__log "dpkg -i took $((SECONDS - started)) s"
((WK_STATUS == 0)) || wk_bail "the package did not install"
wk_assert_eq installed "$(pkg_state)" "dpkg knows walkeep as installed"
wk_assert_eq "$version" "$(dpkg-query -W -f='${Version}' walkeep)" "installed version $version"

wk_assert_status 0 "/usr/bin/walkeep --version" -- /usr/bin/walkeep --version
wk_assert_eq "walkeep (walkeep) $version" "$(cat "$WK_OUT")" "/usr/bin/walkeep --version prints $version"
for p in "${PROGRAMS[@]}"; do
    wk_assert_status 0 "installed $p runs (--version)" -- "/usr/bin/$p" --version
    wk_assert_contains "$WK_OUT" " $version\$" "installed $p is version $version"
    wk_assert_file "/usr/share/man/man1/$p.1" "installed the man page $p(1)"
done
wk_assert_file /usr/share/man/man5/walkeep.conf.5 "installed the man page walkeep.conf(5)"

for u in "${SERVICES[@]}" "${TIMERS[@]}"; do
    wk_assert_file "/$unitdir/$u" "installed /$unitdir/$u"
done
for u in "${SERVICES[@]}"; do
    f=/$unitdir/$u
    [[ -f $f ]] || continue
    sed -nE 's/^Exec[A-Za-z]*=([^ ]+).*/\1/p' "$f" >"$WK_TMP/exec.txt"
    wk_assert_ge 1 "$(wc -l <"$WK_TMP/exec.txt")" "installed $u: has Exec lines"
    while IFS= read -r prog; do
        if [[ $prog == /usr/bin/* && -x $prog ]]; then
            wk_pass "installed $u: runs $prog, installed"
        else
            wk_fail "installed $u: runs $prog, installed" "expected an executable in /usr/bin"
        fi
    done <"$WK_TMP/exec.txt"
    wk_assert_contains "$f" '--config /etc/walkeep/walkeep\.conf( |$)' "installed $u: reads /etc/walkeep/walkeep.conf"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    units=()
    for u in "${SERVICES[@]}" "${TIMERS[@]}"; do units+=("/$unitdir/$u"); done
    wk_assert_status 0 "systemd-analyze verify accepts the installed units" -- systemd-analyze verify "${units[@]}"
fi
wk_assert_file "/$CRON" "installed the cron file /$CRON"
wk_assert_contains "/$CRON" ' postgres /usr/bin/walkeep-basebackup ' "installed cron file: names /usr/bin"
wk_assert_status 0 "dpkg --verify walkeep: the installed files are those of the package" -- \
    dpkg --verify walkeep

# --- 5. remove ----------------------------------------------------------------
wk_assert_status 0 "dpkg -r removes the package" -- dpkg_locked --remove walkeep
: >"$WK_TMP/left.txt"
while IFS= read -r f; do
    [[ ! -e /$f ]] || printf '/%s\n' "$f" >>"$WK_TMP/left.txt"
done <"$WK_TMP/files.txt"
wk_assert_eq "" "$(head -n 5 "$WK_TMP/left.txt")" "dpkg -r removed every file of the package"
if [[ -e /usr/share/walkeep ]]; then
    wk_fail "dpkg -r removed /usr/share/walkeep"
else
    wk_pass "dpkg -r removed /usr/share/walkeep"
fi
wk_assert_status 0 "dpkg --purge forgets the package" -- dpkg_locked --purge walkeep
wk_assert_eq not-installed "$(pkg_state)" "walkeep is no longer known to dpkg"

wk_done
