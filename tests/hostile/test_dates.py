#!/usr/bin/env python3
"""test_dates -- a sender cannot inflate counts, or blow up memory and
output, through a report's dates.

  * begin = end = 2^63 - 1 (count 5), begin = 2^63 - 75,807 (count 1000,
    1h windows), begin before 1990, end after 2100, begin = INT64_MIN: each
    report is rejected with a reason naming the date; the good report beside
    it counts exactly, and no rollup carries a window outside int64;
  * a century-long range (begin 0, end 3,155,760,000) of 10 records with
    huge counts, 1h windows: rejected at once, with no rollup written;
  * 200 records over 31 days, 1h windows (the most a report may cover):
    accepted, the rollups sum to the counts exactly, at most 745 windows per
    record, and the run's memory stays bounded (peak RSS under 256 MiB).

Usage: test_dates.py DMARCPIPE
"""
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402

D0 = 1700006400  # 2023-11-15 00:00:00 UTC, a day boundary
DAY = 86400


def good(name):
    return dptest.report_xml("good.example", name, "example.com", D0, D0 + DAY - 1,
                             [("192.0.2.1", 7), ("192.0.2.2", 11)])


def bad_dates(t, dp):
    cases = [
        ("int64-max", 2**63 - 1, 2**63 - 1, 5, "after 2100"),
        ("near-int64-max", 9223372036854700000, 2**63 - 1, 1000, "after 2100"),
        ("before-1990", 631151999, 631151999 + DAY, 3, "before 1990"),
        ("after-2100", 4102444800 - DAY, 4102444801, 3, "after 2100"),
        ("int64-min", -2**63, D0, 3, "before 1990"),
        ("zero", 0, 0, 3, "before 1990"),
    ]
    for name, begin, end, count, reason in cases:
        with dptest.scratch("dates") as d:
            src = os.path.join(d, "in")
            dptest.write(os.path.join(src, "a-good.xml"), good("g-" + name))
            dptest.write(os.path.join(src, "b-bad.xml"),
                         dptest.report_xml("evil.example", name, "example.com", begin, end,
                                           [("198.51.100.1", count)]))
            for window in ("1h", "1d"):
                r = dptest.run(dp, os.path.join(d, "out-" + window), [src], "--window", window,
                               "--workers", "2", "--shards", "2")
                t.eq(f"{name} {window}: exit 1 (an input was rejected)", r.rc, 1)
                t.eq(f"{name} {window}: the good report's 18 messages, no more", r.messages, 18)
                t.eq(f"{name} {window}: the summary agrees", r.summary.get("messages"), 18)
                t.check(f"{name} {window}: the reason names the date ({reason})",
                        f"date_range" in r.stderr and reason in r.stderr, r.describe())
                t.check(f"{name} {window}: every window fits int64",
                        all(-2**63 <= x["window_start"] < x["window_end"] < 2**63 for x in r.rollups),
                        dptest.short(r.rollups[:3]))


def century(t, dp):
    with dptest.scratch("century") as d:
        src = os.path.join(d, "in")
        recs = [(f"203.0.113.{i}", 2**60 + i) for i in range(10)]
        dptest.write(os.path.join(src, "century.xml"),
                     dptest.report_xml("evil.example", "century", "example.com", 0, 3155760000, recs))
        r = dptest.run(dp, os.path.join(d, "out"), [src], "--window", "1h")
        t.eq("century: rejected", r.summary.get("inputs_rejected"), 1)
        t.eq("century: no rollup", len(r.rollups), 0)
        t.check("century: the reason says why", "before 1990" in r.stderr or "spans" in r.stderr, r.describe())
        # the same range starting in 1990: the cap on the range is what refuses it
        dptest.write(os.path.join(src, "century.xml"),
                     dptest.report_xml("evil.example", "century", "example.com", 631152000,
                                       631152000 + 3155760000, recs))
        r = dptest.run(dp, os.path.join(d, "out2"), [src], "--window", "1h")
        t.eq("century from 1990: rejected", r.summary.get("inputs_rejected"), 1)
        t.check("century from 1990: the reason is the range", "spans" in r.stderr and "31" in r.stderr,
                r.describe())
        t.eq("century from 1990: no rollup", len(r.rollups), 0)


def month(t, dp):
    """The largest report that is accepted: bounded by its size."""
    with dptest.scratch("month") as d:
        src = os.path.join(d, "in")
        recs = [(f"10.{i // 250}.{i % 250}.1", 10**12 + i) for i in range(200)]
        begin = D0
        dptest.write(os.path.join(src, "month.xml"),
                     dptest.report_xml("big.example", "month", "example.com", begin, begin + 31 * DAY, recs))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        r = dptest.run(dp, os.path.join(d, "out"), [src], "--window", "1h", "--workers", "1", "--shards", "1")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t.eq("31 days: accepted", r.rc, 0)
        t.eq("31 days: the rollups sum to the counts exactly", r.messages, sum(c for _, c in recs))
        t.check("31 days: at most 745 hourly windows per record", len(r.rollups) <= 200 * 745,
                f"{len(r.rollups)} rollups")
        t.check("31 days: peak RSS under 256 MiB", peak_kib < 256 * 1024 or dptest_sanitized(),
                f"{peak_kib} KiB (before: {before})")


def dptest_sanitized():
    return os.environ.get("DP_SANITIZED") == "1"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dp = os.path.abspath(sys.argv[1])
    t = dptest.Harness("hostile_dates")
    t.run(bad_dates, t, dp)
    t.run(century, t, dp)
    t.run(month, t, dp)
    t.finish()


if __name__ == "__main__":
    main()
