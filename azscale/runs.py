"""Run directories and their files. Every write is atomic (temp file + fsync + rename).

    runs/<name>/
      config.json              resolved settings, library versions, git commit
      metrics.jsonl            one object per learner step
      checkpoints/step-N.pt    model weights at the log-spaced steps (for analysis)
      checkpoints/resume.pt    everything needed to continue exactly (written atomically)
      games/part-N.parquet     the games finished during learner step N
      .lock                    held (flock) by the process writing the run

Resume rule: `resume.pt` names the last learner step it covers. On restart, game parts,
metrics lines and checkpoints from later steps are removed and those steps are replayed; the
search is deterministic for a seed, so the replayed games are the same games. Nothing is lost
and nothing is recorded twice.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UserError

GAMES_TABLE = "games"
GAMES_VERSION = "1"

GAMES_SCHEMA = pa.schema([
    ("game_id", pa.int64()),
    ("run", pa.string()),
    ("kind", pa.string()),               # selfplay | match | random
    ("game", pa.string()),               # OpenSpiel game string
    ("net_step", pa.int32()),            # learner step of the network at the game's last move
    ("net_step_first", pa.int32()),      # ... and at its first move
    ("seat0", pa.string()),              # who played player 0 / player 1
    ("seat1", pa.string()),
    ("temperature", pa.float32()),
    ("temperature_drop", pa.int32()),    # moves played at `temperature`, then greedy
    ("simulations", pa.int32()),
    ("actions", pa.list_(pa.int32())),
    ("return0", pa.float32()),
    ("return1", pa.float32()),
    ("length", pa.int32()),
])


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)          # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def json_safe(obj: Any) -> Any:
    """The object with NaN and infinities as None, so the file is strict JSON (jq, browsers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object written by azscale; a damaged or foreign file is one clear error."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise UserError(f"{path}: not a readable {what}") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: not a {what}")
    return d


def is_missing(x: Any) -> bool:
    """A number absent from a result (None, as JSON writes it, NaN or infinite)."""
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def fmt_number(x: Any, nd: int = 3) -> str:
    return "n/a" if is_missing(x) else f"{x:.{nd}f}"


def atomic_write_json(path: Path, obj: Any) -> None:
    """Strict JSON: a missing number (NaN, e.g. a fit with too few points) is written as null."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    import io

    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_table(path: Path, table: pa.Table) -> None:
    import io
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write_bytes(path, buf.getvalue())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunLock:
    """An exclusive flock on `<dir>/.lock`; released by the OS even if the process is killed."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fh = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "unknown"
            self.fh.close()
            raise UserError(f"run directory {self.path.parent} is in use by another azscale "
                            f"process (pid {holder}); wait for it or choose another --run-dir") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()


def environment() -> dict[str, str]:
    """Library versions and the git commit, stored with every run."""
    import numpy
    import torch

    import azscale
    versions = {"azscale": azscale.__version__, "python": platform.python_version(),
                "torch": torch.__version__, "numpy": numpy.__version__, "pyarrow": pa.__version__}
    try:
        from importlib.metadata import version
        versions["open_spiel"] = version("open_spiel")
    except Exception:
        versions["open_spiel"] = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        commit = ""
    versions["git_commit"] = commit or "unknown"
    versions["machine"] = f"{platform.machine()} {os.cpu_count()} cpus"
    return versions


def games_table(rows: list[dict[str, Any]], game: str) -> pa.Table:
    cols = {f.name: [r[f.name] for r in rows] for f in GAMES_SCHEMA}
    table = pa.table(cols, schema=GAMES_SCHEMA)
    return table.replace_schema_metadata({"azscale.table": GAMES_TABLE,
                                          "azscale.version": GAMES_VERSION, "game": game})


def write_games_part(run_dir: Path, step: int, rows: list[dict[str, Any]], game: str) -> Path:
    path = Path(run_dir) / "games" / f"part-{step:06d}.parquet"
    atomic_write_table(path, games_table(rows, game))
    return path


def part_step(path: Path) -> int:
    return int(path.stem.split("-")[1])


def read_games(paths: Path | Iterable[Path]) -> pa.Table:
    """Read the games table of one run directory, a games folder, or Parquet files.

    Refuses, with one line, anything that is not an azscale games table.
    """
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if p.is_dir():
            files = sorted((p / "games").glob("part-*.parquet")) if (p / "games").is_dir() \
                else sorted(p.glob("*.parquet"))
            if not files:
                raise UserError(f"{p}: no games table found (expected games/part-*.parquet)")
        elif p.exists():
            files = [p]
        else:
            raise UserError(f"{p}: no such file or directory")
    else:
        files = list(paths)
    tables = []
    for f in files:
        try:
            t = pq.read_table(f)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise UserError(f"{f}: not a readable Parquet file ({str(exc).splitlines()[0][:120]})") from None
        meta = t.schema.metadata or {}
        if meta.get(b"azscale.table") != GAMES_TABLE.encode():
            raise UserError(f"{f}: not an azscale games table")
        if meta.get(b"azscale.version") != GAMES_VERSION.encode():
            raise UserError(f"{f}: games table version {meta.get(b'azscale.version', b'?').decode()} "
                            f"is not supported (this azscale reads version {GAMES_VERSION})")
        tables.append(t.select(GAMES_SCHEMA.names).cast(GAMES_SCHEMA))
    out = pa.concat_tables(tables) if tables else GAMES_SCHEMA.empty_table()
    return out.sort_by("game_id") if out.num_rows else out


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The valid lines of metrics.jsonl (a torn last line after a kill is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with open(Path(run_dir) / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_after(run_dir: Path, step: int) -> None:
    """Remove every record of learner steps after `step` (they will be replayed)."""
    run_dir = Path(run_dir)
    for part in (run_dir / "games").glob("part-*.parquet"):
        if part_step(part) > step:
            part.unlink()
    for tmp in list((run_dir / "games").glob(".*.tmp")) + list((run_dir / "checkpoints").glob(".*.tmp")):
        tmp.unlink()
    for ckpt in (run_dir / "checkpoints").glob("step-*.pt"):
        if part_step(ckpt) > step:
            ckpt.unlink()
    kept = [m for m in read_metrics(run_dir) if m.get("step", 0) <= step]
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept))
