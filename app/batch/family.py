"""A step family: one step per member of a set known only when the revision runs (one per
identity provider with a finished export, say). Its steps are named `<prefix>:<member>`; the
revision module exports the family as its `STEP`, and the tools that find a step by name
(`orgmig work`, `orgmig verify`, `orgmig status`) ask it for the member's step.

    IDENTITY = StepFamily("identity", IdentitySync)   # IdentitySync(provider, settings)
    IDENTITY.step("okta", settings).name == "identity:okta"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.batch.step import Step


@dataclass(frozen=True)
class StepFamily:
    prefix: str
    make: Callable[[str, Any], Step]  # (member, settings) -> that member's step

    def name(self, member: str) -> str:
        return f"{self.prefix}:{member}"

    def member(self, step_name: str) -> str | None:
        """The member a step of this family is for, from its name; None for another step's name."""
        prefix, sep, member = step_name.partition(":")
        return member if sep and prefix == self.prefix and member else None

    def step(self, member: str, settings: Any) -> Step:
        return self.make(member, settings)
