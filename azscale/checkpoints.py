"""A run directory's own files: the one place that knows their layout and formats.

    runs/<name>/
      config.json              kind "run": settings, name, id, parameters (`read_run_config`)
      metrics.jsonl            one object per learner step (`read_metrics`, `append_metrics`)
      checkpoints/step-N.pt    weights at the log-spaced steps (`checkpoint_file`, `checkpoint_payload`,
                               `load_checkpoint`, `load_model`, `checkpoint_paths`, `latest_checkpoint`)
      checkpoints/resume.pt    everything needed to continue exactly (`resume_file`, `resume.ResumeState`,
                               `load_resume`, `resume_step`)
      games/part-N.parquet     the games table (`runs.write_games_part`, `runs.read_games`)

The one rule for how far a run is (`run_status`), which settings a resumed run may change
(`check_settings`) and what a resume removes (`truncate_after`) live here too. Analysis,
tournaments, the report, the API and `status` read runs through this module, never through the
trainer: it imports no training code. Every `.pt` file is loaded weights-only (`runs.load_torch_file`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from .errors import UserError

CONFIG_FILE = runs.DATA_KINDS["run"]             # config.json
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
RESUME_NAME = "resume.pt"

CHECKPOINT_FORMAT = "azscale.checkpoint/1"
# resume/2 stores numpy arrays as tagged tensors (runs.to_torch_safe), so it loads weights-only;
# resume/1 (numpy arrays pickled) is still read, through numpy's array constructors only.
RESUME_FORMAT = "azscale.resume/2"
LEGACY_RESUME_FORMAT = "azscale.resume/1"
CHECKPOINT_KEYS = ("config", "step", "model")
RESUME_KEYS = ("config", "step", "games", "states", "model", "optimizer", "buffer", "learner_rng",
               "torch_rng", "actors")
# Settings a resumed run may change; any other difference is refused. Both engines play the
# same games (tests/test_tensor_engine.py), so the engine may change; steps may not fall below
# the steps already trained.
RESUMABLE_CHANGES = {"steps", "device", "snapshot_seconds", "engine", "compile"}
RUN_CONFIG_KEYS = ("settings", "run", "params")


# -- the layout ----------------------------------------------------------------------------------

def is_run(path: Path) -> bool:
    """Whether `path` holds a run (its config.json)."""
    return (Path(path) / CONFIG_FILE).is_file()


def runs_under(folder: Path) -> list[Path]:
    """The run directories directly inside `folder` (a sweep's `runs/`), by name."""
    return sorted(p for p in Path(folder).glob("*") if is_run(p))


def checkpoint_file(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:06d}.pt"


def resume_file(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / RESUME_NAME


def step_checkpoints(run_dir: Path) -> list[Path]:
    """Every `checkpoints/step-N.pt` of a run, in step order."""
    return sorted((Path(run_dir) / CHECKPOINT_DIR).glob("step-*.pt"))


def checkpoint_paths(run_dir: Path, spec: str = "final") -> list[Path]:
    """A run's checkpoints: `final` (the last), `all`, or steps such as `100,200`."""
    run_dir = Path(run_dir)
    ckpts = step_checkpoints(run_dir)
    if not ckpts:
        raise UserError(f"{run_dir}: no checkpoints (is it an azscale run directory?)")
    if spec == "final":
        return ckpts[-1:]
    if spec == "all":
        return ckpts
    try:
        want = {int(x) for x in spec.split(",")}
    except ValueError:
        raise UserError("--checkpoints must be final, all or a list of steps like 100,200") from None
    chosen = [c for c in ckpts if runs.part_step(c) in want]
    if not chosen:
        raise UserError(f"{run_dir}: none of the checkpoint steps {sorted(want)} exist")
    return chosen


def spread_checkpoints(run_dir: Path, k: int) -> list[Path]:
    """`k` of a run's trained checkpoints (step >= 1), evenly spaced in log(step) and always the
    first and the final one, and (k >= 3) the one nearest two thirds of the final step (the
    saturation measure's reference); all of them when the run has no more than `k`. A run's checkpoints
    are log-spaced already, so the choice is made on the steps themselves: for each of `k`
    targets spaced evenly in log(step), the nearest checkpoint not yet taken."""
    import math
    if k < 2:
        raise UserError(f"choose at least 2 checkpoints per run, got {k}")
    trained = [c for c in step_checkpoints(run_dir) if runs.part_step(c) >= 1]
    if not trained:
        raise UserError(f"{run_dir}: no trained checkpoints (is it an azscale run directory?)")
    if len(trained) <= k:
        return trained
    logs = [math.log(runs.part_step(c)) for c in trained]
    lo, hi = logs[0], logs[-1]
    chosen: list[int] = []
    for j in range(k):
        target = lo + (hi - lo) * j / (k - 1)
        free = [i for i in range(len(trained)) if i not in chosen]
        chosen.append(min(free, key=lambda i: (abs(logs[i] - target), i)))
    if k >= 3:       # and the checkpoint nearest two thirds of training, which saturation compares with the final
        steps = [runs.part_step(c) for c in trained]
        two_thirds = min(range(len(trained)), key=lambda i: (abs(steps[i] - steps[-1] * 2 / 3), i))
        if two_thirds not in chosen:
            inner = [i for i in chosen if i not in (0, len(trained) - 1)]
            chosen.remove(min(inner, key=lambda i: (abs(logs[i] - logs[two_thirds]), i)))
            chosen.append(two_thirds)
    return [trained[i] for i in sorted(chosen)]


def latest_checkpoint(run_dir: Path) -> Path:
    return checkpoint_paths(run_dir, "final")[0]


# -- config.json and metrics.jsonl ---------------------------------------------------------------

def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.json, checked: settings (a table), its name and parameter count."""
    run_dir = Path(run_dir)
    d = runs.read_manifest(run_dir, "run", RUN_CONFIG_KEYS)
    if not isinstance(d["settings"], dict) or not isinstance(d["run"], str) or not d["run"] \
            or not isinstance(d["params"], int) or isinstance(d["params"], bool):
        raise UserError(f"{run_dir / CONFIG_FILE}: damaged run configuration")
    st = d["settings"]
    for key, lo in (("steps", 1), ("width", 1), ("seed", 0)):     # width and seed: where given
        v = st.get(key)
        if (key == "steps" or key in st) and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
            raise UserError(f"{run_dir / CONFIG_FILE}: damaged run configuration (settings.{key})")
    return d


def check_settings(run_dir: Path, cfg) -> Any:
    """The stored settings (a `TrainConfig`) if `run_dir` holds a run that `cfg` may continue,
    None if it holds none yet; a run with other settings (beyond `RESUMABLE_CHANGES`) is refused,
    naming them."""
    from .config import TrainConfig, from_dict
    run_dir = Path(run_dir)
    runs.claim_dir(run_dir, "run")
    if not (run_dir / CONFIG_FILE).exists():
        return None
    stored = read_run_config(run_dir)["settings"]
    # a setting added after the run was made counts as its default
    defaults = TrainConfig().to_dict()
    diffs = sorted(k for k, v in cfg.to_dict().items()
                   if stored.get(k, defaults[k]) != v and k not in RESUMABLE_CHANGES)
    if diffs:
        desc = ", ".join(f"{k} (run has {stored.get(k, defaults[k])!r}, asked {cfg.to_dict()[k]!r})" for k in diffs)
        raise UserError(f"{run_dir} holds a run with different settings: {desc}")
    return from_dict({**defaults, **stored})


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The valid lines of metrics.jsonl (a torn last line after a kill is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    out = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def recorded_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics lines of the steps the run has recorded (`run_status`): never those of an
    interrupted step that a resume replays."""
    return read_metrics(run_dir)[:run_status(run_dir).done]


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    path = Path(run_dir) / METRICS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    with runs.naming(path), os.fdopen(fd, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_after(run_dir: Path, step: int) -> None:
    """Remove every record of learner steps after `step` (they will be replayed)."""
    run_dir = Path(run_dir)
    for part in (run_dir / "games").glob("part-*.parquet"):
        if runs.part_step(part) > step:
            part.unlink()
    for tmp in list((run_dir / "games").glob(".*.tmp")) + list((run_dir / CHECKPOINT_DIR).glob(".*.tmp")):
        tmp.unlink()
    for ckpt in step_checkpoints(run_dir):
        if runs.part_step(ckpt) > step:
            ckpt.unlink()
    kept = [m for m in read_metrics(run_dir) if isinstance(m.get("step"), int) and m["step"] <= step]
    runs.atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept))


# -- which files are the run's own ---------------------------------------------------------------

# What azscale writes in a run directory (and its temporary files: `.NAME.XXXX.tmp`, see
# `runs.atomic_write_bytes`); `check_own_files` refuses anything else where it would be deleted.
RUN_ENTRIES = (CONFIG_FILE, METRICS_FILE, "games", CHECKPOINT_DIR, "tensorboard", "actors.log", ".lock")
_OWN_NAMES = {"games": re.compile(r"part-\d{6,}\.parquet"),
              CHECKPOINT_DIR: re.compile(r"step-\d{6,}\.pt|" + re.escape(RESUME_NAME))}
_TMP_NAME = re.compile(r"\..+\.tmp")


def check_own_files(run_dir: Path, restart: bool = False) -> None:
    """Refuse, before anything is written or deleted, a run whose records are not its own
    files: a record (config.json, metrics.jsonl, games/, checkpoints/, tensorboard/) that is a
    symbolic link, a games part or checkpoint that is a link or not a regular file. With
    `restart` (`--restart` deletes the records next) also anything in the run directory, its
    games/ and checkpoints/ that azscale does not write there, and any link under tensorboard/:
    a user's file is never deleted with the records."""
    run_dir = Path(run_dir)
    for name in RUN_ENTRIES[:-1]:
        p = run_dir / name
        if p.is_symlink():
            raise UserError(f"{p} is a symbolic link; a run's records must be its own files (azscale neither "
                            f"writes nor deletes through a link): replace it by the directory or file itself")
        if name in _OWN_NAMES and p.exists() and not p.is_dir():
            raise UserError(f"{p} is not a directory; a run's {name}/ must be the directory azscale made")
    hint = "--restart would delete it with the run's records: move it away first" if restart else "move it away"
    if restart:
        foreign = sorted(e.name for e in os.scandir(run_dir)
                         if e.name not in RUN_ENTRIES and not (_TMP_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False))) \
            if run_dir.is_dir() else []
        if foreign:
            raise UserError(f"{run_dir / foreign[0]}: not a file of the run ({len(foreign)} such); {hint}")
        tb = run_dir / "tensorboard"
        for dirpath, dirnames, filenames in os.walk(tb):
            for n in dirnames + filenames:
                if os.path.islink(os.path.join(dirpath, n)):
                    raise UserError(f"{os.path.join(dirpath, n)} is a symbolic link; {hint}")
    for sub, pattern in _OWN_NAMES.items():
        d = run_dir / sub
        if not d.is_dir():
            continue
        for e in sorted(os.scandir(d), key=lambda e: e.name):
            ours = pattern.fullmatch(e.name) or _TMP_NAME.fullmatch(e.name)
            if ours and (e.is_symlink() or not e.is_file(follow_symlinks=False)):
                raise UserError(f"{d / e.name} is {'a symbolic link' if e.is_symlink() else 'not a regular file'}, "
                                f"not a record this run wrote; {hint}")
            if restart and not ours:
                raise UserError(f"{d / e.name}: not a file of the run; {hint}")


def _part_summary(path: Path) -> tuple[int, Any, Any, set]:
    """(rows, smallest and largest game id, run names) of a games part, from its footer only."""
    import pyarrow.parquet as pq
    try:
        meta = pq.read_metadata(path)
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        gi, ri = names.index("game_id"), names.index("run")
        lo, hi, run_names = None, None, set()
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            if rg.num_rows == 0:
                continue
            si, sr = rg.column(gi).statistics, rg.column(ri).statistics
            if si is None or sr is None or not si.has_min_max or not sr.has_min_max:
                return meta.num_rows, None, None, {None}
            lo = si.min if lo is None else min(lo, si.min)
            hi = si.max if hi is None else max(hi, si.max)
            run_names |= {sr.min, sr.max}
        return meta.num_rows, lo, hi, run_names
    except Exception:
        raise UserError(f"{path}: not a readable games part; move it away or restore it from a copy") from None


def check_kept_records(run_dir: Path, run_name: str, step: int, games: int, states: int) -> None:
    """Refuse to resume a run at `step` (with `games` games and `states` states recorded, as its
    resume file says) unless the records it keeps agree: metrics.jsonl's running totals at
    `step` are those counts, and each games part 1..`step` holds exactly that step's games of
    this run, with the consecutive game ids its metrics line implies (read from each part's
    footer: no table is loaded). A part copied from another run, or a resume file whose counts
    were changed, would otherwise continue with duplicate or missing game ids."""
    run_dir = Path(run_dir)
    fix = "restore the run from a copy, or start over with --restart"
    for what, v in (("games", games), ("states", states)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise UserError(f"{resume_file(run_dir)}: damaged resume file ({what} = {v!r}); {fix}")
    if step == 0:
        if games or states:
            raise UserError(f"{resume_file(run_dir)}: damaged resume file ({games} games at step 0); {fix}")
        return
    by_step = {m["step"]: m for m in read_metrics(run_dir) if isinstance(m.get("step"), int)}
    last = by_step.get(step, {})
    for key, v in (("games_total", games), ("states_total", states)):
        if key in last and last[key] != v:
            raise UserError(f"{resume_file(run_dir)}: damaged resume file: it counts {v} {key.split('_')[0]} "
                            f"at step {step}, metrics.jsonl {last[key]}; {fix}")
    for j in range(1, step + 1):
        m = by_step.get(j, {})
        if not isinstance(m.get("games"), int) or not isinstance(m.get("games_total"), int):
            continue                                # (older metrics lines without the counts)
        part = run_dir / "games" / f"part-{j:06d}.parquet"
        n, lo, hi, names = _part_summary(part)
        first = m["games_total"] - m["games"]
        want = (m["games"], first, first + m["games"] - 1, {run_name}) if m["games"] else (0, None, None, set())
        if (n, lo, hi, names) != want:
            raise UserError(f"{part}: does not hold step {j}'s {m['games']} games of run '{run_name}' "
                            f"(ids {first}..{first + m['games'] - 1}, as metrics.jsonl records); a part "
                            f"from another run is never continued ({fix})")


# -- checkpoint and resume files -----------------------------------------------------------------

def _weights(model) -> dict[str, Any]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def checkpoint_payload(model, cfg, step: int, games: int, states: int, run: str,
                       run_id: str | None = None) -> dict[str, Any]:
    from .nets import FRAME_SIDE_TO_MOVE, param_count
    return {"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "step": step, "games": games,
            "states": states, "run": run, "run_id": run_id, "params": param_count(model),
            "value_frame": FRAME_SIDE_TO_MOVE, "model": _weights(model)}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint or resume file without executing anything from it (weights-only), or
    fail with one line naming the file."""
    path = Path(path)
    data = runs.load_torch_file(path, "checkpoint")
    if not isinstance(data, dict) or data.get("format") not in (CHECKPOINT_FORMAT, RESUME_FORMAT,
                                                                 LEGACY_RESUME_FORMAT):
        raise UserError(f"{path}: not an azscale checkpoint")
    keys = CHECKPOINT_KEYS + (("params",) if data["format"] == CHECKPOINT_FORMAT else ())
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserError(f"{path}: damaged checkpoint ({', '.join(missing)} missing)")
    if not isinstance(data["config"], dict) or not isinstance(data["model"], dict) \
            or not isinstance(data["step"], int):
        raise UserError(f"{path}: damaged checkpoint")
    _check_owner(path, data)
    return data


def _check_owner(path: Path, data: dict[str, Any]) -> None:
    """A checkpoint inside a run (`<run>/checkpoints/`) must be that run's: the same name, run id
    (where the checkpoint records one), parameter count and settings (less those a resume may
    change) as its config.json. One copied in from another run is refused, naming both, rather
    than evaluated or rated as this run's."""
    run_dir = path.parent.parent
    if path.parent.name != CHECKPOINT_DIR or not is_run(run_dir):
        return
    cfg = read_run_config(run_dir)
    where = f"{path}: a checkpoint of another run"
    if "run" in data and data["run"] != cfg["run"]:
        raise UserError(f"{where} ({data['run']!r}, not {cfg['run']!r} as {run_dir / CONFIG_FILE} says); "
                        "move it back to its own run")
    if data.get("run_id") is not None and cfg.get("run_id") is not None and data["run_id"] != cfg["run_id"]:
        raise UserError(f"{where} (run id {data['run_id']}, not {cfg['run_id']}); move it back to its own run")
    if "params" in data and data["params"] != cfg["params"]:
        raise UserError(f"{where} ({data['params']!r} parameters, not {cfg['params']:,} as {run_dir / CONFIG_FILE} "
                        "says); move it back to its own run")
    mine, theirs = cfg["settings"], data["config"]
    diffs = sorted(k for k in mine.keys() & theirs.keys() if k not in RESUMABLE_CHANGES and mine[k] != theirs[k])
    if diffs:
        k = diffs[0]
        raise UserError(f"{where} ({k} {theirs[k]!r}, not {mine[k]!r} as {run_dir / CONFIG_FILE} says); "
                        "move it back to its own run")


def load_resume(path: Path) -> dict[str, Any]:
    """A resume file, its numpy parts restored (`runs.from_torch_safe`); checked for every key."""
    path = Path(path)
    data = runs.load_torch_file(path, "resume file")
    if not isinstance(data, dict) or data.get("format") not in (RESUME_FORMAT, LEGACY_RESUME_FORMAT):
        raise UserError(f"{path}: not an azscale resume file")
    missing = [k for k in RESUME_KEYS if k not in data]
    if missing:
        raise UserError(f"{path}: damaged resume file ({', '.join(missing)} missing); "
                        f"start over with --restart or restore the file")
    if not isinstance(data["step"], int) or data["step"] < 0:
        raise UserError(f"{path}: damaged resume file (step)")
    for k in ("buffer", "learner_rng", "actors", "queue"):
        if k in data:
            data[k] = runs.from_torch_safe(data[k])
    return data


def load_model(path: Path, device="cpu"):
    """A network from a checkpoint, in eval mode, and the checkpoint's metadata. Its shape comes
    from the checkpoint's settings and the game's observation shape and action count
    (`engines.shapes`: no engine is built)."""
    from .config import from_dict
    from .engines import shapes
    from .nets import build
    data = load_checkpoint(path)
    try:
        cfg = from_dict(data["config"])
        obs_shape, num_actions = shapes(cfg.game)
    except UserError as exc:             # settings that no run has: name the file they came from
        raise UserError(f"{path}: damaged checkpoint ({exc})") from None
    model = build(cfg.family, obs_shape, num_actions, cfg.width, cfg.depth)
    try:
        model.load_state_dict(data["model"])
    except (RuntimeError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: the weights do not fit the network its settings describe "
                        f"({runs._one_line(exc)[:100]})") from None
    model.to(device).eval()
    return model, data


def resume_step(run_dir: Path) -> int | None:
    """The last learner step `checkpoints/resume.pt` covers (None without one); reads only its
    small part (the tensors are memory-mapped, not read)."""
    import torch
    path = resume_file(run_dir)
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        data = runs.load_torch_file(path, "resume file")  # an older file, or a clear one-line refusal
    step = data.get("step") if isinstance(data, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise UserError(f"{path}: damaged resume file (no step)")
    return step


# -- the one rule for how far a run is -----------------------------------------------------------

@dataclass
class RunStatus:
    steps: int                  # the steps the run is configured for (config.json)
    done: int                   # learner steps whose records (metrics line, games part) are complete
    resume: int | None          # the step resume.pt covers, or None without one
    recorded: bool              # anything recorded at all (a games part or a metrics line)
    finished: bool


def run_status(run_dir: Path, resume: int | None | bool = True) -> RunStatus:
    """The one rule for how far a run is: every step up to `done` has its metrics line and its
    games part (and, if `done` reaches the run's steps, the final checkpoint exists). With a
    resume file, `done` is the step it covers and the records must reach it; without one, the
    consecutive complete records count. A record missing below that point is never read as zero:
    it is refused with one line naming it. Records beyond `done` belong to an interrupted step
    and are replayed on resume.

    `resume`: True to read resume.pt, or the step already read from it (None: there is none).
    """
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    steps = cfg["settings"]["steps"]
    r = resume_step(run_dir) if resume is True else (None if resume is False else resume)
    m_steps = [m.get("step") for m in read_metrics(run_dir)]
    k = 0
    for x in m_steps:
        if x != k + 1:
            break
        k += 1
    parts = {runs.part_step(p) for p in (run_dir / "games").glob("part-*.parquet")} \
        if (run_dir / "games").is_dir() else set()
    hint = "restore it from a copy, or start the run over with azscale train ... --restart"
    if r is not None:
        if k < r:
            raise UserError(f"{run_dir}: metrics.jsonl records {k} consecutive steps but resume.pt covers {r}; "
                            f"a record is missing ({hint})")
        done = r
    else:
        done = k
    missing = [j for j in range(1, done + 1) if j not in parts]
    if missing:
        raise UserError(f"{run_dir}: games/part-{missing[0]:06d}.parquet is missing although step {missing[0]} "
                        f"is recorded ({hint})")
    if r is None and parts and max(parts) > k + 1:
        raise UserError(f"{run_dir}: games/ holds parts up to step {max(parts)} but metrics.jsonl records "
                        f"only {k} steps; a record is missing ({hint})")
    finished = done >= steps
    if finished and not checkpoint_file(run_dir, steps).is_file():
        raise UserError(f"{run_dir}: checkpoints/step-{steps:06d}.pt, the final checkpoint, is missing ({hint})")
    return RunStatus(steps, done, r, bool(parts) or bool(m_steps), finished)
