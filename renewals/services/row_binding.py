"""Binding evidence rows to the audit log by their content.

The renewal gate trusts rows of three models: a :class:`~renewals.models.Consent` (its
evidence and whether it was revoked), the :class:`~renewals.models.RenewalTerms` it names, and
a :class:`~renewals.models.RenewalNotice` (its window and when it was given). Every change the
package makes to those fields appends an audit event whose data holds each changed row's
*binding*: the fields that matter, as canonical JSON values, and their sha256. Verification
recomputes every row and compares it with its newest binding, naming the fields that differ.

The consent's IP address and user agent are personal data: the binding holds one sha256 over
the two (``personal_sha256``), not the values, so they can be erased from the row on request
(``record_event(..., evidence=[consent])`` then records the erasure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias, TypedDict

from ..canonical import canonical_value, sha256_of
from ..models import Consent, RenewalNotice, RenewalTerms

#: The key of an audit event's data that holds its bindings.
BOUND_ROWS = "bound_rows"

#: A row that can be bound.
EvidenceRow: TypeAlias = Consent | RenewalTerms | RenewalNotice

CONSENT = Consent._meta.label_lower
TERMS = RenewalTerms._meta.label_lower
NOTICE = RenewalNotice._meta.label_lower

#: The consent fields the gate, the statutory forms and an auditor rely on, as stored.
CONSENT_FIELDS = (
    "subscription_id",
    "user_id",
    "terms_id",
    "terms_hash",
    "policy",
    "granted_at",
    "channel",
    "locale",
    "form_id",
    "control_initially_unticked",
    "disclosure_text",
    "revoked_at",
    "revoked_via",
    "revoked_by_id",
    "revoke_reason",
)
#: Bound by one digest, not by value.
CONSENT_PERSONAL_FIELDS = ("ip_address", "user_agent")
PERSONAL_DIGEST = "personal_sha256"

#: The notice fields the gate relies on: which renewal and rule, the window, what counts as
#: given and when it was. Its status, send time and attempts are the sweep's working state.
NOTICE_FIELDS = (
    "subscription_id",
    "renewal_at",
    "rule_id",
    "window_opens_at",
    "window_closes_at",
    "delivered_when",
    "sent_at",
    "delivered_at",
)


class RowBinding(TypedDict):
    """One row's binding, as an audit event's data holds it."""

    model: str
    pk: int
    fields: dict[str, Any]
    sha256: str


def canonical(content: Mapping[str, Any]) -> dict[str, Any]:
    """``content`` (scalars) as it reads back from canonical JSON, value by value: the batch
    paths bind thousands of rows at once."""
    return {name: canonical_value(value) for name, value in content.items()}


def content_of(row: EvidenceRow) -> dict[str, Any]:
    """The bound fields of ``row``, as canonical JSON values."""
    if isinstance(row, RenewalTerms):
        return canonical(row.content())
    if isinstance(row, Consent):
        personal = {name: getattr(row, name) for name in CONSENT_PERSONAL_FIELDS}
        return canonical(
            {name: getattr(row, name) for name in CONSENT_FIELDS}
            | {PERSONAL_DIGEST: sha256_of(personal)}
        )
    return canonical({name: getattr(row, name) for name in NOTICE_FIELDS})


def binding(row: EvidenceRow) -> RowBinding:
    """The binding of ``row`` as it is now."""
    return _binding(row._meta.label_lower, row.pk, content_of(row))


def notice_binding(pk: int, values: Mapping[str, Any]) -> RowBinding:
    """The binding of notice ``pk`` from its field values (:data:`NOTICE_FIELDS`), for the
    batch paths that write notices without loading them."""
    return _binding(NOTICE, pk, canonical({name: values[name] for name in NOTICE_FIELDS}))


def _binding(model: str, pk: int, fields: dict[str, Any]) -> RowBinding:
    return {"model": model, "pk": pk, "fields": fields, "sha256": sha256_of(fields)}


def differing_fields(bound: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The names of the fields whose values differ (a personal digest names its fields)."""
    names = sorted(
        name for name in {*bound, *current} if bound.get(name, None) != current.get(name, None)
    )
    return [
        ", ".join(CONSENT_PERSONAL_FIELDS) if name == PERSONAL_DIGEST else name for name in names
    ]


def owner_of(row: EvidenceRow) -> int | None:
    """The subscription on whose chain the row is bound (``None`` for terms, which bind on
    the chain of the event that relies on them)."""
    return None if isinstance(row, RenewalTerms) else row.subscription_id
