"""The medical mutual-aid domain, in one import: plans, cover, contributions, claims, the fund
ledger and the finance backstop. Pure: no I/O, nothing beyond pydantic and the standard library.

Each part lives in its own small module; this one only gathers their public names.
"""

from services.mutual_aid.backstop import (
    BackstopDecision,
    BackstopRequest,
    BackstopStatus,
    FollowUp,
    FollowUpPolicy,
    Grant,
    PayableClaim,
    decide_payouts,
    open_request_for,
)
from services.mutual_aid.benefits import (
    BenefitCalculation,
    BenefitStep,
    YearToDate,
    calculate_benefit,
)
from services.mutual_aid.claims import COMMITTED, Claim, ClaimState, ClaimStep, year_to_date
from services.mutual_aid.eligibility import ActivePeriod, EligibilityView, MemberStanding
from services.mutual_aid.enrolment import Contribution, Coverage, Enrolment
from services.mutual_aid.errors import (
    AdjustmentRefused,
    DuplicateEntry,
    FundOverdrawn,
    GrantRefused,
    InvalidTransition,
    PlanInvalid,
    PlanProblem,
)
from services.mutual_aid.intake import (
    ClaimIntake,
    Rejection,
    RejectionCode,
    Submitter,
    calculate_claim_benefit,
    check_claim,
    normalise_invoice,
)
from services.mutual_aid.ledger import Account, EntryKind, JournalEntry, Ledger, Line, balances
from services.mutual_aid.money import Fen, apply_ratio, format_yuan, yuan
from services.mutual_aid.plans import BenefitRules, Plan, PlanStatus, RatioBand, plan_in_force

__all__ = [
    "COMMITTED",
    "Account",
    "ActivePeriod",
    "AdjustmentRefused",
    "BackstopDecision",
    "BackstopRequest",
    "BackstopStatus",
    "BenefitCalculation",
    "BenefitRules",
    "BenefitStep",
    "Claim",
    "ClaimIntake",
    "ClaimState",
    "ClaimStep",
    "Contribution",
    "Coverage",
    "DuplicateEntry",
    "EligibilityView",
    "Enrolment",
    "EntryKind",
    "Fen",
    "FollowUp",
    "FollowUpPolicy",
    "FundOverdrawn",
    "Grant",
    "GrantRefused",
    "InvalidTransition",
    "JournalEntry",
    "Ledger",
    "Line",
    "MemberStanding",
    "PayableClaim",
    "Plan",
    "PlanInvalid",
    "PlanProblem",
    "PlanStatus",
    "RatioBand",
    "Rejection",
    "RejectionCode",
    "Submitter",
    "YearToDate",
    "apply_ratio",
    "balances",
    "calculate_benefit",
    "calculate_claim_benefit",
    "check_claim",
    "decide_payouts",
    "format_yuan",
    "normalise_invoice",
    "open_request_for",
    "plan_in_force",
    "year_to_date",
    "yuan",
]
