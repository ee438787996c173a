#!/usr/bin/env python3
"""The built-in known-senders map (enrich/known_senders.tsv) is well formed.

Every entry line has four TAB-separated fields; DOMAIN is a lowercase DNS
name with no trailing dot, never listed twice; TYPE is one of the types the
header documents (and the header documents exactly the types the loader
knows); SOURCE-URL is https.  A bad line would be skipped or misread by the
loader at start-up, and a bad citation would leave an entry nobody can check,
so both fail here.  Broken copies of the file are checked too, so that the
checks themselves are known to fail when they should.

Usage: test_senders_file.py [PATH]   (default: enrich/known_senders.tsv)
"""
import re
import sys
from pathlib import Path

TYPES = {"esp", "hosted_mail", "marketing", "crm", "helpdesk", "forwarder",
         "security_gateway", "other"}
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
URL = re.compile(r"^https://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(/\S*)?$")


def domain_error(d):
    if d != d.lower():
        return "not lowercase"
    if d.endswith("."):
        return "trailing dot"
    if len(d) > 253:
        return "longer than 253 characters"
    labels = d.split(".")
    if len(labels) < 2:
        return "not a domain under a TLD"
    for lab in labels:
        if not LABEL.match(lab):
            return "bad label '%s'" % lab
    if labels[-1].isdigit():
        return "numeric TLD"
    return None


def header_types(lines):
    """The types the header comment documents: '#   NAME  text' under 'TYPE:'."""
    out, inside = set(), False
    for line in lines:
        if not line.startswith("#"):
            break
        body = line[1:]
        if body.strip() == "TYPE:":
            inside = True
            continue
        if inside:
            m = re.match(r"^   ([a-z_]+)\s{2,}\S", body)
            if m:
                out.add(m.group(1))
            elif body.strip() == "":
                inside = False
    return out


def check(text):
    """Problems found in the file's text, one line each ('LINE: reason')."""
    errs = []
    lines = text.split("\n")
    if text and not text.endswith("\n"):
        errs.append("end: no final newline")
    documented = header_types(lines)
    if documented != TYPES:
        errs.append("header: documents types %s, the loader knows %s"
                    % (sorted(documented), sorted(TYPES)))
    header = "\n".join(l for l in lines if l.startswith("#"))
    for needle in ("--senders", "longest", "forward-confirmed"):
        if needle not in header:
            errs.append("header: does not mention '%s'" % needle)
    seen = {}
    entries = 0
    for no, line in enumerate(lines, 1):
        if line == "" or line.startswith("#"):
            continue
        if line != line.rstrip() or line != line.lstrip():
            errs.append("%d: leading or trailing white space" % no)
        fields = line.split("\t")
        if len(fields) != 4:
            errs.append("%d: %d TAB-separated fields, not 4" % (no, len(fields)))
            continue
        dom, service, typ, url = fields
        entries += 1
        e = domain_error(dom)
        if e:
            errs.append("%d: DOMAIN '%s': %s" % (no, dom, e))
        if not service.strip() or service != service.strip():
            errs.append("%d: SERVICE empty or padded" % no)
        if typ not in TYPES:
            errs.append("%d: TYPE '%s' not one of %s" % (no, typ, sorted(TYPES)))
        if not URL.match(url):
            errs.append("%d: SOURCE-URL '%s' is not an https URL" % (no, url))
        if dom in seen:
            errs.append("%d: DOMAIN '%s' already on line %d" % (no, dom, seen[dom]))
        else:
            seen[dom] = no
    if entries == 0:
        errs.append("end: no entries")
    return errs, seen


def main():
    root = Path(__file__).resolve().parents[2]
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "enrich" / "known_senders.tsv"
    text = path.read_text(encoding="utf-8")
    errs, seen = check(text)
    for e in errs:
        print("%s:%s" % (path, e))
    failed = bool(errs)

    # Services DMARC reports meet most often: a map without them is broken.
    for must in ("outbound.protection.outlook.com", "google.com", "amazonses.com",
                 "sendgrid.net", "mailgun.net", "mcsv.net", "mtasv.net",
                 "sparkpostmail.com", "pphosted.com", "mimecast.com"):
        if must not in seen:
            print("%s: no entry for %s" % (path, must))
            failed = True

    # The checks themselves: each broken copy must be reported.
    good = "\n".join(l for l in text.split("\n")
                     if l.startswith("#") or l == "").rstrip("\n") + "\n"
    line = "sendgrid.net\tSendGrid\tesp\thttps://example.org/x"
    broken = {
        "three fields": line.rsplit("\t", 1)[0],
        "spaces not TAB": line.replace("\t", " "),
        "upper case": line.replace("sendgrid", "SendGrid", 1),
        "trailing dot": line.replace("sendgrid.net", "sendgrid.net.", 1),
        "bad label": line.replace("sendgrid.net", "-sendgrid.net", 1),
        "single label": line.replace("sendgrid.net", "sendgrid", 1),
        "unknown type": line.replace("\tesp\t", "\tbulk\t"),
        "http URL": line.replace("https://", "http://"),
        "no URL": line.rsplit("\t", 1)[0] + "\t",
        "duplicate": line + "\n" + line,
    }
    e0, _ = check(good + line + "\n")
    if e0:
        print("self-check: a good line was reported: %s" % e0)
        failed = True
    for name, bad in broken.items():
        e, _ = check(good + bad + "\n")
        if not e:
            print("self-check: broken copy not reported: %s" % name)
            failed = True
    undocumented = good.replace("#   other ", "#   misc  ")
    if not check(undocumented + line + "\n")[0]:
        print("self-check: header types out of step not reported")
        failed = True

    if failed:
        return 1
    print("%s: %d entries, all well formed" % (path, len(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
