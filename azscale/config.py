"""Typed training settings: `games/<game>.toml` presets plus command-line overrides.

Every value is checked here, with the field named, before any work starts. The fully resolved
settings are written into every run directory (`config.json`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .checks import SEED_MAX, number
from .errors import UserError

# The paper's 17 log-spaced checkpoints for a 10,000-step run (PAPER.md section 3).
PAPER_CHECKPOINTS = (20, 30, 50, 70, 100, 150, 230, 340, 510, 770, 1150, 1730, 2590, 3880,
                     5820, 8730, 10000)
PRESETS = ("paper", "cpu", "smoke")


def setting(default: Any, doc: str) -> Any:
    """A TrainConfig field with its documentation: the one place a setting is described (the
    `azscale train` options take their help from it, `doc(name)`)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class TrainConfig:
    game: str = setting("tic_tac_toe", "OpenSpiel game, optionally with parameters, e.g. connect_four or "
                                       "'connect_four(rows=4,columns=5)'")
    # network
    family: str = setting("mlp", "Model family: mlp (the paper's) or resnet")
    width: int = setting(16, "Network width w (paper: 4, 8, ..., 256)")
    depth: int = setting(2, "Hidden layers (mlp) or residual blocks (resnet)")
    # self-play search
    simulations: int = setting(300, "MCTS simulations per move")
    c_puct: float = setting(2.0, "PUCT exploration constant")
    dirichlet_alpha: float = setting(1.0, "Dirichlet noise concentration at the root")
    dirichlet_epsilon: float = setting(0.25, "Share of the Dirichlet noise in the root's prior")
    temperature: float = setting(1.0, "Self-play move temperature for the first temperature_drop moves")
    temperature_drop: int = setting(15, "Moves played at the temperature; then the most visited move")
    games_in_flight: int = setting(256, "Games searched together by each actor")
    actors: int = setting(1, "Self-play processes")
    # learner
    buffer_size: int = setting(65536, "Replay buffer capacity in states")
    reuse: int = setting(10, "Times each state is sampled on average: the learner waits for "
                             "buffer_size / reuse new states before each step")
    updates_per_step: int = setting(64, "Adam updates per learner step")
    batch_size: int = setting(1024, "States per Adam update")
    learning_rate: float = setting(1e-3, "Adam learning rate")
    weight_decay: float = setting(1e-4, "L2 penalty on the weights")
    steps: int = setting(10000, "Learner steps")
    # replay intervention (issue 33; off by default, the paper's plain replay)
    replay_cap: int = setting(0, "Most copies of one state kept in the replay buffer; a new copy beyond it "
                                 "replaces that state's oldest copy (0 = no cap, the paper's)")
    replay_beta: float = setting(0.0, "Replay sampling weight per example = (copies of its state in the "
                                      "buffer)^-replay_beta (0 = uniform, the paper's; 1 = every distinct "
                                      "state equally often)")
    replay_from_turn: int = setting(0, "replay_cap and replay_beta apply only to examples of this turn on "
                                       "(moves made before them; 0 = every state)")
    checkpoints: int = setting(17, "Checkpoints kept, log-spaced as the paper's 17")
    # bookkeeping
    seed: int = setting(0, "Random seed (same seed + one actor = same games)")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    engine: str = setting("auto", "auto (tensor twin where one exists), spiel or tensor")
    compile: str = setting("auto", "Compile the search: auto (on a GPU or >= 256 games in flight), on or off")
    snapshot_seconds: float = setting(60.0, "Seconds between resumable snapshots (also at every checkpoint)")

    @property
    def states_per_step(self) -> int:
        """New self-play states the learner waits for before each step (buffer / reuse)."""
        return max(1, self.buffer_size // self.reuse)

    def checkpoint_steps(self) -> list[int]:
        return checkpoint_schedule(self.steps, self.checkpoints)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return validate(dataclasses.replace(self, **changes))


_FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}


def doc(name: str) -> str:
    """What a training setting means (its doc in TrainConfig)."""
    return next(f.metadata["doc"] for f in fields(TrainConfig) if f.name == name)
# the types a setting may have (its annotation, as written): read by `_coerce` and by the command
# line's training flags (`cli.training_options`)
SETTING_TYPES = {"int": int, "float": float, "str": str}


def checkpoint_schedule(steps: int, count: int = 17) -> list[int]:
    """The paper's log-spaced checkpoint steps rescaled to `steps`; the last one is always `steps`.

    With steps=10000 and count=17 this is exactly the paper's list. Other counts are spaced
    log-uniformly between 0.2% of the run and its end, like the paper's.
    """
    if steps < 1:
        raise UserError(f"steps must be >= 1, got {steps}")
    if count == len(PAPER_CHECKPOINTS):
        raw = [s * steps / 10000 for s in PAPER_CHECKPOINTS]
    else:
        import numpy as np
        raw = list(np.geomspace(max(steps * 0.002, 1), steps, max(count, 1)))
    out = sorted({min(steps, max(1, round(s))) for s in raw})
    if out[-1] != steps:
        out.append(steps)
    return out


def _coerce(name: str, value: Any) -> Any:
    """`value` as the setting's type (int, float or str); the range is checked by `validate`."""
    if name not in _FIELD_TYPES:
        known = ", ".join(sorted(_FIELD_TYPES))
        raise UserError(f"unknown setting '{name}' (known settings: {known})")
    kind = SETTING_TYPES[_FIELD_TYPES[name]]

    def bad() -> UserError:
        return UserError(f"setting '{name}' must be {_FIELD_TYPES[name]}, got {value!r}")

    if kind is str:
        if not isinstance(value, str):
            raise bad()
        return value
    if isinstance(value, bool):
        raise bad()
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed: Any = int(text) if kind is int and text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise bad() from None
    elif isinstance(value, (int, float)):
        parsed = value
    else:
        raise bad()
    if kind is float:
        return float(parsed)
    if isinstance(parsed, float):
        if not (math.isfinite(parsed) and parsed.is_integer()):
            raise bad()
        return int(parsed)
    return int(parsed)


# The range of every numeric setting (the one shared rule for numbers is `checks.number`).
_BIG = 1_000_000
FIELD_RULES: dict[str, dict[str, Any]] = {
    "width": dict(lo=1, hi=16384, integer=True),
    "depth": dict(lo=1, hi=256, integer=True),
    "simulations": dict(lo=1, hi=_BIG, integer=True),
    "c_puct": dict(lo=0, lo_open=True, hi=_BIG),
    "dirichlet_alpha": dict(lo=0, lo_open=True, hi=_BIG),
    "dirichlet_epsilon": dict(lo=0, hi=1),
    "temperature": dict(lo=0, hi=_BIG),
    "temperature_drop": dict(lo=0, hi=_BIG, integer=True),
    "games_in_flight": dict(lo=1, hi=_BIG, integer=True),
    "actors": dict(lo=1, hi=1024, integer=True),
    "buffer_size": dict(lo=1, hi=100_000_000, integer=True),
    "reuse": dict(lo=1, hi=_BIG, integer=True),
    "updates_per_step": dict(lo=1, hi=_BIG, integer=True),
    "batch_size": dict(lo=1, hi=100_000_000, integer=True),
    "learning_rate": dict(lo=0, lo_open=True, hi=10),
    "weight_decay": dict(lo=0, hi=10),
    "steps": dict(lo=1, hi=1_000_000_000, integer=True),
    "checkpoints": dict(lo=1, hi=10_000, integer=True),
    "seed": dict(lo=0, hi=SEED_MAX, integer=True),
    "snapshot_seconds": dict(lo=0, hi=1e9),
    "replay_cap": dict(lo=0, hi=100_000_000, integer=True),
    "replay_beta": dict(lo=0, hi=4),
    "replay_from_turn": dict(lo=0, hi=_BIG, integer=True),
}


def validate(cfg: TrainConfig) -> TrainConfig:
    """Reject impossible settings, naming the field: every number by the shared rule
    (`checks.number`: finite, integer where meant, in range), every word from its list."""
    for name, rule in FIELD_RULES.items():
        number(getattr(cfg, name), f"setting '{name}'", **rule)
    if not isinstance(cfg.game, str) or not cfg.game.strip():
        raise UserError(f"setting 'game' must name an OpenSpiel game, got {cfg.game!r}")
    if cfg.family not in ("mlp", "resnet"):
        raise UserError(f"setting 'family' must be 'mlp' or 'resnet', got {cfg.family!r}")
    if cfg.batch_size > cfg.buffer_size:
        raise UserError(f"setting 'batch_size' ({cfg.batch_size}) exceeds 'buffer_size' ({cfg.buffer_size})")
    if cfg.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d{1,3}", cfg.device):
        raise UserError(f"setting 'device' must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    if cfg.engine not in ("auto", "spiel", "tensor"):
        raise UserError(f"setting 'engine' must be auto, spiel or tensor, got {cfg.engine!r}")
    if cfg.compile not in ("auto", "on", "off"):
        raise UserError(f"setting 'compile' must be auto, on or off, got {cfg.compile!r}")
    return cfg


def games_dir() -> Path:
    """Where the per-game settings files live: $AZSCALE_GAMES, the installed copy, or the repo."""
    env = os.environ.get("AZSCALE_GAMES")
    if env:
        return Path(env)
    installed = Path(__file__).parent / "_games"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "games"


def base_name(game: str) -> str:
    """`connect_four(rows=4,columns=5)` -> `connect_four`."""
    return game.split("(", 1)[0].strip()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:          # TOML is UTF-8; tomllib raises this before it parses
        raise UserError(f"{path}: not valid TOML (byte {exc.start} is not UTF-8 text; save the file as UTF-8)") \
            from None


def preset_values(game: str, preset: str) -> dict[str, Any]:
    """The settings a preset gives for a game: the game's file if it has one, else `_default`."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset '{preset}' (choose one of {', '.join(PRESETS)})")
    if not re.fullmatch(r"[A-Za-z0-9_]+", base_name(game)):
        raise UserError(f"unknown OpenSpiel game '{base_name(game)}'")
    path = games_dir() / f"{base_name(game)}.toml"
    if not path.exists():
        path = games_dir() / "_default.toml"
    data = _read_toml(path)
    values: dict[str, Any] = dict(data.get("paper", {}))
    if preset != "paper":
        values.update(data.get(preset, {}))
    return values


def resolve(game: str, preset: str = "cpu", overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset values for `game`, then overrides; every value coerced and checked. The game
    itself is checked first (a supported OpenSpiel game with valid parameters)."""
    from .engines.spiel import load_spiel_game
    spiel_game = load_spiel_game(game)
    values = preset_values(game, preset)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values["game"] = game
    kwargs = {k: _coerce(k, v) for k, v in values.items()}
    cfg = validate(TrainConfig(**kwargs))
    if cfg.replay_from_turn and not (cfg.replay_cap or cfg.replay_beta):
        raise UserError(f"setting 'replay_from_turn' ({cfg.replay_from_turn}) does nothing without replay_cap or "
                        f"replay_beta")
    if (cfg.replay_cap or cfg.replay_beta) and cfg.replay_from_turn >= spiel_game.max_game_length():
        raise UserError(f"setting 'replay_from_turn' ({cfg.replay_from_turn}) is past the last turn of {game} "
                        f"(games last at most {spiel_game.max_game_length()} moves): replay_cap and replay_beta "
                        f"would never apply")
    return cfg


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["simulations=50", "c_puct=1.5"]` -> dict; the values are coerced by `resolve`."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}' must look like name=value")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        _coerce(key, value)  # fail early, naming the field
        out[key] = value
    return out


def from_dict(data: dict[str, Any]) -> TrainConfig:
    if not isinstance(data, dict):
        raise UserError(f"stored settings must be a table of name = value, got {type(data).__name__}")
    known = {f.name for f in fields(TrainConfig)}
    return validate(TrainConfig(**{k: _coerce(k, v) for k, v in data.items() if k in known}))


# Analysis settings: the `[analysis]` table of games/<game>.toml over that of `_default.toml`.
# Kept out of TrainConfig on purpose: they change no training, so a run never has to be redone
# (or refuse to resume) because an analysis setting moved.
ANALYSIS_KEYS = {
    "late_turn": "a state is late when its mean turn number over its occurrences is >= this",
    "shoulder_moves": "the shoulder test counts only the first this-many moves of each game",
    "scale_by_length": "for the game with parameters (a variant), late_turn and shoulder_moves are "
                       "multiplied by the variant's mean random-game length over the base game's",
}
LENGTH_GAMES, LENGTH_SEED = 300, 0      # the random games that measure a game's mean length


def random_game_length(game: str) -> float:
    """Mean length of LENGTH_GAMES uniformly random games of `game` (seed LENGTH_SEED; pyspiel)."""
    return _random_game_length(game)


@functools.lru_cache(maxsize=32)
def _random_game_length(game: str) -> float:
    import numpy as np

    from .engines.spiel import load_spiel_game
    g = load_spiel_game(game)
    rng = np.random.default_rng(LENGTH_SEED)
    total = 0
    for _ in range(LENGTH_GAMES):
        s = g.new_initial_state()
        while not s.is_terminal():
            legal = s.legal_actions()
            s.apply_action(legal[int(rng.integers(len(legal)))])
            total += 1
    return total / LENGTH_GAMES


def late_turn_rule(game: str) -> dict[str, Any]:
    """How `analysis_settings(game)` got its late turn: the base game's values, or, for a variant
    of a game whose settings say `scale_by_length`, those values times the ratio of mean random
    game lengths (the paper's 40 belongs to the full ~100-move oware board)."""
    values = _analysis_values(game)
    base = base_name(game)
    if not values["scale_by_length"] or game.strip() == base or "(" not in game:
        return {"rule": "as set", "factor": 1.0}
    lv, lb = random_game_length(game), random_game_length(base)
    return {"rule": f"scaled by mean random-game length {lv:.1f} / {lb:.1f} ({base}); "
                    f"{LENGTH_GAMES} random games, seed {LENGTH_SEED}", "factor": lv / lb,
            "variant_length": lv, "base_length": lb}


def analysis_settings(game: str) -> dict[str, Any]:
    """{'late_turn': float, 'shoulder_moves': int} for `game`, each checked; scaled for a variant
    where the game's settings ask for it (`late_turn_rule`)."""
    values = _analysis_values(game)
    factor = late_turn_rule(game)["factor"]
    if factor == 1.0:
        return {"late_turn": values["late_turn"], "shoulder_moves": values["shoulder_moves"]}
    return {"late_turn": check_late_turn(max(1.0, round(values["late_turn"] * factor))),
            "shoulder_moves": max(1, int(round(values["shoulder_moves"] * factor)))}


def _analysis_values(game: str) -> dict[str, Any]:
    values: dict[str, Any] = {"scale_by_length": False}
    values.update(_read_toml(games_dir() / "_default.toml").get("analysis", {}))
    path = games_dir() / f"{base_name(game)}.toml"
    if path.exists():
        values.update(_read_toml(path).get("analysis", {}))
    unknown = sorted(set(values) - set(ANALYSIS_KEYS))
    if unknown:
        raise UserError(f"unknown analysis setting(s) {', '.join(unknown)} in games/*.toml "
                        f"(known: {', '.join(ANALYSIS_KEYS)})")
    missing = sorted(set(ANALYSIS_KEYS) - set(values))
    if missing:
        raise UserError(f"games/_default.toml lacks analysis setting(s) {', '.join(missing)}")
    if not isinstance(values["scale_by_length"], bool):
        raise UserError(f"scale_by_length must be true or false, got {values['scale_by_length']!r}")
    return {"late_turn": check_late_turn(values["late_turn"]),
            "shoulder_moves": check_positive_int("shoulder_moves", values["shoulder_moves"]),
            "scale_by_length": values["scale_by_length"]}


def check_late_turn(value: Any) -> float:
    import math
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(f"late_turn must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 1:
        raise UserError(f"late_turn must be a finite number >= 1, got {value!r}")
    return v


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise UserError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)
