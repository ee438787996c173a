#!/usr/bin/env python3
"""services.py — `dmarcpipe report` names the service behind each source and
groups a domain's sources by service, from the rollups' source_* fields
(schema v2, what `dmarcpipe run --enrich` writes).

    services.py DMARCPIPE

Planted senders for one domain over 10 days, as feed lines:
  * SendGrid (esp), 3 IPs: DKIM passes for sendgrid.net only, SPF for
    sendgrid.net: "DKIM not set up for your domain", SPF not aligned either;
  * Microsoft 365 (hosted_mail), 2 IPs: DKIM aligned on every message: aligned;
  * Mailchimp (marketing), 1 IP: DKIM aligned on 60% of its messages;
  * an IP with a PTR but no service (its base domain shown instead), and
    one with nothing known;
  * v1 lines (no source_* fields) and v2 lines flushed before the lookup
    ended (nulls) of the same IPs: they count, and do not hide the answer;
  * the same feed with its lines reversed gives the same JSON.
Checked in JSON (services, and each source's fields), the table and HTML.
"""
import json
import os
import subprocess
import sys
import tempfile

DAY = 86400
START = 1767225600  # 2026-01-01
DOMAIN = "example.com"

SOURCE = ("source_ptr", "source_base_domain", "source_asn", "source_as_org", "source_country",
          "source_service", "source_service_type")

# ip -> (ptr, base_domain, asn, as_org, country, service, type)
WHO = {
    "192.0.2.1": ("o1.ptr1.sendgrid.net", "sendgrid.net", 11377, "SENDGRID", "US", "SendGrid", "esp"),
    "192.0.2.2": ("o2.ptr1.sendgrid.net", "sendgrid.net", 11377, "SENDGRID", "US", "SendGrid", "esp"),
    "192.0.2.3": ("o3.ptr1.sendgrid.net", "sendgrid.net", 11377, "SENDGRID", "US", "SendGrid", "esp"),
    "198.51.100.1": ("mail-a.outbound.protection.outlook.com", "outlook.com", 8075, "MICROSOFT", "IE",
                     "Microsoft 365", "hosted_mail"),
    "198.51.100.2": ("mail-b.outbound.protection.outlook.com", "outlook.com", 8075, "MICROSOFT", "IE",
                     "Microsoft 365", "hosted_mail"),
    "203.0.113.7": ("mail7.mcsv.net", "mcsv.net", 205626, "MAILCHIMP", "US", "Mailchimp", "marketing"),
    "203.0.113.50": ("mx.partner.example.net", "example.net", 64500, "PARTNER", "FR", None, None),
    "203.0.113.99": (None, None, None, None, None, None, None),
}


def rollup(day, ip, messages, dkim, spf, dkim_domain, spf_domain, version=2, known=True):
    r = {"v": version, "window_start": START + day * DAY, "window_end": START + (day + 1) * DAY,
         "reporter": "google.com", "policy_domain": DOMAIN, "header_from": DOMAIN, "source_ip": ip,
         "disposition": "none", "dkim": dkim, "spf": spf, "override": None,
         "dkim_domain": dkim_domain, "dkim_selector": "s1", "dkim_result": "pass",
         "spf_domain": spf_domain, "spf_result": "pass"}
    if version == 2:
        for k, v in zip(SOURCE, WHO[ip]):
            r[k] = v if known else None
    r.update({"messages": messages, "records": 1, "first_seen": START + day * DAY,
              "last_seen": START + day * DAY + 3600})
    return r


def feed():
    lines = []
    for day in range(10):
        for i, ip in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3")):
            # the first day's lines were flushed before the lookups ended, or by a v1 dmarcpipe
            v, known = (1, True) if day == 0 else (2, day != 1)
            lines.append(rollup(day, ip, 100 + i, "fail", "fail", "sendgrid.net", "sendgrid.net", v, known))
        for ip in ("198.51.100.1", "198.51.100.2"):
            lines.append(rollup(day, ip, 50, "pass", "fail", DOMAIN, "outlook.com"))
        # Mailchimp: 6 of 10 messages a day DKIM-aligned
        lines.append(rollup(day, "203.0.113.7", 6, "pass", "fail", DOMAIN, "mcsv.net"))
        lines.append(rollup(day, "203.0.113.7", 4, "fail", "fail", "mcsv.net", "mcsv.net"))
        lines.append(rollup(day, "203.0.113.50", 20, "fail", "pass", "example.net", DOMAIN))
        lines.append(rollup(day, "203.0.113.99", 5, "fail", "fail", None, None))
    return lines


def main():
    bin_ = sys.argv[1]
    passed = failed = 0

    def check(label, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("PASS", label)
        else:
            failed += 1
            print("FAIL", label, detail)

    def eq(label, got, want):
        check(label, got == want, f"got {got!r}, want {want!r}")

    with tempfile.TemporaryDirectory() as work:
        lines = feed()
        fwd, rev = os.path.join(work, "fwd.ndjson"), os.path.join(work, "rev.ndjson")
        with open(fwd, "w") as f:
            f.writelines(json.dumps(x) + "\n" for x in lines)
        with open(rev, "w") as f:
            f.writelines(json.dumps(x) + "\n" for x in reversed(lines))

        def report(path, fmt):
            p = subprocess.run([bin_, "report", "--format", fmt, "--from", "2026-01-01", "--to", "2026-01-10",
                                path], capture_output=True, text=True)
            check(f"report --format {fmt} exit 0", p.returncode == 0, p.stderr)
            return p.stdout

        out = report(fwd, "json")
        eq("reversed lines: the same JSON", report(rev, "json"), out)
        j = json.loads(out)
        d = j["domains"][0]
        sg_messages = sum((100 + i) * 10 for i in range(3))
        eq("services, in order", [(s["service"], s["type"], s["messages"], s["ips"]) for s in d["services"]],
           [("SendGrid", "esp", sg_messages, 3), ("Mailchimp", "marketing", 100, 1),
            ("Microsoft 365", "hosted_mail", 1000, 2)])
        by = {s["service"]: s for s in d["services"]}
        eq("SendGrid text", by["SendGrid"]["text"],
           "SendGrid (esp): 3,030 messages from 3 IPs, DKIM not set up for your domain, "
           "SPF not aligned (no return-path in your domain)")
        eq("SendGrid rates", (by["SendGrid"]["dkim_aligned_rate"], by["SendGrid"]["spf_aligned_rate"]), (0, 0))
        eq("Mailchimp missing", by["Mailchimp"]["missing"],
           "DKIM for your domain on only 60% of its messages, SPF not aligned (no return-path in your domain)")
        eq("Microsoft 365 text", by["Microsoft 365"]["text"],
           "Microsoft 365 (hosted_mail): 1,000 messages from 2 IPs, aligned")
        src = {s["source_ip"]: s for s in d["sources"]}
        for ip, who in WHO.items():
            got = tuple(src[ip].get(k[len("source_"):]) for k in SOURCE)
            eq(f"source {ip}: its fields (nulls and v1 lines do not hide them)", got, who)
        eq("messages of the v1 and null lines count", d["messages"],
           sg_messages + 1000 + 100 + 200 + 50)

        table = report(fwd, "table")
        check("table: the services block", "    SendGrid (esp): 3,030 messages from 3 IPs, DKIM not set up" in table,
              table)
        row = [line for line in table.splitlines() if line.strip().startswith("192.0.2.1 ")]
        check("table: the service beside the source", row and "SendGrid" in row[0], row)
        row = [line for line in table.splitlines() if line.strip().startswith("203.0.113.50 ")]
        check("table: the base domain when no service", row and "example.net" in row[0], row)
        html = report(fwd, "html")
        check("html: the services list", "<h3>Services (3)</h3>" in html and "DKIM not set up for your domain" in html)
        check("html: a Service column", "<th>Service</th>" in html and "Microsoft 365" in html)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
