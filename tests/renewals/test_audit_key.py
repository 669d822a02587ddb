"""With ``RENEWALS["AUDIT_KEY"]`` the audit log is signed: someone who can write the database
but has not the key can no longer shorten, delete or rewrite it unseen."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings
from pytest_django import Settings

from renewals.audit_key import audit_key
from renewals.models import (
    AuditChainCount,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    Subscription,
)
from renewals.models.audit import COUNT_SHARDS
from renewals.services import (
    AuditProblem,
    CheckpointAnchor,
    create_checkpoint,
    record_event,
    verify_audit,
)
from renewals.services.audit import shard_of

from .audit_tampering import delete_checkpoints, delete_links, reforge_checkpoints, rewrite_chain
from .factories import make_subscription

pytestmark = pytest.mark.django_db

KEY = "k" * 32
OTHER_KEY = "o" * 32


def with_key(key: str | None) -> override_settings:
    from django.conf import settings

    return override_settings(RENEWALS={**settings.RENEWALS, "AUDIT_KEY": key})


@pytest.fixture
def keyed(settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "AUDIT_KEY": KEY}


def found_problem() -> AuditProblem:
    problem = verify_audit().problem
    assert problem is not None, "verification passed"
    return problem


def subscription_of(chain: str) -> Subscription:
    return Subscription.objects.get(pk=int(chain.removeprefix("subscription:")))


def chain_with(events: int) -> str:
    subscription = make_subscription()
    for n in range(events):
        record_event("step", subscription=subscription, data={"n": n})
    return f"subscription:{subscription.pk}"


@pytest.mark.usefixtures("keyed")
def test_a_signed_log_verifies() -> None:
    name = chain_with(3)
    create_checkpoint()

    report = verify_audit()

    assert report.ok, report.problem
    assert (report.keyed, report.signed, report.key_start) == (True, True, 1)
    assert all(AuditEvent.objects.values_list("mac", flat=True))
    head = AuditChainHead.objects.get(chain=name)
    assert (head.keyed_from, len(head.mac)) == (1, 64)
    assert AuditChainCount.objects.count() == COUNT_SHARDS
    assert AuditChainCount.objects.get(shard=shard_of(name)).chains >= 1


@pytest.mark.usefixtures("keyed")
def test_a_tail_deleted_after_the_last_checkpoint_is_detected() -> None:
    name = chain_with(3)
    create_checkpoint()
    record_event("later", subscription=subscription_of(name))

    delete_links(name, from_sequence=4)  # and the head moved back to link #3

    problem = found_problem()
    assert (problem.model, problem.where) == ("head", name)
    assert "MAC does not verify" in problem.reason


@pytest.mark.usefixtures("keyed")
def test_a_tail_deleted_with_its_checkpoint_is_detected() -> None:
    name = chain_with(2)
    create_checkpoint()
    record_event("later", subscription=subscription_of(name))
    create_checkpoint()

    delete_links(name, from_sequence=3)
    delete_checkpoints(from_sequence=2)

    problem = found_problem()
    assert problem.model == "head"
    assert "MAC does not verify" in problem.reason


@pytest.mark.usefixtures("keyed")
def test_a_whole_chain_no_checkpoint_saw_is_detected() -> None:
    chain_with(2)
    create_checkpoint()
    newcomer = chain_with(2)

    delete_links(newcomer, from_sequence=1)  # its events and its head

    problem = found_problem()
    assert (problem.model, problem.where) == ("count", f"shard {shard_of(newcomer)}")
    assert "chains were deleted" in problem.reason


@pytest.mark.usefixtures("keyed")
def test_a_whole_chain_is_detected_even_before_any_checkpoint() -> None:
    chain_with(1)
    victim = chain_with(2)
    delete_links(victim, from_sequence=1)
    assert found_problem().model == "count"


@pytest.mark.usefixtures("keyed")
def test_a_full_rewrite_with_reforged_checkpoints_is_detected_without_expect() -> None:
    name = chain_with(3)
    create_checkpoint()

    def edit(event: AuditEvent) -> None:
        if event.sequence == 2:
            event.data = {"n": 99}

    rewrite_chain(name, edit)
    reforge_checkpoints()

    problem = found_problem()
    assert "MAC does not verify" in problem.reason


def strip_signatures(*, checkpoints: bool) -> None:
    AuditEvent.objects.update(mac="")
    AuditChainHead.objects.exclude(chain="checkpoints").update(keyed_from=None, mac="")
    if checkpoints:
        AuditCheckpoint.objects.update(mac="")


@pytest.mark.usefixtures("keyed")
def test_stripping_the_signatures_is_detected() -> None:
    name = chain_with(2)
    create_checkpoint()
    strip_signatures(checkpoints=False)  # the heads are as the signed checkpoint saw them
    problem = found_problem()
    assert problem.model == "count"
    assert "signatures stripped" in problem.reason

    record_event("later", subscription=subscription_of(name))
    strip_signatures(checkpoints=False)  # a head the signed checkpoint did not see
    problem = found_problem()
    assert (problem.model, problem.where) == ("head", name)
    assert "not signed" in problem.reason

    strip_signatures(checkpoints=True)
    problem = found_problem()
    assert (problem.model, problem.where) == ("checkpoint", "checkpoint#1")
    assert "MAC does not verify" in problem.reason


@pytest.mark.usefixtures("keyed")
def test_a_log_stripped_of_every_signature_is_only_flagged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A limit docs/audit.md states: a database stripped of every trace of the key looks like
    one the key never signed; the command says so, and a signed anchor kept outside tells."""
    chain_with(2)
    anchor = CheckpointAnchor.of(create_checkpoint())
    assert str(anchor).count(":") == 2  # sequence, hash and MAC
    strip_signatures(checkpoints=True)
    AuditChainHead.objects.update(keyed_from=None, mac="")
    AuditChainCount.objects.all().delete()

    assert verify_audit().ok
    call_command("renewals_verify_audit")
    assert "the log's signatures were stripped" in capsys.readouterr().err
    problem = verify_audit(expect=[anchor]).problem
    assert problem is not None
    assert problem.where == "checkpoint#1"
    # The hash alone still matches: only the signature was taken.
    assert verify_audit(expect=[CheckpointAnchor(anchor.sequence, anchor.hash)]).ok


@pytest.mark.usefixtures("keyed")
def test_a_chain_written_without_the_key_after_it_started_is_detected() -> None:
    chain_with(1)
    create_checkpoint()
    with with_key(None):
        forged = chain_with(2)
    problem = found_problem()
    assert (problem.model, problem.where) == ("head", forged)
    assert "written without the key, or forged" in problem.reason


def test_a_link_written_without_the_key_into_a_signed_chain_is_detected() -> None:
    with with_key(KEY):
        name = chain_with(1)
    subscription = subscription_of(name)
    record_event("unsigned", subscription=subscription)  # a process missing the key

    with with_key(KEY):
        problem = found_problem()
    assert problem.model == "head"
    assert "MAC does not verify" in problem.reason


def test_another_key_does_not_verify() -> None:
    with with_key(KEY):
        chain_with(1)
        create_checkpoint()
    with with_key(OTHER_KEY):
        assert "MAC does not verify" in found_problem().reason


def test_a_key_introduced_later_keeps_the_older_links_as_plain_hashes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = chain_with(2)
    create_checkpoint()
    with with_key(KEY):
        report = verify_audit()
        assert report.ok
        assert report.key_start is None
        call_command("renewals_verify_audit")
        assert "no checkpoint is signed with it yet" in capsys.readouterr().err

        subscription = subscription_of(old)
        record_event("signed", subscription=subscription)
        chain_with(1)
        create_checkpoint()

        report = verify_audit()
        assert report.ok, report.problem
        assert report.key_start == 2
        assert AuditChainHead.objects.get(chain=old).keyed_from == 3
        assert list(
            AuditEvent.objects.filter(chain=old).order_by("sequence").values_list("mac", flat=True)
        )[:2] == ["", ""]
        # A later link of the old chain is signed: stripping it is detected.
        AuditEvent.objects.filter(chain=old, sequence=3).update(mac="")
        assert "MAC does not verify" in found_problem().reason


def test_without_the_key_a_signed_log_still_verifies_its_hashes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with with_key(KEY):
        chain_with(2)
        create_checkpoint()
    report = verify_audit()
    assert report.ok
    assert (report.signed, report.keyed) == (True, False)
    call_command("renewals_verify_audit")
    assert "the signatures were not checked" in capsys.readouterr().err


@pytest.mark.usefixtures("keyed")
def test_counts_deleted_or_edited_are_detected() -> None:
    chain_with(1)
    create_checkpoint()
    AuditChainCount.objects.filter(shard=0).delete()
    assert (found_problem().model, found_problem().reason) == ("count", "the row is gone")


@pytest.mark.parametrize(
    ("value", "message"),
    [("short", "got 5 bytes"), (b"\x00" * 31, "got 31 bytes"), (12345, "got a int")],
)
def test_the_key_is_validated_without_being_repeated(
    settings: Settings, value: object, message: str
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "AUDIT_KEY": value}
    with pytest.raises(ImproperlyConfigured, match=r"RENEWALS\['AUDIT_KEY'\]") as info:
        audit_key()
    assert message in str(info.value)
    assert "short" not in str(info.value)
    assert "12345" not in str(info.value)


def test_a_key_of_32_bytes_or_more_is_taken(settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "AUDIT_KEY": KEY}
    assert audit_key() == KEY.encode()
    settings.RENEWALS = {**settings.RENEWALS, "AUDIT_KEY": b"\x01" * 32}
    assert audit_key() == b"\x01" * 32
    settings.RENEWALS = {**settings.RENEWALS, "AUDIT_KEY": None}
    assert audit_key() is None
