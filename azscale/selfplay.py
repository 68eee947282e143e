"""Self-play actors: many games in flight, one batched search per move for all of them.

An actor owns `games_in_flight` game slots. Each wave of play searches every slot at once,
picks a move per slot (temperature for the first `temperature_drop` moves, then the most
visited move), records a training example per move, and replaces each finished game with a
fresh one, so the batch stays full. Games left unfinished at the end of a learner step carry
over to the next step (as the paper's asynchronous actors do) and are part of the actor's
snapshot, so a resumed run continues them exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import TrainConfig
from .engines import make_engine
from .nets import build
from .search import BatchedMCTS, select_actions


def make_evaluator(model: torch.nn.Module, device: torch.device | str = "cpu"):
    """Wrap a network as a search evaluator: masked-softmax priors and side-to-move values."""
    device = torch.device(device)

    def evaluate(obs: np.ndarray, legal: np.ndarray):
        with torch.inference_mode():
            x = torch.from_numpy(obs).to(device)
            logits, v = model(x)
            mask = torch.from_numpy(legal).to(device)
            p = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=1)
        return p.float().cpu().numpy(), v.float().cpu().numpy()

    return evaluate


def make_search(engine, model, device, simulations, c_puct=2.0, alpha=1.0, epsilon=0.25):
    """The device-resident tensor search for tensor engines, the array search for pyspiel."""
    if getattr(engine, "name", "") == "tensor":
        from .search_tensor import TensorMCTS
        return TensorMCTS(engine, model, simulations, c_puct, alpha, epsilon)
    return BatchedMCTS(engine, make_evaluator(model, device), simulations, c_puct, alpha, epsilon)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from .errors import UserError
        raise UserError(f"device '{name}' was asked for but no CUDA GPU is visible (use --device cpu)")
    return torch.device(name)


@dataclass
class Slot:
    actions: list[int] = field(default_factory=list)
    obs: list[np.ndarray] = field(default_factory=list)
    legal: list[np.ndarray] = field(default_factory=list)
    policy: list[np.ndarray] = field(default_factory=list)
    player: list[int] = field(default_factory=list)
    first_step: int = 0


@dataclass
class Played:
    """Games finished in one call of `Actor.play`, and their training examples."""
    games: list[dict[str, Any]]
    obs: np.ndarray
    legal: np.ndarray
    policy: np.ndarray
    value: np.ndarray          # final outcome for the player to move (side-to-move frame)
    simulations: int
    net_calls: int
    net_states: int
    net_seconds: float
    seconds: float


class Actor:
    def __init__(self, cfg: TrainConfig, index: int = 0, device: str | torch.device = "cpu",
                 engine=None, model: torch.nn.Module | None = None):
        self.cfg = cfg
        self.index = index
        self.device = torch.device(device)
        self.engine = engine or make_engine(cfg.game, cfg.engine, self.device)
        self.model = model or build(cfg.family, self.engine.obs_shape, self.engine.num_actions,
                                    cfg.width, cfg.depth).to(self.device)
        self.model.eval()
        self.mcts = make_search(self.engine, self.model, self.device, cfg.simulations, cfg.c_puct,
                                cfg.dirichlet_alpha, cfg.dirichlet_epsilon)
        self.rng = np.random.default_rng([cfg.seed, 7919, index])
        self.slots = [Slot() for _ in range(cfg.games_in_flight)]
        self.states = self.engine.new_states(cfg.games_in_flight)

    # -- state that a resumed run needs -------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "slots": [vars(s) for s in self.slots]}

    def restore(self, snap: dict[str, Any]) -> None:
        self.rng.bit_generator.state = snap["rng"]
        self.slots = [Slot(**s) for s in snap["slots"]]
        self.states = self.engine.replay_many([s.actions for s in self.slots])

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
        self.model.eval()

    # -- play -----------------------------------------------------------------------------------
    def play(self, min_states: int, net_step: int, run: str = "", deadline: float | None = None) -> Played:
        """Play until games with at least `min_states` recorded moves have finished (or, for
        benchmarks, until the `time.perf_counter()` deadline passes)."""
        cfg = self.cfg
        t0 = time.perf_counter()
        s0 = (self.mcts.stats.simulations, self.mcts.stats.net_calls, self.mcts.stats.net_states,
              self.mcts.stats.net_seconds)
        games: list[dict[str, Any]] = []
        ex_obs, ex_legal, ex_pol, ex_val = [], [], [], []
        done_states = 0
        for slot in self.slots:
            if not slot.actions:
                slot.first_step = net_step
        while done_states < min_states and (deadline is None or time.perf_counter() < deadline):
            info = self.engine.info(self.states)
            result = self.mcts.run(self.states, self.rng, noise=True, root_info=info)
            moves = np.array([len(s.actions) for s in self.slots])
            temps = np.where(moves < cfg.temperature_drop, cfg.temperature, 0.0)
            actions = select_actions(result.visits, temps, self.rng)
            policy = result.visits / result.visits.sum(1, keepdims=True)
            for b, slot in enumerate(self.slots):
                slot.obs.append(info.obs[b])
                slot.legal.append(info.legal[b])
                slot.policy.append(policy[b].astype(np.float32))
                slot.player.append(int(info.player[b]))
                slot.actions.append(int(actions[b]))
            self.engine.apply(self.states, actions)
            after = self.engine.info(self.states)
            for b in np.nonzero(after.terminal)[0]:
                slot = self.slots[b]
                ret = after.returns[b]
                players = np.array(slot.player)
                ex_obs.append(np.stack(slot.obs))
                ex_legal.append(np.stack(slot.legal))
                ex_pol.append(np.stack(slot.policy))
                ex_val.append(np.where(players == 1, ret[1], ret[0]).astype(np.float32))
                games.append({
                    "run": run, "kind": "selfplay", "game": cfg.game,
                    "net_step": net_step, "net_step_first": slot.first_step,
                    "seat0": run, "seat1": run,
                    "temperature": cfg.temperature, "temperature_drop": cfg.temperature_drop,
                    "simulations": cfg.simulations, "actions": list(slot.actions),
                    "return0": float(ret[0]), "return1": float(ret[1]), "length": len(slot.actions),
                })
                done_states += len(slot.actions)
                self.slots[b] = Slot(first_step=net_step)
            if after.terminal.any():
                self.engine.reset(self.states, np.flatnonzero(after.terminal))
        st = self.mcts.stats
        A, O = self.engine.num_actions, self.engine.obs_size
        cat = lambda xs, shape, dt: np.concatenate(xs) if xs else np.zeros(shape, dt)  # noqa: E731
        return Played(games, cat(ex_obs, (0, O), np.float32), cat(ex_legal, (0, A), bool),
                      cat(ex_pol, (0, A), np.float32), cat(ex_val, (0,), np.float32),
                      st.simulations - s0[0], st.net_calls - s0[1], st.net_states - s0[2],
                      st.net_seconds - s0[3], time.perf_counter() - t0)


# -- actors in worker processes ---------------------------------------------------------------

def _worker(conn, cfg_dict: dict[str, Any], index: int) -> None:
    from .procs import die_with_parent
    die_with_parent()
    torch.set_num_threads(1)
    from .config import from_dict
    actor = Actor(from_dict(cfg_dict), index)
    while True:
        try:
            cmd, arg = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if cmd == "play":
            weights, min_states, net_step, run = arg
            actor.load_weights(weights)
            conn.send(actor.play(min_states, net_step, run))
        elif cmd == "snapshot":
            conn.send(actor.snapshot())
        elif cmd == "restore":
            actor.restore(arg)
            conn.send(True)
        elif cmd == "close":
            return


class ActorPool:
    """`n` actors, in this process when n == 1, else one worker process each. Results are
    gathered in actor order, so a run is deterministic for a given seed and actor count."""

    def __init__(self, cfg: TrainConfig, n: int, model: torch.nn.Module, device: torch.device):
        self.cfg = cfg
        self.n = n
        self.model = model
        self.local: Actor | None = None
        self.procs, self.conns = [], []
        if n == 1:
            self.local = Actor(cfg, 0, device, model=model)
            return
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, cfg.to_dict(), i), daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)

    def play(self, min_states: int, net_step: int, run: str) -> list[Played]:
        if self.local is not None:
            self.model.eval()
            return [self.local.play(min_states, net_step, run)]
        share = -(-min_states // self.n)
        weights = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        for c in self.conns:
            c.send(("play", (weights, share, net_step, run)))
        return [c.recv() for c in self.conns]

    def snapshot(self) -> list[dict[str, Any]]:
        if self.local is not None:
            return [self.local.snapshot()]
        for c in self.conns:
            c.send(("snapshot", None))
        return [c.recv() for c in self.conns]

    def restore(self, snaps: list[dict[str, Any]]) -> None:
        if self.local is not None:
            self.local.restore(snaps[0])
            return
        for c, s in zip(self.conns, snaps):
            c.send(("restore", s))
        for c in self.conns:
            c.recv()

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
