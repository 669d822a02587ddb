"""Pre-approved SMS templates: the providers in mainland China send nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured

from ..exceptions import MessageError
from ..message_templates import registered
from ..messages import SMSMessage


class ApprovedTemplates:
    """OPTION ``template_codes`` maps a message template's key to the provider's template code.

    ``dispatch.send`` puts the code and the template's provider parameters on each message.
    """

    provider: ClassVar[str]
    alias: str
    options: dict[str, Any]

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)  # type: ignore[call-arg]
        codes = options.get("template_codes", {})
        if not isinstance(codes, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in codes.items()
        ):
            raise ImproperlyConfigured(
                f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS']['template_codes'] must map "
                "template keys to the provider's template codes (non-empty strings)."
            )

    def approved(self, message: SMSMessage) -> tuple[str, str]:
        """The message's template code and signature; :class:`MessageError` if either is
        missing (these providers send nothing else)."""
        sign_name = message.sign_name or self.options.get("sign_name")
        if not message.template_code or not sign_name:
            raise MessageError(
                f"{self.provider.capitalize()} sends approved templates only: set OPTIONS "
                "template_codes and sign_name."
            )
        return message.template_code, sign_name

    def template_code_for(self, template_key: str) -> str | None:
        code: str | None = self.options.get("template_codes", {}).get(template_key)
        return code

    def check(self) -> list[CheckMessage]:
        messages: list[CheckMessage] = super().check()  # type: ignore[misc]
        codes = self.options.get("template_codes", {})
        messages += [
            CheckWarning(
                f"NOTIFICATIONS['BACKENDS'][{self.alias!r}] has no template code for the "
                f"message template {template.key!r}; such messages will fail.",
                hint="Submit the template to the provider for approval and add its code to "
                "OPTIONS['template_codes'].",
                id="notifications.W102",
            )
            for template in registered()
            if self.provider in template.providers and template.key not in codes
        ]
        return messages
