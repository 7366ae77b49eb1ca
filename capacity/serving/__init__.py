"""The model of the endpoint: the step-time serving model, its virtual-time simulator, Bedrock's
quota ledger and the model table — one set of rules shared by the emulator (live clock) and the
planner (virtual clock and closed forms). See docs/architecture.md, "Serving".
"""

from typing import TYPE_CHECKING

from capacity.serving._engine import Cluster, Sequence
from capacity.serving._ledger import (
    QUOTA_RULES,
    THROTTLE_MESSAGES,
    Admission,
    QuotaLedger,
    QuotaLimits,
    QuotaRule,
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
from capacity.serving._rules import TpmLimits, required_tpm, tpm_limits
from capacity.serving._simulate import (
    SimRequest,
    SimResult,
    interval_medians,
    interval_schedule,
    poisson_arrivals,
    simulate,
    simulate_closed_loop,
    simulate_quota,
)

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILE_PREFIXES",
    "QUOTA_RULES",
    "SCOPES",
    "THROTTLE_MESSAGES",
    "Admission",
    "Burndown",
    "CalibrationError",
    "ClientLoad",
    "ClientOverloadError",
    "Cluster",
    "FaultConfig",
    "Forecast",
    "ModelInfo",
    "ModelSpec",
    "ModelTable",
    "OutputLength",
    "ProbeCell",
    "Profile",
    "ProfileError",
    "QuotaConfig",
    "QuotaInfo",
    "QuotaLedger",
    "QuotaLimits",
    "QuotaRule",
    "Rejection",
    "RejectionKind",
    "Scope",
    "Sequence",
    "ServingModel",
    "SimRequest",
    "SimResult",
    "TpmLimits",
    "Twin",
    "base_model_id",
    "burndown_for",
    "calibrate",
    "check_client_load",
    "client_load",
    "client_overload",
    "interval_medians",
    "interval_schedule",
    "is_profile_id",
    "is_twin_file",
    "load_model_table",
    "load_profile",
    "load_twin",
    "poisson_arrivals",
    "probe_cells",
    "profile_from_dict",
    "required_tpm",
    "shipped_profiles",
    "simulate",
    "simulate_closed_loop",
    "simulate_quota",
    "tpm_limits",
]

# The twin (calibration needs scipy and, for records, pandas): loaded on first use, so that
# ``import capacity.planning`` never pays for it.
_LAZY = {
    "CalibrationError": "capacity.serving._calibrate",
    "ProbeCell": "capacity.serving._calibrate",
    "calibrate": "capacity.serving._calibrate",
    "probe_cells": "capacity.serving._calibrate",
    "ClientLoad": "capacity.serving._client_load",
    "ClientOverloadError": "capacity.serving._client_load",
    "check_client_load": "capacity.serving._client_load",
    "client_load": "capacity.serving._client_load",
    "client_overload": "capacity.serving._client_load",
    "Forecast": "capacity.serving._twin",
    "Twin": "capacity.serving._twin",
    "is_twin_file": "capacity.serving._twin",
    "load_twin": "capacity.serving._twin",
}
if TYPE_CHECKING:
    from capacity.serving._calibrate import CalibrationError, ProbeCell, calibrate, probe_cells
    from capacity.serving._client_load import (
        ClientLoad,
        ClientOverloadError,
        check_client_load,
        client_load,
        client_overload,
    )
    from capacity.serving._twin import Forecast, Twin, is_twin_file, load_twin


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'capacity.serving' has no attribute {name!r}")
