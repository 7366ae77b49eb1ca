"""The built-in Bedrock-runtime- and OpenAI-compatible emulator (docs/architecture.md).

``Emulator`` serves it on 127.0.0.1 from a background thread; ``simulate`` runs the same serving
core in virtual time. Profiles (``load_profile``) hold its coefficients, models, quotas, faults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from capacity.serving import (
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    SimRequest,
    SimResult,
    interval_schedule,
    load_profile,
    simulate,
    simulate_closed_loop,
)

if TYPE_CHECKING:
    from emulator.runner import Emulator, EmulatorError


def __getattr__(name: str) -> Any:
    # The HTTP server (aiohttp) loads only when asked for: virtual-time users never need it.
    if name in ("Emulator", "EmulatorError"):
        from emulator import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")


__all__ = [
    "DEFAULT_PROFILE",
    "Emulator",
    "EmulatorError",
    "Profile",
    "ProfileError",
    "SimRequest",
    "SimResult",
    "interval_schedule",
    "load_profile",
    "simulate",
    "simulate_closed_loop",
]
