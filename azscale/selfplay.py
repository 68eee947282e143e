"""Self-play actors: many games in flight, one batched search per move for all of them.

An actor owns `games_in_flight` game slots. Each move searches every slot at once, picks a move
per slot (temperature for the first `temperature_drop` moves, then the most visited move),
records a training example per move, and replaces each finished game with a fresh one, so the
batch stays full. The whole move runs on the engine's device: root noise, action selection,
the engine step and the resets of finished games; the host receives the move's records once per
move. Games left unfinished at the end of a learner step carry over to the next step (as the
paper's asynchronous actors do) and are part of the actor's snapshot, so a resumed run
continues them exactly.

Randomness: one `torch.Generator` per actor on the engine's device, seeded from the run's seed
and the actor's index; its state is in the snapshot.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import TrainConfig
from .engines import make_engine
from .errors import UserError
from .nets import build
from .replay import game_turns
from .runs import GameRecord
from .search import MCTS, select_actions


def resolve_device(name: str, engine: str = "auto", game: str | None = None) -> torch.device:
    """The device named in the settings, resolved once: `auto` is CUDA when a GPU is visible and
    the game runs on a tensor twin (the pyspiel engine keeps its states on the host)."""
    if name == "auto":
        on_twin = True
        if game is not None:
            from .config import base_name
            from .engines import TWINS
            on_twin = engine != "spiel" and base_name(game) in TWINS
        return torch.device("cuda" if torch.cuda.is_available() and on_twin else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' was asked for but no CUDA GPU is visible (use --device cpu)")
    return torch.device(name)


def actor_devices(device: torch.device, actors: int) -> list[torch.device]:
    """The device of each actor process. On CUDA one process holds a GPU with all its games in
    flight: several actors are mapped one per visible GPU, or refused."""
    if device.type != "cuda" or actors == 1:
        return [device] * actors
    visible = torch.cuda.device_count()
    if actors > visible:
        raise UserError(f"{actors} actors on CUDA need {actors} GPUs ({visible} visible): one process holds a "
                        f"GPU with all its games in flight; set actors=1 and raise games_in_flight instead")
    return [torch.device("cuda", i) for i in range(actors)]


def use_compile(cfg: TrainConfig, device: torch.device) -> bool:
    """`compile = auto`: compile the search when it pays for its warm-up (a GPU, or at least 256
    games in flight on a CPU); `on` / `off` decide for themselves."""
    if cfg.compile == "auto":
        return device.type == "cuda" or cfg.games_in_flight >= 256
    return cfg.compile == "on"


def make_search(engine, model, cfg: TrainConfig, device: torch.device, simulations: int | None = None) -> MCTS:
    return MCTS(engine, model, cfg.simulations if simulations is None else simulations, cfg.c_puct,
                cfg.dirichlet_alpha, cfg.dirichlet_epsilon, compile=use_compile(cfg, device))


@dataclass
class Slot:
    actions: list[int] = field(default_factory=list)
    obs: list[np.ndarray] = field(default_factory=list)
    legal: list[np.ndarray] = field(default_factory=list)
    policy: list[np.ndarray] = field(default_factory=list)
    player: list[int] = field(default_factory=list)
    first_step: int = 0


def pack_slots(slots: list[Slot], engine) -> dict[str, np.ndarray]:
    """Games in flight as flat arrays: per game its move count and first step, per recorded
    move its action, player, observation, legal mask and search policy (`unpack_slots` undoes it)."""
    A, O = engine.num_actions, engine.obs_size
    rows = lambda k, shape, dt: (np.stack([r for s in slots for r in getattr(s, k)]).astype(dt, copy=False)  # noqa: E731
                                 if any(getattr(s, k) for s in slots) else np.zeros(shape, dt))
    return {"lengths": np.array([len(s.actions) for s in slots], dtype=np.int64),
            "first_step": np.array([s.first_step for s in slots], dtype=np.int64),
            "actions": np.array([a for s in slots for a in s.actions], dtype=np.int64),
            "player": np.array([p for s in slots for p in s.player], dtype=np.int8),
            "obs": rows("obs", (0, O), np.float32), "legal": rows("legal", (0, A), bool),
            "policy": rows("policy", (0, A), np.float32)}


def unpack_slots(packed: dict[str, np.ndarray]) -> list[Slot]:
    lengths = np.asarray(packed["lengths"], dtype=np.int64)
    n = int(lengths.sum())
    if (lengths.ndim != 1 or (lengths < 0).any() or len(packed["first_step"]) != len(lengths)
            or any(len(packed[k]) != n for k in ("actions", "player", "obs", "legal", "policy"))):
        raise ValueError("packed games in flight: the move arrays do not match the move counts")
    if (np.asarray(packed["actions"]) < 0).any():
        raise ValueError("packed games in flight: a negative action id")
    cuts = np.cumsum(lengths)[:-1]
    per = {k: np.split(np.asarray(packed[k]), cuts) for k in ("actions", "player", "obs", "legal", "policy")}
    return [Slot(actions=[int(a) for a in per["actions"][i]], obs=list(per["obs"][i]), legal=list(per["legal"][i]),
                 policy=list(per["policy"][i]), player=[int(p) for p in per["player"][i]],
                 first_step=int(packed["first_step"][i]))
            for i in range(len(lengths))]


@dataclass
class Played:
    """Games finished in one call of `Actor.play` (games-table rows, `GameRecord.row()`), and
    their training examples."""
    games: list[dict[str, Any]]
    obs: np.ndarray
    legal: np.ndarray
    policy: np.ndarray
    value: np.ndarray          # final outcome for the player to move (side-to-move frame)
    simulations: int
    net_calls: int
    net_states: int
    seconds: float
    player: np.ndarray         # the player to move (int8)
    turn: np.ndarray           # moves made before the example (int32; 0 = the initial state)


class Actor:
    def __init__(self, cfg: TrainConfig, index: int = 0, device: str | torch.device = "cpu",
                 engine=None, model: torch.nn.Module | None = None):
        self.cfg = cfg
        self.index = index
        self.engine = engine or make_engine(cfg.game, cfg.engine, device)
        self.device = torch.device(self.engine.device)
        self.model = model or build(cfg.family, self.engine.obs_shape, self.engine.num_actions,
                                    cfg.width, cfg.depth).to(self.device)
        self.model.eval()
        self.mcts = make_search(self.engine, self.model, cfg, self.device)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed_for(cfg.seed, 7919, index))
        self.slots = [Slot() for _ in range(cfg.games_in_flight)]
        self.states = self.engine.new_states(cfg.games_in_flight)
        self.moves = torch.zeros(cfg.games_in_flight, dtype=torch.int32, device=self.device)

    # -- state that a resumed run needs -------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The generator and the games in flight, packed into a few flat arrays (one row per
        recorded move, `lengths` moves per game): a handful of tensors whatever the number of
        moves, where one array per move made resume files slow to write (~6 s per actor at
        1,024 oware games) and slower to read."""
        return {"generator": self.generator.get_state(), "packed": pack_slots(self.slots, self.engine)}

    def restore(self, snap: dict[str, Any]) -> None:
        restore_generator(self.generator, snap["generator"])      # (older layouts: `resume.upgrade`)
        self.slots = unpack_slots(snap["packed"])
        self.states = self.engine.replay_many([s.actions for s in self.slots])
        self.moves = torch.tensor([len(s.actions) for s in self.slots], dtype=torch.int32, device=self.device)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
        self.model.eval()

    # -- play -----------------------------------------------------------------------------------
    def play(self, min_states: int, net_step: int, run: str = "", deadline: float | None = None,
             max_moves: int | None = None) -> Played:
        """Play until games with at least `min_states` recorded moves have finished (or, for
        benchmarks, until the `time.perf_counter()` deadline passes or `max_moves` moves)."""
        cfg, eng = self.cfg, self.engine
        t0 = time.perf_counter()
        st = self.mcts.stats
        s0 = (st.simulations, st.net_calls, st.net_states)
        games: list[dict[str, Any]] = []
        ex_obs, ex_legal, ex_pol, ex_val, ex_player = [], [], [], [], []
        done_states = 0
        for slot in self.slots:
            if not slot.actions:
                slot.first_step = net_step
        moves = 0
        while (done_states < min_states and (deadline is None or time.perf_counter() < deadline)
               and (max_moves is None or moves < max_moves)):
            moves += 1
            with torch.inference_mode():
                obs, legal, player, _, _ = eng.batch_info(self.states)
                res = self.mcts.run(self.states, noise=True, generator=self.generator)
                temps = torch.where(self.moves < cfg.temperature_drop, cfg.temperature, 0.0)
                actions = select_actions(res.visits, temps, self.generator)
                policy = res.visits / res.visits.sum(1, keepdim=True)
                self.states = eng.advance(self.states, actions)
                _, _, _, term, returns = eng.batch_info(self.states)
                self.moves = torch.where(term, 0, self.moves + 1)
                self.states = eng.reset_done(self.states, term)
            # the host sees the move once: its records and the finished games
            h_obs, h_legal, h_pol = obs.cpu().numpy(), legal.cpu().numpy(), policy.float().cpu().numpy()
            h_player, h_act = player.cpu().numpy(), actions.cpu().numpy()
            h_term, h_ret = term.cpu().numpy(), returns.cpu().numpy()
            for b, slot in enumerate(self.slots):
                slot.obs.append(h_obs[b])
                slot.legal.append(h_legal[b])
                slot.policy.append(h_pol[b])
                slot.player.append(int(h_player[b]))
                slot.actions.append(int(h_act[b]))
            for b in np.flatnonzero(h_term):
                slot = self.slots[b]
                ret = h_ret[b]
                players = np.array(slot.player)
                ex_obs.append(np.stack(slot.obs))
                ex_legal.append(np.stack(slot.legal))
                ex_pol.append(np.stack(slot.policy))
                ex_val.append(np.where(players == 1, ret[1], ret[0]).astype(np.float32))
                ex_player.append(players.astype(np.int8))
                games.append(GameRecord(            # its game id is given when a learner step takes it
                    run=run, kind="selfplay", game=cfg.game, actions=list(slot.actions),
                    return0=float(ret[0]), return1=float(ret[1]), net_step=net_step, net_step_first=slot.first_step,
                    seat0=run, seat1=run, temperature=cfg.temperature, temperature_drop=cfg.temperature_drop,
                    simulations=cfg.simulations).row())
                done_states += len(slot.actions)
                self.slots[b] = Slot(first_step=net_step)
        A, O = eng.num_actions, eng.obs_size
        cat = lambda xs, shape, dt: np.concatenate(xs) if xs else np.zeros(shape, dt)  # noqa: E731
        return Played(games, cat(ex_obs, (0, O), np.float32), cat(ex_legal, (0, A), bool),
                      cat(ex_pol, (0, A), np.float32), cat(ex_val, (0,), np.float32),
                      st.simulations - s0[0], st.net_calls - s0[1], st.net_states - s0[2],
                      time.perf_counter() - t0, cat(ex_player, (0,), np.int8),
                      game_turns([len(p) for p in ex_player]))


def restore_generator(generator: torch.Generator, state) -> None:
    """Put a saved generator state back. A state saved on the same kind of device is restored
    exactly. A state from another device kind (a run resumed on a GPU after starting on the CPU:
    `device` may change on resume) or a numpy generator's state (files written before the search
    moved to the device) cannot be: the generator is then seeded deterministically from it, so
    the resumed run is still reproducible, though its draws differ from an unbroken run's."""
    if isinstance(state, torch.Tensor):
        try:
            generator.set_state(state)
            return
        except (RuntimeError, ValueError):
            seed = int.from_bytes(hashlib.blake2b(state.cpu().numpy().tobytes(), digest_size=8).digest(), "little")
    else:
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        seed = int(rng.integers(2 ** 62))
    generator.manual_seed(seed >> 1)


def seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence mixing)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> np.uint64(1))


# -- actors in worker processes ---------------------------------------------------------------

def _worker(conn, cfg_dict: dict[str, Any], index: int, device: str) -> None:
    """An actor process: answers the pool's commands until told to close. Whatever it raises is
    sent to the parent as ("failed", what, traceback) instead of dying with a traceback on the
    terminal and leaving the parent an EOFError: the parent ends with one line and writes the
    traceback to the run's log."""
    from .procs import die_with_parent
    die_with_parent()
    # The search's graphs compile in this process, without a pool of compile workers: n actors
    # would each start one (n x cores processes, each importing torch) for a few graphs.
    import torch._inductor.config as inductor_config
    inductor_config.compile_threads = 1
    try:
        _serve(conn, cfg_dict, index, device)
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return                                      # the parent is gone or stopping: nothing to say
    except BaseException as exc:
        import traceback
        try:
            conn.send(("failed", f"{type(exc).__name__}: {_short(exc)}", traceback.format_exc()))
        except (OSError, ValueError):
            pass


def _short(exc: BaseException) -> str:
    from .runs import _one_line
    return _one_line(exc)[:200]


def _serve(conn, cfg_dict: dict[str, Any], index: int, device: str) -> None:
    torch.set_num_threads(1)
    from .nets import flush_subnormals
    flush_subnormals()
    from .config import from_dict
    actor = Actor(from_dict(cfg_dict), index, device)
    while True:
        cmd, arg = conn.recv()
        if cmd == "play":
            weights, min_states, net_step, run = arg
            actor.load_weights(weights)
            conn.send(actor.play(min_states, net_step, run))
        elif cmd == "snapshot":
            conn.send(actor.snapshot())
        elif cmd == "restore":
            try:
                actor.restore(arg)
                conn.send(True)
            except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
                conn.send(("damaged", str(exc) or type(exc).__name__))      # the parent names the file
        elif cmd == "close":
            return


class ActorPool:
    """`n` actors, in this process when n == 1, else one worker process each (each on its own
    device: see `actor_devices`). Results are gathered in actor order, so a run is deterministic
    for a given seed and actor count."""

    def __init__(self, cfg: TrainConfig, n: int, model: torch.nn.Module, device: torch.device,
                 log: Path | None = None):
        self.cfg = cfg
        self.n = n
        self.model = model
        self.log = log              # where a failed actor's traceback is written (the run's actors.log)
        self.local: Actor | None = None
        self.procs, self.conns = [], []
        devices = actor_devices(torch.device(device), n)
        if n == 1:
            self.local = Actor(cfg, 0, devices[0], model=model)
            return
        import multiprocessing as mp

        from .procs import workers_ignore_interrupt
        ctx = mp.get_context("spawn")
        try:
            with workers_ignore_interrupt():        # Ctrl-C is the parent's alone: no worker tracebacks
                for i in range(n):
                    parent, child = ctx.Pipe()
                    p = ctx.Process(target=_worker, args=(child, cfg.to_dict(), i, str(devices[i])), daemon=True)
                    p.start()
                    child.close()
                    self.procs.append(p)
                    self.conns.append(parent)
        except BaseException:           # a Ctrl-C held back while they started is raised here
            for p in self.procs:
                p.kill()
                p.join()
            raise

    def play(self, min_states: int, net_step: int, run: str) -> list[Played]:
        if self.local is not None:
            self.model.eval()
            return [self.local.play(min_states, net_step, run)]
        share = -(-min_states // self.n)
        weights = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        self._send_all(("play", (weights, share, net_step, run)))
        return [self._recv(i) for i in range(self.n)]

    def snapshot(self) -> list[dict[str, Any]]:
        if self.local is not None:
            return [self.local.snapshot()]
        self._send_all(("snapshot", None))
        return [self._recv(i) for i in range(self.n)]

    def _send_all(self, msg) -> None:
        for i, c in enumerate(self.conns):
            try:
                c.send(msg)
            except (BrokenPipeError, OSError):
                self._recv(i)                   # it ended: say why (its last words, or its exit code)

    def _recv(self, i: int) -> Any:
        """Actor i's reply; an actor that failed or died is one UserError naming it and what it
        raised, with its traceback written to `self.log`."""
        try:
            reply = self.conns[i].recv()
        except (EOFError, OSError):
            p = self.procs[i]
            p.join(timeout=5)
            raise UserError(f"self-play actor {i} ended without a reply (exit code {p.exitcode}; killed by the "
                            f"system, or out of memory?); rerun to resume") from None
        if isinstance(reply, tuple) and len(reply) == 3 and reply[0] == "failed":
            where = self._write_log(i, reply[2])
            raise UserError(f"self-play actor {i} failed: {reply[1]}"
                            + (f" (its traceback: {where})" if where else ""))
        return reply

    def _write_log(self, i: int, text: str) -> str | None:
        if self.log is None:
            return None
        try:
            with open(self.log, "a") as fh:
                fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  self-play actor {i} failed:\n{text}\n")
        except OSError:
            return None
        return str(self.log)

    def restore(self, snaps: list[dict[str, Any]]) -> None:
        if self.local is not None:
            self.local.restore(snaps[0])
            return
        for c, s in zip(self.conns, snaps):
            c.send(("restore", s))
        replies = [self._recv(i) for i in range(self.n)]
        bad = [r[1] for r in replies if r is not True]
        if bad:
            raise ValueError(bad[0])

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
