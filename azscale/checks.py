"""The one rule for numbers that come from users (command-line options, `--set`, preset files).

A number is accepted only if it is finite, is an integer where an integer is meant, and lies in
the range the option allows; otherwise the user gets one line naming the option, the rule and
the value. `x <= 0` is False for NaN, so every bound here is checked as "inside", never as
"not outside".
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import UserError


def _describe(lo, hi, lo_open: bool, hi_open: bool, integer: bool) -> str:
    what = "an integer" if integer else "a finite number"
    fmt = (lambda x: f"{x:,}") if integer else (lambda x: f"{x:g}")
    if lo is not None and hi is not None:
        if integer and not lo_open and not hi_open:
            return f"{what} from {fmt(lo)} to {fmt(hi)}"
        return f"{what} in {'(' if lo_open else '['}{fmt(lo)}, {fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{what} {'>' if lo_open else '>='} {fmt(lo)}"
    if hi is not None:
        return f"{what} {'<' if hi_open else '<='} {fmt(hi)}"
    return what


def is_finite_number(x: Any) -> bool:
    """Whether a value read back from a file is a real, finite number (not a bool, a string, NaN
    or an infinity): for checking records, where a bad value is damage, not a user's mistake."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def number(value: Any, name: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> Any:
    """`value` if it is a finite number (an integer when `integer`) inside the bounds; else a
    UserError such as "--games must be an integer >= 1, got -3". Returns an int for integers
    (a whole float such as 1e3 becomes 1000) and a float otherwise."""
    want = _describe(lo, hi, lo_open, hi_open, integer)

    def bad() -> UserError:
        return UserError(f"{name} must be {want}, got {value!r}")

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise bad()
    if not math.isfinite(float(value)):
        raise bad()
    if integer:
        if isinstance(value, numbers.Integral):
            v: Any = int(value)
        elif float(value).is_integer():
            v = int(float(value))
        else:
            raise bad()
    else:
        v = float(value)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise bad()
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise bad()
    return v


def optional_number(value: Any, name: str, **rule: Any) -> Any:
    """`number` for an option that may be left out (None passes through)."""
    return None if value is None else number(value, name, **rule)


# Seeds feed numpy, torch and OpenSpiel's C++ generators; this range is valid for all of them.
SEED_MAX = 2**31 - 1
