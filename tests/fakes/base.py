"""Shared machinery of the fake identity-provider servers.

- `FakeServer`: a real HTTP/1.1 server (`http.server.ThreadingHTTPServer`, one thread per
  connection, keep-alive) on 127.0.0.1 and an ephemeral port, started and stopped as a context
  manager. It records every request, counts requests in flight (for concurrency limits), routes
  to the provider's handlers and applies injected faults.
- `Faults`: the fault queue (429 storms, 5xx, slow responses, truncated bodies, malformed JSON,
  dropped connections, cursors that repeat).
- `FixedWindowLimiter` and `TokenBucket`: the two rate-limit models (Okta, Auth0).
- `JwtSigner` and `verify_rsa_jwt`: access tokens minted by the fakes (HS256 with a per-server
  key) and RS256/384/512 client assertions checked against a configured public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

UTC = UTC
JSON_TYPE = "application/json; charset=utf-8"

# --------------------------------------------------------------------------- helpers


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z, as all three providers print timestamps."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def epoch_ms(dt: datetime) -> int:
    return int(round(dt.timestamp() * 1000))


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_iso(text: str) -> datetime | None:
    """Parse `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]` (naive means UTC); None if invalid."""
    m = _ISO_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        dt = datetime.fromtimestamp(dt.timestamp() - offset, UTC)
    return dt


def derived_id(prefix: str, *parts: str, length: int = 20) -> str:
    """A deterministic id of `length` characters (prefix included, the rest [0-9A-Za-z]),
    derived from `parts`."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    need = length - len(prefix)
    while len(digest) * 4 // 3 < need:
        digest += hashlib.sha256(digest).digest()
    return prefix + base64.b64encode(digest, b"Zz")[:need].decode("ascii")


def derived_hex(*parts: str, length: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def decode_cursor(text: str) -> Any:
    """Raise ValueError on anything that is not a cursor this server made."""
    try:
        return json.loads(b64url_decode(text))
    except Exception as exc:
        raise ValueError("invalid cursor") from exc


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------- JWT


class JwtSigner:
    """Mints and checks HS256 JWTs with a key private to one fake server."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def mint(self, claims: dict[str, Any], *, kid: str = "fake-signing-key") -> str:
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        signing_input = f"{b64url(dumps(header))}.{b64url(dumps(claims))}"
        sig = hmac.new(self.key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(sig)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims if the signature is ours, else None (expiry is the caller's business)."""
        try:
            header_b64, claims_b64, sig_b64 = token.split(".")
            expected = hmac.new(self.key, f"{header_b64}.{claims_b64}".encode("ascii"), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, b64url_decode(sig_b64)):
                return None
            claims = json.loads(b64url_decode(claims_b64))
            return claims if isinstance(claims, dict) else None
        except Exception:  # noqa: BLE001 - any malformed token is simply invalid
            return None


def split_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) without verifying; ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except Exception as exc:
        raise ValueError("JWT parts are not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWT header and claims must be objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), sig


_DIGEST_INFO = {
    "RS256": (hashlib.sha256, bytes.fromhex("3031300d060960864801650304020105000420")),
    "RS384": (hashlib.sha384, bytes.fromhex("3041300d060960864801650304020205000430")),
    "RS512": (hashlib.sha512, bytes.fromhex("3051300d060960864801650304020305000440")),
}


def _jwk_keys(key: Any) -> list[dict[str, Any]]:
    if isinstance(key, dict) and "keys" in key:
        return [k for k in key["keys"] if isinstance(k, dict)]
    if isinstance(key, dict):
        return [key]
    return []


def verify_rsa_jwt(public_key: Any, header: dict[str, Any], signing_input: bytes, signature: bytes) -> bool:
    """Check an RS256/RS384/RS512 signature (RSASSA-PKCS1-v1_5).

    `public_key` is an RSA JWK, a JWKS (`{"keys": [...]}`, matched on `kid` when both have one),
    or a PEM public key (needs the `cryptography` package)."""
    alg = header.get("alg")
    if alg not in _DIGEST_INFO:
        return False
    if isinstance(public_key, (str, bytes)):
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding
        except ImportError as exc:  # pragma: no cover - cryptography ships with pyjwt[crypto]
            raise RuntimeError("a PEM public key needs the cryptography package; pass a JWK instead") from exc
        pem = public_key.encode() if isinstance(public_key, str) else public_key
        key = serialization.load_pem_public_key(pem)
        algo = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(), "RS512": hashes.SHA512()}[alg]
        try:
            key.verify(signature, signing_input, padding.PKCS1v15(), algo)  # type: ignore[union-attr]
            return True
        except Exception:  # noqa: BLE001
            return False
    digest_fn, prefix = _DIGEST_INFO[alg]
    kid = header.get("kid")
    for jwk in _jwk_keys(public_key):
        if jwk.get("kty") != "RSA":
            continue
        if kid and jwk.get("kid") and jwk["kid"] != kid:
            continue
        n = int.from_bytes(b64url_decode(jwk["n"]), "big")
        e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        k = (n.bit_length() + 7) // 8
        if len(signature) != k:
            continue
        em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
        t = prefix + digest_fn(signing_input).digest()
        expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        if hmac.compare_digest(em, expected):
            return True
    return False


# --------------------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class RateState:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds


class FixedWindowLimiter:
    """`limit` requests per window of `window_seconds`. A window opens with the first request
    after the previous one closed; `reset` is when the current window closes (epoch seconds,
    rounded up)."""

    def __init__(self, limit: int, window_seconds: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = float(window_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._start = -math.inf
        self._count = 0

    def _roll(self, now: float) -> float:
        if now >= self._start + self.window:
            self._start = now
            self._count = 0
        return self._start + self.window

    def hit(self) -> RateState:
        with self._lock:
            end = self._roll(self.clock())
            reset = int(math.ceil(end))
            if self._count >= self.limit:
                return RateState(False, self.limit, 0, reset)
            self._count += 1
            return RateState(True, self.limit, self.limit - self._count, reset)

    def peek(self) -> RateState:
        with self._lock:
            now = self.clock()
            if now >= self._start + self.window:
                return RateState(True, self.limit, self.limit, int(math.ceil(now + self.window)))
            return RateState(True, self.limit, max(0, self.limit - self._count),
                             int(math.ceil(self._start + self.window)))

    def exhaust(self) -> RateState:
        """Use up the rest of the current window (a storm of requests from elsewhere)."""
        with self._lock:
            end = self._roll(self.clock())
            self._count = self.limit
            return RateState(False, self.limit, 0, int(math.ceil(end)))

    def seconds_until_reset(self) -> float:
        with self._lock:
            return max(0.0, self._start + self.window - self.clock())


class TokenBucket:
    """A bucket of `capacity` tokens refilled at `refill_per_second`; each request takes one.
    `reset` is when the bucket will be full again (after a 429: when one token is back)."""

    def __init__(self, capacity: int, refill_per_second: float, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self.rate = float(refill_per_second)
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._at = clock()

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.capacity), self._tokens + (now - self._at) * self.rate)
        self._at = now

    def _state(self, allowed: bool, now: float) -> RateState:
        if allowed:
            missing = self.capacity - self._tokens
            reset = now + (missing / self.rate if self.rate > 0 else 0.0)
        else:
            reset = now + ((1.0 - self._tokens) / self.rate if self.rate > 0 else 3600.0)
        return RateState(allowed, self.capacity, max(0, int(self._tokens)), int(math.ceil(reset)))

    def take(self) -> RateState:
        with self._lock:
            now = self.clock()
            self._refill(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return self._state(True, now)
            return self._state(False, now)

    def peek(self) -> RateState:
        with self._lock:
            now = self.clock()
            self._refill(now)
            return self._state(True, now)

    def exhaust(self) -> RateState:
        with self._lock:
            now = self.clock()
            self._refill(now)
            self._tokens = 0.0
            return self._state(False, now)


# --------------------------------------------------------------------------- faults


@dataclass
class FaultRule:
    kind: str  # 429 | 5xx | drop | slow | truncate | malformed | repeat_cursor | empty_pages
    remaining: int | None  # None: until cleared
    path_prefix: str | None = None
    status: int | None = None
    seconds: float = 0.0

    def matches(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)


@dataclass
class TakenFaults:
    delay: float = 0.0
    replace: FaultRule | None = None  # 429, 5xx or drop: the real handler is not run
    body: FaultRule | None = None  # truncate or malformed: applied to the real response

    @property
    def label(self) -> str | None:
        names = [r.kind for r in (self.replace, self.body) if r is not None]
        if self.delay:
            names.insert(0, "slow")
        return "+".join(names) or None


class Faults:
    """Faults for the next requests, consumed in the order they were added.

    Every method takes an optional `path_prefix` (matched against the request path, query
    excluded); without one the fault hits the next requests whatever they are, the token
    endpoint included. A request takes at most one response-replacing fault (429, 5xx, drop),
    at most one body fault (truncate, malformed; only when no replacing fault was taken) and
    the first matching `slow`."""

    _REPLACE = ("429", "5xx", "drop")
    _BODY = ("truncate", "malformed")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.generation = 0  # bumped by clear(): what a fault handed out (a cursor) may expire with it

    def _add(self, rule: FaultRule) -> FaultRule:
        if rule.remaining is not None and rule.remaining <= 0:
            raise ValueError("n must be positive")
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_429_storm(self, n: int = 5, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests get the provider's real 429 (headers and body)."""
        return self._add(FaultRule("429", n, path_prefix))

    def add_5xx(self, n: int = 3, status: int = 503, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests get `status` (500 with the provider's error body; 502/503/504
        as a fronting proxy or load balancer sends them, an HTML page)."""
        if not 500 <= status <= 599:
            raise ValueError("status must be 5xx")
        return self._add(FaultRule("5xx", n, path_prefix, status=status))

    def slow(self, seconds: float = 0.5, n: int = 2, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests wait `seconds` before being answered (they count as in flight)."""
        return self._add(FaultRule("slow", n, path_prefix, seconds=seconds))

    def truncate_body(self, n: int = 1, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` responses announce their full Content-Length, send half the body and
        close the connection (the client sees an incomplete read)."""
        return self._add(FaultRule("truncate", n, path_prefix))

    def malformed_json(self, n: int = 1, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` responses are complete HTTP messages whose JSON body is cut in half."""
        return self._add(FaultRule("malformed", n, path_prefix))

    def drop_connection(self, n: int = 1, *, path_prefix: str | None = None) -> FaultRule:
        """The next `n` requests get no response: the server closes the connection."""
        return self._add(FaultRule("drop", n, path_prefix))

    def repeat_cursor(self, path_prefix: str | None = None, n: int | None = None) -> FaultRule:
        """Paged responses under `path_prefix` point their next page at the page just served
        (Okta: `rel="next"` is the request's own URL; Auth0: `next` is the same checkpoint and
        `page` is ignored; Keycloak: `first` is ignored). Lasts until `clear()`, or `n` pages."""
        return self._add(FaultRule("repeat_cursor", n, path_prefix))

    def empty_pages(self, path_prefix: str | None = None, n: int | None = None) -> FaultRule:
        """Okta only: listings under `path_prefix` never end. Their last page gets a `rel="next"`
        link all the same, and that page and every one after it is `[]` with a next link to a
        cursor never handed out before. Lasts until `clear()`, or `n` such links; after `clear()`
        those cursors are refused as expired (400 E0000031), as a stale cursor is."""
        return self._add(FaultRule("empty_pages", n, path_prefix))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.generation += 1

    @property
    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [FaultRule(r.kind, r.remaining, r.path_prefix, r.status, r.seconds) for r in self._rules]

    def _consume(self, rule: FaultRule) -> None:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rules.remove(rule)

    def take(self, path: str) -> TakenFaults:
        taken = TakenFaults()
        with self._lock:
            slow = next((r for r in self._rules if r.kind == "slow" and r.matches(path)), None)
            replace = next((r for r in self._rules if r.kind in self._REPLACE and r.matches(path)), None)
            body = None
            if replace is None:
                body = next((r for r in self._rules if r.kind in self._BODY and r.matches(path)), None)
            for rule in (slow, replace, body):
                if rule is not None:
                    self._consume(rule)
            if slow is not None:
                taken.delay = slow.seconds
            taken.replace = replace
            taken.body = body
        return taken

    def take_repeat_cursor(self, path: str) -> bool:
        return self._take_kind("repeat_cursor", path)

    def take_empty_page(self, path: str) -> bool:
        return self._take_kind("empty_pages", path)

    def _take_kind(self, kind: str, path: str) -> bool:
        with self._lock:
            rule = next((r for r in self._rules if r.kind == kind and r.matches(path)), None)
            if rule is None:
                return False
            self._consume(rule)
            return True


# --------------------------------------------------------------------------- requests and responses


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    time: float
    body: bytes = b""
    query_list: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None  # None: the connection was dropped without a response
    duration: float | None = None
    fault: str | None = None

    def __repr__(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in self.query_list)
        fault = f" {self.fault}" if self.fault else ""
        return f"<{self.method} {self.path}{'?' + q if q else ''} -> {self.status}{fault}>"


class Request:
    """What a route handler sees."""

    __slots__ = ("method", "path", "raw_path", "raw_query", "query", "query_list", "headers", "body",
                 "params", "principal", "record", "route", "ctx")

    def __init__(self, method: str, path: str, raw_path: str, raw_query: str, query_list: list[tuple[str, str]],
                 headers: dict[str, str], body: bytes, record: RecordedRequest) -> None:
        self.method = method
        self.path = path
        self.raw_path = raw_path
        self.raw_query = raw_query
        self.query_list = query_list
        self.query: dict[str, str] = {}
        for k, v in query_list:
            self.query.setdefault(k, v)
        self.headers = headers
        self.body = body
        self.params: dict[str, str] = {}
        self.principal: Any = None
        self.record = record
        self.route: Route | None = None
        self.ctx: dict[str, Any] = {}

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        ctype = (self.header("content-type") or "").lower()
        if "application/json" in ctype:
            try:
                data = json.loads(self.body or b"{}")
            except ValueError:
                return {}
            if not isinstance(data, dict):
                return {}
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        out: dict[str, str] = {}
        for k, v in parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
            out.setdefault(k, v)
        return out

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                 content_type: str | None = JSON_TYPE) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = []
        if content_type and body:
            self.headers.append(("Content-Type", content_type))
        if headers:
            self.headers.extend(headers)

    @classmethod
    def json(cls, status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, dumps(obj), headers)

    @classmethod
    def raw_json(cls, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, body, headers)

    @classmethod
    def html(cls, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, text.encode("utf-8"), headers, content_type="text/html")

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def set_header(self, name: str, value: str) -> None:
        low = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != low]
        self.headers.append((name, value))


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Request], Response]
    auth: bool = True
    bucket: str | None = None
    need: tuple[tuple[str, ...], ...] = ()  # all of these groups; any one permission of each group


_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def proxy_error_page(status: int) -> Response:
    """The HTML page nginx sends for a 429 or a 5xx it generates itself."""
    reason = _REASONS.get(status, "Error")
    text = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return Response.html(status, text)


def malformed(body: bytes) -> bytes:
    cut = body[: len(body) // 2]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return b'{"' + cut  # the half happened to parse (empty or a scalar): make sure it does not


# --------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    fake: FakeServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        if self.server.fake.server_header:
            self.send_header("Server", self.server.fake.server_header)
        self.send_header("Date", self.date_time_string())

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def setup(self) -> None:
        super().setup()
        # Small responses must not wait for the client's delayed ACK (Nagle): no batching.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._connections.discard(self.connection)

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class FakeServer:
    """Base class of the three fakes. Subclasses fill `_routes` and provide the provider's
    error bodies through the hooks below."""

    server_header = "nginx"

    def __init__(self, tenant: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.tenant = tenant
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []  # tracebacks of handler crashes (a bug in the fake)
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._inflight = 0
        self.max_inflight_seen = 0
        self._connections: set[socket.socket] = set()
        self._routes: list[Route] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._on_start()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._connections.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _on_start(self) -> None:
        """Hook: the port is bound and `base_url` is known."""

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not started (use it as a context manager)")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # ------------------------------------------------------------ recorded requests
    def request_count(self, path_prefix: str | None = None, *, method: str | None = None,
                      status: int | None = None) -> int:
        return len(self.requests_matching(path_prefix, method=method, status=status))

    def requests_matching(self, path_prefix: str | None = None, *, method: str | None = None,
                          status: int | None = None) -> list[RecordedRequest]:
        with self._lock:
            reqs = list(self.requests)
        return [
            r for r in reqs
            if (path_prefix is None or r.path.startswith(path_prefix))
            and (method is None or r.method == method.upper())
            and (status is None or r.status == status)
        ]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
        self.max_inflight_seen = 0

    @property
    def inflight(self) -> int:
        return self._inflight

    # ------------------------------------------------------------ routing
    def route(self, method: str, pattern: str, handler: Callable[[Request], Response], *, auth: bool = True,
              bucket: str | None = None, need: Iterable[Iterable[str]] | str | None = None) -> None:
        if isinstance(need, str):
            need_t: tuple[tuple[str, ...], ...] = ((need,),)
        else:
            need_t = tuple(tuple(g) for g in (need or ()))
        self._routes.append(Route(method, re.compile(pattern), handler, auth, bucket, need_t))

    # Hooks the providers implement -----------------------------------------------------------
    def _concurrency_response(self, req: Request, inflight: int) -> Response | None:
        return None

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "429":
            return proxy_error_page(429)
        return proxy_error_page(rule.status or 503)

    def _before(self, req: Request, route: Route) -> Response | None:
        """Authentication, authorization and rate limiting; a Response stops the request."""
        return None

    def _after(self, req: Request, resp: Response) -> Response:
        """Headers every response carries (rate-limit headers...)."""
        return resp

    def _not_found(self, req: Request) -> Response:
        return Response.json(404, {"error": "Not Found"})

    def _method_not_allowed(self, req: Request) -> Response:
        return Response.json(405, {"error": "Method Not Allowed"})

    def _internal_error(self, req: Request) -> Response:
        return Response.json(500, {"error": "Internal Server Error"})

    # ------------------------------------------------------------ request handling
    def _dispatch(self, req: Request) -> Response:
        allowed = False
        for route in self._routes:
            m = route.pattern.fullmatch(req.raw_path)
            if m is None:
                continue
            if route.method != req.method and not (route.method == "GET" and req.method == "HEAD"):
                allowed = True
                continue
            req.params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
            req.route = route
            stop = self._before(req, route)
            if stop is not None:
                return stop
            return route.handler(req)
        return self._method_not_allowed(req) if allowed else self._not_found(req)

    def _serve(self, h: _Handler) -> None:
        started = time.time()
        split = urlsplit(h.path)
        raw_path = split.path or "/"
        headers = {k.lower(): v for k, v in h.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        query_list = parse_qsl(split.query, keep_blank_values=True)
        record = RecordedRequest(h.command, unquote(raw_path), {}, headers, started, body, query_list)
        for k, v in query_list:
            record.query.setdefault(k, v)
        req = Request(h.command, record.path, raw_path, split.query, query_list, headers, body, record)
        with self._lock:
            self.requests.append(record)
            self._inflight += 1
            inflight = self._inflight
            self.max_inflight_seen = max(self.max_inflight_seen, inflight)
        decremented = False

        def leave() -> None:
            nonlocal decremented
            if not decremented:
                with self._lock:
                    self._inflight -= 1
                decremented = True

        try:
            taken = TakenFaults()
            resp = self._concurrency_response(req, inflight)
            if resp is not None:
                record.fault = "concurrency"
            else:
                taken = self.faults.take(req.path)
                record.fault = taken.label
                if taken.delay:
                    time.sleep(taken.delay)
                if taken.replace is not None and taken.replace.kind == "drop":
                    leave()
                    record.duration = time.time() - started
                    h.close_connection = True
                    try:
                        h.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if taken.replace is not None:
                    resp = self._fault_response(req, taken.replace)
                else:
                    try:
                        resp = self._dispatch(req)
                    except Exception:  # noqa: BLE001 - report, answer 500, keep serving
                        tb = traceback.format_exc()
                        self.server_errors.append(tb)
                        print(f"{type(self).__name__}: handler error for {req.method} {req.path}\n{tb}",
                              file=sys.stderr)
                        resp = self._internal_error(req)
            resp = self._after(req, resp)
            truncate = taken.body is not None and taken.body.kind == "truncate" and len(resp.body) > 1
            if taken.body is not None and taken.body.kind == "malformed":
                resp.body = malformed(resp.body)
            record.status = resp.status
            record.duration = time.time() - started
            leave()
            self._write(h, req, resp, truncate)
        finally:
            leave()

    def _write(self, h: _Handler, req: Request, resp: Response, truncate: bool) -> None:
        try:
            h.send_response(resp.status)
            for k, v in resp.headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(resp.body)))
            if truncate:
                h.send_header("Connection", "close")
            h.end_headers()  # writes the status line and headers
            if req.method != "HEAD":
                h.wfile.write(resp.body[: len(resp.body) // 2] if truncate else resp.body)
            h.wfile.flush()
            if truncate:
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    # ------------------------------------------------------------ paging helpers
    @staticmethod
    def int_param(req: Request, name: str, default: int | None) -> int | None:
        """The integer query parameter `name`; ValueError if present and not an integer."""
        raw = req.query.get(name)
        if raw is None or raw == "":
            return default
        return int(raw)
