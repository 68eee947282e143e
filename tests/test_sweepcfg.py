"""A sweep's settings: layers, values not text, what a rerun may change (no training here)."""
import json

import pytest

from azscale.errors import UserError
from azscale.sweepcfg import build, check, compare, from_record, merge, read_sweep_file, record
from azscale.sweepsteps import dependents, step_inputs


def sc_of(**kw):
    base = {"game": "tic_tac_toe", "preset": "smoke", "widths": [4, 16], "seeds": 1}
    return build(check({**base, **kw}, "--"), {})[0]


def test_settings_are_compared_as_values(tmp_path):
    have = sc_of(overrides={"steps": "8"})
    assert compare(have, sc_of(overrides={"steps": "08"}), tmp_path) == []
    assert compare(have, sc_of(overrides={"steps": 8.0}), tmp_path) == []
    # a training setting that changes no game may change; one that does is refused by name
    assert compare(have, sc_of(overrides={"steps": 8, "device": "cpu", "snapshot_seconds": 5}), tmp_path) == []
    with pytest.raises(UserError, match=r"other settings \(c_puct: the sweep has 2.0, asked 1.5\)"):
        compare(have, sc_of(overrides={"steps": 8, "c_puct": "1.5"}), tmp_path)
    # the settings of recorded games may change until those games are on disk
    assert compare(have, sc_of(overrides={"steps": 8}, random_games=10, games_per_pair=6), tmp_path) == \
        [f"random_games {have.random_games!r} -> 10", f"games_per_pair {have.games_per_pair!r} -> 6"]
    (tmp_path / "random" / "games").mkdir(parents=True)
    (tmp_path / "random" / "games" / "part-000000.parquet").write_bytes(b"")
    assert compare(have, sc_of(overrides={"steps": 8}, games_per_pair=6), tmp_path) == \
        [f"games_per_pair {have.games_per_pair!r} -> 6"]
    with pytest.raises(UserError, match="random_games: the sweep has 20000, asked 10 .its games are recorded"):
        compare(have, sc_of(overrides={"steps": 8}, random_games=10), tmp_path)
    (tmp_path / "matches" / "final" / "games").mkdir(parents=True)
    (tmp_path / "matches" / "final" / "games" / "part-000000.parquet").write_bytes(b"")
    with pytest.raises(UserError, match="games_per_pair: the sweep has"):
        compare(have, sc_of(overrides={"steps": 8}, games_per_pair=6), tmp_path)


def test_growing_and_what_may_change(tmp_path):
    have = sc_of()
    grows = compare(have, sc_of(widths=[4, 16, 8], seeds=3, bootstrap=7), tmp_path)
    assert grows == ["widths +8", "seeds 1 -> 3", "bootstrap 100 -> 7"]
    with pytest.raises(UserError, match="widths: 16 would be dropped"):
        compare(have, sc_of(widths=[4]), tmp_path)
    with pytest.raises(UserError, match="seeds: the sweep has 2, asked 1"):
        compare(sc_of(seeds=2), have, tmp_path)
    # families: an mlp sweep may add resnet runs, named with their family
    both = sc_of(families=["mlp", "resnet"])
    assert compare(have, both, tmp_path) == ["families +resnet"]
    names = [both.run_name(w, s, f) for f, w, s in both.sizes()]
    assert names == ["tic_tac_toe-w4-s0", "tic_tac_toe-w16-s0", "tic_tac_toe-resnet-w4-s0", "tic_tac_toe-resnet-w16-s0"]
    with pytest.raises(UserError, match="family: resnet would be dropped"):
        compare(both, have, tmp_path)


def test_layers_and_an_earlier_sweep_json(tmp_path):
    old = {"bootstrap": 100, "game": "oware", "games_per_pair": 200, "id": "x", "kind": "sweep",
           "match_simulations": 100, "match_temperature": 0.25, "max_minutes_per_run": None, "overrides": {},
           "preset": "cpu", "random_games": 20000, "seeds": 2, "solver": True, "solver_states": 20000,
           "widths": [8, 16, 32, 64, 128, 256]}           # the keys an earlier azscale wrote
    settings, ex = from_record(old, "sweep.json")
    sc, ex = build(merge(settings, None, {}), ex)
    assert (sc.families, sc.late_turn, sc.shoulder_moves, ex.kind, ex.parallel) == (None, None, None, "local", 1)
    assert compare(sc, build(merge(settings, None, {"seeds": 2, "games_per_pair": 200}), {})[0], tmp_path) == []
    rec = record(sc, ex)
    assert {k: rec[k] for k in old if k not in ("id", "kind")} == {k: v for k, v in old.items() if k not in ("id", "kind")}
    # flags over a file over the stored settings; overrides merge by name
    merged = merge({"overrides": {"steps": 8}, "seeds": 1}, {"overrides": {"c_puct": 1.5}, "seeds": 2}, {"seeds": 3})
    assert merged == {"overrides": {"steps": 8, "c_puct": 1.5}, "seeds": 3}


def test_sweep_file_is_checked(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('game = "tic_tac_toe"\nwidths = [4, 8]\n[analysis]\nbootstrap = 10\n[executor]\nkind = "ray"\n'
                 'gpus_per_run = 0.5\nstorage = "/shared"\n[overrides]\nsteps = 3\n')
    settings, ex, out = read_sweep_file(f)
    assert settings == {"game": "tic_tac_toe", "widths": [4, 8], "bootstrap": 10, "overrides": {"steps": 3}}
    assert ex == {"kind": "ray", "gpus_per_run": 0.5, "storage": "/shared"} and out is None
    for text, msg in (('game = "x"\nwidths = [4, 4]\n', "names a width twice"),
                      ('game = "x"\n[analysis]\ngames_per_pair = 3\n', "even number"),
                      ('game = "x"\n[analysis]\nbootstrap = nan\n', "bootstrap must be an integer"),
                      ('game = "x"\n[executor]\nkind = "slurm"\n', "executor must be local or ray"),
                      ('game = "x"\n[overrides]\nwidth = 3\n', "may not set 'width'"),
                      ('game = "x"\n[overrides]\nc_puct = "fast"\n', "c_puct"),
                      ('game = "x"\nseeds = true\n', "seeds must be an integer"),
                      ("game = \n", "not valid TOML")):
        f.write_text(text)
        with pytest.raises(UserError, match=msg):
            read_sweep_file(f)


def test_a_step_is_redone_with_every_step_that_reads_it():
    assert dependents({"tournament"}) == {"tournament", "elo", "scaling", "verdict"}
    assert dependents({"random-games"}) == {"random-games", "zipf-random"}
    a = step_inputs(sc_of(), ["r1"], True)
    b = step_inputs(sc_of(bootstrap=8), ["r1"], True)
    assert {k for k in a if a[k] != b[k]} == {"zipf", "zipf-random", "elo", "scaling"}
    assert "loss-solver" not in step_inputs(sc_of(), ["r1"], False)
    json.dumps(a)                                 # stored in steps.json as it is


def test_each_step_is_declared_once_and_its_fingerprint_names_only_known_inputs(monkeypatch):
    """The registry (`sweepsteps.STEPS`) is what the sweep runs, status lists and the report
    names; a step naming an input that does not exist is refused, never fingerprinted without it
    (which would keep its results when that setting changes)."""
    from azscale import sweepsteps as S
    assert list(S.STEPS) == S.ANALYSIS_STEPS and len(set(S.ANALYSIS_STEPS)) == len(S.ANALYSIS_STEPS)
    import importlib
    for s in S.STEPS.values():
        assert set(s.depends) <= set(S.STEPS) and set(s.inputs) <= set(S.INPUTS)
        module, name = s.function.split(":")          # named, imported when it runs
        assert callable(getattr(importlib.import_module(f"azscale.{module}"), name))
    assert S.result("zipf", "fits.json") == "analysis/zipf/fits.json"
    assert S.result("verdict", "verdict.md") == "analysis/verdict.md"
    with pytest.raises(KeyError, match="writes no 'fits.json'"):
        S.result("elo", "fits.json")
    typo = S.Step("zipf2", "sweepwork:run_zipf", inputs=("runs", "replicate"))
    with pytest.raises(ValueError, match="zipf2: unknown input.*replicate"):
        S._register(typo)
    with pytest.raises(KeyError, match="zipf2: unknown input 'replicate'"):
        typo.fingerprint(sc_of(), ["r1"], {"late_turn": 1.0, "shoulder_moves": 1})
    with pytest.raises(ValueError, match="declared twice"):
        S._register(S.STEPS["zipf"])
    with pytest.raises(ValueError, match="depends on nowhere"):
        S._register(S.Step("late", "sweepwork:run_zipf", depends=("nowhere",)))
    assert "zipf2" not in S.STEPS and "late" not in S.STEPS


def test_status_lists_the_registry_s_steps_as_the_sweep_runs_them():
    from azscale import sweepsteps as S
    sc = sc_of()
    assert [s.name for s in S.STEPS.values() if s.asked(sc)] == [
        "random-games", "zipf", "zipf-random", "tournament", "elo", "loss", "loss-pooled", "loss-solver", "scaling",
        "verdict"]
    assert set(step_inputs(sc_of(checkpoint_tournament=3, temperature_study="1"), ["r"], True)) == set(S.STEPS)
