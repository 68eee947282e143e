"""The learner's data: the queue of finished games' examples and the replay buffer.

Each training example carries, besides its observation and targets, the player to move and its
turn (moves made before it; 0 for the initial state). From them the buffer keeps every example's
*state key* (`example_keys`), so it can say how many copies of one state it holds, and bound a
state's share of learning (issue 33's replay intervention):

- `replay_cap` K > 0: at most K copies of one state key are kept. A new copy of a state that
  already has K copies *replaces the oldest copy of that state* in place (its slot keeps its place
  in the ring; the ring does not advance). Replacing the oldest copy, not dropping the new one,
  keeps the newest targets: a state's search policy and outcome improve as the network learns,
  so a cap that dropped new copies would freeze frequent states at their oldest, weakest targets.
- `replay_beta` beta > 0: minibatches are drawn with probability proportional to
  copies(state)^-beta per example (beta = 1: every distinct state in the buffer is drawn equally
  often; 0: uniformly over examples, the paper's).
- `replay_from_turn` T: the cap and the weight apply only to examples of turn >= T (the others
  are kept and drawn as in plain replay, and their copies are not counted), so a study can thin
  out frequent end-game states alone; 0 (default): every state. The weight only redistributes
  draws among those examples: together they keep the share of draws they have in plain replay,
  so it changes *which* end-game states are learned, not how much of the end game is.

With both off (K = 0, beta = 0, the defaults) the buffer writes and samples exactly as before
this existed: the same ring positions and the same `torch.randint` draws, so runs are identical.

State key (`KEY_SCHEME`): the first 8 bytes (little-endian) of BLAKE2b over the player to move
(one signed byte) followed by the float32 observation. The Zipf analysis keys states by
OpenSpiel's `str(state)` (`analysis.states.KEY_SCHEME`); on random games of tic_tac_toe,
connect_four and oware (full and 3x2) the two partitions of states are identical (each str key has
one (player, observation) and vice versa; tests/test_replay.py checks it). For checkers the
observation is finer (0.5% of str keys map to more than one observation), so a cap counts copies
a little more finely than the Zipf table does.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from . import runs

KEY_SCHEME = "player-obs-blake2b64/1"
UNKNOWN_KEY = np.uint64(0)       # an example whose state is not known (from a resume file of older azscale)
UNKNOWN_TURN = -1


def example_keys(player: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """The state key (uint64, `KEY_SCHEME`) of each example: row i of `obs` with `player[i]` to move."""
    obs = np.ascontiguousarray(obs, dtype=np.float32)
    player = np.asarray(player, dtype=np.int8)
    out = np.empty(len(obs), dtype=np.uint64)
    for i in range(len(obs)):
        h = hashlib.blake2b(player[i].tobytes(), digest_size=8)
        h.update(obs[i].tobytes())
        out[i] = int.from_bytes(h.digest(), "little")
    out[out == UNKNOWN_KEY] = 1          # 0 is kept for "unknown" (odds 2^-64)
    out[player < 0] = UNKNOWN_KEY        # no player known (a queue from older azscale)
    return out


def game_turns(lengths) -> np.ndarray:
    """Turn of every example of games laid end to end: 0, 1, ..., length-1 per game."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if not len(lengths):
        return np.zeros(0, np.int32)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return (np.arange(int(lengths.sum())) - starts).astype(np.int32)


class ReplayBuffer:
    """A ring of `capacity` training examples, as tensors on the learner's device. Observations
    are kept in `obs_dtype` (bool for games whose observations are 0/1 planes: exact, and a
    quarter of float32's memory). Every slot also keeps its example's state key and turn (host
    side), for the cap, the frequency weight and the step's metrics (`stats`)."""

    def __init__(self, capacity: int, obs_size: int, num_actions: int, device="cpu", obs_dtype=torch.float32,
                 cap: int = 0, beta: float = 0.0, late_turn: float | None = None, from_turn: int = 0):
        self.capacity = capacity
        self.device = torch.device(device)
        self.obs_dtype = obs_dtype
        z = lambda *shape, dt: torch.zeros(shape, dtype=dt, device=self.device)  # noqa: E731
        self.obs = z(capacity, obs_size, dt=obs_dtype)
        self.legal = z(capacity, num_actions, dt=torch.bool)
        self.policy = z(capacity, num_actions, dt=torch.float32)
        self.value = z(capacity, dt=torch.float32)
        self.turn = torch.full((capacity,), UNKNOWN_TURN, dtype=torch.int32, device=self.device)
        self.keys = np.zeros(capacity, dtype=np.uint64)
        self.age = np.zeros(capacity, dtype=np.int64)      # when the slot's example was written (cap order)
        self.clock = 0
        self.size = 0
        self.pos = 0
        self.cap = int(cap)
        self.beta = float(beta)
        self.late_turn = late_turn
        self.from_turn = int(from_turn)     # the cap and weight apply to examples of this turn on
        self._copies: dict[int, OrderedDict[int, None]] = {}    # key -> its slots, oldest example first
        self._weights: torch.Tensor | None = None
        self._drawn = torch.zeros(2, dtype=torch.int64, device=self.device)   # [examples, late ones] drawn

    @property
    def keyed(self) -> bool:
        """Whether the cap or the weight is on (off: the plain ring and uniform draws)."""
        return self.cap > 0 or self.beta > 0

    def add(self, obs, legal, policy, value, player=None, turn=None) -> None:
        n = len(obs)
        player = np.full(n, -1, np.int8) if player is None else np.asarray(player)
        turn = np.full(n, UNKNOWN_TURN, np.int32) if turn is None else np.asarray(turn, np.int32)
        keys = example_keys(player, obs)
        if self.obs_dtype == torch.bool and not np.isin(obs, (0.0, 1.0)).all():
            raise RuntimeError("an observation outside {0, 1} for a game declared to have 0/1 planes")
        if self.cap > 0:
            if n > self.capacity:           # as the plain ring: only the last `capacity` examples can stay
                obs, legal, policy, value = obs[-self.capacity:], legal[-self.capacity:], \
                    policy[-self.capacity:], value[-self.capacity:]
                keys, turn = keys[-self.capacity:], turn[-self.capacity:]
                self.clock += n - self.capacity
            slots = self._place_capped(np.where(self._ruled(turn), keys, UNKNOWN_KEY))
            last = _last_write(slots)            # a slot written twice in one call keeps the later example
            src, slots = last, slots[last]
        else:
            if n >= self.capacity:
                src = np.arange(n - self.capacity, n)
                n = self.capacity
            else:
                src = np.arange(n)
            slots = np.remainder(np.arange(self.pos, self.pos + n), self.capacity)
            self.pos = int((self.pos + n) % self.capacity)
            self.size = int(min(self.capacity, self.size + n))
        self.keys[slots] = keys[src]
        self.age[slots] = self.clock + src
        self.clock += len(obs)
        dev = self.device
        idx = torch.from_numpy(slots).to(dev)
        self.obs[idx] = torch.from_numpy(np.asarray(obs)[src]).to(dev, self.obs_dtype)
        self.legal[idx] = torch.from_numpy(np.asarray(legal)[src]).to(dev)
        self.policy[idx] = torch.from_numpy(np.asarray(policy, np.float32)[src]).to(dev)
        self.value[idx] = torch.from_numpy(np.asarray(value, np.float32)[src]).to(dev)
        self.turn[idx] = torch.from_numpy(turn[src]).to(dev)
        self._weights = None

    def _place_capped(self, keys: np.ndarray) -> np.ndarray:
        """The slot of each new example under the cap (in order; bookkeeping of copies updated)."""
        slots = np.empty(len(keys), dtype=np.int64)
        copies = self._copies
        for i, k in enumerate(keys.tolist()):
            mine = copies.get(k) if k != UNKNOWN_KEY else None
            if mine is not None and len(mine) >= self.cap:
                s, _ = mine.popitem(last=False)           # the oldest copy of this state gives its slot
            else:
                s = self.pos
                old = int(self.keys[s])                  # the ring's next slot: drop what it held
                held = copies.get(old)
                if held is not None and held.pop(s, False) is None and not held:
                    del copies[old]
                self.pos = (self.pos + 1) % self.capacity
                self.size = min(self.capacity, self.size + 1)
                if k != UNKNOWN_KEY:                     # (an unknown key is never capped; the drop
                    mine = copies.get(k)                 #  above may have emptied and removed k's own)
                    if mine is None:
                        mine = copies[k] = OrderedDict()
            self.keys[s] = k                             # (so a later eviction in this call finds it)
            if mine is not None:
                mine[s] = None
            slots[i] = s
        return slots

    def _ruled(self, turn: np.ndarray) -> np.ndarray:
        """Which examples the cap and weight apply to (all of them when from_turn is 0)."""
        return np.ones(len(turn), bool) if self.from_turn == 0 else np.asarray(turn) >= self.from_turn

    def _rebuild_copies(self) -> None:
        self._copies = {}
        order = np.argsort(self.age[:self.size], kind="stable")
        ruled = self._ruled(self.turn[:self.size].cpu().numpy())
        for s in order.tolist():
            if self.keys[s] != UNKNOWN_KEY and ruled[s]:
                self._copies.setdefault(int(self.keys[s]), OrderedDict())[s] = None

    def sample(self, n: int, generator: torch.Generator):
        if self.beta > 0:
            if self._weights is None:
                keys = self.keys[:self.size]
                ruled = self._ruled(self.turn[:self.size].cpu().numpy())
                _, inv, counts = np.unique(keys[ruled], return_inverse=True, return_counts=True)
                w = np.ones(self.size)
                wr = counts[inv].astype(np.float64) ** -self.beta
                w[ruled] = wr * (len(wr) / wr.sum()) if len(wr) else wr   # the ruled examples keep their share
                self._weights = torch.from_numpy(np.cumsum(w)).to(self.device)     # cumulative
            # inverse-CDF draws (torch.multinomial refuses more than 2^24 categories)
            u = torch.rand(n, generator=generator, device=self.device, dtype=torch.float64) * self._weights[-1]
            idx = torch.searchsorted(self._weights, u, right=True).clamp_(max=self.size - 1)
        else:
            idx = torch.randint(0, self.size, (n,), generator=generator, device=self.device)
        if self.late_turn is not None:
            t = self.turn[idx]
            self._drawn += torch.stack([(t >= 0).sum(), (t >= self.late_turn).sum()])
        return self.obs[idx].float(), self.legal[idx], self.policy[idx], self.value[idx]

    def stats(self) -> dict[str, float | None]:
        """The step's replay metrics: `replay_distinct_share` (distinct states / examples held),
        `replay_top_share` (copies of the most copied state / examples held), `learned_late_share`
        (share of the examples drawn since the last call whose turn is >= late_turn). None (not
        defined) while the buffer still holds examples whose key or turn is unknown (resumed from a
        file of older azscale), or without a late turn."""
        keys = self.keys[:self.size]
        out: dict[str, float | None] = {"replay_distinct_share": None, "replay_top_share": None,
                                        "learned_late_share": None}
        if self.size and not (keys == UNKNOWN_KEY).any():
            _, counts = np.unique(keys, return_counts=True)
            out["replay_distinct_share"] = len(counts) / self.size
            out["replay_top_share"] = int(counts.max()) / self.size
        drawn, late = self._drawn.tolist()
        self._drawn.zero_()
        if drawn and bool((self.turn[:self.size] >= 0).all()):
            out["learned_late_share"] = late / drawn
        return out

    def copies_of(self, key: int) -> int:
        """How many examples of state `key` the buffer holds."""
        return int((self.keys[:self.size] == np.uint64(key)).sum())

    def state(self) -> dict[str, Any]:
        n = self.size
        return {"obs": self.obs[:n].float().cpu().numpy(), "legal": self.legal[:n].cpu().numpy(),
                "policy": self.policy[:n].cpu().numpy(), "value": self.value[:n].cpu().numpy(),
                "turn": self.turn[:n].cpu().numpy(), "keys": self.keys[:n].view(np.int64).copy(),
                "age": self.age[:n].copy(), "clock": self.clock, "pos": self.pos, "size": self.size}

    def load(self, st: dict[str, Any]) -> None:
        n = int(st["size"])
        if n:
            self.obs[:n] = torch.from_numpy(np.asarray(st["obs"], np.float32)).to(self.device, self.obs_dtype)
            self.legal[:n] = torch.from_numpy(np.asarray(st["legal"], bool)).to(self.device)
            self.policy[:n] = torch.from_numpy(np.asarray(st["policy"], np.float32)).to(self.device)
            self.value[:n] = torch.from_numpy(np.asarray(st["value"], np.float32)).to(self.device)
        self.keys[:n] = np.asarray(st["keys"], np.int64).view(np.uint64)     # (older layouts: `resume.upgrade`)
        self.turn[:n] = torch.from_numpy(np.asarray(st["turn"], np.int32)).to(self.device)
        self.age[:n] = np.asarray(st["age"], np.int64)
        self.clock = int(st["clock"])
        self.size, self.pos = n, int(st["pos"])
        if self.cap > 0:
            self._rebuild_copies()
        self._weights = None


def _last_write(slots: np.ndarray) -> np.ndarray:
    """Indices of the examples whose slot no later example of the same call overwrites."""
    rev = slots[::-1]
    _, first = np.unique(rev, return_index=True)
    return np.sort(len(slots) - 1 - first)


class Queue:
    """Training examples of finished games waiting for a learner step, in the order the games
    finished, with the games themselves. `take(n)` hands out exactly n examples; a game goes
    with the step that takes its last example."""

    FIELDS = ("obs", "legal", "policy", "value", "player", "turn")

    def __init__(self, obs_size: int, num_actions: int):
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in self.FIELDS}
        self.shapes = {"obs": (0, obs_size), "legal": (0, num_actions), "policy": (0, num_actions), "value": (0,),
                       "player": (0,), "turn": (0,)}
        self.dtypes = {"legal": bool, "player": np.int8, "turn": np.int32}
        self.games: list[dict[str, Any]] = []        # each with "_end": examples up to its last, from the front
        self.size = 0

    def put(self, played) -> None:
        ends = np.cumsum([g["length"] for g in played.games]) if played.games else []
        for g, e in zip(played.games, ends):
            self.games.append({**g, "_end": self.size + int(e)})
        for k in self.FIELDS:
            self.parts[k].append(getattr(played, k))
        self.size += len(played.obs)

    def _flat(self, k: str) -> np.ndarray:
        xs = self.parts[k]
        return np.concatenate(xs) if xs else np.zeros(self.shapes[k], self.dtypes.get(k, np.float32))

    def take(self, n: int):
        """(obs, legal, policy, value, player, turn, games) of the first n examples."""
        flat = {k: self._flat(k) for k in self.FIELDS}
        out = [flat[k][:n] for k in self.FIELDS]
        done = [g for g in self.games if g["_end"] <= n]
        self.games = [{**g, "_end": g["_end"] - n} for g in self.games if g["_end"] > n]
        self.parts = {k: [flat[k][n:]] for k in self.FIELDS}
        self.size -= n
        return (*out, [{k: v for k, v in g.items() if k != "_end"} for g in done])

    def state(self) -> dict[str, Any]:
        return {**{k: self._flat(k) for k in self.FIELDS}, "games": self.games, "size": self.size}

    def load(self, st: dict[str, Any]) -> None:
        size = int(st["size"])
        self.parts = {k: [np.asarray(st[k], self.dtypes.get(k))] for k in self.FIELDS}   # (older: `resume.upgrade`)
        self.games = [dict(g) for g in st["games"]]
        for g in self.games:                # a damaged game is refused here, not written with unknowns;
            runs.GameRecord.from_row({"game_id": -1, **g})   # (its id is given when a step takes it, and
                                                             # earlier azscale kept none in the queue)
        self.size = size
