"""The states table: every distinct state in a selection of recorded games, with its visit count.

Games are replayed through OpenSpiel from their recorded actions, so the analysis can never
disagree with the rules and works on games produced anywhere.

State key (`KEY_SCHEME`): the first 8 bytes (little-endian, as uint64) of BLAKE2b over the UTF-8
text of OpenSpiel's `str(state)` after each move; the initial and terminal states are not
counted (the paper's identity, PAPER.md section 4). BLAKE2b is unsalted, so keys are identical
across processes and machines (Python's `hash()` is not). For Oware and Checkers `str(state)`
drops the move counter and repetition history, so equal keys can hide different histories, as
in the paper.

Outcome frame (`FRAME`): `outcome_p0` is the mean final return of player 0 over the state's
occurrences; `player` says who is to move there, so `outcome_stm = outcome_p0` if player is 0,
else `-outcome_p0` (see `outcome_side_to_move`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from ..errors import UserError

KEY_SCHEME = "openspiel-str-blake2b64/1"
FRAME = "player0"
STATES_TABLE = "states"
STATES_VERSION = "1"


SYMMETRIES = {"connect_four": "mirror", "tic_tac_toe": "d4"}


def state_key(text: str) -> int:
    """The stable 64-bit key of one state string."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _grid_images(text: str, kind: str) -> list[str]:
    rows = text.rstrip("\n").split("\n")
    tail = "\n" if text.endswith("\n") else ""
    if kind == "mirror":                          # left-right mirror (gravity forbids up-down)
        return [text, "\n".join(r[::-1] for r in rows) + tail]
    grids = []
    g = [list(r) for r in rows]
    for _ in range(4):                            # the 8 symmetries of a square board
        g = [list(r) for r in zip(*g[::-1])]      # rotate 90 degrees
        grids += [g, [r[::-1] for r in g]]
    return ["\n".join("".join(r) for r in x) + tail for x in grids]


def symmetric_text(text: str, kind: str) -> str:
    """A canonical representative of the state's symmetry class (the smallest image's text
    by digest), so symmetric states share one key."""
    return min(_grid_images(text, kind), key=lambda t: hashlib.blake2b(t.encode(), digest_size=8).digest())


def key_scheme(game: str, symmetry: bool) -> str:
    from ..config import base_name
    from ..errors import UserError
    if not symmetry:
        return KEY_SCHEME
    kind = SYMMETRIES.get(base_name(game))
    if kind is None:
        raise UserError(f"no exact symmetry reduction for '{base_name(game)}' "
                        f"(available: {', '.join(sorted(SYMMETRIES))})")
    return f"openspiel-str-blake2b64-{kind}/1"


@dataclass
class Selection:
    """Which games and moves a states table counts; stored with every table."""
    runs: list[str] = field(default_factory=list)
    window: str = "all"              # all | lastNN (last NN% of each run's games by id) | steps:A-B
    kinds: list[str] = field(default_factory=list)   # empty = every kind
    first_moves: int | None = None   # count only states after the first K moves of each game
    temperature: float | None = None
    games: int = 0                   # games counted
    visits: int = 0                  # visits counted
    sources: list[str] = field(default_factory=list)   # where the games tables were read


@dataclass
class Visits:
    """One row per counted visit."""
    key: np.ndarray       # uint64
    turn: np.ndarray      # int32, moves played to reach the state (1 = after the first move)
    outcome0: np.ndarray  # float32, final return of player 0 in that game
    player: np.ndarray    # int8, player to move in the state
    game: np.ndarray      # int64, which game (an index chosen by the caller)


class BadGame(UserError):
    """A recorded game that cannot be replayed: (row in the replayed selection, what is wrong).
    `build_states` names the game by its run and id."""

    def __init__(self, row: int, detail: str):
        super().__init__(row, detail)
        self.row, self.detail = row, detail

    def __str__(self) -> str:
        return f"game {self.row}: {self.detail}"


def check_action_ids(game: str, actions: pa.Array | pa.ChunkedArray) -> None:
    """The vectorised part of checking recorded games before any is replayed: every game has at
    least one move and no more than the game allows, and every action id is one of the game's
    (0..num_distinct_actions-1). An id out of range would crash OpenSpiel (it indexes its board
    with it); illegal moves with ids in range are caught during the replay (`replay_visits`).
    Raises `BadGame` naming the first bad game's row."""
    import pyarrow.compute as pc

    from ..engines.spiel import load_spiel_game
    g = load_spiel_game(game)
    num_actions, max_len = g.num_distinct_actions(), g.max_game_length()
    if isinstance(actions, pa.ChunkedArray):
        actions = actions.combine_chunks()
    if len(actions) == 0:
        return
    lengths = pc.list_value_length(actions).to_numpy(zero_copy_only=False)
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        raise BadGame(int(empty[0]), "it has no moves")
    long = np.flatnonzero(lengths > max_len)
    if len(long):
        raise BadGame(int(long[0]), f"{int(lengths[long[0]]):,} moves, more than {game} allows "
                                    f"({max_len:,}); is this the right game?")
    flat = pc.list_flatten(actions)
    if flat.null_count:
        k = int(np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0])
        raise BadGame(int(np.searchsorted(np.cumsum(lengths), k, side="right")), "an action id is missing")
    ids = flat.to_numpy()
    bad = np.flatnonzero((ids < 0) | (ids >= num_actions))
    if len(bad):
        k = int(bad[0])
        ends = np.cumsum(lengths)
        row = int(np.searchsorted(ends, k, side="right"))
        move = k - (int(ends[row - 1]) if row else 0) + 1
        raise BadGame(row, f"action {int(ids[k])} at move {move} is not an action of {game} (its ids are "
                           f"0..{num_actions - 1}); is this the right game?")


def replay_visits(game: str, actions: Sequence[Sequence[int]], game_ids: Sequence[int],
                  return0: Sequence[float], first_moves: int | None = None,
                  symmetry: bool = False) -> Visits:
    """Replay games and list every non-initial, non-terminal state they pass through.

    Each move is checked legal before it is applied (OpenSpiel accepts some illegal moves
    silently, and aborts on others), and no move may follow the end of the game. A game that
    breaks either rule raises `BadGame` (its `game_ids` entry). A record that stops before the
    end is replayed as far as it goes (its states are real; the planted tables of the tests are
    such records; the games azscale records always end). Action ids are assumed in range
    (`check_action_ids`, which `build_states` runs first: a game longer than the game allows,
    one that could never end, is refused there)."""
    from ..config import base_name
    from ..engines.spiel import load_spiel_game

    key_scheme(game, symmetry)  # refuse unsupported symmetry before any work
    if isinstance(actions, (pa.Array, pa.ChunkedArray)):
        actions = actions.to_pylist()
    sym = SYMMETRIES.get(base_name(game)) if symmetry else None
    g = load_spiel_game(game)
    b2 = hashlib.blake2b
    digests: list[bytes] = []
    players: list[int] = []
    per_game = np.zeros(len(actions), np.int64)     # counted visits of each game
    for i, acts in enumerate(actions):
        s = g.new_initial_state()
        limit = len(acts) if first_moves is None else min(len(acts), first_moves)
        n0 = len(digests)
        for t in range(limit):
            a = int(acts[t])
            if a not in s.legal_actions():
                raise BadGame(int(game_ids[i]), f"action {a} at move {t + 1} is illegal in {game}; "
                                                f"is this the right game?")
            s.apply_action(a)
            if s.is_terminal():
                if t + 1 < len(acts):
                    raise BadGame(int(game_ids[i]), f"the game ended at move {t + 1} but {len(acts)} moves "
                                                    f"are recorded")
                break
            text = str(s) if sym is None else symmetric_text(str(s), sym)
            digests.append(b2(text.encode(), digest_size=8).digest())
            players.append(s.current_player())
        per_game[i] = len(digests) - n0
    n = len(digests)
    key = np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64) if n else np.zeros(0, np.uint64)
    del digests
    # the state after move t has turn t; visits of one game are consecutive
    starts = np.repeat(np.cumsum(per_game) - per_game, per_game)
    turn = (np.arange(n) - starts + 1).astype(np.int32)
    return Visits(key, turn, np.repeat(np.asarray(return0, np.float32), per_game),
                  np.asarray(players, np.int8), np.repeat(np.asarray(game_ids, np.int64), per_game))


def _replay_chunk(args):
    from ..procs import die_with_parent
    die_with_parent()
    return replay_visits(*args)


def replay_parallel(game: str, actions, game_ids, return0, first_moves=None, workers: int = 1,
                    symmetry: bool = False) -> Visits:
    """`replay_visits` over `workers` processes; results concatenated in game order."""
    n = len(actions)
    if workers <= 1 or n < 2000:
        return replay_visits(game, actions, game_ids, return0, first_moves, symmetry)
    from .. import parallel
    bounds = np.linspace(0, n, workers * 4 + 1).astype(int)
    game_ids, return0 = np.asarray(game_ids), np.asarray(return0)
    chunks = [(game, actions[a:b], game_ids[a:b], return0[a:b], first_moves, symmetry)
              for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    parts = parallel.map_ordered(_replay_chunk, chunks, workers, "states replay")
    return Visits(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                    ("key", "turn", "outcome0", "player", "game")))


def aggregate(v: Visits) -> dict[str, np.ndarray]:
    """Per distinct key: count, mean turn, mean outcome (player 0), player to move, and the
    first occurrence (game id, turn) from which the state can be rebuilt by replay."""
    if len(v.key) == 0:
        empty = np.zeros(0)
        return {"key": empty.astype(np.uint64), "count": empty.astype(np.int64),
                "mean_turn": empty, "outcome_p0": empty, "player": empty.astype(np.int8),
                "example_game": empty.astype(np.int64), "example_turn": empty.astype(np.int32)}
    order = np.argsort(v.key, kind="stable")
    k = v.key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    count = np.diff(np.r_[starts, len(k)])
    first = order[starts]
    return {
        "key": k[starts],
        "count": count.astype(np.int64),
        "mean_turn": np.add.reduceat(v.turn[order].astype(np.float64), starts) / count,
        "outcome_p0": np.add.reduceat(v.outcome0[order].astype(np.float64), starts) / count,
        "player": v.player[first],
        "example_game": v.game[first],
        "example_turn": v.turn[first],
    }


def states_table(agg: dict[str, np.ndarray], game: str, selection: Selection,
                 scheme: str = KEY_SCHEME) -> pa.Table:
    """Rows sorted by decreasing count (ties by key, so the order is reproducible), with rank."""
    order = np.lexsort((agg["key"], -agg["count"]))
    cols = {name: agg[name][order] for name in agg}
    cols["rank"] = np.arange(1, len(order) + 1, dtype=np.int64)
    table = pa.table({"rank": cols["rank"], "key": pa.array(cols["key"], pa.uint64()),
                      "count": cols["count"], "mean_turn": cols["mean_turn"],
                      "outcome_p0": cols["outcome_p0"], "player": cols["player"],
                      "example_run": pa.array(cols.get("example_run", np.full(len(order), "", object)),
                                              pa.string()).dictionary_encode(),
                      "example_game": cols["example_game"], "example_turn": cols["example_turn"]})
    meta = {"azscale.table": STATES_TABLE, "azscale.version": STATES_VERSION, "game": game,
            "key_scheme": scheme, "frame": FRAME, "selection": json.dumps(asdict(selection))}
    return table.replace_schema_metadata(meta)


def outcome_side_to_move(outcome_p0: np.ndarray, player: np.ndarray) -> np.ndarray:
    """Convert a player-0 outcome to the frame of the player to move in the state."""
    return np.where(np.asarray(player) == 1, -np.asarray(outcome_p0), np.asarray(outcome_p0))


def histories_for(states, games: pa.Table) -> list[list[int]]:
    """Action prefixes that rebuild each state (rows of a states table, as a DataFrame) from its
    example (run, game id, turn) in `games`."""
    from ..errors import UserError
    lookup = {(r, g): a for r, g, a in zip(games["run"].to_pylist(), games["game_id"].to_pylist(),
                                            games["actions"].to_pylist())}
    out = []
    for run, gid, turn in zip(states["example_run"], states["example_game"], states["example_turn"]):
        acts = lookup.get((run, int(gid)))
        if acts is None:
            raise UserError(f"game {gid} of run {run} is not in the games given; cannot rebuild its states")
        out.append(acts[:int(turn)])
    return out


GAME_KINDS = ("selfplay", "match", "random")      # the `kind` column of a games table


def check_kinds(kinds: str | Sequence[str] | None) -> list[str]:
    """The kinds of game asked for, as a list: one kind may be given as a string; a kind that
    is not one of `GAME_KINDS` is refused (it would select no game, not an error)."""
    from ..errors import UserError
    if kinds is None:
        return []
    if isinstance(kinds, str):
        kinds = [kinds]
    out = list(kinds)
    for k in out:
        if k not in GAME_KINDS:
            raise UserError(f"unknown kind of game {k!r} (the kinds are {', '.join(GAME_KINDS)})")
    return out


def select_games(table: pa.Table, window: str = "all", kinds: Sequence[str] = (),
                 temperature: float | None = None) -> pa.Table:
    """Apply a selection to a games table. `window`: all, lastNN (the last NN% of each run's
    games by game id, the paper's `last70`), or steps:A-B (games whose network step is in A..B)."""
    from ..errors import UserError
    import pyarrow.compute as pc

    t = table
    kinds = check_kinds(kinds)
    if kinds:
        t = t.filter(pc.is_in(t["kind"], pa.array(list(kinds))))
    if temperature is not None:
        # temperatures are stored as float32: a game is at T when its value is T's float32 value
        t = t.filter(pc.less(pc.abs(pc.subtract(t["temperature"], pa.scalar(temperature, pa.float32()))), 1e-6))
    if window == "all":
        return t
    if window.startswith("last"):
        try:
            pct = float(window[4:])
        except ValueError:
            raise UserError(f"window '{window}' must look like last70") from None
        if not 0 < pct <= 100:
            raise UserError(f"window '{window}': the percentage must be in (0, 100]")
        keep = []
        for run in pc.unique(t["run"]).to_pylist():
            sub = t.filter(pc.equal(t["run"], run)).sort_by("game_id")
            n = sub.num_rows
            keep.append(sub.slice(n - int(round(n * pct / 100)), n))
        return pa.concat_tables(keep) if keep else t.slice(0, 0)
    if window.startswith("steps:"):
        try:
            a, b = (int(x) for x in window[6:].split("-"))
        except ValueError:
            raise UserError(f"window '{window}' must look like steps:100-500") from None
        return t.filter(pc.and_(pc.greater_equal(t["net_step"], a), pc.less_equal(t["net_step"], b)))
    raise UserError(f"unknown window '{window}' (use all, lastNN such as last70, or steps:A-B)")


def build_states(games: pa.Table, window: str = "all", kinds: Sequence[str] = (),
                 temperature: float | None = None, first_moves: int | None = None,
                 workers: int = 1, keep_visits: bool = False, symmetry: bool = False,
                 sources: Sequence[str] = ()) -> tuple[pa.Table, Visits | None]:
    """Select games, replay them, and return the states table (and the visits, on request)."""
    from ..errors import ThinData, UserError
    import pyarrow.compute as pc

    sel = select_games(games, window, kinds, temperature)
    names = pc.unique(sel["game"]).to_pylist() if sel.num_rows else []
    if len(names) > 1:
        raise UserError(f"the selected games mix several games ({', '.join(names)}); analyse one game at a time")
    if not names:
        raise ThinData("the selection holds no games")
    game = names[0]
    # visits are tagged with the selection's row index (unique even when runs are pooled)
    acts = sel["actions"].combine_chunks() if sel.num_rows else sel["actions"]
    try:
        check_action_ids(game, acts)
        v = replay_parallel(game, acts, np.arange(sel.num_rows), sel["return0"].to_numpy(),
                            first_moves, workers, symmetry)
    except BadGame as exc:
        raise UserError(f"game {sel['game_id'][exc.row].as_py()} of run '{sel['run'][exc.row].as_py()}' cannot be "
                        f"replayed: {exc.detail}") from None
    selection = Selection(runs=sorted(pc.unique(sel["run"]).to_pylist()), window=window,
                          kinds=list(kinds), first_moves=first_moves, temperature=temperature,
                          games=sel.num_rows, visits=int(len(v.key)), sources=[str(x) for x in sources])
    agg = aggregate(v)
    rows = agg.pop("example_game")
    agg["example_run"] = sel["run"].to_numpy(zero_copy_only=False)[rows] if len(rows) else np.zeros(0, object)
    agg["example_game"] = sel["game_id"].to_numpy()[rows] if len(rows) else np.zeros(0, np.int64)
    return states_table(agg, game, selection, key_scheme(game, symmetry)), (v if keep_visits else None)


def table_meta(table: pa.Table) -> dict[str, Any]:
    """The metadata of a states table built here (its selection decoded); a table read from a
    file goes through `read_states_table`, which checks it."""
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "selection" in meta:
        meta["selection"] = json.loads(meta["selection"])
    return meta


STATES_COLUMNS = ("rank", "key", "count", "mean_turn", "outcome_p0", "player", "example_run", "example_game",
                  "example_turn")


def read_states_table(path, columns: Sequence[str] | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """A states table from its file (`states.parquet`) and its metadata (`table_meta`'s), checked:
    a readable Parquet file marked as a states table, with its game, a readable selection and the
    `columns` asked for (default: all, the table's own columns required). Anything else is refused with one line naming
    the file. The one reader of a states table: `load_states`, `azscale solve`, the toy tree."""
    import pyarrow.parquet as pq

    from ..errors import UserError
    from ..runs import _one_line
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise UserError(f"{path}: not a readable Parquet file ({_one_line(exc)[:100]})") from None
    raw = schema.metadata or {}
    if raw.get(b"azscale.table") != STATES_TABLE.encode():
        raise UserError(f"{path}: not an azscale states table")
    try:
        meta = table_meta(schema.empty_table())
    except ValueError:                  # a damaged selection (not JSON) or metadata that is not UTF-8
        raise UserError(f"{path}: damaged states table (its metadata is not readable)") from None
    missing = [c for c in (STATES_COLUMNS if columns is None else columns) if c not in schema.names]
    if not isinstance(meta.get("game"), str) or not isinstance(meta.get("selection"), dict) or missing:
        what = ", ".join(([] if isinstance(meta.get("game"), str) else ["game"])
                         + ([] if isinstance(meta.get("selection"), dict) else ["selection"]) + missing)
        raise UserError(f"{path}: damaged states table ({what} missing)")
    try:
        table = pq.read_table(path, columns=None if columns is None else list(columns))
    except Exception as exc:
        raise UserError(f"{path}: not a readable Parquet file ({_one_line(exc)[:100]})") from None
    return table, meta
