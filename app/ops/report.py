"""What `orgmig report RUN_ID` shows about one run of the batch engine, read from the ledger
(`orgmig_run`, `orgmig_batch`), the reported rows (`orgmig_report`) and the steering's decisions
(`orgmig_steer_decision`, app.ops.report_steering) in a few read-only queries (report.sql). The
page itself is drawn by app.ops.report_html.

Nothing here reads a row of the data being migrated: the figures are counts, keys of batch
ranges, durations, reasons, and the one-line errors the engine recorded (which never quote a
row's values, app.db.error_summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine

from app.batch import RECORDED_SETTINGS, RunFigures, SqlFiles, run_figures, runs
from app.errors import ConfigError
from app.ops import report_steering

SQL = SqlFiles(Path(__file__).parent)
PROBLEMS_SHOWN = 15  # retried or failed batches listed on the page; the rest are counted
ERROR_CHARS = 300  # a recorded error is shown as its first line, cut here
SAMPLES_SHOWN = 5  # reported rows shown per reason (source table and id); orgmig_report has them all


@dataclass
class Run:
    id: int
    step: str
    direction: str
    status: str
    state: str  # the status, or `interrupted` for a `running` run no live process holds
    live: bool
    batch_size: int  # the size of the latest claim (an adaptive batch size changes it)
    cursor_key: int | None
    max_key: int | None
    last_error: str | None
    settings: dict | None  # how the process that started or last resumed it ran it (None: not recorded)
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass
class BatchFigures:
    batches: int = 0
    succeeded: int = 0
    failed: int = 0
    claimed: int = 0
    problems: int = 0
    median_ms: float | None = None
    p95_ms: float | None = None
    max_ms: int | None = None


@dataclass
class Point:
    """One batch that succeeded: when it finished (seconds after the run started), its rows,
    its duration, whether it needed more than one attempt."""

    at_s: float
    rows: int
    duration_ms: int | None
    retried: bool


@dataclass
class Problem:
    start_key: int
    end_key: int
    status: str
    attempts: int
    rows_read: int
    duration_ms: int | None
    finished_at: datetime
    error: str | None


@dataclass
class Sample:
    table: str
    id: int


@dataclass
class Reason:
    reason: str
    total: int
    not_migrated: int
    this_run: int
    samples: list[Sample] = field(default_factory=list)  # the first few rows, by source table and id


@dataclass
class RunReport:
    run: Run
    database: str
    generated_at: datetime
    totals: RunFigures  # rows, time, rate, batches, retried: what the console summary shows
    figures: BatchFigures
    timeline: list[Point] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    steering: report_steering.Steering | None = None


def one_line(error: str | None, limit: int = ERROR_CHARS) -> str | None:
    """The first line of a recorded error, cut at `limit` characters."""
    if not error or not error.strip():
        return None
    line = error.strip().splitlines()[0].strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _in_order(settings: dict | None) -> dict | None:
    """The recorded settings in the order they are recorded (jsonb keeps its own)."""
    if settings is None:
        return None
    order = ("workers", *RECORDED_SETTINGS)
    return {k: settings[k] for k in sorted(settings, key=lambda k: order.index(k) if k in order else len(order))}


def _run(conn: Connection, run_id: int) -> Run:
    if not runs.exists(conn):
        raise ConfigError(f"no run {run_id}: this database has no orgmig_run table (revision 0003 is not"
                          " applied; `orgmig status` shows the revisions)")
    row = runs.one(conn, run_id)
    if row is None:
        raise ConfigError(f"no run {run_id} in orgmig_run (`orgmig status` lists the runs)")
    live = row["id"] in runs.live_ids(conn)
    state = row["status"] if live or row["status"] != "running" else "interrupted"
    return Run(
        id=row["id"], step=row["step"], direction=row["direction"], status=row["status"], state=state,
        live=live, batch_size=row["batch_size"], cursor_key=row["cursor_key"], max_key=row["max_key"],
        last_error=row["last_error"], settings=_in_order(row["settings"]), started_at=_utc(row["started_at"]),
        updated_at=_utc(row["updated_at"]), finished_at=_utc(row["finished_at"]),
    )


def collect(engine: Engine, run_id: int) -> RunReport:
    """Everything the page shows about run `run_id`; ConfigError (one line) when there is no such run."""
    with engine.connect() as conn:
        run = _run(conn, run_id)
        totals = run_figures(conn, run_id, run.live)
        params = {"run_id": run_id}
        f = conn.execute(SQL("report.batch_figures"), params).mappings().one()
        figures = BatchFigures(**{k: (v if v is not None or k.endswith("_ms") else 0) for k, v in f.items()})
        timeline = [Point(r.at_s, r.rows_read, r.duration_ms, r.retried)
                    for r in conn.execute(SQL("report.timeline"), params)]
        problems = [Problem(**{**r, "finished_at": _utc(r["finished_at"]), "error": one_line(r["error"])})
                    for r in conn.execute(SQL("report.problems"), {**params, "limit": PROBLEMS_SHOWN}).mappings()]
        reasons = [Reason(**{**r, "samples": [Sample(**x) for x in r["samples"]]})
                   for r in conn.execute(SQL("report.reasons"),
                                         {**params, "step": run.step, "samples": SAMPLES_SHOWN}).mappings()]
        steering = report_steering.collect(conn, run_id, SQL, run.settings)
    return RunReport(run=run, database=engine.url.database or "", generated_at=datetime.now(UTC),
                     totals=totals, figures=figures, timeline=timeline, problems=problems, reasons=reasons,
                     steering=steering)


@dataclass
class Bucket:
    start_s: float
    seconds: float
    rows: int

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def rate_buckets(timeline: list[Point], elapsed_s: float, target: int = 40) -> tuple[float, list[Bucket]]:
    """Rows finished per time bucket from the run's start, with the bucket width (seconds): the
    run's time cut into equal buckets, as many as a round width from NICE_SECONDS gives (at most
    `target`, and about five batches a bucket at least: with one or two batches a bucket, a
    steady run would look like a saw), each bucket then stretched a little so that they cover
    the run exactly. Every bucket is as wide as the others, and its rate is the true average
    over the time it covers; empty buckets are included (a pause shows)."""
    if not timeline:
        return 0.0, []
    span = max(elapsed_s, max(p.at_s for p in timeline), 1e-3)
    target = max(1, min(target, len(timeline) // 5))
    nice = next((w for w in NICE_SECONDS if span / w <= target), NICE_SECONDS[-1])
    count = max(round(span / nice), 1)
    width = span / count
    rows = [0] * count
    for p in timeline:
        rows[min(max(int(p.at_s // width), 0), count - 1)] += p.rows
    return width, [Bucket(i * width, width, n) for i, n in enumerate(rows)]


NICE_SECONDS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                86400)
