#!/usr/bin/env python3
"""Write DMARC aggregate reports (XML) with planted senders of every class.

`dmarcpipe report` and the warehouse views in deploy/warehouse/ must give
the same classes, sources and verdicts.  Agreement is only worth checking
on data that reaches every branch, so these reports plant, per policy
domain, senders of each class (insight/README.md, "Definitions") and the
cases that separate careless definitions from right ones:

  * every class, reached by every route: DKIM or SPF aligned; an aligned
    record that also carries a `forwarded` override (aligned wins); each
    forwarding override type, alone and next to another type; DKIM or SPF
    passing for another domain; a record whose first DKIM result passes
    for an ESP but whose aligned one fails (the rollup keeps the aligned
    one: unauthenticated); overrides that are not forwarding; no DKIM at all;
  * sources whose messages tie between two classes (the tie order);
  * every verdict and next step: p=none, p=quarantine, p=reject, pct=50
    (RFC 7489), testing=y (RFC 9990), too few days, too few messages, no
    legitimate mail, aligned/legitimate exactly at 0.98;
  * domain names in mixed case and with a trailing dot, and reports that
    name no policy domain (their rollups count under header_from);
  * a policy that changes within the period, a report after the period's
    end (it must not count), two reports with the same begin and
    different policies (the sha256 breaks the tie), a domain seen only in
    the previous period, and a report whose one record counts 0
    messages (a rollup of 0 messages: its day is not a day with reports,
    its source is still listed);
  * reporters whose reports run from noon to noon, so that their counts
    are split over two daily windows, some across the period's edges.

Deterministic for a given --seed.  Standard library only.

    gen_reports.py OUTDIR [--seed N]

Prints the period the data is laid out around and what it wrote:
"from=YYYY-MM-DD to=YYYY-MM-DD short_from=YYYY-MM-DD reports=N"
(short_from..to is a 7-day period at its end).
"""
import argparse
import datetime
import os
import random
import sys

DAY = 86400
EPOCH = datetime.date(1970, 1, 1)


def day_of(s):
    return (datetime.date.fromisoformat(s) - EPOCH).days


def date_of(day):
    return (EPOCH + datetime.timedelta(days=day)).isoformat()


# The period the layout is built around (30 days), its previous period
# (the 30 days before) and a short period at its end.
FROM, TO = day_of("2026-03-02"), day_of("2026-03-31")
SHORT_FROM = TO - 6
PREV_FROM = FROM - 30
FIRST, LAST = PREV_FROM - 10, TO + 4      # some data outside both periods

# Reporters: name, the fraction of a sender's daily mail each one sees,
# whether its reports run noon to noon, and which days it reports.
REPORTERS = [
    ("google.com", 0.6, False, lambda d: True),
    ("Yahoo", 0.25, False, lambda d: d % 2 == 0),
    ("Enterprise Outlook", 0.15, True, lambda d: d % 3 != 1),
]


def record(kind, domain, ip, count, header_from=None):
    """One <record>: the policy_evaluated and auth_results of a kind."""
    esp = "esp-mailer.net"
    pe_dkim, pe_spf, reasons = "fail", "fail", []
    dkims, spfs = [], []
    if kind == "aligned_dkim":
        pe_dkim = "pass"
        dkims = [(domain, "s1", "pass")]
        spfs = [("bounce." + esp, "fail")]
    elif kind == "aligned_spf":
        pe_spf = "pass"
        dkims = [(domain, "s1", "fail")]
        spfs = [(domain, "pass")]
    elif kind == "aligned_override":           # DMARC passed: the override does not matter
        pe_dkim, pe_spf = "pass", "pass"
        reasons = ["forwarded"]
        dkims = [(domain, "s1", "pass")]
        spfs = [(domain, "pass")]
    elif kind == "fwd":
        reasons = ["forwarded"]
        dkims = [("lists.example.org", "l1", "pass")]   # passes elsewhere, still forwarded
        spfs = [("lists.example.org", "pass")]
    elif kind == "fwd_list":
        reasons = ["mailing_list"]
        dkims = [(domain, "s1", "fail")]
        spfs = [("lists.example.org", "fail")]
    elif kind == "fwd_trusted":                # two reasons: "local_policy,trusted_forwarder"
        reasons = ["trusted_forwarder", "local_policy"]
        spfs = [("relay.example.net", "softfail")]
    elif kind == "tp_dkim":
        dkims = [(esp, "k1", "pass")]
        spfs = [("bounce." + esp, "pass")]
    elif kind == "tp_spf":
        dkims = [(domain, "s1", "fail")]
        spfs = [("bounce.crm-vendor.io", "pass")]
    elif kind == "unauth":
        spfs = [(domain, "fail")]
    elif kind == "unauth_override":            # overrides that are not forwarding
        reasons = ["sampled_out", "local_policy"]
        dkims = [(domain, "s9", "none")]
        spfs = [(domain, "softfail")]
    elif kind == "unauth_esp_first":           # the aligned DKIM result is the one kept
        dkims = [(esp, "k1", "pass"), (domain, "s1", "fail")]
        spfs = [(domain, "fail")]
    else:
        raise ValueError(kind)
    disp = "none" if pe_dkim == "pass" or pe_spf == "pass" or reasons else "quarantine"
    out = ["  <record>\n    <row>\n      <source_ip>%s</source_ip>\n      <count>%d</count>\n"
           "      <policy_evaluated>\n        <disposition>%s</disposition>\n"
           "        <dkim>%s</dkim>\n        <spf>%s</spf>\n" % (ip, count, disp, pe_dkim, pe_spf)]
    for r in reasons:
        out.append("        <reason><type>%s</type></reason>\n" % r)
    out.append("      </policy_evaluated>\n    </row>\n    <identifiers>\n"
               "      <header_from>%s</header_from>\n    </identifiers>\n    <auth_results>\n"
               % (header_from or domain))
    for d, sel, res in dkims:
        out.append("      <dkim><domain>%s</domain><selector>%s</selector><result>%s</result></dkim>\n"
                   % (d, sel, res))
    for d, res in spfs:
        out.append("      <spf><domain>%s</domain><result>%s</result></spf>\n" % (d, res))
    out.append("    </auth_results>\n  </record>\n")
    return "".join(out)


def report(org, report_id, begin, end, domain, pol, records):
    """A whole report; RFC 9990 (dmarc-2.0) when the policy has `testing`,
    RFC 7489 otherwise (it has `pct`).  domain None: policy_published
    names none."""
    v2 = "testing" in pol
    head = ['<?xml version="1.0" encoding="UTF-8"?>\n',
            '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">\n' if v2 else "<feedback>\n  <version>1.0</version>\n",
            "  <report_metadata>\n    <org_name>%s</org_name>\n    <email>dmarc@%s</email>\n"
            "    <report_id>%s</report_id>\n    <date_range><begin>%d</begin><end>%d</end></date_range>\n"
            "  </report_metadata>\n  <policy_published>\n%s"
            "    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>%s</p>\n    <sp>%s</sp>\n"
            % (org, org.replace(" ", "").lower(), report_id, begin, end,
               "    <domain>%s</domain>\n" % domain if domain is not None else "", pol["p"], pol["p"])]
    if v2:
        head.append("    <testing>%s</testing>\n" % pol["testing"])
    elif "pct" in pol:
        head.append("    <pct>%d</pct>\n" % pol["pct"])
    head.append("  </policy_published>\n")
    return "".join(head) + "".join(records) + "</feedback>\n"


NONE, QUAR = {"p": "none"}, {"p": "quarantine"}


def domains():
    """Per policy domain: days with reports, policy per day (per reporter
    when given as a function of both), and senders (ip, kind, daily mail,
    days or None for every day of the domain)."""
    every = range(FIRST, LAST + 1)
    common_aligned = [("192.0.2.%d" % i, "aligned_dkim", 300, None) for i in (10, 11, 12)]
    return [
        dict(name="ready-none.example", days=every, policy=NONE,
             senders=common_aligned + [
                 ("192.0.2.20", "aligned_spf", 50, None),
                 ("2001:db8::25", "tp_dkim", 3, None),             # ~1%: still ready
                 ("203.0.113.66", "unauth", 20, None)]),
        dict(name="ready-quarantine.example", days=every, policy=QUAR,
             senders=common_aligned + [
                 ("198.51.100.7", "fwd", 4, None),              # ~1%: still ready
                 ("198.51.100.8", "fwd_list", 2, None),
                 ("203.0.113.67", "unauth_override", 9, None)]),
        dict(name="fix-senders.example", days=every, policy=NONE,
             senders=[("192.0.2.30", "aligned_dkim", 120, None),
                      ("192.0.2.31", "aligned_override", 10, None),
                      ("198.51.100.20", "tp_dkim", 30, None),
                      ("198.51.100.21", "tp_spf", 12, None),
                      ("198.51.100.22", "fwd_trusted", 6, None),
                      ("198.51.100.23", "fwd", 5, None),
                      ("203.0.113.70", "unauth", 25, None),
                      ("203.0.113.71", "unauth_esp_first", 8, None),
                      ("2001:db8:bad::1", "unauth_override", 4, None)]),
        dict(name="enforced.example", days=every, policy={"p": "reject", "testing": "n"},
             senders=[("192.0.2.40", "aligned_dkim", 80, None),
                      ("198.51.100.40", "tp_dkim", 30, None),
                      ("203.0.113.80", "unauth", 15, None)]),
        dict(name="pct50.example", days=every, policy={"p": "reject", "pct": 50},
             senders=[("192.0.2.50", "aligned_spf", 60, None),
                      ("203.0.113.90", "unauth", 30, None)]),
        dict(name="testing.example", days=every, policy={"p": "reject", "testing": "y"},
             senders=[("192.0.2.60", "aligned_dkim", 300, None),
                      ("198.51.100.60", "fwd", 1, None)]),
        # 5 days with reports in the period, and none before: too few days
        dict(name="sparse.example", days=range(TO - 8, TO - 3), policy=NONE,
             senders=[("192.0.2.70", "aligned_dkim", 200, None)]),
        # 12 days, about 5 messages a day: too few messages
        dict(name="small.example", days=range(TO - 11, TO + 1), policy=NONE,
             senders=[("192.0.2.80", "aligned_dkim", 4, None),
                      ("203.0.113.100", "unauth", 1, None)]),
        # p=none, then p=quarantine from the period's middle, then a report
        # after the period's end that publishes p=reject
        dict(name="changed.example", days=every,
             policy=lambda d, org: NONE if d < FROM + 14 else
             (QUAR if d <= TO else {"p": "reject", "testing": "n"}),
             senders=[("192.0.2.90", "aligned_dkim", 90, None),
                      ("203.0.113.110", "unauth", 10, None)]),
        # two reporters disagree every day, with the same begin: the
        # greatest sha256 decides
        dict(name="tie-policy.example", days=range(FROM - 5, TO + 1), reporters=("google.com", "Yahoo"),
             policy=lambda d, org: NONE if org == "google.com" else QUAR,
             senders=[("192.0.2.95", "aligned_dkim", 50, None)]),
        # nothing legitimate: ready (nothing of its own to break)
        dict(name="spoofed.example", days=range(FROM + 3, TO + 1), policy=NONE,
             senders=[("203.0.113.120", "unauth", 40, None),
                      ("203.0.113.121", "unauth_override", 5, None)]),
        # only in the previous period
        dict(name="prev-only.example", days=range(PREV_FROM + 5, PREV_FROM + 20), policy=QUAR,
             senders=[("192.0.2.100", "aligned_dkim", 30, None)]),
        # aligned / legitimate exactly 0.98 in both periods (one reporter, fixed counts)
        dict(name="edge.example", days=range(TO - 9, TO + 1), policy=NONE, exact=True,
             senders=[("192.0.2.110", "aligned_dkim", 98, None),
                      ("198.51.100.110", "tp_dkim", 2, None)]),
        # one domain written three ways: the names are compared as the DNS does
        dict(name="mixed.example", days=every, policy=NONE,
             published=lambda org: {"Yahoo": "Mixed.EXAMPLE.", "Enterprise Outlook": "MIXED.example"}.get(
                 org, "mixed.example"),
             senders=[("192.0.2.130", "aligned_dkim", 60, None),
                      ("198.51.100.130", "tp_dkim", 20, None)]),
        # reports that name no policy domain: the rollups count under their
        # header_from, and no policy is known (ready, but no next step)
        dict(name="headeronly.example", days=range(FROM, TO + 1), policy=NONE,
             published=lambda org: None, header="HeaderOnly.Example.",
             senders=[("192.0.2.140", "aligned_dkim", 50, None)]),
        # sources whose messages tie, all on one day inside both periods
        dict(name="ties.example", days=range(FROM, TO + 1), policy=NONE, exact=True,
             senders=[("192.0.2.120", "aligned_dkim", 40, None),
                      ("192.0.2.121", "aligned_dkim", 10, [TO - 3]),
                      ("192.0.2.121", "fwd", 10, [TO - 3]),           # aligned
                      ("198.51.100.122", "fwd", 7, [TO - 3]),
                      ("198.51.100.122", "tp_dkim", 7, [TO - 3]),     # forwarded
                      ("198.51.100.123", "tp_spf", 5, [TO - 3]),
                      ("198.51.100.123", "unauth", 5, [TO - 3]),      # third_party
                      ("192.0.2.124", "aligned_spf", 4, [TO - 3]),
                      ("192.0.2.124", "unauth", 4, [TO - 3]),         # aligned
                      ("198.51.100.125", "fwd_list", 3, [TO - 3]),
                      ("198.51.100.125", "unauth_esp_first", 3, [TO - 3]),  # forwarded
                      ("2001:db8:7::6", "tp_dkim", 6, [TO - 3]),
                      ("2001:db8:7::6", "unauth_override", 6, [TO - 3]),    # third_party
                      ("198.51.100.126", "fwd_trusted", 2, [TO - 3]),
                      ("198.51.100.126", "tp_dkim", 2, [TO - 3]),
                      ("198.51.100.126", "aligned_spf", 1, [TO - 3])]),     # forwarded
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.outdir, exist_ok=True)
    n = 0

    def write(name, text):
        nonlocal n
        with open(os.path.join(args.outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
        n += 1

    for dom in domains():
        pol = dom["policy"]
        for d in dom["days"]:
            if dom.get("exact"):
                reporters = REPORTERS[:1]
            elif "reporters" in dom:
                reporters = [r for r in REPORTERS if r[0] in dom["reporters"]]
            else:
                reporters = [r for r in REPORTERS if r[3](d)]
            for org, share, noon, _ in reporters:
                recs = []
                for ip, kind, daily, days in dom["senders"]:
                    if days is not None and d not in days:
                        continue
                    count = daily if dom.get("exact") else max(1, round(daily * share * rng.uniform(0.7, 1.3)))
                    recs.append(record(kind, dom["name"], ip, count, dom.get("header")))
                if not recs:
                    continue
                begin = d * DAY + (DAY // 2 if noon else 0)
                end = begin + DAY if noon else begin + DAY - 1
                p = pol(d, org) if callable(pol) else pol
                rid = "%s-%s-%s" % (dom["name"], org.split()[0].lower(), date_of(d))
                published = dom["published"](org) if "published" in dom else dom["name"]
                write("%s.xml" % rid, report(org, rid, begin, end, published, p, recs))

    # a report in the period whose only record counts no messages: the
    # domain has a report, a policy and one rollup of 0 messages
    write("empty.example-google-%s.xml" % date_of(TO - 2),
          report("google.com", "empty-1", (TO - 2) * DAY, (TO - 1) * DAY - 1, "empty.example", QUAR,
                 [record("aligned_dkim", "empty.example", "192.0.2.200", 0)]))
    print("from=%s to=%s short_from=%s reports=%d" % (date_of(FROM), date_of(TO), date_of(SHORT_FROM), n))


if __name__ == "__main__":
    sys.exit(main())
