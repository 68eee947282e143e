import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from azscale.analysis.scaling import elo_exponent, quanta_prediction, saturating_fit
from azscale.analysis.verdict import size_steps, verdict_markdown
from azscale.config import resolve
from azscale.errors import UserError
from azscale.runs import read_games
from azscale.tournament import agents_from_runs, reference_players, tournament
from azscale.train import train

from conftest import run_cli

PARAMS = np.array([608, 1304, 2984, 7496, 21128, 66824])


def synthetic_sizes(elo_means, seeds=2, noise=15.0, reps=300, seed=0):
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for p, m in zip(PARAMS, elo_means):
        for s in range(seeds):
            rows.append({"params": p, "elo": m + rng.normal(0, noise)})
    sizes = pd.DataFrame(rows)
    samples = sizes["elo"].to_numpy()[None, :] + rng.normal(0, noise, (reps, len(sizes)))
    return sizes, samples


def test_verdict_flags_a_planted_drop():
    means = 400 * 0.8 * np.log10(PARAMS / PARAMS[0])
    means[4] -= 250                      # the 21k model is much weaker than the 7.5k one
    sizes, samples = synthetic_sizes(means)
    steps = size_steps(sizes, samples)
    flagged = [(s.params_from, s.params_to) for s in steps if s.flagged]
    assert flagged == [(7496, 21128)]
    text = verdict_markdown("oware", steps)
    assert "Inverse scaling detected" in text and "DROP" in text


def test_verdict_is_silent_on_a_monotone_series():
    means = 400 * 0.8 * np.log10(PARAMS / PARAMS[0])
    sizes, samples = synthetic_sizes(means)
    assert not any(s.flagged for s in size_steps(sizes, samples))
    assert "No inverse scaling shown" in verdict_markdown("connect_four", size_steps(sizes, samples))


def test_elo_exponent_recovers_slope():
    means = 400 * 0.88 * np.log10(PARAMS)
    sizes, samples = synthetic_sizes(means, noise=10)
    fit = elo_exponent(sizes, samples)
    assert abs(fit.alpha - 0.88) < 0.03 and fit.ci_low < fit.alpha < fit.ci_high
    cut = elo_exponent(sizes, samples, max_params=10000)
    assert cut.params_max == 7496 and cut.sizes == 4


def test_saturating_power_law_recovers_exponent_and_resists_outliers():
    rng = np.random.default_rng(0)
    n = np.repeat(PARAMS.astype(float), 3)
    loss = (0.05 + (3000 / n) ** 0.6) * np.exp(rng.normal(0, 0.02, len(n)))
    fit = saturating_fit(n, loss, groups=n, bootstrap=20)
    assert abs(fit.alpha - 0.6) < 0.05 and abs(fit.l_inf - 0.05) < 0.02
    loss[4] *= 3
    assert abs(saturating_fit(n, loss).alpha - 0.6) < 0.06
    assert quanta_prediction(1.94) == pytest.approx(0.94)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    for w in (4, 16):
        cfg = resolve("tic_tac_toe", "smoke", {"width": w, "snapshot_seconds": 1e9})
        train(cfg, base / f"ttt-w{w}", quiet=True)
    return base


def test_tournament_records_games_and_resumes_only_unfinished_pairs(two_runs, tmp_path):
    players = agents_from_runs(sorted(two_runs.glob("ttt-w*"))) + reference_players("random,mcts-20")
    out = tmp_path / "m"
    first = tournament(players, out, games_per_pair=6, simulations=8, workers=1, progress=False)
    assert len(first) == 12 and first[["wins", "draws", "losses"]].to_numpy().sum() == 36
    games = read_games(out)
    assert games.num_rows == 36 and set(games["kind"].to_pylist()) == {"match"}
    assert games["game_id"].to_pylist() == list(range(36))
    # an interrupted tournament: pair 2 never finished
    (out / "pairs" / "pair-00002.json").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "pairs").glob("*.json")}
    again = tournament(players, out, games_per_pair=6, simulations=8, workers=1, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "pairs").glob("*.json")}
    assert all(after[k] == v for k, v in before.items())      # finished pairs were not replayed
    assert "pair-00002.json" in after
    pd.testing.assert_frame_equal(first, again)                # deterministic replay of pair 2
    assert read_games(out).num_rows == 36
    with pytest.raises(UserError, match="other settings"):
        tournament(players, out, games_per_pair=8, simulations=8, workers=1, progress=False)


def test_elo_scaling_verdict_cli(two_runs, tmp_path):
    runs_ = sorted(two_runs.glob("ttt-w*"))
    r = run_cli("tournament", *runs_, "--out", tmp_path / "m", "--games-per-pair", "10", "--sims", "8",
                "--reference", "random", "--workers", "1", "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("elo", tmp_path / "m", "--out", tmp_path / "elo", "--anchor", "random", "--bootstrap", "20")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "elo" / "elo.csv")
    assert set(table["player"]) == {"ttt-w4@4", "ttt-w16@4", "random"}
    assert table.loc[table.player == "random", "elo"].item() == 0
    for f in ("elo_vs_params.png", "win_rate_matrix.svg"):
        assert (tmp_path / "elo" / f).stat().st_size > 0
    r = run_cli("scaling", tmp_path / "elo", "--out", tmp_path / "sc", "--run", runs_[0], "--run", runs_[1])
    assert r.returncode == 0, r.stderr
    sc = json.loads((tmp_path / "sc" / "scaling.json").read_text())
    assert sc["elo_exponent"]["sizes"] == 2 and len(sc["loss_table"]) == 2
    r = run_cli("verdict", tmp_path / "elo", "--out", tmp_path / "v.md")
    assert r.returncode == 0, r.stderr
    assert "verdict: tic_tac_toe" in (tmp_path / "v.md").read_text()
    r = run_cli("elo", tmp_path / "nothing", "--out", tmp_path / "e2")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_verdict_reads_early_late_loss_at_a_drop():
    means = 400 * 0.8 * np.log10(PARAMS / PARAMS[0])
    means[4] -= 250
    steps = size_steps(*synthetic_sizes(means))
    by = {str(p): {"early_loss": 0.1, "late_loss": 0.3, "early_states": 100, "late_states": 20, "seeds": 2}
          for p in PARAMS}
    by["21128"] = {"early_loss": 0.4, "late_loss": 0.1, "early_states": 100, "late_states": 20, "seeds": 2}
    loss = {"target": "trainset", "frame": "side_to_move",
            "early_late": {"statistic": "mean", "late_turn": 40, "by_params": by}}
    text = verdict_markdown("oware", steps, loss=loss)
    assert "| 21,128 | 0.400 | 0.100 |" in text
    assert "7,496 → 21,128: early loss +0.300, late loss -0.200. Consistent" in text
    by["21128"]["late_loss"] = 0.5                      # late loss rises too: not the paper's pattern
    assert "Not the paper's pattern" in verdict_markdown("oware", steps, loss=loss)
    by["21128"]["late_loss"] = None                     # no late states for that size
    assert "cannot be read" in verdict_markdown("oware", steps, loss=loss)
    assert "not measured" in verdict_markdown("oware", steps)
