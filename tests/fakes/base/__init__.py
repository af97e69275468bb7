"""Shared machinery of the fake identity-provider servers, one concern a module:

- `server`: `FakeServer`, the HTTP server, its one route table and the request loop that records
  requests, counts them in flight and applies injected faults; each provider adds its routes and
  overrides the hooks (`_before`, `_after`, `_fault_response`, error pages).
- `wire`: `Request`, `Response`, `Route`, `RecordedRequest`, proxy error pages.
- `faults`: `Faults`, the fault queue tests fill.
- `limits`: `FixedWindowLimiter` and `TokenBucket`, the two rate-limit models (Okta, Auth0).
- `jwt`: `JwtSigner` (the fakes' HS256 access tokens) and `verify_rsa_jwt` (client assertions).
- `index`: `TenantIndex`, a provider's ids and orders rebuilt once when the tenant's structure
  changes, and `Renderings`, documents and derived lists kept until what they were built from
  changes.
- `encoding`: dates, derived ids, base64url, opaque cursors, compact JSON.
- `predicates`: `Predicate` and the `either`/`both`/`chain` the two query parsers build with.
"""

from .encoding import (
    JSON_TYPE,
    UTC,
    b64url,
    b64url_decode,
    decode_cursor,
    derived_hex,
    derived_id,
    dumps,
    encode_cursor,
    epoch_ms,
    iso,
    parse_iso,
)
from .faults import FaultRule, Faults, TakenFaults
from .index import Renderings, TenantIndex
from .jwt import JwtSigner, split_jwt, verify_rsa_jwt
from .limits import FixedWindowLimiter, RateState, TokenBucket
from .server import FakeServer
from .wire import RecordedRequest, Request, Response, Route, malformed, proxy_error_page

__all__ = [
    "JSON_TYPE", "UTC", "FakeServer", "FaultRule", "Faults", "FixedWindowLimiter", "JwtSigner", "RateState",
    "RecordedRequest", "Renderings", "Request", "Response", "Route", "TakenFaults", "TenantIndex", "TokenBucket",
    "b64url", "b64url_decode", "decode_cursor", "derived_hex", "derived_id", "dumps", "encode_cursor", "epoch_ms",
    "iso", "malformed", "parse_iso", "proxy_error_page", "split_jwt", "verify_rsa_jwt",
]
