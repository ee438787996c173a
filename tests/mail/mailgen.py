"""mailgen — mail for the mail-source tests, made at test time (stdlib only).

  report_message()  an RFC 5322 message carrying report files as base64
                    attachments, as receivers send them
  mbox_bytes()      messages as an mbox (mboxrd: body "From " lines escaped)
  maildir_put()     messages delivered into a Maildir's new/, as an MDA does
  truth()           the batch-file truth: a `dmarcpipe run` over the report
                    files themselves
  run_rss()         `dmarcpipe run` with its own peak RSS (GNU time)
  totals()          what the tests compare: messages in all, and per
                    (policy_domain, source_ip), from the rollups

Every test script imports this module from its own directory; dptest (the
aggregate tests' helpers) is imported from tests/aggregate.
"""
import base64
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aggregate"))
import dptest  # noqa: E402,F401  (re-exported for the test scripts)

FROM_LINE = b"From dmarc-noreply@example.net Thu Jan  4 00:00:00 2024\n"


def header(subject, boundary=None, to="dmarc@example.com", sender="noreply-dmarc@example.net",
           msgid=None):
    h = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
         "Date: Thu, 04 Jan 2024 00:00:00 +0000",
         f"Message-ID: <{msgid or abs(hash(subject))}@example.net>", "MIME-Version: 1.0"]
    if boundary:
        h.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    return ("\n".join(h) + "\n").encode()


def b64_lines(data):
    """base64 in 76-column lines, as mail carries it."""
    enc = base64.b64encode(data)
    return b"\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + b"\n"


def part(ctype, data, filename=None, encoding="base64"):
    h = f"Content-Type: {ctype}"
    if filename:
        h += f'; name="{filename}"\nContent-Disposition: attachment; filename="{filename}"'
    h += f"\nContent-Transfer-Encoding: {encoding}\n\n"
    body = b64_lines(data) if encoding == "base64" else data
    return h.encode() + body


def multipart(subject, parts, boundary="=_dmarc_boundary", text=b"A DMARC aggregate report.\n"):
    """A multipart/mixed message: a text part, then `parts` (bytes each)."""
    out = [header(subject, boundary), b"\n"]
    if text is not None:
        out.append(f"--{boundary}\n".encode() + part("text/plain; charset=us-ascii", text, encoding="7bit"))
    for p in parts:
        out.append(f"--{boundary}\n".encode() + p)
    out.append(f"--{boundary}--\n".encode())
    return b"".join(out)


def report_message(files, subject=None):
    """files: [(filename, bytes)] report files, each a base64 attachment typed
    by its name, in one message."""
    parts = []
    for name, data in files:
        ctype = ("application/gzip" if name.endswith(".gz") else
                 "application/zip" if name.endswith(".zip") else "text/xml")
        parts.append(part(ctype, data, name))
    return multipart(subject or "Report " + files[0][0], parts)


def as_message(name, data):
    """A report file as a message; a file that is a message already (.eml)
    as it is, with LF line ends."""
    if name.endswith(".eml"):
        return data.replace(b"\r\n", b"\n")
    return report_message([(name, data)])


def mbox_escape(msg):
    """mboxrd: every line that starts with >*From gets one more '>'."""
    lines = msg.split(b"\n")
    out = []
    for l in lines:
        if l.lstrip(b">").startswith(b"From "):
            l = b">" + l
        out.append(l)
    return b"\n".join(out)


def mbox_bytes(messages):
    """The messages as an mbox: each after a From line, escaped, ending in a
    blank line."""
    out = []
    for m in messages:
        out.append(FROM_LINE + mbox_escape(m).rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def maildir_make(root):
    for d in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    return root


_SEQ = [0]


def maildir_put(root, messages):
    """Delivers each message as an MDA does: written in tmp/, renamed into new/."""
    maildir_make(root)
    for m in messages:
        _SEQ[0] += 1
        name = f"{int(time.time())}.M{_SEQ[0]}P{os.getpid()}.testhost"
        tmp = os.path.join(root, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(m)
        os.rename(tmp, os.path.join(root, "new", name))


def report_files(dirpath):
    """(name, bytes) of the report files under dirpath, sorted, dot-files left out."""
    out = []
    for name in sorted(os.listdir(dirpath)):
        p = os.path.join(dirpath, name)
        if name.startswith(".") or not os.path.isfile(p):
            continue
        with open(p, "rb") as f:
            out.append((name, f.read()))
    return out


def totals(r):
    """(messages, {(policy_domain, source_ip): messages}) of a run's rollups."""
    return r.messages, dptest.sums_by(r.rollups, ("policy_domain", "source_ip"))


def truth(dmarcpipe, files, workdir):
    """A batch run over the report files themselves: what every mail source
    must count."""
    src = os.path.join(workdir, "truth-in")
    os.makedirs(src, exist_ok=True)
    for name, data in files:
        dptest.write(os.path.join(src, name), data)
    return dptest.run(dmarcpipe, os.path.join(workdir, "truth-out"), [src], state=os.path.join(workdir, "truth-state"))


def run_rss(dmarcpipe, outdir, sources, *opts, state=None):
    """dptest.run, and the run's own peak RSS in KiB.  GNU time measures
    it: a child of this (big) Python process inherits its high-water mark
    through fork and exec, a child of time's small fresh process does not."""
    os.makedirs(outdir, exist_ok=True)
    rss_file = os.path.join(outdir, ".maxrss")
    args = [dmarcpipe, "run", "--sink", "file:" + os.path.join(outdir, "rollups.ndjson"),
            "--reports", os.path.join(outdir, "reports.ndjson"),
            "--quarantine", os.path.join(outdir, "quarantine")]
    if state:
        args += ["--state", state]
    args += [str(o) for o in opts] + [str(s) for s in sources]
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + args, cwd=outdir,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=dptest.PROC_TIMEOUT)
    with open(rss_file) as f:
        lines = f.read().split()
    rss = int(lines[-1]) if lines and lines[-1].isdigit() else -1
    r = dptest.RunResult(args, p.returncode, p.stderr.decode("utf-8", "replace"), outdir, "rollups.ndjson")
    dptest.RUNS[0] += 1
    san = r.sanitizer_report()
    if san:
        dptest.SANITIZER_REPORTS.append(f"{' '.join(args[1:])}: {san}")
    return r, rss


def sanitized():
    return os.environ.get("DP_SANITIZED") == "1"
