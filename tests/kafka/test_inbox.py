#!/usr/bin/env python3
"""The Kafka inbox: workers of one consumer group, exactly once, against a
real broker (and, for notifications, a real S3 server).

Every corpus file is produced into an inbox topic of several partitions
(kcat, one message per file).  The truth is a plain file run over the same
files.  Workers run `dmarcpipe run kafka://B/INBOX?group=G --sink
kafka://B/ROLLUPS`, each with a state of its own; a read_committed consumer
of the rollups must then find the truth, key by key (messages and records
per rollup key), and the reports feed one line per accepted report.

  batch    two batch workers started a moment apart (the second joining
           makes the group rebalance); each reads its partitions to the
           end offsets it found and exits 0.  A third run finds nothing new.
  group    three followers: two from the start, the inbox filled in waves,
           a third joining mid-run (a rebalance), one of the first two
           killed with SIGKILL (its partitions go on elsewhere once its
           session times out, from the offsets its last transaction
           committed); then SIGTERM.  Totals exact.
  s3       the inbox holds S3 event notifications (the JSON AWS publishes)
           naming objects in S3Proxy; a batch worker fetches them.  Totals
           exact.
  dup      every file produced twice, into two different partitions at
           once, and two workers reading at the same time: each report is
           counted once (it is decided by the worker that owns the
           partition its identity hashes to; the other copies are
           forwarded there).

usage: test_inbox.py --dmarcpipe BIN --corpus DIR --create-topic BIN
           --bootstrap-file F --mode MODE [--s3-start DIR]
"""
import argparse
import collections
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import urllib.request
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PARTITIONS = 4


def log(*a):
    print("test_inbox:", *a, flush=True)


def corpus_files(corpus):
    out = []
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        for f in sorted(files):
            if f in ("MANIFEST.tsv", "README.md", "LICENSES.md"):
                continue
            out.append(os.path.abspath(os.path.join(root, f)))
    return out


def sums(lines):
    """messages and records per rollup key, and the number of lines."""
    per_key = collections.Counter()
    n = 0
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        n += 1
        key = (r["window_start"], r["policy_domain"], r["source_ip"], r.get("disposition"), r.get("dkim_aligned"),
               r.get("spf_aligned"), r.get("header_from"))
        per_key[key + ("messages",)] += r["messages"]
        per_key[key + ("records",)] += r["records"]
    return per_key, n


def unambiguous(args, files, work):
    """The files without a report whose identity (org, id, domain, begin)
    another file holds with other content: which of such copies is counted
    depends on the order inputs come in, which an inbox of several
    partitions does not keep.  Copies alike stay: they test the dedup."""
    seen = collections.defaultdict(set)  # identity -> sha256s
    holds = {}
    for i, f in enumerate(files):
        d = os.path.join(work, "one-%d" % i)
        os.makedirs(d)
        rep = os.path.join(d, "reports.ndjson")
        p = subprocess.run([args.dmarcpipe, "run", "--sink", "file:" + os.path.join(d, "r.ndjson"), "--reports", rep,
                            "--quarantine", os.path.join(d, "q"), f], cwd=d, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, errors="replace", timeout=120)
        if p.returncode not in (0, 1):
            sys.exit("run over %s alone exited %d: %s" % (f, p.returncode, p.stderr[-1000:]))
        ids = []
        with open(rep) as fh:
            for line in fh:
                r = json.loads(line)
                ident = (r["org_name"], r["report_id"], r["policy_domain"], r["begin"])
                seen[ident].add(r["sha256"])
                ids.append(ident)
        holds[f] = ids
        shutil.rmtree(d)
    return [f for f in files if all(len(seen[i]) == 1 for i in holds[f])]


def ground_truth(args, files, work):
    spool = os.path.join(work, "truth-in")
    os.makedirs(spool)
    for i, f in enumerate(files):
        shutil.copyfile(f, os.path.join(spool, "%04d-%s" % (i, os.path.basename(f))))
    out, rep = os.path.join(work, "truth.ndjson"), os.path.join(work, "truth-reports.ndjson")
    p = subprocess.run([args.dmarcpipe, "run", "--sink", "file:" + out, "--reports", rep,
                        "--quarantine", os.path.join(work, "q-truth"), spool],
                       cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    if p.returncode not in (0, 1):
        sys.exit("ground truth run failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    with open(out) as f:
        per_key, _ = sums(f)
    with open(rep) as f:
        n_reports = sum(1 for line in f if line.strip())
    return per_key, n_reports


def consume(bootstrap, topic):
    p = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-o", "beginning",
                        "-X", "isolation.level=read_committed", "-f", "%s\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if p.returncode != 0:
        if "Unknown topic" in p.stderr or "UNKNOWN_TOPIC" in p.stderr:
            return []
        sys.exit("kcat failed on %s: %s" % (topic, p.stderr[-1000:]))
    return [line for line in p.stdout.splitlines() if line]


def compare(bootstrap, names, truth):
    """'' when the topics hold exactly the truth, else what differs."""
    per_key, n_reports = truth
    got, n_lines = sums(consume(bootstrap, names["rollups"]))
    got_reports = len(consume(bootstrap, names["reports"]))
    bad = [k for k in set(per_key) | set(got) if per_key.get(k, 0) != got.get(k, 0)]
    if not bad and got_reports == n_reports:
        return ""
    msgs = lambda c: sum(v for k, v in c.items() if k[-1] == "messages")
    return ("%d of %d sums differ (messages: kafka %d, truth %d); reports %d vs %d; e.g. %s"
            % (len(bad), len(per_key), msgs(got), msgs(per_key), got_reports, n_reports,
               [(k, per_key.get(k, 0), got.get(k, 0)) for k in sorted(bad, key=str)[:3]]))


def produce(bootstrap, topic, files, rng):
    """Each file one message, into a partition picked at random."""
    by_part = collections.defaultdict(list)
    for f in files:
        by_part[rng.randrange(PARTITIONS)].append(f)
    for p, fs in sorted(by_part.items()):
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(p)] + fs, check=True, timeout=120)


def worker_cmd(args, bootstrap, names, work, name, follow, extra=()):
    return ([args.dmarcpipe, "run", "kafka://%s/%s?group=%s" % (bootstrap, names["inbox"], names["group"])]
            + (["--follow", "--poll", "1"] if follow else [])
            + ["--sink", "kafka://%s/%s" % (bootstrap, names["rollups"]), "--reports-topic", names["reports"],
               "--state", os.path.join(work, name, "state"), "--quarantine", os.path.join(work, name, "q"),
               "--epoch-inputs", "3", "--workers", "2", "--shards", "2",
               # a dead worker's partitions move on after its session, and
               # its open transaction stops hiding later commits after this
               "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000",
               "-X", "transaction.timeout.ms=10000", "-X", "message.timeout.ms=10000"]
            + list(extra))


def start_worker(args, bootstrap, names, work, name, follow, extra=()):
    os.makedirs(os.path.join(work, name), exist_ok=True)
    err = open(os.path.join(work, name + ".log"), "ab")
    return subprocess.Popen(worker_cmd(args, bootstrap, names, work, name, follow, extra), cwd=work,
                            stdout=subprocess.DEVNULL, stderr=err)


def tail(work, name, n=3000):
    try:
        with open(os.path.join(work, name + ".log"), errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def inputs_of(log_text):
    """Inputs a worker's summary says it read."""
    m = re.findall(r"dmarcpipe run: (\d+) inputs", log_text)
    return int(m[-1]) if m else 0


def wait_for_truth(bootstrap, names, truth, timeout):
    deadline = time.time() + timeout
    diff = "never compared"
    while time.time() < deadline:
        diff = compare(bootstrap, names, truth)
        if not diff:
            return ""
        time.sleep(2)
    return diff


def make_topic(args, bootstrap, topic):
    subprocess.run([args.create_topic, bootstrap, topic, str(PARTITIONS)], check=True, timeout=60)


def mode_batch(args, bootstrap, names, work, files, truth, rng):
    make_topic(args, bootstrap, names["inbox"])
    produce(bootstrap, names["inbox"], files, rng)
    a = start_worker(args, bootstrap, names, work, "a", False)
    time.sleep(1.0)
    b = start_worker(args, bootstrap, names, work, "b", False)
    for name, p in (("a", a), ("b", b)):
        if p.wait(timeout=300) not in (0, 1):
            sys.exit("FAIL: batch worker %s exited %d:\n%s" % (name, p.returncode, tail(work, name)))
    diff = compare(bootstrap, names, truth)
    if diff:
        sys.exit("FAIL (batch): %s\n--- a:\n%s\n--- b:\n%s" % (diff, tail(work, "a"), tail(work, "b")))
    counted = [inputs_of(tail(work, n, 10**7)) for n in ("a", "b")]
    if min(counted) == 0:
        sys.exit("FAIL (batch): the work was not shared (inputs per worker: %s): the second worker never got "
                 "partitions while the first ran" % counted)
    c = start_worker(args, bootstrap, names, work, "c", False)
    if c.wait(timeout=300) not in (0, 1):
        sys.exit("FAIL: the third batch worker exited %d:\n%s" % (c.returncode, tail(work, "c")))
    diff = compare(bootstrap, names, truth)
    if diff:
        sys.exit("FAIL (batch, third run): %s\n%s" % (diff, tail(work, "c")))
    log("ok (batch): two workers (%d and %d inputs), a rebalance, exact totals; a third run counted nothing"
        % tuple(counted))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text, name):
    """The value of an unlabelled series in a Prometheus exposition, or None."""
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def check_inbox_metrics(port):
    """A follower's /metrics once everything is counted: the inbox has
    nothing left to read, no delivery failed, and its epochs committed."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    got = {n: metric(text, n) for n in ("dmarcpipe_inbox_consumer_lag", "dmarcpipe_kafka_delivery_errors_total",
                                        "dmarcpipe_epochs_total")}
    if got["dmarcpipe_inbox_consumer_lag"] != 0 or got["dmarcpipe_kafka_delivery_errors_total"] != 0 \
            or not got["dmarcpipe_epochs_total"]:
        return "worker c's metrics once all is counted: %s" % got
    return ""


def mode_group(args, bootstrap, names, work, files, truth, rng):
    make_topic(args, bootstrap, names["inbox"])
    waves = [files[i::6] for i in range(6)]
    c_port = free_port()
    a = start_worker(args, bootstrap, names, work, "a", True)
    b = start_worker(args, bootstrap, names, work, "b", True)
    procs = {"a": a, "b": b}
    try:
        for i, wave in enumerate(waves):
            produce(bootstrap, names["inbox"], wave, rng)
            time.sleep(1.5)
            if i == 1:
                procs["c"] = start_worker(args, bootstrap, names, work, "c", True,
                                          ["--metrics-addr", "127.0.0.1:%d" % c_port])
                log("c joins the group")
            if i == 3:
                victim = rng.choice(["a", "b"])
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                log("%s killed with SIGKILL" % victim)
                del procs[victim]
        diff = wait_for_truth(bootstrap, names, truth, 150)
        time.sleep(3)  # nothing more may come
        diff = diff or compare(bootstrap, names, truth)
        # the lag is the consumer's own figure, updated as it polls
        deadline = time.time() + 20
        while not diff:
            lag = check_inbox_metrics(c_port)
            if not lag or time.time() > deadline:
                diff = lag
                break
            time.sleep(1)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in procs.items():
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                sys.exit("FAIL: worker %s did not stop on SIGTERM" % name)
            if rc != 0:
                sys.exit("FAIL: worker %s exited %d after SIGTERM:\n%s" % (name, rc, tail(work, name)))
    if diff:
        sys.exit("FAIL (group): %s\n--- a:\n%s\n--- b:\n%s\n--- c:\n%s"
                 % (diff, tail(work, "a"), tail(work, "b"), tail(work, "c")))
    log("ok (group): two followers, a third joining, one killed: exact totals; the third's /metrics: "
        "no lag left, no delivery error")


def mode_dup(args, bootstrap, names, work, files, truth, rng):
    """Every file produced twice, into two different partitions at once,
    read by two workers at the same time: each report counts once."""
    make_topic(args, bootstrap, names["inbox"])
    by_part = collections.defaultdict(list)
    for f in files:
        a, b = rng.sample(range(PARTITIONS), 2)
        by_part[a].append(f)
        by_part[b].append(f)
    for p, fs in sorted(by_part.items()):
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", names["inbox"], "-p", str(p)] + fs, check=True,
                       timeout=120)
    procs = {n: start_worker(args, bootstrap, names, work, n, False) for n in ("a", "b")}
    for name, p in procs.items():
        if p.wait(timeout=300) not in (0, 1):
            sys.exit("FAIL: dup worker %s exited %d:\n%s" % (name, p.returncode, tail(work, name)))
    diff = compare(bootstrap, names, truth)
    if diff:
        sys.exit("FAIL (dup): %s\n--- a:\n%s\n--- b:\n%s" % (diff, tail(work, "a"), tail(work, "b")))
    counted = [inputs_of(tail(work, n, 10**7)) for n in ("a", "b")]
    log("ok (dup): %d files each in two partitions, two workers (%d and %d inputs): every report once"
        % (len(files), counted[0], counted[1]))


def s3_put_dir(store, bucket, files):
    """Objects written as S3Proxy's filesystem store keeps them: one file each."""
    keys = []
    for i, f in enumerate(files):
        key = "in/%04d %s" % (i, os.path.basename(f))
        dst = os.path.join(store, bucket, key)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(f, dst)
        keys.append(key)
    return keys


def notification(bucket, keys):
    from urllib.parse import quote_plus
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(k, safe="/"), "size": 1, "eTag": "x"}}}
        for k in keys]})


def mode_s3(args, bootstrap, names, work, files, truth, rng):
    s3dir = os.path.join(work, "s3")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="inboxtest", AWS_SECRET_ACCESS_KEY="inbox-secret-%d" % rng.randrange(10**9))
    p = subprocess.run([os.path.join(args.s3_scripts, "start"), "--dir", s3dir], env=env, stdout=subprocess.PIPE,
                       text=True, timeout=300)
    if p.returncode != 0:
        sys.exit("FAIL: tests/s3/start exited %d" % p.returncode)
    endpoint = p.stdout.strip().splitlines()[-1]
    try:
        bucket = "reports"
        store = os.path.join(s3dir, "data")
        keys = s3_put_dir(store, bucket, files)
        make_topic(args, bootstrap, names["inbox"])
        msgs = []
        for i in range(0, len(keys), 5):  # several objects per notification, as AWS batches them
            msgs.append(notification(bucket, keys[i:i + 5]))
        msgs.append(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}))
        for p_ in range(PARTITIONS):
            batch = "".join(m + "\n" for m in msgs[p_::PARTITIONS])
            subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", names["inbox"], "-p", str(p_)],
                           input=batch, text=True, check=True, timeout=60)
        os.makedirs(os.path.join(work, "s3w"), exist_ok=True)
        cmd = worker_cmd(args, bootstrap, names, work, "s3w", False)
        cmd[2] += "&s3_endpoint=%s&s3_path_style=1" % endpoint
        w = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           errors="replace", timeout=300)
        if w.returncode not in (0, 1):
            sys.exit("FAIL: the s3 worker exited %d:\n%s" % (w.returncode, w.stderr[-3000:]))
        if env["AWS_SECRET_ACCESS_KEY"] in w.stderr:
            sys.exit("FAIL: the secret appears in the worker's output")
        diff = compare(bootstrap, names, truth)
        if diff:
            sys.exit("FAIL (s3): %s\n%s" % (diff, w.stderr[-3000:]))
    finally:
        subprocess.run([os.path.join(args.s3_scripts, "stop"), "--dir", s3dir], timeout=120)
    log("ok (s3): %d objects named by notifications: exact totals" % len(keys))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--create-topic", required=True)
    ap.add_argument("--bootstrap-file", required=True)
    ap.add_argument("--mode", required=True, choices=["batch", "group", "s3", "dup"])
    ap.add_argument("--s3-scripts", default=os.path.join(HERE, "..", "s3"))
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    log("seed", seed)
    rng = random.Random(seed)
    with open(args.bootstrap_file) as f:
        bootstrap = f.read().strip()
    work = tempfile.mkdtemp(prefix="dp-inbox-")
    tag = "%s-%d-%d" % (args.mode, os.getpid(), seed)
    names = {"inbox": "inbox-" + tag, "rollups": "rollups-" + tag, "reports": "reports-" + tag,
             "group": "group-" + tag}
    every = corpus_files(args.corpus)
    files = unambiguous(args, every, work)
    log("%d of %d corpus files hold no report another holds differently" % (len(files), len(every)))
    truth = ground_truth(args, files, work)
    log("truth: %d inputs, %d reports" % (len(files), truth[1]))
    {"batch": mode_batch, "group": mode_group, "s3": mode_s3, "dup": mode_dup}[args.mode](args, bootstrap, names, work, files, truth,
                                                                          rng)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
