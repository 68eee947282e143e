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


def temperature_colours(temperatures) -> dict:
    """plasma on log10(temperature), coldest dark to hottest yellow: {temperature: colour}."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    ts = sorted(set(float(t) for t in temperatures))
    if not ts:
        return {}
    norm = LogNorm(vmin=ts[0], vmax=ts[-1] * 1.0001)
    return {t: colormaps["plasma"](0.85 * norm(t)) for t in ts}     # (plasma's last yellow is hard to see)


def save_png_svg(fig, stem) -> list[str]:
    """Write a figure as STEM.png and STEM.svg, close it, return the two paths."""
    import matplotlib.pyplot as plt

    out = []
    for ext in ("png", "svg"):
        p = f"{stem}.{ext}"
        fig.savefig(p, dpi=120)
        out.append(p)
    plt.close(fig)
    return out
