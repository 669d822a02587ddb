"""Properties checked over generated input (hypothesis).

The consent form: whatever is posted, it is valid only with exactly the value its box renders
and the disclosure it signed itself, for these terms and not yet expired; it never renders
the box ticked, and never raises.

Notice windows and send times: for any rule (built-in or generated, counting elapsed or
calendar days), renewal, time zone (daylight-saving changes included) and planning time, the
window opens no later than it closes and closes no later than the renewal, within a day of
the rule's nominal lead; a notice planned in time goes out inside its window, at a daytime
hour unless none is left, leaving the retry margin whenever a daytime hour allows it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.http import QueryDict
from django.test import RequestFactory
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from renewals.conf import renewals_settings
from renewals.forms import ConsentForm
from renewals.models import NoticeStatus, RenewalTerms
from renewals.policies import builtin_packs
from renewals.policies.models import DayCount, NoticeRule
from renewals.services.scheduling import notice_fields

from .factories import make_terms

PROPERTIES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
DAY = dt.timedelta(days=1)

# --- the consent form -------------------------------------------------------------------------

CONSENT = "auto_renew_consent"
#: What a box may be posted with: the one value it renders, and near misses.
CONSENT_VALUES = st.one_of(
    st.sampled_from(["yes", "YES", "Yes", " yes", "yes ", "on", "1", "true", "y", ""]),
    st.text(max_size=8),
)
#: The disclosure tokens a post may carry; only the form's own is good.
TOKENS = ("shown", "other terms", "expired", "tampered", "other salt", "garbage")
REQUEST_KEY = re.compile(r"[0-9a-f]{32}")
UNTICKED = re.compile(r"<input(?![^>]*\bchecked\b)[^>]*\btype=\"checkbox\"[^>]*>")


@pytest.fixture
def terms(db: None) -> RenewalTerms:
    return make_terms()


def consent_form(terms: RenewalTerms, data: QueryDict | None = None) -> ConsentForm:
    return ConsentForm(data, terms=terms, time_zone="Asia/Shanghai")


def token(kind: str, form: ConsentForm, data: st.DataObject) -> str:
    """A disclosure token of ``kind`` (one of :data:`TOKENS`) for a post of ``form``."""
    shown = form.disclosure
    max_age = dt.timedelta(seconds=renewals_settings.CONSENT_FORM_MAX_AGE)
    if kind == "shown":
        return str(form["disclosure_token"].initial)
    if kind == "other terms":
        other = make_terms(amount="26.00")
        return dataclasses.replace(shown, terms=other).sign()
    if kind == "expired":
        return dataclasses.replace(shown, shown_at=shown.shown_at - max_age - DAY).sign()
    if kind == "tampered":
        good = shown.sign()  # its length varies with the signing time: draw independently of it
        at = data.draw(st.integers(0, 2**16)) % len(good)
        swap = data.draw(st.sampled_from("AQgw-_:.019"))
        return good[:at] + (swap if swap != good[at] else "Z") + good[at + 1 :]
    if kind == "other salt":
        return signing.Signer(salt="another.form").sign_object({"terms": shown.terms.content_hash})
    return data.draw(st.text(max_size=40))


def is_checked_box_rendered(html: str) -> bool:
    """Whether the rendered consent field shows a ticked box (or no unticked one)."""
    return UNTICKED.search(html) is None


@PROPERTIES
@given(data=st.data())
def test_whatever_is_posted_the_form_is_valid_only_with_the_box_and_its_own_disclosure(
    terms: RenewalTerms, data: st.DataObject
) -> None:
    shown = consent_form(terms)
    # Each field is as the browser posts it, as often as not: the rest differ in one field.
    consent = data.draw(
        st.one_of(st.just(["yes"]), st.lists(CONSENT_VALUES, max_size=3)), label="consent values"
    )
    kinds = data.draw(
        st.one_of(st.just(["shown"]), st.lists(st.sampled_from(TOKENS), max_size=2)),
        label="token kinds",
    )
    keys = data.draw(
        st.one_of(
            st.just([str(shown["request_key"].initial)]),
            st.lists(
                st.one_of(st.from_regex(REQUEST_KEY, fullmatch=True), st.text(max_size=34)),
                max_size=2,
            ),
        ),
        label="request keys",
    )
    others = data.draw(
        st.dictionaries(st.text(min_size=1, max_size=12), st.lists(st.text(max_size=12))),
        label="other fields",
    )
    post = QueryDict(mutable=True)
    for name, values in others.items():
        post.setlist(name, values)
    post.setlist(CONSENT, consent)
    post.setlist("disclosure_token", [token(kind, shown, data) for kind in kinds])
    post.setlist("request_key", keys)

    form = consent_form(terms, post)
    valid = form.is_valid()

    key = keys[-1].strip() if keys else ""
    assert valid == (
        consent == ["yes"]
        and kinds[-1:] == ["shown"]
        and (key == "" or REQUEST_KEY.fullmatch(key) is not None)
    )
    assert not is_checked_box_rendered(str(form[CONSENT]))
    if valid:
        evidence = form.consent_evidence(RequestFactory().post("/"))
        assert evidence.affirmative is True
        assert evidence.control_initially_unticked is True
        assert evidence.terms_hash == terms.content_hash


@PROPERTIES
@given(
    initial=st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.sampled_from(["yes"])
    )
)
def test_whatever_its_initial_value_the_box_is_never_shown_ticked(
    terms: RenewalTerms, initial: object
) -> None:
    try:
        form = ConsentForm(terms=terms, initial={CONSENT: initial})
    except ImproperlyConfigured:
        return  # refused: a box that would render ticked is never shown
    assert not is_checked_box_rendered(str(form[CONSENT]))


# --- notice windows and send times --------------------------------------------------------

BUILT_IN_RULES = [rule for pack in builtin_packs().values() for rule in pack.notices]
#: Zones with daylight-saving changes of every kind: an hour at night, at midnight (Santiago),
#: half an hour (Lord Howe), in the southern summer (Chatham), and none (Shanghai).
DST_ZONES = [
    "America/Los_Angeles",
    "Europe/Berlin",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Shanghai",
]
ZONES = st.one_of(st.sampled_from(DST_ZONES).map(ZoneInfo), st.timezones())


@st.composite
def notice_rules(draw: st.DrawFn) -> NoticeRule:
    """A built-in pack's rule, or one with any window and way of counting its days."""
    if draw(st.booleans()):
        return draw(st.sampled_from(BUILT_IN_RULES))
    latest = draw(st.integers(0, 60))
    return NoticeRule(
        id="generated",
        title="Generated",
        source="generated",
        earliest_days_before=draw(st.integers(latest, 90)),
        latest_days_before=latest,
        channels=("sms",),
        day_count=draw(st.sampled_from(get_args(DayCount))),
    )


def offset_change(zone: ZoneInfo, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
    """How far ``zone``'s UTC offset moves between the instants ``a`` and ``b``."""
    before, after = a.astimezone(zone).utcoffset(), b.astimezone(zone).utcoffset()
    assert before is not None
    assert after is not None
    return abs(after - before)


def daytime_hour_between(
    start: dt.datetime, end: dt.datetime, zone: ZoneInfo, hours: tuple[int, int]
) -> bool:
    """Whether a whole local hour in ``hours`` (start inclusive, end exclusive) falls in
    ``[start, end]``: every quarter hour of UTC is looked at, as offsets run in quarters."""
    quarter = dt.timedelta(minutes=15)
    instant = start.astimezone(dt.UTC).replace(second=0, microsecond=0)
    instant -= dt.timedelta(minutes=instant.minute % 15)
    while instant <= end:
        local = instant.astimezone(zone)
        if instant >= start and local.minute == 0 and hours[0] <= local.hour < hours[1]:
            return True
        instant += quarter
    return False


#: ``us-ca``: "at least 15 and not more than 45 days before" an annual renewal.
US_CA_ANNUAL = next(r for r in builtin_packs()["us-ca"].notices if r.id == "annual-term-renewal")


def in_los_angeles(local_renewal: dt.datetime, lead: dt.timedelta) -> example:
    """An example: ``us-ca``'s annual notice of a renewal at ``local_renewal`` in Los Angeles,
    planned ``lead`` before it, sent between 10:00 and 20:00 with a day for retries."""
    return example(
        rule=US_CA_ANNUAL,
        zone=ZoneInfo("America/Los_Angeles"),
        local_renewal=local_renewal,
        lead=lead,
        start_hour=10,
        hours_long=10,
        margin=24,
    )


@PROPERTIES
@given(
    rule=notice_rules(),
    zone=ZONES,
    local_renewal=st.datetimes(
        min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2040, 12, 31)
    ),
    lead=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=100)),
    start_hour=st.integers(5, 22),
    hours_long=st.integers(1, 19),
    margin=st.integers(0, 72),
)
# A window that opens on the day the clocks go forward (14 March 2027), for a renewal half an
# hour after midnight; one that spans the night they go back (7 November), for a renewal half
# an hour before midnight.
@in_los_angeles(dt.datetime(2027, 4, 28, 0, 30), lead=dt.timedelta(days=60))
@in_los_angeles(dt.datetime(2027, 12, 19, 23, 30), lead=dt.timedelta(days=46))
def test_the_window_is_ordered_and_a_notice_planned_in_time_goes_out_inside_it(
    rule: NoticeRule,
    zone: ZoneInfo,
    local_renewal: dt.datetime,
    lead: dt.timedelta,
    start_hour: int,
    hours_long: int,
    margin: int,
) -> None:
    renewal = local_renewal.replace(tzinfo=zone).astimezone(dt.UTC)  # as the database has it
    now = renewal - lead
    hours = (start_hour, min(start_hour + hours_long, 24))

    fields = notice_fields(
        rule,
        renewal,
        policy="any",
        time_zone=zone.key,
        now=now,
        send_hours=hours,
        retry_margin_hours=margin,
    )
    opens, closes = fields["window_opens_at"], fields["window_closes_at"]
    send_at = fields["send_at"]

    assert (opens, closes) == rule.window(renewal, zone)
    assert opens <= closes <= renewal
    earliest, latest = rule.earliest_days_before * DAY, rule.latest_days_before * DAY
    slack = offset_change(zone, opens, renewal)
    assert earliest - slack <= renewal - opens <= earliest + DAY + slack
    slack = offset_change(zone, closes, renewal)
    assert latest - DAY - slack <= renewal - closes <= latest + slack

    if now > closes:
        assert fields["status"] == NoticeStatus.MISSED
        return
    assert fields["status"] == NoticeStatus.PLANNED
    first_moment = max(opens, now)
    assert first_moment <= send_at <= closes
    local = send_at.astimezone(zone)
    on_a_daytime_hour = local.minute == local.second == local.microsecond == 0 and (
        hours[0] <= local.hour < hours[1]
    )
    assert send_at == first_moment or on_a_daytime_hour
    retry_room = closes - dt.timedelta(hours=margin)
    if daytime_hour_between(first_moment, retry_room, zone, hours):
        assert send_at <= retry_room
