#!/usr/bin/env python3
"""test_logs -- dmarcpipe's logs (common/dp_log.c), with the real program.

  formats  a run over the bundled samples plus bad inputs made here (a cut
           gzip, text that is no report, a name that is not UTF-8) and a
           copy of a sample (a duplicate):
             json     every stderr line is one JSON object with ts, level,
                      component and msg; each rejection is a warn event
                      naming its input; the summary is one info event whose
                      figures equal the rollups', the reports feed's and the
                      quarantine's; the name that is not UTF-8 is escaped
             auto     with stderr not a terminal: json; on a terminal (a
                      pty): plain, each line starting with "\\r\\033[K"
             levels   --log-level warn drops the info events, error drops
                      the warnings too (nothing is left of this run)
             logfmt   every line parses as key=value pairs with ts, level,
                      component and msg; the summary's figures again
             plain    the text dmarcpipe has always printed: the summary's
                      lines and "dmarcpipe: WHERE: STAGE: MESSAGE" lines
             parse    `dmarcpipe parse --log-format json`: its rejections
                      are json too
  secrets  at --log-level debug and in json, a run that fails with each
           secret dmarcpipe takes: an IMAP password (a wrong one, against
           GreenMail, tests/imap/start), an S3 secret key (an endpoint that
           does not answer), a Kafka SASL password (-X sasl.password=, and
           DMARCPIPE_KAFKA_SASL_PASSWORD, a broker port nobody listens on):
           the secret is in no stdout, stderr, output file, quarantine
           reason, nor, while the run lasts, its /proc/PID/cmdline (the -X
           run aside: there the user put it on the command line)
"""
import argparse
import gzip
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "data", "samples")
TIMEOUT = 600  # an ASan build is many times slower


def log(*a):
    print("test_logs:", *a, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def check(ok, what, detail=""):
    if not ok:
        fail(what + (": " + str(detail)[-3000:] if detail else ""))
    log("ok: " + what)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMARCPIPE_") and not k.startswith("AWS_")}
    env.update(extra)
    return env


def run(dp, args, cwd, env=None, stdin=subprocess.DEVNULL):
    p = subprocess.run([dp] + args, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env if env is not None else clean_env(), timeout=TIMEOUT)
    err = p.stderr.decode("utf-8", "replace")
    if re.search(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:", err):
        fail("a sanitizer report:\n" + err[-4000:])
    return p


def make_spool(work):
    """The samples, a copy of one (a duplicate), and three bad inputs."""
    spool = os.path.join(work, "in")
    os.makedirs(spool)
    for n in sorted(n for n in os.listdir(SAMPLES) if not n.startswith(".")):
        shutil.copyfile(os.path.join(SAMPLES, n), os.path.join(spool, n))
    shutil.copyfile(os.path.join(SAMPLES, "trollByte-yahoo-report.xml"), os.path.join(spool, "zz-copy.xml"))
    with open(os.path.join(SAMPLES, "cry-inc-webde.xml"), "rb") as f:
        whole = gzip.compress(f.read())
    with open(os.path.join(spool, "cut.xml.gz"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    with open(os.path.join(spool, "not-a-report.txt"), "w") as f:
        f.write("hello, this is no DMARC report\n")
    with open(os.path.join(spool.encode(), b"bad-\xff\xfe-name.xml"), "wb") as f:
        f.write(b"<feedback><broken")
    return spool


def batch(dp, work, name, spool, *opts, env=None):
    out = os.path.join(work, name)
    os.makedirs(out)
    args = ["run", "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports",
            os.path.join(out, "reports.ndjson"), "--quarantine", os.path.join(out, "quarantine"),
            "--workers", "2", "--shards", "2"] + list(opts) + [spool]
    p = run(dp, args, out, env=env)
    check(p.returncode == 1, "%s: the run ends 1 (some inputs rejected)" % name,
          "exit %d: %s" % (p.returncode, p.stderr.decode("utf-8", "replace")))
    return out, p


def truth(out):
    """What the outputs hold: rollups, messages, reports, quarantined inputs."""
    with open(os.path.join(out, "rollups.ndjson")) as f:
        rollups = [json.loads(l) for l in f if l.strip()]
    with open(os.path.join(out, "reports.ndjson")) as f:
        reports = sum(1 for l in f if l.strip())
    q = os.path.join(out, "quarantine")
    kept = [n for n in os.listdir(q) if not n.endswith(".reason") and not n.startswith(".")] if os.path.isdir(q) else []
    return {"rollups": len(rollups), "messages": sum(r["messages"] for r in rollups), "reports_accepted": reports,
            "inputs_rejected": len(kept)}


def json_lines(text, what):
    events = []
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            fail("%s: a stderr line that is not JSON: %r" % (what, line))
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("ts", "level", "component", "msg")):
            fail("%s: a line without ts, level, component and msg: %r" % (what, line))
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["ts"]):
            fail("%s: ts is not RFC 3339 UTC with milliseconds: %r" % (what, e["ts"]))
        if e["level"] not in ("debug", "info", "warn", "error"):
            fail("%s: an unknown level: %r" % (what, line))
        events.append(e)
    return events


LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')


def logfmt_lines(text, what):
    events = []
    for line in text.splitlines():
        e, at = {}, 0
        while at < len(line):
            m = LOGFMT_PAIR.match(line, at)
            if not m:
                fail("%s: a line that is not logfmt at column %d: %r" % (what, at, line))
            v = m[2]
            if v.startswith('"'):
                v = re.sub(r'\\(.)', r'\1', v[1:-1])
            e[m[1]] = v
            at = m.end()
        if not all(k in e for k in ("ts", "level", "component", "msg")):
            fail("%s: a line without ts, level, component and msg: %r" % (what, line))
        events.append(e)
    return events


def summary_of(events, what):
    s = [e for e in events if e.get("component") == "run" and "reports_accepted" in e]
    check(len(s) == 1 and s[0]["level"] == "info", "%s: one info event is the summary" % what, events[-3:])
    return s[0]


def same_figures(summary, want, what, conv=int):
    got = {k: conv(summary[k]) for k in want}
    check(got == want, "%s: the summary's figures equal the outputs' %s" % (what, want), got)


def mode_formats(dp, work):
    spool = make_spool(work)
    # json, explicit
    out, p = batch(dp, work, "json", spool, "--log-format", "json")
    events = json_lines(p.stderr.decode("utf-8"), "json")
    want = truth(out)
    # the samples' failure report (ARF) and the three made here
    check(want["inputs_rejected"] == 4 and want["reports_accepted"] > 0, "the spool has 4 bad inputs", want)
    s = summary_of(events, "json")
    same_figures(s, want, "json")
    check(s["duplicates"] == 1 and s["inputs"] == len(os.listdir(spool)) and isinstance(s["seconds"], (int, float))
          and isinstance(s["rate"], (int, float)), "json: duplicates, inputs, seconds and rate are typed fields", s)
    rejections = [e for e in events if e["level"] == "warn" and e["component"] == "ingest"]
    named = {os.path.basename(e["input"]) for e in rejections}
    check({"cut.xml.gz", "not-a-report.txt"} <= named and all(e.get("stage") and e.get("error") for e in rejections),
          "json: each rejection is a warn event with input, stage and error", rejections)
    check(any("bad-\\xff\\xfe-name.xml" in e.get("input", "") for e in rejections),
          "json: a name that is not UTF-8 is escaped as \\xNN, not lost", named)
    check(any(e["msg"].startswith(os.path.join(spool, "zz-copy.xml")) or "duplicate" in e["msg"] for e in events
              if e["level"] == "info" and e["component"] == "engine"), "json: the duplicate is an info event")
    check(not any(e["msg"].startswith("dmarcpipe") for e in events), "json: messages carry no plain prefix")

    # auto, not a terminal: json; through the environment too
    out2, p = batch(dp, work, "auto", spool)
    same_figures(summary_of(json_lines(p.stderr.decode("utf-8"), "auto"), "auto"), truth(out2), "auto")
    out2, p = batch(dp, work, "env", spool, env=clean_env(DMARCPIPE_LOG_FORMAT="logfmt"))
    logfmt_lines(p.stderr.decode("utf-8"), "DMARCPIPE_LOG_FORMAT=logfmt")
    check(True, "DMARCPIPE_LOG_FORMAT chooses the format")

    # auto on a terminal: plain, each line clearing the line first
    pout = os.path.join(work, "tty")
    os.makedirs(pout)
    master, slave = pty.openpty()
    args = [dp, "run", "--sink", "file:" + os.path.join(pout, "r.ndjson"), "--quarantine",
            os.path.join(pout, "q"), "--workers", "2", spool]
    proc = subprocess.Popen(args, cwd=pout, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env=clean_env())
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    proc.wait(timeout=TIMEOUT)
    os.close(master)
    lines = [l for l in data.decode("utf-8", "replace").replace("\r\n", "\n").split("\n") if l]
    # a progress bar may be drawn between the lines ("\r... \033[K"): an
    # event clears it first, so every event starts with "\r\033[K"
    events = [l for l in lines if "dmarcpipe" in l]
    check(len(events) >= 5 and any("\r\x1b[Kdmarcpipe run: " in l for l in events)
          and all("\r\x1b[Kdmarcpipe" in l and not l.split("\r\x1b[K")[-1].startswith(("{", "ts=")) for l in events)
          and all(l.startswith(("\r", "  ")) for l in lines),
          "auto on a terminal: plain lines, each event starting with \\r\\033[K", lines[:6])

    # levels
    _, p = batch(dp, work, "warn", spool, "--log-format", "json", "--log-level", "warn")
    ev = json_lines(p.stderr.decode("utf-8"), "warn")
    check(ev and all(e["level"] in ("warn", "error") for e in ev) and len(ev) == len(rejections),
          "--log-level warn: the warnings, no info event", [e["level"] for e in ev])
    _, p = batch(dp, work, "error", spool, "--log-format", "json", "--log-level", "error")
    check(p.stderr == b"", "--log-level error: no warning, no info event", p.stderr[-500:])
    _, p = batch(dp, work, "debug", spool, "--log-format", "json", "--log-level", "debug")
    check(len(json_lines(p.stderr.decode("utf-8"), "debug")) >= len(events), "--log-level debug: every event")

    # logfmt
    out3, p = batch(dp, work, "logfmt", spool, "--log-format", "logfmt")
    ev = logfmt_lines(p.stderr.decode("utf-8"), "logfmt")
    same_figures(summary_of(ev, "logfmt"), truth(out3), "logfmt")
    check(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["ts"]) for e in ev), "logfmt: ts in UTC")

    # plain: the text dmarcpipe has always printed
    out4, p = batch(dp, work, "plain", spool, "--log-format", "plain")
    text = p.stderr.decode("utf-8", "replace")
    t = truth(out4)
    m = re.search(r"^dmarcpipe run: (\d+) inputs \((\d+) rejected\) in [\d.]+ s, 2 workers, 2 shards\n"
                  r"  reports:  (\d+) accepted, (\d+) rejected, (\d+) duplicate\n"
                  r"  records:  (\d+)   messages: (\d+)\n"
                  r"  rollups:  (\d+) per sink \(file:.*\)\n"
                  r"  rate:     \d+ records/s, [\d.]+ MB/s of XML\n\Z", text, re.M)
    check(m and int(m[2]) == t["inputs_rejected"] and int(m[3]) == t["reports_accepted"] and int(m[7]) == t["messages"]
          and int(m[8]) == t["rollups"], "plain: the summary as it always was, last", text[-800:])
    errs = [l for l in text.splitlines() if re.match(r"^dmarcpipe: .+?: [a-z_]+: .+$", l)]
    check(len([l for l in errs if "quarantined as" not in l and "duplicate" not in l]) >= 3,
          "plain: 'dmarcpipe: WHERE: STAGE: MESSAGE' lines for the rejections", text[:1500])
    check(not any(l.startswith("{") or l.startswith("ts=") for l in text.splitlines()), "plain: no structured line")

    # parse
    p = run(dp, ["parse", "--log-format", "json", "--summary", os.path.join(spool, "cut.xml.gz"),
                 os.path.join(spool, "trollByte-yahoo-report.xml")], work)
    ev = json_lines(p.stderr.decode("utf-8"), "parse")
    check(p.returncode == 1 and any(e["level"] == "warn" and e.get("input", "").endswith("cut.xml.gz") for e in ev),
          "parse --log-format json: the rejection is a json warn event", p.stderr[-800:])


# ---- secrets ---------------------------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def watch(dp, args, cwd, env):
    """Runs to its end, reading /proc/PID/cmdline while it runs."""
    proc = subprocess.Popen([dp] + args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    cmdlines = []
    import threading
    box = {}

    def drain():
        box["out"], box["err"] = proc.communicate(timeout=TIMEOUT)

    t = threading.Thread(target=drain)
    t.start()
    while t.is_alive():
        try:
            with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
                cmdlines.append(f.read())
        except OSError:
            pass
        time.sleep(0.05)
    t.join()
    return proc.returncode, box["out"], box["err"], cmdlines


def files_under(d):
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    yield p, f.read()


def no_secret(what, secret, out_dir, stdout, stderr, cmdlines):
    s = secret.encode()
    json_lines(stderr.decode("utf-8"), what)
    check(s not in stdout and s not in stderr, "%s: the secret is in neither stdout nor stderr" % what)
    leaked = [p for p, b in files_under(out_dir) if s in b]
    check(not leaked, "%s: the secret is in no output file, state or quarantine reason" % what, leaked)
    if cmdlines is not None:
        check(cmdlines and not any(s in c for c in cmdlines), "%s: nor in /proc/PID/cmdline while it ran (%d looks)"
              % (what, len(cmdlines)))


def secret_run(dp, work, name, source, env_extra, *opts, cmdline_free=True, sinks=None):
    out = os.path.join(work, name)
    os.makedirs(out)
    args = ["run", "--log-format", "json", "--log-level", "debug", "--quarantine", os.path.join(out, "quarantine"),
            "--state", os.path.join(out, "state")]
    args += sinks or ["--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports",
                      os.path.join(out, "reports.ndjson")]
    args += list(opts) + [source]
    t0 = time.time()
    rc, so, se, cmdlines = watch(dp, args, out, clean_env(**env_extra))
    check(rc not in (0, 1) and se, "%s: the run fails, and says why (exit %d, %.1f s)" % (name, rc, time.time() - t0),
          se[-1500:])
    return out, so, se, cmdlines if cmdline_free else None


def mode_secrets(dp, work):
    spool = os.path.join(work, "in")
    os.makedirs(spool)
    shutil.copyfile(os.path.join(SAMPLES, "trollByte-yahoo-report.xml"), os.path.join(spool, "a.xml"))

    # S3: a secret key, an endpoint nobody answers on
    secret = "s3SECRETkey-" + os.urandom(8).hex()
    out, so, se, cl = secret_run(dp, work, "s3", "s3://reports/in/?endpoint=http://127.0.0.1:%d&region=us-east-1"
                                 "&path_style=1&retries=2" % free_port(),
                                 {"AWS_ACCESS_KEY_ID": "AKIDLOGTEST", "AWS_SECRET_ACCESS_KEY": secret})
    no_secret("s3", secret, out, so, se, cl)

    # Kafka: a SASL password in the environment, then with -X, a broker port nobody listens on
    secret = "kafkaSECRETpw-" + os.urandom(8).hex()
    dead = "kafka://127.0.0.1:%d/dmarc.rollups" % free_port()
    sasl = ["-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=logtest",
            "--broker-timeout", "3"]
    out, so, se, cl = secret_run(dp, work, "kafka-env", spool, {"DMARCPIPE_KAFKA_SASL_PASSWORD": secret}, *sasl,
                                 sinks=["--sink", dead])
    check(b'"component":"kafka"' in se, "kafka-env: librdkafka's own lines are json events of component kafka",
          se[-800:])
    no_secret("kafka-env", secret, out, so, se, cl)
    out, so, se, cl = secret_run(dp, work, "kafka-X", spool, {}, *(sasl + ["-X", "sasl.password=" + secret]),
                                 sinks=["--sink", dead], cmdline_free=False)
    no_secret("kafka -X", secret, out, so, se, None)

    # IMAP: a wrong password against GreenMail
    if not (shutil.which("java") and shutil.which("mvn")):
        log("SKIP imap: needs java and mvn (deploy/install-deps)")
        return
    sys.path.insert(0, os.path.join(HERE, "..", "imap"))
    import imaptest
    srv = imaptest.Server(work)
    try:
        wrong = "not-" + srv.password[4:] + "-x"
        out, so, se, cl = secret_run(dp, work, "imap", srv.url("INBOX"), {"DMARCPIPE_IMAP_PASSWORD": wrong})
        ev = json_lines(se.decode("utf-8"), "imap")
        check(any(e["level"] == "error" and "login refused" in e["msg"] for e in ev),
              "imap: the refused login is an error event", se[-800:])
        no_secret("imap (the wrong password)", wrong, out, so, se, cl)
        no_secret("imap (the server's password)", srv.password, out, so, se, cl)
    finally:
        srv.stop()


MODES = {"formats": mode_formats, "secrets": mode_secrets}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dp-logs-%s-" % a.mode)
    t0 = time.time()
    try:
        MODES[a.mode](os.path.abspath(a.dmarcpipe), work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    log("%s: all passed in %.1f s" % (a.mode, time.time() - t0))


if __name__ == "__main__":
    main()
