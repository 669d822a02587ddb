"""The renewals services: views, tasks, webhooks and commands call only these."""

from .audit import CheckpointAnchor, create_checkpoint, record_event
from .audit_verification import AuditProblem, AuditReport, verify_audit
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
    new_price_awaits_consent,
    record_consent,
    subscribe,
    trial_available,
    validate_consent,
)
from .declarations import Statement, apply_scheduled_cancellations, declare
from .evidence import evidence_pack
from .gate import GateDecision, renewal_gate
from .new_terms import schedule_new_terms
from .renewing import RenewalRun, run_due_renewals
from .scheduling import choose_send_time, plan_notices, renewal_context
from .withdrawal import can_withdraw, withdraw_from_contract, withdrawal_deadline

__all__ = [
    "AuditProblem",
    "AuditReport",
    "CancellationResult",
    "CheckpointAnchor",
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
    "evidence_pack",
    "new_price_awaits_consent",
    "plan_notices",
    "record_consent",
    "record_event",
    "renewal_context",
    "renewal_gate",
    "resume_auto_renewal",
    "run_due_renewals",
    "schedule_new_terms",
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
