"""The identity providers orgmig knows, by name, listed once: the CLI's `--provider` choices, the
tables' CHECK constraints and the export's registry (`app.idp.providers`, one client class per
name, checked against this list) take them from here. A module of its own so that a command that
only needs the names (`orgmig sync`, `orgmig reconcile`, the revisions) does not import the
export's HTTP client (about 0.1 s of start-up)."""

PROVIDERS: tuple[str, ...] = ("okta", "keycloak", "auth0")
