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
from dataclasses import dataclass
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
from .replay import Queue, ReplayBuffer
from .resume import ResumeState
from .selfplay import ActorPool, resolve_device, seed_for


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


@dataclass
class Learner:
    """The learner's parts: the network, its optimizer, the replay buffer, the queue of finished
    games' examples, and the generator that draws minibatches."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    buffer: ReplayBuffer
    queue: Queue
    generator: torch.Generator

    @classmethod
    def build(cls, cfg: TrainConfig, engine, device: torch.device) -> "Learner":
        torch.manual_seed(cfg.seed)
        try:
            model = build(cfg.family, engine.obs_shape, engine.num_actions, cfg.width, cfg.depth).to(device)
            optimizer = make_optimizer(model, cfg, device)
        except (MemoryError, RuntimeError) as exc:
            if not out_of_memory(exc):
                raise
            raise UserError(f"not enough memory on {device} for the network of settings 'width' {cfg.width} and "
                            f"'depth' {cfg.depth}; choose smaller ones") from None
        try:
            buffer = ReplayBuffer(cfg.buffer_size, engine.obs_size, engine.num_actions, device, engine.obs_dtype,
                                  cap=cfg.replay_cap, beta=cfg.replay_beta, late_turn=_late_turn(cfg.game),
                                  from_turn=cfg.replay_from_turn)
        except (MemoryError, RuntimeError) as exc:
            if not out_of_memory(exc):
                raise
            per = engine.obs_size * torch.tensor([], dtype=engine.obs_dtype).element_size() + engine.num_actions * 5 + 4
            raise UserError(f"not enough memory on {device} for the replay buffer: setting 'buffer_size' "
                            f"{cfg.buffer_size:,} states of {per:,} bytes need {cfg.buffer_size * per / 1e9:.1f} GB; "
                            f"choose a smaller buffer_size") from None
        generator = torch.Generator(device)
        generator.manual_seed(seed_for(cfg.seed, 104729))
        return cls(model, optimizer, buffer, Queue(engine.obs_size, engine.num_actions), generator)


@dataclass
class Progress:
    """How far the run is: learner steps, games and states recorded, wall time before this sitting."""
    step: int = 0
    games: int = 0
    states: int = 0
    wall_before: float = 0.0


def _train_locked(cfg, run_dir, run_name, quiet, tensorboard, max_seconds, restart=False):
    run_name, run_id, resume_path, raw = _open_run(cfg, run_dir, run_name, restart)
    device = resolve_device(cfg.device, cfg.engine, cfg.game)
    engine = make_engine(cfg.game, cfg.engine, device)
    if device.type != "cpu" and engine.name == "spiel":
        raise UserError(f"the pyspiel engine searches on the CPU; {cfg.game} has no tensor twin for "
                        f"device '{cfg.device}' (use --device cpu)")
    learner = Learner.build(cfg, engine, device)
    saved = None
    if raw is not None:
        saved = ResumeState.from_loaded(raw, resume_path, capacity=cfg.buffer_size, obs_size=engine.obs_size,
                                        num_actions=engine.num_actions, actors=cfg.actors)
        saved.restore(learner, resume_path)
        progress = Progress(saved.step, saved.games, saved.states, saved.wall_seconds)
        ck.truncate_after(run_dir, progress.step)
    else:
        progress = Progress()
        _clear_records(run_dir)
    _write_run_config(cfg, run_dir, run_name, run_id, engine, learner.model)
    if progress.step == 0:
        runs.atomic_torch_save(ck.checkpoint_file(run_dir, 0),
                               ck.checkpoint_payload(learner.model, cfg, 0, 0, 0, run_name, run_id))
    writer = _tensorboard(run_dir, cfg, learner.model, progress.step) if tensorboard else None
    pool = ActorPool(cfg, cfg.actors, learner.model, device, log=run_dir / "actors.log")
    bar = None
    if not quiet:
        from .progress import bar as progress_bar
        bar = progress_bar(total=cfg.steps, initial=progress.step, desc=f"train {run_name}", unit="step")
    t_start = time.perf_counter()
    try:
        if saved is not None:
            saved.restore_actors(pool, resume_path)
        saved_step = progress.step

        def save_resume():
            nonlocal saved_step
            ResumeState.capture(learner, pool, progress.step, progress.games, progress.states,
                                progress.wall_before + time.perf_counter() - t_start).write(resume_path, cfg)
            saved_step = progress.step

        if saved is None:
            save_resume()           # a new run can be resumed from its first moment on
        ckpt_steps = set(cfg.checkpoint_steps())
        last_snapshot = time.perf_counter()
        while progress.step < cfg.steps:
            if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                if saved_step != progress.step:   # a time-limited stop keeps everything played so far
                    save_resume()
                break
            record = _learner_step(cfg, learner, pool, progress, run_dir, run_name, t_start)
            if writer is not None:
                _log_scalars(writer, record, progress.step)
            if progress.step in ckpt_steps:
                runs.atomic_torch_save(ck.checkpoint_file(run_dir, progress.step),
                                       ck.checkpoint_payload(learner.model, cfg, progress.step, progress.games,
                                                             progress.states, run_name, run_id))
            due = time.perf_counter() - last_snapshot >= cfg.snapshot_seconds
            if due or progress.step in ckpt_steps or progress.step == cfg.steps:
                save_resume()
                last_snapshot = time.perf_counter()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(states_s=f"{record['states_per_s']:.0f}",
                                loss_v=f"{record['loss_value']:.3f}", games=progress.games)
    finally:
        pool.close()
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return {"run_dir": str(run_dir), "step": progress.step, "steps": cfg.steps, "games": progress.games,
            "states": progress.states, "params": param_count(learner.model), "finished": progress.step >= cfg.steps}


def _open_run(cfg: TrainConfig, run_dir: Path, run_name: str | None, restart: bool):
    """(name, id, resume file, its loaded contents or None for a fresh start) of the run in
    `run_dir`, checked before anything is built: a run with other settings, records that are not
    the run's own or do not reach its resume file, or recorded games without a resume file are
    refused."""
    if restart:
        _start_over(run_dir)
    ck.check_own_files(run_dir)
    stored = ck.check_settings(run_dir, cfg)
    resume_path = ck.resume_file(run_dir)
    if stored is None:
        return run_name or run_dir.name, runs.new_identity(), resume_path, None
    meta = ck.read_run_config(run_dir)
    run_name, run_id = meta["run"], meta.get("run_id") or runs.new_identity()
    raw = None
    if resume_path.exists():
        raw = ck.load_resume(resume_path)
        step = raw["step"]
        ck.run_status(run_dir, resume=step)                  # every record up to it is there
        ck.check_kept_records(run_dir, run_name, step, raw["games"], raw["states"])
        if cfg.steps < step:
            raise UserError(f"{run_dir} has already trained {step} steps; --steps {cfg.steps} "
                            f"would undo them (ask for at least {step})")
    else:
        later = [p for p in ck.step_checkpoints(run_dir) if runs.part_step(p) > 0]
        if ck.run_status(run_dir, resume=None).recorded or later:
            raise UserError(f"{run_dir}: checkpoints/resume.pt is missing, so the recorded games cannot be "
                            f"continued exactly; to start over deliberately rerun with --restart (deletes "
                            f"its games), or move the directory away")
    return run_name, run_id, resume_path, raw


def _clear_records(run_dir: Path) -> None:
    """A fresh start: the run holds no recorded game (checked by `_open_run`)."""
    for sub in ("games", ck.CHECKPOINT_DIR):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
    (run_dir / ck.METRICS_FILE).unlink(missing_ok=True)
    (run_dir / "actors.log").unlink(missing_ok=True)         # a failed actor's traceback of the old records


def _write_run_config(cfg: TrainConfig, run_dir: Path, run_name: str, run_id: str, engine, model) -> None:
    runs.atomic_write_json(run_dir / ck.CONFIG_FILE, {
        "kind": "run", "settings": cfg.to_dict(), "run": run_name, "run_id": run_id, "engine": engine.name,
        "params": param_count(model), "value_frame": FRAME_SIDE_TO_MOVE,
        "obs_shape": list(engine.obs_shape), "num_actions": engine.num_actions,
        "checkpoint_steps": cfg.checkpoint_steps(), "states_per_step": cfg.states_per_step,
        "environment": runs.environment()})
    (run_dir / "games").mkdir(exist_ok=True)
    (run_dir / ck.CHECKPOINT_DIR).mkdir(exist_ok=True)


def _tensorboard(run_dir: Path, cfg: TrainConfig, model, step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package "
                        "(pip install 'azscale[tensorboard]')") from None
    writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step + 1)
    from .tboard import write_hparams
    write_hparams(writer, cfg, param_count(model))
    return writer


def _log_scalars(writer, record: dict[str, Any], step: int) -> None:
    from .tboard import scalar_name
    for k, v in record.items():
        if k != "step" and v is not None:
            writer.add_scalar(scalar_name(k), v, step)


def _learner_step(cfg: TrainConfig, learner: Learner, pool, progress: Progress, run_dir: Path, run_name: str,
                  t_start: float) -> dict[str, Any]:
    """One learner step (the module docstring's 1-4): play until a step's states are queued,
    learn from them, record the games and the step's metrics line. Returns that line."""
    queue, buffer = learner.queue, learner.buffer
    t0 = time.perf_counter()
    played = []
    while queue.size < cfg.states_per_step:       # (none when earlier moves left enough queued)
        for p in pool.play(cfg.states_per_step - queue.size, progress.step, run_name):
            queue.put(p)
            played.append(p)
    t_play = time.perf_counter() - t0
    obs, legal, policy, value, player, turn, games = queue.take(cfg.states_per_step)
    buffer.add(obs, legal, policy, value, player, turn)
    rows = [runs.GameRecord.from_row({**g, "game_id": progress.games + k}) for k, g in enumerate(games)]
    t1 = time.perf_counter()
    losses = learner_update(learner.model, learner.optimizer, buffer, cfg, learner.generator)
    t_learn = time.perf_counter() - t1
    progress.step += 1
    progress.games += len(rows)
    progress.states += len(obs)
    runs.write_games_part(run_dir, progress.step, rows, cfg.game)
    sims = sum(p.simulations for p in played)
    net_calls = sum(p.net_calls for p in played)
    record = {
        "step": progress.step, **losses, "games": len(rows), "games_total": progress.games,
        "states": len(obs), "states_total": progress.states,
        "buffer_fill": buffer.size / buffer.capacity,
        "states_played": sum(len(p.obs) for p in played), "states_queued": queue.size,
        "states_per_s": sum(len(p.obs) for p in played) / max(t_play, 1e-9),
        "simulations_per_s": sims / max(t_play, 1e-9),
        "mean_net_batch": sum(p.net_states for p in played) / max(net_calls, 1),
        "selfplay_seconds": t_play, "learner_seconds": t_learn,
        "wall_seconds": progress.wall_before + time.perf_counter() - t_start,
        "mean_game_length": float(np.mean([r.length for r in rows])) if rows else 0.0,
        "p0_win_rate": float(np.mean([r.return0 > 0 for r in rows])) if rows else 0.0,
        **buffer.stats(),
    }
    ck.append_metrics(run_dir, record)
    return record


def _late_turn(game: str) -> float | None:
    """The game's late turn (analysis settings), for the step's `learned_late_share`; None (the
    metric not defined, written as null) where the game's analysis settings cannot give one or
    no game can last that long (tic-tac-toe: 9 moves, late turn 40)."""
    from .config import analysis_settings
    from .engines.spiel import load_spiel_game
    try:
        late = analysis_settings(game)["late_turn"]
    except UserError:
        return None
    return late if load_spiel_game(game).max_game_length() > late else None


