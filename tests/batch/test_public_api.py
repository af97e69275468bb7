"""The engine's one door: a data step, the CLI and the operations' pages import
`from app.batch import ...` and nothing under it (app.batch.attempts, .ledger, .revision, ...),
so the engine's modules can change without touching them; and every name the package says it
exports is there."""

from __future__ import annotations

import ast
from pathlib import Path

import app.batch

ROOT = Path(__file__).resolve().parents[2]


def test_code_outside_the_engine_reaches_it_through_app_batch_only():
    past_the_door = []
    engine = ROOT / "app" / "batch"
    for path in sorted(p for p in ROOT.joinpath("app").rglob("*.py") if engine not in p.parents):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            past_the_door += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("app.batch.")]
    assert past_the_door == []


def test_every_exported_name_is_there():
    assert [name for name in app.batch.__all__ if not hasattr(app.batch, name)] == []
