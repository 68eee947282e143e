"""Numbers as people write them in a report: `10²`, `2·10⁶`, `21,128`, `0.94 [0.90, 1.00]`,
never `-0`, never `2000000.0 (= 2000000)`."""

from __future__ import annotations

import math
import re
from typing import Any

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def num(x: Any, nd: int = 3) -> str:
    """`x` with `nd` decimals; `n/a` when missing; a value that rounds to zero is `0`, not `-0`."""
    if missing(x):
        return "n/a"
    v = round(float(x), nd)
    if v == 0:
        v = 0.0
    return f"{v:,.{nd}f}" if abs(v) >= 1000 else f"{v:.{nd}f}"


def integer(x: Any) -> str:
    return "n/a" if missing(x) else f"{int(round(float(x))) + 0:,}"


def power(x: Any) -> str:
    """A round count as a power of ten (`100` -> `10²`, `2000000` -> `2·10⁶`); others with
    thousands separators."""
    if missing(x):
        return "n/a"
    v = float(x)
    if v == int(v) and v >= 100:
        n = int(v)
        k = len(str(n)) - 1
        lead, rest = divmod(n, 10 ** k)
        if rest == 0:
            return f"10{str(k).translate(_SUP)}" if lead == 1 else f"{lead}·10{str(k).translate(_SUP)}"
    return f"{int(v):,}" if v == int(v) else f"{v:g}"


def ci(lo: Any, hi: Any, nd: int = 3) -> str:
    return "n/a" if missing(lo) or missing(hi) else f"[{num(lo, nd)}, {num(hi, nd)}]"


def with_ci(x: Any, lo: Any, hi: Any, nd: int = 3) -> str:
    return num(x, nd) if missing(lo) or missing(hi) else f"{num(x, nd)} {ci(lo, hi, nd)}"


_RANKS = re.compile(r"ranks ([0-9.e+]+) to ([0-9.e+]+|n/100) \(= (\d+)\)")
_BIG = re.compile(r"(?<![\w.·])(\d{5,})(?:\.0)?(?![\w.])")


def ranges(text: str) -> str:
    """A fit window written by zipf (any version) in people's notation: `ranks 100 to 2000000.0
    (= 2000000)` -> `ranks 10² to 2·10⁶`; `(= 1885812)` where the data end earlier -> `(the data
    end at rank 1,885,812)`; `n/100 (= 2921)` -> `n/10² = 2,921`; other long numbers with commas."""
    def rank_window(m: re.Match) -> str:
        lo, hi, got = m.group(1), m.group(2), int(m.group(3))
        if hi == "n/100":
            return f"ranks {power(float(lo))} to n/10² = {got:,}"
        hi_v = float(hi)
        tail = "" if int(hi_v) == got else f" (the data end at rank {got:,})"
        return f"ranks {power(float(lo))} to {power(hi_v)}{tail}"
    text = _RANKS.sub(rank_window, str(text)).replace(" >= ", " ≥ ")
    return _BIG.sub(lambda m: f"{int(m.group(1)):,}", text)


def fit_window(fw: dict[str, Any] | None) -> str:
    """A zipf `fit_window` record in words."""
    if not isinstance(fw, dict):
        return "not recorded"
    weight = str(fw.get("weight", "")).replace("sqrt(rank)", "√rank")
    if fw.get("kind") == "ranks":
        hi = "n/10²" if fw.get("hi") == "n/100" else power(fw.get("hi"))
        return f"ranks {power(fw.get('lo'))} to {hi}, weight {weight}"
    if fw.get("kind") == "counts":
        return f"the ranks where the count falls from {power(fw.get('lo'))} to {power(fw.get('hi'))}, weight {weight}"
    return str(fw)
