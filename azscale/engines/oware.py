"""The oware twin."""

from __future__ import annotations

import torch

from ..errors import UserError
from .twin import State, TensorGame


class OwareTensor(TensorGame):
    """OpenSpiel oware (Abapa): action = house index in the mover's row (0..h-1; player 0 owns
    houses 0..h-1, player 1 houses h..2h-1, sown in increasing index, cyclically).

    Rules as in OpenSpiel's oware.cc: sowing skips the house it starts from; the last seed in
    the opponent's row captures backwards while houses hold 2 or 3 seeds, unless that would take
    every seed of the opponent's row (grand slam: nothing is captured); a player whose opponent
    has no seeds must feed them; a repeated position since the last capture, or no legal move,
    ends the game with each row's seeds going to its owner; the game is over once a player has
    more than half the seeds or both have exactly half. Observation: seeds per house then the two
    scores, divided by the total seeds.

    The repetition rule needs every board since the last capture. A game state carries them:
    each board (seeds of all houses but the last, which the constant total fixes, and the player
    to move) packed exactly into one int64, in a list as long as OpenSpiel's game-length cap
    allows (it refuses a move past `max_game_length()`), so the shape never changes. Exact, not
    hashed: two boards collide only if they are equal. A tree node keeps only its own board's
    code; `tree_step` finds a repetition among the node's ancestors on the search path and, for
    boards before the root, in the root's list sorted once per search (`tree_context`).
    """

    lookback_fields = ("code",)

    def __init__(self, game: str = "oware", device="cpu"):
        from .spiel import load_spiel_game
        p = load_spiel_game(game).get_parameters()
        h, per = int(p["num_houses_per_player"]), int(p["num_seeds_per_house"])
        self._setup(game, h, device)
        self.h, self.total = h, 2 * h * per
        base = self.total + 1
        if 2 * base ** (2 * h - 1) >= 2 ** 63:
            raise UserError(f"the oware tensor twin packs a board into 64 bits, which "
                            f"{h} houses x {per} seeds exceed; use --engine spiel")
        self.history = int(self.spiel_game.max_game_length()) + 1
        dev = self.device
        self.weights = torch.tensor([2 * base ** i for i in range(2 * h - 1)] + [0], dtype=torch.int64, device=dev)
        j = torch.arange(2 * h, device=dev)
        self.ahead = (j[None, :] - j[:, None]) % (2 * h)        # [from, to]: houses sown before `to`
        self.row = torch.arange(h, device=dev)

    def new_states(self, n: int) -> State:
        d = self.device
        seeds = torch.full((n, 2 * self.h), self.total // (2 * self.h), dtype=torch.int16, device=d)
        hist = torch.full((n, self.history), -1, dtype=torch.int64, device=d)
        player = torch.zeros(n, dtype=torch.int8, device=d)
        hist[:, 0] = self._code(seeds, player)
        return {"seeds": seeds, "score": torch.zeros(n, 2, dtype=torch.int16, device=d), "player": player,
                "moves": torch.zeros(n, dtype=torch.int16, device=d),
                "since": torch.ones(n, dtype=torch.int16, device=d), "hist": hist}

    def _code(self, seeds: torch.Tensor, player: torch.Tensor) -> torch.Tensor:
        return player.long() + (seeds.long() * self.weights).sum(1)

    def _legal(self, seeds: torch.Tensor, player: torch.Tensor) -> torch.Tensor:
        h = self.h
        own = seeds.gather(1, player.long()[:, None] * h + self.row)
        theirs = seeds.gather(1, (1 - player.long())[:, None] * h + self.row).sum(1)
        must_feed = (theirs == 0)[:, None]
        return torch.where(must_feed, own.long() > (h - 1 - self.row), own > 0)

    def _over(self, score: torch.Tensor) -> torch.Tensor:
        """A player has more than half the seeds, or both exactly half."""
        half = self.total // 2
        return (score[:, 0] > half) | (score[:, 1] > half) | ((score[:, 0] == half) & (score[:, 1] == half))

    def terminal(self, s: State) -> torch.Tensor:
        return self._over(s["score"])

    def returns(self, s: State) -> torch.Tensor:
        r0 = torch.sign(s["score"][:, 0] - s["score"][:, 1]).float() * self.terminal(s)
        return torch.stack([r0, -r0], 1)

    def legal(self, s: State) -> torch.Tensor:
        return self._legal(s["seeds"], s["player"])

    def observation(self, s: State) -> torch.Tensor:
        x = torch.cat([s["seeds"], s["score"]], 1).double() / self.total
        return x.float()

    def _sow(self, s: State, actions: torch.Tensor):
        """Sowing and capturing: seeds and scores after the move, the next player and the
        seeds captured (long tensors)."""
        h, n = self.h, actions.shape[0]
        ar = torch.arange(n, device=self.device)
        player = s["player"].long()
        seeds = s["seeds"].long().clone()
        house = player * h + actions.long()
        k = seeds[ar, house]
        seeds[ar, house] = 0
        ahead = self.ahead[house]                                   # [n, 2h]; 0 at the origin
        m = 2 * h - 1
        q, r = (k // m)[:, None], (k % m)[:, None]
        seeds = seeds + torch.where(ahead > 0, q + (ahead <= r).long(), 0)
        last = (house + torch.where(r[:, 0] == 0, m, r[:, 0])) % (2 * h)
        # capture: backwards from the last house through 2s and 3s, in the opponent's row only
        lower = (last // h) * h
        cells = lower[:, None] + self.row
        row = seeds.gather(1, cells)
        lr = (last - lower)[:, None]
        ok = (row >= 2) & (row <= 3)
        prev = torch.zeros(n, dtype=torch.bool, device=self.device)
        run = []
        for i in reversed(range(h)):
            prev = ok[:, i] & ((lr[:, 0] == i) | ((lr[:, 0] > i) & prev))
            run.append(prev)
        run = torch.stack(run[::-1], 1)
        grand = run[:, 0] & ((row * (self.row > lr)).sum(1) == 0)
        take = run & ((last // h) != player)[:, None] & ~grand[:, None]
        captured = (row * take).sum(1)
        seeds = seeds.scatter(1, cells, torch.where(take, 0, row))
        mover = player[:, None] == torch.arange(2, device=self.device)[None, :]        # no one_hot: it checks its input on the host
        score = s["score"].long() + mover.long() * captured[:, None]
        return seeds, score, 1 - player, captured

    def _finish(self, seeds, score, nxt, repeated):
        """A repetition, a decided score or no legal move: every row's seeds go to its owner."""
        h = self.h
        collect = repeated | self._over(score) | ~self._legal(seeds, nxt).any(1)
        score = score + torch.stack([seeds[:, :h].sum(1), seeds[:, h:].sum(1)], 1) * collect[:, None]
        return seeds * ~collect[:, None], score

    def step(self, s: State, actions: torch.Tensor) -> State:
        n = actions.shape[0]
        ar = torch.arange(n, device=self.device)
        seeds, score, nxt, captured = self._sow(s, actions)
        # repetition since the last capture (the first board after a capture starts a new list)
        since = torch.where(captured > 0, 0, s["since"].long())
        code = self._code(seeds, nxt)
        hist = s["hist"]
        seen = torch.arange(self.history, device=self.device)[None, :] < since[:, None]
        repeated = ((hist == code[:, None]) & seen).any(1)
        hist = hist.index_put((ar, since.clamp_max(self.history - 1)), code)
        seeds, score = self._finish(seeds, score, nxt, repeated)
        return {"seeds": seeds.to(torch.int16), "score": score.to(torch.int16), "player": nxt.to(torch.int8),
                "moves": s["moves"] + 1, "since": (since + 1).clamp_max(self.history).to(torch.int16),
                "hist": hist}

    # -- in the search tree: one board code per node, repetitions found along the path ------------
    def node_state(self, s: State) -> State:
        ar = torch.arange(s["since"].shape[0], device=self.device)
        code = s["hist"][ar, (s["since"].long() - 1).clamp_min(0)]
        return {**{k: v for k, v in s.items() if k != "hist"}, "code": code}

    def tree_context(self, roots: State) -> dict[str, torch.Tensor]:
        """The roots' board lists sorted by code (entries past `since` are -1, which no code
        equals), with each code's position in the list, for a binary search per new node."""
        hist = roots["hist"]
        valid = torch.arange(self.history, device=self.device)[None, :] < roots["since"].long()[:, None]
        codes, order = torch.where(valid, hist, -1).sort(1)
        return {"codes": codes, "order": order, "since": roots["since"].long()}

    def tree_step(self, parents: State, actions, anc, anc_depth, anc_ok, parent_depth, ctx) -> State:
        """`step` for a node of the search tree. The boards that count for the repetition rule
        are the last `since` boards of the parent's line: the parent and its ancestors on the
        path (`anc`: their codes, [D, B], with depths and validity), then, past the root, the
        root's own list (`ctx`). A capture empties the list."""
        seeds, score, nxt, captured = self._sow(parents, actions)
        since = torch.where(captured > 0, 0, parents["since"].long())
        code = self._code(seeds, nxt)
        lo = parent_depth.long() + 1 - since                      # the list covers depths lo .. parent's
        d = anc_depth.long()
        in_list = anc_ok & (d >= 1) & (d >= lo[None]) & (d <= parent_depth.long()[None])
        in_tree = ((anc["code"] == code[None]) & in_list).any(0)
        codes = ctx["codes"]
        pos = torch.searchsorted(codes, code[:, None]).clamp_max(codes.shape[1] - 1)
        hit = codes.gather(1, pos).squeeze(1) == code
        idx = ctx["order"].gather(1, pos).squeeze(1)              # root list entry i lies at depth i - since_root + 1
        in_root = hit & (idx - ctx["since"] + 1 >= lo)
        seeds, score = self._finish(seeds, score, nxt, in_tree | in_root)
        return {"seeds": seeds.to(torch.int16), "score": score.to(torch.int16), "player": nxt.to(torch.int8),
                "moves": parents["moves"] + 1, "since": (since + 1).clamp_max(self.history).to(torch.int16),
                "code": code}
