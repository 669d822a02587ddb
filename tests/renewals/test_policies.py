"""Rule packs: the built-in data, the registry, the resolver and the system checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from freezegun import freeze_time
from pydantic import BaseModel, create_model

from notifications.message_templates import register
from renewals.exceptions import PolicyError, UnknownPolicy
from renewals.models import RenewalTerms
from renewals.notice_messages import REMINDER, ReminderFields, reminder
from renewals.policies import (
    Applicability,
    CancellationFlow,
    CancellationRules,
    Channel,
    ConsentRules,
    FreshConsent,
    GateRemedy,
    NoticeRule,
    PackStatus,
    PriceChangeRules,
    RenewalContext,
    RetentionRules,
    RulePack,
    ShortFirstTerm,
    available_packs,
    builtin_packs,
    get_pack,
    resolve_default_policy,
    resolve_policy,
)
from renewals.policies.checks import check_policies
from renewals.policies.offers import never_compliant, shortest_term_days
from renewals.types import User

BUILTIN_CODES = {"cn", "us-ca", "de", "eu", "uk", "fr", "us-ftc"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rule-packs.md"


def renewals(**values: Any) -> override_settings:
    return override_settings(RENEWALS=values)


def check_ids() -> list[str | None]:
    return [message.id for message in check_policies()]


def resolve_to_de(user: User, terms: RenewalTerms) -> str:
    return "de"


def resolve_to_nowhere(user: User, terms: RenewalTerms) -> str:
    return "atlantis"


def ctx(
    term_days: int = 30,
    ends_trial: bool = False,
    trial_days: int = 0,
    price_change: bool = False,
    price_increase: bool = False,
) -> RenewalContext:
    return RenewalContext(term_days, ends_trial, trial_days, price_change, price_increase)


# Built-in packs


def test_every_builtin_pack_loads() -> None:
    packs = available_packs()
    assert set(packs) == BUILTIN_CODES
    for code, pack in packs.items():
        assert pack.code == code
        assert pack.sources


def test_statuses() -> None:
    packs = available_packs()
    assert packs["uk"].status is PackStatus.NOT_IN_FORCE
    assert packs["us-ftc"].status is PackStatus.INACTIVE
    assert not packs["us-ftc"].in_force_on(dt.date(2025, 7, 1))
    assert not packs["eu"].in_force_on(dt.date(2026, 6, 18))
    assert packs["eu"].in_force_on(dt.date(2026, 6, 19))


def test_cn_window_closes_five_whole_days_before_the_renewal() -> None:
    (rule,) = get_pack("cn").notices_for(ctx())
    shanghai = ZoneInfo("Asia/Shanghai")
    opens, closes = rule.window(dt.datetime(2027, 3, 10, 9, tzinfo=shanghai))
    assert opens == dt.datetime(2027, 3, 3, 9, tzinfo=shanghai)
    assert closes == dt.datetime(2027, 3, 5, 9, tzinfo=shanghai)
    assert closes.isoformat() == "2027-03-05T09:00:00+08:00"
    assert (rule.channels, rule.strategy, rule.delivered_when) == (
        (Channel.SMS, Channel.PUSH),
        "all",
        "accepted",
    )
    assert "cancel_url" in rule.required_fields


def test_window_counts_elapsed_hours_across_daylight_saving() -> None:
    # Berlin moves its clocks forward on 2027-03-28: 5 x 24 h before 09:00 is 08:00 local.
    berlin = ZoneInfo("Europe/Berlin")
    renewal_at = dt.datetime(2027, 4, 1, 9, tzinfo=berlin)
    _, closes = get_pack("cn").notices[0].window(renewal_at)
    # Subtracting two datetimes in one zone ignores the offset change: compare in UTC.
    assert renewal_at.astimezone(dt.UTC) - closes.astimezone(dt.UTC) == dt.timedelta(hours=120)
    assert (closes.hour, closes.tzinfo) == (8, berlin)


def test_window_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        get_pack("cn").notices[0].window(dt.datetime(2027, 3, 10, 9))


def test_us_ca_annual_rule() -> None:
    pack = get_pack("us-ca")
    (rule,) = pack.notices_for(ctx(term_days=365))
    assert (rule.id, rule.earliest_days_before, rule.latest_days_before) == (
        "annual-term-renewal",
        45,
        15,
    )
    assert pack.notices_for(ctx(term_days=30)) == ()
    assert pack.consent.acknowledgment_required
    assert (pack.retention.min_years, pack.retention.years_after_contract_end) == (3, 1)


def test_us_ca_trial_rule_needs_a_trial_over_31_days() -> None:
    pack = get_pack("us-ca")
    (rule,) = pack.notices_for(ctx(ends_trial=True, trial_days=32))
    assert (rule.id, rule.earliest_days_before, rule.latest_days_before) == ("trial-ending", 21, 3)
    assert pack.notices_for(ctx(ends_trial=True, trial_days=31)) == ()
    assert pack.notices_for(ctx(trial_days=60)) == ()


def test_us_ca_price_change_rule() -> None:
    pack = get_pack("us-ca")
    (rule,) = pack.notices_for(ctx(price_change=True))
    assert (rule.id, rule.earliest_days_before, rule.latest_days_before) == ("price-change", 30, 7)
    assert rule.earliest_is_legal_limit
    rules = pack.notices_for(ctx(term_days=365, price_change=True))
    assert {r.id for r in rules} == {"annual-term-renewal", "price-change"}


def test_trial_longer_than_days_is_exclusive() -> None:
    rule = Applicability(trial_longer_than_days=14)
    assert rule.matches(ctx(trial_days=15))
    assert not rule.matches(ctx(trial_days=14))


@pytest.mark.parametrize(
    ("changes", "narrowed"),
    [
        ({}, ()),
        ({"min_term_days": None, "max_term_days": None, "ends_trial": None}, ()),
        ({"min_term_days": 180, "max_term_days": 800, "trial_longer_than_days": 7}, ()),
        ({"min_term_days": 400}, ("min_term_days",)),
        ({"max_term_days": 600}, ("max_term_days",)),
        ({"trial_longer_than_days": 60}, ("trial_longer_than_days",)),
        ({"ends_trial": False}, ("ends_trial",)),
        ({"price_change": True}, ("price_change",)),
    ],
)
def test_applicability_narrowed_from(changes: dict[str, Any], narrowed: tuple[str, ...]) -> None:
    builtin = Applicability(
        min_term_days=365, max_term_days=730, ends_trial=True, trial_longer_than_days=31
    )
    assert builtin.model_copy(update=changes).narrowed_from(builtin) == narrowed


def test_cancellation_flows() -> None:
    de, eu = get_pack("de").cancellation, get_pack("eu").cancellation
    assert de.flow is CancellationFlow.TWO_STEP_BUTTON
    assert de.labels == {"start": "Verträge hier kündigen", "confirm": "jetzt kündigen"}
    assert not de.login_required
    assert (eu.flow, eu.withdrawal_days) == (CancellationFlow.WITHDRAWAL, 14)
    assert get_pack("de").notices_for(ctx()) == ()  # no reminder before a renewal


def test_fr_lapses_without_notice() -> None:
    pack = get_pack("fr")
    assert pack.gate_remedy is GateRemedy.LAPSE
    (rule,) = pack.notices_for(ctx(term_days=365))
    assert rule.latest_days_before >= 31  # one calendar month, in the longest month
    assert rule.earliest_days_before <= 89  # three calendar months, in the shortest run


# Registry and resolver


def test_unknown_code_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicy, match=r"'atlantis'.*cn, de, eu, fr") as info:
        get_pack("atlantis")
    assert isinstance(info.value, LookupError)


def test_extends_deep_merges_over_the_parent() -> None:
    extra = {
        "cn-push": {
            "extends": "cn",
            "title": "China, push only",
            "notices": [
                {"id": "renewal-reminder", "channels": ["push"], "earliest_days_before": 10},
                {
                    "id": "early-heads-up",
                    "title": "Heads-up",
                    "source": "SAMR 网络交易监督管理办法, Art. 18",
                    "earliest_days_before": 14,
                    "latest_days_before": 10,
                    "channels": ["sms"],
                },
            ],
            "cancellation": {"login_required": True},
        }
    }
    with renewals(POLICIES=extra):
        pack = get_pack("cn-push")
    cn = get_pack("cn")
    assert (pack.code, pack.title, pack.sources) == ("cn-push", "China, push only", cn.sources)
    reminder, _consent_request, heads_up = pack.notices
    assert reminder.channels == (Channel.PUSH,)
    assert (reminder.earliest_days_before, reminder.latest_days_before) == (10, 5)
    assert reminder.required_fields == cn.notices[0].required_fields
    assert heads_up.id == "early-heads-up"
    assert pack.cancellation.login_required
    assert pack.cancellation.flow is cn.cancellation.flow
    assert pack.consent == cn.consent


def test_a_settings_pack_may_replace_a_builtin_by_extending_it() -> None:
    with renewals(POLICIES={"cn": {"extends": "cn", "gate_remedy": "lapse"}}):
        assert get_pack("cn").gate_remedy is GateRemedy.LAPSE
        assert get_pack("cn").notices == builtin_packs()["cn"].notices
        assert check_ids() == []
    assert get_pack("cn").gate_remedy is GateRemedy.DEFER


def test_extends_chains_through_settings_packs() -> None:
    extra = {
        "base": {"extends": "us-ca", "title": "Base"},
        "leaf": {"extends": "base", "gate_remedy": "lapse"},
    }
    with renewals(POLICIES=extra):
        leaf = get_pack("leaf")
    assert (leaf.title, leaf.gate_remedy) == ("Base", GateRemedy.LAPSE)
    assert leaf.notices == get_pack("us-ca").notices


def test_override_settings_clears_the_cache() -> None:
    assert "mine" not in available_packs()
    with renewals(POLICIES={"mine": {"extends": "de", "title": "Mine"}}):
        assert available_packs()["mine"].title == "Mine"
    assert "mine" not in available_packs()


def test_invalid_settings_pack_raises_policy_error() -> None:
    with (
        renewals(POLICIES={"bad": {"extends": "cn", "status": "maybe"}}),
        pytest.raises(PolicyError, match=r"'bad'.*status"),
    ):
        available_packs()


#: A user and terms (not saved): the resolvers here do not look at them.
USER, TERMS = get_user_model()(username="ann"), RenewalTerms()


def test_resolve_default_policy() -> None:
    assert resolve_default_policy(USER, TERMS) == "cn"
    with renewals(DEFAULT_POLICY="de"):
        assert resolve_default_policy(USER, TERMS) == "de"
        assert resolve_policy(USER, TERMS) == "de"


def test_resolve_policy_uses_the_configured_resolver() -> None:
    with renewals(POLICY_RESOLVER=f"{__name__}.resolve_to_de"):
        assert resolve_policy(USER, TERMS) == "de"
    with (
        renewals(POLICY_RESOLVER=f"{__name__}.resolve_to_nowhere"),
        pytest.raises(UnknownPolicy, match="atlantis"),
    ):
        resolve_policy(USER, TERMS)


# System checks


def test_default_settings_pass_the_checks() -> None:
    assert check_policies() == []


def test_e001_names_the_pack_and_the_field() -> None:
    bad = {"extends": "cn", "notices": [{"id": "renewal-reminder", "channels": []}]}
    with renewals(POLICIES={"cn-bad": bad}):
        (message,) = check_policies()
    assert message.id == "renewals.E001"
    assert "'cn-bad'" in message.msg
    assert "notices.0.channels" in message.msg


@pytest.mark.parametrize(
    ("policies", "text"),
    [
        ({"x": {"extends": "atlantis"}}, "unknown pack 'atlantis'"),
        ({"x": {"extends": "y"}, "y": {"extends": "x"}}, "loops"),
        ({"x": ["not", "a", "dict"]}, "must be a dict"),
        ({"x": {"extends": "cn", "code": "y"}}, "has code 'y'"),
    ],
)
def test_e001_for_bad_entries(policies: dict[str, Any], text: str) -> None:
    with renewals(POLICIES=policies):
        messages = check_policies()
    assert {m.id for m in messages} == {"renewals.E001"}
    assert any(text in m.msg for m in messages)


def test_e001_for_the_old_name_of_trial_longer_than_days() -> None:
    notice = {"id": "trial-ending", "applies_to": {"min_trial_days": 31}}
    with renewals(POLICIES={"x": {"extends": "us-ca", "notices": [notice]}}):
        (message,) = check_policies()
    assert message.id == "renewals.E001"
    assert "notices.1.applies_to.min_trial_days" in message.msg


def test_e002_unknown_default() -> None:
    with renewals(DEFAULT_POLICY="atlantis"):
        (message,) = check_policies()
    assert message.id == "renewals.E002"
    assert "'atlantis'" in message.msg


def test_default_may_name_a_settings_pack() -> None:
    with renewals(DEFAULT_POLICY="mine", POLICIES={"mine": {"extends": "cn"}}):
        assert check_ids() == []


@pytest.mark.parametrize(
    ("override", "ids"),
    [
        ({"latest_days_before": 4}, ["renewals.E003"]),
        ({"latest_days_before": 6, "earliest_days_before": 8}, []),
        ({"earliest_days_before": 30}, []),  # cn's opening is this package's choice
        ({"channels": ["push"]}, ["renewals.E003"]),
        ({"channels": ["push", "sms"], "strategy": "all"}, []),
        ({"strategy": "first_success"}, ["renewals.E003"]),
        ({"applies_to": {"min_term_days": 100000}}, ["renewals.E003"]),
        ({"applies_to": {"price_change": False}}, ["renewals.E003"]),
    ],
)
def test_e003_cn_reminder(override: dict[str, Any], ids: list[str]) -> None:
    notice = {"id": "renewal-reminder", **override}
    with renewals(POLICIES={"cn-late": {"extends": "cn", "notices": [notice]}}):
        assert check_ids() == ids


@pytest.mark.parametrize(
    ("code", "override", "ids"),
    [
        ("us-ca", {"id": "annual-term-renewal", "earliest_days_before": 90}, ["renewals.E003"]),
        ("us-ca", {"id": "annual-term-renewal", "earliest_days_before": 30}, []),
        (
            "us-ca",
            {"id": "trial-ending", "earliest_days_before": 22, "earliest_is_legal_limit": False},
            ["renewals.E003"],
        ),
        ("fr", {"id": "tacit-renewal-notice", "earliest_days_before": 92}, ["renewals.E003"]),
        ("us-ca", {"id": "annual-term-renewal", "applies_to": {"min_term_days": 180}}, []),
        ("us-ca", {"id": "trial-ending", "applies_to": {"trial_longer_than_days": 14}}, []),
        ("us-ca", {"id": "trial-ending", "applies_to": {"ends_trial": None}}, []),
        (
            "us-ca",
            {"id": "trial-ending", "applies_to": {"trial_longer_than_days": 60}},
            ["renewals.E003"],
        ),
        ("us-ca", {"id": "price-change", "channels": ["sms"]}, ["renewals.E003"]),
    ],
)
def test_e003_legal_openings_channels_and_coverage(
    code: str, override: dict[str, Any], ids: list[str]
) -> None:
    with renewals(POLICIES={code: {"extends": code, "notices": [override]}}):
        assert check_ids() == ids


def test_e003_names_each_weakening() -> None:
    notice = {
        "id": "annual-term-renewal",
        "earliest_days_before": 90,
        "latest_days_before": 10,
        "channels": ["push"],
        "applies_to": {"min_term_days": 400},
    }
    with renewals(POLICIES={"us-ca": {"extends": "us-ca", "notices": [notice]}}):
        messages = check_policies()
    assert [m.id for m in messages] == ["renewals.E003"] * 4
    text = "\n".join(f"{m.msg} {m.hint}" for m in messages)
    for part in (
        "later than the 15 days",
        "earlier than the 45 days",
        "drops the channels email, sms",
        "min_term_days=400 (built-in: 365)",
    ):
        assert part in text


def test_e003_replacing_a_builtin_without_its_notice_rule() -> None:
    replacement = builtin_packs()["us-ca"].model_dump(mode="json")
    replacement["notices"] = [r for r in replacement["notices"] if r["id"] != "price-change"]
    with renewals(POLICIES={"us-ca": replacement}):
        messages = check_policies()
    assert [m.id for m in messages] == ["renewals.E003"]
    assert "'price-change'" in messages[0].msg
    assert "drops" in messages[0].msg


@pytest.fixture
def reminder_without_cancel_url() -> Iterator[None]:
    kept = {name: (str, ...) for name in ReminderFields.model_fields if name != "cancel_url"}
    fields = create_model("NoCancelUrl", **kept)  # type: ignore[call-overload]
    register(dataclasses.replace(reminder, fields=fields, providers={}))
    yield
    register(reminder)


def test_e005_rule_requires_a_field_the_reminder_lacks() -> None:
    cn_fields = list(builtin_packs()["cn"].notices[0].required_fields)
    notice = {"id": "renewal-reminder", "required_fields": [*cn_fields, "consent_url"]}
    with renewals(POLICIES={"cn-price": {"extends": "cn", "notices": [notice]}}):
        (message,) = check_policies()
    assert message.id == "renewals.E005"
    assert "'renewal-reminder' of rule pack 'cn-price'" in message.msg
    assert "consent_url" in message.msg
    assert REMINDER in message.msg


def test_e005_reminder_template_lacks_a_builtin_field(reminder_without_cancel_url: None) -> None:
    messages = check_policies()
    assert {m.id for m in messages} == {"renewals.E005"}
    # One per notice rule sent with the reminder: cn 1, fr 1, us-ca 2 (not their price-change
    # rules, which have templates of their own).
    assert len(messages) == 4
    assert all("cancel_url" in m.msg for m in messages)


def test_w001_default_not_in_force() -> None:
    with renewals(DEFAULT_POLICY="uk"):
        (message,) = check_policies()
    assert message.id == "renewals.W001"
    assert "'uk'" in message.msg


def test_w001_follows_the_effective_date() -> None:
    with renewals(DEFAULT_POLICY="eu"):
        with freeze_time("2026-06-18"):
            assert check_ids() == ["renewals.W001"]
        with freeze_time("2026-06-19"):
            assert check_ids() == []


def test_e004_resolver_cannot_be_imported() -> None:
    with renewals(POLICY_RESOLVER="renewals.policies.no_such_resolver"):
        (message,) = check_policies()
    assert message.id == "renewals.E004"
    assert "no_such_resolver" in message.msg


# Documentation


def test_docs_tables_match_the_packs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^### `([a-z0-9-]+)`.*?\n(.*?)(?=^#|\Z)", text, re.M | re.S))
    assert set(sections) == BUILTIN_CODES
    for code, pack in builtin_packs().items():
        section = sections[code]
        assert f"| gate remedy | {pack.gate_remedy.value}" in section, code
        assert f"| first renewal too soon | {pack.short_first_term.value}" in section, code
        fresh_consent = {
            FreshConsent.NEVER: "fresh consent",  # "no fresh consent", "never fresh consent"
            FreshConsent.ON_INCREASE: "| price change | fresh consent on an increase",
            FreshConsent.ON_ANY_CHANGE: "| price change | fresh consent on any change",
        }[pack.price_change.fresh_consent]
        assert fresh_consent in section, code
        assert f"| status | {pack.status.value}" in section, code
        for source in pack.sources:
            assert source.citation in section, (code, source.citation)
        rows = re.findall(r"^\| notice `([a-z0-9-]+)` \| (.*)$", section, re.M)
        assert [rule_id for rule_id, _ in rows] == [rule.id for rule in pack.notices], code
        for (_, row), rule in zip(rows, pack.notices, strict=True):
            days = "calendar days" if rule.day_count == "calendar" else "days"
            window = f"{rule.earliest_days_before} to {rule.latest_days_before} {days} before"
            assert window in row, (code, rule.id)
            assert " + ".join(rule.channels) in row, (code, rule.id)


def test_docs_say_what_enforces_every_pack_field() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## What enforces each field\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_.]+)`", "".join(re.findall(r"^\| (.*?) \|", section, re.M))))
    nested: dict[str, type[BaseModel]] = {
        "consent": ConsentRules,
        "notices": NoticeRule,
        "price_change": PriceChangeRules,
        "cancellation": CancellationRules,
        "retention": RetentionRules,
    }
    fields: set[str] = set()
    for name in RulePack.model_fields:
        model = nested.get(name)
        fields |= {f"{name}.{sub}" for sub in model.model_fields} if model else {name}
    assert named == fields


def test_e003_a_lapse_remedy_turned_into_defer() -> None:
    with renewals(POLICIES={"fr": {"extends": "fr", "gate_remedy": "defer"}}):
        messages = check_policies()
    assert [m.id for m in messages] == ["renewals.E003"]
    assert "from 'lapse' to 'defer'" in messages[0].msg
    with renewals(POLICIES={"cn-lapse": {"extends": "cn", "gate_remedy": "lapse"}}):
        assert check_ids() == []  # defer -> lapse asks more, not less


def assert_only_e003(code: str, override: dict[str, Any], problem: str | None) -> None:
    """A settings pack extending ``code`` with ``override`` passes the checks (``problem`` is
    ``None``), or gets one ``renewals.E003`` that names ``problem``."""
    with renewals(POLICIES={f"{code}-x": {"extends": code, **override}}):
        messages = check_policies()
    if problem is None:
        assert messages == []
    else:
        assert [m.id for m in messages] == ["renewals.E003"]
        assert problem in messages[0].msg


@pytest.mark.parametrize(
    ("code", "override", "problem"),
    [
        ("cn", {"consent": {"never_pre_ticked": False}}, "turns consent.never_pre_ticked off"),
        ("cn", {"consent": {"not_bundled": False}}, "turns consent.not_bundled off"),
        ("us-ca", {"retention": {"min_years": 0}}, "lowers retention.min_years to 0"),
        ("cn", {"cancellation": {"login_required": True}}, "requires a login to cancel"),
        ("de", {"cancellation": {"flow": "one_click"}}, "changes the cancellation flow"),
        ("de", {"cancellation": {"labels": {"start": "Kündigen"}}}, "legally worded labels"),
        (
            "cn",
            {"notices": [{"id": "renewal-reminder", "required_fields": ["amount"]}]},
            "no longer requires the message fields",
        ),
        (
            "cn",
            {"notices": [{"id": "renewal-reminder", "delivered_when": "accepted"}]},
            None,  # cn already counts acceptance: nothing weakened
        ),
    ],
)
def test_e003_pack_level_weakenings(
    code: str, override: dict[str, Any], problem: str | None
) -> None:
    assert_only_e003(code, override, problem)


def test_e003_waiting_for_receipts_may_not_be_dropped() -> None:
    from renewals.policies.checks import _weakenings

    waits = builtin_packs()["cn"].notices[0].model_copy(update={"delivered_when": "delivered"})
    accepts = waits.model_copy(update={"delivered_when": "accepted"})
    ((problem, _hint),) = _weakenings(accepts, waits)
    assert "waits for a delivery receipt" in problem
    assert _weakenings(waits, accepts) == []


# Calendar days, price changes, a first renewal too soon

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def calendar_rule(earliest: int, latest: int) -> NoticeRule:
    return NoticeRule(
        id="calendar",
        title="Calendar",
        source="x",
        earliest_days_before=earliest,
        latest_days_before=latest,
        channels=(Channel.SMS,),
        day_count="calendar",
    )


def test_a_calendar_window_is_whole_local_days_in_the_zone_given() -> None:
    renewal = dt.datetime(2027, 3, 20, 7, 30, tzinfo=dt.UTC)  # 00:30 in Los Angeles (PDT)
    opens, closes = calendar_rule(45, 15).window(renewal, LOS_ANGELES)
    assert opens == dt.datetime(2027, 2, 3, tzinfo=LOS_ANGELES)  # PST
    assert closes == dt.datetime(2027, 3, 6, tzinfo=LOS_ANGELES) - dt.timedelta(microseconds=1)
    assert (opens.tzinfo, closes.tzinfo) == (dt.UTC, dt.UTC)  # in renewal_at's zone
    # Without a zone, renewal_at's own: here UTC days.
    opens, _ = calendar_rule(45, 15).window(renewal)
    assert opens == dt.datetime(2027, 2, 3, tzinfo=dt.UTC)


def test_a_calendar_window_never_closes_after_the_renewal() -> None:
    renewal = dt.datetime(2027, 3, 20, 9, tzinfo=LOS_ANGELES)
    assert calendar_rule(3, 0).window(renewal)[1] == renewal


def test_a_calendar_window_where_the_clocks_skip_midnight() -> None:
    # Santiago moved its clocks from 00:00 to 01:00 on 2027-09-05: that day starts at 01:00.
    santiago = ZoneInfo("America/Santiago")
    opens, _ = calendar_rule(5, 1).window(dt.datetime(2027, 9, 10, 12, tzinfo=santiago))
    assert opens.astimezone(santiago) == dt.datetime(2027, 9, 5, 1, tzinfo=santiago)


@pytest.mark.parametrize(
    ("after_local", "earliest_local"),
    [
        # 15 x 24 hours after 00:30 on 11-01, across the clocks going back on 11-07, is 23:30
        # on 11-15: the 14th local day. The earliest renewal is the start of the 15th.
        (dt.datetime(2027, 11, 1, 0, 30), dt.datetime(2027, 11, 16)),
        # Without a change between, 15 x 24 hours on: the same time on the 15th day.
        (dt.datetime(2027, 10, 1, 9), dt.datetime(2027, 10, 16, 9)),
    ],
)
def test_earliest_renewal_counts_calendar_days(
    after_local: dt.datetime, earliest_local: dt.datetime
) -> None:
    rule = calendar_rule(45, 15)
    after = after_local.replace(tzinfo=LOS_ANGELES)
    earliest = rule.earliest_renewal(after, LOS_ANGELES)
    assert earliest == earliest_local.replace(tzinfo=LOS_ANGELES)
    assert rule.window(earliest, LOS_ANGELES)[1] >= after
    hours_later = after.astimezone(dt.UTC) + dt.timedelta(days=15)
    assert (rule.window(hours_later, LOS_ANGELES)[1] >= after) is (earliest == hours_later)
    elapsed = rule.model_copy(update={"day_count": "elapsed"})
    assert elapsed.earliest_renewal(after, LOS_ANGELES) == hours_later


def test_us_ca_counts_calendar_days_and_others_elapsed_days() -> None:
    for code, pack in builtin_packs().items():
        expected = "calendar" if code == "us-ca" else "elapsed"
        assert {rule.day_count for rule in pack.notices} <= {expected}, code


@pytest.mark.parametrize(
    ("fresh_consent", "change", "increase", "required"),
    [
        ("never", True, True, False),
        ("on_increase", True, True, True),
        ("on_increase", True, False, False),
        ("on_any_change", True, False, True),
        ("on_any_change", False, False, False),
    ],
)
def test_which_price_changes_need_fresh_consent(
    fresh_consent: str, change: bool, increase: bool, required: bool
) -> None:
    rules = PriceChangeRules.model_validate({"fresh_consent": fresh_consent, "source": "x"})
    assert rules.requires_consent(ctx(price_change=change, price_increase=increase)) is required


def test_the_price_change_rules_of_the_builtin_packs() -> None:
    packs = builtin_packs()
    fresh = {code: pack.price_change.fresh_consent for code, pack in packs.items()}
    assert fresh == {
        "cn": FreshConsent.ON_INCREASE,
        "de": FreshConsent.ON_INCREASE,
        "eu": FreshConsent.ON_INCREASE,
        "fr": FreshConsent.ON_INCREASE,
        "uk": FreshConsent.ON_INCREASE,
        "us-ca": FreshConsent.NEVER,
        "us-ftc": FreshConsent.NEVER,
    }
    assert {pack.price_change.without_consent for pack in packs.values()} == {GateRemedy.LAPSE}
    for code in ("cn", "de", "eu", "fr"):
        (request,) = packs[code].notices_for(ctx(price_change=True, price_increase=True))[-1:]
        assert (request.id, request.message) == (
            "price-change-consent",
            "renewals.price_change_consent",
        )
        assert "consent_url" in request.required_fields
        assert packs[code].notices_for(ctx(price_change=True)) == packs[code].notices_for(ctx())
    (notice,) = packs["us-ca"].notices_for(ctx(price_change=True))
    assert (notice.message, notice.day_count) == ("renewals.price_change", "calendar")
    assert {"previous_amount", "amount", "cancel_url"} <= set(notice.required_fields)
    assert {pack.short_first_term for pack in packs.values()} == {ShortFirstTerm.REFUSE}


def test_us_ca_the_end_of_a_short_trial_is_no_annual_renewal() -> None:
    pack = get_pack("us-ca")
    assert pack.notices_for(ctx(term_days=365, ends_trial=True, trial_days=10)) == ()
    (rule,) = pack.notices_for(ctx(term_days=365))
    assert rule.id == "annual-term-renewal"


@pytest.mark.parametrize(
    ("price_change", "error"),
    [
        ({"fresh_consent": "on_increase"}, "needs the price_change.source"),
        ({"fresh_consent": "never", "source": "Nowhere Act"}, "'Nowhere Act', which is not in"),
        ({"fresh_consent": "sometimes", "source": "x"}, "fresh_consent"),
        ({"without_consent": "charge", "source": "x"}, "without_consent"),
    ],
)
def test_price_change_rules_are_validated(price_change: dict[str, Any], error: str) -> None:
    extra = {"x": {"extends": "us-ftc", "price_change": price_change}}
    with renewals(POLICIES=extra), pytest.raises(PolicyError, match=error):
        get_pack("x")


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"price_change": {"fresh_consent": "never"}}, "lowers price_change.fresh_consent"),
        ({"price_change": {"fresh_consent": "on_any_change"}}, None),
        ({"price_change": {"without_consent": "defer"}}, None),
        ({"short_first_term": "defer"}, None),
    ],
)
def test_e003_fresh_consent_may_only_be_asked_for_more_often(
    override: dict[str, Any], problem: str | None
) -> None:
    assert_only_e003("cn", override, problem)


def test_e003_a_rule_counting_other_days_than_the_builtin() -> None:
    notice = {"id": "annual-term-renewal", "day_count": "elapsed"}
    with renewals(POLICIES={"us-ca": {"extends": "us-ca", "notices": [notice]}}):
        (message,) = check_policies()
    assert message.id == "renewals.E003"
    assert "as elapsed days, where the built-in rule counts calendar days" in message.msg


def test_e005_a_rule_names_a_template_nobody_registered() -> None:
    notice = {"id": "renewal-reminder", "message": "shop.reminder"}
    with renewals(POLICIES={"cn-x": {"extends": "cn", "notices": [notice]}}):
        (message,) = check_policies()
    assert message.id == "renewals.E005"
    assert "'shop.reminder', which is not registered" in message.msg


def test_e005_a_template_asks_for_a_field_no_notice_fills() -> None:
    fields = create_model("Greedy", service_name=(str, ...), loyalty_points=(str, ...))
    register(dataclasses.replace(reminder, key="shop.greedy", fields=fields, providers={}))
    notice = {"id": "renewal-reminder", "message": "shop.greedy", "required_fields": []}
    with renewals(POLICIES={"cn-x": {"extends": "cn", "notices": [notice]}}):
        messages = check_policies()
    assert [m.id for m in messages] == ["renewals.E003", "renewals.E005"]
    assert "fields loyalty_points no notice fills" in messages[1].msg


@pytest.mark.parametrize(
    ("interval", "count", "days"),
    [("day", 6, 6), ("week", 1, 7), ("month", 1, 28), ("month", 3, 89), ("year", 1, 365)],
)
def test_shortest_term_days(interval: str, count: int, days: int) -> None:
    assert shortest_term_days(interval, count) == days


@pytest.mark.parametrize(
    ("code", "interval", "count", "trial_days", "problems"),
    [
        ("cn", "month", 1, 7, []),
        ("cn", "month", 1, 5, ["its free trial of 5 days ends too soon for notice"]),
        ("cn", "day", 6, 0, []),  # 6 days: the reminder 24 hours after the last renewal
        ("cn", "day", 5, 0, ["renewals come every 5 days, too soon for notice"]),
        ("fr", "month", 1, 0, ["renewals come every 28 days, too soon for notice"]),
        ("fr", "year", 1, 0, []),
        ("us-ca", "year", 1, 10, []),
        ("de", "day", 1, 1, []),
    ],
)
def test_offers_that_can_never_renew_lawfully(
    code: str, interval: str, count: int, trial_days: int, problems: list[str]
) -> None:
    found = never_compliant(get_pack(code), interval, count, trial_days, margin_hours=24)
    assert len(found) == len(problems)
    for text, problem in zip(found, problems, strict=True):
        assert text.startswith(problem)


def test_a_pack_deferring_a_short_first_term_accepts_a_short_trial() -> None:
    with renewals(POLICIES={"cn-x": {"extends": "cn", "short_first_term": "defer"}}):
        assert never_compliant(get_pack("cn-x"), "month", 1, 3, margin_hours=24) == []


@pytest.mark.django_db
def test_w002_names_the_offers_in_use_that_can_never_renew_lawfully() -> None:
    from renewals.checks import check_offers

    from .factories import make_subscription, make_terms

    three_day_trial = make_terms(trial_days=3)  # unused: the default pack, cn
    daily = make_terms(interval="day", service_name="Daily")
    make_subscription(terms=daily, policy="de")  # no reminder under de
    monthly_fr = make_terms(currency="EUR", service_name="Mensuel")
    make_subscription(terms=monthly_fr, policy="fr", time_zone="Europe/Paris")
    ended = make_terms(interval="day", service_name="Ended")
    make_subscription(terms=ended, status="canceled", auto_renew=False)

    assert check_offers(databases=None) == []  # a database check: only when asked for
    messages = check_offers(databases=["default"])

    assert [(m.id, m.obj) for m in messages] == [
        ("renewals.W002", three_day_trial),
        ("renewals.W002", monthly_fr),
    ]
    assert "under rule pack 'cn': its free trial of 3 days" in messages[0].msg
    assert "under rule pack 'fr': renewals come every 28 days" in messages[1].msg
