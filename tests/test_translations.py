# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""Both languages, everywhere: the catalogs are complete and current, and the pages, forms,
messages and API answer in Chinese when Chinese is asked for.

CI fails on a fuzzy or untranslated entry, on a translation that loses a placeholder, on a
source string no catalog has yet (``makemessages`` was not run), on a catalog entry whose
source is gone, and on an English sentence of ours left on a page shown in Chinese.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import ForeignObjectRel
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from build_support.compile_messages import ROOT, SOURCE_FOLDERS, Entry, read_po
from example_project import settings as example_settings
from example_project.demo_clock import DemoClock
from example_project.models import Profile
from notifications.backends import locmem
from notifications.messages import SMSMessage
from notifications.models import Device, OutboxMessage
from renewals.models import RenewalTerms, RevokedVia, Subscription
from renewals.notice_messages import (
    acknowledgment,
    cancelled,
    reminder,
    resumed,
    trial_acknowledgment,
)
from renewals.services import cancel_auto_renewal
from renewals.services.health import COLUMN_LABELS, Section
from renewals.tokens import one_click_token

from .renewals.factories import make_consented_subscription, make_subscription, make_user
from .renewals.recipients import RESOLVER

#: Every catalog of the apps and the example project, as "<folder>/<language>".
CATALOGS = {
    f"{folder}/{po.parts[-3]}": po
    for folder in SOURCE_FOLDERS
    for po in sorted((ROOT / folder).glob("locale/*/LC_MESSAGES/django.po"))
}
#: What makemessages runs; without them the check that the catalogs are current is skipped.
GETTEXT_TOOLS = ("xgettext", "msguniq", "msgmerge", "msgattrib")
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]")
TAG = re.compile(r"</?\w+")

NOW = dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
RENEWAL = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)  # 09:00 in Shanghai
RENEWAL_SHOWN = "2027年3月10日 09:00（Asia/Shanghai）"
MANAGE = reverse("renewals:manage")  # imports the URLconf, and its API models, before any freeze


def messages(po: Path) -> list[Entry]:
    """The messages of the catalog at ``po``, without its header."""
    return read_po(po)[1:]


def keys(entries: list[Entry]) -> set[tuple[str | None, str, str | None]]:
    return {(entry.context, entry.msgid, entry.msgid_plural) for entry in entries}


# --- the catalogs ----------------------------------------------------------------------------


def test_both_apps_and_the_example_ship_simplified_chinese() -> None:
    assert {name for name in CATALOGS if name.endswith("/zh_Hans")} == {
        f"{folder}/zh_Hans" for folder in SOURCE_FOLDERS
    }


@pytest.fixture(params=sorted(CATALOGS))
def catalog(request: pytest.FixtureRequest) -> Path:
    return CATALOGS[request.param]


def test_every_entry_is_translated(catalog: Path) -> None:
    header, *entries = read_po(catalog)
    language = catalog.parts[-3]
    metadata = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines())
    plural_forms = re.fullmatch(r"nplurals=(\d+); plural=.+;", metadata["Plural-Forms"])
    assert plural_forms is not None
    forms = int(plural_forms[1])

    assert header.is_header
    assert not header.fuzzy
    assert metadata["Language"] == language
    if language == "zh_Hans":  # one form, whatever the number
        assert metadata["Plural-Forms"] == "nplurals=1; plural=0;"
    assert [entry.msgid for entry in entries if entry.fuzzy] == []
    assert [entry.msgid for entry in entries if not entry.translated] == []
    plurals = [entry for entry in entries if entry.msgid_plural]
    assert [entry.msgid for entry in plurals if len(entry.msgstr) != forms] == []


def test_translations_keep_every_placeholder_and_tag(catalog: Path) -> None:
    def marks(text: str) -> list[str]:
        return sorted(PLACEHOLDER.findall(text) + TAG.findall(text))

    lost = [
        entry.msgid
        for entry in messages(catalog)
        for text in entry.msgstr
        if marks(text) != marks(entry.msgid_plural or entry.msgid)
    ]

    assert lost == []


def test_a_message_in_two_catalogs_of_a_language_translates_alike() -> None:
    """Django merges the apps' catalogs into one, where the first installed app's text wins."""
    seen: dict[tuple[str, str | None, str], tuple[str, list[str]]] = {}
    differ = []
    for name, po in CATALOGS.items():
        for entry in messages(po):
            key = (po.parts[-3], entry.context, entry.msgid)
            first = seen.setdefault(key, (name, entry.msgstr))
            if first[1] != entry.msgstr:
                differ.append((entry.msgid, first, (name, entry.msgstr)))

    assert differ == []


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in GETTEXT_TOOLS),
    reason=f"makemessages needs GNU gettext's {', '.join(GETTEXT_TOOLS)}, not all installed",
)
def test_the_catalog_holds_exactly_the_strings_of_the_source(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, language = catalog.relative_to(ROOT).parts[0], catalog.parts[-3]
    copy = tmp_path / folder
    shutil.copytree(ROOT / folder, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)

    call_command("makemessages", locale=[language], no_obsolete=True, verbosity=0)

    source = keys(messages(copy / catalog.relative_to(ROOT / folder)))
    committed = keys(messages(catalog))
    assert (sorted(source - committed, key=str), sorted(committed - source, key=str)) == ([], []), (
        f"{catalog.relative_to(ROOT)} is out of date (new strings, strings gone): run "
        f"'django-admin makemessages -l {language} --no-obsolete' in {folder}/ and translate."
    )


# --- labels ----------------------------------------------------------------------------------

#: Labels that are names, the same in every language.
PROPER_NAMES = {str(label) for label in (Device.Platform.IOS.label, Device.Platform.ANDROID.label)}
PROPER_NAMES |= {"HarmonyOS"}


def test_every_model_label_is_translatable() -> None:
    plain = []
    for label in ("renewals", "notifications", "example_project"):
        config = apps.get_app_config(label)
        texts: list[tuple[str, object]] = [(label, config.verbose_name)]
        for model in config.get_models():
            opts = model._meta
            texts += [
                (model.__name__, opts.verbose_name),
                (model.__name__, opts.verbose_name_plural),
            ]
            for field in opts.get_fields(include_hidden=True):
                if field.auto_created or isinstance(field, ForeignObjectRel):
                    continue  # the primary key (Django's own "ID") and reverse relations
                where = f"{model.__name__}.{field.name}"
                texts.append((where, field.verbose_name))
                if field.help_text:
                    texts.append((where, field.help_text))
                texts += [(where, choice) for _, choice in field.choices or ()]
        plain += [(where, text) for where, text in texts if not isinstance(text, Promise)]

    assert [(where, text) for where, text in plain if text not in PROPER_NAMES] == []


def test_the_health_report_heads_its_columns_in_the_active_language() -> None:
    section = Section(
        "stuck_deliveries",
        "",
        alert=True,
        count=1,
        rows=({"delivery": 7, "queued_at": "2027-03-01T02:00:00+00:00"},),
    )

    with translation.override("zh-hans"):
        assert [str(header) for header in section.headers] == ["投递记录", "排队时间"]
    assert set(COLUMN_LABELS) >= {"delivery", "queued_at"}


def test_the_reminders_use_the_words_of_the_pages() -> None:
    """The SMS and push texts are written per language beside the templates a provider
    approves; they must name the user's actions as the buttons do."""
    chinese = "zh-hans"
    with translation.override(chinese):
        turn_off, turn_on = gettext("Turn off auto-renewal"), gettext("Turn on auto-renewal")

    assert turn_off in reminder.texts[chinese].push_body
    assert turn_off in cancelled.texts[chinese].sms
    assert turn_on in resumed.texts[chinese].sms
    for template in (acknowledgment, trial_acknowledgment):
        assert turn_off in template.texts[chinese].sms
        assert turn_off in template.texts[chinese].email_body


def test_a_price_is_one_phrase_in_each_language() -> None:
    terms = RenewalTerms(amount="60", currency="CNY", interval="month", interval_count=3)
    monthly = RenewalTerms(amount="25", currency="CNY", interval="month", interval_count=1)

    assert terms.price_display == "60.00 CNY per 3 months"
    assert monthly.price_display == "25.00 CNY per month"
    with translation.override("zh-hans"):
        assert terms.price_display == "每 3 个月 60.00 CNY"
        assert monthly.price_display == "每月 25.00 CNY"


# --- the pages in Chinese --------------------------------------------------------------------


def english_left_in(page: str) -> list[str]:
    """The English texts of the catalogs (their runs of three words or more between
    placeholders and tags) that ``page`` still shows."""
    texts = {
        part.strip()
        for po in CATALOGS.values()
        for entry in messages(po)
        for message in (entry.msgid, entry.msgid_plural or "")
        for part in re.split(r"%\(\w+\)[sdr]|<[^>]*>", message)
        if len(part.split()) >= 3
    }
    shown = html.unescape(re.sub(r"<[^>]*>", " ", page))
    return sorted(text for text in texts if text in shown)


@pytest.fixture
def chinese(settings: Settings) -> None:
    """A site whose language is Chinese, as ``LANGUAGE_CODE = "zh-hans"`` makes it."""
    settings.LANGUAGE_CODE = "zh-hans"


@pytest.fixture
def subscription(db: None) -> Subscription:
    """Consent on record and a reminder planned, renewing on 10 March at 9:00 in Shanghai."""
    return make_consented_subscription(
        at=NOW - dt.timedelta(days=20), next_renewal_at=RENEWAL, time_zone="Asia/Shanghai"
    )


@pytest.fixture
def owner(client: Client, subscription: Subscription) -> Client:
    client.force_login(subscription.user)
    return client


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def test_the_manage_page_in_chinese(chinese: None, owner: Client) -> None:
    page = owner.get(MANAGE).text

    assert '<html lang="zh-hans">' in page
    assert "<h1>我的订阅</h1>" in page
    assert "<dd>每月 25.00 CNY</dd>" in page
    assert "<dt>下次续费</dt>" in page
    assert RENEWAL_SHOWN in page
    assert "续费提醒（时间为 Asia/Shanghai 时间）" in page
    assert "<td>短信、推送</td>" in page  # the reminder's channels, listed the Chinese way
    assert "关闭自动续费</button>" in page
    assert english_left_in(page) == []


def test_the_one_click_pages_in_chinese(
    chinese: None, client: Client, subscription: Subscription
) -> None:
    link = reverse("renewals:one_click_cancel", args=[one_click_token(subscription.notices.get())])

    question = client.get(link).text
    confirmation = client.post(link, follow=True).text

    assert "<h1>关闭自动续费？</h1>" in question
    assert "自动续费：不会再为下一期向您收取 25.00 CNY。" in question
    assert RENEWAL_SHOWN in question
    assert "<h1>自动续费已关闭</h1>" in confirmation
    assert "2027年3月1日 10:00（Asia/Shanghai）" in confirmation  # when it was switched off
    assert english_left_in(question) == english_left_in(confirmation) == []


def test_a_form_error_and_the_disclosure_in_chinese(
    chinese: None, owner: Client, subscription: Subscription
) -> None:
    cancel_auto_renewal(subscription, actor=subscription.user, via=RevokedVia.MANAGE_PAGE)
    url = reverse("renewals:auto_renew_on", args=[subscription.pk])
    form = owner.get(url).context["form"]

    page = owner.post(url, {"disclosure_token": form["disclosure_token"].initial}).text

    assert "请勾选此框以同意自动续费。" in page
    assert "价格：每月 25.00 CNY，每次续费时自动扣费，直至您关闭自动续费。" in page
    assert "首次续费：2027年3月10日（Asia/Shanghai 时间）。" in page
    assert english_left_in(page) == []


def test_a_message_after_an_action_in_chinese(
    chinese: None, owner: Client, subscription: Subscription
) -> None:
    page = owner.post(reverse("renewals:auto_renew_off", args=[subscription.pk]), follow=True).text

    expected = (
        "Example Plus的自动续费已关闭。此后不再扣费；服务有效期至 "
        "2027年3月10日 09:00（Asia/Shanghai 时间）。"
    )
    assert expected in page


def test_the_statutory_flow_in_chinese_keeps_the_labels_the_law_words(
    chinese: None, client: Client
) -> None:
    start = client.get(reverse("renewals:cancel_contract", args=["de"])).text
    confirm = client.get(reverse("renewals:cancel_contract_confirm", args=["de"])).text

    assert "<h1>解除合同</h1>" in start
    assert ">Verträge hier kündigen</a>" in start  # the rule pack's statutory wording
    assert "点击“jetzt kündigen”后，您的声明即告作出。" in confirm
    assert '<button type="submit">jetzt kündigen</button>' in confirm
    assert english_left_in(start) == english_left_in(confirm) == []


def test_a_receipt_is_in_the_pages_language_and_its_message_in_the_recipients(
    chinese: None,
    db: None,
    client: Client,
    settings: Settings,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "RECIPIENT_RESOLVER": RESOLVER}
    phone = "+4915123456789"
    holder = make_user(first_name=phone, last_name="en")  # the test resolver's locale: English
    contract = make_subscription(
        holder, policy="de", next_renewal_at=RENEWAL, time_zone="Asia/Shanghai"
    )
    client.force_login(holder)
    declaration = {
        **{"contract": contract.pk, "name": "Li Lei", "email": "", "phone": phone},
        **{"kind": "extraordinary", "reason": "搬家", "ends": "earliest", "ends_on": ""},
    }

    with django_capture_on_commit_callbacks(execute=True):
        url = reverse("renewals:cancel_contract_confirm", args=["de"])
        receipt = re.sub(r"\s+</p>", "</p>", client.post(url, declaration, follow=True).text)

    assert "<h1>我们已收到您的解约声明</h1>" in receipt
    assert "收到时间：2027年3月1日 10:00（Asia/Shanghai）。" in receipt
    # Two sentences, each whole and in a paragraph of its own, not joined by an English space.
    assert "<p>自动续费已关闭。您的合同有效期至 2027年3月10日 09:00，届时终止。</p>" in receipt
    assert "<p>我们会审核您所述的理由，并告知您合同是否提前终止。</p>" in receipt
    assert english_left_in(receipt) == []
    received = f"we received your cancellation of contract {contract.pk}."
    sms = [message.body for message in locmem.outbox if isinstance(message, SMSMessage)]
    assert any(
        body.startswith("Example Plus: on March 1") and body.endswith(received) for body in sms
    ), sms


def test_the_api_answers_in_the_language_the_request_asks_for(
    client: Client, settings: Settings
) -> None:
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:1],
        "django.middleware.locale.LocaleMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    url = reverse("renewals:api_subscriptions")

    chinese = client.get(url, headers={"accept-language": "zh-CN,zh;q=0.9"})
    english = client.get(url)

    assert chinese.status_code == english.status_code == 401
    assert chinese.json()["error"] == {
        "code": "not_authenticated",
        "message": "未提供身份验证凭据，或凭据无效。",
        "details": [],
    }
    assert english.json()["error"]["code"] == "not_authenticated"
    assert english.json()["error"]["message"] == (
        "Authentication credentials were not provided or are not valid."
    )


# --- the example project in Chinese ----------------------------------------------------------


@pytest.fixture
def example(settings: Settings, db: None) -> None:
    """The example project's settings: its templates, LocaleMiddleware and languages."""
    for name in ("TEMPLATES", "MIDDLEWARE", "LANGUAGES"):
        setattr(settings, name, getattr(example_settings, name))
    settings.NOTIFICATIONS = example_settings.NOTIFICATIONS
    call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.urls("example_project.urls")
def test_the_language_switch_turns_the_demo_chinese(example: None, client: Client) -> None:
    english = client.get(reverse("plans")).text
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    chinese = client.get(reverse("plans")).text

    switch = re.search(r'<form method="post" action="/i18n/setlang/".*?</form>', english, re.S)
    assert switch is not None
    assert '<label for="language">Language</label>' in switch.group()
    assert '<option value="zh-hans" lang="zh-hans">简体中文</option>' in switch.group()
    assert "<script" not in english
    assert '<html lang="zh-hans">' in chinese
    assert "<h1>套餐</h1>" in chinese
    assert "每月 25.00 CNY，含 7 天免费试用。" in chinese
    assert '<option value="zh-hans" lang="zh-hans" selected>简体中文</option>' in chinese
    assert english_left_in(chinese) == []


@pytest.mark.urls("example_project.urls")
@freeze_time(NOW)
def test_the_demos_own_pages_in_chinese(
    example: None, client: Client, demo_clock: DemoClock
) -> None:
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    pages = {"signup": client.get(reverse("signup")).text}
    client.login(username="demo", password="demo")
    demo_clock.advance_to(NOW + dt.timedelta(days=6))
    pages["account"] = client.get(reverse("account")).text
    pages["inbox"] = client.get(reverse("inbox")).text
    pages["time machine"] = client.post(reverse("time_machine"), follow=True).text

    for page in pages.values():
        assert '<html lang="zh-hans">' in page
        assert english_left_in(page) == []
    assert "演示时钟：2027-03-07 10:00 Asia/Shanghai（+6\xa0日）" in pages["account"]
    assert "时光机：跳到下一次提醒" in pages["account"]
    assert "<h1>收件箱</h1>" in pages["inbox"]
    assert "尚无计划发送的提醒：请先订阅套餐并开启自动续费。" in pages["time machine"]


@pytest.mark.urls("example_project.urls")
@freeze_time(NOW)
def test_subscribing_in_chinese_agrees_to_chinese_terms_and_gets_chinese_messages(
    example: None, client: Client, demo_clock: DemoClock
) -> None:
    client.login(username="demo", password="demo")
    chinese: dict[str, Any] = {"headers": {"accept-language": "zh-CN"}}
    url = reverse("subscribe", args=["monthly"])
    form = client.get(url, **chinese).context["form"]

    page = client.post(
        url,
        {
            "auto_renew_consent": "yes",
            "disclosure_token": form["disclosure_token"].initial,
            "request_key": form["request_key"].initial,
        },
        follow=True,
        **chinese,
    ).text
    output = io.StringIO()
    call_command("demo_time_machine", stdout=output)

    assert "您已订阅Example Plus (monthly)。" in page
    assert english_left_in(page) == []
    subscription = Profile.objects.get(user__username="demo").user.renewal_subscriptions.get()
    assert subscription.terms.locale == "zh-hans"
    assert subscription.terms.renewal_wording.startswith("我同意 Example Plus 在 7 天免费试用")
    assert subscription.consents.get().locale == "zh-hans"
    assert Profile.objects.get(user__username="demo").language == "zh-hans"
    sms = OutboxMessage.objects.get(channel="sms")
    assert sms.body.startswith("【Example Plus (monthly)】您的自动续费将于2027年3月")
