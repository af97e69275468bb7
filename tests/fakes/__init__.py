"""Local fake identity-provider servers (Okta, Keycloak, Auth0) for tests over real HTTP.

See README.md in this folder for the contracts each fake follows and the quirks it models.
"""

from .auth0 import FakeAuth0
from .keycloak import FakeKeycloak
from .okta import FakeOkta
from .tenant import Tenant, make_tenant

__all__ = ["FakeAuth0", "FakeKeycloak", "FakeOkta", "Tenant", "make_tenant"]
