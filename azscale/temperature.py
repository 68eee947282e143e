"""`azscale temperature`: round-robins of the same agents at several inference temperatures, then
the per-temperature Zipf tail, Elo and Elo exponent and their relation (analysis/temperature.py).

    <study>/
      temperature.json       kind "temperature-study": game, match settings, players, and the
                             temperatures played so far in the order they were first asked for
      T-<T>/                 one tournament directory per temperature (tournament.py: resumable
                             per pair, `azscale elo` and `azscale zipf` read it as any other)
      study.csv, study.json  one row per temperature: games, states, alpha_Z (LS, MLE) and alpha_N
                             with 95% intervals, the windows used; the correlation
      summary.md             the same in words
      temperature_curves, temperature_elo, temperature_exponents (.png, .svg): the paper's Fig. 3

Why one tournament per temperature rather than one tournament holding every temperature: each
temperature is a complete round-robin with its own Elo fit, so a tournament directory per
temperature is exactly what `tournament.py` already plays, resumes and checks, and what
`azscale elo` reads, without a second notion of "pair" inside one directory. The games still form
ONE games table: the temperature at T's position k in temperature.json numbers its games from
k x pairs x games-per-pair, every tournament writes the study's name as `run`, and
`runs.read_games(<study>)` reads all of them (so `azscale zipf <study> --temperature T` works);
the `temperature` column tells them apart. Asking for more temperatures later appends them; the
temperatures played keep their numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence


from . import runs
from .checks import SEED_MAX, number, optional_number
from .errors import ThinData, UserError


def tournament_dir(out: Path, temperature: float) -> Path:
    return Path(out) / f"{runs.STUDY_TOURNAMENT_PREFIX}{temperature:g}"


def temperature_study(run_dirs: Sequence[Path], out: Path, temperatures: str | Sequence[float] = "paper", *,
                      games_per_pair: int = 800, simulations: int = 300, seed: int = 0, workers: int | None = None,
                      device: str = "cpu", progress: bool = True, log: Callable[[str], None] = print,
                      zipf_replicates: int = 20, elo_bootstrap: int = 100, replicates: int = 4000,
                      min_params: int = 0, max_params: int | None = None, fit_window: str = "paper",
                      play_only: bool = False) -> dict[str, Any]:
    """Play (or finish) the round-robin at every temperature, then analyse them. Rerunning the
    same command plays only the pairs not finished and redoes the analysis."""
    from .analysis.sizeboot import check_resampling
    from .analysis.temperature import parse_temperatures
    from .tournament import agents_from_runs, game_of, tournament

    temps = parse_temperatures(temperatures)
    games_per_pair = number(games_per_pair, "--games-per-pair", lo=2, hi=10_000_000, integer=True)
    if games_per_pair % 2:
        raise UserError("--games-per-pair must be an even number >= 2 (seats alternate)")
    simulations = number(simulations, "--sims", lo=1, hi=1_000_000, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    zipf_replicates = number(zipf_replicates, "--zipf-replicates", lo=0, hi=100_000, integer=True)
    if zipf_replicates == 1:
        raise UserError("--zipf-replicates must be 0 (no intervals) or at least 2, got 1")
    elo_bootstrap = number(elo_bootstrap, "--bootstrap", lo=0, hi=100_000, integer=True)
    check_resampling(replicates, seed)
    min_params = number(min_params, "--min-params", lo=0, hi=10**15, integer=True)
    max_params = optional_number(max_params, "--max-params", lo=1, hi=10**15, integer=True)
    if max_params is not None and max_params < min_params:
        raise UserError(f"--max-params ({max_params}) is below --min-params ({min_params})")
    if fit_window != "paper":
        from .analysis.zipf_report import parse_fit_window
        parse_fit_window(fit_window, "", ["match"], None)
    players = agents_from_runs(run_dirs, "final")
    if len(players) < 2:
        raise ThinData("a temperature study needs at least two agents (run directories)")
    game = game_of(players)
    out = Path(out)
    runs.claim_dir(out, "temperature-study")
    out.mkdir(parents=True, exist_ok=True)
    settings = {"game": game, "games_per_pair": games_per_pair, "simulations": simulations, "seed": seed,
                "noise": False, "checkpoints": "final"}
    with runs.RunLock(out):
        runs.claim_dir(out, "temperature-study")
        record = _manifest(out, settings, players, temps)
        n_pairs = len(players) * (len(players) - 1) // 2
        for i, T in enumerate(temps):
            k = record["temperatures"].index(T)
            d = tournament_dir(out, T)
            log(f"temperature {T:g} ({i + 1}/{len(temps)}): {n_pairs} pairs x {games_per_pair} games -> {d}")
            tournament(players, d, games_per_pair=games_per_pair, temperature=T, simulations=simulations,
                       seed=seed * 1000 + k, workers=workers, progress=progress, game=game, device=device,
                       first_game_id=k * n_pairs * games_per_pair, name=record["name"], label=f"T={T:g}")
        if play_only:
            return {"played": temps, "out": str(out)}
        from .analysis.temperature import analyse_study
        return analyse_study(out, temps, record, zipf_replicates=zipf_replicates, elo_bootstrap=elo_bootstrap,
                             replicates=replicates, seed=seed, min_params=min_params, max_params=max_params,
                             fit_window=fit_window, workers=workers or os.cpu_count() or 1, log=log)


def _manifest(out: Path, settings: dict[str, Any], players, temps: list[float]) -> dict[str, Any]:
    """temperature.json: created, or checked against this command (the same game, settings and
    players) with new temperatures appended."""
    f = out / runs.DATA_KINDS["temperature-study"]
    record = {"kind": "temperature-study", "name": out.name, "id": runs.new_identity(), "settings": settings,
              "players": [vars(p) for p in players], "temperatures": list(temps)}
    if f.exists():
        have = runs.read_manifest(out, "temperature-study", ("settings", "players", "temperatures"))
        if have["settings"] != settings or have["players"] != record["players"]:
            raise UserError(f"{out} holds a temperature study with other settings or agents; choose another --out")
        old = have["temperatures"]
        if not isinstance(old, list) or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in old):
            raise UserError(f"{f}: damaged (temperatures)")
        record.update(name=have.get("name") or record["name"], id=have.get("id") or record["id"],
                      temperatures=[float(t) for t in old] + [t for t in temps if t not in old])
    runs.atomic_write_json(f, record)
    return record


def read_study(out: Path) -> dict[str, Any]:
    out = Path(out)
    return runs.read_manifest(out, "temperature-study", ("settings", "players", "temperatures"))
