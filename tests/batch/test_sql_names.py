"""Every statement the code names by a literal (`SQL("file.section")`, in app/ and in bench/)
exists in the SQL files that module's `SQL` reads: a statement renamed or removed fails here,
not at the end of a run or of a benchmark that reaches it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from app.batch.sqlfile import SqlFiles

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"""\bSQL(?:\.source)?\(\s*["']([a-z_]+(?:\.[a-z_]+)?)["']""")


def test_every_statement_named_in_code_exists():
    missing = []
    checked = 0
    for path in sorted([*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]):
        names = NAMED.findall(path.read_text(encoding="utf-8"))
        if not names:
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        files = module.SQL
        assert isinstance(files, SqlFiles), path
        for name in names:
            checked += 1
            try:
                files.source(name)
            except KeyError:
                missing.append(f"{path.relative_to(ROOT)}: {name!r} not in {files.folder.relative_to(ROOT)}")
    assert checked > 50
    assert missing == []
