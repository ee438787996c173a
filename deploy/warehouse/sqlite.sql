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
-- Rollups (topic dmarc.rollups), schema version 1, one row per partial rollup
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS dmarc_rollups (
    v              INTEGER NOT NULL CHECK (v = 1),
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
-- `parts` counts the partial rows behind each merged row.
CREATE VIEW IF NOT EXISTS dmarc_rollups_merged AS
SELECT
    window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result,
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
