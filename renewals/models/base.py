"""Rows written once: the evidence models never change after their insert."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models

from ..canonical import sha256_of

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise


class InsertOnly(models.Model):
    """Saving a row a second time raises ``ValidationError(immutable_message)``.

    A model that sets ``hash_field`` also defines ``content()``; the sha256 of its canonical
    JSON is stored in that field on insert.
    """

    immutable_message: ClassVar[str | _StrPromise]
    hash_field: ClassVar[str | None] = None

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError(self.immutable_message)
        if self.hash_field:
            setattr(self, self.hash_field, self.compute_hash())
        super().save(*args, **kwargs)

    def content(self) -> dict[str, Any]:
        """What the hash commits to."""
        raise NotImplementedError

    def compute_hash(self) -> str:
        return sha256_of(self.content())
