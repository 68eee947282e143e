"""Saturation per run: planted loss curves and planted within-run ratings with known answers."""

from pathlib import Path

import numpy as np
import pandas as pd

from azscale.analysis.saturation import classify, elo_gain, loss_trend, summary_line


def metrics(loss_fn, steps=300, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    return [{"step": s, "loss_value": 0.5 * loss_fn(s) + rng.normal(0, noise), "loss_policy": 0.5 * loss_fn(s)}
            for s in range(1, steps + 1)]


def test_loss_trend_finds_a_planted_fall_and_a_plateau():
    fall = loss_trend(metrics(lambda s: 2.0 - 0.002 * s))          # 2.0 -> 1.4: -0.2 over the last 100 steps
    expect = -0.2 / np.mean([2.0 - 0.002 * s for s in range(201, 301)])
    assert fall["ci"][0] <= expect <= fall["ci"][1] and fall["ci"][1] < -0.05
    flat = loss_trend(metrics(lambda s: 1.0))
    assert -0.05 < flat["ci"][0] <= 0 <= flat["ci"][1] < 0.05
    assert not loss_trend(metrics(lambda s: 1.0, steps=20))["applicable"]
    assert not loss_trend([])["applicable"]


def test_loss_interval_covers_a_planted_slope():
    cover, n = 0, 200
    for seed in range(n):
        r = loss_trend(metrics(lambda s: 1.5 - 0.001 * s, noise=0.05, seed=seed))
        true = -0.1 / np.mean([1.5 - 0.001 * s for s in range(201, 301)])
        cover += r["ci"][0] <= true <= r["ci"][1]
    assert 0.88 <= cover / n <= 0.995, cover / n


def planted_table(gain, sd=20, reps=400, seed=0):
    rng = np.random.default_rng(seed)
    steps = [10, 100, 200, 300]
    elo = [0, 150, 300 - gain, 300]
    t = pd.DataFrame({"player": [f"r@{s}" for s in steps] + ["random"], "elo": elo + [0.0],
                      "run": ["r"] * 4 + [None], "step": steps + [np.nan], "params": [100] * 4 + [np.nan]})
    samples = np.array(elo + [0.0])[None, :] + rng.normal(0, sd, (reps, 5))
    return t, samples


def test_elo_gain_uses_the_checkpoint_before_two_thirds_and_classifies():
    t, s = planted_table(gain=200)
    g = elo_gain(t, s, "r")
    assert (g["from_step"], g["to_step"], g["gain"]) == (200, 300, 200)
    flat = loss_trend(metrics(lambda x: 1.0))
    assert classify(g, flat)[0] == "improving"
    t, s = planted_table(gain=0, sd=15)
    g0 = elo_gain(t, s, "r")
    assert g0["ci"][0] < 0 < g0["ci"][1] < 50
    assert classify(g0, flat)[0] == "saturated"
    # a flat Elo with a loss still falling is not saturated
    assert classify(g0, loss_trend(metrics(lambda x: 2.0 - 0.002 * x)))[0] == "improving"
    # a wide interval (few games) cannot tell
    t, s = planted_table(gain=0, sd=80)
    assert classify(elo_gain(t, s, "r"), flat)[0] == "cannot tell"
    # no within-run checkpoints: not applicable, cannot tell
    one = t[t["step"].isin([300]) | t["run"].isna()].reset_index(drop=True)
    g1 = elo_gain(one, None, "r")
    assert not g1["applicable"] and classify(g1, flat)[0] == "cannot tell"
    rows = [{"run": "a", "state": "saturated"}, {"run": "b", "state": "improving"}]
    assert summary_line(rows) == "1 of 2 runs saturated; still improving: b"


def test_a_detected_fall_is_cannot_tell_while_a_run_still_improves():
    """A planted peak-then-fall is detected; the same study with one run still improving (or
    not measured) says "cannot tell" and names the run; with every run saturated it stands."""
    from azscale.analysis.elo import fit_elo, simulate_results
    from azscale.analysis.verdict import inverse_scaling, saturation_condition, verdict_markdown
    params = np.array([608, 1304, 2984, 7496, 21128])
    means = np.repeat([0, 200, 400, 200, 0.], 2)
    rng = np.random.default_rng(3)
    true = means + rng.normal(0, 30, len(means))
    fit = fit_elo(simulate_results(true, 800, 30.0, 100.0, seed=7), bootstrap=4, seed=3)
    order = [fit.players.index(f"p{k}") for k in range(len(true))]
    sizes = pd.DataFrame({"params": np.repeat(params, 2), "elo": fit.ratings[order]})
    t = inverse_scaling(sizes, fit.samples[:, order], reps=1000, seed=0)
    assert t.inverse and t.state == "inverse scaling detected"
    rows = [{"run": f"r{k}", "state": "saturated"} for k in range(10)]
    t.conditions.append(saturation_condition(rows))
    assert t.state == "inverse scaling detected"
    rows[7] = {"run": "r7", "state": "improving"}
    rows[2] = {"run": "r2", "state": "cannot tell"}
    t.conditions[-1] = saturation_condition(rows)
    assert t.state == "cannot tell" and not t.inverse
    md = verdict_markdown("oware", t)
    assert "**Cannot tell**" in md and "still improving: r7" in md and "cannot tell: r2" in md
    assert "Train until every run is saturated" in md and "Inverse scaling detected" not in md


def test_small_precise_gains_are_saturated_and_reasons_name_the_blocker():
    flat = loss_trend(metrics(lambda x: 1.0))
    small = {"applicable": True, "gain": 5.0, "ci": [1.0, 9.0], "from_step": 200, "to_step": 300}
    assert classify(small, flat)[0] == "saturated"              # +5 is no gain, however precise
    wobbly = {"applicable": True, "relative_change": -0.03, "ci": [-0.08, 0.01]}
    state, why = classify({**small, "ci": [-20.0, 10.0]}, wobbly)
    assert state == "cannot tell" and "neither a fall beyond 5% nor flat" in why
    assert "neither above nor below" not in why                    # the Elo gain is not what blocks it
    # a constant loss has no defined trend: not applicable, never NaN
    const = loss_trend([{"step": s, "loss_value": 0.5, "loss_policy": 0.5} for s in range(1, 301)])
    assert not const["applicable"]


def test_the_reference_checkpoint_must_lie_near_two_thirds():
    t, s = planted_table(gain=0, sd=15)
    far = t[t["step"] != 200].reset_index(drop=True)            # checkpoints 10, 100, 300: none near 200
    g = elo_gain(far, s[:, [0, 1, 3, 4]], "r")
    assert not g["applicable"] and "between steps 150 and 250" in g["reason"]
    assert elo_gain(t, s, "nobody")["reason"] == "the run is not in the Elo table"


def test_spread_checkpoints_keeps_the_one_nearest_two_thirds(tmp_path):
    from azscale import checkpoints as ck
    from azscale.config import checkpoint_schedule
    steps = checkpoint_schedule(800, 17)
    d = tmp_path / "run"
    for st in steps:
        ck.checkpoint_file(d, st).parent.mkdir(parents=True, exist_ok=True)
        ck.checkpoint_file(d, st).write_bytes(b"x")
    for k in (3, 4, 6):
        got = [int(p.stem.split("-")[1]) for p in ck.spread_checkpoints(d, k)]
        near = min((st for st in steps if st >= 1), key=lambda st: abs(st - 800 * 2 / 3))
        assert len(got) == k and got[0] == min(st for st in steps if st >= 1) and got[-1] == 800 and near in got


def _seat_games():
    """Runs a (checkpoints a@1, a@2) and b (b@1), and the random player; 50 games per seat order.
    a@2-b@1: the first mover wins all 100 (seat-decided); a@1-b@1: one second-mover win (not);
    a@1-a@2: seat-decided within run a; a@2-random: the agent wins both seats."""
    rows = [("a@2", "b@1", 50, 0, 0), ("b@1", "a@2", 50, 0, 0),
            ("a@1", "b@1", 50, 0, 0), ("b@1", "a@1", 49, 0, 1),
            ("a@1", "a@2", 50, 0, 0), ("a@2", "a@1", 50, 0, 0),
            ("a@2", "random", 50, 0, 0), ("random", "a@2", 0, 0, 50)]
    res = pd.DataFrame(rows, columns=["first", "second", "wins", "draws", "losses"])
    players = {"a@1": {"kind": "agent", "run": "a"}, "a@2": {"kind": "agent", "run": "a"},
               "b@1": {"kind": "agent", "run": "b"}, "random": {"kind": "reference", "run": None}}
    return res, players


def test_seat_decided_games_are_counted_and_stop_the_verdict_and_the_elo_gain():
    """3x2 oware is a first-player win that even a barely trained agent's search finds: every game
    between agents goes to the first mover, so their Elo differences are not identified. The
    count (pairs the first mover won in every game, over both seat orders), the verdict's
    condition (cannot tell, with the count) and saturation (the within-run gain not applicable)."""
    from azscale.analysis.seat import seat_summary
    from azscale.analysis.verdict import seat_condition
    from azscale.analysis.saturation import run_saturation
    from azscale.analysis.verdict import inverse_scaling, verdict_markdown
    from test_verdict_stats import P7, planted
    res, players = _seat_games()
    s = seat_summary(res, players)
    b = s["between_runs"]
    assert (b["games"], b["first_mover_wins"], b["second_mover_wins"], b["pairs"], b["seat_decided_pairs"]) == \
        (200, 199, 1, 2, 1)
    assert b["seat_decided"]                             # 1 of 2 pairs: at the 50% threshold
    assert s["within_runs"]["a"]["seat_decided"] and "b" not in s["within_runs"]
    c = seat_condition(s)
    assert not c["holds"] and "1 of 2 pairs of agents from different runs" in c["text"] and "199 of 200" in c["text"]
    # one more pair of agents that the games do tell apart: below the threshold
    more = pd.concat([res, pd.DataFrame([("a@1", "c@1", 10, 0, 40), ("c@1", "a@1", 40, 0, 10)],
                                        columns=res.columns)], ignore_index=True)
    s2 = seat_summary(more, {**players, "c@1": {"kind": "agent", "run": "c"}})
    assert s2["between_runs"]["pairs"] == 3 and seat_condition(s2)["holds"]
    # an Elo fit written before the count: holds, saying it was not checked
    old = seat_condition(None)
    assert old["holds"] and "not checked" in old["note"]
    # the verdict says "cannot tell" and why
    sizes, samples = planted(np.array([0, 150, 300.]), P7[:3], 0, games=400, refits=8)
    t = inverse_scaling(sizes, samples, reps=200, seed=0)
    t.conditions.append(c)
    assert t.state == "cannot tell" and "the seat, not the agent, decides" in verdict_markdown("oware", t)
    # saturation: a gain that would read as saturated is not applicable where the seat decides
    t, smp = planted_table(gain=0, sd=15)
    flat = [{"step": x, "loss_value": 0.5 + 0.01 * np.sin(x), "loss_policy": 0.5} for x in range(1, 301)]
    assert run_saturation(Path("r"), (t, smp), lambda r: flat)["state"] == "saturated"
    row = run_saturation(Path("r"), (t, smp), lambda r: flat, s["within_runs"]["a"])
    assert row["state"] == "cannot tell" and "pairs of its checkpoints were won by the first mover" in row["reason"]


def test_exact_gain_is_paired_on_states():
    """A plateau where the final checkpoint repeats the reference's moves but for 5% of states
    flipped at random (no gain planted): pairing on states makes the interval far narrower than
    comparing two independent samples would, and the run reads saturated whatever the seed."""
    from azscale.analysis.saturation import exact_gain
    flat_loss = loss_trend(metrics(lambda x: 1.0))
    seat = {"applicable": False, "reason": "not applicable: seat"}
    for k in range(10):
        rng = np.random.default_rng(k)
        n = 3000
        ref = (rng.random(n) < 0.7).astype(float)
        flip = rng.random(n) < 0.05
        fin = np.where(flip, 1 - ref, ref)
        keys = rng.permutation(n)                      # the table's row order differs by checkpoint
        rows = [pd.DataFrame({"run": "r", "step": 200, "key": np.arange(n), "decisive": True, "move_optimal": ref}),
                pd.DataFrame({"run": "r", "step": 300, "key": keys, "decisive": True, "move_optimal": fin[keys]})]
        g = exact_gain(pd.concat(rows, ignore_index=True), reps=400, seed=k)
        unpaired = 2 * 1.96 * np.sqrt(2 * 0.7 * 0.3 / n)
        assert g["ci"][1] - g["ci"][0] < unpaired / 2
        assert classify(seat, flat_loss, g)[0] == "saturated"


def planted_exact(acc_ref, acc_final, n=600, steps=(10, 100, 200, 300), seed=0):
    """A run's per-state move correctness at its checkpoints: planted accuracy acc_ref at step
    200 (the one nearest two thirds of 300) and acc_final at 300; a fifth of the states are not
    decisive and must not count."""
    rng = np.random.default_rng(seed)
    rows = []
    for step in steps:
        p = acc_final if step == steps[-1] else acc_ref if step == 200 else 0.3
        decisive = np.arange(n) % 5 != 0
        ok = (rng.random(n) < p).astype(float)
        ok[~decisive] = 1.0
        rows.append(pd.DataFrame({"run": "r", "step": step, "key": np.arange(n), "decisive": decisive,
                                  "move_optimal": ok}))
    return pd.concat(rows, ignore_index=True)


def test_exact_gain_measures_a_planted_gain_with_coverage_and_stands_in_for_elo():
    """Planted accuracy gains over the last third: +0.15 reads improving, 0 saturated (with a flat
    train loss), and the interval holds the planted gain in most of 20 planted runs. It is used
    only where the Elo gain is not applicable, and the reason says so."""
    from azscale.analysis.saturation import exact_gain
    cover = 0
    for k in range(20):
        g = exact_gain(planted_exact(0.6, 0.75, seed=k), reps=400, seed=k)
        assert g["applicable"] and (g["from_step"], g["to_step"], g["states"]) == (200, 300, 480)
        cover += g["ci"][0] <= 0.15 <= g["ci"][1]
    assert cover >= 17, f"the 95% interval held the planted gain in {cover} of 20"
    flat_loss = loss_trend(metrics(lambda x: 1.0))
    seat = {"applicable": False, "reason": "not applicable: the first mover won every game"}
    up = exact_gain(planted_exact(0.6, 0.75), reps=400)
    state, why = classify(seat, flat_loss, up)
    assert state == "improving" and why.startswith("exact move-accuracy gain (the Elo gain: not applicable")
    same = exact_gain(planted_exact(0.8, 0.8, n=4000), reps=400)
    assert same["ci"][0] < 0 < same["ci"][1] and classify(seat, flat_loss, same)[0] != "improving"
    # where the exact gain cannot stand in, the reason says why
    one = exact_gain(planted_exact(0.6, 0.6, steps=(300,)))
    assert "exact move-accuracy gain: one checkpoint evaluated" in classify(seat, flat_loss, one)[1]
    # an applicable Elo gain is kept; the exact gain does not replace it
    elo = {"applicable": True, "gain": 200.0, "ci": [120.0, 280.0], "from_step": 200, "to_step": 300}
    assert classify(elo, flat_loss, same)[1].startswith("Elo gain +200")
    # no checkpoint near two thirds, or too few checkpoints: not applicable, with the reason
    far = planted_exact(0.6, 0.6, steps=(10, 100, 300))
    assert "between steps 150 and 250" in exact_gain(far)["reason"]
    assert not exact_gain(planted_exact(0.6, 0.6, steps=(300,)))["applicable"]


def test_verdict_exact_needs_runs_and_a_readable_file(tmp_path):
    import json
    from conftest import run_cli
    r = run_cli("verdict", tmp_path, "--out", tmp_path / "v.md", "--exact", tmp_path / "loss.json")
    assert r.returncode == 2 and r.stderr.strip() == "azscale: error: --exact measures the runs' saturation: give their " \
                                                     "directories with --run"
    from azscale.analysis.saturation import read_exact_gains
    (tmp_path / "bad.json").write_text("{not json")
    import pytest
    from azscale.errors import UserError
    with pytest.raises(UserError):
        read_exact_gains(tmp_path / "bad.json")
    assert read_exact_gains(None) == {} and read_exact_gains(tmp_path / "none.json") == {}
    from azscale.analysis.saturation import check_exact_gains
    f = tmp_path / "l.json"
    for body, why in (({"target": "trainset"}, "a loss against 'trainset' targets"),
                      ({"target": "solver"}, "none at all: made before"),
                      ({"target": "solver", "exact_gain": {"other-run": {"applicable": False}}}, "other-run")):
        f.write_text(json.dumps(body))
        with pytest.raises(UserError, match=why):
            check_exact_gains(f, ["r"])
    f.write_text(json.dumps({"target": "solver", "exact_gain": {"r": {"applicable": False, "reason": "x"}}}))
    assert check_exact_gains(f, ["r"]) == {"r": {"applicable": False, "reason": "x"}}
