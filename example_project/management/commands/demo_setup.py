"""Create the demo's users and offers; running it again changes nothing."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from example_project.plans import PLANS, current_terms

#: username (also the password), is a superuser
USERS = (("demo", False), ("admin", True))


class Command(BaseCommand):
    help = "Create the demo user demo/demo, the superuser admin/admin and the offered terms."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
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
        for plan in PLANS:
            current_terms(plan)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(PLANS)} plans on offer."))
