#!/usr/bin/env python3
"""test_spool -- what lands in a spool folder cannot hang a run, leak a
private file, or be read twice.

  * a FIFO and a socket in the SOURCE, and a link to /dev/zero: `run` and
    `parse` finish (no wait on a writer, no endless copy), each is refused
    as not a regular file or as a link out of the SOURCE, the quarantine
    keeps a reason and no bytes, and the reports beside them count exactly;
  * a link to a private file outside the SOURCE (spool/x -> secret, mode
    0600): refused without being read; no byte of it in the quarantine or
    in any output;
  * the quarantine folder is created 0700, and a copy is 0600, never more
    readable than its original (0644 -> 0600, 0400 -> 0400);
  * two `ln -s .` loops and a link to a file inside the SOURCE: the walk
    ends at once and reads every file once (no duplicate, exact totals);
  * a follower (--follow --done) with the same spool: the same, and the
    FIFO and the links are moved to --done like any counted input;
  * `parse` whose quarantine cannot be made still reads the inputs after
    the first rejection, and exits 3;
  * a file and a folder that cannot be read (as nobody, when run as root):
    left where they are, not quarantined, not moved to --done, exit 3; a
    later run takes them; a SOURCE that cannot be read fails a batch run.

Usage: test_spool.py DMARCPIPE
"""
import os
import shutil
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402

D0 = 1700006400
DAY = 86400
SECRET = b"root:$6$SECRET-HASH-THAT-MUST-NOT-LEAK$:19000:0:99999:7:::\n"


def report(name, count):
    return dptest.report_xml("spool.example", name, "example.com", D0, D0 + DAY - 1, [("192.0.2.7", count)])


def all_bytes_under(d):
    out = b""
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out += fh.read()
    return out


def make_spool(d):
    """The spool, and the messages its real reports hold."""
    src = os.path.join(d, "spool")
    os.makedirs(os.path.join(src, "sub"))
    dptest.write(os.path.join(src, "a.xml"), report("a", 3))
    dptest.write(os.path.join(src, "sub", "b.xml"), report("b", 5))
    os.mkfifo(os.path.join(src, "fifo.xml"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(src, "sock.xml"))
    secret = os.path.join(d, "private", "shadow")
    os.makedirs(os.path.dirname(secret))
    with open(secret, "wb") as fh:
        fh.write(SECRET)
    os.chmod(secret, 0o600)
    os.symlink(secret, os.path.join(src, "x.xml"))
    os.symlink("/dev/zero", os.path.join(src, "zero.xml"))
    os.symlink(".", os.path.join(src, "loop1"))
    os.symlink(".", os.path.join(src, "sub", "loop2"))
    os.symlink("../a.xml", os.path.join(src, "sub", "again.xml"))  # inside: the same file, read once
    bad = dptest.write(os.path.join(src, "bad-0644.xml"), "<feedback><report_metadata>")
    os.chmod(bad, 0o644)
    ro = dptest.write(os.path.join(src, "bad-0400.xml"), "<feedback><bad/>")
    os.chmod(ro, 0o400)
    return src, sock, 3 + 5


def check_quarantine(t, label, q):
    t.eq(f"{label}: the quarantine folder is 0700", stat.S_IMODE(os.stat(q).st_mode), 0o700)
    names = sorted(os.listdir(q))
    for name in names:
        mode = stat.S_IMODE(os.lstat(os.path.join(q, name)).st_mode)
        if name.startswith("bad-0400.xml") and not name.endswith(".reason"):
            t.eq(f"{label}: {name} is 0400, as its original", mode, 0o400)
        else:
            t.check(f"{label}: {name} is private (0600 or less)", mode & 0o177 == 0, oct(mode))
    for special in ("fifo.xml", "sock.xml", "x.xml", "zero.xml"):
        t.check(f"{label}: {special} has its reason and no copy",
                special + ".reason" in names and special not in names, names)
    t.check(f"{label}: the copies of bad-*.xml are kept", "bad-0644.xml" in names and "bad-0400.xml" in names, names)
    t.check(f"{label}: no byte of the private file in the quarantine", SECRET not in all_bytes_under(q))
    t.check(f"{label}: the quarantine stays small", sum(os.path.getsize(os.path.join(q, n)) for n in names) < 1 << 20)


def batch(t, dp):
    with dptest.scratch("spool") as d:
        src, sock, messages = make_spool(d)
        t0 = time.monotonic()
        r = dptest.run(dp, os.path.join(d, "out"), [src], "--workers", "2", "--shards", "2")
        t.check("run: done in under a minute (no FIFO wait, no endless copy)", time.monotonic() - t0 < 60)
        t.eq("run: exit 1 (inputs were rejected)", r.rc, 1)
        t.eq("run: the real reports, once each", r.messages, messages)
        t.eq("run: no duplicate (each file read once)", r.summary.get("duplicates"), 0)
        t.eq("run: inputs: 2 reports, FIFO, socket, 2 links out, 2 bad files", r.summary.get("inputs"), 8)
        t.check("run: the FIFO is refused as one", "fifo.xml" in r.stderr and "a FIFO" in r.stderr, r.describe())
        t.check("run: the link out is refused as one", "outside the SOURCE" in r.stderr, r.describe())
        t.check("run: nothing private in the outputs",
                SECRET not in all_bytes_under(os.path.join(d, "out")) or False)
        check_quarantine(t, "run", os.path.join(d, "out", "quarantine"))
        t0 = time.monotonic()
        p = subprocess.run([dp, "parse", "--summary", "--quarantine", os.path.join(d, "pq"), src],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=dptest.PROC_TIMEOUT)
        t.check("parse: done in under a minute", time.monotonic() - t0 < 60)
        t.eq("parse: exit 1", p.returncode, 1)
        t.check("parse: every input once", p.stdout.count(b'"input"') == 8, p.stdout.decode()[:2000])
        check_quarantine(t, "parse", os.path.join(d, "pq"))
        sock.close()


def parse_after_a_lost_quarantine(t, dp):
    """A rejection that cannot be kept is said in the exit status; the
    inputs after it are still read (they used to fail, one by one)."""
    with dptest.scratch("lost-quarantine") as d:
        src = os.path.join(d, "in")
        dptest.write(os.path.join(src, "a-bad.xml"), "<feedback>")
        dptest.write(os.path.join(src, "b-good.xml"), report("good", 4))
        q = dptest.write(os.path.join(d, "not-a-folder"), "x")  # the quarantine cannot be made
        p = subprocess.run([dp, "parse", "--quarantine", q, src], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=dptest.PROC_TIMEOUT)
        err = p.stderr.decode("utf-8", "replace")
        t.eq("lost quarantine: exit 3", p.returncode, 3)
        t.check("lost quarantine: the reason is named", "quarantine: cannot" in err, err)
        t.check("lost quarantine: the good report after it is printed", b'"report_id":"good"' in p.stdout,
                p.stdout.decode()[:500] + err)
        t.check("lost quarantine: no report refused for it", "refused" not in err, err)


def as_nobody():
    """The command prefix that runs a process where permissions apply: as
    nobody when this test runs as root (root reads everything)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        return None
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def unreadable(t, dp):
    """What cannot be read is the run's problem, not a bad input: it is not
    quarantined, not moved to --done, and waits for a later run."""
    prefix = as_nobody()
    if prefix is None:
        t.note("unreadable: skipped (root, and no setpriv to drop to nobody)")
        return
    with dptest.scratch("unreadable") as d:
        os.chmod(d, 0o777)
        src, out, done = (os.path.join(d, n) for n in ("spool", "out", "done"))
        dptest.write(os.path.join(src, "a.xml"), report("ok-a", 2))
        dptest.write(os.path.join(src, "closed", "c.xml"), report("closed-c", 4))
        secret = dptest.write(os.path.join(src, "b-unreadable.xml"), report("closed-b", 8))
        for p in (d, src, out):
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o777)
        os.chmod(os.path.join(src, "a.xml"), 0o666)
        os.chmod(os.path.join(src, "closed"), 0o000)
        os.chmod(secret, 0o000)
        args = [dp, "run", "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--quarantine",
                os.path.join(out, "q"), "--state", os.path.join(out, "state"), "--done", done, src]
        p = subprocess.run(prefix + args, cwd=d, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=dptest.PROC_TIMEOUT)
        err = p.stderr.decode("utf-8", "replace")
        t.eq("unreadable: exit 3 (an input left for later)", p.returncode, 3)
        t.check("unreadable: the folder is said", "cannot read this folder" in err, err[-600:])
        t.check("unreadable: the file is left for later", "left where it is" in err, err[-600:])
        t.check("unreadable: neither moved to --done",
                os.path.isdir(os.path.join(src, "closed")) and os.path.exists(secret))
        t.check("unreadable: nothing quarantined", not os.path.exists(os.path.join(out, "q"))
                or os.listdir(os.path.join(out, "q")) == [], err[-400:])
        rollups = dptest.RunResult([], 0, "", out, "rollups.ndjson")
        t.eq("unreadable: the readable report counted", rollups.messages, 2)
        # readable again: a later run takes them, and nothing twice
        os.chmod(os.path.join(src, "closed"), 0o777)
        os.chmod(secret, 0o666)
        p = subprocess.run(prefix + args, cwd=d, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=dptest.PROC_TIMEOUT)
        t.eq("readable again: exit 0", p.returncode, 0)
        rollups = dptest.RunResult([], 0, "", out, "rollups.ndjson")
        t.eq("readable again: every report once", rollups.messages, 2 + 4 + 8)
        # a SOURCE that cannot be read at all fails a batch run
        os.chmod(src, 0o000)
        p = subprocess.run(prefix + args, cwd=d, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=dptest.PROC_TIMEOUT)
        os.chmod(src, 0o777)
        t.eq("an unreadable SOURCE: exit 3", p.returncode, 3)
        t.check("an unreadable SOURCE: said", b"cannot read the folder" in p.stderr, p.stderr[-300:])


def follow(t, dp):
    with dptest.scratch("spool-follow") as d:
        src, sock, messages = make_spool(d)
        out, done = os.path.join(d, "out"), os.path.join(d, "done")
        os.makedirs(out)
        args = [dp, "run", "--follow", "--poll", "1", "--flush-interval", "0", "--workers", "2",
                "--sink", "file:" + os.path.join(out, "rollups.ndjson"), "--reports",
                os.path.join(out, "reports.ndjson"), "--quarantine", os.path.join(out, "quarantine"),
                "--state", os.path.join(d, "state"), "--done", done, src]
        with open(os.path.join(d, "err"), "wb") as err:
            p = subprocess.Popen(args, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                left = [n for n in os.listdir(src) if n != "sub"] + os.listdir(os.path.join(src, "sub"))
                if all(n in ("loop1", "loop2") for n in left):
                    break
                time.sleep(0.5)
            p.terminate()
            rc = p.wait(timeout=120)
        text = open(os.path.join(d, "err"), encoding="utf-8", errors="replace").read()
        t.eq("follow: SIGTERM, exit 0", rc, 0)
        r = dptest.RunResult(args, rc, text, out, "rollups.ndjson")
        t.eq("follow: the real reports, once each", r.messages, messages)
        moved = sorted(os.path.relpath(os.path.join(root, f), done) for root, _, fs in os.walk(done) for f in fs)
        t.check("follow: the FIFO, the socket and the links went to --done",
                all(n in moved for n in ("fifo.xml", "sock.xml", "x.xml", "zero.xml")), moved)
        t.check("follow: the loops were left alone (folders, not inputs)",
                os.path.islink(os.path.join(src, "loop1")), os.listdir(src))
        t.check("follow: nothing private in the outputs or the quarantine", SECRET not in all_bytes_under(out))
        sock.close()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dp = os.path.abspath(sys.argv[1])
    t = dptest.Harness("hostile_spool")
    t.run(batch, t, dp)
    t.run(parse_after_a_lost_quarantine, t, dp)
    t.run(unreadable, t, dp)
    t.run(follow, t, dp)
    t.finish()


if __name__ == "__main__":
    main()
