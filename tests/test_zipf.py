import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from azscale.analysis.baselines import random_games
from azscale.analysis.endgame import early_counts, late_share_by_rank
from azscale.analysis.importer import import_openspiel
from azscale.analysis.plotting import curve_colours
from azscale.analysis.states import build_states, state_key, table_meta
from azscale.analysis.zipf import (envelope_alpha, fit_all, fit_ls, fit_mle, rank_frequency,
                                   toy_tree_counts)
from azscale.errors import UserError
from azscale.runs import games_table, read_games

from conftest import run_cli


def zipf_counts(alpha, states, visits, seed=0):
    rng = np.random.default_rng(seed)
    p = np.arange(1, states + 1, dtype=float) ** -alpha
    p /= p.sum()
    return np.bincount(rng.choice(states, size=visits, p=p), minlength=states)


@pytest.fixture(scope="module")
def synthetic():
    return zipf_counts(1.0, 10**6, 10**7)


def test_least_squares_recovers_known_exponent(synthetic):
    res = fit_ls(synthetic, {"kind": "ranks", "lo": 10, "hi": 1e4, "weight": "2/sqrt(rank)"})
    assert abs(res.alpha - 1.0) < 0.02
    assert (res.rank_min, res.rank_max) == (10, 10000)


def test_mle_recovers_known_exponent(synthetic):
    res = fit_mle(synthetic)
    assert abs(res.alpha - 1.0) < 0.02
    assert abs(res.details["gamma"] - 2.0) < 0.04          # alpha_Z = 1 / (gamma - 1)
    assert "lognormal_R" in res.details


def test_mle_search_floor_on_large_tables(synthetic, monkeypatch):
    """Above MLE_MAX_POINTS states the x_min search starts higher; it must say so and still recover."""
    import azscale.analysis.zipf as z
    monkeypatch.setattr(z, "MLE_MAX_POINTS", 2000)
    res = z.fit_mle(synthetic, compare=False)
    floor = res.details["xmin_search_floor"]
    assert floor > 1 and res.details["xmin"] >= floor
    assert (rank_frequency(synthetic) >= floor).sum() <= 2000
    assert f"among counts >= {floor:g}" in res.window
    assert abs(res.alpha - 1.0) < 0.05


@pytest.mark.parametrize("alpha", [0.8, 1.3])
def test_least_squares_other_exponents(alpha):
    c = zipf_counts(alpha, 10**5, 2 * 10**6, seed=1)
    res = fit_ls(c, {"kind": "ranks", "lo": 10, "hi": 2e3, "weight": "2/sqrt(rank)"})
    assert abs(res.alpha - alpha) < 0.02


def test_uniform_toy_tree_envelope_exponent_is_one():
    sc = rank_frequency(toy_tree_counts(7, 8))
    assert abs(envelope_alpha(sc) - 1.0) < 0.03


def _game_visits(seed, states=20000, n_games=4000, per_game=50, alpha=1.1):
    rng = np.random.default_rng(seed)
    p = np.arange(1, states + 1, dtype=float) ** -alpha
    p /= p.sum()
    visit_state = rng.choice(states, size=n_games * per_game, p=p)
    return visit_state, np.repeat(np.arange(n_games), per_game), np.bincount(visit_state, minlength=states)


@pytest.mark.parametrize("interval", ["jackknife", "bootstrap"])
def test_resampling_standard_error_matches_replicates(interval):
    """The standard error from resampling games must match the real spread of the estimate over
    independent data sets (within a factor of 2), and the interval must hold the estimate."""
    window = {"kind": "ranks", "lo": 5, "hi": 500, "weight": "2/sqrt(rank)"}
    vs, vg, counts = _game_visits(1)
    ls, mle = fit_all(counts, window, (vs, vg, 4000), bootstrap=30, seed=1, interval=interval)
    data = [_game_visits(100 + k)[2] for k in range(12)]
    ls_spread = np.std([fit_ls(c, window).alpha for c in data], ddof=1)
    # the estimator reported chooses x_min on its data, so its real spread includes that choice
    mle_spread = np.std([fit_mle(c, compare=False).alpha for c in data], ddof=1)
    assert abs(ls.alpha - 1.1) < 0.02
    assert 0.5 < ls.stderr / ls_spread < 2.0, (ls.stderr, ls_spread)
    assert ls.ci_low < ls.alpha < ls.ci_high
    assert ls.details["resampling"]["resampled"] == "games"
    assert ls.details["resampling"]["method"] == interval
    assert mle.ci_low < mle.alpha < mle.ci_high
    if interval == "jackknife":        # (the bootstrap's MLE error is 0.4x the real spread here)
        assert 0.5 < mle.stderr / mle_spread < 2.0, (mle.stderr, mle_spread)


def test_jackknife_survives_where_the_bootstrap_breaks():
    """Games that each visit mostly their own states (like random play): the bootstrap's
    duplicated games inflate low counts and move the MLE; the jackknife stays near the spread."""
    rng = np.random.default_rng(5)
    n_games, per_game = 3000, 30
    shared = rng.zipf(1.8, n_games * per_game) % 5000            # some states recur
    own = 10**6 + np.arange(n_games * per_game)                  # most states belong to one game
    vs = np.where(rng.random(n_games * per_game) < 0.35, shared, own)
    _, vs = np.unique(vs, return_inverse=True)
    vg = np.repeat(np.arange(n_games), per_game)
    counts = np.bincount(vs)
    window = {"kind": "ranks", "lo": 5, "hi": 300, "weight": "2/sqrt(rank)"}
    ls, mle = fit_all(counts, window, (vs, vg, n_games), bootstrap=20, seed=0)
    assert mle.details["resampling"]["usable"] >= 10
    assert mle.ci_low < mle.alpha < mle.ci_high
    assert mle.stderr < 0.2


def test_mle_on_counts_powerlaw_cannot_fit_is_missing_not_a_crash():
    """powerlaw raises on some tiny tables (no points left in its tail); the fit is NaN with
    the reason, and the sweep's Zipf step goes on (it used to stop with a traceback)."""
    from azscale.analysis.zipf import fit_mle
    res = fit_mle(np.array([1] * 20 + [2]))
    assert math.isnan(res.alpha) and "could not fit" in res.window


def test_paper_window_by_counts():
    counts = np.array([500, 200, 120, 100, 60, 30, 11, 10, 9, 3])
    res = fit_ls(counts, {"kind": "counts", "lo": 100, "hi": 10, "weight": "2/sqrt(rank)"})
    assert (res.rank_min, res.rank_max) == (4, 8)


def test_state_keys_are_stable_across_processes():
    code = "from azscale.analysis.states import state_key; print(state_key('x..\\n.o.\\n...'))"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout.strip()
            for seed in (1, 2, 3)}
    assert outs == {str(state_key("x..\n.o.\n..."))}
    # a fixed value, so a change of scheme cannot pass unnoticed
    assert state_key("") == int.from_bytes(bytes.fromhex("e4a6a0577479b2b4"), "little")


def _table(games, name="hand"):
    rows = []
    for i, (acts, r0) in enumerate(games):
        rows.append({"game_id": i, "run": name, "kind": "selfplay", "game": "tic_tac_toe",
                     "net_step": i, "net_step_first": i, "seat0": "a", "seat1": "a",
                     "temperature": 1.0, "temperature_drop": 4, "simulations": 10,
                     "actions": acts, "return0": r0, "return1": -r0, "length": len(acts)})
    return games_table(rows, "tic_tac_toe")


def test_states_table_counts_by_hand():
    # two games sharing their first two moves; x wins the first, o the second
    t = _table([([0, 3, 1, 4, 2], 1.0), ([0, 3, 8, 4, 7, 5], -1.0)])
    st, _ = build_states(t)
    d = st.to_pandas()
    # 4 + 5 non-terminal, non-initial visits; 2 shared states
    assert d["count"].sum() == 9 and len(d) == 7
    top = d[d["count"] == 2].sort_values("mean_turn")
    assert top["mean_turn"].tolist() == [1.0, 2.0]
    assert top["outcome_p0"].tolist() == [0.0, 0.0]            # one win, one loss
    assert top["player"].tolist() == [1, 0]                    # o to move after 1 move
    assert d["rank"].tolist() == list(range(1, 8))
    meta = table_meta(st)
    assert meta["key_scheme"] == "openspiel-str-blake2b64/1" and meta["frame"] == "player0"
    assert meta["selection"]["games"] == 2


def test_selection_windows_and_first_moves():
    t = _table([([0, 3, 1, 4, 2], 1.0)] * 10)
    st, _ = build_states(t, window="last70")
    assert table_meta(st)["selection"]["games"] == 7
    st, _ = build_states(t, window="steps:2-4")
    assert table_meta(st)["selection"]["games"] == 3
    st, _ = build_states(t, first_moves=2)
    assert st["count"].to_pylist() == [10, 10]
    with pytest.raises(UserError, match="window"):
        build_states(t, window="first30")


def test_symmetry_key_merges_mirror_images():
    t = _table([([0, 4], 0.0), ([2, 4], 0.0), ([6, 4], 0.0), ([8, 4], 0.0)])
    plain, _ = build_states(t)
    sym, _ = build_states(t, symmetry=True)
    assert len(plain) > len(sym)
    assert max(sym["count"].to_pylist()) == 4            # the four corner openings are one state
    assert table_meta(sym)["key_scheme"].endswith("d4/1")


def test_late_share_and_early_curve():
    counts = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1])
    turns = np.array([50, 45, 10, 10, 10, 60, 10, 10, 10])
    t = late_share_by_rank(counts, turns, 40, bins_per_decade=2)
    assert t["states"].sum() == 9
    assert t.iloc[0]["late_share"] == 1.0     # rank 1 is late
    assert early_counts(counts, turns, 40).tolist() == [7, 6, 5, 3, 2, 1]


def test_random_games_are_deterministic_and_resume(tmp_path):
    random_games("tic_tac_toe", 250, 3, tmp_path / "a", part_size=100, workers=1, progress=False)
    random_games("tic_tac_toe", 250, 3, tmp_path / "b", part_size=100, workers=1, progress=False)
    (tmp_path / "b" / "games" / "part-000001.parquet").unlink()          # an interrupted run
    assert random_games("tic_tac_toe", 250, 3, tmp_path / "b", part_size=100, workers=1, progress=False) == 100
    a, b = read_games(tmp_path / "a"), read_games(tmp_path / "b")
    assert a.drop_columns(["run"]).equals(b.drop_columns(["run"]))
    assert a["game_id"].to_pylist() == list(range(250))
    with pytest.raises(UserError, match="different settings"):
        random_games("tic_tac_toe", 250, 4, tmp_path / "b", part_size=100, workers=1, progress=False)


def test_same_games_same_table_serial_or_parallel(tmp_path):
    random_games("connect_four", 3000, 1, tmp_path / "r", part_size=1000, workers=1, progress=False)
    g = read_games(tmp_path / "r")
    one, _ = build_states(g, workers=1)
    two, _ = build_states(g, workers=2)
    assert one.equals(two)


def test_import_openspiel_logs(tmp_path):
    import pyspiel
    game = pyspiel.load_game("connect_four")
    rng = np.random.default_rng(0)
    lines, truth = [], []
    for n in range(1, 6):
        s = game.new_initial_state()
        acts, strs = [], []
        while not s.is_terminal():
            a = int(rng.choice(s.legal_actions()))
            strs.append(s.action_to_string(s.current_player(), a))
            acts.append(a)
            s.apply_action(a)
        truth.append(acts)
        lines.append(f"[2024-01-01 00:00:{n:02d}.000] Game {n}: Returns: "
                     f"{' '.join(map(str, s.returns()))}; Actions: {' '.join(strs)}")
    src = tmp_path / "az"
    src.mkdir()
    (src / "log-actor-0.txt").write_text("[2024-01-01 00:00:00.000] Starting\n" + "\n".join(lines) + "\n")
    assert import_openspiel(src, "connect_four", tmp_path / "imp") == 5
    t = read_games(tmp_path / "imp")
    assert t["actions"].to_pylist() == truth
    # the wrong game is refused with the line named, and nothing is written
    with pytest.raises(UserError, match="log-actor-0.txt:2"):
        import_openspiel(src, "tic_tac_toe", tmp_path / "wrong")
    assert not (tmp_path / "wrong" / "games").exists()


def test_zipf_cli_end_to_end(tmp_path):
    r = run_cli("random-games", "connect_four", "--games", "3000", "--seed", "2", "--out",
                tmp_path / "rnd", "-q", "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("zipf", tmp_path / "rnd", "--out", tmp_path / "z", "--workers", "1", "--bootstrap", "5")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "z" / "fits.json").read_text())
    assert res["key_scheme"] == "openspiel-str-blake2b64/1"
    assert res["fit_window"]["weight"] == "2/rank"           # the paper's random-play window
    (ls, mle) = res["curves"][0]["fits"]
    assert ls["method"] == "ls" and 0.5 < ls["alpha"] < 1.5 and ls["ci_low"] < ls["alpha"] < ls["ci_high"]
    for f in ("rank_frequency.png", "rank_frequency.svg", "states.parquet", "summary.md"):
        assert (tmp_path / "z" / f).stat().st_size > 0
    # connect_four is too short for the paper's end game (late_turn 40, shoulder test on 50 moves):
    # said with the reason, and no empty late-share table or panels
    eg = res["endgame"]
    assert not eg["applicable"] and eg["reason"].startswith("not applicable: games last at most 42 moves")
    assert "not applicable: games last at most 42 moves" in (tmp_path / "z" / "summary.md").read_text()
    assert "end game: not applicable: games last at most 42 moves" in r.stdout
    assert not list((tmp_path / "z").glob("late_share*")) and not (tmp_path / "z" / "rank_frequency_early.png").exists()


def test_zipf_cli_bad_inputs_one_line(tmp_path):
    (tmp_path / "trunc.parquet").write_bytes(b"PAR1\x00\x01")
    import pandas as pd
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "foreign.parquet")
    for src in (tmp_path / "trunc.parquet", tmp_path / "foreign.parquet", tmp_path / "missing"):
        r = run_cli("zipf", src, "--out", tmp_path / "o", "--workers", "1")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o" / "fits.json").exists()


def test_plot_points_draw_the_staircase_exactly():
    from azscale.analysis.zipf import plot_points
    sc = rank_frequency(zipf_counts(1.0, 10**5, 10**6, seed=2))
    idx = plot_points(sc)
    assert len(idx) < 10_000 < len(sc)
    # linear interpolation between kept points (in rank) reproduces every count exactly
    assert np.array_equal(np.interp(np.arange(len(sc)), idx, sc[idx]), sc)


def test_figure_colours_stay_distinct_past_ten_curves():
    # a 5 sizes x 2 seeds sweep draws 10 runs plus the pooled curve: no two may share a colour
    for n in (2, 10, 13):
        labels = [f"run{i}" for i in range(n)] + ["combined"]
        colours = [str(c) for c in curve_colours(labels)]
        assert len(set(colours)) == len(labels)
        assert colours[-1] == "k"


def test_sources_read_once_per_run_and_of_one_game(tmp_path):
    """`runs.read_sources_games`, which zipf and loss read their inputs through: a run whose games
    two sources hold, and sources of several games, are refused with one line."""
    from azscale.runs import read_sources_games, write_games_part
    for d, name in (("a", "hand"), ("b", "hand"), ("c", "other")):
        write_games_part(tmp_path / d, 0, _table([([0, 3, 1, 4, 2], 1.0)], name).to_pylist(), "tic_tac_toe")
    rows = _table([([0], 0.0)], "c4").to_pylist()
    write_games_part(tmp_path / "d", 0, [{**r, "game": "connect_four"} for r in rows], "connect_four")
    tables, game = read_sources_games([tmp_path / "a", tmp_path / "c"])
    assert game == "tic_tac_toe" and [s.name for s, _ in tables] == ["a", "c"]
    with pytest.raises(UserError, match=r"a and .*b both hold games of run 'hand'.*each run counts once"):
        read_sources_games([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(UserError, match=r"the inputs mix several games \(connect_four, tic_tac_toe\)"):
        read_sources_games([tmp_path / "a", tmp_path / "d"])


@pytest.mark.parametrize("damage", ["selection-not-json", "selection-missing", "columns-missing", "not-states"])
def test_a_damaged_states_table_is_one_line_everywhere(tmp_path, damage):
    """Every reader of a states table (`azscale solve`, `azscale toy-tree --compare`,
    `load_states`) goes through `read_states_table`: a damaged one is one line, exit 2."""
    import pyarrow.parquet as pq

    import azscale
    from azscale.analysis.states import read_states_table
    st, _ = build_states(_table([([0, 3, 1, 4, 2], 1.0), ([0, 3, 8, 4, 7, 5], -1.0)]))
    meta = dict(st.schema.metadata)
    if damage == "selection-not-json":
        meta[b"selection"] = b"{not json"
    elif damage == "selection-missing":
        del meta[b"selection"]
    elif damage == "columns-missing":
        st = st.drop_columns(["count", "example_turn"])
    else:
        meta[b"azscale.table"] = b"games"
    z = tmp_path / "z"
    z.mkdir()
    pq.write_table(st.replace_schema_metadata(meta), z / "states.parquet")
    want = {"selection-not-json": "damaged states table (its metadata is not readable)",
            "selection-missing": "damaged states table (selection missing)",
            "columns-missing": "damaged states table (count",     # toy-tree asks for the counts only
            "not-states": "not an azscale states table"}[damage]
    for args in (["solve", "tic_tac_toe", "--states", z / "states.parquet", "--out", tmp_path / "labels"],
                 ["toy-tree", "--branching", "2", "--depth", "3", "--out", tmp_path / "toy", "--compare", z]):
        r = run_cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith("azscale: error: ") and want in lines[0], lines[0]
    with pytest.raises(UserError) as err:
        azscale.load_states(z)
    assert want in str(err.value)
    with pytest.raises(UserError):
        read_states_table(z / "states.parquet")
    assert not (tmp_path / "labels").exists() and not (tmp_path / "toy" / "toy_tree.json").exists()
