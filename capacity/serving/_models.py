"""Bedrock facts by model id, from ``capacity/data/bedrock_models.json``: output-token burndown
(with its source); per endpoint the quota names, codes and published defaults for common models
(bedrock-runtime: TPM, RPM, TPD; bedrock-mantle: input and output TPM); the service tiers each
model is listed for, with sources.

Model ids match by longest prefix after a geo/global profile prefix (``us.``, ``global.``, …) is
stripped, so ``us.anthropic.claude-sonnet-4-20250514-v1:0`` finds Claude Sonnet 4.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from capacity.errors import ModelFileError

__all__ = [
    "PROFILE_PREFIXES",
    "SCOPES",
    "Burndown",
    "MantleQuota",
    "MantleQuotaKind",
    "ModelInfo",
    "ModelTable",
    "QuotaInfo",
    "QuotaKind",
    "Scope",
    "base_model_id",
    "burndown_for",
    "is_profile_id",
    "load_model_table",
    "resolve_burndown",
]

QuotaKind = Literal["tpm", "rpm", "tpd"]
MantleQuotaKind = Literal["input_tpm", "output_tpm"]
Scope = Literal["on-demand", "cross-region"]
SCOPES: tuple[Scope, ...] = ("on-demand", "cross-region")
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
"""Geo and global inference-profile prefixes: such ids are served under cross-region quotas."""
T = TypeVar("T")


@dataclass(frozen=True)
class QuotaInfo:
    """One Service Quotas entry: ``kind`` (tpm, rpm or tpd), ``scope``, quota ``code``
    (``L-`` + 8 hex digits), ``name``, published ``default`` (None when unknown), whether it is
    ``adjustable`` (None when unknown), a ``note`` (Region dependence), its ``source``, and
    whether Bedrock still ``enforced`` it (False for the requests-per-minute quotas it stopped
    enforcing on bedrock-runtime)."""

    kind: QuotaKind
    scope: Scope
    code: str
    name: str
    default: float | None
    adjustable: bool | None
    note: str
    source: str
    enforced: bool = True


@dataclass(frozen=True)
class MantleQuota:
    """One bedrock-mantle quota of a model: ``kind`` (input_tpm or output_tpm), its Service
    Quotas ``code`` and published ``default`` (None: not in the shipped sources), ``name``,
    whether it is ``adjustable`` (None when unknown) and its ``source``. Per model, per Region
    (quotas-mantle.html names no cross-Region variant)."""

    kind: MantleQuotaKind
    code: str | None
    name: str
    default: float | None
    adjustable: bool | None
    source: str


@dataclass(frozen=True)
class ModelInfo:
    """A model's entry: canonical ``model_id``, display ``name``, ``max_output_tokens`` (what an
    unset max_tokens reserves), its bedrock-runtime ``quotas``, the ``endpoints`` the shipped
    sources show serving it (others may too), its ``mantle_quotas``, and the ``service_tiers``
    it is listed for (``"default"``, the Standard tier, always) with their ``tiers_source``."""

    model_id: str
    name: str
    max_output_tokens: int | None
    quotas: tuple[QuotaInfo, ...]
    endpoints: tuple[str, ...] = ("runtime",)
    mantle_quotas: tuple[MantleQuota, ...] = ()
    service_tiers: tuple[str, ...] = ("default",)
    tiers_source: str = ""


@dataclass(frozen=True)
class Burndown:
    """Quota tokens charged per output token, with the rule that matched and its source."""

    value: float
    rule: str
    source: str


@dataclass(frozen=True)
class ModelTable:
    """The parsed data file. Build with ``load_model_table``; pass your own file to override."""

    burndown_default: Burndown
    burndown_rules: tuple[tuple[str, Burndown], ...]
    models: tuple[tuple[str, ModelInfo], ...]
    sources: Mapping[str, str]

    def burndown_for(self, model_id: str | None) -> Burndown:
        """The output burndown for ``model_id`` (the default for None or an unknown id)."""
        if model_id is None:
            return self.burndown_default
        hit = _longest_prefix(base_model_id(model_id), self.burndown_rules)
        return self.burndown_default if hit is None else hit

    def model(self, model_id: str) -> ModelInfo | None:
        """The entry for ``model_id``, or None when the table does not know it."""
        return _longest_prefix(base_model_id(model_id), self.models)

    def quotas_for(self, model_id: str, scope: Scope | None = None) -> tuple[QuotaInfo, ...]:
        """Known bedrock-runtime quotas of ``model_id``, optionally only those of ``scope``."""
        info = self.model(model_id)
        if info is None:
            return ()
        return tuple(q for q in info.quotas if scope is None or q.scope == scope)

    def mantle_quotas_for(self, model_id: str) -> tuple[MantleQuota, ...]:
        """Known bedrock-mantle quotas of ``model_id`` (input and output TPM)."""
        info = self.model(model_id)
        return () if info is None else info.mantle_quotas

    def service_tiers_for(self, model_id: str | None) -> tuple[str, ...]:
        """The service tiers ``model_id`` is listed for (the Standard tier, ``"default"``, for
        models the table does not know)."""
        info = None if model_id is None else self.model(model_id)
        return ("default",) if info is None else info.service_tiers


def base_model_id(model_id: str) -> str:
    """``model_id`` without a geo/global profile prefix (``us.meta.llama…`` → ``meta.llama…``)."""
    for prefix in PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


def _longest_prefix(key: str, rules: tuple[tuple[str, T], ...]) -> T | None:
    best: tuple[int, T] | None = None
    for prefix, value in rules:
        if key.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), value)
    return None if best is None else best[1]


def _source(raw: str, sources: Mapping[str, str]) -> str:
    """Expand source keys (``"quota-table; quota-dashboard (Sonnet 4)"``) to their full text."""
    parts = []
    for part in raw.split("; "):
        key, _, detail = part.partition(" ")
        parts.append(f"{sources.get(key, key)} {detail}".strip())
    return "; ".join(parts)


def _parse(doc: Mapping[str, Any]) -> ModelTable:
    sources: dict[str, str] = dict(doc.get("sources", {}))
    bd = doc["burndown"]
    default = Burndown(float(bd["default"]), "default", bd["source"])
    rules = tuple(
        (r["match"], Burndown(float(r["burndown"]), r["match"], _source(r["source"], sources)))
        for r in bd["rules"]
    )
    models = []
    for m in doc["models"]:
        quotas = tuple(
            QuotaInfo(
                kind=q["kind"],
                scope=q["scope"],
                code=q["code"],
                name=q["name"],
                default=None if q["default"] is None else float(q["default"]),
                adjustable=q["adjustable"],
                note=q.get("note", ""),
                source=_source(q["source"], sources),
                enforced=bool(q.get("enforced", True)),
            )
            for q in m["quotas"]
        )
        mantle = tuple(
            MantleQuota(
                kind=q["kind"], code=q["code"], name=q["name"],
                default=None if q["default"] is None else float(q["default"]),
                adjustable=q["adjustable"], source=_source(q["source"], sources),
            )
            for q in m.get("mantle_quotas", [])
        )  # fmt: skip
        info = ModelInfo(
            m["model_id"], m["name"], m.get("max_output_tokens"), quotas,
            endpoints=tuple(m.get("endpoints", ["runtime"])), mantle_quotas=mantle,
            service_tiers=tuple(m.get("service_tiers", ["default"])),
            tiers_source=_source(m.get("service_tiers_source", ""), sources),
        )  # fmt: skip
        models.append((m["match"], info))
    return ModelTable(default, rules, tuple(models), sources)


def _read(path: Path | None) -> ModelTable:
    if path is None:
        text = resources.files("capacity").joinpath("data/bedrock_models.json").read_text("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    try:
        return _parse(json.loads(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"model table {path or 'bedrock_models.json'} is invalid: {exc}"
        ) from exc


@lru_cache(maxsize=1)
def _shipped() -> ModelTable:
    return _read(None)


def load_model_table(path: str | Path | None = None) -> ModelTable:
    """The shipped table (read once), or the JSON file at ``path`` (same layout) to override it."""
    return _shipped() if path is None else _read(Path(path))


def burndown_for(model_id: str | None, table: ModelTable | None = None) -> Burndown:
    """Output-token burndown of ``model_id``: 5 for Claude 3.7 Sonnet and the Claude 4 family,
    1 otherwise (and for None or unknown ids)."""
    return (table or load_model_table()).burndown_for(model_id)


def resolve_burndown(
    workload_burndown: float | None, model_id: str | None, table: ModelTable | None = None
) -> Burndown:
    """The burndown to use: the workload's override if given, else the table's for ``model_id``."""
    if workload_burndown is not None:
        return Burndown(float(workload_burndown), "Workload.burndown", "given by the caller")
    return burndown_for(model_id, table)


def is_profile_id(model_id: str) -> bool:
    """Whether ``model_id`` names a geo or global cross-region inference profile (``us.…``)."""
    return model_id.startswith(PROFILE_PREFIXES)
