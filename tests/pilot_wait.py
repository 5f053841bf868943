"""Waiting in Pilot tests for what a widget's timer does, without betting on how fast the machine is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

WAIT_S = 10.0
"""How long a condition may take: far beyond a timer's interval, so only a widget that never does it fails."""


async def until(pilot: Any, condition: Callable[[], bool], *, timeout_s: float = WAIT_S) -> None:
    """Let the app run until `condition()` holds, or `timeout_s` has passed (the caller's assert then says what)."""
    for _ in range(int(timeout_s / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
