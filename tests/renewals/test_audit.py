"""The audit log detects edits and deletions, and concurrent writers keep it whole."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from renewals.models import AuditCheckpoint, AuditEvent
from renewals.models.audit import GENESIS
from renewals.services import create_checkpoint, record_event, verify_audit

from ..concurrency import run_concurrently
from .factories import make_subscription

pytestmark = pytest.mark.django_db


def _sql(statement, params):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def two_chains():
    first, second = make_subscription(), make_subscription()
    for n in range(3):
        record_event("step", subscription=first, data={"n": n, "amount": "25.00"})
        record_event("step", subscription=second, data={"n": n})
    return first, second


def test_a_clean_log_verifies(two_chains):
    report = verify_audit()
    assert report.ok
    assert (report.events, report.chains) == (6, 2)


def test_an_edited_row_is_detected_and_named(two_chains):
    first, _ = two_chains
    victim = AuditEvent.objects.get(chain=f"subscription:{first.pk}", sequence=2)
    _sql(
        f"UPDATE {AuditEvent._meta.db_table} SET data = %s WHERE id = %s",
        [json.dumps({"n": 99, "amount": "25.00"}), victim.pk],
    )
    report = verify_audit()
    assert report.problem.pk == victim.pk
    assert report.problem.where == f"subscription:{first.pk}#2"
    assert "edited" in report.problem.reason

    with pytest.raises(
        CommandError, match=rf"event {victim.pk} \(subscription:{first.pk}#2\)"
    ) as info:
        call_command("renewals_verify_audit")
    assert info.value.returncode == 1


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(two_chains):
    first, _ = two_chains
    victim = AuditEvent.objects.get(chain=f"subscription:{first.pk}", sequence=2)
    victim.actor = "someone else"
    _sql(
        f"UPDATE {AuditEvent._meta.db_table} SET actor = %s, hash = %s WHERE id = %s",
        [victim.actor, victim.compute_hash(), victim.pk],
    )
    problem = verify_audit().problem
    assert problem.where == f"subscription:{first.pk}#3"
    assert "previous-hash" in problem.reason


def test_a_deleted_row_is_detected(two_chains):
    first, _ = two_chains
    _sql(
        f"DELETE FROM {AuditEvent._meta.db_table} WHERE chain = %s AND sequence = 1",
        [f"subscription:{first.pk}"],
    )
    problem = verify_audit().problem
    assert problem.where == f"subscription:{first.pk}#2"
    assert "missing" in problem.reason


@pytest.mark.parametrize("where", ["sequence = 3", "sequence >= 1"], ids=["tail", "chain"])
def test_a_deletion_after_a_checkpoint_is_detected(two_chains, where):
    first, _ = two_chains
    create_checkpoint()
    _sql(
        f"DELETE FROM {AuditEvent._meta.db_table} WHERE chain = %s AND {where}",
        [f"subscription:{first.pk}"],
    )
    problem = verify_audit().problem
    assert problem.where == f"subscription:{first.pk}"
    assert "checkpoint #1" in problem.reason


def test_an_edited_checkpoint_is_detected(two_chains):
    checkpoint = create_checkpoint()
    create_checkpoint()
    _sql(
        f"UPDATE {AuditCheckpoint._meta.db_table} SET heads = %s WHERE id = %s",
        [json.dumps({}), checkpoint.pk],
    )
    problem = verify_audit().problem
    assert problem.model == "checkpoint"
    assert problem.pk == checkpoint.pk


def test_events_are_append_only(two_chains):
    event = AuditEvent.objects.first()
    event.kind = "other"
    with pytest.raises(Exception, match="append-only"):
        event.save()


def test_the_command_reports_a_clean_log_and_can_checkpoint(two_chains, capsys):
    call_command("renewals_verify_audit", "--checkpoint")
    out = capsys.readouterr().out
    assert "6 events in 2 chains" in out
    assert "checkpoint #1 over 2 chains: " in out
    assert AuditCheckpoint.objects.get().hash in out
    assert AuditCheckpoint.objects.get().heads[f"subscription:{two_chains[0].pk}"][0] == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_every_chain_whole():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    subscriptions = [make_subscription() for _ in range(2)]

    def write(index):
        for n in range(10):
            record_event("race", subscription=subscriptions[index % 2], data={"n": n})

    run_concurrently(write, threads=8)
    assert AuditEvent.objects.count() == 80
    report = verify_audit()
    assert report.ok, report.problem
    assert report.chains == 2


def test_a_rewritten_log_fails_against_a_hash_kept_outside(two_chains, capsys):
    first, _ = two_chains
    call_command("renewals_verify_audit", "--checkpoint")
    anchor = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    call_command("renewals_verify_audit", "--expect", anchor)
    assert "1 matching the recorded hashes" in capsys.readouterr().out

    # Someone with database access rewrites a row, every later link, and the checkpoint.
    previous = GENESIS
    for event in AuditEvent.objects.filter(chain=f"subscription:{first.pk}").order_by("sequence"):
        if event.sequence == 2:
            event.data = {"n": 99}
        event.prev_hash = previous
        _sql(
            f"UPDATE {AuditEvent._meta.db_table} SET data = %s, prev_hash = %s, hash = %s "
            "WHERE id = %s",
            [json.dumps(event.data), event.prev_hash, event.compute_hash(), event.pk],
        )
        previous = event.compute_hash()
    checkpoint = AuditCheckpoint.objects.get()
    checkpoint.heads[f"subscription:{first.pk}"][1] = previous
    _sql(
        f"UPDATE {AuditCheckpoint._meta.db_table} SET heads = %s, hash = %s WHERE id = %s",
        [json.dumps(checkpoint.heads), checkpoint.compute_hash(), checkpoint.pk],
    )

    assert verify_audit().ok  # the chains alone cannot tell
    with pytest.raises(CommandError, match="checkpoint #1 has hash") as info:
        call_command("renewals_verify_audit", "--expect", anchor)
    assert info.value.returncode == 1


def test_a_malformed_expected_hash_is_a_usage_error(two_chains):
    with pytest.raises(CommandError, match="SEQUENCE:HASH"):
        call_command("renewals_verify_audit", "--expect", "abc")


def test_a_chain_rewritten_under_an_older_checkpoint_is_detected(two_chains):
    first, _ = two_chains
    chain = f"subscription:{first.pk}"
    create_checkpoint()
    record_event("later", subscription=first)
    create_checkpoint()

    # Rewrite link #2 and every later link, then re-forge only the newest checkpoint.
    previous = GENESIS
    for event in AuditEvent.objects.filter(chain=chain).order_by("sequence"):
        if event.sequence == 2:
            event.data = {"n": 99}
        event.prev_hash = previous
        previous = event.compute_hash()
        _sql(
            f"UPDATE {AuditEvent._meta.db_table} SET data = %s, prev_hash = %s, hash = %s "
            "WHERE id = %s",
            [json.dumps(event.data), event.prev_hash, previous, event.pk],
        )
    newest = AuditCheckpoint.objects.get(sequence=2)
    newest.heads[chain][1] = previous
    _sql(
        f"UPDATE {AuditCheckpoint._meta.db_table} SET heads = %s, hash = %s WHERE id = %s",
        [json.dumps(newest.heads), newest.compute_hash(), newest.pk],
    )

    problem = verify_audit().problem
    assert problem.where == f"{chain}#3"
    assert "checkpoint #1 saw this link with another hash" in problem.reason
