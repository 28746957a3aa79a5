"""Frozen values whose copies are validated: the one way Tuneline changes a field of a model."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict


class Value(BaseModel):
    """A frozen pydantic model: unknown fields are refused, and changes go through `replace`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def replace(self, **changes: object) -> Self:
        """A copy with `changes`, validated as the constructor validates (an unknown key or a wrong type raises)."""
        # Not `model_copy(update=...)`: it validates nothing. The unchanged fields go in as they are
        # (nested values are already-validated instances, which pydantic keeps without re-checking them).
        return self.model_validate({**self.__dict__, **changes})
