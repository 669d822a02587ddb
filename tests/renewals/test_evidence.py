"""One subscription's evidence pack, exported as JSON."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from renewals.canonical import sha256_of
from renewals.models import AuditEvent, Consent, Subscription
from renewals.services import cancel_auto_renewal, create_checkpoint, evidence_pack, record_event
from renewals.services.audit import chain_of
from renewals.services.batch_planning import plan_all

from .factories import SUBSCRIBED_AT, make_subscription, subscribe_with_consent

pytestmark = pytest.mark.django_db

CANCELLED_AT = SUBSCRIBED_AT + dt.timedelta(days=1)  # 9:00 in Shanghai


@pytest.fixture
def cancelled_subscription(subscription: Subscription) -> Subscription:
    """The shared ``subscription``, cancelled through its one-click link a day after it
    started, and a checkpoint over its chain."""
    with freeze_time(CANCELLED_AT):
        cancel_auto_renewal(subscription, actor=subscription.user, via="one_click_link")
    create_checkpoint()
    return subscription


def test_export_holds_terms_consent_notices_cancellation_and_chain(
    cancelled_subscription: Subscription, tmp_path: Path
) -> None:
    subscription = cancelled_subscription
    target = tmp_path / "evidence.json"
    call_command("renewals_export_evidence", str(subscription.pk), "-o", str(target))
    pack = json.loads(target.read_text(encoding="utf-8"))

    assert pack["subscription"]["id"] == subscription.pk
    (terms,) = pack["terms"]
    assert terms["content_hash"] == subscription.terms.content_hash
    assert terms["hash_verifies"] is True
    assert sha256_of(terms["content"]) == terms["content_hash"]
    (consent,) = pack["consents"]
    assert consent["control_initially_unticked"] is True
    assert consent["revoked_via"] == "one_click_link"
    granted = next(e for e in pack["audit"]["events"] if e["kind"] == "consent_granted")
    assert granted["data"]["evidence_sha256"] == consent["evidence_sha256"]
    (notice,) = pack["notices"]
    assert notice["status"] == "withdrawn"
    (cancellation,) = pack["cancellations"]
    assert cancellation["via"] == "one_click_link"
    assert cancellation["at"].startswith("2027-02-11T01:00:00")

    # Each row names the event that last bound it, and still matches it.
    assert consent["binding"]["event"].endswith(f"#{_sequence_of(pack, 'auto_renewal_cancelled')}")
    assert terms["binding"]["event"].endswith(f"#{_sequence_of(pack, 'consent_granted')}")
    assert all(row["binding"]["matches"] for row in (terms, consent, notice))

    # The chain proof can be checked with nothing but the export.
    events = pack["audit"]["events"]
    previous = "0" * 64
    for event in events:
        content = {k: v for k, v in event.items() if k not in ("hash", "mac")}
        assert event["prev_hash"] == previous
        assert sha256_of(content) == event["hash"]
        previous = event["hash"]
    checkpoint = pack["audit"]["checkpoint"]
    assert checkpoint["head"] == [len(events), previous]
    assert proves_head(checkpoint, pack["audit"]["chain"])


def _sequence_of(pack: dict[str, Any], kind: str) -> int:
    sequence: int = next(e for e in pack["audit"]["events"] if e["kind"] == kind)["sequence"]
    return sequence


def proves_head(checkpoint: dict[str, Any], chain: str) -> bool:
    """Check an exported checkpoint as an auditor would, with hashlib alone: its hash covers
    its content, and the Merkle path leads from the chain's head to its root (RFC 9162,
    2.1.3.2)."""
    content = {name: checkpoint[name] for name in CHECKPOINT_CONTENT}
    if sha256_of(content) != checkpoint["hash"]:
        return False
    data = json.dumps([chain, *checkpoint["head"]], separators=(",", ":")).encode()
    node = hashlib.sha256(b"\x00" + data).digest()
    index, last = checkpoint["proof"]["leaf_index"], checkpoint["chains"] - 1
    for sibling in map(bytes.fromhex, checkpoint["proof"]["path"]):
        if last == 0:
            return False
        if index % 2 or index == last:
            node = hashlib.sha256(b"\x01" + sibling + node).digest()
            while index % 2 == 0 and index:
                index, last = index // 2, last // 2
        else:
            node = hashlib.sha256(b"\x01" + node + sibling).digest()
        index, last = index // 2, last // 2
    return last == 0 and node.hex() == str(checkpoint["heads_root"])


CHECKPOINT_CONTENT = ("sequence", "created_at", "heads_root", "chains", "prev_hash")


def test_the_checkpoint_is_proved_without_another_subscriptions_head(
    cancelled_subscription: Subscription,
) -> None:
    others = [subscribe_with_consent() for _ in range(4)]
    checkpoint = create_checkpoint()
    assert len(checkpoint.heads) == 5

    pack = evidence_pack(cancelled_subscription)

    exported = json.dumps(pack)
    for other in others:
        name, (_sequence, head) = next(
            (name, value) for name, value in checkpoint.heads.items() if name == chain_of(other)
        )
        assert name not in exported
        assert head not in exported
    proof = pack["audit"]["checkpoint"]
    assert (proof["sequence"], proof["chains"]) == (checkpoint.sequence, 5)
    assert len(proof["proof"]["path"]) <= 3  # ceil(log2(5)) sibling hashes at most
    assert proves_head(proof, chain_of(cancelled_subscription))
    # A head that the checkpoint did not see is not proved by the path.
    forged = {**proof, "head": [proof["head"][0], "f" * 64]}
    assert not proves_head(forged, chain_of(cancelled_subscription))


def test_a_notice_plan_all_bound_names_its_batch_event() -> None:
    _first, subscription, _last = (make_subscription() for _ in range(3))
    record_event("imported", subscription=subscription)  # a chain of its own
    plan_all(batch_size=1)  # a chunk, and an event, each
    batch = AuditEvent.objects.get(kind="notices_planned_batch", data__through_id=subscription.pk)

    (notice,) = evidence_pack(subscription)["notices"]

    assert notice["binding"]["event"] == f"system#{batch.sequence}"
    assert notice["binding"]["matches"] is True
    assert "system" not in {
        event["chain"] for event in evidence_pack(subscription)["audit"]["events"]
    }


def test_a_row_changed_in_sql_shows_in_the_export(cancelled_subscription: Subscription) -> None:
    consent = cancelled_subscription.consents.get()
    Consent.objects.filter(pk=consent.pk).update(revoked_at=None)
    (exported,) = evidence_pack(cancelled_subscription)["consents"]
    assert exported["binding"]["matches"] is False


def test_unknown_subscription_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No subscription with id 999"):
        call_command("renewals_export_evidence", "999")
