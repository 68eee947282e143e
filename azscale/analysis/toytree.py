"""The paper's toy model (PAPER.md section 4, its Fig. 2): a uniform tree of branching b and depth d.

Play every path from the root to a leaf once: each of the b^k states at depth k (1 <= k < d) is
visited b^(d-k) times (the root is the initial state and the leaves are terminal, so neither is
counted, as for real games). Sorted, the counts form a staircase: level k occupies ranks
S(k-1)+1 .. S(k), S(k) = b + b^2 + ... + b^k, all at count b^(d-k). The envelope is the line
through the staircase's outer corners (S(k), b^(d-k)); its exponent (minus the least-squares
slope of log10 count on log10 rank over the corners) tends to 1 as d grows, since S(k) is about
b^(k+1)/(b-1) while the count falls by b per level.

Everything here is computed from the levels, so a tree of 10^12 states costs nothing; the
corners are exact integers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import runs
from ..checks import number
from ..errors import UserError

MAX_LOG10_VISITS = 18          # b^d paths of d-1 visits each must stay far inside int64


def check_tree(branching: Any, depth: Any) -> tuple[int, int]:
    b = number(branching, "--branching", lo=2, hi=10_000, integer=True)
    d = number(depth, "--depth", lo=3, hi=200, integer=True)
    if d * math.log10(b) + math.log10(d) > MAX_LOG10_VISITS:
        raise UserError(f"a uniform tree of branching {b} and depth {d} has {b}^{d} paths, more than 10^"
                        f"{MAX_LOG10_VISITS} visits; choose a smaller tree")
    return b, d


def staircase(branching: int, depth: int) -> pd.DataFrame:
    """One row per level k = 1 .. d-1: states b^k, their count b^(d-k), and the ranks they hold."""
    b, d = check_tree(branching, depth)
    rows, last = [], 0
    for k in range(1, d):
        n = b ** k
        rows.append({"depth": k, "states": n, "count": b ** (d - k), "rank_first": last + 1, "rank_last": last + n})
        last += n
    return pd.DataFrame(rows)


def envelope_exponent(levels: pd.DataFrame) -> float:
    """Minus the LS slope of log10(count) on log10(last rank) over the staircase's outer corners."""
    r = np.log10(levels["rank_last"].to_numpy(float))
    c = np.log10(levels["count"].to_numpy(float))
    return float(-np.polyfit(r, c, 1)[0])


def read_counts(zipf_dir: Path) -> tuple[np.ndarray, str]:
    """The sorted counts of a zipf analysis's states.parquet and a label for the figure."""
    from .states import read_states_table
    zipf_dir = Path(zipf_dir)
    f = zipf_dir / "states.parquet"
    if not f.is_file():
        raise UserError(f"{zipf_dir}: no states.parquet (give a directory written by azscale zipf)")
    t, meta = read_states_table(f, columns=["count"])
    counts = np.sort(t["count"].to_numpy())[::-1]
    if not len(counts) or counts.min() < 1:
        raise UserError(f"{f}: damaged states table (no counts, or a count below 1)")
    sel = meta["selection"]
    kinds = ", " + ",".join(sel["kinds"]) + " games" if sel.get("kinds") else ""
    label = f"{zipf_dir.name}: {meta['game']}{kinds} ({len(counts):,} states)"
    return counts, label


def plot_beside(levels: pd.DataFrame, alpha: float, branching: int, depth: int, others, stem: Path,
                title: str = "") -> list[str]:
    """The staircase (as visit frequency: count / all visits), its envelope, and other curves
    (label, sorted counts) on the same axes; PNG and SVG."""
    from .plotting import curve_colours, pyplot, save
    plt = pyplot()
    from .zipf import plot_points

    fig, ax = plt.subplots(figsize=(7, 5))
    visits = float((levels["states"] * levels["count"]).sum())
    x = np.ravel(np.column_stack([levels["rank_first"], levels["rank_last"]])).astype(float)
    y = np.repeat(levels["count"].to_numpy(float), 2) / visits
    ax.loglog(x, y, "-", color="k", lw=1.5, label=f"uniform tree b={branching}, d={depth} (staircase)")
    rr = levels["rank_last"].to_numpy(float)
    b0 = np.polyfit(np.log10(rr), np.log10(levels["count"].to_numpy(float) / visits), 1)[1]
    ax.loglog(rr, 10 ** b0 * rr ** -alpha, "--", color="grey", lw=1, label=f"envelope, α = {alpha:.3f}")
    for (label, sc), colour in zip(others, curve_colours([o[0] for o in others])):
        idx = plot_points(sc)
        ax.loglog(idx + 1.0, sc[idx] / float(sc.sum()), "-", lw=1.2, color=colour, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("frequency (share of all visits)")
    ax.set_title(title or f"toy model: uniform tree, branching {branching}, depth {depth}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return save(fig, stem)


def toy_tree(branching: int, depth: int, out: Path, compare: Sequence[Path] = ()) -> dict[str, Any]:
    """`azscale toy-tree`: the staircase, its envelope exponent, and a figure beside the curves
    of `compare` (zipf analysis directories)."""
    b, d = check_tree(branching, depth)
    compare = runs.distinct_sources(compare, "zipf analysis")
    pairs = [read_counts(p) for p in compare]
    others = [(lab, sc) for sc, lab in pairs]
    out = Path(out)
    runs.claim_dir(out, "toy-tree")
    levels = staircase(b, d)
    alpha = envelope_exponent(levels)
    out.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_text(out / "staircase.csv", levels.to_csv(index=False))
    figs = plot_beside(levels, alpha, b, d, others, out / "toy_tree")
    res = {"model": "uniform tree: every root-to-leaf path played once; root and leaves not counted",
           "branching": b, "depth": d, "states": int(levels["states"].sum()),
           "visits": int((levels["states"] * levels["count"]).sum()), "envelope_alpha": alpha,
           "envelope_fit": "least squares of log10(count) on log10(rank) over the outer corners (last rank of each "
                           "level), unweighted",
           "limit": "the envelope exponent tends to 1 as the depth grows (PAPER.md section 4)",
           "levels": levels.to_dict(orient="records"),
           "compared": [{"source": str(p), "label": lab, "distinct_states": int(len(sc))}
                        for p, (sc, lab) in zip(compare, pairs)],
           "figures": [Path(f).name for f in figs]}
    runs.atomic_write_json(out / "toy_tree.json", res)
    return res
