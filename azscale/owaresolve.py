"""Exact values of small oware positions under OpenSpiel's rules, repetition rule included.

OpenSpiel's oware ends the game when a board (seeds of every house and the player to move)
repeats since the last capture; each row's seeds then go to its owner. So a position's value
depends on the boards seen since the last capture, not on the board alone: a "first-cycle game",
whose solution is PSPACE-hard in general (Aminof & Rubin, "First cycle games", 2014), and its
state key (`str(state)`, which drops that history) can stand for positions of different values.

What this module does, exactly:
- `OwareRules`: the rules in plain Python (sowing that skips its origin house, captures of 2s and
  3s backwards in the opponent's row, the grand-slam exception, feeding, the repetition rule,
  the end once a player holds more than half the seeds or both half, no legal move). Tested
  move by move against pyspiel on random games of several variants.
- `OwareSolver.label(state)` / `solve(actions)`: the game-theoretic value of the position *with its own history*
  (read from `state.history()`), for the player to move, by alpha-beta over {-1, 0, +1} with the
  real repetition rule on every line searched: exact, not an approximation of the rule.
  Transpositions are stored only where a value cannot depend on the history: a position just
  after a capture (or the first), and a position whose board lies on no cycle of non-capturing
  moves (its strongly connected component is trivial, so no line from it can repeat a board seen
  before it). Positions on such cycles are searched afresh on every line.
- A node budget per label (positions searched plus boards walked to find the cycles): a
  position whose search needs more is left unsolved (value NaN, counted by the callers) rather
  than guessed; one whose optimal moves did not fit is kept with its value and an empty mask
  (retried under a larger budget, counted by the loss). Start positions of the smallest boards solve in
  under a second; larger boards solve their end games and leave many early positions unsolved:
  `azscale oware-scan` reports the share solved per variant.
- OpenSpiel's move cap (`max_game_length()`, 1,000): a line longer than the cap would be refused
  by OpenSpiel; the solver counts moves from the game's start and scores a line that reaches the
  cap as unsolved (NaN), never as a value. On the variants scanned no search came near it.
"""

from __future__ import annotations

import math
import sys
import time

from .errors import UserError

MAX_SEEDS = 24                 # largest board (seeds in all) the solver accepts
DEFAULT_BUDGET = 300_000       # positions searched per label before it is left unsolved


class OwareRules:
    """Boards are tuples of 2h seed counts; player 0 owns houses 0..h-1, player 1 houses h..2h-1."""

    def __init__(self, houses: int, seeds: int):
        self.h, self.total = houses, 2 * houses * seeds
        self.start = (seeds,) * (2 * houses)

    def legal(self, b: tuple, p: int) -> list[int]:
        h = self.h
        own = b[p * h:(p + 1) * h]
        if sum(b[(1 - p) * h:(2 - p) * h]) == 0:          # the opponent must be fed
            return [a for a in range(h) if own[a] > h - 1 - a]
        return [a for a in range(h) if own[a] > 0]

    def sow(self, b: tuple, score: tuple, p: int, a: int) -> tuple[tuple, tuple, int]:
        """The board and scores after player `p` sows house `a`, and the seeds captured."""
        h, n = self.h, 2 * self.h
        b = list(b)
        house = p * h + a
        k, b[house] = b[house], 0
        pos = house
        while k:
            pos = (pos + 1) % n
            if pos != house:
                b[pos] += 1
                k -= 1
        captured = 0
        if pos // h != p:
            lo = (pos // h) * h
            i, run = pos, []
            while i >= lo and 2 <= b[i] <= 3:
                run.append(i)
                i -= 1
            taken = sum(b[j] for j in run)
            if run and taken != sum(b[lo:lo + h]):          # a grand slam captures nothing
                for j in run:
                    b[j] = 0
                captured = taken
        sc = list(score)
        sc[p] += captured
        return tuple(b), tuple(sc), captured

    def decided(self, score: tuple) -> bool:
        half = self.total // 2
        return score[0] > half or score[1] > half or (score[0] == half and score[1] == half)

    def collect(self, b: tuple, score: tuple) -> tuple:
        """Scores once every row's seeds go to its owner."""
        h = self.h
        return (score[0] + sum(b[:h]), score[1] + sum(b[h:]))

    def replay(self, actions) -> tuple[tuple, tuple, int, list, bool]:
        """Board, scores, player to move, boards since the last capture (oldest first) and
        whether the game is over, after `actions` from the start."""
        b, sc, p = self.start, (0, 0), 0
        hist = [(b, p)]
        over = False
        for a in actions:
            if over or a not in self.legal(b, p):
                raise UserError(f"oware: action {a} is not legal in this game")
            b, sc, p, hist, over, _ = self.play(b, sc, p, hist, a)
        return b, sc, p, hist, over

    def play(self, b: tuple, score: tuple, p: int, hist: list, a: int):
        """One move in a game: (board, scores, player to move, boards since the last capture,
        over, ended by a repetition); a finished game's seeds are collected."""
        b, sc, cap = self.sow(b, score, p, a)
        p = 1 - p
        if cap:
            hist = []
        repeated = (b, p) in hist
        hist.append((b, p))
        if repeated or self.decided(sc) or not self.legal(b, p):
            return (0,) * (2 * self.h), self.collect(b, sc), p, hist, True, repeated
        return b, sc, p, hist, False, False


class _Budget(Exception):
    pass


class OwareSolver:
    """Exact values of small oware positions; see the module docstring."""

    name = "oware-alphabeta"

    def __init__(self, game, budget: int = DEFAULT_BUDGET):
        if game.get_type().short_name != "oware":
            raise UserError(f"the oware solver cannot solve '{game.get_type().short_name}'")
        p = game.get_parameters()
        h, s = int(p["num_houses_per_player"]), int(p["num_seeds_per_house"])
        if 2 * h * s > MAX_SEEDS:
            raise UserError(f"no exact solver for oware with {2 * h * s} seeds ({h} houses x {s} seeds per "
                            f"house): the solver takes boards of at most {MAX_SEEDS} seeds")
        if not (isinstance(budget, int) and budget >= 1):
            raise UserError("the solver's node budget must be a positive integer")
        self.rules = OwareRules(h, s)
        self.cap = int(game.max_game_length())
        self.budget = budget
        self.lo: dict = {}            # history-free positions: bounds on the mover's value
        self.hi: dict = {}
        self._cyclic: dict = {}       # (board, player) -> lies on a cycle of non-capturing moves
        self.visited = 0
        self._left = budget
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))

    # -- which boards lie on a cycle of non-capturing moves (Tarjan, iterative) -----------------
    def _quiet_moves(self, node):
        b, p = node
        out = []
        for a in self.rules.legal(b, p):
            b2, _, cap = self.rules.sow(b, (0, 0), p, a)
            if not cap:
                out.append((b2, 1 - p))
        return out

    def on_cycle(self, b: tuple, p: int) -> bool:
        node = (b, p)
        hit = self._cyclic.get(node)
        if hit is not None:
            return hit
        index, low, on, stack = {}, {}, set(), []
        counter = 0
        self._left -= 1
        index[node] = low[node] = 0
        stack.append(node)
        on.add(node)
        work = [(node, iter(self._quiet_moves(node)))]
        while work:
            v, it = work[-1]
            pushed = False
            for w in it:
                if w in self._cyclic:            # settled in an earlier search: another component
                    continue
                if w not in index:
                    counter += 1
                    self._left -= 1               # the walk counts against the label's budget
                    if self._left < 0:
                        raise _Budget
                    index[w] = low[w] = counter
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(self._quiet_moves(w))))
                    pushed = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if pushed:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                cyc = len(comp) > 1 or v in self._quiet_moves(v)
                for w in comp:
                    self._cyclic[w] = cyc
        return self._cyclic[node]

    # -- the search ------------------------------------------------------------------------------
    def _outcome(self, b, sc, p) -> int:
        f = self.rules.collect(b, sc)
        return (f[p] > f[1 - p]) - (f[p] < f[1 - p])

    def _children(self, b, sc, p, hist):
        """(order, action, value if the move ends the game else None, next position)."""
        R = self.rules
        out = []
        for a in R.legal(b, p):
            b2, sc2, cap = R.sow(b, sc, p, a)
            p2 = 1 - p
            if (not cap and (b2, p2) in hist) or R.decided(sc2) or not R.legal(b2, p2):
                out.append((0, a, self._outcome(b2, sc2, p), None))
            else:
                out.append((1 if cap else 2, a, None, (b2, sc2, p2, cap)))
        out.sort(key=lambda c: (c[0], -(c[2] or 0)))
        return out

    def _search(self, b, sc, p, hist, fresh, alpha, beta, moves):
        if not self.on_cycle(b, p):
            key = (b, sc, p, False)          # no line from here can repeat an earlier board
        elif fresh:
            key = (b, sc, p, True)           # its history is itself alone
        else:
            key = None
        lo = hi = None
        if key is not None:
            lo, hi = self.lo.get(key, -1), self.hi.get(key, 1)
            if lo == hi or lo >= beta:
                return lo
            if hi <= alpha:
                return hi
            alpha, beta = max(alpha, lo), min(beta, hi)
        self.visited += 1
        self._left -= 1
        if self._left < 0 or moves >= self.cap:
            raise _Budget
        a0, best = alpha, -2
        for _, _, v, nxt in self._children(b, sc, p, hist):
            if v is None:
                b2, sc2, p2, cap = nxt
                if cap:
                    v = -self._search(b2, sc2, p2, {(b2, p2)}, True, -beta, -alpha, moves + 1)
                else:
                    hist.add((b2, p2))
                    try:
                        v = -self._search(b2, sc2, p2, hist, False, -beta, -alpha, moves + 1)
                    finally:
                        hist.discard((b2, p2))
            if v > best:
                best = v
                alpha = max(alpha, best)
                if alpha >= beta:
                    break
        if key is not None:
            if best <= a0:
                self.hi[key] = min(hi, best)
            elif best >= beta:
                self.lo[key] = max(lo, best)
            else:
                self.lo[key] = self.hi[key] = best
        return best

    def _root(self, actions):
        b, sc, p, hist, over = self.rules.replay([int(a) for a in actions])
        if over:
            raise UserError("cannot solve a finished game's state")
        return b, sc, p, set(hist), len(actions)

    def _move_value(self, nxt, hist, moves, alpha, beta):
        """The mover's value of one move (a child position), searched in (alpha, beta)."""
        b2, sc2, p2, cap = nxt
        h2 = {(b2, p2)} if cap else hist | {(b2, p2)}
        return -self._search(b2, sc2, p2, h2, cap, -beta, -alpha, moves + 1)

    def solve(self, actions) -> tuple[float, int]:
        """(value for the player to move, optimal-move mask) after `actions` from the start:
        the value by alpha-beta over the moves (a win ends the search), then each move tested
        against it in a null window. (NaN, 0) if the budget runs out before the value is known;
        (value, 0) if it runs out while the optimal moves are tested."""
        b, sc, p, hist, n = self._root(actions)
        self._left = self.budget
        children = self._children(b, sc, p, hist)
        try:
            best = -2
            for _, a, v, nxt in children:
                if v is None:
                    v = self._move_value(nxt, hist, n, max(best, -1), 1)
                best = max(best, v)
                if best == 1:
                    break
        except _Budget:
            return math.nan, 0
        mask = 0
        try:
            for _, a, v, nxt in children:
                if v is None:       # optimal iff its value reaches `best`: a null window below it
                    v = self._move_value(nxt, hist, n, best - 1, best)
                if v >= best:
                    mask |= 1 << a
        except _Budget:
            return float(best), 0
        return float(best), mask

    def action_values(self, actions) -> dict[int, float]:
        """Exact value of each legal move for the player to move (their frame), searched in the
        full window; NaN for every move if the budget runs out."""
        b, sc, p, hist, n = self._root(actions)
        self._left = self.budget
        out: dict[int, float] = {}
        try:
            for _, a, v, nxt in self._children(b, sc, p, hist):
                out[a] = float(v if v is not None else self._move_value(nxt, hist, n, -1, 1))
        except _Budget:
            return {a: math.nan for a in self.rules.legal(b, p)}
        return out

    def label(self, state):
        from .label import Label
        if state.is_terminal():
            raise UserError("cannot label a finished game's state")
        t0, n0 = time.perf_counter(), self.visited
        value, mask = self.solve(state.history())
        nodes = self.visited - n0
        if math.isnan(value) or mask == 0:     # the budget ran out: it was all spent (the cycle walk
            nodes = max(nodes, self.budget)      # counts too), so the cache retries it only under a larger one
        return Label(value, mask, nodes, time.perf_counter() - t0)


def parameters(game) -> tuple[int, int]:
    p = game.get_parameters()
    return int(p["num_houses_per_player"]), int(p["num_seeds_per_house"])


def cycle_census(houses: int, seeds: int, max_nodes: int = 2_000_000) -> dict[str, int] | None:
    """How many (board, player) pairs, over every seed total, lie on cycles of non-capturing
    moves; None when the board has more than `max_nodes` pairs."""
    from math import comb
    n = 2 * houses
    pairs = sum(2 * comb(t + n - 1, n - 1) for t in range(2 * houses * seeds + 1))
    if pairs > max_nodes:
        return None
    R = OwareRules(houses, seeds)
    solver = OwareSolver.__new__(OwareSolver)
    solver.rules, solver._cyclic, solver._left = R, {}, math.inf

    def boards(k, t):
        if k == 1:
            yield (t,)
            return
        for i in range(t + 1):
            for rest in boards(k - 1, t - i):
                yield (i,) + rest
    cyc = 0
    for t in range(2 * houses * seeds + 1):
        for b in boards(n, t):
            for p in (0, 1):
                cyc += solver.on_cycle(b, p)
    return {"pairs": pairs, "on_cycle": cyc}

