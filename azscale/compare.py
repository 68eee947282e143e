"""`azscale compare PLAIN ARM --out DIR`: two arms of one study side by side (the math and the
side-by-side tables: `analysis/compare.py`).

Why two sweeps rather than arms inside one sweep: every analysis of a sweep (tournament, Elo,
scaling, the verdict, loss against exact values) assumes one training condition, and a plain
sweep that already exists is the expensive half of the experiment; the changed arm is the same
command with `--set` (e.g. `--set replay_cap=2 --set replay_from_turn=7`) into another folder.
What two separate sweeps cannot give is one Elo scale across arms, so this command plays it:
each width and seed's final agents head to head (one small tournament per pair, resumable,
games recorded under OUT/matches/).

    OUT/compare.json   everything below, with the settings of both arms and what differs
    OUT/compare.md     the same as tables, with the reading of the slope
    OUT/figures/       head_to_head.png/.svg (Elo difference by size with intervals)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from . import checkpoints as ck
from . import runs
from .analysis import compare as cmp
from .analysis.seat import seat_counts
from .errors import UserError


def _runs(sweep: Path) -> dict[str, Path]:
    d = Path(sweep) / "runs"
    if not (Path(sweep) / "sweep.json").is_file() or not d.is_dir():
        raise UserError(f"{sweep} is not a sweep directory (no sweep.json and runs/)")
    runs.read_manifest(sweep, "sweep")           # an empty, damaged or foreign sweep.json is refused
    found = {p.name: p for p in ck.runs_under(d)}
    if not found:
        raise UserError(f"{sweep} has no runs yet (runs/ is empty); train the sweep first")
    return found


# Settings that change no game (where and how fast a run trained); every other difference is
# the arms' difference and is listed (steps included: arms trained for different lengths differ).
MAY_DIFFER = {"device", "engine", "compile", "snapshot_seconds"}


def _settings(run_dir: Path) -> dict[str, Any]:
    """A run's settings, those added after it was made at their defaults (a plain sweep trained
    before the replay settings existed has replay_cap 0, as it trained)."""
    from .config import TrainConfig
    return {**TrainConfig().to_dict(), **ck.read_run_config(run_dir)["settings"]}


def compare(plain: Path, arm: Path, out: Path, *, games_per_pair: int = 100, simulations: int = 100,
            temperature: float = 0.25, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Play the head-to-head pairs (width and seed k plays with match seed `seed + k`, so pairs
    draw independent games; one pair after another) and write the comparison."""
    from .tournament import agents_from_runs, tournament
    plain, arm, out = Path(plain), Path(arm), Path(out)
    a, b = _runs(plain), _runs(arm)
    if plain.resolve() == arm.resolve():
        raise UserError(f"{plain} and {arm} are the same sweep given twice; give the plain sweep and the arm")
    common = sorted(set(a) & set(b))
    if not common:
        raise UserError(f"{plain} and {arm} share no run names (the same game, widths and seeds are needed)")
    left_out = sorted(set(a) ^ set(b))
    diffs: dict[str, Any] = {}
    for name in common:
        sa, sb = _settings(a[name]), _settings(b[name])
        if sa["game"] != sb["game"] or sa["width"] != sb["width"] or sa["seed"] != sb["seed"]:
            raise UserError(f"{name}: the two arms' runs differ in game, width or seed")
        for k in sorted(set(sa) | set(sb)):
            if sa.get(k) != sb.get(k) and k not in MAY_DIFFER:
                diffs.setdefault(k, {"plain": sa.get(k), "arm": sb.get(k)})
    if not diffs:
        raise UserError(f"{plain} and {arm} were trained with the same settings: nothing to compare")
    for name in common:
        for d in (a[name], b[name]):
            st = ck.run_status(d)
            if not st.finished:
                raise UserError(f"{d} has not finished training ({st.done} of {st.steps} steps); finish both "
                                f"sweeps first")
    arms = {}              # each arm's own analysis, read before the matches: a damaged file stops at once
    for label, sweep, rd in (("plain", plain, a), ("arm", arm, b)):
        an = sweep / "analysis"
        arms[label] = {"sweep": str(sweep), "elo": cmp.final_elo_by_size(an / "elo" / "elo.csv"),
                       "verdict": cmp.verdict_summary(an / "verdict.json"),
                       "early_late": cmp.early_late_by_size(an / "loss-solver" / "loss.json"),
                       "accuracy": cmp.early_late_by_size(an / "loss-solver" / "loss.json", "move_accuracy",
                                                          "accuracy"),
                       "replay": cmp.replay_by_size([{"params": ck.read_run_config(rd[n])["params"],
                                                      "metrics": ck.read_metrics(rd[n])} for n in common])}
    # every agent loaded before anything is written: an unreadable checkpoint leaves no folder
    agents = {}
    for name in common:
        pa, pb = agents_from_runs([a[name]])[0], agents_from_runs([b[name]])[0]
        agents[name] = (replace(pa, name=f"plain:{pa.name}"), replace(pb, name=f"arm:{pb.name}"))
    runs.claim_dir(out, "compare")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, name in enumerate(common):
        pa, pb = agents[name]
        res = tournament([pb, pa], out / "matches" / name, games_per_pair=games_per_pair, temperature=temperature,
                         simulations=simulations, seed=seed + k, workers=1, progress=progress,
                         label=f"head to head {name}")
        fst = res[(res["first"] == pb.name) & (res["second"] == pa.name)]     # (one row per seat order)
        snd = res[(res["first"] == pa.name) & (res["second"] == pb.name)]
        if len(fst) + len(snd) == 0:
            raise UserError(f"{out / 'matches' / name}: no results for {pb.name} against {pa.name}")
        seat = seat_counts(pd.concat([fst, snd]))          # every game, both seat orders, to the first mover?
        rows.append({"run": name, "params": pb.params,
                     "wins": int(fst["wins"].sum() + snd["losses"].sum()), "draws": int(fst["draws"].sum() + snd["draws"].sum()),
                     "losses": int(fst["losses"].sum() + snd["wins"].sum()),
                     "first_mover_wins": seat["first_mover_wins"], "seat_decided": seat["seat_decided_pairs"] == 1})
    pairs = pd.DataFrame(rows)
    h2h = cmp.head_to_head(pairs, seed=seed)
    result = {"kind": "compare", "plain": str(plain), "arm": str(arm), "differs": diffs, "runs": common,
              "runs_left_out": left_out,
              "match_settings": {"games_per_pair": games_per_pair, "simulations": simulations,
                                 "temperature": temperature, "seed": seed},
              "pairs": rows, "head_to_head": h2h, "arms": arms}
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    _figure(h2h, figs)
    runs.atomic_write_json(out / "compare.json", result)
    runs.atomic_write_text(out / "compare.md", markdown(result))
    return result


def _figure(h2h: dict[str, Any], figs: Path) -> None:
    from .analysis.plotting import pyplot, save
    plt = pyplot()
    by = h2h["by_params"]
    ps = sorted(by, key=int)
    x = [int(p) for p in ps]
    y = [by[p]["elo_diff"] for p in ps]
    lo = [by[p]["elo_diff"] - by[p]["ci"][0] for p in ps]
    hi = [by[p]["ci"][1] - by[p]["elo_diff"] for p in ps]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("Elo of the changed arm over the plain arm")
    ax.set_title("head to head, final agents, per size (95% interval)")
    save(fig, str(figs / "head_to_head"))


def _fmt(v: Any, nd: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x, nd) for x in v) + "]"
    return f"{v:,.{nd}f}" if isinstance(v, (int, float)) else str(v)


def markdown(r: dict[str, Any]) -> str:
    h = r["head_to_head"]
    lines = [f"# Two arms side by side: `{r['plain']}` (plain) and `{r['arm']}` (arm)", "",
             "Settings that differ: " + ", ".join(f"`{k}` {v['plain']!r} → {v['arm']!r}" for k, v in r["differs"].items()),
             "", "Runs in only one arm, left out: " + (", ".join(r["runs_left_out"]) or "none"),
             "", f"## Head to head ({r['match_settings']['games_per_pair']} games per width and seed, "
                 f"{r['match_settings']['simulations']} simulations, temperature {r['match_settings']['temperature']})",
             "", f"Statistic: {h['statistic']}. Interval: {h['interval']}.", "",
             "| parameters | seeds | games | Elo of arm over plain | 95% interval |", "|---:|---:|---:|---:|---|"]
    for p in sorted(h["by_params"], key=int):
        e = h["by_params"][p]
        lines.append(f"| {int(p):,} | {e['seeds']} | {e['games']:,} | {e['elo_diff']:+.0f} | {_fmt(e['ci'])} |")
    sl = h["slope"]
    lines += ["", f"Slope of the difference on log10(parameters): " + (
        f"{sl['elo_per_decade']:+.0f} Elo per decade, 95% interval {_fmt(sl['ci'])}; {sl['reading']}."
        if "elo_per_decade" in sl else sl["reading"])]
    lines += [f"- {n}" for n in h.get("notes", [])]
    lines += ["", "## Each arm's own analysis", ""]
    for label in ("plain", "arm"):
        a = r["arms"][label]
        lines.append(f"### {label}: `{a['sweep']}`")
        v = a["verdict"]
        lines.append(f"- verdict: {v['verdict']} (detectable fall {_fmt(v['detectable_fall'])} Elo)"
                     if v["available"] else f"- verdict: not available: {v['reason']}")
        for key, title, cols in (("elo", "final Elo against random, by size", ("elo", "seeds", "seed_sd")),
                                 ("early_late", "value loss against exact values, early and late states",
                                  ("early_loss", "early_ci", "early_floor", "late_loss", "late_ci", "late_floor",
                                   "seeds")),
                                 ("accuracy", "exact move accuracy on decisive states, early and late (the "
                                              "network's most likely move keeps the exact value)",
                                  ("early_accuracy", "early_ci", "late_accuracy", "late_ci", "seeds")),
                                 ("replay", "replay metrics", cmp.REPLAY_METRICS)):
            t = a[key]
            if not t["available"]:
                lines.append(f"- {title}: not available: {t['reason']}")
                continue
            nd = 0 if key == "elo" else 3
            if key == "early_late":
                if all(e.get("early_floor") is None for e in t["by_params"].values()):
                    cols = tuple(c for c in cols if not c.endswith("_floor"))      # made before the floor
                else:
                    title += " (floor: the least loss any network seeing only the observation can reach on them)"
            lines += ["", f"{title}" + (f" ({t['window']})" if "window" in t else "") + ":", "",
                      "| parameters | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
            for p in sorted(t["by_params"], key=int):
                e = t["by_params"][p]
                lines.append(f"| {int(p):,} | " + " | ".join(_fmt(e.get(c), 0 if c == "seeds" else nd) for c in cols) + " |")
            lines.append("")
        lines.append("")
    return "\n".join(lines) + "\n"
