"""A task for the smoke test: proof that the cluster ran it."""

from django.contrib.auth.models import Group


def write_row(name: str) -> None:
    """Create the auth ``Group`` called ``name``."""
    Group.objects.create(name=name)
