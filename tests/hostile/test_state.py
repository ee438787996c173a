#!/usr/bin/env python3
"""test_state -- two processes on one --state never double-count.

  * two batch runs started together on one state, over the same 300
    reports, into two sinks: one runs, the other stops at once with "state
    ... is in use by pid N", before it opens (and truncates) its sink; the
    messages of both sinks together equal the truth, once;
  * a follower holds the state: a batch run on it is refused and names the
    follower's pid; the follower's output is untouched;
  * the follower killed with SIGKILL leaves no stale lock: the next run on
    the state goes ahead;
  * the state folder is private (0700).

Usage: test_state.py DMARCPIPE DP_GEN_REPORT
"""
import os
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402


def run_args(dp, out, state, src, *extra):
    os.makedirs(out, exist_ok=True)
    return [dp, "run", "--workers", "1", "--shards", "1", "--sink", "file:" + os.path.join(out, "rollups.ndjson"),
            "--reports", os.path.join(out, "reports.ndjson"), "--quarantine", os.path.join(out, "quarantine"),
            "--state", state, *extra, src]


def messages_in(out):
    return sum(r["messages"] for r in dptest.RunResult([], 0, "", out, "rollups.ndjson").rollups)


def two_batches(t, dp, gen):
    with dptest.scratch("state-two") as d:
        src = os.path.join(d, "in")
        dptest.gen_reports(gen, src, 300, 200, seed=7)
        truth = dptest.run(dp, os.path.join(d, "truth"), [src]).messages
        state = os.path.join(d, "state")
        procs = []
        for name in ("one", "two"):
            out = os.path.join(d, name)
            procs.append((out, subprocess.Popen(run_args(dp, out, state, src), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        results = [(out, p.wait(timeout=dptest.PROC_TIMEOUT), p.stderr.read().decode()) for out, p in procs]
        rcs = sorted(rc for _, rc, _ in results)
        t.check("two at once: one runs (0), the other is refused (3)", rcs == [0, 3],
                "\n".join(f"rc={rc}: {e[-400:]}" for _, rc, e in results))
        refused = [e for _, rc, e in results if rc == 3]
        t.check("two at once: the refusal names the state and the pid",
                bool(refused) and "is in use by pid" in refused[0] and state in refused[0], refused)
        total = sum(messages_in(out) for out, _, _ in results)
        t.eq("two at once: the messages of both sinks, once", total, truth)
        t.eq("two at once: the state is private", stat.S_IMODE(os.stat(state).st_mode), 0o700)


def follower_holds_it(t, dp, gen):
    with dptest.scratch("state-follower") as d:
        src, spool = os.path.join(d, "in"), os.path.join(d, "spool")
        dptest.gen_reports(gen, src, 20, 50, seed=8)
        os.makedirs(spool)
        state = os.path.join(d, "state")
        fout = os.path.join(d, "follower")
        errpath = os.path.join(d, "follower.err")
        with open(errpath, "wb") as err:
            f = subprocess.Popen(run_args(dp, fout, state, spool, "--follow", "--poll", "1"), cwd=d,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "following" not in open(errpath).read():
                time.sleep(0.2)
            r = dptest.run(dp, os.path.join(d, "batch"), [src], state=state)
            t.eq("follower holds it: a batch run on the state exits 3", r.rc, 3)
            t.check("follower holds it: the refusal names the follower's pid",
                    f"is in use by pid {f.pid}" in r.stderr, r.stderr[-500:])
            t.eq("follower holds it: the batch run counted nothing", r.messages, 0)
            f.send_signal(signal.SIGKILL)
            f.wait(timeout=60)
        r = dptest.run(dp, os.path.join(d, "after"), [src], state=state)
        t.eq("after SIGKILL: no stale lock, the run goes ahead", r.rc, 0)
        t.check("after SIGKILL: it counted", r.messages > 0, r.describe())


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dp, gen = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    t = dptest.Harness("hostile_state")
    t.run(two_batches, t, dp, gen)
    t.run(follower_holds_it, t, dp, gen)
    t.finish()


if __name__ == "__main__":
    main()
