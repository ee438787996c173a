#!/usr/bin/env python3
"""expected.py — what `dmarcpipe run` must count, worked out without it.

The only input is `dmarcpipe parse` (the ingest stage, tested on its own by
tests/corpus against an independent parser), run once per input file, in
the order `run` takes its inputs:

  * SOURCEs in the order given; a directory is walked recursively, entries
    sorted by name as bytes, hidden entries (a leading '.') skipped;
  * within one input, reports in the order parse prints them.

parse prints only the records of reports that were accepted whole, each
with its report's fields flattened in.  Records are grouped into reports by
(input, part); a report's identity is org_name + report_id + policy_domain +
begin; the first report with an identity counts and every later one is a
duplicate.  From the reports that count this computes:

  total_messages           the sum of every count
  by_ip_domain             messages per (source_ip, policy_domain)
  by_reporter_domain       messages per (org_name, policy_domain)
  reports                  each counted report: input, part, identity, messages

None of these depend on the time window: a record's count is split over
windows with shares that sum to the count exactly.

Limitation: a report with no records prints nothing, so its identity is
unknown here.  Such reports are counted per input (from `parse --summary`)
and listed under `recordless`; if one of them shares an identity with a
later report, only the engine knows, and a comparison will say so.

Usage: expected.py DMARCPIPE SOURCE... (prints JSON).  Tests import it.
"""
import collections
import concurrent.futures
import json
import os
import subprocess
import sys


def walk(path):
    """The files under path, in the order the file source lists them."""
    if not os.path.isdir(path):
        return [path]
    out = []
    names = sorted(os.listdir(os.fsencode(path)))
    for name in names:
        if name.startswith(b"."):
            continue
        out.extend(walk(os.path.join(path, os.fsdecode(name))))
    return out


def inputs_of(sources):
    files = []
    for s in sources:
        files.extend(walk(str(s)))
    return files


def parse_one(dmarcpipe, path):
    """(records, summary) of one input: parse's NDJSON and its --summary line."""
    p = subprocess.run([dmarcpipe, "parse", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=600)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"dmarcpipe parse {path}: exit status {p.returncode}")
    records = [json.loads(l) for l in p.stdout.decode("utf-8").splitlines() if l.strip()]
    s = subprocess.run([dmarcpipe, "parse", "--summary", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=600)
    lines = [l for l in s.stdout.decode("utf-8").splitlines() if l.strip()]
    summary = json.loads(lines[0]) if lines else {"reports": 0, "records": 0, "messages": 0}
    return records, summary


def identity(rec):
    return (rec["org_name"], rec["report_id"], rec["policy_domain"], rec["begin"])


def compute(dmarcpipe, sources, jobs=None):
    inputs = inputs_of(sources)
    jobs = jobs or max(2, os.cpu_count() or 2)
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        parsed = list(ex.map(lambda p: parse_one(dmarcpipe, p), inputs))

    seen = {}  # identity -> index into counted
    counted, duplicates, recordless = [], [], []
    by_ip_domain = collections.Counter()
    by_reporter_domain = collections.Counter()
    total = 0
    for path, (records, summary) in zip(inputs, parsed):
        # reports of this input, in order: consecutive records of one part
        reports = []
        for rec in records:
            key = (rec["input"], rec["part"], identity(rec))
            if not reports or reports[-1][0] != key:
                reports.append((key, []))
            reports[-1][1].append(rec)
        if summary.get("reports", 0) > len(reports):
            recordless.append({"input": path, "reports": summary["reports"] - len(reports)})
        for (inp, part, ident), recs in reports:
            msgs = sum(r["count"] for r in recs)
            entry = {"input": inp, "part": part, "identity": list(ident),
                     "records": len(recs), "messages": msgs}
            if ident in seen:
                duplicates.append(entry)
                continue
            seen[ident] = len(counted)
            counted.append(entry)
            total += msgs
            for r in recs:
                by_ip_domain[(r["source_ip"], r["policy_domain"])] += r["count"]
                by_reporter_domain[(r["org_name"], r["policy_domain"])] += r["count"]
    return {
        "inputs": inputs,
        "total_messages": total,
        "by_ip_domain": {k: v for k, v in by_ip_domain.items()},
        "by_reporter_domain": {k: v for k, v in by_reporter_domain.items()},
        "reports": counted,
        "duplicates": duplicates,
        "recordless": recordless,
    }


def _sortkey(item):
    return tuple("" if x is None else str(x) for x in item[0])


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    res = compute(argv[1], argv[2:])
    res["by_ip_domain"] = [[k[0], k[1], v] for k, v in sorted(res["by_ip_domain"].items(), key=_sortkey)]
    res["by_reporter_domain"] = [[k[0], k[1], v]
                                 for k, v in sorted(res["by_reporter_domain"].items(), key=_sortkey)]
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
