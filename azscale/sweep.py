"""Sweeps: train a family of sizes x seeds, then analyse them, resumably.

    sweeps/<name>/
      sweep.json                 the sweep's settings (refused if a rerun asks for others)
      runs/<game>-w<W>-s<S>/     one training run per size and seed (each resumes by itself)
      random/                    uniformly random games (the Zipf baseline)
      matches/final/             round-robin of the final checkpoints and the random player
      analysis/<step>/           zipf, zipf-random, loss, loss-pooled, loss-solver, elo, scaling
      analysis/verdict.md, verdict.json
      temperature/               with --temperature-study: the temperature study (azscale temperature)
      steps.json                 the steps finished so far

Every step is idempotent: training and the tournament resume on their own; an analysis step is
redone from scratch unless it is recorded in steps.json, which is written (atomically) only
after the step's outputs are complete. A sweep killed at any moment continues where it stopped
and duplicates nothing.

Executors: `local` (default) trains the runs one after another in this machine's processes;
`ray` submits each training run as a Ray task (with `num_cpus` = actors, and GPUs on request)
to an existing cluster (`--address auto`) or a local one, and runs the analysis here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import runs
from .config import analysis_settings, base_name, resolve
from .errors import UserError


@dataclass
class SweepConfig:
    game: str
    widths: list[int]
    seeds: int = 2
    preset: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    random_games: int = 20000
    games_per_pair: int = 100
    match_simulations: int = 100
    match_temperature: float = 0.25
    bootstrap: int = 100
    solver: bool = True
    solver_states: int = 20000
    max_minutes_per_run: float | None = None
    # the temperature study (azscale temperature) over the final checkpoints, at these
    # temperatures; empty: not run. A sweep.json written without this field means empty.
    temperature_study: list[float] = field(default_factory=list)

    def run_name(self, width: int, seed: int) -> str:
        return f"{base_name(self.game)}-w{width}-s{seed}"


def _steps_done(root: Path) -> set[str]:
    p = root / "steps.json"
    if not p.exists():
        return set()
    done = runs.read_json(p, "record of finished sweep steps").get("done")
    if not isinstance(done, list) or not all(isinstance(x, str) for x in done):
        raise UserError(f"{p}: damaged record of finished sweep steps; delete it to redo the analysis steps")
    return set(done)


def _mark(root: Path, step: str) -> None:
    done = _steps_done(root) | {step}
    runs.atomic_write_json(root / "steps.json", {"done": sorted(done)})


def _train_one(cfg_dict: dict[str, Any], run_dir: str, max_minutes: float | None) -> dict[str, Any]:
    from .config import from_dict
    from .train import train
    return train(from_dict(cfg_dict), Path(run_dir), quiet=True,
                 max_seconds=None if max_minutes is None else max_minutes * 60)


def run_configs(sc: SweepConfig, root: Path):
    for w in sc.widths:
        for s in range(sc.seeds):
            cfg = resolve(sc.game, sc.preset, {**sc.overrides, "width": w, "seed": s})
            yield cfg, runs.inside(root, root / "runs" / sc.run_name(w, s))


def sweep(sc: SweepConfig, root: Path, executor: str = "local", address: str | None = None,
          gpus_per_run: float = 0.0, log: Callable[[str], None] = print) -> dict[str, Any]:
    root = Path(root)
    if not sc.widths:
        raise UserError("--widths must name at least one width")
    if sc.seeds < 1:
        raise UserError("--seeds must be >= 1")
    configs = list(run_configs(sc, root))          # validates the game and every setting before any work
    runs.claim_dir(root, "sweep")
    root.mkdir(parents=True, exist_ok=True)
    with runs.RunLock(root):
        runs.claim_dir(root, "sweep")
        manifest = root / "sweep.json"
        mine = json.loads(json.dumps(asdict(sc)))
        record = {**mine, "kind": "sweep", "id": runs.new_identity()}
        if manifest.exists():
            have = runs.read_manifest(root, "sweep")
            diff = settings_diff(have, mine)
            if diff:
                raise UserError(f"{root} holds a sweep with other settings ({', '.join(diff)}); choose another --out")
            record["id"] = have.get("id") or record["id"]
        runs.atomic_write_json(manifest, record)
        # 1. training; a run already there must have been trained with these settings, finished
        # or not (a changed preset must not leave old runs silently in the comparison)
        from .train import _check_resume
        for c, d in configs:
            _check_resume(d, c)
        pending = [(c, d) for c, d in configs if not _finished(d, c.steps)]
        log(f"training: {len(configs) - len(pending)}/{len(configs)} runs finished")
        if executor == "ray":
            _train_ray(pending, sc, address, gpus_per_run, log)
        elif executor == "local":
            for cfg, d in pending:
                log(f"  training {d.name} ({cfg.width} wide)")
                _train_one(cfg.to_dict(), str(d), sc.max_minutes_per_run)
        else:
            raise UserError(f"unknown executor '{executor}' (local or ray)")
        unfinished = [d.name for c, d in configs if not _finished(d, c.steps)]
        if unfinished:
            log(f"stopped: {len(unfinished)} run(s) not finished ({', '.join(unfinished)}); rerun to continue")
            return {"finished": False, "unfinished_runs": unfinished}
        _analyse(sc, root, [d for _, d in configs], log)
    return {"finished": True, "root": str(root)}


def settings_diff(have: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """Settings of `mine` that a recorded sweep.json (`have`) holds otherwise; a field that
    `have` lacks (written before the field existed) counts as its default."""
    from dataclasses import MISSING, fields
    default = {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default)
               for f in fields(SweepConfig)}
    return sorted(k for k in mine if have.get(k, default.get(k)) != mine[k] and k != "max_minutes_per_run")


def _finished(run_dir: Path, steps: int) -> bool:
    """The one rule (`runs.run_status`); a run whose records are incomplete is refused there."""
    if not (Path(run_dir) / "config.json").exists():
        return False
    st = runs.run_status(run_dir)
    return st.finished and st.steps >= steps


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def ray_is_loopback(address: str | None) -> bool:
    """True when the sweep starts its own local Ray (no address) or joins one at a loopback
    address: then every Ray process and the driver must stay on 127.0.0.1."""
    if address is None or address == "local":
        return True
    return address.rsplit(":", 1)[0].removeprefix("ray://") in LOOPBACK_HOSTS


def ray_init_kwargs(address: str | None) -> dict[str, Any]:
    """Arguments for `ray.init`. A local or loopback cluster is pinned to 127.0.0.1: Ray
    otherwise rewrites "127.0.0.1" to the address it would use towards the internet (the
    eth0 address), which a closed or firewalled machine cannot reach. Ray's own switch for a
    single-machine, loopback-only cluster is RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when
    ray is first imported; a cluster address the user names elsewhere is left as it is."""
    kw: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False,
                          "runtime_env": {"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}}}
    if ray_is_loopback(address):
        kw["_node_ip_address"] = "127.0.0.1"
    return kw


def _train_ray(pending, sc: SweepConfig, address: str | None, gpus: float, log) -> None:
    if not pending:
        return
    if ray_is_loopback(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray (pip install 'azscale[ray]')") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(**ray_init_kwargs(address))
        except ConnectionError as e:
            raise UserError(f"cannot reach the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
    try:
        remote = ray.remote(_train_one)
        refs = [remote.options(num_cpus=max(1, c.actors), num_gpus=gpus).remote(c.to_dict(), str(d.resolve()),
                                                                              sc.max_minutes_per_run)
                for c, d in pending]
        log(f"  {len(refs)} training task(s) submitted to Ray")
        ray.get(refs)
    finally:
        if started_here:
            ray.shutdown()


def _analyse(sc: SweepConfig, root: Path, run_dirs: list[Path], log) -> None:
    from .analysis.baselines import random_games
    from .analysis.elo_report import elo_analysis, scaling_analysis, verdict
    from .analysis.loss import loss_analysis
    from .analysis.zipf_report import zipf_analysis
    from .tournament import agents_from_runs, reference_players, tournament

    workers = os.cpu_count() or 1
    a = root / "analysis"
    done = _steps_done(root)

    def step(name: str, fn, optional: bool = False) -> None:
        """Run an analysis step once. An `optional` step that finds too little data for its
        estimate (a UserError) is recorded in analysis/skipped.json with the reason, and the
        sweep goes on to the report, which names it; a sweep never dies on thin data."""
        if name in done:
            return
        log(f"  {name}")
        try:
            fn()
        except UserError as e:
            if not optional:
                raise
            log(f"  {name}: not computed: {e}")
            sk = a / "skipped.json"
            skipped = runs.read_json(sk, "list of skipped steps") if sk.exists() else {}
            a.mkdir(parents=True, exist_ok=True)
            runs.atomic_write_json(a / "skipped.json", {**skipped, name: str(e)})
        _mark(root, name)

    eg = analysis_settings(sc.game)          # the game's [analysis] table: late_turn, shoulder_moves
    step("random-games", lambda: random_games(sc.game, sc.random_games, 12345, root / "random",
                                              part_size=10000, workers=workers, progress=False))
    step("zipf", lambda: zipf_analysis(run_dirs, a / "zipf", window="last70", bootstrap=sc.bootstrap // 4,
                                       workers=workers, **eg))
    step("zipf-random", lambda: zipf_analysis([root / "random"], a / "zipf-random", workers=workers,
                                              bootstrap=sc.bootstrap // 4, **eg))
    step("tournament", lambda: tournament(agents_from_runs(run_dirs) + reference_players("random"),
                                          root / "matches" / "final", sc.games_per_pair, sc.match_temperature,
                                          sc.match_simulations, 0, workers, progress=False))
    step("elo", lambda: elo_analysis([root / "matches" / "final"], a / "elo", anchor="random",
                                     bootstrap=sc.bootstrap))
    step("loss", lambda: loss_analysis(run_dirs, a / "loss", "trainset", checkpoints="all", workers=workers,
                                       progress=False, late_turn=eg["late_turn"]), optional=True)
    # the early/late split that the verdict reads: final checkpoints, every size on the same states
    step("loss-pooled", lambda: loss_analysis(run_dirs, a / "loss-pooled", "trainset", checkpoints="final",
                                              pooled=True, workers=workers, progress=False,
                                              late_turn=eg["late_turn"]), optional=True)
    if sc.solver and _has_oracle(sc.game):
        step("loss-solver", lambda: loss_analysis(run_dirs, a / "loss-solver", "solver", cache_dir=root / "cache",
                                                  workers=workers, progress=False, late_turn=eg["late_turn"]),
             optional=True)
    step("scaling", lambda: scaling_analysis(a / "elo", a / "scaling", zipf=a / "zipf" / "fits.json",
                                             run_dirs=run_dirs, bootstrap=sc.bootstrap) if _sizes(run_dirs) >= 2
         else None)

    def split():            # read when the verdict runs: the pooled split, else the runs' own states
        return next((a / x / "loss.json" for x in ("loss-pooled", "loss") if (a / x / "loss.json").exists()), None)
    step("verdict", lambda: verdict(a / "elo", a / "verdict.md", zipf=a / "zipf" / "fits.json", loss=split()))
    if sc.temperature_study:                 # optional: off unless the sweep asks for temperatures
        from .temperature import temperature_study
        step("temperature", lambda: temperature_study(
            run_dirs, root / "temperature", sc.temperature_study, sc.games_per_pair, sc.match_simulations, 0, workers,
            progress=False, log=lambda m: None, elo_bootstrap=sc.bootstrap,
            zipf_replicates=sc.bootstrap // 4 if sc.bootstrap >= 8 else 0),
            optional=True)
    log(f"analysis finished -> {a}")


def _sizes(run_dirs) -> int:
    return len({runs.read_run_config(d)["params"] for d in run_dirs})


def _has_oracle(game: str) -> bool:
    import pyspiel

    from .oracles import make_oracle
    try:
        make_oracle(pyspiel.load_game(game))
        return True
    except UserError:
        return False
