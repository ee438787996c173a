-- dmarcpipe warehouse schema for SQLite (3.37 or later: STRICT tables;
-- json_valid() is built in from 3.38).  Used by tests/warehouse/load_and_check.py
-- and handy for a laptop-sized look at the data:
--
--     sqlite3 dmarc.db < deploy/warehouse/sqlite.sql
--
-- It is the reference for the other dialects: the same columns, the same
-- merge rule, the same views.  SQLite has no merging table engine, so
-- dmarc_rollups keeps every partial rollup as it arrived and the view
-- dmarc_rollups_merged merges them by key.
--
-- Times are Unix seconds (INTEGER), as in the feed.  SQLite's INTEGER is a
-- signed 64-bit value: a count above 9223372036854775807 cannot be stored
-- (the loader rejects such a line by name), and SUM() over the table raises
-- "integer overflow" rather than wrapping.

---------------------------------------------------------------------------
-- Rollups (topic dmarc.rollups), schema version 2 (1 loads too: its lines
-- lack the source_* columns, which stay NULL), one row per partial rollup
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS dmarc_rollups (
    v              INTEGER NOT NULL CHECK (v IN (1, 2)),
    -- the key, in the order of the feed
    window_start   INTEGER NOT NULL,       -- UTC window [window_start, window_end)
    window_end     INTEGER NOT NULL,
    reporter       TEXT,                   -- report org_name
    policy_domain  TEXT,                   -- policy_published domain
    header_from    TEXT,
    source_ip      TEXT    NOT NULL,       -- canonical text form; IPv4-mapped IPv6 is IPv4
    disposition    TEXT,                   -- policy_evaluated
    dkim           TEXT,                   -- policy_evaluated: aligned DKIM pass/fail
    spf            TEXT,                   -- policy_evaluated: aligned SPF pass/fail
    override       TEXT,                   -- reason types, sorted, joined by ','
    dkim_domain    TEXT,
    dkim_selector  TEXT,
    dkim_result    TEXT,
    spf_domain     TEXT,
    spf_result     TEXT,
    -- who the source IP is (enrichment, v2): not part of the key; NULL
    -- where unknown, and in a rollup flushed before its lookup ended
    source_ptr          TEXT,
    source_base_domain  TEXT,
    source_asn          INTEGER,
    source_as_org       TEXT,
    source_country      TEXT,
    source_service      TEXT,
    source_service_type TEXT,
    -- the measures: sum, sum, min, max when merged
    messages       INTEGER NOT NULL CHECK (messages >= 0),
    records        INTEGER NOT NULL CHECK (records >= 0),
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    CHECK (window_start < window_end),
    CHECK (window_start <= first_seen AND first_seen <= last_seen AND last_seen < window_end)
) STRICT;

-- The common filters: a domain over a period, and one source's traffic.
CREATE INDEX IF NOT EXISTS dmarc_rollups_domain_window
    ON dmarc_rollups (policy_domain, window_start);
CREATE INDEX IF NOT EXISTS dmarc_rollups_source
    ON dmarc_rollups (source_ip, policy_domain);

-- Partial rollups merged by their full key: what a SummingMergeTree holds
-- once its merges are done.  GROUP BY puts NULLs in one group, so an
-- absent value is a key value like any other, as it is for dmarcpipe.
-- `parts` counts the partial rows behind each merged row.  The source_*
-- columns are not part of the key: a merged row takes a non-NULL value of
-- its parts (MAX skips NULLs), so a part flushed before the lookup ended
-- does not hide the answer a later part carries.
CREATE VIEW IF NOT EXISTS dmarc_rollups_merged AS
SELECT
    window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result,
    MAX(source_ptr)          AS source_ptr,
    MAX(source_base_domain)  AS source_base_domain,
    MAX(source_asn)          AS source_asn,
    MAX(source_as_org)       AS source_as_org,
    MAX(source_country)      AS source_country,
    MAX(source_service)      AS source_service,
    MAX(source_service_type) AS source_service_type,
    SUM(messages)   AS messages,
    SUM(records)    AS records,
    MIN(first_seen) AS first_seen,
    MAX(last_seen)  AS last_seen,
    COUNT(*)        AS parts
FROM dmarc_rollups
GROUP BY
    window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result;

---------------------------------------------------------------------------
-- Reports feed (topic dmarc.reports), one row per accepted report as it arrived
--
-- Renamed from the feed, as keywords in some dialects:
--   schema -> report_schema, begin -> date_begin, end -> date_end.
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS dmarc_reports (
    v                        INTEGER NOT NULL CHECK (v = 1),
    sha256                   TEXT    NOT NULL CHECK (length(sha256) = 64),  -- of the report's XML
    input                    TEXT,
    part                     TEXT,
    report_schema            TEXT,   -- draft, rfc7489 or rfc9990
    version                  TEXT,
    org_name                 TEXT,
    email                    TEXT,
    extra_contact_info       TEXT,
    report_id                TEXT,
    date_begin               INTEGER NOT NULL,
    date_end                 INTEGER NOT NULL,
    generator                TEXT,
    errors                   TEXT    NOT NULL CHECK (json_valid(errors) AND json_type(errors) = 'array'),
    policy_domain            TEXT,
    policy_adkim             TEXT,
    policy_aspf              TEXT,
    policy_p                 TEXT,
    policy_sp                TEXT,
    policy_np                TEXT,
    policy_pct               INTEGER CHECK (policy_pct BETWEEN 0 AND 100),
    policy_fo                TEXT,
    policy_testing           TEXT,
    policy_discovery_method  TEXT,
    policy_psd               TEXT,
    records                  INTEGER NOT NULL CHECK (records >= 0),
    messages                 INTEGER NOT NULL CHECK (messages >= 0),
    xml_bytes                INTEGER NOT NULL CHECK (xml_bytes >= 0),
    CHECK (date_begin <= date_end)
) STRICT;

CREATE INDEX IF NOT EXISTS dmarc_reports_identity
    ON dmarc_reports (policy_domain, org_name, report_id, date_begin);

-- One row per report identity (org_name + report_id + policy_domain +
-- begin, dmarcpipe's dedup identity); the first copy that arrived wins, as
-- the first copy in input order is the one dmarcpipe counts.
CREATE VIEW IF NOT EXISTS dmarc_reports_latest AS
SELECT *
FROM dmarc_reports
WHERE rowid IN (
    SELECT MIN(rowid)
    FROM dmarc_reports
    GROUP BY org_name, report_id, policy_domain, date_begin
);

-- Reconciliation: every message of a counted report lands in exactly one
-- rollup window, so per (reporter, policy_domain) the rollups' messages
-- must equal the reports' messages.  A row here means rollups were lost
-- or double-counted (e.g. an at-least-once consumer replayed a batch).
CREATE VIEW IF NOT EXISTS dmarc_reconcile AS
SELECT
    reporter,
    policy_domain,
    SUM(rollup_messages) AS rollup_messages,
    SUM(report_messages) AS report_messages
FROM (
    SELECT reporter, policy_domain, messages AS rollup_messages, 0 AS report_messages
    FROM dmarc_rollups
    UNION ALL
    SELECT org_name, policy_domain, 0, messages
    FROM dmarc_reports_latest
)
GROUP BY reporter, policy_domain   -- NULLs group together
HAVING SUM(rollup_messages) <> SUM(report_messages);

---------------------------------------------------------------------------
-- Insight: the classes and verdicts of `dmarcpipe report`, in SQL
--
-- The definitions are insight/README.md's ("Definitions"), and these views
-- must say what `dmarcpipe report --format json --from F --to T` says of
-- the same feeds (tests/insight/warehouse_agree.py compares them).  Days
-- are UTC days ('YYYY-MM-DD') of a rollup's window_start.
--
-- The period and the thresholds are the one row of dmarc_insight_params;
-- the views that take a period return nothing until it is set:
--
--     INSERT OR REPLACE INTO dmarc_insight_params (id, period_from, period_to)
--     VALUES (1, '2026-11-07', '2026-12-06');
--     SELECT * FROM dmarc_domain_readiness;
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS dmarc_insight_params (
    id               INTEGER PRIMARY KEY CHECK (id = 1),   -- one row
    period_from      TEXT    NOT NULL CHECK (date(period_from) IS period_from),  -- inclusive
    period_to        TEXT    NOT NULL CHECK (date(period_to) IS period_to AND period_to >= period_from),
    -- the command's defaults (--ready-threshold, --min-days, --min-messages)
    ready_threshold  REAL    NOT NULL DEFAULT 0.98,
    min_days         INTEGER NOT NULL DEFAULT 7,
    min_messages     INTEGER NOT NULL DEFAULT 100
) STRICT;

-- The period in Unix seconds, [start, end), and the previous period's
-- start (as many days, just before).
CREATE VIEW IF NOT EXISTS dmarc_insight_period AS
SELECT
    period_from, period_to, ready_threshold, min_days, min_messages,
    CAST(strftime('%s', period_from) AS INTEGER)              AS period_start,
    CAST(strftime('%s', period_to) AS INTEGER) + 86400        AS period_end,
    2 * CAST(strftime('%s', period_from) AS INTEGER)
      - CAST(strftime('%s', period_to) AS INTEGER) - 86400    AS prev_start
FROM dmarc_insight_params
WHERE id = 1;

-- Each merged rollup with its domain, its UTC day and its class.  The
-- domain is compared as the DNS and the command compare it: lowercased
-- (ASCII), without a trailing dot; a rollup whose report named no policy
-- domain counts under its header_from, and one with neither is left out
-- of the views below.  The class is the first that holds:
--   aligned          DMARC pass: policy_evaluated dkim or spf is pass;
--   forwarded        DMARC fail, an override of forwarded, mailing_list or
--                    trusted_forwarder (override is the ','-joined list);
--   third_party      DMARC fail, DKIM or SPF passed for another domain
--                    (dkim_result or spf_result is pass);
--   unauthenticated  DMARC fail, nothing passed.
-- NULL (absent) is not pass.
CREATE VIEW IF NOT EXISTS dmarc_rollup_classes AS
SELECT
    *,
    -- lowercased, one trailing dot dropped (a comparison is 0 or 1 here)
    substr(lower(IFNULL(NULLIF(policy_domain, ''), IFNULL(header_from, ''))), 1,
           length(IFNULL(NULLIF(policy_domain, ''), IFNULL(header_from, '')))
           - (substr(IFNULL(NULLIF(policy_domain, ''), IFNULL(header_from, '')), -1) = '.')) AS domain,
    date(window_start, 'unixepoch') AS day,
    CASE
        WHEN IFNULL(dkim, '') = 'pass' OR IFNULL(spf, '') = 'pass' THEN 'aligned'
        WHEN instr(',' || IFNULL(override, '') || ',', ',forwarded,') > 0
          OR instr(',' || IFNULL(override, '') || ',', ',mailing_list,') > 0
          OR instr(',' || IFNULL(override, '') || ',', ',trusted_forwarder,') > 0 THEN 'forwarded'
        WHEN IFNULL(dkim_result, '') = 'pass' OR IFNULL(spf_result, '') = 'pass' THEN 'third_party'
        ELSE 'unauthenticated'
    END AS class
FROM dmarc_rollups_merged;

-- Per domain and day: messages per class, and those whose
-- policy_evaluated dkim / spf passed.
CREATE VIEW IF NOT EXISTS dmarc_domain_classes AS
SELECT
    domain AS policy_domain,
    day,
    SUM(messages)                                                   AS messages,
    SUM(CASE WHEN class = 'aligned' THEN messages ELSE 0 END)         AS aligned,
    SUM(CASE WHEN class = 'forwarded' THEN messages ELSE 0 END)       AS forwarded,
    SUM(CASE WHEN class = 'third_party' THEN messages ELSE 0 END)     AS third_party,
    SUM(CASE WHEN class = 'unauthenticated' THEN messages ELSE 0 END) AS unauthenticated,
    SUM(CASE WHEN IFNULL(dkim, '') = 'pass' THEN messages ELSE 0 END) AS dkim_aligned,
    SUM(CASE WHEN IFNULL(spf, '') = 'pass' THEN messages ELSE 0 END)  AS spf_aligned
FROM dmarc_rollup_classes
WHERE domain <> ''
GROUP BY domain, day;

-- Per domain and source_ip over the period: messages per class and the
-- source's class, the one with most messages (ties: aligned, forwarded,
-- third_party, unauthenticated, in that order).  A source whose rollups
-- hold no messages (records with a count of 0) is not listed.
CREATE VIEW IF NOT EXISTS dmarc_source_classes AS
SELECT
    policy_domain, source_ip, messages, aligned, forwarded, third_party, unauthenticated,
    CASE
        WHEN aligned >= forwarded AND aligned >= third_party AND aligned >= unauthenticated THEN 'aligned'
        WHEN forwarded >= third_party AND forwarded >= unauthenticated THEN 'forwarded'
        WHEN third_party >= unauthenticated THEN 'third_party'
        ELSE 'unauthenticated'
    END AS class,
    first_seen, last_seen
FROM (
    SELECT
        r.domain AS policy_domain,
        r.source_ip,
        SUM(r.messages)                                                       AS messages,
        SUM(CASE WHEN r.class = 'aligned' THEN r.messages ELSE 0 END)         AS aligned,
        SUM(CASE WHEN r.class = 'forwarded' THEN r.messages ELSE 0 END)       AS forwarded,
        SUM(CASE WHEN r.class = 'third_party' THEN r.messages ELSE 0 END)     AS third_party,
        SUM(CASE WHEN r.class = 'unauthenticated' THEN r.messages ELSE 0 END) AS unauthenticated,
        MIN(r.first_seen)                                                     AS first_seen,
        MAX(r.last_seen)                                                      AS last_seen
    FROM dmarc_rollup_classes AS r
    JOIN dmarc_insight_period AS p
      ON r.window_start >= p.period_start AND r.window_start < p.period_end
    WHERE r.domain <> ''
    GROUP BY r.domain, r.source_ip
    HAVING SUM(r.messages) > 0
);

-- The reports feed's rows with their domain compared as above; the
-- policy and the domains of dmarc_domain_readiness come from here.
CREATE VIEW IF NOT EXISTS dmarc_insight_reports AS
SELECT
    substr(lower(IFNULL(policy_domain, '')), 1,
           length(IFNULL(policy_domain, '')) - (substr(IFNULL(policy_domain, ''), -1) = '.')) AS policy_domain,
    sha256, org_name, report_id, date_begin, date_end,
    policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf, policy_testing
FROM dmarc_reports;

-- Per domain over the period: the classes, the latest published policy
-- and the readiness verdict.
--   * The domains are those with rollups or reports (by date_begin) in the
--     period or the previous one, as in the command's report; a domain
--     with nothing in the period has 0 messages.
--   * legitimate = aligned + forwarded + third_party;
--     would_block_legitimate = forwarded + third_party (what reject would
--     block of the domain's own mail); would_block_spoofed = unauthenticated.
--   * days_with_reports: distinct days in the period with messages.
--   * The latest policy is the one in the report with the greatest
--     date_begin on or before period_to (ties: the greatest sha256), over
--     every row of dmarc_reports (copies of a report say the same); NULL
--     when there is none.  policy_as_of is that report's day.
--   * verdict, the first that holds: insufficient_data (fewer than
--     min_days days with reports or min_messages messages); enforced
--     (p=reject, pct 100 or none, testing not y); ready (aligned /
--     legitimate >= ready_threshold, or no legitimate mail); fix_senders.
--   * next_step, for ready only: quarantine from p=none; reject from
--     p=quarantine or p=reject (at pct < 100 or in testing); else NULL.
CREATE VIEW IF NOT EXISTS dmarc_domain_readiness AS
WITH
    d AS (
        SELECT r.domain AS policy_domain FROM dmarc_rollup_classes AS r, dmarc_insight_period AS p
        WHERE r.domain <> '' AND r.window_start >= p.prev_start AND r.window_start < p.period_end
        UNION
        SELECT r.policy_domain FROM dmarc_insight_reports AS r, dmarc_insight_period AS p
        WHERE r.policy_domain <> '' AND r.date_begin >= p.prev_start AND r.date_begin < p.period_end
    ),
    c AS (
        SELECT
            c.policy_domain,
            SUM(c.messages)        AS messages,
            SUM(c.aligned)         AS aligned,
            SUM(c.forwarded)       AS forwarded,
            SUM(c.third_party)     AS third_party,
            SUM(c.unauthenticated) AS unauthenticated,
            SUM(c.dkim_aligned)    AS dkim_aligned,
            SUM(c.spf_aligned)     AS spf_aligned,
            SUM(c.messages > 0)    AS days_with_reports
        FROM dmarc_domain_classes AS c, dmarc_insight_period AS p
        WHERE c.day BETWEEN p.period_from AND p.period_to
        GROUP BY c.policy_domain
    ),
    lp AS (
        SELECT * FROM (
            SELECT
                r.policy_domain, r.policy_p, r.policy_sp, r.policy_np, r.policy_pct,
                r.policy_adkim, r.policy_aspf, r.policy_testing,
                date(r.date_begin, 'unixepoch') AS policy_as_of,
                ROW_NUMBER() OVER (PARTITION BY r.policy_domain
                                   ORDER BY r.date_begin DESC, r.sha256 DESC) AS rn
            FROM dmarc_insight_reports AS r, dmarc_insight_period AS p
            WHERE r.policy_domain <> '' AND r.date_begin < p.period_end
        )
        WHERE rn = 1
    ),
    m AS (
        SELECT
            d.policy_domain,
            p.period_from,
            p.period_to,
            p.ready_threshold, p.min_days, p.min_messages,
            IFNULL(c.messages, 0)                                AS messages,
            IFNULL(c.aligned, 0)                                 AS aligned,
            IFNULL(c.forwarded, 0)                               AS forwarded,
            IFNULL(c.third_party, 0)                             AS third_party,
            IFNULL(c.unauthenticated, 0)                         AS unauthenticated,
            IFNULL(c.dkim_aligned, 0)                            AS dkim_aligned,
            IFNULL(c.spf_aligned, 0)                             AS spf_aligned,
            IFNULL(c.aligned + c.forwarded + c.third_party, 0)   AS legitimate,
            IFNULL(c.days_with_reports, 0)                       AS days_with_reports,
            lp.policy_p, lp.policy_sp, lp.policy_np, lp.policy_pct, lp.policy_adkim,
            lp.policy_aspf, lp.policy_testing, lp.policy_as_of
        FROM d
        CROSS JOIN dmarc_insight_period AS p
        LEFT JOIN c ON c.policy_domain = d.policy_domain
        LEFT JOIN lp ON lp.policy_domain = d.policy_domain
    ),
    v AS (
        SELECT
            *,
            CASE
                WHEN days_with_reports < min_days OR messages < min_messages THEN 'insufficient_data'
                WHEN IFNULL(policy_p, '') = 'reject' AND IFNULL(policy_pct, 100) = 100
                     AND IFNULL(policy_testing, '') <> 'y' THEN 'enforced'
                WHEN legitimate = 0
                     OR CAST(aligned AS REAL) / legitimate >= ready_threshold THEN 'ready'
                ELSE 'fix_senders'
            END AS verdict
        FROM m
    )
SELECT
    policy_domain, period_from, period_to,
    messages, aligned, forwarded, third_party, unauthenticated, dkim_aligned, spf_aligned,
    legitimate,
    CASE WHEN legitimate = 0 THEN NULL ELSE CAST(aligned AS REAL) / legitimate END AS aligned_share,
    forwarded + third_party AS would_block_legitimate,
    unauthenticated         AS would_block_spoofed,
    days_with_reports,
    policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf, policy_testing,
    policy_as_of,
    verdict,
    CASE
        WHEN verdict <> 'ready' THEN NULL
        WHEN policy_p = 'none' THEN 'quarantine'
        WHEN policy_p IN ('quarantine', 'reject') THEN 'reject'
    END AS next_step
FROM v;
