"""One setting's value, parsed and checked, with where it came from in every refusal.

Plain functions raising ``NbHarnessError``: the pytest plugin turns that into a usage
error at its edge, papermill's engine into its own one-line failure.
"""

from __future__ import annotations

import math

from ..errors import NbHarnessError


def positive_seconds(value: str, where: str) -> float:
    """A time limit: a finite number of seconds above zero."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise NbHarnessError(f"{where}: expected a positive number of seconds, got {value!r}")
    if math.isinf(seconds):
        # A limit is a number of seconds to wait; "no limit" hides a hung cell forever.
        raise NbHarnessError(
            f"{where}: expected a finite number of seconds, got {value!r} "
            "(for a very long limit give one, such as 86400)"
        )
    return seconds


def whole_number(value: str, where: str) -> int:
    """A count of at least 1."""
    if not value.isdigit() or int(value) < 1:
        raise NbHarnessError(f"{where}: expected a whole number of at least 1, got {value!r}")
    return int(value)
