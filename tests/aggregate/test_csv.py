#!/usr/bin/env python3
"""test_csv — the CSV sink carries the same rows as the NDJSON sink.

One run over the corpus plus a crafted report with awkward text (a
reporter with a comma and quotes, an override list joined by ',', a
header_from with a quote, non-ASCII), with two sinks, file:x.ndjson and
file:x.csv.  The CSV, read with Python's csv module:
  * has a header line whose columns are the NDJSON keys, in their order;
  * has one row per NDJSON line, and the same multiset of rows when an
    empty field is read as null and the numeric columns as integers;
  * for 1d and for 1h windows.
And a run with only a CSV sink writes the same file as the run with both.

usage: test_csv.py DMARCPIPE CORPUS_DIR
"""
import collections
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

DAY0 = 1600000000 - 1600000000 % 86400


def awkward(d):
    org = 'Mail, "Quoted" & Co'
    recs = [
        {"ip": "192.0.2.31", "count": 3, "header_from": 'we"ird.example'},
        {"ip": "2001:db8::31", "count": 4, "header_from": "bücher.example"},
    ]
    xml = dptest.report_xml(org, "csv-awkward", "example.com", DAY0, DAY0 + 86400, recs)
    # the first record gets two override reasons: its key is "forwarded,mailing_list"
    xml = xml.replace("<spf>pass</spf></policy_evaluated>",
                      "<spf>pass</spf><reason><type>mailing_list</type><comment>a, b</comment>"
                      "</reason><reason><type>forwarded</type></reason></policy_evaluated>", 1)
    dptest.write(os.path.join(d, "awkward.xml"), xml)
    return d


def load_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0] if rows else [], rows[1:]


def typed(header, row):
    out = {}
    for k, v in zip(header, row):
        if v == "":
            out[k] = None
        elif k in dptest.INT_FIELDS:
            out[k] = int(v)
        else:
            out[k] = v
    return out


def canon(d):
    return tuple((k, d[k]) for k in sorted(d))


def run_all(t, dmarcpipe, corpus):
    with dptest.scratch("csv") as tmp:
        sources = [corpus, awkward(os.path.join(tmp, "awkward"))]
        for window in ("1d", "1h"):
            out = os.path.join(tmp, f"both-{window}")
            r = dptest.run(dmarcpipe, out, sources, "--workers", 2, "--shards", 3,
                           "--window", window, sink="x.ndjson", extra_sinks=["x.csv"])
            tag = f"csv {window}"
            t.check(f"{tag}: ran", r.rc in (0, 1) and r.rollups, r.describe())
            header, rows = load_csv(os.path.join(out, "x.csv"))
            keys = list(r.rollups[0].keys()) if r.rollups else []
            t.eq(f"{tag}: header = NDJSON keys in order", header, keys)
            t.eq(f"{tag}: header = the documented schema", header, list(dptest.ROLLUP_FIELDS))
            t.check(f"{tag}: every row has {len(header)} fields",
                    all(len(x) == len(header) for x in rows),
                    [x for x in rows if len(x) != len(header)][:3])
            t.eq(f"{tag}: one row per NDJSON line", len(rows), len(r.rollups))
            got = [canon(typed(header, x)) for x in rows]
            want = [canon(x) for x in r.rollups]
            t.check(f"{tag}: same rows as NDJSON ({len(want)})",
                    collections.Counter(got) == collections.Counter(want),
                    dptest.diff_multisets(want, got))
            aw = [x for x in r.rollups if x["reporter"] == 'Mail, "Quoted" & Co']
            t.eq(f"{tag}: the awkward report's rollups are there",
                 dptest.sums_by(aw, ("source_ip", "header_from", "override")),
                 {("192.0.2.31", 'we"ird.example', "forwarded,mailing_list"): 3,
                  ("2001:db8::31", "bücher.example", None): 4})
            t.check(f"{tag}: the corpus has absent values (null/empty) to compare",
                    any(v is None for x in r.rollups for v in x.values()))
            only = os.path.join(tmp, f"only-{window}")
            c = dptest.run(dmarcpipe, only, sources, "--workers", 1, "--shards", 1,
                           "--window", window, sink="x.csv")
            h2, rows2 = load_csv(os.path.join(only, "x.csv"))
            t.check(f"{tag}: a CSV-only run writes the same rows",
                    h2 == header and sorted(rows2) == sorted(rows),
                    dptest.diff_multisets(sorted(map(tuple, rows)), sorted(map(tuple, rows2))))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, corpus = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    t = dptest.Harness("test_csv")
    t.run(run_all, t, dmarcpipe, corpus)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
