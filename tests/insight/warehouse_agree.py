#!/usr/bin/env python3
"""The warehouse says what `dmarcpipe report` says.

deploy/warehouse/ defines the report's classes and verdicts in SQL, for
ClickHouse (clickhouse.sql), DuckDB (duckdb.sql) and SQLite (sqlite.sql).
This test makes sure those views and the command agree on the same feeds:

  1. tests/insight/gen_reports.py writes DMARC reports with planted
     senders of every class, every verdict and the edge cases between
     them; `dmarcpipe run` turns them into the two feeds;
  2. `dmarcpipe report --format json --from F --to T` reads the feeds, for
     a 30-day period and a 7-day one;
  3. the feeds are loaded into ClickHouse (chdb, with every statement of
     clickhouse.sql but the Kafka engine tables and the materialized
     views that read them), DuckDB and SQLite, each with its own schema
     file, once as written and once with every rollup split into three
     partial rollups (tests/warehouse/split_rollups.py), loaded without
     merging, so the views must merge by key;
  4. for every domain and every source, the views' figures must equal the
     report's: the domain list, messages per class and per day, the DKIM
     and SPF aligned rates, legitimate, would_block_legitimate,
     would_block_spoofed, days with reports, the latest policy and its
     day, the aligned share, the verdict and next_step; per source its
     messages per class, its majority class, first and last seen.

The data must reach every branch, or agreement proves little: the test
also fails when the report lacks a verdict, a next step, a source class or
a tie it was planted with.

    warehouse_agree.py --dmarcpipe PATH [--work DIR] [--warehouse DIR]

--warehouse reads the three SQL files from DIR instead of deploy/warehouse
(tests/insight/warehouse.sh breaks a copy to see the test fail).

Needs chdb and duckdb (tests/insight/warehouse.sh makes a venv with them).
Exit 0 with an "ok" line; 1 with the mismatches.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import chdb.session
import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
WAREHOUSE = os.path.join(ROOT, "deploy", "warehouse")  # --warehouse changes it
CLASSES = ("aligned", "forwarded", "third_party", "unauthenticated")
EPOCH = datetime.date(1970, 1, 1)

# The rollup feed's fields in order, with ClickHouse types for file().
ROLLUP_FIELDS = [
    ("v", "UInt8"), ("window_start", "Int64"), ("window_end", "Int64"),
    ("reporter", "Nullable(String)"), ("policy_domain", "Nullable(String)"),
    ("header_from", "Nullable(String)"), ("source_ip", "String"),
    ("disposition", "Nullable(String)"), ("dkim", "Nullable(String)"), ("spf", "Nullable(String)"),
    ("override", "Nullable(String)"), ("dkim_domain", "Nullable(String)"),
    ("dkim_selector", "Nullable(String)"), ("dkim_result", "Nullable(String)"),
    ("spf_domain", "Nullable(String)"), ("spf_result", "Nullable(String)"),
    ("source_ptr", "Nullable(String)"), ("source_base_domain", "Nullable(String)"),
    ("source_asn", "Nullable(UInt32)"), ("source_as_org", "Nullable(String)"),
    ("source_country", "Nullable(String)"), ("source_service", "Nullable(String)"),
    ("source_service_type", "Nullable(String)"),
    ("messages", "UInt64"), ("records", "UInt64"), ("first_seen", "Int64"), ("last_seen", "Int64"),
]
REPORT_FIELDS = [
    ("v", "UInt8"), ("sha256", "String"), ("input", "Nullable(String)"), ("part", "Nullable(String)"),
    ("schema", "Nullable(String)"), ("version", "Nullable(String)"), ("org_name", "Nullable(String)"),
    ("email", "Nullable(String)"), ("extra_contact_info", "Nullable(String)"),
    ("report_id", "Nullable(String)"), ("begin", "Int64"), ("end", "Int64"),
    ("generator", "Nullable(String)"), ("errors", "Array(String)"),
    ("policy_domain", "Nullable(String)"), ("policy_adkim", "Nullable(String)"),
    ("policy_aspf", "Nullable(String)"), ("policy_p", "Nullable(String)"),
    ("policy_sp", "Nullable(String)"), ("policy_np", "Nullable(String)"),
    ("policy_pct", "Nullable(UInt8)"), ("policy_fo", "Nullable(String)"),
    ("policy_testing", "Nullable(String)"), ("policy_discovery_method", "Nullable(String)"),
    ("policy_psd", "Nullable(String)"), ("records", "UInt64"), ("messages", "UInt64"),
    ("xml_bytes", "UInt64"),
]
REPORT_RENAMED = {"schema": "report_schema", "begin": "date_begin", "end": "date_end"}

POLICY_COLS = ("p", "sp", "np", "pct", "adkim", "aspf", "testing")

# What each engine is asked of dmarc_domain_readiness, in this order.
READINESS_COLS = ("policy_domain, messages, aligned, forwarded, third_party, unauthenticated, "
                  "dkim_aligned, spf_aligned, legitimate, aligned_share, would_block_legitimate, "
                  "would_block_spoofed, days_with_reports, policy_p, policy_sp, policy_np, policy_pct, "
                  "policy_adkim, policy_aspf, policy_testing, policy_as_of, verdict, next_step")
SOURCE_COLS = ("policy_domain, source_ip, messages, aligned, forwarded, third_party, unauthenticated, "
               "class, first_seen, last_seen")

# What clickhouse.sql's header says its Kafka part is: the rest must load
# without Kafka.
KAFKA_PART = ["dmarc.dmarc_rollups_queue", "dmarc.dmarc_reports_queue", "dmarc.dmarc_rollups_mv",
              "dmarc.dmarc_rollups_rejected_mv", "dmarc.dmarc_reports_mv", "dmarc.dmarc_reports_rejected_mv"]


def day_str(day):
    return (EPOCH + datetime.timedelta(days=day)).isoformat()


def iso_time(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------
# The SQL files
# ---------------------------------------------------------------------------

def sql_statements(text):
    """Statements of a SQL file: split on ';' outside strings, quoted
    names and comments; comments dropped."""
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'`\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c == ";":
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
        else:
            cur.append(c)
        i += 1
    s = "".join(cur).strip()
    if s:
        out.append(s)
    return out


def clickhouse_without_kafka():
    """clickhouse.sql less its Kafka part: the Kafka engine tables, and the
    materialized views that read them.  Returns (statements, skipped)."""
    stmts = sql_statements(open(os.path.join(WAREHOUSE, "clickhouse.sql"), encoding="utf-8").read())
    kafka = set()
    for s in stmts:
        m = re.match(r"CREATE TABLE (?:IF NOT EXISTS )?(\S+)", s)
        if m and re.search(r"\bENGINE\s*=\s*Kafka\b", s):
            kafka.add(m.group(1))
    keep, skipped = [], []
    for s in stmts:
        m = re.match(r"CREATE (?:TABLE|MATERIALIZED VIEW) (?:IF NOT EXISTS )?(\S+)", s)
        name = m.group(1) if m else None
        reads_kafka = s.startswith("CREATE MATERIALIZED VIEW") and any(
            re.search(r"\bFROM\s+" + re.escape(k) + r"\b", s) for k in kafka)
        if name in kafka or reads_kafka:
            skipped.append(name)
        else:
            keep.append(s)
    return keep, skipped


# ---------------------------------------------------------------------------
# The engines: each loads the feeds and answers three questions
# ---------------------------------------------------------------------------

class ClickHouse:
    name = "clickhouse"

    def __init__(self, work):
        self.s = chdb.session.Session(os.path.join(work, "chdb"))
        stmts, self.skipped = clickhouse_without_kafka()
        for st in stmts:
            self.s.query(st)

    def q(self, sql):
        res = self.s.query(sql, "JSONCompact")
        return [tuple(r) for r in json.loads(res.bytes() or b'{"data": []}')["data"]]

    def load(self, rollups, reports):
        struct = ", ".join("`%s` %s" % f for f in ROLLUP_FIELDS)
        times = ("window_start", "window_end", "first_seen", "last_seen")
        cols = ", ".join("toDateTime(`%s`, 'UTC')" % f if f in times else "`%s`" % f for f, _ in ROLLUP_FIELDS)
        # optimize_on_insert=0: partial rollups stay partial in the table,
        # so the views have to merge them
        self.s.query("INSERT INTO dmarc.dmarc_rollups SELECT %s FROM file(%s, 'JSONEachRow', %s) "
                     "SETTINGS optimize_on_insert = 0" % (cols, quote(rollups), quote(struct)))
        struct = ", ".join("`%s` %s" % f for f in REPORT_FIELDS)
        cols = []
        for f, _ in REPORT_FIELDS:
            if f in ("begin", "end"):
                cols.append("toDateTime(`%s`, 'UTC')" % f)
            elif f == "sha256":
                cols.append("toFixedString(sha256, 64)")
            else:
                cols.append("`%s`" % f)
        self.s.query("INSERT INTO dmarc.dmarc_reports (%s) SELECT %s FROM file(%s, 'JSONEachRow', %s)"
                     % (", ".join(REPORT_RENAMED.get(f, f) for f, _ in REPORT_FIELDS), ", ".join(cols),
                        quote(reports), quote(struct)))

    def rows(self):
        return self.q("SELECT (SELECT count() FROM dmarc.dmarc_rollups), "
                      "(SELECT count() FROM dmarc.dmarc_rollups_merged)")[0]

    def readiness(self, f, t, thr):
        # the thresholds are a view, replaced as the file's comment says
        self.s.query("CREATE OR REPLACE VIEW dmarc.dmarc_insight_thresholds AS SELECT toFloat64(%r) AS "
                     "ready_threshold, toUInt64(%d) AS min_days, toUInt64(%d) AS min_messages"
                     % (thr["ready_threshold"], thr["min_days"], thr["min_messages"]))
        cols = READINESS_COLS.replace("policy_as_of", "toString(policy_as_of)")
        return self.q("SELECT %s FROM dmarc.dmarc_domain_readiness(from = %s, to = %s)"
                      % (cols, quote(f), quote(t)))

    def daily(self, f, t):
        return self.q("SELECT policy_domain, toString(day), messages, aligned, forwarded, third_party, "
                      "unauthenticated FROM dmarc.dmarc_domain_classes WHERE day BETWEEN %s AND %s"
                      % (quote(f), quote(t)))

    def sources(self, f, t):
        cols = SOURCE_COLS.replace("first_seen, last_seen", "toUnixTimestamp(first_seen), toUnixTimestamp(last_seen)")
        return self.q("SELECT %s FROM dmarc.dmarc_source_classes(from = %s, to = %s)" % (cols, quote(f), quote(t)))

    def close(self):
        self.s.close()


class DuckDB:
    name = "duckdb"

    def __init__(self, work):
        self.c = duckdb.connect()
        self.c.execute(open(os.path.join(WAREHOUSE, "duckdb.sql"), encoding="utf-8").read())

    def q(self, sql, args=()):
        return [tuple(r) for r in self.c.execute(sql, list(args)).fetchall()]

    def load(self, rollups, reports):
        self.c.execute("INSERT INTO dmarc_rollups SELECT * FROM dmarc_read_rollups(%s)" % quote(rollups))
        self.c.execute("INSERT INTO dmarc_reports SELECT * FROM dmarc_read_reports(%s)" % quote(reports))

    def rows(self):
        return self.q("SELECT (SELECT count(*) FROM dmarc_rollups), "
                      "(SELECT count(*) FROM dmarc_rollups_merged)")[0]

    def readiness(self, f, t, thr):
        rows = self.q("SELECT %s FROM dmarc_domain_readiness(?, ?, ready_threshold := ?, min_days := ?, "
                      "min_messages := ?)" % READINESS_COLS,
                      (f, t, thr["ready_threshold"], thr["min_days"], thr["min_messages"]))
        return [r[:20] + (r[20] and r[20].isoformat(),) + r[21:] for r in rows]  # policy_as_of, a date

    def daily(self, f, t):
        return [(r[0], r[1].isoformat()) + r[2:] for r in self.q(
            "SELECT policy_domain, day, messages, aligned, forwarded, third_party, unauthenticated "
            "FROM dmarc_domain_classes WHERE day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)", (f, t))]

    def sources(self, f, t):
        return self.q("SELECT %s FROM dmarc_source_classes(?, ?)" % SOURCE_COLS, (f, t))

    def close(self):
        self.c.close()


class SQLite:
    name = "sqlite"

    def __init__(self, work):
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(open(os.path.join(WAREHOUSE, "sqlite.sql"), encoding="utf-8").read())

    def q(self, sql, args=()):
        return [tuple(r) for r in self.db.execute(sql, args).fetchall()]

    def insert(self, table, path, fields):
        names = [f for f, _ in fields]
        cols = ", ".join(REPORT_RENAMED.get(f, f) for f in names) if table == "dmarc_reports" else ", ".join(names)

        def row(o):
            if "errors" in o:
                o["errors"] = json.dumps(o["errors"])  # a JSON array, as sqlite.sql checks
            return [o[k] for k in names]
        with open(path, encoding="utf-8") as fh:
            self.db.executemany("INSERT INTO %s (%s) VALUES (%s)" % (table, cols, ", ".join("?" * len(names))),
                                (row(json.loads(line)) for line in fh if line.strip()))

    def load(self, rollups, reports):
        self.insert("dmarc_rollups", rollups, ROLLUP_FIELDS)
        self.insert("dmarc_reports", reports, REPORT_FIELDS)

    def rows(self):
        return self.q("SELECT (SELECT count(*) FROM dmarc_rollups), "
                      "(SELECT count(*) FROM dmarc_rollups_merged)")[0]

    def period(self, f, t, thr=None):
        self.db.execute("INSERT OR REPLACE INTO dmarc_insight_params (id, period_from, period_to) VALUES (1, ?, ?)",
                        (f, t))
        if thr:
            self.db.execute("UPDATE dmarc_insight_params SET ready_threshold = ?, min_days = ?, min_messages = ?",
                            (thr["ready_threshold"], thr["min_days"], thr["min_messages"]))

    def readiness(self, f, t, thr):
        self.period(f, t, thr)
        return self.q("SELECT %s FROM dmarc_domain_readiness" % READINESS_COLS)

    def daily(self, f, t):
        return self.q("SELECT policy_domain, day, messages, aligned, forwarded, third_party, unauthenticated "
                      "FROM dmarc_domain_classes WHERE day BETWEEN ? AND ?", (f, t))

    def sources(self, f, t):
        self.period(f, t)
        return self.q("SELECT %s FROM dmarc_source_classes" % SOURCE_COLS)

    def close(self):
        self.db.close()


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------

def rate(num, den):
    """A ratio as the report writes it (%.6g), or None for 0/0."""
    return None if not den else float("%.6g" % (float(num) / float(den)))


def json_rate(x):
    return None if x is None else float("%.6g" % x)


def label(case):
    f, t, thr = case
    return "%s..%s (%s/%s/%s)" % (f, t, thr["ready_threshold"], thr["min_days"], thr["min_messages"])


def compare(where, report, ready, daily, sources):
    """Mismatches between one engine's answers and the report, as lines
    that start with `where`."""
    bad = []

    def check(what, sql, rep):
        if sql != rep:
            bad.append("%s %s: sql %r, report %r" % (where, what, sql, rep))

    rep_domains = {d["domain"]: d for d in report["domains"]}
    sql_domains = {r[0]: r for r in ready}
    check("domains", sorted(sql_domains), sorted(rep_domains))
    by_day = {}
    for r in daily:
        by_day[(r[0], r[1])] = r[2:]
    by_source = {}
    for r in sources:
        by_source.setdefault(r[0], {})[r[1]] = r[2:]
    for name in sorted(set(sql_domains) & set(rep_domains)):
        d, r = rep_domains[name], sql_domains[name]
        (_, messages, aligned, forwarded, third_party, unauth, dkim_aligned, spf_aligned, legitimate,
         aligned_share, wbl, wbs, days, *pol) = r
        pol, as_of, verdict, next_step = pol[:7], pol[7], pol[8], pol[9]
        rd = d["readiness"]
        check(name + " messages", int(messages), d["messages"])
        check(name + " classes", [int(aligned), int(forwarded), int(third_party), int(unauth)],
              [d["classes"][c] for c in CLASSES])
        check(name + " dkim_aligned_rate", rate(dkim_aligned, messages), json_rate(d["dkim_aligned_rate"]))
        check(name + " spf_aligned_rate", rate(spf_aligned, messages), json_rate(d["spf_aligned_rate"]))
        check(name + " legitimate", int(legitimate), rd["legitimate"])
        check(name + " aligned_share", json_rate(aligned_share), json_rate(rd["aligned_share"]))
        check(name + " would_block_legitimate", int(wbl), rd["would_block_legitimate"])
        check(name + " would_block_spoofed", int(wbs), rd["would_block_spoofed"])
        check(name + " days_with_reports", int(days), d["days_with_reports"])
        check(name + " verdict", verdict, rd["verdict"])
        check(name + " next_step", next_step, rd["next_step"])
        # the report writes a value the report did not carry as null
        check(name + " policy", [None if v in (None, "") else v for v in pol],
              [d["policy"][k] for k in POLICY_COLS])
        check(name + " policy as_of", as_of, d["policy"]["as_of"])
        for day in d["daily"]:
            got = [int(x) for x in by_day.get((name, day["date"]), (0,) * 5)]
            check("%s daily %s" % (name, day["date"]), got,
                  [day["messages"]] + [day[c] for c in CLASSES])
        src = by_source.get(name, {})
        check(name + " sources", sorted(src), sorted(s["source_ip"] for s in d["sources"]))
        for s in d["sources"]:
            if s["source_ip"] not in src:
                continue
            m, a, f, tp, u, cls, first, last = src[s["source_ip"]]
            check("%s source %s" % (name, s["source_ip"]),
                  [int(m), int(a), int(f), int(tp), int(u), cls, iso_time(first), iso_time(last)],
                  [s["messages"]] + [s["classes"][c] for c in CLASSES] +
                  [s["class"], s["first_seen"], s["last_seen"]])
    # a day or a source the report does not have at all
    for (name, day) in by_day:
        if name not in rep_domains and any(by_day[(name, day)]):
            bad.append("%s daily: sql has %s %s, the report has no such domain" % (where, name, day))
    for name in by_source:
        if name not in rep_domains:
            bad.append("%s sources: sql has domain %s, the report has none" % (where, name))
    return bad


def coverage(report):
    """What the planted data must reach in the report, or the comparison is
    hollow: every verdict, every next step, every source class, the ties."""
    missing = []
    verdicts = {d["readiness"]["verdict"] for d in report["domains"]}
    for v in ("insufficient_data", "enforced", "ready", "fix_senders"):
        if v not in verdicts:
            missing.append("verdict " + v)
    steps = {d["readiness"]["next_step"] for d in report["domains"] if d["readiness"]["verdict"] == "ready"}
    for s in ("quarantine", "reject", None):
        if s not in steps:
            missing.append("ready with next_step %s" % s)
    sources = [s for d in report["domains"] for s in d["sources"]]
    for c in CLASSES:
        if not any(s["class"] == c for s in sources):
            missing.append("a source of class " + c)
        if not any(d["classes"][c] for d in report["domains"]):
            missing.append("messages of class " + c)
    ties = {s["class"] for s in sources
            if sorted(s["classes"].values())[-1] == sorted(s["classes"].values())[-2] > 0}
    for c in ("aligned", "forwarded", "third_party"):
        if c not in ties:
            missing.append("a source whose tie goes to " + c)
    if not any(d["readiness"]["aligned_share"] == 0.98 for d in report["domains"]):
        missing.append("an aligned share of exactly 0.98")
    return missing


def comparable(x):
    """A report part with its pass-domain lists sorted: the command lists
    those in the order it met them, which the split's shuffle changes."""
    if isinstance(x, list):
        return [comparable(v) for v in x]
    if isinstance(x, dict):
        return {k: sorted(v) if k.endswith("_pass_domains") else comparable(v) for k, v in x.items()}
    return x


def run_report(dmarcpipe, case, inputs):
    f, t, thr = case
    p = subprocess.run([dmarcpipe, "report", "--format", "json", "--from", f, "--to", t,
                        "--ready-threshold", repr(thr["ready_threshold"]), "--min-days", str(thr["min_days"]),
                        "--min-messages", str(thr["min_messages"])] + inputs,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit("FAIL dmarcpipe report exited %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dmarcpipe", required=True)
    ap.add_argument("--work", help="work in DIR and keep it (default: a temporary folder, removed)")
    ap.add_argument("--warehouse", help="the SQL files' folder (default: deploy/warehouse)")
    args = ap.parse_args()
    if args.warehouse:
        global WAREHOUSE
        WAREHOUSE = os.path.abspath(args.warehouse)
    dmarcpipe = os.path.abspath(args.dmarcpipe)
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="warehouse_agree.")
    if args.work:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    try:
        return agree(dmarcpipe, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def agree(dmarcpipe, work):
    gen = subprocess.run([sys.executable, os.path.join(HERE, "gen_reports.py"), os.path.join(work, "xml")],
                         check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    layout = dict(kv.split("=") for kv in gen.split())
    feed = os.path.join(work, "feed")
    os.makedirs(feed)
    rollups, reports = os.path.join(feed, "rollups.ndjson"), os.path.join(feed, "reports.ndjson")
    p = subprocess.run([dmarcpipe, "run", "--sink", "file:" + rollups, "--reports", reports,
                        "--quarantine", os.path.join(work, "quarantine"), os.path.join(work, "xml")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit("FAIL dmarcpipe run exited %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    # every rollup as three partial rollups with its key, shuffled
    split = os.path.join(work, "rollups-split.ndjson")
    with open(split, "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "warehouse", "split_rollups.py"),
                        "--parts", "3", "--seed", "7", rollups], check=True, stdout=out)
    n_lines = sum(1 for line in open(rollups, encoding="utf-8") if line.strip())
    n_split = sum(1 for line in open(split, encoding="utf-8") if line.strip())

    # the cases: the 30-day period and a 7-day one at its end, with the
    # command's default thresholds; the 30 days again with others
    defaults = {"ready_threshold": 0.98, "min_days": 7, "min_messages": 100}
    others = {"ready_threshold": 0.95, "min_days": 14, "min_messages": 1000}
    cases = [(layout["from"], layout["to"], defaults), (layout["short_from"], layout["to"], defaults),
             (layout["from"], layout["to"], others)]
    reports_json = []
    problems = []
    for case in cases:
        rep = run_report(dmarcpipe, case, [feed])
        reports_json.append(rep)
        # the command itself sums partial rollups: the split feed must give
        # the same report (the warehouse is held to the command, so the
        # command must be right about merging too)
        again = run_report(dmarcpipe, case, [split, reports])
        for k in ("period", "totals", "domains"):
            if comparable(rep[k]) != comparable(again[k]):
                problems.append("dmarcpipe report %s: %s differ between the feed and its split" % (label(case), k))
    for m in coverage(reports_json[0]):
        problems.append("the planted data does not reach: " + m)
    if [d["readiness"]["verdict"] for d in reports_json[0]["domains"]] == \
            [d["readiness"]["verdict"] for d in reports_json[2]["domains"]]:
        problems.append("the planted data gives the same verdicts under other thresholds")

    for variant, path, want_rows in (("whole", rollups, n_lines), ("split", split, n_split)):
        for cls in (ClickHouse, DuckDB, SQLite):
            eng = cls(work if cls is not ClickHouse else os.path.join(work, variant))
            try:
                if cls is ClickHouse and sorted(eng.skipped) != sorted(KAFKA_PART):
                    problems.append("clickhouse.sql: the Kafka part left out is %s; its header names %s"
                                    % (sorted(eng.skipped), sorted(KAFKA_PART)))
                eng.load(path, reports)
                rows, keys = eng.rows()
                # partial rollups stay partial in the table; the merged
                # view gives one row per key of the original feed
                if rows != want_rows or keys != n_lines:
                    problems.append("%s/%s: %s rows loaded and %s merged keys; want %d and %d"
                                    % (eng.name, variant, rows, keys, want_rows, n_lines))
                for case, rep in zip(cases, reports_json):
                    f, t, thr = case
                    problems += compare("%s/%s %s" % (eng.name, variant, label(case)), rep,
                                        eng.readiness(f, t, thr), eng.daily(f, t), eng.sources(f, t))
            finally:
                eng.close()

    if problems:
        for line in problems[:40]:
            print("FAIL " + line)
        if len(problems) > 40:
            print("... and %d more" % (len(problems) - 40))
        return 1
    rep = reports_json[0]
    print("ok: clickhouse (chdb), duckdb and sqlite agree with dmarcpipe report on %d domains, %d sources, "
          "%d messages; 2 periods, 2 sets of thresholds; %d rollups whole and as %d partial rollups"
          % (len(rep["domains"]), sum(len(d["sources"]) for d in rep["domains"]), rep["totals"]["messages"],
             n_lines, n_split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
