"""The small-oware variant scan (`azscale oware-scan`): which board to study, before the sweeps.

For each variant (houses per player x seeds per house) it measures, from the rules alone and from
games it plays:
- reachable positions (board, scores, player to move): a breadth-first walk over the moves that
  stops at finished games; the repetition rule only ends games, so this is the set a real game
  can visit (any position reached by a line with a repetition is reached by the line without
  its cycle). Stopped at `max_positions` ("more than"). Also how many of them share their
  observation (seeds and scores: OpenSpiel's oware observation has no player to move) with
  another, which a network cannot tell apart.
- random play: mean length and the share of games the repetition rule ends (the rules in
  `owaresolve.OwareRules`, LENGTH_GAMES games); the late turn and shoulder moves that the
  variant's rule gives (`config.late_turn_rule`); the end-game evidence of `azscale zipf` on
  `random_games` uniformly random games;
- short self-play: one small agent trained for `selfplay_steps` learner steps (the `cpu`
  preset's search and learner by default), the mean length of its games and their end-game evidence;
- the solver: the start position (value, seconds) and, on up to `solver_states` distinct states
  of the self-play games (half early, half late where there are enough), the share solved
  within the node budget, with the mean seconds per state.
It writes `scan.json` (everything, with the settings) and `scan.md` (the table), atomically; a
rerun with the same settings keeps the variants already measured and adds the others.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import runs
from .errors import UserError

DEFAULT_VARIANTS = ((3, 2), (3, 3), (4, 2), (4, 3), (5, 2), (6, 2), (3, 4))


def variant_game(h: int, s: int) -> str:
    return f"oware(num_houses_per_player={h},num_seeds_per_house={s})"


def parse_variants(text: str) -> list[tuple[int, int]]:
    """`3x2,4x3` -> [(3, 2), (4, 3)]."""
    out = []
    for part in text.split(","):
        try:
            h, s = (int(x) for x in part.strip().lower().split("x"))
        except ValueError:
            raise UserError(f"--variants: '{part.strip()}' is not HOUSESxSEEDS (e.g. 4x3)") from None
        if not (2 <= h <= 6 and 1 <= s <= 6):
            raise UserError(f"--variants: {h}x{s} is outside 2-6 houses x 1-6 seeds")
        if 2 * (2 * h * s + 1) ** (2 * h - 1) >= 2 ** 63:       # the self-play run's tensor twin packs a board in 64 bits
            raise UserError(f"--variants: {h}x{s} has too many seeds for the oware tensor twin the self-play run uses")
        if (h, s) in out:
            raise UserError(f"--variants: {h}x{s} is given twice")
        out.append((h, s))
    if not out:
        raise UserError("--variants: give at least one variant")
    return out


def reachable_positions(h: int, s: int, max_positions: int = 3_000_000) -> dict[str, Any]:
    from .owaresolve import OwareRules
    R = OwareRules(h, s)
    start = (R.start, (0, 0), 0)
    seen = {start}
    todo = deque([start])
    t0 = time.perf_counter()
    while todo:
        b, sc, p = todo.popleft()
        for a in R.legal(b, p):
            b2, sc2, _ = R.sow(b, sc, p, a)
            if R.decided(sc2) or not R.legal(b2, 1 - p):
                continue                                   # the game ends here: a terminal state
            nxt = (b2, sc2, 1 - p)
            if nxt not in seen:
                seen.add(nxt)
                if len(seen) > max_positions:
                    return {"positions": None, "more_than": max_positions, "seconds": time.perf_counter() - t0}
                todo.append(nxt)
    # the network's input is the seeds and scores, not the player to move (OpenSpiel's observation)
    boards = Counter((b, sc) for b, sc, _ in seen)
    shared = sum(n for n in boards.values() if n > 1)
    return {"positions": len(seen), "shared_observation": shared, "seconds": time.perf_counter() - t0}


def random_play(h: int, s: int, games: int = 300, seed: int = 0) -> dict[str, Any]:
    from .owaresolve import OwareRules
    R = OwareRules(h, s)
    rng = np.random.default_rng(seed)
    lengths, repeated = [], 0
    for _ in range(games):
        b, sc, p, hist, n, over = R.start, (0, 0), 0, [(R.start, 0)], 0, False
        while not over:
            legal = R.legal(b, p)
            b, sc, p, hist, over, rep = R.play(b, sc, p, hist, legal[int(rng.integers(len(legal)))])
            n += 1
        repeated += rep
        lengths.append(n)
    return {"mean_length": float(np.mean(lengths)), "sd_length": float(np.std(lengths)),
            "repetition_ends": repeated / games, "games": games, "seed": seed}


def _evidence(eg: dict[str, Any] | None) -> dict[str, Any]:
    """The end-game evidence's headline numbers (whatever criteria the zipf analysis has)."""
    if not eg or not eg.get("measured"):
        return {"measured": False, "reason": (eg or {}).get("reason", "not measured")}
    st = eg.get("stats", {})

    def v(k):
        x = st.get(k, {})
        return {"value": x.get("value"), "ci": [x.get("ci_low"), x.get("ci_high")]}
    return {"measured": True, "pattern": eg.get("pattern"), "held": eg.get("held"),
            "criteria": {k: c.get("holds") for k, c in (eg.get("criteria") or {}).items()},
            "late_share": v("late_share"), "late_excess": v("late_excess"), "alpha_gap_late": v("alpha_gap_late"),
            "late_states": eg.get("late_states"), "states": eg.get("states"), "ranks": eg.get("ranks")}


def _solver_coverage(game: str, games_table, late_turn: float, n: int, budget: int, seed: int) -> dict[str, Any]:
    import pyspiel

    from .owaresolve import OwareSolver
    g = pyspiel.load_game(game)
    solver = OwareSolver(g, budget=budget)
    t0 = time.perf_counter()
    v0, _ = solver.solve([])
    start = {"value": v0, "seconds": time.perf_counter() - t0, "solved": not math.isnan(v0)}
    rng = np.random.default_rng(seed)
    acts = games_table.column("actions").to_pylist()
    early, late = [], []
    for a in acts:                               # one position per game, at a random turn
        if len(a) < 2:
            continue
        t = int(rng.integers(1, len(a)))         # after t moves; the game is not over yet
        (late if t >= late_turn else early).append(a[:t])
    out = {"start": start, "budget": budget}
    for name, pool in (("early", early), ("late", late)):
        pick = [pool[i] for i in rng.permutation(len(pool))[: n // 2]]
        solved, secs = 0, []
        for hist in pick:
            t = time.perf_counter()
            val, _ = solver.solve(hist)
            secs.append(time.perf_counter() - t)
            solved += not math.isnan(val)
        out[name] = {"sampled": len(pick), "solved": solved,
                     "share": solved / len(pick) if pick else None,
                     "mean_seconds": float(np.mean(secs)) if secs else None}
    return out


def scan(variants: Sequence[tuple[int, int]], out: Path, *, random_games: int = 5000, selfplay_steps: int = 6,
         width: int = 16, solver_states: int = 40, budget: int | None = None, workers: int = 1, seed: int = 0,
         max_positions: int = 3_000_000, preset: str = "cpu", log=print) -> dict[str, Any]:
    from .analysis.baselines import random_games as play_random
    from .analysis.zipf_report import zipf_analysis
    from .config import analysis_settings, late_turn_rule, resolve
    from .owaresolve import DEFAULT_BUDGET, MAX_SEEDS
    from .train import train
    out = Path(out)
    # each variant's self-play settings (--preset, --width, ...) checked before anything is written
    cfgs = {(h, s): resolve(variant_game(h, s), preset, {"width": width, "steps": selfplay_steps, "seed": seed,
                                                         "checkpoints": 2, "snapshot_seconds": 0})
            for h, s in variants}
    runs.claim_dir(out, "oware-scan")
    budget = DEFAULT_BUDGET if budget is None else budget
    settings = {"random_games": random_games, "selfplay_steps": selfplay_steps, "width": width, "preset": preset,
                "solver_states": solver_states, "budget": budget, "seed": seed, "max_positions": max_positions}
    out.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, Any]] = {}
    if (out / "scan.json").exists():              # a rerun keeps the variants measured with the same settings
        old = runs.read_json(out / "scan.json", "scan.json of azscale oware-scan")
        if old.get("settings") == settings:
            done = _kept_rows(old.get("variants", []), out / "scan.json")
    else:                                          # the marker first: a killed scan is ours to resume
        runs.atomic_write_json(out / "scan.json", {"variants": [], "settings": settings})
    rows = [r for v, r in done.items() if v not in {f"{h}x{s}" for h, s in variants}]
    for h, s in variants:
        game = variant_game(h, s)
        if f"{h}x{s}" in done:
            rows.append(done[f"{h}x{s}"])
            continue
        d = out / f"{h}x{s}"
        log(f"{h}x{s}: reachable positions")
        row: dict[str, Any] = {"variant": f"{h}x{s}", "game": game, "houses": h, "seeds_per_house": s,
                               "seeds": 2 * h * s}
        row["reachable"] = reachable_positions(h, s, max_positions)
        row["random"] = random_play(h, s)
        row["analysis"] = {**analysis_settings(game), "rule": late_turn_rule(game)["rule"]}
        log(f"{h}x{s}: {random_games:,} random games and their end-game evidence")
        play_random(game, random_games, seed=seed, out=d / "random", workers=workers, progress=False)
        z = zipf_analysis([d / "random"], d / "zipf-random", workers=workers, mle=False)
        row["random"]["evidence"] = _evidence(z.get("endgame"))
        log(f"{h}x{s}: self-play, width {width}, {selfplay_steps} steps")
        cfg = cfgs[(h, s)]
        t0 = time.perf_counter()
        train(cfg, d / "selfplay", quiet=True)
        z = zipf_analysis([d / "selfplay"], d / "zipf-selfplay", workers=workers, mle=False)
        g = runs.read_games(d / "selfplay")
        row["selfplay"] = {"steps": selfplay_steps, "width": width, "preset": preset, "games": g.num_rows,
                           "mean_length": float(np.mean(g.column("length").to_numpy())),
                           "seconds": time.perf_counter() - t0, "evidence": _evidence(z.get("endgame"))}
        if 2 * h * s <= MAX_SEEDS:
            log(f"{h}x{s}: solver coverage")
            row["solver"] = _solver_coverage(game, g, row["analysis"]["late_turn"], solver_states, budget, seed)
        else:
            row["solver"] = {"applicable": False, "reason": f"{2 * h * s} seeds: more than the solver's {MAX_SEEDS}"}
        rows.append(row)
        runs.atomic_write_json(out / "scan.json", {"variants": rows, "settings": settings})
    runs.atomic_write_text(out / "scan.md", scan_markdown(rows))
    return {"variants": rows, "scan_json": str(out / "scan.json"), "scan_md": str(out / "scan.md")}


def _fmt(x, f="{:.2f}"):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f.format(x)


def _ev(e):
    if not e.get("measured"):
        return "not measured"
    ls = e["late_share"]["value"]
    gap = e["alpha_gap_late"]
    return (f"{e['pattern']} ({e['held']}); late share {_fmt(ls)}; gap {_fmt(gap['value'], '{:+.3f}')} "
            f"[{_fmt(gap['ci'][0], '{:+.3f}')}, {_fmt(gap['ci'][1], '{:+.3f}')}]")


def _kept_rows(rows: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The variants a rerun keeps from `scan.json`, each checked by drawing its table row (what
    the scan reads of it); a damaged file is refused in one line, never half used."""
    def damaged(why: str) -> UserError:
        return UserError(f"{path}: damaged scan.json of azscale oware-scan ({why}); move it away or delete it")
    if not isinstance(rows, list):
        raise damaged("'variants' is not a list")
    kept = {}
    for r in rows:
        if not isinstance(r, dict) or not isinstance(r.get("variant"), str):
            raise damaged("a variant without its name")
        try:
            scan_markdown([r])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise damaged(f"variant {r['variant']}: {type(e).__name__}: {e}") from None
        kept[r["variant"]] = r
    return kept


def scan_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| variant | seeds | reachable positions | random length (repetition ends) | late turn / shoulder "
            "| self-play length | end-game evidence, random | end-game evidence, self-play | start solved "
            "| solved early / late |\n|" + "---|" * 10)
    lines = [head]
    for r in rows:
        rp = r["reachable"]
        reach = f"{rp['positions']:,}" if rp["positions"] is not None else f"> {rp['more_than']:,}"
        if rp.get("shared_observation") is not None and rp["positions"]:
            reach += f" ({rp['shared_observation'] / rp['positions']:.0%} share their observation)"
        sv = r["solver"]
        if sv.get("applicable") is False:
            start = cover = "not applicable"
        else:
            st = sv["start"]
            start = (f"{_fmt(st['value'], '{:+.0f}')} in {st['seconds']:.1f} s" if st["solved"]
                     else f"no ({sv['budget']:,} nodes)")
            cover = " / ".join(f"{_fmt(sv[k]['share'], '{:.0%}')} of {sv[k]['sampled']}" for k in ("early", "late"))
        lines.append(f"| {r['variant']} | {r['seeds']} | {reach} | {r['random']['mean_length']:.1f} "
                     f"({r['random']['repetition_ends']:.0%}) | {r['analysis']['late_turn']:.0f} / "
                     f"{r['analysis']['shoulder_moves']} | {r['selfplay']['mean_length']:.1f} | "
                     f"{_ev(r['random']['evidence'])} | {_ev(r['selfplay']['evidence'])} | {start} | {cover} |")
    return "\n".join(lines) + "\n"
