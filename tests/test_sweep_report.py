import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from azscale.runs import read_games, read_metrics

ROOT = Path(__file__).resolve().parent.parent
SWEEP_ARGS = ["sweep", "tic_tac_toe", "--widths", "4,16", "--seeds", "1", "--preset", "smoke",
              "--random-games", "2000", "--games-per-pair", "10", "--match-sims", "8", "--bootstrap", "20",
              "--set", "steps=8", "--set", "snapshot_seconds=0", "-q"]


def cli(*args):
    return [sys.executable, "-m", "azscale.cli", *map(str, args)]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "sw"
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", out), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def test_sweep_produces_every_analysis(tiny_sweep):
    a = tiny_sweep / "analysis"
    for f in ("zipf/fits.json", "zipf-random/fits.json", "elo/elo.csv", "loss/loss.json", "loss-pooled/loss.json",
              "loss-solver/loss.json", "scaling/scaling.json", "verdict.md", "verdict.json"):
        assert (a / f).exists(), f
    steps = json.loads((tiny_sweep / "steps.json").read_text())["done"]
    assert {"zipf", "elo", "loss", "verdict", "tournament"} <= set(steps)
    elo = pd.read_csv(a / "elo" / "elo.csv")
    assert set(elo["player"]) == {"tic_tac_toe-w4-s0@8", "tic_tac_toe-w16-s0@8", "random"}


def _digest(root: Path):
    """What must not change between an interrupted and an uninterrupted sweep."""
    out = {}
    for rd in sorted((root / "runs").iterdir()):
        t = read_games(rd)
        m = read_metrics(rd)
        assert t["game_id"].to_pylist() == list(range(t.num_rows))
        assert m[-1]["games_total"] == t.num_rows and [x["step"] for x in m] == list(range(1, len(m) + 1))
        out[rd.name] = t.drop_columns(["run", "seat0", "seat1"]).to_pydict()
    mt = read_games(root / "matches" / "final")
    assert mt["game_id"].to_pylist() == list(range(mt.num_rows))
    out["matches"] = pd.read_csv(root / "matches" / "final" / "results.csv").to_dict()
    out["elo"] = pd.read_csv(root / "analysis" / "elo" / "elo.csv").round(6).to_dict()
    out["random"] = read_games(root / "random").drop_columns(["run"]).to_pydict()
    return out


def test_sweep_killed_at_random_moments_completes_without_duplicates(tiny_sweep, tmp_path):
    out = tmp_path / "killed"
    rng = np.random.default_rng(11)
    kills = 0
    for _ in range(10):
        p = subprocess.Popen(cli(*SWEEP_ARGS, "--out", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(float(rng.uniform(2.5, 7.0)))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
            p.wait()
            # a killed sweep may leave worker processes; give them a moment to notice and exit
            time.sleep(0.5)
        else:
            break
        if kills >= 3:
            break
    assert kills >= 3
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", out), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert _digest(out) == _digest(tiny_sweep)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_chromium_with_every_figure(tiny_sweep, tmp_path):
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "rep"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    for title in ("Settings and versions", "Sizes", "State frequencies (Zipf)", "Value loss by rank",
                  "Elo and scaling", "Inverse-scaling verdict"):
        assert title in md and title in html
    # every number traces to a table: the Elo of each player appears as in elo.csv
    elo = pd.read_csv(tiny_sweep / "analysis" / "elo" / "elo.csv")
    for v in elo["elo"]:
        assert f"{round(v):.0f}" in md
    figures = md.count("![")
    assert figures >= 8
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; CI installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", (tmp_path / "rep" / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert f'data-figures="{figures}"' in dom and f'data-figures-loaded="{figures}"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1200,3000", f"--screenshot={shot}",
                    (tmp_path / "rep" / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000


@pytest.mark.parametrize("nb", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.name)
def test_notebooks_execute_on_a_sweep(nb, tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP", str(tiny_sweep))
    monkeypatch.setenv("NOTEBOOK_OUT", str(tmp_path))
    runpy.run_path(str(nb), run_name="__main__")
    assert list(tmp_path.glob("nb_*.png"))


def test_sweep_refuses_other_settings(tiny_sweep):
    r = subprocess.run(cli(*SWEEP_ARGS[:-1], "--widths", "8", "--out", tiny_sweep), capture_output=True, text=True)
    assert r.returncode == 2 and "other settings" in r.stderr


def test_sweep_refuses_finished_runs_trained_with_other_settings(tiny_sweep, tmp_path):
    """A preset changed after a run finished: the rerun must say so, not keep the old run."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    cfg_path = next((sw / "runs").glob("*/config.json"))
    cfg = json.loads(cfg_path.read_text())
    cfg["settings"]["games_in_flight"] += 1
    cfg_path.write_text(json.dumps(cfg))
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "holds a run with different settings: games_in_flight" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_sweep_goes_on_when_a_step_has_too_little_data(tiny_sweep, tmp_path, monkeypatch):
    """A loss step that finds no state seen often enough (thin data, e.g. a smoke oware sweep)
    is recorded as not computed; the sweep finishes, the verdict says the loss was not measured,
    and the report names the step and why."""
    from typer.testing import CliRunner

    import azscale.analysis.loss as loss_mod
    from azscale.cli import app
    from azscale.errors import UserError
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    steps = json.loads((sw / "steps.json").read_text())
    steps["done"] = [x for x in steps["done"] if x not in ("loss", "loss-pooled", "loss-solver", "verdict")]
    (sw / "steps.json").write_text(json.dumps(steps))
    for x in ("loss", "loss-pooled", "loss-solver"):
        shutil.rmtree(sw / "analysis" / x)
    (sw / "analysis" / "verdict.md").unlink()

    def thin(run_dirs, *a, **k):
        raise UserError(f"{run_dirs[0]}: no state was seen 10 or more times in the selected games")
    monkeypatch.setattr(loss_mod, "loss_analysis", thin)
    r = CliRunner().invoke(app, [*SWEEP_ARGS, "--out", str(sw)])
    assert r.exit_code == 0, r.output
    skipped = json.loads((sw / "analysis" / "skipped.json").read_text())
    assert set(skipped) == {"loss", "loss-pooled", "loss-solver"} and "10 or more times" in skipped["loss"]
    assert "Not measured: run `azscale loss --pooled`" in (sw / "analysis" / "verdict.md").read_text()
    r = CliRunner().invoke(app, ["report", str(sw), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Not computed" in md and "`loss`: " in md and "Value loss by rank" not in md


def _refused(args, root):
    from conftest import assert_refused, tree_digest
    before = tree_digest(root)
    r = subprocess.run(cli(*args), capture_output=True, text=True, timeout=300)
    assert_refused(r, before, tree_digest(root))
    return r.stderr


def test_a_lost_record_is_refused_not_read_as_zero(tiny_sweep, tmp_path):
    """A run that lost metrics.jsonl used to keep the sweep in an endless "rerun to continue" loop
    and the report printing zeros: both now refuse with one line naming the record."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    (next((sw / "runs").iterdir()) / "metrics.jsonl").unlink()
    assert "metrics.jsonl" in _refused([*SWEEP_ARGS, "--out", sw], tmp_path)
    assert "metrics.jsonl" in _refused(["report", sw, "--out", tmp_path / "rep"], tmp_path)


def test_damaged_sweep_records_are_one_line(tiny_sweep, tmp_path):
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    (sw / "steps.json").write_text('{"done": 3}')
    assert "steps.json" in _refused([*SWEEP_ARGS, "--out", sw], tmp_path)
    (sw / "analysis" / "elo" / "elo.csv").write_text("player\n")    # used to render as "(no rows)"
    assert "elo.csv" in _refused(["report", sw, "--out", tmp_path / "rep"], tmp_path)


def test_sweep_temperature_study_step_and_its_report_section(tiny_sweep, tmp_path):
    """The optional temperature step (issue 16): a sweep that asks for it runs it over the final
    checkpoints once; the report shows its table, its figures, the toy tree beside random play and
    self-play, and a quanta section that predicts nothing where alpha_Z <= 1."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    cfg = json.loads((sw / "sweep.json").read_text())
    assert "temperature_study" not in cfg or cfg["temperature_study"] == []
    cfg["temperature_study"] = [0.5, 1.0]             # as if the sweep had been started with the option
    (sw / "sweep.json").write_text(json.dumps(cfg))
    r = subprocess.run(cli(*SWEEP_ARGS, "--temperature-study", "1,0.5", "--out", sw), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "temperature" in json.loads((sw / "steps.json").read_text())["done"]
    study = json.loads((sw / "temperature" / "study.json").read_text())
    assert study["temperatures"] == [0.5, 1.0] and study["settings"]["games_per_pair"] == 10
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Temperature study (Zipf tail against Elo exponent)" in md and "### Zipf tail against Elo exponent" in md
    for f in ("temperature_curves.png", "temperature_elo.png", "temperature_exponents.png", "zipf_toy_tree.png"):
        assert f"![{f}](figures/{f})" in md and (tmp_path / "rep" / "figures" / f).stat().st_size > 0
    assert "agreement" not in md.lower()
    sc = json.loads((sw / "analysis" / "scaling" / "scaling.json").read_text())
    for row in sc["quanta"]["rows"]:
        if row["alpha_Z"] is not None and row["alpha_Z"] <= 1:
            line = next(x for x in md.splitlines() if x.startswith(f"| {row['method']} |"))
            assert "not applicable (α_Z ≤ 1)" in line and f"{row['alpha_Z'] - 1:.3f}" not in line
    # without the option the same sweep is refused as other settings: the list is a setting
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "temperature_study" in r.stderr
