"""What the demo knows about its users beyond ``auth.User``: where to reach them."""

from django.conf import settings
from django.db import models

from renewals.models.subscription import validate_time_zone


class Profile(models.Model):
    """A user's phone number and time zone, read by :mod:`example_project.recipients`."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    phone_number = models.CharField(max_length=32, blank=True)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])

    def __str__(self) -> str:
        return f"Profile of {self.user}"
