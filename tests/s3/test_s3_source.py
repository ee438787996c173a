#!/usr/bin/env python3
"""The s3:// source against a real S3 server (S3Proxy, tests/s3/start).

Every mode puts report files into a bucket and checks `dmarcpipe run
s3://...` against the truth: a plain run over the same report files, equal
in total messages, messages per policy_domain|source_ip, and accepted
reports.

  bulk     10,000 generated reports (some under names with spaces and '!'),
           the bundled samples (gzip, zip, raw mail, a failure report) and
           an empty object: exact totals, the failure report in the local
           quarantine with its reason, the empty object skipped and said
           once, the bucket untouched (after=keep); a second run counts
           nothing.  after=delete: the bucket's prefix emptied, exact
           totals; after=move:done/&quarantine=bad/: every counted object
           under done/ at its path, the failure report under bad/, exact
           totals; a second run counts nothing
  big      one generated report of 50 MB and one of BIG_MB (default 100;
           500 in the `slow` test) as XML objects: exact totals, and the
           run's peak RSS for the larger within 1.5x or +30 MB of the
           smaller's (the object is streamed, never held)
  kill     GETs slowed down by a relay; the run is killed (SIGKILL) in the
           middle of them, then run again on the same state: exact totals,
           nothing counted twice
  secret   a wrong secret, and an unknown key: exit 3 with one line naming
           the bucket and the S3 error Code, nothing counted, no state file,
           the secret in no output; no credentials at all: exit 2; a
           follower with a wrong secret says it once and does not retry in
           a storm; the shared credentials file (AWS_PROFILE): exact totals
  faults   a relay answering 500 InternalError to the first 5 requests and
           cutting one GET's body mid-way: exact totals, the GET resumed
           with a Range; a relay always answering 500: exit 3 with the last
           status after retries=3 tries; a relay cutting a GET of one large
           object and closing its resumptions unanswered: that object left for a later run (a read error,
           not a rejection), the rest counted
  follow   --follow while objects arrive in waves (and one under a key that
           sorts before the watermark, found by the relisting, relist=2):
           each counted once; SIGTERM: exit 0; a restart counts nothing

usage: test_s3_source.py --dmarcpipe BIN --mode MODE [--big-mb N]
"""
import argparse
import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3test as T  # noqa: E402


def gen_objects(n, seed=0, records=2):
    """n generated reports: (key below the prefix, bytes); every 500th under
    a name that needs escaping."""
    out = []
    for i in range(n):
        name = "odd name! %05d.xml" % i if i % 500 == 7 else "%02d/r-%05d.xml" % (i % 20, i)
        out.append((name, T.report(i, records=records, seed=seed)))
    return out


def mode_bulk(dp, work):
    srv = T.Server(work)
    try:
        objs = gen_objects(10000) + [("samples/" + n, d) for n, d in T.samples()]
        want = T.truth(dp, objs, work)
        T.log("%d objects: truth %d messages, %d reports, %d rejected" % (len(objs), want[0], want[2], want[3]))
        t0 = time.time()
        srv.make_bucket("reports")
        for k, d in objs:
            srv.put("reports", "in/" + k, d)
        srv.put("reports", "in/empty.xml", b"")
        srv.put("reports", "other/not-in-prefix.xml", T.report(99999))
        T.log("bucket filled in %.1f s" % (time.time() - t0))
        before = srv.keys("reports")
        env = srv.creds()
        out, state = os.path.join(work, "keep"), os.path.join(work, "state-keep")
        t0 = time.time()
        r = T.run(dp, out, [srv.uri("reports", "in/")], env=env, state=state)
        T.log("keep run: %.1f s" % (time.time() - t0))
        T.check(r.returncode == 1, "keep: exit 1 (the failure report rejected)", "exit %d:\n%s" % (r.returncode, r.stderr[-3000:]))
        T.same_totals(T.out_totals(out), want, "keep")
        inputs, rejected, _ = T.summary(r.stderr)
        T.check(inputs == len(objs) and rejected == want[3], "keep: %s inputs, %s rejected" % (inputs, rejected))
        T.check(r.stderr.count("folder marker(s) or empty object(s) skipped") == 1,
                "the empty object is skipped, and said once", r.stderr[-2000:])
        q = sorted(os.listdir(os.path.join(out, "quarantine")))
        T.check(len([n for n in q if n.endswith(".reason")]) == want[3] and len(q) == 2 * want[3],
                "keep: the local quarantine holds each rejected object with its reason", str(q))
        T.check(srv.keys("reports") == before, "keep: the bucket is left as it was")
        size = os.path.getsize(os.path.join(out, "rollups.ndjson"))
        r = T.run(dp, out, [srv.uri("reports", "in/")], env=env, state=state)
        inputs, _, messages = T.summary(r.stderr)
        T.check(r.returncode == 0 and messages == 0 and os.path.getsize(os.path.join(out, "rollups.ndjson")) == size
                and "already counted by an earlier run" in r.stderr,
                "keep: a second run counts nothing", r.stderr[-2000:])

        small = gen_objects(300, seed=1) + [("samples/" + n, d) for n, d in T.samples()]
        want = T.truth(dp, small, work, "truth-small")
        for bucket in ("del", "moved"):
            srv.make_bucket(bucket)
            for k, d in small:
                srv.put(bucket, "in/" + k, d)
            srv.put(bucket, "in/empty.xml", b"")
            srv.put(bucket, "keep/x.xml", T.report(5))
        out = os.path.join(work, "del")
        r = T.run(dp, out, [srv.uri("del", "in/", "&after=delete")], env=env, state=os.path.join(work, "state-del"))
        T.check(r.returncode == 1, "delete: exit 1", r.stderr[-3000:])
        T.same_totals(T.out_totals(out), want, "delete")
        T.check(srv.keys("del") == ["in/empty.xml", "keep/x.xml"], "delete: every input deleted, the rest kept",
                str(srv.keys("del")[:10]))
        out, state = os.path.join(work, "moved"), os.path.join(work, "state-mv")
        uri = srv.uri("moved", "in/", "&after=move:done/&quarantine=bad/")
        r = T.run(dp, out, [uri], env=env, state=state)
        T.check(r.returncode == 1, "move: exit 1", r.stderr[-3000:])
        T.same_totals(T.out_totals(out), want, "move")
        done = sorted("in/" + k for k in (x[len("done/"):] for x in srv.keys("moved", "done/")))
        bad = srv.keys("moved", "bad/")
        T.check(srv.keys("moved", "in/") == ["in/empty.xml"], "move: nothing left under in/ but the empty object")
        T.check(len(done) == len(small) - want[3] and set(done) <= set("in/" + k for k, _ in small),
                "move: %d objects under done/, at their paths" % len(done))
        T.check(bad == ["bad/samples/stalwartlabs-003.eml"], "move: the failure report under bad/", str(bad))
        r = T.run(dp, out, [uri], env=env, state=state)
        T.check(r.returncode == 0 and T.summary(r.stderr)[2] == 0, "move: a second run counts nothing", r.stderr[-2000:])
    finally:
        srv.stop()


def gen_big(path, mb, seed):
    """A report of about `mb` MB of XML written streaming to path: (messages, md5)."""
    md5 = hashlib.md5()
    messages = 0
    import dptest
    with open(path, "wb") as f:
        def w(s):
            b = s.encode()
            md5.update(b)
            f.write(b)
        w(dptest.report_head("big.example", "big-%d" % seed, "big.example", 1700000000, 1700086399))
        written, i = 0, 0
        chunk = []
        while written < mb << 20:
            ip, count = "198.51.100.%d" % (i % 200), 1 + i % 7
            chunk.append(dptest.record_xml(ip, count, "big.example"))
            messages += count
            i += 1
            if len(chunk) == 2000:
                s = "".join(chunk)
                w(s)
                written += len(s)
                chunk = []
        w("".join(chunk) + dptest.REPORT_TAIL)
    return messages, md5.digest()


def peak_rss_run(dp, out, uri, env, state):
    """Runs dmarcpipe; (rc, stderr, peak RSS in MB) of that one process."""
    os.makedirs(out, exist_ok=True)
    args = [dp, "run", "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports",
            os.path.join(out, "reports.ndjson"), "--quarantine", os.path.join(out, "quarantine"), "--state", state,
            "--workers", "2", "--shards", "2", uri]
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(args, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             env=dict(os.environ, **env))
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    T.sanitizer_free(text, "run")
    return p.returncode, text, ru.ru_maxrss / 1024.0


def mode_big(dp, work, big_mb):
    srv = T.Server(work)
    try:
        env = srv.creds()
        srv.make_bucket("big")
        rss = {}
        for mb in (50, big_mb):
            path = os.path.join(srv.staging, "big-%d.xml" % mb)
            t0 = time.time()
            messages, md5 = gen_big(path, mb, mb)
            size = os.path.getsize(path)
            srv.put_file("big", "r%d/report.xml" % mb, path, md5)
            T.log("%d MB object (%d bytes, %d messages) generated in %.1f s" % (mb, size, messages, time.time() - t0))
            out = os.path.join(work, "out-%d" % mb)
            t0 = time.time()
            rc, err, peak = peak_rss_run(dp, out, srv.uri("big", "r%d/" % mb), env, os.path.join(work, "st-%d" % mb))
            T.log("%d MB: run %.1f s, peak RSS %.1f MB" % (mb, time.time() - t0, peak))
            T.check(rc == 0, "%d MB: exit 0" % mb, err[-2000:])
            got = T.out_totals(out)
            T.check(got[0] == messages and got[2] == 1, "%d MB: %d messages, 1 report, as generated" % (mb, messages),
                    "got %d messages, %d reports" % (got[0], got[2]))
            rss[mb] = peak
            os.unlink(os.path.join(srv.bucket_dir("big"), "r%d/report.xml" % mb))
        small, big = rss[50], rss[big_mb]
        T.check(big < small * 1.5 or big < small + 30,
                "peak RSS flat: %.1f MB for %d MB, %.1f MB for 50 MB" % (big, big_mb, small))
    finally:
        srv.stop()


def mode_kill(dp, work):
    srv = T.Server(work)
    proxy = None
    try:
        objs = gen_objects(40, seed=3, records=3) + [("large-%d.xml" % i, T.report(9000 + i, records=12000))
                                                      for i in range(2)]
        want = T.truth(dp, objs, work)
        srv.make_bucket("killed")
        for k, d in objs:
            srv.put("killed", "in/" + k, d)
        env = srv.creds()
        proxy = T.Proxy(srv.port, delay=0.02)
        out, state = os.path.join(work, "out"), os.path.join(work, "state")
        os.makedirs(out)
        args = [dp, "run", "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports",
                os.path.join(out, "reports.ndjson"), "--quarantine", os.path.join(out, "quarantine"),
                "--state", state, "--workers", "2", srv.uri("killed", "in/", port=proxy.port)]
        p = subprocess.Popen(args, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=dict(os.environ, **env))
        # in the middle of the large GETs: the relay has seen some, and is sending slowly
        T.wait_for(lambda: any("large" in r[1] for r in proxy.started) or p.poll() is not None, 60, 0.05)
        time.sleep(0.5)
        alive = p.poll() is None
        p.kill()
        p.wait()
        p.stderr.close()
        T.check(alive, "the run was killed (SIGKILL) while it read")
        proxy.delay = 0
        r = T.run(dp, out, [srv.uri("killed", "in/")], env=env, state=state)
        T.check(r.returncode == 0, "the run again: exit 0", r.stderr[-3000:])
        T.same_totals(T.out_totals(out), want, "after a SIGKILL mid-GET")
        r = T.run(dp, out, [srv.uri("killed", "in/")], env=env, state=state)
        T.check(r.returncode == 0 and T.summary(r.stderr)[2] == 0, "a third run counts nothing", r.stderr[-2000:])
    finally:
        if proxy:
            proxy.close()
        srv.stop()


def no_secret(text, secret, what):
    T.check(secret not in text, "the secret is not in %s" % what)


def mode_secret(dp, work):
    srv = T.Server(work)
    try:
        objs = gen_objects(30, seed=4)
        want = T.truth(dp, objs, work)
        srv.make_bucket("sec")
        for k, d in objs:
            srv.put("sec", "in/" + k, d)
        wrong = "W" + srv.secret_key[1:] if srv.secret_key[0] != "W" else "X" + srv.secret_key[1:]
        for what, env, code in (("a wrong secret", srv.creds(wrong), "SignatureDoesNotMatch"),
                                ("an unknown key", {"AWS_ACCESS_KEY_ID": "AKIDNOSUCHKEY0000000",
                                                    "AWS_SECRET_ACCESS_KEY": wrong}, "InvalidAccessKeyId")):
            out, state = os.path.join(work, "wrong-" + code), os.path.join(work, "state-" + code)
            r = T.run(dp, out, [srv.uri("sec", "in/")], env=env, state=state)
            lines = [l for l in r.stderr.splitlines() if "bucket sec" in l]
            T.check(r.returncode == 3, "%s: exit 3" % what, "exit %d" % r.returncode)
            T.check(len(lines) == 1 and code in lines[0], "%s: one line naming the bucket and %s" % (what, code),
                    r.stderr[-2000:])
            T.log("  " + (lines[0] if lines else ""))
            T.check(T.out_totals(out)[0] == 0 and T.summary(r.stderr)[0] == 0, "%s: nothing counted" % what)
            src = os.path.join(state, "sources")
            T.check(not os.path.isdir(src) or not os.listdir(src), "%s: no source state written" % what)
            no_secret(r.stdout + r.stderr, wrong, "the output (%s)" % what)
            no_secret(r.stdout + r.stderr, srv.secret_key, "the output (%s)" % what)
        r = T.run(dp, os.path.join(work, "none"), [srv.uri("sec", "in/")],
                  env={"AWS_SHARED_CREDENTIALS_FILE": os.path.join(work, "absent")})
        T.check(r.returncode == 2 and "no S3 credentials" in r.stderr, "no credentials: exit 2, said", r.stderr[-1000:])
        # a follower with a wrong secret: said once, no storm of requests
        proxy = T.Proxy(srv.port)
        out = os.path.join(work, "follow-wrong")
        os.makedirs(out)
        args = [dp, "run", "--follow", "--poll", "1", "--sink", "file:" + os.path.join(out, "rollups.ndjson"),
                "--state", os.path.join(out, "state"), srv.uri("sec", "in/", port=proxy.port)]
        p = subprocess.Popen(args, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ, **srv.creds(wrong)))
        time.sleep(4)
        p.send_signal(signal.SIGTERM)
        so, se = p.communicate(timeout=60)
        T.check(p.returncode == 0, "a follower with a wrong secret stops on SIGTERM: exit 0", se[-1000:])
        T.check(se.count("cannot list") == 1, "the follower says the refusal once", se[-2000:])
        T.check(1 <= len(proxy.requests) <= 2, "the follower asked %d times in 4 s (backs off)" % len(proxy.requests))
        no_secret(so + se, wrong, "the follower's output")
        proxy.close()
        # the shared credentials file, a profile of it
        cred = os.path.join(work, "credentials")
        with open(cred, "w") as f:
            f.write("# written by the test\n[default]\naws_access_key_id = AKIDNOSUCHKEY0000000\n"
                    "aws_secret_access_key = nope\n\n[dmarc]\naws_access_key_id = %s\naws_secret_access_key=%s\n"
                    % (srv.access_key, srv.secret_key))
        os.chmod(cred, 0o600)
        out = os.path.join(work, "file-creds")
        r = T.run(dp, out, [srv.uri("sec", "in/")], env={"AWS_SHARED_CREDENTIALS_FILE": cred, "AWS_PROFILE": "dmarc"},
                  state=os.path.join(work, "state-file"))
        T.check(r.returncode == 0, "the shared credentials file, profile dmarc: exit 0", r.stderr[-2000:])
        T.same_totals(T.out_totals(out), want, "credentials from the file")
        no_secret(r.stdout + r.stderr, srv.secret_key, "the output (file credentials)")
    finally:
        srv.stop()


def mode_faults(dp, work):
    srv = T.Server(work)
    try:
        objs = gen_objects(40, seed=5) + [("large.xml", T.report(8000, records=2000))]
        want = T.truth(dp, objs, work)
        srv.make_bucket("faults")
        for k, d in objs:
            srv.put("faults", "in/" + k, d)
        env = srv.creds()
        proxy = T.Proxy(srv.port, fail_first=5, cut_once=200000)
        out = os.path.join(work, "flaky")
        r = T.run(dp, out, [srv.uri("faults", "in/", port=proxy.port)], env=env, state=os.path.join(work, "st1"))
        T.check(r.returncode == 0, "500s at first and a GET cut: exit 0", r.stderr[-3000:])
        T.same_totals(T.out_totals(out), want, "through the faults")
        T.check(proxy.failed == 5 and proxy.cuts == 1, "the relay failed 5 requests and cut 1 GET (%d, %d)"
                % (proxy.failed, proxy.cuts))
        T.check(any(re.search(r"bytes=\d{5,}-", x) for x in proxy.ranges), "the cut GET was resumed with a Range",
                str(proxy.ranges))
        proxy.close()

        proxy = T.Proxy(srv.port, fail_all=True)
        out = os.path.join(work, "down")
        t0 = time.time()
        r = T.run(dp, out, [srv.uri("faults", "in/", "&retries=3", port=proxy.port)], env=env,
                  state=os.path.join(work, "st2"))
        T.log("always 500: %.1f s" % (time.time() - t0))
        T.check(r.returncode == 3 and "HTTP 500 InternalError, after 3 tries" in r.stderr and "s3://faults" in r.stderr,
                "always 500: exit 3, the last status after 3 tries, the bucket named", r.stderr[-1000:])
        T.check(len(proxy.requests) == 3 and T.out_totals(out)[0] == 0, "always 500: 3 requests, nothing counted")
        proxy.close()

        proxy = T.Proxy(srv.port, cut_once=100000, drop_ranged=True)
        out = os.path.join(work, "broken")
        r = T.run(dp, out, [srv.uri("faults", "in/", "&retries=2", port=proxy.port)], env=env,
                  state=os.path.join(work, "st3"))
        large = T.truth(dp, [("large.xml", dict(objs)["large.xml"])], work, "truth-large")
        T.check(r.returncode == 3 and "the GET broke off after" in r.stderr and "not read through" in r.stderr,
                "every GET cut: exit 3, the object left for a later run", r.stderr[-2000:])
        got = T.out_totals(out)
        T.check(got[0] == want[0] - large[0] and got[2] == want[2] - 1,
                "every GET cut: the rest counted (%d of %d messages)" % (got[0], want[0]))
        T.check(not os.listdir(os.path.join(out, "quarantine")) if os.path.isdir(os.path.join(out, "quarantine"))
                else True, "every GET cut: nothing quarantined")
        proxy.close()
    finally:
        srv.stop()


def mode_follow(dp, work):
    srv = T.Server(work)
    try:
        waves = [gen_objects(30, seed=10 + w) for w in range(2)]
        late = ("00/000-late.xml", T.report(77777, seed=9))
        allobjs = [("w%d/%s" % (i, k), d) for i, w in enumerate(waves) for k, d in w] + [late]
        want = T.truth(dp, allobjs, work)
        want1 = T.truth(dp, [("w0/" + k, d) for k, d in waves[0]], work, "truth1")
        srv.make_bucket("follow")
        for k, d in waves[0]:
            srv.put("follow", "in/w0/" + k, d)
        env = srv.creds()
        out = os.path.join(work, "out")
        os.makedirs(out)
        state = os.path.join(work, "state")
        args = [dp, "run", "--follow", "--poll", "1", "--flush-interval", "0", "--sink",
                "file:" + os.path.join(out, "rollups.ndjson"), "--reports", os.path.join(out, "reports.ndjson"),
                "--quarantine", os.path.join(out, "quarantine"), "--state", state, "--workers", "2",
                srv.uri("follow", "in/", "&relist=2")]
        errf = open(os.path.join(work, "follower.err"), "w")
        p = subprocess.Popen(args, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                             env=dict(os.environ, **env))
        T.check(T.wait_for(lambda: T.out_totals(out)[0] == want1[0], 60), "wave 1 counted while following")
        for k, d in waves[1]:
            srv.put("follow", "in/w1/" + k, d)
        T.check(T.wait_for(lambda: T.out_totals(out)[2] == want1[2] + len(waves[1]), 60), "wave 2 counted")
        src = os.path.join(state, "sources")

        def watermark():
            names = os.listdir(src) if os.path.isdir(src) else []
            return open(os.path.join(src, names[0])).read() if names else ""
        T.check(T.wait_for(lambda: '"watermark":"in/w1/' in watermark(), 10), "the state file holds the watermark",
                watermark())
        srv.put("follow", "in/" + late[0], late[1])  # sorts before the watermark
        T.check(T.wait_for(lambda: T.out_totals(out)[2] == want[2], 30), "an object under a key before the "
                "watermark counted by the relisting")
        time.sleep(3)  # more polls and relistings: nothing counted twice
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        errf.close()
        err = open(os.path.join(work, "follower.err")).read()
        T.sanitizer_free(err, "the follower")
        T.check(p.returncode == 0, "SIGTERM: exit 0", err[-2000:])
        T.same_totals(T.out_totals(out), want, "following")
        r = T.run(dp, out, [srv.uri("follow", "in/")], env=env, state=state)
        T.check(r.returncode == 0 and T.summary(r.stderr)[2] == 0, "a batch run after it counts nothing",
                r.stderr[-2000:])
        T.same_totals(T.out_totals(out), want, "after the restart")
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--mode", required=True, choices=["bulk", "big", "kill", "secret", "faults", "follow"])
    ap.add_argument("--big-mb", type=int, default=100)
    a = ap.parse_args()
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(k, None)
    with tempfile.TemporaryDirectory(prefix="dp-s3-%s-" % a.mode) as work:
        os.environ["TMPDIR"] = work
        t0 = time.time()
        if a.mode == "big":
            mode_big(a.dmarcpipe, work, a.big_mb)
        else:
            globals()["mode_" + a.mode](a.dmarcpipe, work)
        T.log("%s: %.1f s" % (a.mode, time.time() - t0))
    if T.FAILED:
        T.log("%d check(s) failed: %s" % (len(T.FAILED), "; ".join(T.FAILED)))
        sys.exit(1)
    T.log("all checks passed")


if __name__ == "__main__":
    main()
