"""Where work runs: this machine's processes, or Ray tasks while a sweep runs on Ray.

`imap_unordered`, `imap` and `map_ordered` are the one parallel map with a progress bar: the
tournament (one task per pair), the states replay (one task per chunk of games), the random
games (one task per part) and the perfect-play labels (one task per chunk of states) all use
them. They run local worker processes, unless a sweep on Ray has opened a session
(`ray_session`): then each item is a Ray task with one CPU, anywhere in the cluster (except
where the caller passes `ray=False`: the perfect-play labels, whose solver only the driver is
known to have, stay in local processes). The tasks
return their results and the driver writes them, under its lock, as before. A caller's own
`Bar` counts in its units (pairs, games, states); inside a sweep (`progress_bars`) every map
shows a bar over its tasks.

Ray workers get azscale through Ray's `runtime_env` (`working_dir`: a copy of this package with
the game settings inside it, uploaded by Ray when the session starts), never through a path on
the driver. Paths in a task's arguments lie under the sweep's storage root, a directory every node
mounts (a shared filesystem); a node that mounts it elsewhere sets `AZSCALE_STORAGE` to its
mount point and the task's paths are re-rooted there (`reroot`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import UserError


@dataclass
class RaySession:
    ray: Any
    storage: str                                   # the storage root as the driver sees it
    log: Callable[[str], None] = print
    counts: dict[str, int] = field(default_factory=dict)


_session: RaySession | None = None
_bars = False                 # a progress bar (with ETA) over the items of every map, for sweeps


@contextlib.contextmanager
def progress_bars(on: bool = True):
    """While open, every parallel map shows a bar over its items (tasks done, rate, ETA)."""
    global _bars
    prev, _bars = _bars, on
    try:
        yield
    finally:
        _bars = prev


@dataclass
class Bar:
    """A caller's progress bar over a map: `total` in its own units (pairs, games, states), of
    which `initial` were done before; each result moves it by `size(result)`."""
    desc: str
    unit: str
    total: int
    initial: int = 0
    size: Callable[[Any], int] = lambda result: 1


def _with_bar(results: Iterator[Any], total: int, what: str, bar: Bar | None = None) -> Iterator[Any]:
    if bar is None and not _bars:
        yield from results
        return
    from .progress import bar as progress_bar
    shown = progress_bar(total=bar.total, initial=bar.initial, desc=bar.desc, unit=bar.unit) \
        if bar is not None else progress_bar(total=total, desc=f"  {what}", unit="task", leave=False)
    with shown:
        for r in results:
            shown.update(bar.size(r) if bar is not None else 1)
            yield r


def session() -> RaySession | None:
    return _session


def reroot(obj: Any, old: str, new: str) -> Any:
    """`obj` with every path string under `old` moved under `new` (dicts, lists, tuples)."""
    if isinstance(obj, (str, Path)):
        s = str(obj)
        if s == old or s.startswith(old.rstrip("/") + "/"):
            s = new.rstrip("/") + s[len(old.rstrip("/")):]
            return Path(s) if isinstance(obj, Path) else s
        return obj
    if isinstance(obj, dict):
        return {k: reroot(v, old, new) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(reroot(v, old, new) for v in obj)
    return obj


def node_storage(driver_root: str) -> str:
    """Where this node sees the storage root: $AZSCALE_STORAGE if set, else the driver's path."""
    return os.environ.get("AZSCALE_STORAGE") or driver_root


def on_node(fn: Callable[[Any], Any], item: Any, driver_root: str) -> Any:
    """Run `fn(item)` in a Ray worker, with paths under the storage root re-rooted for this node."""
    root = node_storage(driver_root)
    if root != driver_root:
        item = reroot(item, driver_root, root)
    return fn(item)


def runtime_env() -> tuple[dict[str, Any], Path]:
    """Ray's `runtime_env` for azscale's tasks, and the staging directory to delete afterwards:
    a working directory holding a copy of this package (with the games' settings as
    `azscale/_games`, the layout of the installed wheel), which Ray uploads to the cluster and
    makes every worker's working directory and first import path. (A `working_dir` also keeps
    Ray from putting the driver's current directory on the workers' path, as it does otherwise.)"""
    from .config import games_dir
    pkg = Path(__file__).resolve().parent
    stage = Path(tempfile.mkdtemp(prefix="azscale-ray-"))
    dest = stage / "azscale"
    shutil.copytree(pkg, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if not (dest / "_games").is_dir():
        shutil.copytree(games_dir(), dest / "_games")
    return {"working_dir": str(stage)}, stage


def task_error(exc: BaseException, what: str) -> UserError | None:
    """A Ray task's failure as one line, where the user can act on it (our own refusals, OS
    errors, a worker that died); None for programming errors, which keep their traceback. Our
    refusals keep their kind: a `ThinData` stays a `ThinData`, so a sweep records its optional
    step as skipped whether the step ran here or in a Ray task."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, UserError):
        try:
            return type(cause)(*cause.args)
        except Exception:                 # a subclass with another constructor: its message at least
            return UserError(str(cause))
    if isinstance(cause, OSError):
        return UserError(f"{what}: {cause.filename or ''}: {cause.strerror or cause}".replace(": : ", ": "))
    name = type(exc).__name__
    if name in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "TaskCancelledError",
                "RaySystemError", "LocalRayletDiedError"):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else name
        return UserError(f"{what}: a Ray worker failed ({name}: {first[:160]}); rerun to continue")
    return None


def _ray_results(items: list, fn, what: str, ordered: bool) -> Iterator[Any]:
    s = _session
    assert s is not None
    s.counts[what] = s.counts.get(what, 0) + len(items)
    s.log(f"  {what}: {len(items)} Ray task(s)")
    remote = s.ray.remote(on_node).options(num_cpus=1)
    refs = [remote.remote(fn, it, s.storage) for it in items]
    try:
        if ordered:
            for r in refs:
                yield s.ray.get(r)
            return
        pending = list(refs)
        while pending:
            done, pending = s.ray.wait(pending, num_returns=1)
            yield s.ray.get(done[0])
    except Exception as exc:
        for r in refs:
            with contextlib.suppress(Exception):
                s.ray.cancel(r)
        err = task_error(exc, what)
        if err is not None:
            raise err from None
        raise


def imap_unordered(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, what: str,
                   bar: Bar | None = None, ray: bool = True) -> Iterator[Any]:
    """`fn` over `items`, results as they finish: Ray tasks in a Ray session (unless `ray` is
    False: work that must stay with this process, such as a GPU's), else `workers` local
    processes (spawned; each dies with this one), else in this process. `bar`: the caller's
    progress bar (shown even when there is nothing left to do)."""
    yield from _map(fn, items, workers, what, bar, ray, ordered=False)


def imap(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, what: str,
         bar: Bar | None = None, ray: bool = True) -> Iterator[Any]:
    """`fn` over `items`, results in order, each as soon as it and those before it are done (as
    `imap_unordered` chooses where)."""
    yield from _map(fn, items, workers, what, bar, ray, ordered=True)


def map_ordered(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, what: str,
                bar: Bar | None = None) -> list[Any]:
    """`fn` over `items`, results in order, as a list."""
    return list(imap(fn, items, workers, what, bar))


def _map(fn, items: Iterable[Any], workers: int, what: str, bar: Bar | None, ray: bool,
         ordered: bool) -> Iterator[Any]:
    items = list(items)
    if items or bar is not None:
        yield from _with_bar(_results(fn, items, workers, what, ray, ordered), len(items), what, bar)


def _results(fn, items: list, workers: int, what: str, ray: bool, ordered: bool) -> Iterator[Any]:
    if not items:
        return
    if _session is not None and ray:
        yield from _ray_results(items, fn, what, ordered=ordered)
    elif workers > 1 and len(items) > 1:
        import multiprocessing as mp

        from .procs import workers_ignore_interrupt
        made = []
        try:
            with workers_ignore_interrupt():        # Ctrl-C is the parent's alone: no worker tracebacks
                made.append(mp.get_context("spawn").Pool(min(workers, len(items))))
        except BaseException:           # a Ctrl-C held back while they started is raised here
            for pool in made:
                pool.terminate()
            raise
        with made[0] as pool:
            yield from (pool.imap if ordered else pool.imap_unordered)(fn, items)
    else:
        for it in items:
            yield fn(it)


@contextlib.contextmanager
def ray_session(ray: Any, storage: str, log: Callable[[str], None]):
    """While open, `imap_unordered` and `map_ordered` run their items as Ray tasks."""
    global _session
    prev = _session
    _session = RaySession(ray, storage, log)
    try:
        yield _session
    finally:
        _session = prev
