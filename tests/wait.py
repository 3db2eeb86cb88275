"""Wait on a condition instead of sleeping: poll until a function returns something truthy."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


def wait_for(condition: Callable[[], T], timeout_seconds: float = 60.0, interval_seconds: float = 0.2,
             what: str = "condition") -> T:
    """Return the first truthy value of `condition()`; exceptions count as not yet. Fails after the timeout
    with the last value or error, so a failing test says what it was waiting for."""
    deadline = time.monotonic() + timeout_seconds
    last: object = None
    while True:
        try:
            value = condition()
            if value:
                return value
            last = value
        except Exception as err:  # noqa: BLE001 - transient API errors are part of waiting
            last = err
        if time.monotonic() >= deadline:
            raise ConditionTimeout(f"timed out after {timeout_seconds}s waiting for {what}; last: {last!r}")
        time.sleep(interval_seconds)
