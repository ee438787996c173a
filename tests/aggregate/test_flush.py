#!/usr/bin/env python3
"""test_flush — early flushes emit partial rollups that add up to the same thing.

A flush (at --max-keys, every --flush-interval, at the end) writes partial
rollups; a warehouse merges lines of one key (every string field plus the
window) by summing messages and records, taking the least first_seen and
the greatest last_seen.  Merged that way, a flushed run must equal the
unflushed run exactly.

  * --max-keys 1 and 5 over the corpus plus four crafted reports that share
    24 keys (workers 1 and 2, shards 3; windows 1d and 1h).  With one
    worker the run must really have flushed early: some key appears on more
    than one line.  (With two, the verdicts on several inputs may reach a
    shard in one batch, and max-keys is checked per batch.)
  * --flush-interval 1 on a run that lasts past a second: a small report
    A, then a 64 MiB gzipped report B from bench/dp-gen-report.  A is a
    cut of B's first records under another report_id, so its keys are
    among B's.  One worker and tiny rings make B take over a second, A is
    counted long before B ends, so the interval flush writes A's rollups
    and B's land on the same keys at the end.  Where the machine is so
    fast that no flush happened mid-run, that one check is reported as a
    NOTE, not a failure (the merge check still runs).

usage: test_flush.py DMARCPIPE DP_GEN_REPORT CORPUS_DIR
"""
import gzip
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402


def check_merge(t, tag, flushed, unflushed, must_split):
    ok = t.check(f"{tag}: ran", flushed.rc in (0, 1) and "messages" in flushed.summary,
                 flushed.describe())
    t.check(f"{tag}: no sanitizer report", flushed.sanitizer_report() is None,
            flushed.sanitizer_report())
    if not ok:
        return False
    t.eq(f"{tag}: exit status as unflushed", flushed.rc, unflushed.rc)
    t.eq(f"{tag}: total messages as unflushed", flushed.messages, unflushed.messages)
    t.eq(f"{tag}: lines written = summary rollups", len(flushed.rollup_lines),
         flushed.summary.get("rollups"))
    a = dptest.merge(flushed.rollups)
    b = dptest.merge(unflushed.rollups)
    t.eq(f"{tag}: unflushed run has one line per key", len(b), len(unflushed.rollups))
    t.check(f"{tag}: merged by key = unflushed ({len(b)} keys)", a == b,
            dptest.diff_multisets(sorted(map(repr, a.values())), sorted(map(repr, b.values()))))
    split = len(flushed.rollups) > len(a)
    if must_split:
        t.check(f"{tag}: flushed early (some key on several lines: "
                f"{len(flushed.rollups)} lines, {len(a)} keys)", split)
    return split


def repeated_keys(d):
    """Four reports of one day with the same 24 keys: a flush between two of
    them splits every key over two lines."""
    day = 1704067200
    for i in range(4):
        recs = [(f"198.51.100.{k + 1}", 1 + i * k) for k in range(24)]
        dptest.write(os.path.join(d, f"rep-{i}.xml"),
                     dptest.report_xml("flush.example", f"flush-{i}", "example.com",
                                       day + 3600 * i, day + 3600 * (i + 20), recs))
    return d


def test_max_keys(t, dmarcpipe, corpus, tmp):
    sources = [corpus, repeated_keys(os.path.join(tmp, "repeated"))]
    for window in ("1d", "1h"):
        base = dptest.run(dmarcpipe, os.path.join(tmp, f"mk-{window}-base"), sources,
                          "--workers", 2, "--shards", 3, "--window", window)
        for keys in (1, 5):
            # one worker: each input's verdicts reach the shards on their
            # own, so a flush falls between the crafted reports for sure;
            # with more workers verdicts may arrive together (no split)
            for workers in (1, 2):
                r = dptest.run(dmarcpipe, os.path.join(tmp, f"mk-{window}-{keys}-{workers}"),
                               sources, "--workers", workers, "--shards", 3, "--window", window,
                               "--max-keys", keys)
                check_merge(t, f"max-keys {keys} {window} w{workers}", r, base,
                            must_split=(workers == 1))


def cut_report(xml, n_records, new_id):
    """The first n_records records of a report, closed, under another report_id."""
    head_end = xml.index("<record>")
    head = re.sub(r"<report_id>[^<]*</report_id>", f"<report_id>{new_id}</report_id>",
                  xml[:head_end], count=1)
    pos = head_end
    for _ in range(n_records):
        pos = xml.index("</record>", pos) + len("</record>")
    return head + xml[head_end:pos] + "\n</feedback>\n"


def test_interval(t, dmarcpipe, gen, tmp):
    d = os.path.join(tmp, "interval-in")
    os.makedirs(d)
    big = subprocess.run([gen, "--target-bytes", "64M", "--ips", "300", "--domains", "1",
                          "--reporters", "1", "--seed", "7"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=dptest.PROC_TIMEOUT).stdout
    # inputs run in name order: a-small.xml, then b-big.xml.gz
    small = cut_report(big[:1 << 20].decode("utf-8"), 200, "flush-interval-small")
    dptest.write(os.path.join(d, "a-small.xml"), small)
    with open(os.path.join(d, "b-big.xml.gz"), "wb") as f:
        f.write(gzip.compress(big, compresslevel=1))
    del big
    opts = ("--workers", 1, "--shards", 2, "--ring-slots", 2, "--batch-items", 1)
    base = dptest.run(dmarcpipe, os.path.join(tmp, "iv-base"), [d], *opts)
    t.eq("interval: unflushed run exits 0", base.rc, 0)
    t.eq("interval: unflushed run counts both reports", base.summary.get("accepted"), 2)
    r = dptest.run(dmarcpipe, os.path.join(tmp, "iv-1s"), [d], *opts, "--flush-interval", 1)
    split = check_merge(t, "flush-interval 1", r, base, must_split=False)
    if split:
        t.check("flush-interval 1: flushed mid-run (keys of A written twice)", True)
    else:
        t.note("flush-interval 1: the run ended before a mid-run flush "
               f"(summary {r.summary}); only the merge was checked")


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, gen, corpus = (os.path.abspath(a) for a in argv[1:4])
    t = dptest.Harness("test_flush")
    with dptest.scratch("flush") as tmp:
        t.run(test_max_keys, t, dmarcpipe, corpus, tmp)
        t.run(test_interval, t, dmarcpipe, gen, tmp)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
