import json
import os
import re
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

from azscale.checkpoints import read_metrics
from azscale.runs import read_games

from conftest import tree_digest

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
    steps = json.loads((tiny_sweep / "steps.json").read_text())
    assert {"zipf", "elo", "loss", "verdict", "tournament"} <= set(steps["done"])
    assert steps["inputs"]["zipf"]["runs"] == ["tic_tac_toe-w16-s0", "tic_tac_toe-w4-s0"]    # what each step read
    log = (tiny_sweep / "sweep.log").read_text().splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", x) for x in log)        # timestamped
    for what in ("training: 0/2 runs finished", "tic_tac_toe-w16-s0: finished after", "step zipf: finished in",
                 "step verdict: finished in", "sweep finished"):
        assert any(what in x for x in log), what
    assert (tiny_sweep / "logs" / "tic_tac_toe-w4-s0.log").exists()
    elo = pd.read_csv(a / "elo" / "elo.csv")
    assert set(elo["player"]) == {"tic_tac_toe-w4-s0@8", "tic_tac_toe-w16-s0@8", "random"}
    # one seed per size: the verdict cannot tell, and says why its power is not applicable
    vj = json.loads((a / "verdict.json").read_text())
    assert vj["verdict"] == "cannot tell" and not vj["power"]["applicable"] and "two seeds" in vj["power"]["reason"]
    assert "**Cannot tell**" in (a / "verdict.md").read_text()


def test_kept_inputs_rebuild_the_report_and_the_verdict(tiny_sweep, tmp_path):
    """`report --keep-inputs` copies the small inputs (no games, checkpoints or Parquet); the
    report rebuilt from that copy alone is the same report, and the verdict reruns on it."""
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "r", "--keep-inputs"), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    kept = tmp_path / "r" / "inputs"
    files = [p for p in kept.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".parquet", ".pt")]
    assert (kept / "analysis" / "elo" / "bootstrap.npz").exists() and (kept / "matches" / "final" / "results.csv").exists()
    assert {p.name for p in (kept / "runs").rglob("*") if p.is_file()} == {"config.json", "metrics.jsonl"}
    assert json.loads((kept / "inputs.json").read_text())["kind"] == "analysis inputs"
    assert all((tiny_sweep / p.relative_to(kept)).read_bytes() == p.read_bytes() for p in files
               if p.name not in ("inputs.json", "metrics.jsonl"))
    assert any(p.suffix == ".parquet" for p in tiny_sweep.rglob("*"))       # what was left behind
    r = subprocess.run(cli("report", kept, "--out", tmp_path / "r2"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    a, b = ((tmp_path / d / "report.md").read_text() for d in ("r", "r2"))
    assert a.replace(str(tiny_sweep), "SWEEP") == b.replace(str(kept), "SWEEP")
    r = subprocess.run(cli("verdict", kept / "analysis" / "elo", "--out", tmp_path / "v.md", "--replicates", "200"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    # kept again over the old copy: replaced whole; over anything else, or inside the sweep: one line, no write
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "r", "--keep-inputs"), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0 and (kept / "inputs.json").exists(), r.stderr
    (tmp_path / "r3" / "inputs").mkdir(parents=True)
    (tmp_path / "r3" / "inputs" / "mine.txt").write_text("x")
    for out in (tmp_path / "r3", tiny_sweep / "rep"):
        r = subprocess.run(cli("report", tiny_sweep, "--out", out, "--keep-inputs"), capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not (out / "report.md").exists()
    assert json.loads((tmp_path / "v.json").read_text())["verdict"] == \
        json.loads((tiny_sweep / "analysis" / "verdict.json").read_text())["verdict"]


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


class _Dom:
    """What the report test reads from the page the browser built: headings (level, text),
    paragraphs' text, figure captions, and the win-rate matrix cells."""

    def __init__(self, html: str):
        from html.parser import HTMLParser
        self.headings, self.paragraphs, self.captions, self.ids = [], [], [], set()
        self.matrix: dict[tuple[str, str], str] = {}
        self.matrix_rows: list[str] = []
        dom = self

        class P(HTMLParser):
            def __init__(self):
                super().__init__()
                self.stack, self.text, self.row, self.cols, self.in_matrix, self.cell = [], [], None, [], False, 0

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if "id" in a:
                    dom.ids.add(a["id"])
                if tag == "table" and a.get("id") == "win-rate-matrix":
                    self.in_matrix = True
                if self.in_matrix and tag in ("th", "td"):
                    self.title = a.get("title", "")
                if self.in_matrix and tag == "th" and "tbody" in self.stack:
                    dom.matrix_rows.append(a.get("title", ""))
                self.stack.append(tag)
                self.text = [] if tag in ("h1", "h2", "h3", "h4", "h5", "h6", "p", "figcaption", "td", "th") else self.text

            def handle_endtag(self, tag):
                t = "".join(self.text).strip()
                if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                    dom.headings.append((int(tag[1]), t))
                elif tag == "p":
                    dom.paragraphs.append(t)
                elif tag == "figcaption":
                    dom.captions.append(t)
                elif tag == "table":
                    self.in_matrix = False
                elif self.in_matrix and tag == "td" and " vs " in self.title:
                    row, col = self.title.split(":")[0].split(" vs ")
                    dom.matrix[(row, col)] = t
                if self.stack:
                    self.stack.pop()

            def handle_data(self, data):
                self.text.append(data)

        P().feed(html)


def test_report_renders_in_chromium_with_every_figure(tiny_sweep, tmp_path):
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "rep"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    for title in ("Summary", "Settings and versions", "Sizes", "State frequencies (Zipf)", "Value loss by rank",
                  "Elo and scaling", "Inverse-scaling verdict"):
        assert title in md and title in html
    assert md.index("## Summary") < md.index("## Settings and versions")        # the summary opens the report
    # every number traces to a table: the Elo of each player appears as in elo.csv (never as -0)
    elo = pd.read_csv(tiny_sweep / "analysis" / "elo" / "elo.csv")
    for v in elo["elo"]:
        assert f"{round(v) + 0:,.0f}" in md
    assert not re.search(r"(?<![\w.])-0(?![.\d])", md), "a -0 in the report"
    figures = md.count("![")
    assert figures >= 8
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; CI installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=5000", "--window-size=1200,3000"]
    page = subprocess.run([browser, *flags, "--dump-dom", (tmp_path / "rep" / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120).stdout
    assert f'data-figures="{figures}"' in page and f'data-figures-loaded="{figures}"' in page
    assert 'data-page-overflows="no"' in page, "a table or figure is wider than the page"
    dom = _Dom(page)
    # every heading of every level renders as a heading, never as a paragraph starting with '#'
    for line in md.splitlines():
        m = re.match(r"(#{1,6}) (.+)", line)
        if m:
            want = (len(m.group(1)), m.group(2).replace("**", "").replace("`", "").strip())
            assert want in dom.headings, (want, dom.headings)
    assert not [p for p in dom.paragraphs if p.startswith("#")]
    assert {l for l, _ in dom.headings} >= {1, 2, 3}
    # the summary's links lead to sections of the page
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"\]\(#([\w-]+)\)", summary)
    assert links and all(x in dom.ids for x in links), (links, dom.ids)
    # real captions: numbered, saying what the figure shows (never a file name)
    assert len(dom.captions) == figures
    for k, c in enumerate(dom.captions, 1):
        assert c.startswith(f"Figure {k}.") and len(c) > 60 and ".png" not in c, c
    assert any("Score of the row player against the column player" in c for c in dom.captions)
    assert any("Rank-frequency curves of self-play states" in c for c in dom.captions)
    # the win-rate matrix holds the score of every pair in its cells, as results.csv has it
    res = pd.read_csv(tiny_sweep / "matches" / "final" / "results.csv")
    pairs = {}
    for r in res.itertuples():
        for a, b, s_ in ((r.first, r.second, r.wins + 0.5 * r.draws), (r.second, r.first, r.losses + 0.5 * r.draws)):
            got = pairs.setdefault((a, b), [0.0, 0])
            got[0] += s_
            got[1] += r.wins + r.draws + r.losses
    assert len(dom.matrix) == len(pairs) == 6
    assert dom.matrix_rows == ["tic_tac_toe-w4-s0@8", "tic_tac_toe-w16-s0@8", "random"]     # by size, reference last
    for key, (score, n) in pairs.items():
        assert dom.matrix[key] == f"{score / n:.2f}", (key, dom.matrix[key], score / n)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", (tmp_path / "rep" / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000


@pytest.mark.parametrize("nb", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.name)
def test_notebooks_execute_in_a_jupyter_kernel(nb, tiny_sweep, grown_sweep, tmp_path):
    """Each notebook, read by jupytext and run cell by cell in a real IPython kernel (nbclient)
    on the smoke sweeps, its SWEEP parameters from the environment; figures come out inline."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    book = jupytext.read(nb)
    assert any("parameters" in c.metadata.get("tags", []) and "SWEEP" in c.source for c in book.cells)
    env = {"AZSCALE_SWEEP": str(tiny_sweep), "AZSCALE_SWEEP_B": str(grown_sweep), "AZSCALE_TOP": "6",
           "PYTHONPATH": str(ROOT)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)                    # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "no inline figures"
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
    assert "azscale" not in text or "Traceback" not in text
    if nb.name == "frequent_states.py":
        assert "tic_tac_toe: " in text and "distinct states" in text
    else:
        assert f"B: {grown_sweep}" in text and "6 runs" in text


def test_sweep_refuses_other_settings(tiny_sweep):
    before = tree_digest(tiny_sweep)
    for args, what in ((["--widths", "8"], "widths: 4, 16 would be dropped"), (["--set", "steps=7"], "steps: the sweep has 8, asked 7 (steps may only grow"),
                       (["--set", "games_in_flight=3"], "games_in_flight: the sweep has"),
                       (["--games-per-pair", "12"], "games_per_pair"), (["--preset", "cpu"], "simulations")):
        r = subprocess.run(cli(*SWEEP_ARGS, *args, "--out", tiny_sweep), capture_output=True, text=True)
        assert r.returncode == 2 and "other settings" in r.stderr and what in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert tree_digest(tiny_sweep) == before


def _digests(root: Path, names) -> dict:
    return {n: tree_digest(root / "runs" / n) for n in names}


@pytest.fixture(scope="module")
def grown_sweep(tiny_sweep, tmp_path_factory):
    """The smoke sweep grown by a width and a seed (4 new runs, two at a time), from a copy."""
    sw = tmp_path_factory.mktemp("grown") / "sw"
    shutil.copytree(tiny_sweep, sw)
    old = _digests(sw, ["tic_tac_toe-w4-s0", "tic_tac_toe-w16-s0"])
    pairs = {p.name: p.read_bytes() for p in (sw / "matches" / "final" / "pairs").iterdir()}
    r = subprocess.run(cli("sweep", "--out", sw, "--widths", "4,16,8", "--seeds", "2", "--parallel", "2", "-q"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    sw.joinpath("test-old-runs.json").write_text(json.dumps({"runs": old, "pairs": sorted(pairs)}))
    return sw


def test_growing_a_sweep_trains_only_the_new_runs(grown_sweep, tmp_path):
    sw = grown_sweep
    old = json.loads(sw.joinpath("test-old-runs.json").read_text())
    # the old runs are untouched, games tables included (hash of every file)
    assert _digests(sw, old["runs"]) == old["runs"]
    log = (sw / "sweep.log").read_text()
    grown = log[log.rindex("started: tic_tac_toe"):]
    assert "grows: widths +8; seeds 1 -> 2" in grown and "training: 2/6 runs finished" in grown
    trained = re.findall(r"training (tic_tac_toe-w\d+-s\d+) \(", grown)
    assert sorted(trained) == ["tic_tac_toe-w16-s1", "tic_tac_toe-w4-s1", "tic_tac_toe-w8-s0", "tic_tac_toe-w8-s1"]
    # --parallel 2: the second run started before the first finished
    lines = grown.splitlines()
    first_done = next(k for k, x in enumerate(lines) if ": finished after" in x)
    assert sum("  training tic_tac_toe-" in x for x in lines[:first_done]) == 2
    # the analyses that read runs were redone; the random games were not
    assert "redoing analysis steps: zipf, tournament, elo, loss, loss-pooled, loss-solver, scaling, verdict" in grown
    assert "step random-games" not in grown and "step zipf-random" not in grown
    # the tournament kept its finished pairs (the same files) and played only the new ones
    pairs = sorted(p.name for p in (sw / "matches" / "final" / "pairs").iterdir())
    assert set(old["pairs"]) < set(pairs) and len(pairs) == 21
    elo = pd.read_csv(sw / "analysis" / "elo" / "elo.csv")
    assert len(elo) == 7 and "tic_tac_toe-w8-s1@8" in set(elo["player"])
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| tic_tac_toe-w8-s1 |" in md and "6 runs (3 sizes × 2 seeds)" in md


def test_sweep_of_an_earlier_azscale_continues(tiny_sweep, tmp_path):
    """sweep.json and steps.json as the previous azscale wrote them (a long sweep runs under it
    right now): a missing key is its default, the finished steps count as made from that
    sweep.json, and both the old command and `--out` alone continue without redoing anything."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    rec = json.loads((sw / "sweep.json").read_text())
    old_keys = ["bootstrap", "game", "games_per_pair", "id", "kind", "match_simulations", "match_temperature",
                "max_minutes_per_run", "overrides", "preset", "random_games", "seeds", "solver", "solver_states", "widths"]
    rec = {k: rec[k] for k in old_keys}
    rec["overrides"] = {"steps": "8", "snapshot_seconds": "0"}          # typed text, as it was stored
    (sw / "sweep.json").write_text(json.dumps(rec, indent=2, sort_keys=True))
    done = json.loads((sw / "steps.json").read_text())["done"]
    (sw / "steps.json").write_text(json.dumps({"done": done}))
    before = {k: v for k, v in tree_digest(sw).items() if k.startswith(("runs/", "analysis/", "matches/", "random/"))}
    size = len((sw / "sweep.log").read_text())
    for args in (SWEEP_ARGS, ["sweep", "--out", sw, "-q"]):
        r = subprocess.run(cli(*args, "--out", sw) if args is SWEEP_ARGS else cli(*args), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    after = {k: v for k, v in tree_digest(sw).items() if k.startswith(("runs/", "analysis/", "matches/", "random/"))}
    assert after == before
    added = (sw / "sweep.log").read_text()[size:]
    assert added.count("sweep finished") == 2 and "redoing" not in added and "step " not in added
    st = json.loads((sw / "steps.json").read_text())
    assert sorted(st["done"]) == sorted(done) and set(st["inputs"]) == set(done)


def test_sweep_file_flags_and_reanalyse(tiny_sweep, tmp_path):
    """A sweep file equal to the flags (values compared, not text: steps = "08") continues the
    sweep; a flag overrides the file; a changed setting is refused naming it; --reanalyse redoes
    the named step and those that read it."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    toml = tmp_path / "sweep.toml"
    toml.write_text(f"""game = "tic_tac_toe"
preset = "smoke"
widths = [4, 16]
seeds = 1
out = "{sw}"
[overrides]
steps = "08"
snapshot_seconds = 0.0
[analysis]
random_games = 2000
games_per_pair = 10
match_simulations = 8
bootstrap = 20
""")
    before = tree_digest(sw / "runs")
    r = subprocess.run(cli("sweep", toml, "-q"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert tree_digest(sw / "runs") == before
    r = subprocess.run(cli("sweep", toml, "--set", "steps=7", "-q"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "steps: the sweep has 8, asked 7" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(toml.read_text().replace("seeds = 1", "seeds = 1\nwidht = 3"))
    r = subprocess.run(cli("sweep", bad), capture_output=True, text=True)
    assert r.returncode == 2 and "unknown key(s) widht" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad.write_text(toml.read_text().replace("seeds = 1", "seeds = 1.5"))
    r = subprocess.run(cli("sweep", bad), capture_output=True, text=True)
    assert r.returncode == 2 and "seeds must be an integer" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(cli("sweep", toml, "--reanalyse", "nope"), capture_output=True, text=True)
    assert r.returncode == 2 and "--reanalyse: unknown step(s) nope" in r.stderr
    zipf = tree_digest(sw / "analysis" / "zipf")
    r = subprocess.run(cli("sweep", toml, "--reanalyse", "elo", "-q"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    log = (sw / "sweep.log").read_text()
    assert "redoing analysis steps: elo, scaling, verdict (asked)" in log
    last = log[log.rindex("redoing"):]
    assert "step elo: finished" in last and "step zipf:" not in last and "step tournament:" not in last
    assert tree_digest(sw / "analysis" / "zipf") == zipf



def test_reanalyse_and_report_never_delete_or_overwrite_a_users_file(tiny_sweep, tmp_path):
    """`--reanalyse` deletes only the files each redone step wrote, after checking them all: a
    user's file in a step's folder (or a foreign file where the verdict goes) is refused in one
    line and nothing is deleted; `report --out` into a folder azscale did not make is refused."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    (sw / "analysis" / "scaling" / "my_notes.txt").write_text("a user's notes")
    before = tree_digest(sw / "analysis")
    r = subprocess.run(cli("sweep", "--out", sw, "--reanalyse", "elo", "-q"), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "my_notes.txt" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_digest(sw / "analysis") == before
    (sw / "analysis" / "scaling" / "my_notes.txt").unlink()
    (sw / "analysis" / "verdict.json").write_text('{"mine": 1}')
    before = tree_digest(sw / "analysis")
    r = subprocess.run(cli("sweep", "--out", sw, "--reanalyse", "elo", "-q"), capture_output=True, text=True,
                       timeout=300)                       # (elo redoes scaling and the verdict)
    assert r.returncode == 2 and "verdict.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_digest(sw / "analysis") == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.txt").write_text("a user's file")
    r = subprocess.run(cli("report", tiny_sweep, "--out", mine), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not empty" in r.stderr, r.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["report.txt"]

STATUS_ARGS = ["sweep", "tic_tac_toe", "--widths", "4,8", "--seeds", "1", "--preset", "smoke", "--random-games", "500",
               "--games-per-pair", "4", "--match-sims", "4", "--bootstrap", "8", "--set", "steps=14",
               "--set", "snapshot_seconds=0", "-q"]


def _status(path):
    r = subprocess.run(cli("status", path, "--json"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _steps(run_dir: Path) -> int:
    m = read_metrics(run_dir)
    return m[-1]["step"] if m else 0


def test_status_while_a_sweep_runs_and_after_a_kill(tmp_path):
    """The second run is paused (SIGSTOP) once it has recorded two steps, so however loaded the
    machine, it is still under way when status reads it and when the sweep is killed (a sweep
    that ran on used to finish it first: no sleep decides anything here)."""
    out = tmp_path / "sw"
    p = subprocess.Popen(cli(*STATUS_ARGS, "--out", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w4, w8 = out / "runs" / "tic_tac_toe-w4-s0", out / "runs" / "tic_tac_toe-w8-s0"
    trainer = []
    try:
        deadline = time.time() + 600
        while not (w8.exists() and _steps(w8) >= 2):          # the first run finished, the second under way
            assert p.poll() is None and time.time() < deadline, "the sweep ended or stalled"
            time.sleep(0.02)
        trainer = _trainers(w8)
        assert trainer, "no training process for the second run"
        for pid in trainer:
            os.kill(pid, signal.SIGSTOP)                      # it stays under way, mid-run, until the kill
        lo = _steps(w8)
        assert lo < 14, "the second run finished before it was paused"
        st = _status(out)
        assert _steps(w8) == lo
        assert st["kind"] == "sweep" and st["running"] is True and st["runs_total"] == 2
        r4, r8 = st["runs"]
        assert (r4["run"], r4["state"], r4["finished"], r4["step"], r4["steps"]) == ("tic_tac_toe-w4-s0", "finished",
                                                                                      True, 14, 14)
        assert r4["games"] == read_metrics(w4)[-1]["games_total"]
        assert r8["finished"] is False and r8["step"] == lo and r8["steps"] == 14
        assert r8["states_per_s"] > 0 and r8["loss_value"] is not None and r8["eta_seconds"] is not None
        assert st["analysis"]["done"] == []
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    # the training process died with the sweep, paused or not (nothing trains on after the kill)
    deadline = time.time() + 60
    while time.time() < deadline and _trainers(w8):
        time.sleep(0.1)
    assert not _trainers(w8), "a training process outlived the killed sweep"
    st = _status(out)
    r4, r8 = st["runs"]
    assert st["running"] is False and st["runs_finished"] == 1
    assert r4["finished"] is True and r8["finished"] is False and r8["step"] == _steps(w8) < 14
    r = subprocess.run(cli("status", out), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "not running; 1/2 runs finished" in r.stdout and "tic_tac_toe-w8-s0" in r.stdout
    r = subprocess.run(cli("status", tmp_path / "nothing"), capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("azscale: error: ")


def _trainers(run_dir: Path) -> list[int]:
    """The live processes training `run_dir` (its path in their command line; zombies excluded)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and str(run_dir).encode() in _cmdline(d):
            try:
                if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _cmdline(d: Path) -> bytes:
    try:
        return (d / "cmdline").read_bytes()
    except OSError:
        return b""


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


def _without_loss_steps(tiny_sweep, tmp_path):
    """A copy of the tiny sweep whose loss steps and verdict are still to do."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    steps = json.loads((sw / "steps.json").read_text())
    steps["done"] = [x for x in steps["done"] if x not in ("loss", "loss-pooled", "loss-solver", "verdict")]
    (sw / "steps.json").write_text(json.dumps(steps))
    for x in ("loss", "loss-pooled", "loss-solver"):
        shutil.rmtree(sw / "analysis" / x)
    (sw / "analysis" / "verdict.md").unlink()
    return sw


def test_sweep_goes_on_when_a_step_has_too_little_data(tiny_sweep, tmp_path, monkeypatch):
    """A loss step that finds no state seen often enough (thin data, e.g. a smoke oware sweep)
    is recorded as not computed; the sweep finishes, the verdict says the loss was not measured,
    and the report names the step and why."""
    from typer.testing import CliRunner

    import azscale.analysis.loss_report as loss_mod
    from azscale.cli import app
    from azscale.errors import ThinData
    sw = _without_loss_steps(tiny_sweep, tmp_path)

    def thin(run_dirs, *a, **k):
        raise ThinData(f"{run_dirs[0]}: no state was seen 10 or more times in the selected games")
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


def test_sweep_stops_when_an_optional_step_meets_anything_but_thin_data(tiny_sweep, tmp_path, monkeypatch,
                                                                         capsys):
    """Only ThinData from an optional step is recorded as skipped: any other UserError (here a
    damaged games table met by the loss step) stops the sweep with its one line, exit status 2,
    and the step is neither done nor skipped, so the next run tries it again."""
    import azscale.analysis.loss_report as loss_mod
    from azscale.cli import main
    from azscale.errors import UserError
    sw = _without_loss_steps(tiny_sweep, tmp_path)

    def damaged(run_dirs, *a, **k):
        raise UserError(f"{run_dirs[0]}/games: damaged games table (a column is missing)")
    monkeypatch.setattr(loss_mod, "loss_analysis", damaged)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([*map(str, SWEEP_ARGS), "--out", str(sw)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert len(err) == 1 and err[0].startswith("azscale: error: ") \
        and err[0].endswith("/games: damaged games table (a column is missing)"), err
    assert not (sw / "analysis" / "skipped.json").exists()
    assert "loss" not in json.loads((sw / "steps.json").read_text())["done"]
    assert "step loss: failed: " in (sw / "sweep.log").read_text()


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
    # the report reads steps.json too (which runs the analysis read)
    assert "steps.json" in _refused(["report", sw, "--out", tmp_path / "rep"], tmp_path)
    # a steps.json naming none of the runs there (copied from another sweep, say): one line, not an IndexError
    steps = json.loads((tiny_sweep / "steps.json").read_text())
    for v in steps["inputs"].values():
        if isinstance(v, dict) and "runs" in v:
            v["runs"] = ["elsewhere-w4-s0"]
    (sw / "steps.json").write_text(json.dumps(steps))
    assert "read none of the runs" in _refused(["report", sw, "--out", tmp_path / "rep"], tmp_path)
    shutil.copy(tiny_sweep / "steps.json", sw / "steps.json")
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
    # asking a finished sweep for the study: only the new step runs
    r = subprocess.run(cli(*SWEEP_ARGS, "--temperature-study", "1,0.5", "--out", sw), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads((sw / "sweep.json").read_text())["temperature_study"] == [0.5, 1.0]
    assert "temperature" in json.loads((sw / "steps.json").read_text())["done"]
    study = json.loads((sw / "temperature" / "study.json").read_text())
    assert study["temperatures"] == [0.5, 1.0] and study["settings"]["games_per_pair"] == 10
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Temperature study (Zipf tail against Elo exponent)" in md and "### Zipf tail against Elo exponent" in md
    for f in ("temperature_curves.png", "temperature_elo.png", "temperature_exponents.png", "zipf_toy_tree.png"):
        assert f"](figures/{f})" in md and (tmp_path / "rep" / "figures" / f).stat().st_size > 0
    assert "agreement" not in md.lower()
    sc = json.loads((sw / "analysis" / "scaling" / "scaling.json").read_text())
    for row in sc["quanta"]["rows"]:
        if row["alpha_Z"] is not None and row["alpha_Z"] <= 1:
            line = next(x for x in md.splitlines() if x.startswith(f"| {row['method']} |"))
            assert "not applicable (α_Z ≤ 1)" in line and f"{row['alpha_Z'] - 1:.3f}" not in line
    # without the option the sweep keeps its stored study and redoes nothing
    before = (sw / "steps.json").read_text()
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (sw / "steps.json").read_text() == before
    # growing the sweep plays the study again with every agent (it cannot take a new agent in
    # place: its games are numbered by its number of agents); before, the sweep died on it
    grow = [a if a != "4,16" else "4,8,16" for a in SWEEP_ARGS]
    r = subprocess.run(cli(*grow, "--temperature-study", "1,0.5", "--out", sw), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    players = json.loads((sw / "temperature" / "temperature.json").read_text())["players"]
    assert len(players) == 3 and any("w8" in json.dumps(pl) for pl in players)
    assert json.loads((sw / "temperature" / "study.json").read_text())["temperatures"] == [0.5, 1.0]
    # a new temperature with the same agents plays only that temperature: the games played are kept
    played = {f: f.stat().st_mtime_ns for f in (sw / "temperature").rglob("*.parquet")}
    assert played
    r = subprocess.run(cli(*grow, "--temperature-study", "1,0.5,0.25", "--out", sw), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert all(f.exists() and f.stat().st_mtime_ns == t for f, t in played.items())
    assert json.loads((sw / "temperature" / "study.json").read_text())["temperatures"] == [0.25, 0.5, 1.0]


def test_sweep_within_run_checkpoint_tournaments(tiny_sweep, tmp_path):
    """The paper's second kind of round-robin (PAPER.md section 6): asked of a finished sweep,
    each run's log-spaced checkpoints play each other, their games join the final checkpoints'
    in one Elo fit (the final checkpoint is one player in both), the size comparison still
    reads the final checkpoints, and the report says so and draws Elo against step."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    verdict_before = json.loads((sw / "analysis" / "verdict.json").read_text())
    r = subprocess.run(cli(*SWEEP_ARGS, "--checkpoint-tournament", "1", "--out", sw), capture_output=True, text=True)
    assert r.returncode == 2 and "checkpoint-tournament must be 0" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(cli(*SWEEP_ARGS, "--checkpoint-tournament", "3", "--out", sw), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    log = (sw / "sweep.log").read_text()
    assert "redoing analysis steps: elo, scaling, verdict (their inputs changed)" in log
    last = log[log.rindex("redoing"):]
    assert "step tournament-checkpoints: finished" in last and "step tournament:" not in last
    assert "step zipf:" not in last
    runs_ = ["tic_tac_toe-w4-s0", "tic_tac_toe-w16-s0"]
    for run in runs_:
        t = sw / "matches" / "checkpoints-3" / run
        res = pd.read_csv(t / "results.csv")
        players = set(res["first"]) | set(res["second"])
        assert players == {f"{run}@{s}" for s in (1, 3, 8)}        # trained checkpoints 1, 3, 8 (step 0 is not)
        assert len(res) == 2 * 3 and (res["wins"] + res["draws"] + res["losses"] == 5).all()
    elo = pd.read_csv(sw / "analysis" / "elo" / "elo.csv")
    assert set(elo["player"]) == {"random"} | {f"{r}@{s}" for r in runs_ for s in (1, 3, 8)}
    assert len(json.loads((sw / "analysis" / "elo" / "elo.json").read_text())["tournaments"]) == 3
    assert (sw / "analysis" / "elo" / "elo_vs_step.png").stat().st_size > 0
    games = read_games(sw / "matches" / "checkpoints-3" / runs_[0])
    assert set(games["run"].to_pylist()) == {f"checkpoints-3-{runs_[0]}"}     # never taken for the run's own games
    verdict = json.loads((sw / "analysis" / "verdict.json").read_text())
    assert [s["params_from"] for s in verdict["steps"]] == [s["params_from"] for s in verdict_before["steps"]]
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Within-run round-robins (the paper's second kind)" in md and "`tic_tac_toe-w4-s0`: 1, 3, 8" in md
    assert "](figures/elo_elo_vs_step.png)" in md
    # saturation per run: checkpoints 1, 3, 8 hold none between half and five sixths of training
    # (steps 4 to 7), so the Elo gain is not applicable and says why; 8 steps are too few for the
    # loss trend: cannot tell
    sat = md[md.index("Saturation per run"):]
    sat = sat[:sat.index("\n## ")] if "\n## " in sat else sat
    for run in runs_:
        row = next(line for line in sat.splitlines() if line.startswith(f"| {run} "))
        assert row.count("not applicable") == 2 and "cannot tell" in row and "between steps 4 and 7" in row
    assert "0 of 2 runs saturated" in sat
    html = (tmp_path / "rep" / "report.html").read_text()
    matrix = html[html.index("Win-rate matrix"):]
    matrix = matrix[:matrix.index("</table>")]
    assert "@1" not in matrix and "@3" not in matrix                # the matrix shows the final checkpoints only
    st = json.loads(subprocess.run(cli("status", sw, "--json"), capture_output=True, text=True).stdout)
    assert st["analysis"]["pending"] == [] and "tournament-checkpoints" in st["analysis"]["done"]
    for r in st["runs"]:        # status reads the sweep's Elo fit: no checkpoint near two thirds here
        assert r["saturation"]["state"] == "cannot tell" and r["saturation"]["elo_gain"] is None
        assert "between steps 4 and 7" in r["saturation"]["reason"]
        assert r["saturation"]["loss_change"] is None          # 8 steps: too few for the loss trend
    st0 = json.loads(subprocess.run(cli("status", tiny_sweep, "--json"), capture_output=True, text=True).stdout)
    assert "tournament-checkpoints" not in st0["analysis"]["pending"] and "temperature" not in st0["analysis"]["pending"]
    # asked again, nothing is redone
    before = (sw / "steps.json").read_text()
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (sw / "steps.json").read_text() == before


def test_versions_line_names_every_commit_the_runs_were_trained_at():
    """A sweep trained over several commits says so: the report's versions line shows each value
    with its runs where runs differ, and a shared value once (it showed the first run's only)."""
    from types import SimpleNamespace

    from azscale.analysis.sweep_report import _settings, merged_environment
    envs = [("w8", {"git_commit": "aaa", "torch": "2.13"}), ("w16", {"git_commit": "bbb", "torch": "2.13"}),
            ("w32", {"git_commit": "bbb"})]
    got = merged_environment(envs)
    assert got == {"git_commit": "aaa (w8); bbb (w16, w32)", "torch": "2.13 (w8, w16); not recorded (w32)"}
    assert merged_environment([("a", {"x": 1}), ("b", {"x": 1})]) == {"x": "1"}
    sw = SimpleNamespace(sc={"game": "oware", "preset": "cpu", "overrides": {}},
                         results={"first run": {"settings": {"steps": 8}, "environment": envs[0][1]},
                                  "environments": envs})
    md = _settings(sw)[0]["md"]
    assert "git_commit aaa (w8); bbb (w16, w32)" in md


def test_analyse_finished_reads_only_the_finished_runs_and_the_full_sweep_adds_the_rest(tiny_sweep, tmp_path):
    """--analyse-finished: a report of the finished runs while another trains; the report names
    the run its analysis did not read, and the full sweep later redoes what that run changes."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    # a sweep where only w4 has finished: w16 not there yet, nothing analysed
    held = tmp_path / "w16"
    shutil.move(sw / "runs" / "tic_tac_toe-w16-s0", held)
    for rel in ("analysis", "matches"):
        shutil.rmtree(sw / rel)
    (sw / "steps.json").unlink()
    before = {p.relative_to(sw): p.stat().st_mtime_ns for p in (sw / "runs").rglob("*") if p.is_file()}
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw, "--analyse-finished"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, r.stderr
    assert not (sw / "runs" / "tic_tac_toe-w16-s0").exists()          # nothing trained
    assert {p.relative_to(sw): p.stat().st_mtime_ns for p in (sw / "runs").rglob("*") if p.is_file()} == before
    log = (sw / "sweep.log").read_text()
    assert "analysing 1 of 2 runs; not finished: tic_tac_toe-w16-s0" in log
    steps = json.loads((sw / "steps.json").read_text())
    assert steps["inputs"]["zipf"]["runs"] == ["tic_tac_toe-w4-s0"]
    assert set(pd.read_csv(sw / "analysis" / "elo" / "elo.csv")["player"]) == {"tic_tac_toe-w4-s0@8", "random"}
    # w16 finishes (here: put back) before the sweep is rerun: the report leaves it out and says so
    shutil.move(held, sw / "runs" / "tic_tac_toe-w16-s0")
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep1"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep1" / "report.md").read_text()
    assert "Not in this report: `tic_tac_toe-w16-s0`" in md and "1 run (1 size" in md
    assert "| tic_tac_toe-w16-s0 |" not in md
    # the full sweep redoes every step that reads runs, and the report has both
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    grown = (sw / "sweep.log").read_text().split("--analyse-finished")[-1]
    assert "redoing analysis steps: zipf, tournament, elo, loss, loss-pooled, loss-solver" in grown
    assert set(pd.read_csv(sw / "analysis" / "elo" / "elo.csv")["player"]) == {
        "tic_tac_toe-w4-s0@8", "tic_tac_toe-w16-s0@8", "random"}
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep2"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep2" / "report.md").read_text()
    assert "Not in this report" not in md and "| tic_tac_toe-w16-s0 |" in md


def test_analyse_finished_with_no_finished_run_is_one_line_and_writes_nothing(tmp_path):
    sw = tmp_path / "sw"
    r = subprocess.run(cli(*SWEEP_ARGS, "--out", sw, "--analyse-finished"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--analyse-finished: no run of this sweep has finished" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not sw.exists()                          # no directory, no lock file left behind


def test_report_names_every_section_it_leaves_out_and_why(tiny_sweep, tmp_path):
    """A missing result file leaves its section out, and the report says so, with the reason, on
    the command line and in a section of its own; an empty one is damaged and refused by name
    (it used to leave the section out unsaid)."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep0"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "left out" not in r.stdout, r.stdout + r.stderr      # the control: all there
    assert "Left out" not in (tmp_path / "rep0" / "report.md").read_text()
    (sw / "analysis" / "scaling" / "scaling.json").unlink()
    shutil.rmtree(sw / "analysis" / "loss-solver")
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    left = [x for x in r.stdout.splitlines() if x.startswith("left out: ")]
    assert len(left) == 2, r.stdout
    assert "Elo exponent" in left[1] and "analysis/scaling/scaling.json" in left[1] and "--reanalyse scaling" in left[1]
    assert "perfect-play target" in left[0] and "analysis/loss-solver/loss.json" in left[0]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Left out of this report" in md and "2 sections left out" in md
    assert "## Value loss by rank: perfect-play target" not in md and "--reanalyse loss-solver" in md
    # a damaged verdict.md is named (not verdict.json)
    bad = tmp_path / "sw-vmd"
    shutil.copytree(sw, bad)
    (bad / "analysis" / "verdict.md").write_text("# one line only")
    assert "analysis/verdict.md: damaged result file" in _refused(["report", bad, "--out", tmp_path / "rep3"], tmp_path)
    # a step the sweep has not reached says so
    steps = json.loads((sw / "steps.json").read_text())
    steps["done"].remove("verdict")
    (sw / "steps.json").write_text(json.dumps(steps))
    (sw / "analysis" / "verdict.md").unlink()
    r = subprocess.run(cli("report", sw, "--out", tmp_path / "rep"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "left out: Inverse-scaling verdict: the sweep has not run its `verdict` step yet" \
        in r.stdout, r.stdout + r.stderr
    for name in ("loss", "elo"):
        bad = tmp_path / f"sw-{name}"
        shutil.copytree(sw, bad)
        (bad / "analysis" / name / f"{name}.json").write_text("{}")
        assert f"{name}/{name}.json: damaged result file" in _refused(["report", bad, "--out", tmp_path / "rep2"],
                                                                      tmp_path)


def test_a_killed_report_leaves_no_hidden_folder_after_the_next_run(tiny_sweep, tmp_path):
    """The report is built in a hidden folder beside --out and moved into place; one killed while
    building left that folder behind for good. The next report removes those of dead processes
    (and keeps one a report building now still uses)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()                                         # a process id that is no longer running
    stale = tmp_path / f".rep.{gone.pid}.abcd1234.tmp"
    (stale / "figures").mkdir(parents=True)
    (stale / "figures" / "half.png").write_bytes(b"\x89PNG")
    live = tmp_path / f".rep.{os.getpid()}.efgh5678.tmp"
    live.mkdir()
    other = tmp_path / f".rep.5.{gone.pid}.abcdefgh.tmp"        # not a stage of `rep` (of `rep.5`)
    other.mkdir()
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "rep"), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "rep"])


def test_a_full_disk_during_the_report_names_the_file(tiny_sweep, tmp_path):
    """A write that fails (a file-size limit, as a full disk fails) inside a figure library used
    to end as `azscale: error: File too large`, naming no file."""
    import resource

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))
    from conftest import assert_refused, tree_digest
    before = tree_digest(tmp_path)
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "rep"), capture_output=True, text=True,
                       timeout=300, preexec_fn=small_files)
    assert_refused(r, before, tree_digest(tmp_path), may_create=("rep",),
                   match=r"azscale: error: \S*/rep/figures/\S+\.(png|svg): File too large$")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_games_the_seat_decides_are_named_in_the_report_and_stop_the_verdict(tiny_sweep, tmp_path):
    """The tiny sweep's elo.json carries the seat count; told that the first mover won every game
    between its agents (as on 3x2 oware), the report says the Elo differences are not identified
    and the verdict, rerun on the same inputs, says "cannot tell" with the count."""
    ej = json.loads((tiny_sweep / "analysis" / "elo" / "elo.json").read_text())
    b = ej["seat"]["between_runs"]
    assert b["pairs"] >= 1 and b["games"] == b["first_mover_wins"] + b["draws"] + b["second_mover_wins"]
    r = subprocess.run(cli("report", tiny_sweep, "--out", tmp_path / "r", "--keep-inputs"), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    kept = tmp_path / "r" / "inputs"
    ej["seat"]["between_runs"] = {**b, "seat_decided_pairs": b["pairs"], "first_mover_wins": b["games"], "draws": 0,
                                  "second_mover_wins": 0, "seat_decided": True}
    (kept / "analysis" / "elo" / "elo.json").write_text(json.dumps(ej))
    r = subprocess.run(cli("report", kept, "--out", tmp_path / "r2"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "**Not identified:" in (tmp_path / "r2" / "report.md").read_text()
    r = subprocess.run(cli("verdict", kept / "analysis" / "elo", "--out", tmp_path / "v.md", "--replicates", "200"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    v = json.loads((tmp_path / "v.json").read_text())
    seat = [c for c in v["conditions"] if c["name"] == "seat"]
    assert v["verdict"] in ("cannot tell", "not applicable") and seat and not seat[0]["holds"]
    assert "the seat, not the agent, decides" in (tmp_path / "v.md").read_text()


def test_sweep_steps_grow_in_place(tiny_sweep, tmp_path):
    """`--set steps=N` with more steps than the sweep trained: every run trains on from its last
    step (no game recorded twice or lost), the old final checkpoints' games are kept aside,
    every analysis that reads runs is redone on the longer-trained agents; fewer steps are
    refused in one line."""
    sw = tmp_path / "sw"
    shutil.copytree(tiny_sweep, sw)
    grown = [a if a != "steps=8" else "steps=12" for a in SWEEP_ARGS]
    r = subprocess.run(cli(*[a if a != "steps=8" else "steps=6" for a in SWEEP_ARGS], "--out", sw),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "steps: the sweep has 8, asked 6 (steps may only grow" in r.stderr
    # status of a sweep whose steps grew before its runs trained on: not finished
    look = tmp_path / "look"
    shutil.copytree(tiny_sweep, look)
    rec = json.loads((look / "sweep.json").read_text())
    rec["overrides"]["steps"] = 12
    (look / "sweep.json").write_text(json.dumps(rec))
    st = json.loads(subprocess.run(cli("status", look, "--json"), capture_output=True, text=True).stdout)
    assert st["runs_finished"] == 0 and {r["state"] for r in st["runs"]} == {"trains on to 12"}
    left = sum((12 - r["step"]) * r["seconds_per_step"] for r in st["runs"])   # each at its own recent rate
    assert st["training_left"]["seconds"] == pytest.approx(left) and not st["training_left"]["no_rate_yet"]
    r = subprocess.run(cli(*grown, "--out", sw), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    log = (sw / "sweep.log").read_text()
    assert "grows: steps 8 -> 12" in log
    for run in ("tic_tac_toe-w4-s0", "tic_tac_toe-w16-s0"):
        rd = sw / "runs" / run
        assert json.loads((rd / "config.json").read_text())["settings"]["steps"] == 12
        steps = [json.loads(x)["step"] for x in (rd / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, 13))                              # each step once, none lost
        ids = read_games(rd)["game_id"].to_pylist()
        assert len(ids) == len(set(ids))                                # no game recorded twice
    old = json.loads((sw / "matches" / "steps-8" / "final" / "tournament.json").read_text())
    new = json.loads((sw / "matches" / "final" / "tournament.json").read_text())
    agents = lambda t, k: {p["name"] for p in t["players"] if p["kind"] == "agent"}    # noqa: E731
    assert agents(old, 8) == {"tic_tac_toe-w4-s0@8", "tic_tac_toe-w16-s0@8"}
    assert agents(new, 12) == {"tic_tac_toe-w4-s0@12", "tic_tac_toe-w16-s0@12"}
    elo = json.loads((sw / "analysis" / "elo" / "elo.json").read_text())
    assert elo.get("tournaments") and all("steps-8" not in str(t) for t in elo["tournaments"])
    from azscale.sweepsteps import STEPS
    recorded = json.loads((sw / "steps.json").read_text())
    reads_runs = [k for k, v in recorded["inputs"].items() if "runs" in STEPS[k].inputs]
    assert {"zipf", "tournament", "loss", "loss-solver"} <= set(reads_runs)
    assert all(recorded["inputs"][k]["trained_steps"] == 12 for k in reads_runs)      # each redone on 12 steps
    assert pd.read_parquet(sw / "analysis" / "loss" / "per_state.parquet", columns=["step"])["step"].max() == 12
    # asked again: nothing grows, nothing is redone
    before = (sw / "steps.json").read_text()
    r = subprocess.run(cli(*grown, "--out", sw), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (sw / "steps.json").read_text() == before


def test_growth_moves_old_agents_games_aside_and_old_records_keep_their_steps(tmp_path):
    """What a growth keeps aside (final matches, within-run round-robins, a temperature study)
    and that a steps.json recorded before `trained_steps` was an input is not redone."""
    from azscale.sweep import _keep_matches_aside, _with_trained_steps
    from azscale.sweepcfg import build
    from azscale.sweepsteps import step_inputs
    for d in ("matches/final", "matches/checkpoints-3/r", "temperature/t", "matches/steps-4/final"):
        (tmp_path / d).mkdir(parents=True)
    _keep_matches_aside(tmp_path, 8)
    assert sorted(p.name for p in (tmp_path / "matches" / "steps-8").iterdir()) == ["checkpoints-3", "final",
                                                                                  "temperature"]
    assert not (tmp_path / "temperature").exists() and (tmp_path / "matches" / "steps-4" / "final").is_dir()
    (tmp_path / "matches" / "final").mkdir()
    (tmp_path / "matches" / "steps-9" / "final").mkdir(parents=True)
    import pytest
    from azscale.errors import UserError
    with pytest.raises(UserError, match="cannot keep it aside"):
        _keep_matches_aside(tmp_path, 9)
    sc, _ = build({"game": "tic_tac_toe", "widths": [4, 16], "seeds": 1, "preset": "smoke",
                   "overrides": {"steps": 8}}, {})
    want = step_inputs(sc, ["a", "b"], True)
    old = {k: {i: x for i, x in v.items() if i != "trained_steps"} for k, v in want.items()}
    assert old != want and _with_trained_steps(old, sc) == want


def test_training_left_sums_the_runs_at_their_size_s_rate_and_names_the_unknown():
    from azscale.status import _training_left_text, training_left
    rows = [{"run": "a", "step": 10, "seconds_per_step": 2.0, "state": "started", "finished": False},
            {"run": "b", "step": 0, "seconds_per_step": None, "state": "not started", "finished": False},
            {"run": "c", "step": 0, "seconds_per_step": None, "state": "not started", "finished": False},
            {"run": "d", "step": 20, "seconds_per_step": 9.0, "state": "finished", "finished": True}]
    kinds = {"a": ("mlp", 4), "b": ("mlp", 4), "c": ("mlp", 16), "d": ("mlp", 16)}
    t = training_left(rows, kinds, 20, parallel=2)
    # a: 10 steps at its own 2 s; b: 20 at its size's 2 s; c: 20 at d's 9 s (same size); d finished;
    # two at once: half the sum (120 s), but c alone takes 180 s
    assert t["seconds"] == pytest.approx(max((10 * 2 + 20 * 2 + 20 * 9) / 2, 20 * 9)) and t["no_rate_yet"] == []
    t2 = training_left([rows[0], rows[1], {**rows[0], "run": "e"}], {**kinds, "e": ("mlp", 4)}, 20, parallel=2)
    assert t2["seconds"] == pytest.approx((20 + 40 + 20) / 2)                # the sum over two at once
    t = training_left(rows[:3], kinds, 20, parallel=1)
    assert t["seconds"] == pytest.approx(60) and t["no_rate_yet"] == ["c"]
    assert ", more for 1 run(s) with no rate yet for their size (c)" in _training_left_text(t, running=True)
    # fewer runs left than run at once: the longest run sets the time, not the sum over `parallel`
    assert training_left(rows[:1], kinds, 20, parallel=4)["seconds"] == pytest.approx(20)
    assert training_left(rows[:2], kinds, 20, parallel=4)["seconds"] == pytest.approx(40)
    ray = training_left(rows[:2], kinds, 20, parallel=None)                        # Ray: the sum, said so
    assert ray["seconds"] == pytest.approx(60) and "summed over the runs" in _training_left_text(ray, True)
    bad = training_left(rows[:1] + [{**rows[1], "state": "damaged"}], kinds, 20, parallel=1)
    assert bad["seconds"] == pytest.approx(20) and bad["damaged"] == ["b"]
    assert "not counted, damaged: b" in _training_left_text(bad, True)
    assert training_left(rows[1:3], kinds, 20, 1)["seconds"] is None
    done = training_left(rows[3:], kinds, 20, 1)                     # nothing left: no figure, no text
    assert done["seconds"] is None and _training_left_text(done, running=False) == ""
