"""What every figure shares: the palette (a model size or a curve looks the same in every plot),
matplotlib's off-screen backend (`pyplot`) and the one way figures are written (`save`)."""
from __future__ import annotations

from pathlib import Path

from ..runs import naming


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


def copy_figures(src: Path, names, figs_dir: Path, prefix: str = "") -> list[str]:
    """Copy a result's figures (PNG and SVG, as its result file lists them) into a report's
    figures/, as PREFIX_NAME (or NAME); return the PNGs' new names."""
    import shutil
    out = []
    for x in names:
        name = f"{prefix}_{x}" if prefix else x
        with naming(Path(figs_dir) / name):
            shutil.copy(Path(src) / x, Path(figs_dir) / name)
        if x.endswith(".png"):
            out.append(name)
    return out


def pyplot():
    """matplotlib.pyplot on the off-screen backend (Agg): figures are only ever written to files."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, stem, dpi: int = 120, names: bool = False) -> list[str]:
    """Write a figure as STEM.png and STEM.svg and close it. Returns the two paths as given by
    `stem`, or with `names` the two file names (what a result file lists beside itself). Each
    file is rendered in memory and written atomically (`runs.atomic_write_bytes`), like every
    other file: a full disk leaves the earlier figure or none, never a truncated one."""
    import io

    from ..runs import atomic_write_bytes
    out = []
    try:
        for ext in ("png", "svg"):
            p = f"{stem}.{ext}"
            buf = io.BytesIO()
            fig.savefig(buf, dpi=dpi, format=ext)
            with naming(p):
                atomic_write_bytes(Path(p), buf.getvalue())
            out.append(Path(p).name if names else p)
    finally:
        pyplot().close(fig)
    return out


# One palette for every figure: a model size is its viridis colour (`size_colours`), a seed of
# that size its line style and marker (`SEED_STYLES`), other curves take tab10 (`curve_colours`),
# and reference players (random, MCTS, perfect) are grey and dashed, drawn as references, never
# as sizes.
SEED_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"), ((0, (1, 1)), "P"))
REFERENCE_COLOUR = "0.45"
REFERENCE_STYLE = {"color": REFERENCE_COLOUR, "ls": "--", "lw": 1.0}


def run_styles(runs) -> dict:
    """{run: {"color", "ls", "marker", "label"}} for runs given as (run, params, seed), ordered
    smallest to largest, then by seed (a legend drawn in this order reads by size)."""
    runs = sorted(set((str(r), int(p), int(s)) for r, p, s in runs), key=lambda x: (x[1], x[2], x[0]))
    colour = size_colours(p for _, p, _ in runs)
    seeds = sorted({s for _, _, s in runs})
    out = {}
    for r, p, s in runs:
        ls, marker = SEED_STYLES[seeds.index(s) % len(SEED_STYLES)]
        out[r] = {"color": colour[p], "ls": ls, "marker": marker, "label": f"{p:,} params, seed {s}"}
    return out


def seed_of(run: str) -> int:
    """The seed in a sweep's run name (`...-s<S>`), 0 when the name carries none."""
    import re
    m = re.search(r"-s(\d+)$", str(run))
    return int(m.group(1)) if m else 0
