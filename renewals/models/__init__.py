"""The renewals models, one module per concept."""

from .audit import AuditChainCount, AuditChainHead, AuditCheckpoint, AuditEvent
from .consent import Consent, ConsentChannel, RevokedVia
from .declaration import ContractDeclaration, DeclarationKind, DeclarationStatus
from .notice import PENDING_NOTICE_STATUSES, NoticeStatus, RenewalNotice
from .stripe_event import EventOutcome, StripeEvent
from .subscription import ENDED_STATUSES, LIVE_STATUSES, TRANSITIONS, Status, Subscription
from .terms import Interval, RenewalTerms

__all__ = [
    "ENDED_STATUSES",
    "LIVE_STATUSES",
    "PENDING_NOTICE_STATUSES",
    "TRANSITIONS",
    "AuditChainCount",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "Consent",
    "ConsentChannel",
    "ContractDeclaration",
    "DeclarationKind",
    "DeclarationStatus",
    "EventOutcome",
    "Interval",
    "NoticeStatus",
    "RenewalNotice",
    "RenewalTerms",
    "RevokedVia",
    "Status",
    "StripeEvent",
    "Subscription",
]
