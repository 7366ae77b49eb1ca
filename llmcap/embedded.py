"""The embedded default: a sweep with no endpoint measures the built-in emulator.

``bench`` reaches endpoints by URL and never starts one; this composition-root helper starts the
emulator in a child process (so it never shares the client's GIL), on a core of its own when the
machine has two or more (so it is never woken on the load generator's core), when the sweep's
configuration names neither an endpoint URL nor a Region, and hands its URL to the sweep
(docs/architecture.md, "Composition").
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import SweepConfig, SweepError, run_sweep
from bench.prompts import load_prompt_sets
from bench.rundir import read_config
from capacity.errors import RecordsError
from capacity.serving import DEFAULT_PROFILE
from emulator.runner import EmulatorProcess

__all__ = ["client_level_warning", "run_sweep_embedded"]


def client_level_warning(rows: list[dict[str, Any]]) -> str | None:
    """The end-of-level warning when the client's own stalls distorted the level it just
    measured (``capacity.serving.ClientLoad.distorted``: the rule calibration refuses on)."""
    import pandas as pd

    from capacity.records import validate_records
    from capacity.serving import client_load

    try:
        records = validate_records(pd.DataFrame(rows), source="the level's rows")
    except RecordsError:  # judged again, with the message, when the run is loaded
        return None
    for load in client_load(records):
        if load.distorted:
            return (
                f"the client was overloaded ({load.describe()}), so its timings carry its own "
                f"stalls and `llmcap twin fit` will refuse this run; {load.fix}"
            )
    return None


def run_sweep_embedded(config: SweepConfig | None = None, *, resume: Path | None = None) -> Path:
    """``bench.run_sweep``, against the built-in emulator when no endpoint is configured.

    The profile used is stored in the run's configuration (``emulator_profile``), so
    ``--resume`` measures the same emulator again.
    """
    if resume is not None:
        config = read_config(resume)
    if config is None:
        raise SweepError("a sweep needs a configuration or a run directory to resume")
    endpoint = config.endpoint
    check = client_level_warning
    if endpoint.endpoint_url is not None or endpoint.region is not None:
        return run_sweep(config, resume=resume, level_check=check)
    profile = config.emulator_profile or DEFAULT_PROFILE
    if resume is None:
        config = replace(config, emulator_profile=profile)
    config.validate()  # bad settings fail before the emulator starts
    load_prompt_sets(config.prompt)
    with EmulatorProcess(profile, seed=config.seed, own_core=True) as emu:
        print(
            f"No --endpoint-url or --region given: measuring the built-in emulator "
            f"(profile {profile}) at {emu.url}. Pass --region to measure Amazon Bedrock.",
            file=sys.stderr,
        )
        if resume is not None:
            return run_sweep(resume=resume, live_endpoint_url=emu.url, level_check=check)
        return run_sweep(config, live_endpoint_url=emu.url, level_check=check)
