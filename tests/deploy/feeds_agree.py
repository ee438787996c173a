#!/usr/bin/env python3
"""Two dmarcpipe output folders (the embedded sink's dmarcpipe-out) hold the
same counts: the container's run against the host's build on the same files.

    feeds_agree.py WANT_DIR GOT_DIR

Rollups are summed per key (every field but the counts and the first/last
seen times), so a flush boundary that splits a key does not matter; the
reports feed is compared per report (its SHA-256) with its record and
message totals; the quarantine by file name.  The `input` and `part` fields
name paths, which differ between the host and the container, and are left
out.  Prints one line with the totals and exits 0, or the differences and
exits 1.
"""
import json
import os
import sys

COUNTS = ("messages", "records")
TIMES = ("first_seen", "last_seen")


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def rollups(out):
    per_key = {}
    for r in lines(os.path.join(out, "rollups.ndjson")):
        key = json.dumps({k: v for k, v in r.items() if k not in COUNTS + TIMES}, sort_keys=True)
        acc = per_key.setdefault(key, {c: 0 for c in COUNTS})
        for c in COUNTS:
            acc[c] += r[c]
    return per_key


def reports(out):
    per_sha = {}
    for r in lines(os.path.join(out, "reports.ndjson")):
        per_sha.setdefault(r["sha256"], []).append((r["records"], r["messages"]))
    return {k: sorted(v) for k, v in per_sha.items()}


def quarantine(out):
    q = os.path.join(out, "quarantine")
    return sorted(os.listdir(q)) if os.path.isdir(q) else []


def diff(label, want, got):
    problems = []
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            problems.append(f"{label} {k}: want {want.get(k)}, got {got.get(k)}")
    return problems


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: feeds_agree.py WANT_DIR GOT_DIR")
    want, got = sys.argv[1], sys.argv[2]
    wr, gr = rollups(want), rollups(got)
    problems = diff("rollup", wr, gr)
    problems += diff("report", reports(want), reports(got))
    wq, gq = quarantine(want), quarantine(got)
    if wq != gq:
        problems.append(f"quarantine: want {wq}, got {gq}")
    messages = sum(v["messages"] for v in wr.values())
    records = sum(v["records"] for v in wr.values())
    if not wr or messages == 0:
        problems.append(f"nothing counted in {want}: the comparison would prove nothing")
    if problems:
        print("\n".join(problems[:40]))
        sys.exit(1)
    print(f"{len(wr)} rollup keys, {records} records, {messages} messages, "
          f"{len(reports(want))} reports, {len(wq)} quarantined: the same")


if __name__ == "__main__":
    main()
