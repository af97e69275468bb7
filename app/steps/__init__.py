"""Data steps: each a short declarative object the batch engine runs (see app/steps/base.py)."""
