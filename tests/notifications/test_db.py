"""insert_rows and update_rows write many rows in one statement."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.db import insert_rows, update_rows
from notifications.models import Delivery

from .test_status import make_delivery

pytestmark = pytest.mark.django_db
AT = dt.datetime(2027, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_named_fields_of_every_row_are_saved_in_one_statement() -> None:
    deliveries = [make_delivery(key=f"k{i}:sms") for i in range(3)]
    for i, delivery in enumerate(deliveries):
        delivery.status = "sent"
        delivery.sent_at = AT + dt.timedelta(seconds=i)
        delivery.error_message = "" if i else "说明 'quoted' \\ %s"
        delivery.attempts = i
        delivery.reference = "not saved"
    with CaptureQueriesContext(connection) as captured:
        update_rows(deliveries, ["status", "sent_at", "error_message", "attempts"])
    assert len(captured) == 1
    rows = Delivery.objects.order_by("pk").values_list(
        "status", "sent_at", "error_message", "attempts", "reference"
    )
    assert list(rows) == [
        ("sent", AT, "说明 'quoted' \\ %s", 0, ""),
        ("sent", AT + dt.timedelta(seconds=1), "", 1, ""),
        ("sent", AT + dt.timedelta(seconds=2), "", 2, ""),
    ]


def test_null_values_and_an_empty_list_are_fine() -> None:
    delivery = make_delivery(sent_at=AT)
    delivery.sent_at = None
    update_rows([delivery], ["sent_at"])
    update_rows([], ["sent_at"])
    assert Delivery.objects.get().sent_at is None


def test_a_name_that_is_not_a_column_is_refused() -> None:
    delivery = make_delivery()
    with pytest.raises(ValueError, match="not a column"):
        update_rows([delivery], ["outbox_messages"])


def test_inserted_rows_get_their_keys_and_a_duplicate_key_fails_the_insert() -> None:
    rows = [make_delivery(key=f"k{i}:sms", save=False) for i in range(2)]
    insert_rows(rows)
    assert [row.pk for row in rows] == list(
        Delivery.objects.order_by("pk").values_list("pk", flat=True)
    )
    assert not rows[0]._state.adding
    again = [make_delivery(key="k9:sms", save=False), make_delivery(key="k0:sms", save=False)]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(again)
    assert Delivery.objects.count() == 2


def test_choices_members_are_stored_by_value_and_other_fields_are_prepared() -> None:
    # A TextChoices member goes in as its value ("sent"), never its name ("SENT"); a field
    # psycopg cannot take as is (JSON) still goes through the field's own preparation.
    from renewals.models import RenewalNotice
    from renewals.services import plan_notices
    from tests.renewals.factories import make_subscription

    deliveries = [make_delivery(key=f"k{i}:sms", save=False) for i in range(2)]
    for delivery in deliveries:
        delivery.status = Delivery.Status.SENT
    insert_rows(deliveries)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    subscription = make_subscription()
    plan_notices(subscription)
    notices = list(RenewalNotice.objects.filter(subscription=subscription))
    assert notices
    for notice in notices:
        notice.skipped = {"push": "no active device"}
    update_rows(notices, ["skipped"])
    stored = RenewalNotice.objects.filter(subscription=subscription).values_list(
        "skipped", flat=True
    )
    assert list(stored) == [{"push": "no active device"}] * len(notices)
