"""Runs one export: opens (or resumes) the provider's export run, pages through every stream
with bounded concurrency, and writes each page with its checkpoint before asking for the next.

A stream's pages are read one after another (each cursor comes from the previous answer); streams
run side by side. The order of work inside a stream is: fetch the page over the network, then write
it (rows and checkpoint) in one transaction in a worker thread. A failure anywhere stops the run,
marks it `failed` with a one-line reason, and the next export resumes it from its checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from app import db
from app.config import get_settings
from app.idp.config import ProviderSettings, checked
from app.idp.errors import (
    EndlessPagesError,
    ForeignLinkError,
    IdpError,
    IdpHttpError,
    PaginationError,
    SnapshotError,
    StaleCursorError,
    guarded_logs,
    redact,
    register_secret,
)
from app.idp.http import RetryPolicy
from app.idp.pages import Page, Stream
from app.idp.providers import Provider, load_settings, provider_class
from app.idp.snapshot import Counts, RunInfo, SnapshotWriter
from app.progress import Progress

log = logging.getLogger("app.idp")

MAX_PAGES_PER_STREAM = 1_000_000
# Empty pages in a row that each still hand out a next cursor, after which a listing is taken to
# never end (Okta, at times: `[]` with a fresh cursor, forever).
MAX_EMPTY_PAGES_IN_A_ROW = 3
WRITE_AHEAD = 4  # pages a stream may fetch ahead of its committed checkpoint
SPAWNED_WRITE_SLOTS = 2  # concurrent transactions of spawned streams (members of one group, ...)


class Tally:
    """What an export has done so far (its progress line), counted from the pages committed."""

    def __init__(self) -> None:
        self.pages = self.users = self.groups = self.memberships = 0
        self.streams_done = self.streams_known = 0
        self.started = time.monotonic()


@dataclass
class ExportResult:
    run_id: int
    provider: str
    mode: str
    resumed: bool
    counts: Counts
    requests: int
    pages: int
    seconds: float
    abandoned: int | None = None  # the unfinished run set aside for this one (`restart`, or another mode)


def export(provider: str, engine: Engine, *, since: datetime | None = None, concurrency: int | None = None,
           settings: ProviderSettings | None = None, terminal: bool | None = None,
           restart: bool = False) -> ExportResult:
    """Export one provider into the snapshot tables of `engine`'s database, resuming its
    unfinished run when that run asked for the same thing.

    `since` makes it incremental where the provider can filter by update time (else the export is
    a full one, and says so); `concurrency` bounds the requests in flight (default
    ORGMIG_EXPORT_CONCURRENCY); `settings` are the provider's (default: its environment);
    `terminal` picks the progress display (default: whether stderr is a terminal); `restart`
    sets the provider's unfinished run aside (`abandoned`) and starts a new one, where the default
    resumes it when it asked for the same thing.

    Raises ConfigError (the provider's settings), DatabaseError (the snapshot tables are missing)
    or IdpError (the export failed: the run is marked `failed` and the next export resumes it)."""
    cls = provider_class(provider)
    settings = checked(provider, settings) if settings is not None else load_settings(provider)
    tuning = get_settings()
    for secret in settings.secrets():
        register_secret(secret)
    writer = SnapshotWriter(engine, provider)
    writer.check_tables()
    if since is not None and not cls.supports_since:
        log.info("%s has no updated-since filter: running a full export", provider)
        since = None
    client = cls(settings, concurrency=concurrency or tuning.export_concurrency,
                 retry=RetryPolicy.from_settings(tuning), since=since)
    exporter = Exporter(client, writer, since=since, terminal=terminal, restart=restart)
    try:
        with guarded_logs():
            return asyncio.run(exporter.run())
    except (OperationalError, DBAPIError) as exc:
        raise SnapshotError(str(db.explain(exc, engine.url))) from None


class _StreamGuard:
    """Notices a cursor that comes back, a page sequence that does not end and a run of empty
    pages that each hand out a fresh cursor."""

    def __init__(self, provider: str, name: str) -> None:
        self.provider = provider
        self.name = name
        self.cursors: set[str] = set()
        self.ids: set[str] = set()
        self.pages = 0
        self.empty_in_a_row = 0
        # The last page with items: the cursor that fetched it, its count, the next cursor it gave.
        self.last_full: tuple[str | None, int, str | None] | None = None

    def rewind(self) -> tuple[str, str | None, int, str | None] | None:
        """The checkpoint to go back to when the provider's recent cursors cannot be trusted
        (endless empty pages): the stream's last page with items is read again (stream, the
        cursor that fetched it, its count, the next cursor it gave), where there is one."""
        if self.last_full is None or self.last_full[2] is None:
            return None
        return (self.name, *self.last_full)

    def check(self, cursor: str | None, page: Page) -> None:
        self.pages += 1
        if not page.empty:
            self.last_full = (cursor, page.count, page.next_cursor)
        self.empty_in_a_row = self.empty_in_a_row + 1 if page.empty and page.next_cursor is not None else 0
        if self.empty_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW:
            raise EndlessPagesError(
                f"{self.provider}: {page.endpoint}: {self.empty_in_a_row} empty pages in a row, each with a"
                f" next-page cursor (listing {self.name}): the provider's listing does not end; stopped"
                f" (the pages read are kept: running the export again resumes at the last page that had"
                f" items; `orgmig export --provider {self.provider} --restart` starts a new full run"
                f" instead)"
            )
        if cursor is not None:
            self.cursors.add(cursor)
        if page.next_cursor is not None:
            if page.next_cursor in self.cursors:
                raise PaginationError(
                    f"{page.endpoint}: the pagination cursor repeats after {self.pages} pages "
                    f"(stream {self.name}); the provider returned a cursor it had already returned"
                )
            self.cursors.add(page.next_cursor)
        if page.item_ids:
            new = [i for i in page.item_ids if i not in self.ids]
            if not new and page.next_cursor is not None:
                raise PaginationError(
                    f"{page.endpoint}: pagination does not end: page {self.pages} of stream {self.name} "
                    f"repeats only items already read"
                )
            self.ids.update(page.item_ids)
        if self.pages > MAX_PAGES_PER_STREAM:
            raise PaginationError(f"{page.endpoint}: pagination does not end after {self.pages} pages")


class Exporter:
    """One export run of one provider client (`run()` once). Everything it needs is set up here;
    the run's row and its task group are passed from `run()` to the steps that use them."""

    def __init__(self, client: Provider, writer: SnapshotWriter, *, since: datetime | None = None,
                 terminal: bool | None = None, restart: bool = False) -> None:
        self.client = client
        self.core = client.core
        self.provider = client.name
        self.writer = writer
        self.since = since
        self.mode = "incremental" if since is not None else "full"
        self.restart = restart
        self.tally = Tally()
        self.progress = Progress(self._line, log, terminal=terminal, log_every=10.0)
        self.roots = list(client.root_streams())
        self._started: set[str] = set()
        self._guards: list[_StreamGuard] = []  # one per stream read in this session
        self._spawned_writes = asyncio.Semaphore(SPAWNED_WRITE_SLOTS)
        self._pool = ThreadPoolExecutor(max_workers=len(self.roots) + SPAWNED_WRITE_SLOTS + 1,
                                        thread_name_prefix="idp-write")

    async def run(self) -> ExportResult:
        run = await asyncio.to_thread(self.writer.open_run, self.mode, self.since, self.restart)
        started = asyncio.get_running_loop().time()
        if run.abandoned is not None:
            log.info("%s: unfinished export run %s set aside (abandoned); its checkpoints are not used", self.provider,
                     run.abandoned)
        if run.resumed:
            done = sum(1 for s in run.streams.values() if s.done)
            log.info("%s: resuming export run %s (%d of %d streams done)", self.provider, run.id, done,
                     len(run.streams))
        else:
            log.info("%s: export run %s started (%s)", self.provider, run.id, self.mode)
        try:
            with self.progress:
                async with self.core:
                    await self._run_streams(run)
        except IdpError as exc:
            if isinstance(exc, EndlessPagesError):
                # Every stream stopped by it (its listing may answer the same way, the cursor it
                # had in hand unchecked) goes back to its last page with items; the writes have
                # all ended (the pool is shut down), and a checkpoint behind that page stays.
                for rewind in filter(None, (guard.rewind() for guard in self._guards)):
                    await asyncio.to_thread(self.writer.rewind, run.id, *rewind)
            await asyncio.to_thread(self.writer.fail_run, run.id, str(exc), self._requests(run))
            raise
        except BaseException as exc:
            message = redact(f"{type(exc).__name__}: {exc}".strip())
            await asyncio.shield(asyncio.to_thread(self.writer.fail_run, run.id, message, self._requests(run)))
            raise
        requests = self._requests(run)
        counts = await asyncio.to_thread(self.writer.finish_run, run.id, self.mode, requests)
        seconds = asyncio.get_running_loop().time() - started
        log.info("%s: export run %s finished: %d users, %d groups, %d memberships, %d requests this session",
                 self.provider, run.id, counts.users, counts.groups, counts.memberships, self.core.stats.requests)
        return ExportResult(run.id, self.provider, self.mode, run.resumed, counts, requests,
                            self.tally.pages, seconds, abandoned=run.abandoned)

    def _line(self) -> str:
        """Pages, users, groups, memberships, requests, retries and the rate-limit wait in
        progress: an export has no total (nobody knows how many pages are left)."""
        t, stats = self.tally, self.core.stats
        text = (f"{self.provider}: {t.pages} pages, {t.users} users, {t.groups} groups, "
                f"{t.memberships} memberships, {stats.requests} requests")
        if stats.retries:
            text += f", {stats.retries} retries"
        wait = self.core.limiter.current_wait()
        if wait is not None:
            text += f", waiting {wait[1]:.1f}s for the {wait[0]} rate limit"
        return text + f", streams {t.streams_done}/{t.streams_known}, {time.monotonic() - t.started:.0f}s"

    def _requests(self, run: RunInfo) -> int:
        """Requests of the run so far: earlier sessions' and this one's."""
        return run.requests + self.core.stats.requests

    async def _run_streams(self, run: RunInfo) -> None:
        names = self.roots + [n for n in run.streams if n not in self.roots]
        self.tally.streams_known = len(names)
        self.tally.streams_done = sum(1 for n in names if n in run.streams and run.streams[n].done)
        ticker = asyncio.create_task(self._tick(run))
        try:
            async with asyncio.TaskGroup() as tg:
                for name in names:
                    state = run.streams.get(name)
                    if state is not None and state.done:
                        self._started.add(name)
                        continue
                    self._start(tg, run, name, state.cursor if state else None)
        except BaseExceptionGroup as group:
            raise _first_cause(group) from None
        finally:
            ticker.cancel()
            self._pool.shutdown(wait=True)

    async def _tick(self, run: RunInfo) -> None:
        """Keep the progress display current while requests wait on a rate limit, and the run's
        request count current for `orgmig status`."""
        last_saved = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(0.25 if self.progress.terminal else 1.0)
            self.progress.update()
            now = asyncio.get_running_loop().time()
            if now - last_saved >= 5.0:
                last_saved = now
                try:
                    await asyncio.to_thread(self.writer.touch_run, run.id, self._requests(run))
                except (OperationalError, DBAPIError) as exc:
                    # Only bookkeeping: a page write that fails the same way stops the export.
                    log.debug("could not record the request count: %s", type(exc).__name__)

    def _start(self, tg: asyncio.TaskGroup, run: RunInfo, name: str, cursor: str | None) -> None:
        if name in self._started:
            return
        self._started.add(name)
        stream = self.client.stream(name)
        tg.create_task(self._drain(tg, run, stream, cursor), name=name)

    async def _drain(self, tg: asyncio.TaskGroup, run: RunInfo, stream: Stream, cursor: str | None) -> None:
        """Page through one stream: this task fetches, a writer task commits the pages in order,
        each with its checkpoint. Fetching runs up to WRITE_AHEAD pages ahead of the writes, so a
        slow transaction does not hold back the next request; no transaction waits on the network."""
        guard = _StreamGuard(self.provider, stream.name)
        self._guards.append(guard)
        pages: asyncio.Queue[Page] = asyncio.Queue(maxsize=WRITE_AHEAD)
        # In the task group: should the writer fail, the group cancels this fetcher (and the rest).
        writer = tg.create_task(self._write_stream(tg, run, stream, pages), name=f"{stream.name} (write)")
        checkpoint = cursor  # an earlier session's, asked for first (None: from the start)
        while True:
            try:
                page = await stream.fetch(cursor)
            except IdpHttpError as exc:
                if checkpoint is None:
                    raise
                await self._checkpoint_refused(run, stream.name, checkpoint, exc)
                cursor = checkpoint = None
                continue
            checkpoint = None
            guard.check(cursor, page)
            if page.empty and page.next_cursor is not None:
                # Nothing to write, and its cursor is no checkpoint: a resume asks for the next
                # cursor of the last page that had items (should the provider refuse that one as
                # stale, the stream starts over: _checkpoint_refused).
                cursor = page.next_cursor
                continue
            await pages.put(page)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        await writer
        self.tally.streams_done += 1
        self.progress.update()

    async def _checkpoint_refused(self, run: RunInfo, name: str, cursor: str, exc: IdpHttpError) -> None:
        """The provider refused the checkpoint cursor a resumed stream asked for first. One it
        calls stale (expired: the next cursor of the last page written, handed out by a listing
        that then went wrong, or simply too old) puts the stream back to its start, said in one
        line; the rest is raised, naming `--restart` where a rerun would send the same cursor."""
        if isinstance(exc, StaleCursorError):
            await asyncio.to_thread(self.writer.restart_stream, run.id, name, cursor)
            log.warning("%s: listing %s restarted from its first page: the provider refused the cursor of its"
                        " checkpoint as invalid or expired (%s)", self.provider, name, exc)
            return
        refused = exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 408, 429)
        if not (refused or isinstance(exc, ForeignLinkError)):
            raise exc  # the provider's state or the credentials: a rerun gets past it once they are fixed
        raise IdpError(f"{exc} (asking for the checkpoint of listing {name}: while it is refused,"
                       f" `orgmig export --provider {self.provider} --restart` sets this run aside and starts"
                       f" a new one)") from None

    async def _write_stream(self, tg: asyncio.TaskGroup, run: RunInfo, stream: Stream,
                            pages: asyncio.Queue[Page]) -> None:
        # The top-level listings are the long sequential chains that set the export's pace: their
        # writes never queue. The many streams they spawn (members of each group, ...) take
        # turns for a few write slots, so the database is not crowded by them.
        slots = contextlib.nullcontext() if stream.name in self.roots else self._spawned_writes
        loop = asyncio.get_running_loop()
        while True:
            page = await pages.get()
            async with slots:
                await loop.run_in_executor(self._pool, self.writer.write_page, run.id, stream.name, page,
                                           stream.members_of)
            self._count(tg, run, page)
            if page.next_cursor is None:
                return

    def _count(self, tg: asyncio.TaskGroup, run: RunInfo, page: Page) -> None:
        """A page committed: count it and start the streams it discovered (their rows may
        reference what it wrote, so they start only now)."""
        self.tally.pages += 1
        self.tally.users += len(page.users)
        self.tally.groups += len(page.groups)
        self.tally.memberships += len(page.members)
        new = [s for s in page.spawn if s not in self._started]
        self.tally.streams_known += len(new)
        for name in new:
            self._start(tg, run, name, None)
        self.progress.update()


def _first_cause(group: BaseExceptionGroup) -> BaseException:
    """The error a person should read: the first export error, else the first error at all."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, IdpError):
            return exc
    return leaves[0]
