-- toy_copy, upgrade: rows :start..:end of toy_a into toy_b; rows without a payload reported.
WITH rng AS MATERIALIZED (
    SELECT id, payload FROM toy_a WHERE id BETWEEN :start AND :end
),
slow AS MATERIALIZED (
    SELECT pg_sleep(:sleep_ms * (SELECT count(*) FROM rng) / 1000.0)
),
copied AS (
    INSERT INTO toy_b (id, payload)
    SELECT id, payload FROM rng, slow WHERE payload IS NOT NULL
    RETURNING 1
),
reported AS (
    INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, run_id)
    SELECT :step, 'toy_a', id, 'no_payload', false, :run_id FROM rng WHERE payload IS NULL
    ON CONFLICT (step, source_table, source_id, reason) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM rng) AS rows_read, (SELECT count(*) FROM copied) AS copied,
       (SELECT count(*) FROM reported) AS reported;
