"""Ground truth: game-theoretic values of states, with the effort it took to find them.

Two oracles behind one interface (`label(state) -> Label`, values in the frame of the player to
move, +1 = that player wins with perfect play):
- `MemoSolver`: memoized minimax over pyspiel for small games. Its transposition key is
  (str(state), player to move), which identifies a position completely in games whose rules do
  not look back beyond the board: tic_tac_toe and connect_four on any board (small boards such as
  4x5 solve in seconds). Games whose rules depend on history (oware's and checkers' repetition
  and move-count rules) are refused rather than solved wrongly.
- `owaresolve.OwareSolver`: small oware boards (at most 24 seeds), exact under OpenSpiel's rules
  including the repetition rule, with a node budget per label; a position it cannot finish is
  labelled NaN (unsolved) and left out, counted, by the loss.
- `BitBullyOracle`: the `bitbully` package's Connect Four solver (with its opening books) for
  the standard 6x7 board; cross-checked against `MemoSolver` on late positions in the tests.
Labels are cached by state key in Parquet (`LabelCache`), so a state is solved once:
`solve_into` is the one solve-and-cache, used by `solve_states` (`azscale solve`) and by the
loss against perfect play (`analysis/loss_report.py`).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyspiel

from .errors import UserError
from .label import Label

HISTORY_FREE = {"tic_tac_toe", "connect_four"}
SAVE_EVERY_S = 60.0         # how often a solve writes its label cache while it works


def _mask(actions) -> int:
    m = 0
    for a in actions:
        m |= 1 << int(a)
    return m


class MemoSolver:
    name = "memo-minimax"

    def __init__(self, game: pyspiel.Game):
        name = game.get_type().short_name
        if name not in HISTORY_FREE:
            raise UserError(f"no exact solver for '{name}' (supported: {', '.join(sorted(HISTORY_FREE))}; "
                            f"its rules depend on history or it is too large)")
        self.game = game
        self.table: dict[tuple[str, int], float] = {}
        self.visited = 0
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def value(self, state: pyspiel.State) -> float:
        """The game-theoretic value of `state` for player 0."""
        if state.is_terminal():
            return float(state.returns()[0])
        key = (str(state), state.current_player())
        hit = self.table.get(key)
        if hit is not None:
            return hit
        self.visited += 1
        sign = 1.0 if state.current_player() == 0 else -1.0
        best = -2.0
        for a in state.legal_actions():
            v = sign * self.value(state.child(a))
            if v > best:
                best = v
                if best >= 1.0:  # cannot do better than a win
                    break
        out = sign * best
        self.table[key] = out
        return out

    def action_values(self, state: pyspiel.State) -> dict[int, float]:
        """Value of each legal move for the player to move (their own frame)."""
        sign = 1.0 if state.current_player() == 0 else -1.0
        return {a: sign * self.value(state.child(a)) for a in state.legal_actions()}

    def label(self, state: pyspiel.State) -> Label:
        t0, n0 = time.perf_counter(), self.visited
        av = self.action_values(state)
        best = max(av.values())
        return Label(best, _mask(a for a, v in av.items() if v == best), self.visited - n0,
                     time.perf_counter() - t0)


class BitBullyOracle:
    name = "bitbully"

    def __init__(self, book: bool = True):
        try:
            from bitbully import BitBully
        except ImportError:
            raise UserError("standard connect_four ground truth needs the bitbully package "
                            "(pip install bitbully)") from None
        self.agent = BitBully() if book else BitBully(opening_book=None)

    def label(self, state: pyspiel.State) -> Label:
        """Weak solve: the sign of each move's value (win/draw/loss), by a null-window search.

        The label needs only signs (the value and the set of moves that keep it), so each
        child is searched in the window (-1, 1) instead of for its exact score, which is several
        times faster than `score_all_moves` and agrees with it in sign (tested).
        """
        from bitbully import Board
        board = Board.from_moves([int(a) for a in state.history()])
        self.agent.reset_node_counter()
        t0 = time.perf_counter()
        signs = {}
        for col in board.legal_moves():
            child = board.play_on_copy(col)
            if child.has_win():
                signs[col] = 1                      # the move wins at once
            elif child.is_full():
                signs[col] = 0
            else:                                   # child is scored for the opponent, who moves next
                signs[col] = -int(np.sign(self.agent.negamax(child, -1, 1)))
        dt = time.perf_counter() - t0
        best = max(signs.values())
        return Label(float(best), _mask(a for a, v in signs.items() if v == best),
                     int(self.agent.get_node_counter()), dt)


def is_standard_connect_four(game: pyspiel.Game) -> bool:
    p = game.get_parameters()
    return (game.get_type().short_name == "connect_four" and p.get("rows", 6) == 6
            and p.get("columns", 7) == 7 and p.get("x_in_row", 4) == 4)


def make_oracle(game: pyspiel.Game, book: bool = True, budget: int | None = None):
    """The perfect-play oracle of `game`; `budget`: the small-oware solver's node budget per
    label (None: `owaresolve.DEFAULT_BUDGET`; the other oracles have none and ignore it)."""
    if is_standard_connect_four(game):
        return BitBullyOracle(book)
    if game.get_type().short_name == "oware":
        from .owaresolve import DEFAULT_BUDGET, OwareSolver
        return OwareSolver(game, DEFAULT_BUDGET if budget is None else budget)
    return MemoSolver(game)


def has_oracle(game: str) -> bool:
    """Whether `game` (a game string) has a perfect-play oracle on this machine (bitbully
    installed for Connect Four; a board the exact solvers take)."""
    try:
        make_oracle(pyspiel.load_game(game))
        return True
    except (UserError, pyspiel.SpielError):
        return False


def takes_budget(game: str) -> bool:
    """Whether `game`'s oracle has a node budget (the small-oware solver); False where it has
    none (memo-minimax, bitbully) or there is no oracle at all."""
    try:
        return getattr(make_oracle(pyspiel.load_game(game)), "budget", None) is not None
    except (UserError, pyspiel.SpielError):
        return False


class LabelCache:
    """Solver labels by state key, in `<dir>/labels.parquet` (written atomically)."""

    COLUMNS = ("key", "value", "best_mask", "nodes", "seconds")

    def __init__(self, directory: Path, game: str, solver: str):
        self.dir = Path(directory)
        self.path = self.dir / "labels.parquet"
        self.game, self.solver = game, solver
        self.data: dict[int, tuple] = {}
        if self.path.exists():
            import pyarrow.parquet as pq
            try:
                t = pq.read_table(self.path)
            except Exception:
                raise UserError(f"{self.path}: not a readable label cache; delete it to rebuild") from None
            meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
            if meta.get("azscale.table") != "labels":
                raise UserError(f"{self.path}: not an azscale label cache")
            if meta.get("game") != game:
                raise UserError(f"{self.path}: labels of game '{meta.get('game')}', not '{game}'")
            cols = [t[c].to_pylist() for c in self.COLUMNS]
            self.data = {k: row for k, *row in zip(*cols)}

    def missing(self, keys) -> list[int]:
        return [k for k in keys if k not in self.data]

    def add(self, key: int, lab: Label) -> None:
        self.data[key] = (lab.value, lab.best_mask, lab.nodes, lab.seconds)

    def save(self) -> None:
        import pyarrow as pa

        from .runs import atomic_write_table
        keys = sorted(self.data)
        cols = list(zip(*(self.data[k] for k in keys))) if keys else [[], [], [], []]
        t = pa.table({"key": pa.array(keys, pa.uint64()), "value": pa.array(cols[0], pa.float32()),
                      "best_mask": pa.array(cols[1], pa.uint64()), "nodes": pa.array(cols[2], pa.int64()),
                      "seconds": pa.array(cols[3], pa.float64())})
        t = t.replace_schema_metadata({"azscale.table": "labels", "game": self.game, "solver": self.solver,
                                       "value_frame": "side_to_move"})
        atomic_write_table(self.path, t)

    def lookup(self, keys) -> dict[str, np.ndarray]:
        rows = [self.data[k] for k in keys]
        return {"value": np.array([r[0] for r in rows], np.float32),
                "best_mask": np.array([r[1] for r in rows], np.uint64),
                "nodes": np.array([r[2] for r in rows], np.int64),
                "seconds": np.array([r[3] for r in rows], np.float64)}


@functools.lru_cache(maxsize=4)
def _worker_oracle(game: str, book: bool, budget: int | None = None):
    """One oracle per game in a worker process, kept across chunks (its transposition table and
    the small-oware solver's cycle map are then built once)."""
    g = pyspiel.load_game(game)
    return g, make_oracle(g, book, budget)


def _label_chunk(args):
    from .procs import die_with_parent
    die_with_parent()
    game, histories, book, budget = args
    g, oracle = _worker_oracle(game, book, budget)
    out = []
    for h in histories:
        s = g.new_initial_state()
        for a in h:
            s.apply_action(int(a))
        out.append(oracle.label(s))
    return out


def label_histories(game: str, histories: list[list[int]], workers: int = 1, book: bool = True,
                    progress: bool = False, on_part=None, budget: int | None = None) -> list[Label]:
    """Solve the states reached by `histories` (action lists), in `workers` local processes.

    The solving always stays on this machine (a pool of local processes, never Ray tasks, even
    inside a sweep's Ray session): the solver (bitbully) is checked on the driver only
    (`has_oracle`), and other nodes need not have it.

    `on_part(start, labels)`, when given, is called as each consecutive part is done (in order),
    so callers can save partial work.
    """
    if not histories:
        return []
    from . import parallel
    chunk = max(1, min(500, len(histories) // (workers * 4) or 1))
    parts = [(game, histories[i:i + chunk], book, budget) for i in range(0, len(histories), chunk)]
    bar = parallel.Bar("solving", "state", len(histories), size=len) if progress else None
    out: list[Label] = []
    for i, res in enumerate(parallel.imap(_label_chunk, parts, workers, "solving", bar=bar, ray=False)):
        if on_part is not None:
            on_part(i * chunk, res)
        out += res
    return out


def _retry(row: tuple, budget: int | None) -> bool:
    """A label left unsolved (NaN), or without its optimal moves (mask 0: a finished game has no
    label, so every label has an optimal move), searched with fewer nodes than the solver may now."""
    return budget is not None and (not np.isfinite(row[0]) or row[1] == 0) and row[2] < budget


def solve_into(cache: LabelCache, game: str, keys: list[int], histories: list[list[int]], workers: int = 1,
               book: bool = True, progress: bool = False, budget: int | None = None) -> int:
    """Solve the states of `keys` (reached by `histories`) that `cache` lacks, in `workers`
    processes, and keep their labels in it: saved every minute while it works (so a killed solve
    keeps its work) and at the end. Returns how many were solved."""
    limit = getattr(make_oracle(pyspiel.load_game(game), book, budget), "budget", None)
    todo = [i for i, k in enumerate(keys) if k not in cache.data or _retry(cache.data[k], limit)]
    if not todo:
        return 0
    todo_keys = [keys[i] for i in todo]
    last_save = [time.perf_counter()]

    def keep(start, labels):
        for k, lab in zip(todo_keys[start:start + len(labels)], labels):
            cache.add(k, lab)
        if time.perf_counter() - last_save[0] > SAVE_EVERY_S:
            cache.save()
            last_save[0] = time.perf_counter()

    label_histories(game, [histories[i] for i in todo], workers, book, progress, on_part=keep, budget=budget)
    cache.save()
    return len(todo)


def solve_states(states_path: Path, out: Path, *, game: str | None = None, min_count: int = 1,
                 limit: int | None = None, workers: int = 1, book: bool = True, budget: int | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Label the states of a states table (from `azscale zipf`) into a cache directory (`azscale
    solve`): the most frequent first, those seen `min_count` times or more, at most `limit`.
    `game`: refuse a table of another game."""
    import pyarrow as pa

    from . import runs
    from .analysis.states import histories_for, read_states_table
    from .engines.spiel import load_spiel_game
    st, meta = read_states_table(states_path, columns=("key", "count", "rank", "example_run", "example_game",
                                                        "example_turn"))
    if game is not None and meta["game"] != game:
        raise UserError(f"{states_path} holds states of '{meta['game']}', not '{game}'")
    game = meta["game"]
    runs.claim_dir(Path(out), "labels")
    sources = meta["selection"].get("sources") or []
    if not sources:
        raise UserError(f"{states_path}: the table does not say which games it came from (rebuild it with azscale zipf)")
    df = st.to_pandas()
    df = df[df["count"] >= min_count].sort_values("rank")
    if limit:
        df = df.head(limit)
    df["example_run"] = df["example_run"].astype(str)
    cache = LabelCache(out, game, make_oracle(load_spiel_game(game), book).name)
    df = df[[k not in cache.data for k in df["key"].astype("uint64").tolist()]]
    t0 = time.perf_counter()
    if len(df):                         # the games are read only when something is left to solve
        games = pa.concat_tables([runs.read_games(s) for s in sources])
        solve_into(cache, game, df["key"].astype("uint64").tolist(), histories_for(df, games), workers=workers,
                   book=book, progress=progress, budget=budget)
    return {"solved": int(len(df)), "cached": len(cache.data), "seconds": time.perf_counter() - t0,
            "cache": str(cache.path)}
