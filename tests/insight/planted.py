#!/usr/bin/env python3
"""planted.py — acceptance tests of `dmarcpipe report` on generated reports
with planted senders (Python 3 stdlib only).

    planted.py DMARCPIPE SOURCE_DIR [--seeds 1,2,3] [--keep DIR]

(one seed by default when DP_SANITIZED is set, as in the ASan build, where
every run is 5-20 times slower)

For each seed, gen_planted.py writes DMARC aggregate reports whose answer it
knows (expected.json: every figure computed from the records it wrote, by
the definitions of insight/README.md); `dmarcpipe run` turns them into the
feeds, and `dmarcpipe report` must give that answer:

  planted     --format json over the planted period: every domain's policy,
              policy history, classes, rates, dispositions, verdict,
              next_step, what reject would block, days with and without
              reports, reporters, daily figures, the previous period, every
              source (order, class, counts, first/last seen, the domains
              that passed for it) and the alerts (kind, domain, source)
  feed        first, the rollups themselves hold the planted figures: a
              disagreement there is the run's or the generator's, not the
              report's
  flushes     `run --max-keys 1` (a flush per key) and the inputs split over
              two runs into two folders, both given as INPUTs: the same JSON,
              byte for byte, apart from the "input" counts
  options     --domain (twice), the default period (the last 30 days of
              data, here two days past the planted period: checked in full),
              --ready-threshold/--min-days/--min-messages (checked in full),
              -o FILE.json, --format table and html, exit statuses 2 and 3
  bad lines   a garbage line appended to a copy of rollups.ndjson: exit 1,
              one line on stderr naming FILE:LINE, the report still on stdout
  corpus      tests/data/samples and tests/data/corpus: every domain with
              messages has one of the four verdicts, classes add up, and the
              totals are the rollups' sums over the period

Prints PASS/FAIL per check group and FAIL lines with input, want and got;
the exit status is 1 when anything failed.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_planted as gp  # noqa: E402

PROC_TIMEOUT = 600
# Rates may be written rounded: 4 decimals are enough to tell every planted
# case apart (gen_planted keeps ratios MARGIN away from the thresholds).
RATE_TOL = 5e-5 + 1e-12
SANITIZER = re.compile(r"(ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:)")


class Harness:
    def __init__(self):
        self.passed = self.failed = 0
        self.sanitizer = []

    def check(self, label, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {label}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def eq(self, label, got, want):
        return self.check(label, got == want, f"want {short(want)}, got {short(got)}")

    def rate(self, label, got, want):
        if want is None or got is None:
            return self.eq(label, got, want)
        ok = isinstance(got, (int, float)) and abs(got - want) <= RATE_TOL
        return self.check(label, ok, f"want {want!r}, got {got!r}")

    def group(self, label, fn, *args):
        """Runs one group of checks; PASS when none of them failed."""
        before = self.failed
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 -- one failure, and the next group runs
            self.check(f"{label} ran to its end", False, traceback.format_exc())
        if self.failed == before:
            print(f"PASS {label}", flush=True)

    def finish(self):
        self.check("no sanitizer report", not self.sanitizer, "\n".join(self.sanitizer[:5]))
        print(f"insight_planted: {self.passed} checks passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


H = Harness()


def short(x, n=500):
    s = json.dumps(x, sort_keys=True) if not isinstance(x, (bytes, str)) else repr(x)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


class Proc:
    def __init__(self, args, p):
        self.args = args
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.out)

    def describe(self):
        return f"`{' '.join(self.args[1:])}` rc={self.rc} stderr: {self.err[-1500:]!r}"


def call(args, cwd=None):
    p = subprocess.run([str(a) for a in args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=PROC_TIMEOUT)
    r = Proc([str(a) for a in args], p)
    for line in r.err.splitlines():
        if SANITIZER.search(line):
            H.sanitizer.append(f"{' '.join(r.args[1:])}: {line}")
            print(f"SANITIZER {r.args}\n{r.err[-4000:]}", flush=True)
            break
    return r


def run_feeds(bin_, outdir, inputs, *opts):
    """`dmarcpipe run` into outdir (rollups.ndjson, reports.ndjson, q/)."""
    os.makedirs(outdir, exist_ok=True)
    return call([bin_, "run", "--sink", "file:" + os.path.join(outdir, "rollups.ndjson"),
                 "--reports", os.path.join(outdir, "reports.ndjson"),
                 "--quarantine", os.path.join(outdir, "q"), *opts, *inputs], cwd=outdir)


def report(bin_, *args):
    return call([bin_, "report", *args])


def period_args(exp):
    return ["--from", exp["period"]["from"], "--to", exp["period"]["to"]]


def without_input(text):
    """The JSON text less its "input" counts object (which differs with the
    number of feed lines), for byte comparisons."""
    return re.sub(rb'"input"\s*:\s*\{[^{}]*\}\s*,?', b"", text, count=1)


def json_diff(a, b, path="", out=None):
    """The first paths at which two JSON values differ, for messages."""
    out = [] if out is None else out
    if len(out) >= 8:
        return out
    if type(a) is not type(b):
        out.append(f"{path or '.'}: {short(a, 120)} / {short(b, 120)}")
    elif isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            json_diff(a.get(k, "(absent)"), b.get(k, "(absent)"), f"{path}.{k}", out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items / {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            json_diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: {short(a, 120)} / {short(b, 120)}")
    return out


def same_bytes(label, got, want):
    """got and want (JSON texts, less "input") are the same bytes; when not,
    says where they differ."""
    if got == want:
        return H.check(label, True)
    try:
        where = json_diff(json.loads(want), json.loads(got))
    except ValueError as e:
        where = [f"not JSON: {e}"]
    return H.check(label, False, "(want / got) " + "; ".join(where or ["the same values, other bytes"]))


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


# ---- the planted answer -----------------------------------------------------------

def compare_report(tag, got, exp, feeds=None):
    """got: the JSON report; exp: gen_planted's answer for the same period."""
    H.eq(f"{tag} v", got.get("v"), 1)
    H.eq(f"{tag} period", got.get("period"), exp["period"])
    H.eq(f"{tag} previous_period", got.get("previous_period"), exp["previous_period"])
    H.eq(f"{tag} thresholds", got.get("thresholds"), exp["thresholds"])
    H.eq(f"{tag} totals", got.get("totals"), exp["totals"])
    if feeds is not None:
        rl = sum(count_lines(os.path.join(d, "rollups.ndjson")) for d in feeds)
        pl = sum(count_lines(os.path.join(d, "reports.ndjson")) for d in feeds)
        H.eq(f"{tag} input", got.get("input"),
             {"lines": rl + pl, "rollup_lines": rl, "report_lines": pl, "bad_lines": 0})
    names = [d.get("domain") for d in got.get("domains", [])]
    H.eq(f"{tag} domains (sorted by name)", names, sorted(exp["domains"]))
    by = {d.get("domain"): d for d in got.get("domains", [])}
    for name, e in exp["domains"].items():
        if name in by:
            compare_domain(f"{tag} {name}", by[name], e)
    compare_alerts(tag, got.get("alerts"), exp["alerts"])


def compare_domain(tag, g, e):
    gp_ = g.get("policy") or {}
    ep = e["policy"] or {}
    for k in ("p", "sp", "np", "pct", "adkim", "aspf", "testing", "as_of"):
        H.eq(f"{tag} policy.{k}", gp_.get(k, "(absent)"), ep.get(k))
    H.eq(f"{tag} policy_history", g.get("policy_history"), e["policy_history"])
    for k in ("messages", "classes", "dispositions", "days_with_reports", "days_without_reports"):
        H.eq(f"{tag} {k}", g.get(k), e[k])
    # each day's counts exactly, and its pass rate (written with 6 digits)
    gd = g.get("daily") or []
    H.eq(f"{tag} daily counts", [{k: v for k, v in x.items() if k != "dmarc_pass_rate"} for x in gd], e["daily"])
    for x, want in zip(gd, e["daily"]):
        H.rate(f"{tag} daily {x.get('date')} dmarc_pass_rate", x.get("dmarc_pass_rate", "(absent)"),
               want["aligned"] / want["messages"] if want["messages"] else None)
    for k in ("dmarc_pass_rate", "dkim_aligned_rate", "spf_aligned_rate"):
        H.rate(f"{tag} {k}", g.get(k, "(absent)"), e[k])
    gr, er = g.get("readiness") or {}, e["readiness"]
    for k in ("verdict", "next_step", "would_block_legitimate", "would_block_spoofed", "legitimate"):
        H.eq(f"{tag} readiness.{k}", gr.get(k, "(absent)"), er[k])
    H.rate(f"{tag} readiness.aligned_share", gr.get("aligned_share", "(absent)"), er["aligned_share"])
    H.check(f"{tag} readiness.reason", isinstance(gr.get("reason"), str) and gr.get("reason"),
            f"got {gr.get('reason')!r}")
    reps = {r.get("name"): {"reports": r.get("reports"), "messages": r.get("messages")}
            for r in g.get("reporters") or []}
    H.eq(f"{tag} reporters", reps, e["reporters"])
    gprev, eprev = g.get("previous") or {}, e["previous"]
    for k in ("messages", "classes", "days_with_reports"):
        H.eq(f"{tag} previous.{k}", gprev.get(k), eprev[k])
    H.rate(f"{tag} previous.dmarc_pass_rate", gprev.get("dmarc_pass_rate", "(absent)"), eprev["dmarc_pass_rate"])
    gs = g.get("sources") or []
    H.eq(f"{tag} sources (order: third_party, messages, IP)", [s.get("source_ip") for s in gs],
         [s["source_ip"] for s in e["sources"]])
    gby = {s.get("source_ip"): s for s in gs}
    for es in e["sources"]:
        s = gby.get(es["source_ip"])
        if s is None:
            continue
        st = f"{tag} source {es['source_ip']}"
        for k in ("class", "messages", "classes", "previous_messages", "first_seen", "last_seen"):
            H.eq(f"{st} {k}", s.get(k, "(absent)"), es[k])
        for k in ("dkim_pass_domains", "spf_pass_domains"):
            # at most 4 are kept (DP_INSIGHT_PASS_DOMAINS); which 4 of more
            # is not defined, but they are among those that passed
            got = s.get(k) or []
            if len(es[k]) <= 4:
                H.eq(f"{st} {k}", sorted(got), es[k])
            else:
                H.check(f"{st} {k}: 4 of {es[k]}", len(got) == 4 and set(got) <= set(es[k]), f"got {got}")
        if es["previous_messages"] > 0:
            H.eq(f"{st} new", s.get("new"), False)
        elif e["previous"]["messages"] > 0:
            H.eq(f"{st} new", s.get("new"), True)


def alert_ip(a, ips):
    """The source IP an alert names: its source_ip, else one in its text."""
    if a.get("source_ip"):
        return a["source_ip"]
    for ip in ips:
        if re.search(r"(?<![0-9a-fA-F:.])" + re.escape(ip) + r"(?![0-9a-fA-F:.])", a.get("text", "")):
            return ip
    return None


def compare_alerts(tag, got, want):
    if not H.check(f"{tag} alerts is a list", isinstance(got, list), f"got {short(got)}"):
        return
    H.eq(f"{tag} alerts (kind, domain)", sorted((a.get("kind"), a.get("domain")) for a in got),
         sorted((a["kind"], a["domain"]) for a in want))
    ips = {a["source_ip"] for a in want if a["kind"] == "new_source"}
    gips = sorted(alert_ip(a, ips) or f"(none named: {a})" for a in got if a.get("kind") == "new_source")
    H.eq(f"{tag} new_source alerts' sources", gips, sorted(ips))
    # the figures an alert carries, where it carries them under these names
    wby = {(a["kind"], a["domain"], a.get("source_ip")): a for a in want}
    for a in got:
        at = f"{tag} alert {a.get('kind')} {a.get('domain')}"
        H.check(f"{at} has a text", isinstance(a.get("text"), str) and a.get("text"), f"got {short(a)}")
        w = wby.get((a.get("kind"), a.get("domain"), alert_ip(a, ips) if a.get("kind") == "new_source" else None))
        for k, v in (w or {}).items():
            if k in ("kind", "domain", "source_ip") or k not in a:
                continue
            if isinstance(v, float):
                H.rate(f"{at} {k}", a[k], v)
            else:
                H.eq(f"{at} {k}", a[k], v)


def feed_check(tag, outdir, exp, n_reports):
    """The feeds hold the planted figures (the run and the generator agree),
    so that a disagreement later is the report's."""
    frm, to = gp.parse_day(exp["period"]["from"]), gp.parse_day(exp["period"]["to"])
    dom = collections.defaultdict(lambda: dict.fromkeys(gp.CLASSES, 0))
    src = collections.defaultdict(lambda: dict.fromkeys(gp.CLASSES, 0))
    seen = {}
    reporters = collections.Counter()
    with open(os.path.join(outdir, "rollups.ndjson"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if frm <= r["window_start"] // gp.DAY <= to:
                c = gp.classify(r["dkim"], r["spf"], r["override"], r["dkim_result"], r["spf_result"])
                name = r["policy_domain"].lower()
                k = (name, r["source_ip"])
                dom[name][c] += r["messages"]
                src[k][c] += r["messages"]
                reporters[(name, r["reporter"])] += r["messages"]
                a, b = seen.get(k, (r["first_seen"], r["last_seen"]))
                seen[k] = (min(a, r["first_seen"]), max(b, r["last_seen"]))
    H.eq(f"{tag} feed: reports accepted", count_lines(os.path.join(outdir, "reports.ndjson")), n_reports)
    for name, e in exp["domains"].items():
        H.eq(f"{tag} feed {name} classes", dom[name], e["classes"])
        for rep, x in e["reporters"].items():
            H.eq(f"{tag} feed {name} {rep} messages", reporters[(name, rep)], x["messages"])
        for s in e["sources"]:
            k = (name, s["source_ip"])
            H.eq(f"{tag} feed {name} {s['source_ip']} classes", src[k], s["classes"])
            H.eq(f"{tag} feed {name} {s['source_ip']} first/last seen",
                 tuple(gp.iso(x) for x in seen.get(k, (0, 0))), (s["first_seen"], s["last_seen"]))


# ---- one seed -------------------------------------------------------------------------

def seed_case(bin_, work, seed):
    d = os.path.join(work, f"seed{seed}")
    ans = gp.generate(seed, d)
    planted, default = ans["planted"], ans["default"]
    inputs = os.path.join(d, ans["reports_dir"])
    one = os.path.join(d, "one")
    t = f"seed {seed}"
    state = {}

    def feeds():
        r = run_feeds(bin_, one, [inputs])
        H.check(f"{t} run", r.rc == 0, r.describe())
        feed_check(t, one, planted, ans["reports"])
    H.group(f"{t} feed: the rollups hold the planted figures", feeds)

    def planted_json():
        r = report(bin_, "--format", "json", *period_args(planted), one)
        H.check(f"{t} report rc 0", r.rc == 0, r.describe())
        state["json"] = r.out
        compare_report(f"{t} planted", r.json(), planted, feeds=[one])
    H.group(f"{t} planted: domains, sources, verdicts, alerts", planted_json)
    base = state.get("json", b"")

    def max_keys():
        many = os.path.join(d, "many")
        r = run_feeds(bin_, many, [inputs], "--max-keys", "1")
        H.check(f"{t} run --max-keys 1", r.rc == 0, r.describe())
        H.check(f"{t} --max-keys 1 gave more rollup lines",
                count_lines(os.path.join(many, "rollups.ndjson")) > count_lines(os.path.join(one, "rollups.ndjson")))
        g = report(bin_, "--format", "json", *period_args(planted), many)
        H.check(f"{t} report (max-keys 1) rc 0", g.rc == 0, g.describe())
        same_bytes(f"{t} max-keys 1: JSON less input", without_input(g.out), without_input(base))
    H.group(f"{t} partial rollups (--max-keys 1): the same JSON", max_keys)

    def split_runs():
        outs = []
        for half in ("a", "b"):
            o = os.path.join(d, "half-" + half)
            ins = [os.path.join(inputs, rep) for rep in ans["split"][half]
                   if os.path.isdir(os.path.join(inputs, rep))]
            r = run_feeds(bin_, o, ins)
            H.check(f"{t} run half {half}", r.rc == 0, r.describe())
            outs.append(o)
        g = report(bin_, "--format", "json", *period_args(planted), *outs)
        H.check(f"{t} report (two folders) rc 0", g.rc == 0, g.describe())
        same_bytes(f"{t} two runs, two INPUTs: JSON less input", without_input(g.out), without_input(base))
        compare_report(f"{t} two folders", g.json(), planted, feeds=outs)
    H.group(f"{t} inputs split over two runs and two INPUT folders: the same JSON", split_runs)

    def domain_filter():
        pick = ["spoofed.example", "drop.example"]
        g = report(bin_, "--format", "json", *period_args(planted), "--domain", pick[0], "--domain", pick[1], one)
        H.check(f"{t} --domain rc 0", g.rc == 0, g.describe())
        j = g.json()
        H.eq(f"{t} --domain: domains", [x.get("domain") for x in j.get("domains", [])], sorted(pick))
        full = {x["domain"]: x for x in json.loads(base)["domains"]} if base else {}
        for x in j.get("domains", []):
            H.eq(f"{t} --domain: {x.get('domain')} as in the full report", x, full.get(x.get("domain")))
        sub = [planted["domains"][n] for n in sorted(pick)]
        H.eq(f"{t} --domain: totals", j.get("totals"),
             {"domains": 2, "messages": sum(x["messages"] for x in sub),
              "classes": {c: sum(x["classes"][c] for x in sub) for c in gp.CLASSES}})
        compare_alerts(f"{t} --domain", j.get("alerts"), [a for a in planted["alerts"] if a["domain"] in pick])
        g = report(bin_, "--format", "json", *period_args(planted), "--domain", "nowhere.example", one)
        H.check(f"{t} --domain nowhere.example rc 0", g.rc == 0, g.describe())
        j = g.json()
        H.eq(f"{t} --domain nowhere.example: domains", j.get("domains"), [])
        H.eq(f"{t} --domain nowhere.example: alerts", j.get("alerts"), [])
    H.group(f"{t} --domain filter", domain_filter)

    def default_period():
        g = report(bin_, "--format", "json", one)
        H.check(f"{t} default period rc 0", g.rc == 0, g.describe())
        compare_report(f"{t} default", g.json(), default, feeds=[one])
        g = report(bin_, "--format", "json", "--to", planted["period"]["to"], one)
        H.check(f"{t} --to alone rc 0", g.rc == 0, g.describe())
        same_bytes(f"{t} --to alone: the 30 days to it", g.out, base)
    H.group(f"{t} default period: the last 30 days of data; --to alone", default_period)

    def thresholds():
        g = report(bin_, "--format", "json", *period_args(planted), "--ready-threshold",
                   str(gp.CUSTOM["ready_threshold"]), "--min-days", str(gp.CUSTOM["min_days"]),
                   "--min-messages", str(gp.CUSTOM["min_messages"]), one)
        H.check(f"{t} thresholds rc 0", g.rc == 0, g.describe())
        compare_report(f"{t} thresholds", g.json(), ans["custom"], feeds=[one])
    H.group(f"{t} --ready-threshold, --min-days, --min-messages", thresholds)

    def out_file():
        path = os.path.join(d, "report.json")
        g = report(bin_, "--format", "json", *period_args(planted), "-o", path, one)
        H.check(f"{t} -o rc 0", g.rc == 0, g.describe())
        H.eq(f"{t} -o: nothing on stdout", g.out, b"")
        with open(path, "rb") as f:
            same_bytes(f"{t} -o FILE.json: the stdout JSON", f.read(), base)
    H.group(f"{t} -o FILE.json", out_file)

    def from_a_pipe():
        feed = b"".join(open(os.path.join(one, n), "rb").read() for n in ("rollups.ndjson", "reports.ndjson"))
        args = [bin_, "report", "--format", "json", *period_args(planted), "-"]
        p = subprocess.run(args, input=feed, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=PROC_TIMEOUT)
        H.check(f"{t} INPUT - (a pipe) rc 0", p.returncode == 0, p.stderr.decode("utf-8", "replace"))
        same_bytes(f"{t} INPUT - (a pipe): the report from the folder", p.stdout, base)
        p = subprocess.run([bin_, "report", "--format", "json", "-"], input=feed, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=PROC_TIMEOUT)
        H.check(f"{t} INPUT - without --to: rc 2 and why", p.returncode == 2 and b"--to" in p.stderr,
                f"rc {p.returncode} stderr {p.stderr!r}")
    H.group(f"{t} INPUT - reads a pipe once, with --to", from_a_pipe)

    def long_line():
        # a 3 MB line between feed lines, and a last line without its
        # newline: the long one is named and skipped, memory does not follow it
        dst = os.path.join(d, "long")
        os.makedirs(dst, exist_ok=True)
        shutil.copy(os.path.join(one, "reports.ndjson"), dst)
        with open(os.path.join(one, "rollups.ndjson"), "rb") as f:
            lines = f.read().splitlines()
        with open(os.path.join(dst, "rollups.ndjson"), "wb") as f:
            f.write(lines[0] + b"\n" + b'{"x":"' + b"a" * 3000000 + b'"}\n' + b"\n".join(lines[1:]))
        g = report(bin_, "--format", "json", *period_args(planted), dst)
        H.eq(f"{t} a 3 MB line: rc", g.rc, 1)
        H.check(f"{t} a 3 MB line: named as rollups.ndjson:2", "rollups.ndjson:2: skipped" in g.err, g.describe())
        H.eq(f"{t} a 3 MB line: input.bad_lines", (g.json().get("input") or {}).get("bad_lines"), 1)
        same_bytes(f"{t} a 3 MB line: the report less input", without_input(g.out), without_input(base))
    H.group(f"{t} a line longer than 1 MiB is skipped; a last line needs no newline", long_line)

    def table_html():
        for fmt in ("table", "html"):
            g = report(bin_, "--format", fmt, *period_args(planted), one)
            H.check(f"{t} --format {fmt} rc 0", g.rc == 0, g.describe())
            text = g.out.decode("utf-8", "replace")
            for name in planted["domains"]:
                H.check(f"{t} --format {fmt} names {name}", name in text)
            for name in ans["not_listed"]:
                H.check(f"{t} --format {fmt} does not name {name}", name not in text)
        H.check(f"{t} --format html is a page", re.search(r"(?is)^\s*<!doctype html.*</html>\s*$", text) is not None,
                f"starts {text[:80]!r}, ends {text[-40:]!r}")
    H.group(f"{t} --format table and html name each domain", table_html)

    def bad_line():
        bad = os.path.join(d, "bad")
        os.makedirs(bad, exist_ok=True)
        shutil.copy(os.path.join(one, "reports.ndjson"), bad)
        src, dst = os.path.join(one, "rollups.ndjson"), os.path.join(bad, "rollups.ndjson")
        shutil.copy(src, dst)
        n = count_lines(dst) + 1
        with open(dst, "ab") as f:
            f.write(b"this is not a rollup {\n")
        g = report(bin_, "--format", "json", *period_args(planted), bad)
        H.eq(f"{t} a garbage line: rc", g.rc, 1)
        lines = [x for x in g.err.splitlines() if x.strip()]
        H.check(f"{t} a garbage line: one line on stderr naming rollups.ndjson:{n}",
                len(lines) == 1 and f"rollups.ndjson:{n}" in lines[0], f"stderr {g.err!r}")
        j = g.json()
        H.eq(f"{t} a garbage line: input.bad_lines", (j.get("input") or {}).get("bad_lines"), 1)
        same_bytes(f"{t} a garbage line: the report less input", without_input(g.out), without_input(base))
    H.group(f"{t} a bad feed line: exit 1, FILE:LINE, the report still written", bad_line)
    return ans, one


def usage_and_io(bin_, work, one):
    """Exit 2 for usage errors, 3 for an input that cannot be read."""
    for args in (["--from", "2024-13-01", one], ["--format", "pdf", one], ["--from", "2024-05-02",
                 "--to", "2024-05-01", one], ["--no-such-option", one]):
        g = report(bin_, *args)
        H.eq(f"report {' '.join(args[:-1])}: rc (usage)", g.rc, 2)
    g = report(bin_, "--format", "json", os.path.join(work, "does-not-exist"))
    H.eq("report on a missing INPUT: rc (unreadable)", g.rc, 3)
    H.check("report on a missing INPUT: a message on stderr", g.err.strip() != "", g.describe())


# ---- the real corpus -------------------------------------------------------------------

def domain_of(line):
    """The domain a feed line counts under: its policy domain, else (a
    rollup of a report that named none) its header_from; compared as the
    DNS does (lower case, no trailing dot).  None when it has neither."""
    d = line.get("policy_domain") or line.get("header_from")
    return d.lower().rstrip(".") or None if d else None


def corpus_check(bin_, work, srcdir):
    out = os.path.join(work, "corpus")
    r = run_feeds(bin_, out, [os.path.join(srcdir, "tests", "data", "samples"),
                              os.path.join(srcdir, "tests", "data", "corpus")])
    H.check("corpus run (rc 1: it holds rejects)", r.rc == 1, r.describe())
    with open(os.path.join(out, "rollups.ndjson"), encoding="utf-8") as f:
        rollups = [json.loads(x) for x in f]
    with open(os.path.join(out, "reports.ndjson"), encoding="utf-8") as f:
        reports = [json.loads(x) for x in f]
    last = max(x["window_start"] // gp.DAY for x in rollups)
    periods = [(None, gp.day_str(last - 29), gp.day_str(last)),
               (("--from", "2024-01-01", "--to", "2024-12-31"), "2024-01-01", "2024-12-31"),
               (("--from", "2026-01-01", "--to", "2026-07-31"), "2026-01-01", "2026-07-31"),
               # two Yahoo rollups of 2015 have no policy domain: they count
               # under their header_from
               (("--from", "2015-06-10", "--to", "2015-07-09"), "2015-06-10", "2015-07-09")]
    for args, frm_s, to_s in periods:
        tag = f"corpus {frm_s}..{to_s}"
        g = report(bin_, "--format", "json", *(args or ()), out)
        if not H.check(f"{tag} rc 0", g.rc == 0, g.describe()):
            continue
        j = g.json()
        H.eq(f"{tag} period", (j.get("period") or {}).get("from"), frm_s)
        H.eq(f"{tag} period", (j.get("period") or {}).get("to"), to_s)
        frm, to = gp.parse_day(frm_s), gp.parse_day(to_s)
        n = to - frm + 1
        pf = frm - n
        msgs = collections.defaultdict(lambda: dict.fromkeys(gp.CLASSES, 0))
        days = collections.defaultdict(set)
        listed = set()
        for x in rollups:
            day, name = x["window_start"] // gp.DAY, domain_of(x)
            if pf <= day <= to:
                listed.add(name)
            if frm <= day <= to:
                c = gp.classify(x["dkim"], x["spf"], x["override"], x["dkim_result"], x["spf_result"])
                msgs[name][c] += x["messages"]
                days[name].add(day)
        for x in reports:
            if x["policy_domain"] and pf <= x["begin"] // gp.DAY <= to:
                listed.add(domain_of(x))
        total = sum(sum(v.values()) for v in msgs.values())
        doms = j.get("domains") or []
        H.eq(f"{tag} domains listed", sorted(d.get("domain") for d in doms), sorted(listed))
        H.eq(f"{tag} totals.messages = the rollups' messages in the period", (j.get("totals") or {}).get("messages"),
             total)
        H.eq(f"{tag} totals.messages = the domains' sum", (j.get("totals") or {}).get("messages"),
             sum(d.get("messages", 0) for d in doms))
        H.eq(f"{tag} totals.classes", (j.get("totals") or {}).get("classes"),
             {c: sum(v[c] for v in msgs.values()) for c in gp.CLASSES})
        for d in doms:
            name = d.get("domain")
            dt = f"{tag} {name}"
            H.eq(f"{dt} classes", d.get("classes"), msgs[name] if name in msgs else dict.fromkeys(gp.CLASSES, 0))
            H.eq(f"{dt} messages = the classes' sum", d.get("messages"), sum((d.get("classes") or {}).values()))
            H.eq(f"{dt} days_with_reports", d.get("days_with_reports"), len(days[name]))
            v = (d.get("readiness") or {}).get("verdict")
            H.check(f"{dt} verdict is one of the four", v in ("insufficient_data", "enforced", "ready", "fix_senders"),
                    f"got {v!r}")
            if d.get("messages", 0) < 100 or len(days[name]) < 7:
                H.eq(f"{dt} verdict (few days or messages)", v, "insufficient_data")
            rb = d.get("readiness") or {}
            cl = d.get("classes") or {}
            H.eq(f"{dt} would_block_legitimate", rb.get("would_block_legitimate"),
                 cl.get("forwarded", 0) + cl.get("third_party", 0))
            H.eq(f"{dt} would_block_spoofed", rb.get("would_block_spoofed"), cl.get("unauthenticated"))
            H.eq(f"{dt} sources' messages add up", sum(s.get("messages", 0) for s in d.get("sources") or []),
                 d.get("messages"))
        for fmt in ("table", "html"):
            g = report(bin_, "--format", fmt, *(args or ()), out)
            H.check(f"{tag} --format {fmt} rc 0", g.rc == 0, g.describe())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dmarcpipe")
    ap.add_argument("source_dir")
    ap.add_argument("--seeds", default="1" if os.environ.get("DP_SANITIZED") else "1,2,3")
    ap.add_argument("--keep", help="work in this folder and keep it")
    a = ap.parse_args()
    bin_ = os.path.abspath(a.dmarcpipe)
    srcdir = os.path.abspath(a.source_dir)
    if a.keep:
        shutil.rmtree(a.keep, ignore_errors=True)
        os.makedirs(a.keep)
        work, tmp = os.path.abspath(a.keep), None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="dp-insight-planted-")
        work = tmp.name
    one = None
    for seed in (int(s) for s in a.seeds.split(",") if s):
        try:
            _, one = seed_case(bin_, work, seed)
        except Exception:  # noqa: BLE001
            H.check(f"seed {seed} ran to its end", False, traceback.format_exc())
    if one:
        H.group("exit statuses 2 (usage) and 3 (unreadable input)", usage_and_io, bin_, work, one)
    H.group("the real corpus: sensible verdicts, totals = the rollups' sums", corpus_check, bin_, work,
            srcdir)
    H.finish()


if __name__ == "__main__":
    main()
