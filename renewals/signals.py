"""Signals the renewals services send, for apps that act on their own side."""

from django.dispatch import Signal

#: Auto-renewal switched on or off. Arguments: ``subscription``, ``enabled``, ``actor``, ``via``.
auto_renewal_changed = Signal()

#: The renewal gate refused a charge. Arguments: ``subscription``, ``renewal_at``, ``decision``.
renewal_held = Signal()
