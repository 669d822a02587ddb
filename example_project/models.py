"""What the demo knows about its users beyond ``auth.User``: where to reach them, and in
which language."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from renewals.models.subscription import validate_time_zone


class Profile(models.Model):
    """A user's phone number, time zone and language, read by
    :mod:`example_project.recipients`."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="profile",
        verbose_name=_("user"),
    )
    phone_number = models.CharField(_("phone number"), max_length=32, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, validators=[validate_time_zone])
    language = models.CharField(
        _("language of messages"),
        max_length=16,
        blank=True,
        help_text=_(
            "A language code, such as zh-hans: the one the user last subscribed in. Empty: "
            "the site's language."
        ),
    )

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return gettext("Profile of %(user)s") % {"user": self.user}
