"""One subscription's evidence pack, exported as JSON."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from renewals.canonical import sha256_of
from renewals.services import cancel_auto_renewal, create_checkpoint, subscribe

from .factories import make_evidence, make_terms, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    terms = make_terms()
    with freeze_time("2027-02-01 02:00:00+00:00"):
        subscription = subscribe(
            make_user(), terms, make_evidence(terms), time_zone="Asia/Shanghai"
        )
    with freeze_time("2027-02-02 02:00:00+00:00"):
        cancel_auto_renewal(subscription, actor=subscription.user, via="one_click_link")
    create_checkpoint()
    return subscription


def test_export_holds_terms_consent_notices_cancellation_and_chain(subscription, tmp_path):
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
    assert cancellation["at"].startswith("2027-02-02T02:00:00")

    # The chain proof can be checked with nothing but the export.
    events = pack["audit"]["events"]
    previous = "0" * 64
    for event in events:
        content = {k: v for k, v in event.items() if k != "hash"}
        assert event["prev_hash"] == previous
        assert sha256_of(content) == event["hash"]
        previous = event["hash"]
    assert pack["audit"]["checkpoint"]["head"] == [len(events), previous]


def test_unknown_subscription_is_a_clear_error():
    with pytest.raises(CommandError, match="No subscription with id 999"):
        call_command("renewals_export_evidence", "999")
