"""`FakeServer`: a real HTTP/1.1 server (`http.server.ThreadingHTTPServer`, one thread per
connection, keep-alive) on 127.0.0.1 and an ephemeral port, started and stopped as a context
manager. It records every request, counts requests in flight (for concurrency limits), routes to
the provider's handlers over one route table and applies injected faults.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .faults import FaultRule, Faults, TakenFaults
from .wire import RecordedRequest, Request, Response, Route, malformed, proxy_error_page


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

    @staticmethod
    def int_param(req: Request, name: str, default: int | None) -> int | None:
        """The integer query parameter `name`; ValueError if present and not an integer."""
        raw = req.query.get(name)
        if raw is None or raw == "":
            return default
        return int(raw)
