"""orgmig: move users from a legacy user_settings table and an identity provider into an
app-owned organizational schema, with Alembic revisions that are resumable and verifiable."""

__version__ = "0.1.0"
