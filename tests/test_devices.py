"""The device lives in the settings only: nothing is created on a device nobody asked for.

Under `torch.set_default_device("meta")`, a tensor made without naming its device lands on the
meta device and the first real operation with it fails. Self-play, the search, the learner, a
tournament and the loss analysis run here that way with the configured device `cpu`: they pass
only if every tensor they create names its device.
"""
import pytest
import torch

from azscale.config import resolve


@pytest.fixture
def meta_default():
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


@pytest.mark.parametrize("game", ["tic_tac_toe", "oware"])
def test_training_and_analysis_name_their_device(tmp_path, meta_default, game):
    from azscale.analysis.loss_report import loss_analysis
    from azscale.train import train
    from azscale.arena import reference_players
    from azscale.tournament import agents_from_runs, tournament

    cfg = resolve(game, "smoke", {"device": "cpu", "steps": 2, "games_in_flight": 8, "simulations": 8,
                                  "snapshot_seconds": 1e9})
    out = train(cfg, tmp_path / "run", quiet=True)
    assert out["finished"]
    out2 = train(cfg.replace(steps=3), tmp_path / "run", quiet=True)          # resume: restore on the device
    assert out2["step"] == 3
    table = tournament(agents_from_runs([tmp_path / "run"], "all")[-2:] + reference_players("random"),
                       tmp_path / "matches", games_per_pair=2, simulations=4, workers=1, progress=False)
    assert table[["wins", "draws", "losses"]].to_numpy().sum() == 6
    res = loss_analysis([tmp_path / "run"], tmp_path / "loss", "trainset", window="all", min_count=1, workers=1,
                        progress=False)
    assert res["loss_rises_with_rank"]


def test_search_names_its_device(meta_default):
    from azscale.engines.spiel import SpielEngine
    from azscale.engines import make_tensor_engine
    from azscale.nets import build
    from azscale.search import MCTS, select_actions
    for eng in (make_tensor_engine("checkers"), SpielEngine("connect_four")):
        model = build("mlp", eng.obs_shape, eng.num_actions, 8, 2, device="cpu").eval()
        gen = torch.Generator("cpu").manual_seed(0)
        res = MCTS(eng, model, 8).run(eng.new_states(4), noise=True, generator=gen)
        assert res.visits.device.type == "cpu"
        assert select_actions(res.visits, 1.0, gen).device.type == "cpu"
