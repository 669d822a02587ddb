"""The texts of the renewals message templates read as whole sentences in every locale."""

import pytest

from renewals import notice_messages

TEMPLATES = [
    notice_messages.reminder,
    notice_messages.cancelled,
    notice_messages.resumed,
    notice_messages.cancellation_received,
    notice_messages.withdrawn,
]
#: An English date and time as Django writes it: it ends in a full stop of its own.
WHEN = "Dec. 7, 2026, 10 a.m."


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda template: template.key)
def test_no_sentence_ends_right_after_a_date_or_time(template):
    # "... on {received_at}." would read "10 a.m.." in English.
    context = {
        name: WHEN if "date" in name or name.endswith("_at") else "X"
        for name in template.fields.model_fields
    }
    for locale in template.texts:
        text = template.render(context, locale).text
        for part in (text.sms, text.push_title, text.push_body):
            assert ".." not in part, (locale, part)
