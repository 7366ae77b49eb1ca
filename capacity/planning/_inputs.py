"""Planning inputs — a quota, a workload and latency objectives — validated on construction.

Token counts are per request and may be means (floats). Every error is a ``PlanInputError``
whose message names the field and its valid range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from capacity.errors import CapacityError
from capacity.serving import (
    ENDPOINTS,
    QUOTA_RULES,
    RESERVED_MIN_INPUT_TPM,
    RESERVED_MIN_OUTPUT_TPM,
    SCOPES,
    SERVICE_TIERS,
    Endpoint,
    ModelTable,
    QuotaLimits,
    QuotaRule,
    Scope,
    ServiceTier,
    is_profile_id,
    load_model_table,
)

DEFAULT_THINK_TIME_S = 30.0
"""Think time assumed when a workload gives neither think time nor a per-user request rate."""


class PlanInputError(CapacityError, ValueError):
    """An invalid planning input; the message names the field and its valid range."""


def as_number(field: str, value: object) -> float:
    """``value`` as a finite float, or a ``PlanInputError`` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanInputError(f"{field} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise PlanInputError(f"{field} must be finite, got {value!r}")
    return x


def _positive(field: str, value: object, unit: str = "") -> None:
    if as_number(field, value) <= 0:
        raise PlanInputError(f"{field} must be > 0{unit}, got {value!r}")


def _non_negative(field: str, value: object, unit: str = "") -> None:
    if as_number(field, value) < 0:
        raise PlanInputError(f"{field} must be >= 0{unit}, got {value!r}")


@dataclass(frozen=True)
class Quota:
    """Per-model limits of one account in one Region on one endpoint (docs/architecture.md,
    "Quota rules").

    bedrock-runtime (``endpoint="runtime"``, the default; shared by InvokeModel, Converse and
    their streaming variants): ``tpm`` tokens per minute (required), ``rpm`` requests per minute
    (optional: Bedrock no longer enforces RPM on bedrock-runtime for many models), ``tpd`` tokens
    per day (optional: Bedrock's default TPM × 1440 can never bind before TPM itself).
    bedrock-mantle (``endpoint="mantle"``; Responses and Chat Completions): ``input_tpm`` and
    ``output_tpm`` (both required), tracked apart from bedrock-runtime's; no RPM, no TPD.
    ``reserved_input_tpm`` and ``reserved_output_tpm`` (either endpoint, both or neither, at
    least 100,000 and 10,000): Reserved capacity, which Reserved-tier requests use first before
    overflowing to the quotas above. ``scope`` defaults to ``"cross-region"`` for profile ids
    (``us.``, ``eu.``, …) and ``"on-demand"`` otherwise. ``rule`` is how per-minute quotas are
    enforced — ``"bucket"`` (default) or ``"window"`` — the same option the emulator's quota
    ledger takes (``capacity.serving.QuotaLimits``).
    """

    def limits(self) -> QuotaLimits:
        """These quotas as the ledger's ``QuotaLimits`` (integers, rounded down)."""

        def whole(x: float | None) -> int | None:
            return None if x is None else max(1, math.floor(x))

        return QuotaLimits(
            tpm=whole(self.tpm), rpm=whole(self.rpm), tpd=whole(self.tpd), rule=self.rule,
            endpoint=self.endpoint, input_tpm=whole(self.input_tpm),
            output_tpm=whole(self.output_tpm), reserved_input_tpm=whole(self.reserved_input_tpm),
            reserved_output_tpm=whole(self.reserved_output_tpm),
        )  # fmt: skip

    tpm: float | None = None
    rpm: float | None = None
    tpd: float | None = None
    model_id: str | None = None
    scope: Scope | None = None
    rule: QuotaRule = "bucket"
    endpoint: Endpoint = "runtime"
    input_tpm: float | None = None
    output_tpm: float | None = None
    reserved_input_tpm: float | None = None
    reserved_output_tpm: float | None = None

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise PlanInputError(
                f"Quota.endpoint must be one of {ENDPOINTS} (bedrock-runtime or bedrock-mantle), "
                f"got {self.endpoint!r}"
            )
        if self.endpoint == "runtime":
            self._check_runtime()
        else:
            self._check_mantle()
        if self.rule not in QUOTA_RULES:
            raise PlanInputError(
                f"Quota.rule must be one of {QUOTA_RULES} (how TPM is enforced; see "
                f"docs/architecture.md), got {self.rule!r}"
            )
        self._check_reserved()
        if self.model_id is not None and not (
            isinstance(self.model_id, str) and self.model_id.strip()
        ):
            raise PlanInputError(
                f"Quota.model_id must be a non-empty string, got {self.model_id!r}"
            )
        profile = self.model_id is not None and is_profile_id(self.model_id)
        if self.scope is None:
            object.__setattr__(self, "scope", "cross-region" if profile else "on-demand")
        elif self.scope not in SCOPES:
            raise PlanInputError(f"Quota.scope must be one of {SCOPES}, got {self.scope!r}")
        elif profile and self.scope == "on-demand":
            raise PlanInputError(
                f"Quota.scope 'on-demand' contradicts model_id {self.model_id!r}: a geo/global "
                "profile id is served under cross-region quotas (use scope='cross-region')"
            )

    def _check_runtime(self) -> None:
        if self.tpm is None:
            raise PlanInputError(
                "Quota.tpm must be > 0 (tokens per minute): bedrock-runtime's quota is a "
                "combined TPM"
            )
        _positive("Quota.tpm", self.tpm, " (tokens per minute)")
        if self.rpm is not None:
            _positive("Quota.rpm", self.rpm, " (requests per minute) or None")
        if self.tpd is not None:
            _positive("Quota.tpd", self.tpd, " (tokens per day) or None")
        for name in ("input_tpm", "output_tpm"):
            if getattr(self, name) is not None:
                raise PlanInputError(
                    f"Quota.{name} is a bedrock-mantle quota: give endpoint='mantle', or tpm for "
                    "bedrock-runtime"
                )

    def _check_mantle(self) -> None:
        for name in ("tpm", "rpm", "tpd"):
            if getattr(self, name) is not None:
                raise PlanInputError(
                    f"Quota.{name} is not a bedrock-mantle quota: bedrock-mantle has input_tpm "
                    "and output_tpm only (no RPM, no TPD)"
                )
        for name in ("input_tpm", "output_tpm"):
            value = getattr(self, name)
            if value is None:
                raise PlanInputError(
                    f"Quota.{name} must be > 0 (tokens per minute): bedrock-mantle has separate "
                    "input and output TPM quotas"
                )
            _positive(f"Quota.{name}", value, " (tokens per minute)")

    def _check_reserved(self) -> None:
        r_in, r_out = self.reserved_input_tpm, self.reserved_output_tpm
        if (r_in is None) != (r_out is None):
            raise PlanInputError(
                "Reserved capacity needs both reserved_input_tpm and reserved_output_tpm (AWS "
                "reserves input and output tokens per minute separately)"
            )
        if r_in is None or r_out is None:
            return
        if as_number("Quota.reserved_input_tpm", r_in) < RESERVED_MIN_INPUT_TPM:
            raise PlanInputError(
                f"Quota.reserved_input_tpm must be >= {RESERVED_MIN_INPUT_TPM:,} (AWS's minimum "
                f"Reserved input TPM), got {r_in!r}"
            )
        if as_number("Quota.reserved_output_tpm", r_out) < RESERVED_MIN_OUTPUT_TPM:
            raise PlanInputError(
                f"Quota.reserved_output_tpm must be >= {RESERVED_MIN_OUTPUT_TPM:,} (AWS's "
                f"minimum Reserved output TPM), got {r_out!r}"
            )

    @property
    def reserved(self) -> bool:
        """Whether Reserved capacity is part of these quotas."""
        return self.reserved_input_tpm is not None

    @property
    def runtime_tpm(self) -> float:
        """bedrock-runtime's combined TPM, for views drawn on it (the quota-increase figures and
        report); a `PlanInputError` on bedrock-mantle, whose quotas are input and output TPM."""
        if self.tpm is None:
            raise PlanInputError(
                "this view is drawn on bedrock-runtime's combined TPM: bedrock-mantle's quotas "
                "are input_tpm and output_tpm (use the plan's figures for them)"
            )
        return float(self.tpm)

    def describe(self) -> str:
        """The quotas in words (``2,000,000 tokens per minute``; ``100,000 input and 20,000
        output tokens per minute on bedrock-mantle``; plus Reserved capacity)."""
        if self.endpoint == "mantle":
            text = (
                f"{self.input_tpm or 0:,.0f} input and {self.output_tpm or 0:,.0f} output tokens "
                "per minute on bedrock-mantle"
            )
        else:
            rpm = "" if self.rpm is None else f" and {self.rpm:,.0f} requests per minute"
            text = f"{self.tpm or 0:,.0f} tokens per minute{rpm}"
        if self.reserved:
            text += (
                f" with Reserved {self.reserved_input_tpm or 0:,.0f} input + "
                f"{self.reserved_output_tpm or 0:,.0f} output TPM"
            )
        return text


@dataclass(frozen=True)
class Workload:
    """One request class and how users issue it.

    Tokens per request: ``input_tokens`` (uncached prompt), ``output_tokens`` (expected
    completion), ``max_tokens`` (the request setting; Bedrock reserves it at admission),
    ``cache_read_tokens`` and ``cache_write_tokens`` (prompt caching). ``burndown`` overrides
    the output-token burndown looked up by model id (1 by default, 5 for Claude 3.7 / 4).

    Users: each user sends a request, waits for the answer (latency R) and thinks for
    ``think_time_s`` (default ``DEFAULT_THINK_TIME_S`` when neither is given) — or gives
    ``requests_per_user_per_min`` directly; not both. ``peak_to_average`` is the busiest
    minute's rate over the mean (≥ 1) and ``active_hours_per_day`` spreads the daily token quota.
    ``latency_s`` is the mean response time R used when no performance model is given.
    ``service_tier``: the tier requests ask for (``"default"``: Standard); Reserved-tier requests
    use Reserved capacity first, the others share the on-demand quota.
    """

    input_tokens: float
    output_tokens: float
    max_tokens: float
    cache_read_tokens: float = 0.0
    cache_write_tokens: float = 0.0
    burndown: float | None = None
    think_time_s: float | None = None
    requests_per_user_per_min: float | None = None
    peak_to_average: float = 1.0
    active_hours_per_day: float = 24.0
    latency_s: float | None = None
    service_tier: ServiceTier = "default"

    def __post_init__(self) -> None:
        _positive("Workload.input_tokens", self.input_tokens, " (tokens per request)")
        _positive("Workload.output_tokens", self.output_tokens, " (tokens per request)")
        _positive("Workload.max_tokens", self.max_tokens, " (tokens)")
        _non_negative("Workload.cache_read_tokens", self.cache_read_tokens, " (tokens)")
        _non_negative("Workload.cache_write_tokens", self.cache_write_tokens, " (tokens)")
        if self.output_tokens > self.max_tokens:
            raise PlanInputError(
                f"Workload.output_tokens ({self.output_tokens:g}) must be <= max_tokens "
                f"({self.max_tokens:g}): a request cannot generate more than max_tokens"
            )
        if self.burndown is not None:
            _positive("Workload.burndown", self.burndown, " (quota tokens per output token)")
        if self.think_time_s is not None:
            _non_negative("Workload.think_time_s", self.think_time_s, " (seconds)")
        if self.requests_per_user_per_min is not None:
            _positive("Workload.requests_per_user_per_min", self.requests_per_user_per_min)
            if self.think_time_s is not None:
                raise PlanInputError(
                    "Workload: give think_time_s or requests_per_user_per_min, not both"
                )
        if as_number("Workload.peak_to_average", self.peak_to_average) < 1:
            raise PlanInputError(
                f"Workload.peak_to_average must be >= 1 (peak minute / mean), "
                f"got {self.peak_to_average!r}"
            )
        hours = as_number("Workload.active_hours_per_day", self.active_hours_per_day)
        if not 0 < hours <= 24:
            raise PlanInputError(
                "Workload.active_hours_per_day must be in (0, 24], "
                f"got {self.active_hours_per_day!r}"
            )
        if self.latency_s is not None:
            _positive("Workload.latency_s", self.latency_s, " (seconds)")
        if self.service_tier not in SERVICE_TIERS:
            raise PlanInputError(
                f"Workload.service_tier must be one of {SERVICE_TIERS} ('default' is the "
                f"Standard tier), got {self.service_tier!r}"
            )

    @property
    def prompt_tokens(self) -> float:
        """The prompt a performance model is asked at: input + cache read + cache write."""
        return float(self.input_tokens + self.cache_read_tokens + self.cache_write_tokens)

    @property
    def reservation_tokens(self) -> float:
        """Tokens reserved against TPM at admission: input + cache read + cache write +
        max_tokens."""
        return (
            self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.max_tokens
        )

    def settlement_tokens(self, burndown: float) -> float:
        """Tokens charged at settlement: input + cache write + burndown × output (cache reads
        are free)."""
        return self.input_tokens + self.cache_write_tokens + burndown * self.output_tokens

    @property
    def input_check_tokens(self) -> float:
        """What an input TPM (bedrock-mantle's, Reserved capacity's) takes at admission: input +
        cache write + max_tokens (cached reads do not count)."""
        return self.input_tokens + self.cache_write_tokens + self.max_tokens

    @property
    def input_kept_tokens(self) -> float:
        """What an input TPM keeps at settlement: input + cache write."""
        return self.input_tokens + self.cache_write_tokens

    @property
    def effective_think_time_s(self) -> float | None:
        """Think time used for Little's law; None when a per-user request rate is given."""
        if self.requests_per_user_per_min is not None:
            return None
        return DEFAULT_THINK_TIME_S if self.think_time_s is None else float(self.think_time_s)


@dataclass(frozen=True)
class Slo:
    """Latency objectives at the 95th percentile (seconds) and a floor on the 5th percentile of
    per-request decode speed (tokens/s, Azure's "99 % > 50 TPS" shape). Give at least one."""

    ttft_p95_s: float | None = None
    ttlt_p95_s: float | None = None
    min_tps_p5: float | None = None

    def __post_init__(self) -> None:
        if self.ttft_p95_s is None and self.ttlt_p95_s is None and self.min_tps_p5 is None:
            raise PlanInputError("Slo needs at least one of ttft_p95_s, ttlt_p95_s, min_tps_p5")
        if self.ttft_p95_s is not None:
            _positive("Slo.ttft_p95_s", self.ttft_p95_s, " (seconds)")
        if self.ttlt_p95_s is not None:
            _positive("Slo.ttlt_p95_s", self.ttlt_p95_s, " (seconds)")
        if self.min_tps_p5 is not None:
            _positive("Slo.min_tps_p5", self.min_tps_p5, " (tokens/s)")
        if (
            self.ttft_p95_s is not None
            and self.ttlt_p95_s is not None
            and self.ttlt_p95_s < self.ttft_p95_s
        ):
            raise PlanInputError(
                f"Slo.ttlt_p95_s ({self.ttlt_p95_s:g}) must be >= ttft_p95_s "
                f"({self.ttft_p95_s:g}): the last token cannot come before the first"
            )

    def describe(self) -> str:
        """The objectives as one phrase, e.g. ``p95 TTFT <= 1 s``."""
        parts = []
        if self.ttft_p95_s is not None:
            parts.append(f"p95 TTFT <= {self.ttft_p95_s:g} s")
        if self.ttlt_p95_s is not None:
            parts.append(f"p95 TTLT <= {self.ttlt_p95_s:g} s")
        if self.min_tps_p5 is not None:
            parts.append(f"p5 tps >= {self.min_tps_p5:g}")
        return ", ".join(parts)


def default_quota(
    model_id: str, scope: Scope = "cross-region", table: ModelTable | None = None
) -> Quota:
    """A ``Quota`` holding Bedrock's published defaults for ``model_id`` in ``scope`` — the
    quotas Bedrock still enforces (requests per minute is left out where it no longer is).

    Raises ``PlanInputError`` when the table has no default TPM for that model and scope.
    """
    quotas = (table or load_model_table()).quotas_for(model_id, scope)
    values = {q.kind: q.default for q in quotas if q.default is not None and q.enforced}
    if "tpm" not in values:
        raise PlanInputError(
            f"no published {scope} TPM default for model_id {model_id!r}; give Quota(tpm=...)"
        )
    return Quota(
        tpm=values["tpm"], rpm=values.get("rpm"), tpd=values.get("tpd"),
        model_id=model_id, scope=scope,
    )  # fmt: skip
