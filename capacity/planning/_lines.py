"""The quota lines to file: each value with the model table's code, name and published default
(bedrock-runtime's TPM, RPM, TPD; bedrock-mantle's input and output TPM)."""

from __future__ import annotations

from dataclasses import dataclass

from capacity.serving import Endpoint, Scope, load_model_table

__all__ = ["QuotaLine", "quota_lines"]


@dataclass(frozen=True)
class QuotaLine:
    """One value to ask AWS Support for: ``kind`` (tpm, rpm, tpd), the ``value``, and where the
    data table knows them, the quota ``code``, ``name`` and published ``default``."""

    kind: str
    """tpm, rpm, tpd (bedrock-runtime) or input_tpm, output_tpm (bedrock-mantle)."""
    value: int
    code: str | None
    name: str | None
    default: float | None


def quota_lines(
    endpoint: Endpoint,
    model_id: str | None,
    scope: Scope,
    asked: dict[str, int],
    rpm: int,
    tpd: int | None,
    rpm_enforced: bool | None,
) -> tuple[tuple[QuotaLine, ...], bool]:
    """The quota lines to file, with the model table's codes and names, and whether RPM is
    among them."""
    table = load_model_table()
    if endpoint == "mantle":
        known_m = {q.kind: q for q in table.mantle_quotas_for(model_id)} if model_id else {}
        return tuple(
            QuotaLine(kind, value, known_m[kind].code if kind in known_m else None,
                      known_m[kind].name if kind in known_m else None,
                      known_m[kind].default if kind in known_m else None)
            for kind, value in asked.items()
        ), False  # fmt: skip
    known = {q.kind: q for q in table.quotas_for(model_id, scope)} if model_id else {}
    if rpm_enforced is None:
        rpm_enforced = "rpm" in known and known["rpm"].enforced
    values: list[tuple[str, int | None]] = [("tpm", asked["tpm"]), ("rpm", rpm), ("tpd", tpd)]
    lines = tuple(
        QuotaLine(
            kind,
            value,
            known[kind].code if kind in known else None,
            known[kind].name if kind in known else None,
            known[kind].default if kind in known else None,
        )
        for kind, value in values
        if value is not None and (kind != "rpm" or rpm_enforced)
    )
    return lines, rpm_enforced
