#!/usr/bin/env python3
"""test_enrich_cache_fault -- the enrichment cache (--enrich-cache, LMDB)
failing in the middle of a run costs the run nothing but the cache.

    test_enrich_cache_fault.py DMARCPIPE

Needs the fault-injection build (-DDP_FAULT=ON, common/dp_fault.c), a real
DNS server (tests/enrich/dns.py: dnsmasq on loopback, with PTR and forward
records for every source IP of the reports made here) and no state: a run
without --state makes no state commit, so every `commit` point of the run is
the cache's: the first when it is opened, the others its batches (every 256
answers, and the last at the end).  More than 256 source IPs make at least
three.  For every point, made to fail and to crash:
  * fail:  the run exits 0 with the plain run's totals and every source
           name (those looked up after the failure are kept in memory:
           --enrich-wait), and says once that the cache is off, with one
           line naming the cache and the step that failed;
  * crash: the process is killed at that commit, before it takes effect;
then a run without faults on the same cache opens it without a word and
gives the same names, asking the DNS (dnsmasq's own query log) for every
IP when nothing was committed before the point and for fewer when a batch
was, never for none: what was committed is reused and what was not is asked
again; a third run asks nothing.  A cache that cannot be opened at all (a
regular file, a folder below one) is one warning, and names from memory.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "aggregate"))
sys.path.insert(0, os.path.join(HERE, "..", "enrich"))
import dptest  # noqa: E402
import dns  # noqa: E402  (tests/enrich/dns.py: dnsmasq on loopback)

# Source IPs that all have a forward-confirmed name: dns.py's bulk ones and
# more added here (198.51.100.7 is its SERVFAIL zone), 320 in all.
EXTRA = [("host", "f%d.example.org" % i, "198.51.100.%d" % i) for i in range(10, 230)]
IPS = ["192.0.2.%d" % i for i in range(100, 200)] + [ip for _, _, ip in EXTRA]
CACHE_OFF = "the cache is off"


def make_reports(src):
    base = 1767225600  # 2026-01-01
    for i in range(3):
        recs = [{"ip": ip, "count": 1 + (k + i) % 5, "dkim": "pass" if (k + i) % 3 else "fail"}
                for k, ip in enumerate(IPS)]
        dptest.write(os.path.join(src, f"r{i}.xml"),
                     dptest.report_xml("receiver.example", f"cachefault-{i}", "example.com", base + i * 86400,
                                       base + (i + 1) * 86400 - 1, recs))


class Runs:
    """`dmarcpipe run` over the reports with the cache CACHE, and what the
    DNS server was asked meanwhile."""

    def __init__(self, dp, work, src, srv):
        self.dp, self.work, self.src, self.srv, self.n = dp, work, src, srv, 0

    def logged(self):
        """Until dnsmasq has logged every query sent to it so far (those of a
        process killed with lookups in flight too): a query of ours, sent
        after them to the same socket, is answered and then logged."""
        n = self.srv.queries("test")
        dns._wait_udp(self.srv.info["port"], self.srv.procs[-1], "dnsmasq")  # asks for "test"
        end = time.monotonic() + 10
        while self.srv.queries("test") <= n and time.monotonic() < end:
            time.sleep(0.01)

    def asked(self, start):
        """The source IPs asked for since START (an offset in dnsmasq's log),
        and the PTR queries: a busy machine may have c-ares send a query
        again after its first try's 0.7 s, which asks no other IP."""
        part = os.path.join(self.work, "dnsmasq-part.log")
        with open(self.srv.log, "rb") as f, open(part, "wb") as out:
            f.seek(start)
            out.write(f.read())
        view = dns.Server(self.work, dict(self.srv.info, log=part))
        return sum(1 for ip in IPS if view.queries(ip, "PTR")), view.queries(qtype="PTR")

    def __call__(self, cache, fault=None):
        self.n += 1
        counts = os.path.join(self.work, f"counts-{self.n}")
        env = {"DP_FAULT_COUNTS": counts}
        if fault:
            env["DP_FAULT"] = fault
        self.logged()
        start = os.path.getsize(self.srv.log)
        r = dptest.run(self.dp, os.path.join(self.work, f"o{self.n}"), [self.src], "--log-format", "json",
                       "--resolver", self.srv.addr, "--enrich-wait", 10, "--enrich-cache", cache, env=env)
        self.logged()
        r.asked, r.queries = self.asked(start)
        r.commits = int(dict(l.split() for l in open(counts)).get("commit", 0)) if os.path.exists(counts) else 0
        r.warnings = []
        for line in r.stderr.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("level") == "warn":
                r.warnings.append(ev.get("msg", ""))
        return r


def names(r):
    return {x["source_ip"]: tuple(x[f] for f in dptest.SOURCE_FIELDS) for x in r.rollups}


def totals(r):
    return {k: (m["messages"], m["records"]) for k, m in dptest.merge(r.rollups).items()}


def check_cache_off(t, label, r, cache, step):
    """One word that the cache is off, one line naming the cache and the step
    that failed, and no other warning."""
    off = [w for w in r.warnings if CACHE_OFF in w]
    why = [w for w in r.warnings if cache in w]
    t.eq(f"{label}: one warning that the cache is off", len(off), 1)
    t.check(f"{label}: one line names the cache and its {step}",
            len(why) == 1 and f"the enrichment cache: {step}" in why[0], r.warnings)
    t.eq(f"{label}: no other warning", len(r.warnings), len(off) + len(why))


def check_like_truth(t, label, r, truth):
    t.check(f"{label}: exit 0", r.rc == 0, r.describe())
    t.eq(f"{label}: the totals of the plain run", totals(r), totals(truth))
    t.eq(f"{label}: every source name", names(r), names(truth))


def fault_point(t, runs, truth, n, action):
    label = f"commit:{n}:{action}"
    cache = os.path.join(runs.work, f"cache-{n}-{action}")
    r1 = runs(cache, label)
    if r1.commits < n:
        # The split into batches follows the clock (a batch also ends after
        # a second): a slow machine may make fewer commits than the count.
        t.note(f"{label}: not reached ({r1.commits} commits this time)")
        return
    if action == "crash":
        t.eq(f"{label}: killed at the commit", r1.rc, -9)
    else:
        check_like_truth(t, label, r1, truth)
        check_cache_off(t, label, r1, cache, "open" if n == 1 else "commit")
    r2 = runs(cache)
    check_like_truth(t, f"{label}, then a run on the same cache", r2, truth)
    t.eq(f"{label}, then a run on the same cache: no warning (the cache opens)", r2.warnings, [])
    if n <= 2:
        t.eq(f"{label}, then a run on the same cache: every IP asked (nothing was committed)", r2.asked, len(IPS))
    else:
        t.check(f"{label}, then a run on the same cache: the batches committed are reused, the failed one "
                f"asked again ({r2.asked} of {len(IPS)} asked)", 0 < r2.asked < len(IPS), r2.asked)
    r3 = runs(cache)
    check_like_truth(t, f"{label}, then a third run", r3, truth)
    t.eq(f"{label}, then a third run: no query (all in the cache)", r3.queries, 0)


def unopenable(t, runs, truth):
    """A cache that cannot be opened at start: memory only, one warning."""
    blocker = os.path.join(runs.work, "a-regular-file")
    with open(blocker, "w") as f:
        f.write("not a cache\n")
    for what, cache, step in (("a regular file", blocker, "open"),
                              ("a folder below a regular file", os.path.join(blocker, "cache"),
                               "cannot make the folder")):
        r = runs(cache)
        label = f"--enrich-cache is {what}"
        check_like_truth(t, label, r, truth)
        check_cache_off(t, label, r, cache, step)
        t.eq(f"{label}: every IP asked", r.asked, len(IPS))
    t.eq("the regular file is left as it was", open(blocker).read(), "not a cache\n")


def suite(t, dp, work, srv):
    src = os.path.join(work, "in")
    make_reports(src)
    runs = Runs(dp, work, src, srv)
    truth = runs(os.path.join(work, "cache-plain"))
    t.check("the plain run: exit 0", truth.rc == 0, truth.describe())
    t.eq("the plain run: no warning", truth.warnings, [])
    t.check("the plain run: every source IP has its name",
            sorted(names(truth)) == sorted(IPS) and all(v[0] for v in names(truth).values()),
            sorted(ip for ip, v in names(truth).items() if not v[0])[:5])
    t.eq("the plain run: every IP asked", truth.asked, len(IPS))
    points = truth.commits
    t.check(f"the plain run: the cache's open, a batch and the last ({points} commits)", points >= 3, points)
    if t.failed:
        return
    for n in range(1, points + 1):
        for action in ("fail", "crash"):
            fault_point(t, runs, truth, n, action)
    unopenable(t, runs, truth)


def main():
    dp = os.path.abspath(sys.argv[1])
    t = dptest.Harness("fault_enrich_cache")
    dns.RECORDS.extend(EXTRA)
    with tempfile.TemporaryDirectory(prefix="dp-fault-enrich-") as work:
        srv = dns.start(os.path.join(work, "dns"))
        try:
            suite(t, dp, work, srv)
        except subprocess.TimeoutExpired as e:
            t.check("no run hung", False, str(e))
        finally:
            srv.stop()
    t.finish()


if __name__ == "__main__":
    main()
