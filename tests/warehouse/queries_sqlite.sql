-- The queries of deploy/warehouse/queries.sql, for SQLite
-- (deploy/warehouse/sqlite.sql), with named parameters.  run.sh runs them on
-- sample data and checks their invariants; each starts with "-- query: NAME".
-- Times are Unix seconds.

-- query: compliance
-- DMARC compliance per domain over [:from_ts, :to_ts), and dispositions.
SELECT
    policy_domain,
    total_messages,
    dmarc_pass,
    ROUND(100.0 * dmarc_pass / NULLIF(total_messages, 0), 2) AS dmarc_pass_pct,
    dkim_aligned_pass,
    spf_aligned_pass,
    dmarc_fail,
    disposition_none,
    disposition_quarantine,
    disposition_reject,
    disposition_other,
    with_override,
    reporters,
    sources
FROM (
    SELECT
        policy_domain,
        SUM(messages) AS total_messages,
        SUM(CASE WHEN dkim_pass OR spf_pass THEN messages ELSE 0 END)         AS dmarc_pass,
        SUM(CASE WHEN dkim_pass THEN messages ELSE 0 END)                     AS dkim_aligned_pass,
        SUM(CASE WHEN spf_pass THEN messages ELSE 0 END)                      AS spf_aligned_pass,
        SUM(CASE WHEN NOT dkim_pass AND NOT spf_pass THEN messages ELSE 0 END) AS dmarc_fail,
        SUM(CASE WHEN disp = 'none' THEN messages ELSE 0 END)                 AS disposition_none,
        SUM(CASE WHEN disp = 'quarantine' THEN messages ELSE 0 END)           AS disposition_quarantine,
        SUM(CASE WHEN disp = 'reject' THEN messages ELSE 0 END)               AS disposition_reject,
        SUM(CASE WHEN disp NOT IN ('none', 'quarantine', 'reject') THEN messages ELSE 0 END) AS disposition_other,
        SUM(CASE WHEN override IS NOT NULL THEN messages ELSE 0 END)          AS with_override,
        COUNT(DISTINCT reporter)  AS reporters,
        COUNT(DISTINCT source_ip) AS sources
    FROM (
        SELECT *,
               IFNULL(dkim, '') = 'pass'  AS dkim_pass,
               IFNULL(spf, '') = 'pass'   AS spf_pass,
               IFNULL(disposition, '')    AS disp
        FROM dmarc_rollups
        WHERE window_start >= :from_ts AND window_start < :to_ts
    )
    GROUP BY policy_domain
)
ORDER BY total_messages DESC;

-- query: failing_sources
-- Top sources failing DMARC (neither aligned DKIM nor aligned SPF passes).
SELECT
    source_ip,
    reporter,
    SUM(CASE WHEN NOT dmarc_pass THEN messages ELSE 0 END) AS failing_messages,
    SUM(messages) AS all_messages,
    ROUND(100.0 * SUM(CASE WHEN NOT dmarc_pass THEN messages ELSE 0 END) / NULLIF(SUM(messages), 0), 2) AS failing_pct,
    SUM(CASE WHEN NOT dmarc_pass AND disposition = 'reject' THEN messages ELSE 0 END)     AS failing_rejected,
    SUM(CASE WHEN NOT dmarc_pass AND disposition = 'quarantine' THEN messages ELSE 0 END) AS failing_quarantined,
    GROUP_CONCAT(DISTINCT policy_domain) AS domains,
    MIN(first_seen) AS seen_from,
    MAX(last_seen)  AS seen_until
FROM (
    SELECT *, (IFNULL(dkim, '') = 'pass' OR IFNULL(spf, '') = 'pass') AS dmarc_pass
    FROM dmarc_rollups
    WHERE window_start >= :since_ts
)
GROUP BY source_ip, reporter
HAVING failing_messages > 0
ORDER BY failing_messages DESC, source_ip, reporter
LIMIT 50;

-- query: ready_to_tighten
-- Domains at least :min_pct % passing since :since_ts, with enough volume,
-- receivers and days; the current policy from the latest report.
WITH r AS (
    SELECT
        policy_domain,
        SUM(messages) AS total_messages,
        ROUND(100.0 * SUM(CASE WHEN IFNULL(dkim, '') = 'pass' OR IFNULL(spf, '') = 'pass'
                               THEN messages ELSE 0 END) / NULLIF(SUM(messages), 0), 2) AS dmarc_pass_pct,
        COUNT(DISTINCT reporter) AS reporters,
        COUNT(DISTINCT window_start / 86400) AS days_with_data
    FROM dmarc_rollups
    WHERE window_start >= :since_ts
    GROUP BY policy_domain
), p AS (
    SELECT policy_domain, policy_p AS current_p, policy_pct AS current_pct
    FROM (
        SELECT policy_domain, policy_p, policy_pct,
               ROW_NUMBER() OVER (PARTITION BY policy_domain ORDER BY date_begin DESC) AS n
        FROM dmarc_reports_latest
        WHERE date_begin >= :since_ts
    )
    WHERE n = 1
)
SELECT
    r.policy_domain, r.total_messages, r.dmarc_pass_pct, r.reporters, r.days_with_data,
    p.current_p, p.current_pct,
    CASE
        WHEN IFNULL(p.current_p, 'none') = 'none' THEN 'quarantine'
        WHEN IFNULL(p.current_pct, 100) < 100     THEN 'raise pct to 100'
        ELSE 'reject'
    END AS next_step
FROM r
LEFT JOIN p ON p.policy_domain = r.policy_domain
WHERE r.dmarc_pass_pct >= :min_pct
  AND r.total_messages >= :min_messages
  AND r.reporters >= :min_reporters
  AND r.days_with_data >= :min_days
  AND NOT (IFNULL(p.current_p, 'none') = 'reject' AND IFNULL(p.current_pct, 100) = 100)
ORDER BY r.total_messages DESC;
