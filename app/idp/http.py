"""The asynchronous HTTP core every provider client uses.

One `HttpCore` per export: an httpx client, a token source, a header-driven rate limiter, a
bounded number of requests in flight, and the retry rules:
- 429: wait until the bucket's reset (or `Retry-After`) plus jitter, then try again;
- 5xx, 408, timeouts, dropped connections, truncated or malformed bodies: capped exponential
  backoff with jitter, a bounded number of times;
- a host that cannot be reached before it ever answered (its name does not resolve, the
  connection is refused): CONNECT_ATTEMPTS tries a moment apart, then one line naming the base
  URL's variable and the host (`IdpConnectError`, exit 2); once the provider has answered, a
  refused connection is an outage like a 5xx and takes the backoff above;
- 401: fetch a fresh token once, then fail; 403: fail at once naming the scope or role needed;
- any other 4xx: fail, naming the endpoint, the status and the provider's own message.
Every request has an overall deadline, so a body that trickles forever counts as a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from app import db
from app.config import Settings, get_settings
from app.idp import jsonfast
from app.idp.errors import IdpAuthError, IdpConnectError, IdpHttpError, redact
from app.idp.ratelimit import RateLimiter, header_int

if TYPE_CHECKING:
    from app.idp.tokens import TokenSource

log = logging.getLogger("app.idp")

RETRY_STATUSES = {408, 500, 502, 503, 504}
CONNECT_ATTEMPTS = 3  # tries of a host that never answered, CONNECT_PAUSE * n seconds apart
CONNECT_PAUSE = 0.5


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # for 5xx, timeouts and broken bodies
    rate_limit_attempts: int  # for 429
    base_delay: float
    max_delay: float
    request_timeout: float  # connect/read/write, per operation
    deadline: float  # the whole request, body included

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RetryPolicy:
        """The ORGMIG_IDP_* settings. The deadline is never shorter than three operation timeouts
        (connect, write, read), so raising the request timeout alone does what it says."""
        s = settings or get_settings()
        return cls(
            attempts=s.idp_retry_attempts,
            rate_limit_attempts=s.idp_rate_limit_attempts,
            base_delay=s.idp_backoff_base_seconds,
            max_delay=s.idp_backoff_max_seconds,
            request_timeout=s.idp_request_timeout_seconds,
            deadline=max(s.idp_deadline_seconds, 3 * s.idp_request_timeout_seconds),
        )

    def backoff(self, attempt: int) -> float:
        return db.backoff(attempt, self.base_delay, self.max_delay)


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@dataclass(frozen=True)
class Request:
    """One logical request, as `HttpCore.request` was asked for it."""

    method: str
    url: str
    endpoint: str  # the path without the query string, for messages
    bucket: str
    params: dict | None = None
    json_body: Any = None
    data: dict | None = None
    need: str | None = None  # the scope or role a 403 means is missing
    auth: bool = True
    basic: tuple[str, str] | None = None
    expect: str = "json"  # "json", "ndjson" or "bytes"
    allow_404: bool = False


@dataclass
class Reply:
    status: int
    headers: httpx.Headers
    body: Any
    url: httpx.URL

    @property
    def path(self) -> str:
        return self.url.path


class _Retry(Exception):
    def __init__(self, reason: str, delay: float, kind: str) -> None:
        self.reason, self.delay, self.kind = reason, delay, kind


class ConcurrencyGate:
    """At most `limit` requests in flight, and no bucket more than `limit - 2` of them, so a
    long sequential listing (users) always finds a slot beside many parallel ones (group
    members). Lowered when the provider reports its concurrency limit (an Okta 429 whose
    X-Rate-Limit-Limit is 0)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.active = 0
        self.by_bucket: dict[str, int] = {}
        self._cond = asyncio.Condition()

    def _share(self) -> int:
        return max(1, self.limit - 2)

    @contextlib.asynccontextmanager
    async def slot(self, bucket: str):
        async with self._cond:
            await self._cond.wait_for(
                lambda: self.active < self.limit and self.by_bucket.get(bucket, 0) < self._share())
            self.active += 1
            self.by_bucket[bucket] = self.by_bucket.get(bucket, 0) + 1
        try:
            yield
        finally:
            async with self._cond:
                self.active -= 1
                self.by_bucket[bucket] -= 1
                self._cond.notify_all()

    def lower(self) -> None:
        if self.limit > 1:
            self.limit -= 1


class HttpCore:
    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        concurrency: int,
        token: TokenSource | None = None,
        rate_prefix: str = "x-rate-limit",
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        unauthorized_hint: str = "check the credentials",
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        # The variable that sets base_url (each provider's settings name it so), for the line that
        # says the host cannot be reached.
        self.base_url_setting = f"{provider.upper()}_BASE_URL"
        self.answered = False  # whether the provider has sent any answer yet
        self.token = token
        self.rate_prefix = rate_prefix
        self.retry = retry or RetryPolicy.from_settings()
        self.limiter = limiter or RateLimiter()
        self.gate = ConcurrencyGate(concurrency)
        self.stats = Stats()
        self.unauthorized_hint = unauthorized_hint
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.retry.request_timeout),
            limits=httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2),
            headers={"Accept": "application/json", "User-Agent": "orgmig-export/0.1"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> HttpCore:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json_body: Any = None,
        data: dict | None = None,
        bucket: str,
        need: str | None = None,
        auth: bool = True,
        basic: tuple[str, str] | None = None,
        expect: str = "json",
        allow_404: bool = False,
    ) -> Reply:
        """Send one logical request, retrying as the rules above say. `need` names the scope or
        role a 403 means is missing. `expect` is "json", "ndjson" or "bytes"."""
        path = httpx.URL(url).path if url.startswith("http") else url.split("?", 1)[0]
        req = Request(method, url, path, bucket, params=params, json_body=json_body, data=data, need=need,
                      auth=auth, basic=basic, expect=expect, allow_404=allow_404)
        attempts = rate_attempts = connects = 0
        refreshed = False
        started = time.monotonic()
        while True:
            try:
                return await self._once(req)
            except _Retry as retry:
                if retry.kind == "connect" and not self.answered:
                    connects += 1
                    if connects >= CONNECT_ATTEMPTS:
                        raise self._unreachable(req, retry.reason, connects, time.monotonic() - started) from None
                    log.debug("%s %s: %s; trying again in %.1fs", req.method, req.endpoint, retry.reason,
                              CONNECT_PAUSE * connects)
                    await asyncio.sleep(CONNECT_PAUSE * connects)
                    continue
                if retry.kind == "rate":
                    rate_attempts += 1
                    self.stats.rate_limited += 1
                    if rate_attempts >= self.retry.rate_limit_attempts:
                        raise IdpHttpError(req.method, req.endpoint, 429,
                                           f"still rate limited after {rate_attempts} waits") from None
                    delay = retry.delay
                elif retry.kind == "unauthorized":
                    if refreshed or not req.auth or self.token is None or not self.token.refreshable:
                        raise IdpAuthError(req.method, req.endpoint, 401, retry.reason) from None
                    refreshed = True
                    self.token.invalidate()
                    delay = 0.0
                else:
                    attempts += 1
                    if attempts >= self.retry.attempts:
                        status = retry.kind if retry.kind.isdigit() else None
                        raise IdpHttpError(req.method, req.endpoint, int(status) if status else None,
                                           f"{retry.reason} (gave up after {attempts} attempts)") from None
                    delay = self.retry.backoff(attempts)
                self.stats.retries += 1
                status = f" {retry.kind}" if retry.kind.isdigit() else ""
                log.info("%s %s%s: %s; retrying in %.1fs", req.method, req.endpoint, status, retry.reason, delay)
                if delay > 0:
                    await asyncio.sleep(delay)

    async def _once(self, req: Request) -> Reply:
        bucket = req.bucket
        await self.limiter.acquire(bucket)
        try:
            # After any rate-limit wait (a token fetched before it could expire during it), and
            # before taking a request slot (the token request needs one of its own).
            headers = {}
            if req.auth and self.token is not None:
                headers["Authorization"] = await self.token.authorization(self)
            async with self.gate.slot(bucket):
                self.stats.requests += 1
                started = time.monotonic()
                try:
                    async with asyncio.timeout(self.retry.deadline):
                        response = await self.client.request(
                            req.method, req.url, params=req.params, json=req.json_body, data=req.data,
                            headers=headers, auth=httpx.BasicAuth(*req.basic) if req.basic else None,
                        )
                        raw = await response.aread()
                except (TimeoutError, httpx.TimeoutException):
                    waited = time.monotonic() - started
                    raise _Retry(f"no complete answer within {waited:.0f}s", 0, "timeout") from None
                except httpx.ConnectError as exc:
                    raise _Retry(_connect_reason(exc), 0, "connect") from None
                except httpx.RemoteProtocolError as exc:
                    raise _Retry(f"connection broke mid-answer ({_first_line(exc)})", 0, "transport") from None
                except httpx.TransportError as exc:
                    raise _Retry(f"{type(exc).__name__} ({_first_line(exc)})", 0, "transport") from None
        finally:
            self.limiter.release(bucket)
        self.answered = True
        self.limiter.update(bucket, response.headers, self.rate_prefix, sent_at=started)
        status = response.status_code
        if status == 429:
            if header_int(response.headers, f"{self.rate_prefix}-limit") == 0:
                self.gate.lower()
            wait = self.limiter.block(bucket, response.headers, self.rate_prefix, fallback=1.0)
            raise _Retry(f"429 rate limited on bucket {bucket}", wait, "rate")
        if status in RETRY_STATUSES:
            raise _Retry(_summary(raw) or response.reason_phrase or "server error", 0, str(status))
        if status == 401:
            detail = _summary(raw)
            raise _Retry(f"the credentials were rejected ({self.unauthorized_hint})"
                         f"{f': {detail}' if detail else ''}", 0, "unauthorized")
        if status == 403:
            reason = f"permission denied: the credentials lack {req.need}" if req.need else "permission denied"
            detail = _summary(raw)
            raise IdpAuthError(req.method, req.endpoint, 403, f"{reason}{f' ({detail})' if detail else ''}")
        if status == 404 and req.allow_404:
            return Reply(status, response.headers, None, response.url)
        if status >= 300:
            raise IdpHttpError(req.method, req.endpoint, status, _summary(raw) or response.reason_phrase,
                               code=_error_code(raw))
        if req.expect == "bytes":
            return Reply(status, response.headers, raw, response.url)
        try:
            if req.expect == "ndjson":
                body = [jsonfast.loads(line) for line in raw.splitlines() if line.strip()]
            else:
                body = jsonfast.loads(raw) if raw.strip() else None
        except jsonfast.DecodeError as exc:
            declared = response.headers.get("content-length")
            why = "truncated" if declared and declared.isdigit() and int(declared) != len(raw) else "malformed"
            raise _Retry(f"{why} JSON body ({_first_line(exc)})", 0, str(status)) from None
        return Reply(status, response.headers, body, response.url)

    def _unreachable(self, req: Request, reason: str, tries: int, seconds: float) -> IdpConnectError:
        url = httpx.URL(req.url) if req.url.startswith("http") else httpx.URL(self.base_url)
        where = f"{url.host}:{url.port}" if url.port else url.host
        return IdpConnectError(
            f"{self.provider}: cannot reach {where} ({reason}; {tries} tries over {seconds:.1f}s):"
            f" check {self.base_url_setting} (now {self.base_url})")


def _connect_reason(exc: BaseException) -> str:
    """Why a connection could not be made, in a person's words: the name does not resolve, or
    nothing listens on the port (the OS errors httpx wraps), else the error's first line."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused: nothing listens on that port"
        seen = seen.__cause__ or seen.__context__
    text = _first_line(exc)
    if "Name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "the host name does not resolve"
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused: nothing listens on that port"
    return f"cannot connect ({text})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0][:160]) if text else type(exc).__name__


def _error_body(raw: bytes) -> dict:
    """An error answer's JSON object (empty when it is none: an HTML page, say)."""
    try:
        body = jsonfast.loads(raw)
    except jsonfast.DecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(raw: bytes) -> str | None:
    """The provider's own error code: Okta's and Auth0's `errorCode`, else an OAuth `error`."""
    body = _error_body(raw)
    code = body.get("errorCode") or body.get("error")
    return code if isinstance(code, str) and code else None


def _summary(raw: bytes) -> str:
    """The provider's own short error text, from the JSON error shapes the three APIs use."""
    body = _error_body(raw)
    parts = []
    for key in ("errorCode", "errorSummary", "error", "error_description", "errorMessage", "message"):
        value = body.get(key)
        if isinstance(value, str) and value and value not in parts:
            parts.append(value)
    return redact(": ".join(parts)[:240])
