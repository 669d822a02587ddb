"""Signals the renewals services send, for apps that act on their own side."""

from django.dispatch import Signal

#: Auto-renewal switched on or off; sent once the change is committed. Arguments:
#: ``subscription``, ``enabled``, ``actor``, ``via``.
auto_renewal_changed = Signal()

#: The renewal gate refused a charge; sent once the decision is committed. Arguments:
#: ``subscription``, ``renewal_at``, ``decision``.
renewal_held = Signal()

#: A notice the rules require was not given in its window (or the user cannot be reached on
#: any channel): an operator should look. Arguments: ``notice``, ``reason``.
notice_missed = Signal()
