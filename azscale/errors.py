"""The exceptions for problems the user can fix; the CLI prints them as one line."""

import re


class UserError(Exception):
    """Bad input: an unknown game, invalid settings, a corrupt or foreign file, a locked run."""


class ThinData(UserError):
    """Too little data for an estimate (no state seen often enough, no games selected, too few
    agents). An optional sweep step that raises it is recorded as not computed and the sweep
    goes on; any other UserError stops the sweep."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, or a sweep stopping its runs), handled as an interrupt: the
    CLI says "interrupted" and a rerun resumes. Unlike Ctrl-C it reaches only the one process,
    so a sweep that receives it passes it on to its runs."""


_OOM = re.compile(r"not enough memory|DefaultCPUAllocator|can't allocate memory|out of memory|std::bad_alloc",
                  re.IGNORECASE)


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says memory ran out: Python's MemoryError, or the RuntimeError torch raises
    when its allocator fails (`DefaultCPUAllocator: not enough memory`, CUDA out of memory)."""
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and bool(_OOM.search(str(exc))))
