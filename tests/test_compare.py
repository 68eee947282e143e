"""`azscale compare`: the head-to-head statistics on planted truths, and the command end to end
on two small real arms."""

import json

import numpy as np
import pandas as pd
import pytest

from azscale.analysis.compare import head_to_head, pair_elo
from azscale.config import resolve
from azscale.runs import read_games
from azscale.train import train

from conftest import run_cli


def test_pair_elo_is_the_logistic_elo_of_the_score():
    assert pair_elo([50], [0], [50])[0] == pytest.approx(0)
    assert pair_elo([76], [0], [24])[0] == pytest.approx(400 * np.log10(76 / 24))
    assert np.isfinite(pair_elo([10], [0], [0])[0])          # clipped, not infinite


def _planted(rng, slope, params=(100, 1_000, 10_000, 100_000), seeds=3, games=100, seed_sd=30.0):
    rows = []
    for p in params:
        mu = slope * (np.log10(p) - 3)
        for _ in range(seeds):
            d = mu + rng.normal(0, seed_sd)
            pw = 1 / (1 + 10 ** (-d / 400))
            w = rng.binomial(games, pw)
            rows.append({"params": p, "wins": w, "draws": 0, "losses": games - w})
    return pd.DataFrame(rows)


def test_the_slope_interval_covers_a_planted_slope_and_finds_a_large_one():
    rng = np.random.default_rng(0)
    covered, found = 0, 0
    sims = 120
    for i in range(sims):
        h = head_to_head(_planted(rng, 40.0), refits=200, reps=1000, seed=i)
        lo, hi = h["slope"]["ci"]
        covered += lo <= 40.0 <= hi
    for i in range(20):
        h = head_to_head(_planted(rng, 200.0), refits=200, reps=1000, seed=i)
        found += h["slope"]["ci"][0] > 0
    assert 0.89 <= covered / sims <= 0.99           # a 95% interval, three seeds per size
    assert found >= 19
    h = head_to_head(_planted(rng, 0.0), refits=200, reps=1000)
    sl = h["slope"]
    assert sl["detectable_80"] == pytest.approx(sl["half_width"] * 2.8016 / 1.96, rel=1e-3)
    if sl["ci"][0] <= 0 <= sl["ci"][1]:
        assert "80% power" in sl["reading"]


def test_one_size_has_no_slope():
    h = head_to_head(pd.DataFrame([{"params": 10, "wins": 6, "draws": 2, "losses": 2}] * 2), refits=50, reps=200)
    assert h["slope"]["reading"].startswith("not applicable")


def test_seat_decided_head_to_head_has_no_slope():
    """Every pair won by the first mover in every game (3x2 oware at 100 simulations): the arm's
    score is exactly one half everywhere, so its Elo difference is 0 with no spread at all, and a
    slope of 0 with a zero-width interval would read as a precise null. It is "not applicable"."""
    rows = [{"params": p, "wins": 50, "draws": 0, "losses": 50, "seat_decided": True} for p in (10, 100, 1000)
            for _ in range(3)]
    h = head_to_head(pd.DataFrame(rows), refits=50, reps=200)
    assert h["seat"] == {"pairs": 9, "seat_decided_pairs": 9, "seat_decided": True}
    assert h["slope"]["reading"].startswith("not applicable: 9 of 9 head-to-head pairs") and "ci" not in h["slope"]
    for r in rows[:5]:
        r["seat_decided"] = False               # most pairs told apart by the games: the slope is estimated
    h = head_to_head(pd.DataFrame(rows), refits=50, reps=200)
    assert not h["seat"]["seat_decided"] and "elo_per_decade" in h["slope"]


def _arm(root, **over):
    (root / "runs").mkdir(parents=True)
    (root / "sweep.json").write_text(json.dumps({"kind": "sweep"}))
    for w in (4, 8):
        for s in (0, 1):
            cfg = resolve("tic_tac_toe", "smoke", {"steps": 2, "width": w, "seed": s, "snapshot_seconds": 0, **over})
            train(cfg, root / "runs" / f"tic_tac_toe-w{w}-s{s}", quiet=True)


def test_compare_end_to_end_and_its_refusals(tmp_path):
    _arm(tmp_path / "plain")
    _arm(tmp_path / "cap", replay_cap=2)
    r = run_cli("compare", tmp_path / "plain", tmp_path / "cap", "--out", tmp_path / "c", "--games-per-pair", 10,
                "--sims", 4)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert res["differs"] == {"replay_cap": {"plain": 0, "arm": 2}} and res["runs_left_out"] == []
    assert len(res["pairs"]) == 4 and all(p["wins"] + p["draws"] + p["losses"] == 10 for p in res["pairs"])
    for p in res["pairs"]:                               # the wins are the arm's, from its recorded games
        g = read_games(tmp_path / "c" / "matches" / p["run"]).to_pandas()
        arm_p0 = g["seat0"].str.startswith("arm:")
        arm_ret = np.where(arm_p0, g["return0"], g["return1"])
        assert (p["wins"], p["draws"], p["losses"]) == ((arm_ret > 0).sum(), (arm_ret == 0).sum(), (arm_ret < 0).sum())
    seeds = {json.loads((tmp_path / "c" / "matches" / p["run"] / "tournament.json").read_text())["settings"]["seed"]
             for p in res["pairs"]}
    assert len(seeds) == 4                               # every pair draws its own games
    stamps = {f: f.stat().st_mtime_ns for f in (tmp_path / "c" / "matches").rglob("pair-*.json")}
    assert set(res["head_to_head"]["by_params"]) == {str(p["params"]) for p in res["pairs"]}
    assert res["arms"]["plain"]["verdict"]["available"] is False          # no sweep analysis here: said so
    assert res["arms"]["arm"]["replay"]["available"] and not res["arms"]["plain"]["elo"]["available"]
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "Slope of the difference" in md and "not available" in md
    assert (tmp_path / "c" / "figures" / "head_to_head.png").exists()
    again = run_cli("compare", tmp_path / "plain", tmp_path / "cap", "--out", tmp_path / "c", "--games-per-pair", 10,
                    "--sims", 4)                                           # finished pairs are not replayed
    assert again.returncode == 0 and json.loads((tmp_path / "c" / "compare.json").read_text())["pairs"] == res["pairs"]
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps
    odd = run_cli("compare", tmp_path / "plain", tmp_path / "cap", "--out", tmp_path / "f", "--games-per-pair", 7)
    assert odd.returncode != 0 and "even" in odd.stderr and not (tmp_path / "f").exists()
    same = run_cli("compare", tmp_path / "plain", tmp_path / "plain", "--out", tmp_path / "d")
    assert same.returncode != 0 and "the same sweep given twice" in same.stderr and "Traceback" not in same.stderr
    bad = run_cli("compare", tmp_path / "plain", tmp_path / "nowhere", "--out", tmp_path / "e")
    assert bad.returncode != 0 and "not a sweep directory" in bad.stderr
    # an unreadable final checkpoint is refused before anything is written: no folder left behind
    import shutil
    shutil.copytree(tmp_path / "cap", tmp_path / "cap2")
    ckpt = sorted((tmp_path / "cap2" / "runs" / "tic_tac_toe-w8-s1" / "checkpoints").glob("step-*.pt"))[-1]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    cut = run_cli("compare", tmp_path / "plain", tmp_path / "cap2", "--out", tmp_path / "g" / "deeper")
    assert cut.returncode == 2 and "unreadable checkpoint" in cut.stderr and not (tmp_path / "g").exists()


def test_each_arm_reads_its_exact_accuracy_or_says_why_not(tmp_path):
    from azscale.analysis.compare import early_late_by_size
    from azscale.errors import UserError
    row = {"seeds": 3, "early_accuracy": 0.6, "early_ci": [0.5, 0.7], "late_accuracy": 0.55, "late_ci": [0.5, 0.6]}
    f = tmp_path / "loss.json"
    f.write_text(json.dumps({"early_late": {"applicable": True, "by_params": {"116": {"seeds": 3}}},
                             "move_accuracy": {"applicable": True, "by_params": {"116": row}, "late_turn": 7}}))
    acc = early_late_by_size(f, "move_accuracy", "accuracy")
    assert acc["available"] and acc["by_params"]["116"] == {**row} and acc["late_turn"] == 7
    f.write_text(json.dumps({"early_late": {"applicable": True, "by_params": {}}}))      # made before accuracy
    acc = early_late_by_size(f, "move_accuracy", "accuracy")
    assert not acc["available"] and "holds no move_accuracy" in acc["reason"]
    f.write_text(json.dumps({"move_accuracy": {"by_params": [1, 2]}}))
    with pytest.raises(UserError, match="move_accuracy is not a table by size"):
        early_late_by_size(f, "move_accuracy", "accuracy")


def test_each_arm_s_exact_loss_carries_its_observation_floor(tmp_path):
    from azscale.analysis.compare import early_late_by_size
    f = tmp_path / "loss.json"
    el = {"applicable": True, "by_params": {"116": {"seeds": 3, "early_loss": 0.7, "late_loss": 1.0}}}
    f.write_text(json.dumps({"early_late": el, "observation": {
        "applicable": True, "by_params": {"116": {"early_floor": 0.0, "late_floor": 0.23}}}}))
    t = early_late_by_size(f)
    assert t["by_params"]["116"]["late_floor"] == 0.23 and t["by_params"]["116"]["early_floor"] == 0.0
    f.write_text(json.dumps({"early_late": el}))                    # made before the floor: none claimed
    assert "late_floor" not in early_late_by_size(f)["by_params"]["116"]
