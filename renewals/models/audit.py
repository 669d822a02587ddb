"""The tamper-evident audit log: one hash chain per subscription, plus checkpoints.

Each :class:`AuditEvent` commits to the previous event of its chain, so editing or deleting a
row breaks the chain at that row. Chains are per subscription, so writers for different
subscriptions never wait for each other. An :class:`AuditCheckpoint` periodically commits to
the head of every chain, so deleting the newest events, or a whole chain, is detected too.

With an audit key (``RENEWALS["AUDIT_KEY"]``, kept outside the database) every event and
checkpoint also carries a MAC of its hash, :class:`AuditChainHead` keeps a keyed record of each
chain's newest link, and :class:`AuditChainCount` a keyed count of the chains born under the
key, so that deleting a chain's newest links or a whole chain shows even between checkpoints.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .base import InsertOnly

GENESIS = "0" * 64
#: The name under which :class:`AuditChainHead` keeps the checkpoints' own chain.
CHECKPOINT_CHAIN = "checkpoints"
#: How many :class:`AuditChainCount` rows share the count of chains (fewer writers wait).
COUNT_SHARDS = 16


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
    mac = models.CharField(
        _("MAC"),
        max_length=64,
        blank=True,
        help_text=_("HMAC-SHA256 of the hash under the audit key; empty without a key."),
    )

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
        return self.content_of(
            chain=self.chain,
            sequence=self.sequence,
            kind=self.kind,
            subscription_id=self.subscription_id,
            actor=self.actor,
            data=self.data,
            occurred_at=self.occurred_at,
            prev_hash=self.prev_hash,
        )

    @staticmethod
    def content_of(
        *,
        chain: str,
        sequence: int,
        kind: str,
        subscription_id: int | None,
        actor: str,
        data: Any,
        occurred_at: dt.datetime,
        prev_hash: str,
    ) -> dict[str, Any]:
        """What the hash of an event with these fields commits to (for the batch paths, which
        hash events before making any)."""
        return {
            "chain": chain,
            "sequence": sequence,
            "kind": kind,
            "subscription": subscription_id,
            "actor": actor,
            "data": data,
            "occurred_at": occurred_at,
            "prev_hash": prev_hash,
        }


class AuditCheckpoint(InsertOnly):
    """A signed-off picture of every chain's head; checkpoints form a chain of their own."""

    immutable_message = _("Audit checkpoints are append-only.")
    hash_field = "hash"

    sequence = models.PositiveBigIntegerField(_("sequence"), unique=True)
    created_at = models.DateTimeField(_("created"))
    heads = models.JSONField(_("chain heads"), help_text=_("chain -> [sequence, hash]"))
    heads_root = models.CharField(
        _("Merkle root of the heads"),
        max_length=64,
        blank=True,
        help_text=_("What the hash commits to instead of the heads; empty on older rows."),
    )
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)
    mac = models.CharField(
        _("MAC"),
        max_length=64,
        blank=True,
        help_text=_("HMAC-SHA256 of the hash under the audit key; empty without a key."),
    )

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
        """The heads' Merkle root and their number (the heads themselves on a row from
        before roots, whose hash covers them all), so one chain's head can be proved without
        the others (:mod:`renewals.merkle`)."""
        if not self.heads_root:
            return {
                "sequence": self.sequence,
                "created_at": self.created_at,
                "heads": self.heads,
                "prev_hash": self.prev_hash,
            }
        return {
            "sequence": self.sequence,
            "created_at": self.created_at,
            "heads_root": self.heads_root,
            "chains": len(self.heads),
            "prev_hash": self.prev_hash,
        }


class AuditChainHead(models.Model):
    """The newest link of one chain (or of the checkpoints, :data:`CHECKPOINT_CHAIN`),
    updated with every append.

    Writers read the head here rather than from the events. With an audit key, ``mac``
    commits to the whole row and ``keyed_from`` names the first link written under the key
    (the links before it are checked as plain hashes): deleting the chain's newest links
    leaves a head that no longer matches, and a head cannot be rewritten without the key.
    """

    chain = models.CharField(_("chain"), max_length=64, unique=True)
    sequence = models.PositiveBigIntegerField(_("newest sequence"))
    hash = models.CharField(_("newest hash"), max_length=64)
    keyed_from = models.PositiveBigIntegerField(
        _("keyed from"),
        null=True,
        blank=True,
        help_text=_("The first sequence written under the audit key; empty without a key."),
    )
    mac = models.CharField(_("MAC"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain heads")
        ordering = ["chain"]

    def __str__(self) -> str:
        return f"{self.chain}#{self.sequence}"

    def content(self) -> list[Any]:
        """What ``mac`` commits to."""
        return [self.chain, self.sequence, self.hash, self.keyed_from]


class AuditChainCount(models.Model):
    """A keyed count of the chains born under the audit key whose name falls in one shard:
    a whole chain deleted with its head leaves the count one too high. Shards let writers
    that start chains at the same time (new subscriptions) wait less for each other."""

    shard = models.PositiveSmallIntegerField(_("shard"), unique=True)
    chains = models.PositiveBigIntegerField(_("chains"))
    mac = models.CharField(_("MAC"), max_length=64)

    class Meta:
        verbose_name = _("audit chain count")
        verbose_name_plural = _("audit chain counts")
        ordering = ["shard"]

    def __str__(self) -> str:
        return f"shard {self.shard}: {self.chains}"

    def content(self) -> list[int]:
        """What ``mac`` commits to."""
        return [self.shard, self.chains]
