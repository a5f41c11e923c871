#!/bin/sh
# messages.sh: print every user-facing message format of walkeep, one per line,
# normalized: adjacent string literals joined, C escapes undone, and every printf
# conversion (%s, %d, %llu, %" PRIu64 ", %.*s, %zu, %08X ...) written <...>.
#
# The messages are the format arguments of wk_error_set, wk_error_sys,
# wk_error_prefix, wk_error_detail, wk_error_hint, wk_log and wk_notice at WK_LOG_ERROR
# or WK_LOG_WARNING, wk_cli_bad_argument, and fprintf(stderr, ...) in */main.c and
# admin/*.c. tests/ is not read.
#
# sh scripts/messages.sh [SOURCE_DIR]        (default: the tree this script is in)
# With -v, each line is prefixed with "file:line: ".
# Formats that are not string literals are reported on stderr and skipped.
set -eu
verbose=0
if [ "${1:-}" = "-v" ]; then verbose=1; shift; fi
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec python3 - "$src" "$verbose" <<'PY'
import os, re, sys

src, verbose = sys.argv[1], sys.argv[2] == "1"

# function -> index of the format argument
FMT_ARG = {
    "wk_error_set": 2, "wk_error_sys": 3, "wk_error_prefix": 1,
    "wk_error_detail": 1, "wk_error_hint": 1, "wk_log": 1, "wk_notice": 1,
    "wk_cli_bad_argument": 1, "fprintf": 1,
}
CALL = re.compile(r"\b(" + "|".join(FMT_ARG) + r")\s*\(")
CONV = re.compile(r"%(%|[-+ #0']*(\*|\d+)?(\.(\*|\d*))?(hh|h|ll|l|j|z|t|L|q)?[diouxXeEfFgGcspaAn])")
ESC = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "?": "?", "0": "\0", "a": "\a", "r": "\r"}


def strip_comments(text):
    """Blank out comments, keeping strings, char literals and line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_args(text, start):
    """Arguments of the call whose '(' is at text[start-1]; raw text of each."""
    args, depth, i, cur = [], 0, start, []
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur))
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    return None


def unescape(body):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            e = body[i + 1]
            if e == "x":
                m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
                out.append(chr(int(m.group(0), 16)))
                i += 2 + len(m.group(0))
                continue
            out.append(ESC.get(e, e))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(PRI[diouxX](?:8|16|32|64|MAX|PTR)|SCN\w+))', re.S)


def literal(arg):
    """The joined literal of a format argument, or None if it is not one."""
    arg = arg.strip()
    parts, pos = [], 0
    while pos < len(arg):
        m = TOKEN.match(arg, pos)
        if not m or m.end() == pos:
            return None
        if m.group(2):
            parts.append("d")            # %" PRIu64 " -> %d
        else:
            parts.append(m.group(1))
        pos = m.end()
        if not arg[pos:].strip():
            break
    if not parts:
        return None
    return "".join(parts)


def normalize(raw):
    # conversions first (on the escaped text, so that "\\%" cannot confuse it),
    # then C escapes
    s = CONV.sub(lambda m: "%" if m.group(1) == "%" else "<...>", raw)
    s = unescape(s)
    return " ".join(s.split())


files = []
for top in sorted(os.listdir(src)):
    path = os.path.join(src, top)
    if top in ("tests", "build", "dist") or top.startswith(("build", ".")) or not os.path.isdir(path):
        continue
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "tests")
        files += [os.path.join(root, f) for f in sorted(names) if f.endswith(".c")]

SNPRINTF = re.compile(r"\bsnprintf\s*\(")
FUNC_DEF = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\(([^;{)]*)\)\s*\{", re.M)


def alternatives(arg):
    """The literals of a format argument: one, or those of a ?: chain."""
    one = literal(arg)
    if one is not None:
        return [one]
    pieces, cur, depth, i = [], [], 0, 0
    while i < len(arg):
        c = arg[i]
        if c in "\"'":
            j = i + 1
            while j < len(arg) and arg[j] != c:
                j += 2 if arg[j] == "\\" else 1
            cur.append(arg[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c in "?:" and depth == 0:
            pieces.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    pieces.append("".join(cur))
    found = [literal(p) for p in pieces[1:]]
    return [f for f in found if f is not None] or None


def emit(rel, line, raw):
    msg = normalize(raw)
    # fprintf(stderr, "%s: error: ...\n", progname, ...): the program's prefix is
    # not part of the message
    msg = re.sub(r"^<\.\.\.>: (error|warning|detail|hint): ", "", msg)
    if re.search(r"[A-Za-z]", msg):                   # "%s", ": %s" ... carry no text
        print(f"{rel}:{line}: {msg}" if verbose else msg)


def enclosing(text, pos):
    last = None
    for m in FUNC_DEF.finditer(text, 0, pos):
        last = m
    return last


def resolve(text, rel, name, args, idx, pos, line, wrappers):
    """Emit the messages of one call; learn wrappers of a format parameter."""
    arg = args[idx].strip()
    alts = alternatives(arg)
    if alts is None and re.fullmatch(r"\w+", arg):
        # char what[256]; snprintf(what, sizeof(what), "...", ...); f(..., what)
        before = text[max(0, pos - 1000):pos]
        hits = [m for m in SNPRINTF.finditer(before)]
        for m in reversed(hits):
            sargs = split_args(before, m.end())
            if sargs and len(sargs) > 2 and sargs[0].strip() == arg:
                return resolve(before, rel, "snprintf", sargs, 2, m.start(), line, wrappers)
        fn = enclosing(text, pos)
        if fn:
            params = [p.strip() for p in fn.group(2).split(",")]
            for k, p in enumerate(params):
                if re.search(r"\b" + arg + r"$", p):
                    wrappers[fn.group(1)] = k  # a wrapper: its callers give the format
                    return
    if alts is None:
        print(f"{rel}:{line}: {name}: format is not a literal: {' '.join(arg.split())}",
              file=sys.stderr)
        return
    for raw in alts:
        if raw == "%s" and len(args) > idx + 1 and literal(args[idx + 1]) is not None:
            raw = literal(args[idx + 1]).replace("%", "%%")   # f(..., "%s", "text")
        elif name == "wk_cli_bad_argument":
            raw = raw.replace("%", "%%")    # printed with "%s": not a format
        emit(rel, line, raw)


for path in files:
    rel = os.path.relpath(path, src)
    stderr_ok = rel.endswith("/main.c") or rel.startswith("admin/")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = strip_comments(f.read())
    wrappers = {}
    for m in CALL.finditer(text):
        name = m.group(1)
        line = text.count("\n", 0, m.start()) + 1
        prev = text[:m.start()].rstrip()
        if re.search(r"\b(int|void)\s*\*?\s*$", prev):
            continue                                  # a definition or declaration
        args = split_args(text, m.end())
        if args is None:
            continue
        idx = FMT_ARG[name]
        if name in ("wk_log", "wk_notice") and args[0].strip() not in ("WK_LOG_ERROR", "WK_LOG_WARNING"):
            continue
        if name == "fprintf" and (not stderr_ok or args[0].strip() != "stderr"):
            continue
        if len(args) <= idx:
            continue
        resolve(text, rel, name, args, idx, m.start(), line, wrappers)
    # calls of wrappers found above (static int bad(const char *fmt, ...))
    for wname, idx in wrappers.items():
        for m in re.finditer(r"\b" + wname + r"\s*\(", text):
            prev = text[:m.start()].rstrip()
            if re.search(r"\b(int|void)\s*\*?\s*$", prev):
                continue
            args = split_args(text, m.end())
            if args is None or len(args) <= idx:
                continue
            line = text.count("\n", 0, m.start()) + 1
            resolve(text, rel, wname, args, idx, m.start(), line, {})
PY
