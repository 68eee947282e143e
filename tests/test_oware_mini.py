"""Small oware: the variant late-turn rule, the reachable-position count, the variant scan."""

import collections
import json
import subprocess
import sys

import pyspiel
import pytest

from azscale.config import analysis_settings, late_turn_rule, random_game_length
from azscale.errors import UserError
from azscale.owarescan import parse_variants, random_play, reachable_positions, variant_game


def test_late_turn_scales_with_the_variant_length_and_only_where_asked():
    assert analysis_settings("oware") == {"late_turn": 40.0, "shoulder_moves": 50}
    g = variant_game(4, 3)
    rule = late_turn_rule(g)
    assert rule["factor"] == pytest.approx(random_game_length(g) / random_game_length("oware"))
    assert 0.3 < rule["factor"] < 0.6 and "scaled by mean random-game length" in rule["rule"]
    assert analysis_settings(g) == {"late_turn": round(40 * rule["factor"]),
                                    "shoulder_moves": round(50 * rule["factor"])}
    # connect_four does not ask for scaling: a smaller board keeps the set values
    assert late_turn_rule("connect_four(rows=4,columns=5)")["factor"] == 1.0


def test_random_play_lengths_follow_pyspiel():
    # the scan's own random games and pyspiel's games of the same variant have the same length law
    r = random_play(4, 3, games=300)
    assert abs(r["mean_length"] - random_game_length(variant_game(4, 3))) < 4 * r["sd_length"] / 300 ** 0.5 * 1.5
    assert 0.05 < r["repetition_ends"] < 0.5


@pytest.mark.parametrize("h,s", [(2, 2), (3, 1), (3, 2)])
def test_reachable_positions_equal_a_pyspiel_enumeration(h, s):
    """Breadth first through pyspiel (which applies its own repetition rule to each line): a
    position is first met by a shortest line, which repeats no board, so the positions met are
    those any line can reach."""
    from collections import deque
    g = pyspiel.load_game(variant_game(h, s))
    start = g.new_initial_state()
    seen, todo = {str(start): start.observation_tensor()}, deque([start])
    while todo:
        st = todo.popleft()
        for a in st.legal_actions():
            c = st.child(a)
            if not c.is_terminal() and str(c) not in seen:
                seen[str(c)] = c.observation_tensor()
                todo.append(c)
    got = reachable_positions(h, s)
    assert got["positions"] == len(seen)
    # positions whose observation (the network's input) another reachable position has too
    obs = collections.Counter(tuple(o) for o in seen.values())
    assert got["shared_observation"] == sum(n for n in obs.values() if n > 1)
    if (h, s) == (3, 2):
        assert got["shared_observation"] == 20_468                   # the README's 61% of 33,392


def test_parse_variants_and_the_cli_refuse_bad_input(tmp_path):
    assert parse_variants("3x2, 4X3") == [(3, 2), (4, 3)]
    for bad in ("3-2", "9x9", "x", "6x5"):     # 6x5: more seeds than the tensor twin packs
        with pytest.raises(UserError):
            parse_variants(bad)
    with pytest.raises(UserError, match="3x2 is given twice"):     # was scanned twice, listed twice
        parse_variants("3x2,4x3,3X2")
    r = subprocess.run([sys.executable, "-m", "azscale.cli", "oware-scan", "--out", str(tmp_path / "s"),
                        "--variants", "9x9"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "9x9" in r.stderr
    assert not (tmp_path / "s").exists()
    r = subprocess.run([sys.executable, "-m", "azscale.cli", "oware-scan", "--out", str(tmp_path / "s"),
                        "--variants", "2x1", "--preset", "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "unknown preset 'bogus'" in r.stderr
    assert not (tmp_path / "s").exists()          # was refused after the random games and their Zipf were written


def test_scan_end_to_end_on_the_smallest_board(tmp_path):
    out = tmp_path / "scan"
    cmd = [sys.executable, "-m", "azscale.cli", "oware-scan", "--out", str(out), "--variants", "3x2",
           "--random-games", "300", "--selfplay-steps", "2", "--preset", "smoke", "--solver-states", "6", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    row = json.loads((out / "scan.json").read_text())["variants"][0]
    assert row["reachable"]["positions"] == reachable_positions(3, 2)["positions"]
    assert row["analysis"]["late_turn"] == analysis_settings(variant_game(3, 2))["late_turn"]
    assert row["solver"]["start"]["solved"] and row["solver"]["start"]["value"] in (-1, 0, 1)
    assert row["selfplay"]["games"] > 0 and row["random"]["evidence"]["measured"] in (True, False)
    md = (out / "scan.md").read_text()
    assert md.count("\n| 3x2 |") == 1
    # a rerun resumes (the games are kept, nothing is played twice)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "scan.json").read_text())["variants"][0]["selfplay"]["games"] == row["selfplay"]["games"]


def test_a_damaged_scan_json_is_refused_in_one_line_not_half_used(tmp_path):
    """A rerun keeps the variants of its scan.json; each is checked first (the committed scan's
    rows pass), and a damaged one is refused with the file named."""
    from pathlib import Path
    from azscale.errors import UserError
    from azscale.owarescan import _kept_rows
    committed = json.loads((Path(__file__).parent.parent / "results" / "oware_mini" / "scan.json").read_text())
    kept = _kept_rows(committed["variants"], tmp_path / "scan.json")
    assert sorted(kept) == sorted(r["variant"] for r in committed["variants"])
    good = committed["variants"][0]
    for bad, why in ((5, "'variants' is not a list"), ([{"variant": "3x2"}], "variant 3x2: KeyError: 'reachable'"),
                     ([{**good, "reachable": "lots"}], "TypeError"), ([{"no": "name"}], "a variant without its name")):
        with pytest.raises(UserError, match=r"scan\.json: damaged scan\.json of azscale oware-scan \(.*"
                           + __import__("re").escape(why)):
            _kept_rows(bad, tmp_path / "scan.json")
