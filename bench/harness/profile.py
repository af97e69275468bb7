"""Every statement an engine runs, timed in this process and summed by name, per phase; with
`explain`, the first runs of each statement also under EXPLAIN (ANALYZE, BUFFERS)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from sqlalchemy import event

from .report import load1


@dataclass
class Timing:
    calls: int = 0
    seconds: float = 0.0
    rows: int = 0
    plans: list[str] = field(default_factory=list)


class StatementClock:
    """Times every statement an engine runs, summed by its name in `names` (a statement's text,
    white space collapsed -> its name; else its first words), per phase; with `explain`, the first
    run of each statement in a phase is also run under EXPLAIN (ANALYZE, BUFFERS) inside a
    savepoint rolled back (its writes undone), then for real, timed; so are the second (the plan
    runs a statement over every account, then each batch over its own)."""

    def __init__(self, engine, names: dict[str, str], explain: bool) -> None:
        self.names = names
        self.explain = explain
        self.phases: dict[str, dict[str, Timing]] = {}
        self.phase = ""
        self._started: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def name(self, statement: str) -> str:
        flat = re.sub(r"%\((\w+)\)s", r":\1", statement).replace("%%", "%")
        flat = re.sub(r"\s+", " ", flat).strip()
        return self.names.get(flat) or flat[:70]

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.phase:
            timing = self.phases.setdefault(self.phase, {}).setdefault(self.name(statement), Timing())
            if self.explain and len(timing.plans) < 2 and re.match(r"\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b",
                                                             statement, re.IGNORECASE):
                cursor.execute("SAVEPOINT bench_explain")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                timing.plans.append("\n".join(r[0] for r in cursor.fetchall()))
                cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        seconds = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        if self.phase:
            timing = self.phases[self.phase][self.name(statement)]
            timing.calls += 1
            timing.seconds += seconds
            timing.rows += max(cursor.rowcount, 0)



def print_profile(phases: dict[str, dict[str, Timing]], walls: dict[str, float], explain: bool) -> None:
    for phase, items in phases.items():
        total = sum(t.seconds for t in items.values())
        print(f"\nprofile: {phase}: {walls[phase]:.2f} s wall, {total:.2f} s in SQL statements; slowest first"
              f" (load {load1():.2f})")
        for name, t in sorted(items.items(), key=lambda kv: -kv[1].seconds):
            if t.seconds < 0.01 and not explain:
                continue
            share = 100 * t.seconds / walls[phase]
            print(f"  {t.seconds:8.3f} s {share:5.1f}%  {name:<28} x{t.calls:<4} rows {t.rows:,}")
            for plan in t.plans if explain else ():
                print("\n".join("        " + line for line in plan.splitlines()))

