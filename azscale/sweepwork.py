"""The functions of the sweep's analysis steps, one per step, each named by its step in
`sweepsteps.STEPS` and given a `sweepsteps.Context` (`c`). Each imports the analysis (or the arena and
the tournament) it calls when it runs. Nothing here imports the sweep or the registry, so the
registry names these without a cycle, and stays light for `status` and the report.
"""

from __future__ import annotations


def run_random_games(c) -> None:
    from .analysis.baselines import random_games
    random_games(c.sc.game, c.sc.random_games, 12345, c.root / "random", part_size=10000, workers=c.workers,
                 progress=False)


def run_zipf(c) -> None:
    from .analysis.zipf_report import zipf_analysis
    zipf_analysis(c.run_dirs, c.a / "zipf", window="last70", bootstrap=c.sc.bootstrap // 4, workers=c.workers,
                  **c.eg)


def run_zipf_random(c) -> None:
    from .analysis.zipf_report import zipf_analysis
    zipf_analysis([c.root / "random"], c.a / "zipf-random", workers=c.workers, bootstrap=c.sc.bootstrap // 4, **c.eg)


def run_tournament(c) -> None:
    from .arena import reference_players
    from .tournament import agents_from_runs, tournament
    tournament(agents_from_runs(c.run_dirs) + reference_players("random"), c.root / "matches" / "final", grow=True,
               **c.match)


def run_tournament_checkpoints(c) -> None:
    """The paper's within-run round-robins (checkpoints of one run), in the same Elo fit."""
    from .tournament import checkpoint_tournaments
    checkpoint_tournaments(c.run_dirs, c.root / "matches", c.sc.checkpoint_tournament, grow=False, **c.match)


def run_elo(c) -> None:
    from .analysis.elo_report import elo_analysis
    from .tournament import checkpoint_dirs
    k = c.sc.checkpoint_tournament
    within = checkpoint_dirs(c.root / "matches", c.run_dirs, k) if k else []
    elo_analysis([c.root / "matches" / "final", *within], c.a / "elo", anchor="random", bootstrap=c.sc.bootstrap)


def run_loss(c) -> None:
    from .analysis.loss_report import loss_analysis
    loss_analysis(c.run_dirs, c.a / "loss", "trainset", checkpoints="all", workers=c.workers, progress=False,
                  late_turn=c.eg["late_turn"])


def run_loss_pooled(c) -> None:
    """The early/late split that the verdict reads: final checkpoints, every size on the same states."""
    from .analysis.loss_report import loss_analysis
    loss_analysis(c.run_dirs, c.a / "loss-pooled", "trainset", checkpoints="final", pooled=True, workers=c.workers,
                  progress=False, late_turn=c.eg["late_turn"])


def run_loss_solver(c) -> None:
    from .analysis.loss_report import loss_analysis
    # every checkpoint: the exact move-accuracy gain over the last third measures saturation where
    # the seat decides the within-run games (the networks are cheap to evaluate; the states are
    # solved once)
    loss_analysis(c.run_dirs, c.a / "loss-solver", "solver", checkpoints="all", cache_dir=c.root / "cache",
                  workers=c.workers, progress=False, late_turn=c.eg["late_turn"], solver_budget=c.sc.solver_budget)


def _sizes(run_dirs) -> int:
    from . import checkpoints as ck
    return len({ck.read_run_config(d)["params"] for d in run_dirs})


def run_scaling(c) -> None:
    """An exponent needs two sizes; with one the step is done and writes nothing."""
    if _sizes(c.run_dirs) < 2:
        return
    from .analysis.elo_report import scaling_analysis
    scaling_analysis(c.a / "elo", c.a / "scaling", zipf=c.a / "zipf" / "fits.json", run_dirs=c.run_dirs,
                     bootstrap=c.sc.bootstrap)


def run_verdict(c) -> None:
    from .analysis.elo_report import verdict
    # the pooled split, else the runs' own states (read when the verdict runs)
    split = next((c.a / x / "loss.json" for x in ("loss-pooled", "loss") if (c.a / x / "loss.json").exists()), None)
    exact = c.a / "loss-solver" / "loss.json"
    verdict(c.a / "elo", c.a / "verdict.md", zipf=c.a / "zipf" / "fits.json", loss=split, run_dirs=c.run_dirs,
            exact=exact if exact.exists() else None)


def run_temperature(c) -> None:
    from .temperature import temperature_study
    sc = c.sc
    temperature_study(c.run_dirs, c.root / "temperature", sc.temperature_study, games_per_pair=sc.games_per_pair,
                      simulations=sc.match_simulations, seed=0, workers=c.workers, progress=False,
                      log=lambda m: None, elo_bootstrap=sc.bootstrap,
                      zipf_replicates=sc.bootstrap // 4 if sc.bootstrap >= 8 else 0)
