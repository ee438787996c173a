#!/usr/bin/env python3
"""test_hostile_mail -- what a sender can mail to the rua= address, through
the mail sources (`mbox:` and `maildir:`), with the real `dmarcpipe run`.

Every case puts good report messages beside the hostile ones, in the same
run: the run goes on, the good ones count exactly (the truth: a batch run
over their report files), each hostile message is rejected with a reason
that names what it broke, and the quarantine holds it (mbox: the run's
--quarantine folder, NAME and NAME.reason; Maildir: DIR/.Quarantine/cur and
DIR/.Quarantine/reasons/NAME.json).  Peak RSS is the dmarcpipe process's
own (GNU time's %M), asserted outside sanitizer builds.

  * bombs: multiparts nested 10,000 deep (under the prescan's part limit:
    GMime builds them, then the walk refuses the depth) and 100,000 deep
    (refused by the prescan), and 100,000 tiny parts: each rejected with
    "nested too deeply" or "too many MIME parts"; no crash; peak RSS under
    128 MiB;
  * many attachments, as ingest's part limit (max_parts 10,000 leaves per
    input) has them today:
      - 9,999 report attachments and a text part (10,000 leaves): every
        report counts, the message is accepted;
      - 10,000 report attachments and a text part (10,001 leaves): the
        message is rejected, "too many message parts (more than 10000)";
        the 9,999 reports of the leaves before the limit count (each
        report whole: ingest commits a report at its end, and the limit
        stops the walk at the next leaf);
      - 9,990 tiny text parts and 5 reports: the 5 count, accepted;
    one worker, peak RSS under 96 MiB (about 57 MiB today): bounded by
    the part limit, not by the message's size (GMime holds each part's
    headers, about 4 KiB a part; the engine decides each report of the
    input at the head of the order as it ends, so it holds no more);
  * not reports: a PDF attachment (its content named: not a report), a PNG
    (no aggregate report, image/png), a text/plain part with XML in it (an
    invoice: no aggregate report, text/plain), a text/plain part with a
    broken <feedback> (the XML error), an ARF failure report, an SMTP TLS
    report: each rejected with its reason;
  * big (test_hostile_mail.py ... big; ctest mail_big, label slow too): a
    ~200 MB message, a 100 MB XML report base64-encoded beside 50 MB of a
    PDF: the report counts exactly, and peak RSS stays under 100 MiB (the
    figure is printed).  Sanitizer builds use a 20 MB report and no bound.

usage: test_hostile_mail.py DMARCPIPE DP_GEN_REPORT [hostile|big]
"""
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mailgen  # noqa: E402
from mailgen import dptest  # noqa: E402

D0 = 1700006400  # 2023-11-15 00:00 UTC
KINDS = ("mbox", "maildir")
MIB = 1024  # ru_maxrss is in KiB


def small_report(org, rid, ip, count, domain="example.com"):
    return dptest.report_xml(org, rid, domain, D0, D0 + 86399, [(ip, count)]).encode()


def good_files(tag):
    return [(f"{tag}-good-1.xml", small_report("good.example", f"{tag}-g1", "192.0.2.1", 7)),
            (f"{tag}-good-2.xml", small_report("good.example", f"{tag}-g2", "192.0.2.2", 11, "example.org"))]


def deliver(kind, d, msgs):
    """The messages as an mbox file or a Maildir under d: the source's URI."""
    if kind == "mbox":
        return "mbox:" + dptest.write(os.path.join(d, "inbox.mbox"), mailgen.mbox_bytes(msgs))
    root = os.path.join(d, "Maildir")
    mailgen.maildir_put(root, msgs)
    return "maildir:" + root


def reasons(kind, d, r):
    """{message name: the reason's text, every error} of the rejected messages."""
    out = {}
    if kind == "mbox":
        paths = glob.glob(os.path.join(r.outdir, "quarantine", "*.reason"))
    else:
        paths = glob.glob(os.path.join(d, "Maildir", ".Quarantine", "reasons", "*.json"))
    for p in paths:
        with open(p) as f:
            j = json.load(f)
        text = " | ".join([j.get("error", "")] + [e.get("error", "") for e in j.get("errors", [])])
        out[os.path.basename(p)] = text
    return out


def kept(kind, d, r):
    """How many rejected messages the quarantine holds (copies, not reasons)."""
    if kind == "mbox":
        return len([n for n in r.quarantined if not n.endswith(".reason")])
    cur = os.path.join(d, "Maildir", ".Quarantine", "cur")
    return len(os.listdir(cur)) if os.path.isdir(cur) else 0


def check_run(t, label, kind, d, r, rss, want_totals, n_inputs, why, rss_mib):
    """The checks every case makes: the run went to its end, counted the
    truth, rejected len(why) messages, each with a reason (a pattern that
    is k times in `why` is in k reasons), and kept them; memory bounded."""
    t.eq(f"{label} {kind}: exit 1 (rejections), no crash", r.rc, 1 if why else 0)
    t.eq(f"{label} {kind}: every message an input", r.summary.get("inputs"), n_inputs)
    t.eq(f"{label} {kind}: rejected", r.summary.get("inputs_rejected"), len(why))
    t.eq(f"{label} {kind}: totals exact", mailgen.totals(r), want_totals)
    rs = reasons(kind, d, r)
    t.eq(f"{label} {kind}: one reason per rejected message", len(rs), len(why))
    t.eq(f"{label} {kind}: each kept in the quarantine", kept(kind, d, r), len(why))
    texts = list(rs.values())
    for w in sorted(set(why)):
        hit = [x for x in texts if w in x]
        t.check(f"{label} {kind}: {why.count(w)} reason(s) say '{w}'", len(hit) == why.count(w),
                f"{texts}\n{r.describe()}")
    if kind == "maildir":
        done = os.path.join(d, "Maildir", ".Processed", "cur")
        t.eq(f"{label} {kind}: the others in .Processed", len(os.listdir(done)) if os.path.isdir(done) else 0,
             n_inputs - len(why))
    t.note(f"{label} {kind}: peak RSS {rss / MIB:.1f} MiB")
    if rss_mib and not mailgen.sanitized():
        t.check(f"{label} {kind}: peak RSS under {rss_mib} MiB", rss < rss_mib * MIB, f"{rss / MIB:.1f} MiB")


# ---- bombs ---------------------------------------------------------------------

def nested(depth):
    out = [mailgen.header(f"nested {depth}")]
    for i in range(depth):
        out.append(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode())
    out.append(b"Content-Type: text/plain\n\nhello\n")
    for i in reversed(range(depth)):
        out.append(f"--b{i}--\n".encode())
    return b"".join(out)


def tiny_parts(n, extra=()):
    """n tiny text parts, then `extra` parts."""
    b = "tiny"
    out = [mailgen.header(f"{n} tiny parts", b), b"\n"]
    for i in range(n):
        out.append(f"--{b}\nContent-Type: text/plain\n\n{i}\n".encode())
    for p in extra:
        out.append(f"--{b}\n".encode() + p)
    out.append(f"--{b}--\n".encode())
    return b"".join(out)


def bombs(t, dp):
    for kind in KINDS:
        with dptest.scratch(f"mail-bombs-{kind}") as d:
            goods = good_files("bombs")
            msgs = [mailgen.report_message([goods[0]]), nested(10000), nested(100000), tiny_parts(100000),
                    mailgen.report_message([goods[1]])]
            want = mailgen.truth(dp, goods, d)
            src = deliver(kind, d, msgs)
            r, rss = mailgen.run_rss(dp, os.path.join(d, "out"), [src], "--workers", "2",
                                     state=os.path.join(d, "state"))
            # 10,000 deep: its depth; 100,000 deep and 100,000 parts: the part limit
            check_run(t, "bombs", kind, d, r, rss, mailgen.totals(want), len(msgs),
                      ["MIME parts nested too deeply"] + ["too many MIME parts (more than 10000)"] * 2, 128)


# ---- many attachments -------------------------------------------------------------

def many(t, dp):
    def reps(tag, n):
        return [(f"{tag}-{i}.xml", small_report("many.example", f"{tag}-{i}",
                                                f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}", 1))
                for i in range(n)]
    a, b, c = reps("a", 9999), reps("b", 10000), reps("c", 5)
    goods = good_files("many")
    msgs = [mailgen.report_message(a, "9,999 reports"), mailgen.report_message(b, "10,000 reports"),
            tiny_parts(9990, [mailgen.part("text/xml", x, n) for n, x in c]),
            mailgen.report_message([goods[0]])]
    # what ingest counts today: the message over the limit gives the
    # reports of the leaves before it (the text part is leaf 1)
    counted = a + b[:9999] + c + goods[:1]
    with dptest.scratch("mail-many-truth") as td:
        want = mailgen.truth(dp, counted, td)
    for kind in KINDS:
        with dptest.scratch(f"mail-many-{kind}") as d:
            src = deliver(kind, d, msgs)
            r, rss = mailgen.run_rss(dp, os.path.join(d, "out"), [src], "--workers", "1",
                                     state=os.path.join(d, "state"))
            check_run(t, "many", kind, d, r, rss, mailgen.totals(want), len(msgs),
                      ["too many message parts (more than 10000)"], 96)
            t.eq(f"many {kind}: reports accepted", r.summary.get("accepted"), len(counted))


# ---- not reports --------------------------------------------------------------------

def not_reports(t, dp):
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 40
    invoice = b'<?xml version="1.0"?>\n<invoice><total currency="EUR">5</total></invoice>\n'
    broken = b'<?xml version="1.0"?>\n<feedback><report_metadata><org_name>x</org_name>\n'
    arf = (mailgen.header("Abuse report").replace(b"MIME-Version: 1.0\n", b"") +
           b'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary="arf"\n\n'
           b"--arf\nContent-Type: text/plain\n\nA DMARC failure report.\n"
           b"--arf\nContent-Type: message/feedback-report\n\nFeedback-Type: auth-failure\nVersion: 1\n"
           b"Auth-Failure: dmarc\n\n"
           b"--arf\nContent-Type: text/rfc822-headers\n\nFrom: someone@example.com\n\n--arf--\n")
    tls = (mailgen.header("Report Domain: example.com").replace(b"MIME-Version: 1.0\n", b"") +
           b'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=tlsrpt; boundary="tls"\n\n'
           b"--tls\nContent-Type: text/plain\n\nThis is an aggregate TLS report.\n--tls\n" +
           mailgen.part("application/tlsrpt+gzip", b"\x1f\x8b\x08\x00" + b"\0" * 20, "tls.json.gz") + b"--tls--\n")
    for kind in KINDS:
        with dptest.scratch(f"mail-notreports-{kind}") as d:
            goods = good_files("notrep")
            msgs = [mailgen.report_message([goods[0]]),
                    mailgen.multipart("invoice", [mailgen.part("application/pdf", pdf, "invoice.pdf")]),
                    mailgen.multipart("logo", [mailgen.part("image/png", png, "logo.png")]),
                    mailgen.multipart("xml text", [mailgen.part("text/plain", invoice)]),
                    mailgen.multipart("broken", [mailgen.part("text/plain", broken)]),
                    arf, tls, mailgen.report_message([goods[1]])]
            want = mailgen.truth(dp, goods, d)
            src = deliver(kind, d, msgs)
            r, rss = mailgen.run_rss(dp, os.path.join(d, "out"), [src], state=os.path.join(d, "state"))
            check_run(t, "not reports", kind, d, r, rss, mailgen.totals(want), len(msgs),
                      ["starts with '%PDF-1.4", "image/png", "(parts: text/plain, text/plain)", "XML error",
                       "failure report (ARF", "SMTP TLS report"], 0)
            texts = list(reasons(kind, d, r).values())
            t.check(f"not reports {kind}: the broken <feedback> fails in the XML, not as 'no report'",
                    any("no aggregate report" not in x and ("xml" in x.lower() or "feedback" in x) for x in texts),
                    texts)


# ---- a 200 MB message -----------------------------------------------------------------

def write_b64(f, src, n):
    """n bytes of src (a file object, or None for filler bytes) as base64
    lines, 57 bytes a line, in 57 KB chunks."""
    chunk = 57 * 1000
    left = n
    filler = bytes(range(256)) * (chunk // 256 + 1)
    while left > 0:
        k = min(chunk, left)
        data = src.read(k) if src else filler[:k]
        if not data:
            break
        f.write(mailgen.b64_lines(data))
        left -= len(data)


def big(t, dp, gen):
    report_mb, pdf_mb = (20, 10) if mailgen.sanitized() else (100, 50)
    with dptest.scratch("mail-big") as d:
        xml = os.path.join(d, "big.xml")
        subprocess.run([gen, "--target-bytes", f"{report_mb}M", "--seed", "11", "-o", xml], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        goods = good_files("big")
        with open(xml, "rb") as f:
            want = mailgen.truth(dp, goods + [("big.xml", f.read())], d)
        msg = os.path.join(d, "big.eml")
        with open(msg, "wb") as f, open(xml, "rb") as x:
            f.write(mailgen.header("A big report", "big") + b"\n--big\n")
            f.write(b'Content-Type: application/pdf; name="scan.pdf"\nContent-Transfer-Encoding: base64\n\n')
            write_b64(f, None, pdf_mb << 20)
            f.write(b'--big\nContent-Type: text/xml; name="big.xml"\n'
                    b'Content-Disposition: attachment; filename="big.xml"\nContent-Transfer-Encoding: base64\n\n')
            write_b64(f, x, os.path.getsize(xml))
            f.write(b"--big--\n")
        size = os.path.getsize(msg)
        t.note(f"big: the message is {size / 2**20:.0f} MiB")
        for kind in KINDS:
            kd = os.path.join(d, kind)
            os.makedirs(kd)
            if kind == "mbox":
                src = os.path.join(kd, "inbox.mbox")
                with open(src, "wb") as f, open(msg, "rb") as m:
                    f.write(mailgen.mbox_bytes([mailgen.report_message([goods[0]])]))
                    f.write(mailgen.FROM_LINE)
                    while True:
                        b = m.read(1 << 20)
                        if not b:
                            break
                        f.write(b)
                    f.write(b"\n" + mailgen.mbox_bytes([mailgen.report_message([goods[1]])]))
                uri = "mbox:" + src
            else:
                root = os.path.join(kd, "Maildir")
                mailgen.maildir_put(root, [mailgen.report_message([goods[0]])])
                os.link(msg, os.path.join(root, "new", "1700000000.big.testhost"))
                mailgen.maildir_put(root, [mailgen.report_message([goods[1]])])
                uri = "maildir:" + root
            r, rss = mailgen.run_rss(dp, os.path.join(kd, "out"), [uri], "--workers", "2",
                                     state=os.path.join(kd, "state"))
            t.eq(f"big {kind}: exit 0", r.rc, 0)
            t.eq(f"big {kind}: 3 inputs", r.summary.get("inputs"), 3)
            t.eq(f"big {kind}: totals exact", mailgen.totals(r), mailgen.totals(want))
            t.note(f"big {kind}: peak RSS {rss / MIB:.1f} MiB for a {size / 2**20:.0f} MiB message")
            if not mailgen.sanitized():
                t.check(f"big {kind}: peak RSS under 100 MiB (flat, far below the message)", rss < 100 * MIB,
                        f"{rss / MIB:.1f} MiB")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    dp, gen = (os.path.abspath(a) for a in sys.argv[1:3])
    which = sys.argv[3] if len(sys.argv) == 4 else "hostile"
    t = dptest.Harness(f"mail_{which}")
    if which == "big":
        t.run(big, t, dp, gen)
    else:
        t.run(bombs, t, dp)
        t.run(many, t, dp)
        t.run(not_reports, t, dp)
    t.finish()


if __name__ == "__main__":
    main()
