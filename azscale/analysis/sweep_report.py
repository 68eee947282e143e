"""The comparison report of a sweep: `report.md` and a self-contained `report.html` with figures.

Every number in the report is read from a table or JSON file in the sweep directory, and each
section names the file it came from. The report opens with a one-screen summary: the headline
numbers with their intervals beside the paper's, each linking to its section.

A section is a dict: `id` (its anchor), `title`, `source` (the files it read), `md` (its text),
`figures` (file names in figures/, or {"file", "caption"}), `details` (long tables folded under
the figures: [{"summary", "md"}]). `SECTIONS` lists the functions that make them, in order, each
from what the sweep holds (`Sweep`); a module with a section of its own (the temperature study)
is added there with one line. The Markdown is rendered to HTML by markdown-it-py (CommonMark +
tables) inside a jinja2 page.

It lives in analysis/ beside the commands' own outputs (`zipf_report`, `elo_report`,
`temperature_report`) because it only reads result files: like them it imports nothing from
training (tests/test_layers.py checks it), and the sections it calls are theirs.
"""

from __future__ import annotations

import base64
import html as htmllib
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import checkpoints as ck
from .. import runs
from .inputs import run_metrics
from .plotting import SEED_STYLES, copy_figures, size_colours
from .temperature_report import temperature_section, zipf_baselines
from ..config import base_name
from ..errors import UserError
from ..numfmt import ci as fmt_ci, fit_window as fmt_fit_window, integer, num, power, ranges, with_ci
from ..sweepsteps import result

# PAPER.md sections 4 to 7: what the paper reports, for the summary's last column.
PAPER_ZIPF = {"connect_four": 0.94, "pentago": 0.86, "oware": 1.02, "checkers": 0.80}
PAPER_RANDOM_ZIPF = {"connect_four": 0.97}
PAPER_ELO_EXPONENT = {"connect_four": 0.88, "pentago": 0.88}
PAPER_INVERSE = {"oware": "Elo peaks near 4k–8k parameters, then falls (inverse scaling)",
                 "checkers": "Elo peaks near 66k parameters, then falls (inverse scaling)",
                 "connect_four": "no inverse scaling", "pentago": "no inverse scaling"}
PAPER_ENDGAME = {"oware": "present: late share ~0.8–0.9 beyond rank ~200, a shoulder at ranks 10²–10⁴",
                 "checkers": "present: late share rising with rank (king-versus-king endings)"}
PAPER_LOSS = {"connect_four": "rises with rank for every size (~10⁻³ at rank 1 to ~0.3 at 10⁵)"}

# What each figure shows (by its name in figures/, without .png); {…} are filled from the context.
CAPTIONS = {
    "training_curves": "Learner losses during training: value loss (left) and policy loss (right) against learner "
                       "step. One colour per size (dark: smallest, yellow: largest), one line style per seed.",
    "zipf_rank_frequency": "Rank-frequency curves of self-play states (games in window {window}): each distinct "
                           "state's visit count against its rank, log-log, per run (colour: size, line style: seed) "
                           "and pooled over all runs (black, 'combined'); dashed: least-squares fits in the fit "
                           "window, exponents in the legend.",
    "random_rank_frequency": "Rank-frequency curve of uniformly random play, the paper's baseline for the "
                             "self-play curves above.",
    "zipf_rank_frequency_early": "The paper's Fig. 5: the pooled curve of all states, without late states (mean "
                                 "turn ≥ {late_turn}) and of the first {shoulder} moves of each game only.",
    "zipf_turn_vs_rank": "The paper's Fig. 6a: mean turn number of each state against its rank; late states lie "
                         "above the dashed line (mean turn ≥ {late_turn}).",
    "zipf_late_share": "The paper's Fig. 6b: share of late states per log-rank bin, per curve, against the late "
                       "share of all visits.",
    "zipf_late_states": "The ten most frequent late states of the pooled curve, drawn as boards.",
    "loss_vs_rank": "Value loss (z − v)² against state rank at the final checkpoints ({target}), smoothed in "
                    "log rank (σ = 0.15 decades), seeds combined by geometric mean; one colour per size, bands: the "
                    "seeds' range.",
    "loss_early_late": "The paper's Fig. 7: the same for all, early and late states (mean turn below and at least "
                       "{late_turn}).",
    "loss_early_late_vs_step": "The paper's Fig. 8: mean loss on early and on late states across checkpoints, "
                               "one colour per size.",
    "accuracy_early_late_vs_step": "Exact move accuracy across checkpoints: the share of decisive states (some "
                                   "move gives the exact value away) where the network's most likely move keeps "
                                   "the value, early and late, one colour per size (mean over seeds, their range "
                                   "shaded).",
    "frontier_vs_step": "The learned frontier: the rank up to which the smoothed loss stays below the threshold, "
                        "against learner step; one colour per size, one line style per seed.",
    "solver_effort": "Perfect-play solver effort (seconds and nodes per state, smoothed) against state rank.",
    "elo_vs_params": "Elo of the final checkpoints against parameters with 95% bootstrap intervals; one colour per "
                     "size, one marker per seed; dashed grey: reference players (the random player is the anchor, "
                     "Elo 0).",
    "elo_vs_step": "Elo against learner step of every checkpoint rated (a sweep's within-run round-robins, in the same "
                   "fit as the final checkpoints); dashed grey: reference players.",
    "win_rate_matrix": "Score of the row player against the column player (win 1, draw ½) over all games of the "
                       "pair, as in the table above; players by size, reference players last.",
    "elo_fit": "The Elo exponent: final checkpoints (colour: size) and size means (black squares) against "
               "parameters, the fitted line α_N up to the peak and its 95% band from the hierarchical bootstrap.",
    "zipf_toy_tree": "The paper's Fig. 2: the toy model, a uniform tree of branching 7 and depth 8 played path by "
                     "path (a staircase whose envelope has an exponent near 1), beside random play and the pooled "
                     "self-play curve, as visit frequencies.",
    "temperature_curves": "The paper's Fig. 3, left: rank-frequency curves of the match games at each temperature "
                          "of the study (colour: temperature, cold dark to hot yellow).",
    "temperature_elo": "The paper's Fig. 3, middle: Elo against parameters at each temperature, each fitted on that "
                       "temperature's games alone.",
    "temperature_exponents": "The paper's Fig. 3, right: the Zipf tail exponent α_Z against the Elo exponent α_N "
                             "per temperature, with intervals; the dashed line marks α_Z = 1 (points at or below "
                             "it, where α = α_Z − 1 is not positive, are hollow and left out of the correlation).",
}


def _count(n: int, noun: str) -> str:
    """'1 seed', '2 seeds'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _read_json(p: Path) -> dict[str, Any] | None:
    return runs.read_json(p, "azscale result file") if p.exists() else None


def caption(fig: str, ctx: dict[str, Any]) -> str:
    """The caption of a figure file: its entry in CAPTIONS (the longest name that ends its stem,
    so `loss-pooled_loss_vs_rank` finds `loss_vs_rank`), else its name in words."""
    stem = Path(fig).stem
    key = max((k for k in CAPTIONS if stem == k or stem.endswith("_" + k)), key=len, default=None)
    if key is None:
        return stem.replace("_", " ").replace("-", " ").capitalize() + "."
    return CAPTIONS[key].format_map({k: ("?" if v is None else v) for k, v in ctx.items()})


def _interval_text(z: dict[str, Any]) -> str:
    iv = z.get("intervals")
    if iv is None:                       # fits.json from before intervals were recorded
        return ""
    if iv.get("method") in (None, "none"):
        return "No intervals (no resampling requested)."
    return (f"95% intervals: estimate ± 1.96 × the {iv['method']} standard error over games "
            f"({iv['replicates']} replicates); n/a where too few replicates gave a usable fit.")


def _training_figure(run_dirs: list[Path], out: Path) -> list[str]:
    from .plotting import pyplot, save
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4))
    # smallest to largest: one colour per size (as in the loss figures), one line style per seed
    cfgs = sorted(((ck.read_run_config(rd), rd) for rd in run_dirs),
                  key=lambda c: (c[0]["params"], c[0]["settings"].get("seed", 0), c[1].name))
    colour = size_colours(c["params"] for c, _ in cfgs)
    seeds = sorted({c["settings"].get("seed", 0) for c, _ in cfgs})
    for cfg, rd in cfgs:
        m = pd.DataFrame(run_metrics(rd))
        if m.empty:
            continue
        seed = cfg["settings"].get("seed", 0)
        style = dict(lw=1, label=f"{cfg['params']:,} params, seed {seed}", color=colour[cfg["params"]],
                     ls=SEED_STYLES[seeds.index(seed) % len(SEED_STYLES)][0])
        axes[0].plot(m["step"], m["loss_value"], **style)
        axes[1].plot(m["step"], m["loss_policy"], **style)
    axes[0].set_ylabel("value loss (learner)")
    axes[1].set_ylabel("policy loss (learner)")
    for ax in axes:
        ax.set_xlabel("learner step")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return save(fig, out / "training_curves", dpi=110, names=True)


def _endgame_section(z: dict[str, Any], zr: dict[str, Any] | None) -> dict[str, Any]:
    """The paper's end-game evidence (PAPER.md section 7) and figures 5, 6a, 6b and the late boards."""
    from .endgame import evidence_lines
    eg = z.get("endgame") or {}
    base = {"id": "endgame", "title": "End game", "source": "analysis/zipf/fits.json (endgame), late_share.csv"}
    if "applicable" not in eg:
        return {**base, "md": "Not measured: analysis/zipf/fits.json predates the end-game evidence (rerun the zipf "
                              "step: azscale sweep ... --reanalyse zipf).\n"}
    md = (f"Curve '{eg.get('curve', '?')}', state key `{z['key_scheme']}`, games `{z['selection']['window']}`; late = mean "
          f"turn ≥ {eg['late_turn']:g}; shoulder test on the first {eg['shoulder_moves']} moves of each game.\n\n"
          + "\n".join(ranges(x) for x in evidence_lines(eg)) + "\n")
    details = []
    if eg.get("bins"):
        details.append({"summary": f"Late share per rank bin ({len(eg['bins'])} bins)", "md": _md_table(pd.DataFrame(
            [{"ranks": f"{b['rank_lo']:,}–{b['rank_hi'] - 1:,}", "states": b["states"],
              "late share": num(b["late_share"]), "excess over all visits": _signed(b["excess"])}
             for b in eg["bins"]]))})
    rg = (zr or {}).get("endgame") or {}
    if rg.get("measured"):
        md += "\nUniformly random play, for comparison:\n\n" + "\n".join(evidence_lines(rg)) + "\n"
    figs = [f"zipf_{x}" for x in eg.get("figures", []) if x.endswith(".png")]
    return {**base, "md": md, "figures": figs, "details": details}


def _signed(x: Any, nd: int = 3) -> str:
    t = num(x, nd)
    return t if t in ("n/a",) or t.startswith("-") or float(t.replace(",", "")) == 0 else "+" + t


def _early_late_md(lj: dict[str, Any]) -> str:
    el = lj.get("early_late") or {}
    if "applicable" not in el:
        return ""
    if not el["applicable"]:
        return f"\nEarly/late split: {el['reason']}.\n"
    rows = [{"params": f"{int(p):,}", "seeds": v["seeds"], "early loss": num(v["early_loss"], 4),
             "early 95% CI": fmt_ci(*(v.get("early_ci") or [None, None]), 4), "late loss": num(v["late_loss"], 4),
             "late 95% CI": fmt_ci(*(v.get("late_ci") or [None, None]), 4), "early states": v["early_states"],
             "late states": v["late_states"]} for p, v in sorted(el["by_params"].items(), key=lambda kv: int(kv[0]))]
    ob = lj.get("observation") or {}
    floors = ob.get("by_params") or {}
    shown = bool(ob.get("applicable")) and any((v.get("all_shared") or 0) > 0 for v in floors.values())
    if shown:
        for r, p in zip(rows, sorted(el["by_params"], key=int)):
            f = floors.get(p) or {}
            r["floor, early / late"] = f"{num(f.get('early_floor'), 4)} / {num(f.get('late_floor'), 4)}"
            r["input shared, early / late"] = " / ".join(
                "n/a" if f.get(k) is None else f"{100 * f[k]:.0f}%" for k in ("early_shared", "late_shared"))
    from .verdict import missing_subsets
    why = missing_subsets(el, lj["selection"].get("min_count"))
    return (f"\nEarly (mean turn < {el['late_turn']:g}) and late states, final checkpoints ({el['statistic']}; "
            f"intervals: {el['interval']['description']}):\n\n" + _md_table(pd.DataFrame(rows)) + "\n"
            + ("\n*Floor*: the least mean value loss that any network seeing only the game's observation could "
               "reach on these states; *input shared*: the share of these states whose observation another of "
               "them has too (a network gives them one value). A loss near its floor is limited by the input, "
               "not by the network's size.\n" if shown else "")
            + ("\n" + "\n".join(why) + "\n" if why else "") + _accuracy_md(lj))


def _accuracy_md(lj: dict[str, Any]) -> str:
    """Exact move accuracy by size (loss against exact values only)."""
    acc = lj.get("move_accuracy") or {}
    if not acc.get("applicable"):
        return ""
    rows = [{"params": f"{int(p):,}", "seeds": v["seeds"], "early accuracy": num(v["early_accuracy"], 3),
             "early 95% CI": fmt_ci(*(v.get("early_ci") or [None, None]), 3),
             "late accuracy": num(v["late_accuracy"], 3),
             "late 95% CI": fmt_ci(*(v.get("late_ci") or [None, None]), 3),
             "random move, early / late": f"{num(v.get('early_chance'), 3)} / {num(v.get('late_chance'), 3)}",
             "early decisive states": v["early_states"], "late decisive states": v["late_states"]}
            for p, v in sorted(acc["by_params"].items(), key=lambda kv: int(kv[0]))]
    pairs = [f"{int(v['params_from']):,} → {int(v['params_to']):,} parameters: early "
             f"{_signed(v.get('early_diff'))} {_ci_text(v.get('early_ci'))}, late {_signed(v.get('late_diff'))} "
             f"{_ci_text(v.get('late_ci'))}" for v in (acc.get("pairs") or {}).values()]
    return (f"\nExact move accuracy on the decisive ones among these states ({acc['statistic']}; intervals: "
            f"{acc['interval']['description']}):\n\n" + _md_table(pd.DataFrame(rows)) + "\n"
            + ("\nChange in accuracy from the smaller size to the larger (paired on the same states):\n\n"
               + "\n".join(f"- {x}" for x in pairs) + "\n" if pairs else ""))


def _ci_text(ci) -> str:
    if not ci:
        return "n/a"
    return fmt_ci(ci[0], ci[1], 4)


def build_report(sweep_dir: Path, out: Path) -> dict[str, Any]:
    """The report; a result file missing a field it needs is refused with one line naming it."""
    import tempfile
    sweep_dir, out = Path(sweep_dir), Path(out)
    runs.claim_dir(out, "report")
    reading: list[Path] = [sweep_dir / "sweep.json"]
    runs.ensure_dir(out.parent, out)
    _remove_stale_stages(out)
    # built aside and moved into place whole: a damaged input never leaves a half-written report
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp", dir=out.parent))
    try:
        res = _build_report(sweep_dir, stage, reading)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for f in sorted((stage / "figures").iterdir()):
            os.replace(f, out / "figures" / f.name)
        for name in ("report.md", "report.html"):
            os.replace(stage / name, out / name)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise UserError(f"{reading[0]}: damaged result file ({type(exc).__name__}: {str(exc)[:80]})") from None
    except OSError as exc:                  # a full disk: name the file as the report would hold it
        name = str(exc.filename or "")
        if name.startswith(str(stage)) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(out) + name[len(str(stage)):]) from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {**res, "report_md": str(out / "report.md"), "report_html": str(out / "report.html")}


def _remove_stale_stages(out: Path) -> None:
    """Remove the hidden folders `.<out>.<pid>.*.tmp` that a report killed while building left
    beside `out`: those whose process is gone (a report building now keeps its own)."""
    import glob
    pat = re.compile(re.escape(f".{out.name}.") + r"(\d+)\.[a-z0-9_]{8}\.tmp$")   # mkdtemp: 8 characters
    for p in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        m = pat.match(p.name)
        if m and p.is_dir() and not p.is_symlink() and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@dataclass
class Sweep:
    """What the sections read: the sweep's settings, runs and sizes, the result files read so
    far (`results`, for the summary) and the figures' caption context (`ctx`). `read` names each
    file as it is read (`reading`), so a damaged one is refused by name."""
    dir: Path
    figs: Path
    reading: list[Path]
    sc: dict[str, Any]
    run_dirs: list[Path]
    sizes: pd.DataFrame
    results: dict[str, Any] = field(default_factory=dict)
    ctx: dict[str, Any] = field(default_factory=dict)
    left_out: list[tuple[str, str]] = field(default_factory=list)   # (section, why), for `_left_out`

    @property
    def game(self) -> str:
        return self.sc["game"]

    @property
    def a(self) -> Path:
        return self.dir / "analysis"

    def read(self, rel: str, name: str, reader=None, track: bool = True) -> Any:
        """`rel` (under the sweep) read by `reader` (default: as JSON), or None where it is not
        there; kept in `results` as `name` (the summary reads them there)."""
        p = self.dir / rel
        if track:
            self.reading[0] = p
        self.results[name] = (reader or _read_json)(p) if p.exists() else None
        return self.results[name]

    def absent(self, title: str, step: str, file: str) -> None:
        """Record that section `title` is left out because `file`, a result of the sweep's
        analysis step `step` (where it lies: `sweepsteps.result`), is not there, and why
        (`_why_absent`). A step that found too little data is named, with its reason, in the
        "Not computed" section instead."""
        sk = self.dir / "analysis" / "skipped.json"
        if sk.exists() and step in runs.read_json(sk, "list of skipped steps"):
            return
        self.left_out.append((title, _why_absent(self, step, result(step, file))))


def _why_absent(sw: Sweep, step: str, rel: str) -> str:
    """Why a step's result file is not there: the step has not run (not reached, or not asked
    for), needs what the sweep lacks, or ran and its file has gone since."""
    done, _ = runs.read_sweep_steps(sw.dir)
    if step == "scaling" and sw.sizes["params"].nunique() < 2:
        return "one size only: an exponent needs at least two sizes"
    if step == "loss-solver" and step not in done:
        if sw.sc.get("solver") is False:
            return "the sweep runs without the solver (--no-solver)"
        from ..oracles import has_oracle
        if not has_oracle(sw.game):
            return f"no perfect-play solver for {sw.game}"
    if step in done:
        return (f"`{rel}` is missing although the sweep finished its `{step}` step (deleted or moved since?); "
                f"rerun the sweep with --reanalyse {step} to redo it")
    return f"the sweep has not run its `{step}` step yet (`{rel}` is not there); rerun the sweep to finish it"


def _present(d: Any, path: Path, keys: tuple[str, ...]) -> Any:
    """A result file read (None where it is not there) that must hold `keys`: one that is empty
    or lacks them is damaged, and refused naming it, not left out unsaid."""
    if d is not None and not all(k in d for k in keys):
        missing = [k for k in keys if k not in d]
        raise UserError(f"{path}: damaged result file ({', '.join(missing[:3])} missing)")
    return d


def _load_sweep(sweep_dir: Path, figs_dir: Path, reading: list[Path]) -> Sweep:
    sc = _read_json(sweep_dir / "sweep.json")
    if sc is None:
        raise UserError(f"{sweep_dir}: not a sweep directory (no sweep.json)")
    if not isinstance(sc.get("game"), str) or "preset" not in sc or "overrides" not in sc:
        raise UserError(f"{sweep_dir / 'sweep.json'}: damaged (game, preset or overrides missing)")
    run_dirs = ck.runs_under(sweep_dir / "runs")
    if not run_dirs:
        raise UserError(f"{sweep_dir}: no training runs yet")
    # the runs the analysis read (a sweep analysed with --analyse-finished leaves the others out)
    analysed = _analysed_runs(sweep_dir)
    pending = sorted(rd.name for rd in run_dirs if analysed is not None and rd.name not in analysed)
    run_dirs = [rd for rd in run_dirs if rd.name not in pending]
    if not run_dirs:
        raise UserError(f"{sweep_dir / 'steps.json'}: its analysis read none of the runs in {sweep_dir / 'runs'}; "
                        "rerun the sweep to analyse them")
    cfgs = [ck.read_run_config(rd) for rd in run_dirs]
    reading[0] = run_dirs[0] / ck.CONFIG_FILE
    first = {"settings": cfgs[0]["settings"], "environment": cfgs[0]["environment"]}
    size_rows = []
    for rd, c in zip(run_dirs, cfgs):
        reading[0] = rd / ck.METRICS_FILE
        m = run_metrics(rd)
        size_rows.append({"run": rd.name, "family": c["settings"]["family"], "width": c["settings"]["width"],
                          "depth": c["settings"]["depth"], "params": c["params"], "seed": c["settings"]["seed"],
                          "steps": m[-1]["step"] if m else 0, "games": m[-1]["games_total"] if m else 0,
                          "states": m[-1]["states_total"] if m else 0,
                          "wall_min": (m[-1]["wall_seconds"] / 60) if m else 0.0})
    sizes = pd.DataFrame(size_rows).sort_values(["params", "seed", "run"], ignore_index=True)
    envs = [(rd.name, c.get("environment") or {}) for rd, c in zip(run_dirs, cfgs)]
    return Sweep(sweep_dir, figs_dir, reading, sc, run_dirs, sizes,
                 results={"first run": first, "environments": envs, "not analysed": pending},
                 ctx={"game": sc["game"], "window": "last70"})


def _analysed_runs(sweep_dir: Path) -> set[str] | None:
    """The runs the sweep's analysis read (steps.json: every finished step's recorded runs,
    together), or None where no step recorded them (an analysis not yet run, or an earlier
    azscale's record)."""
    if not (sweep_dir / "steps.json").exists():
        return None
    done, inputs = runs.read_sweep_steps(sweep_dir)
    named = [set(v["runs"]) for k, v in (inputs or {}).items()
             if k in done and isinstance(v, dict) and isinstance(v.get("runs"), list)]
    return set.union(*named) if named else None


def _build_report(sweep_dir: Path, out: Path, reading: list[Path]) -> dict[str, Any]:
    figs_dir = out / "figures"
    figs_dir.mkdir(parents=True, exist_ok=True)
    sw = _load_sweep(sweep_dir, figs_dir, reading)
    sections = [sec for make in SECTIONS for sec in make(sw)]
    reading[0] = sweep_dir / "sweep.json"
    sections.insert(0, _summary(sw, {s.get("id") for s in sections}))
    for s in sections:                      # every figure with its caption
        s["figures"] = [f if isinstance(f, dict) else
                        {"file": f, "caption": caption(f, {**sw.ctx, "target": sw.ctx.get(f"target:{f}", "?")})}
                        for f in s.get("figures", [])]
    n = 0
    for s in sections:
        for f in s["figures"]:
            n += 1
            f["number"] = n
    sizes = sw.sizes
    title = f"azscale report: {sw.game}"
    lead = (f"Sweep `{sweep_dir}`: {_count(len(sw.run_dirs), 'run')} ({_count(sizes['params'].nunique(), 'size')} × "
            f"{_count(sizes['seed'].nunique(), 'seed')}), game `{sw.game}`, preset `{sw.sc['preset']}`.")
    if sw.results["not analysed"]:
        left = sw.results["not analysed"]
        lead += (f" Not in this report: {', '.join(f'`{n}`' for n in left)} (the sweep's analysis has not read "
                 f"them: still training at `--analyse-finished`, or the sweep stopped before analysing them; every "
                 f"section reads the other runs only; rerun the sweep to add them).")
    if sw.left_out:
        lead += (f" {_count(len(sw.left_out), 'section')} left out, each with the reason: see "
                 f"[Left out of this report](#left-out).")
    md = render_markdown(title, lead, sections)
    runs.atomic_write_text(out / "report.md", md)
    html = render_html(title, lead, sections, figs_dir)
    runs.atomic_write_text(out / "report.html", html)
    return {"report_md": str(out / "report.md"), "report_html": str(out / "report.html"),
            "figures": sorted(p.name for p in figs_dir.iterdir()), "sections": [s["title"] for s in sections],
            "left_out": [{"section": t, "why": w} for t, w in sw.left_out]}


# -- sections: each a function of the sweep, in the report's order --------------------------------
# A new section (or one from another module, like the temperature study's) is a function
# `Sweep -> [section, ...]` and one line in SECTIONS; a new figure is a file its result lists
# (copied with `plotting.copy_figures`) and, for its caption, one entry in CAPTIONS.

def _settings(sw: Sweep) -> list[dict[str, Any]]:
    first = sw.results["first run"]
    return [_settings_section(sw.sc, first["settings"], merged_environment(sw.results["environments"]))]


def merged_environment(envs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One versions line for every run: a value all runs share as it is; where runs differ (a
    sweep trained over several commits or machines), each value with the runs that recorded it
    (a run that did not record the key shows as 'not recorded')."""
    out: dict[str, Any] = {}
    for k in dict.fromkeys(k for _, e in envs for k in e):
        by: dict[str, list[str]] = {}
        for name, e in envs:
            by.setdefault(str(e.get(k, "not recorded")), []).append(name)
        out[k] = next(iter(by)) if len(by) == 1 else "; ".join(f"{v} ({', '.join(ns)})" for v, ns in by.items())
    return out


def _sizes(sw: Sweep) -> list[dict[str, Any]]:
    return [_sizes_section(sw.sizes)]


def _training(sw: Sweep) -> list[dict[str, Any]]:
    return [{"id": "training", "title": "Training", "source": "runs/*/metrics.jsonl", "md": "",
             "figures": _training_figure(sw.run_dirs, sw.figs)[:1]}]


def _zipf(sw: Sweep) -> list[dict[str, Any]]:
    from .elo_report import read_zipf_fits
    z = sw.read(result("zipf", "fits.json"), "zipf", read_zipf_fits)
    zr = sw.read(result("zipf-random", "fits.json"), "zipf-random", read_zipf_fits, track=False)
    if z is None:
        sw.absent("State frequencies (Zipf) and End game", "zipf", "fits.json")
        return []
    sw.ctx.update(window=z["selection"]["window"], late_turn=f"{z.get('late_turn', 40):g}",
                  shoulder=z.get("shoulder_moves", 50))
    zsec = _zipf_section(sw.game, z, zr, sw.a, sw.figs, {r: k for k, r in enumerate(sw.sizes["run"])})
    zsec["figures"] += zipf_baselines(sw.a, sw.figs)          # the toy tree beside random play and self-play
    return [zsec, _endgame_section(z, zr)]


LOSS_STEPS = (("loss", "Value loss by rank: train-set target", "train-set target"),
              ("loss-pooled", "Value loss by rank: train-set target, pooled states",
               "train-set target, every size on the same states"),
              ("loss-solver", "Value loss by rank: perfect-play target", "perfect-play target"))


def _losses(sw: Sweep) -> list[dict[str, Any]]:
    out = []
    for name, title, target in LOSS_STEPS:
        lj = _present(sw.read(result(name, "loss.json"), name), sw.a / name / "loss.json",
                      ("loss_rises_with_rank", "frame", "selection", "smoothing", "figures"))
        if lj is None:
            sw.absent(title, name, "loss.json")
            continue
        out.append(_loss_section(name, title, lj, sw.a, sw.figs))
        for f in out[-1]["figures"]:
            sw.ctx[f"target:{f}"] = target
    return out


def _elo(sw: Sweep) -> list[dict[str, Any]]:
    from .elo_files import read_elo_table
    ej = _present(sw.read(result("elo", "elo.json"), "elo"), sw.a / "elo" / "elo.json",
                  ("match_settings", "first_move_elo", "anchor", "bootstrap", "figures"))
    if ej is None:
        sw.absent("Elo and scaling", "elo", "elo.json")
        return []
    et = read_elo_table(sw.a / "elo" / "elo.csv")
    sj = _present(sw.read(result("scaling", "scaling.json"), "scaling"), sw.a / "scaling" / "scaling.json",
                  ("elo_exponent",))
    if sj is None:
        sw.absent("The Elo exponent and the quantization model's predictions (in Elo and scaling)", "scaling",
                  "scaling.json")
    sw.reading[0] = sw.dir / "matches" / "final"
    return [_elo_section(sw.game, ej, et, sj, sw.dir, sw.a, sw.figs)]


def _saturation(sw: Sweep) -> list[dict[str, Any]]:
    """Per run: has it stopped improving (Elo gain and train-loss trend over its last third)."""
    from .saturation import ACC_TOL, ELO_TOL, LOSS_TOL, saturation_table, summary_line
    elo_dir = sw.a / "elo" if (sw.a / "elo" / "elo.csv").exists() else None
    sw.reading[0] = elo_dir or sw.dir / "runs"
    exact = sw.a / "loss-solver" / "loss.json"
    rows = saturation_table(elo_dir, sw.run_dirs, metrics=run_metrics, exact=exact if exact.exists() else None)
    sw.results["saturation"] = rows

    def ci(d, fmt):
        if not d.get("applicable"):
            return "not applicable"
        lo_hi = d.get("ci")
        point = fmt.format(d["gain"] if "gain" in d else d["relative_change"])
        return point if lo_hi is None else f"{point} [{fmt.format(lo_hi[0])}, {fmt.format(lo_hi[1])}]"
    table = pd.DataFrame([{"run": r["run"], "params": int(sw.sizes.set_index("run").loc[r["run"], "params"]),
                           "Elo gain to the final checkpoint": ci(r["elo"], "{:+.0f}"),
                           "steps compared": next((f"{d['from_step']} -> {d['to_step']}" for d in (r["elo"], r["exact"])
                                                   if d.get("applicable")), "-"),
                           "train-loss change, last third": ci(r["loss"], "{:+.1%}"),
                           **({"exact move-accuracy gain": ci(r["exact"], "{:+.3f}")}
                              if any(x["exact"].get("applicable") for x in rows) else {}),
                           "state": r["state"], "why": r["reason"]} for r in rows])
    md = (f"**{summary_line(rows)}.** A run is *improving* when its Elo gain from the checkpoint nearest two "
          f"thirds of training to the final one has its 95% interval above +{ELO_TOL:.0f}, or its train loss "
          f"(value + policy) falls by more than {LOSS_TOL:.0%} over the last third with its whole interval; "
          f"*saturated* when the Elo gain's interval lies below +{ELO_TOL:.0f} and the loss's above "
          f"-{LOSS_TOL:.0%}; otherwise *cannot tell* (a flat loss alone never makes a run saturated). The Elo "
          "gain needs within-run checkpoints in the tournament (`--checkpoint-tournament K`, K ≥ 3, which "
          "includes the checkpoint nearest two thirds); the loss trend is a line through 6 block means of "
          "the last third's steps (t interval)."
          + (f" Where the Elo gain is not applicable (e.g. the seat decides the within-run games) and exact "
             f"values exist, the *exact move-accuracy gain* stands in for it: the share of decisive states "
             f"(some move gives the exact value away) where the network's most likely move keeps the value, final "
             f"checkpoint minus the checkpoint nearest two thirds, paired on the same states (95% bootstrap "
             f"interval over states), with tolerance +{ACC_TOL:.2f}." if any(x["exact"].get("applicable") for x in rows)
             else "") + "\n\n" + _md_table(table))
    return [{"id": "saturation", "title": "Saturation per run",
             "source": "runs/*/metrics.jsonl, analysis/elo, analysis/loss-solver (exact gains, where present)",
             "md": md}]


def _not_computed(sw: Sweep) -> list[dict[str, Any]]:
    skipped = sw.read("analysis/skipped.json", "skipped")
    if not skipped:
        return []
    md = ("These steps found too little data for their estimate and were not computed "
          "(the sweep went on without them):\n\n"
          + "\n".join(f"- `{name}`: {why}" for name, why in sorted(skipped.items())) + "\n")
    return [{"id": "not-computed", "title": "Not computed", "source": "analysis/skipped.json", "md": md}]


def _verdict(sw: Sweep) -> list[dict[str, Any]]:
    sw.read(result("verdict", "verdict.json"), "verdict")
    if not (sw.a / "verdict.md").exists():
        sw.absent("Inverse-scaling verdict", "verdict", "verdict.md")
        return []
    from .verdict import VERDICT_TITLE
    p = sw.a / "verdict.md"
    try:
        raw = p.read_text()
    except (UnicodeDecodeError, OSError) as e:
        raise UserError(f"{p}: damaged result file ({type(e).__name__})") from None
    head, _, text = raw.partition("\n")
    if not head.startswith(VERDICT_TITLE):
        raise UserError(f"{p}: damaged result file (it does not begin as the verdicts azscale writes)")
    return [{"id": "verdict", "title": "Inverse-scaling verdict", "source": "analysis/verdict.md, analysis/verdict.json",
             "md": re.sub(r"^#{1,2} ", "### ", text, flags=re.M)}]


def _left_out(sw: Sweep) -> list[dict[str, Any]]:
    """Every section (or part of one) the report leaves out, and why; never left out unsaid."""
    if not sw.left_out:
        return []
    md = ("These sections are not in this report:\n\n"
          + "\n".join(f"- {title}: {why}" for title, why in sw.left_out) + "\n")
    return [{"id": "left-out", "title": "Left out of this report", "source": "analysis/, steps.json, "
             "analysis/skipped.json", "md": md}]


SECTIONS = (_settings, _sizes, _training, _zipf, _losses, _elo, _saturation,
            lambda sw: temperature_section(sw.dir, sw.figs),      # [] unless the sweep ran the study
            _not_computed, _verdict, _left_out)


SETTING_KEYS = ["simulations", "c_puct", "dirichlet_alpha", "dirichlet_epsilon", "temperature_drop", "buffer_size",
                "reuse", "updates_per_step", "batch_size", "learning_rate", "weight_decay", "steps",
                "games_in_flight", "actors"]


def _settings_section(sc: dict[str, Any], settings: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    pairs = [(k, settings[k]) for k in SETTING_KEYS if k in settings]
    cols = 3                                 # three setting/value pairs per row: the table fits the page
    lines = ["| " + " | ".join(["setting", "value"] * cols) + " |", "|" + "---|" * (2 * cols)]
    for i in range(0, len(pairs), cols):
        cells = [x for k, v in pairs[i:i + cols] for x in (k, _cell(v))]
        lines.append("| " + " | ".join(cells + [""] * (2 * cols - len(cells))) + " |")
    table = "\n".join(lines)
    over = sc.get("overrides") or {}
    sweep_rows = [("random games", sc.get("random_games")), ("games per pair", sc.get("games_per_pair")),
                  ("match simulations", sc.get("match_simulations")), ("match temperature", sc.get("match_temperature")),
                  ("bootstrap", sc.get("bootstrap")),
                  ("within-run round-robin checkpoints", sc.get("checkpoint_tournament") or None),
                  ("solver", {True: "on", False: "off"}.get(sc.get("solver")))]
    md = (f"Game `{sc['game']}`, preset `{sc['preset']}`, overrides "
          + (", ".join(f"`{k}={v}`" for k, v in over.items()) if over else "none") + ". Sweep: "
          + "; ".join(f"{k} {v}" for k, v in sweep_rows if v is not None) + ".\n\n"
          + table + "\n\nVersions: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "\n")
    return {"id": "settings", "title": "Settings and versions", "source": "runs/*/config.json, sweep.json", "md": md}


def _sizes_section(sizes: pd.DataFrame) -> dict[str, Any]:
    by = sizes.groupby(["params", "family", "width", "depth"], as_index=False).agg(
        seeds=("seed", "nunique"), steps=("steps", "max"), games=("games", "mean"), wall_min=("wall_min", "mean"))
    by["games"] = by["games"].map(integer)
    by["wall_min"] = by["wall_min"].map(lambda x: num(x, 1))
    by = by.rename(columns={"games": "games (mean)", "wall_min": "minutes (mean)"})
    per_run = sizes.assign(wall_min=sizes["wall_min"].map(lambda x: num(x, 1))).rename(columns={"wall_min": "minutes"})
    return {"id": "sizes", "title": "Sizes", "source": "runs/*/config.json, runs/*/metrics.jsonl",
            "md": _md_table(by[["params", "family", "width", "depth", "seeds", "steps", "games (mean)",
                                "minutes (mean)"]]) + "\n",
            "details": [{"summary": f"Per run ({len(per_run)} runs)", "md": _md_table(per_run)}]}


def _zipf_section(game: str, z: dict[str, Any], zr: dict[str, Any] | None, a: Path, figs_dir: Path,
                  order: dict[str, int]) -> dict[str, Any]:
    def fit_rows(label, res, only=None):
        rows = []
        for c in sorted(res["curves"], key=lambda c: order.get(c["label"], len(order))):    # by size, then seed
            if only is not None and c["label"] not in only:
                continue
            for f in c["fits"]:
                rows.append({"data": label, "curve": c["label"], "method": f["method"].upper(), "α": num(f["alpha"]),
                             "95% interval": fmt_ci(f["ci_low"], f["ci_high"]), "fit range": ranges(f["window"]),
                             "distinct states": f"{c['distinct_states']:,}", "visits": f"{c['visits']:,}"})
        return rows
    head = fit_rows("self-play", z, {z["curves"][-1]["label"]}) + (fit_rows("random play", zr) if zr else [])
    paper = PAPER_ZIPF.get(base_name(game))
    pr = PAPER_RANDOM_ZIPF.get(base_name(game))
    md = (f"State key `{z['key_scheme']}`; self-play games `{z['selection']['window']}`; fit window "
          f"{fmt_fit_window(z.get('fit_window'))}. Exponents in the rank-frequency convention (frequency ∝ "
          f"rank^−α). " + _interval_text(z) + "\n\n" + _md_table(pd.DataFrame(head))
          + f"\n\nThe paper's combined-curve exponent for {base_name(game)}: "
          + (f"{paper}" if paper is not None else "not reported") + (f"; uniformly random play: ~{pr}" if pr else "")
          + ". Its curves reach ~2·10⁷ distinct states; exponents from much smaller data are not directly comparable.\n")
    eg = set((z.get("endgame") or {}).get("figures", []))
    figs = copy_figures(a / "zipf", [x for x in z.get("figures", [])], figs_dir, "zipf")
    figs = [f for f in figs if f[len("zipf_"):] not in eg]
    if zr:
        figs += copy_figures(a / "zipf-random", [x for x in zr.get("figures", []) if x.startswith("rank_frequency.")],
                              figs_dir, "random")
    per_run = fit_rows("self-play", z, {c["label"] for c in z["curves"][:-1]})
    details = [{"summary": f"Per run ({len(per_run) // 2 or len(per_run)} runs, both fits)",
                "md": _md_table(pd.DataFrame(per_run))}] if per_run else []
    return {"id": "zipf", "title": "State frequencies (Zipf)",
            "source": "analysis/zipf/fits.json, analysis/zipf-random/fits.json", "md": md, "figures": figs,
            "details": details}


def _loss_section(name: str, title: str, lj: dict[str, Any], a: Path, figs_dir: Path) -> dict[str, Any]:
    rows = [{"params": f"{int(p):,}", "loss at top ranks": num(t["loss_top"], 4), "loss in the tail": num(t["loss_tail"], 4),
             "Spearman ρ (loss, rank)": _signed(t["spearman_rho"], 2), "rises with rank": "yes" if t["rises"] else "no"}
            for p, t in sorted(lj["loss_rises_with_rank"].items(), key=lambda kv: int(kv[0]))]
    md = (f"Value loss (z − v)², both in the `{lj['frame']}` frame; states seen ≥ {lj['selection']['min_count']} times in "
          f"window `{lj['selection']['window']}`; Gaussian smoothing in log10(rank), σ = {lj['smoothing']['sigma_decades']} "
          f"decades; seeds combined by geometric mean; "
          f"{'states pooled over every run (every size faces the same states)' if lj['selection'].get('pooled') else 'each run ranked on its own self-play states'}. "
          f"Final checkpoints:\n\n" + _md_table(pd.DataFrame(rows)) + "\n" + _early_late_md(lj))
    return {"id": name, "title": title, "source": f"analysis/{name}/loss.json, curves.csv, per_state.parquet",
            "md": md, "figures": copy_figures(a / name, lj["figures"], figs_dir, name)}


def _elo_section(game: str, ej: dict[str, Any], et: pd.DataFrame, sj: dict[str, Any] | None, sweep_dir: Path,
                 a: Path, figs_dir: Path) -> dict[str, Any]:
    from .plotting import seed_of
    ms = ej["match_settings"][0]
    agents = et[et["kind"] == "agent"].copy() if "kind" in et else et.copy()
    refs = et[et["kind"] != "agent"] if "kind" in et else et.iloc[0:0]
    md = (f"Round-robin of final checkpoints and a uniformly random player: {ms['games_per_pair']} games per pair, "
          f"seats alternating, temperature {ms['temperature']} at every move, {ms['simulations']} simulations, no noise. "
          f"Bradley–Terry with draws and a first-move term (first-move advantage {num(ej['first_move_elo'], 0)} Elo), "
          f"anchor `{ej['anchor']}` = 0, {ej['bootstrap']} bootstrap resamples.\n")
    within = [t for t in ej.get("tournaments", []) if Path(t).parent.name.startswith("checkpoints-")]
    if within:
        steps = agents.groupby("run")["step"].apply(lambda x: sorted(int(v) for v in x)) if len(agents) else {}
        shown = "; ".join(f"`{r}`: {', '.join(map(str, st))}" for r, st in steps.items())
        md += (f"\nWithin-run round-robins (the paper's second kind): the checkpoints of each run play each "
               f"other with the same match settings, in the same rating fit ({len(within)} runs; steps {shown}). "
               f"A final checkpoint plays in both kinds, which ties them together; the size comparison, α_N and "
               f"the verdict read the final checkpoints only, whose ratings are fitted with all these games, so "
               f"they move a little when within-run games are added.\n")
    seat = (ej.get("seat") or {}).get("between_runs")
    if isinstance(seat, dict) and seat.get("pairs"):
        from .seat import seat_text
        md += (f"\nSeats: the first mover won {seat['first_mover_wins']:,} of {seat['games']:,} games between agents "
               f"of different runs; {seat['seat_decided_pairs']} of {seat['pairs']} such pairs went to the first "
               f"mover in every game.\n")
        if seat.get("seat_decided"):
            md += (f"\n**Not identified: {seat_text(seat, 'pairs of agents from different runs')}.** Their Elo "
                   f"differences below come from the rating's prior and the games against the reference players; "
                   f"the verdict says \"cannot tell\".\n")
    if len(refs):
        md += ("\nReference players: " + "; ".join(f"`{r.player}`: Elo {num(r.elo, 0)}"
                                                 + (" (the anchor)" if r.player == ej["anchor"] else "")
                                                 for r in refs.itertuples()) + ".\n")
    if sj:
        f = sj["elo_exponent"]
        paper = PAPER_ELO_EXPONENT.get(base_name(game))
        if runs.is_missing(f.get("alpha")):
            md += f"\nElo exponent α_N: {f.get('note', 'not computed')}.\n"
        else:
            md += (f"\nElo exponent α_N = {with_ci(f['alpha'], f['ci_low'], f['ci_high'])} over "
                   f"{f['params_min']:,}–{f['params_max']:,} parameters ({f['sizes']} sizes; "
                   f"{f.get('range_rule', 'range not recorded')}){'; the paper: ≈ ' + str(paper) if paper else ''}. "
                   f"Interval: {(f.get('resampling') or {}).get('description', 'resampling not recorded')}.\n")
        if "quanta" in sj:
            from .quanta import quanta_markdown
            md += quanta_markdown(sj["quanta"])
    matrix = _win_rate_html(sweep_dir / "matches" / "final", agents, refs)
    if matrix:
        md += ("\nWin-rate matrix: the score of the row player against the column player (win 1, draw ½) over all "
               "games of the pair; players by size, reference players last.\n\n" + matrix + "\n")
    figs = copy_figures(a / "elo", ej["figures"], figs_dir, "elo")
    if sj:
        figs += copy_figures(a / "scaling", sj.get("figures", []), figs_dir, "scaling")
    agents["seed"] = agents["run"].map(seed_of) if "run" in agents else 0
    cols = [c for c in ("player", "params", "seed", "step", "elo", "elo_ci_low", "elo_ci_high") if c in agents]
    show = agents.sort_values([c for c in ("params", "seed", "step", "player") if c in cols])[cols]
    show = show.assign(**{c: show[c].map(lambda x: num(x, 0)) for c in ("elo", "elo_ci_low", "elo_ci_high") if c in show})
    show = show.rename(columns={"elo_ci_low": "95% low", "elo_ci_high": "95% high"})
    return {"id": "elo", "title": "Elo and scaling",
            "source": "analysis/elo/elo.csv, elo.json, analysis/scaling/scaling.json, matches/final/results.csv"
                      + (", matches/checkpoints-K/*/results.csv" if within else ""),
            "md": md, "figures": figs,
            "details": [{"summary": f"Elo of every agent ({len(show)} players; reference players above)",
                         "md": _md_table(show)}]}


def _win_rate_html(tournament_dir: Path, agents: pd.DataFrame, refs: pd.DataFrame) -> str:
    """The win-rate matrix as an HTML table with the score in every cell, shaded like the
    figure (blue: the row player scores more, red: less)."""
    from .plotting import seed_of
    if not (tournament_dir / "tournament.json").exists():
        return ""
    res = runs.read_results(tournament_dir)
    order = agents.assign(seed=agents["run"].map(seed_of)).sort_values(["params", "seed", "step"])["player"].tolist() \
        if len(agents) else []
    played = set(res["first"]) | set(res["second"])
    order = [n for n in order if n in played]          # (checkpoints of within-run round-robins play elsewhere)
    names = order + sorted(refs["player"]) if len(refs) else order
    names += sorted((set(res["first"]) | set(res["second"])) - set(names))     # (none, unless elo.csv lags)
    from .elo import score_matrix
    num_, den = score_matrix(res, names)
    short = {n: n.split("@")[0].replace(f"{n.split('-w')[0]}-", "") if "-w" in n else n for n in names}
    ref_names = set(refs["player"]) if len(refs) else set()
    esc = htmllib.escape
    head = "".join(f'<th title="{esc(n)}">{esc(short[n])}{" (ref.)" if n in ref_names else ""}</th>' for n in names)
    body = []
    for i, n in enumerate(names):
        cells = []
        for j in range(len(names)):
            if den[i, j] == 0:
                cells.append('<td class="empty"></td>')
                continue
            s = num_[i, j] / den[i, j]
            shade = abs(s - 0.5) * 2
            colour = f"rgba(33,102,172,{shade:.2f})" if s > 0.5 else f"rgba(178,24,43,{shade:.2f})"
            cells.append(f'<td style="background:{colour}" title="{esc(n)} vs {esc(names[j])}: {int(den[i, j])} '
                         f'games">{s:.2f}</td>')
        body.append(f'<tr><th title="{esc(n)}">{esc(short[n])}{" (ref.)" if n in ref_names else ""}</th>'
                    + "".join(cells) + "</tr>")
    return ('<table class="matrix" id="win-rate-matrix"><thead><tr><th>row vs column</th>' + head + "</tr></thead>"
            "<tbody>" + "".join(body) + "</tbody></table>")


def _summary(sw: Sweep, have: set) -> dict[str, Any]:
    """The headline numbers beside the paper's, each linking to its section."""
    g, sizes = base_name(sw.game), sw.sizes
    r = sw.results
    z, zr, sj, vj = r.get("zipf"), r.get("zipf-random"), r.get("scaling"), r.get("verdict")
    losses = {name: r[name] for name, _, _ in LOSS_STEPS if r.get(name)}
    rows = []

    def link(anchor, text="details"):
        return f"[{text}](#{anchor})" if anchor in have else "—"

    def paper(x):
        return "not reported" if x is None else str(x)

    if z:
        comb = z["curves"][-1]
        for f in comb["fits"]:
            rows.append({"measure": f"Zipf α, pooled self-play ({f['method'].upper()})", "this sweep": num(f["alpha"]),
                         "95% interval": fmt_ci(f["ci_low"], f["ci_high"]),
                         "the paper": paper(PAPER_ZIPF.get(g)) if f["method"] == "ls" else "—",
                         "section": link("zipf")})
        if zr:
            f = next((x for x in zr["curves"][-1]["fits"] if x["method"] == "ls"), None)
            if f:
                rows.append({"measure": "Zipf α, uniformly random play (LS)", "this sweep": num(f["alpha"]),
                             "95% interval": fmt_ci(f["ci_low"], f["ci_high"]),
                             "the paper": paper(PAPER_RANDOM_ZIPF.get(g)), "section": link("zipf")})
    if sj:
        f = sj["elo_exponent"]
        rows.append({"measure": "Elo exponent α_N", "this sweep": num(f.get("alpha")) if not runs.is_missing(f.get("alpha"))
                     else "not applicable", "95% interval": fmt_ci(f.get("ci_low"), f.get("ci_high")),
                     "the paper": paper(PAPER_ELO_EXPONENT.get(g)), "section": link("elo")})
    lj_name = next((n for n in ("loss-pooled", "loss") if n in losses), None)
    if lj_name:
        t = losses[lj_name]["loss_rises_with_rank"]
        rises = sum(bool(v["rises"]) for v in t.values())
        rhos = [v["spearman_rho"] for v in t.values() if not runs.is_missing(v.get("spearman_rho"))]
        rows.append({"measure": "Value loss rises with rank (train-set target)",
                     "this sweep": f"{rises} of {len(t)} sizes",
                     "95% interval": f"Spearman ρ {_signed(min(rhos), 2)} to {_signed(max(rhos), 2)}" if rhos else "—",
                     "the paper": PAPER_LOSS.get(g, "rises with rank (Connect Four)"), "section": link(lj_name)})
    if "loss-solver" in losses:
        t = losses["loss-solver"]["loss_rises_with_rank"]
        rows.append({"measure": "Value loss rises with rank (perfect play)",
                     "this sweep": f"{sum(bool(v['rises']) for v in t.values())} of {len(t)} sizes", "95% interval": "—",
                     "the paper": "large models rise ~0.05 → ~0.45" if g == "connect_four" else "not reported",
                     "section": link("loss-solver")})
    if vj:
        peak = vj.get("peak") or {}
        state = vj.get("verdict") or ("inverse scaling detected" if vj.get("inverse_scaling") else "a drop flagged"
                                      if vj.get("flagged") else "no inverse scaling shown")
        pw = vj.get("power") or {}
        if pw.get("applicable") and pw.get("minimum_detectable_fall") is not None:
            state += f" (detectable with 80% power: a fall of {pw['minimum_detectable_fall']:,.0f} Elo or more)"
        elif pw.get("applicable") is False and pw.get("reason") and pw["reason"] != "not computed":
            state += f" (power: not applicable, {pw['reason']})"
        rng = peak.get("range") or [None, None]
        rows.append({"measure": "Inverse-scaling verdict", "this sweep": state,
                     "95% interval": (f"peak {integer(peak.get('params'))} params (range {integer(rng[0])}–"
                                      f"{integer(rng[1])})") if peak else "—",
                     "the paper": PAPER_INVERSE.get(g, "not studied"), "section": link("verdict")})
        rows.append({"measure": "End-game pattern", "this sweep": str(vj.get("endgame_pattern", "not measured")),
                     "95% interval": _endgame_numbers(z), "the paper": PAPER_ENDGAME.get(g, "not reported"),
                     "section": link("endgame")})
    md = (f"{_count(len(sizes), 'run')}: {_count(sizes['params'].nunique(), 'size')} ({integer(sizes['params'].min())} to "
          f"{integer(sizes['params'].max())} parameters) × {_count(sizes['seed'].nunique(), 'seed')}. Intervals are 95%.\n\n"
          + (_md_table(pd.DataFrame(rows)) if rows else "No analysis results yet (the sweep has not finished).") + "\n")
    if vj:
        for a in vj.get("attribution") or []:
            md += (f"\nDrop {integer(a['params_from'])} → {integer(a['params_to'])} parameters: loss split "
                   f"{a['loss_split']['reading']} ({a['loss_split']['text']}).\n")
    return {"id": "summary", "title": "Summary", "source": "analysis/zipf/fits.json, analysis/scaling/scaling.json, "
            "analysis/verdict.json, analysis/loss*/loss.json", "md": md}


def _endgame_numbers(z) -> str:
    eg = (z or {}).get("endgame") or {}
    if not eg.get("measured"):
        return "—"
    s = eg["stats"]
    return (f"late share {with_ci(s['late_share']['value'], s['late_share'].get('ci_low'), s['late_share'].get('ci_high'), 2)}"
            f" at ranks {power(eg['ranks']['lo'])}–{power(eg['ranks']['hi'])}; {eg['held']} of {eg.get('criteria_count', len(eg['criteria']))} criteria hold")


# -- rendering ------------------------------------------------------------------------------------

def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(no rows)"
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c).replace("|", "\\|") for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_cell(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "n/a"
        v = float(v) + 0.0                   # -0.0 prints as 0
        if v == 0:
            return "0"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return str(v)


def render_markdown(title: str, lead: str, sections) -> str:
    parts = [f"# {title}", "", lead, ""]
    for s in sections:
        parts += [f'<a id="{s["id"]}"></a>', "", f"## {s['title']}", "", f"*Source: `{s['source']}`*", "", s["md"], ""]
        for f in s.get("figures", []):
            parts += [f"![Figure {f['number']}: {f['caption']}](figures/{f['file']})", "",
                      f"*Figure {f['number']}. {f['caption']}*", ""]
        for d in s.get("details", []):
            parts += ["<details>", f"<summary>{htmllib.escape(d['summary'])}</summary>", "", d["md"], "", "</details>", ""]
    return "\n".join(parts)


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222;
       line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; display: block; overflow-x: auto;
        max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
th { background: #f3f3f3; }
table.matrix td { min-width: 2.6em; text-align: center; }
table.matrix td.empty { background: #eee; }
.source { color: #666; font-size: 0.85em; }
figure { margin: 1em 0; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #333; max-width: 900px; }
details { margin: 0.5em 0 1em; } summary { cursor: pointer; color: #1a5fb4; }
code { font-size: 0.92em; background: #f6f6f6; padding: 0 2px; }
</style></head>
<body>
<h1>{{ title }}</h1>
{{ lead | safe }}
{% for s in sections %}
<section id="{{ s.id }}"><h2>{{ s.title }}</h2><p class="source">Source: <code>{{ s.source }}</code></p>
{{ s.html | safe }}
{% for f in s.figures %}<figure><img src="data:image/png;base64,{{ images[f.file] }}" alt="Figure {{ f.number }}: {{ f.caption }}">
<figcaption><strong>Figure {{ f.number }}.</strong> {{ f.caption }}</figcaption></figure>
{% endfor %}
{% for d in s.details %}<details><summary>{{ d.summary }}</summary>
{{ d.html | safe }}
</details>
{% endfor %}
</section>
{% endfor %}
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-figures', imgs.length);
  document.body.setAttribute('data-figures-loaded', ok);
  var wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  document.body.setAttribute('data-page-overflows', wide ? 'yes' : 'no');
});
</script>
</body></html>
"""


def markdown_to_html(md: str) -> str:
    """CommonMark with tables (markdown-it-py); raw HTML (the win-rate matrix, anchors) passes."""
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


def render_html(title: str, lead: str, sections, figs_dir: Path) -> str:
    from jinja2 import Environment
    images = {}
    for s in sections:
        for f in s.get("figures", []):
            images[f["file"]] = base64.b64encode((figs_dir / f["file"]).read_bytes()).decode()
    view = [{**s, "html": markdown_to_html(s["md"]), "figures": s.get("figures", []),
             "details": [{**d, "html": markdown_to_html(d["md"])} for d in s.get("details", [])]} for s in sections]
    env = Environment(autoescape=True)
    return env.from_string(HTML).render(title=title, lead=markdown_to_html(lead), sections=view, images=images)
