"""Message templates: required fields, per-locale texts, provider template codes, SMS length.

An app registers its templates at start-up (``register(MessageTemplate(...))`` from its
``AppConfig.ready()``); :func:`notifications.dispatch.send` renders them per channel. Texts are
:meth:`str.format` strings over the validated fields; an email's HTML is its text in the
Django template ``notifications/email/message.html``, which a project may override.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
from django.template.loader import render_to_string
from django.utils import translation

from .conf import notifications_settings
from .exceptions import MessageError

# GSM 03.38: the basic character set, and the extension set whose characters take two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def _count_parts(sizes: list[int], single: int, multi: int) -> int:
    if sum(sizes) <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:  # a two-unit character is never split between parts
        if used + size > multi:
            parts, used = parts + 1, 0
        used += size
    return parts


def sms_segments(text: str) -> int:
    """How many SMS parts ``text`` takes.

    GSM-7 text: 160 septets in one part, 153 per part when split; extension characters
    (``^{}\\[~]|€``) take two. Anything else is UCS-2: 70 UTF-16 code units in one part, 67 per
    part; characters outside the BMP (emoji) take two.
    """
    characters = set(text)
    if characters <= GSM7_BASIC | GSM7_EXTENSION:
        if len(text) + sum(text.count(c) for c in characters & GSM7_EXTENSION) <= 160:
            return 1  # the common case, without a size per character
        return _count_parts([2 if c in GSM7_EXTENSION else 1 for c in text], 160, 153)
    if len(text) <= 70 and max(characters) <= "\uffff":
        return 1
    return _count_parts([2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67)


def check_sms_length(text: str) -> None:
    """Raise :class:`MessageError` if ``text`` takes more than ``SMS_MAX_SEGMENTS`` parts."""
    limit = notifications_settings.SMS_MAX_SEGMENTS
    segments = sms_segments(text)
    if segments > limit:
        raise MessageError(
            f"The SMS takes {segments} segments, more than NOTIFICATIONS['SMS_MAX_SEGMENTS'] "
            f"= {limit}: {text[:40]!r}…"
        )


#: The Django template an email's HTML alternative is rendered with.
EMAIL_HTML_TEMPLATE = "notifications/email/message.html"


@dataclass(frozen=True)
class LocalizedText:
    """The texts of one template in one locale.

    An email's subject and text, left empty, are ``push_title`` and ``sms``; a URL in
    ``email_body`` becomes a link in the HTML where whitespace surrounds it.
    """

    sms: str
    push_title: str
    push_body: str
    email_subject: str = ""
    email_body: str = ""


@dataclass(frozen=True)
class ProviderTemplate:
    """How a template-only SMS provider (Aliyun, Tencent) receives the message.

    ``params`` maps the provider's parameter names, in order, to template fields. The
    template code itself belongs to the provider account, so the backend alias configures it:
    dispatch passes the template key as ``SMSMessage.metadata["template_key"]``.
    """

    params: Mapping[str, str]


@dataclass(frozen=True)
class Rendered:
    """A template rendered for one recipient."""

    key: str
    locale: str
    fields: dict[str, str]
    text: LocalizedText


@dataclass(frozen=True)
class MessageTemplate:
    """A message an app can send: its key, required fields and texts.

    ``fields`` is a pydantic model; its fields are what the caller's context must provide.
    ``texts`` maps locales (``"zh-hans"``, ``"en"``) to texts; the first is the fallback.
    ``providers`` maps provider names (``BaseBackend.provider``, e.g. ``"aliyun"``) to their
    parameter mapping.
    """

    key: str
    fields: type[pydantic.BaseModel]
    texts: Mapping[str, LocalizedText]
    providers: Mapping[str, ProviderTemplate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.texts:
            raise ValueError(f"Template {self.key!r} has no texts.")
        names = set(self.fields.model_fields)
        for provider, mapping in self.providers.items():
            unknown = set(mapping.params.values()) - names
            if unknown:
                raise ValueError(
                    f"Template {self.key!r}: provider {provider!r} maps unknown fields "
                    f"{sorted(unknown)}."
                )

    def validate(self, context: Mapping[str, Any]) -> dict[str, str]:
        """The fields of ``context`` as strings; :class:`MessageError` names what is wrong."""
        try:
            model = self.fields.model_validate(dict(context))
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise MessageError(f"Template {self.key!r}: {problems}") from None
        return {name: str(value) for name, value in model.model_dump().items()}

    def locale_for(self, locale: str | None) -> str:
        """The best locale of this template for ``locale`` (``zh-CN`` finds ``zh-hans``)."""
        if locale:
            wanted = locale.lower().replace("_", "-")
            if wanted in self.texts:
                return wanted
            language = wanted.split("-")[0]
            for candidate in self.texts:
                if candidate.split("-")[0] == language:
                    return candidate
        return next(iter(self.texts))

    def render(self, context: Mapping[str, Any], locale: str | None) -> Rendered:
        """Validate ``context`` and render every text in the best locale."""
        fields = self.validate(context)
        chosen = self.locale_for(locale)
        source = self.texts[chosen]
        try:
            text = LocalizedText(
                sms=source.sms.format(**fields),
                push_title=source.push_title.format(**fields),
                push_body=source.push_body.format(**fields),
                # One line: a line break in a header would be refused (header injection).
                email_subject=" ".join(
                    (source.email_subject or source.push_title).format(**fields).split()
                ),
                email_body=(source.email_body or source.sms).format(**fields),
            )
        except (KeyError, IndexError) as exc:
            raise MessageError(
                f"Template {self.key!r} ({chosen}) uses unknown field {exc}."
            ) from None
        return Rendered(key=self.key, locale=chosen, fields=fields, text=text)

    def provider_params(self, provider: str, fields: Mapping[str, str]) -> dict[str, str]:
        """The parameters a template-only provider receives (empty if none is registered)."""
        mapping = self.providers.get(provider)
        return {} if mapping is None else {p: fields[f] for p, f in mapping.params.items()}


def render_email_html(rendered: Rendered) -> str:
    """The HTML alternative of ``rendered``'s email: :data:`EMAIL_HTML_TEMPLATE` with
    ``subject``, ``body`` (the text), ``fields`` and ``locale``, in that locale."""
    with translation.override(rendered.locale):
        return render_to_string(
            EMAIL_HTML_TEMPLATE,
            {
                "subject": rendered.text.email_subject,
                "body": rendered.text.email_body,
                "fields": rendered.fields,
                "locale": rendered.locale,
            },
        )


_registry: dict[str, MessageTemplate] = {}


def register(*templates: MessageTemplate) -> None:
    """Make templates available by key; registering a key again replaces it."""
    for template in templates:
        _registry[template.key] = template


def get_template(key: str) -> MessageTemplate:
    """The template registered under ``key``."""
    try:
        return _registry[key]
    except KeyError:
        raise MessageError(
            f"No message template {key!r} is registered; known: {sorted(_registry)}."
        ) from None


def registered() -> Iterable[MessageTemplate]:
    """Every registered template."""
    return _registry.values()


__all__ = [
    "LocalizedText",
    "MessageTemplate",
    "ProviderTemplate",
    "Rendered",
    "check_sms_length",
    "get_template",
    "register",
    "render_email_html",
    "sms_segments",
]
