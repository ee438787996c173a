#!/usr/bin/env python3
"""The Maildir source (`maildir:PATH`), with real deliveries and real kills.

The truth is a plain batch run, `dmarcpipe run --sink file:...`, over the
same report files: total messages, messages per (policy_domain, source_ip)
and the number of accepted reports.  Each mode turns the reports into mail
(each one a base64 attachment, as receivers send them: raw XML, gzip, zip;
and real .eml files as they are), puts them in a Maildir, and the Maildir
run must find exactly the truth:

  basic     messages in new/ and cur/ (some flagged as a mail client
            leaves them), one message that holds no report, a file in
            tmp/ and a dot-file in new/; one batch run: the totals, every
            report message in .Processed/cur with S added to its flags, the
            no-report message in .Quarantine/cur with its reasons; new/ and
            cur/ empty, tmp/ and the dot-file untouched; a second run counts
            nothing and moves nothing
  smtp      a real SMTP server (PyPI aiosmtpd, its Mailbox handler) delivers
            into the Maildir in waves while two followers (two instance ids,
            two states, two outputs) work on it; then SIGTERM: both exit 0,
            the two outputs together equal the truth, every message ends in
            .Processed (the no-report one in .Quarantine)
  restart   worker A claims every message and holds them (a long
            --flush-interval), then SIGKILL; A is started again with the
            same instance id and state and killed with SIGKILL in the middle
            of its work (once its claims fall to a random mark), --kills
            times, then run to the end: it finds its own claims, and its
            output equals the truth (a try where no kill lands while claims
            are left is made again from the start, up to five times)
  takeover  worker A holds claims and a worker B with --claim-timeout 2
            runs beside it: while A lives, B takes nothing; A gets SIGKILL,
            more mail arrives, and B takes A's claims over (one log line) and
            counts everything: B's output equals the truth, A's is empty, no
            message lost or counted twice
  hostile   a FIFO, a symbolic link and a folder planted in the Maildir do
            not stop or block the run, and are reported; a PATH that is not a
            Maildir (a folder, a missing path, a file) is refused with one
            line on stderr and exit 2, touching nothing

The SMTP server comes from PyPI into a venv cached for every build tree
(DP_MAILDIR_VENV, default ~/.cache/dmarcpipe/maildir-venv); if pip cannot
install it, the smtp mode FAILS rather than skip.

usage: test_maildir.py --dmarcpipe BIN --corpus DIR --mode MODE [--seed S]
"""
import argparse
import collections
import email.message
import email.utils
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time

AIOSMTPD = "aiosmtpd==1.4.6"
MODE = "?"


def log(*a):
    print("test_maildir (%s):" % MODE, *a, flush=True)


def fail(msg):
    sys.exit("FAIL (%s): %s" % (MODE, msg))


# ---- the reports and the truth ----------------------------------------------------

def totals_from_lines(lines):
    per_key = collections.Counter()
    total = 0
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        per_key["%s|%s" % (r["policy_domain"] or "", r["source_ip"] or "")] += r["messages"]
        total += r["messages"]
    return total, per_key


def read_lines(*paths):
    lines = []
    for p in paths:
        if os.path.exists(p):
            with open(p) as f:
                lines += [l for l in f if l.strip()]
    return lines


def run(args, cmd, cwd, timeout=120):
    return subprocess.run([args.dmarcpipe] + cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, errors="replace", timeout=timeout)


def select_reports(args, work, count):
    """`count` report files of the corpus, each holding one report no other
    one holds (by identity and by bytes), mixing raw XML, gzip, zip and
    .eml: two workers with states of their own must not both see one
    report."""
    rows = []
    with open(os.path.join(args.corpus, "MANIFEST.tsv")) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            r = dict(zip(head, line.rstrip("\n").split("\t")))
            if r["expect"] == "accept" and r["reports"] == "1" and r["kind"] in ("xml", "gz", "zip", "eml"):
                rows.append(r)
    cand = os.path.join(work, "candidates")
    os.makedirs(cand)
    kind_of = {}
    for i, r in enumerate(sorted(rows, key=lambda r: r["path"])):
        name = "%03d.%s" % (i, r["kind"])
        shutil.copy(os.path.join(args.corpus, r["path"]), os.path.join(cand, name))
        kind_of[name] = r["kind"]
    rep = os.path.join(work, "candidates.reports.ndjson")
    p = run(args, ["run", "--sink", "file:" + os.path.join(work, "candidates.ndjson"), "--reports", rep,
                   "--state", os.path.join(work, "candidates.state"), cand], work)
    if p.returncode not in (0, 1):
        fail("the run over the candidates exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    per_input = collections.defaultdict(list)
    for line in read_lines(rep):
        r = json.loads(line)
        per_input[os.path.basename(r["input"])].append(
            ((r["org_name"], r["report_id"], r["policy_domain"], r["begin"]), r["sha256"]))
    seen, picked = set(), collections.defaultdict(list)
    for name in sorted(per_input):
        ids = per_input[name]
        if len(ids) != 1 or ids[0][0] in seen or ids[0][1] in seen:
            continue
        seen.update(ids[0])
        picked[kind_of[name]].append(name)
    # a mix: every kind, then round robin up to count
    chosen = []
    while len(chosen) < count and any(picked.values()):
        for k in ("xml", "gz", "zip", "eml"):
            if picked[k] and len(chosen) < count:
                chosen.append(picked[k].pop(0))
    spare = next((n for k in ("xml", "gz", "zip", "eml") for n in picked[k]), None)
    return [(os.path.join(cand, n), kind_of[n]) for n in chosen], (os.path.join(cand, spare) if spare else None)


def truth_of(args, work, reports):
    folder = os.path.join(work, "truth-in")
    os.makedirs(folder)
    for path, _ in reports:
        shutil.copy(path, folder)
    out, rep = os.path.join(work, "truth.ndjson"), os.path.join(work, "truth.reports.ndjson")
    p = run(args, ["run", "--sink", "file:" + out, "--reports", rep, folder], work)
    if p.returncode != 0:
        fail("the truth run exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    total, per_key = totals_from_lines(read_lines(out))
    n_reports = len(read_lines(rep))
    if n_reports != len(reports):
        fail("the truth run counted %d reports of %d files: the selection is not distinct" % (n_reports, len(reports)))
    return total, per_key, n_reports


def check_totals(truth, outs, reps, what):
    total, per_key, n_reports = truth
    got_total, got_keys = totals_from_lines(read_lines(*outs))
    got_reports = len(read_lines(*reps))
    bad = [(k, per_key.get(k, 0), got_keys.get(k, 0)) for k in set(per_key) | set(got_keys)
           if per_key.get(k, 0) != got_keys.get(k, 0)]
    if bad or got_total != total or got_reports != n_reports:
        for k, want, got in sorted(bad)[:20]:
            log("  key %s: truth %d, %s %d" % (k, want, what, got))
        fail("%s: %d messages vs truth %d; %d of %d keys differ; %d reports vs %d"
             % (what, got_total, total, len(bad), len(per_key), got_reports, n_reports))
    log("%s: %d messages over %d keys, %d reports: equal to the truth" % (what, got_total, len(per_key), got_reports))


# ---- mail and Maildirs ---------------------------------------------------------------

MIME = {"xml": ("text", "xml"), "gz": ("application", "gzip"), "zip": ("application", "zip")}


def message_bytes(path, kind, i):
    """The report as a receiver mails it; an .eml is a message already."""
    with open(path, "rb") as f:
        data = f.read()
    if kind == "eml":
        return data
    m = email.message.EmailMessage()
    m["From"] = "noreply-dmarc-support@receiver%d.example" % i
    m["To"] = "dmarc-rua@example.org"
    m["Subject"] = "Report Domain: example.org Submitter: receiver%d.example Report-ID: <%d>" % (i, i)
    m["Date"] = email.utils.formatdate(1718000000 + i, usegmt=True)
    m["Message-ID"] = "<report-%d@receiver%d.example>" % (i, i)
    m.set_content("This is an aggregate report from receiver%d.example.\n" % i)
    maintype, subtype = MIME[kind]
    ext = {"xml": ".xml", "gz": ".xml.gz", "zip": ".zip"}[kind]
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename="report-%d%s" % (i, ext))
    return m.as_bytes()


def no_report_message():
    m = email.message.EmailMessage()
    m["From"] = "someone@example.net"
    m["To"] = "dmarc-rua@example.org"
    m["Subject"] = "Hello"
    m["Date"] = email.utils.formatdate(1718000000, usegmt=True)
    m.set_content("Not a report: a person wrote to the rua address.\n")
    return m.as_bytes()


def make_maildir(path):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def deliver(md, unique, data, folder="new", flags=None):
    """As an MDA does: written whole in tmp/, then renamed in."""
    tmp = os.path.join(md, "tmp", unique)
    with open(tmp, "wb") as f:
        f.write(data)
    name = unique if flags is None else "%s:2,%s" % (unique, flags)
    os.rename(tmp, os.path.join(md, folder, name))
    return name


def unique_name(i):
    return "%d.M%dP%dQ%d.dmarcpipe-test" % (1718000000 + i, i, os.getpid(), i)


def names(d):
    try:
        return sorted(n for n in os.listdir(d) if not n.startswith("."))
    except FileNotFoundError:
        return []


def uniques(d):
    return sorted(n.split(":2,")[0] for n in names(d))


def wait_until(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    fail("timed out after %.0f s waiting for %s" % (timeout, what))


class Worker:
    """A `dmarcpipe run --follow` on the Maildir, its stderr in a file."""

    def __init__(self, args, work, md, wid, extra=()):
        self.wid = wid
        self.out = os.path.join(work, "out-%s.ndjson" % wid)
        self.rep = os.path.join(work, "reports-%s.ndjson" % wid)
        self.errpath = os.path.join(work, "%s-%d.err" % (wid, int(time.time() * 1000)))
        self.cmd = [args.dmarcpipe, "run", "--follow", "--poll", "1", "--instance-id", wid,
                    "--state", os.path.join(work, "state-" + wid), "--sink", "file:" + self.out,
                    "--reports", self.rep] + list(extra) + ["maildir:" + md]
        self.errf = open(self.errpath, "w")
        self.p = subprocess.Popen(self.cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=self.errf)

    def err(self):
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.errf.close()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("worker %s did not stop within 60 s of SIGTERM" % self.wid)
        self.errf.close()
        if rc != 0:
            fail("worker %s exited %d after SIGTERM:\n%s" % (self.wid, rc, self.err()[-3000:]))

    def alive(self):
        if self.p.poll() is not None:
            fail("worker %s exited %d by itself:\n%s" % (self.wid, self.p.returncode, self.err()[-3000:]))
        return True


def claim_cur(md, wid):
    return os.path.join(md, ".Claimed." + wid, "cur")


# ---- the modes ----------------------------------------------------------------------------

def mode_basic(args, work):
    reports, spare = select_reports(args, work, args.count)
    truth = truth_of(args, work, reports)
    md = os.path.join(work, "Maildir")
    make_maildir(md)
    flag_sets = [None, "S", "RS", "", "FS"]  # None: in new/; the others in cur/, as a mail client leaves them
    expect_processed = []
    for i, (path, kind) in enumerate(reports):
        flags = flag_sets[i % len(flag_sets)]
        u = unique_name(i)
        deliver(md, u, message_bytes(path, kind, i), "new" if flags is None else "cur", flags)
        expect_processed.append("%s:2,%s" % (u, "".join(sorted(set((flags or "") + "S")))))
    bad = unique_name(900)
    deliver(md, bad, no_report_message())
    # never read: what a writer has in tmp/, and a dot-file, both holding
    # a report the truth does not have
    hidden = message_bytes(spare, spare.rsplit(".", 1)[1], 950) if spare else no_report_message()
    with open(os.path.join(md, "tmp", "1718000999.writing"), "wb") as f:
        f.write(hidden)
    with open(os.path.join(md, "new", ".1718000998.hidden"), "wb") as f:
        f.write(hidden)
    tmp_before = {n: os.stat(os.path.join(md, "tmp", n)).st_mtime_ns for n in os.listdir(os.path.join(md, "tmp"))}

    out, rep = os.path.join(work, "out.ndjson"), os.path.join(work, "reports.ndjson")
    cmd = ["run", "--sink", "file:" + out, "--reports", rep, "--state", os.path.join(work, "state"), "maildir:" + md]
    p = run(args, cmd, work)
    if p.returncode != 1:
        fail("the run exited %d, expected 1 (one message rejected):\n%s" % (p.returncode, p.stderr[-3000:]))
    check_totals(truth, [out], [rep], "maildir run")
    got = names(os.path.join(md, ".Processed", "cur"))
    if got != sorted(expect_processed):
        fail(".Processed/cur holds %s, expected %s" % (got[:5], sorted(expect_processed)[:5]))
    q = names(os.path.join(md, ".Quarantine", "cur"))
    if q != [bad + ":2,"]:
        fail(".Quarantine/cur holds %s, expected [%s:2,]" % (q, bad))
    with open(os.path.join(md, ".Quarantine", "reasons", bad + ":2,.json")) as f:
        reason = json.load(f)
    if reason.get("key") != "maildir:%s:%s" % (os.path.realpath(md), bad) or not reason.get("errors"):
        fail("the reasons file says %r" % reason)
    if ".Quarantine" not in p.stderr:
        fail("the run did not say where the rejected message went:\n%s" % p.stderr[-2000:])
    if names(os.path.join(md, "cur")) or os.listdir(os.path.join(md, "new")) != [".1718000998.hidden"]:
        fail("left in new/ and cur/: %s %s" % (os.listdir(os.path.join(md, "new")), names(os.path.join(md, "cur"))))
    tmp_after = {n: os.stat(os.path.join(md, "tmp", n)).st_mtime_ns for n in os.listdir(os.path.join(md, "tmp"))}
    if tmp_after != tmp_before:
        fail("tmp/ was touched: %s became %s" % (tmp_before, tmp_after))
    claims = [d for d in os.listdir(md) if d.startswith(".Claimed.")]
    if len(claims) != 1 or names(os.path.join(md, claims[0], "cur")):
        fail("claim folders %s, or messages left in one" % claims)
    log("%d messages in .Processed/cur with S, the no-report one in .Quarantine with its reasons: %s"
        % (len(got), reason["error"]))

    # again: nothing to count, nothing to move
    snap = {f: open(f, "rb").read() for f in (out, rep)}
    listing = {d: names(os.path.join(md, d, "cur")) for d in (".Processed", ".Quarantine")}
    p = run(args, cmd, work)
    if p.returncode != 0:
        fail("the second run exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    if any(open(f, "rb").read() != b for f, b in snap.items()):
        fail("the second run changed the output")
    if {d: names(os.path.join(md, d, "cur")) for d in listing} != listing:
        fail("the second run moved messages")
    log("a second run counts nothing and moves nothing")


def ensure_venv():
    venv = os.environ.get("DP_MAILDIR_VENV") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dmarcpipe", "maildir-venv")
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".dp-requirements")
    ok = os.path.exists(stamp) and open(stamp).read().strip() == AIOSMTPD and subprocess.run(
        [py, "-c", "import aiosmtpd.handlers"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if not ok:
        shutil.rmtree(venv, ignore_errors=True)
        if subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "venv", venv]).returncode != 0:
            fail("cannot make a venv in %s (python3-venv missing?)" % venv)
        if subprocess.run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", AIOSMTPD]).returncode:
            shutil.rmtree(venv, ignore_errors=True)
            fail("pip install %s failed (is PyPI reachable?)" % AIOSMTPD)
        with open(stamp, "w") as f:
            f.write(AIOSMTPD + "\n")
    return py


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mode_smtp(args, work):
    py = ensure_venv()
    reports, _ = select_reports(args, work, args.count)
    truth = truth_of(args, work, reports)
    md = os.path.join(work, "Maildir")
    make_maildir(md)
    port = free_port()
    srv_err = open(os.path.join(work, "aiosmtpd.err"), "w")
    srv = subprocess.Popen([py, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % port,
                            "-c", "aiosmtpd.handlers.Mailbox", md], cwd=work, stdout=srv_err, stderr=srv_err)
    workers = []
    try:
        end = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if srv.poll() is not None or time.time() > end:
                    fail("aiosmtpd did not start on port %d" % port)
                time.sleep(0.1)
        workers = [Worker(args, work, md, w, ["--flush-interval", "1"]) for w in ("w1", "w2")]
        msgs = [message_bytes(path, kind, i) for i, (path, kind) in enumerate(reports)] + [no_report_message()]
        waves = 4
        for w in range(waves):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                for m in msgs[w::waves]:
                    s.sendmail("noreply-dmarc@receiver.example", ["dmarc-rua@example.org"],
                               re.sub(rb"\r?\n", b"\r\n", m))
            log("wave %d: %d message(s) delivered by SMTP" % (w + 1, len(msgs[w::waves])))
            time.sleep(0.7)
        processed, quarantined = os.path.join(md, ".Processed", "cur"), os.path.join(md, ".Quarantine", "cur")
        wait_until(lambda: all(wk.alive() for wk in workers) and len(names(processed)) == len(reports)
                   and len(names(quarantined)) == 1, 90, "every message in .Processed or .Quarantine")
        for wk in workers:
            wk.stop()
    finally:
        for wk in workers:
            if wk.p.poll() is None:
                wk.p.kill()
        srv.terminate()
        srv.wait()
    left = names(os.path.join(md, "new")) + names(os.path.join(md, "cur")) + sum(
        (names(claim_cur(md, w)) for w in ("w1", "w2")), [])
    if left:
        fail("messages left outside .Processed and .Quarantine: %s" % left)
    check_totals(truth, [wk.out for wk in workers], [wk.rep for wk in workers], "two workers together")
    took = [sum(1 for l in read_lines(wk.rep) if "/.Claimed.%s/" % wk.wid in json.loads(l)["input"])
            for wk in workers]
    log("worker w1 counted %d report message(s), w2 %d" % tuple(took))


def restart_attempt(args, work, reports, rng):
    """One try of the restart scenario in its own folder: A claims and
    holds everything, then is restarted and killed --kills times.  Returns
    the Maildir, worker A, how many kills landed while claims were left,
    and whether a restarted A said it found its own claims."""
    md = os.path.join(work, "Maildir")
    make_maildir(md)
    for i, (path, kind) in enumerate(reports):
        deliver(md, unique_name(i), message_bytes(path, kind, i), "new" if i % 2 else "cur", None if i % 2 else "S")
    a = Worker(args, work, md, "wA", ["--flush-interval", "300"])
    wait_until(lambda: a.alive() and len(names(claim_cur(md, "wA"))) == len(reports), 30, "A to claim everything")
    time.sleep(0.5)
    a.kill()
    if read_lines(a.out) or names(os.path.join(md, ".Processed", "cur")):
        fail("A counted or moved something while it should only hold its claims")
    log("A claimed all %d messages and held them; SIGKILL" % len(reports))

    killed_mid, said = 0, False
    for k in range(args.kills):
        before = len(names(claim_cur(md, "wA")))
        if not before:
            break
        # SIGKILL once the claims fall to a random mark: in the middle of
        # the work, wherever its cycles of commits and acks then are
        mark = rng.randint(1, before - 1) if before > 1 else 0
        w = Worker(args, work, md, "wA", ["--flush-interval", "0", "--epoch-inputs", str(rng.randint(1, 3))])
        end = time.time() + 60
        while len(names(claim_cur(md, "wA"))) > mark and time.time() < end and w.alive():
            time.sleep(0.001)
        w.kill()
        after = len(names(claim_cur(md, "wA")))
        if 0 < after < before:
            killed_mid += 1
        said = said or "claimed by this worker (wA) before" in w.err()
        log("restart %d: SIGKILL with %d of %d claims left (%d before)" % (k + 1, after, len(reports), before))
    return md, a, killed_mid, said


def mode_restart(args, work):
    rng = random.Random(args.seed)
    reports, _ = select_reports(args, work, args.count)
    truth = truth_of(args, work, reports)
    # The kill is timed by watching the claims from here; on a busy machine
    # a restart can drain every claim between two looks.  Such a try proves
    # nothing either way, so it is made again from the start in a fresh
    # folder, up to five times, and the test fails if none lands mid-work.
    for attempt in range(1, 6):
        tried = os.path.join(work, "try%d" % attempt)
        os.mkdir(tried)
        md, a, killed_mid, said = restart_attempt(args, tried, reports, rng)
        if killed_mid:
            break
        log("try %d: no restart was killed while claims were left; trying again" % attempt)
    work = tried
    if killed_mid == 0:
        fail("no restart was killed in the middle of its claims in 5 tries: the test proves too little")
    if not said:
        fail("no restarted A said it found its own claims")
    p = run(args, ["run", "--instance-id", "wA", "--state", os.path.join(work, "state-wA"), "--sink", "file:" + a.out,
                   "--reports", a.rep, "maildir:" + md], work)
    if p.returncode != 0:
        fail("the last run exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    check_totals(truth, [a.out], [a.rep], "worker A across %d SIGKILLs" % (killed_mid + 1))
    want = sorted(unique_name(i) for i in range(len(reports)))
    if uniques(os.path.join(md, ".Processed", "cur")) != want or names(claim_cur(md, "wA")):
        fail(".Processed/cur is not every message once: %d names" % len(names(os.path.join(md, ".Processed", "cur"))))
    log("every message once in .Processed/cur")


def mode_takeover(args, work):
    reports, _ = select_reports(args, work, args.count)
    truth = truth_of(args, work, reports)
    md = os.path.join(work, "Maildir")
    make_maildir(md)
    msgs = [(unique_name(i), message_bytes(path, kind, i)) for i, (path, kind) in enumerate(reports)]
    half = len(msgs) // 2
    for u, data in msgs[:half]:
        deliver(md, u, data)
    a = Worker(args, work, md, "wA", ["--flush-interval", "300"])
    wait_until(lambda: a.alive() and len(names(claim_cur(md, "wA"))) == half, 30, "A to claim the first half")
    b = None
    try:
        b = Worker(args, work, md, "wB", ["--flush-interval", "0", "--claim-timeout", "2"])
        time.sleep(4.5)  # past B's claim timeout twice over, while A's heartbeat goes on
        if len(names(claim_cur(md, "wA"))) != half or names(claim_cur(md, "wB")) or read_lines(b.out):
            fail("B took claims of a live A:\n%s" % b.err()[-2000:])
        log("B left the %d claims of a live A alone for 4.5 s (claim timeout 2 s)" % half)
        a.kill()
        t_kill = time.time()
        for u, data in msgs[half:]:
            deliver(md, u, data, "cur", "S")
        processed = os.path.join(md, ".Processed", "cur")
        wait_until(lambda: b.alive() and len(names(processed)) == len(msgs), 60, "B to count everything")
        log("B done %.1f s after A's SIGKILL" % (time.time() - t_kill))
        b.stop()
    finally:
        if b and b.p.poll() is None:
            b.p.kill()
    lines = [l for l in b.err().splitlines() if "took over" in l]
    if len(lines) != 1 or "took over %d message(s) from .Claimed.wA" % half not in lines[0]:
        fail("B's takeover log: %s" % lines)
    silent = float(re.search(r"silent for ([0-9.]+) s", lines[0]).group(1))
    if silent < 2:
        fail("B took over a worker silent for %.0f s only" % silent)
    log(lines[0].strip())
    if read_lines(a.out) or read_lines(a.rep):
        fail("A, killed before its first commit, has output")
    check_totals(truth, [b.out], [b.rep], "worker B")
    if uniques(os.path.join(md, ".Processed", "cur")) != sorted(u for u, _ in msgs) or names(claim_cur(md, "wA")):
        fail(".Processed/cur is not every message once")
    log("%d messages, each once in .Processed/cur; A's claim folder is empty" % len(msgs))


def mode_hostile(args, work):
    reports, spare = select_reports(args, work, 3)
    truth = truth_of(args, work, reports)
    md = os.path.join(work, "Maildir")
    make_maildir(md)
    for i, (path, kind) in enumerate(reports):
        deliver(md, unique_name(i), message_bytes(path, kind, i))
    fifo, link, sub = unique_name(700), unique_name(701), "1718000702.sub"
    os.mkfifo(os.path.join(md, "new", fifo))
    # followed, the link would add a report the truth does not have
    secret = os.path.join(work, "secret")
    shutil.copy(spare or reports[0][0], secret)
    os.symlink(secret, os.path.join(md, "new", link))
    os.mkdir(os.path.join(md, "cur", sub))
    out, rep = os.path.join(work, "out.ndjson"), os.path.join(work, "reports.ndjson")
    t0 = time.time()
    try:
        p = run(args, ["run", "--sink", "file:" + out, "--reports", rep, "--state", os.path.join(work, "state"),
                       "maildir:" + md], work, timeout=60)
    except subprocess.TimeoutExpired:
        fail("the run blocked on the FIFO")
    if p.returncode != 1:
        fail("the run exited %d, expected 1:\n%s" % (p.returncode, p.stderr[-3000:]))
    if "not a regular file (a FIFO)" not in p.stderr or "a symbolic link: not followed" not in p.stderr:
        fail("the FIFO and the link were not reported:\n%s" % p.stderr[-3000:])
    check_totals(truth, [out], [rep], "the run beside a FIFO and a link (%.1f s)" % (time.time() - t0))
    q = os.path.join(md, ".Quarantine", "cur")
    if not stat.S_ISFIFO(os.lstat(os.path.join(q, fifo + ":2,")).st_mode) or \
            not os.path.islink(os.path.join(q, link + ":2,")):
        fail(".Quarantine/cur holds %s" % names(q))
    for n in (fifo, link):
        with open(os.path.join(md, ".Quarantine", "reasons", n + ":2,.json")) as f:
            json.load(f)
    if not os.path.isdir(os.path.join(md, "cur", sub)):
        fail("the folder planted in cur/ was moved")
    log("the FIFO and the link are in .Quarantine/cur with their reasons; the folder in cur/ is left alone")

    # not a Maildir: one line, exit 2, nothing made there
    plain = os.path.join(work, "plain")
    os.makedirs(os.path.join(plain, "new"))
    afile = os.path.join(work, "a-file")
    open(afile, "w").close()
    for target, extra in ((plain, []), (os.path.join(work, "missing"), []), (afile, []), (plain, ["--follow"])):
        p = run(args, ["run", "--sink", "file:" + os.path.join(work, "o.ndjson"),
                       "--state", os.path.join(work, "state-bad")] + extra + ["maildir:" + target], work)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or target not in lines[0]:
            fail("maildir:%s %s: exit %d, stderr %r" % (target, extra, p.returncode, p.stderr))
        log("maildir:%s%s: exit 2, %s" % (os.path.basename(target), " (follow)" if extra else "", lines[0]))
    if os.listdir(plain) != ["new"]:
        fail("the run wrote into a folder that is not a Maildir: %s" % os.listdir(plain))


def main():
    global MODE
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--mode", required=True, choices=["basic", "smtp", "restart", "takeover", "hostile"])
    ap.add_argument("--count", type=int, default=36, help="report messages per mode")
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    MODE = args.mode
    args.dmarcpipe = os.path.abspath(args.dmarcpipe)
    args.corpus = os.path.abspath(args.corpus)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    log("seed %d" % args.seed)
    work = tempfile.mkdtemp(prefix="dp-maildir-")
    try:
        {"basic": mode_basic, "smtp": mode_smtp, "restart": mode_restart, "takeover": mode_takeover,
         "hostile": mode_hostile}[args.mode](args, work)
    except SystemExit:
        log("work folder kept: %s" % work)
        args.keep = True
        raise
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    log("PASS")


if __name__ == "__main__":
    main()
