"""The one progress bar of every command (`bar`): tqdm's redrawn bar on a terminal; off a
terminal (output to a file, a pipe, a batch job's log) a plain line at the start, every
`LINE_PERCENT` percent or `LINE_SECONDS` seconds of progress, and at the end, never the
carriage-return frames a redrawn bar writes (megabytes of them in a long job's log)."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

LINE_PERCENT = 5            # off a terminal: a line each time this many percent more are done,
LINE_SECONDS = 120.0        # or this many seconds passed since the last line with progress since


def _is_terminal(fp: Any) -> bool:
    try:
        return bool(fp.isatty())
    except (AttributeError, ValueError):
        return False


class LineBar(tqdm):
    """tqdm that writes whole lines (see the module's docstring); tqdm's `update`,
    `set_postfix`, `close` and `tqdm.write` work as for any bar."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self._line_n: float | None = None
        self._line_t = time.monotonic()
        kw.update(dynamic_ncols=False, mininterval=0, miniters=1)   # every update reaches `display`
        super().__init__(*args, **kw)

    def _emit(self) -> None:
        self.fp.write(str(self).strip() + "\n")
        self.fp.flush()
        self._line_n, self._line_t = self.n, time.monotonic()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:                 # a request to clear the bar: nothing to clear in a log
            return False
        due = self._line_n is None
        if not due and self.n != self._line_n:
            due = (bool(self.total) and (self.n - self._line_n) * 100 >= LINE_PERCENT * self.total) \
                or time.monotonic() - self._line_t >= LINE_SECONDS
        if due:
            self._emit()
        return True

    def clear(self, nolock: bool = False) -> None:
        pass

    def close(self) -> None:
        if not self.disable and self._line_n != self.n:
            self._emit()                    # the final count
        self.leave = False                  # (tqdm's own close would write a last frame)
        super().close()


def bar(**kw: Any) -> tqdm:
    """A progress bar (tqdm's keywords): tqdm's own on a terminal, `LineBar` elsewhere."""
    fp = kw.get("file") or sys.stderr
    if _is_terminal(fp):
        return tqdm(**{"dynamic_ncols": True, **kw})
    return LineBar(**kw)
