"""The replay intervention (issue 33): state keys, the per-state cap, the frequency weight, the
step's replay metrics, and that the defaults leave runs exactly as they were."""

import json
import random

import numpy as np
import pytest
import torch

from azscale.analysis.states import state_key
from azscale.checkpoints import load_checkpoint, read_metrics
from azscale.config import resolve
from azscale.engines.spiel import load_spiel_game
from azscale.errors import UserError
from azscale.replay import UNKNOWN_KEY, ReplayBuffer, example_keys, game_turns
from azscale.runs import read_games
from azscale.train import train

from conftest import run_cli

OWARE32 = "oware(num_houses_per_player=3,num_seeds_per_house=2)"


@pytest.mark.parametrize("game", ["tic_tac_toe", "connect_four", OWARE32])
def test_the_buffer_key_partitions_states_as_the_zipf_key_does(game):
    """Each Zipf key (OpenSpiel's str) has one buffer key (player + observation) and vice versa."""
    g = load_spiel_game(game)
    rng = random.Random(0)
    z2b, b2z = {}, {}
    for _ in range(300):
        s = g.new_initial_state()
        while not s.is_terminal():
            s.apply_action(rng.choice(s.legal_actions()))
            if s.is_terminal():
                break
            p = s.current_player()
            b = int(example_keys(np.array([p]), np.array([s.observation_tensor(p)], np.float32))[0])
            z = state_key(str(s))
            z2b.setdefault(z, set()).add(b)
            b2z.setdefault(b, set()).add(z)
    assert len(z2b) > 50
    assert all(len(v) == 1 for v in z2b.values()) and all(len(v) == 1 for v in b2z.values())


def test_game_turns_count_moves_made_before_each_example():
    assert game_turns([3, 1, 2]).tolist() == [0, 1, 2, 0, 0, 1]
    assert game_turns([]).tolist() == []


def _examples(keys, values=None):
    """Examples whose observation is their key (one float) and player 0."""
    keys = np.asarray(keys, np.float32)
    obs = keys[:, None]
    n = len(keys)
    values = np.arange(n, dtype=np.float32) if values is None else np.asarray(values, np.float32)
    return obs, np.ones((n, 2), bool), np.full((n, 2), 0.5, np.float32), values, np.zeros(n, np.int8), \
        np.arange(n, dtype=np.int32)


def _held(buf):
    return {k: buf.copies_of(k) for k in set(buf.keys[:buf.size].tolist())}


def test_the_cap_holds_and_a_new_copy_replaces_the_oldest_copy_of_its_state():
    buf = ReplayBuffer(8, 1, 2, cap=2)
    buf.add(*_examples([5, 5, 5, 7, 5], values=[0, 1, 2, 3, 4]))
    held = _held(buf)
    assert max(held.values()) == 2 and buf.size == 3          # two copies of 5, one of 7
    vals5 = sorted(buf.value[:buf.size][buf.obs[:buf.size, 0] == 5].tolist())
    assert vals5 == [2.0, 4.0]                                 # the newest two copies are kept
    rng = np.random.default_rng(0)
    for _ in range(30):                                        # many calls, ring wrapping, frequent keys
        ks = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], size=int(rng.integers(1, 12)), p=[.5] + [.05] * 10)
        buf.add(*_examples(ks))
        assert max(_held(buf).values()) <= 2 and buf.size <= 8
        assert sum(len(v) for v in buf._copies.values()) == buf.size     # bookkeeping matches the slots


def test_a_binding_cap_given_more_examples_than_the_buffer_holds_keeps_its_bookkeeping():
    buf = ReplayBuffer(10, 1, 2, cap=2)
    buf.add(*_examples([1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8]))      # 12 examples, the first 5 one state
    assert buf.size == buf.pos or buf.size == buf.capacity
    held = _held(buf)
    assert max(held.values()) <= 2 and sum(held.values()) == buf.size
    assert sum(len(v) for v in buf._copies.values()) == buf.size
    b = ReplayBuffer(10, 1, 2, cap=2)
    b.load(buf.state())                                            # and it resumes
    assert (b.keys == buf.keys).all()


def test_a_cap_that_never_binds_writes_exactly_the_plain_ring():
    rng = np.random.default_rng(1)
    plain, capped = ReplayBuffer(16, 1, 2), ReplayBuffer(16, 1, 2, cap=16)
    for _ in range(10):
        ks = rng.integers(0, 6, size=int(rng.integers(1, 20)))
        plain.add(*_examples(ks)), capped.add(*_examples(ks))
        for a in ("obs", "value", "turn"):
            assert torch.equal(getattr(plain, a), getattr(capped, a))
        assert (plain.pos, plain.size) == (capped.pos, capped.size)


def test_beta_one_draws_every_distinct_state_equally_often():
    buf = ReplayBuffer(1000, 1, 2, beta=1.0)
    keys = [1] * 900 + list(range(2, 102))                      # one state holds 90% of the buffer
    buf.add(*_examples(keys))
    g = torch.Generator().manual_seed(0)
    obs = torch.cat([buf.sample(1000, g)[0] for _ in range(50)])[:, 0]
    share = float((obs == 1).float().mean())
    assert abs(share - 1 / 101) < 0.004                          # 1/101 planted, not 0.9
    plain = ReplayBuffer(1000, 1, 2)
    plain.add(*_examples(keys))
    share0 = float((torch.cat([plain.sample(1000, g)[0] for _ in range(20)])[:, 0] == 1).float().mean())
    assert abs(share0 - 0.9) < 0.02


def test_replay_metrics_are_the_buffers_shares_and_unknown_keys_give_none():
    buf = ReplayBuffer(10, 1, 2, late_turn=3)
    buf.add(*_examples([1, 1, 1, 2, 3]))                         # turns 0..4; late = turns 3, 4
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        buf.sample(50, g)
    st = buf.stats()
    assert st["replay_distinct_share"] == pytest.approx(3 / 5)
    assert st["replay_top_share"] == pytest.approx(3 / 5)
    assert st["learned_late_share"] == pytest.approx(2 / 5, abs=0.02)
    legacy = ReplayBuffer(10, 1, 2, late_turn=3)
    obs, legal, pol, val, _, _ = _examples([1, 2])
    legacy.add(obs, legal, pol, val)                               # no player, no turn: unknown
    assert (legacy.keys[:2] == UNKNOWN_KEY).all()
    legacy.sample(4, g)
    assert legacy.stats() == {"replay_distinct_share": None, "replay_top_share": None, "learned_late_share": None}


def test_the_buffer_state_round_trips_with_the_caps_order():
    a = ReplayBuffer(8, 1, 2, cap=2)
    rng = np.random.default_rng(2)
    for _ in range(6):
        a.add(*_examples(rng.integers(0, 4, size=5)))
    b = ReplayBuffer(8, 1, 2, cap=2)
    b.load(a.state())
    more = _examples([0, 0, 1, 1, 2, 3, 3, 0])
    a.add(*more), b.add(*more)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.value, b.value) and (a.keys == b.keys).all()


def smoke(**kw):
    return resolve(OWARE32, "smoke", {"snapshot_seconds": 0, "steps": 4, **kw})


def _games(d):
    return read_games(d).drop_columns(["run", "seat0", "seat1"])


def _weights(d, step=4):
    return load_checkpoint(d / "checkpoints" / f"step-{step:06d}.pt")["model"]


def test_off_is_identical_and_a_cap_that_never_binds_changes_nothing(tmp_path):
    """The defaults, the settings written out as off, and a cap above the buffer's capacity give
    the same games and weights (the keyed path's ring equals the plain one)."""
    train(smoke(), tmp_path / "a", quiet=True)
    train(smoke(replay_cap=0, replay_beta=0.0), tmp_path / "b", quiet=True)
    train(smoke(replay_cap=smoke().buffer_size), tmp_path / "c", quiet=True)
    for d in ("b", "c"):
        assert _games(tmp_path / "a").equals(_games(tmp_path / d))
        wa, wd = _weights(tmp_path / "a"), _weights(tmp_path / d)
        assert all(torch.equal(wa[k], wd[k]) for k in wa)


def test_a_binding_cap_and_weight_change_what_is_learned_and_show_it(tmp_path):
    train(smoke(), tmp_path / "off", quiet=True)
    train(smoke(replay_cap=2), tmp_path / "cap", quiet=True)
    train(smoke(replay_beta=1.0), tmp_path / "beta", quiet=True)
    off, cap = read_metrics(tmp_path / "off")[-1], read_metrics(tmp_path / "cap")[-1]
    cfg = smoke()
    assert cap["replay_top_share"] <= 2 / cfg.buffer_size + 1e-9 < off["replay_top_share"]
    assert cap["replay_distinct_share"] > off["replay_distinct_share"]
    for m in (off, cap, read_metrics(tmp_path / "beta")[-1]):
        for k in ("replay_distinct_share", "replay_top_share", "learned_late_share"):
            assert 0 <= m[k] <= 1
    wo, wb = _weights(tmp_path / "off"), _weights(tmp_path / "beta")
    assert not all(torch.equal(wo[k], wb[k]) for k in wo)


def test_resume_with_the_cap_and_weight_on_continues_exactly(tmp_path):
    cfg = smoke(steps=6, replay_cap=2, replay_beta=0.5)
    train(cfg, tmp_path / "full", quiet=True)
    train(cfg.replace(steps=2), tmp_path / "cut", quiet=True)
    train(cfg, tmp_path / "cut", quiet=True)
    assert _games(tmp_path / "full").equals(_games(tmp_path / "cut"))
    wf, wc = _weights(tmp_path / "full", 6), _weights(tmp_path / "cut", 6)
    assert all(torch.equal(wf[k], wc[k]) for k in wf)
    mf = [json.dumps(m["replay_distinct_share"]) for m in read_metrics(tmp_path / "full")]
    mc = [json.dumps(m["replay_distinct_share"]) for m in read_metrics(tmp_path / "cut")]
    assert mf == mc


@pytest.mark.parametrize("setting", ["replay_cap=-1", "replay_cap=1.5", "replay_beta=nan", "replay_beta=-0.5",
                                     "replay_beta=9"])
def test_bad_replay_settings_are_one_line(tmp_path, setting):
    with pytest.raises(UserError, match=setting.split("=")[0]):
        resolve(OWARE32, "smoke", {setting.split("=")[0]: setting.split("=")[1]})
    r = run_cli("train", OWARE32, "--preset", "smoke", "--set", setting, "--run-dir", str(tmp_path / "r"))
    assert r.returncode != 0 and "Traceback" not in r.stderr and setting.split("=")[0] in r.stderr


def test_a_resume_file_from_before_state_keys_continues_exactly_with_metrics_not_defined_until_refreshed(tmp_path):
    """resume.pt files written before examples carried player, turn and key (one adapter,
    `resume.upgrade`, reads them) continue to exactly the games of an unbroken run; the replay
    metrics are null until every unknown example has left the buffer."""
    from azscale import runs
    from azscale.checkpoints import load_resume
    cfg = smoke(steps=6)
    train(cfg, tmp_path / "full", quiet=True)
    train(cfg.replace(steps=2), tmp_path / "cut", quiet=True)
    path = tmp_path / "cut" / "checkpoints" / "resume.pt"
    data = load_resume(path)
    for k in ("keys", "turn", "age", "clock"):
        del data["buffer"][k]
    for k in ("player", "turn"):
        del data["queue"][k]
    torch.save(runs.to_torch_safe(data), path)
    train(cfg, tmp_path / "cut", quiet=True)
    assert _games(tmp_path / "full").equals(_games(tmp_path / "cut"))
    m = read_metrics(tmp_path / "cut")
    assert m[2]["replay_distinct_share"] is None and m[2]["learned_late_share"] is None
    per_buffer = cfg.buffer_size // cfg.states_per_step            # steps until the buffer is all new
    assert 2 + per_buffer + 1 <= 6, "the smoke preset changed: give this test more steps"
    assert m[2 + per_buffer]["replay_distinct_share"] is not None


def test_from_turn_caps_and_weights_only_late_examples():
    obs, legal, pol, val, player, _ = _examples([5] * 6 + [9] * 6)
    turn = np.array([0] * 6 + [8] * 6, np.int32)            # six early copies of 5, six late copies of 9
    buf = ReplayBuffer(32, 1, 2, cap=2, from_turn=7)
    buf.add(obs, legal, pol, val, player, turn)
    assert buf.copies_of(int(buf.keys[0])) == 6 and buf.size == 8        # early copies kept, late capped
    obs, legal, pol, val, player, _ = _examples([5] * 6 + [9] * 5 + [10])
    w = ReplayBuffer(32, 1, 2, beta=1.0, from_turn=7)
    w.add(obs, legal, pol, val, player, turn)
    g = torch.Generator().manual_seed(0)
    drawn = torch.cat([w.sample(1000, g)[0] for _ in range(40)])[:, 0]
    # the late examples keep their half of the draws, shared equally by their two states
    assert float((drawn == 5).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert float((drawn == 9).float().mean()) == pytest.approx(0.25, abs=0.01)
    assert float((drawn == 10).float().mean()) == pytest.approx(0.25, abs=0.01)


def test_the_late_share_is_not_defined_where_no_game_reaches_the_late_turn(tmp_path):
    train(resolve("tic_tac_toe", "smoke", {"steps": 2, "snapshot_seconds": 0}), tmp_path / "t", quiet=True)
    m = read_metrics(tmp_path / "t")[-1]
    assert m["learned_late_share"] is None and 0 < m["replay_distinct_share"] <= 1
