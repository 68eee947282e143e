"""A run's resume state (`checkpoints/resume.pt`): one object, one writer, one reader, and one
adapter for the files of older azscale.

`ResumeState` is everything a run needs to continue exactly: the step, game and state counts
and wall time; the learner's weights, optimizer, replay buffer, sampling generator and torch's
global generator; the queue of finished games' examples not yet learned from; each actor's
generator and games in flight. `ResumeState.capture(...)` takes it from a running run and `write`
stores it (weights-only safe, atomically); `ResumeState.read` loads a file (weights-only),
checks its values (`check_values`: a damaged file is one line naming it) and brings older
layouts to today's (`upgrade`, the only place that knows them); `restore` puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoints as ck
from . import runs
from .errors import UserError
from .replay import UNKNOWN_TURN


@dataclass
class ResumeState:
    step: int
    games: int
    states: int
    wall_seconds: float
    model: dict[str, Any]
    optimizer: dict[str, Any]
    buffer: dict[str, Any]            # `ReplayBuffer.state()`
    learner_rng: Any                  # the learner's torch generator state
    torch_rng: torch.Tensor
    queue: dict[str, Any]             # `Queue.state()`
    actors: list[dict[str, Any]]      # per actor: {"generator": state, "packed": games in flight}

    @classmethod
    def capture(cls, learner, pool, step: int, games: int, states: int, wall: float) -> "ResumeState":
        return cls(step=step, games=games, states=states, wall_seconds=wall,
                   model=learner.model.state_dict(), optimizer=_cpu(learner.optimizer.state_dict()),
                   buffer=learner.buffer.state(), learner_rng=learner.generator.get_state(),
                   torch_rng=torch.get_rng_state(), queue=learner.queue.state(), actors=pool.snapshot())

    def write(self, path: Path, cfg) -> None:
        """The one writer: weights-only safe, atomic."""
        from .nets import FRAME_SIDE_TO_MOVE
        runs.atomic_torch_save(path, {
            "format": ck.RESUME_FORMAT, "config": cfg.to_dict(), "step": self.step, "games": self.games,
            "states": self.states, "wall_seconds": self.wall_seconds, "value_frame": FRAME_SIDE_TO_MOVE,
            "model": {k: v.detach().cpu() for k, v in self.model.items()}, "optimizer": self.optimizer,
            "buffer": runs.to_torch_safe(self.buffer), "learner_rng": {"torch_generator": self.learner_rng},
            "torch_rng": self.torch_rng, "queue": runs.to_torch_safe(self.queue),
            "actors": runs.to_torch_safe(self.actors)})

    @classmethod
    def read(cls, path: Path, *, capacity: int, obs_size: int, num_actions: int, actors: int) -> "ResumeState":
        """The one reader: load (weights-only), check every value, bring older layouts up to date."""
        return cls.from_loaded(ck.load_resume(path), path, capacity=capacity, obs_size=obs_size,
                               num_actions=num_actions, actors=actors)

    @classmethod
    def from_loaded(cls, data: dict[str, Any], path: Path, *, capacity: int, obs_size: int, num_actions: int,
                    actors: int) -> "ResumeState":
        """`read`'s checks and upgrade on a file already loaded by `checkpoints.load_resume`."""
        check_values(data, path, capacity, num_actions, actors)
        try:
            return cls(**upgrade(data, obs_size, num_actions))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise _damaged(path, runs._one_line(exc)[:100]) from None

    def restore(self, learner, path: Path) -> None:
        """The learner's part back in place (the actors' part: `restore_actors`)."""
        from .selfplay import restore_generator
        try:
            learner.model.load_state_dict(self.model)
            fused = learner.optimizer.defaults.get("fused")
            learner.optimizer.load_state_dict(self.optimizer)
            for group in learner.optimizer.param_groups:   # a state saved unfused would keep fused=None
                group["fused"] = fused
            learner.buffer.load(self.buffer)
            restore_generator(learner.generator, self.learner_rng)
            torch.set_rng_state(self.torch_rng)
            learner.queue.load(self.queue)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError, UserError) as exc:
            raise _damaged(path, runs._one_line(exc)[:100]) from None

    def restore_actors(self, pool, path: Path) -> None:
        try:
            pool.restore(self.actors)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise _damaged(path, f"actors: {runs._one_line(exc)[:100]}") from None


def _damaged(path: Path, what: str) -> UserError:
    return UserError(f"{path}: damaged resume file ({what}); start over with --restart or restore the file")


def upgrade(data: dict[str, Any], obs_size: int, num_actions: int) -> dict[str, Any]:
    """A loaded resume file (any layout azscale has written) as `ResumeState`'s fields. Older
    layouts, each brought to today's here and nowhere else:
    - no `wall_seconds`: 0;
    - `learner_rng` without the `torch_generator` wrapper: a numpy generator's state, from
      before the learner sampled on the device (`selfplay.restore_generator` seeds from it);
    - no `queue` (before finished games were queued between steps): an empty one;
    - queue or buffer examples without player, turn or state key (before the replay
      intervention): unknown (player -1, turn -1, key 0), so the replay metrics say "not
      defined" until they are learned from or overwritten;
    - actors with `rng` for `generator`, or one dict of per-move lists per game in flight
      (`slots`) instead of the packed arrays."""
    from .selfplay import Slot, pack_slots
    rng = data["learner_rng"]
    if isinstance(rng, dict) and "torch_generator" in rng:
        rng = rng["torch_generator"]
    q = data.get("queue")
    if q is None:
        q = {"obs": np.zeros((0, obs_size), np.float32), "legal": np.zeros((0, num_actions), bool),
             "policy": np.zeros((0, num_actions), np.float32), "value": np.zeros(0, np.float32),
             "games": [], "size": 0}
    q = dict(q)
    qn = int(q["size"])
    q.setdefault("player", np.full(qn, -1, np.int8))
    q.setdefault("turn", np.full(qn, UNKNOWN_TURN, np.int32))
    b = dict(data["buffer"])
    if "keys" not in b:
        n = int(b["size"])
        b.update(keys=np.zeros(n, np.int64), turn=np.full(n, UNKNOWN_TURN, np.int32),
                 age=np.arange(n, dtype=np.int64), clock=n)
    shape = _Shape(obs_size, num_actions)
    actors = []
    for a in data["actors"]:
        gen = a["generator"] if "generator" in a else a["rng"]
        packed = a["packed"] if "packed" in a else pack_slots([Slot(**s) for s in a["slots"]], shape)
        actors.append({"generator": gen, "packed": packed})
    return {"step": data["step"], "games": data["games"], "states": data["states"],
            "wall_seconds": float(data.get("wall_seconds", 0.0)), "model": data["model"],
            "optimizer": data["optimizer"], "buffer": b, "learner_rng": rng, "torch_rng": data["torch_rng"],
            "queue": q, "actors": actors}


@dataclass(frozen=True)
class _Shape:
    """What `pack_slots` needs of an engine."""
    obs_size: int
    num_actions: int


def _cpu(obj):
    """An optimizer state with its tensors on the CPU (so a resume file loads anywhere)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj


def check_values(snap: dict[str, Any], path: Path, capacity: int, num_actions: int, actors: int) -> None:
    """Refuse a resume file whose values (not only its shapes) could not have been written by a
    run: a weight, optimizer moment, buffered or queued example that is NaN or infinite, a buffer
    or queue whose counts disagree with its arrays, queued games whose ends lie outside the queue,
    an action id outside the game's, or another number of actors. Such a file would otherwise
    train on NaN, write duplicate game ids, or crash the game engine on a bad action."""
    def bad(what: str) -> UserError:
        return UserError(f"{path}: damaged resume file ({what}); start over with --restart or restore the file")

    def count(x: Any, what: str, lo: int = 0, hi: int | None = None) -> int:
        if isinstance(x, (np.integer, torch.Tensor)) and np.ndim(x) == 0:
            x = int(x)
        if not isinstance(x, int) or isinstance(x, bool) or x < lo or (hi is not None and x > hi):
            raise bad(f"{what} = {x!r}")
        return x

    def finite(x: Any, what: str) -> None:
        if isinstance(x, torch.Tensor):
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                raise bad(f"{what}: NaN or infinite values")
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f" and not np.isfinite(x).all():
            raise bad(f"{what}: NaN or infinite values")

    def rows(arrs: dict[str, Any], keys, n: int, what: str) -> None:
        for k in keys:
            a = arrs.get(k)
            if not hasattr(a, "shape") or len(a.shape) == 0 or a.shape[0] != n:
                raise bad(f"{what}.{k} does not hold {n} rows")
            finite(a, f"{what}.{k}")

    def actions_in_range(a: Any, what: str) -> None:
        a = np.asarray(a)
        if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= num_actions):
            raise bad(f"{what}: an action id outside 0..{num_actions - 1}")

    model = snap["model"]
    if not isinstance(model, dict):
        raise bad("model")
    for k, v in model.items():
        finite(v, f"model weight {k}")
    opt = snap["optimizer"]
    if isinstance(opt, dict) and isinstance(opt.get("state"), dict):
        for i, st in opt["state"].items():
            for k, v in (st.items() if isinstance(st, dict) else ()):
                finite(v, f"optimizer {k} of parameter {i}")
    b = snap["buffer"]
    if not isinstance(b, dict):
        raise bad("buffer")
    size = count(b.get("size"), "buffer size", 0, capacity)
    pos = count(b.get("pos"), "buffer position", 0, capacity - 1)
    if size < capacity and pos != size:
        raise bad(f"buffer position {pos} with {size} of {capacity} states filled")
    rows(b, ("obs", "legal", "policy", "value"), size, "buffer")
    if "keys" in b:
        rows(b, ("turn", "keys", "age"), size, "buffer")
    q = snap.get("queue")
    if q is not None:
        if not isinstance(q, dict) or not isinstance(q.get("games"), list):
            raise bad("queue")
        qsize = count(q.get("size"), "queue size")
        rows(q, ("obs", "legal", "policy", "value"), qsize, "queue")
        rows(q, [k for k in ("player", "turn") if k in q], qsize, "queue")
        ends = [g.get("_end") if isinstance(g, dict) else None for g in q["games"]]
        prev = 0
        for e in ends:
            e = count(e, "a queued game's end", 1, qsize)
            if e < prev:
                raise bad("queued games out of order")
            prev = e
        for g in q["games"]:
            actions_in_range(g.get("actions", []), "a queued game")
            if isinstance(g.get("game_id"), int) and g["game_id"] != -1:
                raise bad(f"a queued game carries game id {g['game_id']} (ids are given when a step takes it)")
    acts = snap["actors"]
    if not isinstance(acts, list) or len(acts) != actors:
        raise bad(f"{len(acts) if isinstance(acts, list) else 'no'} actor states for {actors} actors")
    for i, a in enumerate(acts):
        packed = a.get("packed") if isinstance(a, dict) else None
        if isinstance(packed, dict):
            actions_in_range(packed.get("actions", []), f"actors: packed games in flight of actor {i}")
            for k in ("obs", "policy"):
                if k in packed:
                    finite(np.asarray(packed[k]), f"actors: packed games in flight of actor {i} ({k})")
        elif isinstance(a, dict) and isinstance(a.get("slots"), list):
            for sl in a["slots"]:
                actions_in_range(sl.get("actions", []) if isinstance(sl, dict) else [],
                                 f"actors: games in flight of actor {i}")


