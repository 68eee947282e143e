"""Directories and their files. Every write is atomic (temp file + fsync + rename).

Every output directory says what it is: a marker file names its kind (`DATA_KINDS`,
`RESULT_KINDS`), and every writer refuses a directory of another kind (`claim_dir`); a directory
is held by one process at a time (`RunLock`). Files are loaded without executing code
(`load_torch_file`). The games table, written by every kind of games directory (runs,
tournaments, random games, imports), has one schema and one row type (`GAMES_SCHEMA`,
`GameRecord`). A run directory's own files (config.json, metrics.jsonl, checkpoints, the one
rule for "finished") are read and written by `checkpoints.py`; a tournament's pair results by
`read_results` and its neighbours below.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import contextlib
import os
import pickle
import platform
import stat
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UserError

if TYPE_CHECKING:                      # (pandas is imported where a table is built)
    import pandas as pd

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


@dataclass
class GameRecord:
    """One row of the games table (`GAMES_SCHEMA`): every writer of games (self-play, tournaments,
    random games, imported logs) builds its rows as these. What a writer does not know keeps its
    default, which reads as unknown: -1, an empty seat, a NaN temperature. `length` is always
    the number of actions."""
    run: str
    kind: str                          # selfplay | match | random
    game: str
    actions: list[int]
    return0: float
    return1: float
    game_id: int = -1                  # set by the table's writer (ids are unique within a table)
    net_step: int = -1                 # -1: no network step (a match, random play) or unknown
    net_step_first: int = -1
    seat0: str = ""
    seat1: str = ""
    temperature: float = math.nan
    temperature_drop: int = -1
    simulations: int = -1
    length: int = field(init=False)

    def __post_init__(self) -> None:
        self.length = len(self.actions)

    def row(self) -> dict[str, Any]:
        """The record as a dict of the schema's columns."""
        return {name: getattr(self, name) for name in GAMES_SCHEMA.names}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "GameRecord":
        """A record from a row dict (`row()`'s, or one kept in a resume file): every column must
        be there (a row that lacks one is damaged, and is refused naming it rather than written
        with the unknown defaults); `length` is recomputed from the actions, keys outside the
        schema are ignored. Writers that genuinely lack a field build the record directly."""
        names = [f.name for f in fields(cls) if f.init]
        missing = [n for n in names if n not in row]
        if missing:
            raise UserError(f"damaged game record: {', '.join(missing)} missing")
        return cls(**{n: row[n] for n in names})


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def refuse_file_in_the_way(d: Path, target: Path | None = None) -> None:
    """Refuse, in one line naming it, a file where the directory `d` or one of its parents must
    be (`target`: the path to be written there), before any work and instead of an OS error's
    'File exists' or 'Not a directory'. Creates nothing."""
    d = Path(d)
    for up in (d, *d.parents):
        if up.exists():
            if not up.is_dir():
                raise UserError(f"cannot write {target or d}: {up} is a file, not a directory")
            return


def ensure_dir(d: Path, target: Path | None = None) -> None:
    """`d` and its parents as directories (`refuse_file_in_the_way` first)."""
    refuse_file_in_the_way(d, target)
    Path(d).mkdir(parents=True, exist_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    ensure_dir(path.parent, path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)          # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None   # name the file, not the temporary
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def naming(path: Path):
    """Name `path` in an operating-system error raised inside (a write that meets a full disk or a
    file-size limit raises one with no file name): the user's one line says which file."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


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


# numpy arrays inside a weights-only file are stored as tensors under this tag (see `to_torch_safe`)
_ND_TAG = "__azscale_ndarray__"
_NS_TAG = "__azscale_npscalar__"


def to_torch_safe(obj: Any) -> Any:
    """A copy of `obj` that `torch.load(weights_only=True)` can read: numpy arrays and numpy
    scalars become tagged tensors, recursively through dicts, lists and tuples; tensors, ints,
    floats, strings, bools and None pass through. `from_torch_safe` is its inverse."""
    import torch
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("an object array cannot be stored in a weights-only file")
        arr = np.ascontiguousarray(obj, dtype=obj.dtype.newbyteorder("="))
        return {_ND_TAG: torch.from_numpy(arr)}
    if isinstance(obj, np.generic):
        return {_NS_TAG: torch.from_numpy(np.asarray(obj))}
    if isinstance(obj, dict):
        return {k: to_torch_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_torch_safe(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_torch_safe(v) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor, torch.Size)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a weights-only file")


def from_torch_safe(obj: Any) -> Any:
    """The inverse of `to_torch_safe`: tagged tensors become numpy arrays and scalars again
    (with their dtype); everything else, untagged tensors included, is returned as it is."""
    if isinstance(obj, dict):
        if len(obj) == 1 and _ND_TAG in obj:
            return obj[_ND_TAG].numpy()
        if len(obj) == 1 and _NS_TAG in obj:
            return obj[_NS_TAG].numpy()[()]
        return {k: from_torch_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_torch_safe(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_torch_safe(v) for v in obj)
    return obj


def _numpy_array_globals() -> list[Any]:
    """numpy's own array and scalar constructors: what a file written by an older azscale (numpy
    arrays pickled into resume.pt) refers to. Allowing them executes no code of the file's
    choosing; the weights-only unpickler still refuses every other global."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    dtypes = {type(np.dtype(c)) for c in "?bBhHiIlLqQefdFD"}      # numeric and bool dtypes only
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *sorted(dtypes, key=str)]


def load_torch_file(path: Path, what: str = "checkpoint") -> Any:
    """Load a `.pt` file without executing anything from it (`weights_only=True`), or fail with
    one line naming the file. Older resume files holding numpy arrays are read through numpy's
    array constructors only."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such {what}")

    def unreadable(exc: BaseException) -> UserError:
        text = _one_line(exc)
        if text.startswith(("Weights only load failed", "PytorchStreamReader")) or isinstance(exc, EOFError):
            text = "not a file torch.save wrote, or a damaged one"       # torch's advice on weights_only is not ours
        return UserError(f"{path}: unreadable {what} ({text[:120]})")

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        try:
            wanted = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:
            raise unreadable(exc) from None
        allowed = _numpy_array_globals()
        names = {f"{g.__module__}.{g.__qualname__}" for g in allowed}
        names |= {n.replace("numpy._core.", "numpy.core.") for n in names}
        refused = [w for w in wanted if w not in names]
        if refused or not wanted:
            shown = ", ".join(refused[:3]) or "objects outside tensors and plain data"
            raise UserError(f"{path}: not loaded: it refers to {shown}, and azscale loads no file that "
                            f"could run code (weights-only loading)") from None
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc2:
            raise unreadable(exc2) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise unreadable(exc) from None


def _one_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
    return lines[0] if lines else type(exc).__name__


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
    """An exclusive flock on `<dir>/.lock`; released by the OS even if the process is killed.

    The lock file is opened without following symbolic links (`O_NOFOLLOW`) and must be a
    regular file inside the directory, so a link planted as `.lock` never truncates another file."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        parent = self.path.parent
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{parent} is a file, not a directory; choose another directory")
        parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UserError(f"{self.path} is a symbolic link; azscale does not follow it "
                                f"(remove the link)") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UserError(f"{self.path} is not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"directory {parent} is in use by another azscale "
                            f"process (pid {holder}); wait for it or choose another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# -- what a directory is ---------------------------------------------------------------------

# Directories that hold recorded games or runs, each named by its marker file.
DATA_KINDS = {"run": "config.json", "tournament": "tournament.json", "random-games": "random.json",
              "sweep": "sweep.json", "imported-games": "import.json", "temperature-study": "temperature.json"}
# A temperature study's tournaments: STUDY/T-<temperature>/, each a tournament directory.
STUDY_TOURNAMENT_PREFIX = "T-"
STUDY_GAMES_GLOB = f"{STUDY_TOURNAMENT_PREFIX}*/games/part-*.parquet"
# Directories of analysis results, recognised by their main result file.
RESULT_KINDS = {"zipf": "fits.json", "loss": "loss.json", "elo": "elo.json", "scaling": "scaling.json",
                "report": "report.md", "labels": "labels.parquet", "toy-tree": "toy_tree.json",
                "oware-scan": "scan.json", "compare": "compare.json"}
KIND_NAMES = {"run": "an azscale run", "tournament": "an azscale tournament",
              "random-games": "an azscale random-games table", "sweep": "an azscale sweep",
              "imported-games": "an azscale imported games table", "zipf": "an azscale zipf analysis",
              "loss": "an azscale loss analysis", "elo": "an azscale Elo analysis",
              "scaling": "an azscale scaling analysis", "report": "an azscale report",
              "labels": "an azscale solver label cache", "temperature-study": "an azscale temperature study",
              "toy-tree": "an azscale toy-tree result", "oware-scan": "an azscale oware variant scan",
              "compare": "an azscale two-arm comparison"}


# What each analysis writes in its directory: file names, and figure stems (each as .png and
# .svg). A directory without the kind's result file may hold only these (a run killed before
# its result file); `sweep --reanalyse` deletes only these. The report also writes figures/.
_FIG = (".png", ".svg")
RESULT_FILES = {
    "zipf": ({"fits.json", "states.parquet", "summary.md", "late_share.csv"},
             {"rank_frequency", "turn_vs_rank", "late_share", "rank_frequency_early", "late_states"}),
    "loss": ({"loss.json", "per_state.parquet", "curves.csv", "curves_per_run.csv", "frontier.csv"},
             {"loss_vs_rank", "loss_early_late", "loss_early_late_vs_step", "accuracy_early_late_vs_step",
              "frontier_vs_step", "solver_effort"}),
    "elo": ({"elo.json", "elo.csv", "bootstrap.npz"}, {"elo_vs_params", "elo_vs_step", "win_rate_matrix"}),
    "scaling": ({"scaling.json"}, {"elo_fit"}),
    "report": ({"report.md", "report.html", "figures"}, set()),
    "toy-tree": ({"toy_tree.json", "staircase.csv"}, {"toy_tree"}),
    "oware-scan": ({"scan.json", "scan.md"}, set()),        # scan.json is written first, before any variant
    "compare": ({"compare.json", "compare.md", "figures", "matches"}, set()),   # compare.json last
}


def written_by(kind: str, path: Path) -> bool:
    """Whether `path` (a directory entry) is a file the analysis `kind` writes in its directory
    (`RESULT_FILES`), a temporary file of an interrupted write, or the lock: never a link."""
    path = Path(path)
    names, stems = RESULT_FILES[kind]
    if path.is_symlink():
        return False
    name = path.name
    if name == ".lock" or (name.startswith(".") and name.endswith(".tmp") and path.is_file()):
        return True
    if kind == "report" and name == "figures":
        return path.is_dir() and all(f.suffix in _FIG and f.is_file() and not f.is_symlink() for f in path.iterdir())
    if kind == "loss" and name == "labels":     # the default solver label cache, OUT/labels, solved before loss.json
        return path.is_dir() and all(not f.is_symlink() and f.is_file() and (f.name in ("labels.parquet", ".lock")
                                                                               or f.name.endswith(".tmp"))
                                     for f in path.iterdir())
    return path.is_file() and (name in names or (path.suffix in _FIG and path.stem in stems))


def foreign_entries(path: Path, kind: str) -> list[str]:
    """The names in directory `path` that the analysis `kind` does not write there."""
    return sorted(e.name for e in Path(path).iterdir() if not written_by(kind, e))


def dir_kinds(path: Path) -> list[str]:
    """The kinds whose marker file `path` holds (normally none or one)."""
    path = Path(path)
    markers = {**DATA_KINDS, **RESULT_KINDS}
    return [k for k, f in markers.items() if os.path.lexists(path / f)]


def claim_dir(path: Path, kind: str) -> None:
    """Refuse to write `kind` into `path` if it is a directory of another kind, or (for kinds
    that hold recorded games) a non-empty directory that is not one of ours."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise UserError(f"{path} exists and is not a directory; choose another directory")
    refuse_file_in_the_way(path.parent, path)
    if not path.exists():
        return
    have = dir_kinds(path)
    others = [k for k in have if k != kind]
    if others:
        o = others[0]
        marker = {**DATA_KINDS, **RESULT_KINDS}[o]
        raise UserError(f"{path} is {KIND_NAMES[o]} (it holds {marker}), not {KIND_NAMES[kind]}; "
                        f"choose another directory")
    if kind not in have:
        leftovers = sorted(p.name for p in path.iterdir() if p.name != ".lock") if kind in DATA_KINDS \
            else foreign_entries(path, kind) if kind in RESULT_FILES else []
        if leftovers:
            raise UserError(f"{path} is not empty and is not {KIND_NAMES[kind]} (found "
                            f"{', '.join(leftovers[:3])}); choose another directory")
    if kind in DATA_KINDS and kind in have:
        read_manifest(path, kind)          # a damaged marker is refused before anything is written


def starts_with(path: Path, title: str) -> bool:
    """The file begins with `title` (how `claim_file` knows a Markdown file azscale wrote)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(title.encode())) == title.encode()
    except OSError:
        return False


def json_of(path: Path) -> Any:
    """The file's JSON, or None where it is unreadable or not JSON (for `claim_file`'s checks)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def claim_markdown_and_json(out: Path, what: str, title: str, json_ok, example: str) -> Path:
    """An analysis written as OUT (Markdown beginning with `title`) and its .json beside it: the
    JSON's path, after refusing to overwrite anything that is not such a file azscale wrote
    (`claim_file`; `json_ok(data)` recognises the JSON). Both are checked before any work."""
    out = Path(out)
    if out.name in ("", ".", "..") or out.with_suffix(".json") == out:     # (with_suffix needs a name)
        raise UserError(f"--out {str(out)!r}: name the Markdown file (such as {example}); its .json is written beside it")
    js = out.with_suffix(".json")
    claim_file(out, f"{what} (Markdown)", lambda p: starts_with(p, title))
    claim_file(js, f"{what} (JSON)", lambda p: json_ok(json_of(p)))
    return js


def claim_file(path: Path, what: str, ours) -> None:
    """Refuse to write the file `path` (an `--out FILE`) unless it is new or a file that azscale
    wrote as `what` (`ours(path)` says so from its content): a user's file, or another of
    azscale's (a run's config.json), is never overwritten. Refused too: a symbolic link, a
    directory, and a new file inside a directory that holds recorded games (a run, a tournament,
    ...) or in such a directory's games/, checkpoints/ or pairs/."""
    path = Path(path)
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link; azscale does not write through it (choose another file)")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} exists and is not a file; choose another file")
    refuse_file_in_the_way(path.parent, path)
    parent = path.parent
    for d in (parent, parent.parent if parent.name in ("games", "checkpoints", "pairs") else None):
        kinds = [k for k in dir_kinds(d) if k in DATA_KINDS] if d is not None and d.is_dir() else []
        if kinds:
            raise UserError(f"{path} would lie inside {d}, {KIND_NAMES[kinds[0]]}; write {what} elsewhere")
    if path.exists():
        try:
            mine = bool(ours(path))
        except (OSError, ValueError):
            mine = False
        if not mine:
            raise UserError(f"{path} exists and is not {what} written by azscale; azscale overwrites only its "
                            f"own {what} (choose another file, or move this one away)")


def read_manifest(path: Path, kind: str, keys: Iterable[str] = ()) -> dict[str, Any]:
    """The marker file of a `kind` directory, checked to be one and to hold `keys`."""
    path = Path(path)
    f = path / DATA_KINDS[kind]
    if os.path.lexists(f) and not f.is_file():
        raise UserError(f"{f}: damaged {KIND_NAMES[kind]} (it is not a file)")
    if not f.is_file():
        raise UserError(f"{path}: not {KIND_NAMES[kind]} (no {DATA_KINDS[kind]})")
    d = read_json(f, f"{DATA_KINDS[kind]} of {KIND_NAMES[kind]}")
    if d.get("kind", kind) != kind:
        raise UserError(f"{f}: describes {KIND_NAMES.get(d.get('kind'), repr(d.get('kind')))}, not {KIND_NAMES[kind]}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise UserError(f"{f}: damaged ({', '.join(missing)} missing)")
    return d


def new_identity() -> str:
    return uuid.uuid4().hex


def inside(root: Path, path: Path) -> Path:
    """`path`, refused unless it lies inside `root` (names built from user input stay inside the
    directory the user named)."""
    r, p = Path(root).resolve(), Path(path).resolve()
    if p != r and r not in p.parents:
        raise UserError(f"{path} would lie outside {root}; refusing to write there")
    return Path(path)


def distinct_sources(paths: Iterable[Path], what: str = "source") -> list[Path]:
    """Refuse a source given twice (the same path, or a copy of the same run or table: the same
    identity in its marker file)."""
    seen: dict[Path, Path] = {}
    ids: dict[str, Path] = {}
    out = []
    for p in paths:
        p = Path(p)
        r = p.resolve()
        if r in seen:
            raise UserError(f"{what} {p} is given twice; each counts once")
        seen[r] = p
        ident = identity_of(p)
        if ident is not None:
            if ident in ids:
                raise UserError(f"{what}s {ids[ident]} and {p} are the same (a copy: identity {ident[:12]}); "
                                f"each counts once")
            ids[ident] = p
        out.append(p)
    return out


def read_sources_games(sources: Iterable[Path]) -> tuple[list[tuple[Path, pa.Table]], str]:
    """The games table of each source (a run, a tournament, random games, imported logs), in
    order, and the one game they all play. Refuses, with one line, a run whose games two sources
    hold (the same run twice, a copy, or two runs with one name) and sources of several games."""
    tables = [(Path(s), read_games(s)) for s in sources]
    owner: dict[str, Path] = {}
    for src, t in tables:
        for n in sorted(set(t["run"].to_pylist())):
            if n in owner:
                raise UserError(f"{owner[n]} and {src} both hold games of run '{n}' (the same run twice, a copy, "
                                f"or two runs with one name); each run counts once")
            owner[n] = src
    names = sorted({g for _, t in tables for g in set(t["game"].to_pylist())})
    if len(names) != 1:
        raise UserError(f"the inputs mix several games ({', '.join(names)}); analyse one game at a time"
                        if names else "the inputs hold no games")
    return tables, names[0]


def identity_of(path: Path) -> str | None:
    """The identity stored in a directory's marker file (runs: `run_id`; tables: `id`)."""
    path = Path(path)
    if not path.is_dir():
        return None
    for kind, f in DATA_KINDS.items():
        m = path / f
        if m.is_file():
            try:
                d = json.loads(m.read_text())
            except (OSError, ValueError):
                return None
            if isinstance(d, dict):
                ident = d.get("run_id") if kind == "run" else d.get("id")
                return ident if isinstance(ident, str) else None
    return None


def environment() -> dict[str, str]:
    """Library versions and the git commit, stored with every run."""
    import numpy
    import torch

    from .version import __version__
    versions = {"azscale": __version__, "python": platform.python_version(),
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


def games_table(rows: Iterable[GameRecord | dict[str, Any]], game: str) -> pa.Table:
    """A games table of `rows` (records, or row dicts that are read as records)."""
    recs = [r if isinstance(r, GameRecord) else GameRecord.from_row(r) for r in rows]
    cols = {f.name: [getattr(r, f.name) for r in recs] for f in GAMES_SCHEMA}
    table = pa.table(cols, schema=GAMES_SCHEMA)
    return table.replace_schema_metadata({"azscale.table": GAMES_TABLE,
                                          "azscale.version": GAMES_VERSION, "game": game})


def write_games_part(run_dir: Path, step: int, rows: Iterable[GameRecord | dict[str, Any]], game: str) -> Path:
    path = Path(run_dir) / "games" / f"part-{step:06d}.parquet"
    atomic_write_table(path, games_table(rows, game))
    return path


def part_step(path: Path) -> int:
    """N of `part-N.parquet` or `step-N.pt`; a file of another name there is not ours."""
    try:
        return int(Path(path).stem.split("-", 1)[1])
    except (IndexError, ValueError):
        raise UserError(f"{path}: a file azscale did not write (unexpected name); move it away") from None


def read_games(paths: Path | Iterable[Path]) -> pa.Table:
    """Read the games table of one run directory, a games folder, or Parquet files.

    Refuses, with one line, anything that is not an azscale games table: a foreign or damaged
    file, our metadata over other columns, or a game id that occurs twice.
    """
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if p.is_dir() and (p / DATA_KINDS["temperature-study"]).is_file():
            # a temperature study: one games table over its tournaments (one per temperature,
            # game ids distinct across them), told apart by the temperature column
            files = sorted(p.glob(STUDY_GAMES_GLOB))
            if not files:
                raise UserError(f"{p}: a temperature study with no games played yet")
        elif p.is_dir():
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
            raise UserError(f"{f}: not a readable Parquet file ({_one_line(exc)[:120]})") from None
        meta = t.schema.metadata or {}
        if meta.get(b"azscale.table") != GAMES_TABLE.encode():
            raise UserError(f"{f}: not an azscale games table")
        if meta.get(b"azscale.version") != GAMES_VERSION.encode():
            raise UserError(f"{f}: games table version {meta.get(b'azscale.version', b'?').decode(errors='replace')} "
                            f"is not supported (this azscale reads version {GAMES_VERSION})")
        missing = [n for n in GAMES_SCHEMA.names if n not in t.column_names]
        if missing:
            raise UserError(f"{f}: damaged games table (column {', '.join(missing[:3])} missing)")
        try:
            t = t.select(GAMES_SCHEMA.names).cast(GAMES_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise UserError(f"{f}: damaged games table (columns of the wrong type: {_one_line(exc)[:100]})") from None
        if t.column("game_id").null_count or t.column("actions").null_count:
            raise UserError(f"{f}: damaged games table (missing game ids or actions)")
        tables.append(t)
    out = pa.concat_tables(tables) if tables else GAMES_SCHEMA.empty_table()
    if out.num_rows:
        ids = out.column("game_id").to_numpy()
        uniq, counts = np.unique(ids, return_counts=True)
        if len(uniq) != len(ids):
            dup = int(uniq[counts > 1][0])
            where = Path(files[0]).parent if len(files) > 1 else files[0]
            raise UserError(f"{where}: game id {dup} occurs {int(counts[counts > 1][0])} times; the table mixes "
                            f"games from different sources (each game must be recorded once)")
        return out.sort_by("game_id")
    return out


# -- a tournament's records (written by `tournament.py`, read by the analysis) --------------------

def pair_file(tournament_dir: Path, idx: int) -> Path:
    """`pairs/pair-N.json`: pair N's result, written after its games; it marks the pair finished."""
    return Path(tournament_dir) / "pairs" / f"pair-{idx:05d}.json"


RESULT_COLUMNS = ["first", "second", "wins", "draws", "losses"]


def read_pair(f: Path) -> dict[str, Any]:
    d = read_json(f, "pair result")
    res = d.get("results")
    ok = isinstance(res, list) and all(
        isinstance(r, dict) and isinstance(r.get("first"), str) and isinstance(r.get("second"), str)
        and all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool) and r[k] >= 0
                for k in ("wins", "draws", "losses")) for r in res)
    if not ok:
        raise UserError(f"{f}: damaged pair result; delete it to replay that pair")
    return d


def read_results(path: Path) -> "pd.DataFrame":
    """A tournament's results: one row per ordered pair of players (`RESULT_COLUMNS`)."""
    import pandas as pd
    path = Path(path)
    read_manifest(path, "tournament", ("settings", "players"))
    files = sorted((path / "pairs").glob("pair-*.json"))
    if not files:
        raise UserError(f"{path}: not a tournament directory (no pairs played yet)")
    rows = []
    for f in files:
        rows += read_pair(f)["results"]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def unplayed_pairs(path: Path) -> tuple[int, int]:
    """(pairs played, pairs in all) of a tournament: its tournament.json numbers the pairs (or,
    written before pairs were numbered, every two of its players make one), and a pair is
    played when its result file exists."""
    path = Path(path)
    data = read_manifest(path, "tournament", ("settings", "players"))
    pairs = data.get("pairs")
    if pairs is None:
        players = data["players"]
        n = len(players) if isinstance(players, list) else 0
        total = n * (n - 1) // 2
    elif isinstance(pairs, list):
        total = len(pairs)
    else:
        raise UserError(f"{path / 'tournament.json'}: damaged (pairs)")
    played = sum(1 for k in range(total) if pair_file(path, k).exists())
    return played, total


def read_finished_results(path: Path) -> "pd.DataFrame":
    """`read_results` of a tournament whose every pair is played; an unfinished one (interrupted,
    or still playing) is refused: a rating from some of its pairs would silently differ."""
    played, total = unplayed_pairs(path)
    if played < total:
        raise UserError(f"{path}: unfinished tournament ({played} of {total} pairs played); rerun the same "
                        "`azscale tournament` command to finish it")
    return read_results(path)


def read_players(path: Path) -> dict[str, dict[str, Any]]:
    data = read_manifest(Path(path), "tournament", ("settings", "players"))
    players = data["players"]
    keys = ("name", "kind", "run", "step", "params")
    if not isinstance(players, list) or not all(isinstance(p, dict) and all(k in p for k in keys) for p in players):
        raise UserError(f"{Path(path) / 'tournament.json'}: damaged (players)")
    return {p["name"]: p for p in players}


def read_settings(path: Path) -> dict[str, Any]:
    data = read_manifest(Path(path), "tournament", ("settings", "players"))
    st = data["settings"]
    if not isinstance(st, dict) or not all(k in st for k in ("game", "games_per_pair", "temperature", "simulations")):
        raise UserError(f"{Path(path) / 'tournament.json'}: damaged (settings)")
    return st


def read_sweep_steps(root: Path) -> tuple[set[str], dict[str, Any] | None]:
    """A sweep's steps.json: the finished analysis steps and the inputs each read (None: a
    steps.json of an earlier azscale, which recorded no inputs). Here, not in sweep.py, so the
    report reads it without importing the trainer."""
    p = Path(root) / "steps.json"
    if not p.exists():
        return set(), {}
    d = read_json(p, "record of finished sweep steps")
    done = d.get("done")
    inputs = d.get("inputs")
    if not isinstance(done, list) or not all(isinstance(x, str) for x in done) \
            or (inputs is not None and not isinstance(inputs, dict)):
        raise UserError(f"{p}: damaged record of finished sweep steps; delete it to redo the analysis steps")
    return set(done), inputs


def write_sweep_steps(root: Path, done: set[str], inputs: dict[str, Any]) -> None:
    atomic_write_json(Path(root) / "steps.json",
                      {"done": sorted(done), "inputs": {k: v for k, v in sorted(inputs.items()) if k in done}})
