"""The emulator's own event loop: uvloop unless ``LLMCAP_EVENT_LOOP=asyncio``.

The emulator writes tens of thousands of stream events a second; uvloop's C transports make each
write several times cheaper (docs/performance.md). It is a separate program from the load
generator, so it chooses its loop itself.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["new_event_loop", "run"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop where uvloop is installed and not disabled; the standard loop otherwise."""
    use_uvloop = os.environ.get("LLMCAP_EVENT_LOOP") != "asyncio"
    if use_uvloop:
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new emulator loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
