"""``CapacityModel``: fitted throughput and latency curves per prompt size, and predictions.

Per measured prompt size a ``PromptModel`` holds two USL fits against in-flight concurrency —
``decode`` (median per-request tps) and ``throughput`` (system output tokens/s per in-flight
request, X/N) — and quantile curves of TTFT, TTLT and the slow tail of tps. ``predict``
interpolates linearly in input tokens between the measured sizes (extrapolating linearly, and
flagging it, outside them). Saved as versioned JSON that reads back bit for bit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from capacity._jsonio import need
from capacity.errors import CapacityError, ModelFileError
from capacity.fitting._predict import blend, find_knees, finish, predict_point
from capacity.fitting._prompt import Basis, Floats, Knees, PromptModel
from capacity.planning import Slo
from capacity.prediction import Prediction

FORMAT = "llmcap.capacity-model"


@dataclass(frozen=True)
class CapacityModel:
    """Fitted performance curves per prompt size; ``predict`` returns a ``Prediction``.

    ``concurrency`` says what N is: ``measured`` time-weighted in-flight requests (default) or
    the ``offered`` level. Build one with ``capacity.fit_capacity``.
    """

    prompts: tuple[PromptModel, ...]
    concurrency: Basis
    model_id: str
    notes: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    """The load modes of the fitted runs (empty for files written before modes were stored)."""
    VERSION: ClassVar[int] = 1

    @property
    def concurrency_is_in_flight(self) -> bool:
        """Whether N counts requests in flight — measured, or the offered level of closed-loop
        sweeps only — so that Little's law (the planner) applies."""
        if self.concurrency == "measured":
            return True
        return not set(self.modes) & {"interval", "rate", "sequential"}

    def prompt(self, label: str) -> PromptModel:
        """The prompt model labelled ``label``."""
        for pm in self.prompts:
            if pm.prompt_label == label:
                return pm
        known = ", ".join(p.prompt_label for p in self.prompts)
        raise KeyError(f"no prompt labelled {label!r}; the model has {known}")

    def curves(self, concurrency: Floats, input_tokens: float) -> dict[str, Floats]:
        """Every predicted quantity at an array of concurrencies (for plots and searches):
        ``tps_p50``, ``tps_p5``, ``system_output_tps``, ``ttft_<q>``, ``ttlt_<q>``."""
        raw, notes, _ = blend(self.prompts, np.asarray(concurrency, np.float64), input_tokens)
        return finish(raw, notes)

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """Performance at ``concurrency`` requests in flight with ``input_tokens`` prompts."""
        return predict_point(self.prompts, concurrency, input_tokens)

    def knees(
        self,
        input_tokens: float,
        *,
        slo: Slo | None = None,
        output_tokens: float | None = None,
        efficiency: float = 0.8,
    ) -> Knees:
        """Knees for ``input_tokens`` prompts and ``output_tokens`` answers (default: the fitted
        output length), read off the planner's capacity curve (``capacity.planning``): N* where
        requests/s peaks, and the largest N meeting ``slo``. ``efficient_concurrency`` is where
        the USL's token-throughput efficiency X/(λN) falls to ``efficiency``."""
        return find_knees(self.prompts, self, input_tokens, slo, output_tokens, efficiency)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document."""
        return {
            "format": FORMAT,
            "version": self.VERSION,
            "concurrency": self.concurrency,
            "model_id": self.model_id,
            "notes": list(self.notes),
            "modes": list(self.modes),
            "prompts": [p.to_dict() for p in self.prompts],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CapacityModel:
        """Read a document written by ``to_dict``; raises ``ModelFileError``."""
        if need(doc, "format", "model") != FORMAT:
            raise ModelFileError(f"not an llmcap capacity model (format {doc['format']!r})")
        version = need(doc, "version", "model")
        if not isinstance(version, int) or version > cls.VERSION:
            raise ModelFileError(
                f"model version {version!r} is newer than this llmcap reads ({cls.VERSION}); "
                "upgrade llmcap"
            )
        basis = need(doc, "concurrency", "model")
        if basis not in ("measured", "offered"):
            raise ModelFileError(f"concurrency must be measured or offered, got {basis!r}")
        prompts = need(doc, "prompts", "model")
        if not isinstance(prompts, list) or not prompts:
            raise ModelFileError("model.prompts must be a non-empty list")
        return cls(
            prompts=tuple(PromptModel.from_dict(p, f"prompts[{i}]") for i, p in enumerate(prompts)),
            concurrency=basis,
            model_id=str(need(doc, "model_id", "model")),
            notes=tuple(str(n) for n in need(doc, "notes", "model")),
            modes=tuple(str(m) for m in doc.get("modes", [])),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as JSON (atomically); returns the path."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", "utf-8")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CapacityModel:
        """Read a model written by ``save``; raises ``ModelFileError`` naming the problem."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelFileError(f"{p}: cannot read ({exc.strerror}); check the path") from exc
        except json.JSONDecodeError as exc:
            raise ModelFileError(
                f"{p}: not JSON ({exc.msg} at line {exc.lineno}); write it with `llmcap fit -o`"
            ) from exc
        try:
            return cls.from_dict(doc)
        except CapacityError as exc:
            raise ModelFileError(f"{p}: {exc}") from exc
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{p}: malformed model ({exc})") from exc
