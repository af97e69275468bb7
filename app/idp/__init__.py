"""Identity-provider export: read users, groups, organizations, roles and memberships out of
Okta, Keycloak or Auth0 into snapshot tables, so a migration never talks to the network inside a
database transaction."""
