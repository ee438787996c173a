#!/usr/bin/env python3
"""test_mbox -- `dmarcpipe run mbox:PATH` counts exactly what a batch run over
the report files counts, reads each message once across runs, and reads on
from where it stopped.

The truth is a batch run over the report files themselves (the bundled
samples, generated reports, some gzipped); each file becomes one message (a
base64 attachment, or the .eml as it is), and the messages one mbox.

  * batch: the mbox run's totals (messages, and per (policy_domain,
    source_ip)), accepted reports and rejections equal the truth's; one
    input per message; each rejected message is quarantined as
    "mbox!message@OFFSET" with a reason naming it; a message whose body has
    ">From " and "From" lines counts; the position file says the end of the
    file;
  * restart: the same command reads nothing (0 inputs), adds no rollup;
  * append: 10 more messages; the next run reads those 10 only, and the
    rollups of all runs add up to the truth over all files;
  * replaced (a new inode, renamed over it, with 5 messages more): a warning,
    everything read again, what was counted before is a duplicate, the
    totals are the truth's;
  * rewritten in place (same inode and size, messages in another order): the
    position's check sees it, a warning, nothing counted twice;
  * cut short at a message boundary (same inode): a warning, its messages
    listed again and known to the state by their keys, nothing counted twice;
  * a batch run over an mbox that does not exist, or a folder: exit 2, named;
  * edges: "From " lines that the scan's 64 KiB reads cut at each byte,
    and one at a read's start: every message found whole;
  * held: messages that cannot be read now (TMPDIR missing: no temporary
    file) are left, not lost: exit 3, nothing counted, quarantined or
    passed by the position; the next run counts them all;
  * follow: 3 messages and the first half of a 4th, the 4th then written
    slowly, a chunk every 0.25 s (a poll a second): the 3 are counted and
    the 4th waits (not rejected, not counted) while it grows; once it is
    whole and a 5th follows, all 5 count exactly; then a 6th is appended
    and the file renamed away at once, and a new file with a 7th and an 8th
    takes its name: the old file is read to its end, then the new one (one
    warning), all 8 count exactly; SIGTERM exits 0, and the position is the
    end of the new file.

usage: test_mbox.py DMARCPIPE DP_GEN_REPORT SAMPLES_DIR
"""
import gzip
import json
import os
import glob
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mailgen  # noqa: E402
from mailgen import dptest  # noqa: E402

# a text part with lines an mbox must escape, and one it must not split on
FROM_TEXT = (b"Hello,\n\nFrom now on reports come from this address.\n"
             b">From the archive: nothing.\nFrom: not a header\n")


def files_for(gen, workdir, seed, n, samples=None):
    """(name, bytes) report files: the samples, and n generated reports
    (every third gzipped)."""
    d = os.path.join(workdir, f"gen-{seed}")
    dptest.gen_reports(gen, d, n, 8, seed=seed, extra=("--domains", "4", "--ips", "40"))
    out = mailgen.report_files(samples) if samples else []
    for i, (name, data) in enumerate(mailgen.report_files(d)):
        name = f"s{seed}-{name}"
        if i % 3 == 0:
            out.append((name + ".gz", gzip.compress(data, mtime=0)))
        else:
            out.append((name, data))
    return out


def messages_for(files):
    msgs = []
    for i, (name, data) in enumerate(files):
        if name.endswith(".eml"):
            msgs.append(mailgen.as_message(name, data))
        else:
            ctype = "application/gzip" if name.endswith(".gz") else "text/xml"
            text = FROM_TEXT if i % 4 == 1 else b"A DMARC aggregate report.\n"
            msgs.append(mailgen.multipart("Report " + name, [mailgen.part(ctype, data, name)], text=text))
    return msgs


def position(state):
    ps = glob.glob(os.path.join(state, "sources", "mbox-*.json"))
    if len(ps) != 1:
        return None
    with open(ps[0]) as f:
        return json.load(f)


def merged_totals(rollups):
    return sum(r["messages"] for r in rollups), dptest.sums_by(rollups, ("policy_domain", "source_ip"))


def batch(t, dp, gen, samples):
    with dptest.scratch("mbox") as d:
        first = files_for(gen, d, 1, 30, samples)
        more = files_for(gen, d, 2, 10)
        last = files_for(gen, d, 3, 5)
        mbox = os.path.join(d, "inbox.mbox")
        dptest.write(mbox, mailgen.mbox_bytes(messages_for(first)))
        out, state = os.path.join(d, "out"), os.path.join(d, "state")
        want = mailgen.truth(dp, first, os.path.join(d, "t1"))

        # batch
        r = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.eq("batch: exit status as the truth's", r.rc, want.rc)
        t.eq("batch: one input per message", r.summary.get("inputs"), len(first))
        t.eq("batch: totals as the truth's", mailgen.totals(r), mailgen.totals(want))
        t.eq("batch: reports accepted as the truth's", r.summary.get("accepted"), want.summary.get("accepted"))
        t.eq("batch: inputs rejected as the truth's", r.summary.get("inputs_rejected"),
             want.summary.get("inputs_rejected"))
        q = [n for n in r.quarantined if not n.endswith(".reason")]
        t.check("batch: each rejected message quarantined as inbox.mbox!message@OFFSET",
                len(q) == want.summary.get("inputs_rejected") and all(re.fullmatch(r"inbox\.mbox!message@\d+", n) for n in q),
                f"{q} {r.describe()}")
        for n in q:
            with open(os.path.join(out, "quarantine", n + ".reason")) as f:
                reason = json.load(f)
            with open(os.path.join(out, "quarantine", n), "rb") as f:
                copy = f.read()
            off = int(n.split("@")[1])
            with open(mbox, "rb") as f:
                f.seek(off)
                at = f.read(len(copy))
            t.check(f"batch: {n}: the reason names the message and says why",
                    reason.get("input", "").endswith(n) and reason.get("error"), reason)
            t.check(f"batch: {n}: the copy is the message's bytes", copy == at and copy.startswith(b"From "))
        pos = position(state)
        t.eq("batch: the position is the end of the file", (pos or {}).get("offset"), os.path.getsize(mbox))
        t.check("batch: no warning", "reading it again" not in r.stderr, r.describe())

        # restart: nothing to read
        n_lines = len(r.rollup_lines)
        r2 = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.eq("restart: 0 inputs", r2.summary.get("inputs"), 0)
        t.eq("restart: exit 0", r2.rc, 0)
        t.eq("restart: no rollup added", len(r2.rollup_lines), n_lines)
        t.check("restart: not even skipped inputs (nothing listed)", "already" not in r2.stderr, r2.describe())

        # append
        with open(mbox, "ab") as f:
            f.write(mailgen.mbox_bytes(messages_for(more)))
        want2 = mailgen.truth(dp, first + more, os.path.join(d, "t2"))
        r3 = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.eq("append: only the 10 new messages read", r3.summary.get("inputs"), 10)
        t.eq("append: exit 0", r3.rc, 0)
        t.eq("append: all runs add up to the truth over all files", merged_totals(r3.rollups), mailgen.totals(want2))
        t.eq("append: position at the new end", (position(state) or {}).get("offset"), os.path.getsize(mbox))

        # replaced by a new file (another inode) with 5 more messages
        all3 = first + more + last
        tmp = mbox + ".new"
        dptest.write(tmp, mailgen.mbox_bytes(messages_for(all3)))
        os.rename(tmp, mbox)
        want3 = mailgen.truth(dp, all3, os.path.join(d, "t3"))
        r4 = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.check("replaced: one warning naming it", r4.stderr.count("replaced") == 1 and "reading it again" in r4.stderr,
                r4.describe())
        t.eq("replaced: every message read again", r4.summary.get("inputs"), len(all3))
        t.eq("replaced: what was counted is duplicate", r4.summary.get("duplicates"),
             want2.summary.get("accepted"))
        t.eq("replaced: nothing counted twice (totals of all runs)", merged_totals(r4.rollups), mailgen.totals(want3))

        # rewritten in place: the same inode and size, other bytes before the position
        ino = os.stat(mbox).st_ino
        msgs = messages_for(all3)
        with open(mbox, "r+b") as f:
            f.write(mailgen.mbox_bytes(msgs[1:] + msgs[:1]))
        t.eq("in place: same inode", os.stat(mbox).st_ino, ino)
        r5 = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.check("in place: a warning", "no longer holds" in r5.stderr, r5.describe())
        t.eq("in place: nothing counted twice", merged_totals(r5.rollups), mailgen.totals(want3))
        t.eq("in place: all read again, all duplicates", r5.summary.get("accepted"), 0)

        # cut short at a message boundary
        keep = mailgen.mbox_bytes(msgs[1:6])
        with open(mbox, "r+b") as f:
            f.truncate(len(keep))
        r6 = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.check("cut short: a warning", "shorter" in r6.stderr, r6.describe())
        t.check("cut short: its 5 messages listed, each known to the state (same inode, same offsets)",
                "5 input(s) already counted" in r6.stderr and r6.summary.get("inputs") == 0, r6.describe())
        t.eq("cut short: nothing counted twice", merged_totals(r6.rollups), mailgen.totals(want3))

        # missing, or not a file
        for what, path in (("missing", os.path.join(d, "nope.mbox")), ("a folder", d)):
            r7 = dptest.run(dp, os.path.join(d, "out-bad"), ["mbox:" + path], state=os.path.join(d, "st-bad"))
            t.check(f"{what}: exit 2, named", r7.rc == 2 and path in r7.stderr, r7.describe())


def edges(t, dp, gen):
    """A "From " line cut by the scan's 64 KiB reads at each of its bytes,
    and one right at a read's start: every message found, none split."""
    with dptest.scratch("mbox-edges") as d:
        files = files_for(gen, d, 9, 8)
        out, at = [], 0
        for i, (name, data) in enumerate(files):
            k = i % 7  # the next From line starts k bytes before a 64 KiB mark
            ctype = "application/gzip" if name.endswith(".gz") else "text/xml"
            def entry(pad):
                text = b"A DMARC aggregate report.\n" + b"x" * pad + b"\n"
                return mailgen.mbox_bytes([mailgen.multipart("Report " + name, [mailgen.part(ctype, data, name)],
                                                             text=text)])
            base = len(entry(0))
            target = ((at + base) // 65536 + 1) * 65536 - k
            e = entry(target - at - base)
            t.eq(f"edges: message {i + 1} ends {k} byte(s) before a 64 KiB mark", (at + len(e)) % 65536,
                 (65536 - k) % 65536)
            out.append(e)
            at += len(e)
        mbox = dptest.write(os.path.join(d, "inbox.mbox"), b"".join(out))
        want = mailgen.truth(dp, files, os.path.join(d, "t"))
        r = dptest.run(dp, os.path.join(d, "out"), ["mbox:" + mbox], state=os.path.join(d, "state"))
        t.eq("edges: every message an input", r.summary.get("inputs"), len(files))
        t.eq("edges: none rejected", r.summary.get("inputs_rejected"), 0)
        t.eq("edges: totals exact", mailgen.totals(r), mailgen.totals(want))


def held(t, dp, gen):
    """Messages that cannot be read now (no temporary file can be made) are
    held, not lost: nothing counted or acknowledged, the position stays, and
    the next run counts them all."""
    with dptest.scratch("mbox-held") as d:
        files = files_for(gen, d, 5, 6)
        mbox = dptest.write(os.path.join(d, "inbox.mbox"), mailgen.mbox_bytes(messages_for(files)))
        want = mailgen.truth(dp, files, os.path.join(d, "t"))
        out, state = os.path.join(d, "out"), os.path.join(d, "state")
        r = dptest.run(dp, out, ["mbox:" + mbox], state=state, env={"TMPDIR": os.path.join(d, "missing")})
        t.eq("held: exit 3 (inputs left where they were)", r.rc, 3)
        t.check("held: said why", "cannot create a temporary file" in r.stderr, r.describe())
        t.eq("held: nothing counted", r.messages, 0)
        t.eq("held: nothing quarantined", r.quarantined, [])
        t.eq("held: the position not moved", (position(state) or {}).get("offset", 0), 0)
        r2 = dptest.run(dp, out, ["mbox:" + mbox], state=state)
        t.eq("held: the next run reads all", r2.summary.get("inputs"), len(files))
        t.eq("held: and counts the truth", mailgen.totals(r2), mailgen.totals(want))


def rollups_now(path):
    rows = []
    for line in dptest.read_lines(path):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return rows


def follow(t, dp, gen):
    with dptest.scratch("mbox-follow") as d:
        files = files_for(gen, d, 7, 8)
        msgs = messages_for(files)
        want3 = mailgen.truth(dp, files[:3], os.path.join(d, "t3"))
        want5 = mailgen.truth(dp, files[:5], os.path.join(d, "t5"))
        want8 = mailgen.truth(dp, files, os.path.join(d, "t8"))
        mbox, state, out = os.path.join(d, "inbox.mbox"), os.path.join(d, "state"), os.path.join(d, "out")
        os.makedirs(out)
        body = mailgen.mbox_bytes(msgs[:3])
        fourth = mailgen.mbox_bytes(msgs[3:4])
        half = len(fourth) // 2
        dptest.write(mbox, body + fourth[:half])
        err = open(os.path.join(d, "follow.err"), "w")
        p = subprocess.Popen([dp, "run", "--follow", "--poll", "1", "--flush-interval", "0",
                              "--sink", "file:" + os.path.join(out, "rollups.ndjson"),
                              "--quarantine", os.path.join(out, "quarantine"), "--state", state, "mbox:" + mbox],
                             cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            # the rest of the 4th message but its last byte, a chunk every
            # 0.25 s: it keeps growing, over several polls
            rest = fourth[half:-1]
            step = max(1, len(rest) // 24)
            seen3 = False
            for i in range(0, len(rest), step):
                with open(mbox, "ab") as f:
                    f.write(rest[i:i + step])
                time.sleep(0.25)
                if merged_totals(rollups_now(os.path.join(out, "rollups.ndjson"))) == mailgen.totals(want3):
                    seen3 = True
            grown = rollups_now(os.path.join(out, "rollups.ndjson"))
            t.check("follow: the 3 whole messages counted while the 4th grows", seen3)
            t.eq("follow: the growing 4th not counted yet", merged_totals(grown), mailgen.totals(want3))
            qdir = os.path.join(out, "quarantine")
            t.check("follow: the growing 4th not rejected", not os.path.isdir(qdir) or not os.listdir(qdir))
            # its last byte, then a 5th message at once
            with open(mbox, "ab") as f:
                f.write(fourth[-1:] + mailgen.mbox_bytes(msgs[4:5]))
            deadline = time.time() + 60
            while time.time() < deadline:
                if merged_totals(rollups_now(os.path.join(out, "rollups.ndjson"))) == mailgen.totals(want5):
                    break
                time.sleep(0.2)
            t.eq("follow: all 5 counted exactly", merged_totals(rollups_now(os.path.join(out, "rollups.ndjson"))),
                 mailgen.totals(want5))
            # rotated: a 6th appended to the file, which is renamed away at
            # once, and a new file under the name with a 7th and an 8th
            with open(mbox, "ab") as f:
                f.write(mailgen.mbox_bytes(msgs[5:6]))
            os.rename(mbox, mbox + ".1")
            dptest.write(mbox + ".new", mailgen.mbox_bytes(msgs[6:8]))
            os.rename(mbox + ".new", mbox)
            deadline = time.time() + 60
            while time.time() < deadline:
                if merged_totals(rollups_now(os.path.join(out, "rollups.ndjson"))) == mailgen.totals(want8):
                    break
                time.sleep(0.2)
            t.eq("follow: rotated: the old file's last message and the new file's counted exactly",
                 merged_totals(rollups_now(os.path.join(out, "rollups.ndjson"))), mailgen.totals(want8))
            time.sleep(1.5)  # a poll or two more: nothing more may come
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=60)
            err.close()
        with open(os.path.join(d, "follow.err")) as f:
            log = f.read()
        t.eq("follow: SIGTERM exits 0", rc, 0)
        t.eq("follow: nothing counted twice", merged_totals(rollups_now(os.path.join(out, "rollups.ndjson"))),
             mailgen.totals(want8))
        t.eq("follow: rotated: one warning", log.count("replaced"), 1)
        t.check("follow: nothing rejected", "rejected)" in log and not re.search(r"\((?!0 )\d+ rejected\)", log), log[-2000:])
        t.eq("follow: the position is the end of the file", (position(state) or {}).get("offset"),
             os.path.getsize(mbox))
        san = [l for l in log.splitlines() if re.search(r"(Sanitizer|runtime error:)", l)]
        if san:
            dptest.SANITIZER_REPORTS.append(san[0])


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    dp, gen, samples = (os.path.abspath(a) for a in sys.argv[1:])
    t = dptest.Harness("mail_mbox")
    t.run(batch, t, dp, gen, samples)
    t.run(edges, t, dp, gen)
    t.run(held, t, dp, gen)
    t.run(follow, t, dp, gen)
    t.finish()


if __name__ == "__main__":
    main()
