"""Hostile and careless input, round two (issue 36, items 8 to 13): partial results said to be
partial, foreign files refused, one line for every problem a user can fix, clean interrupts.

Each case is one CLI subprocess (or an API call) that failed before the fix: it printed a
traceback, exited 0 with a partial answer, or hung.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azscale import runs
from azscale.analysis.baselines import random_games
from azscale.arena import reference_players
from azscale.config import resolve
from azscale.errors import UserError
from azscale.tournament import agents_from_runs, tournament
from azscale.train import train

from conftest import assert_refused, run_cli, tree_digest, child_pids

SMOKE = ["--preset", "smoke", "--set", "snapshot_seconds=0", "-q"]


def smoke(**kw):
    return resolve("tic_tac_toe", "smoke", {"snapshot_seconds": 0, **kw})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two finished smoke runs (seeds 0 and 1), a random-games table and a three-player
    tournament."""
    root = tmp_path_factory.mktemp("world36")
    train(smoke(), root / "ttt", quiet=True)
    train(smoke(seed=1, width=8), root / "other", quiet=True)
    random_games("tic_tac_toe", 40, 1, root / "rnd", part_size=20, workers=1, progress=False)
    tournament(agents_from_runs([root / "ttt"]) + reference_players("random,mcts-2"), root / "m",
               games_per_pair=2, simulations=2, workers=1, progress=False)
    return root


def _copy(world, dst_root, what, name=None):
    dst = dst_root / (name or what)
    shutil.copytree(world / what, dst, symlinks=True)
    return dst


def refused(args, tmp_path, match, may_create=(), timeout=180):
    before = tree_digest(tmp_path)
    r = run_cli(*args, timeout=timeout)
    assert_refused(r, before, tree_digest(tmp_path), may_create, match)
    return r.stderr


# -- 8. partial or foreign results are said to be so ---------------------------------------------

def test_elo_of_an_unfinished_tournament_is_refused(world, tmp_path):
    m = _copy(world, tmp_path, "m")
    r = run_cli("elo", m, "--out", tmp_path / "e0", "--bootstrap", "5")
    assert r.returncode == 0, r.stderr                    # the control: finished, it fits
    (m / "pairs" / "pair-00001.json").unlink()            # as a tournament killed after 2 of 3 pairs
    refused(["elo", m, "--out", tmp_path / "e"], tmp_path, r"unfinished tournament \(2 of 3 pairs played\)")


def test_a_checkpoint_of_another_run_is_refused(world, tmp_path):
    r = _copy(world, tmp_path, "ttt", "r")
    ck = r / "checkpoints" / "step-000004.pt"
    # the control: the run's own checkpoint evaluates
    ok = run_cli("evaluate", r, "--games", "2", "--sims", "2", "-q")
    assert ok.returncode == 0, ok.stderr
    shutil.copy(world / "other" / "checkpoints" / "step-000004.pt", ck)   # another width and seed
    refused(["evaluate", r, "--games", "2", "--sims", "2", "-q"], tmp_path, "a checkpoint of another run")
    refused(["loss", r, "--out", tmp_path / "l", "--min-count", "1", "--window", "all", "-q"], tmp_path,
            "a checkpoint of another run")
    # the same width and parameter count, another seed: the run's name (and id) tell them apart
    train(smoke(seed=2), tmp_path / "twin", quiet=True)
    shutil.copy(tmp_path / "twin" / "checkpoints" / "step-000004.pt", ck)
    refused(["evaluate", r, "--games", "2", "--sims", "2", "-q"], tmp_path, "another run")


def test_status_agrees_with_train_on_a_damaged_run(world, tmp_path):
    import azscale
    from azscale.status import status
    r = _copy(world, tmp_path, "ttt", "r")
    assert status(r)["state"] == "finished"
    (r / "games" / "part-000002.parquet").unlink()
    with pytest.raises(UserError, match="part-000002.parquet is missing"):
        azscale.load_run(r)
    st = status(r)
    assert st["state"] == "damaged" and not st["finished"] and "part-000002.parquet is missing" in st["problem"]
    out = run_cli("status", r)
    assert out.returncode == 0 and "damaged" in out.stdout and "part-000002.parquet" in out.stdout
    refused(["train", "tic_tac_toe", "--run-dir", r, *SMOKE], tmp_path, "part-000002.parquet is missing")


@pytest.mark.parametrize("change,problem", [
    (lambda m: m.pop("wall_seconds"), "no wall_seconds"),
    (lambda m: m.update(wall_seconds="x"), "wall_seconds 'x'"),
    (lambda m: m.update(wall_seconds=float("nan")), "wall_seconds nan"),
    (lambda m: m.update(wall_seconds=float("inf")), "wall_seconds inf"),
    (lambda m: m.update(games_total=[1]), "games_total [1]"),
    (lambda m: m.update(loss_value="low"), "loss_value 'low'"),
    (lambda m: m.update(states_per_s=-3), "states_per_s -3"),
    (lambda m: m.update(step=-5), "step -5")])
def test_status_marks_a_run_with_a_damaged_metrics_line_damaged(world, tmp_path, change, problem):
    """A metrics.jsonl line that train cannot have written makes that run 'damaged' with the
    reason, in the table and in --json, never a traceback."""
    r = _copy(world, tmp_path, "ttt", "r")
    path = r / "metrics.jsonl"
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    change(last)
    path.write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    for args in (["status", r], ["status", r, "--json"]):
        out = run_cli(*args)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert "damaged" in out.stdout and problem in out.stdout, out.stdout


def test_status_rate_is_the_median_step_so_a_burst_at_the_end_does_not_set_it(world, tmp_path):
    from azscale.status import status
    r = _copy(world, tmp_path, "ttt", "r")
    path = r / "metrics.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(recs) >= 4
    wall = 0.0
    for i, m in enumerate(recs):
        wall += 100.0 if i == len(recs) - 1 else 2.0          # the last step took 50 times longer
        m["wall_seconds"] = wall
    path.write_text("".join(json.dumps(m) + "\n" for m in recs))
    assert status(r)["seconds_per_step"] == pytest.approx(2.0)


def test_status_names_a_config_that_is_a_folder_or_has_an_impossible_width(world, tmp_path):
    from azscale.status import status
    r = _copy(world, tmp_path, "ttt", "r")
    cfg = json.loads((r / "config.json").read_text())
    cfg["settings"]["width"] = "wide"
    (r / "config.json").write_text(json.dumps(cfg))
    st = status(r)
    assert st["state"] == "damaged" and "settings.width" in st["problem"]
    (r / "config.json").unlink()
    (r / "config.json").mkdir()                      # a sweep's run whose config.json is a folder
    from azscale.status import run_progress
    st = run_progress(r)
    assert st["state"] == "damaged" and "it is not a file" in st["problem"] and "no config.json" not in st["problem"]


def test_status_ignores_a_damaged_exact_gain(tmp_path):
    from azscale.analysis.saturation import read_exact_gains
    f = tmp_path / "loss.json"
    f.write_text(json.dumps({"exact_gain": {
        "a": {"gain": "big", "ci": 5, "applicable": True},
        "b": {"applicable": True, "gain": 0.01, "ci": [0.0, 0.02], "from_step": 5, "to_step": 8},
        "c": {"applicable": True, "gain": 0.01, "ci": [0.0, float("nan")], "from_step": 5, "to_step": 8},
        "d": {"applicable": False, "reason": "no checkpoints"}, "e": [1]}}))
    assert sorted(read_exact_gains(f)) == ["b", "d"]


def test_random_games_resume_refuses_a_part_of_another_seed(world, tmp_path):
    d = _copy(world, tmp_path, "rnd")
    random_games("tic_tac_toe", 40, 2, tmp_path / "seed2" / "rnd", part_size=20, workers=1, progress=False)
    # the same table name, kind, game and ids: only the games themselves differ
    shutil.copy(tmp_path / "seed2" / "rnd" / "games" / "part-000001.parquet", d / "games" / "part-000001.parquet")
    before = tree_digest(d)
    with pytest.raises(UserError, match="part-000001.parquet: does not hold this table's random games"):
        random_games("tic_tac_toe", 40, 1, d, part_size=20, workers=1, progress=False)
    assert tree_digest(d) == before
    # the control: its own parts are kept as they are
    shutil.copy(world / "rnd" / "games" / "part-000001.parquet", d / "games" / "part-000001.parquet")
    assert random_games("tic_tac_toe", 40, 1, d, part_size=20, workers=1, progress=False) == 0


def test_load_games_takes_one_kind_as_a_string(world):
    import azscale
    every = azscale.load_games(world / "ttt")
    assert len(every) > 0
    assert len(azscale.load_games(world / "ttt", kinds="selfplay")) == len(every)
    assert len(azscale.load_games(world / "ttt", kinds=["selfplay"])) == len(every)
    assert len(azscale.load_games(world / "ttt", kinds="match")) == 0
    with pytest.raises(UserError, match="unknown kind of game 'alien'"):
        azscale.load_games(world / "ttt", kinds="alien")


# -- 13. unclear input named ------------------------------------------------------------------------

def test_an_unknown_kind_of_game_is_named(world, tmp_path):
    refused(["zipf", world / "ttt", "--out", tmp_path / "z", "--kind", "alien"], tmp_path,
            "unknown kind of game 'alien'")


@pytest.mark.parametrize("game,why", [("tic_tac_toe()junk", "unexpected 'junk' after the closing bracket"),
                                      ("connect_four(rows=4,rows=5)", "parameter 'rows' is given twice"),
                                      ("connect_four(rows=4,)", "'' is not key=value"),
                                      ("connect_four(rows=4)x", "unexpected 'x'"),
                                      ("connect_four(rows=4))", "unexpected '\\)'"),
                                      ("connect_four(rows)", "'rows' is not key=value")])
def test_game_strings_are_read_strictly(game, why, tmp_path):
    """OpenSpiel's reader ignores what follows the bracket and keeps the last of a repeated
    parameter: each of these named another game than the one written, silently."""
    refused(["sizes", game], tmp_path, "cannot read the game .*" + why)


def test_game_strings_that_are_right_still_load():
    from azscale.engines.spiel import load_spiel_game
    assert load_spiel_game("connect_four(rows=4,columns=5)").num_distinct_actions() == 5
    assert load_spiel_game("tic_tac_toe()").num_distinct_actions() == 9


def test_one_seed_range_everywhere(world, tmp_path):
    from azscale.analysis.sizeboot import check_resampling
    big = str(2**31)
    refused(["loss", world / "ttt", "--out", tmp_path / "l", "--seed", big, "-q"], tmp_path,
            "--seed must be an integer from 0 to 2,147,483,647, got 2147483648")
    with pytest.raises(UserError, match="seed must be an integer from 0 to 2,147,483,647"):
        check_resampling(100, 2**31)
    with pytest.raises(UserError, match="--seed must be an integer from 0 to 2,147,483,647"):
        tournament(agents_from_runs([world / "ttt"]) + reference_players("random"), tmp_path / "t",
                   games_per_pair=2, simulations=2, seed=2**40, workers=1, progress=False)
    assert not (tmp_path / "t").exists()


def test_temperature_study_names_itself(tmp_path):
    refused(["sweep", "tic_tac_toe", "--out", tmp_path / "sw", "--preset", "smoke", "--widths", "4", "--seeds", "1",
             "--temperature-study", "0", "-q"], tmp_path, "^azscale: error: --temperature-study: each temperature")


def test_a_tournament_rerun_names_what_changed(world, tmp_path):
    m = _copy(world, tmp_path, "m")
    args = ["tournament", world / "ttt", "--out", m, "--workers", "1", "-q"]
    refused([*args, "--reference", "random,mcts-2", "--games-per-pair", "4", "--sims", "2"], tmp_path,
            "games_per_pair: has 2, asked 4")
    refused([*args, "--reference", "random", "--games-per-pair", "2", "--sims", "2"], tmp_path,
            "players not asked for now: mcts-2")
    refused([*args, "--reference", "random,mcts-3", "--games-per-pair", "2", "--sims", "2"], tmp_path,
            "players not asked for now: mcts-2; new players: mcts-3")
    ok = run_cli(*args, "--reference", "random,mcts-2", "--games-per-pair", "2", "--sims", "2")
    assert ok.returncode == 0, ok.stderr                 # the control: the same command finishes it


# -- 9. Ray where nothing answers -----------------------------------------------------------------

def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_at_an_address_where_nothing_answers_is_one_line_at_once(tmp_path):
    """Ray's client used to retry for minutes, printing warnings, before a traceback; now a TCP
    probe refuses it first (a loopback port nobody listens on; the subprocess may take 60 s,
    Ray's own wait took over two minutes here)."""
    port = _free_port()
    for address in (f"127.0.0.1:{port}", f"ray://localhost:{port}"):
        refused(["sweep", "tic_tac_toe", "--out", tmp_path / "sw", "--preset", "smoke", "--widths", "4", "--seeds", "1",
                 "--executor", "ray", "--address", address, "-q"], tmp_path,
                f"cannot reach the Ray cluster at {address}: nothing answers there", timeout=60)
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:notaport", "127.0.0.1", "127.0.0.1:70000", "::::", "http://x:1"])
def test_a_malformed_ray_address_is_one_line(address, tmp_path):
    refused(["sweep", "tic_tac_toe", "--out", tmp_path / "sw", "--preset", "smoke", "--widths", "4", "--seeds", "1",
             "--executor", "ray", "--address", address, "-q"], tmp_path,
            "--address must be auto, local, HOST:PORT or ray://HOST:PORT")


# -- 12. one line naming the file or the setting ----------------------------------------------------

def test_a_sweep_file_that_is_not_utf8_is_one_line(tmp_path):
    f = tmp_path / "sweep.toml"
    f.write_bytes(b'game = "tic_tac_toe"\n# caf\xe9\n')
    refused(["sweep", f, "--out", tmp_path / "sw", "--preset", "smoke"], tmp_path,
            r"sweep.toml: not valid TOML \(byte 26 is not UTF-8 text")


def test_a_games_settings_file_that_is_not_utf8_is_one_line(tmp_path):
    from azscale.config import games_dir
    g = tmp_path / "games"
    shutil.copytree(games_dir(), g)
    with open(g / "tic_tac_toe.toml", "ab") as fh:
        fh.write(b"# caf\xe9\n")
    before = tree_digest(tmp_path)
    r = run_cli("train", "tic_tac_toe", "--run-dir", tmp_path / "r", *SMOKE, env={"AZSCALE_GAMES": str(g)})
    assert_refused(r, before, tree_digest(tmp_path), match=r"tic_tac_toe.toml: not valid TOML \(byte \d+ is not UTF-8")


def _limited_memory(nbytes):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
    return limit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS")
@pytest.mark.parametrize("sets,match", [
    (["--set", "buffer_size=100000000", "--set", "batch_size=16"],
     "not enough memory on cpu for the replay buffer: setting 'buffer_size' 100,000,000 states"),
    (["--set", "width=16384", "--set", "depth=200"],
     "not enough memory on cpu for the network of settings 'width' 16384 and 'depth' 200")])
def test_settings_that_exhaust_memory_are_named(sets, match, tmp_path):
    """torch's allocator raises RuntimeError ("DefaultCPUAllocator: can't allocate memory"), not
    MemoryError: it used to end in a traceback."""
    before = tree_digest(tmp_path)
    r = subprocess.run([sys.executable, "-m", "azscale.cli", "train", "connect_four", "--run-dir", str(tmp_path / "r"),
                        *SMOKE, *sets], capture_output=True, text=True, timeout=300,
                       preexec_fn=_limited_memory(6 * 2**30))
    assert_refused(r, before, tree_digest(tmp_path), may_create=("r",), match=match)


def test_torch_running_out_of_memory_is_recognised():
    from azscale.errors import out_of_memory
    assert out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: not enough memory: "
                                      "you tried to allocate 12600000000 bytes."))
    assert out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")) and out_of_memory(MemoryError())
    assert not out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_a_pt_file_that_is_not_a_checkpoint_is_one_line_naming_it(tmp_path):
    import torch
    from azscale.config import resolve
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    (tmp_path / "zipish.pt").write_bytes(b"PK\x03\x04garbage")
    cfg = resolve("tic_tac_toe", "smoke", {}).to_dict()
    torch.save({"format": "azscale.checkpoint/1", "config": {**cfg, "game": "nope"}, "step": 4, "params": 1,
                "model": {}}, tmp_path / "alien.pt")
    for name, match in (("text.pt", "text.pt: unreadable checkpoint \\(not a file torch.save wrote"),
                        ("zipish.pt", "zipish.pt: unreadable checkpoint \\(not a file torch.save wrote"),
                        ("alien.pt", "alien.pt: damaged checkpoint \\(unknown OpenSpiel game 'nope'\\)")):
        refused(["evaluate", tmp_path / name, "--games", "2", "--sims", "2", "-q"], tmp_path, match)


# -- 11. Ctrl-C: one line, exit status 130, no worker tracebacks ------------------------------------

def _ignores_sigint(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _interrupt(args, ready, tmp_path, workers=2):
    """Start the command in its own process group, wait until its `workers` worker processes
    are up and `ready()` holds (its work under way), then press Ctrl-C: SIGINT to the whole
    group, as a terminal sends it. Every worker must ignore SIGINT (the parent alone answers
    it), so no timing of the press can make a worker print a traceback. The command starts with
    SIGINT at its default, as from a terminal: a test run started in the background (`pytest &`)
    has SIGINT ignored, and every process it starts would inherit that."""
    p = subprocess.Popen([sys.executable, "-m", "azscale.cli", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 240
        kids = []
        while p.poll() is None and time.time() < deadline:
            kids = [k for k in child_pids(p.pid) if b"resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes()]
            if len(kids) >= workers and ready():
                break
            time.sleep(0.05)
        assert p.poll() is None and len(kids) >= workers, "the command ended before its workers were up"
        assert all(_ignores_sigint(k) for k in kids), "a worker process handles SIGINT (it would print a traceback)"
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, (p.returncode, err[-2000:])
    assert err.strip().splitlines() == ["azscale: interrupted (rerun the same command to resume)"], err[-3000:]
    deadline = time.time() + 30                 # and the workers end with their parent
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)], "a worker outlived the interrupted command"


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_during_train_is_one_line(tmp_path):
    r = tmp_path / "r"
    _interrupt(["train", "tic_tac_toe", "--run-dir", r, "--preset", "smoke", "--set", "steps=100000", "--actors", "2",
                "-q"], lambda: (r / "metrics.jsonl").exists(), tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_during_zipf_is_one_line(tmp_path):
    # 30,000 games: the replay's worker pool lives for seconds (its chunks are what the workers do)
    random_games("tic_tac_toe", 30_000, 3, tmp_path / "rnd", part_size=15_000, workers=2, progress=False)
    # pressed once the pool is up (its workers seen for 0.5 s): a press in the instant the pool
    # starts can be dropped (another thread may take a signal ignored then: procs.workers_ignore_interrupt),
    # which test_ctrl_c_while_workers_start_leaves_none_behind covers on its own
    seen = []
    _interrupt(["zipf", tmp_path / "rnd", "--out", tmp_path / "z", "--workers", "2", "--replicates", "0",
                "--fit-window", "ranks:1-10"], lambda: bool(seen.append(time.time()) or time.time() - seen[0] > 0.5),
               tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_during_bench_is_one_line(tmp_path):
    _interrupt(["bench", "selfplay", "tic_tac_toe", "--seconds", "600", "--actors", "2", "--no-baseline", "--engine",
                "spiel", "--games-in-flight", "4", "--sims", "4"], lambda: True, tmp_path)


def _press_ctrl_c_after_first_start(monkeypatch):
    """Ctrl-C pressed while workers start: SIGINT to this process right after the first worker
    starts, to the main thread (a process-wide SIGINT that another thread takes while SIGINT is
    ignored is dropped). `workers_ignore_interrupt` holds it back until the start block ends."""
    import multiprocessing.process as mpp
    import threading
    real = mpp.BaseProcess.start
    pressed = []

    def start(self):
        real(self)
        if not pressed:
            pressed.append(1)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    monkeypatch.setattr(mpp.BaseProcess, "start", start)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sends SIGINT to itself")
@pytest.mark.parametrize("where", ["bench", "actors", "pool"])
def test_ctrl_c_while_workers_start_leaves_none_behind(where, monkeypatch):
    """CI once caught a Ctrl-C held back during the bench's worker starts and raised after the
    start block, outside the block that kills the workers: at exit the queue's semaphores were
    unlinked before the still-starting workers had opened them, and each printed a traceback.
    Now the interrupt still reaches the caller, and no worker is left running."""
    import multiprocessing as mp
    import torch
    from azscale import bench, parallel
    from azscale.nets import build
    from azscale.selfplay import ActorPool
    signal.signal(signal.SIGINT, signal.default_int_handler)     # as from a terminal
    _press_ctrl_c_after_first_start(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        if where == "bench":
            bench._in_processes(time.sleep, lambda i: (60,), 2)
        elif where == "pool":
            list(parallel._results(time.sleep, [60, 60], 2, "sleeps", False, True))
        else:
            cfg = smoke(actors=2)
            ActorPool(cfg, 2, build(cfg.family, (27,), 9, cfg.width, cfg.depth), torch.device("cpu"))
    assert mp.active_children() == []


def test_a_self_play_worker_that_raises_is_one_line_with_its_traceback_in_the_log(tmp_path):
    """A worker made to raise (weights of another width than its network): the parent used to
    meet a bare EOFError (and the worker printed its traceback on the terminal); now the pool
    raises one UserError naming the actor and the error, and the traceback is in the log."""
    import torch
    from azscale.nets import build
    from azscale.selfplay import ActorPool
    cfg = smoke(actors=2)
    other = build(cfg.family, (27,), 9, cfg.width * 2, cfg.depth)        # not the network the actors build
    log = tmp_path / "actors.log"
    pool = ActorPool(cfg, 2, other, torch.device("cpu"), log=log)
    try:
        with pytest.raises(UserError, match=r"self-play actor 0 failed: RuntimeError: Error\(s\) in loading "
                                            r"state_dict .*\(its traceback: .*actors.log\)") as exc:
            pool.play(8, 0, "r")
        assert "EOFError" not in str(exc.value)
    finally:
        pool.close()
    text = log.read_text()
    assert "self-play actor 0 failed:" in text and "Traceback (most recent call last)" in text
    assert "load_state_dict" in text and "size mismatch" in text


# -- recent commands: compare, bench replay, solve, loss --target solver, oware-scan, verdict --plan

def _fake_sweep(root, sweep_json):
    """A sweep directory with `sweep_json` as its sweep.json (bytes) and one run that only has a
    config.json (enough to be listed as a run)."""
    (root / "runs" / "tic_tac_toe-w4-s0").mkdir(parents=True)
    (root / "runs" / "tic_tac_toe-w4-s0" / "config.json").write_text("{}")
    (root / "sweep.json").write_bytes(sweep_json)
    return root


@pytest.mark.parametrize("content, match", [
    (b"", r"arm/sweep.json: not a readable sweep.json"),
    (b'{"kind": "sweep", "ga', r"arm/sweep.json: not a readable sweep.json"),
    (bytes(range(256)), r"arm/sweep.json: not a readable sweep.json"),
    (b"[1, 2]", r"arm/sweep.json: not a sweep.json"),
    (b'{"kind": "tournament"}', r"arm/sweep.json: describes"),
])
def test_compare_refuses_a_damaged_or_foreign_sweep_json(content, match, tmp_path):
    """An arm whose sweep.json was empty, cut short, binary or another kind's was compared as if
    it were a sweep (exit 0, or 'trained with the same settings' against itself)."""
    plain = _fake_sweep(tmp_path / "plain", json.dumps({"kind": "sweep"}).encode())
    arm = _fake_sweep(tmp_path / "arm", content)
    refused(["compare", plain, arm, "--out", tmp_path / "c"], tmp_path, match)


def test_compare_refuses_a_sweep_without_runs(tmp_path):
    plain = _fake_sweep(tmp_path / "plain", json.dumps({"kind": "sweep"}).encode())
    (tmp_path / "arm" / "runs").mkdir(parents=True)
    (tmp_path / "arm" / "sweep.json").write_text(json.dumps({"kind": "sweep"}))
    refused(["compare", plain, tmp_path / "arm", "--out", tmp_path / "c"], tmp_path, r"arm has no runs yet")


def _two_arms(world, tmp_path):
    """Two one-run sweeps that differ in replay_cap: the plain run is world's, the arm's is trained."""
    for name in ("plain", "arm"):
        (tmp_path / name / "runs").mkdir(parents=True)
        (tmp_path / name / "sweep.json").write_text(json.dumps({"kind": "sweep"}))
    shutil.copytree(world / "ttt", tmp_path / "plain" / "runs" / "ttt", symlinks=True)
    train(smoke(replay_cap=2), tmp_path / "arm" / "runs" / "ttt", quiet=True)
    return tmp_path / "plain", tmp_path / "arm"


def test_compare_reads_each_arms_analysis_before_playing(world, tmp_path):
    """A damaged verdict.json in an arm's analysis was found only after every head-to-head pair
    had been played (hours at the default settings); now it stops before the first game."""
    plain, arm = _two_arms(world, tmp_path)
    (arm / "analysis").mkdir()
    (arm / "analysis" / "verdict.json").write_bytes(b"\x00\x9f garbage")
    refused(["compare", plain, arm, "--out", tmp_path / "c", "--games-per-pair", 2, "--sims", 1], tmp_path,
            r"arm/analysis/verdict.json: not a readable verdict")


@pytest.mark.parametrize("early_late", [5, {"applicable": True, "by_params": [1]},
                                        {"applicable": True, "by_params": {"222": 5}}])
def test_compare_refuses_a_loss_json_of_the_wrong_shape(early_late, tmp_path):
    """Valid JSON whose early_late is not a table by size was a Python traceback (AttributeError)."""
    from azscale.analysis.compare import early_late_by_size
    f = tmp_path / "loss.json"
    f.write_text(json.dumps({"early_late": early_late}))
    with pytest.raises(UserError, match=r"loss.json: damaged loss result"):
        early_late_by_size(f)


def test_loss_checks_checkpoints_before_it_solves(world, tmp_path):
    """`loss --target solver --checkpoints 999` solved every state into OUT/labels before it
    found no such checkpoint, and left OUT/labels behind."""
    refused(["loss", world / "ttt", "--out", tmp_path / "l", "--target", "solver", "--checkpoints", "999",
             "--min-count", "1", "--window", "all", "--workers", 1, "-q"], tmp_path,
            r"none of the checkpoint steps \[999\] exist")


def test_a_loss_directory_left_with_only_its_label_cache_is_taken_again(tmp_path):
    """A `loss --target solver` stopped after solving (Ctrl-C, or a refusal) leaves OUT/labels
    and no loss.json; the rerun was refused: 'not an azscale loss analysis (found labels)'."""
    (tmp_path / "l" / "labels").mkdir(parents=True)
    (tmp_path / "l" / "labels" / "labels.parquet").write_bytes(b"x")
    runs.claim_dir(tmp_path / "l", "loss")
    (tmp_path / "l" / "labels" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"not an azscale loss analysis \(found labels\)"):
        runs.claim_dir(tmp_path / "l", "loss")


def test_verdict_plan_writes_only_its_own_files(world, tmp_path):
    """`verdict --plan --out` wrote its Markdown and then its JSON over whatever --out named: a
    sweep's sweep.json (both writes on the one path), a user's notes, a file inside a run."""
    plan = ["verdict", "--plan", "--sizes", "100,1000,10000", "--power-sims", 50]
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps({"kind": "sweep", "game": "tic_tac_toe", "widths": [4]}))
    refused([*plan, "--out", tmp_path / "sw" / "sweep.json"], tmp_path, r"name the Markdown file")
    (tmp_path / "notes.md").write_text("my notes\n")
    refused([*plan, "--out", tmp_path / "notes.md"], tmp_path, r"notes.md exists and is not power plan")
    run = _copy(world, tmp_path, "ttt")
    refused([*plan, "--out", run / "plan.md"], tmp_path, r"would lie inside .*ttt, an azscale run")
    ok = run_cli(*plan, "--out", tmp_path / "p" / "plan.md")
    assert ok.returncode == 0, ok.stderr
    again = run_cli(*plan, "--fall", 50, "--out", tmp_path / "p" / "plan.md")          # its own files: rewritten
    assert again.returncode == 0 and json.loads((tmp_path / "p" / "plan.json").read_text())["fall"] == 50


def test_a_solver_budget_that_no_solver_takes_is_refused(world, tmp_path):
    """--budget on a game whose solver has no node budget, and --solver-budget without --target
    solver, were accepted and did nothing."""
    refused(["solve", "tic_tac_toe", "--states", tmp_path / "states.parquet", "--out", tmp_path / "s",
             "--budget", 100, "-q"], tmp_path, r"--budget is the small-oware solver's node budget; tic_tac_toe's "
                                               r"solver \(memo-minimax\) has none")
    refused(["loss", world / "ttt", "--out", tmp_path / "l", "--solver-budget", 100, "-q"], tmp_path,
            r"--solver-budget is the exact solver's, for --target solver; the target is 'trainset'")


def test_a_sweep_solver_budget_that_no_solver_takes_is_refused(tmp_path):
    """`sweep tic_tac_toe --solver-budget N` was recorded and ignored (only small oware's solver has a budget)."""
    refused(["sweep", "tic_tac_toe", "--out", tmp_path / "sw", "--preset", "smoke", "--widths", "4", "--seeds", "1",
             "--solver-budget", 100, "-q"], tmp_path,
            r"--solver-budget is the small-oware solver's node budget; tic_tac_toe has no solver that takes one")
    f = tmp_path / "sweep.toml"
    f.write_text('game = "tic_tac_toe"\npreset = "smoke"\nwidths = [4]\nseeds = 1\n[analysis]\nsolver_budget = 100\n')
    refused(["sweep", f, "--out", tmp_path / "sw", "-q"], tmp_path, r"the sweep file's solver_budget is the small-oware")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_a_compiled_two_actor_run_is_one_line(tmp_path):
    """SIGTERM (how a sweep stops its runs) to a run whose actors compile the search (3x2 oware,
    the cpu preset): the actors are killed. Compiling from a cold cache, torch.fx shows a tqdm bar,
    and tqdm's first bar makes a multiprocessing lock in each actor that only a clean exit
    unregisters, so the run ended with "leaked semaphore objects" warnings after its line (CI, a
    clean clone, saw it; a warm compile cache hid it here). The cache is a fresh one on purpose."""
    r = tmp_path / "r"
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor-cache")}
    p = subprocess.Popen([sys.executable, "-m", "azscale.cli", "train", "oware(num_houses_per_player=3,num_seeds_per_house=2)",
                          "--run-dir", str(r), "--preset", "cpu", "--set", "steps=100000", "--actors", "2", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        deadline = time.time() + 400
        while p.poll() is None and time.time() < deadline and not (r / "metrics.jsonl").exists():
            time.sleep(0.2)
        assert p.poll() is None and (r / "metrics.jsonl").exists(), "the run ended or stalled before its first step"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130 and err.strip().splitlines() == ["azscale: interrupted (rerun the same command to resume)"], \
        (p.returncode, err[-2000:])


def test_a_file_where_an_output_folder_must_be_is_one_line(tmp_path):
    """`--out A/p.md` where A is a file: one line naming A, not an OS error's 'File exists'."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match=r"afile is a file, not a directory"):
        runs.atomic_write_text(tmp_path / "afile" / "deeper" / "p.md", "text")
    r = run_cli("verdict", "--plan", "--sizes", "116,1028,13316", "--seeds", "3", "--out", tmp_path / "afile" / "p.md")
    assert_refused(r, match="afile is a file, not a directory")                 # refused before its simulations
    for out in ("", ".", "/", ".."):                                            # no file named at all
        r = run_cli("verdict", "--plan", "--sizes", "116,1028", "--out", out)
        assert_refused(r, match="name the Markdown file")
    with pytest.raises(UserError, match=r"cannot write .*z: .*afile is a file, not a directory"):
        runs.claim_dir(tmp_path / "afile" / "z", "zipf")                      # a directory --out, too
    assert (tmp_path / "afile").read_text() == "x"
