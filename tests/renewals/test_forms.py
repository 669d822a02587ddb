import datetime as dt

import pytest
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from renewals.forms import ConsentField, ConsentForm

from .factories import make_terms

pytestmark = pytest.mark.django_db

FIRST_RENEWAL = dt.datetime(2025, 2, 28, 17, 0, tzinfo=dt.UTC)  # 1 March, 01:00 in Shanghai


def consent_form(data=None, **kwargs):
    kwargs.setdefault("terms", make_terms())
    kwargs.setdefault("first_renewal_at", FIRST_RENEWAL)
    kwargs.setdefault("time_zone", "Asia/Shanghai")
    return ConsentForm(data, **kwargs)


def posted(form, **overrides):
    return {"auto_renew_consent": "on", "terms_hash": form.terms.content_hash, **overrides}


class TestConsentField:
    def test_required_and_unticked_by_default(self):
        field = ConsentField()
        assert field.required
        assert not field.initial
        assert "checked" not in field.widget.render("consent", None)

    @pytest.mark.parametrize("initial", [True, "yes", lambda: True])
    def test_truthy_initial_is_refused(self, initial):
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            ConsentField(initial=initial)

    def test_pre_checked_widget_is_refused(self):
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            ConsentField(widget=forms.CheckboxInput(attrs={"checked": True}))

    @pytest.mark.parametrize("widget", [forms.HiddenInput, forms.TextInput, forms.Select])
    def test_non_checkbox_widget_is_refused(self, widget):
        with pytest.raises(ImproperlyConfigured, match="CheckboxInput"):
            ConsentField(widget=widget)

    def test_form_initial_true_is_refused_on_a_plain_form(self):
        class PlainForm(forms.Form):
            agree = ConsentField()

        form = PlainForm(initial={"agree": True})
        with pytest.raises(ImproperlyConfigured):
            form["agree"]


class TestConsentForm:
    def test_form_initial_true_is_refused_when_built(self):
        with pytest.raises(ImproperlyConfigured, match="unticked"):
            consent_form(initial={"auto_renew_consent": True})

    def test_fields(self):
        form = consent_form()
        field = form.fields["auto_renew_consent"]
        assert isinstance(field, ConsentField)
        assert field.label == form.terms.renewal_wording
        assert form["terms_hash"].initial == form.terms.content_hash
        assert form["terms_hash"].is_hidden

    def test_unticked_submission_is_invalid(self):
        form = consent_form()
        form = consent_form(posted(form, auto_renew_consent=""), terms=form.terms)
        assert not form.is_valid()
        assert "auto_renew_consent" in form.errors

    def test_ticked_submission_is_valid(self):
        form = consent_form()
        form = consent_form(posted(form), terms=form.terms)
        assert form.is_valid(), form.errors
        assert form.cleaned_data["auto_renew_consent"] is True

    def test_disclosure(self):
        terms = make_terms(trial_days=7)
        form = consent_form(terms=terms)
        html = str(form.consent_disclosure)
        assert "25.00 CNY" in html
        assert "per month" in html
        assert "Free trial: 7 days." in html
        assert "First renewal: March 1, 2025 (Asia/Shanghai time)." in html
        assert f"How to cancel: {terms.cancellation_method}" in html
        assert "Free trial" not in consent_form().disclosure_text()

    def test_disclosure_escapes_terms_and_text_unescapes(self):
        form = consent_form(terms=make_terms(cancellation_method="Tap <Cancel> & confirm."))
        assert "Tap &lt;Cancel&gt; &amp; confirm." in form.consent_disclosure
        text = form.disclosure_text()
        assert "How to cancel: Tap <Cancel> & confirm." in text.splitlines()
        assert "<li>" not in text

    def test_each_rendered_form_has_its_own_hidden_checkout_key(self):
        first, second = consent_form(), consent_form()
        assert first["request_key"].is_hidden
        assert first["request_key"].initial != second["request_key"].initial
        bound = consent_form(posted(first, request_key=first["request_key"].initial))
        assert bound.is_valid()
        assert bound.request_key == first["request_key"].initial
        assert not consent_form(posted(first, request_key="x; DROP")).is_valid()

    def test_disclosure_text_starts_with_the_renewal_wording_the_box_was_labelled_with(self):
        form = consent_form()
        assert form.disclosure_text().splitlines()[0] == form.terms.renewal_wording

    def test_default_first_renewal_is_one_term_from_now(self):
        form = consent_form(first_renewal_at=None, time_zone="UTC")
        assert dt.timedelta(days=28) <= form.first_renewal_at - dt.datetime.now(dt.UTC)
        assert form.first_renewal_at - dt.datetime.now(dt.UTC) <= dt.timedelta(days=31)

    def test_naive_first_renewal_is_refused(self):
        with pytest.raises(ValueError, match="aware"):
            consent_form(first_renewal_at=dt.datetime(2025, 3, 1))


class TestConsentEvidence:
    def request(self):
        request = RequestFactory().post(
            "/subscribe/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="TestBrowser/1.0"
        )
        request.LANGUAGE_CODE = "zh-hans"
        return request

    def test_evidence_from_form_and_request(self):
        form = consent_form()
        form = consent_form(posted(form), terms=form.terms)
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
        assert evidence.disclosure_text == form.disclosure_text()

    def test_default_form_id_names_the_form_class(self):
        form = consent_form()
        form = consent_form(posted(form), terms=form.terms)
        evidence = form.consent_evidence(self.request(), channel="app")
        assert evidence.form_id == "renewals.forms.ConsentForm"
        assert evidence.channel == "app"

    def test_stale_posted_hash_is_kept(self):
        form = consent_form()
        form = consent_form(posted(form, terms_hash="0" * 64), terms=form.terms)
        assert form.is_valid()
        assert form.consent_evidence(self.request()).terms_hash == "0" * 64

    def test_invalid_form_has_no_evidence(self):
        with pytest.raises(ValueError, match="valid"):
            consent_form({}).consent_evidence(self.request())
