#!/usr/bin/env python3
"""test_file_sink -- the embedded default, file sinks with a state, is
exactly once, and a follower survives what it cannot keep.

  * a batch run repeated on the same state (and the embedded default run
    twice in one folder) keeps what the first wrote and adds nothing: the
    file is never replaced;
  * a file the state did not write, or one cut shorter than the state
    committed, is refused (exit 2) and left as it is;
  * a batch run killed with SIGKILL at random moments, again and again,
    then run to its end: exact totals, no torn line;
  * a file-sink follower killed with SIGKILL 20 times while its spool fills
    (--done), then SIGTERM: every input in --done, rollups merged per key
    equal a plain run's, each report once in the feed, no torn line;
  * a follower whose quarantine cannot be written keeps running: rejected
    inputs stay in the spool (not in --done), the good ones count; once the
    quarantine is writable again, a restart takes them; nothing is counted
    twice.

Usage: test_file_sink.py DMARCPIPE DP_GEN_REPORT CORPUS
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402

rng = random.Random(14)


def outputs(out):
    return dptest.RunResult([], 0, "", out, "rollups.ndjson")


def rerun_keeps_the_file(t, dp, gen):
    with dptest.scratch("rerun") as d:
        src = os.path.join(d, "in")
        dptest.gen_reports(gen, src, 40, 100, seed=3)
        truth = dptest.run(dp, os.path.join(d, "truth"), [src])
        state = os.path.join(d, "state")
        first = dptest.run(dp, os.path.join(d, "out"), [src], state=state)
        before = open(os.path.join(d, "out", "rollups.ndjson"), "rb").read()
        second = dptest.run(dp, os.path.join(d, "out"), [src], state=state)
        t.eq("rerun: exit 0", second.rc, 0)
        t.eq("rerun: every report a duplicate", second.summary.get("duplicates"), 40)
        t.eq("rerun: the file kept the first run's rollups", second.messages, truth.messages)
        t.check("rerun: byte for byte", open(os.path.join(d, "out", "rollups.ndjson"), "rb").read() == before)
        t.eq("rerun: the reports feed kept too", len(second.reports), len(first.reports))
        # the embedded default, twice in one folder
        home = os.path.join(d, "home")
        os.makedirs(home)
        for i in range(2):
            p = subprocess.run([dp, "run", src], cwd=home, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=dptest.PROC_TIMEOUT)
            t.eq(f"embedded default, run {i + 1}: exit 0", p.returncode, 0)
        emb = dptest.RunResult([], 0, "", os.path.join(home, "dmarcpipe-out"), "rollups.ndjson")
        t.eq("embedded default, twice: the totals once", emb.messages, truth.messages)
        t.eq("embedded default, twice: each report once", len(emb.reports), 40)


def refuses_a_file_it_did_not_write(t, dp, gen):
    with dptest.scratch("refuse") as d:
        src = os.path.join(d, "in")
        dptest.gen_reports(gen, src, 5, 20, seed=4)
        out = os.path.join(d, "out")
        os.makedirs(out)
        sink = os.path.join(out, "rollups.ndjson")
        with open(sink, "w") as f:
            f.write('{"someone":"else"}\n')
        r = dptest.run(dp, out, [src], state=os.path.join(d, "state-a"))
        t.eq("a file the state did not write: exit 2", r.rc, 2)
        t.check("a file the state did not write: the reason", "did not count" in r.stderr, r.stderr[-400:])
        t.eq("a file the state did not write: left as it was", open(sink).read(), '{"someone":"else"}\n')
        os.unlink(sink)
        r = dptest.run(dp, out, [src], state=os.path.join(d, "state-b"))
        t.eq("a new file: exit 0", r.rc, 0)
        with open(sink, "r+") as f:
            f.truncate(10)
        p = subprocess.run([dp, "run", "--sink", "file:" + sink, "--reports", os.path.join(out, "reports.ndjson"),
                            "--quarantine", os.path.join(out, "q"), "--state", os.path.join(d, "state-b"), src],
                           cwd=out, stdin=subprocess.DEVNULL, capture_output=True, timeout=dptest.PROC_TIMEOUT)
        t.eq("a file cut short: exit 2", p.returncode, 2)
        t.check("a file cut short: the reason", b"fewer than" in p.stderr, p.stderr[-400:])
        t.eq("a file cut short: left as it was", os.path.getsize(sink), 10)


def killed_batches(t, dp, gen):
    with dptest.scratch("killed-batch") as d:
        src = os.path.join(d, "in")
        dptest.gen_reports(gen, src, 1000, 400, seed=5)
        truth = dptest.run(dp, os.path.join(d, "truth"), [src])
        out, state = os.path.join(d, "out"), os.path.join(d, "state")
        os.makedirs(out)
        args = [dp, "run", "--workers", "2", "--shards", "2", "--flush-interval", "1", "--max-keys", "500",
                "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports",
                os.path.join(out, "reports.ndjson"), "--quarantine", os.path.join(out, "q"), "--state", state, src]
        kills = 0
        for _ in range(40):  # killed at random moments until 10 kills, or a run ends first
            p = subprocess.Popen(args, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 1.2))
            if p.poll() is not None:
                break
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=120)
            kills += 1
            if kills == 10:
                break
        r = dptest.run(dp, out, [src], state=state)
        t.eq("killed batches: the last run ends well", r.rc, 0)
        t.note(f"{kills} runs killed mid-way")
        t.check("killed batches: runs were killed mid-way", kills >= 3, kills)
        got = outputs(out)
        t.eq("killed batches: no torn line", got.load_errors, [])
        a, b = dptest.merge(got.rollups), dptest.merge(truth.rollups)
        t.check(f"killed batches: rollups merged = a plain run's ({len(b)} keys)", a == b,
                dptest.diff_multisets(sorted(map(repr, a.values())), sorted(map(repr, b.values()))))
        t.eq("killed batches: each report once in the feed", sorted(x["report_id"] for x in got.reports),
             sorted(x["report_id"] for x in truth.reports))


def follow_args(dp, out, state, done, spool, quarantine=None):
    return [dp, "run", "--follow", "--poll", "1", "--flush-interval", "0", "--epoch-inputs", "7",
            "--workers", "2", "--shards", "2",
            "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports", os.path.join(out, "reports.ndjson"),
            "--quarantine", quarantine or os.path.join(out, "q"), "--state", state, "--done", done, spool]


def wait_following(errpath, since, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(errpath, errors="replace") as f:
            f.seek(since)
            if "dmarcpipe run: following" in f.read():
                return True
        time.sleep(0.1)
    return False


def killed_follower(t, dp, gen, corpus):
    with dptest.scratch("killed-follower") as d:
        staged = os.path.join(d, "staged")
        dptest.gen_reports(gen, staged, 120, 200, seed=6)
        # real reports too, rejects and duplicates included
        shutil.copytree(corpus, os.path.join(staged, "corpus"))
        truth = dptest.run(dp, os.path.join(d, "truth"), [staged])
        files = sorted(os.path.relpath(os.path.join(r, f), staged) for r, _, fs in os.walk(staged) for f in fs
                       if not f.startswith("."))
        spool, done, out, state = (os.path.join(d, n) for n in ("spool", "done", "out", "state"))
        os.makedirs(spool)
        os.makedirs(out)
        errpath = os.path.join(d, "err")
        open(errpath, "w").close()
        fed = 0
        # contiguous waves in name order: where two copies of one report
        # differ, the first to arrive counts, as in the plain run
        waves = [files[len(files) * i // 6:len(files) * (i + 1) // 6] for i in range(6)]
        kills = 0
        for i in range(21):
            since = os.path.getsize(errpath)
            with open(errpath, "a") as err:
                p = subprocess.Popen(follow_args(dp, out, state, done, spool), cwd=d, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
            if i < len(waves):
                for rel in waves[i]:  # written beside, renamed into place
                    dst = os.path.join(spool, rel)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    tmp = os.path.join(os.path.dirname(dst), "." + os.path.basename(dst))
                    shutil.copyfile(os.path.join(staged, rel), tmp)
                    os.rename(tmp, dst)
                    fed += 1
            wait_following(errpath, since)
            if i < 20:
                time.sleep(rng.uniform(0.2, 2.5))
                p.send_signal(signal.SIGKILL)
                kills += 1
                p.wait(timeout=60)
            else:
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline and any(
                        not f.startswith(".") for _, _, fs in os.walk(spool) for f in fs):
                    time.sleep(0.5)
                p.send_signal(signal.SIGTERM)
                t.eq("killed follower: the last one ends on SIGTERM with 0", p.wait(timeout=120), 0)
        moved = sorted(os.path.relpath(os.path.join(r, f), done) for r, _, fs in os.walk(done) for f in fs)
        t.eq("killed follower: every input in --done, once", moved, sorted(files))
        got = outputs(out)
        t.eq("killed follower: no torn line", got.load_errors, [])
        a, b = dptest.merge(got.rollups), dptest.merge(truth.rollups)
        t.check(f"killed follower: {kills} kills, rollups merged = a plain run's ({len(b)} keys)", a == b,
                dptest.diff_multisets(sorted(map(repr, a.values())), sorted(map(repr, b.values()))))
        want = sorted(x["sha256"] for x in truth.reports)
        t.eq("killed follower: each report once in the feed", sorted(x["sha256"] for x in got.reports), want)


def held_by_a_lost_quarantine(t, dp, gen):
    with dptest.scratch("held") as d:
        spool, done, out, state = (os.path.join(d, n) for n in ("spool", "done", "out", "state"))
        os.makedirs(out)
        dptest.gen_reports(gen, spool, 6, 20, seed=9)
        dptest.write(os.path.join(spool, "zz-bad.xml"), "<feedback><nothing/>")
        truth = dptest.run(dp, os.path.join(d, "truth"), [spool])
        q = dptest.write(os.path.join(d, "q-is-a-file"), "x")  # the quarantine cannot be made
        errpath = os.path.join(d, "err")
        with open(errpath, "w") as err:
            p = subprocess.Popen(follow_args(dp, out, state, done, spool, quarantine=q), cwd=d,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(os.listdir(done) if os.path.isdir(done) else []) < 6:
                time.sleep(0.3)
            time.sleep(2.5)  # more polls: the held input is not taken again in this process
            alive = p.poll() is None
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=60)
        text = open(errpath).read()
        t.check("held: the follower kept running", alive, text[-800:])
        t.eq("held: SIGTERM, exit 0", rc, 0)
        t.eq("held: the rejected input stayed in the spool", sorted(os.listdir(spool)), ["zz-bad.xml"])
        t.eq("held: the good ones went to --done", len(os.listdir(done)), 6)
        t.eq("held: said once, not at every poll", text.count("its rejection cannot be kept"), 1)
        # the quarantine is writable again: a restart takes the held input
        os.unlink(q)
        r = dptest.run(dp, out, ["--follow"] if False else [spool], state=state)
        t.eq("held, restart: the rejected input is rejected again, and kept", r.rc, 1)
        got = outputs(out)
        t.eq("held: the totals once", got.messages, truth.messages)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    dp, gen, corpus = (os.path.abspath(a) for a in sys.argv[1:])
    t = dptest.Harness("hostile_file_sink")
    t.run(rerun_keeps_the_file, t, dp, gen)
    t.run(refuses_a_file_it_did_not_write, t, dp, gen)
    t.run(killed_batches, t, dp, gen)
    t.run(killed_follower, t, dp, gen, corpus)
    t.run(held_by_a_lost_quarantine, t, dp, gen)
    t.finish()


if __name__ == "__main__":
    main()
