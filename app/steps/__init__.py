"""Data steps: each a short declarative object the batch engine runs (app.batch.Step)."""
