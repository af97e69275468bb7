"""Local fake identity-provider servers (Okta, Keycloak, Auth0) for tests over real HTTP."""
