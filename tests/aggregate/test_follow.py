#!/usr/bin/env python3
"""test_follow — `dmarcpipe run --follow`, the long-running mode, with file sinks.

The truth is a batch run over the same files.  A follower is fed them
while it runs, and what it writes, merged per rollup key (flushes and
cycles split keys over lines), must equal the batch run's rollups.

  * spool: the corpus arrives in three waves (renamed into the spool, in
    sorted order, as a mail drop delivers), then a report written in place
    slowly, over several scans (it must be taken whole, not rejected
    half-written), then copies of three counted reports
    under new names (duplicates).  A dot-file is never read.  SIGTERM: exit
    0.  Every input moved to --done at its path below the SOURCE, rejects
    quarantined as by the batch run, rollups and reports feed as the batch
    run's, the copies counted as duplicates, more than one cycle.
  * restart without --done: half the corpus, SIGTERM, the other half
    dropped in while it is down, a second follower with the same --state
    and output files: the files stay in place, nothing is counted twice
    (the first half is in the state; the output files are added to, not
    replaced), and the two followers' rollups merge to the batch run's.
  * own folders: a follower whose SOURCE is its working directory, with the
    embedded default output (./dmarcpipe-out, under the SOURCE): it must not
    read its own rollups, state or quarantine as reports.
  * batch --done: a batch run moves every input, rejects too, and exits 1
    (some input was rejected) as without --done.
  * a vanished input: rejected, not fatal; the other inputs are counted.
    A follower whose SOURCE does not exist stops at once (exit 2).

usage: test_follow.py DMARCPIPE CORPUS_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

POLL = "1"
WAIT = 120  # seconds allowed for a follower to take what it was given


def files_below(root):
    """Regular files below root, relative, not dot-files (never read)."""
    out = []
    for d, _, fs in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in fs if not f.startswith(".")]
    return sorted(out)


def start(dmarcpipe, cwd, *args, errpath=None):
    errpath = errpath or os.path.join(cwd, "follow.err")
    err = open(errpath, "a")
    p = subprocess.Popen([dmarcpipe, "run", "--follow", "--poll", POLL, *map(str, args)], cwd=cwd,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    p.errfile, p.errpath, p.started_at = err, errpath, os.path.getsize(errpath)
    return p


def stop(p):
    # SIGTERM once it is following: before it has set its handler (a slow
    # start under ASan), the signal's default action would end it
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        with open(p.errpath, errors="replace") as f:
            f.seek(p.started_at)
            if "dmarcpipe run: following" in f.read():
                break
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "hung after SIGTERM"
    p.errfile.close()
    return rc


def wait_for(cond, p):
    deadline = time.time() + WAIT
    while time.time() < deadline:
        if cond():
            return True
        if p.poll() is not None:
            return False
        time.sleep(0.3)
    return cond()


def cycle_inputs(errpath):
    """Inputs taken, summed over the follower's cycle lines so far."""
    with open(errpath, errors="replace") as f:
        return sum(int(m) for m in re.findall(r"^dmarcpipe run: cycle \d+: (\d+) of", f.read(), re.M))


def drop(src_root, rels, spool):
    """Copies files to a dot-name in the spool, then renames them into place."""
    for rel in rels:
        dst = os.path.join(spool, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = os.path.join(os.path.dirname(dst), "." + os.path.basename(dst) + ".part")
        shutil.copyfile(os.path.join(src_root, rel), tmp)
        os.rename(tmp, dst)


def load(outdir):
    class R:
        pass
    r = R()
    lines = dptest.read_lines(os.path.join(outdir, "rollups.ndjson"))
    r.rollups = [__import__("json").loads(l) for l in lines]
    r.reports = [__import__("json").loads(l) for l in dptest.read_lines(os.path.join(outdir, "reports.ndjson"))]
    q = os.path.join(outdir, "quarantine")
    r.quarantined = sorted(os.listdir(q)) if os.path.isdir(q) else []
    return r


def report_ids(reports):
    return sorted(r["sha256"] for r in reports)


def single_reports(corpus):
    """Three plain .xml files of the corpus, each one accepted report."""
    picks = []
    for rel in files_below(corpus):
        if rel.endswith(".xml") and "invalid" not in rel and "bad" not in rel:
            with open(os.path.join(corpus, rel), "rb") as f:
                if f.read().count(b"<feedback") == 1:
                    picks.append(rel)
    return picks


def test_spool(t, dmarcpipe, corpus, tmp):
    extra = os.path.join(tmp, "extra")
    day = 1704067200
    slow_xml = dptest.report_xml("follow.example", "slow-1", "slow.example", day, day + 86399,
                                 [("192.0.2.77", 40), ("192.0.2.78", 2)])
    dptest.write(os.path.join(extra, "slow.xml"), slow_xml)
    base = dptest.run(dmarcpipe, os.path.join(tmp, "base"), [corpus, extra], "--workers", 2, "--shards", 2)
    t.check("batch run: ran", base.rc in (0, 1), base.describe())

    work = os.path.join(tmp, "follow")
    spool, done, out = os.path.join(work, "spool"), os.path.join(work, "done"), os.path.join(work, "out")
    for d in (spool, out):
        os.makedirs(d)
    with open(os.path.join(spool, ".in-progress.xml"), "w") as f:
        f.write("<feedback>not finished")
    p = start(dmarcpipe, work, "--flush-interval", 1, "--done", done, "--state", os.path.join(work, "state"),
              "--sink", "file:" + os.path.join(out, "rollups.ndjson"),
              "--reports", os.path.join(out, "reports.ndjson"),
              "--quarantine", os.path.join(out, "quarantine"), "--workers", 2, "--shards", 2, spool)
    rels = files_below(corpus)
    per = (len(rels) + 2) // 3
    fed = 0
    for i in range(0, len(rels), per):
        wave = rels[i:i + per]
        drop(corpus, wave, spool)
        fed += len(wave)
        ok = wait_for(lambda: len(files_below(done)) >= fed, p)
        t.check(f"wave of {len(wave)}: all moved to done ({len(files_below(done))} of {fed})", ok)
    # a report written in place, slowly: ten pieces 0.3 s apart, over
    # three scans; no scan may find it the same twice before it is whole
    with open(os.path.join(spool, "slow.xml"), "w") as f:
        step = len(slow_xml) // 10 + 1
        for i in range(0, len(slow_xml), step):
            f.write(slow_xml[i:i + step])
            f.flush()
            time.sleep(0.3)
    fed += 1
    t.check("the slowly written report is taken", wait_for(lambda: len(files_below(done)) >= fed, p))
    copies = single_reports(corpus)[:3]
    t.eq("three single-report files to copy", len(copies), 3)
    for i, rel in enumerate(copies):
        shutil.copyfile(os.path.join(corpus, rel), os.path.join(spool, f"copy-{i}.xml"))
    fed += len(copies)
    t.check("the copies are taken", wait_for(lambda: len(files_below(done)) >= fed, p))
    rc = stop(p)
    with open(os.path.join(work, "follow.err"), errors="replace") as f:
        err = f.read()
    t.eq("SIGTERM: exit status", rc, 0)
    t.check("no sanitizer report", not re.search(r"Sanitizer|runtime error:", err), err[-3000:])
    summary = dptest.parse_summary(err)
    got = load(out)
    left = sorted(os.path.relpath(os.path.join(d, f), spool) for d, _, fs in os.walk(spool) for f in fs)
    t.eq("spool: only the dot-file left", left, [".in-progress.xml"])
    want_done = sorted(rels + ["slow.xml"] + [f"copy-{i}.xml" for i in range(3)])
    t.eq("done: every input at its path below the SOURCE", files_below(done), want_done)
    t.eq("quarantine as the batch run's", got.quarantined, base.quarantined)
    cycles = len(re.findall(r"^dmarcpipe run: cycle ", err, re.M))
    t.check(f"more than one cycle ({cycles})", cycles > 1, err[-2000:])
    t.eq("duplicates: the batch run's and the three copies", summary.get("duplicates"),
         base.summary.get("duplicates", 0) + 3)
    a, b = dptest.merge(got.rollups), dptest.merge(base.rollups)
    t.check(f"rollups merged per key = the batch run's ({len(b)} keys)", a == b,
            dptest.diff_multisets(sorted(map(repr, a.values())), sorted(map(repr, b.values()))))
    t.eq("reports feed: the batch run's reports", report_ids(got.reports), report_ids(base.reports))
    t.eq("summary messages = the batch run's", summary.get("messages"), base.summary.get("messages"))


def test_restart_without_done(t, dmarcpipe, corpus, tmp):
    base = dptest.run(dmarcpipe, os.path.join(tmp, "base2"), [corpus])
    work = os.path.join(tmp, "restart")
    spool, out = os.path.join(work, "spool"), os.path.join(work, "out")
    os.makedirs(spool)
    os.makedirs(out)  # a sink's folder must exist: it is not made
    args = ["--flush-interval", 1, "--state", os.path.join(work, "state"),
            "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports", os.path.join(out, "reports.ndjson"),
            "--quarantine", os.path.join(out, "quarantine"), spool]
    rels = files_below(corpus)
    half = len(rels) // 2
    errpath = os.path.join(work, "follow.err")
    p = start(dmarcpipe, work, *args)
    drop(corpus, rels[:half], spool)
    t.check("first follower takes the first half", wait_for(lambda: cycle_inputs(errpath) >= half, p))
    time.sleep(2.5)  # two more scans: nothing may be taken again
    t.eq("first follower: each input taken once", cycle_inputs(errpath), half)
    t.eq("first follower: SIGTERM exit status", stop(p), 0)
    drop(corpus, rels[half:], spool)
    with open(errpath, "a") as f:
        f.write("--- restart ---\n")
    p = start(dmarcpipe, work, *args)
    t.check("second follower takes the rest",
            wait_for(lambda: cycle_inputs(errpath) >= len(rels), p))
    time.sleep(2.5)
    t.eq("second follower: every input once more, none twice in a process", cycle_inputs(errpath),
         len(rels))
    t.eq("second follower: SIGTERM exit status", stop(p), 0)
    t.eq("without --done the inputs stay", files_below(spool), rels)
    got = load(out)
    a, b = dptest.merge(got.rollups), dptest.merge(base.rollups)
    t.check(f"both followers' rollups merged = the batch run's ({len(b)} keys)", a == b,
            dptest.diff_multisets(sorted(map(repr, a.values())), sorted(map(repr, b.values()))))
    t.eq("reports feed: each report once", report_ids(got.reports), report_ids(base.reports))


def test_own_folders(t, dmarcpipe, corpus, tmp):
    work = os.path.join(tmp, "own")
    os.makedirs(work)
    day = 1704067200
    for i in range(2):
        dptest.write(os.path.join(work, f"r{i}.xml"),
                     dptest.report_xml("own.example", f"own-{i}", "own.example", day, day + 86399,
                                       [(f"192.0.2.{10 + i}", 3)]))
    errpath = os.path.join(tmp, "own-follow.err")
    p = start(dmarcpipe, work, "--flush-interval", 1, ".", errpath=errpath)
    out = os.path.join(work, "dmarcpipe-out")
    ok = wait_for(lambda: len(dptest.read_lines(os.path.join(out, "reports.ndjson"))) >= 2, p)
    t.check("the two reports are counted", ok)
    time.sleep(3.5)  # scans that see dmarcpipe-out/ with rollups, state and all in it
    rc = stop(p)
    with open(errpath, errors="replace") as f:
        err = f.read()
    t.eq("SIGTERM: exit status", rc, 0)
    t.eq("its own output is not read as input: two inputs taken in all", cycle_inputs(errpath), 2)
    q = os.path.join(out, "quarantine")
    t.eq("nothing quarantined", os.listdir(q) if os.path.isdir(q) else [], [])
    t.eq("two reports in the feed", len(dptest.read_lines(os.path.join(out, "reports.ndjson"))), 2)
    t.eq("the inputs stay (no --done)", files_below(work)[-2:], ["r0.xml", "r1.xml"])


def test_batch_done(t, dmarcpipe, corpus, tmp):
    src, done = os.path.join(tmp, "batch-src"), os.path.join(tmp, "batch-done")
    shutil.copytree(corpus, src)
    rels = files_below(src)
    before = dptest.run(dmarcpipe, os.path.join(tmp, "batch-ref"), [corpus])
    r = dptest.run(dmarcpipe, os.path.join(tmp, "batch-out"), [src], "--done", done)
    t.eq("batch --done: exit status as without", r.rc, before.rc)
    t.eq("batch --done: every input moved, rejects too", files_below(done), rels)
    t.eq("batch --done: the source keeps only dot-files", files_below(src), [])
    t.eq("batch --done: same messages", r.messages, before.messages)
    # a second batch run into the same done folder: names taken get a suffix
    shutil.copytree(corpus, src, dirs_exist_ok=True)
    r2 = dptest.run(dmarcpipe, os.path.join(tmp, "batch-out2"), [src], "--done", done)
    t.eq("second batch --done: all moved again", len(files_below(done)), 2 * len(rels))
    t.check("second batch --done: an earlier file is never replaced",
            all(os.path.exists(os.path.join(done, rel + ".1")) for rel in rels), files_below(done)[:6])
    t.check("second batch --done: ran", r2.rc in (0, 1), r2.describe())


def test_vanished_input(t, dmarcpipe, corpus, tmp):
    """An input gone before it is read (a spool emptied by someone else
    between a scan and its cycle) is a rejected input, not the end of the
    run: nothing is left to quarantine, and the other inputs are counted."""
    ref = dptest.run(dmarcpipe, os.path.join(tmp, "vanish-ref"), [corpus])
    r = dptest.run(dmarcpipe, os.path.join(tmp, "vanish"), [corpus, os.path.join(tmp, "no-such-report.xml")])
    t.eq("a vanished input: exit status 1 (an input rejected), not 3", r.rc, 1)
    t.check("a vanished input: said so", "no-such-report.xml: gone, so not quarantined" in r.stderr,
            r.describe())
    t.eq("a vanished input: the rest counted", r.messages, ref.messages)
    t.eq("a vanished input: one more input rejected", r.summary.get("inputs_rejected"),
         ref.summary.get("inputs_rejected", 0) + 1)
    # a follower, though, must not watch a SOURCE that is not there
    p = subprocess.run([dmarcpipe, "run", "--follow", "--sink", "file:" + os.path.join(tmp, "none.ndjson"),
                        "--state", os.path.join(tmp, "none-state"), os.path.join(tmp, "no-such-spool")],
                       cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    t.eq("--follow on a SOURCE that is not there: exit status 2", p.returncode, 2)
    t.check("--follow on a SOURCE that is not there: said so", "no-such-spool: No such file" in p.stderr, p.stderr)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dmarcpipe, corpus = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    t = dptest.Harness("test_follow")
    with dptest.scratch("follow") as tmp:
        t.run(test_spool, t, dmarcpipe, corpus, tmp)
        t.run(test_restart_without_done, t, dmarcpipe, corpus, tmp)
        t.run(test_own_folders, t, dmarcpipe, corpus, tmp)
        t.run(test_batch_done, t, dmarcpipe, corpus, tmp)
        t.run(test_vanished_input, t, dmarcpipe, corpus, tmp)
    t.finish()


if __name__ == "__main__":
    main()
