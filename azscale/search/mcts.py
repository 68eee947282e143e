"""Batched PUCT Monte-Carlo tree search, one search for every engine and device.

One simulation *wave* advances every game's search by one simulation, in three steps:

  select   descend every tree from its root for D levels (all games at every level, finished
           descents masked with `done`, `torch.where` instead of index sets), ending at a child
           that does not exist yet (to be expanded) or at a terminal node (exact value);
  expand   create the new nodes: the engine applies the leaf actions (a tensor twin inside the
           same graph; the pyspiel engine through a host-side hook), ONE network call evaluates
           every new node, and the node rows are written (a finished descent writes into the
           unused slot `num_nodes`, which nothing links to);
  backup   add the leaf values along the recorded paths in one scatter.

Shapes are fixed within a move: B games, N = simulations + 1 node slots, K action slots, and D
levels per descent, where D is a bound on the tree depth known to the host without waiting
for the device (`DepthBound`), rounded up to a few buckets so compiled graphs are reused.
Nothing inside a wave reads a device value on the host (no `.item()`, `nonzero`, boolean-mask
indexing or data-dependent shape); tests count the aten ops of a wave to keep it that way.

With `compile=True` the select and expand steps are compiled with `torch.compile` (inductor:
fused C++ on CPU, Triton on CUDA); eager and compiled searches run the same functions.

Value frames: the network's value is from the side to move; the tree keeps player 0's frame
(`policy.to_player0`). Unvisited children count as Q = 0, terminal children take their exact
outcome, the root's own evaluation counts as its first visit, ties go to the lowest action id.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import native as _native, policy
from .tree import NO_ACTION, NO_CHILD, NO_NODE, NO_PLAYER, ROOT, Children, Leaves, Selection, Tree

DEPTH_BUCKETS = tuple(2 ** i for i in range(11))        # 1, 2, 4, ..., 1024 levels

# the CPU search keeps new nodes' rows in action order (`commit`) where they have K = A slots and
# A is at least this: a pentago move (288 slots) took 1.59-1.73x less time that way (in-process
# comparisons pinned to one vCPU, results/bench_selfplay/), a connect_four move (7 slots) 1.04x
# more: laying out a few slots at once costs less than a first pass that lays them out later
WIDE_ROWS_MIN = 32


def depth_bucket(levels: int) -> int:
    for b in DEPTH_BUCKETS:
        if b >= levels:
            return b
    return int(levels)


def slot_bucket(k: int, num_actions: int) -> int:
    """Action slots rounded up to a multiple of 8 (capped at the action count), so a batch whose
    bound moves a little reuses the same compiled graphs."""
    return int(min(num_actions, -(-max(1, k) // 8) * 8))


@dataclass
class SearchStats:
    simulations: int = 0       # leaf evaluations summed over games (terminal hits included)
    net_calls: int = 0
    net_states: int = 0        # states sent to the network
    waves: int = 0
    levels: int = 0            # descent levels run, summed over waves


@dataclass
class SearchResult:
    visits: torch.Tensor       # [B, A] int32 root child visit counts
    root_value: torch.Tensor   # [B] mean value at the root, side-to-move frame of the root
    priors: torch.Tensor       # [B, A] root priors after noise

    def numpy(self) -> "SearchResult":
        return SearchResult(self.visits.cpu().numpy(), self.root_value.cpu().numpy(), self.priors.cpu().numpy())


class DepthBound:
    """The host's bound on the deepest node of the current trees. A descent needs max depth + 1
    levels. On CPU the maximum is read after each wave from a host buffer (no aten op, no
    wait). On CUDA the maximum is copied without blocking into pinned memory on the device's
    own stream; once the copy's event has completed, the value read is the depth after the wave
    that recorded it, and every wave since may have added one level: the bound is that value
    plus the waves since the recording (always safe: a wave deepens a tree by at most one)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.buf = torch.zeros((), dtype=torch.int32, device="cpu", pin_memory=self.cuda)
        self.event = torch.cuda.Event() if self.cuda else None
        self.start()

    def start(self) -> None:
        # value: the max depth known to the host, as it was after wave `value_at`;
        # a copy recorded after wave `recorded_at` may be on its way (`pending`)
        self.value, self.value_at, self.waves, self.recorded_at, self.pending = 0, 0, 0, 0, False

    def levels(self) -> int:
        if self.pending and self._ready():
            self.value, self.value_at, self.pending = int(self.buf.numpy()), self.recorded_at, False
        return self.value + (self.waves - self.value_at) + 1

    def after_wave(self, max_depth: torch.Tensor) -> None:
        self.waves += 1
        if not self.cuda:
            self.buf.copy_(max_depth.max())
            self.value, self.value_at = int(self.buf.numpy()), self.waves
        elif not self.pending:
            self._record(max_depth.max())
            self.recorded_at, self.pending = self.waves, True

    def _record(self, value: torch.Tensor) -> None:
        """Copy `value` to the pinned buffer on the device's own stream and mark the copy."""
        stream = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(stream):
            self.buf.copy_(value, non_blocking=True)
        self.event.record(stream)

    def _ready(self) -> bool:
        return self.event.query()


# --- the wave, as plain functions of tensors (compiled or not) --------------------------------

def select(tf: Tree, base: torch.Tensor, c: float, D: int) -> Selection:
    """Descend every tree for D levels: the path (flat ids of the nodes passed, NO_NODE after
    the descent ended), the node where it ended, the leaf's parent and slot, and whether a new
    node is to be created or an existing terminal node was hit (`Selection`)."""
    B = base.shape[0]
    dev = base.device
    cur = torch.full((B,), ROOT, dtype=torch.long, device=dev)
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    leaf_parent = torch.zeros(B, dtype=torch.long, device=dev)
    leaf_slot = torch.zeros(B, dtype=torch.long, device=dev)
    expand = torch.zeros(B, dtype=torch.bool, device=dev)
    path = []
    for _ in range(D):
        fn = base + cur
        path.append(torch.where(done, NO_NODE, fn))
        ch = tf.children[fn].long()                                   # [B, K]
        seen = ch != NO_CHILD
        fch = base[:, None] + ch.clamp_min(0)
        n_child = torch.where(seen, tf.visits[fch], 0)
        q = torch.where(n_child > 0, tf.wsum[fch] / n_child.clamp_min(1).to(tf.wsum.dtype), 0.0)
        sign = torch.where(tf.player[fn] == 1, -1.0, 1.0).to(q.dtype)
        score = policy.puct(q, n_child, tf.prior[fn], tf.visits[fn], sign, c)
        score = torch.where(tf.acts[fn] != NO_ACTION, score, float("-inf"))
        a = score.argmax(1)
        nxt = ch.gather(1, a[:, None]).squeeze(1)
        new = ~done & (nxt == NO_CHILD)
        leaf_parent = torch.where(new, cur, leaf_parent)
        leaf_slot = torch.where(new, a, leaf_slot)
        expand = expand | new
        go = ~done & (nxt != NO_CHILD)
        cur = torch.where(go, nxt, cur)
        done = done | new | (go & tf.term[base + cur])
    return Selection(torch.stack(path), cur, leaf_parent, leaf_slot, expand)


def evaluate(model: torch.nn.Module, obs: torch.Tensor, legal: torch.Tensor, dtype):
    logits, v = model(obs)
    return policy.masked_softmax(logits.to(dtype), legal), v.to(dtype)


def commit(tf: Tree, base, sel: Selection, kids: Children, logits, v, group: int = 1,
           lazy: bool = False) -> tuple[Leaves, torch.Tensor]:
    """Write the new nodes (`kids`, where `sel` expands; every row writes: a row that does not
    expand writes into its tree's unused slot, which nothing links to), given the network's
    `logits` and values `v` (side to move) for them. Returns each row's leaf (flat id) and its
    value in player 0's frame (`Leaves`), and the flat ids the rows wrote. The priors are the
    softmax of the network's logits over each node's legal slots: the same numbers as over its
    legal actions, at K entries a row instead of A (`group`: the engine's `action_group`, see
    `policy.slots`).

    `lazy`: store each slot's raw logit instead, for the CPU's tree walk to normalise the first
    time a descent passes the node (`native.select`): most new nodes are leaves that no descent
    ever passes (pentago at 300 simulations: 94%), and the softmax over the K slots of every new
    node was the largest part of pentago's CPU wave (an exp per slot, ~2.7 of ~7.3 ms). Where the
    tree keeps rows in action order (`Tree.legal` has columns: K = A >= WIDE_ROWS_MIN), not even
    the slots are laid out: the row gets the logits of actions 0..A-1 and `Tree.legal` the legal
    action runs."""
    K = tf.acts.shape[1]
    cur, leaf_parent, leaf_slot, expand = sel.node, sel.parent, sel.slot, sel.expand
    legal, player, term, ret0 = kids.legal, kids.player, kids.term, kids.ret0
    fpar = base + leaf_parent
    nid = tf.num_nodes.long()
    fchild = base + nid
    if lazy and tf.legal.shape[1] > 0:
        # rows in action order (K = A, `Tree.legal`): the logits and legal runs as they are; the
        # walk lays out the slots of the few nodes it passes
        tf.prior.index_copy_(0, fchild, logits)
        tf.legal.index_copy_(0, fchild, legal[:, ::group])
    else:
        acts = policy.slots(legal, K, group)
        tf.acts.index_copy_(0, fchild, acts)
        raw = policy.gather_slots(logits, acts)
        tf.prior.index_copy_(0, fchild, raw if lazy else policy.masked_softmax(raw, acts != NO_ACTION))
    tf.player.index_copy_(0, fchild, torch.where(term, NO_PLAYER, player).to(tf.player.dtype))
    tf.term.index_copy_(0, fchild, term)
    depth = tf.depth[fpar] + 1
    tf.depth.index_copy_(0, fchild, depth)
    old = tf.children[fpar, leaf_slot]
    tf.children.index_put_((fpar, leaf_slot), torch.where(expand, nid.to(old.dtype), old))
    tf.num_nodes.add_(expand.to(tf.num_nodes.dtype))
    torch.maximum(tf.max_depth, torch.where(expand, depth, 0), out=tf.max_depth)
    v_new = torch.where(term, ret0.to(v.dtype), policy.to_player0(v, player))
    fcur = base + cur
    v_old = tf.wsum[fcur] / tf.visits[fcur].clamp_min(1).to(tf.wsum.dtype)   # exact value of a terminal node
    return Leaves(torch.where(expand, fchild, fcur), torch.where(expand, v_new, v_old)), fchild


def twin_expand(tf: Tree, base, sel: Selection, ctx, engine, model, lazy=False) -> Leaves:
    """Expansion for tensor twins, inside the graph: step, status, observation, network, commit.
    `sel.path` is read only where the engine looks back along the line of play (else None)."""
    path = sel.path
    fpar = base + sel.parent
    act = tf.acts[fpar, sel.slot].long().clamp_min(0)
    parents = {k: v[fpar] for k, v in tf.states.items()}
    if engine.lookback_fields:
        anc = {k: tf.states[k][path.clamp_min(0)] for k in engine.lookback_fields}   # [D, B, ...]
        states = engine.tree_step(parents, act, anc, tf.depth[path.clamp_min(0)], path != NO_NODE,
                                  tf.depth[fpar], ctx)
    else:
        states = engine.step(parents, act)
    term, player, legal, ret = engine.status(states)
    kids = Children(engine.observation(states), legal, player, term, ret[:, 0])
    logits, v = model(kids.obs)
    leaves, fchild = commit(tf, base, sel, kids, logits.to(tf.prior.dtype), v.to(tf.wsum.dtype),
                            engine.action_group, lazy)
    for k, t in tf.states.items():
        t.index_copy_(0, fchild, states[k])
    return leaves


def backup(tf: Tree, path: torch.Tensor, leaf: torch.Tensor, value: torch.Tensor) -> None:
    """Add one visit and the leaf's value to every node on each path (one scatter each)."""
    ids = torch.cat([path, leaf[None]], 0)
    on = ids != NO_NODE
    flat = ids.clamp_min(0).view(-1)
    tf.visits.index_add_(0, flat, on.view(-1).to(tf.visits.dtype))
    tf.wsum.index_add_(0, flat, (on.to(value.dtype) * value[None]).view(-1))


_COMPILED: dict[str, object] = {}


def _compiled(fn, device: torch.device, simd: bool = False):
    """One torch.compile wrapper per function, device type and SIMD choice (dynamo caches a
    graph per shape and per level count D). On CPU, inductor's SIMD code for these gather- and
    integer-heavy graphs measured up to 3x slower than its scalar code (and compiled 4x slower),
    so CPU graphs are scalar unless an engine says its expansion vectorises (`compile_simd`:
    connect_four's bitboards, 13% faster with SIMD; checkers 3x slower)."""
    key = f"{fn.__name__}:{device.type}:{simd}"
    if key not in _COMPILED:
        import torch._dynamo
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        # dynamo's guards already check every input's shape and strides; inductor's own asserts of
        # the same cost ~6% of a CPU wave (oware, 1,024 games)
        opts = {"size_asserts": False, "alignment_asserts": False}
        if device.type == "cpu" and not simd:
            opts["cpp.simdlen"] = 1
        _COMPILED[key] = torch.compile(fn, dynamic=False, options=opts)
    return _COMPILED[key]


class MCTS:
    """Batched PUCT search over a batch of root states of `engine` (tensor twin or pyspiel)."""

    def __init__(self, engine, model: torch.nn.Module, simulations: int, c_puct: float = 2.0,
                 dirichlet_alpha: float = 1.0, dirichlet_epsilon: float = 0.25, compile: bool = False,
                 dtype: torch.dtype = torch.float32, native: bool | None = None):
        self.engine = engine
        self.model = model
        self.device = torch.device(engine.device)
        self.simulations = int(simulations)
        self.c_puct = float(c_puct)
        self.alpha = float(dirichlet_alpha)
        self.epsilon = float(dirichlet_epsilon)
        self.dtype = dtype
        self.compile = bool(compile)
        # the tree walk as compiled per-game loops (`native.py`) where the tree is in host memory;
        # None: wherever it can (a CPU device and numba installed)
        can = self.device.type == "cpu" and _native.available()
        self.native = can if native is None else bool(native)
        if self.native and not can:
            raise ValueError(f"native tree kernels need a CPU tree and numba (device {self.device})")
        self.stats = SearchStats()
        self.tree: Tree | None = None
        self.bound = DepthBound(self.device)
        self.nodes = engine.node_store()
        f = (lambda fn, simd=False: _compiled(fn, self.device, simd)) if self.compile else (lambda fn, simd=False: fn)
        # on CPU new nodes keep their logits until a descent first passes them (`commit`'s lazy)
        self.lazy_priors = self.native
        self._select = _native.select if self.native else f(select)
        self._backup = _native.backup if self.native else backup
        self._commit = f(_eval_commit)
        self._twin_expand = f(twin_expand, engine.compile_simd)

    def _tree_for(self, B: int, K: int, A: int) -> Tree:
        N = self.simulations + 1
        t = self.tree
        if t is None or t.shape[0] != B or t.shape[2] < K:
            # the CPU walk's rows in action order, where slots are as many as actions (see `commit`)
            group = self.engine.action_group
            wide = self.native and K == A >= WIDE_ROWS_MIN and A % group == 0
            self.tree = Tree.allocate(B, N, K, self.device, self.dtype, self.nodes.spec(),
                                      legal_cols=A // group if wide else 0, walk=self.native)
        return self.tree

    def precompile(self, levels: int = 64) -> None:
        """Compile `select` for every depth bucket up to `levels` now. A long run compiles them
        as its trees deepen; a benchmark wants them before it starts the clock. Needs one search
        run first (it reads that tree, and changes nothing)."""
        if not self.compile or self.native or self.tree is None:
            return
        B = self.tree.shape[0]
        base = torch.arange(B, device=self.device) * (self.simulations + 1)
        with torch.inference_mode():
            for D in DEPTH_BUCKETS:
                if D > levels:
                    break
                self._select(self.tree.flat(), base, self.c_puct, D)

    def run(self, roots, noise: bool = False, generator: torch.Generator | None = None) -> SearchResult:
        """Search from each of `roots` (non-terminal states of the engine)."""
        with torch.inference_mode():
            return self._run(roots, noise, generator)

    def _run(self, roots, noise, generator) -> SearchResult:
        eng, dev, S = self.engine, self.device, self.simulations
        obs, legal, player = self.nodes.root_info(roots)
        B, A = legal.shape
        K = slot_bucket(self.nodes.legal_bound(roots, legal), A)
        tree = self._tree_for(B, K, A)
        K = tree.shape[2]
        lazy = self.lazy_priors and tree.normed is not None    # only the CPU's walk normalises
        tree.reset(raw_priors=lazy)
        prior, v = evaluate(self.model, obs, legal, self.dtype)
        self.stats.net_calls += 1
        self.stats.net_states += B
        if noise and self.epsilon > 0:
            prior = policy.with_noise(prior, legal, self.alpha, self.epsilon, generator)
        racts = policy.slots(legal, K, eng.action_group)
        tree.acts[:, ROOT] = racts
        tree.prior[:, ROOT] = policy.gather_slots(prior, racts)
        tree.player[:, ROOT] = player.to(torch.int8)
        tree.term[:, ROOT] = False
        tree.depth[:, ROOT] = 0
        tree.visits[:, ROOT] = 1
        tree.wsum[:, ROOT] = policy.to_player0(v, player)
        ctx = self.nodes.set_roots(tree, roots)
        tf = tree.flat()
        base = torch.arange(B, device=dev) * (S + 1)
        self.bound.start()
        for _ in range(S):
            D = depth_bucket(self.bound.levels())
            sel = self._select(tf, base, self.c_puct, D)
            # the path goes into an expansion only where the engine reads it (else one graph serves
            # every depth); its length is marked dynamic, so one graph serves every depth there too
            at_leaf = sel._replace(path=None)
            if self.nodes.in_graph:
                if eng.lookback_fields:
                    if self.compile:
                        torch._dynamo.mark_dynamic(sel.path, 0)
                    leaves = self._twin_expand(tf, base, sel, ctx, eng, self.model, lazy)
                else:
                    leaves = self._twin_expand(tf, base, at_leaf, ctx, eng, self.model, lazy)
            else:
                fpar = base + sel.parent
                act = tf.acts[fpar, sel.slot]
                kids = self.nodes.expand(fpar, act, base + tf.num_nodes.long(), sel.expand)
                leaves = self._commit(tf, base, at_leaf, kids, self.model, lazy)
            self._backup(tf, sel.path, leaves.node, leaves.value)
            self.bound.after_wave(tree.max_depth)
            self.stats.waves += 1
            self.stats.levels += D
            self.stats.net_calls += 1
            self.stats.net_states += B
            self.stats.simulations += B
        ch = tree.children[:, ROOT].long()
        n_root = torch.where(ch != NO_CHILD, tree.visits.gather(1, ch.clamp_min(0)), 0)
        visits = policy.scatter_slots(n_root, racts, A)
        root0 = tree.wsum[:, ROOT] / tree.visits[:, ROOT].to(tree.wsum.dtype)
        root_value = policy.to_player0(root0, player)               # the same flip takes it back
        return SearchResult(visits, root_value, prior)


def _eval_commit(tf: Tree, base, sel: Selection, kids: Children, model, lazy=False) -> Leaves:
    """Expansion for the host-side (pyspiel) hook: the children arrive as tensors (`nodes.expand`);
    evaluate and commit them in one graph."""
    logits, v = model(kids.obs)
    return commit(tf, base, sel, kids, logits.to(tf.prior.dtype), v.to(tf.wsum.dtype), lazy=lazy)[0]

