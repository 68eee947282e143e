"""The `azscale` command line. Thin: parse, call one function, say where the results went.

Problems the user can fix (unknown game, bad settings, a foreign or damaged file, a locked run)
are printed as one line, `azscale: error: ...`, with exit status 2.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .checks import SEED_MAX, number, optional_number
from .config import SETTING_TYPES, TrainConfig, doc
from .errors import UserError
from .players import kinds_explained, spec_names

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Train AlphaZero agents of many sizes on OpenSpiel games and study their "
                       "scaling (Zipf-distributed game states, Elo scaling, inverse scaling).")
bench_app = typer.Typer(no_args_is_help=True, help="Speed measurements that print figures.")
app.add_typer(bench_app, name="bench")

GAME_HELP = doc("game")
SET_HELP = "Override any setting, e.g. --set c_puct=1.5 (repeatable; see games/<game>.toml)"
# The training settings `azscale train` takes as flags (every setting goes through --set), each
# with its flag's name; type and help come from the setting in config.TrainConfig.
TRAIN_FLAGS = {"width": "--width", "seed": "--seed", "family": "--family", "steps": "--steps",
               "simulations": "--sims", "actors": "--actors", "games_in_flight": "--games-in-flight",
               "device": "--device", "engine": "--engine"}


def training_options(after: str):
    """Give a command one option per setting in TRAIN_FLAGS, after its parameter `after`: of the
    setting's type, default None (the preset's value), with the setting's doc as its help. The
    command receives them as keyword arguments (`**settings`). A setting of a type a flag cannot
    take (not in `config.SETTING_TYPES`) is refused here, naming it, when the command is defined."""
    types = {}
    for name in TRAIN_FLAGS:
        kind = TrainConfig.__dataclass_fields__[name].type
        if kind not in SETTING_TYPES:
            raise TypeError(f"training flag {TRAIN_FLAGS[name]}: setting '{name}' has type {kind!r}; a flag takes "
                            f"{', '.join(SETTING_TYPES)} (config.SETTING_TYPES and config._coerce)")
        types[name] = SETTING_TYPES[kind]

    def add(fn):
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        cut = [p.name for p in own].index(after) + 1
        new = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=typer.Option(None, flag, help=doc(name)),
                                 annotation=Optional[types[name]])
               for name, flag in TRAIN_FLAGS.items()]
        kw = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[cut:]]
        fn.__signature__ = sig.replace(parameters=own[:cut] + new + kw)
        return fn
    return add


def _config(game, preset, sets, **named):
    from .config import parse_overrides, resolve
    overrides = parse_overrides(sets or [])
    overrides.update({k: v for k, v in named.items() if v is not None})
    return resolve(game, preset, overrides)


@app.command()
def sizes(game: str = typer.Argument(..., help=GAME_HELP),
          family: str = typer.Option(TrainConfig.family, help=doc("family")),
          depth: Optional[int] = typer.Option(None, help=f"{doc('depth')}; default {TrainConfig.depth}"),
          extra: bool = typer.Option(False, "--extra", help="Also list the paper's 1.5x widths"),
          as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table")):
    """List the size axis of a game: model id, width, depth and exact parameter count."""
    from .nets import sizes as list_sizes
    depth = optional_number(depth, "--depth", lo=1, hi=256, integer=True)
    rows = list_sizes(game, family, depth=depth, extra=extra)
    if as_json:
        typer.echo(json.dumps([{"id": s.id, "family": s.family, "width": s.width, "depth": s.depth,
                                "params": s.params} for s in rows], indent=2))
        return
    typer.echo(f"{'id':<16}{'width':>7}{'depth':>7}{'params':>12}   game {game}")
    for s in rows:
        typer.echo(f"{s.id:<16}{s.width:>7}{s.depth:>7}{s.params:>12,}")


@app.command()
@training_options(after="preset")
def train(game: str = typer.Argument(..., help=GAME_HELP),
          run_dir: Path = typer.Option(..., "--run-dir", help="Run directory; rerunning the same command resumes it"),
          preset: str = typer.Option("cpu", help="paper (the paper's settings), cpu (2-core scale) or smoke (seconds)"),
          sets: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
          max_minutes: Optional[float] = typer.Option(None, help="Stop (resumably) after this many minutes"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar"),
          tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard scalars"),
          restart: bool = typer.Option(False, "--restart", help="Start over: DELETE the run's recorded games, "
                                                                 "checkpoints and metrics first"),
          **settings):
    """Train one AlphaZero agent; rerun the same command to resume after an interruption."""
    max_minutes = optional_number(max_minutes, "--max-minutes", lo=0, lo_open=True, hi=1e8)
    cfg = _config(game, preset, sets, **settings)
    from .train import train as run_train          # torch loads only once the input is known good
    summary = run_train(cfg, run_dir, quiet=quiet, tensorboard=tensorboard, restart=restart,
                        max_seconds=None if max_minutes is None else max_minutes * 60)
    state = "finished" if summary["finished"] else "stopped (rerun to resume)"
    typer.echo(f"{state}: step {summary['step']}/{summary['steps']}, {summary['games']:,} games, "
               f"{summary['states']:,} states, {summary['params']:,} parameters -> {run_dir}")


@app.command()
def evaluate(run: Path = typer.Argument(..., help="A run directory (its last checkpoint) or a checkpoint file"),
             opponent: str = typer.Option("random", help=kinds_explained()),
             games: int = typer.Option(100, help="Games, seats alternating"),
             simulations: int = typer.Option(300, "--sims", help="The agent's simulations per move"),
             opponent_sims: int = typer.Option(300, help="MCTSBot's simulations per move"),
             temperature: float = typer.Option(0.0, help="Agent move temperature (0 = most visited)"),
             seed: int = typer.Option(0, help="Random seed"),
             device: str = typer.Option("cpu", help="Where the agent searches: cpu, cuda or auto (tensor twins)"),
             quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Play a trained agent (no noise) against a reference player and print W/D/L."""
    games = number(games, "--games", lo=1, hi=10_000_000, integer=True)
    simulations = number(simulations, "--sims", lo=1, hi=1_000_000, integer=True)
    opponent_sims = number(opponent_sims, "--opponent-sims", lo=1, hi=1_000_000, integer=True)
    temperature = number(temperature, "--temperature", lo=0, hi=1_000_000)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    from .arena import evaluate_checkpoint, reference
    reference(opponent)                         # a kind in the players' registry, or one line
    from .checkpoints import latest_checkpoint
    ckpt = latest_checkpoint(run) if run.is_dir() else run
    res = evaluate_checkpoint(ckpt, opponent, games=games, simulations=simulations, opponent_simulations=opponent_sims,
                              seed=seed, temperature=temperature, progress=not quiet, device=_device(device))
    typer.echo(json.dumps({"checkpoint": str(ckpt), "opponent": opponent, "games": res.n,
                           "wins": res.wins, "draws": res.draws, "losses": res.losses,
                           "score": round(res.score, 4)}))


@app.command("random-games")
def random_games_cmd(game: str = typer.Argument(..., help=GAME_HELP),
                     games: int = typer.Option(100_000, help="Number of games"),
                     seed: int = typer.Option(0, help="Random seed (same seed = same games)"),
                     out: Path = typer.Option(..., help="Output directory (a games table, like a run's)"),
                     workers: Optional[int] = typer.Option(None, help="Processes (default: all cores)"),
                     quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Record uniformly random games (the paper's random-play baseline); rerun to resume."""
    from .analysis.baselines import random_games
    games = number(games, "--games", lo=1, hi=10**10, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    n = random_games(game, games, seed=seed, out=out, workers=workers, progress=not quiet)
    typer.echo(f"{n:,} new random games ({games:,} in all) -> {out}/games")


@app.command()
def zipf(sources: List[Path] = typer.Argument(..., help="Run directories or games tables (pooled into 'combined')"),
         out: Path = typer.Option(..., help="Output directory: states.parquet, fits.json, summary.md, figures"),
         window: str = typer.Option("all", help="Games of each run: all, last70 (the paper's), steps:A-B"),
         kind: Optional[List[str]] = typer.Option(None, help="Only games of this kind (selfplay, match, random)"),
         temperature: Optional[float] = typer.Option(None, help="Only games played at this temperature"),
         first_moves: Optional[int] = typer.Option(None, help="Count only states within the first K moves"),
         fit_window: str = typer.Option("paper", help="paper (the paper's window for the kind of games: the game's "
                                                      "self-play window, the temperature window for match games, "
                                                      "the random-play window), ranks:LO-HI or counts:HI-LO"),
         weight: Optional[str] = typer.Option(None, help="LS weight: 2/sqrt(rank), 2/rank or none (default: the window's)"),
         bootstrap: int = typer.Option(0, "--replicates", "--bootstrap",
                                       help="Resampling replicates over games for intervals (e.g. 25): groups "
                                            "left out by the jackknife, or resamples of the bootstrap"),
         interval: str = typer.Option("jackknife", help="jackknife (delete-a-group over games; default) or "
                                                        "bootstrap (games with replacement; biased for counts)"),
         mle: bool = typer.Option(True, help="Also run the maximum-likelihood (Clauset) fit"),
         workers: Optional[int] = typer.Option(None, help="Replay processes (default: all cores)"),
         seed: int = typer.Option(0, help="Resampling seed"),
         symmetry: bool = typer.Option(False, "--symmetry", help="Symmetry-reduced state keys (connect_four mirror, tic_tac_toe D4)"),
         late_turn: Optional[float] = typer.Option(None, help="A state is late when its mean turn is >= this "
                                                              "(default: the game's \\[analysis] late_turn, 40)"),
         shoulder_moves: Optional[int] = typer.Option(None, help="The shoulder test counts the first K moves of each "
                                                                 "game (default: the game's \\[analysis] value, 50)")):
    """Rank-frequency (Zipf) curves of game states, with least-squares and MLE exponents, and the end-game evidence."""
    import os
    from .analysis.zipf_report import zipf_analysis
    temperature = optional_number(temperature, "--temperature", lo=0, hi=1_000_000)
    first_moves = optional_number(first_moves, "--first-moves", lo=1, hi=1_000_000, integer=True)
    bootstrap = number(bootstrap, "--replicates", lo=0, hi=100_000, integer=True)
    if bootstrap == 1:
        raise UserError("--replicates must be 0 (no intervals) or at least 2, got 1")
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    late_turn = optional_number(late_turn, "--late-turn", lo=0, hi=1_000_000)
    if interval not in ("jackknife", "bootstrap"):
        raise UserError(f"--interval must be jackknife or bootstrap, got {interval!r}")
    res = zipf_analysis(sources, out, window=window, kinds=kind or [], temperature=temperature,
                        first_moves=first_moves, fit_window=fit_window, weight=weight, bootstrap=bootstrap,
                        workers=workers or os.cpu_count() or 1, seed=seed, mle=mle, symmetry=symmetry,
                        late_turn=late_turn, interval=interval, shoulder_moves=shoulder_moves)
    from .runs import is_missing
    for c in res["curves"]:
        fits = "; ".join(f"{f['method']} alpha={f['alpha']:.3f} over {f['window']}" if not is_missing(f["alpha"])
                         else f"{f['method']}: {f['window']}" for f in c["fits"])
        typer.echo(f"{c['label']}: {c['distinct_states']:,} states, {c['visits']:,} visits; {fits}")
    eg = res["endgame"]
    if not eg.get("applicable"):
        typer.echo(f"end game: {eg['reason']}")
    elif eg.get("measured"):
        typer.echo(f"end game: pattern {eg['pattern']} ({eg['held']} of {eg.get('criteria_count', len(eg['criteria']))} criteria hold; ranks "
                   f"{eg['ranks']['lo']:,}-{eg['ranks']['hi']:,}, late = mean turn >= {eg['late_turn']:g})")
    else:
        typer.echo(f"end game: not measured: {eg['reason']}")
    typer.echo(f"-> {out}/summary.md, fits.json, states.parquet, rank_frequency.png/.svg")


@app.command("import-openspiel")
def import_openspiel_cmd(src: Path = typer.Argument(..., help="An OpenSpiel AlphaZero output folder (log-actor-*.txt) or one log"),
                         game: str = typer.Option(..., help="The OpenSpiel game the run played"),
                         out: Path = typer.Option(..., help="Output directory for the games table")):
    """Turn the actor logs of OpenSpiel's own AlphaZero into an azscale games table."""
    from .analysis.importer import import_openspiel
    n = import_openspiel(src, game, out)
    typer.echo(f"imported {n:,} games -> {out}/games")


@app.command()
def tournament(runs_: List[Path] = typer.Argument(..., metavar="RUNS...", help="Run directories whose checkpoints play"),
               out: Path = typer.Option(..., help="Tournament directory (rerun to finish an interrupted one)"),
               checkpoints: str = typer.Option("final", help="final, all, or steps like 100,200"),
               games_per_pair: int = typer.Option(800, help="Games per pair, seats alternating (the paper: 800)"),
               temperature: float = typer.Option(0.25, help="Move temperature at every move (the paper: 0.25)"),
               simulations: int = typer.Option(300, "--sims", help="Simulations per move (the paper: 300)"),
               reference: str = typer.Option("", help=f"Reference players to include: {spec_names()} (comma-separated)"),
               seed: int = typer.Option(0, help="Random seed"),
               workers: Optional[int] = typer.Option(None, help="Processes (default: all cores; one on a GPU)"),
               device: str = typer.Option("cpu", help="Where agents search: cpu, cuda or auto (tensor twins)"),
               quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Round-robin between agents (and reference players); every game goes to a games table."""
    from .arena import reference_players
    from .tournament import agents_from_runs, tournament as run_tournament
    games_per_pair = number(games_per_pair, "--games-per-pair", lo=2, hi=10_000_000, integer=True)
    temperature = number(temperature, "--temperature", lo=0, hi=1_000_000)
    simulations = number(simulations, "--sims", lo=1, hi=1_000_000, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    refs = reference_players(reference)
    players = agents_from_runs(runs_, checkpoints) + refs
    table = run_tournament(players, out, games_per_pair=games_per_pair, temperature=temperature,
                           simulations=simulations, seed=seed, workers=workers, progress=not quiet,
                           device=_device(device))
    typer.echo(f"{len(players)} players, {len(table)} ordered pairs, "
               f"{int(table[['wins', 'draws', 'losses']].to_numpy().sum()):,} games -> {out}/results.csv")


@app.command()
def elo(tournaments: List[Path] = typer.Argument(..., help="Tournament directories (fitted jointly)"),
        out: Path = typer.Option(..., help="Output directory: elo.csv, elo.json, bootstrap.npz, figures"),
        anchor: Optional[str] = typer.Option(None, help="Player rated 0 (e.g. random); default: the first by name"),
        bootstrap: int = typer.Option(200, help="Bootstrap resamples of each pair's games"),
        seed: int = typer.Option(0, help="Bootstrap seed")):
    """Bradley-Terry Elo from real win/draw/loss counts, with a first-move term and bootstrap CIs."""
    from .analysis.elo_report import elo_analysis
    bootstrap = number(bootstrap, "--bootstrap", lo=0, hi=100_000, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    res = elo_analysis(tournaments, out, anchor=anchor, bootstrap=bootstrap, seed=seed)
    typer.echo(f"{res['players']} players rated (anchor {res['anchor']} = 0); first-move advantage "
               f"{res['first_move_elo']:.1f} Elo; draw width {res['draw_width_elo']:.1f} -> {out}/elo.csv")
    from .analysis.seat import seat_text
    seat = res["seat"]
    told = [(seat["between_runs"], "pairs of agents from different runs")] + \
        [(c, f"pairs of checkpoints of {r}") for r, c in seat["within_runs"].items()]
    for counts, what in told:
        if counts.get("seat_decided"):
            typer.echo(f"note: {seat_text(counts, what)} (their Elo differences are not identified)")


@app.command()
def scaling(elo_dir: Path = typer.Argument(..., help="An azscale elo output directory"),
            out: Path = typer.Option(..., help="Output directory: scaling.json, figures"),
            min_params: int = typer.Option(0, help="Fit sizes with at least this many parameters"),
            max_params: Optional[int] = typer.Option(None, help="... and at most this many (default: up to the peak, "
                                                                "the size with the highest mean Elo)"),
            zipf: Optional[Path] = typer.Option(None, help="fits.json of azscale zipf, for the quanta check: alpha_Z - 1 "
                                                           "(the loss exponent, where alpha_Z > 1) beside the measured "
                                                           "value-loss exponents"),
            runs_: Optional[List[Path]] = typer.Option(None, "--run", help="Run directories, for the value loss against "
                                                                            "parameters, compute and data"),
            bootstrap: int = typer.Option(100, help="Bootstrap resamples for the loss fits"),
            replicates: int = typer.Option(4000, help="Hierarchical bootstrap replicates for alpha_N (seeds within "
                                                      "sizes and games within pairs)"),
            seed_resampling: str = typer.Option("pooled", help="pooled (seed deviations pooled over sizes, t-scaled; "
                                                               "default) or within (each size's own seeds)"),
            seed: int = typer.Option(0, help="Resampling seed")):
    """Elo exponent (slope of Elo vs log10 params / 400, with CI), value-loss fits, the quanta check."""
    from .analysis.elo_report import scaling_analysis
    min_params = number(min_params, "--min-params", lo=0, hi=10**15, integer=True)
    max_params = optional_number(max_params, "--max-params", lo=1, hi=10**15, integer=True)
    if max_params is not None and max_params < min_params:
        raise UserError(f"--max-params ({max_params}) is below --min-params ({min_params})")
    bootstrap = number(bootstrap, "--bootstrap", lo=0, hi=100_000, integer=True)
    replicates = number(replicates, "--replicates", lo=0, hi=1_000_000, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    res = scaling_analysis(elo_dir, out, min_params=min_params, max_params=max_params, zipf=zipf,
                           run_dirs=runs_ or [], bootstrap=bootstrap, replicates=replicates,
                           seed_resampling=seed_resampling, seed=seed)
    from .runs import is_missing
    f = res["elo_exponent"]
    if f["alpha"] is None:
        typer.echo(f"alpha_N (Elo): {f['note']} -> {out}/scaling.json")
    else:
        ci = "no interval" if is_missing(f["ci_low"]) else f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]"
        typer.echo(f"alpha_N (Elo) = {f['alpha']:.3f} {ci} over {f['params_min']:,}-{f['params_max']:,} parameters "
                   f"({f['sizes']} sizes; {f['range_rule']}) -> {out}/scaling.json")
    if "quanta" in res:
        q = res["quanta"]
        mp = q["measured_loss_vs_params"]
        measured = (f"measured alpha_N(loss) = {mp['alpha']:.3f}" if mp.get("alpha") is not None
                    else f"alpha_N(loss) {mp['note']}")
        for r in q["rows"]:
            az = "n/a" if r["alpha_Z"] is None else f"{r['alpha_Z']:.3f}"
            pred = (f"predicted alpha_N(loss) = alpha_Z - 1 = {r['alpha_N_loss_predicted']:.3f}"
                    if r["status"] == "predicted" else r["status"])
            typer.echo(f"quanta check ({r['method']}): alpha_Z = {az}: {pred}; {measured}")


@app.command()
def temperature(runs_: List[Path] = typer.Argument(..., metavar="RUNS...", help="Run directories (their final "
                                                                                 "checkpoints play)"),
                out: Path = typer.Option(..., help="Study directory: one tournament per temperature, study.csv/.json, "
                                                   "summary.md, figures (rerun to continue)"),
                temperatures: str = typer.Option("paper", help="paper (the paper's 17, 0.01 to 5) or comma-separated "
                                                               "temperatures, e.g. 0.1,0.25,1"),
                games_per_pair: int = typer.Option(800, help="Games per pair at each temperature, seats alternating"),
                simulations: int = typer.Option(300, "--sims", help="Simulations per move (the paper: 300)"),
                seed: int = typer.Option(0, help="Random seed"),
                workers: Optional[int] = typer.Option(None, help="Processes (default: all cores; one on a GPU)"),
                device: str = typer.Option("cpu", help="Where agents search: cpu, cuda or auto (tensor twins)"),
                fit_window: str = typer.Option("paper", help="paper (the temperature window: counts 200 down to 4, "
                                                             "weight 2/rank), ranks:LO-HI or counts:HI-LO"),
                zipf_replicates: int = typer.Option(20, help="Jackknife groups of games for the Zipf intervals "
                                                             "(0: none)"),
                bootstrap: int = typer.Option(100, help="Elo refits on games resampled within pairs, per temperature"),
                replicates: int = typer.Option(4000, help="Hierarchical bootstrap replicates for alpha_N (seeds "
                                                          "within sizes and games within pairs)"),
                min_params: int = typer.Option(0, help="Fit alpha_N on sizes with at least this many parameters"),
                max_params: Optional[int] = typer.Option(None, help="... and at most this many (default: up to the "
                                                                    "peak, the size with the highest mean Elo)"),
                play_only: bool = typer.Option(False, "--play-only", help="Play the round-robins, skip the analysis"),
                quiet: bool = typer.Option(False, "--quiet", "-q")):
    """The temperature study: round-robins at each temperature, then per temperature the match games'
    Zipf tail and the Elo exponent, and their correlation (the paper's Fig. 3); resumable."""
    from .runs import is_missing
    from .temperature import temperature_study
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    replicates = number(replicates, "--replicates", lo=2, hi=1_000_000, integer=True)
    res = temperature_study(runs_, out, temperatures, games_per_pair=games_per_pair, simulations=simulations,
                            seed=seed, workers=workers, device=_device(device), progress=not quiet, log=(lambda m: None) if quiet else typer.echo,
                            zipf_replicates=zipf_replicates, elo_bootstrap=bootstrap, replicates=replicates,
                            min_params=min_params, max_params=max_params, fit_window=fit_window, play_only=play_only)
    if play_only:
        typer.echo(f"played {len(res['played'])} temperature(s) -> {out}")
        return
    from .analysis.temperature import correlation_line
    for p in res["points"]:
        ls, ef = p["zipf"]["ls"], p["elo_exponent"]
        z = f"alpha_Z (LS) = {ls['alpha']:.3f}" if not is_missing(ls["alpha"]) else f"alpha_Z (LS): {ls['window']}"
        n = f"alpha_N = {ef['alpha']:.3f}" if not is_missing(ef.get("alpha")) else f"alpha_N: {ef['note']}"
        typer.echo(f"T = {p['temperature']:g}: {p['games']:,} games, {p['distinct_states']:,} states; {z}; {n}")
    for m, c in res["correlation"].items():
        typer.echo(correlation_line(c, m).lstrip("- "))
    typer.echo(f"-> {out}/study.csv, study.json, summary.md, {', '.join(res['figures'][::2])} (+ .svg)")


@app.command("toy-tree")
def toy_tree_cmd(branching: int = typer.Option(7, help="Branching b of the uniform tree (the paper: 7)"),
                 depth: int = typer.Option(8, help="Depth d: paths of d moves (the paper: 8)"),
                 out: Path = typer.Option(..., help="Output directory: toy_tree.json, staircase.csv, figure"),
                 compare: Optional[List[Path]] = typer.Option(None, help="A zipf analysis directory (its "
                                                                         "states.parquet) to draw beside the tree; "
                                                                         "repeatable")):
    """The paper's toy model: a uniform tree's rank-frequency staircase and its envelope exponent."""
    from .analysis.toytree import toy_tree
    res = toy_tree(branching, depth, out, compare or [])
    typer.echo(f"uniform tree b={res['branching']}, d={res['depth']}: {res['states']:,} states, {res['visits']:,} "
               f"visits; envelope alpha = {res['envelope_alpha']:.4f} -> {out}/toy_tree.json, staircase.csv, "
               f"toy_tree.png/.svg")


@app.command("oware-scan")
def oware_scan_cmd(out: Path = typer.Option(..., help="Output directory: scan.json, scan.md and each variant's games"),
                   variants: str = typer.Option("3x2,3x3,4x2,4x3,5x2,6x2,3x4",
                                                help="Comma-separated HOUSESxSEEDS (houses per player x seeds per "
                                                     "house)"),
                   random_games: int = typer.Option(5000, help="Random games per variant for the end-game evidence"),
                   selfplay_steps: int = typer.Option(6, help="Learner steps of the short self-play run (cpu preset)"),
                   width: int = typer.Option(16, help="Width of the short self-play run's network"),
                   preset: str = typer.Option("cpu", help="Settings preset of the short self-play run"),
                   solver_states: int = typer.Option(40, help="Self-play states given to the solver per variant "
                                                              "(half early, half late)"),
                   budget: Optional[int] = typer.Option(None, help="Solver node budget per state \\[default: the "
                                                                   "solver's]"),
                   workers: int = typer.Option(1, help="Processes for random games and Zipf"),
                   quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Scan small oware boards before a study: reachable positions, game lengths (random and
    self-play), the late turn by the variant rule, the end-game evidence, and how much the exact
    solver solves. Rerun to resume."""
    from .owarescan import parse_variants, scan
    vs = parse_variants(variants)
    random_games = number(random_games, "--random-games", lo=100, hi=10**7, integer=True)
    selfplay_steps = number(selfplay_steps, "--selfplay-steps", lo=1, hi=10_000, integer=True)
    width = number(width, "--width", lo=1, hi=4096, integer=True)
    solver_states = number(solver_states, "--solver-states", lo=0, hi=10**6, integer=True)
    budget = optional_number(budget, "--budget", lo=1, hi=10**10, integer=True)
    workers = number(workers, "--workers", lo=1, hi=1024, integer=True)
    res = scan(vs, out, random_games=random_games, selfplay_steps=selfplay_steps, width=width,
               solver_states=solver_states, budget=budget, workers=workers, preset=preset,
               log=(lambda m: None) if quiet else (lambda m: typer.echo(m, err=True)))
    typer.echo(f"{len(res['variants'])} variants -> {res['scan_md']}, {res['scan_json']}")


def _int_list(text: str, name: str) -> list[int]:
    items = [x.strip() for x in text.split(",")]
    if not all(x.isascii() and x.isdigit() and len(x) <= 12 for x in items):     # no '', '1_000', '１', 10^13+
        raise UserError(f"{name} must be comma-separated whole numbers (up to 12 digits each), got {text!r}")
    vals = [int(x) for x in items]
    if len(vals) < 2 or min(vals) < 1 or sorted(set(vals)) != vals:
        raise UserError(f"{name} needs two or more distinct sizes >= 1 in ascending order, got {text!r}")
    return vals


@app.command()
def verdict(elo_dir: Optional[Path] = typer.Argument(None, help="An azscale elo output directory (with bootstrap); "
                                                                "not with --plan"),
            out: Optional[Path] = typer.Option(None, help="Markdown file to write (and a .json beside it); optional "
                                                          "with --plan"),
            zipf: Optional[Path] = typer.Option(None, help="fits.json of azscale zipf (end-game evidence)"),
            loss: Optional[Path] = typer.Option(None, help="loss.json of azscale loss --pooled (early vs late loss by size)"),
            fwer: float = typer.Option(0.05, help="Family-wise error rate of the drop tests (Holm over every size step "
                                                  "and every size against the largest)"),
            replicates: int = typer.Option(4000, help="Hierarchical bootstrap replicates (seeds within sizes and games "
                                                      "within pairs)"),
            seed_resampling: str = typer.Option("pooled", help="pooled (seed deviations pooled over sizes, t-scaled; "
                                                               "default) or within (each size's own seeds)"),
            seed: int = typer.Option(0, help="Resampling seed"),
            power_sims: int = typer.Option(400, help="Simulated studies for the power (minimum detectable fall)"),
            run: Optional[List[Path]] = typer.Option(None, help="The run directories of the rated agents (repeatable): "
                                                                "the verdict then also requires every run to be "
                                                                "saturated and lists each run's state"),
            exact: Optional[Path] = typer.Option(None, help="With --run: loss.json of azscale loss --target solver "
                                                            "--checkpoints all, whose exact move-accuracy gains "
                                                            "measure saturation where the Elo gain cannot (games "
                                                            "the seat decides)"),
            plan: bool = typer.Option(False, "--plan", help="Size a study before running it: power of a design to "
                                                            "detect a fall of --fall Elo, and what it takes"),
            sizes: Optional[str] = typer.Option(None, help="--plan: comma-separated parameter counts, ascending"),
            seeds: int = typer.Option(2, help="--plan: seeds per size"),
            games_per_pair: int = typer.Option(800, help="--plan: tournament games per pair"),
            seed_sd: float = typer.Option(40.0, help="--plan: seed-to-seed spread of true strength, Elo"),
            fall: float = typer.Option(100.0, help="--plan: the fall after the peak to detect, Elo"),
            rise: float = typer.Option(150.0, help="--plan: Elo gained per size step up to the peak"),
            first_move: float = typer.Option(30.0, help="--plan: first-move advantage, Elo"),
            draw_width: float = typer.Option(100.0, help="--plan: draw width, Elo")):
    """Does Elo fall from one size to the next larger (inverse scaling), and is it the end game?
    With --plan: how large a fall a design would detect, before spending hours on it."""
    fwer = number(fwer, "--fwer", lo=0, lo_open=True, hi=0.5, hi_open=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    power_sims = number(power_sims, "--power-sims", lo=50, hi=100_000, integer=True)
    from .analysis.sizeboot import SCHEMES, check_resampling
    check_resampling(replicates, seed)            # checked in both modes, used or not
    if seed_resampling not in SCHEMES:
        raise UserError(f"--seed-resampling must be {' or '.join(SCHEMES)}, got {seed_resampling!r}")
    if plan:
        from .analysis.power import Design, claim_plan_files, plan as run_plan, plan_markdown
        from . import runs as R
        if elo_dir is not None:
            raise UserError("--plan sizes a study that is not run yet: give --sizes etc., not an elo directory")
        if sizes is None:
            raise UserError("--plan needs --sizes (comma-separated parameter counts)")
        design = Design(_int_list(sizes, "--sizes"), number(seeds, "--seeds", lo=1, hi=1000, integer=True),
                        number(games_per_pair, "--games-per-pair", lo=2, hi=10_000_000, integer=True),
                        number(seed_sd, "--seed-sd", lo=0, hi=5000), number(first_move, "--first-move", lo=-2000, hi=2000),
                        number(draw_width, "--draw-width", lo=0, hi=4000), number(rise, "--rise", lo=-2000, hi=2000),
                        fwer=fwer)
        fall = number(fall, "--fall", lo=0, lo_open=True, hi=4000)
        plan_json = claim_plan_files(out) if out is not None else None
        res = run_plan(design, fall, sims=power_sims, seed=seed)
        text = plan_markdown(res)
        if out is not None:
            R.atomic_write_text(out, text)
            R.atomic_write_json(plan_json, res)
        typer.echo(text.rstrip("\n"))
        return
    if elo_dir is None or out is None:
        raise UserError("the verdict needs an elo directory and --out (or --plan to size a study)")
    if exact is not None and not run:
        raise UserError("--exact measures the runs' saturation: give their directories with --run")
    from .analysis.elo_report import verdict as run_verdict
    replicates = number(replicates, "--replicates", lo=0, hi=1_000_000, integer=True)
    res = run_verdict(elo_dir, out, zipf=zipf, loss=loss, fwer=fwer, replicates=replicates,
                      seed_resampling=seed_resampling, seed=seed, power_sims=power_sims, run_dirs=run or (),
                      exact=exact)
    pw = res.get("power") or {}
    mde = (f"; smallest fall detectable with 80% power: {pw['minimum_detectable_fall']:,.0f} Elo"
           if pw.get("applicable") and pw.get("minimum_detectable_fall") is not None else
           f"; power: not applicable ({pw['reason']})" if pw and not pw.get("applicable") else "")
    typer.echo(f"{res['verdict']} (peak at {res['peak']:,} parameters{mde}) -> {out}")


@app.command()
def loss(runs_: List[Path] = typer.Argument(..., metavar="RUNS...", help="Run directories"),
         out: Path = typer.Option(..., help="Output directory: per_state.parquet, curves.csv, frontier.csv, figures"),
         target: str = typer.Option("trainset", help="trainset (mean outcome in the games) or solver (perfect play)"),
         checkpoints: str = typer.Option("final", help="final, all, or steps like 100,200"),
         window: str = typer.Option("last70", help="Games that define ranks and trainset targets (as in zipf)"),
         min_count: int = typer.Option(10, help="Drop states seen fewer times (the paper: 10)"),
         pooled: bool = typer.Option(False, "--pooled", help="Rank all runs on one pooled states table"),
         cache: Optional[Path] = typer.Option(None, help="Solver label cache directory (default: OUT/labels)"),
         sigma: float = typer.Option(0.15, help="Smoothing kernel width in decades of rank"),
         late_turn: Optional[float] = typer.Option(None, help="Late states: mean turn >= this (default: the game's "
                                                              "\\[analysis] late_turn, 40)"),
         frontier: float = typer.Option(0.1, help="Loss threshold of the learned frontier"),
         workers: Optional[int] = typer.Option(None, help="Processes for replay and solving (default: all cores)"),
         replicates: int = typer.Option(2000, help="Bootstrap replicates of the early/late split (states, then seeds "
                                                   "within sizes)"),
         seed: int = typer.Option(0, help="Resampling seed"),
         device: str = typer.Option("cpu", help="Where the networks evaluate the states: cpu, cuda or auto"),
         solver_budget: Optional[int] = typer.Option(None, help="With --target solver on small oware: the exact "
                                                                "solver's node budget per state \\[default: 300,000]"),
         quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Per-state value loss by frequency rank: do agents learn frequent states first?"""
    import os
    from .analysis.loss_report import loss_analysis
    min_count = number(min_count, "--min-count", lo=1, hi=10**12, integer=True)
    sigma = number(sigma, "--sigma", lo=0, lo_open=True, hi=10)
    late_turn = optional_number(late_turn, "--late-turn", lo=0, hi=1_000_000)
    frontier = number(frontier, "--frontier", lo=0, lo_open=True, hi=1e6)
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    solver_budget = optional_number(solver_budget, "--solver-budget", lo=1, hi=10**10, integer=True)
    if solver_budget is not None and target != "solver":
        raise UserError(f"--solver-budget is the exact solver's, for --target solver; the target is {target!r}")
    res = loss_analysis(runs_, out, target, checkpoints=checkpoints, window=window, min_count=min_count,
                        pooled=pooled, cache_dir=cache, sigma=sigma, late_turn=late_turn, frontier_threshold=frontier,
                        workers=workers or os.cpu_count() or 1, progress=not quiet, replicates=replicates,
                        seed=seed, device=_device(device), solver_budget=solver_budget)
    for p, t in res["loss_rises_with_rank"].items():
        typer.echo(f"{int(p):,} params: loss {t['loss_top']:.4f} at the top ranks -> {t['loss_tail']:.4f} at the "
                   f"tail (Spearman rho {t['spearman_rho']:+.2f})")
    el = res["early_late"]
    if not el["applicable"]:
        typer.echo(f"early/late split: {el['reason']}")
    else:
        from .numfmt import ci as fmt_ci, num
        acc = res["move_accuracy"]
        for p, v in sorted(el["by_params"].items(), key=lambda kv: int(kv[0])):
            line = (f"{int(p):,} params: value loss early {num(v['early_loss'], 3)} "
                    f"{fmt_ci(*(v.get('early_ci') or [None, None]), 3)}, late {num(v['late_loss'], 3)} "
                    f"{fmt_ci(*(v.get('late_ci') or [None, None]), 3)}")
            a = (acc.get("by_params") or {}).get(p) if acc["applicable"] else None
            if a:
                line += (f"; move accuracy early {num(a['early_accuracy'], 3)} "
                         f"{fmt_ci(*(a.get('early_ci') or [None, None]), 3)}, late {num(a['late_accuracy'], 3)} "
                         f"{fmt_ci(*(a.get('late_ci') or [None, None]), 3)} (a random move: "
                         f"{num(a.get('early_chance'), 3)}, {num(a.get('late_chance'), 3)})")
            typer.echo(line)
    from .analysis.loss_report import floor_lines
    for line in floor_lines(res.get("observation") or {}, split=el["applicable"]):
        typer.echo(line)
    typer.echo(f"-> {out}/loss.json, curves.csv, per_state.parquet, figures")


@app.command()
def solve(game: str = typer.Argument(..., help=GAME_HELP),
          states: Path = typer.Option(..., help="A states.parquet written by azscale zipf"),
          out: Path = typer.Option(..., help="Label cache directory (labels.parquet)"),
          min_count: int = typer.Option(1, help="Only states seen at least this often"),
          limit: Optional[int] = typer.Option(None, help="Only the most frequent N states"),
          book: bool = typer.Option(True, help="Use bitbully's opening book (connect_four)"),
          workers: Optional[int] = typer.Option(None, help="Processes (default: all cores)"),
          budget: Optional[int] = typer.Option(None, help="Small oware: the exact solver's node budget per state "
                                                          "(states left unsolved under a smaller one are retried) "
                                                          "\\[default: 300,000]"),
          quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Solve states with perfect play (bitbully or the exact solver) into a reusable cache."""
    import os
    from .oracles import solve_states
    min_count = number(min_count, "--min-count", lo=1, hi=10**12, integer=True)
    limit = optional_number(limit, "--limit", lo=1, hi=10**12, integer=True)
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    budget = optional_number(budget, "--budget", lo=1, hi=10**10, integer=True)
    if budget is not None:
        from .engines.spiel import load_spiel_game
        from .oracles import make_oracle, takes_budget
        if not takes_budget(game):
            raise UserError(f"--budget is the small-oware solver's node budget; {game}'s solver "
                            f"({make_oracle(load_spiel_game(game), book).name}) has none")
    res = solve_states(states, out, game=game, min_count=min_count, limit=limit, workers=workers or os.cpu_count() or 1,
                       book=book, progress=not quiet, budget=budget)
    typer.echo(f"solved {res['solved']:,} new states in {res['seconds']:.1f} s; {res['cached']:,} in the cache -> {res['cache']}")


SWEEP_FILE_HELP = ("A game (as for train) or a sweep file (sweep.toml: game, preset, widths, families, seeds, "
                   "\\[overrides], \\[analysis], \\[executor] tables); leave out to continue the sweep in --out")


def sweep_options(after: str):
    """Give `azscale sweep` one option per sweep setting that has a flag (`sweepcfg.flags`), after
    its parameter `after`: named as the setting (`--games-per-pair`; `sweepcfg.flag`), of the
    flag's type, default None (the sweep file's, the sweep's own or the default), with the
    setting's doc and default as its help. The command receives them as keyword arguments."""
    from . import sweepcfg as S

    def option(name):
        kind = S.flag_type(name)
        names = [S.flag(name), *S.SETTINGS[name].metadata["aliases"]]
        if kind is bool:
            names = [f"{names[0]}/--no-{names[0][2:]}", *names[1:]]
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                 default=typer.Option(None, *names, help=S.help_text(name)),
                                 annotation=Optional[List[str]] if kind is list else Optional[kind])
    new = [option(n) for n in S.flags()]

    def add(fn):
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        cut = [p.name for p in own].index(after) + 1
        kw = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[cut:]]
        fn.__signature__ = sig.replace(parameters=own[:cut] + new + kw)
        return fn
    return add


@app.command("sweep")
@sweep_options(after="out")
def sweep_cmd(source: Optional[str] = typer.Argument(None, metavar="[GAME|SWEEP.toml]", help=SWEEP_FILE_HELP),
              out: Optional[Path] = typer.Option(None, help="Sweep directory (default: the sweep file's `out`); rerun "
                                                            "to continue, or with more widths or seeds to grow it"),
              reanalyse: Optional[str] = typer.Option(None, help="Redo these analysis steps (comma-separated, or all), "
                                                                 "e.g. after the analysis code changed"),
              analyse_finished: bool = typer.Option(
                  False, "--analyse-finished",
                  help="Train nothing: analyse the runs that have finished, for a report before the others "
                       "finish (stop a running sweep first: it holds the directory's lock; rerun without this flag "
                       "to go on training, which redoes every step the other runs change). Exit status 3 while "
                       "some are unfinished"),
              quiet: bool = typer.Option(False, "--quiet", "-q", help="No output but errors (sweep.log is still written)"),
              **settings):
    """Train sizes x seeds, then tournament, Elo, Zipf, loss, scaling and verdict; resumable, growable."""
    from . import sweepcfg as S
    from .sweep import sweep
    from .sweepsteps import check_reanalyse
    src = S.from_source(source)
    flags, flag_exec = S.from_flags(settings)
    redo = check_reanalyse(reanalyse.split(",")) if reanalyse is not None else set()
    sc, ex, root = S.configure(src, flags, flag_exec, out)
    if sc.solver_budget is not None and ("solver_budget" in flags or "solver_budget" in src.settings):
        from .oracles import takes_budget
        if not takes_budget(sc.game):
            name = "--solver-budget" if "solver_budget" in flags else "the sweep file's solver_budget"
            raise UserError(f"{name} is the small-oware solver's node budget; {sc.game} has no solver that takes one")
    from tqdm import tqdm
    res = sweep(sc, root, ex, log=None if quiet else tqdm.write, reanalyse=redo, progress=not quiet,
                analyse_finished=analyse_finished)
    if not res["finished"]:
        if res.get("analysed_runs") and not quiet:
            typer.echo(f"report of the finished runs: azscale report {root} --out REPORT_DIR")
        raise typer.Exit(3)
    if not quiet:
        typer.echo(f"report: azscale report {root} --out REPORT_DIR; status: azscale status {root}")


@app.command()
def status(path: Path = typer.Argument(..., help="A sweep directory or a run directory"),
           as_json: bool = typer.Option(False, "--json", help="Print JSON")):
    """How far a sweep or run is, from its files only: per run step/steps, games, states/s, last
    losses and ETA; per sweep the analysis steps finished. Works while it runs and after a kill."""
    from . import runs
    from .status import format_status, status as read_status
    st = read_status(path)
    typer.echo(json.dumps(runs.json_safe(st), indent=2) if as_json else format_status(st))


@app.command()
def report(sweep_dir: Path = typer.Argument(..., help="A sweep directory (or the inputs kept by --keep-inputs)"),
           out: Path = typer.Option(..., help="Report directory: report.html, report.md, figures/"),
           keep_inputs: bool = typer.Option(False, "--keep-inputs", help="Also copy the analysis inputs (settings, "
                                            "run records, tournament results, analysis files; no games, checkpoints "
                                            "or Parquet tables) to OUT/inputs, from which the report can be rebuilt")):
    """Comparison report of a sweep: report.html (self-contained), report.md and figures."""
    from .analysis.sweep_report import build_report
    if keep_inputs:
        from .analysis.inputs import check_dest
        check_dest(sweep_dir, Path(out) / "inputs")
    res = build_report(sweep_dir, out)
    typer.echo(f"{len(res['sections'])} sections, {len(res['figures'])} figure files -> {res['report_html']}, {res['report_md']}")
    if keep_inputs:
        from .analysis.inputs import keep_inputs as keep
        k = keep(sweep_dir, Path(out) / "inputs")
        typer.echo(f"inputs: {k['files']} files, {k['bytes'] / 1e6:.1f} MB -> {Path(out) / 'inputs'} "
                   f"(azscale report {Path(out) / 'inputs'} --out DIR rebuilds the report)")
    for x in res["left_out"]:
        typer.echo(f"left out: {x['section']}: {x['why']}")


@bench_app.command("selfplay")
def bench_selfplay(game: str = typer.Argument(..., help=GAME_HELP),
                   width: int = typer.Option(64, help="Network width"),
                   simulations: int = typer.Option(300, "--sims", help="Simulations per move"),
                   games_in_flight: int = typer.Option(256, help="Games searched together per actor"),
                   actors: Optional[int] = typer.Option(None, help="Processes (default: all cores)"),
                   seconds: float = typer.Option(20.0, help="Seconds of play to measure"),
                   family: str = typer.Option("mlp", help="mlp or resnet"),
                   baseline: bool = typer.Option(True, help="Also measure pyspiel's MCTSBot"),
                   engine: str = typer.Option("auto", help="auto (every engine the game has), spiel or tensor"),
                   device: str = typer.Option("cpu", help="cpu, cuda or auto (the tensor engine's device)"),
                   compile_search: str = typer.Option("auto", "--compile",
                                                      help="Compile the search: auto (GPU or >= 256 games), on, off"),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON")):
    """Self-play throughput of each engine, side by side, against pyspiel's C++ MCTSBot, with
    the compile warm-up, aten ops and host reads per simulation wave."""
    from .bench import bench_selfplay as run_bench, format_bench
    from .config import resolve
    actors = optional_number(actors, "--actors", lo=1, hi=1024, integer=True)
    seconds = number(seconds, "--seconds", lo=0, lo_open=True, hi=1e6)
    cfg = resolve(game, "paper", {"width": width, "simulations": simulations, "family": family,
                                  "games_in_flight": games_in_flight, "engine": engine, "device": device,
                                  "compile": compile_search})
    res = run_bench(cfg, seconds, actors, baseline)
    typer.echo(json.dumps(res, indent=2) if as_json else format_bench(res))


@app.command("compare")
def compare_cmd(plain: Path = typer.Argument(..., help="The plain arm: a finished sweep directory"),
                arm: Path = typer.Argument(..., help="The changed arm: a sweep of the same game, widths and seeds "
                                                     "with some training setting changed (e.g. --set replay_cap=2)"),
                out: Path = typer.Option(..., help="Output directory: compare.json, compare.md, figures/, matches/"),
                games_per_pair: int = typer.Option(100, help="Head-to-head games per width and seed (even)"),
                simulations: int = typer.Option(100, "--sims", help="Simulations per move in the head-to-head"),
                temperature: float = typer.Option(0.25, help="Move temperature in the head-to-head"),
                seed: int = typer.Option(0, help="Seed of the matches (pair k plays with seed + k) and the "
                                                 "bootstrap")):
    """Two arms of one study side by side: each width and seed's final agents head to head (Elo of
    the arm over the plain one by size, and its slope on log parameters with an interval), with
    each arm's Elo, verdict, exact-value early/late loss and replay metrics by size."""
    from .checks import SEED_MAX
    from .compare import compare
    games_per_pair = number(games_per_pair, "--games-per-pair", lo=2, hi=10_000_000, integer=True)
    if games_per_pair % 2:
        raise UserError("--games-per-pair must be an even number >= 2 (seats alternate)")
    simulations = number(simulations, "--sims", lo=1, hi=1_000_000, integer=True)
    temperature = number(temperature, "--temperature", lo=0, hi=1_000_000)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX - 100_000, integer=True)
    res = compare(plain, arm, out, games_per_pair=games_per_pair, simulations=simulations, temperature=temperature,
                  seed=seed)
    sl = res["head_to_head"]["slope"]
    typer.echo(f"compare: {len(res['runs'])} pairs; slope " + (f"{sl['elo_per_decade']:+.0f} Elo per decade "
               f"[{sl['ci'][0]:+.0f}, {sl['ci'][1]:+.0f}]: {sl['reading']}" if "elo_per_decade" in sl else sl["reading"]))
    typer.echo(f"wrote {Path(out) / 'compare.md'}, compare.json and figures/")


@bench_app.command("replay")
def bench_replay_cmd(game: str = typer.Argument(..., help=GAME_HELP),
                     preset: str = typer.Option("cpu", help="paper, cpu or smoke: the learner's settings"),
                     width: int = typer.Option(64, help="Network width"),
                     simulations: int = typer.Option(25, "--sims", help="Simulations per move of the self-play "
                                                                        "that makes the examples (played once)"),
                     cap: int = typer.Option(2, help="The capped arm's replay_cap"),
                     beta: float = typer.Option(1.0, help="The weighted arm's replay_beta"),
                     steps: int = typer.Option(5, help="Learner steps per arm and repeat"),
                     reps: int = typer.Option(3, help="Alternating repeats of all arms"),
                     as_json: bool = typer.Option(False, "--json", help="Print JSON")):
    """Learner step time with the replay intervention off, capped, weighted, and both, on the
    same self-play examples in one process (ratios against off)."""
    from .bench import bench_replay, format_bench_replay
    from .config import resolve
    cap = number(cap, "--cap", lo=1, hi=100_000_000, integer=True)
    beta = number(beta, "--beta", lo=0, lo_open=True, hi=4)
    steps = number(steps, "--steps", lo=1, hi=1000, integer=True)
    reps = number(reps, "--reps", lo=1, hi=100, integer=True)
    cfg = resolve(game, preset, {"width": width, "simulations": simulations, "device": "cpu", "actors": 1})
    res = bench_replay(cfg, [(0, 0.0), (cap, 0.0), (0, beta), (cap, beta)], steps, reps)
    typer.echo(json.dumps(res, indent=2) if as_json else format_bench_replay(res))


def _device(name: str) -> str:
    """A --device option resolved once (auto: CUDA when visible), refused if not available."""
    from .selfplay import resolve_device
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    return str(resolve_device(name))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Optional[List[str]] = None) -> None:
    """Run the CLI. Every problem the user can fix ends as ONE line, `azscale: error: ...`, with
    exit status 2: our own refusals (UserError), command-line usage errors, and operating-system
    errors (a file where a directory is expected, a read-only directory, a full disk)."""
    import errno
    import signal

    from .errors import Terminated
    from .nets import flush_subnormals
    # before any torch op, so the intra-op threads torch starts later inherit it (imports torch:
    # `import azscale.cli` itself stays light)
    flush_subnormals()

    def terminated(signum, frame):
        raise Terminated()
    # SIGTERM stops like Ctrl-C. A job started with `&` from a script has SIGINT ignored (and its
    # children inherit that), so the sweep asks its runs to stop with SIGTERM.
    signal.signal(signal.SIGTERM, terminated)

    try:                       # typer >= 0.20 carries its own copy of click
        from typer._click import exceptions as click_exc
    except ImportError:        # pragma: no cover - older typer uses click itself
        from click import exceptions as click_exc

    def fail(msg: str) -> None:
        print(f"azscale: error: {_one_line(msg)}", file=sys.stderr)
        sys.exit(2)

    from .procs import die_with_parent_from_env
    die_with_parent_from_env()            # a run trained by a sweep ends with the sweep
    try:
        rc = app(args=argv, prog_name="azscale", standalone_mode=False)
    except UserError as exc:
        fail(str(exc))
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), file=sys.stderr)
        sys.exit(2)
    except click_exc.ClickException as exc:
        cmd = f" {exc.ctx.command_path.split(' ', 1)[1]}" if getattr(exc, "ctx", None) is not None \
            and " " in exc.ctx.command_path else ""
        fail(f"{exc.format_message()} (see azscale{cmd} --help)")
    except typer.Abort:
        print("azscale: interrupted (rerun the same command to resume)", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("azscale: interrupted (rerun the same command to resume)", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        fail("out of memory (choose smaller settings)")
    except RuntimeError as exc:              # torch's allocator: "DefaultCPUAllocator: not enough memory"
        from .errors import out_of_memory
        if not out_of_memory(exc):
            raise
        fail(f"out of memory ({_one_line(exc)[:160]}); choose smaller settings")
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            sys.exit(1)
        where = exc.filename if exc.filename is not None else ""
        what = exc.strerror or _one_line(str(exc)) or type(exc).__name__
        fail(f"{where}: {what}" if where else what)
    else:
        if rc == 130:
            print("azscale: interrupted (rerun the same command to resume)", file=sys.stderr)
        sys.exit(rc or 0)


@bench_app.command("zipf")
def bench_zipf_cmd(source: Path = typer.Argument(..., help="A games table, e.g. from azscale random-games"),
                   workers: Optional[int] = typer.Option(None, help="Replay processes (default: all cores)"),
                   mle: bool = typer.Option(True, help="Include the maximum-likelihood fit")):
    """Time the states table and both Zipf fits on a games table; print time and peak memory."""
    from .bench import bench_zipf
    workers = optional_number(workers, "--workers", lo=1, hi=1024, integer=True)
    r = bench_zipf(source, workers, mle)
    typer.echo(f"zipf benchmark: {r['games']:,} games, {r['visits']:,} visits, "
               f"{r['distinct_states']:,} distinct states, {r['workers']} workers")
    typer.echo(f"  read {r['read_s']:.1f} s, states table {r['states_s']:.1f} s, fits {r['fits_s']:.1f} s, "
               f"total {r['total_s']:.1f} s; peak memory {r['peak_rss_gb']:.2f} GB")
    mle_txt = "not fitted" if r["mle_alpha"] is None else f"{r['mle_alpha']:.4f}"
    typer.echo(f"  LS alpha {r['ls_alpha']:.4f}, MLE alpha {mle_txt}")


if __name__ == "__main__":
    main()
