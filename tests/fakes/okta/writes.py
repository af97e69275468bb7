"""POST (partial) and PUT (whole) updates of a user's profile, checked against the user schema."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response
from ..tenant import User

REQUIRED_PROFILE = ("login", "email", "firstName", "lastName")


OPTIONAL_PROFILE = ("mobilePhone", "secondEmail")


_SCHEMA_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "integer": (int,),
                                              "number": (int, float), "array": (list,)}


def _json_type_ok(value: Any, schema_type: str) -> bool:
    if isinstance(value, bool) and schema_type != "boolean":
        return False
    return isinstance(value, _SCHEMA_TYPES.get(schema_type, (object,)))


class OktaWrites:
    """Profile updates."""

    def _profile_error(self, causes: list[str]) -> Response:
        return self._error(400, "E0000001", "Api validation failed: profile", causes)

    def _profile_changes(self, u: User, profile: Any, *, replace: bool) -> dict[str, Any] | Response:
        """The tenant changes a profile asks for, or Okta's 400. `replace` (PUT): every property
        not given is removed and the required base properties must be there."""
        if not isinstance(profile, dict):
            return self._profile_error(["profile: The field is of the wrong type"])
        schema = self.tenant.custom_attributes
        causes: list[str] = []
        for name in REQUIRED_PROFILE:
            if (name in profile or replace) and not (isinstance(profile.get(name), str) and profile[name].strip()):
                causes.append(f"{name}: The field cannot be left blank")
        for name, value in profile.items():
            if name in REQUIRED_PROFILE or name in OPTIONAL_PROFILE:
                if value is not None and not isinstance(value, str):
                    causes.append(f"{name}: The field is of the wrong type")
            elif name not in schema:
                causes.append(f"Property name '{name}' is not defined in profile")
            elif value is not None and not _json_type_ok(value, schema[name]):
                causes.append(f"{name}: The field is of the wrong type")
        if "login" in profile and isinstance(profile["login"], str) and profile["login"] != u.login:
            causes.append("login: changing the login is not supported by this fake")
        if causes:
            return self._profile_error(causes)
        custom = {} if replace else dict(u.custom)
        for name, value in profile.items():
            if name in REQUIRED_PROFILE:
                continue
            if value is None:
                custom.pop(name, None)  # an explicit null clears the property
            else:
                custom[name] = value
        changes: dict[str, Any] = {"custom": custom}
        for name, field_name in (("firstName", "first_name"), ("lastName", "last_name"), ("email", "email")):
            if name in profile:
                changes[field_name] = profile[name]
        return changes

    def _update_user(self, req: Request) -> Response:
        """`POST /api/v1/users/{id}`: a partial update; the profile properties given are set (null
        clears one), every other property is kept."""
        return self._write_user(req, replace=False)

    def _replace_user(self, req: Request) -> Response:
        """`PUT /api/v1/users/{id}`: replaces the profile; every property not given is removed."""
        return self._write_user(req, replace=True)

    def _write_user(self, req: Request, *, replace: bool) -> Response:
        found = self._find_user(req)
        if isinstance(found, Response):
            return found
        oid, u = found
        try:
            body = req.json()
        except ValueError:
            return self._error(400, "E0000003", "The request body was not well-formed.")
        if not isinstance(body, dict):
            return self._error(400, "E0000003", "The request body was not well-formed.")
        if "profile" not in body:
            if replace:
                return self._profile_error(["profile: The field cannot be left blank"])
            return Response.raw_json(200, self._render_user(oid, u))
        changes = self._profile_changes(u, body["profile"], replace=replace)
        if isinstance(changes, Response):
            return changes
        self.tenant.touch_user(u.id, **changes)
        return Response.raw_json(200, self._render_user(oid, u))
