"""A probe taken by a client that was itself overloaded is measured as such and refused; the same
probe from a quiet client is accepted. Real sweeps over loopback against the emulator in its own
process; the client is loaded by a thread that holds the GIL."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import Endpoint, SweepConfig, run_sweep
from capacity.records import load_records
from capacity.serving import client_load, load_profile, probe_cells
from emulator.runner import EmulatorProcess
from llmcap.cli import main
from llmcap.embedded import client_level_warning

OUTPUT = 20


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The default profile slowed to a 30 ms step and a 1 s gateway delay, so that a quiet
    client on a busy test machine stays far inside the rule (2 steps: 60 ms; a tenth of TTFT:
    100 ms) and the GIL-holding thread below (100 ms stalls) far outside it."""
    raw = json.loads(
        (Path(__file__).parents[2] / "capacity/serving/profiles/llama3.3-70b-bedrock.json")
        .read_text(encoding="utf-8")
    )  # fmt: skip
    raw["name"] = "slow-steps"
    raw["serving"].update(t_w_s=0.03, alpha0_s=1.0)
    path = tmp_path_factory.mktemp("profile") / "slow-steps.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    load_profile(path)  # a valid profile
    with EmulatorProcess(path) as emu:
        yield emu.url


def sweep(url: str, out: Path) -> Path:
    config = SweepConfig(
        endpoint=Endpoint(provider="openai", endpoint_url=url), prompt="small", mode="interval",
        levels=(2, 5), batches=4, interval_s=0.25, max_tokens=OUTPUT, out=out, progress=False,
        workers=1,
    )  # fmt: skip
    return run_sweep(config, level_check=client_level_warning)


def loaded_sweep(url: str, out: Path) -> Path:
    """The sweep with another thread of the client's process burning the GIL: the loop gets it
    back only when the switch interval (100 ms) forces the hog to drop it."""
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.1)
    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    try:
        return sweep(url, out)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_a_quiet_client_is_accepted(
    emulator_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = sweep(emulator_url, tmp_path)
    assert "warning" not in capsys.readouterr().err
    records = load_records(run)
    loads = client_load(records)
    assert [load.level for load in loads] == [2, 5]
    assert not any(load.distorted for load in loads), [load.describe() for load in loads]
    assert records["loop_lag_s"].notna().all() and records["client_cpu_share"].notna().all()
    assert len(probe_cells(records)) == 2  # calibration takes it
    assert main(["summarize", str(run)]) == 0
    out = capsys.readouterr().out
    assert "The client's own load per level" in out and "DISTORTED" not in out


def test_an_overloaded_client_measures_it_and_calibration_refuses(
    emulator_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = loaded_sweep(emulator_url, tmp_path)
    # the end of each level said so
    err = capsys.readouterr().err
    for level in (2, 5):
        assert f"warning: small level {level}: the client was overloaded" in err, err
    assert "`llmcap twin fit` will refuse this run; rerun " in err
    records = load_records(run)
    loads = client_load(records)
    assert all(load.distorted for load in loads)
    assert all(load.lag_p50_s > 0.06 for load in loads)  # ≈ the 100 ms switch interval
    code = main(["twin", "fit", str(run), "-o", str(tmp_path / "twin.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: the client was overloaded during small levels 2 and 5 (worst, ")
    # the hog burned this process's CPU: saturated, unless the machine gave it less than 80 %
    assert err.endswith(("the client itself was saturated), so its timings carry its own "
                         "stalls; rerun with --workers", "or with --workers"))  # fmt: skip
    assert not (tmp_path / "twin.json").exists()
    assert main(["summarize", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.count("DISTORTED") == 2 and "warning: the client was overloaded" in out
