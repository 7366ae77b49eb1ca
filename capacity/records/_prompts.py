"""Measured prompt sizes of a records frame (``capacity.planning.PromptSize`` per label)."""

from __future__ import annotations

import math

import pandas as pd

from capacity.planning import PromptSize

__all__ = ["prompt_sizes"]


def prompt_sizes(records: pd.DataFrame) -> tuple[PromptSize, ...]:
    """Per prompt label: mean input and output tokens of the ok requests and the largest
    ``max_tokens`` sent (the mean output when the records carry none)."""
    ok = records[records["status"] == "ok"]
    out = []
    for label, group in ok.groupby("prompt_label", sort=True):
        inp = float(group["input_tokens"].mean())
        outp = float(group["output_tokens"].mean())
        top = float(group["max_tokens"].max()) if "max_tokens" in group else math.nan
        if not (math.isfinite(inp) and inp > 0 and math.isfinite(outp) and outp > 0):
            continue
        out.append(PromptSize(str(label), inp, outp, top if math.isfinite(top) else outp))
    return tuple(out)
