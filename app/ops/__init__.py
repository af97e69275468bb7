"""Operator tools beside the engine: Alembic plumbing, verification, status, synthetic legacy
data, and the embedded PostgreSQL of `orgmig demo`."""
