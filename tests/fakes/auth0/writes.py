"""PATCH /api/v2/users/{id}: metadata merged at the root, a few root properties set as given."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response

# What `PATCH /api/v2/users/{id}` takes here (Auth0 takes more: email, phone, password, ...).
PATCHABLE = frozenset({"app_metadata", "user_metadata", "given_name", "family_name", "blocked", "email_verified"})


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "unknown")


def _merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Auth0's metadata merge: root properties merge, nested objects are replaced, a null deletes
    the property and an empty object removes them all."""
    if not patch:
        return {}
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class Auth0Writes:
    """User updates."""

    def _patch_user(self, req: Request) -> Response:
        """`PATCH /api/v2/users/{id}`: `app_metadata` and `user_metadata` merge at their root (a key
        set to null goes, nested objects are replaced whole, `{}` empties the object); the other
        supported properties are set as given. Answers the whole user."""
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        try:
            body = req.json()
        except ValueError:
            return self._bad_request("Payload validation error: 'Invalid JSON'.", "invalid_body")
        if not isinstance(body, dict):
            return self._bad_request(f"Payload validation error: 'Expected type object but found type "
                                     f"{_json_type(body)}'.", "invalid_body")
        extra = sorted(set(body) - PATCHABLE)
        if extra:
            return self._bad_request(f"Payload validation error: 'Additional properties not allowed: "
                                     f"{','.join(extra)}'.", "invalid_body")
        for keys, kind, expected in ((("app_metadata", "user_metadata"), dict, "object"),
                                     (("given_name", "family_name"), str, "string"),
                                     (("blocked", "email_verified"), bool, "boolean")):
            for key in keys:
                if key in body and not isinstance(body[key], kind):
                    return self._bad_request(f"Payload validation error: 'Expected type {expected} but found type "
                                             f"{_json_type(body[key])}' on property {key}.", "invalid_body")
        u = self._user_by_aid[aid]
        doc = self._doc(aid)
        changes: dict[str, Any] = {}
        if "app_metadata" in body:
            changes["custom"] = _merge_metadata(u.custom, body["app_metadata"])
        if "user_metadata" in body:
            self._user_metadata[aid] = _merge_metadata(doc.get("user_metadata") or {}, body["user_metadata"])
        if "given_name" in body:
            changes["first_name"] = body["given_name"]
        if "family_name" in body:
            changes["last_name"] = body["family_name"]
        if "email_verified" in body:
            changes["email_verified"] = body["email_verified"]
        if "blocked" in body:
            blocked = u.status in ("SUSPENDED", "DEPROVISIONED")
            if body["blocked"] != blocked:
                changes["status"] = "SUSPENDED" if body["blocked"] else "ACTIVE"
        self.tenant.touch_user(u.id, **changes)
        return Response.json(200, self._doc(aid))
