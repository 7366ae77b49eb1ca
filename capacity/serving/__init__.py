"""The model of the endpoint: the step-time serving model, its virtual-time simulator, Bedrock's
quota ledger and the model table — one set of rules shared by the emulator (live clock) and the
planner (virtual clock and closed forms). See docs/architecture.md, "Serving".
"""

from capacity.serving._engine import Cluster, Sequence
from capacity.serving._ledger import (
    THROTTLE_MESSAGES,
    Admission,
    QuotaLedger,
    QuotaLimits,
    Rejection,
    RejectionKind,
)
from capacity.serving._models import (
    PROFILE_PREFIXES,
    SCOPES,
    Burndown,
    ModelInfo,
    ModelTable,
    QuotaInfo,
    Scope,
    base_model_id,
    burndown_for,
    is_profile_id,
    load_model_table,
)
from capacity.serving._profile import (
    DEFAULT_PROFILE,
    FaultConfig,
    ModelSpec,
    OutputLength,
    Profile,
    ProfileError,
    QuotaConfig,
    ServingModel,
    load_profile,
    profile_from_dict,
    shipped_profiles,
)
from capacity.serving._simulate import (
    SimRequest,
    SimResult,
    interval_medians,
    interval_schedule,
    simulate,
    simulate_closed_loop,
)

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILE_PREFIXES",
    "SCOPES",
    "THROTTLE_MESSAGES",
    "Admission",
    "Burndown",
    "Cluster",
    "FaultConfig",
    "ModelInfo",
    "ModelSpec",
    "ModelTable",
    "OutputLength",
    "Profile",
    "ProfileError",
    "QuotaConfig",
    "QuotaInfo",
    "QuotaLedger",
    "QuotaLimits",
    "Rejection",
    "RejectionKind",
    "Scope",
    "Sequence",
    "ServingModel",
    "SimRequest",
    "SimResult",
    "base_model_id",
    "burndown_for",
    "interval_medians",
    "interval_schedule",
    "is_profile_id",
    "load_model_table",
    "load_profile",
    "profile_from_dict",
    "shipped_profiles",
    "simulate",
    "simulate_closed_loop",
]
