"""Types the tests annotate with."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

#: What a request of ``django.test.Client`` returns: a response with the request's
#: ``context``, ``templates`` and ``json()`` (django-stubs names it only in its stubs).
ClientResponse: TypeAlias = "_MonkeyPatchedWSGIResponse"
