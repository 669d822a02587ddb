"""The batch planner: the same notices as ``plan_notices``, for many subscriptions at once."""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone
from freezegun import freeze_time
from pytest_django import Settings

from renewals.models import (
    AuditEvent,
    NoticeStatus,
    RenewalNotice,
    RenewalTerms,
    Status,
    Subscription,
)
from renewals.services import plan_notices, verify_audit
from renewals.services.batch_planning import plan_all

from .factories import make_subscription, make_terms, renewal_of

pytestmark = pytest.mark.django_db

NOW = "2027-02-20 12:00:00+00:00"
ZONES = ["Asia/Shanghai", "America/Los_Angeles", "Europe/Berlin", "UTC"]
PACKS = ["cn", "us-ca", "de", "eu", "fr"]
#: Every notice field but the primary key: what the two planners must agree on.
COMPARED = [field.attname for field in RenewalNotice._meta.concrete_fields if not field.primary_key]


def notices() -> dict[tuple[int, dt.datetime, str], dict[str, Any]]:
    return {
        (notice.subscription_id, notice.renewal_at, notice.rule_id): {
            name: getattr(notice, name) for name in COMPARED
        }
        for notice in RenewalNotice.objects.all()
    }


def planned_one_by_one() -> dict[tuple[int, dt.datetime, str], dict[str, Any]]:
    """What ``plan_notices`` makes of the current data, rolled back afterwards."""
    with transaction.atomic():
        for subscription in Subscription.objects.order_by("pk"):
            plan_notices(subscription)
        planned = notices()
        transaction.set_rollback(True)
    return planned


def all_terms() -> list[tuple[RenewalTerms, RenewalTerms | None]]:
    """(terms, upcoming terms) pairs: intervals, trials, and a price change."""
    monthly = make_terms()
    yearly = make_terms(currency="USD", interval="year", amount=Decimal("120"), locale="en")
    return [
        (monthly, None),
        (monthly, make_terms(amount=Decimal("30.00"))),  # the next renewal costs more
        (yearly, None),
        (make_terms(currency="EUR", interval="week", amount=Decimal("5"), locale="de"), None),
        (make_terms(interval="day", interval_count=30), None),
        (make_terms(currency="USD", interval="year", trial_days=45, locale="en"), None),
        (make_terms(trial_days=7), None),
    ]


def make_population(count: int, seed: int = 6) -> list[Subscription]:
    """``count`` auto-renewing subscriptions across zones, packs, terms and trials, renewing
    from hours to four months ahead (across the spring DST changes), a few of them not
    renewing any more."""
    chooser = random.Random(seed)
    now = timezone.now()
    terms = all_terms()
    subscriptions = []
    for _ in range(count):
        base, upcoming = chooser.choice(terms)
        renewal = now + dt.timedelta(seconds=chooser.randrange(3600, 120 * 86400))
        trialing = bool(base.trial_days) and chooser.random() < 0.7
        fields: dict[str, Any] = {
            "terms": base,
            "upcoming_terms": upcoming,
            "policy": chooser.choice(PACKS),
            "time_zone": chooser.choice(ZONES),
            "next_renewal_at": renewal,
            "status": Status.TRIALING if trialing else Status.ACTIVE,
            "trial_ends_at": renewal if trialing else None,
        }
        roll = chooser.random()
        if roll < 0.04:
            fields["auto_renew"] = False
        elif roll < 0.06:
            fields.update(status=Status.CANCELED, auto_renew=False, next_renewal_at=None)
        subscriptions.append(make_subscription(**fields))
    return subscriptions


def move(subscription: Subscription, **changes: Any) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(**changes)
    subscription.refresh_from_db()


def with_history(subscriptions: list[Subscription]) -> None:
    """Give some subscriptions notices from before: planned for a renewal that moved, withdrawn
    for one that came back, planned in a zone the user left, sent, and pending for a
    subscription whose auto-renewal was switched off behind planning's back."""
    later = timezone.now() + dt.timedelta(days=10)  # windows still open
    cn = [s for s in subscriptions if s.policy == "cn" and s.auto_renew and renewal_of(s) > later]
    moved, back, rezoned, sent, stopped = (cn[i : i + 6] for i in range(0, 30, 6))
    for subscription in cn[:36]:  # the last six stay as they are
        plan_notices(subscription)
    for subscription in moved:
        move(subscription, next_renewal_at=renewal_of(subscription) + dt.timedelta(days=3))
    for subscription in back:
        original = renewal_of(subscription)
        move(subscription, next_renewal_at=original + dt.timedelta(days=2))
        plan_notices(subscription)
        move(subscription, next_renewal_at=original)
    for subscription in rezoned:
        zone = "Europe/Berlin" if subscription.time_zone != "Europe/Berlin" else "UTC"
        move(subscription, time_zone=zone)
    RenewalNotice.objects.filter(subscription__in=sent).update(status=NoticeStatus.SENT)
    for subscription in stopped:
        move(subscription, auto_renew=False)


@freeze_time(NOW)
@pytest.mark.parametrize("batch_size", [1, 37, 2000])
def test_plan_all_makes_the_notices_plan_notices_makes(batch_size: int) -> None:
    subscriptions = make_population(240)
    with_history(subscriptions)
    expected = planned_one_by_one()
    before = notices()

    totals = plan_all(batch_size=batch_size)

    assert notices() == expected
    # The population covers what matters: every pack with rules, missed windows, the
    # us-ca trial and price-change rules and the requests for consent to a higher price (de
    # and eu have no other rule), calendar and elapsed days, notices planned afresh and
    # withdrawn.
    planned = [n for key, n in expected.items() if key not in before]
    assert {n["policy"] for n in planned} == {"cn", "us-ca", "fr", "de", "eu"}
    assert {n["status"] for n in planned} == {NoticeStatus.PLANNED, NoticeStatus.MISSED}
    assert {n["rule_id"] for n in planned} >= {
        "trial-ending",
        "price-change",
        "annual-term-renewal",
        "price-change-consent",
    }
    assert {n["message"] for n in planned} == {
        "renewals.reminder",
        "renewals.price_change",
        "renewals.price_change_consent",
    }
    assert {n["time_zone"] for n in planned} == set(ZONES)
    assert totals.planned == len(planned)
    # The renewals that came back and the users who moved zone (12), one of them with a
    # request for consent to a higher price besides its reminder.
    assert totals.replanned == 13
    assert totals.withdrawn == 18  # the moved renewals, twice, and the stopped ones
    assert (
        totals.subscriptions
        == Subscription.objects.filter(
            status__in=[Status.ACTIVE, Status.TRIALING], auto_renew=True
        ).count()
    )


@freeze_time(NOW)
def test_a_chunk_mixing_rules_that_differ_in_every_field(settings: Settings) -> None:
    settings.RENEWALS = {
        "POLICIES": {
            "cn-sms": {
                "extends": "cn",
                "notices": [
                    {
                        "id": "renewal-reminder",
                        "channels": ["sms"],
                        "strategy": "first_success",
                        "fallback_channels": ["push"],
                        "delivered_when": "delivered",
                    }
                ],
            }
        }
    }
    for policy in ("cn", "cn-sms", "cn", "cn-sms"):
        make_subscription(policy=policy)
    expected = planned_one_by_one()

    plan_all()

    assert notices() == expected
    assert {tuple(n["channels"]) for n in expected.values()} == {("sms", "push"), ("sms",)}


@freeze_time(NOW)
def test_planning_again_changes_nothing() -> None:
    make_population(60)
    first = plan_all(batch_size=25)
    state, events = notices(), AuditEvent.objects.count()

    again = plan_all(batch_size=25)

    assert first.planned > 0
    assert (again.planned, again.replanned, again.withdrawn) == (0, 0, 0)
    assert again.subscriptions == first.subscriptions
    assert notices() == state
    assert AuditEvent.objects.count() == events


@freeze_time(NOW)
def test_stale_notices_are_withdrawn_and_given_ones_kept() -> None:
    renewal = timezone.now() + dt.timedelta(days=20)
    moved, stopped, canceled, sent = (make_subscription(next_renewal_at=renewal) for _ in range(4))
    for subscription in (moved, stopped, canceled, sent):
        plan_notices(subscription)
    old = RenewalNotice.objects.get(subscription=moved)
    move(moved, next_renewal_at=renewal + dt.timedelta(days=7))
    move(stopped, auto_renew=False)
    move(canceled, status=Status.CANCELED, next_renewal_at=None)
    RenewalNotice.objects.filter(subscription=sent).update(status=NoticeStatus.SENT)

    totals = plan_all()

    assert totals.withdrawn == 3
    old.refresh_from_db()
    assert old.status == NoticeStatus.WITHDRAWN
    assert RenewalNotice.objects.get(subscription=moved, renewal_at=renewal_of(moved))
    for subscription in (stopped, canceled):
        assert RenewalNotice.objects.get(subscription=subscription).status == "withdrawn"
    assert RenewalNotice.objects.get(subscription=sent).status == NoticeStatus.SENT


@freeze_time(NOW)
def test_a_withdrawn_notice_whose_renewal_came_back_is_planned_afresh() -> None:
    subscription = make_subscription(next_renewal_at=timezone.now() + dt.timedelta(days=20))
    (notice,) = plan_notices(subscription)
    RenewalNotice.objects.filter(pk=notice.pk).update(
        status=NoticeStatus.WITHDRAWN, attempts=2, last_error="timeout"
    )

    assert plan_all().replanned == 1

    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.last_error) == ("planned", 0, "")


@freeze_time(NOW)
def test_one_audit_event_per_chunk_on_the_system_chain() -> None:
    subscriptions = [make_subscription() for _ in range(5)]
    ids = [s.pk for s in subscriptions]

    totals = plan_all(batch_size=2)

    events = list(AuditEvent.objects.filter(kind="notices_planned_batch").order_by("sequence"))
    assert totals.chunks == 3
    assert [e.chain for e in events] == ["system"] * 3
    assert [e.subscription_id for e in events] == [None] * 3
    assert [(e.data["after_id"], e.data["through_id"]) for e in events] == [
        (None, ids[1]),
        (ids[1], ids[3]),
        (ids[3], None),
    ]
    assert [e.data["planned"] for e in events] == [2, 2, 1]
    assert {k: v for k, v in events[0].data.items() if k != "bound_rows"} == {
        "policy": None,
        "after_id": None,
        "through_id": ids[1],
        "subscriptions": 2,
        "planned": 2,
        "replanned": 0,
        "withdrawn": 0,
    }
    # Each chunk's event binds the notices it planned (their windows, for verification).
    assert [
        sorted(bound["fields"]["subscription_id"] for bound in e.data["bound_rows"]) for e in events
    ] == [ids[:2], ids[2:4], ids[4:]]
    assert not AuditEvent.objects.filter(kind="notices_planned").exists()
    assert verify_audit().ok


@freeze_time(NOW)
def test_policy_limits_the_run_to_one_pack() -> None:
    in_60_days = timezone.now() + dt.timedelta(days=60)  # the fr window is still open
    cn = make_subscription(policy="cn")
    fr = make_subscription(policy="fr", time_zone="Europe/Berlin", next_renewal_at=in_60_days)
    stopped_cn = make_subscription(policy="cn")
    stopped_fr = make_subscription(policy="fr", next_renewal_at=in_60_days)
    for subscription in (stopped_cn, stopped_fr):
        plan_notices(subscription)
        move(subscription, auto_renew=False)

    totals = plan_all(policy="fr")

    assert (totals.subscriptions, totals.planned, totals.withdrawn) == (1, 1, 1)
    assert RenewalNotice.objects.filter(subscription=fr).count() == 1
    assert not RenewalNotice.objects.filter(subscription=cn).exists()
    assert RenewalNotice.objects.get(subscription=stopped_cn).status == NoticeStatus.PLANNED
    assert RenewalNotice.objects.get(subscription=stopped_fr).status == NoticeStatus.WITHDRAWN
    assert AuditEvent.objects.get(kind="notices_planned_batch").data["policy"] == "fr"


def test_an_empty_database_plans_nothing() -> None:
    assert plan_all() == plan_all(policy="cn")
    assert plan_all().chunks == 1
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("arguments", [{"batch_size": 0}, {"workers": 0}])
def test_sizes_must_be_positive(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        plan_all(**arguments)


def test_inside_a_transaction_one_worker_plans_what_the_transaction_sees() -> None:
    make_subscription()  # not committed: the test runs in a transaction
    assert plan_all(workers=4).planned == 1


@pytest.mark.django_db(transaction=True)
def test_workers_plan_the_same_notices() -> None:
    with freeze_time(NOW):
        make_population(125)
        expected = planned_one_by_one()
        totals = plan_all(batch_size=10, workers=3)
    assert notices() == expected
    assert totals.chunks == 13
    events = AuditEvent.objects.filter(kind="notices_planned_batch")
    assert sum(event.data["planned"] for event in events) == totals.planned > 0
    assert verify_audit().ok


# --- the command ------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("renewals_plan", *args, stdout=out)
    return out.getvalue()


@freeze_time(NOW)
def test_command_plans_everything_and_says_what_it_did() -> None:
    for _ in range(3):
        make_subscription()
    make_subscription(policy="fr", time_zone="Europe/Berlin")

    output = run("--all", "--batch-size", "3")

    assert re.fullmatch(
        r"Planned 4 auto-renewing subscriptions of all rule packs in 2 chunks \(\d+\.\d s\): "
        r"4 notices planned, 0 planned afresh, 0 withdrawn\.\n",
        output,
    )
    assert RenewalNotice.objects.count() == 4
    assert "0 notices planned" in run("--all")


@freeze_time(NOW)
def test_command_for_one_pack() -> None:
    make_subscription(policy="cn")
    make_subscription(policy="fr", time_zone="Europe/Berlin")

    output = run("--policy", "fr")

    assert "1 auto-renewing subscriptions of rule pack 'fr' in 1 chunks" in output
    assert list(RenewalNotice.objects.values_list("policy", flat=True)) == ["fr"]


def test_command_rejects_an_unknown_pack() -> None:
    with pytest.raises(CommandError, match="Unknown rule pack 'xx'; known packs: cn, "):
        run("--policy", "xx")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "one of the arguments --all --policy is required"),
        (("--all", "--policy", "cn"), "not allowed with argument"),
        (("--all", "--batch-size", "0"), "invalid positive value"),
        (("--all", "--workers", "-1"), "invalid positive value"),
    ],
)
def test_command_arguments(args: tuple[()] | tuple[str, str, str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
