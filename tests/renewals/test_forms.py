import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import pytest
from django import forms
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.test import RequestFactory
from freezegun import freeze_time
from pytest_django import Settings

from renewals.forms import (
    DISCLOSURE_SALT,
    ConsentCheckbox,
    ConsentField,
    ConsentForm,
    Disclosure,
)

from .factories import make_terms

pytestmark = pytest.mark.django_db

FIRST_RENEWAL = dt.datetime(2025, 2, 28, 17, 0, tzinfo=dt.UTC)  # 1 March, 01:00 in Shanghai


def consent_form(data: Mapping[str, Any] | None = None, **kwargs: Any) -> ConsentForm:
    kwargs.setdefault("terms", make_terms())
    kwargs.setdefault("first_renewal_at", FIRST_RENEWAL)
    kwargs.setdefault("time_zone", "Asia/Shanghai")
    return ConsentForm(data, **kwargs)


def posted(form: ConsentForm, **overrides: Any) -> dict[str, Any]:
    """The data a browser posts from ``form`` as rendered, with the box ticked."""
    return {
        "auto_renew_consent": "yes",
        "disclosure_token": form["disclosure_token"].initial,
        "request_key": form["request_key"].initial,
        **overrides,
    }


def submit(form: ConsentForm, **overrides: Any) -> ConsentForm:
    """``form`` as rendered, then posted back to a new form for the same terms."""
    return consent_form(posted(form, **overrides), terms=form.terms)


def checkbox_tags(rendered: object) -> list[str]:
    return re.findall(r"<input[^>]*>", str(rendered))


class TestConsentCheckbox:
    def test_renders_the_one_value_it_accepts_and_no_tick(self) -> None:
        (tag,) = checkbox_tags(ConsentField().widget.render("consent", None))
        assert 'type="checkbox"' in tag
        assert 'value="yes"' in tag
        assert "checked" not in tag

    @pytest.mark.parametrize(
        "value",
        ["0", "off", "no", "false", "null", "unchecked", "", "true", "1", "on", "YES", " yes"],
    )
    def test_any_other_posted_value_is_not_ticked(self, value: str) -> None:
        form = submit(consent_form(), auto_renew_consent=value)
        assert not form.is_valid()
        assert form.errors["auto_renew_consent"] == ["Tick the box to agree to automatic renewal."]

    def test_the_box_left_out_is_not_ticked(self) -> None:
        data = posted(consent_form())
        del data["auto_renew_consent"]
        assert "auto_renew_consent" in consent_form(data).errors

    @pytest.mark.parametrize("values", [["no", "yes"], ["yes", "yes"], ["yes", "no"]])
    def test_more_than_one_posted_value_is_not_ticked(self, values: list[str]) -> None:
        form = consent_form()
        data = QueryDict(mutable=True)
        for name, value in posted(form).items():
            data[name] = value
        data.setlist("auto_renew_consent", values)
        assert "auto_renew_consent" in consent_form(data, terms=form.terms).errors

    def test_exactly_the_rendered_value_is_ticked(self) -> None:
        form = submit(consent_form())
        assert form.is_valid(), form.errors
        assert form.cleaned_data["auto_renew_consent"] is True


class TickedWhenRendered(ConsentCheckbox):
    """A widget with no flag that says so, whose rendering comes out ticked."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["checked"] = True
        return context


class RendersNoValue(ConsentCheckbox):
    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        del context["widget"]["attrs"]["value"]
        return context


class TestConsentField:
    def test_required_and_unticked_by_default(self) -> None:
        field = ConsentField()
        assert field.required
        assert not field.initial

    @pytest.mark.parametrize("initial", [True, "yes", lambda: True])
    def test_truthy_initial_is_refused(self, initial: object) -> None:
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            ConsentField(initial=initial)

    @pytest.mark.parametrize(
        "widget",
        [
            ConsentCheckbox(attrs={"checked": True}),
            ConsentCheckbox(check_test=lambda value: True),
            TickedWhenRendered(),
        ],
        ids=["checked-attribute", "check-test", "rendering"],
    )
    def test_a_widget_that_renders_ticked_is_refused(self, widget: forms.Widget) -> None:
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            ConsentField(widget=widget)

    def test_a_widget_that_renders_another_value_is_refused(self) -> None:
        with pytest.raises(ImproperlyConfigured, match='value="yes"'):
            ConsentField(widget=RendersNoValue())

    def test_a_widget_that_renders_no_checkbox_is_refused(self) -> None:
        class HiddenYes(ConsentCheckbox):
            input_type = "hidden"

        with pytest.raises(ImproperlyConfigured, match="one checkbox"):
            ConsentField(widget=HiddenYes())

    @pytest.mark.parametrize(
        "widget", [forms.CheckboxInput, forms.HiddenInput, forms.TextInput, forms.Select]
    )
    def test_any_other_widget_is_refused(self, widget: type[forms.Widget]) -> None:
        with pytest.raises(ImproperlyConfigured, match="ConsentCheckbox"):
            ConsentField(widget=widget)

    def test_form_initial_true_is_refused_on_a_plain_form(self) -> None:
        class PlainForm(forms.Form):
            agree = ConsentField()

        form = PlainForm(initial={"agree": True})
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            form["agree"]

    def test_a_check_test_that_ticks_the_forms_initial_is_refused_when_the_form_renders(
        self,
    ) -> None:
        class PlainForm(forms.Form):
            agree = ConsentField(widget=ConsentCheckbox(check_test=lambda value: value == "x"))

        assert "checked" not in str(PlainForm()["agree"])
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            PlainForm(initial={"agree": "x"})["agree"]

    def test_a_posted_tick_is_never_rendered_back(self) -> None:
        form = submit(consent_form(), disclosure_token="forged")
        assert not form.is_valid()
        (tag,) = checkbox_tags(form["auto_renew_consent"])
        assert "checked" not in tag


class TestConsentForm:
    def test_form_initial_true_is_refused_when_built(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            consent_form(initial={"auto_renew_consent": True})

    def test_fields(self) -> None:
        form = consent_form()
        field = form.fields["auto_renew_consent"]
        assert isinstance(field, ConsentField)
        assert field.label == form.terms.renewal_wording
        assert form.consent_field.name == "auto_renew_consent"
        assert form["disclosure_token"].is_hidden
        assert form["request_key"].is_hidden
        assert "terms_hash" not in form.fields

    def test_unticked_submission_is_invalid(self) -> None:
        form = submit(consent_form(), auto_renew_consent="")
        assert not form.is_valid()
        assert "auto_renew_consent" in form.errors

    def test_disclosure(self) -> None:
        terms = make_terms(trial_days=7)
        form = consent_form(terms=terms)
        html = str(form.consent_disclosure)
        assert "25.00 CNY" in html
        assert "per month" in html
        assert "Free trial: 7 days." in html
        assert "No free trial" not in html
        assert "First renewal: March 1, 2025 (Asia/Shanghai time)." in html
        assert f"How to cancel: {terms.cancellation_method}" in html
        assert "Free trial" not in consent_form().disclosure_text()

    @freeze_time("2027-03-01 02:00:00+00:00")
    def test_without_the_trial_the_disclosure_says_so_and_renews_a_term_later(self) -> None:
        terms = make_terms(trial_days=7)
        with_trial = consent_form(terms=terms, first_renewal_at=None)
        without = consent_form(terms=terms, first_renewal_at=None, trial=False)
        assert with_trial.disclosure.first_renewal_at == dt.datetime(2027, 3, 8, 2, tzinfo=dt.UTC)
        assert without.disclosure.first_renewal_at == dt.datetime(2027, 4, 1, 2, tzinfo=dt.UTC)
        text = without.disclosure_text()
        assert "No free trial: you have already had the free trial of this service." in text
        assert "Free trial: 7 days." not in text
        assert "First renewal: April 1, 2027" in text

    def test_terms_without_a_trial_do_not_mention_one(self) -> None:
        form = consent_form(trial=False)
        assert form.disclosure.trial is False
        assert "trial" not in form.disclosure_text()

    def test_disclosure_escapes_terms_and_text_unescapes(self) -> None:
        form = consent_form(terms=make_terms(cancellation_method="Tap <Cancel> & confirm."))
        assert "Tap &lt;Cancel&gt; &amp; confirm." in form.consent_disclosure
        text = form.disclosure_text()
        assert "How to cancel: Tap <Cancel> & confirm." in text.splitlines()
        assert "<li>" not in text

    def test_each_rendered_form_has_its_own_hidden_checkout_key(self) -> None:
        first, second = consent_form(), consent_form()
        assert first["request_key"].initial != second["request_key"].initial
        bound = submit(first)
        assert bound.is_valid()
        assert bound.request_key == first["request_key"].initial
        assert not submit(first, request_key="x; DROP").is_valid()

    def test_disclosure_text_starts_with_the_renewal_wording_the_box_was_labelled_with(
        self,
    ) -> None:
        form = consent_form()
        assert form.disclosure_text().splitlines()[0] == form.terms.renewal_wording

    def test_default_first_renewal_is_one_term_from_now(self) -> None:
        form = consent_form(first_renewal_at=None, time_zone="UTC")
        ahead = form.disclosure.first_renewal_at - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=28) <= ahead <= dt.timedelta(days=31)

    def test_naive_first_renewal_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            consent_form(first_renewal_at=dt.datetime(2025, 3, 1))


class TestSignedDisclosure:
    """The disclosure kept is the one signed into the page the user saw."""

    def test_the_token_carries_what_the_page_showed(self) -> None:
        form = consent_form(trial=False)
        agreed = submit(form).agreed_disclosure
        assert agreed == form.disclosure
        assert agreed.terms == form.terms
        assert agreed.time_zone == "Asia/Shanghai"
        assert agreed.first_renewal_at == FIRST_RENEWAL

    @freeze_time("2027-03-01 15:59:50+00:00")  # 23:59:50 in Shanghai
    def test_a_page_shown_before_midnight_and_posted_after_keeps_the_first_days_dates(self) -> None:
        terms = make_terms()
        shown = consent_form(terms=terms, first_renewal_at=None)
        with freeze_time("2027-03-01 16:00:10+00:00"):  # 00:00:10 on 2 March in Shanghai
            form = consent_form(posted(shown), terms=terms, first_renewal_at=None)
            assert form.is_valid(), form.errors
            evidence = form.consent_evidence(RequestFactory().post("/"))
        assert "First renewal: April 1, 2027 (Asia/Shanghai time)." in evidence.disclosure_text
        assert form.agreed_disclosure.shown_at == dt.datetime(2027, 3, 1, 15, 59, 50, tzinfo=dt.UTC)
        # The same form rendered anew would have said the next day.
        assert "First renewal: April 2, 2027" in form.disclosure_text()

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "forged",
            signing.Signer(salt="another purpose").sign_object({"terms": "x"}),
            signing.Signer(salt=DISCLOSURE_SALT).sign_object({"terms": "no other values"}),
        ],
        ids=["missing", "forged", "other-salt", "malformed"],
    )
    def test_a_token_that_does_not_verify_is_a_form_error(self, token: str) -> None:
        form = submit(consent_form(), disclosure_token=token)
        assert not form.is_valid()
        assert form.non_field_errors().as_data()[0].code == "tampered"

    def test_an_edited_token_is_a_form_error(self) -> None:
        form = consent_form()
        token = form["disclosure_token"].initial
        signature = token.rsplit(":", 1)[1]
        edited = signing.Signer(salt=DISCLOSURE_SALT).unsign_object(token)
        edited["renews"] = "2099-01-01T00:00:00+00:00"
        forged = signing.Signer(salt=DISCLOSURE_SALT).sign_object(edited).rsplit(":", 1)[0]
        bound = submit(form, disclosure_token=f"{forged}:{signature}")
        assert bound.non_field_errors().as_data()[0].code == "tampered"

    def test_a_token_for_other_terms_is_a_form_error(self) -> None:
        old = consent_form(terms=make_terms(amount="20.00"))
        form = consent_form(posted(old), terms=make_terms())
        assert not form.is_valid()
        assert form.non_field_errors().as_data()[0].code == "terms_changed"
        assert "The terms changed after this page was shown." in form.non_field_errors()[0]

    @pytest.mark.parametrize(("after", "valid"), [(60, True), (61, False)])
    def test_a_token_older_than_the_maximum_age_is_a_form_error(
        self, settings: Settings, after: int, valid: bool
    ) -> None:
        settings.RENEWALS = {**settings.RENEWALS, "CONSENT_FORM_MAX_AGE": 60}
        with freeze_time("2027-03-01 02:00:00+00:00") as clock:
            shown = consent_form()
            clock.tick(after)
            form = submit(shown)
            assert form.is_valid() is valid
        if not valid:
            assert form.non_field_errors().as_data()[0].code == "expired"

    def test_the_default_maximum_age_is_a_day(self) -> None:
        with freeze_time("2027-03-01 02:00:00+00:00") as clock:
            shown = consent_form()
            clock.tick(dt.timedelta(days=1))
            assert submit(shown).is_valid()
            clock.tick(1)
            assert not submit(shown).is_valid()

    def test_a_form_with_an_error_renders_a_fresh_token_for_what_it_shows(self) -> None:
        with freeze_time("2027-03-01 02:00:00+00:00") as clock:
            shown = consent_form(first_renewal_at=None)
            clock.tick(dt.timedelta(days=2))
            form = submit(shown)
            assert not form.is_valid()
        rendered = str(form["disclosure_token"])
        assert shown["disclosure_token"].initial not in rendered
        assert form["disclosure_token"].initial in rendered
        assert Disclosure.unsign(form["disclosure_token"].initial, form.terms) == form.disclosure

    def test_agreed_disclosure_needs_a_valid_form(self) -> None:
        with pytest.raises(ValueError, match="valid"):
            _ = consent_form().agreed_disclosure


class TestConsentEvidence:
    def request(self) -> HttpRequest:
        request = RequestFactory().post(
            "/subscribe/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="TestBrowser/1.0"
        )
        request.LANGUAGE_CODE = "zh-hans"
        return request

    def test_evidence_from_form_and_request(self) -> None:
        form = submit(consent_form())
        evidence = form.consent_evidence(self.request(), form_id="signup")
        assert evidence.affirmative is True
        assert evidence.control_initially_unticked is True
        assert evidence.terms_hash == form.terms.content_hash
        assert evidence.channel == "web"
        assert evidence.form_id == "signup"
        assert evidence.ip_address == "203.0.113.7"
        assert evidence.user_agent == "TestBrowser/1.0"
        assert evidence.locale == "zh-hans"
        assert evidence.bundled_with == ()
        assert evidence.disclosure_text == form.disclosure_text(form.agreed_disclosure)

    def test_default_form_id_names_the_form_class(self) -> None:
        form = submit(consent_form())
        evidence = form.consent_evidence(self.request(), channel="app")
        assert evidence.form_id == "renewals.forms.ConsentForm"
        assert evidence.channel == "app"

    def test_invalid_form_has_no_evidence(self) -> None:
        with pytest.raises(ValueError, match="valid"):
            consent_form({}).consent_evidence(self.request())


def test_the_consent_fields_label_the_box_with_the_renewal_wording_alone() -> None:
    form = consent_form()
    html = render_to_string("renewals/consent_fields.html", {"form": form})
    wording = form.terms.renewal_wording
    assert f'<label for="id_auto_renew_consent">{wording}</label>' in html  # no ":" added
