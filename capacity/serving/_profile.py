"""Emulator profiles: the serving model's coefficients, models, quotas and faults, from JSON.

A profile is a JSON file (see ``capacity/serving/profiles/``). Every key is optional except
``name``; missing keys take the defaults of the dataclasses below. ``load_profile`` accepts a
shipped profile name (``"fast"``, ``"llama3.3-70b-bedrock"``) or a path to a JSON file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from capacity.serving._ledger import (
    ENDPOINTS,
    QUOTA_RULES,
    Endpoint,
    QuotaError,
    QuotaLimits,
    QuotaRule,
)
from capacity.serving._models import load_model_table

DEFAULT_PROFILE = "llama3.3-70b-bedrock"
DEFAULT_MAX_OUTPUT_TOKENS = 8192
"""The output limit of a model id the model table does not know."""


class ProfileError(ValueError):
    """A profile name, file or field is invalid; the message names it and the fix."""


@dataclass(frozen=True)
class ServingModel:
    """Coefficients of the continuous-batching step-time model (docs/architecture.md).

    ``step = c_b·B + max(t_w + max(c_a·ctx_max, c_kv·K), c_f·(B + prefill_tokens))`` where B is
    the number of decoding sequences, K the KV tokens they hold and ctx_max the longest context.
    Before a request reaches the engine it spends ``alpha0_s + alpha_in_s·input_tokens`` in the
    gateway (network, auth, tokenisation): that part of TTFT does not occupy the engine.
    """

    t_w_s: float = 0.0072
    c_b_s: float = 26e-6
    c_a_s: float = 22e-9
    c_kv_s: float = 19e-9
    c_f_s: float = 9.5e-6
    alpha0_s: float = 0.27
    alpha_in_s: float = 78e-6
    chunk_budget_tokens: int = 2048
    max_running: int = 512
    replicas: int = 1
    router: str = "least_loaded"
    step_jitter_cv: float = 0.0
    alpha_jitter_cv: float = 0.0


@dataclass(frozen=True)
class OutputLength:
    """How many tokens a request generates: ``max_tokens`` (the seed blog's case) or a lognormal
    with the given mean and sigma, capped at ``max_tokens``."""

    kind: str = "max_tokens"
    mean_tokens: float = 256.0
    sigma: float = 0.6

    def draw(self, max_tokens: int, rng: random.Random) -> int:
        """Output tokens of one request (≥ 1, ≤ ``max_tokens``)."""
        if self.kind == "max_tokens":
            return max_tokens
        mu = math.log(self.mean_tokens) - self.sigma**2 / 2  # so that E[length] = mean_tokens
        return max(1, min(max_tokens, round(rng.lognormvariate(mu, self.sigma))))


@dataclass(frozen=True)
class ModelSpec:
    """A model id the emulator serves, with its quota burndown and output limit — both read from
    the one model table (``capacity/data/bedrock_models.json``) when the profile is loaded, so
    the emulator and the planner charge the same burndown (``spec_for``)."""

    model_id: str
    burndown: float = 1.0
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS


@dataclass(frozen=True)
class QuotaConfig:
    """Per-model quotas (None = unlimited), how a throttle is delivered, the ``rule``
    (``"bucket"`` or ``"window"``), the ``endpoint`` (``"runtime"``: TPM, RPM, TPD;
    ``"mantle"``: input and output TPM) and Reserved capacity: see
    ``capacity.serving.QuotaLimits``, which `limits` builds (and validates)."""

    tpm: int | None = None
    rpm: int | None = None
    tpd: int | None = None
    throttle: str = "http"  # "http": a 429 before the stream; "mid-stream": an exception event
    rule: str = "bucket"
    endpoint: str = "runtime"
    input_tpm: int | None = None
    output_tpm: int | None = None
    reserved_input_tpm: int | None = None
    reserved_output_tpm: int | None = None

    def limits(self) -> QuotaLimits:
        """The ledger's limits for these quotas."""
        rule: QuotaRule = "window" if self.rule == "window" else "bucket"
        endpoint: Endpoint = "mantle" if self.endpoint == "mantle" else "runtime"
        return QuotaLimits(
            self.tpm, self.rpm, self.tpd, rule=rule, endpoint=endpoint,
            input_tpm=self.input_tpm, output_tpm=self.output_tpm,
            reserved_input_tpm=self.reserved_input_tpm,
            reserved_output_tpm=self.reserved_output_tpm,
        )  # fmt: skip

    @classmethod
    def of(cls, limits: QuotaLimits, throttle: str = "http") -> QuotaConfig:
        """The configuration enforcing ``limits``, delivering throttles as ``throttle``."""
        return cls(
            limits.tpm, limits.rpm, limits.tpd, throttle, limits.rule, limits.endpoint,
            limits.input_tpm, limits.output_tpm, limits.reserved_input_tpm,
            limits.reserved_output_tpm,
        )  # fmt: skip


@dataclass(frozen=True)
class FaultConfig:
    """Fault injection rates (per request, independent draws from the seeded generator)."""

    error_rate: dict[str, float] = field(
        default_factory=dict
    )  # {"500": 0.01, "503": ..., "424": ...}
    midstream_error_rate: float = 0.0
    drop_rate: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 30.0
    throttle_rate: float = 0.0  # a 429 storm: ThrottlingException regardless of the quotas
    slow_headers_rate: float = 0.0  # the response headers wait slow_headers_s
    slow_headers_s: float = 10.0


@dataclass(frozen=True)
class Profile:
    """Everything the emulator needs to behave like one endpoint."""

    name: str
    description: str = ""
    models: tuple[ModelSpec, ...] = ()
    prompt_overhead_tokens: int = 0
    tokens_per_event: int = 1
    serving: ServingModel = ServingModel()
    output: OutputLength = OutputLength()
    quotas: QuotaConfig = QuotaConfig()
    faults: FaultConfig = FaultConfig()

    def model(self, model_id: str) -> ModelSpec | None:
        """The spec of ``model_id``, or None when this profile does not serve it."""
        for spec in self.models:
            if spec.model_id == model_id:
                return spec
        return None

    @property
    def default_model_id(self) -> str:
        """The first model id of the profile (what clients use when they do not choose)."""
        return self.models[0].model_id

    def with_overrides(self, **changes: Any) -> Profile:
        """A copy with top-level or nested fields replaced (``quotas=QuotaConfig(...)`` etc.)."""
        return dataclasses.replace(self, **changes)


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped with llmcap."""
    folder = resources.files("capacity.serving") / "profiles"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name, or a profile JSON file by path."""
    text, origin = _read_profile_text(name_or_path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"profile {origin}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {origin}: the top level must be a JSON object")
    return profile_from_dict(raw, origin=origin)


def _read_profile_text(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise ProfileError(f"profile file {path} does not exist; pass a shipped name or a path")
        return path.read_text(encoding="utf-8"), str(path)
    resource = resources.files("capacity.serving") / "profiles" / f"{name_or_path}.json"
    if not resource.is_file():
        names = ", ".join(shipped_profiles())
        raise ProfileError(f"unknown profile {name_or_path!r}; shipped profiles: {names}")
    return resource.read_text(encoding="utf-8"), str(name_or_path)


def profile_from_dict(raw: dict[str, Any], *, origin: str = "<dict>") -> Profile:
    """Build and validate a Profile from its JSON form."""
    try:
        models = tuple(_model_spec(m, origin) for m in raw.get("models", []))
        profile = Profile(
            name=str(raw["name"]),
            description=str(raw.get("description", "")),
            models=models,
            prompt_overhead_tokens=int(raw.get("prompt_overhead_tokens", 0)),
            tokens_per_event=int(raw.get("tokens_per_event", 1)),
            serving=ServingModel(**raw.get("serving", {})),
            output=OutputLength(**raw.get("output", {})),
            quotas=QuotaConfig(**raw.get("quotas", {})),
            faults=FaultConfig(**raw.get("faults", {})),
        )
    except KeyError as exc:
        raise ProfileError(f"profile {origin}: missing required key {exc}") from exc
    except TypeError as exc:
        raise ProfileError(f"profile {origin}: {exc}; see emulator/profile.py") from exc
    _validate(profile, origin)
    return profile


def spec_for(model_id: str) -> ModelSpec:
    """``model_id``'s burndown and output limit from the one model table."""
    table = load_model_table()
    info = table.model(model_id)
    limit = info.max_output_tokens if info and info.max_output_tokens else None
    return ModelSpec(
        model_id, table.burndown_for(model_id).value, limit or DEFAULT_MAX_OUTPUT_TOKENS
    )


def _model_spec(raw: Any, origin: str) -> ModelSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("model_id"), str):
        raise ProfileError(f"profile {origin}: each of 'models' needs a 'model_id' string")
    extra = sorted(set(raw) - {"model_id"})
    if extra:
        raise ProfileError(
            f"profile {origin}: models[{raw['model_id']!r}] sets {', '.join(extra)}; burndown and "
            "output limits live in the model table (capacity/data/bedrock_models.json)"
        )
    return spec_for(raw["model_id"])


def _validate(p: Profile, origin: str) -> None:
    problems: list[str] = []
    if not p.models:
        problems.append("'models' must list at least one model id")
    s = p.serving
    for name in ("t_w_s", "c_b_s", "c_a_s", "c_kv_s", "c_f_s", "alpha0_s", "alpha_in_s"):
        if getattr(s, name) < 0:
            problems.append(f"serving.{name} must be ≥ 0")
    if s.chunk_budget_tokens < 1 or s.max_running < 1 or s.replicas < 1:
        problems.append("serving.chunk_budget_tokens, max_running and replicas must be ≥ 1")
    if s.router not in ("least_loaded", "round_robin", "random"):
        problems.append("serving.router must be least_loaded, round_robin or random")
    if p.tokens_per_event < 1:
        problems.append("tokens_per_event must be ≥ 1")
    if p.output.kind not in ("max_tokens", "lognormal"):
        problems.append("output.kind must be 'max_tokens' or 'lognormal'")
    if p.quotas.rule not in QUOTA_RULES:
        problems.append(f"quotas.rule must be one of {', '.join(QUOTA_RULES)}")
    elif p.quotas.endpoint not in ENDPOINTS:
        problems.append(f"quotas.endpoint must be one of {', '.join(ENDPOINTS)}")
    else:
        try:
            p.quotas.limits()
        except QuotaError as exc:
            problems.append(f"quotas: {exc}")
    if p.quotas.throttle not in ("http", "mid-stream"):
        problems.append("quotas.throttle must be 'http' or 'mid-stream'")
    for key in ("tpm", "rpm", "tpd"):
        value = getattr(p.quotas, key)
        if value is not None and value <= 0:
            problems.append(f"quotas.{key} must be a positive integer or null")
    f = p.faults
    for name in (
        "midstream_error_rate", "drop_rate", "stall_rate", "throttle_rate", "slow_headers_rate"
    ):  # fmt: skip
        if not 0 <= getattr(f, name) <= 1:
            problems.append(f"faults.{name} must be a rate in [0, 1]")
    for status, rate in f.error_rate.items():
        if status not in ("500", "503", "424") or not 0 <= rate <= 1:
            problems.append(
                f"faults.error_rate[{status!r}] must be a rate in [0, 1] for 500/503/424"
            )
    if problems:
        raise ProfileError(f"profile {origin}: " + "; ".join(problems))
