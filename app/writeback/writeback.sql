-- `orgmig writeback --provider P`: the links to set, and what each write did. Every statement is
-- short and none is ever open while a request is on the network.

-- name: links
-- Every link of :provider with the app's user id it should carry, and whether that is known to be
-- set already: by the snapshot (the account as the latest export saw it holds the value under
-- :attribute) or by the bookkeeping (an earlier write-back wrote it, or found it, with the same
-- value and attribute, and no export has seen the account since: when one has, the snapshot is
-- the newer word); and whether an earlier write-back found the account deleted at the provider
-- (its `writeback_account_gone` report), with no export seeing it since.
SELECT i.external_id,
       i.user_id,
       coalesce(CASE CAST(:provider AS text)
                    WHEN 'auth0' THEN s.attributes -> 'app_metadata' ->> CAST(:attribute AS text)
                    WHEN 'okta' THEN s.attributes ->> CAST(:attribute AS text)
                    WHEN 'keycloak' THEN
                        CASE WHEN jsonb_typeof(s.attributes -> CAST(:attribute AS text)) = 'array'
                                  AND jsonb_array_length(s.attributes -> CAST(:attribute AS text)) = 1
                             THEN s.attributes -> CAST(:attribute AS text) ->> 0 END
                END = i.user_id::text, false) AS snapshot_holds,
       coalesce(w.status IN ('written', 'present') AND w.value = i.user_id::text AND w.attribute = :attribute
                AND (r.started_at IS NULL OR r.started_at <= w.updated_at), false) AS recorded_holds,
       coalesce(w.status IN ('written', 'present') AND w.value = i.user_id::text AND w.attribute = :attribute,
                false) AS recorded_as_set,
       g.id IS NOT NULL AND (r.started_at IS NULL OR r.started_at <= g.created_at) AS gone
FROM user_identity i
LEFT JOIN idp_user s ON s.provider = i.provider AND s.external_id = i.external_id
LEFT JOIN idp_export_run r ON r.id = s.last_seen_run_id
LEFT JOIN orgmig_writeback w ON w.provider = i.provider AND w.external_id = i.external_id
LEFT JOIN orgmig_report g ON g.step = :step AND g.source_table = 'user' AND g.source_id = i.user_id
                         AND g.reason = 'writeback_account_gone' AND g.detail ->> 'external_id' = i.external_id
WHERE i.provider = :provider
ORDER BY i.user_id;

-- name: record
-- What a few writes did (JSON rows: external_id, user_id, value, status, http_status, error). An
-- account gone at the provider holds nothing: its bookkeeping row goes, its report says why.
WITH r AS ({outcomes}), forgotten AS (
    DELETE FROM orgmig_writeback w
    USING r
    WHERE w.provider = :provider AND w.external_id = r.external_id AND r.status = 'gone'
)
INSERT INTO orgmig_writeback (provider, external_id, user_id, attribute, value, status, http_status, error,
                              updated_at)
SELECT :provider, r.external_id, r.user_id, :attribute, r.value, r.status, r.http_status, r.error,
       clock_timestamp()
FROM r
WHERE r.status <> 'gone'
ON CONFLICT (provider, external_id) DO UPDATE SET
    user_id = EXCLUDED.user_id, attribute = EXCLUDED.attribute, value = EXCLUDED.value,
    status = EXCLUDED.status, http_status = EXCLUDED.http_status, error = EXCLUDED.error,
    updated_at = EXCLUDED.updated_at;

-- name: report
-- A failed account is reported (one row per app user, the newest failure, reason
-- `writeback_failed`), and so is an account gone at the provider (`writeback_account_gone`: the
-- record that keeps later runs from trying it); a set one is not, and its older reports go.
WITH r AS ({outcomes}), cleared AS (
    DELETE FROM orgmig_report p
    USING r
    WHERE p.step = :step AND p.source_table = 'user' AND p.source_id = r.user_id
      AND ((p.reason = 'writeback_failed' AND r.status <> 'failed')
           OR (p.reason = 'writeback_account_gone' AND r.status <> 'gone'))
)
INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail)
SELECT :step, 'user', r.user_id,
       CASE r.status WHEN 'gone' THEN 'writeback_account_gone' ELSE 'writeback_failed' END, false,
       jsonb_build_object('external_id', r.external_id, 'attribute', CAST(:attribute AS text),
                          'value', r.value, 'http_status', r.http_status, 'error', r.error)
FROM r
WHERE r.status IN ('failed', 'gone')
ON CONFLICT (step, source_table, source_id, reason) DO UPDATE SET
    detail = EXCLUDED.detail, created_at = now();

-- name: tidy
-- After a run: reports of accounts that are no longer failing, or no longer linked, go.
DELETE FROM orgmig_report p
WHERE p.step = :step
  AND ((p.reason = 'writeback_failed'
        AND NOT EXISTS (SELECT 1 FROM orgmig_writeback w
                        JOIN user_identity i ON i.provider = w.provider AND i.external_id = w.external_id
                                            AND i.user_id = w.user_id
                        WHERE w.provider = :provider AND w.status = 'failed' AND w.user_id = p.source_id))
       OR (p.reason = 'writeback_account_gone'
           AND NOT EXISTS (SELECT 1 FROM user_identity i
                           WHERE i.provider = :provider AND i.external_id = p.detail ->> 'external_id'
                             AND i.user_id = p.source_id)));

-- name: outcomes
-- What a few writes did, as `record` and `report` read it: one JSON row each in :rows.
SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
    AS r(external_id text, user_id integer, value text, status text, http_status integer, error text)
