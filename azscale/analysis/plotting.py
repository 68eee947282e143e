"""Colours shared by the figures, so that a model size or a curve looks the same in every plot."""
from __future__ import annotations


def size_colours(params) -> dict:
    """viridis on log10(parameters), smallest dark to largest yellow: {params: colour}."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    sizes = sorted(set(params))
    if not sizes:
        return {}
    norm = LogNorm(vmin=sizes[0], vmax=sizes[-1] * 1.0001)  # one size: a valid, non-empty range
    return {p: colormaps["viridis"](norm(p)) for p in sizes}


def curve_colours(labels: list[str]) -> list:
    """One colour per curve: the pooled curve ('combined') in black, the others from tab10, or
    tab20 when there are more than ten (tab10 repeats its colours after ten)."""
    from matplotlib import colormaps

    n = sum(lab != "combined" for lab in labels)
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    out, k = [], 0
    for lab in labels:
        if lab == "combined":
            out.append("k")
        else:
            out.append(cmap(k % cmap.N))
            k += 1
    return out
