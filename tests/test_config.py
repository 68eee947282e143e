import pytest

from azscale.config import PAPER_CHECKPOINTS, checkpoint_schedule, parse_overrides, resolve
from azscale.errors import UserError


def test_paper_checkpoints_exact_at_10000_steps():
    assert checkpoint_schedule(10000, 17) == list(PAPER_CHECKPOINTS)


def test_checkpoints_rescaled_end_at_last_step():
    s = checkpoint_schedule(150, 17)
    assert s[-1] == 150 and s == sorted(set(s)) and s[0] >= 1


@pytest.mark.parametrize("game,drop", [("connect_four", 15), ("pentago", 5), ("oware", 50)])
def test_paper_preset_holds_paper_values(game, drop):
    cfg = resolve(game, "paper")
    assert (cfg.simulations, cfg.c_puct, cfg.dirichlet_alpha, cfg.dirichlet_epsilon) == (300, 2.0, 1.0, 0.25)
    assert (cfg.buffer_size, cfg.reuse, cfg.updates_per_step, cfg.batch_size) == (65536, 10, 64, 1024)
    assert cfg.states_per_step == 6553 and cfg.steps == 10000
    assert (cfg.learning_rate, cfg.weight_decay) == (1e-3, 1e-4)
    assert cfg.temperature_drop == drop


def test_any_openspiel_game_gets_defaults():
    assert resolve("breakthrough", "smoke").game == "breakthrough"


def test_overrides_are_typed_and_checked():
    cfg = resolve("tic_tac_toe", "smoke", parse_overrides(["simulations=7", "c_puct=1.5"]))
    assert cfg.simulations == 7 and cfg.c_puct == 1.5
    with pytest.raises(UserError, match="'simulations' must be int"):
        resolve("tic_tac_toe", "smoke", {"simulations": "many"})
    with pytest.raises(UserError, match="unknown setting 'nope'"):
        parse_overrides(["nope=1"])
    with pytest.raises(UserError, match="'dirichlet_epsilon'"):
        resolve("tic_tac_toe", "smoke", {"dirichlet_epsilon": 2})
    with pytest.raises(UserError, match="unknown preset"):
        resolve("tic_tac_toe", "huge")


def test_every_setting_has_a_type_a_setting_may_have():
    """`--set` coerces, and `azscale train` makes flags, by `config.SETTING_TYPES`: a setting of
    another type (a bool, an optional) needs those extended first."""
    from dataclasses import fields

    from azscale.config import SETTING_TYPES, TrainConfig
    assert {f.name: f.type for f in fields(TrainConfig) if f.type not in SETTING_TYPES} == {}


@pytest.mark.parametrize("over, match", [
    ({"replay_from_turn": 3}, r"'replay_from_turn' \(3\) does nothing without replay_cap or replay_beta"),
    ({"replay_from_turn": 9, "replay_cap": 2}, r"'replay_from_turn' \(9\) is past the last turn of tic_tac_toe "
                                               r"\(games last at most 9 moves\)"),
    ({"replay_from_turn": 100, "replay_beta": 1.0}, r"past the last turn"),
])
def test_replay_from_turn_that_can_change_nothing_is_refused(over, match):
    """Both trained silently as the plain arm, which `compare` would then report as a difference."""
    with pytest.raises(UserError, match=match):
        resolve("tic_tac_toe", "smoke", over)
    assert resolve("tic_tac_toe", "smoke", {"replay_from_turn": 8, "replay_cap": 2}).replay_from_turn == 8
