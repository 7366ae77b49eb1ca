"""The event loop llmcap runs on: uvloop where installed, else the standard loop.

Both sides of a measurement are event-loop bound: the emulator writes tens of thousands of
stream events a second and the load generator reads them. uvloop's C transports make each of
those several times cheaper (figures in docs/performance.md). ``LLMCAP_EVENT_LOOP=asyncio``
forces the standard loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new uvloop loop if uvloop is installed (and not disabled), else a standard one."""
    if os.environ.get("LLMCAP_EVENT_LOOP") == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on llmcap's preferred event loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
