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

#: A consumer declared a contract's end (a statutory cancellation or a withdrawal), whether
#: or not it named a contract on record; sent once it is committed. Arguments:
#: ``declaration`` (a :class:`~renewals.models.ContractDeclaration`).
contract_declared = Signal()

#: A contract was withdrawn from inside its withdrawal period and has ended; sent once it is
#: committed. The package refunds nothing itself: a receiver refunds what was paid and ends the
#: processor's subscription at once. Arguments: ``subscription``, ``withdrawn_at``, ``actor``.
contract_withdrawn = Signal()

#: A checkpoint of the audit log was committed; keep its ``anchor`` (``"<sequence>:<hash>"``)
#: where the database's users cannot write (an append-only bucket, a ticket, a log service),
#: so that ``renewals_verify_audit --expect <anchor>`` can prove the log was not rewritten.
#: Also logged at INFO on the ``renewals.audit`` logger. Arguments: ``checkpoint``, ``anchor``.
audit_checkpoint_created = Signal()
