-- dmarcpipe warehouse schema for BigQuery (GoogleSQL).
--
--     bq query --use_legacy_sql=false < deploy/warehouse/bigquery.sql
--
-- Replace the dataset `dmarc` with `PROJECT.DATASET` if it is not your
-- default.  Create the dataset first: bq mk --dataset PROJECT:dmarc
--
-- Layout (the same as clickhouse.sql and sqlite.sql):
--   rollups_raw / reports_raw   staging tables with the feed's exact JSON
--                               shape, written by `bq load` or a connector
--   rollups / reports           typed tables, partitioned and clustered
--   rollups_merged              partial rollups merged by key
--   reports_latest              one row per report identity
--   reconcile                   rollups against the reports feed
--
-- Loading
-- -------
-- The feed writes times as Unix seconds.  Rows land first in a staging
-- table of the feed's exact JSON shape (INT64 times), and an INSERT ...
-- SELECT at the end of this file moves them into the typed tables, with
-- TIMESTAMP_SECONDS.
--
-- Files (the file sink's NDJSON): load into an emptied staging table, then
-- run the move once (it moves every staged row without Kafka coordinates
-- each time it runs):
--     bq load --replace --source_format=NEWLINE_DELIMITED_JSON dmarc.rollups_raw rollups.ndjson
--     bq load --replace --source_format=NEWLINE_DELIMITED_JSON dmarc.reports_raw reports.ndjson
--
-- Kafka: a Kafka Connect BigQuery sink (e.g. the WePay/Confluent
-- connector) writes the staging tables, with the Kafka coordinates in
-- kafka_topic, kafka_partition and kafka_offset (the connector's
-- kafkaDataFieldName, or an SMT; keep the names in step with this file).
-- Schedule the move: it copies only the Kafka coordinates not moved yet,
-- so it can run as often as you like.  (Use one way or the other for a
-- dataset: a file load with --replace would drop staged connector rows.)
-- Kafka Connect consumers are Java clients, whose default is
-- isolation.level=read_uncommitted: they would load the rollups of aborted
-- transactions.  Set, on the worker:
--     consumer.isolation.level=read_committed
-- or per connector (the worker needs connector.client.config.override.policy=All):
--     consumer.override.isolation.level=read_committed
-- Connect sinks deliver at least once; rollups_merged and reports_latest
-- count a row that arrives twice with the same (topic, partition, offset)
-- once.

-- Types: INT64 for counts (signed: a count above 9223372036854775807 fails
-- the load; dmarcpipe counts are unsigned 64-bit, but no real report comes
-- near).  STRING NULL where the feed may write null: GROUP BY keeps NULL as
-- a key value of its own, as dmarcpipe does.

-- ===========================================================================
-- Rollups
-- ===========================================================================

-- Staging: the JSON as it is (v2; v1 lines leave the source_* columns
-- NULL), plus the Kafka coordinates when a
-- connector loads it.
CREATE TABLE IF NOT EXISTS dmarc.rollups_raw (
    v               INT64 NOT NULL,
    window_start    INT64 NOT NULL,     -- Unix seconds
    window_end      INT64 NOT NULL,
    reporter        STRING,
    policy_domain   STRING,
    header_from     STRING,
    source_ip       STRING NOT NULL,
    disposition     STRING,
    dkim            STRING,
    spf             STRING,
    override        STRING,
    dkim_domain     STRING,
    dkim_selector   STRING,
    dkim_result     STRING,
    spf_domain      STRING,
    spf_result      STRING,
    source_ptr          STRING,         -- who source_ip is (schema v2): not part of the key
    source_base_domain  STRING,
    source_asn          INT64,
    source_as_org       STRING,
    source_country      STRING,
    source_service      STRING,
    source_service_type STRING,
    messages        INT64 NOT NULL,
    records         INT64 NOT NULL,
    first_seen      INT64 NOT NULL,
    last_seen       INT64 NOT NULL,
    kafka_topic     STRING,
    kafka_partition INT64,
    kafka_offset    INT64
)
PARTITION BY _PARTITIONDATE
OPTIONS (
    description = 'dmarcpipe rollups, schema v2 (or v1), as loaded; moved to dmarc.rollups',
    partition_expiration_days = 30  -- run the move more often than this
);

-- One row per partial rollup, as delivered.  Monthly partitions (a daily
-- one would pass BigQuery's 4,000-partitions-per-job limit on a backfill of
-- a few years); clustered by the usual filters.
CREATE TABLE IF NOT EXISTS dmarc.rollups (
    v               INT64 NOT NULL,
    window_start    TIMESTAMP NOT NULL,  -- [window_start, window_end), UTC
    window_end      TIMESTAMP NOT NULL,
    reporter        STRING,              -- report org_name
    policy_domain   STRING,
    header_from     STRING,
    source_ip       STRING NOT NULL,     -- canonical text; IPv4 as IPv4
    disposition     STRING,              -- policy_evaluated
    dkim            STRING,              -- policy_evaluated (aligned)
    spf             STRING,              -- policy_evaluated (aligned)
    override        STRING,              -- reason types, sorted, ','-joined
    dkim_domain     STRING,
    dkim_selector   STRING,
    dkim_result     STRING,
    spf_domain      STRING,
    spf_result      STRING,
    source_ptr          STRING,         -- who source_ip is (schema v2): not part of the key
    source_base_domain  STRING,
    source_asn          INT64,
    source_as_org       STRING,
    source_country      STRING,
    source_service      STRING,
    source_service_type STRING,
    messages        INT64 NOT NULL,      -- sum when merging
    records         INT64 NOT NULL,      -- sum
    first_seen      TIMESTAMP NOT NULL,  -- min
    last_seen       TIMESTAMP NOT NULL,  -- max
    kafka_topic     STRING,              -- NULL for file loads
    kafka_partition INT64,
    kafka_offset    INT64,
    loaded_at       TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP()
)
PARTITION BY TIMESTAMP_TRUNC(window_start, MONTH)
CLUSTER BY policy_domain, source_ip, reporter
OPTIONS (description = 'dmarcpipe rollups (schema v2), partial: merge with dmarc.rollups_merged');

-- Partial rollups merged by their full key.  A row delivered twice from
-- Kafka (same topic, partition and offset) counts once.  The source_*
-- columns are not part of the key: a merged row takes a non-NULL value of
-- its parts (MAX skips NULLs), so a part flushed before the lookup ended
-- does not hide the answer a later part carries.
CREATE OR REPLACE VIEW dmarc.rollups_merged AS
WITH delivered AS (
    SELECT *
    FROM dmarc.rollups
    WHERE TRUE  -- BigQuery wants a WHERE, GROUP BY or HAVING beside QUALIFY
    QUALIFY kafka_offset IS NULL
         OR ROW_NUMBER() OVER (PARTITION BY kafka_topic, kafka_partition, kafka_offset
                               ORDER BY loaded_at) = 1
)
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
FROM delivered
GROUP BY
    window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override,
    dkim_domain, dkim_selector, dkim_result, spf_domain, spf_result;

-- ===========================================================================
-- Reports feed
-- Renamed from the feed: schema -> report_schema, begin -> date_begin,
-- end -> date_end (END is reserved in GoogleSQL).
-- ===========================================================================

CREATE TABLE IF NOT EXISTS dmarc.reports_raw (
    v                        INT64 NOT NULL,
    sha256                   STRING NOT NULL,
    input                    STRING,
    part                     STRING,
    `schema`                 STRING,
    version                  STRING,
    org_name                 STRING,
    email                    STRING,
    extra_contact_info       STRING,
    report_id                STRING,
    `begin`                  INT64 NOT NULL,
    `end`                    INT64 NOT NULL,
    generator                STRING,
    errors                   ARRAY<STRING>,
    policy_domain            STRING,
    policy_adkim             STRING,
    policy_aspf              STRING,
    policy_p                 STRING,
    policy_sp                STRING,
    policy_np                STRING,
    policy_pct               INT64,
    policy_fo                STRING,
    policy_testing           STRING,
    policy_discovery_method  STRING,
    policy_psd               STRING,
    records                  INT64 NOT NULL,
    messages                 INT64 NOT NULL,
    xml_bytes                INT64 NOT NULL,
    kafka_topic              STRING,
    kafka_partition          INT64,
    kafka_offset             INT64
)
PARTITION BY _PARTITIONDATE
OPTIONS (
    description = 'dmarcpipe reports feed, v1, as loaded; moved to dmarc.reports',
    partition_expiration_days = 30
);

CREATE TABLE IF NOT EXISTS dmarc.reports (
    v                        INT64 NOT NULL,
    sha256                   STRING NOT NULL,     -- of the report's XML, hex
    input                    STRING,
    part                     STRING,
    report_schema            STRING,              -- draft, rfc7489, rfc9990
    version                  STRING,
    org_name                 STRING,
    email                    STRING,
    extra_contact_info       STRING,
    report_id                STRING,
    date_begin               TIMESTAMP NOT NULL,
    date_end                 TIMESTAMP NOT NULL,
    generator                STRING,
    errors                   ARRAY<STRING>,
    policy_domain            STRING,
    policy_adkim             STRING,
    policy_aspf              STRING,
    policy_p                 STRING,
    policy_sp                STRING,
    policy_np                STRING,
    policy_pct               INT64,
    policy_fo                STRING,
    policy_testing           STRING,
    policy_discovery_method  STRING,
    policy_psd               STRING,
    records                  INT64 NOT NULL,
    messages                 INT64 NOT NULL,
    xml_bytes                INT64 NOT NULL,
    kafka_topic              STRING,
    kafka_partition          INT64,
    kafka_offset             INT64,
    loaded_at                TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP()
)
PARTITION BY TIMESTAMP_TRUNC(date_begin, MONTH)
CLUSTER BY policy_domain, org_name
OPTIONS (description = 'dmarcpipe reports feed (v1): one row per delivered copy; see dmarc.reports_latest');

-- One row per report identity (org_name + report_id + policy_domain +
-- begin, dmarcpipe's dedup identity); the first copy loaded wins.
CREATE OR REPLACE VIEW dmarc.reports_latest AS
SELECT *
FROM dmarc.reports
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY org_name, report_id, policy_domain, date_begin
    ORDER BY loaded_at, kafka_partition, kafka_offset) = 1;

-- Rows here mean rollups were lost or counted twice.  Every message of a
-- counted report lands in exactly one rollup: per (reporter,
-- policy_domain), the rollups' messages equal the reports'.
CREATE OR REPLACE VIEW dmarc.reconcile AS
SELECT
    reporter,
    policy_domain,
    SUM(rollup_messages) AS rollup_messages,
    SUM(report_messages) AS report_messages
FROM (
    SELECT reporter, policy_domain, messages AS rollup_messages, 0 AS report_messages
    FROM dmarc.rollups_merged
    UNION ALL
    SELECT org_name, policy_domain, 0, messages
    FROM dmarc.reports_latest
)
GROUP BY reporter, policy_domain   -- NULLs group together
HAVING SUM(rollup_messages) != SUM(report_messages);

-- ===========================================================================
-- The move: staged rows into the typed tables.  At setup there is nothing
-- staged and it moves nothing.  Rows with Kafka coordinates move once,
-- however often it runs; rows without (file loads) move every time.  Rows
-- of another schema version (v not 1 or 2) stay staged, to be looked at.
-- ===========================================================================
INSERT INTO dmarc.rollups (
    v, window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override, dkim_domain, dkim_selector, dkim_result,
    spf_domain, spf_result, source_ptr, source_base_domain, source_asn, source_as_org,
    source_country, source_service, source_service_type, messages, records, first_seen, last_seen,
    kafka_topic, kafka_partition, kafka_offset)
SELECT
    s.v, TIMESTAMP_SECONDS(s.window_start), TIMESTAMP_SECONDS(s.window_end),
    s.reporter, s.policy_domain, s.header_from, s.source_ip,
    s.disposition, s.dkim, s.spf, s.override,
    s.dkim_domain, s.dkim_selector, s.dkim_result, s.spf_domain, s.spf_result,
    s.source_ptr, s.source_base_domain, s.source_asn, s.source_as_org, s.source_country,
    s.source_service, s.source_service_type,
    s.messages, s.records, TIMESTAMP_SECONDS(s.first_seen), TIMESTAMP_SECONDS(s.last_seen),
    s.kafka_topic, s.kafka_partition, s.kafka_offset
FROM dmarc.rollups_raw AS s
LEFT JOIN (
    SELECT DISTINCT kafka_topic, kafka_partition, kafka_offset
    FROM dmarc.rollups
    WHERE kafka_offset IS NOT NULL
) AS moved
    ON  moved.kafka_topic = s.kafka_topic
    AND moved.kafka_partition = s.kafka_partition
    AND moved.kafka_offset = s.kafka_offset
WHERE s.v IN (1, 2)
  AND moved.kafka_offset IS NULL;   -- not moved yet (NULL coordinates never match)

INSERT INTO dmarc.reports (
    v, sha256, input, part, report_schema, version, org_name, email,
    extra_contact_info, report_id, date_begin, date_end, generator, errors,
    policy_domain, policy_adkim, policy_aspf, policy_p, policy_sp, policy_np,
    policy_pct, policy_fo, policy_testing, policy_discovery_method, policy_psd,
    records, messages, xml_bytes, kafka_topic, kafka_partition, kafka_offset)
SELECT
    s.v, s.sha256, s.input, s.part, s.`schema`, s.version, s.org_name, s.email,
    s.extra_contact_info, s.report_id, TIMESTAMP_SECONDS(s.`begin`), TIMESTAMP_SECONDS(s.`end`),
    s.generator, s.errors,
    s.policy_domain, s.policy_adkim, s.policy_aspf, s.policy_p, s.policy_sp, s.policy_np,
    s.policy_pct, s.policy_fo, s.policy_testing, s.policy_discovery_method, s.policy_psd,
    s.records, s.messages, s.xml_bytes, s.kafka_topic, s.kafka_partition, s.kafka_offset
FROM dmarc.reports_raw AS s
LEFT JOIN (
    SELECT DISTINCT kafka_topic, kafka_partition, kafka_offset
    FROM dmarc.reports
    WHERE kafka_offset IS NOT NULL
) AS moved
    ON  moved.kafka_topic = s.kafka_topic
    AND moved.kafka_partition = s.kafka_partition
    AND moved.kafka_offset = s.kafka_offset
WHERE s.v = 1
  AND moved.kafka_offset IS NULL;
