"""The import rules of docs/architecture.md that a fresh interpreter can see (import-linter, run
by `make lint`, checks the package graph; these check what an import costs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "statement",
    [
        "import capacity.planning",
        "import capacity.serving",
        "from capacity import Quota, Workload, plan_capacity",
    ],
)
def test_planning_and_serving_load_neither_pandas_nor_statsmodels(statement: str) -> None:
    mods = loaded_after(statement)
    assert "pandas" not in mods and "statsmodels" not in mods, statement
    assert "numba" not in mods, statement  # the batch replay compiles on first use only


def test_the_emulators_ledger_loads_neither_numpy_nor_numba() -> None:
    mods = loaded_after("from capacity.serving import QuotaLedger, QuotaLimits, simulate_quota")
    assert "numpy" not in mods and "numba" not in mods
    mods = loaded_after("from capacity.serving import RequestArrays, replay")
    assert "numpy" in mods and "numba" not in mods  # numba: when the first replay runs


def test_the_emulator_does_not_load_the_load_generator_or_the_fits() -> None:
    mods = loaded_after("import emulator; from emulator.runner import Emulator")
    assert not {m for m in mods if m.split(".")[0] in ("bench", "llmcap", "app")}
    assert not {m for m in mods if m.startswith(("capacity.fitting", "capacity.records"))}
    assert "statsmodels" not in mods


def test_bench_does_not_load_capacity_or_the_emulator() -> None:
    mods = loaded_after("import bench; from bench.sweep import run_sweep")
    assert not {m for m in mods if m.split(".")[0] in ("capacity", "emulator", "llmcap", "app")}
