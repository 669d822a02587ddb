"""Signals of the ``notifications`` app."""

from django.dispatch import Signal

#: Sent by :func:`notifications.status.record_status` on every status change, with
#: ``delivery``, ``old_status`` and ``new_status``.
delivery_updated = Signal()
