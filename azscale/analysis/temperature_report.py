"""The report's pieces for the temperature study and the toy tree (kept out of sweep_report.py,
whose SECTIONS and zipf section call them with one line each).

- `temperature_section`: the sweep's temperature study (sweep.py's optional `temperature` step,
  `azscale temperature`), the table per temperature, the correlation and the paper's Fig. 3.
- `zipf_baselines`: the uniform toy tree (the paper's b = 7, d = 8) drawn beside the sweep's
  random-play and self-play curves (the paper's Fig. 2 with Fig. 1's curve), as frequencies.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .. import runs
from .plotting import copy_figures

TOY_BRANCHING, TOY_DEPTH = 7, 8          # the paper's Fig. 2


def temperature_section(sweep_dir: Path, figs_dir: Path) -> list[dict[str, Any]]:
    """[] when the sweep ran no temperature study; else one section."""
    from .temperature import summary_markdown

    study = Path(sweep_dir) / "temperature"
    f = study / "study.json"
    if not f.exists():
        return []
    res = runs.read_json(f, "study.json of azscale temperature")
    text = summary_markdown(res).split("\n", 2)[2]            # without its title line
    text = re.sub(r"^## ", "### ", text.split("\nFigures: ")[0], flags=re.M)
    lines = [text.rstrip(), "",
             "The paper (PAPER.md §4): at T ≥ 0.45 the tail exponent stays ~0.9–1.0 and rises as T falls (~1.27 at "
             "0.2, ~1.87 at 0.1, ~3.25 at 0.04); its Elo exponent rises with it (~0.79 → 0.92 over T ≤ 0.32).", ""]
    figs = copy_figures(study, res.get("figures", []), figs_dir)      # (their names start with temperature_)
    return [{"id": "temperature", "title": "Temperature study (Zipf tail against Elo exponent)",
             "source": "temperature/study.json, study.csv, temperature/T-*/ (one tournament per temperature)",
             "md": "\n".join(lines), "figures": figs}]


def zipf_baselines(analysis_dir: Path, figs_dir: Path) -> list[str]:
    """The toy tree beside random play and self-play, as a figure in the Zipf section."""
    from .toytree import envelope_exponent, plot_beside, read_counts, staircase

    others = []
    for name in ("zipf", "zipf-random"):
        d = Path(analysis_dir) / name
        if (d / "states.parquet").exists():
            sc, label = read_counts(d)
            others.append((("self-play (combined): " if name == "zipf" else "random play: ") + label.split(": ", 1)[1],
                           sc))
    levels = staircase(TOY_BRANCHING, TOY_DEPTH)
    alpha = envelope_exponent(levels)
    plot_beside(levels, alpha, TOY_BRANCHING, TOY_DEPTH, others, Path(figs_dir) / "zipf_toy_tree",
                title=f"toy model (uniform tree b={TOY_BRANCHING}, d={TOY_DEPTH}, envelope α = {alpha:.3f}) beside "
                      "random play and self-play")
    return ["zipf_toy_tree.png"]
