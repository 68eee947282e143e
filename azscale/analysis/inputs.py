"""The small inputs of a study's analysis, kept so that its report can be rebuilt.

A sweep directory holds megabytes of results beside gigabytes of games and checkpoints; once
the raw runs are gone, a report can no longer be rebuilt when the analysis improves. The files
that `azscale report`, `verdict`, `scaling` and the report's sections read are small: the
sweep's settings and finished steps, each run's config.json and metrics.jsonl, each tournament's
tournament.json, results.csv and per-pair results (pairs/*.json), and every file the analysis steps wrote except Parquet tables
(states and per-state losses, which only the commands that made them read). `keep_inputs`
copies exactly those, in the sweep's layout, so that the copy is a sweep directory to the
report: `azscale report COPY --out DIR` rebuilds the report, `azscale verdict COPY/analysis/elo`
the verdict (tests/test_sweep_report.py). The copy is marked by `inputs.json`; its runs'
metrics.jsonl hold the recorded steps only, which the report then reads as they are (a sweep's
own runs count their recorded steps by their games, which the copy does not hold).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import checkpoints as ck
from .. import runs
from ..errors import UserError

MARKER = "inputs.json"

SKIP_SUFFIXES = (".parquet", ".pt", ".lock", ".tmp")
TOURNAMENT_FILES = ("tournament.json", "results.csv")


def is_inputs_copy(sweep_dir: Path) -> bool:
    return (Path(sweep_dir) / MARKER).is_file()


def run_metrics(run_dir: Path) -> list[dict]:
    """A run's recorded metrics: counted by its games and checkpoints in a sweep, read as they
    are in a copy of the inputs (which holds the recorded lines only, and no games)."""
    if is_inputs_copy(Path(run_dir).parent.parent):
        return ck.read_metrics(run_dir)
    return ck.recorded_metrics(run_dir)


def input_files(sweep_dir: Path) -> list[Path]:
    """The files to keep, relative to the sweep."""
    root = Path(sweep_dir)
    if not (root / "sweep.json").is_file():
        raise UserError(f"{root}: not a sweep directory (no sweep.json)")
    keep = [Path(n) for n in ("sweep.json", "steps.json") if (root / n).is_file()]
    for run in sorted((root / "runs").glob("*")):
        keep += [p.relative_to(root) for p in (run / "config.json", run / "metrics.jsonl") if p.is_file()]
    for top in ("matches", "temperature"):
        for p in sorted((root / top).rglob("*")):
            if not p.is_file() or p.is_symlink() or p.name.endswith(SKIP_SUFFIXES):
                continue
            rel = p.relative_to(root)
            in_tournament = any((q / "tournament.json").is_file() for q in p.parents
                                if root / top in (q, *q.parents))
            pair = p.parent.name == "pairs" and p.name.startswith("pair-") and p.suffix == ".json"
            if in_tournament and not (p.name in TOURNAMENT_FILES or pair):
                continue                     # a tournament's games stay behind; its results are kept
            keep.append(rel)
    for p in sorted((root / "analysis").rglob("*")):
        if p.is_file() and not p.is_symlink() and not p.name.endswith(SKIP_SUFFIXES):
            keep.append(p.relative_to(root))
    return keep


def check_dest(sweep_dir: Path, dest: Path) -> None:
    """Refuse a destination inside the sweep, or one that holds something else (before any write)."""
    root, dest = Path(sweep_dir), Path(dest)
    if dest.resolve() == root.resolve() or root.resolve() in dest.resolve().parents:
        raise UserError(f"{dest}: the inputs cannot be kept inside the sweep they are copied from")
    if os.path.lexists(dest) and not (dest.is_dir() and (dest / MARKER).is_file()):
        raise UserError(f"{dest} exists and is not a copy of a sweep's inputs; choose another directory")


def keep_inputs(sweep_dir: Path, dest: Path) -> dict[str, int]:
    """Copy the sweep's analysis inputs to `dest` (replaced whole: built aside, then moved)."""
    root, dest = Path(sweep_dir), Path(dest)
    check_dest(root, dest)
    files = input_files(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        size = 0
        for rel in files:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            if rel.name == ck.METRICS_FILE and rel.parts[0] == "runs":
                # the recorded steps only (a resume would replay the others); the copy has no games
                # to count them by
                lines = [json.dumps(m, sort_keys=True) + "\n" for m in run_metrics(root / rel.parent)]
                (stage / rel).write_text("".join(lines))
            else:
                shutil.copy2(root / rel, stage / rel)
            size += (stage / rel).stat().st_size
        runs.atomic_write_json(stage / MARKER, {"kind": "analysis inputs", "copied_from": str(root.resolve()),
                                                "files": len(files)})
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            os.replace(dest, old / "x")
            os.replace(stage, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {"files": len(files), "bytes": size}
