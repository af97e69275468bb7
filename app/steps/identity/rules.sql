-- Rules of the identity contract written once and expanded where a statement of state.sql or
-- compare.sql names them (`{name}`, app.steps.identity.SQL), so the batches, the plan, dry runs and
-- reconcile cannot disagree on them.

-- name: owner
-- The provider that owns app user u's status and profile values (docs/identity.md, "Several
-- providers"): :provider when no account of another provider is linked to u; else the first of
-- :priority (ORGMIG_PROVIDER_PRIORITY) among u's providers, else the one that linked u first.
CASE WHEN NOT EXISTS (SELECT 1 FROM user_identity i WHERE i.user_id = u.id AND i.provider <> :provider)
THEN CAST(:provider AS text)
ELSE (SELECT p.provider FROM (
          SELECT i.provider, i.created_at FROM user_identity i
          WHERE i.user_id = u.id AND i.provider <> :provider
          UNION ALL
          SELECT :provider, coalesce((SELECT i.created_at FROM user_identity i
                                      WHERE i.provider = :provider AND i.user_id = u.id), 'infinity')
      ) p
      ORDER BY coalesce(array_position(CAST(:priority AS text[]), p.provider), 1000), p.created_at,
               p.provider
      LIMIT 1) END
