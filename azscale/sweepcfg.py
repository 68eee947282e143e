"""A sweep's settings: defaults < the sweep's own `sweep.json` < a sweep file (`sweep.toml`) <
command-line flags. Settings are compared as values, never as typed text (`steps=03` is
`steps=3`).

What a rerun may change:
- grow: `widths`, `families` (a superset of the sweep's) and `seeds` (at least as many): only
  the new runs train, and the analysis steps that read runs are redone;
- reanalyse: `bootstrap`, `solver`, `late_turn`, `shoulder_moves`, `temperature_study`,
  `checkpoint_tournament`: the steps that depend on them are redone (a temperature study plays
  only its new temperatures; another checkpoint count plays its own round-robins beside the
  recorded ones), the runs are kept;
- freely: the executor, `--parallel`, `--max-minutes-per-run`, `--tensorboard`, and the training
  settings that change no game (`device`, `engine`, `compile`, `snapshot_seconds`);
- nothing else: the game, any other training setting (after the preset and overrides are
  resolved), and the settings of recorded data (`random_games`, `games_per_pair`,
  `match_simulations`, `match_temperature`) once those games are on disk (until then they may
  change, and the log says so) are refused, naming the setting.

A `sweep.json` written by an earlier azscale lacks `families`, `late_turn`, `shoulder_moves`,
`temperature_study`, `checkpoint_tournament` and `executor`: a missing key is its default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import number, optional_number
from .config import PRESETS, TrainConfig, base_name, parse_overrides, resolve
from .errors import UserError

FAMILIES = ("mlp", "resnet")
EXECUTORS = ("local", "ray")
# training settings that a sweep may change between reruns: they change no recorded game
FREE_TRAINING = {"device", "engine", "compile", "snapshot_seconds"}
# settings of recorded data (random games, match games): fixed once the sweep exists
FIXED_DATA = ("random_games", "games_per_pair", "match_simulations", "match_temperature")


@dataclass
class SweepConfig:
    game: str
    widths: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64])
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
    families: list[str] | None = None      # None: the one family of the preset and overrides
    late_turn: float | None = None         # None: the game's [analysis] table
    shoulder_moves: int | None = None
    # the temperature study (azscale temperature) over the final checkpoints, at these
    # temperatures; empty: not run (a sweep.json without this field means empty)
    temperature_study: list[float] = field(default_factory=list)
    # the paper's second kind of round-robin (PAPER.md section 6): within each run, this many of
    # its checkpoints (log-spaced, the final one included) play each other; their games join the
    # final checkpoints' in one Elo fit. 0: not played (a sweep.json without it means 0)
    checkpoint_tournament: int = 0

    def run_name(self, width: int, seed: int, family: str | None = None) -> str:
        """`<game>-w<W>-s<S>`; a family named in `families` other than mlp joins the name."""
        fam = "" if family in (None, "mlp") else f"{family}-"
        return f"{base_name(self.game)}-{fam}w{width}-s{seed}"

    def sizes(self) -> list[tuple[str | None, int, int]]:
        """(family or None, width, seed) of every run, in the sweep's order."""
        fams = self.families or [None]
        return [(f, w, s) for f in fams for w in self.widths for s in range(self.seeds)]

    def train_config(self, width: int, seed: int, family: str | None = None) -> TrainConfig:
        over = {**self.overrides, "width": width, "seed": seed}
        if family is not None:
            over["family"] = family
        return resolve(self.game, self.preset, over)


@dataclass
class Executor:
    """How a sweep runs; never compared between reruns (a sweep may move to a cluster)."""
    kind: str = "local"
    parallel: int = 1                   # local: training runs at once
    address: str | None = None          # ray: cluster address (None: start a local one)
    gpus_per_run: float = 0.0           # ray: GPUs requested by each training task
    storage: str | None = None          # ray: shared root that holds the sweep (default: its parent)
    tensorboard: bool = False


SETTING_KEYS = {f.name for f in dataclasses.fields(SweepConfig)}
EXECUTOR_KEYS = {f.name for f in dataclasses.fields(Executor)}
# sweep-file layout: [analysis] and [executor] tables, the rest at the top level
FILE_TOP = {"game", "preset", "widths", "families", "seeds", "out", "max_minutes_per_run", "overrides",
            "analysis", "executor"}
FILE_ANALYSIS = {"random_games", "games_per_pair", "match_simulations", "match_temperature", "bootstrap",
                 "solver", "late_turn", "shoulder_moves", "temperature_study", "checkpoint_tournament"}


def default(name: str) -> str:
    """A sweep setting's or executor option's default as a flag's help shows it (`4,8,16`, `on`)."""
    f = next(f for cls in (SweepConfig, Executor) for f in dataclasses.fields(cls) if f.name == name)
    v = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, list):
        return ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def check(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Every sweep setting and executor option in `values` checked by the shared number rule
    (`checks.number`); names are those of the flags. Returns the values normalised."""
    out = dict(values)

    def n(key, flag, **rule):
        if key in out:
            out[key] = optional_number(out[key], f"{where}{flag}", **rule)

    if "game" in out and (not isinstance(out["game"], str) or not out["game"].strip()):
        raise UserError(f"{where}game must name an OpenSpiel game, got {out['game']!r}")
    if "widths" in out:
        ws = out["widths"]
        if isinstance(ws, (str, int)) or not isinstance(ws, (list, tuple)) or not ws:
            raise UserError(f"{where}widths must be a non-empty list of integers, got {ws!r}")
        ws = [number(w, f"{where}widths", lo=1, hi=16384, integer=True) for w in ws]
        if len(set(ws)) != len(ws):
            raise UserError(f"{where}widths names a width twice ({', '.join(map(str, ws))})")
        out["widths"] = ws
    if out.get("families") is not None:
        fs = out["families"]
        if isinstance(fs, str) or not isinstance(fs, (list, tuple)) or not fs \
                or any(f not in FAMILIES for f in fs) or len(set(fs)) != len(fs):
            raise UserError(f"{where}families must be a list of distinct families ({', '.join(FAMILIES)}), got {fs!r}")
        out["families"] = list(fs)
    n("seeds", "seeds", lo=1, hi=1000, integer=True)
    n("random_games", "random-games", lo=1, hi=10**10, integer=True)
    n("games_per_pair", "games-per-pair", lo=2, hi=10_000_000, integer=True)
    if out.get("games_per_pair") is not None and out["games_per_pair"] % 2:
        raise UserError(f"{where}games-per-pair must be an even number >= 2 (seats alternate), "
                        f"got {out['games_per_pair']}")
    n("match_simulations", "match-sims", lo=1, hi=1_000_000, integer=True)
    n("match_temperature", "match-temperature", lo=0, hi=1_000_000)
    n("bootstrap", "bootstrap", lo=0, hi=100_000, integer=True)
    n("solver_states", "solver-states", lo=1, hi=10**12, integer=True)
    n("max_minutes_per_run", "max-minutes-per-run", lo=0, lo_open=True, hi=1e8)
    n("late_turn", "late-turn", lo=1, hi=1_000_000)
    n("shoulder_moves", "shoulder-moves", lo=1, hi=1_000_000, integer=True)
    n("checkpoint_tournament", "checkpoint-tournament", lo=0, hi=10_000, integer=True)
    if out.get("checkpoint_tournament") == 1:
        raise UserError(f"{where}checkpoint-tournament must be 0 (not played) or at least 2 checkpoints per run, got 1")
    if out.get("temperature_study") is not None:
        from .analysis.temperature import parse_temperatures
        ts = out["temperature_study"]
        if not isinstance(ts, (str, list, tuple)):
            raise UserError(f"{where}temperature-study must be a list of temperatures, got {ts!r}")
        out["temperature_study"] = parse_temperatures(ts, f"{where}temperature-study") if len(ts) and (not isinstance(ts, str) or ts.strip()) else []
    n("parallel", "parallel", lo=1, hi=1024, integer=True)
    n("gpus_per_run", "gpus-per-run", lo=0, hi=1024)
    for key in ("solver", "tensorboard"):
        if key in out and not isinstance(out[key], bool):
            raise UserError(f"{where}{key} must be true or false, got {out[key]!r}")
    if "preset" in out and out["preset"] not in PRESETS:
        raise UserError(f"{where}preset must be {', '.join(PRESETS[:-1])} or {PRESETS[-1]}, got {out['preset']!r}")
    if "kind" in out and out["kind"] not in EXECUTORS:
        raise UserError(f"{where}executor must be local or ray, got {out['kind']!r}")
    for key in ("address", "storage"):
        if out.get(key) is not None and (not isinstance(out[key], str) or not out[key].strip()):
            raise UserError(f"{where}{key} must be a non-empty string, got {out[key]!r}")
    if out.get("address") is not None:
        ray_host_port(out["address"], f"{where}address")
    if "overrides" in out:
        ov = out["overrides"]
        if not isinstance(ov, dict):
            raise UserError(f"{where}overrides must be a table of name = value, got {ov!r}")
        from .config import _coerce
        for k in ov:
            if k in ("game", "width", "seed"):
                raise UserError(f"{where}overrides may not set '{k}' (the sweep sets it)")
        out["overrides"] = {k: _coerce(k, v) for k, v in ov.items()}     # values, not typed text
    return out


def ray_host_port(address: str, name: str = "--address") -> tuple[str, int] | None:
    """The host and port of a Ray address the user names: HOST:PORT, [IPv6]:PORT or
    ray://HOST:PORT; None for `auto` and `local` (Ray finds or starts the cluster). Anything
    else is refused, naming the option (Ray itself raised a ValueError, or waited minutes)."""
    import re
    if address in ("auto", "local"):
        return None
    m = re.fullmatch(r"(?:ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address.strip())
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise UserError(f"{name} must be auto, local, HOST:PORT or ray://HOST:PORT (a port from 1 to 65535), "
                        f"got {address!r}")
    return m.group(1).strip("[]"), int(m.group(2))


def read_sweep_file(path: Path) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(settings, executor options, out) from a sweep file, each checked, keys as in sweep.json."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:          # TOML is UTF-8; tomllib raises this before it parses
        raise UserError(f"{path}: not valid TOML (byte {exc.start} is not UTF-8 text; save the file as UTF-8)") \
            from None
    where = f"{path}: "
    unknown = sorted(set(data) - FILE_TOP)
    if unknown:
        raise UserError(f"{where}unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(FILE_TOP))})")
    settings = {k: v for k, v in data.items() if k in SETTING_KEYS}
    for table, known in (("analysis", FILE_ANALYSIS), ("executor", EXECUTOR_KEYS)):
        t = data.get(table, {})
        if not isinstance(t, dict):
            raise UserError(f"{where}[{table}] must be a table")
        bad = sorted(set(t) - known)
        if bad:
            raise UserError(f"{where}unknown key(s) {', '.join(bad)} in [{table}] (known: {', '.join(sorted(known))})")
    settings.update(data.get("analysis", {}))
    if "overrides" in data and not isinstance(data["overrides"], dict):
        raise UserError(f"{where}[overrides] must be a table of name = value")
    executor = dict(data.get("executor", {}))
    out = data.get("out")
    if out is not None and (not isinstance(out, str) or not out.strip()):
        raise UserError(f"{where}out must be a directory name, got {out!r}")
    return check(settings, where), check(executor, where), out


def parse_widths(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise UserError(f"--widths must be comma-separated integers, got {text!r}") from None


def from_record(record: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings and executor options stored in a sweep.json (a missing key is its default)."""
    settings = {k: v for k, v in record.items() if k in SETTING_KEYS}
    ex = record.get("executor") or {}
    if not isinstance(ex, dict):
        raise UserError(f"{where}: damaged (executor)")
    try:
        return check(settings, f"{where}: "), check({k: v for k, v in ex.items() if k in EXECUTOR_KEYS}, f"{where}: ")
    except UserError as e:
        raise UserError(f"{where}: damaged sweep settings ({e})") from None


def build(settings: dict[str, Any], executor: dict[str, Any]) -> tuple[SweepConfig, Executor]:
    if "game" not in settings:
        raise UserError("name the game (azscale sweep GAME ...), a sweep file, or an existing sweep with --out")
    s = {k: v for k, v in settings.items() if v is not None or k in ("families", "late_turn", "shoulder_moves",
                                                                      "max_minutes_per_run")}
    return SweepConfig(**s), Executor(**executor)


def record(sc: SweepConfig, ex: Executor) -> dict[str, Any]:
    return {**dataclasses.asdict(sc), "executor": dataclasses.asdict(ex)}


def _training_values(sc: SweepConfig) -> dict[str, Any]:
    """The resolved training settings every run shares (no width, seed or family)."""
    cfg = sc.train_config(sc.widths[0], 0, (sc.families or [None])[0]).to_dict()
    return {k: v for k, v in cfg.items() if k not in ("width", "seed", "family") and k not in FREE_TRAINING}


def families_of(sc: SweepConfig) -> list[str]:
    """The families a sweep trains: its list, or the one family of its preset and overrides."""
    return list(sc.families) if sc.families else [sc.train_config(sc.widths[0], 0).family]


def _recorded(root: Path, key: str) -> bool:
    """Whether games made with setting `key` are on disk: the random games for `random_games`,
    any tournament's games for the match settings. Until then the setting may change."""
    where = Path(root) / ("random" if key == "random_games" else "matches")
    return where.is_dir() and any(where.rglob("*.parquet"))


def compare(have: SweepConfig, want: SweepConfig, root: Path) -> list[str]:
    """Refuse a change that would invalidate recorded runs or data, naming the setting; return
    a list of what grows (for the log)."""
    diffs = []

    def show(x):
        return "the preset's" if x is None else repr(x)
    if base_name(have.game) != base_name(want.game) or have.game.replace(" ", "") != want.game.replace(" ", ""):
        diffs.append(f"game: the sweep has {have.game!r}, asked {want.game!r}")
    else:
        a, b = _training_values(have), _training_values(want)
        diffs += [f"{k}: the sweep has {a[k]!r}, asked {b[k]!r}" for k in sorted(a) if a[k] != b.get(k)]
        fa, fb = families_of(have), families_of(want)
        if have.families is None and want.families is not None and fa[0] != "mlp":
            diffs.append(f"families: the sweep's {fa[0]} runs are named without their family; a sweep of "
                         f"several families must be a new sweep")
        lost = [f for f in fa if f not in fb]
        if lost:
            diffs.append(f"family: {', '.join(lost)} would be dropped (a sweep keeps its runs; list "
                         f"{', '.join(fa + [f for f in fb if f not in fa])})")
    for k in FIXED_DATA:
        if getattr(have, k) != getattr(want, k) and _recorded(root, k):
            diffs.append(f"{k}: the sweep has {getattr(have, k)!r}, asked {getattr(want, k)!r} (its games are recorded)")
    lost = [w for w in have.widths if w not in want.widths]
    if lost:
        keep = have.widths + [w for w in want.widths if w not in have.widths]
        diffs.append(f"widths: {', '.join(map(str, lost))} would be dropped (a sweep keeps its runs; list "
                     f"{','.join(map(str, keep))})")
    if want.seeds < have.seeds:
        diffs.append(f"seeds: the sweep has {have.seeds}, asked {want.seeds} (a sweep keeps its runs)")
    if diffs:
        raise UserError(f"{root} holds a sweep with other settings ({'; '.join(diffs)}); choose another --out")
    grows = []
    new_w = [w for w in want.widths if w not in have.widths]
    if new_w:
        grows.append(f"widths +{','.join(map(str, new_w))}")
    new_f = [f for f in families_of(want) if f not in families_of(have)]
    if new_f:
        grows.append(f"families +{','.join(new_f)}")
    if want.seeds > have.seeds:
        grows.append(f"seeds {have.seeds} -> {want.seeds}")
    for k in ("bootstrap", "solver", "late_turn", "shoulder_moves", "temperature_study", "checkpoint_tournament",
              *FIXED_DATA):
        if getattr(have, k) != getattr(want, k):
            grows.append(f"{k} {show(getattr(have, k))} -> {show(getattr(want, k))}")
    return grows


def merge(stored: dict[str, Any] | None, file: dict[str, Any] | None, flags: dict[str, Any]) -> dict[str, Any]:
    """Layers of settings, later over earlier; `overrides` merge by key (each value coerced by
    `resolve` later)."""
    out: dict[str, Any] = {}
    for layer in (stored or {}, file or {}, flags):
        for k, v in layer.items():
            if k == "overrides":
                out["overrides"] = {**out.get("overrides", {}), **v}
            else:
                out[k] = v
    return out


def overrides_from_flags(sets: list[str] | None) -> dict[str, Any]:
    ov = parse_overrides(sets or [])
    return check({"overrides": ov}, "")["overrides"] if ov else {}
