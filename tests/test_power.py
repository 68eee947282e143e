"""The verdict's power (power.py) against the verdict itself.

The fast simulator replaces the bootstrap's p-values by their limit for infinitely many
replicates and the rating fit's noise by the inverse Fisher information; both are checked here
against the real thing: the bootstrap of sizeboot.py on the same ratings, and full simulations
(games played, ratings refitted with bootstrap refits, `inverse_scaling` run).
"""
import json

import numpy as np
import pandas as pd
import pytest

from azscale.analysis.elo import fit_elo, simulate_results
from azscale.analysis.power import (Design, Simulator, detectable_fall, family, family_p, game_covariance, plan,
                                    seed_sd_from_study)
from azscale.analysis.verdict import inverse_scaling
from azscale.errors import UserError

from conftest import run_cli


def full_study(d: Design, fall: float, rep: int, refits: int = 4):
    """One study through the real pipeline: seed strengths, a round-robin of games, the rating
    fit with `refits` bootstrap refits, the verdict's test."""
    rng = np.random.default_rng(rep)
    size_of = np.repeat(np.arange(len(d.params)), d.seeds)
    true = d.means(fall)[size_of] + rng.normal(0, d.seed_sd, len(size_of))
    fit = fit_elo(simulate_results(true, d.games_per_pair, d.first_move, d.draw_width, seed=10_000 + rep),
                  bootstrap=refits, seed=rep)
    order = [fit.players.index(f"p{k}") for k in range(len(true))]
    sizes = pd.DataFrame({"params": np.asarray(d.params)[size_of], "elo": fit.ratings[order]})
    return sizes, fit.samples[:, order]


def test_game_covariance_matches_the_spread_of_refitted_ratings():
    """The Fisher information's standard errors against the spread of maximum-likelihood
    ratings over independent round-robins (not bootstrap refits of one)."""
    r = np.array([0.0, 0.0, 150.0, 300.0])
    cov = game_covariance(r, 200, 30.0, 100.0)
    fits = np.array([fit_elo(simulate_results(r, 200, 30.0, 100.0, seed=s)).ratings for s in range(50)])
    fits -= fits[:, :1]                                   # the same anchor: agent 0
    want, got = np.sqrt(np.diag(cov))[1:], fits.std(0, ddof=1)[1:]
    # 50 fits: the sd of an sd is ~10% of it
    assert np.all(np.abs(got / want - 1) < 0.3), (want, got)
    assert 0.85 < np.mean(got / want) < 1.15, (want, got)


def test_infinite_replicate_p_values_match_the_bootstrap():
    """The same ratings, their game noise given as 4,000 Gaussian refits of known covariance:
    the hierarchical bootstrap's p-values (sizeboot.py, 40,000 replicates) and power.py's."""
    d = Design([100, 200, 400, 800, 1600], 2, 400, 40.0)
    size_of = np.repeat(np.arange(5), 2)
    rng = np.random.default_rng(3)
    est = np.array([0, 20, 120, 180, 300, 260, 240, 290, 60, 30.0])
    cov = game_covariance(est, 400, 30.0, 100.0)
    w, v = np.linalg.eigh(cov)
    refits = est + rng.standard_normal((4000, 10)) @ (v * np.sqrt(np.clip(w, 0, None))).T
    sizes = pd.DataFrame({"params": np.asarray(d.params)[size_of], "elo": est})
    t = inverse_scaling(sizes, refits, reps=40_000, seed=1)
    real = [c.p for c in t.steps] + [c.p for c in t.vs_largest[:-1]]
    seeds = np.full(5, 2.0)
    A = np.eye(5)[size_of] / 2
    _, p = family_p(est[None, :], size_of, seeds, A.T @ cov @ A)
    assert [(c.params_from, c.params_to) for c in t.steps + t.vs_largest[:-1]] == \
        [(d.params[a], d.params[b]) for a, b in family(5)]
    assert np.allclose(p[0], real, atol=0.02), (p[0].round(3), np.round(real, 3))
    assert max(real) > 0.5 and min(real) < 0.05            # the check spans small and large p-values


@pytest.mark.parametrize("design", [Design([500, 1000, 2000], 2, 400, 40.0),
                                    Design([500, 1000, 2000, 4000], 2, 100, 20.0)])
def test_printed_detectable_fall_is_within_25_percent_of_full_simulations(design):
    """At 1.25 x the printed MDE the real pipeline detects the fall in at least 80% of 20
    simulated studies, at 0.8 x in at most 80%: the MDE is within +-25%. Over 100 studies per
    point (seeds 0-99, 4 refits each): 3 sizes x 2 seeds x 400 games, seed spread 40, printed
    MDE 197 Elo: power 0.63 at 158, 0.76 at 197, 0.92 at 246; 4 sizes x 2 seeds x 100 games,
    seed spread 20, MDE 116 Elo: 0.66 at 92, 0.73 at 116, 0.94 at 145. At the MDE itself the
    full pipeline finds 0.73-0.76 (+-0.045) against the target 0.80: the printed MDE may be a few
    percent low. Twenty studies per point (the first 20 of those: 0.80 and 0.55; 0.95 and 0.60)
    catch an error well beyond 25%, not one just beyond it."""
    mde = detectable_fall(design).mde
    for factor, ok in ((1.25, lambda x: x >= 0.8), (0.8, lambda x: x <= 0.8)):
        hits = [inverse_scaling(*full_study(design, factor * mde, rep), reps=2000, seed=rep).inverse
                for rep in range(20)]
        assert ok(np.mean(hits)), (factor, mde, np.mean(hits))


def test_one_seed_has_no_power_and_bad_designs_are_refused():
    p = detectable_fall(Design([100, 200, 400], 1, 800, 40.0))
    assert not p.applicable and "two seeds" in p.reason and "not applicable" in p.sentence()
    p = detectable_fall(Design([100, 200, 400], [2, 1, 2], 800, 40.0))
    assert not p.applicable
    for bad in (dict(params=[100], seeds=2), dict(params=[200, 100], seeds=2), dict(params=[100, 200], seeds=0),
                dict(params=[100, 200], seeds=2, seed_sd=float("nan")), dict(params=[100, 200], seeds=2, peak_index=1)):
        with pytest.raises(UserError):
            Design(**{"games_per_pair": 100, "seed_sd": 30.0, **bad})


def test_power_grows_with_the_fall_and_with_seeds():
    """Common random numbers: the power curve of one design rises with the fall; more seeds
    detect a smaller fall; with a large seed spread, more games per pair barely help."""
    d = Design([100, 200, 400, 800, 1600], 2, 400, 40.0)
    sim = Simulator(d, 400, 0)
    pw = [sim.power(f) for f in (0, 50, 100, 200, 400)]
    assert pw == sorted(pw) and pw[0] < 0.05 and pw[-1] > 0.95
    m2 = detectable_fall(d).mde
    m4 = detectable_fall(Design(d.params, 4, 400, 40.0)).mde
    m2g = detectable_fall(Design(d.params, 2, 3200, 40.0)).mde
    assert m4 < 0.8 * m2 and 0.85 * m2 < m2g <= m2


def test_seed_spread_is_the_ratings_spread_less_game_noise():
    assert seed_sd_from_study(50.0, 30.0 ** 2) == pytest.approx(40.0)
    assert seed_sd_from_study(20.0, 30.0 ** 2) == 0.0


def test_plan_cli(tmp_path):
    r = run_cli("verdict", "--plan", "--sizes", "608,1304,2984,7496", "--seeds", "2", "--games-per-pair", "400",
                "--seed-sd", "40", "--fall", "150", "--power-sims", "200", "--out", tmp_path / "plan.md")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "plan.json").read_text())
    mde = res["own"]["minimum_detectable_fall"]
    want = detectable_fall(Design([608, 1304, 2984, 7496], 2, 400, 40.0), sims=200).mde
    assert mde == pytest.approx(want) and f"**{mde:,.0f} Elo**" in r.stdout
    assert "| 4 | 400 |" in r.stdout and {g["seeds"] for g in res["grid"]} == {2, 3, 4, 6}
    for bad in (("--sizes", "200,100"), ("--fall", "-5"), ("--power-sims", "3"), ("--sizes", "100,,400"),
                ("--sizes", "100,1_000"), ("--sizes", "100," + "9" * 30), ("--seed-resampling", "xyz"),
                ("--replicates", "-1")):
        args = {"--sizes": "100,200,400", "--fall": "100", **dict([bad])}
        r = run_cli("verdict", "--plan", *[x for kv in args.items() for x in kv])
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
    r = run_cli("verdict", "--plan")
    assert r.returncode == 2 and "--sizes" in r.stderr
    r = run_cli("verdict", "--out", tmp_path / "v.md")
    assert r.returncode == 2 and "elo directory" in r.stderr


def test_stated_monte_carlo_error_matches_the_spread_over_simulation_seeds():
    """The MDE's stated Monte-Carlo error against the spread of the MDE over 10 simulation seeds
    (measured on two designs, 12 seeds each: spread 6.1 and 3.0 Elo, stated 6.8 and 4.2)."""
    d = Design([608, 1304, 2984, 7496, 21128], 2, 400, 60.0)
    r = [detectable_fall(d, seed=s) for s in range(10)]
    spread, stated = np.std([x.mde for x in r], ddof=1), np.mean([x.mde_mc_se for x in r])
    assert 0.5 < spread / stated < 2, (spread, stated)
    assert all(x.sims == 400 for x in r) and "±" in r[0].sentence() and "400 simulated studies" in r[0].sentence()


def test_plan_of_a_one_seed_design_says_it_cannot_tell():
    res = plan(Design([100, 200, 400], 1, 200, 40.0), 150.0, sims=100)
    assert res["power_at_fall"] is None and not res["own"]["applicable"]
    assert {g["seeds"] for g in res["grid"]} == {2, 3, 4, 6}         # what more seeds would give
    assert Simulator(Design([100, 200, 400], 1, 200, 40.0), 100).power(1000.0) == 0.0
