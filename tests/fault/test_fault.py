#!/usr/bin/env python3
"""test_fault -- a crash or a failure at any write, fsync, rename,
allocation or state commit loses nothing and counts nothing twice.

Needs the fault-injection build (-DDP_FAULT=ON, common/dp_fault.c).  One
small run (the sample reports, a copy of one of them under another name, a
file that is not a report; file sinks with a state, the quarantine, --done)
is first counted: how many calls of each kind it makes.  Then for every
kind, every N up to that count, and both actions:
  * crash: the process is killed (SIGKILL) at the N-th call, before it
    takes effect;
  * fail:  the N-th call fails as the system would (ENOSPC, EIO, NULL),
           and the run must end by itself, without a crash of its own;
the same run is started again without faults, and must end with the
plain run's rollups (merged per key), its reports feed (each report once),
every input moved to --done, every rejected one kept in the quarantine, and
no torn line.

Usage: test_fault.py DMARCPIPE SAMPLES [--kinds write,fsync,...] [--every K]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402

KINDS = ("write", "fsync", "rename", "commit", "malloc")
TIMEOUT = 120


def make_spool(samples, spool):
    shutil.copytree(samples, spool)
    first = sorted(n for n in os.listdir(samples) if n.endswith(".xml"))[0]
    shutil.copyfile(os.path.join(samples, first), os.path.join(spool, "zz-copy-of-" + first))
    with open(os.path.join(spool, "zz-not-a-report.xml"), "w") as f:
        f.write("<feedback><report_metadata>")


def args(dp, d):
    return [dp, "run", "--workers", "1", "--shards", "1", "--sink", "file:" + os.path.join(d, "out", "rollups.ndjson"),
            "--reports", os.path.join(d, "out", "reports.ndjson"), "--quarantine", os.path.join(d, "q"),
            "--state", os.path.join(d, "state"), "--done", os.path.join(d, "done"), os.path.join(d, "spool")]


def fresh(samples, d):
    for n in ("spool", "out", "q", "state", "done"):
        p = os.path.join(d, n)
        if os.path.exists(p):
            shutil.rmtree(p)
    make_spool(samples, os.path.join(d, "spool"))
    os.makedirs(os.path.join(d, "out"))


def run(cmd, env=None):
    p = subprocess.run(cmd, cwd=os.path.dirname(cmd[-1]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=TIMEOUT, env=dict(os.environ, **(env or {})))
    return p.returncode, p.stderr.decode("utf-8", "replace")


def outcome(d):
    """What a run left: rollups merged per key, report hashes, done and quarantine."""
    out = os.path.join(d, "out")
    errors = []
    rollups, reports = [], []
    for name, into in (("rollups.ndjson", rollups), ("reports.ndjson", reports)):
        p = os.path.join(out, name)
        if not os.path.exists(p):
            continue
        for i, line in enumerate(open(p, encoding="utf-8")):
            try:
                into.append(json.loads(line))
            except ValueError as e:
                errors.append(f"{name}:{i + 1}: {e}")
    def names(sub):
        """Names in a folder, but dot-names: never read as inputs, and in the
        quarantine what a process killed mid-write left before renaming."""
        p = os.path.join(d, sub)
        return sorted(n for n in os.listdir(p) if not n.startswith(".")) if os.path.isdir(p) else []
    return {"rollups": dptest.merge(rollups), "reports": sorted(r["sha256"] for r in reports), "done": names("done"),
            "quarantine": [n for n in names("q") if not n.endswith(".reason")], "spool": names("spool"),
            "errors": errors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dmarcpipe")
    ap.add_argument("samples")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--every", type=int, default=1, help="try every K-th point of each kind")
    a = ap.parse_args()
    dp, samples = os.path.abspath(a.dmarcpipe), os.path.abspath(a.samples)
    t = dptest.Harness("fault")
    with tempfile.TemporaryDirectory(prefix="dp-fault-") as d:
        fresh(samples, d)
        counts_file = os.path.join(d, "counts")
        rc, err = run(args(dp, d), {"DP_FAULT_COUNTS": counts_file})
        if not t.eq("the plain run: exit 1 (one input is not a report)", rc, 1) or not os.path.exists(counts_file):
            print(err)
            t.finish()
        truth = outcome(d)
        counts = dict((k, int(v)) for k, v in (l.split() for l in open(counts_file)))
        t.note("points: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in KINDS))
        t.check("the plain run: every input in --done", truth["spool"] == [] and len(truth["done"]) == 12,
                truth["done"])
        failures = []
        tried = 0
        for kind in a.kinds.split(","):
            for n in range(1, counts.get(kind, 0) + 1, a.every):
                for action in ("crash", "fail"):
                    tried += 1
                    fresh(samples, d)
                    label = f"{kind}:{n}:{action}"
                    try:
                        rc1, err1 = run(args(dp, d), {"DP_FAULT": label})
                        rc2, err2 = run(args(dp, d))
                    except subprocess.TimeoutExpired as e:
                        failures.append(f"{label}: hung ({e.cmd[1:3]})")
                        continue
                    if action == "fail" and rc1 < 0:
                        failures.append(f"{label}: the run crashed by itself (signal {-rc1}): {err1[-300:]}")
                    if rc2 not in (0, 1):
                        failures.append(f"{label}: the restart exited {rc2}: {err2[-300:]}")
                        continue
                    got = outcome(d)
                    for part in ("rollups", "reports", "done", "quarantine", "spool"):
                        if got[part] != truth[part]:
                            diff = dptest.diff_multisets(
                                sorted(map(repr, got[part].values() if part == "rollups" else got[part])),
                                sorted(map(repr, truth[part].values() if part == "rollups" else truth[part])), 2)
                            failures.append(f"{label}: {part} differ after the restart: {diff[:400]}")
                    if got["errors"]:
                        failures.append(f"{label}: torn lines: {got['errors'][:2]}")
        t.note(f"{tried} fault points tried")
        if os.environ.get("DP_FAULT_LOG"):
            with open(os.environ["DP_FAULT_LOG"], "w") as f:
                f.write("\n".join(failures))
        t.check(f"every fault point: the restart ends exact ({len(failures)} failed)", not failures,
                "\n".join(failures[:20]))
    t.finish()


if __name__ == "__main__":
    main()
