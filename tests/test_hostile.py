"""Hostile and careless input, one CLI subprocess per case (issue 18).

Every case must end with exit status 2 and exactly one `azscale: error:` line, no traceback; no
file that existed before may change or vanish, nothing may be written outside the places the
case allows (usually nowhere), and a crafted `.pt` file must never run its code.
"""

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from azscale import checkpoints, runs
from azscale.analysis.baselines import random_games
from azscale.analysis.elo_report import elo_analysis
from azscale.config import resolve
from azscale.errors import UserError
from azscale.arena import reference_players
from azscale.tournament import agents_from_runs, tournament
from azscale.checkpoints import load_resume
from azscale.train import train

from conftest import assert_refused, run_cli, tree_digest, child_pids

SMOKE = ["--preset", "smoke", "--set", "snapshot_seconds=0", "-q"]


def smoke(**kw):
    return resolve("tic_tac_toe", "smoke", {"snapshot_seconds": 0, **kw})


class _RunsCode:
    """Pickles as a call of os.system: loading it without weights_only would run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def craft(path: Path, marker: Path, fmt: str = "azscale.checkpoint/1") -> Path:
    payload = {"format": fmt, "config": smoke().to_dict(), "step": 4, "params": 1, "games": 0,
               "states": 0, "run": "evil", "model": _RunsCode(marker)}
    torch.save(payload, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished smoke run, a random-games table, a tournament and an Elo analysis."""
    root = tmp_path_factory.mktemp("world")
    train(smoke(), root / "ttt", quiet=True)
    random_games("tic_tac_toe", 60, 1, root / "rnd", workers=1, progress=False)
    tournament(agents_from_runs([root / "ttt"]) + reference_players("random"), root / "m",
               games_per_pair=4, simulations=4, workers=1, progress=False)
    elo_analysis([root / "m"], root / "elo", anchor="random", bootstrap=10)
    return root


def _copy(world, case, what, name=None):
    dst = case / (name or what)
    shutil.copytree(world / what, dst, symlinks=True)
    return dst


def _write(path: Path, text: str) -> None:
    path.write_text(text)


# -- the cases: each prepares its scratch directory and returns (args, may_create, match) --------

def _pt_evaluate_file(w, c):
    return ["evaluate", craft(c / "evil.pt", c / "MARKER")], (), "code"


def _pt_evaluate_run(w, c):
    r = _copy(w, c, "ttt", "r")
    craft(r / "checkpoints" / "step-000004.pt", c / "MARKER")
    return ["evaluate", r, "--games", "2", "--sims", "2", "-q"], (), "code"


def _pt_tournament(w, c):
    r = _copy(w, c, "ttt", "r")
    craft(r / "checkpoints" / "step-000004.pt", c / "MARKER")
    return ["tournament", r, "--out", c / "t", "--games-per-pair", "2", "--sims", "2", "--reference", "random",
            "-q"], (), "code"


def _pt_loss(w, c):
    r = _copy(w, c, "ttt", "r")
    craft(r / "checkpoints" / "step-000004.pt", c / "MARKER")
    return ["loss", r, "--out", c / "l", "--min-count", "1", "--window", "all", "-q"], (), "code"


def _pt_resume(w, c):
    r = _copy(w, c, "ttt", "r")
    craft(r / "checkpoints" / "resume.pt", c / "MARKER", fmt="azscale.resume/2")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE], (), "code"


def _train_new(*extra):
    def prep(w, c):
        return ["train", "tic_tac_toe", "--run-dir", c / "new", *SMOKE, *extra], (), None
    return prep


def _cmd(*args, match=None):
    def prep(w, c):
        fill = [w / a[2:] if isinstance(a, str) and a.startswith("W/") else
                c / a[2:] if isinstance(a, str) and a.startswith("C/") else a for a in args]
        return fill, (), match
    return prep


def _no_resume(w, c):
    r = _copy(w, c, "ttt", "r")
    (r / "checkpoints" / "resume.pt").unlink()
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE], (), "resume.pt is missing.*--restart"


def _lost_metrics(w, c):
    r = _copy(w, c, "ttt", "r")
    (r / "metrics.jsonl").unlink()
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE], (), "metrics.jsonl"


def _lower_steps(w, c):
    r = _copy(w, c, "ttt", "r")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "2"], (), "already trained 4 steps"


def _random_into_run(w, c):
    r = _copy(w, c, "ttt", "r")
    return ["random-games", "tic_tac_toe", "--games", "10", "--out", r, "-q"], (), "is an azscale run"


def _tournament_into_random(w, c):
    d = _copy(w, c, "rnd")
    return ["tournament", w / "ttt", "--out", d, "--reference", "random", "--games-per-pair", "2", "--sims", "2",
            "-q"], (), "random-games"


def _tournament_into_run(w, c):
    d = _copy(w, c, "ttt", "other")
    return ["tournament", w / "ttt", "--out", d, "--reference", "random", "--games-per-pair", "2", "--sims", "2",
            "-q"], (), "is an azscale run"


def _foreign_random_part(w, c):
    d = _copy(w, c, "rnd")
    shutil.copy(w / "ttt" / "games" / "part-000002.parquet", d / "games" / "part-000000.parquet")
    return ["random-games", "tic_tac_toe", "--games", "60", "--seed", "1", "--out", d, "--workers", "1", "-q"], (), \
        "foreign games are never counted"


def _zipf_copy(w, c):
    r = _copy(w, c, "ttt", "copy")
    return ["zipf", w / "ttt", r, "--out", c / "z"], (), "the same|both hold"


def _zipf_duplicate_ids(w, c):
    d = _copy(w, c, "rnd")
    shutil.copy(d / "games" / "part-000000.parquet", d / "games" / "part-000001.parquet")
    return ["zipf", d, "--out", c / "z"], (), "occurs 2 times"


def _file_as_run_dir(w, c):
    _write(c / "afile", "mine")
    return ["train", "tic_tac_toe", "--run-dir", c / "afile", *SMOKE], (), "not a directory"


def _file_in_out_path(w, c):
    _write(c / "afile", "mine")
    return ["random-games", "tic_tac_toe", "--games", "5", "--out", c / "afile" / "sub", "-q"], (), None


def _damaged_tournament_json(w, c):
    d = _copy(w, c, "m")
    _write(d / "tournament.json", "{not json")
    return ["elo", d, "--out", c / "e"], (), "tournament.json"


def _damaged_tournament_json_rerun(w, c):
    d = _copy(w, c, "m")
    _write(d / "tournament.json", json.dumps({"kind": "tournament", "players": []}))
    return ["tournament", w / "ttt", "--out", d, "--reference", "random", "--games-per-pair", "4", "--sims", "4",
            "--workers", "1", "-q"], (), "tournament.json"


def _damaged_sweep_json(w, c):
    (c / "sw").mkdir()
    _write(c / "sw" / "sweep.json", "[1, 2")
    return ["sweep", "tic_tac_toe", "--out", c / "sw", "--preset", "smoke", "--widths", "4", "--seeds", "1", "-q"], \
        (), "sweep.json"


def _damaged_config_json(w, c):
    r = _copy(w, c, "ttt", "r")
    _write(r / "config.json", '{"settings": 3}')
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE], (), "config.json"


def _damaged_config_json_scaling(w, c):
    r = _copy(w, c, "ttt", "r")
    _write(r / "config.json", "")
    return ["scaling", w / "elo", "--out", c / "s", "--run", r], (), "config.json"


def _resume_missing_keys(w, c):
    r = _copy(w, c, "ttt", "r")
    snap = torch.load(r / "checkpoints" / "resume.pt", weights_only=True)
    del snap["optimizer"]
    torch.save(snap, r / "checkpoints" / "resume.pt")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE], (), "optimizer missing"


def _parquet_wrong_columns(w, c):
    (c / "bad" / "games").mkdir(parents=True)
    t = pa.table({"a": [1, 2]}).replace_schema_metadata({"azscale.table": "games", "azscale.version": "1"})
    pq.write_table(t, c / "bad" / "games" / "part-000000.parquet")
    return ["zipf", c / "bad", "--out", c / "z"], (), "damaged games table"


def _damaged_elo_csv(w, c):
    d = _copy(w, c, "elo")
    _write(d / "elo.csv", "nothing,here\n")
    return ["verdict", d, "--out", c / "v.md"], (), "elo.csv"


def _damaged_bootstrap(w, c):
    d = _copy(w, c, "elo")
    _write(d / "bootstrap.npz", "not a zip")
    return ["verdict", d, "--out", c / "v.md"], (), "bootstrap.npz"


def _sweep_game_escapes(w, c):
    return ["sweep", "../../x", "--out", c / "a" / "b" / "sw", "--preset", "smoke", "--widths", "4", "--seeds", "1",
            "-q"], (), "unknown OpenSpiel game"


def _lock_symlink(w, c):
    r = _copy(w, c, "ttt", "r")
    _write(c / "victim.txt", "a user's file")
    (r / ".lock").unlink()
    (r / ".lock").symlink_to(c / "victim.txt")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "5"], (), "symbolic link"


CASES = {
    # 1. no code from files
    "pt-evaluate-file": _pt_evaluate_file, "pt-evaluate-run": _pt_evaluate_run, "pt-tournament": _pt_tournament,
    "pt-loss": _pt_loss, "pt-resume": _pt_resume,
    # 2. numbers
    "nan-c-puct": _train_new("--set", "c_puct=nan"), "nan-dirichlet": _train_new("--set", "dirichlet_alpha=nan"),
    "inf-temperature": _train_new("--set", "temperature=inf"), "nan-lr": _train_new("--set", "learning_rate=nan"),
    "seed-negative": _train_new("--seed", "-1"), "seed-huge": _train_new("--set", "seed=1e23"),
    "width-huge": _train_new("--set", "width=1e8"), "steps-fraction": _train_new("--set", "steps=2.5"),
    "random-games-negative": _cmd("random-games", "tic_tac_toe", "--games", "-1", "--out", "C/rg"),
    "first-moves-negative": _cmd("zipf", "W/ttt", "--out", "C/z", "--first-moves", "-1"),
    "replicates-negative": _cmd("zipf", "W/ttt", "--out", "C/z", "--replicates", "-3"),
    "fit-window-nan": _cmd("zipf", "W/ttt", "--out", "C/z", "--fit-window", "ranks:nan-inf"),
    "elo-bootstrap-negative": _cmd("elo", "W/m", "--out", "C/e", "--bootstrap", "-5"),
    "verdict-threshold": _cmd("verdict", "W/elo", "--out", "C/v.md", "--threshold", "7"),
    "loss-sigma-zero": _cmd("loss", "W/ttt", "--out", "C/l", "--sigma", "0"),
    "mcts-zero": _cmd("tournament", "W/ttt", "--out", "C/t", "--reference", "mcts-0"),
    "evaluate-sims-zero": _cmd("evaluate", "W/ttt", "--sims", "0"),
    "tournament-temperature-nan": _cmd("tournament", "W/ttt", "--out", "C/t", "--temperature", "nan"),
    "usage-not-a-number": _cmd("evaluate", "W/ttt", "--games", "abc", match="--games"),
    # 3, 8, 13. no silent deletion, one rule for finished, no lower steps
    "missing-resume": _no_resume, "lost-metrics": _lost_metrics, "lower-steps": _lower_steps,
    # 4. no foreign games
    "random-into-run": _random_into_run, "tournament-into-random": _tournament_into_random,
    "tournament-into-run": _tournament_into_run, "foreign-random-part": _foreign_random_part,
    "zipf-same-run-twice": _cmd("zipf", "W/ttt", "W/ttt", "--out", "C/z", match="given twice"),
    "zipf-run-and-copy": _zipf_copy, "zipf-duplicate-ids": _zipf_duplicate_ids,
    "elo-same-tournament-twice": _cmd("elo", "W/m", "W/m", "--out", "C/e", match="given twice"),
    # 5, 14. degenerate and unsupported games
    "rows-zero": _cmd("train", "connect_four(rows=0)", "--run-dir", "C/n", *SMOKE, match="rows"),
    "no-legal-move": _cmd("random-games", "checkers(rows=3)", "--games", "5", "--out", "C/rg", match="not playable"),
    "stuck-mid-game": _cmd("random-games", "hex(board_size=1)", "--games", "5", "--out", "C/rg",
                           match="no legal move"),
    "never-ends": _cmd("train", "chinese_checkers", "--run-dir", "C/n", *SMOKE, match="22,000 moves"),
    "unknown-parameter": _cmd("sizes", "connect_four(depth=3)", match="unknown parameter"),
    # 6. operating-system errors
    "file-as-run-dir": _file_as_run_dir, "file-in-out-path": _file_in_out_path,
    # 7. unguarded reads
    "damaged-tournament-json": _damaged_tournament_json, "damaged-tournament-json-rerun": _damaged_tournament_json_rerun,
    "damaged-sweep-json": _damaged_sweep_json, "damaged-config-json": _damaged_config_json,
    "damaged-config-json-scaling": _damaged_config_json_scaling, "resume-missing-keys": _resume_missing_keys,
    "parquet-wrong-columns": _parquet_wrong_columns, "damaged-elo-csv": _damaged_elo_csv,
    "damaged-bootstrap": _damaged_bootstrap,
    # 9. validate first, stay inside
    "sweep-game-escapes": _sweep_game_escapes,
    "sweep-unknown-game": _cmd("sweep", "nope", "--out", "C/sw", "--preset", "smoke", match="unknown OpenSpiel game"),
    # 11. no link followed
    "lock-symlink": _lock_symlink,
    # issue 16: the temperature study, the toy tree, the fit window by kind
    "temperature-nan": _cmd("temperature", "W/ttt", "--out", "C/t", "--temperatures", "0.1,nan", match="--temperatures"),
    "temperature-one-replicate": _cmd("temperature", "W/ttt", "--out", "C/t", "--temperatures", "0.5", "--replicates",
                                      "1", match="--replicates"),
    "toy-tree-too-large": _cmd("toy-tree", "--branching", "1000", "--depth", "100", "--out", "C/toy",
                               match="smaller tree"),
    "toy-tree-compare-a-run": _cmd("toy-tree", "--out", "C/toy", "--compare", "W/ttt", match="no states.parquet"),
    "zipf-kinds-mixed": _cmd("zipf", "W/ttt", "W/rnd", "--out", "C/z", match="mix kinds"),
}


# -- issue 36: a run's records are its own; --restart checks first; resume values checked -----------

def _resume_games_symlink(w, c):
    r = _copy(w, c, "ttt", "r")
    shutil.move(r / "games", c / "elsewhere")
    (r / "games").symlink_to(c / "elsewhere")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "5"], (), "games is a symbolic link"


def _resume_part_symlink(w, c):
    r = _copy(w, c, "ttt", "r")
    shutil.move(r / "games" / "part-000004.parquet", c / "p4.parquet")
    (r / "games" / "part-000004.parquet").symlink_to(c / "p4.parquet")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "5"], (), "part-000004.parquet is a symbolic"


def _resume_checkpoint_symlink(w, c):
    r = _copy(w, c, "ttt", "r")
    shutil.move(r / "checkpoints", c / "ck")
    (r / "checkpoints").symlink_to(c / "ck")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "5"], (), "checkpoints is a symbolic link"


def _resume_foreign_part(w, c):
    r = _copy(w, c, "ttt", "r")
    shutil.copy(w / "rnd" / "games" / "part-000000.parquet", r / "games" / "part-000002.parquet")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "5"], (), "part-000002.parquet: does not hold"


def _resume_swapped_parts(w, c):
    r = _copy(w, c, "ttt", "r")
    g = r / "games"
    os.rename(g / "part-000001.parquet", c / "tmp.parquet")
    os.rename(g / "part-000003.parquet", g / "part-000001.parquet")
    os.rename(c / "tmp.parquet", g / "part-000003.parquet")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "5"], (), "does not hold step 1"


def _restart_user_file(where):
    def prep(w, c):
        r = _copy(w, c, "ttt", "r")
        _write(r / where, "a user's notes")
        return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--restart"], (), "not a file of the run"
    return prep


def _restart_games_symlink(w, c):
    r = _copy(w, c, "ttt", "r")
    shutil.move(r / "games", c / "elsewhere")
    (r / "games").symlink_to(c / "elsewhere")
    return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--restart"], (), "symbolic link"


def _resume_edit(edit, match):
    def prep(w, c):
        r = _copy(w, c, "ttt", "r")
        path = r / "checkpoints" / "resume.pt"
        snap = load_resume(path)
        edit(snap)
        torch.save(runs.to_torch_safe(snap), path)
        return ["train", "tic_tac_toe", "--run-dir", r, *SMOKE, "--steps", "6"], (), match
    return prep


def _set(*keys, value):
    def edit(snap):
        d = snap
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value(d[keys[-1]]) if callable(value) else value
    return edit


def _nan_first(arr):
    arr = arr.clone() if isinstance(arr, torch.Tensor) else arr.copy()
    arr.reshape(-1)[0] = float("nan")
    return arr


def _first_weight(snap):
    k = next(iter(snap["model"]))
    snap["model"][k] = _nan_first(snap["model"][k])


def _queue_bad_action(snap):
    snap["queue"]["games"][0]["actions"] = [0, 99]


def _actor_bad_action(snap):
    snap["actors"][0]["packed"]["actions"] = snap["actors"][0]["packed"]["actions"] + 1000


CASES.update({
    "resume-games-symlink": _resume_games_symlink, "resume-part-symlink": _resume_part_symlink,
    "resume-checkpoints-symlink": _resume_checkpoint_symlink, "resume-foreign-part": _resume_foreign_part,
    "resume-swapped-parts": _resume_swapped_parts,
    "restart-user-file": _restart_user_file("notes.txt"), "restart-user-file-in-games": _restart_user_file("games/mine.txt"),
    "restart-user-file-in-checkpoints": _restart_user_file("checkpoints/keep.pt"),
    "restart-games-symlink": _restart_games_symlink,
    "resume-negative-games": _resume_edit(_set("games", value=-3), r"games = -3"),
    "resume-games-changed": _resume_edit(_set("games", value=lambda g: g + 5), "metrics.jsonl"),
    "resume-states-changed": _resume_edit(_set("states", value=lambda g: g - 1), "metrics.jsonl"),
    "resume-nan-weight": _resume_edit(_first_weight, "NaN"),
    "resume-nan-buffer": _resume_edit(_set("buffer", "value", value=_nan_first), r"buffer.value: NaN"),
    "resume-nan-queue": _resume_edit(_set("queue", "policy", value=_nan_first), r"queue.policy: NaN"),
    "resume-buffer-size": _resume_edit(_set("buffer", "size", value=10**6), "buffer size"),
    "resume-buffer-pos": _resume_edit(_set("buffer", "pos", value=-1), "buffer position"),
    "resume-queue-size": _resume_edit(_set("queue", "size", value=lambda n: n + 7), "queue"),
    "resume-queue-bad-action": _resume_edit(_queue_bad_action, "action id outside"),
    "resume-actor-bad-action": _resume_edit(_actor_bad_action, "action id outside"),
    "resume-no-actors": _resume_edit(_set("actors", value=[]), "0 actor states for 1"),
})


# -- issue 36: an --out FILE overwrites only what azscale wrote for that purpose --------------------

def _verdict_over(name, text=None, copy_run=False):
    def prep(w, c):
        base = _copy(w, c, "ttt", "r") if copy_run else c
        if text is not None:
            _write(base / name, text)
        return ["verdict", w / "elo", "--out", base / name], (), None
    return prep


def _verdict_json_beside(w, c):
    _write(c / "v.json", '{"mine": true}')
    return ["verdict", w / "elo", "--out", c / "v.md"], (), r"v.json exists and is not verdict"


CASES.update({
    "verdict-over-run-config": _verdict_over("config.json", copy_run=True),
    "verdict-over-run-metrics": _verdict_over("metrics.jsonl", copy_run=True),
    "verdict-new-file-in-run": _verdict_over("verdict.md", copy_run=True),
    "verdict-over-user-file": _verdict_over("notes.md", "# my notes\n"),
    "verdict-json-beside-is-a-user-file": _verdict_json_beside,
})


# -- issue 36: analyses write only into directories they made ----------------------------------------

def _into_user_dir(*args):
    def prep(w, c):
        (c / "mine").mkdir()
        _write(c / "mine" / "notes.md", "a user's notes")
        fill = [w / a[2:] if isinstance(a, str) and a.startswith("W/") else a for a in args]
        return [*fill, "--out", c / "mine"], (), "is not empty and is not an azscale"
    return prep


CASES.update({
    "zipf-into-user-dir": _into_user_dir("zipf", "W/ttt", "--workers", "1"),
    "loss-into-user-dir": _into_user_dir("loss", "W/ttt", "--min-count", "1", "--window", "all"),
    "elo-into-user-dir": _into_user_dir("elo", "W/m"),
    "report-into-user-dir": _into_user_dir("report", "W/ttt"),
    "toy-tree-into-user-dir": _into_user_dir("toy-tree", "--branching", "3", "--depth", "3"),
})


# -- issue 36: a games table's actions are checked before any replay ---------------------------------

FINISHED_TTT = [0, 3, 1, 4, 2]                 # X wins on the top row at move 5


def _bad_games_table(*games):
    """A games table (random-kind rows of tic_tac_toe) with the given action lists, after a
    good game; `zipf` on it."""
    def prep(w, c):
        rows = [runs.GameRecord(run="bad", kind="random", game="tic_tac_toe", actions=a, return0=1.0, return1=-1.0,
                                game_id=k) for k, a in enumerate([FINISHED_TTT, *games])]
        (c / "bad" / "games").mkdir(parents=True)
        pq.write_table(runs.games_table(rows, "tic_tac_toe"), c / "bad" / "games" / "part-000000.parquet")
        return ["zipf", c / "bad", "--out", c / "z", "--workers", "1"], (), "game 1 of run 'bad' cannot be replayed"
    return prep


def _loss_bad_action(w, c):
    r = _copy(w, c, "ttt", "r")
    part = r / "games" / "part-000001.parquet"
    t = pq.read_table(part)
    acts = t["actions"].to_pylist()
    acts[0] = [acts[0][0], 99] + acts[0][2:]
    t = t.set_column(t.schema.get_field_index("actions"), "actions", pa.array(acts, pa.list_(pa.int32())))
    pq.write_table(t, part)
    return ["loss", r, "--out", c / "l", "--min-count", "1", "--window", "all", "-q"], (), \
        "action 99 at move 2 is not an action of tic_tac_toe"


CASES.update({
    "zipf-action-out-of-range": _bad_games_table([0, 1_000_000, 2]),
    "zipf-action-negative": _bad_games_table([-5]),
    "zipf-action-illegal-in-range": _bad_games_table([4, 4, 0]),
    "zipf-game-no-moves": _bad_games_table([]),
    "zipf-moves-after-the-end": _bad_games_table(FINISHED_TTT + [8]),
    "zipf-game-too-long": _bad_games_table([0] * 10),      # (more moves than the game can last)
    "loss-action-out-of-range": _loss_bad_action,
})


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_refused_in_one_line(name, world, tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    args, may_create, match = CASES[name](world, case)
    before, world_before = tree_digest(tmp_path), tree_digest(world)
    r = run_cli(*args, timeout=120)
    assert_refused(r, before, tree_digest(tmp_path), may_create, None if match == "code" else match)
    assert tree_digest(world) == world_before
    assert not (case / "MARKER").exists(), "code from a crafted file ran"


def test_a_crafted_file_would_run_code_if_unpickled(tmp_path):
    """The control for the pt-* cases: the crafted file really runs its command when loaded
    without weights_only, so the cases above can fail."""
    p = craft(tmp_path / "evil.pt", tmp_path / "MARKER")
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(p)!r}, weights_only=False)"],
                   capture_output=True, timeout=120)
    assert (tmp_path / "MARKER").exists()


def test_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path):
    """A write that fails (here: a file-size limit, as a full disk fails) ends as one line, and the
    games part it was writing is not left half-written."""
    limit = 4096

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    before = tree_digest(tmp_path)
    r = subprocess.run([sys.executable, "-m", "azscale.cli", "random-games", "tic_tac_toe", "--games", "3000",
                        "--out", str(tmp_path / "rg"), "--workers", "1", "-q"],
                       capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert_refused(r, before, tree_digest(tmp_path), may_create=("rg",), match="File too large")
    assert not list((tmp_path / "rg").rglob("*.parquet"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_directory_is_one_line(tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        before = tree_digest(tmp_path)
        r = run_cli("random-games", "tic_tac_toe", "--games", "5", "--out", tmp_path / "ro" / "rg", "-q")
        assert_refused(r, before, tree_digest(tmp_path), match="ermission")
    finally:
        os.chmod(tmp_path / "ro", 0o755)


# -- resume format, identity, restart ---------------------------------------------------------

def test_resume_payload_round_trips_through_weights_only(tmp_path):
    rng = np.random.default_rng([3, 4])
    obj = {"buffer": {"obs": np.arange(6, dtype=np.float32).reshape(2, 3), "legal": np.array([True, False]),
                      "pos": 3, "empty": np.zeros((0, 4), np.int64)},
           "rng": rng.bit_generator.state, "slots": [{"actions": [1, 2], "obs": [np.ones(3, np.float32)],
                                                     "first_step": 0, "x": np.float32(1.5), "u": np.uint64(2**63)}],
           "t": torch.arange(3), "tup": (1, np.int8(-2), None, "s")}
    torch.save(runs.to_torch_safe(obj), tmp_path / "x.pt")
    back = runs.from_torch_safe(torch.load(tmp_path / "x.pt", weights_only=True))
    assert back["rng"] == obj["rng"] and back["buffer"]["pos"] == 3 and back["tup"][0] == 1
    for a, b in ((back["buffer"]["obs"], obj["buffer"]["obs"]), (back["buffer"]["legal"], obj["buffer"]["legal"]),
                 (back["buffer"]["empty"], obj["buffer"]["empty"]), (back["slots"][0]["obs"][0], obj["slots"][0]["obs"][0])):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
    assert back["slots"][0]["x"] == np.float32(1.5) and back["slots"][0]["x"].dtype == np.float32
    assert back["slots"][0]["u"] == np.uint64(2**63) and back["tup"][1].dtype == np.int8
    assert isinstance(back["t"], torch.Tensor) and back["t"].tolist() == [0, 1, 2]   # real tensors stay tensors
    with pytest.raises(TypeError):
        runs.to_torch_safe({"bad": np.array([object()])})


def _games(path):
    return runs.read_games(path).drop_columns(["run", "seat0", "seat1"])


def test_legacy_resume_file_with_numpy_arrays_still_continues_exactly(tmp_path):
    """resume.pt files of earlier azscale versions (numpy arrays pickled, format resume/1) are
    read through numpy's array constructors only, and the run continues as if never stopped."""
    train(smoke(steps=3), tmp_path / "full", quiet=True)
    train(smoke(steps=1), tmp_path / "cut", quiet=True)
    path = tmp_path / "cut" / "checkpoints" / "resume.pt"
    snap = load_resume(path)
    snap["format"] = "azscale.resume/1"                 # as the old writer: numpy inside, no tags
    torch.save(snap, path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)             # it does need the numpy allowance
    train(smoke(steps=3), tmp_path / "cut", quiet=True)
    assert _games(tmp_path / "full").equals(_games(tmp_path / "cut"))


def test_restart_is_the_explicit_way_to_start_over(world, tmp_path):
    r = _copy(world, tmp_path, "ttt", "r")
    (r / "checkpoints" / "resume.pt").unlink()
    with pytest.raises(UserError, match="--restart"):
        train(smoke(), r, quiet=True)
    out = train(smoke(), r, quiet=True, restart=True)
    assert out["finished"] and _games(r).equals(_games(world / "ttt"))


def test_a_renamed_copy_keeps_its_identity(world, tmp_path):
    """The run's name and id live in config.json: a copied or renamed run resumes as itself."""
    r = _copy(world, tmp_path, "ttt", "renamed")
    train(smoke(steps=5), r, quiet=True)
    cfg = json.loads((r / "config.json").read_text())
    orig = json.loads((world / "ttt" / "config.json").read_text())
    assert cfg["run"] == "ttt" and cfg["run_id"] == orig["run_id"]
    assert set(runs.read_games(r)["run"].to_pylist()) == {"ttt"}
    assert checkpoints.run_status(r).done == 5


def test_one_rule_decides_how_far_a_run_is(world, tmp_path):
    st = checkpoints.run_status(world / "ttt")
    assert (st.steps, st.done, st.resume, st.finished) == (4, 4, 4, True)
    r = _copy(world, tmp_path, "ttt", "r")
    (r / "checkpoints" / "resume.pt").unlink()           # a finished run without its resume file
    assert checkpoints.run_status(r).finished
    (r / "games" / "part-000002.parquet").unlink()
    with pytest.raises(UserError, match="part-000002.parquet is missing"):
        checkpoints.run_status(r)
    from azscale.sweep import _finished
    r2 = _copy(world, tmp_path, "ttt", "r2")
    (r2 / "metrics.jsonl").unlink()                     # the sweep used to loop on "rerun to continue"
    with pytest.raises(UserError, match="metrics.jsonl"):
        _finished(r2, 4)


# -- orphans ------------------------------------------------------------------------------------

def _alive(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_tournament_leaves_no_orphan_and_no_late_write(world, tmp_path):
    out = tmp_path / "m"
    p = subprocess.Popen([sys.executable, "-m", "azscale.cli", "tournament", str(world / "ttt"), "--out", str(out),
                          "--reference", "random,mcts-30", "--games-per-pair", "200", "--sims", "16",
                          "--workers", "2", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers, t0 = [], time.time()
    while time.time() - t0 < 300 and p.poll() is None:
        workers = child_pids(p.pid)
        if len(workers) >= 2 and (out / "tournament.json").exists():
            break
        time.sleep(0.1)
    assert p.poll() is None and len(workers) >= 2, "the tournament did not start its workers"
    # the workers are playing: the first pair's result is written (an event, not a wall-clock
    # wait: a loaded machine takes longer). Two of the three pairs are then still to finish, one
    # of them not even begun, so the kill comes mid-tournament by construction
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and not list((out / "pairs").glob("pair-*.json")):
        time.sleep(0.02)
    assert p.poll() is None, p.stderr.read().decode()[-2000:]
    assert len(list((out / "pairs").glob("pair-*.json"))) in (1, 2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    at_kill = tree_digest(out)          # the parent, the only writer, is gone: this is what the kill left
    deadline = time.time() + 60
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "pool workers outlived their killed parent"
    assert tree_digest(out) == at_kill, "something was written after the kill"
    # and the tournament finishes on a rerun, without the killed run's leftovers counted twice
    r = run_cli("tournament", world / "ttt", "--out", out, "--reference", "random,mcts-30", "--games-per-pair", "200",
                "--sims", "16", "--workers", "2", "-q", timeout=300)
    assert r.returncode == 0, r.stderr
    g = runs.read_games(out)
    assert g["game_id"].to_pylist() == list(range(3 * 200))


# -- issue 36: hardening, round two ----------------------------------------------------------------

def test_a_figure_is_written_whole_or_not_at_all(tmp_path):
    """A figure whose write fails (a file-size limit, as a full disk fails) leaves no truncated
    SVG or PNG: figures are rendered in memory and written atomically like every other file.
    The limit lets the PNG through and stops the (larger) SVG part-way."""
    code = ("import io, resource, sys\n"
            "from azscale.analysis.plotting import pyplot, save\n"
            "plt = pyplot(); fig, ax = plt.subplots(); ax.plot(range(5000), [x * x % 97 for x in range(5000)], '.', ms=1)\n"
            "png, svg = io.BytesIO(), io.BytesIO()\n"
            "fig.savefig(png, dpi=120, format='png'); fig.savefig(svg, dpi=120, format='svg')\n"
            "assert len(svg.getvalue()) > 2 * len(png.getvalue()) + 8192\n"
            "lim = len(png.getvalue()) + 4096\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))\n"
            "try:\n"
            f"    save(fig, {str(tmp_path / 'fig')!r})\n"
            "except OSError as exc:\n"
            "    print('failed', exc.errno, len(png.getvalue())); sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "failed" in r.stdout, (r.returncode, r.stdout, r.stderr[-2000:])
    png_size = int(r.stdout.split()[-1])
    left = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert "fig.svg" not in left, f"a truncated SVG was left behind: {left}"
    assert left.get("fig.png", png_size) == png_size and not [n for n in left if n.endswith(".tmp")], left


def test_verdict_rewrites_its_own_files(world, tmp_path):
    """The refusal above is not a refusal of every existing file: a verdict's own Markdown and
    JSON (also a JSON written before the kind was recorded) are rewritten."""
    out = tmp_path / "v.md"
    for _ in range(2):
        r = run_cli("verdict", world / "elo", "--out", out, "--replicates", "50")
        assert r.returncode == 0, r.stderr
    d = json.loads(out.with_suffix(".json").read_text())
    assert d["kind"] == "verdict"
    del d["kind"]
    out.with_suffix(".json").write_text(json.dumps(d))
    r = run_cli("verdict", world / "elo", "--out", out, "--replicates", "50")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.with_suffix(".json").read_text())["kind"] == "verdict"


def test_an_analysis_directory_left_by_a_kill_is_still_ours(tmp_path):
    """An analysis killed before its result file leaves only files it writes: a rerun accepts
    that directory; a user's file beside them (or a link) makes it not ours."""
    d = tmp_path / "z"
    d.mkdir()
    for name in ("states.parquet", "rank_frequency.png", ".fits.json.abc.tmp", ".lock"):
        (d / name).write_bytes(b"x")
    runs.claim_dir(d, "zipf")
    (d / "rank_frequency.txt").write_text("mine")
    with pytest.raises(UserError, match="rank_frequency.txt"):
        runs.claim_dir(d, "zipf")
    (d / "rank_frequency.txt").unlink()
    (d / "summary.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(UserError, match="summary.md"):
        runs.claim_dir(d, "zipf")


# -- issue 36, 13b: progress off a terminal is plain lines -------------------------------------------

def test_progress_off_a_terminal_is_a_line_every_few_percent():
    import io

    from azscale.progress import LINE_PERCENT, bar
    out = io.StringIO()
    b = bar(total=1000, desc="work", unit="step", file=out)
    for _ in range(1000):
        b.update(1)
        b.set_postfix(loss="0.5")
    b.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert len(lines) == 1 + 100 // LINE_PERCENT, lines           # the start, then every 5%
    assert lines[0].startswith("work:   0%") and lines[-1].startswith("work: 100%") and "1000/1000" in lines[-1]


def test_train_logs_plain_progress_lines_when_its_output_is_a_file(tmp_path):
    """The README's long jobs write their output to a file: no carriage-return frames there."""
    r = run_cli("train", "tic_tac_toe", "--run-dir", tmp_path / "r", "--preset", "smoke", "--set", "steps=4",
                "--set", "snapshot_seconds=0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "\r" not in r.stderr and "\r" not in r.stdout
    lines = [x for x in r.stderr.splitlines() if x.startswith("train r:")]
    assert 2 <= len(lines) <= 1 + 4 and "4/4" in lines[-1], r.stderr[-2000:]
