"""Import the self-play games of OpenSpiel's own AlphaZero (the paper's pipeline) as a games table.

Its actors log one line per game, `Game N: Returns: r0 r1; Actions: a1 a2 ...`, where each action
is `state.action_to_string(player, action)`, usually behind a `[timestamp] ` prefix. We map each
action string back to its id by matching the legal moves of the replayed state, check the logged
returns against OpenSpiel's, and write the games in log order (by timestamp where present, then
actor and game number). Fields the logs do not hold (network step, temperature, simulations) are
recorded as unknown (-1 / NaN).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .. import runs
from ..engines.spiel import load_spiel_game
from ..errors import UserError

LINE = re.compile(r"^(?:\[(?P<ts>[^\]]+)\]\s*)?.*?Game (?P<num>\d+): Returns: (?P<ret>[^;]*); Actions:\s?(?P<acts>.*)$")


def parse_actor_log(path: Path):
    """Yield (timestamp or '', game number, returns, action strings, line number)."""
    with open(path, errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if "Returns:" not in line or "Actions:" not in line:
                continue
            m = LINE.match(line.rstrip("\n"))
            if not m:
                raise UserError(f"{path}:{lineno}: a game line that cannot be parsed")
            try:
                returns = [float(x) for x in m["ret"].split()]
            except ValueError:
                raise UserError(f"{path}:{lineno}: returns '{m['ret']}' are not numbers") from None
            yield m["ts"] or "", int(m["num"]), returns, m["acts"].split(), lineno


def actions_from_strings(game, strings: list[str], where: str) -> tuple[list[int], list[float]]:
    state = game.new_initial_state()
    out = []
    for i, text in enumerate(strings):
        if state.is_terminal():
            raise UserError(f"{where}: the game ended before move {i + 1} ('{text}'); is this the right game?")
        player = state.current_player()
        match = [a for a in state.legal_actions() if state.action_to_string(player, a) == text]
        if len(match) != 1:
            raise UserError(f"{where}: move {i + 1} '{text}' is not a legal move of "
                            f"{game.get_type().short_name} here; is this the right game?")
        out.append(match[0])
        state.apply_action(match[0])
    if not state.is_terminal():
        raise UserError(f"{where}: the game is not over after its {len(strings)} logged moves")
    return out, state.returns()


def import_openspiel(src: Path, game: str, out: Path, part_size: int = 100_000) -> int:
    src, out = Path(src), Path(out)
    logs = sorted(src.glob("log-actor-*.txt")) if src.is_dir() else [src]
    if not logs or not all(p.exists() for p in logs):
        raise UserError(f"{src}: no OpenSpiel AlphaZero actor logs (log-actor-*.txt) found")
    g = load_spiel_game(game)
    entries = []
    for log in logs:
        m = re.search(r"(\d+)", log.stem)
        actor = int(m.group(1)) if m else 0
        for ts, num, returns, acts, lineno in parse_actor_log(log):
            entries.append((ts, actor, num, returns, acts, f"{log}:{lineno}"))
    if not entries:
        raise UserError(f"{src}: the actor logs hold no game lines")
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    runs.claim_dir(out, "imported-games")
    with runs.RunLock(out):
        runs.claim_dir(out, "imported-games")
        if (out / "games").exists() and any((out / "games").iterdir()):
            raise UserError(f"{out} already holds a games table; choose another --out")
        # write into a scratch folder, renamed into place only when every game checked out
        tmp = out / ".import-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            rows = []
            part = 0
            for gid, (ts, actor, num, returns, acts, where) in enumerate(entries):
                ids, real = actions_from_strings(g, acts, where)
                if len(returns) != 2 or any(abs(a - b) > 1e-6 for a, b in zip(returns, real)):
                    raise UserError(f"{where}: logged returns {returns} differ from the replayed {list(real)}")
                # the logs hold no network step, temperature or simulations: they keep GameRecord's unknowns
                rows.append(runs.GameRecord(run=out.name, kind="selfplay", game=game, actions=ids,
                                            return0=float(real[0]), return1=float(real[1]), game_id=gid,
                                            seat0=f"openspiel-actor-{actor}", seat1=f"openspiel-actor-{actor}"))
                if len(rows) == part_size:
                    runs.write_games_part(tmp, part, rows, game)
                    part, rows = part + 1, []
            if rows:
                runs.write_games_part(tmp, part, rows, game)
            shutil.rmtree(out / "games", ignore_errors=True)
            (tmp / "games").rename(out / "games")
            runs.atomic_write_json(out / "import.json", {"kind": "imported-games", "name": out.name,
                                                         "id": runs.new_identity(), "game": game,
                                                         "source": str(src.resolve()), "games": len(entries)})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return len(entries)
