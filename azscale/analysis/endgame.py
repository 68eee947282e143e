"""End-game views of a states table (PAPER.md section 7).

A state is *late* when its mean turn number over its occurrences is >= `threshold` (default 40).
`late_share_by_rank` gives the share of late states in log-spaced rank bins; `early_counts`
gives the counts of the early states only, re-ranked, for the curve without late states.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .plotting import curve_colours

LATE_TURN = 40


def late_share_by_rank(counts: np.ndarray, mean_turn: np.ndarray, threshold: float = LATE_TURN,
                       bins_per_decade: int = 4) -> pd.DataFrame:
    """Rows: rank bin [lo, hi), states in it, share of late states, mean of mean_turn.
    `counts` and `mean_turn` must be in rank order (decreasing count)."""
    n = len(counts)
    if n == 0:
        return pd.DataFrame(columns=["rank_lo", "rank_hi", "states", "late_share", "mean_turn"])
    edges = np.unique(np.floor(np.logspace(0, np.log10(n + 1), int(np.ceil(np.log10(n + 1) * bins_per_decade)) + 1)).astype(np.int64))
    edges[-1] = n + 1
    late = np.asarray(mean_turn) >= threshold
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sl = slice(lo - 1, hi - 1)
        k = hi - lo
        if k <= 0:
            continue
        rows.append({"rank_lo": int(lo), "rank_hi": int(hi), "states": int(k),
                     "late_share": float(late[sl].mean()), "mean_turn": float(np.mean(mean_turn[sl]))})
    return pd.DataFrame(rows)


def early_counts(counts: np.ndarray, mean_turn: np.ndarray, threshold: float = LATE_TURN) -> np.ndarray:
    return np.asarray(counts)[np.asarray(mean_turn) < threshold]


def plot_late_share(tables: dict[str, pd.DataFrame], path_stem, threshold: float) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, t), colour in zip(tables.items(), curve_colours(list(tables))):
        if len(t):
            mid = np.sqrt(t["rank_lo"] * t["rank_hi"])
            ax.semilogx(mid, t["late_share"], "o-", ms=3, color=colour, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel(f"share of late states (mean turn >= {threshold:g})")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = []
    for ext in ("png", "svg"):
        fig.savefig(f"{path_stem}.{ext}", dpi=120)
        out.append(f"{path_stem}.{ext}")
    plt.close(fig)
    return out
