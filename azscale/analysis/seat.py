"""Is a tournament's result decided by the seat alone?

On a small solved game (3x2 oware: a first-player win) every agent, however small, wins every
game as first mover once its search finds the win, and loses every game as second. Such games
say nothing about which agent is stronger: a Bradley-Terry fit then takes the agents' Elo
differences from its prior and from the games against reference players alone, and a verdict of
"no fall" would describe the game, not the agents. This module counts it, for the Elo fit
(`elo.json`'s "seat"), the verdict (a condition) and saturation (the within-run Elo gain).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

SEAT_DECIDED_SHARE = 0.5        # at least this share of agent pairs decided by the seat: Elo not identified


def seat_decided(decided: int, pairs: int) -> bool:
    """The rule: at least `SEAT_DECIDED_SHARE` of the pairs are seat-decided."""
    return bool(pairs) and decided >= SEAT_DECIDED_SHARE * pairs


def seat_counts(games: pd.DataFrame) -> dict[str, Any]:
    """First-mover wins, draws and second-mover wins of `games` (results rows: first, second,
    wins, draws, losses), and how many of its pairs are seat-decided: both seat orders played
    and every game won by the first mover."""
    w, d, l = (int(games[c].sum()) for c in ("wins", "draws", "losses"))
    pairs = decided = 0
    for _, g in games.groupby([games[["first", "second"]].min(axis=1), games[["first", "second"]].max(axis=1)]):
        pairs += 1
        both_orders = len(set(zip(g["first"], g["second"]))) == 2
        decided += bool(both_orders and int(g["draws"].sum() + g["losses"].sum()) == 0)
    n = w + d + l
    return {"games": n, "first_mover_wins": w, "draws": d, "second_mover_wins": l,
            "first_mover_share": w / n if n else None, "pairs": pairs, "seat_decided_pairs": decided,
            "seat_decided": seat_decided(decided, pairs)}


def seat_summary(res: pd.DataFrame, players: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How far the seat alone decides the games between agents. A pair is *seat-decided* when it
    played both seat orders and the first mover won every game; where at least half of the agent
    pairs are (`seat_decided`), their games carry no information on the agents' relative strength
    (every agent wins as first mover and loses as second: a solved first-player win that the
    search finds whatever the network), and their Elo differences come from the prior and the
    games against reference players alone. Counted separately between agents of different runs
    (the size comparison) and, per run, between checkpoints of one run (saturation)."""
    runs_of = {k: v.get("run") for k, v in players.items() if v.get("kind") == "agent"}
    a = res[res["first"].isin(runs_of.keys()) & res["second"].isin(runs_of.keys())]
    same = a["first"].map(runs_of) == a["second"].map(runs_of)
    out: dict[str, Any] = {"rule": f"a pair is seat-decided when, over both seat orders, the first mover won every "
                                   f"game; Elo differences are not identified where at least "
                                   f"{SEAT_DECIDED_SHARE:.0%} of the pairs are"}
    out["between_runs"] = seat_counts(a[~same])
    out["within_runs"] = {str(r): seat_counts(g) for r, g in a[same].groupby(a[same]["first"].map(runs_of))}
    return out


def seat_text(counts: dict[str, Any], what: str) -> str:
    return (f"{counts['seat_decided_pairs']} of {counts['pairs']} {what} were won by the first mover in every game "
            f"(first mover won {counts['first_mover_wins']:,} of {counts['games']:,} games): the seat, not the agent, "
            f"decides these games, so they do not tell the agents' strengths apart")
