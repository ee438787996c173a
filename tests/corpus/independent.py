#!/usr/bin/env python3
"""Independent, stdlib-only DMARC aggregate report parser for dmarcpipe's tests.

This is deliberately a second implementation that shares no code, no
libraries and no design with dmarcpipe (C, expat, libarchive, gmime).  The
corpus manifest's figures were produced by a parser of exactly this shape, so
this script is what keeps tests/data/corpus/MANIFEST.tsv honest, and it is the
reference side of the parity test (compare_parse.py).

Modes
-----
  independent.py --check-manifest DIR
      Re-derive reports / records_total / messages_total for every row of
      DIR/MANIFEST.tsv (strict rules, exactly the manifest's semantics), check
      each file's sha256, and check every reject row is rejected.  Prints one
      line per disagreement and a final "N passed, M failed" line; exit 0 only
      when nothing failed.

  independent.py --records [--strict] FILE...
      Print one normalised JSON object per record (NDJSON) for every accepted
      file; rejected files are reported on stderr and make the exit status 1.
      By default the two documented salvage rules are applied (see below);
      --strict turns them off.

Container rules (manifest semantics)
------------------------------------
  * gzip: every member is inflated and concatenated; bytes after the last
    member that do not start a new member are ignored (Mimecast appends CRLF).
    A corrupt or truncated member rejects the file.
  * zip: every member, except directory entries and __MACOSX/ resource forks.
    An unreadable member rejects the file.
  * MIME / mbox: every leaf part is decoded and unwrapped; the parts whose
    content is a <feedback> document are the reports.
  * Containers nest (gzip in gzip, zip in a MIME part, ...).
  * Content that is not a <feedback> document (an HTML body, a PNG, an ARF
    part) is ignored; a file with no report at all is rejected.

Strictness (manifest semantics)
-------------------------------
Any XML error, a missing/empty/invalid source_ip, or a missing or
non-integer count, begin or end rejects the whole file.

Salvage rules (parity mode only; the C parser documents the same two)
---------------------------------------------------------------------
  1. Whitespace before the XML declaration is dropped.
  2. If the document is not well-formed or its root is not <feedback>, the
     complete <feedback>...</feedback> element is cut out and parsed on its
     own (with the original XML declaration, so the encoding is kept).  This
     recovers a report wrapped in an unclosed <xs:schema> element.
"""

from __future__ import annotations

import argparse
import csv
import email
import email.policy
import hashlib
import io
import ipaddress
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
import zlib

# A decompression bomb (the corpus has one) must not take the test host down;
# a real report is far below this.
MAX_INFLATED = 512 * 1024 * 1024
# gzip-in-zip-in-MIME is real; ten levels is not.
MAX_DEPTH = 8
# How far into a leaf to look for the <feedback> start tag.  It follows the
# XML declaration, comments, or a wrapper element, never megabytes of data.
SNIFF_WINDOW = 64 * 1024

XML_WS = " \t\r\n"  # XML's own whitespace; C's trimming uses the same set.
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
FEEDBACK_START_RE = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?feedback[\s>/]")
XML_DECL_RE = re.compile(rb"^<\?xml[^>]*\?>")
# RFC 5322 header field name at the start of a line.
HEADER_LINE_RE = re.compile(rb"^[!-9;-~]+:")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Reject(Exception):
    """The whole file is rejected; the message says why."""


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------

def _inflate_gzip(data: bytes) -> bytes:
    """Inflate every gzip member; ignore trailing junk after the last one.

    gzip.decompress() would raise on the trailing CRLF some gateways add, so
    the member loop is done by hand with zlib.
    """
    out: list[bytes] = []
    total = 0
    rest = data
    while rest[:2] == GZIP_MAGIC:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        try:
            while not d.eof:
                chunk = d.decompress(pending, 1 << 20)
                pending = d.unconsumed_tail
                if not chunk and not pending:
                    break  # input exhausted before the member's end
                total += len(chunk)
                if total > MAX_INFLATED:
                    raise Reject("gzip: inflated size exceeds limit")
                out.append(chunk)
        except zlib.error as e:
            raise Reject(f"gzip: {e}") from None
        if not d.eof:
            raise Reject("gzip: truncated member")
        rest = d.unused_data
    return b"".join(out)


def _unzip(data: bytes) -> list[tuple[str, bytes]]:
    members = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if info.is_dir() or info.filename.startswith("__MACOSX/"):
                    continue
                if info.file_size > MAX_INFLATED:
                    raise Reject(f"zip: member {info.filename!r} exceeds limit")
                with zf.open(info) as fh:
                    # Read one byte past the limit so a lying header is caught.
                    body = fh.read(MAX_INFLATED + 1)
                if len(body) > MAX_INFLATED:
                    raise Reject(f"zip: member {info.filename!r} exceeds limit")
                members.append((info.filename, body))
    except Reject:
        raise
    except Exception as e:  # BadZipFile, zlib.error, ValueError, ...
        raise Reject(f"zip: {type(e).__name__}: {e}") from None
    return members


def _split_mbox(data: bytes) -> list[bytes]:
    """Split an mbox at "From " lines that start the file or follow a blank line."""
    starts = [0] + [m.start() + len(m.group(1))
                    for m in re.finditer(rb"(\r?\n\r?\n)From ", data)]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def _mime_leaves(raw: bytes) -> list[tuple[str, bytes]]:
    """Decoded payload of every non-multipart part (message/rfc822 is descended)."""
    leaves = []
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        for i, part in enumerate(msg.walk()):
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if payload:
                leaves.append((part.get_filename() or f"part{i}", payload))
    except Exception as e:  # compat32 is lenient, but hostile input must not crash
        raise Reject(f"MIME: {type(e).__name__}: {e}") from None
    return leaves


def _looks_like_mail(data: bytes) -> bool:
    return data.startswith(b"From ") or bool(HEADER_LINE_RE.match(data))


def _is_feedback_doc(data: bytes) -> bool:
    head = data[:SNIFF_WINDOW].lstrip(b" \t\r\n\xef\xbb\xbf")
    return head.startswith(b"<") and FEEDBACK_START_RE.search(head) is not None


def extract_documents(data: bytes, label: str = "", depth: int = 0,
                      allow_mail: bool = True) -> list[tuple[str, bytes]]:
    """Return (label, bytes) for every <feedback> document inside data, in order."""
    if depth > MAX_DEPTH:
        raise Reject(f"{label}: containers nested too deep")
    if data[:2] == GZIP_MAGIC:
        return extract_documents(_inflate_gzip(data), label + "!gunzip", depth + 1, False)
    if data[:4] == ZIP_MAGIC:
        docs = []
        for name, body in _unzip(data):
            docs += extract_documents(body, f"{label}!{name}", depth + 1, False)
        return docs
    if _is_feedback_doc(data):
        return [(label, data)]
    # Mail is only sniffed at the top: an attachment that merely starts with
    # "Foo:" must not be reparsed as a message.  Leading blank lines are
    # transport noise (one corpus message starts with a line of spaces).
    stripped = data.lstrip(b" \t\r\n")
    if allow_mail and _looks_like_mail(stripped):
        docs = []
        for m, message in enumerate(_split_mbox(stripped)):
            for name, body in _mime_leaves(message):
                docs += extract_documents(body, f"{label}!msg{m}!{name}", depth + 1, False)
        return docs
    return []  # not a report: ignored, like an HTML body or an image


# --------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------

def _local(tag) -> str:
    # Comments/PIs have a callable tag; they never match an element name.
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(el, name: str) -> list:
    return [c for c in el if _local(c.tag) == name] if el is not None else []


def _child(el, name: str):
    for c in (el if el is not None else ()):
        if _local(c.tag) == name:
            return c
    return None


def _path(el, *names):
    for n in names:
        el = _child(el, n)
    return el


def _text(el) -> str | None:
    """Trimmed text; absent and empty-after-trim both become None."""
    if el is None:
        return None
    s = "".join(el.itertext()).strip(XML_WS)
    return s or None


def _enum(el) -> str | None:
    s = _text(el)
    # ASCII-only lower-casing, like C's tolower(); a Unicode-aware lower()
    # would make the two implementations disagree on exotic input.
    return s.translate(ASCII_LOWER) if s is not None else None


def _strict_int(el, what: str) -> int:
    s = _text(el)
    if s is None or not s.isascii() or not s.isdigit():
        raise Reject(f"{what}: not an integer: {s!r}")
    return int(s)


def _loose_int(el) -> int | None:
    s = _text(el)
    return int(s) if s is not None and s.isascii() and s.isdigit() else None


def _canonical_ip(el) -> str:
    s = _text(el) or ""
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        raise Reject(f"source_ip: invalid address {s!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


def _salvage_feedback(doc: bytes) -> bytes | None:
    """Cut out the complete <feedback> element (salvage rule 2)."""
    start = FEEDBACK_START_RE.search(doc)
    if not start:
        return None
    prefix = re.match(rb"<([\w.\-]+:)?", doc[start.start():]).group(1) or b""
    end_tag = b"</" + prefix + b"feedback"
    end = doc.rfind(end_tag)
    if end < start.start():
        return None
    close = doc.find(b">", end)
    if close < 0:
        return None
    decl = XML_DECL_RE.match(doc)
    return (decl.group(0) if decl else b"") + doc[start.start():close + 1]


def parse_xml(doc: bytes, salvage: bool):
    """Parse one report document and return its <feedback> root element."""
    if salvage:
        doc = doc.lstrip(b" \t\r\n")
    error = None
    try:
        root = ET.fromstring(doc)
        if _local(root.tag) == "feedback":
            return root
        error = f"root element is <{_local(root.tag)}>, not <feedback>"
    except ET.ParseError as e:
        error = f"ParseError: {e}"
    except (LookupError, ValueError) as e:  # encoding="..." Python has no codec for
        error = f"{type(e).__name__}: {e}"
    if salvage:
        fragment = _salvage_feedback(doc)
        if fragment is not None:
            try:
                root = ET.fromstring(fragment)
                if _local(root.tag) == "feedback":
                    return root
            except (ET.ParseError, LookupError, ValueError):
                pass  # report the original error, it is the useful one
    raise Reject(error)


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------

def _report_id(el) -> str | None:
    s = _text(el)
    if s and len(s) >= 2 and s[0] == "<" and s[-1] == ">":
        s = s[1:-1].strip(XML_WS)
    return s or None


# A report's dates lie in [1990-01-01, 2100-01-01] and cover at most 31
# days (dmarcpipe's --max-range-days default).
DATE_MIN, DATE_MAX, MAX_RANGE = 631152000, 4102444800, 31 * 86400


def _check_dates(begin: int, end: int) -> None:
    if begin > end:
        raise Reject(f"date_range: begin {begin} is after end {end}")
    if begin < DATE_MIN:
        raise Reject(f"date_range: begin {begin} is before 1990-01-01")
    if end > DATE_MAX:
        raise Reject(f"date_range: end {end} is after 2100-01-01")
    if end - begin > MAX_RANGE:
        raise Reject(f"date_range: spans {(end - begin) // 86400} days, more than 31")


def records_of(root) -> list[dict]:
    """Normalised records of one <feedback>; raises Reject on strict violations."""
    meta = _child(root, "report_metadata")
    pol = _child(root, "policy_published")
    dr = _child(meta, "date_range")
    report = {
        "org_name": _text(_child(meta, "org_name")),
        "email": _text(_child(meta, "email")),
        "extra_contact_info": _text(_child(meta, "extra_contact_info")),
        "report_id": _report_id(_child(meta, "report_id")),
        "begin": _strict_int(_child(dr, "begin"), "begin"),
        "end": _strict_int(_child(dr, "end"), "end"),
        "policy_domain": _text(_child(pol, "domain")),
        "policy_adkim": _enum(_child(pol, "adkim")),
        "policy_aspf": _enum(_child(pol, "aspf")),
        "policy_p": _enum(_child(pol, "p")),
        "policy_sp": _enum(_child(pol, "sp")),
        "policy_np": _enum(_child(pol, "np")),
        "policy_pct": _loose_int(_child(pol, "pct")),
        "policy_fo": _text(_child(pol, "fo")),
    }
    _check_dates(report["begin"], report["end"])
    out = []
    for rec in _children(root, "record"):
        row = _child(rec, "row")
        pe = _child(row, "policy_evaluated")
        ids = _child(rec, "identifiers")
        auth = _child(rec, "auth_results")
        r = dict(report)
        r.update({
            "source_ip": _canonical_ip(_child(row, "source_ip")),
            "count": _strict_int(_child(row, "count"), "count"),
            "disposition": _enum(_child(pe, "disposition")),
            "dkim": _enum(_child(pe, "dkim")),
            "spf": _enum(_child(pe, "spf")),
            # RFC 7489 calls it <reason>, RFC 9990 <policy_override>; both are
            # kept, in document order.
            "overrides": [
                {"type": _enum(_child(o, "type")), "comment": _text(_child(o, "comment"))}
                for o in (pe if pe is not None else ())
                if _local(o.tag) in ("reason", "policy_override")
            ],
            "header_from": _text(_child(ids, "header_from")),
            "envelope_from": _text(_child(ids, "envelope_from")),
            "envelope_to": _text(_child(ids, "envelope_to")),
            "dkim_results": [
                {"domain": _text(_child(d, "domain")),
                 "selector": _text(_child(d, "selector")),
                 "result": _enum(_child(d, "result")),
                 "human_result": _text(_child(d, "human_result"))}
                for d in _children(auth, "dkim")
            ],
            "spf_results": [
                {"domain": _text(_child(s, "domain")),
                 "scope": _enum(_child(s, "scope")),
                 "result": _enum(_child(s, "result")),
                 "human_result": _text(_child(s, "human_result"))}
                for s in _children(auth, "spf")
            ],
        })
        out.append(r)
    return out


RECORD_KEYS = (
    "org_name", "email", "extra_contact_info", "report_id", "begin", "end",
    "policy_domain", "policy_adkim", "policy_aspf", "policy_p", "policy_sp",
    "policy_np", "policy_pct", "policy_fo", "source_ip", "count",
    "disposition", "dkim", "spf", "overrides", "header_from", "envelope_from",
    "envelope_to", "dkim_results", "spf_results",
)


def parse_bytes(data: bytes, salvage: bool = False, label: str = "") -> tuple[int, list[dict]]:
    """Return (number of reports, records in document order) or raise Reject."""
    docs = extract_documents(data, label)
    if not docs:
        raise Reject("no report found")
    records = []
    for doc_label, doc in docs:
        try:
            records += records_of(parse_xml(doc, salvage))
        except Reject as e:
            raise Reject(f"{doc_label}: {e}" if doc_label else str(e)) from None
    return len(docs), records


def parse_file(path: str, salvage: bool = False) -> tuple[int, list[dict]]:
    with open(path, "rb") as fh:
        data = fh.read()
    return parse_bytes(data, salvage, os.path.basename(path))


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def read_manifest(corpus_dir: str) -> list[dict]:
    with open(os.path.join(corpus_dir, "MANIFEST.tsv"), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def check_manifest(corpus_dir: str, verbose: bool) -> int:
    passed = failed = 0
    salvageable = []
    for row in read_manifest(corpus_dir):
        path = os.path.join(corpus_dir, row["path"])
        problems = []
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            problems.append(f"unreadable: {e}")
            data = None
        if data is not None:
            # Guards against git eol conversion or an accidental edit: the
            # figures below are only meaningful for the original bytes.
            if hashlib.sha256(data).hexdigest() != row["sha256"]:
                problems.append("sha256 differs from manifest")
            try:
                reports, recs = parse_bytes(data, salvage=False)
                got = (reports, len(recs), sum(r["count"] for r in recs))
                if row["expect"] != "accept":
                    problems.append(f"manifest says reject ({row['reject_reason']}), "
                                    f"accepted with reports/records/messages={got}")
                else:
                    want = (int(row["reports"]), int(row["records_total"]),
                            int(row["messages_total"]))
                    if got != want:
                        problems.append(f"reports/records/messages: manifest {want}, got {got}")
            except Reject as e:
                if row["expect"] == "accept":
                    problems.append(f"manifest says accept, rejected: {e}")
                else:
                    try:
                        parse_bytes(data, salvage=True)
                        salvageable.append(row["path"])
                    except Reject:
                        pass
        if problems:
            failed += 1
            for p in problems:
                print(f"FAIL {row['path']}: {p}")
        else:
            passed += 1
            if verbose:
                print(f"ok   {row['path']}")
    if verbose and salvageable:
        for p in salvageable:
            print(f"info {p}: rejected strictly, accepted by the salvage rules")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def print_records(paths: list[str], salvage: bool) -> int:
    status = 0
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
    for path in paths:
        try:
            _, recs = parse_file(path, salvage)
        except (Reject, OSError) as e:
            print(f"REJECT {path}: {e}", file=sys.stderr)
            status = 1
            continue
        for r in recs:
            out.write(json.dumps({k: r[k] for k in RECORD_KEYS}, ensure_ascii=False) + "\n")
    out.flush()
    return status


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check-manifest", metavar="DIR",
                      help="verify DIR/MANIFEST.tsv against the files in DIR")
    mode.add_argument("--records", action="store_true",
                      help="print the normalised records of each FILE as NDJSON")
    ap.add_argument("--strict", action="store_true",
                    help="with --records: do not apply the salvage rules")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("files", nargs="*", metavar="FILE")
    args = ap.parse_args(argv)
    if args.check_manifest:
        if args.files:
            ap.error("--check-manifest takes no FILE arguments")
        return check_manifest(args.check_manifest, args.verbose)
    if not args.files:
        ap.error("--records needs at least one FILE")
    return print_records(args.files, salvage=not args.strict)


if __name__ == "__main__":
    sys.exit(main())
