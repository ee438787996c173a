#!/usr/bin/env python3
"""Load dmarcpipe rollups (schema v2, and v1, NDJSON) into SQLite and check them.

The rollups come from files or stdin, e.g. the file sink's output or a
Kafka topic read back with

    kcat -C -b BROKER -t dmarc.rollups -X isolation.level=read_committed -e -f '%s\\n'

They are loaded, with the schema in deploy/warehouse/sqlite.sql (STRICT
tables), and checked with SQL:

  * every line is a v2 rollup (or a v1 one, without the source_* fields) with
    exactly the documented fields and types;
  * --expect-messages N: the loaded total of `messages` is N;
  * merge: the view dmarc_rollups_merged, which merges partial rollups by
    key, gives the same sums, mins and maxes per key as a merge computed
    here in Python, and the same totals as a plain SUM over the table;
  * --reference FILE: messages per (source_ip, policy_domain), summed by
    SQL over what was loaded, equal the same sums computed in Python from
    FILE (another NDJSON rollup file, e.g. the file sink's output of the
    same run).  With --reference-key full, every merged key is compared
    instead, with all four measures;
  * --reports FILE: the reports feed is loaded too, and per (reporter,
    policy_domain) the rollups' messages equal the reports' messages (the
    view dmarc_reconcile is empty).

Exit status: 0 with one "ok" line; 1 with the failed checks and their
first mismatches; 2 for bad usage.  Python 3.8+, standard library only.
"""
import argparse
import ipaddress
import json
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "warehouse", "sqlite.sql"))

ROLLUP_KEY = (
    "window_start", "window_end", "reporter", "policy_domain", "header_from", "source_ip",
    "disposition", "dkim", "spf", "override",
    "dkim_domain", "dkim_selector", "dkim_result", "spf_domain", "spf_result",
)
# Who the source IP is (schema v2): not part of the key; absent from a v1 line.
ROLLUP_SOURCE = ("source_ptr", "source_base_domain", "source_asn", "source_as_org", "source_country",
                 "source_service", "source_service_type")
ROLLUP_MEASURES = ("messages", "records", "first_seen", "last_seen")
ROLLUP_FIELDS = ("v",) + ROLLUP_KEY + ROLLUP_SOURCE + ROLLUP_MEASURES
ROLLUP_V1_FIELDS = ("v",) + ROLLUP_KEY + ROLLUP_MEASURES
ROLLUP_INTS = {"v", "window_start", "window_end", "messages", "records", "first_seen", "last_seen"}
ROLLUP_NULLABLE_INTS = {"source_asn"}
ROLLUP_NOT_NULL_STR = {"source_ip"}

# Reports feed: JSON name -> column name (renamed where a dialect has a keyword).
REPORT_COLUMNS = {
    "v": "v", "sha256": "sha256", "input": "input", "part": "part",
    "schema": "report_schema", "version": "version", "org_name": "org_name",
    "email": "email", "extra_contact_info": "extra_contact_info",
    "report_id": "report_id", "begin": "date_begin", "end": "date_end",
    "generator": "generator", "errors": "errors",
    "policy_domain": "policy_domain", "policy_adkim": "policy_adkim",
    "policy_aspf": "policy_aspf", "policy_p": "policy_p", "policy_sp": "policy_sp",
    "policy_np": "policy_np", "policy_pct": "policy_pct", "policy_fo": "policy_fo",
    "policy_testing": "policy_testing",
    "policy_discovery_method": "policy_discovery_method", "policy_psd": "policy_psd",
    "records": "records", "messages": "messages", "xml_bytes": "xml_bytes",
}
REPORT_INTS = {"v", "begin", "end", "records", "messages", "xml_bytes"}
REPORT_NULLABLE_INTS = {"policy_pct"}
REPORT_NOT_NULL_STR = {"sha256"}

I64_MIN, I64_MAX, U64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
UNSIGNED = {"messages", "records", "xml_bytes", "policy_pct"}


class InputError(Exception):
    """A line that is not a valid feed line; str() names the line."""


def _no_dup_keys(pairs):
    d = {}
    for k, val in pairs:
        if k in d:
            raise ValueError("duplicate field %r" % k)
        d[k] = val
    return d


def _no_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _check_int(where, name, x, nullable=False):
    if x is None and nullable:
        return
    if not _is_int(x):
        raise InputError("%s: %s must be an integer, got %s" % (where, name, json.dumps(x)))
    lo, hi = (0, U64_MAX) if name in UNSIGNED else (I64_MIN, I64_MAX)
    if not lo <= x <= hi:
        raise InputError("%s: %s = %d is outside the schema's range [%d, %d]" % (where, name, x, lo, hi))
    if x > I64_MAX:
        raise InputError("%s: %s = %d does not fit SQLite's signed 64-bit INTEGER" % (where, name, x))


def _check_str(where, name, x, nullable=True):
    if x is None and nullable:
        return
    if not isinstance(x, str):
        raise InputError("%s: %s must be a string%s, got %s"
                         % (where, name, " or null" if nullable else "", json.dumps(x)))


def _parse_object(where, text, fields, versions=(1,)):
    try:
        obj = json.loads(text, object_pairs_hook=_no_dup_keys, parse_constant=_no_constant)
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise InputError("%s: not valid JSON: %s" % (where, e))
    if not isinstance(obj, dict):
        raise InputError("%s: not a JSON object" % where)
    v = obj.get("v")
    if not _is_int(v) or v not in versions:
        raise InputError("%s: schema version v = %s, only %s known"
                         % (where, json.dumps(v), " and ".join(map(str, versions)) + (" is" if len(versions) == 1 else " are")))
    if callable(fields):
        fields = fields(v)
    missing = [f for f in fields if f not in obj]
    extra = sorted(set(obj) - set(fields))
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        raise InputError("%s: not a schema v%d line: %s" % (where, v, "; ".join(parts)))
    return obj


def parse_rollup(where, text):
    """One NDJSON line -> tuple in ROLLUP_FIELDS order, or InputError."""
    obj = _parse_object(where, text, lambda v: ROLLUP_FIELDS if v == 2 else ROLLUP_V1_FIELDS, versions=(1, 2))
    for f in ROLLUP_SOURCE:
        obj.setdefault(f, None)  # a v1 line: nothing known of the source
    for f in ROLLUP_FIELDS:
        if f in ROLLUP_INTS or f in ROLLUP_NULLABLE_INTS:
            _check_int(where, f, obj[f], nullable=f in ROLLUP_NULLABLE_INTS)
        else:
            _check_str(where, f, obj[f], nullable=f not in ROLLUP_NOT_NULL_STR)
    try:
        ip = ipaddress.ip_address(obj["source_ip"])
    except ValueError:
        raise InputError("%s: source_ip %s is not an IP address" % (where, json.dumps(obj["source_ip"])))
    if ip.version == 6 and ip.ipv4_mapped is not None:
        raise InputError("%s: source_ip %s is IPv4-mapped; the schema writes it as IPv4"
                         % (where, obj["source_ip"]))
    ws, we, fs, ls = obj["window_start"], obj["window_end"], obj["first_seen"], obj["last_seen"]
    if not ws < we:
        raise InputError("%s: window_start %d is not before window_end %d" % (where, ws, we))
    if not ws <= fs <= ls < we:
        raise InputError("%s: first_seen %d and last_seen %d are not in order within [%d, %d)"
                         % (where, fs, ls, ws, we))
    return tuple(obj[f] for f in ROLLUP_FIELDS)


def parse_report(where, text):
    """One reports-feed line -> tuple in REPORT_COLUMNS order, or InputError."""
    fields = tuple(REPORT_COLUMNS)
    obj = _parse_object(where, text, fields)
    for f in fields:
        if f in REPORT_INTS:
            _check_int(where, f, obj[f])
        elif f in REPORT_NULLABLE_INTS:
            _check_int(where, f, obj[f], nullable=True)
        elif f == "errors":
            if not isinstance(obj[f], list) or not all(isinstance(e, str) for e in obj[f]):
                raise InputError("%s: errors must be a list of strings" % where)
        else:
            _check_str(where, f, obj[f], nullable=f not in REPORT_NOT_NULL_STR)
    sha = obj["sha256"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise InputError("%s: sha256 %s is not 64 lower-case hex digits" % (where, json.dumps(sha)))
    if obj["begin"] > obj["end"]:
        raise InputError("%s: begin %d is after end %d" % (where, obj["begin"], obj["end"]))
    row = dict(obj)
    row["errors"] = json.dumps(obj["errors"])
    return tuple(row[f] for f in fields)


def read_lines(path):
    """Yields (where, text) for each line of a file, or of stdin for '-'."""
    name = "<stdin>" if path == "-" else path
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for n, raw in enumerate(stream, 1):
            where = "%s:%d" % (name, n)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError("%s: not UTF-8: %s" % (where, e))
            text = text.rstrip("\r\n")
            if not text.strip():
                raise InputError("%s: empty line (an empty Kafka message?)" % where)
            yield where, text
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def merge(rows):
    """Python-side merge of rollup tuples by key: key -> [messages, records, first, last]."""
    nk = len(ROLLUP_KEY)
    out = {}
    for r in rows:
        key, (m, rec, fs, ls) = r[1:1 + nk], r[-len(ROLLUP_MEASURES):]
        cur = out.get(key)
        if cur is None:
            out[key] = [m, rec, fs, ls]
        else:
            cur[0] += m
            cur[1] += rec
            cur[2] = min(cur[2], fs)
            cur[3] = max(cur[3], ls)
    return out


def pair_sums(rows):
    """messages per (source_ip, policy_domain), computed in Python."""
    i_ip, i_dom, i_msg = (ROLLUP_FIELDS.index(f) for f in ("source_ip", "policy_domain", "messages"))
    out = {}
    for r in rows:
        k = (r[i_ip], r[i_dom])
        out[k] = out.get(k, 0) + r[i_msg]
    return out


def fmt_key(names, key):
    return " ".join("%s=%s" % (n, json.dumps(v)) for n, v in zip(names, key))


def diff_maps(expected, actual, names, measure_names, limit):
    """Lines describing the first `limit` differences between two key -> measures maps."""
    bad = []
    for k in sorted(set(expected) | set(actual), key=lambda k: json.dumps(k)):
        e, a = expected.get(k), actual.get(k)
        if e == a:
            continue
        if a is None:
            bad.append("  %s: expected %s, missing from the load" % (fmt_key(names, k), _fmt_measures(measure_names, e)))
        elif e is None:
            bad.append("  %s: not expected, loaded %s" % (fmt_key(names, k), _fmt_measures(measure_names, a)))
        else:
            bad.append("  %s: expected %s, loaded %s" % (fmt_key(names, k), _fmt_measures(measure_names, e),
                                                        _fmt_measures(measure_names, a)))
    return len(bad), bad[:limit]


def _fmt_measures(names, vals):
    if not isinstance(vals, (list, tuple)):
        vals = (vals,)
    return ", ".join("%s %s" % (n, v) for n, v in zip(names, vals))


def load_rollups(db, inputs):
    rows = []
    for path in inputs:
        for where, text in read_lines(path):
            rows.append((where, parse_rollup(where, text)))
    sql = "INSERT INTO dmarc_rollups (%s) VALUES (%s)" % (", ".join(ROLLUP_FIELDS), ", ".join("?" * len(ROLLUP_FIELDS)))
    _insert(db, sql, rows)
    return [r for _, r in rows]


def load_reports(db, path):
    rows = [(where, parse_report(where, text)) for where, text in read_lines(path)]
    cols = tuple(REPORT_COLUMNS.values())
    sql = "INSERT INTO dmarc_reports (%s) VALUES (%s)" % (", ".join(cols), ", ".join("?" * len(cols)))
    _insert(db, sql, rows)
    return len(rows)


def _insert(db, sql, rows):
    try:
        with db:
            db.executemany(sql, (r for _, r in rows))
    except sqlite3.Error:
        # executemany does not say which row SQLite refused: find it, then undo.
        for where, r in rows:
            try:
                db.execute(sql, r)
            except sqlite3.Error as e:
                db.rollback()
                raise InputError("%s: SQLite refused the row: %s" % (where, e))
        db.rollback()
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Load dmarcpipe rollups (NDJSON, schema v2 or v1) into SQLite and check them.")
    ap.add_argument("inputs", nargs="*", default=["-"], metavar="FILE",
                    help="rollup NDJSON files; '-' or none for stdin")
    ap.add_argument("--expect-messages", type=int, metavar="N",
                    help="the total of messages that must be loaded")
    ap.add_argument("--reference", metavar="FILE",
                    help="rollup NDJSON to compare with, e.g. the file sink's output")
    ap.add_argument("--reference-key", choices=("pair", "full"), default="pair",
                    help="compare messages per (source_ip, policy_domain) (pair, the default), "
                         "or every measure per merged rollup key (full)")
    ap.add_argument("--reports", metavar="FILE",
                    help="reports-feed NDJSON: load it and reconcile messages per (reporter, policy_domain)")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA, help="SQLite schema (default: %(default)s)")
    ap.add_argument("--db", default=":memory:",
                    help="SQLite database to create; it must not exist yet (default: in memory)")
    ap.add_argument("--max-diffs", type=int, default=10, metavar="N",
                    help="mismatches to show per failed check (default: %(default)s)")
    args = ap.parse_args(argv)

    if args.db != ":memory:" and os.path.exists(args.db):
        ap.error("--db %s already exists; give a new path" % args.db)
    if (args.inputs + [args.reference, args.reports]).count("-") > 1:
        ap.error("stdin ('-') can be read only once")

    db = sqlite3.connect(args.db)
    try:
        with open(args.schema, encoding="utf-8") as f:
            db.executescript(f.read())
        return run_checks(db, args)
    except InputError as e:
        print("FAIL input: %s" % e)
        return 1
    except OSError as e:
        print("FAIL: %s" % e)
        return 1
    except sqlite3.Error as e:
        print("FAIL sqlite: %s" % e)
        return 1
    finally:
        db.close()


def run_checks(db, args):
    rows = load_rollups(db, args.inputs)
    failures = []  # (title, total mismatches, shown lines)
    done = []

    n_loaded, total_msg, total_rec = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(messages), 0), COALESCE(SUM(records), 0) FROM dmarc_rollups").fetchone()
    if n_loaded != len(rows):
        failures.append(("row count", 1, ["  read %d lines, the table holds %d rows" % (len(rows), n_loaded)]))

    # Total messages against the expected figure.
    if args.expect_messages is not None:
        if total_msg != args.expect_messages:
            failures.append(("total messages", 1, [
                "  expected %d, loaded %d (%+d)" % (args.expect_messages, total_msg, total_msg - args.expect_messages)]))
        else:
            done.append("total=%d" % total_msg)

    # Merge: the view against a Python merge of the same lines, and against plain sums.
    py_merged = merge(rows)
    key_cols = ", ".join(ROLLUP_KEY)
    view = {}
    dup_keys = 0
    for r in db.execute("SELECT %s, messages, records, first_seen, last_seen FROM dmarc_rollups_merged" % key_cols):
        k = tuple(r[:len(ROLLUP_KEY)])
        if k in view:
            dup_keys += 1
        view[k] = list(r[len(ROLLUP_KEY):])
    n, shown = diff_maps(py_merged, view, ROLLUP_KEY, ROLLUP_MEASURES, args.max_diffs)
    if dup_keys:
        shown.insert(0, "  the view returned %d keys more than once" % dup_keys)
        n += dup_keys
    v_msg, v_rec = db.execute(
        "SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(records), 0) FROM dmarc_rollups_merged").fetchone()
    if (v_msg, v_rec) != (total_msg, total_rec):
        n += 1
        shown.insert(0, "  plain SUM over dmarc_rollups gives messages %d, records %d; the merged view gives %d, %d"
                     % (total_msg, total_rec, v_msg, v_rec))
    plain_pairs = {(ip, dom): m for ip, dom, m in db.execute(
        "SELECT source_ip, policy_domain, SUM(messages) FROM dmarc_rollups GROUP BY source_ip, policy_domain")}
    view_pairs = {(ip, dom): m for ip, dom, m in db.execute(
        "SELECT source_ip, policy_domain, SUM(messages) FROM dmarc_rollups_merged GROUP BY source_ip, policy_domain")}
    pn, pshown = diff_maps(plain_pairs, view_pairs, ("source_ip", "policy_domain"), ("messages",), args.max_diffs)
    n += pn
    shown += pshown
    if n:
        failures.append(("merge (dmarc_rollups_merged against a merge in Python and plain sums)", n, shown))
    else:
        done.append("merge (%d rows -> %d keys)" % (len(rows), len(view)))

    # Reference file.
    if args.reference:
        ref_rows = [parse_rollup(where, text) for where, text in read_lines(args.reference)]
        if args.reference_key == "pair":
            expected = pair_sums(ref_rows)
            actual = plain_pairs  # SQL: SUM(messages) GROUP BY source_ip, policy_domain
            n, shown = diff_maps(expected, actual, ("source_ip", "policy_domain"), ("messages",), args.max_diffs)
            title = "reference %s: messages per (source_ip, policy_domain)" % args.reference
        else:
            expected = merge(ref_rows)
            n, shown = diff_maps(expected, view, ROLLUP_KEY, ROLLUP_MEASURES, args.max_diffs)
            title = "reference %s: measures per merged rollup key" % args.reference
        if n:
            failures.append((title, n, shown))
        else:
            done.append("reference %s (%d %s)" % (args.reference_key, len(expected),
                                                  "pairs" if args.reference_key == "pair" else "keys"))

    # Reports feed reconciliation.
    if args.reports:
        n_reports = load_reports(db, args.reports)
        bad = db.execute(
            "SELECT reporter, policy_domain, rollup_messages, report_messages FROM dmarc_reconcile "
            "ORDER BY reporter, policy_domain").fetchall()
        if bad:
            failures.append(("reconcile with reports %s: messages per (reporter, policy_domain)" % args.reports,
                             len(bad), ["  %s: reports say %d, rollups hold %d (%+d)"
                                        % (fmt_key(("reporter", "policy_domain"), b[:2]), b[3], b[2], b[2] - b[3])
                                        for b in bad[:args.max_diffs]]))
        else:
            n_latest = db.execute("SELECT COUNT(*) FROM dmarc_reports_latest").fetchone()[0]
            done.append("reconcile (%d reports, %d distinct)" % (n_reports, n_latest))

    if failures:
        for title, n, shown in failures:
            print("FAIL %s: %d mismatch%s%s" % (title, n, "" if n == 1 else "es",
                                                "; first %d:" % len(shown) if n > len(shown) else ":"))
            for line in shown:
                print(line)
        return 1
    print("ok: %d rollup lines, %d keys, %d messages, %d records; checks: %s"
          % (len(rows), len(view), total_msg, total_rec, ", ".join(done)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
