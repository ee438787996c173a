#!/usr/bin/env python3
"""test_mixed — good and failing reports mixed at random, in any configuration.

A randomized property test of "a report counts whole or not at all" across
batch boundaries.  For each seed, a directory of 20-36 inputs in random
order mixes:

  * good reports (1..600 records, so some fill several 256-item batches and
    some fill none; a few have no record at all), from a few reporters and
    policy domains, so that reports share keys; IPv4 and IPv6 source IPs
    (some written as IPv4-mapped IPv6 or uncompressed upper-case IPv6);
    counts from 0 to 10^9; ranges of a UTC day, within a day, over several
    days, or a single second; some gzipped;
  * failing inputs of six kinds: a bad source_ip at a random record
    position (0 = before the first record), a bad count (non-integer,
    negative, 2^64) at a random position, XML cut off at a random byte, a
    gzip truncated mid-stream, a zip whose first member is good and whose
    second fails, and a zip of 2-4 members, good and failing in random
    order (every member is read, so a good report may follow a failed one
    in the same input, on the same worker); the zips' failing members are
    one of the three XML failures; some failing reports carry a good
    report's identity, which must not block it;
  * exact copies of good reports (plain or gzipped), which count once.

`dmarcpipe run` goes over it in several random configurations (--workers
{1,2,3}, --shards {1,2,3,5}, --batch-items {1,2,7,256}, --ring-slots
{2,64}, sometimes --max-keys 3 so that shards flush mid-run).  The first
configuration of every seed is one worker with the default batch size:
a failure that leaves a half-filled batch open hits the next report.  The
second is one worker with --max-keys 3: it must really flush mid-run (a
key with records from two inputs on two lines).

The oracles:
  * a run over the good reports alone (one copy each), --workers 1
    --shards 1;
  * rollups computed here in Python from what was generated: every key
    field, messages split over UTC days by cumulative rounding (as
    aggregate README says), records, first_seen and last_seen.

Checks, per seed: the oracle run equals the Python rollups exactly; every
mixed run, merged over flush boundaries (dptest.merge), equals the oracle
run; its total messages equal the Python sum; its summary (inputs,
accepted, rejected, duplicate, records, messages) is what was generated;
its reports feed equals the oracle's (input and part aside); every failing
input, and nothing else, is in the quarantine with a .reason; exit status
1; no sanitizer report.  Every failure message starts with its seed and
configuration (the sanitizer and JSON checks name the run's arguments,
whose paths hold seed-N); `--seeds N` reruns one seed, `--keep DIR` keeps
the inputs and outputs.

usage: test_mixed.py DMARCPIPE [--seeds 1,2,3] [--configs N] [--keep DIR]
"""
import collections
import gzip
import io
import ipaddress
import json
import os
import random
import shutil
import sys
import traceback
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

DEFAULT_SEEDS = (1, 2, 3, 4, 5, 6)
DEFAULT_CONFIGS = 5          # mixed runs per seed, besides the oracle run
WINDOW = 86400               # --window 1d, the default
DAY0 = 1650000000 - 1650000000 % WINDOW

REPORTERS = ("google.com", "Enterprise Outlook", "AT&T <mail>", "mimecast.org")
DOMAINS = ("example.com", "sub.example.net", "xn--bcher-kva.example")
# (disposition, dkim, spf): few combinations, so that records share keys
VERDICTS = (("none", "pass", "pass"), ("none", "fail", "pass"), ("quarantine", "fail", "fail"),
            ("reject", "fail", "fail"))
FAIL_KINDS = ("bad-ip", "bad-count", "cut-xml", "trunc-gz", "zip-2nd-fails", "zip-mixed")
BAD_IPS = ("not-an-ip", "", "300.1.2.3", "2001:db8::g", "192.0.2")
BAD_COUNTS = ("12x", "1.5", "-3", "abc", "18446744073709551616")


# ---- what is generated --------------------------------------------------------

class Report:
    """A good report: its identity, range and records (ip_text, ip, count,
    disposition, dkim, spf, header_from), ip being the canonical form."""

    def __init__(self, org, report_id, domain, begin, end, records):
        self.org, self.report_id, self.domain = org, report_id, domain
        self.begin, self.end, self.records = begin, end, records
        self.input = None   # the name of the file it counts from

    def ident(self):
        return (self.org, self.report_id, self.domain, self.begin)

    def xml(self, bad_at=None, bad_record=""):
        """The report's XML; with bad_at, bad_record is put before record
        bad_at (0..len(records))."""
        body = [dptest.record_xml(r[0], r[2], self.domain, disposition=r[3], dkim=r[4],
                                  spf=r[5], header_from=r[6]) for r in self.records]
        if bad_at is not None:
            body.insert(bad_at, bad_record)
        return (dptest.report_head(self.org, self.report_id, self.domain, self.begin, self.end)
                + "".join(body) + dptest.REPORT_TAIL)

    def messages(self):
        return sum(r[2] for r in self.records)


class Mix:
    def __init__(self, seed):
        self.seed = seed
        self.rng = random.Random(seed)
        rng = self.rng
        # few IPs, reporters, domains and verdicts: records of different
        # reports share keys, so flushes split keys and merging matters
        v4 = [f"{net}.{rng.randrange(1, 255)}" for net in ("192.0.2", "198.51.100", "203.0.113")
              for _ in range(4)]
        v6 = [str(ipaddress.IPv6Address((0x20010db8 << 96) | rng.getrandbits(rng.choice((16, 48, 96)))))
              for _ in range(6)]
        self.ips = sorted(set(v4)) + sorted(set(v6))
        self.n_ids = 0
        self.good = []        # Report: the ones that count (incl. good zip members)
        self.files = []       # (kind, data bytes, suffix, [Report that counts in it])
        self.failing = []     # file names that must be rejected
        self.n_rejected = 0   # reports that fail (a zip may hold several)
        self.n_dups = 0

    def ip_text(self, ip):
        """ip (canonical) as a report may write it."""
        rng = self.rng
        a = ipaddress.ip_address(ip)
        x = rng.random()
        if a.version == 4 and x < 0.15:
            return f"::ffff:{ip}" if x < 0.1 else f"::FFFF:{ip}"
        if a.version == 6 and x < 0.2:
            return a.exploded.upper()
        return ip

    def n_records(self):
        rng = self.rng
        band = rng.random()
        if band < 0.03:
            return 0  # a report with no records touches no shard
        if band < 0.35:
            return rng.randint(1, 12)
        if band < 0.65:
            return rng.randint(13, 255)
        return rng.randint(256, 600)

    def count(self):
        x = self.rng.random()
        if x < 0.05:
            return 0
        if x < 0.1:
            return self.rng.randint(10 ** 6, 10 ** 9)
        return self.rng.randint(1, 1000)

    def date_range(self):
        rng = self.rng
        day = DAY0 + rng.randrange(0, 4) * WINDOW
        x = rng.random()
        if x < 0.4:                                   # one UTC day, as most receivers send
            return day, day + WINDOW - rng.choice((0, 1))
        if x < 0.7:                                   # inside one day
            b = day + rng.randrange(0, WINDOW - 1)
            return b, rng.randint(b, day + WINDOW - 1)
        if x < 0.9:                                   # over two to four days
            b = day + rng.randrange(0, WINDOW)
            return b, b + rng.randint(WINDOW, 3 * WINDOW)
        b = day + rng.randrange(0, WINDOW)            # a single second
        return b, b

    def new_report(self):
        rng = self.rng
        self.n_ids += 1
        if self.good and rng.random() < 0.4:
            # another report_id of a reporter, domain and range already
            # seen: the two reports share keys
            sib = rng.choice(self.good)
            org, domain, begin, end = sib.org, sib.domain, sib.begin, sib.end
        else:
            org, domain = rng.choice(REPORTERS), rng.choice(DOMAINS)
            begin, end = self.date_range()
        recs = []
        for _ in range(self.n_records()):
            ip = rng.choice(self.ips)
            disp, dkim, spf = VERDICTS[0] if rng.random() < 0.7 else rng.choice(VERDICTS)
            hf = domain if rng.random() < 0.85 else "mail." + domain
            recs.append((self.ip_text(ip), ip, self.count(), disp, dkim, spf, hf))
        return Report(org, f"mixed-{self.seed}-{self.n_ids}", domain, begin, end, recs)

    def failing_xml(self, kind, ident_of=None):
        """XML of a report that fails: bad-ip, bad-count or cut-xml."""
        rng = self.rng
        rep = self.new_report()
        if ident_of is not None:   # a failing copy of a good report's identity
            rep.org, rep.report_id, rep.domain, rep.begin = ident_of.ident()
            rep.end = ident_of.end
        pos = rng.randint(0, len(rep.records))
        if kind == "bad-ip":
            bad = dptest.record_xml(rng.choice(BAD_IPS), 0, rep.domain, raw_count="1")
            return rep.xml(pos, bad)
        if kind == "bad-count":
            bad = dptest.record_xml(rng.choice(self.ips), 0, rep.domain,
                                    raw_count=rng.choice(BAD_COUNTS))
            return rep.xml(pos, bad)
        x = rep.xml()
        last = x.rindex("</feedback>") + len("</feedback>") - 1  # cut before its '>'
        return x[:rng.randint(1, last)]

    def build(self):
        rng = self.rng
        n_inputs = rng.randint(20, 36)
        n_fail = rng.randint(6, 11)
        self.n_dups = rng.randint(1, 4)
        kinds = list(FAIL_KINDS) + [rng.choice(FAIL_KINDS) for _ in range(n_fail - len(FAIL_KINDS))]
        good_plain = []
        for _ in range(n_inputs - n_fail - self.n_dups):
            rep = self.new_report()
            self.good.append(rep)
            good_plain.append(rep)
            x = rep.xml().encode()
            if rng.random() < 0.2:
                self.files.append(("good", gzip.compress(x), ".xml.gz", [rep]))
            else:
                self.files.append(("good", x, ".xml", [rep]))
        for _ in range(self.n_dups):
            rep = rng.choice(good_plain)
            x = rep.xml().encode()
            if rng.random() < 0.5:
                self.files.append(("dup", gzip.compress(x), ".xml.gz", []))
            else:
                self.files.append(("dup", x, ".xml", []))
        for kind in kinds:
            ident_of = rng.choice(good_plain) if rng.random() < 0.25 else None
            if kind in ("bad-ip", "bad-count", "cut-xml"):
                self.files.append((kind, self.failing_xml(kind, ident_of).encode(), ".xml", []))
            elif kind == "trunc-gz":
                rep = self.new_report()
                gz = gzip.compress(rep.xml().encode())
                # keep the 10-byte header, lose at least the trailer and one
                # byte of deflate data
                self.files.append((kind, gz[:rng.randint(11, len(gz) - 9)], ".xml.gz", []))
            else:
                # zip-2nd-fails: a good member, then a failing one;
                # zip-mixed: 2-4 members, each good or failing, at least one
                # of each, so that a good member may follow a failing one
                # within the same input (every member is read)
                if kind == "zip-2nd-fails":
                    fails = [False, True]
                else:
                    fails = [rng.random() < 0.5 for _ in range(rng.randint(2, 4))]
                    fails[rng.randrange(len(fails))] = True
                    if all(fails):
                        fails[rng.randrange(len(fails))] = False
                buf, members = io.BytesIO(), []
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                    for m, fail in enumerate(fails):
                        if fail:
                            bad = self.failing_xml(rng.choice(("bad-ip", "bad-count", "cut-xml")),
                                                   ident_of)
                            z.writestr(f"{m + 1}-bad.xml", bad)
                            self.n_rejected += 1
                        else:
                            good = self.new_report()
                            self.good.append(good)
                            members.append(good)
                            z.writestr(f"{m + 1}-good.xml", good.xml())
                self.files.append((kind, buf.getvalue(), ".zip", members))
                continue
            self.n_rejected += 1
        rng.shuffle(self.files)

    def write(self, mixed_dir, good_dir):
        for i, (kind, data, suffix, reps) in enumerate(self.files):
            name = f"{i:03d}-{kind}{suffix}"
            for r in reps:
                r.input = name
            dptest.write(os.path.join(mixed_dir, name), data)
            if kind in FAIL_KINDS:
                self.failing.append(name)
        for i, rep in enumerate(self.good):
            dptest.write(os.path.join(good_dir, f"{i:03d}.xml"), rep.xml())


# ---- the Python oracle -------------------------------------------------------------

def split(begin, end, count, width=WINDOW):
    """(window_start, share) over the windows [begin, end) overlaps, or the
    second begin when end <= begin; share i = floor(count*C_i/L) -
    floor(count*C_(i-1)/L), C_i the overlap through window i."""
    length = end - begin if end > begin else 1
    stop = begin + length
    out, prev, overlap = [], 0, 0
    w0 = begin - begin % width
    while w0 < stop:
        overlap += min(stop, w0 + width) - max(begin, w0)
        cum = count * overlap // length
        out.append((w0, cum - prev))
        prev = cum
        w0 += width
    return out


def python_rollups(reports, width=WINDOW):
    """{dptest.rollup_key: rollup dict} for the reports that count, and the
    number of keys that have records in more than one input."""
    out, inputs = {}, collections.defaultdict(set)
    for rep in reports:
        for _text, ip, count, disp, dkim, spf, hf in rep.records:
            seen_any = False
            for w0, share in split(rep.begin, rep.end, count, width):
                # a window whose share rounds to 0 gets no rollup, unless the
                # record has no messages at all: then its first window does
                if share == 0 and (count != 0 or seen_any):
                    continue
                seen_any = True
                lo = max(rep.begin, w0)
                hi = max(lo, min(rep.end, w0 + width - 1))
                r = {"v": dptest.SCHEMA_VERSION, "window_start": w0, "window_end": w0 + width,
                     "reporter": rep.org, "policy_domain": rep.domain, "header_from": hf,
                     "source_ip": ip, "disposition": disp, "dkim": dkim, "spf": spf,
                     "override": None, "dkim_domain": hf, "dkim_selector": "s1",
                     "dkim_result": dkim, "spf_domain": hf, "spf_result": spf,
                     **dict.fromkeys(dptest.SOURCE_FIELDS),
                     "messages": share, "records": 1, "first_seen": lo, "last_seen": hi}
                k = dptest.rollup_key(r)
                inputs[k].add(rep.input)
                m = out.get(k)
                if m is None:
                    out[k] = r
                else:
                    m["messages"] += share
                    m["records"] += 1
                    m["first_seen"] = min(m["first_seen"], lo)
                    m["last_seen"] = max(m["last_seen"], hi)
    return out, sum(1 for v in inputs.values() if len(v) > 1)


# ---- runs and checks ----------------------------------------------------------------

def configs(rng, n):
    # one worker with the default batch; one worker flushing mid-run; then
    # anything
    out = [{"workers": 1, "shards": rng.choice((1, 2, 3, 5)), "batch": 256, "ring": 64,
            "max_keys": None},
           {"workers": 1, "shards": rng.choice((1, 2, 3, 5)), "batch": rng.choice((1, 2, 7, 256)),
            "ring": rng.choice((2, 64)), "max_keys": 3}]
    while len(out) < n:
        out.append({"workers": rng.choice((1, 2, 3)), "shards": rng.choice((1, 2, 3, 5)),
                    "batch": rng.choice((1, 2, 7, 256)), "ring": rng.choice((2, 64)),
                    "max_keys": 3 if rng.random() < 0.4 else None})
    return out


def opts_of(c):
    o = ["--workers", c["workers"], "--shards", c["shards"], "--batch-items", c["batch"],
         "--ring-slots", c["ring"]]
    if c["max_keys"]:
        o += ["--max-keys", c["max_keys"]]
    return o


def describe(c):
    return (f"w{c['workers']} s{c['shards']} b{c['batch']} r{c['ring']}"
            + (f" k{c['max_keys']}" if c["max_keys"] else ""))


def diff_rollups(got, want):
    return dptest.diff_multisets(sorted(json.dumps(v, sort_keys=True) for v in got.values()),
                                 sorted(json.dumps(v, sort_keys=True) for v in want.values()))


def strip_feed(rows):
    return sorted(json.dumps({k: v for k, v in x.items() if k not in ("input", "part")},
                             sort_keys=True) for x in rows)


def run_seed(t, dmarcpipe, seed, n_configs, root):
    mix = Mix(seed)
    mix.build()
    mixed_dir, good_dir = os.path.join(root, "mixed"), os.path.join(root, "good")
    mix.write(mixed_dir, good_dir)
    kinds = collections.Counter(f[0] for f in mix.files)
    n_records = sum(len(r.records) for r in mix.good)
    want_messages = sum(r.messages() for r in mix.good)
    want_rollups, shared_keys = python_rollups(mix.good)
    t.note(f"seed {seed}: {len(mix.files)} inputs in {mixed_dir} ({dict(sorted(kinds.items()))}); "
           f"{len(mix.good)} reports count, {n_records} records, {want_messages} messages, "
           f"{len(want_rollups)} keys ({shared_keys} from several inputs)")

    o = dptest.run(dmarcpipe, os.path.join(root, "out-oracle"), [good_dir],
                   "--workers", 1, "--shards", 1)
    tag = f"seed {seed} oracle (good reports alone, w1 s1)"
    t.eq(f"{tag}: exit status", o.rc, 0)
    t.eq(f"{tag}: accepted / rejected / duplicate",
         (o.summary.get("accepted"), o.summary.get("rejected"), o.summary.get("duplicates")),
         (len(mix.good), 0, 0))
    oracle = dptest.merge(o.rollups)
    t.eq(f"{tag}: one line per key", len(o.rollups), len(oracle))
    t.check(f"{tag}: rollups = Python's ({len(want_rollups)} keys)", oracle == want_rollups,
            diff_rollups(oracle, want_rollups))

    want_summary = {"inputs": len(mix.files), "inputs_rejected": len(mix.failing),
                    "accepted": len(mix.good), "rejected": mix.n_rejected,
                    "duplicates": mix.n_dups, "records": n_records, "messages": want_messages}
    for i, c in enumerate(configs(mix.rng, n_configs)):
        tag = f"seed {seed} run {i + 1} ({describe(c)})"
        r = dptest.run(dmarcpipe, os.path.join(root, f"out-{i + 1}"), [mixed_dir], *opts_of(c))
        if not t.check(f"{tag}: ran", "messages" in r.summary, r.describe()):
            continue
        t.eq(f"{tag}: exit status", r.rc, 1)
        t.eq(f"{tag}: summary", {k: r.summary.get(k) for k in want_summary}, want_summary)
        t.eq(f"{tag}: rollup messages = Python's sum", r.messages, want_messages)
        t.eq(f"{tag}: lines written = summary rollups", len(r.rollup_lines),
             r.summary.get("rollups"))
        got = dptest.merge(r.rollups)
        if c["max_keys"]:
            # with one worker every input's verdicts reach the shards in
            # batches of their own, so the shards flush between inputs, and
            # a key with records from two inputs lands on two lines
            split = f"{len(r.rollups)} lines for {len(got)} keys"
            if c["workers"] == 1 and shared_keys:
                t.check(f"{tag}: flushed early (some key on several lines: {split})",
                        len(r.rollups) > len(got))
            else:
                t.note(f"{tag}: {split}")
        t.check(f"{tag}: rollups merged by key = oracle's ({len(got)} vs {len(oracle)} keys)",
                got == oracle, diff_rollups(got, oracle))
        t.check(f"{tag}: reports feed = oracle's",
                strip_feed(r.reports) == strip_feed(o.reports),
                dptest.diff_multisets(strip_feed(r.reports), strip_feed(o.reports)))
        q = set(r.quarantined)
        t.eq(f"{tag}: quarantine holds exactly the failing inputs",
             sorted(n for n in q if not n.endswith(".reason")), sorted(mix.failing))
        t.eq(f"{tag}: every quarantined input has its .reason",
             sorted(n for n in mix.failing if n + ".reason" not in q), [])


def main(argv):
    args = list(argv[1:])
    seeds, n_configs, keep = DEFAULT_SEEDS, DEFAULT_CONFIGS, None
    try:
        for opt in ("--seeds", "--configs", "--keep"):
            if opt in args:
                i = args.index(opt)
                val = args[i + 1]
                del args[i:i + 2]
                if opt == "--seeds":
                    seeds = tuple(int(s) for s in val.split(",") if s)
                elif opt == "--configs":
                    n_configs = int(val)
                else:
                    keep = os.path.abspath(val)
    except (IndexError, ValueError):
        args = []
    if len(args) != 1 or not seeds or n_configs < 1:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe = os.path.abspath(args[0])
    me = os.path.abspath(__file__)
    t = dptest.Harness("test_mixed")
    t.note(f"seeds {','.join(map(str, seeds))}; rerun one with: {me} {dmarcpipe} --seeds N "
           "--keep DIR")
    with dptest.scratch("mixed") as tmp:
        for seed in seeds:
            root = os.path.join(keep or tmp, f"seed-{seed}")
            if keep and os.path.isdir(root):
                shutil.rmtree(root)  # a rerun starts afresh
            try:
                run_seed(t, dmarcpipe, seed, n_configs, root)
            except Exception:  # noqa: BLE001 -- report and go on with the next seed
                t.check(f"seed {seed}: ran to its end", False, traceback.format_exc())
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
