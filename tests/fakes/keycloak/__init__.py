"""A fake Keycloak (see README.md beside the package); `server.py` holds the class and its route table."""

from .auth import DEFAULT_SERVICE_ACCOUNT_ROLES
from .server import FakeKeycloak

__all__ = ["DEFAULT_SERVICE_ACCOUNT_ROLES", "FakeKeycloak"]
