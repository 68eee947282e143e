"""The tree walk of a wave (`select`, `backup`) as compiled loops over each game, for the CPU.

`mcts.select` descends every tree for the D levels the deepest tree might need, all games at
every level under `done` masks: fixed shapes and no host reads, what a GPU needs. On a CPU the
masks are pure waste (a descent ends after ~3 nodes while D is 7-14, and each level reads all K
children of every game), and there is no device to wait for: a loop per game that stops where
its descent stops does the same work in a fraction of the time. These kernels are that loop,
compiled by numba, and they compute exactly what `mcts.select` / `mcts.backup` compute (the
same PUCT terms in the tree's dtype and in the same order, the lowest slot on ties, the same
`Selection` down to the `NO_NODE` padding of the paths); tests/test_search.py compares them on
every seed game, and the search uses them for CPU trees (`MCTS(native=...)`).

One difference, made for speed: on CPU a new node keeps the network's raw logits in its prior
row until a descent first passes it, and `select` applies the masked softmax then (`normalise`,
the same steps in numba). Most new nodes are leaves no descent ever passes (pentago at 300
simulations: 94% of them), so this skips most of the softmax's exps. The priors agree with the
device search's to float rounding (numba's exp and summation order, not torch's), and on the
tests' seed positions the visits, values and trees are identical; a PUCT near-tie that one ulp
of a prior decides could differ. Where a tree's rows are as wide as the action count and that
is large (K = A >= `mcts.WIDE_ROWS_MIN`: pentago on either engine, checkers on the pyspiel
engine), the new node is not even laid out in slots: its row keeps the logits in action order
and the tree's `legal` field its legal action runs, and the first pass lays them out
(`_unpack`) before the softmax. Until then such a row's `acts` are stale (whatever the slot
held before); nothing reads them before the walk has passed the node. Not laying out and
writing every new node's slots and action ids took pentago's expansion from ~2.8 to ~1.9 ms per
wave (one actor, 1,024 games, two separate runs).

The walk also counts each node's legal slots the first time it passes the node (the tree's
`nslots`; the legal slots come first in a row, `policy.slots`) and scores only those, and scores
an unexpanded child as `explore * prior` (Q = 0 and a divisor of 1, both exact): pentago's and
checkers' rows are mostly padding and unexpanded slots.

They read and write the tree's own storage through numpy views (no copy); the tensors they
return are made on the tree's device (the CPU), so nothing leaks to a default device. The
compiled kernels take plain arrays and numbers (numba takes no `Tree` or `Selection`); `select`
and `backup` below are the walk's interface in the search's named types. The kernels read the
tree's sentinels (`tree.NO_CHILD`, ...) as module globals, which numba compiles in as constants
(a cached kernel keeps the value it was compiled with: numba's disk cache is keyed by this file,
so changing a sentinel's value means clearing the cache).
"""

from __future__ import annotations

import numpy as np
import torch

from .tree import NO_ACTION, NO_CHILD, NO_NODE, ROOT, UNCOUNTED, Selection

try:
    import numba
except ImportError:          # pragma: no cover - numba is a dependency; the torch path still works
    numba = None


def available() -> bool:
    return numba is not None


def _njit(fn):
    """numba-compile `fn`, with its machine code cached on disk where numba finds a writable
    cache directory; where none is (a read-only install, no writable home, no NUMBA_CACHE_DIR)
    numba refuses `cache=True` with a RuntimeError, and the kernel is compiled per process."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return numba.njit(nogil=True)(fn)


_FTYPES = {torch.float32: np.float32, torch.float64: np.float64}     # a tree's dtype -> numba's


def _limits(ftype):
    """`ninf`, `floor`, `tiny` of `_normalise` in `ftype`: -inf and the two clamps of
    `policy.masked_softmax` (-1e30 for the max, 1e-30 for the sum)."""
    return ftype(-np.inf), ftype(-1e30), ftype(1e-30)


def _normalise(prior, acts, fn, ninf, floor, tiny):
    """The node's stored logits -> its priors, in place: `policy.masked_softmax` over the legal
    slots, the same steps in the tree's dtype (empty slots 0; a NaN logit gives NaN). `ninf`,
    `floor`, `tiny`: -inf, -1e30 and 1e-30 in that dtype (numba types the arithmetic by them).

    A module-level kernel that `select` calls as a global: a numba function captured in a
    closure would put its per-process id into `select`'s on-disk cache key, and every process
    would compile `select` afresh (and add a file to the cache)."""
    K = prior.shape[1]
    m = ninf
    for k in range(K):
        if acts[fn, k] != NO_ACTION:
            x = prior[fn, k]
            if x > m or x != x:
                m = x
            if m != m:
                break
    if m == m and m < floor:
        m = floor
    zero = tiny - tiny                                  # 0 in the tree's dtype
    z = zero
    for k in range(K):
        e = zero
        if acts[fn, k] != NO_ACTION:
            e = np.exp(prior[fn, k] - m)
        prior[fn, k] = e
        z += e
    if z < tiny:
        z = tiny
    for k in range(K):
        prior[fn, k] = prior[fn, k] / z


def _unpack(prior, acts, legal, fn):
    """A node row kept in action order (the tree's `legal` field) -> slots, in place: the legal
    actions in ascending order with their raw logits, then NO_ACTION padding, as `policy.slots` lays
    them out (the padding's priors are left to `_normalise`, which writes 0 there). Slot j never
    lies after action j, so the forward copy reads each logit before anything overwrites it."""
    K = acts.shape[1]
    G = legal.shape[1]
    group = K // G                          # rows in action order have K = A slots
    j = 0
    for g in range(G):
        if legal[fn, g]:
            for t in range(group):
                a = g * group + t
                acts[fn, j] = a
                prior[fn, j] = prior[fn, a]
                j += 1
    for k in range(j, K):
        acts[fn, k] = NO_ACTION


def _first_pass(prior, acts, legal, fn, ninf, floor, tiny):
    """What a descent does where it first passes a node whose row still holds raw logits:
    lay the row out in slots if it is kept in action order, then the masked softmax."""
    if legal.shape[1] > 0:
        _unpack(prior, acts, legal, fn)
    _normalise(prior, acts, fn, ninf, floor, tiny)


def _finish_rows(prior, acts, legal, normed, rows, ninf, floor, tiny):
    for r in rows:
        if not normed[r]:
            _first_pass(prior, acts, legal, r, ninf, floor, tiny)
            normed[r] = True


# the module-level kernels the walk calls (as globals: see `_normalise`)
HELPERS = ("_normalise", "_unpack", "_first_pass", "_finish_rows")
if numba is not None:
    for _name in HELPERS:
        globals()[_name] = _njit(globals()[_name])


def _make(ftype):
    """The kernels for trees of float type `ftype` (float32 or float64): every float in the
    PUCT score is computed in that type, as torch computes it. Their closures hold plain numbers
    and types only (no numba function), so numba's disk cache serves every later process."""
    one = ftype(1.0)
    ninf, floor, tiny = _limits(ftype)

    @_njit
    def select(children, visits, wsum, player, prior, acts, legal, term, normed, nslots, bases, c, path, cur_out,
               lp_out, ls_out, exp_out):
        D, B = path.shape
        K = children.shape[1]
        cf = ftype(c)
        for b in range(B):
            base = bases[b]
            cur = ROOT
            lev = 0
            lp = 0
            ls = 0
            ex = False
            while lev < D:
                fn = base + cur
                path[lev, b] = fn
                lev += 1
                if not normed[fn]:              # the node's row still holds logits (`mcts.commit`)
                    _first_pass(prior, acts, legal, fn, ninf, floor, tiny)
                    normed[fn] = True
                L = nslots[fn]
                if L == UNCOUNTED:              # first pass: count the legal slots (they come first)
                    L = 0
                    while L < K and acts[fn, L] != NO_ACTION:
                        L += 1
                    nslots[fn] = L
                explore = cf * np.sqrt(ftype(visits[fn]))
                neg = player[fn] == 1
                best = -np.inf
                a = 0
                for k in range(L):
                    ch = children[fn, k]
                    if ch != NO_CHILD:
                        n = visits[base + ch]
                        q = ftype(0.0)
                        if n > 0:
                            q = wsum[base + ch] / ftype(n)
                        if neg:
                            q = -q
                        s = q + explore * prior[fn, k] / (one + ftype(n))
                    else:
                        # an unexpanded child: Q = 0, n = 0; x / 1 is x and (+-0) + x compares equal to x
                        s = explore * prior[fn, k]
                    # torch.argmax: the first maximum, a NaN counting as above every number
                    if s > best or (s != s and best == best):
                        best = s
                        a = k
                nxt = children[fn, a]
                if nxt == NO_CHILD:
                    lp, ls, ex = cur, a, True
                    break
                cur = nxt
                if term[base + cur]:
                    break
            for j in range(lev, D):
                path[j, b] = NO_NODE
            cur_out[b] = cur
            lp_out[b] = lp
            ls_out[b] = ls
            exp_out[b] = ex

    @_njit
    def backup(visits, wsum, path, leaf, value):
        D, B = path.shape
        for b in range(B):
            v = value[b]
            for j in range(D):
                i = path[j, b]
                if i == NO_NODE:
                    break
                visits[i] += 1
                wsum[i] += v
            i = leaf[b]
            visits[i] += 1
            wsum[i] += v

    return select, backup


_KERNELS: dict[torch.dtype, tuple] = {}


def _normaliser(dtype: torch.dtype):
    """The kernels' softmax of one node row in place: `fn(prior, acts, row)` (for tests)."""
    lim = _limits(_FTYPES[dtype])
    return lambda prior, acts, row: _normalise(prior, acts, row, *lim)


def _kernels(dtype: torch.dtype):
    if dtype not in _KERNELS:
        _KERNELS[dtype] = _make(_FTYPES[dtype])
    return _KERNELS[dtype]


def select(tf, base: torch.Tensor, c: float, D: int) -> Selection:
    """`mcts.select(tf, base, c, D)` for a CPU tree (`tf`: a flat `Tree`): the same `Selection`.

    It keeps its per-node state in the tree where the tree has it (`Tree.allocate(walk=True)`):
    `normed`, False where the row's `prior` still holds the network's raw logits (`MCTS` stores
    them so on CPU, see `mcts.commit`; in action order, with stale `acts`, where the tree's
    `legal` field has columns), which the descent turns into slots and priors the first time it
    passes the node; and `nslots`, the node's legal slot count, UNCOUNTED until a descent first
    passes it and counts them (a row's legal slots come first, `policy.slots`), so the walk
    reads neither the padding nor the action ids. A tree without them: every row holds priors,
    and slots are counted afresh in this call."""
    dev = tf.visits.device
    B = base.shape[0]
    if tf.normed is not None:
        normed, nslots = tf.normed.numpy(), tf.nslots.numpy()
    else:
        normed = np.ones(tf.visits.shape[0], dtype=np.bool_)
        nslots = np.full(tf.visits.shape[0], UNCOUNTED, dtype=np.int32)
    path = torch.empty((D, B), dtype=torch.long, device=dev)
    cur = torch.empty(B, dtype=torch.long, device=dev)
    lp = torch.empty(B, dtype=torch.long, device=dev)
    ls = torch.empty(B, dtype=torch.long, device=dev)
    exp = torch.empty(B, dtype=torch.bool, device=dev)
    _kernels(tf.wsum.dtype)[0](tf.children.numpy(), tf.visits.numpy(), tf.wsum.numpy(), tf.player.numpy(),
                                tf.prior.numpy(), tf.acts.numpy(), tf.legal.numpy(), tf.term.numpy(), normed, nslots,
                                base.numpy(), c,
                                path.numpy(), cur.numpy(), lp.numpy(), ls.numpy(), exp.numpy())
    return Selection(path, cur, lp, ls, exp)


def finish_rows(tf, rows: np.ndarray) -> None:
    """Do for each of `rows` (flat node ids) whose `normed` is False what the walk does where it
    first passes a node: slots from a row kept in action order, then priors from logits (`tf`: a
    flat `Tree` the walk keeps state in). For reading the nodes of a CPU tree that no descent
    passed (tests compare them with the device search's)."""
    _finish_rows(tf.prior.numpy(), tf.acts.numpy(), tf.legal.numpy(), tf.normed.numpy(),
                 np.asarray(rows, dtype=np.int64), *_limits(_FTYPES[tf.prior.dtype]))


def backup(tf, path: torch.Tensor, leaf: torch.Tensor, value: torch.Tensor) -> None:
    """`mcts.backup` for a CPU tree, in place."""
    _kernels(tf.wsum.dtype)[1](tf.visits.numpy(), tf.wsum.numpy(), path.numpy(), leaf.numpy(),
                               value.to(tf.wsum.dtype).numpy())
