#!/usr/bin/env python3
"""test_atomic — a report counts whole or not at all.

Every run uses tiny batches and rings (--batch-items 1 --ring-slots 2) and
several shards, so a failing report's first records have already reached
the shards when the failure is found.

  * A zip holding two reports, the second failing after five good records
    (a record with an invalid source_ip): only the first counts; the
    second adds nothing to rollups or the reports feed; exit status 1.
  * Inputs that fail mid-report, beside one good report: an XML report
    cut off after half its bytes, a gzipped report truncated mid-stream,
    and a report whose 400th record has a non-integer count.  The rollups
    and reports feed must equal those of a run over the good report alone,
    line for line.
  * A failed copy does not block a later good copy of the same identity:
    the good copy counts, whether it comes before or after the bad one.
  * A report that fails before any of its records left the worker (default
    batch size), followed on the same worker by a good report with other
    names: the good report counts in full and under its own names (the
    worker's half-filled batch of the failed report once carried the old
    report's token and cached name offsets into the next report, whose
    rollups were then dropped).
  * expected.py (from `dmarcpipe parse`) agrees on the totals.

usage: test_atomic.py DMARCPIPE DP_GEN_REPORT
"""
import gzip
import io
import os
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402
import expected  # noqa: E402

DAY0 = 1650000000 - 1650000000 % 86400
TINY = ("--batch-items", 1, "--ring-slots", 2)


def gen(gen_bin, records, seed):
    return subprocess.run([gen_bin, "--records", str(records), "--ips", "500", "--seed", str(seed)],
                          check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          timeout=dptest.PROC_TIMEOUT).stdout


def bad_record(ip="not-an-ip", count="1"):
    return dptest.record_xml(ip, 0, "example.com", raw_count=count)


def test_zip_second_fails(t, dmarcpipe, tmp):
    r1 = dptest.report_xml("atomic.example", "zip-first", "example.com", DAY0, DAY0 + 86400,
                           [(f"192.0.2.{i}", i) for i in range(1, 4)])  # 6 messages
    r2 = (dptest.report_head("atomic.example", "zip-second", "example.com", DAY0, DAY0 + 86400)
          + "".join(dptest.record_xml(f"198.51.100.{i}", 100 + i, "example.com")
                    for i in range(1, 6))
          + bad_record()
          + dptest.record_xml("198.51.100.99", 1000, "example.com")
          + dptest.REPORT_TAIL)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("1-good.xml", r1)
        z.writestr("2-bad.xml", r2)
    d = os.path.join(tmp, "zip2")
    dptest.write(os.path.join(d, "two-reports.zip"), buf.getvalue())
    for workers, shards in ((1, 1), (2, 3)):
        tag = f"zip, 2nd report fails (w{workers} s{shards})"
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"zip2-w{workers}"), [d],
                       "--workers", workers, "--shards", shards, *TINY)
        t.eq(f"{tag}: exit status", r.rc, 1)
        t.eq(f"{tag}: accepted / rejected", (r.summary.get("accepted"), r.summary.get("rejected")),
             (1, 1))
        t.eq(f"{tag}: rollup messages are the first report's", r.messages, 6)
        t.eq(f"{tag}: rollup source IPs are the first report's",
             sorted(x["source_ip"] for x in r.rollups), ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        t.eq(f"{tag}: reports feed", [x["report_id"] for x in r.reports], ["zip-first"])
        t.check(f"{tag}: the input is quarantined", "two-reports.zip" in r.quarantined,
                r.quarantined)
    exp = expected.compute(dmarcpipe, [d])
    t.eq("zip, 2nd report fails: expected.py agrees", exp["total_messages"], 6)


def test_fail_mid_report(t, dmarcpipe, gen_bin, tmp):
    good_dir = os.path.join(tmp, "good")
    dptest.write(os.path.join(good_dir, "good.xml"),
                 dptest.report_xml("atomic.example", "the-good-one", "example.com", DAY0,
                                   DAY0 + 86400, [("192.0.2.200", 7), ("2001:db8::200", 3)]))
    bad_dir = os.path.join(tmp, "bad")
    big = gen(gen_bin, 3000, 21)
    t.check("fixture: generated report is large", len(big) > 1 << 20, len(big))
    dptest.write(os.path.join(bad_dir, "cut.xml"), big[:len(big) // 2])
    gz = gzip.compress(gen(gen_bin, 3000, 22))
    dptest.write(os.path.join(bad_dir, "truncated.xml.gz"), gz[:len(gz) // 2])
    x = gen(gen_bin, 800, 23).decode()
    pos = 0
    for _ in range(399):
        pos = x.index("</record>", pos) + len("</record>")
    x = x[:pos] + "\n" + bad_record(ip="192.0.2.9", count="12x") + x[pos:]
    dptest.write(os.path.join(bad_dir, "bad-count.xml"), x)

    for workers, shards in ((1, 2), (3, 4)):
        opts = ("--workers", workers, "--shards", shards, *TINY)
        tag = f"failing inputs beside a good one (w{workers} s{shards})"
        g = dptest.run(dmarcpipe, os.path.join(tmp, f"good-only-w{workers}"), [good_dir], *opts)
        t.eq(f"{tag}: the good report alone", (g.rc, g.messages), (0, 10))
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"mixed-w{workers}"), [bad_dir, good_dir],
                       *opts)
        t.eq(f"{tag}: exit status", r.rc, 1)
        t.eq(f"{tag}: accepted / rejected",
             (r.summary.get("accepted"), r.summary.get("rejected")), (1, 3))
        t.eq(f"{tag}: inputs rejected", r.summary.get("inputs_rejected"), 3)
        t.check(f"{tag}: rollups equal the good report's alone",
                sorted(r.rollup_lines) == sorted(g.rollup_lines),
                dptest.diff_multisets(sorted(g.rollup_lines), sorted(r.rollup_lines)))
        strip = lambda rows: [{k: v for k, v in x.items() if k not in ("input", "part")}
                              for x in rows]
        t.eq(f"{tag}: reports feed is the good report's", strip(r.reports), strip(g.reports))
        t.eq(f"{tag}: summary records/messages are the good report's",
             (r.summary.get("records"), r.summary.get("messages")), (2, 10))
        t.eq(f"{tag}: all three quarantined",
             sorted(n for n in r.quarantined if not n.endswith(".reason")),
             ["bad-count.xml", "cut.xml", "truncated.xml.gz"])
    exp = expected.compute(dmarcpipe, [bad_dir, good_dir])
    t.eq("failing inputs: expected.py agrees", exp["total_messages"], 10)


def test_failed_copy_does_not_block(t, dmarcpipe, tmp):
    ident = ("atomic.example", "copy-after-failure", "example.com", DAY0, DAY0 + 86400)
    good = dptest.report_xml(*ident, [("203.0.113.1", 5), ("203.0.113.2", 6)])
    bad = (dptest.report_head(*ident)
           + "".join(dptest.record_xml(f"203.0.113.{i}", 50, "example.com") for i in range(3, 9))
           + bad_record() + dptest.REPORT_TAIL)
    for order in (("bad", "good"), ("good", "bad")):
        d = os.path.join(tmp, f"copy-{order[0]}-first")
        for i, kind in enumerate(order):
            dptest.write(os.path.join(d, f"{i}-{kind}.xml"), good if kind == "good" else bad)
        tag = f"{order[0]} copy first, then {order[1]}"
        for workers in (1, 2):
            r = dptest.run(dmarcpipe, os.path.join(tmp, f"copy-{order[0]}-w{workers}"), [d],
                           "--workers", workers, "--shards", 3, *TINY)
            t.eq(f"{tag} (w{workers}): the good copy counts",
                 sorted((x["source_ip"], x["messages"]) for x in r.rollups),
                 [("203.0.113.1", 5), ("203.0.113.2", 6)])
            t.eq(f"{tag} (w{workers}): reports feed",
                 [os.path.basename(x["input"]) for x in r.reports],
                 [f"{order.index('good')}-good.xml"])
            t.eq(f"{tag} (w{workers}): accepted", r.summary.get("accepted"), 1)


def test_unsent_failure_then_good(t, dmarcpipe, tmp):
    d = os.path.join(tmp, "unsent")
    bad = (dptest.report_head("first.example", "fails-early", "a.example", DAY0, DAY0 + 86400)
           + dptest.record_xml("192.0.2.1", 5, "a.example")
           + bad_record() + dptest.REPORT_TAIL)
    good = dptest.report_xml("second-reporter.example", "counts", "b.example", DAY0,
                             DAY0 + 86400, [("198.51.100.1", 7), ("198.51.100.2", 11)])
    dptest.write(os.path.join(d, "1-bad.xml"), bad)
    dptest.write(os.path.join(d, "2-good.xml"), good)
    dptest.write(os.path.join(d, "3-bad.xml"), bad.replace("fails-early", "fails-again"))
    dptest.write(os.path.join(d, "4-good.xml"), good.replace("counts", "counts-too")
                 .replace("b.example", "c.example"))
    for shards in (1, 3):
        tag = f"failure before any batch left, then a good report (w1 s{shards})"
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"unsent-s{shards}"), [d],
                       "--workers", 1, "--shards", shards)
        t.eq(f"{tag}: accepted / rejected", (r.summary.get("accepted"), r.summary.get("rejected")),
             (2, 2))
        t.eq(f"{tag}: rollup messages are the good reports'", r.messages, 36)
        t.eq(f"{tag}: rollups carry the good reports' names",
             sorted((x["reporter"], x["policy_domain"], x["source_ip"], x["messages"])
                    for x in r.rollups),
             [("second-reporter.example", "b.example", "198.51.100.1", 7),
              ("second-reporter.example", "b.example", "198.51.100.2", 11),
              ("second-reporter.example", "c.example", "198.51.100.1", 7),
              ("second-reporter.example", "c.example", "198.51.100.2", 11)])


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, gen_bin = (os.path.abspath(a) for a in argv[1:3])
    t = dptest.Harness("test_atomic")
    with dptest.scratch("atomic") as tmp:
        t.run(test_zip_second_fails, t, dmarcpipe, tmp)
        t.run(test_fail_mid_report, t, dmarcpipe, gen_bin, tmp)
        t.run(test_failed_copy_does_not_block, t, dmarcpipe, tmp)
        t.run(test_unsent_failure_then_good, t, dmarcpipe, tmp)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
