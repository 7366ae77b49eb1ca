"""``EmulatorProcess(own_core=True)``: the emulator on a core of its own, the caller off it until
the emulator stops (and back on every core it had after, even when start-up fails)."""

from __future__ import annotations

import os
import urllib.request

import pytest

from emulator.runner import EmulatorError, EmulatorProcess, split_cores

needs_two = pytest.mark.skipif(split_cores() is None, reason="needs two CPUs and Linux affinity")


@needs_two
def test_own_core_pins_the_emulator_and_keeps_the_caller_off_it() -> None:
    before = os.sched_getaffinity(0)
    with EmulatorProcess("fast", own_core=True) as emu:
        assert emu._proc is not None
        server = os.sched_getaffinity(emu._proc.pid)
        caller = os.sched_getaffinity(0)
        assert len(server) == 1 and not server & caller and server | caller == before
        with urllib.request.urlopen(f"{emu.url}/health", timeout=5) as resp:
            assert resp.status == 200
    assert os.sched_getaffinity(0) == before


@needs_two
def test_a_failed_start_gives_the_cores_back() -> None:
    before = os.sched_getaffinity(0)
    with pytest.raises(EmulatorError, match="exited at start-up"):
        EmulatorProcess("no-such-profile", own_core=True).start()
    assert os.sched_getaffinity(0) == before


def test_shared_by_default() -> None:
    before = os.sched_getaffinity(0)
    with EmulatorProcess("fast") as emu:
        assert emu._proc is not None and os.sched_getaffinity(emu._proc.pid) == before
        assert os.sched_getaffinity(0) == before
