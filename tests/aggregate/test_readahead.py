#!/usr/bin/env python3
"""test_readahead — a reader thread changes nothing but the speed.

`dmarcpipe run --readahead on` hands a report that is still going after
its first MiB of XML to a reader thread (ingest/readahead.c), which
unwraps and hashes ahead of the parser.  Every run here is compared with
`--readahead off` on the same inputs: rollups, the reports feed (with the
sha256 of each report's XML, which the reader thread computes), the run
summary, and the quarantine with each rejected input's reason, must be
identical.  The inputs put the reader thread in each of its places:

  * big reports (several MiB of XML) raw, gzipped, as a zip member beside
    a small report, and as a base64 gzip attachment of an email;
  * a big gzip truncated at 70%: the error reaches the parser through the
    reader thread, after the data before it;
  * a big report with a bad record past its first MiB: the parser stops
    while the reader thread is ahead of it;
  * the corpus (small reports: no reader thread ever starts).

The sha256 values of the big reports are also checked against hashlib.
Configurations: 1 worker and 1 shard, and 2 workers and 3 shards.  The test
also runs in the TSan build (label tsan), where the hand-over of the stream
and the hash between the two threads is checked.

usage: test_readahead.py DMARCPIPE DP_GEN_REPORT CORPUS_DIR
"""
import email.mime.application
import email.mime.multipart
import email.mime.text
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402


def gen(gen_bin, records, seed):
    return subprocess.run([gen_bin, "--records", str(records), "--ips", "3000", "--seed", str(seed)],
                          check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          timeout=dptest.PROC_TIMEOUT).stdout


def bad_record_after(xml, nth):
    """xml with the count of its nth record made non-numeric."""
    pos = 0
    for _ in range(nth):
        pos = xml.index(b"<count>", pos) + len(b"<count>")
    end = xml.index(b"</count>", pos)
    return xml[:pos] + b"12x" + xml[end:]


def build_inputs(gen_bin, corpus, d):
    big = {}
    for i, seed in enumerate((31, 32, 33)):
        big[i] = gen(gen_bin, 6000, seed)  # ~4 MiB of XML each
    dptest.write(os.path.join(d, "big-raw.xml"), big[0])
    dptest.write(os.path.join(d, "big.xml.gz"), gzip.compress(big[1]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.xml", big[2])
        z.writestr("small.xml", gen(gen_bin, 5, 34))
    dptest.write(os.path.join(d, "big-and-small.zip"), buf.getvalue())
    msg = email.mime.multipart.MIMEMultipart()
    msg["From"] = "noreply-dmarc@example.net"
    msg["To"] = "rua@example.com"
    msg["Subject"] = "Report Domain: example.com"
    msg.attach(email.mime.text.MIMEText("DMARC aggregate report attached."))
    att = email.mime.application.MIMEApplication(gzip.compress(gen(gen_bin, 6000, 35)), "gzip")
    att.add_header("Content-Disposition", "attachment", filename="report.xml.gz")
    msg.attach(att)
    dptest.write(os.path.join(d, "big-mail.eml"), msg.as_bytes())
    gz = gzip.compress(gen(gen_bin, 6000, 36))
    dptest.write(os.path.join(d, "bad-truncated.xml.gz"), gz[:len(gz) * 7 // 10])
    late = bad_record_after(gen(gen_bin, 6000, 37), 4000)
    dptest.write(os.path.join(d, "bad-late-record.xml.gz"), gzip.compress(late))
    shutil.copytree(corpus, os.path.join(d, "corpus"))
    return {f"big-{i}": hashlib.sha256(x).hexdigest() for i, x in big.items()}


def quarantine_reasons(outdir):
    """{quarantined file: its .reason without the time of quarantine}"""
    q = os.path.join(outdir, "quarantine")
    out = {}
    for root, _, files in os.walk(q):
        for f in files:
            if f.endswith(".reason"):
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    reason = json.load(fh)
                reason.pop("quarantined_at", None)
                out[os.path.relpath(os.path.join(root, f), q)] = reason
    return out


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, gen_bin, corpus = (os.path.abspath(a) for a in argv[1:4])
    t = dptest.Harness("test_readahead")
    with dptest.scratch("readahead") as tmp:
        d = os.path.join(tmp, "in")
        hashes = build_inputs(gen_bin, corpus, d)
        big_bytes = os.path.getsize(os.path.join(d, "big-raw.xml"))
        t.check("fixture: the big reports pass the 1 MiB mark", big_bytes > 3 << 20, big_bytes)
        for workers, shards in ((1, 1), (2, 3)):
            tag = f"w{workers} s{shards}"
            runs = {}
            for mode in ("off", "on"):
                runs[mode] = dptest.run(dmarcpipe, os.path.join(tmp, f"{tag}-{mode}"), [d],
                                        "--workers", workers, "--shards", shards,
                                        "--readahead", mode)
            off, on = runs["off"], runs["on"]
            t.eq(f"{tag}: exit status (two inputs fail)", (off.rc, on.rc), (1, 1))
            t.check(f"{tag}: rollups identical",
                    sorted(on.rollup_lines) == sorted(off.rollup_lines),
                    dptest.diff_multisets(sorted(off.rollup_lines), sorted(on.rollup_lines)))
            key = lambda x: (x["input"], x["part"])
            t.eq(f"{tag}: reports feed identical (sha256 included)",
                 sorted(on.reports, key=key), sorted(off.reports, key=key))
            t.eq(f"{tag}: summary identical",
                 {k: v for k, v in on.summary.items() if k not in ("seconds", "rate")},
                 {k: v for k, v in off.summary.items() if k not in ("seconds", "rate")})
            t.eq(f"{tag}: quarantine reasons identical",
                 quarantine_reasons(on.outdir), quarantine_reasons(off.outdir))
            t.eq(f"{tag}: the same inputs are quarantined", on.quarantined, off.quarantined)
            t.check(f"{tag}: the two bad inputs are quarantined",
                    {"bad-late-record.xml.gz", "bad-truncated.xml.gz"} <= set(on.quarantined),
                    on.quarantined)
            reasons = quarantine_reasons(on.outdir)
            t.check(f"{tag}: the truncated gzip's reason",
                    "truncat" in json.dumps(reasons.get("bad-truncated.xml.gz.reason")).lower()
                    or "corrupt" in json.dumps(reasons.get("bad-truncated.xml.gz.reason")).lower(),
                    reasons.get("bad-truncated.xml.gz.reason"))
            t.check(f"{tag}: the late bad record's reason names record 4000",
                    "record 4000" in json.dumps(reasons.get("bad-late-record.xml.gz.reason")),
                    reasons.get("bad-late-record.xml.gz.reason"))
            by_input = {os.path.basename(x["input"]): x["sha256"] for x in on.reports}
            t.eq(f"{tag}: sha256 of the raw big report", by_input.get("big-raw.xml"), hashes["big-0"])
            t.eq(f"{tag}: sha256 of the gzipped big report", by_input.get("big.xml.gz"),
                 hashes["big-1"])
            zip_hashes = sorted(x["sha256"] for x in on.reports
                                if os.path.basename(x["input"]) == "big-and-small.zip")
            t.check(f"{tag}: sha256 of the zip's big member", hashes["big-2"] in zip_hashes,
                    zip_hashes)
            t.check(f"{tag}: the mail's report counts",
                    any(os.path.basename(x["input"]) == "big-mail.eml" for x in on.reports),
                    [x["input"] for x in on.reports][:5])
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
