"""TensorBoard names and hyperparameters for training runs (`--tensorboard`).

Scalars are grouped by what they measure (`loss/value`, `selfplay/sims_per_s`, `time/wall_s`),
each the same number as its `metrics.jsonl` field (`SCALARS` maps one to the other). Every run
also writes its hyperparameters (size, seed, search and learner settings, exact parameter count)
with the metrics they are compared on, so TensorBoard's HParams view of a sweep
(`tensorboard --logdir SWEEP/runs`) lines the sizes up side by side.
"""

from __future__ import annotations

from typing import Any

SCALARS = {
    "loss_value": "loss/value", "loss_policy": "loss/policy", "loss_l2": "loss/l2",
    "states_per_s": "selfplay/states_per_s", "simulations_per_s": "selfplay/sims_per_s",
    "mean_net_batch": "selfplay/mean_net_batch", "games": "selfplay/games", "games_total": "selfplay/games_total",
    "states": "selfplay/states", "states_total": "selfplay/states_total",
    "mean_game_length": "selfplay/mean_game_length", "p0_win_rate": "selfplay/p0_win_rate",
    "buffer_fill": "learner/buffer_fill",
    "selfplay_seconds": "time/selfplay_s", "learner_seconds": "time/learner_s", "wall_seconds": "time/wall_s",
}
HPARAMS = ("game", "family", "width", "depth", "seed", "simulations", "c_puct", "steps", "buffer_size", "reuse",
           "updates_per_step", "batch_size", "learning_rate", "weight_decay", "games_in_flight", "actors",
           "replay_cap", "replay_beta", "replay_from_turn")
METRICS = ("loss/value", "loss/policy", "selfplay/states_per_s", "selfplay/mean_game_length")


def scalar_name(key: str) -> str:
    """The grouped TensorBoard tag of a metrics.jsonl field."""
    return SCALARS.get(key, f"other/{key}")


def write_hparams(writer: Any, cfg: Any, params: int) -> None:
    """The run's hyperparameters, in the run's own event file (so HParams finds its scalars)."""
    from torch.utils.tensorboard.summary import hparams
    hp: dict[str, Any] = {k: getattr(cfg, k) for k in HPARAMS}
    hp["params"] = params
    exp, ssi, sei = hparams(hp, {m: 0.0 for m in METRICS})
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary)
