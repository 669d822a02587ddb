import io
from collections.abc import Mapping
from dataclasses import replace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from notifications.backends import (
    channel_backends,
    console,
    database,
    dummy,
    get_backend,
    locmem,
)
from notifications.messages import PushMessage, SendResult, SMSMessage
from notifications.models import OutboxMessage

from .helpers import PHONE, PROVIDER_BACKENDS

SMS = SMSMessage(to=PHONE, body="hello")
PUSH = PushMessage(token="abcdef0123456789", title="Hi", body="there", platform="ios")


def backends(**aliases: Mapping[str, object]) -> override_settings:
    return override_settings(NOTIFICATIONS={"BACKENDS": aliases})


def test_get_backend_unknown_alias() -> None:
    with pytest.raises(ImproperlyConfigured, match="has no alias 'fax'"):
        get_backend("fax")


def test_get_backend_bad_dotted_path_names_the_key() -> None:
    with (
        backends(sms={"BACKEND": "notifications.backends.nope.SMSBackend"}),
        pytest.raises(ImproperlyConfigured, match=r"\['BACKENDS'\]\['sms'\]\['BACKEND'\]"),
    ):
        get_backend("sms")


def test_get_backend_refuses_a_class_that_is_not_a_backend() -> None:
    with (
        backends(sms={"BACKEND": "notifications.messages.SMSMessage"}),
        pytest.raises(ImproperlyConfigured, match="not a BaseBackend subclass"),
    ):
        get_backend("sms")


def test_unknown_options_are_refused() -> None:
    config = {"BACKEND": "notifications.backends.locmem.SMSBackend", "OPTIONS": {"KEY": "x"}}
    with backends(sms=config), pytest.raises(ImproperlyConfigured, match="unknown keys"):
        get_backend("sms")


def test_get_backend_passes_alias_and_options() -> None:
    stream = io.StringIO()
    config = {"BACKEND": "notifications.backends.console.SMSBackend", "OPTIONS": {"stream": stream}}
    with backends(texts=config):
        backend = get_backend("texts")
    assert backend.alias == "texts"
    assert backend.options == {"stream": stream}


def test_channel_backends_refuses_an_alias_of_the_other_channel() -> None:
    with (
        override_settings(NOTIFICATIONS={"CHANNELS": {"sms": "push"}}),
        pytest.raises(ImproperlyConfigured, match="sends 'push' messages"),
    ):
        channel_backends("sms")


def test_channel_backends_unconfigured_channel() -> None:
    with (
        override_settings(NOTIFICATIONS={"CHANNELS": {"sms": "sms"}}),
        pytest.raises(ImproperlyConfigured, match="no entry for channel 'push'"),
    ):
        channel_backends("push")


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        ("push", {"": "push"}),  # a development backend sends to any device
        ("fcm", {"fcm": "fcm"}),  # a provider's backend only to its devices
        ({"fcm": "fcm", "apns": "apns"}, {"fcm": "fcm", "apns": "apns"}),
        ({"fcm": "fcm", "huawei": "push"}, {"fcm": "fcm", "huawei": "push"}),
    ],
)
def test_channel_backends_by_device_provider(
    push: str | dict[str, str], expected: dict[str, str]
) -> None:
    channels = {"sms": "sms", "push": push}
    with override_settings(NOTIFICATIONS={"BACKENDS": PROVIDER_BACKENDS, "CHANNELS": channels}):
        assert {p: b.alias for p, b in channel_backends("push").items()} == expected
        assert {p: b.alias for p, b in channel_backends("sms").items()} == {"": "sms"}


@pytest.mark.parametrize(
    ("push", "message"),
    [
        ({"apns": "fcm"}, r"\['push'\]\['apns'\] names alias 'fcm', whose backend sends to 'fcm'"),
        ({"fcm": "sms"}, r"\['push'\]\['fcm'\] names alias 'sms', whose backend sends 'sms'"),
        ({"fcm": "nope"}, "has no alias 'nope'"),
    ],
)
def test_channel_backends_refuses_a_wrong_alias_per_provider(
    push: str | dict[str, str], message: str
) -> None:
    channels = {"sms": "sms", "push": push}
    with (
        override_settings(NOTIFICATIONS={"BACKENDS": PROVIDER_BACKENDS, "CHANNELS": channels}),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        channel_backends("push")


def test_locmem_keeps_messages_and_returns_ids() -> None:
    results = locmem.SMSBackend("sms").send_messages([SMS, SMS])
    assert locmem.outbox == [SMS, SMS]
    assert all(r.ok and r.provider_message_id.startswith("locmem-") for r in results)
    assert results[0].provider_message_id != results[1].provider_message_id


def test_locmem_next_results_make_sends_fail_in_order() -> None:
    locmem.next_results += [SendResult.retry("timeout"), RuntimeError("down")]
    backend = locmem.PushBackend("push")
    assert backend.send_messages([PUSH]) == [SendResult.retry("timeout")]
    with pytest.raises(RuntimeError, match="down"):
        backend.send_messages([PUSH])
    assert backend.send_messages([PUSH])[0].ok
    assert locmem.outbox == [PUSH]


def test_console_writes_masked_recipients() -> None:
    stream = io.StringIO()
    with console.SMSBackend("sms", stream=stream) as backend:
        [result] = backend.send_messages([SMS])
    output = stream.getvalue()
    assert result.ok
    assert result.provider_message_id in output
    assert "+86 138****5678" in output
    assert "hello" in output
    assert "13812345678" not in output


def test_console_push_truncates_the_token() -> None:
    stream = io.StringIO()
    console.PushBackend("push", stream=stream).send_messages([PUSH])
    output = stream.getvalue()
    assert "abcdef…" in output
    assert "abcdef0123456789" not in output
    assert "ios: Hi" in output


def test_dummy_accepts_and_discards() -> None:
    results = dummy.SMSBackend("sms").send_messages([SMS] * 3)
    assert [r.ok for r in results] == [True] * 3
    assert locmem.outbox == []


@pytest.mark.django_db
def test_database_backend_stores_messages() -> None:
    results = database.PushBackend("phone").send_messages([replace(PUSH, url="https://x.test/c")])
    database.SMSBackend("phone").send_messages([SMS])
    push, sms = OutboxMessage.objects.order_by("pk")
    assert (push.url, sms.url) == ("https://x.test/c", "")
    assert (push.channel, push.title, push.body, push.recipient) == (
        "push",
        "Hi",
        "there",
        "abcdef…",
    )
    assert push.provider_message_id == results[0].provider_message_id
    assert (sms.channel, sms.recipient, sms.body) == ("sms", "+86 138****5678", "hello")
