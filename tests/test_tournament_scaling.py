import json

import numpy as np
import pandas as pd
import pytest

from azscale.analysis.scaling import elo_exponent, quanta_prediction, saturating_fit
from azscale.analysis.verdict import inverse_scaling, verdict_markdown
from azscale.config import resolve
from azscale.errors import UserError
from azscale.runs import read_games
from azscale.arena import reference_players
from azscale.tournament import agents_from_runs, tournament
from azscale.train import train

from conftest import run_cli

PARAMS = np.array([608, 1304, 2984, 7496, 21128, 66824])


def synthetic_sizes(elo_means, seeds=2, noise=15.0, reps=300, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p, m in zip(PARAMS, elo_means):
        for s in range(seeds):
            rows.append({"params": p, "elo": m + rng.normal(0, noise)})
    sizes = pd.DataFrame(rows)
    samples = sizes["elo"].to_numpy()[None, :] + rng.normal(0, noise, (reps, len(sizes)))
    return sizes, samples


def test_verdict_flags_a_planted_drop():
    means = 400 * 0.8 * np.log10(PARAMS / PARAMS[0])
    means[4] -= 250                      # the 21k model is much weaker than the 7.5k one
    means[5] -= 400                      # and the largest stays below the 7.5k one
    sizes, samples = synthetic_sizes(means)
    t = inverse_scaling(sizes, samples, reps=2000)
    flagged = [(s.params_from, s.params_to) for s in t.steps if s.flagged]
    assert flagged == [(7496, 21128)]
    assert t.peak == 7496 and t.inverse and t.best_vs_largest.params_from == 7496
    assert t.elo_fit["params_max"] == 7496            # alpha_N only up to the peak
    text = verdict_markdown("oware", t)
    assert "Inverse scaling detected" in text and "DROP" in text


def test_verdict_is_silent_on_a_monotone_series():
    means = 400 * 0.8 * np.log10(PARAMS / PARAMS[0])
    sizes, samples = synthetic_sizes(means)
    t = inverse_scaling(sizes, samples, reps=2000)
    assert not t.flagged and t.peak == PARAMS[-1] and t.best_vs_largest is None
    assert "No inverse scaling shown" in verdict_markdown("connect_four", t)


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


def test_a_floor_at_the_smallest_loss_is_not_identified():
    """The checkers sweep's learner losses (4 sizes, one seed): the fit put L_inf at its bound,
    the smallest loss, and printed alpha_N(loss) = 1.729 as measured. A floor at its bound is
    'not identified'; a plateau reached by several sizes (floor fitted below it) and a planted
    power law are still fitted."""
    n = np.array([14673, 30369, 66369, 156801.])
    fit = saturating_fit(n, np.array([0.4677827, 0.3715916, 0.3652812, 0.3437806]))
    assert "floor L_inf sits at its bound" in fit.extra["not_identified"]
    plateau = saturating_fit(np.logspace(3, 5.5, 6), np.array([1.0, 0.6, 0.45, 0.44, 0.44, 0.44]))
    assert "not_identified" not in plateau.extra and plateau.l_inf < 0.44
    n2 = np.logspace(3, 6, 8)
    planted = saturating_fit(n2, 0.2 + (3e3 / n2) ** 0.6)
    assert "not_identified" not in planted.extra and abs(planted.alpha - 0.6) < 1e-3


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


def test_tournament_grows_and_keeps_its_numbered_pairs(two_runs, tmp_path):
    """A sweep that gained runs adds players: the finished pairs keep their numbers, files and
    games, and only the new pairs are played (numbered after them); without `grow` it is refused."""
    runs_ = sorted(two_runs.glob("ttt-w*"))
    first = agents_from_runs(runs_[:1]) + reference_players("random")
    out = tmp_path / "m"
    tournament(first, out, games_per_pair=4, simulations=4, workers=1, progress=False)
    kept = {p.relative_to(out): p.read_bytes() for p in (out / "pairs").iterdir()}
    kept.update({p.relative_to(out): p.read_bytes() for p in (out / "games").iterdir()})
    more = agents_from_runs(runs_) + reference_players("random")        # the new agent comes between
    with pytest.raises(UserError, match="other settings or players"):
        tournament(more, out, games_per_pair=4, simulations=4, workers=1, progress=False)
    table = tournament(more, out, games_per_pair=4, simulations=4, workers=1, progress=False, grow=True)
    assert all((out / k).read_bytes() == v for k, v in kept.items())
    pairs = json.loads((out / "tournament.json").read_text())["pairs"]
    assert pairs[0] == [first[0].name, "random"] and len(pairs) == 3
    assert sorted(map(tuple, pairs[1:])) == sorted([(more[0].name, more[1].name), (more[1].name, "random")])
    assert read_games(out)["game_id"].to_pylist() == list(range(12)) and len(table) == 6


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
    assert len(sc["loss_table"]) == 2
    elo_of = dict(zip(table["player"], table["elo"]))
    if elo_of["ttt-w16@4"] > elo_of["ttt-w4@4"]:
        assert sc["elo_exponent"]["sizes"] == 2 and sc["elo_exponent"]["resampling"]["elo_refits"] == 20
    else:      # the smaller agent is the stronger: nothing below the peak to fit, said so
        assert sc["elo_exponent"]["alpha"] is None and "not applicable" in sc["elo_exponent"]["note"]
        assert "not applicable" in r.stdout
    r = run_cli("scaling", tmp_path / "elo", "--out", tmp_path / "sc2", "--max-params", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("verdict", tmp_path / "elo", "--out", tmp_path / "v.md", "--replicates", "500")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "v.md").read_text()
    assert "verdict: tic_tac_toe" in text and "one seed per size" in text     # the narrow intervals are named
    vj = json.loads((tmp_path / "v.json").read_text())
    assert vj["resampling"]["elo_refits"] == 20
    # one seed per size: no verdict, and no power to state
    assert vj["verdict"] == "cannot tell" and not vj["inverse_scaling"] and not vj["power"]["applicable"]
    assert "**Cannot tell**" in text and "cannot tell" in r.stdout and "power: not applicable" in r.stdout
    assert vj["saturation"]["applicable"] is False         # no runs given: saturation not read
    # with the runs: each run's saturation in verdict.json, and the condition named
    r = run_cli("verdict", tmp_path / "elo", "--out", tmp_path / "v3.md", "--replicates", "500",
                "--run", runs_[0], "--run", runs_[1])
    assert r.returncode == 0, r.stderr
    vj = json.loads((tmp_path / "v3.json").read_text())
    assert [s["run"] for s in vj["saturation"]] == [p.name for p in runs_]
    assert all(s["state"] == "cannot tell" for s in vj["saturation"])     # no within-run checkpoints
    sat = next(c for c in vj["conditions"] if c["name"] == "saturation")
    assert not sat["holds"] and "0 of 2 runs saturated" in (tmp_path / "v3.md").read_text()
    r = run_cli("verdict", tmp_path / "elo", "--out", tmp_path / "v4.md", "--run", runs_[0])
    assert r.returncode == 2 and "not among the runs given" in r.stderr
    for bad in (("--fwer", "0.7"), ("--replicates", "1"), ("--seed-resampling", "nope")):
        r = run_cli("verdict", tmp_path / "elo", "--out", tmp_path / "v2.md", *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
    r = run_cli("elo", tmp_path / "nothing", "--out", tmp_path / "e2")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_verdict_reads_early_late_loss_at_a_drop():
    means = 400 * 0.8 * np.log10(PARAMS / PARAMS[0])
    means[4:] -= 400
    t = inverse_scaling(*synthetic_sizes(means), reps=2000)
    assert t.inverse and t.peak == 7496

    def loss(early, late, pooled=True):
        return {"target": "trainset", "frame": "side_to_move", "game": "oware",
                "early_late": {"applicable": True, "pooled": pooled, "late_turn": 40, "statistic": "mean",
                               "interval": {"description": "planted"},
                               "by_params": {str(p): {"early_loss": 0.1, "late_loss": 0.3, "early_ci": [0.09, 0.11],
                                                      "late_ci": [0.28, 0.32], "early_states": 100,
                                                      "late_states": 20, "seeds": 2} for p in PARAMS},
                               "pairs": {"7496:66824": {"early_ratio": early[0], "early_ci": list(early[1:]),
                                                        "late_ratio": late[0], "late_ci": list(late[1:])}}}}
    text = verdict_markdown("oware", t, loss=loss((3.0, 2.0, 4.5), (0.5, 0.3, 0.8)))
    assert "| 7,496 | 2 | 0.1000 | [0.0900, 0.1100] |" in text
    assert "Loss split: consistent: early-state loss ×3.00 [2.00, 4.50], late-state loss ×0.50 [0.30, 0.80]" in text
    # the end-game evidence is missing, so the drop is not attributed even with a matching split
    assert "cannot be attributed" in text
    assert "Loss split: contradicts" in verdict_markdown("oware", t, loss=loss((3.0, 2.0, 4.5), (1.6, 1.2, 2.0)))
    assert "Loss split: inconclusive" in verdict_markdown("oware", t, loss=loss((3.0, 2.0, 4.5), (0.8, 0.5, 1.2)))
    assert "not comparable" in verdict_markdown("oware", t, loss=loss((3.0, 2.0, 4.5), (0.5, 0.3, 0.8), False))
    assert "Not measured: run `azscale loss --pooled`" in verdict_markdown("oware", t)


def test_spread_checkpoints_are_log_spaced_and_keep_both_ends(tmp_path):
    from azscale.checkpoints import spread_checkpoints
    from azscale.config import checkpoint_schedule
    d = tmp_path / "run" / "checkpoints"
    d.mkdir(parents=True)
    for s in [0] + checkpoint_schedule(800, 17):
        (d / f"step-{s:06d}.pt").write_bytes(b"")
    steps = lambda k: [int(p.stem.split("-")[1]) for p in spread_checkpoints(tmp_path / "run", k)]  # noqa: E731
    assert steps(2) == [2, 800]
    # about 1.4 decades apart in log(step) / 4, with 207 (the nearest pick) replaced by 466, the
    # checkpoint nearest two thirds of 800 that saturation compares with the final one
    assert steps(5) == [2, 8, 41, 466, 800]
    assert steps(100) == checkpoint_schedule(800, 17)  # all trained ones; never the untrained step 0
    with pytest.raises(UserError):
        spread_checkpoints(tmp_path / "run", 1)
