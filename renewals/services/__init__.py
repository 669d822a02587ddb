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
from .consent import (
    ConsentEvidence,
    ensure_may_act,
    record_consent,
    subscribe,
    trial_available,
    validate_consent,
)
from .declarations import Statement, apply_scheduled_cancellations, declare
from .gate import GateDecision, renewal_gate
from .renewing import RenewalRun, run_due_renewals
from .scheduling import choose_send_time, plan_notices, renewal_context
from .withdrawal import can_withdraw, withdraw_from_contract, withdrawal_deadline

__all__ = [
    "AuditReport",
    "CancellationResult",
    "ConsentEvidence",
    "GateDecision",
    "RenewalRun",
    "Statement",
    "apply_scheduled_cancellations",
    "can_withdraw",
    "cancel_auto_renewal",
    "choose_send_time",
    "create_checkpoint",
    "declare",
    "ensure_may_act",
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
    "trial_available",
    "validate_consent",
    "verify_audit",
    "withdraw_from_contract",
    "withdrawal_deadline",
]
