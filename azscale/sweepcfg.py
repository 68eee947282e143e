"""A sweep's settings: defaults < the sweep's own `sweep.json` < a sweep file (`sweep.toml`) <
command-line flags (`configure`, the one override path). Settings are compared as values, never
as typed text (`steps=03` is `steps=3`).

Each setting is declared once, as a field of `SweepConfig` or `Executor` made by `sweep_setting`:
its doc, flag, range and sweep-file table. `azscale sweep`'s options (`cli.sweep_options`), their
help and defaults, the sweep file's keys and the checks of every layer are made from these; a
setting has the same name as a flag (`--games-per-pair`), a sweep-file key and in sweep.json,
but the executor's `kind` (`--executor`) and the training `overrides` (`--set`).

What a rerun may change (each setting's `rerun`, `RERUN`):
- grow: `widths`, `families` (a superset of the sweep's) and `seeds` (at least as many): only
  the new runs train, and the analysis steps that read runs are redone; and the training
  `steps` (`--set steps=N`, at least as many): every run trains on from its last step (each
  run's resume file keeps its buffer and optimizer; checkpoints follow the longer schedule),
  the match games between the old final checkpoints are kept aside (`matches/steps-<old>/`)
  and every analysis step that reads runs is redone;
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
from typing import Any, Callable, NamedTuple

from .checks import number, optional_number
from .config import PRESETS, TrainConfig, base_name, parse_overrides, resolve
from .errors import UserError

FAMILIES = ("mlp", "resnet")
EXECUTORS = ("local", "ray")
# training settings that a sweep may change between reruns: they change no recorded game
FREE_TRAINING = {"device", "engine", "compile", "snapshot_seconds"}
# training settings that a rerun may raise: the runs train on (see the module docstring)
GROW_TRAINING = {"steps"}
# what a rerun may do with a sweep setting (module docstring): change it freely; grow it; change
# it, redoing the steps that read it; change it until its games are recorded (`_recorded`); or
# nothing (the game and the training settings, compared as resolved training settings)
RERUN = ("free", "grow", "reanalyse", "data", "fixed")


def sweep_setting(default: Any = dataclasses.MISSING, doc: str = "", *, flag: str | None = "",
                  aliases: tuple[str, ...] = (), rule: dict[str, Any] | None = None, table: str | None = "top",
                  shown: str | None = "", parse: Callable[[Any], Any] | None = None, rerun: str = "free",
                  factory: Callable[[], Any] | None = None) -> Any:
    """A sweep setting (a SweepConfig or Executor field) with everything said about it once:
    - `doc`: what it means; the help of its flag (with its default shown) and of its sweep-file key;
    - `flag`: its command-line flag ("": `--` and its name with dashes; None: no flag), `aliases`
      older spellings still taken;
    - `rule`: the range of a number (`checks.number`), checked for a flag, a sweep file and sweep.json;
    - `table`: where a sweep file holds it (top, analysis, executor; None: not in the file);
    - `shown`: its default as help shows it ("": the value, `default`; None: no default shown);
    - `parse`: how the flag's text becomes a value (a list), before the value is checked;
    - `rerun`: what a rerun may do with it (`RERUN`).
    `azscale sweep`'s options are made from these (`cli.sweep_options`)."""
    if rerun not in RERUN:
        raise ValueError(f"rerun must be one of {', '.join(RERUN)}, got {rerun!r}")
    md = {"doc": doc, "flag": flag, "aliases": aliases, "rule": rule, "table": table, "shown": shown, "parse": parse,
          "rerun": rerun}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def _parse_families(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _parse_temperature_study(text: str) -> list[float]:
    from .analysis.temperature import parse_temperatures
    return parse_temperatures(text, "--temperature-study") if text.strip() else []


def _parse_widths(text: str) -> list[int]:
    return parse_widths(text)


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    return overrides_from_flags(sets)


_ANALYSIS = "the game's \\[analysis]"


@dataclass
class SweepConfig:
    game: str = sweep_setting(doc="OpenSpiel game, optionally with parameters", flag=None, rerun="fixed")
    widths: list[int] = sweep_setting(doc="Comma-separated network widths", factory=lambda: [4, 8, 16, 32, 64],
                                      parse=_parse_widths, rerun="grow")
    seeds: int = sweep_setting(2, "Seeds per width", rule=dict(lo=1, hi=1000, integer=True), rerun="grow")
    preset: str = sweep_setting("cpu", "paper, cpu or smoke", rerun="fixed")
    overrides: dict[str, Any] = sweep_setting(
        doc="Override any setting, e.g. --set c_puct=1.5 (repeatable; see games/<game>.toml)", flag="--set",
        factory=dict, shown=None, parse=_parse_sets, rerun="fixed")
    random_games: int = sweep_setting(20000, "Random-play games for the Zipf baseline", table="analysis",
                                      rule=dict(lo=1, hi=10**10, integer=True), rerun="data")
    games_per_pair: int = sweep_setting(100, "Tournament games per pair", table="analysis",
                                        rule=dict(lo=2, hi=10_000_000, integer=True), rerun="data")
    match_simulations: int = sweep_setting(100, "Tournament simulations per move", table="analysis",
                                           aliases=("--match-sims",), rule=dict(lo=1, hi=1_000_000, integer=True),
                                           rerun="data")
    match_temperature: float = sweep_setting(0.25, "Tournament move temperature", table="analysis",
                                             rule=dict(lo=0, hi=1_000_000), rerun="data")
    bootstrap: int = sweep_setting(100, "Bootstrap resamples (Elo, scaling; a quarter for Zipf)", table="analysis",
                                   rule=dict(lo=0, hi=100_000, integer=True), rerun="reanalyse")
    solver: bool = sweep_setting(True, "Ground-truth loss where an oracle exists", table="analysis", rerun="reanalyse")
    # None: the solver's own (owaresolve.DEFAULT_BUDGET); only the small-oware solver has one
    solver_budget: int | None = sweep_setting(None, "Small oware: the exact solver's node budget per state",
                                              table="analysis", rule=dict(lo=1, hi=10**10, integer=True),
                                              shown="300,000", rerun="reanalyse")
    # recorded in sweep.json, read by nothing yet: no flag and no sweep-file key
    solver_states: int = sweep_setting(20000, "States given to the solver", flag=None, table=None,
                                       rule=dict(lo=1, hi=10**12, integer=True))
    max_minutes_per_run: float | None = sweep_setting(None, "Stop each run after this long (resumable)",
                                                      rule=dict(lo=0, lo_open=True, hi=1e8), shown=None)
    # None: the one family of the preset and overrides
    families: list[str] | None = sweep_setting(None, "Comma-separated model families (mlp, resnet)",
                                               shown="the preset's", parse=_parse_families, rerun="grow")
    # None: the game's [analysis] table
    late_turn: float | None = sweep_setting(None, "Late states: mean turn >= this", table="analysis",
                                            rule=dict(lo=1, hi=1_000_000), shown=f"{_ANALYSIS} late_turn",
                                            rerun="reanalyse")
    shoulder_moves: int | None = sweep_setting(None, "The shoulder test's first moves", table="analysis",
                                               rule=dict(lo=1, hi=1_000_000, integer=True),
                                               shown=f"{_ANALYSIS} value", rerun="reanalyse")
    # the temperature study (azscale temperature) over the final checkpoints, at these
    # temperatures; empty: not run (a sweep.json without this field means empty)
    temperature_study: list[float] = sweep_setting(
        doc="Also run the temperature study on the final checkpoints at these temperatures: paper (the 17) or "
            "comma-separated, e.g. 0.1,0.25,1", table="analysis", factory=list, shown="not run",
        parse=_parse_temperature_study, rerun="reanalyse")
    # the paper's second kind of round-robin (PAPER.md section 6): within each run, this many of
    # its checkpoints (log-spaced, the final one included) play each other; their games join the
    # final checkpoints' in one Elo fit. 0: not played (a sweep.json without it means 0)
    checkpoint_tournament: int = sweep_setting(
        0, "Also play the paper's within-run round-robins: this many checkpoints of each run (log-spaced, the "
           "first trained and the final one included) play each other, in the same Elo fit as the final "
           "checkpoints; 0: not played", table="analysis", rule=dict(lo=0, hi=10_000, integer=True),
        rerun="reanalyse")

    def run_name(self, width: int, seed: int, family: str | None = None) -> str:
        """`<game>-w<W>-s<S>`; a family named in `families` other than mlp joins the name."""
        fam = "" if family in (None, "mlp") else f"{family}-"
        return f"{base_name(self.game)}-{fam}w{width}-s{seed}"

    def sizes(self) -> list[tuple[str | None, int, int]]:
        """(family or None, width, seed) of every run, in the sweep's order."""
        fams = self.families or [None]
        return [(f, w, s) for f in fams for w in self.widths for s in range(self.seeds)]

    @property
    def trained_steps(self) -> int:
        """The learner steps every run trains (resolved from the preset and overrides)."""
        return self.train_config(self.widths[0], 0).steps

    def train_config(self, width: int, seed: int, family: str | None = None) -> TrainConfig:
        over = {**self.overrides, "width": width, "seed": seed}
        if family is not None:
            over["family"] = family
        return resolve(self.game, self.preset, over)


@dataclass
class Executor:
    """How a sweep runs; never compared between reruns (a sweep may move to a cluster)."""
    kind: str = sweep_setting("local", "local (this machine) or ray (an existing or local Ray cluster)",
                              flag="--executor", table="executor")
    parallel: int = sweep_setting(1, "local: training runs at once", table="executor",
                                  rule=dict(lo=1, hi=1024, integer=True))
    address: str | None = sweep_setting(None, "ray: cluster address, e.g. auto or HOST:6379", table="executor",
                                        shown="start a local Ray")
    gpus_per_run: float = sweep_setting(0.0, "ray: GPUs requested by each training task", table="executor",
                                        rule=dict(lo=0, hi=1024))
    # a shared root that holds the sweep (default: its parent)
    storage: str | None = sweep_setting(None, "ray: a directory every node mounts (shared filesystem) that holds "
                                              "the sweep; a relative --out lies under it", table="executor",
                                        shown="the sweep's parent")
    tensorboard: bool = sweep_setting(False, "Runs also write TensorBoard scalars and hyperparameters",
                                      table="executor", shown=None)


SETTINGS = {f.name: f for cls in (SweepConfig, Executor) for f in dataclasses.fields(cls)}
SETTING_KEYS = {f.name for f in dataclasses.fields(SweepConfig)}
# settings of recorded data (random games, match games): fixed once the sweep has their games
FIXED_DATA = tuple(n for n, f in SETTINGS.items() if f.metadata["rerun"] == "data")
# settings whose change redoes the analysis steps that read them (`sweepsteps.step_inputs`)
REANALYSE = tuple(n for n, f in SETTINGS.items() if f.metadata["rerun"] == "reanalyse")
EXECUTOR_KEYS = {f.name for f in dataclasses.fields(Executor)}
# sweep-file layout: [analysis] and [executor] tables, the rest at the top level
FILE_TOP = {f.name for f in dataclasses.fields(SweepConfig) if f.metadata["table"] == "top"} | {
    "out", "analysis", "executor"}
FILE_ANALYSIS = {f.name for f in dataclasses.fields(SweepConfig) if f.metadata["table"] == "analysis"}


def flag(name: str) -> str | None:
    """A sweep setting's command-line flag (`--games-per-pair`), None where it has none."""
    f = SETTINGS[name].metadata["flag"]
    return "--" + name.replace("_", "-") if f == "" else f


def flags() -> list[str]:
    """The sweep settings that have a flag, in their order (sweep settings, then executor options)."""
    return [n for n in SETTINGS if flag(n) is not None]


# the types a flag takes (a setting's annotation as written, less `| None`)
FLAG_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def flag_type(name: str) -> type:
    """The type a setting's flag takes: its text for a setting its `parse` reads, else its own."""
    md = SETTINGS[name].metadata
    if md["parse"] is not None:
        return list if name == "overrides" else str
    kind = str(SETTINGS[name].type).replace(" | None", "")
    if kind not in FLAG_TYPES:
        raise TypeError(f"sweep flag {flag(name)}: setting '{name}' has type {kind!r}; a flag takes "
                        f"{', '.join(FLAG_TYPES)} (or give the setting a `parse`)")
    return FLAG_TYPES[kind]


def default(name: str) -> str:
    """A sweep setting's or executor option's default as a flag's help shows it (`4,8,16`, `on`)."""
    f = SETTINGS[name]
    v = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, list):
        return ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def help_text(name: str) -> str:
    """A setting's flag help: its doc and its default (rich markup: `\\[` shows a bracket)."""
    md = SETTINGS[name].metadata
    shown = default(name) if md["shown"] == "" else md["shown"]
    return md["doc"] if shown is None else f"{md['doc']} \\[default: {shown}]"


def from_flags(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, executor options) from the sweep flags given (None: not given), each parsed
    and checked, keys as in sweep.json: the top layer of `merge`."""
    given = {k: (SETTINGS[k].metadata["parse"] or (lambda v: v))(v) for k, v in values.items() if v is not None}
    ov = given.pop("overrides", None)
    settings = check({k: v for k, v in given.items() if k in SETTING_KEYS}, "--")
    if ov:
        settings["overrides"] = ov
    return settings, check({k: v for k, v in given.items() if k in EXECUTOR_KEYS}, "--")


def check(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Every sweep setting and executor option in `values` checked by the shared number rule
    (`checks.number`); names are those of the flags. Returns the values normalised."""
    out = dict(values)

    def n(key, shown_as, **rule):
        if key in out:
            out[key] = optional_number(out[key], f"{where}{shown_as}", **rule)

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
    for key, f in SETTINGS.items():            # every number by its setting's rule
        if f.metadata["rule"] is not None:
            n(key, key.replace("_", "-"), **f.metadata["rule"])
    if out.get("games_per_pair") is not None and out["games_per_pair"] % 2:
        raise UserError(f"{where}games-per-pair must be an even number >= 2 (seats alternate), "
                        f"got {out['games_per_pair']}")
    if out.get("checkpoint_tournament") == 1:
        raise UserError(f"{where}checkpoint-tournament must be 0 (not played) or at least 2 checkpoints per run, got 1")
    if out.get("temperature_study") is not None:
        from .analysis.temperature import parse_temperatures
        ts = out["temperature_study"]
        if not isinstance(ts, (str, list, tuple)):
            raise UserError(f"{where}temperature-study must be a list of temperatures, got {ts!r}")
        out["temperature_study"] = parse_temperatures(ts, f"{where}temperature-study") if len(ts) and (not isinstance(ts, str) or ts.strip()) else []
    for key in (n for n, f in SETTINGS.items() if f.type == "bool"):
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


def grown_steps(have: SweepConfig, want: SweepConfig) -> tuple[int, int | None]:
    """(the sweep's training steps, the larger steps asked) or (steps, None) when they did not grow."""
    a, b = have.trained_steps, want.trained_steps
    return a, (b if b > a else None)


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
        for k in sorted(a):
            if a[k] == b.get(k) or (k in GROW_TRAINING and isinstance(b.get(k), int) and b[k] > a[k]):
                continue
            why = f" ({k} may only grow: the runs keep what they trained)" if k in GROW_TRAINING else ""
            diffs.append(f"{k}: the sweep has {a[k]!r}, asked {b.get(k)!r}{why}")
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
    old, new = grown_steps(have, want)
    if new is not None:
        grows.append(f"steps {old} -> {new}")
    for k in (*REANALYSE, *FIXED_DATA):
        if getattr(have, k) != getattr(want, k):
            grows.append(f"{k} {show(getattr(have, k))} -> {show(getattr(want, k))}")
    return grows


class Source(NamedTuple):
    """What `azscale sweep`'s argument gives: a sweep file's settings, executor options and `out`,
    or a game; `named`: an argument was given at all."""
    settings: dict[str, Any]
    executor: dict[str, Any]
    out: str | None
    named: bool


def from_source(source: str | None) -> Source:
    """`azscale sweep`'s argument read: a sweep file (checked), or a game."""
    if source is not None and (source.endswith(".toml") or Path(source).is_file()):
        return Source(*read_sweep_file(Path(source)), named=True)
    return Source({"game": source} if source is not None else {}, {}, None, source is not None)


def configure(source: Source, flag_settings: dict[str, Any], flag_exec: dict[str, Any],
              out: Path | None) -> tuple[SweepConfig, Executor, Path]:
    """The one override path: defaults < the sweep's own sweep.json < the sweep file (`source`)
    < the flags (`from_flags`). Returns the settings, the executor and the sweep's directory
    (`out`, else the file's `out`; under the storage root where one is named)."""
    store = flag_exec.get("storage") or source.executor.get("storage")
    where = out if out is not None else (Path(source.out) if source.out is not None else None)
    if where is None:
        raise UserError("name the sweep directory: --out DIR (or `out` in the sweep file)")
    root = Path(store) / where if store is not None and not where.is_absolute() else where
    stored, stored_exec = {}, {}
    if (root / "sweep.json").exists() or (root / "sweep.json").is_symlink():
        from . import runs
        rec = runs.read_manifest(root, "sweep")
        stored, stored_exec = from_record(rec, str(root / "sweep.json"))
        stored_exec.pop("storage", None)       # a path of the last invocation; named anew each time
    elif not source.named:
        raise UserError(f"{root}: no sweep there yet; name a game or a sweep file to start one")
    sc, ex = build(merge(stored, source.settings, flag_settings), merge(stored_exec, source.executor, flag_exec))
    return sc, ex, root


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
