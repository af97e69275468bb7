"""SQL kept in `.sql` files beside the code that runs it.

A file holds one statement, or several, each after a `-- name: <name>` line. Statements use bind
parameters (`:start`, `:run_id`), so a DBA can run them in psql after `\\set start 1` and so on.
The only thing Python adds is what a file cannot spell out for itself: `{placeholder}`s that the
caller expands, used for long column lists taken from the table definitions and for the table and
key a step walks (identifiers, never values).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from sqlalchemy import TextClause, text

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


class SqlFiles:
    """The `.sql` files in one folder, loaded once, rendered with fixed expansions."""

    def __init__(self, folder: str | Path, **expansions: str) -> None:
        folder = Path(folder)
        self.folder = folder.parent if folder.is_file() else folder
        self.expansions = expansions
        self._texts: dict[tuple, TextClause] = {}

    @cached_property
    def _statements(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for path in sorted(self.folder.glob("*.sql")):
            source = path.read_text(encoding="utf-8")
            parts = _NAME.split(source)
            if len(parts) == 1:
                found[path.stem] = source
                continue
            for name, body in zip(parts[1::2], parts[2::2], strict=True):
                found[f"{path.stem}.{name}"] = body
        return found

    def source(self, name: str, **expansions: str) -> str:
        """The statement `name` (a file stem, or `stem.section`) with its placeholders expanded."""
        try:
            sql = self._statements[name]
        except KeyError:
            raise KeyError(f"no SQL statement {name!r} in {self.folder}") from None
        # The header comment is for the reader of the file; pg_stat_activity shows only the first
        # kilobyte of a statement, which should be its SQL.
        sql = re.sub(r"\A(?:\s*--[^\n]*\n)+", "", sql)
        values = {**self.expansions, **expansions}
        if values:
            sql = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), sql)
        return sql.strip()

    def __call__(self, name: str, **expansions: str) -> TextClause:
        key = (name, tuple(sorted(expansions.items())))
        clause = self._texts.get(key)
        if clause is None:
            clause = self._texts[key] = text(self.source(name, **expansions))
        return clause

    def names(self) -> list[str]:
        return sorted(self._statements)
