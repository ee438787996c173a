#!/usr/bin/env python3
"""test_dedup — each report counted once: within a run, and across runs.

Across runs (--state DIR shared):
  * 12 generated reports: run 1 counts 12; run 2 over the same inputs
    counts 0, finds 12 duplicates, rejects nothing, exits 0, and writes no
    rollup with messages and no reports-feed line; run 3 over the same
    inputs plus one new report counts exactly that one (its messages, its
    feed line, 12 duplicates).
  * a run whose sink or reports feed fails (/dev/full) exits 3 and
    persists nothing: the next run counts every report again.
  * the corpus: a second run with the same state counts no report and
    writes no messages; everything the first run counted or skipped is now
    a duplicate.

Within one run:
  * one report as .xml, .xml.gz and inside a .zip (three inputs): counted
    once, 2 duplicates, exit 0; the feed names the first input in name
    order; the same with the names rotated so each form comes first.
  * two copies in one zip: the first member in archive order counts.
  * two copies of one identity with different content: the first in input
    order counts even when it is slow to reach: it sits in a zip behind a
    large report, while the later copy is a small file another worker
    finishes first.  Repeated a few times, with 2 and 4 workers.

usage: test_dedup.py DMARCPIPE DP_GEN_REPORT CORPUS_DIR
"""
import gzip
import io
import os
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

DAY0 = 1700006400  # 2023-11-15T00:00:00Z


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def messages_with(r):
    return [x for x in r.rollups if x["messages"] > 0]


def test_across_runs(t, dmarcpipe, gen, tmp):
    src = os.path.join(tmp, "gen")
    dptest.gen_reports(gen, src, 12, 10, seed=11)
    new_dir = os.path.join(tmp, "new")
    new_xml = dptest.report_xml("dedup.example", "across-runs-new", "example.org", DAY0,
                                DAY0 + 86400, [("203.0.113.5", 41), ("2001:db8::5", 1)])
    dptest.write(os.path.join(new_dir, "new.xml"), new_xml)
    state = os.path.join(tmp, "state")
    opts = ("--workers", 3, "--shards", 2)

    r1 = dptest.run(dmarcpipe, os.path.join(tmp, "run1"), [src], *opts, state=state)
    t.eq("across runs, 1st: exit status", r1.rc, 0)
    t.eq("across runs, 1st: accepted", r1.summary.get("accepted"), 12)
    t.eq("across runs, 1st: duplicates", r1.summary.get("duplicates"), 0)
    t.check("across runs, 1st: rollups written", r1.messages > 0, r1.describe())

    r2 = dptest.run(dmarcpipe, os.path.join(tmp, "run2"), [src], *opts, state=state)
    t.eq("across runs, 2nd: exit status (duplicates are not rejections)", r2.rc, 0)
    t.eq("across runs, 2nd: accepted", r2.summary.get("accepted"), 0)
    t.eq("across runs, 2nd: duplicates", r2.summary.get("duplicates"), 12)
    t.eq("across runs, 2nd: rejected reports", r2.summary.get("rejected"), 0)
    t.eq("across runs, 2nd: rejected inputs", r2.summary.get("inputs_rejected"), 0)
    t.eq("across runs, 2nd: nothing quarantined", r2.quarantined, [])
    t.eq("across runs, 2nd: rollups with messages", len(messages_with(r2)), 0)
    t.eq("across runs, 2nd: summary messages", r2.summary.get("messages"), 0)
    t.eq("across runs, 2nd: reports feed lines", len(r2.reports), 0)

    r3 = dptest.run(dmarcpipe, os.path.join(tmp, "run3"), [src, new_dir], *opts, state=state)
    t.eq("across runs, 3rd (+1 new): exit status", r3.rc, 0)
    t.eq("across runs, 3rd: accepted", r3.summary.get("accepted"), 1)
    t.eq("across runs, 3rd: duplicates", r3.summary.get("duplicates"), 12)
    t.eq("across runs, 3rd: rollup messages are the new report's", r3.messages, 42)
    t.eq("across runs, 3rd: rollup source IPs",
         sorted({x["source_ip"] for x in messages_with(r3)}), ["2001:db8::5", "203.0.113.5"])
    t.eq("across runs, 3rd: reports feed is the new report",
         [(x["report_id"], x["messages"]) for x in r3.reports], [("across-runs-new", 42)])

    r4 = dptest.run(dmarcpipe, os.path.join(tmp, "run4"), [src, new_dir], *opts, state=state)
    t.eq("across runs, 4th: nothing new", (r4.rc, r4.summary.get("accepted"),
                                           r4.summary.get("duplicates"), r4.messages),
         (0, 0, 13, 0))


def test_failed_sink_keeps_state(t, dmarcpipe, gen, tmp):
    """Identities are persisted only after the sinks flushed: a run whose
    sink (or reports feed) cannot be written exits 3 and the next run with
    the same state counts every report again."""
    if not os.path.exists("/dev/full"):
        t.note("no /dev/full: failing-sink check skipped")
        return
    src = os.path.join(tmp, "gen-full")
    dptest.gen_reports(gen, src, 5, 10, seed=12)
    for what in ("sink", "reports"):
        state = os.path.join(tmp, f"state-full-{what}")
        out = os.path.join(tmp, f"full-{what}")
        os.makedirs(out)
        args = [dmarcpipe, "run", "--workers", "2", "--shards", "2", "--state", state,
                "--quarantine", os.path.join(out, "q"),
                "--sink", "file:/dev/full" if what == "sink" else "file:" + os.path.join(out, "r"),
                "--reports", "/dev/full" if what == "reports" else os.path.join(out, "f"), src]
        p = subprocess.run(args, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=dptest.PROC_TIMEOUT)
        t.eq(f"{what} on /dev/full: exit status 3", p.returncode, 3)
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"after-full-{what}"), [src],
                       "--workers", 2, "--shards", 2, state=state)
        t.eq(f"{what} on /dev/full: the next run counts all 5 again",
             (r.rc, r.summary.get("accepted"), r.summary.get("duplicates")), (0, 5, 0))


def test_corpus_across_runs(t, dmarcpipe, corpus, tmp):
    state = os.path.join(tmp, "corpus-state")
    opts = ("--workers", 2, "--shards", 2)
    r1 = dptest.run(dmarcpipe, os.path.join(tmp, "corpus1"), [corpus], *opts, state=state)
    r2 = dptest.run(dmarcpipe, os.path.join(tmp, "corpus2"), [corpus], *opts, state=state)
    t.check("corpus across runs: 1st counted reports", r1.summary.get("accepted", 0) > 50,
            r1.describe())
    t.eq("corpus across runs, 2nd: accepted", r2.summary.get("accepted"), 0)
    t.eq("corpus across runs, 2nd: rollups with messages", len(messages_with(r2)), 0)
    t.eq("corpus across runs, 2nd: reports feed lines", len(r2.reports), 0)
    before = r1.summary.get("accepted", 0) + r1.summary.get("duplicates", 0)
    t.check("corpus across runs, 2nd: every report counted or skipped before is a duplicate",
            r2.summary.get("duplicates", 0) >= before,
            f"{r2.summary.get('duplicates')} duplicates, run 1 had {before} accepted+duplicate")
    t.check("corpus across runs, 2nd: rejects no more than the 1st",
            r2.summary.get("rejected", 10**9) <= r1.summary.get("rejected", 0),
            f"run 1 {r1.summary}, run 2 {r2.summary}")


def test_forms(t, dmarcpipe, tmp):
    xml = dptest.report_xml("forms.example", "one-report-three-forms", "example.net", DAY0,
                            DAY0 + 86400 - 1, [("192.0.2.77", 5), ("192.0.2.78", 6)])
    forms = {
        "xml": xml.encode(),
        "xml.gz": gzip.compress(xml.encode()),
        "zip": zip_bytes([("report.xml", xml)]),
    }
    order = ["xml", "xml.gz", "zip"]
    for rot in range(3):
        names = order[rot:] + order[:rot]
        d = os.path.join(tmp, f"forms-{rot}")
        for i, form in enumerate(names):
            dptest.write(os.path.join(d, f"{chr(ord('a') + i)}-report.{form}"), forms[form])
        for workers in (1, 3):
            r = dptest.run(dmarcpipe, os.path.join(tmp, f"forms-{rot}-w{workers}"), [d],
                           "--workers", workers, "--shards", 2)
            tag = f"one report as {', '.join(names)} (w{workers})"
            t.eq(f"{tag}: exit status", r.rc, 0)
            t.eq(f"{tag}: accepted / duplicates / rejected",
                 (r.summary.get("accepted"), r.summary.get("duplicates"),
                  r.summary.get("rejected")), (1, 2, 0))
            t.eq(f"{tag}: messages counted once", r.messages, 11)
            t.eq(f"{tag}: the feed names the first input",
                 [os.path.basename(x["input"]) for x in r.reports], [f"a-report.{names[0]}"])
            t.eq(f"{tag}: nothing quarantined", r.quarantined, [])


def test_conflicting_copies(t, dmarcpipe, gen, tmp):
    big = subprocess.run([gen, "--records", "20000", "--seed", "5"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=dptest.PROC_TIMEOUT).stdout
    ident = ("conflict.example", "conflicting-copies", "example.com", DAY0, DAY0 + 86400)
    first = dptest.report_xml(*ident, [("192.0.2.1", 10)])
    later = dptest.report_xml(*ident, [("192.0.2.2", 99), ("192.0.2.3", 1)])
    d = os.path.join(tmp, "conflict")
    # a.zip: a large report, then the first copy; b.xml: the later copy
    dptest.write(os.path.join(d, "a.zip"), zip_bytes([("1-big.xml", big), ("2-first.xml", first)]))
    dptest.write(os.path.join(d, "b.xml"), later)
    big_messages = None
    for workers in (2, 4):
        for rep in range(3):
            r = dptest.run(dmarcpipe, os.path.join(tmp, f"conflict-w{workers}-{rep}"), [d],
                           "--workers", workers, "--shards", 3)
            tag = f"conflicting copies w{workers} #{rep + 1}"
            t.eq(f"{tag}: exit status", r.rc, 0)
            t.eq(f"{tag}: accepted / duplicates", (r.summary.get("accepted"),
                                                    r.summary.get("duplicates")), (2, 1))
            mine = {x["source_ip"]: x["messages"] for x in r.rollups
                    if x["reporter"] == "conflict.example"}
            t.eq(f"{tag}: the first copy in input order counted", mine, {"192.0.2.1": 10})
            feed = [x for x in r.reports if x["report_id"] == "conflicting-copies"]
            t.eq(f"{tag}: the feed names the zip member",
                 [os.path.basename(x["part"]) for x in feed], ["a.zip!2-first.xml"])
            other = r.messages - sum(mine.values())
            if big_messages is None:
                big_messages = other
            t.eq(f"{tag}: the large report counted in full", other, big_messages)


def test_within_one_input(t, dmarcpipe, tmp):
    """Two copies in one zip: the first member in archive order counts (here
    it is the later one by name)."""
    ident = ("member.example", "same-zip", "example.com", DAY0, DAY0 + 86400)
    d = os.path.join(tmp, "one-zip")
    dptest.write(os.path.join(d, "both.zip"),
                 zip_bytes([("2-b.xml", dptest.report_xml(*ident, [("192.0.2.61", 1)])),
                            ("1-a.xml", dptest.report_xml(*ident, [("192.0.2.62", 9)]))]))
    for workers in (1, 3):
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"one-zip-w{workers}"), [d],
                       "--workers", workers, "--shards", 2)
        tag = f"two copies in one zip (w{workers})"
        t.eq(f"{tag}: exit status, accepted, duplicates",
             (r.rc, r.summary.get("accepted"), r.summary.get("duplicates")), (0, 1, 1))
        t.eq(f"{tag}: the first member in archive order counts",
             [(x["source_ip"], x["messages"]) for x in r.rollups], [("192.0.2.61", 1)])


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, gen, corpus = (os.path.abspath(a) for a in argv[1:4])
    t = dptest.Harness("test_dedup")
    with dptest.scratch("dedup") as tmp:
        t.run(test_across_runs, t, dmarcpipe, gen, tmp)
        t.run(test_failed_sink_keeps_state, t, dmarcpipe, gen, tmp)
        t.run(test_corpus_across_runs, t, dmarcpipe, corpus, tmp)
        t.run(test_forms, t, dmarcpipe, tmp)
        t.run(test_within_one_input, t, dmarcpipe, tmp)
        t.run(test_conflicting_copies, t, dmarcpipe, gen, tmp)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
