"""Reading an Elo fit's files (elo.csv, elo.json, bootstrap.npz): here, below `elo_report`, so
saturation, status and the report read a fit without the module that makes one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import runs
from ..errors import UserError


def load_elo(elo_dir: Path) -> tuple[pd.DataFrame, np.ndarray | None, dict[str, Any]]:
    """An Elo fit as `azscale elo` wrote it: the table, its bootstrap samples (None without
    bootstrap.npz) and elo.json; a damaged file is one clear error."""
    elo_dir = Path(elo_dir)
    if not (elo_dir / "elo.csv").exists():
        raise UserError(f"{elo_dir}: no elo.csv (run azscale elo first)")
    table = read_elo_table(elo_dir / "elo.csv")
    summary = runs.read_json(elo_dir / "elo.json", "elo.json of azscale elo")
    if not isinstance(summary.get("game"), str) or not isinstance(summary.get("match_settings"), list):
        raise UserError(f"{elo_dir / 'elo.json'}: damaged (game or match settings missing)")
    samples = None
    if (elo_dir / "bootstrap.npz").exists():
        try:
            with np.load(elo_dir / "bootstrap.npz", allow_pickle=False) as z:
                col = {p: k for k, p in enumerate(z["players"].tolist())}
                samples = np.asarray(z["samples"], float)[:, [col[p] for p in table["player"]]]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise UserError(f"{elo_dir / 'bootstrap.npz'}: damaged or not of this elo.csv "
                            f"({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})") from None
        if samples.ndim != 2 or not np.isfinite(samples).all():
            raise UserError(f"{elo_dir / 'bootstrap.npz'}: damaged (samples are not finite numbers)")
    return table, samples, summary


ELO_COLUMNS = {"player": "O", "elo": "f", "kind": "O", "run": "O", "step": "f", "params": "f"}


def read_elo_table(path: Path) -> pd.DataFrame:
    """elo.csv written by `azscale elo`: its columns, at least one row, finite ratings; a damaged
    file is one clear error, never an empty table."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: not a readable elo table ({str(exc).splitlines()[0][:80] if str(exc) else 'empty'})") from None
    missing = [c for c in ELO_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: damaged elo table ({', '.join(missing)} missing)")
    if table.empty:
        raise UserError(f"{path}: damaged elo table (no rows)")
    elo = pd.to_numeric(table["elo"], errors="coerce")
    if not np.isfinite(elo.to_numpy(float)).all() or table["player"].duplicated().any():
        raise UserError(f"{path}: damaged elo table (a rating is not a number, or a player occurs twice)")
    agents = table[table["kind"] == "agent"]
    for c in ("step", "params"):
        if not np.isfinite(pd.to_numeric(agents[c], errors="coerce").to_numpy(float)).all():
            raise UserError(f"{path}: damaged elo table (an agent's {c} is not a number)")
    return table
