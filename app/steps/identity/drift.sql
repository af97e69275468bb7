-- Step identity:<provider>: the drift between the tables and the latest finished snapshot, per
-- user, read from the differences state.sql loaded for every account (`orgmig reconcile`, in a
-- transaction it rolls back). A value the app changed after the export started is kept by the
-- sync's rules, so it is not drift; accounts that cannot be matched are reported, not drift.

-- name: per_user
SELECT b.external_id, b.row_id,
       CASE WHEN b.user_id > 0 THEN b.user_id END AS user_id,
       CASE WHEN b.new_link AND b.matched_by = 'created' THEN 'user to create'
            WHEN b.new_link THEN 'link to make' END AS link,
       (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                  'org', o.external_id, 'change', d.kind, 'role', rf.name, 'idp_role', rt.name,
                  'all_facilities', CASE WHEN d.all_from IS DISTINCT FROM d.all_to THEN d.all_from END,
                  'idp_all_facilities', CASE WHEN d.all_from IS DISTINCT FROM d.all_to THEN d.all_to END))
               ORDER BY o.external_id)
          FROM idb_member_diff d JOIN org o ON o.id = d.org_id
          LEFT JOIN role rf ON rf.id = d.role_from LEFT JOIN role rt ON rt.id = d.role_to
         WHERE d.user_id = b.user_id AND NOT d.app_edit) AS orgs,
       (SELECT jsonb_agg(jsonb_build_object('org', o.external_id, 'facility', f.facility_id, 'change', f.kind)
               ORDER BY o.external_id, f.facility_id)
          FROM idb_facility_diff f JOIN org o ON o.id = f.org_id
         WHERE f.user_id = b.user_id AND NOT f.app_edit) AS facilities,
       (SELECT jsonb_build_object('status', u.status, 'idp_status', b.app_status)
          FROM idb_user_diff d JOIN "user" u ON u.id = d.user_id
         WHERE d.user_id = b.user_id AND NOT d.app_edit AND 'status' = ANY (d.columns)) AS status,
       (SELECT jsonb_build_object('site_admin', u.is_site_admin, 'idp_site_admin', b.site_admin)
          FROM idb_user_diff d JOIN "user" u ON u.id = d.user_id
         WHERE d.user_id = b.user_id AND NOT d.app_edit AND 'is_site_admin' = ANY (d.columns)) AS site_admin,
       (SELECT to_jsonb(array_remove(array_remove(d.columns, 'status'), 'is_site_admin'))
          FROM idb_user_diff d
         WHERE d.user_id = b.user_id AND NOT d.app_edit
           AND cardinality(array_remove(array_remove(d.columns, 'status'), 'is_site_admin')) > 0) AS profile
FROM idb_user b
WHERE b.user_id IS NOT NULL
  AND (b.new_link
       OR EXISTS (SELECT 1 FROM idb_member_diff d WHERE d.user_id = b.user_id AND NOT d.app_edit)
       OR EXISTS (SELECT 1 FROM idb_facility_diff f WHERE f.user_id = b.user_id AND NOT f.app_edit)
       OR EXISTS (SELECT 1 FROM idb_user_diff d WHERE d.user_id = b.user_id AND NOT d.app_edit))
ORDER BY b.external_id;
