#!/usr/bin/env bash
# test_docs: the documentation matches the programs. Needs no PostgreSQL.
#
# - every man page generated from docs/man/ (scripts/man.sh) renders without a
#   single warning (groff -ww, and man -l --warnings=all), and the build made it;
# - every page of a program mentions every --option its --help prints;
# - the keys of docs/configuration.md's key table are exactly the keys of the
#   table in lib/config.c (and walkeep.conf(5) names each of them);
# - every file the pages of docs/ and docs/man/ name exists in the tree: relative
#   links (and their #anchors), paths such as docs/x.md, dist/..., scripts/...,
#   lib/x.c, bare page names (format.md) and man pages walkeep-x(N).
#
# WALKEEP_BIN=build WALKEEP_SRC=source bash tests/integration/test_docs.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

src=${WALKEEP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
[[ -n ${WALKEEP_BIN:-} ]] || wk_bail "WALKEEP_BIN is not set"

if ! command -v groff >/dev/null 2>&1 || ! command -v man >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends man-db groff-base >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
                apt-get install -y -qq --no-install-recommends man-db groff-base >/dev/null 2>&1; } ||
            true
    fi
    command -v groff >/dev/null 2>&1 || wk_bail "groff is not installed (apt-get install groff-base man-db)"
fi

# program -> its man page
declare -A page_of=(
    [walkeep-archive]=walkeep-archive.1
    [walkeep-fetch]=walkeep-fetch.1
    [walkeep-basebackup]=walkeep-basebackup.1
    [pitr-restore]=pitr-restore.1
    [walkeep-dump]=walkeep-dump.1
    [walkeep]=walkeep.1
)
pages=(walkeep-archive.1 walkeep-fetch.1 walkeep-basebackup.1 pitr-restore.1
       walkeep-dump.1 walkeep.1 walkeep.conf.5)

# ---------------------------------------------------------------------------
# generation and rendering

man_out=$(wk_tmpdir man)
wk_assert_status 0 "scripts/man.sh generates the pages" -- \
    sh "$src/scripts/man.sh" --version test "$man_out" "$src"/docs/man/*.md

for page in "${pages[@]}"; do
    wk_assert_file "$src/docs/man/$page.md" "source docs/man/$page.md exists"
    wk_assert_file "$man_out/$page" "$page is generated"
    wk_assert_file "$WALKEEP_BIN/man/$page" "the build generated man/$page"
    [[ -f $man_out/$page ]] || continue

    wk_assert_status 0 "$page: groff -man -ww runs" -- \
        env LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$man_out/$page"
    wk_assert_eq "" "$(cat "$WK_ERR")" "$page renders with groff without warnings"

    if command -v man >/dev/null 2>&1; then
        wk_assert_status 0 "$page: man -l runs" -- \
            env LC_ALL=C.UTF-8 MANWIDTH=80 man -l --warnings=all "$man_out/$page"
        wk_assert_eq "" "$(cat "$WK_ERR")" "$page renders with man -l --warnings=all without warnings"
        wk_assert_contains "$WK_OUT" '^NAME' "$page: man -l output has a NAME section"
    fi
    for sh in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        wk_assert_contains "$man_out/$page" "^\\.SH \"?$sh\"?\$" "$page has .SH $sh"
    done
    wk_assert_contains "$man_out/$page" '^\.TH "[A-Z.-]+" "[15]"' "$page has a .TH line"
done

# The page's text with roff escapes undone, for plain searching.
page_text() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\e/\\/g' -e 's/\\&//g' "$1"
}

# ---------------------------------------------------------------------------
# every option a program's --help prints is in its page

for prog in "${!page_of[@]}"; do
    page=${page_of[$prog]}
    bin=$WALKEEP_BIN/$prog
    if [[ ! -x $bin ]]; then
        wk_fail "$prog is built" "no executable $bin"
        continue
    fi
    wk_assert_status 0 "$prog --help exits 0" -- "$bin" --help
    mapfile -t opts < <(grep -oE -- '--[a-z][a-z0-9-]*' "$WK_OUT" | sed 's/-*$//' | sort -u)
    wk_assert_ge 3 "${#opts[@]}" "$prog --help lists options"
    text=$(page_text "$man_out/$page" 2>/dev/null || true)
    missing=()
    for opt in "${opts[@]}"; do
        grep -qF -- "$opt" <<<"$text" || missing+=("$opt")
    done
    wk_assert_eq "" "${missing[*]}" "$page mentions every option of $prog --help (${#opts[@]})"
done

# ---------------------------------------------------------------------------
# configuration keys: docs/configuration.md <-> lib/config.c

code_keys=$(awk '/^static const key_def keys\[\] = \{/ { on = 1; next }
                 on && /^\};/ { on = 0 }
                 on && match($0, /\{"[a-z0-9_]+"/) { print substr($0, RSTART + 2, RLENGTH - 3) }' \
    "$src/lib/config.c" | sort -u)
doc_keys=$(awk '/^## / { on = ($0 ~ /^## Keys/) }
                on && match($0, /^\| `[a-z0-9_]+` \|/) { print substr($0, RSTART + 3, RLENGTH - 6) }' \
    "$src/docs/configuration.md" | sort -u)
wk_assert_ge 10 "$(wc -l <<<"$code_keys")" "keys found in lib/config.c's key table"
wk_assert_ge 10 "$(wc -l <<<"$doc_keys")" "keys found in docs/configuration.md's key table"
only_code=$(comm -23 <(printf '%s\n' "$code_keys") <(printf '%s\n' "$doc_keys") | tr '\n' ' ')
only_doc=$(comm -13 <(printf '%s\n' "$code_keys") <(printf '%s\n' "$doc_keys") | tr '\n' ' ')
wk_assert_eq "" "$only_code" "every key of lib/config.c is in docs/configuration.md (missing there: ${only_code:-none})"
wk_assert_eq "" "$only_doc" "every key of docs/configuration.md is in lib/config.c (unknown to the code: ${only_doc:-none})"

conf_text=$(page_text "$man_out/walkeep.conf.5" 2>/dev/null || true)
missing=()
while IFS= read -r key; do
    [[ -n $key ]] || continue
    grep -qxF -- "$key" <<<"$conf_text" || missing+=("$key")
done <<<"$code_keys"
wk_assert_eq "" "${missing[*]}" "walkeep.conf(5) has an entry for every key of lib/config.c"

# ---------------------------------------------------------------------------
# every file the docs name exists
#
# A path counts as a reference to the tree when its first folder is one of the
# tree's top-level folders (or one docs are prone to invent: examples/, contrib/...)
# and nothing but a space, quote or bracket comes before it: /etc/..., <prefix>/...,
# s3://bucket/... are not. Paths under an install prefix (lib/systemd/system) are
# not the tree's. Up to a placeholder (<label>, ...) the path must exist; a * must
# match a file.

refs_out=$(python3 - "$src" <<'PY'
import glob, os, re, sys
src = sys.argv[1]
docs = sorted(glob.glob(os.path.join(src, "docs", "*.md")) +
              glob.glob(os.path.join(src, "docs", "man", "*.md")))
roots = {e for e in os.listdir(src)
         if os.path.isdir(os.path.join(src, e)) and not e.startswith((".", "build"))}
roots |= {"examples", "contrib", "conf", "config", "etc", "packaging", "tools", "doc", "man"}
installed = ("lib/systemd/system",)  # <prefix>/lib/systemd/system, by cmake --install
fence = re.compile(r"^\s*(```|~~~)")

def slugs(path):
    """The anchors GitHub gives the headings of a page (code blocks skipped)."""
    out, seen, in_code = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if fence.match(line):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    return out

def exists(rel):
    p = os.path.normpath(os.path.join(src, rel))
    return bool(glob.glob(p)) if "*" in rel else os.path.exists(p)

checked, bad = 0, []
for doc in docs:
    here = os.path.relpath(os.path.dirname(doc), src)
    name = os.path.relpath(doc, src)
    for no, line in enumerate(open(doc, encoding="utf-8"), 1):
        where = "%s:%d" % (name, no)
        # relative markdown links, from the page's folder
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue  # https:, mailto:
            checked += 1
            path, _, anchor = target.partition("#")
            rel = os.path.normpath(os.path.join(here, path)) if path else name
            if not os.path.exists(os.path.join(src, rel)):
                bad.append("%s: link %s" % (where, target))
            elif anchor and rel.endswith(".md") and anchor not in slugs(os.path.join(src, rel)):
                bad.append("%s: link %s (no such heading)" % (where, target))
        text = re.sub(r"\]\([^)\s]+\)", "]", line)
        # paths from the top of the tree
        for m in re.finditer(r"(?<![\w./~$<>@*-])([A-Za-z_][\w-]*)/([\w.*/<>-]*)", text):
            if m.group(1) not in roots:
                continue
            rel = (m.group(1) + "/" + m.group(2)).rstrip(".")
            rel = re.split(r"/[^/]*(?:<|\.\.\.)", rel)[0]
            if rel.startswith(installed):
                continue
            checked += 1
            if not exists(rel):
                bad.append("%s: %s" % (where, rel))
        # a bare page name (format.md): beside the page, in docs/ or at the top
        for m in re.finditer(r"(?<![\w./~$<>@*-])([\w-][\w.-]*\.md)\b(?![/\w])", text):
            checked += 1
            if not any(os.path.exists(os.path.join(src, d, m.group(1)))
                       for d in (here, "docs", ".")):
                bad.append("%s: %s" % (where, m.group(1)))
        # man pages of ours: walkeep-x(1), walkeep.conf(5), pitr-restore(1)
        for m in re.finditer(r"(?<![\w.-])((?:walkeep|pitr)[\w.-]*)\(([1-8])\)", text):
            checked += 1
            if not os.path.exists(os.path.join(src, "docs", "man", "%s.%s.md" % m.groups())):
                bad.append("%s: %s(%s)" % (where, m.group(1), m.group(2)))
print(checked)
print("\n".join(bad))
PY
)
refs_checked=$(head -n 1 <<<"$refs_out")
refs_bad=$(tail -n +2 <<<"$refs_out" | sed '/^$/d')
wk_assert_ge 100 "${refs_checked:-0}" "references to files found in docs/ and docs/man/"
refs_list=$(sed '/^$/d; s/.*/ [&]/' <<<"$refs_bad" | tr -d '\n')
wk_assert_eq "" "$refs_bad" "every file docs/ and docs/man/ name exists (missing:${refs_list:- none})"

# ---------------------------------------------------------------------------
# every message the programs print is in docs/troubleshooting.md
#
# scripts/messages.sh prints each message format of the sources with its
# conversions written <...>. Each must be found inside one `code span` of the
# page (whitespace collapsed), at its start or after ": " ("hint: ...", a prefix),
# and ending it or followed by ":" (": <reason>"). A <...> of a message matches
# any <name> of the page, or literal text without spaces (the page may write
# "<path>/walkeep.repo" for "%s/%s").

wk_assert_status 0 "scripts/messages.sh extracts the messages" -- sh "$src/scripts/messages.sh" "$src"
wk_assert_eq "" "$(cat "$WK_ERR")" "scripts/messages.sh finds every message format (none it cannot read)"
messages_file=$(wk_tmpdir messages)/messages
sort -u "$WK_OUT" >"$messages_file"
wk_assert_ge 300 "$(wc -l <"$messages_file")" "messages found in the sources"
missing_msgs=$(python3 - "$src/docs/troubleshooting.md" "$messages_file" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read().replace("\\|", "|")
text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)        # fenced examples
# the page's code spans, each on a line of its own: a message is written as one
page = "\n".join(" ".join(span.split()) for span in re.findall(r"`([^`]+)`", text))
hole = r"(?:<[^<>\n]*>|[^\s<>\"])*"
for msg in open(sys.argv[2], encoding="utf-8").read().splitlines():
    if not msg.strip():
        continue
    pattern = hole.join(re.escape(part) for part in re.split(r"<[^<>]*>", msg))
    if not re.search(r"(?:^|: )" + pattern + r"(?=$|:)", page, re.M):
        print(msg)
PY
)
missing_list=$(sed '/^$/d; s/.*/ [&]/' <<<"$missing_msgs" | tr -d '\n')
wk_assert_eq "" "$missing_msgs" \
    "docs/troubleshooting.md has every message of the sources (missing there:${missing_list:- none})"

wk_done
