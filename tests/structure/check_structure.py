#!/usr/bin/env python3
"""check_structure.py -- the layout of the code holds.

Usage: check_structure.py SOURCE_DIR [BUILD_DIR]

The folders are floors of a house, and the stages between them follow the
data, one way:

    cli/                          the program: uses everything below
    run/                          the conductor: wires the stages
    insight/                      the decision, read from the feeds: the
                                  ground floor only (the feeds are text)
    source/ -> ingest/ -> aggregate/ -> sink/     the stages, in flow order
                         enrich/  names source IPs (PTR, AS, service): a
                                  library that aggregate/ asks, on the
                                  ground floor only
    common/                       the ground floor: utilities, dp_report.h

Checks, each printed as ok or FAIL with what broke it:
  includes    a file includes only headers of its own folder, the ground
              floor, and (a stage) the stages downstream of it in the flow,
              (run/) any stage, (cli/) anything; enrich/ is included by
              aggregate/, run/ and cli/ only; so nothing in common/
              includes a stage's header
  sources     struct dp_source_ops exists, and the file source fills one
  vtables     `->ops->` appears only in sink/ and source/, the modules whose
              wrappers are the only callers of their vtables
  file size   no product .c file is over 800 lines (ingest/report_xml.c,
              the one-concept XML handler, excepted)
  wording     no issue numbers in code or docs (the word, then a number)
  prefixes    (with BUILD_DIR) every name an object file exports carries its
              file's prefix: dp_fs.c exports dp_fs_*, table.c dp_table_*
Exit status: 0 when every check holds, 1 otherwise.
"""
import glob
import os
import re
import subprocess
import sys

STAGES = ["source", "ingest", "aggregate", "sink"]  # in the order data flows
PRODUCT = ["common", "enrich"] + STAGES + ["run", "insight", "cli"]
ENRICH_USERS = {"aggregate", "run", "cli"}  # who may include enrich/
MAX_LINES = 800
LINE_LIMIT_EXCEPTIONS = {"ingest/report_xml.c"}
VTABLE_OWNERS = {"sink", "source"}
TEXT_EXT = (".c", ".h", ".md", ".py", ".sh", ".sql", ".cmake", ".txt", ".in", ".yaml", ".yml", ".toml")
TEXT_NAMES = ("run", "run-all", "start", "stop", "quickstart", "install-deps", "Dockerfile")

failures = []


def fail(check, msg):
    failures.append(f"{check}: {msg}")


def allowed_folders(folder):
    if folder == "common":
        return {"common"}
    if folder == "enrich":
        return {"common", "enrich"}
    enrich = {"enrich"} if folder in ENRICH_USERS else set()
    if folder in STAGES:
        return {"common", folder} | set(STAGES[STAGES.index(folder) + 1:]) | enrich
    if folder == "run":
        return {"common", "run"} | set(STAGES) | enrich
    if folder == "insight":
        return {"common", "insight"}
    return set(PRODUCT)  # cli


def product_files(src, exts):
    for folder in PRODUCT:
        for path in sorted(glob.glob(os.path.join(src, folder, "*"))):
            if path.endswith(exts):
                yield folder, path


def check_includes(src):
    owner = {}  # header name -> folder
    for folder, path in product_files(src, (".h", ".h.in")):
        owner[os.path.basename(path).replace(".h.in", ".h")] = folder
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for folder, path in product_files(src, (".c", ".h")):
        text = open(path, encoding="utf-8", errors="replace").read()
        for name in inc.findall(text):
            there = owner.get(os.path.basename(name))
            if there is None:
                fail("includes", f"{rel(src, path)} includes \"{name}\", which is no product header")
            elif there not in allowed_folders(folder):
                fail("includes", f"{rel(src, path)} ({folder}/) includes {there}/{name}")


def check_sources(src):
    header = read(src, "source/source.h")
    if not re.search(r"typedef\s+struct\s+dp_source_ops\s*\{", header):
        fail("sources", "source/source.h declares no struct dp_source_ops")
    impl = read(src, "source/file_source.c")
    if not re.search(r"static\s+const\s+dp_source_ops\s+\w+\s*=\s*\{", impl):
        fail("sources", "source/file_source.c fills no dp_source_ops")


def check_vtables(src):
    for folder, path in product_files(src, (".c", ".h")):
        if folder in VTABLE_OWNERS:
            continue
        for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
            if "->ops->" in line:
                fail("vtables", f"{rel(src, path)}:{n} calls a vtable directly: {line.strip()}")


def check_sizes(src):
    for folder, path in product_files(src, (".c",)):
        n = sum(1 for _ in open(path, encoding="utf-8", errors="replace"))
        if n > MAX_LINES and rel(src, path) not in LINE_LIMIT_EXCEPTIONS:
            fail("file size", f"{rel(src, path)} has {n} lines (at most {MAX_LINES})")


def check_wording(src):
    files = subprocess.run(["git", "-C", src, "ls-files"], capture_output=True, text=True).stdout.split()
    if not files:  # not a checkout: every file below
        files = [rel(src, os.path.join(d, f)) for d, _, fs in os.walk(src) for f in fs]
    pattern = re.compile(r"\bissues?\s*#?\s*\d+\b", re.I)
    for f in files:
        if f.startswith(("tests/data/", ".git/")) or "/build" in f:
            continue
        if not (f.endswith(TEXT_EXT) or os.path.basename(f) in TEXT_NAMES):
            continue
        path = os.path.join(src, f)
        if not os.path.isfile(path):
            continue
        for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
            m = pattern.search(line)
            if m:
                fail("wording", f"{f}:{n} names an issue number: {m.group(0)!r}")


def check_prefixes(src, build):
    objects = glob.glob(os.path.join(build, "**", "CMakeFiles", "*.dir", "*.c.o"), recursive=True)
    seen = 0
    for obj in objects:
        rel_dir = os.path.relpath(os.path.dirname(os.path.dirname(os.path.dirname(obj))), build)
        if rel_dir not in PRODUCT:
            continue
        seen += 1
        stem = os.path.basename(obj)[: -len(".c.o")]
        prefix = "dp_" + (stem[3:] if stem.startswith("dp_") else stem)
        out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            name = parts[2]
            if name == "main" and stem == "dmarcpipe":
                continue
            if name.startswith("__"):  # the compiler's own (__odr_asan.*, sanitizer hooks)
                continue
            low = name.lower()
            if not (low == prefix or low.startswith(prefix + "_")):
                fail("prefixes", f"{rel_dir}/{stem}.c exports {name}, not {prefix}_*")
    if seen == 0:
        fail("prefixes", f"no product object files under {build}")


def read(src, relpath):
    try:
        return open(os.path.join(src, relpath), encoding="utf-8").read()
    except OSError:
        fail("files", f"{relpath} is missing")
        return ""


def rel(src, path):
    return os.path.relpath(path, src)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src = os.path.abspath(sys.argv[1])
    checks = [("includes", check_includes), ("sources", check_sources), ("vtables", check_vtables),
              ("file size", check_sizes), ("wording", check_wording)]
    if len(sys.argv) == 3:
        checks.append(("prefixes", lambda s: check_prefixes(s, os.path.abspath(sys.argv[2]))))
    for name, fn in checks:
        before = len(failures)
        fn(src)
        print(f"{'ok  ' if len(failures) == before else 'FAIL'} {name}")
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
