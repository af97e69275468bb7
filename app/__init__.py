"""orgmig: move users from a legacy user_settings table and an identity provider into an
app-owned organizational schema, with Alembic revisions that are resumable and verifiable."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `from app import migrate_user`: the login path, imported on first use (it needs the
    # database layer, which `import app` alone does not).
    if name in ("migrate_user", "MigratedUser"):
        from app.steps.user_settings import login

        return getattr(login, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")
