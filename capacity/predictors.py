"""Predictor files: the one loader of ``model.json`` (a fitted ``CapacityModel``) and
``twin.json`` (a calibrated ``Twin``), and the one description of where a plan's latency curve
came from. ``llmcap plan``, ``llmcap report`` and the app all go through here.

Both kinds are ``capacity.prediction.Predictor``s; they are told apart by the file's
``"format"`` tag. The fitting and serving modules are imported only when a file needs them
(this module sits beside ``capacity.prediction``, not inside it, so that ``capacity.planning``
keeps needing no fits: docs/architecture.md, "Allowed imports").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capacity.errors import CapacityError, ModelFileError
from capacity.prediction import Predictor

if TYPE_CHECKING:
    from capacity.fitting import CapacityModel
    from capacity.serving import Twin

FIX = "pass a model.json from `llmcap fit` or a twin.json from `llmcap twin fit`"
"""What to give instead of a file that is not a predictor."""


def load_predictor(path: str | os.PathLike[str]) -> CapacityModel | Twin:
    """The ``CapacityModel`` or ``Twin`` saved at ``path``, by its ``"format"`` tag.

    Raises ``ModelFileError`` (a ``ValueError``) naming the file, what is wrong and the fix.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFileError(f"{p}: cannot read ({exc.strerror or exc}) — check the path") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{p}: not JSON ({exc}) — {FIX}") from exc
    tag = raw.get("format") if isinstance(raw, dict) else None
    from capacity.serving import TWIN_FORMAT, Twin

    if tag == TWIN_FORMAT:
        return Twin.from_dict(raw, origin=str(p))
    from capacity.fitting import MODEL_FORMAT as FORMAT, CapacityModel

    if tag != FORMAT:
        found = "no format tag" if tag is None else f"format {tag!r}"
        raise ModelFileError(
            f"{p}: not a performance model ({found}; expected {FORMAT!r} or {TWIN_FORMAT!r}) "
            f"— {FIX}"
        )
    try:
        return CapacityModel.load(p)
    except CapacityError as exc:
        raise ModelFileError(f"{exc} — refit it with `llmcap fit RUN -o model.json`") from exc


@dataclass(frozen=True)
class PredictorInfo:
    """Where a plan's latency curve came from: ``kind`` (``fitted`` or ``twin``), one sentence
    (``source``), what the model knows (``details``: a twin's coefficients, replicas and what
    its probe could not pin down) and, at an operating point, its extrapolation ``notes``."""

    kind: str
    source: str
    details: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def is_twin(self) -> bool:
        """Whether the curve came from a calibrated twin."""
        return self.kind == "twin"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "source": self.source,
            "details": list(self.details),
            "notes": list(self.notes),
        }


def describe_predictor(
    model: Predictor | None,
    inflight: float | None = None,
    input_tokens: float | None = None,
) -> PredictorInfo | None:
    """What ``model`` is (None without one); with an operating point (``inflight`` requests
    with ``input_tokens`` prompts), what it says about extrapolating there."""
    if model is None:
        return None
    from capacity.serving import Twin

    at = None if inflight is None or input_tokens is None else (max(inflight, 1.0), input_tokens)
    if isinstance(model, Twin):
        said = {f"{k}: {why}" for k, why in model.identification.not_identified.items()}
        found = [] if at is None else model.extrapolation_notes(*at)[1]
        return PredictorInfo(  # identification is in the details: the notes add the point's
            "twin", model.SOURCE, model.describe(), tuple(n for n in found if n not in said)
        )
    prompts = getattr(model, "prompts", None)
    if prompts is None:  # any other Predictor
        return PredictorInfo("other", f"The latency curve came from {type(model).__name__}.")
    sizes = ", ".join(f"{pm.prompt_label} ({pm.input_tokens:,.0f} tokens)" for pm in prompts)
    top = max(float(pm.n_max) for pm in prompts)
    details = (
        f"fitted on prompt sizes {sizes}, measured up to {top:,.0f} requests in flight",
        *(str(n) for n in getattr(model, "notes", ())),
    )
    notes: tuple[str, ...] = () if at is None else tuple(model.predict(*at).notes)
    return PredictorInfo(
        "fitted",
        "The latency curve came from a fitted CapacityModel (model.json, `llmcap fit`): USL "
        "and quantile-regression curves of the measured runs, per prompt size.",
        details,
        notes,
    )
