"""`azscale zipf`: states tables, fits and figures for one or more runs, per run and pooled."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import runs
from ..checks import number
from ..config import base_name
from ..errors import UserError
from .states import FRAME, Visits, aggregate, build_states, key_scheme, select_games, states_table, Selection
from .endgame import LATE_TURN, early_counts, late_share_by_rank, plot_late_share
from .zipf import FitResult, fit_all, fit_ls, plot_rank_frequency, window_for


def parse_fit_window(spec: str, game: str, kinds: Sequence[str], weight: str | None) -> dict[str, Any]:
    """`paper` (the paper's window for this game; when every selected game is random play, the
    paper's random-play window), `ranks:LO-HI` or `counts:HI-LO`."""
    if spec == "paper":
        w = window_for("random" if list(kinds) == ["random"] else base_name(game))
    else:
        bad = UserError(f"fit window '{spec}' must be paper, ranks:LO-HI or counts:HI-LO")
        try:
            kind, rng = spec.split(":")
            lo, hi = rng.split("-")
            a = float(lo)
            b = hi if hi == "n/100" else float(hi)
        except ValueError:
            raise bad from None
        if kind not in ("ranks", "counts"):
            raise bad
        if kind == "ranks":
            a = number(a, f"fit window '{spec}': the lowest rank", lo=1, hi=1e15)
            if b != "n/100":
                b = number(b, f"fit window '{spec}': the highest rank", lo=a, lo_open=True, hi=1e15)
        else:
            if b == "n/100":
                raise bad
            a = number(a, f"fit window '{spec}': the highest count", lo=0, lo_open=True, hi=1e15)
            b = number(b, f"fit window '{spec}': the lowest count", lo=0, lo_open=True, hi=a, hi_open=True)
        w = {"kind": kind, "lo": a, "hi": b, "weight": "2/sqrt(rank)"}
    if weight:
        if weight not in ("2/sqrt(rank)", "2/rank", "none"):
            raise UserError(f"--weight must be 2/sqrt(rank), 2/rank or none, got {weight!r}")
        w["weight"] = weight
    return w


def _index_visits(v: Visits) -> tuple[np.ndarray, np.ndarray, int]:
    """State index and dense game index per visit, for resampling games."""
    _, state_idx = np.unique(v.key, return_inverse=True)
    games, game_idx = np.unique(v.game, return_inverse=True)
    return state_idx.ravel(), game_idx.ravel(), len(games)


def zipf_analysis(sources: Sequence[Path], out: Path, window: str = "all", kinds: Sequence[str] = (),
                  temperature: float | None = None, first_moves: int | None = None,
                  fit_window: str = "paper", weight: str | None = None, bootstrap: int = 0,
                  workers: int = 1, seed: int = 0, mle: bool = True, symmetry: bool = False,
                  late_turn: float = LATE_TURN, interval: str = "jackknife") -> dict[str, Any]:
    out = Path(out)
    if fit_window != "paper":
        parse_fit_window(fit_window, "", kinds, weight)      # check the options before reading
    if interval not in ("jackknife", "bootstrap"):
        raise UserError(f"--interval must be jackknife or bootstrap, got {interval!r}")
    sources = runs.distinct_sources(sources)
    runs.claim_dir(out, "zipf")
    tables = [runs.read_games(s) for s in sources]
    per_run: list[tuple[str, pa.Table, Path]] = []
    owner: dict[str, Path] = {}
    for src, t in zip(sources, tables):
        names = sorted(set(t["run"].to_pylist()))
        for n in names:
            if n in owner:
                raise UserError(f"{owner[n]} and {src} both hold games of run '{n}' (the same run twice, a copy, "
                                f"or two runs with one name); each run counts once")
            owner[n] = Path(src)
        per_run.append((",".join(names) or Path(src).name, t, Path(src)))
    games_all = pa.concat_tables([t for _, t, _ in per_run])
    games_names = sorted(set(games_all["game"].to_pylist()))
    if len(games_names) != 1:
        raise UserError(f"the inputs mix several games ({', '.join(games_names)}); analyse one game at a time")
    game = games_names[0]
    present = sorted(set(select_games(games_all, window, kinds, temperature)["kind"].to_pylist()))
    fw = parse_fit_window(fit_window, game, present, weight)
    scheme = key_scheme(game, symmetry)
    results: dict[str, Any] = {"game": game, "key_scheme": scheme, "outcome_frame": FRAME,
                               "late_turn": late_turn,
                               "selection": {"window": window, "kinds": list(kinds),
                                             "temperature": temperature, "first_moves": first_moves},
                               "fit_window": fw, "exponent_convention": "frequency ∝ rank^-alpha",
                               "intervals": {"method": interval if bootstrap else "none", "replicates": bootstrap,
                                             "resampled": "games"},
                               "curves": []}
    curves = []
    pooled_visits: list[Visits] = []
    offset = 0
    for label, t, src in per_run:
        st, v = build_states(t, window, kinds, temperature, first_moves, workers, keep_visits=True,
                             symmetry=symmetry, sources=[str(Path(src).resolve())])
        fits = fit_all(st["count"].to_numpy(), fw, _index_visits(v) if bootstrap else None, bootstrap,
                       seed=seed, mle=mle, interval=interval)
        curves.append({"label": label, "counts": st["count"].to_numpy(), "fits": fits,
                       "mean_turn": st["mean_turn"].to_numpy()})
        results["curves"].append(_curve_record(label, st, fits))
        v.game = v.game + offset      # keep games distinct when pooling
        offset = int(v.game.max()) + 1 if len(v.game) else offset
        pooled_visits.append(v)
        if len(per_run) == 1:
            runs.atomic_write_table(out / "states.parquet", st)
    if len(per_run) > 1:
        v = Visits(*(np.concatenate([getattr(p, f) for p in pooled_visits]) for f in
                     ("key", "turn", "outcome0", "player", "game")))
        sel = select_games(games_all, window, kinds, temperature)
        meta = Selection(runs=sorted(set(sel["run"].to_pylist())), window=window, kinds=list(kinds),
                         first_moves=first_moves, temperature=temperature, games=sel.num_rows,
                         visits=int(len(v.key)), sources=[str(Path(p).resolve()) for _, _, p in per_run])
        st = states_table(aggregate(v), game, meta, scheme)
        fits = fit_all(st["count"].to_numpy(), fw, _index_visits(v) if bootstrap else None, bootstrap,
                       seed=seed, mle=mle, interval=interval)
        curves.append({"label": "combined", "counts": st["count"].to_numpy(), "fits": fits,
                       "mean_turn": st["mean_turn"].to_numpy()})
        results["curves"].append(_curve_record("combined", st, fits))
        runs.atomic_write_table(out / "states.parquet", st)
    out.mkdir(parents=True, exist_ok=True)
    figs = plot_rank_frequency(curves, out / "rank_frequency", title=f"{game}: state visits ({window})")
    # end-game views on the last curve (the combined one when runs are pooled)
    main = curves[-1]
    shares = {c["label"]: late_share_by_rank(c["counts"], c["mean_turn"], late_turn) for c in curves}
    runs.atomic_write_text(out / "late_share.csv", pd.concat(
        [t.assign(curve=k) for k, t in shares.items()]).to_csv(index=False))
    figs += plot_late_share(shares, out / "late_share", late_turn)
    early = early_counts(main["counts"], main["mean_turn"], late_turn)
    early_fit = fit_ls(early, fw) if len(early) else None
    results["endgame"] = {
        "curve": main["label"], "late_turn": late_turn,
        "late_states": int(len(main["counts"]) - len(early)),
        "late_share_top100": float((main["mean_turn"][:100] >= late_turn).mean()) if len(main["counts"]) else float("nan"),
        "early_only_ls": early_fit.to_dict() if early_fit else None}
    if len(early) < len(main["counts"]):
        figs += plot_rank_frequency(
            [{"label": f"{main['label']}: all states", "counts": main["counts"], "fits": main["fits"][:1]},
             {"label": f"without late states (mean turn >= {late_turn:g})", "counts": early,
              "fits": [early_fit] if early_fit else []}],
            out / "rank_frequency_early", title=f"{game}: with and without late states")
    results["figures"] = [Path(f).name for f in figs]
    runs.atomic_write_json(out / "fits.json", results)
    runs.atomic_write_text(out / "summary.md", summary_markdown(results))
    return results


def _curve_record(label: str, st: pa.Table, fits: list[FitResult]) -> dict[str, Any]:
    counts = st["count"].to_numpy()
    return {"label": label, "distinct_states": int(len(counts)), "visits": int(counts.sum()),
            "games": json.loads(st.schema.metadata[b"selection"])["games"],
            "fits": [f.to_dict() for f in fits]}




def summary_markdown(res: dict[str, Any]) -> str:
    sel = res["selection"]
    lines = [f"# Zipf analysis: {res['game']}", "",
             f"- state key: `{res['key_scheme']}` (initial and terminal states excluded)",
             f"- game window: `{sel['window']}`; kinds: {sel['kinds'] or 'all'}; temperature: "
             f"{sel['temperature'] if sel['temperature'] is not None else 'all'}; first moves: "
             f"{sel['first_moves'] or 'all'}",
             f"- exponents: rank-frequency convention, {res['exponent_convention']}; MLE converted "
             f"from the counts' power law by alpha = 1/(gamma - 1)",
             f"- intervals: {res['intervals']['method']} over games, {res['intervals']['replicates']} replicates "
             f"(estimate +- 1.96 standard errors)", "",
             "| curve | games | visits | distinct states | method | alpha | 95% CI | fit range | weight |",
             "| --- | ---: | ---: | ---: | --- | ---: | --- | --- | --- |"]
    for c in res["curves"]:
        for f in c["fits"]:
            ci = "n/a" if runs.is_missing(f["ci_low"]) else f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]"
            lines.append(f"| {c['label']} | {c['games']:,} | {c['visits']:,} | {c['distinct_states']:,} | "
                         f"{f['method']} | {runs.fmt_number(f['alpha'])} | {ci} | {f['window']} | {f['weight']} |")
    eg = res.get("endgame")
    if eg:
        lines += ["", f"End game (curve '{eg['curve']}', late = mean turn >= {eg['late_turn']:g}): "
                      f"{eg['late_states']:,} late states; share of late states among the top 100 ranks: "
                      f"{runs.fmt_number(eg['late_share_top100'])}; LS exponent without late states: "
                      f"{runs.fmt_number(eg['early_only_ls']['alpha']) if eg['early_only_ls'] else 'n/a'}. "
                      f"Late share per rank bin: late_share.csv."]
    lines += ["", "Figures: " + ", ".join(res.get("figures", [])), ""]
    return "\n".join(lines)
