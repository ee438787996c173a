#!/usr/bin/env python3
"""Parity test: dmarcpipe's parser against the independent parser, record by record.

Usage
-----
  compare_parse.py DMARCPIPE FILE...
  compare_parse.py DMARCPIPE --manifest CORPUS_DIR
  compare_parse.py --self-test [FILE... | --manifest CORPUS_DIR]

For each file, `DMARCPIPE parse FILE` must print NDJSON, one object per
record, in document order.  Its output is compared with independent.py's
(salvage rules on, since dmarcpipe applies the same two) on:
  * the number of records,
  * the sum of <count>,
  * every key in independent.RECORD_KEYS, per record, in order.
Keys dmarcpipe prints beyond those are ignored, and so are extra keys inside
the override / auth-result objects.  A key that is missing counts as a
mismatch: the NDJSON contract says every listed key is always present.

Files the independent parser rejects are skipped: dmarcpipe may legitimately
be more lenient (it documents its salvage rules), and there is nothing to
compare against.  --manifest takes every row of CORPUS_DIR/MANIFEST.tsv, so
the reject rows the salvage rules recover are compared too.

--self-test runs the same machinery with the independent parser itself in
the role of dmarcpipe (through a subprocess and NDJSON, like the real thing),
then checks that the comparison does catch a planted difference.  It proves
the harness works before the C binary exists.

Prints one line per mismatching file and a final "N passed, M failed, K
skipped" line.  Exit status: 0 all passed, 1 any mismatch, 2 usage or
environment error.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys

# ctest runs this from the source tree; leave no __pycache__ behind there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import independent  # noqa: E402  (needs the path tweak above)

INDEPENDENT = os.path.abspath(independent.__file__)
# Keys of the objects inside the list-valued keys; anything else dmarcpipe
# puts there (lang attributes, say) is not part of the comparison.
NESTED_KEYS = {
    "overrides": ("type", "comment"),
    "dkim_results": ("domain", "selector", "result", "human_result"),
    "spf_results": ("domain", "scope", "result", "human_result"),
}
MAX_DIFFS_SHOWN = 5


def _project(key, value):
    """Reduce dmarcpipe's value to what the independent parser produces."""
    if key in NESTED_KEYS and isinstance(value, list):
        keys = NESTED_KEYS[key]
        return [{k: v.get(k, "<missing>") for k in keys} if isinstance(v, dict) else v
                for v in value]
    return value


def compare_records(want: list[dict], got: list[dict]) -> list[str]:
    """Human-readable differences between two record lists; empty when equal."""
    diffs = []
    if len(want) != len(got):
        diffs.append(f"record count: independent {len(want)}, dmarcpipe {len(got)}")

    def count_sum(recs):
        total = 0
        for r in recs:
            c = r.get("count")
            # bool is an int subclass; a JSON true is not a count.
            if not isinstance(c, int) or isinstance(c, bool):
                return None
            total += c
        return total

    ws, gs = count_sum(want), count_sum(got)
    if ws != gs:
        diffs.append(f"sum of counts: independent {ws}, dmarcpipe {gs}")
    for i, (w, g) in enumerate(zip(want, got)):
        for key in independent.RECORD_KEYS:
            if key not in g:
                diffs.append(f"record {i}: key {key!r} missing")
                continue
            gv = _project(key, g[key])
            if gv != w[key]:
                diffs.append(f"record {i}: {key}: independent {json.dumps(w[key])}, "
                             f"dmarcpipe {json.dumps(gv)}")
    return diffs


def run_ndjson(cmd: list[str], timeout: float) -> list[dict]:
    """Run cmd and parse its stdout as NDJSON; raise RuntimeError on any failure."""
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:g}s") from None
    except OSError as e:
        raise RuntimeError(f"cannot run {cmd[0]}: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"exit status {proc.returncode}"
                           + (f": {err[-1]}" if err else ""))
    records = []
    for n, line in enumerate(proc.stdout.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError) as e:
            raise RuntimeError(f"stdout line {n} is not JSON: {e}") from None
        if not isinstance(obj, dict):
            raise RuntimeError(f"stdout line {n} is not a JSON object")
        records.append(obj)
    return records


def manifest_files(corpus_dir: str) -> list[str]:
    return [os.path.join(corpus_dir, row["path"])
            for row in independent.read_manifest(corpus_dir)]


def compare_files(command_for, files: list[str], timeout: float, verbose: bool) -> int:
    passed = failed = skipped = 0
    for path in files:
        try:
            _, want = independent.parse_file(path, salvage=True)
        except (independent.Reject, OSError) as e:
            skipped += 1
            if verbose:
                print(f"skip {path}: independent parser rejects it: {e}")
            continue
        try:
            got = run_ndjson(command_for(path), timeout)
            diffs = compare_records(want, got)
        except RuntimeError as e:
            diffs = [f"dmarcpipe failed: {e}"]
        if diffs:
            failed += 1
            extra = len(diffs) - MAX_DIFFS_SHOWN
            print(f"FAIL {path}: " + "; ".join(diffs[:MAX_DIFFS_SHOWN])
                  + (f"; ... {extra} more" if extra > 0 else ""))
        else:
            passed += 1
            if verbose:
                print(f"ok   {path} ({len(want)} records)")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


def planted_difference_is_caught() -> bool:
    """The comparator must notice a changed value, a missing key and a lost record."""
    base = [{k: None for k in independent.RECORD_KEYS} for _ in range(2)]
    for r in base:
        r.update(count=3, source_ip="192.0.2.1", overrides=[], dkim_results=[], spf_results=[])
    if compare_records(base, copy.deepcopy(base)):
        return False
    changed = copy.deepcopy(base)
    changed[1]["source_ip"] = "192.0.2.2"
    missing = copy.deepcopy(base)
    del missing[0]["policy_np"]
    return all(compare_records(base, bad) for bad in (changed, missing, base[:1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Compare dmarcpipe's parse output with the independent parser.")
    ap.add_argument("binary", nargs="?", help="path to the dmarcpipe executable")
    ap.add_argument("files", nargs="*", metavar="FILE")
    ap.add_argument("--manifest", metavar="CORPUS_DIR",
                    help="compare every file listed in CORPUS_DIR/MANIFEST.tsv")
    ap.add_argument("--self-test", action="store_true",
                    help="use the independent parser in place of dmarcpipe")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds allowed per dmarcpipe run (default 120)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    if args.self_test:
        # There is no binary in this mode, so a first positional is a file.
        files = ([args.binary] if args.binary else []) + args.files
        if not planted_difference_is_caught():
            print("self-test: the comparator missed a planted difference", file=sys.stderr)
            return 1

        def command_for(path):
            return [sys.executable, INDEPENDENT, "--records", path]
    else:
        if not args.binary:
            ap.error("the dmarcpipe binary is required (or --self-test)")
        if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
            print(f"error: {args.binary} is not an executable file", file=sys.stderr)
            return 2
        files = args.files
        binary = os.path.abspath(args.binary)

        def command_for(path):
            return [binary, "parse", path]

    if args.manifest:
        files = files + manifest_files(args.manifest)
    if not files:
        ap.error("no files to compare (give FILEs or --manifest CORPUS_DIR)")
    return compare_files(command_for, files, args.timeout, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
