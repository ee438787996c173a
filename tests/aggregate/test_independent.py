#!/usr/bin/env python3
"""test_independent — rollup sums against a computation that does not use `run`.

1. The corpus: expected.py derives, from `dmarcpipe parse` run per input in
   input order with first-copy-wins dedup, the total messages and the
   messages per (source_ip, policy_domain) and per (reporter,
   policy_domain).  `dmarcpipe run` (4 workers, 3 shards; windows 1d and 1h)
   must give the same sums over its rollup lines, and its reports feed must
   name, for each identity, the same copy (input and part) as the one that
   counts in input order.

2. A crafted report over two days, [2018-10-01T22:00Z, +48 h), with two
   records of 10 and 7 messages: the per-window messages must equal the
   hand-computed cumulative-rounding shares, for 1d and 1h windows:
   window i gets floor(c*C_i/L) - floor(c*C_(i-1)/L).

usage: test_independent.py DMARCPIPE CORPUS_DIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dptest  # noqa: E402
import expected  # noqa: E402

DAY, HOUR = 86400, 3600
BEGIN = 1538431200          # 2018-10-01T22:00:00Z
END = BEGIN + 2 * DAY       # 2018-10-03T22:00:00Z, exclusive
OCT1, OCT2, OCT3 = 1538352000, 1538438400, 1538524800


def shares(count, begin, end, width):
    """Cumulative rounding, computed straight from the definition."""
    length = end - begin
    out, cum, prev = {}, 0, 0
    w = begin - begin % width
    while w < end:
        cum += min(end, w + width) - max(begin, w)
        cur = count * cum // length
        out[w] = cur - prev
        prev = cur
        w += width
    return out


def test_corpus(t, dmarcpipe, corpus, tmp):
    exp = expected.compute(dmarcpipe, [corpus])
    t.check("expected: the corpus has reports", len(exp["reports"]) > 50,
            f"{len(exp['reports'])} reports")
    if exp["recordless"]:
        t.note(f"reports without records (identity unknown to expected.py): {exp['recordless']}")
    want_ident = {tuple(r["identity"]): (r["input"], r["part"], r["messages"])
                  for r in exp["reports"]}
    for window in ("1d", "1h"):
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"corpus-{window}"), [corpus],
                       "--workers", 4, "--shards", 3, "--window", window)
        tag = f"corpus {window}"
        t.check(f"{tag}: run exits 0 or 1", r.rc in (0, 1), r.describe())
        t.check(f"{tag}: no sanitizer report", r.sanitizer_report() is None, r.sanitizer_report())
        t.eq(f"{tag}: total messages over rollups", r.messages, exp["total_messages"])
        t.eq(f"{tag}: summary messages", r.summary.get("messages"), exp["total_messages"])
        t.eq(f"{tag}: reports feed messages", r.report_messages, exp["total_messages"])
        got = dptest.sums_by(r.rollups, ("source_ip", "policy_domain"))
        want = exp["by_ip_domain"]
        bad = sorted((k for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0)),
                     key=lambda k: tuple(str(x) for x in k))
        t.check(f"{tag}: messages per (source_ip, policy_domain), {len(want)} groups", not bad,
                "; ".join(f"{k}: run {got.get(k, 0)} expected {want.get(k, 0)}" for k in bad[:8]))
        got = dptest.sums_by(r.rollups, ("reporter", "policy_domain"))
        want = exp["by_reporter_domain"]
        bad = sorted((k for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0)),
                     key=lambda k: tuple(str(x) for x in k))
        t.check(f"{tag}: messages per (reporter, policy_domain), {len(want)} groups", not bad,
                "; ".join(f"{k}: run {got.get(k, 0)} expected {want.get(k, 0)}" for k in bad[:8]))
        # which copy counted: the first in input order, for every identity
        feed = {}
        for rep in r.reports:
            if rep["records"] == 0:
                continue
            ident = (rep["org_name"], rep["report_id"], rep["policy_domain"], rep["begin"])
            feed.setdefault(ident, []).append((rep["input"], rep["part"], rep["messages"]))
        multi = {k: v for k, v in feed.items() if len(v) > 1}
        t.check(f"{tag}: each identity in the reports feed once", not multi, dptest.short(multi))
        got_ident = {k: v[0] for k, v in feed.items()}
        bad = [k for k in set(got_ident) | set(want_ident) if got_ident.get(k) != want_ident.get(k)]
        t.check(f"{tag}: the copy that counts is the first in input order "
                f"({len(want_ident)} identities)", not bad,
                "; ".join(f"{k}: run {got_ident.get(k)} expected {want_ident.get(k)}"
                          for k in bad[:4]))


def test_multiday(t, dmarcpipe, tmp):
    d = os.path.join(tmp, "multiday-in")
    ip_a, ip_b = "192.0.2.10", "192.0.2.20"
    dptest.write(os.path.join(d, "two-days.xml"),
                 dptest.report_xml("multiday.example", "md-1", "example.com", BEGIN, END,
                                   [(ip_a, 10), (ip_b, 7)]))
    # By hand.  1d: the range overlaps Oct 1 by 2 h, Oct 2 by 24 h, Oct 3 by 22 h
    # of L = 48 h; cumulative 2, 26, 48 h.
    #   10: floor(10*2/48)=0, floor(10*26/48)=5, 10  -> 0, 5, 5
    #    7: floor(7*2/48)=0,  floor(7*26/48)=3,  7   -> 0, 3, 4
    hand_1d = {ip_a: {OCT1: 0, OCT2: 5, OCT3: 5}, ip_b: {OCT1: 0, OCT2: 3, OCT3: 4}}
    # 1h: 48 one-hour windows from BEGIN; window k (0-based) gets a message
    # when floor(c*(k+1)/48) steps up, i.e. k+1 = ceil(48*j/c), j = 1..c.
    #   10: k+1 = 5,10,15,20,24,29,34,39,44,48   7: k+1 = 7,14,21,28,35,42,48
    hand_1h = {ip_a: {BEGIN + (k - 1) * HOUR: 1 for k in (5, 10, 15, 20, 24, 29, 34, 39, 44, 48)},
               ip_b: {BEGIN + (k - 1) * HOUR: 1 for k in (7, 14, 21, 28, 35, 42, 48)}}
    for ip, c in ((ip_a, 10), (ip_b, 7)):
        t.eq(f"multiday: hand-computed 1d shares of {c} match the definition",
             hand_1d[ip], shares(c, BEGIN, END, DAY))
        t.eq(f"multiday: hand-computed 1h shares of {c} match the definition",
             hand_1h[ip], {w: s for w, s in shares(c, BEGIN, END, HOUR).items() if s})

    for window, width, hand in (("1d", DAY, hand_1d), ("1h", HOUR, hand_1h)):
        r = dptest.run(dmarcpipe, os.path.join(tmp, f"multiday-{window}"), [d],
                       "--workers", 2, "--shards", 2, "--window", window)
        tag = f"multiday {window}"
        t.eq(f"{tag}: exit status", r.rc, 0)
        t.eq(f"{tag}: total messages", r.messages, 17)
        for ip in (ip_a, ip_b):
            got = {}
            for x in r.rollups:
                if x["source_ip"] == ip:
                    got[x["window_start"]] = got.get(x["window_start"], 0) + x["messages"]
            want = {w: s for w, s in hand[ip].items() if s}
            # a window whose share rounds to 0 may be listed with 0 messages
            t.eq(f"{tag}: {ip} per-window messages", {w: s for w, s in got.items() if s}, want)
            t.check(f"{tag}: {ip} windows are aligned and inside the range",
                    all(w % width == 0 and w + width > BEGIN and w < END for w in got), got)
            for x in r.rollups:
                if x["source_ip"] != ip:
                    continue
                w0 = x["window_start"]
                # the range [begin, end] (end inclusive here) clipped to the window
                fs, ls = max(BEGIN, w0), min(END, w0 + width - 1)
                ok = (x["window_end"] == w0 + width and x["first_seen"] == fs
                      and x["last_seen"] == ls and x["records"] == 1)
                if not ok:
                    t.check(f"{tag}: {ip} window {w0} span", False,
                            f"got {x}, want first_seen {fs} last_seen {ls} records 1")
                    break
            else:
                t.check(f"{tag}: {ip} first_seen/last_seen clipped to range and window", True)

    exp = expected.compute(dmarcpipe, [d])
    t.eq("multiday: expected.py total", exp["total_messages"], 17)
    t.eq("multiday: expected.py per (ip, domain)", exp["by_ip_domain"],
         {(ip_a, "example.com"): 10, (ip_b, "example.com"): 7})


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dmarcpipe, corpus = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    t = dptest.Harness("test_independent")
    with dptest.scratch("independent") as tmp:
        t.run(test_multiday, t, dmarcpipe, tmp)
        t.run(test_corpus, t, dmarcpipe, corpus, tmp)
    t.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
