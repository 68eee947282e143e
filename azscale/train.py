"""Training: self-play actors feed a replay buffer; the learner updates the network.

One learner step, top to bottom (the paper's scheme, PAPER.md section 3):
  1. the actors play with the current network; states of finished games queue up until exactly
     `states_per_step` (= buffer / reuse) of them are there (a step may end in the middle of a
     move's finished games: the rest stay queued for the next step, so the number of games in
     flight never changes how many states a step learns from);
  2. those states enter the replay buffer (a ring of `buffer_size` states, tensors on the
     learner's device, observations in the smallest exact dtype);
  3. the learner runs `updates_per_step` Adam updates (fused where torch has it) on minibatches
     of `batch_size` states sampled on the device; loss = policy cross-entropy to the search's
     visit distribution + value MSE to the game outcome + weight_decay/2 * sum of squared weights
     (L2 in the loss); the host reads the step's losses once;
  4. the games whose last state entered the buffer go to `games/part-<step>.parquet`, the step's
     numbers to `metrics.jsonl`, the weights to `checkpoints/step-<step>.pt` at the log-spaced
     checkpoint steps, and, when due, everything needed to continue (the queue included) to
     `checkpoints/resume.pt`.
Actors wait while the learner works, which makes a run exactly reproducible from its seed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoints as ck
from . import runs
from .config import TrainConfig
from .engines import make_engine
from .errors import UserError, out_of_memory
from .nets import FRAME_SIDE_TO_MOVE, build, flush_subnormals, param_count
from .selfplay import ActorPool, resolve_device, restore_generator, seed_for


class ReplayBuffer:
    """A ring of `capacity` training examples, as tensors on the learner's device. Observations
    are kept in `obs_dtype` (bool for games whose observations are 0/1 planes: exact, and a
    quarter of float32's memory)."""

    def __init__(self, capacity: int, obs_size: int, num_actions: int, device="cpu", obs_dtype=torch.float32):
        self.capacity = capacity
        self.device = torch.device(device)
        self.obs_dtype = obs_dtype
        z = lambda *shape, dt: torch.zeros(shape, dtype=dt, device=self.device)  # noqa: E731
        self.obs = z(capacity, obs_size, dt=obs_dtype)
        self.legal = z(capacity, num_actions, dt=torch.bool)
        self.policy = z(capacity, num_actions, dt=torch.float32)
        self.value = z(capacity, dt=torch.float32)
        self.size = 0
        self.pos = 0

    def add(self, obs, legal, policy, value) -> None:
        n = len(obs)
        if n >= self.capacity:
            obs, legal, policy, value = obs[-self.capacity:], legal[-self.capacity:], \
                policy[-self.capacity:], value[-self.capacity:]
            n = self.capacity
        if self.obs_dtype == torch.bool and not np.isin(obs, (0.0, 1.0)).all():
            raise RuntimeError("an observation outside {0, 1} for a game declared to have 0/1 planes")
        dev = self.device
        idx = torch.remainder(torch.arange(self.pos, self.pos + n, device=dev), self.capacity)
        self.obs[idx] = torch.from_numpy(np.asarray(obs)).to(dev, self.obs_dtype)
        self.legal[idx] = torch.from_numpy(np.asarray(legal)).to(dev)
        self.policy[idx] = torch.from_numpy(np.asarray(policy, np.float32)).to(dev)
        self.value[idx] = torch.from_numpy(np.asarray(value, np.float32)).to(dev)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = int(min(self.capacity, self.size + n))

    def sample(self, n: int, generator: torch.Generator):
        idx = torch.randint(0, self.size, (n,), generator=generator, device=self.device)
        return self.obs[idx].float(), self.legal[idx], self.policy[idx], self.value[idx]

    def state(self) -> dict[str, Any]:
        n = self.size
        return {"obs": self.obs[:n].float().cpu().numpy(), "legal": self.legal[:n].cpu().numpy(),
                "policy": self.policy[:n].cpu().numpy(), "value": self.value[:n].cpu().numpy(),
                "pos": self.pos, "size": self.size}

    def load(self, st: dict[str, Any]) -> None:
        n = int(st["size"])
        if n:
            self.obs[:n] = torch.from_numpy(np.asarray(st["obs"], np.float32)).to(self.device, self.obs_dtype)
            self.legal[:n] = torch.from_numpy(np.asarray(st["legal"], bool)).to(self.device)
            self.policy[:n] = torch.from_numpy(np.asarray(st["policy"], np.float32)).to(self.device)
            self.value[:n] = torch.from_numpy(np.asarray(st["value"], np.float32)).to(self.device)
        self.size, self.pos = n, int(st["pos"])


class Queue:
    """Training examples of finished games waiting for a learner step, in the order the games
    finished, with the games themselves. `take(n)` hands out exactly n examples; a game goes
    with the step that takes its last example."""

    def __init__(self, obs_size: int, num_actions: int):
        self.parts: dict[str, list[np.ndarray]] = {"obs": [], "legal": [], "policy": [], "value": []}
        self.shapes = {"obs": (0, obs_size), "legal": (0, num_actions), "policy": (0, num_actions), "value": (0,)}
        self.games: list[dict[str, Any]] = []        # each with "_end": examples up to its last, from the front
        self.size = 0

    def put(self, played) -> None:
        ends = np.cumsum([g["length"] for g in played.games]) if played.games else []
        for g, e in zip(played.games, ends):
            self.games.append({**g, "_end": self.size + int(e)})
        for k in self.parts:
            self.parts[k].append(getattr(played, k))
        self.size += len(played.obs)

    def _flat(self, k: str) -> np.ndarray:
        xs = self.parts[k]
        return np.concatenate(xs) if xs else np.zeros(self.shapes[k], bool if k == "legal" else np.float32)

    def take(self, n: int):
        """(obs, legal, policy, value, games) of the first n examples."""
        flat = {k: self._flat(k) for k in self.parts}
        out = [flat[k][:n] for k in ("obs", "legal", "policy", "value")]
        done = [g for g in self.games if g["_end"] <= n]
        self.games = [{**g, "_end": g["_end"] - n} for g in self.games if g["_end"] > n]
        self.parts = {k: [flat[k][n:]] for k in self.parts}
        self.size -= n
        return (*out, [{k: v for k, v in g.items() if k != "_end"} for g in done])

    def state(self) -> dict[str, Any]:
        return {**{k: self._flat(k) for k in self.parts}, "games": self.games, "size": self.size}

    def load(self, st: dict[str, Any]) -> None:
        self.parts = {k: [np.asarray(st[k])] for k in self.parts}
        self.games = [dict(g) for g in st["games"]]
        for g in self.games:                # a damaged game is refused here, not written with unknowns;
            runs.GameRecord.from_row({"game_id": -1, **g})   # (its id is given when a step takes it, and
                                                             # earlier azscale kept none in the queue)
        self.size = int(st["size"])


def l2_penalty(model: torch.nn.Module) -> torch.Tensor:
    """sum(w^2)/2 over weights (biases excluded), as OpenSpiel's AlphaZero adds to its loss."""
    return sum((p * p).sum() for n, p in model.named_parameters() if not n.endswith("bias")) / 2


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused (one kernel for all parameters) on the devices where torch has it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)


def learner_update(model, optimizer, buffer: ReplayBuffer, cfg: TrainConfig, generator) -> dict[str, float]:
    """`updates_per_step` Adam updates; the losses stay on the device until one read at the end."""
    model.train()
    totals = torch.zeros(3, device=buffer.device)
    for _ in range(cfg.updates_per_step):
        obs, legal, target_p, target_v = buffer.sample(cfg.batch_size, generator)
        logits, v = model(obs)
        logp = torch.log_softmax(logits.masked_fill(~legal, -1e9), dim=1)
        loss_p = -(target_p * logp).sum(1).mean()
        loss_v = F.mse_loss(v, target_v)
        loss_l2 = cfg.weight_decay * l2_penalty(model)
        loss = loss_p + loss_v + loss_l2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals += torch.stack([loss_p.detach(), loss_v.detach(), loss_l2.detach()])
    model.eval()
    lp, lv, l2 = (totals / cfg.updates_per_step).tolist()          # the step's one host read
    return {"loss_policy": lp, "loss_value": lv, "loss_l2": l2}


def _start_over(run_dir: Path) -> None:
    """`--restart`: delete a run's records (asked for explicitly), so it trains from step 0. Every
    check comes first (the directory is a run, holds nothing azscale did not write, no link), so
    a refusal deletes nothing."""
    runs.claim_dir(run_dir, "run")
    ck.check_own_files(run_dir, restart=True)
    for sub in ("games", ck.CHECKPOINT_DIR, "tensorboard"):
        p = run_dir / sub
        if p.exists():
            shutil.rmtree(p)
    for f in (ck.METRICS_FILE, ck.CONFIG_FILE):
        (run_dir / f).unlink(missing_ok=True)
    for e in os.scandir(run_dir):                   # a write a kill interrupted (checked above)
        if e.name.startswith(".") and e.name.endswith(".tmp"):
            os.unlink(e.path)


def train(cfg: TrainConfig, run_dir: Path, run_name: str | None = None, quiet: bool = False,
          tensorboard: bool = False, max_seconds: float | None = None, restart: bool = False) -> dict[str, Any]:
    """Train (or resume) the run in `run_dir`. Returns a summary of the finished run.

    `restart` deletes the run's records first (the only way azscale deletes recorded games)."""
    flush_subnormals()              # before torch starts its intra-op threads, which inherit it
    run_dir = Path(run_dir)
    runs.claim_dir(run_dir, "run")               # before the lock file is created in it
    run_dir.mkdir(parents=True, exist_ok=True)
    with runs.RunLock(run_dir):
        return _train_locked(cfg, run_dir, run_name, quiet, tensorboard, max_seconds, restart)


def _train_locked(cfg, run_dir, run_name, quiet, tensorboard, max_seconds, restart=False):
    if restart:
        _start_over(run_dir)
    ck.check_own_files(run_dir)
    stored = ck.check_settings(run_dir, cfg)
    resume_path = ck.resume_file(run_dir)
    snap = None
    if stored is not None:
        meta = ck.read_run_config(run_dir)
        run_name, run_id = meta["run"], meta.get("run_id") or runs.new_identity()
        if resume_path.exists():
            snap = ck.load_resume(resume_path)
            ck.run_status(run_dir, resume=snap["step"])       # every record up to it is there
            ck.check_kept_records(run_dir, run_name, snap["step"], snap["games"], snap["states"])
            if cfg.steps < snap["step"]:
                raise UserError(f"{run_dir} has already trained {snap['step']} steps; --steps {cfg.steps} "
                                f"would undo them (ask for at least {snap['step']})")
        else:
            later = [p for p in ck.step_checkpoints(run_dir) if runs.part_step(p) > 0]
            if ck.run_status(run_dir, resume=None).recorded or later:
                raise UserError(f"{run_dir}: checkpoints/resume.pt is missing, so the recorded games cannot be "
                                f"continued exactly; to start over deliberately rerun with --restart (deletes "
                                f"its games), or move the directory away")
            stored = None                                        # nothing recorded yet: a fresh start
    else:
        run_name, run_id = run_name or run_dir.name, runs.new_identity()
    device = resolve_device(cfg.device, cfg.engine, cfg.game)
    engine = make_engine(cfg.game, cfg.engine, device)
    if device.type != "cpu" and engine.name == "spiel":
        raise UserError(f"the pyspiel engine searches on the CPU; {cfg.game} has no tensor twin for "
                        f"device '{cfg.device}' (use --device cpu)")
    torch.manual_seed(cfg.seed)
    try:
        model = build(cfg.family, engine.obs_shape, engine.num_actions, cfg.width, cfg.depth).to(device)
        optimizer = make_optimizer(model, cfg, device)
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        raise UserError(f"not enough memory on {device} for the network of settings 'width' {cfg.width} and "
                        f"'depth' {cfg.depth}; choose smaller ones") from None
    obs_dtype = engine.obs_dtype
    try:
        buffer = ReplayBuffer(cfg.buffer_size, engine.obs_size, engine.num_actions, device, obs_dtype)
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        per = engine.obs_size * torch.tensor([], dtype=obs_dtype).element_size() + engine.num_actions * 5 + 4
        raise UserError(f"not enough memory on {device} for the replay buffer: setting 'buffer_size' "
                        f"{cfg.buffer_size:,} states of {per:,} bytes need {cfg.buffer_size * per / 1e9:.1f} GB; "
                        f"choose a smaller buffer_size") from None
    queue = Queue(engine.obs_size, engine.num_actions)
    generator = torch.Generator(device)
    generator.manual_seed(seed_for(cfg.seed, 104729))
    step, games_total, states_total, wall_before = 0, 0, 0, 0.0
    actor_snaps = None

    if snap is not None:
        _check_resume_values(snap, resume_path, buffer.capacity, engine.num_actions, cfg.actors)
        try:
            model.load_state_dict(snap["model"])
            fused = optimizer.defaults.get("fused")
            optimizer.load_state_dict(snap["optimizer"])
            for group in optimizer.param_groups:          # a state saved unfused would keep fused=None
                group["fused"] = fused
            buffer.load(snap["buffer"])
            _restore_generator(generator, snap["learner_rng"])
            torch.set_rng_state(snap["torch_rng"])
            if "queue" in snap:
                queue.load(snap["queue"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError, UserError) as exc:
            raise UserError(f"{resume_path}: damaged resume file ({runs._one_line(exc)[:100]}); "
                            f"start over with --restart or restore the file") from None
        step, games_total, states_total = snap["step"], snap["games"], snap["states"]
        wall_before = snap.get("wall_seconds", 0.0)
        actor_snaps = snap["actors"]
        ck.truncate_after(run_dir, step)
    else:
        for sub in ("games", ck.CHECKPOINT_DIR):
            shutil.rmtree(run_dir / sub, ignore_errors=True)     # holds no recorded game (checked above)
        (run_dir / ck.METRICS_FILE).unlink(missing_ok=True)
        (run_dir / "actors.log").unlink(missing_ok=True)         # a failed actor's traceback of the old records
    runs.atomic_write_json(run_dir / ck.CONFIG_FILE, {
        "kind": "run", "settings": cfg.to_dict(), "run": run_name, "run_id": run_id, "engine": engine.name,
        "params": param_count(model), "value_frame": FRAME_SIDE_TO_MOVE,
        "obs_shape": list(engine.obs_shape), "num_actions": engine.num_actions,
        "checkpoint_steps": cfg.checkpoint_steps(), "states_per_step": cfg.states_per_step,
        "environment": runs.environment()})
    (run_dir / "games").mkdir(exist_ok=True)
    (run_dir / ck.CHECKPOINT_DIR).mkdir(exist_ok=True)
    if step == 0:
        runs.atomic_torch_save(ck.checkpoint_file(run_dir, 0),
                               ck.checkpoint_payload(model, cfg, 0, 0, 0, run_name, run_id))

    writer = None
    if tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs the tensorboard package "
                            "(pip install 'azscale[tensorboard]')") from None
        writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step + 1)
        from .tboard import scalar_name, write_hparams
        write_hparams(writer, cfg, param_count(model))

    pool = ActorPool(cfg, cfg.actors, model, device, log=run_dir / "actors.log")
    ckpt_steps = set(cfg.checkpoint_steps())
    bar = None
    if not quiet:
        from .progress import bar as progress_bar
        bar = progress_bar(total=cfg.steps, initial=step, desc=f"train {run_name}", unit="step")
    t_start = time.perf_counter()
    last_snapshot = time.perf_counter()
    try:
        if actor_snaps is not None:
            try:
                pool.restore(actor_snaps)
            except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
                raise UserError(f"{resume_path}: damaged resume file (actors: {runs._one_line(exc)[:100]}); "
                                f"start over with --restart or restore the file") from None
        saved_step = step

        def save_resume():
            nonlocal saved_step
            _write_resume(resume_path, model, optimizer, buffer, generator, queue, pool, cfg, step,
                          games_total, states_total, wall_before + time.perf_counter() - t_start)
            saved_step = step

        if not resume_path.exists():
            save_resume()           # a new run can be resumed from its first moment on
        while step < cfg.steps:
            if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                if saved_step != step:  # a time-limited stop keeps everything played so far
                    save_resume()
                break
            t0 = time.perf_counter()
            played = []
            while queue.size < cfg.states_per_step:       # (none when earlier moves left enough queued)
                for p in pool.play(cfg.states_per_step - queue.size, step, run_name):
                    queue.put(p)
                    played.append(p)
            t_play = time.perf_counter() - t0
            obs, legal, policy, value, games = queue.take(cfg.states_per_step)
            buffer.add(obs, legal, policy, value)
            rows = [runs.GameRecord.from_row({**g, "game_id": games_total + k}) for k, g in enumerate(games)]
            new_states = len(obs)
            t1 = time.perf_counter()
            losses = learner_update(model, optimizer, buffer, cfg, generator)
            t_learn = time.perf_counter() - t1
            step += 1
            games_total += len(rows)
            states_total += new_states
            runs.write_games_part(run_dir, step, rows, cfg.game)
            sims = sum(p.simulations for p in played)
            net_calls = sum(p.net_calls for p in played)
            record = {
                "step": step, **losses, "games": len(rows), "games_total": games_total,
                "states": new_states, "states_total": states_total,
                "buffer_fill": buffer.size / buffer.capacity,
                "states_played": sum(len(p.obs) for p in played), "states_queued": queue.size,
                "states_per_s": sum(len(p.obs) for p in played) / max(t_play, 1e-9),
                "simulations_per_s": sims / max(t_play, 1e-9),
                "mean_net_batch": sum(p.net_states for p in played) / max(net_calls, 1),
                "selfplay_seconds": t_play, "learner_seconds": t_learn,
                "wall_seconds": wall_before + time.perf_counter() - t_start,
                "mean_game_length": float(np.mean([r.length for r in rows])) if rows else 0.0,
                "p0_win_rate": float(np.mean([r.return0 > 0 for r in rows])) if rows else 0.0,
            }
            ck.append_metrics(run_dir, record)
            if writer is not None:
                for k, v in record.items():
                    if k != "step":
                        writer.add_scalar(scalar_name(k), v, step)
            if step in ckpt_steps:
                runs.atomic_torch_save(ck.checkpoint_file(run_dir, step),
                                       ck.checkpoint_payload(model, cfg, step, games_total, states_total, run_name,
                                                             run_id))
            due = time.perf_counter() - last_snapshot >= cfg.snapshot_seconds
            if due or step in ckpt_steps or step == cfg.steps:
                save_resume()
                last_snapshot = time.perf_counter()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(states_s=f"{record['states_per_s']:.0f}",
                                loss_v=f"{losses['loss_value']:.3f}", games=games_total)
    finally:
        pool.close()
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return {"run_dir": str(run_dir), "step": step, "steps": cfg.steps, "games": games_total,
            "states": states_total, "params": param_count(model),
            "finished": step >= cfg.steps}


def _check_resume_values(snap: dict[str, Any], path: Path, capacity: int, num_actions: int, actors: int) -> None:
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
    q = snap.get("queue")
    if q is not None:
        if not isinstance(q, dict) or not isinstance(q.get("games"), list):
            raise bad("queue")
        qsize = count(q.get("size"), "queue size")
        rows(q, ("obs", "legal", "policy", "value"), qsize, "queue")
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


def _write_resume(path, model, optimizer, buffer, generator, queue, pool, cfg, step, games, states, wall):
    runs.atomic_torch_save(path, ck.resume_payload(
        model, cfg, step, games, states, wall,
        optimizer=_cpu(optimizer.state_dict()), buffer=runs.to_torch_safe(buffer.state()),
        learner_rng={"torch_generator": generator.get_state()}, torch_rng=torch.get_rng_state(),
        queue=runs.to_torch_safe(queue.state()), actors=runs.to_torch_safe(pool.snapshot())))


def _cpu(obj):
    """An optimizer state with its tensors on the CPU (so a resume file loads anywhere)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj


def _restore_generator(generator: torch.Generator, state) -> None:
    """The learner's sampling generator from a resume file (see `selfplay.restore_generator`;
    files written before the learner moved to the device hold a numpy generator's state)."""
    restore_generator(generator, state["torch_generator"] if isinstance(state, dict) and "torch_generator" in state
                      else state)
