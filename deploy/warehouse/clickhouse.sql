-- dmarcpipe warehouse schema for ClickHouse: Kafka engine tables that read
-- the topics dmarc.rollups and dmarc.reports, the tables they land in, and
-- the materialized views between them.
--
--     clickhouse-client --multiquery < deploy/warehouse/clickhouse.sql
--
-- Before running it:
--   * replace the broker list 'kafka-1:9092,kafka-2:9092' (twice below);
--   * set the consumers' isolation level, see "Read committed" just below.
-- Written for ClickHouse 22.8 or later (kafka_handle_error_mode = 'stream',
-- allow_nullable_key, formatRowNoNewline); the insight views at the end are
-- parameterized views, which need 23.1 or later (tested on 26.9).
--
-- The Kafka part is the two Kafka engine tables (dmarc_rollups_queue,
-- dmarc_reports_queue) and the four materialized views that read them
-- (*_mv).  Everything else is plain tables and views: without Kafka (files
-- loaded with INSERT ... SELECT FROM file(), or chdb), run every statement
-- but those six.  tests/insight/warehouse_agree.py loads the file that way
-- into chdb (ClickHouse 26.9).
--
-- ---------------------------------------------------------------------------
-- Read committed
-- ---------------------------------------------------------------------------
-- dmarcpipe's Kafka sink (exactly once) publishes in Kafka
-- transactions, so that what one flush wrote becomes visible all together
-- or not at all.  A consumer that reads
-- uncommitted data sees the rollups of aborted transactions too, and the
-- warehouse counts them (then counts them again when the retry commits).
-- Every consumer of dmarc.rollups and dmarc.reports must therefore read with
-- isolation.level=read_committed.
--
-- The Kafka engine has no table-level SETTING for it (there is no
-- kafka_isolation_level); it takes librdkafka properties from the server
-- configuration, with '_' in place of '.'.  Put this in config.xml, or in a
-- file of its own under config.d/, and restart the server:
--
--     <clickhouse>
--         <kafka>
--             <!-- every Kafka engine table on this server -->
--             <isolation_level>read_committed</isolation_level>
--             <!-- or only these topics' consumers (the <kafka_topic> form of recent releases):
--             <consumer>
--                 <kafka_topic>
--                     <name>dmarc.rollups</name>
--                     <isolation_level>read_committed</isolation_level>
--                 </kafka_topic>
--                 <kafka_topic>
--                     <name>dmarc.reports</name>
--                     <isolation_level>read_committed</isolation_level>
--                 </kafka_topic>
--             </consumer> -->
--         </kafka>
--     </clickhouse>
--
-- librdkafka's own default happens to be read_committed, but set it anyway:
-- the default is one line of someone else's config away from changing (Java
-- clients default to read_uncommitted), and the setting documents the
-- contract.  Check it with `SELECT * FROM system.kafka_consumers` and the
-- server log (kafka <debug>conf</debug> prints the effective properties).
--
-- ---------------------------------------------------------------------------
-- Delivery into ClickHouse is at least once
-- ---------------------------------------------------------------------------
-- The Kafka engine commits offsets after the block reached the tables; a
-- crash in between replays the block, and a SummingMergeTree adds replayed
-- rollups twice.  The view dmarc_reconcile (at the end) finds that: every
-- message of a report lands in exactly one rollup, so per (reporter,
-- policy_domain) the rollups' messages must equal the reports' messages.
-- For exactly-once ingestion, use a Replicated*MergeTree with the
-- (experimental) kafka_keeper_path / kafka_replica_name Kafka engine, which
-- replays the same batches after a failure so that insert deduplication
-- drops them, or load through a connector that stores offsets with the data.
-- ---------------------------------------------------------------------------

CREATE DATABASE IF NOT EXISTS dmarc;

-- ===========================================================================
-- Rollups (topic dmarc.rollups; key policy_domain|source_ip; value: rollup
-- JSON, schema version 2, see the root README; version 1 lines load too,
-- their source_* columns NULL)
-- ===========================================================================

-- The merged rollups.  Rows with the same ORDER BY key are merged in the
-- background: messages and records are summed, first_seen takes the min and
-- last_seen the max (SimpleAggregateFunction columns are aggregated with
-- their function by SummingMergeTree; they must be listed in the columns
-- tuple, since a column that is not listed keeps an arbitrary value).
-- Merging is eventual: always query with GROUP BY and sum()/min()/max(), or
-- use dmarc_rollups_merged.
--
-- The source_* columns (what enrichment knew of source_ip) are not part of
-- the key: a rollup flushed before its lookup ended carries NULLs and a
-- later one of the same key the answer.  They are SimpleAggregateFunction
-- (anyLast), listed in the columns tuple, so a merge keeps a non-NULL value
-- (aggregate functions skip NULLs) whatever the order of the parts.
--
-- Types:
--   * times are DateTime('UTC'): seconds, 1970 to 2106.  A rollup outside
--     that range goes to kafka_rejected instead (see the views below).
--   * strings are Nullable: null (absent in the report) and '' differ, as
--     they do for dmarcpipe, and NULLs are a key value like any other
--     (allow_nullable_key).  LowCardinality where the values repeat a lot.
--   * source_ip is String, in dmarcpipe's canonical text form (IPv4 as
--     IPv4): it is the topic's message key, it joins with the file sink's
--     output as is, and isIPAddressInRange(source_ip, '192.0.2.0/24') works
--     on it.  (IPv6 would turn IPv4 into ::ffff:a.b.c.d.)
--   * messages and records are UInt64, like the feed.  SummingMergeTree
--     sums with overflow (wraps): dmarcpipe rejects a report whose own
--     total overflows, but nothing stops many reports from adding up.
--     It also drops a merged row whose messages and records are both 0;
--     dmarcpipe never emits one (a window whose share is 0 has no rollup).
CREATE TABLE IF NOT EXISTS dmarc.dmarc_rollups
(
    v              UInt8,                                  -- schema version, 1 or 2
    window_start   DateTime('UTC'),                        -- [window_start, window_end)
    window_end     DateTime('UTC'),
    reporter       LowCardinality(Nullable(String)),       -- report org_name
    policy_domain  LowCardinality(Nullable(String)),
    header_from    Nullable(String),                       -- spoofers make this one diverse
    source_ip      String,
    disposition    LowCardinality(Nullable(String)),       -- policy_evaluated
    dkim           LowCardinality(Nullable(String)),       -- policy_evaluated (aligned)
    spf            LowCardinality(Nullable(String)),       -- policy_evaluated (aligned)
    override       LowCardinality(Nullable(String)),       -- reason types, sorted, ','-joined
    dkim_domain    Nullable(String),
    dkim_selector  Nullable(String),
    dkim_result    LowCardinality(Nullable(String)),
    spf_domain     Nullable(String),
    spf_result     LowCardinality(Nullable(String)),
    source_ptr          SimpleAggregateFunction(anyLast, Nullable(String)),
    source_base_domain  SimpleAggregateFunction(anyLast, Nullable(String)),
    source_asn          SimpleAggregateFunction(anyLast, Nullable(UInt32)),
    source_as_org       SimpleAggregateFunction(anyLast, Nullable(String)),
    source_country      SimpleAggregateFunction(anyLast, Nullable(String)),
    source_service      SimpleAggregateFunction(anyLast, Nullable(String)),
    source_service_type SimpleAggregateFunction(anyLast, Nullable(String)),
    messages       UInt64,
    records        UInt64,
    first_seen     SimpleAggregateFunction(min, DateTime('UTC')),
    last_seen      SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = SummingMergeTree((messages, records, first_seen, last_seen, source_ptr, source_base_domain, source_asn,
                           source_as_org, source_country, source_service, source_service_type))
PARTITION BY toYYYYMM(window_start)
-- The primary index is a prefix of the sorting key: the usual filters.
PRIMARY KEY (policy_domain, window_start, source_ip)
ORDER BY (policy_domain, window_start, source_ip, window_end, reporter, header_from,
          disposition, dkim, spf, override,
          dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result)
SETTINGS allow_nullable_key = 1;

-- Messages that cannot be loaded, from both topics, kept whole so that
-- nothing is dropped silently: unparseable JSON, an unknown field or schema
-- version, a missing required value, a time outside DateTime or out of
-- order.  (A message that parsed is re-encoded from its columns.)
CREATE TABLE IF NOT EXISTS dmarc.kafka_rejected
(
    received_at      DateTime('UTC'),
    topic            LowCardinality(String),
    kafka_partition  UInt64,
    kafka_offset     UInt64,
    kafka_key        String,
    error            String,
    raw              String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, kafka_partition, kafka_offset);

-- The consumer.  Columns have the feed's names (JSONEachRow matches by name)
-- and are all Nullable, so that a missing field reads as NULL and is caught
-- by the views below, instead of reading as 0 or ''.
CREATE TABLE IF NOT EXISTS dmarc.dmarc_rollups_queue
(
    v              Nullable(UInt8),
    window_start   Nullable(Int64),
    window_end     Nullable(Int64),
    reporter       Nullable(String),
    policy_domain  Nullable(String),
    header_from    Nullable(String),
    source_ip      Nullable(String),
    disposition    Nullable(String),
    dkim           Nullable(String),
    spf            Nullable(String),
    override       Nullable(String),
    dkim_domain    Nullable(String),
    dkim_selector  Nullable(String),
    dkim_result    Nullable(String),
    spf_domain     Nullable(String),
    spf_result     Nullable(String),
    source_ptr          Nullable(String),
    source_base_domain  Nullable(String),
    source_asn          Nullable(UInt32),
    source_as_org       Nullable(String),
    source_country      Nullable(String),
    source_service      Nullable(String),
    source_service_type Nullable(String),
    messages       Nullable(UInt64),
    records        Nullable(UInt64),
    first_seen     Nullable(Int64),
    last_seen      Nullable(Int64)
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = 'kafka-1:9092,kafka-2:9092',    -- placeholder: your brokers
    kafka_topic_list = 'dmarc.rollups',
    kafka_group_name = 'clickhouse-dmarc-rollups',       -- one group per topic and warehouse
    kafka_format = 'JSONEachRow',
    kafka_num_consumers = 1,                             -- up to the topic's partitions
    kafka_handle_error_mode = 'stream',                  -- bad messages -> _error/_raw_message
    input_format_skip_unknown_fields = 0;                -- a new field is an error, not dropped
    -- isolation.level=read_committed: see the top of this file.

-- Valid rollups into dmarc_rollups.  The conditions live in the subquery,
-- on the queue's raw columns: in ClickHouse a SELECT alias is visible in its
-- own WHERE, and the outer aliases reuse the column names.
-- KEEP THE CONDITION IN STEP with its negation in dmarc_rollups_rejected_mv.
CREATE MATERIALIZED VIEW IF NOT EXISTS dmarc.dmarc_rollups_mv TO dmarc.dmarc_rollups AS
SELECT
    assumeNotNull(v)                                 AS v,
    toDateTime(assumeNotNull(window_start), 'UTC')   AS window_start,
    toDateTime(assumeNotNull(window_end), 'UTC')     AS window_end,
    reporter, policy_domain, header_from,
    assumeNotNull(source_ip)                         AS source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result,
    source_ptr, source_base_domain, source_asn, source_as_org, source_country,
    source_service, source_service_type,
    assumeNotNull(messages)                          AS messages,
    assumeNotNull(records)                           AS records,
    toDateTime(assumeNotNull(first_seen), 'UTC')     AS first_seen,
    toDateTime(assumeNotNull(last_seen), 'UTC')      AS last_seen
FROM
(
    SELECT *
    FROM dmarc.dmarc_rollups_queue
    WHERE ifNull(
              length(_error) = 0
          AND v IN (1, 2)
          AND source_ip IS NOT NULL AND messages IS NOT NULL AND records IS NOT NULL
          AND window_start >= 0 AND window_end <= 4294967295
          AND window_start < window_end
          AND window_start <= first_seen AND first_seen <= last_seen AND last_seen < window_end,
          0)
);

-- Everything else into kafka_rejected: the same condition, negated.
CREATE MATERIALIZED VIEW IF NOT EXISTS dmarc.dmarc_rollups_rejected_mv TO dmarc.kafka_rejected AS
SELECT
    now('UTC')     AS received_at,
    _topic         AS topic,
    _partition     AS kafka_partition,
    _offset        AS kafka_offset,
    _key           AS kafka_key,
    if(length(_error) > 0, _error,
       'not a loadable rollup: unknown version, a missing value, or times out of range or order') AS error,
    if(length(_error) > 0, _raw_message,
       formatRowNoNewline('JSONEachRow', v, window_start, window_end, reporter, policy_domain,
                          header_from, source_ip, disposition, dkim, spf, override, dkim_domain,
                          dkim_selector, dkim_result, spf_domain, spf_result, source_ptr,
                          source_base_domain, source_asn, source_as_org, source_country, source_service,
                          source_service_type, messages, records, first_seen, last_seen)) AS raw
FROM dmarc.dmarc_rollups_queue
WHERE NOT ifNull(
              length(_error) = 0
          AND v IN (1, 2)
          AND source_ip IS NOT NULL AND messages IS NOT NULL AND records IS NOT NULL
          AND window_start >= 0 AND window_end <= 4294967295
          AND window_start < window_end
          AND window_start <= first_seen AND first_seen <= last_seen AND last_seen < window_end,
          0);

-- Partial rollups merged by key, whether or not the background merges have
-- run yet.  A convenience: for large scans, query dmarc_rollups with your
-- own WHERE and GROUP BY (as queries.sql does), so that the filter reaches
-- the primary index (policy_domain, window_start, source_ip).
CREATE VIEW IF NOT EXISTS dmarc.dmarc_rollups_merged AS
SELECT
    window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result,
    anyLast(source_ptr)          AS source_ptr,
    anyLast(source_base_domain)  AS source_base_domain,
    anyLast(source_asn)          AS source_asn,
    anyLast(source_as_org)       AS source_as_org,
    anyLast(source_country)      AS source_country,
    anyLast(source_service)      AS source_service,
    anyLast(source_service_type) AS source_service_type,
    sum(messages)   AS messages,
    sum(records)    AS records,
    min(first_seen) AS first_seen,
    max(last_seen)  AS last_seen,
    count()         AS parts
FROM dmarc.dmarc_rollups
GROUP BY
    window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result;

-- ===========================================================================
-- Reports feed (topic dmarc.reports; value: one JSON line per accepted report)
-- ===========================================================================

-- One row per report identity, as dmarcpipe defines it: org_name +
-- report_id + policy_domain + begin.  A second copy (the same report
-- published again, e.g. by a run without --state) replaces the first at
-- merge time; query with FINAL, or through dmarc_reports_latest.  Copies of
-- one identity carry the same content in practice; sha256 tells when not.
-- Renamed from the feed: schema -> report_schema, begin -> date_begin,
-- end -> date_end (keywords in some dialects; the same names everywhere).
CREATE TABLE IF NOT EXISTS dmarc.dmarc_reports
(
    v                        UInt8,
    sha256                   FixedString(64),                  -- of the report's XML, hex
    input                    Nullable(String),
    part                     Nullable(String),
    report_schema            LowCardinality(Nullable(String)), -- draft, rfc7489, rfc9990
    version                  LowCardinality(Nullable(String)),
    org_name                 LowCardinality(Nullable(String)),
    email                    LowCardinality(Nullable(String)),
    extra_contact_info       Nullable(String),
    report_id                Nullable(String),
    date_begin               DateTime('UTC'),
    date_end                 DateTime('UTC'),
    generator                LowCardinality(Nullable(String)),
    errors                   Array(String),
    policy_domain            LowCardinality(Nullable(String)),
    policy_adkim             LowCardinality(Nullable(String)),
    policy_aspf              LowCardinality(Nullable(String)),
    policy_p                 LowCardinality(Nullable(String)),
    policy_sp                LowCardinality(Nullable(String)),
    policy_np                LowCardinality(Nullable(String)),
    policy_pct               Nullable(UInt8),                  -- 0..100 (dmarcpipe drops others)
    policy_fo                LowCardinality(Nullable(String)),
    policy_testing           LowCardinality(Nullable(String)),
    policy_discovery_method  LowCardinality(Nullable(String)),
    policy_psd               LowCardinality(Nullable(String)),
    records                  UInt64,
    messages                 UInt64,
    xml_bytes                UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(date_begin)          -- date_begin is in the key: copies share a partition
ORDER BY (policy_domain, org_name, report_id, date_begin)
SETTINGS allow_nullable_key = 1;

CREATE TABLE IF NOT EXISTS dmarc.dmarc_reports_queue
(
    v                        Nullable(UInt8),
    sha256                   Nullable(String),
    input                    Nullable(String),
    part                     Nullable(String),
    `schema`                 Nullable(String),
    version                  Nullable(String),
    org_name                 Nullable(String),
    email                    Nullable(String),
    extra_contact_info       Nullable(String),
    report_id                Nullable(String),
    `begin`                  Nullable(Int64),
    `end`                    Nullable(Int64),
    generator                Nullable(String),
    errors                   Array(String),
    policy_domain            Nullable(String),
    policy_adkim             Nullable(String),
    policy_aspf              Nullable(String),
    policy_p                 Nullable(String),
    policy_sp                Nullable(String),
    policy_np                Nullable(String),
    policy_pct               Nullable(UInt8),
    policy_fo                Nullable(String),
    policy_testing           Nullable(String),
    policy_discovery_method  Nullable(String),
    policy_psd               Nullable(String),
    records                  Nullable(UInt64),
    messages                 Nullable(UInt64),
    xml_bytes                Nullable(UInt64)
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = 'kafka-1:9092,kafka-2:9092',    -- placeholder: your brokers
    kafka_topic_list = 'dmarc.reports',
    kafka_group_name = 'clickhouse-dmarc-reports',
    kafka_format = 'JSONEachRow',
    kafka_num_consumers = 1,
    kafka_handle_error_mode = 'stream',
    input_format_skip_unknown_fields = 0;
    -- isolation.level=read_committed: see the top of this file.

-- KEEP THE CONDITION IN STEP with its negation in dmarc_reports_rejected_mv.
CREATE MATERIALIZED VIEW IF NOT EXISTS dmarc.dmarc_reports_mv TO dmarc.dmarc_reports AS
SELECT
    assumeNotNull(v)                             AS v,
    toFixedString(assumeNotNull(sha256), 64)     AS sha256,
    input, part,
    `schema`                                     AS report_schema,
    version, org_name, email, extra_contact_info, report_id,
    toDateTime(assumeNotNull(`begin`), 'UTC')    AS date_begin,
    toDateTime(assumeNotNull(`end`), 'UTC')      AS date_end,
    generator, errors,
    policy_domain, policy_adkim, policy_aspf, policy_p, policy_sp, policy_np, policy_pct,
    policy_fo, policy_testing, policy_discovery_method, policy_psd,
    assumeNotNull(records)                       AS records,
    assumeNotNull(messages)                      AS messages,
    assumeNotNull(xml_bytes)                     AS xml_bytes
FROM
(
    SELECT *
    FROM dmarc.dmarc_reports_queue
    WHERE ifNull(
              length(_error) = 0
          AND v = 1
          AND length(sha256) = 64
          AND records IS NOT NULL AND messages IS NOT NULL AND xml_bytes IS NOT NULL
          AND `begin` >= 0 AND `end` <= 4294967295 AND `begin` <= `end`,
          0)
);

CREATE MATERIALIZED VIEW IF NOT EXISTS dmarc.dmarc_reports_rejected_mv TO dmarc.kafka_rejected AS
SELECT
    now('UTC')     AS received_at,
    _topic         AS topic,
    _partition     AS kafka_partition,
    _offset        AS kafka_offset,
    _key           AS kafka_key,
    if(length(_error) > 0, _error,
       'not a loadable v1 report line: unknown version, a missing value, or times out of range or order') AS error,
    if(length(_error) > 0, _raw_message,
       formatRowNoNewline('JSONEachRow', v, sha256, `begin`, `end`, org_name, report_id,
                          policy_domain, records, messages, xml_bytes)) AS raw
FROM dmarc.dmarc_reports_queue
WHERE NOT ifNull(
              length(_error) = 0
          AND v = 1
          AND length(sha256) = 64
          AND records IS NOT NULL AND messages IS NOT NULL AND xml_bytes IS NOT NULL
          AND `begin` >= 0 AND `end` <= 4294967295 AND `begin` <= `end`,
          0);

-- One row per report identity, whether or not the replacing merges ran.
CREATE VIEW IF NOT EXISTS dmarc.dmarc_reports_latest AS
SELECT * FROM dmarc.dmarc_reports FINAL;

-- Reconciliation: rows here mean rollups were lost or counted twice (a
-- replayed Kafka block, a run without --state that re-published reports).
-- Per (reporter, policy_domain): the rollups' messages against the reports'.
CREATE VIEW IF NOT EXISTS dmarc.dmarc_reconcile AS
SELECT
    reporter,
    policy_domain,
    sumIf(m, src = 'rollups') AS rollup_messages,
    sumIf(m, src = 'reports') AS report_messages
FROM
(
    SELECT 'rollups' AS src, reporter, policy_domain, sum(messages) AS m
    FROM dmarc.dmarc_rollups
    GROUP BY reporter, policy_domain
    UNION ALL
    SELECT 'reports' AS src, org_name AS reporter, policy_domain, sum(messages) AS m
    FROM dmarc.dmarc_reports FINAL
    GROUP BY org_name, policy_domain
)
GROUP BY reporter, policy_domain
HAVING rollup_messages != report_messages;

-- ===========================================================================
-- Insight: the classes and verdicts of `dmarcpipe report`, in SQL
-- ===========================================================================
-- The definitions are insight/README.md's ("Definitions"), and these views
-- say what `dmarcpipe report --format json --from F --to T` says of the
-- same feeds: tests/insight/warehouse_agree.py loads both feeds into
-- ClickHouse (chdb) and compares every domain and source with the command.
--
-- Days are UTC days of a rollup's window_start.  The period is the
-- parameter of the parameterized views, inclusive at both ends:
--
--     SELECT * FROM dmarc.dmarc_domain_readiness(from = '2026-11-07', to = '2026-12-06');
--     SELECT * FROM dmarc.dmarc_source_classes(from = '2026-11-07', to = '2026-12-06')
--     WHERE policy_domain = 'example.com' ORDER BY third_party DESC, messages DESC;
--
-- The thresholds are the view dmarc_insight_thresholds; change them with
-- CREATE OR REPLACE VIEW (see there).
--
-- Domains are compared as the DNS and the command compare them: lowercased
-- (ASCII), without a trailing dot; a rollup whose report named no policy
-- domain counts under its header_from, and one with neither is left out.

-- Each merged rollup with its domain (as above), its day and its class:
--   aligned          DMARC pass: policy_evaluated dkim or spf is pass;
--   forwarded        DMARC fail, an override of forwarded, mailing_list or
--                    trusted_forwarder (override is the ','-joined list);
--   third_party      DMARC fail, DKIM or SPF passed for another domain
--                    (dkim_result or spf_result is pass);
--   unauthenticated  DMARC fail, nothing passed.
-- The first that holds, in that order.  A NULL (absent) value is not pass.
CREATE VIEW IF NOT EXISTS dmarc.dmarc_rollup_classes AS
SELECT
    *,
    replaceRegexpOne(lower(ifNull(nullIf(policy_domain, ''), ifNull(header_from, ''))), '[.]$', '') AS domain,
    toDate(window_start) AS day,
    multiIf(ifNull(dkim, '') = 'pass' OR ifNull(spf, '') = 'pass', 'aligned',
            hasAny(splitByChar(',', ifNull(override, '')), ['forwarded', 'mailing_list', 'trusted_forwarder']),
            'forwarded',
            ifNull(dkim_result, '') = 'pass' OR ifNull(spf_result, '') = 'pass', 'third_party',
            'unauthenticated') AS class
FROM dmarc.dmarc_rollups_merged;

-- Per domain and day: messages per class, and those whose policy_evaluated
-- dkim / spf passed (the aligned rates' numerators).
-- (The raw columns are renamed first: in ClickHouse an alias is visible in
-- its whole SELECT, so `sum(messages) AS messages` next to
-- `sumIf(messages, ...)` would nest one aggregate in another.)
CREATE VIEW IF NOT EXISTS dmarc.dmarc_domain_classes AS
SELECT
    dom                                  AS policy_domain,
    day,
    sum(n)                               AS messages,
    sumIf(n, class = 'aligned')          AS aligned,
    sumIf(n, class = 'forwarded')        AS forwarded,
    sumIf(n, class = 'third_party')      AS third_party,
    sumIf(n, class = 'unauthenticated')  AS unauthenticated,
    sumIf(n, ifNull(dkim, '') = 'pass')  AS dkim_aligned,
    sumIf(n, ifNull(spf, '') = 'pass')   AS spf_aligned
FROM
(
    SELECT domain AS dom, day, class, dkim, spf, messages AS n
    FROM dmarc.dmarc_rollup_classes
    WHERE domain != ''
)
GROUP BY dom, day;

-- Per domain and source_ip over the period: messages per class, and the
-- source's class, the one with most messages (ties: aligned, forwarded,
-- third_party, unauthenticated, in that order).  A source whose rollups
-- hold no messages (records with a count of 0) is not listed.
CREATE VIEW IF NOT EXISTS dmarc.dmarc_source_classes AS
SELECT
    policy_domain,
    source_ip,
    messages, aligned, forwarded, third_party, unauthenticated,
    multiIf(aligned >= greatest(forwarded, third_party, unauthenticated), 'aligned',
            forwarded >= greatest(third_party, unauthenticated), 'forwarded',
            third_party >= unauthenticated, 'third_party',
            'unauthenticated') AS class,
    first_seen,
    last_seen
FROM
(
    SELECT
        dom                                  AS policy_domain,
        ip                                   AS source_ip,
        sum(n)                               AS messages,
        sumIf(n, class = 'aligned')          AS aligned,
        sumIf(n, class = 'forwarded')        AS forwarded,
        sumIf(n, class = 'third_party')      AS third_party,
        sumIf(n, class = 'unauthenticated')  AS unauthenticated,
        min(fs)                              AS first_seen,
        max(ls)                              AS last_seen
    FROM
    (
        SELECT domain AS dom, source_ip AS ip, class, messages AS n, first_seen AS fs, last_seen AS ls
        FROM dmarc.dmarc_rollup_classes
        WHERE domain != '' AND day >= {from:Date} AND day <= {to:Date}
    )
    GROUP BY dom, ip
    HAVING messages > 0
);

-- The thresholds of the verdict, `dmarcpipe report`'s defaults.  To use
-- others (as --ready-threshold, --min-days, --min-messages do):
--     CREATE OR REPLACE VIEW dmarc.dmarc_insight_thresholds AS
--     SELECT toFloat64(0.95) AS ready_threshold, toUInt64(14) AS min_days, toUInt64(1000) AS min_messages;
CREATE VIEW IF NOT EXISTS dmarc.dmarc_insight_thresholds AS
SELECT toFloat64(0.98) AS ready_threshold, toUInt64(7) AS min_days, toUInt64(100) AS min_messages;

-- The reports feed's rows with their domain compared as above; the
-- policy and the domains of dmarc_domain_readiness come from here.
CREATE VIEW IF NOT EXISTS dmarc.dmarc_insight_reports AS
SELECT
    replaceRegexpOne(lower(ifNull(policy_domain, '')), '[.]$', '') AS policy_domain,
    sha256, org_name, report_id, date_begin, date_end,
    policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf, policy_testing
FROM dmarc.dmarc_reports;

-- Per domain over the period [from, to]: the classes, the latest
-- published policy, and the readiness verdict.
--   * The domains are those with rollups or reports (by date_begin) in the
--     period or in the previous one (as many days, just before), as in the
--     command's report; a domain with nothing in the period has 0 messages.
--   * legitimate = aligned + forwarded + third_party;
--     would_block_legitimate = forwarded + third_party (what reject would
--     block of the domain's own mail); would_block_spoofed = unauthenticated.
--   * days_with_reports: distinct days in the period with messages.
--   * The latest policy is the one in the report with the greatest
--     date_begin on or before `to` (ties: the greatest sha256), over every
--     row of dmarc_reports (copies of a report say the same); its columns
--     are NULL when there is none.  policy_as_of is that report's day.
--   * verdict, the first that holds:
--       insufficient_data  fewer than min_days days with reports, or fewer
--                          than min_messages messages;
--       enforced           p=reject, pct 100 (none is 100), testing not y;
--       ready              aligned / legitimate >= ready_threshold, or no
--                          legitimate mail;
--       fix_senders        otherwise.
--   * next_step, for ready only: quarantine from p=none; reject from
--     p=quarantine, or from p=reject at pct < 100 or in testing; NULL
--     otherwise (and when no report carried a policy).
CREATE VIEW IF NOT EXISTS dmarc.dmarc_domain_readiness AS
WITH
    {from:Date}                                   AS period_from,
    {to:Date}                                     AS period_to,
    period_from - (period_to - period_from + 1)   AS prev_from
SELECT
    policy_domain,
    period_from,
    period_to,
    messages, aligned, forwarded, third_party, unauthenticated, dkim_aligned, spf_aligned,
    legitimate,
    if(legitimate = 0, NULL, aligned / legitimate)     AS aligned_share,
    forwarded + third_party                            AS would_block_legitimate,
    unauthenticated                                    AS would_block_spoofed,
    days_with_reports,
    policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf, policy_testing,
    policy_as_of,
    multiIf(days_with_reports < min_days OR messages < min_messages, 'insufficient_data',
            ifNull(policy_p, '') = 'reject' AND ifNull(policy_pct, 100) = 100
                AND ifNull(policy_testing, '') != 'y', 'enforced',
            legitimate = 0 OR aligned / legitimate >= ready_threshold, 'ready',
            'fix_senders') AS verdict,
    if(verdict = 'ready',
       multiIf(ifNull(policy_p, '') = 'none', 'quarantine',
               ifNull(policy_p, '') IN ('quarantine', 'reject'), 'reject',
               NULL),
       NULL) AS next_step
FROM
(
    SELECT DISTINCT policy_domain FROM
    (
        SELECT domain AS policy_domain FROM dmarc.dmarc_rollup_classes
        WHERE domain != '' AND day >= prev_from AND day <= period_to
        UNION ALL
        SELECT policy_domain FROM dmarc.dmarc_insight_reports
        WHERE policy_domain != '' AND toDate(date_begin) >= prev_from AND toDate(date_begin) <= period_to
    )
) AS d
LEFT JOIN
(
    SELECT
        policy_domain,
        sum(messages)         AS messages,
        sum(aligned)          AS aligned,
        sum(forwarded)        AS forwarded,
        sum(third_party)      AS third_party,
        sum(unauthenticated)  AS unauthenticated,
        sum(dkim_aligned)     AS dkim_aligned,
        sum(spf_aligned)      AS spf_aligned,
        aligned + forwarded + third_party AS legitimate,
        countIf(day_messages > 0) AS days_with_reports
    FROM
    (
        SELECT *, messages AS day_messages FROM dmarc.dmarc_domain_classes
        WHERE day >= period_from AND day <= period_to
    )
    GROUP BY policy_domain
) AS c USING (policy_domain)
LEFT JOIN
(
    -- (the tuple is taken apart outside: inside, `pol.1 AS policy_p` would
    -- make policy_p an alias of an expression that reads policy_p)
    SELECT
        policy_domain,
        pol.1 AS policy_p, pol.2 AS policy_sp, pol.3 AS policy_np, pol.4 AS policy_pct,
        pol.5 AS policy_adkim, pol.6 AS policy_aspf, pol.7 AS policy_testing,
        toNullable(pol.8) AS policy_as_of
    FROM
    (
        SELECT
            policy_domain,
            argMax(tuple(policy_p, policy_sp, policy_np, policy_pct, policy_adkim, policy_aspf,
                         policy_testing, toDate(date_begin)),
                   tuple(date_begin, sha256)) AS pol
        FROM dmarc.dmarc_insight_reports
        WHERE policy_domain != '' AND toDate(date_begin) <= period_to
        GROUP BY policy_domain
    )
) AS p USING (policy_domain)
CROSS JOIN dmarc.dmarc_insight_thresholds AS t
SETTINGS join_use_nulls = 0;
