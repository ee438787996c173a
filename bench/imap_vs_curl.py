#!/usr/bin/env python3
"""imap_vs_curl -- `dmarcpipe run imap://` against curl fetching the same
messages, from the same local IMAP server, in the same run.

The floor is one curl process fetching every message by UID over one
logged-in connection, writing the bytes nowhere: what reading the mailbox
costs at the least.  dmarcpipe does that and more for each message: it
streams it into a temporary file, parses the mail and the report, counts
it, commits, and then moves it (UID MOVE, move mode) to another folder.
Each timing is the median of --runs, each on a mailbox filled anew.

Servers: Debian's Dovecot (dovecot-imapd, run with a config of its own,
tests/imap/imaptest.py), and GreenMail (Maven Central, tests/imap/start).
GreenMail answers each command after about 45 ms here (curl sees it too),
so its figures measure its latency more than anything of ours; Dovecot's
are the ones to read.

Prints a table, and one `bench imap ...` line per server for results.py.
It fails only when the totals disagree (every message counted, and moved).

usage: imap_vs_curl.py --dmarcpipe BIN [--messages N] [--runs R] [--quick]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "imap"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "mail"))
import imaptest  # noqa: E402
import mailgen  # noqa: E402

RECORDS = [("192.0.2.%d" % i, i) for i in range(1, 21)]  # 20 records, 210 messages a report


def message(i):
    """A report of its own (the dedup would count copies once), mailed."""
    xml = mailgen.dptest.report_xml("bench.example", "bench-%d" % i, "example.com", 1704067200, 1704153599, RECORDS)
    return mailgen.as_message("report-%d.xml" % i, xml.encode()).replace(b"\n", b"\r\n")


def curl_fetch(srv, n):
    args = ["curl", "-s", "--user", "%s:%s" % (srv.user, srv.password)]
    for uid in range(1, n + 1):
        args += ["imap://127.0.0.1:%d/INBOX;UID=%d" % (srv.port, uid), "-o", "/dev/null"]
    t = time.monotonic()
    subprocess.run(args, check=True, timeout=3600)
    return time.monotonic() - t


def dmarcpipe_run(dp, srv, work, n):
    out = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, DMARCPIPE_IMAP_PASSWORD=srv.password)
    t = time.monotonic()
    p = subprocess.run([dp, "run", "--sink", "file:" + out + "/r.ndjson", "--state", out + "/state",
                        srv.url("INBOX", "?processed=Done")], cwd=out, env=env, capture_output=True, text=True,
                       timeout=3600)
    s = time.monotonic() - t
    messages = 0
    with open(out + "/r.ndjson") as f:
        for line in f:
            messages += json.loads(line)["messages"]
    moved = len(imaptest.uids(srv, "Done"))
    shutil.rmtree(out)
    return s, p.returncode, messages, moved


def measure(name, make, dp, work, n, runs, per_message):
    curl_s, run_s, ok = [], [], True
    for r in range(runs):
        srv = make(os.path.join(work, "%s-%d" % (name, r)))
        try:
            imaptest.append(srv, "INBOX", [message(i) for i in range(n)])
            curl_s.append(curl_fetch(srv, n))
            s, rc, messages, moved = dmarcpipe_run(dp, srv, work, n)
            run_s.append(s)
            if rc != 0 or messages != n * per_message or moved != n:
                print("imap_vs_curl: %s: rc %d, %d messages counted (want %d), %d moved (want %d)"
                      % (name, rc, messages, n * per_message, moved, n), file=sys.stderr)
                ok = False
        finally:
            srv.stop()
    c, d = statistics.median(curl_s), statistics.median(run_s)
    print("  %-10s %8d %10.3f %12.0f %10.3f %12.0f %9.1f%%" % (name, n, c, n / c, d, n / d, 100 * c / d))
    print("bench imap server=%s messages=%d runs=%d curl_s=%.3f run_s=%.3f curl_msgs_per_s=%.0f "
          "run_msgs_per_s=%.0f ratio=%.3f totals=%s" % (name, n, runs, c, d, n / c, n / d, c / d,
                                                        "ok" if ok else "MISMATCH"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    a.dmarcpipe = os.path.abspath(a.dmarcpipe)
    n, runs = (50, 1) if a.quick else (a.messages, a.runs)
    per_message = sum(c for _, c in RECORDS)
    work = tempfile.mkdtemp(prefix="dp-bench-imap-")
    os.chmod(work, 0o711)  # Dovecot run as root reaches its sockets through it as its own users
    print("  %-10s %8s %10s %12s %10s %12s %10s" % ("server", "messages", "curl s", "curl msg/s", "run s",
                                                   "run msg/s", "run/curl"))
    ok = True
    try:
        if os.path.exists(imaptest.DOVECOT):
            ok &= measure("dovecot", imaptest.Dovecot, a.dmarcpipe, work, n, runs, per_message)
        else:
            print("  dovecot: not installed (deploy/install-deps installs dovecot-imapd): skipped")
        ok &= measure("greenmail", imaptest.Server, a.dmarcpipe, work, max(n // 10, 20), runs, per_message)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
