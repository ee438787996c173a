#!/usr/bin/env python3
"""Exactly once, proved against a real broker.

The ground truth is a plain `dmarcpipe run --sink file:...` over the corpus:
total messages, messages per rollup key (policy_domain|source_ip) and the
number of accepted reports.  Then the same corpus goes to Kafka the hard
way, and a read_committed consumer (kcat) must find exactly the truth:

  kill     `dmarcpipe run --sink kafka://...` is killed with SIGKILL at a
           random moment, --kills times, and restarted each time with the
           same state directory and instance id; a last run completes.
  restart  the broker is stopped in the middle of a run and started again
           (same data, same port); the run must carry on by itself.
  sigterm  SIGTERM in the middle of a run: it must exit 0 having committed
           or aborted its epoch cleanly; a second run completes the work.
  follow   `dmarcpipe run --follow --done DONE SPOOL`, the long-running mode:
           the corpus is dropped into the spool in waves (renamed in, as a
           mail drop delivers), while the follower is killed with SIGKILL
           --kills times at random moments and restarted; then SIGTERM must
           stop it with exit 0.  Every input must end in DONE (moved only
           once its epoch committed), none left in the spool.
  lost-state  a crash after a commit and before the state learns of it,
           for every epoch at once: a complete run, then its state directory
           is deleted and the run started again.  The restart must read
           every epoch back from the ledger and run nothing again, though
           some inputs have names that are not UTF-8 (or hold quotes,
           backslashes, a tab and a newline), which a JSON string cannot hold
           as they are.

Each mode uses topics and an instance id of its own, so modes can share a
broker.  `restart` starts a broker of its own (it has to stop it).

usage: test_exactly_once.py --dmarcpipe BIN --corpus DIR --mode MODE
           [--bootstrap HOST:PORT | --bootstrap-file F] [--kills N] [--seed S]
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print("test_exactly_once:", *a, flush=True)


def totals_from_lines(lines):
    per_key = collections.Counter()
    total = 0
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        key = "%s|%s" % (r["policy_domain"] or "", r["source_ip"] or "")
        per_key[key] += r["messages"]
        total += r["messages"]
    return total, per_key


def ground_truth(args, work):
    out = os.path.join(work, "truth.ndjson")
    reports = os.path.join(work, "truth-reports.ndjson")
    p = subprocess.run([args.dmarcpipe, "run", "--sink", "file:" + out, "--reports", reports,
                        "--quarantine", os.path.join(work, "q-truth"), args.corpus],
                       cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    if p.returncode not in (0, 1):
        sys.exit("ground truth run failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    with open(out) as f:
        total, per_key = totals_from_lines(f)
    with open(reports) as f:
        n_reports = sum(1 for line in f if line.strip())
    return total, per_key, n_reports


def consume(bootstrap, topic):
    """Every committed message of the topic, as (key, value) lines."""
    p = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-o", "beginning",
                        "-X", "isolation.level=read_committed", "-f", "%k\t%s\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit("kcat failed on %s: %s" % (topic, p.stderr[-1000:]))
    return [line.split("\t", 1) for line in p.stdout.splitlines() if line]


def check(args, bootstrap, names, truth):
    total, per_key, n_reports = truth
    rows = consume(bootstrap, names["rollups"])
    got_total, got_keys = totals_from_lines(v for _, v in rows)
    for k, v in rows:  # the message key is the rollup's policy_domain|source_ip
        r = json.loads(v)
        want = "%s|%s" % (r["policy_domain"] or "", r["source_ip"] or "")
        if k != want:
            sys.exit("FAIL: message key %r, rollup says %r" % (k, want))
    got_reports = len(consume(bootstrap, names["reports"]))
    bad = [(k, per_key.get(k, 0), got_keys.get(k, 0)) for k in set(per_key) | set(got_keys)
           if per_key.get(k, 0) != got_keys.get(k, 0)]
    if bad or got_total != total or got_reports != n_reports:
        for k, want, got in sorted(bad)[:20]:
            log("  key %s: truth %d, kafka %d" % (k, want, got))
        sys.exit("FAIL (%s): kafka total %d vs truth %d; %d of %d keys differ; reports %d vs %d"
                 % (args.mode, got_total, total, len(bad), len(per_key), got_reports, n_reports))
    log("ok (%s): %d messages over %d keys in %d rollup messages, %d reports, equal to the truth"
        % (args.mode, got_total, len(per_key), len(rows), got_reports))


def run_cmd(args, bootstrap, names, work):
    return [args.dmarcpipe, "run", "--sink", "kafka://%s/%s" % (bootstrap, names["rollups"]),
            "--reports-topic", names["reports"], "--instance-id", names["instance"],
            "--state", os.path.join(work, "state"), "--quarantine", os.path.join(work, "q"),
            "--epoch-inputs", str(args.epoch_inputs), "--workers", "2", "--shards", "2",
            # the broker here is one node: fail fast enough to retry in the test's time
            "-X", "message.timeout.ms=30000", "-X", "transaction.timeout.ms=60000",
            args.corpus]


def finish(args, bootstrap, names, work, timeout=300):
    """A run to completion; returns its stderr."""
    p = subprocess.run(run_cmd(args, bootstrap, names, work), cwd=work, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, errors="replace", timeout=timeout)
    if p.returncode not in (0, 1):
        sys.exit("FAIL: the final run exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    return p.stderr


def mode_kill(args, bootstrap, names, work, rng):
    killed = finished = 0
    for i in range(args.kills):
        errlog = open(os.path.join(work, "run-%02d.err" % i), "w")
        p = subprocess.Popen(run_cmd(args, bootstrap, names, work), cwd=work, stdout=subprocess.DEVNULL,
                             stderr=errlog)
        time.sleep(rng.uniform(0.05, args.max_kill_delay))
        if p.poll() is None:
            p.kill()  # SIGKILL: no cleanup of any kind
            killed += 1
        else:
            finished += 1
        p.wait()
        errlog.close()
    err = finish(args, bootstrap, names, work)
    log("%d runs killed with SIGKILL, %d had finished first; final run: %s"
        % (killed, finished, " ".join(l.strip() for l in err.splitlines() if "epochs:" in l)))
    if killed < args.kills // 2:
        sys.exit("FAIL: only %d of %d runs were killed mid-run: the test proves too little" % (killed, args.kills))


def mode_restart(args, bootstrap, names, work, rng, broker_dir):
    errpath = os.path.join(work, "run.err")
    with open(errpath, "w") as errlog:
        p = subprocess.Popen(run_cmd(args, bootstrap, names, work), cwd=work, stdout=subprocess.DEVNULL,
                             stderr=errlog)
        time.sleep(rng.uniform(0.5, 1.5))
        if p.poll() is not None:
            sys.exit("FAIL: the run finished before the broker could be stopped; use a larger corpus")
        subprocess.run([os.path.join(HERE, "stop"), "--dir", broker_dir, "--keep"], check=True,
                       stdout=subprocess.DEVNULL)
        log("broker stopped mid-run")
        time.sleep(args.down_seconds)
        subprocess.run([os.path.join(HERE, "start"), "--dir", broker_dir], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        log("broker started again after %.0f s" % args.down_seconds)
        try:
            rc = p.wait(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            sys.exit("FAIL: the run did not finish within 300 s of the broker's return")
    with open(errpath) as f:
        err = f.read()
    if rc not in (0, 1):
        sys.exit("FAIL: the run exited %d after the broker restart:\n%s" % (rc, err[-3000:]))
    log("run resumed by itself: " + " ".join(l.strip() for l in err.splitlines() if "epochs:" in l))
    finish(args, bootstrap, names, work)  # must find nothing left to do


def follow_cmd(args, bootstrap, names, work):
    cmd = run_cmd(args, bootstrap, names, work)[:-1]  # not the corpus: the spool
    return cmd + ["--follow", "--poll", "1", "--flush-interval", "1", "--done", os.path.join(work, "done"),
                  os.path.join(work, "spool")]


def spool_files(root):
    """Files below root; not those named with a leading dot, which a
    follower never reads (a writer's temporary name, by convention)."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                  if not f.startswith("."))


def mode_follow(args, bootstrap, names, work, rng):
    staged = spool_files(args.corpus)
    spool, done = os.path.join(work, "spool"), os.path.join(work, "done")
    os.makedirs(spool)
    # the waves: the corpus in five runs of its sorted list, each renamed
    # into the spool in order.  Arrival order is then input order: where
    # two copies of a report differ (the corpus has such), the one that
    # arrives first counts, as the first in input order does for the truth.
    per = (len(staged) + 4) // 5
    waves = [staged[i:i + per] for i in range(0, len(staged), per)]
    stage = os.path.join(work, "stage")
    shutil.copytree(args.corpus, stage)
    killed = 0
    procs = []

    def start(i):
        errlog = open(os.path.join(work, "follow-%02d.err" % i), "w")
        procs.append(errlog)
        return subprocess.Popen(follow_cmd(args, bootstrap, names, work), cwd=work, stdout=subprocess.DEVNULL,
                                stderr=errlog)

    p = start(0)
    for i in range(max(args.kills, len(waves))):
        if i < len(waves):
            for rel in waves[i]:
                os.makedirs(os.path.dirname(os.path.join(spool, rel)), exist_ok=True)
                os.rename(os.path.join(stage, rel), os.path.join(spool, rel))
        time.sleep(rng.uniform(0.5, args.max_kill_delay + 2.0))
        if i < args.kills:
            if p.poll() is not None:
                sys.exit("FAIL: the follower exited by itself (%d)" % p.returncode)
            p.kill()
            p.wait()
            killed += 1
            p = start(i + 1)
    deadline = time.time() + 300
    while spool_files(spool) and time.time() < deadline:
        if p.poll() is not None:
            sys.exit("FAIL: the follower exited by itself (%d)" % p.returncode)
        time.sleep(0.5)
    left = spool_files(spool)
    # SIGTERM once it is following: before it has set its handler (a slow
    # start under ASan), the signal's default action would end it
    errpath = os.path.join(work, "follow-%02d.err" % (len(procs) - 1))
    while time.time() < deadline + 60 and p.poll() is None:
        with open(errpath) as f:
            if "dmarcpipe run: following" in f.read():
                break
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=120)
    for f in procs:
        f.close()
    with open(os.path.join(work, "follow-%02d.err" % (len(procs) - 1))) as f:
        err = f.read()
    if left:
        sys.exit("FAIL: %d input(s) still in the spool after 300 s, e.g. %s:\n%s" % (len(left), left[:3], err[-3000:]))
    if rc != 0:
        sys.exit("FAIL: SIGTERM: the follower exited %d, not 0:\n%s" % (rc, err[-2000:]))
    moved = spool_files(done)
    # a name taken twice gets a ".N" suffix in DONE; every input is there once
    if len(moved) != len(staged):
        sys.exit("FAIL: %d files in DONE, %d were dropped into the spool" % (len(moved), len(staged)))
    cycles = sum(len(re.findall(r"^dmarcpipe run: cycle ", open(os.path.join(work, "follow-%02d.err" % i)).read(),
                                re.M)) for i in range(len(procs)))
    log("follow: %d inputs in %d waves, %d kills, %d cycles; all moved to DONE; SIGTERM: exit 0"
        % (len(staged), len(waves), killed, cycles))


def mode_sigterm(args, bootstrap, names, work, rng):
    errpath = os.path.join(work, "run.err")
    with open(errpath, "w") as errlog:
        p = subprocess.Popen(run_cmd(args, bootstrap, names, work), cwd=work, stdout=subprocess.DEVNULL,
                             stderr=errlog)
        time.sleep(rng.uniform(0.6, 1.2))
        if p.poll() is not None:
            sys.exit("FAIL: the run finished before SIGTERM; use a larger corpus")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
    with open(errpath) as f:
        err = f.read()
    if rc != 0:
        sys.exit("FAIL: SIGTERM: exit status %d, not 0:\n%s" % (rc, err[-2000:]))
    if "stopp" not in err:
        sys.exit("FAIL: SIGTERM: the run did not say it stopped:\n%s" % err[-2000:])
    log("SIGTERM: exit 0; " + " ".join(l.strip() for l in err.splitlines() if "epochs:" in l))
    finish(args, bootstrap, names, work)


# Names a JSON ledger must carry: bytes that are not UTF-8 (Latin-1, a lone
# continuation byte), and characters JSON escapes.
AWKWARD_NAMES = [b"latin1-r\xe9sum\xe9.xml", b"lone-\x80\xff.xml", b'quote"back\\slash.xml',
                 b"tab\tnew\nline.xml"]


def rename_awkwardly(corpus):
    """Gives the first few report files of the corpus awkward names."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs
                   if f.endswith((".xml", ".gz", ".zip")))
    if len(files) < len(AWKWARD_NAMES):
        sys.exit("FAIL: the corpus has too few reports to rename")
    for path, name in zip(files, AWKWARD_NAMES):
        os.rename(os.fsencode(path), os.path.join(os.fsencode(os.path.dirname(path)), name))
    return len(files)


def mode_lost_state(args, bootstrap, names, work, rng):
    first = finish(args, bootstrap, names, work)
    took = re.search(r"^dmarcpipe run: (\d+) inputs", first, re.M)
    if not took:
        sys.exit("FAIL: the complete run did not say how many inputs it took:\n" + first[-2000:])
    n_inputs = int(took.group(1))
    log("complete run: " + " ".join(l.strip() for l in first.splitlines() if "epochs:" in l))
    shutil.rmtree(os.path.join(work, "state"))
    err = finish(args, bootstrap, names, work)
    skipped = [l for l in err.splitlines() if "already committed by an earlier run" in l]
    recovered = [l for l in err.splitlines() if "recovered" in l and "from the ledger" in l]
    if not recovered or not skipped or not skipped[0].split(": ")[1].startswith("%d input(s)" % n_inputs):
        sys.exit("FAIL: after the state was lost, the restart did not take all %d inputs from the ledger:\n%s"
                 % (n_inputs, err[-3000:]))
    log("state lost: " + "; ".join(l.strip() for l in recovered + skipped))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--mode", choices=["kill", "restart", "sigterm", "lost-state", "follow"], required=True)
    ap.add_argument("--bootstrap")
    ap.add_argument("--bootstrap-file")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--max-kill-delay", type=float, default=2.0)
    ap.add_argument("--epoch-inputs", type=int, default=3)
    ap.add_argument("--down-seconds", type=float, default=5)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--copies", type=int, default=1,
                    help="run over N copies of the corpus (more work per run, so that kills land mid-run; "
                         "the copies are duplicates, so the truth does not change)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.dmarcpipe = os.path.abspath(args.dmarcpipe)
    args.corpus = os.path.abspath(args.corpus)
    rng = random.Random(args.seed)
    log("mode %s, seed %d" % (args.mode, args.seed))
    work = tempfile.mkdtemp(prefix="dp-eo-")
    tag = "%s-%d-%d" % (args.mode, os.getpid(), args.seed)
    names = {"rollups": "eo.rollups." + tag, "reports": "eo.reports." + tag, "instance": "eo-" + tag}
    broker_dir = None
    try:
        if args.copies > 1:
            base = os.path.join(work, "corpus")
            for i in range(args.copies):
                shutil.copytree(args.corpus, os.path.join(base, "copy-%d" % i))
            args.corpus = base
        if args.mode == "lost-state":
            base = os.path.join(work, "corpus-renamed")
            shutil.copytree(args.corpus, base)
            args.corpus = base
            rename_awkwardly(base)
        truth = ground_truth(args, work)
        if args.mode == "restart":
            broker_dir = os.path.join(work, "broker")
            bootstrap = subprocess.run([os.path.join(HERE, "start"), "--dir", broker_dir], check=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        elif args.bootstrap_file:
            with open(args.bootstrap_file) as f:
                bootstrap = f.read().strip()
        else:
            bootstrap = args.bootstrap
        if not bootstrap:
            sys.exit("no broker: give --bootstrap or --bootstrap-file")
        log("truth: %d messages, %d keys, %d reports; broker %s" % (truth[0], len(truth[1]), truth[2], bootstrap))
        if args.mode == "kill":
            mode_kill(args, bootstrap, names, work, rng)
        elif args.mode == "restart":
            mode_restart(args, bootstrap, names, work, rng, broker_dir)
        elif args.mode == "lost-state":
            mode_lost_state(args, bootstrap, names, work, rng)
        elif args.mode == "follow":
            mode_follow(args, bootstrap, names, work, rng)
        else:
            mode_sigterm(args, bootstrap, names, work, rng)
        check(args, bootstrap, names, truth)
    finally:
        if broker_dir:
            subprocess.run([os.path.join(HERE, "stop"), "--dir", broker_dir], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if args.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
