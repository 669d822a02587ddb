"""The audit log detects edits and deletions, and concurrent writers keep it whole.

Without an audit key (these tests) everything is a plain hash, which someone who can write
the database can recompute: what is detected then, and what only a checkpoint kept outside
(``--expect``) or the key (:mod:`.test_audit_key`) detects, is pinned here.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from pytest_django import DjangoCaptureOnCommitCallbacks

from renewals.models import AuditChainHead, AuditCheckpoint, AuditEvent, Subscription
from renewals.services import (
    AuditProblem,
    CheckpointAnchor,
    create_checkpoint,
    record_event,
    verify_audit,
)
from renewals.services.audit import record_events
from renewals.signals import audit_checkpoint_created

from ..concurrency import run_concurrently
from .audit_tampering import delete_links, reforge_checkpoints, rewrite_chain
from .factories import make_subscription

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list[str | int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def found_problem() -> AuditProblem:
    """The problem ``verify_audit()`` reports, which must report one."""
    problem = verify_audit().problem
    assert problem is not None
    return problem


@pytest.fixture
def two_chains() -> tuple[Subscription, Subscription]:
    first, second = make_subscription(), make_subscription()
    for n in range(3):
        record_event("step", subscription=first, data={"n": n, "amount": "25.00"})
        record_event("step", subscription=second, data={"n": n})
    return first, second


def chain(subscription: Subscription) -> str:
    return f"subscription:{subscription.pk}"


def test_a_clean_log_verifies(two_chains: tuple[Subscription, Subscription]) -> None:
    report = verify_audit()
    assert report.ok
    assert (report.events, report.chains) == (6, 2)
    assert not report.keyed
    assert not report.signed


def test_each_chain_keeps_its_newest_link_in_its_head(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    first, _ = two_chains
    newest = AuditEvent.objects.filter(chain=chain(first)).order_by("-sequence").first()
    assert newest is not None
    head = AuditChainHead.objects.get(chain=chain(first))
    assert (head.sequence, head.hash, head.keyed_from, head.mac) == (3, newest.hash, None, "")


def test_an_edited_row_is_detected_and_named(two_chains: tuple[Subscription, Subscription]) -> None:
    first, _ = two_chains
    victim = AuditEvent.objects.get(chain=chain(first), sequence=2)
    _sql(
        f"UPDATE {AuditEvent._meta.db_table} SET data = %s WHERE id = %s",
        [json.dumps({"n": 99, "amount": "25.00"}), victim.pk],
    )
    problem = found_problem()
    assert problem.pk == victim.pk
    assert problem.where == f"{chain(first)}#2"
    assert "edited" in problem.reason

    with pytest.raises(
        CommandError, match=rf"event {victim.pk} \(subscription:{first.pk}#2\)"
    ) as info:
        call_command("renewals_verify_audit")
    assert info.value.returncode == 1


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    first, _ = two_chains
    victim = AuditEvent.objects.get(chain=chain(first), sequence=2)
    victim.actor = "someone else"
    _sql(
        f"UPDATE {AuditEvent._meta.db_table} SET actor = %s, hash = %s WHERE id = %s",
        [victim.actor, victim.compute_hash(), victim.pk],
    )
    problem = found_problem()
    assert problem.where == f"{chain(first)}#3"
    assert "previous-hash" in problem.reason


def test_a_deleted_row_is_detected(two_chains: tuple[Subscription, Subscription]) -> None:
    first, _ = two_chains
    AuditEvent.objects.filter(chain=chain(first), sequence=1).delete()
    problem = found_problem()
    assert problem.where == f"{chain(first)}#2"
    assert "missing" in problem.reason


def test_a_deleted_tail_is_detected_by_the_head_left_behind(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    first, _ = two_chains
    AuditEvent.objects.filter(chain=chain(first), sequence=3).delete()
    problem = found_problem()
    assert (problem.model, problem.where) == ("head", chain(first))
    assert "it names link #3, which is gone" in problem.reason


@pytest.mark.parametrize("from_sequence", [3, 1], ids=["tail", "chain"])
def test_without_a_key_a_deletion_covered_up_is_caught_by_a_checkpoint(
    two_chains: tuple[Subscription, Subscription], from_sequence: int
) -> None:
    first, _ = two_chains
    create_checkpoint()
    delete_links(chain(first), from_sequence=from_sequence)  # the head follows
    problem = found_problem()
    assert problem.where == chain(first)
    assert "checkpoint #1 saw link #3, which is gone" in problem.reason


def test_without_a_key_a_tail_covered_up_after_the_last_checkpoint_goes_unseen(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    """A limit docs/audit.md states: plain hashes cannot show what no checkpoint saw."""
    first, _ = two_chains
    create_checkpoint()
    record_event("later", subscription=first)
    delete_links(chain(first), from_sequence=4)
    assert verify_audit().ok


def test_without_a_key_a_whole_new_chain_covered_up_goes_unseen(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    create_checkpoint()
    newcomer = make_subscription()
    record_event("step", subscription=newcomer)
    delete_links(chain(newcomer), from_sequence=1)
    assert verify_audit().ok


def test_an_edited_checkpoint_is_detected(two_chains: tuple[Subscription, Subscription]) -> None:
    checkpoint = create_checkpoint()
    create_checkpoint()
    heads = {name: [sequence, "f" * 64] for name, (sequence, _digest) in checkpoint.heads.items()}
    _sql(
        f"UPDATE {AuditCheckpoint._meta.db_table} SET heads = %s WHERE id = %s",
        [json.dumps(heads), checkpoint.pk],
    )
    problem = found_problem()
    assert problem.model == "checkpoint"
    assert problem.pk == checkpoint.pk
    assert "Merkle root" in problem.reason


def test_a_deleted_newest_checkpoint_is_detected(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    create_checkpoint()
    newest = create_checkpoint()
    AuditCheckpoint.objects.filter(pk=newest.pk).delete()
    problem = found_problem()
    assert (problem.model, problem.where) == ("head", "checkpoints")
    assert "the checkpoints end at #1" in problem.reason


def test_events_are_append_only(two_chains: tuple[Subscription, Subscription]) -> None:
    event = AuditEvent.objects.first()
    assert event is not None
    event.kind = "other"
    with pytest.raises(Exception, match="append-only"):
        event.save()


def test_the_command_reports_a_clean_log_and_can_checkpoint(
    two_chains: tuple[Subscription, Subscription], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("renewals_verify_audit", "--checkpoint")
    out = capsys.readouterr().out
    assert "6 events in 2 chains" in out
    assert "checkpoint #1 over 2 chains: " in out
    assert AuditCheckpoint.objects.get().hash in out
    assert AuditCheckpoint.objects.get().heads[chain(two_chains[0])][0] == 3


def test_each_checkpoint_is_shipped_once_committed(
    two_chains: tuple[Subscription, Subscription],
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    shipped: list[str] = []

    def ship(anchor: str, **kwargs: object) -> None:
        shipped.append(anchor)

    audit_checkpoint_created.connect(ship, dispatch_uid="test")
    try:
        with caplog.at_level(logging.INFO, logger="renewals.audit"):
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                checkpoint = create_checkpoint()
            assert shipped == []  # nothing before the commit
            assert not caplog.records
            for callback in callbacks:
                callback()
    finally:
        audit_checkpoint_created.disconnect(dispatch_uid="test")
    anchor = f"{checkpoint.sequence}:{checkpoint.hash}"
    assert shipped == [anchor]
    (record,) = caplog.records
    assert record.getMessage() == f"Audit checkpoint #1 over 2 chains: {anchor}"
    assert record.__dict__["audit_checkpoint"] == anchor


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_every_chain_whole() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    subscriptions = [make_subscription() for _ in range(2)]

    def write(index: int) -> None:
        for n in range(10):
            record_event("race", subscription=subscriptions[index % 2], data={"n": n})

    run_concurrently(write, threads=8)
    assert AuditEvent.objects.count() == 80
    report = verify_audit()
    assert report.ok, report.problem
    assert report.chains == 2


def test_events_for_many_chains_are_appended_together() -> None:
    from renewals.services.audit import NewEvent

    subscriptions = [make_subscription() for _ in range(3)]
    record_event("first", subscription=subscriptions[0])
    record_events(
        [NewEvent("batch", s.pk, data={"n": n}) for n, s in enumerate(subscriptions)]
        + [NewEvent("batch", subscriptions[0].pk, data={"n": 3})]
    )
    events = AuditEvent.objects.filter(kind="batch").order_by("data__n")
    assert [(e.chain, e.sequence) for e in events] == [
        (chain(subscriptions[0]), 2),
        (chain(subscriptions[1]), 1),
        (chain(subscriptions[2]), 1),
        (chain(subscriptions[0]), 3),
    ]
    assert verify_audit().ok


def test_a_rewritten_log_fails_against_a_hash_kept_outside(
    two_chains: tuple[Subscription, Subscription], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = two_chains
    call_command("renewals_verify_audit", "--checkpoint")
    anchor = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    call_command("renewals_verify_audit", "--expect", anchor)
    assert "1 matching the recorded hashes" in capsys.readouterr().out

    # Someone with database access rewrites a row, every later link, the head and the
    # checkpoint.
    def edit(event: AuditEvent) -> None:
        if event.sequence == 2:
            event.data = {"n": 99}

    rewrite_chain(chain(first), edit)
    reforge_checkpoints()

    assert verify_audit().ok  # the database alone cannot tell, without a key
    report = verify_audit(expect=[CheckpointAnchor.parse(anchor)])
    assert report.problem is not None
    assert (report.problem.model, report.problem.where) == ("checkpoint", "checkpoint#1")
    assert "was recorded outside" in report.problem.reason
    with pytest.raises(CommandError, match=r"checkpoint#1.*has hash") as info:
        call_command("renewals_verify_audit", "--expect", anchor)
    assert info.value.returncode == 1


def test_an_expected_checkpoint_that_is_gone_fails(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    anchor = CheckpointAnchor(7, "a" * 64)
    report = verify_audit(expect=[anchor])
    assert report.problem is not None
    assert "it is gone" in report.problem.reason


def test_an_anchor_reads_back_as_it_was_written() -> None:
    signed = CheckpointAnchor.parse(f"12:{'a' * 64}:{'b' * 64}")
    assert (signed.sequence, signed.hash, signed.mac) == (12, "a" * 64, "b" * 64)
    assert str(signed) == f"12:{'a' * 64}:{'b' * 64}"
    assert str(CheckpointAnchor.parse(f"3:{'c' * 64}")) == f"3:{'c' * 64}"


@pytest.mark.parametrize(
    "text", ["abc", "12:" + "A" * 64, "12:" + "a" * 63, ":" + "a" * 64, f"1:{'a' * 64}:"]
)
def test_a_malformed_expected_hash_is_a_usage_error(
    two_chains: tuple[Subscription, Subscription], text: str
) -> None:
    with pytest.raises(ValueError, match="SEQUENCE:HASH"):
        CheckpointAnchor.parse(text)
    with pytest.raises(CommandError, match="SEQUENCE:HASH") as info:
        call_command("renewals_verify_audit", "--expect", text)
    assert info.value.returncode == 2


def test_a_chain_rewritten_under_an_older_checkpoint_is_detected(
    two_chains: tuple[Subscription, Subscription],
) -> None:
    first, _ = two_chains
    create_checkpoint()
    record_event("later", subscription=first)
    create_checkpoint()

    # Rewrite link #2 and every later link, then re-forge only the newest checkpoint.
    def edit(event: AuditEvent) -> None:
        if event.sequence == 2:
            event.data = {"n": 99}

    rewrite_chain(chain(first), edit)
    newest = AuditCheckpoint.objects.get(sequence=2)
    head = AuditChainHead.objects.get(chain=chain(first))
    newest.heads[chain(first)][1] = head.hash
    newest.heads_root = ""  # the old format: the hash covers the heads themselves
    _sql(
        f"UPDATE {AuditCheckpoint._meta.db_table} SET heads = %s, heads_root = '', hash = %s "
        "WHERE id = %s",
        [json.dumps(newest.heads), newest.compute_hash(), newest.pk],
    )
    AuditChainHead.objects.filter(chain="checkpoints").update(hash=newest.compute_hash())

    problem = found_problem()
    assert problem.where == f"{chain(first)}#3"
    assert "checkpoint #1 saw this link with another hash" in problem.reason
