#!/usr/bin/env python3
"""test_dkim_pick — which DKIM result a rollup carries.

The rollup key takes dkim_domain, dkim_selector and dkim_result from the
first DKIM result whose domain is aligned with header_from in relaxed mode
(the same organisational domain, by the Public Suffix List), or else from
the first DKIM result.  Each record below has its own source_ip, so its
rollup shows the pick, told apart by the selector:
  * hand-made cases: a subdomain under a two-label public suffix (co.uk),
    case differences, look-alikes that are not aligned (bar.co.uk against
    foo.co.uk, foo.co.uk.evil.net), an aligned result that failed, a name
    with no registrable domain, no DKIM result at all;
  * 600 generated records over 200 DKIM domains, more than the workers'
    cache of organisational domains holds, so entries are evicted and
    reused; the expected pick is worked out here for .com/.net/.org (two
    labels) and .co.uk (three);
with one worker and with two.

usage: test_dkim_pick.py DMARCPIPE
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402

DAY0 = 1600000000 - 1600000000 % 86400


def record(ip, header_from, dkims):
    auth = "".join(
        f"<dkim><domain>{dptest._esc(d)}</domain><selector>{dptest._esc(s)}</selector>"
        f"<result>{r}</result></dkim>" for d, s, r in dkims)
    return (
        "  <record>\n"
        f"    <row><source_ip>{ip}</source_ip><count>1</count>\n"
        "      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
        "<spf>pass</spf></policy_evaluated></row>\n"
        f"    <identifiers><header_from>{dptest._esc(header_from)}</header_from></identifiers>\n"
        f"    <auth_results>{auth}<spf><domain>{dptest._esc(header_from)}</domain>"
        "<result>pass</result></spf></auth_results>\n"
        "  </record>\n")


# (header_from, DKIM results (domain, selector, result), selector expected)
HAND = [
    ("example.co.uk", [("other.net", "h1a", "pass"), ("mail.example.co.uk", "h1b", "pass")], "h1b"),
    ("Example.COM", [("x.net", "h2a", "fail"), ("SUB.example.com", "h2b", "pass")], "h2b"),
    ("foo.co.uk", [("bar.co.uk", "h3a", "pass"), ("foo.co.uk.evil.net", "h3b", "pass")], "h3a"),
    ("a.example.org", [("z.net", "h4a", "pass"), ("b.example.org", "h4b", "fail")], "h4b"),
    ("example.net", [("example.net", "h5a", "pass"), ("example.net", "h5b", "pass")], "h5a"),
    ("localhost", [("x.net", "h6a", "pass"), ("sub.localhost", "h6b", "pass")], "h6a"),
    ("localhost", [("x.net", "h7a", "pass"), ("LOCALHOST", "h7b", "pass")], "h7b"),
    ("example.com", [], None),
]


def org(domain):
    labels = domain.lower().split(".")
    n = 3 if domain.lower().endswith(".co.uk") else 2
    return ".".join(labels[-n:])


def generated(rng, n):
    """n records over 200 DKIM domains and 40 header_from domains."""
    bases = [f"d{i}.{tld}" for i, tld in zip(range(40), ["com", "net", "org", "co.uk"] * 10)]
    dkim_domains = [f"h{i}.{bases[i % 40]}" for i in range(200)]
    out = []
    for k in range(n):
        hf = rng.choice(bases)
        dk = [(rng.choice(dkim_domains), f"g{k}s{j}", rng.choice(["pass", "fail"]))
              for j in range(rng.randint(1, 4))]
        if rng.random() < 0.3:  # make one of them aligned, not necessarily the first
            j = rng.randrange(len(dk))
            dk[j] = (f"mx{rng.randint(0, 9)}.{hf}", dk[j][1], dk[j][2])
        want = next((s for d, s, _ in dk if org(d) == org(hf)), dk[0][1])
        out.append((hf, dk, want))
    return out


def main():
    dmarcpipe = sys.argv[1]
    t = dptest.Harness("dkim_pick")
    keep = dptest.scratch("dkim-pick")
    work = keep.name
    cases = HAND + generated(random.Random(7), 600)
    body, want = [], {}
    for i, (hf, dk, sel) in enumerate(cases):
        ip = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        body.append(record(ip, hf, dk))
        want[ip] = sel
    xml = (dptest.report_head("pick.example", "pick-1", "example.com", DAY0, DAY0 + 86399)
           + "".join(body) + dptest.REPORT_TAIL)
    src = dptest.write(os.path.join(work, "in", "pick.xml"), xml)
    # a second report over the same records, so two workers both fill caches
    dptest.write(os.path.join(work, "in", "pick2.xml"), xml.replace("pick-1", "pick-2"))

    for workers in (1, 2):
        r = dptest.run(dmarcpipe, os.path.join(work, f"w{workers}"), [os.path.dirname(src)],
                       "--workers", workers, "--shards", 2)
        t.eq(f"w{workers}: exit status", r.rc, 0)
        got = {}
        for row in r.rollups:
            got.setdefault(row["source_ip"], set()).add(row["dkim_selector"])
        t.eq(f"w{workers}: one rollup per record", len(r.rollups), len(cases))
        for i, (hf, dk, sel) in enumerate(HAND):
            ip = f"10.0.0.{i}"
            t.eq(f"w{workers}: header_from {hf}, DKIM {[d for d, _, _ in dk]}", got.get(ip), {sel})
        wrong = [(ip, got.get(ip), {sel}) for ip, sel in want.items() if got.get(ip) != {sel}]
        t.check(f"w{workers}: all {len(want)} picks", not wrong, f"{len(wrong)} wrong, first {wrong[:3]}")
    t.finish()


if __name__ == "__main__":
    main()
