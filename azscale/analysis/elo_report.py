"""`azscale elo`, `azscale scaling` and `azscale verdict`: tables, JSON, Markdown and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import checkpoints as ck
from .. import runs
from ..errors import UserError
from .elo import fit_elo, score_matrix
from .elo_files import load_elo
from .seat import seat_summary
from .plotting import pyplot, save
from .quanta import fit_loss_vs_data, learner_curves, quanta_check
from .scaling import NotApplicable, elo_exponent, saturating_fit
from .sizeboot import DEFAULT_REPS, check_resampling, size_bootstrap
from .verdict import VERDICT_TITLE, inverse_scaling, verdict_dict, verdict_markdown


def elo_analysis(tournaments: Sequence[Path], out: Path, *, anchor: str | None = None, bootstrap: int = 200,
                 seed: int = 0) -> dict[str, Any]:
    tournaments = runs.distinct_sources(tournaments, "tournament")
    runs.claim_dir(Path(out), "elo")
    results, players, settings = [], {}, []
    for t in tournaments:
        results.append(runs.read_finished_results(t))
        players.update(runs.read_players(t))
        settings.append(runs.read_settings(t))
    games = {s["game"] for s in settings}
    if len(games) > 1:
        raise UserError(f"the tournaments are of different games ({', '.join(sorted(games))})")
    res = pd.concat(results, ignore_index=True)
    fit = fit_elo(res, anchor=anchor, bootstrap=bootstrap, seed=seed)
    table = fit.table()
    meta = pd.DataFrame([{"player": k, "kind": v["kind"], "run": v["run"], "step": v["step"],
                          "params": v["params"]} for k, v in players.items()])
    table = table.merge(meta, on="player", how="left")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_text(out / "elo.csv", table.to_csv(index=False))
    if fit.samples is not None:
        import io
        buf = io.BytesIO()
        np.savez(buf, players=np.array(fit.players), samples=fit.samples)
        runs.atomic_write_bytes(out / "bootstrap.npz", buf.getvalue())
    summary = {"game": games.pop(), "anchor": fit.anchor, "first_move_elo": fit.first_move,
               "first_move_ci": list(fit.first_move_ci), "draw_width_elo": fit.draw_width,
               "bootstrap": fit.bootstrap, "tournaments": [str(t) for t in tournaments],
               "match_settings": settings, "players": len(fit.players),
               "model": "Bradley-Terry with BayesElo draw width and first-move term; prior sd 2000 Elo",
               "seat": seat_summary(res, players)}
    figs = _elo_figures(table, res, out, results[0])
    summary["figures"] = figs
    runs.atomic_write_json(out / "elo.json", summary)
    return summary


def _elo_figures(table: pd.DataFrame, res: pd.DataFrame, out: Path, first: pd.DataFrame) -> list[str]:
    """Elo against parameters (final checkpoints), against step (where a run has several), and
    the win-rate matrix of the first tournament's players (a sweep's final checkpoints)."""
    from .plotting import REFERENCE_STYLE, run_styles, seed_of, size_colours
    plt = pyplot()
    figs = []
    agents = table[table["kind"] == "agent"]
    refs = table[table["kind"] != "agent"]
    anchor = table.loc[table["elo"] == 0, "player"]
    ylabel = f"Elo ({anchor.iloc[0]} = 0)" if len(anchor) else "Elo"
    style = run_styles((r, p, seed_of(r)) for r, p in agents[["run", "params"]].drop_duplicates()
                       .itertuples(index=False)) if len(agents) else {}
    if len(agents):
        final = agents.loc[agents.groupby("run")["step"].idxmax()]
        colour = size_colours(final["params"])
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in final.sort_values(["params", "run"]).itertuples():
            yerr = None
            if "elo_ci_low" in final:
                yerr = [[r.elo - r.elo_ci_low], [r.elo_ci_high - r.elo]]
            ax.errorbar([r.params], [r.elo], yerr=yerr, fmt=style[r.run]["marker"], capsize=3, color=colour[r.params],
                        label=style[r.run]["label"])
        for r in refs.itertuples():            # reference players: a level to compare with, not a size
            ax.axhline(r.elo, **REFERENCE_STYLE)
            ax.annotate(f"{r.player} (reference)", (0.01, r.elo), xycoords=("axes fraction", "data"),
                        textcoords="offset points", xytext=(0, 3), fontsize=7, color=REFERENCE_STYLE["color"])
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(ylabel)
        ax.set_title("Elo vs parameters (final checkpoints, 95% bootstrap CI)")
        ax.legend(fontsize=6, ncol=2)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        figs += save(fig, out / "elo_vs_params", names=True)
        if agents.groupby("run")["step"].nunique().max() > 1:
            fig, ax = plt.subplots(figsize=(6, 4))
            for run, st in style.items():      # smallest to largest, one line style per seed
                g = agents[agents["run"] == run].sort_values("step")
                ax.plot(g["step"].clip(lower=1), g["elo"], ms=3, color=st["color"], ls=st["ls"], marker=st["marker"],
                        label=st["label"])
            for r in refs.itertuples():
                ax.axhline(r.elo, **REFERENCE_STYLE)
            ax.set_xscale("log")
            ax.set_xlabel("learner step")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=7)
            ax.grid(True, alpha=0.3)
            fig.tight_layout()
            figs += save(fig, out / "elo_vs_step", names=True)
    # players by size (then seed, then step), the reference players last
    order = agents.assign(seed=agents["run"].map(seed_of)).sort_values(["params", "seed", "step"])["player"].tolist()
    played = set(first["first"]) | set(first["second"])
    names = [n for n in order if n in played] + sorted(r for r in refs["player"] if r in played)
    label = {n: f"{n} (reference)" for n in refs["player"]}
    num, den = score_matrix(first, names)
    with np.errstate(invalid="ignore"):
        score = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    side = 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(max(5, side + 2.5), max(4, side + 2)))
    im = ax.imshow(score, cmap="RdBu", vmin=0, vmax=1)
    ticks = [label.get(n, n) for n in names]
    ax.set_xticks(range(len(names)), ticks, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), ticks, fontsize=6)
    for i in range(len(names)):                # the score in every cell
        for j in range(len(names)):
            if not np.isnan(score[i, j]):
                ax.text(j, i, f"{score[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(score[i, j] - 0.5) > 0.3 else "black")
    ax.set_title("score of the row player against the column player\n(win 1, draw ½; players by size)", fontsize=8)
    fig.colorbar(im, ax=ax, label="score")
    fig.tight_layout()
    figs += save(fig, out / "win_rate_matrix", names=True)
    return figs


def _final_agents(table: pd.DataFrame, samples):
    agents = table[table["kind"] == "agent"]
    if agents.empty:
        raise UserError("the Elo table has no agents")
    final = agents.loc[agents.groupby("run")["step"].idxmax()].sort_values("params")
    return final.reset_index(drop=True), (samples[:, final.index.to_numpy()] if samples is not None else None)


def run_losses(run_dirs: Sequence[Path], tail: float = 0.1) -> pd.DataFrame:
    """Per run: parameters, final learner value loss (mean over the last `tail` of its steps) and
    training compute = 2 N x network evaluations in self-play + 6 N x training samples."""
    rows = []
    for rd in runs.distinct_sources(run_dirs, "run"):
        cfg = ck.read_run_config(rd)
        m = ck.recorded_metrics(rd)
        if not m:
            raise UserError(f"{rd}: has no trained step yet; nothing to fit")
        k = max(1, int(len(m) * tail))
        st = cfg["settings"]
        n = cfg["params"]
        try:
            samples = len(m) * st["updates_per_step"] * st["batch_size"]
            evals = m[-1]["states_total"] * st["simulations"]
            rows.append({"run": cfg["run"], "params": n,
                         "value_loss": float(np.mean([float(x["loss_value"]) for x in m[-k:]])),
                         "policy_loss": float(np.mean([float(x["loss_policy"]) for x in m[-k:]])),
                         "flops": 2.0 * n * evals + 6.0 * n * samples})
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{rd}: damaged metrics.jsonl or config.json ({type(exc).__name__}: {exc})") from None
    return pd.DataFrame(rows)


def read_zipf_fits(path: Path) -> dict[str, Any]:
    """fits.json of azscale zipf, checked for what the scaling and verdict steps read."""
    z = runs.read_json(path, "fits.json of azscale zipf")
    curves = z.get("curves")
    ok = isinstance(z.get("key_scheme"), str) and isinstance(curves, list) and curves and all(
        isinstance(c, dict) and isinstance(c.get("label"), str) and isinstance(c.get("fits"), list)
        and all(isinstance(f, dict) and "method" in f and "alpha" in f for f in c["fits"]) for c in curves)
    if not ok:
        raise UserError(f"{path}: damaged fits.json (curves, fits or key scheme missing)")
    return z


def scaling_analysis(elo_dir: Path, out: Path, *, min_params: int = 0, max_params: int | None = None,
                     zipf: Path | None = None, run_dirs: Sequence[Path] = (), bootstrap: int = 100,
                     replicates: int = DEFAULT_REPS, seed_resampling: str = "pooled", seed: int = 0) -> dict[str, Any]:
    _check_range(min_params, max_params)
    check_resampling(replicates, seed)
    table, samples, summary = load_elo(elo_dir)
    runs.claim_dir(Path(out), "scaling")
    z = read_zipf_fits(zipf) if zipf else None               # every input is read before any fit
    lt = run_losses(run_dirs) if run_dirs else None
    final, fs = _final_agents(table, samples)
    boot = size_bootstrap(final, fs, reps=replicates, seed=seed, scheme=seed_resampling)
    try:
        fit = elo_exponent(final, min_params=min_params, max_params=max_params, boot=boot)
    except NotApplicable as e:
        fit = None
        na = {"alpha": None, "ci_low": None, "ci_high": None, "note": f"not applicable: {e}"}
    res: dict[str, Any] = {"game": summary["game"], "elo_exponent": fit.to_dict() if fit else na,
                           "match_settings": summary["match_settings"]}
    if lt is not None:
        res["loss_table"] = lt.to_dict(orient="records")
        for x in ("params", "flops"):
            try:
                f = saturating_fit(lt[x].to_numpy(), lt["value_loss"].to_numpy(), groups=lt["params"].to_numpy(),
                                   bootstrap=bootstrap)
                res[f"value_loss_vs_{x}"] = f.to_dict()
            except UserError as exc:
                res[f"value_loss_vs_{x}"] = {"error": str(exc)}
        res["value_loss_vs_data"] = fit_loss_vs_data(learner_curves(run_dirs))
    if z is not None:
        res["quanta"] = quanta_check(z, res["elo_exponent"], res.get("value_loss_vs_params"),
                                     res.get("value_loss_vs_data"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    from .plotting import size_colours
    colour = size_colours(final["params"])
    ax.scatter(final["params"], final["elo"], s=16, alpha=0.8, c=[colour[p] for p in final["params"]],
               label="final checkpoints (each seed; colour: size)")
    ax.plot(boot.params, boot.mean, "s", color="k", ms=4, label="size means")
    if fit is None:
        ax.set_title(f"{summary['game']}: Elo exponent {na['note']}", fontsize=7)
        return _finish_scaling(fig, ax, out, res)
    xs = np.geomspace(fit.params_min, fit.params_max, 50)
    ci = "" if runs.is_missing(fit.ci_low) else f" [{fit.ci_low:.3f}, {fit.ci_high:.3f}]"
    ax.plot(xs, fit.intercept + 400 * fit.alpha * np.log10(xs), "-", label=f"α_N = {fit.alpha:.3f}{ci}")
    if boot.resamples:
        keep = (boot.params >= fit.params_min) & (boot.params <= fit.params_max)
        coef = np.polyfit(np.log10(boot.params[keep].astype(float)), boot.samples[:, keep].T, 1)
        band = coef[1][:, None] + coef[0][:, None] * np.log10(xs)[None, :]
        ax.fill_between(xs, np.percentile(band, 2.5, 0), np.percentile(band, 97.5, 0), alpha=0.2,
                        label="95% band (hierarchical bootstrap)")
    ax.set_title(f"{summary['game']}: Elo exponent over {fit.range_rule}", fontsize=7)
    return _finish_scaling(fig, ax, out, res)


def _finish_scaling(fig, ax, out: Path, res: dict[str, Any]) -> dict[str, Any]:
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("Elo")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    res["figures"] = save(fig, out / "elo_fit", names=True)
    runs.atomic_write_json(out / "scaling.json", res)
    return res


def _check_range(min_params: int, max_params: int | None) -> None:
    if min_params < 0:
        raise UserError(f"--min-params must be >= 0, got {min_params}")
    if max_params is not None and max_params < max(min_params, 1):
        raise UserError(f"--max-params ({max_params}) must be >= 1 and >= --min-params ({min_params})")


def tournament_design(summary: dict[str, Any]) -> dict[str, Any]:
    """The tournament's games per pair (the first tournament's: the final checkpoints'), fitted
    first-move advantage and draw width, as power.py needs them."""
    try:
        gpp = int(summary["match_settings"][0]["games_per_pair"])
        fm, dw = float(summary["first_move_elo"]), float(summary["draw_width_elo"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise UserError("elo.json: damaged (games per pair, first-move advantage or draw width missing)") from None
    return {"games_per_pair": gpp, "first_move": fm, "draw_width": dw}


VERDICT_KIND = "verdict"


def _is_verdict_json(d: Any) -> bool:
    # (files written before the kind was recorded: the keys every verdict holds)
    return isinstance(d, dict) and (d.get("kind") == VERDICT_KIND or (
        "kind" not in d and {"game", "flagged", "inverse_scaling", "peak", "steps", "vs_largest"} <= d.keys()))


def claim_verdict_files(out: Path) -> Path:
    """The verdict's JSON path beside `out`, after refusing to overwrite anything that is not a
    verdict azscale wrote (`runs.claim_markdown_and_json`): both files are checked before any work."""
    return runs.claim_markdown_and_json(out, "verdict", VERDICT_TITLE, _is_verdict_json, "verdict.md")


def verdict(elo_dir: Path, out: Path, *, zipf: Path | None = None, loss: Path | None = None, fwer: float = 0.05,
            replicates: int = DEFAULT_REPS, seed_resampling: str = "pooled", seed: int = 0,
            power_sims: int | None = None, run_dirs: Sequence[Path] = (),
            exact: Path | None = None) -> dict[str, Any]:
    """`run_dirs`: the runs of the final checkpoints; given, the verdict also requires every run to
    be saturated (analysis/saturation.py) and lists each run's state in verdict.json. `exact`: a
    `loss --target solver` loss.json whose exact move-accuracy gains stand in for the Elo gain
    where that is not applicable."""
    check_resampling(replicates, seed)
    if exact is not None:
        from .saturation import check_exact_gains
        check_exact_gains(Path(exact), [Path(r).name for r in run_dirs])   # before anything is written
    if not 0 < fwer < 0.5:
        raise UserError(f"--fwer must be in (0, 0.5), got {fwer}")
    vj = claim_verdict_files(out)
    table, samples, summary = load_elo(elo_dir)
    if samples is None:
        raise UserError(f"{elo_dir}: the verdict needs bootstrap samples (run azscale elo with --bootstrap)")
    final, fs = _final_agents(table, samples)
    z = read_zipf_fits(zipf) if zipf else None
    lo = runs.read_json(loss, "loss.json of azscale loss") if loss else None
    for what, d in (("--zipf", z), ("--loss", lo)):
        if d is not None and d.get("game") not in (None, summary["game"]):
            raise UserError(f"{what} holds results for '{d.get('game')}', the Elo table for '{summary['game']}'")
    test = inverse_scaling(final, fs, fwer, replicates, seed, seed_resampling, design=tournament_design(summary),
                           power_sims=power_sims)
    from .verdict import seat_condition
    test.conditions.append(seat_condition(summary.get("seat")))
    saturation = None
    if run_dirs:
        from .saturation import saturation_table
        from .verdict import saturation_condition
        named = {Path(r).name for r in run_dirs}
        missing = sorted(set(final["run"].dropna()) - named)
        if missing:
            raise UserError(f"--run: the Elo table's runs {', '.join(missing[:3])} are not among the runs given")
        saturation = saturation_table(elo_dir, [Path(r) for r in run_dirs if Path(r).name in set(final["run"])],
                                      exact=exact)
        test.conditions.append(saturation_condition(saturation))
    text = verdict_markdown(summary["game"], test, z, lo)
    out = Path(out)
    runs.atomic_write_text(out, text)
    runs.atomic_write_json(vj, {"kind": VERDICT_KIND, "game": summary["game"], **verdict_dict(test, z, lo),
                                "saturation": saturation if saturation is not None else
                                {"applicable": False, "reason": "no run directories given (verdict --run)"}})
    return {"verdict": test.state, "flagged": test.flagged, "inverse_scaling": test.inverse, "peak": test.peak,
            "power": test.power.to_dict() if test.power is not None else None,
            "steps": [test._comparison(c) for c in test.steps], "markdown": str(out), "json": str(vj)}
