#!/usr/bin/env python3
"""test_enrich_run — `dmarcpipe run --enrich` end to end, against a real DNS
server on loopback (dnsmasq) and MaxMind DB files built here (PyPI
mmdb-writer).

    test_enrich_run.py DMARCPIPE

  * the test set: reports whose source IPs dnsmasq answers for (forward-
    confirmed PTRs of a known ESP and of Microsoft 365, an IPv6 one, a PTR
    whose name does not point back, NXDOMAIN, SERVFAIL): the rollups carry
    the right source_ptr, source_base_domain, source_asn, source_as_org,
    source_country, source_service and source_service_type (--enrich-wait
    10, so the answers are in before the last flush), null where nothing
    is known, and the CSV sink the same columns;
  * a second run on new reports of the same IPs, with the same
    --enrich-cache: the same fields, and dnsmasq receives no query;
  * a resolver that does not answer: the run takes about as long as one
    without enrichment, its fields are null, and one warning line names
    the resolver;
  * the totals (every key's messages) are the same with and without
    enrichment.

The server and the MMDB files are tests/enrich/dns.py's (mmdb-writer is
pip-installed into ~/.cache/dmarcpipe/enrich-venv, from PyPI, the first
time).
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "aggregate"))
sys.path.insert(0, HERE)
import dptest  # noqa: E402

import dns  # noqa: E402  (tests/enrich/dns.py: dnsmasq on loopback, the MMDB files)

# The test set, from dns.py's records and MMDB files.
ESP4 = "192.0.2.2"          # o1.ptr1234.sendgrid.net, confirmed
M365 = "192.0.2.4"          # mail-eopbgr.outbound.protection.outlook.com, confirmed
V6 = "2001:db8::25"         # mx.example.net, confirmed by AAAA
UNCONFIRMED = "192.0.2.5"   # spoof.sendgrid.net: its A is another IP
NXDOMAIN = "192.0.2.7"
SERVFAIL = "198.51.100.7"
IPS = [ESP4, M365, V6, UNCONFIRMED, NXDOMAIN, SERVFAIL]

# what each rollup must say: ptr, base_domain, asn, as_org, country, service, service_type
WANT = {
    ESP4: ("o1.ptr1234.sendgrid.net", "sendgrid.net", 64500, "Example Net AS", "NL", "SendGrid", "esp"),
    M365: ("mail-eopbgr.outbound.protection.outlook.com", "outlook.com", 64500, "Example Net AS", "NL",
           "Microsoft 365", "hosted_mail"),
    V6: ("mx.example.net", "example.net", 64501, "Example Six", "DE", None, None),
    UNCONFIRMED: (None, None, 64500, "Example Net AS", "NL", None, None),
    NXDOMAIN: (None, None, 64500, "Example Net AS", "NL", None, None),
    SERVFAIL: (None, None, None, None, "SE", None, None),
}
FIELDS = dptest.SOURCE_FIELDS


def reports(dirpath, tag, n_reports=3):
    """n_reports reports over the test set, each IP in each with a few
    outcomes."""
    base = 1767225600  # 2026-01-01
    for i in range(n_reports):
        recs = []
        for k, ip in enumerate(IPS):
            recs.append({"ip": ip, "count": 10 + k + i, "dkim": "pass" if k % 2 else "fail", "spf": "fail"})
        xml = dptest.report_xml("receiver.example", f"{tag}-{i}", "example.com", base + i * 86400,
                                base + (i + 1) * 86400 - 1, recs)
        dptest.write(os.path.join(dirpath, f"{tag}-{i}.xml"), xml)
    return dirpath


def run(bin_, outdir, src, *opts, csv_too=False):
    os.makedirs(outdir, exist_ok=True)
    args = [bin_, "run", "--log-format", "plain", "--workers", "2", "--shards", "3",
            "--sink", "file:" + os.path.join(outdir, "r.ndjson")]
    if csv_too:
        args += ["--sink", "file:" + os.path.join(outdir, "r.csv")]
    args += ["--quarantine", os.path.join(outdir, "q")] + [str(o) for o in opts] + [src]
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    secs = time.monotonic() - t0
    rows = []
    path = os.path.join(outdir, "r.ndjson")
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return p, rows, secs


def totals(rows):
    out = {}
    for r in rows:
        k = dptest.rollup_key(r)
        out[k] = out.get(k, 0) + r["messages"]
    return out


def check_fields(t, tag, rows):
    t.check(f"{tag}: rollups for every IP", {r["source_ip"] for r in rows} == set(IPS),
            sorted({r["source_ip"] for r in rows}))
    for r in rows:
        got = tuple(r.get(f, "(absent)") for f in FIELDS)
        want = WANT.get(r["source_ip"])
        if not t.eq(f"{tag}: {r['source_ip']} {r['window_start']} {r['dkim']}", got, want):
            return


def main():
    bin_ = os.path.abspath(sys.argv[1])
    t = dptest.Harness("enrich_run")
    work = tempfile.mkdtemp(prefix="enrich-run-")
    srv = None
    try:
        asn_db, cc_db = dns.mmdb(work)
        srv = dns.start(work)
        geo = ["--geoip-asn", asn_db, "--geoip-country", cc_db]
        resolver = srv.addr
        cache = os.path.join(work, "cache")
        first = reports(os.path.join(work, "in1"), "first")

        # 1. the test set, answered: every field right, in NDJSON and CSV
        p, rows1, _ = run(bin_, os.path.join(work, "o1"), first, "--resolver", resolver, "--enrich-cache", cache,
                          "--enrich-wait", 10, *geo, csv_too=True)
        t.check("first run exit 0", p.returncode == 0, p.stderr[-2000:])
        t.check("rollups are v2", rows1 and all(r["v"] == 2 for r in rows1), rows1[:1])
        check_fields(t, "first run", rows1)
        asked = srv.queries()
        t.check("the first run asked the DNS", asked > 0, f"{asked} queries")
        with open(os.path.join(work, "o1", "r.csv"), newline="") as f:
            crow = list(csv.DictReader(f))
        for r in crow:
            want = WANT[r["source_ip"]]
            got = tuple(r[f] for f in FIELDS)
            if not t.eq(f"CSV {r['source_ip']}", got, tuple("" if w is None else str(w) for w in want)):
                break

        # 2. new reports of the same IPs, the same cache: no query at all
        second = reports(os.path.join(work, "in2"), "second")
        p, rows2, _ = run(bin_, os.path.join(work, "o2"), second, "--resolver", resolver, "--enrich-cache", cache,
                          "--enrich-wait", 10, *geo)
        t.check("second run exit 0", p.returncode == 0, p.stderr[-2000:])
        check_fields(t, "second run (cache)", rows2)
        t.eq("the second run asked the DNS nothing (the cache)", srv.queries() - asked, 0)

        # 3. without enrichment: the same totals, every field null
        p, plain, secs_off = run(bin_, os.path.join(work, "o3"), first)
        t.check("run without enrichment exit 0", p.returncode == 0, p.stderr[-2000:])
        t.check("without enrichment every source field is null",
                all(r[f] is None for r in plain for f in FIELDS), plain[:1])
        t.eq("totals with and without enrichment", totals(rows1), totals(plain))

        # 4. a resolver that never answers: about the same time, nulls, one warning naming it
        dead_addr = srv.silent_addr  # receives the queries, never answers
        p, rows4, secs_dead = run(bin_, os.path.join(work, "o4"), first, "--resolver", dead_addr,
                                  "--enrich-cache", os.path.join(work, "cache-dead"))
        t.check("dead resolver: exit 0", p.returncode == 0, p.stderr[-2000:])
        t.check(f"dead resolver: about as fast as without enrichment ({secs_dead:.2f} s vs {secs_off:.2f} s)",
                secs_dead < secs_off + 3.0, f"{secs_dead:.2f} s")
        t.check("dead resolver: every source field null", all(r[f] is None for r in rows4 for f in FIELDS),
                rows4[:1])
        t.eq("dead resolver: the same totals", totals(rows4), totals(plain))
        warn = [line for line in p.stderr.splitlines() if dead_addr in line]
        t.eq("dead resolver: one line names it", len(warn), 1)

        # 6. two IPs held in memory for six: a new one takes the place of
        # one not met for a while; a rollup carries its own IP's answer or
        # nulls where the name was forgotten, never another IP's
        p, rows6, _ = run(bin_, os.path.join(work, "o6"), first, "--resolver", resolver, "--enrich-max-ips", 2,
                          "--enrich-wait", 10, *geo)
        t.check("--enrich-max-ips 2: exit 0", p.returncode == 0, p.stderr[-2000:])
        t.eq("--enrich-max-ips 2: the same totals", totals(rows6), totals(plain))
        for r in rows6:
            got = tuple(r.get(f, "(absent)") for f in FIELDS)
            want = WANT[r["source_ip"]]
            dns_fields = (0, 1, 5, 6)
            ok = got[2:5] == want[2:5] and (all(got[i] == want[i] for i in dns_fields)
                                            or all(got[i] is None for i in dns_fields))
            if not t.check(f"--enrich-max-ips 2: {r['source_ip']} has its own fields or nulls", ok,
                           f"got {got}, want {want}"):
                break
        said = [line for line in p.stderr.splitlines() if "forgotten to make room" in line]
        t.check("--enrich-max-ips 2: the summary counts the IPs forgotten",
                len(said) == 1 and " 0 forgotten" not in said[0], p.stderr[-1500:])
        p, _, _ = run(bin_, os.path.join(work, "o6b"), first, "--resolver", resolver, "--enrich-max-ips", 0)
        t.eq("--enrich-max-ips 0: exit 2", p.returncode, 2)

        # 5. an MMDB file that cannot be read: exit 2, one line naming it
        missing = os.path.join(work, "nope.mmdb")
        p, _, _ = run(bin_, os.path.join(work, "o5"), first, "--geoip-asn", missing)
        t.eq("unreadable --geoip-asn: exit 2", p.returncode, 2)
        t.check("unreadable --geoip-asn: one line naming it",
                len([line for line in p.stderr.splitlines() if missing in line]) == 1, p.stderr[-1000:])
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
