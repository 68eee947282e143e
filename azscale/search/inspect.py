"""What one simulation wave asks of the device: its aten ops, and which of them make the host
wait for the device (data-dependent shapes or values read back). Used by the tests, which
require none of the latter and an op count independent of the number of games, and by
`azscale bench selfplay`, which prints both."""

from __future__ import annotations

import torch

# ops whose result's shape or value the host must see before it can go on
DATA_DEPENDENT = frozenset({"nonzero", "_local_scalar_dense", "masked_select", "masked_scatter", "is_nonzero",
                            "equal", "unique", "_unique2", "unique_consecutive", "unique_dim", "item"})


def is_host_read(op: str) -> bool:
    return op in DATA_DEPENDENT or op.endswith("[bool mask]")


def wave_ops(search, roots) -> list[list[str]]:
    """The aten ops of each simulation wave of one eager `search.run(roots)`: one list of op
    names per wave (boolean-mask indexing marked `[bool mask]`), the last wave left out (its
    list also holds the reading of the result)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    if search.compile:
        raise ValueError("wave_ops inspects an eager search (compiled graphs hide their ops)")
    waves: list[list[str]] = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.__name__.split(".")[0]
            if name.startswith("index") and len(args) > 1 and isinstance(args[1], (list, tuple)) and any(
                    isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]):
                name += "[bool mask]"
            if waves:
                waves[-1].append(name)
            return func(*args, **(kwargs or {}))

    inner = search._select

    def marked(*a, **k):
        waves.append([])
        return inner(*a, **k)

    search._select = marked
    try:
        # outside inference mode, composite ops show what they run (one_hot, e.g., checks its
        # input with two host reads, which inference mode would hide inside one op)
        with torch.no_grad(), Record():
            search._run(roots, False, None)
    finally:
        search._select = inner
    return waves[:-1]
