-- Views for reporting straight from the database (Grafana's PostgreSQL data
-- source, psql): one row per real incident, response times by severity and
-- week, incidents per service. Drills are left out, as in stats and
-- /metrics; a private incident's title reads "(private)". Counted as stats
-- counts: time to acknowledge to the first acknowledgement, time to resolve
-- to the (last) resolution, both from the declaration.
CREATE VIEW sitrep_incidents AS
SELECT
    i.id,
    'INC-' || i.id AS key,
    CASE WHEN (i.record->>'private')::boolean THEN '(private)' ELSE i.record->>'title' END AS title,
    NULLIF(i.record->>'service', '') AS service,
    'P' || i.severity AS severity,
    i.record->>'status' AS status,
    i.declared_at,
    COALESCE((i.record->>'first_acked_at')::timestamptz, (i.record->>'acked_at')::timestamptz) AS acknowledged_at,
    (i.record->>'resolved_at')::timestamptz AS resolved_at,
    i.record->>'source' AS source,
    COALESCE((i.record->>'private')::boolean, false) AS private,
    (i.record->>'merged_into')::bigint AS merged_into
FROM incidents i
WHERE NOT COALESCE((i.record->>'drill')::boolean, false);

CREATE VIEW sitrep_response_times AS
SELECT
    date_trunc('week', declared_at) AS week,
    severity,
    count(*) AS incidents,
    count(acknowledged_at) AS acknowledged,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - declared_at)) AS mtta_seconds_median,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - declared_at)) AS mtta_seconds_p90,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - declared_at)) AS mttr_seconds_median,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - declared_at)) AS mttr_seconds_p90
FROM sitrep_incidents
WHERE merged_into IS NULL -- a duplicate's merge is not a time to resolve
GROUP BY 1, 2;

CREATE VIEW sitrep_incidents_per_service AS
SELECT
    COALESCE(service, '(none)') AS service,
    date_trunc('month', declared_at) AS month,
    count(*) AS incidents,
    count(*) FILTER (WHERE severity IN ('P1', 'P2')) AS p1_p2
FROM sitrep_incidents
WHERE merged_into IS NULL
GROUP BY 1, 2;
