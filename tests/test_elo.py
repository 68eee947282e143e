import numpy as np
import pyspiel
import pytest

from azscale.analysis.elo import fit_elo, simulate_results
from azscale.errors import UserError


def _ratings(fit, n):
    return np.array([dict(zip(fit.players, fit.ratings))[f"p{k}"] for k in range(n)])


def test_recovers_known_ratings_first_move_and_draws():
    true = np.linspace(-400, 400, 12)
    df = simulate_results(true, 400, first_move=35.0, draw_width=120.0, seed=3)
    fit = fit_elo(df, anchor="p0")
    got = _ratings(fit, 12)
    err = (got - got.mean()) - (true - true.mean())   # ratings are defined up to a shift
    assert np.abs(err).max() < 15
    assert abs(fit.first_move - 35.0) < 10
    assert abs(fit.draw_width - 120.0) < 15
    assert got[0] == 0.0                                 # the anchor


def test_bootstrap_intervals_cover_and_are_sized_right():
    true = np.linspace(-300, 300, 8)
    df = simulate_results(true, 400, 20.0, 100.0, seed=4)
    fit = fit_elo(df, anchor="p0", bootstrap=40, seed=1)
    got = _ratings(fit, 8)
    order = [fit.players.index(f"p{k}") for k in range(8)]
    lo, hi = fit.ci_low[order], fit.ci_high[order]
    assert ((lo <= got + 1e-9) & (got <= hi + 1e-9)).all()
    truth = true - true[0]
    assert ((lo - 5 <= truth) & (truth <= hi + 5)).mean() >= 0.85
    assert 3 < fit.stderr[order][1:].mean() < 25
    assert fit.first_move_ci[0] < fit.first_move < fit.first_move_ci[1]


def test_agrees_with_pyspiel_elo_without_draws():
    true = np.linspace(-300, 300, 6)
    df = simulate_results(true, 400, 0.0, 0.0, seed=2)
    fit = fit_elo(df, anchor="p0")
    names = [f"p{k}" for k in range(6)]
    wins = np.zeros((6, 6), int)
    for r in df.itertuples():
        a, b = names.index(r.first), names.index(r.second)
        wins[a, b] += r.wins
        wins[b, a] += r.losses
    opts = pyspiel.elo.default_elo_options()
    opts.smoothing_factor = 0.0
    opts.minimum_rating = -1e9
    ref = np.array(pyspiel.elo.compute_ratings_from_matrices(wins.tolist(), [], opts))
    ours = _ratings(fit, 6)
    assert np.abs((ours - ours.mean()) - (ref - ref.mean())).max() < 1.0
    assert fit.draw_width == pytest.approx(0.0, abs=1e-6)


def test_unbeaten_player_gets_a_finite_rating():
    import pandas as pd
    df = pd.DataFrame([{"first": "a", "second": "b", "wins": 50, "draws": 0, "losses": 0},
                       {"first": "b", "second": "a", "wins": 0, "draws": 0, "losses": 50}])
    fit = fit_elo(df, anchor="b")
    assert np.isfinite(fit.ratings).all() and fit.ratings[0] > 400


def test_bad_anchor_is_refused():
    df = simulate_results([0, 100], 20, 0, 50)
    with pytest.raises(UserError, match="anchor"):
        fit_elo(df, anchor="random")
