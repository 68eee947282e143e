"""The small-oware solver: its rules move for move against pyspiel, its values against an
exhaustive search through pyspiel (which carries the real repetition history) on end-game
positions, its budget and its refusals."""

import math
import random

import pyspiel
import pytest

from azscale.errors import UserError
from azscale.owaresolve import OwareRules, OwareSolver, cycle_census


def game(h, s):
    return pyspiel.load_game(f"oware(num_houses_per_player={h},num_seeds_per_house={s})")


@pytest.mark.parametrize("h,s", [(3, 2), (4, 3), (6, 4)])
def test_rules_follow_pyspiel_move_for_move(h, s):
    g, R, rng = game(h, s), OwareRules(h, s), random.Random(h * 7 + s)
    repeated_ends = 0
    for _ in range(60):
        st, moves = g.new_initial_state(), []
        while not st.is_terminal():
            b, sc, p, hist, over = R.replay(moves)
            assert not over and p == st.current_player()
            assert R.legal(b, p) == st.legal_actions()
            a = rng.choice(st.legal_actions())
            st.apply_action(a)
            moves.append(a)
        b, sc, p, hist, over = R.replay(moves)
        assert over
        assert st.returns()[0] == (sc[0] > sc[1]) - (sc[0] < sc[1])
        assert sum(sc) == R.total
        b2, sc2, cap = R.sow(*R.replay(moves[:-1])[:3], moves[-1])
        repeated_ends += (not cap) and (b2, 1 - R.replay(moves[:-1])[2]) in R.replay(moves[:-1])[3]
    assert repeated_ends > 0          # the repetition rule was exercised


def exhaustive(state, limit):
    """The mover's value by plain minimax through pyspiel; None past `limit` positions."""
    count = [0]

    def rec(s):
        count[0] += 1
        if count[0] > limit:
            raise OverflowError
        p, best = s.current_player(), -2
        for a in s.legal_actions():
            c = s.child(a)
            v = c.returns()[p] if c.is_terminal() else -rec(c)
            best = max(best, v)
            if best == 1:
                break
        return best
    try:
        return rec(state)
    except OverflowError:
        return None


@pytest.mark.parametrize("h,s", [(3, 2), (3, 3), (4, 2)])
def test_values_equal_exhaustive_pyspiel_search(h, s):
    g, rng = game(h, s), random.Random(100 + h * 10 + s)
    solver = OwareSolver(g)
    checked = history_mattered = masks = 0
    for _ in range(25):
        st, states = g.new_initial_state(), []
        while not st.is_terminal():
            states.append(st.clone())
            st.apply_action(rng.choice(st.legal_actions()))
        for c in states[-8:]:
            truth = exhaustive(c, 4000)
            if truth is None:
                continue
            lab = solver.label(c)
            assert lab.value == truth, (c.history(), lab.value, truth)
            av = solver.action_values(c.history())
            if lab.best_mask:           # the optimal moves, when their test fitted the budget
                assert lab.best_mask == sum(1 << a for a, v in av.items() if v == lab.value)
                masks += 1
            checked += 1
            # the same board with its history cleared (as just after a capture)
            b, sc, p, hist, _ = solver.rules.replay(c.history())
            solver._left = 10 ** 7
            fresh = solver._search(b, sc, p, {(b, p)}, True, -1, 1, 0)
            history_mattered += fresh != truth
    assert checked >= 60 and masks >= checked // 2
    assert history_mattered > 0 or (h, s) != (3, 2)   # on (3,2) the repetition history changes values


def test_start_of_the_smallest_board_solves_and_budget_leaves_nan():
    g = game(3, 2)
    st = g.new_initial_state()
    lab = OwareSolver(g).label(st)
    assert lab.value in (-1.0, 0.0, 1.0) and lab.best_mask != 0
    tiny = OwareSolver(g, budget=50).label(st)
    assert math.isnan(tiny.value) and tiny.best_mask == 0


def test_refuses_large_boards_and_other_games():
    with pytest.raises(UserError, match="48 seeds"):
        OwareSolver(pyspiel.load_game("oware"))
    with pytest.raises(UserError, match="tic_tac_toe"):
        OwareSolver(pyspiel.load_game("tic_tac_toe"))


def test_cycle_census_counts_boards_on_cycles():
    c = cycle_census(3, 2)
    assert c["pairs"] == sum(2 * math.comb(t + 5, 5) for t in range(13))
    assert 0 < c["on_cycle"] < c["pairs"]
    assert cycle_census(6, 4) is None


def test_the_budget_reaches_the_label_cache_and_a_larger_one_retries_what_a_smaller_left(tmp_path):
    """`solve_into(..., budget=)`: a start position left unsolved under a tiny budget is NaN in
    the cache, and solved when asked again with the default budget (retried, not kept)."""
    from azscale.oracles import LabelCache, make_oracle, solve_into
    name = "oware(num_houses_per_player=3,num_seeds_per_house=2)"
    g = pyspiel.load_game(name)
    assert make_oracle(g, budget=77).budget == 77 and make_oracle(g).budget == 300_000
    cache = LabelCache(tmp_path / "c", name, make_oracle(g).name)
    assert solve_into(cache, name, [1], [[]], budget=50) == 1
    assert math.isnan(cache.data[1][0])
    assert solve_into(cache, name, [1], [[]], budget=50) == 0          # same budget: nothing to retry
    assert solve_into(cache, name, [1], [[]]) == 1 and cache.data[1][0] in (-1.0, 0.0, 1.0)


def test_a_bad_budget_is_one_line(tmp_path):
    from conftest import run_cli
    for args in (["solve", "oware(num_houses_per_player=3,num_seeds_per_house=2)", "--states", tmp_path / "s.parquet",
                  "--out", tmp_path / "c", "--budget", "0"],
                 ["loss", tmp_path / "r", "--out", tmp_path / "l", "--target", "solver", "--solver-budget", "-5"]):
        r = run_cli(*args)
        assert r.returncode == 2 and "budget" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
