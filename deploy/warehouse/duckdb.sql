-- dmarcpipe warehouse schema for DuckDB (tested with 2.0): the two feeds as
-- tables, the same merge rule and views as sqlite.sql, and the insight
-- views (the classes and verdicts of `dmarcpipe report`) as table macros
-- that take the period.  For a laptop-sized look at a run's output:
--
--     duckdb dmarc.duckdb < deploy/warehouse/duckdb.sql
--     duckdb dmarc.duckdb
--     D INSERT INTO dmarc_rollups SELECT * FROM dmarc_read_rollups('dmarcpipe-out/rollups.ndjson');
--     D INSERT INTO dmarc_reports SELECT * FROM dmarc_read_reports('dmarcpipe-out/reports.ndjson');
--     D SELECT * FROM dmarc_domain_readiness('2026-11-07', '2026-12-06');
--
-- dmarc_read_rollups / dmarc_read_reports read the feed's NDJSON with its
-- exact field names and types (a glob reads many files), so a line with a
-- field of the wrong type stops the load instead of loading as NULL.
--
-- Like SQLite, DuckDB has no merging table engine: dmarc_rollups keeps
-- every partial rollup as it arrived and dmarc_rollups_merged merges them
-- by key.  Times are Unix seconds (BIGINT), as in the feed; days are UTC
-- days, computed from the seconds (never through a TIMESTAMPTZ, whose day
-- would be the session time zone's).  Counts are UBIGINT, like the feed;
-- their sums are HUGEINT and do not wrap.

---------------------------------------------------------------------------
-- Rollups (topic dmarc.rollups), schema version 2 (1 loads too: its lines
-- lack the source_* columns, which read as NULL), one row per partial rollup
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS dmarc_rollups (
    v              UTINYINT NOT NULL CHECK (v IN (1, 2)),
    window_start   BIGINT   NOT NULL,      -- UTC window [window_start, window_end)
    window_end     BIGINT   NOT NULL,
    reporter       VARCHAR,                -- report org_name
    policy_domain  VARCHAR,                -- policy_published domain
    header_from    VARCHAR,
    source_ip      VARCHAR  NOT NULL,      -- canonical text form; IPv4-mapped IPv6 is IPv4
    disposition    VARCHAR,                -- policy_evaluated
    dkim           VARCHAR,                -- policy_evaluated: aligned DKIM pass/fail
    spf            VARCHAR,                -- policy_evaluated: aligned SPF pass/fail
    override       VARCHAR,                -- reason types, sorted, joined by ','
    dkim_domain    VARCHAR,
    dkim_selector  VARCHAR,
    dkim_result    VARCHAR,
    spf_domain     VARCHAR,
    spf_result     VARCHAR,
    source_ptr          VARCHAR,           -- who source_ip is (v2): not part of the key
    source_base_domain  VARCHAR,
    source_asn          UINTEGER,
    source_as_org       VARCHAR,
    source_country      VARCHAR,
    source_service      VARCHAR,
    source_service_type VARCHAR,
    messages       UBIGINT  NOT NULL,      -- sum, sum, min, max when merged
    records        UBIGINT  NOT NULL,
    first_seen     BIGINT   NOT NULL,
    last_seen      BIGINT   NOT NULL,
    CHECK (window_start < window_end),
    CHECK (window_start <= first_seen AND first_seen <= last_seen AND last_seen < window_end)
);

-- The feed's lines, typed, in the table's column order.
CREATE MACRO IF NOT EXISTS dmarc_read_rollups(path) AS TABLE
SELECT v, window_start, window_end, reporter, policy_domain, header_from, source_ip,
       disposition, dkim, spf, override, dkim_domain, dkim_selector, dkim_result,
       spf_domain, spf_result, source_ptr, source_base_domain, source_asn, source_as_org,
       source_country, source_service, source_service_type, messages, records, first_seen, last_seen
FROM read_json(path, format = 'newline_delimited',
               columns = {v: 'UTINYINT', window_start: 'BIGINT', window_end: 'BIGINT',
                          reporter: 'VARCHAR', policy_domain: 'VARCHAR', header_from: 'VARCHAR',
                          source_ip: 'VARCHAR', disposition: 'VARCHAR', dkim: 'VARCHAR',
                          spf: 'VARCHAR', override: 'VARCHAR', dkim_domain: 'VARCHAR',
                          dkim_selector: 'VARCHAR', dkim_result: 'VARCHAR', spf_domain: 'VARCHAR',
                          spf_result: 'VARCHAR', source_ptr: 'VARCHAR', source_base_domain: 'VARCHAR',
                          source_asn: 'UINTEGER', source_as_org: 'VARCHAR', source_country: 'VARCHAR',
                          source_service: 'VARCHAR', source_service_type: 'VARCHAR',
                          messages: 'UBIGINT', records: 'UBIGINT',
                          first_seen: 'BIGINT', last_seen: 'BIGINT'});

-- Partial rollups merged by their full key (GROUP BY puts NULLs in one
-- group: an absent value is a key value like any other).  `parts` counts
-- the partial rows behind each merged row.  The source_* columns are not
-- part of the key: a merged row takes a non-NULL value of its parts (MAX
-- skips NULLs), so a part flushed before the lookup ended does not hide
-- the answer a later part carries.
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
    v                        UTINYINT NOT NULL CHECK (v = 1),
    sha256                   VARCHAR  NOT NULL CHECK (length(sha256) = 64),  -- of the report's XML
    input                    VARCHAR,
    part                     VARCHAR,
    report_schema            VARCHAR,   -- draft, rfc7489 or rfc9990
    version                  VARCHAR,
    org_name                 VARCHAR,
    email                    VARCHAR,
    extra_contact_info       VARCHAR,
    report_id                VARCHAR,
    date_begin               BIGINT   NOT NULL,
    date_end                 BIGINT   NOT NULL,
    generator                VARCHAR,
    errors                   VARCHAR[] NOT NULL,
    policy_domain            VARCHAR,
    policy_adkim             VARCHAR,
    policy_aspf              VARCHAR,
    policy_p                 VARCHAR,
    policy_sp                VARCHAR,
    policy_np                VARCHAR,
    policy_pct               UTINYINT CHECK (policy_pct <= 100),
    policy_fo                VARCHAR,
    policy_testing           VARCHAR,
    policy_discovery_method  VARCHAR,
    policy_psd               VARCHAR,
    records                  UBIGINT  NOT NULL,
    messages                 UBIGINT  NOT NULL,
    xml_bytes                UBIGINT  NOT NULL,
    CHECK (date_begin <= date_end)
);

CREATE MACRO IF NOT EXISTS dmarc_read_reports(path) AS TABLE
SELECT v, sha256, input, part, "schema" AS report_schema, version, org_name, email,
       extra_contact_info, report_id, "begin" AS date_begin, "end" AS date_end, generator,
       errors, policy_domain, policy_adkim, policy_aspf, policy_p, policy_sp, policy_np,
       policy_pct, policy_fo, policy_testing, policy_discovery_method, policy_psd,
       records, messages, xml_bytes
FROM read_json(path, format = 'newline_delimited',
               columns = {v: 'UTINYINT', sha256: 'VARCHAR', input: 'VARCHAR', part: 'VARCHAR',
                          "schema": 'VARCHAR', version: 'VARCHAR', org_name: 'VARCHAR',
                          email: 'VARCHAR', extra_contact_info: 'VARCHAR', report_id: 'VARCHAR',
                          "begin": 'BIGINT', "end": 'BIGINT', generator: 'VARCHAR',
                          errors: 'VARCHAR[]', policy_domain: 'VARCHAR', policy_adkim: 'VARCHAR',
                          policy_aspf: 'VARCHAR', policy_p: 'VARCHAR', policy_sp: 'VARCHAR',
                          policy_np: 'VARCHAR', policy_pct: 'UTINYINT', policy_fo: 'VARCHAR',
                          policy_testing: 'VARCHAR', policy_discovery_method: 'VARCHAR',
                          policy_psd: 'VARCHAR', records: 'UBIGINT', messages: 'UBIGINT',
                          xml_bytes: 'UBIGINT'});

-- One row per report identity (org_name + report_id + policy_domain +
-- begin, dmarcpipe's dedup identity); the first copy loaded wins.
CREATE VIEW IF NOT EXISTS dmarc_reports_latest AS
SELECT * EXCLUDE (rn)
FROM (
    SELECT *, row_number() OVER (PARTITION BY org_name, report_id, policy_domain, date_begin
                                 ORDER BY rowid) AS rn
    FROM dmarc_reports
)
WHERE rn = 1;

-- Reconciliation: per (reporter, policy_domain) the rollups' messages must
-- equal the reports' messages; a row here means rollups were lost or
-- counted twice.
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
GROUP BY reporter, policy_domain
HAVING SUM(rollup_messages) <> SUM(report_messages);

---------------------------------------------------------------------------
-- Insight: the classes and verdicts of `dmarcpipe report`, in SQL
--
-- The definitions are insight/README.md's ("Definitions"), and these must
-- say what `dmarcpipe report --format json --from F --to T` says of the
-- same feeds (tests/insight/warehouse_agree.py compares them).  The
-- period is the macros' two first arguments, dates, inclusive; the
-- thresholds are named arguments with the command's defaults:
--
--     SELECT * FROM dmarc_domain_readiness('2026-11-07', '2026-12-06');
--     SELECT * FROM dmarc_domain_readiness('2026-11-07', '2026-12-06',
--                                          ready_threshold := 0.95, min_days := 14);
--     SELECT * FROM dmarc_source_classes('2026-11-07', '2026-12-06')
--     WHERE policy_domain = 'example.com' ORDER BY third_party DESC, messages DESC;
---------------------------------------------------------------------------

-- Each merged rollup with its domain, its UTC day and its class.  The
-- domain is compared as the DNS and the command compare it: lowercased
-- (ASCII only, as the command does: translate, not lower), without a
-- trailing dot; a rollup whose report named no policy domain counts under
-- its header_from, and one with neither is left out of the views below.
-- The class is the first that holds: aligned (policy_evaluated dkim or spf
-- pass), forwarded (an override of forwarded, mailing_list or
-- trusted_forwarder), third_party (dkim_result or spf_result pass),
-- unauthenticated.  NULL (absent) is not pass.
CREATE VIEW IF NOT EXISTS dmarc_rollup_classes AS
SELECT
    *,
    regexp_replace(translate(coalesce(nullif(policy_domain, ''), coalesce(header_from, '')),
                             'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                   '[.]$', '') AS domain,
    DATE '1970-01-01' + CAST(window_start // 86400 AS INTEGER) AS day,
    CASE
        WHEN coalesce(dkim, '') = 'pass' OR coalesce(spf, '') = 'pass' THEN 'aligned'
        WHEN instr(',' || coalesce(override, '') || ',', ',forwarded,') > 0
          OR instr(',' || coalesce(override, '') || ',', ',mailing_list,') > 0
          OR instr(',' || coalesce(override, '') || ',', ',trusted_forwarder,') > 0 THEN 'forwarded'
        WHEN coalesce(dkim_result, '') = 'pass' OR coalesce(spf_result, '') = 'pass' THEN 'third_party'
        ELSE 'unauthenticated'
    END AS class
FROM dmarc_rollups_merged;

-- Per domain and day: messages per class, and those whose
-- policy_evaluated dkim / spf passed.
CREATE VIEW IF NOT EXISTS dmarc_domain_classes AS
SELECT
    domain AS policy_domain,
    day,
    SUM(messages)                                                 AS messages,
    SUM(CASE WHEN class = 'aligned' THEN messages ELSE 0 END)         AS aligned,
    SUM(CASE WHEN class = 'forwarded' THEN messages ELSE 0 END)       AS forwarded,
    SUM(CASE WHEN class = 'third_party' THEN messages ELSE 0 END)     AS third_party,
    SUM(CASE WHEN class = 'unauthenticated' THEN messages ELSE 0 END) AS unauthenticated,
    SUM(CASE WHEN coalesce(dkim, '') = 'pass' THEN messages ELSE 0 END) AS dkim_aligned,
    SUM(CASE WHEN coalesce(spf, '') = 'pass' THEN messages ELSE 0 END)  AS spf_aligned
FROM dmarc_rollup_classes
WHERE domain <> ''
GROUP BY domain, day;

-- Per domain and source_ip over the period: messages per class and the
-- source's class, the one with most messages (ties: aligned, forwarded,
-- third_party, unauthenticated, in that order).  A source whose rollups
-- hold no messages (records with a count of 0) is not listed.
CREATE MACRO IF NOT EXISTS dmarc_source_classes(period_from, period_to) AS TABLE
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
        domain AS policy_domain,
        source_ip,
        SUM(messages)                                                 AS messages,
        SUM(CASE WHEN class = 'aligned' THEN messages ELSE 0 END)         AS aligned,
        SUM(CASE WHEN class = 'forwarded' THEN messages ELSE 0 END)       AS forwarded,
        SUM(CASE WHEN class = 'third_party' THEN messages ELSE 0 END)     AS third_party,
        SUM(CASE WHEN class = 'unauthenticated' THEN messages ELSE 0 END) AS unauthenticated,
        MIN(first_seen)                                               AS first_seen,
        MAX(last_seen)                                                AS last_seen
    FROM dmarc_rollup_classes
    WHERE domain <> '' AND day BETWEEN CAST(period_from AS DATE) AND CAST(period_to AS DATE)
    GROUP BY domain, source_ip
    HAVING SUM(messages) > 0
);

-- The reports feed's rows with their domain compared as above; the
-- policy and the domains of dmarc_domain_readiness come from here.
CREATE VIEW IF NOT EXISTS dmarc_insight_reports AS
SELECT
    regexp_replace(translate(coalesce(policy_domain, ''),
                             'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                   '[.]$', '') AS policy_domain,
    sha256, org_name, report_id, date_begin, date_end,
    policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf, policy_testing
FROM dmarc_reports;

-- Per domain over the period: the classes, the latest published policy
-- and the readiness verdict; README.md here says what each column is (as
-- dmarc_domain_readiness in sqlite.sql does).  The domains are those with
-- rollups or reports in the period or the previous one (as many days,
-- just before).  days_with_reports counts the days with messages.  The
-- latest policy is the report's with the greatest date_begin on or before
-- period_to (ties: greatest sha256), over every row of dmarc_reports.
CREATE MACRO IF NOT EXISTS dmarc_domain_readiness(period_from, period_to,
                                                  ready_threshold := 0.98, min_days := 7,
                                                  min_messages := 100) AS TABLE
WITH
    p AS (
        -- the period as day numbers (days since 1970-01-01), and its predecessor
        SELECT
            CAST(period_from AS DATE)                       AS period_from,
            CAST(period_to AS DATE)                         AS period_to,
            CAST(period_from AS DATE) - DATE '1970-01-01'   AS f,
            CAST(period_to AS DATE) - DATE '1970-01-01'     AS t,
            2 * (CAST(period_from AS DATE) - DATE '1970-01-01')
              - (CAST(period_to AS DATE) - DATE '1970-01-01') - 1 AS prev_f
    ),
    d AS (
        SELECT domain AS policy_domain FROM dmarc_rollup_classes, p
        WHERE domain <> '' AND window_start // 86400 BETWEEN p.prev_f AND p.t
        UNION
        SELECT policy_domain FROM dmarc_insight_reports, p
        WHERE policy_domain <> '' AND date_begin // 86400 BETWEEN p.prev_f AND p.t
    ),
    c AS (
        SELECT
            policy_domain,
            SUM(messages)        AS messages,
            SUM(aligned)         AS aligned,
            SUM(forwarded)       AS forwarded,
            SUM(third_party)     AS third_party,
            SUM(unauthenticated) AS unauthenticated,
            SUM(dkim_aligned)    AS dkim_aligned,
            SUM(spf_aligned)     AS spf_aligned,
            COUNT(*) FILTER (WHERE messages > 0) AS days_with_reports
        FROM dmarc_domain_classes, p
        WHERE day BETWEEN p.period_from AND p.period_to
        GROUP BY policy_domain
    ),
    lp AS (
        SELECT * FROM (
            SELECT
                policy_domain, policy_p, policy_sp, policy_np, policy_pct, policy_adkim,
                policy_aspf, policy_testing,
                DATE '1970-01-01' + CAST(date_begin // 86400 AS INTEGER) AS policy_as_of,
                row_number() OVER (PARTITION BY policy_domain ORDER BY date_begin DESC, sha256 DESC) AS rn
            FROM dmarc_insight_reports, p
            WHERE policy_domain <> '' AND date_begin // 86400 <= p.t
        )
        WHERE rn = 1
    ),
    m AS (
        SELECT
            d.policy_domain,
            p.period_from,
            p.period_to,
            coalesce(c.messages, 0)                                AS messages,
            coalesce(c.aligned, 0)                                 AS aligned,
            coalesce(c.forwarded, 0)                               AS forwarded,
            coalesce(c.third_party, 0)                             AS third_party,
            coalesce(c.unauthenticated, 0)                         AS unauthenticated,
            coalesce(c.dkim_aligned, 0)                            AS dkim_aligned,
            coalesce(c.spf_aligned, 0)                             AS spf_aligned,
            coalesce(c.aligned + c.forwarded + c.third_party, 0)   AS legitimate,
            coalesce(c.days_with_reports, 0)                       AS days_with_reports,
            lp.policy_p, lp.policy_sp, lp.policy_np, lp.policy_pct, lp.policy_adkim,
            lp.policy_aspf, lp.policy_testing, lp.policy_as_of
        FROM d
        CROSS JOIN p
        LEFT JOIN c ON c.policy_domain = d.policy_domain
        LEFT JOIN lp ON lp.policy_domain = d.policy_domain
    ),
    v AS (
        SELECT
            *,
            CASE WHEN legitimate = 0 THEN NULL ELSE CAST(aligned AS DOUBLE) / CAST(legitimate AS DOUBLE) END
                                                               AS aligned_share,
            forwarded + third_party                            AS would_block_legitimate,
            unauthenticated                                    AS would_block_spoofed,
            CASE
                WHEN days_with_reports < min_days OR messages < min_messages THEN 'insufficient_data'
                WHEN coalesce(policy_p, '') = 'reject' AND coalesce(policy_pct, 100) = 100
                     AND coalesce(policy_testing, '') <> 'y' THEN 'enforced'
                WHEN legitimate = 0
                     OR CAST(aligned AS DOUBLE) / CAST(legitimate AS DOUBLE) >= ready_threshold THEN 'ready'
                ELSE 'fix_senders'
            END AS verdict
        FROM m
    )
SELECT
    policy_domain, period_from, period_to,
    messages, aligned, forwarded, third_party, unauthenticated, dkim_aligned, spf_aligned,
    legitimate, aligned_share, would_block_legitimate, would_block_spoofed, days_with_reports,
    policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf, policy_testing,
    policy_as_of,
    verdict,
    CASE
        WHEN verdict <> 'ready' THEN NULL
        WHEN policy_p = 'none' THEN 'quarantine'
        WHEN policy_p IN ('quarantine', 'reject') THEN 'reject'
    END AS next_step
FROM v;
