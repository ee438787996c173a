-- Sample queries over the dmarcpipe warehouse, ClickHouse dialect
-- (deploy/warehouse/clickhouse.sql).  Notes for BigQuery, Snowflake and
-- SQLite follow each query; tests/warehouse/queries_sqlite.sql has the
-- same queries for SQLite, run by tests/warehouse/run.sh on sample data.
--
-- Reading the rollups:
--   * always aggregate (sum/min/max with GROUP BY): partial rollups of one
--     key are merged by SummingMergeTree in the background, eventually;
--   * `dkim` and `spf` are policy_evaluated, i.e. the *aligned* results; a
--     message passes DMARC when either is 'pass';
--   * NULL means the report did not say; ifNull(x, '') = 'pass' counts it
--     as not passing;
--   * do not alias an aggregate with the name of a column that another
--     expression of the same SELECT reads (sum(messages) AS messages next
--     to sumIf(messages, ...)): ClickHouse substitutes aliases everywhere
--     in a SELECT, and would nest the aggregates.
--
-- Parameters use clickhouse-client's syntax, e.g.
--     clickhouse-client --param_from='2026-11-01 00:00:00' --param_to='2026-12-01 00:00:00' \
--                       --param_days=7 --queries-file deploy/warehouse/queries.sql
-- Times are UTC (the parameters are read as UTC below).
--
-- Other dialects, in general:
--   sumIf(x, c)             BigQuery SUM(IF(c, x, 0)); Snowflake SUM(IFF(c, x, 0));
--                           SQLite SUM(CASE WHEN c THEN x ELSE 0 END)
--   ifNull(a, b)            IFNULL (BigQuery, Snowflake, SQLite) or COALESCE
--   uniqExact(x)            COUNT(DISTINCT x)
--   a / b (Float64)         BigQuery SAFE_DIVIDE(a, b); Snowflake DIV0(a, b);
--                           SQLite 1.0 * a / NULLIF(b, 0)
--   now() - INTERVAL n DAY  BigQuery TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL n DAY);
--                           Snowflake DATEADD(day, -n, SYSDATE());
--                           SQLite CAST(strftime('%s', 'now', '-n days') AS INTEGER)
--                           (SQLite keeps Unix seconds)
--   table names             BigQuery dmarc.rollups / dmarc.reports_latest;
--                           Snowflake dmarc_rollups / dmarc_reports_latest;
--                           SQLite dmarc_rollups / dmarc_reports_latest
--   In BigQuery and Snowflake read dmarc.rollups_merged / dmarc_rollups_merged
--   instead of the table when Kafka delivery may have duplicated rows: the
--   views drop a row delivered twice.


-- ===========================================================================
-- 1. DMARC compliance per domain over a period, and the disposition the
--    receivers applied.
-- ===========================================================================
WITH
    ifNull(dkim, '') = 'pass'  AS dkim_pass,
    ifNull(spf, '') = 'pass'   AS spf_pass,
    ifNull(disposition, '')    AS disp
SELECT
    policy_domain,
    sum(messages)                                                   AS total_messages,
    sumIf(messages, dkim_pass OR spf_pass)                          AS dmarc_pass,
    round(100 * dmarc_pass / total_messages, 2)                     AS dmarc_pass_pct,
    sumIf(messages, dkim_pass)                                      AS dkim_aligned_pass,
    sumIf(messages, spf_pass)                                       AS spf_aligned_pass,
    sumIf(messages, NOT dkim_pass AND NOT spf_pass)                 AS dmarc_fail,
    sumIf(messages, disp = 'none')                                  AS disposition_none,
    sumIf(messages, disp = 'quarantine')                            AS disposition_quarantine,
    sumIf(messages, disp = 'reject')                                AS disposition_reject,
    sumIf(messages, disp NOT IN ('none', 'quarantine', 'reject'))   AS disposition_other,
    sumIf(messages, override IS NOT NULL)                           AS with_override,  -- forwarded, mailing_list, ...
    uniqExact(reporter)                                             AS reporters,
    uniqExact(source_ip)                                            AS sources
FROM dmarc.dmarc_rollups
WHERE window_start >= toDateTime({from:String}, 'UTC')
  AND window_start <  toDateTime({to:String}, 'UTC')
GROUP BY policy_domain
ORDER BY total_messages DESC;
-- BigQuery: WHERE window_start >= TIMESTAMP(@from) AND window_start < TIMESTAMP(@to)
--   (query parameters), with the per-row flags written out in each SUM(IF(...)).
-- Snowflake: the same with IFF and DIV0; flags can be a subquery's columns.
-- A window is [window_start, window_end): with 1d windows, a period from
-- midnight to midnight takes whole windows.


-- ===========================================================================
-- 2. Top failing sources: who sends mail that fails DMARC (neither aligned
--    DKIM nor aligned SPF passes), as seen by which receiver.
-- ===========================================================================
WITH
    ifNull(dkim, '') = 'pass' OR ifNull(spf, '') = 'pass' AS dmarc_pass
SELECT
    source_ip,
    anyLast(source_service)                            AS service,  -- NULL without --enrich
    reporter,
    sumIf(messages, NOT dmarc_pass)                    AS failing_messages,
    sum(messages)                                      AS all_messages,
    round(100 * failing_messages / all_messages, 2)    AS failing_pct,
    sumIf(messages, NOT dmarc_pass AND ifNull(disposition, '') = 'reject')     AS failing_rejected,
    sumIf(messages, NOT dmarc_pass AND ifNull(disposition, '') = 'quarantine') AS failing_quarantined,
    groupUniqArray(5)(policy_domain)                   AS some_domains,
    groupUniqArray(5)(header_from)                     AS some_header_from,
    min(first_seen)                                    AS seen_from,
    max(last_seen)                                     AS seen_until
FROM dmarc.dmarc_rollups
WHERE window_start >= now() - toIntervalDay({days:UInt32})
  -- AND policy_domain = {domain:String}
GROUP BY source_ip, reporter
HAVING failing_messages > 0
ORDER BY failing_messages DESC
LIMIT 50;
-- BigQuery: ARRAY_AGG(DISTINCT policy_domain IGNORE NULLS LIMIT 5);
-- Snowflake: ARRAY_SLICE(ARRAY_UNIQUE_AGG(policy_domain), 0, 5).
-- anyLast(source_service): MAX(source_service) elsewhere (any non-NULL
-- value: the service enrichment named for the IP, see the README).
-- Grouped by service instead of IP, the same query says which ESP or
-- hosted service sends the failing mail:
--   GROUP BY source_service ... WHERE source_service IS NOT NULL.
-- A source that fails with an override (forwarded, mailing_list) is often
-- a legitimate forwarder: add `override IS NULL` to see only the rest.


-- ===========================================================================
-- 3. Domains ready to move up a step (p=none -> quarantine, quarantine or
--    pct<100 -> reject): at least 98% of messages passing DMARC over the
--    last 30 days, with enough volume and coverage to trust the figure.
--    The published policy comes from the reports feed (its latest report).
-- ===========================================================================
SELECT
    r.policy_domain                 AS policy_domain,
    r.total_messages                AS total_messages,
    r.dmarc_pass_pct                AS dmarc_pass_pct,
    r.reporters                     AS reporters,
    r.days_with_data                AS days_with_data,
    p.current_p                     AS current_p,
    p.current_pct                   AS current_pct,
    multiIf(ifNull(p.current_p, 'none') = 'none', 'quarantine',
            ifNull(p.current_pct, 100) < 100,     'raise pct to 100',
            'reject')               AS next_step
FROM
(
    WITH ifNull(dkim, '') = 'pass' OR ifNull(spf, '') = 'pass' AS dmarc_pass
    SELECT
        policy_domain,
        sum(messages)                                AS total_messages,
        sumIf(messages, dmarc_pass)                  AS pass_messages,
        round(100 * pass_messages / total_messages, 2) AS dmarc_pass_pct,
        uniqExact(reporter)                          AS reporters,
        uniqExact(toDate(window_start))              AS days_with_data
    FROM dmarc.dmarc_rollups
    WHERE window_start >= now() - INTERVAL 30 DAY
    GROUP BY policy_domain
) AS r
LEFT JOIN
(
    SELECT
        policy_domain,
        argMax(policy_p, date_begin)   AS current_p,
        argMax(policy_pct, date_begin) AS current_pct
    FROM dmarc.dmarc_reports FINAL
    WHERE date_begin >= now() - INTERVAL 30 DAY
    GROUP BY policy_domain
) AS p ON p.policy_domain = r.policy_domain
WHERE r.dmarc_pass_pct >= 98
  AND r.total_messages >= 1000       -- tune: enough mail to judge
  AND r.reporters >= 2               -- more than one receiver's view
  AND r.days_with_data >= 20         -- most of the period covered
  AND NOT (ifNull(p.current_p, 'none') = 'reject' AND ifNull(p.current_pct, 100) = 100)
ORDER BY r.total_messages DESC
SETTINGS join_use_nulls = 1;        -- a domain without reports: NULL policy, not ''
-- BigQuery: the latest policy with
--   ARRAY_AGG(policy_p ORDER BY date_begin DESC LIMIT 1)[OFFSET(0)];
--   CASE WHEN ... for multiIf; COUNT(DISTINCT DATE(window_start)).
-- Snowflake: MAX_BY(policy_p, date_begin); CASE or IFF.
-- Subdomains may have their own policy (policy_sp, policy_np): look at
-- header_from per policy_domain before tightening sp.


-- ===========================================================================
-- 4. Health: rollups lost or counted twice (should return no rows), and
--    messages the Kafka consumers could not load (should stay empty).
-- ===========================================================================
SELECT * FROM dmarc.dmarc_reconcile ORDER BY policy_domain, reporter;

SELECT topic, count() AS rejected, min(received_at) AS first_at, max(received_at) AS last_at,
       any(error) AS an_error
FROM dmarc.kafka_rejected
GROUP BY topic;
