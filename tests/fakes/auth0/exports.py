"""Bulk user export jobs: the job's life, its presigned link and the gzip NDJSON or CSV file."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..base import UTC, Request, Response, iso, parse_iso
from .lucene import _resolve
from .scopes import DB_CONNECTION, SOCIAL_CONNECTION

DEFAULT_EXPORT_FIELDS = ("user_id", "email", "email_verified", "username", "name", "given_name", "family_name",
                         "nickname", "picture", "created_at", "updated_at", "last_login", "logins_count", "blocked",
                         "identities", "app_metadata", "user_metadata")


@dataclass
class ExportJob:
    id: str
    created: float
    created_at: str
    connection_id: str | None
    connection: str | None
    format: str
    limit: int | None
    fields: list[dict[str, str]] | None
    payload: bytes
    fail: bool = False
    links: list[str] = field(default_factory=list)


class Auth0Exports:
    """User export jobs and their downloads."""

    def export_lines(self, job_id: str) -> list[dict[str, Any]]:
        """The decoded NDJSON lines of a JSON export job's file."""
        data = gzip.decompress(self.jobs[job_id].payload).decode("utf-8")
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def _create_export(self, req: Request) -> Response:
        try:
            body = req.json() or {}
        except ValueError:
            return self._bad_request("Payload validation error: 'Invalid JSON'.", "invalid_body")
        if not isinstance(body, dict):
            return self._bad_request("Payload validation error: 'Expected type object'.", "invalid_body")
        fmt = body.get("format", "json")
        if fmt not in ("json", "csv"):
            return self._bad_request(f"Payload validation error: 'No enum match for: \"{fmt}\"' on property format "
                                     f"(Format of the file. Must be `json` or `csv`).", "invalid_body")
        conn_id = body.get("connection_id")
        connection = None
        if conn_id is not None:
            connection = {self.connection_id: DB_CONNECTION, self.social_connection_id: SOCIAL_CONNECTION}.get(conn_id)
            if connection is None:
                return self._bad_request("The connection does not exist.", "inexistent_connection")
        fields = body.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or not all(isinstance(f, dict) and f.get("name") for f in fields):
                return self._bad_request("Payload validation error: 'Expected type object' on property fields.",
                                         "invalid_body")
            if fmt == "csv" and len(fields) > 30:
                return self._bad_request("Payload validation error: 'Array is too long (31), maximum 30' on property "
                                         "fields.", "invalid_body")
        limit = body.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return self._bad_request("Payload validation error: 'Number is less than minimum value (1)' on property "
                                     "limit.", "invalid_body")
        job_id = "job_" + secrets.token_hex(8)[:16]
        now = time.time()
        payload = self._export_payload(fmt, connection, limit, fields)
        job = ExportJob(job_id, now, iso(datetime.fromtimestamp(now, UTC)) or "", conn_id, connection, fmt,
                        limit, fields, payload)
        if self.failing_exports > 0:
            self.failing_exports -= 1
            job.fail = True
        self.jobs[job_id] = job
        return Response.json(201, self._job_doc(job, include_location=False))

    def _export_payload(self, fmt: str, connection: str | None, limit: int | None,
                        fields: list[dict[str, str]] | None) -> bytes:
        with self.tenant.lock:
            aids = list(self._idx())
            docs = [self._doc(aid) for aid in aids]
        if connection is not None:
            docs = [d for d in docs if d["identities"][0]["connection"] == connection]
        if limit is not None:
            docs = docs[:limit]
        if fields is None:
            names = [n for n in DEFAULT_EXPORT_FIELDS if fmt == "json" or n not in ("identities", "app_metadata",
                                                                                   "user_metadata")]
            fields = [{"name": n} for n in names]
        columns = [(f["name"], f.get("export_as") or f["name"]) for f in fields]
        if fmt == "json":
            lines = []
            for d in docs:
                row = {}
                for name, out in columns:
                    v = _resolve(d, name)
                    if v is not None:
                        row[out] = v
                lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            raw = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
        else:
            # Auth0's CSV escaping (OWASP CSV injection): every string gets a leading single
            # quote and is wrapped in double quotes, inner double quotes doubled; Auth0-made
            # ISO-8601 dates, numbers and booleans are written as they are.
            def cell(v: Any) -> str:
                if v is None:
                    return ""
                if isinstance(v, bool):
                    return str(v).lower()
                if isinstance(v, (int, float)):
                    return str(v)
                if isinstance(v, (dict, list)):
                    v = json.dumps(v, ensure_ascii=False)
                elif parse_iso(v) is not None and v.endswith("Z"):
                    return v
                return '"\'' + str(v).replace('"', '""') + '"'

            out_lines = [",".join(out for _, out in columns)]
            out_lines += [",".join(cell(_resolve(d, name)) for name, _ in columns) for d in docs]
            raw = ("\n".join(out_lines) + "\n").encode("utf-8")
        return gzip.compress(raw, mtime=0)

    def _job_state(self, job: ExportJob) -> str:
        elapsed = time.time() - job.created
        if elapsed < self.export_delay / 2:
            return "pending"
        if elapsed < self.export_delay:
            return "processing"
        return "failed" if job.fail else "completed"

    def _job_doc(self, job: ExportJob, include_location: bool = True) -> dict[str, Any]:
        state = self._job_state(job) if include_location else "pending"
        doc: dict[str, Any] = {"type": "users_export", "status": state}
        if job.connection_id:
            doc["connection_id"] = job.connection_id
        doc["format"] = job.format
        if job.limit is not None:
            doc["limit"] = job.limit
        if job.fields is not None:
            doc["fields"] = job.fields
        if job.connection:
            doc["connection"] = job.connection
        doc["created_at"] = job.created_at
        doc["id"] = job.id
        if state == "processing":
            doc["percentage_done"] = min(99, int(100 * (time.time() - job.created) / max(self.export_delay, 1e-6)))
            doc["time_left_seconds"] = max(1, int(job.created + self.export_delay - time.time()) + 1)
        if state == "completed":
            doc["location"] = self._signed_location(job)
        if state == "failed":
            doc["status_details"] = "The export job failed. Please try again."
        return doc

    def _signed_location(self, job: ExportJob) -> str:
        deadline = time.time() + self.export_link_ttl
        expires = int(math.ceil(deadline))
        name = f"{self.tenant_name}.{job.format}.gz"
        nonce = secrets.token_hex(4)
        sig = hmac.new(self._link_key, f"{job.id}/{name}/{expires}/{nonce}".encode(), hashlib.sha256).hexdigest()
        url = f"{self.base_url}/exports/{job.id}/{name}?Expires={expires}&X-Nonce={nonce}&Signature={sig}"
        job.links.append(url)
        self._link_deadlines[sig] = deadline  # enforced to the millisecond, not the second
        return url

    def _get_job(self, req: Request) -> Response:
        jid = req.params["job"]
        if not re.fullmatch(r"job_[A-Za-z0-9]{16}", jid):
            return self._err(400, "Bad Request", "Path validation error: 'String does not match pattern "
                             "^job_[A-Za-z0-9]{16}$' on property id (The id of the job).", "invalid_uri")
        job = self.jobs.get(jid)
        if job is None:
            return self._err(404, "Not Found", "The job does not exist.", "inexistent_job")
        return Response.json(200, self._job_doc(job))

    def _s3_error(self, status: int, code: str, message: str) -> Response:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>")
        return Response(status, body.encode(), content_type="application/xml")

    def _download(self, req: Request) -> Response:
        job = self.jobs.get(req.params["job"])
        expires = req.query.get("Expires", "")
        sig = req.query.get("Signature", "")
        name = req.params["file"]
        if job is None or not expires.isdigit():
            return self._s3_error(403, "AccessDenied", "Access Denied")
        nonce = req.query.get("X-Nonce", "")
        expected = hmac.new(self._link_key, f"{job.id}/{name}/{expires}/{nonce}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            return self._s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                                  "the signature you provided.")
        if self._link_deadlines.get(sig, 0.0) < time.time():
            return self._s3_error(403, "AccessDenied", "Request has expired")
        return Response(200, job.payload, [("Content-Disposition", f'attachment; filename="{name}"')],
                        content_type="application/gzip")
