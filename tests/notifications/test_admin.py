"""The admin shows devices, deliveries and stored messages without full tokens or numbers;
deliveries and messages read-only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Delivery, Device, OutboxMessage
from notifications.types import User

pytestmark = pytest.mark.django_db

TOKEN = "fcm-token-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def device(django_user_model: type[User]) -> Device:
    user = django_user_model.objects.create_user(username="ann", password="pw")
    return Device.objects.create(user=user, platform="android", provider="fcm", token=TOKEN)


@pytest.fixture
def delivery(device: Device) -> Delivery:
    return Delivery.objects.create(
        channel="sms",
        backend_alias="sms",
        recipient="+86 138****5678",
        template_key="tests.greeting",
        idempotency_key="k:sms",
        dispatch_key="k",
        recipient_key="user:1",
        queued_at=timezone.now(),
    )


def test_device_pages_never_show_the_whole_token(admin_client: Client, device: Device) -> None:
    for url in (
        reverse("admin:notifications_device_changelist"),
        reverse("admin:notifications_device_change", args=[device.pk]),
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert TOKEN not in page.content.decode()
        assert TOKEN[:6] in page.content.decode()


def test_devices_are_not_added_by_hand(admin_client: Client) -> None:
    assert admin_client.get(reverse("admin:notifications_device_add")).status_code == 403


def test_deliveries_are_read_only(admin_client: Client, delivery: Delivery) -> None:
    assert admin_client.get(reverse("admin:notifications_delivery_changelist")).status_code == 200
    change = reverse("admin:notifications_delivery_change", args=[delivery.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert "+86 138****5678" in page.content.decode()
    admin_client.post(change, {"status": "delivered"})
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED
    assert admin_client.get(reverse("admin:notifications_delivery_add")).status_code == 403


def test_deliveries_cannot_be_deleted(admin_client: Client, delivery: Delivery) -> None:
    delete = reverse("admin:notifications_delivery_delete", args=[delivery.pk])
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:notifications_delivery_changelist")
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [delivery.pk]})
    assert Delivery.objects.filter(pk=delivery.pk).exists()


@pytest.fixture
def outbox_message(delivery: Delivery) -> OutboxMessage:
    return OutboxMessage.objects.create(
        channel="sms",
        backend_alias="sms",
        recipient="+86 138****5678",
        body="Your plan renews on 1 June. Turn off auto-renewal: https://shop.example/manage/",
        provider_message_id="db-1",
        delivery=delivery,
    )


def test_stored_messages_are_listed_with_their_delivery(
    admin_client: Client, outbox_message: OutboxMessage
) -> None:
    page = admin_client.get(reverse("admin:notifications_outboxmessage_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Turn off auto-renewal: https://shop.example/manage/" in html
    assert "+86 138****5678" in html
    delivery_url = reverse("admin:notifications_delivery_change", args=[outbox_message.delivery_id])
    assert f'href="{delivery_url}"' in html


def test_stored_messages_are_read_only(admin_client: Client, outbox_message: OutboxMessage) -> None:
    change = reverse("admin:notifications_outboxmessage_change", args=[outbox_message.pk])
    assert admin_client.get(change).status_code == 200
    admin_client.post(change, {"body": "edited"})
    outbox_message.refresh_from_db()
    assert outbox_message.body.startswith("Your plan renews")
    assert admin_client.get(reverse("admin:notifications_outboxmessage_add")).status_code == 403
    delete = reverse("admin:notifications_outboxmessage_delete", args=[outbox_message.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
