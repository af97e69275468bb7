"""The default user schema: GET, and POST to add, change or remove custom properties."""

from __future__ import annotations

import re
from typing import Any

from ..base import Request, Response, iso
from .writes import _SCHEMA_TYPES


class OktaSchema:
    """The user schema."""

    def _update_user_schema(self, req: Request) -> Response:
        """Okta's partial update of the user schema: custom properties to add or change
        (`definitions.custom.properties`: name -> {"type": ...}), or to remove (name -> null).
        Only the type is kept (it is what the profile checks use). Answers with the schema."""
        if req.params["sid"] not in ("default", self.user_type_id):
            return self._error(404, "E0000007", f"Not found: Resource not found: {req.params['sid']} (UserSchema)")
        try:
            body = req.json()
        except ValueError:
            return self._error(400, "E0000003", "The request body was not well-formed.")
        custom = (((body or {}).get("definitions") or {}).get("custom") or {}).get("properties")
        if not isinstance(custom, dict) or not custom:
            return self._error(400, "E0000001", "Api validation failed: userSchema",
                               ["definitions.custom.properties: at least one property is required"])
        changes: dict[str, str | None] = {}
        for name, prop in custom.items():
            if name in ("login", "email", "firstName", "lastName") or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                return self._error(400, "E0000001", "Api validation failed: userSchema",
                                   [f"{name}: not a valid custom property name"])
            if prop is None:
                changes[name] = None
            elif not isinstance(prop, dict) or prop.get("type") not in _SCHEMA_TYPES:
                return self._error(400, "E0000001", "Api validation failed: userSchema",
                                   [f"{name}: type must be one of {', '.join(sorted(_SCHEMA_TYPES))}"])
            else:
                changes[name] = prop["type"]
        for name, typ in changes.items():
            if typ is None:
                self.tenant.custom_attributes.pop(name, None)
            else:
                self.tenant.custom_attributes[name] = typ
        return self._user_schema(req)

    def _user_schema(self, req: Request) -> Response:
        if req.params["sid"] not in ("default", self.user_type_id):
            return self._error(404, "E0000007", f"Not found: Resource not found: {req.params['sid']} (UserSchema)")
        t = self.tenant
        custom_props: dict[str, Any] = {}
        for name, typ in t.custom_attributes.items():
            custom_props[name] = {
                "title": name[:1].upper() + re.sub(r"([A-Z])", r" \1", name[1:]),
                "description": f"Custom attribute {name}",
                "type": typ,
                "required": False,
                "mutability": "READ_WRITE",
                "scope": "NONE",
                "permissions": [{"principal": "SELF", "action": "READ_ONLY"}],
                "master": {"type": "PROFILE_MASTER"},
            }
        perm = [{"principal": "SELF", "action": "READ_WRITE"}]
        doc = {
            "id": f"{self.base_url}/meta/schemas/user/default",
            "$schema": "http://json-schema.org/draft-04/schema#",
            "name": "user",
            "title": "Default Okta User",
            "lastUpdated": iso(t.now),
            "created": iso(t.now.replace(year=t.now.year - 3)),
            "definitions": {
                "base": {
                    "id": "#base",
                    "type": "object",
                    "properties": {
                        "login": {"title": "Username", "type": "string", "required": True, "minLength": 5,
                                  "maxLength": 100, "permissions": perm},
                        "firstName": {"title": "First name", "type": "string", "required": True, "minLength": 1,
                                      "maxLength": 50, "permissions": perm},
                        "lastName": {"title": "Last name", "type": "string", "required": True, "minLength": 1,
                                     "maxLength": 50, "permissions": perm},
                        "email": {"title": "Primary email", "type": "string", "required": True, "format": "email",
                                  "permissions": perm},
                    },
                    "required": ["login", "firstName", "lastName", "email"],
                },
                "custom": {"id": "#custom", "type": "object", "properties": custom_props, "required": []},
            },
            "type": "object",
            "properties": {"profile": {"allOf": [{"$ref": "#/definitions/base"}, {"$ref": "#/definitions/custom"}]}},
            "_links": {"self": {"href": f"{self.base_url}/api/v1/meta/schemas/user/default", "method": "GET",
                                "type": "application/json"}},
        }
        return Response.json(200, doc)
