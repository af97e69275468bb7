"""A fake Okta org (see README.md beside the package); `server.py` holds the class and its route table."""

from .scopes import DEFAULT_SCOPES, KNOWN_SCOPES
from .server import FakeOkta

__all__ = ["DEFAULT_SCOPES", "KNOWN_SCOPES", "FakeOkta"]
