"""The renewals services: views, tasks, webhooks and commands call only these."""

from .audit import AuditReport, create_checkpoint, record_event, verify_audit
from .cancellation import (
    CancellationResult,
    cancel_auto_renewal,
    resume_auto_renewal,
    sync_gateway,
    sync_pending_gateways,
)
from .confirmations import send_confirmation, send_pending_confirmations
from .consent import ConsentEvidence, record_consent, subscribe, validate_consent
from .gate import GateDecision, renewal_gate
from .renewing import RenewalRun, run_due_renewals
from .scheduling import choose_send_time, plan_notices, renewal_context

__all__ = [
    "AuditReport",
    "CancellationResult",
    "ConsentEvidence",
    "GateDecision",
    "RenewalRun",
    "cancel_auto_renewal",
    "choose_send_time",
    "create_checkpoint",
    "plan_notices",
    "record_consent",
    "record_event",
    "renewal_context",
    "renewal_gate",
    "resume_auto_renewal",
    "run_due_renewals",
    "send_confirmation",
    "send_pending_confirmations",
    "subscribe",
    "sync_gateway",
    "sync_pending_gateways",
    "validate_consent",
    "verify_audit",
]
