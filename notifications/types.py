"""The type of the project's user, for annotations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.base_user import AbstractBaseUser

if TYPE_CHECKING:
    from django.contrib.auth.models import _User as User
else:
    #: The project's user model (``settings.AUTH_USER_MODEL``). django-stubs' mypy plugin reads
    #: it as that model, so ``user.notification_devices`` and ``Device(user=user)`` type-check;
    #: at run time, and to other type checkers, it is ``AbstractBaseUser``.
    User = AbstractBaseUser

__all__ = ["User"]
