"""``renewals_health`` and the admin's health page: each kind of trouble is found and paged on."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time

from notifications.models import Delivery
from renewals.models import NoticeStatus, RenewalNotice, Status, Subscription
from renewals.services import plan_notices
from renewals.services.health import HealthReport, Section, health_report

from .factories import make_subscription, make_user

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC)
STUCK = dt.timedelta(minutes=30)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def section(report: HealthReport, key: str) -> Section:
    return next(s for s in report.sections if s.key == key)


def planned(days_ahead: float, **fields: Any) -> RenewalNotice:
    """The planned ``cn`` reminder of a subscription renewing ``days_ahead`` days from now,
    with ``fields`` changed."""
    subscription = make_subscription(next_renewal_at=NOW + dt.timedelta(days=days_ahead))
    (notice,) = plan_notices(subscription)
    RenewalNotice.objects.filter(pk=notice.pk).update(**fields)
    notice.refresh_from_db()
    return notice


def make_delivery(queued_ago: dt.timedelta, **fields: Any) -> Delivery:
    number = Delivery.objects.count()
    defaults = {
        "channel": Delivery.Channel.SMS,
        "backend_alias": "sms",
        "recipient": "+86 138****5678",
        "recipient_key": "user:1",
        "template_key": "renewals.reminder",
        "locale": "zh-hans",
        "dispatch_key": f"notice:{number}",
        "idempotency_key": f"notice:{number}:sms",
        "reference": f"renewals.notice:{number}",
        "queued_at": NOW - queued_ago,
    }
    return Delivery.objects.create(**{**defaults, **fields})


def run(*args: str) -> tuple[str, int]:
    """The command's output and exit status."""
    out = StringIO()
    try:
        call_command("renewals_health", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


# --- (a) renewals due soon without their notices ---------------------------------------------


def test_all_is_well_with_nothing_to_do() -> None:
    report = health_report(NOW)
    assert not report.needs_attention
    assert [s.count for s in report.sections] == [0, 0, 0, 0, 0]


def test_a_notice_given_in_its_window_is_in_order() -> None:
    notice = planned(6)
    notice.status, notice.sent_at = NoticeStatus.SENT, NOW
    notice.save()
    assert section(health_report(NOW + dt.timedelta(days=2)), "unannounced").count == 0


def test_a_renewal_whose_notice_was_never_planned() -> None:
    subscription = make_subscription(next_renewal_at=NOW + dt.timedelta(days=3))
    (row,) = section(health_report(NOW), "unannounced").rows
    assert row == {
        "subscription": subscription.pk,
        "renewal_at": "2027-03-04T02:00:00+00:00",
        "rule": "renewal-reminder",
        "notice": None,
        "status": None,
        "problem": "never planned",
    }


def test_only_renewals_within_the_days_that_will_happen() -> None:
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=10))
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=3), auto_renew=False)
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=3), status=Status.CANCELED)
    assert section(health_report(NOW, days=7), "unannounced").count == 0
    assert section(health_report(NOW, days=10), "unannounced").count == 1


def test_a_pending_notice_on_time_is_not_a_problem_until_overdue() -> None:
    notice = planned(6)
    assert notice.status == NoticeStatus.PLANNED
    on_time = notice.send_at + STUCK
    assert section(health_report(on_time), "unannounced").count == 0
    (row,) = section(health_report(on_time + dt.timedelta(seconds=1)), "unannounced").rows
    assert row["notice"] == notice.pk
    assert row["problem"] == "overdue: due at 2027-03-01T02:00:00+00:00"


def test_a_notice_awaiting_its_receipt_inside_the_window_is_not_a_problem() -> None:
    notice = planned(6, status=NoticeStatus.SENT, sent_at=NOW, delivered_when="delivered")
    assert section(health_report(NOW + dt.timedelta(hours=3)), "unannounced").count == 0
    after_window = notice.window_closes_at + dt.timedelta(seconds=1)
    (row,) = section(health_report(after_window), "unannounced").rows
    assert row["problem"] == "not given (sent)"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"status": NoticeStatus.FAILED}, "not given (failed)"),
        ({"status": NoticeStatus.WITHDRAWN}, "not given (withdrawn)"),
        (
            {"status": NoticeStatus.SENT, "sent_at": NOW - dt.timedelta(days=3)},
            "given outside its window, at 2027-02-26T02:00:00+00:00",
        ),
    ],
)
def test_a_notice_not_given_is_a_problem(fields: dict[str, Any], problem: str) -> None:
    planned(6, **fields)
    (row,) = section(health_report(NOW), "unannounced").rows
    assert row["problem"] == problem
    assert row["status"] == fields["status"]


def test_an_unknown_rule_pack_is_reported_not_raised() -> None:
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=3), policy="gone")
    (row,) = section(health_report(NOW), "unannounced").rows
    assert row["rule"] is None
    assert "Unknown rule pack 'gone'" in str(row["problem"])


# --- (b) missed notices -----------------------------------------------------------------------


def test_missed_notices_of_renewals_still_to_come() -> None:
    notice = planned(
        3, status=NoticeStatus.MISSED, missed_at=NOW, last_error="sms: no phone number"
    )
    (row,) = section(health_report(NOW), "missed").rows
    assert row == {
        "notice": notice.pk,
        "subscription": notice.subscription_id,
        "rule": "renewal-reminder",
        "renewal_at": "2027-03-04T02:00:00+00:00",
        "missed_at": "2027-03-01T02:00:00+00:00",
        "reason": "sms: no phone number",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"status": Status.CANCELED},
        {"auto_renew": False},
        {"next_renewal_at": NOW + dt.timedelta(days=33)},  # that renewal is over
    ],
)
def test_missed_notices_no_longer_relevant_are_left_out(change: dict[str, Any]) -> None:
    notice = planned(3, status=NoticeStatus.MISSED, missed_at=NOW)
    Subscription.objects.filter(pk=notice.subscription_id).update(**change)
    assert section(health_report(NOW), "missed").count == 0


def test_a_missed_notice_of_a_held_renewal_stays() -> None:
    notice = planned(3, status=NoticeStatus.MISSED, missed_at=NOW)
    Subscription.objects.filter(pk=notice.subscription_id).update(
        status=Status.ON_HOLD,
        held_renewal_at=notice.renewal_at,
        next_renewal_at=notice.renewal_at + dt.timedelta(days=5),
    )
    assert section(health_report(NOW), "missed").count == 1


# --- (c) stuck deliveries, (d) gateway syncs, (e) held renewals --------------------------------


def test_deliveries_queued_longer_than_the_threshold() -> None:
    stuck = make_delivery(STUCK + dt.timedelta(seconds=1), attempts=2, error_code="timeout")
    make_delivery(STUCK)
    make_delivery(dt.timedelta(hours=2), status=Delivery.Status.SENT)
    (row,) = section(health_report(NOW), "stuck_deliveries").rows
    assert row == {
        "delivery": stuck.pk,
        "channel": "sms",
        "backend": "sms",
        "recipient": "+86 138****5678",
        "reference": stuck.reference,
        "queued_at": "2027-03-01T01:29:59+00:00",
        "attempts": 2,
        "error": "timeout",
    }
    assert section(health_report(NOW, stuck_minutes=10), "stuck_deliveries").count == 2


def test_gateway_syncs_pending_longer_than_the_threshold() -> None:
    old = make_subscription(gateway_sync_pending=True, auto_renew=False)
    make_subscription(gateway_sync_pending=True)
    Subscription.objects.filter(pk=old.pk).update(updated_at=NOW - dt.timedelta(hours=1))
    (row,) = section(health_report(NOW), "gateway_sync_pending").rows
    assert row == {
        "subscription": old.pk,
        "gateway": "local",
        "gateway_subscription": "",
        "auto_renew": False,
        "changed_at": "2027-03-01T01:00:00+00:00",
    }


def test_held_renewals_are_listed_for_information() -> None:
    held = make_subscription(status=Status.ON_HOLD, held_renewal_at=NOW)
    report = health_report(NOW)
    on_hold = section(report, "on_hold")
    assert [row["subscription"] for row in on_hold.rows] == [held.pk]
    assert not on_hold.alert
    assert not report.needs_attention


def test_counts_are_complete_and_rows_limited() -> None:
    for _ in range(3):
        make_delivery(dt.timedelta(hours=1))
    stuck = section(health_report(NOW, limit=2), "stuck_deliveries")
    assert (stuck.count, len(stuck.rows), stuck.more) == (3, 2, 1)


# --- the command ------------------------------------------------------------------------------


def test_command_exits_0_when_all_is_well() -> None:
    make_subscription(status=Status.ON_HOLD, next_renewal_at=NOW + dt.timedelta(days=20))
    out, status = run()
    assert status == 0
    assert "All is well." in out
    assert "     1  Renewals held by the renewal gate" in out


def test_command_exits_1_and_lists_what_needs_a_person() -> None:
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=3))
    for _ in range(3):
        make_delivery(dt.timedelta(hours=1))
    out, status = run("--limit", "2")
    assert status == 1
    counts, rows = out.split("\n\n", 1)
    assert counts.splitlines()[0] == "Renewals health at 2027-03-01T02:00:00+00:00"
    assert "     1  Required notices not given, for renewals due in the next 7 days" in counts
    assert "     3  Deliveries queued for more than 30 minutes" in counts
    assert 'rule=renewal-reminder notice=- status=- problem="never planned"' in rows
    assert "  … and 1 more" in rows
    assert "Needs attention." in rows


def test_command_options_reach_the_report() -> None:
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=10))
    make_delivery(dt.timedelta(minutes=20))
    assert run()[1] == 0
    assert run("--days", "10")[1] == 1
    assert run("--stuck-minutes", "15")[1] == 1


def test_command_json() -> None:
    make_delivery(dt.timedelta(hours=1))
    out, status = run("--json")
    data = json.loads(out)
    assert status == 1
    assert data["checked_at"] == "2027-03-01T02:00:00+00:00"
    assert (data["days"], data["stuck_minutes"], data["needs_attention"]) == (7, 30, True)
    assert list(data["sections"]) == [
        "unannounced",
        "missed",
        "stuck_deliveries",
        "gateway_sync_pending",
        "on_hold",
    ]
    stuck = data["sections"]["stuck_deliveries"]
    assert stuck["title"] == "Deliveries queued for more than 30 minutes"
    assert (stuck["alert"], stuck["count"]) == (True, 1)
    assert stuck["rows"][0]["queued_at"] == "2027-03-01T01:00:00+00:00"
    assert data["sections"]["on_hold"]["alert"] is False


def test_command_refuses_bad_numbers() -> None:
    with pytest.raises(CommandError, match="must be 1 or more"):
        call_command("renewals_health", "--stuck-minutes", "0")


# --- the admin --------------------------------------------------------------------------------

HEALTH_URL = "/admin/renewals/renewalnotice/health/"


def test_health_url_name() -> None:
    assert reverse("admin:renewals_health") == HEALTH_URL


def test_health_page_for_staff_who_may_view_notices(client: Client) -> None:
    notice = planned(3, status=NoticeStatus.MISSED, missed_at=NOW, last_error="no device")
    staff = make_user(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_renewalnotice"))
    client.force_login(staff)
    response = client.get(HEALTH_URL)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/renewals/health.html"
    assert response.context["report"].needs_attention
    assert "Something needs a person" in response.text
    assert "Missed notices of renewals still to come: 1" in response.text
    assert reverse("admin:renewals_renewalnotice_change", args=[notice.pk]) in response.text
    assert "no device" in response.text


def test_health_page_takes_its_thresholds_from_the_query(admin_client: Client) -> None:
    make_subscription(next_renewal_at=NOW + dt.timedelta(days=10))
    assert not admin_client.get(HEALTH_URL).context["report"].needs_attention
    report = admin_client.get(HEALTH_URL, {"days": 10, "stuck_minutes": 5}).context["report"]
    assert (report.days, report.stuck_minutes, report.needs_attention) == (10, 5, True)
    # Invalid values fall back to the defaults and the form says why.
    response = admin_client.get(HEALTH_URL, {"days": -1})
    assert response.context["report"].days == 7
    assert response.context["form"].errors["days"]


def test_health_page_is_forbidden_without_the_view_permission(client: Client) -> None:
    client.force_login(make_user(is_staff=True))
    assert client.get(HEALTH_URL).status_code == 403


def test_health_page_sends_non_staff_to_the_login(client: Client) -> None:
    client.force_login(make_user())
    response = client.get(HEALTH_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_notice_changelist_links_to_the_health_page(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:renewals_renewalnotice_changelist"))
    assert f'href="{HEALTH_URL}"' in response.text


def test_needs_attention_filter(admin_client: Client) -> None:
    missed = planned(3, status=NoticeStatus.MISSED, missed_at=NOW)
    overdue = planned(6, send_at=NOW - STUCK - dt.timedelta(seconds=1))
    planned(6, send_at=NOW - STUCK + dt.timedelta(seconds=1))  # late, but not overdue yet
    ended = planned(3, status=NoticeStatus.MISSED, missed_at=NOW)
    Subscription.objects.filter(pk=ended.subscription_id).update(status=Status.CANCELED)
    changelist = reverse("admin:renewals_renewalnotice_changelist")
    response = admin_client.get(changelist, {"attention": "yes"})
    assert {n.pk for n in response.context["cl"].result_list} == {missed.pk, overdue.pk}
    assert len(admin_client.get(changelist).context["cl"].result_list) == 4


def test_health_page_links_only_to_models_in_the_admin(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = make_delivery(dt.timedelta(hours=1))
    link = reverse("admin:notifications_delivery_change", args=[delivery.pk])
    assert link in admin_client.get(HEALTH_URL).text
    registered: type[Model] = Delivery
    monkeypatch.delitem(admin.site._registry, registered)
    assert link not in admin_client.get(HEALTH_URL).text
