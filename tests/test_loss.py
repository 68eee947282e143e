import time

import numpy as np
import pandas as pd
import pyspiel
import pytest
import torch

from azscale.analysis.loss import frontier_rank, optimal_policy_ce, predict, smooth_log_rank
from azscale.analysis.loss_report import loss_analysis
from azscale.analysis.states import outcome_side_to_move
from azscale.config import resolve
from azscale.engines import SpielEngine
from azscale.oracles import BitBullyOracle, LabelCache, MemoSolver
from azscale.train import train

from conftest import run_cli


class OracleNet(torch.nn.Module):
    """A 'network' that returns the exact tic_tac_toe value in the frame the caller asks for."""

    def __init__(self, frame):
        super().__init__()
        self.frame = frame
        g = pyspiel.load_game("tic_tac_toe")
        self.solver = MemoSolver(g)
        self.by_obs = {}
        self._index(g.new_initial_state())

    def _index(self, s):
        if s.is_terminal():
            return
        key = np.asarray(s.observation_tensor(), np.float32).tobytes()
        if key not in self.by_obs:
            v0 = self.solver.value(s)
            self.by_obs[key] = v0 if (self.frame == "player0" or s.current_player() == 0) else -v0
            for a in s.legal_actions():
                self._index(s.child(a))

    def forward(self, obs):
        v = torch.tensor([self.by_obs[o.numpy().tobytes()] for o in obs], dtype=torch.float32)
        return torch.zeros(len(obs), 9), v


def test_target_and_prediction_share_the_side_to_move_frame():
    """Feed the loss pipeline a perfect network: zero loss only if frames agree."""
    eng = SpielEngine("tic_tac_toe")
    solver = MemoSolver(eng.spiel_game)
    hist = [[0], [0, 4], [0, 4, 8], [4, 0, 8, 2], [0, 3, 1, 4, 8]]   # player 1 and player 0 to move
    states = [eng.replay(h) for h in hist]
    info = eng.info(states)
    z = np.array([solver.label(s).value for s in states], np.float32)      # side-to-move labels
    for frame, want_zero in (("side_to_move", True), ("player0", False)):
        v, _ = predict(OracleNet(frame), info.obs, info.legal)
        loss = (z - v) ** 2
        assert (loss.max() == 0) == want_zero
    # the train-set conversion: a player-0 outcome of +1 is -1 for player 1 to move
    assert outcome_side_to_move(np.array([1.0, 1.0]), np.array([0, 1])).tolist() == [1.0, -1.0]


def test_exact_solver_values():
    g = pyspiel.load_game("tic_tac_toe")
    s = MemoSolver(g)
    assert s.value(g.new_initial_state()) == 0.0
    won = g.new_initial_state()
    for a in (0, 3, 1, 4):
        won.apply_action(a)
    lab = s.label(won)
    assert lab.value == 1.0 and lab.best_mask == 1 << 2           # only taking 2 wins


def test_small_connect_four_solves_quickly():
    g = pyspiel.load_game("connect_four(rows=4,columns=5)")
    t0 = time.process_time()          # CPU time: a loaded machine stretches wall time, not this
    assert MemoSolver(g).value(g.new_initial_state()) == 0.0      # 4x5 connect four is a draw
    assert time.process_time() - t0 < 120


def random_positions(game, count, lo, hi, seed):
    """`count` non-terminal positions after lo..hi-1 uniformly random moves."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        s = game.new_initial_state()
        target = int(rng.integers(lo, hi))
        while not s.is_terminal() and len(s.history()) < target:
            s.apply_action(int(rng.choice(s.legal_actions())))
        if not s.is_terminal():
            out.append(s)
    return out


def test_exact_solver_agrees_with_bitbully_on_late_positions():
    pytest.importorskip("bitbully")
    g = pyspiel.load_game("connect_four")
    memo, bb = MemoSolver(g), BitBullyOracle()
    for s in random_positions(g, 200, 26, 36, seed=0):
        a, b = memo.label(s), bb.label(s)
        assert a.value == b.value, s.history()
        assert a.best_mask == b.best_mask, s.history()


def test_bitbully_weak_labels_match_exact_scores_midgame():
    """The oracle's null-window signs equal the signs of bitbully's exact move scores."""
    pytest.importorskip("bitbully")
    from bitbully import Board
    g = pyspiel.load_game("connect_four")
    bb = BitBullyOracle()
    for s in random_positions(g, 60, 6, 24, seed=1):
        scores = bb.agent.score_all_moves(Board.from_moves(s.history()))
        best = max(np.sign(v) for v in scores.values())
        lab = bb.label(s)
        assert lab.value == best, s.history()
        assert lab.best_mask == sum(1 << a for a, v in scores.items() if np.sign(v) == best), s.history()


def test_smoothing_and_frontier_on_a_known_curve():
    ranks = np.arange(1, 100001)
    loss = 1e-3 * ranks ** 0.5                 # rises with rank
    grid, sm = smooth_log_rank(ranks, loss, sigma=0.15)
    mid = (grid > 10) & (grid < 1e4)
    assert np.allclose(sm[mid], 1e-3 * grid[mid] ** 0.5, rtol=0.1)
    f = frontier_rank(grid, sm, 0.1)            # 1e-3 r^0.5 = 0.1 at r = 1e4
    assert 5e3 < f < 1.2e4
    assert frontier_rank(grid, sm, 1e-6) == 0.0


def test_policy_cross_entropy_to_optimal_moves():
    logp = np.log(np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]))
    ce = optimal_policy_ce(logp, np.array([0b001, 0b011], np.uint64))
    assert ce[0] == pytest.approx(np.log(2)) and ce[1] == pytest.approx(np.log(3))


@pytest.fixture(scope="module")
def ttt_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("lossrun") / "ttt"
    train(resolve("tic_tac_toe", "cpu", {"steps": 12, "actors": 1, "snapshot_seconds": 1e9}), d, quiet=True)
    return d


def test_trainset_loss_end_to_end(ttt_run, tmp_path):
    res = loss_analysis([ttt_run], tmp_path / "l", "trainset", checkpoints="all", workers=1, progress=False)
    per = pd.read_parquet(tmp_path / "l" / "per_state.parquet")
    assert per["count"].min() >= 10 and per["step"].nunique() > 1
    # the stored target is the state's mean outcome for the player to move
    assert per["target"].between(-1, 1).all()
    assert np.allclose(per["loss_value"], (per["target"] - per["value"]) ** 2)
    trend = res["loss_rises_with_rank"]
    assert list(trend.values())[0]["loss_top"] < list(trend.values())[0]["loss_tail"]
    for f in ("curves.csv", "frontier.csv", "loss_vs_rank.png", "frontier_vs_step.png"):
        assert (tmp_path / "l" / f).stat().st_size > 0
    # tic_tac_toe lasts at most 9 moves: no late states to split off, said with the reason, and
    # no empty late panels
    el = res["early_late"]
    assert not el["applicable"] and el["reason"].startswith("not applicable: games last at most 9 moves")
    assert not (tmp_path / "l" / "loss_early_late.png").exists()
    assert set(pd.read_csv(tmp_path / "l" / "curves.csv")["subset"]) == {"all"}


def test_solver_loss_uses_the_cache(ttt_run, tmp_path, monkeypatch):
    loss_analysis([ttt_run], tmp_path / "a", "solver", cache_dir=tmp_path / "cache", workers=1, progress=False)
    cache = LabelCache(tmp_path / "cache", "tic_tac_toe", "memo-minimax")
    assert len(cache.data) > 0
    import azscale.oracles as oracles
    calls = []
    real = oracles.label_histories
    monkeypatch.setattr(oracles, "label_histories", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    loss_analysis([ttt_run], tmp_path / "b", "solver", cache_dir=tmp_path / "cache", workers=1, progress=False)
    assert sum(calls) == 0                          # every label came from the cache
    per = pd.read_parquet(tmp_path / "b" / "per_state.parquet")
    assert set(per["target"].unique()) <= {-1.0, 0.0, 1.0} and per["policy_ce"].notna().all()


def test_loss_and_solve_cli(ttt_run, tmp_path):
    r = run_cli("zipf", ttt_run, "--out", tmp_path / "z", "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("solve", "tic_tac_toe", "--states", tmp_path / "z" / "states.parquet", "--out", tmp_path / "c",
                "--min-count", "5", "--workers", "1", "-q")
    assert r.returncode == 0, r.stderr
    r2 = run_cli("solve", "tic_tac_toe", "--states", tmp_path / "z" / "states.parquet", "--out", tmp_path / "c",
                 "--min-count", "5", "--workers", "1", "-q")
    assert "solved 0 new states" in r2.stdout
    r = run_cli("solve", "connect_four", "--states", tmp_path / "z" / "states.parquet", "--out", tmp_path / "c")
    assert r.returncode == 2 and "not 'connect_four'" in r.stderr
    r = run_cli("loss", ttt_run, "--out", tmp_path / "l", "--target", "oracle")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_early_late_summary_uses_last_step_and_combines_seeds():
    from azscale.analysis.loss import early_late_summary
    rows = []
    for run, params, early, late in (("a", 100, 0.2, 0.6), ("b", 100, 0.4, 0.8), ("c", 300, 0.1, None)):
        for step, scale in ((5, 10.0), (9, 1.0)):            # step 5 must be ignored
            rows += [{"run": run, "params": params, "step": step, "late": False, "loss_value": early * scale,
                      "key": i} for i in range(3)]
            if late is not None:
                rows += [{"run": run, "params": params, "step": step, "late": True, "loss_value": late * scale,
                          "key": 10 + i} for i in range(2)]
    out = early_late_summary(pd.DataFrame(rows), pooled=False, reps=200)
    by = out["by_params"]
    assert by["100"]["early_loss"] == pytest.approx((0.2 * 0.4) ** 0.5)      # geometric mean of the seeds
    assert by["100"]["late_loss"] == pytest.approx((0.6 * 0.8) ** 0.5)
    assert (by["100"]["seeds"], by["100"]["early_states"], by["100"]["late_states"]) == (2, 3, 2)
    assert by["300"]["late_loss"] is None and by["300"]["late_states"] == 0
    assert by["100"]["early_ci"][0] <= by["100"]["early_loss"] <= by["100"]["early_ci"][1]
    assert not out["pooled"] and out["pairs"] == {}          # own states: sizes are not paired


def planted_loss_table(early, late, seeds=3, states=(300, 120), spread=0.1, steps=(10, 40), seed=0):
    """Pooled per-state losses for sizes with planted early and late mean losses: every run
    sees the same states (one key set), seeds differ by a log-normal factor, states by a
    state-specific difficulty shared by every run."""
    rng = np.random.default_rng(seed)
    hard = {f: rng.lognormal(0, 0.5, n) for f, n in zip((False, True), states)}
    rows = []
    for k, (p, e, l_) in enumerate(zip(sorted(early), early.values(), late.values())):
        for s in range(seeds):
            f = float(np.exp(rng.normal(0, spread)))
            for step in steps:
                slow = 1.5 if step != steps[-1] else 1.0      # earlier checkpoints are worse
                for flag, base in ((False, e), (True, l_)):
                    h = hard[flag]
                    loss = base * f * slow * h / h.mean()
                    rows.append(pd.DataFrame({"run": f"w{p}-s{s}", "params": p, "step": step, "late": flag,
                                              "key": np.arange(len(h)) + (10**6 if flag else 0),
                                              "rank": np.arange(len(h)) + 1 + (0 if not flag else len(hard[False])),
                                              "loss_value": loss, "mean_turn": 60.0 if flag else 10.0}))
    return pd.concat(rows, ignore_index=True)


def test_early_late_split_on_pooled_states_recovers_planted_ratios(tmp_path):
    """Planted: the larger size has 3x the early loss and 0.5x the late loss. The ratio intervals
    must hold the planted ratios and the verdict's reading must be 'consistent'; the loss
    outputs carry the paper's Fig. 7 and Fig. 8."""
    from azscale.analysis.loss_report import write_outputs
    from azscale.analysis.verdict import loss_split
    per = planted_loss_table({1000: 0.02, 8000: 0.06}, {1000: 0.2, 8000: 0.1})
    sel = {"window": "last70", "min_count": 10, "pooled": True, "checkpoints": "all", "runs": []}
    eg = {"applicable": True, "reason": "", "max_game_length": 1000}
    res = write_outputs(per, tmp_path, "trainset", "oware", 0.15, 40.0, 0.1, sel, eg, replicates=1000)
    pr = res["early_late"]["pairs"]["1000:8000"]
    assert pr["early_ci"][0] < 3.0 < pr["early_ci"][1] and pr["early_ci"][0] > 1
    assert pr["late_ci"][0] < 0.5 < pr["late_ci"][1] and pr["late_ci"][1] < 1
    assert loss_split(res, 1000, 8000)["reading"] == "consistent"
    # no difference planted: the reading must not claim the pattern
    flat = planted_loss_table({1000: 0.05, 8000: 0.05}, {1000: 0.2, 8000: 0.2}, seed=1)
    res2 = write_outputs(flat, tmp_path / "flat", "trainset", "oware", 0.15, 40.0, 0.1, sel, eg, replicates=1000)
    assert loss_split(res2, 1000, 8000)["reading"] == "inconclusive"
    for f in ("loss_early_late.png", "loss_early_late.svg", "loss_early_late_vs_step.png",
              "loss_early_late_vs_step.svg"):
        assert (tmp_path / f).stat().st_size > 0


def test_labels_are_solved_on_this_machine_inside_a_ray_session():
    """Inside a sweep's Ray session the perfect-play labels are still solved by local processes
    (the solver is checked on the driver only): no Ray task is submitted."""
    from azscale import parallel
    from azscale.oracles import label_histories

    class NoRay:
        def remote(self, *a, **k):
            raise AssertionError("perfect-play labels were sent to Ray")

    with parallel.ray_session(NoRay(), "/nonexistent", log=lambda m: None):
        labels = label_histories("tic_tac_toe", [[0], [0, 4], [4, 0, 8]], workers=1)
    assert len(labels) == 3


def test_move_columns_split_ties_and_mark_decisive_states():
    from azscale.analysis.loss import move_columns
    probs = np.array([
        [0.7, 0.2, 0.1, 0.0],          # top move 0, optimal {0}: right
        [0.7, 0.2, 0.1, 0.0],          # top move 0, optimal {1}: wrong
        [1 / 3, 1 / 3, 1 / 3, 0.0],    # a uniform policy, optimal {2}: a third of the tied top moves
        [0.5, 0.5, 0.0, 0.0],          # every legal move optimal: not decisive
        [0.5, 0.5, 0.0, 0.0],          # unsolved (no optimal move known)
    ])
    legal = probs > 0
    logp = np.full(probs.shape, -np.inf)
    logp[legal] = np.log(probs[legal])
    best = np.array([0b0001, 0b0010, 0b0100, 0b0011, 0], np.uint64)
    opt, mass, decisive, chance = move_columns(logp, legal, best)
    assert opt[:4] == pytest.approx([1.0, 0.0, 1 / 3, 1.0]) and np.isnan(opt[4])
    assert chance[:4] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0]) and np.isnan(chance[4])
    assert mass[:4] == pytest.approx([0.7, 0.2, 1 / 3, 1.0]) and np.isnan(mass[4])
    assert decisive.tolist() == [True, True, True, False, False]
    # a diverged network (NaN logits) is not scored, neither right nor wrong
    opt, mass, decisive, chance = move_columns(np.full((1, 4), np.nan), legal[:1], best[:1])
    assert np.isnan(opt[0]) and np.isnan(mass[0]) and decisive[0] and chance[0] == pytest.approx(1 / 3)


def planted_accuracy_table(acc, seeds=3, states=(400, 400), spread=0.03, seed=0):
    """Pooled per-state move correctness for sizes with planted early and late accuracies
    (acc: params -> (early, late)); a seed shifts its size's accuracy by a normal amount; a
    quarter of the states are not decisive (every move optimal) and must be left out."""
    rng = np.random.default_rng(seed)
    rows = []
    for p, (e, l_) in acc.items():
        for s in range(seeds):
            shift = rng.normal(0, spread)
            for step in (10, 40):
                for flag, base, n in ((False, e, states[0]), (True, l_, states[1])):
                    decisive = np.arange(n) % 4 != 0
                    ok = (rng.random(n) < (base + shift if step == 40 else 0.2)).astype(float)
                    ok[~decisive] = 1.0
                    rows.append(pd.DataFrame({"run": f"w{p}-s{s}", "params": p, "step": step, "late": flag,
                                              "key": np.arange(n) + (10**6 if flag else 0), "loss_value": 0.1,
                                              "move_optimal": ok, "decisive": decisive}))
    return pd.concat(rows, ignore_index=True)


def test_move_accuracy_recovers_planted_accuracies_and_their_difference():
    """Planted: the larger size is worse early (0.90 -> 0.70) and better late (0.60 -> 0.80).
    Each size's interval and each difference's interval must hold the planted value, over
    repeated planted studies (coverage counted), and non-decisive states must not count."""
    from azscale.analysis.loss import move_accuracy_summary
    truth = {1000: (0.90, 0.60), 8000: (0.70, 0.80)}
    cover, n = 0, 0
    for k in range(8):
        res = move_accuracy_summary(planted_accuracy_table(truth, seed=k), pooled=True, reps=500, seed=k)
        assert res["applicable"] and res["pooled"]
        by, pr = res["by_params"], res["pairs"]["1000:8000"]
        assert by["1000"]["early_states"] == 300                        # 400 states, a quarter not decisive
        for p, (e, l_) in truth.items():
            for subset, t in (("early", e), ("late", l_)):
                assert abs(by[str(p)][f"{subset}_accuracy"] - t) < 0.06
                lo, hi = by[str(p)][f"{subset}_ci"]
                cover += lo <= t <= hi
                n += 1
        assert pr["early_ci"][1] < 0 < pr["late_ci"][0]                 # worse early, better late, both shown
        assert pr["early_diff"] == pytest.approx(by["8000"]["early_accuracy"] - by["1000"]["early_accuracy"])
    assert cover / n >= 0.8, f"95% intervals covered the planted accuracy in {cover} of {n}"
    # pooled states with no decisive state at all: still paired, no false note, no numbers
    none = planted_accuracy_table(truth, seed=0).assign(decisive=False)
    res = move_accuracy_summary(none, pooled=True, reps=100)
    assert res["pooled"] and "pooled_note" not in res and res["by_params"]["1000"]["early_accuracy"] is None
    # no exact values: not applicable, with the reason
    assert not move_accuracy_summary(pd.DataFrame({"run": ["a"], "step": [1]}), pooled=True)["applicable"]


def test_exact_move_accuracy_on_small_oware_end_to_end(tmp_path):
    """`loss --target solver` on a 3x2 oware run: every state is solved, the accuracy by size is
    in loss.json and printed, and a per-checkpoint table holds it for every checkpoint."""
    game = "oware(num_houses_per_player=3,num_seeds_per_house=2)"
    r = run_cli("train", game, "--run-dir", tmp_path / "r", "--preset", "smoke", "--set", "steps=4", "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("loss", tmp_path / "r", "--out", tmp_path / "l", "--target", "solver", "--late-turn", "7",
                "--min-count", "2", "--checkpoints", "all", "--workers", "1", "--replicates", "200", "-q")
    assert r.returncode == 0, r.stderr
    import json
    res = json.loads((tmp_path / "l" / "loss.json").read_text())
    acc = res["move_accuracy"]
    assert acc["applicable"], acc
    (p, v), = acc["by_params"].items()
    assert 0 <= v["early_accuracy"] <= 1 and v["early_states"] > 0 and v["late_states"] > 0
    assert "move accuracy early" in r.stdout
    assert (tmp_path / "l" / "accuracy_early_late_vs_step.png").stat().st_size > 0
    per = pd.read_parquet(tmp_path / "l" / "per_state.parquet")
    last = per[per["step"] == per["step"].max()]
    assert v["late_accuracy"] == pytest.approx(last[last["late"] & last["decisive"]]["move_optimal"].mean())
    assert v["late_chance"] == pytest.approx(last[last["late"] & last["decisive"]]["chance_optimal"].mean())
    assert 0 < v["late_chance"] < 1
    # the observation floor, from the same table (the network's input has no player to move)
    ob = res["observation"]["by_params"][p]
    spread = (last["target"] - last.groupby("obs_group")["target"].transform("mean")) ** 2
    assert ob["all_floor"] == pytest.approx(spread.mean()) and ob["all_states"] == len(last)
    steps = sorted({row["step"] for row in res["by_checkpoint"]})
    assert steps == sorted(per["step"].unique()) and len(steps) >= 2
    # the exact move-accuracy gain over the last third (to the final checkpoint from the one
    # nearest two thirds), which stands in for the Elo gain in the run's saturation
    from azscale.analysis.saturation import reference_step, saturation_table
    g = res["exact_gain"][(tmp_path / "r").name]
    assert g["applicable"] and (g["from_step"], g["to_step"]) == (reference_step(steps)[0], max(steps)), g
    row, = saturation_table(None, [tmp_path / "r"], exact=tmp_path / "l" / "loss.json")
    assert row["exact"] == g and "exact move-accuracy gain (the Elo gain: no Elo fit yet)" in row["reason"]


def test_the_report_shows_move_accuracy_beside_its_baseline():
    from azscale.analysis.loss import move_accuracy_summary
    from azscale.analysis.sweep_report import _accuracy_md
    per = planted_accuracy_table({1000: (0.9, 0.6), 8000: (0.7, 0.8)}).assign(chance_optimal=0.4)
    md = _accuracy_md({"move_accuracy": move_accuracy_summary(per, pooled=True, reps=200)})
    assert "| random move, early / late |" in md and "0.400 / 0.400" in md
    assert "1,000 → 8,000 parameters: early -0.2" in md
    assert _accuracy_md({"move_accuracy": {"applicable": False, "reason": "x"}}) == ""


def test_observation_floor_is_the_spread_of_targets_among_states_with_one_input():
    """Planted: early, two states share one input with targets +1 and -1 and a third has its own
    (floor 2/3: the best one value for the pair is 0); late, every input is its own (floor 0).
    A network that answers each input's mean target reaches the floor and no other does better;
    only the last checkpoint counts."""
    from azscale.analysis.loss import observation_floor
    rows = []
    # input 1 is early state 2's and late state 3's: shared in "all" only; step 5's groups are ignored
    for step, groups in ((10, [0, 0, 1, 1, 3]), (5, [7, 7, 7, 7, 7])):
        rows += [{"run": "a", "step": step, "params": 100, "key": k, "late": late, "obs_group": g, "target": z,
                  "loss_value": 1.0}
                 for k, (late, g, z) in enumerate(zip([False, False, False, True, True], groups,
                                                       [1.0, -1.0, 1.0, 0.0, -1.0]))]
    per = pd.DataFrame(rows)
    res = observation_floor(per)
    v = res["by_params"]["100"]
    assert v["early_floor"] == pytest.approx(2 / 3) and v["early_shared"] == pytest.approx(2 / 3)
    assert v["late_floor"] == 0 and v["late_shared"] == 0
    assert v["all_floor"] == pytest.approx(2.5 / 5) and v["all_shared"] == pytest.approx(4 / 5)
    assert v["early_states"] == 3 and v["late_states"] == 2
    last = per[per["step"] == 10]
    best = last.groupby("obs_group")["target"].transform("mean")
    assert ((last["target"] - best) ** 2).mean() == pytest.approx(v["all_floor"])
    rng = np.random.default_rng(0)
    for _ in range(50):                                   # any one value per input does no better
        guess = pd.Series(rng.uniform(-1, 1, 10)).reindex(last["obs_group"]).to_numpy()
        assert ((last["target"].to_numpy() - guess) ** 2).mean() >= v["all_floor"] - 1e-12
    assert not observation_floor(per.drop(columns="obs_group"))["applicable"]


def test_a_size_s_floor_combines_seeds_as_its_loss_does_and_never_exceeds_it():
    """Two seeds scored on their own states (not pooled), with their own input ids: each run's
    floor is under its own loss, and so must the size's be, combined like the loss (geometric
    mean); a run whose loss is NaN is left out of both."""
    from azscale.analysis.loss import early_late_summary, observation_floor
    rows = []
    # s0: 1 of 20 input pairs has opposite targets (floor 0.05); s1: every pair (floor 1); both at
    # their floors. The arithmetic mean of floors (0.525) would exceed the sizes' loss (0.224).
    for run, mismatched, extra in (("s0", 1, 0.0), ("s1", 20, 0.0), ("s2", 5, np.nan)):
        z = np.ones(40)
        z[1:2 * mismatched:2] = -1.0
        groups = np.arange(40) // 2
        mean = pd.Series(z).groupby(groups).transform("mean").to_numpy()
        rows.append(pd.DataFrame({"run": run, "step": 10, "params": 100, "key": np.arange(40), "late": False,
                                  "obs_group": groups, "target": z, "loss_value": (z - mean) ** 2 + extra}))
    per = pd.concat(rows, ignore_index=True)
    floor = observation_floor(per)["by_params"]["100"]
    loss = early_late_summary(per, pooled=False, reps=50)["by_params"]["100"]["early_loss"]
    assert floor["early_floor"] == pytest.approx(np.sqrt(0.05 * 1.0)) and loss == pytest.approx(np.sqrt(0.05))
    assert floor["early_floor"] <= loss + 1e-9


def test_oware_observation_does_not_say_who_moves():
    """OpenSpiel's oware observation is the seeds and scores only: these two 3x2 positions (one
    board, other players to move) are one input to the network, so the floor is real there."""
    from azscale.analysis.loss import observation_groups, observe
    engine = SpielEngine("oware(num_houses_per_player=3,num_seeds_per_house=2)")
    info = observe(engine, [[0, 2, 1, 1, 1], [0, 1, 0, 2, 1, 1], [0]])
    assert list(info.player) == [1, 0, 1]
    groups = observation_groups(info.obs)
    assert groups[0] == groups[1] != groups[2]
    # tic_tac_toe's observation shows both players' marks: distinct states, distinct inputs
    ttt = SpielEngine("tic_tac_toe")
    hs = [[], [4], [4, 0], [0, 4], [4, 0, 8]]
    hs = [h for h in hs if h]
    assert len(set(observation_groups(observe(ttt, hs).obs))) == len(hs)


def test_the_report_and_the_loss_command_show_the_floor_only_where_inputs_are_shared():
    from azscale.analysis.loss import early_late_summary, observation_floor
    from azscale.analysis.loss_report import floor_lines
    from azscale.analysis.sweep_report import _early_late_md
    per = planted_accuracy_table({1000: (0.9, 0.6), 8000: (0.7, 0.8)})
    per = per.assign(loss_value=0.5, target=np.where(per["key"] % 2 == 0, 1.0, -1.0),
                     obs_group=per["key"] // 2)                  # every input shared by two states, targets +1/-1
    lj = {"early_late": {**early_late_summary(per, pooled=True, reps=100), "late_turn": 7},
          "observation": observation_floor(per), "selection": {"min_count": 1}}
    md = _early_late_md(lj)
    assert "| floor, early / late |" in md and "1.0000 / 1.0000" in md and "100% / 100%" in md
    assert "*Floor*" in md
    lines = floor_lines(lj["observation"])
    assert len(lines) == 2 and "early 100.0%, late 100.0%; least value loss any network can reach on the early / late states: early 1.000" \
        in lines[0]
    alone = per.assign(obs_group=per["key"])                    # every state its own input: nothing shown
    lj["observation"] = observation_floor(alone)
    assert "floor" not in _early_late_md(lj) and floor_lines(lj["observation"]) == []
