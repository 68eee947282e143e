"""The comparison report of a sweep: `report.md` and a self-contained `report.html` with figures.

Every number in the report is read from a table or JSON file in the sweep directory, and each
section names the file it came from.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import runs
from .analysis.plotting import size_colours
from .analysis.temperature_report import temperature_section, zipf_baselines
from .config import base_name
from .errors import UserError

# PAPER.md section 4 and 6: combined-curve Zipf exponents and Elo exponents reported by the paper.
PAPER_ZIPF = {"connect_four": 0.94, "pentago": 0.86, "oware": 1.02, "checkers": 0.80}
PAPER_RANDOM_ZIPF = {"connect_four": 0.97}
PAPER_ELO_EXPONENT = {"connect_four": 0.88, "pentago": 0.88}


def _read_json(p: Path) -> dict[str, Any] | None:
    return runs.read_json(p, "azscale result file") if p.exists() else None


def _interval_text(z: dict[str, Any]) -> str:
    iv = z.get("intervals")
    if iv is None:                       # fits.json from before intervals were recorded
        return ""
    if iv.get("method") in (None, "none"):
        return "No intervals (no resampling requested)."
    return (f"95% intervals: estimate ± 1.96 × the {iv['method']} standard error over games "
            f"({iv['replicates']} replicates); n/a where too few replicates gave a usable fit.")




def _training_figure(run_dirs: list[Path], out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    # smallest to largest: one colour per size (as in the loss figures), one line style per seed
    cfgs = sorted(((runs.read_run_config(rd), rd) for rd in run_dirs),
                  key=lambda c: (c[0]["params"], c[0].get("seed", 0), c[1].name))
    colour = size_colours(c["params"] for c, _ in cfgs)
    seeds = sorted({c.get("seed", 0) for c, _ in cfgs})
    for cfg, rd in cfgs:
        m = pd.DataFrame(runs.read_metrics(rd)[:runs.run_status(rd).done])
        if m.empty:
            continue
        lab = f"{rd.name} ({cfg['params']:,})"
        style = dict(lw=1, label=lab, color=colour[cfg["params"]],
                     ls=("-", "--", ":", "-.")[seeds.index(cfg.get("seed", 0)) % 4])
        axes[0].plot(m["step"], m["loss_value"], **style)
        axes[1].plot(m["step"], m["loss_policy"], **style)
    axes[0].set_ylabel("value loss (learner)")
    axes[1].set_ylabel("policy loss (learner)")
    for ax in axes:
        ax.set_xlabel("learner step")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    names = []
    for ext in ("png", "svg"):
        fig.savefig(out / f"training_curves.{ext}", dpi=110)
        names.append(f"training_curves.{ext}")
    plt.close(fig)
    return names


def _endgame_section(z: dict[str, Any], zr: dict[str, Any] | None) -> dict[str, Any]:
    """The paper's end-game evidence (PAPER.md section 7) and figures 5, 6a, 6b and the late boards."""
    from .analysis.endgame import evidence_lines
    eg = z.get("endgame") or {}
    if "applicable" not in eg:
        return {"title": "End game", "source": "analysis/zipf/fits.json",
                "md": "Not measured: analysis/zipf/fits.json predates the end-game evidence (rerun the zipf step).\n"}
    md = (f"Curve '{eg.get('curve', '?')}', state key `{z['key_scheme']}`, games `{z['selection']['window']}`; late = mean "
          f"turn ≥ {eg['late_turn']:g}; shoulder test on the first {eg['shoulder_moves']} moves of each game.\n\n"
          + "\n".join(evidence_lines(eg)) + "\n")
    if eg.get("bins"):
        md += "\n" + _md_table(pd.DataFrame([{"ranks": f"{b['rank_lo']:,}–{b['rank_hi'] - 1:,}", "states": b["states"],
                                              "late share": f"{b['late_share']:.3f}",
                                              "excess over all visits": f"{b['excess']:+.3f}"} for b in eg["bins"]])) + "\n"
    rg = (zr or {}).get("endgame") or {}
    if rg.get("measured"):
        md += "\nUniformly random play, for comparison:\n\n" + "\n".join(evidence_lines(rg)) + "\n"
    figs = [f"zipf_{x}" for x in eg.get("figures", []) if x.endswith(".png")]
    return {"title": "End game", "source": "analysis/zipf/fits.json (endgame), late_share.csv", "md": md,
            "figures": figs}


def _early_late_md(lj: dict[str, Any]) -> str:
    el = lj.get("early_late") or {}
    if "applicable" not in el:
        return ""
    if not el["applicable"]:
        return f"\nEarly/late split: {el['reason']}.\n"
    rows = [{"params": f"{int(p):,}", "seeds": v["seeds"], "early loss": runs.fmt_number(v["early_loss"], 4),
             "early 95% CI": _ci_text(v.get("early_ci")), "late loss": runs.fmt_number(v["late_loss"], 4),
             "late 95% CI": _ci_text(v.get("late_ci")), "early states": v["early_states"],
             "late states": v["late_states"]} for p, v in sorted(el["by_params"].items(), key=lambda kv: int(kv[0]))]
    from .analysis.verdict import missing_subsets
    why = missing_subsets(el, lj["selection"].get("min_count"))
    return (f"\nEarly (mean turn < {el['late_turn']:g}) and late states, final checkpoints ({el['statistic']}; "
            f"intervals: {el['interval']['description']}):\n\n" + _md_table(pd.DataFrame(rows)) + "\n"
            + ("\n" + "\n".join(why) + "\n" if why else ""))


def _ci_text(ci) -> str:
    if not ci or runs.is_missing(ci[0]) or runs.is_missing(ci[1]):
        return "n/a"
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def build_report(sweep_dir: Path, out: Path) -> dict[str, Any]:
    """The report; a result file missing a field it needs is refused with one line naming it."""
    import tempfile
    sweep_dir, out = Path(sweep_dir), Path(out)
    runs.claim_dir(out, "report")
    reading: list[Path] = [sweep_dir / "sweep.json"]
    out.parent.mkdir(parents=True, exist_ok=True)
    # built aside and moved into place whole: a damaged input never leaves a half-written report
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        res = _build_report(sweep_dir, stage, reading)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for f in sorted((stage / "figures").iterdir()):
            os.replace(f, out / "figures" / f.name)
        for name in ("report.md", "report.html"):
            os.replace(stage / name, out / name)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise UserError(f"{reading[0]}: damaged result file ({type(exc).__name__}: {str(exc)[:80]})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {**res, "report_md": str(out / "report.md"), "report_html": str(out / "report.html")}


def _build_report(sweep_dir: Path, out: Path, reading: list[Path]) -> dict[str, Any]:
    sc = _read_json(sweep_dir / "sweep.json")
    if sc is None:
        raise UserError(f"{sweep_dir}: not a sweep directory (no sweep.json)")
    if not isinstance(sc.get("game"), str) or "preset" not in sc or "overrides" not in sc:
        raise UserError(f"{sweep_dir / 'sweep.json'}: damaged (game, preset or overrides missing)")
    run_dirs = sorted(p for p in (sweep_dir / "runs").glob("*") if (p / "config.json").exists())
    if not run_dirs:
        raise UserError(f"{sweep_dir}: no training runs yet")
    game = sc["game"]
    a = sweep_dir / "analysis"
    figs_dir = out / "figures"
    figs_dir.mkdir(parents=True, exist_ok=True)
    sections: list[dict[str, Any]] = []

    # settings, versions, sizes
    cfgs = [runs.read_run_config(rd) for rd in run_dirs]
    reading[0] = run_dirs[0] / "config.json"
    env = cfgs[0]["environment"]
    settings = cfgs[0]["settings"]
    size_rows = []
    for rd, c in zip(run_dirs, cfgs):
        reading[0] = rd / "metrics.jsonl"
        m = runs.read_metrics(rd)[:runs.run_status(rd).done]
        size_rows.append({"run": rd.name, "family": c["settings"]["family"], "width": c["settings"]["width"],
                          "depth": c["settings"]["depth"], "params": c["params"], "seed": c["settings"]["seed"],
                          "steps": m[-1]["step"] if m else 0, "games": m[-1]["games_total"] if m else 0,
                          "states": m[-1]["states_total"] if m else 0,
                          "wall_min": (m[-1]["wall_seconds"] / 60) if m else 0.0})
    sizes = pd.DataFrame(size_rows).sort_values(["params", "seed", "run"], ignore_index=True)
    keys = ["simulations", "c_puct", "dirichlet_alpha", "dirichlet_epsilon", "temperature_drop", "buffer_size",
            "reuse", "updates_per_step", "batch_size", "learning_rate", "weight_decay", "steps", "games_in_flight",
            "actors"]
    sections.append({"title": "Settings and versions", "source": "runs/*/config.json, sweep.json",
                     "md": f"Game `{game}`, preset `{sc['preset']}`, overrides {sc['overrides'] or 'none'}.\n\n"
                           + _md_table(pd.DataFrame([{k: settings[k] for k in keys}]))
                           + "\n\nVersions: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "\n"})
    sections.append({"title": "Sizes", "source": "runs/*/config.json, runs/*/metrics.jsonl",
                     "md": _md_table(sizes.assign(wall_min=sizes["wall_min"].round(1)))})
    figs = _training_figure(run_dirs, figs_dir)
    sections.append({"title": "Training", "source": "runs/*/metrics.jsonl", "md": "", "figures": figs[:1]})

    # Zipf
    reading[0] = a / "zipf" / "fits.json"
    from .analysis.elo_report import read_elo_table, read_zipf_fits
    z = read_zipf_fits(a / "zipf" / "fits.json") if (a / "zipf" / "fits.json").exists() else None
    zr = read_zipf_fits(a / "zipf-random" / "fits.json") if (a / "zipf-random" / "fits.json").exists() else None
    if z:
        rows = []
        for label, res in (("self-play", z), ("random play", zr)):
            if not res:
                continue
            for c in res["curves"]:
                for f in c["fits"]:
                    rows.append({"data": label, "curve": c["label"], "method": f["method"], "alpha": runs.fmt_number(f["alpha"]),
                                 "95% CI": "n/a" if runs.is_missing(f["ci_low"]) else f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]",
                                 "fit range": f["window"], "distinct states": f"{c['distinct_states']:,}",
                                 "visits": f"{c['visits']:,}"})
        paper = PAPER_ZIPF.get(base_name(game))
        pr = PAPER_RANDOM_ZIPF.get(base_name(game))
        md = (f"State key `{z['key_scheme']}`; self-play window `{z['selection']['window']}`; fit window "
              f"{json.dumps(z['fit_window'])}. Exponents in the rank-frequency convention (frequency ∝ rank^-α). "
              + _interval_text(z) + "\n\n"
              + _md_table(pd.DataFrame(rows))
              + f"\n\nThe paper's combined-curve exponent for {game}: {paper if paper is not None else 'not reported'}"
              + (f"; uniformly random play: ~{pr}" if pr else "") + ". Its curves reach ~2·10⁷ distinct states; "
              "exponents from much smaller data are not directly comparable.\n")
        eg = z.get("endgame") or {}
        eg_figs = set(eg.get("figures", []))
        zf = [f"zipf_{Path(x).name}" for x in z.get("figures", []) if x.endswith(".png") and x not in eg_figs]
        for x in z.get("figures", []):
            shutil.copy(a / "zipf" / x, figs_dir / f"zipf_{x}")
        if zr:
            for x in zr.get("figures", []):
                if x.startswith("rank_frequency."):
                    shutil.copy(a / "zipf-random" / x, figs_dir / f"random_{x}")
            zf.append("random_rank_frequency.png")
        zf += zipf_baselines(a, figs_dir)          # the toy tree beside random play and self-play
        sections.append({"title": "State frequencies (Zipf)", "source": "analysis/zipf/fits.json, analysis/zipf-random/fits.json",
                         "md": md, "figures": zf})
        sections.append(_endgame_section(z, zr))

    # loss by rank
    for name, title in (("loss", "Value loss by rank: train-set target"),
                        ("loss-pooled", "Value loss by rank: train-set target, pooled states"),
                        ("loss-solver", "Value loss by rank: perfect-play target")):
        reading[0] = a / name / "loss.json"
        lj = _read_json(a / name / "loss.json")
        if not lj:
            continue
        rows = [{"params": f"{int(p):,}", "loss at top ranks": runs.fmt_number(t["loss_top"], 4), "loss in the tail": runs.fmt_number(t["loss_tail"], 4),
                 "Spearman ρ (loss, rank)": f"{t['spearman_rho']:+.2f}", "rises with rank": "yes" if t["rises"] else "no"}
                for p, t in sorted(lj["loss_rises_with_rank"].items(), key=lambda kv: int(kv[0]))]
        md = (f"Value loss (z − v)², both in the `{lj['frame']}` frame; states seen ≥ {lj['selection']['min_count']} times in "
              f"window `{lj['selection']['window']}`; Gaussian smoothing in log10(rank), σ = {lj['smoothing']['sigma_decades']} "
              f"decades; seeds combined by geometric mean; "
              f"{'states pooled over every run (every size faces the same states)' if lj['selection'].get('pooled') else 'each run ranked on its own self-play states'}. "
              f"Final checkpoints:\n\n" + _md_table(pd.DataFrame(rows)) + "\n" + _early_late_md(lj))
        lf = []
        for x in lj["figures"]:
            shutil.copy(a / name / x, figs_dir / f"{name}_{x}")
            if x.endswith(".png"):
                lf.append(f"{name}_{x}")
        sections.append({"title": title, "source": f"analysis/{name}/loss.json, curves.csv, per_state.parquet",
                         "md": md, "figures": lf})

    # Elo and scaling
    reading[0] = a / "elo" / "elo.json"
    ej = _read_json(a / "elo" / "elo.json")
    if ej:
        et = read_elo_table(a / "elo" / "elo.csv")
        cols = [c for c in ("player", "params", "step", "elo", "elo_ci_low", "elo_ci_high") if c in et]
        show = et[cols].sort_values([c for c in ("params", "step", "player") if c in cols], ignore_index=True)
        for c in ("elo", "elo_ci_low", "elo_ci_high"):
            if c in show:
                show[c] = show[c].round(0)
        ms = ej["match_settings"][0]
        md = (f"Round-robin of final checkpoints and a uniformly random player: {ms['games_per_pair']} games per pair, "
              f"seats alternating, temperature {ms['temperature']} at every move, {ms['simulations']} simulations, no noise. "
              f"Bradley–Terry with draws and a first-move term (first-move advantage {ej['first_move_elo']:.0f} Elo), "
              f"anchor `{ej['anchor']}` = 0, {ej['bootstrap']} bootstrap resamples.\n\n" + _md_table(show) + "\n")
        ef = []
        for x in ej["figures"]:
            shutil.copy(a / "elo" / x, figs_dir / f"elo_{x}")
            if x.endswith(".png"):
                ef.append(f"elo_{x}")
        reading[0] = a / "scaling" / "scaling.json"
        sj = _read_json(a / "scaling" / "scaling.json")
        if sj:
            f = sj["elo_exponent"]
            paper = PAPER_ELO_EXPONENT.get(base_name(game))
            if runs.is_missing(f.get("alpha")):
                md += f"\nElo exponent α_N: {f.get('note', 'not computed')}.\n"
            else:
                md += (f"\nElo exponent α_N = {runs.fmt_number(f['alpha'])} [{runs.fmt_number(f['ci_low'])}, "
                       f"{runs.fmt_number(f['ci_high'])}] over {f['params_min']:,}–{f['params_max']:,} parameters "
                       f"({f['sizes']} sizes; {f.get('range_rule', 'range not recorded')})"
                       f"{'; the paper: ≈ ' + str(paper) if paper else ''}. Interval: "
                       f"{(f.get('resampling') or {}).get('description', 'resampling not recorded')}.\n")
            if "quanta" in sj:
                from .analysis.quanta import quanta_markdown
                md += quanta_markdown(sj["quanta"])
            for x in sj.get("figures", []):
                shutil.copy(a / "scaling" / x, figs_dir / f"scaling_{x}")
                if x.endswith(".png"):
                    ef.append(f"scaling_{x}")
        sections.append({"title": "Elo and scaling", "source": "analysis/elo/elo.csv, elo.json, analysis/scaling/scaling.json",
                         "md": md, "figures": ef})
    sections += temperature_section(sweep_dir, figs_dir)        # [] unless the sweep ran the temperature study
    reading[0] = a / "skipped.json"
    skipped = _read_json(a / "skipped.json")
    if skipped:
        md = ("These steps found too little data for their estimate and were not computed "
              "(the sweep went on without them):\n\n"
              + "\n".join(f"- `{name}`: {why}" for name, why in sorted(skipped.items())) + "\n")
        sections.append({"title": "Not computed", "source": "analysis/skipped.json", "md": md})
    if (a / "verdict.md").exists():
        import re
        text = (a / "verdict.md").read_text().split("\n", 1)[1]
        sections.append({"title": "Inverse-scaling verdict", "source": "analysis/verdict.md, analysis/verdict.json",
                         "md": re.sub(r"^#{1,2} ", "### ", text, flags=re.M)})

    md = render_markdown(game, sweep_dir, sections)
    runs.atomic_write_text(out / "report.md", md)
    html = render_html(game, sweep_dir, sections, figs_dir)
    runs.atomic_write_text(out / "report.html", html)
    return {"report_md": str(out / "report.md"), "report_html": str(out / "report.html"),
            "figures": sorted(p.name for p in figs_dir.iterdir()), "sections": [s["title"] for s in sections]}


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(no rows)"
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_cell(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def _cell(v) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}")
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return str(v)


def render_markdown(game: str, sweep_dir: Path, sections) -> str:
    parts = [f"# azscale report: {game}", "", f"Sweep: `{sweep_dir}`.", ""]
    for s in sections:
        parts += [f"## {s['title']}", "", f"*Source: `{s['source']}`*", "", s["md"], ""]
        for f in s.get("figures", []):
            parts.append(f"![{f}](figures/{f})")
        parts.append("")
    return "\n".join(parts)


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>azscale report: {{ game }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; }
.source { color: #666; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
</style></head>
<body>
<h1>azscale report: {{ game }}</h1>
<p>Sweep: <code>{{ sweep }}</code></p>
{% for s in sections %}
<section><h2>{{ s.title }}</h2><p class="source">Source: <code>{{ s.source }}</code></p>
{{ s.html | safe }}
{% for f in s.figures %}<figure><img src="data:image/png;base64,{{ images[f] }}" alt="{{ f }}"><figcaption>{{ f }}</figcaption></figure>{% endfor %}
</section>
{% endfor %}
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-figures', imgs.length);
  document.body.setAttribute('data-figures-loaded', ok);
});
</script>
</body></html>
"""


def _md_to_html(md: str) -> str:
    """Just enough Markdown for our sections: tables, paragraphs, headings, bold, code, lists."""
    import html as h
    import re

    def inline(t: str) -> str:
        t = h.escape(t)
        t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
        t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
        return t

    out, table, items = [], [], []

    def flush():
        nonlocal table, items
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|?\s*:?-{3,}.*", r.replace(" ", ""))]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells[0]) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
                       + "</table>")
            table = []
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items = []

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("### ") or line.startswith("## "):
            out.append(f"<h3>{inline(line.lstrip('#').strip())}</h3>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


def render_html(game: str, sweep_dir: Path, sections, figs_dir: Path) -> str:
    from jinja2 import Template
    images = {}
    for s in sections:
        for f in s.get("figures", []):
            images[f] = base64.b64encode((figs_dir / f).read_bytes()).decode()
    view = [{**s, "html": _md_to_html(s["md"]), "figures": s.get("figures", [])} for s in sections]
    return Template(HTML).render(game=game, sweep=str(sweep_dir), sections=view, images=images)
