"""`azscale zipf`: states tables, fits and figures for one or more runs, per run and pooled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import checkpoints as ck
from .. import runs
from ..checks import number
from ..config import analysis_settings, base_name, check_late_turn, check_positive_int
from ..errors import UserError
from .states import FRAME, Visits, aggregate, build_states, key_scheme, select_games, states_table, Selection
from .endgame import (applicability, early_counts, endgame_evidence, evidence_lines, late_share_by_rank,
                      per_state_arrays, plot_late_boards, plot_late_share, plot_shoulder_curves,
                      plot_turn_vs_rank)
from .zipf import PAPER_WINDOWS, FitResult, fit_all, plot_rank_frequency, window_for


def paper_window(game: str, kinds: Sequence[str], temperatures: Sequence[float] = ()) -> dict[str, Any]:
    """The paper's window for the games selected, chosen by their kind (PAPER.md section 4):
    self-play games get the game's own window, match games (played at a set temperature) the
    temperature window (counts 200 down to 4, weight 2/rank), random games the random-play window.
    Games of several kinds have no one paper window: refused, naming the way out."""
    kinds = sorted(set(kinds))
    if len(kinds) > 1:
        raise UserError(f"the selected games mix kinds ({', '.join(kinds)}) and the paper fits each kind in its own "
                        "window; choose one with --kind, or give --fit-window ranks:LO-HI or counts:HI-LO")
    kind = kinds[0] if kinds else "selfplay"
    if kind == "random":
        return {**window_for("random"), "label": "random-play window", "chosen_for": "random games"}
    if kind == "match":
        ts = sorted(set(float(t) for t in temperatures))
        at = (f"temperature {ts[0]:g}" if len(ts) == 1 else
              f"{len(ts)} temperatures pooled ({', '.join(f'{t:g}' for t in ts)})" if ts else "temperature unknown")
        return {**window_for("temperature"), "label": "temperature window", "chosen_for": f"match games at {at}"}
    name = base_name(game)
    if name in PAPER_WINDOWS:
        return {**window_for(name), "label": f"{name} self-play window", "chosen_for": f"{kind} games of {name}"}
    return {**window_for(name), "label": "default window",
            "chosen_for": f"{kind} games of {name} (a game the paper does not fit: counts 100 down to 10)"}


def parse_fit_window(spec: str, game: str, kinds: Sequence[str], weight: str | None,
                     temperatures: Sequence[float] = ()) -> dict[str, Any]:
    """`paper` (the paper's window for the kind of games selected: `paper_window`),
    `ranks:LO-HI` or `counts:HI-LO`."""
    if spec == "paper":
        w = paper_window(game, kinds, temperatures)
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
        w = {"kind": kind, "lo": a, "hi": b, "weight": "2/sqrt(rank)", "label": "window from --fit-window",
             "chosen_for": spec}
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


def zipf_analysis(sources: Sequence[Path], out: Path, *, window: str = "all", kinds: Sequence[str] = (),
                  temperature: float | None = None, first_moves: int | None = None,
                  fit_window: str = "paper", weight: str | None = None, bootstrap: int = 0,
                  workers: int = 1, seed: int = 0, mle: bool = True, symmetry: bool = False,
                  late_turn: float | None = None, interval: str = "jackknife",
                  shoulder_moves: int | None = None) -> dict[str, Any]:
    """`late_turn` and `shoulder_moves` default to the game's `[analysis]` settings
    (games/<game>.toml)."""
    from .states import check_kinds
    out = Path(out)
    kinds = check_kinds(kinds)
    if fit_window != "paper":
        parse_fit_window(fit_window, "", kinds, weight)      # check the options before reading
    if interval not in ("jackknife", "bootstrap"):
        raise UserError(f"--interval must be jackknife or bootstrap, got {interval!r}")
    sources = runs.distinct_sources(sources)
    runs.claim_dir(out, "zipf")
    if late_turn is not None:
        late_turn = check_late_turn(late_turn)
    if shoulder_moves is not None:
        shoulder_moves = check_positive_int("shoulder_moves", shoulder_moves)
    if first_moves is not None:
        first_moves = check_positive_int("first_moves", first_moves)
    tables, game = runs.read_sources_games(sources)
    per_run: list[tuple[str, pa.Table, Path]] = [(",".join(sorted(set(t["run"].to_pylist()))) or src.name, t, src)
                                                 for src, t in tables]
    games_all = pa.concat_tables([t for _, t, _ in per_run])
    settings = analysis_settings(game)
    late_turn = settings["late_turn"] if late_turn is None else late_turn
    shoulder_moves = settings["shoulder_moves"] if shoulder_moves is None else shoulder_moves
    chosen = select_games(games_all, window, kinds, temperature)
    present = sorted(set(chosen["kind"].to_pylist()))
    fw = parse_fit_window(fit_window, game, present, weight, chosen["temperature"].to_pylist())
    scheme = key_scheme(game, symmetry)
    results: dict[str, Any] = {"game": game, "key_scheme": scheme, "outcome_frame": FRAME,
                               "late_turn": late_turn, "shoulder_moves": shoulder_moves,
                               "selection": {"window": window, "kinds": list(kinds),
                                             "temperature": temperature, "first_moves": first_moves},
                               "fit_window": fw, "exponent_convention": "frequency ∝ rank^-alpha",
                               "intervals": {"method": interval if bootstrap else "none", "replicates": bootstrap,
                                             "resampled": "games"},
                               "curves": []}
    curves = []
    pooled_visits: list[Visits] = []
    sel_runs, sel_ids = [], []         # (run, game id) of every selected game, in visit-index order
    offset = 0
    st = v = None
    for label, t, src in per_run:
        st, v = build_states(t, window, kinds, temperature, first_moves, workers, keep_visits=True,
                             symmetry=symmetry, sources=[str(Path(src).resolve())])
        fits = fit_all(st["count"].to_numpy(), fw, _index_visits(v) if bootstrap else None, bootstrap,
                       seed=seed, mle=mle, interval=interval)
        curves.append({"label": label, "counts": st["count"].to_numpy(), "fits": fits,
                       "mean_turn": st["mean_turn"].to_numpy(), **_size_of(Path(src))})
        results["curves"].append(_curve_record(label, st, fits))
        sel = select_games(t, window, kinds, temperature)
        sel_runs.append(sel["run"].to_numpy(zero_copy_only=False))
        sel_ids.append(sel["game_id"].to_numpy())
        v.game = v.game + offset      # keep games distinct when pooling
        offset += sel.num_rows        # visits are tagged with their game's row in the selection
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
        agg = aggregate(v)
        rows = agg.pop("example_game")       # pooled row index -> the game's own run and id
        agg["example_run"] = np.concatenate(sel_runs)[rows] if len(rows) else np.zeros(0, object)
        agg["example_game"] = np.concatenate(sel_ids)[rows] if len(rows) else np.zeros(0, np.int64)
        st = states_table(agg, game, meta, scheme)
        fits = fit_all(st["count"].to_numpy(), fw, _index_visits(v) if bootstrap else None, bootstrap,
                       seed=seed, mle=mle, interval=interval)
        curves.append({"label": "combined", "counts": st["count"].to_numpy(), "fits": fits,
                       "mean_turn": st["mean_turn"].to_numpy()})
        results["curves"].append(_curve_record("combined", st, fits))
        runs.atomic_write_table(out / "states.parquet", st)
    out.mkdir(parents=True, exist_ok=True)
    figs = plot_rank_frequency(curves, out / "rank_frequency",
                               title=f"{game}: state visits ({window}); key {scheme}")
    results["endgame"] = _endgame(game, curves, st, v, games_all, out, results, bootstrap, seed)
    figs += results["endgame"].get("figures", [])
    results["figures"] = [Path(f).name for f in figs]
    runs.atomic_write_json(out / "fits.json", results)
    runs.atomic_write_text(out / "summary.md", summary_markdown(results))
    return results


def _endgame(game: str, curves, st: pa.Table, v: Visits, games_all: pa.Table, out: Path,
             results: dict[str, Any], replicates: int, seed: int) -> dict[str, Any]:
    """End-game evidence and figures on the last curve (the combined one when runs are pooled)."""
    late_turn, shoulder_moves = results["late_turn"], results["shoulder_moves"]
    main = curves[-1]
    sel = results["selection"]
    base = {"curve": main["label"], "key_scheme": results["key_scheme"], "late_turn": late_turn,
            "shoulder_moves": shoulder_moves,
            "selection": {"window": sel["window"], "kinds": sel["kinds"], "temperature": sel["temperature"]}}
    app = applicability(game, late_turn, shoulder_moves)
    base.update(app)
    if not app["applicable"]:
        return base
    if sel["first_moves"] is not None:
        return {**base, "applicable": False,
                "reason": f"not applicable: the selection counts only the first {sel['first_moves']} moves of each "
                          "game, so the shoulder test (all moves against the first moves) cannot be made"}
    state_idx, game_idx, n_games = _index_visits(v)
    ev = endgame_evidence(state_idx, v.turn, game_idx, n_games, late_turn, shoulder_moves,
                          groups=replicates if replicates >= 2 else 20, seed=seed,
                          paper_window=results.get("fit_window"))
    base.update(ev)
    subtitle = (f"curve '{main['label']}', key {results['key_scheme']}, games {sel['window']}"
                f"{', kinds ' + ','.join(sel['kinds']) if sel['kinds'] else ''}; late = mean turn ≥ {late_turn:g}")
    figs = []
    shares = {c["label"]: late_share_by_rank(c["counts"], c["mean_turn"], late_turn) for c in curves}
    runs.atomic_write_text(out / "late_share.csv", pd.concat(
        [t.assign(curve=k) for k, t in shares.items()]).to_csv(index=False))
    if ev.get("measured"):
        r = ev["ranks"]
        bins = late_share_by_rank(main["counts"], main["mean_turn"], late_turn, lo=r["lo"], hi=r["hi"])
        bins["excess"] = bins["late_share"] - ev["stats"]["late_share_visits"]["value"]
        base["bins"] = bins.to_dict(orient="records")
    visits_share = ev["stats"]["late_share_visits"]["value"] if ev.get("measured") else None
    figs += plot_turn_vs_rank(main["counts"], main["mean_turn"], out / "turn_vs_rank", late_turn, subtitle, ev)
    figs += plot_late_share(shares, out / "late_share", late_turn, subtitle, ev, visits_share)
    count, _, first = per_state_arrays(state_idx, v.turn, shoulder_moves)
    figs += plot_shoulder_curves(
        [(f"all states ({len(main['counts']):,})", main["counts"]),
         (f"without late states (mean turn < {late_turn:g})", early_counts(main["counts"], main["mean_turn"], late_turn)),
         (f"first {shoulder_moves} moves of each game", first)],
        out / "rank_frequency_early", ev, subtitle)
    boards = _late_boards(game, st, games_all, late_turn)
    base["top_late"] = [{k: b[k] for k in ("rank", "count", "mean_turn", "player")} for b in boards]
    if boards:
        figs += plot_late_boards(game, boards, out / "late_states", subtitle)
    base["figures"] = [Path(f).name for f in figs]
    return base


def _late_boards(game: str, st: pa.Table, games: pa.Table, late_turn: float, k: int = 10) -> list[dict[str, Any]]:
    """The k most frequent late states, rebuilt by replaying one game that reached each."""
    import pyarrow.compute as pc

    from ..engines.spiel import load_spiel_game
    mt = st["mean_turn"].to_numpy()
    top = np.flatnonzero(mt >= late_turn)[:k]
    if not len(top):
        return []
    d = st.take(pa.array(top)).to_pydict()
    want = pa.array(sorted({int(x) for x in d["example_game"]}), pa.int64())
    sub = games.filter(pc.is_in(games["game_id"].cast(pa.int64()), want))
    acts = {(r, int(g)): a for r, g, a in zip(sub["run"].to_pylist(), sub["game_id"].to_pylist(),
                                               sub["actions"].to_pylist())}
    g = load_spiel_game(game)
    out = []
    for i in range(len(top)):
        a = acts.get((str(d["example_run"][i]), int(d["example_game"][i])))
        if a is None:
            continue
        s = g.new_initial_state()
        for x in a[:int(d["example_turn"][i])]:
            s.apply_action(int(x))
        out.append({"rank": int(d["rank"][i]), "count": int(d["count"][i]), "mean_turn": float(d["mean_turn"][i]),
                    "player": int(s.current_player()), "text": str(s)})
    return out


def _size_of(src: Path) -> dict[str, Any]:
    """A run's parameter count and seed (for the figures' colours and order); {} for other tables."""
    if not ck.is_run(src):
        return {}
    cfg = ck.read_run_config(src)
    return {"params": cfg["params"], "seed": cfg["settings"].get("seed", 0)}


def _curve_record(label: str, st: pa.Table, fits: list[FitResult]) -> dict[str, Any]:
    counts = st["count"].to_numpy()
    return {"label": label, "distinct_states": int(len(counts)), "visits": int(counts.sum()),
            "games": json.loads(st.schema.metadata[b"selection"])["games"],
            "fits": [f.to_dict() for f in fits]}




def window_words(fw: dict[str, Any]) -> str:
    """The fit window in words: its name, what chose it, its range and weight."""
    from .zipf import fmt_count
    rng = (f"ranks {fmt_count(fw['lo'])} to {fmt_count(fw['hi'])}" if fw["kind"] == "ranks"
           else f"ranks where the count falls from {fmt_count(fw['lo'])} to {fmt_count(fw['hi'])}")
    head = fw.get("label", "window")
    why = f" (for {fw['chosen_for']})" if fw.get("chosen_for") else ""
    return f"{head}{why}: {rng}, weight {fw['weight']}"


def summary_markdown(res: dict[str, Any]) -> str:
    sel = res["selection"]
    lines = [f"# Zipf analysis: {res['game']}", "",
             f"- state key: `{res['key_scheme']}` (initial and terminal states excluded)",
             f"- game window: `{sel['window']}`; kinds: {sel['kinds'] or 'all'}; temperature: "
             f"{sel['temperature'] if sel['temperature'] is not None else 'all'}; first moves: "
             f"{sel['first_moves'] or 'all'}",
             f"- exponents: rank-frequency convention, {res['exponent_convention']}; MLE converted "
             f"from the counts' power law by alpha = 1/(gamma - 1)",
             f"- LS fit window: {window_words(res['fit_window'])}",
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
        lines += ["", f"## End game (curve '{eg.get('curve', '?')}', late = mean turn ≥ {eg['late_turn']:g}, "
                      f"shoulder test on the first {eg.get('shoulder_moves', '?')} moves)", ""]
        lines += evidence_lines(eg)
        if eg.get("bins"):
            lines += ["", "| ranks | states | late share | excess over all visits |", "| --- | ---: | ---: | ---: |"]
            for b in eg["bins"]:
                lines.append(f"| {b['rank_lo']:,}–{b['rank_hi'] - 1:,} | {b['states']:,} | {b['late_share']:.3f} | "
                             f"{b['excess']:+.3f} |")
    lines += ["", "Figures: " + ", ".join(res.get("figures", [])), ""]
    return "\n".join(lines)
