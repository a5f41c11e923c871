#!/usr/bin/env python3
"""layers.py: lib/ keeps its layers (lib/README.md): every module is in the layer table
exactly once, and no #include "x.h" in lib/ reaches a higher layer. Prints one line per
check and "N passed, M failed"; exits 1 when a check failed.

python3 tests/layers.py [SOURCE_DIR]"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
lib = os.path.join(src, "lib")
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what + (": " + detail if detail else ""))


layer_of = {}
duplicates = []
for line in open(os.path.join(lib, "README.md"), encoding="utf-8"):
    m = re.match(r"^\| (\d+) [^|]*\| ([^|]+) \|", line)
    if not m:
        continue
    for name in m.group(2).split(","):
        name = name.strip()
        if name in layer_of:
            duplicates.append(name)
        layer_of[name] = int(m.group(1))
check(not duplicates, "no module is in two layers", ", ".join(duplicates))

modules = sorted(f[:-2] for f in os.listdir(lib) if f.endswith(".c"))
missing = [m for m in modules if m not in layer_of]
check(not missing, "every lib/ module has a layer in lib/README.md", ", ".join(missing))
stale = [m for m in layer_of if m not in modules]
check(not stale, "every module in the table exists", ", ".join(stale))

include = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)
upward = []
for module in modules:
    mine = layer_of.get(module)
    if mine is None:
        continue
    for ext in (".h", ".c"):
        path = os.path.join(lib, module + ext)
        if not os.path.exists(path):
            continue
        for target in include.findall(open(path, encoding="utf-8").read()):
            if target == module or target not in layer_of:
                continue  # itself, or a generated header (version.h)
            if layer_of[target] > mine:
                upward.append("%s%s (layer %d) includes %s.h (layer %d)"
                              % (module, ext, mine, target, layer_of[target]))
check(not upward, "no lib/ file includes a module of a higher layer", "; ".join(upward))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
