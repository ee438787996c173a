#!/usr/bin/env python3
"""Run tests/warehouse/queries_sqlite.sql (the sample queries of
deploy/warehouse/queries.sql, in SQLite) on a database made by
load_and_check.py --db, and check what they return against the loaded
rollups:

  * compliance: per domain, pass + fail = total, the dispositions add up
    to the total, and the domains add up to every message loaded;
  * failing_sources: the failing messages add up to the failures that
    compliance counts;
  * ready_to_tighten: every domain it lists meets the thresholds.

Prints the three results, then "ok", or the broken invariants (exit 1).

    check_queries.py DB [--min-pct P] [--min-messages N] [--min-reporters N] [--min-days N] [--quiet]
"""
import argparse
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_queries(path):
    """{name: sql} from "-- query: NAME" sections."""
    out, name, buf = {}, None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("-- query:"):
                if name:
                    out[name] = "".join(buf)
                name, buf = line.split(":", 1)[1].strip(), []
            elif name:
                buf.append(line)
    if name:
        out[name] = "".join(buf)
    return out


def run(db, sql, params):
    cur = db.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def show(title, rows):
    print("== %s (%d rows)" % (title, len(rows)))
    if not rows:
        return
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  " + " | ".join(c.ljust(width[c]) for c in cols))
    for r in rows:
        print("  " + " | ".join(str(r[c]).ljust(width[c]) for c in cols))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries_sqlite.sql"))
    ap.add_argument("--min-pct", type=float, default=98.0)
    ap.add_argument("--min-messages", type=int, default=1000)
    ap.add_argument("--min-reporters", type=int, default=2)
    ap.add_argument("--min-days", type=int, default=20)
    ap.add_argument("--quiet", action="store_true", help="print only the verdict")
    args = ap.parse_args()

    db = sqlite3.connect("file:%s?mode=ro" % args.db, uri=True)
    q = load_queries(args.queries)
    params = {
        "from_ts": -(1 << 62), "to_ts": 1 << 62, "since_ts": -(1 << 62),
        "min_pct": args.min_pct, "min_messages": args.min_messages,
        "min_reporters": args.min_reporters, "min_days": args.min_days,
    }
    compliance = run(db, q["compliance"], params)
    failing = run(db, q["failing_sources"], params)
    ready = run(db, q["ready_to_tighten"], params)
    if not args.quiet:
        show("compliance", compliance)
        show("failing_sources", failing)
        show("ready_to_tighten (min %g%%, %d messages, %d reporters, %d days)"
             % (args.min_pct, args.min_messages, args.min_reporters, args.min_days), ready)

    bad = []
    total = db.execute("SELECT COALESCE(SUM(messages), 0) FROM dmarc_rollups").fetchone()[0]
    if sum(r["total_messages"] for r in compliance) != total:
        bad.append("compliance: domains add up to %d messages, the table holds %d"
                   % (sum(r["total_messages"] for r in compliance), total))
    for r in compliance:
        if r["dmarc_pass"] + r["dmarc_fail"] != r["total_messages"]:
            bad.append("compliance: %s: pass %d + fail %d != total %d"
                       % (r["policy_domain"], r["dmarc_pass"], r["dmarc_fail"], r["total_messages"]))
        disp = (r["disposition_none"] + r["disposition_quarantine"] + r["disposition_reject"]
                + r["disposition_other"])
        if disp != r["total_messages"]:
            bad.append("compliance: %s: dispositions add up to %d, total %d"
                       % (r["policy_domain"], disp, r["total_messages"]))
    fails = sum(r["dmarc_fail"] for r in compliance)
    if len(failing) < 50 and sum(r["failing_messages"] for r in failing) != fails:
        bad.append("failing_sources: %d failing messages, compliance counts %d"
                   % (sum(r["failing_messages"] for r in failing), fails))
    for r in ready:
        if (r["dmarc_pass_pct"] < args.min_pct or r["total_messages"] < args.min_messages
                or r["reporters"] < args.min_reporters or r["days_with_data"] < args.min_days):
            bad.append("ready_to_tighten: %s does not meet the thresholds: %r" % (r["policy_domain"], r))
    if bad:
        for b in bad:
            print("FAIL " + b)
        return 1
    print("ok: queries ran; %d domains, %d failing sources, %d ready to tighten"
          % (len(compliance), len(failing), len(ready)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
