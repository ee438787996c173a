#!/usr/bin/env bash
# tests/insight/html.sh — `dmarcpipe report --format html`: the page is
# self-contained and safe, and a real browser draws it.
#
#   tests/insight/html.sh [BUILD_DIR]        # default: build
#
# Two pages, from feeds `dmarcpipe run` writes:
#   planted   the reports of tests/insight/gen_planted.py (every verdict,
#             class and alert), the default period (the last 30 days);
#   hostile   tests/data/samples and reports written here whose reporter,
#             policy domain and DKIM domain carry markup (<script>, an
#             attribute break, an <img onerror>, a URL), over a 7-year
#             period (2,500+ days a chart).
# Each page is checked as text (an HTML parser, Python's stdlib): no
# script, no element or attribute that loads or links anything outside
# the page (URLs are allowed in text only), a <title>, one section per
# domain of the JSON report, two <svg> charts per domain, each with its
# <title>, summary links that reach the sections, and the hostile strings
# shown as text.  Then headless Chromium loads it: --dump-dom must hold the
# same sections, charts and text, and nothing it parsed as a script;
# --screenshot must be a PNG that is not blank: many colours, the classes'
# colours among them (the charts and bars were drawn).
#
# Needs Debian's `chromium` (deploy/install-deps installs it): without it
# the test fails.  The pages, DOMs and screenshots are kept in
# BUILD_DIR/artifacts/insight/.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
DMARCPIPE=$BUILD/dmarcpipe
ART=$BUILD/artifacts/insight
CHROMIUM=${CHROMIUM:-chromium}

if [ ! -x "$DMARCPIPE" ]; then
    echo "FAIL: $DMARCPIPE not found; build first" >&2
    exit 1
fi
if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
    echo "FAIL: $CHROMIUM is not installed: the HTML report is checked in a real browser." >&2
    echo "      Install Debian's package: deploy/install-deps (or apt-get install chromium)." >&2
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -rf "$ART"
mkdir -p "$ART"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# ---- the inputs ----

python3 "$ROOT/tests/insight/gen_planted.py" --seed 7 --out "$TMP/planted" >/dev/null || fail "gen_planted.py failed"

# Reports whose strings are markup, dated after the samples (2024-12-10..19).
python3 - "$TMP/hostile" <<'EOF' || fail "writing the hostile reports failed"
import os, sys
out = sys.argv[1]
os.makedirs(out)
DOM = '<script>alert("dom")</script>.example'
ORG = '<script>alert("org")</script> & "Co" \'x\' https://evil.example/x'
ESP = '"><img src=x onerror=alert(1)>.esp'
esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
begin = 1733788800  # 2024-12-10
for d in range(10):
    b = begin + d * 86400
    recs = ""
    # aligned, third_party (DKIM passes for ESP), unauthenticated
    # and 6 spoofing sources a day more: 63 sources, more than a page shows
    spoofers = tuple((f"203.0.113.{100 + d * 6 + k}", 1, "fail", "x.invalid", "fail") for k in range(6))
    for ip, n, pe, dkim_dom, dkim_res in (("192.0.2.7", 40, "pass", DOM, "pass"),
                                          ("198.51.100.9", 5, "fail", ESP, "pass"),
                                          ("203.0.113.66", 3, "fail", "x.invalid", "fail")) + spoofers:
        recs += (f"<record><row><source_ip>{ip}</source_ip><count>{n}</count><policy_evaluated>"
                 f"<disposition>none</disposition><dkim>{pe}</dkim><spf>{pe}</spf></policy_evaluated></row>"
                 f"<identifiers><header_from>{esc(DOM)}</header_from></identifiers><auth_results>"
                 f"<dkim><domain>{esc(dkim_dom)}</domain><result>{dkim_res}</result></dkim>"
                 f"<spf><domain>{esc(DOM)}</domain><result>{pe}</result></spf></auth_results></record>")
    open(os.path.join(out, f"hostile-{d}.xml"), "w").write(
        '<?xml version="1.0" encoding="UTF-8"?>\n<feedback><version>1.0</version><report_metadata>'
        f"<org_name>{esc(ORG)}</org_name><email>dmarc@reporter.example</email><report_id>hostile-{d}</report_id>"
        f"<date_range><begin>{b}</begin><end>{b + 86399}</end></date_range></report_metadata>"
        f"<policy_published><domain>{esc(DOM)}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp>"
        f"<pct>100</pct></policy_published>{recs}</feedback>\n")
EOF

# feed NAME SOURCE...: `dmarcpipe run` into $TMP/NAME (exit 1: a sample is
# a failure report, rejected as it should be).
feed() {
    name=$1
    shift
    mkdir -p "$TMP/$name"
    "$DMARCPIPE" run --sink "file:$TMP/$name/rollups.ndjson" --reports "$TMP/$name/reports.ndjson" \
        --quarantine "$TMP/$name/q" --state "$TMP/$name/state" "$@" >"$TMP/$name.log" 2>&1
    rc=$?
    if [ $rc -gt 1 ] || [ ! -s "$TMP/$name/rollups.ndjson" ]; then
        fail "dmarcpipe run for $name exited $rc"
        cat "$TMP/$name.log"
    fi
}
feed planted-feed "$TMP/planted/reports"
feed hostile-feed "$ROOT/tests/data/samples" "$TMP/hostile"

# ---- the checks ----

# check_page NAME HOSTILE: the page as text, in the browser, as a picture.
check_page() {
    name=$1
    hostile=$2
    page=$ART/$name.html
    mkdir -p "$TMP/home-$name"
    # Chromium: no sandbox (CI runs as root), its own profile, 60 s at most.
    HOME=$TMP/home-$name timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
        --disable-dev-shm-usage --user-data-dir="$TMP/profile-$name" --dump-dom "file://$page" \
        >"$ART/$name.dom.html" 2>"$TMP/chromium-$name.log" || fail "$name: chromium --dump-dom failed"
    HOME=$TMP/home-$name timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
        --disable-dev-shm-usage --user-data-dir="$TMP/profile-$name" --hide-scrollbars \
        --screenshot="$ART/$name.png" --window-size=1280,2400 "file://$page" \
        >>"$TMP/chromium-$name.log" 2>&1 || fail "$name: chromium --screenshot failed"
    [ -s "$ART/$name.dom.html" ] || tail -5 "$TMP/chromium-$name.log"
    python3 - "$page" "$ART/$name.json" "$ART/$name.dom.html" "$ART/$name.png" "$hostile" <<'EOF' ||
import html, html.parser, json, re, struct, sys, zlib

page_path, json_path, dom_path, png_path, hostile = sys.argv[1:6]
hostile = hostile == "1"
errors = []
def check(ok, what):
    if not ok:
        errors.append(what)

report = json.load(open(json_path))
domains = [d["domain"] for d in report["domains"]]
n = len(domains)
sources_seen = []
check(n > 0, "the JSON report lists no domain")

# Tags a report page may hold: none of them loads, runs or submits anything.
ALLOWED = set("""html head meta title style body header main footer section div span p a b i br h1 h2 h3
    table thead tbody tr th td ul li figure figcaption svg g rect line path circle text desc""".split())

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.ids, self.hrefs, self.stack = {}, [], set(), [], []
        self.svg_titles = 0
        self.style = ""
    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        check(tag in ALLOWED, f"element <{tag}> in the page")
        a = dict(attrs)
        for k, v in attrs:
            v = v or ""
            check(not k.startswith("on"), f"event handler attribute {k}= on <{tag}>")
            check("://" not in v and "javascript:" not in v.lower(), f"a URL in <{tag} {k}=\"{v}\">")
            check(k not in ("src", "srcset", "action", "formaction", "xlink:href", "poster", "data"),
                  f"attribute {k}= on <{tag}>")
        if tag == "a":
            check(a.get("href", "").startswith("#"), f"a link outside the page: {a.get('href')}")
            self.hrefs.append(a.get("href", "")[1:])
        if "id" in a:
            check(a["id"] not in self.ids, f"id {a['id']} twice")
            self.ids.add(a["id"])
        if tag == "meta" and "http-equiv" in a:
            check(a["http-equiv"].lower() == "content-security-policy", f"meta http-equiv={a['http-equiv']}")
        if tag == "title" and self.stack and self.stack[-1] == "svg":
            self.svg_titles += 1
        if tag not in ("meta", "br"):
            self.stack.append(tag)
    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style":
            self.style += data
        else:
            self.text.append(data)

raw = open(page_path, encoding="utf-8").read()
p = Page()
p.feed(raw)
p.close()
check(raw.startswith("<!DOCTYPE html>"), "no doctype")
check("<script" not in raw.lower(), "<script in the page")
check(not re.search(r"url\(|@import|expression\(", p.style, re.I), "the CSS loads something")
check(p.tags.get("title", 0) >= 1, "no <title>")
check(p.tags.get("svg", 0) == 2 * n, f"{p.tags.get('svg', 0)} <svg> for {n} domains (2 charts each)")
check(p.svg_titles == p.tags.get("svg", 0), f"{p.svg_titles} of {p.tags.get('svg', 0)} charts have a <title>")
sections = re.findall(r'<section class="domain" id="([^"]+)"', raw)
check(len(sections) == n, f"{len(sections)} domain sections for {n} domains")
check(all(s in p.hrefs for s in sections) and len(sections) == len(set(sections)),
      "a domain section no summary link reaches")
text = "".join(p.text)
# Sources: the first 50 of each domain, and how many more there are.
for d, body in zip(report["domains"], re.split(r'<section class="domain"', raw)[1:]):
    rows, want = len(re.findall(r'<tr><td class="mono" title="first seen', body)), min(50, len(d["sources"]))
    check(rows == want, f"{d['domain']}: {rows} source rows, want {want}")
    more = len(d["sources"]) - 50
    check((f">{more} more sources not shown" in body) == (more > 0), f"{d['domain']}: no note of {more} more sources")
    sources_seen.append(len(d["sources"]))
for d in domains:
    check(d in text, f"domain {d!r} not shown")
# URLs: only in text (a reporter's name here).
urls_in_text = len(re.findall(r"https?://", text))
check(len(re.findall(r"https?://", raw)) == urls_in_text, "http(s):// outside the page's text")

if hostile:
    for s in ('<script>alert("org")</script> & "Co" \'x\' https://evil.example/x',
              '<script>alert("dom")</script>.example', '"><img src=x onerror=alert(1)>.esp'):
        check(s in text, f"hostile string {s!r} not shown as text")
    check(p.tags.get("img", 0) == 0 and p.tags.get("script", 0) == 0, "a hostile string became an element")
    check("&lt;script&gt;alert(&quot;org&quot;)&lt;/script&gt;" in raw, "the reporter name is not escaped")
    check(max(sources_seen) > 50, "no domain with more than 50 sources")

# The browser's DOM.
dom = open(dom_path, encoding="utf-8", errors="replace").read()
check(len(dom) > 1000, "the DOM dump is empty")
check("<script" not in dom.lower(), "the browser's DOM holds a <script>")
check("<img" not in dom.lower(), "the browser's DOM holds an <img>")
check(len(re.findall(r"<svg\b", dom)) == 2 * n, f"{len(re.findall(r'<svg', dom))} <svg> in the DOM, want {2 * n}")
check(len(re.findall(r'<section class="domain" id="', dom)) == n, "domain sections missing in the DOM")
check(len(re.findall(r"<rect\b", dom)) > n, "no bars drawn in the DOM")
for d in domains:
    check(html.escape(d, quote=False) in dom, f"domain {d!r} not in the DOM")
if hostile:
    check('&lt;script&gt;alert("org")&lt;/script&gt; &amp; "Co"' in dom, "the reporter name is not text in the DOM")

# The screenshot: decode the top of the PNG (stdlib zlib) and look at it.
def png_rows(path, max_rows):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"PNG depth {depth} type {ctype} interlace {interlace}")
    bpp = 3 if ctype == 2 else 4
    raw_rows = zlib.decompressobj().decompress(idat, (w * bpp + 1) * min(h, max_rows))
    stride, prev, rows = w * bpp, bytearray(w * bpp), []
    for y in range(min(h, max_rows)):
        f, line = raw_rows[y * (stride + 1)], bytearray(raw_rows[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for x in range(stride):
                line[x] = (line[x] + (((line[x - bpp] if x >= bpp else 0) + prev[x]) >> 1)) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return w, h, rows

try:
    import os
    size = os.path.getsize(png_path)
    check(size > 20000, f"the screenshot is {size} bytes")
    w, h, rows = png_rows(png_path, 1100)
    check((w, h) == (1280, 2400), f"the screenshot is {w}x{h}")
    colours = {}
    for r in rows:
        for px in r[::2]:
            colours[px] = colours.get(px, 0) + 1
    total = sum(colours.values())
    white = sum(c for px, c in colours.items() if min(px) >= 245)
    check(len(colours) > 64, f"the screenshot has {len(colours)} colours")
    check(white < total * 0.9, "the screenshot is nearly all white")
    near = lambda want: sum(c for px, c in colours.items() if all(abs(a - b) <= 6 for a, b in zip(px, want)))
    for name, rgb in (("aligned", (0x2f, 0x85, 0x5a)), ("unauthenticated", (0xc5, 0x30, 0x30)),
                      ("the header", (0x1f, 0x29, 0x37))):
        check(near(rgb) > 200, f"the screenshot lacks the colour of {name}, #%02x%02x%02x" % rgb)
    print(f"  {page_path}: {n} domains, {p.tags.get('svg', 0)} charts, {len(raw)} bytes; "
          f"screenshot {w}x{h}, {size} bytes, {len(colours)} colours in its top")
except (OSError, ValueError, KeyError, NameError, UnboundLocalError, zlib.error) as e:
    errors.append(f"the screenshot cannot be read: {e}")

for e in errors:
    print(f"FAIL: {e}")
sys.exit(1 if errors else 0)
EOF
        fail "$name: the page checks failed"
}

# report NAME HOSTILE FEED [ARGS...]: the HTML and JSON reports, then the checks.
report() {
    name=$1
    hostile=$2
    dir=$3
    shift 3
    "$DMARCPIPE" report --format html -o "$ART/$name.html" "$@" "$dir" 2>"$TMP/report-$name.log" ||
        { fail "$name: dmarcpipe report --format html exited $?"; cat "$TMP/report-$name.log"; return; }
    "$DMARCPIPE" report --format json -o "$ART/$name.json" "$@" "$dir" 2>>"$TMP/report-$name.log" ||
        { fail "$name: dmarcpipe report --format json exited $?"; return; }
    check_page "$name" "$hostile"
}

report planted 0 "$TMP/planted-feed"
report hostile 1 "$TMP/hostile-feed" --from 2018-01-01 --to 2024-12-19

echo "artifacts (pages, DOM dumps, screenshots): $ART"
ls -l "$ART"
if [ $failures -ne 0 ]; then
    echo "html: $failures failure(s)"
    exit 1
fi
echo "html: ok"
