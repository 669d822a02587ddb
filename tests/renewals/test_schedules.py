"""``renewals_schedules`` writes the package's django-q2 schedules by name, idempotently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.models import Schedule
from freezegun import freeze_time
from pytest_django import Settings

from renewals.schedules import SCHEDULES, ScheduleSpec, intervals, next_future_run, upsert_schedules

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def run(*args: str) -> tuple[str, str, int]:
    """The command's output, warnings and exit status."""
    out, err = StringIO(), StringIO()
    try:
        call_command("renewals_schedules", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc.returncode
    return out.getvalue(), err.getvalue(), 0


def rows() -> dict[str, Schedule]:
    return {s.name: s for s in Schedule.objects.order_by("pk")}


def test_the_table() -> None:
    assert {spec.name: (spec.func, spec.minutes) for spec in SCHEDULES} == {
        "renewals.send_due_notices": ("renewals.tasks.send_due_notices", 1),
        "renewals.run_due_renewals": ("renewals.tasks.run_due_renewals", 5),
        "notifications.sweep_deliveries": ("notifications.tasks.sweep_deliveries", 10),
        "renewals.create_checkpoint": ("renewals.tasks.create_checkpoint", 60),
        "renewals.sync_pending_gateways": ("renewals.tasks.sync_pending_gateways", 15),
        "renewals.send_pending_confirmations": ("renewals.tasks.send_pending_confirmations", 10),
        "renewals.apply_scheduled_cancellations": (
            "renewals.tasks.apply_scheduled_cancellations",
            60,
        ),
    }


@pytest.mark.parametrize("spec", SCHEDULES, ids=lambda spec: spec.name)
def test_every_task_exists(spec: ScheduleSpec) -> None:
    assert callable(import_string(spec.func))


def test_creates_every_schedule_to_run_at_once() -> None:
    out, _err, status = run()
    assert status == 0
    created = rows()
    assert list(created) == [spec.name for spec in SCHEDULES]
    for spec in SCHEDULES:
        row = created[spec.name]
        assert (row.func, row.schedule_type, row.minutes, row.repeats) == (
            spec.func,
            Schedule.MINUTES,
            spec.minutes,
            -1,
        )
        assert (row.args, row.kwargs, row.next_run) == (None, None, NOW)
    assert "renewals.run_due_renewals: created (renewals.tasks.run_due_renewals every 5 min)" in out


def test_a_second_run_changes_nothing() -> None:
    run()
    before = {name: (row.pk, row.next_run) for name, row in rows().items()}
    with freeze_time(NOW + dt.timedelta(minutes=3)):
        out, _err, status = run()
    assert status == 0
    assert {name: (row.pk, row.next_run) for name, row in rows().items()} == before
    assert out.splitlines() == [f"{spec.name}: unchanged" for spec in SCHEDULES]


def test_an_edited_schedule_is_restored_and_runs_next_in_the_future() -> None:
    run()
    Schedule.objects.filter(name="renewals.run_due_renewals").update(
        minutes=3, func="renewals.tasks.other", next_run=NOW - dt.timedelta(hours=1, minutes=2)
    )
    out, _err, status = run()
    assert status == 0
    row = rows()["renewals.run_due_renewals"]
    assert (row.func, row.minutes) == ("renewals.tasks.run_due_renewals", 5)
    # At its phase: 01:58 + 13 x 5 minutes, not 13 missed runs to catch up.
    assert row.next_run == NOW + 3 * MINUTE
    assert (
        "renewals.run_due_renewals: updated (func: 'renewals.tasks.other' -> "
        "'renewals.tasks.run_due_renewals'; minutes: 3 -> 5)"
    ) in out


def test_fields_the_package_does_not_set_are_kept() -> None:
    run()
    Schedule.objects.filter(name="renewals.create_checkpoint").update(
        hook="myproject.hooks.report", cluster="eu"
    )
    assert run()[2] == 0
    row = rows()["renewals.create_checkpoint"]
    assert (row.hook, row.cluster) == ("myproject.hooks.report", "eu")


def test_duplicates_of_a_name_are_deleted() -> None:
    run()
    Schedule.objects.create(
        name="renewals.send_due_notices", func="renewals.tasks.send_due_notices"
    )
    out, _err, _status = run()
    assert Schedule.objects.filter(name="renewals.send_due_notices").count() == 1
    assert "renewals.send_due_notices: updated (deleted 1 duplicate(s))" in out


def test_check_changes_nothing_and_exits_1_when_out_of_date() -> None:
    out, _err, status = run("--check")
    assert status == 1
    assert not Schedule.objects.exists()
    assert "renewals.send_due_notices: would be created" in out
    run()
    assert run("--check")[2] == 0
    Schedule.objects.filter(name="renewals.send_due_notices").update(minutes=2)
    out, _err, status = run("--check")
    assert status == 1
    assert "renewals.send_due_notices: would be updated (minutes: 2 -> 1)" in out
    assert rows()["renewals.send_due_notices"].minutes == 2


def test_intervals_from_the_setting(settings: Settings) -> None:
    run()
    settings.RENEWALS = {
        "SCHEDULES": {"renewals.run_due_renewals": 2, "renewals.create_checkpoint": None}
    }
    out, _err, _status = run()
    schedules = rows()
    assert schedules["renewals.run_due_renewals"].minutes == 2
    assert "renewals.create_checkpoint" not in schedules
    assert "renewals.create_checkpoint: removed (left out by RENEWALS['SCHEDULES'])" in out
    out, _err, status = run("--check")
    assert status == 0
    assert "renewals.create_checkpoint: unchanged (left out by RENEWALS['SCHEDULES'])" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"renewals.nope": 5}, r"RENEWALS\['SCHEDULES'\] names no schedule 'renewals.nope'"),
        ({"renewals.run_due_renewals": 0}, r"\['renewals.run_due_renewals'\] must be .* >= 1"),
        ({"renewals.run_due_renewals": 40000}, "must be at most 32767"),
        ({"renewals.run_due_renewals": "5"}, "must be an integer"),
    ],
)
def test_invalid_settings_name_the_key(
    settings: Settings, value: dict[str, object], message: str
) -> None:
    settings.RENEWALS = {"SCHEDULES": value}
    with pytest.raises(ImproperlyConfigured, match=message):
        intervals()


def test_warns_while_the_cluster_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "CATCH_UP", True)
    assert "Q_CLUSTER['catch_up'] is on" in run()[1]
    monkeypatch.setattr(Conf, "CATCH_UP", False)
    assert run()[1] == ""


def test_upsert_schedules_returns_the_changes() -> None:
    changes = upsert_schedules(NOW, dry_run=True)
    assert [(c.name, c.action, c.changed) for c in changes] == [
        (spec.name, "created", True) for spec in SCHEDULES
    ]
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, NOW),
        (NOW + 2 * MINUTE, NOW + 2 * MINUTE),  # already ahead: kept
        (NOW + dt.timedelta(hours=2), NOW + 5 * MINUTE),  # no further than one interval
        (NOW, NOW + 5 * MINUTE),
        (NOW - 7 * MINUTE, NOW + 3 * MINUTE),  # missed runs are skipped, at the phase
    ],
)
def test_next_future_run(current: dt.datetime | None, expected: dt.datetime) -> None:
    assert next_future_run(current, 5 * MINUTE, NOW) == expected
