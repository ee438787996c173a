"""dptest — shared helpers for the aggregate tests (Python 3 stdlib only).

  Harness      counts checks, prints `N passed, M failed`, sets the exit status
  run()        one `dmarcpipe run` into a scratch directory, outputs loaded
  report_xml() a small RFC 7489 aggregate report, built from a record list
  merge()      partial rollups (flushed early) added up per key

Every test script imports this module from its own directory.
"""
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback

# The rollup fields that form its key, beside window_start/window_end/v.
KEY_STRINGS = ("reporter", "policy_domain", "header_from", "source_ip", "disposition",
               "dkim", "spf", "override", "dkim_domain", "dkim_selector", "dkim_result",
               "spf_domain", "spf_result")
# What enrichment knew of source_ip (schema v2): between the key and the
# measures, not part of the key; null without --enrich.
SOURCE_FIELDS = ("source_ptr", "source_base_domain", "source_asn", "source_as_org", "source_country",
                 "source_service", "source_service_type")
ROLLUP_FIELDS = (("v", "window_start", "window_end") + KEY_STRINGS + SOURCE_FIELDS +
                 ("messages", "records", "first_seen", "last_seen"))
INT_FIELDS = {"v", "window_start", "window_end", "messages", "records", "first_seen", "last_seen",
              "source_asn"}
SCHEMA_VERSION = 2

# Every run's sanitizer report (ASan, UBSan, LSan, TSan), checked by
# Harness.finish(): ASan exits 1, which `run` also uses for a rejected input.
SANITIZER_REPORTS = []
LOAD_ERRORS = []
RUNS = [0]

# A run under a sanitizer is 5-20 times slower; subprocess limits allow it.
PROC_TIMEOUT = 600


class Harness:
    """check() records one result; finish() prints the tally and exits."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, label, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {label}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {label}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def eq(self, label, got, want):
        return self.check(label, got == want, f"got {short(got)}, want {short(want)}")

    def run(self, fn, *args):
        """Calls one test function; an exception in it is one failure, with
        its traceback, and the next function still runs."""
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 -- report and go on
            self.check(f"{fn.__name__} ran to its end", False, traceback.format_exc())

    def note(self, text):
        print(f"NOTE {text}", flush=True)

    def finish(self):
        self.check(f"no sanitizer report in any of {RUNS[0]} dmarcpipe runs",
                   not SANITIZER_REPORTS, "\n".join(SANITIZER_REPORTS[:5]))
        self.check("every output line is JSON", not LOAD_ERRORS, "\n".join(LOAD_ERRORS[:5]))
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def short(x, n=600):
    s = repr(x)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def scratch(prefix):
    """A temporary directory (a TemporaryDirectory object: keep it alive)."""
    return tempfile.TemporaryDirectory(prefix=f"dp-agg-{prefix}-")


# ---- running dmarcpipe ----------------------------------------------------

SUMMARY_RES = {
    "inputs": r"(\d+) inputs \((\d+) rejected\)",
    "reports": r"reports:\s+(\d+) accepted, (\d+) rejected, (\d+) duplicate",
    "records": r"records:\s+(\d+)\s+messages:\s+(\d+)",
    "rollups": r"rollups:\s+(\d+) per sink",
}


def parse_summary(stderr):
    s = {}
    m = re.search(SUMMARY_RES["inputs"], stderr)
    if m:
        s["inputs"], s["inputs_rejected"] = int(m[1]), int(m[2])
    m = re.search(SUMMARY_RES["reports"], stderr)
    if m:
        s["accepted"], s["rejected"], s["duplicates"] = int(m[1]), int(m[2]), int(m[3])
    m = re.search(SUMMARY_RES["records"], stderr)
    if m:
        s["records"], s["messages"] = int(m[1]), int(m[2])
    m = re.search(SUMMARY_RES["rollups"], stderr)
    if m:
        s["rollups"] = int(m[1])
    return s


class RunResult:
    def __init__(self, args, rc, stderr, outdir, sink):
        self.args, self.rc, self.stderr, self.outdir = args, rc, stderr, outdir
        self.summary = parse_summary(stderr)
        path = os.path.join(outdir, sink)
        self.load_errors = []
        self.rollup_lines = read_lines(path)
        self.rollups = [] if sink.endswith(".csv") else self._load(path, self.rollup_lines)
        rpath = os.path.join(outdir, "reports.ndjson")
        self.report_lines = read_lines(rpath)
        self.reports = self._load(rpath, self.report_lines)
        qdir = os.path.join(outdir, "quarantine")
        self.quarantined = sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []

    def _load(self, path, lines):
        """JSON lines; one that does not load (a run killed mid-write) is
        kept out and named in load_errors, which Harness.finish() fails on."""
        out = []
        for i, line in enumerate(lines):
            try:
                out.append(json.loads(line))
            except ValueError as e:
                self.load_errors.append(f"{path}:{i + 1}: {e}: {short(line, 120)}")
        LOAD_ERRORS.extend(self.load_errors)
        return out

    @property
    def messages(self):
        return sum(r["messages"] for r in self.rollups)

    @property
    def report_messages(self):
        return sum(r["messages"] for r in self.reports)

    def sanitizer_report(self):
        """The first line of a sanitizer's report on stderr, or None."""
        for line in self.stderr.splitlines():
            if re.search(r"(ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:)", line):
                return line
        return None

    def describe(self):
        tail = "\n".join(self.stderr.splitlines()[-8:])
        return f"rc={self.rc} args={' '.join(self.args)}\n{tail}"


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def run(dmarcpipe, outdir, sources, *opts, sink="rollups.ndjson", extra_sinks=(), env=None,
        state=None):
    """`dmarcpipe run` writing into outdir (created): rollups to `sink`, the
    reports feed to reports.ndjson, rejects to quarantine/.  The working
    directory is outdir, so nothing lands in the caller's ./dmarcpipe-out."""
    os.makedirs(outdir, exist_ok=True)
    args = [dmarcpipe, "run", "--sink", "file:" + os.path.join(outdir, sink)]
    for s in extra_sinks:
        args += ["--sink", "file:" + os.path.join(outdir, s)]
    args += ["--reports", os.path.join(outdir, "reports.ndjson"),
             "--quarantine", os.path.join(outdir, "quarantine")]
    if state:
        args += ["--state", state]
    args += [str(o) for o in opts]
    args += [str(s) for s in sources]
    p = subprocess.run(args, cwd=outdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=PROC_TIMEOUT,
                       env=dict(os.environ, **(env or {})))
    r = RunResult(args, p.returncode, p.stderr.decode("utf-8", "replace"), outdir, sink)
    RUNS[0] += 1
    san = r.sanitizer_report()
    if san:
        SANITIZER_REPORTS.append(f"{' '.join(args[1:])}: {san}")
        print(f"SANITIZER {san}\n{r.stderr[-4000:]}", flush=True)
    return r


def gen_reports(gen, outdir, n, records, seed=1, extra=()):
    """bench/dp-gen-report: n reports of `records` records into outdir."""
    os.makedirs(outdir, exist_ok=True)
    subprocess.run([gen, "--reports", str(n), "--records", str(records), "--seed", str(seed),
                    *extra, "-o", outdir], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=PROC_TIMEOUT)


# ---- rollups ---------------------------------------------------------------

def rollup_key(r):
    return (r["v"], r["window_start"], r["window_end"]) + tuple(r[k] for k in KEY_STRINGS)


def merge(rollups):
    """Partial rollups of one key added up: messages and records summed,
    first_seen the least, last_seen the greatest.  Returns {key: dict}."""
    out = {}
    for r in rollups:
        k = rollup_key(r)
        m = out.get(k)
        if m is None:
            out[k] = dict(r)
        else:
            m["messages"] += r["messages"]
            m["records"] += r["records"]
            m["first_seen"] = min(m["first_seen"], r["first_seen"])
            m["last_seen"] = max(m["last_seen"], r["last_seen"])
    return out


def diff_multisets(a, b, n=5):
    """A short description of how two lists differ as multisets ('' if equal)."""
    ca, cb = collections.Counter(a), collections.Counter(b)
    only_a, only_b = ca - cb, cb - ca
    if not only_a and not only_b:
        return ""
    parts = [f"{sum(only_a.values())} only in first, {sum(only_b.values())} only in second"]
    for x in list(only_a)[:n]:
        parts.append(f"  - {short(x, 300)}")
    for x in list(only_b)[:n]:
        parts.append(f"  + {short(x, 300)}")
    return "\n".join(parts)


def sums_by(rollups, fields):
    out = collections.Counter()
    for r in rollups:
        out[tuple(r[f] for f in fields)] += r["messages"]
    return dict(out)


# ---- crafted reports ---------------------------------------------------------

def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def record_xml(ip, count, domain, disposition="none", dkim="pass", spf="pass",
               header_from=None, raw_count=None):
    hf = header_from or domain
    c = raw_count if raw_count is not None else str(count)
    return (
        "  <record>\n"
        f"    <row><source_ip>{_esc(ip)}</source_ip><count>{_esc(c)}</count>\n"
        f"      <policy_evaluated><disposition>{disposition}</disposition>"
        f"<dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\n"
        f"    <identifiers><header_from>{_esc(hf)}</header_from></identifiers>\n"
        f"    <auth_results><dkim><domain>{_esc(hf)}</domain><selector>s1</selector>"
        f"<result>{dkim}</result></dkim>\n"
        f"      <spf><domain>{_esc(hf)}</domain><result>{spf}</result></spf></auth_results>\n"
        "  </record>\n")


def report_head(org, report_id, domain, begin, end):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n'
        "  <report_metadata>\n"
        f"    <org_name>{_esc(org)}</org_name><email>dmarc@{_esc(org)}</email>\n"
        f"    <report_id>{_esc(report_id)}</report_id>\n"
        f"    <date_range><begin>{begin}</begin><end>{end}</end></date_range>\n"
        "  </report_metadata>\n"
        f"  <policy_published><domain>{_esc(domain)}</domain><adkim>r</adkim><aspf>r</aspf>"
        "<p>none</p><sp>none</sp><pct>100</pct></policy_published>\n")


REPORT_TAIL = "</feedback>\n"


def report_xml(org, report_id, domain, begin, end, records):
    """records: (ip, count) pairs or dicts of record_xml() arguments."""
    body = []
    for r in records:
        if isinstance(r, dict):
            body.append(record_xml(domain=domain, **r))
        else:
            body.append(record_xml(r[0], r[1], domain))
    return report_head(org, report_id, domain, begin, end) + "".join(body) + REPORT_TAIL


def write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path
