"""The tamper-evident audit log: one hash chain per subscription, plus checkpoints.

Each :class:`AuditEvent` commits to the previous event of its chain, so editing or deleting a
row breaks the chain at that row. Chains are per subscription, so writers for different
subscriptions never wait for each other. An :class:`AuditCheckpoint` periodically commits to
the head of every chain, so deleting the newest events, or a whole chain, is detected too.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .base import InsertOnly

GENESIS = "0" * 64


class AuditEvent(InsertOnly):
    """One step of one subscription's history, committing to the step before it."""

    immutable_message = _("Audit events are append-only.")
    hash_field = "hash"

    chain = models.CharField(_("chain"), max_length=64)
    sequence = models.PositiveBigIntegerField(_("sequence in chain"))
    kind = models.CharField(_("event"), max_length=64)
    subscription = models.ForeignKey(
        "renewals.Subscription",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("subscription"),
    )
    actor = models.CharField(_("actor"), max_length=200)
    data = models.JSONField(_("data"), default=dict)
    occurred_at = models.DateTimeField(_("occurred"))
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["chain", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "sequence"], name="renewals_audit_one_row_per_link"
            )
        ]

    def __str__(self) -> str:
        return f"{self.chain}#{self.sequence} {self.kind}"

    def content(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "sequence": self.sequence,
            "kind": self.kind,
            "subscription": self.subscription_id,
            "actor": self.actor,
            "data": self.data,
            "occurred_at": self.occurred_at,
            "prev_hash": self.prev_hash,
        }


class AuditCheckpoint(InsertOnly):
    """A signed-off picture of every chain's head; checkpoints form a chain of their own."""

    immutable_message = _("Audit checkpoints are append-only.")
    hash_field = "hash"

    sequence = models.PositiveBigIntegerField(_("sequence"), unique=True)
    created_at = models.DateTimeField(_("created"))
    heads = models.JSONField(_("chain heads"), help_text=_("chain -> [sequence, hash]"))
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")
        ordering = ["sequence"]

    def __str__(self) -> str:
        count = len(self.heads)
        return ngettext(
            "Checkpoint #%(sequence)s over %(count)d chain",
            "Checkpoint #%(sequence)s over %(count)d chains",
            count,
        ) % {"sequence": self.sequence, "count": count}

    def content(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "created_at": self.created_at,
            "heads": self.heads,
            "prev_hash": self.prev_hash,
        }
