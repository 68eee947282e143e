"""Worker processes die with the process that started them.

A pool worker (tournament pairs, random games, replay and solver chunks, self-play actors) that
outlived a killed parent would keep a core busy and, if it wrote anything, write without the
parent's lock. So every worker function calls `die_with_parent()` first:

- on Linux it asks the kernel to send it SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG);
- everywhere, a daemon thread watches the parent's process id and ends the worker when it
  changes (the fallback where prctl is missing, and a second line of defence);
- if the parent is already gone when the worker starts, the worker ends at once.

A worker also takes no lock that outlives it (see `_thread_lock_for_bars`).

Workers also never write results themselves: they return them to the parent, which writes under
its lock.

Ctrl-C reaches every process of the terminal's process group; only the parent acts on it (one
line, exit status 130). Workers are started inside `workers_ignore_interrupt()`, so they ignore
SIGINT from their first instruction (an ignored signal survives exec, and Python then installs
no KeyboardInterrupt handler): no worker prints a traceback, and each ends with its parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
_armed_for: int | None = None
WATCH_SECONDS = 0.5


def _parent_pid() -> int | None:
    """The pid of the process that started this one if this is a multiprocessing worker (spawn
    and fork both record it); None in a main process, which is never tied to its shell."""
    import multiprocessing
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else None


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    import time
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(WATCH_SECONDS)


def die_with_parent() -> None:
    """Tie this (worker) process to its parent: it ends when the parent ends. Idempotent, cheap
    to call at the top of every task; does nothing in the main process."""
    global _armed_for
    parent = _parent_pid()
    if parent is None or parent == os.getpid():
        return
    if _armed_for == parent:
        return
    _set_pdeathsig()
    if os.getppid() != parent:      # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="azscale-parent-watch", daemon=True).start()
    _thread_lock_for_bars()
    _armed_for = parent


def _thread_lock_for_bars() -> None:
    """A worker is killed when its parent stops, so it must hold nothing that only a clean exit
    gives back to multiprocessing's resource tracker: the tracker would warn of "leaked semaphore
    objects" after the parent's one line. tqdm's first bar makes such a lock (a semaphore), and
    torch.fx shows a bar while it compiles the search from a cold cache; a worker's bars need
    only a thread lock."""
    import tqdm
    tqdm.tqdm.set_lock(threading.RLock())


def die_with_parent_from_env() -> None:
    """A process started by a sweep (`azscale train` with AZSCALE_PARENT_PID set) ends when the
    sweep ends, even by SIGKILL: the same two lines of defence as `die_with_parent`."""
    want = os.environ.pop("AZSCALE_PARENT_PID", None)
    if not want or not want.isdigit():
        return
    parent = int(want)
    _set_pdeathsig()
    if os.getppid() != parent:      # the sweep died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="azscale-parent-watch", daemon=True).start()
    _thread_lock_for_bars()             # it too ends by a kill when the sweep goes


@contextlib.contextmanager
def workers_ignore_interrupt():
    """Start worker processes inside this: they ignore SIGINT (Ctrl-C) for life, and end with
    the parent instead (`die_with_parent`). SIGINT is blocked in this thread meanwhile, so a
    Ctrl-C that this thread takes while they start is not lost: it is raised when the block ends
    (one that another thread, e.g. torch's, takes in that instant is dropped). Callers start
    workers inside a `try` that kills them on any exception, that one included. Only the
    main thread can change a signal's handler; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
