-- dmarcpipe warehouse schema for Snowflake.
--
--     snowsql -d DMARC -s PUBLIC -f deploy/warehouse/snowflake.sql
--
-- Replace the warehouse name DMARC_WH (the two tasks) with yours.
--
-- Layout (the same as clickhouse.sql and sqlite.sql):
--   dmarc_rollups_raw / dmarc_reports_raw   landing tables in the Snowflake
--        Kafka connector's shape: RECORD_METADATA and RECORD_CONTENT, VARIANT
--   dmarc_rollups / dmarc_reports           typed tables, clustered
--   *_raw_stream + *_move tasks             move new landed rows, once each
--   dmarc_rollups_merged                    partial rollups merged by key
--   dmarc_reports_latest                    one row per report identity
--   dmarc_reconcile                         rollups against the reports feed
--
-- Loading
-- -------
-- Kafka: the Snowflake Kafka connector (Snowpipe or Snowpipe Streaming,
-- without schematization) with
--     topic2table.map = dmarc.rollups:DMARC_ROLLUPS_RAW,dmarc.reports:DMARC_REPORTS_RAW
--     value.converter = org.apache.kafka.connect.json.JsonConverter (schemas.enable=false),
--                       or the connector's SnowflakeJsonConverter
-- It is a Kafka Connect (Java) consumer, and Java clients default to
-- isolation.level=read_uncommitted: they would load the rollups of aborted
-- transactions.  Set, on the worker:
--     consumer.isolation.level=read_committed
-- or per connector (the worker needs connector.client.config.override.policy=All):
--     consumer.override.isolation.level=read_committed
--
-- Files (the file sink's NDJSON), through a stage:
--     PUT file://rollups.ndjson @%dmarc_rollups_raw;
--     COPY INTO dmarc_rollups_raw (record_content)
--         FROM (SELECT $1 FROM @%dmarc_rollups_raw)
--         FILE_FORMAT = (TYPE = JSON);
--   (and the same for reports.ndjson into dmarc_reports_raw).  COPY skips
--   files it already loaded, by name and checksum.
--
-- From the landing tables, a stream and a task move each new row into the
-- typed tables exactly once: a stream's offset advances only when the
-- INSERT that reads it commits.  Rollups of another schema version (not 1
-- or 2; reports not 1) are not moved and stay in the landing table, to be looked at.  Delivery
-- by the connector is at least once in some modes; rollups_merged and
-- reports_latest count a row delivered twice with the same (topic,
-- partition, offset) once.
--
-- Types: times are TIMESTAMP_NTZ in UTC (the feed's Unix seconds, converted
-- with scale 0); counts are NUMBER(20,0), enough for the feed's unsigned
-- 64-bit values.  VARCHAR NULL where the feed may write null; GROUP BY
-- keeps NULL as a key value of its own, as dmarcpipe does.

-- ===========================================================================
-- Rollups
-- ===========================================================================

CREATE TABLE IF NOT EXISTS dmarc_rollups_raw (
    record_metadata VARIANT,   -- topic, partition, offset, key, CreateTime, ...
    record_content  VARIANT    -- the rollup JSON (schema v2, or v1 without the source_* fields)
);

CREATE TABLE IF NOT EXISTS dmarc_rollups (
    v               NUMBER(3,0)   NOT NULL,
    window_start    TIMESTAMP_NTZ NOT NULL,   -- [window_start, window_end), UTC
    window_end      TIMESTAMP_NTZ NOT NULL,
    reporter        VARCHAR,                  -- report org_name
    policy_domain   VARCHAR,
    header_from     VARCHAR,
    source_ip       VARCHAR       NOT NULL,   -- canonical text; IPv4 as IPv4
    disposition     VARCHAR,                  -- policy_evaluated
    dkim            VARCHAR,                  -- policy_evaluated (aligned)
    spf             VARCHAR,                  -- policy_evaluated (aligned)
    override        VARCHAR,                  -- reason types, sorted, ','-joined
    dkim_domain     VARCHAR,
    dkim_selector   VARCHAR,
    dkim_result     VARCHAR,
    spf_domain      VARCHAR,
    spf_result      VARCHAR,
    source_ptr          VARCHAR,              -- who source_ip is (schema v2): not part of the key
    source_base_domain  VARCHAR,
    source_asn          NUMBER(10,0),
    source_as_org       VARCHAR,
    source_country      VARCHAR,
    source_service      VARCHAR,
    source_service_type VARCHAR,
    messages        NUMBER(20,0)  NOT NULL,   -- sum when merging
    records         NUMBER(20,0)  NOT NULL,   -- sum
    first_seen      TIMESTAMP_NTZ NOT NULL,   -- min
    last_seen       TIMESTAMP_NTZ NOT NULL,   -- max
    kafka_topic     VARCHAR,                  -- NULL for file loads
    kafka_partition NUMBER(10,0),
    kafka_offset    NUMBER(20,0),
    loaded_at       TIMESTAMP_NTZ NOT NULL DEFAULT SYSDATE()   -- UTC
)
CLUSTER BY (TO_DATE(window_start), policy_domain)
COMMENT = 'dmarcpipe rollups (schema v2), partial: merge with dmarc_rollups_merged';

CREATE STREAM IF NOT EXISTS dmarc_rollups_raw_stream
    ON TABLE dmarc_rollups_raw
    APPEND_ONLY = TRUE;

CREATE TASK IF NOT EXISTS dmarc_rollups_move
    WAREHOUSE = DMARC_WH
    SCHEDULE = '1 MINUTE'
    WHEN SYSTEM$STREAM_HAS_DATA('DMARC_ROLLUPS_RAW_STREAM')
AS
INSERT INTO dmarc_rollups (
    v, window_start, window_end, reporter, policy_domain, header_from, source_ip,
    disposition, dkim, spf, override, dkim_domain, dkim_selector, dkim_result,
    spf_domain, spf_result, source_ptr, source_base_domain, source_asn, source_as_org,
    source_country, source_service, source_service_type, messages, records, first_seen, last_seen,
    kafka_topic, kafka_partition, kafka_offset)
SELECT
    c:v::NUMBER(3,0),
    TO_TIMESTAMP_NTZ(c:window_start::NUMBER(20,0), 0),
    TO_TIMESTAMP_NTZ(c:window_end::NUMBER(20,0), 0),
    STRIP_NULL_VALUE(c:reporter)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_domain)::VARCHAR,
    STRIP_NULL_VALUE(c:header_from)::VARCHAR,
    c:source_ip::VARCHAR,
    STRIP_NULL_VALUE(c:disposition)::VARCHAR,
    STRIP_NULL_VALUE(c:dkim)::VARCHAR,
    STRIP_NULL_VALUE(c:spf)::VARCHAR,
    STRIP_NULL_VALUE(c:override)::VARCHAR,
    STRIP_NULL_VALUE(c:dkim_domain)::VARCHAR,
    STRIP_NULL_VALUE(c:dkim_selector)::VARCHAR,
    STRIP_NULL_VALUE(c:dkim_result)::VARCHAR,
    STRIP_NULL_VALUE(c:spf_domain)::VARCHAR,
    STRIP_NULL_VALUE(c:spf_result)::VARCHAR,
    STRIP_NULL_VALUE(c:source_ptr)::VARCHAR,          -- absent (v1) or null: NULL
    STRIP_NULL_VALUE(c:source_base_domain)::VARCHAR,
    STRIP_NULL_VALUE(c:source_asn)::NUMBER(10,0),
    STRIP_NULL_VALUE(c:source_as_org)::VARCHAR,
    STRIP_NULL_VALUE(c:source_country)::VARCHAR,
    STRIP_NULL_VALUE(c:source_service)::VARCHAR,
    STRIP_NULL_VALUE(c:source_service_type)::VARCHAR,
    c:messages::NUMBER(20,0),
    c:records::NUMBER(20,0),
    TO_TIMESTAMP_NTZ(c:first_seen::NUMBER(20,0), 0),
    TO_TIMESTAMP_NTZ(c:last_seen::NUMBER(20,0), 0),
    m['topic']::VARCHAR,
    m['partition']::NUMBER(10,0),
    m['offset']::NUMBER(20,0)
FROM (
    SELECT record_content AS c, record_metadata AS m
    FROM dmarc_rollups_raw_stream
)
WHERE c:v::NUMBER IN (1, 2);

ALTER TASK dmarc_rollups_move RESUME;

-- Partial rollups merged by their full key.  A row delivered twice from
-- Kafka (same topic, partition and offset) counts once.  The source_*
-- columns are not part of the key: a merged row takes a non-NULL value of
-- its parts (MAX skips NULLs), so a part flushed before the lookup ended
-- does not hide the answer a later part carries.
CREATE OR REPLACE VIEW dmarc_rollups_merged AS
WITH delivered AS (
    SELECT *
    FROM dmarc_rollups
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
-- end -> date_end (SCHEMA is reserved in Snowflake).
-- ===========================================================================

CREATE TABLE IF NOT EXISTS dmarc_reports_raw (
    record_metadata VARIANT,
    record_content  VARIANT
);

CREATE TABLE IF NOT EXISTS dmarc_reports (
    v                        NUMBER(3,0)   NOT NULL,
    sha256                   VARCHAR(64)   NOT NULL,   -- of the report's XML, hex
    input                    VARCHAR,
    part                     VARCHAR,
    report_schema            VARCHAR,                  -- draft, rfc7489, rfc9990
    version                  VARCHAR,
    org_name                 VARCHAR,
    email                    VARCHAR,
    extra_contact_info       VARCHAR,
    report_id                VARCHAR,
    date_begin               TIMESTAMP_NTZ NOT NULL,
    date_end                 TIMESTAMP_NTZ NOT NULL,
    generator                VARCHAR,
    errors                   ARRAY,
    policy_domain            VARCHAR,
    policy_adkim             VARCHAR,
    policy_aspf              VARCHAR,
    policy_p                 VARCHAR,
    policy_sp                VARCHAR,
    policy_np                VARCHAR,
    policy_pct               NUMBER(3,0),
    policy_fo                VARCHAR,
    policy_testing           VARCHAR,
    policy_discovery_method  VARCHAR,
    policy_psd               VARCHAR,
    records                  NUMBER(20,0)  NOT NULL,
    messages                 NUMBER(20,0)  NOT NULL,
    xml_bytes                NUMBER(20,0)  NOT NULL,
    kafka_topic              VARCHAR,
    kafka_partition          NUMBER(10,0),
    kafka_offset             NUMBER(20,0),
    loaded_at                TIMESTAMP_NTZ NOT NULL DEFAULT SYSDATE()
)
CLUSTER BY (TO_DATE(date_begin), policy_domain)
COMMENT = 'dmarcpipe reports feed (v1): one row per delivered copy; see dmarc_reports_latest';

CREATE STREAM IF NOT EXISTS dmarc_reports_raw_stream
    ON TABLE dmarc_reports_raw
    APPEND_ONLY = TRUE;

CREATE TASK IF NOT EXISTS dmarc_reports_move
    WAREHOUSE = DMARC_WH
    SCHEDULE = '1 MINUTE'
    WHEN SYSTEM$STREAM_HAS_DATA('DMARC_REPORTS_RAW_STREAM')
AS
INSERT INTO dmarc_reports (
    v, sha256, input, part, report_schema, version, org_name, email,
    extra_contact_info, report_id, date_begin, date_end, generator, errors,
    policy_domain, policy_adkim, policy_aspf, policy_p, policy_sp, policy_np,
    policy_pct, policy_fo, policy_testing, policy_discovery_method, policy_psd,
    records, messages, xml_bytes, kafka_topic, kafka_partition, kafka_offset)
SELECT
    c:v::NUMBER(3,0),
    c:sha256::VARCHAR,
    STRIP_NULL_VALUE(c:input)::VARCHAR,
    STRIP_NULL_VALUE(c:part)::VARCHAR,
    STRIP_NULL_VALUE(c['schema'])::VARCHAR,
    STRIP_NULL_VALUE(c:version)::VARCHAR,
    STRIP_NULL_VALUE(c:org_name)::VARCHAR,
    STRIP_NULL_VALUE(c:email)::VARCHAR,
    STRIP_NULL_VALUE(c:extra_contact_info)::VARCHAR,
    STRIP_NULL_VALUE(c:report_id)::VARCHAR,
    TO_TIMESTAMP_NTZ(c['begin']::NUMBER(20,0), 0),
    TO_TIMESTAMP_NTZ(c['end']::NUMBER(20,0), 0),
    STRIP_NULL_VALUE(c:generator)::VARCHAR,
    c:errors::ARRAY,
    STRIP_NULL_VALUE(c:policy_domain)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_adkim)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_aspf)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_p)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_sp)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_np)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_pct)::NUMBER(3,0),
    STRIP_NULL_VALUE(c:policy_fo)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_testing)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_discovery_method)::VARCHAR,
    STRIP_NULL_VALUE(c:policy_psd)::VARCHAR,
    c:records::NUMBER(20,0),
    c:messages::NUMBER(20,0),
    c:xml_bytes::NUMBER(20,0),
    m['topic']::VARCHAR,
    m['partition']::NUMBER(10,0),
    m['offset']::NUMBER(20,0)
FROM (
    SELECT record_content AS c, record_metadata AS m
    FROM dmarc_reports_raw_stream
)
WHERE c:v::NUMBER = 1;

ALTER TASK dmarc_reports_move RESUME;

-- One row per report identity (org_name + report_id + policy_domain +
-- begin, dmarcpipe's dedup identity); the first copy loaded wins.
CREATE OR REPLACE VIEW dmarc_reports_latest AS
SELECT *
FROM dmarc_reports
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY org_name, report_id, policy_domain, date_begin
    ORDER BY loaded_at, kafka_partition, kafka_offset) = 1;

-- Rows here mean rollups were lost or counted twice.  Every message of a
-- counted report lands in exactly one rollup: per (reporter,
-- policy_domain), the rollups' messages equal the reports'.
CREATE OR REPLACE VIEW dmarc_reconcile AS
SELECT
    reporter,
    policy_domain,
    SUM(rollup_messages) AS rollup_messages,
    SUM(report_messages) AS report_messages
FROM (
    SELECT reporter, policy_domain, messages AS rollup_messages, 0 AS report_messages
    FROM dmarc_rollups_merged
    UNION ALL
    SELECT org_name, policy_domain, 0, messages
    FROM dmarc_reports_latest
)
GROUP BY reporter, policy_domain   -- NULLs group together
HAVING SUM(rollup_messages) <> SUM(report_messages);
