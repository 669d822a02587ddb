"""Create the demo's users, offers and schedules; running it again changes nothing."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from example_project.models import Profile
from example_project.plans import PLANS, current_terms
from notifications.models import Device

#: username (also the password), is a superuser
USERS = (("demo", False), ("admin", True))
#: Where the demo user is reached: a fictional number and the push token of a pretend phone.
DEMO_PHONE = "+86 138 0013 8000"
DEMO_TIME_ZONE = "Asia/Shanghai"
DEMO_DEVICE_TOKEN = "demo-device-token"


class Command(BaseCommand):
    help = (
        "Create the demo user demo/demo (with a phone number and a push device), the superuser "
        "admin/admin, the offered terms and the django-q2 schedules."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        users = {}
        for username, superuser in USERS:
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "email": f"{username}@example.com",
                    "is_staff": superuser,
                    "is_superuser": superuser,
                },
            )
            if created:
                user.set_password(username)
                user.save(update_fields=["password"])
                self.stdout.write(f"Created user {username!r} (password {username!r}).")
            users[username] = user
        Profile.objects.get_or_create(
            user=users["demo"],
            defaults={"phone_number": DEMO_PHONE, "time_zone": DEMO_TIME_ZONE},
        )
        Device.objects.get_or_create(
            token=DEMO_DEVICE_TOKEN,
            defaults={"user": users["demo"], "platform": Device.Platform.ANDROID, "provider": ""},
        )
        for plan in PLANS:
            current_terms(plan)
        call_command("renewals_schedules", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(PLANS)} plans on offer."))
