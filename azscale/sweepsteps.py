"""The sweep's analysis steps, each declared once (`STEPS`): its name, the settings it reads
(`inputs`, its fingerprint in steps.json), the files it writes (`outputs`), the steps whose results
it reads (`depends`) and the function that makes it (`function`, `Step.run`). The sweep runs them in this order,
`azscale status` lists them, and the report names them when a result is missing.

A step's fingerprint is built from names in `INPUTS` only: a step that names one not there is
refused when this module loads (and `fingerprint` refuses it again), never silently recorded
without it (which would keep a stale result when that setting changes).

Light: a step names its function (in `sweepwork`), imported when the step runs, so `status` and the
report read the registry without loading the trainer.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .config import analysis_settings
from .errors import UserError
from .runs import RESULT_FILES
from .sweepcfg import SweepConfig

_OMIT = object()            # an input left out of the fingerprint (see checkpoint_tournament)

# What a step may read besides other steps' results: fingerprint key -> its value, from the
# sweep's settings, the names of the runs it reads and the analysis values (`analysis_values`).
INPUTS: dict[str, Callable[[SweepConfig, list[str], dict[str, Any]], Any]] = {
    "runs": lambda sc, runs, eg: runs,
    # the steps the runs train (resolved), in the fingerprint of every step that reads runs: they
    # may grow (`--set steps=N`), and then the runs' results change, not their names. A step
    # recorded before this input counts as made with the sweep's steps (`sweep._with_trained_steps`)
    "trained_steps": lambda sc, runs, eg: sc.trained_steps,
    "games": lambda sc, runs, eg: sc.random_games,
    "replicates": lambda sc, runs, eg: sc.bootstrap // 4,
    "late_turn": lambda sc, runs, eg: eg["late_turn"],
    "shoulder_moves": lambda sc, runs, eg: eg["shoulder_moves"],
    "games_per_pair": lambda sc, runs, eg: sc.games_per_pair,
    "simulations": lambda sc, runs, eg: sc.match_simulations,
    "temperature": lambda sc, runs, eg: sc.match_temperature,
    "bootstrap": lambda sc, runs, eg: sc.bootstrap,
    # in the Elo step's fingerprint only when asked, so sweeps made before it keep their Elo step
    "checkpoint_tournament": lambda sc, runs, eg: sc.checkpoint_tournament or _OMIT,
    # in the solver loss's fingerprint only when set, so sweeps made before it keep their step
    "solver_budget": lambda sc, runs, eg: sc.solver_budget or _OMIT,
    "checkpoints": lambda sc, runs, eg: sc.checkpoint_tournament,
    # the solver loss evaluates every checkpoint (it used to evaluate the final ones): sweeps whose
    # step ran before redo it
    "solver_checkpoints": lambda sc, runs, eg: "all",
    "temperatures": lambda sc, runs, eg: sorted(sc.temperature_study),
}


def analysis_values(sc: SweepConfig) -> dict[str, Any]:
    """late_turn and shoulder_moves: the sweep's own, else the game's [analysis] table."""
    eg = analysis_settings(sc.game)
    if sc.late_turn is not None:
        eg["late_turn"] = float(sc.late_turn)
    if sc.shoulder_moves is not None:
        eg["shoulder_moves"] = int(sc.shoulder_moves)
    return eg


@dataclass
class Context:
    """What a step's function gets: the sweep, its directory and the runs it analyses."""
    sc: SweepConfig
    root: Path
    run_dirs: list[Path]
    workers: int

    @property
    def a(self) -> Path:
        return self.root / "analysis"

    @functools.cached_property
    def eg(self) -> dict[str, Any]:
        return analysis_values(self.sc)

    @property
    def match(self) -> dict[str, Any]:
        """The tournaments' settings (the sweep's match settings)."""
        sc = self.sc
        return {"games_per_pair": sc.games_per_pair, "temperature": sc.match_temperature,
                "simulations": sc.match_simulations, "seed": 0, "workers": self.workers, "progress": False}


def _always(sc: SweepConfig) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    name: str
    # the function that makes its results, `module:function` in azscale, taking a `Context`; named,
    # not imported, so the registry stays light (status and the report read it without the
    # trainer, the arena or the tournament: tests/test_layers.py), as `engines.TWINS` names twins
    function: str
    inputs: tuple[str, ...] = ()         # names in INPUTS: its fingerprint
    # what it writes, relative to the sweep, removed before it is redone (derived results only:
    # games are never removed, except a temperature study whose agents changed, `sweep._stale_study`)
    outputs: tuple[str, ...] = ()
    output_kind: str | None = None       # the result kind of its directory (`runs.RESULT_FILES`); None: files
    depends: tuple[str, ...] = ()        # the steps whose results it reads: redoing one redoes this
    optional: bool = False               # too little data (ThinData) is recorded in skipped.json, not fatal
    asked: Callable[[SweepConfig], bool] = _always    # whether the sweep runs it at all
    needs_oracle: bool = False           # only with the solver on and an exact solver for the game

    def run(self, ctx: Context) -> Any:
        """Make the step's results (its function, imported now)."""
        module, name = self.function.split(":")
        return getattr(importlib.import_module(f"azscale.{module}"), name)(ctx)

    def fingerprint(self, sc: SweepConfig, runs: list[str], eg: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key in self.inputs:
            if key not in INPUTS:
                raise KeyError(f"sweep step {self.name}: unknown input {key!r} (known: {', '.join(INPUTS)})")
            v = INPUTS[key](sc, runs, eg)
            if v is not _OMIT:
                out[key] = v
        return out


_RUNS = ("runs", "trained_steps")          # a step that reads the runs
_MATCH = (*_RUNS, "games_per_pair", "simulations", "temperature")
_LOSS = (*_RUNS, "late_turn")

STEPS: dict[str, Step] = {}


def _register(*steps: Step) -> None:
    """Add steps in the order the sweep runs them; every name a step uses is checked here."""
    for s in steps:
        if s.name in STEPS:
            raise ValueError(f"sweep step {s.name} declared twice")
        unknown = [k for k in s.inputs if k not in INPUTS]
        if unknown:
            raise ValueError(f"sweep step {s.name}: unknown input(s) {', '.join(unknown)} (known: {', '.join(INPUTS)})")
        later = [d for d in s.depends if d not in STEPS]
        if later:
            raise ValueError(f"sweep step {s.name} depends on {', '.join(later)}, not declared before it")
        if s.function.count(":") != 1:
            raise ValueError(f"sweep step {s.name}: its function is named module:function, got {s.function!r}")
        if s.output_kind is not None and len(s.outputs) != 1:
            raise ValueError(f"sweep step {s.name}: a result kind names the one directory it writes")
        STEPS[s.name] = s


_register(
    Step("random-games", "sweepwork:run_random_games", inputs=("games",)),
    Step("zipf", "sweepwork:run_zipf", inputs=(*_RUNS, "replicates", "late_turn", "shoulder_moves"),
         outputs=("analysis/zipf",), output_kind="zipf"),
    Step("zipf-random", "sweepwork:run_zipf_random", inputs=("replicates", "late_turn", "shoulder_moves"),
         outputs=("analysis/zipf-random",), output_kind="zipf", depends=("random-games",)),
    Step("tournament", "sweepwork:run_tournament", inputs=_MATCH),
    Step("tournament-checkpoints", "sweepwork:run_tournament_checkpoints", inputs=(*_MATCH, "checkpoints"),
         asked=lambda sc: bool(sc.checkpoint_tournament)),
    Step("elo", "sweepwork:run_elo", inputs=("bootstrap", "checkpoint_tournament"), outputs=("analysis/elo",),
         output_kind="elo", depends=("tournament", "tournament-checkpoints")),
    Step("loss", "sweepwork:run_loss", inputs=_LOSS, outputs=("analysis/loss",), output_kind="loss", optional=True),
    Step("loss-pooled", "sweepwork:run_loss_pooled", inputs=_LOSS, outputs=("analysis/loss-pooled",), output_kind="loss",
         optional=True),
    Step("loss-solver", "sweepwork:run_loss_solver", inputs=(*_LOSS, "solver_budget", "solver_checkpoints"),
         outputs=("analysis/loss-solver",), output_kind="loss",
         optional=True, needs_oracle=True),
    Step("scaling", "sweepwork:run_scaling", inputs=(*_RUNS, "bootstrap"), outputs=("analysis/scaling",),
         output_kind="scaling", depends=("elo", "zipf")),
    Step("verdict", "sweepwork:run_verdict", outputs=("analysis/verdict.md", "analysis/verdict.json"),
         depends=("elo", "zipf", "loss", "loss-pooled", "loss-solver")),
    # optional: off unless the sweep asks for temperatures
    Step("temperature", "sweepwork:run_temperature",
         inputs=(*_RUNS, "temperatures", "games_per_pair", "simulations", "bootstrap"), optional=True,
         asked=lambda sc: bool(sc.temperature_study)),
)
ANALYSIS_STEPS = list(STEPS)


def step_inputs(sc: SweepConfig, names: Iterable[str], solver: bool) -> dict[str, dict[str, Any]]:
    """The fingerprint of each step the sweep runs (`solver`: the solver is on and the game has
    one): what it reads, besides the results of the steps it depends on."""
    r = sorted(names)
    eg = analysis_values(sc)
    return {s.name: s.fingerprint(sc, r, eg) for s in STEPS.values()
            if s.asked(sc) and (solver or not s.needs_oracle)}


def dependents(steps: set[str]) -> set[str]:
    """`steps` and every step that reads their results, directly or not."""
    out = set(steps)
    grew = True
    while grew:
        grew = False
        for s in STEPS.values():
            if s.name not in out and out & set(s.depends):
                out.add(s.name)
                grew = True
    return out


def check_reanalyse(names: Iterable[str]) -> set[str]:
    names = {n.strip() for n in names if n.strip()}
    if "all" in names:
        return set(ANALYSIS_STEPS)
    bad = sorted(names - set(ANALYSIS_STEPS))
    if bad:
        raise UserError(f"--reanalyse: unknown step(s) {', '.join(bad)} (steps: all, {', '.join(ANALYSIS_STEPS)})")
    return names


def result(step: str, file: str) -> str:
    """The path, relative to the sweep, of `file` written by `step` (in its directory, or one of
    its files); a step that writes no such file is refused, so the report's names stay true."""
    s = STEPS[step]
    if s.output_kind is not None:
        if file in RESULT_FILES[s.output_kind][0]:
            return f"{s.outputs[0]}/{file}"
    else:
        for out in s.outputs:
            if Path(out).name == file:
                return out
    raise KeyError(f"sweep step {step} writes no {file!r} (its outputs: {', '.join(s.outputs) or 'none'})")
