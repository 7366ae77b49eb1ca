"""The model of the endpoint: the step-time serving model, its virtual-time simulator, Bedrock's
quota ledger and the model table — one set of rules shared by the emulator (live clock) and the
planner (virtual clock and closed forms). The ledger also replays logged traffic in batch
(`replay`, compiled) and sizes quotas from it (`size_quota`). See docs/architecture.md,
"Serving" and "Quota rules".
"""

from typing import TYPE_CHECKING

from capacity.serving._engine import PRIORITY_OF_TIER, Cluster, Sequence, queue_rank
from capacity.serving._ledger import (
    ENDPOINTS,
    QUOTA_RULES,
    REJECTION_KINDS,
    RESERVED_MIN_INPUT_TPM,
    RESERVED_MIN_OUTPUT_TPM,
    SERVICE_TIERS,
    THROTTLE_MESSAGES,
    Admission,
    Endpoint,
    QuotaBuckets,
    QuotaError,
    QuotaLedger,
    QuotaLimits,
    QuotaRule,
    Rejection,
    RejectionKind,
    ServiceTier,
    quota_buckets,
)
from capacity.serving._models import (
    PROFILE_PREFIXES,
    SCOPES,
    Burndown,
    MantleQuota,
    ModelInfo,
    ModelTable,
    QuotaInfo,
    Scope,
    base_model_id,
    burndown_for,
    is_profile_id,
    load_model_table,
    resolve_burndown,
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
from capacity.serving._rules import (
    TpmLimits,
    bucket_limits,
    ramp_inflight,
    required_bucket,
    required_tpm,
    reserved_rate,
    tpm_limits,
)
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
    "ENDPOINTS",
    "PRIORITY_OF_TIER",
    "PROFILE_PREFIXES",
    "QUOTA_RULES",
    "REJECTION_KINDS",
    "RESERVED_MIN_INPUT_TPM",
    "RESERVED_MIN_OUTPUT_TPM",
    "SCOPES",
    "SERVICE_TIERS",
    "THROTTLE_MESSAGES",
    "TWIN_FORMAT",
    "Admission",
    "Burndown",
    "CalibrationError",
    "Cluster",
    "Endpoint",
    "FailedPolicy",
    "FaultConfig",
    "Forecast",
    "MantleQuota",
    "MaxTokensPolicy",
    "MaxTokensSaving",
    "MinuteSeries",
    "ModelError",
    "ModelInfo",
    "ModelSpec",
    "ModelTable",
    "OutputLength",
    "ProbeCell",
    "Profile",
    "ProfileError",
    "PublishedLevel",
    "QuotaBuckets",
    "QuotaConfig",
    "QuotaError",
    "QuotaInfo",
    "QuotaLedger",
    "QuotaLimits",
    "QuotaRule",
    "QuotaSizing",
    "Rejection",
    "RejectionKind",
    "ReplayError",
    "ReplayResult",
    "RequestArrays",
    "Scope",
    "Sequence",
    "ServiceTier",
    "ServingModel",
    "SimRequest",
    "SimResult",
    "TpmLimits",
    "Twin",
    "WorstMinute",
    "base_model_id",
    "bucket_limits",
    "burndown_for",
    "calibrate",
    "calibrate_published",
    "cell_stats",
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
    "published_cells",
    "queue_rank",
    "quota_buckets",
    "ramp_inflight",
    "read_published",
    "replay",
    "required_bucket",
    "required_tpm",
    "reserved_rate",
    "resolve_burndown",
    "shipped_profiles",
    "simulate",
    "simulate_closed_loop",
    "simulate_quota",
    "size_quota",
    "sweep_levels",
    "tpm_limits",
    "unloaded_latency_s",
]

# The twin (calibration needs scipy and, for records, pandas) and the batch replay (numpy, and
# numba when it runs): loaded on first use, so that ``import capacity.planning`` and the
# emulator never pay for them.
_LAZY = {
    "FailedPolicy": "capacity.serving._requests",
    "MaxTokensPolicy": "capacity.serving._requests",
    "MinuteSeries": "capacity.serving._replay",
    "ReplayError": "capacity.serving._requests",
    "ReplayResult": "capacity.serving._replay",
    "RequestArrays": "capacity.serving._requests",
    "WorstMinute": "capacity.serving._replay",
    "replay": "capacity.serving._replay",
    "unloaded_latency_s": "capacity.serving._requests",
    "MaxTokensSaving": "capacity.serving._sizing",
    "QuotaSizing": "capacity.serving._sizing",
    "size_quota": "capacity.serving._sizing",
    "CalibrationError": "capacity.serving._calibrate",
    "ModelError": "capacity.serving._modelerror",
    "PublishedLevel": "capacity.serving._published",
    "calibrate_published": "capacity.serving._published",
    "published_cells": "capacity.serving._published",
    "read_published": "capacity.serving._published",
    "sweep_levels": "capacity.serving._published",
    "ProbeCell": "capacity.serving._calibrate",
    "calibrate": "capacity.serving._twin",
    "cell_stats": "capacity.serving._calibrate",
    "probe_cells": "capacity.serving._calibrate",
    "Forecast": "capacity.serving._twin",
    "TWIN_FORMAT": "capacity.serving._twin",
    "Twin": "capacity.serving._twin",
    "is_twin_file": "capacity.serving._twin",
    "load_twin": "capacity.serving._twin",
}
if TYPE_CHECKING:
    from capacity.serving._calibrate import CalibrationError, ProbeCell, cell_stats, probe_cells
    from capacity.serving._modelerror import ModelError
    from capacity.serving._published import (
        PublishedLevel,
        calibrate_published,
        published_cells,
        read_published,
        sweep_levels,
    )
    from capacity.serving._replay import MinuteSeries, ReplayResult, WorstMinute, replay
    from capacity.serving._requests import (
        FailedPolicy,
        MaxTokensPolicy,
        ReplayError,
        RequestArrays,
        unloaded_latency_s,
    )
    from capacity.serving._sizing import MaxTokensSaving, QuotaSizing, size_quota
    from capacity.serving._twin import (
        TWIN_FORMAT,
        Forecast,
        Twin,
        calibrate,
        is_twin_file,
        load_twin,
    )


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'capacity.serving' has no attribute {name!r}")
