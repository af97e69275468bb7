"""A fake Auth0 tenant (see README.md beside the package); `server.py` holds the class and its route table."""

from .scopes import DEFAULT_SCOPES, KNOWN_SCOPES
from .server import FakeAuth0

__all__ = ["DEFAULT_SCOPES", "KNOWN_SCOPES", "FakeAuth0"]
