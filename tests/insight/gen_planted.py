#!/usr/bin/env python3
"""gen_planted.py — DMARC aggregate reports with planted senders and a known
answer, for the acceptance tests of `dmarcpipe report` (Python 3 stdlib only).

    gen_planted.py --seed N --out DIR

writes DIR/reports/<reporter>/... (raw XML, .xml.gz and .zip, RFC 7489 and
RFC 9990 `dmarc-2.0`, as Google, Yahoo, Microsoft, Fastmail, Mail.Ru, WEB.DE and GMX
send them) and DIR/expected.json, what `dmarcpipe report` must say about
them.  Every figure in expected.json is computed here from the records that
were written, by the definitions of insight/README.md, never hard-coded:
message counts, IPs, reporters and days are drawn from the seed, so each
seed is a new case with its own answer.

What is planted, one policy domain per situation (the names say which):
  enforced.example          p=reject pct=100                  -> enforced
  quarantine-ready.example  p=quarantine, all mail aligned    -> ready, next step reject
                            (p=reject published after the period's end)
  none-aligned.example      p=none, only aligned mail         -> ready, next step quarantine
  esp-heavy.example         p=none, a big ESP signing as itself -> fix_senders
  half-reject.example       p=reject pct=50                   -> ready, next step reject
  oneday.example            one day of data                   -> insufficient_data
  small.example             under 100 messages                -> insufficient_data
  lists.example             mailing lists and forwarders      -> forwarded
  spoofed.example           spoofing that rises               -> unauthenticated_rise
  drop.example              a new unaligned sender            -> new_source, pass_rate_drop
  stopped.example           reports end 6 days before the end -> reports_stopped
  gone.example              data in the previous period only  -> reports_stopped
  silent.example            reports without records only      -> listed, no messages
  dmarc2-enforced.example   dmarc-2.0, p=reject, no pct       -> enforced
  dmarc2-testing.example    dmarc-2.0, p=reject, t=y          -> ready, next step reject
  late.example              data after the period only        -> not listed
  ancient.example           data before the previous period   -> not listed

Sources mix classes on purpose (a majority, and an exact tie that the class
order breaks), one relays more lists than a source keeps pass domains for,
IPv6 sources are written canonical, expanded upper-case and IPv4-mapped,
one reporter capitalises the policy domain, one sends two half-day reports
a day (the same rollup keys from two reports, so that partial flushes cut
them), and some reports are delivered twice (a duplicate the run drops).
expected.json also carries the answer for the default period (the last 30
days of data, which ends two days after the planted period) and for the
planted period under other thresholds (CUSTOM).
"""
import argparse
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import os
import random
import sys
import zipfile

DAY = 86400
PERIOD_DAYS = 30
CLASSES = ("aligned", "forwarded", "third_party", "unauthenticated")
FORWARD_TYPES = ("forwarded", "mailing_list", "trusted_forwarder")
THRESHOLDS = {"ready_threshold": 0.98, "min_days": 7, "min_messages": 100}
# the options' other values, for a run with --ready-threshold, --min-days and
# --min-messages: one day and a few messages are enough for a verdict, and
# drop.example's new ESP no longer stops it
CUSTOM = {"ready_threshold": 0.6, "min_days": 1, "min_messages": 10}
# Ratios are kept this far from a threshold, so that no rounding decides.
MARGIN = 0.004


# ---- the definitions (insight/README.md) ------------------------------------

def classify(dkim, spf, override, dkim_result, spf_result):
    """The class of one rollup, from the fields the rollup carries."""
    if dkim == "pass" or spf == "pass":
        return "aligned"
    if override and set(override.split(",")) & set(FORWARD_TYPES):
        return "forwarded"
    if dkim_result == "pass" or spf_result == "pass":
        return "third_party"
    return "unauthenticated"


def majority(classes):
    """The class holding most messages; ties go to the first in CLASSES."""
    best = CLASSES[0]
    for c in CLASSES:
        if classes[c] > classes[best]:
            best = c
    return best


def org_domain(d):
    """The organisational domain of the names used here (no public suffix
    of more than one label is used, so the last two labels)."""
    return ".".join(d.lower().split(".")[-2:])


def pick_dkim(header_from, dkim_results):
    """The DKIM result a rollup carries: the first aligned with header_from
    in relaxed mode, else the first (README, rollup schema)."""
    for r in dkim_results:
        if org_domain(r[0]) == org_domain(header_from):
            return r
    return dkim_results[0] if dkim_results else (None, None, None)


def day_str(day):
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_day(s):
    return (datetime.date.fromisoformat(s) - datetime.date(1970, 1, 1)).days


def enforced(pol):
    return (pol is not None and pol["p"] == "reject" and (pol["pct"] is None or pol["pct"] == 100)
            and pol["testing"] != "y")


def next_step(pol):
    if pol is None or pol["p"] is None:
        return None
    if pol["p"] == "none":
        return "quarantine"
    if pol["p"] == "quarantine":
        return "reject"
    if pol["p"] == "reject" and ((pol["pct"] is not None and pol["pct"] < 100) or pol["testing"] == "y"):
        return "reject"
    return None


def ratio(a, b):
    return None if b == 0 else a / b


# ---- reporters ---------------------------------------------------------------

# begin/end: the report's range within its UTC day.  ip6: how IPv6 sources
# are written; ip4mapped: IPv4 sources written as ::ffff:a.b.c.d;
# domain_case: the policy domain written capitalised ("Lists.Example"), which
# the feeds keep as written and the report takes as the same domain.
REPORTERS = {
    "google": {"org": "google.com", "email": "noreply-dmarc-support@google.com",
               "extra": "https://support.google.com/a/answer/2466580", "schema": "rfc7489",
               "begin": 0, "end": 86399, "pack": "zip", "prob": 1.0},
    "yahoo": {"org": "Yahoo", "email": "dmarchelp@yahooinc.com", "extra": None, "schema": "rfc7489",
              "begin": 0, "end": 86399, "pack": "gz", "prob": 0.7},
    "outlook": {"org": "Enterprise Outlook", "email": "dmarcreport@microsoft.com", "extra": None,
                "schema": "rfc7489", "begin": 0, "end": 86400, "pack": "gz", "prob": 0.6,
                "ip6": "exploded_upper", "domain_case": True},
    "fastmail": {"org": "Fastmail Pty Ltd", "email": "dmarc-reports@fastmail.com", "extra": None,
                 "schema": "rfc7489", "begin": 21600, "end": 64800, "pack": "xml", "prob": 0.3,
                 "ip4mapped": True},
    "webde": {"org": "WEB.DE", "email": "noreply-dmarc@sicher.web.de",
              "extra": "https://postmaster.web.de/en/case?c=r2002", "schema": "rfc9990",
              "begin": 0, "end": 86399, "pack": "xml", "prob": 1.0},
    "gmx": {"org": "GMX", "email": "noreply-dmarc@sicher.gmx.net",
            "extra": "https://postmaster.gmx.net/en/case?c=r2002", "schema": "rfc9990",
            "begin": 0, "end": 86399, "pack": "gz", "prob": 0.6},
    # two reports a day, 00:00-12:00 and 12:00-24:00: the same rollup keys
    # come from two reports, so partial flushes fall between them
    "mailru": {"org": "Mail.Ru", "email": "dmarc_support@corp.mail.ru", "extra": None,
               "schema": "rfc7489", "begin": 0, "end": 86399, "pack": "xml", "prob": 0.6,
               "halves": True},
}
RFC7489_REPORTERS = ("google", "yahoo", "outlook", "fastmail", "mailru")
RFC9990_REPORTERS = ("webde", "gmx")


# ---- the XML -------------------------------------------------------------------

def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def el(name, value, ind):
    return f"{ind}<{name}>{esc(value)}</{name}>\n" if value is not None else ""


def report_xml(rep):
    """One report's XML, in its reporter's schema."""
    r = REPORTERS[rep["reporter"]]
    v2 = r["schema"] == "rfc9990"
    pol = rep["policy"]
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    if v2:
        out.append('<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">\n  <version>1.0</version>\n')
    elif rep["reporter"] == "outlook":
        out.append('<feedback xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                   'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n  <version>1.0</version>\n')
    else:
        out.append("<feedback>\n")
    out.append("  <report_metadata>\n")
    out.append(el("org_name", r["org"], "    "))
    out.append(el("email", r["email"], "    "))
    out.append(el("extra_contact_info", r["extra"], "    "))
    out.append(el("report_id", rep["report_id"], "    "))
    out.append(f"    <date_range>\n      <begin>{rep['begin']}</begin>\n      <end>{rep['end']}</end>\n"
               "    </date_range>\n  </report_metadata>\n  <policy_published>\n")
    out.append(el("domain", rep["domain_written"], "    "))
    if v2:
        out.append(el("discovery_method", "psl", "    "))
    out.append(el("adkim", pol["adkim"], "    "))
    out.append(el("aspf", pol["aspf"], "    "))
    out.append(el("p", pol["p"], "    "))
    out.append(el("sp", pol["sp"], "    "))
    out.append(el("np", pol["np"], "    "))
    out.append(el("pct", pol["pct"], "    "))
    out.append(el("testing", pol["testing"], "    "))
    out.append("  </policy_published>\n")
    for rec in rep["records"]:
        out.append("  <record>\n    <row>\n")
        out.append(el("source_ip", rec["ip_written"], "      "))
        out.append(el("count", rec["count"], "      "))
        out.append("      <policy_evaluated>\n")
        out.append(el("disposition", rec["disposition"], "        "))
        out.append(el("dkim", rec["dkim"], "        "))
        out.append(el("spf", rec["spf"], "        "))
        for t, c in rec["reasons"]:
            out.append(f"        <reason>\n{el('type', t, '          ')}{el('comment', c, '          ')}"
                       "        </reason>\n")
        out.append("      </policy_evaluated>\n    </row>\n    <identifiers>\n")
        if v2 or rep["reporter"] == "outlook":
            out.append(el("envelope_to", rep["domain"] if rep["reporter"] == "outlook" else None, "      "))
            out.append(el("envelope_from", rec["envelope_from"], "      "))
        out.append(el("header_from", rec["header_from"], "      "))
        out.append("    </identifiers>\n    <auth_results>\n")
        for d, sel, res in rec["dkim_results"]:
            out.append(f"      <dkim>\n{el('domain', d, '        ')}{el('selector', sel, '        ')}"
                       f"{el('result', res, '        ')}      </dkim>\n")
        for d, scope, res in rec["spf_results"]:
            out.append(f"      <spf>\n{el('domain', d, '        ')}{el('scope', scope, '        ')}"
                       f"{el('result', res, '        ')}      </spf>\n")
        out.append("    </auth_results>\n  </record>\n")
    out.append("</feedback>\n")
    return "".join(out).encode("utf-8")


def pack(data, how, member):
    if how == "gz":
        return gzip.compress(data, mtime=0)
    if how == "zip":
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
        return b.getvalue()
    return data


# ---- the plan --------------------------------------------------------------------

class Plan:
    """The domains, their senders and policies, drawn from one seed."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        rng = self.rng
        self.seed = seed
        # The planted period: 30 days ending somewhere in 2024..2026.
        self.to = parse_day("2024-03-01") + rng.randrange(0, 900)
        self.frm = self.to - PERIOD_DAYS + 1
        self.prev_from, self.prev_to = self.frm - PERIOD_DAYS, self.frm - 1
        self.old = list(range(self.prev_from - 8, self.prev_from))     # before the previous period
        self.late = [self.to + 1, self.to + 2]                          # after the period
        self.used_ips = set()
        self.domains = {}
        self.build()

    # IPs: canonical text; each is unique across the plan.
    def ip4(self):
        while True:
            a = self.rng.choice((23, 40, 45, 52, 64, 74, 98, 104, 142, 157, 185, 198, 203, 209))
            ip = f"{a}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
            if ip not in self.used_ips:
                self.used_ips.add(ip)
                return ip

    def ip6(self):
        while True:
            hx = [0x2001, 0xdb8] + [self.rng.choice((0, 0, self.rng.randrange(1, 0x10000)))
                                    for _ in range(6)]
            ip = ipaddress.IPv6Address(":".join(f"{h:x}" for h in hx)).compressed
            if ip not in self.used_ips:
                self.used_ips.add(ip)
                return ip

    def ips(self, n, v6_share=0.3):
        return [self.ip6() if self.rng.random() < v6_share else self.ip4() for _ in range(n)]

    def days(self, first, last, gaps=0, keep_tail=3):
        """Days first..last, less `gaps` random days (never the last keep_tail)."""
        ds = list(range(first, last + 1))
        cand = [d for d in ds if d <= last - keep_tail and d != first]
        for d in self.rng.sample(cand, min(gaps, len(cand))):
            ds.remove(d)
        return ds

    def domain(self, name, policies, days, reporters=RFC7489_REPORTERS, intent=None):
        """policies: [(first day, policy)], in day order."""
        d = {"name": name, "policies": policies, "days": set(days), "senders": [],
             "reporters": reporters, "intent": intent or {}, "empty_reports": []}
        self.domains[name] = d
        return d

    def sender(self, dom, kind, ips, lo, hi, days=None, tie_with=None, header_from=None):
        """ips each send rng[lo, hi] messages of `kind` a day (on `days`, else
        the domain's); tie_with: a second kind sending the same count."""
        s = {"kind": kind, "ips": ips, "lo": lo, "hi": hi,
             "days": set(days) if days is not None else None, "tie_with": tie_with,
             "header_from": header_from}
        dom["senders"].append(s)
        return s

    def build(self):
        rng = self.rng
        P, T, PF = self.frm, self.to, self.prev_from
        span = self.days(PF, T, gaps=rng.randrange(0, 3))

        def pol(p, pct=100, sp=None, np_=None, testing=None, adkim="r", aspf="r"):
            return {"p": p, "sp": sp if sp is not None else p, "np": np_, "pct": pct,
                    "adkim": adkim, "aspf": aspf, "testing": testing}

        # enforced: quarantine before the previous period, reject since a day in it.
        d = self.domain("enforced.example",
                        [(self.old[0], pol("quarantine")), (PF + rng.randrange(3, 20), pol("reject"))],
                        self.old + span, intent={"verdict": "enforced"})
        self.sender(d, "aligned", self.ips(4), 40, 250)
        self.sender(d, "aligned_dkim", self.ips(1), 5, 30)
        self.sender(d, "list", self.ips(1), 0, 3)
        self.sender(d, "spoof", self.ips(3), 1, 25)

        # quarantine-ready: none, then quarantine; reject after the period.
        d = self.domain("quarantine-ready.example",
                        [(PF, pol("none")), (PF + rng.randrange(5, 25), pol("quarantine")),
                         (self.late[0], pol("reject"))],
                        self.days(PF, T, gaps=rng.randrange(0, 3)) + self.late,
                        intent={"verdict": "ready", "next_step": "reject"})
        self.sender(d, "aligned", self.ips(3), 50, 300)
        self.sender(d, "aligned_spf", self.ips(1), 5, 40, header_from="news.quarantine-ready.example")
        self.sender(d, "list", self.ips(1), 0, 2)
        self.sender(d, "spoof", self.ips(2), 0, 15)

        # none-aligned: p=none, every message aligned.
        d = self.domain("none-aligned.example", [(PF, pol("none", sp="quarantine"))],
                        self.days(PF, T, gaps=rng.randrange(0, 3)),
                        intent={"verdict": "ready", "next_step": "quarantine"})
        self.sender(d, "aligned", self.ips(3, v6_share=0.6), 10, 120)
        self.sender(d, "aligned_spf", self.ips(1), 1, 10)

        # esp-heavy: p=none and a large ESP that signs with its own domain.
        d = self.domain("esp-heavy.example", [(PF, pol("none"))], span,
                        intent={"verdict": "fix_senders"})
        self.sender(d, "aligned", self.ips(2), 30, 150)
        self.sender(d, "esp", self.ips(3, v6_share=0.5), 20, 120)
        self.sender(d, "esp_dkim", self.ips(1), 5, 30)
        self.sender(d, "esp_spf", self.ips(1), 5, 30)
        # one ESP IP that also sends some mail signed as the domain (majority third_party)
        shared = self.ips(1)
        self.sender(d, "esp", shared, 30, 60)
        self.sender(d, "aligned", shared, 5, 20)

        # half-reject: p=reject pct=50, every legitimate message aligned.
        d = self.domain("half-reject.example", [(PF, pol("reject", pct=50))],
                        self.days(PF, T, gaps=rng.randrange(0, 3)),
                        intent={"verdict": "ready", "next_step": "reject"})
        self.sender(d, "aligned", self.ips(2), 20, 150)
        self.sender(d, "spoof", self.ips(4), 1, 30)

        # oneday: one day, plenty of messages.
        one = rng.randrange(P, T + 1)
        d = self.domain("oneday.example", [(one, pol("none"))], [one],
                        intent={"verdict": "insufficient_data"})
        self.sender(d, "aligned", self.ips(2), 80, 200)

        # small: many days, under 100 messages.
        d = self.domain("small.example", [(P, pol("quarantine"))],
                        sorted(rng.sample(range(P, T + 1), rng.randrange(9, 14))),
                        intent={"verdict": "insufficient_data"})
        self.sender(d, "aligned", self.ips(1), 1, 5)
        self.sender(d, "spoof", self.ips(1), 0, 2)

        # lists: aligned mail that mailing lists and forwarders relay.
        d = self.domain("lists.example", [(PF, pol("none"))], span)
        self.sender(d, "aligned", self.ips(2), 40, 120)
        self.sender(d, "list", self.ips(2), 10, 40)
        self.sender(d, "forward", self.ips(1), 5, 20)
        self.sender(d, "trusted", self.ips(1), 3, 12)
        self.sender(d, "list_local", self.ips(1), 1, 8)
        self.sender(d, "list_many", self.ips(1), 10, 30)
        # one IP whose forwarded and third_party messages tie exactly: forwarded wins
        self.sender(d, "forward", self.ips(1), 3, 9, tie_with="esp")

        # spoofed: p=none, spoofing that grows in the period.
        d = self.domain("spoofed.example", [(PF, pol("none"))], span,
                        intent={"verdict": "ready", "next_step": "quarantine"})
        self.sender(d, "aligned", self.ips(2), 60, 200)
        self.sender(d, "spoof", self.ips(3), 0, 6, days=range(PF, P))
        self.sender(d, "spoof", self.ips(4, v6_share=0.5), 20, 80, days=range(P, T + 1))

        # drop: a new unaligned sender in the period.
        d = self.domain("drop.example", [(PF, pol("none"))],
                        self.days(PF, T, gaps=rng.randrange(0, 3)),
                        intent={"verdict": "fix_senders"})
        self.sender(d, "aligned", self.ips(3), 50, 150)
        self.sender(d, "esp", self.ips(2), 30, 90, days=range(P + rng.randrange(2, 10), T + 1))

        # stopped: reports end 6 days before the period's end.
        d = self.domain("stopped.example", [(PF, pol("none"))], self.days(PF, T - 6, gaps=1))
        self.sender(d, "aligned", self.ips(2), 20, 80)

        # gone: the previous period only.
        d = self.domain("gone.example", [(PF, pol("quarantine"))], self.days(PF, self.prev_to - 2))
        self.sender(d, "aligned", self.ips(1), 10, 50)

        # silent: reports with no record, in the period.
        d = self.domain("silent.example", [(P, pol("none"))], [])
        d["empty_reports"] = sorted(rng.sample(range(P, T + 1), 3))

        # dmarc-2.0 reporters only: no pct, np and testing published.
        d = self.domain("dmarc2-enforced.example", [(PF, pol("reject", pct=None, np_="reject", testing="n"))],
                        self.days(PF, T, gaps=rng.randrange(0, 2)), reporters=RFC9990_REPORTERS,
                        intent={"verdict": "enforced"})
        self.sender(d, "aligned", self.ips(2), 20, 90)
        self.sender(d, "spoof", self.ips(2), 0, 10)
        d = self.domain("dmarc2-testing.example",
                        [(PF, pol("reject", pct=None, np_="none", testing="y", adkim="s"))],
                        self.days(PF, T, gaps=rng.randrange(0, 2)), reporters=RFC9990_REPORTERS,
                        intent={"verdict": "ready", "next_step": "reject"})
        self.sender(d, "aligned", self.ips(2), 20, 90)
        self.sender(d, "spoof", self.ips(1), 0, 10)

        # outside the planted period and its previous one: never listed there
        d = self.domain("late.example", [(self.late[0], pol("none"))], self.late)
        self.sender(d, "aligned", self.ips(1), 10, 40)
        d = self.domain("ancient.example", [(self.old[0], pol("none"))], self.old)
        self.sender(d, "aligned", self.ips(1), 10, 40)


def policy_on(dom, day):
    cur = None
    for first, p in dom["policies"]:
        if first <= day:
            cur = p
    if cur is None:
        cur = dom["policies"][0][1]
    return cur


# ---- records -----------------------------------------------------------------

ESP = "esp.example"
ESP_BOUNCE = "bounces.esp.example"
LISTS = ("lists.example.org", "groups.example.net", "mlist.example.com")
# a relay for more lists than a source keeps pass domains for (4)
MANY_LISTS = LISTS + ("ietf.example.org", "lists.debian.example", "googlegroups.example", "mm.example.edu")


def fail_disposition(rng, policy):
    """(disposition, reasons) for a message that fails DMARC."""
    p = policy["p"]
    if policy.get("testing") == "y":
        return ("none" if p != "reject" else "quarantine"), []
    if policy["pct"] is not None and policy["pct"] < 100 and rng.randrange(100) >= policy["pct"]:
        return {"reject": "quarantine", "quarantine": "none", "none": "none"}[p], [("sampled_out", None)]
    return p, []


def make_record(rng, kind, dom, policy, header_from):
    """The record fields of one message kind (its count is set later)."""
    D = dom["name"]
    hf = header_from or D
    r = {"header_from": hf, "envelope_from": hf, "reasons": [], "dkim_results": [], "spf_results": []}
    if kind in ("aligned", "aligned_dkim", "aligned_spf"):
        r["disposition"] = "none"
        r["dkim"] = "fail" if kind == "aligned_spf" else "pass"
        r["spf"] = "fail" if kind == "aligned_dkim" else "pass"
        if kind != "aligned_spf":
            r["dkim_results"].append((hf, "s" + str(rng.randrange(1, 3)), "pass"))
        if kind == "aligned_dkim":      # forwarded through a server SPF does not cover
            r["envelope_from"] = "fwd.example.org"
            r["spf_results"].append(("fwd.example.org", "mfrom", rng.choice(("fail", "softfail"))))
        else:
            r["spf_results"].append((hf, "mfrom", "pass"))
    elif kind in ("esp", "esp_dkim", "esp_spf"):
        r["dkim"] = r["spf"] = "fail"
        r["disposition"], r["reasons"] = fail_disposition(rng, policy)
        if kind != "esp_spf":
            r["dkim_results"].append((ESP, "esp1", "pass"))
        if kind == "esp_dkim":
            r["envelope_from"] = hf
            r["spf_results"].append((hf, "mfrom", "softfail"))
        else:
            r["envelope_from"] = ESP_BOUNCE
            r["spf_results"].append((ESP_BOUNCE, "mfrom", "pass"))
    elif kind in ("list", "forward", "trusted", "list_local", "list_many"):
        r["dkim"] = r["spf"] = "fail"
        r["disposition"] = "none"
        t = {"list": "mailing_list", "forward": "forwarded", "trusted": "trusted_forwarder",
             "list_local": "mailing_list", "list_many": "mailing_list"}[kind]
        r["reasons"].append((t, "looks forwarded" if t == "forwarded" else None))
        if kind == "list_local":
            r["reasons"].append(("local_policy", "arc=pass & list"))
        lst = rng.choice(MANY_LISTS if kind == "list_many" else LISTS)
        r["envelope_from"] = lst
        # the list re-signs as itself; the author's signature broke
        r["dkim_results"].append((hf, "s1", "fail"))
        r["dkim_results"].append((lst, "lst", "pass"))
        r["spf_results"].append((lst, "mfrom", "pass"))
    elif kind == "spoof":
        r["dkim"] = r["spf"] = "fail"
        r["disposition"], r["reasons"] = fail_disposition(rng, policy)
        v = rng.randrange(3)
        if v == 0:
            r["dkim_results"].append((hf, "s1", rng.choice(("fail", "permerror"))))
        elif v == 1:
            r["dkim_results"].append(("spam.example.net", "x", "fail"))
        r["spf_results"].append((hf, "mfrom", rng.choice(("fail", "softfail", "none"))))
    else:
        raise ValueError(kind)
    return r


def write_ip(rng, reporter, ip):
    """The IP as this reporter writes it."""
    a = ipaddress.ip_address(ip)
    r = REPORTERS[reporter]
    if a.version == 6 and r.get("ip6") == "exploded_upper":
        return a.exploded.upper()
    if a.version == 4 and r.get("ip4mapped") and rng.random() < 0.5:
        return "::ffff:" + ip
    return ip


def split(rng, count, parts):
    """count split into `parts` random non-negative shares."""
    cuts = sorted(rng.randint(0, count) for _ in range(parts - 1))
    out, prev = [], 0
    for c in cuts + [count]:
        out.append(c - prev)
        prev = c
    return out


def generate_reports(plan):
    """Every report of the plan: dicts with reporter, domain, day, begin, end,
    policy, report_id, records."""
    rng = plan.rng
    reports = []
    seq = 0
    for dom in plan.domains.values():
        for day in sorted(dom["days"]):
            policy = policy_on(dom, day)
            active = [r for r in dom["reporters"] if rng.random() < REPORTERS[r]["prob"]]
            if not active:
                active = [dom["reporters"][0]]
            per = {r: [] for r in active}
            for s in dom["senders"]:
                if s["days"] is not None and day not in s["days"]:
                    continue
                for ip in s["ips"]:
                    n = rng.randint(s["lo"], s["hi"])
                    kinds = [s["kind"]] + ([s["tie_with"]] if s["tie_with"] else [])
                    for kind in kinds:
                        for rep, c in zip(active, split(rng, n, len(active))):
                            if c == 0:
                                continue
                            rec = make_record(rng, kind, dom, policy, s["header_from"])
                            rec.update(ip=ip, ip_written=write_ip(rng, rep, ip))
                            # Receivers often write one IP's mail in several
                            # records (per envelope sender): the same rollup
                            # key, which partial flushes then cut apart.
                            parts = split(rng, c, 3) if c >= 3 and rng.random() < 0.3 else [c]
                            for i, part in enumerate(x for x in parts if x):
                                ef = rec["envelope_from"] if i == 0 else f"b{i}.{rec['envelope_from']}"
                                per[rep].append(dict(rec, count=part, envelope_from=ef))
            for rep, recs in per.items():
                if REPORTERS[rep].get("halves"):
                    halves = ([], [])
                    for rec in recs:
                        for h, part in zip(halves, split(rng, rec["count"], 2)):
                            if part:
                                h.append(dict(rec, count=part))
                    ranges = [(halves[0], 0, 43199), (halves[1], 43200, 86399)]
                else:
                    ranges = [(recs, None, None)]
                for rs, b, e in ranges:
                    if not rs:
                        continue
                    rng.shuffle(rs)
                    seq += 1
                    reports.append(new_report(rng, rep, dom["name"], day, policy, rs, seq, b, e))
        for day in dom["empty_reports"]:
            seq += 1
            reports.append(new_report(rng, dom["reporters"][0], dom["name"], day,
                                      policy_on(dom, day), [], seq))
    return reports


def new_report(rng, rep, domain, day, policy, records, seq, begin_off=None, end_off=None):
    r = REPORTERS[rep]
    if r["schema"] == "rfc9990":
        policy = dict(policy, pct=None)
    else:
        policy = dict(policy, np=None, testing=None)
    begin = day * DAY + (r["begin"] if begin_off is None else begin_off)
    rid = {"google": lambda: str(rng.randrange(10 ** 18, 10 ** 19)),
           "yahoo": lambda: f"{begin}.{rng.randrange(10 ** 6)}",
           "outlook": lambda: "%032x" % rng.getrandbits(128)}.get(rep, lambda: f"{seq}-{rng.getrandbits(48):x}")()
    written = ".".join(x.capitalize() for x in domain.split(".")) if r.get("domain_case") else domain
    return {"reporter": rep, "org": r["org"], "domain": domain, "domain_written": written, "day": day,
            "begin": begin,
            "end": day * DAY + (r["end"] if end_off is None else end_off), "policy": policy, "report_id": rid, "records": records}


def write_reports(out, reports, rng):
    """Writes each report under out/reports/<reporter>/ in its reporter's
    packing; some twice (a duplicate copy the run drops).  Sets sha256."""
    for rep in reports:
        xml = report_xml(rep)
        rep["sha256"] = hashlib.sha256(xml).hexdigest()
        r = REPORTERS[rep["reporter"]]
        d = os.path.join(out, "reports", rep["reporter"])
        os.makedirs(d, exist_ok=True)
        base = f"{r['org']}!{rep['domain']}!{rep['begin']}!{rep['end']}!{rep['report_id'][:12]}"
        ext = {"gz": ".xml.gz", "zip": ".zip", "xml": ".xml"}[r["pack"]]
        with open(os.path.join(d, base + ext), "wb") as f:
            f.write(pack(xml, r["pack"], base + ".xml"))
        if rng.random() < 0.03:
            with open(os.path.join(d, base + ".copy.xml"), "wb") as f:
                f.write(xml)


# ---- the answer ----------------------------------------------------------------

def expected_for(plan, reports, frm, to, th=THRESHOLDS, only=None):
    """What `dmarcpipe report --from frm --to to` must say, from the reports
    written.  only: the --domain filter (a set), or None."""
    ndays = to - frm + 1
    pf, pt = frm - ndays, frm - 1
    doms = {}

    def dom(name):
        if name not in doms:
            doms[name] = {"classes": dict.fromkeys(CLASSES, 0), "prev_classes": dict.fromkeys(CLASSES, 0),
                          "messages": 0, "prev_messages": 0, "dkim_aligned": 0, "spf_aligned": 0,
                          "dispositions": {"none": 0, "quarantine": 0, "reject": 0},
                          "days": set(), "prev_days": set(),
                          "daily": {d: dict.fromkeys(CLASSES, 0) for d in range(frm, to + 1)},
                          "reporters": {}, "sources": {}, "listed": False}
        return doms[name]

    for rep in reports:
        name = rep["domain"]
        if only is not None and name not in only:
            continue
        day = rep["day"]
        in_period, in_prev = frm <= day <= to, pf <= day <= pt
        if in_period or in_prev:
            dom(name)["listed"] = True
        if in_period:
            rr = dom(name)["reporters"].setdefault(rep["org"], {"reports": 0, "messages": 0})
            rr["reports"] += 1
        for rec in rep["records"]:
            if not (in_period or in_prev):
                continue
            d = dom(name)
            dk = pick_dkim(rec["header_from"], rec["dkim_results"])
            sp = rec["spf_results"][0] if rec["spf_results"] else (None, None, None)
            override = ",".join(sorted(t for t, _ in rec["reasons"])) or None
            cls = classify(rec["dkim"], rec["spf"], override, dk[2], sp[2])
            c = rec["count"]
            src = d["sources"].setdefault(rec["ip"], {
                "classes": dict.fromkeys(CLASSES, 0), "messages": 0, "previous_messages": 0,
                "first_seen": None, "last_seen": None, "dkim": set(), "spf": set()})
            if in_prev:
                d["prev_classes"][cls] += c
                d["prev_messages"] += c
                d["prev_days"].add(day)
                src["previous_messages"] += c
                continue
            d["classes"][cls] += c
            d["messages"] += c
            d["days"].add(day)
            d["daily"][day][cls] += c
            d["dkim_aligned"] += c if rec["dkim"] == "pass" else 0
            d["spf_aligned"] += c if rec["spf"] == "pass" else 0
            d["dispositions"][rec["disposition"]] += c
            d["reporters"][rep["org"]]["messages"] += c
            src["classes"][cls] += c
            src["messages"] += c
            fs = rep["begin"]
            ls = min(rep["end"], (day + 1) * DAY - 1)
            src["first_seen"] = fs if src["first_seen"] is None else min(src["first_seen"], fs)
            src["last_seen"] = ls if src["last_seen"] is None else max(src["last_seen"], ls)
            if rec["dkim"] != "pass" and rec["spf"] != "pass":
                if dk[2] == "pass":
                    src["dkim"].add(dk[0])
                if sp[2] == "pass":
                    src["spf"].add(sp[0])

    out = {}
    alerts = []
    for name in sorted(doms):
        d = doms[name]
        if not d["listed"]:
            continue
        reps = [r for r in reports if r["domain"] == name]
        pol = latest_policy(reps, (to + 1) * DAY)
        history = policy_history(reps, pf, to)
        cl = d["classes"]
        legit = cl["aligned"] + cl["forwarded"] + cl["third_party"]
        ndays_with = len(d["days"])
        if ndays_with < th["min_days"] or d["messages"] < th["min_messages"]:
            verdict = "insufficient_data"
        elif enforced(pol):
            verdict = "enforced"
        elif legit == 0 or cl["aligned"] / legit >= th["ready_threshold"]:
            verdict = "ready"
        else:
            verdict = "fix_senders"
        sources = []
        for ip, s in d["sources"].items():
            if s["messages"] == 0:
                continue
            sources.append({"source_ip": ip, "class": majority(s["classes"]), "messages": s["messages"],
                            "classes": s["classes"], "previous_messages": s["previous_messages"],
                            "first_seen": iso(s["first_seen"]), "last_seen": iso(s["last_seen"]),
                            "dkim_pass_domains": sorted(s["dkim"]), "spf_pass_domains": sorted(s["spf"])})
        sources.sort(key=lambda s: (-s["classes"]["third_party"], -s["messages"], s["source_ip"]))
        rate = ratio(cl["aligned"], d["messages"])
        prev_rate = ratio(d["prev_classes"]["aligned"], d["prev_messages"])
        e = {
            "domain": name,
            "policy": None if pol is None else dict(pol, as_of=day_str(pol["begin"] // DAY)),
            "policy_history": history,
            "messages": d["messages"],
            "dmarc_pass_rate": rate,
            "dkim_aligned_rate": ratio(d["dkim_aligned"], d["messages"]),
            "spf_aligned_rate": ratio(d["spf_aligned"], d["messages"]),
            "classes": cl,
            "dispositions": d["dispositions"],
            "readiness": {"verdict": verdict, "next_step": next_step(pol) if verdict == "ready" else None,
                          "would_block_legitimate": cl["forwarded"] + cl["third_party"],
                          "would_block_spoofed": cl["unauthenticated"], "legitimate": legit,
                          "aligned_share": ratio(cl["aligned"], legit)},
            "days_with_reports": ndays_with,
            "days_without_reports": [day_str(x) for x in range(frm, to + 1) if x not in d["days"]],
            "reporters": d["reporters"],
            "daily": [dict(date=day_str(x), messages=sum(d["daily"][x].values()), **d["daily"][x])
                      for x in range(frm, to + 1)],
            "previous": {"messages": d["prev_messages"], "dmarc_pass_rate": prev_rate,
                         "classes": d["prev_classes"], "days_with_reports": len(d["prev_days"])},
            "sources": sources,
        }
        if e["policy"] is not None:
            e["policy"].pop("begin")
            e["policy"].pop("sha256")
        out[name] = e
        # the alerts
        if d["prev_messages"] > 0:
            for s in sources:
                if s["previous_messages"] == 0 and s["messages"] >= 10:
                    alerts.append({"kind": "new_source", "domain": name, "source_ip": s["source_ip"],
                                   "messages": s["messages"], "class": s["class"]})
        near = []
        if d["messages"] >= th["min_messages"] and d["prev_messages"] >= th["min_messages"]:
            fall = prev_rate - rate
            near.append(("pass_rate_drop", fall, 0.05))
            if fall >= 0.05:
                alerts.append({"kind": "pass_rate_drop", "domain": name, "previous_rate": prev_rate,
                               "rate": rate})
        u, pu = cl["unauthenticated"], d["prev_classes"]["unauthenticated"]
        if u > 2 * pu and u - pu >= 100:
            alerts.append({"kind": "unauthenticated_rise", "domain": name, "previous": pu, "current": u})
        all_days = d["days"] | d["prev_days"]
        if any(x <= to - 3 for x in all_days) and not any(x > to - 3 for x in all_days):
            a = {"kind": "reports_stopped", "domain": name}
            if d["days"]:
                a["last_day"] = day_str(max(d["days"]))
            alerts.append(a)
        if legit:
            near.append(("ready_threshold", cl["aligned"] / legit, th["ready_threshold"]))
        e["_near"] = [(k, v, t) for k, v, t in near if abs(v - t) < MARGIN]
    totals = {"domains": len(out), "messages": sum(e["messages"] for e in out.values()),
              "classes": {c: sum(e["classes"][c] for e in out.values()) for c in CLASSES}}
    alerts.sort(key=lambda a: (a["kind"], a["domain"], a.get("source_ip", "")))
    return {"period": {"from": day_str(frm), "to": day_str(to), "days": ndays},
            "previous_period": {"from": day_str(pf), "to": day_str(pt)},
            "thresholds": dict(th), "totals": totals, "domains": out, "alerts": alerts}


POLICY_FIELDS = ("p", "sp", "np", "pct", "adkim", "aspf", "testing")


def latest_policy(reps, before):
    """The policy of the report with the greatest begin before `before`
    (ties: the greatest sha256), with its begin and sha256; None if none."""
    best = None
    for r in reps:
        if r["begin"] < before and (best is None or (r["begin"], r["sha256"]) > (best["begin"], best["sha256"])):
            best = r
    if best is None:
        return None
    p = {k: best["policy"][k] for k in POLICY_FIELDS}
    p.update(begin=best["begin"], sha256=best["sha256"])
    return p


def policy_history(reps, pf, to):
    """The days of [pf, to] on which the policy in force (the latest report
    up to that day's end) differs from the day before; the first entry is
    the policy in force on pf, or, when none was known yet, the first one
    published after it."""
    out, last = [], None
    for day in range(pf, to + 1):
        p = latest_policy(reps, (day + 1) * DAY)
        cur = tuple(p[k] for k in POLICY_FIELDS) if p else None
        if cur is not None and cur != last:
            out.append(dict(date=day_str(day), **dict(zip(POLICY_FIELDS, cur))))
        last = cur
    return out


def check_intent(plan, exp):
    """The plan's situations hold in its answer, and no ratio sits within
    MARGIN of a threshold; else the seed's draw is retried."""
    problems = []
    for name, dom in plan.domains.items():
        e = exp["domains"].get(name)
        if name in ("late.example", "ancient.example"):
            if e is not None:
                problems.append(f"{name} listed")
            continue
        if e is None:
            problems.append(f"{name} not listed")
            continue
        if e["_near"]:
            problems.append(f"{name} near a threshold: {e['_near']}")
        for k, v in dom["intent"].items():
            got = e["readiness"]["verdict"] if k == "verdict" else e["readiness"]["next_step"]
            if got != v:
                problems.append(f"{name} {k} {got} != {v}")
    kinds = {(a["kind"], a["domain"]) for a in exp["alerts"]}
    for want in (("new_source", "drop.example"), ("pass_rate_drop", "drop.example"),
                 ("unauthenticated_rise", "spoofed.example"), ("reports_stopped", "stopped.example"),
                 ("reports_stopped", "gone.example")):
        if want not in kinds:
            problems.append(f"alert {want} missing")
    lst = exp["domains"].get("lists.example")
    if lst and lst["classes"]["forwarded"] == 0:
        problems.append("lists.example has no forwarded mail")
    esp = exp["domains"].get("esp-heavy.example")
    if esp and esp["classes"]["third_party"] < 0.1 * esp["messages"]:
        problems.append("esp-heavy.example's ESP is not big")
    return problems


def strip_private(exp):
    for e in exp["domains"].values():
        e.pop("_near", None)
    return exp


def generate(seed, out):
    """Writes the reports and expected.json into out; returns the answer."""
    for attempt in range(50):
        plan = Plan(seed * 1000 + attempt)
        reports = generate_reports(plan)
        # sha256 is needed for the answer (policy ties): compute it before writing
        for rep in reports:
            rep["sha256"] = hashlib.sha256(report_xml(rep)).hexdigest()
        exp = expected_for(plan, reports, plan.frm, plan.to)
        last = max(r["day"] for r in reports if r["records"])
        default = expected_for(plan, reports, last - PERIOD_DAYS + 1, last)
        custom = expected_for(plan, reports, plan.frm, plan.to, th=CUSTOM)
        problems = check_intent(plan, exp) + [f"{w}: {n} near a threshold: {e['_near']}"
                                              for w, x in (("default period", default), ("custom", custom))
                                              for n, e in x["domains"].items() if e["_near"]]
        if not problems:
            break
    else:
        raise SystemExit(f"seed {seed}: no draw holds the plan: {problems}")
    write_reports(out, reports, plan.rng)
    split_a = ["google", "fastmail", "webde", "mailru"]
    answer = {
        "v": 1, "seed": seed, "draw": plan.seed,
        "reports_dir": "reports",
        "reports": len(reports), "messages": sum(x["count"] for r in reports for x in r["records"]),
        "planted": strip_private(exp),
        "default": strip_private(default),
        "custom": strip_private(custom),
        "intent": {n: d["intent"] for n, d in plan.domains.items()},
        "not_listed": ["late.example", "ancient.example"],
        "split": {"a": [r for r in REPORTERS if r in split_a],
                  "b": [r for r in REPORTERS if r not in split_a]},
    }
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(answer, f, indent=1, sort_keys=True)
        f.write("\n")
    return answer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    ans = generate(a.seed, a.out)
    p = ans["planted"]
    print(f"seed {a.seed}: {ans['reports']} reports, {ans['messages']} messages, period "
          f"{p['period']['from']}..{p['period']['to']}, {len(p['domains'])} domains, "
          f"{len(p['alerts'])} alerts -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
